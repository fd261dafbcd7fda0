"""``fluorosim report``: instructor reports, instructor accounts, the ledger check, export and import.

    fluorosim report --trainee ID [--scenario ID] --format pdf|csv|json --out FILE
    fluorosim report verify [--expect-head HASH] [--anchor-file PATH] [--anchor-db URL]
    fluorosim report trainees | instructors
    fluorosim report instructor add ID --name "Full Name" [--by ID]
    fluorosim report export --trainee ID --out BUNDLE
    fluorosim report import BUNDLE [--expect-head HASH] [--by ID] [--files DIR]

The records database is ``--db URL`` or FLUOROSIM_DB_URL, else the per-user SQLite file. Every
report, export and verify prints the ledger head and record count; ``--anchor-file`` (and
``--anchor-db``) check the store against every head anchored there before and append the current
one. Passphrases are asked for without echo, or read from ``--passphrase-file`` /
``--by-passphrase-file`` (first line) or FLUOROSIM_PASSPHRASE / FLUOROSIM_BY_PASSPHRASE for
automation. Exit codes: 0 OK, 1 verification failed or a bundle refused, 2 a usage or input error.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluorosim.scenarios.records.database import RecordStore

HELP = "instructor reports, instructor accounts, ledger verification, export and import"

EXIT_OK = 0
EXIT_VERIFICATION_FAILED = 1
EXIT_USAGE = 2

ACTIONS = ("trainee", "verify", "trainees", "instructors", "instructor", "export", "import")


class UsageError(Exception):
    """A usage problem: the message is printed as is, exit code 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim report``."""
    parser.add_argument(
        "action",
        nargs="?",
        choices=ACTIONS,
        default="trainee",
        help="trainee (default): write a trainee's report; verify: check the ledger; trainees / "
        "instructors: list them; instructor add ID: create an instructor account; export: write a "
        "trainee's bundle; import BUNDLE: add a bundle's attempts",
    )
    parser.add_argument("targets", nargs="*", help="instructor: add ID; import: the bundle file")
    parser.add_argument("--db", help="records database URL (sqlite:///path or postgresql://…)")
    parser.add_argument("--trainee", help="trainee ID")
    parser.add_argument("--scenario", help="only this scenario")
    parser.add_argument("--format", choices=["pdf", "csv", "json"], default="pdf")
    parser.add_argument("--out", type=Path, help="output file (report or bundle)")
    parser.add_argument("--name", help="instructor add: the instructor's full name")
    parser.add_argument(
        "--by", help="the signed-in instructor who adds an account or vouches for imported keys"
    )
    parser.add_argument(
        "--passphrase-file", type=Path, help="new instructor's passphrase (first line of the file)"
    )
    parser.add_argument(
        "--by-passphrase-file", type=Path, help="passphrase of the --by instructor (first line)"
    )
    parser.add_argument(
        "--expect-head",
        metavar="HASH",
        help="a ledger (or, for import, bundle) head recorded earlier; HASH or HASH:COUNT",
    )
    parser.add_argument(
        "--anchor-file",
        type=Path,
        help="check against the heads anchored in this file, then append the current head",
    )
    parser.add_argument(
        "--anchor-db", help="the same with a table on another PostgreSQL server (URL)"
    )
    parser.add_argument(
        "--files", type=Path, help="import: directory for the imported attempt files"
    )


def _passphrase(file: Path | None, env: str, prompt: str, confirm: bool = False) -> str:
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read the passphrase file {file}: {error}") from error
        if not lines or not lines[0]:
            raise UsageError(f"the passphrase file {file} is empty")
        return lines[0]
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        raise UsageError(
            f"no passphrase: give it in a file ({'--by-passphrase-file' if 'BY' in env else '--passphrase-file'}) "
            f"or {env}, or run in a terminal"
        )
    passphrase = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again, to confirm: ") != passphrase:
        raise UsageError("the two passphrases differ; nothing was changed")
    return passphrase


def _signed_in_by(store: RecordStore, args: argparse.Namespace) -> Any:
    if not args.by:
        return None
    passphrase = _passphrase(
        args.by_passphrase_file, "FLUOROSIM_BY_PASSPHRASE", f"Passphrase of instructor {args.by}: "
    )
    return store.sign_in(args.by, passphrase)


def _anchors(store: RecordStore, args: argparse.Namespace) -> list[Any]:
    from fluorosim.scenarios.records import anchor

    anchors = []
    if args.expect_head and args.action != "import":
        anchors.append(anchor.parse_head(args.expect_head))
    if args.anchor_file:
        anchors.extend(anchor.read_anchor_file(args.anchor_file, store.store_id()))
    if args.anchor_db:
        anchors.extend(anchor.read_anchor_db(args.anchor_db, store.store_id()))
    return anchors


def _conclude(
    store: RecordStore, args: argparse.Namespace, verification: Any, summary_when_ok: bool = False
) -> int:
    """Print the head; on a failed check the problem and exit 1, else anchor the head and exit 0."""
    print(verification.head_line())
    if not verification.ok:
        print(verification.summary(), file=sys.stderr)
        return EXIT_VERIFICATION_FAILED
    if summary_when_ok:
        print(verification.summary())
    _record_anchor(store, args)
    return EXIT_OK


def _record_anchor(store: RecordStore, args: argparse.Namespace) -> None:
    """Append the store's current head to the anchor file / database (after a successful check)."""
    from fluorosim.scenarios.records import anchor

    entries = store.ledger_entries()
    head = entries[-1].hash if entries else anchor.GENESIS_HASH
    if args.anchor_file:
        anchor.append_anchor_file(args.anchor_file, head, len(entries), store.store_id())
        print(f"anchored head {head} ({len(entries)} records) in {args.anchor_file}")
    if args.anchor_db:
        anchor.append_anchor_db(args.anchor_db, head, len(entries), store.store_id())
        print(f"anchored head {head} ({len(entries)} records) in the anchor database")


