"""Lumbar spine MEASURED on the generated label volume against the published ranges (anatomy.md).

Each check runs on the default patient and on a spread of seeds, so a shape that only happens to
fit one patient fails. Ranges: Clouthier 2023 (CT, L2–L5 range), Zindrick 1987 (pedicles),
Cook & Baker 2021 (L5), Jentzsch 2013 (facet angles), disc-height table of anatomy.md.

These pin the primitive generator (``skeleton="primitive"``, still an option: its segmental
lordosis, cancellous HU, waist and variant construction). The ranges a user relies on whatever
the generator — vertebral body dimensions (Clouthier), the taller anterior L5 (Cook & Baker),
the pedicle isthmus (Zindrick), separate spinous processes on AP — also run on the real default
(generator 5.0) and its seeds.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS
from fluorosim.models.phantom import PatientParameters, build_patient, measure
from fluorosim.models.phantom.lumbar import SEGMENTAL_LORDOSIS_DEG, cancellous_hu
from fluorosim.models.template.targets import canal_bounds_mm, patient_targets
from tests.models.phantom.spine_patients import (
    PRIMITIVE_IDS,
    REAL_IDS,
    SEEDS,
    default_patient,
    on_both_generators,
    patient_for,
    seed_for,
    spine_patient,
)

ZINDRICK_PEDICLE_WIDTH_MM = dict(zip(LUMBAR_LEVELS, (8.7, 8.9, 10.3, 12.9, 18.0), strict=True))
ZINDRICK_PEDICLE_HEIGHT_MM = dict(zip(LUMBAR_LEVELS, (15.4, 15.0, 14.9, 14.8, 14.0), strict=True))
DISC_MID_MM = {"L1_L2": 10.0, "L2_L3": 11.6, "L3_L4": 12.5, "L4_L5": 13.8, "L5_S1": 13.0}
JENTZSCH_FACET_DEG = {"L2_L3": 30.4, "L3_L4": 38.7, "L4_L5": 47.0}


def patients():
    return [("default", default_patient("primitive"))] + [
        (f"seed{s}", spine_patient(s, "primitive")) for s in SEEDS
    ]


@pytest.fixture(scope="module", params=PRIMITIVE_IDS)
def patient(request):
    return patient_for(request.param)


@on_both_generators()
@pytest.mark.parametrize("level", ["L2", "L3", "L4", "L5"])
def test_body_dimensions_within_clouthier_ranges(patient, level):
    body = measure.body_dimensions(patient, level)
    assert 39.4 <= body.width_mm <= 58.8
    assert 29.5 <= body.depth_mm <= 42.0
    assert 23.5 <= body.height_mm <= 32.3, body.height_mm


@pytest.mark.parametrize("patient_id", REAL_IDS)
def test_real_body_heights_follow_their_drawn_targets(patient_id):
    """The labelled bodies measure the heights drawn for the patient (the warp fits the whole
    bone's endplates, which the body label reaches; issue #13: they came out 0.8–1.7 mm taller,
    every level). The ends of a label chord snap to 1 mm voxel faces and the wall heights are
    medians over a band, so a level reads within about ±0.7 mm of a bone whose walls the warp
    fits within 0.3 (test_warp): seed 2's L4 read −0.69 on generator 5.7 and −0.81 on 5.9, whose
    wider body moves the label frame, while its warped bone's walls moved by 0.01 mm. 0.9 leaves
    a sample of margin; the five levels together by at most 0.4 (seed 0: −0.33)."""
    patient = patient_for(patient_id)
    seed = seed_for(patient_id)
    targets = patient_targets(PatientParameters(seed=seed, skeleton="real"))
    errors = []
    for level in LUMBAR_LEVELS:
        height = measure.body_dimensions(patient, level).height_mm
        errors.append(height - targets.vertebrae[level].body_height_mm)
        assert abs(errors[-1]) <= 0.9, (level, height)
    assert abs(float(np.mean(errors))) <= 0.4, errors


@on_both_generators()
def test_l5_is_taller_anteriorly_as_cook_and_baker(patient):
    body = measure.body_dimensions(patient, "L5")
    # 30.3±1.9 anterior vs 26.3±1.9 posterior; each wall's label chord snaps to voxel faces, so
    # the difference reads within about ±0.9 mm of the bone's: real seed 2 draws 2.1 mm, its warped
    # bone has 1.7 and its labels read 1.25 (generator 5.9; 2.25 on 5.7)
    assert body.height_anterior_mm - body.height_posterior_mm >= 1.0
    assert 30.3 - 2 * 1.9 - 1.0 <= body.height_anterior_mm <= 30.3 + 2 * 1.9


@on_both_generators()
@pytest.mark.parametrize("level", LUMBAR_LEVELS)
def test_pedicles_match_zindrick_within_tolerance(patient, level):
    """Isthmus width and height through the bone (issue: on the real generator the pedicle label
    is a ~4 mm slab and the label-only chord read 0.0 mm at L4 and L5)."""
    for side in ("left", "right"):
        pedicle = measure.pedicle_dimensions(patient, level, side)
        # ±30 % of the mean and at most one voxel of partial-volume loss more
        width = ZINDRICK_PEDICLE_WIDTH_MM[level]
        assert 0.7 * width - 1.0 <= pedicle.width_mm <= 1.3 * width, (side, pedicle)
        height = ZINDRICK_PEDICLE_HEIGHT_MM[level]
        assert 0.8 * height <= pedicle.height_mm <= 1.2 * height + 1.0, (side, pedicle)


@on_both_generators()
@pytest.mark.parametrize("side", ["left", "right"])
def test_pedicles_widen_caudally_and_l5_is_widest(patient, side, request):
    """Zindrick 1987: L1 8.7, L5 18.0 mm. On the real generator L5 leads L1 by less (measured
    L5 − L1 on the default, seeds 1 and 2: 5.0 / 3.5 / 5.0 mm; 7.0 before generator 5.5): the
    drawn L5 canal moves L5's pedicles out, they join the body at its back corners, and the body,
    designed narrower so that it keeps its drawn width, takes 1–2.75 mm off their roots."""
    widths = [measure.pedicle_dimensions(patient, lv, side).width_mm for lv in LUMBAR_LEVELS]
    real = request.node.callspec.params["patient"].startswith("real")
    assert widths[4] == max(widths), widths
    assert widths[4] > widths[0] + (3.0 if real else 5.0), widths
    assert widths[3] > widths[1], widths


@pytest.mark.parametrize("patient_id", REAL_IDS)
@pytest.mark.parametrize("level", ["L4", "L5"])
def test_real_pedicle_isthmus_lies_in_the_bony_corridor(patient_id, level):
    """Where the label-only chord read 0.0 mm, the isthmus is found in the pedicle's bone: the
    chord's midpoint is bone of the level, more than 8 mm lateral of the midline (beside the
    canal, not in the body's middle or the spinous process) and within the axial search around
    the pedicle-centre landmark."""
    patient = patient_for(patient_id)
    frame = measure.vertebra_frame(patient, level)
    bone = {patient.label_value(f"{level}_{part}") for part in ("body", "posterior_elements")}
    for side in ("left", "right"):
        pedicle = measure.pedicle_dimensions(patient, level, side)
        assert pedicle.isthmus_lps is not None
        mid = np.asarray(pedicle.isthmus_lps)
        bone_here = bone | {patient.label_value(f"{level}_pedicle_{side}")}
        assert int(patient.labels_at(mid[None, :])[0]) in bone_here, side
        centre = patient.landmark(f"{level}_pedicle_center_{side}")
        assert np.linalg.norm(mid - centre) <= 8.0, (side, mid - centre)
        assert abs(float((mid - frame.origin) @ frame.u)) > 8.0, side


@on_both_generators()
@pytest.mark.parametrize("level", ["L2", "L3", "L4", "L5"])
def test_canal_within_clouthier_ranges(patient, level):
    """Depth 16.7 (13.0–20.4) and width 26.7 (21.5–31.8) at L2–L4 (Clouthier 2023); L5's width,
    measured across the whole enclosed canal as Clouthier's mean surface reads 35.5 there, within
    ±2 SD of Cook & Baker 2021 around that mean (canal_bounds_mm), with a voxel of tolerance on
    each wall (a patient drawn at the range's end reads up to 1.5 mm inside it on 1 mm labels:
    real seed 2's L3 and L4). The label measure read 14–22 mm at the real generator's L2–L3 when
    it measured between the pedicle labels (slabs there) instead of the bone."""
    canal = measure.canal_dimensions(patient, level)
    for name, value in (("depth", canal.depth_mm), ("width", canal.width_mm)):
        low, high = canal_bounds_mm(name, level)
        assert low - 2.0 <= value <= high + 2.0, (name, value)


#: Measured (generator 5.6): the labels read the drawn canal width within −2.6…+1.7 mm (mean over
#: L2–L5 −0.8…−1.2: a bone label's 1 mm voxels take ≈ half a voxel off each wall of the 0.5 mm
#: solid the warp is fitted on) and its depth within 0.7 mm.
REAL_CANAL_WIDTH_TOLERANCE_MM = 3.0
REAL_CANAL_MEAN_WIDTH_TOLERANCE_MM = 1.5
REAL_CANAL_DEPTH_TOLERANCE_MM = 1.0


@pytest.mark.parametrize("patient_id", REAL_IDS)
def test_real_canal_labels_read_the_drawn_canal(patient_id):
    """The canal drawn for a real-generator patient (Clouthier 2023 / Cook & Baker 2021, warped
    to as models.yardstick measures the bone surface) is what the label measure reads."""
    patient = patient_for(patient_id)
    seed = seed_for(patient_id)
    targets = patient_targets(PatientParameters(seed=seed, skeleton="real"))
    width_errors = []
    for level in LUMBAR_LEVELS:
        canal = measure.canal_dimensions(patient, level)
        drawn = targets.vertebrae[level]
        width_errors.append(canal.width_mm - drawn.canal_width_mm)
        assert abs(width_errors[-1]) <= REAL_CANAL_WIDTH_TOLERANCE_MM, (level, canal)
        assert abs(canal.depth_mm - drawn.canal_depth_mm) <= REAL_CANAL_DEPTH_TOLERANCE_MM, (
            level,
            canal,
        )
    assert abs(float(np.mean(width_errors))) <= REAL_CANAL_MEAN_WIDTH_TOLERANCE_MM, width_errors


#: Measured (generator 5.9, labels − drawn): the label measure (``phantom show``) −0.7…+0.5 mm
#: at L1–L5 of the default and seeds 1 and 2; the yardstick on the label surface −0.4…+0.9 (L5
#: the most: its pedicles' roots reach forward to the body's back corners, so the label body's
#: centroid, where the yardstick cuts its section, lies a little further back, where L5 is
#: wider), means over L2–L5 +0.3…+0.4. Before generator 5.9 the warp fitted the body-only mesh's
#: widest extent and the default's L4 read 40.3 against its drawn 46.2.
REAL_BODY_WIDTH_TOLERANCE_MM = 1.0
REAL_YARDSTICK_WIDTH_TOLERANCE_MM = 1.75
REAL_YARDSTICK_MEAN_WIDTH_TOLERANCE_MM = 1.0


@pytest.mark.parametrize("patient_id", REAL_IDS)
def test_real_body_labels_read_the_drawn_width(patient_id):
    """The body width drawn for a real-generator patient (Clouthier 2023) is what its labels read:
    the mean of the body's left–right extents through its centre over its height, the measure on
    which Clouthier's own mean shape reads 47.6 mm against the 46.7 they publish (its waist alone
    reads 43.5, its rims 51.5–55.5), both as the label measure and as models.yardstick reads the
    label surface."""
    from fluorosim.models import yardstick

    patient = patient_for(patient_id)
    targets = patient_targets(PatientParameters(seed=seed_for(patient_id), skeleton="real"))
    for level in LUMBAR_LEVELS:
        width = measure.body_dimensions(patient, level).width_mm
        drawn = targets.vertebrae[level].body_width_mm
        assert abs(width - drawn) <= REAL_BODY_WIDTH_TOLERANCE_MM, (level, width, drawn)
    errors = []
    for level in yardstick.LEVELS:
        dims = yardstick.measure_vertebra(yardstick.vertebra_surface(patient, level))
        errors.append(dims.body_mean_width_mm - targets.vertebrae[level].body_width_mm)
        assert abs(errors[-1]) <= REAL_YARDSTICK_WIDTH_TOLERANCE_MM, (level, dims)
    assert abs(float(np.mean(errors))) <= REAL_YARDSTICK_MEAN_WIDTH_TOLERANCE_MM, errors


@pytest.mark.parametrize(("upper", "lower"), DISC_LEVELS)
def test_disc_heights_wedge_anteriorly_with_published_middle_height(patient, upper, lower):
    disc = measure.disc_heights(patient, upper, lower)
    assert disc.anterior_mm > disc.posterior_mm
    mid = DISC_MID_MM[f"{upper}_{lower}"]
    assert 0.7 * mid <= disc.middle_mm <= 1.35 * mid


@pytest.mark.parametrize("joint", sorted(JENTZSCH_FACET_DEG))
def test_facet_angles_match_jentzsch(patient, joint):
    upper, lower = joint.split("_")
    for side in ("left", "right"):
        angle = measure.facet_angle_deg(patient, upper, lower, side)
        assert abs(angle - JENTZSCH_FACET_DEG[joint]) <= 8.0, (side, angle)


#: The real generator turns each joint to the angle drawn for the patient (Jentzsch 2013's mean
#: with its spread: seed 1 draws L2/3 at 20–21°, 9–10° under the mean, by design), so its labels
#: are held to the draw. Measured (generator 5.6, labels − drawn, lumbar-only builds): default
#: −1.8…+1.0°, seed 1 −3.1…+0.1°, seed 2 −1.3…+4.1° (L2/3 left: the twist, kept short of the
#: pedicle, turns the 10 mm patch's rim less than its core); the joint is read on 1 mm voxels of
#: the patient's grid, the turn fitted on 1 mm solids of the meshes. L5/S1 (generator 5.7, its
#: seeds built with the sacrum): default −1.1/−0.6°, seed 1 0.0/+0.3°, seed 2 +0.1/+0.1°.
REAL_FACET_TOLERANCE_DEG = 4.5


@lru_cache(maxsize=2)
def real_spine_with_sacrum(seed: int):
    """A seed's lumbar spine with the sacrum painted (L5/S1's lower process is the sacrum's)."""
    params = PatientParameters(seed=seed, skeleton="real")
    return build_patient(params, parts=("lumbar", "neural", "sacrum"))


