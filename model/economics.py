"""Decision analysis for health economics: discounting, QALYs, the efficiency frontier (ICERs), net
monetary benefit, acceptability curves, the expected value of perfect information, and the
cost-effectiveness plane, reported the way a CHEERS-style analysis reports them.

The equations, in words:

- A value at time t years after the start is worth value / (1 + rate) ** t today (annual
  compounding; t may be fractional, e.g. week w is t = w / 52).
- Discounted life-years of a remaining life expectancy L: one for the year now, 1 / (1 + rate) for
  the next, and so on for the floor(L) whole years, plus the fractional remainder of L discounted
  at floor(L). With a rate of 0 this is L.
- QALYs of a life course: the sum over its spells of utility times duration, each spell discounted
  at its start.
- The efficiency frontier: sort strategies by cost; drop the strongly dominated ones (another
  costs no more and gives at least as much effect); then, while the incremental cost-effectiveness
  ratio (ICER: extra cost / extra effect vs the previous strategy on the frontier) does not
  increase along the frontier, drop the extendedly dominated strategies (an ICER above the next
  one's: a mix of its neighbours would do better).
- Net monetary benefit (NMB) at a willingness to pay (WTP) per unit of effect: effect * WTP - cost.
- Acceptability curve: at each WTP, the share of draws in which a strategy has the highest NMB.
- Expected value of perfect information (EVPI): the mean over draws of the best NMB in that draw,
  minus the best mean NMB, i.e. the mean loss from choosing on expected values.

Pure functions of numbers, arrays and data frames; nothing here knows about the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# US Second Panel on Cost-Effectiveness in Health and Medicine (Sanders et al., JAMA 2016): 3% a
# year for costs and health effects. Callers pass the rate explicitly; this is the usual choice.
DISCOUNT_RATE = 0.03

# Default column names of the tables these functions read.
COST = "cost"
EFFECT = "qaly"
NAME = "scenario"
DRAW = "draw"

# The status of a strategy in icer_table.
REFERENCE = "reference"
FRONTIER = "frontier"
DOMINATED = "dominated"
EXTENDEDLY_DOMINATED = "extendedly dominated"

# Relative tolerance under which two ICERs count as equal: collinear strategies stay on the frontier
# instead of being dropped for rounding noise in the last bits of a division.
ICER_RTOL = 1e-9

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
MEAN_MARKERS: tuple[str, ...] = ("o", "s", "^", "D")  # a strategy's mean: its shape, with its colour
OKABE_ITO: tuple[str, ...] = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
DRAW_ALPHA = 0.25  # per-draw points: translucent, so that overlapping clouds stay readable
DRAW_SIZE = 12.0  # scatter marker area (points^2)
MEAN_SIZE = 10.0  # mean marker diameter (points)
AXIS_COLOUR = "0.4"
THRESHOLD_COLOUR = "0.2"


# --- discounting and QALYs -------------------------------------------------------------------


def _check_rate(rate: float) -> float:
    rate = float(rate)
    if not np.isfinite(rate) or rate < 0:
        raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
    return rate


def _check_non_negative(values: np.ndarray | float, field: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{field} must be finite (no NaN or infinity)")
    if np.any(arr < 0):
        raise ValueError(f"{field} must be >= 0, got a minimum of {arr.min()!r}")
    return arr


def discount_factors(years: np.ndarray, rate: float) -> np.ndarray:
    """1 / (1 + rate) ** years, for times ``years`` (>= 0, fractional allowed) since the start."""
    rate = _check_rate(rate)
    t = _check_non_negative(years, "years")
    return (1.0 + rate) ** -t


def present_value(values: np.ndarray, years: np.ndarray, rate: float) -> float:
    """Sum of ``values`` each discounted at its time ``years`` (arrays broadcast together)."""
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite (no NaN or infinity)")
    return float(np.sum(v * discount_factors(years, rate)))


def annuity_years(remaining_years: np.ndarray | float, rate: float) -> np.ndarray:
    """Discounted life-years of a remaining life expectancy L (vectorised over L):
    sum_{k=0}^{floor(L)-1} 1/(1+r)^k + frac(L)/(1+r)^floor(L); equals L at rate 0.

    Each year counts at its start (as ``discount_factors`` at 0, 1, 2, ...), so the first year is
    undiscounted. For life-years lost at a death at time t, multiply by ``discount_factors(t, rate)``;
    for QALYs lost, also by the utility the person would have had.
    """
    rate = _check_rate(rate)
    life = _check_non_negative(remaining_years, "remaining_years")
    if rate == 0.0:
        return life.copy()
    whole = np.floor(life)
    v = 1.0 / (1.0 + rate)
    # Closed form of the geometric sum over whole years: (1 - v^n) / (1 - v).
    return (1.0 - v**whole) / (1.0 - v) + (life - whole) * v**whole


def qalys(utilities: np.ndarray, durations_years: np.ndarray, start_years: np.ndarray, rate: float) -> float:
    """QALYs of a life course of consecutive spells: sum of utility * duration, each spell discounted
    at its start time.

    Discounting a spell at its start rather than over its length overstates a long spell slightly;
    the model's spells are one week long, where the difference is negligible (under 0.03% at 3%).
    Utilities may be negative (states worse than death); durations and start times must be >= 0.
    """
    u = np.asarray(utilities, dtype=float)
    if not np.all(np.isfinite(u)):
        raise ValueError("utilities must be finite (no NaN or infinity)")
    d = _check_non_negative(durations_years, "durations_years")
    return float(np.sum(u * d * discount_factors(start_years, rate)))


# --- validation of tables and WTP ------------------------------------------------------------


def _check_table(df: pd.DataFrame, numeric: Sequence[str], keys: Sequence[str], where: str) -> None:
    """Refuse a table that is empty, lacks a column, or has NaN/non-finite values in a numeric column
    or NaN in a key column, naming the field."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in (*keys, *numeric) if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; the table has {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{where}: the table is empty (no strategies)")
    for column in keys:
        if df[column].isna().any():
            raise ValueError(f"{where}: column {column!r} has missing (NaN) values")
    for column in numeric:
        try:
            values = pd.to_numeric(df[column]).to_numpy(dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: column {column!r} must be numeric") from err
        if np.isnan(values).any():
            raise ValueError(f"{where}: column {column!r} has {int(np.isnan(values).sum())} NaN value(s)")
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: column {column!r} has infinite value(s)")


def _check_wtp(wtp: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """WTP values as a 1-D float array; each must be finite and > 0."""
    w = np.atleast_1d(np.asarray(wtp, dtype=float))
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"wtp must be a number or a non-empty 1-D array, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"wtp must be finite and > 0, got {w.tolist()}")
    return w


# --- efficiency frontier ---------------------------------------------------------------------


def icer_table(df: pd.DataFrame, cost: str = COST, effect: str = EFFECT, name: str = NAME) -> pd.DataFrame:
    """The efficiency frontier of strategies given one row each with mean ``cost`` and ``effect``.

    Returns every row (other columns kept), sorted by cost (then effect descending, then name), with
    ``incremental_cost``, ``incremental_effect`` and ``icer`` vs the previous strategy on the frontier
    (NaN for the reference and for dominated strategies), and ``status``: "reference" (the cheapest
    strategy on the frontier), "frontier", "dominated" (another costs no more and gives at least as
    much effect, one strictly) or "extendedly dominated" (its ICER exceeds that of the next more
    effective frontier strategy).

    Ties, deterministically: of strategies with identical cost and effect the first by name stays and
    the others are "dominated"; strategies with equal ICERs (collinear) all stay on the frontier.
    """
    _check_table(df, numeric=(cost, effect), keys=(name,), where="icer_table")
    if df[name].duplicated().any():
        dupes = sorted(map(str, df.loc[df[name].duplicated(), name].unique()))
        raise ValueError(f"icer_table: column {name!r} has duplicated strategy names {dupes}")

    table = df.copy()
    table[cost] = pd.to_numeric(table[cost]).astype(float)
    table[effect] = pd.to_numeric(table[effect]).astype(float)
    # Sorting by name last makes the result independent of the input's row order.
    table = table.sort_values([cost, effect, name], ascending=[True, False, True], kind="mergesort")
    table = table.reset_index(drop=True)
    c = table[cost].to_numpy()
    e = table[effect].to_numpy()
    n = len(table)

    # Strong dominance. In this order every row before row i costs no more than it, and a row after it
    # that costs the same gives less effect (or is its exact twin later by name). So row i is dominated
    # exactly when some earlier row gives at least as much effect.
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(e)[:-1]))
    status = np.where(e <= best_before, DOMINATED, FRONTIER).astype(object)

    # Extended dominance. The survivors have strictly increasing cost and effect; drop every strategy
    # whose ICER exceeds the next one's (it lies above the line joining its neighbours) and repeat,
    # since a removal changes its neighbour's ICER.
    frontier = np.flatnonzero(status == FRONTIER)
    while len(frontier) > 2:
        ratios = np.diff(c[frontier]) / np.diff(e[frontier])
        worse = (ratios[:-1] > ratios[1:]) & ~np.isclose(ratios[:-1], ratios[1:], rtol=ICER_RTOL, atol=0.0)
        if not worse.any():
            break
        status[frontier[1:-1][worse]] = EXTENDEDLY_DOMINATED
        frontier = np.flatnonzero(status == FRONTIER)

    status[frontier[0]] = REFERENCE
    incremental_cost = np.full(n, np.nan)
    incremental_effect = np.full(n, np.nan)
    incremental_cost[frontier[1:]] = np.diff(c[frontier])
    incremental_effect[frontier[1:]] = np.diff(e[frontier])
    table["incremental_cost"] = incremental_cost
    table["incremental_effect"] = incremental_effect
    table["icer"] = incremental_cost / incremental_effect
    table["status"] = status.astype(str)
    return table


