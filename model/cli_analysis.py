"""``oudsim calibrate`` and ``oudsim sensitivity``: fitting the model to published figures and
ranking what moves its outputs.

The commands are plain functions; ``register(app)`` adds them to a Typer app (the main ``oudsim``
app calls it). Exit codes: 0 success; 1 ``calibrate --check`` found a target outside its band;
2 bad input (one message, no traceback); 130 interrupted.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from oudsim.model.console import (
    DEFAULT_WORKERS,
    EXIT_FAILED,
    MAX_REPLICATES,
    clear_errors,
    err_console,
    exit_interrupted,
    out_console,
    progress_bar,
)
from oudsim.model.parameters import ParameterError, Parameters, parse_assignments

__all__ = ["calibrate", "register", "sensitivity"]


Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Fix a parameter: dotted.name=value (repeat)."),
]


def _command_line(name: str, ctx: typer.Context | None) -> str:
    """The command as typed; when called in-process (tests, notebooks) rebuilt from the parsed options
    (``ctx``, the command's own context: typer's click is its own, so click's current context is not)."""
    if Path(sys.argv[0]).name in ("oudsim", "cli_analysis.py") or "oudsim.model.cli" in " ".join(sys.argv[:2]):
        return "oudsim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if ctx is None:  # called as a function: name the command at least
        return f"oudsim {name}"
    opts = []
    for key, value in ctx.params.items():
        if value is None or value is False or value == []:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        flag = f"--{key.replace('_', '-')}"
        opts.extend(flag if v is True else f"{flag} {shlex.quote(str(v))}" for v in values)
    return f"oudsim {name} " + " ".join(opts)


def _base(scenario: str, params_file: Path | None, sets: list[str] | None = None) -> Parameters:
    """The parameters to start from: a scenario (without interventions) or a parameter file, then
    any ``--set`` overrides."""
    from oudsim.model.parameters import apply_overrides

    overrides = parse_assignments(sets)
    if params_file is not None:
        base = Parameters.from_file(params_file)
    else:
        from oudsim.scenarios import load_scenario

        s = load_scenario(scenario)
        if s.interventions:
            raise ParameterError(
                f"scenario '{s.name}' has interventions; calibration and sensitivity analysis start "
                "from a scenario without any (e.g. baseline)"
            )
        base = s.params
    return apply_overrides(base, overrides) if overrides else base


# -- shared options ----------------------------------------------------------------------------

Population = Annotated[int, typer.Option("--population", "-p", min=50, max=50_000_000, help="Number of people.")]
Replicates = Annotated[
    int, typer.Option("--replicates", "-n", min=1, max=MAX_REPLICATES, help="Replicates per evaluated point.")
]
Years = Annotated[
    float,
    typer.Option("--years", "-y", min=0.02, max=500, help="Years recorded after burn-in."),
]
BurnIn = Annotated[
    float | None,
    typer.Option("--burn-in", min=0, max=200, help="Burn-in years (default: simulation.burn_in_years)."),
]
Seed = Annotated[
    int,
    typer.Option("--seed", "-s", min=0, help="Root seed; replicate i gets child i of SeedSequence(seed)."),
]
Workers = Annotated[int, typer.Option("--workers", "-w", min=1, help="Local worker processes.")]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Dask scheduler address (tcp://host:8786): the replicates run on that cluster."),
]
ScenarioOpt = Annotated[
    str,
    typer.Option("--scenario", help="Scenario to start from (its parameters; no interventions)."),
]
ParamsFile = Annotated[
    Path | None,
    typer.Option(
        "--params",
        help="Start from this TOML parameter file instead of a scenario.",
        dir_okay=False,
    ),
]


# -- calibrate ---------------------------------------------------------------------------------


def calibrate(
    ctx: typer.Context,
    population: Population = 10_000,
    replicates: Replicates = 4,
    years: Years = 10.0,
    burn_in: BurnIn = None,
    trials: Annotated[
        int,
        typer.Option(
            "--trials",
            "-t",
            min=0,
            help="Optuna trials (trial 0 is the starting values); 0 only evaluates them.",
        ),
    ] = 40,
    seed: Seed = 1,
    workers: Workers = DEFAULT_WORKERS,
    free: Annotated[
        list[str] | None,
        typer.Option(
            "--free",
            help="A free parameter: a declared name, or name=lo:hi. Repeat; default: the declared "
            "set (model.calibration.FREE_PARAMETERS).",
        ),
    ] = None,
    pull: Annotated[float, typer.Option("--pull", min=0, help="Weight of the pull toward each point target.")] = 1.0,
    scenario: ScenarioOpt = "baseline",
    params_file: ParamsFile = None,
    set_: Sets = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the table, trials and fitted.toml.")] = Path(
        "results/calibration"
    ),
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if any target mean is outside its band.")] = False,
    posterior: Annotated[
        int,
        typer.Option(
            "--posterior",
            min=0,
            help="Then sample accepted parameter sets: this many ABC-MCMC steps from the fitted values "
            "(every target inside its band), written to posterior.parquet for run/compare/psa --posterior.",
        ),
    ] = 0,
    step: Annotated[
        float,
        typer.Option("--step", min=0.001, max=1.0, help="ABC-MCMC proposal SD, as a share of each prior's range."),
    ] = 0.05,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the posterior chain in --out (chain.parquet) instead of starting afresh."
        ),
    ] = False,
    scheduler: Scheduler = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Keep the Optuna study here (a journal file path, or an RDB URL such as sqlite:///study.db): "
            "a rerun continues it, and processes on several machines sharing it add to one study.",
        ),
    ] = None,
) -> None:
    """Fit the free parameters to the calibration targets with Optuna; writes fitted.toml (and, with
    --posterior, a sample of accepted parameter sets)."""
    from oudsim.model import calibration as cal

    command = _command_line("calibrate", ctx)
    with clear_errors():
        base = _base(scenario, params_file, set_)
        chosen = [cal.free_parameter(f) for f in free] if free else list(cal.FREE_PARAMETERS)
        for p in chosen:
            p.check()
        best = [math.inf]

        def on_trial(number: int, value: float, values: dict[str, float]) -> None:
            best[0] = min(best[0], value)
            err_console.print(f"trial {number + 1}/{trials}: loss {value:.4g} (best {best[0]:.4g})")

        with progress_bar("calibrating", "replicates") as update:
            result = cal.calibrate(
                base,
                chosen,
                population=population,
                replicates=replicates,
                years=years,
                burn_in_years=burn_in,
                trials=trials,
                seed=seed,
                workers=workers,
                pull=pull,
                progress=update,
                on_trial=on_trial,
                scheduler=scheduler,
                storage=storage,
            )
        paths = cal.write_outputs(result, out, command=command)
        sample = None
        if posterior and not result.interrupted:
            with progress_bar("sampling the posterior", "steps") as update:
                sample = cal.sample_posterior(
                    result.params,
                    chosen,
                    steps=posterior,
                    population=population,
                    replicates=replicates,
                    years=years,
                    burn_in_years=burn_in,
                    seed=seed,
                    workers=workers,
                    scheduler=scheduler,
                    step=step,
                    out=out,
                    resume=resume,
                    progress=update,
                )
    out_console.print(_target_table(result))
    if trials:
        fitted = Table(title="Fitted values", title_justify="left")
        fitted.add_column("parameter")
        fitted.add_column("value", justify="right")
        for k, v in sorted(result.overrides.items()):
            fitted.add_row(k, str(v))
        out_console.print(fitted)
    if result.interrupted:
        err_console.print("interrupted: the best trial so far is written")
    out_console.print(
        f"Loss {result.loss:.4g}; every target inside its band: "
        f"{'yes' if result.all_inside else 'no'}. Wrote {paths['table']}, {paths['fitted'].name}, "
        f"{paths['trials'].name}, {paths['replicates'].name}, {paths['markdown'].name}."
    )
    if sample is not None:
        out_console.print(_posterior_table(sample))
        out_console.print(
            f"Posterior: {len(sample)} states, {sample.meta['acceptance_rate']:.0%} of proposals accepted. "
            f"Wrote {out / 'posterior.parquet'} (use it with run, compare or psa --posterior)."
        )
    if result.interrupted:
        exit_interrupted()
    if check and not result.all_inside:
        raise typer.Exit(EXIT_FAILED)


