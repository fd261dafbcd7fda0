"""Preparing an attempt: which patient (seeded, random or a stored one) and a warmed-up renderer.

The GUI's worker calls these between its progress messages; ``stage(text, percent)`` reports
progress (and may raise to cancel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fluorosim.models.patient import Patient
from fluorosim.scenarios.spec import Scenario


@dataclass(frozen=True)
class AttemptPatient:
    """The patient of an attempt, the seed of its random numbers and the parameters recorded."""

    patient: Patient
    seed: int
    parameters: dict[str, Any]


def attempt_patient(
    scenario: Scenario,
    seed: int,
    random_patient: bool,
    patient_ref: str | None,
    stage: Callable[[str, float], None],
) -> AttemptPatient:
    """The scenario's generated patient for ``seed`` (a fresh seed when ``random_patient``), or
    the stored patient / CT ``patient_ref``, checked for the structures the scenario needs."""
    from fluorosim.models.phantom import PatientParameters, load_or_build_patient

    parameters = dict(scenario.patient.parameters)
    if random_patient:
        seed = int(np.random.default_rng().integers(0, 1_000_000))
    parameters["seed"] = seed
    if patient_ref:
        from fluorosim.models.io.store import load_patient
        from fluorosim.scenarios.patients import describe_missing

        stage(f"Loading the patient {patient_ref}…", 10)
        patient = load_patient(patient_ref)
        missing = describe_missing(scenario, patient)
        if missing:  # before anything is recorded
            raise ValueError(missing)
        return AttemptPatient(patient, seed, {"ct": patient_ref})
    stage("Building the patient (the first time takes up to a minute; then it is cached)…", 10)

    def part_stage(text: str, fraction: float) -> None:
        # the build's own stages spread over 10–55 % (the renderer's warm-up starts at 60 %)
        stage(f"Building the patient (once; then it is cached): {text}", 10.0 + 45.0 * fraction)

    patient = load_or_build_patient(PatientParameters(**parameters), progress=part_stage)
    return AttemptPatient(patient, seed, parameters)


def warm_up_renderer(renderer: Any, patient: Patient) -> None:
    """Render one complete frame with a pin in view so every kernel is compiled before the
    trainee's first shot (numba compiles on first use)."""
    from fluorosim.models.instruments import InstrumentPose as RenderPose
    from fluorosim.render.carm import CArmJoints

    centre = np.mean(patient.bounds_lps_mm(), axis=0)
    pin = RenderPose("guide_pin", centre, np.array([1.0, 0.0, 0.0]))
    renderer.render_frame(CArmJoints(), [pin], None, rng=np.random.default_rng(0))
