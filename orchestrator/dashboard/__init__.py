"""A live, read-only web dashboard of one experiment or of every experiment under a directory
(``orchestrator dashboard``). Optional: it needs the ``dashboard`` extra (bottle, plotly)."""
from __future__ import annotations

import secrets
import sys
from typing import TextIO

from .app import DashboardError, is_loopback, make_dashboard
from .sources import Reader, discover

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DashboardError", "new_token", "serve"]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def serve(target: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          token: str | None = None, out: TextIO = sys.stdout) -> None:
    """Serve until interrupted. Prints the address first (with the token, if any)."""
    shown = discover(target)          # a bad config or path fails here, before binding
    reader = Reader()
    server = make_dashboard(target, host, port, token, reader)
    name = shown[0].label if len(shown) == 1 and not target.endswith("/") else target
    where = f"[{host}]" if ":" in host else host
    url = f"http://{where}:{server.server_port}/" + (f"?token={token}" if token else "")
    scope = "this machine only" if is_loopback(host) else f"reachable on {host}, token required"
    print(f"dashboard of {name} at {url} ({scope}; read-only; Ctrl-C stops it)", file=out,
          flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        reader.close()
