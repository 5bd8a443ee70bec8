"""The two notebooks (docs/notebooks/*.py, jupytext's percent format) run from top to bottom on this
environment's Python, and what they show is what they say: a person's story with stages, a paired
difference whose interval excludes zero in the direction the text gives, figures, a comparison table
with its columns and scenarios, and a scenario file that ``oudsim validate`` accepts.

Measured on the two-core machine, alone: about 30 s (student) and 50 s (analyst).
"""

from __future__ import annotations

import base64
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "docs" / "notebooks"
KERNEL = "oudsim-tests"
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.slow


@pytest.fixture()
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec for this interpreter (the project's .venv), found before any other on the machine."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return KERNEL


def run_notebook(name: str, kernel: str, cwd: Path, *, probe: str) -> tuple[list, dict]:
    """Execute the notebook, then one cell more (``probe``) that prints JSON about the kernel's state.
    Returns the notebook's code cells (with outputs) and the probe's JSON."""
    import jupytext
    import nbclient
    import nbformat

    nb = jupytext.read(NOTEBOOKS / name)
    cells = len(nb.cells)
    probe_code = f"import json as _json, sys as _sys\nprint(_json.dumps({{'python': _sys.executable, **({probe})}}))"
    nb.cells.append(nbformat.v4.new_code_cell(probe_code))
    nbclient.NotebookClient(nb, timeout=600, kernel_name=kernel, resources={"metadata": {"path": str(cwd)}}).execute()
    state = json.loads(nb.cells[-1].outputs[0]["text"])
    assert Path(state["python"]).resolve() == Path(sys.executable).resolve(), "not this environment's kernel"
    return [c for c in nb.cells[:cells] if c.cell_type == "code"], state


def text_of(cells: list) -> str:
    """Everything the cells printed or showed as text."""
    out = []
    for cell in cells:
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                out.append(o["text"])
            elif "data" in o:
                out.append(o["data"].get("text/plain", ""))
    return "\n".join(out)


class _Table(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(cells: list) -> list[list[list[str]]]:
    """Each HTML table the cells showed (a pandas frame), as rows of cell texts, header rows first."""
    tables = []
    for cell in cells:
        for o in cell.get("outputs", []):
            if "data" in o and "text/html" in o["data"]:
                parser = _Table()
                parser.feed(o["data"]["text/html"])
                tables.append(parser.rows)
    return tables


def body(table: list[list[str]]) -> dict[str, list[str]]:
    """The rows under the header, by their first cell (the frame's index)."""
    header = 2 if len(table) > 1 and not any(table[1][1:]) else 1  # a named index adds a header row
    return {row[0]: row[1:] for row in table[header:]}


def figures(cells: list) -> list[bytes]:
    return [
        base64.b64decode(o["data"]["image/png"])
        for cell in cells
        for o in cell.get("outputs", [])
        if "data" in o and "image/png" in o["data"]
    ]


def test_a_students_first_hour(kernel: str, tmp_path: Path):
    probe = (
        "{'diff': differences.loc['oud_prevalence', ['diff', 'lo', 'hi', 'n']].tolist(), "
        "'pairs': per_pair.tolist(), 'story_id': person.unique_id, "
        "'history': [(w, a.name, b.name) for w, a, b in person.history()]}"
    )
    cells, state = run_notebook("student_first_hour.py", kernel, tmp_path, probe=probe)
    assert not [o for c in cells for o in c.outputs if o["output_type"] == "error"]
    shown = text_of(cells)

    # A small model, built and stepped a year.
    assert re.search(r"Week 0: 5,000 people", shown)
    assert re.search(r"^\s+oud\s+[\d,]+$", shown, re.MULTILINE)
    weekly = html_tables(cells)[0]
    assert {"oud_prevalence", "treatment_coverage"} <= set(weekly[0]) and list(body(weekly))[-1] == "52"

    # One person's story: who they are, and each change of stage with its week, as the model logged it.
    story = re.search(r"Person (\d+): \d+ years old.*?(?=\n\n|\Z)", shown, re.DOTALL)
    assert story and int(story.group(1)) == state["story_id"]
    changes = re.findall(r"week\s+(\d+): (\w+) -> (\w+)", story.group(0))
    assert len(changes) >= 2
    assert [(int(w), a, b) for w, a, b in changes] == [(w, a.lower(), b.lower()) for w, a, b in state["history"]]

    # Same seed, isolation x3: OUD higher in each of the three pairs, as the text reads them.
    firsts = re.findall(r"seed \d: baseline ([\d.]+)%, isolation x3 ([\d.]+)%, difference \+([\d.]+)%", shown)
    assert len(firsts) == 3 and all(float(i) > float(b) for b, i, _ in firsts)

    # Paired replicates: isolation raises OUD prevalence, the 95% interval above zero (documented
    # direction; measured at these sizes over seeds 1-5: lo 0.11-0.17 points, diff 0.17-0.21).
    diff, lo, hi, n = state["diff"]
    assert n == 10 and 0 < lo < diff < hi
    assert all(p > 0 for p in state["pairs"])
    sentence = re.search(r"changed OUD prevalence by \+([\d.]+) percentage points \(95% interval \+([\d.]+)", shown)
    assert sentence and float(sentence.group(1)) == pytest.approx(100 * diff, abs=0.006)
    assert "the interval excludes zero" in shown
    table = html_tables(cells)[1]
    assert table[0][1:] == ["base_mean", "scenario_mean", "diff", "lo", "hi", "n"]
    rows = body(table)
    assert list(rows) == ["oud_prevalence", "misuse_prevalence", "mh_prevalence", "mean_loneliness", "isolated_share"]
    assert float(rows["oud_prevalence"][2]) == pytest.approx(diff, rel=1e-3)

    # Two figures: the year's prevalence and the paired differences.
    pngs = figures(cells)
    assert len(pngs) == 2 and all(p.startswith(PNG) and len(p) > 10_000 for p in pngs)


def test_an_analysts_scenario_study(kernel: str, tmp_path: Path):
    from typer.testing import CliRunner

    from oudsim.model.cli import app
    from oudsim.scenarios import load_scenario, scenario_names

    probe = "{'custom': str(custom.resolve()), 'out': str(OUT.resolve()), 'mine_n': int(mine_vs_base['n'].min())}"
    cells, state = run_notebook("analyst_scenario_study.py", kernel, tmp_path, probe=probe)
    assert not [o for c in cells for o in c.outputs if o["output_type"] == "error"]
    shown = text_of(cells)
    tables = html_tables(cells)

    # The scenarios: every shipped one, with its interventions.
    shipped = tables[0]
    assert sorted(body(shipped)) == scenario_names()
    assert shipped[0][1:] == ["interventions", "description"] and body(shipped)["expand_moud"][0] == "expand_moud"

    # The comparison: columns and scenarios as the notebook says, written out too.
    out = Path(state["out"])
    assert out == (tmp_path / "results" / "analyst_study").resolve()
    comparison = pd.read_csv(out / "comparison_key_metrics.csv")
    assert list(comparison.columns) == ["metric", "scenario", "base_mean", "diff", "lo", "hi", "n", "beyond chance"]
    assert set(comparison["scenario"]) == {"expand_moud", "reduce_isolation", "naloxone"}
    assert set(comparison["metric"]) == {
        "oud_prevalence",
        "treatment_coverage",
        "overdose_death_rate",
        "mean_loneliness",
    }
    assert (comparison["n"] == 6).all() and (comparison["lo"] <= comparison["diff"]).all()
    rows = comparison.set_index(["metric", "scenario"])
    # The directions the text reads, beyond chance: more capacity, more people in treatment; peer
    # support, less loneliness.
    assert rows.loc[("treatment_coverage", "expand_moud"), "lo"] > 0.05
    assert rows.loc[("mean_loneliness", "reduce_isolation"), "hi"] < 0
    assert bool(rows.loc[("treatment_coverage", "expand_moud"), "beyond chance"])
    shown_table = next(t for t in tables if "beyond chance" in t[0])
    assert shown_table[0][-6:] == ["base_mean", "diff", "lo", "hi", "n", "beyond chance"]
    assert sum(row[-1] in ("True", "False") for row in shown_table) == 12
    # The sentence for expand_moud says the table's difference (to three figures), beyond chance.
    line = r"expand_moud\s+People with OUD on medication.*?\+([\d.]+) percentage points.*?beyond chance"
    said = re.search(line, shown)
    assert said, shown
    coverage = 100 * rows.loc[("treatment_coverage", "expand_moud"), "diff"]
    assert float(said.group(1)) == pytest.approx(coverage, rel=0.006)

    # The plot, shown and saved.
    assert len(figures(cells)) == 1 and figures(cells)[0].startswith(PNG)
    assert (out / "treatment_coverage.png").read_bytes().startswith(PNG)

    # The custom scenario: written, accepted by `oudsim validate` (in the notebook and here), run.
    custom = Path(state["custom"])
    assert "oudsim validate scarce_slots_peer_support.toml: exit 0" in shown
    assert "\x1b[" not in shown  # the command's output as plain text
    checked = CliRunner().invoke(app, ["validate", str(custom)])
    assert checked.exit_code == 0, checked.output
    scenario = load_scenario(custom)
    assert scenario.extends == "baseline" and scenario.overrides == {"treatment.capacity_per_100k": 400}
    assert [i.kind for i in scenario.interventions] == ["reduce_isolation"]
    # Scarce slots: fewer people with OUD in treatment and more waiting, beyond chance.
    mine = body(tables[-1])
    assert tables[-1][0][1:] == ["base_mean", "scenario_mean", "diff", "lo", "hi", "n"]
    assert list(mine) == ["oud_prevalence", "treatment_coverage", "overdose_death_rate", "mean_loneliness", "waitlist"]
    assert float(mine["treatment_coverage"][4]) < 0 and float(mine["waitlist"][3]) > 0
    assert state["mine_n"] == 6