@pytest.mark.parametrize("joint", [*sorted(JENTZSCH_FACET_DEG), "L5_S1"])
@pytest.mark.parametrize("patient", REAL_IDS, indirect=True)
def test_real_facet_angles_follow_the_patients_draw(patient, request, joint):
    which = request.node.callspec.params["patient"].split("-")[1]
    seed = seed_for(request.node.callspec.params["patient"])
    drawn = patient_targets(PatientParameters(seed=seed, skeleton="real")).facet_angles_deg[joint]
    upper, lower = joint.split("_")
    if lower == "S1" and which != "default":  # the seeds' lumbar-only builds hold no sacrum
        patient = real_spine_with_sacrum(seed)
    for side in ("left", "right"):
        angle = measure.facet_angle_deg(patient, upper, lower, side)
        assert abs(angle - drawn[side]) <= REAL_FACET_TOLERANCE_DEG, (side, angle, drawn[side])


@on_both_generators()
def test_facets_turn_coronal_caudally(patient):
    angles = [measure.facet_angle_deg(patient, j[:2], j[3:], "left") for j in ("L2_L3", "L4_L5")]
    assert angles[1] > angles[0] + 8.0


def test_lordosis_between_l1_and_s1_is_the_scaled_segmental_sum():
    p = default_patient("primitive")
    axis_l1 = p.landmark("L1_superior_endplate_center") - p.landmark("L1_inferior_endplate_center")
    s1_normal = np.array([0.0, -math.sin(math.radians(38.0)), math.cos(math.radians(38.0))])
    angle = math.degrees(math.acos(axis_l1 @ s1_normal / np.linalg.norm(axis_l1)))
    # L1 body axis sits half its wedge away from its superior endplate normal
    expected = 0.74 * sum(SEGMENTAL_LORDOSIS_DEG) - (-3.0) / 2
    assert abs(angle - expected) < 3.0


