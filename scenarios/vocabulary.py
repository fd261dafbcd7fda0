"""The agreed label and landmark names (cross-package contract) that scenario files may refer to.

Scenario files name structures and points by these names so that one file works on every generated
patient and on an imported CT that carries the same labels and landmarks. A scenario may write
``{side}`` (the scenario's side) and ``{contra}`` (the other side) inside a name, and ``*`` (any
characters) in a label name; the loader checks the expanded name against the contract names so
that a typo fails at load time with the file and field named, not in the middle of an attempt.
"""

from __future__ import annotations

import fnmatch

from models.labels import LABEL_TABLE
from models.landmarks import LANDMARK_TABLE

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
    """Label names matched by an expanded pattern (``*`` = any characters), sorted."""
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def is_label_name(pattern: str) -> bool:
    """Whether an expanded label name or ``*`` pattern names at least one contract label."""
    return bool(matching_labels(pattern))


def is_landmark_name(name: str) -> bool:
    """Whether an expanded landmark name is one of the contract landmark names."""
    return name in LANDMARK_NAMES
