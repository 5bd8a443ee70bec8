# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # An analyst's scenario study
#
# A study in five steps: look at the shipped scenarios, run paired replicates of a few, compare each
# with the baseline with 95% intervals, plot them, and write a scenario of your own as a file that the
# command line accepts too. At the sizes here it takes about a minute on two cores; for results to
# report, raise the population and the replicates (the [analyst's workflow](../analyst.md) shows a
# session, and [validation](../validation.md) the shipped scenarios at 50,000 people).
#
# The same steps from the command line are `oudsim scenarios`, `oudsim run`, `oudsim compare` and
# `oudsim report`; this notebook calls the functions behind them.

# %%
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from oudsim.model.experiments import compare, final_year_means, run_replicates, summarise
from oudsim.model.metrics import BY_NAME
from oudsim.scenarios import list_scenarios, load_scenario

OUT = Path("results") / "analyst_study"  # relative to where the notebook runs
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. The scenarios
#
# Each shipped scenario is a TOML file in the package's `scenarios/` folder: parameters that differ
# from the calibrated defaults, and interventions that start (and ramp in) after the burn-in.

# %%
shipped = pd.DataFrame(
    [
        {
            "scenario": s.name,
            "interventions": ", ".join(i.kind for i in s.interventions) or "none",
            "description": s.description,
        }
        for s in list_scenarios()
    ]
).set_index("scenario")
shipped

# %% [markdown]
# ## 2. Paired replicates
#
# We study three interventions against the baseline: more medication for OUD (`expand_moud`), peer
# support against isolation (`reduce_isolation`) and naloxone (`naloxone`). Replicate *i* of every
# scenario runs with the same seed (child *i* of `SeedSequence(seed)`), so the scenarios are paired:
# common random numbers make their differences far less noisy than the scenarios themselves. The
# result is one row per scenario, replicate and week.

# %%
STUDIED = ["baseline", "expand_moud", "reduce_isolation", "naloxone"]
runs = run_replicates(STUDIED, replicates=6, years=5, population=8_000, seed=2026, workers=2)
print(f"{len(runs):,} rows: {runs['scenario'].nunique()} scenarios x {runs['replicate'].nunique()} replicates")
runs[["scenario", "replicate", "seed", "year", "oud_prevalence", "treatment_coverage"]].head()

# %% [markdown]
# `summarise` gives each scenario's final-year mean with the 2.5th and 97.5th percentiles across
# replicates (what `oudsim run` prints and writes as `summary.csv`):

# %%
summary = summarise(runs)
summary[summary["metric"] == "treatment_coverage"].set_index("scenario")[["mean", "lo", "hi", "n"]]

# %% [markdown]
# ## 3. Compare with intervals
#
# `compare` pairs each scenario's replicates with the baseline's: `diff` is the mean of the paired
# differences over the final year and `lo`–`hi` its 95% t-interval (what `oudsim compare` prints and
# writes as `comparison.csv`). An interval that excludes zero is an effect beyond chance at this size.

# %%
finals = final_year_means(runs)
comparison = compare(finals, "baseline", STUDIED[1:])
KEY = ["oud_prevalence", "treatment_coverage", "overdose_death_rate", "mean_loneliness"]
table = comparison[comparison["metric"].isin(KEY)].copy()
table["beyond chance"] = (table["lo"] > 0) | (table["hi"] < 0)
table = table.set_index(["metric", "scenario"]).sort_index()[["base_mean", "diff", "lo", "hi", "n", "beyond chance"]]
table.to_csv(OUT / "comparison_key_metrics.csv")
table

# %% [markdown]
# Reading it: more treatment capacity raises the share of people with OUD in treatment, and peer
# support lowers loneliness, each well beyond chance. Small effects can be beyond chance too, and
# need a reason before they are reported (naloxone keeps people alive, so a few more live with OUD).
# The effects on deaths need more people or replicates to tell from chance: a death is a rare event
# in 8,000 people. In words, metric by metric, with their units:

