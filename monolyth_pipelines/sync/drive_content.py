"""Option B of the Drive sync: the content of the rows a page writes, into Vault.

Google-native documents are exported as text, PDFs downloaded as they are; anything Google
refuses (export cap, no access) is a skip of that file, not a failure of the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monolyth_pipelines.domain.drive import SkipReason
from monolyth_pipelines.domain.records import FileRecord
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.settings import DOCS_MIME, PDF_MIME, SHEETS_MIME, SLIDES_MIME
from monolyth_pipelines.store import files, vault

if TYPE_CHECKING:
    from monolyth_pipelines.sync.drive import DriveSync

PROVIDER = "google_drive"
# What each supported type is exported as (Google-native) or downloaded (binary).
EXPORT_AS = {DOCS_MIME: "text/plain", SLIDES_MIME: "text/plain", SHEETS_MIME: "text/csv"}
DOWNLOADED = {PDF_MIME}
VAULT_HEARTBEAT_EVERY = 20


class DriveContentImport:
    """Mixed into ``DriveSync``: uses its run context, limits and Drive client."""

    def _import_to_vault(self: DriveSync, records: list[FileRecord]) -> None:
        """Option B: content for the rows this page will write, or that Vault lacks.

        Runs before the page commits, so a crash re-plans the same rows and re-imports them
        (an idempotent upsert) instead of leaving rows whose content never arrived.
        """
        with self.engine.connect() as conn:
            planned = files.upsert_files(conn, self.account_id, PROVIDER, records, dry_run=True)
            have = vault.existing_external_ids(
                conn, self.owner_id, PROVIDER, [r.external_id for r in records], account_id=self.account_id
            )
        wanted = set(planned.written_ids) | {r.external_id for r in records if r.external_id not in have}
        for record in records:
            if record.external_id not in wanted:
                continue
            content = self._fetch_content(record)
            if content is None:
                continue
            with self.run.fenced() as conn:
                vault.upsert_document(
                    conn,
                    vault.VaultDocument(
                        owner_id=self.owner_id,
                        source=PROVIDER,
                        external_id=record.external_id,
                        title=record.title,
                        mime=EXPORT_AS.get(record.mime or "", record.mime),
                        content=content,
                        account_id=self.account_id,
                    ),
                )
                self.counters.vault_imported += 1
                # Downloads can take longer than a page of metadata: keep the heartbeat fresh so
                # the reaper never mistakes this run for a dead one.
                if self.counters.vault_imported % VAULT_HEARTBEAT_EVERY == 0:
                    self.run.heartbeat(conn)

    def _fetch_content(self: DriveSync, record: FileRecord) -> bytes | None:
        mime = record.mime or ""
        try:
            if mime in EXPORT_AS:
                data = self._execute(
                    self.drive.files().export_media(fileId=record.external_id, mimeType=EXPORT_AS[mime])
                )
            elif mime in DOWNLOADED:
                data = self._execute(
                    self.drive.files().get_media(fileId=record.external_id, supportsAllDrives=True)
                )
            else:
                return None
        except SyncError as error:
            if error.code == ErrorCode.EXPORT_TOO_LARGE:
                self.counters.skip(SkipReason.EXPORT_LIMIT, record.external_id)
                return None
            if error.code in (ErrorCode.INSUFFICIENT_PERMISSIONS, ErrorCode.NOT_FOUND):
                self.counters.skip(SkipReason.NO_PERMISSION, record.external_id)
                return None
            raise
        if isinstance(data, str):
            data = data.encode()
        if len(data) > self.limits.max_file_size_bytes:
            self.counters.skip(SkipReason.TOO_LARGE, record.external_id)
            return None
        return bytes(data)
