"""The dashboard's entry point in the repository: ``solara run app.py``.

The pages live in the package (model/dashboard/app.py), so an installed oudsim serves the same app
with ``oudsim dashboard``; this file only hands Solara their routes.
"""

from oudsim.model.dashboard.app import routes

__all__ = ["routes"]
