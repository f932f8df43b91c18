"""Deterministic Drive and Gmail corpora: the same seed and account always give the same data.

Each corpus starts with a fixed prelude that guarantees the awkward cases exist even in a
ten-item test corpus (an over-25 MB PDF, a Doc whose export is over 10 MB, trashed and
shared-drive items, RFC 2047 subjects, a missing Date, an attachment three levels deep...),
then continues with a weighted random mix. Only metadata is generated here; bytes are produced
lazily by ``content`` and ``mime`` when a call asks for them.
"""

# Real file names and subjects carry typographic dashes; the corpus keeps them on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import itertools
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from monolyth_pipelines.emulator.content import short_tail_size
from monolyth_pipelines.emulator.drive import (
    DOCS,
    DRAWING,
    FOLDER,
    FORM,
    NOT_TRASHED,
    SHEETS,
    SHORTCUT,
    SLIDES,
    TRASHED_EXPLICITLY,
    DriveFile,
    DriveStore,
    SharedDrive,
)
from monolyth_pipelines.emulator.drive_sharing import Grant, grant
from monolyth_pipelines.emulator.gmail import Label, Mailbox, Message, Thread
from monolyth_pipelines.emulator.mime import AttachmentSpec, MessageSpec
from monolyth_pipelines.emulator.timeutil import parse_rfc3339_ms

CORPUS_START_MS = parse_rfc3339_ms("2019-01-01T00:00:00Z")
MAIL_START_MS = parse_rfc3339_ms("2023-01-01T00:00:00Z")
CORPUS_END_MS = parse_rfc3339_ms("2025-11-01T00:00:00Z")
MB = 1024 * 1024

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

COLLEAGUES: tuple[tuple[str, str], ...] = (
    ("Jane Doe", "jane.doe@acme.example"),
    ("Jörg Müller", "joerg.mueller@example.de"),
    ("Zoë Ångström", "zoe@example.se"),
    ("李雷", "li.lei@example.cn"),
    ("O'Brien, Siobhán", "siobhan@example.ie"),
    ("Carlos Peña", "carlos@example.mx"),
    ("Priya Raman", "priya@example.in"),
    ("ACME Legal", "legal@acme.example"),
)

# Colleagues in the account's own domain (addresses are built with it).
INTERNAL_PEOPLE = ("ana.lima", "ben.okafor", "chloe.martin", "dev.patel")

# mime, weight, extension, (min size, max size) for binary kinds
_DRIVE_KINDS: tuple[tuple[str, int, str, tuple[int, int]], ...] = (
    (DOCS, 22, "", (0, 0)),
    (SHEETS, 12, "", (0, 0)),
    (SLIDES, 6, "", (0, 0)),
    (PDF, 16, ".pdf", (300, 20 * MB)),
    ("image/jpeg", 6, ".jpg", (20_000, 8 * MB)),
    ("image/png", 4, ".png", (5_000, 4 * MB)),
    (FOLDER, 8, "", (0, 0)),
    (DOCX, 4, ".docx", (8_000, 5 * MB)),
    (XLSX, 3, ".xlsx", (8_000, 5 * MB)),
    ("application/zip", 2, ".zip", (50_000, 60 * MB)),
    ("video/mp4", 2, ".mp4", (1 * MB, 60 * MB)),
    ("text/plain", 3, ".txt", (100, 500_000)),
    ("text/csv", 2, ".csv", (100, 500_000)),
    (SHORTCUT, 2, "", (0, 0)),
    (FORM, 1, "", (0, 0)),
    (DRAWING, 1, "", (0, 0)),
    ("application/octet-stream", 1, "", (1_000, 10 * MB)),
)
_KIND_CUM_WEIGHTS = list(itertools.accumulate(kind[1] for kind in _DRIVE_KINDS))
_KIND_BY_MIME = {kind[0]: kind for kind in _DRIVE_KINDS}

