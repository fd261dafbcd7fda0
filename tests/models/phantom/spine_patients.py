"""Shared, per-process cached patients for the generator tests (built once, reused by modules)."""

from __future__ import annotations

from functools import lru_cache

from fluorosim.models.patient import Patient
from fluorosim.models.phantom import PatientParameters, build_patient, load_or_build_patient

#: The spread of seeds every measurement is checked on (besides the default patient).
SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)


@lru_cache(maxsize=4)
def default_patient() -> Patient:
    """The default patient with every part (through the test cache in FLUOROSIM_CACHE_DIR)."""
    return load_or_build_patient(PatientParameters())


@lru_cache(maxsize=16)
def spine_patient(seed: int = 0, **kwargs) -> Patient:
    """Lumbar spine and neural structures only (fast), for seed spreads and variants."""
    return build_patient(PatientParameters(seed=seed, **kwargs), parts=("lumbar", "neural"))
