# Two entry points (see README): `make run` and `make test`. Both create .venv with a Python >= 3.12
# found on PATH or under pyenv, install the project into it, then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# The first interpreter that really runs and is >= 3.12 (pyenv shims for other versions fail the check).
define find_python
for c in "$$PYTHON" python3.13 python3.12 python3 python \
         $$(ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV); do \
  [ -n "$$c" ] || continue; \
  if "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then echo "$$c"; exit 0; fi; \
done; \
echo "oudsim needs Python 3.12 or newer and found none. Install it (Debian/Ubuntu: apt-get install python3.12 python3.12-venv; or pyenv install 3.12) or set PYTHON=/path/to/python3.12, then run this again." >&2; exit 1
endef

.PHONY: run test test-fast setup compile browser-deps docs clean

$(STAMP): pyproject.toml
	@py=$$($(find_python)) || exit 1; \
	 if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	   echo "Creating $(VENV) with $$py"; rm -rf $(VENV); "$$py" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP)

# Browser tests drive Debian's Chromium (never a downloaded browser).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium: run 'sudo apt-get install chromium' (or set OUDSIM_SKIP_BROWSER=1 to skip them)." >&2; \
	  fi; \
	fi

# Compile the processes once (numba caches them on disk) so no test or worker waits on it.
compile: $(STAMP)
	@$(PY) -m oudsim.model.jit

run: compile
	$(VENV)/bin/oudsim run baseline --out results/baseline --overwrite  # again and again: it replaces its own results

test: compile browser-deps
	$(PY) -m pytest -n 2 -q

# The edit loop: everything but the slow statistical tests and the browser tests (CI's `make test`
# runs those too).
test-fast: compile
	$(PY) -m pytest -n 2 -q -m "not slow and not browser"

# The documentation site (mkdocs.yml): built offline into site/, with --strict so that a broken link, a
# missing page or an unreadable docstring fails (tests/test_docs_site.py builds it the same way in CI).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site
	@echo "Open site/index.html, or serve it: $(PY) -m http.server -d site"

# Compiled kernels are cached per version of the source (model/jit.py, cache_dir): drop them all.
clean:
	-@[ -x $(PY) ] && $(PY) -c "import shutil; from oudsim.model.jit import cache_dir; shutil.rmtree(cache_dir().parent, ignore_errors=True)"
	rm -rf $(VENV) .pytest_cache site build/api-src
