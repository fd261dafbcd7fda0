"""Issue #17: who is who, signed sign-offs, and a ledger anchored outside the store.

Each attack is made the way someone with write access to the database (but not an instructor's
passphrase) would make it, including recomputing the hash chain after the edit; runs on SQLite and
on PostgreSQL when FLUOROSIM_TEST_PG_URL names a server.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from fluorosim.scenarios.records import identity, ledger, schema
from fluorosim.scenarios.records.anchor import Anchor, check
from fluorosim.scenarios.records.database import Actor, RecordsError, RecordStore, signoff_message
from tests.scenarios.records.conftest import make_instructor, sample_report


def populate(store: RecordStore) -> dict:
    store.add_trainee("t-001", "A. Trainee")
    lee = make_instructor(store, "dr-lee", "Dr Lee")
    kim = make_instructor(store, "dr-kim", "Dr Kim", by=lee)
    failed = store.record_attempt(
        "t-001", "sij-lateral", sample_report(34.1, False), "2026-11-01T10:00:00+00:00"
    )
    passed = store.record_attempt(
        "t-001", "sij-lateral", sample_report(72.5, True), "2026-11-02T10:00:00+00:00"
    )
    signoff = store.sign_off(passed, lee, "approved", "Clean S1 pin.")
    return {"lee": lee, "kim": kim, "failed": failed, "passed": passed, "signoff": signoff}


def rewrite_chain_from(store: RecordStore, seq: int) -> None:
    """What a forger does after editing rows: recompute every ledger hash from ``seq`` on."""
    entries = store.ledger_entries()
    previous = entries[seq - 2] if seq > 1 else None
    for entry in entries[seq - 1 :]:
        prev_hash = previous.hash if previous else ledger.GENESIS_HASH
        digest = ledger.entry_hash(
            prev_hash, entry.seq, entry.t_utc, entry.kind, entry.ref, entry.actor, entry.payload
        )
        store.execute(
            "UPDATE ledger SET prev_hash = ?, hash = ? WHERE seq = ?",
            (prev_hash, digest, entry.seq),
        )
        previous = ledger.LedgerEntry(
            entry.seq,
            entry.t_utc,
            entry.kind,
            entry.ref,
            entry.actor,
            entry.payload,
            prev_hash,
            digest,
        )
    store.connection.commit()


def edit_payload(store: RecordStore, seq: int, **changes) -> None:
    payload = json.loads(store.query("SELECT payload FROM ledger WHERE seq = ?", (seq,))[0][0])
    payload.update(changes)
    store.execute(
        "UPDATE ledger SET payload = ? WHERE seq = ?", (ledger.canonical_json(payload), seq)
    )


def entry_of(store: RecordStore, kind: str, ref: str) -> ledger.LedgerEntry:
    return next(e for e in store.ledger_entries() if e.kind == kind and e.ref == ref)


# -- who is who -----------------------------------------------------------------------------------
def test_a_trainee_id_never_acts_as_an_instructor(store):
    made = populate(store)
    with pytest.raises(RecordsError, match="'t-001' is a trainee.*never act as an instructor"):
        store.create_instructor("t-001", "A. Trainee", "long enough passphrase", made["lee"])
    with pytest.raises(RecordsError, match="'t-001' is a trainee"):
        store.sign_in("t-001", "long enough passphrase")
    with pytest.raises(RecordsError, match="'dr-lee' is an instructor"):
        store.add_trainee("dr-lee", "Dr Lee")
    with pytest.raises(RecordsError, match="only an instructor can sign off"):
        store.sign_off(made["failed"], Actor("t-001", "trainee"), "approved", "me", True)
    with pytest.raises(RecordsError, match="must sign in with their passphrase"):
        store.sign_off(made["failed"], Actor("dr-lee", "instructor"), "comment", "unsigned")


def test_accounts_need_an_instructor_and_the_right_passphrase(store):
    made = populate(store)
    with pytest.raises(RecordsError, match="only an existing instructor can add instructors"):
        store.create_instructor("dr-new", "Dr New", "another passphrase")
    with pytest.raises(RecordsError, match="wrong passphrase for instructor 'dr-kim'"):
        store.sign_in("dr-kim", "pass-dr-lee")
    with pytest.raises(RecordsError, match="not an instructor in these records"):
        store.sign_in("dr-nobody", "whatever-long")
    with pytest.raises(RecordsError, match="at least 8 characters"):
        store.create_instructor("dr-new", "Dr New", "short", made["lee"])
    kim = store.sign_in("dr-kim", "pass-dr-kim")
    assert kim.public_key == made["kim"].public_key
    stored_hash, sealed = store.query(
        "SELECT passphrase_hash, sealed_key FROM instructors WHERE id = 'dr-kim'"
    )[0]
    assert stored_hash.startswith("scrypt$") and "pass-dr-kim" not in stored_hash + sealed
    accounts = {a["id"]: a for a in store.instructors()}
    assert accounts["dr-kim"]["created_by"] == "dr-lee"
    assert accounts["dr-lee"]["created_by"] is None  # first set-up


def test_shipped_scrypt_parameters(monkeypatch):
    monkeypatch.undo()  # the conftest's cheap scrypt
    passphrase_hash, _, _ = identity.new_account_secrets("a long passphrase", "dr-x")
    scheme, log2_n, r, p, _, _ = passphrase_hash.split("$")
    assert (scheme, int(log2_n), int(r), int(p)) == ("scrypt", 15, 8, 3)


# -- signed sign-offs -----------------------------------------------------------------------------
def test_failed_attempt_is_approved_only_with_comment_and_confirmation(store):
    made = populate(store)
    with pytest.raises(RecordsError, match="needs a comment"):
        store.sign_off(made["failed"], made["lee"], "approved", confirm_failed=True)
    with pytest.raises(RecordsError, match="needs an explicit confirmation"):
        store.sign_off(made["failed"], made["lee"], "approved", "seen it live")
    first = store.sign_off(made["failed"], made["lee"], "approved", "seen it live", True)
    second = store.sign_off(
        made["failed"], made["kim"], "needs_practice", "no: repeat", supersedes=first
    )
    with pytest.raises(RecordsError, match="already superseded"):
        store.sign_off(made["failed"], made["kim"], "approved", "x", True, supersedes=first)
    signoffs = store.attempts("t-001")[0].signoffs
    assert [(s["id"], s["superseded_by"], s["instructor_name"]) for s in signoffs] == [
        (first, second, "Dr Lee"),
        (second, None, "Dr Kim"),
    ]
    result = store.verify()
    assert result.ok, result.problem
    assert result.signatures_checked == 6  # 2 accounts (+1 adder signature), 3 sign-offs


def test_signoff_altered_in_the_database_fails_verify(store):
    made = populate(store)
    store.execute("UPDATE signoffs SET comment = 'rubber stamp' WHERE id = ?", (made["signoff"],))
    store.connection.commit()
    result = store.verify()
    assert not result.ok and "sign-off" in result.problem and "(comment)" in result.problem
    # the forger also edits the ledger entry and recomputes the chain: the signature still fails
    entry = entry_of(store, "signoff", f"attempt {made['passed']}")
    edit_payload(store, entry.seq, comment="rubber stamp")
    rewrite_chain_from(store, entry.seq)
    result = store.verify()
    assert not result.ok
    assert f"signature of the sign-off in record #{entry.seq}" in result.problem
    assert "dr-lee's key" in result.problem


def test_signoff_signed_with_another_instructors_key_fails_verify(store):
    made = populate(store)
    kim = made["kim"]
    attempt_uid = store.query("SELECT uid FROM attempts WHERE id = ?", (made["failed"],))[0][0]
    attempt_sha = store.attempt_portable_sha256(made["failed"])
    message = signoff_message(
        "forged-uid",
        attempt_uid,
        attempt_sha,
        "t-001",
        "dr-lee",
        "approved",
        "approved by Dr Lee (really Dr Kim)",
        "2026-11-03T10:00:00+00:00",
        None,
        True,
    )
    with store.transaction():  # a well-formed row and ledger entry, but signed with Kim's key
        store.insert_signoff(
            made["failed"],
            {
                "uid": "forged-uid",
                "attempt_uid": attempt_uid,
                "instructor_id": "dr-lee",
                "decision": "approved",
                "comment": "approved by Dr Lee (really Dr Kim)",
                "t_utc": "2026-11-03T10:00:00+00:00",
                "supersedes_uid": None,
                "confirmed_failed": True,
                "attempt_sha256": attempt_sha,
                "signature": kim.sign(message),
            },
        )
    result = store.verify()
    assert not result.ok
    assert "does not verify with dr-lee's key" in result.problem
    assert f"record #{len(store.ledger_entries())}" in result.problem


def test_score_of_a_signed_attempt_edited_with_recomputed_chain_fails_verify(store):
    made = populate(store)
    store.execute("UPDATE attempts SET score = 99 WHERE id = ?", (made["passed"],))
    entry = entry_of(store, "attempt", f"attempt {made['passed']}")
    edit_payload(
        store,
        entry.seq,
        score=99.0,
        content_sha256=store._attempt_content_hash(made["passed"]),
        portable_sha256=store.attempt_portable_sha256(made["passed"]),
    )
    rewrite_chain_from(store, entry.seq)
    result = store.verify()
    assert not result.ok and f"attempt {made['passed']} was altered after signing" in result.problem


def test_forged_instructor_account_fails_verify(store):
    made = populate(store)
    passphrase_hash, public_key, sealed = identity.new_account_secrets("mallory-pass", "dr-evil")
    store.execute(
        "INSERT INTO instructors (id, name, created_utc, passphrase_hash, public_key, sealed_key) "
        "VALUES ('dr-evil', 'Dr Evil', '2026-11-05', ?, ?, ?)",
        (passphrase_hash, public_key, sealed),
    )
    evil = store.sign_in("dr-evil", "mallory-pass")
    with store.transaction():
        store._append_instructor_entry(
            "dr-evil",
            "Dr Evil",
            public_key,
            evil.sign(
                {
                    "kind": "fluorosim-instructor-key/1",
                    "instructor_id": "dr-evil",
                    "name": "Dr Evil",
                    "public_key": public_key,
                }
            ),
            "2026-11-05",
            None,
        )
    store.sign_off(made["failed"], evil, "approved", "looks fine to me", True)
    result = store.verify()
    assert not result.ok
    assert "adds instructor 'dr-evil' without the signature of an existing instructor" in (
        result.problem
    )


# -- anchors --------------------------------------------------------------------------------------
def test_tail_removed_passes_alone_but_fails_against_the_expected_head(store):
    populate(store)
    before = store.verify()
    assert before.ok
    anchor = Anchor(before.head_hash, before.records_checked)
    last = store.ledger_entries()[-1]
    assert last.kind == "signoff"
    store.execute("DELETE FROM ledger WHERE seq = ?", (last.seq,))
    store.execute("DELETE FROM signoffs")
    store.connection.commit()
    assert store.verify().ok  # a chain alone cannot tell a cut tail
    result = store.verify(anchors=[anchor])
    assert not result.ok
    assert f"records #{last.seq}–#{last.seq} were removed from the end" in result.problem
    bare = store.verify(anchors=[Anchor(before.head_hash)])  # --expect-head HASH without count
    assert not bare.ok and "is not in this ledger" in bare.problem


def test_store_rewritten_from_a_record_onward_fails_against_an_earlier_head(store):
    made = populate(store)
    earlier = store.verify()
    store.execute("UPDATE attempts SET score = 88, passed = 1 WHERE id = ?", (made["failed"],))
    entry = entry_of(store, "attempt", f"attempt {made['failed']}")
    edit_payload(
        store,
        entry.seq,
        score=88.0,
        passed=True,
        content_sha256=store._attempt_content_hash(made["failed"]),
    )
    rewrite_chain_from(store, entry.seq)
    assert store.verify().ok  # the unsigned attempt and a recomputed chain fool the chain alone
    result = store.verify(anchors=[Anchor(earlier.head_hash, earlier.records_checked)])
    assert not result.ok
    assert f"rewritten at or before record #{earlier.records_checked}" in result.problem
    # records added after the anchor are fine
    fresh = store.verify()
    store.record_attempt("t-001", "sij-lateral", sample_report(60, True), "2026-11-09")
    assert store.verify(anchors=[Anchor(fresh.head_hash, fresh.records_checked)]).ok


def test_reordered_records_fail_against_the_head():
    entries = []
    previous = None
    for number in range(4):
        previous = ledger.make_entry(previous, f"t{number}", "attempt", f"a{number}", "s", {})
        entries.append(previous)
    head = Anchor(entries[-1].hash, 4)
    swapped = [entries[0], entries[2], entries[1], entries[3]]
    rebuilt, previous = [], None
    for entry in swapped:  # the forger re-chains the swapped order
        previous = ledger.make_entry(previous, entry.t_utc, entry.kind, entry.ref, entry.actor, {})
        rebuilt.append(previous)
    assert ledger.first_chain_problem(rebuilt) is None
    assert "rewritten at or before record #4" in check(rebuilt, head)
    assert check(entries, head) is None


# -- migration ------------------------------------------------------------------------------------
def test_migration_from_schema_2_keeps_old_records_and_signs_from_then_on(tmp_path):
    """A store as schema 2 wrote it (unsigned sign-off, key-less instructor) migrates and verifies."""
    path = tmp_path / "v2.sqlite"
    connection = sqlite3.connect(path)
    for version in (0, 1):
        for statement in schema.migration_statements(version, "sqlite"):
            connection.execute(statement)
    connection.execute("UPDATE schema_version SET version = 2")
    connection.execute("INSERT INTO trainees (id, name, created_utc) VALUES ('t-1', 'T', 'x')")
    connection.execute(
        "INSERT INTO instructors (id, name, created_utc) VALUES ('dr-old', 'Dr Old', 'x')"
    )
    connection.execute(
        "INSERT INTO scenarios (id, title, version) VALUES ('sij-lateral', 'sij-lateral', '1')"
    )
    old_fields = ["id", "trainee_id", "scenario_id", "started_utc", "finished_utc", "status",
                  "score", "passed", "report_json", "attempt_sha256"]  # fmt: skip
    connection.execute(
        "INSERT INTO attempts (trainee_id, scenario_id, started_utc, status, score, passed, report_json) "
        "VALUES ('t-1', 'sij-lateral', '2025-01-01', 'finished', 40.0, 0, '{}')"
    )
    row = connection.execute(f"SELECT {', '.join(old_fields)} FROM attempts").fetchone()
    content = dict(zip(old_fields, row, strict=True)) | {"metrics": [], "findings": []}
    first = ledger.make_entry(
        None, "2025-01-01", "attempt", "attempt 1", "system:fluorosim",
        {"attempt_id": 1, "content_sha256": ledger.content_sha256(content), "fields": old_fields},
    )  # fmt: skip
    connection.execute(
        "INSERT INTO signoffs (attempt_id, instructor_id, decision, comment, t_utc) "
        "VALUES (1, 'dr-old', 'needs_practice', 'again', '2025-01-02')"
    )
    second = ledger.make_entry(
        first, "2025-01-02", "signoff", "attempt 1", "instructor:dr-old",
        {"attempt_id": 1, "decision": "needs_practice", "comment": "again", "t_utc": "2025-01-02"},
    )  # fmt: skip
    for entry in (first, second):
        connection.execute(
            "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.seq, entry.t_utc, entry.kind, entry.ref, entry.actor, entry.payload,
             entry.prev_hash, entry.hash),
        )  # fmt: skip
    connection.commit()
    connection.close()
    with RecordStore.open(f"sqlite:///{path}") as store:
        assert store.schema_version() == schema.LATEST_VERSION == 3
        result = store.verify()
        assert result.ok, result.problem
        assert store.attempts("t-1")[0].uid and store.store_id()
        signoff = store.attempts("t-1")[0].signoffs[0]
        assert signoff["signed"] is False and signoff["decision"] == "needs_practice"
        with pytest.raises(RecordsError, match="has no passphrase yet"):
            store.sign_in("dr-old", "whatever-long")
        old = store.create_instructor("dr-old", "Dr Old", "a new passphrase")  # first set-up
        store.sign_off(1, old, "comment", "now signed")
        assert store.verify().ok
        # an unsigned sign-off slipped in after the migration is refused
        store.execute(
            "INSERT INTO signoffs (attempt_id, instructor_id, decision, comment, t_utc, uid) "
            "VALUES (1, 'dr-old', 'approved', 'sneaky', '2026-01-01', 'u-sneaky')"
        )
        with store.transaction():
            store._append_ledger(
                "signoff",
                "attempt 1",
                Actor("dr-old", "instructor"),
                {
                    "attempt_id": 1,
                    "decision": "approved",
                    "comment": "sneaky",
                    "t_utc": "2026-01-01",
                },
            )
        result = store.verify()
        assert not result.ok and "is a sign-off without a signature" in result.problem
