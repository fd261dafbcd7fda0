"""Neural structures measured on the labels: sac L1→S2, roots under the pedicles at ≈50°, Kambin.

References: anatomy.md (sac to S2; exiting root in the foramen, ≈51° to the disc plane; L5 root
over the ala; S1/S2 roots through their foramina) and procedures.md (Kambin's triangle inscribed
circle 5.8 mm at L1-2 → 7.3–8.2 mm at L4-5).

These pin the primitive generator (``skeleton="primitive"``, still an option); the checks a user
relies on whatever the generator — the sac inside the canal, the root under its pedicle without
touching it, the root's angle across the disc, Kambin's triangle admitting the published cannula
and growing caudally, the L5 root over the ala, the S1/S2 roots in their foramina — also run on
the real default and its seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.labels import DISC_LEVELS, SIDES
from fluorosim.models.phantom import measure
from fluorosim.models.template.targets import DISC_HEIGHT_MM
from tests.models.phantom.spine_patients import (
    PRIMITIVE_IDS,
    REAL_IDS,
    default_patient,
    on_both_generators,
    patient_for,
)

#: published inscribed-circle diameter ±1.5 mm (patients vary; the root must clear the pedicle)
KAMBIN_DIAMETER_RANGE_MM = {
    "L1_L2": (5.8 - 1.5, 5.8 + 1.5),
    "L2_L3": (6.4 - 1.5, 6.4 + 1.5),
    "L3_L4": (7.0 - 1.5, 7.0 + 1.5),
    "L4_L5": (7.3 - 1.5, 8.2 + 1.5),
    # not published separately: as L4-5 above; below, 5.0, as the L5-S1 foramen is the lowest
    # (the smallest posterior disc height of anatomy.md's table, 8.5 mm against L4-5's 10.1)
    "L5_S1": (5.0, 8.2 + 1.5),
}


def kambin_range_mm(patient, upper: str, lower: str) -> tuple[float, float]:
    """The published range, its lower end shrunk with this patient's posterior disc height
    against anatomy.md's mean (the triangles were measured on average discs; its height is the
    foramen's, which a low disc lowers: seed 0's L2-3 disc is drawn 2.3 SD low, 6.0 mm)."""
    lo, hi = KAMBIN_DIAMETER_RANGE_MM[f"{upper}_{lower}"]
    _, _, mean_posterior = DISC_HEIGHT_MM[DISC_LEVELS.index((upper, lower))]
    posterior = measure.disc_heights(patient, upper, lower).posterior_mm
    return lo * min(1.0, posterior / mean_posterior), hi


@pytest.fixture(scope="module", params=PRIMITIVE_IDS)
def patient(request):
    return patient_for(request.param)


@pytest.fixture(scope="module", params=PRIMITIVE_IDS + REAL_IDS)
def any_patient(request):
    """Both generators: the primitive spread and the real default with its seeds."""
    return patient_for(request.param)


def _voxels(p, name):
    return measure._voxels(p, name)


def test_thecal_sac_runs_from_above_l1_to_s2():
    p = default_patient("primitive")
    sac = _voxels(p, "thecal_sac")
    assert sac[:, 2].max() > p.landmark("L1_body_center")[2]
    # the dural sac ends at S2 (anatomy.md): measured along the S1 endplate normal, its lowest
    # point is at the S2 body level, not beyond S3
    normal = np.array([0.0, -np.sin(np.radians(38.0)), np.cos(np.radians(38.0))])
    s2_level = float(p.landmark("S2_body_center") @ normal)
    lowest = float((sac @ normal).min())
    assert s2_level - 20.0 < lowest < s2_level + 6.0
    # it stays in the midline canal
    assert abs(np.median(sac[:, 0])) < 1.0


@on_both_generators()
def test_sac_lies_inside_the_canal_between_body_and_lamina(patient):
    for level in ("L2", "L4"):
        frame = measure.vertebra_frame(patient, level)
        depth = measure.canal_dimensions(patient, level).depth_mm
        sac = _voxels(patient, "thecal_sac")
        rel = sac - frame.origin
        at_level = np.abs(rel @ frame.w) < 2.0
        v = rel[at_level] @ frame.v
        body_back = measure.body_dimensions(patient, level).depth_mm / 2
        assert v.min() > body_back - 1.0
        assert v.max() < body_back + depth + 1.0


@pytest.mark.parametrize(("upper", "lower"), DISC_LEVELS)
def test_exiting_root_passes_under_the_pedicle_without_touching_it(any_patient, upper, lower):
    patient = any_patient
    for side in SIDES:
        gap = measure.root_pedicle_distance_mm(patient, upper, side)
        assert 0.3 <= gap <= 6.0, (side, gap)
        root = _voxels(patient, f"root_{upper}_{side}")
        sign = 1.0 if side == "left" else -1.0
        assert np.mean(sign * root[:, 0]) > 10.0  # on its own side
        # the ganglion sits in the foramen
        foramen = patient.landmark(f"foramen_{upper}_{lower}_{side}")
        assert np.linalg.norm(root - foramen, axis=1).min() < 6.0
        # and below the pedicle centre of its level
        ped = patient.landmark(f"{upper}_pedicle_center_{side}")
        assert np.linalg.norm(root - foramen, axis=1).argmin() is not None
        assert foramen[2] < ped[2]


#: Known deviations (patient id, upper, lower, side) → why; each is an expected failure until
#: fixed, and is reported if it starts to pass.
KNOWN_ROOT_ANGLE_DEVIATIONS: dict[tuple[str, str, str, str], str] = {}


@on_both_generators()
@pytest.mark.parametrize(("upper", "lower"), DISC_LEVELS)
def test_root_crosses_the_disc_at_about_50_degrees(patient, upper, lower, request):
    patient_id = request.node.callspec.params["patient"]
    known = None
    for side in SIDES:
        angle = measure.root_disc_angle_deg(patient, upper, lower, side)
        reason = KNOWN_ROOT_ANGLE_DEVIATIONS.get((patient_id, upper, lower, side))
        if reason is not None:
            known = (reason, 42.0 <= angle <= 60.0)
            continue
        assert 42.0 <= angle <= 60.0, (side, angle)
    if known is not None:
        reason, within = known
        assert not within, f"fixed? remove it from KNOWN_ROOT_ANGLE_DEVIATIONS: {reason}"
        pytest.xfail(reason)


@pytest.mark.parametrize(("upper", "lower"), DISC_LEVELS)
def test_kambin_triangle_admits_the_published_cannula(any_patient, upper, lower):
    patient = any_patient
    lo, hi = kambin_range_mm(patient, upper, lower)
    for side in SIDES:
        diameter = measure.kambin_incircle_diameter_mm(patient, upper, lower, side)
        assert lo <= diameter <= hi, (side, diameter, lo)
        centre = patient.landmark(f"kambin_{upper}_{lower}_{side}_center")
        name = patient.label_name(patient.labels_at(centre))
        # the cannula target is free of nerve and bone
        assert not name.startswith(("root_", "thecal")), name
        assert not name.startswith(("L1", "L2", "L3", "L4", "L5")), name


def test_kambin_triangle_grows_caudally(any_patient):
    patient = any_patient
    diameters = [
        measure.kambin_incircle_diameter_mm(patient, u, lo, "left") for u, lo in DISC_LEVELS
    ]
    assert diameters[3] > diameters[0]


@pytest.mark.parametrize("skeleton", ["primitive", "real"])
def test_l5_root_runs_over_the_front_of_the_sacral_ala(skeleton):
    p = default_patient(skeleton)
    for side in SIDES:
        ala = p.landmark(f"ala_top_{side}")
        root = _voxels(p, f"root_L5_{side}")
        low = root[(root[:, 2] < ala[2] - 3.0) & (root[:, 2] > ala[2] - 25.0)]
        assert len(low) > 50
        # anterior (smaller y) to the ala top while it passes it
        assert np.median(low[:, 1]) < ala[1]


@pytest.mark.parametrize("skeleton", ["primitive", "real"])
def test_sacral_roots_pass_through_their_anterior_foramina(skeleton):
    p = default_patient(skeleton)
    for level in ("S1", "S2"):
        for side in SIDES:
            foramen = p.landmark(f"{level}_foramen_anterior_{side}")
            root = _voxels(p, f"root_{level}_{side}")
            assert np.linalg.norm(root - foramen, axis=1).min() < 3.0


@pytest.mark.parametrize("patient_id", REAL_IDS)
def test_left_and_right_roots_cross_their_disc_alike(patient_id):
    """The real patients are left–right symmetric but for their drawn facet tropism, so each
    disc's two roots cross it at nearly the same angle. The disc's axis through its endplate
    centres, 7–10 mm apart, rolls by degrees with a sub-millimetre offset of either centre; the
    measure once took the disc plane from it and read the default's L1-L2 roots at 42.8° and
    61.4° (generator 5.9). Measured since: within 4.5° of each other on the default and seeds 1–2."""
    patient = patient_for(patient_id)
    for upper, lower in DISC_LEVELS:
        left, right = (measure.root_disc_angle_deg(patient, upper, lower, s) for s in SIDES)
        assert abs(left - right) <= 6.0, (upper, lower, left, right)
