"""Landmarks computed from an imported CT's bone labels (per-bone masks), in fluorosim's names.

An imported CT brings labels but rarely landmarks, and the named C-arm views, the drills and the
scoring need landmarks (:mod:`models.landmarks`). :func:`landmarks_from_labels` computes those the
bone masks allow, from the masks alone (never from the generator), in the LPS frame in mm:

- per lumbar vertebra (``L1_body`` … ``L5_body``; a whole-vertebra mask is split into the body — a
  morphological opening keeps the thick body and drops the thin arch — and the arch): the
  superior/inferior endplate centres (the body surfaces facing the neighbouring bodies across the
  discs; for L1's upper plate the top of the body's central columns), the body centre (their
  midpoint), the spinous tip (the arch voxel farthest behind the body near the midline), the
  pedicle centres (the arch just behind the body, lateral to the canal, within the body's width)
  and the disc centres;
- facet joints (where the arches of adjacent vertebrae, or L5 and the sacrum, come closest on each
  side);
- sacrum: S1 superior endplate centre (the sacrum's surface facing L5's body, its normal from a
  plane fit), sacral promontory (the endplate's anterior edge in the midline), S1/S2 body centres
  and the anterior S1 cortex (along the endplate normal), the S1 canal centre, the ala tops, and
  the S1 anterior/posterior foramina (APPROXIMATED — see below);
- pelvis (``ilium_left``/``ilium_right``, whole hip bones): SIJ surface samples and centre (where
  sacrum and hip bone come closest), iliac crest tops, ASIS, PSIS, the sciatic notch apex, the
  ends of the iliac cortical density (ICD) line and the top of the pubic symphysis;
- femoral head centres (a sphere fitted to the top of each femur mask).

Which points are approximations (not the anatomical definition but a stand-in the masks allow)
is returned as plain-words notes; :data:`APPROXIMATIONS` lists them. A structure whose mask is
absent or too small is skipped (its landmarks are simply not produced). Scale: a 3 mm CT gives
points good to about a voxel (3 mm), enough for the named views (beam directions from points
tens of millimetres apart) but not for millimetre scoring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from fluorosim.models import frames
from fluorosim.models.labels import LUMBAR_LEVELS
from fluorosim.models.patient import Patient

Points = NDArray[np.float64]

#: Landmark (or pattern) → how it is approximated from a mask.
APPROXIMATIONS: dict[str, str] = {
    "X_pedicle_center_side": "centroid of the arch between the body's back wall and 12 mm behind "
    "it, 8 mm from the midline to the body's half-width, within the body's height",
    "S1_body_center": "on the S1 endplate's normal, half an L5 body height below its centre "
    "(the S1/S2 junction is fused and not in the mask)",
    "S2_body_center": "on the S1 endplate's normal 1.5 L5 body heights below its centre, snapped "
    "to the nearest midline sacrum voxel",
    "S1_anterior_cortex_midline": "anterior sacral surface in the midline at the S1 body centre",
    "S1_foramen_anterior_side / S1_foramen_posterior_side": "not segmented: placed on the "
    "anterior/posterior sacral surface at the S1/S2 level, 27 mm from the midline (mean "
    "inter-foraminal half-distance)",
    "sij_surface_side / sij_center_side": "midpoints between sacrum and hip-bone voxels closer "
    "than 6 mm (the joint space itself is not segmented)",
    "icd_line_side_posterior / _anterior": "pelvic brim: the cranial-anterior end of the SI "
    "joint, and the most medial hip-bone point 30 mm in front of it",
    "asis_side": "most anterior hip-bone point above the femoral head + 40 mm",
    "psis_side": "most posterior hip-bone point above the SI joint's centre − 20 mm",
    "sciatic_notch_side": "the deepest (most anterior) point of the hip bone's posterior border "
    "between the SI joint and the femoral head",
    "facet_X_Y_side": "midpoint of the closest arch-to-arch voxels on that side",
    "femoral_head_center_side": "sphere fitted to the upper 30 mm of the femur mask",
}

#: S1 foramina: distance from the midline (mm), approx. mean of the S1 inter-foraminal distance.
S1_FORAMEN_HALF_DISTANCE_MM = 27.0
#: Hip-bone and sacrum voxels closer than this count as the sacroiliac joint (mm).
SIJ_CONTACT_MM = 6.0
#: Length of the iliac cortical density line (mm), as the generator's pelvis.
ICD_LENGTH_MM = 30.0
#: Pedicle search box behind the body (mm): lateral to the canal, up to the articular processes.
PEDICLE_MEDIAL_MM = 8.0
PEDICLE_LENGTH_MM = 12.0
#: Body-shell voxels up to this far beyond the closest ones to the next body form an endplate
#: (mm): a lumbar disc is ≈ 7 mm high behind and ≈ 12–15 mm in front.
PLATE_DEPTH_MM = 10.0


class _Masks:
    """Point clouds (LPS mm) and boolean volumes of the labels, looked up by name."""

    def __init__(self, patient: Patient) -> None:
        self.patient = patient
        self.spacing = patient.spacing_mm
        self.voxel_mm = float(np.mean(self.spacing))

    def has(self, *names: str) -> bool:
        return all(
            name in self.patient.label_table and self.mask(name).sum() >= 20 for name in names
        )

    def mask(self, *names: str) -> NDArray[np.bool_]:
        values = [self.patient.label_table[n] for n in names if n in self.patient.label_table]
        return np.isin(self.patient.labels, values)

    def points(self, mask: NDArray[np.bool_]) -> Points:
        return frames.apply_to_points(self.patient.lps_from_voxel, np.argwhere(mask).astype(float))


def _plate_centre(masks: _Masks, body: NDArray[np.bool_], up: bool) -> Points:
    """Centre of the upper (or lower) surface of a body mask: the topmost (bottommost) voxel of
    each column, in the central columns of the body's footprint (within 12 mm of its centroid)."""
    idx = np.argwhere(body)
    order = np.lexsort((idx[:, 2] if up else -idx[:, 2], idx[:, 1], idx[:, 0]))
    idx = idx[order]
    last = np.ones(len(idx), bool)
    last[:-1] = np.any(idx[1:, :2] != idx[:-1, :2], axis=1)  # the end of each (i, j) column
    surface = frames.apply_to_points(masks.patient.lps_from_voxel, idx[last].astype(float))
    footprint = surface[:, :2].mean(axis=0)
    central = np.linalg.norm(surface[:, :2] - footprint, axis=1) <= 12.0
    centre: Points = (surface[central] if central.sum() >= 3 else surface).mean(axis=0)
    return centre


