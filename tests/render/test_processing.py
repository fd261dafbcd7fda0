"""The C-arm's digital processing: equalization and edge enhancement against analytic answers."""

import math

import numpy as np
import pytest

from fluorosim.models.materials import mu_per_mm
from fluorosim.render import image_chain as chain
from fluorosim.render.attenuation import effective_energy_kev
from fluorosim.render.exposure import Exposure
from fluorosim.render.processing import process, processing_plan
from tests.render.test_image_chain import SIZE, geometry

FLOOR = 1e-6
PIXEL_MM = 0.5


def whole_field(shape: tuple[int, int] = (512, 512)) -> np.ndarray:
    return np.ones(shape, dtype=bool)


def processed(signal, field, equalization=0.6, edge_gain=0.5, edge_mm=2.0):
    plan = processing_plan(
        field, PIXEL_MM, equalization, 20.0, edge_gain, edge_mm, signal.dtype.type
    )
    return process(signal, plan, FLOOR)


def equalize(signal, field, strength):
    return processed(signal, field, equalization=strength, edge_gain=0.0)


def enhance_edges(signal, field, gain, edge_mm):
    return processed(signal, field, equalization=0.0, edge_gain=gain, edge_mm=edge_mm)


def log_step(image: np.ndarray, left: slice, right: slice) -> float:
    return math.log(float(image[:, right].mean()) / float(image[:, left].mean()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_uniform_field_is_left_exactly_as_it_is(dtype):
    signal = np.full((256, 256), 0.03, dtype=dtype)
    out = processed(signal, whole_field((256, 256)))
    assert out.dtype == dtype
    np.testing.assert_allclose(out, signal, rtol=1e-5)


@pytest.mark.parametrize("strength", [0.3, 0.6])
def test_equalization_keeps_one_minus_strength_of_a_wide_step(strength):
    """Two halves far wider than the 20 mm kernel (256 mm): far from their border (≥ 5 σ) the
    log contrast between them is (1 − strength) × the original."""
    signal = np.full((512, 512), 0.002)
    signal[:, 256:] = 0.1  # ln ratio 3.9: thick pelvis beside thin flank
    out = equalize(signal, whole_field(), strength)
    left, right = slice(0, 40), slice(472, 512)  # 108–128 mm from the border
    assert log_step(out, left, right) == pytest.approx(
        (1 - strength) * log_step(signal, left, right), rel=0.03
    )


def test_equalization_keeps_the_contrast_of_a_small_detail():
    """A 3 mm detail (a pedicle's cortex, a pin) keeps its contrast: the 20 mm background barely
    sees it."""
    signal = np.full((512, 512), 0.01)
    yy, xx = np.mgrid[:512, :512]
    detail = (yy - 256) ** 2 + (xx - 256) ** 2 <= 3**2  # 3 mm across at 0.5 mm pixels
    signal[detail] *= 0.7
    out = equalize(signal, whole_field(), 0.6)
    before = math.log(0.7)
    after = math.log(float(out[256, 256]) / float(out[256, 180]))
    assert after == pytest.approx(before, rel=0.02)


@pytest.mark.parametrize("column", [128, 129])  # both phases of the half-resolution blur
def test_edge_enhancement_boosts_a_thin_line_by_the_unsharp_mask_answer(column):
    """A one-pixel line of contrast c becomes c·(1 + g·(1 − k₀)), k₀ the 1-D Gaussian's centre
    weight (the line's own share of its blur)."""
    gain, sigma_mm = 0.5, 2.0
    signal = np.full((256, 256), 0.02)
    signal[:, column] = 0.018  # contrast −0.002
    out = enhance_edges(signal, whole_field((256, 256)), gain, sigma_mm)
    sigma_px = sigma_mm / PIXEL_MM
    offsets = np.arange(-40, 41)
    kernel = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    centre_weight = 1.0 / kernel.sum()
    expected = -0.002 * (1 + gain * (1 - centre_weight))
    assert float(out[128, column] - out[128, 60]) == pytest.approx(expected, rel=0.02)


def test_edge_enhancement_amplifies_white_noise_by_the_analytic_factor():
    """out = (1+g)·x − g·(K ⊛ x): for white noise the SD grows by
    √((1+g)² − 2g(1+g)·k₀ + g²·Σk²), k₀ the 2-D kernel's centre weight."""
    gain, sigma_mm = 0.5, 2.0
    rng = np.random.default_rng(3)
    signal = 0.02 + 0.001 * rng.standard_normal((512, 512))
    out = enhance_edges(signal, whole_field(), gain, sigma_mm)
    sigma_px = sigma_mm / PIXEL_MM
    offsets = np.arange(-40, 41)
    line = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel = np.outer(line, line) / line.sum() ** 2
    centre, squares = kernel[40, 40], float((kernel**2).sum())
    factor = math.sqrt((1 + gain) ** 2 - 2 * gain * (1 + gain) * centre + gain**2 * squares)
    inner = (slice(40, -40), slice(40, -40))
    assert float(out[inner].std() / signal[inner].std()) == pytest.approx(factor, rel=0.03)


def test_the_field_edge_is_not_enhanced_against_the_black_outside():
    """Uniform signal in a round field, nothing outside: no bright rim, no dark ring inside."""
    yy, xx = np.mgrid[:512, :512]
    field = (yy - 255.5) ** 2 + (xx - 255.5) ** 2 <= 230**2
    signal = np.where(field, 0.05, FLOOR)
    out = processed(signal, field)
    np.testing.assert_allclose(out[field], 0.05, rtol=0.01)
    np.testing.assert_array_equal(out[~field], signal[~field])


def test_both_off_show_the_signal_as_it_is():
    signal = np.random.default_rng(0).uniform(0.01, 0.2, (64, 64)).astype(np.float32)
    out = processed(signal, whole_field((64, 64)), equalization=0.0, edge_gain=0.0)
    assert out is signal


def test_the_chain_shows_detail_in_the_dense_half_of_a_thick_and_thin_patient():
    """A 30 cm and a 12 cm water half, each with a 4 mm bone rod: processed, the rod in the dense
    half shows more grey-level contrast than unprocessed, and air stays the brightest, near white."""
    energy = effective_energy_kev(75.0)
    water, bone = mu_per_mm("water", energy), mu_per_mm("cortical_bone", energy)
    li = np.full((SIZE, SIZE), 300 * water, dtype=np.float32)
    li[:, 128:] = 120 * water
    li[:, 228:] = 0.0  # air beside the body
    for column in (60, 170):
        li[60:200, column - 2 : column + 2] += 6 * bone

    def rod_contrast(settings: chain.ChainSettings, column: int) -> float:
        image = chain.apply_image_chain(
            li, geometry(), settings, Exposure(75.0, 2.5), np.random.default_rng(0)
        ).astype(float)
        rod = image[80:180, column - 1 : column + 1].mean()
        beside = image[80:180, column + 12 : column + 20].mean()
        return beside - rod

    plain = chain.ChainSettings(detector_kind="fpd", equalization=0.0, edge_enhancement=0.0)
    processed = chain.ChainSettings(detector_kind="fpd")
    assert rod_contrast(processed, 60) > 1.25 * rod_contrast(plain, 60)  # measured 1.31
    image = chain.apply_image_chain(
        li, geometry(), processed, Exposure(75.0, 2.5), np.random.default_rng(0)
    )
    air, thin = image[60:200, 236:250].mean(), image[60:200, 190:220].mean()
    assert air > 235 and air > thin + 20


def test_processing_settings_are_checked():
    with pytest.raises(ValueError, match="equalization"):
        chain.ChainSettings(equalization=1.0)
    with pytest.raises(ValueError, match="edge_enhancement"):
        chain.ChainSettings(edge_enhancement=-0.1)
