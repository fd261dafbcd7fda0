"""The real CT end to end: TotalSegmentator's example CT with its per-bone masks (shared data,
skipped when absent) imported, mapped to fluorosim labels, landmarks computed from the masks and
checked against anatomy (order, sides, sizes), every named view computable within clinical
ranges, and the store round trip keeping the volume digest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fluorosim.models.io import PatientFileError
from fluorosim.models.io.ct_import import import_ct, read_mask_folder
from fluorosim.models.io.store import PatientStoreError, load_patient, save_patient, stored_names
from fluorosim.models.labels import LABEL_TABLE
from fluorosim.render import views

CT_FOLDER = "real-anatomy/totalsegmentator-example"


@pytest.fixture(scope="module")
def real_ct(request):
    shared = request.getfixturevalue("shared_data")
    folder = shared / CT_FOLDER
    if not (folder / "example_ct.nii.gz").is_file():
        pytest.skip(f"{folder} not found")
    return import_ct(folder / "example_ct.nii.gz", folder / "masks", compute_landmarks=True)


@pytest.fixture(scope="module")
def shared_data(request):
    """tests/conftest.py's ``shared_data``, at module scope (the CT is imported once)."""
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA


def test_masks_become_fluorosim_labels_with_their_meaning(real_ct):
    table = real_ct.label_table
    for name in ("L1_body", "L4_body", "L5_body", "sacrum", "ilium_left", "femur_right"):
        assert table[name] == LABEL_TABLE[name]
        assert np.count_nonzero(real_ct.labels == table[name]) > 1000
    notes = " ".join(real_ct.parameters["label_notes"])
    assert "vertebrae_L4 → L4_body: whole L4 vertebra" in notes
    assert "hip_left → ilium_left: whole left hip bone" in notes
    # RAS file, LPS volume: the left hip bone lies at +x (patient's left)
    left = np.argwhere(real_ct.labels == table["ilium_left"]).mean(axis=0)
    right = np.argwhere(real_ct.labels == table["ilium_right"]).mean(axis=0)
    assert real_ct.parameters["lps_axes"] == "permuted" and left[0] > right[0]


def test_computed_landmarks_follow_the_anatomy(real_ct):
    lm = real_ct.landmarks
    assert len(real_ct.parameters["computed_landmarks"]) >= 70
    # endplates and bodies run cranial → caudal, each body centre inside its own vertebra
    heights = [lm[f"{level}_body_center"][2] for level in ("L1", "L2", "L3", "L4", "L5")]
    assert heights == sorted(heights, reverse=True)
    assert lm["L5_inferior_endplate_center"][2] > lm["S1_superior_endplate_center"][2] - 6.0
    for level in ("L1", "L2", "L3", "L4", "L5"):
        centre = lm[f"{level}_body_center"]
        assert real_ct.label_name(int(real_ct.labels_at(centre[None])[0])) == f"{level}_body"
        top, bottom = (
            lm[f"{level}_superior_endplate_center"],
            lm[f"{level}_inferior_endplate_center"],
        )
        assert 18.0 <= np.linalg.norm(top - bottom) <= 40.0  # lumbar body height ≈ 24–30 mm
        left, right = lm[f"{level}_pedicle_center_left"], lm[f"{level}_pedicle_center_right"]
        assert left[0] > centre[0] > right[0]  # LPS: +x is the patient's left
        assert 20.0 <= np.linalg.norm(left - right) <= 80.0  # interpedicular distance
        assert left[1] > centre[1] and lm[f"{level}_spinous_tip"][1] > left[1]  # behind the body
    for upper, lower in (("L1", "L2"), ("L2", "L3"), ("L3", "L4"), ("L4", "L5"), ("L5", "S1")):
        assert lm[f"disc_{upper}_{lower}_center"][2] < lm[f"{upper}_body_center"][2]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        sij = lm[f"sij_center_{side}"]
        assert 25.0 <= sign * (sij[0] - lm["S1_body_center"][0]) <= 80.0
        assert lm[f"sij_surface_{side}"].shape[1] == 3 and len(lm[f"sij_surface_{side}"]) > 50
        head = lm[f"femoral_head_center_{side}"]
        assert 70.0 <= sign * head[0] <= 130.0 and head[2] < lm["S1_body_center"][2] - 60.0
        assert lm[f"iliac_crest_top_{side}"][2] > lm["L5_body_center"][2]
        assert lm[f"asis_{side}"][1] < sij[1] < lm[f"psis_{side}"][1]  # ASIS front, PSIS back
    assert lm["pubic_symphysis_superior"][1] < lm["S1_body_center"][1] - 40.0
    notes = " ".join(real_ct.parameters["landmark_notes"])
    assert "S1_foramen_anterior_side" in notes and "sciatic_notch_side" in notes


