"""Resolve scenario points (landmark names, fractions, means, joint-surface points) on a patient.

A :class:`scenarios.spec.PointSpec` becomes an LPS point in mm for one patient and one side.
Offsets are anatomical: ``lateral_mm`` away from the midline toward the scenario's side (LPS +x for
the left, −x for the right), ``anterior_mm`` toward −P, ``cranial_mm`` toward +S.

``frame = "sacrum"`` gives the same three offsets along the sacrum's own axes instead
(:func:`offset_axes`): cranial along the sacral axis from the S2 to the S1 body centre, anterior
perpendicular to it in the mid-sagittal plane, lateral the third axis. Below S1 the sacrum slopes
back and curves (on the built-in patient, a warped Visible Human sacrum, the S1 → S2 body-centre
chord lies ≈60° from the vertical), so "4 mm down" along the patient axes also moves a point toward
the anterior cortex of S2; along the sacral axes it keeps its depth in the bone.

The ``through`` form continues the step's corridor (entry → landmark) ``past_mm`` beyond the
landmark: "through the incentre of Kambin's triangle, 10 mm on into the disc".

``dorsal_to`` (with any form) then moves the point straight back until it leaves a label, plus
``clearance_mm``: "dorsal to the dura" places the interlaminar cannula at the ligamentum flavum on
every patient, wherever the dura lies relative to the window's landmark.

The ``surface`` form picks a point on a joint surface given as an (N, 3) landmark (the SI joint,
``sij_surface_left``): the samples in a cranio-caudal band at ``height_fraction`` of the joint's
height (0 = caudal end), then the point ``from_anterior_mm`` behind the anterior joint margin along
that band's joint line (anterior margin → posterior margin). This places the posterior SIJ target
"inferior third, ≈1 cm short of the anterior margin" (procedures.md) on any patient.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.patient import Patient
from fluorosim.scenarios import vocabulary
from fluorosim.scenarios.spec import OFFSET_FRAMES, PointSpec

ANTERIOR_LPS = np.array([0.0, -1.0, 0.0])
CRANIAL_LPS = np.array([0.0, 0.0, 1.0])


class PointError(KeyError):
    """A scenario point cannot be placed on this patient (a landmark is missing)."""


def lateral_lps(side: str | None) -> NDArray[np.float64]:
    """Unit vector pointing away from the midline toward ``side`` (LPS: left = +x)."""
    if side == "right":
        return np.array([-1.0, 0.0, 0.0])
    return np.array([1.0, 0.0, 0.0])


def offset_axes(
    patient: Patient, frame: str, side: str | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(lateral, anterior, cranial) unit vectors of an offset frame (spec.OFFSET_FRAMES).

    ``world``: the patient axes. ``sacrum``: cranial = S2 → S1 body centre; lateral = the side's
    left-right axis made perpendicular to it; anterior = −P made perpendicular to both (it lies in
    the mid-sagittal plane and points out of the sacrum's pelvic surface).
    """
    if frame == "world":
        return lateral_lps(side), ANTERIOR_LPS.copy(), CRANIAL_LPS.copy()
    if frame != "sacrum":
        raise ValueError(f"unknown offset frame {frame!r}")
    upper, lower = OFFSET_FRAMES["sacrum"]
    axis = landmark_point(patient, upper, side) - landmark_point(patient, lower, side)
    norm = float(np.linalg.norm(axis))
    if norm < 1e-6:
        raise PointError(f"{upper} and {lower} coincide: no sacral axis")
    cranial = axis / norm
    lateral = lateral_lps(side)
    lateral = lateral - float(lateral @ cranial) * cranial
    lateral /= float(np.linalg.norm(lateral))
    anterior = ANTERIOR_LPS - float(ANTERIOR_LPS @ cranial) * cranial
    anterior = anterior - float(anterior @ lateral) * lateral
    anterior /= float(np.linalg.norm(anterior))
    return lateral, anterior, cranial


def landmark_point(patient: Patient, name: str, side: str | None) -> NDArray[np.float64]:
    """A single-point landmark (an (N, 3) landmark gives its mean)."""
    expanded = vocabulary.expand(name, side)
    try:
        value = patient.landmark(expanded)
    except KeyError as exc:
        raise PointError(str(exc.args[0])) from None
    value = np.asarray(value, dtype=np.float64)
    return value.reshape(-1, 3).mean(axis=0)


def joint_band(
    samples: NDArray[np.float64], height_fraction: float, band_mm: float = 4.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Anterior-most and posterior-most samples of a joint surface at a fraction of its height."""
    z = samples[:, 2]
    z_level = z.min() + height_fraction * (z.max() - z.min())
    band = samples[np.abs(z - z_level) <= band_mm]
    if len(band) < 2:
        band = samples[np.argsort(np.abs(z - z_level))[:8]]
    anterior = band[np.argmin(band[:, 1])]
    posterior = band[np.argmax(band[:, 1])]
    return anterior, posterior


def resolve_point(
    patient: Patient,
    spec: PointSpec,
    side: str | None,
    entry_lps: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """The LPS point (mm) of ``spec`` on ``patient``; PointError naming a missing landmark.

    ``entry_lps`` is the step's resolved entry, needed by the ``through`` form (without it the
    ``through`` landmark itself is returned: it lies on the same corridor).
    """
    if spec.landmark is not None:
        base = landmark_point(patient, spec.landmark, side)
    elif spec.through is not None:
        base = landmark_point(patient, spec.through, side)
        if entry_lps is not None and spec.past_mm:
            line = base - np.asarray(entry_lps, dtype=np.float64)
            base = base + spec.past_mm * line / max(float(np.linalg.norm(line)), 1e-9)
    elif spec.between is not None:
        a = landmark_point(patient, spec.between[0], side)
        b = landmark_point(patient, spec.between[1], side)
        base = a + spec.fraction * (b - a)
    elif spec.surface is not None:
        name = vocabulary.expand(spec.surface, side)
        try:
            samples = np.asarray(patient.landmark(name), dtype=np.float64).reshape(-1, 3)
        except KeyError as exc:
            raise PointError(str(exc.args[0])) from None
        anterior, posterior = joint_band(samples, spec.height_fraction)
        line = posterior - anterior
        norm = float(np.linalg.norm(line))
        direction = line / norm if norm > 1e-9 else -ANTERIOR_LPS
        base = anterior + spec.from_anterior_mm * direction
    else:
        base = np.mean([landmark_point(patient, n, side) for n in spec.mean], axis=0)
    lateral, anterior, cranial = offset_axes(patient, spec.frame, side)
    point = (
        base + spec.lateral_mm * lateral + spec.anterior_mm * anterior + spec.cranial_mm * cranial
    )
    if spec.dorsal_to is not None:
        point = dorsal_to(patient, point, vocabulary.expand(spec.dorsal_to, side))
        point = point - spec.clearance_mm * ANTERIOR_LPS
    return point


def dorsal_to(
    patient: Patient, point: NDArray[np.float64], label_pattern: str, step_mm: float = 0.5
) -> NDArray[np.float64]:
    """The first point straight behind ``point`` (toward +P) outside the labels (at most 60 mm)."""
    values = [
        patient.label_table[n]
        for n in vocabulary.matching_labels(label_pattern, set(patient.label_table))
    ]
    distances = np.arange(0.0, 60.0, step_mm)
    line = point[None, :] - distances[:, None] * ANTERIOR_LPS[None, :]
    outside = np.nonzero(~np.isin(patient.labels_at(line), values))[0]
    return line[int(outside[0])] if len(outside) else line[-1]
