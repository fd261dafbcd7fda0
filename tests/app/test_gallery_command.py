"""``fluorosim gallery``: every view of every patient, labelled; a CT's cut views said plainly."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from fluorosim.app import cli
from fluorosim.app.commands import gallery
from fluorosim.render.attenuation import AttenuationVolume
from fluorosim.render.carm import CArmJoints, carm_geometry, get_model
from tests.render.synthetic_patient import make_synthetic_patient


def _volume(mu: np.ndarray, spacing_mm: float = 4.0) -> AttenuationVolume:
    """An axis-aligned volume centred on the origin."""
    lps_from_voxel = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    lps_from_voxel[:3, 3] = -spacing_mm * (np.array(mu.shape) - 1) / 2.0
    return AttenuationVolume(np.ascontiguousarray(mu, np.float32), lps_from_voxel, 60.0)


def _ap_geometry():
    return carm_geometry(CArmJoints(), get_model("ii9"), np.zeros(3), size_px=64)


def test_truncation_mask_finds_rays_through_a_cut_body_and_none_through_a_whole_one():
    """A body that fills its box to the box's faces is cut (every ray through it is truncated);
    the same body with air around it is whole (no ray is)."""
    geometry = _ap_geometry()
    cut = _volume(np.full((20, 20, 20), 0.02))
    mask = gallery.truncation_mask(cut, geometry, 0.006, size_px=32)
    # the 80 mm cube covers the middle of the 9-inch field: the centre is truncated, corners not
    assert mask[16, 16] and not mask[0, 0]
    whole = np.zeros((40, 40, 40))
    whole[5:35, 5:35, 5:35] = 0.02
    mask = gallery.truncation_mask(_volume(whole), geometry, 0.006, size_px=32)
    assert not mask.any()


def test_truncation_mask_sees_only_the_cut_faces_the_ray_crosses():
    """A slab of body open only at the top and bottom (the ends of a CT) is truncated for a beam
    tilted through those ends, not for the AP beam that enters and leaves through air."""
    mu = np.zeros((40, 40, 40))
    mu[5:35, 5:35, :] = 0.02  # body runs through the inferior and superior faces
    volume = _volume(mu)
    ap = gallery.truncation_mask(volume, _ap_geometry(), 0.006, size_px=32)
    assert not ap[gallery.centre_disc(32)].any()
    tilted = carm_geometry(CArmJoints(angular_deg=45.0), get_model("ii9"), np.zeros(3), size_px=64)
    assert gallery.truncation_mask(volume, tilted, 0.006, size_px=32).any()


@pytest.fixture
def synthetic_columns():
    patient = make_synthetic_patient()
    return [
        gallery.render_column("synthetic", patient),
        gallery.render_column("synthetic as a scan", patient, check_truncation=True),
    ]


def test_every_view_is_rendered_for_a_patient_that_has_its_landmarks(synthetic_columns):
    generated = synthetic_columns[0]
    assert [t.view for t in generated.tiles] == [v[1] for v in gallery.GALLERY_VIEWS]
    for tile in generated.tiles:
        assert tile.image is not None, tile.note
        inside = tile.image[gallery.centre_disc(tile.image.shape[0])]
        assert inside.std() > 2.0 and 5.0 < inside.mean() < 250.0, tile.view


def test_sheet_has_a_labelled_row_per_view_and_a_titled_column_per_patient(synthetic_columns):
    sheet = gallery.compose(synthetic_columns, tile_px=96)
    rows, step = len(gallery.GALLERY_VIEWS), 96 + 4
    assert sheet.shape == (
        gallery.HEADER_PX + rows * step,
        gallery.LABEL_COLUMN_PX + 2 * step,
    )
    for r in range(rows):  # each row's label is written in the label column
        band = sheet[gallery.HEADER_PX + r * step : gallery.HEADER_PX + (r + 1) * step]
        assert (band[:, : gallery.LABEL_COLUMN_PX] > 128).sum() > 50, gallery.GALLERY_VIEWS[r][0]
    for c in range(2):  # each column's title is written in the header
        x = gallery.LABEL_COLUMN_PX + c * step
        assert (sheet[: gallery.HEADER_PX, x : x + 96] > 128).sum() > 50


def test_missing_landmark_is_labelled_outside_the_scan_not_drawn():
    """A scan without the sacral landmarks cannot show the sacral views: those tiles say why."""
    patient = make_synthetic_patient()
    landmarks = {k: v for k, v in patient.landmarks.items() if not k.startswith("icd_line")}
    original = patient.landmarks
    try:
        patient.landmarks = landmarks
        column = gallery.render_column("scan", patient, check_truncation=True)
    finally:
        patient.landmarks = original
    tiles = {t.view: t for t in column.tiles}
    lateral = tiles["true_lateral_sacrum"]
    assert lateral.image is None and lateral.note.startswith("outside the scan")
    assert "icd_line" in lateral.note
    drawn = gallery.tile_image(lateral, 128)
    assert (drawn > 128).sum() > 100  # the reason is written on the tile
    assert "icd_line" not in tiles["ap"].note  # the other views do not need those landmarks


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_ct_column_labels_the_views_its_scan_cannot_show(shared_data):
    """The shared CT ends at the femoral heads and its sides are cut by the field of view: the
    true lateral of the sacrum and the outlet look mostly past the cuts and are labelled, the
    AP is drawn."""
    folder = shared_data / "real-anatomy" / "totalsegmentator-example"
    if not (folder / "example_ct.nii.gz").is_file():
        pytest.skip(f"{folder} not found")
    patient = gallery.imported_patient(str(folder / "example_ct.nii.gz"), str(folder / "masks"))
    column = gallery.render_column("CT", patient, check_truncation=True)
    tiles = {t.view: t for t in column.tiles}
    assert tiles["ap"].image is not None and tiles["ap"].truncated_fraction < 0.05
    for view in ("true_lateral_sacrum", "outlet"):
        assert tiles[view].image is None, view
        assert tiles[view].note.startswith("outside the scan"), view
        assert tiles[view].truncated_fraction > gallery.MAX_TRUNCATED_CENTRE, view


def test_command_writes_one_png_with_every_column(tmp_path, monkeypatch, capsys):
    synthetic = make_synthetic_patient()
    monkeypatch.setattr(gallery, "generated_patient", lambda seed, variant: synthetic)
    out = tmp_path / "g"
    assert cli.main(["gallery", "--out", str(out), "--tile", "96"]) == 0
    sheet = cv2.imread(str(out / "gallery.png"), cv2.IMREAD_GRAYSCALE)
    assert sheet.shape[1] == gallery.LABEL_COLUMN_PX + 2 * 100
    assert "wrote" in capsys.readouterr().out


def test_corrupt_ct_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        gallery, "generated_patient", lambda *a: pytest.fail("rendered before reading the CT")
    )
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"this is not a NIfTI file")
    assert cli.main(["gallery", "--ct", str(bad), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "broken.nii.gz" in err
    assert not (tmp_path / "g" / "gallery.png").exists()


def test_unknown_variant_is_one_line(tmp_path, capsys):
    args = ["gallery", "--variant", "two_heads", "--out", str(tmp_path)]
    assert cli.main(args) == 2
    assert "two_heads" in capsys.readouterr().err


def test_make_gallery_rejects_a_tile_size_out_of_range(tmp_path):
    args = argparse.Namespace(variant="none", tile=10, ct=None, out=str(tmp_path))
    with pytest.raises(gallery.GalleryError, match="--tile"):
        gallery.make_gallery(args)
