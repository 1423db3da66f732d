"""Grid Engine (Son of Grid Engine 8.1.x) through DRMAA v1, with the SGE command line for queries.

Why both: DRMAA submits and cancels well, but it only has a per-job ``jobStatus`` that knows
nothing of jobs which ended while no session was attached. A restarted master must still learn
how those jobs ended, so ``status`` and ``find_by_name`` ask ``qstat -xml`` once for the live
queue and ``qacct`` once for the rest (the accounting file, written when a job ends).

Restart: the DRMAA session's contact string is kept in ``state_dir``; a new adapter re-attaches
to the same session with it instead of opening (and leaking) a new one each time.

Grid Engine's accounting does not say who killed a job, so the adapter records the ids it was
asked to cancel (in ``state_dir`` when given) to tell a cancellation from a crash by signal.

The ``drmaa`` package loads libdrmaa on import, so it is imported (by ``libdrmaa.load_drmaa``,
which keeps libdrmaa's jemalloc away from C++ code) only when a session is needed: the rest of
the project works on machines without Grid Engine.
"""
from __future__ import annotations

import getpass
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from ._files import write_atomic
from .base import (
    JobRejected,
    JobSpec,
    JobStatus,
    SchedulerError,
    SchedulerOptionError,
    SchedulerUnavailable,
    SubmitLimitReached,
)
from .cli_base import CommandLineScheduler
from .commands import DEFAULT_TIMEOUT_S
from .libdrmaa import call_with_timeout, load_drmaa, one_line
from .sge_formats import (
    RESOURCE_NAME_RE,
    AccountingRecord,
    LiveJob,
    finished_status,
    live_status,
    parse_error_reasons,
    parse_native_specification,
    parse_qacct,
    parse_qstat_xml,
    vanished_status,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

SCRIPT_NAME = "drmaa-job.sh"
CONTACT_FILE = "drmaa-contact"
CANCELLED_FILE = "drmaa-cancelled"
CANCEL_TRIES = 3               # a cancel tries this often before it reports failure
CANCEL_RETRY_S = 0.5           # first pause between tries; doubled each time

# qacct's "nothing there" answers (exit status 1): a job id or name without a record, or no
# accounting file yet on a fresh cluster.
QACCT_EMPTY_RE = re.compile(r"error: job (?:id|name) \S+ not found|no jobs running since startup",
                            re.IGNORECASE)
# Grid Engine's words when a per-user or global job limit refuses a submission.
SUBMIT_LIMIT_RE = re.compile(r"jobs are allowed|max_u_jobs|max_jobs", re.IGNORECASE)

# ---------------------------------------------------------------------------- adapter

class DRMAAScheduler(CommandLineScheduler):
    """Grid Engine through DRMAA. Needs SGE_ROOT, SGE_CELL and DRMAA_LIBRARY_PATH in the
    environment for submit and cancel; status and find_by_name use only qstat and qacct."""

    kind = "drmaa"
    commands = ("qstat", "qacct")
    script_name = SCRIPT_NAME

    def __init__(self, *, native_specification: str = "", state_dir: str | Path | None = None,
                 command_timeout_s: float = DEFAULT_TIMEOUT_S,
                 parallel_environment: str | None = "smp", gpu_resource: str | None = None,
                 user: str | None = None) -> None:
        if command_timeout_s <= 0:
            raise SchedulerOptionError("command_timeout_s", "command_timeout_s must be positive")
        super().__init__(command_timeout_s=command_timeout_s)
        for option, value in (("parallel_environment", parallel_environment),
                              ("gpu_resource", gpu_resource)):
            if value is not None and not RESOURCE_NAME_RE.match(value):
                raise SchedulerOptionError(option, f"{option} {value!r} is not a Grid Engine name")
        self.native_options = parse_native_specification(native_specification)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.parallel_environment = parallel_environment
        self.gpu_resource = gpu_resource
        self.user = user or getpass.getuser()
        self._drmaa: ModuleType | None = None
        self._session_open = False
        self._contact = ""
        self._cancelled: set[str] = set()
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def probe_args(self) -> tuple[str, Sequence[str]]:
        return "qstat", ["-xml", "-u", self.user]

    def check(self, *, work_dir: Path | None = None) -> list[str]:
        problems = super().check(work_dir=work_dir)
        try:
            load_drmaa()
        except SchedulerError as exc:
            problems.append(str(exc))
        return problems

    # ------------------------------------------------------------------ submit / cancel

    def directives(self, spec: JobSpec) -> str:
        options = " ".join(self._job_options(spec)) or "(none)"
        return ("# Submitted through DRMAA: Grid Engine does not read directives from this file,\n"
                "# the options below went in as the job template's native specification.\n"
                f"# native specification: {options}")

    def submit(self, spec: JobSpec) -> str:
        """Single shot: any failure raises; the caller reconciles with find_by_name."""
        options = self._job_options(spec)
        script = self.write_script(spec)
        drmaa = self._session()
        try:
            job_id = self._call("runJob", _run_job, drmaa, spec, script, options)
        except drmaa.errors.DrmaaException as exc:
            raise _submit_error(drmaa, spec.name, exc) from None
        log.info("submitted %s as Grid Engine job %s", spec.name, job_id)
        return job_id

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
            self._terminate(drmaa, job_id)

    def _terminate(self, drmaa: ModuleType, job_id: str) -> None:
        """One job, tried CANCEL_TRIES times: a qmaster that did not answer may next time."""
        for attempt in range(CANCEL_TRIES):
            try:
                self._call("control", drmaa.Session.control, job_id,
                           drmaa.JobControlAction.TERMINATE)
                return
            except drmaa.errors.InvalidJobException:
                return     # already ended or never existed: nothing left to cancel
            except (drmaa.errors.DrmaaException, SchedulerUnavailable) as exc:
                if attempt + 1 == CANCEL_TRIES:
                    raise SchedulerUnavailable(f"cancelling Grid Engine job {job_id} failed "
                                               f"{CANCEL_TRIES} times: {one_line(exc)}") from None
                time.sleep(CANCEL_RETRY_S * 2 ** attempt)

    # ------------------------------------------------------------------ queries

    def _live(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        live = {job.job_id: job for job in self._live_jobs() if job.job_id in ids}
        in_error = [job_id for job_id, job in live.items() if "E" in job.state]
        reasons = self._error_reasons(in_error) if in_error else {}
        return {job_id: live_status(job, reasons.get(job_id)) for job_id, job in live.items()}

    def _history(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        wanted = set(ids)
        cancelled = self._cancelled_ids()
        records = [r for r in self._accounting(ids[0] if len(ids) == 1 else None)
                   if r.job_id in wanted]
        # in file order: a later record of one id (a rerun) replaces the earlier one
        return {r.job_id: finished_status(r, cancelled=r.job_id in cancelled) for r in records}

    def _unknown(self, job_id: str) -> JobStatus:
        return vanished_status(job_id, cancelled=job_id in self._cancelled_ids())

    def _names_live(self, names: Sequence[str]) -> list[tuple[str, str]]:
        return [(job.name, job.job_id) for job in self._live_jobs()]

    def _names_history(self, names: Sequence[str]) -> list[tuple[str, str]]:
        # qacct -j reads "1abc" as job id 1; SGE refuses such names, but never ask for one
        single = names[0] if len(names) == 1 and not names[0][0].isdigit() else None
        return [(record.name, record.job_id) for record in self._accounting(single)]

    def _live_jobs(self) -> list[LiveJob]:
        result = self.run("qstat", ["-xml", "-u", self.user])
        if result.returncode != 0:
            raise SchedulerUnavailable(
                f"qstat failed (exit {result.returncode}): {_first_line(result.output)}")
        try:
            return parse_qstat_xml(result.stdout)
        except ValueError as exc:
            raise SchedulerUnavailable(str(exc)) from None

    def _accounting(self, job: str | None) -> list[AccountingRecord]:
        """qacct records of one job id or name, or of all this user's jobs when ``job`` is None."""
        result = self.run("qacct", ["-j", job] if job else ["-o", self.user, "-j", "*"])
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
        result = self.run("qstat", ["-j", ",".join(job_ids)])
        # a job deleted since the first qstat is no reason to fail the whole query
        return parse_error_reasons(result.stdout) if result.returncode == 0 else {}

    # ------------------------------------------------------------------ DRMAA session

    def _session(self) -> ModuleType:
        """The drmaa module with this process's session open (re-attached when a contact is kept)."""
        drmaa = self._drmaa or load_drmaa()
        self._drmaa = drmaa
        if not self._session_open:
            self._call("initialize", self._open_session, drmaa)
        return drmaa

    def _open_session(self, drmaa: ModuleType) -> None:
        """In the libdrmaa worker. The session counts as open only once initialize returns, even
        if its caller gave up waiting: a later call must use that session, not open another."""
        if self._session_open:
            return     # an initialize that timed out for its caller finished while this waited
        contact = self._saved_contact()
        try:
            if contact:
                try:
                    drmaa.Session.initialize(contact)
                except drmaa.errors.AlreadyActiveSessionException:
                    raise
                except drmaa.errors.DrmaaException as exc:
                    log.warning("cannot re-attach to DRMAA session %s (%s): opening a new one",
                                contact, one_line(exc))
                    drmaa.Session.initialize()
            else:
                drmaa.Session.initialize()
        except drmaa.errors.AlreadyActiveSessionException:
            raise SchedulerError("a DRMAA session is already open in this process "
                                 "(DRMAA allows one): close() the other DRMAAScheduler first") from None
        except drmaa.errors.DrmaaException as exc:
            raise SchedulerUnavailable(f"DRMAA session could not start: {one_line(exc)}") from None
        self._contact = str(drmaa.Session.contact)
        self._session_open = True
        self._save_contact(self._contact)

    @property
    def contact(self) -> str | None:
        """The open session's contact string (None before the first submit or cancel)."""
        return self._contact if self._session_open else None

    def close(self) -> None:
        """End the DRMAA session; its jobs keep running and a later session can re-attach.
        An initialize still in flight (its caller timed out) is waited for, then ended too."""
        if self._drmaa is None:
            return     # libdrmaa never loaded: no session
        try:
            self._call("exit", self._end_session, self._drmaa)
        except (self._drmaa.errors.DrmaaException, SchedulerUnavailable) as exc:
            log.warning("closing the DRMAA session failed: %s", one_line(exc))

    def _end_session(self, drmaa: ModuleType) -> None:
        """In the libdrmaa worker: once only, even when close() is called again meanwhile."""
        if self._session_open:
            self._session_open = False
            drmaa.Session.exit()

    def _call(self, what: str, call: Callable[..., T], *args: Any) -> T:
        """A libdrmaa call, counted, one at a time in this process, within command_timeout_s."""
        self.calls[f"drmaa.{what}"] += 1
        return call_with_timeout(what, call, *args, timeout_s=self.command_timeout_s)

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
        write_atomic(self.state_dir / CONTACT_FILE, contact + "\n")

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

def _run_job(drmaa: ModuleType, spec: JobSpec, script: Path, options: list[str]) -> str:
    """In the libdrmaa worker: the job template lives and dies there, so it is freed exactly
    once, after runJob is done with it, even when runJob outlived its caller's timeout."""
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
        return str(drmaa.Session.runJob(template))
    finally:
        _free_template(drmaa, template)


def _free_template(drmaa: ModuleType, template: Any) -> None:
    try:
        drmaa.Session.deleteJobTemplate(template)
    except drmaa.errors.DrmaaException as exc:   # the job went in or not: only memory is at stake
        log.warning("freeing a DRMAA job template failed: %s", one_line(exc))


def _submit_error(drmaa: ModuleType, name: str, exc: Exception) -> SchedulerError:
    text = f"{name}: Grid Engine refused the job: {one_line(exc)}"
    errors = drmaa.errors
    if SUBMIT_LIMIT_RE.search(str(exc)):
        return SubmitLimitReached(text)       # SGE raises it as TryLaterException (code 16)
    if isinstance(exc, (errors.DeniedByDrmException, errors.InvalidAttributeValueException,
                        errors.InvalidAttributeFormatException,
                        errors.ConflictingAttributeValuesException, errors.InvalidArgumentException,
                        errors.UnsupportedAttributeException, errors.InvalidJobTemplateException)):
        return JobRejected(text)
    return SchedulerUnavailable(f"{name}: submission failed: {one_line(exc)}")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "(no output)")
