"""The environment readers every setting builds on, the defaults they fall back to, and the
settings that are a single value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from monolyth_pipelines.settings_checks import (
    ConfigError,
    check_number,
    parse_bool,
    parse_number,
)

__all__ = ["ConfigError"]


GOOGLE_API_ENDPOINT = "https://www.googleapis.com"
GOOGLE_GMAIL_ENDPOINT = "https://gmail.googleapis.com"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_ADMIN_ENDPOINT = "https://admin.googleapis.com"
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"

DOCS_MIME = "application/vnd.google-apps.document"
SHEETS_MIME = "application/vnd.google-apps.spreadsheet"
SLIDES_MIME = "application/vnd.google-apps.presentation"
PDF_MIME = "application/pdf"
DEFAULT_SUPPORTED_MIME_TYPES: tuple[str, ...] = (DOCS_MIME, SHEETS_MIME, SLIDES_MIME, PDF_MIME)

FLAG_GMAIL = "int_gmail"


def _env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    return value if value not in (None, "") else None


def _int_env(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    raw = _env(name, environ)
    return default if raw is None else parse_number(name, raw, int)


def _float_env(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    raw = _env(name, environ)
    return default if raw is None else parse_number(name, raw, float)


def _list_env(
    name: str, default: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    raw = _env(name, environ)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _bool_env(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    raw = _env(name, environ)
    return default if raw is None else parse_bool(name, raw)


def _choice_env(name: str, default: str, choices: tuple[str, ...], environ: Mapping[str, str] | None) -> str:
    raw = (_env(name, environ) or default).strip().lower()
    if raw not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The local data folder: embedded SQLite database and, locally, DAGSTER_HOME."""
    raw = _env("MONOLYTH_DATA_DIR", environ)
    return Path(raw).expanduser().resolve() if raw else (Path.cwd() / ".monolyth").resolve()


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """``MONOLYTH_DATABASE_URL``, else an embedded SQLite file in the data folder."""
    url = _env("MONOLYTH_DATABASE_URL", environ)
    if url:
        return url
    folder = data_dir(environ)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'monolyth.db'}"


def feature_flags(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    return frozenset(_list_env("MONOLYTH_FEATURE_FLAGS", (), environ))


def gmail_enabled(environ: Mapping[str, str] | None = None) -> bool:
    return FLAG_GMAIL in feature_flags(environ)


def stale_job_seconds(environ: Mapping[str, str] | None = None) -> float:
    """After this long without a heartbeat, a running job whose run is gone is taken over."""
    value = _float_env("MONOLYTH_STALE_JOB_SECONDS", 600.0, environ)
    check_number("MONOLYTH_STALE_JOB_SECONDS", value, minimum=0, exclusive_minimum=True)
    return value


def mass_tombstone_share(environ: Mapping[str, str] | None = None) -> float:
    """The share of an account's live rows a settings change may tombstone without confirmation."""
    value = _float_env("MONOLYTH_MASS_TOMBSTONE_SHARE", 0.5, environ)
    check_number("MONOLYTH_MASS_TOMBSTONE_SHARE", value, minimum=0, maximum=1)
    return value
