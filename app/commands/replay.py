"""``fluorosim replay``: score a recorded or scripted attempt headlessly and print the report.

``fluorosim replay FILE`` reads either a recorded attempt (JSON lines, first line
``{"format": "fluorosim-attempt", ...}``) or a scripted attempt (one JSON object
``{"scenario", "patient", "steps"}``), runs it through the headless session on the patient it
names (``--patient NAME|PATH``: on that stored patient or CT instead), and prints the plain-words
report (``--json``: the report as JSON). A recording made on another generator version or another
CT than the one it is replayed on (or before versions were recorded) starts with a warning line
naming both versions, and ``--json`` then adds a ``patient_check`` field. ``--make-script
SCENARIO [--failure MODE]`` prints the expert (or failure-mode) scripted attempt for the default
patient of a shipped scenario, to start from. ``--record --trainee ID [--db URL]`` also enters the
scored attempt in the records (and their ledger), so attempts made on a laptop or at another station
reach the lab's records. Exit codes: 0 passed, 1 failed, 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "score a recorded or scripted attempt headlessly and print the report"

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim replay``."""
    parser.add_argument("file", nargs="?", help="attempt file (.jsonl) or scripted attempt (.json)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="score without rendering images (dose still computed from the beam geometry)",
    )
    parser.add_argument(
        "--patient",
        metavar="NAME|PATH",
        help="replay on this patient: a stored name (fluorosim phantom import) or a CT / "
        "exported patient folder, instead of the one the attempt names",
    )
    parser.add_argument(
        "--make-script",
        metavar="SCENARIO",
        help="print the expert scripted attempt of a shipped scenario for its default patient",
    )
    parser.add_argument(
        "--failure",
        metavar="MODE",
        help="with --make-script: the scripted attempt of one failure mode instead",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="enter the scored attempt in the records (needs --trainee)",
    )
    parser.add_argument("--trainee", help="with --record: whose attempt it is")
    parser.add_argument("--db", help="with --record: records database URL (default as for report)")


def _is_recording(path: Path) -> bool:
    with path.open("rb") as handle:
        first = handle.readline(1_000_000)
    try:
        header = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and header.get("format") == "fluorosim-attempt"


def format_report(report) -> str:
    """The report as text a trainee reads."""
    data = report.as_json()
    lines = [report.summary or f"{data['scenario']}: {data['score']:.0f} %", ""]
    lines.append("What to work on:" if not report.passed else "Findings:")
    lines.extend(f"  - {finding}" for finding in report.findings)
    lines.append("")
    lines.append("Metrics (value / reference / result):")
    for name, metric in data["metrics"].items():
        value = metric["value"]
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        unit = f" {metric['unit']}" if metric["unit"] else ""
        verdict = {True: "ok", False: "FAIL", None: "not measured"}[metric["passed"]]
        lines.append(f"  {name}: {shown}{unit} / {metric['reference']} / {verdict}")
    if data["breaches"]:
        lines.append("")
        lines.append("Breaches:")
        for breach in data["breaches"]:
            lines.append(
                f"  {breach['structure']} ({breach['label']}): {breach['depth_mm']:.1f} mm at "
                f"t = {breach['t_s']:.1f} s, shot {breach['shot']}"
            )
    return "\n".join(lines)


