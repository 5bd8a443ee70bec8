"""Interventions: changes to parameters that start at a year of the reported period and may ramp in.

An intervention moves one or more dotted parameters from their scenario value toward a target,
either set (``to``) or multiplied (``scale``), linearly over ``ramp_years`` from ``start_year``.
Year 0 is the end of burn-in, so no intervention acts during burn-in. Named kinds are presets
of these changes.

Ways to write one (as a dict, or a ``[[interventions]]`` table of a scenario file)::

    {"kind": "expand_moud", "start_year": 1, "ramp_years": 2, "amount": 3.0}  # preset, own amount
    {"kind": "custom", "scale": {"social.isolation_multiplier": 2.0}}          # multiply a value
    {"kind": "custom", "set": {"overdose.naloxone_coverage": 0.8}}              # move it to a value
    {"kind": "mixed", "components": ["expand_moud", {"kind": "naloxone", "amount": 0.8}]}
    {"kind": "custom", "changes": {"treatment.seek_rate": {"mode": "scale", "amount": 1.5}}}
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from oudsim.model.parameters import ALIASES, ParameterError, Parameters, apply_overrides, get_dotted

__all__ = ["KINDS", "Change", "Intervention", "InterventionSchedule", "parse_intervention"]

# Each kind: {dotted parameter: ("to" | "scale", default amount)}; a scenario may override amounts.
KINDS: dict[str, dict[str, tuple[str, float]]] = {
    "expand_moud": {"treatment.capacity_per_100k": ("scale", 2.0)},
    "integrated_care": {"treatment.integrated_share": ("to", 0.5)},
    "expand_mental_health": {"treatment.mh_capacity_per_100k": ("scale", 1.5)},
    "reduce_isolation": {
        "social.peer_support_rate": ("to", 1.0),
        "social.isolation_multiplier": ("scale", 0.7),
    },
    "stigma_campaign": {"stigma.campaign_strength": ("to", 0.4)},
    "naloxone": {"overdose.naloxone_coverage": ("to", 0.6)},
}
# "custom" lists its own changes; "mixed" is a package of preset kinds started together.
ALL_KINDS: tuple[str, ...] = (*KINDS, "mixed", "custom")
_KEYS = (
    "kind",
    "label",
    "start_year",
    "ramp_years",
    "amount",
    "set",
    "scale",
    "changes",
    "components",
)


# Sections a running model cannot change: they shape its arrays, clock and network at construction.
FIXED_SECTIONS = ("simulation", "network")


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: str = Field(pattern="^(to|scale)$")
    amount: float


class Intervention(BaseModel):
    """One intervention; ``changes`` maps dotted parameter names to a Change."""

    model_config = ConfigDict(extra="forbid")
    kind: str = "custom"
    label: str | None = None
    start_year: float = Field(0.0, ge=0, le=200, json_schema_extra={"unit": "years"})
    ramp_years: float = Field(0.0, ge=0, le=200, json_schema_extra={"unit": "years"})
    changes: dict[str, Change] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        kind = data.get("kind", "custom")
        if not isinstance(kind, str):
            raise ValueError(f"kind must be a string, not {kind!r}")
        explicit = _flatten_changes(data.pop("changes", None) or {})
        for mode, key in (("to", "set"), ("scale", "scale")):
            for name, amount in _flatten(data.pop(key, None) or {}, key).items():
                explicit[name] = {"mode": mode, "amount": amount}
        if kind == "mixed":
            if "amount" in data:
                raise ValueError("a mixed intervention sets amounts per component: {kind = ..., amount = ...}")
            changes = _expand_components(data.pop("components", None))
        elif kind in KINDS:
            changes = _preset_changes(kind, data.pop("amount", None))
        elif kind == "custom":
            if "amount" in data:
                raise ValueError("'amount' belongs to a named kind; a custom intervention lists `set` or `scale`")
            changes = {}
        else:
            raise ValueError(
                f"unknown intervention kind '{kind}'{_closest(kind, ALL_KINDS)}; known kinds: {', '.join(ALL_KINDS)}"
            )
        if "components" in data:
            raise ValueError("'components' is only for kind = \"mixed\"")
        changes.update(explicit)  # explicit changes win over a preset's defaults
        if not changes:
            raise ValueError(f"intervention '{kind}' changes nothing: give `set`, `scale` or `changes`")
        # Aliases ("capacity") name the same field as their dotted name: store the dotted name.
        data["changes"] = {ALIASES.get(name, name): ch for name, ch in changes.items()}
        fixed = [n for n in data["changes"] if n.split(".")[0] in FIXED_SECTIONS]
        if fixed:
            raise ValueError(
                f"{', '.join(fixed)}: an intervention cannot change the simulation or the network once it runs "
                "(the step length, population, burn-in and ties are set when the model is built); set them in "
                "[parameters] instead"
            )
        return data

    def fraction(self, year: float) -> float:
        """How far the intervention has ramped in at this year (0 before the start, 1 when full)."""
        if year < self.start_year:
            return 0.0
        if self.ramp_years <= 0:
            return 1.0
        return min((year - self.start_year) / self.ramp_years, 1.0)

    def describe(self) -> str:
        """One line for tables: what changes, from when."""
        parts = [f"{n} {'×' if c.mode == 'scale' else '→'} {c.amount:g}" for n, c in self.changes.items()]
        ramp = f" over {self.ramp_years:g} y" if self.ramp_years else ""
        return f"{self.label or self.kind} (year {self.start_year:g}{ramp}): {', '.join(parts)}"


def _closest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def _flatten(table: Any, where: str) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: TOML's unquoted dotted keys nest, quoted ones do not."""
    if not isinstance(table, dict):
        raise ValueError(f"'{where}' must be a table of dotted parameter names, not {table!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in _flatten(value, where).items()})
        else:
            out[key] = value
    return out


def _flatten_changes(table: Any) -> dict[str, Any]:
    """Like _flatten, but a table holding 'mode' or 'amount' is a Change, not a section."""
    if not isinstance(table, dict):
        raise ValueError(f"'changes' must be a table, not {table!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and not ({"mode", "amount"} & value.keys()):
            out.update({f"{key}.{k}": v for k, v in _flatten_changes(value).items()})
        else:
            out[key] = value
    return out


def _preset_changes(kind: str, amount: Any) -> dict[str, Any]:
    primary = next(iter(KINDS[kind]))  # `amount` sets the kind's first change
    return {
        name: {
            "mode": mode,
            "amount": amount if amount is not None and name == primary else default,
        }
        for name, (mode, default) in KINDS[kind].items()
    }


def _expand_components(components: Any) -> dict[str, Any]:
    if not isinstance(components, list) or not components:
        raise ValueError(f"a mixed intervention needs components = [kind, ...] from {', '.join(KINDS)}")
    changes: dict[str, Any] = {}
    for item in components:
        spec = {"kind": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or set(spec) - {"kind", "amount"}:
            raise ValueError(f"a component is a kind name or {{kind = ..., amount = ...}}, not {item!r}")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(
                f"unknown component kind '{kind}'{_closest(str(kind), KINDS)}; known kinds: {', '.join(KINDS)}"
            )
        for name, change in _preset_changes(kind, spec.get("amount")).items():
            if name in changes and changes[name] != change:
                raise ValueError(f"components change '{name}' in two different ways")
            changes[name] = change
    return changes


def parse_intervention(data: Any, where: str = "intervention") -> Intervention:
    """Validate one intervention; a ParameterError names the key and what is accepted."""
    if isinstance(data, Intervention):
        return data
    if not isinstance(data, dict):
        raise ParameterError(f"{where}: an intervention is a table (kind, start_year, ...), not {data!r}")
    for key in data:
        if key not in _KEYS:
            raise ParameterError(f"{where}: unknown key '{key}'{_closest(key, _KEYS)}; valid keys: {', '.join(_KEYS)}")
    try:
        return Intervention.model_validate(data)
    except ValidationError as exc:
        raise ParameterError(f"{where}: {_format(exc)}") from None


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # raised by _preset: the message says it all
            lines.append(msg)
            continue
        field = Intervention.model_fields.get(str(err["loc"][0]))
        extra = field.json_schema_extra if field is not None else None
        bounds = ""
        if isinstance(extra, dict) and field is not None:
            lo = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
            hi = next((m.le for m in field.metadata if hasattr(m, "le")), None)
            if lo is not None and hi is not None:
                bounds = f"; allowed range [{lo:g}, {hi:g}] ({extra.get('unit', '')})"
        lines.append(f"{loc} = {err.get('input')!r}: {msg}{bounds}")
    return "; ".join(lines)


class InterventionSchedule:
    """Applies a list of interventions to a model's working parameters as simulated time passes."""

    def __init__(self, interventions: list[Intervention | dict], base: Parameters) -> None:
        self.items = [parse_intervention(i, f"intervention {n + 1}") for n, i in enumerate(interventions)]
        self.base = base
        self._last: dict[str, Any] | None = None
        for item in self.items:  # check every target now, so a bad name or value fails before the run
            try:
                for name in item.changes:
                    current = get_dotted(base, name)
                    if isinstance(current, bool) or not isinstance(current, int | float):
                        raise ParameterError(f"'{name}' is not a number, so an intervention cannot ramp it")
                apply_overrides(base, self._targets(item, 1.0))
            except ParameterError as e:
                raise ParameterError(f"intervention '{item.label or item.kind}': {e}") from None

    def _targets(self, item: Intervention, frac: float) -> dict[str, float]:
        out = {}
        for name, ch in item.changes.items():
            current = get_dotted(self.base, name)
            start = float(current)
            end = ch.amount if ch.mode == "to" else start * ch.amount
            value = start + (end - start) * frac
            out[name] = int(round(value)) if isinstance(current, int) else value
        return out

    def first_week(self, dt_weeks: int) -> int | None:
        """The first step (week 1 or later) at which any of these interventions acts (``parameters_at``
        of its year changes a value), or None without interventions: the weeks before it run as
        without them, so runs that differ only in their interventions are the same until then."""
        firsts = []
        for item in self.items:
            week = max(1, math.floor(item.start_year * 52 / dt_weeks) - 1)
            while item.fraction(week * dt_weeks / 52.0) <= 0:  # a step or two past the estimate
                week += 1
            firsts.append(week)
        return min(firsts, default=None)

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
