"""The oudsim dashboard: ``solara run app.py`` serves two pages.

- **Explore** (students): Mesa's ``SolaraViz`` with the model's parameters as sliders and selects
  (play, step, reset), a drawing of the social network, live charts and an inspector of one person.
- **Compare** (analysts): replicates of chosen scenarios run in the background; mean and 95% band per
  scenario for a chosen metric, the summary table, CSV downloads.

It renders with no network at all: charts and the network are PNGs drawn by matplotlib on the server
(model/dashboard/drawing.py), and the page uses only Solara's own front-end, served from the
``solara-assets`` package. Altair is avoided on purpose: its vega bundles are fetched from a CDN at run
time, so Altair charts stay blank behind a firewall.
"""

from __future__ import annotations

import base64
import html
import io
import os
import threading
from typing import Any

import ipyvue
import numpy as np
import pandas as pd
import solara
import solara.lab
import traitlets
from matplotlib.figure import Figure
from mesa.visualization import SolaraViz
from mesa.visualization import solara_viz as mesa_viz
from mesa.visualization.utils import update_counter
from solara.components.applayout import appbar_portal, apptitle_portal, sidebar_portal

from agents.states import DISORDERS, Stage
from model import ParameterError
from model.dashboard import MAX_DRAWN, STAGE_COLOURS, STAGE_LABELS, ChartsView, NetworkView
from model.dashboard.drawing import LINE_COLOURS, LINE_STYLES
from model.metrics import BY_NAME, CATALOGUE
from model.oud_model import OUDModel
from model.parameters import Parameters, apply_overrides, field_info, get_dotted

try:  # Solara's server reports usage to a web service; behind a firewall that call only hangs.
    import solara.server.settings as _server_settings

    _server_settings.telemetry.mixpanel_enable = False
except ImportError:  # pragma: no cover - solara without its server (component tests)
    pass

# -- parameters: Mesa model_params specs, grouped by mechanism with a plain-language explainer ------

DEFAULT_POPULATION = 1_000
DEFAULT_BURN_IN = 2.0  # years; the engine's default (10) is right for analysis but slow for a reset


def _default(alias: str) -> Any:
    return field_info(alias)["default"]


MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "population": {"type": "Select", "value": DEFAULT_POPULATION, "label": "Population (people)",
                   "values": [200, 500, 1_000, 2_000, 5_000, 10_000]},
    "network_kind": {"type": "Select", "value": _default("network_kind"), "label": "Network shape",
                     "values": ["small_world", "scale_free"]},
    "mean_degree": {"type": "SliderInt", "value": int(_default("mean_degree")), "min": 2, "max": 20,
                    "step": 1, "label": "Ties per person (mean number)"},
    "burn_in_years": {"type": "SliderFloat", "value": DEFAULT_BURN_IN, "min": 0.0, "max": 10.0,
                      "step": 0.5, "label": "Burn-in before week 0 (years)"},
    "rng": {"type": "InputText", "value": "42", "label": "Random seed (whole number)"},
    "isolation": {"type": "SliderFloat", "value": _default("isolation"), "min": 0.0, "max": 4.0,
                  "step": 0.1, "label": "Social isolation (× baseline tie loss)"},
    "peer_support": {"type": "SliderFloat", "value": _default("peer_support"), "min": 0.0, "max": 2.0,
                     "step": 0.1, "label": "Peer support (new ties per tie-year)"},
    "mh_risk": {"type": "SliderFloat", "value": _default("mh_risk"), "min": 0.0, "max": 4.0, "step": 0.1,
                "label": "Mental-health onset (× baseline rate)"},
    "mh_capacity": {"type": "SliderInt", "value": int(_default("mh_capacity")), "min": 0, "max": 20_000,
                    "step": 500, "label": "Mental-health care (slots per 100,000)"},
    "capacity": {"type": "SliderInt", "value": int(_default("capacity")), "min": 0, "max": 4_000,
                 "step": 100, "label": "OUD treatment (slots per 100,000)"},
    "integrated_share": {"type": "SliderFloat", "value": _default("integrated_share"), "min": 0.0,
                         "max": 1.0, "step": 0.05, "label": "Integrated care (share of OUD slots, 0–1)"},
    "stigma": {"type": "SliderFloat", "value": _default("stigma"), "min": 0.0, "max": 1.0, "step": 0.05,
               "label": "Community stigma at start (score 0–1)"},
    "campaign": {"type": "SliderFloat", "value": _default("campaign"), "min": 0.0, "max": 1.0,
                 "step": 0.05, "label": "Anti-stigma campaign (strength 0–1)"},
    "naloxone_coverage": {"type": "SliderFloat", "value": _default("naloxone_coverage"), "min": 0.0,
                          "max": 1.0, "step": 0.05, "label": "Naloxone coverage (share of witnesses, 0–1)"},
}

