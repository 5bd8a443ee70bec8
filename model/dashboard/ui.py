"""Page furniture shared by the dashboard's pages: the layout, small widgets and styles.

Written for the front-end this Solara ships with ipyvue 3 (Vuetify 3): several of Solara's own
components still pass Vuetify 2 options there (AppLayout, lab.Tabs, Error/Info, FileDownload), so
these replacements use plain HTML and CSS where they can.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from typing import Any

import ipyvue
import solara
import traitlets
from matplotlib.figure import Figure
from solara.components.applayout import appbar_portal, apptitle_portal, sidebar_portal
from solara.components.title import TitleWidget

from oudsim.agents.states import Stage
from oudsim.model.dashboard.drawing import STAGE_COLOURS, STAGE_LABELS
from oudsim.model.dashboard.serving import page_title

# -- small widgets ---------------------------------------------------------------------------------

# Every Vue template (a ``VueTemplate``, and Solara's ``HTML``, ``Style`` and ``Markdown``, which are
# templates too) makes the browser fetch and run Vue's single-file-component compiler (240 kB, ~0.6 s
# of CPU in a headless Chromium) before the page shows. The Explore page therefore uses none: plain
# elements (ipyvue's ``Html``), with inner HTML and stylesheets set as DOM properties.


def RawHTML(
    tag: str = "div",
    unsafe_innerHTML: str = "",  # noqa: N803 (solara.HTML's name, so calls read the same)
    classes: list[str] | None = None,
    attributes: dict[str, str] | None = None,
    style: str | None = None,
) -> Any:
    """An element with the given inner HTML (like ``solara.HTML(unsafe_innerHTML=...)``, no template)."""
    kwargs: dict[str, Any] = {"tag": tag, "attributes": {**(attributes or {}), "innerHTML": unsafe_innerHTML}}
    if classes:
        kwargs["class_"] = " ".join(classes)
    if style:
        kwargs["style_"] = style
    return ipyvue.Html.element(**kwargs).meta(oud_element=True)  # tests find these by it


def StyleSheet(css: str) -> Any:
    """A ``<style>`` element (``solara.Style`` is a Vue template)."""
    return RawHTML("style", css)


def Img(src: str, testid: str, alt: str, classes: list[str] | None = None, style: str | None = None) -> Any:
    attributes = {"src": src, "alt": alt, "title": alt, "data-testid": testid}
    return RawHTML("img", "", classes=classes or ["oud-image"], attributes=attributes, style=style)


@solara.component
def PickImage(src: str, testid: str, alt: str, size_px: int, on_pick: Callable[[float, float], None]) -> None:
    """A square image shown at ``size_px`` that reports where it was clicked, as fractions of its size.

    The browser sends the click's offset within the image; the image is shown at a fixed size so the
    offset maps to the picture (its container scrolls on a narrow window).
    """

    def clicked(_widget: Any, _event: str, data: dict) -> None:
        if data and "offsetX" in data and "offsetY" in data:
            on_pick(float(data["offsetX"]) / size_px, float(data["offsetY"]) / size_px)

    with solara.Div(style={"overflow-x": "auto"}):
        image = Img(
            src,
            testid,
            alt,
            classes=["oud-pick"],
            style=f"width: {size_px}px; height: {size_px}px; cursor: crosshair",
        )
        solara.v.use_event(image, "click", clicked)


_DOWNLOAD_TEMPLATE = """
<template>
  <button class="oud-download" :data-testid="testid" @click="request = true">{{ label }}</button>
