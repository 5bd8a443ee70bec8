"""Who the people are: their state arrays, the Person view and the state codes."""

from agents.person import Person
from agents.population import Population
from agents.states import DISORDERS, SES, TRAITS, AceGroup, Care, Stage

__all__ = ["Person", "Population", "Stage", "Care", "AceGroup", "SES", "DISORDERS", "TRAITS"]
