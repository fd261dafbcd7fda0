"""The template → patient warp: exact at its controls, smooth and unfolded, on target, still human."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS, SIDES
from fluorosim.models.phantom.parts import PatientParameters
from fluorosim.models.template.asset import (
    DEFAULT_TEMPLATE_PATH,
    BoneTemplate,
    TriangleMesh,
    load_template,
)
from fluorosim.models.template.targets import patient_targets
from fluorosim.models.template.warp import (
    PELVIC_BONES,
    PatientWarp,
    bone_wall_heights_mm,
    height_reading,
    measure_template,
    patient_warp,
)
from fluorosim.models.template.warp_geometry import (
    body_frame,
    coronal_mean_width_mm,
    face_geometry,
    fit_endplate,
    signed_volume_mm3,
    tilt_deg,
)

#: Five seeds × both sexes.
PATIENTS = [(seed, sex) for seed in (0, 3, 8, 21, 42) for sex in ("male", "female")]
ALL_BONES = (*LUMBAR_LEVELS, *PELVIC_BONES)


@pytest.fixture(scope="module")
def template() -> BoneTemplate:
    if not DEFAULT_TEMPLATE_PATH.exists():  # only until the converted asset is committed
        pytest.skip(f"template asset not built yet: {DEFAULT_TEMPLATE_PATH}")
    return load_template()


_WARPS: dict[tuple, PatientWarp] = {}


def warp_for(template: BoneTemplate, seed: int = 0, sex: str = "male", **kwargs) -> PatientWarp:
    key = (id(template), seed, sex, tuple(sorted(kwargs.items())))
    if key not in _WARPS:
        params = PatientParameters(seed=seed, sex=sex, **kwargs)
        _WARPS[key] = patient_warp(template, patient_targets(params))
    return _WARPS[key]


# --- measuring the patient (from the warped meshes only) ---------------------------------------
def measured_endplates(warp: PatientWarp) -> dict[str, dict]:
    """Fit the endplates of the warped bodies, cranial to caudal; returns frames and tilts."""
    seed = np.array([0.0, 0.0, 1.0])
    result = {}
    for level in LUMBAR_LEVELS:
        body = warp.warp_body(level)
        superior = fit_endplate(body, seed, cranial=True)
        inferior = fit_endplate(body, superior.normal, cranial=False)
        result[level] = {
            "frame": body_frame(body, superior, inferior),
            "superior": superior,
            "inferior": inferior,
        }
        seed = inferior.normal
    result["S1"] = {"superior": fit_endplate(warp.warp_body("S1"), seed, cranial=True)}
    return result


def jacobian_determinants(
    warp: PatientWarp, template: BoneTemplate, bone: str, step_mm: float = 4.0
) -> np.ndarray:
    """det of the warp's Jacobian (central differences) on a grid through and around a bone."""
    vertices = np.asarray(template.bones[bone].vertices_mm)
    axes = [
        np.arange(lo, hi, step_mm) for lo, hi in zip(vertices.min(0), vertices.max(0), strict=True)
    ]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    distance, _ = cKDTree(vertices).query(grid)
    grid = grid[distance < 5.0]
    jacobian = np.empty((len(grid), 3, 3))
    h = 0.25
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        jacobian[:, :, k] = (
            warp.warp_points(bone, grid + e) - warp.warp_points(bone, grid - e)
        ) / (2 * h)
    return np.linalg.det(jacobian)


