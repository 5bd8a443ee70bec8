"""The social network: generators, the tie store kept consistent as ties switch, tie summaries."""

from __future__ import annotations

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from oudsim.agents.states import Stage
from oudsim.model import OUDModel
from oudsim.model.binding import bind
from oudsim.model.network import TieNetwork, latent_edges, scale_free_edges, small_world_edges
from oudsim.model.processes import social


def degrees(edges, n):
    return np.bincount(edges.ravel(), minlength=n)


def test_small_world_degree_and_clustering():
    rng = np.random.default_rng(1)
    n, k = 5_000, 10
    e = small_world_edges(n, k, 0.1, rng)
    assert abs(degrees(e, n).mean() - k) < 0.2
    g = nx.Graph(e.tolist())
    # Watts–Strogatz at p = 0.1 keeps most of the lattice's clustering (~0.49); a random graph has ~k/n.
    assert nx.average_clustering(g) > 0.35


def test_scale_free_is_heavy_tailed():
    rng = np.random.default_rng(2)
    n, k = 20_000, 8
    d = degrees(scale_free_edges(n, k, 2.5, rng), n)
    assert abs(d.mean() - k) / k < 0.05
    assert d.max() > 10 * k
    # Far more people with 4x the mean degree than a Poisson graph of the same mean would have (~1e-7).
    assert np.mean(d > 4 * k) > 0.005


def test_latent_ties_are_new_and_mostly_close_triangles():
    rng = np.random.default_rng(3)
    n = 3_000
    known = small_world_edges(n, 6, 0.05, rng)
    latent = latent_edges(known, n, per_person=2, triadic_share=0.8, rng=rng)
    known_set = set(map(tuple, known.tolist()))
    assert not any(tuple(e) in known_set for e in latent.tolist())
    g = nx.Graph(known.tolist())
    closes = np.mean([len(set(g[a]) & set(g[b])) > 0 for a, b in latent.tolist()])
    assert 0.65 < closes < 0.9


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.tuples(st.integers(0, 199), st.booleans()), max_size=60))
def test_toggling_ties_keeps_adjacency_in_step(seed, toggles):
    rng = np.random.default_rng(seed)
    n = 60
    known = small_world_edges(n, 4, 0.2, rng)
    latent = latent_edges(known, n, 1.0, 0.5, rng)
    net = TieNetwork(n, known, latent)
    for t, flag in toggles:
        net.set_active(np.array([t % net.n_ties]), flag)
    x = rng.random(n)
    expected = np.zeros(n)
    np.add.at(expected, net.u[net.active], x[net.v[net.active]])
    np.add.at(expected, net.v[net.active], x[net.u[net.active]])
    assert np.allclose(net.aggregate(x), expected)
    g = net.to_networkx()
    assert g.number_of_edges() == int(net.active.sum())
    for r in range(0, n, 7):
        assert sorted(net.neighbours(r).tolist()) == sorted(g[r])


def _brute_force_summaries(m):
    pop, net = m.population, m.network
    using = (pop.stage == Stage.MISUSE) | (pop.stage == Stage.OUD)
    recov = (pop.stage == Stage.TREATMENT) | (pop.stage == Stage.REMISSION)
    deg, u_t, r_t, s_t = (np.zeros(pop.n) for _ in range(4))
    a, b = net.u[net.active], net.v[net.active]
    for x, y in ((a, b), (b, a)):
        np.add.at(deg, x, 1)
        np.add.at(u_t, x, using[y])
        np.add.at(r_t, x, recov[y])
        np.add.at(s_t, x, pop.stigma[y])
    return deg, u_t, r_t, s_t


def test_packed_tie_summaries_equal_brute_force():
    m = OUDModel(population=2_000, rng=4, burn_in_years=2)
    m.run_for(5)
    social.refresh(m)
    deg, using, recov, stig = _brute_force_summaries(m)
    pop = m.population
    assert np.array_equal(pop.degree, deg)
    assert np.array_equal(pop.using_ties, using)
    assert np.array_equal(pop.recovery_ties, recov)
    has = deg > 0
    # Attitudes are summed as integers at 2^-48 here (float32 rounding dominates).
    assert np.allclose(pop.perceived_stigma[has], stig[has] / deg[has], atol=1e-6)


def test_wide_path_for_large_hubs_gives_the_same_summaries():
    """Beyond 2^16 possible ties a person, sums are kept apart rather than packed: same results."""
    m = OUDModel(population=2_000, rng=7, burn_in_years=1)
    pop, net = m.population, m.network
    out = {}
    for wide in (False, True):
        names = ("degree", "using_ties", "recovery_ties", "perceived_stigma", "loneliness")
        arrays = {name: np.zeros(pop.n, np.float32) for name in names}
        args = bind(
            social._refresh, m.shared(), packed=np.empty(pop.n + 1, np.int64), sums=np.empty(pop.n, np.int64),
            running_sum=np.empty(net.active_neighbour.size + 1, np.int64),
            full=float(m.params.social.supportive_ties_full), fw=float(m.params.social.family_weight), b=5, wide=wide,
            **arrays,
        )  # fmt: skip
        social._refresh(*args)
        out[wide] = list(arrays.values())
    for packed, wide in zip(out[False], out[True], strict=True):
        assert np.allclose(packed, wide, atol=1e-6)


