"""oudsim: an agent-based model of mental health and opioid use disorder on a social network."""

from model.parameters import ParameterError, Parameters

__all__ = ["OUDModel", "Parameters", "ParameterError"]


def __getattr__(name: str):
    # Imported lazily so `import model.parameters` stays light (the CLI validates files without Mesa).
    if name == "OUDModel":
        from model.oud_model import OUDModel

        return OUDModel
    raise AttributeError(name)
