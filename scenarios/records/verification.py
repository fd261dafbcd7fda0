"""Checking a records store: the hash chain, every record against it, every signature, the anchors.

In order, stopping at the first problem so the message names the first bad record:

1. the ledger's chain links and every entry matches its hash (:func:`ledger.first_chain_problem`);
2. every anchor (a head recorded earlier, :mod:`scenarios.records.anchor`) is still in the chain at
   its position: this is what catches records removed from the end and a chain recomputed after an
   edit;
3. walking the ledger in order: each attempt row still hashes to what its entry recorded; each
   instructor account entry carries the new key's own signature and (except the very first
   instructor, at set-up) the signature of the instructor who added it; each sign-off row equals its
   entry and its Ed25519 signature verifies against the key the ledger recorded for that instructor,
   over the decision *and* the attempt's content as stored now; each programme setting is signed;
4. nothing exists outside the ledger (attempts, sign-offs, accounts whose key differs from it);
5. attempt files still hash to what was recorded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluorosim.scenarios.records import anchor as anchors_module
from fluorosim.scenarios.records import identity, ledger
from fluorosim.scenarios.records.database import (
    ATTEMPT_HASHED_FIELDS,
    RecordStore,
    file_sha256,
    instructor_added_message,
    instructor_key_message,
    setting_message,
    signoff_message,
)


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of checking a store: what report code shows (banner, head line) and CLIs exit on."""

    ok: bool
    problem: str | None
    records_checked: int
    head_hash: str
    signatures_checked: int = 0
    anchors_checked: int = 0
    store_id: str = ""

    def head_line(self) -> str:
        """'ledger head <hash> (<n> records)': the line to copy into an anchor or compare."""
        return f"ledger head {self.head_hash} ({self.records_checked} records)"

    def summary(self) -> str:
        """One line: OK with counts, or FAILED with the first problem."""
        if self.ok:
            anchors = f", {self.anchors_checked} anchors matched" if self.anchors_checked else ""
            return (
                f"ledger OK: {self.records_checked} records verified, "
                f"{self.signatures_checked} signatures valid{anchors}; head {self.head_hash}"
            )
        return f"ledger FAILED: {self.problem}"

    def as_json(self) -> dict[str, Any]:
        """The fields as a dict (the report's ``ledger`` section)."""
        return {
            "ok": self.ok,
            "problem": self.problem,
            "records_checked": self.records_checked,
            "head_hash": self.head_hash,
            "signatures_checked": self.signatures_checked,
            "anchors_checked": self.anchors_checked,
            "store_id": self.store_id,
        }


class _RecordProblemError(Exception):
    """The first problem found; its text names the record."""


def verify_store(
    store: RecordStore, check_files: bool = True, anchors: Sequence[anchors_module.Anchor] = ()
) -> VerificationResult:
    """Run every check of the module docstring on ``store``."""
    entries = store.ledger_entries()
    head = entries[-1].hash if entries else ledger.GENESIS_HASH
    store_id = store.store_id() if store.schema_version() >= 3 else ""
    checker = _Checker(store, entries)
    try:
        problem = ledger.first_chain_problem(entries)
        if problem:
            raise _RecordProblemError(problem)
        for anchor in anchors:
            problem = anchors_module.check(entries, anchor)
            if problem:
                raise _RecordProblemError(problem)
        checker.walk()
        checker.nothing_outside_the_ledger()
        if check_files:
            checker.attempt_files()
    except _RecordProblemError as failure:
        return VerificationResult(
            False, str(failure), len(entries), head, checker.signatures, len(anchors), store_id
        )
    return VerificationResult(
        True, None, len(entries), head, checker.signatures, len(anchors), store_id
    )


