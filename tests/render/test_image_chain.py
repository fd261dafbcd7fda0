"""Image chain: Beer–Lambert, Poisson noise ∝ 1/N, collimation, intensifier, brightness, display."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from fluorosim.models.instruments import InstrumentPose, load_catalogue
from fluorosim.models.materials import mu_per_mm
from fluorosim.render import image_chain as chain
from fluorosim.render.attenuation import effective_energy_kev
from fluorosim.render.exposure import Collimation, Exposure
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.render.instrument_projection import instrument_line_integrals
from fluorosim.render.scatter import ScatterModel

SIZE = 256


def geometry(size: int = SIZE, pixel_mm: float = 1.0) -> ProjectionGeometry:
    half = size * pixel_mm / 2
    return ProjectionGeometry(
        source_lps_mm=np.array([0.0, -600.0, 0.0]),
        detector_origin_lps_mm=np.array([-half + pixel_mm / 2, 400.0, -half + pixel_mm / 2]),
        detector_u_lps=np.array([1.0, 0.0, 0.0]),
        detector_v_lps=np.array([0.0, 0.0, 1.0]),
        pixel_mm=pixel_mm,
        width_px=size,
        height_px=size,
    ).validate()


def radius_px(shape):
    height, width = shape
    y, x = np.mgrid[0:height, 0:width]
    return np.hypot(x - (width - 1) / 2, y - (height - 1) / 2)


def test_beer_lambert_is_exp_minus_line_integral():
    li = np.array([[0.0, 1.0], [2.5, 7.0]], dtype=np.float32)
    np.testing.assert_allclose(chain.beer_lambert(li), np.exp(-li.astype(np.float64)), rtol=1e-7)


@pytest.mark.parametrize("n0", [4000.0, 40.0])  # normal-limit and exact-Poisson regimes
def test_quartering_the_dose_doubles_the_noise_std(n0):
    rng = np.random.default_rng(1)
    transmission = np.full((400, 400), 0.5)
    stds = {}
    for photons in (n0, n0 / 4):
        signal = chain.add_quantum_noise(photons * transmission, rng) / photons
        stds[photons] = signal.std()
        # Poisson: variance of the normalised signal is T / N0
        assert signal.var() == pytest.approx(0.5 / photons, rel=0.03)
        assert signal.mean() == pytest.approx(0.5, rel=0.01)
    assert stds[n0 / 4] / stds[n0] == pytest.approx(2.0, rel=0.03)


def test_low_counts_are_whole_photons_and_never_negative():
    counts = chain.add_quantum_noise(np.array([[0.0, 0.3, 3.0, 1e4]]), np.random.default_rng(2))
    assert counts[0, 0] == 0 and np.all(counts >= 0)
    assert np.all(counts[0, :3] == np.round(counts[0, :3]))


def test_photon_counts_follow_the_dose_of_the_mode():
    geo, settings = geometry(), chain.ChainSettings(detector_kind="fpd")
    continuous = chain.photons_per_pixel(Exposure(75.0, 2.0), geo, settings)
    quarter = chain.photons_per_pixel(Exposure(75.0, 0.5), geo, settings)
    assert quarter == pytest.approx(continuous / 4)
    pulsed = chain.photons_per_pixel(Exposure(75.0, 2.0, "pulsed", 7.5, 1 / 7.5), geo, settings)
    low = chain.photons_per_pixel(Exposure(75.0, 2.0, "low_dose", 7.5, 1 / 7.5), geo, settings)
    assert continuous > pulsed > low
    assert low == pytest.approx(0.4 * pulsed)
    # order of magnitude: ~10⁴–10⁵ photons per mm² per displayed image with nothing in the beam
    assert 1e4 < continuous < 1e6


def test_photon_fluence_per_air_kerma_matches_the_energy_absorption_coefficient():
    # 60 keV, (μen/ρ)air = 0.03041 cm²/g → Φ/K = 1 / (E · μen/ρ) ≈ 3.42e4 photons/(mm² µGy)
    assert chain.photons_per_mm2_per_ugy(60.0) == pytest.approx(3.42e4, rel=0.01)


def uniform_chain(settings, value=2.0, exposure=None, seed=0, size=SIZE):
    li = np.full((size, size), value, dtype=np.float32)
    return chain.apply_image_chain(
        li, geometry(size), settings, exposure or Exposure(75.0, 2.5), np.random.default_rng(seed)
    )


def test_collimation_zeroes_the_primary_beam_outside_the_field():
    shutters = Collimation(shutter_u_mm=(-60.0, 40.0), iris_diameter_mm=220.0)
    settings = chain.ChainSettings(detector_kind="fpd", collimation=shutters)
    image = uniform_chain(settings)
    x = np.arange(SIZE) - (SIZE - 1) / 2
    blocked = (x < -60 - 3) | (x > 40 + 3)  # 3 px clear of the blurred edge
    assert np.all(image[:, blocked] == 0)
    assert image[:, (x > -55) & (x < 35)][100:150].mean() > 60
    inverted = uniform_chain(
        chain.ChainSettings(detector_kind="fpd", collimation=shutters, invert=True)
    )
    assert np.all(inverted[:, blocked] == 255)
    # outside the iris (corners) nothing either
    assert image[0, SIZE // 2] == 0


def test_intensifier_field_is_round_with_vignetting_and_a_panel_is_square():
    ii = uniform_chain(chain.ChainSettings(detector_kind="ii", pincushion=0.0, vignetting=0.3))
    r = radius_px(ii.shape)
    radius = SIZE / 2
    assert np.all(ii[r > radius + 1] == 0)
    centre = ii[r < 0.3 * radius].mean()
    edge = ii[(r > 0.85 * radius) & (r < 0.95 * radius)].mean()
    assert edge < centre - 20
    # an infinite field: a finite one darkens the corners by its lower scatter there
    # (render.scatter, tests/render/test_scatter.py), which is not vignetting
    infinite = ScatterModel(finite_field=False)
    fpd = uniform_chain(chain.ChainSettings(detector_kind="fpd", scatter=infinite))
    assert fpd[r > radius + 1].min() > 0  # the corners are imaged
    corner, middle = fpd[:20, :20].mean(), fpd[118:138, 118:138].mean()
    assert abs(corner - middle) < 3  # no vignetting on a flat panel


def test_vignetting_factor_is_documented_quadratic():
    image = chain.apply_vignetting(np.ones((101, 101)), 50.0, 0.25)
    assert image[50, 50] == pytest.approx(1.0)
    assert image[50, 100] == pytest.approx(0.75)
    assert image[50, 75] == pytest.approx(1 - 0.25 * 0.25)


def test_pincushion_moves_a_point_outward_by_the_documented_amount():
    radius, k = 120.0, 0.03
    image = np.zeros((SIZE, SIZE), dtype=np.float32)
    centre = (SIZE - 1) / 2
    r0 = 100.0
    image[
        int(round(centre)) - 1 : int(round(centre)) + 2,
        int(round(centre + r0)) - 1 : int(round(centre + r0)) + 2,
    ] = 1
    true_r = int(round(centre + r0)) - centre
    shown = chain.pincushion_distort(image, radius, k)
    ys, xs = np.nonzero(shown > 0)
    weights = shown[ys, xs]
    centroid_x = float((xs * weights).sum() / weights.sum())
    expected = float(chain.pincushion_radius(true_r, radius, k))
    assert expected - true_r == pytest.approx(true_r * k * (true_r / radius) ** 2)
    assert centroid_x - centre == pytest.approx(expected, abs=0.25)
    assert expected - true_r > 2.0  # the displacement is large enough to be measured here
    assert np.array_equal(chain.pincushion_distort(image, radius, 0.0), image)


def test_flat_panel_chain_has_no_distortion():
    settings_fpd = chain.ChainSettings(detector_kind="fpd", blur_fwhm_mm=0.0)
    li = np.zeros((SIZE, SIZE), dtype=np.float32)
    li[:, 200:202] = 3.0  # a dense vertical line near the edge stays where it is
    image = chain.apply_image_chain(
        li, geometry(), settings_fpd, Exposure(75.0, 2.5), np.random.default_rng(0)
    )
    dark_columns = np.nonzero(image[120:136].mean(axis=0) < 40)[0]
    assert dark_columns.tolist() == [200, 201]


def test_invert_mode_is_the_negative_inside_the_field():
    li = np.full((SIZE, SIZE), 3.0, dtype=np.float32)
    li[100:150, 60:200] += 1.5  # "bone"
    settings = chain.ChainSettings(detector_kind="ii")
    normal = chain.apply_image_chain(
        li, geometry(), settings, Exposure(75.0, 2.5), np.random.default_rng(5)
    )
    inverted = chain.apply_image_chain(
        li,
        geometry(),
        chain.ChainSettings(detector_kind="ii", invert=True),
        Exposure(75.0, 2.5),
        np.random.default_rng(5),
    )
    inside = radius_px(li.shape) < SIZE / 2 - 2
    np.testing.assert_array_equal(inverted[inside], 255 - normal[inside])
    assert normal[120:130, 100:150].mean() < normal[200:210, 100:150].mean()  # bone dark
    assert inverted[120:130, 100:150].mean() > inverted[200:210, 100:150].mean()  # bone white


@pytest.mark.parametrize("thickness", [1.0, 4.0, 7.0])
def test_automatic_brightness_keeps_the_exposed_field_at_mid_grey(thickness):
    """A thin and a thick (lateral/obese) object both come out mid-grey, not dark."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    li = thickness * (1 + 0.15 * np.sin(x / 17.0) * np.cos(y / 23.0)).astype(np.float32)
    li[80:170, 90:160] += 0.6
    settings = chain.ChainSettings(
        detector_kind="fpd", collimation=Collimation(shutter_v_mm=(-100.0, 90.0))
    )
    image = chain.apply_image_chain(li, geometry(), settings, Exposure(75.0, 2.5), rng)
    exposed = settings.exposed_mask(geometry())
    core = cv2.erode(exposed.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    # the brightness control measures the central half of the field's diameter (as a C-arm's
    # sensor does): mid-grey there, and the whole field is neither dark nor washed out
    metering = core & (radius_px(image.shape) <= 0.5 * settings.field_radius_px(geometry()))
    assert image[metering].mean() == pytest.approx(127.5, abs=4.0)
    assert 100 < image[core].mean() < 170
    assert image[core].std() > 20  # contrast is kept, not a flat grey


def test_pin_over_slab_metal_black_bone_dark_and_saved_for_inspection(tmp_path):
    size, pixel_mm = 384, 0.6
    geo = geometry(size, pixel_mm)
    energy = effective_energy_kev(75.0)
    li = np.full((size, size), 180 * mu_per_mm("water", energy), dtype=np.float32)
    li[:, 150:230] += 10 * mu_per_mm("cortical_bone", energy)  # a bone band
    pin = InstrumentPose("guide_pin", np.array([10.0, 0.0, -20.0]), np.array([0.7, 0.1, 0.7]))
    li += instrument_line_integrals([pin], load_catalogue(), geo, energy)
    settings = chain.ChainSettings(
        detector_kind="ii", collimation=Collimation(shutter_u_mm=(-100.0, 95.0))
    )
    image = chain.apply_image_chain(
        li, geo, settings, Exposure(75.0, 2.5), np.random.default_rng(0)
    )
    cv2.imwrite(str(tmp_path / "pin_over_slab.png"), image)
    assert image.dtype == np.uint8 and image.shape == (size, size)
    pixel = np.round(geo.project(pin.axis_point_lps(60.0))).astype(int)
    metal = image[pixel[1] - 1 : pixel[1] + 2, pixel[0] - 1 : pixel[0] + 2].mean()
    soft = image[60:80, 100:120].mean()
    bone = image[60:80, 170:210].mean()
    assert metal < 15 and metal < bone < soft


def test_renderer_style_call_uses_the_model_and_needs_an_rng():
    li = np.full((SIZE, SIZE), 2.0, dtype=np.float32)
    panel = SimpleNamespace(detector="flat_panel")
    image = chain.apply_image_chain(
        li,
        geometry=geometry(),
        model=panel,
        exposure=None,
        settings=None,
        rng=np.random.default_rng(0),
    )
    assert image[0, 0] > 0  # square field
    intensifier = SimpleNamespace(detector="image_intensifier")
    image = chain.apply_image_chain(
        li, geometry=geometry(), model=intensifier, rng=np.random.default_rng(0)
    )
    assert image[0, 0] == 0  # round field
    with pytest.raises(ValueError, match="inject"):
        chain.apply_image_chain(li, geometry(), chain.ChainSettings())
    with pytest.raises(ValueError, match="do not match"):
        chain.apply_image_chain(
            li[:10], geometry(), chain.ChainSettings(), rng=np.random.default_rng(0)
        )


def test_last_image_hold_keeps_a_copy_of_the_last_frame():
    hold = chain.LastImageHold()
    assert hold.held() is None
    frame = np.full((4, 4), 7, dtype=np.uint8)
    hold.show(frame)
    frame[:] = 0
    assert hold.held() is not None and hold.held().max() == 7 and hold.frames_shown == 1
    hold.clear()
    assert hold.held() is None