def _facing_plates(
    masks: _Masks,
    upper: NDArray[np.bool_],
    lower: NDArray[np.bool_],
    lateral_of: Callable[[Points], NDArray[np.float64]],
) -> tuple[Points, Points] | None:
    """Centres of the two endplates facing each other across a disc: the shell voxels of each
    body within :data:`PLATE_DEPTH_MM` beyond the closest distance to the other body, within
    20 mm of the midline, moved half a voxel toward the disc."""
    centres = []
    for this, other in ((upper, lower), (lower, upper)):
        shell = this & ~ndimage.binary_erosion(this)
        pairs = _closest_pairs(masks, shell, other, PLATE_DEPTH_MM)
        if pairs is None:
            return None
        keep = np.abs(lateral_of(pairs[0])) <= 20.0
        if keep.sum() < 3:
            return None
        centres.append((pairs[0][keep].mean(axis=0), pairs[1][keep].mean(axis=0)))
    (upper_c, upper_to), (lower_c, lower_to) = centres
    half = masks.voxel_mm / 2.0
    return (
        upper_c + half * frames.unit(upper_to - upper_c),
        lower_c + half * frames.unit(lower_to - lower_c),
    )


def _points_mask(masks: _Masks, points: Points) -> NDArray[np.bool_]:
    """A volume mask of voxels given by their LPS centres."""
    mask = np.zeros(masks.patient.shape, bool)
    idx = masks.patient.voxel_indices(points)
    mask[tuple(idx.T)] = True
    return mask


