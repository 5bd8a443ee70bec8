"""OUDModel: the Mesa model that owns the arrays, the network and the schedule of processes."""

from __future__ import annotations

from typing import Any

import mesa
import networkx as nx
import numpy as np
import pandas as pd

from oudsim.agents.person import Person
from oudsim.agents.population import NewcomerPool, Population
from oudsim.agents.states import HAS_OUD, Care, Stage
from oudsim.model import metrics
from oudsim.model.interventions import Intervention, InterventionSchedule
from oudsim.model.jit import new_stream
from oudsim.model.network import build_network
from oudsim.model.parameters import Parameters, apply_overrides
from oudsim.model.processes import SCHEDULE, social
from oudsim.model.processes.treatment import slots
from oudsim.model.rates import GroupFactors
from oudsim.model.transitions import TransitionLog

STREAMS = (
    "life_events", "mental_health", "social", "use", "care", "admission", "mh_care", "overdose", "bereavement",
    "demography",
)  # fmt: skip
FLOWS = (
    "new_oud",
    "overdoses",
    "overdose_deaths",
    "alone_overdoses",
    "oud_deaths",
    "deaths",
    "admissions",
    "oud_at_start",
)
NO_FLOWS = dict.fromkeys(FLOWS, 0)


class OUDModel(mesa.Model):
    """Mental health and opioid use disorder on a social network.

    Args:
        population: number of people (overrides ``simulation.population``).
        rng: seed or generator, as in ``mesa.Model``; one generator drives everything.
        params: a ``Parameters`` tree (defaults: the calibrated baseline).
        interventions: ``Intervention`` objects or dicts (see model.interventions).
        graph: a networkx graph to use as the known ties (its first ``population`` nodes).
        **overrides: dotted parameter names (``"treatment.seek_rate"``) or aliases (``isolation``,
            ``stigma``, ``capacity``, ``naloxone_coverage`` ... see parameters.ALIASES).
    """

    def __init__(
        self,
        population: int | None = None,
        rng: Any = None,
        params: Parameters | None = None,
        interventions: list[Intervention | dict] | None = None,
        graph: nx.Graph | None = None,
        scenario: Any = None,
        **overrides: Any,
    ) -> None:
        # Mesa's SolaraViz passes its own `scenario=` on reset; parameters come from params and overrides.
        del scenario
        super().__init__(rng=rng)
        if population is not None:
            overrides["simulation.population"] = population
        base = params if params is not None else Parameters()
        self.base_params = apply_overrides(base, overrides) if overrides else base
        self.params = self.base_params
        self.derived: dict = {}  # what processes derive from self.params, kept per set (rates.per_parameters)
        self.schedule_of_interventions = InterventionSchedule(interventions or [], self.base_params)
        self.dt_years = self.base_params.dt_years
        burn_in = int(round(self.base_params.simulation.burn_in_years * 52 / self.base_params.simulation.dt_weeks))
        self.week = -burn_in  # step counter; 0 is the end of burn-in, where recording starts
        self.flows = dict(NO_FLOWS)
        self.transitions = TransitionLog()
        self.people: list[Person] | None = None
        self.uid = np.full(self.base_params.simulation.population, -1, dtype=np.int64)

        self.population = Population.initial(self.base_params, self.rng)
        self.factors = GroupFactors()  # per-person log factors by age band, SES and ACE, cached
        # This step's deaths, as compiled processes find them (agents.population.mark_deceased): their
        # rows, replaced at the end of the step, and [how many died, how many of them had OUD].
        self.dead_rows = np.empty(self.population.n, dtype=np.int64)
        self.died = np.zeros(2, dtype=np.int64)
        pop = self.population
        self._death_arrays = (
            pop.stage, pop.stage_since, pop.care, pop.in_mh_care, pop.waiting, HAS_OUD, Stage.DECEASED.value,
            Care.NONE.value, self.died, self.dead_rows,
        )  # fmt: skip
        self._newcomers = NewcomerPool(batch=max(256, self.population.n // 100))
        self.recent = np.zeros(self.population.n, dtype=bool)  # recent life event, set each step
        # Working memory the compiled processes reuse every step (lists of rows found, per-person
        # intermediates): allocating it afresh each step costs page faults (measured ~10% of a step).
        self.scratch = np.empty(3 * self.population.n, dtype=np.int64)
        self.scratch_f = np.empty(self.population.n, dtype=np.float32)
        self.scratch_flags = np.empty(self.population.n, dtype=np.uint8)
        self.network = build_network(self.base_params.network, self.population.n, self.rng, graph)
        # What the compiled processes draw from (model.jit): a stream per mechanism, so that a change in
        # one (a scenario arm) leaves the draws of the others in step with the paired run (common random
        # numbers), which keeps paired comparisons between scenarios sharp.
        self.streams = {name: new_stream(self.rng) for name in STREAMS}
        self._initial_care()
        social.refresh(self)
        for _ in range(burn_in):
            self._advance()
        self.week = 0

        self.people = [Person(self, r) for r in range(self.population.n)]  # ids: Mesa's, 1..n
        self.transitions.recording = True
        self.datacollector = metrics.MetricCollector()
        self.metrics = metrics.compute(self)
        self.datacollector.collect(self)

    # -- stepping -------------------------------------------------------------------------
    def step(self) -> None:
        self._advance()
        self.metrics = metrics.compute(self)
        self.datacollector.collect(self)

    def _advance(self) -> None:
        """One step of every process, in the order of DESIGN §1 (without recording)."""
        self.week += 1
        if self.schedule_of_interventions.items:
            new = self.schedule_of_interventions.parameters_at(self.year)
            if new is not None:
                self.params = new
        f = self.flows
        f.update(NO_FLOWS)
        f["oud_at_start"] = metrics.count_oud(self.population.stage)
        for process in SCHEDULE:
            process.step(self)

    @property
    def year(self) -> float:
        """Simulated years since the end of burn-in."""
        return self.week * self.params.simulation.dt_weeks / 52.0

    # -- state changes shared by processes ------------------------------------------------
    def set_stage(self, rows: np.ndarray, stage: Stage) -> None:
        if rows.size == 0:
            return
        pop = self.population
        self.transitions.record(self.week, self.uid[rows], pop.stage[rows], int(stage))
        pop.set_stage(rows, stage, self.week)

    def log(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """What a compiled process that changes stages needs to log the changes (model.transitions.append):
        the table, with room for everyone to change once, its count, the ids, the week."""
        t = self.transitions
        return t.room(self.uid.size), t.count, self.uid, self.week

    def deaths(self) -> tuple:
        """What a compiled process needs to mark people deceased as it finds them
        (agents.population.mark_deceased), the log included."""
        return *self._death_arrays, *self.log()

    def replace_deceased(self) -> None:
        """Newcomers take the rows of everyone who died this step, in row order."""
        k = self.died.item(0)
        if k == 0:
            return
        self.flows["deaths"] += k
        self.flows["oud_deaths"] += self.died.item(1)
        self.died.fill(0)
        rows = self.dead_rows[:k]
        rows.sort()  # in row order (the step's deaths come in two ascending runs)
        pool, idx = self._newcomers.take(rows.size, self.params, self.rng)
        self.population.replace(rows, pool, idx, self.week)
        self.factors.update_rows(rows, self.population.group)
        if self.people is not None:
            # Newcomers get the next ids of Mesa's counter; the agent of the row (a view) stays.
            self.uid[rows] = np.arange(self.agent_id_counter, self.agent_id_counter + rows.size)
            self.agent_id_counter += rows.size

    def _initial_care(self) -> None:
        pop, ini = self.population, self.base_params.initial
        cap_med, cap_int, cap_mh = slots(self)
        oud = np.flatnonzero(pop.stage == Stage.OUD.value)
        k = min(int(round(oud.size * ini.treated_share)), cap_med + cap_int)
        chosen = self.rng.permutation(oud)[:k]
        dual = pop.any_mh[chosen]
        to_int = chosen[dual][:cap_int]
        to_med = np.setdiff1d(chosen, to_int)[:cap_med]
        pop.care[to_int] = Care.INTEGRATED
        pop.care[to_med] = Care.MEDICATION
        pop.set_stage(np.concatenate([to_int, to_med]), Stage.TREATMENT, self.week)

    # -- views ------------------------------------------------------------------------------
    def person(self, row: int) -> Person:
        return self.people[row]

    @property
    def graph(self) -> nx.Graph:
        """The active ties as a networkx graph (built on demand; costly at large sizes)."""
        return self.network.to_networkx()

    def subgroup_table(self, by: str) -> pd.DataFrame:
        return metrics.subgroup_table(self, by)

    def metrics_frame(self) -> pd.DataFrame:
        """The DataCollector frame with ``step`` and ``year`` columns."""
        df = self.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        df.insert(0, "step", np.arange(len(df)))
        df.insert(1, "year", df["step"] * self.params.simulation.dt_weeks / 52.0)
        return df
