"""The patient's measurements, drawn from published distributions, that the template is warped to.

:func:`patient_targets` turns :class:`~models.phantom.parts.PatientParameters` into
:class:`PatientTargets`: what this patient's bones measure. The warp (:mod:`models.template.warp`)
then bends the one real template (the Visible Human Male) until it measures exactly that. Same
parameters and seed → identical targets (each quantity family has its own random stream; the
stream names differ in their first 8 bytes, which is what ``PatientParameters.rng`` keys on).

Every length is the population value × ``body_scale`` × a sex factor × a shared per-patient size
factor × its own seeded variation (normal draws clipped at ±2.5 SD, so no patient is absurd).

Lumbar vertebral bodies (absolute mm; per level L1…L5):

- width / depth / mid height: Clouthier et al., J Biomech 2023 (CT, 87 patients), L2–L5 means
  46.7 / 35.0 / 27.8 with ranges 39.4–58.8 / 29.5–42.0 / 23.5–32.3; the level trend from Panjabi et
  al., Spine 1992 (endplate width ≈40 at L1 → ≈49 at L5) and Cook & Baker, IJSS 2021 (L5 endplate
  depth 35.7/35.3, L5 heights 30.3±1.9 anterior / 26.3±1.9 posterior). The per-level means below
  average exactly to Clouthier's L2–L5 means. The SD is the range / 5.7 (the expected range of
  87 × 4 = 348 normal values), with the sex difference and the level trend taken out of it.
  The width is the body's *mean* width (its coronal section through the body's middle, area /
  height, as :mod:`models.yardstick` measures it): Clouthier's own mean shape reads 44.3 / 46.6 /
  48.2 / 51.3 mm that way (mean 47.6 against their published 46.7), while its waist alone reads
  40.0–48.5 and its rims 51.5–55.5, so neither is what they published.
- anterior − posterior body height (the body's own wedge): L5 +4.0 (Cook & Baker 2021); L1–L4 are
  the values that make the published disc heights and the standing segmental lordosis agree
  (anterior − posterior disc height = depth × tan(segmental lordosis − body wedge)).
- pedicle height (the isthmus's vertical chord) L1…L5 15.4 / 15.0 / 14.9 / 14.8 / 14.0: Zindrick et
  al., Spine 1987; SD 1.9 mm (the L5 series' 12.9 ± 1.9 in anatomy.md), mostly shared by the
  patient's five levels (one patient's pedicles are tall or short together), clipped at ±2 SD; its own
  random stream, so adding it moved no other draw. The template's pedicles are taller (19–24 mm):
  the warp lowers only their undersides (:mod:`models.template.pedicle`).
- spinal canal width and depth (L2…L5), measured as :mod:`models.yardstick` measures them (the
  enclosed hole at pedicle level: full left–right extent, antero-posterior extent on the midline):
  the level pattern is the population-mean CT shape's (Clouthier et al., J Biomech 2023, the mean
  surface of their statistical shape model of 87 CTs, measured alike: widths 23.8 / 25.0 / 27.5 /
  35.5, depths 17.0 / 16.0 / 16.0 / 17.5), scaled so that L2–L5 average Clouthier's published means
  (width 26.7, range 21.5–31.8; depth 16.7, range 13.0–20.4). The SD is Clouthier's range / 4
  (taken as ±2 SD) at L2–L4 and Cook & Baker, IJSS 2021 at L5 (width 28.2 ± 3.1, AP depth
  15.6 ± 2.1), as coefficients of variation; it scales with the patient's size and sex as the
  bodies do, and the rest is mostly shared by the patient's levels (a narrow canal is narrow
  throughout; the split is approx.). Draws are clipped at ±2 SD and within Clouthier's range (L5's
  width, whose lateral recesses the hole's full extent includes (the mean shape reads 35.5), at
  its own ±2 SD). L1 is in neither source: the template's L1 canal takes the factor the
  patient's L2–L5 canal has over the template's (the mean of the four levels' ratios; the
  template's canal measured by models.yardstick, TEMPLATE_CANAL_MM). Kept with the template's
  and scaled with L1's body (0.8 × for the default patient) it read 14.5 × 11.5 mm, a stenotic
  canal and a 6 mm step in the owl eyes' spacing from L2 to L1 on AP.
- facet joint angle to the sagittal plane (the axial view) L2/3, L3/4, L4/5, L5/S1: 30.4 / 38.7 /
  47.0 / 47.3°, Jentzsch et al., Radiol Res Pract 2013 (CT, 620 patients), whose SD is not quoted
  in the reference docs: taken as ≈6.7° (approx.), mostly shared by the patient's joints (6.0° shared,
  2.5° per level, 1.5° per side; each clipped at ±2 SD), so one patient's facets are sagittal or
  coronal together and the caudal turn toward coronal survives. Left and right differ by
  ≈1.7° on average: Jentzsch's mean asymmetry (4.9–6.7° at L2/3–L4/5) includes measurement error
  and arthritic joints; tropism is kept small here (approx.). L5/S1 (Jentzsch's 47.3°; the
  template's reads 32–37°) takes the same parts (the shared one and its own level and side parts)
  drawn after all the others on the stream, so the L2/3–L4/5 draws of every patient are what they
  were before it was drawn. Its own random stream, so no other draw moved. The warp turns both
  processes of each joint together, at L5/S1 L5's inferior and the sacrum's superior articular
  processes (:mod:`models.template.facet`).
- sex: female vertebral bodies ≈6 % smaller in linear size than male (approx.; female ×0.97, male
  ×1.03 around the mixed-sex mean).

Discs and curvature:

- disc posterior heights L1/2…L5/S1 7.3 / 8.6 / 9.1 / 10.1 / 8.5 (anatomy.md disc table), SD 12 %
  (approx.); the anterior height follows from the posterior height, the upper body's depth and the
  disc wedge = segmental lordosis − upper body wedge (so the table's anterior heights come back for
  a standing patient).
- segmental lordosis L1-2…L5-S1 standing 1.2 / 5.9 / 9.1 / 12.7 / 21.6, × ``lordosis_scale``; the
  patient's total varies with SD 11.2° standing and 13.2° recumbent (T12–S1 49.8±11.2 standing vs
  36.8±13.2 recumbent), interpolated for other scales; ±1° independent per segment.
- sacral slope: ``params.sacral_slope_deg`` exactly (already a validated per-patient parameter,
  24–55° as published, i.e. 39.5±7.75 as mean ±2 SD; scenarios set it, so it is not redrawn here).
- the total lordosis is drawn *given* that sacral slope: lumbar lordosis and sacral slope are
  strongly correlated (Roussouly et al., Spine 2005; Vialle et al., JBJS Am 2005; correlation
  taken as 0.8, approx.), because the lordosis brings L1 back over the sacrum. Drawn apart, a
  steep sacrum could carry a flat lumbar spine and the column leaned forward (the default patient:
  sacral slope 38°, lordosis 15°, L1 tilted 23° forward). Over patients whose sacral slopes follow
  the published range the total keeps the published mean and SD.

Sacrum and pelvis (ratios to the population mean, applied to the template, which stands for the
mean male: the absolute published figures use measuring conventions the template cannot reproduce
exactly, their relative spread and sex differences it can):

- sacral height 98.0±9.2 (Oman Med J, female sacra); male sacra ≈6 % longer (approx.); sacral
  width ≈95–109 (Korean PMCT) is the same breadth as the interauricular distance and follows it:
  the female sacrum is shorter and, with the wider female pelvis, wider;
- S1 body width 40.3±7.0 (same sources): it follows the interauricular breadth (so the ala between
  the S1 body and the joint never folds) plus its own spread (clipped at ±1.5 SD);
- interauricular distance 108.7±11.0, auricular (SIJ) height 56.2±4.6 (same sources);
- pelvic width: female pelvis ≈6 % wider than male (approx.), the interauricular distance follows
  it.
- iliac crest top relative to the centre of the L4–L5 disc: normally just below it (−5±3 mm,
  approx.: the intercristal line crosses L4–L5 or the upper L5 body); ``high_iliac_crest`` above it
  (+6±3 mm, approx.), which blocks the L5–S1 transforaminal approach (procedures.md: 5–28 % of
  patients).

Variants:

- ``transitional_l5``: sacralised L5 (Castellvi type II, approx.): broad L5 transverse processes
  (tip 52 mm from the midline) reaching down to ≈2.5 mm from the sacral ala, and a hypoplastic
  L5–S1 disc (×0.55).
- ``narrow_foramen``: collapsed, degenerated L4–L5 and L5–S1 discs (posterior height ×0.6, approx.),
  which lowers the foraminal height of both levels.
- ``dysmorphic_upper_sacrum``: the signs of Miller & Routt, J Am Acad Orthop Surg 2012;20(1):8-16
  (also tabulated in BMC Musculoskelet Disord 2019, trans-articular SIJ fusion with three screws,
  Table 7; prevalence of single signs 5 % (colinearity) to 70 % (residual S1–S2 disc), Weigelt et
  al., Clin Spine Surg 2019;32(3):E140-E144): the upper sacrum is not recessed in the pelvis (S1
  colinear with the iliac crests on the outlet view: the sacrum rides ≈4 mm higher between the
  ilia (its upper part stretched above the joints) and the crest top is ≈13 mm below the L4–L5
  disc centre instead of ≈5), mammillary processes on the dorsal ala, an acute (steeper)
  alar slope, large non-round upper sacral foramina, a tongue-in-groove sacroiliac joint and a
  residual S1–S2 disc (a flag for the volume builder: a warp cannot paint a disc). Magnitudes are
  approx.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS, SIDES
from fluorosim.models.phantom.parts import PatientParameters

# --- lumbar bodies ------------------------------------------------------------------------------
#: Mean body width L1…L5 (Panjabi 1992 trend; L2–L5 average = Clouthier 2023's 46.7).
BODY_WIDTH_MM = (40.0, 44.0, 46.3, 47.7, 48.8)
#: Mean body depth L1…L5 (L2–L5 average = Clouthier 2023's 35.0; L5 Cook & Baker 2021 35.5).
BODY_DEPTH_MM = (33.5, 34.3, 34.9, 35.3, 35.5)
#: Mean body mid height L1…L5 (L2–L5 average = Clouthier 2023's 27.8; L5 = (30.3 + 26.3) / 2).
BODY_HEIGHT_MM = (26.9, 27.4, 27.9, 27.6, 28.3)
#: Published L2–L5 means and ranges (Clouthier 2023), used for the SDs and checked by the tests.
CLOUTHIER_L2_L5 = {
    "width": (46.7, 39.4, 58.8),
    "depth": (35.0, 29.5, 42.0),
    "height": (27.8, 23.5, 32.3),
}
#: Pedicle height L1…L5 (Zindrick 1987) and its SD (L5 12.9 ± 1.9, anatomy.md), split into a shift
#: shared by the patient's five levels and a per-level part (1.7² + 0.85² ≈ 1.9²; the split is
#: approx.), each clipped at ±2 SD.
PEDICLE_HEIGHT_MM = (15.4, 15.0, 14.9, 14.8, 14.0)
PEDICLE_HEIGHT_SHARED_SD_MM = 1.7
PEDICLE_HEIGHT_LEVEL_SD_MM = 0.85
PEDICLE_HEIGHT_CLIP_SD = 2.0
#: Spinal canal width / depth L1…L5 as models.yardstick measures them: the population-mean shape's
#: L2–L5 (Clouthier 2023's mean surface: 23.8 / 25.0 / 27.5 / 35.5 and 17.0 / 16.0 / 16.0 / 17.5)
#: scaled to Clouthier's L2–L5 means; L1 follows them (TEMPLATE_CANAL_MM).
CANAL_MEAN_SHAPE_MM = {"width": (23.8, 25.0, 27.5, 35.5), "depth": (17.0, 16.0, 16.0, 17.5)}
#: Clouthier 2023's L2–L5 canal (mean, low, high), mm.
CLOUTHIER_CANAL_L2_L5 = {"width": (26.7, 21.5, 31.8), "depth": (16.7, 13.0, 20.4)}
#: Cook & Baker 2021's L5 canal (mean, SD), mm.
COOK_BAKER_L5_CANAL = {"width": (28.2, 3.1), "depth": (15.6, 2.1)}
#: The shipped template's (Visible Human Male) canal L1…L5, measured by models.yardstick; L1's
#: drawn canal is its L1 times the mean factor the patient's L2–L5 have over these (no published
#: L1 canal in the reference tables).
TEMPLATE_CANAL_MM = {
    "width": (18.0, 21.5, 18.75, 24.5, 29.5),
    "depth": (14.0, 12.5, 12.5, 15.0, 16.0),
}
#: Fraction of a canal's own variance shared by the patient's levels (approx.).
CANAL_SHARED_VARIANCE = 0.64
CANAL_CLIP_SD = 2.0
#: Facet joint angle to the sagittal plane L2/3, L3/4, L4/5, L5/S1 (Jentzsch 2013) and its SD
#: (approx.), split into a patient-wide, a per-joint and a per-side part, each clipped at
#: ±FACET_CLIP_SD. Drawn in this order: L5/S1, added last, came after the others' draws (keep it
#: last, or every patient's L2/3–L4/5 angles change).
FACET_ANGLE_DEG = {"L2_L3": 30.4, "L3_L4": 38.7, "L4_L5": 47.0, "L5_S1": 47.3}
FACET_SHARED_SD_DEG = 6.0
FACET_LEVEL_SD_DEG = 2.5
FACET_SIDE_SD_DEG = 1.5
FACET_CLIP_SD = 2.0
#: Expected range of 348 normal values in SDs (87 patients × 4 levels).
RANGE_IN_SD = 5.7
#: L5 anterior − posterior height (Cook & Baker 2021: 30.3 − 26.3).
L5_HEIGHT_DIFFERENCE_MM = 4.0
#: SD of anterior − posterior body height (approx.; Cook & Baker's heights are ±1.9 each and
#: strongly correlated).
HEIGHT_DIFFERENCE_SD_MM = 1.0
#: Female / male linear size of the vertebral bodies around the mixed-sex mean (approx. 0.94).
VERTEBRA_SEX_FACTOR = {"female": 0.97, "male": 1.03}
#: Shared per-patient skeletal size factor (SD, approx.): correlates all bones of one patient.
PATIENT_SIZE_SD = 0.04

# --- discs and curvature ------------------------------------------------------------------------
#: Disc heights anterior / middle / posterior L1/2…L5/S1 (anatomy.md disc table).
DISC_HEIGHT_MM = (
    (10.8, 10.0, 7.3),
    (13.1, 11.6, 8.6),
    (15.2, 12.5, 9.1),
    (18.1, 13.8, 10.1),
    (18.7, 13.0, 8.5),
)
DISC_HEIGHT_SD = 0.12
#: Standing segmental lordosis L1-2…L5-S1 (anatomy.md).
SEGMENTAL_LORDOSIS_DEG = (1.2, 5.9, 9.1, 12.7, 21.6)
#: T12–S1 lordosis SD standing / recumbent and the recumbent-to-standing ratio (36.8 / 49.8).
LORDOSIS_SD_STANDING_DEG = 11.2
LORDOSIS_SD_RECUMBENT_DEG = 13.2
RECUMBENT_LORDOSIS_SCALE = 36.8 / 49.8
SEGMENT_LORDOSIS_NOISE_DEG = 1.0
#: Sacral slope of the population (24–55 = mean ±2 SD, anatomy.md) and its correlation with the
#: lumbar lordosis (approx.; Roussouly 2005, Vialle 2005).
SACRAL_SLOPE_MEAN_SD_DEG = (39.5, 7.75)
LORDOSIS_SACRAL_SLOPE_CORRELATION = 0.8

# --- sacrum and pelvis --------------------------------------------------------------------------
SACRAL_HEIGHT_MM = {"female": (98.0, 9.2), "male": (98.0 * 1.06, 9.2 * 1.06)}
#: Sacral width ≈95–109 (midpoint): the same breadth as the interauricular distance, so it follows
#: it rather than being drawn apart (two independent breadths would fold the ala).
SACRAL_WIDTH_MM = 102.0
S1_BODY_WIDTH_MM = (40.3, 7.0)
S1_BODY_WIDTH_CLIP_SD = 1.5
INTERAURICULAR_MM = (108.7, 11.0)
AURICULAR_HEIGHT_MM = (56.2, 4.6)
#: Hip-bone lateral scale by sex (female pelvis ≈6 % wider, approx.) and its SD; the interauricular
#: distance follows the pelvic width plus its own variation (together its published SD).
PELVIC_WIDTH_SEX = {"female": 1.03, "male": 0.97}
PELVIC_WIDTH_SD = 0.07
#: Female hip bones and sacrum ≈3 % smaller in the sagittal plane than male (approx.).
PELVIC_SAGITTAL_SEX = {"female": 0.97, "male": 1.0}
#: Iliac crest top above the L4–L5 disc centre: (mean, SD, low, high) mm, approx.
CREST_ABOVE_L4_L5_MM = {
    "normal": (-5.0, 3.0, -12.0, -1.5),
    "high": (6.0, 3.0, 2.0, 14.0),
    "dysmorphic": (-13.0, 3.0, -20.0, -8.0),
}
#: Dysmorphic upper sacrum (approx.): how far
#: the sacrum rides up between the ilia, the mammillary process height, the tongue depth, the
#: S1 foramen enlargement (craniocaudal, transverse).
DYSMORPHIC_SACRUM_RAISE_MM = (4.0, 0.7, 3.0, 5.0)
MAMMILLARY_PROCESS_MM = (6.0, 1.0, 4.0, 8.0)
TONGUE_IN_GROOVE_MM = (3.5, 0.7, 2.0, 5.0)
DYSMORPHIC_S1_FORAMEN_SCALE = (1.45, 1.15)
#: Transitional L5: transverse process tip from the midline and its gap to the ala (approx.).
TRANSITIONAL_TRANSVERSE_HALF_SPAN_MM = 52.0
TRANSITIONAL_ALA_GAP_MM = 2.5
TRANSITIONAL_DISC_FACTOR = 0.55
NARROW_FORAMEN_DISC_FACTOR = 0.6

Sex = Literal["female", "male"]


@dataclass(frozen=True)
class VertebraTargets:
    """One lumbar vertebral body: width, depth (midsagittal), rim heights anterior / posterior."""

    body_width_mm: float
    body_depth_mm: float
    body_height_anterior_mm: float
    body_height_posterior_mm: float
    #: vertical chord through the pedicle isthmus (Zindrick 1987's pedicle height)
    pedicle_height_mm: float = 15.0
    #: spinal canal as models.yardstick measures it (None: the template's, scaled with the body;
    #: every level is drawn since generator 5.8)
    canal_width_mm: float | None = None
    canal_depth_mm: float | None = None

    @property
    def body_height_mm(self) -> float:
        return 0.5 * (self.body_height_anterior_mm + self.body_height_posterior_mm)

    @property
    def body_wedge_deg(self) -> float:
        """Angle between the body's endplates (positive: taller anteriorly, lordotic)."""
        return body_wedge_deg(
            self.body_height_anterior_mm, self.body_height_posterior_mm, self.body_depth_mm
        )


