"""What Solara's server does at each page load that a dashboard on one's own machine does not need.

Measured with a headless Chromium on the two-core development machine (docs/dashboard.md, Speed):
Solara gzips its 2.2 MB front-end bundle afresh for every page load (Starlette's GZip middleware
at level 9, about half a second of the server's CPU while the browser waits for it), and hashes its
extension directory on the first request. Over loopback, compression saves nothing; elsewhere (an
analyst's browser on another machine) it is kept.

Its page template also leaves out what a screen reader and a browser tab need: the page's language
(``<html lang="en">``) and a title that names the page ("oudsim — Explore"); it forbids zooming
(``user-scalable=no``); and it shows a "This website runs on Solara" badge over the bottom right
corner of the page, where it covered a chart. ``PageFurniture`` mends the first three in every page
Solara sends, and adds ``REPAIR_CONTROLS_JS`` (below); the badge is switched off.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

log = logging.getLogger(__name__)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
APP_NAME = "oudsim"
LANGUAGE = "en"


class LoopbackAwareGZip(GZipMiddleware):
    """Starlette's GZip middleware, except for requests from this machine."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        client = scope.get("client") or ("",)
        if scope["type"] == "http" and client[0] in LOOPBACK:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def page_title(label: str | None) -> str:
    """The browser's title for a page: "oudsim — Explore", or "oudsim" for a page without a label."""
    return f"{APP_NAME} — {label}" if label else APP_NAME


def served_page_label(path: str) -> str | None:
    """The label of the route Solara serves at ``path`` ("/" is Explore), from the app it runs."""
    try:
        import solara.server.app as solara_app

        routes = solara_app.apps["__default__"].routes
    except Exception:  # noqa: BLE001 - no app loaded yet, or another Solara: the title is the app's name
        return None
    first = path.strip("/").split("/")[0]
    for route in routes or []:
        if route.path.strip("/") == first:
            return route.label
    return None


# Vuetify 3 (this Solara's ipyvuetify 3.1) leaves some controls without a name a screen reader can
# announce, and wraps a select's text box in an element with the button role (two nested controls).
# This script mends them in the page as they appear, whichever page made them (Mesa's controls too):
# - a slider's thumb (role=slider) is named after the slider's label (Vuetify names it after its
#   `name` prop, which Solara's and Mesa's sliders leave empty);
# - a text field's or select's text box is named after its label (Vuetify hides that label once the
#   value is filled in and shows an aria-hidden copy; a select's text box is named "Open");
# - a select's button role (and its aria-expanded, aria-haspopup, aria-owns) moves from the field
#   around the text box to the text box itself, as a combobox.
# It changes an attribute only when it differs, so its own changes do not make it run again.
REPAIR_CONTROLS_JS = """
(() => {
  const text = (el) => (el ? el.textContent : "").replace(/\\s+/g, " ").trim();
  const set = (el, name, value) => { if (el.getAttribute(name) !== value) el.setAttribute(name, value); };
  function repair() {
    scheduled = false;
    for (const thumb of document.querySelectorAll(".v-slider [role=slider]")) {
      const name = text(thumb.closest(".v-slider").querySelector(".v-slider__label"));
      if (name && !thumb.hasAttribute("aria-labelledby")) set(thumb, "aria-label", name);
    }
    for (const input of document.querySelectorAll(".v-field input:not([type=hidden])")) {
      const field = input.closest(".v-field");
      const label = field.querySelector("label.v-field-label:not(.v-field-label--floating)")
        || field.querySelector("label.v-field-label");
      const name = text(label);
      if (name) set(input, "aria-label", name);
      if (input.hasAttribute("title") && input.getAttribute("title") !== name) input.removeAttribute("title");
      if (field.getAttribute("role") === "button") {
        field.removeAttribute("role");
        set(input, "role", "combobox");
      }
      if (input.getAttribute("role") === "combobox") {
        const moved = {"aria-expanded": "aria-expanded", "aria-haspopup": "aria-haspopup",
                       "aria-owns": "aria-controls"};
        for (const [from, to] of Object.entries(moved)) {
          if (field.hasAttribute(from)) {
            set(input, to, field.getAttribute(from) === "menu" ? "listbox" : field.getAttribute(from));
            field.removeAttribute(from);
          }
        }
        if (!input.hasAttribute("aria-expanded")) set(input, "aria-expanded", "false");
      }
    }
  }
  let scheduled = false;
  const schedule = () => { if (!scheduled) { scheduled = true; requestAnimationFrame(repair); } };
  new MutationObserver(schedule).observe(document.documentElement, {
    subtree: true, childList: true, attributes: true,
    attributeFilter: ["role", "aria-label", "aria-expanded", "aria-owns", "title"],
  });
})();
"""