# --- net monetary benefit --------------------------------------------------------------------


def net_monetary_benefit(
    cost: np.ndarray | float, effect: np.ndarray | float, wtp: np.ndarray | float
) -> np.ndarray | float:
    """NMB = effect * wtp - cost. ``cost`` and ``effect`` broadcast together (shape S); an array of
    WTP values (shape W) gives shape (W, *S), one row per WTP. A float when all inputs are scalars."""
    w = np.asarray(wtp, dtype=float)
    _check_wtp(w)
    nmb = np.multiply.outer(w, np.asarray(effect, dtype=float)) - np.asarray(cost, dtype=float)
    return float(nmb) if nmb.ndim == 0 else nmb


def incremental_nmb(
    cost: np.ndarray | float,
    effect: np.ndarray | float,
    comparator_cost: np.ndarray | float,
    comparator_effect: np.ndarray | float,
    wtp: np.ndarray | float,
) -> np.ndarray | float:
    """NMB of a strategy minus that of its comparator: (effect - comparator) * wtp - (cost - comparator).
    Shapes as in ``net_monetary_benefit``."""
    c = np.asarray(cost, dtype=float) - np.asarray(comparator_cost, dtype=float)
    e = np.asarray(effect, dtype=float) - np.asarray(comparator_effect, dtype=float)
    return net_monetary_benefit(c, e, wtp)


