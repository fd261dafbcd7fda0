"""The real skeleton (``PatientParameters(skeleton="real")``): labels, landmarks, open foramina,
disc wedging, partial-volume edges and the clinical view angles, measured on one built patient.

Needs the shipped template asset (assets/anatomy); ``FLUOROSIM_TEST_TEMPLATE`` may point at
another template file (e.g. one just written by ``python -m fluorosim.models.template.convert``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fluorosim.models.labels import DISC_LEVELS, LABEL_TABLE, LUMBAR_LEVELS, SIDES
from fluorosim.models.landmarks import landmark_names
from fluorosim.models.phantom import measure, real_skeleton
from fluorosim.models.phantom.assembly import build_patient
from fluorosim.models.phantom.parts import PatientParameters
from fluorosim.models.template.asset import DEFAULT_TEMPLATE_PATH, load_template
from fluorosim.models.template.targets import patient_targets
from fluorosim.models.tissue import BONE_LABELS

pytestmark = pytest.mark.slow


def _template_path() -> Path:
    return Path(os.environ.get("FLUOROSIM_TEST_TEMPLATE") or DEFAULT_TEMPLATE_PATH)


@pytest.fixture(scope="module")
def template():
    path = _template_path()
    if not path.exists():
        pytest.skip(f"no bone template at {path} (the asset is not shipped yet)")
    saved = real_skeleton.TEMPLATE_LOADER
    real_skeleton.TEMPLATE_LOADER = lambda: load_template(path)
    real_skeleton.placed_skeleton.cache_clear()
    try:
        yield path
    finally:
        real_skeleton.TEMPLATE_LOADER = saved
        real_skeleton.placed_skeleton.cache_clear()


@pytest.fixture(scope="module")
def patient(template):
    return build_patient(PatientParameters(skeleton="real"))


@pytest.fixture(scope="module")
def pelvis_only(template):
    """The sacrum and hip bones alone: nothing painted over the bone (no roots, no vessels)."""
    return build_patient(PatientParameters(skeleton="real"), parts=("sacrum", "pelvis"))


def _voxel(patient, point) -> tuple[int, int, int]:
    ijk = np.linalg.solve(patient.lps_from_voxel, np.r_[np.asarray(point, float), 1.0])[:3]
    return tuple(int(round(c)) for c in ijk)  # type: ignore[return-value]


def test_every_level_and_bone_is_labelled(patient) -> None:
    present = set(np.unique(patient.labels).tolist())
    wanted = [
        *(f"{lv}_{piece}" for lv in LUMBAR_LEVELS for piece in ("body", "posterior_elements")),
        *(f"{lv}_pedicle_{side}" for lv in LUMBAR_LEVELS for side in SIDES),
        *(f"disc_{a}_{b}" for a, b in DISC_LEVELS),
        "sacrum",
        "coccyx",
        "ilium_left",
        "ilium_right",
        "sij_space_left",
        "sij_space_right",
    ]
    missing = [name for name in wanted if LABEL_TABLE[name] not in present]
    assert not missing


def test_every_landmark_of_the_primitive_bones_is_published(patient) -> None:
    names = [*landmark_names("lumbar"), *landmark_names("sacrum"), *landmark_names("pelvis")]
    missing = [name for name in names if name not in patient.landmarks]
    assert not missing
    for name in names:
        assert np.all(np.isfinite(np.asarray(patient.landmarks[name])))


def test_sacral_foramina_are_open(pelvis_only) -> None:
    patient = pelvis_only
    bone_values = {LABEL_TABLE[name] for name in BONE_LABELS}
    for level in ("S1", "S2"):
        for side in SIDES:
            front = np.asarray(patient.landmarks[f"{level}_foramen_anterior_{side}"])
            back = np.asarray(patient.landmarks[f"{level}_foramen_posterior_{side}"])
            hits = []
            for t in np.linspace(0.0, 1.0, 41):
                value = patient.labels[_voxel(patient, front + t * (back - front))]
                if int(value) in bone_values:
                    hits.append(round(float(t), 3))
            assert not hits, (level, side, hits)


def _disc_heights(patient, upper: str, lower: str) -> tuple[float, float]:
    """(anterior, posterior) disc height: the disc's extent along its axis in the front and back
    quarters of its depth, midline ±5 mm."""
    mask = patient.labels == LABEL_TABLE[f"disc_{upper}_{lower}"]
    ijk = np.argwhere(mask)
    points = (patient.lps_from_voxel @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3]
    top = np.asarray(patient.landmarks[f"{upper}_inferior_endplate_center"])
    bottom = np.asarray(patient.landmarks[f"{lower}_superior_endplate_center"])
    axis = (top - bottom) / np.linalg.norm(top - bottom)
    posterior = np.array([0.0, 1.0, 0.0]) - axis[1] * axis
    posterior /= np.linalg.norm(posterior)
    rel = points - 0.5 * (top + bottom)
    v, h = rel @ posterior, rel @ axis
    mid = np.abs(rel[:, 0]) < 5.0
    depth = np.ptp(v[mid])
    front = mid & (v < v[mid].min() + 0.3 * depth)
    back = mid & (v > v[mid].max() - 0.3 * depth)

    def height(sel):
        return float(np.percentile(h[sel], 98) - np.percentile(h[sel], 2))

    return height(front), height(back)


@pytest.mark.parametrize(("upper", "lower"), [("L4", "L5"), ("L5", "S1")])
def test_lower_discs_are_taller_in_front(patient, upper: str, lower: str) -> None:
    anterior, posterior = _disc_heights(patient, upper, lower)
    assert anterior > posterior + 1.0, (anterior, posterior)
    assert 4.0 < posterior < 20.0 and 8.0 < anterior < 28.0


def test_bone_edges_are_partial_volume(patient) -> None:
    sacrum = patient.labels == LABEL_TABLE["sacrum"]
    inside = sacrum & np.roll(sacrum, 1, 0) & np.roll(sacrum, -1, 0)
    edge = sacrum & ~inside
    hu = patient.hu[edge].astype(float)
    # edge voxels take many intermediate values, not one bone value and one soft-tissue value
    assert len(np.unique(np.round(hu / 20.0))) > 30


def test_cortex_is_denser_than_the_cancellous_core(patient) -> None:
    body = patient.labels == LABEL_TABLE["L3_body"]
    centre = _voxel(patient, patient.landmarks["L3_body_center"])
    core = patient.hu[centre[0] - 3 : centre[0] + 4, centre[1] - 3 : centre[1] + 4, centre[2]]
    assert 60.0 < float(core.mean()) < 300.0
    # the endplate rim (ring apophysis) is the densest part of the body
    assert np.percentile(patient.hu[body], 99) > float(core.mean()) + 300.0


def test_outlet_lateral_and_oblique_views_are_in_their_ranges(patient) -> None:
    from fluorosim.render.views import ideal_joints

    outlet = ideal_joints(patient, "outlet")
    lateral = ideal_joints(patient, "lateral")
    assert 29.0 <= outlet.angular_deg <= 52.0, f"outlet tilt {outlet.angular_deg:.1f}°"
    assert abs(abs(lateral.orbital_deg) - 90.0) < 8.0
    for side, sign in (("left", -1.0), ("right", 1.0)):
        oblique = ideal_joints(patient, "oblique", side=side, level="L4_L5")
        assert 15.0 <= sign * oblique.orbital_deg <= 45.0, (side, oblique.orbital_deg)


def test_inlet_view_is_in_its_range(patient) -> None:
    from fluorosim.render.views import ideal_joints

    inlet = ideal_joints(patient, "inlet")
    assert -38.0 <= inlet.angular_deg <= -12.0, f"inlet tilt {inlet.angular_deg:.1f}°"


def test_femoral_heads_sit_in_the_acetabula(patient) -> None:
    for side in SIDES:
        head = np.asarray(patient.landmarks[f"femoral_head_center_{side}"])
        sign = 1.0 if side == "left" else -1.0
        assert sign * head[0] > 60.0
        # the head centre is inside the femur label, surrounded by the hip bone above
        assert patient.labels[_voxel(patient, head)] == LABEL_TABLE[f"femur_{side}"]
        above = patient.labels[_voxel(patient, head + np.array([0.0, 0.0, 30.0]))]
        assert above == LABEL_TABLE[f"ilium_{side}"]


#: Pedicle transverse width L1→L5 (Zindrick et al. 1987, anatomy.md).
ZINDRICK_PEDICLE_WIDTH_MM = dict(zip(LUMBAR_LEVELS, (8.7, 8.9, 10.3, 12.9, 18.0), strict=True))


#: The Visible Human's L3 pedicles are the tallest (23.4 mm), their undersides only 5 mm above the
#: body's inferior endplate; since the lift fades into the notch behind the body's wall
#: (models.template.pedicle) they come as close to their drawn heights as the other levels
#: (tallest side over target, seeds 0–2: +1.8, +1.3, −0.3 mm; before: +5.4, +6.3, +1.3).
L3_OVER_TARGET_MM = 2.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pedicles_are_warped_to_their_drawn_heights(template, seed) -> None:
    """The template's pedicles are 17–24 mm tall (the vertical chord through the isthmus, where
    Zindrick 1987 gives ≈15 mm), which left the exiting roots no room under them; the warp lowers
    their undersides toward the height drawn for the patient: measured on the placed bone as the
    neural part reads it, each is at most 1 mm under that height and at most 2.5 mm over it
    (L3: L3_OVER_TARGET_MM), within Zindrick's mean −4 / +4.5 mm (the drawn heights spread ±2 SD,
    3.8 mm), and its top stays within 4 mm of the upper endplate (only the underside
    moves)."""
    params = PatientParameters(seed=seed, skeleton="real")
    targets = patient_targets(params)
    skeleton = real_skeleton.placed_skeleton(params)
    for level, zindrick in zip(LUMBAR_LEVELS, (15.4, 15.0, 14.9, 14.8, 14.0), strict=True):
        target = targets.vertebrae[level].pedicle_height_mm
        over, spread = (L3_OVER_TARGET_MM, 4.5) if level == "L3" else (2.5, 4.5)
        for side in SIDES:
            pedicle = real_skeleton.pedicle_geometry(skeleton, level, side)
            height = pedicle.height_mm
            assert target - 1.0 <= height <= target + over, (level, side, height, target)
            assert -4.0 <= height - zindrick <= spread, (level, side, height)
            top = pedicle.centre_local[2] + height / 2
            assert skeleton.half_heights_mm[level] - 4.0 < top, (level, side, top)


#: Drawn canal (models.template.targets) vs the placed bone's, measured as models.yardstick
#: measures the population-mean shape (mm); the old warp (generator 5.4) left L2–L5 1.5–6 mm short.
CANAL_TOLERANCE_MM = 1.5
CANAL_PATIENTS = [(0, "male"), (1, "male"), (2, "male"), (0, "female")]


def placed_canals(params: PatientParameters) -> dict[str, tuple[float, float]]:
    """(width, depth) of each placed L1–L5 as the yardstick measures them."""
    import pyvista as pv

    from fluorosim.models import yardstick

    skeleton = real_skeleton.placed_skeleton(params)
    canals = {}
    for level in LUMBAR_LEVELS:
        bone = skeleton.bones[level]
        faces = np.c_[np.full(len(bone.faces), 3), bone.faces].ravel()
        dims = yardstick.measure_vertebra(pv.PolyData(bone.vertices_mm, faces))
        canals[level] = (dims.canal_width_mm, dims.canal_depth_mm)
    return canals


def canal_misses(
    targets, canals: dict[str, tuple[float, float]]
) -> list[tuple[str, str, float, float]]:
    """(level, dimension, measured, drawn) wherever the placed canal misses its drawn target."""
    misses = []
    for level, (width, depth) in canals.items():
        vertebra = targets.vertebrae[level]
        for name, got, drawn in (
            ("width", width, vertebra.canal_width_mm),
            ("depth", depth, vertebra.canal_depth_mm),
        ):
            if abs(got - drawn) > CANAL_TOLERANCE_MM:
                misses.append((level, name, got, drawn))
    return misses


@pytest.mark.parametrize(("seed", "sex"), CANAL_PATIENTS)
def test_canal_is_warped_to_its_drawn_width_and_depth(template, seed, sex) -> None:
    """Each placed L1–L5 canal, measured as the yardstick measures the population-mean shape
    (Clouthier et al. 2023), lies within 1.5 mm of the width and depth drawn for the patient and
    L2–L5 within Clouthier's L2–L5 range (21.5–31.8 / 13.0–20.4 mm; L5's width, whose lateral
    recesses the mean shape too puts above that range, within its own ±2 SD). The template's
    canals are 3–6 mm narrower and shallower, so the warp that ignored them fails this; L1, kept
    with the template's and scaled with its body, read 14.5 × 11.5 mm on the default patient."""
    from fluorosim.models.template.targets import canal_bounds_mm

    params = PatientParameters(seed=seed, sex=sex, skeleton="real")
    targets = patient_targets(params)
    canals = placed_canals(params)
    assert not canal_misses(targets, canals)
    for level, (width, depth) in canals.items():
        if level == "L1":
            continue
        low, high = canal_bounds_mm("width", level)
        assert low - CANAL_TOLERANCE_MM <= width <= high + CANAL_TOLERANCE_MM, (level, width)
        low, high = canal_bounds_mm("depth", level)
        assert low - CANAL_TOLERANCE_MM <= depth <= high + CANAL_TOLERANCE_MM, (level, depth)


