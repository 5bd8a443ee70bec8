"""Reports of a run's folder: one PNG per metric (mean and 95% band over time, per scenario) and
an HTML page showing them with the summary and comparison tables. Also the number formats the
CLI shares.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oudsim.model.metrics import BY_NAME, METRIC_NAMES
from oudsim.model.results_folder import atomic_write, atomic_write_text
from oudsim.model.user_files import read_json, read_parquet, read_table
from oudsim.scenarios import ScenarioError

__all__ = ["FLOW_METRICS", "build_report", "format_band", "format_diff", "format_value", "is_share"]

# Counts and rates of events in a step are spiky at small populations; plots smooth them over half a
# year (the summary already averages the whole final year).
FLOW_METRICS = frozenset({"incidence", "overdoses", "overdose_deaths", "overdose_death_rate", "oud_death_rate"})
SMOOTH_WEEKS = 26


# -- number formats (CLI tables and the HTML page) ------------------------------------------------


def is_share(metric: str) -> bool:
    m = BY_NAME.get(metric)
    return m is not None and m.unit.startswith("share")


def format_value(metric: str, value: float) -> str:
    """Shares as percentages, other quantities to three significant figures."""
    if value is None or not np.isfinite(value):
        return "–"
    if is_share(metric):
        return f"{value * 100:.2f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_band(metric: str, mean: float, lo: float, hi: float) -> str:
    if mean is None or not np.isfinite(mean):
        return "–"
    return f"{format_value(metric, mean)} ({format_value(metric, lo)}–{format_value(metric, hi)})"


def format_diff(metric: str, value: float, unit: bool = True) -> str:
    """A signed difference; shares in percentage points ("pp" unless ``unit`` is False)."""
    if value is None or not np.isfinite(value):
        return "–"
    if is_share(metric):
        return f"{value * 100:+.3g}" + (" pp" if unit else "")
    return f"{value:+,.0f}" if abs(value) >= 1000 else f"{value:+.3g}"


def unit_of(metric: str) -> str:
    m = BY_NAME.get(metric)
    return m.unit if m else ""


# -- the report ----------------------------------------------------------------------------------


def build_report(out_dir: str | Path, metrics: Sequence[str] | None = None) -> Path:
    """Write ``report/<metric>.png`` and ``report.html`` into a run folder; returns the page."""
    out = Path(out_dir)
    series_path = out / "timeseries.parquet"
    summary_path = out / "summary.csv"
    for needed in (series_path, summary_path):
        if not needed.is_file():
            raise ScenarioError(f"{out}: no {needed.name} here; run `oudsim run ... --out {out}` first")
    chosen = list(metrics) if metrics else list(METRIC_NAMES)
    unknown = [m for m in chosen if m not in BY_NAME]
    if unknown:
        raise ScenarioError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRIC_NAMES)}")

    summary = read_table(summary_path)
    missing = sorted({"scenario", "metric", "mean", "lo", "hi", "n"} - set(summary.columns))
    if missing:
        raise ScenarioError(f"{summary_path}: no column {', '.join(missing)}; is it a summary.csv of oudsim run?")
    comparison = read_table(out / "comparison.csv") if (out / "comparison.csv").is_file() else None
    manifest = read_json(out / "manifest.json") if (out / "manifest.json").is_file() else {}
    scenarios = list(dict.fromkeys(summary["scenario"]))

    figures = out / "report"
    figures.mkdir(exist_ok=True)
    images = []
    for metric in chosen:
        bands = metric_bands(series_path, metric)
        png = figures / f"{metric}.png"
        _plot(bands, metric, scenarios, png)
        images.append((metric, png.relative_to(out).as_posix()))

    economics = None
    if (out / "cost_effectiveness.csv").is_file():  # written by `oudsim compare` (and `psa`)
        economics = read_table(out / "cost_effectiveness.csv")
    page = out / "report.html"
    atomic_write_text(page, _html(manifest, summary, comparison, images, scenarios, economics, out))
    return page


def _nmb_columns(table: pd.DataFrame) -> list[str]:
    """The net-benefit columns (inmb_<wtp>), by willingness to pay."""
    names = [c for c in table.columns if c.startswith("inmb_") and not c.endswith(("_lo", "_hi"))]
    return sorted(names, key=lambda c: float(c[5:]))


def economics_rows(table: pd.DataFrame) -> list[list[str]]:
    """The cost-effectiveness table as text: per scenario, cost and QALYs, the differences from the
    comparator with their 95% intervals, the ICER, net benefit and the frontier status."""
    from oudsim.model.decision import describe_icer

    def interval(r: Any, name: str, scale: float = 1.0, digits: int = 0) -> str:
        v = r.get(name)
        if v is None or v != v:
            return "—"
        lo, hi = r.get(f"{name}_lo"), r.get(f"{name}_hi")
        text = f"{v / scale:+,.{digits}f}"
        return text if lo is None or lo != lo else f"{text} ({lo / scale:+,.{digits}f} to {hi / scale:+,.{digits}f})"

    nmb = _nmb_columns(table)
    rows = []
    for _, row in table.iterrows():
        r = row.to_dict()
        comparator = r["scenario"] == r["comparator"]
        icer = "comparator" if comparator else describe_icer(r.get("icer", float("nan")), str(r.get("quadrant", "")))
        if not comparator and r.get("icer_lo") == r.get("icer_lo") and r.get("icer_lo") is not None:
            icer += f" ({r['icer_lo']:,.0f} to {r['icer_hi']:,.0f})"
        rows.append(
            [
                str(r["scenario"]),
                f"{r['cost'] / 1e6:,.1f}",
                f"{r['qalys']:,.0f}",
                interval(r, "incremental_cost", 1e6, 1),
                interval(r, "incremental_qalys"),
                icer,
                *[interval(r, c, 1e6, 1) for c in nmb],
                interval(r, "overdose_deaths_averted", digits=1),
                str(r["frontier"]),
            ]
        )
    return rows


def metric_bands(series_path: Path, metric: str) -> pd.DataFrame:
    """Mean and 2.5–97.5th percentiles across replicates at each step, per scenario."""
    df = read_parquet(series_path, columns=["scenario", "replicate", "step", "year", metric])
    if metric in FLOW_METRICS and len(df) > 1:
        dt_weeks = _dt_weeks(df)
        window = max(int(round(SMOOTH_WEEKS / dt_weeks)), 1)
        df[metric] = df.groupby(["scenario", "replicate"], sort=False)[metric].transform(
            lambda s: s.rolling(window, min_periods=1).mean()
        )
    grouped = df.groupby(["scenario", "step"], sort=False)
    bands = grouped.agg(year=("year", "first"), mean=(metric, "mean"))
    bands["lo"] = grouped[metric].quantile(0.025)
    bands["hi"] = grouped[metric].quantile(0.975)
    return bands.reset_index()


def _dt_weeks(df: pd.DataFrame) -> float:
    steps = df[["step", "year"]].drop_duplicates("step").sort_values("step")
    if len(steps) < 2:
        return 1.0
    return float((steps["year"].iloc[1] - steps["year"].iloc[0]) / (steps["step"].iloc[1] - steps["step"].iloc[0]) * 52)


def _plot(bands: pd.DataFrame, metric: str, scenarios: list[str], png: Path) -> None:
    from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

    info = BY_NAME[metric]
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.9, bottom=0.14)  # fixed margins: constrained layout costs 3x
    ax = fig.add_subplot()
    colours = _colours(len(scenarios))
    scale = 100.0 if is_share(metric) else 1.0
    for colour, scenario in zip(colours, scenarios, strict=True):
        b = bands[bands["scenario"] == scenario]
        if b.empty:
            continue
        ax.plot(b["year"], b["mean"] * scale, color=colour, lw=1.6, label=scenario)
        ax.fill_between(b["year"], b["lo"] * scale, b["hi"] * scale, color=colour, alpha=0.18, lw=0)
    smoothed = f" ({SMOOTH_WEEKS}-week rolling mean)" if metric in FLOW_METRICS else ""
    ax.set_title(f"{info.label}{smoothed}", fontsize=10)
    ax.set_xlabel("years after burn-in")
    ax.set_ylabel("% of " + info.unit.removeprefix("share of ") if scale == 100.0 else info.unit)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    atomic_write(png, lambda tmp: fig.savefig(tmp, format="png"))


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 2) -> str:
    """An HTML table; the first ``text_columns`` columns are labels, the rest numbers."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"name" if i < text_columns else "num"}">{html.escape(c)}</td>' for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_rows(summary: pd.DataFrame, scenarios: list[str]) -> list[list[str]]:
    rows = []
    for metric in dict.fromkeys(summary["metric"]):
        row = [metric, unit_of(metric)]
        for scenario in scenarios:
            hit = summary[(summary["scenario"] == scenario) & (summary["metric"] == metric)]
            row.append(format_band(metric, *hit[["mean", "lo", "hi"]].iloc[0]) if len(hit) else "–")
        rows.append(row)
    return rows


