"""The scheduler registry: declared options match the adapters, option errors are one clear
line naming the option (never Python's TypeError text), and check() finds what is missing."""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_config
from orchestrator.schedulers import build_scheduler
from scheduler_adapters import (
    SCHEDULERS,
    SchedulerMisconfigured,
    SchedulerOptionError,
    lookup,
)
from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.local import LocalScheduler
from scheduler_adapters.pjm import PJMScheduler
from scheduler_adapters.slurm import SlurmScheduler

PYTHON_TEXT = ("unexpected keyword", "required keyword-only", "invalid literal", "__init__",
               "not supported between")

# What the orchestrator passes itself, not the user.
CONTEXT_PARAMETERS = {"state_dir"}


def _adapter_class(kind: str) -> type:
    if kind == "drmaa":   # its module imports nothing heavy; libdrmaa loads on first session
        from scheduler_adapters.drmaa_adapter import DRMAAScheduler
        return DRMAAScheduler
    return {"local": LocalScheduler, "slurm": SlurmScheduler, "pjm": PJMScheduler}[kind]


@pytest.mark.parametrize("kind", sorted(SCHEDULERS))
def test_declared_options_are_the_constructor_keywords(kind: str) -> None:
    entry = SCHEDULERS[kind]
    cls = _adapter_class(kind)
    parameters = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(entry.options) == parameters - CONTEXT_PARAMETERS
    assert cls.kind == kind == entry.kind
    for name, option in entry.options.items():
        assert option.doc and "\n" not in option.doc, name


@pytest.mark.parametrize("kind, options, expected", [
    ("local", {"slot": 2}, ("unknown option 'slot' for kind 'local' (did you mean 'slots'?); "
                            "valid options: slots, gpus, python, kill_grace_s")),
    ("local", {"slots": "four"}, "option 'slots' must be an integer, got 'four'"),
    ("local", {"slots": 0}, "option 'slots' must be >= 1, got 0"),
    ("local", {"slots": True}, "option 'slots' must be an integer, got True"),
    ("pjm", {}, "option 'rscgrp' is required for kind 'pjm'"),
    ("pjm", {"rscgrp": "cx-share", "gpu": 1}, "(did you mean 'gpus'?)"),
    ("pjm", {"rscgrp": "cx share"}, "rscgrp: invalid PJM name 'cx share'"),
    ("pjm", {"rscgrp": "cx-share", "extra_directives": ["#PJM -L a b'"]},
     "extra_directives: \"#PJM -L a b'\" is not '#PJM <safe words>'"),
    ("slurm", {"gpu_option": "gpu"}, "option 'gpu_option' must be one of 'gres', 'gpus'"),
    ("slurm", {"partition": "a b"}, "partition: invalid Slurm value 'a b'"),
    ("slurm", {"extra_directives": ["--mem=1G"]}, "extra_directives: each must be one"),
    ("slurm", {"history_days": 1.5}, "option 'history_days' must be an integer"),
    ("slurm", {"command_timeout_s": float("inf")}, "must be a finite number"),
    ("drmaa", {"native_specification": "-N x"}, "native_specification may not contain -N"),
    ("drmaa", {"parallel_environment": "smp 4"}, "'smp 4' is not a Grid Engine name"),
])
def test_bad_option_is_one_line_naming_it(tmp_path: Path, kind: str, options: dict,
                                          expected: str) -> None:
    with pytest.raises(SchedulerOptionError) as caught:
        lookup(kind).create(options, state_dir=tmp_path / "s", cap=2)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert not any(text in message for text in PYTHON_TEXT), message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, SchedulerMisconfigured)


def test_check_options_lists_every_problem_at_once() -> None:
    problems = SCHEDULERS["pjm"].check_options({"gpu": 1, "history_days": 0, "merge": True})
    assert len(problems) == 4, problems     # two unknown, rscgrp missing, history_days too small
    assert any("'merge_output'" in p for p in problems)


