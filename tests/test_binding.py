"""Kernel arguments by name (model.binding), bounds derived from the hazards (rates.upper_bound), the
metric slots and the processes' declarations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from oudsim.model import metrics
from oudsim.model.binding import BindingError, bind, parameter_names
from oudsim.model.jit import njit
from oudsim.model.oud_model import FLOWS, STREAMS, OUDModel
from oudsim.model.processes import SCHEDULE, overdose, treatment, use
from oudsim.model.rates import upper_bound


@njit
def _kernel(rate, stage, table, week):
    return rate + stage.size + table.size + week


def test_bind_orders_by_the_kernels_own_names():
    stage = np.zeros(3, np.int8)
    args = bind(_kernel, {"stage": stage, "rate": 9.0}, rate=0.5)  # own names win over shared ones
    assert args[0] == 0.5 and args[1] is stage and len(args) == 2


def test_bind_refuses_missing_unknown_and_misplaced_names():
    with pytest.raises(BindingError, match=r"_kernel needs 'stage'"):
        bind(_kernel, {}, rate=1.0)
    with pytest.raises(BindingError, match=r"_kernel takes no argument named 'rte'"):
        bind(_kernel, {"stage": np.zeros(1)}, rte=1.0)

    @njit
    def _week_first(week, rate):
        return week + rate

    with pytest.raises(BindingError, match="must come last"):
        bind(_week_first, {}, rate=1.0)


def test_streams_and_flows_follow_the_schedule():
    assert STREAMS == tuple(s for p in SCHEDULE for s in p.STREAMS)
    assert len(set(STREAMS)) == len(STREAMS) and len(set(FLOWS)) == len(FLOWS)
    m = OUDModel(population=300, rng=2, burn_in_years=0)
    assert list(m.streams) == list(STREAMS) and set(m.flows) == set(FLOWS)


def test_every_metric_slot_is_written():
    m = OUDModel(population=400, rng=3, burn_in_years=0.5)
    out = metrics._arguments(m)[0]
    out.fill(np.nan)
    values = metrics.compute(m)
    economic = [metrics.Slot[name].value for name in metrics.ECONOMIC_NAMES]
    kernel = np.delete(out, economic)  # the compiled pass fills all but the economics (model.accounting)
    assert not np.isnan(kernel).any()
    assert set(values) == set(metrics.METRIC_NAMES) and all(np.isfinite(list(values.values())))
    assert [metrics.Slot[name].value for name in metrics.METRIC_NAMES] == list(range(len(metrics.METRIC_NAMES)))
    assert values["oud_prevalence"] == pytest.approx(np.isin(m.population.stage, (2, 3)).mean())


HAZARDS = [
    (use.relapse_hazard, {"relapse": 0.7, "l_craving": 0.9, "l_mh": -0.3, "l_event": 0.4, "l_lonely": 0.2}),
    (use.progression_hazard, {"progression": 0.5, "l_dysregulation": 0.3, "l_risk": -0.2, "l_craving": 1.1}),
    (treatment.dropout_hazard, {"dropout": 0.6, "l_stigma": 0.5, "l_untreated_mh": 0.3, "l_integrated": -0.4}),
    (overdose.overdose_log_hazard, {"base": -3.0, "stage_ratio": 0.0, "l_tolerance": 1.6}),
]


@pytest.mark.parametrize("hazard,given", HAZARDS, ids=lambda x: getattr(x, "__name__", ""))
def test_bounds_are_the_hazards_largest_value(hazard, given):
    """upper_bound is reached at some corner of the factors and never exceeded inside them."""
    bound = upper_bound(hazard, **given)
    names = parameter_names(hazard)
    factors = [n for n in names if n not in given]
    rng = np.random.default_rng(0)
    corner_values = []
    for corner in itertools.product((0.0, 1.0), repeat=len(factors)):
        value = hazard.py_func(*[given.get(n, dict(zip(factors, corner, strict=True)).get(n)) for n in names])
        corner_values.append(value)
    assert max(corner_values) == pytest.approx(bound, rel=1e-12)
    for _ in range(200):
        inside = dict(zip(factors, rng.random(len(factors)), strict=True))
        assert hazard.py_func(*[given.get(n, inside.get(n)) for n in names]) <= bound * (1 + 1e-12)


def test_upper_bound_refuses_unknown_terms_and_missing_ratios():
    with pytest.raises(TypeError, match="no term"):
        upper_bound(use.relapse_hazard, relapse=1.0, l_craving=0, l_mh=0, l_event=0, l_lonely=0, l_nope=1)
    with pytest.raises(TypeError, match="l_lonely"):
        upper_bound(use.relapse_hazard, relapse=1.0, l_craving=0, l_mh=0, l_event=0)
