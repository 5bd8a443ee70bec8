"""6. Treatment: leaving care, seeking, the waitlist, admission within capacity, mental-health care.

Leaving OUD care (competing): dropout at
    dropout_rate * stigma_dropout_HR^(internalised stigma) * untreated_mh_dropout_HR^(disorder no care treats)
                 * integrated_dropout_HR^(integrated care)
(back to OUD, tolerance lost for ``post_care_weeks``), or completion at ``completion_rate`` (to remission).
Seeking (untreated OUD, not yet waiting):
    seek_rate * perceived_stigma_HR^(perceived stigma) * internal_stigma_HR^(internalised stigma)
              * dual_stigma_HR^(disorder) * peer_recovery_HR^min(ties in recovery, peer_recovery_cap)
              * overdose_seek_HR^(recent overdose)
Seekers join a first-come queue; those waiting give up at ``waitlist_giveup_rate``. Admission fills free
slots: integrated slots (``integrated_share`` of ``capacity_per_100k``) go to people with a disorder first,
medication slots to everyone left in queue order. No one is ever in care beyond capacity.
Mental-health care: people with a disorder (not in integrated care) seek it at
``mh_seek_rate * internal_stigma_HR^(internalised stigma)`` and enter while slots are free; they leave at
``mh_exit_rate`` (times ``mh_exit_remitted_hr`` once no disorder is active).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from oudsim.agents.states import NEVER, Care, Stage
from oudsim.model.jit import below, gap, list_where, log_skip, njit, prob, skip_bound, uniform
from oudsim.model.rates import log_hr, per_parameters, pos, rows_where
from oudsim.model.transitions import append


def slots(m) -> tuple[int, int, int]:
    """Medication slots, integrated slots and mental-health slots for this population."""
    p = m.params.treatment
    return _slots(p.capacity_per_100k, p.integrated_share, p.mh_capacity_per_100k, m.population.n)


@functools.lru_cache(maxsize=256)  # three calls a step with the same few numbers
def _slots(capacity_per_100k: float, integrated_share: float, mh_capacity_per_100k: float, n: int) -> tuple[int, ...]:
    total = int(round(capacity_per_100k * n / 1e5))
    integrated = int(round(total * integrated_share))
    mh = int(round(mh_capacity_per_100k * n / 1e5))
    return total - integrated, integrated, mh


def step(m) -> None:
    _leave_care_and_seek(m)
    _admit(m)
    _mental_health_care(m)


def _leave_care_and_seek(m) -> None:
    _leave_and_seek(*_care_arguments(m), *m.log())


@per_parameters
def _care_arguments(m) -> tuple:
    p, dt, pop = m.params.treatment, m.dt_years, m.population
    l_stig_drop, l_untreated_mh = float(log_hr(p.stigma_dropout_hr)), float(log_hr(p.untreated_mh_dropout_hr))
    l_int_drop, l_perceived = float(log_hr(p.integrated_dropout_hr)), float(log_hr(p.perceived_stigma_hr))
    l_internal, l_dual = float(log_hr(p.internal_stigma_hr)), float(log_hr(p.dual_stigma_hr))
    l_peer, l_od_seek = float(log_hr(p.peer_recovery_hr)), float(log_hr(p.overdose_seek_hr))
    # The largest hazards of leaving care and of seeking (stigma scores are in [0, 1]), for skip_bound.
    leave = p.dropout_rate * math.exp(min(pos(l_stig_drop) + pos(l_untreated_mh) + pos(l_int_drop), 700.0))
    top_seek = pos(l_perceived) + pos(l_internal) + pos(l_dual) + pos(l_peer) * p.peer_recovery_cap + pos(l_od_seek)
    return (
        m.streams["care"], m.scratch, m.scratch_flags, pop.stage, pop.stage_since, pop.care, pop.any_mh, pop.in_mh_care,
        pop.internal_stigma, pop.perceived_stigma, pop.recovery_ties, pop.last_overdose, pop.lost_tolerance_until,
        pop.waiting, pop.wait_since,
        p.dropout_rate, l_stig_drop, l_untreated_mh, l_int_drop, p.completion_rate, p.waitlist_giveup_rate, p.seek_rate,
        l_perceived, l_internal, l_dual, l_peer, float(p.peer_recovery_cap), l_od_seek,
        p.recent_overdose_weeks, p.post_care_weeks, skip_bound((leave + p.completion_rate) * dt),
        skip_bound(p.seek_rate * math.exp(min(top_seek, 700.0)) * dt), dt, NEVER,
        Care.NONE.value, Care.INTEGRATED.value, Stage.OUD.value, Stage.TREATMENT.value, Stage.REMISSION.value,
    )  # fmt: skip


@njit
def _leave_and_seek(
    s, scratch, flags, stage, stage_since, care, any_mh, in_mh_care, internal, perceived, recovery_ties, last_overdose,
    lost_tolerance_until, waiting, wait_since,
    dropout, l_stig_drop, l_untreated_mh, l_int_drop, completion, giveup,
    seek, l_perceived, l_internal, l_dual, l_peer, peer_cap, l_od_seek, recent_od_weeks, post_care_weeks, u_leave,
    u_seek, dt, never, no_care, integrated, oud, treatment, remission, table, count, uid, week,
):  # fmt: skip
    """For each person, in one pass: leaving OUD care (dropout or completion, competing); giving up
    the queue; seeking care. People who drop out this step count as untreated OUD when seeking (they
    may seek again at once). Those who left care are then moved and logged (model.transitions)."""
    n = stage.size
    left = scratch[:n]
    to = scratch[n : 2 * n]  # the stage each goes to
    # Only people with OUD (in care or not) or in the queue can have any of these events: list them
    # first, in row order, so the pass with draws walks a few percent of people.
    for i in range(n):
        flags[i] = (stage[i] == oud) | (stage[i] == treatment) | waiting[i]
    listed = scratch[2 * n : 3 * n]
    k = 0
    p_quit = prob(giveup, dt)
    for j in range(list_where(flags, listed)):
        i = listed[j]
        untreated = stage[i] == oud
        # Exponential draws are made from a uniform first; at or above the u_ bounds (skip_bound) no one
        # can have the event and the hazard is not worked out.
        if stage[i] == treatment:
            u = uniform(s)
            if u < u_leave:
                integ = care[i] == integrated
                untreated_mh = any_mh[i] and not integ and not in_mh_care[i]
                h_drop = dropout * math.exp(
                    l_stig_drop * internal[i] + l_untreated_mh * untreated_mh + l_int_drop * integ
                )
                total = h_drop + completion
                if below(u, total * dt):
                    dropped = uniform(s) * total < h_drop
                    left[k] = i
                    to[k] = oud if dropped else remission
                    k += 1
                    untreated = dropped
        if waiting[i] and uniform(s) < p_quit:
            waiting[i] = False
            wait_since[i] = never
        if untreated and not waiting[i]:
            u = uniform(s)
            if u < u_seek:
                lh = l_perceived * perceived[i] + l_internal * internal[i] + l_dual * any_mh[i]
                recent_od = (week - last_overdose[i]) < recent_od_weeks
                lh += l_peer * min(recovery_ties[i], peer_cap) + l_od_seek * recent_od
                if below(u, seek * math.exp(lh) * dt):
                    waiting[i] = True
                    wait_since[i] = week
    for j in range(k):
        i = left[j]
        append(table, count, uid, i, treatment, to[j], week)
        stage[i] = to[j]
        stage_since[i] = week
        care[i] = no_care
        lost_tolerance_until[i] = week + post_care_weeks  # tolerance is lost for the first weeks after care


def _admit(m) -> None:
    admitted = _admission(*_admission_arguments(m), *m.log())
    if admitted < 0:
        # Capacity cut below occupancy (a slider or a scenario): the newest admissions return to the queue.
        pop, (cap_med, cap_int, _) = m.population, slots(m)
        care = pop.care
        for kind, cap in ((Care.MEDICATION, cap_med), (Care.INTEGRATED, cap_int)):
            rows = rows_where(care == kind.value)
            if rows.size > cap:
                back = rows[np.argsort(-pop.stage_since[rows], kind="stable")[: rows.size - cap]]
                care[back] = Care.NONE
                m.set_stage(back, Stage.OUD)
                pop.waiting[back] = True
                pop.wait_since[back] = NEVER + 1  # front of the queue
        admitted = _admission(*_admission_arguments(m), *m.log())
    m.flows["admissions"] += max(admitted, 0)


@per_parameters
def _admission_arguments(m) -> tuple:
    pop, (cap_med, cap_int, _) = m.population, slots(m)
    return (
        m.streams["admission"], m.scratch, pop.care, pop.waiting, pop.wait_since, pop.any_mh, pop.in_mh_care, cap_med,
        cap_int, Care.MEDICATION.value, Care.INTEGRATED.value, NEVER, Stage.TREATMENT.value, pop.stage,
        pop.stage_since,
    )  # fmt: skip


@njit
def _admission(
    s, scratch, care, waiting, wait_since, any_mh, in_mh_care, cap_med, cap_int, medication, integrated, never,
    treatment, stage, stage_since, table, count, uid, week,
):  # fmt: skip
    """Fill free slots from the queue, first come first served (ties at random): integrated slots go to
    people with a disorder first, medication slots to everyone left in queue order. The admitted move to
    treatment (logged, model.transitions). Returns how many were admitted, or -1 (admitting no one) if a
    service is over capacity."""
    n = care.size
    # Counts first, in a loop of plain comparisons (vector code); the queue only when someone can enter.
    n_med = n_int = n_wait = 0
    for i in range(n):
        n_med += care[i] == medication
        n_int += care[i] == integrated
        n_wait += waiting[i]
    if n_med > cap_med or n_int > cap_int:
        return -1
    free_med, free_int = cap_med - n_med, cap_int - n_int
    if free_med + free_int == 0 or n_wait == 0:
        return 0
    queue = scratch[:n]
    k = 0
    for i in range(n):
        if waiting[i]:
            queue[k] = i
            k += 1
    key = np.empty(k)
    for j in range(k):
        key[j] = wait_since[queue[j]] + uniform(s)  # week stamps are whole numbers: the draw breaks ties
    order = np.argsort(key)
    admitted = np.empty(min(k, free_med + free_int), np.int64)
    a = 0
    for j in range(k):  # integrated slots: people with a disorder, in queue order
        if free_int == 0:
            break
        i = queue[order[j]]
        if any_mh[i]:
            care[i] = integrated
            in_mh_care[i] = False  # integrated care treats the disorder itself; the MH slot is freed
            admitted[a] = i
            a += 1
            free_int -= 1
    for j in range(k):  # medication slots: everyone still waiting, in queue order
        if free_med == 0:
            break
        i = queue[order[j]]
        if care[i] == 0:
            care[i] = medication
            admitted[a] = i
            a += 1
            free_med -= 1
    for j in range(a):  # in the order admitted
        i = admitted[j]
        waiting[i] = False
        wait_since[i] = never
        append(table, count, uid, i, stage[i], treatment, week)
        stage[i] = treatment
        stage_since[i] = week
    return a


def _mental_health_care(m) -> None:
    _mh_care(*_mh_care_arguments(m))


@per_parameters
def _mh_care_arguments(m) -> tuple:
    p, pop = m.params.treatment, m.population
    _, _, cap = slots(m)
    l_int = float(log_hr(p.internal_stigma_hr))
    l_exit_remitted = float(log_hr(p.mh_exit_remitted_hr))
    u_exit = skip_bound(p.mh_exit_rate * math.exp(min(pos(l_exit_remitted), 700.0)) * m.dt_years)
    return (
        m.streams["mh_care"], m.scratch, pop.in_mh_care, pop.any_mh, pop.care, pop.internal_stigma, cap,
        p.mh_exit_rate, l_exit_remitted, u_exit, float(log_hr(p.mh_seek_rate)), l_int, pos(l_int), m.dt_years,
        Care.INTEGRATED.value,
    )  # fmt: skip


@njit
def _mh_care(
    s, seekers, inside, any_mh, care, internal, cap, exit_rate, l_exit_remitted, u_exit, l_seek, l_int, l_int_max, dt,
    integ,
):  # fmt: skip
    """Leaving mental-health care, then seeking it while slots are free (seekers beyond the free
    slots are turned away at random)."""
    n = inside.size
    used = 0
    for i in range(n):
        if inside[i]:
            u = uniform(s)  # at or above u_exit no one leaves (skip_bound)
            if u < u_exit and below(u, exit_rate * math.exp(l_exit_remitted * (not any_mh[i])) * dt):
                inside[i] = False
            else:
                used += 1
    free = cap - used
    if free <= 0:
        return
    # Seeking: candidates at the no-stigma rate, kept by eligibility and the stigma ratio.
    k = 0
    p_max = prob(math.exp(min(l_seek + l_int_max, 50.0)), dt)
    if p_max > 0.0:
        lq = log_skip(p_max)
        i = gap(s, lq)
        while i < n:
            if any_mh[i] and not inside[i] and care[i] != integ:
                if uniform(s) * p_max < prob(math.exp(l_seek + l_int * internal[i]), dt):
                    seekers[k] = i
                    k += 1
            i += 1 + gap(s, lq)
    # A random `free` of them enter (partial Fisher-Yates shuffle)
    take = min(k, free)
    for j in range(take):
        r = j + int(uniform(s) * (k - j))
        seekers[j], seekers[r] = seekers[r], seekers[j]
        inside[seekers[j]] = True
