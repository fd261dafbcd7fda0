"""Scatter: SPR grows with thickness, a slab gets SPR × primary, detail contrast falls 1/(1+SPR)."""

import math

import numpy as np
import pytest

from fluorosim.render import image_chain as chain
from fluorosim.render import scatter
from fluorosim.render.exposure import Collimation
from tests.render.test_image_chain import SIZE, geometry

MU_WATER = chain.water_mu_per_mm(75.0)  # 0.0227 /mm at the 50 keV effective energy
#: An infinite field (mirror boundaries at the detector's edge): the tests of the SPR itself
#: and of 1/(1 + SPR) use it, so the finite field's lower scatter at the edges does not enter.
INFINITE = scatter.ScatterModel(finite_field=False)


def slab(thickness_mm: float, size: int = SIZE) -> np.ndarray:
    return np.full((size, size), thickness_mm * MU_WATER, dtype=np.float64)


def noiseless_signal(li, settings, geo=None):
    """The receptor output before the display, without noise (rng None)."""
    return chain.detector_signal(li, geo or geometry(), settings, 1e4, MU_WATER, None)


def test_spr_rises_monotonically_with_thickness_through_the_published_anchors():
    model = scatter.ScatterModel()
    thickness = np.linspace(0.0, 450.0, 200)
    spr = model.spr(thickness)
    assert spr[0] == 0.0 and np.all(np.diff(spr) > 0)
    # without a grid: ≈1.8 through 10 cm and ≈4.5 through 20 cm of water (Bushberg: 3–5)
    assert model.spr_no_grid(100.0) == pytest.approx(1.8)
    assert model.spr_no_grid(200.0) == pytest.approx(4.5)
    # behind the grid through 20 cm: Bushberg's "≈0.5–1"
    assert 0.5 <= float(model.spr(200.0)) <= 1.0
    # thick lateral pelvis (≈40 cm water-equivalent) is scatter-dominated
    assert float(model.spr(400.0)) > 2.0


def test_mirror_kernel_matrices_keep_uniform_fields_and_conserve_sums():
    for size, sigma in ((64, 3.0), (64, 40.0), (17, 30.0)):
        matrix = scatter.mirror_gaussian_matrix(size, sigma)
        np.testing.assert_allclose(matrix.sum(axis=0), 1.0, atol=1e-12)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(matrix, matrix.T, atol=1e-15)


def test_uniform_slab_gets_exactly_spr_times_primary():
    settings = chain.ChainSettings(detector_kind="fpd", glare_fraction=0.0, scatter=INFINITE)
    for thickness in (100.0, 200.0, 350.0):
        li = slab(thickness)
        transmission = np.exp(-li)
        exposed = np.ones(li.shape, bool)
        scattered = scatter.scatter_fraction(transmission, exposed, 1.0, MU_WATER, settings.scatter)
        spr = float(settings.scatter.spr(thickness))
        np.testing.assert_allclose(scattered, spr * transmission, rtol=1e-9)


@pytest.mark.parametrize("thickness", [150.0, 250.0, 350.0])
def test_small_detail_contrast_drops_by_one_over_one_plus_spr(thickness):
    li = slab(thickness)
    li[124:132, 124:132] += 0.2  # an 8 mm detail (≈ a bone cortex) in the slab's middle
    detail, background = (slice(126, 130), slice(126, 130)), (slice(60, 80), slice(60, 80))
    contrasts = {}
    for name, model in (("primary", None), ("scatter", INFINITE)):
        settings = chain.ChainSettings(
            detector_kind="fpd", scatter=model, glare_fraction=0.0, blur_fwhm_mm=0.0
        )
        signal = noiseless_signal(li, settings)
        bg = signal[background].mean()
        contrasts[name] = (bg - signal[detail].mean()) / bg
    spr = float(scatter.ScatterModel().spr(thickness))
    assert contrasts["primary"] == pytest.approx(1 - np.exp(-0.2), rel=1e-6)
    # 1/(1 + SPR) holds for a detail too small to change the scatter; this one changes it ~1 %
    assert contrasts["scatter"] / contrasts["primary"] == pytest.approx(1 / (1 + spr), rel=0.02)


def test_a_thick_pelvis_loses_more_contrast_than_a_thin_abdomen():
    ratios = []
    for thickness in (120.0, 220.0, 380.0):
        li = slab(thickness)
        li[100:156, 100:156] += 0.4  # a bone block
        plain = chain.ChainSettings(detector_kind="fpd", scatter=None, glare_fraction=0.0)
        real = chain.ChainSettings(detector_kind="fpd", glare_fraction=0.0)
        kept = []
        for settings in (plain, real):
            signal = noiseless_signal(li, settings)
            kept.append(np.log(signal[20:40, 20:40].mean() / signal[120:136, 120:136].mean()))
        ratios.append(kept[1] / kept[0])
    assert ratios[0] > ratios[1] > ratios[2]
    assert ratios[2] < 0.5  # through ~38 cm less than half of the log contrast is left


