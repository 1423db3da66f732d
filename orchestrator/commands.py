"""The CLI's read-only views of an experiment, for people (tables) and scripts (--json).

Each command is one short read (see ``queries``); all of them are safe while the master runs.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from . import exitcodes, queries
from .cli import CliError, command, emit_json
from .render import block, cell, counts, duration, table


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="CONFIG",
                   help="the experiment's config file (or its state database file or URL)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _master_line(master: dict[str, Any] | None) -> str:
    if master is None:
        return "-"
    state = "alive" if master["alive"] else "not running"
    stop = ", stop requested" if master["alive"] and master.get("stop_requested") else ""
    return (f"pid {master['pid']} on {master['host']}, {state}{stop}, "
            f"heartbeat {master['heartbeat_age_s']:.0f} s ago")


def _point_line(params: dict[str, Any] | None, value: float | None) -> str:
    if params is None:
        return "-"
    return f"{cell(params)} = {cell(value)}"


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


@command("status", "state, progress and best point of an experiment", _target)
def status(args: argparse.Namespace) -> int:
    data = queries.query(args.target, queries.status)
    if args.json:
        emit_json(data)
        return exitcodes.OK
    best = data["best"]
    util = data["utilisation"]
    pairs: list[tuple[str, Any]] = [
        ("experiment", data["experiment"]),
        ("state", data["state"] + (f" ({data['message']})" if data["message"] else "")),
        ("master", _master_line(data["master"])),
        ("strategy", f"{data['strategy']}, {data['direction']}"),
    ]
    if data["stage"] is not None:
        pairs += [("stage", f"{data['stage']} (level {data['level']}), {data['stages_done']} done"),
                  ("base", _point_line(data["base_params"], data["base_value"]))]
    pairs += [
        ("best", "-" if best is None else
         f"{best['value']:.6g} at {cell(best['params'])} "
         f"(evaluation {best['evaluation']}, {best['found_at']})"),
        ("evaluations", f"{data['evaluations']} measured, {data['failed_points']} failed points"),
        ("running / pending", f"{data['running']} / {data['pending']}"),
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
    print(block(pairs))
    return exitcodes.OK


@command("queue", "jobs in flight at the scheduler", _target)
def queue(args: argparse.Namespace) -> int:
    rows = queries.query(args.target, queries.queue)
    if args.json:
        emit_json(rows)
    elif not rows:
        print("no jobs in flight")
    else:
        # The job name is in --json; the id is what the scheduler's own tools take.
        print(table(rows, ["job_id", "attempt", "state", "params", "submitted_at", "elapsed_s",
                           "node"]))
    return exitcodes.OK


@command("history", "every evaluation in order", _target)
def history(args: argparse.Namespace) -> int:
    rows = queries.query(args.target, queries.history)
    if args.json:
        emit_json(rows)
    elif not rows:
        print("no evaluations yet")
    else:
        print(table(rows, ["n", "value", "state", "attempts", "params", "failures"]))
    return exitcodes.OK


@command("stages", "the search's stages: base, level, points, best, duration", _target)
def stages(args: argparse.Namespace) -> int:
    rows = queries.query(args.target, queries.stages)
    if args.json:
        emit_json(rows)
    elif not rows:
        print("no stage finished yet (grid and random searches have none)")
    else:
        shown = [{**r, "duration": duration(r["duration_s"])} for r in rows]
        print(table(shown, ["number", "level", "points", "base_value", "best_value", "moved",
                            "duration", "best_params"]))
    return exitcodes.OK


def _best_args(p: argparse.ArgumentParser) -> None:
    _target(p)
    p.add_argument("--top", type=int, default=1, metavar="N",
                   help="also list the N best evaluations (default 1)")


@command("best", "the best point found so far, with its measurement", _best_args)
def best(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise CliError("--top must be at least 1")
    data = queries.query(args.target, lambda s, exp: queries.best(s, exp, args.top))
    if args.json:
        emit_json(data)
        return exitcodes.OK
    b = data["best"]
    if b is None:
        print(f"no successful evaluation yet in {data['experiment']} ({data['state']})")
        return exitcodes.OK
    print(block([
        ("best", f"{data['objective']} = {b['value']:.6g} ({data['direction']})"),
        ("params", b["params"]),
        ("index", b["index"]),
        ("evaluation", f"{b['evaluation']} of {data['evaluations']}, found {b['found_at']}"),
        ("attempts", b["attempts"]),
        ("job", b["job_id"]),
        ("run dir", b["run_dir"]),
        ("metrics", b["metrics"]),
    ]))
    if args.top > 1:
        print()
        print(table(data["top"], ["evaluation", "value", "params", "found_at"]))
    return exitcodes.OK


def _events_args(p: argparse.ArgumentParser) -> None:
    _target(p)
    p.add_argument("--limit", type=int, default=20, metavar="N",
                   help="the N most recent events (default 20)")


@command("events", "recent events of the experiment (oldest first)", _events_args)
def events(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    rows = queries.query(args.target, lambda s, exp: queries.events(s, exp, args.limit))
    if args.json:
        emit_json(rows)
    elif not rows:
        print("no events yet")
    else:
        print(table(rows, ["at", "kind", "message"]))
    return exitcodes.OK


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="CONFIG",
                   help="the experiment's config file (or its state database file or URL)")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")


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


@command("export", "all evaluations with parameters, value, metrics and attempts", _export_args)
def export(args: argparse.Namespace) -> int:
    data = queries.query(args.target, queries.export)
    text = (export_csv(data) if args.format == "csv"
            else json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    if args.out is None:
        sys.stdout.write(text)
        return exitcodes.OK
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {len(data['evaluations'])} evaluations to {args.out}", file=sys.stderr)
    return exitcodes.OK


def _plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="CONFIG",
                   help="the experiment's config file (or its state database file or URL)")
    p.add_argument("--out", metavar="DIR", required=True, help="directory for the PNG files")


@command("plot", "PNG plots: objective, job timeline, slot utilisation", _plot_args)
def plot(args: argparse.Namespace) -> int:
    from . import plots
    data = queries.query(args.target, queries.plot_data)   # read and closed before plotting
    for path in plots.write_all(data, Path(args.out)):
        print(path)
    return exitcodes.OK


from . import admin_commands  # noqa: E402,F401  (registers the write commands)
