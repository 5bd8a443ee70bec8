"""Codes stored in the population arrays (small integers, so the arrays stay compact)."""

from enum import IntEnum


class Stage(IntEnum):
    """Opioid-use stage. Relapse returns REMISSION to OUD; DECEASED lasts until replacement.

    Compare arrays with ``Stage.X.value`` (likewise ``Care``): numpy takes an IntEnum member for a
    64-bit scalar and first casts the whole int8 array (~2.5 us a comparison at 5,000 people).
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
DISORDERS = ("depression", "anxiety", "ptsd")
TRAITS = ("impulsivity", "risk_impairment", "dysregulation")
NEVER = -(10**9)  # week stamp meaning "never happened"

# Per-stage lookup tables (index with the stage array): cheaper than comparisons on every step.
import numpy as _np  # noqa: E402

ACTIVE_USE = _np.array([0, 1, 1, 0, 0, 0], dtype=_np.float32)  # misuse or untreated OUD
RECOVERING = _np.array([0, 0, 0, 1, 1, 0], dtype=_np.float32)  # in treatment or remission
HAS_OUD = _np.array([0, 0, 1, 1, 0, 0], dtype=_np.float32)  # OUD in care or not
