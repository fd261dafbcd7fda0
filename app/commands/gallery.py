"""``fluorosim gallery``: the named views of several patients side by side, as one labelled PNG.

Rows are the named views a trainee must recognise (AP, lateral, true lateral of the sacrum, inlet,
outlet, left oblique at L4-5 — the Scotty dog — and Ferguson L5-S1), columns the patients: the
default generated patient (real skeleton), one variant, and optionally an imported CT. Every image
is the one ``fluorosim render --view …`` shows (same renderer, C-arm preset, kVp and image chain),
scaled down to a tile. The README's "Gallery" section shows the result; regenerate it after the
anatomy or the image chain changes::

    fluorosim gallery --ct CT --ct-labels MASKDIR --out assets/gallery

An imported CT covers only what was scanned. Where a ray enters or leaves the scanned box through
the body (the scan's cut ends and sides) the tissue beyond is missing, and the pixel would show a
body thinner than the patient's: those pixels are hatched, and a view whose central field is
mostly such rays — or whose landmarks the scan does not contain — is not drawn at all but labelled
"outside the scan" with the reason, rather than showing air where the anatomy should be.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from fluorosim.models.phantom.parts import Variant

HELP = "render the named views of several patients side by side into one labelled PNG"

#: (row label, view, side, level) — the gallery's rows, in order.
GALLERY_VIEWS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("AP L5-S1", "ap", None, None),
    ("Lateral L5-S1", "lateral", None, None),
    ("True lateral sacrum", "true_lateral_sacrum", None, None),
    ("Inlet", "inlet", None, None),
    ("Outlet", "outlet", None, None),
    ("Left oblique L4-5", "oblique", "left", "L4_L5"),
    ("Ferguson L5-S1", "ferguson", None, "L5_S1"),
)
#: The variant shown in the second column by default.
DEFAULT_VARIANT = "high_iliac_crest"
#: A view is "outside the scan" when more than this fraction of its central field (inside half
#: the receptor radius, where the automatic brightness measures) looks through a cut of the scan.
MAX_TRUNCATED_CENTRE = 0.25
#: μ above this fraction of water's is body (≈ −700 HU: lung and bowel gas excepted).
BODY_MU_FRACTION = 0.3
TILE_PX = 256
RENDER_PX = 512
HEADER_PX = 40
LABEL_COLUMN_PX = 150


class GalleryError(ValueError):
    """A gallery that cannot be made (bad option, unreadable CT); the message says which."""


@dataclass
class Tile:
    """One cell of the gallery: the monitor image (None when not drawn) and what it shows."""

    view: str
    image: NDArray[np.uint8] | None
    note: str = ""
    truncated_fraction: float = 0.0


@dataclass
class Column:
    """One patient's column: its title and a tile per gallery view."""

    title: str
    tiles: list[Tile] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim gallery``."""
    parser.add_argument(
        "--out",
        default="assets/gallery",
        help="folder to write gallery.png into (default assets/gallery)",
    )
    parser.add_argument(
        "--variant",
        default=DEFAULT_VARIANT,
        help=f"variant for the second column (default {DEFAULT_VARIANT}; 'none' to leave out)",
    )
    parser.add_argument("--seed", type=int, default=0, help="patient seed (default 0)")
    parser.add_argument("--ct", help="a CT (NIfTI / NRRD file or DICOM folder) for a third column")
    parser.add_argument("--ct-labels", dest="ct_labels", help="the CT's label map or mask folder")
    parser.add_argument("--ct-name", dest="ct_name", default="real CT", help="the CT's title")
    parser.add_argument("--model", default="ii9", help="C-arm preset (default ii9)")
    parser.add_argument(
        "--kvp",
        type=float,
        default=75.0,
        help="tube voltage the dose-rate control starts from (default 75 kVp)",
    )
    parser.add_argument(
        "--keep-tiles",
        dest="keep_tiles",
        help="also write each view at full size into this folder (for a closer look)",
    )
    parser.add_argument(
        "--tile", type=int, default=TILE_PX, help=f"tile size in pixels (default {TILE_PX})"
    )


def truncation_mask(
    volume: Any, geometry: Any, mu_body_per_mm: float, size_px: int = 128
) -> NDArray[np.bool_]:
    """(size, size) pixels whose ray enters or leaves the volume's box through body.

    The box is the volume's grid (its voxel centres ± half a voxel); a ray that crosses it and
    finds μ above ``mu_body_per_mm`` in the voxel where it enters or where it leaves looks
    through a cut of the scan: the tissue beyond the box is missing from its line integral.
    Rays that miss the box are not truncated (they see air).
    """
    small = geometry.resized(size_px, size_px)
    voxel_from_lps = np.linalg.inv(volume.lps_from_voxel)
    source = voxel_from_lps[:3, :3] @ small.source_lps_mm + voxel_from_lps[:3, 3]
    ends = (
        small.pixel_centers_lps().reshape(-1, 3) @ voxel_from_lps[:3, :3].T + voxel_from_lps[:3, 3]
    )
    direction = ends - source
    shape = np.array(volume.mu.shape, dtype=np.float64)
    low, high = -0.5 * np.ones(3), shape - 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (low - source) / direction
        t2 = (high - source) / direction
    t_near = np.nanmax(np.where(np.isfinite(t1), np.minimum(t1, t2), -np.inf), axis=1)
    t_far = np.nanmin(np.where(np.isfinite(t1), np.maximum(t1, t2), np.inf), axis=1)
    # a ray parallel to an axis outside the slab misses the box
    parallel_out = np.any((direction == 0) & ((source < low) | (source > high)), axis=1)
    hits = (t_far > t_near) & (t_far > 0) & ~parallel_out
    truncated = np.zeros(len(direction), dtype=bool)
    if hits.any():
        limit = shape - 1
        for t in (t_near[hits], t_far[hits]):
            points = source + t[:, None] * direction[hits]
            index = np.clip(np.rint(points), 0, limit).astype(int)
            values = volume.mu[index[:, 0], index[:, 1], index[:, 2]]
            truncated[np.flatnonzero(hits)] |= values > mu_body_per_mm
    return truncated.reshape(size_px, size_px)


def centre_disc(size_px: int, radius_fraction: float = 0.5) -> NDArray[np.bool_]:
    """Pixels within ``radius_fraction`` of the half-size of a square image's centre."""
    centre = (size_px - 1) / 2.0
    rows, cols = np.mgrid[0:size_px, 0:size_px]
    return np.hypot(rows - centre, cols - centre) <= radius_fraction * size_px / 2.0


