"""The Compare page (analysts): each scenario's paired difference from a comparator, with its 95% interval.

Replicate i of every scenario runs on the same seed (common random numbers), so scenario and
comparator are compared replicate by replicate: the page shows the mean of the paired differences
(scenario - comparator) and the 95% t-interval of that mean, over time as small multiples (one panel
per scenario, the intervention start marked) and over the final year as a table per scenario
(``experiments.compare``), with a verdict in words. Flows are shown as rates a reader can compare
(per 100,000 people since week 0, or per 100,000 people per year over the past year), never as
per-step counts, and every measure is named in words.

The top of the module needs no Solara page to be useful: ``paired_over_time``, ``display_frame``,
``table_finals``, ``difference_table``, ``differences_figure`` and ``intervention_starts`` are plain
functions over a ``run_replicates`` frame (tests/test_compare_page.py).

"Compare my Explore settings": the Explore page hands its settings over by setting
``explore_scenario`` (a per-browser-session ``solara.reactive``) to a ``Scenario``: the baseline with
the settings as interventions (``whatif.PairedRun.arm_scenario()``), or one built from slider values
by ``scenario_from_explore(settings)``. The Compare page then offers it as "my Explore settings",
with the population and burn-in of its own runs (``as_explore_choice``).
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import solara
import solara.lab
from matplotlib.figure import Figure

from oudsim.model.dashboard.drawing import OKABE_ITO
from oudsim.model.dashboard.ui import CSS, DownloadButton, Img, Notice, RawHTML, StyleSheet, figure_png, png_src
from oudsim.model.interventions import InterventionSchedule, parse_intervention
from oudsim.model.metrics import BY_NAME, CATALOGUE
from oudsim.scenarios import Scenario, ScenarioError

__all__ = [
    "EXPLORE_NAME",
    "MEASURES",
    "ComparisonRun",
    "Measure",
    "Compare",
    "as_explore_choice",
    "difference_table",
    "differences_figure",
    "display_frame",
    "explore_scenario",
    "intervention_starts",
    "paired_over_time",
    "scenario_from_explore",
    "table_finals",
    "verdict",
]

YEAR_WEEKS = 52
# Catalogue metrics that accumulate since week 0: the table takes their value at the end of the run.
SINCE_WEEK_0 = ("cumulative_overdose_deaths", "cumulative_oud_deaths", "witnessed_overdose_death_share")
PAIRED_COLUMNS = ("scenario", "year", "diff", "lo", "hi", "n")

# -- "my Explore settings" ---------------------------------------------------------------------

EXPLORE_NAME = "my Explore settings"

# The Explore page sets this to a Scenario (``PairedRun.arm_scenario()`` or ``scenario_from_explore``)
# to offer its settings here, as "my Explore settings"; None (the default) hides that choice. Like
# every ``solara.reactive``, it holds one value per browser session: each visitor compares their own.
explore_scenario: solara.Reactive[Scenario | None] = solara.reactive(None)

# Explore settings that belong to a run, not to a scenario: the Compare page sets them for every arm.
_RUN_SETTINGS = {"simulation.population", "simulation.burn_in_years", "rng", "seed"}
# Settings that shape the population at its start: they apply from the start of burn-in.
_FROM_START = {"network.kind", "network.mean_degree", "stigma.initial_mean"}


def scenario_from_explore(
    settings: dict[str, Any],
    start_year: float | None = 1.0,
    ramp_years: float = 0.0,
    name: str = EXPLORE_NAME,
) -> Scenario:
    """The baseline with the Explore page's settings (its slider names, or dotted parameter names).

    Population, burn-in and seed are left out: the Compare page chooses them for every scenario.
    With ``start_year`` (default 1, like the shipped scenarios), the numeric settings that differ
    from the baseline change at that year, so the arms share their history until then and the
    difference is the effect of the change; the network's shape and the starting stigma, which only
    act when the population is made, apply from the start. ``start_year=None`` applies every
    setting from the start of burn-in (as the Explore page itself does).
    """
    from oudsim.model.parameters import ALIASES, get_dotted
    from oudsim.scenarios import load_scenario

    base = load_scenario("baseline")
    words = _explore_words()
    changes: dict[str, float] = {}
    from_start: dict[str, Any] = {}
    said = []
    for key, value in settings.items():
        dotted = ALIASES.get(key, key)
        if dotted in _RUN_SETTINGS or key in _RUN_SETTINGS:
            continue
        current = get_dotted(base.params, dotted)
        if value == current:
            continue
        numeric = isinstance(current, int | float) and not isinstance(current, bool)
        if start_year is None or dotted in _FROM_START or not numeric:
            from_start[dotted] = value
        else:
            changes[dotted] = float(value)
        said.append(
            f"{words.get(dotted, dotted)}: {value:g}"
            if isinstance(value, float)
            else f"{words.get(dotted, dotted)}: {value}"
        )
    scenario = base.with_overrides(from_start, name=name) if from_start else dataclasses.replace(base, name=name)
    if changes:
        item = parse_intervention(
            {"kind": "custom", "label": name, "start_year": start_year, "ramp_years": ramp_years, "set": changes}
        )
        scenario = dataclasses.replace(scenario, interventions=(*scenario.interventions, item))
        InterventionSchedule(list(scenario.interventions), scenario.params)  # a refused value fails here
    when = "from the start" if start_year is None or not changes else f"from year {start_year:g}"
    text = ", ".join(said) if said else "the same as the baseline"
    return dataclasses.replace(scenario, description=f"Your Explore settings ({text}), {when}.", extends="baseline")


def as_explore_choice(scenario: Scenario) -> Scenario:
    """The Explore page's scenario as the Compare page runs it, named "my Explore settings".

    Its population and burn-in are left to the Compare page's run settings (the Explore page uses a
    shorter burn-in), so it starts from the same history as the shipped scenarios on each seed.
    """
    from oudsim.scenarios import load_scenario

    kept = {k: v for k, v in scenario.overrides.items() if k not in _RUN_SETTINGS}
    base = load_scenario("baseline")
    out = base.with_overrides(kept, name=EXPLORE_NAME) if kept else dataclasses.replace(base, name=EXPLORE_NAME)
    out = dataclasses.replace(out, interventions=tuple(scenario.interventions), description=scenario.description)
    InterventionSchedule(list(out.interventions), out.params)  # a refused value fails here
    return out


def _explore_words() -> dict[str, str]:
    """Dotted parameter name -> the words the Explore page uses for it."""
    from oudsim.model.parameters import ALIASES

    words = {
        "network.kind": "Network shape",
        "network.mean_degree": "Ties per person (mean number)",
        "stigma.initial_mean": "Community stigma at start (score 0–1)",
    }
    try:  # the Explore page's sliders
        from oudsim.model.dashboard.whatif import SETTINGS

        words.update({s.dotted: s.label for s in SETTINGS})
    except ImportError:
        pass
    try:  # (an Explore page built on Mesa's model_params)
        from oudsim.model.dashboard.explore import MODEL_PARAMS

        words.update({ALIASES.get(k, k): spec["label"] for k, spec in MODEL_PARAMS.items() if "label" in spec})
    except ImportError:
        pass
    return words


def intervention_starts(scenario: Scenario) -> list[float]:
    """The years (since week 0) at which the scenario's interventions start, sorted, each once."""
    return sorted({float(i.start_year) for i in scenario.interventions})


