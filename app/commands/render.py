"""``fluorosim render``: render a fluoroscopy image of the patient to a file, headless.

Writes the monitor image (PNG) and, on request, the raw line integrals (``.npy``, float32, raw
detector rows × columns), the geometry (JSON: focal spot and the 3×4 LPS-mm → pixel projection in
the LPS patient frame of ``fluorosim phantom export``) and the attenuation volume it integrated
(NIfTI, μ in mm⁻¹, RAS affine), so anyone can check the image with their own ray caster.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fluorosim.models.instruments import InstrumentPose
    from fluorosim.models.patient import Patient
    from fluorosim.render.carm import CArmJoints
    from fluorosim.render.geometry import ProjectionGeometry
    from fluorosim.render.renderer import FluoroRenderer

HELP = "render a fluoroscopy image of the patient to a file, headless"

#: Short joint names accepted by ``--carm`` → CArmJoints fields.
JOINT_ALIASES = {
    "orbital": "orbital_deg",
    "angular": "angular_deg",
    "tilt": "angular_deg",
    "wigwag": "wigwag_deg",
    "lift": "lift_mm",
    "horizontal": "horizontal_mm",
    "table_longitudinal": "table_longitudinal_mm",
    "table_long": "table_longitudinal_mm",
    "table_lateral": "table_lateral_mm",
    "table_height": "table_height_mm",
}


class RenderArgumentError(ValueError):
    """A command-line value that cannot be used; the message names the option."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim render``."""
    parser.add_argument(
        "--view",
        help="named view computed for this patient: ap, lateral, true_lateral_sacrum, inlet, "
        "outlet, oblique (needs --side, --level), ferguson (needs --level), "
        "contralateral_oblique (needs --side)",
    )
    parser.add_argument("--side", choices=["left", "right"], help="side for oblique views")
    parser.add_argument("--level", help="level, e.g. L4 or L4_L5 (default L5_S1)")
    parser.add_argument(
        "--carm",
        help="joint values, e.g. 'orbital=20,tilt=-25,lift=10' (deg/mm); with --view they "
        "replace the view's values for the joints named",
    )
    parser.add_argument("--seed", type=int, default=0, help="patient generator seed (default 0)")
    parser.add_argument(
        "--patient",
        metavar="NAME|PATH",
        help="render this patient instead of the generated one: a stored name "
        "(fluorosim phantom import) or a CT file / DICOM folder / exported patient folder",
    )
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (default 512)")
    parser.add_argument(
        "--kvp",
        type=float,
        default=75.0,
        help="tube voltage the dose-rate control starts from (default 75 kVp; it raises it "
        "for a thick view)",
    )
    parser.add_argument("--model", default="ii9", help="C-arm preset: ii9, ii12, fpd30")
    parser.add_argument("--mode", help="magnification mode of the preset (e.g. 6in)")
    parser.add_argument(
        "--instrument",
        action="append",
        default=[],
        metavar="NAME:x,y,z:dx,dy,dz[:roll]",
        help="instrument tip (LPS mm), direction handle→tip and roll about the shaft (deg, "
        "default 0); repeatable",
    )
    parser.add_argument(
        "--exact", action="store_true", help="use the exact Siddon ray caster (slow)"
    )
    parser.add_argument("--out", help="output image file (PNG)")
    parser.add_argument(
        "--line-integrals",
        dest="line_integrals",
        help="write ∫μ dl as .npy (at the --mu volume's energy)",
    )
    parser.add_argument("--geometry", help="write the projection geometry as JSON")
    parser.add_argument("--mu", help="write the attenuation volume (mm⁻¹) as NIfTI .nii.gz")


