"""Who the people are: their state arrays, the Person view and the state codes."""

from oudsim.agents.person import Person
from oudsim.agents.population import Population
from oudsim.agents.states import DISORDERS, SES, TRAITS, AceGroup, Care, Stage

__all__ = ["Person", "Population", "Stage", "Care", "AceGroup", "SES", "DISORDERS", "TRAITS"]
