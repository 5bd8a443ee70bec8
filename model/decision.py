"""Decision outputs of a comparison: what each scenario costs and buys against a comparator.

From a results folder's time series (model.accounting gives each step's costs and QALYs), per
scenario and per 100,000 people over the horizon, discounted to week 0:

    incremental cost      = mean over paired replicates of (cost - comparator's cost)
    incremental QALYs     = the same for QALYs (lived minus lost at deaths)
    ICER                  = incremental cost / incremental QALYs (ratio of the mean differences)
    incremental NMB(wtp)  = wtp x incremental QALYs - incremental cost
    deaths, overdoses averted and life-years gained = comparator's minus the scenario's

Replicate i of every scenario shares its seed, so differences are paired: intervals are the 95%
t-intervals of the mean paired difference; the ICER's is a percentile bootstrap over the pairs (left
empty when the QALY difference's sign is not settled, where a ratio has no interval). The efficiency
frontier (model.economics.icer_table) is over every scenario's mean cost and QALYs. These intervals are
over replicates with one parameter set: chance, not parameter uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from oudsim.model import accounting, economics

WTP = (50_000.0, 100_000.0, 150_000.0)  # US$ per QALY (E29)
BOOTSTRAP = 4_000  # resamples of the pairs for the ICER's interval
BOOTSTRAP_SEED = 20_240_601  # fixed: the same folder gives the same interval
CONFIDENCE = 0.95

# Reported differences: (outcome column, name of the difference, sign: +1 scenario - comparator, -1 averted)
DIFFERENCES = (
    ("cost", "incremental_cost", 1),
    ("qalys", "incremental_qalys", 1),
    ("life_years_lost", "life_years_gained", -1),
    ("deaths", "overdose_deaths_averted", -1),
    ("overdoses", "overdoses_averted", -1),
)


def paired_outcomes(outcomes: pd.DataFrame, comparator: str) -> pd.DataFrame:
    """Per scenario other than the comparator and per shared replicate: the differences of DIFFERENCES."""
    base = outcomes[outcomes["scenario"] == comparator].set_index("replicate")
    if base.empty:
        raise ValueError(f"no finished replicates of the comparator '{comparator}'")
    rows = []
    for scenario, g in outcomes[outcomes["scenario"] != comparator].groupby("scenario", sort=False):
        g = g.set_index("replicate")
        common = g.index.intersection(base.index)
        if "seed" in g and (g.loc[common, "seed"] != base.loc[common, "seed"]).any():
            raise ValueError(f"'{scenario}' and '{comparator}' were run with different seeds: they cannot be paired")
        d = pd.DataFrame({"scenario": scenario, "replicate": common})
        for column, name, sign in DIFFERENCES:
            d[name] = sign * (g.loc[common, column].to_numpy() - base.loc[common, column].to_numpy())
        rows.append(d)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _t_interval(x: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats

    mean = float(np.mean(x)) if x.size else np.nan
    if x.size < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, x.size - 1) * np.std(x, ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def _icer_interval(dc: np.ndarray, dq: np.ndarray) -> tuple[float, float]:
    """Percentile bootstrap of the ratio of mean differences; NaN when resampled QALY differences change sign."""
    if dc.size < 2:
        return np.nan, np.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, dc.size, size=(BOOTSTRAP, dc.size))
    mq = dq[idx].mean(axis=1)
    if not (np.all(mq > 0) or np.all(mq < 0)):
        return np.nan, np.nan
    ratio = dc[idx].mean(axis=1) / mq
    lo, hi = np.percentile(ratio, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
    return float(lo), float(hi)


def decision_table(outcomes: pd.DataFrame, comparator: str, wtp: Sequence[float] = WTP) -> pd.DataFrame:
    """One row per scenario: mean cost and QALYs, the differences from the comparator with intervals,
    the ICER, incremental NMB at each WTP, and the scenario's place on the efficiency frontier."""
    wtp = [float(w) for w in wtp]
    if not wtp or any(not np.isfinite(w) or w <= 0 for w in wtp):
        raise ValueError(f"willingness to pay must be positive US$ per QALY, got {wtp}")
    pairs = paired_outcomes(outcomes, comparator)
    means = outcomes.groupby("scenario", sort=False)[["cost", "qalys"]].mean()
    frontier = economics.icer_table(means.reset_index(), cost="cost", effect="qalys", name="scenario")
    status = frontier.set_index("scenario")["status"]
    rows = []
    for scenario in means.index:
        row: dict[str, object] = {
            "scenario": scenario,
            "comparator": comparator,
            "cost": float(means.loc[scenario, "cost"]),
            "qalys": float(means.loc[scenario, "qalys"]),
            "frontier": status[scenario],
        }
        if scenario == comparator:
            row["pairs"] = int((outcomes["scenario"] == comparator).sum())
            rows.append(row)
            continue
        p = pairs[pairs["scenario"] == scenario]
        row["pairs"] = len(p)
        for _, name, _ in DIFFERENCES:
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = _t_interval(p[name].to_numpy(dtype=float))
        dc, dq = p["incremental_cost"].to_numpy(dtype=float), p["incremental_qalys"].to_numpy(dtype=float)
        row["icer"] = _icer(float(dc.mean()), float(dq.mean())) if len(p) else np.nan
        row["quadrant"] = _quadrant(float(dc.mean()), float(dq.mean())) if len(p) else ""
        row["icer_lo"], row["icer_hi"] = _icer_interval(dc, dq)
        for w in wtp:
            key = f"inmb_{w:.0f}"
            row[key], row[f"{key}_lo"], row[f"{key}_hi"] = _t_interval(w * dq - dc)
        rows.append(row)
    return pd.DataFrame(rows)