@dataclass(frozen=True)
class DiscTargets:
    """One disc level: posterior / anterior height and the segmental lordosis.

    Segmental lordosis ``X-Y`` is the sagittal angle between the superior endplates of X and Y
    (positive: lordotic); the disc wedge is that minus the body wedge of X.
    """

    posterior_height_mm: float
    anterior_height_mm: float
    segmental_lordosis_deg: float
    wedge_deg: float


@dataclass(frozen=True)
class PelvisTargets:
    """Sacrum and hip bones: published-distribution draws and the ratios the warp applies."""

    sacral_height_mm: float
    sacral_width_mm: float
    s1_body_width_mm: float
    interauricular_distance_mm: float
    auricular_height_mm: float
    pelvic_width_scale: float
    #: Size of the pelvis in the sagittal plane relative to the template.
    sagittal_scale: float
    #: Crest top this far above the centre of the L4–L5 disc (negative: below it).
    iliac_crest_offset_mm: float
    #: Template-relative factors (1.0 = the template, the population-mean male).
    sacral_height_ratio: float
    s1_body_width_ratio: float
    interauricular_ratio: float
    auricular_height_ratio: float


@dataclass(frozen=True)
class VariantTargets:
    """What a variant adds (all zero / neutral for a typical patient)."""

    l5_transverse_half_span_mm: float | None = None
    l5_transverse_to_ala_gap_mm: float | None = None
    sacrum_raise_mm: float = 0.0
    mammillary_process_mm: float = 0.0
    tongue_in_groove_mm: float = 0.0
    s1_foramen_scale: tuple[float, float] = (1.0, 1.0)
    residual_s1_s2_disc: bool = False