def test_coning_in_lowers_the_scatter_in_the_middle_of_the_field():
    li = slab(220.0)
    middle = (slice(120, 136), slice(120, 136))
    scattered = {}
    for iris_mm in (None, 100.0, 50.0):
        settings = chain.ChainSettings(
            detector_kind="fpd", collimation=Collimation(iris_diameter_mm=iris_mm), scatter=INFINITE
        )
        transmission = np.exp(-li)
        exposed = settings.exposed_mask(geometry())
        field = scatter.scatter_fraction(transmission, exposed, 1.0, MU_WATER, settings.scatter)
        scattered[iris_mm] = field[middle].mean() / transmission[middle].mean()
    assert scattered[None] == pytest.approx(float(scatter.ScatterModel().spr(220.0)), rel=0.01)
    assert scattered[None] > scattered[100.0] > scattered[50.0]
    assert scattered[50.0] < 0.5 * scattered[None]


def test_a_finite_field_loses_the_scatter_aimed_past_its_edge():
    """A square field of side L: at its middle the scatter is SPR · Σ w·erf(L/(2√2σ))² (what
    each Gaussian keeps inside the field), at the edges far less; the wider the kernel (a larger
    air gap) or the smaller the field, the less scatter (Sorenson & Floch 1985)."""
    thickness = 220.0
    model = scatter.ScatterModel()
    spr = float(model.spr(thickness))

    def centre_and_edge(size_px, pixel_mm, model):
        li = slab(thickness, size_px)
        transmission = np.exp(-li)
        exposed = np.ones(li.shape, bool)
        field = scatter.scatter_fraction(transmission, exposed, pixel_mm, MU_WATER, model)
        ratio = field / transmission
        mid = size_px // 2
        return ratio[mid - 2 : mid + 2, mid - 2 : mid + 2].mean(), ratio[mid, :3].mean()

    for size_px, pixel_mm in ((256, 1.0), (256, 0.5), (512, 1.0)):
        side_mm = size_px * pixel_mm
        kept = sum(
            w * math.erf(side_mm / (2 * math.sqrt(2) * sigma)) ** 2
            for w, sigma in zip(model.normalised_weights, model.kernel_sigmas_mm, strict=True)
        )
        centre, edge = centre_and_edge(size_px, pixel_mm, model)
        assert centre == pytest.approx(spr * kept, rel=0.02), side_mm
        assert edge < 0.7 * centre
    small = centre_and_edge(256, 0.5, model)[0]
    large = centre_and_edge(512, 1.0, model)[0]
    assert small < large < spr  # SPR rises with the field size, up to the large-field value
    wide = scatter.ScatterModel(kernel_sigmas_mm=(40.0, 110.0))
    assert centre_and_edge(256, 1.0, wide)[0] < centre_and_edge(256, 1.0, model)[0]


def test_a_metal_pin_barely_changes_the_scatter():
    li = slab(220.0)
    with_pin = li.copy()
    with_pin[:, 140:142] += 9.0  # a steel pin: almost no primary through it
    exposed = np.ones(li.shape, bool)
    model = scatter.ScatterModel()
    base = scatter.scatter_fraction(np.exp(-li), exposed, 1.0, MU_WATER, model)
    pinned = scatter.scatter_fraction(np.exp(-with_pin), exposed, 1.0, MU_WATER, model)
    # the pin removes 2 of 256 columns of primary: the scatter falls by about that, no more
    assert np.all(pinned <= base * 1.001)
    assert pinned.min() > 0.95 * base.min()


def test_scatter_adds_quanta_and_their_poisson_noise():
    li = slab(200.0)
    n0 = 2000.0
    settings = chain.ChainSettings(
        detector_kind="fpd", glare_fraction=0.0, blur_fwhm_mm=0.0, scatter=INFINITE
    )
    signal = chain.detector_signal(li, geometry(), settings, n0, MU_WATER, np.random.default_rng(4))
    primary = float(np.exp(-li[0, 0]))
    expected = primary * (1 + float(settings.scatter.spr(200.0)))
    assert signal.mean() == pytest.approx(expected, rel=0.01)
    assert signal.var() == pytest.approx(expected / n0, rel=0.03)  # Poisson of primary + scatter


def test_scatter_settings_are_checked():
    with pytest.raises(ValueError, match="grid_scatter_transmission"):
        scatter.ScatterModel(grid_scatter_transmission=1.5)
    with pytest.raises(ValueError, match="kernel_weights"):
        scatter.ScatterModel(kernel_weights=(1.0,))


def test_coarse_grid_sums_are_preserved():
    rng = np.random.default_rng(0)
    for factor in (2, 3, 4, 8):
        image = rng.random((24, 40))
        up = scatter.upsample_linear(image, factor)
        assert up.sum() == pytest.approx(image.sum() * factor**2, rel=1e-12)
        assert scatter.downsample_area(up, factor).sum() == pytest.approx(image.sum(), rel=1e-6)
    assert scatter.coarse_factor(512, 512) == 8
    assert scatter.coarse_factor(384, 384) == 6
    assert scatter.coarse_factor(101, 101) == 1


@pytest.mark.parametrize("factor", [4, 8])
def test_block_means_equal_the_area_resize(factor):
    import cv2

    image = np.random.default_rng(factor).uniform(0.0, 2.0, (128, 96)).astype(np.float32)
    exposed = np.zeros(image.shape, bool)
    exposed[20:100, 8:70] = True
    size = (96 // factor, 128 // factor)
    area = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(scatter.downsample_area(image, factor), area, rtol=1e-6)
    primary, mean = scatter._block_means(image, exposed, factor)
    masked = cv2.resize(image * exposed, size, interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(primary, masked, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(mean, area, rtol=1e-6)