_HTML_TAG = re.compile(rb"<html(?![^>]*\blang=)", re.IGNORECASE)
_TITLE = re.compile(rb"<title>.*?</title>", re.IGNORECASE | re.DOTALL)
_NO_ZOOM = re.compile(rb",\s*(maximum-scale=1(\.0)?|user-scalable=no)\b", re.IGNORECASE)
_HEAD_END = re.compile(rb"</head>", re.IGNORECASE)


def furnish_page(body: bytes, title: str, lang: str = LANGUAGE) -> bytes:
    """A page's HTML with its language on ``<html>``, its ``<title>`` replaced, zooming allowed and
    ``REPAIR_CONTROLS_JS`` at the end of its head; other HTML unchanged."""
    if not body.lstrip()[:15].lower().startswith(b"<!doctype html"):
        return body  # a fragment, not a page
    body = _HTML_TAG.sub(f'<html lang="{lang}"'.encode(), body, count=1)
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = _TITLE.sub(f"<title>{escaped}</title>".encode(), body, count=1)
    body = _NO_ZOOM.sub(b"", body)
    script = f"<script>{REPAIR_CONTROLS_JS}</script>\n".encode()
    return _HEAD_END.sub(lambda m: script + m.group(0), body, count=1)


class PageFurniture:
    """ASGI middleware: every HTML page gets ``lang`` and a title naming the page (``furnish_page``).

    It sits inside the compression middleware, so it sees the page as Solara wrote it.
    """

    def __init__(self, app: Any, title_for: Callable[[str], str] | None = None) -> None:
        self.app = app
        self.title_for = title_for or (lambda path: page_title(served_page_label(path)))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        chunks: list[bytes] = []

        async def send_furnished(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                if headers.get("content-type", "").startswith("text/html") and "content-encoding" not in headers:
                    start = message  # held back until the body is complete
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = furnish_page(b"".join(chunks), self.title_for(scope.get("path", "/")))
                headers = MutableHeaders(raw=list(start["headers"]))
                headers["content-length"] = str(len(body))
                await send({**start, "headers": headers.raw})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_furnished)


def tune_solara_server() -> bool:
    """Swap the GZip middleware, add ``PageFurniture``, hide Solara's badge and warm the extension
    hash; True if the GZip middleware was swapped.

    app.py runs it when Solara loads the app at start-up, before the first page is served. Anything
    unexpected in Solara's internals leaves the server as it is.
    """
    solara_starlette = sys.modules.get("solara.server.starlette")
    if solara_starlette is None:  # not under Solara's server (tests, solara.render): nothing to tune
        return False
    try:
        import solara.server.server as solara_server
        import solara.server.settings as solara_settings

        solara_settings.theme.show_banner = False  # it covered the bottom right corner of the page
        solara_settings.theme.title = APP_NAME  # PageFurniture names the page; this is for anything else

        app = solara_starlette.app
        swapped = False
        middleware = []
        for m in app.user_middleware:
            if m.cls is GZipMiddleware:
                m = Middleware(LoopbackAwareGZip, *m.args, **m.kwargs)
                swapped = True
            middleware.append(m)
        added = not any(m.cls is PageFurniture for m in middleware)
        if added:
            middleware.append(Middleware(PageFurniture))  # last: innermost, so it sees the page uncompressed
        app.user_middleware = middleware
        if (swapped or added) and app.middleware_stack is not None:
            # Already answering (its readiness probe): requests in flight finish on the old stack.
            app.middleware_stack = app.build_middleware_stack()
        solara_server.get_nbextensions()  # memoised: the first visitor does not pay for it
        return swapped
    except Exception as e:  # noqa: BLE001 - tuning and furniture only: never stop the server for them
        log.warning("Solara server left untuned: %s", e)
        return False
