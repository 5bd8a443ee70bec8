"""7. Overdose: who overdoses, who is alone when it happens, who dies.

Overdose rate = rate_oud * stage_HR (misuse_hr, 1 for untreated OUD, treatment_hr in care, remission_hr)
              * lost_tolerance_HR^(weeks after leaving care or relapsing)
Using alone follows from the ties a person has: each active tie is there with probability
``tie_presence``, and a person hides their use (uses alone whoever might be there) with probability
``alone_stigma * internalised stigma``:
    P(someone there) = (1 - alone_stigma * internalised stigma) * (1 - (1 - tie_presence)^(active ties)),
and when someone is there, the witness is one of the person's active ties, at random.
Death: fatality if alone; fatality * witnessed_fatality_factor with a witness and no kit at hand;
times (1 - naloxone_efficacy) when the witness carries a kit or the person does (a kit used to reverse
an overdose is used up; kits are carried by people, model.processes.naloxone). Naloxone helps only
when someone is there. A survivor with untreated OUD is referred to care (joins
the treatment queue) with probability ``treatment.overdose_referral`` (E22). Ties of someone who dies
have a stressful event with probability ``life_events.bereavement_prob``.
"""

from __future__ import annotations

import math

import numpy as np

from oudsim.agents.population import mark_deceased
from oudsim.agents.states import Stage
from oudsim.model.binding import bind
from oudsim.model.jit import gap, keyed_uniform, log_skip, njit, prob, step_key, uniform
from oudsim.model.rates import F32, log_hr, per_parameters, upper_bound

STREAMS = ("overdose", "bereavement")
FLOWS = ("overdoses", "overdose_deaths", "alone_overdoses", "alone_overdose_deaths")


@njit(inline=True)
def overdose_log_hazard(base, stage_ratio, l_tolerance, lost_tolerance):
    """log(rate_oud) + log(stage_HR[stage]) + log(lost_tolerance_HR) * (weeks after care or relapse)"""
    return base + stage_ratio + l_tolerance * lost_tolerance


@njit(inline=True)
def death_probability(fatality, alone, witnessed, kit_at_hand, efficacy):
    """fatality alone; fatality * witnessed_fatality_factor with a witness; times (1 - efficacy) with a kit"""
    if alone:
        return fatality
    return fatality * witnessed * ((1.0 - efficacy) if kit_at_hand else 1.0)


@njit(inline=True)
def alone_probability(tie_presence, ties, alone_stigma, internal_stigma):
    """P(alone) = 1 - (1 - alone_stigma * internalised stigma) * (1 - (1 - tie_presence)^ties)"""
    hide = min(max(alone_stigma * internal_stigma, 0.0), 1.0)
    return 1.0 - (1.0 - hide) * (1.0 - (1.0 - tie_presence) ** ties)


def _log_stage_hr(misuse_hr: float, treatment_hr: float, remission_hr: float) -> tuple[np.ndarray, float]:
    """log overdose ratio by stage (no use and deceased: no overdose), and its largest value."""
    out = np.array([log_hr(h) for h in (0.0, misuse_hr, 1.0, treatment_hr, remission_hr, 0.0)], dtype=F32)
    out.flags.writeable = False
    return out, float(out.max())


def step(m) -> None:
    # Deaths are marked as they are found (agents.population.mark_deceased); replaced in demography.
    n_od, n_alone, n_dead, n_dead_alone = _overdoses(*_arguments(m), m.log_table(), m.week)
    f = m.flows
    f["overdoses"] += n_od
    f["overdose_deaths"] += n_dead
    f["alone_overdoses"] += n_alone
    f["alone_overdose_deaths"] += n_dead_alone


