"""``oudsim dashboard``: the installed command serves the app's pages; a taken port is one clear error.

The server test runs the console script installed next to this Python (as a user would) from a
folder that is not the repository, so it cannot lean on the repository's app.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUDSIM = Path(sys.executable).parent / "oudsim"
START_TIMEOUT_S = 120.0  # a busy two-core machine: the server builds a model before it answers


def oudsim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([str(OUDSIM), *args], capture_output=True, text=True, timeout=timeout, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode("utf-8", "replace")


def test_help_describes_the_options() -> None:
    done = oudsim("dashboard", "--help")
    assert done.returncode == 0, done.stderr
    for words in ("--host", "--port", "--open", "--no-open", "Explore and Compare", "8765", "127.0.0.1"):
        assert words in done.stdout, words
    listed = oudsim("--help")
    assert "dashboard" in listed.stdout


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = oudsim("dashboard", "--no-open", "--port", str(port))
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "--port" in done.stderr and "Traceback" not in done.stderr


def test_without_solara_the_command_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from oudsim.model import cli_dashboard
    from oudsim.model.cli import app

    real = cli_dashboard.find_spec
    monkeypatch.setattr(cli_dashboard, "find_spec", lambda name: None if name == "solara" else real(name))
    done = CliRunner().invoke(app, ["dashboard", "--no-open", "--port", str(free_port())])
    assert done.exit_code == 2
    assert "the dashboard needs Solara" in done.output and "pip install" in done.output


def test_the_package_holds_the_dashboard() -> None:
    # The wheel carries the pages as oudsim/model/dashboard/app.py (checked by building one: the
    # repository's app.py is not in it); the command needs that package listed.
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert "oudsim.model.dashboard" in packages
    from oudsim.model.cli_dashboard import APP_MODULE

    assert APP_MODULE == "oudsim.model.dashboard.app"


@pytest.mark.slow
def test_dashboard_serves_the_pages(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False"}
    proc = subprocess.Popen(
        [str(OUDSIM), "dashboard", "--no-open", "--port", str(port)],
        cwd=tmp_path,  # not the repository: the app comes from the installed package
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"oudsim dashboard exited with {proc.returncode}:\n{read(tmp_path)}"
            try:
                if get(base + "/readyz")[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, f"no answer within {START_TIMEOUT_S:.0f} s:\n{read(tmp_path)}"
            time.sleep(0.5)
        for path, title in (("/", "oudsim — Explore"), ("/compare", "oudsim — Compare")):
            status, html = get(base + path)
            assert status == 200
            assert '<html lang="en">' in html
            assert f"<title>{title}</title>" in html
            assert 'mount-id="solara-main"' in html  # Solara's page, ready for the app
        assert f"dashboard at http://127.0.0.1:{port}/" in read(tmp_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own process group (start_new_session)
                proc.wait(timeout=10)
        log.close()
    assert proc.returncode == 0, f"Ctrl-C ended it with {proc.returncode}:\n{read(tmp_path)}"
    assert "dashboard stopped" in read(tmp_path)


def read(folder: Path) -> str:
    return (folder / "server.log").read_text()[-4000:]
