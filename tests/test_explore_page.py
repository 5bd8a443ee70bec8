"""The Explore page's components without a browser (solara.render), as Solara's testing guide suggests.

They press the same buttons and move the same sliders a student does and check what the page then
shows against the paired run behind it.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from typing import Any

import ipyvue
import ipyvuetify as v
import numpy as np
import pytest
import solara

from oudsim.agents.states import Stage
from oudsim.model.dashboard import explore
from oudsim.model.dashboard.drawing import MAX_DRAWN, NetworkView, sample_rows
from oudsim.model.dashboard.paired_charts import QUANTITIES
from oudsim.model.dashboard.ui import Layout
from oudsim.model.dashboard.whatif import SETTINGS, Setup

SMALL = Setup(population=1_200, seed=3, burn_in_years=1.0)


@pytest.fixture()
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[explore.Session]:
    """The session the next Explore page gets (instead of a default one from the spare pool)."""
    from oudsim.model.dashboard import compare

    s = explore.Session(SMALL).prepare()
    monkeypatch.setattr(explore.spare_pool, "take", lambda: s)
    yield s
    compare.explore_scenario.set(None)  # an applied setting offers itself to Compare: not to later tests


def render_explore() -> Any:
    _, rc = solara.render(Layout(children=[explore.Explore()]), handle_error=False)
    return rc


def elements(rc: Any) -> list[ipyvue.Html]:
    return rc.find(ipyvue.Html, meta_oud_element=True).widgets


def by_testid(rc: Any, testid: str) -> ipyvue.Html | None:
    return next((w for w in elements(rc) if w.attributes.get("data-testid") == testid), None)


def html_text(rc: Any, testid: str) -> str:
    w = by_testid(rc, testid)
    assert w is not None, f"no element with data-testid={testid!r}"
    return w.attributes["innerHTML"]


def all_html(rc: Any) -> str:
    return "\n".join(w.attributes["innerHTML"] for w in elements(rc))


def src(rc: Any, testid: str) -> str:
    w = by_testid(rc, testid)
    assert w is not None and w.tag == "img", f"no image with data-testid={testid!r}"
    return w.attributes["src"]


def click(rc: Any, label: str) -> None:
    rc.find(v.Btn, children=[label]).widget.click()


def button(rc: Any, label: str) -> Any:
    return rc.find(v.Btn, children=[label]).widget


def week(rc: Any) -> int:
    return int(re.search(r"Week (\d+)", html_text(rc, "run-summary")).group(1))


def move_slider(rc: Any, label: str, value: float) -> None:
    rc.find(v.Slider, label=label).widget.v_model = value


def test_every_control_is_named_in_words() -> None:
    for s in SETTINGS:
        assert re.search(r"\(.+\)", s.label), f"{s.name}: a label says its unit"
        assert "_" not in s.label and s.name in explore.EXPLAINERS


def test_step_advances_both_runs_and_redraws(session: explore.Session) -> None:
    rc = render_explore()
    assert week(rc) == 0
    chart, network = src(rc, "chart-oud_prevalence"), src(rc, "network")
    click(rc, "Step one week")
    assert week(rc) == 1 and session.run.baseline.week == session.run.arm.week == 1
    assert src(rc, "chart-oud_prevalence") != chart and src(rc, "network") != network
    click(rc, "Run one year")
    assert week(rc) == 53


def test_a_step_re_renders_only_what_shows_the_week(monkeypatch: pytest.MonkeyPatch, session: explore.Session) -> None:
    rendered: list[str] = []
    parts = ["Explore", "SettingsPanel", "SetupPanel", "ApplyButtons", "RunSummary", "Numbers"]
    parts += ["NetworkPanel", "ChartsPanel", "RepeatPanel", "Inspector"]
    for name in parts:
        component = getattr(explore, name)
        monkeypatch.setattr(component, "f", lambda *a, _f=component.f, _n=name, **k: rendered.append(_n) or _f(*a, **k))
    rc = render_explore()
    rendered.clear()
    click(rc, "Step one week")
    shows_the_week = {
        "ApplyButtons",
        "RunSummary",
        "Numbers",
        "NetworkPanel",
        "ChartsPanel",
        "RepeatPanel",
        "Inspector",
    }
    assert set(rendered) == shows_the_week
    assert len(rendered) == len(shows_the_week)  # one render pass
    assert button(rc, "Apply now (week 1)") is not None
    rendered.clear()
    move_slider(rc, SETTINGS[0].label, 3.0)  # isolation
    assert "SettingsPanel" in rendered
    assert "Explore" not in rendered and "ChartsPanel" not in rendered  # a slider does not redraw the charts


def test_a_moved_slider_is_pending_until_applied_now(session: explore.Session) -> None:
    rc = render_explore()
    click(rc, "Run one year")
    assert "not applied yet" not in all_html(rc)
    assert button(rc, "Apply now (week 52)").disabled  # nothing to apply
    move_slider(rc, SETTINGS[0].label, 3.0)  # isolation
    assert "not applied yet" in all_html(rc)
    assert session.run.items == []  # not before Apply
    click(rc, "Apply now (week 52)")
    assert "not applied yet" not in all_html(rc)
    item = session.run.items[0]
    assert item.start_year == pytest.approx(52.5 / 52)
    assert item.changes["social.isolation_multiplier"].amount == 3.0
    assert "social isolation ×1 → ×3" in html_text(rc, "run-summary")
    click(rc, "Run one year")
    b, a = session.run.now("lonely_share")
    assert a > b  # the setting acts: more people are lonely in "your settings"


def test_apply_from_week_0_starts_both_runs_again(session: explore.Session) -> None:
    rc = render_explore()
    click(rc, "Run one year")
    move_slider(rc, "OUD treatment slots (× the baseline's number)", 2.0)
    click(rc, "Apply from week 0")
    assert week(rc) == 0 and session.run.items[0].start_year == 0.0


def test_numbers_strip_shows_both_runs_and_their_difference(session: explore.Session) -> None:
    rc = render_explore()
    move_slider(rc, SETTINGS[0].label, 4.0)
    click(rc, "Apply now (week 0)")
    click(rc, "Run one year")
    table = html_text(rc, "numbers")
    assert table.count("<tr>") == len(QUANTITIES) + 1
    q = next(q for q in QUANTITIES if q.key == "lonely_share")
    b, a = q.now(session.run)
    assert f"<td>{q.show(b)}</td><td>{q.show(a)}</td>" in table
    assert q.show(a - b, signed=True) in table and a - b > 0


def test_every_chart_has_a_text_alternative_with_its_values(session: explore.Session) -> None:
    rc = render_explore()
    click(rc, "Run one year")
    for q in QUANTITIES:
        img = by_testid(rc, f"chart-{q.key}")
        b, a = q.now(session.run)
        assert f"baseline {q.show(b)}" in img.attributes["alt"]
        assert f"<caption>{q.title} ({q.unit})</caption>" in all_html(rc)


def test_inspector_follows_a_clicked_person(session: explore.Session) -> None:
    rc = render_explore()
    view = session.network
    local = 17
    x, y = view.pos[local]
    size = view.size_px
    by_testid(rc, "network").fire_event("click", {"offsetX": float(x) * size, "offsetY": float(1.0 - y) * size})
    row = int(view.rows[local])
    uid = int(session.run.arm.uid[row])
    assert f'data-testid="inspector-id">{uid}<' in all_html(rc)
    stage = session.run.arm.people[row].stage
    assert f'data-stage="{stage.name.lower()}"' in all_html(rc)


def test_inspector_takes_a_typed_id_and_stays_with_the_person(session: explore.Session) -> None:
    rc = render_explore()
    model = session.run.arm
    row = int(np.flatnonzero(model.population.stage == Stage.OUD)[0])
    uid = int(model.uid[row])
    box = rc.find(v.TextField, label="Person id (or click someone in the network)").widget
    box.v_model = str(uid)
    box.fire_event("keyup.enter", None)  # continuous_update=False: the value is taken on Enter
    assert f'data-testid="inspector-id">{uid}<' in all_html(rc)
    assert "OUD, untreated" in all_html(rc)
    click(rc, "Run one year")  # ids survive steps; rows are reused after deaths
    now = explore.row_of(model, uid)
    if now is not None:
        assert f'data-stage="{model.people[now].stage.name.lower()}"' in all_html(rc)


def test_a_large_population_is_drawn_as_a_sample_and_counted_in_full() -> None:
    s = explore.Session(Setup(population=MAX_DRAWN * 2, seed=1, burn_in_years=0.5))
    view = s.network
    assert view.sampled and view.n == MAX_DRAWN
    pop = s.run.arm.population
    # The charts count everyone: the numbers are shares of the whole population.
    assert s.run.arm.metrics["oud_prevalence"] == pytest.approx(np.isin(pop.stage, [Stage.OUD, Stage.TREATMENT]).mean())
    drawn_ties = view.u.size / view.n
    assert drawn_ties > 1.5  # neighbourhoods keep ties among the people drawn (a random sample: ~0.6)


def test_sampled_rows_are_distinct_sorted_and_map_back() -> None:
    s = explore.Session(Setup(population=MAX_DRAWN + 700, seed=2, burn_in_years=0.5))
    view = s.network
    assert np.all(np.diff(view.rows) > 0)
    for local in (0, 100, view.n - 1):
        x, y = view.pos[local]
        assert view.row_at(float(x), float(1.0 - y)) == int(view.rows[local])
        assert view.local_row(int(view.rows[local])) == local
    assert view.row_at(-1.0, -1.0) is None


def test_sample_rows_of_a_small_population_is_everyone() -> None:
    u, v_ = np.array([0, 1]), np.array([1, 2])
    assert sample_rows(u, v_, 3, 10).tolist() == [0, 1, 2]


def test_each_visitor_gets_a_session_of_their_own_ready_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explore, "Setup", lambda: SMALL)
    monkeypatch.setattr(explore.SparePool, "QUIET_S", 3600.0)  # no background refill in this test
    pool = explore.SparePool()
    pool.fill_now()
    first, second = pool.take(), pool.take()
    assert first is not second and first.run.arm is not second.run.arm
    assert first.run.week == 0
    assert all(f.blit.full_draws == 1 for f in first.charts.figures)  # chart backgrounds drawn ahead


def test_step_and_redraw_at_the_default_population_take_under_100_ms() -> None:
    """CPU time of this thread for a paired step and every redraw (wall time varies on a shared machine)."""
    s = explore.Session(Setup()).prepare()
    run = s.run
    run.apply({"isolation": 3.0})
    times = []
    for _ in range(15):
        t0 = time.thread_time()
        run.step()
        s.charts.render(run)
        s.network.render(run.arm, 5)
        times.append(time.thread_time() - t0)
    assert statistics.median(times) < 0.1, f"median {statistics.median(times) * 1000:.0f} ms"


def test_network_view_layout_is_computed_once(monkeypatch: pytest.MonkeyPatch, session: explore.Session) -> None:
    from oudsim.model.dashboard import drawing

    monkeypatch.setattr(drawing, "force_layout", lambda *a, **k: pytest.fail("layout again"))
    rc = render_explore()
    for _ in range(3):
        click(rc, "Step one week")
    assert isinstance(session.network, NetworkView)


def _agg_ties(pos: np.ndarray, u: np.ndarray, v: np.ndarray, size: int, width_pt: float) -> np.ndarray:
    """The same ties stroked by Agg, as an RGBA array (the reference TieRaster stands in for)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size / 100, size / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    for a, b in zip(u, v, strict=True):
        ax.plot(pos[[a, b], 0], pos[[a, b], 1], color="#D0D0D0", lw=width_pt, solid_capstyle="butt")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def test_ties_painted_as_pixels_look_like_agg_lines() -> None:
    from oudsim.model.dashboard.drawing import TIE_GREY, TieRaster

    rng = np.random.default_rng(4)
    size, n = 200, 40
    pos = rng.uniform(0.05, 0.95, (n, 2))
    u, v = rng.integers(0, n, 60), rng.integers(0, n, 60)
    keep = u != v
    u, v = u[keep], v[keep]
    raster = TieRaster(pos, u, v, size, width_px=0.6 * 100 / 72)
    white = np.full((size, size, 4), 255, dtype=np.uint8)

    none = white.copy()
    raster.paint(none, np.zeros(u.size, dtype=bool), TIE_GREY)
    assert (none == white).all()  # no active tie, nothing painted

    ours = white.copy()
    raster.paint(ours, np.ones(u.size, dtype=bool), TIE_GREY)
    agg = _agg_ties(pos, u, v, size, 0.6)
    dark_ours = 255.0 - ours[..., 0].astype(float)
    dark_agg = 255.0 - agg[..., 0].astype(float)
    assert abs(dark_ours.sum() / dark_agg.sum() - 1) < 0.1  # as much ink
    assert np.corrcoef(dark_ours.ravel(), dark_agg.ravel())[0, 1] > 0.8  # in the same places
    assert ours[..., 0].min() >= TIE_GREY[0]  # never darker than the tie colour

    one = white.copy()
    only = np.zeros(u.size, dtype=bool)
    only[0] = True
    raster.paint(one, only, TIE_GREY)
    changed = np.argwhere(one[..., 0] < 255)  # (row, column) of painted pixels
    ends = np.array([[(1 - pos[w, 1]) * size, pos[w, 0] * size] for w in (u[0], v[0])])
    d = ends[1] - ends[0]
    rel = changed + 0.5 - ends[0]
    off_line = np.abs(d[0] * rel[:, 1] - d[1] * rel[:, 0]) / np.hypot(*d)
    assert changed.size and off_line.max() < 1.5  # one tie paints only pixels along its own line
