"""Fujitsu PJM adapter (Nagoya "Flow" Type II, Fugaku, Wisteria): pjsub / pjstat / pjdel.

Sites wrap ``pjstat`` and print different tables (docs/spec/pjm-formats.md#site-tables), so
this adapter never reads a human table by position: it asks for named columns with ``pjstat -v
--choose ...`` and reads them by the header's column spans (RIKEN's own parser does the same,
#pjstat-verbose). A poll is ONE live call plus, only for jobs the live list no longer shows, ONE
``pjstat -v -H day=N`` call; every command is counted in ``calls``.

Decisions taken where the formats are not confirmed (docs/spec/pjm-formats.md, with labels):
- Success of ``pjsub`` is decided by its text, not its exit status: an ``[ERR.]`` line is an
  error even with rc 0 (K computer), an ``[INFO] ... Job N submitted.`` line (or the bare id of
  ``-z jid``) a success even with rc != 0.
- The submit-limit message was never seen (#pjsub-errors): any ``[ERR.]`` about the number of
  jobs or a submit limit is taken as one. An unknown resource group or unit stops every job
  (SchedulerMisconfigured). Connection-like messages, and failures without any ``[ERR.]`` line,
  are transient; every other ``[ERR.]`` rejects the job.
- ``--choose`` output may cut job names to 10 characters like ``-v`` does (a GUESS either way),
  so ``find_by_name`` confirms a name it only sees as a prefix with ``--filter jnam=<name>``.
- End codes (#end-codes): PC 11 is a timeout; PC 20 (node down), 22 (ICC), 25 (HA), 9
  (reconstruction), 18 (pre-empted by a later job), 26/27 (prologue / resource manager) are not
  the program's fault (NODE_FAIL); PC 1, 6, 7 are cancellations; EXT is a success only with
  EC 0 and PC 0. Wisteria's word states (END, QUEUED, RUNNING, CANCEL, HOLD, ERROR) are read too.
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import (
    JobRejected,
    JobSpec,
    JobState,
    JobStatus,
    SchedulerError,
    SchedulerMisconfigured,
    SchedulerOptionError,
    SchedulerUnavailable,
    SubmitLimitReached,
)
from .cli_base import CommandLineScheduler
from .commands import DEFAULT_TIMEOUT_S, CommandResult

log = logging.getLogger(__name__)

SCRIPT_NAME = "pjm-job.sh"

# --- output formats (docs/spec/pjm-formats.md#pjsub-output, #pjsub-errors, #pjdel) -----------

SUBMIT_RE = re.compile(
    r"\[INFO\.?\]\s+PJM\s+\d{4}\s+pjsub\s+Job\s+(?P<jid>\d+(?:_\d+)?)\s+submitted\.")
ERR_RE = re.compile(r"\[ERR\.\]\s+PJM\s+(?P<code>\d{4})\s+(?P<cmd>\w+)\s+(?P<msg>.*)")
JID_ONLY_RE = re.compile(r"^\s*(?P<jid>\d+(?:_\d+)?)\s*$")
PJDEL_OK_RE = re.compile(r"\[INFO\]\s+PJM\s+\d{4}\s+pjdel\s+Accepted job")
SUBMIT_LIMIT_RE = re.compile(
    r"(?i)number of (submitted )?jobs|submit(ted)?[- ]?(job )?limit|too many jobs"
    r"|max(imum)? (number of )?jobs|job count")
# "Cannot open the file (rscgrp=fx-debug)": the configured group or unit does not exist, which
# no job of the experiment can get past (docs/spec/pjm-formats.md#pjsub-errors).
RESOURCE_NAME_ERROR_RE = re.compile(r"Cannot open the file \((?:rscgrp|rscunit)=[^)]*\)")
TRANSIENT_RE = re.compile(
    r"(?i)cannot connect|connection|communicat|timed? ?out|temporar|try again|busy"
    r"|not respond|unavailable")

# --- states (docs/spec/pjm-formats.md#states, #end-codes) -----------------------------------

PENDING_ST = frozenset({"ACC", "QUE", "HLD", "QUEUED", "HOLD"})
RUNNING_ST = frozenset({"RNA", "RNP", "RUN", "RNE", "RNO", "SPP", "SPD", "RSM", "SIN", "RDY",
                        "SOT", "SWO", "SWD", "SWI", "RUNNING"})
ENDED_ST = frozenset({"EXT", "CCL", "RJT", "ERR", "END", "CANCEL", "ERROR"})
NODE_FAIL_PC = frozenset({9, 18, 20, 22, 25, 26, 27})
CANCEL_PC = frozenset({1, 6, 7})
TIMEOUT_PC = 11

STATUS_KEYS = ("jid", "st", "ec", "pc", "ermsg")   # ermsg last: it may contain blanks
NAME_KEYS = ("jid", "st", "jnam")
PJDEL_BATCH = 100
PJDEL_TRIES = 3               # a cancel tries this often before it reports failure
PJDEL_RETRY_S = 0.5           # first pause between tries; doubled each time

_SAFE_VALUE_RE = re.compile(r"^[A-Za-z0-9_.,:=/%+@-]+$")
_DIRECTIVE_RE = re.compile(r"^#PJM( +[A-Za-z0-9_.,:=/%+@-]+)+$")


@dataclass(frozen=True)
class PJMRow:
    """One job as ``pjstat`` reported it; missing columns are None."""

    jid: str
    st: str
    ec: int | None = None
    pc: int | None = None
    reason: str = "-"
    name: str | None = None
    group: str | None = None       # RSC_GRP, the resource group


def classify_pjsub_error(message: str) -> type[SubmitLimitReached | SchedulerUnavailable
                                               | JobRejected | SchedulerMisconfigured]:
    if RESOURCE_NAME_ERROR_RE.search(message):
        return SchedulerMisconfigured
    if SUBMIT_LIMIT_RE.search(message):
        return SubmitLimitReached
    if TRANSIENT_RE.search(message):
        return SchedulerUnavailable
    return JobRejected


def parse_pjsub(result: CommandResult) -> str:
    """The job id of a ``pjsub`` run, or the matching adapter error."""
    errors = [m for line in result.output.splitlines() if (m := ERR_RE.search(line))]
    if errors:
        text = " ".join(m.group(0).strip() for m in errors)
        error = classify_pjsub_error(text)
        if error is SubmitLimitReached:
            raise SubmitLimitReached(text)      # the scheduler's words, shown to the user
        if error is SchedulerMisconfigured:
            raise SchedulerMisconfigured(f"{text} (check rscgrp / rscunit in scheduler.options)")
        raise error(f"pjsub (rc {result.returncode}): {text}")
    found = SUBMIT_RE.search(result.stdout) or JID_ONLY_RE.match(result.stdout)
    if found:
        if result.returncode != 0:
            log.warning("pjsub exited %d but submitted job %s", result.returncode,
                        found.group("jid"))
        return found.group("jid")
    tail = result.output[-300:] or "no output"
    raise SchedulerUnavailable(f"pjsub (rc {result.returncode}) printed no job id: {tail}")


def parse_table(text: str) -> list[dict[str, str]]:
    """Rows of a ``pjstat`` table as {header: value}.

    Lines before the ``JOB_ID`` header (summary blocks, banners) are skipped. Values are cut at
    the header's column spans because START_DATE and REASON contain blanks; a row whose value
    overflows into the next column is split on blanks instead (the last column keeps its
    blanks)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.split()[:1] == ["JOB_ID"]), None)
    if start is None:
        return []
    header = lines[start]
    names = header.split()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        if all(b == 0 or len(line) <= b or line[b - 1] == " " for b in starts):
            cells = [line[b:e].strip() for b, e in zip(starts, [*starts[1:], None])]
        else:
            cells = line.split(None, len(names) - 1)
        rows.append(dict(zip(names, cells + [""] * (len(names) - len(cells)))))
    return rows


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def rows_from_table(text: str) -> list[PJMRow]:
    """PJMRows of a ``pjstat`` table (``--choose``, ``-v`` or a site's default table)."""
    rows = []
    for cells in parse_table(text):
        jid, st = cells.get("JOB_ID", ""), cells.get("ST") or cells.get("STATUS", "")
        if not re.fullmatch(r"\d+(?:_\d+|\[\d+\])?", jid) or not st:
            continue
        rows.append(PJMRow(jid=jid, st=st.upper(), ec=_int(cells.get("EC")),
                           pc=_int(cells.get("PC")), reason=cells.get("REASON") or "-",
                           name=cells.get("JOB_NAME"), group=cells.get("RSC_GRP")))
    return rows


