"""3. Social ties: withdrawal, reconnection and new ties; then loneliness and isolation.

A newcomer (who took the row of someone who died, model.processes.demography) does not keep the dead
person's ties: at the newcomer's first social step each known tie of the row is drawn afresh, active
with the steady share of a tie between two people without a condition,
``reconnect_rate / (reconnect_rate + tie_loss_rate * isolation_multiplier)``, whoever is at the other
end (so ties to people who use are no likelier than any other); latent ties stay latent.

Each active tie lapses at ``tie_loss_rate * isolation_multiplier * (w_u + w_v) / 2`` where
``w_i = withdrawal_hr_mh^(disorder active) * withdrawal_hr_oud^(active use and the other end does not
use)``: people with an active disorder or active use withdraw, and someone who uses withdraws from
people who do not (their supportive ties) but not from others who use, so their ties drift toward
people who use. A lapsed known tie regrows at ``reconnect_rate * (1/w_u + 1/w_v) / 2``;
a latent tie (friend of a friend, or a stranger) forms at
``new_tie_rate + peer_support_rate * max(loneliness_u, loneliness_v)`` (peer support and social
prescribing reach lonely people).

How they are drawn: a rate of the form (x_u + x_v) / 2 is two independent halves, one from each end,
so a tie lapses unless neither end drops it: 1 - (1 - p_u)(1 - p_v) = 1 - exp(-(h_u + h_v) dt), exactly.
Every tie end (an entry of the adjacency) is walked as one flat sequence, in blocks of fixed size
with a random stream each (so on any number of threads alike), with candidates by thinning (model.jit)
at the largest per-end probability of either event; a candidate that is an end of an active
tie is kept at that person's lapse probability, an end of a lapsed known tie at their reconnection
probability, and a latent tie is considered once, from its first end, at its full rate. All of it is
decided from the ties as they are at the start of the step, then applied; the cost follows the
candidates. The candidates' places are drawn first, then the entries they land on are read in a pass
of their own, then decided: the reads no longer wait on one another (each is a likely cache miss).

Loneliness = 1 - [(1 - family_weight) * min(1, supportive ties / supportive_ties_full)
                  + family_weight * family support], where supportive ties are active ties who are
not using opioids. Isolated = at most ``isolated_max_ties`` active ties.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from oudsim.agents.states import is_recovering, is_using
from oudsim.model.binding import bind
from oudsim.model.jit import (
    block_key,
    gap,
    keyed_uniform,
    log_skip,
    njit,
    prob,
    seed_block,
    step_key,
    total,
    uniform,
)
from oudsim.model.network import switch_tie
from oudsim.model.rates import per_parameters, upper_bound

STREAMS = ("social",)
FLOWS = ()

_FLOOR = 1e-6


@njit(inline=True)
def new_tie_hazard(new_tie, peer_support, loneliness):
    """A latent tie forms at new_tie_rate + peer_support_rate * max(loneliness of its two ends)."""
    return new_tie + peer_support * loneliness


def step(m) -> None:
    # The last step's newcomers took the rows of the dead: those ties end, and the newcomers' own form
    # from here (a lapsed known tie regrows, a latent one forms, at the rates below).
    if m.newcomer_rows.size:
        _newcomer_ties(*_newcomer_arguments(m), m.newcomer_rows)
        m.newcomer_rows = m.newcomer_rows[:0]
    _lapse_and_regrow(*_tie_arguments(m))
    refresh(m)


@njit(inline=True)
def newcomer_tie_share(reconnect, loss):
    """A known tie of a newcomer is active with the steady share of a tie between two people without
    a condition: regrowth / (regrowth + lapse)."""
    return reconnect / (reconnect + loss) if reconnect + loss > 0.0 else 0.0


@per_parameters
def _newcomer_arguments(m) -> tuple:
    p = m.params.social
    share = newcomer_tie_share(p.reconnect_rate, p.tie_loss_rate * p.isolation_multiplier)
    return bind(_newcomer_ties, m.shared(), at_call=("rows",), share=share)


@njit
def _newcomer_ties(
    social_stream, share, indptr, entry_row_tie, latent, u, v, active, active_neighbour, n_active, pos_uv, pos_vu,
    rows,
):  # fmt: skip
    """Each known tie of each newcomer's row, active with probability ``share``, drawn afresh. The draws
    are keyed to the tie end (jit.keyed_uniform) and take nothing from the stream: the walk below then
    draws the same numbers in two scenario arms however many died in each."""
    key = step_key(social_stream)
    for r in rows:
        for x in range(indptr[r], indptr[r + 1]):
            t = entry_row_tie[x, 1]
            on = not latent[t] and keyed_uniform(key, r, x) < share
            switch_tie(t, on, u, v, active, active_neighbour, n_active, pos_uv, pos_vu)


@per_parameters
def _tie_arguments(m) -> tuple:
    p, net = m.params.social, m.network
    p_lapse, p_reconnect = _tie_tables(
        p.tie_loss_rate * p.isolation_multiplier, p.withdrawal_hr_mh, p.withdrawal_hr_oud, p.reconnect_rate, m.dt_years
    )
    # Candidates come at the largest per-end probability of any of the three events.
    top_new = upper_bound(new_tie_hazard, new_tie=p.new_tie_rate, peer_support=p.peer_support_rate)
    p_max = max(p_lapse.max(), p_reconnect.max(), prob(top_new, m.dt_years))
    # Room for each block's events in a step: the expected number of candidates and ten standard
    # deviations (a block with more is decided again with room for every entry, the same draws).
    expected = _ENTRY_BLOCK * p_max
    room = int(expected + 10 * np.sqrt(expected) + 64)
    blocks = -(-net.entry_row_tie.shape[0] // _ENTRY_BLOCK)
    return bind(
        _lapse_and_regrow, m.shared(), found=np.empty(blocks * room, dtype=np.int64), room=room,
        counts=np.empty(blocks, dtype=np.int64), p_lapse=p_lapse, p_reconnect=p_reconnect,
        new_tie=p.new_tie_rate, peer_support=p.peer_support_rate, p_max=p_max,
    )  # fmt: skip


def _tie_tables(loss, hr_mh, hr_oud, reconnect, dt) -> tuple:
    """Step probabilities that one end drops an active tie, and that one end renews a lapsed known tie,
    by that person's code (disorder + 2 * active use) and whether the other end uses (w takes four
    values: the use ratio applies only toward people who do not use)."""
    code = np.arange(4)[:, None]
    other_uses = np.arange(2)[None, :]
    using = (code >> 1) * (1 - other_uses)
    w = np.exp(np.log(max(hr_mh, _FLOOR)) * (code & 1) + np.log(max(hr_oud, _FLOOR)) * using)
    return -np.expm1(-loss * 0.5 * w * dt), -np.expm1(-reconnect * 0.5 / w * dt)


# Tie ends (entries) a block of the walk: each block has a stream of its own (model.jit.seed_block).
_ENTRY_BLOCK = 1 << 16


@njit(threaded=True)
def _lapse_and_regrow(
    social_stream, found, room, counts, u, v, active, latent, active_neighbour, entry_row_tie, n_active, pos_uv,
    pos_vu, stage, any_mh, loneliness, active_use, p_lapse, p_reconnect, new_tie, peer_support, p_max, dt,
):  # fmt: skip
    # One walk over all tie ends (entries), block by block, with candidates at the largest per-end
    # probability of any event (p_max): an end of an active tie may lapse, an end of an inactive one
    # may regrow. Decided from the ties as they are at the start of the step, then applied.
    n_entries = entry_row_tie.shape[0]  # 0 without ties: no blocks
    key = block_key(social_stream)
    blocks = counts.size
    if p_max <= 0.0:
        return
    for blk in prange(blocks):
        events = found[blk * room : (blk + 1) * room]
        counts[blk] = _decide_block(
            blk, key, events, u, v, active, latent, entry_row_tie, stage, any_mh, loneliness, active_use, p_lapse,
            p_reconnect, new_tie, peer_support, p_max, dt,
        )  # fmt: skip
    # Applied in block order (the outcome is the same in any order: a tie found from both ends is
    # switched once, switch_tie doing nothing the second time).
    for blk in range(blocks):
        k = counts[blk]
        events = found[blk * room : (blk + 1) * room]
        if k < 0:  # more events than the room: decided again with room for every entry
            events = np.empty(min(_ENTRY_BLOCK, n_entries), dtype=found.dtype)
            k = _decide_block(
                blk, key, events, u, v, active, latent, entry_row_tie, stage, any_mh, loneliness, active_use,
                p_lapse, p_reconnect, new_tie, peer_support, p_max, dt,
            )  # fmt: skip
        for j in range(k):
            t = events[j]
            if t >= 0:
                switch_tie(t, False, u, v, active, active_neighbour, n_active, pos_uv, pos_vu)
            else:
                switch_tie(-1 - t, True, u, v, active, active_neighbour, n_active, pos_uv, pos_vu)


@njit
def _decide_block(
    blk, key, events, u, v, active, latent, entry_row_tie, stage, any_mh, loneliness, active_use, p_lapse,
    p_reconnect, new_tie, peer_support, p_max, dt,
):  # fmt: skip
    """The tie events found in block ``blk`` of the entries, into ``events`` (t for a lapse, -1 - t for
    a regrowth); how many, or -1 if they do not fit."""
    s = np.empty(4, dtype=np.uint64)
    seed_block(s, key, blk)
    first = blk * _ENTRY_BLOCK
    last = min(first + _ENTRY_BLOCK, entry_row_tie.shape[0])
    # The candidates' places first, then their rows and ties (one cache line each; the walk lands on
    # entries at random) in a pass of their own so that the reads overlap; then decided.
    lq = log_skip(p_max)
    c = 0
    candidates = np.empty(events.size, dtype=np.int64)
    x = first + gap(s, lq)
    while x < last:
        candidates = _room(candidates, c)
        candidates[c] = x
        c += 1
        x += 1 + gap(s, lq)
    row_tie = np.empty((c, 2), entry_row_tie.dtype)
    for j in range(c):
        x = candidates[j]
        row_tie[j, 0], row_tie[j, 1] = entry_row_tie[x, 0], entry_row_tie[x, 1]
    k = 0
    for j in range(c):
        r, t = row_tie[j, 0], row_tie[j, 1]
        # One draw for every candidate, whatever the tie's state: two scenario arms whose ties differ
        # then keep drawing the same numbers for the same tie ends through the walk (a draw skipped
        # for one arm's inactive latent tie shifted every later draw: a hundred ties at once).
        x_u = uniform(s) * p_max
        uses = int(active_use[stage[r]])
        code = any_mh[r] + 2 * uses
        # Whether the other end uses matters only to someone who uses (a few percent of candidates):
        # the other end's row is read only then.
        other_uses = 0
        if uses:
            other = v[t] if u[t] == r else u[t]
            other_uses = int(active_use[stage[other]])
        event = 0  # 1: lapse, 2: regrowth
        if active[t]:
            if x_u < p_lapse[code, other_uses]:
                event = 1
        elif latent[t]:  # once, from its first end, at the tie's own rate
            if r == u[t]:
                lone = max(loneliness[r], loneliness[v[t]])
                if x_u < prob(new_tie_hazard(new_tie, peer_support, lone), dt):
                    event = 2
        elif x_u < p_reconnect[code, other_uses]:
            event = 2
        if event:
            if k == events.size:
                return -1
            events[k] = t if event == 1 else -1 - t
            k += 1
    return k


@njit(inline=True)
def _room(buffer, k):
    """The buffer, or a copy twice its size if it is full, with its first k values (k in use): for
    candidates beyond the room made for them, and events, which can outnumber the people when rates
    are extreme (a tie can be found from both ends)."""
    if k < buffer.size:
        return buffer
    bigger = np.empty(2 * buffer.size + 16, buffer.dtype)
    bigger[:k] = buffer[:k]
    return bigger


def refresh(m) -> None:
    """Recompute everyone's tie summaries (active ties, ties using, ties in recovery, the mean
    attitude of one's ties) and loneliness: one pass over the adjacency."""
    _refresh(*_refresh_arguments(m))


