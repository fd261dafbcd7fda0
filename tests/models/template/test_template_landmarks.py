"""Template landmarks: every table name present, and each where its definition says it is.

Definitions are those of models/landmarks.py; the rules are in models/template/landmarks.py.
The ArtiSynth bones are mirror-symmetric and the Denver sacrum nearly so, so left/right pairs
mirror each other within a few millimetres.
"""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS, SIDES
from fluorosim.models.landmarks import landmark_names
from fluorosim.models.template.asset import load_template
from fluorosim.models.template.landmarks import RayCaster, signed_distance

MIRROR = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def template():
    return load_template()


def _marks(template):
    return template.landmarks


def test_every_lumbar_sacrum_pelvis_name_is_present(template):
    for provider in ("lumbar", "sacrum", "pelvis"):
        for name in landmark_names(provider):
            assert name in template.landmarks, name
            value = template.landmarks[name]
            if name.startswith("sij_surface"):
                assert value.ndim == 2 and value.shape[1] == 3 and len(value) > 50
            else:
                assert value.shape == (3,), name


def test_left_right_pairs_mirror_each_other(template):
    marks = _marks(template)
    for name in marks:
        if (
            "_left" not in name
            or name.startswith("sij_surface")
            or name.endswith(("normal", "axis"))
        ):
            continue
        left, right = marks[name], marks[name.replace("_left", "_right")]
        assert left[0] > 3.0 and right[0] < -3.0, name  # +x is the patient's left
        assert np.linalg.norm(left - right * MIRROR) < 5.0, name


def test_cranio_caudal_order_of_levels(template):
    marks = _marks(template)
    tops = [marks[f"{level}_superior_endplate_center"][2] for level in LUMBAR_LEVELS]
    bottoms = [marks[f"{level}_inferior_endplate_center"][2] for level in LUMBAR_LEVELS]
    tops.append(marks["S1_superior_endplate_center"][2])
    assert all(a > b for a, b in zip(tops, tops[1:], strict=False))
    for level, top, bottom in zip(LUMBAR_LEVELS, tops, bottoms, strict=False):
        assert 20.0 < top - bottom < 40.0, level  # body height (anatomy.md: ≈ 24–30 mm)
    for upper, lower in DISC_LEVELS:
        disc = marks[f"disc_{upper}_{lower}_center"]
        assert (
            marks[f"{lower}_superior_endplate_center"][2]
            < disc[2]
            < marks[f"{upper}_inferior_endplate_center"][2]
        )


@pytest.mark.parametrize("level", LUMBAR_LEVELS)
def test_vertebral_landmarks_lie_on_or_in_their_vertebra(template, level):
    marks, bone = _marks(template), template.bones[level]
    ends = np.array(
        [marks[f"{level}_superior_endplate_center"], marks[f"{level}_inferior_endplate_center"]]
    )
    assert np.all(np.abs(signed_distance(ends, bone)) < 0.5)  # on the bony endplate
    assert signed_distance(marks[f"{level}_body_center"][None], bone)[0] < -5.0
    assert abs(signed_distance(marks[f"{level}_spinous_tip"][None], bone)[0]) < 0.5
    body, tip = marks[f"{level}_body_center"], marks[f"{level}_spinous_tip"]
    posterior = marks[f"{level}_posterior_axis"]
    for side in SIDES:
        pedicle = marks[f"{level}_pedicle_center_{side}"]
        assert signed_distance(pedicle[None], bone)[0] < -1.0  # inside the bone
        # between the body and the lamina/spinous process, lateral of the canal
        assert (body @ posterior) + 10.0 < pedicle @ posterior < (tip @ posterior) - 15.0
        assert 10.0 < abs(pedicle[0]) < 30.0


@pytest.mark.parametrize(("upper", "lower"), DISC_LEVELS)
def test_facet_centres_lie_in_the_joint_between_the_two_bones(template, upper, lower):
    marks = _marks(template)
    lower_bone = template.bones["sacrum" if lower == "S1" else lower]
    for side in SIDES:
        centre = marks[f"facet_{upper}_{lower}_{side}"][None]
        # The ArtiSynth articular processes overlap by up to ≈2–4 mm where the joint is (its
        # contact model); the centre lies within 2.5 mm of both articular surfaces.
        assert abs(signed_distance(centre, template.bones[upper])[0]) < 2.5
        assert abs(signed_distance(centre, lower_bone)[0]) < 2.5
        assert centre[0, 1] > marks[f"{upper}_body_center"][1] + 20.0  # posterior to the body


@pytest.mark.parametrize(
    "name",
    [
        f"{level}_foramen_{face}_{side}"
        for level, face in (("S1", "anterior"), ("S2", "anterior"), ("S1", "posterior"))
        for side in SIDES
    ],
)
def test_sacral_foramina_are_open(template, name):
    sacrum = template.bones["sacrum"]
    centre, axis = template.landmarks[name], template.landmarks[f"{name}_axis"]
    assert signed_distance(centre[None], sacrum)[0] > 0.0  # in the opening, not in bone
    caster = RayCaster(sacrum)
    assert len(caster.hits(centre - 3.0 * axis, centre + 5.0 * axis)) == 0
    assert 10.0 < abs(centre[0]) < 40.0  # lateral to the bodies


