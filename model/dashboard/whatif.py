"""Explore's paired what-if: the baseline and "your settings" in lockstep from one shared history.

A student asks "what does this setting change?". One run cannot answer: its chance variation is as
large as the effects. So the page runs two models that share everything but the setting:

- both start from one week-0 state (one burn-in, one seed), and a model draws each mechanism from its
  own random stream (model/jit.py), so the runs differ only where the setting acts (common random
  numbers);
- a setting applies *now* (from the next week, as an intervention added to "your settings") or *from
  the start* (both runs go back to week 0);
- "repeat over N seeds" runs the same pair as two scenario files over N seeds with
  ``experiments.run_replicates`` and ``experiments.compare``, the code ``oudsim compare`` runs, so the
  page's interval and that command's agree by construction.

Nothing here needs Solara: the page (explore.py) shows what this computes, and the tests drive it
directly.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from oudsim.model.interventions import Intervention, InterventionSchedule
from oudsim.model.metrics import BY_NAME
from oudsim.model.oud_model import OUDModel
from oudsim.model.parameters import ALIASES, field_info, get_dotted
from oudsim.scenarios import Scenario, load_scenario

__all__ = [
    "SETTINGS",
    "SETUP",
    "Effect",
    "PairedRun",
    "Setting",
    "Setup",
    "effect_sentence",
    "scenario_toml",
]


@dataclass(frozen=True)
class Setting:
    """One slider: a parameter (by its short alias), its words, range and step."""

    name: str  # an alias of parameters.ALIASES
    label: str
    lo: float
    hi: float
    step: float
    fmt: str = "{:g}"
    scale: bool = False  # the slider is a multiple of the baseline's value (1 = as it is)

    @property
    def dotted(self) -> str:
        return ALIASES[self.name]

    @property
    def default(self) -> Any:
        return field_info(self.name)["default"]

    def show(self, value: float) -> str:
        return self.fmt.format(value)


# What a student can change while the model runs: each acts through an intervention on "your settings".
SETTINGS: tuple[Setting, ...] = (
    Setting("isolation", "Social isolation (× baseline rate of losing ties)", 0.0, 4.0, 0.1, "×{:g}"),
    Setting("peer_support", "Peer support (new ties a lonely person makes per tie-year)", 0.0, 2.0, 0.1),
    Setting("capacity", "OUD treatment slots (× the baseline's number)", 0.0, 4.0, 0.1, "×{:g}", scale=True),
    Setting("integrated_share", "Integrated dual-diagnosis care (share of OUD slots)", 0.0, 1.0, 0.05, "{:.0%}"),
    Setting("mh_capacity", "Mental-health care slots (× the baseline's number)", 0.0, 3.0, 0.1, "×{:g}", scale=True),
    Setting("mh_risk", "Mental-health disorder onset (× baseline rate)", 0.0, 4.0, 0.1, "×{:g}"),
    Setting("campaign", "Anti-stigma campaign (strength 0–1)", 0.0, 1.0, 0.05),
    Setting("naloxone_coverage", "Naloxone kits (share of people who use carrying one)", 0.0, 1.0, 0.05, "{:.0%}"),
)
BY_SETTING = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Setup:
    """What both runs share and only a new start changes: the people, their network and the seed."""

    population: int = 20_000
    seed: int = 42
    network_kind: str = field(default_factory=lambda: field_info("network_kind")["default"])
    mean_degree: int = field(default_factory=lambda: field_info("mean_degree")["default"])
    stigma: float = field(default_factory=lambda: field_info("stigma")["default"])
    burn_in_years: float = field(default_factory=lambda: field_info("burn_in_years")["default"])

    def overrides(self) -> dict[str, Any]:
        """Dotted parameter values this setup fixes (the seed is not a parameter)."""
        return {
            ALIASES[k]: getattr(self, k)
            for k in ("population", "network_kind", "mean_degree", "stigma", "burn_in_years")
        }

    def baseline(self) -> Scenario:
        """The shipped baseline with this setup's values: the "baseline" run as a scenario."""
        base = load_scenario("baseline")
        scenario = base.with_overrides(self.overrides(), name="explore_baseline")
        return dataclasses.replace(
            scenario, description="The baseline as set up on the Explore page.", path=None, extends="baseline"
        )


SETUP = Setup()


def start_year_for(week: int, dt_weeks: int) -> float:
    """The start year of an intervention applied after step ``week``: it acts from the next step.

    Half a step past ``week``, so a scenario run from the beginning (which compares the year with
    the start at every step) switches it on at exactly the step the page's copy does.
    """
    return 0.0 if week <= 0 else (week + 0.5) * dt_weeks / 52.0