@per_parameters
def _refresh_arguments(m) -> tuple:
    p, pop = m.params.social, m.population
    # One int64 per person packs what the pass sums: ties in recovery in the top b bits, ties using in
    # the next b, the attitude as an integer at 2^-q in the rest, where b = bits(largest possible ties)
    # so no sum can overflow into its neighbour (q = 48 at mean degree 10). Beyond 2^16 possible ties
    # a person (a hub of a million-node graph) the sums are kept apart instead.
    b = max(int(m.network.max_ties).bit_length(), 1)
    return bind(
        _refresh, m.shared(), packed=m.scratch[: pop.n + 1], sums=m.scratch[pop.n + 1 : 2 * pop.n + 1],
        full=float(p.supportive_ties_full), fw=float(p.family_weight), b=b, wide=b > 16,
    )  # fmt: skip


# People a block in the pass over ties: a fixed number, so the blocks, and every sum, are the same on
# any number of threads (a block's ties, ~40,000 entries at mean degree 10, fit in a core's cache).
_BLOCK = 4096


@njit(threaded=True)
def _refresh(
    packed, sums, running_sum, indptr, active_neighbour, n_active, stage, stigma, family_support, full, fw, b, wide,
    degree, using_ties, recovery_ties, perceived_stigma, loneliness,
):  # fmt: skip
    running, perceived = running_sum, perceived_stigma
    n = stage.size
    q = 63 - 3 * b
    scale = float(1 << q) if not wide else 1.0
    mask = (np.int64(1) << b) - 1
    # With no ties, a person perceives the community's mean attitude.
    mean_stigma = total(stigma) / n if n else 0.0
    if not wide:
        # What each person adds to the sums of their ties: plain arithmetic, vector code.
        for i in prange(n):
            st = stage[i]
            x = (np.int64(is_recovering(st)) << (63 - b)) + (np.int64(is_using(st)) << (63 - 2 * b))
            packed[i] = x + np.int64(stigma[i] * scale + 0.5)
        packed[n] = 0  # what an inactive entry (whose neighbour is n, no one) adds
        # Block by block: a running sum over the block's entries, then each row's sum as the difference
        # of two of its values: one flat pass, where a loop per row stalls at the end of every row
        # (measured 20-35% faster from 5,000 to 1,000,000 people). Integer sums: exact in any order.
        for blk in prange((n + _BLOCK - 1) // _BLOCK):
            first, last = blk * _BLOCK, min(n, (blk + 1) * _BLOCK)
            j0, j1 = indptr[first], indptr[last]
            # Over views from 0, so the compiler knows no index is negative (a loop from j0 checks
            # each index for wrap-around: measured 2x slower at 5,000 people).
            nbrs, run = active_neighbour[j0:j1], running[j0 + 1 : j1 + 1]
            acc = np.int64(0)
            for k in range(nbrs.size):
                acc += packed[nbrs[k]]
                run[k] = acc
            # Each row's sum (a lookup per person, in a loop of its own so that the next one, plain
            # arithmetic, runs as vector code).
            low = np.int64(0)
            ends, out = indptr[first + 1 : last + 1], sums[first:last]
            for k in range(out.size):
                m = ends[k] - j0  # entries of the block up to this row's end
                high = run[m - 1] if m > 0 else np.int64(0)
                out[k] = high - low
                low = high
        f_scale, f_full = np.float32(1.0 / scale), np.float32(1.0 / full)
        f_fw, f_keep = np.float32(fw), np.float32(1.0 - fw)
        f_mean, one = np.float32(mean_stigma), np.float32(1.0)
        att_mask = (np.int64(1) << (63 - 2 * b)) - 1
        for i in prange(n):
            got = sums[i]
            n_using = np.float32((got >> (63 - 2 * b)) & mask)
            deg = np.float32(n_active[i])
            degree[i] = deg
            using_ties[i] = n_using
            recovery_ties[i] = np.float32(got >> (63 - b))
            attitudes = np.float32(got & att_mask) * f_scale
            perceived[i] = min(attitudes / deg, one) if deg > 0 else f_mean
            supportive = min((deg - n_using) * f_full, one)
            loneliness[i] = one - (f_keep * supportive + f_fw * family_support[i])
        return
    _refresh_wide(
        stage, stigma, family_support, indptr, active_neighbour, n_active, full, fw, mean_stigma, degree, using_ties,
        recovery_ties, perceived, loneliness,
    )  # fmt: skip


@njit
def _refresh_wide(
    stage, stigma, family_support, indptr, active_neighbour, n_active, full, fw, mean_stigma, degree, using_ties,
    recovery_ties, perceived, loneliness,
):  # fmt: skip
    """The same summaries with the sums kept apart, row by row (beyond 2^16 possible ties a person)."""
    n = stage.size
    for i in range(n):
        deg = n_active[i]
        attitudes = 0.0
        n_using = n_rec = 0
        for j in range(indptr[i], indptr[i + 1]):
            c = active_neighbour[j]
            if c != n:
                n_using += is_using(stage[c])
                n_rec += is_recovering(stage[c])
                attitudes += stigma[c]
        degree[i] = deg
        using_ties[i] = n_using
        recovery_ties[i] = n_rec
        perceived[i] = min(attitudes / deg, 1.0) if deg > 0 else mean_stigma
        supportive = min((deg - n_using) / full, 1.0)
        loneliness[i] = 1.0 - ((1.0 - fw) * supportive + fw * family_support[i])


def isolated(m) -> np.ndarray:
    return m.population.degree <= m.params.social.isolated_max_ties