def test_sacral_midline_landmarks(template):
    marks, sacrum = _marks(template), template.bones["sacrum"]
    assert signed_distance(marks["S1_body_center"][None], sacrum)[0] < -5.0
    assert signed_distance(marks["S2_body_center"][None], sacrum)[0] < -3.0
    assert marks["S2_body_center"][2] < marks["S1_body_center"][2]
    assert signed_distance(marks["S1_spinal_canal_center"][None], sacrum)[0] > 2.0  # canal
    assert marks["S1_spinal_canal_center"][1] > marks["S1_body_center"][1] + 10.0
    for name in ("sacral_promontory", "S1_anterior_cortex_midline", "ala_top_left"):
        assert abs(signed_distance(marks[name][None], sacrum)[0]) < 0.6, name
    assert marks["S1_anterior_cortex_midline"][1] < marks["S1_body_center"][1] - 10.0
    assert abs(marks["interlaminar_L5_S1_center"][0]) < 3.0
    assert marks["interlaminar_L5_S1_center"][1] > marks["S1_spinal_canal_center"][1]


def test_pelvis_landmarks_on_the_hip_bones(template):
    marks = _marks(template)
    for side in SIDES:
        hip = template.bones[f"hip_{side}"]
        names = ["asis", "psis", "iliac_crest_top", "sciatic_notch"]
        points = np.array([marks[f"{n}_{side}"] for n in names])
        points = np.vstack(
            [points, marks[f"icd_line_{side}_anterior"], marks[f"icd_line_{side}_posterior"]]
        )
        assert np.all(np.abs(signed_distance(points, hip)) < 0.6)
        asis, psis = marks[f"asis_{side}"], marks[f"psis_{side}"]
        crest, notch = marks[f"iliac_crest_top_{side}"], marks[f"sciatic_notch_{side}"]
        assert asis[1] < crest[1] < psis[1]  # anterior → posterior
        assert crest[2] > max(asis[2], psis[2]) > notch[2]
        samples = marks[f"sij_surface_{side}"]
        gap = signed_distance(samples, hip)
        assert np.all(gap < 3.0)
        assert np.all(np.sign(samples[:, 0]) == (1 if side == "left" else -1))
        centre = marks[f"sij_center_{side}"]
        assert np.min(np.linalg.norm(samples - centre, axis=1)) < 1e-6
    symphysis = marks["pubic_symphysis_superior"]
    assert abs(symphysis[0]) < 3.0
    assert symphysis[2] < marks["sacral_promontory"][2] - 60.0


def test_anterior_s1_cortex_gives_a_clinical_inlet(template):
    """The anterior S1 cortex point (current rule, also over an asset written by an older one)
    lies on the anterior sacral surface at the caudal end of the S1 body, and the line from the
    promontory to it, the inlet beam, is 12–38° from the AP beam (Eastman & Routt 2015), not the
    ≈51° of the rim lip just under the promontory."""
    from fluorosim.models.template.warp import refreshed_landmarks

    marks, sacrum = refreshed_landmarks(template), template.bones["sacrum"]
    point, promontory = marks["S1_anterior_cortex_midline"], marks["sacral_promontory"]
    assert abs(signed_distance(point[None], sacrum)[0]) < 0.6
    n1 = marks["S1_superior_endplate_normal"]
    depth = float((marks["S1_superior_endplate_center"] - point) @ n1)
    assert 22.0 < depth < 34.0, depth
    d = point - promontory
    inlet = float(np.degrees(np.arctan2(-d[2], d[1])))
    assert 12.0 <= inlet <= 38.0, inlet


#: Facet angle to the sagittal plane by level, Jentzsch et al. 2013: L2/3 30.4, L3/4 38.7,
#: L4/5 47.0, L5/S1 47.3. Measured on the Visible Human template by the articular-plane fit:
#: L1/2 18, L2/3 15–17, L3/4 27–28, L4/5 22–23, L5/S1 32–37 (this man's facets are more sagittal
#: than the mean at L3–L5; the warp does not turn them).
@pytest.mark.parametrize(("upper", "lower"), DISC_LEVELS)
def test_facet_articular_planes(template, upper, lower):
    """The plane fitted to each superior articular process's articular surface passes through the
    joint, faces the upper vertebra's inferior process (medially and backwards), mirrors between
    sides, and is oblique to the sagittal plane as a lumbar facet is (5–60°)."""
    from fluorosim.models.template.landmarks import (
        VertebralFrame,
        facet_angle_deg,
        facet_articular_plane,
    )

    bones = template.bones
    frame = VertebralFrame(template.body_meshes[upper], bones[upper], RayCaster(bones[upper]))
    lower_bone = bones["sacrum" if lower == "S1" else lower]
    angles = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        centre, normal = facet_articular_plane(frame, bones[upper], lower_bone, sign)
        joint = template.landmarks[f"facet_{upper}_{lower}_{side}"]
        assert np.linalg.norm(centre - joint) < 10.0, side
        assert sign * float(normal @ frame.u) < 0.0, side  # the SAP faces the midline
        angles[side] = facet_angle_deg(normal, frame.u, frame.v)
        assert 5.0 < angles[side] < 60.0, (side, angles[side])
    assert abs(angles["left"] - angles["right"]) < 8.0, angles


def test_facets_turn_coronal_toward_the_sacrum(template):
    """The published caudal trend (Jentzsch 2013: 30° at L2/3 → 47° at L5/S1) holds at its ends."""
    from fluorosim.models.template.landmarks import (
        VertebralFrame,
        facet_angle_deg,
        facet_articular_plane,
    )

    bones = template.bones

    def angle(upper, lower):
        frame = VertebralFrame(template.body_meshes[upper], bones[upper], RayCaster(bones[upper]))
        lower_bone = bones["sacrum" if lower == "S1" else lower]
        _, normal = facet_articular_plane(frame, bones[upper], lower_bone, 1.0)
        return facet_angle_deg(normal, frame.u, frame.v)

    assert angle("L5", "S1") > angle("L2", "L3") + 10.0
