"""The generated hip bones and sacroiliac joints, measured from their labels (anatomy.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluorosim.models.phantom.parts import Grid, PatientParameters
from fluorosim.models.phantom.pelvis import ilia_part
from fluorosim.models.phantom.sacrum import sacrum_part
from tests.models.phantom.test_sacrum import Painted, reference_anchors

VOXEL_MM = 1.5
SIDES = ("left", "right")


class Combined:
    """Sacrum and ilia painted together (the joint space lies between them)."""

    def __init__(self, grid: Grid, *results) -> None:
        merged = type(results[0])()
        for result in results:
            merged.pieces += result.pieces
            merged.landmarks.update(result.landmarks)
        self.painted = Painted(grid, merged)


def pelvis_grid(voxel_mm: float = VOXEL_MM) -> Grid:
    return Grid.covering(
        np.array([-160.0, -130.0, -200.0]), np.array([160.0, 100.0, 90.0]), voxel_mm
    )


_CACHE: dict[tuple, Painted] = {}


def build(seed: int = 0, variant: str | None = None) -> Painted:
    key = (seed, variant)
    if key not in _CACHE:
        grid = pelvis_grid()
        params = PatientParameters(seed=seed, variant=variant)
        anchors = reference_anchors()
        _CACHE[key] = Combined(
            grid, sacrum_part(grid, params, anchors), ilia_part(grid, params, anchors)
        ).painted
    return _CACHE[key]


@pytest.fixture(scope="module")
def default() -> Painted:
    return build()


def joint_area_cm2(pelvis: Painted, side: str) -> float:
    """Mid-surface area of the joint-space label: columns along the plane normal × voxel area.

    The normal is the least-variance direction of the label's voxels; each column of voxels along
    the dominant axis of that normal counts once, divided by the normal's cosine to that axis.
    """
    pts = pelvis.points(f"sij_space_{side}")
    centred = pts - pts.mean(axis=0)
    normal = np.linalg.svd(centred, full_matrices=False)[2][2]
    axis = int(np.argmax(np.abs(normal)))
    keep = [a for a in range(3) if a != axis]
    columns = {tuple(row) for row in np.rint(pts[:, keep] / VOXEL_MM).astype(int)}
    return len(columns) * VOXEL_MM**2 / abs(normal[axis]) / 100.0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("side", SIDES)
def test_si_joint_area_near_published(seed, side):
    """SIJ articular area ≈17.5 cm² (anatomy.md, reviews); allow ±25 % for shape and voxels."""
    area = joint_area_cm2(build(seed), side)
    assert 17.5 * 0.75 <= area <= 17.5 * 1.25, area


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interauricular_distance_within_published_range(seed):
    """108.7 ± 11.0 mm (mean ± 2 SD): the widest distance between the two auricular surfaces.

    The joint planes converge posteriorly and caudally, so the distance between the joint
    centroids is smaller; it must still exceed the S1 body width (40.3 ± 7.0) by far.
    """
    pelvis = build(seed)
    left = pelvis.points("sij_space_left")
    right = pelvis.points("sij_space_right")
    distance = float(left[:, 0].max() - right[:, 0].min())
    assert 108.7 - 2 * 11.0 <= distance <= 108.7 + 2 * 11.0, distance
    centroids = float(np.linalg.norm(left.mean(axis=0) - right.mean(axis=0)))
    assert 75.0 <= centroids <= distance


@pytest.mark.parametrize("side", SIDES)
def test_joint_space_lies_between_sacrum_and_ilium(default, side):
    """Across the joint surface: sacrum medially, ilium laterally, a 1–2 mm space between."""
    surface = default.landmarks[f"sij_surface_{side}"]
    centred = surface - surface.mean(axis=0)
    normal = np.linalg.svd(centred, full_matrices=False)[2][2]
    if (normal[0] > 0) != (side == "left"):
        normal = -normal
    sacrum, ilium = default.value("sacrum"), default.value(f"ilium_{side}")
    medial = default.label_at(surface - 3.0 * normal)
    lateral = default.label_at(surface + 3.0 * normal)
    assert np.mean(medial == sacrum) > 0.8
    assert np.mean(lateral == ilium) > 0.9
    at_surface = default.label_at(surface)
    assert np.mean(at_surface == default.value(f"sij_space_{side}")) > 0.85
    # The space is thin: fewer voxels along the normal than 2 mm allows at this voxel size.
    volume = len(default.points(f"sij_space_{side}")) * VOXEL_MM**3
    area = joint_area_cm2(default, side) * 100.0
    assert volume / area <= 2.0 + VOXEL_MM


def test_sij_landmarks_sit_on_the_joint(default):
    for side in SIDES:
        center = default.landmarks[f"sij_center_{side}"]
        surface = default.landmarks[f"sij_surface_{side}"]
        assert surface.ndim == 2 and surface.shape[1] == 3 and len(surface) > 100
        assert np.linalg.norm(center - surface.mean(axis=0)) < 1e-9
        assert (center[0] > 0) == (side == "left")


@pytest.mark.parametrize("side", SIDES)
def test_icd_line_runs_along_the_ilium_anterior_and_caudal(default, side):
    """The ICD line (arcuate line cortex) slopes anteriorly-caudally like the pelvic inlet."""
    posterior = default.landmarks[f"icd_line_{side}_posterior"]
    anterior = default.landmarks[f"icd_line_{side}_anterior"]
    assert anterior[1] < posterior[1] and anterior[2] < posterior[2]
    slope = math.degrees(math.atan2(posterior[2] - anterior[2], posterior[1] - anterior[1]))
    assert 40.0 <= slope <= 75.0  # to the axial plane, at the reference 38° sacral slope
    ilium = default.value(f"ilium_{side}")
    for t in np.linspace(0.0, 1.0, 7):
        point = posterior + t * (anterior - posterior)
        near = point + np.stack(np.meshgrid(*[[-1.5, 0, 1.5]] * 3), -1).reshape(-1, 3)
        assert (default.label_at(near) == ilium).any(), f"ICD point {t:.2f} not on the ilium"
    # The ICD line lies caudal to the top of the ala (L5 root) and cranial to the S1 foramen.
    ala = default.landmarks[f"ala_top_{side}"]
    at_ala = posterior + (ala[1] - posterior[1]) / (anterior[1] - posterior[1]) * (
        anterior - posterior
    )
    assert at_ala[2] < ala[2] - 3.0
    assert anterior[2] > default.landmarks[f"S1_foramen_anterior_{side}"][2] - 40.0


@pytest.mark.parametrize("side", SIDES)
def test_sciatic_notch_opens_posteriorly(default, side):
    notch = default.landmarks[f"sciatic_notch_{side}"]
    ilium = default.value(f"ilium_{side}")
    direction = np.array([0.0, 0.95, -0.3])
    direction /= np.linalg.norm(direction)
    behind = notch + np.arange(4.0, 20.0, 1.0)[:, None] * direction
    assert not (default.label_at(behind) == ilium).any(), "the notch is closed"
    ahead = notch - np.arange(2.0, 10.0, 1.0)[:, None] * direction
    assert (default.label_at(ahead) == ilium).any(), "no bone at the notch apex"


def test_landmark_geometry_is_anatomical(default):
    lm = default.landmarks
    for side, sign in (("left", 1.0), ("right", -1.0)):
        asis, psis = lm[f"asis_{side}"], lm[f"psis_{side}"]
        crest = lm[f"iliac_crest_top_{side}"]
        assert sign * asis[0] > 90 and sign * psis[0] > 25
        assert asis[1] < lm["sacral_promontory"][1] - 30  # ASIS well anterior
        assert psis[1] > lm["S1_spinal_canal_center"][1] + 15  # PSIS behind the canal
        assert crest[2] > max(asis[2], psis[2]) + 40
        assert crest[2] > lm["S1_superior_endplate_center"][2] + 25
    inter_asis = np.linalg.norm(lm["asis_left"] - lm["asis_right"])
    assert 200 <= inter_asis <= 280  # approx. adult inter-ASIS distance


def crest_top_z(pelvis: Painted, side: str) -> float:
    return float(pelvis.points(f"ilium_{side}")[:, 2].max())


def test_high_iliac_crest_variant_raises_the_crest(default):
    high = build(0, "high_iliac_crest")
    for side in SIDES:
        raise_mm = crest_top_z(high, side) - crest_top_z(default, side)
        assert 12.0 <= raise_mm <= 28.0, raise_mm


def test_wing_has_a_thin_zone_below_the_crest(default):
    """Columns through the left wing with < 5 mm of bone along x: ≥ 10 cm² (anatomy.md ≈22 cm²)."""
    pts = default.points("ilium_left")
    wing = pts[(pts[:, 2] > -40.0) & (pts[:, 1] < 0.0)]
    keys, counts = np.unique(
        np.rint(wing[:, 1:] / VOXEL_MM).astype(int), axis=0, return_counts=True
    )
    thin = counts * VOXEL_MM < 5.0
    area_cm2 = thin.sum() * VOXEL_MM**2 / 100.0
    assert area_cm2 >= 10.0, area_cm2
    # …and not at the crest: the thin columns start well below the top of the wing.
    assert keys[thin][:, 1].max() * VOXEL_MM < crest_top_z(default, "left") - 10.0


def test_ilia_are_roughly_symmetric(default):
    left = len(default.points("ilium_left"))
    right = len(default.points("ilium_right"))
    assert abs(left - right) / max(left, right) < 0.15
    assert 250.0 <= left * VOXEL_MM**3 / 1000.0 <= 700.0  # cm³, hip bone volume (approx.)


def test_same_seed_identical_pelvis():
    grid = pelvis_grid(3.0)
    a = ilia_part(grid, PatientParameters(seed=4), reference_anchors())
    b = ilia_part(grid, PatientParameters(seed=4), reference_anchors())
    for pa, pb in zip(a.pieces, b.pieces, strict=True):
        assert pa.label == pb.label and np.array_equal(pa.mask, pb.mask)
        assert np.array_equal(np.asarray(pa.hu), np.asarray(pb.hu))
    assert all(np.array_equal(a.landmarks[n], b.landmarks[n]) for n in a.landmarks)


@pytest.mark.parametrize("side", SIDES)
def test_true_lateral_shows_the_icd_line_above_the_s1_foramen(default, side):
    """Projected left-right, the hip bone is densest along the ICD line (a ridge, not a step),
    and the line passes cranial to the S1 foramen over the sacral body (the SIJ safe zone)."""
    pts = default.points(f"ilium_{side}")
    y0, z0 = pts[:, 1].min(), pts[:, 2].min()
    iy = np.rint((pts[:, 1] - y0) / VOXEL_MM).astype(int)
    iz = np.rint((pts[:, 2] - z0) / VOXEL_MM).astype(int)
    thickness = np.zeros((iy.max() + 1, iz.max() + 1))
    np.add.at(thickness, (iy, iz), VOXEL_MM)  # bone path length along the lateral beam
    posterior = default.landmarks[f"icd_line_{side}_posterior"][1:]
    anterior = default.landmarks[f"icd_line_{side}_anterior"][1:]
    along = (anterior - posterior) / np.linalg.norm(anterior - posterior)
    across = np.array([-along[1], along[0]])

    def path_mm(point):
        i, k = np.rint((point - [y0, z0]) / VOXEL_MM).astype(int)
        return thickness[i - 1 : i + 2, k - 1 : k + 2].max()

    ridges = 0
    for t in (0.3, 0.5, 0.7):
        centre = posterior + t * (anterior - posterior)
        on_line = path_mm(centre)
        beside = np.mean([path_mm(centre + s * across) for s in (-8.0, 8.0)])
        ridges += on_line > 1.3 * beside
    assert ridges >= 2
    foramen = default.landmarks[f"S1_foramen_anterior_{side}"]
    t = (foramen[1] - posterior[0]) / along[0]
    assert posterior[1] + t * along[1] > foramen[2] + 5.0


def test_pelvis_turns_with_the_sacral_slope():
    """A steeper sacrum carries the whole pelvis with it: the joint keeps its area and its place
    relative to the sacrum, the ASIS moves down as the pelvis tilts forward (pelvic incidence is
    a fixed trait of the patient)."""
    grid = pelvis_grid(2.0)
    params = PatientParameters()
    results = {}
    for slope in (30.0, 46.0):
        anchors = reference_anchors(slope)
        painted = Combined(
            grid, sacrum_part(grid, params, anchors), ilia_part(grid, params, anchors)
        ).painted
        results[slope] = painted
    flat, steep = results[30.0], results[46.0]
    for side in SIDES:
        a_flat = len(flat.points(f"sij_space_{side}"))
        a_steep = len(steep.points(f"sij_space_{side}"))
        assert abs(a_flat - a_steep) / a_flat < 0.2
        d_flat = flat.landmarks[f"sij_center_{side}"] - flat.landmarks["sacral_promontory"]
        d_steep = steep.landmarks[f"sij_center_{side}"] - steep.landmarks["sacral_promontory"]
        assert np.linalg.norm(d_flat) == pytest.approx(np.linalg.norm(d_steep), abs=1e-6)
        asis_flat, asis_steep = flat.landmarks[f"asis_{side}"], steep.landmarks[f"asis_{side}"]
        assert asis_steep[2] < asis_flat[2] - 5.0


def test_ilium_hu_cancellous_core_and_cortical_shell(default):
    """Anterior ilium cancellous 230–254 HU (anatomy.md) less 2.5 HU/year past the reference age,
    inside a cortical shell (+700…+1900); the sacral ala reads ≈150 HU lower than the ilium."""
    from fluorosim.models.phantom.sacrum import REFERENCE_AGE_YEARS

    shift = -2.5 * (PatientParameters().age_years - REFERENCE_AGE_YEARS)
    for side in SIDES:
        pts = default.points(f"ilium_{side}")
        hu = default.hu_at(pts)
        anterior_core = hu[(pts[:, 1] < -45.0) & (hu < 700.0)]
        assert len(anterior_core) > 100
        ilium = float(np.median(anterior_core))
        assert 230.0 + shift <= ilium <= 254.0 + shift
        assert 700.0 <= hu.max() <= 1900.0
        assert 0.15 < np.mean(hu >= 700.0) < 0.6  # a shell, not solid cortex or bare cancellous
        ala = default.hu_at(default.landmarks[f"ala_top_{side}"] + np.array([0.0, 10.0, -12.0]))
        assert ilium - float(ala) == pytest.approx(150.0, abs=10.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_bony_landmarks_lie_on_the_hip_bone(seed):
    from scipy.spatial import cKDTree

    pelvis = build(seed)
    for side in SIDES:
        bone = cKDTree(pelvis.points(f"ilium_{side}"))
        for name in ("asis", "psis", "iliac_crest_top", "sciatic_notch"):
            distance = bone.query(pelvis.landmarks[f"{name}_{side}"])[0]
            assert distance <= 2.0, (name, side, distance)
        top = pelvis.points(f"ilium_{side}")[:, 2].max()
        assert pelvis.landmarks[f"iliac_crest_top_{side}"][2] == pytest.approx(top, abs=4.0)


def test_slab_by_slab_evaluation_matches_one_pass(monkeypatch):
    """The x-slabs that bound memory at fine voxels change nothing in the result."""
    from fluorosim.models.phantom import pelvis, sacrum

    grid = pelvis_grid(2.5)
    params, anchors = PatientParameters(seed=2), reference_anchors()
    sliced = [pelvis.ilia_part(grid, params, anchors), sacrum.sacrum_part(grid, params, anchors)]
    monkeypatch.setattr(pelvis, "X_CHUNK", 100_000)
    monkeypatch.setattr(sacrum, "X_CHUNK", 100_000)
    whole = [pelvis.ilia_part(grid, params, anchors), sacrum.sacrum_part(grid, params, anchors)]
    for a, b in zip(sliced, whole, strict=True):
        for pa, pb in zip(a.pieces, b.pieces, strict=True):
            assert pa.label == pb.label and np.array_equal(pa.mask, pb.mask)
            assert np.array_equal(np.asarray(pa.hu), np.asarray(pb.hu))


def test_symphysis_landmark_sits_on_top_of_the_pubic_bodies(default):
    """``pubic_symphysis_superior`` (outlet end point: symphysis over S2) is the pubic bodies' top."""
    top = default.landmarks["pubic_symphysis_superior"]
    assert top[0] == pytest.approx(0.0, abs=1e-9)
    ilia = [default.value(f"ilium_{side}") for side in SIDES]
    for side, sign in zip(SIDES, (1.0, -1.0), strict=True):
        dz = np.arange(15.0, -15.0, -0.5)
        column = top + np.stack([np.full_like(dz, sign * 9.0), np.zeros_like(dz), dz], axis=1)
        bone = np.isin(default.label_at(column), ilia)
        assert bone.any(), f"no pubic bone beside the symphysis on the {side}"
        highest = float(dz[np.argmax(bone)])
        assert -VOXEL_MM - 0.5 <= highest <= VOXEL_MM, (side, highest)
    # in front of and below the promontory: the pelvic brim, inclined ≈60° at the reference slope
    promontory = default.landmarks["sacral_promontory"]
    brim = promontory - top
    assert 100.0 <= np.linalg.norm(brim) <= 140.0
    assert 50.0 <= math.degrees(math.atan2(brim[2], brim[1])) <= 70.0