MECHANISMS: list[tuple[str, str, list[str]]] = [
    ("People and their network",
     "Everyone lives on a network of friends and family. Someone who dies is replaced by a young adult, "
     "so the population keeps its size. Sliders take effect when you press Reset.",
     ["population", "network_kind", "mean_degree", "burn_in_years", "rng"]),
    ("Social isolation",
     "People with a mental-health disorder or who use opioids withdraw and lose ties; lost ties slowly "
     "regrow. Fewer ties mean more loneliness, which raises the risk of disorders and of opioid use: a "
     "vicious cycle. Peer support helps lonely people make new ties.",
     ["isolation", "peer_support"]),
    ("Mental health",
     "Depression, anxiety and PTSD start and end. They start more often after childhood adversity, "
     "stressful events, loneliness and opioid use, and a disorder makes starting to misuse opioids 2–3 "
     "times as likely (self-medication). Mental-health care speeds recovery.",
     ["mh_risk", "mh_capacity"]),
    ("Treatment services",
     "People with OUD seek treatment, but only as many can start as there are slots; the rest wait and "
     "some give up. Medication cuts overdose risk. Integrated dual-diagnosis care treats OUD and a "
     "mental-health disorder together, so fewer people drop out.",
     ["capacity", "integrated_share"]),
    ("Stigma",
     "Each person holds an attitude toward people with OUD or mental illness. It drifts toward their "
     "friends' attitudes and softens when they know someone in recovery. Stigma people sense around them "
     "turns inward and keeps them from seeking care. A campaign lowers it for everyone.",
     ["stigma", "campaign"]),
    ("Overdose and naloxone",
     "Overdoses are most likely with untreated OUD and in the weeks after leaving care. One is less often "
     "fatal when someone is there with naloxone, but isolated or ashamed people more often use alone.",
     ["naloxone_coverage"]),
]

_mesa_user_inputs = mesa_viz.UserInputs


@solara.component
def ParameterInput(name: str, spec: dict[str, Any], on_change: Any) -> None:
    """One input from a Mesa model_params spec; sliders always show their value (Mesa's only on drag)."""
    kind = spec.get("type")
    if kind in ("SliderInt", "SliderFloat"):
        slider = solara.SliderInt if kind == "SliderInt" else solara.SliderFloat
        slider(spec["label"], value=spec["value"], min=spec["min"], max=spec["max"], step=spec["step"],
               thumb_label="always", on_value=lambda v: on_change(name, v))
    else:  # Select, InputText ...: Mesa's own rendering
        _mesa_user_inputs({name: spec}, on_change=on_change)


@solara.component
def ExplainedUserInputs(user_params: dict[str, Any], on_change: Any = None) -> None:
    """The model's inputs a mechanism at a time, each group under its plain-language explainer."""
    shown: set[str] = set()
    for title, text, names in MECHANISMS:
        group = {k: user_params[k] for k in names if k in user_params}
        if not group:
            continue
        with solara.Column(gap="0px", classes=["oud-mechanism"]):
            solara.HTML(tag="div", unsafe_innerHTML=f"<b>{html.escape(title)}</b>", classes=["oud-mech-title"])
            solara.HTML(tag="div", unsafe_innerHTML=html.escape(text), classes=["oud-explainer"])
            for name, spec in group.items():
                ParameterInput(name, spec, on_change)
        shown.update(group)
    rest = {k: v for k, v in user_params.items() if k not in shown}
    if rest:
        _mesa_user_inputs(rest, on_change=on_change)


# SolaraViz draws its "Model Parameters" card with mesa_viz.UserInputs (through ModelCreator, which also
# feeds the values to Reset); replacing that one function puts each explainer next to its controls.
mesa_viz.UserInputs = ExplainedUserInputs


