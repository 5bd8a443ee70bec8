"""What the command line shares: exit codes, the two Rich consoles, the error exit and the progress bar."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
MAX_REPLICATES = 100_000  # per scenario: beyond it the task list alone would fill memory


def terminal_width(stream: Any) -> int | None:
    # Rich assumes 80 columns when output is not a terminal; tables of several scenarios need more.
    return None if os.environ.get("COLUMNS") or stream.isatty() else 150


class _Console(Console):
    """Rich's console for text that may hold what a user typed (paths, names): no markup is read in it
    ("[red]" in a folder's name stays as typed) and control characters are shown as escapes."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


out_console = _Console(highlight=False, markup=False, width=terminal_width(sys.stdout))
err_console = _Console(stderr=True, highlight=False, markup=False, soft_wrap=True, width=terminal_width(sys.stderr))


def exit_interrupted() -> NoReturn:
    """Exit 130 after Ctrl-C, and never hang on the way out.

    A process pool whose workers were killed can leave its manager thread or a worker that
    interpreter exit would wait for (seen once in CI: the summary printed, then no exit). Give them
    a moment, then end the stragglers and leave without waiting.
    """
    import multiprocessing as mp

    threads = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for t in threads:
        t.join(timeout=5)
    children = mp.active_children()
    for child in children:
        child.join(timeout=2)
        if child.is_alive():
            child.kill()
    if any(t.is_alive() for t in threads) or any(c.is_alive() for c in children):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_INTERRUPTED)


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\t"}


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (\\x1b ...): a name or a line of a file
    echoed in a message cannot move the cursor, recolour or clear the user's terminal."""
    return text.translate(_CONTROL)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """One red line on stderr and the exit code: bad input is a message, not a traceback."""
    err_console.print(Text("error: ", style="bold red") + Text(printable(message)), soft_wrap=True)  # unbroken
    raise typer.Exit(code)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # stop as Ctrl-C does: finished work is kept, the worker processes ended


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, a batch system's time limit) stops a command as Ctrl-C does: its message, its
    manifest, its exit code 130, no worker left behind."""
    in_main = threading.current_thread() is threading.main_thread()  # only it may set a handler
    previous = signal.signal(signal.SIGTERM, _sigterm) if in_main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """A command's errors in words: bad input becomes one message and exit 2 (a file or folder that
    cannot be read or written names itself); Ctrl-C or SIGTERM outside a run becomes exit 130 (a run
    catches them itself: it keeps and writes what finished)."""
    from oudsim.model.parameters import ParameterError

    try:
        with sigterm_as_interrupt():
            yield
    except ParameterError as e:  # ScenarioError is one too
        fail(str(e))
    except OSError as e:  # e.g. --out names a file, or a folder we may not write to
        where = f"{e.filename}: " if e.filename else ""
        fail(f"{where}{e.strerror or e}")
    except KeyboardInterrupt:
        err_console.print("interrupted")
        exit_interrupted()


@contextlib.contextmanager
def progress_bar(label: str, unit: str = "runs") -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr with done/total, elapsed and time left; yields ``update(done, total)``."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("elapsed,"),
        TimeRemainingColumn(),
        TextColumn("left"),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
