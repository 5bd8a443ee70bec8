"""Network layout and matplotlib figures for the dashboard, built to redraw fast.

A step at 1,000 people takes a few milliseconds, so the redraw is what a student waits for. Two
things keep it short (measured in docs/dashboard.md):

- the layout is computed once per network (``NetworkView`` is cached per model instance) with a
  Fruchterman–Reingold layout whose repulsion is limited to nearby nodes (a k-d tree finds them), so it
  costs well under a second at 1,000 people where networkx's ``spring_layout`` takes several;
- figures are blitted: axes, ticks, labels and legends are drawn once and cached as a background
  (redrawn only when an axis limit grows); each step draws only the lines and markers over it and
  encodes the pixels as PNG directly. Text layout is the costly part of a matplotlib draw;
- the network's ties are painted as pixels from a sparse matrix built with the layout
  (``TieRaster``), which is ten times quicker than stroking thousands of thin lines.

Colours are the Okabe–Ito palette (safe for the common colour-vision deficiencies); the network also
marks mental-health state by marker shape, so no information is carried by colour alone.
"""

from __future__ import annotations

import io
import math
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from PIL import Image
from scipy.spatial import cKDTree

from oudsim.agents.states import Stage
from oudsim.model.metrics import BY_NAME

if TYPE_CHECKING:
    from oudsim.model.oud_model import OUDModel

MAX_DRAWN = 1_500  # people drawn: larger populations are drawn as a sample (a drawing of more is unreadable and slow)

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
LINE_COLOURS = [OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "reddish_purple", "orange", "sky_blue")]
LINE_STYLES = ["-", "--", ":", "-."]

STAGE_COLOURS: dict[Stage, str] = {
    Stage.NONE: "#9E9E9E",  # neutral grey: most people, so it should recede
    Stage.MISUSE: OKABE_ITO["orange"],
    Stage.OUD: OKABE_ITO["vermillion"],
    Stage.TREATMENT: OKABE_ITO["blue"],
    Stage.REMISSION: OKABE_ITO["bluish_green"],
    Stage.DECEASED: OKABE_ITO["black"],
}
STAGE_LABELS: dict[Stage, str] = {
    Stage.NONE: "no opioid misuse",
    Stage.MISUSE: "misuse",
    Stage.OUD: "OUD, untreated",
    Stage.TREATMENT: "OUD, in treatment",
    Stage.REMISSION: "remission",
    Stage.DECEASED: "died this week",
}


# -- layout --------------------------------------------------------------------------------------


def force_layout(n: int, u: np.ndarray, v: np.ndarray, seed: int = 0, iterations: int = 50) -> np.ndarray:
    """Positions in [0, 1]² for n nodes and ties (u, v): Fruchterman–Reingold with local repulsion.

    Repulsion only acts within 2k of a node (k = ideal distance, 1/sqrt(n)), found with a k-d tree,
    so an iteration is O(n + ties) rather than O(n²); a weak pull to the centre keeps people
    without ties in view.
    """
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2))
    if n < 2:
        return np.full((n, 2), 0.5)
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    k = 1.0 / math.sqrt(n)
    temperature = 0.1
    cool = (0.004 / temperature) ** (1.0 / max(iterations - 1, 1))
    for _ in range(iterations):
        disp = np.zeros_like(pos)
        pairs = cKDTree(pos).query_pairs(2.0 * k, output_type="ndarray")
        if pairs.size:
            d = pos[pairs[:, 0]] - pos[pairs[:, 1]]
            dist2 = np.maximum((d * d).sum(axis=1), 1e-10)
            f = d * (k * k / dist2)[:, None]  # k²/dist along the unit vector
            for j in range(2):
                disp[:, j] += np.bincount(pairs[:, 0], f[:, j], n) - np.bincount(pairs[:, 1], f[:, j], n)
        if u.size:
            d = pos[u] - pos[v]
            f = d * (np.sqrt((d * d).sum(axis=1)) / k)[:, None]  # dist²/k along the unit vector
            for j in range(2):
                disp[:, j] += np.bincount(v, f[:, j], n) - np.bincount(u, f[:, j], n)
        disp += (0.5 - pos) * (0.05 * k * math.sqrt(n))
        length = np.maximum(np.sqrt((disp * disp).sum(axis=1)), 1e-12)
        pos += disp * (np.minimum(length, temperature) / length)[:, None]
        temperature *= cool
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    return 0.03 + 0.94 * (pos - lo) / np.maximum(hi - lo, 1e-12)


