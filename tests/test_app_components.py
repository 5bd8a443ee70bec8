"""The dashboard's components without a browser (solara.render), as Solara's testing guide suggests.

They drive the same widgets a student clicks (Mesa's Step and Reset buttons, the sliders, the
network image, the inspector's id box) and check what the page then shows against the model.
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
import solara.widgets

from oudsim.agents.states import Stage
from oudsim.model.dashboard import ChartsView, NetworkView, compare, drawing
from oudsim.model.dashboard import explore as app
from oudsim.model.dashboard.ui import DownloadButton, Layout

POP = 400  # small: CI runs the suite on two shared cores


@pytest.fixture()
def model(monkeypatch: pytest.MonkeyPatch) -> app.ExploreModel:
    """The model the next Explore page gets (instead of a default one from the spare pool)."""
    m = app.ExploreModel(population=POP, rng=3, burn_in_years=1)
    monkeypatch.setattr(app.spare_pool, "take", lambda: (m, ChartsView(m)))
    return m


def render_explore() -> Any:
    _, rc = solara.render(Layout(children=[app.Explore()]), handle_error=False)
    return rc


def elements(rc: Any) -> list[ipyvue.Html]:
    """The page's plain elements (ui.RawHTML, ui.Img): inner HTML and attributes are DOM properties."""
    return rc.find(ipyvue.Html, meta_oud_element=True).widgets


def by_testid(rc: Any, testid: str) -> ipyvue.Html | None:
    return next((w for w in elements(rc) if w.attributes.get("data-testid") == testid), None)


def html_text(rc: Any, testid: str) -> str:
    w = by_testid(rc, testid)
    assert w is not None, f"no element with data-testid={testid!r}"
    return w.attributes["innerHTML"]


def all_html(rc: Any) -> str:
    return "\n".join(w.attributes["innerHTML"] for w in elements(rc))


def image(rc: Any, testid: str) -> ipyvue.Html:
    w = by_testid(rc, testid)
    assert w is not None and w.tag == "img", f"no image with data-testid={testid!r}"
    return w


def chart_src(rc: Any, testid: str) -> str:
    """The data URL of one chart of the Explore page."""
    return image(rc, testid).attributes["src"]


def click(rc: Any, label: str) -> None:
    rc.find(v.Btn, children=[label]).widget.click()


def week(rc: Any) -> int:
    return int(re.search(r"Week (\d+)", html_text(rc, "run-summary")).group(1))


def test_every_control_is_labelled_with_units_under_its_explainer() -> None:
    changes: list[tuple[str, Any]] = []
    _, rc = solara.render(
        app.ExplainedUserInputs(app.MODEL_PARAMS, on_change=lambda k, x: changes.append((k, x))), handle_error=False
    )
    sliders = rc.find(v.Slider).widgets
    expected = [s["label"] for s in app.MODEL_PARAMS.values() if s["type"].startswith("Slider")]
    assert sorted(s.label for s in sliders) == sorted(expected)
    assert all("(" in s.label and ")" in s.label for s in sliders), "every slider names its unit"
    text = all_html(rc)
    for title, explainer, _names in app.MECHANISMS:
        assert title in text and explainer.split(".")[0] in text
    # The explainer sits right before the controls it explains: the isolation text precedes its slider.
    assert text.index("Social isolation") < text.index("Mental health")
    isolation = rc.find(v.Slider, label=app.MODEL_PARAMS["isolation"]["label"]).widget
    isolation.v_model = 2.5
    assert ("isolation", 2.5) in changes


def test_step_redraws_charts_and_network(model: app.ExploreModel) -> None:
    rc = render_explore()
    net, chart = image(rc, "network").attributes["src"], chart_src(rc, "chart-oud_prevalence")
    assert week(rc) == 0
    click(rc, "Step")
    assert week(rc) == model.week == 1
    assert image(rc, "network").attributes["src"] != net
    assert chart_src(rc, "chart-oud_prevalence") != chart
    assert len(model.datacollector.model_vars["oud_prevalence"]) == 2


def test_slider_value_reaches_the_model_on_reset(model: app.ExploreModel) -> None:
    rc = render_explore()
    rc.find(v.Slider, label=app.MODEL_PARAMS["isolation"]["label"]).widget.v_model = 2.5
    rc.find(v.Slider, label=app.MODEL_PARAMS["naloxone_coverage"]["label"]).widget.v_model = 0.8
    assert "isolation ×1 " in html_text(rc, "run-summary")  # not before Reset
    click(rc, "Step")
    click(rc, "Reset")
    summary = html_text(rc, "run-summary")
    assert "isolation ×2.5" in summary and "naloxone 80%" in summary and "Week 0" in summary


def test_inspector_shows_the_chosen_persons_state(model: app.ExploreModel) -> None:
    rc = render_explore()
    row = int(np.flatnonzero(model.population.stage == Stage.OUD)[0])
    uid = int(model.uid[row])
    box = rc.find(v.TextField, label="Person id (or click someone in the network)").widget
    box.v_model = str(uid)
    box.fire_event("keyup.enter", None)  # continuous_update=False: the value is taken on Enter
    table = all_html(rc)
    assert f'data-testid="inspector-id">{uid}<' in table
    assert f'data-stage="{model.people[row].stage.name.lower()}"' in table
    assert "OUD, untreated" in table
    # Steps keep the inspector on the same person (ids survive; rows are reused after deaths).
    for _ in range(3):
        click(rc, "Step")
    table = all_html(rc)
    now = app.row_of(model, uid)
    if now is not None:
        assert f'data-stage="{model.people[now].stage.name.lower()}"' in table


