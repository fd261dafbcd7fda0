"""``fluorosim phantom``: build, inspect and export the simulated patient.

``build`` generates the patient (or finds it in the cache) and says where it is cached;
``show`` prints the parameters and the dimensions MEASURED on the generated label volume next to
the published reference values; ``export OUT_DIR`` writes NIfTI volumes, labels, landmarks and
meshes (``--dicom`` adds a DICOM CT series). ``--random`` draws a new seed and prints it so the
same patient can be generated again with ``--seed``.

``import CT [--labels MAP] [--landmarks FILE] --name NAME`` imports a real CT (NIfTI, NRRD or a
DICOM folder; the label map may be a folder of per-structure masks such as TotalSegmentator's),
computes the landmarks its bone labels allow, and stores it under NAME in the user data folder
(:mod:`models.io.store`) for ``--patient NAME`` on ``run``, ``render`` and ``replay``; it prints
what was mapped, which landmarks were computed (and approximated) and which shipped scenarios the
patient cannot support and why. ``list`` prints the stored patients.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import time
from pathlib import Path

from fluorosim.models.phantom.parts import VARIANTS

HELP = "build, inspect and export the simulated patient"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim phantom``."""
    parser.add_argument(
        "action",
        nargs="?",
        choices=["build", "show", "export", "import", "list"],
        default="show",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        help="export: the folder to write; import: the CT (NIfTI/NRRD file or DICOM folder)",
    )
    parser.add_argument(
        "--labels",
        metavar="MAP",
        help="import: label map on the CT's grid, or a folder of per-structure masks",
    )
    parser.add_argument(
        "--landmarks", metavar="FILE", help="import: landmarks (Slicer .mrk.json or landmarks.json)"
    )
    parser.add_argument("--name", help="import: the name to store the patient under")
    parser.add_argument(
        "--overwrite", action="store_true", help="import: replace a stored patient of that name"
    )
    parser.add_argument("--seed", type=int, default=0, help="patient seed (default 0)")
    parser.add_argument("--random", action="store_true", help="draw a new seed and print it")
    parser.add_argument("--sex", choices=["female", "male"], default="male")
    parser.add_argument("--bmi", type=float, default=25.0, help="body-mass index, 16–45")
    parser.add_argument("--age", type=float, default=50.0, help="age in years, 18–90")
    parser.add_argument("--variant", choices=VARIANTS, default=None, help="anatomical variant")
    parser.add_argument("--voxel-mm", type=float, default=1.0, help="voxel size, 0.5–3 mm")
    parser.add_argument("--dicom", action="store_true", help="export: add a DICOM CT series")
    parser.add_argument(
        "--cache-dir", default=None, help="patient cache folder (default: user cache)"
    )


def _parameters(args: argparse.Namespace):
    from fluorosim.models.phantom import PatientParameters

    seed = secrets.randbelow(2**31) if args.random else args.seed
    if args.random:
        print(f"random seed: {seed}  (rebuild this patient with --seed {seed})")
    return PatientParameters(
        seed=seed,
        sex=args.sex,
        bmi=args.bmi,
        age_years=args.age,
        variant=args.variant,
        voxel_mm=args.voxel_mm,
    )


def _print_parameters(patient) -> None:
    import numpy as np

    print("parameters:")
    for name, value in patient.parameters.items():
        print(f"  {name:18s} {value}")
    low, high = patient.bounds_lps_mm()
    print(
        f"volume: {patient.shape[0]}×{patient.shape[1]}×{patient.shape[2]} voxels of "
        f"{patient.spacing_mm[0]:.2f} mm, LPS {np.round(low, 1)} … {np.round(high, 1)} mm"
    )


def _fmt(value: float) -> str:
    return "  –  " if value is None or math.isnan(value) else f"{value:5.1f}"


def _print_measurements(patient) -> None:
    from fluorosim.models.phantom.measure import measure_all

    table = measure_all(patient)
    print("\nmeasured on the label volume (mm, deg); reference L2–L5 mean in brackets:")
    print(
        "level  body W [46.7]  D [35.0]  H [27.8]   pedicle W / H (left)   canal depth [16.7] "
        "width [26.7]"
    )
    for level in ("L1", "L2", "L3", "L4", "L5"):
        row = table[level]
        print(
            f"{level:5s}  {_fmt(row['body_width_mm'])}       {_fmt(row['body_depth_mm'])}     "
            f"{_fmt(row['body_height_mm'])}      {_fmt(row['pedicle_width_left_mm'])} / "
            f"{_fmt(row['pedicle_height_left_mm'])}          {_fmt(row['canal_depth_mm'])}"
            f"             {_fmt(row['canal_width_mm'])}"
        )
    print(
        "\ndisc    height ant / mid / post    facet angle L / R   Kambin ⌀ (L)   root∠disc (L)   "
        "root–pedicle (L)"
    )
    for disc in ("L1_L2", "L2_L3", "L3_L4", "L4_L5", "L5_S1"):
        row = table[disc]
        print(
            f"{disc:6s}  {_fmt(row['disc_anterior_mm'])} / {_fmt(row['disc_middle_mm'])} / "
            f"{_fmt(row['disc_posterior_mm'])}      {_fmt(row['facet_angle_left_deg'])} / "
            f"{_fmt(row['facet_angle_right_deg'])}       {_fmt(row['kambin_incircle_diameter_left_mm'])}"
            f"          {_fmt(row['root_disc_angle_left_deg'])}           "
            f"{_fmt(row['root_pedicle_left_mm'])}"
        )


