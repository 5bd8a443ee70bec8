"""OUDModel as a Mesa model: reproducibility, the metric catalogue, batch_run, the Person view,
invariants that must hold every step, and bad input refused before a run starts."""

from __future__ import annotations

import copy
import math

import mesa
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oudsim.agents import Care, Person, Stage
from oudsim.agents.population import FIELD_NAMES, Population
from oudsim.model import OUDModel, ParameterError
from oudsim.model.metrics import BY_NAME, METRIC_NAMES
from oudsim.model.parameters import apply_overrides
from oudsim.model.processes.treatment import slots
from oudsim.model.transitions import TransitionLog


def run(seed, n=1_500, steps=30, **kw):
    m = OUDModel(population=n, rng=seed, burn_in_years=1, **kw)
    m.run_for(steps)
    return m


def test_same_seed_same_frames_different_seed_different_run():
    a, b, c = run(11).metrics_frame(), run(11).metrics_frame(), run(12).metrics_frame()
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_datacollector_reports_exactly_the_catalogue():
    m = run(1, steps=3)
    df = m.datacollector.get_model_vars_dataframe()
    assert list(df.columns) == list(METRIC_NAMES)
    assert len(df) == 4  # step 0 (end of burn-in) and three steps


def test_batch_run_works():
    results = mesa.batch_run(
        OUDModel,
        parameters={"population": 500, "burn_in_years": 0.5},
        rng=[1, 2],
        max_steps=10,
        number_processes=1,
        display_progress=False,
    )
    df = pd.DataFrame(results)
    assert set(METRIC_NAMES) <= set(df.columns)
    assert sorted(df["rng"].unique()) == [1, 2]
    assert df["Step"].max() == 10


def test_person_is_a_view_that_owns_no_state():
    m = run(3, steps=2)
    assert len(m.agents) == m.population.n
    p = m.people[10]
    assert isinstance(p, Person) and p.row == 10
    own = {k for k in vars(p) if not k.startswith("_")}
    assert own <= {"model", "row", "unique_id", "pos"}, own  # nothing about the person itself
    m.population.stage[10] = Stage.OUD
    m.population.stigma[10] = 0.123
    assert p.stage is Stage.OUD and math.isclose(p.stigma, 0.123, rel_tol=1e-6)
    assert p.state()["stage"] == "oud"
    # Mesa's AgentSet tools see the same people as the arrays.
    n_mh = len(m.agents.select(lambda a: a.has_disorder))
    assert n_mh == int(m.population.any_mh.sum())
    by_stage = m.agents.groupby("stage").count()
    assert sum(by_stage.values()) == m.population.n


def test_deaths_replace_agents_and_history_follows_the_person():
    m = run(5, n=2_000, steps=60, **{"demography.mortality_per_1000": [200.0] * 5})
    assert len(m.agents) == m.population.n == 2_000
    ids = m.uid
    assert len(set(ids.tolist())) == ids.size
    assert [a.unique_id for a in m.people] == ids.tolist()
    # Someone who entered during the run has a history that starts after they entered.
    row = int(np.argmax(m.population.entry_week))
    entry = int(m.population.entry_week[row])
    assert entry > 0
    assert all(week >= entry for week, _, _ in m.people[row].history())
    log = m.transitions.frame()
    dead = log[log["to"] == Stage.DECEASED]
    assert len(dead) > 0 and not set(dead["person"]) & set(ids.tolist())


def test_transition_log_keeps_every_change_as_it_grows():
    log = TransitionLog(capacity=4)
    log.record(3, np.array([7, 8]), np.array([0, 1], dtype=np.int8), int(Stage.MISUSE))
    assert len(log) == 0  # not recording (burn-in)
    log.recording = True
    rng = np.random.default_rng(1)
    weeks, uids, old, new = [], [], [], []
    for week in range(-2, 40):  # grows from 4 rows; negative weeks survive the packing
        k = int(rng.integers(0, 6))
        u, a, b = rng.integers(1, 10**12, k), rng.integers(0, 6, k), rng.integers(0, 6, k)
        log.record(week, u, a.astype(np.int8), b.astype(np.int8))
        weeks += [week] * k
        uids += u.tolist()
        old += a.tolist()
        new += b.tolist()
    f = log.frame()
    assert len(log) == len(f) == len(weeks)
    assert f["week"].tolist() == weeks and f["person"].tolist() == uids
    assert f["from"].tolist() == old and f["to"].tolist() == new
    who = uids[5]
    assert log.for_person(who) == [
        (w, Stage(a), Stage(b)) for w, u, a, b in zip(weeks, uids, old, new, strict=True) if u == who
    ]


