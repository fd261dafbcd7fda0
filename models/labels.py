"""The fixed, ordered table of anatomical label names → uint8 values used by every patient.

Label values are positions in :data:`LABELS` (``background`` = 0), so a label keeps its value across
generator versions as long as new names are only appended. Every consumer (renderer, scoring,
export, GUI) looks labels up by NAME through ``Patient.label_value`` — never by a hard-coded number.

Naming: vertebral pieces ``L1_body``, ``L1_pedicle_left``, ``L1_posterior_elements`` (lamina,
spinous, transverse and articular processes); discs ``disc_L1_L2`` … ``disc_L5_S1``; exiting nerve
roots ``root_L1_left`` … ``root_S2_right`` (root with its dorsal root ganglion); proximal femora
``femur_left``/``femur_right`` (appended last); sides are the patient's left and right.
"""

from __future__ import annotations

LUMBAR_LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")
#: Intervertebral discs as (upper, lower) level pairs, cranial to caudal.
DISC_LEVELS: tuple[tuple[str, str], ...] = (
    ("L1", "L2"),
    ("L2", "L3"),
    ("L3", "L4"),
    ("L4", "L5"),
    ("L5", "S1"),
)
ROOT_LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1", "S2")
SIDES: tuple[str, ...] = ("left", "right")


def _vertebra_rows() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for level in LUMBAR_LEVELS:
        rows += [
            (
                f"{level}_body",
                f"{level} vertebral body: cortical shell, cancellous core, endplates",
            ),
            (f"{level}_pedicle_left", f"{level} left pedicle"),
            (f"{level}_pedicle_right", f"{level} right pedicle"),
            (
                f"{level}_posterior_elements",
                f"{level} lamina, spinous, transverse and articular processes",
            ),
        ]
    return rows


def _disc_rows() -> list[tuple[str, str]]:
    return [
        (f"disc_{upper}_{lower}", f"intervertebral disc {upper}/{lower} (annulus and nucleus)")
        for upper, lower in DISC_LEVELS
    ]


def _root_rows() -> list[tuple[str, str]]:
    return [
        (f"root_{level}_{side}", f"exiting {level} nerve root, {side}, with its ganglion")
        for level in ROOT_LEVELS
        for side in SIDES
    ]


#: Ordered (name, description) rows; the value of a label is its index in this list.
LABELS: tuple[tuple[str, str], ...] = tuple(
    [
        ("background", "air outside the body"),
        ("skin", "skin"),
        ("fat", "subcutaneous, retroperitoneal and epidural fat"),
        ("muscle", "skeletal muscle not listed separately"),
        ("bowel", "bowel and peritoneal contents"),
        ("psoas_left", "left psoas major"),
        ("psoas_right", "right psoas major"),
        ("paraspinal_left", "left erector spinae / multifidus"),
        ("paraspinal_right", "right erector spinae / multifidus"),
        ("aorta", "abdominal aorta"),
        ("vena_cava", "inferior vena cava"),
        ("common_iliac_artery_left", "left common iliac artery"),
        ("common_iliac_artery_right", "right common iliac artery"),
        ("internal_iliac_artery_left", "left internal iliac artery"),
        ("internal_iliac_artery_right", "right internal iliac artery"),
        ("external_iliac_artery_left", "left external iliac artery"),
        ("external_iliac_artery_right", "right external iliac artery"),
        ("common_iliac_vein_left", "left common iliac vein"),
        ("common_iliac_vein_right", "right common iliac vein"),
        *_vertebra_rows(),
        *_disc_rows(),
        ("sacrum", "sacrum S1–S5"),
        ("coccyx", "coccyx"),
        ("ilium_left", "left ilium"),
        ("ilium_right", "right ilium"),
        ("sij_space_left", "left sacroiliac joint space"),
        ("sij_space_right", "right sacroiliac joint space"),
        ("thecal_sac", "dural sac with CSF, L1 to S2"),
        *_root_rows(),
        # Appended (values above stay fixed): proximal femora, head to the grid's lower edge.
        ("femur_left", "left proximal femur: head, neck, greater/lesser trochanter, shaft"),
        ("femur_right", "right proximal femur: head, neck, greater/lesser trochanter, shaft"),
    ]
)

#: name → uint8 value (background = 0).
LABEL_TABLE: dict[str, int] = {name: value for value, (name, _) in enumerate(LABELS)}
#: name → one-line description.
LABEL_DESCRIPTIONS: dict[str, str] = dict(LABELS)

if len(LABEL_TABLE) != len(LABELS) or len(LABELS) > 256:
    raise RuntimeError("fluorosim.models.labels: label names must be unique and fit in uint8")
