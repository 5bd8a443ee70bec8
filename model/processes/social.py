"""3. Social ties: withdrawal, reconnection and new ties; then loneliness and isolation.

Each active tie lapses at ``tie_loss_rate * isolation_multiplier * (w_u + w_v) / 2`` where
``w_i = withdrawal_hr_mh^(disorder active) * withdrawal_hr_oud^(active use)``: people with an active
disorder or active use withdraw. A lapsed known tie regrows at ``reconnect_rate * (1/w_u + 1/w_v) / 2``;
a latent tie (friend of a friend, or a stranger) forms at
``new_tie_rate + peer_support_rate * max(loneliness_u, loneliness_v)`` (peer support and social
prescribing reach lonely people). Events are drawn by thinning (model.jit): candidate ties come at the
largest possible rate and are kept with probability rate / largest rate, so the cost follows the
number of events, not the number of ties.

Loneliness = 1 - [(1 - family_weight) * min(1, supportive ties / supportive_ties_full)
                  + family_weight * family support], where supportive ties are active ties who are
not using opioids. Isolated = at most ``isolated_max_ties`` active ties.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from agents.states import ACTIVE_USE, RECOVERING
from model.jit import gap, log_skip, njit, uniform
from model.network import switch_tie

_FLOOR = 1e-6


def step(m) -> None:
    p, pop, net = m.params.social, m.population, m.network
    if net.n_ties:
        p_lapse, p_reconnect, p_max_lapse, p_max_regrow = _tie_tables(
            p.tie_loss_rate * p.isolation_multiplier, p.withdrawal_hr_mh, p.withdrawal_hr_oud, p.reconnect_rate,
            p.new_tie_rate, p.peer_support_rate, m.dt_years,
        )  # fmt: skip
        a = net.adjacency
        _lapse_and_regrow(
            m.stream, net.u, net.v, net.active, net.latent, a.indptr, a.indices, a.data, net.n_active,
            net.tie_of_entry, net.pos_uv, net.pos_vu, pop.stage, pop.any_mh, pop.loneliness, ACTIVE_USE,
            p_lapse, p_reconnect, p_max_lapse, p_max_regrow, p.new_tie_rate, p.peer_support_rate, m.dt_years,
        )  # fmt: skip
    refresh(m)


@functools.lru_cache(maxsize=256)  # rebuilt only when the parameters change
def _tie_tables(loss, hr_mh, hr_oud, reconnect, new_tie, peer_support, dt) -> tuple:
    """Step probabilities of a tie lapsing and of a lapsed known tie regrowing, by the two people's
    codes (disorder + 2 * active use; w takes four values), and the largest probabilities for thinning."""
    code = np.arange(4)
    w = np.exp(np.log(max(hr_mh, _FLOOR)) * (code & 1) + np.log(max(hr_oud, _FLOOR)) * (code >> 1))
    p_lapse = -np.expm1(-loss * 0.5 * (w[:, None] + w[None, :]) * dt)
    p_reconnect = -np.expm1(-reconnect * 0.5 * (1 / w[:, None] + 1 / w[None, :]) * dt)
    p_latent_max = -math.expm1(-(new_tie + peer_support) * dt)  # loneliness is at most 1
    return p_lapse, p_reconnect, float(p_lapse.max()), max(float(p_reconnect.max()), p_latent_max)


@njit
def _lapse_and_regrow(
    s, u, v, active, latent, indptr, indices, data, n_active, tie_of_entry, pos_uv, pos_vu, stage, any_mh,
    loneliness, active_use, p_lapse, p_reconnect, p_max_lapse, p_max_regrow, new_tie, peer_support, dt,
):  # fmt: skip
    e = u.size
    # Lapse: active ties, at loss * (w_u + w_v) / 2 (looked up by the two people's codes).
    if p_max_lapse > 0.0:
        lq = log_skip(p_max_lapse)
        t = gap(s, lq)
        while t < e:
            if active[t]:
                a, b = u[t], v[t]
                code_a = any_mh[a] + 2 * int(active_use[stage[a]])
                code_b = any_mh[b] + 2 * int(active_use[stage[b]])
                if uniform(s) * p_max_lapse < p_lapse[code_a, code_b]:
                    switch_tie(t, False, u, v, active, indptr, indices, data, n_active, tie_of_entry, pos_uv, pos_vu)
            t += 1 + gap(s, lq)
    # Regrowth: lapsed known ties at reconnect * (1/w_u + 1/w_v) / 2; latent ties by loneliness.
    if p_max_regrow > 0.0:
        lq = log_skip(p_max_regrow)
        t = gap(s, lq)
        while t < e:
            if not active[t]:
                a, b = u[t], v[t]
                if latent[t]:
                    p = -math.expm1(-(new_tie + peer_support * max(loneliness[a], loneliness[b])) * dt)
                else:
                    p = p_reconnect[
                        any_mh[a] + 2 * int(active_use[stage[a]]), any_mh[b] + 2 * int(active_use[stage[b]])
                    ]
                if uniform(s) * p_max_regrow < p:
                    switch_tie(t, True, u, v, active, indptr, indices, data, n_active, tie_of_entry, pos_uv, pos_vu)
            t += 1 + gap(s, lq)


def refresh(m) -> None:
    """Recompute everyone's tie summaries (active ties, ties using, ties in recovery, the mean
    attitude of one's ties) and loneliness: one pass over the adjacency."""
    p, pop, net = m.params.social, m.population, m.network
    a = net.adjacency
    # One int64 per person packs what the pass sums: ties in recovery in the top b bits, ties using in
    # the next b, the attitude as an integer at 2^-q in the rest, where b = bits(largest possible ties)
    # so no sum can overflow into its neighbour (q = 48 at mean degree 10). Beyond 2^16 possible ties
    # a person (a hub of a million-node graph) the sums are kept apart instead.
    b = max(int(net.max_ties).bit_length(), 1)
    _refresh(
        a.indptr, a.indices, net.n_active, pop.stage, pop.stigma, pop.family_support, ACTIVE_USE, RECOVERING,
        float(p.supportive_ties_full), float(p.family_weight), b, b > 16,
        pop.degree, pop.using_ties, pop.recovery_ties, pop.perceived_stigma, pop.loneliness,
    )  # fmt: skip


