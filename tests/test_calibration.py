"""Calibration machinery: targets and free parameters are valid data, the loss is zero inside
the bands and grows outside, a fitted file reads back into Parameters, and a tiny study runs."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pandas as pd
import pytest

from oudsim.model import calibration as cal
from oudsim.model.metrics import METRIC_NAMES
from oudsim.model.parameters import ParameterError, Parameters, apply_overrides, field_info, get_dotted


def _summary(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"metric": list(values), "mean": list(values.values())})


def centres() -> dict[str, float]:
    return {t.metric: (t.target if t.target is not None else math.sqrt(t.lo * t.hi)) for t in cal.TARGETS}


def test_targets_are_valid_and_name_real_outputs():
    metrics = [t.metric for t in cal.TARGETS]
    assert len(set(metrics)) == len(metrics), "two targets for one output: TARGETS_BY_METRIC would keep only one"
    assert cal.TARGETS_BY_METRIC == {t.metric: t for t in cal.TARGETS}
    for t in cal.TARGETS:
        # an output of every replicate: a catalogue metric, the odds ratio (measured on the log scale) or
        # a rate read off the transition log (calibration.log_measures)
        assert t.metric in METRIC_NAMES or (t.metric == cal.ODDS_RATIO and t.log) or t.metric in cal.LOG_MEASURES
        assert t.metric not in cal.LOG_MEASURES or t.metric not in METRIC_NAMES
        assert math.isfinite(t.lo) and math.isfinite(t.hi) and 0 <= t.lo < t.hi, t.metric
        assert t.width > 0 and (not t.log or t.lo > 0), t.metric
        assert t.target is None or t.lo <= t.target <= t.hi, t.metric
        assert t.source.startswith("E") and t.label, t.metric


def _mid_band(t: cal.Target) -> float:
    """The middle of a band on its own scale (geometric for log-scale targets)."""
    return math.sqrt(t.lo * t.hi) if t.log else (t.lo + t.hi) / 2


def _shifted(t: cal.Target, edge: float, widths: float) -> float:
    """A value `widths` band widths beyond `edge` (outward), on the target's scale."""
    if t.log:
        return math.exp(math.log(edge) + widths * t.width)
    return edge + widths * t.width


@pytest.mark.parametrize("t", cal.TARGETS, ids=lambda t: t.metric)
def test_each_target_costs_nothing_mid_band_and_more_the_further_out(t):
    mid = {u.metric: _mid_band(u) for u in cal.TARGETS}
    assert cal.loss(_summary(mid), pull=0.0) == 0.0
    # Above the band: the loss is OUTSIDE_WEIGHT per band width out, strictly growing; the other
    # targets, still mid-band, add nothing.
    out = (0.05, 0.2, 0.5, 1.0, 2.0)
    above = [cal.loss(_summary({**mid, t.metric: _shifted(t, t.hi, k)}), pull=0.0) for k in out]
    assert above == pytest.approx([cal.OUTSIDE_WEIGHT * k for k in out])
    assert all(a < b for a, b in zip(above, above[1:], strict=False))
    # Below it (not so far that a rate or share would turn negative): the same.
    below_steps = (0.05, 0.1, 0.2, 0.3)
    below = [cal.loss(_summary({**mid, t.metric: _shifted(t, t.lo, -k)}), pull=0.0) for k in below_steps]
    assert below == pytest.approx([cal.OUTSIDE_WEIGHT * k for k in below_steps])
    # Both edges are still inside.
    for edge in (t.lo, t.hi):
        assert cal.loss(_summary({**mid, t.metric: edge}), pull=0.0) == 0.0


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
    over = cal.overrides_for({"mental_health.onset_rate": 1.2, "treatment.post_care_weeks": 9.6})
    default = field_info("mental_health.onset_rate")["default"]
    assert over["mental_health.onset_rate"] == pytest.approx([1.2 * x for x in default], rel=1e-3)  # 4 digits
    assert over["treatment.post_care_weeks"] == 10
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


