"""The single-master lease: one row per experiment, changed only by compare-and-swap.

A master takes the lease when none is held, when the holder released it, when the holder is a
process on this host that no longer exists (pid gone, or reused by another process), or when the
holder's heartbeat is older than the timeout (a master on a node that died). Each of the master's
write transactions re-checks its token first, so an old master that comes back after a takeover
notices and exits without writing (``LeaseLost``).
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .files import process_start_time
from .models import Lease, utcnow


class LeaseHeld(Exception):
    """Another live master holds the lease."""


class LeaseLost(Exception):
    """This master's lease was taken over; it must stop without writing."""


def process_alive(pid: int, started: float | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    current = process_start_time(pid)
    return started is None or current is None or current == started


@dataclass
class LeaseHolder:
    """This process's claim on an experiment's lease."""

    experiment_id: int
    timeout_s: float
    token: str = ""
    host: str = socket.gethostname()
    pid: int = os.getpid()

    def acquire(self, sessions: sessionmaker[Session]) -> bool:
        """Take the lease if free or stale. Returns True if it was taken over from a dead master."""
        self.pid = os.getpid()
        new_token = uuid.uuid4().hex
        now = utcnow()
        with sessions.begin() as s:
            current = s.get(Lease, self.experiment_id)
            if current is None:
                s.add(Lease(experiment_id=self.experiment_id, token=new_token, host=self.host,
                            pid=self.pid, pid_started=process_start_time(self.pid),
                            started_at=now, heartbeat_at=now))
                try:
                    s.flush()
                except IntegrityError:
                    raise LeaseHeld("another master took the lease at the same instant") from None
                self.token = new_token
                return False
            stale = self._stale(current, now)
            if stale is None:
                raise LeaseHeld(f"master pid {current.pid} on {current.host} is running "
                                f"(heartbeat {current.heartbeat_at:%Y-%m-%dT%H:%M:%SZ})")
            taken = s.execute(
                update(Lease).where(Lease.experiment_id == self.experiment_id,
                                    Lease.token == current.token)
                .values(token=new_token, host=self.host, pid=self.pid,
                        pid_started=process_start_time(self.pid), started_at=now,
                        heartbeat_at=now, released=False, stop_requested=False)).rowcount
            if taken != 1:
                raise LeaseHeld("another master took the lease at the same instant")
            self.token = new_token
            return stale != "released"

    def _stale(self, lease: Lease, now: datetime) -> str | None:
        if lease.released:
            return "released"
        if lease.host == self.host and not process_alive(lease.pid, lease.pid_started):
            return "dead"
        if now - lease.heartbeat_at > timedelta(seconds=self.timeout_s):
            return "expired"
        return None

    def check(self, session: Session, now: datetime | None = None) -> None:
        """Inside a write transaction: renew the heartbeat, or raise LeaseLost."""
        renewed = session.execute(
            update(Lease).where(Lease.experiment_id == self.experiment_id, Lease.token == self.token)
            .values(heartbeat_at=now or utcnow())).rowcount
        if renewed != 1:
            raise LeaseLost("another master took over this experiment")

    def release(self, sessions: sessionmaker[Session]) -> None:
        with sessions.begin() as s:
            s.execute(update(Lease).where(Lease.experiment_id == self.experiment_id,
                                          Lease.token == self.token).values(released=True))


def request_stop(sessions: sessionmaker[Session], experiment_id: int) -> Lease | None:
    """Ask the running master to exit cleanly at its next cycle (jobs keep running)."""
    with sessions.begin() as s:
        lease = s.get(Lease, experiment_id)
        if lease is None or lease.released:
            return None
        lease.stop_requested = True
        return lease


def heartbeat_age(lease: Lease) -> float:
    return (datetime.now(timezone.utc) - lease.heartbeat_at).total_seconds()