def _pca(points: Points) -> tuple[Points, NDArray[np.float64], NDArray[np.float64]]:
    """(centroid, axes as rows sorted by decreasing variance, variances)."""
    centroid = points.mean(axis=0)
    _, values, axes = np.linalg.svd(points - centroid, full_matrices=False)
    return centroid, axes, values**2 / max(len(points) - 1, 1)


def _largest_component(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    labelled, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, labelled, index=range(1, count + 1))
    largest: NDArray[np.bool_] = labelled == (int(np.argmax(sizes)) + 1)
    return largest


class _Vertebra:
    """One lumbar vertebra split into body and arch, with its own axes."""

    def __init__(self, masks: _Masks, level: str) -> None:
        table = masks.patient.label_table
        parts = [f"{level}_{p}" for p in ("pedicle_left", "pedicle_right", "posterior_elements")]
        whole = masks.mask(f"{level}_body", *parts)
        if any(p in table for p in parts):
            body = masks.mask(f"{level}_body")
        else:
            radius = max(1, int(round(6.0 / masks.voxel_mm)))
            ball = ndimage.iterate_structure(ndimage.generate_binary_structure(3, 1), radius)
            body = _largest_component(ndimage.binary_opening(whole, ball))
            if body.sum() < 0.3 * whole.sum():
                body = whole
        self.level = level
        self.body_points = masks.points(body)
        self.arch_points = masks.points(whole & ~body)
        self.all_points = masks.points(whole)
        half = masks.voxel_mm / 2.0
        self.superior = _plate_centre(masks, body, up=True) + np.array([0.0, 0.0, half])
        self.inferior = _plate_centre(masks, body, up=False) - np.array([0.0, 0.0, half])
        self.center = 0.5 * (self.superior + self.inferior)
        self.axis_s = frames.unit(self.superior - self.inferior)
        self.height_mm = float(np.linalg.norm(self.superior - self.inferior))
        if len(self.arch_points):
            back = self.arch_points.mean(axis=0) - self.center
        else:
            back = np.array([0.0, 1.0, 0.0])
        back = back - np.dot(back, self.axis_s) * self.axis_s
        self.axis_p = frames.unit(back if back[1] > 0 else np.array([0.0, 1.0, 0.0]))
        self.axis_l = np.cross(self.axis_p, self.axis_s)  # P × S = L
        self.midline_x = float(np.median(self.all_points @ self.axis_l))

    def local(self, points: Points) -> Points:
        """(lateral toward the left from the midline, posterior from the centre, cranial)."""
        rel = points - self.center
        return np.stack(
            [
                points @ self.axis_l - self.midline_x,
                rel @ self.axis_p,
                rel @ self.axis_s,
            ],
            axis=-1,
        )

    def spinous_tip(self, voxel_mm: float) -> Points | None:
        if not len(self.arch_points):
            return None
        loc = self.local(self.arch_points)
        near = np.abs(loc[:, 0]) <= max(6.0, 2 * voxel_mm)
        if not near.any():
            return None
        index = np.flatnonzero(near)[int(np.argmax(loc[near, 1]))]
        point: Points = self.arch_points[index] + self.axis_p * voxel_mm / 2.0
        return point

    def body_back_mm(self) -> float:
        loc = self.local(self.body_points)
        central = np.abs(loc[:, 0]) <= 10.0
        return float(np.percentile(loc[central if central.any() else slice(None), 1], 98))

    def pedicle(self, side: str, voxel_mm: float) -> Points | None:
        """Centre of one pedicle: the centroid of the arch between the body's back wall and 12 mm
        behind it, lateral to the canal (> 8 mm from the midline), within the body's width (the
        transverse process reaches beyond it) and the body's cranio-caudal extent."""
        if not len(self.arch_points):
            return None
        sign = 1.0 if side == "left" else -1.0
        loc = self.local(self.arch_points)
        back = self.body_back_mm()
        body = self.local(self.body_points)
        half_width = float(np.percentile(np.abs(body[:, 0]), 95))
        keep = (
            (sign * loc[:, 0] >= PEDICLE_MEDIAL_MM)
            & (sign * loc[:, 0] <= half_width)
            & (loc[:, 1] >= back - voxel_mm)
            & (loc[:, 1] <= back + PEDICLE_LENGTH_MM)
            & (np.abs(loc[:, 2]) <= self.height_mm / 2.0)
        )
        if keep.sum() < 4:
            return None
        centre: Points = self.arch_points[keep].mean(axis=0)
        return centre


