"""A Gmail account on the emulator, a migrated database and a Dagster instance, wired together.

The fixtures here build on ``emulator``, ``served``, ``engine``, ``instance`` and
``fast_retries`` from the conftests; a test module takes them in with
``make_gmail = gmail_harness.make_gmail``. ``expected_rows`` computes what connector_files must
hold from the emulator's own JSON with the standard library, not with the connector's code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any, ClassVar

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.emulator import EmulatedAccount, GoogleEmulator
from monolyth_pipelines.store import events, jobs
from monolyth_pipelines.store.schema import vault_documents
from tests import grants
from tests.connectors.harness import AccountHarness, connect_account

HIDDEN = {"TRASH", "SPAM"}


@dataclass
class GmailHarness(AccountHarness):
    provider: ClassVar[str] = "gmail"

    @property
    def mailbox(self) -> Any:
        return self.emulator.gmail(self.account)

    def sync(self, config: dict[str, Any] | None = None) -> tuple[dg.ExecuteInProcessResult, jobs.Job]:
        return self.materialize({"ops": {"gmail_messages": {"config": config}}} if config else None)

    def vault(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            return {
                row.external_id: dict(row._mapping)
                for row in conn.execute(
                    sa.select(vault_documents).where(vault_documents.c.account_id == self.account_id)
                )
            }

    def stats(self) -> dict[str, Any]:
        return self.emulator.stats(self.account)

    def calls(self, endpoint: str) -> int:
        return self.stats()["api_calls"].get(endpoint, 0)

    def events(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return events.events_for(conn, account_id=self.account_id)


def connect_gmail_account(
    engine: sa.Engine, account: EmulatedAccount, base_url: str | None = None, *, grant: str = grants.CONSENT
) -> uuid.UUID:
    """What ``accounts connect --provider gmail`` does (``grant``: see tests/grants.py)."""
    return connect_account(engine, account, base_url, provider="gmail", grant=grant)


@pytest.fixture
def gmail_env(monkeypatch: pytest.MonkeyPatch, served: str, fast_retries: None) -> None:
    """The flag on, a quota pacer that never waits (tests that measure pacing set their own)."""
    monkeypatch.setenv("MONOLYTH_FEATURE_FLAGS", "int_gmail")
    monkeypatch.setenv("GMAIL_QUOTA_UNITS_PER_SECOND", "1000000")
    for name in ("GMAIL_LABEL", "GMAIL_MAX_THREADS", "GMAIL_ATTACHMENT_MIME_TYPES", "GMAIL_QUOTA_COSTS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_gmail(
    emulator: GoogleEmulator,
    served: str,
    engine: sa.Engine,
    fresh_db_url: str,
    instance: dg.DagsterInstance,
    gmail_env: None,
) -> Iterator[Callable[..., GmailHarness]]:
    def make(threads: int, *, grant: str = grants.CONSENT, **account_options: Any) -> GmailHarness:
        """``account_options`` go to ``emulator.add_account``; a grant of other scopes than the
        consent flow asks for (``scopes=``) needs ``grant=grants.EMULATOR_FILE``."""
        account = emulator.add_account(
            f"mail{len(emulator.accounts)}@example.com", gmail_threads=threads, **account_options
        )
        account_id = connect_gmail_account(engine, account, served, grant=grant)
        return GmailHarness(emulator, account, served, engine, fresh_db_url, instance, account_id)

    yield make


# --- the expectation, from the emulator's JSON ---------------------------------------------------


def _header(message: Mapping[str, Any], name: str) -> str | None:
    for header in message.get("payload", {}).get("headers", []):
        if header["name"].lower() == name.lower():
            return str(header["value"])
    return None


def _date(message: Mapping[str, Any]) -> datetime:
    raw = _header(message, "Date")
    try:
        parsed = parsedate_to_datetime(raw) if raw else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed is None:
        parsed = datetime.fromtimestamp(int(message["internalDate"]) / 1000, UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)


def _attachments(part: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = []
    if part.get("filename"):
        found.append(
            {
                "filename": part["filename"],
                "mimeType": part["mimeType"],
                "size": part["body"]["size"],
            }
        )
    for child in part.get("parts", []):
        found += _attachments(child)
    return found


def _part_ids(part: Mapping[str, Any]) -> list[str]:
    own = [part["partId"]] if part.get("filename") else []
    return own + [pid for child in part.get("parts", []) for pid in _part_ids(child)]


def expected_message(message: Mapping[str, Any], email: str) -> dict[str, Any]:
    subject = _header(message, "Subject")
    date = _date(message)
    return {
        "title": str(make_header(decode_header(subject))).strip() if subject is not None else None,
        "mime": "message/rfc822",
        "size": message["sizeEstimate"],
        "modified_at": date,
        "url": f"https://mail.google.com/mail/u/{email}/#all/{message['id']}",
        "from": parseaddr(_header(message, "From") or "")[1] or None,
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "messageId": _header(message, "Message-ID"),
        "attachments": _attachments(message["payload"]),
        "attachmentPartIds": _part_ids(message["payload"]),
        "threadId": message["threadId"],
        "labelIds": message.get("labelIds", []),
    }


def in_scope(thread: Mapping[str, Any], label_id: str) -> list[Mapping[str, Any]]:
    """The messages stored for a thread: those outside trash and spam, if one carries the label."""
    visible = [m for m in thread["messages"] if not HIDDEN & set(m.get("labelIds", []))]
    return visible if any(label_id in m.get("labelIds", []) for m in visible) else []


def expected_rows(
    mailbox: Any, label: str = "Contracts", max_threads: int = 100
) -> dict[str, dict[str, Any]]:
    """The messages of the label's newest ``max_threads`` threads, as connector_files must hold them."""
    label_id = next(lab["id"] for lab in mailbox.label_list() if lab["name"] == label)
    out: dict[str, dict[str, Any]] = {}
    threads = [t for t in mailbox.threads_list(label_ids=[label_id], format="full") if in_scope(t, label_id)]
    for thread in threads[:max_threads]:
        for message in in_scope(thread, label_id):
            out[message["id"]] = expected_message(message, mailbox.email)
    return out


def comparable(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    keys = ("from", "date", "messageId", "attachments", "attachmentPartIds", "threadId", "labelIds")
    return {
        k: {
            "title": r["title"],
            "mime": r["mime"],
            "size": r["size"],
            "modified_at": r["modified_at"],
            "url": r["url"],
            **{key: r["meta_json"].get(key) for key in keys},
        }
        for k, r in rows.items()
    }