_TOPICS = (
    "Signed NDA – ACME",
    "Master services agreement",
    "Budget 2025",
    "Quarterly review",
    "Meeting notes",
    "Invoice",
    "Roadmap",
    "Onboarding checklist",
    "Board deck",
    "Pricing model",
    "Customer list",
    "Renewal terms",
    "Statement of work",
    "Hiring plan",
    "Architecture overview",
    "Expense report",
    "Vendor comparison",
    "Release notes",
    "Team offsite",
    "Data processing addendum",
)
_UNICODE_TOPICS = (
    "Überblick – Résumé",
    "契約書 2024",
    "Ελληνικά σημειώσεις",
    "Отчёт за квартал",
    "Análisis de costos 📊",
    "Zoë's naïve café plan ☕",
    "שלום מסמך",
    "مستند العقد",
)


@dataclass(frozen=True)
class _DriveSpecial:
    mime: str
    name: str
    size: int | None = None
    export_size: int | None = None
    trashed: bool = False
    shared_drive: int | None = None  # index of the account's shared drive
    colleague: int | None = None  # shared with me by COLLEAGUES[i]


_DRIVE_PRELUDE: tuple[_DriveSpecial, ...] = (
    _DriveSpecial(FOLDER, "Contracts"),
    _DriveSpecial(DOCS, "Signed NDA – ACME"),
    _DriveSpecial(SHEETS, "Budget 2025"),
    _DriveSpecial(SLIDES, "Quarterly review Q3"),
    _DriveSpecial(PDF, "Scanned archive 2019.pdf", size=31 * MB),
    _DriveSpecial(DOCS, "Master services agreement (full redline history)", export_size=14 * MB),
    _DriveSpecial(PDF, "old-invoice.pdf", size=48_000, trashed=True),
    _DriveSpecial(DOCS, "Team handbook", shared_drive=0),
    _DriveSpecial(PDF, "Shared drive policy.pdf", size=220_000, shared_drive=1),
    _DriveSpecial(PDF, "Proposal from Jörg.pdf", size=1_400_000, colleague=1),
    _DriveSpecial(DOCS, "Überblick – Résumé 契約書 📄"),
    _DriveSpecial(PDF, ("Very long name " * 20).strip() + ".pdf", size=90_000),
    _DriveSpecial("image/png", "diagram.png", size=150_000),
    _DriveSpecial("application/zip", "export.zip", size=3 * MB),
    _DriveSpecial(SHORTCUT, "Shortcut to Budget 2025"),
    _DriveSpecial(SHEETS, "Old forecast", trashed=True, shared_drive=0),
    _DriveSpecial(PDF, "tiny.pdf", size=300),
    _DriveSpecial(FORM, "Feedback form"),
    _DriveSpecial(SHEETS, "Pipeline (shared with me)", colleague=0),
    _DriveSpecial(PDF, "Annual report 2024.pdf", size=26 * MB + 500),
)


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _drive_name(rng: random.Random, ext: str, index: int) -> str:
    roll = rng.random()
    if roll < 0.05:
        base = rng.choice(_UNICODE_TOPICS)
    elif roll < 0.06:
        base = " ".join(rng.choice(_TOPICS) for _ in range(12))  # very long
    else:
        base = rng.choice(_TOPICS)
    style = rng.random()
    if style < 0.3:
        base = f"{base} {2019 + index % 7}-{1 + index % 12:02d}"
    elif style < 0.45:
        base = f"{base} v{1 + index % 9}"
    elif style < 0.5:
        base = f"Copy of {base}"
    return base + ext


def _internal(store: DriveStore, local: str) -> str:
    return f"{local}@{store.me.email.rsplit('@', 1)[1]}"


def _shares(rng: random.Random, store: DriveStore) -> tuple[Grant, ...] | None:
    """Grants on a file the user owns: most private, some shared inside the organisation, with
    its domain, outside it, by link or publicly."""
    roll = rng.random()
    internal = _internal(store, rng.choice(INTERNAL_PEOPLE))
    if roll < 0.65:
        return None
    if roll < 0.77:
        return (grant("user", rng.choice(("reader", "writer", "commenter")), internal),)
    if roll < 0.82:
        return (grant("group", "reader", _internal(store, "team")),)
    if roll < 0.86:
        return (grant("domain", "reader", _internal(store, "x").split("@")[1], rng.random() < 0.3),)
    if roll < 0.94:
        outside = rng.choice(COLLEAGUES)[1]
        return (grant("user", rng.choice(("reader", "writer")), outside), grant("user", "reader", internal))
    if roll < 0.99:
        return (grant("anyone", "reader"),)
    return (grant("anyone", "reader", discoverable=True),)


