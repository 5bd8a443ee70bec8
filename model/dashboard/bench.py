"""Timing of the Explore page's server work: ``python -m oudsim.model.dashboard.bench [population ...]``
(or ``python -m model.dashboard.bench`` in a checkout).

One step of both runs plus every redraw (six paired charts and the network sample), as Step and
Play do it; a simulated year redrawn every week (Play's slowest case); and the one-off costs of a
new start. The browser tests measure the same click to new image in Chromium (docs/dashboard.md).
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def benchmark(population: int = 20_000, steps: int = 30, seed: int = 5) -> dict[str, float]:
    """Medians in milliseconds of a paired step and its redraws; seconds for a year redrawn weekly."""
    from oudsim.model.dashboard.explore import Session
    from oudsim.model.dashboard.whatif import Setup

    t0 = time.perf_counter()
    session = Session(Setup(population=population, seed=seed))
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    session.prepare()
    first_ms = (time.perf_counter() - t0) * 1000
    run = session.run
    run.apply({"isolation": 3.0})
    step, charts, network, wall, cpu = [], [], [], [], []
    for _ in range(steps):
        w0, c0 = time.perf_counter(), time.thread_time()
        run.step()
        t1 = time.perf_counter()
        session.charts.render(run)
        t2 = time.perf_counter()
        session.network.render(run.arm, 0)
        t3 = time.perf_counter()
        step.append((t1 - w0) * 1000)
        charts.append((t2 - t1) * 1000)
        network.append((t3 - t2) * 1000)
        wall.append((t3 - w0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    t0 = time.perf_counter()
    for _ in range(52):
        run.step()
        session.charts.render(run)
        session.network.render(run.arm, 0)
    year_s = time.perf_counter() - t0
    return {
        "population": population,
        "paired_step_ms": round(statistics.median(step), 1),
        "charts_ms": round(statistics.median(charts), 1),
        "network_ms": round(statistics.median(network), 1),
        "step_redraw_wall_ms_median": round(statistics.median(wall), 1),
        "step_redraw_cpu_ms_median": round(statistics.median(cpu), 1),
        "year_redrawn_weekly_s": round(year_s, 2),
        "new_start_s": round(build_s, 2),
        "first_draw_ms": round(first_ms, 1),
    }


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [20_000]:
        print(json.dumps(benchmark(n)))
