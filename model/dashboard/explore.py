"""The Explore page of the dashboard (model/dashboard/app.py serves it).

- **Explore** (students, this file): Mesa's ``SolaraViz`` with the model's parameters as sliders and
  selects (play, step, reset), a drawing of the social network, live charts and an inspector.
- **Compare** (analysts, model/dashboard/compare.py): replicates of chosen scenarios run in the
  background; mean and 95% band per scenario for a chosen metric, the summary table, CSV downloads.

It renders with no network at all: charts and the network are PNGs drawn by matplotlib on the
server (model/dashboard/drawing.py), and the page uses only Solara's own front-end, served from
the ``solara-assets`` package. Altair charts are avoided on purpose: their vega bundles are fetched
from a CDN at run time, so they stay blank behind a firewall (so does solara.Markdown's KaTeX).
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import numpy as np
import solara
import solara.lab
from mesa.visualization import SolaraViz
from mesa.visualization import solara_viz as mesa_viz
from mesa.visualization.utils import update_counter

from oudsim.agents.states import DISORDERS, Stage
from oudsim.model import ParameterError
from oudsim.model.dashboard import MAX_DRAWN, NETWORK_PX, STAGE_COLOURS, STAGE_LABELS, ChartsView, NetworkView
from oudsim.model.dashboard.ui import CSS, Img, Notice, PickImage, RawHTML, StyleSheet, png_src, stage_chip
from oudsim.model.oud_model import OUDModel
from oudsim.model.parameters import Parameters, apply_overrides, field_info, get_dotted

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


def _slider(alias: str, label: str, lo: float, hi: float, step: float) -> dict[str, Any]:
    """A Mesa slider spec whose starting value is the engine's default for that parameter."""
    kind = "SliderInt" if isinstance(step, int) else "SliderFloat"
    value = _default(alias)
    return {
        "type": kind,
        "value": int(value) if kind == "SliderInt" else value,
        "min": lo,
        "max": hi,
        "step": step,
        "label": label,
    }


# fmt: off
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "population": {"type": "Select", "value": DEFAULT_POPULATION, "label": "Population (people)",
                   "values": [200, 500, 1_000, 2_000, 5_000, 10_000]},
    "network_kind": {"type": "Select", "value": _default("network_kind"), "label": "Network shape",
                     "values": ["small_world", "scale_free"]},
    "mean_degree": _slider("mean_degree", "Ties per person (mean number)", 2, 20, 1),
    "burn_in_years": {"type": "SliderFloat", "value": DEFAULT_BURN_IN, "min": 0.0, "max": 10.0,
                      "step": 0.5, "label": "Burn-in before week 0 (years)"},
    "rng": {"type": "InputText", "value": "42", "label": "Random seed (whole number)"},
    "isolation": _slider("isolation", "Social isolation (× baseline tie loss)", 0.0, 4.0, 0.1),
    "peer_support": _slider("peer_support", "Peer support (new ties per tie-year)", 0.0, 2.0, 0.1),
    "mh_risk": _slider("mh_risk", "Mental-health onset (× baseline rate)", 0.0, 4.0, 0.1),
    "mh_capacity": _slider("mh_capacity", "Mental-health care (slots per 100,000)", 0, 20_000, 500),
    "capacity": _slider("capacity", "OUD treatment (slots per 100,000)", 0, 4_000, 100),
    "integrated_share": _slider("integrated_share", "Integrated care (share of OUD slots, 0–1)",
                                0.0, 1.0, 0.05),
    "stigma": _slider("stigma", "Community stigma at start (score 0–1)", 0.0, 1.0, 0.05),
    "campaign": _slider("campaign", "Anti-stigma campaign (strength 0–1)", 0.0, 1.0, 0.05),
    "naloxone_coverage": _slider("naloxone_coverage", "Naloxone kits (share of people who use carrying one, 0–1)",
                                 0.0, 1.0, 0.05),
}
# fmt: on