def _posterior_table(sample: Any) -> Table:
    t = Table(title="Accepted parameter sets (ABC-MCMC states)", title_justify="left")
    for col in ("parameter", "2.5%", "median", "97.5%", "prior"):
        t.add_column(col, justify="left" if col in ("parameter", "prior") else "right")
    priors = {name: (lo, hi, log) for name, lo, hi, log in sample.meta["settings"]["free"]}
    for name in sample.names:
        v = sample.draws[name].to_numpy(dtype=float)
        lo, mid, hi = np.percentile(v, [2.5, 50, 97.5])
        p_lo, p_hi, log = priors[name]
        t.add_row(name, f"{lo:.4g}", f"{mid:.4g}", f"{hi:.4g}", f"{'log-' if log else ''}uniform [{p_lo:g}, {p_hi:g}]")
    return t


def _target_table(result: Any) -> Table:
    from oudsim.model.calibration import format_value as _fmt

    s = result.settings
    t = Table(
        title=f"Calibration targets: {s['population']:,} people, {s['replicates']} replicates, "
        f"{s['years']:g} years after {s['burn_in_years']:g} years of burn-in (final-year means)",
        title_justify="left",
    )
    for col, just in (
        ("target", "left"),
        ("evidence", "left"),
        ("point", "right"),
        ("band", "right"),
        ("model mean", "right"),
        ("95% interval", "right"),
        ("inside", "center"),
    ):
        t.add_column(col, justify=just)
    for r in result.summary.itertuples(index=False):
        m = r.metric
        target = None if r.target is None or r.target != r.target else float(r.target)
        t.add_row(
            m,
            r.source,
            _fmt(target, m),
            f"{_fmt(r.band_lo, m)} – {_fmt(r.band_hi, m)}",
            _fmt(r.mean, m),
            f"{_fmt(r.lo, m)} – {_fmt(r.hi, m)}",
            Text("yes", style="green") if r.inside else Text("no", style="bold red"),
        )
    return t


