"""Support for the browser tests: the server process, the network watch, screenshots, timings."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
SCREENSHOTS = OUTPUT / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}  # a common laptop screen
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class Server:
    """A `solara run app.py` process on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        OUTPUT.mkdir(exist_ok=True)
        self.log_path = OUTPUT / f"solara-server-{worker_id()}.log"
        env = {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False", "PYTHONUNBUFFERED": "1"}
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "solara",
                "run",
                str(ROOT / "app.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--production",
                "--no-check-version",
                "--no-open",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.up_at = self._wait_up()

    def _wait_up(self, timeout: float = 120.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"solara exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic()
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"solara did not come up within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group (start_new_session)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self._log.close()


class NetworkWatch:
    """Records what a page asked for that failed, errored or left the machine."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.requests = 0

    def attach(self, page: Any) -> None:
        page.on("request", self._on_request)
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} ({r.failure})"))
        page.on("response", self._on_response)
        page.on("websocket", lambda ws: self._check_host(ws.url, "websocket"))

    def _on_request(self, request: Any) -> None:
        self.requests += 1
        self._check_host(request.url, "request")

    def _on_response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"status {response.status}: {response.url}")

    def _check_host(self, url: str, what: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "about"):
            return
        if parsed.hostname not in LOOPBACK:
            self.problems.append(f"{what} to a non-loopback host: {url}")

    def assert_clean(self) -> None:
        assert self.requests > 0, "the page made no request at all: was it watched?"
        assert not self.problems, "the page needed the network or failed to load something:\n" + "\n".join(
            self.problems
        )


def screenshot(page: Any, name: str, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def record_timing(name: str, value: float, **extra: Any) -> None:
    """Append a measurement to test-output/timings.jsonl (docs/dashboard.md reports these)."""
    OUTPUT.mkdir(exist_ok=True)
    row = {"name": name, "value": round(value, 4), "worker": worker_id(), "time": time.time(), **extra}
    with (OUTPUT / "timings.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
