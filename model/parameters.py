"""The parameter tree: every number the model uses, with its unit, allowed range and source.

Rates are annual (per person-year) unless the unit says otherwise; a step converts them with
``p = 1 - exp(-rate * dt_years)``.  Effects are hazard ratios (HR) that multiply a base rate, so a
mechanism is switched off by setting its ratio to 1.  A ratio "per unit" applies as ``HR ** x`` for a
quantity x in [0, 1] (loneliness, craving, a trait).

Sources cite rows of ``docs/evidence.md``: published figures as ``E<n>`` and mechanisms of the
source article as ``M<n>``.  "assumption" marks values chosen for this model where no published
figure exists; "calibrated" marks values fitted to the calibration targets (docs/calibration.md).
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oudsim.model.user_files import read_toml

__all__ = [
    "Parameters",
    "ParameterError",
    "ALIASES",
    "apply_overrides",
    "field_info",
    "flat_fields",
    "get_dotted",
]


class ParameterError(ValueError):
    """A parameter value or name was refused; the message names the field and what is accepted."""


def P(default: Any, lo: float | None, hi: float | None, unit: str, source: str, doc: str) -> Any:
    """A schema field with its allowed range, unit and source (shown in errors, docs and the CLI)."""
    return Field(
        default,
        ge=lo,
        le=hi,
        description=doc,
        json_schema_extra={"unit": unit, "source": source, "range": [lo, hi]},
    )


def Vec(default: list[float], lo: float, hi: float, unit: str, source: str, doc: str) -> Any:
    """A fixed-length list (per ACE group, SES level, age band ...) whose items lie in [lo, hi]."""
    n = len(default)
    return Field(
        default,
        min_length=n,
        max_length=n,
        description=doc,
        json_schema_extra={"unit": unit, "source": source, "range": [lo, hi], "items": n},
    )


class Section(BaseModel):
    # Frozen: a parameter set is a value. A change is a new set (apply_overrides), which is how a
    # running model notices it (processes cache what they derive from the parameters per set).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*")
    @classmethod
    def _check_items(cls, v: Any, info: Any) -> Any:
        # Lists carry their item range in the schema extra; check every item against it.
        extra = cls.model_fields[info.field_name].json_schema_extra
        if isinstance(extra, dict) and "items" in extra and isinstance(v, list):
            lo, hi = extra["range"]
            for i, item in enumerate(v):
                if not (lo <= item <= hi):
                    raise ValueError(f"item {i} = {item} is out of range")
        return v


def _shares(v: list[float], what: str) -> list[float]:
    if abs(sum(v) - 1.0) > 1e-6:
        raise ValueError(f"{what} must sum to 1 (they sum to {sum(v):.6g})")
    return v


class Simulation(Section):
    population: int = P(10_000, 10, 50_000_000, "people", "assumption", "Number of people (fixed: deaths are replaced).")
    dt_weeks: int = P(1, 1, 4, "weeks", "design choice (docs/ODD.md)", "Length of one step.")
    burn_in_years: float = P(10.0, 0, 200, "years", "assumption", "Years simulated at construction, unrecorded, so the state settles before step 0.")


class Demography(Section):
    female_share: float = P(0.51, 0, 1, "share", "assumption (US Census 2022)", "Share of women.")
    ses_shares: list[float] = Vec([0.30, 0.50, 0.20], 0, 1, "share", "assumption", "Share of low, middle and high socioeconomic status.")
    ace_shares: list[float] = Vec([0.361, 0.466, 0.173], 0, 1, "share", "E10", "Share with 0, 1–3 and 4+ adverse childhood experiences.")
    family_support_by_ace: list[float] = Vec([0.85, 0.75, 0.55], 0, 1, "probability", "assumption", "Probability of having a supportive family, by ACE group.")
    mortality_per_1000: list[float] = Vec([1.1, 1.6, 3.0, 8.0, 40.0], 0, 1000, "deaths per 1,000 person-years", "assumption (US life tables 2021)", "Background mortality by age band.")
    max_age: float = P(100.0, 66, 125, "years", "assumption (closing age of the life table)", "Age at which everyone still alive dies: the life table's last row.")
    oud_mortality_hr: float = P(1.25, 1, 20, "HR", "E26; calibrated (docs/calibration.md)", "Non-overdose mortality of people with OUD relative to others.")
    care_mortality_hr: float = P(0.5535, 0, 1, "HR", "E21 (all-cause deaths 2.2-3.2 times higher out of care than in it); calibrated to E21", "Non-overdose mortality of people with OUD while in OUD care, relative to out of it.")
    entry_age: float = P(18.0, 12, 30, "years", "design choice (docs/ODD.md)", "Age at which a replacement person enters (and the youngest age at start).")

    @field_validator("ses_shares", "ace_shares")
    @classmethod
    def _sum_to_one(cls, v: list[float], info: Any) -> list[float]:
        return _shares(v, info.field_name)


class LifeEvents(Section):
    rate: float = P(0.12, 0, 10, "per year", "assumption", "Stressful life events (trauma, job loss, bereavement) per person-year at middle SES, 0 ACEs.")
    ses_hr: list[float] = Vec([1.6, 1.0, 0.7], 0, 20, "HR", "assumption", "Event rate ratio by SES (low, middle, high).")
    ace_hr: list[float] = Vec([1.0, 1.3, 1.8], 0, 20, "HR", "assumption (E11 direction)", "Event rate ratio by ACE group.")
    recent_weeks: int = P(26, 1, 520, "weeks", "assumption", "How long an event counts as recent.")
    bereavement_prob: float = P(0.3, 0, 1, "probability", "assumption", "Chance that a tie of someone who dies of an overdose has a stressful event.")


class MentalHealth(Section):
    initial_prevalence: list[float] = Vec([0.086, 0.044, 0.037, 0.086], 0, 1, "share", "E5 (depression 8.6%, PTSD 3.7%, generalised anxiety 2.0% + panic 2.4%); other: the rest of E4's any mental illness (23.1%)", "Initial 12-month prevalence of depression, anxiety (generalised or panic), PTSD and other mental illness.")
    onset_rate: list[float] = Vec([0.03551, 0.01549, 0.008882, 0.03873], 0, 10, "per year", "E4/E5; calibrated (docs/calibration.md)", "Base onset rate of depression, anxiety, PTSD and other mental illness.")
    onset_multiplier: float = P(1.0, 0, 20, "ratio", "scenario knob", "Scales every onset rate (the dashboard's mental-health slider).")
    remission_rate: list[float] = Vec([1.0, 0.8, 0.5, 0.8], 0, 52, "per year", "assumption (episode lengths 1–2 years)", "Base remission rate of depression, anxiety, PTSD and other mental illness.")
    ace_hr: list[float] = Vec([1.0, 1.5, 2.5], 0, 50, "HR", "E10, E11 (direction)", "Onset rate ratio by ACE group.")
    ses_hr: list[float] = Vec([1.3, 1.0, 0.8], 0, 20, "HR", "assumption", "Onset rate ratio by SES.")
    event_hr: float = P(2.5, 0, 50, "HR", "assumption; M6 (environmental factors)", "Onset rate ratio after a recent life event.")
    loneliness_hr: float = P(2.5, 0, 50, "HR per unit", "E12, E13 (direction)", "Onset rate ratio at full loneliness vs none.")
    oud_hr: float = P(1.4, 0, 50, "HR", "E6, E8 (direction); calibrated (docs/calibration.md)", "Onset rate ratio while opioid use is active (misuse or untreated OUD).")
    craving_hr: float = P(2.0, 0, 50, "HR per unit", "M11 (neurobiological feedback loop)", "Onset rate ratio at full craving vs none.")
    comorbidity_hr: float = P(3.0, 0, 50, "HR", "assumption (co-occurrence)", "Onset rate ratio when another disorder is active.")
    care_remission_hr: float = P(2.0, 0, 50, "HR", "assumption", "Remission rate ratio in mental-health care.")
    integrated_remission_hr: float = P(2.5, 0, 50, "HR", "E18, M12 (treatment implications)", "Remission rate ratio in integrated dual-diagnosis care.")
    support_remission_hr: float = P(1.3, 0, 50, "HR", "assumption; M7 (family support)", "Remission rate ratio with family support.")
    oud_remission_hr: float = P(0.6, 0, 50, "HR", "assumption", "Remission rate ratio while opioid use is active.")
    trait_baseline: float = P(0.2, 0, 1, "score", "assumption", "Mean trait level (impulsivity, impaired risk appraisal, emotional dysregulation) with no disorder.")
    trait_increment: float = P(0.35, 0, 1, "score", "M2, M3, M4 (impulsivity, cognitive impairments, emotional dysregulation)", "How much an active disorder raises each trait.")
    trait_rate: float = P(6.0, 0.01, 520, "per year", "assumption", "Speed at which traits approach their target level.")


class Network(Section):
    kind: Literal["small_world", "scale_free", "edgelist"] = Field(
        "small_world",
        description="Graph generator: clustered small-world (Watts–Strogatz), scale-free (power-law expected degrees), or an edge-list file.",
        json_schema_extra={"unit": "", "source": "assumption", "range": None},
    )
    mean_degree: float = P(8.0, 1, 200, "ties", "assumption (personal network size)", "Mean number of known ties.")
    rewire_prob: float = P(0.1, 0, 1, "probability", "assumption", "Small-world rewiring probability.")
    powerlaw_exponent: float = P(2.5, 2.01, 5, "exponent", "assumption", "Degree exponent of the scale-free graph.")
    edgelist_path: str | None = Field(None, description="Path to a whitespace-separated edge list (one tie 'u v' a line).", json_schema_extra={"unit": "", "source": "user", "range": None})
    latent_ties_per_person: float = P(2.0, 0, 50, "ties", "assumption", "Possible new ties (friends of friends, strangers) per person, dormant at start.")
    triadic_share: float = P(0.7, 0, 1, "share", "assumption", "Share of possible new ties that close a triangle (friend of a friend).")


class Social(Section):
    tie_loss_rate: float = P(0.08, 0, 52, "per tie-year", "assumption", "Rate at which an active tie lapses for someone without a condition.")
    isolation_multiplier: float = P(1.0, 0, 20, "ratio", "scenario knob", "Scales every tie-loss rate (1 = baseline; high_isolation raises it).")
    withdrawal_hr_mh: float = P(3.0, 0, 50, "HR", "M5 (social isolation)", "Tie-loss rate ratio while a mental-health disorder is active.")
    withdrawal_hr_oud: float = P(3.0, 0, 50, "HR", "M5 (social isolation)", "Tie-loss rate ratio while opioid use is active.")
    reconnect_rate: float = P(0.8, 0, 52, "per tie-year", "assumption", "Rate at which a lapsed known tie regrows (divided by the withdrawal ratios).")
    new_tie_rate: float = P(0.04, 0, 52, "per tie-year", "assumption", "Rate at which a possible new tie forms (triadic closure or a stranger).")
    peer_support_rate: float = P(0.0, 0, 52, "per tie-year", "intervention", "Extra rate of new ties for lonely people (peer support, social prescribing), scaled by loneliness.")
    supportive_ties_full: float = P(15.23, 0.5, 100, "ties", "E13; calibrated (docs/calibration.md)", "Supportive ties at which tie-based loneliness is zero.")
    family_weight: float = P(0.35, 0, 1, "share", "assumption; M7 (family support)", "Weight of family support in loneliness (the rest is ties).")
    isolated_max_ties: int = P(1, 0, 100, "ties", "assumption", "People with at most this many active ties count as isolated.")
    lonely_threshold: float = P(0.383, 0, 1, "score", "E13 (UCLA Loneliness Scale score of 43 or more on its 20-80 range, rescaled to 0-1)", "People with loneliness at or above this count as lonely (the lonely_share metric).")


class Stigma(Section):
    initial_mean: float = P(0.6, 0, 1, "score", "E19 (76% reject close work; 37% blame character)", "Mean community stigma toward OUD and mental illness at start.")
    initial_concentration: float = P(6.0, 0.5, 1000, "beta a+b", "assumption", "Concentration of the Beta distribution of attitudes (higher = less spread).")
    conformity_rate: float = P(0.5, 0, 52, "per year", "assumption", "Speed at which attitudes drift toward neighbours' mean attitude.")
    norm_reversion_rate: float = P(0.3, 0, 52, "per year", "assumption", "Speed at which attitudes return to the person's own norm.")
    contact_rate: float = P(0.15, 0, 52, "per contact-year", "assumption (contact hypothesis)", "Stigma reduction rate per tie in treatment or recovery.")
    campaign_strength: float = P(0.0, 0, 1, "share", "intervention", "Share by which a campaign lowers everyone's norm (0 = no campaign).")
    internalisation_rate: float = P(2.0, 0, 52, "per year", "assumption", "Speed at which internalised stigma follows perceived stigma.")
    mh_stigma_factor: float = P(0.7, 0, 1, "ratio", "assumption (E19)", "Perceived stigma for a mental-health disorder alone, relative to OUD.")
    dual_stigma_factor: float = P(1.3, 1, 5, "ratio", "M9 (dual stigma)", "Internalised stigma multiplier with both OUD and a disorder (the one channel of dual stigma: it acts on seeking and dropout through internalised stigma).")


class Use(Section):
    initiation_rate: float = P(0.00101, 0, 5, "per year", "E3; calibrated (docs/calibration.md)", "Base rate of starting opioid misuse (0 ACEs, middle SES, ages 35–49, no disorder).")
    access_multiplier: float = P(1.0, 0, 20, "ratio", "scenario knob", "Exposure and access to opioids (prescribing, supply).")
    age_hr: list[float] = Vec([2.0, 1.6, 1.0, 0.6, 0.25], 0, 50, "HR", "assumption (NSDUH age pattern)", "Initiation rate ratio by age band.")
    ses_hr: list[float] = Vec([1.4, 1.0, 0.8], 0, 50, "HR", "assumption; M7 (SES)", "Initiation rate ratio by SES.")
    mh_hr: float = P(2.5, 0, 50, "HR", "E9 (HR 2.2–3.1)", "Initiation rate ratio with an active disorder (self-medication), in all: the impulsivity the disorder brings is part of it (model.processes.use).")
    disorder_hr: list[float] = Vec([1.0, 1.0, 1.23, 1.15], 0, 50, "ratio", "E8 (adjusted odds of a drug use disorder: PTSD 1.6, bipolar 1.5, depression 1.3, relative to depression); anxiety: assumption", "Initiation ratio by disorder relative to depression (depression, anxiety, PTSD, other); with several, the largest applies.")
    impulsivity_hr: float = P(2.0, 0, 50, "HR per unit", "M2 (impulsivity)", "Initiation rate ratio at full impulsivity vs none.")
    ace_hr: list[float] = Vec([1.0, 1.8, 3.5], 0, 50, "HR", "E11", "Initiation rate ratio by ACE group.")
    peer_hr: float = P(1.3, 0, 50, "HR per tie", "E28 (OR 1.15-1.23 per close friend using any substance; a tie who misuses opioids is taken as a closer exposure: assumption)", "Initiation rate ratio per tie who misuses (up to peer_cap ties).")
    peer_cap: int = P(3, 0, 100, "ties", "assumption", "Ties beyond this number add no more peer effect.")
    loneliness_hr: float = P(3.0, 0, 50, "HR per unit", "E12 (aOR 1.16 per point of a 20-80 scale: far more over its range; 3 is a conservative reading, an assumption)", "Initiation and relapse rate ratio at full loneliness.")
    event_hr: float = P(1.5, 0, 50, "HR", "M6 (environmental factors)", "Initiation and relapse rate ratio after a recent life event.")
    cessation_rate: float = P(0.6, 0, 52, "per year", "assumption", "Rate of stopping misuse before OUD develops.")
    support_hr: float = P(1.3, 0, 50, "HR", "M7 (family support)", "Cessation and natural-remission rate ratio with family support.")
    progression_rate: float = P(0.05861, 0, 52, "per year", "E1/E3; calibrated (docs/calibration.md)", "Base rate of progressing from misuse to OUD.")
    dysregulation_hr: float = P(2.5, 0, 50, "HR per unit", "M4 (emotional dysregulation)", "Progression rate ratio at full emotional dysregulation.")
    risk_appraisal_hr: float = P(2.0, 0, 50, "HR per unit", "M3 (impaired risk appraisal)", "Progression rate ratio at fully impaired risk appraisal.")
    craving_progression_hr: float = P(2.0, 0, 50, "HR per unit", "M10 (neurobiology)", "Progression rate ratio at full craving.")
    natural_remission_rate: float = P(0.2049, 0, 52, "per year", "E25 (9.2–22.4% per year); calibrated (docs/calibration.md)", "Rate of remission from untreated OUD without care.")
    mh_remission_hr: float = P(0.7, 0, 50, "HR", "assumption", "Natural-remission rate ratio with an active disorder.")
    relapse_rate: float = P(0.02, 0, 52, "per year", "E16 (calibrated with craving)", "Relapse rate from sustained remission at zero craving.")
    early_relapse_after_care: float = P(1.207, 0, 52, "per year", "E16 (59–77% relapse within 6 months of leaving care without medication); calibrated", "Extra relapse rate at the start of a remission that began on leaving care; fades with time in remission.")
    early_relapse_natural: float = P(0.4, 0, 52, "per year", "assumption (natural remissions, E25, follow long use and relapse less than E16's trial leavers)", "Extra relapse rate at the start of a natural remission; fades with time in remission.")
    remission_consolidation_years: float = P(0.5, 0.01, 20, "years", "assumption (DSM-5: remission is sustained after 12 months)", "Time over which the early relapse excess falls by a factor e.")
    craving_relapse_hr: float = P(2.0, 0, 1000, "HR per unit", "M10 (neurobiology); assumption (the early excess carries E16's time course)", "Relapse rate ratio at full craving.")
    mh_relapse_hr: float = P(1.5, 0, 50, "HR", "M10 (mental health and relapse)", "Relapse rate ratio with an active disorder.")
    craving_growth_rate: float = P(1.5, 0, 52, "per year", "M10 (neurobiology)", "Speed at which craving approaches 1 in OUD.")
    misuse_craving_factor: float = P(0.3, 0, 1, "ratio", "assumption", "Craving growth during misuse relative to OUD.")
    craving_decay_rate: float = P(0.4, 0, 52, "per year", "assumption", "Speed at which craving fades in remission.")
    medication_craving_decay_rate: float = P(1.5, 0, 52, "per year", "assumption (MOUD blocks craving)", "Speed at which craving fades on medication.")


class Treatment(Section):
    seek_rate: float = P(2.754, 0, 52, "per year", "E14; calibrated (docs/calibration.md)", "Rate of seeking OUD treatment with no stigma.")
    perceived_stigma_hr: float = P(0.5, 0, 50, "HR per unit", "E20 (stigma-related reasons 11–20%)", "Seeking rate ratio at full perceived stigma.")
    internal_stigma_hr: float = P(0.5, 0, 50, "HR per unit", "M8 (stigma barriers)", "Seeking rate ratio at full internalised stigma.")
    peer_recovery_hr: float = P(1.2, 0, 50, "HR per tie", "assumption", "Seeking rate ratio per tie in treatment or recovery (up to 3).")
    peer_recovery_cap: int = P(3, 0, 100, "ties", "assumption", "Ties in recovery beyond this number add no more effect on seeking.")
    ses_seek_hr: list[float] = Vec([0.7, 1.0, 1.2], 0, 50, "HR", "assumption (insurance coverage and cost as barriers; E20)", "Seeking rate ratio by SES (low, middle, high): access that depends on coverage.")
    mh_care_referral_hr: float = P(2.0, 0, 50, "HR", "assumption; M12 (E17: a quarter of people with both got both kinds of care)", "Seeking rate ratio for people with OUD in mental-health care (referral from it).")
    overdose_referral: float = P(0.2, 0, 1, "probability", "assumption; E22 (about 3 in 10 survivors got medication within a year)", "Chance that a survivor of a non-fatal overdose with untreated OUD is referred to care at once (joins the queue).")
    weekly_intake_share: float = P(0.05, 0.001, 1, "share of slots per week", "assumption (intake assessment and induction)", "Most admissions a week, as a share of OUD slots: expanding services expands intake with them.")
    admission_delay_weeks: int = P(2, 0, 52, "weeks", "assumption (intake assessment; waits of days to weeks)", "Least time from joining the queue to admission.")
    capacity_per_100k: float = P(630.9, 0, 100_000, "slots per 100,000", "E1 x E14: about the people in care, ~92% full; calibrated (docs/calibration.md)", "OUD treatment slots (medication and integrated).")
    integrated_share: float = P(0.1, 0, 1, "share", "E17 (24.5% got both kinds of care)", "Share of OUD slots that are integrated dual-diagnosis care.")
    mh_capacity_per_100k: float = P(8000.0, 0, 100_000, "slots per 100,000", "assumption (about half of AMI treated, E4)", "Mental-health care slots.")
    waitlist_giveup_rate: float = P(4.0, 0, 520, "per year", "assumption", "Rate at which people waiting for a slot give up.")
    dropout_rate: float = P(0.7676, 0, 52, "per year", "E15 (50.6% by 180 days); calibrated (docs/calibration.md)", "Rate of leaving OUD care early.")
    stigma_dropout_hr: float = P(1.5, 0, 50, "HR per unit", "M8 (stigma)", "Dropout rate ratio at full internalised stigma.")
    untreated_mh_dropout_hr: float = P(1.5, 0, 50, "HR", "M9, M12 (treatment implications)", "Dropout rate ratio with a disorder that no care treats.")
    integrated_dropout_hr: float = P(1.0, 0, 50, "HR", "E18 (RR 1.09, 0.82–1.45)", "Dropout rate ratio in integrated care (beyond treating the disorder).")
    completion_rate: float = P(0.25, 0, 52, "per year", "assumption", "Rate of leaving OUD care in remission.")
    mh_seek_rate: float = P(1.0, 0, 52, "per year", "assumption", "Rate of seeking mental-health care with an active disorder and no stigma.")
    mh_exit_rate: float = P(1.0, 0, 52, "per year", "assumption", "Rate of leaving mental-health care.")
    mh_exit_remitted_hr: float = P(4.0, 0, 100, "HR", "assumption", "Exit rate ratio from mental-health care once no disorder is active.")
    post_care_weeks: int = P(4, 1, 104, "weeks", "E21 (risk after leaving care)", "Weeks of lost tolerance after leaving care or relapsing.")


class Overdose(Section):
    rate_oud: float = P(0.1365, 0, 52, "per year", "E21, E24; calibrated (docs/calibration.md)", "Overdose rate with untreated OUD.")
    misuse_hr: float = P(0.2, 0, 50, "HR", "assumption", "Overdose rate ratio for misuse without OUD.")
    treatment_hr: float = P(0.3, 0, 50, "HR", "E21 (overdose deaths 2.6 vs 12.7 per 1,000 person-years in vs out of methadone; buprenorphine's all-cause gap is smaller)", "Overdose rate ratio in medication or integrated care.")
    remission_hr: float = P(0.05, 0, 50, "HR", "assumption", "Overdose rate ratio in remission (lapses).")
    lost_tolerance_hr: float = P(4.0, 0, 100, "HR", "E21, E22", "Overdose rate ratio in the weeks after leaving care or relapsing.")
    fatality: float = P(0.10, 0, 1, "probability", "calibrated to E21, E24", "Chance an overdose is fatal when no one reverses it.")
    witnessed_fatality_factor: float = P(0.7, 0, 1, "ratio", "assumption", "Fatality when someone is there but has no naloxone, relative to alone.")
    naloxone_coverage: float = P(0.25, 0, 1, "share", "assumption (E23: distribution reached many people who use in the high-uptake communities)", "Share of people who use opioids (or are in OUD care) who carry a naloxone kit, once distribution has settled; sets the kit distribution rate (model.processes.naloxone).")
    kit_tie_share: float = P(0.5, 0, 10, "ratio", "assumption (E23: kits go to family and friends too)", "Rate at which people with a tie who uses get a kit, relative to people who use.")
    kit_loss_rate: float = P(1.0, 0.01, 52, "per year", "assumption (kits are used, lost or expire within a year or two)", "Rate at which a carried kit is used, lost or expires.")
    naloxone_efficacy: float = P(0.9, 0, 1, "probability", "E23 (rate ratio 0.54–0.73)", "Chance naloxone reverses an overdose when used.")
    tie_presence: float = P(0.2, 0, 1, "probability per tie", "E27; calibrated (docs/calibration.md); M5 (isolation)", "Chance that each of a person's active ties is there when they use: with k ties, no one is there with probability (1 - tie_presence)^k.")
    alone_stigma: float = P(0.2, 0, 1, "probability per unit", "M8 (stigma, hiding use)", "Chance of hiding one's use (using alone whoever might be there) at full internalised stigma.")


class Initial(Section):
    misuse_prevalence: float = P(0.010, 0, 1, "share", "E3 (minus E1)", "Share misusing without OUD at start.")
    oud_prevalence: float = P(0.022, 0, 1, "share", "E1", "Share with OUD at start.")
    treated_share: float = P(0.25, 0, 1, "share", "E14", "Share of people with OUD in care at start (capacity permitting).")
    remission_prevalence: float = P(0.02, 0, 1, "share", "assumption", "Share in remission at start.")
    mh_risk_weight: float = P(2.5, 1, 50, "ratio", "E9 (direction)", "Weight of an active disorder in drawing who starts with OUD.")


class Economics(Section):
    """Costs (US$ at the sources' prices, 2016-2023, not inflated) and utility weights: what each state and service costs a week and how it is
    lived (model.accounting). They change no dynamics: a run is the same with any of them."""

    perspective: Literal["health_sector", "societal"] = Field(
        "health_sector",
        description="Whose costs count: the health sector's (medical care, overdose response, naloxone), or society's (adds lost productivity and criminal justice).",
        json_schema_extra={"unit": "", "source": "E29 (the Second Panel's two reference cases)", "range": None},
    )
    discount_rate: float = P(0.03, 0, 0.2, "per year", "E29", "Annual rate at which future costs and health are discounted.")
    medication_care_per_week: float = P(120.0, 0, 10_000, "US$ per person-week", "E30 (methadone 126, buprenorphine 115 a week)", "Medication for OUD (methadone or buprenorphine with its visits).")
    integrated_care_per_week: float = P(180.0, 0, 10_000, "US$ per person-week", "assumption: E30 medication + E31 mental-health care + care coordination (no published US figure)", "Integrated dual-diagnosis care.")
    mh_care_per_week: float = P(45.0, 0, 10_000, "US$ per person-week", "E31", "Mental-health care outside integrated care.")
    oud_health_care_per_week: float = P(290.0, 0, 10_000, "US$ per person-week", "E32 (about 15,000 a year per person with OUD)", "Excess health-care spending of a person with OUD, in OUD care or not (emergency, inpatient and other care beyond a person without OUD; OUD care is costed on its own).")
    ems_per_call: float = P(750.0, 0, 1_000_000, "US$ per call", "E33", "Emergency medical services response to an overdose.")
    ed_per_visit: float = P(1_500.0, 0, 1_000_000, "US$ per visit", "E33 (secondary: unverified figure)", "Emergency department visit for an overdose (treated and released).")
    hospital_per_stay: float = P(15_000.0, 0, 10_000_000, "US$ per stay", "E33", "Hospital admission after an overdose.")
    ems_share: float = P(0.6, 0, 1, "share of non-fatal overdoses", "E33; assumption (many are reversed by bystanders without a call)", "Non-fatal overdoses that get an EMS response.")
    ed_share: float = P(0.5, 0, 1, "share of non-fatal overdoses", "E33; assumption", "Non-fatal overdoses seen in an emergency department.")
    hospital_share: float = P(0.1, 0, 1, "share of non-fatal overdoses", "E33; assumption", "Non-fatal overdoses admitted to hospital.")
    fatal_ems_share: float = P(0.5, 0, 1, "share of fatal overdoses", "assumption", "Fatal overdoses with an EMS response.")
    naloxone_kit: float = P(75.0, 0, 10_000, "US$ per kit", "E34 (45 a two-dose kit over the counter, plus training and distribution: assumption)", "A naloxone kit handed out, with its distribution.")
    societal_untreated_per_week: float = P(440.0, 0, 100_000, "US$ per person-week", "E35 (criminal justice 142 + lost productivity 301 a week)", "Lost productivity and criminal-justice costs of a person with untreated OUD (societal perspective only).")
    societal_treated_per_week: float = P(220.0, 0, 100_000, "US$ per person-week", "E35; assumption (half while in care)", "The same while in OUD care (societal perspective only).")
    utility_no_oud: float = P(0.87, 0, 1, "utility 0-1", "E36 (US EQ-5D adult norm, ages 45-54; one value for all ages: assumption)", "Quality of life without opioid misuse or OUD and without a disorder (US adult norm).")
    utility_misuse: float = P(0.84, 0, 1, "utility 0-1", "assumption (the norm minus 0.03; E36)", "Quality of life while misusing opioids without OUD.")
    utility_untreated_oud: float = P(0.60, 0, 1, "utility 0-1", "E36 (injecting 0.574, non-injecting 0.63)", "Quality of life with untreated OUD.")
    utility_in_care: float = P(0.72, 0, 1, "utility 0-1", "E36", "Quality of life with OUD in medication or integrated care.")
    utility_early_remission: float = P(0.76, 0, 1, "utility 0-1", "assumption (between in care and sustained remission; E36)", "Quality of life in the first year of remission.")
    utility_sustained_remission: float = P(0.83, 0, 1, "utility 0-1", "assumption (the norm x 0.95; E36)", "Quality of life in remission of a year or more.")
    mh_utility_factor: float = P(0.88, 0, 1, "ratio", "E37", "Quality of life with an active mental-health disorder, relative to the same state without one.")
    life_expectancy: list[float] = Vec([59.6, 50.2, 40.9, 31.8, 23.5, 15.9, 9.3, 4.5], 0, 120, "years", "E38 (ages 80 and 90: secondary)", "Remaining life expectancy at ages 20, 30, ..., 90 (interpolated between, and held beyond): the life lost at a death.")


    @field_validator("life_expectancy")
    @classmethod
    def _falls_with_age(cls, v: list[float]) -> list[float]:
        if any(b > a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("remaining life expectancy must not rise with age")
        return v


class Parameters(Section):
    """Every parameter of the model, grouped by mechanism."""

    simulation: Simulation = Field(default_factory=Simulation)
    demography: Demography = Field(default_factory=Demography)
    life_events: LifeEvents = Field(default_factory=LifeEvents)
    mental_health: MentalHealth = Field(default_factory=MentalHealth)
    network: Network = Field(default_factory=Network)
    social: Social = Field(default_factory=Social)
    stigma: Stigma = Field(default_factory=Stigma)
    use: Use = Field(default_factory=Use)
    treatment: Treatment = Field(default_factory=Treatment)
    overdose: Overdose = Field(default_factory=Overdose)
    initial: Initial = Field(default_factory=Initial)
    economics: Economics = Field(default_factory=Economics)

    @model_validator(mode="after")
    def _cross_checks(self) -> Parameters:
        i = self.initial
        if i.misuse_prevalence + i.oud_prevalence + i.remission_prevalence > 1:
            raise ValueError("initial misuse, OUD and remission shares add to more than 1")
        if self.network.kind == "edgelist" and not self.network.edgelist_path:
            raise ValueError("network.kind = 'edgelist' needs network.edgelist_path")
        return self

    @property
    def dt_years(self) -> float:
        return self.simulation.dt_weeks / 52.0

    # -- construction with clear errors -------------------------------------------------
    @classmethod
    def build(cls, data: dict[str, Any] | None = None, **overrides: Any) -> Parameters:
        """Validate a nested dict plus dotted-name overrides, raising ParameterError on bad input."""
        base = _validate(cls, data or {})
        return apply_overrides(base, overrides) if overrides else base

    @classmethod
    def from_file(cls, path: str | Path) -> Parameters:
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"{path}: no such parameter file")
        data = read_toml(path, ParameterError)
        return _validate(cls, data.get("parameters", data), source=str(path))


# -- dotted names, ranges and messages -----------------------------------------------------

ALIASES: dict[str, str] = {
    # Short names for the dashboard's sliders and mesa.batch_run; each maps to one dotted field.
    "population": "simulation.population",
    "burn_in_years": "simulation.burn_in_years",
    "isolation": "social.isolation_multiplier",
    "stigma": "stigma.initial_mean",
    "capacity": "treatment.capacity_per_100k",
    "integrated_share": "treatment.integrated_share",
    "mh_capacity": "treatment.mh_capacity_per_100k",
    "naloxone_coverage": "overdose.naloxone_coverage",
    "peer_support": "social.peer_support_rate",
    "campaign": "stigma.campaign_strength",
    "network_kind": "network.kind",
    "mh_risk": "mental_health.onset_multiplier",
    "mean_degree": "network.mean_degree",
}


def flat_fields(cls: type[BaseModel] = Parameters, prefix: str = "") -> dict[str, Any]:
    """Every leaf field as {dotted.name: FieldInfo}."""
    out: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(flat_fields(ann, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = info
    return out


_FIELDS = flat_fields()


def field_info(dotted: str) -> dict[str, Any]:
    """Unit, range, source and description of one dotted field."""
    info = _FIELDS[_resolve_name(dotted)]
    extra = dict(info.json_schema_extra or {})
    return {"name": dotted, "description": info.description, "default": info.default, **extra}


def _resolve_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name in _FIELDS:
        return name
    close = difflib.get_close_matches(name, list(_FIELDS) + list(ALIASES), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ParameterError(f"unknown parameter '{name}'{hint}")


def get_dotted(params: BaseModel, dotted: str) -> Any:
    obj: Any = params
    for part in _resolve_name(dotted).split("."):
        obj = getattr(obj, part)
    return obj


def apply_overrides(params: Parameters, overrides: dict[str, Any]) -> Parameters:
    """A copy of params with dotted-name (or alias) overrides, validated as a whole."""
    data = params.model_dump()
    given: dict[str, str] = {}
    for key, value in overrides.items():
        dotted = _resolve_name(key)
        if dotted in given:  # an alias and its dotted name, say: which value was meant?
            raise ParameterError(f"'{dotted}' is given twice, as '{given[dotted]}' and as '{key}'; give it once")
        given[dotted] = key
        node = data
        *path, leaf = dotted.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    return _validate(Parameters, data)


def parse_value(text: str) -> Any:
    """A value typed on the command line, as TOML reads it (2, 0.5, true, [0.3, 0.5]); else the raw
    string (a bare word such as scale_free)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(items: list[str] | None, option: str = "--set") -> dict[str, Any]:
    """``dotted.name=value`` assignments (the command line's ``--set``) as overrides, every name and
    value checked against the tree before anything runs (ParameterError otherwise)."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, eq, text = item.partition("=")
        if not eq or not name.strip():
            raise ParameterError(f"{option} {item!r}: expected dotted.name=value, e.g. {option} treatment.seek_rate=1.5")
        out[name.strip()] = parse_value(text.strip())
    apply_overrides(Parameters(), out)
    return out


def _describe_range(dotted: str) -> str:
    info = _FIELDS.get(dotted)
    if info is None:
        return ""
    extra = info.json_schema_extra or {}
    rng = extra.get("range")
    unit = extra.get("unit", "")
    if rng and rng[0] is not None:
        u = f" ({unit})" if unit else ""
        return f"; allowed range [{rng[0]:g}, {rng[1]:g}]{u}"
    return ""


def _validate(cls: type[Parameters], data: dict[str, Any], source: str | None = None) -> Parameters:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ParameterError(_format_errors(exc, source)) from None


def _format_errors(exc: ValidationError, source: str | None) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        idx = [p for p in err["loc"] if isinstance(p, int)]
        dotted = ".".join(loc)
        where = dotted + (f"[{idx[0]}]" if idx else "")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(dotted, list(_FIELDS), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            lines.append(f"unknown parameter '{dotted}'{hint}")
            continue
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where or 'parameters'}{shown}: {msg}{_describe_range(dotted)}")
    prefix = f"{source}: " if source else ""
    return prefix + "; ".join(lines)


def markdown_table() -> str:
    """Every parameter as a Markdown table (docs/parameters.md is generated from this)."""
    lines = [
        "# Parameters",
        "",
        "Generated from `model/parameters.py` by `python -m oudsim.model.parameters > docs/parameters.md`;",
        "a test keeps it in step with the code. Sources cite rows of `docs/evidence.md` (E1 ..., M1 ...).",
        "",
        "The prior column gives the calibration's prior of each free parameter (`model/calibration.py`,",
        "FREE_PARAMETERS): what `oudsim calibrate --posterior` samples accepted values within.",
        "",
        "| parameter | default | unit | allowed range | source | meaning | prior (calibration) |",
        "|---|---|---|---|---|---|---|",
    ]
    from oudsim.model.calibration import FREE_PARAMETERS  # here: calibration imports this module

    priors = {
        p.name: f"{'log-' if p.log else ''}uniform [{p.lo:g}, {p.hi:g}]{' (a scale factor)' if p.is_vector else ''}; {p.why}"
        for p in FREE_PARAMETERS
    }
    for name, info in flat_fields().items():
        extra = info.json_schema_extra or {}
        rng = extra.get("range")
        shown_range = f"[{rng[0]:g}, {rng[1]:g}]" if rng and rng[0] is not None else ""
        default = info.default if info.default_factory is None else info.default_factory()
        if isinstance(default, list):
            default = ", ".join(f"{v:g}" for v in default)
        lines.append(
            f"| `{name}` | {default} | {extra.get('unit', '')} | {shown_range} | {extra.get('source', '')} "
            f"| {info.description or ''} | {priors.get(name, '')} |"
        )
    lines.append("")
    lines.append("Short names accepted by `OUDModel(...)`, `mesa.batch_run` and the dashboard:")
    lines.append("")
    lines.extend(f"- `{alias}` = `{dotted}`" for alias, dotted in ALIASES.items())
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
