"""Patient targets: drawn from the published distributions of anatomy.md, reproducible, and the
variants change what they claim."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from fluorosim.models.labels import DISC_LEVELS
from fluorosim.models.phantom.parts import PatientParameters
from fluorosim.models.template.targets import PatientTargets, patient_targets

SEEDS = range(100)


def population(sex: str | None = None, **kwargs) -> list[PatientTargets]:
    """200 patients: 100 male and 100 female seeds (distinct, so the draws are independent), or
    200 seeds of one sex."""
    if sex is None:
        return [
            patient_targets(PatientParameters(seed=seed + offset, sex=s, **kwargs))
            for seed in SEEDS
            for s, offset in (("male", 0), ("female", 1000))
        ]
    return [patient_targets(PatientParameters(seed=seed, sex=sex, **kwargs)) for seed in range(200)]


@pytest.fixture(scope="module")
def mixed() -> list[PatientTargets]:
    return population()


def assert_mean(values, mean: float, sd: float, label: str) -> None:
    """Sample mean within 3 standard errors of the published mean (n = len(values))."""
    values = np.asarray(values, dtype=float)
    error = 3.0 * sd / math.sqrt(len(values))
    assert abs(values.mean() - mean) < error, (
        f"{label}: mean {values.mean():.2f} vs {mean}±{error:.2f}"
    )


def assert_sd(values, sd: float, label: str, tolerance: float = 0.2) -> None:
    got = float(np.std(values, ddof=1))
    assert abs(got - sd) < tolerance * sd, f"{label}: SD {got:.2f} vs {sd} (±{tolerance:.0%})"


def test_same_parameters_give_identical_targets_and_seeds_differ() -> None:
    params = PatientParameters(seed=11, sex="female", variant="narrow_foramen")
    assert patient_targets(params) == patient_targets(replace(params))
    other = patient_targets(replace(params, seed=12))
    assert other.vertebrae["L4"] != patient_targets(params).vertebrae["L4"]


@pytest.mark.parametrize(
    ("name", "mean", "low", "high"),
    [("width", 46.7, 39.4, 58.8), ("depth", 35.0, 29.5, 42.0), ("height", 27.8, 23.5, 32.3)],
)
def test_lumbar_bodies_follow_clouthier_2023(mixed, name, mean, low, high) -> None:
    """L2–L5 pooled over 200 patients: Clouthier's mean, an SD of range/5.7, values in range."""

    def value(t, level):
        v = t.vertebrae[level]
        return {"width": v.body_width_mm, "depth": v.body_depth_mm, "height": v.body_height_mm}[
            name
        ]

    values = np.array([value(t, level) for t in mixed for level in ("L2", "L3", "L4", "L5")])
    sd = (high - low) / 5.7
    assert_mean(values, mean, sd, name)
    assert_sd(values, sd, name)
    # the published range holds nearly all of 800 draws (a normal model has thin tails)
    inside = np.mean((values > low - 1.0) & (values < high + 1.0))
    assert inside > 0.98


def test_l5_heights_follow_cook_and_baker_2021(mixed) -> None:
    anterior = [t.vertebrae["L5"].body_height_anterior_mm for t in mixed]
    posterior = [t.vertebrae["L5"].body_height_posterior_mm for t in mixed]
    assert_mean(anterior, 30.3, 1.9, "L5 anterior height")
    assert_mean(posterior, 26.3, 1.9, "L5 posterior height")
    assert_sd(anterior, 1.9, "L5 anterior", tolerance=0.35)
    assert_sd(posterior, 1.9, "L5 posterior", tolerance=0.35)


@pytest.mark.parametrize(
    ("level", "mean"), [("L1", 15.4), ("L2", 15.0), ("L3", 14.9), ("L4", 14.8), ("L5", 14.0)]
)
def test_pedicle_heights_follow_zindrick_1987(mixed, level, mean) -> None:
    """Zindrick's mean per level, the L5 series' SD (1.9 mm), no absurd pedicle."""
    values = [t.vertebrae[level].pedicle_height_mm for t in mixed]
    assert_mean(values, mean, 1.9, f"{level} pedicle height")
    assert_sd(values, 1.9, f"{level} pedicle height")
    assert min(values) > 8.0 and max(values) < 22.0


