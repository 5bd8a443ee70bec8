"""The ``oudsim`` command line: list and check scenarios, run replicates, compare, sweep, report.

Exit codes: 0 success; 1 some replicates failed (the rest are written); 2 bad input (one message, no
traceback); 130 interrupted (finished replicates are kept; ``--resume`` skips them).
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from oudsim.model.cli_dashboard import register as register_dashboard
from oudsim.model.console import (
    DEFAULT_WORKERS,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    MAX_REPLICATES,
    clear_errors,
    err_console,
    exit_interrupted,
    fail,
    out_console,
    printable,
    progress_bar,
)
from oudsim.model.parameters import ParameterError, parse_assignments, parse_value

app = typer.Typer(
    name="oudsim",
    help="Scenarios of mental health and opioid use disorder on a social network: run, compare, sweep, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _show_version(value: bool) -> None:
    if value:
        from oudsim import versions

        v = versions()
        out_console.print(
            f"oudsim {v['oudsim']} (Python {v['python']}, numpy {v['numpy']}, numba {v['numba']})", highlight=False
        )
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="Threads for each model run (the same results on any number). Default: every core for "
            "runs of 50,000 people or more, shared out among worker processes.",
        ),
    ] = None,
) -> None:
    # Options of the command itself (the help text is the app's).
    if threads is not None:
        from oudsim.model.oud_model import check_threads

        try:
            check_threads(threads)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--threads") from None
        os.environ["OUDSIM_THREADS"] = str(threads)  # read by every model of the run, and its workers'


KEY_METRICS = (
    "oud_prevalence",
    "overdose_death_rate",
    "treatment_coverage",
    "mh_prevalence",
    "isolated_share",
)


# -- errors and shared options ---------------------------------------------------------------------


_parse_value = parse_value  # --grid values, read as --set values are


def _parse_sets(sets: list[str] | None) -> dict[str, Any]:
    try:
        return parse_assignments(sets)
    except ParameterError as e:
        fail(str(e) if str(e).startswith("--set") else f"--set: {e}")


Replicates = Annotated[
    int, typer.Option("--replicates", "-n", min=1, max=MAX_REPLICATES, help="Replicates per scenario.")
]
Years = Annotated[float, typer.Option("--years", "-y", min=0, max=500, help="Years to simulate after burn-in.")]
Population = Annotated[int, typer.Option("--population", "-p", min=50, max=50_000_000, help="Number of people.")]
Seed = Annotated[
    int,
    typer.Option("--seed", "-s", min=0, help="Root seed; replicate i gets child i of SeedSequence(seed)."),
]
Workers = Annotated[int, typer.Option("--workers", "-w", min=1, help="Local worker processes.")]
Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Dask scheduler address (tcp://host:8786); runs the replicates on that cluster.",
    ),
]


def _folder(value: str) -> Path:
    # Path("") is the current folder: an empty --out (an unset shell variable) must not mean "here".
    if not value.strip():
        raise typer.BadParameter("empty: name the folder the results go to (e.g. --out results)")
    return Path(value)


Out = Annotated[Path | None, typer.Option("--out", "-o", parser=_folder, help="Output folder. [default: results]")]
PosteriorOpt = Annotated[
    Path | None,
    typer.Option(
        "--posterior",
        help="A posterior file (oudsim calibrate --posterior): replicate i of every scenario takes its "
        "parameter draw i, so intervals include parameter uncertainty.",
    ),
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a parameter in every scenario: dotted.name=value (repeatable)."),
]
Resume = Annotated[bool, typer.Option("--resume", help="Skip replicates already finished in --out.")]
ShareBurnIn = Annotated[
    bool,
    typer.Option(
        "--share-burn-in/--burn-in-per-arm",
        help="Run the burn-in once per replicate and start every scenario from it (the same results, "
        "faster), or run it again for every scenario.",
    ),
]
WarmStart = Annotated[
    bool,
    typer.Option(
        "--warm-start",
        help="Keep each replicate's burned-in state on disk and start from it when it is there (the same "
        "results; a snapshot from other code, parameters or seed is refused and the burn-in run again).",
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace the results already in --out (otherwise a run refuses to delete them)."),
]


# -- tables --------------------------------------------------------------------------


def _summary_table(summary: Any, scenarios: list[str], title: str) -> Table:
    from oudsim.model.report import summary_rows

    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("metric")
    table.add_column("unit", style="dim")
    for s in scenarios:
        table.add_column(s, justify="right")
    for row in summary_rows(summary, scenarios):
        table.add_row(*row)
    return table


def _comparison_table(comparison: Any, title: str) -> Table:
    from oudsim.model.report import comparison_rows

    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("metric")
    table.add_column("unit", style="dim")
    for s in dict.fromkeys(comparison["scenario"]):
        table.add_column(f"{s} − {comparison['base'].iloc[0]}", justify="right")
    for row in comparison_rows(comparison):
        table.add_row(*row)
    return table


def _run(
    command: typer.Context | None,
    scenarios: list[Any],
    *,
    replicates: int,
    years: float,
    population: int,
    seed: int,
    workers: int,
    scheduler: str | None,
    out: Path,
    sets: dict[str, Any],
    resume: bool,
    overwrite: bool = False,
    share_burn_in: bool = True,
    warm_start: bool = False,
    extra_manifest: dict[str, Any] | None = None,
    posterior: Path | None = None,
) -> Any:
    from oudsim.model.experiments import connect, resolve_scenarios, run_experiment
    from oudsim.model.posterior import load as load_posterior
    from oudsim.model.results_folder import claim

    draws = load_posterior(posterior) if posterior is not None else None  # refused before anything runs

    resolve_scenarios(scenarios, population, sets)  # every scenario checked before the bar appears
    # The folder is this command's until it ends (its own tables written after the run included): a
    # second run on it is refused, finished results are kept unless --overwrite (model.results_folder).
    if command is not None:
        command.with_resource(claim(out, resume=resume, overwrite=overwrite))
    if scheduler is not None and not scheduler.strip():
        fail("--scheduler is empty: give the Dask scheduler's address (tcp://host:8786), or leave the option out")
    where = f"on {scheduler}" if scheduler else f"{workers} worker{'s' * (workers > 1)}"
    # Connect first, so a wrong address is one clear error rather than a stalled progress bar.
    client = connect(scheduler) if scheduler else None
    try:
        with progress_bar(f"Running ({where})", "replicates") as update:
            result = run_experiment(
                scenarios,
                replicates=replicates,
                years=years,
                population=population,
                seed=seed,
                workers=workers,
                scheduler=client,
                out_dir=out,
                resume=resume,
                overwrite=overwrite,
                share_burn_in=share_burn_in,
                warm_start=warm_start,
                overrides=sets,
                progress=update,
                extra_manifest={"command": sys.argv, **(extra_manifest or {})},
                posterior=draws,
            )
    finally:
        if client is not None:
            client.close()
    if result.resumed:
        err_console.print(f"Resumed: {result.resumed} finished replicate(s) found in {out} were skipped.")
    return result


def _finish(result: Any, out: Path) -> None:
    """Report failures and interruption, then exit with the code that says how the run went."""
    for f in result.failures:
        err_console.print(Text("failed: ", style="bold red") + Text(printable(str(f))), soft_wrap=True)
    done, total = len(result.finals), result.manifest["replicates"]["total"]
    if result.interrupted:
        err_console.print(
            f"Interrupted: {done} of {total} replicates finished and are kept in {out}; "
            "run the same command with --resume to finish."
        )
        exit_interrupted()
    if result.failures:
        err_console.print(
            f"{len(result.failures)} of {total} replicates failed; the other {done} are written to {out}."
        )
        raise typer.Exit(EXIT_FAILED)


# -- commands -------------------------------------------------------------------------------------


@app.command("scenarios")
def scenarios_command(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="List the .toml files of this folder instead.")
    ] = None,
) -> None:
    """List the scenarios with their descriptions and interventions."""
    from oudsim.scenarios import list_scenarios

    with clear_errors():
        found = list_scenarios(directory)
    table = Table(header_style="bold")
    table.add_column("scenario", style="bold")
    table.add_column("description")
    table.add_column("interventions", style="dim")
    for s in found:
        table.add_row(s.name, s.description, "\n".join(i.describe() for i in s.interventions) or "none")
    out_console.print(table)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario TOML file(s) to check.")],
) -> None:
    """Check scenario files: syntax, parameter names and ranges, interventions.

    Exits 0 if every file is valid, 2 if not.
    """
    from oudsim.scenarios import ScenarioError, load_scenario

    bad = 0
    for path in files:
        try:
            s = load_scenario(path if path.suffix == ".toml" or path.exists() else str(path))
        except ScenarioError as e:
            err_console.print(Text("error: ", style="bold red") + Text(printable(str(e))), soft_wrap=True)
            bad += 1
            continue
        out_console.print(
            Text("ok: ", style="bold green")
            + Text(
                f"{path}: '{s.name}', {len(s.overrides)} parameter override(s), {len(s.interventions)} intervention(s)"
            )
        )
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def run(
    ctx: typer.Context,
    scenarios: Annotated[
        list[str],
        typer.Argument(metavar="SCENARIO", help="Scenario names (see `oudsim scenarios`) or .toml paths."),
    ],
    replicates: Replicates = 4,
    years: Years = 10.0,
    population: Population = 10_000,
    seed: Seed = 1,
    workers: Workers = DEFAULT_WORKERS,
    scheduler: Scheduler = None,
    out: Out = None,
    set_: Sets = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    posterior: PosteriorOpt = None,
    share_burn_in: ShareBurnIn = True,
    warm_start: WarmStart = False,
) -> None:
    """Run replicates of each scenario; write timeseries.parquet, summary.csv, manifest.json."""
    out = out or Path("results")
    with clear_errors():
        sets = _parse_sets(set_)
        result = _run(
            ctx,
            scenarios,
            replicates=replicates,
            years=years,
            population=population,
            seed=seed,
            workers=workers,
            scheduler=scheduler,
            out=out,
            sets=sets,
            resume=resume,
            overwrite=overwrite,
            share_burn_in=share_burn_in,
            warm_start=warm_start,
            posterior=posterior,
        )
    names = [s.name for s in result.scenarios]
    if result.finals.empty:  # nothing finished: no table to show
        _finish(result, out)
    out_console.print(
        _summary_table(
            result.summary,
            names,
            f"Final-year mean (2.5–97.5th percentile across {len(result.seeds)} replicates), "
            f"{population:,} people, {years:g} years",
        )
    )
    out_console.print(
        f"Wrote {out}/timeseries.parquet, summary.csv, replicates.csv, manifest.json in {result.wall_seconds:.1f} s."
    )
    _finish(result, out)


@app.command("compare")
def compare_command(
    ctx: typer.Context,
    base: Annotated[str, typer.Argument(help="The scenario to compare against (e.g. baseline).")],
    others: Annotated[list[str], typer.Argument(help="Scenarios to compare with the base.")],
    from_dir: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Compare the replicates already in this run folder instead of running them.",
        ),
    ] = None,
    replicates: Replicates = 4,
    years: Years = 10.0,
    population: Population = 10_000,
    seed: Seed = 1,
    workers: Workers = DEFAULT_WORKERS,
    scheduler: Scheduler = None,
    out: Out = None,
    set_: Sets = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    share_burn_in: ShareBurnIn = True,
    warm_start: WarmStart = False,
    posterior: PosteriorOpt = None,
    wtp: Annotated[
        list[float] | None,
        typer.Option(
            "--wtp",
            help="Willingness to pay, US$ per QALY, for net monetary benefit (repeatable; "
            "default 50,000, 100,000 and 150,000).",
        ),
    ] = None,
) -> None:
    """Paired difference of each scenario from BASE per metric, with a 95% interval; costs, QALYs,
    ICERs and net monetary benefit against BASE (cost_effectiveness.csv, ce_plane.png)."""
    from oudsim.model.experiments import compare, read_finals
    from oudsim.model.results_folder import atomic_write

    with clear_errors():
        if from_dir is not None:
            out = out or from_dir
            finals = read_finals(from_dir)
            names = [str(base), *others]
            missing = [n for n in names if n not in set(finals["scenario"])]
            if missing:
                fail(
                    f"{from_dir} has no replicates of {', '.join(missing)}; "
                    f"it has {', '.join(dict.fromkeys(finals['scenario']))}"
                )
            result = None
        else:
            out = out or Path("results")
            sets = _parse_sets(set_)
            result = _run(
                ctx,
                [base, *others],
                replicates=replicates,
                years=years,
                population=population,
                seed=seed,
                workers=workers,
                scheduler=scheduler,
                out=out,
                sets=sets,
                resume=resume,
                overwrite=overwrite,
                share_burn_in=share_burn_in,
                warm_start=warm_start,
                posterior=posterior,
            )
            finals = result.finals
            names = [s.name for s in result.scenarios]
        comparison = compare(finals, names[0], names[1:])
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "comparison.csv", lambda tmp: comparison.to_csv(tmp, index=False))
    n = int(comparison["n"].min()) if len(comparison) else 0
    out_console.print(
        _comparison_table(
            comparison,
            f"Difference from {names[0]}: final-year mean of paired replicates (n = {n}) "
            "and its 95% interval; * excludes zero",
        )
    )
    out_console.print(f"Wrote {out}/comparison.csv.")
    with clear_errors():
        _economic_outputs(from_dir or out, out, names[0], wtp)
    if result is not None:
        _finish(result, out)


def _economic_outputs(source: Path, out: Path, comparator: str, wtp: list[float] | None) -> None:
    """Costs, QALYs, ICERs and NMB against the comparator, from the folder's time series."""
    from oudsim.model import decision
    from oudsim.model.results_folder import atomic_write

    rate = _discount_rate(comparator)
    try:
        outcomes = decision.from_folder(source, rate)
    except (FileNotFoundError, ValueError) as e:
        err_console.print(f"No cost-effectiveness table: {e}.")
        return
    try:
        table = decision.decision_table(outcomes, comparator, wtp or decision.WTP)
    except ValueError as e:
        fail(f"--wtp: {e}" if "willingness" in str(e) else str(e))
    atomic_write(out / "outcomes.csv", lambda tmp: outcomes.to_csv(tmp, index=False))
    atomic_write(out / "cost_effectiveness.csv", lambda tmp: table.to_csv(tmp, index=False))
    if len(table) > 1:
        fig = decision.plane_figure(outcomes, comparator, (wtp or decision.WTP)[len(wtp or decision.WTP) // 2])
        atomic_write(out / "ce_plane.png", lambda tmp: fig.savefig(tmp, format="png"))
    out_console.print(_economics_table(table, rate, wtp or decision.WTP))
    out_console.print(f"Wrote {out}/cost_effectiveness.csv, {out}/outcomes.csv and {out}/ce_plane.png.")


def _discount_rate(comparator: str) -> float:
    from oudsim.model.parameters import Parameters
    from oudsim.scenarios import load_scenario

    try:
        return float(load_scenario(comparator).params.economics.discount_rate)
    except Exception:  # noqa: BLE001 - a folder's own scenario may no longer load: the default rate
        return float(Parameters().economics.discount_rate)


def _economics_table(table: Any, rate: float, wtp: Any) -> Table:
    from oudsim.model.decision import describe_icer

    def interval(row: Any, name: str, digits: int = 0) -> str:
        v, lo, hi = row.get(name), row.get(f"{name}_lo"), row.get(f"{name}_hi")
        if v is None or v != v:
            return "—"
        shown = f"{v:+,.{digits}f}"
        return shown if lo != lo else f"{shown} ({lo:+,.{digits}f} to {hi:+,.{digits}f})"

    mid = float(sorted(wtp)[len(wtp) // 2])
    t = Table(
        title=f"Costs and health per 100,000 people over the horizon, discounted at {rate:.0%} a year; "
        f"differences from {table['comparator'].iloc[0]} with 95% intervals over paired replicates",
        title_justify="left",
        header_style="bold",
    )
    for col in ("scenario", "cost (US$)", "QALYs", "Δ cost (US$)", "Δ QALYs", "ICER (US$/QALY)"):
        t.add_column(col, justify="left" if col == "scenario" else "right")
    t.add_column(f"net benefit at {mid:,.0f}/QALY", justify="right")
    t.add_column("overdose deaths averted", justify="right")
    t.add_column("frontier")
    for _, row in table.iterrows():
        r = row.to_dict()
        icer = describe_icer(r.get("icer", float("nan")), str(r.get("quadrant", "")))
        if r.get("icer_lo") == r.get("icer_lo") and r.get("icer_lo") is not None:
            icer += f" ({r['icer_lo']:,.0f} to {r['icer_hi']:,.0f})"
        t.add_row(
            str(r["scenario"]),
            f"{r['cost']:,.0f}",
            f"{r['qalys']:,.1f}",
            interval(r, "incremental_cost"),
            interval(r, "incremental_qalys", 1),
            icer if r["scenario"] != r["comparator"] else "comparator",
            interval(r, f"inmb_{mid:.0f}"),
            interval(r, "overdose_deaths_averted", 1),
            str(r["frontier"]),
        )
    return t


@app.command()
def psa(
    ctx: typer.Context,
    base: Annotated[str, typer.Argument(help="The comparator scenario (e.g. baseline).")],
    others: Annotated[list[str], typer.Argument(help="Scenarios to evaluate against it.")],
    posterior: Annotated[
        Path,
        typer.Option(
            "--posterior", help="The posterior file to draw parameter sets from (oudsim calibrate --posterior)."
        ),
    ],
    draws: Annotated[
        int, typer.Option("--draws", "-d", min=2, help="Parameter draws; every scenario runs on each.")
    ] = 200,
    years: Years = 10.0,
    population: Population = 10_000,
    seed: Seed = 1,
    workers: Workers = DEFAULT_WORKERS,
    scheduler: Scheduler = None,
    out: Out = None,
    set_: Sets = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    wtp: Annotated[
        list[float] | None,
        typer.Option("--wtp", help="Willingness to pay for the tables, US$ per QALY (repeatable)."),
    ] = None,
) -> None:
    """Probabilistic sensitivity analysis: every scenario on each parameter draw, paired (draw i and
    seed i shared); writes psa.parquet, ceac.csv, evpi.csv, ceac.png and the decision table."""
    import pandas as pd

    from oudsim.model import decision
    from oudsim.model.results_folder import atomic_write

    out = out or Path("results/psa")
    with clear_errors():
        sets = _parse_sets(set_)
        result = _run(
            ctx,
            [base, *others],
            replicates=draws,
            years=years,
            population=population,
            seed=seed,
            workers=workers,
            scheduler=scheduler,
            out=out,
            sets=sets,
            resume=resume,
            overwrite=overwrite,
            posterior=posterior,
            extra_manifest={"psa": {"draws": draws, "posterior": str(posterior)}},
        )
        names = [s.name for s in result.scenarios]
        if not result.finals.empty:
            rate = _discount_rate(names[0])
            outcomes = decision.from_folder(out, rate)
            drawn = result.posterior  # the draws the run used (loaded and checked once, in _run)
            values = pd.DataFrame([{"replicate": r, **drawn.values(r)} for r in range(draws)])
            per_draw = outcomes.merge(values, on="replicate").rename(columns={"replicate": "draw"})
            atomic_write(out / "psa.parquet", lambda tmp: per_draw.to_parquet(tmp, index=False))
            complete = outcomes.groupby("replicate")["scenario"].transform("count") == len(names)
            curves, value = decision.acceptability(outcomes[complete])
            atomic_write(out / "ceac.csv", lambda tmp: curves.to_csv(tmp, index=False))
            atomic_write(out / "evpi.csv", lambda tmp: value.to_csv(tmp, index=False))
            fig = decision.psa_figure(curves, value)
            atomic_write(out / "ceac.png", lambda tmp: fig.savefig(tmp, format="png"))
            table = decision.decision_table(outcomes, names[0], wtp or decision.WTP)
            atomic_write(out / "cost_effectiveness.csv", lambda tmp: table.to_csv(tmp, index=False))
            out_console.print(_economics_table(table, rate, wtp or decision.WTP))
            out_console.print(_acceptability_table(curves, value, wtp or decision.WTP))
            out_console.print(f"Wrote {out}/psa.parquet, ceac.csv, evpi.csv, ceac.png and cost_effectiveness.csv.")
    _finish(result, out)


def _acceptability_table(curves: Any, value: Any, wtp: Any) -> Table:
    import numpy as np

    t = Table(title="Probability of the highest net benefit, and EVPI per 100,000 people", title_justify="left")
    t.add_column("US$ per QALY", justify="right")
    scenarios = list(dict.fromkeys(curves["scenario"]))
    for sc in scenarios:
        t.add_column(str(sc), justify="right")
    t.add_column("EVPI (US$)", justify="right")
    grid = np.sort(curves["wtp"].unique())
    for w in wtp:
        at = float(grid[np.abs(grid - w).argmin()])
        row = curves[curves["wtp"] == at].set_index("scenario")["probability"]
        evpi = float(value.loc[value["wtp"] == at, "evpi"].iloc[0])
        t.add_row(f"{at:,.0f}", *[f"{row[sc]:.0%}" for sc in scenarios], f"{evpi:,.0f}")
    return t


@app.command()
def sweep(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help="The scenario to vary.")],
    grid: Annotated[
        list[str],
        typer.Option("--grid", "-g", help="dotted.name=v1,v2,... (repeatable: every combination is run)."),
    ],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Metrics to show in the printed table (repeatable)."),
    ] = None,
    replicates: Replicates = 4,
    years: Years = 10.0,
    population: Population = 10_000,
    seed: Seed = 1,
    workers: Workers = DEFAULT_WORKERS,
    scheduler: Scheduler = None,
    out: Out = None,
    set_: Sets = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
) -> None:
    """Full factorial sweep of one scenario over parameter grids (files of `run`, and sweep.csv)."""
    import pandas as pd

    from oudsim.model.experiments import grid_variants
    from oudsim.model.metrics import METRIC_NAMES
    from oudsim.model.results_folder import atomic_write

    out = out or Path("results")
    with clear_errors():
        axes: dict[str, list[Any]] = {}
        for item in grid:
            name, eq, values = item.partition("=")
            if not eq or not values.strip():
                fail(f"--grid {item!r}: expected dotted.name=v1,v2,..., e.g. --grid social.isolation_multiplier=1,2")
            axes[name.strip()] = [_parse_value(v.strip()) for v in values.split(",") if v.strip()]
        shown = list(metric or KEY_METRICS)
        unknown = [m for m in shown if m not in METRIC_NAMES]
        if unknown:
            fail(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRIC_NAMES)}")
        sets = _parse_sets(set_)
        base = _scenario_with(scenario, sets)
        try:
            variants = grid_variants(base, axes)
        except ParameterError as e:
            fail(f"--grid: {e}")
        result = _run(
            ctx,
            [v for v, _ in variants],
            replicates=replicates,
            years=years,
            population=population,
            seed=seed,
            workers=workers,
            scheduler=scheduler,
            out=out,
            sets={},
            resume=resume,
            overwrite=overwrite,
            extra_manifest={"sweep": {"scenario": scenario, "grid": axes}},
        )
        values = pd.DataFrame([{"scenario": v.name, **vals} for v, vals in variants])
        table = values.merge(result.summary, on="scenario", how="left")
        atomic_write(out / "sweep.csv", lambda tmp: table.to_csv(tmp, index=False))
    _print_sweep(table, list(axes), shown, len(result.seeds))
    out_console.print(f"Wrote {out}/timeseries.parquet, summary.csv, sweep.csv, replicates.csv, manifest.json.")
    _finish(result, out)