@njit
def _refresh(
    indptr, indices, n_active, stage, stigma, family_support, active_use, recovering, full, fw, b, wide,
    degree, using_ties, recovery_ties, perceived, loneliness,
):  # fmt: skip
    n = stage.size
    q = 63 - 3 * b
    scale = float(1 << q) if not wide else 1.0
    mask = (np.int64(1) << b) - 1
    packed = np.empty(n, np.int64)
    mean_stigma = 0.0
    for i in range(n):
        k = stage[i]
        packed[i] = (np.int64(recovering[k]) << (63 - b)) + (np.int64(active_use[k]) << (63 - 2 * b))
        if not wide:
            packed[i] += np.int64(stigma[i] * scale + 0.5)
        mean_stigma += stigma[i]
    # With no ties, a person perceives the community's mean attitude.
    mean_stigma = mean_stigma / n if n else 0.0
    for i in range(n):
        deg = n_active[i]
        acc = np.int64(0)
        attitudes = 0.0
        if wide:
            n_using = n_rec = 0
            for j in range(indptr[i], indptr[i] + deg):
                c = indices[j]
                n_using += active_use[stage[c]]
                n_rec += recovering[stage[c]]
                attitudes += stigma[c]
        else:
            for j in range(indptr[i], indptr[i] + deg):  # a row's active ties come first (model.network)
                acc += packed[indices[j]]
            n_rec = acc >> (63 - b)
            n_using = (acc >> (63 - 2 * b)) & mask
            attitudes = (acc & ((np.int64(1) << (63 - 2 * b)) - 1)) / scale
        degree[i] = deg
        using_ties[i] = n_using
        recovery_ties[i] = n_rec
        perceived[i] = min(attitudes / deg, 1.0) if deg > 0 else mean_stigma
        supportive = min((deg - n_using) / full, 1.0)
        loneliness[i] = 1.0 - ((1.0 - fw) * supportive + fw * family_support[i])


def isolated(m) -> np.ndarray:
    return m.population.degree <= m.params.social.isolated_max_ties