def _import(args: argparse.Namespace) -> int:
    """``phantom import``: import, compute landmarks, store under ``--name`` and summarise."""
    from fluorosim.models.io import PatientFileError
    from fluorosim.models.io.ct_import import import_ct
    from fluorosim.models.io.store import PatientStoreError, check_name, load_patient, save_patient
    from fluorosim.scenarios.loader import load_shipped, shipped_scenarios
    from fluorosim.scenarios.patients import describe_missing

    if not args.out_dir:
        print(
            "fluorosim phantom import: give the CT, e.g. ct.nii.gz or a DICOM folder",
            file=sys.stderr,
        )
        return 2
    try:
        check_name(args.name or "")
        patient = import_ct(args.out_dir, args.labels, args.landmarks, compute_landmarks=True)
        folder = save_patient(patient, args.name, overwrite=args.overwrite)
        stored = load_patient(args.name)
    except (PatientFileError, PatientStoreError) as error:
        print(f"fluorosim phantom import: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"fluorosim phantom import: cannot store the patient: {error}", file=sys.stderr)
        return 2
    params = stored.parameters
    bones = sorted(n for n in stored.label_table if n != "background")
    print(
        f"imported {args.out_dir} as patient {args.name!r}: {stored.shape[0]}×{stored.shape[1]}×"
        f"{stored.shape[2]} voxels of {', '.join(f'{v:.2f}' for v in stored.spacing_mm)} mm, "
        f"version {params.get('ct_digest')}; stored in {folder}"
    )
    for note in params.get("label_notes") or []:
        print(f"  label {note}")
    computed = params.get("computed_landmarks") or []
    print(f"  {len(stored.landmarks)} landmarks ({len(computed)} computed from the labels)")
    for note in params.get("landmark_notes") or []:
        print(f"  approximated — {note}")
    if not bones:
        print("  warning: no labels (give --labels): views and scenarios need bone labels")
    for scenario_id in shipped_scenarios():
        message = describe_missing(load_shipped(scenario_id), stored)
        print(f"  {scenario_id}: " + ("ready" if message is None else f"not available — {message}"))
    print(f"use it with: fluorosim render --patient {args.name} --view ap --out ap.png")
    return 0


def _list() -> int:
    from fluorosim.models.io.store import patients_dir, stored_names

    names = stored_names()
    if not names:
        print(f"no stored patients in {patients_dir()} (fluorosim phantom import CT --name NAME)")
    for name in names:
        print(name)
    return 0


def run(args: argparse.Namespace) -> int:
    """Build, show or export the patient; a clear message and exit code 2 on bad input."""
    if args.action == "import":
        return _import(args)
    if args.action == "list":
        return _list()
    from fluorosim.models.phantom import load_or_build_patient
    from fluorosim.models.phantom.cache import cache_key, default_cache_dir

    try:
        params = _parameters(args)
    except ValueError as error:
        print(f"fluorosim phantom: {error}", file=sys.stderr)
        return 2
    if args.action == "export" and not args.out_dir:
        print("fluorosim phantom export: give the folder to write, e.g. OUT_DIR", file=sys.stderr)
        return 2
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    start = time.perf_counter()
    try:
        patient = load_or_build_patient(params, cache_dir=cache_dir)
    except OSError as error:
        print(f"fluorosim phantom: cannot use the cache {cache_dir}: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    missing = patient.parameters.get("missing_parts") or []
    if missing:
        print(f"warning: built without {', '.join(missing)} (not installed)", file=sys.stderr)
    if args.action == "build":
        print(
            f"patient seed {params.seed}: {patient.shape[0]}×{patient.shape[1]}×{patient.shape[2]}"
            f" voxels, ready in {elapsed:.1f} s; cached as {cache_dir / ('patient-' + cache_key(params))}"
            ".npz"
        )
        return 0
    if args.action == "show":
        _print_parameters(patient)
        _print_measurements(patient)
        return 0
    from fluorosim.models.io.export import export_patient

    out_dir = Path(args.out_dir)
    try:
        written = export_patient(patient, out_dir, dicom=args.dicom)
    except OSError as error:
        print(f"fluorosim phantom export: cannot write {out_dir}: {error}", file=sys.stderr)
        return 2
    count = len(written) if hasattr(written, "__len__") else "the"
    print(f"exported patient seed {params.seed} to {out_dir} ({count} files)")
    return 0