@dataclass(frozen=True)
class PatientTargets:
    """Everything the warp needs for one patient (mm, degrees)."""

    sex: Sex
    variant: str | None
    size_factor: float
    vertebrae: dict[str, VertebraTargets]
    discs: dict[str, DiscTargets]  # "L1_L2" … "L5_S1"
    sacral_slope_deg: float
    pelvis: PelvisTargets
    variants: VariantTargets
    #: facet joint angle to the sagittal plane (deg) per joint ("L2_L3" …) and side
    facet_angles_deg: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def lumbar_lordosis_deg(self) -> float:
        """L1–S1 lordosis: the sum of the segmental angles."""
        return float(sum(d.segmental_lordosis_deg for d in self.discs.values()))


def disc_key(upper: str, lower: str) -> str:
    return f"{upper}_{lower}"


def body_wedge_deg(anterior_mm: float, posterior_mm: float, depth_mm: float) -> float:
    """Angle between the endplate lines of a body whose rim heights differ over its depth."""
    return math.degrees(2.0 * math.atan2(anterior_mm - posterior_mm, 2.0 * depth_mm))


def _normal(rng: np.random.Generator, mean: float, sd: float, clip_sd: float = 2.5) -> float:
    return mean + sd * float(np.clip(rng.standard_normal(), -clip_sd, clip_sd))


