"""The model and how it runs: OUDModel, parameters, processes, metrics, experiments, the CLI."""

from oudsim.model.parameters import ParameterError, Parameters

__all__ = ["OUDModel", "Parameters", "ParameterError"]


def __getattr__(name: str):
    # Imported lazily so `import oudsim.model.parameters` stays light (the CLI validates files without Mesa).
    if name == "OUDModel":
        from oudsim.model.oud_model import OUDModel

        return OUDModel
    raise AttributeError(name)
