"""The records database: trainees, instructors, cohorts, attempts, metrics, findings, sign-offs.

One embedded SQLite file per station by default (in the user's data directory), or one PostgreSQL
database shared by several lab stations, chosen by a URL (``sqlite:///path``, a plain path, or
``postgresql://user:pass@host/db``). The same code runs on both.

Who may do what: anyone records a finished attempt (the simulator does, on the trainee's behalf);
only an instructor signs off or comments, and every such action is attributed and appended to the
hash-chained ledger (:mod:`scenarios.records.ledger`). There is no API to change a score; any edit
made behind the application's back is found by :meth:`RecordStore.verify`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scenarios.records import ledger, schema

#: Fields of an attempt row whose content the ledger vouches for.
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
)


class RecordsError(Exception):
    """A records problem a user can cause (bad URL, unknown trainee, no permission)."""


@dataclass(frozen=True)
class Actor:
    """Who performs an action: a trainee, an instructor, or the simulator itself (``system``)."""

    id: str
    role: str  # "trainee" | "instructor" | "system"


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


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of a ledger check."""

    ok: bool
    problem: str | None
    records_checked: int
    head_hash: str


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
                connection = sqlite3.connect(path, timeout=10)
                connection.execute("PRAGMA foreign_keys = ON")
                connection.execute("PRAGMA journal_mode = WAL")
            except (sqlite3.Error, OSError) as error:
                raise RecordsError(f"cannot open the records database {path}: {error}") from error
            store = cls(connection, "sqlite", url)
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
        return target

    # -- people and scenarios ---------------------------------------------------------------
    def add_cohort(self, cohort_id: str, name: str) -> None:
        """Create a cohort (idempotent)."""
        with self.transaction():
            if not self.query("SELECT 1 FROM cohorts WHERE id = ?", (cohort_id,)):
                self.execute("INSERT INTO cohorts (id, name) VALUES (?, ?)", (cohort_id, name))

    def add_trainee(
        self, trainee_id: str, name: str, cohort_id: str | None = None, is_expert: bool = False
    ) -> None:
        """Create a trainee (idempotent; an expert's attempts feed the contrasting-groups pass mark)."""
        with self.transaction():
            if not self.query("SELECT 1 FROM trainees WHERE id = ?", (trainee_id,)):
                self.execute(
                    "INSERT INTO trainees (id, name, cohort_id, created_utc, is_expert) VALUES (?, ?, ?, ?, ?)",
                    (trainee_id, name, cohort_id, utc_now(), int(is_expert)),
                )

    def add_instructor(self, instructor_id: str, name: str) -> None:
        """Create an instructor (idempotent)."""
        with self.transaction():
            if not self.query("SELECT 1 FROM instructors WHERE id = ?", (instructor_id,)):
                self.execute(
                    "INSERT INTO instructors (id, name, created_utc) VALUES (?, ?, ?)",
                    (instructor_id, name, utc_now()),
                )

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
        with self.transaction():
            cursor = self.execute(
                "INSERT INTO attempts (trainee_id, scenario_id, started_utc, finished_utc, status, score, "
                "passed, report_json, attempt_file, attempt_sha256, mode) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    trainee_id,
                    scenario_id,
                    started_utc,
                    finished_utc,
                    status,
                    None if score is None else float(score),
                    None if passed is None else int(bool(passed)),
                    ledger.canonical_json(report),
                    None if attempt_file is None else str(attempt_file),
                    attempt_sha,
                    mode,
                ),
            )
            attempt_id = int(cursor.fetchone()[0])
            for name, metric in (report.get("metrics") or {}).items():
                value = metric.get("value")
                self.execute(
                    "INSERT INTO metrics (attempt_id, name, value, unit, reference, passed) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        attempt_id,
                        name,
                        float(value)
                        if isinstance(value, (int, float)) and not isinstance(value, bool)
                        else None,
                        str(metric.get("unit", "")),
                        json.dumps(metric.get("reference")),
                        None if metric.get("passed") is None else int(bool(metric.get("passed"))),
                    ),
                )
            for seq, text in enumerate(report.get("findings") or []):
                self.execute(
                    "INSERT INTO findings (attempt_id, seq, text) VALUES (?, ?, ?)",
                    (attempt_id, seq, str(text)),
                )
            payload = {
                "attempt_id": attempt_id,
                "trainee_id": trainee_id,
                "scenario_id": scenario_id,
                "status": status,
                "score": score,
                "passed": passed,
                "content_sha256": self._attempt_content_hash(attempt_id),
                "fields": list(ATTEMPT_HASHED_FIELDS),
            }
            self._append_ledger(
                "attempt", f"attempt {attempt_id}", Actor("fluorosim", "system"), payload
            )
        return attempt_id

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
            "a.passed, a.mode, a.report_json, a.attempt_file FROM attempts a JOIN trainees t ON t.id = a.trainee_id"
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
            row.signoffs = [
                {"instructor_id": s[0], "decision": s[1], "comment": s[2], "t_utc": s[3]}
                for s in self.query(
                    "SELECT instructor_id, decision, comment, t_utc FROM signoffs WHERE attempt_id = ? ORDER BY id",
                    (row.id,),
                )
            ]
            rows.append(row)
        return rows

    # -- instructor actions -----------------------------------------------------------------
    def sign_off(self, attempt_id: int, actor: Actor, decision: str, comment: str = "") -> None:
        """An instructor's decision on an attempt ("approved", "needs_practice" or "comment")."""
        if actor.role != "instructor":
            raise RecordsError(
                f"only an instructor can sign off attempts ({actor.id} is a {actor.role})"
            )
        if decision not in ("approved", "needs_practice", "comment"):
            raise RecordsError(
                f"unknown sign-off decision '{decision}' (approved, needs_practice or comment)"
            )
        if not self.query("SELECT 1 FROM instructors WHERE id = ?", (actor.id,)):
            raise RecordsError(f"unknown instructor '{actor.id}'")
        if not self.query("SELECT 1 FROM attempts WHERE id = ?", (attempt_id,)):
            raise RecordsError(f"no attempt {attempt_id}")
        t_utc = utc_now()
        with self.transaction():
            self.execute(
                "INSERT INTO signoffs (attempt_id, instructor_id, decision, comment, t_utc) VALUES (?, ?, ?, ?, ?)",
                (attempt_id, actor.id, decision, comment, t_utc),
            )
            payload = {
                "attempt_id": attempt_id,
                "decision": decision,
                "comment": comment,
                "t_utc": t_utc,
            }
            self._append_ledger("signoff", f"attempt {attempt_id}", actor, payload)

    # -- programme settings -----------------------------------------------------------------
    def set_programme_setting(self, programme: str, key: str, value: Any, actor: Actor) -> None:
        """Set a programme's setting (e.g. CUSUM p0); instructors only, logged in the ledger."""
        if actor.role != "instructor":
            raise RecordsError("only an instructor can change programme settings")
        with self.transaction():
            self.execute(
                "DELETE FROM programme_settings WHERE programme = ? AND key = ?", (programme, key)
            )
            self.execute(
                "INSERT INTO programme_settings (programme, key, value) VALUES (?, ?, ?)",
                (programme, key, json.dumps(value)),
            )
            self._append_ledger("setting", f"{programme}.{key}", actor, {"value": value})

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

    def verify(self, check_files: bool = True) -> VerifyResult:
        """Check the chain, then every attempt and sign-off against what the ledger recorded.

        Names the first record that was altered or removed; ``ok`` is False when anything is off.
        """
        entries = self.ledger_entries()
        head = entries[-1].hash if entries else ledger.GENESIS_HASH
        problem = ledger.first_chain_problem(entries)
        if problem:
            return VerifyResult(False, problem, len(entries), head)
        ledgered_attempts: set[int] = set()
        signoff_counts: dict[int, int] = {}
        for entry in entries:
            payload = json.loads(entry.payload)
            if entry.kind == "attempt":
                attempt_id = int(payload["attempt_id"])
                ledgered_attempts.add(attempt_id)
                current = self._attempt_content_hash(
                    attempt_id, payload.get("fields", ATTEMPT_HASHED_FIELDS)
                )
                if current is None:
                    return VerifyResult(
                        False,
                        f"attempt {attempt_id} ({entry.describe()}) was removed from the records",
                        len(entries),
                        head,
                    )
                if current != payload["content_sha256"]:
                    return VerifyResult(
                        False,
                        f"attempt {attempt_id} was altered after it was recorded ({entry.describe()})",
                        len(entries),
                        head,
                    )
            elif entry.kind == "signoff":
                attempt_id = int(payload["attempt_id"])
                signoff_counts[attempt_id] = signoff_counts.get(attempt_id, 0) + 1
                instructor = entry.actor.split(":", 1)[1]
                match = self.query(
                    "SELECT 1 FROM signoffs WHERE attempt_id = ? AND instructor_id = ? AND decision = ? AND comment = ? AND t_utc = ?",
                    (
                        attempt_id,
                        instructor,
                        payload["decision"],
                        payload["comment"],
                        payload["t_utc"],
                    ),
                )
                if not match:
                    return VerifyResult(
                        False,
                        f"the sign-off in {entry.describe()} was altered or removed",
                        len(entries),
                        head,
                    )
        for (attempt_id,) in self.query("SELECT id FROM attempts ORDER BY id"):
            if int(attempt_id) not in ledgered_attempts:
                return VerifyResult(
                    False,
                    f"attempt {attempt_id} is not in the ledger (added outside fluorosim)",
                    len(entries),
                    head,
                )
        for attempt_id, count in self.query(
            "SELECT attempt_id, COUNT(*) FROM signoffs GROUP BY attempt_id"
        ):
            if int(count) != signoff_counts.get(int(attempt_id), 0):
                return VerifyResult(
                    False,
                    f"sign-offs of attempt {attempt_id} do not match the ledger",
                    len(entries),
                    head,
                )
        if check_files:
            for attempt_id, path, sha in self.query(
                "SELECT id, attempt_file, attempt_sha256 FROM attempts WHERE attempt_sha256 IS NOT NULL"
            ):
                if path and Path(path).is_file() and file_sha256(path) != sha:
                    return VerifyResult(
                        False,
                        f"the attempt file of attempt {attempt_id} ({path}) was altered",
                        len(entries),
                        head,
                    )
        return VerifyResult(True, None, len(entries), head)


def redact(url: str) -> str:
    """A URL with its password hidden, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