def _bounded(rng: np.random.Generator, spec: tuple[float, float, float, float]) -> float:
    mean, sd, low, high = spec
    return float(np.clip(mean + sd * rng.standard_normal(), low, high))


def _within_level_cv(name: str, level_means: tuple[float, ...]) -> float:
    """Residual CV of one dimension once the shared size, the sex and the level trend are removed."""
    mean, low, high = CLOUTHIER_L2_L5[name]
    total_sd = (high - low) / RANGE_IN_SD
    between_var = float(np.var(level_means[1:]))
    sex_var = (0.03 * mean) ** 2
    size_var = (PATIENT_SIZE_SD * mean) ** 2
    return math.sqrt(max(total_sd**2 - between_var - sex_var - size_var, 0.0)) / mean


def body_wedge_means_deg() -> tuple[float, ...]:
    """Mean body wedge L1…L5 that makes the disc table agree with the standing lordosis."""
    wedges = []
    for n in range(4):
        anterior, _, posterior = DISC_HEIGHT_MM[n]
        depth = 0.5 * (BODY_DEPTH_MM[n] + BODY_DEPTH_MM[n + 1])
        disc_wedge = math.degrees(math.atan2(anterior - posterior, depth))
        wedges.append(SEGMENTAL_LORDOSIS_DEG[n] - disc_wedge)
    wedges.append(math.degrees(math.atan2(L5_HEIGHT_DIFFERENCE_MM, BODY_DEPTH_MM[4])))
    return tuple(wedges)