def render_column(
    title: str,
    patient: Any,
    model: str = "ii9",
    kvp: float = 75.0,
    check_truncation: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Column:
    """Every gallery view of ``patient`` as ``fluorosim render --view`` shows it.

    ``check_truncation`` (imported CTs): measure how much of each view looks through a cut of
    the scan, hatch those pixels, and leave a view undrawn when its centre is mostly cut.
    """
    import cv2

    from fluorosim.render.carm import CArmLimitError
    from fluorosim.render.image_chain import water_mu_per_mm
    from fluorosim.render.renderer import FluoroRenderer
    from fluorosim.render.views import ViewSpecError, ideal_joints

    renderer = FluoroRenderer(patient, model=model, kvp=kvp, display_px=RENDER_PX)
    mu_body = BODY_MU_FRACTION * water_mu_per_mm(kvp)
    column = Column(title)
    for label, view, side, level in GALLERY_VIEWS:
        if progress is not None:
            progress(f"{title}: {label}")
        try:
            joints = ideal_joints(patient, view, side=side, level=level, model=model)
        except (ViewSpecError, KeyError) as error:
            reason = error.args[0] if error.args else str(error)
            prefix = "outside the scan" if check_truncation else "not shown"
            column.tiles.append(Tile(view, None, f"{prefix}: {reason}"))
            continue
        except CArmLimitError as error:
            reason = error.args[0] if error.args else str(error)
            column.tiles.append(Tile(view, None, f"the C-arm cannot reach this view: {reason}"))
            continue
        fraction = 0.0
        cut = None
        if check_truncation:
            geometry = renderer.geometry(joints)
            cut = renderer.orientation.apply(truncation_mask(renderer.volume, geometry, mu_body))
            fraction = float(cut[centre_disc(cut.shape[0])].mean())
            if fraction > MAX_TRUNCATED_CENTRE:
                note = f"outside the scan: {fraction:.0%} of the centre looks past its cut ends"
                column.tiles.append(Tile(view, None, note, fraction))
                continue
        frame = renderer.render_frame(joints, rng=np.random.default_rng(0))
        image = frame.image
        # the technique the dose-rate control set, as the C-arm's monitor shows it
        note = f"{frame.kvp:.0f} kV {frame.dose.ma:.1f} mA" if frame.dose is not None else ""
        if cut is not None and cut.any():
            inside = image > 0  # the receptor's circle (black outside it)
            cut_full = cv2.resize(cut.astype(np.uint8), image.shape[::-1]) > 0
            image = hatch(image, cut_full & inside)
            cut_share = cut[centre_disc(cut.shape[0])].mean()
            note = f"{note}; hatched: past the scan's cut ({cut_share:.0%})"
        column.tiles.append(Tile(view, image, note, fraction))
    return column


def hatch(image: NDArray[np.uint8], where: NDArray[np.bool_], period_px: int = 12) -> NDArray:
    """``image`` with diagonal lines drawn over the ``where`` pixels (mid-grey, 2 px wide)."""
    rows, cols = np.indices(image.shape)
    lines = ((rows + cols) % period_px) < 2
    out = image.copy()
    out[where & lines] = 128
    return out


def _fit_text(text: str, width_px: int, scale: float) -> list[str]:
    """``text`` broken into lines that fit ``width_px`` at the font ``scale``."""
    import cv2

    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        (w, _), _ = cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        if w > width_px and current:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def _put(canvas: NDArray, text: str, x: int, y: int, scale: float, grey: int = 235) -> None:
    import cv2

    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, grey, 1, cv2.LINE_AA)