class _Checker:
    """The record-by-record checks, walking the ledger once."""

    def __init__(self, store: RecordStore, entries: list[ledger.LedgerEntry]) -> None:
        self.store = store
        self.entries = entries
        self.keys: dict[str, str] = {}  # instructor id -> public key, as the ledger recorded it
        self.key_records: dict[str, ledger.LedgerEntry] = {}
        self.signed_era = False  # after the schema-3 marker every sign-off and setting is signed
        self.ledgered_attempts: set[int] = set()
        self.signoff_counts: dict[int, int] = {}
        self.signatures = 0

    def walk(self) -> None:
        for entry in self.entries:
            payload = json.loads(entry.payload)
            check = {
                "schema": self.schema_marker,
                "attempt": self.attempt,
                "instructor": self.instructor,
                "signoff": self.signoff,
                "setting": self.setting,
            }.get(entry.kind)
            if check is not None:
                check(entry, payload)

    # -- one ledger entry of each kind ------------------------------------------------------------
    def schema_marker(self, entry: ledger.LedgerEntry, payload: dict[str, Any]) -> None:
        if int(payload.get("version", 0)) >= 3:
            self.signed_era = True

    def attempt(self, entry: ledger.LedgerEntry, payload: dict[str, Any]) -> None:
        attempt_id = int(payload["attempt_id"])
        self.ledgered_attempts.add(attempt_id)
        current = self.store._attempt_content_hash(
            attempt_id, payload.get("fields", ATTEMPT_HASHED_FIELDS)
        )
        if current is None:
            raise _RecordProblemError(
                f"attempt {attempt_id} ({entry.describe()}) was removed from the records"
            )
        if current != payload["content_sha256"]:
            raise _RecordProblemError(
                f"attempt {attempt_id} was altered after it was recorded ({entry.describe()})"
            )

    def instructor(self, entry: ledger.LedgerEntry, payload: dict[str, Any]) -> None:
        instructor_id = str(payload["instructor_id"])
        public_key = str(payload["public_key"])
        if instructor_id in self.keys:
            raise _RecordProblemError(
                f"{entry.describe()} gives instructor '{instructor_id}' a second key "
                f"(the first is in record #{self.key_records[instructor_id].seq})"
            )
        key_message = instructor_key_message(instructor_id, str(payload["name"]), public_key)
        if not identity.signature_valid(public_key, key_message, payload.get("key_signature")):
            raise _RecordProblemError(
                f"{entry.describe()}: the key of instructor '{instructor_id}' does not sign its own "
                "account (altered or forged)"
            )
        creator = payload.get("created_by")
        if creator is None:
            if self.keys:
                raise _RecordProblemError(
                    f"{entry.describe()} adds instructor '{instructor_id}' without the signature of an "
                    "existing instructor (only the first instructor is set up that way)"
                )
        else:
            added = instructor_added_message(
                instructor_id,
                str(payload["name"]),
                public_key,
                str(payload["created_utc"]),
                str(creator),
            )
            if entry.actor != f"instructor:{creator}" or not identity.signature_valid(
                self.keys.get(str(creator)), added, payload.get("creator_signature")
            ):
                raise _RecordProblemError(
                    f"{entry.describe()} adds instructor '{instructor_id}' but is not signed by "
                    f"'{creator}''s key as the ledger recorded it (forged or altered)"
                )
            self.signatures += 1
        self.signatures += 1
        self.keys[instructor_id] = public_key
        self.key_records[instructor_id] = entry

    def signoff(self, entry: ledger.LedgerEntry, payload: dict[str, Any]) -> None:
        attempt_id = int(payload["attempt_id"])
        self.signoff_counts[attempt_id] = self.signoff_counts.get(attempt_id, 0) + 1
        instructor_id = entry.actor.split(":", 1)[1]
        if "signature" not in payload:
            if self.signed_era:
                raise _RecordProblemError(f"{entry.describe()} is a sign-off without a signature")
            self._legacy_signoff(entry, payload, attempt_id, instructor_id)
            return
        rows = self.store.query(
            "SELECT s.attempt_id, s.instructor_id, s.decision, s.comment, s.t_utc, s.supersedes_uid, "
            "s.confirmed_failed, s.signature, a.uid, a.trainee_id FROM signoffs s "
            "JOIN attempts a ON a.id = s.attempt_id WHERE s.uid = ?",
            (payload["uid"],),
        )
        if not rows:
            raise _RecordProblemError(f"the sign-off in {entry.describe()} was removed")
        row = rows[0]
        stored = {
            "attempt_id": int(row[0]),
            "instructor_id": row[1],
            "decision": row[2],
            "comment": row[3],
            "t_utc": row[4],
            "supersedes_uid": row[5],
            "confirmed_failed": bool(row[6]),
            "signature": row[7],
        }
        recorded = {
            "attempt_id": attempt_id,
            "instructor_id": instructor_id,
            "decision": payload["decision"],
            "comment": payload["comment"],
            "t_utc": payload["t_utc"],
            "supersedes_uid": payload["supersedes_uid"],
            "confirmed_failed": bool(payload["confirmed_failed"]),
            "signature": payload["signature"],
        }
        if stored != recorded:
            changed = ", ".join(k for k in stored if stored[k] != recorded[k])
            raise _RecordProblemError(f"the sign-off in {entry.describe()} was altered ({changed})")
        self._signature(entry, stored, attempt_uid=row[8], trainee_id=row[9], uid=payload["uid"])

    def _signature(
        self,
        entry: ledger.LedgerEntry,
        stored: dict[str, Any],
        attempt_uid: str,
        trainee_id: str,
        uid: str,
    ) -> None:
        instructor_id = stored["instructor_id"]
        public_key = self.keys.get(instructor_id)
        if public_key is None:
            raise _RecordProblemError(
                f"{entry.describe()} is signed by '{instructor_id}', who has no key in the ledger "
                "before it"
            )
        message = signoff_message(
            uid,
            attempt_uid,
            str(self.store.attempt_portable_sha256(stored["attempt_id"])),
            trainee_id,
            instructor_id,
            stored["decision"],
            stored["comment"],
            stored["t_utc"],
            stored["supersedes_uid"],
            stored["confirmed_failed"],
        )
        if not identity.signature_valid(public_key, message, stored["signature"]):
            raise _RecordProblemError(
                f"the signature of the sign-off in {entry.describe()} does not verify with "
                f"{instructor_id}'s key (fingerprint {identity.fingerprint(public_key)}): the "
                f"sign-off or attempt {stored['attempt_id']} was altered after signing, or it was "
                "signed with another key"
            )
        self.signatures += 1

    def _legacy_signoff(
        self,
        entry: ledger.LedgerEntry,
        payload: dict[str, Any],
        attempt_id: int,
        instructor_id: str,
    ) -> None:
        match = self.store.query(
            "SELECT 1 FROM signoffs WHERE attempt_id = ? AND instructor_id = ? AND decision = ? "
            "AND comment = ? AND t_utc = ?",
            (attempt_id, instructor_id, payload["decision"], payload["comment"], payload["t_utc"]),
        )
        if not match:
            raise _RecordProblemError(f"the sign-off in {entry.describe()} was altered or removed")

    def setting(self, entry: ledger.LedgerEntry, payload: dict[str, Any]) -> None:
        if not self.signed_era:
            return
        instructor_id = entry.actor.split(":", 1)[1]
        programme, _, key = entry.ref.partition(".")
        message = setting_message(
            programme, key, payload.get("value"), str(payload.get("t_utc")), instructor_id
        )
        if not identity.signature_valid(
            self.keys.get(instructor_id), message, payload.get("signature")
        ):
            raise _RecordProblemError(f"{entry.describe()} is not signed by {instructor_id}'s key")
        self.signatures += 1

    # -- the tables against the ledger ------------------------------------------------------------
    def nothing_outside_the_ledger(self) -> None:
        for (attempt_id,) in self.store.query("SELECT id FROM attempts ORDER BY id"):
            if int(attempt_id) not in self.ledgered_attempts:
                raise _RecordProblemError(
                    f"attempt {attempt_id} is not in the ledger (added outside fluorosim)"
                )
        for attempt_id, count in self.store.query(
            "SELECT attempt_id, COUNT(*) FROM signoffs GROUP BY attempt_id ORDER BY attempt_id"
        ):
            if int(count) != self.signoff_counts.get(int(attempt_id), 0):
                raise _RecordProblemError(
                    f"sign-offs of attempt {attempt_id} do not match the ledger"
                )
        if self.store.schema_version() < 3:
            return
        for instructor_id, public_key in self.store.query(
            "SELECT id, public_key FROM instructors WHERE public_key IS NOT NULL ORDER BY id"
        ):
            if self.keys.get(instructor_id) != public_key:
                raise _RecordProblemError(
                    f"the account of instructor '{instructor_id}' holds a key the ledger never "
                    "recorded for them (account added or its key replaced outside fluorosim)"
                )

    def attempt_files(self) -> None:
        for attempt_id, path, sha in self.store.query(
            "SELECT id, attempt_file, attempt_sha256 FROM attempts WHERE attempt_sha256 IS NOT NULL "
            "ORDER BY id"
        ):
            if path and Path(path).is_file() and file_sha256(path) != sha:
                raise _RecordProblemError(
                    f"the attempt file of attempt {attempt_id} ({path}) was altered"
                )