def test_every_named_view_is_computable_and_clinically_angled(real_ct):
    def tilt_deg(view, **kw):
        beam = views.view_spec(real_ct, view, **kw).beam_lps
        return float(np.degrees(np.arctan2(beam[2], beam[1])))

    assert 12.0 <= -tilt_deg("inlet") <= 38.0  # caudal (Eastman & Routt 2015: 12–38)
    assert 29.0 <= tilt_deg("outlet") <= 52.0  # cranial (Eastman & Routt 2015: 29–52)
    assert 20.0 <= tilt_deg("ferguson", level="L5_S1") <= 45.0
    oblique = views.view_spec(real_ct, "oblique", side="left", level="L4_L5").beam_lps
    assert 20.0 <= np.degrees(np.arctan2(oblique[0], oblique[1])) <= 45.0
    lateral = views.view_spec(real_ct, "true_lateral_sacrum").beam_lps
    assert abs(lateral[0]) > 0.95
    for view, kw in (
        ("ap", {}),
        ("lateral", {}),
        ("contralateral_oblique", {"side": "right"}),
    ):
        views.ideal_joints(real_ct, view, **kw)  # within the C-arm's limits


def test_store_round_trip_keeps_name_labels_landmarks_and_digest(real_ct, tmp_path):
    folder = save_patient(real_ct, "ts-example", root=tmp_path)
    assert stored_names(tmp_path) == ["ts-example"]
    again = load_patient("ts-example", root=tmp_path)
    assert again.parameters["patient_name"] == "ts-example"
    assert again.parameters["ct_digest"] == real_ct.parameters["ct_digest"]
    assert again.label_table == real_ct.label_table
    assert set(again.landmarks) == set(real_ct.landmarks)
    np.testing.assert_allclose(
        again.landmarks["S1_body_center"], real_ct.landmarks["S1_body_center"]
    )
    record = json.loads((folder / "patient.json").read_text())
    assert record["parameters"]["label_notes"] == real_ct.parameters["label_notes"]
    with pytest.raises(PatientStoreError, match="already stored"):
        save_patient(real_ct, "ts-example", root=tmp_path)


def test_mask_folder_problems_name_the_file(real_ct, tmp_path, shared_data):
    import nibabel as nib

    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "README.txt").write_text("not a mask")
    with pytest.raises(PatientFileError, match=r"masks: no mask files"):
        read_mask_folder(masks, real_ct.shape, real_ct.lps_from_voxel)
    source = shared_data / CT_FOLDER / "masks" / "sacrum.nii.gz"
    image = nib.load(str(source))
    moved = image.affine.copy()
    moved[0, 3] += 9.0  # the same mask 9 mm to the side
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), moved), str(masks / "sacrum.nii.gz"))
    ct = shared_data / CT_FOLDER / "example_ct.nii.gz"
    with pytest.raises(PatientFileError, match=r"sacrum.nii.gz: mask grid is 9.000 mm away"):
        import_ct(ct, masks)
    nib.save(
        nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), str(masks / "sacrum.nii.gz")
    )
    with pytest.raises(PatientFileError, match=r"sacrum.nii.gz: mask shape \(4, 4, 4\) differs"):
        import_ct(ct, masks)
    (masks / "sacrum.nii.gz").write_bytes(b"\x1f\x8b truncated gzip")
    with pytest.raises(PatientFileError, match=r"sacrum.nii.gz"):
        import_ct(ct, masks)


def test_unknown_stored_name_says_what_is_stored(tmp_path):
    with pytest.raises(
        PatientStoreError, match=r"--patient nobody: no stored patient.*no patients"
    ):
        load_patient("nobody", root=tmp_path)
    with pytest.raises(PatientStoreError, match=r"patient name '../x'"):
        save_patient(None, "../x", root=tmp_path)  # type: ignore[arg-type]