def _closest_pairs(
    masks: _Masks, a: NDArray[np.bool_], b: NDArray[np.bool_], within_mm: float
) -> tuple[Points, Points] | None:
    """Voxels of ``a`` within ``within_mm`` (beyond the closest distance) of ``b``, and their
    nearest ``b`` voxels (LPS mm). Works on the bounding box of both masks only."""
    if not a.any() or not b.any():
        return None
    both = np.argwhere(a | b)
    low, high = both.min(axis=0), both.max(axis=0) + 1
    box = tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high, strict=True))
    a, b = a[box], b[box]
    distance, nearest = ndimage.distance_transform_edt(
        ~b, sampling=masks.spacing, return_indices=True
    )
    limit = float(distance[a].min()) + within_mm
    chosen = np.argwhere(a & (distance <= limit))
    partners = nearest[:, chosen[:, 0], chosen[:, 1], chosen[:, 2]].T
    affine = masks.patient.lps_from_voxel
    return (
        frames.apply_to_points(affine, (chosen + low).astype(float)),
        frames.apply_to_points(affine, (partners + low).astype(float)),
    )


def _lumbar(masks: _Masks, out: dict[str, Points], notes: list[str]) -> dict[str, _Vertebra]:
    vertebrae: dict[str, _Vertebra] = {}
    for level in LUMBAR_LEVELS:
        if not masks.has(f"{level}_body"):
            continue
        vertebra = _Vertebra(masks, level)
        vertebrae[level] = vertebra
        out[f"{level}_superior_endplate_center"] = vertebra.superior
        out[f"{level}_inferior_endplate_center"] = vertebra.inferior
        out[f"{level}_body_center"] = vertebra.center
        tip = vertebra.spinous_tip(masks.voxel_mm)
        if tip is not None:
            out[f"{level}_spinous_tip"] = tip
        for side in ("left", "right"):
            pedicle = vertebra.pedicle(side, masks.voxel_mm)
            if pedicle is not None:
                out[f"{level}_pedicle_center_{side}"] = pedicle
    for upper, lower in zip(LUMBAR_LEVELS[:-1], LUMBAR_LEVELS[1:], strict=True):
        if upper in vertebrae and lower in vertebrae:
            above, below = vertebrae[upper], vertebrae[lower]

            def lateral_of_above(pts: Points, v: _Vertebra = above) -> NDArray[np.float64]:
                return v.local(pts)[:, 0]

            plates = _facing_plates(
                masks,
                _points_mask(masks, above.body_points),
                _points_mask(masks, below.body_points),
                lateral_of_above,
            )
            if plates is not None:
                above.inferior, below.superior = plates
                out[f"{upper}_inferior_endplate_center"] = above.inferior
                out[f"{lower}_superior_endplate_center"] = below.superior
                for v in (above, below):
                    out[f"{v.level}_body_center"] = 0.5 * (v.superior + v.inferior)
            out[f"disc_{upper}_{lower}_center"] = 0.5 * (above.inferior + below.superior)
            _facets(masks, vertebrae[upper], f"{lower}_body", f"{upper}_{lower}", out)
    if vertebrae:
        notes.append(
            "vertebrae: body split from the arch by a 6 mm morphological opening; pedicle "
            "centres = " + APPROXIMATIONS["X_pedicle_center_side"]
        )
    return vertebrae