# -- fast figures --------------------------------------------------------------------------------


PALETTE_COLOURS = 64


class BlitFigure:
    """An Agg figure whose static parts are cached: only ``animated`` artists are drawn per frame."""

    def __init__(
        self, fig: Figure, animated: Sequence[Artist], underlay: Callable[[np.ndarray], None] | None = None
    ) -> None:
        self.fig = fig
        self.canvas = FigureCanvasAgg(fig)
        self.animated = list(animated)
        self.underlay = underlay  # paints into the RGBA pixels before the animated artists
        for a in self.animated:
            a.set_animated(True)  # canvas.draw() skips them; we draw them over the background
        self._background = None
        self._key: object = None
        self.full_draws = 0

    def render(self, key: object = None) -> bytes:
        """PNG of the figure; the background is redrawn only when ``key`` (the axis limits) changes."""
        if self._background is None or key != self._key:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
            self._key = key
            self.full_draws += 1
        else:
            self.canvas.restore_region(self._background)
        if self.underlay is not None:
            self.underlay(np.asarray(self.canvas.buffer_rgba()))
        for a in self.animated:
            if a.get_visible():
                self.fig.draw_artist(a)
        w, h = self.canvas.get_width_height()
        img = Image.frombuffer("RGBA", (w, h), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        # A 64-colour palette (the figures use a handful of colours plus their anti-aliasing shades):
        # a third of the bytes to send and decode, and quicker to encode than full colour. zlib level 1:
        # most of its size gain at a fraction of its time.
        img.convert("RGB").quantize(PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE).save(
            buf, format="png", compress_level=1
        )
        return buf.getvalue()


def nice_ceiling(x: float, minimum: float) -> float:
    """Smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at or above x (and at least ``minimum``)."""
    x = max(float(x), minimum)
    if not math.isfinite(x) or x <= 0:
        return minimum
    base = 10.0 ** math.floor(math.log10(x))
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * base >= x * (1 - 1e-9):
            return m * base
    return 10 * base


def series(model: OUDModel, name: str) -> np.ndarray:
    """One metric's values so far (the DataCollector's lists, read without building a DataFrame)."""
    return np.asarray(model.datacollector.model_vars[name], dtype=float)


TIE_GREY = (208, 208, 208)  # #D0D0D0: ties recede behind the people


class TieRaster:
    """The network's ties as pixels: a sparse matrix from every tie that can be drawn to the pixels its
    line covers, built once with the layout. A frame's ties are then one matrix-vector product and a
    blend, ~1 ms, where Agg takes ~10 ms to stroke 3,000 thin anti-aliased lines (the larger part of a
    network redraw).

    Each line is sampled every half pixel and each sample's share of the line's area (its length times
    the line width) is spread over the four nearest pixel centres; a pixel's coverage, capped at 1, is
    the opacity of the tie colour there.
    """

    def __init__(self, pos: np.ndarray, u: np.ndarray, v: np.ndarray, size_px: int, width_px: float) -> None:
        from scipy.sparse import csr_matrix

        self.size = size_px
        x = pos[:, 0] * size_px
        y = (1.0 - pos[:, 1]) * size_px  # image rows run from the top
        x0, y0 = x[u], y[u]
        dx, dy = x[v] - x0, y[v] - y0
        length = np.hypot(dx, dy)
        k = np.maximum(1, np.ceil(length * 2.0)).astype(np.int64)
        tie = np.repeat(np.arange(u.size), k)
        first = np.cumsum(k) - k
        t = (np.arange(tie.size) - first[tie] + 0.5) / k[tie]
        fx = x0[tie] + t * dx[tie] - 0.5  # pixel (i, j) has its centre at (i + 0.5, j + 0.5)
        fy = y0[tie] + t * dy[tie] - 0.5
        area = (length / k * width_px)[tie]
        ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
        ax, ay = fx - ix, fy - iy
        rows, cols, weights = [], [], []
        for ox, oy, w in ((0, 0, (1 - ax) * (1 - ay)), (1, 0, ax * (1 - ay)), (0, 1, (1 - ax) * ay), (1, 1, ax * ay)):
            px, py = ix + ox, iy + oy
            ok = (px >= 0) & (px < size_px) & (py >= 0) & (py < size_px)
            rows.append(py[ok] * size_px + px[ok])
            cols.append(tie[ok])
            weights.append((area * w)[ok].astype(np.float32))
        self.matrix = csr_matrix(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
            shape=(size_px * size_px, max(int(u.size), 1)),
        )  # repeated (pixel, tie) pairs are summed

    def paint(self, rgba: np.ndarray, active: np.ndarray, colour: tuple[int, int, int]) -> None:
        """Blend the active ties into an RGBA image of ``size`` × ``size`` pixels, in place."""
        if not active.any():
            return
        cover = self.matrix @ active.astype(np.float32)
        hit = np.flatnonzero(cover)
        alpha = np.minimum(cover[hit], 1.0)[:, None]
        flat = rgba.reshape(-1, 4)
        rgb = flat[hit, :3].astype(np.float32)
        flat[hit, :3] = (rgb + (np.asarray(colour, dtype=np.float32) - rgb) * alpha + 0.5).astype(np.uint8)


NETWORK_PX = 420  # the drawing's size on screen: with the charts beside it on a 1366-px laptop


class NetworkView:
    """The drawing of one model's network: layout computed here once, ties and stages per render."""

    def __init__(self, model: OUDModel, size_px: int = NETWORK_PX, seed: int = 0, sample: int = MAX_DRAWN) -> None:
        self.size_px = size_px
        net = model.network
        # A large population is drawn as a sample of connected neighbourhoods: every person in it keeps
        # the ties among them, so the picture reads as a network (a random sample would show dots).
        self.rows = sample_rows(net.u, net.v, model.population.n, sample, seed)
        local = np.full(model.population.n, -1, dtype=np.int64)
        local[self.rows] = np.arange(self.rows.size)
        keep = (local[net.u] >= 0) & (local[net.v] >= 0)
        self.tie_index = np.flatnonzero(keep)  # the network's ties drawn, as indices into its arrays
        self.n = int(self.rows.size)
        self.u = local[net.u[keep]]
        self.v = local[net.v[keep]]
        self.sampled = self.n < model.population.n
        # Every possible tie (known and latent) shapes the layout, so a tie that forms later already
        # has its ends placed sensibly: positions never move during the run.
        self.pos = force_layout(self.n, self.u, self.v, seed=seed)
        self._tree = cKDTree(self.pos)
        self.lock = threading.Lock()
        dpi = 100
        fig = Figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ms = max(2.3, min(6.5, 110 / math.sqrt(self.n))) * size_px / 480  # marker size follows the picture's
        tie_width_px = (0.35 if self.n > 500 else 0.6) * dpi / 72
        self._ties = TieRaster(self.pos, self.u, self.v, size_px, tie_width_px)
        self._active = np.zeros(self.u.size, dtype=bool)
        self._ego = Line2D([], [], color=OKABE_ITO["black"], lw=1.3)
        self._marks: dict[tuple[int, bool], Line2D] = {}
        for stage, colour in STAGE_COLOURS.items():
            # No disorder: a filled circle. A mental-health disorder: a diamond with a black edge.
            self._marks[(int(stage), False)] = Line2D([], [], ls="none", marker="o", ms=ms, mfc=colour, mec="none")
            self._marks[(int(stage), True)] = Line2D(
                [], [], ls="none", marker="D", ms=ms * 1.05, mfc=colour, mec=OKABE_ITO["black"], mew=0.6
            )
        self._ring = Line2D([], [], ls="none", marker="o", ms=ms * 3.2, mfc="none", mec=OKABE_ITO["black"], mew=2.0)
        artists: list[Artist] = [self._ego, *self._marks.values(), self._ring]
        for a in artists:
            ax.add_line(a)
        self.blit = BlitFigure(fig, artists, underlay=lambda rgba: self._ties.paint(rgba, self._active, TIE_GREY))
        self._last: tuple[object, bytes] | None = None  # (week, chosen row), PNG: a page asks again

    def render(self, model: OUDModel, selected_row: int | None = None) -> bytes:
        """PNG of the current state: active ties, a marker per person, the chosen person ringed."""
        with self.lock:
            key = (model.week, selected_row)
            if self._last is not None and self._last[0] == key:
                return self._last[1]  # e.g. the drawing made with the spare model, for its first page
            net, pop, pos = model.network, model.population, self.pos
            active = self._active = net.active[self.tie_index]
            local = self.local_row(selected_row)
            if local is not None:
                mine = active & ((self.u == local) | (self.v == local))
                self._ego.set_data(*self._segments(mine))
                self._ring.set_data([pos[local, 0]], [pos[local, 1]])
            else:
                self._ego.set_data([], [])
                self._ring.set_data([], [])
            stage, mh = pop.stage[self.rows], pop.any_mh[self.rows]
            for (s, has_mh), line in self._marks.items():
                rows = np.flatnonzero((stage == s) & (mh == has_mh))
                line.set_data(pos[rows, 0], pos[rows, 1])
            png = self.blit.render()
            self._last = (key, png)
            return png

    def _segments(self, ties: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # One polyline with NaN breaks: a single path draws much faster than a LineCollection.
        # (For the few ties of a chosen person; all ties are painted by TieRaster.)
        idx = np.flatnonzero(ties)
        xy = np.full((idx.size * 3, 2), np.nan)
        xy[0::3] = self.pos[self.u[idx]]
        xy[1::3] = self.pos[self.v[idx]]
        return xy[:, 0], xy[:, 1]

    def row_at(self, fx: float, fy: float, radius: float = 0.03) -> int | None:
        """The person (their population row) nearest a click at (fx, fy), fractions of the image
        from its top-left corner."""
        dist, i = self._tree.query([fx, 1.0 - fy])
        return int(self.rows[i]) if dist <= radius else None

    def local_row(self, row: int | None) -> int | None:
        """Where a population row is in the drawing (None if not drawn)."""
        if row is None:
            return None
        i = int(np.searchsorted(self.rows, row))
        return i if i < self.rows.size and self.rows[i] == row else None


def sample_rows(u: np.ndarray, v: np.ndarray, n: int, size: int, seed: int = 0) -> np.ndarray:
    """Up to ``size`` people (sorted rows), in neighbourhoods: breadth-first from random people over
    all ties (known and latent), so the people drawn keep most of their ties to each other."""
    if n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    order = np.argsort(np.concatenate([u, v]), kind="stable")
    ends = np.concatenate([v, u])[order]
    starts = np.searchsorted(np.concatenate([u, v])[order], np.arange(n + 1))
    taken = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    hub_size = max(size // 12, 1)  # a dozen neighbourhoods: the picture is not one person's circle
    while len(chosen) < size:
        root = int(rng.integers(n))
        if taken[root]:
            continue
        queue, got = [root], 0
        taken[root] = True
        while queue and got < hub_size and len(chosen) < size:
            r = queue.pop(0)
            chosen.append(r)
            got += 1
            for other in ends[starts[r] : starts[r + 1]]:
                if not taken[other]:
                    taken[other] = True
                    queue.append(int(other))
        for r in queue:  # met but not drawn: free for another neighbourhood
            taken[r] = False
    return np.sort(np.asarray(chosen, dtype=np.int64))


@dataclass(frozen=True)
class Trace:
    metric: str  # a catalogue name
    label: str
    cumulative: bool = False  # plot the running total (for counts per step)
    right: bool = False  # on the panel's right-hand axis


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # left axis
    traces: tuple[Trace, ...]
    scale: float = 1.0  # 100 shows a share as a percentage
    right_unit: str = ""
    right_limits: tuple[float, float] = (0.0, 1.0)
    fixed: tuple[float, float] | None = None  # left axis limits, if fixed
    ncols: int = 1  # legend columns


def label(metric: str) -> str:
    return BY_NAME[metric].label


def explore_panels(isolated_max_ties: int = 1) -> tuple[Panel, ...]:
    """The Explore page's charts: one panel per quantity the issue names, labels from the catalogue."""
    iso = label("isolated_share").replace("isolated_max_ties", str(isolated_max_ties))
    iso = iso.replace(f"{isolated_max_ties} ties", "1 tie") if isolated_max_ties == 1 else iso
    return (
        Panel(
            "Opioid use disorder",
            "% of population",
            (
                Trace("oud_prevalence", label("oud_prevalence")),
                Trace("untreated_oud_prevalence", label("untreated_oud_prevalence")),
            ),
            scale=100,
        ),
        Panel(
            "Treatment coverage",
            "% of people with OUD",
            (
                Trace("treatment_coverage", label("treatment_coverage")),
                Trace("integrated_share", label("integrated_share")),
            ),
            scale=100,
        ),
        Panel(
            "Mental health",
            "% of population",
            (
                Trace("mh_prevalence", label("mh_prevalence")),
                Trace("depression_prevalence", label("depression_prevalence")),
                Trace("anxiety_prevalence", label("anxiety_prevalence")),
                Trace("ptsd_prevalence", label("ptsd_prevalence")),
            ),
            scale=100,
            ncols=2,
        ),
        Panel(
            "Overdose deaths",
            "people, total",
            (
                Trace("overdose_deaths", "Overdose deaths", cumulative=True),
                Trace("overdoses", "Overdoses, fatal or not", cumulative=True),
            ),
        ),
        Panel(
            "Isolation",
            "% of population",
            (
                Trace("isolated_share", iso),
                Trace("mean_loneliness", label("mean_loneliness") + " (right axis)", right=True),
            ),
            scale=100,
            right_unit="score 0–1",
        ),
        Panel("Stigma", "score 0–1", (Trace("mean_stigma", label("mean_stigma")),), fixed=(0.0, 1.0)),
    )


class PanelFigure:
    """One panel of live time series: its own small figure, so a limit change redraws only it."""

    def __init__(self, panel: Panel, width_px: int = 300, height_px: int = 220) -> None:
        self.panel = panel
        dpi = 100
        fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
        legend_rows = math.ceil(len(panel.traces) / panel.ncols)
        top = 1.0 - (0.15 + 0.072 * legend_rows)
        twin_space = 0.83 if any(t.right for t in panel.traces) else 0.965
        ax = fig.add_axes((0.17, 0.18, twin_space - 0.17, top - 0.18))
        twin = ax.twinx() if any(t.right for t in panel.traces) else None
        self.ax, self.twin = ax, twin
        self.lines: list[tuple[Trace, Line2D]] = []
        for j, trace in enumerate(panel.traces):
            # A dot marks the latest value, so week 0 (a single point) is visible too.
            line = Line2D(
                [],
                [],
                color=LINE_COLOURS[j % len(LINE_COLOURS)],
                ls=LINE_STYLES[j % len(LINE_STYLES)],
                lw=1.6,
                label=trace.label,
                marker="o",
                ms=3.5,
                markevery=[-1],
            )
            (twin if trace.right else ax).add_line(line)
            self.lines.append((trace, line))
        ax.set_ylabel(panel.unit, fontsize=7.5)
        ax.set_xlabel("years since week 0", fontsize=7.5)
        for a in (ax, twin):
            if a is None:
                continue
            a.tick_params(labelsize=7.5, length=3)
            a.spines["top"].set_visible(False)
            # Few ticks: every tick is text to lay out, the slow part of a full draw.
            a.yaxis.set_major_locator(MaxNLocator(4, integer="people" in panel.unit))
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=False))
        if twin is not None:
            twin.set_ylabel(panel.right_unit, fontsize=7.5)
            twin.set_ylim(*panel.right_limits)
        else:
            ax.spines["right"].set_visible(False)
        ax.grid(True, color="#E5E5E5", lw=0.6)
        # Title and legend sit above the plot: they are part of the cached background, so they
        # must not overlap the lines drawn over it each step.
        fig.text(0.02, 0.975, panel.title, fontsize=9, fontweight="bold", va="top")
        fig.legend(
            handles=[line for _, line in self.lines],
            loc="upper left",
            bbox_to_anchor=(0.01, 0.975 - 0.075),
            ncols=panel.ncols,
            fontsize=7,
            frameon=False,
            borderaxespad=0.0,
            handlelength=2.4,
            columnspacing=1.0,
            labelspacing=0.2,
        )
        self.blit = BlitFigure(fig, [line for _, line in self.lines])

    def render(self, model: OUDModel, xmax: float) -> bytes:
        panel, dt = self.panel, model.params.simulation.dt_weeks / 52.0
        top = 0.0
        for trace, line in self.lines:
            y = series(model, trace.metric)
            if trace.cumulative:
                y = np.cumsum(y)
            scale = 1.0 if trace.right else panel.scale
            line.set_data(np.arange(y.size) * dt, y * scale)
            if not trace.right and y.size:
                top = max(top, float(np.nanmax(y)) * scale)
        if panel.fixed is not None:
            lo, hi = panel.fixed
        else:
            # Limits only grow (from the maximum so far), so the background is redrawn rarely.
            floor = 1.0 if "people" in panel.unit else (0.1 if panel.scale != 1 else 1e-6)
            lo, hi = 0.0, nice_ceiling(top * 1.08, floor)
        self.ax.set_xlim(0, xmax)
        self.ax.set_ylim(lo, hi)
        if self.twin is not None:
            self.twin.set_xlim(0, xmax)
        return self.blit.render((xmax, hi))


class ChartsView:
    """Live time series of one model, a small figure per panel, each blitted per step."""

    def __init__(self, model: OUDModel) -> None:
        self.panels = explore_panels(model.params.social.isolated_max_ties)
        self.figures = [PanelFigure(p) for p in self.panels]
        self.lock = threading.Lock()
        self._last: tuple[weakref.ref, int, list[bytes]] | None = None  # model, week, PNGs

    def render(self, model: OUDModel) -> list[bytes]:
        """One PNG per panel, in the order of ``self.panels``."""
        with self.lock:
            if self._last is not None and self._last[0]() is model and self._last[1] == model.week:
                return self._last[2]  # e.g. the charts drawn with the spare model, for its first page
            steps = len(model.datacollector.model_vars[self.panels[0].traces[0].metric])
            years = (steps - 1) * model.params.simulation.dt_weeks / 52.0
            # The time axis grows in few, large jumps: each jump redraws every panel's background.
            xmax = next((x for x in (1, 2, 5, 10, 20, 50, 100, 200, 500) if x >= years), years)
            pngs = [f.render(model, float(xmax)) for f in self.figures]
            self._last = (weakref.ref(model), model.week, pngs)
            return pngs