def test_template_canal_constants_are_the_template_measured(template) -> None:
    """targets.TEMPLATE_CANAL_MM (L1's canal is the template's scaled as the patient's L2–L5) is
    what the yardstick measures on the shipped template's L1–L5."""
    import pyvista as pv

    from fluorosim.models import yardstick
    from fluorosim.models.template.targets import TEMPLATE_CANAL_MM

    loaded = real_skeleton.TEMPLATE_LOADER()
    for n, level in enumerate(LUMBAR_LEVELS):
        bone = loaded.bones[level]
        faces = np.c_[np.full(len(bone.faces), 3), bone.faces].ravel()
        dims = yardstick.measure_vertebra(pv.PolyData(np.asarray(bone.vertices_mm), faces))
        assert dims.canal_width_mm == pytest.approx(TEMPLATE_CANAL_MM["width"][n], abs=0.25)
        assert dims.canal_depth_mm == pytest.approx(TEMPLATE_CANAL_MM["depth"][n], abs=0.25)


def test_the_canal_test_fails_without_the_canal_shift(template) -> None:
    """The check above can fail: the template warped with the canal left as scanned (no drawn
    canal: generator 5.4's warp) misses the drawn canal at several levels."""
    from dataclasses import replace

    import pyvista as pv

    from fluorosim.models import yardstick
    from fluorosim.models.template.warp import patient_warp

    params = PatientParameters(seed=0, skeleton="real")
    targets = patient_targets(params)
    plain = replace(
        targets,
        vertebrae={
            level: replace(v, canal_width_mm=None, canal_depth_mm=None)
            for level, v in targets.vertebrae.items()
        },
    )
    warp = patient_warp(real_skeleton.TEMPLATE_LOADER(), plain)
    canals = {}
    for level in ("L2", "L3", "L4", "L5"):
        mesh = warp.warp_bone(level)
        faces = np.c_[np.full(len(mesh.faces), 3), mesh.faces].ravel()
        dims = yardstick.measure_vertebra(pv.PolyData(np.asarray(mesh.vertices_mm), faces))
        canals[level] = (dims.canal_width_mm, dims.canal_depth_mm)
    assert len(canal_misses(targets, canals)) >= 4


