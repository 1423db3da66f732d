"""Grid Engine (Son of Grid Engine 8.1.x) through DRMAA v1, with the SGE command line for queries.

Why both: DRMAA submits and cancels well, but it only has a per-job ``jobStatus`` that knows
nothing of jobs which ended while no session was attached. A restarted master must still learn
how those jobs ended, so ``status`` and ``find_by_name`` ask ``qstat -xml`` once for the live
queue and ``qacct`` once for the rest (the accounting file, written when a job ends).

Restart: the DRMAA session's contact string is kept in ``state_dir``; a new adapter re-attaches
to the same session with it instead of opening (and leaking) a new one each time.

Grid Engine's accounting does not say who killed a job, so the adapter records the ids it was
asked to cancel (in ``state_dir`` when given) to tell a cancellation from a crash by signal.

The ``drmaa`` package loads libdrmaa on import, so it is imported only when a session is
needed: the rest of the project works on machines without Grid Engine.
"""
from __future__ import annotations

import getpass
import logging
import os
import re
import shlex
import signal
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from .base import (JobRejected, JobSpec, JobState, JobStatus, Scheduler, SchedulerError,
                   SchedulerOptionError, SchedulerUnavailable, SubmitLimitReached,
                   render_script)
from .commands import DEFAULT_TIMEOUT_S, CommandResult, command_problem, probe, run_command

log = logging.getLogger(__name__)

T = TypeVar("T")

SCRIPT_NAME = "drmaa-job.sh"
CONTACT_FILE = "drmaa-contact"
CANCELLED_FILE = "drmaa-cancelled"

# Options the adapter derives from the JobSpec, or that break "one submit = one job that runs":
# a native specification may not carry them.
RESERVED_OPTIONS = frozenset({
    "-N", "-o", "-e", "-j", "-wd", "-cwd", "-b", "-S", "-shell", "-sync", "-terse", "-@", "-C",
    "-h", "-t", "-now", "-notify",
})
# Characters libdrmaa's native-specification splitter does not quote: a token must avoid them.
UNSAFE_TOKEN_RE = re.compile(r"[\s'\"\\\x00]")
RESOURCE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
H_RT_RE = re.compile(r"(?:^|[\s,])h_rt=([0-9:]+)")

# qacct's "nothing there" answers (exit status 1): a job id or name without a record, or no
# accounting file yet on a fresh cluster.
QACCT_EMPTY_RE = re.compile(r"error: job (?:id|name) \S+ not found|no jobs running since startup",
                            re.IGNORECASE)
# Grid Engine's words when a per-user or global job limit refuses a submission.
SUBMIT_LIMIT_RE = re.compile(r"jobs are allowed|max_u_jobs|max_jobs", re.IGNORECASE)

# qacct "failed" codes: 37 = qmaster enforced h_rt/h_cpu/h_vmem; codes below 26 are execd or
# shepherd failures before or around the job's start (the program never ran properly),
# 26 and above are the job's own set-up errors (output file, shell, working directory).
FAILED_LIMIT_ENFORCED = 37
FAILED_AFTER_JOB = 100         # "assumedly after job": the job died by a signal (qdel, or its own)
FIRST_JOB_SETUP_FAILURE = 26
ACCOUNTING_TIME_FORMAT = "%a %b %d %H:%M:%S %Y"


# ---------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class LiveJob:
    """One row of ``qstat -xml``."""

    job_id: str
    name: str
    state: str                     # Grid Engine's letters: qw, hqw, r, t, Eqw, dr, ...
    node: str | None = None
    started_at: float | None = None


@dataclass(frozen=True)
class AccountingRecord:
    """One record of ``qacct -j``."""

    job_id: str
    name: str
    failed: int
    failed_text: str
    exit_status: int
    node: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    wallclock_s: float | None = None
    h_rt_s: float | None = None    # the requested wall-clock limit, from the job's category


