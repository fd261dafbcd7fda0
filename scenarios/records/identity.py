"""Instructor identity: passphrases kept only as slow salted hashes, and Ed25519 keys sealed by them.

An instructor account holds three things: an scrypt hash of the passphrase (to refuse a wrong one
with a clear message), the Ed25519 public key (also written into the ledger when the account is
created) and the private key *sealed* by the passphrase: AES-256-GCM under a key that scrypt derives
from the passphrase with a salt of its own, bound to the instructor's ID. The private key is only
ever unsealed in memory after the passphrase is given; sign-offs are signed with it, so someone with
write access to the database but without the passphrase cannot make a signature that verifies.

scrypt parameters: N = 2^15, r = 8, p = 3 (32 MiB), one of the equivalent minimum settings listed
by the OWASP Password Storage Cheat Sheet (N=2^17/p=1, N=2^16/p=2, N=2^15/p=3, all with r=8), above
the interactive-login setting of Percival's scrypt paper (2009, N=2^14, r=8, p=1). The parameters
are stored with each hash and sealed key, so they can be raised later without breaking accounts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fluorosim.scenarios.records.ledger import canonical_json

SCRYPT_LOG2_N = 15
SCRYPT_R = 8
SCRYPT_P = 3
SALT_BYTES = 16
MIN_PASSPHRASE_CHARS = 8


class IdentityError(Exception):
    """A wrong passphrase, or a stored hash or sealed key that cannot be read."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def check_passphrase_strength(passphrase: str) -> None:
    """Refuse passphrases too short to resist guessing on a stolen database."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise IdentityError(
            f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters "
            f"(it has {len(passphrase)})"
        )


def _derive(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> tuple[bytes, bytes]:
    """(verifier, sealing key): the two halves of one 64-byte scrypt output."""
    n = 1 << log2_n
    out = hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=64
    )
    return out[:32], out[32:]


def _seal_aad(instructor_id: str) -> bytes:
    return f"fluorosim instructor key of {instructor_id}".encode()


def new_account_secrets(passphrase: str, instructor_id: str) -> tuple[str, str, str]:
    """A new account's (passphrase hash, Ed25519 public key hex, private key sealed by the passphrase).

    One scrypt run with a fresh salt gives 64 bytes: the first half is stored as the passphrase hash
    (``scrypt$log2N$r$p$salt$verifier``), the second half never leaves memory and seals the private
    key with AES-256-GCM (``aes256gcm$nonce$ciphertext``), bound to the instructor's ID.
    """
    check_passphrase_strength(passphrase)
    salt = os.urandom(SALT_BYTES)
    verifier, sealing_key = _derive(passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    private_key = Ed25519PrivateKey.generate()
    nonce = os.urandom(12)
    body = AESGCM(sealing_key).encrypt(
        nonce, private_key.private_bytes_raw(), _seal_aad(instructor_id)
    )
    passphrase_hash = f"scrypt${SCRYPT_LOG2_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(verifier)}"
    return passphrase_hash, public_key_hex(private_key), f"aes256gcm${_b64(nonce)}${_b64(body)}"


def open_account(
    passphrase: str, passphrase_hash: str, sealed_key: str, instructor_id: str
) -> Ed25519PrivateKey:
    """The instructor's private key; IdentityError when the passphrase is wrong or the account damaged."""
    try:
        scheme, log2_n, r, p, salt, verifier = passphrase_hash.split("$")
        if scheme != "scrypt":
            raise ValueError(f"unknown scheme {scheme!r}")
        actual, sealing_key = _derive(passphrase, _unb64(salt), int(log2_n), int(r), int(p))
        expected = _unb64(verifier)
    except (ValueError, TypeError) as error:
        raise IdentityError(f"the stored passphrase hash is unreadable ({error})") from error
    if not hmac.compare_digest(actual, expected):
        raise IdentityError("wrong passphrase")
    try:
        scheme, nonce, body = sealed_key.split("$")
        if scheme != "aes256gcm":
            raise ValueError(f"unknown scheme {scheme!r}")
        raw = AESGCM(sealing_key).decrypt(_unb64(nonce), _unb64(body), _seal_aad(instructor_id))
    except (InvalidTag, ValueError, TypeError) as error:
        raise IdentityError(
            "the passphrase is right but the sealed key does not open: the account was altered"
        ) from error
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_hex(private_key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key as hex."""
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def fingerprint(public_hex: str) -> str:
    """A short, readable fingerprint of a public key (first 16 hex digits of its SHA-256)."""
    digest = hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


def sign(private_key: Ed25519PrivateKey, message: Any) -> str:
    """Ed25519 signature (hex) over the canonical JSON of ``message``."""
    return private_key.sign(canonical_json(message).encode()).hex()


def signature_valid(public_hex: str | None, message: Any, signature_hex: str | None) -> bool:
    """Whether ``signature_hex`` is a valid signature of ``message`` by ``public_hex``."""
    if not public_hex or not signature_hex:
        return False
    try:
        public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        public_key.verify(bytes.fromhex(signature_hex), canonical_json(message).encode())
    except (InvalidSignature, ValueError):
        return False
    return True
