"""Joint fast DRR: the μ volume's and the cortical-bone volume's line integrals in one ray pass.

The renderer needs two line integrals per pixel, ∫μ dl and the path through cortical bone
(render.attenuation, docstring 3). :class:`JointDRR` computes both with the Joseph projector of
render.drr_fast in one kernel: each ray's copy, span and fixed-point positions are computed once,
on the μ (primary) volume, and the bone (companion) volume is sampled at exactly those positions.

The companion lives on the primary's voxel grid, cropped to its own non-zero box (the bone box is
40 % of the body box) and shifted so that its origin falls on a multiple of the slab width
(:func:`render.attenuation.align_to_grid`): its slab copies then average the same slices as the
primary's, and a sample's position in a companion copy is the primary's minus a whole-voxel
offset. Its non-zero voxels must lie inside the primary's, slice box by slice box (checked):
samples the primary's span leaves out then read only zeros in both.

The bone volume is sparse (2 % of the voxels non-zero) and three quarters of the samples between
its span's ends read only zeros. Its copies therefore also keep an occupancy grid of bricks, 8 ×
8 voxels in-slice by ``SKIP_BLOCK`` slices (:func:`brick_occupancy`), and only runs of blocks of
slices that may meet an occupied brick are sampled. The kernel works per tile of 8 × 8 rays: μ
first along every ray, keeping each ray's span, then the bone along those spans, so each volume's
voxel lines stay in cache across the tile's neighbouring rays as they do in separate passes. The
runs are found once per tile (:func:`_tile_runs`): at every slice the tile's rays lie within the
quadrilateral of its four corner rays, so the bricks under the corner rays' extreme positions over
a block bound every ray's reads there; a tile whose rays step through different copies tests each
ray's own footprint instead (:func:`_sum_occupied`). Both tests are exact, a skipped sample reads
only zeros, and both sums stay the integer sums of :func:`render.drr_fast._sum_codes`: the μ image
equals ``FastDRR.line_integrals`` bit for bit, the bone image equals the companion's own FastDRR
to float rounding (its positions come from the primary's grid: < 1e-5 of its maximum).

Measured on the default patient (350 × 326 × 390 voxels), the bench's 12 random poses plus AP,
lateral and an oblique at the renderer's anatomy resolution (208² or 176²), on the shared 2-core
machine (load 1.4–3): CPU time of 10 × 15 poses on one thread in separate processes, alternated
(repeatable to ±3 %), and wall time on two threads with the variants interleaved in random order
in one process (identical objects differ by ±3 % there, through where their memory lands):

* against the previous two FastDRR passes: 0.86–0.90 of their CPU time (3.64–3.82 vs
  4.11–4.29 s, seven alternating pairs) and 0.86–0.88 of their wall time on two threads; μ
  alone costs 2.56–2.68 s, so the bone's share drops from about 1.6 s to about 1.1 s;
* what the bone still costs: with every brick marked empty (spans, clipping and run tests but no
  samples) 2.82–2.90 s, so its overhead is 0.25 s and its samples 0.8 s; with every brick marked
  occupied (no skipping) 4.22–4.23 s;
* testing each ray's own footprint per block instead of the tile's (exact too, fewer samples):
  0.93–0.94 of the two passes, its overhead 0.8 s, more than its samples (0.5 s);
* sampling both volumes per ray instead of per tile: 3–5 % slower than two passes without bricks;
* the brief's first idea, μ and bone codes interleaved per voxel on the primary's grid so that the
  bilinear reads of both share cache lines, one loop over the μ span: 0.92–0.95 of two passes (wall
  time, two threads) but 728 MB of copies instead of 509 MB; with the bone arithmetic restricted to
  its own span (three loops) 1.18–1.28 (μ-only loops over interleaved data stream twice the bytes);
* bricks of 4 or 16 voxels: 1–4 % slower than 8; tiles of 4 or 16 rays: no clear difference.

The bone copies' speed also depends on their exact shape (cache-set conflicts of their strides):
aligned to 3 voxels the default patient's bone crop (278 × 168 × 380) projects 7 % faster than
the unaligned one (278 × 166 × 380), aligned to 6 (278 × 171 × 380) 13 % slower (render.renderer
uses 3). Padding the μ volume by 1–3 voxels moved its time by at most +5 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from fluorosim.render.attenuation import AttenuationVolume, align_to_grid, grid_offset_voxels
from fluorosim.render.drr_fast import (
    CODE_SUM_UNIT,
    LAYOUT_BLOCK_ROW,
    LAYOUT_BOX_ROW,
    LAYOUT_NA,
    LAYOUT_NC,
    LAYOUT_START,
    PAD_VOXELS,
    POSITION_BITS,
    SKIP_BLOCK,
    TILE_PX,
    FastDRR,
    _pixel_ray,
    _ray_axes,
    _ray_span,
    _sum_codes,
    _trim_span,
    geometry_arrays,
)
from fluorosim.render.geometry import ProjectionGeometry

#: In-slice edge of an occupancy brick (voxels); a brick spans SKIP_BLOCK slices.
BRICK_VOXELS = 8


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _bricks_meet(
    bricks: NDArray[np.uint8],
    start: int,
    tiles_b: int,
    tiles_c: int,
    block: int,
    b_low: int,
    b_high: int,
    c_low: int,
    c_high: int,
) -> bool:
    """Whether slice block ``block`` holds an occupied brick among those covering voxels
    b_low…b_high × c_low…c_high (bricks stored from ``start`` as [block, tile_b, tile_c])."""
    base = start + block * tiles_b * tiles_c
    for tile_b in range(b_low // BRICK_VOXELS, b_high // BRICK_VOXELS + 1):
        row = base + tile_b * tiles_c
        for tile_c in range(c_low // BRICK_VOXELS, c_high // BRICK_VOXELS + 1):
            if bricks[row + tile_c]:
                return True
    return False


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_occupied(
    flat: NDArray[Any],
    start: int,
    stride_b: int,
    stride_c: int,
    bricks: NDArray[np.uint8],
    brick_start: int,
    tiles_b: int,
    tiles_c: int,
    k_first: int,
    k_last: int,
    xb: int,
    xc: int,
    db: int,
    dc: int,
) -> int:
    """:func:`render.drr_fast._sum_codes` over slices k_first…k_last, leaving out the blocks of
    SKIP_BLOCK slices whose samples can only read unoccupied bricks.

    A block's samples read voxels between the floors of its end positions and one past them (the
    positions move linearly), so the bricks covering that range bound every read; consecutive
    blocks that meet an occupied brick are summed as one run.
    """
    total = 0
    run_first = -1
    k = k_first
    while k <= k_last:
        k_end = min(k - k % SKIP_BLOCK + SKIP_BLOCK - 1, k_last)
        b0 = (xb + k * db) >> POSITION_BITS
        b1 = (xb + k_end * db) >> POSITION_BITS
        c0 = (xc + k * dc) >> POSITION_BITS
        c1 = (xc + k_end * dc) >> POSITION_BITS
        occupied = _bricks_meet(
            bricks,
            brick_start,
            tiles_b,
            tiles_c,
            k // SKIP_BLOCK,
            min(b0, b1),
            max(b0, b1) + 1,
            min(c0, c1),
            max(c0, c1) + 1,
        )
        if occupied and run_first < 0:
            run_first = k
        elif not occupied and run_first >= 0:
            total += _sum_codes(flat, start, stride_b, stride_c, run_first, k - 1, xb, xc, db, dc)
            run_first = -1
        k = k_end + 1
    if run_first >= 0:
        total += _sum_codes(flat, start, stride_b, stride_c, run_first, k_last, xb, xc, db, dc)
    return total


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _clip_to_extent(
    extents: NDArray[np.int64],
    row: int,
    k_first: int,
    k_last: int,
    xb: int,
    xc: int,
    db: int,
    dc: int,
) -> tuple[int, int]:
    """Slices k_first…k_last narrowed to those where the ray (fixed point, as in
    :func:`render.drr_fast._trim_span`) is within one voxel of the union box ``extents[row]``,
    with a slice to spare each side against float rounding (the trim settles the ends exactly):
    a ray that misses the box costs O(1), not a test per block of its span."""
    k_first = max(k_first, extents[row, 0])
    k_last = min(k_last, extents[row, 1])
    one = float(1 << POSITION_BITS)
    for x, step, low, high in (
        (xb, db, extents[row, 2] - 1, extents[row, 3] + 1),
        (xc, dc, extents[row, 4] - 1, extents[row, 5] + 1),
    ):
        if step == 0:
            if x < low << POSITION_BITS or x > high << POSITION_BITS:
                return 0, -1
        else:
            k_low = (low * one - x) / step
            k_high = (high * one - x) / step
            if k_low > k_high:
                k_low, k_high = k_high, k_low
            k_first = max(k_first, int(np.floor(k_low)) - 1)
            k_last = min(k_last, int(np.ceil(k_high)) + 1)
    return k_first, k_last


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _companion_span(
    layout: NDArray[np.int64],
    boxes: NDArray[np.int32],
    blocks: NDArray[np.int64],
    extents: NDArray[np.int64],
    offsets: NDArray[np.int64],
    copy: int,
    k_first: int,
    k_last: int,
    xb: int,
    xc: int,
    db: int,
    dc: int,
) -> tuple[int, int, int, int]:
    """A ray given in the primary copy's slices and positions, in the companion copy's:
    (j_first, j_last, xb, xc), the slices that may read a non-zero companion voxel and the
    fixed-point position at the companion's slice 0 (the step per slice is the primary's).

    ``offsets[copy]`` = (b, c, slice) is where the companion copy's index 0 lies in the primary
    copy: its slice j is the primary's slice j + offset, at the primary's position less the
    in-slice offsets. The span is the primary's (outside it the companion is zero too), clipped
    to the companion's union box and trimmed to its slice boxes.
    """
    shift_k = offsets[copy, 2]
    xb += shift_k * db - (offsets[copy, 0] << POSITION_BITS)
    xc += shift_k * dc - (offsets[copy, 1] << POSITION_BITS)
    na = layout[copy, LAYOUT_NA]
    j_first, j_last = _clip_to_extent(
        extents, copy, max(k_first - shift_k, 0), min(k_last - shift_k, na - 1), xb, xc, db, dc
    )
    if j_last >= j_first:
        j_first, j_last = _trim_span(
            boxes,
            layout[copy, LAYOUT_BOX_ROW],
            blocks,
            layout[copy, LAYOUT_BLOCK_ROW],
            j_first,
            j_last,
            xb,
            xc,
            db,
            dc,
        )
    return j_first, j_last, xb, xc


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _corner_lines(
    A: NDArray[np.float64],
    source: NDArray[np.float64],
    origin: NDArray[np.float64],
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    pixel_mm: float,
    s: NDArray[np.float64],
    corner_rows: tuple[int, int],
    corner_cols: tuple[int, int],
    copy: int,
    slab: int,
    offsets: NDArray[np.int64],
    lines: NDArray[np.int64],
) -> None:
    """Fill ``lines`` (4, 4) with the fixed-point position at the companion copy's slice 0 and
    the step per slice, (xb, xc, db, dc), of the rays through the tile's four corner pixels,
    in copy ``copy`` whatever copy those rays would pick themselves (the formulas of
    render.drr_fast._fixed_point_ray, unclipped)."""
    p = np.empty(3)
    d = np.empty(3)
    axis = copy % 3
    b_axis = 1 if axis == 0 else 0
    c_axis = 1 if axis == 2 else 2
    width = slab if copy >= 3 else 1
    half = 0.5 * (width - 1)
    one = float(1 << POSITION_BITS)
    corner = 0
    for row in corner_rows:
        for col in corner_cols:
            _pixel_ray(A, source, origin, u, v, pixel_mm, row, col, s, p, d)
            inv_da = 1.0 / d[axis]
            step_b = width * d[b_axis] * inv_da
            step_c = width * d[c_axis] * inv_da
            base_b = s[b_axis] + (half - s[axis]) * inv_da * d[b_axis] + PAD_VOXELS
            base_c = s[c_axis] + (half - s[axis]) * inv_da * d[c_axis] + PAD_VOXELS
            db = int(np.rint(step_b * one))
            dc = int(np.rint(step_c * one))
            shift_k = offsets[copy, 2]
            lines[corner, 0] = (
                int(np.rint(base_b * one)) + shift_k * db - (offsets[copy, 0] << POSITION_BITS)
            )
            lines[corner, 1] = (
                int(np.rint(base_c * one)) + shift_k * dc - (offsets[copy, 1] << POSITION_BITS)
            )
            lines[corner, 2] = db
            lines[corner, 3] = dc
            corner += 1


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _tile_runs(
    bricks: NDArray[np.uint8],
    brick_layout: NDArray[np.int64],
    copy: int,
    lines: NDArray[np.int64],
    j_first: int,
    j_last: int,
    runs: NDArray[np.int64],
) -> int:
    """The runs of blocks of slices j_first…j_last where some ray of a tile may read an
    occupied brick; written to ``runs`` as (first slice, last slice), their number returned.

    At a slice, the rays through a tile's pixels meet the slice plane inside the quadrilateral
    of its four corner rays (a perspective map of the pixel square), and along a block of
    slices inside the hull of those quadrilaterals at the block's ends, so the bricks covering
    the corner rays' extreme positions there, widened by a voxel (the bilinear footprint) and a
    voxel more (each ray's own fixed-point rounding), bound every read of every ray of the tile.
    """
    tiles_b = brick_layout[copy, 1]
    tiles_c = brick_layout[copy, 2]
    count = 0
    run_first = -1
    k = j_first
    while k <= j_last:
        k_end = min(k - k % SKIP_BLOCK + SKIP_BLOCK - 1, j_last)
        b_low = 1 << 40
        b_high = -(1 << 40)
        c_low = 1 << 40
        c_high = -(1 << 40)
        for corner in range(4):
            for slice_ in (k, k_end):
                b = (lines[corner, 0] + slice_ * lines[corner, 2]) >> POSITION_BITS
                c = (lines[corner, 1] + slice_ * lines[corner, 3]) >> POSITION_BITS
                b_low = min(b_low, b)
                b_high = max(b_high, b)
                c_low = min(c_low, c)
                c_high = max(c_high, c)
        occupied = _bricks_meet(
            bricks,
            brick_layout[copy, 0],
            tiles_b,
            tiles_c,
            k // SKIP_BLOCK,
            max(b_low - 1, 0),
            min(b_high + 2, tiles_b * BRICK_VOXELS - 1),
            max(c_low - 1, 0),
            min(c_high + 2, tiles_c * BRICK_VOXELS - 1),
        )
        if occupied and run_first < 0:
            run_first = k
        elif not occupied and run_first >= 0:
            runs[count, 0] = run_first
            runs[count, 1] = k - 1
            count += 1
            run_first = -1
        k = k_end + 1
    if run_first >= 0:
        runs[count, 0] = run_first
        runs[count, 1] = j_last
        count += 1
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def _companion_spans(
    layout: NDArray[np.int64],
    boxes: NDArray[np.int32],
    blocks: NDArray[np.int64],
    extents: NDArray[np.int64],
    offsets: NDArray[np.int64],
    spans: NDArray[np.int64],
    rays: int,
    local: NDArray[np.int64],
) -> tuple[int, bool, int, int]:
    """The companion spans of a tile's ``rays`` rays (:func:`_companion_span` of each primary
    span in ``spans``), written to ``local`` as (j_first, j_last, xb, xc). Returns the copy the
    rays with a companion span step through (−1: none), whether they all use that one, and the
    union of their spans (j_low, j_high)."""
    tile_copy = -1
    uniform = True
    j_low = 1 << 40
    j_high = -1
    for n in range(rays):
        local[n, 0] = 0
        local[n, 1] = -1
        if spans[n, 2] < spans[n, 1]:
            continue
        copy = spans[n, 0]
        j_first, j_last, xb, xc = _companion_span(
            layout,
            boxes,
            blocks,
            extents,
            offsets,
            copy,
            spans[n, 1],
            spans[n, 2],
            spans[n, 3],
            spans[n, 4],
            spans[n, 5],
            spans[n, 6],
        )
        local[n, 0] = j_first
        local[n, 1] = j_last
        local[n, 2] = xb
        local[n, 3] = xc
        if j_last >= j_first:
            if tile_copy < 0:
                tile_copy = copy
            elif copy != tile_copy:
                uniform = False
            j_low = min(j_low, j_first)
            j_high = max(j_high, j_last)
    return tile_copy, uniform, j_low, j_high


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _companion_ray(
    flat: NDArray[Any],
    layout: NDArray[np.int64],
    bricks: NDArray[np.uint8],
    brick_layout: NDArray[np.int64],
    spans: NDArray[np.int64],
    local: NDArray[np.int64],
    n: int,
    runs: NDArray[np.int64],
    count: int,
) -> int:
    """The companion's integer sum along the tile's ray ``n``: over its span's overlap with the
    tile's ``count`` runs, or (``count`` −1) over the blocks its own footprint finds occupied."""
    j_first = local[n, 0]
    j_last = local[n, 1]
    if j_last < j_first:
        return 0
    copy = spans[n, 0]
    na = layout[copy, LAYOUT_NA]
    start = layout[copy, LAYOUT_START]
    stride_b = layout[copy, LAYOUT_NC] * na
    if count < 0:
        return _sum_occupied(
            flat,
            start,
            stride_b,
            na,
            bricks,
            brick_layout[copy, 0],
            brick_layout[copy, 1],
            brick_layout[copy, 2],
            j_first,
            j_last,
            local[n, 2],
            local[n, 3],
            spans[n, 5],
            spans[n, 6],
        )
    total = 0
    for run in range(count):
        low = max(runs[run, 0], j_first)
        high = min(runs[run, 1], j_last)
        if low <= high:
            total += _sum_codes(
                flat,
                start,
                stride_b,
                na,
                low,
                high,
                local[n, 2],
                local[n, 3],
                spans[n, 5],
                spans[n, 6],
            )
    return total


