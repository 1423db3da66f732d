"""``orchestrator init``: a commented starter config for a trial command and a scheduler kind.

The parameters are the command's own placeholders (``--block {block}``), each with example
values to replace; the scheduler's options come from its registry entry, so every option a kind
takes is listed with its one-line doc. The file passes ``load_config`` as written.
"""
from __future__ import annotations

import argparse
import json
import re
import string
from pathlib import Path
from typing import Any

from scheduler_adapters import SCHEDULERS, Option

from . import exitcodes
from .config_model import EXPERIMENT_NAME_RE, NAME_RE, RESERVED_PLACEHOLDERS, SETUP_PREFIX
from .errors import CannotWrite, UsageError

EXAMPLE_VALUES = "[1, 2, 4, 8]"
REQUIRED_PLACEHOLDER = "CHANGE-ME"
TYPE_EXAMPLES = {"str": '"..."', "int": "1", "float": "1.0", "bool": "false", "list[str]": "[]",
                 "table[str]": "{}"}

HEADER = """\
# Starter config written by `orchestrator init` (see docs/config.md for every field).
# Next: replace the example parameter values, then `orchestrator start` this file.

[experiment]
name = {name}
work_dir = "runs/{{name}}"           # relative to this file: state database, run dirs, logs

[objective]
key = "loss"                       # the key the trial writes to its result file
direction = "minimize"             # or "maximize"

[parameters]
# Each parameter is an ordered list of candidate values, or a range that expands to one:
#   lr = {{ log = {{ start = 1e-4, stop = 1e-1, num = 4 }} }}
#   x = {{ linear = {{ start = -2.0, stop = 2.0, num = 9 }} }}
"""

TRIAL = """
[trial]
# Placeholders: {{python}} {{run_dir}} {{attempt}} {{result_file}} {{cpus}} {{gpus}} and each
# parameter. The trial also finds its parameters in params.json and ORCH_PARAM_<NAME>, and
# writes its result (a JSON object with the objective key) to $ORCH_RESULT_FILE.
command = {command}
time_limit = 3600                  # seconds; a slower attempt is stopped and counts as failed
retries = 2                        # program failures tolerated per point
# cpus = 1
# gpus = 0
# env = {{ OMP_NUM_THREADS = "4" }}

[search]
strategy = "dsice"                 # or "grid" (every point), "random"
# constraint = "x * y <= 1024"     # points that break it are never run

[scheduler]
# {kind}: {summary}; kinds: {kinds}
kind = "{kind}"
cap = 4                            # the most jobs in flight at once
poll_interval = 5.0                # seconds between looks at the scheduler

[scheduler.options]
# Every option of this kind, with its doc; uncomment to change one.
"""


def parameters_of(command: str) -> list[str]:
    """The command's placeholders that name parameters (not the orchestrator's own)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(command) if f]
    except ValueError as exc:
        raise UsageError(f"--command: bad placeholder syntax ({exc})") from None
    names = [f for f in dict.fromkeys(fields)
             if f not in RESERVED_PLACEHOLDERS and not f.startswith(SETUP_PREFIX)]
    for name in names:
        if not NAME_RE.match(name):
            raise UsageError(f"--command: placeholder {{{name}}} is not a parameter name "
                             f"(it must match {NAME_RE.pattern})")
    return names


def toml_string(text: str) -> str:
    return json.dumps(text)           # a JSON string is a valid TOML basic string


def toml_value(value: Any, type_name: str) -> str | None:
    """``value`` as TOML if it is a value of the option's type (a default may be prose)."""
    if type_name == "bool" and isinstance(value, bool):
        return "true" if value else "false"
    if type_name in ("int", "float") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        return repr(float(value)) if type_name == "float" else str(value)
    if type_name in ("str", "list[str]", "table[str]") and value not in (None, "", [], {}) \
            and not (type_name == "str" and " " in str(value)):
        return json.dumps(value) if type_name != "table[str]" else None
    return None


def option_lines(name: str, option: Option) -> list[str]:
    """The option's doc, then the option: set for a required one, commented out otherwise."""
    doc = option.doc + (f" (one of: {', '.join(option.choices)})" if option.choices else "")
    if option.required:
        return [f"# {doc} (required)", f"{name} = {toml_string(REQUIRED_PLACEHOLDER)}"]
    value = toml_value(option.default, option.type)
    if value is None:
        value = TYPE_EXAMPLES.get(option.type, '"..."')
        if option.default not in (None, "", [], {}):
            doc += f" (default: {option.default})"
    return [f"# {doc}", f"# {name} = {value}"]


def starter_config(command: str, kind: str, name: str) -> str:
    entry = SCHEDULERS[kind]
    params = parameters_of(command)
    lines = [HEADER.format(name=toml_string(name)).rstrip("\n")]
    if not params:
        params = ["x"]
        lines.append("# The command has no {placeholder}: the trial reads x from params.json.")
    lines += [f"{p} = {{ values = {EXAMPLE_VALUES} }}" for p in params]
    lines.append(TRIAL.format(command=toml_string(command), kind=kind, summary=entry.summary,
                              kinds=", ".join(SCHEDULERS)).rstrip("\n"))
    lines += [line for n, o in entry.options.items() for line in option_lines(n, o)]
    return "\n".join(lines) + "\n"


def experiment_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).strip("-.") or "experiment"
    name = name if name[0].isalnum() else f"x{name}"
    return name[:40]


def init_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="FILE", help="where to write the config (e.g. tune.toml)")
    p.add_argument("--command", required=True, metavar="COMMAND",
                   help="the trial command, with a {placeholder} per parameter")
    p.add_argument("--scheduler", choices=tuple(SCHEDULERS), default="local",
                   help="the scheduler kind (default local)")
    p.add_argument("--name", help="the experiment's name (default: from the file name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def init(args: argparse.Namespace) -> int:
    path = Path(args.target)
    name = args.name or experiment_name(path)
    if not EXPERIMENT_NAME_RE.match(name):
        raise UsageError(f"--name {name!r} must match {EXPERIMENT_NAME_RE.pattern}")
    text = starter_config(args.command, args.scheduler, name)
    try:
        with open(path, "w" if args.force else "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise UsageError(f"{path} exists; choose another name or add --force") from None
    except OSError as exc:
        raise CannotWrite(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}: edit the parameter values, then `orchestrator start {path}`")
    return exitcodes.OK
