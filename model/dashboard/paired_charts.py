"""The Explore page's charts: each quantity in the baseline and in "your settings", and their difference.

One small figure per quantity: the two runs as lines in the upper axes, "your settings − baseline"
in the lower, a dotted line where a setting was applied. Axes are fixed and only ever grow (the
time axis to the next of 1, 2, 5, 10 … years; a value axis when a line would leave it), so a
student compares pictures over time without the scale moving under them; the figures are
blitted (drawing.BlitFigure), so a step redraws only the lines.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from oudsim.model.dashboard.drawing import OKABE_ITO, BlitFigure, nice_ceiling

if TYPE_CHECKING:
    from oudsim.model.dashboard.whatif import PairedRun

BASELINE_COLOUR = "#555555"  # the reference recedes
YOURS_COLOUR = OKABE_ITO["blue"]
DIFF_COLOUR = OKABE_ITO["vermillion"]
HORIZONS = (1, 2, 3, 5, 10, 20, 50, 100)
FIRST_HORIZON = 3.0  # years shown before the run reaches them: the student's three simulated years


@dataclass(frozen=True)
class Quantity:
    """One quantity of the page: a metric, how it is shown, its words."""

    key: str  # a metric name, or "waitlist_per_100k"
    title: str
    unit: str
    scale: float = 1.0  # 100: a share shown as a percentage
    decimals: int = 2

    def values(self, run: PairedRun) -> tuple[np.ndarray, np.ndarray]:
        """The quantity over time in both runs, in its display unit."""
        if self.key == "waitlist_per_100k":
            b, a = run.series("waitlist")
            per = 1e5 / run.setup.population
            return b * per, a * per
        b, a = run.series(self.key)
        return b * self.scale, a * self.scale

    def now(self, run: PairedRun) -> tuple[float, float]:
        b, a = self.values(run)
        return float(b[-1]), float(a[-1])

    def show(self, value: float, signed: bool = False) -> str:
        return f"{value:{'+' if signed else ''},.{self.decimals}f}"


QUANTITIES: tuple[Quantity, ...] = (
    Quantity("oud_prevalence", "OUD prevalence", "% of population", 100.0),
    Quantity("untreated_oud_prevalence", "Untreated OUD", "% of population", 100.0),
    Quantity("treatment_coverage", "In OUD treatment", "% of people with OUD", 100.0, 1),
    Quantity("waitlist_per_100k", "Waiting for a treatment slot", "per 100,000 people", 1.0, 1),
    Quantity("cumulative_overdose_deaths", "Overdose deaths since week 0", "per 100,000 people", 1.0, 1),
    Quantity("lonely_share", "Lonely", "% of population", 100.0, 1),
)


class PairedFigure:
    """One quantity: both runs above, their difference below, blitted."""

    def __init__(self, q: Quantity, width_px: int = 360, height_px: int = 270) -> None:
        self.q = q
        dpi = 100
        fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
        left, right = 0.16, 0.97
        self.ax = fig.add_axes((left, 0.44, right - left, 0.38))
        self.dax = fig.add_axes((left, 0.13, right - left, 0.2), sharex=self.ax)
        self.base = Line2D([], [], color=BASELINE_COLOUR, lw=1.6, label="baseline")
        self.yours = Line2D([], [], color=YOURS_COLOUR, lw=1.6, ls="--", label="your settings")
        self.diff = Line2D([], [], color=DIFF_COLOUR, lw=1.6)
        self.marks = [Line2D([], [], color=OKABE_ITO["black"], lw=1.0, ls=":") for _ in range(2)]
        self.ax.add_line(self.base)
        self.ax.add_line(self.yours)
        self.dax.add_line(self.diff)
        self.ax.add_line(self.marks[0])
        self.dax.add_line(self.marks[1])
        self.dax.axhline(0.0, color="#999999", lw=0.8)
        for a in (self.ax, self.dax):
            a.tick_params(labelsize=8, length=3)
            a.spines[["top", "right"]].set_visible(False)
            a.grid(True, color="#E5E5E5", lw=0.6)
            a.yaxis.set_major_locator(MaxNLocator(3))
        self.ax.tick_params(labelbottom=False)
        self.ax.set_ylabel(q.unit.replace(" of ", "\nof "), fontsize=7.5)
        self.dax.set_ylabel("difference", fontsize=7.5)
        self.dax.set_xlabel("years since week 0", fontsize=8)
        fig.text(0.02, 0.975, q.title, fontsize=10, fontweight="bold", va="top")
        fig.legend(
            handles=[self.base, self.yours],
            loc="upper left",
            bbox_to_anchor=(0.01, 0.9),
            ncols=2,
            fontsize=8,
            frameon=False,
            borderaxespad=0.0,
            handlelength=2.4,
        )
        self.blit = BlitFigure(fig, [self.base, self.yours, self.diff, *self.marks])
        self.top = 0.0  # axis limits only grow
        self.dlim = 0.0

    def render(self, run: PairedRun, horizon: float) -> bytes:
        b, a = self.q.values(run)
        t = np.arange(b.size) * run.dt_weeks / 52.0
        d = a - b
        self.base.set_data(t, b)
        self.yours.set_data(t, a)
        self.diff.set_data(t, d)
        hi = float(max(np.nanmax(b), np.nanmax(a))) if b.size else 0.0
        if hi > self.top * 0.98 or self.top == 0.0:
            self.top = nice_ceiling(max(hi * 1.25, self.top), 10 ** (-self.q.decimals))
        dmax = float(np.nanmax(np.abs(d))) if d.size else 0.0
        if dmax > self.dlim * 0.98 or self.dlim == 0.0:
            self.dlim = nice_ceiling(max(dmax * 1.2, self.dlim), 10 ** (-self.q.decimals) * 2)
        years = run.applied_years
        for m, lim in zip(self.marks, ((0, self.top), (-self.dlim, self.dlim)), strict=True):
            xs: list[float] = []
            ys: list[float] = []
            for y in years:
                xs += [y, y, math.nan]
                ys += [lim[0], lim[1], math.nan]
            m.set_data(xs, ys)
        self.ax.set_xlim(0, horizon)
        self.ax.set_ylim(0, self.top)
        self.dax.set_ylim(-self.dlim, self.dlim)
        return self.blit.render((horizon, self.top, self.dlim))


def horizon_for(year: float, current: float = FIRST_HORIZON) -> float:
    """The time axis: never shorter than before, the next round length that holds ``year``."""
    if year <= current:
        return current
    return float(next((h for h in HORIZONS if h >= year), math.ceil(year)))


class PairedCharts:
    """The page's figures for one paired run (their limits grow with it; a new run gets new ones)."""

    def __init__(self) -> None:
        self.figures = [PairedFigure(q) for q in QUANTITIES]
        self.horizon = FIRST_HORIZON
        self.lock = threading.Lock()
        self._last: tuple[int, int, int, list[bytes]] | None = None  # run id, week, version, PNGs

    def render(self, run: PairedRun) -> list[bytes]:
        with self.lock:
            key = (id(run), run.week, run.version)
            if self._last is not None and self._last[:3] == key:
                return self._last[3]
            self.horizon = horizon_for(run.year, self.horizon)
            pngs = [f.render(run, self.horizon) for f in self.figures]
            self._last = (*key, pngs)
            return pngs


def yearly_table(run: PairedRun, q: Quantity) -> list[tuple[float, float, float, float]]:
    """(year, baseline, your settings, difference) at week 0 and each whole year, and now: a
    chart's values as a table, for screen readers and for reading exact numbers."""
    b, a = q.values(run)
    per_year = round(52 / run.dt_weeks)
    idx = list(range(0, b.size, per_year))
    if idx[-1] != b.size - 1:
        idx.append(b.size - 1)
    return [(i * run.dt_weeks / 52.0, float(b[i]), float(a[i]), float(a[i] - b[i])) for i in idx]
