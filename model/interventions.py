"""Interventions: changes to parameters that start at a year of the reported period and may ramp in.

An intervention moves one or more dotted parameters from their scenario value toward a target, either
set (``to``) or multiplied (``scale``), linearly over ``ramp_years`` from ``start_year``. Year 0 is the
end of burn-in, so no intervention acts during burn-in. Named kinds are presets of these changes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.parameters import Parameters, ParameterError, apply_overrides, get_dotted

# Each kind: {dotted parameter: ("to" | "scale", default amount)}; a scenario may override amounts.
KINDS: dict[str, dict[str, tuple[str, float]]] = {
    "expand_moud": {"treatment.capacity_per_100k": ("scale", 2.0)},
    "integrated_care": {"treatment.integrated_share": ("to", 0.5)},
    "expand_mental_health": {"treatment.mh_capacity_per_100k": ("scale", 1.5)},
    "reduce_isolation": {"social.peer_support_rate": ("to", 1.0), "social.isolation_multiplier": ("scale", 0.7)},
    "stigma_campaign": {"stigma.campaign_strength": ("to", 0.4)},
    "naloxone": {"overdose.naloxone_coverage": ("to", 0.6)},
}


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: str = Field(pattern="^(to|scale)$")
    amount: float


class Intervention(BaseModel):
    """One intervention; ``changes`` maps dotted parameter names to a Change."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    start_year: float = Field(0.0, ge=0, le=200)
    ramp_years: float = Field(0.0, ge=0, le=200)
    changes: dict[str, Change] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        kind = data.get("kind", "custom")
        changes = dict(data.get("changes") or {})
        if kind in KINDS:
            amount = data.pop("amount", None)
            primary = next(iter(KINDS[kind]))  # `amount` sets the kind's first change
            for name, (mode, default) in KINDS[kind].items():
                amt = amount if amount is not None and name == primary else default
                changes.setdefault(name, {"mode": mode, "amount": amt})
        elif kind != "custom":
            raise ValueError(f"unknown intervention kind '{kind}'; known kinds: {', '.join([*KINDS, 'custom'])}")
        data["changes"] = changes
        return data

    def fraction(self, year: float) -> float:
        """How far the intervention has ramped in at this year (0 before the start, 1 when full)."""
        if year < self.start_year:
            return 0.0
        if self.ramp_years <= 0:
            return 1.0
        return min((year - self.start_year) / self.ramp_years, 1.0)


class InterventionSchedule:
    """Applies a list of interventions to a model's working parameters as simulated time passes."""

    def __init__(self, interventions: list[Intervention | dict], base: Parameters) -> None:
        self.items = [i if isinstance(i, Intervention) else Intervention.model_validate(i) for i in interventions]
        self.base = base
        self._last: dict[str, Any] | None = None
        for item in self.items:  # check every target now, so a bad name fails before the run
            try:
                apply_overrides(base, self._targets(item, 1.0))
            except ParameterError as e:
                raise ParameterError(f"intervention '{item.kind}': {e}") from None

    def _targets(self, item: Intervention, frac: float) -> dict[str, float]:
        out = {}
        for name, ch in item.changes.items():
            start = float(get_dotted(self.base, name))
            end = ch.amount if ch.mode == "to" else start * ch.amount
            value = start + (end - start) * frac
            out[name] = int(round(value)) if isinstance(get_dotted(self.base, name), int) else value
        return out

    def parameters_at(self, year: float) -> Parameters | None:
        """Parameters in force at this year, or None when nothing changed since the last call."""
        values: dict[str, Any] = {}
        for item in self.items:
            frac = item.fraction(year)
            if frac > 0:
                values.update(self._targets(item, frac))
        if values == self._last:
            return None
        self._last = values
        return apply_overrides(self.base, values) if values else self.base
