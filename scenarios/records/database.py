"""The records database: trainees, instructors, cohorts, attempts, metrics, findings, sign-offs.

One embedded SQLite file per station by default (in the user's data directory), or one PostgreSQL
database shared by several lab stations, chosen by a URL (``sqlite:///path``, a plain path, or
``postgresql://user:pass@host/db``). The same code runs on both.

Who may do what: anyone records a finished attempt (the simulator does, on the trainee's behalf);
only an instructor who has signed in with their passphrase (:meth:`RecordStore.sign_in`) signs off,
comments or changes programme settings, and each such action is signed with the instructor's own
Ed25519 key (:mod:`scenarios.records.identity`) and appended to the hash-chained ledger
(:mod:`scenarios.records.ledger`). Instructor accounts are created at first set-up or by an existing
instructor; a trainee ID can never be an instructor and vice versa. There is no API to change a
score; any edit made behind the application's back is found by :meth:`RecordStore.verify`
(:mod:`scenarios.records.verification`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fluorosim.scenarios.records import identity, ledger, schema

#: Fields of an attempt row whose content the ledger vouches for (each ledger entry also lists the
#: fields it hashed, so entries written before ``mode`` and ``uid`` existed still verify).
ATTEMPT_HASHED_FIELDS = (
    "id",
    "trainee_id",
    "scenario_id",
    "started_utc",
    "finished_utc",
    "status",
    "score",
    "passed",
    "report_json",
    "attempt_sha256",
    "mode",
    "uid",
)

#: Fields of an attempt that are the same in every store it travels to (no local ID or file path):
#: what a sign-off's signature covers, and what an export bundle carries.
PORTABLE_ATTEMPT_FIELDS = (
    "uid",
    "trainee_id",
    "scenario_id",
    "started_utc",
    "finished_utc",
    "status",
    "score",
    "passed",
    "mode",
    "report_json",
    "attempt_sha256",
)

SIGNOFF_DECISIONS = ("approved", "needs_practice", "comment")

#: IDs of trainees and instructors: up to 64 printable characters, no leading or trailing space.
PERSON_ID_PATTERN = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,62}[^\s\x00-\x1f\x7f])?")


class RecordsError(Exception):
    """A records problem a user can cause (bad URL, unknown trainee, no permission)."""


@dataclass(frozen=True)
class Actor:
    """Who performs an action: a trainee, an instructor, or the simulator itself (``system``)."""

    id: str
    role: str  # "trainee" | "instructor" | "system"


@dataclass(frozen=True)
class SignedInInstructor(Actor):
    """An instructor who gave their passphrase: holds their unsealed signing key in memory only."""

    name: str = ""
    public_key: str = ""
    private_key: Any = field(default=None, repr=False, compare=False)

    def sign(self, message: Any) -> str:
        """This instructor's Ed25519 signature over ``message`` (canonical JSON)."""
        return identity.sign(self.private_key, message)


@dataclass
class AttemptRow:
    """One attempt as stored, with its metrics and findings."""

    id: int
    trainee_id: str
    scenario_id: str
    started_utc: str
    finished_utc: str | None
    status: str
    score: float | None
    passed: bool | None
    mode: str
    report: dict[str, Any]
    attempt_file: str | None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    signoffs: list[dict[str, Any]] = field(default_factory=list)
    uid: str | None = None

    def current_decision(self) -> dict[str, Any] | None:
        """The newest approve/needs-practice sign-off that no later one supersedes."""
        live = [
            s for s in self.signoffs if s["decision"] != "comment" and not s.get("superseded_by")
        ]
        return live[-1] if live else None


def _portable_number(value: Any) -> Any:
    """Numbers as both SQLite (double) and PostgreSQL REAL (single precision) give them back."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(f"{float(value):.6g}")
    return value


def portable_attempt_sha256(
    content: dict[str, Any], metric_rows: Sequence[Sequence[Any]], finding_rows: Sequence[Any]
) -> str:
    """SHA-256 of an attempt's portable content (what sign-off signatures and bundles cover)."""
    body = {name: _portable_number(content.get(name)) for name in PORTABLE_ATTEMPT_FIELDS}
    body["passed"] = None if content.get("passed") is None else bool(content.get("passed"))
    body["metrics"] = [
        [r[0], _portable_number(r[1]), r[2], r[3], None if r[4] is None else bool(r[4])]
        for r in metric_rows
    ]
    body["findings"] = [[int(r[0]), str(r[1])] for r in finding_rows]
    return ledger.content_sha256(body)


