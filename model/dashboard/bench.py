"""Timing of one step plus redraw, as the Explore page does it: ``python -m oudsim.model.dashboard.bench``."""

from __future__ import annotations

import json
import statistics
import sys
import time

from oudsim.model.dashboard.drawing import MAX_DRAWN, ChartsView, NetworkView


def benchmark(population: int = 1_000, steps: int = 30, seed: int = 5) -> dict[str, float]:
    """Milliseconds for one step plus both redraws (network and charts), as the Explore page does.

    Returns the median wall and CPU time per step, and the one-off costs (layout, first draw).
    ``python -m oudsim.model.dashboard.bench [population ...]`` prints them (docs/dashboard.md).
    """
    from oudsim.model.oud_model import OUDModel

    model = OUDModel(population=population, rng=seed, burn_in_years=2)
    t0 = time.perf_counter()
    network = NetworkView(model) if population <= MAX_DRAWN else None
    layout_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    charts = ChartsView(model)
    charts.render(model)
    if network is not None:
        network.render(model)
    first_ms = (time.perf_counter() - t0) * 1000
    wall, cpu = [], []
    for _ in range(steps):
        w0, c0 = time.perf_counter(), time.thread_time()
        model.step()
        if network is not None:
            network.render(model, selected_row=0)
        charts.render(model)
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return {
        "population": population,
        "step_redraw_wall_ms_median": round(statistics.median(wall), 1),
        "step_redraw_wall_ms_max": round(max(wall), 1),
        "step_redraw_cpu_ms_median": round(statistics.median(cpu), 1),
        "layout_ms": round(layout_ms, 1),
        "first_draw_ms": round(first_ms, 1),
    }


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [1_000]:
        print(json.dumps(benchmark(n)))
