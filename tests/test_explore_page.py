"""The Explore page's components without a browser (solara.render), as Solara's testing guide suggests.

They press the same buttons and move the same sliders a student does and check what the page then
shows against the paired run behind it.
"""

from __future__ import annotations

import re
import statistics
import time
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
def session(monkeypatch: pytest.MonkeyPatch) -> explore.Session:
    """The session the next Explore page gets (instead of a default one from the spare pool)."""
    s = explore.Session(SMALL).prepare()
    monkeypatch.setattr(explore.spare_pool, "take", lambda: s)
    return s


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