def lordosis_sd_deg(lordosis_scale: float) -> float:
    """SD of the total lumbar lordosis at a posture (11.2° standing → 13.2° recumbent)."""
    fraction = (1.0 - lordosis_scale) / (1.0 - RECUMBENT_LORDOSIS_SCALE)
    fraction = float(np.clip(fraction, 0.0, 1.0))
    return LORDOSIS_SD_STANDING_DEG + fraction * (
        LORDOSIS_SD_RECUMBENT_DEG - LORDOSIS_SD_STANDING_DEG
    )


def lordosis_factor(lordosis_scale: float, sacral_slope_deg: float, z: float) -> float:
    """This patient's total lordosis / the population mean at the posture, given the sacral slope
    and a standard normal draw ``z``: the conditional normal of the (total, slope) pair."""
    mean_total = sum(SEGMENTAL_LORDOSIS_DEG) * lordosis_scale
    level_noise_var = len(SEGMENTAL_LORDOSIS_DEG) * SEGMENT_LORDOSIS_NOISE_DEG**2
    total_sd = math.sqrt(max(lordosis_sd_deg(lordosis_scale) ** 2 - level_noise_var, 1.0))
    slope_mean, slope_sd = SACRAL_SLOPE_MEAN_SD_DEG
    rho = LORDOSIS_SACRAL_SLOPE_CORRELATION
    shift = rho * total_sd * (sacral_slope_deg - slope_mean) / slope_sd
    residual_sd = total_sd * math.sqrt(1.0 - rho**2)
    z = float(np.clip(z, -2.5, 2.5))
    return float(np.clip(1.0 + (shift + residual_sd * z) / mean_total, 0.2, 1.8))


