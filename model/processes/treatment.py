"""6. Treatment: leaving care, seeking, the waitlist, admission within capacity, mental-health care.

Leaving OUD care (competing): dropout at
    dropout_rate * stigma_dropout_HR^(internalised stigma) * untreated_mh_dropout_HR^(disorder no care treats)
                 * integrated_dropout_HR^(integrated care)
(back to OUD, tolerance lost for ``post_care_weeks``), or completion at ``completion_rate`` (to remission).
Seeking (untreated OUD, not yet waiting):
    seek_rate * ses_seek_HR[SES] * perceived_stigma_HR^(perceived stigma) * internal_stigma_HR^(internalised stigma)
              * peer_recovery_HR^min(ties in recovery, peer_recovery_cap)
              * mh_care_referral_HR^(in mental-health care)
(a survivor of a non-fatal overdose is also referred at once with probability ``overdose_referral``,
model.processes.overdose). Seekers join a first-come queue; those waiting give up at
``waitlist_giveup_rate``. Admission: after at least ``admission_delay_weeks`` in the queue (intake
assessment), at most ``weekly_intake_share`` of the slots a week, into free slots: integrated slots
(``integrated_share`` of ``capacity_per_100k``) go to people with a disorder first, medication slots to
everyone left in queue order. No one is ever in care beyond capacity.
Mental-health care: people with a disorder (not in integrated care) seek it at
``mh_seek_rate * internal_stigma_HR^(internalised stigma)`` and enter while slots are free; they leave at
``mh_exit_rate`` (times ``mh_exit_remitted_hr`` once no disorder is active).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from oudsim.agents.states import NEVER, Care, Stage
from oudsim.model.binding import bind
from oudsim.model.jit import below, gap, keyed_uniform, list_where, log_skip, njit, prob, skip_bound, step_key
from oudsim.model.rates import log_hr, per_parameters, rows_where, upper_bound
from oudsim.model.transitions import append

STREAMS = ("care", "admission", "mh_care")
FLOWS = ("admissions",)


# The hazards (annual), as in the module's docstring and docs/ODD.md; every l_* is a log hazard ratio.
@njit(inline=True)
def dropout_hazard(dropout, l_stigma, internal_stigma, l_untreated_mh, untreated_mh, l_integrated, integrated):
    """leaving OUD care against advice (to untreated OUD)"""
    return dropout * math.exp(l_stigma * internal_stigma + l_untreated_mh * untreated_mh + l_integrated * integrated)


@njit(inline=True)
def seeking_hazard(
    seek, l_ses, l_perceived, perceived_stigma, l_internal, internal_stigma, l_peer, peers, l_referral, in_mh_care,
):  # fmt: skip
    """untreated OUD, not yet waiting -> the queue (l_ses: the person's SES entry of log ses_seek_HR)"""
    return seek * math.exp(
        l_ses + l_perceived * perceived_stigma + l_internal * internal_stigma + l_peer * peers
        + l_referral * in_mh_care
    )  # fmt: skip


@njit(inline=True)
def mh_exit_hazard(exit_rate, l_remitted, remitted):
    """leaving mental-health care"""
    return exit_rate * math.exp(l_remitted * remitted)


@njit(inline=True)
def mh_seeking_log_hazard(log_seek, l_internal, internal_stigma):
    """a disorder, out of care -> mental-health care (while slots are free), in log"""
    return log_seek + l_internal * internal_stigma


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
    _leave_and_seek(*_care_arguments(m), m.log_table(), m.week)


@per_parameters
def _care_arguments(m) -> tuple:
    p, dt = m.params.treatment, m.dt_years
    ratios = {
        name: float(log_hr(hr))
        for name, hr in (
            ("l_stigma_dropout", p.stigma_dropout_hr), ("l_untreated_mh", p.untreated_mh_dropout_hr),
            ("l_integrated_dropout", p.integrated_dropout_hr), ("l_perceived", p.perceived_stigma_hr),
            ("l_internal", p.internal_stigma_hr), ("l_peer", p.peer_recovery_hr),
            ("l_referral", p.mh_care_referral_hr),
        )
    }  # fmt: skip
    l_ses = np.array([log_hr(hr) for hr in p.ses_seek_hr], dtype=np.float64)
    r, peer_cap = ratios, float(p.peer_recovery_cap)
    # The largest hazards of leaving care and of seeking, from the hazards' own terms, for skip_bound.
    leave = upper_bound(
        dropout_hazard, dropout=p.dropout_rate, l_stigma=r["l_stigma_dropout"], l_untreated_mh=r["l_untreated_mh"],
        l_integrated=r["l_integrated_dropout"],
    )  # fmt: skip
    seek = upper_bound(
        seeking_hazard, seek=p.seek_rate, l_ses=float(l_ses.max()), l_perceived=r["l_perceived"],
        l_internal=r["l_internal"], l_peer=r["l_peer"], peers=peer_cap, l_referral=r["l_referral"],
    )  # fmt: skip
    return bind(
        _leave_and_seek, m.shared(), **ratios, dropout=p.dropout_rate, completion=p.completion_rate,
        giveup=p.waitlist_giveup_rate, seek=p.seek_rate, l_ses=l_ses, peer_cap=peer_cap,
        post_care_weeks=p.post_care_weeks,
        u_leave=skip_bound((leave + p.completion_rate) * dt), u_seek=skip_bound(seek * dt),
    )  # fmt: skip


@njit
def _leave_and_seek(
    care_stream, scratch, flags, stage, stage_since, care, any_mh, in_mh_care, internal_stigma, perceived_stigma,
    recovery_ties, ses, lost_tolerance_until, waiting, wait_since, after_care,
    dropout, l_stigma_dropout, l_untreated_mh, l_integrated_dropout, completion, giveup,
    seek, l_ses, l_perceived, l_internal, l_peer, peer_cap, l_referral, post_care_weeks,
    u_leave, u_seek, dt, count, uid, table, week,
):  # fmt: skip
    """For each person, in one pass: leaving OUD care (dropout or completion, competing); giving up
    the queue; seeking care. People who drop out this step count as untreated OUD when seeking (they
    may seek again at once). Those who left care are then moved and logged (model.transitions)."""
    s, internal, perceived = care_stream, internal_stigma, perceived_stigma
    key = step_key(s)  # draws keyed to the person (jit.keyed_uniform): the same in two arms
    n = stage.size
    left = scratch[:n]
    to = scratch[n : 2 * n]  # the stage each goes to
    # Only people with OUD (in care or not) or in the queue can have any of these events: list them
    # first, in row order, so the pass with draws walks a few percent of people.
    for i in range(n):
        flags[i] = (stage[i] == Stage.OUD) | (stage[i] == Stage.TREATMENT) | waiting[i]
    listed = scratch[2 * n : 3 * n]
    k = 0
    p_quit = prob(giveup, dt)
    for j in range(list_where(flags, listed)):
        i = listed[j]
        untreated = stage[i] == Stage.OUD
        # Exponential draws are made from a uniform first; at or above the u_ bounds (skip_bound) no one
        # can have the event and the hazard is not worked out.
        if stage[i] == Stage.TREATMENT:
            u = keyed_uniform(key, i, 0)
            if u < u_leave:
                integ = care[i] == Care.INTEGRATED
                untreated_mh = any_mh[i] and not integ and not in_mh_care[i]
                h_drop = dropout_hazard(
                    dropout, l_stigma_dropout, internal[i], l_untreated_mh, untreated_mh, l_integrated_dropout, integ
                )
                total = h_drop + completion
                if below(u, total * dt):
                    dropped = keyed_uniform(key, i, 1) * total < h_drop
                    left[k] = i
                    to[k] = Stage.OUD if dropped else Stage.REMISSION
                    k += 1
                    untreated = dropped
        if waiting[i] and keyed_uniform(key, i, 2) < p_quit:
            waiting[i] = False
            wait_since[i] = NEVER
        if untreated and not waiting[i]:
            u = keyed_uniform(key, i, 3)
            if u < u_seek:
                h = seeking_hazard(
                    seek, l_ses[ses[i]], l_perceived, perceived[i], l_internal, internal[i], l_peer,
                    min(recovery_ties[i], peer_cap), l_referral, in_mh_care[i],
                )  # fmt: skip
                if below(u, h * dt):
                    waiting[i] = True
                    wait_since[i] = week
    for j in range(k):
        i = left[j]
        append(table, count, uid, i, Stage.TREATMENT, to[j], week)
        stage[i] = to[j]
        stage_since[i] = week
        care[i] = Care.NONE
        lost_tolerance_until[i] = week + post_care_weeks  # tolerance is lost for the first weeks after care
        after_care[i] = to[j] == Stage.REMISSION  # a remission that began on leaving care (early relapse, E16)


def _admit(m) -> None:
    admitted = _admission(*_admission_arguments(m), m.log_table(), m.week)
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
                # Put out of care, they lose tolerance like anyone leaving medication (E21).
                pop.lost_tolerance_until[back] = m.week + m.params.treatment.post_care_weeks
        admitted = _admission(*_admission_arguments(m), m.log_table(), m.week)
    m.flows["admissions"] += max(admitted, 0)


def intake_per_step(weekly_intake_share: float, dt_weeks: int, oud_slots: int) -> int:
    """Most admissions a step: the weekly share of the OUD slots (at least one while there are slots)."""
    return max(int(round(weekly_intake_share * dt_weeks * oud_slots)), 1 if oud_slots else 0)


@per_parameters
def _admission_arguments(m) -> tuple:
    p = m.params.treatment
    cap_med, cap_int, _ = slots(m)
    intake = intake_per_step(p.weekly_intake_share, m.params.simulation.dt_weeks, cap_med + cap_int)
    delay = int(math.ceil(p.admission_delay_weeks / m.params.simulation.dt_weeks))  # in steps
    return bind(_admission, m.shared(), cap_med=cap_med, cap_int=cap_int, intake=intake, delay=delay)


@njit
def _admission(
    admission_stream, scratch, care, waiting, wait_since, any_mh, in_mh_care, cap_med, cap_int, intake, delay, stage,
    stage_since, count, uid, table, week,
):  # fmt: skip
    """Fill free slots from the queue, first come first served (ties at random), among those who have
    waited ``delay`` steps, at most ``intake`` of them: integrated slots go to people with a disorder
    first, medication slots to everyone left in queue order. The admitted move to treatment (logged,
    model.transitions). Returns how many were admitted, or -1 (admitting no one) if a service is over
    capacity."""
    s = admission_stream
    n = care.size
    # Counts first, in a loop of plain comparisons (vector code); the queue only when someone can enter.
    n_med = n_int = n_wait = 0
    for i in range(n):
        n_med += care[i] == Care.MEDICATION
        n_int += care[i] == Care.INTEGRATED
        n_wait += waiting[i]
    if n_med > cap_med or n_int > cap_int:
        return -1
    free_med, free_int = cap_med - n_med, cap_int - n_int
    if free_med + free_int == 0 or n_wait == 0 or intake == 0:
        return 0
    queue = scratch[:n]
    k = 0
    for i in range(n):
        if waiting[i] and week - wait_since[i] >= delay:  # intake assessment done
            queue[k] = i
            k += 1
    key = np.empty(k)
    tie_key = step_key(s)  # ties broken by a draw keyed to the person (the same in two arms)
    for j in range(k):
        key[j] = wait_since[queue[j]] + keyed_uniform(tie_key, queue[j], 0)  # week stamps are whole numbers
    order = np.argsort(key)
    room = min(k, free_med + free_int, intake)
    admitted = np.empty(room, np.int64)
    a = 0
    for j in range(k):  # integrated slots: people with a disorder, in queue order
        if free_int == 0 or a == room:
            break
        i = queue[order[j]]
        if any_mh[i]:
            care[i] = Care.INTEGRATED
            in_mh_care[i] = False  # integrated care treats the disorder itself; the MH slot is freed
            admitted[a] = i
            a += 1
            free_int -= 1
    for j in range(k):  # medication slots: everyone still waiting, in queue order
        if free_med == 0 or a == room:
            break
        i = queue[order[j]]
        if care[i] == Care.NONE:
            care[i] = Care.MEDICATION
            admitted[a] = i
            a += 1
            free_med -= 1
    for j in range(a):  # in the order admitted
        i = admitted[j]
        waiting[i] = False
        wait_since[i] = NEVER
        append(table, count, uid, i, stage[i], Stage.TREATMENT, week)
        stage[i] = Stage.TREATMENT
        stage_since[i] = week
    return a


def _mental_health_care(m) -> None:
    _mh_care(*_mh_care_arguments(m))


@per_parameters
def _mh_care_arguments(m) -> tuple:
    p = m.params.treatment
    _, _, cap = slots(m)
    l_internal, l_remitted = float(log_hr(p.internal_stigma_hr)), float(log_hr(p.mh_exit_remitted_hr))
    log_seek = float(log_hr(p.mh_seek_rate))
    top_exit = upper_bound(mh_exit_hazard, exit_rate=p.mh_exit_rate, l_remitted=l_remitted)
    return bind(
        _mh_care, m.shared(), cap=cap, exit_rate=p.mh_exit_rate, l_remitted=l_remitted,
        u_exit=skip_bound(top_exit * m.dt_years), log_seek=log_seek, l_internal=l_internal,
        bound=upper_bound(mh_seeking_log_hazard, log_seek=log_seek, l_internal=l_internal),
    )  # fmt: skip


@njit
def _mh_care(
    mh_care_stream, scratch, in_mh_care, any_mh, care, internal_stigma, cap, exit_rate, l_remitted, u_exit, log_seek,
    l_internal, bound, dt,
):  # fmt: skip
    """Leaving mental-health care, then seeking it while slots are free (seekers beyond the free
    slots are turned away at random). Draws are keyed to the person (jit.keyed_uniform) and seekers
    are candidates at a bound fixed by the parameters: two scenario arms draw the same numbers for the
    same person, whoever else is in care."""
    s, seekers, inside, internal = mh_care_stream, scratch, in_mh_care, internal_stigma
    key = step_key(s)  # before any draw: the state the stream was reseeded to this step
    n = inside.size
    used = 0
    for i in range(n):
        if inside[i]:
            u = keyed_uniform(key, i, 0)  # at or above u_exit no one leaves (skip_bound)
            if u < u_exit and below(u, mh_exit_hazard(exit_rate, l_remitted, not any_mh[i]) * dt):
                inside[i] = False
            else:
                used += 1
    free = cap - used
    if free <= 0:
        return
    # Seeking: candidates at the no-stigma rate, kept by eligibility and the stigma ratio.
    k = 0
    p_max = prob(math.exp(min(bound, 50.0)), dt)
    if p_max > 0.0:
        lq = log_skip(p_max)
        i = gap(s, lq)
        while i < n:
            if any_mh[i] and not inside[i] and care[i] != Care.INTEGRATED:
                u = keyed_uniform(key, i, 1)
                if u * p_max < prob(math.exp(mh_seeking_log_hazard(log_seek, l_internal, internal[i])), dt):
                    seekers[k] = i
                    k += 1
            i += 1 + gap(s, lq)
    if k <= free:
        for j in range(k):
            inside[seekers[j]] = True
        return
    # More seekers than slots: those with the lowest keyed lottery number enter.
    lottery = np.empty(k)
    for j in range(k):
        lottery[j] = keyed_uniform(key, seekers[j], 2)
    order = np.argsort(lottery)
    for j in range(free):
        inside[seekers[order[j]]] = True