class ExploreModel(OUDModel):
    """OUDModel as the Explore page builds it: the seed may arrive as text, and a refused value is
    reported on the page (``error``) while the defaults run, instead of breaking the page."""

    def __init__(self, population: int = DEFAULT_POPULATION, rng: Any = 42,
                 burn_in_years: float = DEFAULT_BURN_IN, scenario: Any = None, **overrides: Any) -> None:
        # ``scenario``: Mesa's Reset passes a mesa.experimental Scenario to models that take **kwargs;
        # the validated parameter tree is this model's source of truth, so it is not used.
        error = None
        try:
            seed = int(str(rng).strip())
            apply_overrides(Parameters(), {"population": population, "burn_in_years": burn_in_years,
                                           **overrides})
        except ValueError as e:  # ParameterError is a ValueError, and so is a bad seed
            reason = str(e) if isinstance(e, ParameterError) else f"random seed {rng!r} is not a whole number"
            error = f"Not applied: {reason}. Running the defaults instead."
            seed, population, burn_in_years, overrides = 42, DEFAULT_POPULATION, DEFAULT_BURN_IN, {}
        super().__init__(population=int(population), rng=seed, burn_in_years=burn_in_years, **overrides)
        self.error = error
        self.seed = seed
        self.paced = False  # set while a page shows this model
        self.drawn = threading.Event()
        self.drawn.set()

    def step(self) -> None:
        # Frame pacing: while a page shows this model, a step waits until the previous one is drawn.
        # Mesa's Play thread steps every play interval without waiting for the page; when a redraw
        # takes longer than that (a busy machine), each redraw would be asked to start over before it
        # ends, and Solara stops such a render loop with an error. The timeout keeps a closed page
        # from stalling the model.
        if self.paced:
            self.drawn.wait(timeout=5.0)
            self.drawn.clear()
        super().step()

    def settings(self) -> dict[str, Any]:
        """The value of every slider this run was built with (read back from its parameters)."""
        return {name: get_dotted(self.base_params, name) for name in MODEL_PARAMS if name != "rng"} | {
            "rng": self.seed}


def initial_kwargs() -> dict[str, Any]:
    return {k: spec["value"] for k, spec in MODEL_PARAMS.items()}


_view_lock = threading.Lock()


def network_view(model: OUDModel) -> NetworkView:
    """The model's network drawing; its layout is computed on first use and kept with the model."""
    with _view_lock:
        view = getattr(model, "_dashboard_network", None)
        if view is None:
            view = model._dashboard_network = NetworkView(model, seed=getattr(model, "seed", 0))
        return view


class SparePool:
    """One default model built ahead of time, with its layout and first drawings.

    A new visitor takes it, so their first page shows without waiting for a model to be built (burn-in),
    laid out and drawn; a replacement is built at once in a background thread. The pool is filled when
    the server imports this file, so even the first page load after start-up is quick.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: tuple[ExploreModel, ChartsView] | None = None
        self._builder: threading.Thread | None = None

    @staticmethod
    def build() -> tuple[ExploreModel, ChartsView]:
        model = ExploreModel(**initial_kwargs())
        charts = ChartsView(model)
        charts.render(model)  # draws and caches the chart backgrounds
        if model.population.n <= MAX_DRAWN:
            network_view(model).render(model)  # computes the layout
        return model, charts

    def refill(self) -> None:
        with self._lock:
            if self._ready is not None or (self._builder is not None and self._builder.is_alive()):
                return
            self._builder = threading.Thread(target=self._fill, name="oudsim-spare-model", daemon=True)
            self._builder.start()

    def _fill(self) -> None:
        built = self.build()
        with self._lock:
            self._ready = built

    def take(self) -> tuple[ExploreModel, ChartsView]:
        builder = self._builder
        if builder is not None:
            builder.join()  # one is on its way: waiting is quicker than building a second
        with self._lock:
            ready, self._ready = self._ready, None
        self.refill()
        return ready if ready is not None else self.build()


spare_pool = SparePool()


def row_of(model: OUDModel, uid: int | None) -> int | None:
    """The row a person id lives in now (None if they died or the id is from another run)."""
    if uid is None:
        return None
    rows = np.flatnonzero(model.uid == uid)
    return int(rows[0]) if rows.size else None


# -- small widgets ---------------------------------------------------------------------------------

_IMAGE_TEMPLATE = """
<template>
  <img :src="src" :alt="alt" :title="alt" :data-testid="testid" class="oud-image"
       :style="clickable ? 'cursor: crosshair' : ''" @click="pick" />
