"""Export bundles: a trainee's attempts, attempt files and sign-offs, moved between record stores.

A physician who practises on a laptop brings the attempts to the lab; a lab moves a trainee to
another site. A bundle is a zip file:

- ``manifest.json``: format, version, trainee, record count and head hash;
- ``records.jsonl``: one record a line, hash-chained like the ledger (each record's ``hash`` is
  SHA-256 over the previous record's hash, its number, kind and canonical-JSON data): a header (the
  trainee and the source store with its ledger head), the public keys of the instructors who signed,
  each attempt (its portable content, metrics and findings) followed by its sign-offs (with their
  Ed25519 signatures);
- ``files/<uid>.jsonl``: the attempt files.

Import checks everything before it writes anything and refuses an altered bundle naming the first bad
record: a record whose hash no longer matches, a chain that skips, a manifest whose count or head
disagrees with the chain (records removed from the end), an attempt file whose SHA-256 differs, a
sign-off whose signature does not verify. ``expect_head`` compares with the head printed at export,
which also catches a bundle rewritten with a recomputed chain. Attempts and sign-offs keep their
uids, so importing the same bundle twice adds nothing. Sign-offs by an instructor these records do
not know need a local instructor to vouch for that instructor's key.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluorosim.scenarios.records import identity, ledger
from fluorosim.scenarios.records.database import (
    PORTABLE_ATTEMPT_FIELDS,
    RecordsError,
    RecordStore,
    SignedInInstructor,
    instructor_key_message,
    portable_attempt_sha256,
    signoff_message,
    utc_now,
)

BUNDLE_FORMAT = "fluorosim-bundle"
BUNDLE_VERSION = 1
MAX_MEMBER_BYTES = 512 * 1024 * 1024


class BundleError(RecordsError):
    """A bundle that cannot be written, read or trusted; the text names the file and record."""


@dataclass
class BundleSummary:
    """What an export wrote or an import found and added."""

    path: Path
    trainee_id: str
    records: int
    head: str
    attempts: int = 0
    signoffs: int = 0
    added_attempts: int = 0
    added_signoffs: int = 0
    added_instructors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def record_hash(prev: str, seq: int, kind: str, data: Any) -> str:
    """The chained hash of one bundle record."""
    return ledger.content_sha256({"prev": prev, "seq": seq, "kind": kind, "data": data})


def describe(record: dict[str, Any]) -> str:
    """Human words for a bundle record, e.g. 'bundle record #4 (attempt 1f3e… of t-1, …)'."""
    data: dict[str, Any] = record["data"] if isinstance(record.get("data"), dict) else {}
    kind = record.get("kind")
    seq = record.get("seq")
    if kind == "attempt":
        what = (
            f"attempt {str(data.get('uid'))[:8]}… of {data.get('trainee_id')} at "
            f"{data.get('scenario_id')}, started {data.get('started_utc')}"
        )
    elif kind == "signoff":
        what = (
            f"sign-off '{data.get('decision')}' by {data.get('instructor_id')} of attempt "
            f"{str(data.get('attempt_uid'))[:8]}…"
        )
    elif kind == "instructor":
        what = f"instructor {data.get('instructor_id')}"
    else:
        what = str(kind)
    return f"bundle record #{seq} ({what})"


def default_import_directory() -> Path:
    """Where imported attempt files go: FLUOROSIM_ATTEMPTS_DIR or the per-user data directory."""
    override = os.environ.get("FLUOROSIM_ATTEMPTS_DIR")
    if override:
        return Path(override) / "imported"
    import platformdirs

    return Path(platformdirs.user_data_dir("fluorosim")) / "attempts" / "imported"


# -- export ---------------------------------------------------------------------------------------
def export_bundle(store: RecordStore, trainee_id: str, out: Path) -> BundleSummary:
    """Write ``trainee_id``'s attempts with files, sign-offs and keys to ``out`` (refused when the
    store does not verify: a bundle must not launder tampered records)."""
    trainees = {t["id"]: t for t in store.trainees()}
    if trainee_id not in trainees:
        raise BundleError(f"unknown trainee '{trainee_id}'")
    verification = store.verify()
    if not verification.ok:
        raise BundleError(f"these records do not verify, nothing exported: {verification.problem}")
    trainee = trainees[trainee_id]
    summary = BundleSummary(out, trainee_id, 0, ledger.GENESIS_HASH)
    records: list[tuple[str, dict[str, Any]]] = [
        (
            "header",
            {
                "format": BUNDLE_FORMAT,
                "version": BUNDLE_VERSION,
                "trainee": {
                    "id": trainee["id"],
                    "name": trainee["name"],
                    "is_expert": trainee["is_expert"],
                },
                "source_store": store.store_id(),
                "source_head": verification.head_hash,
                "source_records": verification.records_checked,
                "created_utc": utc_now(),
            },
        )
    ]
    keys = _ledger_keys(store)
    body: list[tuple[str, dict[str, Any]]] = []
    files: dict[str, Path] = {}
    signers: list[str] = []
    for row in store.attempts(trainee_id):
        portable = store.attempt_portable_content(row.id)
        assert portable is not None
        content, metric_rows, finding_rows = portable
        data = dict(content)
        data["metrics"] = metric_rows
        data["findings"] = finding_rows
        data["portable_sha256"] = portable_attempt_sha256(content, metric_rows, finding_rows)
        data["file"] = None
        if row.attempt_file and content["attempt_sha256"] and Path(row.attempt_file).is_file():
            member = f"files/{content['uid']}{Path(row.attempt_file).suffix or '.jsonl'}"
            files[member] = Path(row.attempt_file)
            data["file"] = member
        elif content["attempt_sha256"]:
            summary.notes.append(
                f"attempt {row.id}: its attempt file {row.attempt_file} is missing; exported without it"
            )
        body.append(("attempt", data))
        summary.attempts += 1
        for signoff in _signoff_rows(store, row.id):
            if not signoff["signature"]:
                summary.notes.append(
                    f"attempt {row.id}: an unsigned sign-off from before signatures existed "
                    f"({signoff['decision']} by {signoff['instructor_id']}) stays in these records only"
                )
                continue
            signoff["attempt_uid"] = content["uid"]
            body.append(("signoff", signoff))
            summary.signoffs += 1
            if signoff["instructor_id"] not in signers:
                signers.append(signoff["instructor_id"])
    for instructor_id in signers:
        records.append(("instructor", keys[instructor_id]))
    records.extend(body)
    lines, head = [], ledger.GENESIS_HASH
    for seq, (kind, data) in enumerate(records, 1):
        digest = record_hash(head, seq, kind, data)
        lines.append(
            ledger.canonical_json(
                {"seq": seq, "kind": kind, "data": data, "prev": head, "hash": digest}
            )
        )
        head = digest
    manifest = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "trainee": trainee_id,
        "records": len(lines),
        "head": head,
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary = out.with_name(out.name + ".partial")
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, indent=1) + "\n")
            archive.writestr("records.jsonl", "\n".join(lines) + "\n")
            for member, path in files.items():
                archive.write(path, member)
        os.replace(temporary, out)
    except OSError as error:
        raise BundleError(f"cannot write the bundle {out}: {error.strerror or error}") from error
    summary.records, summary.head = len(lines), head
    return summary


def _ledger_keys(store: RecordStore) -> dict[str, dict[str, Any]]:
    keys: dict[str, dict[str, Any]] = {}
    for entry in store.ledger_entries():
        if entry.kind == "instructor":
            payload = json.loads(entry.payload)
            keys[payload["instructor_id"]] = {
                "instructor_id": payload["instructor_id"],
                "name": payload["name"],
                "public_key": payload["public_key"],
                "key_signature": payload["key_signature"],
            }
    return keys


def _signoff_rows(store: RecordStore, attempt_id: int) -> list[dict[str, Any]]:
    columns = (
        "uid",
        "instructor_id",
        "decision",
        "comment",
        "t_utc",
        "supersedes_uid",
        "confirmed_failed",
        "attempt_sha256",
        "signature",
    )
    rows = store.query(
        f"SELECT {', '.join(columns)} FROM signoffs WHERE attempt_id = ? ORDER BY id", (attempt_id,)
    )
    result = []
    for row in rows:
        signoff = dict(zip(columns, row, strict=True))
        signoff["confirmed_failed"] = bool(signoff["confirmed_failed"])
        result.append(signoff)
    return result


# -- reading and checking -------------------------------------------------------------------------
@dataclass
class CheckedBundle:
    """A bundle whose every record, file and signature checked out."""

    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]]
    head: str
    files: dict[str, bytes]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]


def read_bundle(path: Path, expect_head: str | None = None) -> CheckedBundle:
    """Open and check a bundle; BundleError names the first bad record."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError as error:
        raise BundleError(f"{path}: no such file") from error
    except (zipfile.BadZipFile, OSError) as error:
        raise BundleError(f"{path}: not a fluorosim bundle (not a zip file: {error})") from error
    with archive:
        names = set(archive.namelist())
        for required in ("manifest.json", "records.jsonl"):
            if required not in names:
                raise BundleError(f"{path}: not a fluorosim bundle ({required} is missing)")
        try:
            manifest = json.loads(_member(archive, "manifest.json"))
            lines = _member(archive, "records.jsonl").decode("utf-8").splitlines()
        except (ValueError, UnicodeDecodeError) as error:
            raise BundleError(f"{path}: unreadable manifest or records ({error})") from error
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{path}: manifest.json is not a {BUNDLE_FORMAT} manifest")
        if manifest.get("version") != BUNDLE_VERSION:
            raise BundleError(
                f"{path}: bundle version {manifest.get('version')} (this fluorosim reads {BUNDLE_VERSION})"
            )
        records = _check_chain(path, lines)
        head = records[-1]["hash"] if records else ledger.GENESIS_HASH
        expected_count = manifest.get("records")
        if expected_count != len(records):
            if isinstance(expected_count, int) and expected_count > len(records):
                raise BundleError(
                    f"{path}: the bundle ends at record #{len(records)} but was exported with "
                    f"{expected_count} records: records #{len(records) + 1}–#{expected_count} were "
                    "removed from the end"
                )
            raise BundleError(
                f"{path}: the manifest says {expected_count} records, the bundle holds {len(records)}"
            )
        if manifest.get("head") != head:
            raise BundleError(
                f"{path}: the chain ends in {head[:12]}… but the manifest's head is "
                f"{str(manifest.get('head'))[:12]}…: {describe(records[-1])} or the manifest was altered"
            )
        if expect_head is not None and expect_head.lower() != head:
            raise BundleError(
                f"{path}: its head {head} is not the expected head {expect_head}: the bundle was "
                "rewritten (records altered, removed or reordered and the chain recomputed)"
            )
        if not records or records[0]["kind"] != "header":
            raise BundleError(f"{path}: bundle record #1 is not the bundle header")
        files = {
            r["data"]["file"]: _member(archive, r["data"]["file"], path, r)
            for r in records
            if r["kind"] == "attempt" and r["data"].get("file")
        }
    bundle = CheckedBundle(path, records[0]["data"], records, head, files)
    _check_contents(bundle)
    return bundle