# %%
for r in comparison[comparison["metric"].isin(KEY)].itertuples():
    m = BY_NAME[r.metric]
    scale, unit = (100, "percentage points") if m.unit.startswith("share") else (1, m.unit)
    verdict = "beyond chance" if r.lo > 0 or r.hi < 0 else "within chance"
    print(
        f"{r.scenario:<17} {m.label:<45.45} {scale * r.diff:+9.3g} {unit} "
        f"(95% interval {scale * r.lo:+.3g} to {scale * r.hi:+.3g}): {verdict}"
    )

# %% [markdown]
# ## 4. Plot
#
# Left: each scenario's mean over time with the band holding 95% of its replicates. Right: the paired
# difference from the baseline in the final year, with its 95% interval.

# %%
metric = "treatment_coverage"
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
for name, runs_of in runs.groupby("scenario", sort=False):
    by_week = runs_of.groupby("year")[metric]
    mean, lo, hi = by_week.mean(), by_week.quantile(0.025), by_week.quantile(0.975)
    left.plot(mean.index, 100 * mean, label=name)
    left.fill_between(mean.index, 100 * lo, 100 * hi, alpha=0.15)
left.set_xlabel("years after burn-in")
left.set_ylabel("% of people with OUD")
left.set_title(BY_NAME[metric].label)
left.legend(fontsize=8)

rows = comparison[comparison["metric"] == metric]
y = range(len(rows))
right.errorbar(
    100 * rows["diff"],
    list(y),
    xerr=[100 * (rows["diff"] - rows["lo"]), 100 * (rows["hi"] - rows["diff"])],
    fmt="o",
    capsize=4,
)
right.axvline(0, color="grey", lw=1)
right.set_yticks(list(y), rows["scenario"])
right.set_xlabel("difference from baseline (percentage points)")
right.set_title("Paired difference, final year, 95% interval")
fig.tight_layout()
fig.savefig(OUT / "treatment_coverage.png", dpi=100)
plt.show()

# %% [markdown]
# ## 5. A scenario of your own
#
# A scenario file extends a shipped one and changes parameters (by dotted name or short alias) and
# interventions. This one asks: what if treatment slots are scarce (400 per 100,000 instead of the
# baseline's) and peer support starts at once? We write it, check it as `oudsim validate` does, and
# run it paired with the baseline.

# %%
custom = OUT / "scarce_slots_peer_support.toml"
custom.write_text(
    """name = "scarce_slots_peer_support"
description = "Scarce treatment slots, with peer support from year 0"
extends = "baseline"

[parameters]
"treatment.capacity_per_100k" = 400

[[interventions]]
kind = "reduce_isolation"
start_year = 0
ramp_years = 1
amount = 1.5
"""
)
command = [sys.executable, "-m", "oudsim.model.cli", "validate", str(custom)]
plain = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}  # Jupyter forces colour
checked = subprocess.run(command, capture_output=True, text=True, env={**plain, "NO_COLOR": "1", "TERM": "dumb"})
print(f"oudsim validate {custom.name}: exit {checked.returncode}")
print(checked.stdout.strip() or checked.stderr.strip())

# %%
scenario = load_scenario(custom)
print(scenario.name, "-", scenario.description)
print("changes:", scenario.overrides, "| interventions:", [i.kind for i in scenario.interventions])
mine = run_replicates(["baseline", custom], replicates=6, years=5, population=8_000, seed=2026, workers=2)
mine_vs_base = compare(final_year_means(mine), "baseline", [scenario.name]).set_index("metric")
mine_vs_base.loc[KEY + ["waitlist"], ["base_mean", "scenario_mean", "diff", "lo", "hi", "n"]]

# %% [markdown]
# The baseline replicates here are the same runs as in step 2 (same seed, same size), so any scenario
# you add is paired with all the others. From the command line, the file works wherever a scenario
# name does:
#
# ```
# oudsim validate results/analyst_study/scarce_slots_peer_support.toml
# oudsim compare baseline results/analyst_study/scarce_slots_peer_support.toml -n 6 -y 5 -p 8000 --seed 2026
# ```
#
# Where next: costs, QALYs and cost-effectiveness of the same comparison ([economics](../economics.md)),
# parameter uncertainty (`oudsim calibrate --posterior`, `oudsim psa`), and sweeps over a grid of
# values (`oudsim sweep`).