# -- sensitivity -------------------------------------------------------------------------------


def sensitivity(
    ctx: typer.Context,
    parameters: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PARAMETER[=LO:HI]",
            help="Dotted parameter names, each optionally with bounds (a vector parameter's "
            "bounds scale it), or a group: 'free' (the calibration's free parameters) or 'mechanisms' "
            "(the mechanism ratios). Default: both groups.",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[
        list[str],
        typer.Option(
            "--metric",
            "-m",
            help="Metric to analyse (a catalogue name); repeat for several, from the same runs.",
        ),
    ] = ["oud_prevalence"],  # noqa: B006 - Typer needs a literal default
    method: Annotated[str, typer.Option("--method", help="morris (screening) or sobol (variance indices).")] = "morris",
    trajectories: Annotated[
        int, typer.Option("--trajectories", "-r", min=2, help="Morris trajectories (k+1 runs each).")
    ] = 8,
    levels: Annotated[int, typer.Option("--levels", min=2, help="Morris grid levels.")] = 4,
    sobol_n: Annotated[
        int, typer.Option("--sobol-n", min=2, help="Sobol base sample (N*(k+2) runs); a power of 2.")
    ] = 64,
    fraction: Annotated[
        float,
        typer.Option(
            "--fraction",
            min=0.01,
            max=0.99,
            help="Default bounds: default * (1 ± fraction), clipped to the schema range.",
        ),
    ] = 0.5,
    population: Population = 5_000,
    years: Years = 5.0,
    average: Annotated[
        float,
        typer.Option(
            "--average-years", min=0.02, help="Average each metric over the final years (default: the final year)."
        ),
    ] = 1.0,
    burn_in: BurnIn = None,
    replicates: Replicates = 1,
    seed: Seed = 1,
    workers: Workers = DEFAULT_WORKERS,
    scheduler: Scheduler = None,
    scenario: ScenarioOpt = "baseline",
    params_file: ParamsFile = None,
    set_: Sets = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the indices CSV and the ranked plot.")] = Path(
        "results/sensitivity"
    ),
) -> None:
    """Global sensitivity analysis (SALib): Morris screening, or Sobol indices on request; indices CSV, ranked plot."""
    from oudsim.model import sensitivity as sa

    with clear_errors():
        if method not in sa.METHODS:
            raise ParameterError(f"--method must be one of {', '.join(sa.METHODS)}, not '{method}'")
        for m in metric:
            sa.check_metric(m)
        base = _base(scenario, params_file, set_)
        specs = sa.expand_groups(parameters or ["free", "mechanisms"])
        free = [sa.parse_parameter(p, fraction) for p in specs]
        with progress_bar(f"{method} sensitivity", "runs") as update:
            results = sa.run_sensitivity_metrics(
                free,
                metric,
                method=method,
                base=base,
                trajectories=trajectories,
                levels=levels,
                sobol_n=sobol_n,
                fraction=fraction,
                population=population,
                years=years,
                average_years=average,
                burn_in_years=burn_in,
                replicates=replicates,
                seed=seed,
                workers=workers,
                out=out,
                progress=update,
                scheduler=scheduler,
            )
    command = _command_line("sensitivity", ctx)
    for res in results.values():
        out_console.print(_ranking_table(res))
        (out / f"sensitivity_{res.metric}_{res.method}_command.txt").write_text(command + "\n")
        out_console.print(f"Wrote {res.paths['indices']} and {res.paths['plot']}.")


def _ranking_table(res: Any) -> Table:
    morris = res.method == "morris"
    s = res.settings
    t = Table(
        title=f"{'Morris' if morris else 'Sobol'} ranking of {res.metric} ({s['runs']} runs, "
        f"{s['population']:,} people, {s['years']:g} years)",
        title_justify="left",
    )
    t.add_column("rank", justify="right")
    t.add_column("parameter")
    t.add_column("range", justify="right")
    cols = ("mu_star", "mu_star_conf", "mu", "sigma") if morris else ("ST", "ST_conf", "S1")
    for c in cols:
        t.add_column(c.replace("_conf", " ±95%"), justify="right")
    for r in res.indices.itertuples(index=False):
        rng = f"{r.lo:.4g} – {r.hi:.4g}" + (" (×)" if r.scale_factor else "")
        t.add_row(str(r.rank), r.parameter, rng, *(f"{getattr(r, c):.4g}" for c in cols))
    return t


def register(app: typer.Typer) -> typer.Typer:
    """Add ``calibrate`` and ``sensitivity`` to an existing Typer app."""
    app.command("calibrate")(calibrate)
    app.command("sensitivity")(sensitivity)
    return app


def main() -> None:  # pragma: no cover - `python -m oudsim.model.cli_analysis calibrate ...`
    app = typer.Typer(name="oudsim", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
