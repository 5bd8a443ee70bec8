"""1. Life events: stressful events (trauma, job loss, bereavement) by SES and ACE group.

Rate = rate * SES_HR[ses] * ACE_HR[ace]. A recent event (within ``life_events.recent_weeks``) raises
mental-health onset, initiation and relapse; ``m.recent`` holds it for the rest of the step.
Bereavement after an overdose death is added by the overdose process.
"""

from __future__ import annotations

import math

from oudsim.model.binding import bind
from oudsim.model.jit import gap, log_skip, njit, prob, uniform
from oudsim.model.rates import log_hr, per_parameters

STREAMS = ("life_events",)
FLOWS = ()


@njit(inline=True)
def event_log_hazard(base, group):
    """log(rate) + log(SES_HR[ses] * ACE_HR[ace])"""
    return base + group


def step(m) -> None:
    _life_events(*_arguments(m), m.week)


@per_parameters
def _arguments(m) -> tuple:
    p, pop = m.params.life_events, m.population
    group, top = m.factors.get("life_events", pop.group, ses=p.ses_hr, ace=p.ace_hr)
    base = float(log_hr(p.rate))
    return bind(
        _life_events, m.shared(), group=group, base=base, bound=event_log_hazard(base, top),
        recent_weeks=p.recent_weeks,
    )  # fmt: skip


@njit
def _life_events(life_events_stream, last_event, recent, group, base, bound, dt, recent_weeks, week):
    s = life_events_stream
    n = last_event.size
    p_max = prob(math.exp(min(bound, 50.0)), dt)  # thinning at the highest group's rate
    if p_max > 0.0:
        lq = log_skip(p_max)
        i = gap(s, lq)
        while i < n:
            if uniform(s) * p_max < prob(math.exp(event_log_hazard(base, group[i])), dt):
                last_event[i] = week
            i += 1 + gap(s, lq)
    for i in range(n):
        recent[i] = (week - last_event[i]) < recent_weeks
