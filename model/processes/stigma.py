"""4. Stigma: attitudes spread through ties, contact lowers them, campaigns lower them from outside.

Attitude s_i in [0, 1] (1 = most stigmatising) moves each step by
    a_conf * (mean attitude of ties - s_i)
  + a_norm * (norm_i * (1 - campaign_strength) - s_i)
  - (1 - exp(-contact_rate * ties in treatment or remission * dt)) * s_i
with a_x = 1 - exp(-x_rate * dt). Internalised stigma of a person with a condition follows the stigma
they perceive among their ties: target = perceived * (1 for an opioid-use history, mh_stigma_factor for
a disorder alone) * dual_stigma_factor^(both), capped at 1, approached at ``internalisation_rate``;
without a condition it fades at the same rate.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from oudsim.agents.states import Stage
from oudsim.model.binding import bind
from oudsim.model.jit import njit
from oudsim.model.rates import per_parameters, prob

STREAMS = ()
FLOWS = ()


def _contact_table(contact_rate: float, dt: float, max_ties: int) -> np.ndarray:
    """1 - exp(-contact_rate * k * dt) for k = 0 .. max_ties ties in recovery (looked up, not computed)."""
    return np.asarray(prob(contact_rate * np.arange(max_ties + 1, dtype=np.float64), dt), dtype=np.float32)


def step(m) -> None:
    _attitudes(*_arguments(m))


@per_parameters
def _arguments(m) -> tuple:
    p, dt = m.params.stigma, m.dt_years
    return bind(
        _attitudes, m.shared(), contact=_contact_table(p.contact_rate, dt, m.network.max_ties),
        a_conf=prob(p.conformity_rate, dt), a_norm=prob(p.norm_reversion_rate, dt), campaign=p.campaign_strength,
        mh_factor=p.mh_stigma_factor, dual_factor=p.dual_stigma_factor, a_int=prob(p.internalisation_rate, dt),
    )  # fmt: skip


@njit(threaded=True)
def _attitudes(
    stigma, internal_stigma, perceived_stigma, stigma_norm, recovery_ties, stage, any_mh, scratch_f, contact, a_conf,
    a_norm, campaign, mh_factor, dual_factor, a_int,
):  # fmt: skip
    # (No aliases of the arrays or of the constants below: numba's threaded compile of this function
    # with them left internalised stigma unchanged; tests/test_threads.py compares the two compiles.)
    contacted = scratch_f
    # The table lookup in a loop of its own: in the main loop it would keep that loop from running as
    # vector code (float32 throughout, selects rather than branches; measured ~2x faster split).
    for i in prange(stigma.size):
        contacted[i] = contact[np.int32(recovery_ties[i])]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    tiny = np.float32(1e-6)
    keep = np.float32(1.0 - a_conf - a_norm)
    w_conf = np.float32(a_conf)
    w_norm = np.float32(a_norm * (1.0 - campaign))
    w_int = np.float32(a_int)
    keep_int = np.float32(1.0 - a_int)
    # Internalisation factor by (opioid-use history, disorder): 1 for a use history (dual_factor with a
    # disorder too), mh_stigma_factor for a disorder alone (<= 1), 0 otherwise.
    f_mh = np.float32(mh_factor)
    f_dual = np.float32(dual_factor)
    for i in prange(stigma.size):
        x = stigma[i] * (keep - contacted[i]) + w_conf * perceived_stigma[i] + w_norm * stigma_norm[i]
        x = min(max(x, zero), one)
        stigma[i] = x if x >= tiny else zero  # no slow subnormal floats from geometric decay
        user = stage[i] != Stage.NONE
        mh = any_mh[i]
        factor = (f_dual if mh else one) if user else (f_mh if mh else zero)
        y = internal_stigma[i] * keep_int + w_int * min(perceived_stigma[i] * factor, one)
        internal_stigma[i] = y if y >= tiny else zero
