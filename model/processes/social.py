"""3. Social ties: withdrawal, reconnection and new ties; then loneliness and isolation.

Each active tie lapses at ``tie_loss_rate * isolation_multiplier * (w_u + w_v) / 2`` where
``w_i = withdrawal_hr_mh^(disorder active) * withdrawal_hr_oud^(active use)``: people with an active
disorder or active use withdraw. A lapsed known tie regrows at ``reconnect_rate * (1/w_u + 1/w_v) / 2``;
a latent tie (friend of a friend, or a stranger) forms at
``new_tie_rate + peer_support_rate * max(loneliness_u, loneliness_v)`` (peer support and social
prescribing reach lonely people). Events are drawn by thinning: candidate ties are sampled at the
largest possible rate and kept with probability rate / largest rate, so the cost follows the number
of events, not the number of ties.

Loneliness = 1 - [(1 - family_weight) * min(1, supportive ties / supportive_ties_full)
                  + family_weight * family support], where supportive ties are active ties who are
not using opioids. Isolated = at most ``isolated_max_ties`` active ties.
"""

from __future__ import annotations

import numpy as np

from agents.states import Stage
from model.rates import prob, when

_FLOOR = 1e-6


def step(m) -> None:
    p, pop, net, rng, dt = m.params.social, m.population, m.network, m.rng, m.dt_years
    if net.n_ties:
        w = when(pop.any_mh, p.withdrawal_hr_mh) * when(pop.active_use, p.withdrawal_hr_oud)
        w = np.maximum(w, _FLOOR)
        _lapse(m, w)
        _regrow(m, w)
    refresh(m)


def _lapse(m, w: np.ndarray) -> None:
    p, net, rng, dt = m.params.social, m.network, m.rng, m.dt_years
    base = p.tie_loss_rate * p.isolation_multiplier
    w_max = max(p.withdrawal_hr_mh, 1.0) * max(p.withdrawal_hr_oud, 1.0)
    p_max = float(prob(base * w_max, dt))
    if p_max <= 0:
        return
    t = rng.integers(0, net.n_ties, size=rng.binomial(net.n_ties, p_max))
    t = t[net.active[t]]
    h = base * 0.5 * (w[net.u[t]] + w[net.v[t]])
    keep = rng.random(t.size, dtype=np.float32) * p_max < prob(h, dt)
    net.set_active(t[keep], False)


def _regrow(m, w: np.ndarray) -> None:
    p, pop, net, rng, dt = m.params.social, m.population, m.network, m.rng, m.dt_years
    g_max = 1.0 / max(min(p.withdrawal_hr_mh, 1.0) * min(p.withdrawal_hr_oud, 1.0), _FLOOR)
    h_max = max(p.reconnect_rate * g_max, p.new_tie_rate + p.peer_support_rate)
    p_max = float(prob(h_max, dt))
    if p_max <= 0:
        return
    t = rng.integers(0, net.n_ties, size=rng.binomial(net.n_ties, p_max))
    t = t[~net.active[t]]
    u, v = net.u[t], net.v[t]
    h_known = p.reconnect_rate * 0.5 * (1.0 / w[u] + 1.0 / w[v])
    h_latent = p.new_tie_rate + p.peer_support_rate * np.maximum(pop.loneliness[u], pop.loneliness[v])
    h = np.where(net.latent[t], h_latent, h_known)
    keep = rng.random(t.size, dtype=np.float32) * p_max < prob(h, dt)
    net.set_active(t[keep], True)


def refresh(m) -> None:
    """Recompute everyone's tie summaries (one sparse product) and loneliness."""
    p, pop = m.params.social, m.population
    st = pop.stage
    cols = np.empty((pop.n, 4), dtype=np.float32)
    cols[:, 0] = 1.0
    cols[:, 1] = (st == Stage.MISUSE) | (st == Stage.OUD)
    cols[:, 2] = (st == Stage.TREATMENT) | (st == Stage.REMISSION)
    cols[:, 3] = pop.stigma
    s = m.network.aggregate(cols)
    pop.degree[:] = s[:, 0]
    pop.using_ties[:] = s[:, 1]
    pop.recovery_ties[:] = s[:, 2]
    # With no ties, a person perceives the community's mean attitude.
    np.divide(s[:, 3], s[:, 0], out=pop.perceived_stigma, where=s[:, 0] > 0)
    pop.perceived_stigma[s[:, 0] == 0] = pop.stigma.mean()
    supportive = np.minimum((s[:, 0] - s[:, 1]) / np.float32(p.supportive_ties_full), 1.0)
    fw = np.float32(p.family_weight)
    pop.loneliness[:] = 1.0 - ((1.0 - fw) * supportive + fw * pop.family_support)


def isolated(m) -> np.ndarray:
    return m.population.degree <= m.params.social.isolated_max_ties