def test_hub_networks_give_exact_summaries():
    star = nx.star_graph(400)  # one person with 400 ties: more than the one-pass packing allows
    m = OUDModel(population=401, rng=5, burn_in_years=0.5, graph=star)
    assert m.network.max_ties >= 256
    m.run_for(3)
    social.refresh(m)
    deg, using, recov, stig = _brute_force_summaries(m)
    assert np.array_equal(m.population.degree, deg)
    assert np.array_equal(m.population.using_ties, using)
    assert np.array_equal(m.population.recovery_ties, recov)
    has = deg > 0
    assert np.allclose(m.population.perceived_stigma[has], stig[has] / deg[has], atol=1e-5)


def test_ties_lapse_and_regrow_during_a_run():
    m = OUDModel(population=3_000, rng=6, burn_in_years=0)
    start = m.network.active.copy()
    m.run_for(52)
    now = m.network.active
    assert np.count_nonzero(start & ~now) > 0  # some ties lapsed
    assert np.count_nonzero(~start & now) > 0  # some regrew or formed


def test_extreme_tie_rates_keep_the_store_consistent():
    """Many lapses and regrowths in a step (more than there are people): every entry's flag still
    matches its tie's, each tie's entries are where the maps say, and the counts of active ties hold."""
    over = {"social.tie_loss_rate": 52.0, "social.reconnect_rate": 52.0, "social.isolation_multiplier": 20}
    m = OUDModel(population=300, rng=9, burn_in_years=0, **over)
    start = m.network.active.copy()
    m.run_for(6)
    net = m.network
    assert np.count_nonzero(start != net.active) > net.n  # the rates did switch many ties
    deg = np.bincount(np.r_[net.u[net.active], net.v[net.active]], minlength=net.n)
    assert np.array_equal(net.n_active, deg)
    t = np.arange(net.n_ties)
    assert np.array_equal(net.tie_of_entry[net.pos_uv], t) and np.array_equal(net.tie_of_entry[net.pos_vu], t)
    assert np.array_equal(net.row_of_entry[net.pos_uv], net.u) and np.array_equal(net.row_of_entry[net.pos_vu], net.v)
    nobody = net.n
    assert np.array_equal(net.active_neighbour[net.pos_uv], np.where(net.active, net.v, nobody))
    assert np.array_equal(net.active_neighbour[net.pos_vu], np.where(net.active, net.u, nobody))
    assert np.array_equal(net.row_of_entry, np.repeat(np.arange(net.n), np.diff(net.indptr)))
    for r in range(net.n):
        expected = np.r_[net.v[net.active & (net.u == r)], net.u[net.active & (net.v == r)]]
        assert sorted(net.neighbours(r).tolist()) == sorted(expected.tolist())