def _arch_mask(masks: _Masks, vertebra: _Vertebra, label: str, sign: float) -> NDArray[np.bool_]:
    """Voxels of ``label`` behind the upper vertebra's body on one side (an arch), as a mask."""
    mask = masks.mask(label)
    idx = np.argwhere(mask)
    loc = vertebra.local(frames.apply_to_points(masks.patient.lps_from_voxel, idx.astype(float)))
    keep = (loc[:, 1] > vertebra.body_back_mm() + 2.0) & (sign * loc[:, 0] > 6.0)
    result = np.zeros_like(mask)
    result[tuple(idx[keep].T)] = True
    return result


def _facets(
    masks: _Masks, upper: _Vertebra, lower_label: str, disc: str, out: dict[str, Points]
) -> None:
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lower_arch = _arch_mask(masks, upper, lower_label, sign)
        upper_arch = _arch_mask(masks, upper, f"{upper.level}_body", sign)
        pairs = _closest_pairs(masks, lower_arch, upper_arch, masks.voxel_mm)
        if pairs is not None and len(pairs[0]):
            out[f"facet_{disc}_{side}"] = 0.5 * (pairs[0].mean(axis=0) + pairs[1].mean(axis=0))


def _sacrum(
    masks: _Masks,
    vertebrae: dict[str, _Vertebra],
    out: dict[str, Points],
    notes: list[str],
) -> None:
    if not masks.has("sacrum") or "L5" not in vertebrae:
        return
    l5 = vertebrae["L5"]
    sacrum = masks.mask("sacrum")
    points = masks.points(sacrum)
    voxel = masks.voxel_mm
    # S1 endplate: the sacrum's surface facing L5's body across the disc (the L5 arch, which
    # faces the S1 articular processes, is left out); its normal from a plane fit.
    plates = _facing_plates(
        masks, _points_mask(masks, l5.body_points), sacrum, lambda pts: l5.local(pts)[:, 0]
    )
    if plates is None:
        return
    l5.inferior, endplate = plates
    out["L5_inferior_endplate_center"] = l5.inferior
    out["L5_body_center"] = 0.5 * (l5.superior + l5.inferior)
    shell = sacrum & ~ndimage.binary_erosion(sacrum)
    pairs = _closest_pairs(masks, shell, _points_mask(masks, l5.body_points), PLATE_DEPTH_MM)
    # [] (no pairs) always returns just below, so past that check ``top`` is an array
    top = cast(
        Points, pairs[0][np.abs(l5.local(pairs[0])[:, 0]) <= 20.0] if pairs is not None else []
    )
    if len(top) < 4:
        return
    _, axes, _ = _pca(top)
    normal = axes[2] if np.dot(axes[2], l5.inferior - endplate) >= 0 else -axes[2]
    out["S1_superior_endplate_center"] = endplate
    out["disc_L5_S1_center"] = 0.5 * (l5.inferior + endplate)
    axis_l = l5.axis_l

    def lateral(p: Points) -> NDArray[np.float64]:
        offset: NDArray[np.float64] = p @ axis_l - l5.midline_x
        return offset

    posterior = frames.unit(np.cross(normal, axis_l))  # S × L = P
    midline = points[np.abs(lateral(points)) <= max(6.0, 2 * voxel)]

    def at(distance_mm: float) -> Points | None:
        """On the S1 axis ``distance_mm`` below the endplate, snapped to the nearest midline
        sacrum voxel when the axis leaves the bone (the sacrum curves backward)."""
        guess: Points = endplate - normal * distance_mm
        if not len(midline):
            return None
        gaps = np.linalg.norm(midline - guess, axis=1)
        if gaps.min() <= voxel:
            return guess
        snapped: Points = midline[int(np.argmin(gaps))]
        return snapped

    height = float(l5.height_mm)
    s1 = at(0.5 * height)
    if s1 is not None:
        out["S1_body_center"] = s1
        slab = midline[np.abs((midline - s1) @ normal) <= voxel]
        if len(slab):
            front = slab[int(np.argmin((slab - s1) @ posterior))]
            out["S1_anterior_cortex_midline"] = front - posterior * voxel / 2.0
        # the S1 canal: the gap behind the body in the midline slab at the S1 body
        depths = np.sort((slab - s1) @ posterior) if len(slab) else np.array([])
        jumps = np.flatnonzero(np.diff(depths) > 1.5 * voxel)
        if len(jumps):
            j = jumps[0]
            out["S1_spinal_canal_center"] = s1 + posterior * 0.5 * (depths[j] + depths[j + 1])
    s2 = at(1.5 * height)
    if s2 is not None:
        out["S2_body_center"] = s2
    plate_mid = top[np.abs(lateral(top)) <= max(6.0, 2 * voxel)]
    if len(plate_mid):
        front = plate_mid[int(np.argmin((plate_mid - endplate) @ posterior))]
        out["sacral_promontory"] = front - posterior * voxel / 2.0 + normal * voxel / 2.0
    for side, sign in (("left", 1.0), ("right", -1.0)):
        wing = points[sign * lateral(points) >= 25.0]
        if len(wing):
            out[f"ala_top_{side}"] = wing[int(np.argmax(wing @ normal))] + normal * voxel / 2.0
        if s1 is None:
            continue
        level = cast(Points, at(height) if at(height) is not None else s1)  # s1 is not None here
        slab = points[np.abs((points - level) @ normal) <= voxel]
        near = slab[np.abs(sign * lateral(slab) - S1_FORAMEN_HALF_DISTANCE_MM) <= voxel]
        if len(near):
            depth = (near - level) @ posterior
            offset = axis_l * sign * S1_FORAMEN_HALF_DISTANCE_MM
            base = level + offset - axis_l * (lateral(level))
            out[f"S1_foramen_anterior_{side}"] = base + posterior * (depth.min() - voxel / 2)
            out[f"S1_foramen_posterior_{side}"] = base + posterior * (depth.max() + voxel / 2)
    notes.append(
        "sacrum: S1 endplate plane-fitted to the sacrum's top under L5; "
        + "; ".join(
            f"{name}: {APPROXIMATIONS[name]}"
            for name in (
                "S1_body_center",
                "S2_body_center",
                "S1_anterior_cortex_midline",
                "S1_foramen_anterior_side / S1_foramen_posterior_side",
            )
        )
    )
    if "L5" in vertebrae:
        _facets(masks, l5, "sacrum", "L5_S1", out)