def test_newcomers_get_new_ids_in_the_same_agents():
    m = run(5, n=1_500, steps=1)
    agents_before, ids_before, week = set(m.agents), m.uid.copy(), m.week
    m.run_for(30)
    assert set(m.agents) == agents_before  # the agents are views onto rows
    replaced = m.population.entry_week > week
    assert replaced.any()
    assert (m.uid[replaced] > ids_before.max()).all() and (m.uid[~replaced] == ids_before[~replaced]).all()
    assert [a.unique_id for a in m.agents] == m.uid.tolist()
    log = m.transitions.frame()
    deaths = log[(log["to"] == Stage.DECEASED) & (log["week"] > week)]
    # each replaced row had a logged death (a row can turn over twice), and the dead keep their ids
    assert len(deaths) >= replaced.sum() and not deaths["person"].isin(m.uid).any()


def test_newcomers_take_every_field_of_their_row():
    m = OUDModel(population=600, rng=3, burn_in_years=0)
    pop, pool = m.population, Population.initial(m.params, np.random.default_rng(9))
    before = {name: getattr(pop, name).copy() for name in FIELD_NAMES}
    rows, src = np.array([4, 17, 599]), np.array([0, 5, 2])
    pop.replace(rows, pool, src, week=12)
    others = np.setdiff1d(np.arange(pop.n), rows)
    for name in FIELD_NAMES:
        now, new, old = getattr(pop, name), getattr(pool, name), before[name]
        if name in ("entry_week", "stage_since"):
            assert (now[rows] == 12).all(), name
        else:
            assert np.array_equal(now[..., rows], new[..., src]), name
        assert np.array_equal(now[..., others], old[..., others]), name
    # a copy (pickle, deepcopy) is a population of its own whose fields are still its blocks' views
    twin = copy.deepcopy(pop)
    twin.replace(np.array([0]), pool, np.array([1]), week=13)
    assert twin.stage[0] == pool.stage[1] and twin.entry_week[0] == 13 and pop.entry_week[0] != 13


def test_kept_argument_lists_point_at_the_models_current_arrays():
    """Processes keep their compiled function's arguments per parameter set (rates.per_parameters):
    every array of the model they hold must still be the model's array, not a stale copy."""
    m = run(2, n=800, steps=3)
    pop, net = m.population, m.network
    owned = [getattr(pop, name) for name in FIELD_NAMES] + [*pop._blocks, *m.streams.values(), m.factors._values]
    owned += [a for obj in (m, net) for a in vars(obj).values() if isinstance(a, np.ndarray)]
    kept = {derive: entry[1] for derive, entry in m.derived.items()}
    assert len(kept) >= 10  # every process keeps its list
    m.derived.clear()
    checked = 0
    for derive, old in kept.items():
        new = derive(m)
        for a, b in zip(old, new, strict=True):
            if isinstance(b, np.ndarray) and any(np.may_share_memory(b, o) for o in owned):
                assert isinstance(a, np.ndarray) and np.may_share_memory(a, b), derive.__name__
                checked += 1
    assert checked > 100
    # and a step with the fresh lists gives the same next state as one with the kept ones would
    twin = run(2, n=800, steps=3)
    m.step()
    twin.step()
    assert m.metrics == twin.metrics


# The model's invariants (model/invariants.py) are checked after every process of every step by
# models built with check_invariants=True; these runs add what only the whole step shows.
def check_metrics(m: OUDModel) -> None:
    assert len(m.agents) == m.population.n
    for name, value in m.metrics.items():
        assert math.isfinite(value), name
        assert value >= 0, name
        if BY_NAME[name].kind == "share":
            assert value <= 1, name


def test_invariants_every_step_over_a_long_run():
    m = OUDModel(population=3_000, rng=21, burn_in_years=0, check_invariants=True, capacity=300)
    for _ in range(520):
        m.step()
        check_metrics(m)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    capacity=st.floats(0, 3_000),
    integrated=st.floats(0, 1),
    isolation=st.floats(0, 5),
    stigma=st.floats(0, 1),
    kind=st.sampled_from(["small_world", "scale_free"]),
)
def test_invariants_hold_for_any_valid_parameters(seed, capacity, integrated, isolation, stigma, kind):
    m = OUDModel(
        population=600,
        rng=seed,
        burn_in_years=0.2,
        capacity=capacity,
        integrated_share=integrated,
        isolation=isolation,
        stigma=stigma,
        network_kind=kind,
        check_invariants=True,
    )
    for _ in range(20):
        m.step()
        check_metrics(m)


def test_capacity_cut_mid_run_never_exceeds_slots():
    m = OUDModel(population=3_000, rng=2, burn_in_years=1, capacity=2_000, check_invariants=True)
    m.run_for(5)
    full = np.count_nonzero(m.population.care == Care.MEDICATION)
    in_care = m.population.care == Care.MEDICATION
    m.params = apply_overrides(m.params, {"treatment.capacity_per_100k": 100.0})
    m.step()  # the checks after treatment hold the slots: the newest admissions went back to the queue
    cap_med, _, _ = slots(m)
    assert full > cap_med >= np.count_nonzero(m.population.care == Care.MEDICATION)
    # Those put out of care lose tolerance, as anyone leaving medication does.
    put_out = in_care & (m.population.stage == Stage.OUD.value) & m.population.waiting
    assert put_out.any() and np.all(m.population.lost_tolerance_until[put_out] > m.week)


