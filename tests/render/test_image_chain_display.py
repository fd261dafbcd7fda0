"""The monitor's display curve: monotone, gamma-encoded S-curve; bone dark, tissue grey, air white."""

import numpy as np
import pytest

from fluorosim.models.materials import mu_per_mm
from fluorosim.render import image_chain as chain
from fluorosim.render.attenuation import effective_energy_kev
from fluorosim.render.exposure import Collimation, Exposure
from tests.render.test_image_chain import SIZE, geometry


@pytest.mark.parametrize("gamma", [1.0, 2.2])
def test_display_curve_is_monotone_from_black_to_white(gamma):
    log_signal = np.linspace(-8.0, 8.0, 20001)
    grey = chain.to_display(log_signal, 0.0, 1.0, gamma=gamma).astype(int)
    assert np.all(np.diff(grey) >= 0)
    assert grey[0] == 0 and grey[-1] == 255
    # strictly rising across the window: every grey level between 10 and 245 is used
    used = set(grey[(grey >= 10) & (grey <= 245)].tolist())
    assert used == set(range(10, 246))
    inverted = chain.to_display(log_signal, 0.0, 1.0, invert=True, gamma=gamma).astype(int)
    np.testing.assert_array_equal(inverted, 255 - grey)


def test_display_curve_is_the_gamma_encoded_s_curve():
    x = np.array([-1.0, 0.0, 1.0])
    grey = chain._grey(x, 0.0, 1.0, 2.2)
    luminance = 0.5 + 0.5 * np.tanh(x)
    np.testing.assert_allclose(grey, 255 * luminance ** (1 / 2.2), rtol=1e-5)
    assert grey[1] == pytest.approx(255 * 0.5 ** (1 / 2.2), rel=1e-5)  # ≈186 at the level
    # long toe, short shoulder: one half-width below the level is far from black, one above is
    # nearly white (the monitor shows bone with grey gradations, air burnt out)
    assert grey[0] > 90 and 255 - grey[2] < 16
    np.testing.assert_allclose(chain._grey(x, 0.0, 1.0, 1.0), 127.5 + 127.5 * np.tanh(x), rtol=1e-6)


def test_bone_dark_soft_tissue_grey_air_white():
    """A body (22 cm water) with a bone block, beside air, through the whole chain."""
    energy = effective_energy_kev(75.0)
    li = np.full((SIZE, SIZE), 220 * mu_per_mm("water", energy), dtype=np.float32)
    li[:, 200:] = 0.002  # air beside the body
    li[90:160, 70:140] += 25 * mu_per_mm("cortical_bone", energy)
    settings = chain.ChainSettings(detector_kind="fpd")
    image = chain.apply_image_chain(
        li, geometry(), settings, Exposure(75.0, 2.5), np.random.default_rng(0)
    )
    bone = image[110:140, 90:120].mean()
    tissue = image[200:240, 60:150].mean()
    air = image[60:200, 215:250].mean()
    assert bone < tissue - 30
    assert 60 < tissue < 220
    assert air > 245  # burnt out white, as on a C-arm monitor


def test_display_gamma_is_checked():
    with pytest.raises(ValueError, match="display_gamma"):
        chain.ChainSettings(display_gamma=0.1)


def test_without_shutter_masking_the_scatter_glow_shows_under_the_shutters():
    y = np.arange(SIZE)[:, None] * np.ones((1, SIZE))
    li = (5.0 + 1.2 * np.sin(y / 15.0)).astype(np.float32)  # anatomy-like spread for the window
    shutters = Collimation(shutter_u_mm=(-50.0, 50.0))
    x = np.arange(SIZE) - (SIZE - 1) / 2
    under = (x < -60) & (x > -90)
    images = {}
    for masking in (True, False):
        settings = chain.ChainSettings(
            detector_kind="fpd", collimation=shutters, shutter_masking=masking
        )
        images[masking] = chain.apply_image_chain(
            li, geometry(), settings, Exposure(75.0, 2.5), np.random.default_rng(0)
        )
    assert images[True][:, under].max() == 0
    glow = images[False][:, under].mean()
    assert 0 < glow < images[False][:, np.abs(x) < 40].mean() - 40  # dim, darker than the field
    # the glow fades away from the shutter edge
    assert images[False][:, (x < -60) & (x > -70)].mean() > images[False][:, x < -110].mean()
