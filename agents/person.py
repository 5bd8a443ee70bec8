"""``Person``: a Mesa agent that is a view onto one row of the population arrays.

It owns no state: every attribute reads (or writes) the arrays, so the vectorised processes and the
Mesa idiom (``model.agents.select``, ``groupby``, ``agg``) see the same people. Its ``unique_id`` is
the id of whoever holds the row (``model.uid``): when someone dies, the newcomer who takes the row
gets a new id, and the agent, a view onto the row, stays (a Mesa agent removed and created for every
death cost more than the rest of a step's bookkeeping at 5,000 people).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from oudsim.agents.states import DISORDERS, TRAITS, Care, Stage

if TYPE_CHECKING:
    from oudsim.model.oud_model import OUDModel


class Person(mesa.Agent):
    def __init__(self, model: OUDModel, row: int) -> None:
        self.row = row
        super().__init__(model)

    @property
    def unique_id(self) -> int:
        return int(self.model.uid[self.row])

    @unique_id.setter
    def unique_id(self, value: int | None) -> None:
        # Mesa's Agent sets None, then the model's next id, when the agent registers.
        if value is not None:
            self.model.uid[self.row] = value

    # Fixed attributes and states, read from the arrays.
    @property
    def _pop(self):
        return self.model.population

    @property
    def age(self) -> float:
        return float(self._pop.age[self.row])

    @property
    def ace(self) -> int:
        return int(self._pop.ace[self.row])

    @property
    def ses(self) -> int:
        return int(self._pop.ses[self.row])

    @property
    def female(self) -> bool:
        return bool(self._pop.female[self.row])

    @property
    def family_support(self) -> bool:
        return bool(self._pop.family_support[self.row])

    @property
    def stage(self) -> Stage:
        return Stage(int(self._pop.stage[self.row]))

    @property
    def care(self) -> Care:
        return Care(int(self._pop.care[self.row]))

    @property
    def in_mh_care(self) -> bool:
        return bool(self._pop.in_mh_care[self.row])

    @property
    def waiting(self) -> bool:
        return bool(self._pop.waiting[self.row])

    @property
    def disorders(self) -> dict[str, bool]:
        return {name: bool(self._pop.mh[i, self.row]) for i, name in enumerate(DISORDERS)}

    @property
    def has_disorder(self) -> bool:
        return bool(self._pop.mh[:, self.row].any())

    @property
    def traits(self) -> dict[str, float]:
        inc = self.model.params.mental_health.trait_increment
        return {name: float(self._pop.trait(i, inc, self.row)) for i, name in enumerate(TRAITS)}

    @property
    def craving(self) -> float:
        return float(self._pop.craving[self.row])

    @property
    def stigma(self) -> float:
        return float(self._pop.stigma[self.row])

    @property
    def internal_stigma(self) -> float:
        return float(self._pop.internal_stigma[self.row])

    @property
    def loneliness(self) -> float:
        return float(self._pop.loneliness[self.row])

    @property
    def degree(self) -> int:
        return int(self._pop.degree[self.row])

    def ties(self) -> list[Person]:
        """The people this person has an active tie with."""
        rows = self.model.network.neighbours(self.row)
        return [self.model.people[r] for r in rows]

    def history(self) -> list[tuple[int, Stage, Stage]]:
        """Stage changes since this person entered: (week, from, to)."""
        return self.model.transitions.for_person(self.unique_id)

    def state(self) -> dict:
        """Everything the inspector shows, as plain values."""
        return {
            "id": self.unique_id,
            "row": self.row,
            "age": round(self.age, 1),
            "female": self.female,
            "ses": ["low", "middle", "high"][self.ses],
            "ace": ["0", "1-3", "4+"][self.ace],
            "family_support": self.family_support,
            "stage": self.stage.name.lower(),
            **self.disorders,
            **{k: round(v, 3) for k, v in self.traits.items()},
            "craving": round(self.craving, 3),
            "stigma": round(self.stigma, 3),
            "internal_stigma": round(self.internal_stigma, 3),
            "loneliness": round(self.loneliness, 3),
            "ties": self.degree,
            "care": self.care.name.lower(),
            "mh_care": self.in_mh_care,
            "waiting": self.waiting,
        }

    def __repr__(self) -> str:
        return f"Person(id={self.unique_id}, row={self.row}, stage={self.stage.name.lower()})"