CANAL_LEVELS = ("L2", "L3", "L4", "L5")


def canal(t: PatientTargets, name: str, level: str) -> float:
    vertebra = t.vertebrae[level]
    value = vertebra.canal_width_mm if name == "width" else vertebra.canal_depth_mm
    assert value is not None, (name, level)
    return value


@pytest.mark.parametrize(
    ("name", "mean", "low", "high"), [("width", 26.7, 21.5, 31.8), ("depth", 16.7, 13.0, 20.4)]
)
def test_canals_follow_clouthier_2023(mixed, name, mean, low, high) -> None:
    """L2–L5 pooled over 200 patients: Clouthier's mean (their range as ±2 SD for the standard
    error); every draw inside the published range but L5's width, which the mean shape's lateral
    recesses put above it (35.5 mm measured alike), within its own ±2 SD."""
    values = np.array([canal(t, name, level) for t in mixed for level in CANAL_LEVELS])
    assert_mean(values, mean, (high - low) / 4.0, f"canal {name}")
    for level in CANAL_LEVELS:
        drawn = [canal(t, name, level) for t in mixed]
        bounds = (low, high) if (name, level) != ("width", "L5") else (26.4, 41.5)
        assert bounds[0] - 1e-9 <= min(drawn) and max(drawn) <= bounds[1] + 1e-9, (level, bounds)


def test_l1_canal_follows_the_patients_lumbar_canal(mixed) -> None:
    """L1 (in no published table) is the template's L1 canal times the mean factor the patient's
    L2–L5 canal has over the template's: every patient has one, it goes with L2, and it lies between
    the template's (18.0 × 14.0 mm) scaled by the smallest and the largest of those factors."""
    from fluorosim.models.template.targets import TEMPLATE_CANAL_MM

    for name in ("width", "depth"):
        template = TEMPLATE_CANAL_MM[name]
        for t in mixed:
            factors = [
                canal(t, name, level) / template[n + 1] for n, level in enumerate(CANAL_LEVELS)
            ]
            l1 = canal(t, name, "L1")
            assert l1 == pytest.approx(template[0] * float(np.mean(factors)))
            assert template[0] * min(factors) <= l1 <= template[0] * max(factors)
        l1s = [canal(t, name, "L1") for t in mixed]
        assert np.corrcoef(l1s, [canal(t, name, "L2") for t in mixed])[0, 1] > 0.5


@pytest.mark.parametrize("name", ["width", "depth"])
def test_canal_levels_follow_the_population_mean_shape(mixed, name) -> None:
    """Per level, the mean shape's pattern (widest at L5, deepest at L2 and L5) scaled to
    Clouthier's L2–L5 mean: each level's mean within 3 standard errors of its population mean."""
    pattern = {"width": (23.8, 25.0, 27.5, 35.5), "depth": (17.0, 16.0, 16.0, 17.5)}[name]
    published = {"width": 26.7, "depth": 16.7}[name]
    for level, value in zip(CANAL_LEVELS, pattern, strict=True):
        expected = value * published / float(np.mean(pattern))
        values = [canal(t, name, level) for t in mixed]
        assert_mean(values, expected, 0.13 * expected, f"{level} canal {name}")


def test_l5_canal_spread_follows_cook_and_baker_2021(mixed) -> None:
    """L5's width varies like Cook & Baker's (28.2 ± 3.1 mm: CV 0.11) and its depth no more than
    theirs (15.6 ± 2.1 mm: CV 0.135; Clouthier's range clips the deep end)."""
    width = np.array([canal(t, "width", "L5") for t in mixed])
    depth = np.array([canal(t, "depth", "L5") for t in mixed])
    assert_sd(width / width.mean(), 3.1 / 28.2, "L5 canal width CV")
    assert 0.08 < float(np.std(depth / depth.mean(), ddof=1)) <= 2.1 / 15.6


