"""Anchors: the ledger's head hash and record count, kept somewhere the records store cannot rewrite.

A hash chain on its own only catches careless edits: whoever can write the database can also
recompute every hash after the record they changed, or drop the newest records. What they cannot
change is a head hash written down earlier somewhere else: on a printed report, in a second file
(``--anchor-file``, one JSON line per anchor), or in a table on another PostgreSQL server
(``--anchor-db``). A store is consistent with an anchor when the anchored head is still one of its
ledger entries, at the anchored position; records added since are fine, anything else (records
removed from the end, a record altered, records reordered, the chain recomputed from any record
onward) is named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fluorosim.scenarios.records.ledger import GENESIS_HASH, LedgerEntry

HEX_DIGITS = set("0123456789abcdef")


class AnchorError(Exception):
    """An anchor that cannot be read or written (bad hash, unreadable file, unreachable server)."""


@dataclass(frozen=True)
class Anchor:
    """A head hash recorded earlier: with its record count and time when known, and where from."""

    head: str
    records: int | None = None
    t_utc: str | None = None
    source: str = "--expect-head"
    store_id: str | None = None

    def describe(self) -> str:
        """e.g. 'the head 3fa2…c0 anchored in anchors.jsonl at 2026-12-01T10:00:00+00:00 (12 records)'."""
        parts = [f"the head {self.head[:12]}… from {self.source}"]
        if self.t_utc:
            parts.append(f"at {self.t_utc}")
        if self.records is not None:
            parts.append(f"({self.records} records)")
        return " ".join(parts)


def parse_head(text: str, source: str = "--expect-head") -> Anchor:
    """An anchor from a head hash given by hand (64 hex digits, optionally ``HASH:COUNT``)."""
    head, _, count = text.strip().lower().partition(":")
    if len(head) != 64 or not set(head) <= HEX_DIGITS:
        raise AnchorError(f"{source}: '{text}' is not a ledger head (64 hexadecimal digits)")
    if count and not count.isdigit():
        raise AnchorError(f"{source}: '{count}' after the hash is not a record count")
    return Anchor(head, int(count) if count else None, None, source)


def check(entries: list[LedgerEntry], anchor: Anchor) -> str | None:
    """The problem in words when ``entries`` (a chain that links) is not an extension of the anchor."""
    if anchor.head == GENESIS_HASH:
        return None
    position = {entry.hash: entry.seq for entry in entries}
    seq = position.get(anchor.head)
    if seq is not None and (anchor.records is None or seq == anchor.records):
        return None
    count = len(entries)
    if anchor.records is not None and count < anchor.records:
        return (
            f"the ledger has {count} records but {anchor.describe()} had {anchor.records}: "
            f"records #{count + 1}–#{anchor.records} were removed from the end (or the ledger was rewritten)"
        )
    if anchor.records is not None and anchor.records >= 1:
        entry = entries[anchor.records - 1]
        return (
            f"{anchor.describe()} does not match {entry.describe()}: the ledger was rewritten at or "
            f"before record #{anchor.records} (records altered, removed or reordered and the chain recomputed)"
        )
    return (
        f"{anchor.describe()} is not in this ledger ({count} records): records were removed from the "
        "end, or records were altered, reordered or rewritten with a recomputed chain"
    )


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- a second file --------------------------------------------------------------------------------
def read_anchor_file(path: Path, store_id: str | None = None) -> list[Anchor]:
    """The anchors of ``store_id`` (all when None) in an anchor file; none when it does not exist."""
    if not path.exists():
        return []
    anchors: list[Anchor] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise AnchorError(f"cannot read the anchor file {path}: {error}") from error
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            anchor = Anchor(
                parse_head(str(data["head"])).head,
                int(data["records"]),
                str(data["t_utc"]),
                f"{path.name} line {number}",
                data.get("store_id"),
            )
        except (ValueError, KeyError, TypeError, AnchorError) as error:
            raise AnchorError(
                f"{path} line {number}: not an anchor line (expected JSON with head, records, t_utc): {error}"
            ) from error
        if store_id is None or anchor.store_id in (None, store_id):
            anchors.append(anchor)
    return anchors


def append_anchor_file(path: Path, head: str, records: int, store_id: str) -> Anchor:
    """Append the current head, record count and time as one JSON line (the file is created)."""
    anchor = Anchor(head, records, utc_now(), path.name, store_id)
    line = json.dumps(
        {"t_utc": anchor.t_utc, "records": records, "head": head, "store_id": store_id},
        sort_keys=True,
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as error:
        raise AnchorError(f"cannot write the anchor file {path}: {error.strerror}") from error
    return anchor


# -- a table on another PostgreSQL server ---------------------------------------------------------
ANCHOR_TABLE = """CREATE TABLE IF NOT EXISTS fluorosim_anchors (
    store_id TEXT NOT NULL, t_utc TEXT NOT NULL, records INTEGER NOT NULL, head TEXT NOT NULL)"""


def _connect(url: str) -> Any:
    if not url.startswith(("postgresql://", "postgres://")):
        raise AnchorError(f"--anchor-db must be a postgresql:// URL, not '{url}'")
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as error:
        from fluorosim.scenarios.records.database import redact

        raise AnchorError(
            f"cannot connect to the anchor database {redact(url)}: {error}".strip()
        ) from error


def read_anchor_db(url: str, store_id: str) -> list[Anchor]:
    """The anchors of ``store_id`` in the ``fluorosim_anchors`` table of another database."""
    with _connect(url) as connection:
        connection.execute(ANCHOR_TABLE)
        rows = connection.execute(
            "SELECT t_utc, records, head FROM fluorosim_anchors WHERE store_id = %s ORDER BY t_utc",
            (store_id,),
        ).fetchall()
    return [Anchor(r[2], int(r[1]), r[0], "the anchor database", store_id) for r in rows]


def append_anchor_db(url: str, head: str, records: int, store_id: str) -> Anchor:
    """Insert the current head, record count and time into the anchor database."""
    anchor = Anchor(head, records, utc_now(), "the anchor database", store_id)
    with _connect(url) as connection:
        connection.execute(ANCHOR_TABLE)
        connection.execute(
            "INSERT INTO fluorosim_anchors (store_id, t_utc, records, head) VALUES (%s, %s, %s, %s)",
            (store_id, anchor.t_utc, records, head),
        )
    return anchor