#: Columns of a tile's ray table: the copy, the span (k_first, k_last) and the fixed-point
#: position (xb, xc) and step (db, dc) of each ray (:func:`render.drr_fast._ray_span`).
_SPAN_COLUMNS = 7


@njit(cache=True, nogil=True, parallel=True)
def _joint_image(
    flat: NDArray[Any],
    layout: NDArray[np.int64],
    boxes: NDArray[np.int32],
    blocks: NDArray[np.int64],
    extents: NDArray[np.int64],
    companion_flat: NDArray[Any],
    companion_layout: NDArray[np.int64],
    companion_boxes: NDArray[np.int32],
    companion_blocks: NDArray[np.int64],
    companion_extents: NDArray[np.int64],
    offsets: NDArray[np.int64],
    bricks: NDArray[np.uint8],
    brick_layout: NDArray[np.int64],
    thick_slope: float,
    scale: float,
    companion_scale: float,
    voxel_from_lps: NDArray[np.float64],
    source: NDArray[np.float64],
    origin: NDArray[np.float64],
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    pixel_mm: float,
    height: int,
    width: int,
    slab: int,
) -> NDArray[np.float32]:
    """(2, H, W): the primary's and the companion's line integrals (render.drr_fast's
    ``_joseph_image`` for two volumes; the same float operations, so the primary's image is
    FastDRR's bit for bit).

    Per tile of rays, the primary first for every ray (keeping each ray's span), then the
    companion along those spans in the tile's runs of occupied blocks (module docstring).
    """
    out = np.empty((2, height, width), np.float32)
    A = voxel_from_lps
    s = np.empty(3)
    for a in range(3):
        s[a] = A[a, 0] * source[0] + A[a, 1] * source[1] + A[a, 2] * source[2] + A[a, 3]
    tiles_c = (width + TILE_PX - 1) // TILE_PX
    tiles = tiles_c * ((height + TILE_PX - 1) // TILE_PX)
    max_blocks = 1
    for copy in range(companion_layout.shape[0]):
        max_blocks = max(max_blocks, companion_layout[copy, LAYOUT_NA] // SKIP_BLOCK + 1)
    for tile in prange(tiles):
        p = np.empty(3)
        d = np.empty(3)
        spans = np.empty((TILE_PX * TILE_PX, _SPAN_COLUMNS), np.int64)
        weights = np.empty(TILE_PX * TILE_PX)  # ray length per slice (mm)
        local = np.empty((TILE_PX * TILE_PX, 4), np.int64)  # companion span and position
        lines = np.empty((4, 4), np.int64)
        runs = np.empty((max_blocks, 2), np.int64)
        r0 = (tile // tiles_c) * TILE_PX
        c0 = (tile % tiles_c) * TILE_PX
        r1 = min(r0 + TILE_PX, height)
        c1 = min(c0 + TILE_PX, width)
        n = 0
        for r in range(r0, r1):
            for c in range(c0, c1):
                length = _pixel_ray(A, source, origin, u, v, pixel_mm, r, c, s, p, d)
                copy, b, cc, a, slabbed = _ray_axes(d, thick_slope)
                ray_slab = slab if slabbed else 1
                k_first, k_last, xb, xc, db_fx, dc_fx = _ray_span(
                    layout,
                    boxes,
                    blocks,
                    extents,
                    copy,
                    s[b],
                    s[cc],
                    s[a],
                    d[b],
                    d[cc],
                    d[a],
                    ray_slab,
                )
                primary = 0
                if k_last >= k_first:
                    na = layout[copy, LAYOUT_NA]
                    primary = _sum_codes(
                        flat,
                        layout[copy, LAYOUT_START],
                        layout[copy, LAYOUT_NC] * na,
                        na,
                        k_first,
                        k_last,
                        xb,
                        xc,
                        db_fx,
                        dc_fx,
                    )
                spans[n, 0] = copy
                spans[n, 1] = k_first
                spans[n, 2] = k_last
                spans[n, 3] = xb
                spans[n, 4] = xc
                spans[n, 5] = db_fx
                spans[n, 6] = dc_fx
                per_slice = abs(ray_slab / d[a])
                out[0, r, c] = primary * CODE_SUM_UNIT * length * per_slice * scale
                weights[n] = length * per_slice
                n += 1
        # the companion along those spans, in runs of blocks found once for the whole tile when
        # all its rays step through one copy (else per ray)
        tile_copy, uniform, j_low, j_high = _companion_spans(
            companion_layout,
            companion_boxes,
            companion_blocks,
            companion_extents,
            offsets,
            spans,
            n,
            local,
        )
        count = 0
        if tile_copy >= 0 and uniform:
            _corner_lines(
                A,
                source,
                origin,
                u,
                v,
                pixel_mm,
                s,
                (r0, r1 - 1),
                (c0, c1 - 1),
                tile_copy,
                slab,
                offsets,
                lines,
            )
            count = _tile_runs(bricks, brick_layout, tile_copy, lines, j_low, j_high, runs)
        n = 0
        for r in range(r0, r1):
            for c in range(c0, c1):
                companion = _companion_ray(
                    companion_flat,
                    companion_layout,
                    bricks,
                    brick_layout,
                    spans,
                    local,
                    n,
                    runs,
                    count if uniform else -1,
                )
                out[1, r, c] = companion * CODE_SUM_UNIT * weights[n] * companion_scale
                n += 1
    return out


def brick_occupancy(copy: NDArray[Any]) -> NDArray[np.uint8]:
    """(blocks, tiles_b, tiles_c) uint8: 1 where the brick of SKIP_BLOCK slices × BRICK_VOXELS²
    in-slice voxels of a slice-ordered copy (b, c, slice) holds a non-zero voxel."""
    shape = [
        -(-copy.shape[0] // BRICK_VOXELS),
        -(-copy.shape[1] // BRICK_VOXELS),
        -(-copy.shape[2] // SKIP_BLOCK),
    ]
    padded = np.zeros(
        (shape[0] * BRICK_VOXELS, shape[1] * BRICK_VOXELS, shape[2] * SKIP_BLOCK), bool
    )
    padded[: copy.shape[0], : copy.shape[1], : copy.shape[2]] = copy != 0
    occupied = padded.reshape(
        shape[0], BRICK_VOXELS, shape[1], BRICK_VOXELS, shape[2], SKIP_BLOCK
    ).any(axis=(1, 3, 5))
    return np.ascontiguousarray(np.transpose(occupied, (2, 0, 1)), dtype=np.uint8)


def _copy_offsets(offset_voxels: NDArray[np.int64], slab: int) -> NDArray[np.int64]:
    """(6, 3): per packed copy, the companion copy's (b, c, slice) index 0 in the primary copy's
    indices, from the companion's voxel offset on the primary grid (a multiple of ``slab``)."""
    rows = []
    for copy in range(6):
        axis = copy % 3
        b, c = (a for a in range(3) if a != axis)
        per_slice = slab if copy >= 3 else 1
        rows.append((offset_voxels[b], offset_voxels[c], offset_voxels[axis] // per_slice))
    return np.asarray(rows, np.int64)


def _check_inside(primary: FastDRR, companion: FastDRR, offsets: NDArray[np.int64]) -> None:
    """Raise ValueError unless every slice box of every companion copy lies inside the primary
    copy's box of the same slice: what makes the primary's span enough for both."""
    for copy in range(6):
        shift_b, shift_c, shift_k = (int(x) for x in offsets[copy])
        own = companion.boxes[copy]
        present = (own[:, 0] <= own[:, 1]) & (own[:, 2] <= own[:, 3])
        slices = np.flatnonzero(present)
        outer = primary.boxes[copy][slices + shift_k]
        inner = own[slices] + np.array([shift_b, shift_b, shift_c, shift_c], np.int32)
        inside = (
            (outer[:, 0] <= inner[:, 0])
            & (inner[:, 1] <= outer[:, 1])
            & (outer[:, 2] <= inner[:, 2])
            & (inner[:, 3] <= outer[:, 3])
        )
        if not inside.all():
            raise ValueError("the companion volume is non-zero where the primary volume is zero")


class JointDRR:
    """Line integrals of a volume (``primary``) and of a companion volume on its grid, in one
    pass (module docstring); thread-safe, GIL released.

    ``primary`` must be quantised with linear interpolation (the integer sampler). The
    companion's own :class:`FastDRR` (:attr:`companion`, built here on the slab-aligned volume)
    projects it alone and holds the copies the joint kernel reads.
    """

    def __init__(self, primary: FastDRR, companion: AttenuationVolume) -> None:
        if not primary.integer_sampling:
            raise ValueError("JointDRR needs a quantised, linearly interpolating primary FastDRR")
        if primary.slab < 2:
            raise ValueError("JointDRR needs a primary with slab copies (slab_voxels ≥ 2)")
        self.primary = primary
        aligned = align_to_grid(companion, primary.volume, primary.slab)
        self.companion = FastDRR(
            aligned, slab_voxels=primary.slab, slab_max_deg=primary.slab_max_deg
        )
        offset = grid_offset_voxels(aligned, primary.volume)
        if (offset < 0).any() or (offset + aligned.mu.shape > primary.volume.mu.shape).any():
            raise ValueError("the companion volume reaches outside the primary volume")
        self._offsets = _copy_offsets(offset, primary.slab)
        _check_inside(primary, self.companion, self._offsets)
        occupancy = [brick_occupancy(copy) for copy in self.companion.copies]
        self._brick_layout = np.zeros((len(occupancy), 3), np.int64)
        self._brick_layout[:, 0] = np.cumsum([0] + [o.size for o in occupancy[:-1]])
        self._brick_layout[:, 1:] = [o.shape[1:] for o in occupancy]
        self._bricks = np.concatenate([o.ravel() for o in occupancy])

    @property
    def companion_nbytes(self) -> int:
        """Memory the companion adds: its slice-ordered copies and their brick occupancy."""
        return self.companion.nbytes + int(self._bricks.nbytes)

    @property
    def nbytes(self) -> int:
        """Memory held by both volumes' copies and the bricks."""
        return self.primary.nbytes + self.companion_nbytes

    def line_integrals(
        self, geometry: ProjectionGeometry
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(H, W) float32 line integrals of the primary and of the companion volume from the
        source to every pixel centre of ``geometry``."""
        flat, layout, boxes, blocks, extents = self.companion.ray_tables()
        source, origin, u, v, pixel_mm, height, width = geometry_arrays(geometry)
        both = _joint_image(
            *self.primary.ray_tables(),
            flat,
            layout,
            boxes,
            blocks,
            extents,
            self._offsets,
            self._bricks,
            self._brick_layout,
            self.primary.slab_slope,
            self.primary.scale,
            self.companion.scale,
            self.primary.voxel_from_lps,
            source,
            origin,
            u,
            v,
            pixel_mm,
            height,
            width,
            self.primary.slab,
        )
        return both[0], both[1]
