"""Engine benchmarks (issue 2). Prints agent-steps per second, wall times and peak memory.

    .venv/bin/python bench/bench_engine.py            # all five
    .venv/bin/python bench/bench_engine.py --only rate # 100,000 agents, steps/s on one core
    .venv/bin/python bench/bench_engine.py --only million  # 1,000,000 x 520 steps, no burn-in; bytes per person
    .venv/bin/python bench/bench_engine.py --only county   # 1,000,000 x 10 years with burn-in, as users run it
    .venv/bin/python bench/bench_engine.py --only virus
    .venv/bin/python bench/bench_engine.py --against /tmp/before   # step time, this tree vs another
    .venv/bin/python bench/bench_engine.py --only processes # time per step by process, 5,000 and 100,000

Each measurement runs in its own process (so peak memory is its own), on one thread
(``OUDSIM_THREADS=1``) but for the two single large runs, ``million`` and ``county``, which use every
core as a user's run does (their results say how many threads). Rates are
medians over several timed chunks; the virus comparison alternates chunks of the two models in one
process, so machine load affects both alike. The per-process breakdown (``OUDModel.process_seconds``)
is a profile, not a target: ``processes`` has none, and ``rate`` reports it from a short loop of its own
after its main measurement, which it leaves unaffected.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_step_time(model, chunks: int, chunk_steps: int) -> float:
    import numpy as np

    times = []
    for _ in range(chunks):
        t = time.perf_counter()
        for _ in range(chunk_steps):
            model.step()
        times.append((time.perf_counter() - t) / chunk_steps)
    return float(np.median(times))


def process_breakdown(model, steps: int) -> tuple[float, dict[str, float]]:
    """Microseconds per step: in all, and by process (``OUDModel.process_seconds``) plus "metrics and
    collection", the rest of ``step()`` (metrics, the collector and the step's own bookkeeping), most
    costly first. Every step of the loop is timed whole and by process, so the parts add up to the whole."""
    model.process_seconds = {}
    total = 0.0
    try:
        for _ in range(steps):
            t = time.perf_counter()
            model.step()
            total += time.perf_counter() - t
        parts = dict(model.process_seconds)
    finally:
        model.process_seconds = None  # back to the untimed schedule
    parts["metrics and collection"] = total - sum(parts.values())
    ranked = sorted(parts.items(), key=lambda kv: -kv[1])
    return round(total / steps * 1e6, 1), {name: round(s / steps * 1e6, 1) for name, s in ranked}


def bench_rate(population: int = 100_000) -> dict:
    from oudsim.model import OUDModel

    t0 = time.perf_counter()
    m = OUDModel(population=population, rng=1, burn_in_years=0)
    setup = time.perf_counter() - t0
    m.run_for(5)  # warm-up
    per_step = median_step_time(m, chunks=9, chunk_steps=20)
    # Where a step's time goes: a short loop of its own after the measurement above (timing each
    # process costs a little), so the rate is measured as before.
    breakdown_total, breakdown = process_breakdown(m, steps=20)
    return {
        "population": population,
        "setup_s": round(setup, 2),
        "ms_per_step": round(per_step * 1e3, 2),
        "agent_steps_per_s": round(population / per_step),
        "peak_rss_mb": round(peak_rss_mb()),
        "breakdown_steps": 20,
        "breakdown_us_per_step": breakdown_total,
        "process_us_per_step": breakdown,
    }


def bench_processes(populations: tuple[int, ...] = (5_000, 100_000), steps: tuple[int, ...] = (200, 40)) -> dict:
    """Time per step by process at each population: built without burn-in, warmed up for five steps,
    then ``steps`` steps timed (OUDModel.process_seconds) with the whole of each step."""
    from oudsim.model import OUDModel

    runs = []
    for population, n in zip(populations, steps, strict=True):
        m = OUDModel(population=population, rng=1, burn_in_years=0)
        m.run_for(5)  # warm-up (compilation, first-step allocations)
        total, parts = process_breakdown(m, n)
        runs.append({"population": population, "steps": n, "us_per_step": total, "process_us_per_step": parts})
        del m
    return {"runs": runs, "peak_rss_mb": round(peak_rss_mb())}


def breakdown_table(result: dict) -> str:
    """The processes bench as a table: microseconds per step (and share of the step) by population,
    most costly first at the largest population."""
    runs = result["runs"]
    names = list(runs[-1]["process_us_per_step"])
    head = f"  {'us per step':<24}" + "".join(f"{r['population']:>12,} {'':>6}" for r in runs)
    lines = [head]
    for name in [*names, "total"]:
        row = f"  {name:<24}"
        for r in runs:
            us = r["us_per_step"] if name == "total" else r["process_us_per_step"].get(name, 0.0)
            row += f"{us:>12,.1f} {us / r['us_per_step']:>6.1%}"
        lines.append(row)
    return "\n".join(lines)


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


def bench_million(population: int = 1_000_000, steps: int = 520) -> dict:
    from oudsim.model import OUDModel

    OUDModel(population=200, rng=1, burn_in_years=0)  # the compiled processes loaded: not the model's memory
    before = rss_mb()
    t0 = time.perf_counter()
    m = OUDModel(population=population, rng=1, burn_in_years=0)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    m.run_for(steps)
    run = time.perf_counter() - t1
    return {
        "population": population,
        "steps": steps,
        "threads": m.threads,
        "setup_s": round(setup, 1),
        "steps_s": round(run, 1),
        "total_s": round(setup + run, 1),
        "agent_steps_per_s": round(population * steps / run),
        "peak_rss_mb": round(peak_rss_mb()),
        # What a person costs: the model's memory at its peak (over what the process held before it).
        "bytes_per_person": round((peak_rss_mb() - before) * 2**20 / population),
    }


def bench_county(population: int = 1_000_000, years: int = 10) -> dict:
    """A county as a user runs it (issue 19): the default model, its burn-in and Mesa agents included,
    for ``years`` after burn-in, all in."""
    from oudsim.model import OUDModel

    OUDModel(population=200, rng=1, burn_in_years=0)
    t0 = time.perf_counter()
    m = OUDModel(population=population, rng=1)
    built = time.perf_counter() - t0
    m.run_for(years * 52)
    return {
        "population": population,
        "years": years,
        "threads": m.threads,
        "setup_and_burn_in_s": round(built, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def bench_virus(nodes: int = 5_000, degree: int = 10) -> dict:
    import random

    import networkx as nx
    import numpy as np
    from mesa.examples.basic.virus_on_network.model import State, VirusOnNetwork

    from oudsim.model import OUDModel

    # Mesa's Network space computes a spring layout when built (minutes at 5,000 nodes). The layout
    # plays no part in stepping, so the harness swaps in a random one to keep set-up short. The
    # example draws its graph from Python's global generator: seeded, so every run times the same
    # outbreak (its step time follows the number infected: about 3x more at the peak than after).
    real = nx.spring_layout
    nx.spring_layout = lambda g, *a, **k: nx.random_layout(g, seed=1)
    random.seed(1)
    try:
        virus = VirusOnNetwork(num_nodes=nodes, avg_node_degree=degree, rng=1)
    finally:
        nx.spring_layout = real
    ours = OUDModel(population=nodes, rng=1, burn_in_years=0, mean_degree=degree)
    virus.step()
    ours.step()
    # Steps 2-71 of both, in alternating chunks (load on the machine hits both alike), then the
    # median chunk of each.
    v_times, o_times = [], []
    for _ in range(14):
        v_times.append(median_step_time(virus, 1, 5))
        o_times.append(median_step_time(ours, 1, 50))
    v, o = float(np.median(v_times)), float(np.median(o_times))
    return {
        "nodes": nodes,
        "mean_degree": degree,
        "virus_infected_at_end": sum(a.state is State.INFECTED for a in virus.agents),
        "virus_ms_per_step": round(v * 1e3, 3),
        "oudsim_ms_per_step": round(o * 1e3, 3),
        "virus_agent_steps_per_s": round(nodes / v),
        "oudsim_agent_steps_per_s": round(nodes / o),
        "ratio": round(v / o, 1),
    }


BENCHES = {
    "rate": bench_rate,
    "million": bench_million,
    "virus": bench_virus,
    "processes": bench_processes,
    "county": bench_county,
}
TARGETS = {  # a bench without a target (processes: a profile) reports its figures only
    "rate": ("agent_steps_per_s", ">=", 5_000_000),
    "million": ("total_s", "<=", 180),
    "county": ("total_s", "<=", 60),  # issue 19's target
    "virus": ("ratio", ">=", 20),
}


_STEP_TIMER = """
import json, sys, time
import numpy as np
tree, population, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if tree:  # another checkout of the repository: imported as the package oudsim, ahead of this one
    import os, tempfile
    link = tempfile.mkdtemp()
    os.symlink(os.path.abspath(tree), os.path.join(link, "oudsim"))
    sys.path.insert(0, link)
