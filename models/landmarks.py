"""The documented table of patient landmark names: what each point means and who provides it.

All landmarks are in the LPS patient frame, millimetres (origin at the centre of the S1 superior
endplate for a generated patient). A landmark is a point ``(3,)`` unless marked *(N,3)*.
``X`` stands for a lumbar level L1…L5, ``X_Y`` for a disc level (``L4_L5``, ``L5_S1``) and ``side``
for the patient's ``left``/``right``.

Kambin's triangle (procedures.md): hypotenuse = exiting root, base = superior endplate of the lower
vertebra, height = superior articular process / traversing root. ``base_medial`` is the right-angle
corner at the medial border on the endplate, ``base_lateral`` the point where the exiting root
crosses the endplate level, ``apex`` where the exiting root crosses the medial border, ``center`` the
incentre (the best cannula target: the inscribed-circle centre).
"""

from __future__ import annotations

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS, SIDES

#: name pattern → meaning. Provider in brackets: [lumbar], [neural], [sacrum], [pelvis], [vessels],
#: [femur].
LANDMARK_PATTERNS: dict[str, str] = {
    "X_body_center": "[lumbar] centre of the vertebral body (midpoint of the endplate centres)",
    "X_superior_endplate_center": "[lumbar] centre of the superior endplate",
    "X_inferior_endplate_center": "[lumbar] centre of the inferior endplate",
    "X_pedicle_center_side": "[lumbar] centre of the pedicle isthmus (the AP 'eye')",
    "X_spinous_tip": "[lumbar] posterior tip of the spinous process",
    "disc_X_Y_center": "[lumbar] centre of the disc (midpoint of the adjacent endplate centres)",
    "facet_X_Y_side": "[lumbar] centre of the facet joint between X (inferior articular process) "
    "and Y (superior articular process); for L5_S1 the S1 process belongs to the sacrum",
    "foramen_X_Y_side": "[neural] centre of the intervertebral foramen between X and Y",
    "kambin_X_Y_side_base_medial": "[neural] Kambin triangle: medial corner on the lower endplate",
    "kambin_X_Y_side_base_lateral": "[neural] Kambin triangle: exiting root at the endplate",
    "kambin_X_Y_side_apex": "[neural] Kambin triangle: exiting root at the medial border",
    "kambin_X_Y_side_center": "[neural] Kambin triangle incentre (cannula target)",
    "interlaminar_L5_S1_center": "[sacrum] centre of the L5-S1 interlaminar window (midline)",
    "S1_superior_endplate_center": "[sacrum] centre of the S1 superior endplate (the origin)",
    "S1_body_center": "[sacrum] centre of the S1 body",
    "S2_body_center": "[sacrum] centre of the S2 body",
    "sacral_promontory": "[sacrum] anterior-superior corner of S1 in the midline",
    "S1_anterior_cortex_midline": "[sacrum] anterior S1 cortex in the midline",
    "S1_foramen_anterior_side": "[sacrum] centre of the first anterior sacral foramen",
    "S2_foramen_anterior_side": "[sacrum] centre of the second anterior sacral foramen",
    "S1_foramen_posterior_side": "[sacrum] centre of the first posterior sacral foramen",
    "S1_spinal_canal_center": "[sacrum] centre of the sacral canal at S1",
    "icd_line_side_anterior": "[pelvis] anterior end of the iliac cortical density line",
    "icd_line_side_posterior": "[pelvis] posterior end of the iliac cortical density line",
    "sij_center_side": "[pelvis] centre of the sacroiliac joint surface",
    "sij_surface_side": "[pelvis] (N,3) samples of the sacroiliac joint surface",
    "psis_side": "[pelvis] posterior superior iliac spine",
    "asis_side": "[pelvis] anterior superior iliac spine",
    "iliac_crest_top_side": "[pelvis] most cranial point of the iliac crest",
    "sciatic_notch_side": "[pelvis] apex of the greater sciatic notch",
    "pubic_symphysis_superior": "[pelvis] midline top of the pubic bodies (outlet view: symphysis over S2)",
    "ala_top_side": "[sacrum] top of the sacral ala",
    "aortic_bifurcation": "[vessels] aortic bifurcation",
    "femoral_head_center_side": "[femur] centre of the femoral head (the hip joint centre)",
    "greater_trochanter_tip_side": "[femur] superior tip of the greater trochanter",
}


def _expand(pattern: str) -> list[str]:
    names = [pattern]
    if "X_Y" in pattern:
        names = [n.replace("X_Y", f"{a}_{b}") for n in names for a, b in DISC_LEVELS]
    elif pattern.startswith("X_"):
        names = [n.replace("X_", f"{level}_", 1) for n in names for level in LUMBAR_LEVELS]
    if "side" in pattern:
        names = [n.replace("side", s) for n in names for s in SIDES]
    return names


#: Every concrete landmark name → meaning.
LANDMARK_TABLE: dict[str, str] = {
    name: meaning for pattern, meaning in LANDMARK_PATTERNS.items() for name in _expand(pattern)
}


def landmark_names(provider: str | None = None) -> list[str]:
    """All concrete landmark names, optionally only those of one provider (``"lumbar"``, …)."""
    tag = f"[{provider}]" if provider else ""
    return [name for name, meaning in LANDMARK_TABLE.items() if meaning.startswith(tag)]
