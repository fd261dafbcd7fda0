"""``fluorosim report``: instructor reports, the records ledger check, and adding attempts.

    fluorosim report --trainee ID [--scenario ID] --format pdf|csv|json --out FILE
    fluorosim report verify
    fluorosim report trainees

The records database is ``--db URL`` or FLUOROSIM_DB_URL, else the per-user SQLite file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "instructor reports, learning curves and ledger verification"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim report``."""
    parser.add_argument(
        "action",
        nargs="?",
        choices=["trainee", "verify", "trainees"],
        default="trainee",
        help="trainee (default): write a trainee's report; verify: check the ledger; trainees: list them",
    )
    parser.add_argument("--db", help="records database URL (sqlite:///path or postgresql://…)")
    parser.add_argument("--trainee", help="trainee ID")
    parser.add_argument("--scenario", help="only this scenario")
    parser.add_argument("--format", choices=["pdf", "csv", "json"], default="pdf")
    parser.add_argument("--out", type=Path, help="output file")


def run(args: argparse.Namespace) -> int:
    """Write a report, verify the ledger, or list trainees; clear messages for user errors."""
    from scenarios.records.database import RecordsError, RecordStore
    from scenarios.records.report import write_report

    try:
        store = RecordStore.open(args.db)
    except RecordsError as error:
        print(f"fluorosim report: {error}", file=sys.stderr)
        return 2
    with store:
        if args.action == "verify":
            result = store.verify()
            if result.ok:
                print(
                    f"ledger OK: {result.records_checked} records verified; head {result.head_hash}"
                )
                return 0
            print(f"ledger FAILED: {result.problem}", file=sys.stderr)
            return 1
        if args.action == "trainees":
            for trainee in store.trainees():
                attempts = store.attempts(trainee["id"])
                print(
                    f"{trainee['id']}\t{trainee['name']}\t{trainee['cohort_id'] or '-'}\t{len(attempts)} attempts"
                )
            return 0
        if not args.trainee or not args.out:
            print("fluorosim report: --trainee ID and --out FILE are required", file=sys.stderr)
            return 2
        try:
            report = write_report(store, args.trainee, args.format, args.out, args.scenario)
        except KeyError as error:
            print(f"fluorosim report: {error.args[0]}", file=sys.stderr)
            return 2
        except OSError as error:
            print(f"fluorosim report: cannot write {args.out}: {error.strerror}", file=sys.stderr)
            return 2
        ledger_state = (
            "verified" if report["ledger"]["ok"] else f"FAILED ({report['ledger']['problem']})"
        )
        print(
            f"wrote {args.out} ({args.format}): {report['summary']['attempts']} attempts; ledger {ledger_state}"
        )
        return 0
