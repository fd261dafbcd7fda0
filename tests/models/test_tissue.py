"""The one tissue table: every label the generator and the CT import give has a row, and every
consumer (haptic feel, mouse resistance, renderer anchors, bone and bulk sets) agrees with it."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.haptics.mouse import MouseInstrument, tissue_classifier
from fluorosim.haptics.serial_source import tissue_to_haptic_level
from fluorosim.models.io.ct_import import TOTALSEGMENTATOR_LABELS
from fluorosim.models.labels import LABEL_TABLE
from fluorosim.models.materials import MATERIALS
from fluorosim.models.patient import Patient
from fluorosim.models.tissue import (
    BONE_LABELS,
    BULK_LABELS,
    HU_ANCHOR_MATERIALS,
    LABEL_TISSUE,
    TISSUE_CLASSES,
    haptic_level,
    tissue_at_point,
    tissue_of_label,
)
from fluorosim.render.attenuation import hu_to_mu_anchors


def test_every_generated_and_imported_label_has_a_row() -> None:
    # the generator paints only LABEL_TABLE names (assembly.paint refuses others); the CT import
    # maps TotalSegmentator structures onto these names
    produced = set(LABEL_TABLE) | {label for label, _ in TOTALSEGMENTATOR_LABELS.values()}
    assert produced <= set(LABEL_TISSUE)
    assert all(row.tissue in TISSUE_CLASSES for row in LABEL_TISSUE.values())
    for tissue in TISSUE_CLASSES.values():
        assert tissue.material is None or tissue.material in MATERIALS


def test_femur_and_coccyx_are_bone_everywhere() -> None:
    """The old STP/1 haptic classifier felt femur and coccyx as soft tissue."""
    bone_feel = tissue_to_haptic_level("cancellous_bone")
    for label in ("femur_left", "femur_right", "coccyx", "sacrum", "ilium_left", "L5_body"):
        assert label in BONE_LABELS
        assert tissue_of_label(label) == "cancellous_bone"
        assert tissue_to_haptic_level(label) == bone_feel > tissue_to_haptic_level("disc")
    for label in ("L4_pedicle_left", "L4_posterior_elements"):
        assert tissue_to_haptic_level(label) == 255
    # the HU split applies to every bone label alike, femur included
    assert tissue_at_point("femur_left", 1200.0) == "cortical_bone"
    assert tissue_at_point("femur_left", 150.0) == "cancellous_bone"
    assert tissue_at_point("psoas_left", 1200.0) == "soft_tissue"


def test_haptic_levels_follow_stiffness_and_unknown_labels_are_soft() -> None:
    levels = [haptic_level(t) for t in TISSUE_CLASSES]  # softest first
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] == 255
    assert haptic_level("label_7") == haptic_level("soft_tissue")  # an unnamed CT label
    assert haptic_level("") == haptic_level("background") == 0
    assert tissue_to_haptic_level("fat") == 0


def test_bulk_labels_and_renderer_anchors_come_from_the_table() -> None:
    assert {"background", "skin", "fat", "muscle"} == BULK_LABELS
    assert HU_ANCHOR_MATERIALS == ("adipose", "water", "muscle", "cortical_bone")
    hu, mu = hu_to_mu_anchors(60.0)
    assert np.all(np.diff(hu) > 0) and np.all(np.diff(mu) > 0)  # a monotone line


def _bone_slab_patient(label: str, hu: int) -> Patient:
    """A 10 mm cube: muscle for z < 3.5 mm, then ``label`` at ``hu`` (voxel centres at whole mm)."""
    labels = np.full((10, 10, 10), LABEL_TABLE["muscle"], np.uint8)
    labels[:, :, 4:] = LABEL_TABLE[label]
    volume = np.full((10, 10, 10), 50, np.int16)
    volume[:, :, 4:] = hu
    return Patient(volume, labels, np.eye(4), dict(LABEL_TABLE), {})


@pytest.mark.parametrize("label", ["femur_left", "coccyx"])
def test_the_mouse_resists_in_femoral_and_coccygeal_cortex(label: str) -> None:
    patient = _bone_slab_patient(label, 1400)
    assert tissue_classifier(patient)(np.array([5.0, 5.0, 6.0])) == "cortical_bone"
    model = MouseInstrument(tissue_at=tissue_classifier(patient))
    model.set_entry([5.0, 5.0, 0.0])
    model.point_along([0.0, 0.0, 1.0])
    moved = model.advance(10)
    # full 0.5 mm steps through muscle (7 steps to 3.5 mm), then 0.1 mm steps in the cortex
    assert model.last_tissue == "cortical_bone" and model.resisted_steps == 3
    assert moved == pytest.approx(7 * 0.5 + 3 * 0.1)