def map_state(row: PJMRow) -> JobState:
    """Common state of one ``pjstat`` row; an ended job is judged by ST, EC, PC and REASON."""
    if row.st in PENDING_ST:
        return JobState.PENDING
    if row.st in RUNNING_ST:
        return JobState.RUNNING
    if row.st not in ENDED_ST:
        return JobState.UNKNOWN
    if row.pc in NODE_FAIL_PC:
        return JobState.NODE_FAIL
    if row.pc == TIMEOUT_PC or row.reason.startswith("ELAPSE LIMIT"):
        return JobState.TIMEOUT
    if row.st in ("CCL", "CANCEL") or row.pc in CANCEL_PC:
        return JobState.CANCELLED
    if row.st in ("EXT", "END") and row.ec == 0 and row.pc in (0, None):
        return JobState.SUCCEEDED
    return JobState.FAILED


def to_status(row: PJMRow) -> JobStatus:
    state = map_state(row)
    reason = None
    if state not in (JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED):
        ec = "-" if row.ec is None else row.ec
        pc = "-" if row.pc is None else row.pc
        reason = f"pjstat ST={row.st} EC={ec} PC={pc} REASON={row.reason}"
    elif row.reason not in ("-", ""):
        reason = row.reason            # e.g. RUNLIMIT EXCEED on a queued job
    return JobStatus(job_id=row.jid, state=state, exit_code=row.ec, reason=reason)


