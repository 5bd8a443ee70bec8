"""The Compare page (analysts): replicates of scenarios in the background, mean and 95% band per
scenario for a chosen metric, the summary table, CSV downloads."""

from __future__ import annotations

import html
import os

import numpy as np
import pandas as pd
import solara
import solara.lab
from matplotlib.figure import Figure

from oudsim.model.dashboard.drawing import LINE_COLOURS, LINE_STYLES
from oudsim.model.dashboard.ui import CSS, DownloadButton, Img, Notice, RawHTML, StyleSheet, figure_png, png_src
from oudsim.model.metrics import BY_NAME, CATALOGUE

# -- Compare ----------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised from the progress callback to end a cancelled comparison early."""


progress_counts = solara.reactive((0, 0))  # runs done, runs in all (per browser session)


@solara.lab.task(prefer_threaded=True)
def comparison(
    names: list[str], replicates: int, years: float, population: int, seed: int, workers: int
) -> pd.DataFrame:
    """Replicates of each scenario, in a background thread so the page stays responsive."""
    from oudsim.model.experiments import run_replicates

    def progress(done: int, total: int) -> None:
        if not comparison.is_current():  # cancelled, or superseded by a newer run
            raise _Stop
        progress_counts.set((done, total))
        comparison.progress = 100.0 * done / max(total, 1)

    return run_replicates(
        names, replicates=replicates, years=years, population=population, seed=seed, workers=workers, progress=progress
    )