</template>
<script>
module.exports = {
  watch: {
    payload(value) {
      if (!value) return;
      const a = document.createElement('a');
      a.download = this.filename;
      a.href = URL.createObjectURL(new Blob([value], {type: this.mime}));
      document.body.appendChild(a);
      a.click();
      document.body.removeChild(a);
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
      this.payload = null;
      this.request = false;
    }
  }
}
</script>
"""


class DownloadButton(ipyvue.VueTemplate):
    """A button that fetches bytes from Python only when pressed, then saves them as a file.

    (solara.FileDownload renders nothing with ipyvue 3: its template nests <jupyter-widget> children.)
    """

    template = traitlets.Unicode(_DOWNLOAD_TEMPLATE).tag(sync=True)
    label = traitlets.Unicode("Download").tag(sync=True)
    filename = traitlets.Unicode("download.csv").tag(sync=True)
    mime = traitlets.Unicode("text/csv").tag(sync=True)
    testid = traitlets.Unicode("").tag(sync=True)
    request = traitlets.Bool(False).tag(sync=True)
    payload = traitlets.Bytes(None, allow_none=True).tag(sync=True)
    make = traitlets.Any(None)  # () -> bytes, called on the server when the button is pressed

    @traitlets.observe("request")
    def _on_request(self, change: dict) -> None:
        if change["new"] and self.make is not None:
            self.payload = self.make()


def png_src(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


CSS = """
.oud-mechanism { margin: 6px 0 10px 0; }
.oud-mech-title { font-size: 0.9rem; margin-top: 4px; }
.oud-explainer { font-size: 0.78rem; line-height: 1.25; color: #555; margin: 2px 0 2px 0; }
.oud-image { width: 100%; height: auto; display: block; }
.oud-pick { display: block; margin: 0 auto; max-width: none; }
.oud-panels { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.oud-net-panel { flex: 0 0 auto; min-width: 0; }
.oud-charts-panel { flex: 1 1 480px; min-width: 0; }
.oud-charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(215px, 1fr)); gap: 6px; }
.oud-legend { font-size: 0.8rem; display: flex; flex-wrap: wrap; gap: 2px 12px; margin-top: 4px; }
.sw { display: inline-block; width: 11px; height: 11px; margin-right: 4px;
                      vertical-align: -1px; }
.oud-kv { border-collapse: collapse; font-size: 0.85rem; width: 100%; }
.oud-kv td, .oud-kv th { padding: 2px 6px; border-bottom: 1px solid #eee; text-align: left;
                         vertical-align: top; }