</template>
<script>
module.exports = {
  methods: {
    pick(e) {
      if (!this.clickable) return;
      const r = e.target.getBoundingClientRect();
      this.clicked = {x: (e.clientX - r.left) / r.width, y: (e.clientY - r.top) / r.height, t: Date.now()};
    }
  }
}
</script>
"""


class PickImage(ipyvue.VueTemplate):
    """An image that reports where it was clicked, as fractions of its shown size (to pick a node)."""

    template = traitlets.Unicode(_IMAGE_TEMPLATE).tag(sync=True)
    src = traitlets.Unicode("").tag(sync=True)
    alt = traitlets.Unicode("").tag(sync=True)
    testid = traitlets.Unicode("").tag(sync=True)
    clickable = traitlets.Bool(False).tag(sync=True)
    clicked = traitlets.Dict(default_value={}).tag(sync=True)


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
.oud-side .v-slider.v-input--horizontal { grid-template-areas: "prepend" "control" "messages";
  grid-template-columns: 1fr; margin-top: 2px; }
.oud-side .v-slider .v-input__prepend { margin: 0 0 -2px 0; }
.oud-side .v-slider .v-slider__label { font-size: 0.85rem; }
.oud-side .v-slider .v-input__control { padding-top: 22px; }
.oud-side .v-selection-control__wrapper { font-size: 0; }
.oud-side .v-selection-control__wrapper .v-icon { font-size: 24px; }
.oud-mechanism { margin: 6px 0 10px 0; }
.oud-mech-title { font-size: 0.9rem; margin-top: 4px; }
.oud-explainer { font-size: 0.78rem; line-height: 1.25; color: #555; margin: 2px 0 2px 0; }
.oud-image { width: 100%; height: auto; display: block; }
.oud-charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 6px; }
.oud-legend { font-size: 0.8rem; display: flex; flex-wrap: wrap; gap: 2px 12px; margin-top: 4px; }
.oud-legend span.sw { display: inline-block; width: 11px; height: 11px; margin-right: 4px;
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
    solara.HTML(tag="div", unsafe_innerHTML=html.escape(message), classes=["oud-notice", f"oud-{kind}"],
                attributes={"role": "alert" if kind == "error" else "status", "data-testid": f"notice-{kind}"})


def stage_chip(stage: Stage) -> str:
    colour = STAGE_COLOURS[stage]
    return (f'<span class="sw" style="background:{colour};border-radius:50%"></span>'
            f"{html.escape(STAGE_LABELS[stage])}")


# -- Explore ----------------------------------------------------------------------------------------


@solara.component
def Explore() -> None:
    # One model per browser session (use_memo), so students on one server never share a model.
    first, charts = solara.use_memo(spare_pool.take, [])
    model = solara.use_reactive(first)
    selected = solara.use_reactive(None)  # unique_id of the person in the inspector
    solara.Style(CSS)
    SolaraViz(model, components=[], model_params=MODEL_PARAMS, name="oudsim · Explore", play_interval=50)
    ExploreMain(model, charts, selected)


@solara.component
def ExploreMain(model: solara.Reactive[ExploreModel], charts: ChartsView,
                selected: solara.Reactive[int | None]) -> None:
    tick = update_counter.get()  # Mesa's controller bumps this after every step
    m = model.value
    solara.use_effect(lambda: selected.set(None), [m])  # a reset makes new people: drop the old choice

    def pace() -> Any:
        m.paced = True

        def stop() -> None:
            m.paced = False
            m.drawn.set()

        return stop

    solara.use_effect(pace, [m])
    solara.use_effect(m.drawn.set)  # after every render: the step just shown has been drawn
    with solara.Column(gap="8px"):
        if m.error:
            Notice("error", m.error)
        RunSummary(m, tick)
        with solara.ColumnsResponsive(default=12, large=[5, 7], gutters_dense=True):
            NetworkPanel(m, selected, tick)
            ChartsPanel(m, charts, tick)
        Inspector(m, selected, tick)


@solara.component
def RunSummary(m: ExploreModel, tick: int) -> None:
    s = m.settings()
    text = (f"Week {m.week} ({m.year:.1f} years) · {s['population']:,} people · "
            f"{s['network_kind'].replace('_', '-')} network, {s['mean_degree']:g} ties each · "
            f"isolation ×{s['isolation']:g} · peer support {s['peer_support']:g} · "
            f"mental-health onset ×{s['mh_risk']:g} · MH care {s['mh_capacity']:,.0f}/100k · "
            f"OUD slots {s['capacity']:,.0f}/100k ({s['integrated_share']:.0%} integrated) · "
            f"stigma {s['stigma']:g} · campaign {s['campaign']:g} · naloxone {s['naloxone_coverage']:.0%} · "
            f"seed {s['rng']}")
    solara.HTML(tag="div", unsafe_innerHTML="<b>This run:</b> " + html.escape(text),
                classes=["oud-summary"], attributes={"data-testid": "run-summary"})


@solara.component
def NetworkPanel(m: ExploreModel, selected: solara.Reactive[int | None], tick: int) -> None:
    with solara.Card("Social network", margin=0):
        if m.population.n > MAX_DRAWN:
            Notice("info", f"The network is drawn for populations of up to {MAX_DRAWN:,} people. This run has "
                        f"{m.population.n:,}, so the page shows the charts only.")
        else:
            NetworkDrawing(m, selected, tick)
        legend = "".join(f"<span>{stage_chip(s)}</span>" for s in STAGE_COLOURS if s != Stage.DECEASED)
        legend += ("<span>● no mental-health disorder</span>"
                   "<span>◆ (black edge) depression, anxiety or PTSD</span><span>grey lines: ties</span>")
        solara.HTML(tag="div", unsafe_innerHTML=legend, classes=["oud-legend"])


@solara.component
def NetworkDrawing(m: ExploreModel, selected: solara.Reactive[int | None], tick: int) -> None:
    view = network_view(m)
    row = row_of(m, selected.value)
    png = solara.use_memo(lambda: view.render(m, row), [m, tick, row])

    def on_click(where: dict) -> None:
        if where:
            picked = view.row_at(float(where["x"]), float(where["y"]))
            if picked is not None:
                selected.set(int(m.uid[picked]))

    PickImage.element(src=png_src(png), clickable=True, testid="network", on_clicked=on_click,
                      alt="The social network: one marker per person, coloured by opioid-use stage; "
                          "click a person to inspect them")


@solara.component
def ChartsPanel(m: ExploreModel, view: ChartsView, tick: int) -> None:
    # One ChartsView per session, kept across resets: its cached backgrounds usually still fit.
    pngs = solara.use_memo(lambda: view.render(m), [m, tick])
    with solara.Card("Over time", margin=0):
        with solara.Div(classes=["oud-charts"]):
            for panel, png in zip(view.panels, pngs, strict=True):
                alt = f"{panel.title}: " + ", ".join(t.label for t in panel.traces) + f" ({panel.unit})"
                slug = panel.traces[0].metric
                PickImage.element(src=png_src(png), alt=alt, testid=f"chart-{slug}")


def _kv_table(rows: list[tuple[str, str]], testid: str = "") -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="oud-kv" data-testid="{testid}">{body}</table>'


@solara.component
def Inspector(m: ExploreModel, selected: solara.Reactive[int | None], tick: int) -> None:
    def pick(stages: tuple[Stage, ...]) -> None:
        rows = np.flatnonzero(np.isin(m.population.stage, [int(s) for s in stages]))
        if rows.size:
            selected.set(int(m.uid[int(np.random.default_rng().choice(rows))]))

    with solara.Card("Inspector", margin=0):
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.InputInt("Person id (or click someone in the network)", value=selected.value,
                            on_value=selected.set, optional=True, continuous_update=False,
                            style={"max-width": "320px"})
            solara.Button("Someone with OUD", on_click=lambda: pick((Stage.OUD, Stage.TREATMENT)),
                          outlined=True, size="small")
            solara.Button("Someone misusing", on_click=lambda: pick((Stage.MISUSE,)), outlined=True, size="small")
            solara.Button("Anyone", on_click=lambda: pick(tuple(Stage)), outlined=True, size="small")
        uid = selected.value
        if uid is None:
            solara.Text("No one chosen yet: click a person in the network, type an id, or use a button.")
            return
        row = row_of(m, uid)
        history = m.transitions.for_person(uid)
        if row is None:
            Notice("warning", f"Person {uid} is not in this population now: they died, or the id does not "
                           "exist in this run (Reset gives everyone new ids).")
        else:
            PersonDetails(m, row, history, selected)


@solara.component
def PersonDetails(m: ExploreModel, row: int, history: list, selected: solara.Reactive[int | None]) -> None:
    person = m.people[row]
    s = person.state()
    stage = person.stage
    disorders = [d for d in DISORDERS if s[d]]
    care = {"none": "not in OUD care", "medication": "medication for OUD",
            "integrated": "integrated dual-diagnosis care"}[s["care"]]
    if s["waiting"]:
        care += " · waiting for a treatment slot"
    care += " · in mental-health care" if s["mh_care"] else ""
    rows = [
        ("Person", f'<span data-testid="inspector-id">{s["id"]}</span> (row {row})'),
        ("Opioid-use stage", f'<span data-testid="inspector-stage" data-stage="{stage.name.lower()}">'
                             f"{stage_chip(stage)}</span>"),
        ("Mental health", html.escape(", ".join(d.upper() if d == "ptsd" else d for d in disorders) or "no disorder")),
        ("Care", html.escape(care)),
        ("Stigma", f"own attitude {s['stigma']:.2f} · internalised {s['internal_stigma']:.2f} (scores 0–1)"),
        ("Social", f"{s['ties']} active ties · loneliness {s['loneliness']:.2f} (0–1) · "
                   f"family support: {'yes' if s['family_support'] else 'no'}"),
        ("Craving and traits", f"craving {s['craving']:.2f} · impulsivity {s['impulsivity']:.2f} · "
                               f"risk appraisal impaired {s['risk_impairment']:.2f} · "
                               f"dysregulation {s['dysregulation']:.2f} (0–1)"),
        ("Background", f"age {s['age']:.0f} · {'woman' if s['female'] else 'man'} · {s['ses']} income · "
                       f"{s['ace']} adverse childhood experiences"),
    ]
    entered = int(m.population.entry_week[row])
    steps = [f"week {w}: {html.escape(STAGE_LABELS[a])} → {html.escape(STAGE_LABELS[b])}" for w, a, b in history]
    rows.append(("History", f"in the population since week {entered}" + (
        "<br>" + "<br>".join(steps) if steps else "<br>no change of stage since week 0")))
    with solara.Columns([3, 2], gutters_dense=True):
        solara.HTML(tag="div", unsafe_innerHTML=_kv_table(rows, "inspector-table"))
        with solara.Column(gap="2px"):
            ties = person.ties()
            solara.Text(f"Ties ({len(ties)}), click to inspect:", style={"font-size": "0.85rem"})
            with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
                for other in ties[:40]:
                    solara.Button(f"{other.unique_id} · {STAGE_LABELS[other.stage]}", size="small", text=True,
                                  style={"color": STAGE_COLOURS[other.stage] if other.stage != Stage.NONE
                                         else "#555", "text-transform": "none"},
                                  on_click=lambda uid=other.unique_id: selected.set(int(uid)))
            if len(ties) > 40:
                solara.Text(f"… and {len(ties) - 40} more")


# -- Compare ----------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised from the progress callback to end a cancelled comparison early."""