def parse_carm(text: str) -> dict[str, float]:
    """``'orbital=20,tilt=-5'`` → {'orbital_deg': 20.0, 'angular_deg': -5.0}."""
    values: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        field = JOINT_ALIASES.get(name, name)
        if not sep or field not in set(JOINT_ALIASES.values()):
            raise RenderArgumentError(
                f"--carm: cannot read '{item}'; use name=value with names "
                f"{', '.join(sorted(JOINT_ALIASES))}"
            )
        try:
            values[field] = float(value)
        except ValueError:
            raise RenderArgumentError(f"--carm: '{value}' for {name} is not a number") from None
        if not np.isfinite(values[field]):
            raise RenderArgumentError(f"--carm: {name} must be finite")
    return values


def _vector(text: str, what: str, spec: str) -> np.ndarray:
    try:
        vector = np.array([float(x) for x in text.split(",")])
    except ValueError:
        vector = np.array([])
    if vector.shape != (3,) or not np.all(np.isfinite(vector)):
        raise RenderArgumentError(f"--instrument '{spec}': {what} must be three numbers x,y,z")
    return vector


def parse_instrument(spec: str) -> InstrumentPose:
    """``NAME:x,y,z:dx,dy,dz[:roll]`` → an InstrumentPose (tip LPS mm, direction handle → tip,
    roll about the shaft in degrees, default 0)."""
    from fluorosim.models.instruments import InstrumentPose, load_catalogue

    parts = spec.split(":")
    if len(parts) not in (3, 4):
        raise RenderArgumentError(f"--instrument '{spec}': expected NAME:x,y,z:dx,dy,dz[:roll]")
    roll_deg = 0.0
    if len(parts) == 4:
        try:
            roll_deg = float(parts[3])
        except ValueError:
            roll_deg = math.nan
        if not math.isfinite(roll_deg):
            raise RenderArgumentError(
                f"--instrument '{spec}': the roll must be a number of degrees"
            )
    name = parts[0].strip()
    catalogue = load_catalogue()
    if name not in catalogue:
        raise RenderArgumentError(
            f"--instrument '{spec}': unknown instrument '{name}'; known: {', '.join(sorted(catalogue))}"
        )
    tip = _vector(parts[1], "the tip", spec)
    direction = _vector(parts[2], "the direction", spec)
    if np.linalg.norm(direction) < 1e-9:
        raise RenderArgumentError(f"--instrument '{spec}': the direction must not be zero")
    return InstrumentPose(name, tip, direction, roll_deg=roll_deg)


def load_named_patient(reference: str) -> Patient:
    """The ``--patient`` patient: a stored name or a CT / exported-folder path."""
    from fluorosim.models.io.store import load_patient as load_stored

    return load_stored(reference)


def load_patient(seed: int) -> Patient:
    """The generated patient of this seed (cached on disk by models.phantom)."""
    from fluorosim.models.phantom import PatientParameters, load_or_build_patient

    return load_or_build_patient(PatientParameters(seed=seed))


def resolve_joints(args: argparse.Namespace, patient: Patient) -> CArmJoints:
    """Joints of ``--view`` (computed for the patient) with ``--carm`` values applied."""
    from fluorosim.render.carm import CArmJoints, check_limits
    from fluorosim.render.views import ideal_joints

    if args.view:
        joints = ideal_joints(patient, args.view, side=args.side, level=args.level)
    else:
        joints = CArmJoints()
    if args.carm:
        joints = joints.moved(**parse_carm(args.carm))
    return check_limits(joints)


def geometry_record(
    renderer: FluoroRenderer, geometry: ProjectionGeometry, joints: CArmJoints
) -> dict[str, Any]:
    """The JSON record of a rendered image's projection (LPS patient frame, mm)."""
    return {
        "frame": "LPS patient frame, mm (as fluorosim phantom export)",
        "projection": "[col*w, row*w, w] = pixel_from_lps @ [x, y, z, 1]; pixel centres at "
        "integer (col, row), raw detector orientation (the .npy layout)",
        "source_lps_mm": geometry.source_lps_mm.tolist(),
        "pixel_from_lps": geometry.pixel_from_lps.tolist(),
        "detector_origin_lps_mm": geometry.detector_origin_lps_mm.tolist(),
        "detector_u_lps": geometry.detector_u_lps.tolist(),
        "detector_v_lps": geometry.detector_v_lps.tolist(),
        "pixel_mm": geometry.pixel_mm,
        "width_px": geometry.width_px,
        "height_px": geometry.height_px,
        "sid_mm": geometry.sid_mm,
        "joints": joints.as_dict(),
        "carm_model": renderer.model.name,
        "magnification_mode": renderer.mode,
        "kvp": renderer.kvp,
        "effective_energy_kev": renderer.energy_kev,
        "line_integrals_energy_kev": renderer.energy_kev,
        "monitor_orientation": renderer.orientation.describe(),
        "png_orientation": {
            "flip_horizontal": renderer.orientation.flip_horizontal,
            "flip_vertical": renderer.orientation.flip_vertical,
            "rotate_quarter_turns": renderer.orientation.rotate_quarter_turns,
        },
    }


