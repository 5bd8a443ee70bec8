"""What Solara's server does at each page load that a dashboard on one's own machine does not need.

Measured with a headless Chromium on the two-core development machine (docs/dashboard.md, Speed):
Solara gzips its 2.2 MB front-end bundle afresh for every page load (Starlette's GZip middleware
at level 9, about half a second of the server's CPU while the browser waits for it), and hashes its
extension directory on the first request. Over loopback, compression saves nothing; elsewhere (an
analyst's browser on another machine) it is kept.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

log = logging.getLogger(__name__)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class LoopbackAwareGZip(GZipMiddleware):
    """Starlette's GZip middleware, except for requests from this machine."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        client = scope.get("client") or ("",)
        if scope["type"] == "http" and client[0] in LOOPBACK:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def tune_solara_server() -> bool:
    """Swap the GZip middleware and warm the extension hash; True if the middleware was swapped.

    app.py runs it when Solara loads the app at start-up, before the first page is served. Anything
    unexpected in Solara's internals leaves the server as it is.
    """
    solara_starlette = sys.modules.get("solara.server.starlette")
    if solara_starlette is None:  # not under Solara's server (tests, solara.render): nothing to tune
        return False
    try:
        import solara.server.server as solara_server

        app = solara_starlette.app
        swapped = False
        middleware = []
        for m in app.user_middleware:
            if m.cls is GZipMiddleware:
                m = Middleware(LoopbackAwareGZip, *m.args, **m.kwargs)
                swapped = True
            middleware.append(m)
        app.user_middleware = middleware
        if swapped and app.middleware_stack is not None:
            # Already answering (its readiness probe): requests in flight finish on the old stack.
            app.middleware_stack = app.build_middleware_stack()
        solara_server.get_nbextensions()  # memoised: the first visitor does not pay for it
        return swapped
    except Exception as e:  # noqa: BLE001 - an optimisation only: never stop the server for it
        log.warning("Solara server left untuned: %s", e)
        return False
