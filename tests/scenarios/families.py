"""Families of scripted attempts built from a patient's own landmarks and labels (tests only).

The plans here are NOT read from the scenario's target points: each is the procedures.md rule
computed with numpy from the exported landmarks and the label volume, the way an independent
reviewer would script it —

* TELD: skin entry 90 mm lateral, 60 mm posterior and 24 mm caudal of the incentre of Kambin's
  triangle (≈105 mm from the midline at ≈34° to the horizontal); the needle and wire go through the
  incentre and 10 mm on into the disc, the dilator and cannula dock 1 mm past it on the annulus;
* IELD: straight posterior → anterior onto the lateral part of the L5-S1 interlaminar window
  (6 mm lateral and 3 mm caudal of its centre), 3 mm behind the dura's label there;
* posterior SIJ: along the joint line of the SI-joint surface samples in the inferior third
  (17 % of the joint height), stopping 10 mm short of the anterior joint margin;
* lateral SIJ: three parallel pins, each 40 % of the way from the joint centre to the S1 (S2) body
  centre, then moved along the sacrum's own axes (cranial = S2 → S1 body centre, anterior ⟂ to it
  in the midline plane): S1 in the ala (9 mm cranial, 3 mm dorsal), S1 behind the first foramen
  (5 mm caudal, 12.5 mm dorsal; ≈17 mm from the first), S2 (2 mm caudal, 1 mm dorsal); each pin
  runs straight lateral → medial in that frame.

A family member moves every trajectory of the expert: ``shift_mm`` parallel to itself along a
fixed direction across it, or ``turn_deg`` about its tip. The attempt's mechanics (skin entry,
advances with two views, confirming views, implants) are those of :mod:`scenarios.scripts`.
"""

from __future__ import annotations

import math

import numpy as np

from fluorosim.scenarios import scripts
from fluorosim.scenarios.spec import Scenario

ANTERIOR = np.array([0.0, -1.0, 0.0])
POSTERIOR = -ANTERIOR
CRANIAL = np.array([0.0, 0.0, 1.0])


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def lateral(side: str | None) -> np.ndarray:
    return np.array([1.0, 0.0, 0.0]) if side != "right" else np.array([-1.0, 0.0, 0.0])


def landmark(patient, name: str) -> np.ndarray:
    return np.asarray(patient.landmarks[name], dtype=np.float64).reshape(-1, 3).mean(axis=0)


