"""A small synthetic lumbar spine + sacrum patient for render tests, and the default patient.

The synthetic patient is deliberately simple (boxes, cylinders and ellipsoids at 2 mm voxels) but
carries every landmark the views use, at anatomically plausible places (LPS mm, origin at the S1
superior endplate centre, lumbar bodies stacked upward along +S). ``default_patient()`` returns the
project's generated phantom when ``models.phantom.load_or_build_patient`` exists, else this one.
"""

from __future__ import annotations

import functools

import numpy as np

from fluorosim.models.patient import Patient

LABELS = {"background": 0, "skin": 1, "muscle": 2, "disc": 3, "bone": 4, "sacrum": 5, "ilium": 6}


def _grid(shape, spacing, origin):
    axes = [origin[a] + spacing * np.arange(shape[a]) for a in range(3)]
    return np.meshgrid(*axes, indexing="ij")


@functools.lru_cache(maxsize=2)
def make_synthetic_patient(spacing_mm: float = 2.0) -> Patient:
    """A prone patient: torso of muscle, L1–L5 bodies with pedicles and spinous processes,
    discs, a tilted sacrum with S1 foramina, and two iliac wings; 2 mm voxels."""
    extent = np.array([300.0, 240.0, 340.0])  # L-R, A-P, I-S
    origin = np.array([-150.0, -130.0, -140.0]) + spacing_mm / 2
    shape = tuple(int(n) for n in np.round(extent / spacing_mm))
    gx, gy, gz = _grid(shape, spacing_mm, origin)
    hu = np.full(shape, -1000, np.int16)
    labels = np.zeros(shape, np.uint8)

    def paint(mask, value, label):
        hu[mask] = value
        labels[mask] = LABELS[label]

    torso = (gx / 140.0) ** 2 + ((gy - 0.0) / 110.0) ** 2 <= 1.0
    paint(torso, -80, "skin")
    paint((gx / 130.0) ** 2 + (gy / 100.0) ** 2 <= 1.0, 40, "muscle")
    landmarks: dict[str, np.ndarray] = {}
    body_h, disc_h, z = 26.0, 10.0, 0.0
    levels = ["L5", "L4", "L3", "L2", "L1"]
    z = disc_h  # L5-S1 disc above the S1 endplate at z = 0
    for name in levels:
        z0, z1 = z, z + body_h
        center = np.array([0.0, 0.0, (z0 + z1) / 2])
        radial = (gx / 23.0) ** 2 + (gy / 17.0) ** 2
        body = (radial <= 1.0) & (gz >= z0) & (gz <= z1)
        shell = body & ((radial >= 0.75) | (gz <= z0 + 2) | (gz >= z1 - 2))
        paint(body, 250, "bone")
        paint(shell, 1200, "bone")
        for side, sx in (("left", 1.0), ("right", -1.0)):
            pc = np.array([sx * 17.0, 24.0, center[2] + 4.0])
            pedicle = ((gx - pc[0]) / 5.0) ** 2 + ((gz - pc[2]) / 7.0) ** 2 <= 1.0
            pedicle &= (gy >= 14.0) & (gy <= 34.0)
            paint(pedicle, 900, "bone")
            landmarks[f"{name}_pedicle_center_{side}"] = pc
        lamina = (np.abs(gx) <= 18.0) & (gy >= 34.0) & (gy <= 40.0) & (np.abs(gz - pc[2]) <= 9.0)
        spinous = (np.abs(gx) <= 3.0) & (gy >= 34.0) & (gy <= 75.0) & (np.abs(gz - pc[2]) <= 9.0)
        paint(lamina | spinous, 900, "bone")
        landmarks[f"{name}_body_center"] = center
        landmarks[f"{name}_superior_endplate_center"] = np.array([0.0, 0.0, z1])
        landmarks[f"{name}_inferior_endplate_center"] = np.array([0.0, 0.0, z0])
        landmarks[f"{name}_spinous_tip"] = np.array([0.0, 75.0, pc[2]])
        z = z1 + disc_h
    stack = ["S1", "L5", "L4", "L3", "L2", "L1"]
    for lower, upper in zip(stack[:-1], stack[1:], strict=True):
        lo = 0.0 if lower == "S1" else landmarks[f"{lower}_superior_endplate_center"][2]
        hi = landmarks[f"{upper}_inferior_endplate_center"][2]
        disc = ((gx / 23.0) ** 2 + (gy / 17.0) ** 2 <= 1.0) & (gz > lo) & (gz < hi)
        paint(disc, 90, "disc")
        landmarks[f"disc_{upper}_{lower}_center"] = np.array([0.0, 0.0, (lo + hi) / 2])
    # sacrum: a slab whose axis runs caudally and posteriorly (55° from the AP axis)
    axis = np.array([0.0, np.cos(np.radians(55.0)), -np.sin(np.radians(55.0))])
    across = (
        np.array([0.0, -axis[2], axis[1]]) * -1
    )  # anterior-pointing normal in the sagittal plane
    if across[1] > 0:
        across = -across
    rel = np.stack([gx, gy, gz], axis=-1)
    along = rel @ axis
    depth = rel @ across  # + toward anterior
    sacrum = (along >= 0) & (along <= 90.0) & (np.abs(gx) <= 50.0 - along * 0.3)
    sacrum &= (depth <= 17.0) & (depth >= -17.0)
    paint(sacrum, 300, "sacrum")
    shell = sacrum & ((np.abs(depth) >= 14.0) | (np.abs(gx) >= 47.0 - along * 0.3))
    paint(shell, 1100, "sacrum")
    for side, sx in (("left", 1.0), ("right", -1.0)):
        hole_center = 28.0 * axis + np.array([sx * 22.0, 0.0, 0.0])
        # foramen axis: tilted 40° cranially from AP in the sagittal plane
        f_axis = np.array([0.0, np.cos(np.radians(40.0)), np.sin(np.radians(40.0))])
        rel_h = rel - hole_center
        radial = np.linalg.norm(rel_h - (rel_h @ f_axis)[..., None] * f_axis, axis=-1)
        hole = sacrum & (radial <= 5.0)
        paint(hole, 20, "muscle")
        landmarks[f"S1_foramen_anterior_{side}"] = hole_center - 15.0 * f_axis
        landmarks[f"S1_foramen_posterior_{side}"] = hole_center + 15.0 * f_axis
        landmarks[f"S2_foramen_anterior_{side}"] = hole_center + 25 * axis - 15.0 * f_axis
        # ilium: a plate lateral to the sacrum, 20° from sagittal
        ilium = (
            (np.abs(gx - sx * 75.0) <= 5.0) & (gz >= -110) & (gz <= 40) & (np.abs(gy - 20) <= 45)
        )
        paint(ilium, 700, "ilium")
        landmarks[f"sij_center_{side}"] = np.array([sx * 55.0, 25.0, -40.0])
        ys, zs = np.meshgrid(np.linspace(0, 50, 6), np.linspace(-70, -10, 6), indexing="ij")
        xs = sx * (48.0 + 0.35 * (50.0 - ys))  # joint opens anteriorly: lateral toward anterior
        landmarks[f"sij_surface_{side}"] = np.stack([xs, ys, zs], axis=-1).reshape(-1, 3)
        landmarks[f"sciatic_notch_{side}"] = np.array([sx * 70.0, 10.0, -90.0])
        landmarks[f"icd_line_{side}_anterior"] = np.array([sx * 70.0, -10.0, -30.0])
        landmarks[f"icd_line_{side}_posterior"] = np.array([sx * 70.0, 30.0, -45.0])
    landmarks["S1_superior_endplate_center"] = np.zeros(3)
    landmarks["S1_body_center"] = 15.0 * axis
    landmarks["S2_body_center"] = 45.0 * axis
    landmarks["sacral_promontory"] = np.array([0.0, -17.0, 0.0]) + 0.0 * axis
    # anterior S1 cortex runs 25° caudal of the AP axis below the promontory (synthetic choice)
    landmarks["S1_anterior_cortex_midline"] = landmarks["sacral_promontory"] + 20.0 * np.array(
        [0.0, np.cos(np.radians(25.0)), -np.sin(np.radians(25.0))]
    )
    lps_from_voxel = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    lps_from_voxel[:3, 3] = origin
    return Patient(hu, labels, lps_from_voxel, dict(LABELS), landmarks, {}, "synthetic-test")


def phantom_available() -> bool:
    """Whether the project's patient generator (models.phantom.load_or_build_patient) exists."""
    try:
        from fluorosim.models.phantom import load_or_build_patient  # type: ignore[attr-defined]  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def default_patient() -> Patient:
    """The project's default generated patient when the phantom exists, else the synthetic one."""
    if not phantom_available():
        return make_synthetic_patient()
    from fluorosim.models.phantom import load_or_build_patient  # type: ignore[attr-defined]

    return load_or_build_patient()