def _make_script(args: argparse.Namespace) -> int:
    from fluorosim.scenarios import patients, scripts
    from fluorosim.scenarios.loader import ScenarioError, load_shipped
    from fluorosim.scenarios.session import MissingStructuresError

    try:
        scenario = load_shipped(args.make_script)
        overrides = {"ct": args.patient} if args.patient else None
        patient = patients.patient_for(scenario.patient, overrides)
        message = patients.describe_missing(scenario, patient)
        if message:
            raise MissingStructuresError(message, {})
        if args.failure:
            script = scripts.failure_script(scenario, patient, args.failure)
        else:
            script = scripts.expert_script(scenario, patient)
        if overrides:
            script["patient"] = overrides
    except (
        ScenarioError,
        scripts.ScriptError,
        patients.PatientSpecError,
        MissingStructuresError,
    ) as exc:
        print(f"fluorosim replay: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(script, indent=1))
    return EXIT_PASSED


def run(args: argparse.Namespace) -> int:
    """Score the attempt and print the report; exit 0 when it passed, 1 when it failed."""
    if args.make_script:
        return _make_script(args)
    if not args.file:
        print("fluorosim replay: give an attempt file (or --make-script SCENARIO)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if getattr(args, "record", False) and not args.trainee:
        print("fluorosim replay: --record needs --trainee ID", file=sys.stderr)
        return EXIT_BAD_INPUT
    import numpy as np

    from fluorosim.scenarios import patients, recording
    from fluorosim.scenarios.commands import CommandError
    from fluorosim.scenarios.loader import ScenarioError, load_shipped
    from fluorosim.scenarios.scripted import ScriptFormatError, load_script, run_actions
    from fluorosim.scenarios.session import Session

    path = Path(args.file)
    if not path.is_file():
        print(f"fluorosim replay: {path}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT

    def renderer_for(patient, model):
        return None if args.no_images else recording.default_renderer(patient, model)

    from fluorosim.scenarios.session import MissingStructuresError

    check = None
    started_utc, mode = None, "learning"
    try:
        chosen = None
        if args.patient:
            from fluorosim.scenarios.spec import PatientSpec

            chosen = patients.patient_for(PatientSpec(), {"ct": args.patient})
        if _is_recording(path):
            report, check = recording.replay_attempt_checked(
                path, patient=chosen, renderer_factory=renderer_for
            )
            header = recording.read_attempt(path).header
            started_utc, mode = header.get("started"), str(header.get("mode", "learning"))
        else:
            script = load_script(path)
            mode = script.mode
            scenario = load_shipped(script.scenario)
            patient = chosen or patients.patient_for(scenario.patient, script.patient)
            session = Session(
                scenario,
                patient,
                renderer_for(patient, "ii9"),
                None,
                lambda: 0.0,
                np.random.default_rng(0),
                mode=script.mode,
            )
            report = run_actions(session, script.actions)
    except (
        ScriptFormatError,
        ScenarioError,
        CommandError,
        recording.AttemptFileError,
        patients.PatientSpecError,
        MissingStructuresError,
    ) as exc:
        print(f"fluorosim replay: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if check is not None and not check.same and args.json:
        print(f"fluorosim replay: {check.message}", file=sys.stderr)
    if args.json:
        data = report.as_json()
        if check is not None and not check.same:  # only when there is something to say
            data["patient_check"] = check.as_json()
        print(json.dumps(data, sort_keys=True, indent=2))
    else:
        if check is not None and not check.same:
            print(check.message.replace("warning:", "WARNING:", 1) + "\n")
        print(format_report(report))
    if getattr(args, "record", False) and not _record(args, path, report, started_utc, mode):
        return EXIT_BAD_INPUT
    return EXIT_PASSED if report.passed else EXIT_FAILED


def _record(
    args: argparse.Namespace, path: Path, report, started_utc: str | None, mode: str
) -> bool:
    """Enter the scored attempt in the records; False (with a message) when the records refuse."""
    from fluorosim.scenarios.records.database import RecordsError, RecordStore, utc_now

    data = report.as_json()
    try:
        with RecordStore.open(args.db) as store:
            store.add_trainee(args.trainee, args.trainee)
            attempt_id = store.record_attempt(
                args.trainee,
                data["scenario"],
                data,
                str(started_utc or utc_now()),
                utc_now(),
                path.resolve(),
                mode=mode,
            )
            head = store.ledger_head()
            count = len(store.ledger_entries())
    except RecordsError as error:
        print(f"fluorosim replay: not recorded: {error}", file=sys.stderr)
        return False
    print(
        f"recorded as attempt {attempt_id} of {args.trainee}; ledger head {head} ({count} records)",
        file=sys.stderr if args.json else sys.stdout,
    )
    return True
