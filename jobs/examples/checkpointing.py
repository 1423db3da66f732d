"""A trial that takes longer than its job may run, and survives that by checkpointing.

It "trains" for ``--steps`` steps of ``--step-seconds`` each, saving the step it reached to
``ORCH_CHECKPOINT_DIR`` after every step and resuming from there when continued. Either the
scheduler ends the job at its walltime (the master then continues it from the checkpoint), or,
with ``--steps-per-run K``, it hands over on its own after K steps with ``write_unfinished``.
The objective ``loss`` is the synthetic bowl over the parameters; the result also says how many
runs the trial took, so a test can tell a continued trial from a restarted one.

    python -m jobs.examples.checkpointing --steps 20 --step-seconds 0.5 --center x=1
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from jobs.examples.synthetic import loss
from jobs.result import checkpoint_dir, continuation, load_params, write_result, write_unfinished

STATE_FILE = "progress.json"


def load_progress(directory: Path) -> dict[str, int]:
    try:
        return json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        return {"step": 0, "runs": 0}


def save_progress(directory: Path, progress: dict[str, int]) -> None:
    """Atomically: a job killed mid-write must leave the previous checkpoint intact."""
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(progress))
    os.replace(tmp, directory / STATE_FILE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, required=True, help="steps the whole trial needs")
    parser.add_argument("--step-seconds", type=float, default=0.1)
    parser.add_argument("--steps-per-run", type=int, default=None,
                        help="hand over after this many steps (default: run until killed)")
    parser.add_argument("--center", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    centers = {k: float(v) for k, v in (c.split("=", 1) for c in args.center)}
    directory = checkpoint_dir()
    progress = load_progress(directory)
    progress["runs"] += 1
    save_progress(directory, progress)
    done_this_run = 0
    while progress["step"] < args.steps:
        if args.steps_per_run is not None and done_this_run >= args.steps_per_run:
            write_unfinished()
            return 0
        time.sleep(args.step_seconds)
        progress["step"] += 1
        done_this_run += 1
        save_progress(directory, progress)
    write_result({"loss": loss(load_params(), centers, set()), "steps": progress["step"],
                  "runs": progress["runs"], "continuation": continuation()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