def _scenario_with(name: str, sets: dict[str, Any]) -> Any:
    from oudsim.scenarios import load_scenario

    scenario = load_scenario(name)
    return scenario.with_overrides(sets) if sets else scenario


def _print_sweep(table: Any, axes: list[str], metrics: list[str], replicates: int) -> None:
    from oudsim.model.report import format_band

    t = Table(
        title=f"Sweep: final-year mean (2.5–97.5th percentile across {replicates} replicates)",
        title_justify="left",
        header_style="bold",
    )
    for a in axes:
        t.add_column(a)
    for m in metrics:
        t.add_column(m, justify="right")
    for _, rows in itertools.groupby(table.to_dict("records"), key=lambda r: r["scenario"]):
        rows = list(rows)
        by_metric = {r["metric"]: r for r in rows}
        cells = [str(rows[0][a]) for a in axes]
        for m in metrics:
            r = by_metric.get(m)
            cells.append(format_band(m, r["mean"], r["lo"], r["hi"]) if r else "–")
        t.add_row(*cells)
    out_console.print(t)


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="A run's --out folder.")],
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="Only these metrics (repeatable).")] = None,
) -> None:
    """PNG plots (mean and 95% band over time per scenario) and an HTML page with the tables."""
    from oudsim.model.metrics import METRIC_NAMES
    from oudsim.model.report import build_report

    with clear_errors():
        if not directory.is_dir():
            fail(f"{directory}: no such folder")
        page = build_report(directory, metric)
    count = len(metric) if metric else len(METRIC_NAMES)
    out_console.print(f"Wrote {page} with {count} plots in {page.parent / 'report'}/.")


def _register_other_commands() -> None:
    """``calibrate`` and ``sensitivity`` live in model/cli_analysis.py (owned by calibration work)."""
    try:
        from oudsim.model.cli_analysis import register
    except ModuleNotFoundError as e:  # that module is optional: only its absence is tolerated
        if e.name != "oudsim.model.cli_analysis":
            raise
        return
    register(app)


_register_other_commands()
register_dashboard(app)  # `oudsim dashboard`: model/cli_dashboard.py


def main() -> None:  # pragma: no cover - `python -m oudsim.model.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
