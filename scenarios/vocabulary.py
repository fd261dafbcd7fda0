"""The agreed label and landmark names (cross-package contract) that scenario files may refer to.

Scenario files name structures and points by these names so that one file works on every generated
patient and on an imported CT that carries the same labels and landmarks. A scenario may write
``{side}`` (the scenario's side) and ``{contra}`` (the other side) inside a name, and ``*`` (any
characters) in a label name; the loader checks the expanded name against the contract names so
that a typo fails at load time with the file and field named, not in the middle of an attempt.
"""

from __future__ import annotations

import fnmatch

SIDES = ("left", "right")
LUMBAR = ("L1", "L2", "L3", "L4", "L5")
DISCS = ("L1_L2", "L2_L3", "L3_L4", "L4_L5", "L5_S1")
ROOT_LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1", "S2")


def _label_names() -> frozenset[str]:
    names = {"sacrum", "thecal_sac", "aorta", "vena_cava", "bowel", "muscle", "fat", "skin"}
    names.add("background")
    for level in LUMBAR:
        names |= {f"{level}_body", f"{level}_posterior_elements"}
        names |= {f"{level}_pedicle_{s}" for s in SIDES}
    names |= {f"disc_{d}" for d in DISCS}
    names |= {f"root_{r}_{s}" for r in ROOT_LEVELS for s in SIDES}
    for s in SIDES:
        names |= {f"ilium_{s}", f"sij_space_{s}", f"psoas_{s}", f"paraspinal_{s}"}
        names |= {f"{kind}_iliac_artery_{s}" for kind in ("common", "internal", "external")}
        names.add(f"common_iliac_vein_{s}")
    return frozenset(names)


def _landmark_names() -> frozenset[str]:
    names = {
        "S1_superior_endplate_center",
        "S1_body_center",
        "S2_body_center",
        "sacral_promontory",
        "S1_anterior_cortex_midline",
        "S1_spinal_canal_center",
        "interlaminar_L5_S1_center",
        "aortic_bifurcation",
    }
    for level in LUMBAR:
        names |= {
            f"{level}_{what}"
            for what in (
                "body_center",
                "superior_endplate_center",
                "inferior_endplate_center",
                "spinous_tip",
            )
        }
        names |= {f"{level}_pedicle_center_{s}" for s in SIDES}
    for d in DISCS:
        names.add(f"disc_{d}_center")
        for s in SIDES:
            names.add(f"foramen_{d}_{s}")
            names |= {
                f"kambin_{d}_{s}_{p}" for p in ("base_medial", "base_lateral", "apex", "center")
            }
    for s in SIDES:
        names |= {f"S1_foramen_anterior_{s}", f"S2_foramen_anterior_{s}"}
        names |= {f"S1_foramen_posterior_{s}", f"icd_line_{s}_anterior", f"icd_line_{s}_posterior"}
        names |= {
            f"{p}_{s}"
            for p in (
                "sij_center",
                "sij_surface",
                "psis",
                "asis",
                "iliac_crest_top",
                "sciatic_notch",
                "ala_top",
            )
        }
    return frozenset(names)


#: Every label name of the contract (models.phantom and imported CT label maps use these).
LABEL_NAMES: frozenset[str] = _label_names()
#: Every landmark name of the contract.
LANDMARK_NAMES: frozenset[str] = _landmark_names()


def contra(side: str) -> str:
    """The other side."""
    return "right" if side == "left" else "left"


def expand(name: str, side: str | None) -> str:
    """Substitute ``{side}`` and ``{contra}`` in a name (unchanged when the name has neither)."""
    if side is None:
        return name
    return name.replace("{side}", side).replace("{contra}", contra(side))


def matching_labels(pattern: str, names: frozenset[str] | set[str] = LABEL_NAMES) -> list[str]:
    """Label names matched by an expanded pattern (``*`` = any characters), sorted."""
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def is_label_name(pattern: str) -> bool:
    """Whether an expanded label name or ``*`` pattern names at least one contract label."""
    return bool(matching_labels(pattern))


def is_landmark_name(name: str) -> bool:
    """Whether an expanded landmark name is one of the contract landmark names."""
    return name in LANDMARK_NAMES
