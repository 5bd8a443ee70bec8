"""Every file oudsim reads that a user can hand it or touch: scenario and parameter files (TOML),
edge lists, and a results folder's tables (CSV), series (Parquet) and manifest (JSON).

Whatever is wrong with such a file — missing, unreadable, empty, not UTF-8, cut short, garbage, a
syntax error — becomes one exception whose message names the file (and the line, where there is
one), so that the command line shows one message and exits 2. ``error`` is the exception class the
caller's domain uses (``ParameterError`` for parameter files, ``ScenarioError`` otherwise).

Parts of a run (``parts/*.parquet``) are not read here: they are checked and, if bad, run again
(model.results_folder). A posterior file has its own checks on top of these (model.posterior).
"""

from __future__ import annotations

import io
import json
import re
import tomllib
from pathlib import Path
from typing import Any


def _scenario_error() -> type[Exception]:
    from oudsim.scenarios import ScenarioError  # not at import: parameters imports this module

    return ScenarioError


def read_bytes(path: Path, error: type[Exception]) -> bytes:
    """The file's bytes; refused if missing, unreadable or empty."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror or e}") from None
    if not raw.strip():
        raise error(f"{path}: the file is empty")
    return raw


def read_text(path: Path, error: type[Exception]) -> str:
    """The file as UTF-8 text; refused as ``read_bytes`` does, or if not UTF-8 (naming the line)."""
    raw = read_bytes(path, error)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at line {line}); save it as UTF-8"
        ) from None


def read_toml(path: Path, error: type[Exception]) -> dict[str, Any]:
    """A TOML file's tables, or ``error`` with one message naming the file: unreadable, empty, not
    UTF-8 (with the line of the first bad byte), a syntax error (with its line), or nested too deeply."""
    text = read_text(path, error)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python 3.12's message ends "(at line L, column C)": lead with the line, as compilers do.
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)$", msg)
        if m:
            reason = msg[: m.start()].strip()
            raise error(f"{path}:{m[1]}: TOML syntax error at line {m[1]}, column {m[2]}: {reason}") from None
        raise error(f"{path}: TOML syntax error: {msg}") from None
    except RecursionError:
        raise error(f"{path}: tables or arrays nested too deeply to read") from None


def read_table(path: Path, error: type[Exception] | None = None) -> Any:
    """A CSV table oudsim wrote (a pandas DataFrame). Names such as "NA" or "None" stay names (pandas
    would read them as missing values). Refused, naming the file, if it cannot be a whole table: empty,
    not UTF-8, cut short (every table oudsim writes ends with a line break), or not parsable."""
    import pandas as pd

    error = error or _scenario_error()
    text = read_text(path, error)
    if not text.endswith("\n"):
        raise error(f"{path}: cut short (its last line is incomplete); run the command that wrote it again")
    try:
        return pd.read_csv(
            io.StringIO(text), keep_default_na=False, na_values=[""], dtype={"scenario": str, "base": str}
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise error(f"{path}: not a table oudsim can read ({type(e).__name__}: {str(e)[:120]})") from None


def read_parquet(path: Path, columns: list[str] | None = None, error: type[Exception] | None = None) -> Any:
    """A Parquet file (a pandas DataFrame), with only ``columns`` if given; refused, naming the file,
    if it is empty, cut short, damaged or lacks a column asked for."""
    import pandas as pd
    import pyarrow as pa

    error = error or _scenario_error()
    read_bytes(path, error)  # missing or empty: the same words as every other file
    try:
        return pd.read_parquet(path, columns=columns)
    except (OSError, ValueError, pa.ArrowException) as e:
        raise error(
            f"{path}: not a Parquet file oudsim can read: empty, cut short or damaged "
            f"({type(e).__name__}: {str(e)[:120]}); run the command that wrote it again"
        ) from None


def read_json(path: Path, error: type[Exception] | None = None) -> Any:
    """A JSON file oudsim wrote (a manifest); refused, naming the file, if it is not whole JSON."""
    error = error or _scenario_error()
    text = read_text(path, error)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise error(f"{path}: not JSON oudsim can read ({str(e)[:120]}); run the command that wrote it again") from None


def read_lines(path: Path, error: type[Exception]) -> list[str]:
    """A text file's lines (an edge list), refused as ``read_text`` does."""
    return read_text(path, error).splitlines()