def similarity_residual_mm(source: np.ndarray, target: np.ndarray) -> float:
    """Mean distance between corresponding points after the best similarity (Umeyama 1991)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(t.T @ s)
    d = np.sign(np.linalg.det(u @ vt))
    correction = np.diag([1.0, 1.0, d])
    rotation = u @ correction @ vt
    scale = np.trace(np.diag(sigma) @ correction) / np.sum(s**2)
    aligned = scale * s @ rotation.T
    return float(np.linalg.norm(aligned - t, axis=1).mean())


# --- exactness and reproducibility -------------------------------------------------------------
def test_controls_and_landmarks_map_exactly(template) -> None:
    warp = warp_for(template, 3, "female")
    for level, vmap in warp.vertebra_maps.items():
        got = vmap.local_target(vmap.controls_template)
        # the spline is exact at its controls; the body's widening, the pedicles' lift and the
        # canal's shift are added after it, and the facet joints' turn moves what they leave
        # (controls near a joint turn with its processes, as the bone and its landmarks do)
        local = vmap.frame.to_local(vmap.controls_template)
        expected = vmap.controls_local_target
        if vmap.body_widen is not None:
            expected = expected + vmap.body_widen.displacement(local, expected)
        if vmap.pedicle_lift is not None:
            expected = expected + vmap.pedicle_lift(local)
        if vmap.canal is not None:
            expected = expected + vmap.canal.displacement(vmap.frame, local)
        if vmap.facet_turn is not None:
            expected = vmap.facet_turn(expected)
        np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=level)
    pelvis = warp.pelvis_map
    got = pelvis.controls_template + pelvis.spline(pelvis.controls_template)
    np.testing.assert_allclose(got, pelvis.controls_target, atol=1e-6)
    # every template landmark is mapped, finite, and a bone landmark follows its bone's map
    assert set(warp.landmarks) == set(template.landmarks)
    for name, value in warp.landmarks.items():
        assert np.all(np.isfinite(value)), name
    # direction landmarks (*_normal, *_axis) stay unit vectors and turn with their bone
    for name, value in warp.landmarks.items():
        if name.endswith(("_normal", "_axis")):
            assert np.linalg.norm(value) == pytest.approx(1.0), name
    if "S1_superior_endplate_normal" in warp.landmarks:
        tilt = tilt_deg(warp.landmarks["S1_superior_endplate_normal"])
        assert tilt == pytest.approx(warp.targets.sacral_slope_deg, abs=1.0)
    for level in LUMBAR_LEVELS:
        name = f"{level}_superior_endplate_center"
        if name in template.landmarks:
            expected = warp.warp_points(level, template.landmarks[name])
            np.testing.assert_allclose(warp.landmarks[name], expected, atol=1e-9)


def test_same_targets_give_the_same_patient(template) -> None:
    targets = patient_targets(PatientParameters(seed=8, sex="female", variant="high_iliac_crest"))
    first = patient_warp(template, targets)
    second = patient_warp(template, targets)
    for bone in ("L4", "sacrum", "hip_left"):
        np.testing.assert_array_equal(
            first.warp_bone(bone).vertices_mm, second.warp_bone(bone).vertices_mm
        )


# --- smooth, unfolded ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "variant",
    [None, "high_iliac_crest", "transitional_l5", "narrow_foramen", "dysmorphic_upper_sacrum"],
)
def test_warp_does_not_fold(template, variant) -> None:
    """Jacobian determinant positive and within sane bounds on a grid through every bone; every
    warped surface keeps a positive volume and no face turns inside out."""
    for seed, sex in ((3, "female"), (21, "male")):
        warp = warp_for(template, seed, sex, variant=variant)
        for bone in ALL_BONES:
            det = jacobian_determinants(warp, template, bone)
            assert det.min() > 0.1, f"{bone} {variant} seed {seed}: det min {det.min():.2f}"
            assert det.max() < 3.0, f"{bone} {variant} seed {seed}: det max {det.max():.2f}"
            mesh = warp.warp_bone(bone)
            assert signed_volume_mm3(mesh) > 0
            assert_no_inverted_faces(warp, template, bone, mesh)


def assert_no_inverted_faces(warp, template, bone: str, warped: TriangleMesh) -> None:
    """Each warped face normal agrees with the template normal carried by the local Jacobian
    (cofactor J⁻ᵀn): a face that turned over would point the other way."""
    normals, _, centroids = face_geometry(template.bones[bone])
    warped_normals, areas, _ = face_geometry(warped)
    h = 0.25
    jacobian = np.empty((len(centroids), 3, 3))
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        jacobian[:, :, k] = (
            warp.warp_points(bone, centroids + e) - warp.warp_points(bone, centroids - e)
        ) / (2 * h)
    carried = np.linalg.solve(np.transpose(jacobian, (0, 2, 1)), normals[:, :, None])[:, :, 0]
    agree = np.einsum("ij,ij->i", carried, warped_normals)
    ok = (agree > 0) | (areas < 1e-6)
    assert ok.all(), f"{bone}: {np.count_nonzero(~ok)} inverted faces"


# --- on target ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "sex"), PATIENTS)
def test_bodies_lordosis_and_slope_follow_the_targets(template, seed, sex) -> None:
    warp = warp_for(template, seed, sex)
    targets = warp.targets
    plates = measured_endplates(warp)
    for level in LUMBAR_LEVELS:
        frame = plates[level]["frame"]
        target = targets.vertebrae[level]
        # width: the whole bone's mean width through the body's middle (its waist and its rims'
        # flare), as Clouthier's mean shape reads their published width (models.yardstick)
        bone = warp.warp_bone(level)
        width = coronal_mean_width_mm(
            frame.to_local(np.asarray(bone.vertices_mm)),
            bone.faces,
            0.5 * (frame.v_anterior + frame.v_posterior),
        )
        assert width == pytest.approx(target.body_width_mm, abs=0.6), level
        assert frame.depth_mm == pytest.approx(target.body_depth_mm, abs=0.6), level
        # heights: the whole bone's (the body-only mesh's endplates lie inside it), 3 mm inside
        # the walls where the label measure reads them (so each wall is off its rim's target by
        # up to 3/35 of the body's wedge, their mean is not)
        reading = height_reading(warp.warp_body(level))
        anterior, posterior = bone_wall_heights_mm(warp.warp_bone(level), reading)
        assert (anterior + posterior) / 2 == pytest.approx(target.body_height_mm, abs=0.3), level
        assert anterior == pytest.approx(target.body_height_anterior_mm, abs=0.8), level
        assert posterior == pytest.approx(target.body_height_posterior_mm, abs=0.8), level
    assert tilt_deg(plates["S1"]["superior"].normal) == pytest.approx(
        targets.sacral_slope_deg, abs=0.6
    )
    for upper, lower in DISC_LEVELS:
        measured = tilt_deg(plates[lower]["superior"].normal) - tilt_deg(
            plates[upper]["superior"].normal
        )
        expected = targets.discs[f"{upper}_{lower}"].segmental_lordosis_deg
        assert measured == pytest.approx(expected, abs=0.7), f"{upper}-{lower}"
    # the S1 superior endplate centre (the template's origin) stays the origin
    origin = warp.warp_points("sacrum", np.zeros((1, 3)))
    np.testing.assert_allclose(origin, 0.0, atol=1e-3)


def posterior_disc_height(warp: PatientWarp, upper: str, lower: str) -> float:
    """Distance between the posterior endplate corners along the disc bisector (measured)."""
    plates = measured_endplates(warp)
    frame = plates[upper]["frame"]
    upper_corner = frame.to_template(
        np.array([[0.0, frame.v_posterior, frame.w_inferior(frame.v_posterior)]])
    )[0]
    if lower == "S1":
        plate = plates["S1"]["superior"]
        body = np.asarray(warp.warp_body("S1").vertices_mm)
        tilt = math.radians(tilt_deg(plate.normal))
        anterior = np.array([0.0, -math.cos(tilt), -math.sin(tilt)])
        rel = body - plate.center_mm
        near = (np.abs(rel[:, 0]) < 3.0) & (rel @ plate.normal > -8.0)
        lower_corner = plate.center_mm + float((rel[near] @ anterior).min()) * anterior
        lower_normal = plate.normal
    else:
        lf = plates[lower]["frame"]
        lower_corner = lf.to_template(
            np.array([[0.0, lf.v_posterior, lf.w_superior(lf.v_posterior)]])
        )[0]
        lower_normal = plates[lower]["superior"].normal
    bisector = plates[upper]["inferior"].normal + lower_normal
    bisector /= np.linalg.norm(bisector)
    return float((upper_corner - lower_corner) @ bisector)


@pytest.mark.parametrize(("seed", "sex"), PATIENTS[:4])
def test_disc_heights_follow_the_targets(template, seed, sex) -> None:
    warp = warp_for(template, seed, sex)
    for upper, lower in DISC_LEVELS:
        expected = warp.targets.discs[f"{upper}_{lower}"].posterior_height_mm
        measured = posterior_disc_height(warp, upper, lower)
        assert measured == pytest.approx(expected, abs=0.6), f"{upper}/{lower}"


def joint_centers(warp: PatientWarp) -> dict[str, np.ndarray]:
    anatomy = measure_template(warp.template)
    return {
        side: warp.warp_points("sacrum", anatomy.joints[side].sacral_points).mean(axis=0)
        for side in SIDES
    }


@pytest.mark.parametrize(("seed", "sex"), PATIENTS)
def test_pelvis_follows_the_targets(template, seed, sex) -> None:
    warp = warp_for(template, seed, sex)
    anatomy = measure_template(template)
    p = warp.targets.pelvis
    # sacral height: promontory → apex
    ends = warp.warp_points("sacrum", np.vstack([anatomy.promontory_mm, anatomy.apex_mm]))
    template_height = np.linalg.norm(anatomy.apex_mm - anatomy.promontory_mm)
    assert np.linalg.norm(ends[1] - ends[0]) == pytest.approx(
        p.sacral_height_ratio * template_height, abs=1.0
    )
    # interauricular breadth: the joints' centres
    centers = joint_centers(warp)
    template_breadth = abs(
        anatomy.joints["left"].sacral_points.mean(0)[0]
        - anatomy.joints["right"].sacral_points.mean(0)[0]
    )
    breadth = abs(centers["left"][0] - centers["right"][0])
    assert breadth / template_breadth == pytest.approx(p.interauricular_ratio, rel=0.04)
    # the sacroiliac joints stay congruent: the sacral and iliac auricular surfaces keep their gap
    for side in SIDES:
        joint = anatomy.joints[side]
        sacral = warp.warp_points("sacrum", joint.sacral_points)
        iliac = warp.warp_points(f"hip_{side}", joint.iliac_points)
        before, _ = cKDTree(joint.iliac_points).query(joint.sacral_points)
        after, _ = cKDTree(iliac).query(sacral)
        assert np.abs(after - before).mean() < 0.6, side


def test_female_pelvis_is_wider_and_sacrum_shorter(template) -> None:
    def mean_over_seeds(sex, measure):
        return np.mean([measure(warp_for(template, seed, sex)) for seed in (0, 3, 8, 21, 42)])

    def asis_breadth(warp):
        return float(
            np.ptp(np.vstack([warp.warp_bone(f"hip_{s}").vertices_mm for s in SIDES])[:, 0])
        )

    def sacral_length(warp):
        a = measure_template(warp.template)
        ends = warp.warp_points("sacrum", np.vstack([a.promontory_mm, a.apex_mm]))
        return float(np.linalg.norm(ends[1] - ends[0]))

    assert mean_over_seeds("female", asis_breadth) > mean_over_seeds("male", asis_breadth)
    assert mean_over_seeds("female", sacral_length) < mean_over_seeds("male", sacral_length)


# --- variants -----------------------------------------------------------------------------------
def crest_top_z(warp: PatientWarp) -> float:
    return float(np.mean([point[2] for point in warp.crest_top_mm.values()]))


def l4_l5_disc_z(warp: PatientWarp) -> float:
    plates = measured_endplates(warp)
    return 0.5 * float(
        plates["L4"]["inferior"].center_mm[2] + plates["L5"]["superior"].center_mm[2]
    )


@pytest.mark.parametrize(("seed", "sex"), PATIENTS[:6])
def test_iliac_crest_height(template, seed, sex) -> None:
    """Normal: the crest top below the L4–L5 disc centre; high_iliac_crest: above it."""
    normal = warp_for(template, seed, sex)
    high = warp_for(template, seed, sex, variant="high_iliac_crest")
    assert crest_top_z(normal) < l4_l5_disc_z(normal)
    assert crest_top_z(high) > l4_l5_disc_z(high)
    for warp in (normal, high):
        expected = l4_l5_disc_z(warp) + warp.targets.pelvis.iliac_crest_offset_mm
        assert crest_top_z(warp) == pytest.approx(expected, abs=2.5)


@pytest.mark.parametrize(("seed", "sex"), PATIENTS[:4])
def test_dysmorphic_upper_sacrum(template, seed, sex) -> None:
    """S1 colinear with the crests (the crest top nearer the S1 endplate than the same patient's
    without the variant), mammillary processes on the alae, and a tongue of the sacrum reaching
    into each ilium."""
    normal = warp_for(template, seed, sex)
    dysmorphic = warp_for(template, seed, sex, variant="dysmorphic_upper_sacrum")
    s1_z = float(dysmorphic.endplate("S1", "superior")[0][2])
    assert crest_top_z(dysmorphic) - s1_z < crest_top_z(normal) - s1_z - 5.0
    expected = l4_l5_disc_z(dysmorphic) + dysmorphic.targets.pelvis.iliac_crest_offset_mm
    assert crest_top_z(dysmorphic) == pytest.approx(expected, abs=2.5)
    # mammillary processes: the alae rise above the normal patient's along the S1 normal
    anatomy = measure_template(template)
    sacrum = np.asarray(template.bones["sacrum"].vertices_mm)
    _, normal_s1 = dysmorphic.endplate("S1", "superior")
    for side, sign in (("left", 1.0), ("right", -1.0)):
        x_joint = abs(anatomy.joints[side].center_mm[0])
        ala = (sign * sacrum[:, 0] > anatomy.s1_half_width_mm) & (sign * sacrum[:, 0] < x_joint)
        top_normal = (normal.warp_points("sacrum", sacrum[ala]) @ normal_s1).max()
        top_dysmorphic = (dysmorphic.warp_points("sacrum", sacrum[ala]) @ normal_s1).max()
        height = dysmorphic.targets.variants.mammillary_process_mm
        assert top_dysmorphic - top_normal > 0.6 * height, side
    # tongue-in-groove: the middle of each sacral joint surface moves laterally, both bones together
    for side, sign in (("left", 1.0), ("right", -1.0)):
        joint = anatomy.joints[side]
        middle = joint.sacral_points[
            np.linalg.norm(joint.sacral_points - joint.sacral_points.mean(0), axis=1) < 6.0
        ]
        shift_normal = normal.warp_points("sacrum", middle)[:, 0].mean()
        shift_dysmorphic = dysmorphic.warp_points("sacrum", middle)[:, 0].mean()
        assert sign * (shift_dysmorphic - shift_normal) > 1.0, side
    assert dysmorphic.targets.variants.residual_s1_s2_disc
    # large upper sacral foramina: the bone stands farther from each S1 foramen's centre
    for side in SIDES:
        name = f"S1_foramen_anterior_{side}"
        if name in template.landmarks:
            radii = []
            for warp in (normal, dysmorphic):
                tree = cKDTree(warp.warp_bone("sacrum").vertices_mm)
                radii.append(tree.query(warp.landmarks[name])[0])
            # the nearest wall is the narrow (transverse, ×1.15) one
            assert radii[1] > 1.08 * radii[0], side


@pytest.mark.parametrize(("seed", "sex"), PATIENTS[:4])
def test_transitional_l5_reaches_the_ala(template, seed, sex) -> None:
    normal = warp_for(template, seed, sex)
    transitional = warp_for(template, seed, sex, variant="transitional_l5")
    span = float(np.ptp(transitional.warp_bone("L5").vertices_mm[:, 0]))
    assert span == pytest.approx(
        2 * transitional.targets.variants.l5_transverse_half_span_mm, abs=2.0
    )
    assert span > float(np.ptp(normal.warp_bone("L5").vertices_mm[:, 0])) + 4.0
    gap = transverse_to_sacrum_mm(transitional)
    assert gap < transitional.targets.variants.l5_transverse_to_ala_gap_mm + 2.0
    assert transverse_to_sacrum_mm(normal) > gap + 4.0


def transverse_to_sacrum_mm(warp: PatientWarp) -> float:
    """Closest approach of the L5 transverse processes (beyond the body) to the sacrum."""
    l5 = warp.warp_bone("L5").vertices_mm
    half_width = 0.5 * warp.targets.vertebrae["L5"].body_width_mm
    lateral = l5[np.abs(l5[:, 0]) > half_width + 8.0]
    distance, _ = cKDTree(warp.warp_bone("sacrum").vertices_mm).query(lateral)
    return float(distance.min())


@pytest.mark.parametrize(("seed", "sex"), PATIENTS[:4])
def test_narrow_foramen_lowers_the_foramina(template, seed, sex) -> None:
    normal = warp_for(template, seed, sex)
    narrow = warp_for(template, seed, sex, variant="narrow_foramen")
    for upper, lower in (("L4", "L5"), ("L5", "S1")):
        assert (
            posterior_disc_height(narrow, upper, lower)
            < 0.7 * posterior_disc_height(normal, upper, lower) + 0.6
        )
    assert posterior_disc_height(narrow, "L3", "L4") == pytest.approx(
        posterior_disc_height(normal, "L3", "L4"), abs=0.2
    )
    for side in SIDES:
        upper, lower = f"L4_pedicle_center_{side}", f"L5_pedicle_center_{side}"
        if upper in template.landmarks and lower in template.landmarks:
            gaps = [
                float(np.linalg.norm(w.landmarks[upper] - w.landmarks[lower]))
                for w in (normal, narrow)
            ]
            assert gaps[1] < gaps[0] - 2.0, side


# --- still human --------------------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "sex"), PATIENTS[:4])
def test_shape_stays_human(template, seed, sex) -> None:
    """After a similarity alignment (size removed) each warped bone lies close to its template:
    the warp changes proportions, not the bone (mean distance, mm; numbers in the report).

    The canal's drawn width and depth reshape the arch on purpose (the template's canal is
    3–6 mm narrower and shallower than the population's): that part is held to the population-
    mean shape instead (test_warp_shape.py: L2–L5 within 2 mm of it), and here the vertebrae are
    measured on the same patient without a drawn canal. The canal adds 0.0–1.3 mm (seeds 0 and 3,
    both sexes; L3 of seed 0 male 1.25 → 2.58)."""
    warp = warp_for(template, seed, sex)
    plain = patient_warp(template, without_canal(warp.targets))
    # measured on the Visible Human template: vertebrae 0.3–2.2, sacrum 1.4–4.2 (its length changes
    # below the joints only), hip bones 1.9–3.6 mm
    limits = {"sacrum": 5.0, "coccyx": 2.0, "hip_left": 4.5, "hip_right": 4.5}
    for bone in ALL_BONES:
        warped = plain if bone in LUMBAR_LEVELS else warp
        residual = similarity_residual_mm(
            np.asarray(template.bones[bone].vertices_mm), warped.warp_bone(bone).vertices_mm
        )
        assert residual < limits.get(bone, 2.5), f"{bone}: {residual:.2f} mm"


def without_canal(targets):
    """The same patient with no drawn canal: the template's canal scaled with the body (the warp
    before the canal was targeted, generator 5.4)."""
    return replace(
        targets,
        vertebrae={
            level: replace(v, canal_width_mm=None, canal_depth_mm=None)
            for level, v in targets.vertebrae.items()
        },
    )


def test_warp_space_follows_the_bones(template) -> None:
    warp = warp_for(template, 8, "female")
    for bone in ("L3", "sacrum", "hip_right"):
        points = np.asarray(template.bones[bone].vertices_mm)[::200]
        np.testing.assert_allclose(
            warp.warp_space(points), warp.warp_points(bone, points), atol=0.5
        )


def test_unknown_bone_is_named(template) -> None:
    with pytest.raises(KeyError, match="femur"):
        warp_for(template).warp_points("femur", np.zeros(3))


def test_sacral_slope_rotates_the_pelvis_rigidly(template) -> None:
    """Only the slope differs: the pelvis turns about the left–right axis through the origin."""
    params = PatientParameters(seed=4, sacral_slope_deg=30.0)
    flat = patient_warp(template, patient_targets(params))
    steep = patient_warp(template, patient_targets(replace(params, sacral_slope_deg=45.0)))
    a = flat.warp_bone("hip_left").vertices_mm
    b = steep.warp_bone("hip_left").vertices_mm
    angle = math.radians(15.0)
    rotation = np.array(
        [[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]]
    )
    # the crest height term depends on the spine above, so compare the part below the joints
    low = a[:, 2] < -40.0
    np.testing.assert_allclose((a[low] @ rotation.T), b[low], atol=1.5)