def test_unknown_kind_suggests_the_near_one() -> None:
    with pytest.raises(SchedulerOptionError, match=r"unknown scheduler kind 'slrum' \(did you mean "
                                                   r"'slurm'\?\); known kinds: local, slurm"):
        lookup("slrum")


def test_build_scheduler_reports_the_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text(
        '[experiment]\nname = "x"\n[objective]\nkey = "loss"\n[parameters.a]\nvalues = [1, 2]\n'
        '[trial]\ncommand = "true"\n[scheduler]\nkind = "local"\n'
        '[scheduler.options]\nslot = 2\n')
    config = load_config(config_file)
    with pytest.raises(ConfigError) as caught:
        build_scheduler(config)
    assert str(caught.value).startswith(f"{config_file}: scheduler.options: unknown option 'slot'")


def test_local_slots_default_to_the_cap(tmp_path: Path) -> None:
    sched = lookup("local").create({}, state_dir=tmp_path / "s", cap=3)
    assert isinstance(sched, LocalScheduler) and sched.slots == 3


# --- check(): problems found without submitting anything ---------------------------------

def test_local_check_passes_and_names_a_missing_python(tmp_path: Path) -> None:
    assert LocalScheduler(tmp_path / "s").check() == []
    problems = LocalScheduler(tmp_path / "s", python=str(tmp_path / "nopython")).check()
    assert problems == [f"python option: {tmp_path / 'nopython'} does not exist"]


def test_local_submit_with_a_missing_python_is_misconfigured(tmp_path: Path) -> None:
    from scheduler_adapters.base import JobSpec
    sched = LocalScheduler(tmp_path / "s", python=str(tmp_path / "nopython"))
    workdir = tmp_path / "run"
    workdir.mkdir()
    with pytest.raises(SchedulerMisconfigured, match="nopython"):
        sched.submit(JobSpec(name="j1", command=("true",), workdir=workdir))
    assert sched.find_by_name(["j1"]) == {}      # nothing runs under that name


def test_pjm_check_names_a_bad_commands_dir_and_an_unsafe_work_dir(tmp_path: Path) -> None:
    sched = PJMScheduler(rscgrp="cx-share", commands_dir=str(tmp_path / "nowhere"))
    problems = sched.check(work_dir=tmp_path / "my runs")
    assert problems[0] == f"commands_dir '{tmp_path / 'nowhere'}' is not a directory"
    assert "my runs" in problems[1] and "cannot carry" in problems[1]
    assert len(problems) == 2
    (tmp_path / "bin").mkdir()
    problems = PJMScheduler(rscgrp="cx-share", commands_dir=str(tmp_path / "bin")).check()
    assert problems == [f"{tmp_path / 'bin' / c} does not exist" for c in ("pjsub", "pjstat", "pjdel")]


def test_pjm_check_passes_against_the_emulator(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PJM_EMULATOR_DIR", str(tmp_path / "pjm"))
    assert PJMScheduler(rscgrp="cx-share", commands_dir=str(BIN_DIR)).check() == []


def test_pjm_check_reports_a_command_that_does_not_answer(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PJM_EMULATOR_DIR", raising=False)   # the emulator refuses to run
    problems = PJMScheduler(rscgrp="cx-share", commands_dir=str(BIN_DIR)).check()
    assert len(problems) == 1 and "PJM_EMULATOR_DIR is not set" in problems[0]


def test_pjm_missing_command_is_misconfigured_not_unavailable(tmp_path: Path) -> None:
    sched = PJMScheduler(rscgrp="cx-share", commands_dir=str(tmp_path))
    with pytest.raises(SchedulerMisconfigured, match="pjstat cannot be run"):
        sched.status(["1"])


def test_slurm_check_names_missing_commands(tmp_path: Path) -> None:
    sched = SlurmScheduler(env={**os.environ, "PATH": str(tmp_path)})
    problems = sched.check()
    assert "sbatch is not on PATH" in problems and "sacct is not on PATH" in problems
