"""The agreed label and landmark names (cross-package contract) that scenario files may refer to.

Scenario files name structures and points by these names so that one file works on every generated
patient and on an imported CT that carries the same labels and landmarks. A scenario may write
``{side}`` (the scenario's side) and ``{contra}`` (the other side) inside a name, and ``*`` (any
characters) and ``|`` (either) in a label name; the loader checks the expanded name against the contract names so
that a typo fails at load time with the file and field named, not in the middle of an attempt.
"""

from __future__ import annotations

import fnmatch

from fluorosim.models.labels import LABEL_TABLE
from fluorosim.models.landmarks import LANDMARK_TABLE

SIDES = ("left", "right")
LUMBAR = ("L1", "L2", "L3", "L4", "L5")
DISCS = ("L1_L2", "L2_L3", "L3_L4", "L4_L5", "L5_S1")
ROOT_LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1", "S2")


#: The contract's names: the generator's own tables, so a structure it paints can be named.
LABEL_NAMES: frozenset[str] = frozenset(LABEL_TABLE)
#: Every landmark name of the contract.
LANDMARK_NAMES: frozenset[str] = frozenset(LANDMARK_TABLE)


def contra(side: str) -> str:
    """The other side."""
    return "right" if side == "left" else "left"


def expand(name: str, side: str | None) -> str:
    """Substitute ``{side}`` and ``{contra}`` in a name (unchanged when the name has neither)."""
    if side is None:
        return name
    return name.replace("{side}", side).replace("{contra}", contra(side))


def matching_labels(pattern: str, names: frozenset[str] | set[str] = LABEL_NAMES) -> list[str]:
    """Label names matched by an expanded pattern (``*`` = any characters, ``a|b`` = either),
    sorted."""
    parts = pattern.split("|")
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in parts))


def is_label_name(pattern: str) -> bool:
    """Whether every alternative of an expanded label name or pattern names a contract label."""
    return all(matching_labels(part) for part in pattern.split("|"))


def is_landmark_name(name: str) -> bool:
    """Whether an expanded landmark name is one of the contract landmark names."""
    return name in LANDMARK_NAMES


_PLAIN_SUFFIX = {
    "body": "vertebral body",
    "posterior_elements": "lamina (posterior elements)",
    "pedicle_left": "left pedicle",
    "pedicle_right": "right pedicle",
}
_PLAIN = {
    "background": "air outside the body",
    "skin": "skin",
    "fat": "fat",
    "muscle": "muscle",
    "bowel": "bowel",
    "aorta": "aorta",
    "vena_cava": "vena cava",
    "sacrum": "sacrum",
    "coccyx": "coccyx",
    "thecal_sac": "thecal sac (dura)",
}


def plain_label(name: str) -> str:
    """A label name in the words a trainee reads: ``L5_posterior_elements`` → ``L5 lamina
    (posterior elements)``, ``root_S1_left`` → ``left S1 nerve root``, ``disc_L4_L5`` → ``L4-L5
    disc``, ``sij_space_left`` → ``left SI joint space``."""
    if name in _PLAIN:
        return _PLAIN[name]
    parts = name.split("_")
    side = parts[-1] if parts[-1] in SIDES else None
    core = parts[:-1] if side else parts
    prefix = f"{side} " if side else ""
    if core[0] == "root" and len(core) == 2:
        return f"{prefix}{core[1]} nerve root"
    if core[0] == "disc" and len(core) == 3:
        return f"{core[1]}-{core[2]} disc"
    if core[:2] == ["sij", "space"]:
        return f"{prefix}SI joint space"
    if core[0] in LUMBAR:
        rest = "_".join(parts[1:])
        if rest in _PLAIN_SUFFIX:
            return f"{core[0]} {_PLAIN_SUFFIX[rest]}"
    if core[0] in ("paraspinal", "psoas"):
        return f"{prefix}{core[0]} muscle"
    return prefix + " ".join(core)