def test_cortical_shell_over_textured_cancellous_core():
    p = default_patient("primitive")
    frame = measure.vertebra_frame(p, "L3")
    offsets = np.arange(0.0, 25.0, 0.5)
    line = frame.origin[None, :] - offsets[:, None] * frame.v[None, :]  # toward anterior
    labels = p.labels_at(line)
    hu = p.hu_at(line).astype(float)
    inside = labels == p.label_value("L3_body")
    last = np.nonzero(inside)[0].max()
    assert hu[last] > 600  # cortical rim (anatomy.md: cortical +700 to +1900)
    core = p.hu[p.labels == p.label_value("L3_body")].astype(float)
    core = core[core < 500]
    assert abs(np.median(core) - cancellous_hu(50.0)) < 25.0
    assert core.std() > 15.0  # trabecular texture, not a flat fill


def test_bone_density_falls_with_age_by_the_published_rate():
    young = spine_patient(0, "primitive", age_years=25.0)
    old = spine_patient(0, "primitive", age_years=80.0)

    def core(p):
        values = p.hu[p.labels == p.label_value("L2_body")].astype(float)
        return float(np.median(values[values < 500]))

    # −2.5 HU/year (anatomy.md): 226 at 25 y → ≈89 at 80 y
    assert core(young) - core(old) == pytest.approx(2.5 * 55.0, abs=15.0)
    assert core(young) == pytest.approx(226.0, abs=15.0)