def build_drive(store: DriveStore, count: int, seed_key: str) -> None:
    """Fill ``store`` with ``count`` files (folders and skip-worthy types included)."""
    rng = random.Random("drive-corpus:" + seed_key)
    # Its own stream: sharing was added after the corpus, whose files must stay as they were.
    share_rng = random.Random("drive-sharing:" + seed_key)
    me = store.me.email
    store.shared_drives = [
        SharedDrive(
            store.new_drive_id(),
            "Legal (shared)",
            CORPUS_START_MS + 86_400_000,
            members=(
                grant("user", "organizer", me),
                grant("group", "reader", _internal(store, "legal")),
                grant("user", "writer", _internal(store, INTERNAL_PEOPLE[0])),
            ),
        ),
        SharedDrive(
            store.new_drive_id(),
            "Engineering ✨",
            CORPUS_START_MS + 5 * 86_400_000,
            members=(grant("user", "organizer", me), grant("user", "fileOrganizer", _internal(store, "dev"))),
        ),
    ]
    colleagues = [store.person_index(email, name) for name, email in COLLEAGUES]
    folders: list[str] = []
    targets: list[tuple[str, str]] = []
    records: list[DriveFile] = []
    for index in range(count):
        special = _DRIVE_PRELUDE[index] if index < len(_DRIVE_PRELUDE) else None
        if special is not None:
            mime = special.mime
        else:
            mime = rng.choices(_DRIVE_KINDS, cum_weights=_KIND_CUM_WEIGHTS)[0][0]
        _, _, ext, (low, high) = _KIND_BY_MIME.get(mime, (mime, 0, "", (0, 0)))
        name = special.name if special else _drive_name(rng, ext, index)
        created = rng.randrange(CORPUS_START_MS, CORPUS_END_MS - 86_400_000)
        modified = min(CORPUS_END_MS, created + int(rng.expovariate(1 / (60 * 86_400_000))))

        size: int | None
        export_size = 0
        if mime in (FOLDER, SHORTCUT, FORM):
            size = None
        elif mime in (DOCS, SHEETS, SLIDES, DRAWING):
            size = _log_uniform(rng, 1_024, 600_000)
            ceiling = {DOCS: 2 * MB, SHEETS: 1_500_000, SLIDES: 300_000, DRAWING: 50_000}[mime]
            export_size = _log_uniform(rng, 300, ceiling)
            if special is None and mime == DOCS and rng.random() < 0.01:
                export_size = rng.randrange(10 * MB + 1, 45 * MB)
        else:
            approx = _log_uniform(rng, low, high)
            if special is None and mime == PDF and rng.random() < 0.02:
                approx = rng.randrange(25 * MB + 1, 90 * MB)
            size = short_tail_size(rng, approx)
        if special is not None:
            size = special.size if special.size is not None else size
            export_size = special.export_size if special.export_size is not None else export_size

        shared_drive = special.shared_drive if special else (0 if rng.random() < 0.1 else None)
        if special is None and shared_drive is not None and rng.random() < 0.4:
            shared_drive = 1
        colleague = special.colleague if special else None
        if special is None and shared_drive is None and rng.random() < 0.15:
            colleague = rng.randrange(len(colleagues))
        trashed = special.trashed if special else rng.random() < 0.04

        if shared_drive is not None:
            drive_id: str | None = store.shared_drives[shared_drive].id
            parent: str | None = drive_id
            owner = -1
        elif colleague is not None:
            drive_id, parent, owner = None, None, colleagues[colleague]  # its folder is not visible to us
        else:
            drive_id = None
            parent = rng.choice(folders) if folders and rng.random() < 0.6 else store.root_id
            owner = 0

        if owner == 0:
            shares = _shares(share_rng, store)
        elif owner > 0:
            # Shared with the user by a colleague; as a reader the user cannot see who else may.
            shares = (grant("user", "writer" if share_rng.random() < 0.7 else "reader", me),)
        else:
            shares = None
            if share_rng.random() < 0.05:
                shares = (grant("user", "reader", share_rng.choice(COLLEAGUES)[1]),)
        rec = DriveFile(
            seq=0,
            id=store.new_file_id(),
            name=name,
            mime=mime,
            created_ms=created,
            modified_ms=modified,
            size=size,
            export_size=export_size,
            version=rng.randint(1, 300)
            if mime.startswith("application/vnd.google-apps.")
            else rng.randint(1, 20),
            parent=parent,
            owner=owner,
            drive_id=drive_id,
            trash=TRASHED_EXPLICITLY if trashed else NOT_TRASHED,
            trashed_ms=modified if trashed else 0,
            shares=shares,
        )
        if mime == FOLDER and shared_drive is None and colleague is None and not trashed:
            folders.append(rec.id)
        if mime == SHORTCUT and targets:
            store.shortcut_targets[rec.id] = targets[rng.randrange(len(targets))]
        elif mime != SHORTCUT:
            targets.append((rec.id, mime))
            if len(targets) > 64:
                targets.pop(0)
        records.append(rec)
    store.adopt(records)


