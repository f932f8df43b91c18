"""OAuth tokens at rest: Fernet ciphertext in ``connector_accounts.token_json``.

The column keeps its JSON type and holds an envelope, ``{"enc": "fernet", "v": "<Fernet token>"}``,
whose plaintext is the authorized-user JSON. Keys come from ``MONOLYTH_TOKEN_KEYS`` (comma-separated
Fernet keys; the first encrypts, every one decrypts, so a rotation adds a key in front, re-encrypts,
then drops the old one). The embedded SQLite default makes a key file in ``MONOLYTH_DATA_DIR`` on
first use; against Postgres a missing key is refused rather than invented, since a key file on one
machine would strand every other worker. See docs/security.md.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from monolyth_pipelines import settings

ENVELOPE = "fernet"
KEY_FILE_NAME = "token.key"
KEYGEN_HINT = (
    "make one with `monolyth-connectors accounts keygen` (or "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') "
    "and set MONOLYTH_TOKEN_KEYS to it"
)

_lock = threading.Lock()
_announced: set[Path] = set()


class TokenKeyError(Exception):
    """No usable key for the stored tokens. ``str()`` is one line meant for a person."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


def is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and value.get("enc") == ENVELOPE and isinstance(value.get("v"), str)


def _local_key_file(create: bool) -> list[str]:
    path = settings.data_dir() / KEY_FILE_NAME
    with _lock:
        if not path.exists():
            if not create:
                return []
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(generate_key() + "\n")
            if path not in _announced:
                _announced.add(path)
                print(
                    f"created a token encryption key at {path} (MONOLYTH_TOKEN_KEYS unset, embedded "
                    "database); back it up with the database: without it the stored tokens are unusable",
                    file=sys.stderr,
                )
        keys = [k.strip() for k in path.read_text().splitlines() if k.strip()]
    if not keys:
        raise TokenKeyError(f"the token key file {path} is empty; {KEYGEN_HINT}")
    return keys


def _keys(dialect: str, create: bool) -> list[str]:
    keys = list(settings.token_keys())
    if keys:
        return keys
    if dialect != "sqlite":
        raise TokenKeyError(
            f"MONOLYTH_TOKEN_KEYS is not set: OAuth tokens are encrypted at rest; {KEYGEN_HINT}"
        )
    keys = _local_key_file(create)
    if not keys:
        raise TokenKeyError(f"MONOLYTH_TOKEN_KEYS is not set and there is no key file; {KEYGEN_HINT}")
    return keys


def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise TokenKeyError(
            f"MONOLYTH_TOKEN_KEYS holds something that is not a Fernet key (32 url-safe base64 bytes); "
            f"{KEYGEN_HINT}"
        ) from None


def key_ring(dialect: str, *, create: bool = True) -> MultiFernet:
    """The keys for a database of ``dialect`` ("sqlite" / "postgresql")."""
    return MultiFernet([_fernet(k) for k in _keys(dialect, create)])


def is_under_primary(dialect: str, stored: Any) -> bool:
    """Whether ``stored`` is already encrypted with the ring's first key (rotation skips it)."""
    if not is_encrypted(stored):
        return False
    try:
        _fernet(_keys(dialect, False)[0]).decrypt(stored["v"].encode())
    except InvalidToken:
        return False
    return True


def encrypt(ring: MultiFernet, token_json: dict[str, Any]) -> dict[str, str]:
    data = json.dumps(token_json, separators=(",", ":"), sort_keys=True).encode()
    return {"enc": ENVELOPE, "v": ring.encrypt(data).decode()}


def decrypt(ring: MultiFernet, stored: Any, *, what: str = "the stored tokens") -> dict[str, Any] | None:
    """The authorized-user dict. Plain JSON (a row no migration has encrypted yet) passes through."""
    if stored is None:
        return None
    if not is_encrypted(stored):
        return dict(stored)
    try:
        return json.loads(ring.decrypt(stored["v"].encode()))
    except InvalidToken:
        raise TokenKeyError(
            f"{what} cannot be decrypted with the keys in MONOLYTH_TOKEN_KEYS: a wrong key, or the key "
            "that encrypted them was dropped from the ring (put it back, then run "
            "`monolyth-connectors accounts rotate-keys`)"
        ) from None


def rotate(ring: MultiFernet, stored: Any) -> dict[str, str]:
    """The same plaintext under the ring's first key (plain JSON gets encrypted)."""
    if not is_encrypted(stored):
        return encrypt(ring, dict(stored))
    try:
        return {"enc": ENVELOPE, "v": ring.rotate(stored["v"].encode()).decode()}
    except InvalidToken:
        raise TokenKeyError(
            "some stored tokens cannot be decrypted with any key in MONOLYTH_TOKEN_KEYS; keep the key "
            "that encrypted them in the ring while rotating"
        ) from None