def test_transitional_l5_has_large_transverse_processes_and_a_thin_disc():
    normal = spine_patient(0, "primitive")
    transitional = spine_patient(0, "primitive", variant="transitional_l5")

    def l5_span(p):
        ijk = np.argwhere(p.labels == p.label_value("L5_posterior_elements"))
        x = ijk[:, 0] * p.spacing_mm[0] + p.lps_from_voxel[0, 3]
        return float(x.max() - x.min())

    assert l5_span(transitional) > l5_span(normal) + 10.0
    thin = measure.disc_heights(transitional, "L5", "S1").middle_mm
    assert thin < 0.75 * measure.disc_heights(normal, "L5", "S1").middle_mm


def test_narrow_foramen_variant_narrows_the_l4_l5_foramen():
    normal = spine_patient(0, "primitive")
    narrow = spine_patient(0, "primitive", variant="narrow_foramen")
    for side in ("left", "right"):
        before = measure.foramen_height_mm(normal, "L4", "L5", side)
        after = measure.foramen_height_mm(narrow, "L4", "L5", side)
        assert after < 0.88 * before


def _mean_shape_vertebrae(shared_data):
    """L2–L5 vertex sets of the population-mean mesh (Clouthier 2023; +x anterior, y lateral)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    folder = shared_data / "lumbar-mean-shape"
    vertices = np.loadtxt(folder / "meanMesh_vertices.csv.gz", delimiter=",")
    faces = np.loadtxt(folder / "meanMesh_faces.csv.gz", delimiter=",", dtype=int) - 1
    n = len(vertices)
    rows = np.r_[faces[:, 0], faces[:, 1], faces[:, 2]]
    cols = np.r_[faces[:, 1], faces[:, 2], faces[:, 0]]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    count, component = connected_components(graph, directed=False)
    order = sorted(range(count), key=lambda c: -vertices[component == c][:, 2].mean())
    return {
        level: vertices[component == c]
        for level, c in zip(("L2", "L3", "L4", "L5"), order, strict=True)
    }


@pytest.mark.shared_data
def test_vertebra_extents_match_the_population_mean_shape(shared_data):
    """Antero-posterior extent (body front → spinous tip) and transverse-process span within 8 %
    of the mean CT shape of 87 patients; both are insensitive to the mesh's sagittal tilt."""
    mean_shape = _mean_shape_vertebrae(shared_data)
    p = default_patient("primitive")
    for level, vertices in mean_shape.items():
        frame = measure.vertebra_frame(p, level)
        names = ("body", "pedicle_left", "pedicle_right", "posterior_elements")
        points = np.concatenate([measure._voxels(p, f"{level}_{n}") for n in names])
        rel = points - frame.origin
        ap = float(np.ptp(rel @ frame.v)) + 1.0
        span = float(np.ptp(rel @ frame.u)) + 1.0
        assert ap == pytest.approx(float(np.ptp(vertices[:, 0])), rel=0.08), level
        assert span == pytest.approx(float(np.ptp(vertices[:, 1])), rel=0.08), level


