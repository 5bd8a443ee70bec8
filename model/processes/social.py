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

from agents.states import ACTIVE_USE, RECOVERING
from model.rates import log_hr, mean_of, prob, rows_where

_FLOOR = 1e-6


def step(m) -> None:
    if m.network.n_ties:
        _lapse(m)
        _regrow(m)
    refresh(m)


def _log_withdrawal(m, rows: np.ndarray) -> np.ndarray:
    """log w_i = log(withdrawal_hr_mh) * disorder + log(withdrawal_hr_oud) * active use, for some people."""
    p, pop = m.params.social, m.population
    active_use = ACTIVE_USE.take(pop.stage[rows])
    return log_hr(p.withdrawal_hr_mh) * pop.any_mh[rows] + log_hr(p.withdrawal_hr_oud) * active_use


def _lapse(m) -> None:
    p, net, rng, dt = m.params.social, m.network, m.rng, m.dt_years
    base = p.tie_loss_rate * p.isolation_multiplier
    w_max = max(p.withdrawal_hr_mh, 1.0) * max(p.withdrawal_hr_oud, 1.0)
    p_max = prob(base * w_max, dt)
    if p_max <= 0:
        return
    t = rng.integers(0, net.n_ties, size=rng.binomial(net.n_ties, p_max))
    t = t[net.active[t]]
    h = base * 0.5 * (np.exp(_log_withdrawal(m, net.u[t])) + np.exp(_log_withdrawal(m, net.v[t])))
    keep = rng.random(t.size, dtype=np.float32) * p_max < prob(h, dt)
    net.set_active(t[keep], False)


def _regrow(m) -> None:
    p, pop, net, rng, dt = m.params.social, m.population, m.network, m.rng, m.dt_years
    g_max = 1.0 / max(min(p.withdrawal_hr_mh, 1.0) * min(p.withdrawal_hr_oud, 1.0), _FLOOR)
    h_max = max(p.reconnect_rate * g_max, p.new_tie_rate + p.peer_support_rate)
    p_max = prob(h_max, dt)
    if p_max <= 0:
        return
    t = rng.integers(0, net.n_ties, size=rng.binomial(net.n_ties, p_max))
    t = t[~net.active[t]]
    u, v = net.u[t], net.v[t]
    h_known = p.reconnect_rate * 0.5 * (np.exp(-_log_withdrawal(m, u)) + np.exp(-_log_withdrawal(m, v)))
    h_latent = p.new_tie_rate + p.peer_support_rate * np.maximum(pop.loneliness[u], pop.loneliness[v])
    h = np.where(net.latent[t], h_latent, h_known)
    keep = rng.random(t.size, dtype=np.float32) * p_max < prob(h, dt)
    net.set_active(t[keep], True)


# What each stage adds to the packed column of refresh: 1 (a tie), using << bits, recovering << 2 bits.
_PACKED_STATUS = {
    bits: 1.0 + float(2**bits) * ACTIVE_USE.astype(np.float64) + float(2 ** (2 * bits)) * RECOVERING for bits in (8, 20)
}


def refresh(m) -> None:
    """Recompute everyone's tie summaries and loneliness.

    One sparse product sums a packed float64 column over each person's active ties: 1 (ties),
    using * 2^8, recovering * 2^16 and the attitude quantised to 1/255 * 2^24 (exact integers below
    2^53 while no one has 256 possible ties; the quantisation moves perceived stigma by < 0.002).
    With larger hubs, counts pack at 2^20 and attitudes take a second product.
    """
    p, pop, net = m.params.social, m.population, m.network
    one_pass = net.max_ties < 256
    bits = 8 if one_pass else 20
    packed = _PACKED_STATUS[bits].take(pop.stage)  # take: indexing with an int8 array costs ~3 us more
    if one_pass:
        packed += float(2**24) * np.rint(pop.stigma * np.float32(255.0))
    sums = net.aggregate(packed).astype(np.int64)
    mask = (1 << bits) - 1
    pop.degree[:] = sums & mask
    pop.using_ties[:] = (sums >> bits) & mask
    if one_pass:
        pop.recovery_ties[:] = (sums >> 16) & mask
        stigma_sum = (sums >> 24).astype(np.float32) * np.float32(1.0 / 255.0)
    else:
        pop.recovery_ties[:] = sums >> (2 * bits)
        stigma_sum = net.aggregate(pop.stigma.astype(np.float64)).astype(np.float32)
    deg = pop.degree
    # With no ties, a person perceives the community's mean attitude.
    np.divide(stigma_sum, np.maximum(deg, np.float32(1.0)), out=pop.perceived_stigma)
    np.minimum(pop.perceived_stigma, np.float32(1.0), out=pop.perceived_stigma)  # float rounding
    no_ties = rows_where(deg == 0)
    if no_ties.size:
        pop.perceived_stigma[no_ties] = mean_of(pop.stigma)
    supportive = np.minimum((deg - pop.using_ties) * np.float32(1.0 / p.supportive_ties_full), np.float32(1.0))
    fw = np.float32(p.family_weight)
    pop.loneliness[:] = 1.0 - ((1.0 - fw) * supportive + fw * pop.family_support)


def isolated(m) -> np.ndarray:
    return m.population.degree <= m.params.social.isolated_max_ties
