"""Threads (issue 19): the passes over people and ties split over threads give the same run on any
number of them; how many a model, the command line and worker processes use."""

from __future__ import annotations

import numpy as np
import pytest

from oudsim.model import OUDModel, experiments
from oudsim.model.jit import Threaded, threads_allowed
from oudsim.model.metrics import METRIC_NAMES
from oudsim.model.oud_model import THREADS_FROM, check_threads, default_threads
from oudsim.model.processes import mental_health, social, stigma

needs_two = pytest.mark.skipif(threads_allowed() < 2, reason="numba may start one thread here")

STATE = ("stage", "stigma", "internal_stigma", "perceived_stigma", "loneliness", "degree", "using_ties", "distress")


@needs_two
def test_one_thread_and_two_give_the_same_run_bit_for_bit():
    # Several blocks of people (social._BLOCK) and a year of recorded steps after burn-in, with
    # interventions that act in it.
    from oudsim.scenarios import load_scenario

    arm = list(load_scenario("combined").interventions)
    runs = {}
    for threads in (1, 2):
        m = OUDModel(population=20_000, rng=3, burn_in_years=1, agents=False, threads=threads, interventions=arm)
        m.run_for(80)
        runs[threads] = m
    one, two = runs[1], runs[2]
    assert one.threads == 1 and two.threads == 2
    assert one.metrics_frame().equals(two.metrics_frame())
    for name in STATE:
        assert np.array_equal(getattr(one.population, name), getattr(two.population, name)), name
    assert np.array_equal(one.network.active, two.network.active)
    # and the run did move: the arms' interventions and people's lives changed the metrics
    frame = one.metrics_frame()
    assert frame["oud_prevalence"].nunique() > 10 and frame[list(METRIC_NAMES)].notna().all().all()


def test_threaded_kernels_compile_apart_from_their_serial_twins():
    # numba's disk cache keys a compile by name and signature only: under one name the threaded
    # compile would load the serial one from the cache (measured: no speed-up at all).
    for kernel in (social._refresh, stigma._attitudes, mental_health._onset_and_remission):
        assert isinstance(kernel, Threaded)
        assert kernel.threaded.targetoptions.get("parallel") is True
        assert not kernel.serial.targetoptions.get("parallel")
        assert kernel.threaded.py_func.__qualname__ != kernel.serial.py_func.__qualname__


def test_default_threads_follow_the_population_and_the_environment(monkeypatch):
    monkeypatch.delenv("OUDSIM_THREADS", raising=False)
    assert default_threads(THREADS_FROM - 1) == 1
    assert default_threads(THREADS_FROM) == min(experiments_cores(), threads_allowed())
    monkeypatch.setenv("OUDSIM_THREADS", "1")
    assert default_threads(10 * THREADS_FROM) == 1
    assert OUDModel(population=300, rng=1, burn_in_years=0).threads == 1
    monkeypatch.setenv("OUDSIM_THREADS", "lots")
    with pytest.raises(ValueError, match="threads = 'lots': a whole number from 1"):
        default_threads(300)


def experiments_cores() -> int:
    from oudsim.model.oud_model import cores

    return cores()


@pytest.mark.parametrize("bad", [0, -1, 10_000, 1.5, "2", True])
def test_a_bad_number_of_threads_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=r"threads = .*: a whole number from 1 to \d+"):
        OUDModel(population=300, rng=1, burn_in_years=0, threads=bad)
    assert check_threads(1) == 1


def test_worker_processes_share_the_cores(monkeypatch):
    monkeypatch.delenv("OUDSIM_THREADS", raising=False)
    cores = experiments_cores()
    assert experiments.worker_threads(1) == cores
    assert experiments.worker_threads(cores) == 1
    assert experiments.worker_threads(4 * cores) == 1
    monkeypatch.setenv("OUDSIM_THREADS", "1")
    assert experiments.worker_threads(1) == 1


def test_the_command_line_takes_threads_and_refuses_a_bad_number(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from oudsim.model.cli import app

    monkeypatch.delenv("OUDSIM_THREADS", raising=False)
    runner = CliRunner()
    bad = runner.invoke(app, ["--threads", "0", "run", "baseline", "-p", "300", "-y", "0.1"])
    assert bad.exit_code != 0 and "--threads" in bad.output
    out = tmp_path / "one"
    ok = runner.invoke(app, ["--threads", "1", "run", "baseline", "-p", "400", "-n", "1", "-y", "0.2", "-o", str(out)])
    assert ok.exit_code == 0, ok.output
    assert (out / "timeseries.parquet").is_file()
    monkeypatch.delenv("OUDSIM_THREADS", raising=False)  # (the command set it for this process)


def test_people_are_made_when_first_asked_for_with_the_ids_they_had():
    m = OUDModel(population=2_000, rng=2, burn_in_years=0.5)
    assert m._people is None  # not made yet
    m.run_for(60)  # people die and newcomers take their rows, with the next ids
    ids = m.uid.copy()
    assert ids.min() == 1 and ids.max() >= 2_000 and np.unique(ids).size == ids.size
    counter = m.agent_id_counter
    assert len(m.agents) == 2_000
    assert [p.unique_id for p in m.people] == ids.tolist()
    assert np.array_equal(m.uid, ids) and m.agent_id_counter == counter
    m.run_for(10)
    assert m.agent_id_counter >= counter and np.array_equal(m.uid, [p.unique_id for p in m.people])


def _threads_in_dask_worker() -> str:
    import os

    experiments._share_cores_in_dask_worker()
    return os.environ.get("OUDSIM_THREADS", "")


def test_models_in_a_dask_worker_share_its_cores_among_its_threads(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.delenv("OUDSIM_THREADS", raising=False)  # (workers start with this environment)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        got = client.submit(_threads_in_dask_worker, pure=False).result()
    assert got == str(max(1, experiments_cores() // 2))
    assert _threads_in_dask_worker() == ""  # not in a worker: nothing set
