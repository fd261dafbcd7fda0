"""A small synthetic patient (2 mm voxels) with the contract labels and landmarks, for tests only.

Boxes, cylinders and tubes at plausible places (prone patient, LPS: +x left, +y posterior,
+z superior; origin near the S1 endplate), so scoring and scripts can be tested before and
independently of the real phantom generator. Not anatomy: only the topology scoring relies on
(the SI joint between ilium and sacrum, roots in the foramina and anterior to the ala, the dura in
the canal, vessels and bowel in front, Kambin's triangle between exiting root and endplate).
"""

from __future__ import annotations

import numpy as np

from fluorosim.models.patient import Patient
from fluorosim.scenarios.vocabulary import LABEL_NAMES

SPACING_MM = 2.0
ORIGIN = np.array([-140.0, -130.0, -130.0])
SHAPE = (141, 121, 131)

LEVELS = {"L3": (92.0, 120.0), "L4": (52.0, 80.0), "L5": (12.0, 40.0)}
DISCS = {"L3_L4": (80.0, 92.0), "L4_L5": (40.0, 52.0), "L5_S1": (0.0, 12.0)}


def _grid(shift: np.ndarray, scale: float):
    """Voxel-centre coordinates mapped back to the canonical layout (x = shift + scale·canonical)."""
    axes = [(ORIGIN[a] + SPACING_MM * np.arange(SHAPE[a]) - shift[a]) / scale for a in range(3)]
    return np.meshgrid(*axes, indexing="ij")


def _tube(x, y, z, points, radius):
    """Mask of a polyline tube through ``points`` with ``radius``."""
    mask = np.zeros(x.shape, dtype=bool)
    p = np.stack([x, y, z], axis=-1)
    for a, b in zip(points[:-1], points[1:], strict=True):
        a, b = np.asarray(a, float), np.asarray(b, float)
        ab = b - a
        t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
        closest = a + t[..., None] * ab
        mask |= np.linalg.norm(p - closest, axis=-1) <= radius
    return mask


def _box(x, y, z, xr, yr, zr):
    return (x >= xr[0]) & (x <= xr[1]) & (y >= yr[0]) & (y <= yr[1]) & (z >= zr[0]) & (z <= zr[1])