def test_canal_goes_with_the_patients_size_and_levels(mixed) -> None:
    """A larger patient has a larger canal (the shared size factor, as the bodies); a narrow canal
    is narrow at every level; the draws are repeatable and their own stream (the bodies and the
    pedicles drew as before)."""
    size = [t.size_factor for t in mixed]
    assert np.corrcoef(size, [canal(t, "width", "L3") for t in mixed])[0, 1] > 0.2
    assert np.corrcoef(size, [canal(t, "depth", "L3") for t in mixed])[0, 1] > 0.2
    l2 = [canal(t, "width", "L2") for t in mixed]
    l4 = [canal(t, "width", "L4") for t in mixed]
    assert np.corrcoef(l2, l4)[0, 1] > 0.5
    male, female = population("male"), population("female")
    assert np.mean([canal(t, "width", "L4") for t in female]) < np.mean(
        [canal(t, "width", "L4") for t in male]
    )


def test_one_patients_pedicles_are_tall_or_short_together(mixed) -> None:
    l1 = [t.vertebrae["L1"].pedicle_height_mm for t in mixed]
    l5 = [t.vertebrae["L5"].pedicle_height_mm for t in mixed]
    assert np.corrcoef(l1, l5)[0, 1] > 0.6


@pytest.mark.parametrize(
    ("joint", "mean"), [("L2_L3", 30.4), ("L3_L4", 38.7), ("L4_L5", 47.0), ("L5_S1", 47.3)]
)
def test_facet_angles_follow_jentzsch_2013(mixed, joint, mean) -> None:
    """Jentzsch's mean per joint, the assumed SD (≈6.7°, approx.), clipped at ±2 SD per part."""
    values = [t.facet_angles_deg[joint][side] for t in mixed for side in ("left", "right")]
    left = np.array([t.facet_angles_deg[joint]["left"] for t in mixed])
    right = np.array([t.facet_angles_deg[joint]["right"] for t in mixed])
    assert_mean(left, mean, 6.7, f"{joint} facet angle")
    assert_sd(left, 6.7, f"{joint} facet angle")
    assert mean - 2.0 * (6.0 + 2.5 + 1.5) <= min(values) and max(values) <= mean + 20.0
    # tropism stays small (mean |left − right| ≈ 1.7°, never above 2 × 2 × 1.5°)
    assert np.abs(left - right).mean() < 2.5 and np.abs(left - right).max() <= 6.0 + 1e-9


def test_facets_turn_coronal_caudally_in_most_patients(mixed) -> None:
    turned = [
        t.facet_angles_deg["L4_L5"]["left"] > t.facet_angles_deg["L2_L3"]["left"] for t in mixed
    ]
    assert np.mean(turned) > 0.99


def test_facet_draws_moved_no_other_draw() -> None:
    """The facet angles have their own stream: every other target is what it was without them
    (pinned on one body dimension, the pedicle height and the lordosis of seed 0)."""
    t = patient_targets(PatientParameters(seed=0))
    assert set(t.facet_angles_deg) == {"L2_L3", "L3_L4", "L4_L5", "L5_S1"}
    params = PatientParameters(seed=0)
    assert params.rng("tmplfacet").standard_normal() != params.rng("tmplvert").standard_normal()


def test_the_l5_s1_draw_moved_no_other_facet_draw() -> None:
    """L5/S1 is drawn after the other joints on their stream: their angles are what they were
    before it was drawn (pinned, seeds 0 and 1, generator 5.6)."""
    pinned = {
        0: {"L2_L3": (31.2894, 32.7771), "L4_L5": (46.7604, 46.2249)},
        1: {"L2_L3": (21.3724, 20.2998), "L4_L5": (36.5152, 34.6132)},
    }
    for seed, joints in pinned.items():
        angles = patient_targets(PatientParameters(seed=seed)).facet_angles_deg
        for joint, (left, right) in joints.items():
            assert angles[joint]["left"] == pytest.approx(left, abs=1e-3), (seed, joint)
            assert angles[joint]["right"] == pytest.approx(right, abs=1e-3), (seed, joint)


