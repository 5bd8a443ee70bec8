"""One module per mechanism, run in this order every step (docs/ODD.md 1.3)."""

from oudsim.model.processes import (
    demography,
    life_events,
    mental_health,
    naloxone,
    overdose,
    social,
    stigma,
    treatment,
    use,
)

SCHEDULE = (
    life_events,
    mental_health,
    social,
    stigma,
    use,
    treatment,
    naloxone,
    overdose,
    demography,
)

__all__ = ["SCHEDULE"]