def band(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and 2.5–97.5th percentile band across replicates, per scenario and step (as ``summarise``)."""
    g = df.groupby(["scenario", "year"], sort=False)[metric]
    out = g.agg(mean="mean", lo=lambda x: np.percentile(x, 2.5), hi=lambda x: np.percentile(x, 97.5))
    return out.reset_index()


def metric_scale(metric: str) -> tuple[float, str]:
    """Shares are shown as percentages; other units as they are."""
    m = BY_NAME[metric]
    return (100.0, "% (" + m.unit + ")") if m.kind == "share" and "score" not in m.unit else (1.0, m.unit)


def comparison_figure(df: pd.DataFrame, metric: str) -> Figure:
    scale, unit = metric_scale(metric)
    fig = Figure(figsize=(8.4, 4.0), dpi=100, layout="constrained")
    ax = fig.subplots()
    b = band(df, metric)
    for i, (name, g) in enumerate(b.groupby("scenario", sort=False)):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        ax.fill_between(g["year"], g["lo"] * scale, g["hi"] * scale, color=colour, alpha=0.18, lw=0)
        ax.plot(
            g["year"],
            g["mean"] * scale,
            color=colour,
            ls=LINE_STYLES[i % len(LINE_STYLES)],
            lw=1.8,
            label=f"{name} (mean, 95% band)",
        )
    ax.set_title(BY_NAME[metric].label, loc="left", fontsize=10, fontweight="bold")
    ax.set_xlabel("years since week 0")
    ax.set_ylabel(unit)
    ax.grid(True, color="#E5E5E5", lw=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False)
    return fig


def _fmt(value: float, metric: str) -> str:
    scale, _ = metric_scale(metric)
    v = value * scale
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


def summary_table_html(summary: pd.DataFrame, chosen: str) -> str:
    """Rows: metrics; columns: scenarios; cells: mean (95% band) over the final year."""
    scenarios = list(dict.fromkeys(summary["scenario"]))
    head = "".join(f"<th>{html.escape(s)}</th>" for s in scenarios)
    body = []
    for m in CATALOGUE:
        part = summary[summary["metric"] == m.name].set_index("scenario")
        if part.empty:
            continue
        cells = "".join(
            f"<td>{_fmt(part.at[s, 'mean'], m.name)} ({_fmt(part.at[s, 'lo'], m.name)}–"
            f"{_fmt(part.at[s, 'hi'], m.name)})</td>"
            if s in part.index
            else "<td></td>"
            for s in scenarios
        )
        cls = ' class="chosen"' if m.name == chosen else ""
        unit = metric_scale(m.name)[1]
        body.append(f"<tr{cls}><td>{html.escape(m.label)} <small>[{html.escape(unit)}]</small></td>{cells}</tr>")
    return (
        f'<table class="oud-table" data-testid="summary-table"><tr><th>Metric, final-year mean (95% band)'
        f"</th>{head}</tr>{''.join(body)}</table>"
    )


@solara.component
def Compare() -> None:
    from oudsim.scenarios import list_scenarios

    StyleSheet(CSS)
    scenarios = solara.use_memo(lambda: {s.name: s.description for s in list_scenarios()}, [])
    all_names = list(scenarios)
    chosen = solara.use_reactive([n for n in ("baseline", "expand_moud") if n in scenarios])
    replicates = solara.use_reactive(3)
    years = solara.use_reactive(2)
    population = solara.use_reactive(1_000)
    seed = solara.use_reactive(1)
    workers = solara.use_reactive(1)
    metric = solara.use_reactive("oud_prevalence")

    with solara.AppBarTitle():
        solara.Text("oudsim · Compare")
    with solara.Sidebar():
        with solara.Card("Scenarios", margin=0):
            solara.SelectMultiple(
                "Scenarios to compare", values=chosen.value, all_values=all_names, on_value=chosen.set
            )
            for name in chosen.value:
                RawHTML(
                    tag="div",
                    unsafe_innerHTML=f"<b>{html.escape(name)}</b>: {html.escape(scenarios.get(name, ''))}",
                    classes=["oud-explainer"],
                )
        with solara.Card("Runs", margin=0):
            solara.SliderInt("Replicates per scenario (runs)", value=replicates, min=1, max=30, thumb_label="always")
            solara.SliderInt("Horizon (years after burn-in)", value=years, min=1, max=20, thumb_label="always")
            solara.Select("Population (people)", value=population, values=[300, 500, 1_000, 2_000, 5_000, 10_000])
            solara.InputInt("Random seed (whole number)", value=seed)
            solara.SliderInt(
                "Worker processes", value=workers, min=1, max=max(os.cpu_count() or 1, 1), thumb_label="always"
            )
            RawHTML(
                tag="div",
                classes=["oud-explainer"],
                unsafe_innerHTML=(
                    "Replicate i of every scenario shares a seed, so scenarios are compared on the same luck. "
                    "Each run starts with the scenario's burn-in (10 years by default) before week 0, on "
                    "this server's CPU: more people, replicates or years take longer."
                ),
            )

            def start() -> None:
                names = list(chosen.value)
                progress_counts.set((0, len(names) * replicates.value))
                comparison(
                    names,
                    replicates.value,
                    float(years.value),
                    int(population.value),
                    int(seed.value or 0),
                    workers.value,
                )

            with solara.Row():
                solara.Button(
                    "Run comparison", color="primary", disabled=comparison.pending or not chosen.value, on_click=start
                )
                solara.Button("Cancel", disabled=not comparison.pending, on_click=comparison.cancel)

    with solara.Column(gap="10px"):
        # Plain HTML, not solara.Markdown: Markdown loads KaTeX from a CDN that solara-assets lacks.
        RawHTML(
            tag="div",
            unsafe_innerHTML=(
                "Pick scenarios, the number of replicates and the horizon on the left, then press "
                "<b>Run comparison</b>. Runs go on in the background; the page stays usable."
            ),
        )
        if comparison.pending:
            done, total = progress_counts.value
            solara.ProgressLinear(value=comparison.progress or 0)
            RawHTML(
                tag="div",
                unsafe_innerHTML=f"Running: {done} of {total} runs done",
                attributes={"data-testid": "progress-text"},
            )
        if comparison.error:
            Notice("error", f"The comparison failed: {comparison.exception}")
        if comparison.cancelled:
            Notice("warning", "Cancelled.")
        df = comparison.value if comparison.finished else None
        if df is not None and not df.empty:
            ComparisonResults(df, metric)


@solara.component
def ComparisonResults(df: pd.DataFrame, metric: solara.Reactive[str]) -> None:
    from oudsim.model.experiments import summarise

    summary = solara.use_memo(lambda: summarise(df), [df])
    labels = {m.label: m.name for m in CATALOGUE}
    reps = df.groupby("scenario")["replicate"].nunique()
    Notice("success", f"Finished: {', '.join(f'{s} ({n} runs)' for s, n in reps.items())}.")
    solara.Select(
        "Metric",
        value=BY_NAME[metric.value].label,
        values=list(labels),
        on_value=lambda label: metric.set(labels[label]),
    )
    png = solara.use_memo(lambda: figure_png(comparison_figure(df, metric.value)), [df, metric.value])
    with solara.Div(style={"max-width": "860px"}):
        Img(
            png_src(png),
            "compare-chart",
            f"{BY_NAME[metric.value].label}: mean and 95% band per scenario over time",
        )
    RawHTML(
        tag="div",
        unsafe_innerHTML=(
            "Lines: mean across replicates; bands: 2.5th–97.5th percentile across replicates (95% band). "
            "Table: the same, for each replicate's mean over the final simulated year."
        ),
        classes=["oud-explainer"],
    )
    RawHTML(tag="div", unsafe_innerHTML=summary_table_html(summary, metric.value), style="overflow-x: auto")
    with solara.Row():
        DownloadButton.element(
            label="Download every run (CSV)",
            filename="oudsim-runs.csv",
            testid="download-runs",
            make=lambda: df.to_csv(index=False).encode(),
        )
        DownloadButton.element(
            label="Download summary (CSV)",
            filename="oudsim-summary.csv",
            testid="download-summary",
            make=lambda: summary.to_csv(index=False).encode(),
        )