def signoff_message(
    signoff_uid: str,
    attempt_uid: str,
    attempt_sha256: str,
    trainee_id: str,
    instructor_id: str,
    decision: str,
    comment: str,
    t_utc: str,
    supersedes_uid: str | None,
    confirmed_failed: bool,
) -> dict[str, Any]:
    """What an instructor's signature on a sign-off covers: the decision and the attempt's content."""
    return {
        "kind": "fluorosim-signoff/1",
        "signoff_uid": signoff_uid,
        "attempt_uid": attempt_uid,
        "attempt_sha256": attempt_sha256,
        "trainee_id": trainee_id,
        "instructor_id": instructor_id,
        "decision": decision,
        "comment": comment,
        "t_utc": t_utc,
        "supersedes_uid": supersedes_uid,
        "confirmed_failed": bool(confirmed_failed),
    }


def instructor_key_message(instructor_id: str, name: str, public_key: str) -> dict[str, Any]:
    """What a new instructor's own key signs: that this key belongs to this ID and name."""
    return {
        "kind": "fluorosim-instructor-key/1",
        "instructor_id": instructor_id,
        "name": name,
        "public_key": public_key,
    }


def instructor_added_message(
    instructor_id: str, name: str, public_key: str, created_utc: str, created_by: str | None
) -> dict[str, Any]:
    """What the instructor who adds (or vouches for) an account signs."""
    return {
        "kind": "fluorosim-instructor-added/1",
        "instructor_id": instructor_id,
        "name": name,
        "public_key": public_key,
        "created_utc": created_utc,
        "created_by": created_by,
    }


def setting_message(
    programme: str, key: str, value: Any, t_utc: str, instructor_id: str
) -> dict[str, Any]:
    """What an instructor's signature on a programme setting covers."""
    return {
        "kind": "fluorosim-setting/1",
        "programme": programme,
        "key": key,
        "value": value,
        "t_utc": t_utc,
        "instructor_id": instructor_id,
    }


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def new_uid() -> str:
    """A random, store-independent ID for an attempt, a sign-off or a store."""
    return uuid.uuid4().hex


def check_person_id(person_id: str, role: str) -> None:
    """Refuse IDs that are empty, padded with spaces, too long or carry control characters."""
    if not PERSON_ID_PATTERN.fullmatch(person_id or ""):
        raise RecordsError(
            f"{person_id!r} is not a valid {role} ID (1–64 printable characters, no leading or "
            "trailing spaces)"
        )


def default_database_url() -> str:
    """``FLUOROSIM_DB_URL`` if set, else an SQLite file in the per-user data directory."""
    env = os.environ.get("FLUOROSIM_DB_URL")
    if env:
        return env
    import platformdirs

    data_dir = Path(platformdirs.user_data_dir("fluorosim"))
    return f"sqlite:///{data_dir / 'records.sqlite'}"


