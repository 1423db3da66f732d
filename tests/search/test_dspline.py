"""d-Spline fit (docs/spec/dsice.md#d-spline) against Example A and the Example B fit."""
import numpy as np
import pytest

from search import dspline

TOL = 1e-4


def test_marker_layout():
    assert [dspline.n_markers(S) for S in (5, 10, 11)] == [17, 32, 35]
    assert [dspline.q_of(s) for s in range(5)] == [2, 5, 8, 11, 14]
    assert [dspline.near(q, 5) for q in range(17)] == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3,
                                                        4, 4, 4, 4]


def test_example_a_fit():
    fit = dspline.fit(5, [(0, 4.0), (2, 1.0), (4, 3.0)])
    expected = [5.398695, 4.699176, 3.999658, 3.300139, 2.634853, 2.038032, 1.543909,
                1.186716, 1.000685, 1.020049, 1.210576, 1.538032, 1.968187, 2.466806,
                2.999658, 3.532509, 4.065361]
    np.testing.assert_allclose(fit.f, expected, atol=TOL, rtol=0)
    np.testing.assert_allclose(fit.sample_values, [3.9997, 2.0380, 1.0007, 1.5380, 2.9997],
                               atol=TOL, rtol=0)
    assert int(np.argmin(fit.f)) == 8
    assert fit.estimate() == 2


@pytest.mark.parametrize("alpha, samples", [
    (0.001, [4.0, 2.0377, 1.0, 1.5377, 3.0]),
    (1, [3.9671, 2.0724, 1.0658, 1.5724, 2.9671]),
    (10, [3.3298, 2.7446, 2.3405, 2.2446, 2.3298]),
    (10000, [3.1667, 2.9167, 2.6667, 2.4167, 2.1667]),
])
def test_example_a_other_alphas(alpha, samples):
    fit = dspline.fit(5, [(0, 4.0), (2, 1.0), (4, 3.0)], alpha=alpha)
    np.testing.assert_allclose(fit.sample_values, samples, atol=TOL, rtol=0)


def test_linear_extension_beyond_the_ends():
    f = dspline.fit(5, [(0, 4.0), (2, 1.0), (4, 3.0)]).f
    assert f[0] - f[1] == pytest.approx(f[1] - f[2], abs=1e-9)
    assert f[16] - f[15] == pytest.approx(f[15] - f[14], abs=1e-9)


def test_duplicate_rows_act_as_their_mean():
    fit = dspline.fit(5, [(0, 4.0), (2, 1.0), (2, 2.0), (4, 3.0)])
    assert fit.sample_values[2] == pytest.approx(1.5003, abs=TOL)


def test_zero_and_one_point():
    assert dspline.fit(5, []) is None
    const = dspline.fit(5, [(3, 2.5)])
    np.testing.assert_allclose(const.f, 2.5)
    with pytest.raises(ValueError, match="outside"):
        dspline.fit(5, [(5, 1.0)])


def test_zero_alpha_is_replaced_by_a_tiny_penalty():
    fit = dspline.fit(5, [(0, 4.0), (2, 1.0), (4, 3.0)], alpha=0)
    np.testing.assert_allclose(fit.sample_values[[0, 2, 4]], [4.0, 1.0, 3.0], atol=TOL)


def test_example_b_first_fit_and_priority():
    y = [9.0, 7.2, 5.9, 4.9, 4.3, 3.9, 3.6, 3.5, 3.8, 4.6, 6.0]
    fit = dspline.fit(11, [(s, y[s]) for s in (0, 3, 6, 10)])
    np.testing.assert_allclose(
        fit.sample_values,
        [9.0, 7.4667, 6.0584, 4.9, 4.0976, 3.6657, 3.6, 3.8834, 4.4382, 5.1738, 6.0],
        atol=TOL, rtol=0)
    np.testing.assert_allclose(
        fit.curvature,
        [0, .0139, .0278, .0417, .0412, .0407, .0402, .0302, .0201, .0101, 0], atol=TOL, rtol=0)
    assert int(np.argmin(fit.f)) == 19
    assert fit.f[19] == pytest.approx(3.5815, abs=TOL)
    assert fit.estimate() == 6
    assert (fit.ymin, fit.ymax) == (3.6, 9.0)
    zones = fit.zones()
    assert all(zones[s] == "measured" for s in (1, 2, 4, 5, 7, 8, 9))
    measured = {0, 3, 6, 10}
    assert [s for s in fit.priority() if s not in measured] == [4, 5, 7, 2, 8, 1, 9]
    fit2 = dspline.fit(11, [(s, y[s]) for s in (0, 3, 4, 6, 10)])
    assert fit2.estimate() == 6
    assert [s for s in fit2.priority() if s not in measured | {4}] == [2, 7, 5, 8, 1, 9]


def test_maximize_swaps_the_zones():
    # A bump between samples 1 and 3: the fit over-shoots above every value at sample 2.
    data = [(0, 1.0), (1, 3.0), (3, 3.2), (4, 1.5)]
    fit = dspline.fit(5, data, alpha=0.001)
    assert fit.zones()[2] == "higher"
    assert fit.estimate(minimize=False) == 2
    assert fit.priority(minimize=False)[0] == 2
    mirrored = dspline.fit(5, [(s, -v) for s, v in data], alpha=0.001)
    assert mirrored.zones()[2] == "lower"
    assert mirrored.priority(minimize=True) == fit.priority(minimize=False)


@pytest.mark.parametrize("alpha", [0.001, 0.1, 1.0, 10.0, 10000.0])
@pytest.mark.parametrize("S", [2, 3, 5, 11, 30])
def test_banded_solution_equals_the_dense_least_squares_solution(S, alpha):
    """The O(S) banded solve gives the dense lstsq solution of the stacked system (the solver
    used before) to numerical precision, repeated samples included."""
    rng = np.random.default_rng(S * 1000 + int(alpha * 10))
    for _ in range(5):
        samples = sorted(rng.choice(S, int(rng.integers(2, S + 1)), replace=False).tolist())
        obs = [(s, float(rng.normal())) for s in samples] + [(samples[0], 1.0)]
        markers = np.array([dspline.q_of(s) for s, _ in obs])
        dense = dspline._dense_solve(dspline.n_markers(S), markers,
                                     np.array([v for _, v in obs]), alpha)
        banded = dspline.fit(S, obs, alpha).f
        # Relative 1e-7: the condition number of the system grows like (S / alpha) ** 2.
        assert np.max(np.abs(banded - dense)) <= 1e-7 * max(1.0, np.max(np.abs(dense)))


def test_a_long_line_is_fitted_by_the_banded_solver():
    """1,000 samples (3,002 markers): the fit is the smooth curve through the data."""
    S = 1000
    obs = [(s, (s - 600) ** 2 / 1e4) for s in range(0, S, 37)]
    fit = dspline.fit(S, obs, 0.1)
    assert fit is not None and abs(fit.estimate() - 600) <= 2
    assert np.allclose(fit.sample_values[[s for s, _ in obs]], [v for _, v in obs], atol=1e-3)
