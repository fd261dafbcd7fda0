"""Issue #15 item 5: a trainee's attempts travel between stores in a bundle with their hash chain.

Export from a laptop's SQLite store, import into the lab's store (SQLite, and PostgreSQL when a
server is configured): round trip, altered bundles refused naming the first bad record, a second
import adds nothing, sign-offs by an unknown instructor need a local instructor to vouch.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from fluorosim.scenarios.records import ledger
from fluorosim.scenarios.records.bundle import (
    BundleError,
    export_bundle,
    import_bundle,
    record_hash,
)
from fluorosim.scenarios.records.database import RecordsError, RecordStore
from tests.scenarios.records.conftest import make_instructor, sample_report


@pytest.fixture
def laptop(tmp_path):
    """A source store: trainee t-1 with two attempts (one with its file) and a signed sign-off."""
    attempt_file = tmp_path / "laptop-attempt.jsonl"
    attempt_file.write_text('{"format": "fluorosim-attempt"}\n{"t_s": 0.0, "shot": 1}\n')
    with RecordStore.open(f"sqlite:///{tmp_path / 'laptop.sqlite'}") as store:
        store.add_trainee("t-1", "Sam Trainee")
        lee = make_instructor(store, "dr-lee", "Dr Lee")
        first = store.record_attempt(
            "t-1", "sij-lateral", sample_report(41.5, False), "2026-11-01T10:00:00+00:00",
            "2026-11-01T10:20:00+00:00", attempt_file,
        )  # fmt: skip
        second = store.record_attempt(
            "t-1", "teld-l4l5", sample_report(77.25, True), "2026-11-02T10:00:00+00:00"
        )
        store.sign_off(second, lee, "approved", "Good docking.")
        store.sign_off(first, lee, "needs_practice", "Outlet view missing.")
        yield store


def rewrite_bundle(path, records, manifest=None, drop_files=False):
    """Write a bundle with ``records`` (re-chained when each has no 'hash' change requested)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["records.jsonl"] = (
        "\n".join(ledger.canonical_json(r) for r in records) + "\n"
    ).encode()
    if manifest is not None:
        members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def read_records(path):
    with zipfile.ZipFile(path) as archive:
        lines = archive.read("records.jsonl").decode().splitlines()
        manifest = json.loads(archive.read("manifest.json"))
    return [json.loads(line) for line in lines], manifest


def rechain(records):
    previous = ledger.GENESIS_HASH
    for record in records:
        record["prev"] = previous
        record["hash"] = record_hash(previous, record["seq"], record["kind"], record["data"])
        previous = record["hash"]
    return previous


def test_round_trip_vouch_and_idempotent_second_import(laptop, store, tmp_path):
    bundle = tmp_path / "t-1.fsb"
    exported = export_bundle(laptop, "t-1", bundle)
    assert (exported.attempts, exported.signoffs, exported.records) == (2, 2, 6)
    files = tmp_path / "lab-files"
    with pytest.raises(BundleError, match="sign-offs by 'dr-lee'.*must vouch"):
        import_bundle(store, bundle, files)
    assert store.attempts() == []
    ward = make_instructor(store, "dr-ward", "Dr Ward")
    summary = import_bundle(store, bundle, files, expect_head=exported.head, vouch=ward)
    assert (summary.added_attempts, summary.added_signoffs) == (2, 2)
    assert summary.added_instructors == ["dr-lee"]
    rows = store.attempts("t-1")
    assert [(r.scenario_id, r.score, r.passed) for r in rows] == [
        ("sij-lateral", 41.5, False),
        ("teld-l4l5", 77.25, True),
    ]
    assert [r.uid for r in rows] == [r.uid for r in laptop.attempts("t-1")]
    assert rows[0].attempt_file and (files / f"{rows[0].uid}.jsonl").read_text().startswith(
        '{"format"'
    )
    assert rows[1].signoffs[0]["comment"] == "Good docking." and rows[1].signoffs[0]["signed"]
    result = store.verify()
    assert result.ok, result.problem
    assert result.signatures_checked >= 5  # ward, lee (own + vouch), two imported sign-offs
    entries_before = len(store.ledger_entries())
    again = import_bundle(store, bundle, files)
    assert (again.added_attempts, again.added_signoffs) == (0, 0)
    assert len(store.ledger_entries()) == entries_before and len(store.attempts()) == 2
    with pytest.raises(RecordsError, match="account in another store only"):
        store.sign_in("dr-lee", "pass-dr-lee")  # the key came alone: Dr Lee signs on the laptop


