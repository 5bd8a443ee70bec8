"""The Explore page (students): what does a setting change? A paired what-if.

The baseline and "your settings" run in lockstep from one shared week 0 with the same random
streams (model/dashboard/whatif.py), so the gap between their lines is caused by the setting, not by
luck. A setting applies *now* (from the next week) or *from week 0*; the charts mark the moment.
"Repeat over N seeds" runs the same pair as scenario files over N seeds, in the background, and says
in words whether the difference is beyond chance — the numbers ``oudsim compare`` gives for them.

The page's own controls (Play, Pause, Step, one year) replace Mesa's: Play advances as many weeks
per frame as keep a simulated year to a few seconds, however long a redraw takes.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import numpy as np
import reacton.core
import solara
import solara.lab

from oudsim.agents.states import DISORDERS, Stage
from oudsim.model.console import DEFAULT_WORKERS
from oudsim.model.dashboard.drawing import NETWORK_PX, STAGE_COLOURS, STAGE_LABELS, NetworkView
from oudsim.model.dashboard.paired_charts import QUANTITIES, PairedCharts, Quantity, yearly_table
from oudsim.model.dashboard.ui import DownloadButton, Img, Notice, PickImage, RawHTML, StyleSheet, png_src, stage_chip
from oudsim.model.dashboard.whatif import (
    SETTINGS,
    Effects,
    PairedRun,
    Setup,
    effect_sentence,
    scenario_toml,
)
from oudsim.model.oud_model import OUDModel

WEEKS_PER_SECOND = 20.0  # Play's pace when redraws keep up: a simulated year in about 2.6 s
MAX_FRAME_WEEKS = 8  # ... and at most this many weeks per frame when they do not
POPULATIONS = [5_000, 10_000, 20_000, 50_000]
# The page's step counter. Only the parts that show the current week read it, so a step re-renders
# them and not the sliders and the set-up around them.
Tick = solara.Reactive[int]
SEED_CHOICES = [5, 10, 20]

# Plain-language explainers, one per mechanism a setting acts through.
EXPLAINERS: dict[str, str] = {
    "isolation": "People with a mental-health disorder or who use opioids withdraw and lose ties; lost ties "
    "slowly regrow. Fewer ties mean loneliness, which raises the risk of disorders and of opioid use.",
    "peer_support": "Peer support helps lonely people make new ties.",
    "capacity": "Only as many people can be in OUD treatment as there are slots, and a few start each week; "
    "the rest wait and some give up. Treatment cuts overdose risk and deaths from other causes.",
    "integrated_share": "Integrated care treats OUD and a mental-health disorder together: fewer drop out.",
    "mh_capacity": "Mental-health care speeds recovery from depression, anxiety and PTSD.",
    "mh_risk": "Disorders start more often after childhood adversity, stress and loneliness; a disorder "
    "makes starting to misuse opioids 2–3 times as likely.",
    "campaign": "A campaign lowers stigma, which otherwise keeps people from seeking care.",
    "naloxone_coverage": "A kit makes an overdose less often fatal when someone is there to use it.",
}

EXPLORE_CSS = """
.oud-explore h2 { font-size: 1.3rem; margin: 4px 0 6px; }
.oud-explore h3, .oud-side h3 { font-size: 1.05rem; margin: 10px 0 4px; }
.oud-controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.oud-numbers table, table.oud-data { border-collapse: collapse; font-size: 0.9rem; }
.oud-numbers th, .oud-numbers td, table.oud-data th, table.oud-data td {
  padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
.oud-numbers th:first-child, table.oud-data th:first-child { text-align: left; }
.oud-numbers caption, table.oud-data caption { text-align: left; font-weight: 600; padding: 2px 0; }
.oud-up { color: #A3300B; } .oud-down { color: #005A8C; }
.oud-panels { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.oud-net-panel { flex: 0 0 auto; }
.oud-charts-panel { flex: 1 1 400px; min-width: 300px; }
.oud-charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 8px; }
.oud-chart img { width: 100%; height: auto; display: block; }
.oud-chart details { font-size: 0.85rem; }
.oud-pending { color: #8A4B00; font-weight: 600; font-size: 0.85rem; }
.oud-setting { padding: 2px 0 6px; border-bottom: 1px solid #eee; }
.oud-explainer { font-size: 0.85rem; color: #444; }
.oud-verdict { font-size: 1rem; margin: 6px 0; }
.oud-summary { font-size: 0.9rem; color: #333; }
.oud-command { font-family: monospace; font-size: 0.85rem; background: #f4f4f4; padding: 4px 6px; }
"""


# -- what a session holds ------------------------------------------------------------------------


class Session:
    """One student's paired run with its drawings (a new start makes a new one)."""

    def __init__(self, setup: Setup) -> None:
        self.run = PairedRun(setup)
        self.charts = PairedCharts()
        self.network = NetworkView(self.run.arm, seed=setup.seed)
        self.drawn = threading.Event()  # set when the page has shown the latest step (Play waits for it)
        self.drawn.set()

    def prepare(self) -> Session:
        self.charts.render(self.run)
        self.network.render(self.run.arm)
        return self


class SparePool:
    """One default session built ahead of time, so a new visitor's page shows without waiting for a
    burn-in and a layout; a replacement is built in the background when the server is quiet."""

    QUIET_S = 3.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: Session | None = None
        self._builder: threading.Thread | None = None
        self.last_step = 0.0

    def fill_now(self) -> None:
        built = Session(Setup()).prepare()
        with self._lock:
            self._ready = built

    def _fill(self) -> None:
        time.sleep(self.QUIET_S)
        while time.monotonic() - self.last_step < self.QUIET_S:  # not while a visitor plays
            time.sleep(0.5)
        built = Session(Setup()).prepare()
        with self._lock:
            self._ready = self._ready or built

    def take(self) -> Session:
        with self._lock:
            ready, self._ready = self._ready, None
            if self._builder is None or not self._builder.is_alive():
                self._builder = threading.Thread(target=self._fill, name="oudsim-spare", daemon=True)
                self._builder.start()
        return ready if ready is not None else Session(Setup()).prepare()


spare_pool = SparePool()


@solara.lab.task(prefer_threaded=True)
def repeat_task(run: PairedRun, seeds: int) -> Effects:
    """The pair over N seeds in the background (worker processes; the page stays live)."""

    def progress(done: int, total: int) -> None:
        if not repeat_task.is_current():
            raise InterruptedError("cancelled")
        repeat_task.progress = 100.0 * done / max(total, 1)

    return run.repeat(seeds, workers=DEFAULT_WORKERS, progress=progress)


@solara.lab.task(prefer_threaded=True)
def new_start_task(setup: Setup) -> Session:
    return Session(setup).prepare()


def row_of(model: OUDModel, uid: int | None) -> int | None:
    """The row a person id lives in now (None if they died or the id is from another run)."""
    if uid is None:
        return None
    rows = np.flatnonzero(model.uid == uid)
    return int(rows[0]) if rows.size else None


def applied_words(run: PairedRun) -> str:
    """What "your settings" changed, in words."""
    if not run.items:
        return "the same as the baseline (change a setting and apply it)"
    parts = []
    by_name = {s.name: s for s in SETTINGS}
    for name, value in run.current().items():
        base = run.baseline_value(name)
        if value != base:
            s = by_name[name]
            parts.append(f"{s.label.split(' (')[0].lower()} {s.show(base)} → {s.show(value)}")
    when = ", ".join(f"year {y:.2f}" for y in run.applied_years)
    return (", ".join(parts) or "back to the baseline values") + f" (applied at {when})"


# -- the page -----------------------------------------------------------------------------------


@solara.component
def Explore() -> None:
    first = solara.use_memo(spare_pool.take, [])
    session = solara.use_reactive(first)
    tick = solara.use_memo(lambda: solara.reactive(0), [])  # read only by the parts that show the week
    applied = solara.use_memo(lambda: solara.reactive(0), [])  # counts applications, for the sliders' notes
    playing = solara.use_reactive(False)
    pending = solara.use_reactive(first.run.current())
    selected = solara.use_reactive(None)
    s = session.value
    run = s.run
    solara.Title("oudsim — Explore")
    StyleSheet(EXPLORE_CSS)

    render_context = reacton.core.get_render_context()

    def bump() -> None:
        spare_pool.last_step = time.monotonic()
        with render_context:  # one render pass for all the parts that show the week
            tick.set(tick.value + 1)

    def step(weeks: int) -> None:
        run.step(weeks)
        bump()

    def play(cancel: threading.Event) -> None:
        if not playing.value:
            return
        start, done = time.monotonic(), 0
        while not cancel.is_set():
            s.drawn.wait(timeout=2.0)  # the page has shown the last frame (or is gone)
            if cancel.is_set():
                return
            due = int((time.monotonic() - start) * WEEKS_PER_SECOND) - done
            weeks = max(1, min(due, MAX_FRAME_WEEKS))
            s.drawn.clear()
            run.step(weeks)
            done += weeks
            bump()

    solara.use_thread(play, dependencies=[playing.value, s], intrusive_cancel=False)

    def apply(now: bool) -> None:
        run.apply(dict(pending.value), now=now)
        _offer_to_compare(run)
        with render_context:
            applied.set(applied.value + 1)
            bump()

    def adopt(new: Session) -> None:
        playing.set(False)
        session.set(new)
        pending.set(new.run.current())
        selected.set(None)

    def adopt_new_start() -> None:
        built = new_start_task.value if new_start_task.finished else None
        if built is not None and built is not session.value:
            adopt(built)

    solara.use_effect(adopt_new_start, [new_start_task.value])

    with solara.Sidebar():
        SettingsPanel(run, pending, applied)
        ApplyButtons(run, pending, apply, tick, run.version)
        SetupPanel(run.setup, disabled=new_start_task.pending)
    with solara.Column(gap="10px", classes=["oud-explore"]):
        RawHTML("h2", "Explore: what does a setting change?")
        RawHTML(
            "p",
            "Two runs share everything up to the moment you apply a setting: the <b>baseline</b> and "
            "<b>your settings</b>, with the same people and the same chance events. The gap between their "
            "lines is what the setting does. Repeat over several seeds to see whether it is beyond chance.",
            classes=["oud-explainer"],
        )
        with solara.Row(classes=["oud-controls"]):
            if playing.value:
                solara.Button("Pause", on_click=lambda: playing.set(False), color="primary", icon_name="mdi-pause")
            else:
                solara.Button("Play", on_click=lambda: playing.set(True), color="primary", icon_name="mdi-play")
            solara.Button("Step one week", on_click=lambda: step(1), disabled=playing.value, outlined=True)
            solara.Button("Run one year", on_click=lambda: step(52), disabled=playing.value, outlined=True)
        if new_start_task.pending:
            Notice("info", "Building a new population: a burn-in of the model's history runs first …")
        RunSummary(run, tick)
        Numbers(run, tick)
        with solara.Div(classes=["oud-panels"]):
            with solara.Div(classes=["oud-net-panel"], style={"max-width": f"{NETWORK_PX + 40}px"}):
                NetworkPanel(s, selected, tick)
            with solara.Div(classes=["oud-charts-panel"]):
                ChartsPanel(s, tick)
        RepeatPanel(run, tick)
        Inspector(run.arm, selected, tick)


def _offer_to_compare(run: PairedRun) -> None:
    """The Compare page lists "my Explore settings" once a setting was applied."""
    from oudsim.model.dashboard import compare

    target = getattr(compare, "explore_scenario", None)
    if target is not None and run.items:
        target.set(run.arm_scenario())


@solara.component
def SettingsPanel(run: PairedRun, pending: solara.Reactive[dict[str, float]], applied: Tick) -> None:
    applied.value  # noqa: B018 - an application changes what counts as pending
    current = run.current()
    changed = {k for k, v in pending.value.items() if v != current[k]}
    RawHTML("h2", "Your settings")
    RawHTML(
        "p",
        "Move a slider, then apply it: <b>now</b> (from the next week, both runs keep their history) or "
        "<b>from week 0</b> (both runs start again).",
        classes=["oud-explainer"],
    )
    for setting in SETTINGS:
        value = pending.value[setting.name]
        with solara.Column(gap="0px", classes=["oud-setting"]):
            slider = solara.SliderInt if isinstance(setting.step, int) else solara.SliderFloat
            slider(
                setting.label,
                value=value,
                min=setting.lo,
                max=setting.hi,
                step=setting.step,
                thumb_label="always",
                on_value=lambda v, name=setting.name: pending.set({**pending.value, name: v}),
            )
            note = f"baseline {setting.show(run.baseline_value(setting.name))}"
            if setting.name in changed:
                note = f'<span class="oud-pending">● not applied yet</span> · {note}'
            RawHTML("div", note + " · " + html.escape(EXPLAINERS[setting.name]), classes=["oud-explainer"])


@solara.component
def ApplyButtons(
    run: PairedRun, pending: solara.Reactive[dict[str, float]], apply: Any, tick: Tick, version: int
) -> None:
    tick.value  # noqa: B018 - the button names the week: re-render after each step
    week = run.week
    current = run.current()
    changed = any(v != current[k] for k, v in pending.value.items())
    with solara.Row(style={"flex-wrap": "wrap", "gap": "6px"}):
        solara.Button(f"Apply now (week {week})", on_click=lambda: apply(True), disabled=not changed, color="primary")
        solara.Button("Apply from week 0", on_click=lambda: apply(False), outlined=True)
        solara.Button(
            "Baseline values",
            on_click=lambda: pending.set({s.name: run.baseline_value(s.name) for s in SETTINGS}),
            text=True,
        )


@solara.component
def SetupPanel(setup: Setup, disabled: bool) -> None:
    population = solara.use_reactive(setup.population)
    seed = solara.use_reactive(setup.seed)
    network = solara.use_reactive(setup.network_kind)
    degree = solara.use_reactive(setup.mean_degree)
    RawHTML("h2", "People and network")
    RawHTML(
        "p",
        "Both runs share these. A new start builds a new population and runs its history (burn-in) to week 0.",
        classes=["oud-explainer"],
    )
    solara.Select("Population (people)", values=POPULATIONS, value=population)
    solara.Select("Network shape", values=["small_world", "scale_free"], value=network)
    solara.SliderInt("Ties per person (mean)", value=degree, min=2, max=20, step=1, thumb_label="always")
    solara.InputInt("Random seed (whole number)", value=seed)

    def start() -> None:
        new_start_task(
            Setup(
                population=int(population.value),
                seed=int(seed.value),
                network_kind=str(network.value),
                mean_degree=int(degree.value),
            )
        )

    solara.Button("New start", on_click=start, disabled=disabled, outlined=True)


@solara.component
def RunSummary(run: PairedRun, tick: Tick) -> None:
    tick.value  # noqa: B018 - re-render after each step
    setup = run.setup
    text = (
        f"<b>Week {run.week}</b> (year {run.year:.1f}) · {setup.population:,} people · "
        f"{setup.network_kind.replace('_', '-')} network, {setup.mean_degree} ties each · seed {setup.seed}. "
        f"<b>Your settings:</b> {html.escape(applied_words(run))}."
    )
    RawHTML("div", text, classes=["oud-summary"], attributes={"data-testid": "run-summary", "aria-live": "polite"})


def _diff_cell(q: Quantity, d: float) -> str:
    cls = "oud-up" if d > 0 else "oud-down" if d < 0 else ""
    return f'<td class="{cls}">{q.show(d, signed=True)}</td>'


@solara.component
def Numbers(run: PairedRun, tick: Tick) -> None:
    tick.value  # noqa: B018 - re-render after each step
    rows = []
    for q in QUANTITIES:
        b, a = q.now(run)
        rows.append(
            f'<tr><th scope="row">{html.escape(q.title)} <small>({html.escape(q.unit)})</small></th>'
            f"<td>{q.show(b)}</td><td>{q.show(a)}</td>{_diff_cell(q, a - b)}</tr>"
        )
    table = (
        f"<table><caption>Now, week {run.week}</caption>"
        '<thead><tr><th scope="col">Quantity</th><th scope="col">Baseline</th>'
        '<th scope="col">Your settings</th><th scope="col">Difference</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    RawHTML("div", table, classes=["oud-numbers"], attributes={"data-testid": "numbers"})


@solara.component
def NetworkPanel(s: Session, selected: solara.Reactive[int | None], tick: Tick) -> None:
    view, model = s.network, s.run.arm
    row = row_of(model, selected.value)
    png = solara.use_memo(lambda: view.render(model, row), [model, tick.value, row])
    RawHTML("h3", "Social network (your settings)")
    if view.sampled:
        RawHTML(
            "div",
            f"A sample of {view.n:,} of {model.population.n:,} people, in neighbourhoods; the charts count everyone.",
            classes=["oud-explainer"],
        )

    def on_pick(x: float, y: float) -> None:
        picked = view.row_at(x, y)
        if picked is not None:
            selected.set(int(model.uid[picked]))

    PickImage(
        src=png_src(png),
        testid="network",
        alt="The social network: one marker per person, coloured by opioid-use stage; click a person to inspect them",
        size_px=view.size_px,
        on_pick=on_pick,
    )
    legend = "".join(f"<span>{stage_chip(st)}</span>" for st in STAGE_COLOURS if st != Stage.DECEASED)
    legend += "<span>● no mental-health disorder</span><span>◆ a mental-health disorder</span>"
    RawHTML("div", legend, classes=["oud-legend"])


def _table_html(run: PairedRun, q: Quantity) -> str:
    rows = "".join(
        f"<tr><td>{y:.1f}</td><td>{q.show(b)}</td><td>{q.show(a)}</td><td>{q.show(d, signed=True)}</td></tr>"
        for y, b, a, d in yearly_table(run, q)
    )
    return (
        f"<details><summary>{html.escape(q.title)} as a table</summary><table class='oud-data'>"
        f"<caption>{html.escape(q.title)} ({html.escape(q.unit)})</caption>"
        "<thead><tr><th scope='col'>Year</th><th scope='col'>Baseline</th><th scope='col'>Your settings</th>"
        f"<th scope='col'>Difference</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


@solara.component
def ChartsPanel(s: Session, tick: Tick) -> None:
    run = s.run
    pngs = solara.use_memo(lambda: s.charts.render(run), [run, tick.value, run.version])
    solara.use_effect(s.drawn.set)  # after every render: the latest step is on screen (Play waits for it)
    RawHTML("h3", "Over time: baseline, your settings and the difference")
    with solara.Div(classes=["oud-charts"], attributes={"data-testid": "charts"}):
        for q, png in zip(QUANTITIES, pngs, strict=True):
            b, a = q.now(run)
            alt = (
                f"{q.title} ({q.unit}) over {run.year:.1f} years: baseline {q.show(b)}, your settings "
                f"{q.show(a)}, difference {q.show(a - b, signed=True)}"
            )
            with solara.Div(classes=["oud-chart"]):
                Img(png_src(png), f"chart-{q.key}", alt)
                RawHTML("div", _table_html(run, q))


@solara.component
def RepeatPanel(run: PairedRun, tick: Tick) -> None:
    ready = tick.value >= 0 and run.week >= 1 and bool(run.items)
    seeds = solara.use_reactive(10)
    RawHTML("h3", "Beyond chance? Repeat over seeds")
    RawHTML(
        "p",
        "One pair of runs shows one possible history. The repeat runs both from the start over several seeds "
        "(other people, other chance events) up to this week, and gives the mean difference with its 95% interval.",
        classes=["oud-explainer"],
    )
    with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.Select("Seeds", values=SEED_CHOICES, value=seeds, style={"max-width": "120px"})
        solara.Button(
            f"Repeat over {seeds.value} seeds",
            on_click=lambda: repeat_task(run, int(seeds.value)),
            disabled=repeat_task.pending or not ready,
            color="primary",
        )
        if repeat_task.pending:
            solara.Button("Cancel", on_click=repeat_task.cancel, text=True)
    if not run.items:
        RawHTML("div", "Apply a setting and run a while first.", classes=["oud-explainer"])
    if repeat_task.pending:
        solara.ProgressLinear(value=repeat_task.progress or True)
        RawHTML("div", "Running both settings over the seeds in the background …", classes=["oud-explainer"])
    elif repeat_task.error:
        Notice("error", f"The repeat failed: {repeat_task.exception}")
    elif repeat_task.finished and repeat_task.value is not None:
        RepeatResult(repeat_task.value)


_METRIC_OF = {"waitlist_per_100k": "waitlist"}


@solara.component
def RepeatResult(effects: Effects) -> None:
    main = effects.effect("oud_prevalence")
    RawHTML(
        "p",
        html.escape(effect_sentence(main, effects.seeds, effects.years)),
        classes=["oud-verdict"],
        attributes={
            "data-testid": "repeat-verdict",
            "data-beyond-chance": str(main.beyond_chance).lower(),
            "data-diff": repr(main.diff),
            "data-lo": repr(main.lo),
            "data-hi": repr(main.hi),
        },
    )
    rows = []
    for q in QUANTITIES:
        e = effects.effect(_METRIC_OF.get(q.key, q.key))
        per = 1e5 / effects.setup.population if q.key == "waitlist_per_100k" else q.scale
        verdict = "beyond chance" if e.beyond_chance else "could be chance"
        rows.append(
            f'<tr><th scope="row">{html.escape(q.title)} <small>({html.escape(q.unit)})</small></th>'
            f"<td>{q.show(e.base * per)}</td><td>{q.show(e.diff * per, signed=True)}</td>"
            f"<td>{q.show(e.lo * per, signed=True)} to {q.show(e.hi * per, signed=True)}</td><td>{verdict}</td></tr>"
        )
    table = (
        f"<table class='oud-data'><caption>Mean over {effects.seeds} seeds, final year "
        f"(year {max(effects.years - 1, 0):.1f} to {effects.years:.1f})</caption>"
        "<thead><tr><th scope='col'>Quantity</th><th scope='col'>Baseline</th><th scope='col'>Difference</th>"
        f"<th scope='col'>95% interval</th><th scope='col'>Verdict</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table>"
    )
    RawHTML("div", table, attributes={"data-testid": "repeat-table"})
    RawHTML(
        "p",
        "The same numbers from the command line, with the two scenario files below: "
        f'<span class="oud-command" data-testid="repeat-command">{html.escape(effects.command())}</span>',
        classes=["oud-explainer"],
    )
    with solara.Row():
        for scenario, testid in zip(effects.scenarios, ("download-baseline", "download-settings"), strict=True):
            filename = f"{scenario.name}.toml"
            DownloadButton.element(
                label=f"Download {filename}",
                filename=filename,
                mime="application/toml",
                testid=testid,
                make=lambda sc=scenario: scenario_toml(sc).encode(),
            )


# -- inspector ------------------------------------------------------------------------------------


def _kv_table(rows: list[tuple[str, str]], testid: str = "") -> str:
    body = "".join(f'<tr><th scope="row">{html.escape(k)}</th><td>{v}</td></tr>' for k, v in rows)
    return f'<table class="oud-kv" data-testid="{testid}">{body}</table>'


@solara.component
def Inspector(m: OUDModel, selected: solara.Reactive[int | None], tick: Tick) -> None:
    tick.value  # noqa: B018 - the person's state changes each step

    def pick(stages: tuple[Stage, ...]) -> None:
        rows = np.flatnonzero(np.isin(m.population.stage, [int(s) for s in stages]))
        if rows.size:
            selected.set(int(m.uid[int(np.random.default_rng().choice(rows))]))

    RawHTML("h3", "Inspector: one person in your settings")
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
    if row is None:
        Notice(
            "warning",
            f"Person {uid} is not in this population now: they died, or the id does not exist in this run "
            "(a new start gives everyone new ids).",
        )
    else:
        PersonDetails(m, row, m.transitions.for_person(uid), selected)


@solara.component
def PersonDetails(m: OUDModel, row: int, history: list, selected: solara.Reactive[int | None]) -> None:
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
    RawHTML("div", _kv_table(rows, "inspector-table"))
    ties = person.ties()
    solara.Text(f"Ties ({len(ties)}), click to inspect:", style={"font-size": "0.85rem"})
    with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
        for other in ties[:40]:
            solara.Button(
                f"{other.unique_id} · {STAGE_LABELS[other.stage]}",
                size="small",
                text=True,
                style={"text-transform": "none"},
                on_click=lambda uid=other.unique_id: selected.set(int(uid)),
            )