def parse_qstat_xml(text: str) -> list[LiveJob]:
    """Jobs of ``qstat -xml`` (running ones under queue_info, waiting ones under job_info)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"unreadable qstat -xml output: {exc}") from None
    jobs = []
    for row in root.iter("job_list"):
        job_id = (row.findtext("JB_job_number") or "").strip()
        if not job_id:
            raise ValueError("qstat -xml row without JB_job_number")
        queue = (row.findtext("queue_name") or "").strip()
        start = (row.findtext("JAT_start_time") or "").strip()
        jobs.append(LiveJob(job_id=job_id, name=(row.findtext("JB_name") or "").strip(),
                            state=(row.findtext("state") or "").strip(),
                            node=queue.partition("@")[2] or None,
                            started_at=datetime.fromisoformat(start).timestamp() if start else None))
    return jobs


def parse_qacct(text: str) -> list[AccountingRecord]:
    """Records of ``qacct -j``, in file order (a later record of one job id is the newer one)."""
    records = []
    for block in re.split(r"^=+\s*$", text, flags=re.MULTILINE):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                fields[key] = value.strip()
        if "jobnumber" in fields:
            records.append(_accounting_record(fields))
    return records


def _accounting_record(fields: dict[str, str]) -> AccountingRecord:
    failed_code, _, failed_text = fields.get("failed", "0").partition(":")
    h_rt = H_RT_RE.search(fields.get("category", ""))
    return AccountingRecord(
        job_id=fields["jobnumber"], name=fields.get("jobname", ""),
        failed=int(failed_code.strip()), failed_text=failed_text.strip(),
        exit_status=int(fields.get("exit_status", "0").split()[0]),
        node=fields.get("hostname") or None,
        started_at=_accounting_time(fields.get("start_time", "")),
        ended_at=_accounting_time(fields.get("end_time", "")),
        wallclock_s=float(fields["ru_wallclock"].rstrip("s")) if "ru_wallclock" in fields else None,
        h_rt_s=parse_duration(h_rt.group(1)) if h_rt else None)


def _accounting_time(text: str) -> float | None:
    # a job that never started has "-/-"
    try:
        return datetime.strptime(text, ACCOUNTING_TIME_FORMAT).timestamp()
    except ValueError:
        return None


def parse_duration(text: str) -> float:
    """Grid Engine time values: ``[[hours:]minutes:]seconds``."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part or 0)
    return total


def parse_error_reasons(text: str) -> dict[str, str]:
    """Job id -> the last "error reason" of ``qstat -j id,...`` (why a job sits in Eqw)."""
    reasons: dict[str, str] = {}
    job_id = None
    for line in text.splitlines():
        if line.startswith("job_number:"):
            job_id = line.split(":", 1)[1].strip()
        elif line.startswith("error reason") and job_id:
            message = line.split(":", 1)[1].strip()
            # drop the "11/29/2026 00:07:38 [0:6505]: " prefix
            reasons[job_id] = re.sub(r"^\S+ \S+ \[[^\]]*\]:\s*", "", message)
    return reasons


# ---------------------------------------------------------------------------- state mapping

def live_status(job: LiveJob, error_reason: str | None = None) -> JobStatus:
    """A job still in ``qstat``. Eqw jobs stay there until deleted: they count as failed."""
    if "E" in job.state:
        return JobStatus(job.job_id, JobState.FAILED, node=job.node,
                         reason=f"Grid Engine error state {job.state}: {error_reason or 'see qstat -j'}")
    # r running, t transferring, s/S/T suspended; "Rq" (requeued) is pending, "Rr" running
    running = any(letter in job.state for letter in "rtsST")
    return JobStatus(job.job_id, JobState.RUNNING if running else JobState.PENDING,
                     node=job.node, started_at=job.started_at, reason=job.state)