def test_disc_heights_follow_the_table_standing() -> None:
    """Standing (lordosis_scale 1): posterior heights as published, anterior within 1 mm."""
    table = {
        "L1_L2": (10.8, 7.3),
        "L2_L3": (13.1, 8.6),
        "L3_L4": (15.2, 9.1),
        "L4_L5": (18.1, 10.1),
        "L5_S1": (18.7, 8.5),
    }
    standing = population(lordosis_scale=1.0)
    for key, (anterior, posterior) in table.items():
        post = [t.discs[key].posterior_height_mm for t in standing]
        ant = [t.discs[key].anterior_height_mm for t in standing]
        assert_mean(post, posterior, 0.12 * posterior + 0.4, f"{key} posterior")
        assert abs(np.mean(ant) - anterior) < 1.0, f"{key} anterior {np.mean(ant):.1f}"


@pytest.mark.parametrize(
    ("scale", "mean", "sd"),
    [(1.0, 49.8, 11.2), (36.8 / 49.8, 36.8, 13.2)],
)
def test_total_lordosis_standing_and_recumbent(scale, mean, sd) -> None:
    """L1–S1 lordosis: 49.8±11.2 standing, 36.8±13.2 recumbent (the prone flattening), over
    patients whose sacral slopes follow the published 24–55° (mean ±2 SD): the lordosis is drawn
    given the slope, so only across slopes does it have the published spread."""
    slopes = np.clip(np.random.default_rng(7).normal(39.5, 7.75, 400), 24.0, 55.0)
    totals = [
        patient_targets(
            PatientParameters(seed=seed, lordosis_scale=scale, sacral_slope_deg=float(slope))
        ).lumbar_lordosis_deg
        for seed, slope in enumerate(slopes)
    ]
    assert_mean(totals, mean, sd, f"lordosis at scale {scale:.2f}")
    assert_sd(totals, sd, f"lordosis at scale {scale:.2f}")


def test_lordosis_follows_the_sacral_slope() -> None:
    """A steeper sacrum carries a more lordotic spine (correlation ≈0.8 across the population),
    so L1 stays over the sacrum: at the default slope the upper endplate of L1 tilts less than
    20° from the table's transverse plane in most patients, never the 23° of a flat spine on a
    steep sacrum."""
    rng = np.random.default_rng(3)
    slopes = np.clip(rng.normal(39.5, 7.75, 300), 24.0, 55.0)
    totals = [
        patient_targets(
            PatientParameters(seed=seed, sacral_slope_deg=float(slope))
        ).lumbar_lordosis_deg
        for seed, slope in enumerate(slopes)
    ]
    assert 0.65 < float(np.corrcoef(slopes, totals)[0, 1]) < 0.9
    at_default = np.array([patient_targets(PatientParameters(seed=s)) for s in range(100)])
    l1_tilt = np.array([38.0 - t.lumbar_lordosis_deg for t in at_default])
    assert abs(float(np.mean(l1_tilt))) < 5.0
    assert float(np.mean(np.abs(l1_tilt) < 20.0)) > 0.9


def test_segmental_angles_are_consistent_with_bodies_and_discs(mixed) -> None:
    for t in mixed[:40]:
        for upper, lower in DISC_LEVELS:
            disc = t.discs[f"{upper}_{lower}"]
            body = t.vertebrae[upper]
            assert disc.wedge_deg >= 0.0
            assert disc.segmental_lordosis_deg == pytest.approx(
                disc.wedge_deg + body.body_wedge_deg
            )
            assert disc.anterior_height_mm >= disc.posterior_height_mm


def test_sacral_slope_is_the_patient_parameter() -> None:
    assert patient_targets(PatientParameters(sacral_slope_deg=31.5)).sacral_slope_deg == 31.5