def _pelvis(masks: _Masks, out: dict[str, Points], notes: list[str]) -> None:
    voxel = masks.voxel_mm
    midline_x = (
        float(out["S1_superior_endplate_center"][0])
        if ("S1_superior_endplate_center" in out)
        else None
    )
    done = False
    for side in ("left", "right"):
        label = f"ilium_{side}"
        if not masks.has(label):
            continue
        done = True
        hip_mask = masks.mask(label)
        hip = masks.points(hip_mask)
        out[f"iliac_crest_top_{side}"] = hip[int(np.argmax(hip[:, 2]))] + np.array(
            [0.0, 0.0, voxel / 2.0]
        )
        head = out.get(f"femoral_head_center_{side}")
        if masks.has("sacrum"):
            pairs = _closest_pairs(masks, masks.mask("sacrum"), hip_mask, SIJ_CONTACT_MM)
            if pairs is not None and len(pairs[0]) >= 3:
                surface = 0.5 * (pairs[0] + pairs[1])
                out[f"sij_surface_{side}"] = surface
                out[f"sij_center_{side}"] = surface.mean(axis=0)
                # ICD: the brim starts at the cranial-anterior end of the joint
                score = surface[:, 2] - surface[:, 1]
                start = surface[int(np.argmax(score))]
                out[f"icd_line_{side}_posterior"] = start
                coronal = hip[
                    (np.abs(hip[:, 1] - (start[1] - ICD_LENGTH_MM)) <= voxel)
                    & (hip[:, 2] >= start[2] - 40.0)
                    & (hip[:, 2] <= start[2] + 10.0)
                ]
                if len(coronal) and midline_x is not None:
                    out[f"icd_line_{side}_anterior"] = coronal[
                        int(np.argmin(np.abs(coronal[:, 0] - midline_x)))
                    ]
                sij_z = float(surface[:, 2].mean())
                sij_low = float(surface[:, 2].min())
                upper = hip[hip[:, 2] >= sij_z - 20.0]
                out[f"psis_{side}"] = upper[int(np.argmax(upper[:, 1]))] + np.array(
                    [0.0, voxel / 2.0, 0.0]
                )
                floor = head[2] if head is not None else float(hip[:, 2].min())
                notch = _sciatic_notch(hip, floor, sij_low, voxel)
                if notch is not None:
                    out[f"sciatic_notch_{side}"] = notch
        floor = head[2] + 40.0 if head is not None else float(np.percentile(hip[:, 2], 50))
        upper = hip[hip[:, 2] >= floor]
        if len(upper):
            out[f"asis_{side}"] = upper[int(np.argmin(upper[:, 1]))] - np.array(
                [0.0, voxel / 2.0, 0.0]
            )
    if masks.has("ilium_left", "ilium_right") and midline_x is not None:
        both = masks.points(masks.mask("ilium_left", "ilium_right"))
        front = both[both[:, 1] <= np.percentile(both[:, 1], 25)]
        near = front[np.abs(front[:, 0] - midline_x) <= 10.0]
        if len(near):
            top = near[int(np.argmax(near[:, 2]))]
            out["pubic_symphysis_superior"] = np.array([midline_x, top[1], top[2] + voxel / 2.0])
    if done:
        notes.append(
            "pelvis: "
            + "; ".join(
                f"{name}: {APPROXIMATIONS[name]}"
                for name in (
                    "sij_surface_side / sij_center_side",
                    "icd_line_side_posterior / _anterior",
                    "asis_side",
                    "psis_side",
                    "sciatic_notch_side",
                )
            )
        )


