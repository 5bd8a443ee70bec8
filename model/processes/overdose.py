"""7. Overdose: who overdoses, who is alone when it happens, who dies.

Overdose rate = rate_oud * stage_HR (misuse_hr, 1 for untreated OUD, treatment_hr in care, remission_hr)
              * lost_tolerance_HR^(weeks after leaving care or relapsing)
Using alone: P(alone) = clip(alone_base + alone_loneliness * loneliness + alone_stigma * internalised stigma)
Death: fatality if alone; otherwise fatality * witnessed_fatality_factor * (1 - naloxone_coverage * naloxone_efficacy).
Naloxone helps only when someone is there. Ties of someone who dies have a stressful event with
probability ``life_events.bereavement_prob``.
"""

from __future__ import annotations

import math

import numpy as np

from oudsim.agents.population import mark_deceased
from oudsim.model.binding import bind
from oudsim.model.jit import gap, log_skip, njit, prob, uniform
from oudsim.model.rates import F32, log_hr, per_parameters, upper_bound

STREAMS = ("overdose", "bereavement")
FLOWS = ("overdoses", "overdose_deaths", "alone_overdoses", "alone_overdose_deaths")


@njit(inline=True)
def overdose_log_hazard(base, stage_ratio, l_tolerance, lost_tolerance):
    """log(rate_oud) + log(stage_HR[stage]) + log(lost_tolerance_HR) * (weeks after care or relapse)"""
    return base + stage_ratio + l_tolerance * lost_tolerance


@njit(inline=True)
def alone_probability(alone_base, alone_loneliness, loneliness, alone_stigma, internal_stigma):
    """P(alone) = clip(alone_base + alone_loneliness * loneliness + alone_stigma * internalised stigma)"""
    return min(max(alone_base + alone_loneliness * loneliness + alone_stigma * internal_stigma, 0.0), 1.0)


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
        alone_base=p.alone_base, alone_loneliness=p.alone_loneliness, alone_stigma=p.alone_stigma,
        fatality=p.fatality, witnessed=p.witnessed_fatality_factor * (1.0 - p.naloxone_coverage * p.naloxone_efficacy),
        bereavement=m.params.life_events.bereavement_prob,
    )  # fmt: skip


@njit
def _overdoses(
    overdose_stream, bereavement_stream, lost_tolerance_until, last_overdose, loneliness, internal_stigma, last_event,
    indptr, active_neighbour, log_stage, base, l_tolerance, bound, alone_base, alone_loneliness, alone_stigma, fatality,
    witnessed, bereavement, dt, stage, stage_since, care, in_mh_care, waiting, has_oud, died, dead_rows, count, uid,
    table, week,
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
            # Three draws for every candidate, used or not: two scenario arms then draw the same
            # numbers for the same candidates (common random numbers), so a difference in deaths
            # between them comes from the scenario, not from the streams drifting apart.
            u_overdose, u_alone, u_death = uniform(s), uniform(s), uniform(s)
            lh = overdose_log_hazard(base, log_stage[stage[i]], l_tolerance, lost_tolerance_until[i] > week)
            if u_overdose * p_max < prob(math.exp(lh), dt):
                n_od += 1
                last_overdose[i] = week
                alone = u_alone < alone_probability(
                    alone_base, alone_loneliness, loneliness[i], alone_stigma, internal_stigma[i]
                )
                n_alone += alone
                if u_death < fatality * (1.0 if alone else witnessed):
                    n_dead_alone += alone
                    mark_deceased(
                        i, stage, stage_since, care, in_mh_care, waiting, has_oud, died, dead_rows, table, count, uid,
                        week,
                    )  # fmt: skip
            i += 1 + gap(s, lq)
    # Bereavement: an overdose death is a stressful event for the person's ties (its own stream, so
    # the overdose stream stays in step between arms).
    for r in range(first, died[0]):
        for j in range(indptr[dead_rows[r]], indptr[dead_rows[r] + 1]):
            c = active_neighbour[j]
            if c != n and uniform(bereavement_stream) < bereavement:
                last_event[c] = week
    return n_od, n_alone, died[0] - first, n_dead_alone