def format_elapse(seconds: int) -> str:
    """``-L elapse=`` value, hours unbounded (``168:00:00``)."""
    if seconds <= 0:
        raise ValueError(f"time limit must be positive, got {seconds} s")
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def unsafe_path(work_dir: Path) -> str | None:
    """Why job files under ``work_dir`` cannot be named in #PJM directives, or None."""
    if _SAFE_VALUE_RE.match(str(work_dir)):
        return None
    return (f"work_dir {str(work_dir)!r} has characters a #PJM directive cannot carry "
            "(PJM reads directives without a shell, so a space or quote cannot be escaped): "
            "choose a work_dir of letters, digits and _.,:=/%+@-")


def _safe(what: str, value: str) -> str:
    """A directive value: PJM reads directives without a shell, so no quoting can help. Every
    job of the experiment shares the run-directory root, so this stops every job."""
    if not _SAFE_VALUE_RE.match(value):
        raise SchedulerMisconfigured(
            f"PJM {what} {value!r} has characters a #PJM directive cannot carry "
            "(a space or quote in work_dir?)")
    return value


class PJMScheduler(CommandLineScheduler):
    kind = "pjm"
    commands = ("pjsub", "pjstat", "pjdel")
    script_name = SCRIPT_NAME
    unknown_reason = "in neither pjstat nor pjstat -H"

    def __init__(self, *, rscgrp: str, rscunit: str | None = None, gpus: int | None = None,
                 extra_directives: Sequence[str] = (), merge_output: bool = False,
                 history_days: int = 7, commands_dir: str | os.PathLike[str] | None = None,
                 command_timeout_s: float = DEFAULT_TIMEOUT_S,
                 env: Mapping[str, str] | None = None) -> None:
        """``gpus`` overrides the job's own GPU count (cx-share wants ``-L gpu=1``);
        ``commands_dir`` holds pjsub/pjstat/pjdel (default: found on PATH); ``env`` replaces
        the environment of those commands."""
        super().__init__(command_timeout_s=command_timeout_s, commands_dir=commands_dir, env=env)
        for what, value in (("rscgrp", rscgrp), ("rscunit", rscunit)):
            if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", value):
                raise SchedulerOptionError(what, f"{what}: invalid PJM name {value!r}")
        if gpus is not None and gpus < 0:
            raise SchedulerOptionError("gpus", f"gpus must be >= 0, got {gpus}")
        for line in extra_directives:
            if not _DIRECTIVE_RE.match(line):
                raise SchedulerOptionError(
                    "extra_directives", f"extra_directives: {line!r} is not '#PJM <safe words>'")
        if history_days < 1:
            raise SchedulerOptionError("history_days",
                                       f"history_days must be >= 1, got {history_days}")
        self.rscgrp, self.rscunit, self.gpus = rscgrp, rscunit, gpus
        self.extra_directives = tuple(extra_directives)
        self.merge_output = merge_output
        self.history_days = history_days

    # -- the job script

    def directives(self, spec: JobSpec) -> str:
        lines = [f"#PJM -N {spec.name}"]
        if self.rscunit:
            lines.append(f"#PJM -L rscunit={self.rscunit}")
        lines.append(f"#PJM -L rscgrp={self.rscgrp}")
        gpus = spec.gpus if self.gpus is None else self.gpus
        if gpus:
            lines.append(f"#PJM -L gpu={gpus}")
        if spec.time_limit_s is not None:
            lines.append(f"#PJM -L elapse={format_elapse(spec.time_limit_s)}")
        lines.append(f"#PJM -o {_safe('stdout path', str(spec.stdout_path))}")
        if self.merge_output:
            lines.append("#PJM -j")
        else:
            lines.append(f"#PJM -e {_safe('stderr path', str(spec.stderr_path))}")
        return "\n".join([*lines, *self.extra_directives])

    # -- check

    def work_dir_problem(self, work_dir: Path) -> str | None:
        return unsafe_path(work_dir)

    def probe_args(self) -> tuple[str, Sequence[str]]:
        return "pjstat", ["-v", "--choose", "jid,st"]

    def check(self, *, work_dir: Path | None = None) -> list[str]:
        problems = super().check(work_dir=work_dir)
        return problems or self._resource_group_problems()

    def _resource_group_problems(self) -> list[str]:
        """The configured group against ``pjstat --rsc``; sites without that listing (or a
        listing this parser does not know) get no verdict rather than a wrong one."""
        try:
            result = self.run("pjstat", ["--rsc"])
        except SchedulerError:
            return []
        groups = resource_groups(result.stdout) if result.returncode == 0 else None
        if not groups or self.rscgrp in groups:
            return []
        listed = ", ".join(sorted(groups))
        return [f"rscgrp {self.rscgrp!r} is not a resource group of this system "
                f"(pjstat --rsc lists {listed})"]

    # -- the interface

    def submit(self, spec: JobSpec) -> str:
        script = self.write_script(spec)
        return parse_pjsub(self.run("pjsub", [str(script)], cwd=spec.workdir))

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(job_ids))
        for i in range(0, len(ids), PJDEL_BATCH):
            self._pjdel(ids[i:i + PJDEL_BATCH])

    def _pjdel(self, batch: Sequence[str]) -> None:
        """One batch, retried when the job manager could not be reached: a ``pjdel`` of a job
        already cancelled answers "does not exist", so a retry is harmless."""
        for attempt in range(PJDEL_TRIES):
            result = self.run("pjdel", batch)
            # unknown or finished jobs answer [ERR.] per job: fine, cancel is idempotent;
            # but a failure to reach the job manager, or no answer at all, is not
            errors = [m.group(0) for m in map(ERR_RE.search, result.output.splitlines()) if m]
            understood = PJDEL_OK_RE.search(result.output) or errors
            if not any(TRANSIENT_RE.search(e) for e in errors) and (
                    result.returncode == 0 or understood):
                return
            if attempt + 1 < PJDEL_TRIES:
                time.sleep(PJDEL_RETRY_S * 2 ** attempt)
        raise SchedulerUnavailable(f"pjdel failed {PJDEL_TRIES} times (rc {result.returncode}): "
                                   f"{result.output[-300:]}")

    # -- queries

    def _pjstat(self, keys: Sequence[str], *, history: bool,
                extra: Sequence[str] = ()) -> list[PJMRow]:
        args = ["-v", *(["-H", f"day={self.history_days}"] if history else []),
                "--choose", ",".join(keys), *extra]
        result = self.run("pjstat", args)
        error = next((m.group(0) for m in map(ERR_RE.search, result.output.splitlines()) if m),
                     None)
        if result.returncode != 0 or error:
            raise SchedulerUnavailable(
                f"pjstat failed (rc {result.returncode}): {error or result.output[-300:]}")
        return rows_from_table(result.stdout)

    def user_active_jobs(self) -> int:
        """This user's unfinished jobs in the resource group (pjstat lists only one's own);
        without an RSC_GRP column, every unfinished job of the user (docs/spec/pjm-formats.md)."""
        rows = self._pjstat(("jid", "st", "ec", "pc", "rscg"), history=False)
        return sum(not map_state(r).terminal for r in rows if r.group in (None, self.rscgrp))

    def _live(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        return {r.jid: to_status(r) for r in self._pjstat(STATUS_KEYS, history=False)}

    def _history(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        return {r.jid: to_status(r) for r in self._pjstat(STATUS_KEYS, history=True)}

    def _names_live(self, names: Sequence[str]) -> list[tuple[str, str]]:
        return self._named(names, history=False)

    def _names_history(self, names: Sequence[str]) -> list[tuple[str, str]]:
        return self._named(names, history=True)

    def _named(self, names: Sequence[str], *, history: bool) -> list[tuple[str, str]]:
        rows = self._pjstat(NAME_KEYS, history=history)
        found = [(r.name, r.jid) for r in rows if r.name is not None and r.name in names]
        exact = {name for name, _ in found}
        seen = {r.name for r in rows if r.name}
        # a name seen only as a prefix may have been cut by pjstat: ask for it by full name
        for name in names:
            if name not in exact and any(len(s) < len(name) and name.startswith(s) for s in seen):
                found += [(name, r.jid) for r in self._pjstat(
                    NAME_KEYS, history=history, extra=["--filter", f"jnam={name}"])]
        return found


def resource_groups(text: str) -> set[str] | None:
    """Resource-group names of ``pjstat --rsc`` (docs/spec/pjm-formats.md#pjstat---rsc): the
    ``name [STATE,...]`` cells under the RSCGRP header; None if there is no such header."""
    lines = text.splitlines()
    header = next((line for line in lines if re.search(r"\bRSCGRP\b", line)), None)
    if header is None:
        return None
    column = header.index("RSCGRP")
    groups: set[str] = set()
    for line in lines[lines.index(header) + 1:]:
        groups.update(m.group(1) for m in re.finditer(r"(\S+)\s*\[[A-Z,]+\]", line)
                      if m.start() >= column - 2)
    return groups
