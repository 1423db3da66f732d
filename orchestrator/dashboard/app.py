"""The dashboard's web server: a small bottle app (a page, its script, plotly.js from the plotly
package, and two JSON views) served by the standard library's threaded WSGI server. Nothing is
fetched from elsewhere at run time: clusters are often offline."""
from __future__ import annotations

import hmac
import importlib.util
import ipaddress
import json
import socketserver
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy.exc import SQLAlchemyError

from ..errors import OrchestratorError
from . import sources

STATIC = Path(__file__).parent / "static"
PAGE_FILES = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}
TOKEN_HEADER = "HTTP_X_ORCHESTRATOR_TOKEN"
# Shown on the page instead of the experiment (a corrupt or foreign database, a server down).
UNREADABLE = (SQLAlchemyError, OSError)


class DashboardError(OrchestratorError):
    """The dashboard cannot start: missing extra, unsafe binding, unusable port."""


def _bottle() -> Any:
    try:
        import bottle
    except ImportError:
        raise DashboardError("dashboard needs bottle and plotly: pip install "
                             "'dsice-orchestrator[dashboard]' (or: pip install bottle plotly)") from None
    return bottle


def plotly_js() -> Path:
    """plotly.js as shipped inside the plotly package (no CDN)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise DashboardError("dashboard needs plotly: pip install 'dsice-orchestrator[dashboard]' "
                             "(or: pip install plotly)")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise DashboardError(f"plotly is installed without its plotly.min.js ({path})")
    return path


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Only the loopback interface may be served without a token."""
    if not is_loopback(host) and not token:
        raise DashboardError(f"serving on {host} (not this machine's loopback) needs a token: "
                             "anyone who can reach the port could read the experiment")


def build_app(target: str, reader: sources.Reader) -> Any:
    bottle = _bottle()
    app = bottle.Bottle()
    single = not Path(target).is_dir()
    script = plotly_js()

    def json_response(data: Any) -> str:
        bottle.response.content_type = "application/json"
        bottle.response.set_header("Cache-Control", "no-store")
        return json.dumps(data, default=str, allow_nan=False)

    page_html = (STATIC / "page.html").read_text(encoding="utf-8")

    @app.get("/")
    def page() -> str:
        # The page's own files need the token too: it goes into their URLs.
        given = bottle.request.query.get("token")
        bottle.response.content_type = "text/html; charset=utf-8"
        return page_html.replace("__TOKEN_QUERY__", f"?{urlencode({'token': given})}"
                                 if given else "")

    @app.get("/static/<name>")
    def static(name: str) -> Any:
        if name == "plotly.min.js":
            return bottle.static_file(script.name, root=str(script.parent),
                                      mimetype="application/javascript")
        if name not in PAGE_FILES:
            raise bottle.HTTPError(404, "not found")
        return bottle.static_file(name, root=str(STATIC), mimetype=PAGE_FILES[name])

    @app.get("/api/experiments")
    def experiments() -> str:
        listed = []
        for source in sources.discover(target):
            try:
                view = reader.read(source, sources.summary)
            except UNREADABLE as exc:    # one unreadable database must not hide the others
                view = {"error": str(exc).splitlines()[0]}
            listed.append({"slug": source.slug, "label": source.label, **view})
        return json_response({"single": single, "experiments": listed})

    @app.get("/api/e/<slug>")
    def experiment(slug: str) -> str:
        source = next((s for s in sources.discover(target) if s.slug == slug), None)
        if source is None:
            raise bottle.HTTPError(404, "no such experiment")
        started = time.perf_counter()
        try:
            read = reader.read(source, sources.snapshot)
        except UNREADABLE as exc:
            read = {"error": str(exc).splitlines()[0]}
        # The page waits at least ten times this long before its next refresh (dashboard.js),
        # so that a large experiment's reads never hold the database for long stretches.
        read_s = round(time.perf_counter() - started, 3)
        return json_response({"slug": slug, "label": source.label, "read_s": read_s,
                              **sources.page(read)})

    return app


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def require_token(app: WsgiApp, token: str) -> WsgiApp:
    """Refuse every request that does not carry the token (``?token=`` or a header)."""
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get(TOKEN_HEADER) or \
            parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"forbidden: this dashboard needs its token (?token=...)\n"]
        return app(environ, start_response)
    return guarded


def with_headers(app: WsgiApp) -> WsgiApp:
    """Headers every response gets: no sniffing, no framing, the token never in a Referer."""
    extra = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
             ("Referrer-Policy", "no-referrer")]

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return app(environ, lambda status, headers, *a: start_response(
            status, [*headers, *extra], *a))
    return wrapped


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True        # a browser holding a connection open never blocks Ctrl-C


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass                     # one line per poll would drown the terminal


def make_dashboard(target: str, host: str, port: int, token: str | None,
                   reader: sources.Reader) -> WSGIServer:
    check_binding(host, token)
    app: WsgiApp = build_app(target, reader)
    if token:
        app = require_token(app, token)
    try:
        return make_server(host, port, with_headers(app), server_class=ThreadingServer,
                           handler_class=QuietHandler)
    except OSError as exc:
        raise DashboardError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
