"""OUDModel: the Mesa model that owns the arrays, the network and the schedule of processes."""

from __future__ import annotations

import copy
import math
import os
import time
from typing import Any

import mesa
import networkx as nx
import numpy as np
import pandas as pd

from oudsim.agents.person import Person
from oudsim.agents.population import FIELD_NAMES, NewcomerPool, Population
from oudsim.agents.states import ACTIVE_USE, HAS_OUD, RECOVERING, Care, Stage
from oudsim.model import accounting, metrics
from oudsim.model.interventions import Intervention, InterventionSchedule
from oudsim.model.jit import new_stream, reseed_streams, threads_allowed, use_threads
from oudsim.model.network import build_network
from oudsim.model.parameters import Parameters, apply_overrides
from oudsim.model.processes import SCHEDULE, social
from oudsim.model.processes.treatment import slots
from oudsim.model.rates import GroupFactors
from oudsim.model.transitions import TransitionLog

# What the processes own, in schedule order (each module declares its STREAMS and FLOWS): a random
# stream per mechanism, drawn from the model's rng in this order, and the flows counted in a step.
STREAMS = tuple(name for process in SCHEDULE for name in process.STREAMS)
FLOWS = (*(name for process in SCHEDULE for name in process.FLOWS), "oud_at_start")
NO_FLOWS = dict.fromkeys(FLOWS, 0)

THREADS_FROM = 50_000  # people from which a model uses every core by default (bench/bench_engine.py)


def requested_threads() -> int | None:
    """The threads ``OUDSIM_THREADS`` asks for (``oudsim --threads``; worker processes get their share
    of the cores there), checked; None when it is not set."""
    env = os.environ.get("OUDSIM_THREADS", "").strip()
    return check_threads(int(env) if env.isdigit() else env) if env else None


def default_threads(population: int) -> int:
    """``requested_threads()`` if set, else every core this process may use from ``THREADS_FROM``
    people up, and one below."""
    asked = requested_threads()
    if asked is not None:
        return asked
    return min(cores(), threads_allowed()) if population >= THREADS_FROM else 1


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_threads(threads: Any) -> int:
    """A number of threads from 1 to ``jit.threads_allowed()``, or a ValueError that says so."""
    top = threads_allowed()
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or not 1 <= threads <= top:
        raise ValueError(
            f"threads = {threads!r}: a whole number from 1 to {top} (the threads numba may start here; "
            "NUMBA_NUM_THREADS raises the limit; OUDSIM_THREADS or oudsim --threads sets the default)"
        )
    return int(threads)