def finished_status(record: AccountingRecord, *, cancelled: bool) -> JobStatus:
    """A job from ``qacct``; ``cancelled`` when this adapter was asked to cancel it."""
    state, reason = _finished_state(record, cancelled)
    return JobStatus(record.job_id, state, exit_code=record.exit_status, reason=reason,
                     node=record.node, started_at=record.started_at, ended_at=record.ended_at)


def _finished_state(record: AccountingRecord, cancelled: bool) -> tuple[JobState, str | None]:
    killed_by = _signal_name(record.exit_status)
    if record.failed == 0 and record.exit_status == 0:
        return JobState.SUCCEEDED, None
    if record.failed == FAILED_LIMIT_ENFORCED or (
            killed_by == "SIGKILL" and record.h_rt_s is not None
            and record.wallclock_s is not None and record.wallclock_s >= record.h_rt_s):
        limit = f" h_rt={record.h_rt_s:g} s" if record.h_rt_s is not None else ""
        return JobState.TIMEOUT, f"limit{limit} exceeded: {record.failed_text or 'killed by SIGKILL'}"
    failure = f"Grid Engine failure {record.failed}: {record.failed_text}"
    if 0 < record.failed < FIRST_JOB_SETUP_FAILURE:
        return JobState.NODE_FAIL, failure
    if record.failed not in (0, FAILED_AFTER_JOB):
        return JobState.FAILED, failure          # the job's set-up failed before a cancel could matter
    if cancelled:
        return JobState.CANCELLED, "cancelled"
    if killed_by:
        return JobState.FAILED, f"killed by {killed_by}"
    return JobState.FAILED, f"exit status {record.exit_status}"


def _signal_name(exit_status: int) -> str | None:
    # Grid Engine reports death by signal N as exit status 128 + N
    if exit_status <= 128:
        return None
    try:
        return signal.Signals(exit_status - 128).name
    except ValueError:
        return f"signal {exit_status - 128}"


def vanished_status(job_id: str, *, cancelled: bool) -> JobStatus:
    """Neither in qstat nor in qacct: deleted before it ran (no accounting record) or unknown."""
    if cancelled:
        return JobStatus(job_id, JobState.CANCELLED, reason="cancelled before it ran")
    return JobStatus(job_id, JobState.UNKNOWN, reason="neither in qstat nor in qacct")


def parse_native_specification(text: str) -> tuple[str, ...]:
    """Split and check a native specification; SchedulerOptionError names the offending part."""
    if "\n" in text or "\x00" in text:
        raise _bad_native("native_specification must be one line")
    try:
        tokens = tuple(shlex.split(text))
    except ValueError as exc:
        raise _bad_native(f"native_specification {text!r}: {exc}") from None
    if tokens and not tokens[0].startswith("-"):
        raise _bad_native(f"native_specification must start with an option, not {tokens[0]!r}")
    for index, token in enumerate(tokens):
        if UNSAFE_TOKEN_RE.search(token):
            raise _bad_native(f"native_specification token {token!r} contains a space, quote "
                              "or backslash")
        if token in RESERVED_OPTIONS:
            raise _bad_native(f"native_specification may not contain {token}: "
                              "the adapter sets it from the job")
        if index > 0 and tokens[index - 1] == "-l" and H_RT_RE.search(token):
            raise _bad_native("native_specification may not set h_rt: use the job's time limit")
    return tokens


def _bad_native(message: str) -> SchedulerOptionError:
    return SchedulerOptionError("native_specification", message)


# ---------------------------------------------------------------------------- adapter