MECHANISMS: list[tuple[str, str, list[str]]] = [
    (
        "People and their network",
        "Everyone lives on a network of friends and family. Someone who dies is replaced by a young adult, "
        "so the population keeps its size. Sliders take effect when you press Reset.",
        ["population", "network_kind", "mean_degree", "burn_in_years", "rng"],
    ),
    (
        "Social isolation",
        "People with a mental-health disorder or who use opioids withdraw and lose ties; lost ties slowly "
        "regrow. Fewer ties mean more loneliness, which raises the risk of disorders and of opioid use: a "
        "vicious cycle. Peer support helps lonely people make new ties.",
        ["isolation", "peer_support"],
    ),
    (
        "Mental health",
        "Depression, anxiety, PTSD and other mental illness start and end. They start more often after "
        "childhood adversity, "
        "stressful events, loneliness and opioid use, and a disorder makes starting to misuse opioids 2–3 "
        "times as likely (self-medication). Mental-health care speeds recovery.",
        ["mh_risk", "mh_capacity"],
    ),
    (
        "Treatment services",
        "People with OUD seek treatment (after an overdose some are referred at once), but only as many can "
        "start as there are slots, a few a week after an intake assessment; the rest wait and some give up. "
        "Medication cuts overdose risk and deaths from other causes. Integrated dual-diagnosis care treats OUD and a "
        "mental-health disorder together, so fewer people drop out.",
        ["capacity", "integrated_share"],
    ),
    (
        "Stigma",
        "Each person holds an attitude toward people with OUD or mental illness. It drifts toward their "
        "friends' attitudes and softens when they know someone in recovery. Stigma people sense around them "
        "turns inward and keeps them from seeking care. A campaign lowers it for everyone.",
        ["stigma", "campaign"],
    ),
    (
        "Overdose and naloxone",
        "Overdoses are most likely with untreated OUD and in the weeks after leaving care. One is less often "
        "fatal when a friend is there and someone has a naloxone kit; kits go to people who use and their "
        "friends. Isolated or ashamed people more often use alone.",
        ["naloxone_coverage"],
    ),
]

_mesa_user_inputs = mesa_viz.UserInputs