def differs_from_start(scenario: Scenario) -> bool:
    """Whether the scenario's own parameters differ from the defaults (so it differs from burn-in on)."""
    return bool({k: v for k, v in scenario.overrides.items() if k not in _RUN_SETTINGS})


# -- measures: what the page shows, in words --------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """A quantity the page shows: a column of ``display_frame`` and, for the table, where its
    final-year value comes from in ``experiments.compare``'s output."""

    key: str  # column of display_frame
    label: str  # in words, no parameter names
    unit: str  # of the values as shown (after ``scale``)
    diff_unit: str  # of differences as shown
    scale: float = 1.0  # shown value = value * scale
    table_metric: str | None = None  # catalogue metric in table_finals / compare giving the final value
    table_label: str = ""  # its row label in the table
    per_step_count: bool = False  # the table metric is a per-step count: shown per 100,000 per year
    key_metric: bool = False  # a row of the page's table (the CSV has every measure with a table_metric)


def _threshold_words() -> dict[str, str]:
    """The catalogue's labels that name a parameter, with its default value in words instead."""
    try:
        from oudsim.model.metrics import label_in_words  # the catalogue's own wording, where it has one
    except ImportError:
        label_in_words = None
    if label_in_words is not None:
        return {name: label_in_words(name) for name in ("isolated_share", "lonely_share")}
    from oudsim.model.parameters import Parameters

    social = Parameters().social
    k = int(social.isolated_max_ties)
    return {
        "isolated_share": f"Isolated (at most {k} {'tie' if k == 1 else 'ties'})",
        "lonely_share": f"Lonely (loneliness at or above {float(social.lonely_threshold):g} on a 0–1 score)",
    }


# Catalogue labels reworded for this page (the catalogue's name parameters or are terse).
_WORDS = {
    "cooccurring_share": "People with OUD who also have a mental illness",
    "mean_degree": "Active social ties per person (mean)",
    "waitlist": "People waiting for an OUD treatment slot",
    "retention_180d": "Still in OUD care 180 days after starting",
}
# Metrics the page's table shows (besides the derived overdose and incidence rows), in this order.
_KEY_STATES = (
    "oud_prevalence",
    "untreated_oud_prevalence",
    "treatment_coverage",
    "retention_180d",
    "waitlist",
    "misuse_prevalence",
    "mh_prevalence",
    "lonely_share",
    "naloxone_carried",
    "mean_stigma",
)
# Per-step flows and per-step rates are not shown as such: the derived measures replace them.
_REPLACED = {
    "overdoses",
    "overdose_deaths",
    "overdose_death_rate",
    "incidence",
    "oud_death_rate",
    "cumulative_overdose_deaths",
    "cumulative_oud_deaths",
}


def _state_measure(name: str) -> Measure:
    m = BY_NAME[name]
    label = {**_threshold_words(), **_WORDS}.get(name, m.label)
    if m.kind == "share" and "score" not in m.unit:
        unit = m.unit.replace("share of ", "% of ").replace("% of population", "% of the population")
        return Measure(name, label, unit, "percentage points", 100.0, name, label, key_metric=name in _KEY_STATES)
    unit = m.unit.replace("-", "–")
    return Measure(name, label, unit, unit, 1.0, name, label, key_metric=name in _KEY_STATES)