def run(args: argparse.Namespace) -> int:
    """Dispatch the action; user errors become one message on stderr, never a traceback."""
    from fluorosim.scenarios.records.anchor import AnchorError
    from fluorosim.scenarios.records.bundle import BundleError
    from fluorosim.scenarios.records.database import RecordsError, RecordStore

    try:
        store = RecordStore.open(args.db)
    except RecordsError as error:
        print(f"fluorosim report: {error}", file=sys.stderr)
        return EXIT_USAGE
    with store:
        try:
            return ACTION_RUNNERS[args.action](store, args)
        except BundleError as error:
            print(f"fluorosim report: bundle refused: {error}", file=sys.stderr)
            return EXIT_VERIFICATION_FAILED
        except (RecordsError, AnchorError, UsageError) as error:
            print(f"fluorosim report: {error}", file=sys.stderr)
            return EXIT_USAGE


def _verify(store: RecordStore, args: argparse.Namespace) -> int:
    return _conclude(store, args, store.verify(anchors=_anchors(store, args)), summary_when_ok=True)


def _trainees(store: RecordStore, args: argparse.Namespace) -> int:
    for trainee in store.trainees():
        attempts = store.attempts(trainee["id"])
        print(
            f"{trainee['id']}\t{trainee['name']}\t{trainee['cohort_id'] or '-'}\t{len(attempts)} attempts"
        )
    return EXIT_OK


def _instructors(store: RecordStore, args: argparse.Namespace) -> int:
    for account in store.instructors():
        key = account["fingerprint"] or "no passphrase yet"
        where = "" if account["can_sign_here"] or not account["fingerprint"] else " (key only)"
        print(
            f"{account['id']}\t{account['name']}\tkey {key}{where}\tadded by {account['created_by'] or 'first set-up'}"
        )
    return EXIT_OK