def tiny_room(net) -> dict:
    """Room for three tie events a block of the walk: every block overflows and is decided again with
    room for all its entries (social._lapse_and_regrow), which the rates below must not notice."""
    blocks = -(-net.entry_row_tie.shape[0] // social._ENTRY_BLOCK)
    return {"found": np.empty(3 * blocks, np.int64), "room": 3, "counts": np.empty(blocks, np.int64)}


def test_tie_lapse_and_regrowth_rates_are_exact():
    """Drawn per end, a tie lapses with 1 - exp(-loss (w_u + w_v) / 2 dt) and a lapsed known tie
    regrows with 1 - exp(-reconnect (1/w_u + 1/w_v) / 2 dt): counts by class match, over many draws."""
    from tests.helpers import assert_count_matches

    m = OUDModel(population=3_000, rng=3, burn_in_years=0)
    pop, net, dt = m.population, m.network, m.dt_years
    pop.any_mh[:] = np.arange(pop.n) % 3 == 0  # w = 3 for a third of people (withdrawal_hr_mh = 3)
    pop.stage[:] = Stage.NONE
    loss, reconnect = 2.0, 3.0
    p_lapse, p_reconnect = social._tie_tables(loss, 3.0, 3.0, reconnect, dt)
    off = np.zeros((4, 2))
    w = np.where(pop.any_mh, 3.0, 1.0)

    def run(p_l, p_r):
        args = bind(
            social._lapse_and_regrow, m.shared(), **tiny_room(net), p_lapse=p_l, p_reconnect=p_r,
            new_tie=0.0, peer_support=0.0, p_max=max(p_l.max(), p_r.max()),
        )  # fmt: skip
        social._lapse_and_regrow(*args)

    lapse_sum = w[net.u] + w[net.v]
    regrow_sum = 1 / w[net.u] + 1 / w[net.v]
    for cls in (2.0, 4.0, 6.0):  # both w = 1, one of them 3, both 3
        sel = net.active & (lapse_sum == cls)
        hits = 0
        for _ in range(40):
            before = net.active.copy()
            run(p_lapse, off)
            lapsed = np.flatnonzero(before & ~net.active)
            hits += np.count_nonzero(sel[lapsed])
            net.set_active(lapsed, True)
        assert_count_matches(hits, int(sel.sum()) * 40, loss * cls / 2, dt)
    known = np.flatnonzero(net.active & ~net.latent)[::2]
    net.set_active(known, False)
    for cls in (2.0, 4 / 3, 2 / 3):
        sel = np.zeros(net.n_ties, bool)
        sel[known] = np.isclose(regrow_sum[known], cls)
        hits = 0
        for _ in range(40):
            before = net.active.copy()
            run(off, p_reconnect)
            grown = np.flatnonzero(~before & net.active)
            hits += np.count_nonzero(sel[grown])
            net.set_active(grown, False)
        assert_count_matches(hits, int(sel.sum()) * 40, reconnect * cls / 2, dt)


def test_people_who_use_withdraw_from_supportive_ties_not_from_each_other():
    """With withdrawal_hr_oud = 3, a tie between someone who uses and someone who does not lapses at
    loss * (3 + 1) / 2; a tie between two people who use at loss * (1 + 1) / 2, as between two who do
    not: ties of people who use drift toward others who use."""
    from tests.helpers import assert_count_matches

    m = OUDModel(population=3_000, rng=4, burn_in_years=0)
    pop, net, dt = m.population, m.network, m.dt_years
    pop.any_mh[:] = False
    pop.stage[:] = np.where(np.arange(pop.n) % 2 == 0, Stage.MISUSE, Stage.NONE)
    loss = 2.0
    p_lapse, _ = social._tie_tables(loss, 3.0, 3.0, 1.0, dt)
    args = bind(
        social._lapse_and_regrow, m.shared(), **tiny_room(net), p_lapse=p_lapse,
        p_reconnect=np.zeros((4, 2)), new_tie=0.0, peer_support=0.0, p_max=p_lapse.max(),
    )  # fmt: skip
    using = pop.stage == Stage.MISUSE
    both, mixed = using[net.u] & using[net.v], using[net.u] ^ using[net.v]
    hits = {"both": 0, "mixed": 0}
    for _ in range(40):
        before = net.active.copy()
        social._lapse_and_regrow(*args)
        lapsed = np.flatnonzero(before & ~net.active)
        hits["both"] += np.count_nonzero(both[lapsed])
        hits["mixed"] += np.count_nonzero(mixed[lapsed])
        net.set_active(lapsed, True)
    assert_count_matches(hits["both"], int((both & net.active).sum()) * 40, loss, dt)
    assert_count_matches(hits["mixed"], int((mixed & net.active).sum()) * 40, loss * 2, dt)


def test_the_sort_based_unique_and_membership_agree_with_numpy():
    from oudsim.model.network import sorted_contains, sorted_unique

    rng = np.random.default_rng(3)
    for size in (0, 1, 2, 1_000, 100_000):
        a = rng.integers(0, 5_000, size=size)
        assert np.array_equal(sorted_unique(a), np.unique(a))
        table = np.unique(rng.integers(0, 5_000, size=size // 2 + 1))
        keys = rng.integers(-10, 5_100, size=size)
        assert np.array_equal(sorted_contains(table, keys), np.isin(keys, table))
    assert sorted_contains(np.empty(0, dtype=np.int64), np.arange(3)).tolist() == [False] * 3


def test_a_block_with_more_tie_events_than_its_room_decides_the_same():
    """A block of the walk whose events overflow its room is decided again, with the same draws:
    the ties come out as with room to spare."""
    import copy

    m = OUDModel(population=3_000, rng=6, burn_in_years=0, **{"social.tie_loss_rate": 5.0})
    twin = copy.deepcopy(m)
    social._lapse_and_regrow(*social._tie_arguments(m))  # room for ten standard deviations more
    p = twin.params.social
    loss = p.tie_loss_rate * p.isolation_multiplier
    dt = twin.dt_years
    p_lapse, p_reconnect = social._tie_tables(loss, p.withdrawal_hr_mh, p.withdrawal_hr_oud, p.reconnect_rate, dt)
    args = bind(
        social._lapse_and_regrow, twin.shared(), **tiny_room(twin.network), p_lapse=p_lapse, p_reconnect=p_reconnect,
        new_tie=p.new_tie_rate, peer_support=p.peer_support_rate, p_max=social._tie_arguments(twin)[-2],
    )  # fmt: skip
    social._lapse_and_regrow(*args)
    assert np.array_equal(m.network.active, twin.network.active)
    assert np.array_equal(m.network.active_neighbour, twin.network.active_neighbour)
    assert np.count_nonzero(~m.network.active & ~m.network.latent) > 100  # ties did lapse