# --- shape realism (issue #3): what makes the bodies and arches read as bone on fluoroscopy ----


@pytest.mark.parametrize("level", LUMBAR_LEVELS)
def test_bodies_have_a_waist_and_rounded_rims(patient, level):
    shape = measure.body_shape(patient, level)
    # mid-height cross-section (width × depth) 8–12 % smaller than the outline near the
    # endplates (concave walls); the 1 mm voxel outline moves each chord by up to 1 mm
    assert 0.05 <= shape.waist_fraction <= 0.18, shape
    # concave anterior wall: mid height at least 1 mm behind the endplate rim
    assert shape.front_mid_mm <= shape.front_endplate_mm - 1.0, shape
    # the anterior wall's outermost half millimetre is shorter than the wall 6 mm inside
    assert shape.height_at_edge_mm < shape.height_inside_mm - 2.0, shape


def test_mean_waist_is_eight_to_twelve_percent():
    fractions = [
        measure.body_shape(p, level).waist_fraction
        for _, p in patients()
        for level in LUMBAR_LEVELS
    ]
    assert 0.08 <= float(np.mean(fractions)) <= 0.12


def test_ring_apophysis_denser_than_the_waist_wall():
    p = default_patient("primitive")
    for level in LUMBAR_LEVELS:
        ring, waist = measure.body_cortex_hu(p, level)
        assert ring > waist + 150.0, (level, ring, waist)
        assert waist > 600.0  # still a cortical wall (partial volume of a thin shell)