def patient_targets(params: PatientParameters) -> PatientTargets:
    """Draw this patient's measurements; same parameters and seed → identical targets."""
    sex: Sex = params.sex
    variant = params.variant
    size_rng = params.rng("tmplsize")
    size_factor = 1.0 + PATIENT_SIZE_SD * float(np.clip(size_rng.standard_normal(), -2.5, 2.5))
    scale = params.body_scale * size_factor
    vertebrae = _vertebrae(params, scale)
    discs = _discs(params, vertebrae, scale)
    pelvis = _pelvis(params, size_factor)
    variants = _variants(params, scale)
    return PatientTargets(
        sex=sex,
        variant=variant,
        size_factor=size_factor,
        vertebrae=vertebrae,
        discs=discs,
        sacral_slope_deg=float(params.sacral_slope_deg),
        pelvis=pelvis,
        variants=variants,
        facet_angles_deg=facet_angles_deg(params),
    )


def _vertebrae(params: PatientParameters, scale: float) -> dict[str, VertebraTargets]:
    rng = params.rng("tmplvert")
    pedicle_rng = params.rng("tmplpedh")
    # one patient's pedicles are tall or short together: a shared shift plus a little per level
    pedicle_shift = _normal(pedicle_rng, 0.0, PEDICLE_HEIGHT_SHARED_SD_MM, PEDICLE_HEIGHT_CLIP_SD)
    sex = VERTEBRA_SEX_FACTOR[params.sex]
    cv = {
        "width": _within_level_cv("width", BODY_WIDTH_MM),
        "depth": _within_level_cv("depth", BODY_DEPTH_MM),
        "height": _within_level_cv("height", BODY_HEIGHT_MM),
    }
    wedges = body_wedge_means_deg()
    canals = _canals(params, scale)
    vertebrae = {}
    for n, level in enumerate(LUMBAR_LEVELS):
        width = BODY_WIDTH_MM[n] * scale * sex * _normal(rng, 1.0, cv["width"])
        depth = BODY_DEPTH_MM[n] * scale * sex * _normal(rng, 1.0, cv["depth"])
        height = BODY_HEIGHT_MM[n] * scale * sex * _normal(rng, 1.0, cv["height"])
        mean_difference = BODY_DEPTH_MM[n] * math.tan(math.radians(wedges[n]))
        difference = _normal(rng, mean_difference, HEIGHT_DIFFERENCE_SD_MM) * scale * sex
        pedicle = (
            PEDICLE_HEIGHT_MM[n]
            + pedicle_shift
            + _normal(pedicle_rng, 0.0, PEDICLE_HEIGHT_LEVEL_SD_MM, PEDICLE_HEIGHT_CLIP_SD)
        )
        canal_width, canal_depth = canals.get(level, (None, None))
        vertebrae[level] = VertebraTargets(
            body_width_mm=width,
            body_depth_mm=depth,
            body_height_anterior_mm=height + difference / 2,
            body_height_posterior_mm=height - difference / 2,
            pedicle_height_mm=pedicle * scale * sex,
            canal_width_mm=canal_width,
            canal_depth_mm=canal_depth,
        )
    return vertebrae


def canal_means_mm(name: str) -> tuple[float, ...]:
    """Population-mean canal ``name`` ("width" or "depth") L2…L5: the mean shape's level pattern
    scaled to Clouthier 2023's L2–L5 mean."""
    pattern = CANAL_MEAN_SHAPE_MM[name]
    mean = CLOUTHIER_CANAL_L2_L5[name][0]
    return tuple(value * mean / float(np.mean(pattern)) for value in pattern)


