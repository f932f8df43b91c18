"""Selective import of Gmail attachments: the rule's attachments into Vault, each fetched once
ever, in batches bounded by count and by bytes."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from googleapiclient.http import HttpRequest

from monolyth_pipelines.domain.gmail import attachment_external_id, find_attachments, select_attachments
from monolyth_pipelines.errors import ErrorCode
from monolyth_pipelines.google.batching import BatchCall
from monolyth_pipelines.store import vault

if TYPE_CHECKING:
    from monolyth_pipelines.sync.gmail import GmailSync

PROVIDER = "gmail"
# attachments.get answers carry the content (base64, a third larger): bound one batch's reply.
ATTACHMENT_BATCH_BYTES = 32 * 1024 * 1024
SKIP_ATTACHMENT_UNAVAILABLE = "attachment_unavailable"


class GmailAttachments:
    """Mixed into ``GmailSync``: uses its run context, rule, batcher and Gmail client."""

    def _import_attachments(self: GmailSync, messages: list[Mapping[str, Any]]) -> None:
        """Selective import: the rule's attachments into Vault, each fetched once ever."""
        if not self.rule.mime_types or not messages:
            return
        wanted: dict[str, tuple[str, Mapping[str, Any]]] = {}
        for message in messages:
            for attachment in select_attachments(self.rule, find_attachments(message)):
                wanted[attachment_external_id(str(message["id"]), attachment)] = (
                    str(message["id"]),
                    attachment,
                )
        if not wanted:
            return
        with self.engine.connect() as conn:
            have = vault.existing_external_ids(conn, self.owner_id, PROVIDER, list(wanted))
        calls: list[BatchCall] = []
        attachments_api = self.users.messages().attachments()
        for vault_id, (message_id, attachment) in wanted.items():
            if vault_id in have:
                continue
            attachment_id = attachment.get("attachmentId")
            if not attachment_id:
                self.counters.skip(SKIP_ATTACHMENT_UNAVAILABLE, vault_id)
                continue

            def build(message_id: str = message_id, attachment_id: str = str(attachment_id)) -> HttpRequest:
                return attachments_api.get(userId="me", messageId=message_id, id=attachment_id)

            calls.append(
                BatchCall(
                    vault_id, build, weight=attachment.get("size") or 0, context=(message_id, attachment)
                )
            )
        batcher = self._batcher(
            "attachments.get",
            max_weight=ATTACHMENT_BATCH_BYTES,
            # The message or part went away since threads.get: that attachment, not the run.
            tolerated=frozenset({ErrorCode.NOT_FOUND, ErrorCode.BAD_REQUEST}),
        )
        for answers in batcher.run(calls):
            documents = []
            for answer in answers:
                if answer.error is not None or not answer.response.get("data"):
                    self.counters.skip(SKIP_ATTACHMENT_UNAVAILABLE, answer.call.key)
                    continue
                message_id, attachment = answer.call.context
                data = answer.response["data"]
                documents.append(
                    vault.VaultDocument(
                        owner_id=self.owner_id,
                        source=PROVIDER,
                        external_id=answer.call.key,
                        title=attachment.get("filename"),
                        mime=attachment.get("mimeType"),
                        content=base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)),
                        account_id=self.account_id,
                        parent_external_id=message_id,
                    )
                )
            with self.engine.begin() as conn:
                for document in documents:
                    vault.upsert_document(conn, document)
            self.counters.vault_imported += len(documents)
