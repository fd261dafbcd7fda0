"""The one tissue table: label name → tissue class → material, advance resistance, haptic feel.

Every consumer that asks "what kind of tissue is this label?" reads this module: the renderer's
HU → μ anchors (:data:`HU_ANCHOR_MATERIALS`), the mouse-and-keyboard instrument's resistance
(:func:`tissue_at_point`, :attr:`TissueClass.resists_advance`), the STP/1 ``HAPT`` level sent to a
rig (:func:`haptic_level`), the phantom painter and the CT import (:data:`BONE_LABELS`), and
scoring's and the export's "bulk tissue, not a named structure" (:data:`BULK_LABELS`).

Tissue classes (:data:`TISSUE_CLASSES`):

=================  ===================  ==========  =================  =========
class              material             modulus     resists advance    HAPT
=================  ===================  ==========  =================  =========
``air``            none (μ = 0)         1 kPa       no                 0
``fat``            ``adipose``          1 kPa       no                 0
``soft_tissue``    ``muscle``           10 kPa      no                 35
``disc``           none (μ from HU)     10 MPa      no                 141
``cancellous_bone`` none (μ from HU)    344 MPa     no                 195
``cortical_bone``  ``cortical_bone``    17 GPa      yes (tap/drill)    255
=================  ===================  ==========  =================  =========

``material`` names a row of :mod:`models.materials` (NIST XCOM); the renderer converts each voxel's
CT number to μ on a piecewise-linear line through air and these reference materials (and water,
which defines 0 HU), so a class without a tabulated material of its own (disc, cancellous bone)
gets its μ from its HU between those anchors. Elastic moduli: cortical bone ≈17 GPa (Reilly &
Burstein 1975, J Biomech 8:393); vertebral cancellous bone ≈344 MPa (Morgan, Bayraktar & Keaveny
2003, J Biomech 36:897); annulus fibrosus ≈10 MPa (order of magnitude of the tensile/compressive
moduli in Ebara et al. 1996, Spine 21:452); skeletal muscle / soft tissue ≈10 kPa (passive muscle
elastography); fat and air sit at the scale's floor, 1 kPa. The haptic level is the modulus on a
logarithmic scale from that floor (0) to cortical bone (255).

Labels (:data:`LABEL_TISSUE`): every name of :data:`models.labels.LABEL_TABLE` (all the generator
paints, primitive or real skeleton, and all the CT import's TotalSegmentator mappings give) has a
row. Bone labels carry a NOMINAL class — pedicles and posterior elements are cortical bone (a thick
shell around little marrow), vertebral bodies, sacrum, coccyx, hip bones and femora cancellous — and
where the CT number at a point is known, :func:`tissue_at_point` splits bone by HU instead: at or
above :data:`CORTICAL_HU` it is cortical. A label name the table does not know (an imported CT's
``label_7``, a mask file's own name) is soft tissue, not bone, not bulk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fluorosim.models.labels import LABEL_TABLE, LUMBAR_LEVELS
from fluorosim.models.materials import mu_per_mm


@dataclass(frozen=True)
class TissueClass:
    """One tissue class: its reference material, stiffness and how it resists an instrument."""

    name: str
    material: str | None  # a models.materials name; None: no tabulated material of its own
    modulus_pa: float  # elastic modulus, Pa (sets the haptic level)
    resists_advance: bool  # an instrument without tap/drill advances only slowly through it

    @property
    def haptic_level(self) -> int:
        """STP/1 ``HAPT`` level 0–255: the modulus on a log scale, floor 0, cortical bone 255."""
        top = math.log(CORTICAL_MODULUS_PA / MODULUS_FLOOR_PA)
        level = 255.0 * math.log(self.modulus_pa / MODULUS_FLOOR_PA) / top
        return int(round(min(255.0, max(0.0, level))))


#: Modulus of cortical bone (the top of the haptic scale), Pa.
CORTICAL_MODULUS_PA = 17e9
#: Floor of the haptic scale (fat, air), Pa: level 0.
MODULUS_FLOOR_PA = 1e3

#: The tissue classes, softest first.
TISSUE_CLASSES: dict[str, TissueClass] = {
    row.name: row
    for row in (
        TissueClass("air", None, 1e3, False),
        TissueClass("fat", "adipose", 1e3, False),
        TissueClass("soft_tissue", "muscle", 10e3, False),
        TissueClass("disc", None, 10e6, False),
        TissueClass("cancellous_bone", None, 344e6, False),
        TissueClass("cortical_bone", "cortical_bone", CORTICAL_MODULUS_PA, True),
    )
}

#: CT number at or above which a point inside a bone label is cortical bone: between lumbar
#: cancellous bone (≈100–250 HU in adults: Schreiber, Anderson & Hsu, J Bone Joint Surg Am
#: 2011;93:1057) and cortical bone (> 1000 HU).
CORTICAL_HU = 600.0


@dataclass(frozen=True)
class LabelTissue:
    """What a label is: its (nominal) tissue class, whether it is bone, whether it is bulk tissue.

    ``bone``: painted with trabecular texture and split cortical/cancellous by HU at a point.
    ``bulk``: air or bulk soft tissue (skin, fat, muscle), never named as a structure nearby.
    """

    label: str
    tissue: str
    bone: bool = False
    bulk: bool = False


def _classify(label: str) -> LabelTissue:
    """The table row of one label name of models.labels (the naming rules written out once)."""
    if label == "background":
        return LabelTissue(label, "air", bulk=True)
    if label == "fat":
        return LabelTissue(label, "fat", bulk=True)
    if label in ("skin", "muscle"):
        return LabelTissue(label, "soft_tissue", bulk=True)
    if label.startswith("disc_"):
        return LabelTissue(label, "disc")
    if label.startswith(LUMBAR_LEVELS) and (
        "_pedicle_" in label or label.endswith("_posterior_elements")
    ):
        return LabelTissue(label, "cortical_bone", bone=True)
    if (
        (label.startswith(LUMBAR_LEVELS) and label.endswith("_body"))
        or label in ("sacrum", "coccyx")
        or label.startswith(("ilium_", "femur_"))
    ):
        return LabelTissue(label, "cancellous_bone", bone=True)
    return LabelTissue(label, "soft_tissue")


#: label name → its row, for every label of models.labels.
LABEL_TISSUE: dict[str, LabelTissue] = {name: _classify(name) for name in LABEL_TABLE}

#: Labels that are bone (trabecular texture when painted, bone last when CT masks overlap, the
#: HU split into cortical/cancellous at a point).
BONE_LABELS: frozenset[str] = frozenset(n for n, row in LABEL_TISSUE.items() if row.bone)
#: Air and bulk soft tissue: not a structure to name as "near the …" in a finding.
BULK_LABELS: frozenset[str] = frozenset(n for n, row in LABEL_TISSUE.items() if row.bulk)

#: Materials the HU → μ line runs through (after air), in increasing μ: the tissue classes'
#: reference materials and water (0 HU by definition).
HU_ANCHOR_MATERIALS: tuple[str, ...] = tuple(
    sorted(
        {"water"} | {c.material for c in TISSUE_CLASSES.values() if c.material is not None},
        key=lambda material: float(mu_per_mm(material, 70.0)),
    )
)


def label_tissue(label: str) -> LabelTissue:
    """The row of ``label``; a name the table does not know is soft tissue (not bone, not bulk)."""
    row = LABEL_TISSUE.get(label)
    if row is not None:
        return row
    if label == "":
        return LABEL_TISSUE["background"]
    return LabelTissue(label, "soft_tissue")


def tissue_of_label(label: str) -> str:
    """The nominal tissue class name of a label (``femur_left`` → ``cancellous_bone``)."""
    return label_tissue(label).tissue


def tissue_at_point(label: str, hu: float | None = None, cortical_hu: float = CORTICAL_HU) -> str:
    """The tissue class at a point of ``label`` whose CT number is ``hu``.

    Bone labels are cortical bone at or above ``cortical_hu`` (:data:`CORTICAL_HU`) and cancellous
    bone below it; without ``hu`` (or for any other label) the label's nominal class.
    """
    row = label_tissue(label)
    if row.bone and hu is not None:
        return "cortical_bone" if hu >= cortical_hu else "cancellous_bone"
    return row.tissue


def haptic_level(tissue_or_label: str) -> int:
    """``HAPT`` level 0–255 of a tissue class name or, failing that, of a label's nominal class."""
    tissue = TISSUE_CLASSES.get(tissue_or_label)
    if tissue is None:
        tissue = TISSUE_CLASSES[tissue_of_label(tissue_or_label)]
    return tissue.haptic_level
