"""Compiled kernels are cached per version of the model's source (model.jit.cache_dir): numba's own
cache does not notice a change to a helper a kernel inlines from another file."""

from __future__ import annotations

from pathlib import Path

from oudsim.model import jit


def test_a_change_to_any_source_file_moves_the_cache(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "agents").mkdir()
    helper = tmp_path / "agents" / "states.py"
    helper.write_text("def is_using(stage):\n    return stage == 1\n")
    (tmp_path / "model" / "use.py").write_text("from agents.states import is_using\n")
    folders = [tmp_path / "model", tmp_path / "agents"]
    before = jit.source_digest(folders)
    assert jit.source_digest(folders) == before  # the same source, the same cache
    helper.write_text("def is_using(stage):\n    return stage == 2\n")  # only the inlined helper changes
    assert jit.source_digest(folders) != before


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OUDSIM_CACHE_DIR", str(tmp_path))
    where = jit.cache_dir()
    assert where.parent == tmp_path / "numba" and len(where.name) == 16
    # and the kernels of this run are cached under the source's own folder
    assert Path(jit.numba.config.CACHE_DIR).name == where.name
