"""The oudsim dashboard: two pages, served by ``oudsim dashboard`` (installed) or ``solara run app.py``.

- **Explore** (students, model/dashboard/explore.py): a paired what-if, the baseline and "your
  settings" run in lockstep from one shared history, with their difference and a repeat over seeds.
- **Compare** (analysts, model/dashboard/compare.py): replicates of chosen scenarios in the
  background; each scenario's paired difference from a comparator with its 95% interval.

It renders with no network at all: charts and the network are PNGs drawn by matplotlib on the
server (model/dashboard/drawing.py), and the page uses only Solara's own front-end, served from
the ``solara-assets`` package. Altair charts are avoided on purpose: their vega bundles are fetched
from a CDN at run time, so they stay blank behind a firewall (so does solara.Markdown's KaTeX).
"""

from __future__ import annotations

import solara

from oudsim.model.dashboard.compare import Compare
from oudsim.model.dashboard.explore import Explore, spare_pool
from oudsim.model.dashboard.serving import tune_solara_server
from oudsim.model.dashboard.ui import Layout

try:  # Solara's server reports usage to a web service; behind a firewall that call only hangs.
    import solara.server.settings as _server_settings

    _server_settings.telemetry.mixpanel_enable = False
except ImportError:  # pragma: no cover - solara without its server (component tests)
    pass

# Built while the server starts (it loads this module before it answers): the first visitor's page
# then needs no model build, layout or first drawing.
spare_pool.fill_now()
SERVER_TUNED = tune_solara_server()  # no gzip over loopback (model/dashboard/serving.py)

routes = [
    # The root route carries the layout: Solara uses it for every page of the app.
    solara.Route(path="/", component=Explore, label="Explore", layout=Layout),
    solara.Route(path="compare", component=Compare, label="Compare"),
]