.oud-kv th { color: #555; font-weight: 500; white-space: nowrap; }
.oud-summary { font-size: 0.85rem; color: #333; }
.oud-notice { padding: 8px 12px; border-radius: 4px; border-left: 4px solid; margin: 4px 0;
              font-size: 0.9rem; }
.oud-error { background: #FDECEA; border-color: #D55E00; }
.oud-warning { background: #FFF5D6; border-color: #E69F00; }
.oud-info { background: #E8F3FA; border-color: #0072B2; }
.oud-success { background: #E6F5EF; border-color: #009E73; }
.oud-download { border: 1px solid #0072B2; color: #0072B2; border-radius: 4px; padding: 6px 14px;
                font-size: 0.85rem; font-weight: 500; letter-spacing: 0.03em; background: white; }
.oud-download:hover { background: #E8F3FA; }
.oud-table { border-collapse: collapse; font-size: 0.82rem; }
.oud-table td, .oud-table th { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }
.oud-table td:first-child, .oud-table th:first-child { text-align: left; }
.oud-table tr.chosen { background: #FFF5D6; }
"""


@solara.component
def Notice(kind: str, message: str) -> None:
    """A coloured message box. (solara.Error/Info/... pass Vuetify 2 props that ipyvuetify 3 refuses.)"""
    RawHTML(
        "div",
        html.escape(message),
        classes=["oud-notice", f"oud-{kind}"],
        attributes={"role": "alert" if kind == "error" else "status", "data-testid": f"notice-{kind}"},
    )


def stage_chip(stage: Stage) -> str:
    colour = STAGE_COLOURS[stage]
    return f'<span class="sw" style="background:{colour};border-radius:50%"></span>{html.escape(STAGE_LABELS[stage])}'


def figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# -- layout -----------------------------------------------------------------------------------------


MAIN_ID = "oud-main"
LAYOUT_CSS = """
/* No ripple or fade on buttons: each Step click otherwise animates for half a second, and every
   animation frame is re-rasterised in software where there is no GPU (a third of a step's time). */
.v-ripple__container { display: none !important; }
.v-btn, .v-btn__overlay, .v-btn__underlay { transition: none !important; }
/* A focus ring a keyboard user can see on every control (Vuetify's own is a faint overlay or none);
   white on the dark app bar. */
:focus-visible { outline: 3px solid #1a5fb4 !important; outline-offset: 2px; }
.oud-bar :focus-visible { outline-color: #ffffff !important; }
.oud-main:focus-visible { outline-offset: -3px; }
.oud-skip { position: absolute; left: 8px; top: -200px; z-index: 10; padding: 8px 14px; border-radius: 4px;
            background: #ffffff; color: #123B5E; font-weight: 500; }
.oud-skip:focus { top: 8px; }
/* Text at least 4.5:1 against its background: Vuetify's field labels are grey at 70% of 70% opacity
   (3.97:1 on the field) and the slider's value bubble is light grey on mid grey (3.64:1). */
.v-field .v-label, .v-slider .v-label { opacity: 1; }
.v-field .v-label { color: #4d4d4d; }
.v-slider-thumb__label { background: #424242 !important; color: #ffffff !important; }
.v-slider-thumb__label::before { color: #424242 !important; }
/* Sidebar sliders: label on its own line above the track (long labels with units), value shown above
   the thumb; Mesa's "Use Threads" checkbox repeats its label inside the box under Vuetify 3. */
.oud-side .v-slider.v-input--horizontal { grid-template-areas: "prepend" "control" "messages";
  grid-template-columns: minmax(0, 1fr); margin-top: 0; }
.oud-side .v-slider .v-input__prepend { margin: 0; min-width: 0; }
.oud-side .v-slider .v-slider__label { font-size: 0.85rem; white-space: normal; }
.oud-side .v-slider .v-input__control { padding-top: 30px; }
.oud-side .v-selection-control__wrapper { font-size: 0; }
.oud-side .v-selection-control__wrapper .v-icon { font-size: 24px; }
.oud-viz-slot { display: none; }
.oud-app { display: flex; flex-direction: column; height: 100vh; }
.oud-bar { display: flex; align-items: center; gap: 6px; min-height: 52px; padding: 0 10px;
           background: #123B5E; color: white; flex: none; }
.oud-bar .oud-title { font-size: 1.15rem; font-weight: 500; line-height: 1.3; margin: 0 12px 0 0;
                      white-space: nowrap; overflow: hidden; text-overflow: ellipsis; min-width: 0; }
.oud-bar .oud-menu { color: white !important; }
.oud-pages { display: flex; gap: 4px; margin-left: auto; }
.oud-nav { color: white !important; text-decoration: none; text-transform: uppercase; font-size: 0.875rem;
           font-weight: 400; letter-spacing: 0.09em; padding: 8px 12px; border-bottom: 2px solid transparent; }
.oud-nav:hover { background: rgba(255, 255, 255, 0.12); }
.oud-nav[aria-current="page"] { font-weight: 700; border-bottom-color: white; }
.oud-body { display: flex; flex: 1; min-height: 0; }
.oud-side { width: 360px; flex: none; overflow-y: auto; padding: 8px; border-right: 1px solid #ddd; }
.oud-main { flex: 1; min-width: 0; overflow: auto; padding: 8px 12px; }
.oud-hidden { display: none !important; }
@media (max-width: 900px) {
  .oud-body { flex-direction: column; overflow: auto; }
  .oud-side { width: auto; border-right: none; overflow: visible; }
  .oud-main { overflow: visible; }
}
"""


def Landmark(
    tag: str, children: list, classes: list[str], label: str | None = None, attributes: dict[str, str] | None = None
) -> Any:
    """A ``<header>``, ``<nav>``, ``<aside>`` or ``<main>``: screen readers list them as the page's regions."""
    attributes = {**({"aria-label": label} if label else {}), **(attributes or {})}
    return ipyvue.Html.element(tag=tag, children=children, class_=" ".join(classes), attributes=attributes)


@solara.component
def NavLink(route: solara.Route, active: bool) -> None:
    """A link to one page: a real ``<a href>`` (named by its text, one Tab stop), followed in the app."""
    path = solara.resolve_path(route)
    router = solara.use_router()
    attributes = {"href": path, "data-testid": f"nav-{route.label}"}
    if active:
        attributes["aria-current"] = "page"
    link = ipyvue.Html.element(tag="a", children=[route.label], class_="oud-nav", attributes=attributes)
    solara.v.use_event(link, "click.prevent.stop", lambda *_: router.push(path))


def PageTitle(title: str) -> Any:
    """The browser tab's title, e.g. "oudsim — Explore".

    Solara's router puts a ``solara.Title`` with the route's bare label ("Explore") in every page; of
    several titles the browser shows the one with the highest level (the most deeply nested), and
    this one claims a level no page nests to.
    """
    return TitleWidget.element(title=title, level=1_000)


@solara.component
def Layout(children: list | None = None) -> None:
    """App bar, sidebar and main area in plain CSS flex boxes.

    Solara's AppLayout relies on Vuetify 2 layout props; with this ipyvuetify (3.x, Vuetify 3) its
    drawer covers the main area and its navigation tabs raise (no TabsSlider). The portals are the
    same, so SolaraViz's ``solara.Sidebar``/``solara.AppBar`` content lands here unchanged.
    """
    current, pages = solara.use_route(peek=True)
    sidebar = sidebar_portal.use_portal()
    appbar = appbar_portal.use_portal()
    titles = apptitle_portal.use_portal()
    show_side, set_show_side = solara.use_state(True)
    StyleSheet(LAYOUT_CSS)
    PageTitle(page_title(current.label if current is not None else None))
    with solara.Div(classes=["oud-app"]):
        # The first stop of the Tab key, shown only when focused: past the app bar and the sidebar's
        # controls to the page itself (where the Explore page's Play and Step are).
        RawHTML("a", "Skip to the page", classes=["oud-skip"], attributes={"href": f"#{MAIN_ID}"})
        menu = solara.Button(
            icon_name="mdi-menu",
            icon=True,
            text=True,
            classes=["oud-menu"],
            on_click=lambda: set_show_side(not show_side),
            attributes={
                "aria-label": "Show or hide the controls",
                "title": "Show or hide the controls",
                "aria-expanded": "true" if show_side else "false",
            },
        )
        # The app's name (with the page's, from SolaraViz's or the page's AppBarTitle) is the page's h1.
        heading = ipyvue.Html.element(tag="h1", children=titles or ["oudsim"], class_="oud-title")
        nav = Landmark(
            "nav",
            [NavLink(page, page is current) for page in pages if page.label],
            ["oud-pages"],
            label="Pages",
        )
        # SolaraViz adds a dark-theme toggle: the charts and drawings are made for a light page, and the
        # toggle is a Vue template (a compiler download and ~0.6 s at first load).
        extras = [c for c in appbar if getattr(c, "component", None) is not solara.lab.ThemeToggle]
        Landmark("header", [menu, heading, nav, *extras], ["oud-bar"])
        with solara.Div(classes=["oud-body"]):
            # Always mounted, hidden by a class: the inputs keep their state and the main area its place.
            hidden = [] if (sidebar and show_side) else ["oud-hidden"]
            Landmark("aside", sidebar, ["oud-side", *hidden], label="Controls").key("oud-side")
            main_attributes = {"id": MAIN_ID, "tabindex": "-1"}  # the skip link's target
            Landmark("main", children or [], ["oud-main"], attributes=main_attributes).key("oud-main")