@solara.component
def ParameterInput(name: str, spec: dict[str, Any], on_change: Any) -> None:
    """One input from a Mesa model_params spec; sliders always show their value (Mesa's only on drag)."""
    kind = spec.get("type")
    if kind in ("SliderInt", "SliderFloat"):
        slider = solara.SliderInt if kind == "SliderInt" else solara.SliderFloat
        slider(
            spec["label"],
            value=spec["value"],
            min=spec["min"],
            max=spec["max"],
            step=spec["step"],
            thumb_label="always",
            on_value=lambda v: on_change(name, v),
        )
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
            RawHTML(
                "div",
                f'<div class="oud-mech-title"><b>{html.escape(title)}</b></div>'
                f'<div class="oud-explainer">{html.escape(text)}</div>',
            )
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

    def __init__(
        self,
        population: int = DEFAULT_POPULATION,
        rng: Any = 42,
        burn_in_years: float = DEFAULT_BURN_IN,
        scenario: Any = None,
        **overrides: Any,
    ) -> None:
        # ``scenario``: Mesa's Reset passes a mesa.experimental Scenario to models that take **kwargs;
        # the validated parameter tree is this model's source of truth, so it is not used.
        error = None
        try:
            seed = int(str(rng).strip())
            apply_overrides(Parameters(), {"population": population, "burn_in_years": burn_in_years, **overrides})
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
        spare_pool.last_step = time.monotonic()
        super().step()

    def settings(self) -> dict[str, Any]:
        """The value of every slider this run was built with (read back from its parameters)."""
        return {name: get_dotted(self.base_params, name) for name in MODEL_PARAMS if name != "rng"} | {"rng": self.seed}


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
    laid out and drawn; a replacement is built in a background thread when the server is quiet. The pool is filled when
    the server imports this file, so even the first page load after start-up is quick.
    """

    REFILL_DELAY_S = 20.0  # a replacement is built this long after a visitor took the spare ...
    QUIET_S = 3.0  # ... once no page has stepped its model for this long ...
    MAX_WAIT_S = 60.0  # ... or after this long in any case

    def __init__(self) -> None:
        self.last_step = 0.0  # time.monotonic() of the latest step of any visitor's model
        self._lock = threading.Lock()
        self._ready: tuple[ExploreModel, ChartsView] | None = None
        self._builder: threading.Thread | None = None
        self._building = False

    @staticmethod
    def build() -> tuple[ExploreModel, ChartsView]:
        model = ExploreModel(**initial_kwargs())
        charts = ChartsView(model)
        charts.render(model)  # draws and caches the chart backgrounds
        if model.population.n <= MAX_DRAWN:
            network_view(model).render(model)  # computes the layout
        return model, charts

    def refill(self, delay: float = 0.0) -> None:
        with self._lock:
            if self._ready is not None or (self._builder is not None and self._builder.is_alive()):
                return
            self._builder = threading.Thread(target=self._fill, args=(delay,), name="oudsim-spare-model", daemon=True)
            self._builder.start()

    def fill_now(self) -> None:
        built = self.build()
        with self._lock:
            self._ready = built

    def _fill(self, delay: float) -> None:
        # Building takes seconds of CPU: while a visitor steps or plays their model, it would slow
        # each of their steps (the GIL and two cores), so it waits for a pause.
        start = time.monotonic()
        time.sleep(delay)
        while time.monotonic() - self.last_step < self.QUIET_S and time.monotonic() - start < self.MAX_WAIT_S:
            time.sleep(0.5)
        self._building = True
        try:
            built = self.build()
        finally:
            self._building = False
        with self._lock:
            if self._ready is None:
                self._ready = built

    def take(self) -> tuple[ExploreModel, ChartsView]:
        builder = self._builder
        if builder is not None and self._building:
            builder.join()  # one is being built: waiting is quicker than building a second
        with self._lock:
            ready, self._ready = self._ready, None
        # The next spare waits: building it now would compete for the CPU with the page being sent
        # to the visitor who just took this one, and with their first steps.
        self.refill(delay=self.REFILL_DELAY_S)
        return ready if ready is not None else self.build()


spare_pool = SparePool()


def row_of(model: OUDModel, uid: int | None) -> int | None:
    """The row a person id lives in now (None if they died or the id is from another run)."""
    if uid is None:
        return None
    rows = np.flatnonzero(model.uid == uid)
    return int(rows[0]) if rows.size else None


# -- Explore ----------------------------------------------------------------------------------------


@solara.component
def Explore() -> None:
    # One model per browser session (use_memo), so students on one server never share a model.
    first, charts = solara.use_memo(spare_pool.take, [])
    model = solara.use_reactive(first)
    selected = solara.use_reactive(None)  # unique_id of the person in the inspector
    StyleSheet(CSS)
    # SolaraViz puts its controls in the sidebar and app bar (portals); with no components, what it
    # leaves in the main area is empty spacing, hidden here. The main area is ExploreMain.
    with solara.Div(classes=["oud-viz-slot"]):
        SolaraViz(model, components=[], model_params=MODEL_PARAMS, name="oudsim · Explore", play_interval=50)
    ExploreMain(model, charts, selected)


@solara.component
def ExploreMain(
    model: solara.Reactive[ExploreModel], charts: ChartsView, selected: solara.Reactive[int | None]
) -> None:
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
        # The drawing keeps its size (a click maps to a person through it); the charts take the rest.
        with solara.Div(classes=["oud-panels"]):
            with solara.Div(classes=["oud-net-panel"], style={"max-width": f"{NETWORK_PX + 40}px"}):
                NetworkPanel(m, selected, tick)
            with solara.Div(classes=["oud-charts-panel"]):
                ChartsPanel(m, charts, tick)
        Inspector(m, selected, tick)


@solara.component
def RunSummary(m: ExploreModel, tick: int) -> None:
    s = m.settings()
    text = (
        f"Week {m.week} ({m.year:.1f} years) · {s['population']:,} people · "
        f"{s['network_kind'].replace('_', '-')} network, {s['mean_degree']:g} ties each · "
        f"isolation ×{s['isolation']:g} · peer support {s['peer_support']:g} · "
        f"mental-health onset ×{s['mh_risk']:g} · MH care {s['mh_capacity']:,.0f}/100k · "
        f"OUD slots {s['capacity']:,.0f}/100k ({s['integrated_share']:.0%} integrated) · "
        f"stigma {s['stigma']:g} · campaign {s['campaign']:g} · naloxone {s['naloxone_coverage']:.0%} · "
        f"seed {s['rng']}"
    )
    RawHTML(
        "div",
        "<b>This run:</b> " + html.escape(text),
        classes=["oud-summary"],
        attributes={"data-testid": "run-summary"},
    )


@solara.component
def NetworkPanel(m: ExploreModel, selected: solara.Reactive[int | None], tick: int) -> None:
    with solara.Card("Social network", margin=0):
        if m.population.n > MAX_DRAWN:
            Notice(
                "info",
                f"The network is drawn for populations of up to {MAX_DRAWN:,} people. This run has "
                f"{m.population.n:,}, so the page shows the charts only (the inspector still works).",
            )
            return
        NetworkDrawing(m, selected, tick)
        legend = "".join(f"<span>{stage_chip(s)}</span>" for s in STAGE_COLOURS if s != Stage.DECEASED)
        legend += (
            "<span>● no mental-health disorder</span>"
            "<span>◆ (black edge) depression, anxiety or PTSD</span><span>grey lines: ties</span>"
        )
        RawHTML("div", legend, classes=["oud-legend"])


@solara.component
def NetworkDrawing(m: ExploreModel, selected: solara.Reactive[int | None], tick: int) -> None:
    view = network_view(m)
    row = row_of(m, selected.value)
    png = solara.use_memo(lambda: view.render(m, row), [m, tick, row])

    def on_pick(x: float, y: float) -> None:
        picked = view.row_at(x, y)
        if picked is not None:
            selected.set(int(m.uid[picked]))

    PickImage(
        src=png_src(png),
        testid="network",
        alt="The social network: one marker per person, coloured by opioid-use stage; click a person to inspect them",
        size_px=view.size_px,
        on_pick=on_pick,
    )


@solara.component
def ChartsPanel(m: ExploreModel, view: ChartsView, tick: int) -> None:
    # One ChartsView per session, kept across resets: its cached backgrounds usually still fit.
    pngs = solara.use_memo(lambda: view.render(m), [m, tick])
    with solara.Card("Over time", margin=0):
        with solara.Div(classes=["oud-charts"]):
            for panel, png in zip(view.panels, pngs, strict=True):
                Img(
                    png_src(png),
                    f"chart-{panel.traces[0].metric}",
                    f"{panel.title}: " + ", ".join(t.label for t in panel.traces) + f" ({panel.unit})",
                )


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
            solara.InputInt(
                "Person id (or click someone in the network)",
                value=selected.value,
                on_value=selected.set,
                optional=True,
                continuous_update=False,
                style={"max-width": "320px"},
            )
            solara.Button(
                "Someone with OUD", on_click=lambda: pick((Stage.OUD, Stage.TREATMENT)), outlined=True, size="small"
            )
            solara.Button("Someone misusing", on_click=lambda: pick((Stage.MISUSE,)), outlined=True, size="small")
            solara.Button("Anyone", on_click=lambda: pick(tuple(Stage)), outlined=True, size="small")
        uid = selected.value
        if uid is None:
            solara.Text("No one chosen yet: click a person in the network, type an id, or use a button.")
            return
        row = row_of(m, uid)
        history = m.transitions.for_person(uid)
        if row is None:
            Notice(
                "warning",
                f"Person {uid} is not in this population now: they died, or the id does not "
                "exist in this run (Reset gives everyone new ids).",
            )
        else:
            PersonDetails(m, row, history, selected)


@solara.component
def PersonDetails(m: ExploreModel, row: int, history: list, selected: solara.Reactive[int | None]) -> None:
    person = m.people[row]
    s = person.state()
    stage = person.stage
    disorders = [d for d in DISORDERS if s[d]]
    care = {
        "none": "not in OUD care",
        "medication": "medication for OUD",
        "integrated": "integrated dual-diagnosis care",
    }[s["care"]]
    if s["waiting"]:
        care += " · waiting for a treatment slot"
    care += " · in mental-health care" if s["mh_care"] else ""
    rows = [
        ("Person", f'<span data-testid="inspector-id">{s["id"]}</span> (row {row})'),
        (
            "Opioid-use stage",
            f'<span data-testid="inspector-stage" data-stage="{stage.name.lower()}">{stage_chip(stage)}</span>',
        ),
        ("Mental health", html.escape(", ".join(d.upper() if d == "ptsd" else d for d in disorders) or "no disorder")),
        ("Care", html.escape(care)),
        ("Stigma", f"own attitude {s['stigma']:.2f} · internalised {s['internal_stigma']:.2f} (scores 0–1)"),
        (
            "Social",
            f"{s['ties']} active ties · loneliness {s['loneliness']:.2f} (0–1) · "
            f"family support: {'yes' if s['family_support'] else 'no'}",
        ),
        (
            "Craving and traits",
            f"craving {s['craving']:.2f} · impulsivity {s['impulsivity']:.2f} · "
            f"risk appraisal impaired {s['risk_impairment']:.2f} · "
            f"dysregulation {s['dysregulation']:.2f} (0–1)",
        ),
        (
            "Background",
            f"age {s['age']:.0f} · {'woman' if s['female'] else 'man'} · {s['ses']} income · "
            f"{s['ace']} adverse childhood experiences",
        ),
    ]
    entered = int(m.population.entry_week[row])
    steps = [f"week {w}: {html.escape(STAGE_LABELS[a])} → {html.escape(STAGE_LABELS[b])}" for w, a, b in history]
    rows.append(
        (
            "History",
            f"in the population since week {entered}"
            + ("<br>" + "<br>".join(steps) if steps else "<br>no change of stage since week 0"),
        )
    )
    with solara.Columns([3, 2], gutters_dense=True):
        RawHTML("div", _kv_table(rows, "inspector-table"))
        with solara.Column(gap="2px"):
            ties = person.ties()
            solara.Text(f"Ties ({len(ties)}), click to inspect:", style={"font-size": "0.85rem"})
            with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
                for other in ties[:40]:
                    solara.Button(
                        f"{other.unique_id} · {STAGE_LABELS[other.stage]}",
                        size="small",
                        text=True,
                        style={
                            "color": STAGE_COLOURS[other.stage] if other.stage != Stage.NONE else "#555",
                            "text-transform": "none",
                        },
                        on_click=lambda uid=other.unique_id: selected.set(int(uid)),
                    )
            if len(ties) > 40:
                solara.Text(f"… and {len(ties) - 40} more")