# --- Gmail --------------------------------------------------------------------------------------

_USER_LABELS = ("Contracts", "Invoices", "Travel/2024", "Résumés 📎", "Receipts", "Projects/Alpha")
_SUBJECTS = {
    "Contracts": (
        "Signed NDA – ACME",
        "MSA renewal 2025",
        "Contract amendment #3",
        "DPA for review",
        "SOW – Project Atlas",
        "Countersigned agreement",
    ),
    "Invoices": (
        "Invoice INV-2024-0042",
        "Your invoice is ready",
        "Payment reminder",
        "Receipt for your order",
    ),
    None: (
        "Lunch on Friday?",
        "Quarterly numbers",
        "Re: roadmap",
        "Offsite agenda",
        "Quick question",
        "Welcome aboard",
        "Weekly update",
        "Café meeting notes ☕",
        "Résumé – Zoë Ångström",
        "Über die Planung",
        "会议纪要",
        "Weekend plans",
    ),
}
_ATTACHMENTS: dict[str | None, tuple[tuple[str, str], ...]] = {
    "Contracts": (
        ("NDA_signed.pdf", PDF),
        ("MSA v3.docx", DOCX),
        ("Contract – Jörg Müller.pdf", PDF),
        ("Exhibit A.pdf", PDF),
    ),
    "Invoices": (("INV-0042.pdf", PDF), ("receipt.png", "image/png"), ("statement.csv", "text/csv")),
    None: (
        ("notes.txt", "text/plain"),
        ("photo.jpg", "image/jpeg"),
        ("data.xlsx", XLSX),
        ("invite.ics", "text/calendar"),
        ("archive.zip", "application/zip"),
        ("Résumé – Zoë.pdf", PDF),
        ("slides.pdf", PDF),
        ("no_extension", "application/octet-stream"),
    ),
}


def b_encode(text: str, charset: str = "UTF-8") -> str:
    """An RFC 2047 B-encoded word (one per 45 bytes or so, never splitting a character)."""
    words, current = [], b""
    for char in text:
        encoded = char.encode(charset)
        if len(current) + len(encoded) > 45:
            words.append(current)
            current = b""
        current += encoded
    words.append(current)
    return " ".join(f"=?{charset}?B?{base64.b64encode(w).decode()}?=" for w in words)


def q_encode(text: str, charset: str = "UTF-8") -> str:
    """An RFC 2047 Q-encoded word."""
    out = []
    for byte in text.encode(charset):
        char = chr(byte)
        if char == " ":
            out.append("_")
        elif char.isascii() and (char.isalnum() or char in "!*+-/"):
            out.append(char)
        else:
            out.append(f"={byte:02X}")
    return f"=?{charset}?Q?{''.join(out)}?="


def _display(name: str, email: str, style: int) -> str:
    if style == 0:
        return email
    if not name.isascii():
        return f"{q_encode(name) if style % 2 else b_encode(name)} <{email}>"
    if "," in name or "'" in name:
        return f'"{name}" <{email}>'
    return f"{name} <{email}>"


