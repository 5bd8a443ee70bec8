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

import numpy as np

from agents.states import NEVER, Care, Stage
from model.rates import F32, compete, events_bounded, log_hr, occurs, per_unit, pos, rows_where, when


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
    _leave_care(m)
    _seek(m)
    _admit(m)
    _mental_health_care(m)


def _leave_care(m) -> None:
    p, pop, dt, wk = m.params.treatment, m.population, m.dt_years, m.week
    i = rows_where(pop.stage == Stage.TREATMENT.value)
    integ = pop.care[i] == Care.INTEGRATED.value
    untreated_mh = pop.any_mh[i] & ~integ & ~pop.in_mh_care[i]
    h_drop = (
        np.float32(p.dropout_rate)
        * per_unit(p.stigma_dropout_hr, pop.internal_stigma[i])
        * when(untreated_mh, p.untreated_mh_dropout_hr)
        * when(integ, p.integrated_dropout_hr)
    )
    out = compete(m.rng, dt, h_drop, np.full(i.size, p.completion_rate, np.float32))
    drop, done = i[out == 1], i[out == 2]
    pop.care[drop] = Care.NONE
    pop.care[done] = Care.NONE
    m.set_stage(drop, Stage.OUD)
    m.set_stage(done, Stage.REMISSION)
    pop.lost_tolerance_until[drop] = wk + p.post_care_weeks
    pop.lost_tolerance_until[done] = wk + p.post_care_weeks


def _seek(m) -> None:
    p, pop, rng, dt, wk = m.params.treatment, m.population, m.rng, m.dt_years, m.week
    w = rows_where(pop.waiting)
    quit_ = w[occurs(rng, np.full(w.size, p.waitlist_giveup_rate, np.float32), dt)]
    pop.waiting[quit_] = False
    pop.wait_since[quit_] = NEVER

    i = rows_where((pop.stage == Stage.OUD.value) & ~pop.waiting)
    recent_od = (wk - pop.last_overdose[i]) < p.recent_overdose_weeks
    h = (
        np.float32(p.seek_rate)
        * per_unit(p.perceived_stigma_hr, pop.perceived_stigma[i])
        * per_unit(p.internal_stigma_hr, pop.internal_stigma[i])
        * when(pop.any_mh[i], p.dual_stigma_hr)
        * np.power(np.float32(p.peer_recovery_hr), np.minimum(pop.recovery_ties[i], p.peer_recovery_cap))
        * when(recent_od, p.overdose_seek_hr)
    )
    seekers = i[occurs(rng, h, dt)]
    pop.waiting[seekers] = True
    pop.wait_since[seekers] = wk


def _admit(m) -> None:
    pop, rng = m.population, m.rng
    cap_med, cap_int, _ = slots(m)
    care = pop.care
    n_med = int(np.count_nonzero(care == Care.MEDICATION.value))
    n_int = int(np.count_nonzero(care == Care.INTEGRATED.value))
    # Capacity cut below occupancy (a slider or a scenario): the newest admissions return to the queue.
    for kind, count, cap in ((Care.MEDICATION, n_med, cap_med), (Care.INTEGRATED, n_int, cap_int)):
        if count > cap:
            rows = rows_where(care == kind.value)
            back = rows[np.argsort(-pop.stage_since[rows], kind="stable")[: count - cap]]
            care[back] = Care.NONE
            m.set_stage(back, Stage.OUD)
            pop.waiting[back] = True
            pop.wait_since[back] = NEVER + 1  # front of the queue
    free_med = max(cap_med - n_med, 0)
    free_int = max(cap_int - n_int, 0)
    if free_med + free_int == 0:
        return
    q = rows_where(pop.waiting)
    if q.size == 0:
        return
    q = q[np.lexsort((rng.random(q.size), pop.wait_since[q]))]  # first come, ties at random
    to_int_at = rows_where(pop.any_mh[q])[:free_int]  # places in the queue of those given integrated slots
    to_int = q[to_int_at]
    left = np.ones(q.size, dtype=bool)
    left[to_int_at] = False
    rest = q[left]
    to_med = rest[:free_med]
    care[to_int] = Care.INTEGRATED
    care[to_med] = Care.MEDICATION
    admitted = np.concatenate([to_int, to_med])
    pop.waiting[admitted] = False
    pop.wait_since[admitted] = NEVER
    pop.in_mh_care[to_int] = False  # integrated care treats the disorder itself; the MH slot is freed
    m.set_stage(admitted, Stage.TREATMENT)
    m.flows["admissions"] += admitted.size


def _mental_health_care(m) -> None:
    p, pop, rng, dt = m.params.treatment, m.population, m.rng, m.dt_years
    inside = pop.in_mh_care
    i = rows_where(inside)
    h = np.float32(p.mh_exit_rate) * when(~pop.any_mh[i], p.mh_exit_remitted_hr)
    inside[i[occurs(rng, h, dt)]] = False
    _, _, cap = slots(m)
    free = cap - (i.size - int(np.count_nonzero(~inside[i])))
    if free <= 0:
        return
    # Seeking: candidates at the no-stigma rate, kept by eligibility and the stigma ratio.
    l_int = log_hr(p.internal_stigma_hr)

    def log_seek(c: np.ndarray) -> np.ndarray:
        ok = pop.any_mh[c] & ~inside[c] & (pop.care[c] != Care.INTEGRATED.value)
        return np.where(ok, log_hr(p.mh_seek_rate) + l_int * pop.internal_stigma[c], F32(-100.0))

    seekers = events_bounded(rng, pop.n, log_hr(p.mh_seek_rate) + pos(l_int), log_seek, dt)
    if seekers.size > free:
        seekers = rng.choice(seekers, size=free, replace=False)
    inside[seekers] = True
