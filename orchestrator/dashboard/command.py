"""``orchestrator dashboard CONFIG_OR_DIR``: its arguments and handler (registered in ``cli``)."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from .. import exitcodes
from ..errors import UsageError
from . import DEFAULT_HOST, DEFAULT_PORT, is_loopback, new_token, serve

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")


def dashboard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="CONFIG_OR_DIR",
                   help="an experiment's config (or state database file or URL), or a directory: "
                        "every experiment config in it and state database under it")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}, this machine only); any "
                        "other needs a token: one is made up and printed unless --token-file")
    p.add_argument("--token-file", metavar="FILE",
                   help="require this token (the file's first line, 16 or more of "
                        "A-Z a-z 0-9 _ -) on every request, also on 127.0.0.1")


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is None:
        return None if is_loopback(args.host) else new_token()
    try:
        lines = Path(args.token_file).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"--token-file {args.token_file}: {exc.strerror or exc}") from None
    token = lines[0].strip() if lines else ""
    if not TOKEN_RE.fullmatch(token):
        raise UsageError(f"--token-file {args.token_file}: the token must be 16 to 128 of "
                         "A-Z a-z 0-9 _ - on the first line")
    return token


def dashboard(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port (0 to 65535)")
    serve(args.target, args.host, args.port, _token(args))
    return exitcodes.OK