def test_label_isthmus_agrees_with_the_bone_surface(template, patient) -> None:
    """``measure.pedicle_dimensions`` reads the labelled volume as a radiologist reads CT; on the
    real default it measures the isthmus that :func:`real_skeleton.pedicle_geometry` finds on the
    bone surface (the label-only chord read 0.0 mm at L4 and L5, the pedicle label being a ~4 mm
    slab). Measured: widths within 0.8 mm (mostly under: a chord's ends snap to voxel faces),
    heights within 0.9 mm; bounds one voxel and a voxel plus a sample."""
    skeleton = real_skeleton.placed_skeleton(PatientParameters(skeleton="real"))
    for level in LUMBAR_LEVELS:
        for side in SIDES:
            surface = real_skeleton.pedicle_geometry(skeleton, level, side)
            label = measure.pedicle_dimensions(patient, level, side)
            assert abs(label.width_mm - surface.width_mm) <= 1.0, (level, side, label, surface)
            assert abs(label.height_mm - surface.height_mm) <= 1.25, (level, side, label, surface)


def test_pedicles_canal_and_kambin_are_measured_on_the_bone(template, patient) -> None:
    """Pedicle widths within 4 mm of Zindrick 1987 (about two SD; the old spread of every vertex
    beside the midline read 18–29 mm at L3–L5); the canal widening caudally with L5 within two SD
    of Cook & Baker 2021 (28.2 ± 3.1 mm), never at the 10 mm floor; the L4-5 Kambin incentre
    lateral of the L4 pedicle's medial wall (the needle's AP target is the medial pedicular line,
    procedures.md) and medial of the L5 pedicle's centre."""
    skeleton = real_skeleton.placed_skeleton(PatientParameters(skeleton="real"))
    layout = real_skeleton.real_lumbar_layout(skeleton)
    for level in LUMBAR_LEVELS:
        dims = layout.levels[level]
        assert abs(dims.pedicle_width_mm - ZINDRICK_PEDICLE_WIDTH_MM[level]) <= 4.0, level
        assert dims.canal_width_mm > 12.0, level
    widths = [layout.levels[level].canal_width_mm for level in LUMBAR_LEVELS]
    # caudal widening: L5 widest, L4 wider than L1–L3; L1–L3 within 2.5 mm of each other (the
    # medial pedicle walls: L1 21.0, L2 19.3, L3 20.4 mm on the default patient, generator 5.10;
    # through 5.9 L1's canal was the template's scaled with its small body, 14.5 mm wide)
    assert widths[-1] == max(widths) and widths[3] >= max(widths[:3])
    assert max(widths[:3]) - min(widths[:3]) <= 2.5, widths
    assert 28.2 - 2 * 3.1 <= widths[-1] <= 28.2 + 2 * 3.1
    l4, l5 = layout.levels["L4"], layout.levels["L5"]
    for side in SIDES:
        centre = np.asarray(patient.landmarks[f"kambin_L4_L5_{side}_center"], float)
        u = abs(float(layout.body_frames["L5"].to_local(*centre)[0]))
        assert l4.canal_width_mm / 2 <= u <= l5.pedicle_center_u_mm, side
