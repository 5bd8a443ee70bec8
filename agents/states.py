"""Codes stored in the population arrays (small integers, so the arrays stay compact)."""

from enum import IntEnum

import numpy as np

from oudsim.model.jit import njit


class Stage(IntEnum):
    """Opioid-use stage. Relapse returns REMISSION to OUD; DECEASED lasts until replacement.

    Compare arrays with ``Stage.X.value`` (likewise ``Care``): numpy takes an IntEnum member for a
    64-bit scalar and first casts the whole int8 array (~2.5 us a comparison at 5,000 people). Compiled
    processes name the codes as ``Stage.X`` and ``Care.X`` (numba reads them as constants), never as
    bare integers.
    """

    NONE = 0
    MISUSE = 1
    OUD = 2
    TREATMENT = 3
    REMISSION = 4
    DECEASED = 5


class Care(IntEnum):
    """The OUD service a person is in (mental-health care is tracked separately)."""

    NONE = 0
    MEDICATION = 1  # medication for OUD (MOUD)
    INTEGRATED = 2  # integrated dual-diagnosis care: treats OUD and the disorder together


class AceGroup(IntEnum):
    ZERO = 0
    ONE_TO_THREE = 1
    FOUR_PLUS = 2


class SES(IntEnum):
    LOW = 0
    MIDDLE = 1
    HIGH = 2


AGE_BANDS = ("18-25", "26-34", "35-49", "50-64", "65+")
AGE_BAND_EDGES = (26.0, 35.0, 50.0, 65.0)  # lower edge of bands 1..4, in years
DISORDERS = ("depression", "anxiety", "ptsd", "other")  # "other": the rest of any mental illness (E4)
TRAITS = ("impulsivity", "risk_impairment", "dysregulation")
NEVER = -(10**9)  # week stamp meaning "never happened"


# Which stages count as what: the one definition, for compiled processes (called per person) and for
# the per-stage tables derived from it (indexed with the stage array, cheaper than comparisons).
# The codes in the stage array's own type (int8): compared with an int64 constant, an int8 stage is
# widened first and a loop over everyone runs four lanes at a time instead of 32 (measured: the tie
# summaries' pass 7% slower).
_MISUSE, _OUD, _TREATMENT, _REMISSION = (
    np.int8(s.value) for s in (Stage.MISUSE, Stage.OUD, Stage.TREATMENT, Stage.REMISSION)
)


@njit(inline=True)
def is_using(stage):
    """Using opioids outside care: misuse or untreated OUD."""
    return (stage == _MISUSE) | (stage == _OUD)


@njit(inline=True)
def is_recovering(stage):
    """In treatment or remission."""
    return (stage == _TREATMENT) | (stage == _REMISSION)


@njit(inline=True)
def with_oud(stage):
    """OUD, in care or not."""
    return (stage == _OUD) | (stage == _TREATMENT)


def _table(test) -> np.ndarray:
    out = np.array([float(test.py_func(s.value)) for s in Stage], dtype=np.float32)
    out.flags.writeable = False
    return out


ACTIVE_USE = _table(is_using)  # misuse or untreated OUD
RECOVERING = _table(is_recovering)  # in treatment or remission
HAS_OUD = _table(with_oud)  # OUD in care or not