def canal_cv(name: str, level: str) -> float:
    """Population coefficient of variation of canal ``name`` at ``level`` (L2–L4: Clouthier's
    range as ±2 SD around the L2–L5 mean; L5: Cook & Baker 2021)."""
    if level == "L5":
        mean, sd = COOK_BAKER_L5_CANAL[name]
        return sd / mean
    mean, low, high = CLOUTHIER_CANAL_L2_L5[name]
    return (high - low) / 4.0 / mean


def canal_bounds_mm(name: str, level: str) -> tuple[float, float]:
    """Where a drawn canal is clipped: Clouthier's L2–L5 range, L5's width at its own ±2 SD."""
    if name == "width" and level == "L5":
        mean = canal_means_mm(name)[-1]
        spread = CANAL_CLIP_SD * canal_cv(name, level) * mean
        return mean - spread, mean + spread
    _, low, high = CLOUTHIER_CANAL_L2_L5[name]
    return low, high


def _canals(params: PatientParameters, scale: float) -> dict[str, tuple[float, float]]:
    """(width, depth) of the canal per level L2…L5, drawn on its own random stream, and L1's from
    the template's scaled as the patient's L2–L5 are (TEMPLATE_CANAL_MM)."""
    rng = params.rng("tmplcanl")
    sex = VERTEBRA_SEX_FACTOR[params.sex]
    shared = {name: float(rng.standard_normal()) for name in ("width", "depth")}
    canals = {}
    for n, level in enumerate(LUMBAR_LEVELS[1:]):
        drawn = []
        for name in ("width", "depth"):
            cv = canal_cv(name, level)
            own_cv = math.sqrt(max(cv**2 - 0.03**2 - PATIENT_SIZE_SD**2, 0.0))
            z = math.sqrt(CANAL_SHARED_VARIANCE) * shared[name] + math.sqrt(
                1.0 - CANAL_SHARED_VARIANCE
            ) * float(rng.standard_normal())
            z = float(np.clip(z, -CANAL_CLIP_SD, CANAL_CLIP_SD))
            value = canal_means_mm(name)[n] * scale * sex * (1.0 + own_cv * z)
            drawn.append(float(np.clip(value, *canal_bounds_mm(name, level))))
        canals[level] = (drawn[0], drawn[1])
    canals["L1"] = (_l1_canal_mm(canals, "width"), _l1_canal_mm(canals, "depth"))
    return canals


def _l1_canal_mm(canals: dict[str, tuple[float, float]], name: str) -> float:
    """L1's canal ``name``: the template's, times the mean factor the drawn L2–L5 have over the
    template's (TEMPLATE_CANAL_MM)."""
    k = ("width", "depth").index(name)
    template = TEMPLATE_CANAL_MM[name]
    factors = [canals[level][k] / template[n] for n, level in enumerate(LUMBAR_LEVELS[1:], 1)]
    return template[0] * float(np.mean(factors))


def facet_angles_deg(params: PatientParameters) -> dict[str, dict[str, float]]:
    """This patient's facet joint angles to the sagittal plane (Jentzsch 2013 means), per joint and
    side; its own random stream."""
    rng = params.rng("tmplfacet")
    clip = FACET_CLIP_SD
    shared = _normal(rng, 0.0, FACET_SHARED_SD_DEG, clip)
    angles = {}
    for joint, mean in FACET_ANGLE_DEG.items():
        level = _normal(rng, 0.0, FACET_LEVEL_SD_DEG, clip)
        angles[joint] = {
            side: mean + shared + level + _normal(rng, 0.0, FACET_SIDE_SD_DEG, clip)
            for side in SIDES
        }
    return angles


def _discs(
    params: PatientParameters, vertebrae: dict[str, VertebraTargets], scale: float
) -> dict[str, DiscTargets]:
    rng = params.rng("tmpldisc")
    lordosis_rng = params.rng("tmpllord")
    s = params.lordosis_scale
    factor = lordosis_factor(
        s, float(params.sacral_slope_deg), float(lordosis_rng.standard_normal())
    )
    discs = {}
    for n, (upper, lower) in enumerate(DISC_LEVELS):
        _, _, posterior = DISC_HEIGHT_MM[n]
        posterior *= scale * _normal(rng, 1.0, DISC_HEIGHT_SD)
        if params.variant == "narrow_foramen" and upper in ("L4", "L5"):
            posterior *= NARROW_FORAMEN_DISC_FACTOR
        if params.variant == "transitional_l5" and lower == "S1":
            posterior *= TRANSITIONAL_DISC_FACTOR
        lordosis = SEGMENTAL_LORDOSIS_DEG[n] * s * factor + _normal(
            lordosis_rng, 0.0, SEGMENT_LORDOSIS_NOISE_DEG
        )
        body = vertebrae[upper]
        # A disc never opens posteriorly: the segment is at least as lordotic as the body above.
        lordosis = max(lordosis, body.body_wedge_deg)
        wedge = lordosis - body.body_wedge_deg
        anterior = posterior + body.body_depth_mm * math.tan(math.radians(wedge))
        discs[disc_key(upper, lower)] = DiscTargets(
            posterior_height_mm=posterior,
            anterior_height_mm=anterior,
            segmental_lordosis_deg=lordosis,
            wedge_deg=wedge,
        )
    return discs


