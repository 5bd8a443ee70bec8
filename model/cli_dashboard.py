"""``oudsim dashboard``: the Explore and Compare pages, served by Solara from the installed package.

The repository's app.py is not in the wheel; Solara runs the package's module
(``oudsim.model.dashboard.app``) instead, which is the same app. ``register(app)`` adds the command to a
Typer app (the main ``oudsim`` app calls it). Exit codes: 0 the server stopped (Ctrl-C); 2 bad input:
the port is taken, the host cannot be used, or Solara is missing (one message, no traceback).
"""

from __future__ import annotations

import errno
import os
import socket
import warnings
from importlib.util import find_spec
from typing import Annotated

import typer

from oudsim.model.console import err_console, fail

__all__ = ["APP_MODULE", "dashboard", "port_problem", "register"]

APP_MODULE = "oudsim.model.dashboard.app"
SOLARA_MISSING = (
    "the dashboard needs Solara, which is not installed in this Python environment: "
    "pip install 'solara==1.58.2' 'solara-assets==1.58.2' (they come with oudsim itself)"
)


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port`` (None if it can), found by binding a socket."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"--host {host}: not an address of this machine ({e.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        # As the server's own socket: a port left in TIME_WAIT by a server just stopped is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is in use (another dashboard, or another program): "
                    f"stop it, or choose another port with --port"
                )
            if e.errno == errno.EACCES:
                return f"port {port} needs administrator rights on this system: choose one above 1023 with --port"
            if e.errno == errno.EADDRNOTAVAIL:
                return f"--host {host}: not an address of this machine"
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


def dashboard(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. The default lets only this computer reach the pages; "
            "0.0.0.0 lets other computers on the network reach them too.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8765,
    open_browser: Annotated[
        bool,
        typer.Option("--open/--no-open", help="Open the Explore page in your web browser once the server answers."),
    ] = True,
) -> None:
    """Start the dashboard (the Explore and Compare pages) in a local web server; Ctrl-C stops it.

    The pages need no internet connection. The first page may take a few seconds while a model is built.
    """
    if find_spec("solara") is None:
        fail(SOLARA_MISSING)
    problem = port_problem(host, port)
    if problem:
        fail(problem)
    # Solara's server reports usage to a web service; behind a firewall that call only hangs.
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    try:
        import click
        from solara.__main__ import run as solara_run
    except ImportError as e:
        fail(f"{SOLARA_MISSING} ({e})")
    # Solara warns at the first page served over plain http at an address other than "localhost"
    # (its session cookie falls back to SameSite=Lax, which is right for a dashboard not in a frame).
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https", category=UserWarning)
    url_host = f"[{host}]" if ":" in host else host
    err_console.print(f"oudsim dashboard at http://{url_host}:{port}/ (Ctrl-C stops it)")
    args = [
        APP_MODULE,
        "--host",
        host,
        "--port",
        str(port),
        "--production",  # no auto-restart, no development tools in the page
        "--no-check-version",  # no look-up of Solara's latest version on the internet
        "--open" if open_browser else "--no-open",
    ]
    try:
        solara_run.main(args=args, prog_name="oudsim dashboard", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        # Ctrl-C: the server shuts down, then may pass the interrupt on (Solara's command line reports
        # it as Abort). Stopping the server is how it is meant to end: exit 0.
        pass
    err_console.print("dashboard stopped")


def register(app: typer.Typer) -> typer.Typer:
    """Add ``dashboard`` to an existing Typer app."""
    app.command("dashboard")(dashboard)
    return app