@cache
def _measures() -> tuple[Measure, ...]:
    per_100k = "per 100,000 people"
    per_year = "per 100,000 people per year"
    derived = (
        Measure(
            "overdose_deaths_since_week0",
            "Overdose deaths since week 0",
            per_100k,
            per_100k,
            table_metric="cumulative_overdose_deaths",
            table_label="Overdose deaths since week 0, at the end of the run",
            key_metric=True,
        ),
        Measure(
            "overdose_deaths_past_year",
            "Overdose deaths in the past year",
            per_year,
            per_year,
            table_metric="overdose_death_rate",
            table_label="Overdose deaths in the final year",
            key_metric=True,
        ),
        Measure("overdoses_since_week0", "Overdoses, fatal or not, since week 0", per_100k, per_100k),
        Measure(
            "overdoses_past_year",
            "Overdoses, fatal or not, in the past year",
            per_year,
            per_year,
            table_metric="overdoses",
            table_label="Overdoses, fatal or not, in the final year",
            per_step_count=True,
            key_metric=True,
        ),
        Measure(
            "new_oud_past_year",
            "New cases of OUD in the past year",
            per_year,
            per_year,
            table_metric="incidence",
            table_label="New cases of OUD in the final year",
            key_metric=True,
        ),
        Measure(
            "cumulative_oud_deaths",
            "Deaths of people with OUD since week 0, all causes",
            per_100k,
            per_100k,
            table_metric="cumulative_oud_deaths",
            table_label="Deaths of people with OUD since week 0, all causes, at the end of the run",
        ),
        Measure(
            "oud_deaths_past_year",
            "Deaths of people with OUD in the past year, all causes",
            "per 1,000 person-years with OUD",
            "per 1,000 person-years with OUD",
            table_metric="oud_death_rate",
            table_label="Deaths of people with OUD in the final year, all causes",
        ),
    )
    states = tuple(_state_measure(m.name) for m in CATALOGUE if m.name not in _REPLACED)
    return derived + states


MEASURES: tuple[Measure, ...] = _measures()
MEASURE_BY_KEY = {m.key: m for m in MEASURES}
DEFAULT_MEASURE = "overdose_deaths_since_week0"


# -- derived series ------------------------------------------------------------------------------


def steps_per_year(df: pd.DataFrame) -> int:
    """Steps in a year, from the ``year`` column (52 for weekly steps; 52 if the frame has one step)."""
    years = np.sort(df["year"].unique())
    if years.size < 2:
        return YEAR_WEEKS
    return max(int(round(1.0 / float(np.diff(years).min()))), 1)


def display_frame(df: pd.DataFrame, population: int) -> pd.DataFrame:
    """The frame with the derived measures added, computed from the per-step counts and rates.

    - ``*_since_week0``: counts summed over the steps after week 0 (the row of week 0 holds the last
      burn-in step's flows), per 100,000 people (the population is fixed: deaths are replaced);
    - ``*_past_year``: over the trailing year (fewer steps early on), as a rate per year: a count per
      100,000 people per year (``overdose_deaths_past_year``, ``overdoses_past_year``), or the mean of
      a per-step rate that is already scaled to a year (``new_oud_past_year``, ``oud_deaths_past_year``).
    At the last step of a run of whole years, ``*_past_year`` equals the final-year mean of
    ``experiments.final_year_means`` (``overdose_death_rate``, ``incidence``, ``oud_death_rate``).
    """
    out = df.copy()
    ordered = df.sort_values("step", kind="stable")  # each run's rows in time order (groups interleave)
    w = steps_per_year(df)
    keys = [ordered["scenario"], ordered["replicate"]]
    per_100k = 1e5 / float(population)

    def trailing_mean(col: str) -> pd.Series:
        return ordered[col].groupby(keys, sort=False).transform(lambda s: s.rolling(w, min_periods=1).mean())

    for flow in ("overdose_deaths", "overdoses"):
        after = ordered[flow].where(ordered["step"] > 0, 0.0)
        out[f"{flow}_since_week0"] = after.groupby(keys, sort=False).cumsum() * per_100k
        out[f"{flow}_past_year"] = trailing_mean(flow) * w * per_100k
    out["new_oud_past_year"] = trailing_mean("incidence")
    out["oud_deaths_past_year"] = trailing_mean("oud_death_rate")
    return out


def table_finals(df: pd.DataFrame) -> pd.DataFrame:
    """``experiments.final_year_means``, with the "since week 0" metrics taken at the end of the run
    (a final-year mean of a running total, or of a share of one, would not be its final value)."""
    from oudsim.model.experiments import final_year_means

    finals = final_year_means(df)
    cumulative = [c for c in SINCE_WEEK_0 if c in df.columns]
    if cumulative:
        last = df.sort_values("step").groupby(["scenario", "replicate"], sort=False)[cumulative].last()
        keys = pd.MultiIndex.from_frame(finals[["scenario", "replicate"]])
        finals[cumulative] = last.reindex(keys).to_numpy()
    return finals


# -- paired differences -----------------------------------------------------------------------


