"""`oudsim psa`: two scenarios x 200 parameter draws on worker processes (killed with SIGKILL part way
and resumed) and on a local Dask cluster give identical per-draw outcomes; acceptability curves and
EVPI are written and consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oudsim.model.calibration import FREE_PARAMETERS
from oudsim.model.parameters import Parameters
from oudsim.model.posterior import Posterior

OUDSIM = str(Path(sys.executable).with_name("oudsim"))
DRAWS = 200
FAST = ["-p", "200", "-y", "0.5", "--set", "simulation.burn_in_years=0", "--seed", "3"]


def draws_file(path: Path) -> Path:
    """A posterior of DRAWS sets spread around the defaults, inside the priors."""
    rng = np.random.default_rng(1)
    defaults = Parameters()
    rows = []
    for i in range(DRAWS):
        row = {"step": i}
        for p in FREE_PARAMETERS:
            row[p.name] = float(np.clip(p.value_in(defaults) * rng.uniform(0.7, 1.3), p.lo, p.hi))
        rows.append({**row, "accepted": True, "loss": 0.0})
    return Posterior(pd.DataFrame(rows), {"method": "test"}).save(path)


def psa_args(posterior: Path, out: Path) -> list[str]:
    return [
        "psa",
        "baseline",
        "expand_moud",
        "--posterior",
        str(posterior),
        "--draws",
        str(DRAWS),
        *FAST,
        "-o",
        str(out),
    ]


@pytest.mark.slow
def test_psa_on_workers_killed_and_resumed_equals_psa_on_dask(tmp_path):
    distributed = pytest.importorskip("distributed")
    posterior = draws_file(tmp_path / "posterior.parquet")
    on_workers = tmp_path / "workers"

    # Start on two worker processes, kill the whole process group once some draws are done.
    proc = subprocess.Popen(
        [OUDSIM, *psa_args(posterior, on_workers), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    parts = on_workers / "parts"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(parts.glob("*.parquet"))) < 60:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(parts.glob("*.parquet")))
    assert 60 <= done < 2 * DRAWS, f"{done} parts when killed"
    assert not (on_workers / "psa.parquet").exists()

    resumed = subprocess.run(
        [OUDSIM, *psa_args(posterior, on_workers), "--workers", "2", "--resume"], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed: {done} finished replicate(s)" in resumed.stderr

    on_dask = tmp_path / "dask"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        run = subprocess.run(
            [OUDSIM, *psa_args(posterior, on_dask), "--scheduler", cluster.scheduler_address],
            capture_output=True,
            text=True,
        )
    assert run.returncode == 0, run.stderr

    a = pd.read_parquet(on_workers / "psa.parquet")
    b = pd.read_parquet(on_dask / "psa.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert len(a) == 2 * DRAWS and set(a["draw"]) == set(range(DRAWS))
    # Each draw's parameters are in the table, and they differ between draws.
    assert a["treatment.seek_rate"].nunique() == DRAWS

    curves = pd.read_csv(on_workers / "ceac.csv")
    sums = curves.groupby("wtp")["probability"].sum()
    assert np.allclose(sums, 1.0)
    evpi = pd.read_csv(on_workers / "evpi.csv")
    assert (evpi["evpi"] >= 0).all()
    assert (on_workers / "ceac.png").stat().st_size > 10_000


def test_psa_refuses_a_posterior_from_another_model_before_running(tmp_path):
    from typer.testing import CliRunner

    from oudsim.model.cli import app

    posterior = draws_file(tmp_path / "posterior.parquet")
    import json

    import pyarrow.parquet as pq

    table = pq.read_table(posterior)
    meta = json.loads(table.schema.metadata[b"oudsim_posterior"])
    meta["schema"] = "somethingelse"
    pq.write_table(table.replace_schema_metadata({b"oudsim_posterior": json.dumps(meta)}), posterior)
    result = CliRunner().invoke(app, psa_args(posterior, tmp_path / "out"))
    assert result.exit_code == 2
    assert "posterior.parquet" in result.output and "parameter schema somethingelse" in result.output
    assert not (tmp_path / "out" / "parts").exists() or not list((tmp_path / "out" / "parts").iterdir())


@pytest.mark.slow
def test_calibrate_and_sensitivity_on_dask_equal_local_runs():
    distributed = pytest.importorskip("distributed")
    from oudsim.model import calibration as cal
    from oudsim.model.sensitivity import run_sensitivity

    tiny = dict(population=400, replicates=2, years=0.5, burn_in_years=0.5, seed=3, trials=0)
    local = cal.calibrate(**tiny, workers=1)
    design = dict(trajectories=2, population=400, years=0.5, burn_in_years=0.5, seed=3)
    params = ["use.initiation_rate", "treatment.seek_rate"]
    local_s = run_sensitivity(params, **design, workers=1)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = cal.calibrate(**tiny, scheduler=cluster.scheduler_address)
        remote_s = run_sensitivity(params, **design, scheduler=cluster.scheduler_address)
    timing = [c for c in local.replicates.columns if c == "seconds"]
    pd.testing.assert_frame_equal(
        local.replicates.drop(columns=timing), remote.replicates.drop(columns=timing), check_exact=True
    )
    pd.testing.assert_frame_equal(local_s.samples, remote_s.samples, check_exact=True)