def _member(
    archive: zipfile.ZipFile,
    name: str,
    path: Path | None = None,
    record: dict[str, Any] | None = None,
) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError as error:
        where = f"{describe(record)}: " if record else ""
        raise BundleError(f"{path}: {where}{name} is missing from the bundle") from error
    if info.file_size > MAX_MEMBER_BYTES:
        raise BundleError(f"{path}: {name} is too large ({info.file_size} bytes)")
    return archive.read(info)


def _check_chain(path: Path, lines: list[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    previous = ledger.GENESIS_HASH
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            seq, kind, data = record["seq"], record["kind"], record["data"]
            prev, digest = record["prev"], record["hash"]
        except (ValueError, KeyError, TypeError) as error:
            raise BundleError(
                f"{path}: bundle record #{number} is unreadable ({error}): the bundle was altered"
            ) from error
        if seq != number:
            raise BundleError(
                f"{path}: bundle record #{number} is missing or out of order (found #{seq} in its "
                "place): records were removed or reordered"
            )
        if prev != previous:
            raise BundleError(
                f"{path}: {describe(record)} does not link to the record before it: a record "
                "before it was altered, removed or reordered"
            )
        if record_hash(prev, seq, kind, data) != digest:
            raise BundleError(
                f"{path}: {describe(record)} was altered (its content no longer matches its hash)"
            )
        records.append(record)
        previous = digest
    return records


def _check_contents(bundle: CheckedBundle) -> None:
    """Files, portable hashes and signatures of a bundle whose chain links."""
    keys: dict[str, str] = {}
    attempts: dict[str, str] = {}  # uid -> portable hash (recomputed)
    for record in bundle.records[1:]:
        data, where = record["data"], f"{bundle.path}: {describe(record)}"
        try:
            if record["kind"] == "instructor":
                message = instructor_key_message(
                    data["instructor_id"], data["name"], data["public_key"]
                )
                if not identity.signature_valid(data["public_key"], message, data["key_signature"]):
                    raise BundleError(f"{where}: the key does not sign its own account")
                keys[data["instructor_id"]] = data["public_key"]
            elif record["kind"] == "attempt":
                content = {name: data[name] for name in PORTABLE_ATTEMPT_FIELDS}
                portable = portable_attempt_sha256(content, data["metrics"], data["findings"])
                if portable != data["portable_sha256"]:
                    raise BundleError(f"{where}: its content does not match its recorded hash")
                if data.get("file"):
                    actual = hashlib.sha256(bundle.files[data["file"]]).hexdigest()
                    if actual != data["attempt_sha256"]:
                        raise BundleError(f"{where}: its attempt file {data['file']} was altered")
                attempts[data["uid"]] = portable
            elif record["kind"] == "signoff":
                trainee_id = bundle.header["trainee"]["id"]
                message = signoff_message(
                    data["uid"],
                    data["attempt_uid"],
                    attempts.get(data["attempt_uid"], "?"),
                    trainee_id,
                    data["instructor_id"],
                    data["decision"],
                    data["comment"],
                    data["t_utc"],
                    data["supersedes_uid"],
                    data["confirmed_failed"],
                )
                if not identity.signature_valid(
                    keys.get(data["instructor_id"]), message, data["signature"]
                ):
                    raise BundleError(
                        f"{where}: its signature does not verify with {data['instructor_id']}'s key "
                        "(the sign-off or its attempt was altered)"
                    )
            else:
                raise BundleError(f"{where}: unknown record kind '{record['kind']}'")
        except (KeyError, TypeError, ValueError) as error:
            raise BundleError(f"{where}: missing or malformed field ({error})") from error


# -- import ---------------------------------------------------------------------------------------
def import_bundle(
    store: RecordStore,
    path: Path,
    files_dir: Path | None = None,
    expect_head: str | None = None,
    vouch: SignedInInstructor | None = None,
) -> BundleSummary:
    """Check ``path`` and add what these records do not hold yet; returns what was added."""
    bundle = read_bundle(path, expect_head)
    header = bundle.header
    trainee = header["trainee"]
    summary = BundleSummary(path, trainee["id"], len(bundle.records), bundle.head)
    if store.is_instructor(trainee["id"]):
        raise BundleError(
            f"{path}: the bundle's trainee '{trainee['id']}' is an instructor in these records"
        )
    instructors = {r["data"]["instructor_id"]: r["data"] for r in bundle.of_kind("instructor")}
    new_signoffs = [
        r["data"]
        for r in bundle.of_kind("signoff")
        if not store.query("SELECT 1 FROM signoffs WHERE uid = ?", (r["data"]["uid"],))
    ]
    to_vouch = []
    for instructor_id in sorted({s["instructor_id"] for s in new_signoffs}):
        data = instructors[instructor_id]
        rows = store.query("SELECT public_key FROM instructors WHERE id = ?", (instructor_id,))
        if store.is_trainee(instructor_id):
            raise BundleError(f"{path}: sign-offs by '{instructor_id}', a trainee in these records")
        if rows and rows[0][0]:
            if rows[0][0] != data["public_key"]:
                raise BundleError(
                    f"{path}: instructor '{instructor_id}' signed with key "
                    f"{identity.fingerprint(data['public_key'])} but has key "
                    f"{identity.fingerprint(rows[0][0])} in these records"
                )
            continue
        if vouch is None:
            raise BundleError(
                f"{path}: the bundle holds sign-offs by '{instructor_id}' ({data['name']}, key "
                f"{identity.fingerprint(data['public_key'])}), who has no account in these records; "
                "a local instructor must vouch for that key (--vouch THEIR-ID)"
            )
        to_vouch.append(data)
    target_dir = files_dir or default_import_directory()
    written: list[Path] = []
    store.add_trainee(trainee["id"], trainee["name"], is_expert=bool(trainee.get("is_expert")))
    for record in bundle.of_kind("attempt"):
        store.ensure_scenario(record["data"]["scenario_id"])
    origin = {"store": header.get("source_store"), "bundle_head": bundle.head}
    try:
        with store.transaction():
            for data in to_vouch:
                assert vouch is not None
                store._require_signed_in(vouch, "vouch for an instructor's key")
                store.execute(
                    "INSERT INTO instructors (id, name, created_utc, public_key, created_by) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, created_by = excluded.created_by",
                    (data["instructor_id"], data["name"], utc_now(), data["public_key"], vouch.id),
                )
                store._append_instructor_entry(
                    data["instructor_id"],
                    data["name"],
                    data["public_key"],
                    data["key_signature"],
                    utc_now(),
                    vouch,
                    imported_from=bundle.head,
                )
                summary.added_instructors.append(data["instructor_id"])
            local_ids: dict[str, int] = {}
            for record in bundle.records[1:]:
                data = record["data"]
                if record["kind"] == "attempt":
                    summary.attempts += 1
                    local_ids[data["uid"]] = _import_attempt(
                        store, bundle, record, target_dir, origin, written, summary
                    )
                elif record["kind"] == "signoff":
                    summary.signoffs += 1
                    if store.query("SELECT 1 FROM signoffs WHERE uid = ?", (data["uid"],)):
                        continue
                    store.insert_signoff(local_ids[data["attempt_uid"]], dict(data))
                    summary.added_signoffs += 1
    except BaseException:
        for file in written:
            file.unlink(missing_ok=True)
        raise
    return summary


def _import_attempt(
    store: RecordStore,
    bundle: CheckedBundle,
    record: dict[str, Any],
    target_dir: Path,
    origin: dict[str, Any],
    written: list[Path],
    summary: BundleSummary,
) -> int:
    data = record["data"]
    existing = store.query("SELECT id FROM attempts WHERE uid = ?", (data["uid"],))
    if existing:
        attempt_id = int(existing[0][0])
        if store.attempt_portable_sha256(attempt_id) != data["portable_sha256"]:
            raise BundleError(
                f"{bundle.path}: {describe(record)} is attempt {attempt_id} in these records, with "
                "different content"
            )
        return attempt_id
    attempt_file = None
    if data.get("file"):
        target_dir.mkdir(parents=True, exist_ok=True)
        attempt_file = target_dir / Path(data["file"]).name
        if not attempt_file.exists():
            attempt_file.write_bytes(bundle.files[data["file"]])
            written.append(attempt_file)
    content = {name: data[name] for name in PORTABLE_ATTEMPT_FIELDS}
    attempt_id = store.insert_attempt(
        content, data["metrics"], data["findings"], attempt_file, imported_from=origin
    )
    summary.added_attempts += 1
    return attempt_id