@dataclass(frozen=True)
class _MailSpecial:
    label: str | None = None
    subject_style: str = "plain"  # plain | b | q | latin1 | none | empty
    date_style: str = "ok"  # ok | none | bad
    layout: str = "alternative"
    attachments: int = 0
    messages: int = 1
    from_style: int = 1
    trash: bool = False


_MAIL_PRELUDE: tuple[_MailSpecial, ...] = (
    _MailSpecial(label="Contracts", layout="mixed", attachments=1),
    _MailSpecial(subject_style="b"),
    _MailSpecial(subject_style="q", messages=2),
    _MailSpecial(subject_style="none"),
    _MailSpecial(date_style="none"),
    _MailSpecial(date_style="bad"),
    _MailSpecial(layout="related", attachments=1),
    _MailSpecial(label="Contracts", layout="deep", attachments=2),
    _MailSpecial(messages=12),
    _MailSpecial(subject_style="latin1", from_style=3),
    _MailSpecial(label="Contracts", layout="mixed", attachments=2, messages=3),
    _MailSpecial(trash=True),
)

_BAD_DATES = (
    "Mon, 31 Feb 2023 25:61:00 +9999",
    "yesterday afternoon",
    "2024-13-45T99:00:00",
    "Tue, 7 Mar 2024",
)


def _subject(rng: random.Random, label: str | None, style: str) -> str | None:
    text = rng.choice(_SUBJECTS.get(label, _SUBJECTS[None]))
    if style == "none":
        return None
    if style == "empty":
        return ""
    if style == "b":
        return b_encode(text if not text.isascii() else text + " – Ünïcödé")
    if style == "q":
        return q_encode(text if not text.isascii() else text + " – café")
    if style == "latin1":
        return q_encode("Café: réunion à 10h", "ISO-8859-1")
    return text


