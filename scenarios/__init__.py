"""Scenarios: what-if settings of the model, read from TOML files.

A scenario file holds a name, a description, parameter overrides (the parameter tree's dotted names,
as quoted keys or nested tables) and interventions, and may extend another scenario::

    name = "expand_moud"
    description = "Double medication (MOUD) treatment capacity, ramped in over a year from year 1."
    extends = "baseline"              # a shipped name, or a path relative to this file

    [parameters]
    "treatment.seek_rate" = 1.5       # or: [parameters.treatment] seek_rate = 1.5

    [[interventions]]
    kind = "expand_moud"              # a preset (model.interventions.KINDS), "mixed" or "custom"
    start_year = 1
    ramp_years = 1
    amount = 2.0

A child's parameters override its parent's; its interventions are added after its parent's.
The shipped files live beside this module; a user's file is used the same way by giving its path.
Every error is a ``ParameterError`` (``ScenarioError``) naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oudsim.model.interventions import Intervention, InterventionSchedule, parse_intervention
from oudsim.model.parameters import ALIASES, ParameterError, Parameters, apply_overrides, read_toml

if TYPE_CHECKING:
    from oudsim.model.oud_model import OUDModel

__all__ = [
    "Scenario",
    "ScenarioError",
    "SCENARIO_DIR",
    "list_scenarios",
    "load_scenario",
    "scenario_names",
]

SCENARIO_DIR = Path(__file__).resolve().parent
TOP_LEVEL_KEYS = ("name", "description", "extends", "parameters", "interventions")


class ScenarioError(ParameterError):
    """A scenario could not be found or read; the message says which file and what is wrong."""


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario: parameters (defaults plus overrides) and the interventions to apply."""

    name: str
    description: str
    params: Parameters
    interventions: tuple[Intervention, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted name -> value, inherited ones included
    path: Path | None = None
    extends: str | None = None

    def with_overrides(self, overrides: dict[str, Any], name: str | None = None) -> Scenario:
        """A copy with more dotted-name overrides (``--set``, sweeps, population), re-validated."""
        if not overrides:
            return self if name is None else dataclasses.replace(self, name=name)
        canonical = {ALIASES.get(k, k): v for k, v in overrides.items()}
        params = apply_overrides(self.params, canonical)
        _check_interventions(self.interventions, params, self.name)
        return dataclasses.replace(
            self, name=name or self.name, params=params, overrides={**self.overrides, **canonical}
        )

    def build_model(self, population: int | None = None, rng: Any = None, **overrides: Any) -> OUDModel:
        """An OUDModel with this scenario's parameters and interventions (burn-in runs here)."""
        from oudsim.model.oud_model import OUDModel  # imported here: listing scenarios needs no Mesa

        return OUDModel(
            population=population,
            rng=rng,
            params=self.params,
            interventions=list(self.interventions),
            **overrides,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record for manifests: origin, what it changes, every parameter."""
        return {
            "name": self.name,
            "description": self.description,
            "path": str(self.path) if self.path else None,
            "extends": self.extends,
            "overrides": self.overrides,
            "interventions": [i.model_dump() for i in self.interventions],
            "parameters": self.params.model_dump(),
        }


# -- finding and reading files ----------------------------------------------------------------


def scenario_names() -> list[str]:
    """Names of the shipped scenarios (their file stems), sorted."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def list_scenarios(directory: str | Path | None = None) -> list[Scenario]:
    """Every scenario in a directory (default: the shipped ones), loaded and validated, by name."""
    folder = Path(directory) if directory is not None else SCENARIO_DIR
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: no such folder")
    return [load_scenario(p) for p in sorted(folder.glob("*.toml"))]


def load_scenario(ref: str | Path | Scenario) -> Scenario:
    """A Scenario from a shipped name (``"baseline"``), a TOML file path, or a Scenario (as is)."""
    if isinstance(ref, Scenario):
        return ref
    return _load(_locate(ref, base=None), chain=())


def _locate(ref: str | Path, base: Path | None) -> Path:
    """The file for a name or path; names are looked up beside ``base`` (extends), then shipped."""
    text = str(ref)
    looks_like_path = isinstance(ref, Path) or text.endswith(".toml") or "/" in text or "\\" in text
    candidates = []
    if looks_like_path:
        p = Path(text).expanduser()
        candidates.append(p if p.is_absolute() or base is None else base / p)
    else:
        if base is not None:
            candidates.append(base / f"{text}.toml")
        candidates.append(SCENARIO_DIR / f"{text}.toml")
    for c in candidates:
        if c.is_file():
            return c.resolve()
    if looks_like_path:
        raise ScenarioError(f"{candidates[0]}: no such scenario file")
    known = scenario_names()
    close = get_close_matches(text, known, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ScenarioError(
        f"unknown scenario '{text}'{hint}. Known scenarios: {', '.join(known)} (or give a path to a .toml file)"
    )


def _read_toml(path: Path) -> dict[str, Any]:
    return read_toml(path, ScenarioError)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables -> dotted names; lists and scalars are values."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _check_interventions(items: tuple[Intervention, ...], params: Parameters, where: str) -> None:
    try:
        InterventionSchedule(list(items), params)
    except ParameterError as e:
        raise ScenarioError(f"{where}: {e}") from None


MAX_NAME = 100


def check_name(name: str, where: Path | str = "scenario") -> str:
    """A scenario name is written into files, tables and terminals: refuse an empty one, one with
    control characters, or one longer than MAX_NAME characters."""
    if not name.strip():
        raise ScenarioError(f"{where}: the scenario name is empty")
    bad = [c for c in name if not c.isprintable()]
    if bad:
        raise ScenarioError(
            f"{where}: the scenario name {name.encode('unicode_escape').decode()!r} has control characters"
        )
    if len(name) > MAX_NAME:
        raise ScenarioError(f"{where}: the scenario name is {len(name)} characters long (at most {MAX_NAME})")
    return name


def _load(path: Path, chain: tuple[Path, ...]) -> Scenario:
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise ScenarioError(f"{path}: scenarios extend each other in a cycle: {cycle}")
    data = _read_toml(path)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            close = get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ScenarioError(f"{path}: unknown key '{key}'{hint}; a scenario has {', '.join(TOP_LEVEL_KEYS)}")
    for key in ("name", "description", "extends"):
        if key in data and not isinstance(data[key], str):
            raise ScenarioError(f"{path}: '{key}' must be a string, not {data[key]!r}")
    if "name" in data:
        check_name(data["name"], path)

    parent: Scenario | None = None
    if "extends" in data:
        try:
            parent = _load(_locate(data["extends"], base=path.parent), (*chain, path))
        except ScenarioError as e:
            raise ScenarioError(f"{path}: extends '{data['extends']}': {e}") from None

    raw_params = data.get("parameters", {})
    if not isinstance(raw_params, dict):
        raise ScenarioError(f"{path}: 'parameters' must be a table of dotted names, not {raw_params!r}")
    own = {ALIASES.get(k, k): v for k, v in _flatten(raw_params).items()}
    overrides = {**(parent.overrides if parent else {}), **own}
    try:
        params = apply_overrides(Parameters(), overrides)
    except ParameterError as e:
        raise ScenarioError(f"{path}: {e}") from None

    raw_items = data.get("interventions", [])
    if not isinstance(raw_items, list):
        raise ScenarioError(f"{path}: 'interventions' must be an array of tables ([[interventions]])")
    try:
        own_items = tuple(parse_intervention(d, f"interventions[{i}]") for i, d in enumerate(raw_items))
    except ParameterError as e:
        raise ScenarioError(f"{path}: {e}") from None
    items = (parent.interventions if parent else ()) + own_items
    _check_interventions(items, params, str(path))

    return Scenario(
        name=data.get("name", path.stem),
        description=data.get("description", parent.description if parent else ""),
        params=params,
        interventions=items,
        overrides=overrides,
        path=path,
        extends=data.get("extends"),
    )