def _less_size(mean: float, sd: float) -> float:
    """The SD left for a quantity's own variation once the shared size factor is taken out."""
    return math.sqrt(max(sd**2 - (PATIENT_SIZE_SD * mean) ** 2, 0.0))


def _pelvis(params: PatientParameters, size_factor: float) -> PelvisTargets:
    rng = params.rng("tmplpelv")
    sex = params.sex
    k = params.body_scale * size_factor
    height_mean, height_sd = SACRAL_HEIGHT_MM[sex]
    sacral_height = k * _normal(rng, height_mean, _less_size(height_mean, height_sd))
    # Pelvic width (with the sex difference) carries most of the interauricular spread; the rest
    # is the joint's own.
    iad_mean, iad_sd = INTERAURICULAR_MM
    sex_cv = PELVIC_WIDTH_SEX["female"] - 1.0
    own_cv = math.sqrt(
        max((iad_sd / iad_mean) ** 2 - PELVIC_WIDTH_SD**2 - sex_cv**2 - PATIENT_SIZE_SD**2, 0.0)
    )
    pelvic_width = PELVIC_WIDTH_SEX[sex] * _normal(rng, 1.0, PELVIC_WIDTH_SD)
    interauricular = k * iad_mean * pelvic_width * _normal(rng, 1.0, own_cv)
    # The S1 body follows the breadth of the sacrum (so the alae never fold) plus its own spread.
    s1_mean, s1_sd = S1_BODY_WIDTH_MM
    s1_own = math.sqrt(max((s1_sd / s1_mean) ** 2 - (iad_sd / iad_mean) ** 2, 0.0))
    s1_width = (
        s1_mean * (interauricular / iad_mean) * _normal(rng, 1.0, s1_own, S1_BODY_WIDTH_CLIP_SD)
    )
    auricular_mean, auricular_sd = AURICULAR_HEIGHT_MM
    auricular_height = k * _normal(rng, auricular_mean, _less_size(auricular_mean, auricular_sd))
    kind = {"high_iliac_crest": "high", "dysmorphic_upper_sacrum": "dysmorphic"}.get(
        str(params.variant), "normal"
    )
    offset = _bounded(rng, CREST_ABOVE_L4_L5_MM[kind])
    male_height, _ = SACRAL_HEIGHT_MM["male"]
    male_s1 = S1_BODY_WIDTH_MM[0] * PELVIC_WIDTH_SEX["male"]
    male_iad = iad_mean * PELVIC_WIDTH_SEX["male"]
    return PelvisTargets(
        sacral_height_mm=sacral_height,
        sacral_width_mm=SACRAL_WIDTH_MM * interauricular / iad_mean,
        s1_body_width_mm=s1_width,
        interauricular_distance_mm=interauricular,
        auricular_height_mm=auricular_height,
        pelvic_width_scale=k * pelvic_width / PELVIC_WIDTH_SEX["male"],
        sagittal_scale=k * PELVIC_SAGITTAL_SEX[sex],
        iliac_crest_offset_mm=offset,
        sacral_height_ratio=sacral_height / male_height,
        s1_body_width_ratio=s1_width / male_s1,
        interauricular_ratio=interauricular / male_iad,
        auricular_height_ratio=auricular_height / AURICULAR_HEIGHT_MM[0],
    )


def _variants(params: PatientParameters, scale: float) -> VariantTargets:
    rng = params.rng("tmplvari")
    if params.variant == "transitional_l5":
        return VariantTargets(
            l5_transverse_half_span_mm=TRANSITIONAL_TRANSVERSE_HALF_SPAN_MM * scale,
            l5_transverse_to_ala_gap_mm=TRANSITIONAL_ALA_GAP_MM,
        )
    if params.variant == "dysmorphic_upper_sacrum":
        return VariantTargets(
            sacrum_raise_mm=_bounded(rng, DYSMORPHIC_SACRUM_RAISE_MM) * params.body_scale,
            mammillary_process_mm=_bounded(rng, MAMMILLARY_PROCESS_MM) * params.body_scale,
            tongue_in_groove_mm=_bounded(rng, TONGUE_IN_GROOVE_MM) * params.body_scale,
            s1_foramen_scale=DYSMORPHIC_S1_FORAMEN_SCALE,
            residual_s1_s2_disc=True,
        )
    return VariantTargets()