def test_sacrum_and_pelvis_follow_the_published_distributions(mixed) -> None:
    female = population("female")
    assert_mean([t.pelvis.sacral_height_mm for t in female], 98.0, 9.2, "female sacral height")
    assert_sd([t.pelvis.sacral_height_mm for t in female], 9.2, "female sacral height")
    iad = [t.pelvis.interauricular_distance_mm for t in mixed]
    assert_mean(iad, 108.7, 11.0, "interauricular distance")
    assert_sd(iad, 11.0, "interauricular distance")
    auricular = [t.pelvis.auricular_height_mm for t in mixed]
    assert_mean(auricular, 56.2, 4.6, "auricular height")
    assert_sd(auricular, 4.6, "auricular height")
    s1 = [t.pelvis.s1_body_width_mm for t in mixed]
    assert_mean(s1, 40.3, 7.0, "S1 body width")
    assert_sd(s1, 7.0, "S1 body width", tolerance=0.25)
    width = np.array([t.pelvis.sacral_width_mm for t in mixed])
    assert 95.0 < np.median(width) < 109.0


def test_sex_differences() -> None:
    """Female: smaller vertebrae, wider pelvis, shorter and relatively wider sacrum."""
    male, female = population("male"), population("female")

    def mean(group, get):
        return float(np.mean([get(t) for t in group]))

    assert mean(female, lambda t: t.vertebrae["L4"].body_width_mm) < mean(
        male, lambda t: t.vertebrae["L4"].body_width_mm
    )
    assert mean(female, lambda t: t.pelvis.pelvic_width_scale) > mean(
        male, lambda t: t.pelvis.pelvic_width_scale
    )
    assert mean(female, lambda t: t.pelvis.sacral_height_mm) < mean(
        male, lambda t: t.pelvis.sacral_height_mm
    )

    def index(t):
        return t.pelvis.sacral_width_mm / t.pelvis.sacral_height_mm

    assert mean(female, index) > mean(male, index) * 1.05


def test_body_scale_scales_lengths() -> None:
    small = patient_targets(PatientParameters(seed=5, body_scale=0.9))
    large = patient_targets(PatientParameters(seed=5, body_scale=1.1))
    ratio = large.vertebrae["L3"].body_width_mm / small.vertebrae["L3"].body_width_mm
    assert ratio == pytest.approx(1.1 / 0.9)
    assert large.pelvis.sacral_height_mm > small.pelvis.sacral_height_mm


def test_variants_change_what_they_claim() -> None:
    for seed in range(20):
        base = PatientParameters(seed=seed)
        normal = patient_targets(base)
        high = patient_targets(replace(base, variant="high_iliac_crest"))
        narrow = patient_targets(replace(base, variant="narrow_foramen"))
        transitional = patient_targets(replace(base, variant="transitional_l5"))
        dysmorphic = patient_targets(replace(base, variant="dysmorphic_upper_sacrum"))
        assert normal.pelvis.iliac_crest_offset_mm < 0 < high.pelvis.iliac_crest_offset_mm
        for key in ("L4_L5", "L5_S1"):
            assert narrow.discs[key].posterior_height_mm == pytest.approx(
                0.6 * normal.discs[key].posterior_height_mm
            )
        assert narrow.discs["L3_L4"] == normal.discs["L3_L4"]
        assert transitional.discs["L5_S1"].posterior_height_mm == pytest.approx(
            0.55 * normal.discs["L5_S1"].posterior_height_mm
        )
        assert transitional.variants.l5_transverse_half_span_mm > 45.0
        assert normal.variants.l5_transverse_half_span_mm is None
        assert dysmorphic.pelvis.iliac_crest_offset_mm < normal.pelvis.iliac_crest_offset_mm - 5
        assert dysmorphic.variants.residual_s1_s2_disc
        assert dysmorphic.variants.mammillary_process_mm > 0
        assert dysmorphic.variants.tongue_in_groove_mm > 0
        assert min(dysmorphic.variants.s1_foramen_scale) > 1.0
        assert not normal.variants.residual_s1_s2_disc
