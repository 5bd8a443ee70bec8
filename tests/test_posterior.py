"""Parameter uncertainty (model.posterior): the ABC-MCMC sampler keeps to the accepted region and
covers it, a posterior file round-trips and a foreign or broken one is refused naming the file, and
runs take replicate i's parameters from draw i."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from oudsim.model import posterior as post
from oudsim.model.calibration import FREE_PARAMETERS, FreeParameter
from oudsim.model.experiments import run_experiment
from oudsim.model.parameters import ParameterError, Parameters, get_dotted

TOY = [FreeParameter("use.initiation_rate", 0.0006, 0.003, log=True), FreeParameter("treatment.seek_rate", 1.0, 4.0)]


def inside_box(values: dict[str, float]) -> tuple[bool, float]:
    """Accepted: both parameters in the middle of their priors (0.25-0.75 of the unit interval)."""
    u = [post.to_unit(p, values[p.name]) for p in TOY]
    return all(0.25 <= x <= 0.75 for x in u), float(sum((x - 0.5) ** 2 for x in u))


def start() -> dict[str, float]:
    return {p.name: post.from_unit(p, 0.5) for p in TOY}


def test_the_chain_stays_in_the_accepted_region_and_covers_it():
    chain = post.abc_mcmc(TOY, start(), inside_box, steps=3_000, seed=4, step=0.15)
    u = np.array(
        [[post.to_unit(p, v) for p, v in zip(TOY, row, strict=True)] for row in chain[[p.name for p in TOY]].to_numpy()]
    )
    assert ((u >= 0.25 - 1e-12) & (u <= 0.75 + 1e-12)).all()  # never a rejected state
    # The ABC posterior is uniform on the box: mean 0.5, SD 0.5/sqrt(12) = 0.144 in each dimension.
    assert np.allclose(u.mean(axis=0), 0.5, atol=0.03)
    assert np.allclose(u.std(axis=0), 0.5 / np.sqrt(12), atol=0.02)
    assert 0.2 < chain["accepted"].iloc[1:].mean() < 0.9


def test_the_chain_resumes_to_the_same_states():
    whole = post.abc_mcmc(TOY, start(), inside_box, steps=60, seed=9)
    part = post.abc_mcmc(TOY, start(), inside_box, steps=25, seed=9)
    resumed = post.abc_mcmc(TOY, start(), inside_box, steps=60, seed=9, chain=part)
    pd.testing.assert_frame_equal(whole, resumed)


def test_a_start_outside_the_bands_is_refused():
    with pytest.raises(ParameterError, match="starting values are not accepted"):
        post.abc_mcmc(TOY, {p.name: p.lo for p in TOY}, inside_box, steps=5, seed=1)


def test_reflection_keeps_proposals_in_the_unit_cube():
    u = post.reflect(np.array([-0.2, 0.3, 1.4, 2.6, -1.7]))
    assert np.allclose(u, [0.2, 0.3, 0.6, 0.6, 0.3])


def small_posterior(n: int = 5) -> post.Posterior:
    defaults = Parameters()
    rows = []
    for i in range(n):
        row = {"step": i}
        for p in FREE_PARAMETERS:
            row[p.name] = float(np.clip(p.value_in(defaults) * (1 + 0.05 * (i - n // 2)), p.lo, p.hi))
        rows.append({**row, "accepted": True, "loss": 0.0})
    return post.Posterior(pd.DataFrame(rows), {"method": "test"})


def test_a_posterior_file_round_trips(tmp_path):
    path = small_posterior().save(tmp_path / "posterior.parquet")
    back = post.load(path)
    assert len(back) == 5 and back.names == [p.name for p in FREE_PARAMETERS]
    assert back.meta["schema"] == post.schema_fingerprint()
    assert back.values(7) == back.values(2)  # draws cycle
    o = back.overrides(1)
    assert o["treatment.seek_rate"] == pytest.approx(back.values(1)["treatment.seek_rate"], rel=1e-3)


def _rewrite_meta(path, **changes):
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[post.METADATA_KEY])
    meta.update(changes)
    pq.write_table(table.replace_schema_metadata({post.METADATA_KEY: json.dumps(meta)}), path)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("version", "made by oudsim 0.0.1"),
        ("schema", "with parameter schema 0123"),
        ("garbage", "not a posterior file"),
        ("plain parquet", "no oudsim_posterior metadata"),
        ("outside prior", "outside its prior"),
        ("unknown column", "is not a free parameter"),
        ("missing", "no such posterior file"),
    ],
)
def test_a_foreign_or_broken_posterior_is_refused_naming_the_file(tmp_path, breakage, message):
    path = small_posterior().save(tmp_path / "p.parquet")
    if breakage == "version":
        _rewrite_meta(path, oudsim_version="0.0.1")
    elif breakage == "schema":
        _rewrite_meta(path, schema="0123")
    elif breakage == "garbage":
        path.write_bytes(b"PAR1 not really")
    elif breakage == "plain parquet":
        pd.DataFrame({"x": [1.0]}).to_parquet(path)
    elif breakage == "outside prior":
        p = small_posterior()
        p.draws.loc[0, "treatment.seek_rate"] = 99.0
        p.save(path)
    elif breakage == "unknown column":
        p = small_posterior()
        p.draws["use.relapse_rate"] = 0.02
        p.save(path)
    elif breakage == "missing":
        path.unlink()
    with pytest.raises(post.PosteriorError, match=message) as info:
        post.load(path)
    assert str(path) in str(info.value)


def test_replicate_i_runs_on_draw_i(tmp_path):
    drawn = small_posterior(3)
    result = run_experiment(
        ["baseline"], replicates=4, years=1.0, population=1_000, overrides={"simulation.burn_in_years": 1.0},
        keep_frames=True, posterior=drawn, out_dir=tmp_path / "run",
    )  # fmt: skip
    assert result.ok
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["posterior"]["draws"] == 3 and manifest["posterior"]["used"] == 3
    plain = run_experiment(
        ["baseline"], replicates=2, years=1.0, population=1_000, overrides={"simulation.burn_in_years": 1.0},
        keep_frames=True,
    )  # fmt: skip
    # Draws differ in their parameters, so replicate 0 differs from the run without a posterior.
    columns = ["misuse_prevalence", "treatment_coverage", "mh_prevalence", "lonely_share"]
    assert not result.frames[0][columns].equals(plain.frames[0][columns])
    params = drawn.overrides(1)
    scenario = load_baseline_with(params)
    assert get_dotted(scenario.params, "treatment.seek_rate") == pytest.approx(
        drawn.values(1)["treatment.seek_rate"], rel=1e-3
    )


def load_baseline_with(overrides):
    from oudsim.scenarios import load_scenario

    return load_scenario("baseline").with_overrides(overrides)


def test_a_calibration_study_in_storage_is_continued_by_the_next_run(tmp_path):
    from oudsim.model import calibration as cal

    free = [cal.free_parameter("treatment.seek_rate"), cal.free_parameter("use.initiation_rate")]
    tiny = dict(population=300, replicates=1, years=0.3, burn_in_years=0.3, seed=2, workers=1)
    storage = str(tmp_path / "study.journal")
    first = cal.calibrate(free=free, trials=3, storage=storage, **tiny)
    second = cal.calibrate(free=free, trials=5, storage=storage, **tiny)
    assert sorted(second.trials["trial"]) == [0, 1, 2, 3, 4]  # three kept, two added
    kept = second.trials.set_index("trial").loc[[0, 1, 2], "loss"]
    assert list(kept) == list(first.trials.set_index("trial").loc[[0, 1, 2], "loss"])
    other = cal.calibrate(free=free, trials=2, storage=storage, **{**tiny, "seed": 3})  # another fit: its own study
    assert sorted(other.trials["trial"]) == [0, 1]
