"""Patient dose bookkeeping: air kerma at the reference point, kerma-area product, beam-on time.

Model (all numbers below are constants of this module, each with its source):

1. Tube output. Air kerma per mAs at 1 m from the focal spot, Y(kVp) = Y80 · (kVp / 80)²
   (output ∝ kVp², the textbook rule), Y80 = 0.08 mGy/mAs — within the usual 0.05–0.1 mGy/mAs
   at 80 kVp for a tungsten tube with ≈3 mm Al filtration, and chosen so the default technique
   below reproduces the carm.md rates.
2. Reference point. Inverse square from 1 m to the reference point 30 cm in front of the image
   receptor, the US measurement point for C-arm fluoroscopes (21 CFR 1020.32(d)(3)(iv)).
3. Rate limit. The generator never exceeds 88 mGy/min at that point in normal mode
   (21 CFR 1020.32(e), carm.md): the rate is clipped, as a real generator's limiter does.
4. Modes, as dose rate relative to continuous fluoroscopy with the same technique (carm.md):
   pulsed 12 pps ≈ 51 %, 6 pps ≈ 40 %, 3 pps ≈ 20 % (Herrmann et al. 1996), interpolated
   linearly in pulse rate (15 pps → 59 %, 7.5 → 43 %, 4 → 27 %); low dose multiplies the dose
   per pulse by 0.40 so the default low-dose mode (7.5 pps) is ≈ −83 % (pulsed + low dose,
   Cho et al. 2011). A single shot is one exposure of ``duration_s`` at the technique.
5. Kerma-area product = air kerma at the reference point × exposed field area there
   (Gy·cm²; independent of where it is measured). Beam-on time = pedal-down time.

With the default continuous technique (75 kVp, 2.5 mA, SID 1000 mm) the rate at the reference
point is ≈22 mGy/min, inside carm.md's 15–30 mGy/min for a 22–27 cm field;
``typical_tube_current_ma`` scales the current with the field size (magnification modes need more
dose per image) so that 11–14 cm fields give 25–50 and 36–40 cm fields 9–18 mGy/min.

6. Automatic dose-rate control. A C-arm holds the signal in its measuring field constant, so the
   technique follows the patient (Bushberg et al., fluoroscopy: automatic brightness control and
   its kVp/mA curves). :func:`automatic_technique` holds the detected photons in the measuring
   field at what the typical technique gives through the reference patient (``REFERENCE_WATER_MM``
   of water and ``REFERENCE_BONE_MM`` of cortical bone) at ``DEFAULT_KVP``: photons per mA = tube output × photons per air kerma × the metered mean
   primary transmission, both of the polyenergetic beam (render.spectrum; the transmission from
   :mod:`render.metering`). It raises the tube current first, from ``ADRC_MIN_FRACTION`` of the
   typical current up to the current at which the rate reaches the 88 mGy/min limit; when that
   is not enough (a lateral through the pelvis, an obese patient) it raises the kVp in 1 kV
   steps from the session's up to ``ADRC_MAX_KVP``, where the harder beam crosses the patient
   with more of its photons — the mA-priority curve of a C-arm's control.

``points_in_beam`` (from :mod:`render.exposure`) detects an instrument handle or a tracked hand in
the primary beam; ``DoseAccumulator.note_in_beam`` records it for the operator-dose report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fluorosim.render.carm import CArmModel
from fluorosim.render.exposure import (
    CONTINUOUS_FRAME_RATE_FPS,
    Collimation,
    Exposure,
    exposed_field_mask,
    points_in_beam,
    points_in_beam_mask,
)
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.render.spectrum import beam

__all__ = [
    "DoseAccumulator",
    "DoseRecord",
    "Technique",
    "air_kerma_rate_mgy_per_min",
    "automatic_technique",
    "continuous_rate_mgy_per_min",
    "dose_for_exposure",
    "exposed_field_area_cm2",
    "exposure_dose",
    "frame_air_kerma_mgy",
    "points_in_beam",
    "points_in_beam_mask",
    "reference_distance_mm",
    "relative_dose_rate",
    "typical_tube_current_ma",
]

#: Tube output at 80 kVp, mGy per mAs at 1 m (see the module docstring).
OUTPUT_AT_80KVP_MGY_PER_MAS = 0.08
#: Reference point: this far in front of the image receptor (21 CFR 1020.32(d)(3)(iv), C-arm).
REFERENCE_POINT_FROM_RECEPTOR_MM = 300.0
#: US limit of the air-kerma rate at the reference point, normal mode (21 CFR 1020.32(e)).
AIR_KERMA_RATE_LIMIT_MGY_PER_MIN = 88.0
#: Dose rate of pulsed fluoroscopy relative to continuous (Herrmann et al. 1996, carm.md).
PULSED_FRACTION_BY_PPS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (3.0, 0.20),
    (6.0, 0.40),
    (12.0, 0.51),
    (CONTINUOUS_FRAME_RATE_FPS, 1.0),
)
#: Dose per pulse in low-dose mode relative to normal pulsed (gives −83 % at 7.5 pps, Cho 2011).
LOW_DOSE_FACTOR = 0.40
#: Default continuous technique and the field it is calibrated for (carm.md 22–27 cm: 15–30).
DEFAULT_KVP = 75.0
DEFAULT_MA = 2.5
REFERENCE_FIELD_MM = 245.0
#: Exponent of the field-size dependence of the dose rate (fits carm.md's three field classes).
FIELD_SIZE_EXPONENT = 1.0


def reference_distance_mm(geometry: ProjectionGeometry) -> float:
    """Focal spot to the reference point (30 cm in front of the receptor), mm."""
    return geometry.sid_mm - REFERENCE_POINT_FROM_RECEPTOR_MM


def continuous_rate_mgy_per_min(kvp: float, ma: float, distance_mm: float) -> float:
    """Unlimited continuous air-kerma rate (mGy/min) at ``distance_mm`` from the focal spot."""
    output = OUTPUT_AT_80KVP_MGY_PER_MAS * (kvp / 80.0) ** 2
    return output * ma * 60.0 * (1000.0 / distance_mm) ** 2


def relative_dose_rate(mode: str, pulse_rate_pps: float | None = None) -> float:
    """Dose rate of a fluoroscopy mode relative to continuous with the same technique."""
    if mode == "continuous":
        return 1.0
    if mode not in ("pulsed", "low_dose"):
        raise ValueError(f"relative_dose_rate: {mode!r} is not a fluoroscopy mode")
    if pulse_rate_pps is None:
        raise ValueError(f"relative_dose_rate: {mode} needs a pulse rate")
    rates, fractions = zip(*PULSED_FRACTION_BY_PPS, strict=True)
    fraction = float(np.interp(pulse_rate_pps, rates, fractions))
    return fraction * (LOW_DOSE_FACTOR if mode == "low_dose" else 1.0)


def air_kerma_rate_mgy_per_min(exposure: Exposure, geometry: ProjectionGeometry) -> float:
    """Average air-kerma rate at the reference point during this exposure (limited to 88/min).

    For a single shot this is the rate during the shot (not limited: a saved image is not
    fluoroscopy).
    """
    rate = continuous_rate_mgy_per_min(exposure.kvp, exposure.ma, reference_distance_mm(geometry))
    if exposure.mode == "single_shot":
        return rate
    rate = min(rate, AIR_KERMA_RATE_LIMIT_MGY_PER_MIN)
    return rate * relative_dose_rate(exposure.mode, exposure.pulse_rate_pps)


def exposed_field_area_cm2(
    geometry: ProjectionGeometry,
    collimation: Collimation | None = None,
    field_shape: str = "square",
    field_mm: float | None = None,
) -> float:
    """Exposed field area at the reference point (cm²): detector area of the beam, scaled back."""
    mask = exposed_field_mask(geometry, collimation, field_shape, field_mm)
    detector_mm2 = float(np.count_nonzero(mask)) * geometry.pixel_mm**2
    scale = reference_distance_mm(geometry) / geometry.sid_mm
    return detector_mm2 * scale**2 / 100.0


def typical_tube_current_ma(field_mm: float, kvp: float = DEFAULT_KVP) -> float:
    """Tube current an automatic dose-rate control picks for a field (mA), at ``kvp``.

    Smaller fields (intensifier magnification modes) need more dose per image: the rate scales
    as (REFERENCE_FIELD_MM / field)^FIELD_SIZE_EXPONENT from the default technique, reproducing
    carm.md's 11–14 cm: 25–50, 22–27 cm: 15–30, 36–40 cm: 9–18 mGy/min. The kVp² output
    dependence is divided out so the rate stays the same at another kVp.
    """
    if not field_mm > 0:
        raise ValueError(f"typical_tube_current_ma: field_mm must be > 0, got {field_mm!r}")
    scale = (REFERENCE_FIELD_MM / field_mm) ** FIELD_SIZE_EXPONENT
    current_ma: float = DEFAULT_MA * scale * (DEFAULT_KVP / kvp) ** 2
    return current_ma


#: Water and cortical-bone paths (mm) of the patient the typical technique is set for: an average
#: adult abdomen on AP (Bushberg et al.: ≈20 cm) with the lumbar spine in the measuring field (the
#: default BMI-25 patient's AP meters 225 mm of water and 9.1 mm of cortical bone).
REFERENCE_WATER_MM = 220.0
REFERENCE_BONE_MM = 10.0
#: Lowest tube current the dose-rate control drives to, as a fraction of the typical technique
#: (a thin patient or a limb; approx.).
ADRC_MIN_FRACTION = 0.25
#: Highest tube voltage the dose-rate control drives to (mobile C-arms: 110–125 kVp).
ADRC_MAX_KVP = 120.0


@dataclass(frozen=True)
class Technique:
    """Tube voltage and current the dose-rate control settles at for one pose."""

    kvp: float
    ma: float


def photons_per_ma(kvp: float, mean_transmission: float, distance_mm: float) -> float:
    """Relative detected photons per mA at ``kvp``: air-kerma rate per mA at ``distance_mm`` ×
    photons per air kerma of the beam × the metered mean primary transmission."""
    per_kerma = beam(kvp).photons_per_mm2_per_ugy()
    return continuous_rate_mgy_per_min(kvp, 1.0, distance_mm) * per_kerma * mean_transmission


def automatic_technique(
    field_mm: float,
    base_kvp: float,
    mean_transmission: Callable[[float], float],
    distance_mm: float,
) -> Technique:
    """The kVp and mA the automatic dose-rate control settles at (module docstring, 6).

    ``mean_transmission(kvp)``: the patient's mean primary transmission in the measuring field at
    that kVp. The current is the typical technique's signal over the signal per mA, held between
    ``ADRC_MIN_FRACTION`` of the typical current and the 88 mGy/min limit; the kVp rises from
    ``base_kvp`` (never lowered) only while even the limit leaves the signal short.
    """
    reference_transmission = beam(DEFAULT_KVP).transmission(REFERENCE_WATER_MM, REFERENCE_BONE_MM)
    reference = typical_tube_current_ma(field_mm, DEFAULT_KVP) * photons_per_ma(
        DEFAULT_KVP, float(reference_transmission), distance_mm
    )

    def wanted_and_ceiling_ma(kvp: float) -> tuple[float, float]:
        per_ma = photons_per_ma(kvp, max(mean_transmission(kvp), 1e-300), distance_mm)
        ceiling = AIR_KERMA_RATE_LIMIT_MGY_PER_MIN / continuous_rate_mgy_per_min(
            kvp, 1.0, distance_mm
        )
        return reference / per_ma, ceiling

    kvp = float(base_kvp)
    wanted, ceiling = wanted_and_ceiling_ma(kvp)
    if wanted > ceiling and kvp + 1.0 <= ADRC_MAX_KVP:
        # at the limit the signal (limit × photons per kerma × transmission) rises with the kVp:
        # bisect for the lowest whole-kV step above the start that reaches the reference
        low, high = 0, int((ADRC_MAX_KVP - kvp) // 1.0)
        if wanted_and_ceiling_ma(kvp + high)[0] <= wanted_and_ceiling_ma(kvp + high)[1]:
            while high - low > 1:
                middle = (low + high) // 2
                middle_wanted, middle_ceiling = wanted_and_ceiling_ma(kvp + middle)
                if middle_wanted <= middle_ceiling:
                    high = middle
                else:
                    low = middle
        kvp += high
        wanted, ceiling = wanted_and_ceiling_ma(kvp)
    floor = ADRC_MIN_FRACTION * typical_tube_current_ma(field_mm, kvp)
    return Technique(kvp, float(min(max(wanted, floor), max(ceiling, floor))))


def _pulses(exposure: Exposure) -> float:
    rate = exposure.frame_rate_hz
    return 1.0 if rate is None else exposure.duration_s * rate


def frame_air_kerma_mgy(exposure: Exposure, geometry: ProjectionGeometry) -> float:
    """Air kerma at the reference point delivered for ONE image (pulse, frame or shot)."""
    rate_per_s = air_kerma_rate_mgy_per_min(exposure, geometry) / 60.0
    if exposure.mode == "single_shot":
        return rate_per_s * exposure.duration_s
    return rate_per_s / float(exposure.frame_rate_hz)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DoseRecord:
    """Dose of one exposure (one displayed frame interval, or one single shot)."""

    mode: str
    kvp: float
    ma: float
    pulse_rate_pps: float | None
    beam_on_s: float
    pulses: float
    field_area_cm2: float
    air_kerma_mgy: float
    kap_gycm2: float


def dose_for_exposure(
    exposure: Exposure,
    geometry: ProjectionGeometry,
    collimation: Collimation | None = None,
    field_shape: str = "square",
    field_mm: float | None = None,
) -> DoseRecord:
    """Air kerma, KAP and beam-on time of ``exposure`` at the reference point of ``geometry``."""
    area = exposure.field_area_cm2
    if area is None:
        area = exposed_field_area_cm2(geometry, collimation, field_shape, field_mm)
    rate = air_kerma_rate_mgy_per_min(exposure, geometry)
    kerma = rate / 60.0 * exposure.duration_s
    return DoseRecord(
        mode=exposure.mode,
        kvp=exposure.kvp,
        ma=exposure.ma,
        pulse_rate_pps=exposure.pulse_rate_pps,
        beam_on_s=exposure.duration_s,
        pulses=_pulses(exposure),
        field_area_cm2=area,
        air_kerma_mgy=kerma,
        kap_gycm2=kerma * 1e-3 * area,
    )


def exposure_dose(
    exposure: Exposure,
    geometry: ProjectionGeometry,
    model: CArmModel | None = None,
    kvp: float | None = None,
    collimation: Collimation | None = None,
) -> DoseRecord:
    """Dose of one rendered frame for a render.carm.CArmModel (the renderer's entry point).

    The receptor field is the geometry's detector (round for an image intensifier, square for
    a flat panel). ``kvp``, when given, must agree with the exposure's (catches a renderer whose
    attenuation energy and dose technique disagree).
    """
    if kvp is not None and abs(float(kvp) - exposure.kvp) > 1e-6:
        raise ValueError(f"exposure_dose: exposure is at {exposure.kvp} kVp, renderer at {kvp} kVp")
    round_field = model is not None and model.detector == "image_intensifier"
    field_mm = min(geometry.width_px, geometry.height_px) * geometry.pixel_mm
    return dose_for_exposure(
        exposure, geometry, collimation, "circle" if round_field else "square", field_mm
    )


@dataclass
class DoseAccumulator:
    """Running totals for one attempt: per shot (pedal press) and overall.

    ``begin_shot()`` starts a new shot (pedal down); ``add(record)`` adds an exposure to the
    current shot (starting one if none is open). ``note_in_beam(t_s, what)`` records an
    instrument handle or hand seen in the primary beam.
    """

    records: list[DoseRecord] = field(default_factory=list)
    shot_of_record: list[int] = field(default_factory=list)
    in_beam_events: list[tuple[float, str]] = field(default_factory=list)
    shots: int = 0
    _open: bool = False

    def begin_shot(self) -> None:
        """A new pedal press (or single shot) begins."""
        self.shots += 1
        self._open = True

    def end_shot(self) -> None:
        """Pedal released: the next ``add`` without ``begin_shot`` starts a new shot."""
        self._open = False

    def add(self, record: DoseRecord) -> None:
        """Add one exposure's dose to the current shot."""
        if not self._open:
            self.begin_shot()
        self.records.append(record)
        self.shot_of_record.append(self.shots)
        if record.mode == "single_shot":
            self._open = False

    def note_in_beam(self, t_s: float, what: str) -> None:
        """Record that ``what`` (e.g. 'jamshidi_needle handle', 'hand') was in the beam at t_s."""
        self.in_beam_events.append((float(t_s), what))

    @property
    def total_air_kerma_mgy(self) -> float:
        """Cumulative air kerma at the reference point (mGy)."""
        return float(sum(r.air_kerma_mgy for r in self.records))

    @property
    def total_kap_gycm2(self) -> float:
        """Cumulative kerma-area product (Gy·cm²)."""
        return float(sum(r.kap_gycm2 for r in self.records))

    @property
    def total_beam_on_s(self) -> float:
        """Fluoroscopy (beam-on) time, s."""
        return float(sum(r.beam_on_s for r in self.records))

    def per_shot(self) -> list[dict[str, float | str]]:
        """One dict per shot: shot number, mode, beam_on_s, air_kerma_mgy, kap_gycm2."""
        shots: dict[int, dict[str, float | str]] = {}
        for shot, record in zip(self.shot_of_record, self.records, strict=True):
            entry = shots.setdefault(
                shot,
                {
                    "shot": shot,
                    "mode": record.mode,
                    "beam_on_s": 0.0,
                    "air_kerma_mgy": 0.0,
                    "kap_gycm2": 0.0,
                },
            )
            entry["beam_on_s"] = float(entry["beam_on_s"]) + record.beam_on_s
            entry["air_kerma_mgy"] = float(entry["air_kerma_mgy"]) + record.air_kerma_mgy
            entry["kap_gycm2"] = float(entry["kap_gycm2"]) + record.kap_gycm2
        return [shots[key] for key in sorted(shots)]

    def summary(self) -> dict[str, float | int | list[str]]:
        """Totals for the attempt report (units in the keys)."""
        return {
            "shots": self.shots,
            "beam_on_s": self.total_beam_on_s,
            "air_kerma_mgy": self.total_air_kerma_mgy,
            "kap_gycm2": self.total_kap_gycm2,
            "modes": sorted({r.mode for r in self.records}),
            "in_beam_events": len(self.in_beam_events),
        }
