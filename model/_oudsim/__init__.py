"""oudsim: an agent-based model of mental health and opioid use disorder on a social network.

The installed distribution is this one package: ``oudsim.model`` (the model and how it runs),
``oudsim.agents`` (who the people are) and ``oudsim.scenarios`` (what-ifs as files). In the repository
those are the top-level folders ``model/``, ``agents/`` and ``scenarios/`` (the project's layout); pyproject.toml
maps them under this name, and this file, the package's root, lives beside them in ``model/_oudsim/``.
"""

from importlib.metadata import PackageNotFoundError, version

from oudsim.model.parameters import ParameterError, Parameters

try:
    __version__ = version("oudsim")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["OUDModel", "Parameters", "ParameterError", "__version__", "versions"]


def versions() -> dict[str, str]:
    """This oudsim's version and those of what its results depend on (``oudsim --version``, manifests)."""
    import platform

    import numba
    import numpy

    return {
        "oudsim": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
    }


def __getattr__(name: str):
    # Imported lazily so `import oudsim` stays light (the CLI validates files without Mesa).
    if name == "OUDModel":
        from oudsim.model.oud_model import OUDModel

        return OUDModel
    raise AttributeError(name)
