"""The fused image chain (scatter, glare, display curve included) equals the stage-by-stage pure
functions; the noise draws are Poisson."""

import math

import numpy as np
import pytest

from fluorosim.render import image_chain as chain
from fluorosim.render.exposure import Collimation, Exposure
from tests.render.test_image_chain import SIZE, geometry


def anatomy_like_line_integrals(seed: int = 0) -> np.ndarray:
    """Smooth body, a dense block ("bone") and a thin metal line: low and high photon counts."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    li = 2.0 + 2.5 * np.exp(-(((x - 128) / 90.0) ** 2)) + 0.2 * np.sin(y / 9.0)
    li[90:150, 70:190] += 2.0
    li[:, 140:143] += 9.0  # metal: a handful of photons or none
    li += np.random.default_rng(seed).normal(0.0, 0.01, li.shape)
    return li.astype(np.float32)


@pytest.mark.parametrize(
    "settings",
    [
        chain.ChainSettings(detector_kind="ii"),
        chain.ChainSettings(
            detector_kind="ii", invert=True, collimation=Collimation(iris_diameter_mm=150.0)
        ),
        chain.ChainSettings(detector_kind="fpd"),
        chain.ChainSettings(detector_kind="ii", scatter=None, glare_fraction=0.0, display_gamma=1),
        chain.ChainSettings(
            detector_kind="fpd",
            shutter_masking=False,
            collimation=Collimation(shutter_u_mm=(-70.0, 60.0)),
            glare_fraction=0.1,
        ),
    ],
)
@pytest.mark.parametrize("exposure", [Exposure(75.0, 2.5), Exposure(75.0, 0.2, "low_dose", 4.0)])
def test_fused_chain_equals_the_stage_by_stage_chain(settings, exposure):
    li = anatomy_like_line_integrals()
    fused = chain.apply_image_chain(li, geometry(), settings, exposure, np.random.default_rng(7))
    staged = chain.apply_image_chain(
        li, geometry(), settings, exposure, np.random.default_rng(7), fused=False
    )
    difference = np.abs(fused.astype(int) - staged.astype(int))
    # float32 vs float64 rounding only: at most one grey level, on almost no pixels
    assert difference.max() <= 1
    assert np.count_nonzero(difference) <= 0.002 * difference.size
    # and it is a real image: the metal line is darker than the body beside it
    assert fused[60:80, 140:143].mean() < fused[60:80, 100:120].mean() or settings.invert


def test_fused_chain_draws_fresh_noise_per_frame():
    li = anatomy_like_line_integrals()
    rng = np.random.default_rng(3)
    first = chain.apply_image_chain(li, geometry(), None, Exposure(75.0, 0.5), rng)
    second = chain.apply_image_chain(li, geometry(), None, Exposure(75.0, 0.5), rng)
    assert np.count_nonzero(first != second) > 0.1 * first.size


def central_moments(counts: np.ndarray) -> tuple[float, float, float]:
    mean = counts.mean()
    return float(mean), float(counts.var()), float(np.mean((counts - mean) ** 3))


@pytest.mark.parametrize("expected", [20.0, 60.0, 400.0])  # the normal-approximation regime
def test_approximate_counts_match_poisson_mean_variance_and_skewness(expected):
    n = 400_000
    counts = chain.add_quantum_noise(np.full(n, expected), np.random.default_rng(11))
    exact = np.random.default_rng(12).poisson(expected, n).astype(float)
    mean, var, third = central_moments(counts)
    exact_mean, exact_var, exact_third = central_moments(exact)
    assert mean == pytest.approx(expected, rel=2e-3) and exact_mean == pytest.approx(
        expected, rel=2e-3
    )
    assert var == pytest.approx(expected, rel=0.01)
    assert var == pytest.approx(exact_var, rel=0.015)
    # Poisson's third central moment is λ; a plain normal would give 0
    assert third == pytest.approx(expected, rel=0.2)
    assert third == pytest.approx(exact_third, rel=0.3)


@pytest.mark.parametrize("expected", [0.5, 3.0, 12.0])  # the exact-inversion regime
def test_low_counts_follow_the_poisson_probabilities(expected):
    n = 200_000
    counts = chain.add_quantum_noise(np.full(n, expected), np.random.default_rng(5))
    assert np.all(counts == np.round(counts))
    observed = np.bincount(counts.astype(int)) / n
    for k in range(int(expected + 3 * math.sqrt(expected)) + 1):
        pmf = math.exp(-expected) * expected**k / math.factorial(k)
        assert observed[k] == pytest.approx(pmf, abs=4 * math.sqrt(pmf / n) + 1e-4)


def test_ziggurat_deviates_are_standard_normal():
    z = chain.standard_normal_deviates(np.random.default_rng(1), (501, 401))
    assert z.shape == (501, 401) and z.dtype == np.float32
    assert abs(z.mean()) < 0.01
    assert z.var() == pytest.approx(1.0, rel=0.01)
    assert np.mean(z.astype(float) ** 4) == pytest.approx(3.0, rel=0.03)  # normal kurtosis
    assert np.mean(np.abs(z) < 1.0) == pytest.approx(0.6827, abs=0.004)


def test_ziggurat_deviates_follow_the_normal_cdf_into_the_tails():
    """Every layer, the wedges and the tail beyond r = 3.44 are drawn in the right proportions."""
    z = chain.standard_normal_deviates(np.random.default_rng(5), (2000, 1000)).astype(float).ravel()
    edges = np.linspace(-4.0, 4.0, 81)
    counts, _ = np.histogram(z, bins=edges)
    cdf = np.array([0.5 * math.erfc(-e / math.sqrt(2.0)) for e in edges])
    expected = z.size * np.diff(cdf)
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 80 + 4 * math.sqrt(2 * 80)  # 80 bins: mean 80, sd 12.6
    for k, tail in ((3.0, 2.6998e-3), (3.5, 4.6525e-4), (4.0, 6.3342e-5)):
        observed = np.count_nonzero(np.abs(z) > k)
        assert abs(observed - tail * z.size) < 4 * math.sqrt(tail * z.size)  # Poisson, 4 sd
    assert abs(np.corrcoef(np.abs(z[:-1]), np.abs(z[1:]))[0, 1]) < 3e-3  # successive: independent


def test_deviates_depend_only_on_the_generator_state():
    first = chain.standard_normal_deviates(np.random.default_rng(9), (64, 64))
    again = chain.standard_normal_deviates(np.random.default_rng(9), (64, 64))
    np.testing.assert_array_equal(first, again)
    rng = np.random.default_rng(9)
    chain.standard_normal_deviates(rng, (64, 64))
    assert not np.array_equal(chain.standard_normal_deviates(rng, (64, 64)), first)


def test_settings_with_an_unhashable_collimation_still_render():
    shutters = chain.ChainSettings(
        detector_kind="fpd", collimation=Collimation(shutter_u_mm=[-60.0, 60.0])
    )
    li = anatomy_like_line_integrals()
    fused = chain.apply_image_chain(
        li, geometry(), shutters, Exposure(75.0, 2.5), np.random.default_rng(1)
    )
    staged = chain.apply_image_chain(
        li, geometry(), shutters, Exposure(75.0, 2.5), np.random.default_rng(1), fused=False
    )
    assert np.abs(fused.astype(int) - staged).max() <= 1
    assert fused[:, :40].max() == 0 and fused[:, 100:150].max() > 0  # shutters dark


def test_noise_pass_draws_the_stage_by_stage_deviates():
    """_noisy_signal's in-pass ziggurat gives the deviates standard_normal_deviates gives, so its
    counts are the per-pixel counts from those deviates (float32 rounding apart)."""
    rng_shape = (64, 96)
    size = rng_shape[0] * rng_shape[1]
    transmission = np.random.default_rng(2).uniform(1e-6, 1.0, rng_shape).astype(np.float32)
    exposed = np.zeros(rng_shape, bool)
    exposed[8:56, 10:90] = True
    scatter = np.full(rng_shape, 1e-4, np.float32)
    n0 = 5.0e4
    raw = np.random.default_rng(4).bit_generator.random_raw((size + 1) // 2 + 1)
    signal = chain._noisy_signal(
        transmission,
        exposed,
        scatter,
        raw[1:].view(np.uint32)[:size],
        np.uint64(raw[0]),
        chain._ZIGGURAT_X,
        chain._ZIGGURAT_F,
        n0,
    )
    z = chain.standard_normal_deviates(np.random.default_rng(4), rng_shape)
    expected = n0 * (scatter + transmission * exposed).astype(np.float64)
    pairs = zip(expected.ravel(), z.ravel(), strict=True)
    counts = np.array([chain._count_from_normal(e, float(d)) for e, d in pairs]).reshape(rng_shape)
    np.testing.assert_allclose(signal, counts / n0, rtol=1e-6, atol=1e-9)
    assert np.count_nonzero(expected < chain.POISSON_NORMAL_LIMIT) > 100  # both regimes ran


@pytest.mark.parametrize("size", [1, 2, 7, 17_156])
def test_window_percentiles_are_numpys(size):
    values = np.random.default_rng(size).normal(size=size)
    np.testing.assert_allclose(
        chain._percentiles(values, (5.0, 95.0)), np.percentile(values, (5.0, 95.0)), rtol=1e-12
    )


def test_grey_lookup_table_is_searchsorted():
    thresholds = chain.display_thresholds(-4.9, 0.26, 2.2)
    low_bits, shift, table, _ = chain._grey_lookup(thresholds)
    edges = (low_bits + (np.arange(table.size, dtype=np.int64) << shift)).astype(np.int32)
    reference = np.searchsorted(thresholds, edges.view(np.float32).astype(np.float64), "right")
    np.testing.assert_array_equal(table, reference)
