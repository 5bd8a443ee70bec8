"""Killing a run at any moment loses nothing finished and leaves no process behind (issue 17).

Runs ``oudsim run`` as a user would, kills it (SIGKILL, or SIGTERM as a batch system's time limit
does) at random moments over many trials, checks that no process of the run is left, then finishes
it with ``--resume`` and checks that the results are byte for byte those of a run never interrupted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

OUDSIM = str(Path(sys.executable).with_name("oudsim"))
RUN = ["run", "baseline", "naloxone", "-p", "1500", "-n", "3", "-y", "1", "--set", "simulation.burn_in_years=1"]
RUN += ["-w", "2"]
PARTS = 6  # 2 scenarios x 3 replicates
OUTPUTS = ("timeseries.parquet", "summary.csv", "replicates.csv")
TRIALS = 8
EXPECTED_RC = {signal.SIGKILL: {-signal.SIGKILL, 0}, signal.SIGTERM: {130, -signal.SIGTERM, 0}}


def start(out: Path, *extra: str) -> subprocess.Popen:
    # A session of its own: the run, its forkserver, resource tracker and workers share its group id.
    run = subprocess.Popen(
        [OUDSIM, *RUN, "-o", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    _STARTED[run.pid] = time.monotonic()
    return run


def left_behind(group: int, within: float = 10.0) -> bool:
    """Whether any process of the run's group is still there after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    with_leftovers = subprocess.run(["ps", "-o", "pid,cmd", "-g", str(group)], capture_output=True, text=True)
    print(with_leftovers.stdout)
    os.killpg(group, signal.SIGKILL)  # do not leave them to the rest of the suite
    return True


def count_parts(out: Path) -> int:
    return len(list((out / "parts").glob("*.parquet"))) if (out / "parts").is_dir() else 0


_STARTED: dict[int, float] = {}


def started(run: subprocess.Popen) -> float:
    return _STARTED[run.pid]


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], float]:
    out = tmp_path_factory.mktemp("reference")
    t0 = time.monotonic()
    done = start(out)
    _, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    return outputs(out), time.monotonic() - t0


def test_killed_at_random_moments_and_resumed_the_results_are_those_of_an_uninterrupted_run(reference, tmp_path):
    expected, seconds = reference
    rng = random.Random(17)
    seen = []
    for trial in range(TRIALS):
        sig = (signal.SIGKILL, signal.SIGTERM)[trial % 2]
        out = tmp_path / f"trial{trial}"
        run = start(out)
        if trial < TRIALS // 2:  # any moment: start-up, the run, writing the outputs
            time.sleep(rng.uniform(0.2, seconds))
        else:  # while replicates finish: just after the k-th part reached the disk
            k = rng.randint(1, PARTS - 1)
            while count_parts(out) < k and run.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.3))
        delay = time.monotonic() - started(run)
        run.send_signal(sig)
        _, err = run.communicate(timeout=120)
        assert run.returncode in EXPECTED_RC[sig], (trial, sig, run.returncode, err)
        assert not left_behind(run.pid), f"trial {trial}: processes left after {sig.name} at {delay:.1f} s"
        parts = count_parts(out)
        if run.returncode == 130 and "Interrupted:" in err:  # caught while replicates ran
            assert "--resume" in err, err
            assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
        elif run.returncode == 130:  # caught before the replicates started, or while assembling them
            assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err, err
        resumed = start(out, "--resume")
        _, err = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, (trial, err)
        assert outputs(out) == expected, f"trial {trial}: {sig.name} at {delay:.1f} s, {parts} parts kept"
        assert not left_behind(resumed.pid, within=5)
        seen.append((sig.name, round(delay, 1), run.returncode, parts))
    print("signal, seconds after start, exit code, parts kept:", seen)
    assert {s for s, *_ in seen} == {"SIGKILL", "SIGTERM"}


def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path):
    out = tmp_path / "o"
    run = start(out)
    deadline = time.monotonic() + 300
    while not count_parts(out):
        assert time.monotonic() < deadline and run.poll() is None, "no replicate finished"
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "Interrupted:" in err and "replicates finished and are kept in" in err and "--resume" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["replicates"]["finished"] >= 1
    assert not left_behind(run.pid)
