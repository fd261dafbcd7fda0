"""The label and landmark tables: fixed values, the agreed names, nothing duplicated."""

from __future__ import annotations

from fluorosim.models.labels import LABEL_DESCRIPTIONS, LABEL_TABLE, LABELS
from fluorosim.models.landmarks import LANDMARK_TABLE, landmark_names
from fluorosim.models.tissue import BONE_LABELS

CONTRACT_LABELS = (
    ["background", "sacrum", "ilium_left", "ilium_right", "sij_space_left", "sij_space_right"]
    + ["thecal_sac", "aorta", "vena_cava", "bowel", "muscle", "fat", "skin"]
    + [f"{k}_{s}" for k in ("psoas", "paraspinal") for s in ("left", "right")]
    + [
        f"{v}_iliac_{t}_{s}"
        for v, t in (("common", "artery"), ("internal", "artery"), ("external", "artery"))
        for s in ("left", "right")
    ]
    + [f"common_iliac_vein_{s}" for s in ("left", "right")]
    + [f"L{n}_{p}" for n in range(1, 6) for p in ("body", "posterior_elements")]
    + [f"L{n}_pedicle_{s}" for n in range(1, 6) for s in ("left", "right")]
    + ["disc_L1_L2", "disc_L2_L3", "disc_L3_L4", "disc_L4_L5", "disc_L5_S1"]
    + [
        f"root_{r}_{s}"
        for r in ("L1", "L2", "L3", "L4", "L5", "S1", "S2")
        for s in ("left", "right")
    ]
)


def test_background_is_zero_and_values_are_consecutive_uint8():
    assert LABEL_TABLE["background"] == 0
    assert sorted(LABEL_TABLE.values()) == list(range(len(LABELS)))
    assert max(LABEL_TABLE.values()) <= 255


def test_every_agreed_label_name_is_in_the_table_with_a_description():
    missing = [name for name in CONTRACT_LABELS if name not in LABEL_TABLE]
    assert missing == []
    assert all(LABEL_DESCRIPTIONS[name].strip() for name in LABEL_TABLE)


def test_values_are_stable_for_existing_names():
    # appended names must never renumber existing ones: pin a few values
    assert LABEL_TABLE["skin"] == 1
    assert LABEL_TABLE["L1_body"] == 19
    assert LABEL_TABLE["disc_L5_S1"] == 43


def test_femora_are_appended_last_and_are_bone():
    # appended after the last label that existed before them (the roots), never renumbering
    assert LABEL_TABLE["femur_left"] == LABEL_TABLE["root_S2_right"] + 1
    assert LABEL_TABLE["femur_right"] == LABEL_TABLE["femur_left"] + 1
    assert {"femur_left", "femur_right"} <= BONE_LABELS
    assert {"femoral_head_center_left", "greater_trochanter_tip_right"} <= set(
        landmark_names("femur")
    )


def test_bone_labels_are_the_skeleton():
    assert {
        "sacrum",
        "ilium_left",
        "L4_body",
        "L4_pedicle_left",
        "L4_posterior_elements",
    } <= BONE_LABELS
    assert not {"disc_L4_L5", "thecal_sac", "root_L5_left", "fat"} & BONE_LABELS


def test_landmark_table_expands_every_agreed_name():
    expected = [
        "L4_body_center",
        "L4_superior_endplate_center",
        "L4_inferior_endplate_center",
        "L4_pedicle_center_left",
        "L4_spinous_tip",
        "disc_L5_S1_center",
        "foramen_L4_L5_left",
        "kambin_L4_L5_left_base_medial",
        "kambin_L4_L5_right_base_lateral",
        "kambin_L5_S1_left_apex",
        "kambin_L4_L5_left_center",
        "S1_superior_endplate_center",
        "sacral_promontory",
        "S1_foramen_anterior_right",
        "icd_line_left_anterior",
        "sij_surface_right",
        "iliac_crest_top_left",
        "interlaminar_L5_S1_center",
        "aortic_bifurcation",
        "ala_top_left",
    ]
    assert [name for name in expected if name not in LANDMARK_TABLE] == []
    assert "L4_body_center" in landmark_names("lumbar")
    assert "kambin_L4_L5_left_center" in landmark_names("neural")
    assert "kambin_L4_L5_left_center" not in landmark_names("lumbar")