from oudsim.model import OUDModel  # (both trees: the package root is the checkout)
m = OUDModel(population=population, rng=1, burn_in_years=0)
m.run_for(5)
times = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(steps):
        m.step()
    times.append((time.perf_counter() - t) / steps)
print(json.dumps(float(np.median(times))))
"""


def against(tree: str, rounds: int = 8) -> None:
    """Step time of this tree and of another checkout (``git worktree add DIR REV``) at 5,000 and
    100,000 people, in fresh processes alternating (in both orders), so machine load hits both alike;
    the median of each and their ratio (>= 1: this tree is no slower)."""
    import statistics

    for population, steps in ((5_000, 200), (100_000, 20)):
        times: dict[str, list[float]] = {"this": [], "other": []}
        for r in range(rounds):
            order = ("this", "other") if r % 2 == 0 else ("other", "this")
            for which in order:
                cmd = [sys.executable, "-c", _STEP_TIMER, tree if which == "other" else "", str(population), str(steps)]
                cwd = tree if which == "other" else HERE
                env = {**os.environ, "OUDSIM_THREADS": "1"}  # one core (a tree from before threads: serial anyway)
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=cwd, env=env)
                times[which].append(json.loads(out.stdout.strip().splitlines()[-1]))
        this, other = statistics.median(times["this"]), statistics.median(times["other"])
        print(
            f"  {population:,} people: this {this * 1e3:.3f} ms/step, other {other * 1e3:.3f} ms/step, "
            f"ratio other/this {other / this:.3f} (runs this {[round(t * 1e3, 3) for t in times['this']]}, "
            f"other {[round(t * 1e3, 3) for t in times['other']]})",
            flush=True,
        )


ALL_CORES = ("million", "county")  # one large run, on every core; the others on one (OUDSIM_THREADS=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(BENCHES), action="append")
    ap.add_argument("--against", metavar="DIR", help="compare step times with another checkout (before/after)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(BENCHES[args.child]()))
        return
    if args.against:
        print(f"step time against {args.against} ...", flush=True)
        against(args.against)
        return
    for name in args.only or list(BENCHES):
        print(f"running {name} ...", flush=True)
        env = {**os.environ, "OUDSIM_THREADS": "" if name in ALL_CORES else os.environ.get("OUDSIM_THREADS", "1")}
        cmd = [sys.executable, __file__, "--child", name]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {json.dumps(result)}")
        if name == "processes":
            print(breakdown_table(result))
        if name not in TARGETS:
            print("  no target (a profile)", flush=True)
            continue
        key, op, target = TARGETS[name]
        ok = result[key] >= target if op == ">=" else result[key] <= target
        extra = ""
        if name == "million":
            ok = ok and result["peak_rss_mb"] < 4096
            extra = " and peak memory < 4096 MB"
        print(f"  target {key} {op} {target:,}{extra}: {'met' if ok else 'NOT met'}", flush=True)


if __name__ == "__main__":
    main()