def _t_half_width(diffs: np.ndarray) -> np.ndarray:
    """Half-width of the 95% t-interval of the mean, per row of a (rows, replicates) array."""
    from scipy import stats

    n = diffs.shape[1]
    if n < 2:
        return np.full(diffs.shape[0], np.nan)
    return stats.t.ppf(0.975, n - 1) * diffs.std(axis=1, ddof=1) / np.sqrt(n)


def paired_over_time(df: pd.DataFrame, metric: str, comparator: str) -> pd.DataFrame:
    """Per step, the mean over replicates of (scenario - comparator), paired by replicate, and the
    95% t-interval of that mean: ``scenario, year, diff, lo, hi, n`` for every other scenario.

    The definition is ``experiments.compare``'s, step by step: replicates missing from either
    scenario are left out (``n`` pairs), and pairs must share their seed.
    """
    base = df[df["scenario"] == comparator]
    if base.empty:
        raise ScenarioError(f"no replicates of the comparator '{comparator}' to compare with")
    b = base.pivot(index="step", columns="replicate", values=metric)
    b_seed = base.groupby("replicate")["seed"].first()
    years = base.groupby("step")["year"].first()
    frames = []
    for other in dict.fromkeys(df["scenario"]):
        if other == comparator:
            continue
        part = df[df["scenario"] == other]
        o = part.pivot(index="step", columns="replicate", values=metric)
        reps = b.columns.intersection(o.columns)
        if (part.groupby("replicate")["seed"].first().loc[reps] != b_seed.loc[reps]).any():
            raise ScenarioError(f"'{other}' and '{comparator}' were run with different seeds: they cannot be paired")
        steps = b.index.intersection(o.index)
        diffs = o.loc[steps, reps].to_numpy(dtype=float) - b.loc[steps, reps].to_numpy(dtype=float)
        n = len(reps)
        mean = diffs.mean(axis=1) if n else np.full(len(steps), np.nan)
        half = _t_half_width(diffs)
        frames.append(
            pd.DataFrame(
                {
                    "scenario": other,
                    "year": years.loc[steps].to_numpy(dtype=float),
                    "diff": mean,
                    "lo": mean - half,
                    "hi": mean + half,
                    "n": n,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=list(PAIRED_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(PAIRED_COLUMNS)]


def difference_table(
    df: pd.DataFrame, comparator: str, population: int, measures: Iterable[Measure] | None = None
) -> pd.DataFrame:
    """Final-year paired differences (``experiments.compare`` on ``table_finals``), in the page's
    units: one row per scenario and measure, with a verdict in words."""
    from oudsim.model.experiments import compare

    finals = table_finals(df)
    others = [s for s in dict.fromkeys(df["scenario"]) if s != comparator]
    cmp = compare(finals, comparator, others).set_index(["scenario", "metric"])
    count_scale = steps_per_year(df) * 1e5 / float(population)
    rows = []
    for scenario in others:
        for m in measures if measures is not None else MEASURES:
            if m.table_metric is None or (scenario, m.table_metric) not in cmp.index:
                continue
            r = cmp.loc[(scenario, m.table_metric)]
            k = m.scale * (count_scale if m.per_step_count else 1.0)
            row = {
                "scenario": scenario,
                "comparator": comparator,
                "measure": m.table_label or m.label,
                "unit": m.unit,
                "comparator_value": r["base_mean"] * k,
                "scenario_value": r["scenario_mean"] * k,
                "difference": r["diff"] * k,
                "lo": r["lo"] * k,
                "hi": r["hi"] * k,
                "difference_unit": m.diff_unit,
                "relative_change": r["rel_diff"],
                "pairs": int(r["n"]),
                "key": m.key,
            }
            row["reading"] = reading(row["lo"], row["hi"])
            row["verdict"] = verdict(
                scenario, m.label, row["difference"], row["lo"], row["hi"], m.diff_unit, comparator
            )
            rows.append(row)
    return pd.DataFrame(rows)


# -- words and numbers ---------------------------------------------------------------------------

MINUS = "−"
NOTHING = 1e-9  # differences smaller than this are rounding in sums of equal values: no difference


def num(v: float, signed: bool = False) -> str:
    """A number as the page shows it: three significant figures or so, a true minus sign."""
    if v is None or not np.isfinite(v):
        return "n/a"
    a = abs(v)
    if a >= 100:
        text = f"{a:,.0f}"
    elif a >= 10:
        text = f"{a:.1f}"
    elif a >= 0.01 or a < NOTHING:
        text = f"{a:.2f}"
    else:  # two significant figures, never in exponent form
        text = f"{a:.{1 - math.floor(math.log10(a))}f}"
    if v < 0 and text.strip("0.,") != "":
        return MINUS + text
    return ("+" if signed and v > 0 and text.strip("0.,") != "" else "") + text


def _lower_first(label: str) -> str:
    return label[0].lower() + label[1:] if len(label) > 1 and not label[1].isupper() else label


def beyond_chance(lo: float, hi: float) -> bool | None:
    """Whether the 95% interval of the mean difference leaves out zero (None: no interval)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return lo > NOTHING or hi < -NOTHING


def no_difference(lo: float, hi: float) -> bool:
    """Every pair equal: the interval is zero wide at zero."""
    return bool(np.isfinite(lo) and np.isfinite(hi) and abs(lo) < NOTHING and abs(hi) < NOTHING)


def reading(lo: float, hi: float) -> str:
    """The table's last column: no difference, beyond chance or within chance."""
    chance = beyond_chance(lo, hi)
    if chance is None:
        return "n/a"
    return "no difference" if no_difference(lo, hi) else "beyond chance" if chance else "within chance"


def verdict(scenario: str, label: str, diff: float, lo: float, hi: float, unit: str, comparator: str) -> str:
    """One sentence in plain words: which way, by how much, the 95% interval, beyond chance or not.

    "naloxone lowers “overdose deaths since week 0” by 12.3 per 100,000 people compared with baseline
    (95% CI of the difference −19.5 to −5.10): beyond chance."
    """
    what = f"“{_lower_first(label)}”"
    if not np.isfinite(diff):
        return f"{scenario}: no paired replicates to compare {what} with {comparator}."
    if no_difference(lo, hi) and abs(diff) < NOTHING:
        return f"{scenario} leaves {what} as in {comparator} in every replicate: no difference."
    verb = "raises" if diff > 0 else "lowers"
    head = f"{scenario} {verb} {what} by {num(abs(diff))} {unit} compared with {comparator}"
    chance = beyond_chance(lo, hi)
    if chance is None:
        return f"{head}; an interval needs 2 replicates or more."
    return f"{head} (95% CI of the difference {num(lo)} to {num(hi)}): {'beyond' if chance else 'within'} chance."


# -- the figure --------------------------------------------------------------------------------


def differences_figure(
    paired: pd.DataFrame,
    measure: Measure,
    comparator: str,
    starts: dict[str, Sequence[float]] | None = None,
) -> Figure:
    """Small multiples: one panel per scenario, its paired difference from the comparator over time
    (line: mean; band: 95% interval of the mean difference), a zero line and the intervention start."""
    scenarios = list(dict.fromkeys(paired["scenario"]))
    n = max(len(scenarios), 1)
    ncols = 1 if n == 1 else 2 if n <= 4 else 3
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(8.4, 0.9 + 2.5 * nrows), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)).ravel()
    blue, marker = OKABE_ITO["blue"], OKABE_ITO["vermillion"]
    for ax, scenario in zip(axes, scenarios, strict=False):
        g = paired[paired["scenario"] == scenario]
        k = measure.scale
        ax.fill_between(g["year"], g["lo"] * k, g["hi"] * k, color=blue, alpha=0.25, lw=0, label="95% CI")
        ax.plot(g["year"], g["diff"] * k, color=blue, lw=1.6, label="mean paired difference")
        ax.axhline(0.0, color="#333333", lw=0.9)
        for i, start in enumerate((starts or {}).get(scenario, ())):
            ax.axvline(start, color=marker, ls="--", lw=1.2, label="intervention starts" if i == 0 else None)
        ax.set_title(f"{scenario} − {comparator}", loc="left", fontsize=9.5)
        ax.grid(True, color="#E5E5E5", lw=0.6)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
    for ax in axes[len(scenarios) :]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols :]:
        ax.set_xlabel("years since week 0", fontsize=8.5)
    for r in range(nrows):
        axes[r * ncols].set_ylabel(f"difference\n({measure.diff_unit})", fontsize=8.5)
    if scenarios:
        handles, labels = axes[0].get_legend_handles_labels()
        for ax in axes[1 : len(scenarios)]:  # a start marker may be in another panel only
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(f"{measure.label}: difference from {comparator}", x=0.01, ha="left", fontsize=10.5, fontweight="bold")
    return fig