class OUDModel(mesa.Model):
    """Mental health and opioid use disorder on a social network.

    Args:
        population: number of people (overrides ``simulation.population``).
        rng: seed or generator, as in ``mesa.Model``; one generator drives everything.
        params: a ``Parameters`` tree (defaults: the calibrated baseline).
        interventions: ``Intervention`` objects or dicts (see model.interventions).
        graph: a networkx graph to use as the known ties (its first ``population`` nodes).
        check_invariants: check the model's invariants after every process of every step, burn-in
            included (model.invariants; slow: for tests and debugging), raising InvariantError.
        agents: make a Mesa agent (``Person``) per person and log each one's stage changes, for
            ``model.agents``, ``person(row)`` and the dashboard's inspector. Without them (experiments)
            the model is quicker to build and to copy and gives the same metrics.
        threads: threads for the passes over people and ties (model.jit.Threaded); the results are
            the same on any number. Default: every core from 50,000 people up, else one (below
            that, starting threads costs more than they save).
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
        check_invariants: bool = False,
        agents: bool = True,
        threads: int | None = None,
        **overrides: Any,
    ) -> None:
        # Mesa's SolaraViz passes its own `scenario=` on reset; parameters come from params and overrides.
        del scenario
        if params is not None and not isinstance(params, Parameters):
            raise TypeError(
                f"params must be a Parameters tree, not {type(params).__name__}: use Parameters.build({{...}}) "
                "or pass dotted names as keywords (OUDModel(**{'treatment.seek_rate': 2.0}))"
            )
        if graph is not None and not isinstance(graph, nx.Graph):
            raise TypeError(f"graph must be a networkx graph, not {type(graph).__name__}")
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
        self.check_invariants = check_invariants
        self.threads = check_threads(
            default_threads(self.base_params.simulation.population) if threads is None else threads
        )
        use_threads(self.threads)
        self.process_seconds: dict[str, float] | None = None  # time per process, when a dict (bench)
        self.flows = dict(NO_FLOWS)
        self.cohorts = metrics.CareCohorts(self.base_params.simulation.dt_weeks)  # retention in care
        self.total_deaths = self.total_alone_deaths = 0  # overdose deaths since week 0, and those alone
        self.total_oud_deaths = 0  # deaths of people with OUD (all causes) since week 0
        self.transitions = TransitionLog()
        self._people: list[Person] | None = None
        self.has_agents = False  # (ids are given from week 0, when burn-in is over)
        self.uid = np.full(self.base_params.simulation.population, -1, dtype=np.int64)

        self.population = Population.initial(self.base_params, self.rng)
        self.factors = GroupFactors()  # per-person log factors by age band, SES and ACE, cached
        # This step's deaths, as compiled processes find them (agents.population.mark_deceased): their
        # rows, replaced at the end of the step, and [how many died, how many of them had OUD].
        self.dead_rows = np.empty(self.population.n, dtype=np.int64)
        self.died = np.zeros(2, dtype=np.int64)
        self._newcomers = NewcomerPool(batch=max(256, self.population.n // 100))
        self.newcomer_rows = np.empty(0, dtype=np.int64)  # the last step's newcomers (social ends old ties)
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
        self._stream_states = np.stack([new_stream(self.rng) for _ in STREAMS])  # one row a stream
        self._stream_keys = self._stream_states[:, 0].copy()  # reseeded from these every step
        self.streams = {name: self._stream_states[k] for k, name in enumerate(STREAMS)}
        self._initial_care()
        social.refresh(self)
        for _ in range(burn_in):
            self._advance()
        self.week = 0

        # Mesa agents and the log of their stage changes, for the person inspector. The ids are Mesa's
        # (1..n, then newcomers in turn) from here; the Person objects are made when first asked for
        # (``people``, ``agents``, ``person``): a million of them take seconds a run may never need.
        self.has_agents = agents
        if agents:
            self.uid[:] = np.arange(self.agent_id_counter, self.agent_id_counter + self.population.n)
            self.agent_id_counter += self.population.n
            self.transitions.recording = True
        self.datacollector = metrics.MetricCollector()
        self.metrics = metrics.compute(self)
        self.datacollector.collect(self)

    # Not copied or pickled: what holds views of this model's arrays (rebuilt on the copy, or on first use).
    _REBUILT = ("derived", "factors", "streams")

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._REBUILT}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.derived, self.factors = {}, GroupFactors()
        self.streams = {name: self._stream_states[k] for k, name in enumerate(STREAMS)}

    def __deepcopy__(self, memo: dict) -> OUDModel:
        """A copy that steps exactly as the original would, and apart from it: everything is copied
        but what holds views of this model's arrays (the compiled processes' argument lists, the
        per-person factor rows, the streams as views of the stream states), which the copy rebuilds."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new

    def start_interventions(self, interventions: list[Intervention | dict]) -> None:
        """From this week on, run with these interventions instead. Allowed while neither the model's
        interventions nor these have acted (model.interventions.InterventionSchedule.first_week): up to
        then the run is the same with either, so a copy of one model can start every arm of a
        comparison, with the frames each would give if built afresh with its interventions."""
        schedule = InterventionSchedule(interventions, self.base_params)
        dt = self.base_params.simulation.dt_weeks
        for which, first in (("its interventions", self.schedule_of_interventions.first_week(dt)),
                             ("the new interventions", schedule.first_week(dt))):  # fmt: skip
            if self.week < 0 or (first is not None and self.week >= first):
                raise ValueError(
                    f"start_interventions at week {self.week}: only from week 0 and before any intervention "
                    f"acts ({which} act from week {first})"
                )
        self.schedule_of_interventions = schedule

    # -- stepping -------------------------------------------------------------------------
    def run_for(self, duration: float | int) -> None:
        """Mesa's run_for: ``duration`` steps. A negative, fractional or non-finite duration is refused
        (Mesa would silently do nothing, or run the whole steps below it)."""
        if isinstance(duration, bool) or not isinstance(duration, int | float | np.integer | np.floating):
            raise TypeError(f"run_for({duration!r}): the number of steps must be a number")
        if not math.isfinite(duration) or duration < 0 or duration != int(duration):
            raise ValueError(f"run_for({duration!r}): the number of steps must be a whole number >= 0")
        super().run_for(int(duration))

    def step(self) -> None:
        self._advance()
        self.total_deaths += self.flows["overdose_deaths"]
        self.total_alone_deaths += self.flows["alone_overdose_deaths"]
        self.total_oud_deaths += self.flows["oud_deaths"]
        self.metrics = metrics.compute(self)
        self.datacollector.collect(self)

    def _advance(self) -> None:
        """One step of every process, in the order of docs/ODD.md 1.3 (without recording)."""
        self.week += 1
        use_threads(self.threads)  # (models in one process may ask for different numbers)
        reseed_streams(self._stream_states, self._stream_keys, self.week)
        # Interventions act from week 1: week 0 is the last step of burn-in (start_year 0 means "from
        # the first reported step", and a scenario's week 0 is its baseline's).
        if self.week > 0 and self.schedule_of_interventions.items:
            new = self.schedule_of_interventions.parameters_at(self.year)
            if new is not None:
                self.params = new
        f = self.flows
        f.update(NO_FLOWS)
        f["oud_at_start"] = metrics.count_oud(self.population.stage)
        if self.check_invariants or self.process_seconds is not None:
            self._advance_observed()
        else:
            for process in SCHEDULE:
                process.step(self)
        if self.week > -self.cohorts.size:  # (the cohorts of the last weeks of burn-in count too)
            pop = self.population
            self.cohorts.update(self.week, self.flows["admissions"], pop.stage, pop.stage_since)

    def _advance_observed(self) -> None:
        """The schedule with each process timed (``process_seconds``) and followed by the invariant
        checks (``check_invariants``)."""
        from oudsim.model import invariants

        clock = self.process_seconds
        for process in SCHEDULE:
            t = time.perf_counter()
            process.step(self)
            if clock is not None:
                name = process.__name__.rsplit(".", 1)[-1]
                clock[name] = clock.get(name, 0.0) + time.perf_counter() - t
            if self.check_invariants:
                invariants.check(self, after=process.__name__.rsplit(".", 1)[-1])

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

    def log_table(self) -> np.ndarray:
        """The transition log's table with room for everyone to change stage once: what a compiled
        process that changes stages is handed each step (model.transitions.append; model.binding)."""
        return self.transitions.room(self.uid.size)

    def shared(self) -> dict[str, Any]:
        """What the model shares with every compiled process, by the name a kernel's parameter takes
        (model.binding): the population's fields, the network's arrays, the random streams as
        ``<name>_stream``, the transition log (``count``, ``uid``), this step's deaths (``died``,
        ``dead_rows``), working memory, per-stage tables and the step length ``dt`` in years."""
        pop, net = self.population, self.network
        out: dict[str, Any] = {name: getattr(pop, name) for name in FIELD_NAMES}
        out.update(net.arrays())
        out.update({f"{name}_stream": stream for name, stream in self.streams.items()})
        out.update(
            count=self.transitions.count, uid=self.uid, died=self.died, dead_rows=self.dead_rows,
            scratch=self.scratch, scratch_f=self.scratch_f, flags=self.scratch_flags, recent=self.recent,
            has_oud=HAS_OUD, active_use=ACTIVE_USE, recovering=RECOVERING, dt=self.dt_years,
        )  # fmt: skip
        return out

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
        years, qalys = accounting.life_lost(self.params.economics, self.population.age[rows])
        self.flows["life_years_lost"] += years
        self.flows["qalys_lost"] += qalys
        pool, idx = self._newcomers.take(rows.size, self.params, self.rng)
        self.population.replace(rows, pool, idx, self.week)
        self.newcomer_rows = rows.copy()  # their ties end in the next social step; theirs form anew
        self.factors.update_rows(rows, self.population.group)
        if self.has_agents:
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
        self.cohorts.admit(self.week, to_int.size + to_med.size)  # a cohort for retention in care

    # -- views ------------------------------------------------------------------------------
    @property
    def people(self) -> list[Person] | None:
        """A Mesa agent (``Person``, a view onto a row) per person, by row; None with agents=False."""
        if self._people is None and getattr(self, "has_agents", False):
            # Made now, with the ids the rows already hold (Mesa's registration would number them anew).
            ids, counter = self.uid.copy(), self.agent_id_counter
            self._people = [Person(self, r) for r in range(self.population.n)]
            self.uid[:], self.agent_id_counter = ids, counter
        return self._people

    @property
    def agents(self) -> mesa.agent.AgentSet:
        """Mesa's set of every agent (the people, made on first use)."""
        _ = self.people
        return super().agents

    @property
    def agents_by_type(self) -> dict:
        _ = self.people
        return super().agents_by_type

    def person(self, row: int) -> Person:
        if self.people is None:
            raise ValueError("this model was built with agents=False: it has no Person agents to show")
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