@per_parameters
def _arguments(m) -> tuple:
    p = m.params.overdose
    log_stage, top = _log_stage_hr(p.misuse_hr, p.treatment_hr, p.remission_hr)
    base, l_tolerance = float(log_hr(p.rate_oud)), float(log_hr(p.lost_tolerance_hr))
    return bind(
        _overdoses, m.shared(), log_stage=log_stage, base=base, l_tolerance=l_tolerance,
        bound=upper_bound(overdose_log_hazard, base=base, stage_ratio=top, l_tolerance=l_tolerance),
        tie_presence=p.tie_presence, alone_stigma=p.alone_stigma,
        fatality=p.fatality, witnessed=p.witnessed_fatality_factor, efficacy=p.naloxone_efficacy,
        bereavement=m.params.life_events.bereavement_prob, referral=m.params.treatment.overdose_referral,
    )  # fmt: skip


@njit
def _overdoses(
    overdose_stream, bereavement_stream, lost_tolerance_until, last_overdose, internal_stigma, last_event,
    indptr, active_neighbour, n_active, naloxone, log_stage, base, l_tolerance, bound, tie_presence, alone_stigma,
    fatality, witnessed, efficacy, bereavement, referral, dt, stage, stage_since, care, in_mh_care, waiting,
    wait_since, has_oud, died, dead_rows, count, uid, table, week,
):  # fmt: skip
    s = overdose_stream
    n = stage.size
    first = died[0]  # this kernel's deaths are dead_rows[first:]
    n_od = n_alone = n_dead_alone = 0
    p_max = prob(math.exp(min(bound, 50.0)), dt)
    if p_max > 0.0:
        lq = log_skip(p_max)
        i = gap(s, lq)
        while i < n:
            # Five draws for every candidate, used or not: two scenario arms then draw the same
            # numbers for the same candidates (common random numbers), so a difference in deaths
            # between them comes from the scenario, not from the streams drifting apart.
            u_overdose, u_alone, u_witness = uniform(s), uniform(s), uniform(s)
            u_death, u_referral = uniform(s), uniform(s)
            lh = overdose_log_hazard(base, log_stage[stage[i]], l_tolerance, lost_tolerance_until[i] > week)
            if u_overdose * p_max < prob(math.exp(lh), dt):
                n_od += 1
                last_overdose[i] = week
                ties = n_active[i]
                alone = u_alone < alone_probability(tie_presence, ties, alone_stigma, internal_stigma[i])
                n_alone += alone
                kit = -1  # whose kit is at hand: the witness's, else the person's own
                if not alone:
                    w = _witness(indptr, active_neighbour, i, int(u_witness * ties), n)
                    kit = w if w < n and naloxone[w] else (i if naloxone[i] else -1)
                if kit >= 0:
                    naloxone[kit] = False  # used (whether or not the person lives)
                if u_death < death_probability(fatality, alone, witnessed, kit >= 0, efficacy):
                    n_dead_alone += alone
                    mark_deceased(
                        i, stage, stage_since, care, in_mh_care, waiting, has_oud, died, dead_rows, table, count, uid,
                        week,
                    )  # fmt: skip
                elif stage[i] == Stage.OUD and not waiting[i] and u_referral < referral:
                    waiting[i] = True  # referred to care from the emergency department (E22)
                    wait_since[i] = week
            i += 1 + gap(s, lq)
    # Bereavement: an overdose death is a stressful event for the person's ties (draws keyed to the
    # tie end, so the same in two arms whoever else died).
    key = step_key(bereavement_stream)
    for r in range(first, died[0]):
        for j in range(indptr[dead_rows[r]], indptr[dead_rows[r] + 1]):
            c = active_neighbour[j]
            if c != n and keyed_uniform(key, c, j) < bereavement:
                last_event[c] = week
    return n_od, n_alone, died[0] - first, n_dead_alone


@njit(inline=True)
def _witness(indptr, active_neighbour, i, k, nobody):
    """The k-th active tie of person i (0 <= k < their number of active ties)."""
    for j in range(indptr[i], indptr[i + 1]):
        c = active_neighbour[j]
        if c != nobody:
            if k == 0:
                return c
            k -= 1
    return nobody