def build_synthetic_patient(seed: int | None = None) -> Patient:
    """The test patient; every label of the contract is in its table (most are painted).

    ``seed`` None gives the canonical layout; a seed gives another patient: the whole layout moved
    by up to ±4 mm along each axis and scaled by 0.93–1.07 (so structures fall differently on the
    2 mm voxels and every distance changes), landmarks moved with it.
    """
    if seed is None:
        shift, scale = np.zeros(3), 1.0
    else:
        rng = np.random.default_rng(seed)
        shift, scale = rng.uniform(-4.0, 4.0, 3), float(rng.uniform(0.93, 1.07))
    table = {name: i + 1 for i, name in enumerate(sorted(LABEL_NAMES - {"background"}))}
    table["background"] = 0
    x, y, z = _grid(shift, scale)
    labels = np.zeros(SHAPE, dtype=np.uint8)

    def paint(mask, name):
        labels[mask] = table[name]

    body = (x / 135.0) ** 2 + ((y + 10.0) / 110.0) ** 2 <= 1.0
    paint(body, "skin")
    paint((x / 132.0) ** 2 + ((y + 10.0) / 107.0) ** 2 <= 1.0, "fat")
    paint((x / 120.0) ** 2 + ((y + 10.0) / 95.0) ** 2 <= 1.0, "muscle")
    for s, sign in (("left", 1.0), ("right", -1.0)):
        sx = sign * x
        paint(_box(sx, y, z, (5, 60), (45, 90), (-60, 130)) & body, f"paraspinal_{s}")
        paint(_box(sx, y, z, (23, 45), (-30, 3), (0, 130)), f"psoas_{s}")
    paint(((x / 70.0) ** 2 + ((y + 88.0) / 16.0) ** 2 + (z / 70.0) ** 2) <= 1.0, "bowel")
    for sign in (1.0, -1.0):
        paint(((x - sign * 85.0) ** 2 + (y + 55.0) ** 2 + (z - 50.0) ** 2) <= 15.0**2, "bowel")
    # vertebrae
    for level, (z0, z1) in LEVELS.items():
        zm = 0.5 * (z0 + z1)
        paint(_box(x, y, z, (-23, 23), (-30, 5), (z0, z1)), f"{level}_body")
        paint(_box(x, y, z, (-20, 20), (22, 45), (z0 + 6, z1)), f"{level}_posterior_elements")
        paint(_box(x, y, z, (-4, 4), (45, 70), (zm - 8, zm + 8)), f"{level}_posterior_elements")
        for s, sign in (("left", 1.0), ("right", -1.0)):
            sx = sign * x
            paint(_box(sx, y, z, (12, 20), (5, 22), (zm - 7, zm + 7)), f"{level}_pedicle_{s}")
            paint(
                _box(sx, y, z, (20, 45), (10, 18), (zm - 5, zm + 5)), f"{level}_posterior_elements"
            )
    for disc, (z0, z1) in DISCS.items():
        paint(_box(x, y, z, (-23, 23), (-30, 5), (z0, z1)), f"disc_{disc}")
    # sacrum and ilia, SI joints
    paint(_box(x, y, z, (-50, 50), (-25, 25), (-90, 0)), "sacrum")
    for s, sign in (("left", 1.0), ("right", -1.0)):
        sx = sign * x
        paint(_box(sx, y, z, (54, 95), (-45, 45), (-90, 50)), f"ilium_{s}")
        paint(_box(sx, y, z, (50, 54), (-25, 25), (-85, 0)), f"sij_space_{s}")
    # vessels (anterior)
    paint(_tube(x, y, z, [(8, -45, 130), (8, -45, 60)], 9.0), "aorta")
    paint(_tube(x, y, z, [(-15, -45, 130), (-15, -45, 55)], 9.0), "vena_cava")
    for s, sign in (("left", 1.0), ("right", -1.0)):
        paint(
            _tube(x, y, z, [(8, -45, 60), (sign * 45, -45, -10)], 5.0), f"common_iliac_artery_{s}"
        )
        paint(
            _tube(x, y, z, [(-15, -55, 55), (sign * 45, -58, -10)], 4.5), f"common_iliac_vein_{s}"
        )
        paint(
            _tube(x, y, z, [(sign * 45, -45, -10), (sign * 48, -38, -80)], 3.0),
            f"internal_iliac_artery_{s}",
        )
        paint(
            _tube(x, y, z, [(sign * 45, -45, -10), (sign * 80, -60, -60)], 4.0),
            f"external_iliac_artery_{s}",
        )
    # dura and roots
    paint(_tube(x, y, z, [(0, 14, -40), (0, 14, 130)], 8.0), "thecal_sac")
    for s, sign in (("left", 1.0), ("right", -1.0)):
        paint(
            _tube(x, y, z, [(sign * 8, 14, 96), (sign * 35, 0, 70), (sign * 45, -20, 50)], 3.0),
            "root_L3_" + s,
        )
        paint(
            _tube(x, y, z, [(sign * 8, 14, 62), (sign * 30, 6, 52), (sign * 45, -20, 30)], 3.0),
            "root_L4_" + s,
        )
        paint(
            _tube(
                x,
                y,
                z,
                [(sign * 8, 14, 16), (sign * 25, 8, 4), (sign * 38, -30, 0), (sign * 40, -32, -40)],
                3.0,
            ),
            "root_L5_" + s,
        )
        paint(
            _tube(
                x, y, z, [(sign * 8, 12, -28), (sign * 25, -25, -38), (sign * 25, -35, -38)], 5.0
            ),
            "root_S1_" + s,
        )
        paint(
            _tube(x, y, z, [(sign * 8, 12, -40), (sign * 22, 25, -62), (sign * 22, -35, -62)], 4.0),
            "root_S2_" + s,
        )
    labels[~body] = 0
    hu = np.full(SHAPE, -1000, dtype=np.int16)
    hu[body] = 40
    bone = np.isin(labels, [v for k, v in table.items() if k.startswith(("L", "sacrum", "ilium"))])
    hu[bone] = 400
    lps_from_voxel = np.diag([SPACING_MM, SPACING_MM, SPACING_MM, 1.0])
    lps_from_voxel[:3, 3] = ORIGIN
    landmarks: dict[str, np.ndarray] = {}
    for level, (z0, z1) in LEVELS.items():
        zm = 0.5 * (z0 + z1)
        landmarks[f"{level}_body_center"] = np.array([0.0, -12.0, zm])
        landmarks[f"{level}_superior_endplate_center"] = np.array([0.0, -12.0, z1])
        landmarks[f"{level}_inferior_endplate_center"] = np.array([0.0, -12.0, z0])
        landmarks[f"{level}_spinous_tip"] = np.array([0.0, 70.0, zm])
        for s, sign in (("left", 1.0), ("right", -1.0)):
            landmarks[f"{level}_pedicle_center_{s}"] = np.array([sign * 16.0, 13.0, zm])
    for disc, (z0, z1) in DISCS.items():
        landmarks[f"disc_{disc}_center"] = np.array([0.0, -12.0, 0.5 * (z0 + z1)])
    for s, sign in (("left", 1.0), ("right", -1.0)):
        landmarks[f"foramen_L4_L5_{s}"] = np.array([sign * 18.0, 12.0, 46.0])
        landmarks[f"foramen_L5_S1_{s}"] = np.array([sign * 18.0, 12.0, 6.0])
        landmarks[f"kambin_L4_L5_{s}_base_medial"] = np.array([sign * 12.0, 4.0, 41.0])
        landmarks[f"kambin_L4_L5_{s}_base_lateral"] = np.array([sign * 24.0, 4.0, 41.0])
        landmarks[f"kambin_L4_L5_{s}_apex"] = np.array([sign * 12.0, 4.0, 50.0])
        landmarks[f"kambin_L4_L5_{s}_center"] = np.array([sign * 15.0, 4.0, 44.0])
        landmarks[f"S1_foramen_anterior_{s}"] = np.array([sign * 25.0, -25.0, -38.0])
        landmarks[f"S2_foramen_anterior_{s}"] = np.array([sign * 22.0, -25.0, -62.0])
        landmarks[f"S1_foramen_posterior_{s}"] = np.array([sign * 25.0, 25.0, -8.0])  # outlet ≈31°
        landmarks[f"sij_center_{s}"] = np.array([sign * 52.0, 0.0, -35.0])
        yy, zz = np.meshgrid(np.arange(-24.0, 25.0, 4.0), np.arange(-84.0, 0.0, 4.0))
        landmarks[f"sij_surface_{s}"] = np.stack(
            [np.full(yy.size, sign * 52.0), yy.ravel(), zz.ravel()], axis=1
        )
        landmarks[f"psis_{s}"] = np.array([sign * 60.0, 45.0, -10.0])
        landmarks[f"asis_{s}"] = np.array([sign * 95.0, -45.0, 20.0])
        landmarks[f"iliac_crest_top_{s}"] = np.array([sign * 80.0, 0.0, 50.0])
        landmarks[f"sciatic_notch_{s}"] = np.array([sign * 60.0, -20.0, -90.0])
        landmarks[f"ala_top_{s}"] = np.array([sign * 35.0, -5.0, 0.0])
        landmarks[f"icd_line_{s}_anterior"] = np.array([sign * 60.0, -30.0, 5.0])
        landmarks[f"icd_line_{s}_posterior"] = np.array([sign * 60.0, 15.0, 5.0])
    landmarks.update(
        {
            "S1_superior_endplate_center": np.array([0.0, -5.0, 0.0]),
            "S1_body_center": np.array([0.0, -5.0, -15.0]),
            "S2_body_center": np.array([0.0, -5.0, -50.0]),
            "sacral_promontory": np.array([0.0, -25.0, 0.0]),
            "S1_anterior_cortex_midline": np.array([0.0, -4.0, -10.0]),  # inlet ≈25° caudal
            "S1_spinal_canal_center": np.array([0.0, 14.0, -15.0]),
            "interlaminar_L5_S1_center": np.array([0.0, 27.0, 8.0]),
            "aortic_bifurcation": np.array([8.0, -45.0, 60.0]),
        }
    )
    landmarks = {name: shift + scale * np.asarray(v) for name, v in landmarks.items()}
    parameters = {"synthetic": True, "seed": seed}
    return Patient(hu, labels, lps_from_voxel, table, landmarks, parameters, "synthetic")