def test_clicking_a_node_picks_that_person(model: app.ExploreModel) -> None:
    rc = render_explore()
    view = app.network_view(model)
    row = 17
    x, y = view.pos[row]
    # What the browser sends for a click: the offset in CSS pixels within the image (shown at size_px).
    size = view.size_px
    image(rc, "network").fire_event("click", {"offsetX": float(x) * size, "offsetY": float(1.0 - y) * size})
    assert f'data-testid="inspector-id">{int(model.uid[row])}<' in all_html(rc)


def test_layout_is_computed_once_per_network(model: app.ExploreModel, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = drawing.force_layout

    def counting(n: int, *args: Any, **kwargs: Any) -> np.ndarray:
        calls.append(n)
        return real(n, *args, **kwargs)

    monkeypatch.setattr(drawing, "force_layout", counting)
    rc = render_explore()
    for _ in range(4):
        click(rc, "Step")
    assert calls == [POP]
    click(rc, "Reset")  # a new model has a new network: one more layout
    click(rc, "Step")
    assert len(calls) == 2


def test_large_population_shows_charts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    m = app.ExploreModel(population=app.MAX_DRAWN + 500, rng=1, burn_in_years=0)
    monkeypatch.setattr(app.spare_pool, "take", lambda: (m, ChartsView(m)))
    monkeypatch.setattr(drawing, "force_layout", lambda *a, **k: pytest.fail("no layout for a large population"))
    rc = render_explore()
    assert "shows the charts only" in all_html(rc)
    assert by_testid(rc, "network") is None
    chart = chart_src(rc, "chart-mean_stigma")
    click(rc, "Step")
    assert chart_src(rc, "chart-mean_stigma") != chart


def test_a_refused_value_is_reported_not_raised() -> None:
    m = app.ExploreModel(population=POP, burn_in_years=0, isolation=-1.0)
    assert m.error is not None and "isolation" in m.error and "allowed range" in m.error
    assert m.settings()["isolation"] == 1.0  # the defaults run instead
    m = app.ExploreModel(population=POP, burn_in_years=0, rng="forty-two")
    assert "random seed" in m.error
    assert app.ExploreModel(population=POP, burn_in_years=0, rng=" 7 ").seed == 7


def test_step_plus_redraw_at_1000_people_is_under_250_ms() -> None:
    """CPU time of this thread for a step and both redraws (wall time on a shared machine varies)."""
    m = app.ExploreModel(population=1_000, rng=5, burn_in_years=1)
    network, charts = NetworkView(m), ChartsView(m)
    network.render(m)
    charts.render(m)
    times = []
    for _ in range(12):
        t0 = time.thread_time()
        m.step()
        network.render(m, selected_row=3)
        charts.render(m)
        times.append(time.thread_time() - t0)
    assert statistics.median(times) < 0.25, f"median {statistics.median(times) * 1000:.0f} ms"


def test_node_lookup_inverts_the_drawing() -> None:
    m = app.ExploreModel(population=POP, rng=2, burn_in_years=0)
    view = NetworkView(m)
    for row in (0, 5, POP - 1):
        x, y = view.pos[row]
        assert view.row_at(float(x), float(1.0 - y)) == row
    assert view.row_at(-1.0, -1.0) is None  # far from everyone: no one


@pytest.fixture(scope="module")
def runs() -> Any:
    from oudsim.model.experiments import run_replicates

    return run_replicates(
        ["baseline", "expand_moud"],
        replicates=2,
        years=0.5,
        population=200,
        seed=1,
        workers=1,
        overrides={"burn_in_years": 1},
    )


def test_band_is_mean_and_percentiles_across_replicates(runs: Any) -> None:
    b = compare.band(runs, "oud_prevalence")
    assert set(b["scenario"]) == {"baseline", "expand_moud"}
    last = runs[(runs["scenario"] == "baseline") & (runs["step"] == runs["step"].max())]["oud_prevalence"]
    row = b[(b["scenario"] == "baseline")].iloc[-1]
    assert row["mean"] == pytest.approx(last.mean())
    assert row["lo"] == pytest.approx(np.percentile(last, 2.5))
    assert row["hi"] == pytest.approx(np.percentile(last, 97.5))
    assert (b["lo"] <= b["mean"] + 1e-12).all() and (b["mean"] <= b["hi"] + 1e-12).all()


def test_comparison_results_show_both_scenarios_and_follow_the_metric(runs: Any) -> None:
    metric = solara.reactive("oud_prevalence")
    _, rc = solara.render(compare.ComparisonResults(runs, metric), handle_error=False)
    table = all_html(rc)
    assert 'data-testid="summary-table"' in table
    assert "<th>baseline</th>" in table and "<th>expand_moud</th>" in table
    assert 'class="chosen"><td>OUD prevalence (in care or not)' in table
    before = image(rc, "compare-chart").attributes["src"]
    rc.find(v.Select, label="Metric").widget.v_model = "Mean community stigma"
    assert metric.value == "mean_stigma"
    assert image(rc, "compare-chart").attributes["src"] != before
    assert 'class="chosen"><td>Mean community stigma' in all_html(rc)
    csv = rc.find(DownloadButton, testid="download-runs").widget.make().decode()
    assert csv.splitlines()[0].startswith("scenario,replicate,seed,step,year")


def test_each_visitor_gets_a_model_of_their_own_ready_drawn() -> None:
    pool = app.SparePool()
    (first, charts), (second, _) = pool.take(), pool.take()
    assert first is not second and first.network is not second.network
    assert first.week == 0 and first.population.n == app.DEFAULT_POPULATION
    assert getattr(first, "_dashboard_network", None) is not None  # layout computed ahead
    assert charts.figures[0].blit.full_draws == 1  # chart backgrounds drawn ahead
