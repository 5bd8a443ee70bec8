"""Burn-in once vs. once per arm (issue 19): `oudsim compare` of every shipped scenario, run both ways.

    .venv/bin/python bench/bench_burn_in.py                    # 50,000 people x 10 replicates, 2 workers
    .venv/bin/python bench/bench_burn_in.py -p 5000 -n 2 --rounds 1   # a quick look

Each round runs the comparison with a shared burn-in and with a burn-in per arm, in turn, so machine
load affects both alike; it prints the wall times, their ratio, and whether the output files agree
byte for byte (the time series, summary, per-replicate table and comparison).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUDSIM = str(Path(sys.executable).with_name("oudsim"))
FILES = ("timeseries.parquet", "summary.csv", "replicates.csv", "comparison.csv", "cost_effectiveness.csv")


def shipped() -> list[str]:
    from oudsim.scenarios import list_scenarios

    names = [s.name for s in list_scenarios()]
    return ["baseline", *[n for n in names if n != "baseline"]]


def compare(out: Path, how: str, args: argparse.Namespace) -> float:
    cmd = [OUDSIM, "compare", *shipped(), "-p", str(args.population), "-n", str(args.replicates)]
    cmd += ["-y", str(args.years), "-w", str(args.workers), "-o", str(out), "--overwrite", how]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--population", type=int, default=50_000)
    ap.add_argument("-n", "--replicates", type=int, default=10)
    ap.add_argument("-y", "--years", type=float, default=10.0)
    ap.add_argument("-w", "--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="oudsim-burn-in-"))
    times: dict[str, list[float]] = {"--share-burn-in": [], "--burn-in-per-arm": []}
    try:
        for _ in range(args.rounds):
            for how in times:
                times[how].append(compare(tmp / how.strip("-"), how, args))
                print(f"{how}: {times[how][-1]:.1f} s", flush=True)
        shared, apart = (statistics.median(times[h]) for h in times)
        same = all(
            (tmp / "share-burn-in" / f).read_bytes() == (tmp / "burn-in-per-arm" / f).read_bytes() for f in FILES
        )
        print(
            f"{len(shipped())} scenarios x {args.replicates} replicates, {args.population:,} people, "
            f"{args.years:g} years"
        )
        print(f"burn-in shared {shared:.1f} s, per arm {apart:.1f} s: {apart / shared:.2f}x faster")
        print(f"output files identical byte for byte: {same} ({', '.join(FILES)})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