class RecordStore:
    """Access to the records database; use :meth:`open` and close it (or use ``with``)."""

    def __init__(self, connection: Any, dialect: str, url: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self.url = url

    # -- connection -------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None, migrate: bool = True) -> RecordStore:
        """Connect to ``url`` (default: :func:`default_database_url`) and bring the schema up to date."""
        url = url or default_database_url()
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError as error:  # pragma: no cover - psycopg is a dependency
                raise RecordsError("PostgreSQL records need the psycopg package") from error
            try:
                connection = psycopg.connect(url, connect_timeout=5)
            except psycopg.OperationalError as error:
                raise RecordsError(
                    f"cannot connect to the records database {redact(url)}: {error}".strip()
                ) from error
            store = cls(connection, "postgresql", url)
        else:
            path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://"))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                lite = sqlite3.connect(path, timeout=10)
                lite.execute("PRAGMA foreign_keys = ON")
                lite.execute("PRAGMA journal_mode = WAL")
            except (sqlite3.Error, OSError) as error:
                raise RecordsError(f"cannot open the records database {path}: {error}") from error
            store = cls(lite, "sqlite", url)
        if migrate:
            store.migrate()
        return store

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgresql" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement with ``?`` placeholders; returns the cursor."""
        cursor = self.connection.cursor()
        cursor.execute(self._sql(statement), tuple(params))
        return cursor

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        """All rows of a query."""
        return list(self.execute(statement, params).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit on success, roll back on error."""
        try:
            yield
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise

    # -- schema -----------------------------------------------------------------------------
    def schema_version(self) -> int:
        """Current schema version (0 for an empty database)."""
        try:
            rows = self.query("SELECT version FROM schema_version")
        except Exception:
            self.connection.rollback()
            return 0
        return int(rows[0][0]) if rows else 0

    def migrate(self, target: int = schema.LATEST_VERSION) -> int:
        """Apply the migrations from the current version up to ``target``; returns the new version."""
        current = self.schema_version()
        if current > schema.LATEST_VERSION:
            raise RecordsError(
                f"the records database {redact(self.url)} has schema version {current}, newer than this "
                f"fluorosim understands ({schema.LATEST_VERSION}); update fluorosim"
            )
        if current >= target:
            return current
        with self.transaction():
            for version in range(current, target):
                for statement in schema.migration_statements(version, self.dialect):
                    self.execute(statement)
                self.execute("UPDATE schema_version SET version = ?", (version + 1,))
                if version + 1 == 3:
                    self._after_migration_to_3()
        return target

    def _after_migration_to_3(self) -> None:
        """Give existing attempts and sign-offs their uids, the store its ID, and mark the ledger.

        The marker entry tells :meth:`verify` that every sign-off and setting after it is signed;
        unsigned sign-offs before it (made by earlier versions) are checked as they were then.
        """
        for table in ("attempts", "signoffs"):
            for (row_id,) in self.query(f"SELECT id FROM {table} WHERE uid IS NULL"):
                self.execute(f"UPDATE {table} SET uid = ? WHERE id = ?", (new_uid(), row_id))
        for statement in schema.SCHEMA_V3_INDEXES:
            self.execute(statement)
        store_id = new_uid()
        self.execute("INSERT INTO store_info (key, value) VALUES ('store_id', ?)", (store_id,))
        self._append_ledger(
            "schema",
            "schema 3",
            Actor("fluorosim", "system"),
            {
                "version": 3,
                "store_id": store_id,
                "note": "from here on every sign-off and programme setting is signed by its instructor",
            },
        )

    def store_id(self) -> str:
        """This store's own random ID (written into its ledger and into every anchor)."""
        rows = self.query("SELECT value FROM store_info WHERE key = 'store_id'")
        return str(rows[0][0]) if rows else ""

    # -- people and scenarios ---------------------------------------------------------------
    def add_cohort(self, cohort_id: str, name: str) -> None:
        """Create a cohort (idempotent)."""
        with self.transaction():
            if not self.query("SELECT 1 FROM cohorts WHERE id = ?", (cohort_id,)):
                self.execute("INSERT INTO cohorts (id, name) VALUES (?, ?)", (cohort_id, name))

    def add_trainee(
        self, trainee_id: str, name: str, cohort_id: str | None = None, is_expert: bool = False
    ) -> None:
        """Create a trainee (idempotent; an expert's attempts feed the contrasting-groups pass mark).

        An instructor's ID is refused: nobody can act both as a trainee and as an instructor.
        """
        if not self.is_trainee(trainee_id):
            check_person_id(trainee_id, "trainee")
        if self.is_instructor(trainee_id):
            raise RecordsError(
                f"'{trainee_id}' is an instructor in these records; an instructor's ID cannot be "
                "used as a trainee ID"
            )
        with self.transaction():
            if not self.query("SELECT 1 FROM trainees WHERE id = ?", (trainee_id,)):
                self.execute(
                    "INSERT INTO trainees (id, name, cohort_id, created_utc, is_expert) VALUES (?, ?, ?, ?, ?)",
                    (trainee_id, name, cohort_id, utc_now(), int(is_expert)),
                )

    def is_trainee(self, person_id: str) -> bool:
        """Whether ``person_id`` is a trainee in these records."""
        return bool(self.query("SELECT 1 FROM trainees WHERE id = ?", (person_id,)))

    def is_instructor(self, person_id: str) -> bool:
        """Whether ``person_id`` is an instructor in these records (with or without a key)."""
        return bool(self.query("SELECT 1 FROM instructors WHERE id = ?", (person_id,)))

    def instructors(self) -> list[dict[str, Any]]:
        """Instructor accounts: ID, name, key fingerprint (None: no passphrase set), who added them."""
        return [
            {
                "id": r[0],
                "name": r[1],
                "fingerprint": identity.fingerprint(r[2]) if r[2] else None,
                "can_sign_here": bool(r[3]),
                "created_by": r[4],
                "created_utc": r[5],
            }
            for r in self.query(
                "SELECT id, name, public_key, sealed_key, created_by, created_utc FROM instructors ORDER BY id"
            )
        ]

    def create_instructor(
        self,
        instructor_id: str,
        name: str,
        passphrase: str,
        created_by: SignedInInstructor | None = None,
    ) -> SignedInInstructor:
        """Create an instructor account with a passphrase; returns it signed in.

        Only at first set-up (no instructor with a passphrase yet) may ``created_by`` be None;
        afterwards an existing instructor, signed in, adds accounts and signs the ledger entry. An
        account of an earlier version without a passphrase gets one the same way. A trainee's ID is
        refused.
        """
        check_person_id(instructor_id, "instructor")
        name = name.strip()
        if not name:
            raise RecordsError("an instructor account needs the instructor's full name")
        if self.is_trainee(instructor_id):
            raise RecordsError(
                f"'{instructor_id}' is a trainee in these records; a trainee can never act as an "
                "instructor"
            )
        rows = self.query("SELECT public_key FROM instructors WHERE id = ?", (instructor_id,))
        if rows and rows[0][0]:
            raise RecordsError(f"instructor '{instructor_id}' already has an account")
        keyed = self.query("SELECT id FROM instructors WHERE public_key IS NOT NULL")
        if created_by is None and keyed:
            raise RecordsError(
                "only an existing instructor can add instructors: sign in as one "
                f"(e.g. --by {keyed[0][0]})"
            )
        if created_by is not None:
            self._require_signed_in(created_by, "add instructors")
        try:
            passphrase_hash, public_key, sealed = identity.new_account_secrets(
                passphrase, instructor_id
            )
            private_key = identity.open_account(passphrase, passphrase_hash, sealed, instructor_id)
        except identity.IdentityError as error:
            raise RecordsError(str(error)) from error
        account = SignedInInstructor(instructor_id, "instructor", name, public_key, private_key)
        created_utc = utc_now()
        creator = created_by.id if created_by else None
        with self.transaction():
            if rows:
                self.execute(
                    "UPDATE instructors SET name = ?, passphrase_hash = ?, public_key = ?, sealed_key = ?, "
                    "created_by = ? WHERE id = ?",
                    (name, passphrase_hash, public_key, sealed, creator, instructor_id),
                )
            else:
                self.execute(
                    "INSERT INTO instructors (id, name, created_utc, passphrase_hash, public_key, sealed_key, "
                    "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        instructor_id,
                        name,
                        created_utc,
                        passphrase_hash,
                        public_key,
                        sealed,
                        creator,
                    ),
                )
            self._append_instructor_entry(
                instructor_id,
                name,
                public_key,
                account.sign(instructor_key_message(instructor_id, name, public_key)),
                created_utc,
                created_by,
            )
        return account

    def _append_instructor_entry(
        self,
        instructor_id: str,
        name: str,
        public_key: str,
        key_signature: str,
        created_utc: str,
        created_by: SignedInInstructor | None,
        imported_from: str | None = None,
    ) -> None:
        creator = created_by.id if created_by else None
        payload = {
            "instructor_id": instructor_id,
            "name": name,
            "public_key": public_key,
            "key_signature": key_signature,
            "created_utc": created_utc,
            "created_by": creator,
            "creator_signature": created_by.sign(
                instructor_added_message(instructor_id, name, public_key, created_utc, creator)
            )
            if created_by
            else None,
        }
        if imported_from:
            payload["imported_from"] = imported_from
        actor = created_by or Actor("first-setup", "system")
        self._append_ledger("instructor", instructor_id, actor, payload)

    def sign_in(self, instructor_id: str, passphrase: str) -> SignedInInstructor:
        """The instructor, signed in with their passphrase; RecordsError names what is wrong."""
        instructor_id = instructor_id.strip()
        if self.is_trainee(instructor_id):
            raise RecordsError(
                f"'{instructor_id}' is a trainee in these records; a trainee can never act as an "
                "instructor"
            )
        rows = self.query(
            "SELECT name, passphrase_hash, public_key, sealed_key FROM instructors WHERE id = ?",
            (instructor_id,),
        )
        if not rows:
            raise RecordsError(
                f"'{instructor_id}' is not an instructor in these records (an instructor adds "
                "accounts with: fluorosim report instructor add ID --name NAME --by THEIR-ID)"
            )
        name, passphrase_hash, public_key, sealed = rows[0]
        if not public_key:
            raise RecordsError(
                f"instructor '{instructor_id}' has no passphrase yet (set one with: fluorosim report "
                f"instructor add {instructor_id} --name NAME)"
            )
        if not passphrase_hash or not sealed:
            raise RecordsError(
                f"instructor '{instructor_id}' has an account in another store only (their key came "
                "with imported sign-offs); they cannot sign in here"
            )
        try:
            private_key = identity.open_account(passphrase, passphrase_hash, sealed, instructor_id)
        except identity.IdentityError as error:
            if str(error) == "wrong passphrase":
                raise RecordsError(f"wrong passphrase for instructor '{instructor_id}'") from error
            raise RecordsError(f"instructor '{instructor_id}': {error}") from error
        if identity.public_key_hex(private_key) != public_key:
            raise RecordsError(
                f"instructor '{instructor_id}': the sealed key does not match the account's public key"
            )
        return SignedInInstructor(instructor_id, "instructor", name, public_key, private_key)

    def _require_signed_in(self, actor: Actor, what: str) -> SignedInInstructor:
        if actor.role != "instructor":
            raise RecordsError(f"only an instructor can {what} ({actor.id} is a {actor.role})")
        if not isinstance(actor, SignedInInstructor) or actor.private_key is None:
            raise RecordsError(
                f"instructor '{actor.id}' must sign in with their passphrase to {what}"
            )
        rows = self.query("SELECT public_key FROM instructors WHERE id = ?", (actor.id,))
        if not rows or rows[0][0] != actor.public_key:
            raise RecordsError(f"unknown instructor '{actor.id}'")
        return actor

    def ensure_scenario(self, scenario_id: str, title: str = "", version: str = "1") -> None:
        """Register a scenario id (idempotent)."""
        with self.transaction():
            if not self.query("SELECT 1 FROM scenarios WHERE id = ?", (scenario_id,)):
                self.execute(
                    "INSERT INTO scenarios (id, title, version) VALUES (?, ?, ?)",
                    (scenario_id, title or scenario_id, version),
                )

    def trainees(self, cohort_id: str | None = None) -> list[dict[str, Any]]:
        """Trainees, optionally of one cohort."""
        sql = "SELECT id, name, cohort_id, is_expert FROM trainees"
        params: tuple = ()
        if cohort_id:
            sql += " WHERE cohort_id = ?"
            params = (cohort_id,)
        return [
            {"id": r[0], "name": r[1], "cohort_id": r[2], "is_expert": bool(r[3])}
            for r in self.query(sql + " ORDER BY id", params)
        ]

    def _require_trainee(self, trainee_id: str) -> None:
        if not self.query("SELECT 1 FROM trainees WHERE id = ?", (trainee_id,)):
            raise RecordsError(f"unknown trainee '{trainee_id}'")

    # -- attempts ---------------------------------------------------------------------------
    def record_attempt(
        self,
        trainee_id: str,
        scenario_id: str,
        report: dict[str, Any] | None,
        started_utc: str,
        finished_utc: str | None = None,
        attempt_file: str | Path | None = None,
        mode: str = "learning",
        status: str = "finished",
    ) -> int:
        """Store an attempt with its metrics and findings and append it to the ledger; returns its id.

        ``report`` is the scoring report (``score``, ``passed``, ``metrics``, ``findings``…);
        an ``interrupted`` attempt (recovered after a crash) may have none.
        """
        self._require_trainee(trainee_id)
        self.ensure_scenario(scenario_id)
        report = report or {}
        attempt_sha = (
            file_sha256(attempt_file) if attempt_file and Path(attempt_file).is_file() else None
        )
        score = report.get("score")
        passed = report.get("passed")
        content = {
            "uid": new_uid(),
            "trainee_id": trainee_id,
            "scenario_id": scenario_id,
            "started_utc": started_utc,
            "finished_utc": finished_utc,
            "status": status,
            "score": None if score is None else float(score),
            "passed": None if passed is None else int(bool(passed)),
            "mode": mode,
            "report_json": ledger.canonical_json(report),
            "attempt_sha256": attempt_sha,
        }
        metric_rows = []
        for name, metric in (report.get("metrics") or {}).items():
            value = metric.get("value")
            metric_rows.append(
                [
                    name,
                    float(value)
                    if isinstance(value, (int, float)) and not isinstance(value, bool)
                    else None,
                    str(metric.get("unit", "")),
                    json.dumps(metric.get("reference")),
                    None if metric.get("passed") is None else int(bool(metric.get("passed"))),
                ]
            )
        finding_rows = [[seq, str(text)] for seq, text in enumerate(report.get("findings") or [])]
        with self.transaction():
            return self.insert_attempt(content, metric_rows, finding_rows, attempt_file)

    def insert_attempt(
        self,
        content: dict[str, Any],
        metric_rows: Sequence[Sequence[Any]],
        finding_rows: Sequence[Sequence[Any]],
        attempt_file: str | Path | None,
        imported_from: dict[str, Any] | None = None,
    ) -> int:
        """Insert one attempt (portable fields in ``content``) and its ledger entry; no commit.

        Used by :meth:`record_attempt` and by the import of a bundle (``imported_from`` then says
        from which store and bundle the attempt came).
        """
        cursor = self.execute(
            "INSERT INTO attempts (uid, trainee_id, scenario_id, started_utc, finished_utc, status, score, "
            "passed, report_json, attempt_file, attempt_sha256, mode) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                content["uid"],
                content["trainee_id"],
                content["scenario_id"],
                content["started_utc"],
                content["finished_utc"],
                content["status"],
                content["score"],
                content["passed"],
                content["report_json"],
                None if attempt_file is None else str(attempt_file),
                content["attempt_sha256"],
                content["mode"],
            ),
        )
        attempt_id = int(cursor.fetchone()[0])
        for row in metric_rows:
            self.execute(
                "INSERT INTO metrics (attempt_id, name, value, unit, reference, passed) VALUES (?, ?, ?, ?, ?, ?)",
                (attempt_id, *row),
            )
        for seq, text in finding_rows:
            self.execute(
                "INSERT INTO findings (attempt_id, seq, text) VALUES (?, ?, ?)",
                (attempt_id, int(seq), str(text)),
            )
        payload = {
            "attempt_id": attempt_id,
            "uid": content["uid"],
            "trainee_id": content["trainee_id"],
            "scenario_id": content["scenario_id"],
            "status": content["status"],
            "score": content["score"],
            "passed": None if content["passed"] is None else bool(content["passed"]),
            "content_sha256": self._attempt_content_hash(attempt_id),
            "portable_sha256": self.attempt_portable_sha256(attempt_id),
            "fields": list(ATTEMPT_HASHED_FIELDS),
        }
        if imported_from:
            payload["imported_from"] = imported_from
        self._append_ledger(
            "attempt", f"attempt {attempt_id}", Actor("fluorosim", "system"), payload
        )
        return attempt_id

    def attempt_portable_content(
        self, attempt_id: int
    ) -> tuple[dict[str, Any], list[list[Any]], list[list[Any]]] | None:
        """(portable fields, metric rows, finding rows) of an attempt as stored, or None."""
        rows = self.query(
            f"SELECT {', '.join(PORTABLE_ATTEMPT_FIELDS)} FROM attempts WHERE id = ?", (attempt_id,)
        )
        if not rows:
            return None
        content = dict(zip(PORTABLE_ATTEMPT_FIELDS, rows[0], strict=True))
        metric_rows = [
            list(r)
            for r in self.query(
                "SELECT name, value, unit, reference, passed FROM metrics WHERE attempt_id = ? ORDER BY name",
                (attempt_id,),
            )
        ]
        finding_rows = [
            list(r)
            for r in self.query(
                "SELECT seq, text FROM findings WHERE attempt_id = ? ORDER BY seq", (attempt_id,)
            )
        ]
        return content, metric_rows, finding_rows

    def attempt_portable_sha256(self, attempt_id: int) -> str | None:
        """The portable content hash of an attempt as stored now (None: no such attempt)."""
        portable = self.attempt_portable_content(attempt_id)
        return None if portable is None else portable_attempt_sha256(*portable)

    def _attempt_content_hash(
        self, attempt_id: int, fields: Sequence[str] = ATTEMPT_HASHED_FIELDS
    ) -> str | None:
        rows = self.query(f"SELECT {', '.join(fields)} FROM attempts WHERE id = ?", (attempt_id,))
        if not rows:
            return None
        content = dict(zip(fields, rows[0], strict=True))
        metric_rows = self.query(
            "SELECT name, value, unit, reference, passed FROM metrics WHERE attempt_id = ? ORDER BY name",
            (attempt_id,),
        )
        finding_rows = self.query(
            "SELECT seq, text FROM findings WHERE attempt_id = ? ORDER BY seq", (attempt_id,)
        )
        content["metrics"] = [list(r) for r in metric_rows]
        content["findings"] = [list(r) for r in finding_rows]
        return ledger.content_sha256(content)

    def attempts(
        self,
        trainee_id: str | None = None,
        scenario_id: str | None = None,
        cohort_id: str | None = None,
    ) -> list[AttemptRow]:
        """Attempts in the order they were recorded, filtered by trainee, scenario or cohort."""
        sql = (
            "SELECT a.id, a.trainee_id, a.scenario_id, a.started_utc, a.finished_utc, a.status, a.score, "
            "a.passed, a.mode, a.report_json, a.attempt_file, a.uid FROM attempts a "
            "JOIN trainees t ON t.id = a.trainee_id"
        )
        where, params = [], []
        for column, value in (
            ("a.trainee_id", trainee_id),
            ("a.scenario_id", scenario_id),
            ("t.cohort_id", cohort_id),
        ):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = []
        for r in self.query(sql + " ORDER BY a.id", params):
            row = AttemptRow(
                id=int(r[0]),
                trainee_id=r[1],
                scenario_id=r[2],
                started_utc=r[3],
                finished_utc=r[4],
                status=r[5],
                score=None if r[6] is None else float(r[6]),
                passed=None if r[7] is None else bool(r[7]),
                mode=r[8],
                report=json.loads(r[9]) if r[9] else {},
                attempt_file=r[10],
                uid=r[11],
            )
            for m in self.query(
                "SELECT name, value, unit, reference, passed FROM metrics WHERE attempt_id = ? ORDER BY name",
                (row.id,),
            ):
                row.metrics[m[0]] = {
                    "value": m[1],
                    "unit": m[2],
                    "reference": json.loads(m[3]) if m[3] else None,
                    "passed": None if m[4] is None else bool(m[4]),
                }
            row.findings = [
                f[0]
                for f in self.query(
                    "SELECT text FROM findings WHERE attempt_id = ? ORDER BY seq", (row.id,)
                )
            ]
            row.signoffs = self.signoffs(row.id)
            rows.append(row)
        return rows

    def signoffs(self, attempt_id: int) -> list[dict[str, Any]]:
        """An attempt's sign-offs in order, each with ``superseded_by`` (the later one's id) if any."""
        result = [
            {
                "id": int(r[0]),
                "uid": r[1],
                "instructor_id": r[2],
                "instructor_name": r[3] or r[2],
                "decision": r[4],
                "comment": r[5],
                "t_utc": r[6],
                "supersedes_uid": r[7],
                "confirmed_failed": bool(r[8]),
                "signed": bool(r[9]),
                "supersedes": None,
                "superseded_by": None,
            }
            for r in self.query(
                "SELECT s.id, s.uid, s.instructor_id, i.name, s.decision, s.comment, s.t_utc, s.supersedes_uid, "
                "s.confirmed_failed, s.signature FROM signoffs s LEFT JOIN instructors i ON i.id = s.instructor_id "
                "WHERE s.attempt_id = ? ORDER BY s.id",
                (attempt_id,),
            )
        ]
        by_uid = {s["uid"]: s for s in result}
        for signoff in result:
            earlier = by_uid.get(signoff["supersedes_uid"])
            if earlier is not None:
                earlier["superseded_by"] = signoff["id"]
                signoff["supersedes"] = earlier["id"]
        return result

    # -- instructor actions -----------------------------------------------------------------
    def sign_off(
        self,
        attempt_id: int,
        actor: Actor,
        decision: str,
        comment: str = "",
        confirm_failed: bool = False,
        supersedes: int | None = None,
    ) -> int:
        """An instructor's signed decision on an attempt; returns the sign-off's id.

        ``decision`` is "approved", "needs_practice" or "comment". Approving an attempt that failed
        needs a comment saying why and ``confirm_failed=True``. ``supersedes`` is the id of an
        earlier sign-off of the same attempt that this one replaces; both stay in the records.
        """
        if actor.role != "instructor":
            raise RecordsError(
                f"only an instructor can sign off attempts ({actor.id} is a {actor.role})"
            )
        if decision not in SIGNOFF_DECISIONS:
            raise RecordsError(
                f"unknown sign-off decision '{decision}' (approved, needs_practice or comment)"
            )
        instructor = self._require_signed_in(actor, "sign off attempts")
        rows = self.query(
            "SELECT uid, trainee_id, passed FROM attempts WHERE id = ?", (attempt_id,)
        )
        if not rows:
            raise RecordsError(f"no attempt {attempt_id}")
        attempt_uid, trainee_id, passed = rows[0]
        comment = comment.strip()
        failed = passed is not None and not bool(passed)
        if decision == "approved" and failed:
            if not comment:
                raise RecordsError(
                    f"attempt {attempt_id} failed: approving it needs a comment saying why"
                )
            if not confirm_failed:
                raise RecordsError(
                    f"attempt {attempt_id} failed: approving it needs an explicit confirmation"
                )
        supersedes_uid = None
        if supersedes is not None:
            earlier = {s["id"]: s for s in self.signoffs(attempt_id)}.get(supersedes)
            if earlier is None:
                raise RecordsError(
                    f"sign-off {supersedes} is not a sign-off of attempt {attempt_id}"
                )
            if earlier["superseded_by"] is not None:
                raise RecordsError(
                    f"sign-off {supersedes} was already superseded by sign-off {earlier['superseded_by']}"
                )
            supersedes_uid = earlier["uid"]
        signoff_uid = new_uid()
        t_utc = utc_now()
        attempt_sha = self.attempt_portable_sha256(attempt_id)
        confirmed = bool(confirm_failed and decision == "approved" and failed)
        signature = instructor.sign(
            signoff_message(
                signoff_uid,
                attempt_uid,
                str(attempt_sha),
                trainee_id,
                instructor.id,
                decision,
                comment,
                t_utc,
                supersedes_uid,
                confirmed,
            )
        )
        with self.transaction():
            return self.insert_signoff(
                attempt_id,
                {
                    "uid": signoff_uid,
                    "attempt_uid": attempt_uid,
                    "instructor_id": instructor.id,
                    "decision": decision,
                    "comment": comment,
                    "t_utc": t_utc,
                    "supersedes_uid": supersedes_uid,
                    "confirmed_failed": confirmed,
                    "attempt_sha256": attempt_sha,
                    "signature": signature,
                },
            )

    def insert_signoff(self, attempt_id: int, signoff: dict[str, Any]) -> int:
        """Insert a signed sign-off and its ledger entry (no commit); also used by bundle import."""
        cursor = self.execute(
            "INSERT INTO signoffs (attempt_id, instructor_id, decision, comment, t_utc, uid, supersedes_uid, "
            "confirmed_failed, attempt_sha256, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                attempt_id,
                signoff["instructor_id"],
                signoff["decision"],
                signoff["comment"],
                signoff["t_utc"],
                signoff["uid"],
                signoff["supersedes_uid"],
                int(bool(signoff["confirmed_failed"])),
                signoff["attempt_sha256"],
                signoff["signature"],
            ),
        )
        signoff_id = int(cursor.fetchone()[0])
        payload = {"attempt_id": attempt_id, "signoff_id": signoff_id} | {
            key: signoff[key]
            for key in (
                "uid",
                "attempt_uid",
                "decision",
                "comment",
                "t_utc",
                "supersedes_uid",
                "confirmed_failed",
                "attempt_sha256",
                "signature",
            )
        }
        self._append_ledger(
            "signoff",
            f"attempt {attempt_id}",
            Actor(signoff["instructor_id"], "instructor"),
            payload,
        )
        return signoff_id

    # -- programme settings -----------------------------------------------------------------
    def set_programme_setting(self, programme: str, key: str, value: Any, actor: Actor) -> None:
        """Set a programme's setting (e.g. CUSUM p0); signed-in instructors only, signed, in the ledger."""
        instructor = self._require_signed_in(actor, "change programme settings")
        t_utc = utc_now()
        signature = instructor.sign(setting_message(programme, key, value, t_utc, instructor.id))
        with self.transaction():
            self.execute(
                "DELETE FROM programme_settings WHERE programme = ? AND key = ?", (programme, key)
            )
            self.execute(
                "INSERT INTO programme_settings (programme, key, value) VALUES (?, ?, ?)",
                (programme, key, json.dumps(value)),
            )
            self._append_ledger(
                "setting",
                f"{programme}.{key}",
                instructor,
                {"value": value, "t_utc": t_utc, "signature": signature},
            )

    def programme_settings(self, programme: str) -> dict[str, Any]:
        """All settings of a programme."""
        rows = self.query(
            "SELECT key, value FROM programme_settings WHERE programme = ?", (programme,)
        )
        return {key: json.loads(value) for key, value in rows}

    # -- ledger -----------------------------------------------------------------------------
    def ledger_entries(self) -> list[ledger.LedgerEntry]:
        """The whole ledger in order."""
        rows = self.query(
            "SELECT seq, t_utc, kind, ref, actor, payload, prev_hash, hash FROM ledger ORDER BY seq"
        )
        return [ledger.LedgerEntry(int(r[0]), *r[1:]) for r in rows]

    def ledger_head(self) -> str:
        """Hash of the newest ledger entry (the genesis hash for an empty ledger)."""
        rows = self.query("SELECT hash FROM ledger ORDER BY seq DESC LIMIT 1")
        return rows[0][0] if rows else ledger.GENESIS_HASH

    def _append_ledger(
        self, kind: str, ref: str, actor: Actor, payload: dict[str, Any]
    ) -> ledger.LedgerEntry:
        rows = self.query(
            "SELECT seq, t_utc, kind, ref, actor, payload, prev_hash, hash FROM ledger ORDER BY seq DESC LIMIT 1"
        )
        previous = ledger.LedgerEntry(int(rows[0][0]), *rows[0][1:]) if rows else None
        entry = ledger.make_entry(
            previous, utc_now(), kind, ref, f"{actor.role}:{actor.id}", payload
        )
        self.execute(
            "INSERT INTO ledger (seq, t_utc, kind, ref, actor, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.seq,
                entry.t_utc,
                entry.kind,
                entry.ref,
                entry.actor,
                entry.payload,
                entry.prev_hash,
                entry.hash,
            ),
        )
        return entry

    def verify(self, check_files: bool = True, anchors: Sequence[Any] = ()) -> Any:
        """Check the ledger, every record against it, every signature, and the given anchors.

        Returns a :class:`scenarios.records.verification.VerificationResult` naming the first bad
        record; ``anchors`` are :class:`scenarios.records.anchor.Anchor` heads recorded earlier.
        """
        from fluorosim.scenarios.records.verification import verify_store

        return verify_store(self, check_files=check_files, anchors=anchors)


def redact(url: str) -> str:
    """A URL with its password hidden, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
