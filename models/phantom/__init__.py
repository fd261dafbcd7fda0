"""The built-in patient generator: a lumbar spine, sacrum and pelvis with labels and landmarks.

``build_patient(params)`` generates a :class:`models.patient.Patient`;
``load_or_build_patient(params, cache_dir)`` returns it from the on-disk cache when it is there.
"""

from fluorosim.models.phantom.assembly import build_patient
from fluorosim.models.phantom.cache import load_or_build_patient
from fluorosim.models.phantom.parts import PatientParameters

__all__ = ["PatientParameters", "build_patient", "load_or_build_patient"]