def expert_plans(scenario: Scenario, patient) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Step id → (tip target, unit direction handle → tip) from landmarks (module docstring)."""
    side = scenario.side or "left"
    lat = lateral(side)
    plans: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if scenario.procedure == "teld":
        disc = scenario.level or "L4_L5"
        incentre = landmark(patient, f"kambin_{disc}_{side}_center")
        entry = incentre + 90.0 * lat + 60.0 * POSTERIOR - 24.0 * CRANIAL
        direction = unit(incentre - entry)
        for step in scenario.steps:
            past = 10.0 if step.instrument in ("jamshidi_needle", "nitinol_wire") else 1.0
            plans[step.id] = (incentre + past * direction, direction)
    elif scenario.procedure == "ield":
        point = landmark(patient, "interlaminar_L5_S1_center") + 6.0 * lat - 3.0 * CRANIAL
        dura = patient.label_table["thecal_sac"]
        while int(patient.labels_at(point[None, :])[0]) == dura:
            point = point + 0.5 * POSTERIOR
        for step in scenario.steps:
            plans[step.id] = (point + 3.0 * POSTERIOR, ANTERIOR.copy())
    elif scenario.procedure == "sij_posterior":
        samples = np.asarray(patient.landmarks[f"sij_surface_{side}"], dtype=np.float64)
        samples = samples.reshape(-1, 3)
        z = samples[:, 2]
        level = z.min() + 0.17 * (z.max() - z.min())
        band = samples[np.abs(z - level) <= 4.0]
        anterior = band[np.argmin(band[:, 1])]
        posterior = band[np.argmax(band[:, 1])]
        line = unit(posterior - anterior)
        # the joint is curved (the real auricular surface): the point 10 mm along the straight
        # joint line can lie off the joint, so aim at the joint sample nearest to it
        aim = anterior + 10.0 * line
        aim = band[np.argmin(np.linalg.norm(band - aim, axis=1))]
        for step in scenario.steps:
            plans[step.id] = (aim, -line)
    elif scenario.procedure == "sij_lateral":
        centre = landmark(patient, f"sij_center_{side}")
        s1, s2 = landmark(patient, "S1_body_center"), landmark(patient, "S2_body_center")
        cranial = unit(s1 - s2)  # the sacral axis: the sacrum slopes back ≈60° below S1
        across = unit(lat - np.dot(lat, cranial) * cranial)
        forward = ANTERIOR - np.dot(ANTERIOR, cranial) * cranial
        forward = unit(forward - np.dot(forward, across) * across)
        rules = {  # step → (body, sacral-cranial mm, sacral-anterior mm)
            "implant_1_s1": (s1, 9.0, -3.0),
            "implant_2_s1": (s1, -5.0, -12.5),
            "implant_3_s2": (s2, -2.0, -1.0),
        }
        for step in scenario.steps:
            body, up, front = rules[step.id]
            target = centre + 0.4 * (body - centre) + up * cranial + front * forward
            plans[step.id] = (target, -across)
    return plans


#: The direction a near miss is displaced, per procedure (toward what a trainee gets wrong).
def miss_direction(scenario: Scenario, patient, direction: np.ndarray) -> np.ndarray:
    """A unit vector across ``direction``: cranial toward the exiting root (TELD), cranial onto
    the lamina (IELD), lateral into the ilium (posterior SIJ), anterior toward the ventral ala
    (lateral SIJ)."""
    wanted = {
        "teld": CRANIAL,
        "ield": CRANIAL,
        "sij_posterior": lateral(scenario.side),
        "sij_lateral": ANTERIOR,
    }[scenario.procedure]
    across = wanted - np.dot(wanted, direction) * direction
    return unit(across)


def turn_axis(scenario: Scenario, direction: np.ndarray) -> np.ndarray:
    """The axis a turned attempt rotates about: cranio-caudal (an axial error) for lateral and
    oblique approaches — for TELD the way that brings the shaft nearer the exiting root, the error
    that matters there — left-right (a sagittal error) for the straight posterior IELD."""
    axis = {"ield": np.array([1.0, 0.0, 0.0]), "teld": -CRANIAL}.get(scenario.procedure, CRANIAL)
    return unit(axis - np.dot(axis, direction) * direction)


def rotate(v: np.ndarray, axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rodrigues rotation of v about a unit axis."""
    a = math.radians(angle_deg)
    return (
        v * math.cos(a)
        + np.cross(axis, v) * math.sin(a)
        + axis * np.dot(axis, v) * (1.0 - math.cos(a))
    )


def attempt(
    scenario: Scenario,
    patient,
    plans: dict[str, tuple[np.ndarray, np.ndarray]],
    shift_mm: float = 0.0,
    turn_deg: float = 0.0,
) -> dict:
    """The scripted attempt following ``plans`` (moved by shift_mm / turned by turn_deg)."""
    b = scripts.ScriptBuilder()
    for step in scenario.steps:
        if step.kind != "trajectory":
            continue
        target, direction = plans[step.id]
        if shift_mm:
            target = target + shift_mm * miss_direction(scenario, patient, direction)
        if turn_deg:
            direction = unit(rotate(direction, turn_axis(scenario, direction), turn_deg))
        scripts.insert(b, scenario, patient, step, target, direction)
        if step.implant:
            b.add({"place_implant": step.implant}, 10.0)
    b.add({"finish": True}, 2.0)
    return {
        "format": scripts.SCRIPT_FORMAT,
        "scenario": scenario.id,
        "patient": {},
        "mode": "learning",
        "steps": b.steps,
    }


def view_attempt(scenario: Scenario, patient, turn_deg: float = 0.0) -> dict:
    """A C-arm drill: the ideal joints for this patient tilted by ``turn_deg``, one shot."""
    from fluorosim.render import views as render_views
    from fluorosim.scenarios.scoring.views import view_level, view_side

    step = scenario.steps[0]
    joints = render_views.ideal_joints(
        patient,
        step.view,
        side=view_side(scenario, step.view),
        level=view_level(scenario, step, step.view),
    ).as_dict()
    # tilt in the plane the view is defined by: cranio-caudal for the tilted views, orbital for
    # the lateral (an angular tilt about the lateral beam leaves a true lateral unchanged)
    joints["orbital_deg" if step.view == "true_lateral_sacrum" else "angular_deg"] += turn_deg
    b = scripts.ScriptBuilder()
    b.add({"carm": {k: round(v, 4) for k, v in joints.items()}}, 5.0)
    b.shot()
    b.add({"finish": True}, 2.0)
    return {"scenario": scenario.id, "patient": {}, "mode": "learning", "steps": b.steps}
