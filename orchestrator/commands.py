"""The CLI's read-only views of an experiment, for people (tables) and scripts (--format).

Each command is one short read (see ``queries``); all of them are safe while the master runs.
Each has an argument function (``*_args``) and a handler; ``cli.COMMANDS`` lists them.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import exitcodes, queries
from .config import load_config
from .errors import CannotWrite, UsageError
from .live import add_watch, ended, follow, last_heartbeat, watch
from .output import add_format, add_target, format_record, show_record, show_rows
from .render import counts, duration, measured
from .search_view import search_data
from .store import sqlite_path


def read_args(p: argparse.ArgumentParser) -> None:
    """What every read command takes: the target and the output format."""
    add_target(p)
    add_format(p)


def is_live(master: dict[str, Any] | None) -> bool:
    """A master is running: what the database says is being kept up to date."""
    return bool(master and master["alive"])


def _master_line(master: dict[str, Any] | None) -> str:
    if master is None:
        return "none has run"
    if not master["alive"]:
        return (f"pid {master['pid']} on {master['host']}, not running "
                f"(last heartbeat {duration(master['heartbeat_age_s'])} ago)")
    stop = ", stop requested" if master.get("stop_requested") else ""
    return (f"pid {master['pid']} on {master['host']}, alive{stop}, "
            f"heartbeat {master['heartbeat_age_s']:.0f} s ago")


def _state_line(data: dict[str, Any]) -> str:
    line = data["state"] + (f" ({data['message']})" if data["message"] else "")
    if not data["live"] and data["state"] not in queries.ENDED:
        line += " - last known: no master is running; `orchestrator start` resumes"
    return line


def _estimate_line(est: dict[str, Any]) -> str:
    if est["basis"] in queries.ENDED:
        return f"nothing ({est['basis']})"
    parts = []
    if est["remaining_points"] is not None:
        parts.append(f"{est['remaining_points']} points")
    if est["remaining_stages_min"] is not None:
        n = est["remaining_stages_min"]
        parts.append(f"at least {n} stage{'s' if n != 1 else ''}")
    if est["remaining_s"] is not None:
        parts.append(f"about {duration(est['remaining_s'])}")
    return "unknown" if not parts else ", ".join(parts) + f" ({est['basis']})"


def status_pairs(data: dict[str, Any]) -> list[tuple[str, Any]]:
    best = data["best"]
    util = data["utilisation"]
    pairs: list[tuple[str, Any]] = [
        ("experiment", data["experiment"]),
        ("state", _state_line(data)),
        ("master", _master_line(data["master"])),
        ("strategy", f"{data['strategy']}, {data['direction']}"),
    ]
    if data["stage"] is not None:
        pairs += [("stage", f"{data['stage']} (level {data['level']}), {data['stages_done']} done"),
                  ("base", measured(data["base_params"], data["base_value"]))]
    pairs += [
        ("best", "-" if best is None else
         f"{measured(best['params'], best['value'])} "
         f"(evaluation {best['evaluation']}, {best['found_at']})"),
        ("evaluations", f"{data['evaluations']} measured, {data['failed_points']} failed points"),
        ("running / pending", f"{data['running']} / {data['pending']}"
         + ("" if data["live"] or not data["running"] + data["pending"] else " (last known)")),
        *([("submissions wait", data["scheduler_note"])] if data.get("scheduler_note") else []),
        ("points", counts(data["points_by_state"])),
        ("attempts", counts(data["attempts_by_state"])),
        ("utilisation", "-" if util is None else
         f"{util:.0%} of cap {data['cap']} over {duration(data['elapsed_s'])} "
         f"({data['busy_job_s']:.0f} job-seconds)"),
        ("remaining", _estimate_line(data["estimate"])),
        ("started", data["started_at"]),
        ("finished", data["finished_at"]),
    ]
    return pairs


def status_args(p: argparse.ArgumentParser) -> None:
    read_args(p)
    add_watch(p)


def read_status(target: str) -> dict[str, Any]:
    data = queries.query(target, queries.status)
    return {**data, "live": is_live(data["master"])}


def status(args: argparse.Namespace) -> int:
    if args.watch is None:
        data = read_status(args.target)
        show_record(args, data, status_pairs(data), value=data["state"])
        return exitcodes.OK
    if args.watch <= 0:
        raise UsageError("--watch SECONDS must be positive")

    def refresh() -> tuple[str, bool]:
        data = read_status(args.target)
        if args.format == "json":       # one document per line (JSON Lines) for a stream
            text = json.dumps(data, sort_keys=True, default=str)
        else:
            text = format_record(args, data, status_pairs(data), value=data["state"])
        return text, ended(data["state"], data["master"])
    # Only people get the header line; a stream for a program has the data alone.
    title = f"orchestrator status {args.target}" if args.format == "table" else None
    return watch(refresh, args.watch, title)


ISO = "%Y-%m-%dT%H:%M:%SZ"           # queries.iso's format
QUEUE_COLUMNS = ["job_id", "attempt", "state", "params", "submitted_at", "elapsed_s", "node"]


def _as_last_seen(rows: list[dict[str, Any]], heartbeat: datetime | None
                  ) -> list[dict[str, Any]]:
    """Without a master nobody has looked at these jobs since its last heartbeat: their
    elapsed times stop there instead of growing as if they were still watched."""
    def elapsed(row: dict[str, Any]) -> int | None:
        if row["started_at"] is None or heartbeat is None:
            return None
        started = datetime.strptime(row["started_at"], ISO).replace(tzinfo=timezone.utc)
        return max(0, round((heartbeat - started).total_seconds()))
    return [{**r, "live": False, "elapsed_s": elapsed(r)} for r in rows]


def queue(args: argparse.Namespace) -> int:
    rows, master, heartbeat = queries.query(args.target, lambda s, exp: (
        queries.queue(s, exp), queries.master_info(s, exp), last_heartbeat(s, exp)))
    if is_live(master):
        rows = [{**r, "live": True} for r in rows]
    else:
        rows = _as_last_seen(rows, heartbeat)
        if rows and args.format == "table":
            seen = "no master has run" if master is None else \
                f"as last seen by a master {duration(master['heartbeat_age_s'])} ago"
            print(f"no master is running: jobs {seen}; they may have ended since "
                  "(`orchestrator start` catches up)")
    # The job name is in --format json; the id is what the scheduler's own tools take.
    show_rows(args, rows, QUEUE_COLUMNS, empty="no jobs in flight")
    return exitcodes.OK


def history_args(p: argparse.ArgumentParser) -> None:
    read_args(p)
    p.add_argument("--failed", action="store_true", help="only the points that failed")
    p.add_argument("--run-dir", action="store_true",
                   help="a column with each point's (latest) run directory")


def history(args: argparse.Namespace) -> int:
    rows = queries.query(args.target, queries.history)
    if args.failed:
        rows = [r for r in rows if r["value"] is None]
    columns = ["n", "value", "state", "attempts", "params",
               "run_dir" if args.run_dir else "failures"]
    show_rows(args, rows, columns,
              empty="no failed point" if args.failed else "no evaluations yet")
    return exitcodes.OK


def stages(args: argparse.Namespace) -> int:
    rows = queries.query(args.target, queries.stages)
    show_rows(args, rows, ["number", "level", "points", "base_value", "best_value", "moved",
                           ("duration", lambda r: duration(r["duration_s"])), "best_params"],
              empty="no stage finished yet (grid and random searches have none)")
    return exitcodes.OK


def best_args(p: argparse.ArgumentParser) -> None:
    read_args(p)
    p.add_argument("--top", type=int, default=1, metavar="N",
                   help="also list the N best evaluations (default 1)")


def best(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    data = queries.query(args.target, lambda s, exp: queries.best(s, exp, args.top))
    b = data["best"]
    top_columns = ["evaluation", "value", "params", "found_at"]
    if args.format == "value" and args.top > 1:      # a shell asked for N rows of values
        show_rows(args, data["top"], top_columns, empty="")
        return exitcodes.OK
    if b is None:
        if args.format == "table":
            print(f"no successful evaluation yet in {data['experiment']} ({data['state']})")
        else:
            show_record(args, data, [], value=None)
        return exitcodes.OK
    show_record(args, data, [
        ("best", f"{data['objective']} = {b['value']:.6g} ({data['direction']})"),
        ("params", b["params"]),
        ("index", b["index"]),
        ("evaluation", f"{b['evaluation']} of {data['evaluations']}, found {b['found_at']}"),
        ("attempts", b["attempts"]),
        ("job", b["job_id"]),
        ("run dir", b["run_dir"]),
        ("metrics", b["metrics"]),
    ], value=b["value"])
    if args.top > 1 and args.format == "table":
        print()
        show_rows(args, data["top"], top_columns, empty="")
    return exitcodes.OK


def events_args(p: argparse.ArgumentParser) -> None:
    read_args(p)
    p.add_argument("--limit", type=int, default=20, metavar="N",
                   help="the N most recent events (default 20)")
    p.add_argument("--follow", "-f", action="store_true",
                   help="then print new events as they happen, until the experiment ends")


def events(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.follow:
        return follow(args.target, args.format, args.limit, wide=args.wide)
    rows = queries.query(args.target, lambda s, exp: queries.events(s, exp, args.limit))
    show_rows(args, rows, ["at", "kind", "message"], empty="no events yet")
    return exitcodes.OK


# An export format: the experiment's ``queries.export`` data and the parsed arguments -> the
# text to write to --out or standard output. New formats are one entry here (and their own
# flags in ``export_args``).
Exporter = Callable[[dict[str, Any], argparse.Namespace], str]


def export_args(p: argparse.ArgumentParser) -> None:
    add_target(p)
    p.add_argument("--format", choices=(*EXPORTERS, "optuna"), default="csv",
                   help="csv (one row per evaluation, default), json (everything) or optuna "
                        "(an Optuna study in --storage)")
    p.add_argument("--json", dest="format", action="store_const", const="json",
                   help="same as --format json")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--storage", metavar="URL",
                   help="optuna: the Optuna storage to write the study to (sqlite:///optuna.db)")
    p.add_argument("--study-name", metavar="NAME",
                   help="optuna: the study's name (default: the experiment's)")


def export_csv(data: dict[str, Any]) -> str:
    """One row per evaluation: parameters and metrics get a column each (``metric.KEY``);
    attempts are summarised (count, total run seconds); JSON export has them in full."""
    names = data["parameters"]
    metric_keys = sorted({k for e in data["evaluations"] for k in (e["metrics"] or {})})
    columns = (["n", "index", *names, "value", "state", "failure", "attempts", "run_s",
                "program_failures", "infra_failures", "budget_resets", "origin", "round",
                "recorded_at"] + [f"metric.{k}" for k in metric_keys])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for e in data["evaluations"]:
        metrics = e["metrics"] or {}
        run_s = sum(a["run_s"] or 0.0 for a in e["attempts"])
        writer.writerow([e["n"], ",".join(map(str, e["index"])),
                         *[e["params"].get(n) for n in names],
                         _csv_value(e["value"]), e["state"], _csv_value(e["failure"]),
                         len(e["attempts"]), round(run_s, 3), e["program_failures"],
                         e["infra_failures"], e["budget_resets"], e["origin"],
                         _csv_value(e["round"]), e["recorded_at"]]
                        + [_csv_value(metrics.get(k)) for k in metric_keys])
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def export_json(data: dict[str, Any], args: argparse.Namespace) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


EXPORTERS: dict[str, Exporter] = {
    "csv": lambda data, args: export_csv(data),
    "json": export_json,
}


def export(args: argparse.Namespace) -> int:
    if args.format == "optuna":
        return _export_optuna(args)
    data = queries.query(args.target, queries.export)
    text = EXPORTERS[args.format](data, args)
    if args.out is None:
        sys.stdout.write(text)
        return exitcodes.OK
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CannotWrite(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {len(data['evaluations'])} evaluations to {args.out}", file=sys.stderr)
    return exitcodes.OK


def _export_optuna(args: argparse.Namespace) -> int:
    from . import optuna_export
    if not args.storage:
        raise UsageError("export --format optuna needs --storage URL (e.g. sqlite:///optuna.db)")
    name, count = optuna_export.export(args.target, args.storage, args.study_name)
    print(f"wrote {count} trials to study {name!r} in {args.storage}", file=sys.stderr)
    return exitcodes.OK


def plot_args(p: argparse.ArgumentParser) -> None:
    add_target(p)
    p.add_argument("--out", metavar="DIR",
                   help="directory for the PNG files (default: plots/ in the experiment's work "
                        "directory)")


PLOTS_DIR = "plots"


def default_plot_dir(target: str) -> Path:
    """plots/ beside the experiment's state database (its work directory), or in the config's
    work directory when the database is not a file (PostgreSQL)."""
    db = sqlite_path(queries.database_url_of(target))
    if db is not None:
        return db.parent / PLOTS_DIR
    if "://" not in target:
        return load_config(target).work_dir / PLOTS_DIR
    raise UsageError("plot of a database URL needs --out DIR")


def plot(args: argparse.Namespace) -> int:
    from . import plots, plots_search
    out = Path(args.out) if args.out else default_plot_dir(args.target)
    # Read and closed before plotting.
    data, search = queries.query(args.target, lambda s, exp: (queries.plot_data(s, exp),
                                                              search_data(s, exp)))
    for path in plots.write_all(data, out) + plots_search.write_all(search, out):
        print(path)
    return exitcodes.OK