progress_counts = solara.reactive((0, 0))  # runs done, runs in all (per browser session)


@solara.lab.task(prefer_threaded=True)
def comparison(names: list[str], replicates: int, years: float, population: int, seed: int,
               workers: int) -> pd.DataFrame:
    """Replicates of each scenario, in a background thread so the page stays responsive."""
    from model.experiments import run_replicates

    def progress(done: int, total: int) -> None:
        if not comparison.is_current():  # cancelled, or superseded by a newer run
            raise _Stop
        progress_counts.set((done, total))
        comparison.progress = 100.0 * done / max(total, 1)

    return run_replicates(names, replicates=replicates, years=years, population=population, seed=seed,
                          workers=workers, progress=progress)


def band(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and 2.5–97.5th percentile band across replicates, per scenario and step (as ``summarise``)."""
    g = df.groupby(["scenario", "year"], sort=False)[metric]
    out = g.agg(mean="mean", lo=lambda x: np.percentile(x, 2.5), hi=lambda x: np.percentile(x, 97.5))
    return out.reset_index()


def metric_scale(metric: str) -> tuple[float, str]:
    """Shares are shown as percentages; other units as they are."""
    m = BY_NAME[metric]
    return (100.0, "% (" + m.unit + ")") if m.kind == "share" and "score" not in m.unit else (1.0, m.unit)


def comparison_figure(df: pd.DataFrame, metric: str) -> Figure:
    scale, unit = metric_scale(metric)
    fig = Figure(figsize=(8.4, 4.0), dpi=100, layout="constrained")
    ax = fig.subplots()
    b = band(df, metric)
    for i, (name, g) in enumerate(b.groupby("scenario", sort=False)):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        ax.fill_between(g["year"], g["lo"] * scale, g["hi"] * scale, color=colour, alpha=0.18, lw=0)
        ax.plot(g["year"], g["mean"] * scale, color=colour, ls=LINE_STYLES[i % len(LINE_STYLES)], lw=1.8,
                label=f"{name} (mean, 95% band)")
    ax.set_title(BY_NAME[metric].label, loc="left", fontsize=10, fontweight="bold")
    ax.set_xlabel("years since week 0")
    ax.set_ylabel(unit)
    ax.grid(True, color="#E5E5E5", lw=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False)
    return fig


def figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _fmt(value: float, metric: str) -> str:
    scale, _ = metric_scale(metric)
    v = value * scale
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


def summary_table_html(summary: pd.DataFrame, chosen: str) -> str:
    """Rows: metrics; columns: scenarios; cells: mean (95% band) over the final year."""
    scenarios = list(dict.fromkeys(summary["scenario"]))
    head = "".join(f"<th>{html.escape(s)}</th>" for s in scenarios)
    body = []
    for m in CATALOGUE:
        part = summary[summary["metric"] == m.name].set_index("scenario")
        if part.empty:
            continue
        cells = "".join(
            f"<td>{_fmt(part.at[s, 'mean'], m.name)} ({_fmt(part.at[s, 'lo'], m.name)}–"
            f"{_fmt(part.at[s, 'hi'], m.name)})</td>" if s in part.index else "<td></td>" for s in scenarios)
        cls = ' class="chosen"' if m.name == chosen else ""
        unit = metric_scale(m.name)[1]
        body.append(f"<tr{cls}><td>{html.escape(m.label)} <small>[{html.escape(unit)}]</small></td>{cells}</tr>")
    return (f'<table class="oud-table" data-testid="summary-table"><tr><th>Metric, final-year mean (95% band)'
            f"</th>{head}</tr>{''.join(body)}</table>")


@solara.component
def Compare() -> None:
    from scenarios import list_scenarios

    solara.Style(CSS)
    scenarios = solara.use_memo(lambda: {s.name: s.description for s in list_scenarios()}, [])
    all_names = list(scenarios)
    chosen = solara.use_reactive([n for n in ("baseline", "expand_moud") if n in scenarios])
    replicates = solara.use_reactive(3)
    years = solara.use_reactive(2)
    population = solara.use_reactive(1_000)
    seed = solara.use_reactive(1)
    workers = solara.use_reactive(1)
    metric = solara.use_reactive("oud_prevalence")

    with solara.AppBarTitle():
        solara.Text("oudsim · Compare")
    with solara.Sidebar():
        with solara.Card("Scenarios", margin=0):
            solara.SelectMultiple("Scenarios to compare", values=chosen.value, all_values=all_names,
                                  on_value=chosen.set)
            for name in chosen.value:
                solara.HTML(tag="div", unsafe_innerHTML=f"<b>{html.escape(name)}</b>: "
                            f"{html.escape(scenarios.get(name, ''))}", classes=["oud-explainer"])
        with solara.Card("Runs", margin=0):
            solara.SliderInt("Replicates per scenario (runs)", value=replicates, min=1, max=30,
                             thumb_label="always")
            solara.SliderInt("Horizon (years after burn-in)", value=years, min=1, max=20, thumb_label="always")
            solara.Select("Population (people)", value=population, values=[300, 500, 1_000, 2_000, 5_000, 10_000])
            solara.InputInt("Random seed (whole number)", value=seed)
            solara.SliderInt("Worker processes", value=workers, min=1, max=max(os.cpu_count() or 1, 1),
                             thumb_label="always")
            solara.HTML(tag="div", classes=["oud-explainer"], unsafe_innerHTML=(
                "Replicate i of every scenario shares a seed, so scenarios are compared on the same luck. "
                "Each run starts with the scenario's burn-in (10 years by default) before week 0, on "
                "this server's CPU: more people, replicates or years take longer."))
            def start() -> None:
                names = list(chosen.value)
                progress_counts.set((0, len(names) * replicates.value))
                comparison(names, replicates.value, float(years.value), int(population.value),
                           int(seed.value or 0), workers.value)

            with solara.Row():
                solara.Button("Run comparison", color="primary", disabled=comparison.pending or not chosen.value,
                              on_click=start)
                solara.Button("Cancel", disabled=not comparison.pending, on_click=comparison.cancel)

    with solara.Column(gap="10px"):
        # Plain HTML, not solara.Markdown: Markdown loads KaTeX from a CDN that solara-assets lacks.
        solara.HTML(tag="div", unsafe_innerHTML=(
            "Pick scenarios, the number of replicates and the horizon on the left, then press "
            "<b>Run comparison</b>. Runs go on in the background; the page stays usable."))
        if comparison.pending:
            done, total = progress_counts.value
            solara.ProgressLinear(value=comparison.progress or 0)
            solara.HTML(tag="div", unsafe_innerHTML=f"Running: {done} of {total} runs done",
                        attributes={"data-testid": "progress-text"})
        if comparison.error:
            Notice("error", f"The comparison failed: {comparison.exception}")
        if comparison.cancelled:
            Notice("warning", "Cancelled.")
        df = comparison.value if comparison.finished else None
        if df is not None and not df.empty:
            ComparisonResults(df, metric)


@solara.component
def ComparisonResults(df: pd.DataFrame, metric: solara.Reactive[str]) -> None:
    from model.experiments import summarise

    summary = solara.use_memo(lambda: summarise(df), [df])
    labels = {m.label: m.name for m in CATALOGUE}
    reps = df.groupby("scenario")["replicate"].nunique()
    Notice("success", f"Finished: {', '.join(f'{s} ({n} runs)' for s, n in reps.items())}.")
    solara.Select("Metric", value=BY_NAME[metric.value].label, values=list(labels),
                  on_value=lambda label: metric.set(labels[label]))
    png = solara.use_memo(lambda: figure_png(comparison_figure(df, metric.value)), [df, metric.value])
    with solara.Div(style={"max-width": "860px"}):
        PickImage.element(src=png_src(png), testid="compare-chart",
                          alt=f"{BY_NAME[metric.value].label}: mean and 95% band per scenario over time")
    solara.HTML(tag="div", unsafe_innerHTML=(
        "Lines: mean across replicates; bands: 2.5th–97.5th percentile across replicates (95% band). "
        "Table: the same, for each replicate's mean over the final simulated year."), classes=["oud-explainer"])
    solara.HTML(tag="div", unsafe_innerHTML=summary_table_html(summary, metric.value),
                style="overflow-x: auto")
    with solara.Row():
        DownloadButton.element(label="Download every run (CSV)", filename="oudsim-runs.csv",
                               testid="download-runs", make=lambda: df.to_csv(index=False).encode())
        DownloadButton.element(label="Download summary (CSV)", filename="oudsim-summary.csv",
                               testid="download-summary", make=lambda: summary.to_csv(index=False).encode())


# -- pages ----------------------------------------------------------------------------------------


LAYOUT_CSS = """
.oud-side .v-slider.v-input--horizontal { grid-template-areas: "prepend" "control" "messages";
  grid-template-columns: 1fr; margin-top: 2px; }
.oud-side .v-slider .v-input__prepend { margin: 0 0 -2px 0; }
.oud-side .v-slider .v-slider__label { font-size: 0.85rem; }
.oud-side .v-slider .v-input__control { padding-top: 22px; }
.oud-side .v-selection-control__wrapper { font-size: 0; }
.oud-side .v-selection-control__wrapper .v-icon { font-size: 24px; }
.oud-app { display: flex; flex-direction: column; height: 100vh; }
.oud-bar { display: flex; align-items: center; gap: 6px; min-height: 52px; padding: 0 10px;
           background: #123B5E; color: white; flex: none; }
.oud-bar .oud-title { font-size: 1.15rem; font-weight: 500; margin-right: 12px; white-space: nowrap; }
.oud-bar .oud-nav, .oud-bar .oud-menu { color: white !important; }
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
    solara.Style(LAYOUT_CSS)
    with solara.Div(classes=["oud-app"]):
        with solara.Div(classes=["oud-bar"]):
            solara.Button(icon_name="mdi-menu", icon=True, text=True, classes=["oud-menu"], on_click=lambda: set_show_side(not show_side),
                          attributes={"aria-label": "Show or hide the controls", "title": "Show or hide the controls"})
            solara.Div(children=titles or ["oudsim"], classes=["oud-title"])
            solara.v.Spacer()
            for page in pages:
                active = page is current
                with solara.Link(solara.resolve_path(page)):
                    solara.Button(page.label, text=True, classes=["oud-nav"],
                                  attributes={"data-testid": f"nav-{page.label}"},
                                  style={"font-weight": "700" if active else "400",
                                         "border-bottom": "2px solid white" if active else "none"})
            for child in appbar:
                solara.display(child)
        with solara.Div(classes=["oud-body"]):
            # Always mounted, hidden by a class: the inputs keep their state and the main area its place.
            hidden = [] if (sidebar and show_side) else ["oud-hidden"]
            solara.Div(children=sidebar, classes=["oud-side", *hidden]).key("oud-side")
            solara.Div(children=children or [], classes=["oud-main"]).key("oud-main")


spare_pool.refill()  # at import, i.e. when the server starts

routes = [
    # The root route carries the layout: Solara uses it for every page of a single-file app.
    solara.Route(path="/", component=Explore, label="Explore", layout=Layout),
    solara.Route(path="compare", component=Compare, label="Compare"),
]
