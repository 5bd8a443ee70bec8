"""Validation: each mechanism of the source article, checked in the full model in the direction it states.

The source article (docs/evidence.md, mechanisms M1-M12) says how mental health and OUD drive each other.
Each check runs replicated models of the calibrated baseline (paired seeds) and, where the check is
causal, the same model with that one mechanism switched off (its ratios set to 1) from the start.
Two kinds of evidence, each a one-sided test at p < 0.05:

- **Within the baseline**: hazards measured step by step on the people at risk (initiation with and
  without an active disorder, progression by distress, seeking by stigma, relapse by craving ...).
  Events and person-steps are pooled over replicates; an exact conditional (binomial) test of the
  rate ratio must reject "no difference".
- **Mechanism on vs off**: the rate ratio with the mechanism switched off must be lower (z-test on
  the log of the ratio of rate ratios), which shows the mechanism, not a confounder such as ACEs,
  makes the difference; or a population outcome must move (paired t-test over replicates).

``tests/test_mechanisms.py`` checks each ratio in one process on a crafted population, and
``tests/test_directions.py`` checks isolation, stigma, campaigns, capacity and self-medication on
population outcomes; this module checks the article's statements as the whole model plays them out.

Run as a script to print every check's numbers and draw the figures of docs/validation.md from
exactly these checks::

    python -m tests.test_validation --figures docs/figures --markdown docs/validation_results.md
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy import stats

from oudsim.agents.states import Care, Stage
from oudsim.model import OUDModel
from oudsim.model.metrics import odds_ratio

pytestmark = pytest.mark.slow

N = 10_000  # people per replicate
REPS = 16  # paired seeds per arm (16: enough power for the weakest sub-check, the median split of internalised stigma)
BURN_IN = 6.0  # years before recording (10 years in all, so the ACE gradient has formed)
YEARS = 4.0  # years observed
ALPHA = 0.05
FOLLOW_WEEKS = 26  # cohort follow-up (integrated care; relapse and discontinuation, E15, E16)
SEED0 = 5000

# Mechanisms switched off (ratios set to 1) for the whole run, one arm each.
OFF = {
    "self_medication": {"use.mh_hr": 1.0},
    "impulsivity": {"use.impulsivity_hr": 1.0},
    "traits_progression": {"use.dysregulation_hr": 1.0, "use.risk_appraisal_hr": 1.0},
    "withdrawal": {"social.withdrawal_hr_mh": 1.0, "social.withdrawal_hr_oud": 1.0},
    "dual_stigma": {"stigma.dual_stigma_factor": 1.0},
    "craving_relapse": {"use.craving_relapse_hr": 1.0},
    "use_worsens_mh": {"mental_health.oud_hr": 1.0, "mental_health.craving_hr": 1.0},
    "referral": {"treatment.overdose_referral": 0.0},
    "care_mortality": {"demography.care_mortality_hr": 1.0, "overdose.treatment_hr": 1.0},
    "alone": {"overdose.tie_presence": 1.0, "overdose.alone_stigma": 0.0},
    "peers": {"use.peer_hr": 1.0, "treatment.peer_recovery_hr": 1.0},
}
INTEGRATED_SHARE = 0.3  # the integrated-care arm: 30% of OUD slots integrated (10% at baseline)


# -- observing hazards within runs -------------------------------------------------------------


@dataclass
class Tally:
    """Events and person-steps at risk, for an unexposed (0) and an exposed (1) group."""

    events: np.ndarray = field(default_factory=lambda: np.zeros(2))
    at_risk: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def add(self, at_risk: np.ndarray, exposed: np.ndarray, event: np.ndarray) -> None:
        for g, sel in ((1, at_risk & exposed), (0, at_risk & ~exposed)):
            self.at_risk[g] += np.count_nonzero(sel)
            self.events[g] += np.count_nonzero(sel & event)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.events + other.events, self.at_risk + other.at_risk)

    @property
    def ratio(self) -> float:
        """Rate ratio, exposed vs unexposed (per person-step: steps are short, ~ a hazard ratio)."""
        (k0, k1), (n0, n1) = self.events, self.at_risk
        return (k1 / n1) / (k0 / n0) if k0 and k1 and n1 and n0 else float("nan")

    @property
    def log_se(self) -> float:
        k0, k1 = self.events
        return math.sqrt(1 / max(k1, 1) + 1 / max(k0, 1))

    @property
    def ci(self) -> tuple[float, float]:
        r, se = self.ratio, self.log_se
        return r * math.exp(-1.96 * se), r * math.exp(1.96 * se)

    def p(self, alternative: str) -> float:
        """Exact test of the rate ratio against 1 (binomial, conditional on the event total)."""
        (k0, k1), (n0, n1) = self.events.astype(int), self.at_risk
        if k0 + k1 == 0:
            return 1.0
        return float(stats.binomtest(k1, k0 + k1, n1 / (n0 + n1), alternative=alternative).pvalue)


def p_ratio_greater(a: Tally, b: Tally) -> float:
    """One-sided z-test that a's rate ratio exceeds b's (log scale)."""
    z = (math.log(a.ratio) - math.log(b.ratio)) / math.hypot(a.log_se, b.log_se)
    return float(stats.norm.sf(z))


HAZARDS = (
    "initiation_by_disorder",
    "initiation_by_impulsivity",
    "progression_by_distress",
    "seeking_by_dual",
    "seeking_by_internal_stigma",
    "relapse_by_craving",
    "mh_onset_by_use",
    "initiation_by_loneliness",
    "mh_onset_by_loneliness",
    "seeking_by_overdose",
    "death_by_care",
    "initiation_by_peers",
    "seeking_by_recovery_ties",
)


class Cohort:
    """People entering a state, followed for FOLLOW_WEEKS: outcomes counted per group."""

    def __init__(self, n: int) -> None:
        self.entry = np.full(n, -1, dtype=np.int64)  # week of entry, -1 if not followed
        self.group = np.zeros(n, dtype=np.int8)
        self.flag = np.zeros(n, dtype=bool)  # an event seen during follow-up
        self.counts: dict[int, np.ndarray] = {}

    def start(self, rows: np.ndarray, week: int, group: np.ndarray | int = 0) -> None:
        self.entry[rows] = week
        self.group[rows] = group
        self.flag[rows] = False

    def drop(self, rows: np.ndarray) -> None:
        self.entry[rows] = -1

    def due(self, week: int) -> np.ndarray:
        return np.flatnonzero((self.entry >= 0) & (self.entry + FOLLOW_WEEKS <= week))

    def record(self, rows: np.ndarray, outcomes: list[np.ndarray]) -> None:
        """Add, per group: [followed, outcome 1 count, outcome 2 count, ...]; stop following."""
        for g in np.unique(self.group[rows]):
            sel = self.group[rows] == g
            row = np.array([sel.sum(), *(np.count_nonzero(o[sel]) for o in outcomes)], dtype=float)
            self.counts[int(g)] = self.counts.get(int(g), np.zeros_like(row)) + row
        self.drop(rows)


@dataclass
class Run:
    """What one replicate produced: pooled hazards, state summaries, final-state statistics."""

    tallies: dict[str, Tally]
    metrics: dict[str, float]  # means over the observed years
    degree_gap: float  # mean active ties, no disorder minus disorder
    loneliness_gap: float  # mean loneliness, disorder minus no disorder
    ace_oud: np.ndarray  # OUD prevalence by ACE group at the end
    ace_mh: np.ndarray  # disorder prevalence by ACE group at the end
    ace_or: float
    care: dict[int, np.ndarray]  # entries into care with a disorder, by Care: [n, in care, remitted]
    relapse: dict[int, np.ndarray]  # entries into remission: [n, relapsed within FOLLOW_WEEKS]
    dropout: dict[int, np.ndarray]  # admissions: [n, dropped out within FOLLOW_WEEKS]
    overdoses: np.ndarray  # [overdoses, deaths, overdoses alone, deaths alone] over the observed years
    waitlist_weeks: float  # share of steps with someone waiting for a slot


def observe(
    overrides: dict,
    seed: int,
    n: int = N,
    burn_in: float = BURN_IN,
    years: float = YEARS,
) -> Run:
    m = OUDModel(population=n, rng=seed, burn_in_years=burn_in, **overrides)
    pop = m.population
    tallies = {k: Tally() for k in HAZARDS}
    gaps = np.zeros(2)
    inc = m.params.mental_health.trait_increment
    care, relapse, dropout = Cohort(n), Cohort(n), Cohort(n)
    overdoses = np.zeros(4)
    waiting_steps = 0
    steps = int(round(years * 52))
    for _ in range(steps):
        st0, mh0, wait0 = pop.stage.copy(), pop.any_mh.copy(), pop.waiting.copy()
        in_mh_care0 = pop.in_mh_care.copy()
        using_ties0, recovery_ties0 = pop.using_ties.copy(), pop.recovery_ties.copy()
        distress0, crav0, istig0 = pop.distress.copy(), pop.craving.copy(), pop.internal_stigma.copy()
        impulsive0, lonely0 = pop.trait(0, inc), pop.loneliness.copy()
        uid0 = m.uid.copy()
        m.step()
        same = m.uid == uid0  # a row taken by a newcomer this step is not the same person
        for c in (care, relapse, dropout):
            c.drop(np.flatnonzero(~same))
        st1, mh1 = pop.stage, pop.any_mh
        none0, misuse0, oud0, rem0 = (st0 == s for s in (Stage.NONE, Stage.MISUSE, Stage.OUD, Stage.REMISSION))
        started = same & (st1 == Stage.MISUSE)
        tallies["initiation_by_disorder"].add(none0, mh0, started)
        well = none0 & ~mh0
        tallies["initiation_by_impulsivity"].add(well, impulsive0 > np.median(impulsive0[well]), started)
        tallies["progression_by_distress"].add(misuse0, distress0 > 0.5, same & (st1 == Stage.OUD))
        seeking = oud0 & ~wait0
        sought = same & (pop.waiting | (st1 == Stage.TREATMENT))
        # (out of mental-health care: referral from it raises seeking, a different mechanism)
        tallies["seeking_by_dual"].add(seeking & ~in_mh_care0, mh0, sought)
        alone = seeking & ~mh0
        if alone.any():
            tallies["seeking_by_internal_stigma"].add(alone, istig0 > np.median(istig0[alone]), sought)
        relapsed = same & rem0 & (st1 == Stage.OUD)
        tallies["relapse_by_craving"].add(rem0, crav0 > 0.5, relapsed)
        tallies["mh_onset_by_use"].add(~mh0, misuse0 | oud0, same & mh1)
        lonely = lonely0 > np.median(lonely0)
        tallies["initiation_by_loneliness"].add(well, lonely, started)
        tallies["mh_onset_by_loneliness"].add(~mh0, lonely, same & mh1)
        overdosed = same & (pop.last_overdose == m.week)  # survivors of this step's overdoses
        tallies["seeking_by_overdose"].add(seeking, overdosed, sought)
        with_oud = (st0 == Stage.OUD) | (st0 == Stage.TREATMENT)
        tallies["death_by_care"].add(with_oud, st0 == Stage.TREATMENT, ~same)
        tallies["initiation_by_peers"].add(well, using_ties0 > 0, started)
        tallies["seeking_by_recovery_ties"].add(alone, recovery_ties0 > 0, sought)
        f = m.flows
        overdoses += (f["overdoses"], f["overdose_deaths"], f["alone_overdoses"], f["alone_overdose_deaths"])
        waiting_steps += bool(pop.waiting.any())
        if mh1.any() and (~mh1).any():
            gaps += (
                pop.degree[~mh1].mean() - pop.degree[mh1].mean(),
                pop.loneliness[mh1].mean() - pop.loneliness[~mh1].mean(),
            )
        # cohorts: entries this step, events during follow-up, outcomes when due
        wk = m.week
        admitted = np.flatnonzero(same & (st0 != Stage.TREATMENT) & (st1 == Stage.TREATMENT))
        care.start(admitted[mh0[admitted]], wk, pop.care[admitted[mh0[admitted]]])
        dropout.start(admitted, wk)
        left = same & (st0 == Stage.TREATMENT) & (st1 == Stage.OUD)  # dropout goes back to OUD
        dropout.flag |= left & (dropout.entry >= 0)
        remitted = np.flatnonzero(same & (st0 != Stage.REMISSION) & (st1 == Stage.REMISSION))
        relapse.start(remitted, wk)
        relapse.flag |= relapsed & (relapse.entry >= 0)
        rows = care.due(wk)
        care.record(rows, [st1[rows] == Stage.TREATMENT, ~mh1[rows]])
        rows = relapse.due(wk)
        relapse.record(rows, [relapse.flag[rows]])
        rows = dropout.due(wk)
        dropout.record(rows, [dropout.flag[rows]])
    df = m.metrics_frame().iloc[1:]
    groups = [pop.ace == g for g in range(3)]
    return Run(
        tallies=tallies,
        metrics=df.drop(columns=["step", "year"]).mean().to_dict(),
        degree_gap=gaps[0] / steps,
        loneliness_gap=gaps[1] / steps,
        ace_oud=np.array([pop.has_oud[g].mean() for g in groups]),
        ace_mh=np.array([pop.any_mh[g].mean() for g in groups]),
        ace_or=odds_ratio(m),
        care=care.counts,
        relapse=relapse.counts,
        dropout=dropout.counts,
        overdoses=overdoses,
        waitlist_weeks=waiting_steps / steps,
    )


@dataclass
class Arm:
    runs: list[Run]

    def tally(self, name: str) -> Tally:
        return sum((r.tallies[name] for r in self.runs), Tally())

    def metric(self, name: str) -> np.ndarray:
        return np.array([r.metrics[name] for r in self.runs])

    def values(self, get: Callable[[Run], float]) -> np.ndarray:
        return np.array([get(r) for r in self.runs])

    def cohort(self, which: str, group: int) -> np.ndarray:
        """Counts summed over replicates: [followed, outcome 1, outcome 2, ...] (zeros if none)."""
        parts = [getattr(r, which)[group] for r in self.runs if group in getattr(r, which)]
        return np.sum(parts, axis=0) if parts else np.zeros(4)


@functools.cache
def arm(name: str) -> Arm:
    """Replicates of the baseline ("baseline"), one mechanism off ("off:<key>"), or integrated care."""
    if name == "baseline":
        overrides = {}
    elif name.startswith("off:"):
        overrides = OFF[name.removeprefix("off:")]
    elif name == "integrated":
        overrides = {"treatment.integrated_share": INTEGRATED_SHARE}
    else:
        raise KeyError(name)
    return Arm([observe(overrides, seed=SEED0 + i) for i in range(REPS)])


# -- findings and checks -----------------------------------------------------------------------


@dataclass
class Finding:
    what: str
    estimate: float
    lo: float
    hi: float
    p: float | None  # None: reported, not tested
    kind: str  # "ratio" (reference 1), "difference" (reference 0) or "share"

    def line(self) -> str:
        p = "" if self.p is None else f", p = {fmt_p(self.p)}"
        return f"{self.what}: {self.estimate:.3g} (95% CI {self.lo:.3g}–{self.hi:.3g}{p})"


def rate_ratio(what: str, t: Tally, p: float | None) -> Finding:
    return Finding(what, t.ratio, *t.ci, p, "ratio")


def paired_difference(what: str, a: np.ndarray, b: np.ndarray) -> Finding:
    """Mean of a - b over paired replicates, t interval, one-sided paired t-test that a > b."""
    d = a - b
    se = d.std(ddof=1) / math.sqrt(d.size) if d.size > 1 else float("nan")
    q = stats.t.ppf(0.975, d.size - 1) if d.size > 1 else float("nan")
    p = float(stats.ttest_rel(a, b, alternative="greater").pvalue)
    return Finding(what, d.mean(), d.mean() - q * se, d.mean() + q * se, p, "difference")


def share(what: str, k: float, n: float, p: float | None = None) -> Finding:
    lo, hi = stats.binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson") if n else (0, 0)
    return Finding(what, k / n if n else float("nan"), lo, hi, p, "share")


def fisher_greater(k1: float, n1: float, k2: float, n2: float) -> float:
    table = [[int(k1), int(n1 - k1)], [int(k2), int(n2 - k2)]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


@dataclass
class Check:
    key: str
    name: str
    seed_says: str
    findings: list[Finding]
    extra_ok: bool = True  # any condition beyond the tests (e.g. a band)
    notes: list[Finding] = field(default_factory=list)  # reported against evidence, not asserted

    @property
    def passed(self) -> bool:
        return self.extra_ok and all(f.p < ALPHA for f in self.findings if f.p is not None)

    def report(self) -> str:
        return f"{self.name}:\n  " + "\n  ".join(f.line() for f in self.findings + self.notes)


def check_disorders_raise_initiation() -> Check:
    base, no_selfmed, no_impulsivity = arm("baseline"), arm("off:self_medication"), arm("off:impulsivity")
    t = base.tally("initiation_by_disorder")
    t_off = no_selfmed.tally("initiation_by_disorder")
    t_imp = no_impulsivity.tally("initiation_by_disorder")
    i = base.tally("initiation_by_impulsivity")
    return Check(
        "initiation",
        "Disorders raise initiation (self-medication, impulsivity)",
        "people with depression, anxiety or PTSD self-medicate with opioids; a disorder raises "
        "impulsivity, making substance use more likely (M1, M2)",
        [
            rate_ratio("initiation rate ratio, active disorder vs none", t, t.p("greater")),
            rate_ratio(
                "... with the disorder's effect off (use.mh_hr = 1, its total): lower", t_off, p_ratio_greater(t, t_off)
            ),
            # Without a disorder, traits vary only by their baseline spread: a weak contrast, but impulsivity
            # raising initiation is M2 itself.
            rate_ratio("initiation rate ratio, impulsivity above vs below the median (no disorder)", i, i.p("greater")),
        ],
        notes=[
            # use.mh_hr is E9's total effect: the impulsivity a disorder brings is part of it, not added on.
            rate_ratio(
                "... with impulsivity's ratio = 1: about the same (mh_hr is the total effect; its direct part "
                "takes impulsivity's share back)",
                t_imp,
                None,
            ),
        ],
    )


def check_traits_raise_progression() -> Check:
    t = arm("baseline").tally("progression_by_distress")
    t_off = arm("off:traits_progression").tally("progression_by_distress")
    return Check(
        "progression",
        "Impaired risk appraisal and emotional dysregulation raise progression",
        "poor risk appraisal and emotional dysregulation (raised by a disorder) turn misuse into dependence (M3, M4)",
        [
            rate_ratio("misuse-to-OUD rate ratio, traits raised (distress > 0.5) vs not", t, t.p("greater")),
            rate_ratio("... with dysregulation and risk-appraisal ratios = 1: lower", t_off, p_ratio_greater(t, t_off)),
        ],
    )


def check_isolation_loop() -> Check:
    base, off = arm("baseline"), arm("off:withdrawal")
    gap = base.values(lambda r: r.degree_gap)
    q = stats.t.ppf(0.975, gap.size - 1) * gap.std(ddof=1) / math.sqrt(gap.size)
    lonely_use = base.tally("initiation_by_loneliness")
    lonely_mh = base.tally("mh_onset_by_loneliness")
    return Check(
        "isolation",
        "Isolation raises use and worsens mental health, and the loop runs both ways",
        "disorders lead to social withdrawal; isolation feeds loneliness, depression and drug use: "
        "a vicious cycle (M5)",
        [
            Finding(
                "active ties, no disorder minus disorder (withdrawal)",
                gap.mean(),
                gap.mean() - q,
                gap.mean() + q,
                float(stats.ttest_1samp(gap, 0, alternative="greater").pvalue),
                "difference",
            ),
            rate_ratio(
                "initiation rate ratio, loneliness above vs below the median (no disorder)",
                lonely_use,
                lonely_use.p("greater"),
            ),
            rate_ratio(
                "disorder onset rate ratio, loneliness above vs below the median", lonely_mh, lonely_mh.p("greater")
            ),
            paired_difference(
                "mean loneliness, withdrawal on minus off",
                base.metric("mean_loneliness"),
                off.metric("mean_loneliness"),
            ),
            paired_difference(
                "disorder prevalence, withdrawal on minus off (the loop closes)",
                base.metric("mh_prevalence"),
                off.metric("mh_prevalence"),
            ),
        ],
        notes=[
            paired_difference(
                "misuse prevalence, withdrawal on minus off (users' withdrawal also cuts peers' exposure)",
                base.metric("misuse_prevalence"),
                off.metric("misuse_prevalence"),
            ),
        ],
    )


def check_aces() -> Check:
    base = arm("baseline")
    oud = np.array([r.ace_oud for r in base.runs])
    mh = np.array([r.ace_mh for r in base.runs])
    ors = base.values(lambda r: r.ace_or)
    log_or = np.log(ors)
    q = stats.t.ppf(0.975, log_or.size - 1) * log_or.std(ddof=1) / math.sqrt(log_or.size)
    geo = float(np.exp(log_or.mean()))

    def ratio(what: str, a: np.ndarray, b: np.ndarray) -> Finding:
        r = np.log(a / b)
        h = stats.t.ppf(0.975, r.size - 1) * r.std(ddof=1) / math.sqrt(r.size)
        p = float(stats.ttest_1samp(r, 0, alternative="greater").pvalue)
        return Finding(what, math.exp(r.mean()), math.exp(r.mean() - h), math.exp(r.mean() + h), p, "ratio")

    return Check(
        "aces",
        "ACEs raise both disorders and OUD (4+ vs 0 odds ratio of OUD in its band)",
        "trauma and adverse childhood experiences lead to both mental-health issues and opioid misuse (M6)",
        [
            ratio("disorder prevalence ratio, 4+ vs 0 ACEs", mh[:, 2], mh[:, 0]),
            ratio("disorder prevalence ratio, 1-3 vs 0 ACEs", mh[:, 1], mh[:, 0]),
            ratio("OUD prevalence ratio, 1-3 vs 0 ACEs", oud[:, 1], oud[:, 0]),
            Finding(
                "odds ratio of OUD, 4+ vs 0 ACEs (band 3–12, E11)",
                geo,
                math.exp(log_or.mean() - q),
                math.exp(log_or.mean() + q),
                float(stats.ttest_1samp(log_or, 0, alternative="greater").pvalue),
                "ratio",
            ),
        ],
        extra_ok=3 <= geo <= 12,
    )


def check_stigma_lowers_seeking() -> Check:
    base, off = arm("baseline"), arm("off:dual_stigma")
    st = base.tally("seeking_by_internal_stigma")
    dual, dual_off = base.tally("seeking_by_dual"), off.tally("seeking_by_dual")
    return Check(
        "stigma",
        "Stigma, dual stigma more so, lowers treatment seeking",
        "stigma deters people from seeking help; dual stigma (OUD and a disorder) more so (M8, M9)",
        [
            rate_ratio(
                "seeking rate ratio, internalised stigma above vs below the median (OUD alone)", st, st.p("less")
            ),
            rate_ratio(
                "seeking rate ratio, OUD with a disorder (dual stigma) vs OUD alone, out of mental-health care",
                dual,
                dual.p("less"),
            ),
            rate_ratio(
                "... with dual stigma off (stigma.dual_stigma_factor = 1): higher",
                dual_off,
                p_ratio_greater(dual_off, dual),
            ),
        ],
    )


def check_integrated_care() -> Check:
    a = arm("integrated")
    integ, sep = a.cohort("care", int(Care.INTEGRATED)), a.cohort("care", int(Care.MEDICATION))
    w = FOLLOW_WEEKS
    return Check(
        "integrated",
        "Integrated care improves outcomes for co-occurring disorders over separate care",
        "integrated dual-diagnosis treatment leads to better outcomes; services that treat only one "
        "condition can worsen OUD (M12, M9)",
        [
            share(f"still in care {w} weeks after entry: integrated", integ[1], integ[0]),
            share(
                "... separate care (medication; mental-health care if found): lower",
                sep[1],
                sep[0],
                fisher_greater(integ[1], integ[0], sep[1], sep[0]),
            ),
            share(f"disorder remitted {w} weeks after entry: integrated", integ[2], integ[0]),
            share("... separate care: lower", sep[2], sep[0], fisher_greater(integ[2], integ[0], sep[2], sep[0])),
        ],
    )


def check_craving_raises_relapse() -> Check:
    base = arm("baseline")
    t, t_off = base.tally("relapse_by_craving"), arm("off:craving_relapse").tally("relapse_by_craving")
    rel = base.cohort("relapse", 0)
    drop = base.cohort("dropout", 0)
    return Check(
        "craving",
        "Craving raises relapse",
        "opioids alter reward pathways: heightened cravings and continued use (M10)",
        [
            rate_ratio("relapse rate ratio, craving > 0.5 vs <= 0.5 (in remission)", t, t.p("greater")),
            rate_ratio(
                "... with craving's effect off (use.craving_relapse_hr = 1): lower", t_off, p_ratio_greater(t, t_off)
            ),
        ],
        notes=[
            share(
                f"relapsed within {FOLLOW_WEEKS} weeks of entering remission (E16: 59–77% "
                "without medication, in trials)",
                rel[1],
                rel[0],
            ),
            share(
                f"left care (dropout) within {FOLLOW_WEEKS} weeks of admission (E15: 50.6% by 180 days)",
                drop[1],
                drop[0],
            ),
        ],
    )


def check_use_worsens_mental_health() -> Check:
    base, off = arm("baseline"), arm("off:use_worsens_mh")
    t, t_off = base.tally("mh_onset_by_use"), off.tally("mh_onset_by_use")
    return Check(
        "feedback",
        "Dependence worsens mental health (the neurobiological feedback loop)",
        "a feedback loop of dependence and mental-health deterioration (M11)",
        [
            rate_ratio("disorder onset rate ratio, active use vs none", t, t.p("greater")),
            rate_ratio("... with the use and craving ratios on onset = 1: lower", t_off, p_ratio_greater(t, t_off)),
            paired_difference(
                "co-occurring share, feedback on minus off",
                base.metric("cooccurring_share"),
                off.metric("cooccurring_share"),
            ),
        ],
    )


def check_access_to_care() -> Check:
    base, off = arm("baseline"), arm("off:referral")
    t, t_off = base.tally("seeking_by_overdose"), off.tally("seeking_by_overdose")
    weeks = base.values(lambda r: r.waitlist_weeks)
    wait = base.metric("waitlist")
    q = stats.t.ppf(0.975, wait.size - 1) * wait.std(ddof=1) / math.sqrt(wait.size)
    return Check(
        "access",
        "Access to care: capacity binds in part, and an overdose brings people to care",
        "stigma and one-sided services stand between people and care (M8, M9); survivors of an overdose "
        "are a chance to start care (E22)",
        [
            Finding(
                "people waiting for a slot (mean, per 10,000): a waitlist exists",
                wait.mean(),
                wait.mean() - q,
                wait.mean() + q,
                float(stats.ttest_1samp(wait, 0, alternative="greater").pvalue),
                "difference",
            ),
            rate_ratio(
                "rate of joining the queue, untreated OUD surviving an overdose this week vs not",
                t,
                t.p("greater"),
            ),
            rate_ratio(
                "... with referral after an overdose off (treatment.overdose_referral = 0): lower",
                t_off,
                p_ratio_greater(t, t_off),
            ),
        ],
        notes=[
            Finding("share of weeks with someone waiting", weeks.mean(), weeks.min(), weeks.max(), None, "share"),
        ],
    )


def check_care_lowers_mortality() -> Check:
    base, off = arm("baseline"), arm("off:care_mortality")
    t, t_off = base.tally("death_by_care"), off.tally("death_by_care")
    return Check(
        "mortality",
        "Care lowers deaths of people with OUD from every cause",
        "treatment for OUD lowers mortality, overdose and other causes (E21, E22)",
        [
            rate_ratio("death rate ratio, in OUD care vs out of it (people with OUD)", t, t.p("less")),
            rate_ratio(
                "... with care's effects on deaths off (care_mortality_hr = treatment_hr = 1): higher",
                t_off,
                p_ratio_greater(t_off, t),
            ),
        ],
        notes=[
            Finding(
                "out of care vs in care (E21: 2.2 buprenorphine, 3.2 methadone)",
                1 / t.ratio,
                1 / t.ci[1],
                1 / t.ci[0],
                None,
                "ratio",
            ),
        ],
    )


def check_isolation_and_overdose_deaths() -> Check:
    base, off = arm("baseline"), arm("off:alone")
    od = np.sum([r.overdoses for r in base.runs], axis=0)
    n_od, dead, n_alone, dead_alone = od
    alone_share = base.values(lambda r: r.overdoses[2] / r.overdoses[0])
    alone_share_off = off.values(lambda r: r.overdoses[2] / r.overdoses[0])
    return Check(
        "overdose",
        "Isolation means using alone, and overdoses alone are deadlier",
        "isolation and stigma (hiding use) leave people alone when they use (M5, M8); naloxone helps "
        "only when someone is there with a kit (E23)",
        [
            share("overdoses that were fatal, alone", dead_alone, n_alone),
            share(
                "... with someone there (a tie, who may carry naloxone): lower",
                dead - dead_alone,
                n_od - n_alone,
                fisher_greater(dead_alone, n_alone, dead - dead_alone, n_od - n_alone),
            ),
            paired_difference(
                "share of overdoses alone, ties and hiding as modelled minus someone always there",
                alone_share,
                alone_share_off,
            ),
        ],
        notes=[
            paired_difference(
                "overdose deaths per 100,000 a year, ties and hiding as modelled minus someone always there",
                base.metric("overdose_death_rate"),
                off.metric("overdose_death_rate"),
            ),
        ],
    )


def check_peer_effects() -> Check:
    base, off = arm("baseline"), arm("off:peers")
    t, t_off = base.tally("initiation_by_peers"), off.tally("initiation_by_peers")
    r, r_off = base.tally("seeking_by_recovery_ties"), off.tally("seeking_by_recovery_ties")
    return Check(
        "peers",
        "Peers: ties who use raise initiation; ties in recovery raise seeking care",
        "without supportive ties drug use is more likely (M5); people see recovery in those around "
        "them (use.peer_hr, treatment.peer_recovery_hr)",
        [
            rate_ratio("initiation rate ratio, a tie who uses vs none (no disorder)", t, t.p("greater")),
            rate_ratio("... with peer use off (use.peer_hr = 1): lower", t_off, p_ratio_greater(t, t_off)),
            rate_ratio("seeking rate ratio, a tie in recovery vs none (OUD alone)", r, r.p("greater")),
            rate_ratio(
                "... with recovery ties off (treatment.peer_recovery_hr = 1): lower", r_off, p_ratio_greater(r, r_off)
            ),
        ],
        notes=[
            paired_difference(
                "misuse prevalence, peer effects on minus off",
                base.metric("misuse_prevalence"),
                off.metric("misuse_prevalence"),
            ),
        ],
    )


CHECKS = (
    check_disorders_raise_initiation,
    check_traits_raise_progression,
    check_isolation_loop,
    check_aces,
    check_stigma_lowers_seeking,
    check_integrated_care,
    check_craving_raises_relapse,
    check_use_worsens_mental_health,
    check_access_to_care,
    check_care_lowers_mortality,
    check_isolation_and_overdose_deaths,
    check_peer_effects,
)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_seed_mechanism(check):
    result = check()
    assert result.passed, result.report()


# -- figures and the results table for docs/validation.md ----------------------------------------


def figure(check: Check, path) -> None:
    """A forest plot: each finding with its 95% interval and its reference (1 or 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import textwrap

    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    kinds = list(dict.fromkeys(f.kind for f in check.findings + check.notes))
    rows = [[f for f in check.findings + check.notes if f.kind == k] for k in kinds]
    fig, axes = plt.subplots(
        len(kinds),
        1,
        figsize=(8, 0.55 * sum(map(len, rows)) + 1.2 * len(kinds) + 0.4),
        dpi=110,
        squeeze=False,
        layout="constrained",  # room for the long labels and the title
        gridspec_kw={"height_ratios": [len(r) for r in rows]},
    )
    for ax, kind, fs in zip(axes[:, 0], kinds, rows, strict=True):
        y = np.arange(len(fs))[::-1]
        for yi, f in zip(y, fs, strict=True):
            tested = f.p is not None and any(f is g for g in check.findings)
            color = "#3b6ea5" if tested else "#999999"
            ax.errorbar(
                f.estimate, yi, xerr=[[f.estimate - f.lo], [f.hi - f.estimate]], fmt="o", color=color, capsize=3
            )
            label = f"{f.estimate:.3g}" + ("" if f.p is None else f"  (p {_p_label(f.p)})")
            ax.annotate(label, (f.estimate, yi), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=7)
        ax.set_yticks(y, [f.what if len(f.what) < 70 else f.what[:67] + "..." for f in fs], fontsize=7)
        ref = {"ratio": 1.0, "difference": 0.0}.get(kind)
        if ref is not None:
            ax.axvline(ref, color="#aa3333", lw=1, ls="--")
        if kind == "ratio":
            ax.set_xscale("log")
            # Few, plain tick labels: the default log labels (1.1 x 10^0 ...) overlap on short ranges.
            lo, hi = ax.get_xlim()
            ticks = [t for t in MaxNLocator(6).tick_values(lo, hi) if lo <= t <= hi and t > 0]
            if lo <= 1.0 <= hi:  # the reference gets its label
                ticks = [1.0] + [t for t in ticks if abs(t - 1.0) > 0.04 * (hi - lo)]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(
            {
                "ratio": "ratio (log scale; 1 = no effect)",
                "difference": "difference (0 = no effect)",
                "share": "share of the cohort",
            }[kind],
            fontsize=8,
        )
        ax.set_ylim(-0.7, len(fs) - 0.3)
        ax.tick_params(axis="x", labelsize=7)
    status = "passed" if check.passed else "FAILED"
    fig.suptitle(textwrap.fill(f"{check.name} — {status}", 95), fontsize=9)
    fig.savefig(path)
    plt.close(fig)


def _p_label(p: float) -> str:
    """'= 3e-10', or '< 1e-300' where p is below the smallest double."""
    return "< 1e-300" if p == 0 else f"= {p:.1g}"


def fmt_p(p: float) -> str:
    return "< 1e-300" if p == 0 else f"{p:.2g}"


def markdown(checks: list[Check]) -> str:
    out = []
    for c in checks:
        out.append(
            f"### {c.name}\n\n*Source article:* {c.seed_says}.\n\n*Result:* **{'passed' if c.passed else 'failed'}**\n"
        )
        out.append("| finding | estimate | 95% interval | p (one-sided) |\n|---|---|---|---|")
        for f in c.findings + c.notes:
            p = "—" if f.p is None else fmt_p(f.p)
            if any(f is g for g in c.notes):
                p += " (reported, not asserted)"
            out.append(f"| {f.what} | {f.estimate:.3g} | {f.lo:.3g} – {f.hi:.3g} | {p} |")
        out.append(f"\n![{c.name}](figures/validation_{c.key}.png)\n")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    import argparse
    import time
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figures", type=Path, default=None, help="folder for validation_<check>.png")
    ap.add_argument("--markdown", type=Path, default=None, help="write the results as Markdown here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = []
    for fn in CHECKS:
        c = fn()
        results.append(c)
        print(("PASS " if c.passed else "FAIL ") + c.report(), flush=True)
        if args.figures:
            args.figures.mkdir(parents=True, exist_ok=True)
            figure(c, args.figures / f"validation_{c.key}.png")
    print(f"{time.perf_counter() - t0:.0f} s; settings: {N} people, {REPS} replicates, {BURN_IN:g} + {YEARS:g} years")
    if args.markdown:
        args.markdown.write_text(markdown(results))