def _message_count(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.55:
        return 1
    if roll < 0.80:
        return rng.randint(2, 3)
    if roll < 0.95:
        return rng.randint(4, 8)
    return rng.randint(9, 20)


def _attachment_specs(rng: random.Random, label: str | None, count: int, layout: str) -> list[AttachmentSpec]:
    pool = _ATTACHMENTS.get(label, _ATTACHMENTS[None])
    specs = []
    for _ in range(count):
        filename, mime = rng.choice(pool)
        size = _log_uniform(rng, 2_000, 15 * MB) if rng.random() > 0.02 else rng.randrange(20 * MB, 24 * MB)
        specs.append(AttachmentSpec(filename, mime, size))
    if layout == "related":
        specs.insert(
            0, AttachmentSpec("image001.png", "image/png", _log_uniform(rng, 3_000, 80_000), inline=True)
        )
    return specs


def build_mailbox(box: Mailbox, count: int, seed_key: str) -> None:
    """Fill ``box`` with ``count`` threads; history starts after them (see ``Mailbox``)."""
    rng = random.Random("gmail-corpus:" + seed_key)
    for number, name in enumerate(_USER_LABELS, start=1):
        box.labels[f"Label_{number}"] = Label(f"Label_{number}", name, "user", "show", "labelShow")
    label_ids = {name: f"Label_{n}" for n, name in enumerate(_USER_LABELS, start=1)}
    me = f"{box.display_name} <{box.email}>"
    span = CORPUS_END_MS - MAIL_START_MS
    starts = sorted(MAIL_START_MS + rng.randrange(span - 30 * 86_400_000) for _ in range(count))
    all_messages: list[Message] = []
    for index, start in enumerate(starts):
        special = _MAIL_PRELUDE[index] if index < len(_MAIL_PRELUDE) else None
        label = special.label if special else _pick_label(rng)
        subject_style = special.subject_style if special else _pick_subject_style(rng)
        subject = _subject(rng, label, subject_style)
        messages = special.messages if special else _message_count(rng)
        thread_labels = ["INBOX"] if rng.random() < 0.8 or label == "Contracts" else []
        thread_labels.append(
            rng.choice(
                (
                    "CATEGORY_PERSONAL",
                    "CATEGORY_UPDATES",
                    "CATEGORY_PROMOTIONS",
                    "CATEGORY_SOCIAL",
                    "CATEGORY_FORUMS",
                )
            )
        )
        if label is not None:
            thread_labels.append(label_ids[label])
        if rng.random() < 0.2:
            thread_labels.append("IMPORTANT")
        if special is not None and special.trash:
            thread_labels = ["TRASH", "CATEGORY_PERSONAL"]
        correspondent = rng.choice(COLLEAGUES)
        thread: Thread | None = None
        moment = start
        previous_id: str | None = None
        for position in range(messages):
            moment += rng.randrange(60_000, 3 * 86_400_000) if position else 0
            from_me = position % 2 == 1 and rng.random() < 0.7
            sender = (
                me
                if from_me
                else _display(
                    correspondent[0],
                    correspondent[1],
                    special.from_style if special else rng.choice((0, 1, 1, 2, 3)),
                )
            )
            headers: list[tuple[str, str]] = [("From", sender), ("To", correspondent[1] if from_me else me)]
            if rng.random() < 0.1:
                headers.append(("Cc", ", ".join(email for _, email in rng.sample(COLLEAGUES, 2))))
            if subject is not None:
                headers.append(("Subject", subject if position == 0 else f"Re: {subject}"))
            date_style = special.date_style if special and position == 0 else _pick_date_style(rng)
            if date_style == "ok":
                headers.append(("Date", _rfc2822(moment, rng.choice((0, 60, -300, 330, 120)))))
            elif date_style == "bad":
                headers.append(("Date", rng.choice(_BAD_DATES)))
            message_id = box.new_message_id(moment)
            header_id = f"<CA{message_id}{rng.randrange(10**6):06d}@mail.example.org>"
            headers.append(("Message-ID", header_id))
            if previous_id:
                headers += [("In-Reply-To", previous_id), ("References", previous_id)]
            previous_id = header_id
            if special and position == 0:
                layout, attachment_count = special.layout, special.attachments
            elif special and special.attachments and position == messages - 1:
                layout, attachment_count = "mixed", 1
            else:
                layout, attachment_count = _pick_layout(rng)
            attachments = _attachment_specs(rng, label, attachment_count, layout)
            spec = MessageSpec(tuple(headers), layout, rng.randrange(2**31), None, tuple(attachments))
            labels = [lab for lab in thread_labels if not (from_me and lab in ("INBOX", "CATEGORY_PERSONAL"))]
            if from_me:
                labels.insert(0, "SENT")
            elif position == messages - 1 and rng.random() < 0.3:
                labels.insert(0, "UNREAD")
            if thread is None:
                thread = Thread(message_id)
            message = Message(message_id, thread.id, moment, labels, 0, spec)
            thread.messages.append(message)
            all_messages.append(message)
        assert thread is not None
        box.add_generated(thread)
    # History ids grow with time, across threads, as if the mail had arrived in that order.
    for message in sorted(all_messages, key=lambda m: m.internal_ms):
        message.history_id = box.next_history_id()
        thread = box.threads[message.thread_id]
        thread.history_id = max(thread.history_id, message.history_id)
    box.seal_generated()


def _pick_label(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.2:
        return "Contracts"
    if roll < 0.3:
        return "Invoices"
    if roll < 0.4:
        return rng.choice(_USER_LABELS[2:])
    return None


def _pick_subject_style(rng: random.Random) -> str:
    return rng.choices(("plain", "b", "q", "latin1", "none", "empty"), weights=(78, 8, 7, 2, 3, 2))[0]


def _pick_date_style(rng: random.Random) -> str:
    return rng.choices(("ok", "none", "bad"), weights=(94, 3, 3))[0]


def _pick_layout(rng: random.Random) -> tuple[str, int]:
    layout = rng.choices(("plain", "alternative", "mixed", "related", "deep"), weights=(10, 45, 25, 10, 10))[
        0
    ]
    if layout == "mixed":
        return layout, rng.randint(1, 3)
    if layout == "deep":
        return layout, rng.randint(1, 2)
    if layout == "related":
        return layout, rng.randint(0, 1)
    return layout, 0


def _rfc2822(ms: int, offset_minutes: int) -> str:
    zone = timezone(timedelta(minutes=offset_minutes)) if offset_minutes else UTC
    return format_datetime(datetime.fromtimestamp(ms / 1000, zone))
