"""Calibration machinery: targets and free parameters are valid data, the loss is zero inside
the bands and grows outside, a fitted file reads back into Parameters, and a tiny study runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from oudsim.model import calibration as cal
from oudsim.model.metrics import METRIC_NAMES
from oudsim.model.parameters import ParameterError, Parameters, field_info, get_dotted


def _summary(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"metric": list(values), "mean": list(values.values())})


def centres() -> dict[str, float]:
    return {t.metric: (t.target if t.target is not None else math.sqrt(t.lo * t.hi)) for t in cal.TARGETS}


def test_targets_are_valid_and_name_real_outputs():
    for t in cal.TARGETS:
        assert t.metric in METRIC_NAMES or t.metric == cal.ODDS_RATIO
        assert t.lo < t.hi
        assert t.target is None or t.lo <= t.target <= t.hi
        assert t.source.startswith("E")
    # the seven rows of evidence.md's "Calibration targets the baseline must hit", and E24
    assert len(cal.TARGETS) == 8


def test_free_parameters_lie_inside_schema_ranges_and_contain_the_defaults():
    base = Parameters()
    for p in cal.FREE_PARAMETERS:
        p.check()  # raises if a search range leaves the schema range
        v = p.value_in(base)
        assert p.lo <= v <= p.hi, f"default of {p.name} ({v}) is outside its search range"


def test_loss_is_zero_inside_bands_and_grows_outside():
    inside = centres()
    assert cal.loss(_summary(inside), pull=0.0) == 0.0
    # anywhere inside every band: still zero without the pull
    edge = {t.metric: t.hi for t in cal.TARGETS}
    assert cal.loss(_summary(edge), pull=0.0) == 0.0
    # outside one band: positive, and growing with the distance (in band widths)
    t = cal.TARGETS_BY_METRIC["oud_prevalence"]
    w = t.hi - t.lo
    near = cal.loss(_summary({**inside, t.metric: t.hi + 0.1 * w}), pull=0.0)
    far = cal.loss(_summary({**inside, t.metric: t.hi + 0.5 * w}), pull=0.0)
    below = cal.loss(_summary({**inside, t.metric: t.lo - 0.1 * w}), pull=0.0)
    assert near == pytest.approx(1.0) and far == pytest.approx(5.0) and below == pytest.approx(1.0)
    # the pull prefers the point target to the band's edge, but stays small: a central point
    # anywhere inside its band costs less than a tenth of a band width outside
    assert cal.loss(_summary(inside)) < cal.loss(_summary(edge))
    t = cal.TARGETS_BY_METRIC["mh_prevalence"]
    pulled = cal.loss(_summary({**inside, t.metric: t.hi}), pull=1.0)
    assert 0 < pulled < cal.loss(_summary({**inside, t.metric: t.hi + 0.1 * (t.hi - t.lo)}), pull=0)


def test_odds_ratio_band_is_measured_on_the_log_scale():
    t = cal.TARGETS_BY_METRIC[cal.ODDS_RATIO]
    assert t.outside_distance(6.0) == 0.0
    width = math.log(t.hi / t.lo)
    assert t.outside_distance(t.hi * 2) == pytest.approx(math.log(2) / width)
    assert t.outside_distance(t.lo / 2) == pytest.approx(math.log(2) / width)
    assert t.outside_distance(float("inf")) > 1 and t.outside_distance(0.0) > 1


def test_summarise_reports_mean_interval_and_band():
    reps = pd.DataFrame({t.metric: np.linspace(t.lo, t.hi, 11) for t in cal.TARGETS})
    s = cal.summarise(reps).set_index("metric")
    t = cal.TARGETS_BY_METRIC["mh_prevalence"]
    assert s.loc["mh_prevalence", "mean"] == pytest.approx((t.lo + t.hi) / 2)
    assert t.lo <= s.loc["mh_prevalence", "lo"] < s.loc["mh_prevalence", "hi"] <= t.hi
    assert s["inside"].all() and (s["n"] == 11).all()
    table = cal.format_table(s.reset_index())
    assert "`oud_prevalence`" in table and "**no**" not in table


def test_free_parameter_specs():
    assert cal.free_parameter("use.initiation_rate").name == "use.initiation_rate"
    p = cal.free_parameter("use.cessation_rate=0.2:1.0")
    assert (p.lo, p.hi) == (0.2, 1.0)
    with pytest.raises(ParameterError, match="did you mean"):
        cal.free_parameter("use.initation_rate")
    with pytest.raises(ParameterError, match="not a declared free parameter"):
        cal.free_parameter("use.cessation_rate")
    with pytest.raises(ParameterError, match="allowed range"):
        cal.free_parameter("overdose.fatality=0.1:2")
    with pytest.raises(ParameterError, match="lo:hi"):
        cal.free_parameter("use.cessation_rate=abc")


def test_vector_free_parameter_scales_the_whole_vector():
    over = cal.overrides_for({"mental_health.onset_rate": 1.2, "treatment.recent_overdose_weeks": 9.6})
    default = field_info("mental_health.onset_rate")["default"]
    assert over["mental_health.onset_rate"] == pytest.approx([1.2 * x for x in default], rel=1e-3)  # 4 digits
    assert over["treatment.recent_overdose_weeks"] == 10
    fp = next(p for p in cal.FREE_PARAMETERS if p.name == "mental_health.onset_rate")
    params = Parameters.build(**over)
    assert fp.value_in(params) == pytest.approx(1.2, rel=1e-3)


def test_parameter_file_round_trips(tmp_path):
    over = cal.overrides_for(
        {
            "use.initiation_rate": 0.0041234567,
            "mental_health.onset_rate": 0.9,
            "treatment.capacity_per_100k": 950.0,
        }
    )
    path = cal.write_parameter_file(tmp_path / "fitted.toml", over, header=["a test"])
    text = path.read_text()
    assert text.startswith("# a test") and "[parameters]" in text
    params = Parameters.from_file(path)
    for name, value in over.items():
        assert get_dotted(params, name) == pytest.approx(value)
    assert params.use.initiation_rate == pytest.approx(0.004123)  # four significant figures
    assert params.use.progression_rate == Parameters().use.progression_rate  # untouched: default
    with pytest.raises(ParameterError):
        cal.write_parameter_file(tmp_path / "bad.toml", {"overdose.fatality": 3.0})
    assert not (tmp_path / "bad.toml").exists()


def test_tiny_study_runs_end_to_end(tmp_path):
    free = [cal.free_parameter("use.initiation_rate"), cal.free_parameter("treatment.seek_rate")]
    seen = []
    res = cal.calibrate(
        free=free,
        population=400,
        replicates=2,
        years=0.5,
        burn_in_years=0.5,
        trials=3,
        seed=3,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert len(res.trials) == 3 and seen[-1] == (6, 6)
    # trial 0 is the current defaults
    first = res.trials.iloc[0]
    assert first["use.initiation_rate"] == pytest.approx(Parameters().use.initiation_rate)
    assert res.loss == pytest.approx(res.trials["loss"].min())
    assert list(res.summary["metric"]) == [t.metric for t in cal.TARGETS]
    assert len(res.replicates) == 2
    paths = cal.write_outputs(res, tmp_path / "cal", command="oudsim calibrate ...")
    fitted = Parameters.from_file(paths["fitted"])
    assert fitted.use.initiation_rate == pytest.approx(res.overrides["use.initiation_rate"])
    assert fitted.treatment.seek_rate == pytest.approx(res.overrides["treatment.seek_rate"])
    assert "oudsim calibrate" in paths["markdown"].read_text()


def test_evaluation_is_reproducible_and_independent_of_workers():
    params = Parameters.build(**{"simulation.population": 300, "simulation.burn_in_years": 0.5})
    a = cal.evaluate(params, replicates=2, years=0.3, seed=5, workers=1)
    b = cal.evaluate(params, replicates=2, years=0.3, seed=5, workers=2)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    c = cal.evaluate(params, replicates=2, years=0.3, seed=6, workers=1)
    assert not np.allclose(a["misuse_prevalence"], c["misuse_prevalence"])


def test_bad_settings_are_refused():
    with pytest.raises(ParameterError):
        cal.calibrate(population=400, replicates=0, trials=1)
    with pytest.raises(ParameterError, match="repeat"):
        cal.calibrate(free=[cal.FREE_PARAMETERS[0]] * 2, population=400, trials=1)


# -- the `oudsim calibrate` command -------------------------------------------------------------


def _app():
    import typer

    from oudsim.model.cli_analysis import register

    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command keeps Typer in multi-command mode
    return register(app)


def test_calibrate_command_writes_table_and_fitted_file(tmp_path):
    from typer.testing import CliRunner

    out = tmp_path / "cal"
    args = [
        "calibrate",
        "-p",
        "300",
        "-n",
        "2",
        "-y",
        "0.5",
        "--burn-in",
        "0.5",
        "-t",
        "2",
        "-w",
        "1",
        "--free",
        "use.initiation_rate",
        "--free",
        "use.cessation_rate=0.4:0.8",
        "-o",
        str(out),
    ]
    r = CliRunner().invoke(_app(), args)
    assert r.exit_code == 0, r.output
    assert "oud_prevalence" in r.output and "Fitted values" in r.output
    fitted = Parameters.from_file(out / "fitted.toml")
    assert 0.4 <= fitted.use.cessation_rate <= 0.8
    table = pd.read_csv(out / "calibration.csv")
    assert list(table["metric"]) == [t.metric for t in cal.TARGETS]
    assert len(pd.read_csv(out / "trials.csv")) == 2


def test_calibrate_command_check_and_evaluate_only(tmp_path):
    from typer.testing import CliRunner

    # With an absurd initiation rate the targets cannot all be met: --check exits 1.
    f = tmp_path / "p.toml"
    f.write_text("[parameters]\nuse.initiation_rate = 2.0\n")
    args = [
        "calibrate",
        "-p",
        "300",
        "-n",
        "1",
        "-y",
        "0.3",
        "--burn-in",
        "0.3",
        "-t",
        "0",
        "-w",
        "1",
        "--params",
        str(f),
        "--check",
        "-o",
        str(tmp_path / "o"),
    ]
    r = CliRunner().invoke(_app(), args)
    assert r.exit_code == 1, r.output
    assert "no" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--free", "use.initation_rate"], "did you mean"),
        (["--free", "overdose.fatality=0.5:3"], "allowed range"),
        (["--scenario", "expand_moud"], "interventions"),
        (["--scenario", "no_such_scenario"], "unknown scenario"),
        (["--params", "/nonexistent/p.toml"], "no such parameter file"),
    ],
)
def test_calibrate_command_bad_input_exits_2(tmp_path, args, message):
    from typer.testing import CliRunner

    r = CliRunner().invoke(_app(), ["calibrate", "-t", "0", "-o", str(tmp_path), *args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_fitted_file_keeps_fixed_overrides_and_the_starting_file(tmp_path):
    """A chained calibration (--params, --set) writes everything that differs from the defaults."""
    from typer.testing import CliRunner

    start = tmp_path / "start.toml"
    start.write_text("[parameters]\nuse.relapse_rate = 0.03\n")
    out = tmp_path / "b"
    args = [
        "calibrate",
        "-p",
        "300",
        "-n",
        "1",
        "-y",
        "0.3",
        "--burn-in",
        "0.3",
        "-t",
        "1",
        "-w",
        "1",
        "--params",
        str(start),
        "--set",
        "treatment.capacity_per_100k=600",
        "--free",
        "use.initiation_rate",
        "-o",
        str(out),
    ]
    r = CliRunner().invoke(_app(), args)
    assert r.exit_code == 0, r.output
    fitted = Parameters.from_file(out / "fitted.toml")
    assert fitted.use.relapse_rate == 0.03 and fitted.treatment.capacity_per_100k == 600
    assert fitted.simulation.population == Parameters().simulation.population  # run settings left out
    r = CliRunner().invoke(_app(), [*args[:-2], "--set", "treatment.capacity=1", "-o", str(out)])
    assert r.exit_code == 2 and "unknown parameter" in r.output
