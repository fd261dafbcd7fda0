"""Veiling glare: conserves the signal, spreads the expected fraction far, II ≫ flat panel."""

import math

import numpy as np
import pytest

from fluorosim.render import glare
from fluorosim.render import image_chain as chain
from tests.render.test_image_chain import geometry

PIXEL_MM = 0.45
SIZE = 512


def disc(radius_px: float, size: int = SIZE) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2
    return (np.hypot(x - centre, y - centre) <= radius_px).astype(np.float64)


def test_glare_conserves_the_signal_and_leaves_a_uniform_field_alone():
    rng = np.random.default_rng(0)
    image = rng.random((SIZE, SIZE)) * disc(200)
    glared = glare.apply_veiling_glare(image, 0.07, PIXEL_MM)
    assert glared.sum() == pytest.approx(image.sum(), rel=1e-6)
    uniform = np.full((SIZE, SIZE), 0.3)
    np.testing.assert_allclose(glare.apply_veiling_glare(uniform, 0.07, PIXEL_MM), 0.3, rtol=1e-6)
    assert glare.apply_veiling_glare(image, 0.0, PIXEL_MM) is image


def test_a_small_bright_disc_sends_the_glare_fraction_beyond_its_surroundings():
    """Beyond ρ = 10 mm lies g · Σ w·exp(−ρ²/2σ²) of the disc's light (2-D Gaussian tails)."""
    fraction, rho_mm = 0.07, 10.0
    spot = disc(3.0)  # 1.35 mm radius: point-like next to the 15 and 60 mm kernel
    glared = glare.apply_veiling_glare(spot, fraction, PIXEL_MM)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    far = np.hypot(x - (SIZE - 1) / 2, y - (SIZE - 1) / 2) * PIXEL_MM > rho_mm
    tails = sum(
        w * math.exp(-(rho_mm**2) / (2 * s**2))
        for s, w in zip(glare.GLARE_SIGMAS_MM, glare.GLARE_WEIGHTS, strict=True)
    ) / sum(glare.GLARE_WEIGHTS)
    assert glared[far].sum() / spot.sum() == pytest.approx(fraction * tails, rel=0.08)


def test_the_edge_of_a_bright_field_spreads_by_the_glare_kernel():
    """Half bright, half dark (mirror boundaries make it an infinite edge): at d mm into the
    dark side the glare is g · Σ w·Φ(−d/σ)."""
    fraction = 0.07
    edge = np.zeros((SIZE, SIZE))
    edge[:, : SIZE // 2] = 1.0
    glared = glare.apply_veiling_glare(edge, fraction, PIXEL_MM)
    for d_mm in (5.0, 20.0, 60.0):
        column = SIZE // 2 + int(round(d_mm / PIXEL_MM))
        d_exact = (column - (SIZE / 2 - 0.5)) * PIXEL_MM
        expected = (
            fraction
            * sum(
                w * 0.5 * math.erfc(d_exact / (s * math.sqrt(2)))
                for s, w in zip(glare.GLARE_SIGMAS_MM, glare.GLARE_WEIGHTS, strict=True)
            )
            / sum(glare.GLARE_WEIGHTS)
        )
        assert glared[:, column].mean() == pytest.approx(expected, rel=0.06)
    # the bright side keeps 1 − g far from the edge plus what its own glare returns
    assert glared[:, 10].mean() == pytest.approx(1.0 - fraction * 0.5 * 0.5 * 0.06, abs=0.01)


def test_an_intensifier_veils_a_dark_gap_far_more_than_a_flat_panel():
    size = 256
    li = np.full((size, size), 2.0, dtype=np.float32)
    li[:, 118:138] = 9.0  # a 20 mm dark gap (a metal strip) in a bright field
    gaps = {}
    for kind in ("ii", "fpd"):
        settings = chain.ChainSettings(
            detector_kind=kind, scatter=None, vignetting=0.0, pincushion=0.0
        )
        signal = chain.detector_signal(li, geometry(size), settings, 1e4, 0.0227, None)
        gaps[kind] = signal[100:156, 126:130].mean() / signal[100:156, 40:60].mean()
    assert settings.effective_glare_fraction == glare.GLARE_FRACTION["fpd"]
    # primary through the strip is exp(−7) ≈ 0.09 %; the glare fills it with a few per cent
    assert gaps["ii"] > 0.02
    assert gaps["ii"] > 4 * gaps["fpd"]


def test_chain_settings_pick_the_detectors_glare_fraction():
    assert chain.ChainSettings(detector_kind="ii").effective_glare_fraction == 0.07
    assert chain.ChainSettings(detector_kind="fpd").effective_glare_fraction == 0.01
    assert (
        chain.ChainSettings(detector_kind="fpd", glare_fraction=0.05).effective_glare_fraction
        == 0.05
    )
    with pytest.raises(ValueError, match="glare_fraction"):
        chain.ChainSettings(glare_fraction=0.9)