def _instructor(store: RecordStore, args: argparse.Namespace) -> int:
    if len(args.targets) != 2 or args.targets[0] != "add":
        raise UsageError('usage: fluorosim report instructor add ID --name "Full Name" [--by ID]')
    instructor_id = args.targets[1]
    if not args.name:
        raise UsageError('instructor add needs --name "the instructor\'s full name"')
    creator = _signed_in_by(store, args)
    passphrase = _passphrase(
        args.passphrase_file,
        "FLUOROSIM_PASSPHRASE",
        f"New passphrase for instructor {instructor_id}: ",
        confirm=True,
    )
    account = store.create_instructor(instructor_id, args.name, passphrase, creator)
    from fluorosim.scenarios.records.identity import fingerprint

    print(
        f"instructor {account.id} ({account.name}) added by "
        f"{creator.id if creator else 'first set-up'}; key {fingerprint(account.public_key)}"
    )
    print(store.verify(check_files=False).head_line())
    return EXIT_OK


def _trainee_report(store: RecordStore, args: argparse.Namespace) -> int:
    from fluorosim.scenarios.records.report import write_report

    if not args.trainee or not args.out:
        raise UsageError("--trainee ID and --out FILE are required")
    verification = store.verify(anchors=_anchors(store, args))
    try:
        report = write_report(
            store, args.trainee, args.format, args.out, args.scenario, verification
        )
    except KeyError as error:
        raise UsageError(str(error.args[0])) from error
    except OSError as error:
        raise UsageError(f"cannot write {args.out}: {error.strerror}") from error
    print(
        f"wrote {args.out} ({args.format}): {report['summary']['attempts']} attempts; "
        + ("ledger verified" if verification.ok else f"ledger FAILED ({verification.problem})")
    )
    return _conclude(store, args, verification)


def _export(store: RecordStore, args: argparse.Namespace) -> int:
    from fluorosim.scenarios.records.bundle import export_bundle

    if not args.trainee or not args.out:
        raise UsageError("export needs --trainee ID and --out BUNDLE")
    verification = store.verify(anchors=_anchors(store, args))
    if not verification.ok:
        print(verification.head_line())
        print(f"{verification.summary()}; nothing exported", file=sys.stderr)
        return EXIT_VERIFICATION_FAILED
    summary = export_bundle(store, args.trainee, args.out)
    for note in summary.notes:
        print(f"note: {note}")
    print(
        f"wrote {args.out}: {summary.attempts} attempts and {summary.signoffs} sign-offs of "
        f"{summary.trainee_id}; bundle head {summary.head} ({summary.records} records)"
    )
    print(verification.head_line())
    _record_anchor(store, args)
    return EXIT_OK


def _import(store: RecordStore, args: argparse.Namespace) -> int:
    from fluorosim.scenarios.records.bundle import import_bundle

    if len(args.targets) != 1:
        raise UsageError("usage: fluorosim report import BUNDLE [--expect-head HASH] [--by ID]")
    expect = None
    if args.expect_head:
        from fluorosim.scenarios.records.anchor import parse_head

        expect = parse_head(args.expect_head).head
    before = store.verify(anchors=_anchors(store, args))
    if not before.ok:
        print(before.head_line())
        print(f"{before.summary()}; nothing imported", file=sys.stderr)
        return EXIT_VERIFICATION_FAILED
    summary = import_bundle(
        store, Path(args.targets[0]), args.files, expect, _signed_in_by(store, args)
    )
    if summary.added_attempts or summary.added_signoffs:
        print(
            f"imported {summary.added_attempts} of {summary.attempts} attempts and "
            f"{summary.added_signoffs} of {summary.signoffs} sign-offs of {summary.trainee_id}"
            + (
                f"; keys of {', '.join(summary.added_instructors)} vouched for by {args.by}"
                if summary.added_instructors
                else ""
            )
        )
    else:
        print(
            f"nothing new: the {summary.attempts} attempts and {summary.signoffs} sign-offs of "
            f"{summary.trainee_id} are already in these records"
        )
    print(f"bundle head {summary.head} ({summary.records} records)")
    return _conclude(store, args, store.verify())


ACTION_RUNNERS = {
    "trainee": _trainee_report,
    "verify": _verify,
    "trainees": _trainees,
    "instructors": _instructors,
    "instructor": _instructor,
    "export": _export,
    "import": _import,
}