# --- probabilistic analysis ------------------------------------------------------------------


def _panel(
    draws: pd.DataFrame, cost: str, effect: str, name: str, draw: str, where: str
) -> tuple[np.ndarray, np.ndarray, list, pd.Index]:
    """Costs and effects as (draw x strategy) matrices, strategies in order of first appearance, and
    the draws in row order. Every draw must hold every strategy exactly once."""
    _check_table(draws, numeric=(cost, effect), keys=(draw, name), where=where)
    if draws.duplicated([draw, name]).any():
        raise ValueError(f"{where}: a ({draw!r}, {name!r}) pair appears more than once")
    names = list(pd.unique(draws[name]))
    costs = draws.pivot(index=draw, columns=name, values=cost).reindex(columns=names)
    effects = draws.pivot(index=draw, columns=name, values=effect).reindex(columns=names)
    if costs.isna().any().any():
        incomplete = costs.index[costs.isna().any(axis=1)].tolist()
        raise ValueError(f"{where}: {draw!r} value(s) {incomplete[:5]} lack some strategies in {name!r}")
    return costs.to_numpy(dtype=float), effects.to_numpy(dtype=float), names, costs.index


def ceac(
    draws: pd.DataFrame,
    wtp: np.ndarray | Sequence[float] | float,
    cost: str = COST,
    effect: str = EFFECT,
    name: str = NAME,
    draw: str = DRAW,
) -> pd.DataFrame:
    """Cost-effectiveness acceptability curves from per-draw outcomes (one row per draw x strategy).

    For each WTP, the share of draws in which each strategy has the highest NMB (draws weigh the
    same). A draw where several strategies tie for the highest NMB counts an equal fraction for each,
    so the probabilities sum to 1 at every WTP. Columns: wtp, <name>, probability.
    """
    w = _check_wtp(wtp)
    c, e, names, _ = _panel(draws, cost, effect, name, draw, where="ceac")
    rows = []
    for value in w:
        nmb = value * e - c
        best = nmb == nmb.max(axis=1, keepdims=True)
        share = (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
        rows.append(pd.DataFrame({"wtp": value, name: names, "probability": share}))
    return pd.concat(rows, ignore_index=True)


def evpi(
    draws: pd.DataFrame,
    wtp: np.ndarray | Sequence[float] | float,
    cost: str = COST,
    effect: str = EFFECT,
    name: str = NAME,
    draw: str = DRAW,
) -> pd.DataFrame:
    """Expected value of perfect information, in the units of the inputs (per person if costs and
    effects are per person): EVPI(wtp) = E_draw[max_s NMB] - max_s E_draw[NMB]. Columns: wtp, evpi."""
    w = _check_wtp(wtp)
    c, e, _, _ = _panel(draws, cost, effect, name, draw, where="evpi")
    values = []
    for value in w:
        nmb = value * e - c
        chosen = int(np.argmax(nmb.mean(axis=0)))
        # The same quantity written as the mean loss of the strategy chosen on expectations: a mean of
        # non-negative numbers, so rounding cannot make it negative.
        values.append(float(np.mean(nmb.max(axis=1) - nmb[:, chosen])))
    return pd.DataFrame({"wtp": w, "evpi": values})


def incremental_draws(
    draws: pd.DataFrame,
    comparator: object,
    cost: str = COST,
    effect: str = EFFECT,
    name: str = NAME,
    draw: str = DRAW,
) -> pd.DataFrame:
    """Per-draw differences vs ``comparator`` (the strategy's cost and effect minus the comparator's in
    the same draw), for every other strategy: the input of ``ce_plane``. Columns: draw, name, cost, effect."""
    c, e, names, keys = _panel(draws, cost, effect, name, draw, where="incremental_draws")
    if comparator not in names:
        raise ValueError(f"incremental_draws: comparator {comparator!r} is not in column {name!r} ({names})")
    index = names.index(comparator)
    frames = [
        pd.DataFrame({draw: keys.to_numpy(), name: s, cost: c[:, j] - c[:, index], effect: e[:, j] - e[:, index]})
        for j, s in enumerate(names)
        if j != index
    ]
    return pd.concat(frames, ignore_index=True)


# --- cost-effectiveness plane ----------------------------------------------------------------


def ce_plane(
    ax: Axes,
    diffs: pd.DataFrame,
    wtp: float | None = None,
    cost: str = COST,
    effect: str = EFFECT,
    name: str = NAME,
    currency: str = "US$",
) -> Axes:
    """Draw the cost-effectiveness plane on ``ax``: incremental QALYs (x) against incremental cost (y),
    one Okabe-Ito colour per strategy in order of appearance (past eight, the colours again with another
    marker shape), each draw a translucent point and the mean a large marker, axes through zero, and a
    dashed line of slope ``wtp`` if given.

    ``diffs`` holds per-draw (or per-replicate) differences vs a comparator, e.g. from
    ``incremental_draws``. Draws one scatter collection and one mean line per strategy; returns ``ax``.
    """
    from matplotlib.ticker import StrMethodFormatter  # imported here: plotting is optional for callers

    _check_table(diffs, numeric=(cost, effect), keys=(name,), where="ce_plane")
    names = list(pd.unique(diffs[name]))
    if wtp is not None:
        if np.ndim(wtp) != 0:
            raise ValueError(f"ce_plane: wtp must be a single number, got shape {np.shape(wtp)}")
        wtp = float(_check_wtp(wtp)[0])

    # Axes through zero first, so that the points are drawn over them.
    ax.axhline(0.0, color=AXIS_COLOUR, lw=0.8, zorder=1)
    ax.axvline(0.0, color=AXIS_COLOUR, lw=0.8, zorder=1)
    for j, strategy in enumerate(names):
        # Eight colours; past them the colours come round again with another marker shape.
        colour, marker = OKABE_ITO[j % len(OKABE_ITO)], MEAN_MARKERS[j // len(OKABE_ITO) % len(MEAN_MARKERS)]
        rows = diffs[diffs[name] == strategy]
        x = pd.to_numeric(rows[effect]).to_numpy(dtype=float)
        y = pd.to_numeric(rows[cost]).to_numpy(dtype=float)
        ax.scatter(x, y, s=DRAW_SIZE, color=colour, alpha=DRAW_ALPHA, linewidths=0, zorder=2)
        # The mean carries the legend entry: an opaque marker reads better there than a faint dot.
        ax.plot(
            [x.mean()],
            [y.mean()],
            marker=marker,
            markersize=MEAN_SIZE,
            linestyle="none",
            color=colour,
            markeredgecolor="black",
            label=str(strategy),
            zorder=3,
        )
    if wtp is not None:
        ax.axline(
            (0.0, 0.0),
            slope=wtp,
            color=THRESHOLD_COLOUR,
            linestyle="--",
            lw=1.0,
            label=f"WTP {currency}{wtp:,.0f} per QALY",
            zorder=1,
        )
    ax.set_xlabel("Incremental QALYs")
    ax.set_ylabel(f"Incremental cost ({currency})")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.legend(frameon=False)
    return ax
