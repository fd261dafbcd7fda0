"""``fluorosim run``: start the simulator window on the built-in patient, or the instructor review."""

from __future__ import annotations

import argparse
import sys

HELP = "start the simulator window on the built-in patient"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim run``."""
    parser.add_argument(
        "--mouse", action="store_true", help="use the mouse and keyboard instrument (default)"
    )
    parser.add_argument(
        "--device",
        default=None,
        help="instrument URL: a serial port, ndi:PORT, igtl://host:port, a recording",
    )
    parser.add_argument(
        "--scenario", help="start this scenario directly (skips sign-in with --trainee)"
    )
    parser.add_argument("--trainee", help="trainee name or ID (skips sign-in with --scenario)")
    parser.add_argument(
        "--exam", action="store_true", help="exam mode: no named views, hints or 3D view"
    )
    parser.add_argument("--seed", type=int, default=0, help="patient seed")
    parser.add_argument(
        "--patient",
        metavar="NAME|PATH",
        help="train on this patient instead of the generated one: a stored name "
        "(fluorosim phantom import) or a CT / exported patient folder",
    )
    parser.add_argument(
        "--review",
        action="store_true",
        help="instructor review mode: attempts, replay, learning curves, CUSUM, sign-off",
    )
    parser.add_argument(
        "--instructor",
        help="instructor ID for --review (the passphrase is asked; accounts: fluorosim report instructor add)",
    )
    parser.add_argument(
        "--quit-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="smoke run: start the attempt (needs --scenario and --trainee), take one shot, print "
        "what the monitor shows, and quit SECONDS later",
    )
    parser.add_argument(
        "--db",
        default=None,
        help="records database URL for --review (sqlite:///path or postgresql://…; "
        "default FLUOROSIM_DB_URL or the per-user SQLite file)",
    )


def run(args: argparse.Namespace) -> int:
    """Check the system can show a window, then start the GUI (or the review mode)."""
    from fluorosim.app import syscheck

    if args.review and not (args.instructor or "").strip():
        print("fluorosim: --review needs --instructor ID", file=sys.stderr)
        return 2

    problems = syscheck.problems(gui=True)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    if args.review:
        from fluorosim.app.gui import run_review

        return run_review(args.instructor.strip(), args.db)
    from fluorosim.app.gui import run_gui

    if args.quit_after is not None and not (args.scenario and args.trainee):
        print("fluorosim: --quit-after needs --scenario and --trainee", file=sys.stderr)
        return 2
    if args.scenario and _unknown_scenario(args.scenario):
        return 2
    if args.patient and _patient_problem(args.patient, args.scenario):
        return 2
    device = "mouse" if args.mouse or not args.device else args.device
    return run_gui(
        device,
        args.scenario,
        args.trainee,
        "exam" if args.exam else "learning",
        args.seed,
        quit_after_s=args.quit_after,
        patient_ref=args.patient,
    )


def _unknown_scenario(scenario_id: str) -> bool:
    """Print the shipped scenario ids when ``--scenario`` names none of them (before a window)."""
    from fluorosim.scenarios.loader import shipped_scenarios

    known = sorted(shipped_scenarios())
    if scenario_id in known:
        return False
    print(
        f"fluorosim: --scenario {scenario_id!r} is not a shipped scenario "
        f"(known: {', '.join(known)})",
        file=sys.stderr,
    )
    return True


def _patient_problem(reference: str, scenario_id: str | None) -> bool:
    """Print why ``--patient`` cannot be used (unknown, unreadable, lacks what the scenario needs)."""
    from fluorosim.models.io import PatientFileError
    from fluorosim.models.io.store import PatientStoreError, load_patient

    try:
        patient = load_patient(reference)
    except (PatientFileError, PatientStoreError) as error:
        print(f"fluorosim run: {error}", file=sys.stderr)
        return True
    if scenario_id:
        from fluorosim.scenarios.loader import ScenarioError, load_shipped
        from fluorosim.scenarios.patients import describe_missing

        try:
            message = describe_missing(load_shipped(scenario_id), patient)
        except ScenarioError as error:
            message = str(error)
        if message:
            print(f"fluorosim run: {message}", file=sys.stderr)
            return True
    return False