def test_building_never_computes_a_layout(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("layout computed during model construction")

    for name in [n for n in dir(nx) if n.endswith("_layout")]:
        monkeypatch.setattr(nx, name, boom)
        monkeypatch.setattr(nx.drawing.layout, name, boom, raising=False)
    m = OUDModel(population=1_000, rng=1, burn_in_years=0.5)
    m.run_for(3)


# -- bad input is refused before the run starts, naming the field or file --------------------


def test_negative_rate_refused_by_name():
    with pytest.raises(ParameterError, match=r"use\.initiation_rate.*allowed range \[0, 5\]"):
        OUDModel(population=500, rng=1, **{"use.initiation_rate": -0.1})


def test_probability_above_one_refused():
    with pytest.raises(ParameterError, match=r"overdose\.naloxone_coverage = 1\.5.*\[0, 1\]"):
        OUDModel(population=500, rng=1, naloxone_coverage=1.5)


def test_unknown_parameter_suggests_closest():
    with pytest.raises(ParameterError, match="did you mean 'treatment.seek_rate'"):
        OUDModel(population=500, rng=1, **{"treatment.seek_rat": 1.0})


def test_missing_edgelist_file(tmp_path):
    with pytest.raises(ParameterError, match="no such file"):
        OUDModel(
            population=50,
            rng=1,
            burn_in_years=0,
            network_kind="edgelist",
            **{"network.edgelist_path": str(tmp_path / "nope.txt")},
        )


def test_malformed_edgelist_names_file_and_line(tmp_path):
    f = tmp_path / "ties.txt"
    f.write_text("".join(f"{i} {i + 1}\n" for i in range(20)) + "7\n")
    with pytest.raises(ParameterError, match=r"ties\.txt, line 21"):
        OUDModel(population=10, rng=1, burn_in_years=0, network_kind="edgelist", **{"network.edgelist_path": str(f)})


def test_edgelist_with_too_few_nodes(tmp_path):
    f = tmp_path / "ties.txt"
    f.write_text("a b\nb c\n")
    with pytest.raises(ParameterError, match="3 nodes but the population is 10"):
        OUDModel(population=10, rng=1, burn_in_years=0, network_kind="edgelist", **{"network.edgelist_path": str(f)})


def test_edgelist_network_is_used(tmp_path):
    g = nx.karate_club_graph()
    f = tmp_path / "karate.txt"
    nx.write_edgelist(g, f, data=False)
    m = OUDModel(
        population=34,
        rng=1,
        burn_in_years=0,
        network_kind="edgelist",
        **{"network.edgelist_path": str(f), "network.latent_ties_per_person": 0},
    )
    assert m.network.n_ties == g.number_of_edges()
    assert sorted(d for _, d in m.graph.degree()) == sorted(d for _, d in g.degree())


def test_networkx_graph_can_be_passed():
    g = nx.connected_watts_strogatz_graph(200, 6, 0.1, seed=1)
    m = OUDModel(population=200, rng=1, burn_in_years=0, graph=g, **{"network.latent_ties_per_person": 0})
    assert {tuple(sorted(e)) for e in m.graph.edges()} == {tuple(sorted(e)) for e in g.edges()}


def test_newcomers_are_young_adults_drawn_from_the_inputs():
    m = OUDModel(population=40_000, rng=8, burn_in_years=0, **{"demography.mortality_per_1000": [900.0] * 5})
    m.run_for(4)
    pop = m.population
    new = pop.entry_week > 0
    assert new.sum() > 2_000
    assert np.all(pop.age[new] < m.params.demography.entry_age + 4 / 52 + 1e-4)
    shares = np.bincount(pop.ace[new], minlength=3) / new.sum()
    assert np.allclose(shares, m.params.demography.ace_shares, atol=0.03)
    # Newcomers start without opioid use (a few may have started since entering).
    assert np.mean(pop.stage[new] == Stage.NONE) > 0.97
    # Cached per-person factors follow the newcomers' groups.
    from oudsim.model.rates import _group_table

    p = m.params.use
    expected = _group_table(p.age_hr, p.ses_hr, p.ace_hr)[pop.group]
    cached, _ = m.factors.get("initiation", pop.group, age=p.age_hr, ses=p.ses_hr, ace=p.ace_hr)
    assert np.allclose(cached, expected)


def test_a_deep_copy_steps_as_the_original_would_and_apart_from_it():
    """copy.deepcopy gives a model that continues exactly as the original (the compiled processes'
    argument lists and factor rows are rebuilt on the copy, not shared), and stepping or changing the
    copy leaves the original as it would have been."""
    import copy

    def built():
        m = OUDModel(population=2_000, rng=4, burn_in_years=1)
        m.run_for(5)
        return m

    m, ref = built(), built()
    same = copy.deepcopy(m)
    changed = copy.deepcopy(m)
    changed.params = apply_overrides(changed.params, {"isolation": 3.0})
    for model in (changed, m, same, ref):
        model.run_for(104)  # two years, stepped alongside
    assert m.metrics_frame().equals(ref.metrics_frame())  # the copies did not touch the original
    assert same.metrics_frame().equals(ref.metrics_frame())  # a copy continues as the original would
    assert np.array_equal(same.population.mh, ref.population.mh)
    assert not changed.metrics_frame().equals(ref.metrics_frame())
    assert not np.shares_memory(same.population.stage, m.population.stage)


def test_a_pickled_model_continues_as_the_original_would():
    import pickle

    m = OUDModel(population=2_000, rng=4, burn_in_years=1)
    m.run_for(5)
    restored = pickle.loads(pickle.dumps(m))
    for _ in range(104):  # two years, stepped alongside
        m.step()
        restored.step()
    assert restored.metrics_frame().equals(m.metrics_frame())
    assert np.array_equal(restored.population.stage, m.population.stage)


def test_a_small_difference_between_paired_runs_stays_small():
    """Common random numbers person by person: two copies of a model that differ in ten people's
    depression and twenty new ties draw the same numbers for everyone else, so the difference stays
    with those people and their ties and fades, instead of reordering everyone's draws (bucketed onset
    thinning and a draw skipped for inactive latent ties once turned them into thousands in weeks)."""
    from oudsim.model.network import switch_tie

    m = OUDModel(population=20_000, rng=3, burn_in_years=1)
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    rows = np.arange(0, 20_000, 2_000)
    b.population.mh[0, rows] = ~b.population.mh[0, rows]
    b.population.any_mh[:] = b.population.mh.any(axis=0)
    net = b.network
    for t in np.flatnonzero(net.latent & ~net.active)[:20]:
        switch_tie(t, True, net.u, net.v, net.active, net.active_neighbour, net.n_active, net.pos_uv, net.pos_vu)
    worst = {"mental health": 0, "stage": 0, "ties": 0}
    for _ in range(52):
        a.step()
        b.step()
        worst["mental health"] = max(worst["mental health"], int((a.population.mh != b.population.mh).any(0).sum()))
        worst["stage"] = max(worst["stage"], int((a.population.stage != b.population.stage).sum()))
        worst["ties"] = max(worst["ties"], int((a.network.active != b.network.active).sum()))
    assert worst["mental health"] <= 30 and worst["stage"] <= 10 and worst["ties"] <= 60, worst


def test_a_model_without_agents_gives_the_same_metrics_and_copies_cheaply():
    import copy

    full = OUDModel(population=3_000, rng=5, burn_in_years=1)
    lean = OUDModel(population=3_000, rng=5, burn_in_years=1, agents=False)
    assert lean.people is None and len(lean.agents) == 0 and len(full.agents) == 3_000
    twin = copy.deepcopy(lean)
    for model in (full, lean, twin):
        model.run_for(104)
    assert lean.metrics_frame().equals(full.metrics_frame())
    assert twin.metrics_frame().equals(full.metrics_frame())
    with pytest.raises(ValueError, match="agents=False"):
        lean.person(0)


def test_interventions_can_be_started_until_one_acts_with_the_frames_of_a_fresh_run():
    import copy

    from oudsim.scenarios import load_scenario

    arm = list(load_scenario("naloxone").interventions)  # acts from year 1
    fresh = OUDModel(population=1_500, rng=4, burn_in_years=0.5, agents=False, interventions=arm)
    first = fresh.schedule_of_interventions.first_week(fresh.params.simulation.dt_weeks)
    # a ramp that starts at year 1 changes nothing at year 1 itself: the step after
    assert first == 53 and arm[0].ramp_years > 0
    fresh.run_for(80)
    shared = OUDModel(population=1_500, rng=4, burn_in_years=0.5, agents=False)
    shared.run_for(first - 1)  # the last week before it acts
    late = copy.deepcopy(shared)
    late.start_interventions(arm)
    late.run_for(80 - (first - 1))
    assert late.metrics_frame().equals(fresh.metrics_frame())
    shared.run_for(1)  # now it would already have acted
    with pytest.raises(ValueError, match="before any intervention acts"):
        shared.start_interventions(arm)
    with pytest.raises(ValueError, match="act from week 53"):
        fresh.start_interventions([])  # its own have acted