# -- HTML -----------------------------------------------------------------------------------------

COMPARE_CSS = """
.oud-compare h2 { font-size: 1.35rem; font-weight: 600; margin: 4px 0 6px 0; color: #111; }
.oud-compare h3 { font-size: 1.1rem; font-weight: 600; margin: 14px 0 4px 0; color: #111; }
.oud-compare h4 { font-size: 0.98rem; font-weight: 600; margin: 10px 0 2px 0; color: #111; }
.oud-compare .oud-table caption { text-align: left; font-size: 0.82rem; color: #333; padding: 2px 0; }
.oud-compare .oud-table thead th { background: #F2F2F2; color: #111; }
.oud-compare .oud-table tbody th { font-weight: 500; color: #111; }
.oud-compare .oud-table { min-width: 420px; }
.oud-compare details summary { cursor: pointer; font-size: 0.85rem; color: #0B5A8C; margin: 2px 0; }
.oud-compare .oud-verdict { font-size: 0.9rem; color: #111; margin: 2px 0 4px 0; }
.oud-compare .oud-verdict b { font-weight: 700; }
.oud-scenario-list .v-input__details { display: none; }
.oud-scenario-list .v-selection-control { min-height: 34px; }
.oud-scenario-list .v-label { opacity: 1; color: #1f1f1f; }
.oud-scenario-list .oud-explainer { margin: -4px 0 6px 40px; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _sample_years(years: np.ndarray) -> np.ndarray:
    """About 20 rows for a data table: every quarter for short runs, every year (or more) for long."""
    if years.size <= 1:
        return years
    span = float(years[-1] - years[0])
    stride = 0.25 if span <= 5 else max(1.0, math.ceil(span / 20))
    marks = np.arange(years[0], years[-1] + 1e-9, stride)
    picked = [years[np.argmin(np.abs(years - m))] for m in marks]
    return np.array(sorted(set(picked) | {years[-1]}))


def series_table_html(paired: pd.DataFrame, measure: Measure, comparator: str) -> str:
    """The chart's data: the difference (95% CI) per scenario at sampled years, as a captioned table."""
    scenarios = list(dict.fromkeys(paired["scenario"]))
    if not scenarios:
        return ""
    years = np.sort(paired["year"].unique())
    head = "".join(f'<th scope="col">{_e(s)} − {_e(comparator)}</th>' for s in scenarios)
    k = measure.scale
    rows = []
    by = {s: paired[paired["scenario"] == s].set_index("year") for s in scenarios}
    for y in _sample_years(years):
        cells = []
        for s in scenarios:
            r = by[s].loc[y] if y in by[s].index else None
            cells.append(
                "<td></td>"
                if r is None
                else f"<td>{num(r['diff'] * k, signed=True)} ({num(r['lo'] * k)} to {num(r['hi'] * k)})</td>"
            )
        rows.append(f'<tr><th scope="row">{y:.2f}</th>{"".join(cells)}</tr>')
    caption = (
        f"{_e(measure.label)}: mean paired difference from {_e(comparator)} (95% CI), "
        f"{_e(measure.diff_unit)}, by years since week 0"
    )
    return (
        f'<details><summary>The chart as a table: {_e(measure.label)}</summary><table class="oud-table" '
        f'data-testid="series-table"><caption>{caption}</caption><thead><tr><th scope="col">Year</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


def figure_alt(paired: pd.DataFrame, measure: Measure, comparator: str, starts: dict[str, Sequence[float]]) -> str:
    """Alt text: what the chart shows and where each difference ends up."""
    parts = []
    for s in dict.fromkeys(paired["scenario"]):
        last = paired[paired["scenario"] == s].iloc[-1]
        k = measure.scale
        start = starts.get(s) or []
        when = f", intervention from year {', '.join(f'{y:g}' for y in start)}" if start else ""
        parts.append(
            f"{s}: {num(last['diff'] * k, signed=True)} (95% CI {num(last['lo'] * k)} to {num(last['hi'] * k)})"
            f" at year {last['year']:.2f}{when}"
        )
    return (
        f"Small multiples, one panel per scenario: difference in {_lower_first(measure.label)} from "
        f"{comparator} over time ({measure.diff_unit}), mean of paired replicates with its 95% interval "
        f"and a zero line. At the end: {'; '.join(parts)}."
    )


def scenario_table_html(table: pd.DataFrame, scenario: str, comparator: str, highlight: str | None = None) -> str:
    """The final-year table for one scenario: comparator, scenario, difference (95% CI), relative
    change and whether the interval leaves out zero, one row per key measure."""
    part = table[table["scenario"] == scenario]
    if part.empty:
        return ""
    pairs = int(part["pairs"].iloc[0])
    head = (
        f'<tr><th scope="col">Measure</th><th scope="col">{_e(comparator)}</th><th scope="col">{_e(scenario)}</th>'
        '<th scope="col">Difference (95% CI)</th><th scope="col">Relative change</th>'
        '<th scope="col">Beyond chance?</th></tr>'
    )
    body = []
    for _, r in part.iterrows():
        rel = r["relative_change"]
        rel_text = num(100 * rel, signed=True) + "%" if np.isfinite(rel) else "n/a"
        cls = ' class="chosen"' if highlight is not None and r["key"] == highlight else ""
        diff_unit = "" if r["difference_unit"] == r["unit"] else f" {_e(r['difference_unit'])}"
        body.append(
            f'<tr{cls}><th scope="row">{_e(r["measure"])} <small>({_e(r["unit"])})</small></th>'
            f"<td>{num(r['comparator_value'])}</td><td>{num(r['scenario_value'])}</td>"
            f"<td>{num(r['difference'], signed=True)}{diff_unit} ({num(r['lo'])} to {num(r['hi'])})</td>"
            f"<td>{rel_text}</td><td>{reading(r['lo'], r['hi'])}</td></tr>"
        )
    caption = (
        f"{_e(scenario)} compared with {_e(comparator)}: means over the final simulated year (running totals at "
        f"the end of the run) and the mean of {pairs} paired differences with its 95% interval"
    )
    return (
        f'<table class="oud-table" data-testid="difference-table-{_e(scenario)}"><caption>{caption}</caption>'
        f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
    )


def series_csv(frame: pd.DataFrame, comparator: str) -> bytes:
    """Every measure's paired difference over time, in the page's units (long format)."""
    parts = []
    for m in MEASURES:
        p = paired_over_time(frame, m.key, comparator)
        p[["diff", "lo", "hi"]] *= m.scale
        p.insert(0, "comparator", comparator)
        p.insert(0, "unit", m.diff_unit)
        p.insert(0, "measure", m.label)
        parts.append(p)
    return pd.concat(parts, ignore_index=True).to_csv(index=False).encode()


# -- the page -------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised from the progress callback to end a cancelled comparison early."""


@dataclass
class ComparisonRun:
    """What a finished comparison hands to the results: the runs and how they were asked for."""

    frame: pd.DataFrame  # run_replicates' frame
    comparator: str
    population: int
    starts: dict[str, list[float]]  # scenario -> intervention start years (its own and the comparator's)
    descriptions: dict[str, str]


progress_counts = solara.reactive((0, 0))  # runs done, runs in all (per browser session)


@solara.lab.task(prefer_threaded=True)
def comparison(
    scenarios: list[Scenario], comparator: str, replicates: int, years: float, population: int, seed: int, workers: int
) -> ComparisonRun:
    """Replicates of each scenario, in a background thread so the page stays responsive."""
    from oudsim.model.experiments import run_replicates

    def progress(done: int, total: int) -> None:
        if not comparison.is_current():  # cancelled, or superseded by a newer run
            raise _Stop
        progress_counts.set((done, total))
        comparison.progress = 100.0 * done / max(total, 1)

    frame = run_replicates(
        scenarios,
        replicates=replicates,
        years=years,
        population=population,
        seed=seed,
        workers=workers,
        progress=progress,
    )
    base = next(s for s in scenarios if s.name == comparator)
    starts = {s.name: sorted(set(intervention_starts(s)) | set(intervention_starts(base))) for s in scenarios}
    return ComparisonRun(frame, comparator, population, starts, {s.name: s.description for s in scenarios})


POPULATIONS = [500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000]


@solara.component
def Compare() -> None:
    from oudsim.scenarios import list_scenarios

    StyleSheet(CSS + COMPARE_CSS)
    shipped = solara.use_memo(lambda: {s.name: s for s in list_scenarios()}, [])
    mine = explore_scenario.value
    mine_choice = solara.use_memo(lambda: as_explore_choice(mine) if mine is not None else None, [mine])
    available = {**shipped, **({EXPLORE_NAME: mine_choice} if mine_choice is not None else {})}
    comparator = solara.use_reactive("baseline" if "baseline" in available else next(iter(available)))
    chosen = solara.use_reactive([n for n in ("expand_moud", "naloxone") if n in available])
    replicates = solara.use_reactive(10)
    years = solara.use_reactive(5)
    population = solara.use_reactive(20_000)
    seed = solara.use_reactive(1)
    workers = solara.use_reactive(1)
    measure = solara.use_reactive(DEFAULT_MEASURE)
    if comparator.value not in available:  # "my Explore settings" was the comparator and is gone
        comparator.set("baseline")
    others = [n for n in chosen.value if n in available and n != comparator.value]
    about = available[comparator.value].description if comparator.value in available else ""

    def toggle(name: str, on: bool) -> None:
        now = [n for n in chosen.value if n != name]
        chosen.set([*now, name] if on else now)

    with solara.AppBarTitle():
        solara.Text("oudsim · Compare")
    with solara.Sidebar():
        with solara.Card("Scenarios", margin=0):
            solara.Select(
                "Comparator (every scenario is compared with it)",
                value=comparator.value,
                values=list(available),
                on_value=comparator.set,
            )
            RawHTML(
                tag="div",
                unsafe_innerHTML=f"<b>{_e(comparator.value)}</b>: {_e(about)}",
                classes=["oud-explainer"],
            )
            RawHTML(tag="div", unsafe_innerHTML="<b>Scenarios to compare with it</b>", style="margin-top: 8px")
            with solara.Column(gap="0px", classes=["oud-scenario-list"]):
                for name, scenario in available.items():
                    if name == comparator.value:
                        continue
                    solara.Checkbox(
                        label=name,
                        value=name in chosen.value,
                        on_value=lambda on, name=name: toggle(name, on),
                    )
                    RawHTML(tag="div", unsafe_innerHTML=_e(scenario.description), classes=["oud-explainer"])
            if mine is None:
                RawHTML(
                    tag="div",
                    classes=["oud-explainer"],
                    unsafe_innerHTML=(
                        "“my Explore settings” is offered here once the Explore page has handed its settings over."
                    ),
                )
        with solara.Card("Runs", margin=0):
            solara.SliderInt("Replicates per scenario (runs)", value=replicates, min=2, max=50, thumb_label="always")
            solara.SliderInt("Horizon (years after burn-in)", value=years, min=1, max=20, thumb_label="always")
            solara.Select("Population (people)", value=population, values=POPULATIONS)
            solara.InputInt("Random seed (whole number)", value=seed)
            solara.SliderInt(
                "Worker processes", value=workers, min=1, max=max(os.cpu_count() or 1, 1), thumb_label="always"
            )
            RawHTML(
                tag="div",
                classes=["oud-explainer"],
                unsafe_innerHTML=(
                    "Replicate i of every scenario shares a seed, so each scenario is compared with the "
                    "comparator on the same luck (paired differences). Each run starts with a burn-in of "
                    "10 years before week 0, on this server's CPU: more people, replicates or years take longer."
                ),
            )

            def start() -> None:
                names = [comparator.value, *others]
                progress_counts.set((0, len(names) * replicates.value))
                comparison(
                    [available[n] for n in names],
                    comparator.value,
                    replicates.value,
                    float(years.value),
                    int(population.value),
                    int(seed.value or 0),
                    workers.value,
                )

            with solara.Row():
                solara.Button(
                    "Run comparison", color="primary", disabled=comparison.pending or not others, on_click=start
                )
                solara.Button("Cancel", disabled=not comparison.pending, on_click=comparison.cancel)

    with solara.Column(gap="6px", classes=["oud-compare"]):
        RawHTML(tag="h2", unsafe_innerHTML="Compare scenarios")
        # Plain HTML, not solara.Markdown: Markdown loads KaTeX from a CDN that solara-assets lacks.
        RawHTML(
            tag="div",
            unsafe_innerHTML=(
                "Choose a comparator and the scenarios to compare with it on the left, then press "
                "<b>Run comparison</b>. Runs go on in the background; the page stays usable. Each scenario is "
                "shown as its difference from the comparator, replicate by replicate on the same seeds, "
                "with a 95% interval of the mean difference: an interval that leaves out zero is a "
                "difference beyond chance."
            ),
        )
        if not others:
            Notice("info", "Choose at least one scenario other than the comparator.")
        if comparison.pending:
            done, total = progress_counts.value
            solara.ProgressLinear(value=comparison.progress or 0)
            RawHTML(
                tag="div",
                unsafe_innerHTML=f"Running: {done} of {total} runs done",
                attributes={"data-testid": "progress-text", "role": "status"},
            )
        if comparison.error:
            Notice("error", f"The comparison failed: {comparison.exception}")
        if comparison.cancelled:
            Notice("warning", "Cancelled.")
        run = comparison.value if comparison.finished else None
        if run is not None and not run.frame.empty:
            ComparisonResults(run, measure)


@solara.component
def ComparisonResults(run: ComparisonRun, measure: solara.Reactive[str]) -> None:
    df, comparator = run.frame, run.comparator
    shown = solara.use_memo(lambda: display_frame(df, run.population), [df])
    table = solara.use_memo(lambda: difference_table(df, comparator, run.population), [df])
    m = MEASURE_BY_KEY[measure.value]
    paired = solara.use_memo(lambda: paired_over_time(shown, m.key, comparator), [shown, m.key])
    png = solara.use_memo(lambda: figure_png(differences_figure(paired, m, comparator, run.starts)), [paired, m.key])
    reps = df.groupby("scenario", sort=False)["replicate"].nunique()
    others = [s for s in reps.index if s != comparator]
    labels = {x.label: x.key for x in MEASURES}

    Notice("success", f"Finished: {', '.join(f'{s} ({n} runs)' for s, n in reps.items())}.")
    RawHTML(tag="h3", unsafe_innerHTML=f"Difference from {_e(comparator)} over time")
    solara.Select(
        "Measure shown over time",
        value=m.label,
        values=list(labels),
        on_value=lambda label: measure.set(labels[label]),
    )
    with solara.Div(style={"max-width": "860px"}):
        Img(png_src(png), "compare-chart", figure_alt(paired, m, comparator, run.starts))
    RawHTML(
        tag="div",
        classes=["oud-explainer"],
        unsafe_innerHTML=(
            f"One panel per scenario. Line: the mean over replicates of (scenario − {_e(comparator)}), each "
            "replicate paired with the comparator's run on the same seed; band: the 95% confidence interval of "
            "that mean (t-interval); horizontal line: no difference; dashed line: the intervention starts. "
            "Rates over the past year use fewer weeks during the first year."
        ),
    )
    RawHTML(tag="div", unsafe_innerHTML=series_table_html(paired, m, comparator), style="overflow-x: auto")

    RawHTML(tag="h3", unsafe_innerHTML=f"Final-year differences from {_e(comparator)}")
    RawHTML(
        tag="div",
        classes=["oud-explainer"],
        unsafe_innerHTML=(
            "Each replicate's mean over the final simulated year (totals since week 0: at the end of the run), "
            "compared pair by pair. “Beyond chance”: the 95% interval of the mean difference leaves out zero. "
            "Relative change: the difference as a share of the comparator's value."
        ),
    )
    key_rows = table[table["key"].isin([x.key for x in MEASURES if x.key_metric] + [m.key])]
    for scenario in others:
        RawHTML(tag="h4", unsafe_innerHTML=f"{_e(scenario)} compared with {_e(comparator)}")
        row = key_rows[(key_rows["scenario"] == scenario) & (key_rows["key"] == m.key)]
        if not row.empty:
            r = row.iloc[0]
            RawHTML(
                tag="p",
                unsafe_innerHTML=_e(r["verdict"]),
                classes=["oud-verdict"],
                attributes={"data-testid": f"verdict-{scenario}"},
            )
        RawHTML(
            tag="div",
            unsafe_innerHTML=scenario_table_html(key_rows, scenario, comparator, highlight=m.key),
            style="overflow-x: auto",
        )

    RawHTML(tag="h3", unsafe_innerHTML="Downloads")
    with solara.Row():
        DownloadButton.element(
            label="Differences over time (CSV)",
            filename="oudsim-differences-over-time.csv",
            testid="download-series",
            make=lambda: series_csv(shown, comparator),
        )
        DownloadButton.element(
            label="Final-year differences (CSV)",
            filename="oudsim-differences.csv",
            testid="download-table",
            make=lambda: table.drop(columns=["key"]).to_csv(index=False).encode(),
        )
        DownloadButton.element(
            label="Every run (CSV)",
            filename="oudsim-runs.csv",
            testid="download-runs",
            make=lambda: df.to_csv(index=False).encode(),
        )
