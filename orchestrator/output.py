"""The shared command-line arguments and the one way read commands print what they read.

Every read command takes ``--format``:

- ``table`` (default): aligned columns or a key/value block, cut to the terminal's width
  (``--wide``: nothing cut);
- ``json``: the whole data, sorted keys (``--json`` is an alias);
- ``csv``: the whole data flattened (``params.x``; lists as JSON), a header row first;
- ``value``: the table's cells whole, tab-separated, no header (for shell loops); a record
  command prints its one main value (``best``: the objective value).

A command module uses ``add_target``/``add_format`` in its argument function and ``show_rows``
or ``show_record`` in its handler; it never imports ``cli``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .render import Column, block, cell, column_value, table

FORMATS = ("table", "json", "csv", "value")
FALLBACK_WIDTH = 100           # not a terminal, and no COLUMNS: the width of a wide log line


def add_target(p: argparse.ArgumentParser, *, database_ok: bool = True) -> None:
    """The positional CONFIG every command takes, as ``args.target``. ``database_ok``: the
    command only reads, so a state database file or a SQLAlchemy URL will do as well."""
    help_text = ("the experiment's config file (or its state database file or URL)"
                 if database_ok else "the experiment's TOML config")
    p.add_argument("target", metavar="CONFIG", help=help_text)


def add_format(p: argparse.ArgumentParser) -> None:
    """``--format``, its alias ``--json`` and ``--wide``; read back by ``show_*``."""
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="output format (default table)")
    p.add_argument("--json", dest="format", action="store_const", const="json",
                   help="same as --format json")
    p.add_argument("--wide", action="store_true", help="tables: cut nothing to fit the terminal")


def terminal_width() -> int:
    return shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns


def width_of(args: argparse.Namespace) -> int | None:
    return None if getattr(args, "wide", False) else terminal_width()


def emit_json(data: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(data, out, indent=2, sort_keys=True, default=str)
    out.write("\n")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (``params.x``); lists as JSON text; None as empty."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, default=str)
        else:
            flat[name] = "" if value is None else value
    return flat


def write_csv(rows: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    flat = [flatten(r) for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    writer = csv.DictWriter(out, columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(flat)


def format_rows(args: argparse.Namespace, rows: Sequence[Mapping[str, Any]],
                columns: Sequence[Column], *, empty: str) -> str:
    """A list of records as text in ``args.format``; ``empty`` is the table's text for none."""
    if args.format == "json":
        return json.dumps(rows, indent=2, sort_keys=True, default=str)
    if args.format == "csv":
        return _csv_text(rows)
    if args.format == "value":
        return "\n".join("\t".join(cell(column_value(r, c)) for c in columns) for r in rows)
    return table(rows, columns, width=width_of(args)) if rows else empty


def format_record(args: argparse.Namespace, data: Mapping[str, Any],
                  pairs: Sequence[tuple[str, Any]], *, value: Any) -> str:
    """One record: ``pairs`` is the table (key/value block), ``value`` its main value."""
    if args.format == "json":
        return json.dumps(data, indent=2, sort_keys=True, default=str)
    if args.format == "csv":
        return _csv_text([data])
    if args.format == "value":
        return cell(value)
    return block(pairs, width=width_of(args))


def show_rows(args: argparse.Namespace, rows: Sequence[Mapping[str, Any]],
              columns: Sequence[Column], *, empty: str) -> None:
    _print(format_rows(args, rows, columns, empty=empty))


def show_record(args: argparse.Namespace, data: Mapping[str, Any],
                pairs: Sequence[tuple[str, Any]], *, value: Any) -> None:
    _print(format_record(args, data, pairs, value=value))


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    write_csv(rows, out)
    return out.getvalue().rstrip("\n")


def _print(text: str) -> None:
    if text:
        sys.stdout.write(text + "\n")