def tile_image(tile: Tile, size_px: int) -> NDArray[np.uint8]:
    """The tile as shown: the image scaled to ``size_px`` (area average) with its note, or a
    dark panel saying why the view is not drawn."""
    import cv2

    if tile.image is None:
        canvas: NDArray[np.uint8] = np.full((size_px, size_px), 24, np.uint8)
        cv2.rectangle(canvas, (2, 2), (size_px - 3, size_px - 3), 90, 1)
        y = size_px // 2 - 30
        for line in _fit_text(tile.note, size_px - 20, 0.42):
            _put(canvas, line, 10, y, 0.42, 220)
            y += 18
        return canvas
    canvas = np.asarray(
        cv2.resize(tile.image, (size_px, size_px), interpolation=cv2.INTER_AREA), np.uint8
    )
    if tile.note:
        y = size_px - 8 - 14 * (len(_fit_text(tile.note, size_px - 10, 0.36)) - 1)
        for line in _fit_text(tile.note, size_px - 10, 0.36):
            _put(canvas, line, 5, y, 0.36, 255)
            y += 14
    return canvas


def compose(columns: Sequence[Column], tile_px: int = TILE_PX) -> NDArray[np.uint8]:
    """One grey image: a header with the patients' titles, a row per view with its label."""
    rows = len(GALLERY_VIEWS)
    height = HEADER_PX + rows * (tile_px + 4)
    width = LABEL_COLUMN_PX + len(columns) * (tile_px + 4)
    canvas = np.full((height, width), 0, np.uint8)
    for c, column in enumerate(columns):
        x = LABEL_COLUMN_PX + c * (tile_px + 4)
        for i, line in enumerate(_fit_text(column.title, tile_px, 0.5)[:2]):
            _put(canvas, line, x + 4, 16 + 18 * i, 0.5)
        for r, tile in enumerate(column.tiles):
            y = HEADER_PX + r * (tile_px + 4)
            canvas[y : y + tile_px, x : x + tile_px] = tile_image(tile, tile_px)
    for r, (label, *_rest) in enumerate(GALLERY_VIEWS):
        y = HEADER_PX + r * (tile_px + 4) + tile_px // 2
        for i, line in enumerate(_fit_text(label, LABEL_COLUMN_PX - 10, 0.5)):
            _put(canvas, line, 6, y + 18 * i, 0.5)
    return canvas