@on_both_generators()
@pytest.mark.parametrize(
    ("upper", "lower"), [("L1", "L2"), ("L2", "L3"), ("L3", "L4"), ("L4", "L5")]
)
def test_spinous_processes_are_separate_on_ap(patient, upper, lower):
    """Each spinous process is its own tear-drop: a gap between neighbours, not a midline bar."""
    assert measure.spinous_gap_mm(patient, upper, lower) >= 2.0


def test_spinous_process_is_thin_above_and_thick_below():
    """Tear-drop cross-section: thin superior border, thicker inferior border (AP tear-drop)."""
    p = default_patient("primitive")
    for level in ("L2", "L3", "L4"):
        f = measure.vertebra_frame(p, level)
        low, high = measure.spinous_extent_mm(p, level)
        points = measure._voxels(p, f"{level}_posterior_elements")
        rel = points - f.origin
        mid_v = float(np.median(rel[np.abs(rel @ f.u) < 5.0] @ f.v))
        band = (np.abs(rel @ f.v - mid_v) < 3.0) & (np.abs(rel @ f.u) < 8.0)

        def thickness(z0, z1, rel=rel, band=band, points=points, f=f):
            sel = band & (points[:, 2] >= z0) & (points[:, 2] <= z1)
            return float(np.ptp(rel[sel] @ f.u)) + 1.0 if sel.any() else 0.0

        span = high - low
        top = thickness(high - 0.3 * span, high)
        bottom = thickness(low + 0.15 * span, low + 0.45 * span)
        assert bottom >= top + 2.0, (level, top, bottom)
