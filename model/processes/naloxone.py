"""7. Naloxone kits: carried by people, handed out to people who use opioids and to their ties.

A person without a kit gets one at
    kit_rate * [(active use or in OUD care) + kit_tie_share * (has a tie who uses)],
    kit_rate = kit_loss_rate * naloxone_coverage / (1 - naloxone_coverage),
so that among people who use, the share carrying a kit settles at ``naloxone_coverage`` (overdose
education and naloxone distribution reach, E23); a kit is used, lost or expires at ``kit_loss_rate``.
Whether a kit is at hand when someone overdoses follows from who is there (model.processes.overdose):
the person's own kit or the witness's, and the witness is one of the person's ties, so distribution
and isolation act together.
"""

from __future__ import annotations

from oudsim.agents.states import Stage, is_using
from oudsim.model.binding import bind
from oudsim.model.jit import gap, log_skip, njit, prob, uniform
from oudsim.model.rates import per_parameters, upper_bound

STREAMS = ("naloxone",)
FLOWS = ("kits_handed_out",)


@njit(inline=True)
def kit_rate(coverage, loss):
    """The distribution rate that gives a steady share ``coverage`` carrying among people reached
    fully: rate / (rate + loss) = coverage."""
    return loss * coverage / (1.0 - coverage) if coverage < 1.0 else 1e6


@njit(inline=True)
def kit_hazard(carrying, loss, rate, reached, tie_share, tie_using):
    """A carrier loses the kit at ``loss``; anyone else gets one at rate * (reached + tie_share * tie_using)."""
    return loss if carrying else rate * (reached + tie_share * tie_using)


def step(m) -> None:
    m.flows["kits_handed_out"] += _kits(*_arguments(m))


@per_parameters
def _arguments(m) -> tuple:
    p = m.params.overdose
    rate = kit_rate(p.naloxone_coverage, p.kit_loss_rate)
    top = max(
        upper_bound(kit_hazard, carrying=0.0, loss=p.kit_loss_rate, rate=rate, tie_share=p.kit_tie_share),
        p.kit_loss_rate,
    )
    return bind(
        _kits, m.shared(), loss=p.kit_loss_rate, rate=rate, tie_share=p.kit_tie_share, p_max=prob(top, m.dt_years)
    )


@njit
def _kits(naloxone_stream, naloxone, stage, using_ties, loss, rate, tie_share, p_max, dt):
    s = naloxone_stream
    n = stage.size
    given = 0
    if p_max <= 0.0:
        return given
    lq = log_skip(p_max)
    i = gap(s, lq)
    while i < n:
        st = stage[i]
        reached = is_using(st) or st == Stage.TREATMENT
        h = kit_hazard(naloxone[i], loss, rate, reached, tie_share, using_ties[i] > 0)
        if uniform(s) * p_max < prob(h, dt):
            given += not naloxone[i]
            naloxone[i] = not naloxone[i]
        i += 1 + gap(s, lq)
    return given
