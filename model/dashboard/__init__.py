"""Drawing code behind the Solara dashboard (app.py): network layout and fast matplotlib figures.

Kept apart from app.py so it imports without Solara (benchmarks and tests use it directly).
"""

from oudsim.model.dashboard.drawing import (
    MAX_DRAWN,
    NETWORK_PX,
    OKABE_ITO,
    STAGE_COLOURS,
    STAGE_LABELS,
    ChartsView,
    NetworkView,
    force_layout,
)

__all__ = [
    "MAX_DRAWN",
    "NETWORK_PX",
    "OKABE_ITO",
    "STAGE_COLOURS",
    "STAGE_LABELS",
    "ChartsView",
    "NetworkView",
    "force_layout",
]
