"""The dashboard's server tuning: no gzip for this machine's browser, gzip for everyone else's."""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

from starlette.responses import PlainTextResponse

from oudsim.model.dashboard.serving import LoopbackAwareGZip, tune_solara_server

BODY = "the same words again " * 2_000  # well above the middleware's minimum size


async def _endpoint(scope, receive, send) -> None:
    await PlainTextResponse(BODY)(scope, receive, send)


def _get(client_host: str) -> tuple[dict[bytes, bytes], bytes]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"accept-encoding", b"gzip, deflate")],
        "client": (client_host, 50_000),
        "server": ("127.0.0.1", 8765),
        "scheme": "http",
        "http_version": "1.1",
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    # In a thread of its own: in the same test process Playwright may already run an event loop here.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, LoopbackAwareGZip(_endpoint, minimum_size=1000)(scope, receive, send)).result()
    headers = dict(next(m for m in sent if m["type"] == "http.response.start")["headers"])
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return headers, body


def test_loopback_requests_are_not_compressed() -> None:
    headers, body = _get("127.0.0.1")
    assert b"content-encoding" not in headers
    assert body.decode() == BODY


def test_other_clients_still_get_gzip() -> None:
    headers, body = _get("192.0.2.7")
    assert headers[b"content-encoding"] == b"gzip"
    assert len(body) < len(BODY) / 10


def test_tuning_outside_solaras_server_changes_nothing(monkeypatch) -> None:
    # Imported by tests or solara.render, the app must not import or alter Solara's server.
    monkeypatch.delitem(sys.modules, "solara.server.starlette", raising=False)
    assert tune_solara_server() is False
    assert "solara.server.starlette" not in sys.modules