class PairedRun:
    """Two models stepped together: ``baseline`` and ``arm`` ("your settings")."""

    def __init__(self, setup: Setup = SETUP, build: Callable[[Scenario, int], OUDModel] | None = None) -> None:
        self.setup = setup
        self.scenario = setup.baseline()
        build = build or (lambda sc, seed: sc.build_model(rng=seed))
        self.week0 = build(self.scenario, setup.seed)  # kept: "from the start" goes back to it
        self.baseline = copy.deepcopy(self.week0)
        self.arm = copy.deepcopy(self.week0)
        self.items: list[Intervention] = []  # what "your settings" changed, and from when
        self.applied: dict[str, float] = {}  # the settings in force in the arm now (aliases)
        self.version = 0  # counts applications: what is drawn is keyed by it

    # -- time -------------------------------------------------------------------------------
    @property
    def week(self) -> int:
        return self.baseline.week

    @property
    def year(self) -> float:
        return self.baseline.year

    @property
    def dt_weeks(self) -> int:
        return self.baseline.params.simulation.dt_weeks

    def step(self, weeks: int = 1) -> None:
        for _ in range(weeks):
            self.baseline.step()
            self.arm.step()

    # -- settings ---------------------------------------------------------------------------
    def baseline_value(self, name: str) -> float:
        """A setting's value in the baseline (1 for a multiple of the baseline's value)."""
        return 1.0 if BY_SETTING[name].scale else get_dotted(self.scenario.params, ALIASES[name])

    def current(self) -> dict[str, float]:
        """Every setting's value in "your settings" now (the baseline's where not changed)."""
        return {s.name: self.applied.get(s.name, self.baseline_value(s.name)) for s in SETTINGS}

    def apply(self, values: dict[str, float], now: bool = True) -> None:
        """Give "your settings" these values, from the next week (``now``) or from week 0."""
        unknown = set(values) - set(BY_SETTING)
        if unknown:
            raise ValueError(f"not a setting of the what-if: {', '.join(sorted(unknown))}")
        target = {**self.current(), **values}
        if now and target == self.current():
            return  # nothing changes
        self.version += 1
        # Every setting ever changed stays listed, so a later item also restores one set back.
        changed = {k: v for k, v in target.items() if k in self.applied or v != self.baseline_value(k)}
        if not now:
            self.baseline = copy.deepcopy(self.week0)
            self.arm = copy.deepcopy(self.week0)
            self.items = []
            changed = {k: v for k, v in target.items() if v != self.baseline_value(k)}
        if changed:
            item = Intervention(
                kind="custom",
                label="your settings",
                start_year=start_year_for(self.week, self.dt_weeks),
                set={ALIASES[k]: float(v) for k, v in changed.items() if not BY_SETTING[k].scale},
                scale={ALIASES[k]: float(v) for k, v in changed.items() if BY_SETTING[k].scale},
            )
            self.items.append(item)
        self.applied = {k: v for k, v in changed.items() if v != self.baseline_value(k)}
        if not self.items:
            return
        # The arm keeps its history; its schedule now holds every item, so it matches arm_scenario().
        schedule = InterventionSchedule(list(self.items), self.arm.base_params)
        self.arm.schedule_of_interventions = schedule

    @property
    def applied_years(self) -> list[float]:
        """When each change of "your settings" started (the charts mark them)."""
        return [i.start_year for i in self.items]

    def arm_scenario(self) -> Scenario:
        """ "Your settings" as a scenario: the baseline with the applied changes as interventions."""
        return dataclasses.replace(
            self.scenario,
            name="your_settings",
            description="Your settings from the Explore page.",
            interventions=tuple(self.items),
        )

    # -- reading ----------------------------------------------------------------------------
    def series(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """The metric over time in both runs (week 0 onwards)."""
        return (
            np.asarray(self.baseline.datacollector.model_vars[metric], dtype=float),
            np.asarray(self.arm.datacollector.model_vars[metric], dtype=float),
        )

    def now(self, metric: str) -> tuple[float, float]:
        return float(self.baseline.metrics[metric]), float(self.arm.metrics[metric])

    # -- repeat over seeds ------------------------------------------------------------------
    def repeat(
        self,
        seeds: int,
        workers: int = 1,
        progress: Callable[[int, int], None] | None = None,
        years: float | None = None,
    ) -> Effects:
        """The pair over ``seeds`` seeds, to the current week: paired differences with 95% intervals."""
        from oudsim.model.experiments import compare, final_year_means, run_replicates

        years = self.year if years is None else years
        if years <= 0:
            raise ValueError("run the model for a while first: the repeat covers weeks 0 to now")
        base, arm = self.scenario, self.arm_scenario()
        frame = run_replicates(
            [base, arm], replicates=seeds, years=years, seed=self.setup.seed, workers=workers, progress=progress
        )
        table = compare(final_year_means(frame), base.name, [arm.name])
        return Effects(table=table, seeds=seeds, years=years, setup=self.setup, scenarios=(base, arm))


@dataclass(frozen=True)
class Effect:
    metric: str
    diff: float
    lo: float
    hi: float
    base: float
    n: int

    @property
    def beyond_chance(self) -> bool:
        return bool(self.lo > 0 or self.hi < 0)


@dataclass(frozen=True)
class Effects:
    """What a repeat over seeds found: ``experiments.compare``'s table, one row per metric."""

    table: pd.DataFrame
    seeds: int
    years: float
    setup: Setup
    scenarios: tuple[Scenario, Scenario]  # the baseline and your settings, as run

    def effect(self, metric: str) -> Effect:
        row = self.table[self.table["metric"] == metric].iloc[0]
        return Effect(
            metric, float(row["diff"]), float(row["lo"]), float(row["hi"]), float(row["base_mean"]), int(row["n"])
        )

    def command(self) -> str:
        """The command line that reproduces these numbers, on the scenario files named after them."""
        base, arm = self.scenarios
        return (
            f"oudsim compare {base.name}.toml {arm.name}.toml -n {self.seeds} -y {self.years:g} "
            f"-p {self.setup.population} --seed {self.setup.seed}"
        )


def _is_share(metric: str) -> bool:
    m = BY_NAME[metric]
    return m.kind == "share" and "score" not in m.unit


def _unit(metric: str) -> tuple[float, str]:
    """How a metric is said: shares in percentage points, others in their unit."""
    if _is_share(metric):
        return 100.0, "percentage points"
    return 1.0, BY_NAME[metric].unit


def _digits(value: float) -> int:
    return 1 if abs(value) >= 10 else 2 if abs(value) >= 0.1 else 3


def format_amount(metric: str, value: float, signed: bool = True) -> str:
    """A value in the metric's unit for a sentence: shares in percentage points, counts as numbers."""
    scale, unit = _unit(metric)
    return f"{value * scale:{'+' if signed else ''},.{_digits(value * scale)}f} {unit}"


def effect_sentence(effect: Effect, seeds: int, years: float) -> str:
    """What a repeat found, in plain words: the mean difference, its 95% interval and whether it
    is beyond chance (the interval excludes zero)."""
    what = BY_NAME[effect.metric].label
    what = what[0].lower() + what[1:] if not what[:4].isupper() else what
    scale, unit = _unit(effect.metric)
    d = _digits(max(abs(effect.diff), abs(effect.lo), abs(effect.hi)) * scale)
    if not math.isfinite(effect.lo):
        return f"Over {seeds} seeds your settings changed {what} by {effect.diff * scale:+,.{d}f} {unit}."
    direction = "raised" if effect.diff > 0 else "lowered" if effect.diff < 0 else "did not change"
    head = f"Over {seeds} seeds, in year {years:.1f}, your settings {direction} {what}"
    head += f" by {abs(effect.diff) * scale:,.{d}f} {unit}" if effect.diff else ""
    interval = f"95% interval {effect.lo * scale:+,.{d}f} to {effect.hi * scale:+,.{d}f}"
    if effect.beyond_chance:
        return f"{head} ({interval}). The interval leaves out zero: the effect is beyond chance."
    return (
        f"{head} ({interval}). The interval includes zero: this could be chance. More seeds or more people narrow it."
    )


# -- scenario files ----------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def scenario_toml(scenario: Scenario, extends: str = "baseline") -> str:
    """A scenario file for ``oudsim run/compare``: its overrides and interventions, nothing else."""
    lines = [
        f"name = {_toml_value(scenario.name)}",
        f"description = {_toml_value(scenario.description)}",
        f"extends = {_toml_value(extends)}",
        "",
    ]
    overrides = {k: v for k, v in scenario.overrides.items() if k != "simulation.population"}
    if overrides:
        lines.append("[parameters]")
        lines += [f'"{k}" = {_toml_value(v)}' for k, v in overrides.items()]
        lines.append("")
    for item in scenario.interventions:
        lines += [
            "[[interventions]]",
            'kind = "custom"',
            f"label = {_toml_value(item.label or 'your settings')}",
            f"start_year = {item.start_year!r}",
        ]
        sets = ", ".join(f'"{k}" = {_toml_value(c.amount)}' for k, c in item.changes.items() if c.mode == "to")
        scales = ", ".join(f'"{k}" = {_toml_value(c.amount)}' for k, c in item.changes.items() if c.mode == "scale")
        if sets:
            lines.append(f"set = {{ {sets} }}")
        if scales:
            lines.append(f"scale = {{ {scales} }}")
        lines.append("")
    return "\n".join(lines)