def test_the_fit_recovers_a_known_parameter_from_a_synthetic_target(monkeypatch):
    """Fit mental_health.onset_rate (a scale factor, searched in [0.8, 1.2], default 1.0) to the
    mh_prevalence the model itself gives at 0.84: the study moves from the default toward 0.84 and
    its loss falls far below the starting point's.

    Measured (5,000 people, 4 replicates, 1 year after 3 years of burn-in, 16 trials, seeds 1-12):
    fitted 0.817-0.885 (error at most 0.045; the default is 0.16 away); best loss at most 4% of the
    starting loss (20-58), the synthetic target met in 11 of 12 seeds. About 6 s."""
    name, metric, truth = "mental_health.onset_rate", "mh_prevalence", 0.84
    settings = dict(population=5_000, replicates=4, years=1.0, burn_in_years=3.0, seed=1)
    free = cal.free_parameter(name)
    base = Parameters.build(
        **{"simulation.population": settings["population"], "simulation.burn_in_years": settings["burn_in_years"]}
    )
    start = free.value_in(base)
    assert abs(start - truth) > 0.15  # the fit has somewhere to go
    at_truth = cal.evaluate(
        apply_overrides(base, cal.overrides_for({name: truth})),
        replicates=settings["replicates"],
        years=settings["years"],
        seed=settings["seed"],
    )
    m = float(at_truth[metric].mean())
    synthetic = (cal.Target(metric, m, m - 0.004, m + 0.004, "E-synthetic", "mh_prevalence at onset scale 0.84"),)
    # calibrate scores every trial with the module's summarise and loss: point both at the synthetic target
    monkeypatch.setattr(cal, "summarise", functools.partial(cal.summarise, targets=synthetic))
    monkeypatch.setattr(cal, "loss", functools.partial(cal.loss, targets=synthetic))

    res = cal.calibrate(free=[free], trials=16, **settings)

    first = res.trials.iloc[0]
    assert first[name] == pytest.approx(start)  # trial 0 is the starting point ...
    assert first["loss"] > 10  # ... well outside the synthetic band
    fitted = res.values[name]
    assert abs(fitted - truth) < 0.5 * abs(start - truth), f"fitted {fitted:.3f}, truth {truth}, start {start}"
    assert res.loss < 0.1 * first["loss"], f"best loss {res.loss:.3g} vs {first['loss']:.3g} at the start"
    assert list(res.summary["metric"]) == [metric]


def test_evaluation_is_reproducible_and_independent_of_workers():
    params = Parameters.build(**{"simulation.population": 300, "simulation.burn_in_years": 0.5})
    a = cal.evaluate(params, replicates=2, years=0.3, seed=5, workers=1)
    for t in cal.TARGETS:  # every target is read off each replicate (the odds ratio may be 0/0 this small,
        # and the rates from the log need events to follow: NaN over 0.3 years is allowed, negative is not)
        assert t.metric in a.columns
        ok = a[t.metric] >= 0
        if t.metric == cal.ODDS_RATIO or t.metric in cal.LOG_MEASURES:
            ok |= ~np.isfinite(a[t.metric])
        assert (ok & ~np.isinf(a[t.metric])).all(), t.metric
    b = cal.evaluate(params, replicates=2, years=0.3, seed=5, workers=2)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))  # NaN equals NaN here
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
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2
    # Trial 0 is the starting point: the default initiation rate, and the default cessation rate
    # clipped into the range given.
    assert trials.loc[0, "use.initiation_rate"] == pytest.approx(Parameters().use.initiation_rate)
    assert trials.loc[0, "use.cessation_rate"] == pytest.approx(min(max(Parameters().use.cessation_rate, 0.4), 0.8))
    # fitted.toml holds the best trial (rounded as written), and the loss printed is that trial's ...
    best = trials.loc[trials["loss"].idxmin()]
    assert fitted.use.initiation_rate == pytest.approx(best["use.initiation_rate"], rel=1e-3)
    assert fitted.use.cessation_rate == pytest.approx(best["use.cessation_rate"], rel=1e-3)
    printed = float(re.search(r"Loss (\S+); every target inside its band", r.output).group(1))
    assert printed == pytest.approx(best["loss"], rel=1e-3)
    # ... which the fitted file reproduces when evaluated again on the same seeds (common random numbers).
    again = cal.evaluate(
        apply_overrides(fitted, {"simulation.population": 300, "simulation.burn_in_years": 0.5}),
        replicates=2,
        years=0.5,
        seed=1,
    )
    assert cal.loss(cal.summarise(again)) == pytest.approx(best["loss"], rel=1e-9)
    assert table["mean"].to_numpy() == pytest.approx(cal.summarise(again)["mean"].to_numpy(), rel=1e-9, nan_ok=True)


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
    assert "every target inside its band: no." in r.output
    # the table marks the target the absurd rate pushes out (misuse: far above its band) ...
    row = next(line for line in r.output.splitlines() if "misuse_prevalence" in line)
    assert [c.strip() for c in row.split("│") if c.strip()][-1] == "no", row
    table = pd.read_csv(tmp_path / "o" / "calibration.csv").set_index("metric")
    misuse = table.loc["misuse_prevalence"]
    assert not misuse["inside"] and misuse["mean"] > misuse["band_hi"]
    # ... and -t 0 only evaluates the starting point: one trial row, nothing fitted.
    assert len(pd.read_csv(tmp_path / "o" / "trials.csv")) == 1
    assert "Fitted values" not in r.output
    # The same run without --check reports the same table and exits 0: exit 1 is --check's verdict.
    r = CliRunner().invoke(_app(), [a for a in args if a != "--check"])
    assert r.exit_code == 0, r.output
    assert "every target inside its band: no." in r.output


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