def _render(args: argparse.Namespace) -> int:
    import cv2

    from fluorosim.render.drr_exact import line_integrals_exact
    from fluorosim.render.renderer import FluoroRenderer, plain_display

    if not (args.out or args.line_integrals or args.geometry or args.mu):
        raise RenderArgumentError(
            "nothing to write: give --out (and/or --line-integrals, --geometry, --mu)"
        )
    if not 16 <= args.size <= 4096:
        raise RenderArgumentError(f"--size {args.size}: expected 16–4096 pixels")
    instruments = [parse_instrument(spec) for spec in args.instrument]
    patient = load_named_patient(args.patient) if args.patient else load_patient(args.seed)
    joints = resolve_joints(args, patient)
    renderer = FluoroRenderer(
        patient, model=args.model, kvp=args.kvp, display_px=args.size, mode=args.mode
    )
    if args.exact:
        geometry = renderer.geometry(joints)
        line_integrals = line_integrals_exact(renderer.volume, geometry)
        instrument_li = renderer._instrument_line_integrals(
            instruments, geometry, renderer.energy_kev
        )
        if instrument_li is not None:
            line_integrals = line_integrals + instrument_li
        image = renderer.orientation.apply(plain_display(line_integrals, renderer.field_mask))
        dose = None
    else:
        frame = renderer.render_frame(joints, instruments, rng=np.random.default_rng(args.seed))
        geometry, image, dose = frame.geometry, frame.image, frame.dose
        # the written ∫μ dl is at the μ volume's energy (as --exact and --mu), not the beam's −ln T
        line_integrals = renderer.anatomy_line_integrals(joints)[1]
        instrument_li = renderer._instrument_line_integrals(
            instruments, geometry, renderer.energy_kev
        )
        if instrument_li is not None:
            line_integrals = line_integrals + instrument_li
    written = []
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out), image):
            raise OSError(f"could not write the image {out} (use a .png name)")
        written.append(str(out))
    if args.line_integrals:
        path = Path(args.line_integrals)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.asarray(line_integrals, dtype=np.float32))
        written.append(str(path))
    if args.geometry:
        path = Path(args.geometry)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = geometry_record(renderer, geometry, joints)
        if dose is not None:
            record["dose_per_frame"] = dataclasses.asdict(dose)
        path.write_text(json.dumps(record, indent=2))
        written.append(str(path))
    if args.mu:
        from fluorosim.models.io.nifti import write_nifti

        written.append(
            str(write_nifti(args.mu, renderer.volume.mu, renderer.volume.lps_from_voxel))
        )
    view = args.view or "custom pose"
    print(f"fluorosim render: {view} → {', '.join(written)}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Render and write the requested files; clear one-line errors, exit code 2 on bad input."""
    from fluorosim.render.carm import CArmLimitError
    from fluorosim.render.views import ViewSpecError

    try:
        return _render(args)
    except (RenderArgumentError, CArmLimitError, ViewSpecError, KeyError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"fluorosim render: {message}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(
            f"fluorosim render: the patient generator is not available ({error})", file=sys.stderr
        )
        return 1
    except OSError as error:
        print(f"fluorosim render: {error}", file=sys.stderr)
        return 1
