"""The hash-chained ledger: every finished attempt, sign-off and instructor action, in order.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's canonical content
(kind, reference, actor, time and a canonical-JSON payload). Altering any stored entry breaks its
own hash; removing one breaks the chain at the next; altering an attempt row breaks the link between
the row and the ``content_sha256`` the ledger recorded for it. Rewriting the whole chain changes the
head hash, which every exported report prints, so a committee holding an earlier report sees it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(payload: Any) -> str:
    """JSON with sorted keys, no whitespace and floats rounded to 9 significant digits."""

    def normalise(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.9g}")
        if isinstance(value, dict):
            return {str(k): normalise(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [normalise(v) for v in value]
        return value

    return json.dumps(normalise(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def content_sha256(payload: Any) -> str:
    """SHA-256 of the canonical JSON of ``payload``."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row."""

    seq: int
    t_utc: str
    kind: str
    ref: str
    actor: str
    payload: str  # canonical JSON
    prev_hash: str
    hash: str

    def describe(self) -> str:
        """Human words for this record, e.g. 'record #7 (signoff of attempt 3 by dr-lee)'."""
        return f"record #{self.seq} ({self.kind} {self.ref} by {self.actor} at {self.t_utc})"


def entry_hash(
    prev_hash: str, seq: int, t_utc: str, kind: str, ref: str, actor: str, payload: str
) -> str:
    """The chained hash of one entry."""
    text = "\x1f".join([prev_hash, str(seq), t_utc, kind, ref, actor, payload])
    return hashlib.sha256(text.encode()).hexdigest()


def make_entry(
    previous: LedgerEntry | None, t_utc: str, kind: str, ref: str, actor: str, payload: Any
) -> LedgerEntry:
    """The next entry after ``previous`` (None for the first)."""
    seq = 1 if previous is None else previous.seq + 1
    prev_hash = GENESIS_HASH if previous is None else previous.hash
    body = canonical_json(payload)
    return LedgerEntry(
        seq,
        t_utc,
        kind,
        ref,
        actor,
        body,
        prev_hash,
        entry_hash(prev_hash, seq, t_utc, kind, ref, actor, body),
    )


def first_chain_problem(entries: list[LedgerEntry]) -> str | None:
    """The first break in the chain in words, or None when every entry links and hashes right."""
    previous_hash = GENESIS_HASH
    expected_seq = 1
    for entry in entries:
        if entry.seq != expected_seq:
            return f"record #{expected_seq} was removed (the ledger jumps from #{expected_seq - 1} to #{entry.seq})"
        if entry.prev_hash != previous_hash:
            return f"{entry.describe()} does not link to the record before it: a record before it was altered or removed"
        recomputed = entry_hash(
            entry.prev_hash,
            entry.seq,
            entry.t_utc,
            entry.kind,
            entry.ref,
            entry.actor,
            entry.payload,
        )
        if recomputed != entry.hash:
            return f"{entry.describe()} was altered (its content no longer matches its hash)"
        previous_hash = entry.hash
        expected_seq += 1
    return None
