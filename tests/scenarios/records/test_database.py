"""Round trips, migrations, permissions and tamper detection on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

import pytest

from fluorosim.scenarios.records import schema
from fluorosim.scenarios.records.database import Actor, RecordsError, RecordStore
from tests.scenarios.records.conftest import make_instructor, sample_report


def populate(store: RecordStore, attempt_file=None) -> list[int]:
    store.add_cohort("2026-fall", "Fall 2026 cohort")
    store.add_trainee("t-001", "A. Trainee", "2026-fall")
    instructor = make_instructor(store)
    ids = [
        store.record_attempt(
            "t-001",
            "sij-lateral",
            sample_report(45.0, False),
            "2026-11-01T10:00:00+00:00",
            "2026-11-01T10:20:00+00:00",
            attempt_file,
        ),
        store.record_attempt(
            "t-001",
            "sij-lateral",
            sample_report(72.5, True),
            "2026-11-02T10:00:00+00:00",
            "2026-11-02T10:18:00+00:00",
        ),
    ]
    store.sign_off(ids[1], instructor, "approved", "Clean S1 pin, good outlet views.")
    return ids


def test_round_trip(store):
    ids = populate(store)
    attempts = store.attempts("t-001")
    assert [a.id for a in attempts] == ids
    assert attempts[0].score == 45.0 and attempts[0].passed is False
    assert attempts[1].metrics["shots"]["value"] == 14
    assert attempts[1].metrics["tip_to_target_mm"]["reference"] == "<= 5"
    assert attempts[1].findings == ["Pin 1 ended 2.5 mm from the S1 target.", "14 shots."]
    assert attempts[1].signoffs[0]["instructor_id"] == "dr-lee"
    assert attempts[1].report["passed"] is True
    assert store.attempts(cohort_id="2026-fall") and not store.attempts(cohort_id="other")
    result = store.verify()
    assert result.ok, result.problem
    # schema marker, instructor account, two attempts, one sign-off
    assert result.records_checked == 5 and result.signatures_checked == 2


def test_trainee_cannot_sign_off_or_change_settings(store):
    ids = populate(store)
    with pytest.raises(RecordsError, match="only an instructor"):
        store.sign_off(ids[0], Actor("t-001", "trainee"), "approved")
    with pytest.raises(RecordsError, match="only an instructor"):
        store.set_programme_setting("spine", "cusum_p0", 0.05, Actor("t-001", "trainee"))
    with pytest.raises(RecordsError, match="unknown trainee"):
        store.record_attempt(
            "nobody", "sij-lateral", sample_report(1, False), "2026-11-01T10:00:00+00:00"
        )
    with pytest.raises(RecordsError, match="must sign in with their passphrase"):
        store.set_programme_setting("spine", "cusum_p0", 0.05, Actor("dr-lee", "instructor"))
    store.set_programme_setting("spine", "cusum_p0", 0.05, store.sign_in("dr-lee", "pass-dr-lee"))
    assert store.programme_settings("spine") == {"cusum_p0": 0.05}
    assert store.ledger_entries()[-1].actor == "instructor:dr-lee"


def test_tampered_score_is_named(store):
    ids = populate(store)
    store.execute("UPDATE attempts SET score = 99 WHERE id = ?", (ids[0],))
    store.connection.commit()
    result = store.verify()
    assert not result.ok
    assert f"attempt {ids[0]} was altered" in result.problem


def test_deleted_attempt_is_named(store):
    ids = populate(store)
    store.execute("DELETE FROM metrics WHERE attempt_id = ?", (ids[0],))
    store.execute("DELETE FROM findings WHERE attempt_id = ?", (ids[0],))
    store.execute("DELETE FROM attempts WHERE id = ?", (ids[0],))
    store.connection.commit()
    result = store.verify()
    assert not result.ok
    assert f"attempt {ids[0]}" in result.problem and "removed" in result.problem


def test_removed_ledger_record_is_named(store):
    populate(store)
    store.execute("DELETE FROM ledger WHERE seq = 2")
    store.connection.commit()
    result = store.verify()
    assert not result.ok and "record #2 was removed" in result.problem


def test_altered_signoff_comment_is_named(store):
    populate(store)
    store.execute("UPDATE signoffs SET comment = 'rubber stamp'")
    store.connection.commit()
    result = store.verify()
    assert not result.ok and "sign-off" in result.problem


def test_inserted_attempt_outside_app_is_named(store):
    populate(store)
    store.execute(
        "INSERT INTO attempts (trainee_id, scenario_id, started_utc, status, score, passed) "
        "VALUES ('t-001', 'sij-lateral', '2026-11-03T10:00:00+00:00', 'finished', 100, 1)"
    )
    store.connection.commit()
    result = store.verify()
    assert not result.ok and "not in the ledger" in result.problem


def test_altered_attempt_file_is_named(tmp_path):
    attempt_file = tmp_path / "attempt.jsonl"
    attempt_file.write_text('{"format": "fluorosim-attempt"}\n')
    with RecordStore.open(f"sqlite:///{tmp_path / 'r.sqlite'}") as store:
        populate(store, attempt_file)
        assert store.verify().ok
        attempt_file.write_text('{"format": "fluorosim-attempt", "edited": true}\n')
        result = store.verify()
        assert not result.ok and "attempt file" in result.problem


def test_migration_from_first_schema(tmp_path):
    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path)
    for statement in schema.migration_statements(0, "sqlite"):
        connection.execute(statement)
    connection.execute("UPDATE schema_version SET version = 1")
    connection.execute(
        "INSERT INTO trainees (id, name, created_utc) VALUES ('t-9', 'Old Trainee', '2025-01-01')"
    )
    connection.commit()
    connection.close()
    with RecordStore.open(f"sqlite:///{path}") as store:
        assert store.schema_version() == schema.LATEST_VERSION
        assert store.trainees() == [
            {"id": "t-9", "name": "Old Trainee", "cohort_id": None, "is_expert": False}
        ]
        attempt_id = store.record_attempt(
            "t-9", "teld-l4l5", sample_report(60, True), "2026-01-01T00:00:00+00:00", mode="exam"
        )
        assert store.attempts("t-9")[0].mode == "exam" and attempt_id == 1
        assert store.verify().ok


def test_newer_schema_refused(tmp_path):
    path = tmp_path / "future.sqlite"
    with RecordStore.open(f"sqlite:///{path}") as store:
        store.execute("UPDATE schema_version SET version = 99")
        store.connection.commit()
    with pytest.raises(RecordsError, match="newer than this fluorosim"):
        RecordStore.open(f"sqlite:///{path}")


def test_unreachable_postgres_is_a_clear_message():
    with pytest.raises(
        RecordsError,
        match="cannot connect to the records database postgresql://u:\\*\\*\\*@127.0.0.1:1/x",
    ):
        RecordStore.open("postgresql://u:secret@127.0.0.1:1/x")