def test_altered_bundle_is_refused_naming_the_first_bad_record(laptop, store, tmp_path):
    bundle = tmp_path / "t-1.fsb"
    export_bundle(laptop, "t-1", bundle)
    records, manifest = read_records(bundle)
    attempt_seq = next(r["seq"] for r in records if r["kind"] == "attempt")
    records[attempt_seq - 1]["data"]["score"] = 95.0
    rewrite_bundle(bundle, records)
    with pytest.raises(
        BundleError, match=rf"bundle record #{attempt_seq} \(attempt .* was altered"
    ):
        import_bundle(store, bundle, tmp_path / "files")
    assert store.attempts() == []


def test_bundle_with_its_tail_removed_or_rechained_is_refused(laptop, store, tmp_path):
    bundle = tmp_path / "t-1.fsb"
    exported = export_bundle(laptop, "t-1", bundle)
    records, manifest = read_records(bundle)
    rewrite_bundle(bundle, records[:-1])
    with pytest.raises(BundleError, match="records #6–#6 were removed from the end"):
        import_bundle(store, bundle, tmp_path / "files")
    # a forger drops the last sign-off and fixes chain and manifest: only the expected head tells
    head = rechain(records[:-1])
    rewrite_bundle(bundle, records[:-1], manifest | {"records": 5, "head": head})
    with pytest.raises(BundleError, match="is not the expected head"):
        import_bundle(store, bundle, tmp_path / "files", expect_head=exported.head)
    assert store.attempts() == []


def test_altered_attempt_file_or_score_under_a_signature_is_refused(laptop, store, tmp_path):
    bundle = tmp_path / "t-1.fsb"
    export_bundle(laptop, "t-1", bundle)
    records, manifest = read_records(bundle)
    signed = next(r for r in records if r["kind"] == "attempt" and r["data"]["passed"])
    signed["data"]["score"] = 99.0  # and the forger fixes every hash
    from fluorosim.scenarios.records.database import (
        PORTABLE_ATTEMPT_FIELDS,
        portable_attempt_sha256,
    )

    content = {name: signed["data"][name] for name in PORTABLE_ATTEMPT_FIELDS}
    signed["data"]["portable_sha256"] = portable_attempt_sha256(
        content, signed["data"]["metrics"], signed["data"]["findings"]
    )
    head = rechain(records)
    rewrite_bundle(bundle, records, manifest | {"head": head})
    with pytest.raises(
        BundleError, match=r"sign-off 'approved' by dr-lee.*signature does not verify"
    ):
        import_bundle(store, bundle, tmp_path / "files")
    export_bundle(laptop, "t-1", bundle)
    with zipfile.ZipFile(bundle) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    member = next(name for name in members if name.startswith("files/"))
    members[member] += b'{"t_s": 1.0, "shot": 1}\n'
    with zipfile.ZipFile(bundle, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(BundleError, match="its attempt file .* was altered"):
        import_bundle(store, bundle, tmp_path / "files")


def test_tampered_store_is_not_exported_and_junk_is_not_a_bundle(laptop, tmp_path):
    junk = tmp_path / "junk.fsb"
    junk.write_text("not a zip")
    with (
        RecordStore.open(f"sqlite:///{tmp_path / 'lab.sqlite'}") as lab,
        pytest.raises(BundleError, match="not a fluorosim bundle"),
    ):
        import_bundle(lab, junk, tmp_path / "files")
    laptop.execute("UPDATE attempts SET score = 90 WHERE id = 1")
    laptop.connection.commit()
    with pytest.raises(BundleError, match="do not verify, nothing exported: attempt 1 was altered"):
        export_bundle(laptop, "t-1", tmp_path / "x.fsb")