class DRMAAScheduler(Scheduler):
    """Grid Engine through DRMAA. Needs SGE_ROOT, SGE_CELL and DRMAA_LIBRARY_PATH in the
    environment for submit and cancel; status and find_by_name use only qstat and qacct."""

    kind = "drmaa"

    def __init__(self, *, native_specification: str = "", state_dir: str | Path | None = None,
                 command_timeout_s: float = DEFAULT_TIMEOUT_S,
                 parallel_environment: str | None = "smp", gpu_resource: str | None = None,
                 user: str | None = None) -> None:
        if command_timeout_s <= 0:
            raise SchedulerOptionError("command_timeout_s", "command_timeout_s must be positive")
        for option, value in (("parallel_environment", parallel_environment),
                              ("gpu_resource", gpu_resource)):
            if value is not None and not RESOURCE_NAME_RE.match(value):
                raise SchedulerOptionError(option, f"{option} {value!r} is not a Grid Engine name")
        self.native_options = parse_native_specification(native_specification)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.command_timeout_s = command_timeout_s
        self.parallel_environment = parallel_environment
        self.gpu_resource = gpu_resource
        self.user = user or getpass.getuser()
        self.calls: Counter[str] = Counter()   # command or DRMAA call -> invocations
        self._drmaa: ModuleType | None = None
        self._session_open = False
        self._cancelled: set[str] = set()
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def check(self, *, work_dir: Path | None = None) -> list[str]:
        problems = [p for c in ("qstat", "qacct") if (p := command_problem(c))]
        if not problems:
            answer = probe(["qstat", "-xml", "-u", self.user])
            problems += [answer] if answer else []
        try:
            _load_drmaa()
        except SchedulerError as exc:
            problems.append(str(exc))
        return problems

    # ------------------------------------------------------------------ submit / cancel

    def submit(self, spec: JobSpec) -> str:
        """Single shot: any failure raises; the caller reconciles with find_by_name."""
        options = self._job_options(spec)
        script = spec.workdir / SCRIPT_NAME
        directives = f"# native specification: {' '.join(options) or '(none)'}"
        script.write_text(render_script(_template(), spec=spec, directives=directives))
        script.chmod(0o700)
        drmaa = self._session()
        template = drmaa.Session.createJobTemplate()
        try:
            template.remoteCommand = "/bin/bash"
            template.args = [str(script)]
            template.jobName = spec.name
            template.workingDirectory = str(spec.workdir)
            template.outputPath = f":{spec.stdout_path}"
            template.errorPath = f":{spec.stderr_path}"
            template.joinFiles = False
            if options:
                template.nativeSpecification = " ".join(options)
            job_id = self._with_timeout("runJob", drmaa.Session.runJob, template)
        except SchedulerUnavailable:
            raise      # runJob may still hold the template: leak it rather than free it under it
        except drmaa.errors.DrmaaException as exc:
            drmaa.Session.deleteJobTemplate(template)
            raise _submit_error(drmaa, spec.name, exc) from None
        drmaa.Session.deleteJobTemplate(template)
        log.info("submitted %s as Grid Engine job %s", spec.name, job_id)
        return str(job_id)

    def _job_options(self, spec: JobSpec) -> list[str]:
        options = list(self.native_options)
        if spec.time_limit_s is not None:
            # SGE's libdrmaa refuses hardWallclockTimeLimit (InvalidArgumentException)
            options += ["-l", f"h_rt={int(spec.time_limit_s)}"]
        if spec.cpus > 1:
            if not self.parallel_environment:
                raise JobRejected(f"{spec.name}: {spec.cpus} cpus need a parallel_environment")
            options += ["-pe", self.parallel_environment, str(spec.cpus)]
        if spec.gpus > 0:
            if not self.gpu_resource:
                raise JobRejected(f"{spec.name}: {spec.gpus} gpus need a gpu_resource")
            options += ["-l", f"{self.gpu_resource}={spec.gpus}"]
        return options

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return
        self._remember_cancelled(ids)
        drmaa = self._session()
        for job_id in ids:
            try:
                self._with_timeout("control", drmaa.Session.control, job_id,
                                   drmaa.JobControlAction.TERMINATE)
            except drmaa.errors.InvalidJobException:
                pass       # already ended or never existed: nothing left to cancel
            except drmaa.errors.DrmaaException as exc:
                raise SchedulerUnavailable(
                    f"cancelling Grid Engine job {job_id} failed: {_one_line(exc)}") from None

    # ------------------------------------------------------------------ queries

    def status(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return {}
        live = {job.job_id: job for job in self._live_jobs()}
        in_error = [job_id for job_id in ids if job_id in live and "E" in live[job_id].state]
        reasons = self._error_reasons(in_error) if in_error else {}
        result = {job_id: live_status(live[job_id], reasons.get(job_id))
                  for job_id in ids if job_id in live}
        missing = [job_id for job_id in ids if job_id not in live]
        if missing:
            wanted = set(missing)
            history = self._accounting(missing[0] if len(missing) == 1 else None)
            records = {rec.job_id: rec for rec in history if rec.job_id in wanted}
            cancelled = self._cancelled_ids()
            for job_id in missing:
                record = records.get(job_id)
                result[job_id] = (finished_status(record, cancelled=job_id in cancelled) if record
                                  else vanished_status(job_id, cancelled=job_id in cancelled))
        return result

    def find_by_name(self, names: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        # the newest job wins should a name ever be live twice
        live = sorted(self._live_jobs(), key=lambda job: int(job.job_id))
        found = {job.name: job.job_id for job in live if job.name in wanted}
        missing = [name for name in wanted if name not in found]
        if missing:
            # qacct -j reads "1abc" as job id 1; SGE refuses such names, but never ask for one
            single = missing[0] if len(missing) == 1 and not missing[0][0].isdigit() else None
            for record in self._accounting(single):
                if record.name in missing:
                    found[record.name] = record.job_id
        return found

    def _live_jobs(self) -> list[LiveJob]:
        result = self._query(["qstat", "-xml", "-u", self.user])
        if result.returncode != 0:
            raise SchedulerUnavailable(
                f"qstat failed (exit {result.returncode}): {_first_line(result.output)}")
        try:
            return parse_qstat_xml(result.stdout)
        except ValueError as exc:
            raise SchedulerUnavailable(str(exc)) from None

    def _accounting(self, job: str | None) -> list[AccountingRecord]:
        """qacct records of one job id or name, or of all this user's jobs when ``job`` is None."""
        argv = ["qacct", "-j", job] if job else ["qacct", "-o", self.user, "-j", "*"]
        result = self._query(argv)
        if result.returncode != 0:
            if QACCT_EMPTY_RE.search(result.output):
                return []
            raise SchedulerUnavailable(
                f"qacct failed (exit {result.returncode}): {_first_line(result.output)}")
        try:
            return parse_qacct(result.stdout)
        except (ValueError, KeyError) as exc:
            raise SchedulerUnavailable(f"unreadable qacct output: {exc}") from None

    def _error_reasons(self, job_ids: list[str]) -> dict[str, str]:
        result = self._query(["qstat", "-j", ",".join(job_ids)])
        # a job deleted since the first qstat is no reason to fail the whole query
        return parse_error_reasons(result.stdout) if result.returncode == 0 else {}

    def _query(self, argv: list[str]) -> CommandResult:
        self.calls[argv[0]] += 1
        return run_command(argv, timeout=self.command_timeout_s)

    # ------------------------------------------------------------------ DRMAA session

    def _session(self) -> ModuleType:
        """The drmaa module with this process's session open (re-attached when a contact is kept)."""
        drmaa = self._drmaa or _load_drmaa()
        self._drmaa = drmaa
        if self._session_open:
            return drmaa
        contact = self._saved_contact()
        try:
            if contact:
                try:
                    self._with_timeout("initialize", drmaa.Session.initialize, contact)
                except drmaa.errors.AlreadyActiveSessionException:
                    raise
                except drmaa.errors.DrmaaException as exc:
                    log.warning("cannot re-attach to DRMAA session %s (%s): opening a new one",
                                contact, _one_line(exc))
                    self._with_timeout("initialize", drmaa.Session.initialize)
            else:
                self._with_timeout("initialize", drmaa.Session.initialize)
        except drmaa.errors.AlreadyActiveSessionException:
            raise SchedulerError("a DRMAA session is already open in this process "
                                 "(DRMAA allows one): close() the other DRMAAScheduler first") from None
        except drmaa.errors.DrmaaException as exc:
            raise SchedulerUnavailable(f"DRMAA session could not start: {_one_line(exc)}") from None
        self._session_open = True
        self._save_contact(drmaa.Session.contact)
        return drmaa

    @property
    def contact(self) -> str | None:
        """The open session's contact string (None before the first submit or cancel)."""
        return self._drmaa.Session.contact if self._session_open and self._drmaa else None

    def close(self) -> None:
        """End the DRMAA session; its jobs keep running and a later session can re-attach."""
        if self._session_open and self._drmaa is not None:
            try:
                self._drmaa.Session.exit()
            except self._drmaa.errors.DrmaaException as exc:
                log.warning("closing the DRMAA session failed: %s", _one_line(exc))
        self._session_open = False

    def _with_timeout(self, what: str, call: Callable[..., T], *args: Any) -> T:
        """libdrmaa calls have no timeout of their own: a hung qmaster would hang the master."""
        self.calls[f"drmaa.{what}"] += 1
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["value"] = call(*args)
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc

        worker = threading.Thread(target=target, name=f"drmaa-{what}", daemon=True)
        worker.start()
        worker.join(self.command_timeout_s)
        if worker.is_alive():
            raise SchedulerUnavailable(
                f"DRMAA {what} did not answer within {self.command_timeout_s:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    # ------------------------------------------------------------------ state_dir files

    def _saved_contact(self) -> str | None:
        if self.state_dir is None:
            return None
        try:
            return (self.state_dir / CONTACT_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _save_contact(self, contact: str) -> None:
        if self.state_dir is None:
            return
        path = self.state_dir / CONTACT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(contact + "\n")
        os.replace(tmp, path)

    def _remember_cancelled(self, job_ids: list[str]) -> None:
        self._cancelled.update(job_ids)
        if self.state_dir is not None:
            with open(self.state_dir / CANCELLED_FILE, "a") as out:
                out.write("".join(f"{job_id}\n" for job_id in job_ids))

    def _cancelled_ids(self) -> set[str]:
        if self.state_dir is None:
            return set(self._cancelled)
        try:
            return self._cancelled | set((self.state_dir / CANCELLED_FILE).read_text().split())
        except FileNotFoundError:
            return set(self._cancelled)


# ---------------------------------------------------------------------------- helpers

def _load_drmaa() -> ModuleType:
    try:
        import drmaa  # noqa: PLC0415 - loads libdrmaa, so only when a session is needed
    except ImportError as exc:
        raise SchedulerUnavailable(f"the drmaa package is not installed: {exc}") from None
    except (OSError, RuntimeError) as exc:
        raise SchedulerUnavailable(
            f"libdrmaa could not be loaded (set DRMAA_LIBRARY_PATH, SGE_ROOT and, for the static TLS "
            f"error, GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096): {_one_line(exc)}") from None
    return drmaa


def _submit_error(drmaa: ModuleType, name: str, exc: Exception) -> SchedulerError:
    text = f"{name}: Grid Engine refused the job: {_one_line(exc)}"
    errors = drmaa.errors
    if SUBMIT_LIMIT_RE.search(str(exc)):
        return SubmitLimitReached(text)       # SGE raises it as TryLaterException (code 16)
    if isinstance(exc, (errors.DeniedByDrmException, errors.InvalidAttributeValueException,
                        errors.InvalidAttributeFormatException,
                        errors.ConflictingAttributeValuesException, errors.InvalidArgumentException,
                        errors.UnsupportedAttributeException, errors.InvalidJobTemplateException)):
        return JobRejected(text)
    return SchedulerUnavailable(f"{name}: submission failed: {_one_line(exc)}")


def _template() -> str:
    return resources.files(__package__).joinpath("templates", "drmaa.sh").read_text()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "(no output)")