def generated_patient(seed: int, variant: Variant | None) -> Any:
    """The generated patient with the real skeleton (cached on disk by models.phantom)."""
    from fluorosim.models.phantom import PatientParameters, load_or_build_patient

    return load_or_build_patient(PatientParameters(seed=seed, skeleton="real", variant=variant))


def imported_patient(ct: str, labels: str | None) -> Any:
    """The CT imported as ``fluorosim phantom import`` does (landmarks computed from the labels),
    stored in a temporary folder and loaded back, so the user's patient store is not touched."""
    from fluorosim.models.io.ct_import import import_ct
    from fluorosim.models.io.store import load_patient, save_patient

    patient = import_ct(ct, labels, None, compute_landmarks=True)
    with tempfile.TemporaryDirectory(prefix="fluorosim-gallery-") as folder:
        root = Path(folder)
        save_patient(patient, "gallery-ct", root=root)
        return load_patient("gallery-ct", root=root)


def make_gallery(args: argparse.Namespace, progress: Callable[[str], None] | None = None) -> Path:
    """Render every column and write ``<out>/gallery.png``; returns its path."""
    import cv2

    from fluorosim.models.phantom.parts import VARIANTS

    if args.variant not in (*VARIANTS, "none"):
        raise GalleryError(
            f"--variant {args.variant!r}: expected one of {', '.join(VARIANTS)} or none"
        )
    if not 64 <= args.tile <= 1024:
        raise GalleryError(f"--tile {args.tile}: expected 64–1024 pixels")
    ct_patient = imported_patient(args.ct, args.ct_labels) if args.ct else None
    columns = [
        render_column(
            f"default patient (seed {args.seed})",
            generated_patient(args.seed, None),
            args.model,
            args.kvp,
            progress=progress,
        )
    ]
    if args.variant != "none":
        columns.append(
            render_column(
                f"variant: {args.variant.replace('_', ' ')}",
                generated_patient(args.seed, cast("Variant", args.variant)),
                args.model,
                args.kvp,
                progress=progress,
            )
        )
    if ct_patient is not None:
        columns.append(
            render_column(args.ct_name, ct_patient, args.model, args.kvp, True, progress=progress)
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if getattr(args, "keep_tiles", None):
        keep = Path(args.keep_tiles)
        keep.mkdir(parents=True, exist_ok=True)
        for c, column in enumerate(columns):
            for (label, *_rest), tile in zip(GALLERY_VIEWS, column.tiles, strict=True):
                if tile.image is not None:
                    name = f"{c}-{label.lower().replace(' ', '_')}.png"
                    cv2.imwrite(str(keep / name), tile.image)
    path = out / "gallery.png"
    if not cv2.imwrite(str(path), compose(columns, args.tile), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path}")
    return path


def run(args: argparse.Namespace) -> int:
    """Make the gallery; one line on stderr and exit code 2 for bad input."""
    from fluorosim.models.io import PatientFileError
    from fluorosim.models.io.store import PatientStoreError

    def progress(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    try:
        path = make_gallery(args, progress)
    except (GalleryError, PatientFileError, PatientStoreError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"fluorosim gallery: {message}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"fluorosim gallery: {error}", file=sys.stderr)
        return 1
    print(f"fluorosim gallery: wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
