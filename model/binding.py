"""Kernel arguments by name.

A compiled process function (a kernel) takes its arrays and constants as positional arguments: a call
by keyword costs numba several microseconds, a positional call a fraction of one. So the argument list
is built once per parameter set, *by name*, in the kernel's own parameter order: ``bind(kernel,
sources, **own)`` looks up each of the kernel's parameters among what its process gives (``own``: the
constants it derives from the parameters, its hazard tables) and then among what the model shares
(``OUDModel.shared()``: every population field by its name, the network's arrays, the random streams
as ``<name>_stream``, the transition log's ``count`` and ``uid``, working memory, per-stage tables).
A missing or unknown name fails at once, naming the kernel and the argument; two floats can no
longer be swapped by position.

What changes from step to step (``PER_STEP``: the transition log's table, which grows, and the week)
is handed over at the call: a kernel that takes them takes them last, in that order, and its process
calls ``kernel(*bound, m.log_table(), m.week)`` (or ``kernel(*bound, m.week)``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ["PER_STEP", "BindingError", "bind", "parameter_names"]

PER_STEP = ("table", "week")


class BindingError(TypeError):
    """A kernel's argument list could not be built from the names given."""


@functools.cache
def parameter_names(kernel: Any) -> tuple[str, ...]:
    """The kernel's parameters, in order (of its Python function, for a numba dispatcher)."""
    return tuple(inspect.signature(getattr(kernel, "py_func", kernel)).parameters)


def bind(kernel: Any, sources: Mapping[str, Any], /, at_call: tuple[str, ...] = PER_STEP, **own: Any) -> tuple:
    """The kernel's arguments before its per-step ones (``at_call``: those its caller hands over at
    each call, last and in that order), in its parameter order: each from ``own`` if given there, else
    from ``sources``."""
    names = parameter_names(kernel)
    label = getattr(kernel, "__name__", repr(kernel))
    fixed = len(names)
    while fixed and names[fixed - 1] in at_call:
        fixed -= 1
    tail = names[fixed:]
    if tail != tuple(x for x in at_call if x in tail) or any(x in at_call for x in names[:fixed]):
        raise BindingError(
            f"{label}: the arguments given at each call {at_call} must come last, in that order (it takes {names})"
        )
    unknown = sorted(set(own) - set(names[:fixed]))
    if unknown:
        named = ", ".join(map(repr, unknown))
        raise BindingError(f"{label} takes no argument named {named} (it takes {names[:fixed]})")
    args = []
    for name in names[:fixed]:
        if name in own:
            args.append(own[name])
        elif name in sources:
            args.append(sources[name])
        else:
            raise BindingError(
                f"{label} needs {name!r}: neither its process gives it nor does the model share it "
                "(a population field, a network array, '<stream>_stream', or OUDModel.shared())"
            )
    return tuple(args)