def comparison_rows(comparison: pd.DataFrame) -> list[list[str]]:
    others = list(dict.fromkeys(comparison["scenario"]))
    rows = []
    for metric in dict.fromkeys(comparison["metric"]):
        row = [metric, unit_of(metric)]
        for other in others:
            hit = comparison[(comparison["scenario"] == other) & (comparison["metric"] == metric)].iloc[0]
            mark = " *" if np.isfinite(hit["lo"]) and (hit["lo"] > 0 or hit["hi"] < 0) else ""
            lo, hi = (format_diff(metric, hit[k], unit=False) for k in ("lo", "hi"))
            row.append(f"{format_diff(metric, hit['diff'])} ({lo}, {hi}){mark}")
        rows.append(row)
    return rows


def _html(
    manifest: dict[str, Any],
    summary: pd.DataFrame,
    comparison: pd.DataFrame | None,
    images: list[tuple[str, str]],
    scenarios: list[str],
    economics: pd.DataFrame | None = None,
    out: Path | None = None,
) -> str:
    opts = manifest.get("options", {})
    n = summary["n"].max() if len(summary) else 0
    facts = [
        ("status", manifest.get("status", "unknown")),
        ("scenarios", ", ".join(scenarios)),
        ("replicates", f"{opts.get('replicates', n)} per scenario (seed {opts.get('seed', '?')})"),
        ("years", str(opts.get("years", "?"))),
        ("population", str(opts.get("population") or "scenario default")),
        (
            "oudsim",
            f"{manifest.get('version', '?')}, commit {manifest.get('git_commit') or 'unknown'}",
        ),
        (
            "run",
            f"{manifest.get('timings', {}).get('started', '?')}, "
            f"{manifest.get('timings', {}).get('wall_seconds', '?')} s",
        ),
    ]
    facts_html = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>oudsim report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;color:#222;padding:0 1em}",
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}",
        "th,td{border-bottom:1px solid #ddd;padding:0.3em 0.7em;text-align:left}",
        "td.num{font-variant-numeric:tabular-nums;white-space:nowrap}",
        "dl{display:grid;grid-template-columns:max-content 1fr;gap:0.2em 1em}dt{font-weight:600}",
        ".figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1em}",
        ".figs img{width:100%;border:1px solid #eee}",
        "</style></head><body>",
        "<h1>oudsim report</h1>",
        f"<dl>{facts_html}</dl>",
        "<h2>Summary</h2>",
        "<p>Mean over the final simulated year, with the 2.5th–97.5th percentile range across replicates.</p>",
        _table(["metric", "unit", *scenarios], summary_rows(summary, scenarios)),
    ]
    if comparison is not None and len(comparison):
        base = comparison["base"].iloc[0]
        parts += [
            f"<h2>Difference from {html.escape(str(base))}</h2>",
            "<p>Mean paired difference over the final year (same seeds), with its 95% confidence "
            "interval; "
            "* marks an interval that excludes zero. Shares are in percentage points (pp).</p>",
            _table(
                ["metric", "unit", *dict.fromkeys(comparison["scenario"])],
                comparison_rows(comparison),
            ),
        ]
    if economics is not None and len(economics):
        nmb = _nmb_columns(economics)
        parts += [
            f"<h2>Costs and health against {html.escape(str(economics['comparator'].iloc[0]))}</h2>",
            "<p>Per 100,000 people over the horizon, discounted; differences with the 95% interval of the "
            "mean over paired replicates (docs/economics.md).</p>",
            _table(
                ["scenario", "cost (US$ M)", "QALYs", "Δ cost (US$ M)", "Δ QALYs", "ICER (US$/QALY)"]
                + [f"net benefit at {int(c[5:]):,}/QALY (US$ M)" for c in nmb]
                + ["overdose deaths averted", "frontier"],
                economics_rows(economics),
                text_columns=1,
            ),
        ]
        if out is not None and (out / "ce_plane.png").is_file():
            parts.append(
                "<figure><img src='ce_plane.png' style='max-width:760px' alt='Cost-effectiveness plane: each "
                "scenario's incremental cost against its incremental QALYs'><figcaption>Cost-effectiveness "
                "plane</figcaption></figure>"
            )
    parts.append("<h2>Over time</h2><p>Mean and 2.5th–97.5th percentile band across replicates.</p>")
    parts.append("<div class='figs'>")
    for metric, src in images:
        parts.append(
            f"<figure><img src='{html.escape(src)}' alt='{html.escape(BY_NAME[metric].label)}'>"
            f"<figcaption>{html.escape(metric)}</figcaption></figure>"
        )
    parts.append("</div></body></html>")
    return "\n".join(parts) + "\n"
