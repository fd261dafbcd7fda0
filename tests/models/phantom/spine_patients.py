"""Shared, per-process cached patients for the generator tests (built once, reused by modules).

Two generators: ``"primitive"`` (the hand-built lumbar.py/sacrum.py/pelvis.py shapes, whose own
construction test_lumbar.py and test_neural.py pin) and ``"real"`` (the default since generator
5.0: the warped real-anatomy template). A test id names both, e.g. ``primitive-seed3``,
``real-default``; :func:`patient_for` turns an id into the patient.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from fluorosim.models.patient import Patient
from fluorosim.models.phantom import PatientParameters, build_patient, load_or_build_patient

#: The spread of seeds every measurement of the primitive generator is checked on.
SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)
#: The seeds the real default is checked on besides seed 0 (each build takes ~20 s of CPU).
REAL_SEEDS: tuple[int, ...] = (1, 2)
PRIMITIVE_IDS: list[str] = ["primitive-default", *[f"primitive-seed{s}" for s in SEEDS]]
REAL_IDS: list[str] = ["real-default", *[f"real-seed{s}" for s in REAL_SEEDS]]


@lru_cache(maxsize=4)
def default_patient(skeleton: str = "primitive") -> Patient:
    """Seed 0 with every part (through the test cache in FLUOROSIM_CACHE_DIR)."""
    return load_or_build_patient(PatientParameters(skeleton=skeleton))


@lru_cache(maxsize=16)
def spine_patient(seed: int = 0, skeleton: str = "primitive", **kwargs) -> Patient:
    """Lumbar spine and neural structures only (fast), for seed spreads and variants."""
    params = PatientParameters(seed=seed, skeleton=skeleton, **kwargs)
    return build_patient(params, parts=("lumbar", "neural"))


def seed_for(patient_id: str) -> int:
    """``<skeleton>-default`` → 0, ``<skeleton>-seed<n>`` → n."""
    which = patient_id.split("-")[1]
    return 0 if which == "default" else int(which.removeprefix("seed"))


def patient_for(patient_id: str) -> Patient:
    """``<skeleton>-default`` or ``<skeleton>-seed<n>`` → the patient."""
    skeleton, which = patient_id.split("-")
    if which == "default":
        return default_patient(skeleton)
    return spine_patient(seed_for(patient_id), skeleton)


def on_both_generators():
    """Parametrise a ``patient`` test over the primitive spread and the real default with its
    seeds (a user-relevant anatomical range both generators must meet)."""
    return pytest.mark.parametrize("patient", PRIMITIVE_IDS + REAL_IDS, indirect=True)