def _sciatic_notch(hip: Points, floor_z: float, top_z: float, voxel: float) -> Points | None:
    """The most anterior point of the posterior border between ``floor_z`` and ``top_z``."""
    best: Points | None = None
    for z in np.arange(floor_z, top_z, voxel):
        row = hip[np.abs(hip[:, 2] - z) <= voxel / 2.0]
        if not len(row):
            continue
        border = row[int(np.argmax(row[:, 1]))]
        if best is None or border[1] < best[1]:
            best = border
    return None if best is None else best + np.array([0.0, voxel / 2.0, 0.0])


def _femora(masks: _Masks, out: dict[str, Points], notes: list[str]) -> None:
    done = False
    for side in ("left", "right"):
        label = f"femur_{side}"
        if not masks.has(label):
            continue
        mask = masks.mask(label)
        inner = ndimage.binary_erosion(mask)
        surface = masks.points(mask & ~inner)
        top = surface[surface[:, 2] >= surface[:, 2].max() - 30.0]
        if len(top) < 10:
            continue
        # algebraic sphere fit: |p|² = 2 c·p + (r² − |c|²)
        a = np.column_stack([2.0 * top, np.ones(len(top))])
        b = (top**2).sum(axis=1)
        solution, *_ = np.linalg.lstsq(a, b, rcond=None)
        centre = solution[:3]
        radius = float(np.sqrt(max(solution[3] + centre @ centre, 0.0)))
        if 15.0 <= radius <= 35.0:
            out[f"femoral_head_center_{side}"] = centre
            done = True
    if done:
        notes.append(f"femoral heads: {APPROXIMATIONS['femoral_head_center_side']}")


def landmarks_from_labels(patient: Patient) -> tuple[dict[str, Points], list[str]]:
    """``(landmarks, notes)``: the landmarks the patient's bone labels allow, and what was
    approximated (see the module docstring). Needs a volume on LPS axes (as ``import_ct`` gives)."""
    masks = _Masks(patient)
    out: dict[str, Points] = {}
    notes: list[str] = []
    vertebrae = _lumbar(masks, out, notes)
    steps: list[Callable[[], None]] = [
        lambda: _sacrum(masks, vertebrae, out, notes),
        lambda: _femora(masks, out, notes),
        lambda: _pelvis(masks, out, notes),
    ]
    for step in steps:
        step()
    return {name: np.asarray(value, dtype=np.float64) for name, value in out.items()}, notes