def _icer(dc: float, dq: float) -> float:
    # A scenario that costs less and gains health dominates: an ICER would be negative and misleading.
    if dq > 0 and dc <= 0:
        return -np.inf  # shown as "dominant" (cost-saving)
    if dq <= 0 and dc >= 0:
        return np.inf  # shown as "dominated"
    return dc / dq


def _quadrant(dc: float, dq: float) -> str:
    """Where the mean difference lies on the cost-effectiveness plane."""
    if dq > 0:
        return "dominant" if dc <= 0 else "costs more, gains health"
    return "dominated" if dc >= 0 else "saves money, loses health"


def describe_icer(icer: float, quadrant: str = "") -> str:
    if icer == -np.inf:
        return "cost-saving (dominant)"
    if icer == np.inf:
        return "dominated"
    if not np.isfinite(icer):
        return "—"
    if quadrant == "saves money, loses health":
        return f"saves {icer:,.0f} per QALY lost"
    return f"{icer:,.0f}"


def plane_figure(outcomes: pd.DataFrame, comparator: str, wtp: float | None = WTP[1]):
    """The cost-effectiveness plane: each replicate pair's difference and each scenario's mean."""
    from matplotlib.figure import Figure

    pairs = paired_outcomes(outcomes, comparator)
    diffs = pairs.rename(columns={"incremental_cost": "cost", "incremental_qalys": "qaly"})
    fig = Figure(figsize=(7.5, 5.5), dpi=120)
    ax = fig.add_subplot()
    economics.ce_plane(ax, diffs[["scenario", "cost", "qaly"]], wtp=wtp)
    ax.set_title(
        f"Against {comparator}: per 100,000 people over the horizon, discounted\n"
        "small points: paired replicates; large: their mean",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def from_folder(folder: str | Path, discount_rate: float) -> pd.DataFrame:
    """Each replicate's horizon outcomes from a results folder's timeseries.parquet."""
    path = Path(folder) / "timeseries.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no time series to compute costs and QALYs from")
    from oudsim.model.user_files import read_parquet

    ts = read_parquet(path)
    return accounting.horizon_outcomes(ts, discount_rate)


# -- probabilistic sensitivity analysis --------------------------------------------------------------

WTP_GRID = np.linspace(5_000.0, 200_000.0, 40)  # US$ per QALY: where acceptability curves are drawn


def acceptability(outcomes: pd.DataFrame, wtp: Sequence[float] = WTP_GRID) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cost-effectiveness acceptability curves and the expected value of perfect information (per
    100,000 people, in US$) over the draws of a PSA (one replicate per draw)."""
    draws = outcomes.rename(columns={"replicate": "draw", "qalys": "qaly"})[["scenario", "draw", "cost", "qaly"]]
    return economics.ceac(draws, np.asarray(wtp)), economics.evpi(draws, np.asarray(wtp))


def psa_figure(curves: pd.DataFrame, value: pd.DataFrame):
    """Acceptability curves above, EVPI below, against willingness to pay."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 6.5), dpi=120)
    ax, bx = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for i, (scenario, g) in enumerate(curves.groupby("scenario", sort=False)):
        ax.plot(
            g["wtp"], g["probability"], color=economics.OKABE_ITO[i % len(economics.OKABE_ITO)], lw=2, label=scenario
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Probability of the highest net benefit")
    ax.set_title("Cost-effectiveness acceptability curves (share of parameter draws)", fontsize=10)
    ax.legend(frameon=False, fontsize=9)
    ax.grid(True, color="#E5E5E5")
    bx.plot(value["wtp"], value["evpi"], color="#000000", lw=2)
    bx.set_ylabel("EVPI (US$ per 100,000 people)")
    bx.set_xlabel("Willingness to pay (US$ per QALY)")
    bx.grid(True, color="#E5E5E5")
    for a in (ax, bx):
        a.xaxis.set_major_formatter(lambda x, _: f"{x:,.0f}")
    bx.yaxis.set_major_formatter(lambda x, _: f"{x:,.0f}")
    fig.tight_layout()
    return fig
