"""Tests of the order-statistics kernel: every method against numpy, and against each other."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgemon.features import _order
from edgemon.features._order import COMPILED, METHODS, order_statistics
from edgemon.features._workspace import Workspace

QUANTILE_KEYS = ("q25", "median", "q75")

# The compiled method's cases are skipped without the C kernel, and
# test_order_compiled_kernel_built fails instead, once, with the fix.
METHOD_PARAMS = [
    pytest.param(method, marks=pytest.mark.skipif(not COMPILED, reason="C kernel not built"))
    if method == "compiled"
    else method
    for method in METHODS
]
AVAILABLE_METHODS = [method for method in METHODS if method != "compiled" or COMPILED]


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _cauchy(rng, shape):
    return rng.standard_cauchy(shape)


def _few_levels(rng, shape):
    # A coarse converter: many exact ties.
    return rng.integers(-3, 4, shape).astype(np.float64)


def _constant(rng, shape):
    return np.full(shape, 2.5)


def _one_outlier(rng, shape):
    values = rng.standard_normal(shape)
    values[:, -1] = 1e300
    return values


def _subnormal(rng, shape):
    return rng.standard_normal(shape) * 1e-310


def _signed_zeros(rng, shape):
    return np.where(rng.random(shape) < 0.5, -0.0, 0.0)


KINDS = [_normal, _cauchy, _few_levels, _constant, _one_outlier, _subnormal, _signed_zeros]


def reference(values: np.ndarray) -> dict[str, np.ndarray]:
    q25, median, q75 = np.percentile(values, [25, 50, 75], axis=1)
    return {
        "q25": q25,
        "median": median,
        "q75": q75,
        "min": values.min(axis=1),
        "max": values.max(axis=1),
    }


@pytest.mark.parametrize("method", METHOD_PARAMS)
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__.strip("_"))
@pytest.mark.parametrize("n_rows", [1, 3, 40])
def test_order_matches_numpy(method, kind, n_rows):
    rng = np.random.default_rng(7)
    samples = kind(rng, (n_rows, 2048))
    amplitudes = np.abs(kind(rng, (n_rows, 1025)))

    result = order_statistics([(samples, False), (amplitudes, True)], Workspace(), method)

    for slot, values in enumerate((samples, amplitudes)):
        expected = reference(values)
        scale = np.abs(values).max()
        for key in QUANTILE_KEYS:
            # numpy interpolates with another formula, so allow its rounding.
            np.testing.assert_allclose(
                result[key][slot], expected[key], rtol=1e-14, atol=1e-14 * scale, err_msg=key
            )
        np.testing.assert_array_equal(result["min"][slot], expected["min"])
        np.testing.assert_array_equal(result["max"][slot], expected["max"])


@pytest.mark.parametrize("method", METHOD_PARAMS)
def test_order_nonfinite_rows(method):
    rng = np.random.default_rng(3)
    samples = rng.standard_normal((40, 2048))
    samples[3, 7] = np.nan
    samples[5, 9] = np.inf
    samples[6, 1] = -np.inf
    amplitudes = np.abs(rng.standard_normal((40, 1025)))

    result = order_statistics([(samples, False), (amplitudes, True)], Workspace(), method)

    finite = np.setdiff1d(np.arange(40), [3, 5, 6])
    expected = reference(samples[finite])
    np.testing.assert_allclose(result["median"][0][finite], expected["median"], rtol=1e-14)
    np.testing.assert_allclose(result["q75"][0][finite], expected["q75"], rtol=1e-14)
    assert np.isnan(result["max"][0][3]) or np.isnan(result["min"][0][3])
    assert result["max"][0][5] == np.inf
    assert result["min"][0][6] == -np.inf
    np.testing.assert_array_equal(result["median"][1], reference(amplitudes)["median"])


def test_order_rejects_unknown_method():
    values = np.zeros((1, 16))
    with pytest.raises(
        ValueError, match="method must be one of sort, partition, histogram, compiled"
    ):
        order_statistics([(values, False)], Workspace(), "quickselect")


def test_order_compiled_kernel_built():
    # The test environment must build the C kernel, or the "compiled" cases
    # below would not run; a user's install may go without it.
    assert COMPILED, (
        "edgemon.features._select was not built: install gcc and the Python headers "
        "(apt-get install gcc python3-dev) and reinstall with pip install -e ."
    )


def test_order_compiled_missing_message(monkeypatch):
    monkeypatch.setattr(_order, "COMPILED", False)
    with pytest.raises(ValueError, match=r"apt-get install gcc python3-dev"):
        order_statistics([(np.zeros((1, 16)), False)], Workspace(), "compiled")


@pytest.mark.skipif(not COMPILED, reason="the C kernel was not built")
@pytest.mark.parametrize(
    ("values", "positions", "out", "message"),
    [
        (np.zeros((2, 8), np.float32), [0, 7], (2, 2), "values must be a C-contiguous 2-D array"),
        (np.zeros(8), [0, 7], (2, 2), "values must be a C-contiguous 2-D array"),
        (np.zeros((2, 8)), [7, 0], (2, 2), "positions must ascend strictly"),
        (np.zeros((2, 8)), [0, 8], (2, 2), "positions must ascend strictly within"),
        (np.zeros((2, 8)), [0, 7], (2, 3), r"out must have shape \(2, 2\)"),
        (np.zeros((2, 8)), list(range(8)) * 3, (2, 24), "1 to 16 positions"),
    ],
)
def test_compiled_kernel_checks_arguments(values, positions, out, message):
    with pytest.raises(ValueError, match=message):
        _order._select.select_rows(values, np.array(positions, dtype=np.int64), np.empty(out))


@pytest.mark.skipif(not COMPILED, reason="the C kernel was not built")
def test_compiled_kernel_rejects_int32_positions():
    with pytest.raises(ValueError, match="positions must be a C-contiguous 1-D array of int64"):
        _order._select.select_rows(
            np.zeros((1, 8)), np.array([0, 7], dtype=np.int32), np.empty((1, 2))
        )


def test_order_reuses_workspace():
    # A smaller batch after a larger one gets leading slices of the scratch arrays.
    rng = np.random.default_rng(11)
    workspace = Workspace()
    large = rng.standard_normal((40, 512))
    small = rng.standard_normal((20, 512))
    order_statistics([(large, False)], workspace, "histogram")
    result = order_statistics([(small, False)], workspace, "histogram")
    np.testing.assert_allclose(result["median"][0], np.median(small, axis=1), rtol=1e-14)


rows_strategy = st.integers(min_value=1, max_value=20).flatmap(
    lambda n_rows: st.sampled_from([16, 17, 100, 257]).flatmap(
        lambda n_values: arrays(
            np.float64,
            (n_rows, n_values),
            elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
            | st.sampled_from([0.0, -0.0, 1.0, 1e-300]),
        )
    )
)


@settings(max_examples=80, deadline=None)
@given(values=rows_strategy)
def test_order_methods_agree(values):
    # Each method selects the same elements and interpolates alike, so the
    # results agree to the bit.
    amplitudes = np.abs(values[:, : max(16, values.shape[1] // 2)])
    sets = [(values, False), (np.ascontiguousarray(amplitudes), True)]
    results = [order_statistics(sets, Workspace(), method) for method in AVAILABLE_METHODS]
    for key in (*QUANTILE_KEYS, "min", "max"):
        for other in results[1:]:
            np.testing.assert_array_equal(other[key], results[0][key], err_msg=key)
