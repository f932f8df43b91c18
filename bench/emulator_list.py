"""Benchmark: the emulator serves N Drive files (default 100,000) and the real client lists them.

``python bench/emulator_list.py [--files N]`` builds the corpus in-process, serves it on an
ephemeral port, and lists every file twice with google-api-python-client at 1000 a page, asking
for the fields a metadata connector asks for. It prints the wall time of each listing and the
process's resident memory (before the corpus, after it, after each listing) and writes the
figures to ``bench/results/emulator_list.json``. Client and emulator share the process, so RSS
includes the client; what matters is that the second listing adds ~nothing (memory follows the
corpus, not the number of requests).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
try:
    from monolyth_pipelines.emulator import GoogleEmulator
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
    from monolyth_pipelines.emulator import GoogleEmulator

from googleapiclient.discovery import build  # noqa: E402

FIELDS = (
    "nextPageToken,files(id,name,mimeType,modifiedTime,size,owners(emailAddress),webViewLink,trashed,"
    "driveId,version,md5Checksum)"
)
TARGET_SECONDS = 10.0


def rss_mb() -> float:
    gc.collect()
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def list_all(drive: Any, page_size: int) -> tuple[float, int, int]:
    """(seconds, files, pages) for one full listing."""
    started = time.perf_counter()
    files = pages = 0
    token = None
    while True:
        page = (
            drive.files()
            .list(
                pageSize=page_size,
                fields=FIELDS,
                pageToken=token,
                corpora="allDrives",
                includeItemsFromAllDrives=True,
                supportsAllDrives=True,
            )
            .execute()
        )
        files += len(page["files"])
        pages += 1
        token = page.get("nextPageToken")
        if token is None:
            return time.perf_counter() - started, files, pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="Drive files to serve (default 100000)")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "emulator_list.json")
    args = parser.parse_args(argv)

    rss_start = rss_mb()
    started = time.perf_counter()
    emu = GoogleEmulator(seed=args.seed)
    account = emu.add_account("bench@example.com", drive_files=args.files)
    corpus_seconds = time.perf_counter() - started
    rss_corpus = rss_mb()

    with emu.serve() as base_url:
        drive = build(
            "drive",
            "v3",
            credentials=account.credentials(f"{base_url}/token"),
            static_discovery=True,
            client_options={"api_endpoint": f"{base_url}/drive/v3/"},
        )
        first_seconds, listed, pages = list_all(drive, args.page_size)
        rss_first = rss_mb()
        second_seconds, listed_again, _ = list_all(drive, args.page_size)
        rss_second = rss_mb()
    stats = emu.stats(account)
    if listed != args.files or listed_again != args.files:
        print(f"listed {listed} and {listed_again} files, expected {args.files}", file=sys.stderr)
        return 1

    results = {
        "benchmark": "emulator_list",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": args.files,
        "page_size": args.page_size,
        "pages": pages,
        "fields": FIELDS,
        "corpus_build_seconds": round(corpus_seconds, 3),
        "list_seconds": {"first": round(first_seconds, 3), "second": round(second_seconds, 3)},
        "files_per_second_first": round(listed / first_seconds),
        "rss_mb": {
            "before_corpus": round(rss_start, 1),
            "after_corpus": round(rss_corpus, 1),
            "after_first_listing": round(rss_first, 1),
            "after_second_listing": round(rss_second, 1),
        },
        "corpus_rss_bytes_per_file": round((rss_corpus - rss_start) * 2**20 / args.files),
        "second_listing_rss_growth_mb": round(rss_second - rss_first, 1),
        "http_requests": stats["totals"]["http_requests"],
        "target_seconds": TARGET_SECONDS,
        "under_target": first_seconds < TARGET_SECONDS and second_seconds < TARGET_SECONDS,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"corpus: {args.files} files built in {corpus_seconds:.2f} s")
    print(f"listing 1: {listed} files in {pages} pages, {first_seconds:.2f} s")
    print(f"listing 2: {listed_again} files, {second_seconds:.2f} s")
    rss = results["rss_mb"]
    print(
        f"RSS MB: before corpus {rss['before_corpus']}, after corpus {rss['after_corpus']}, "
        f"after listing 1 {rss['after_first_listing']}, after listing 2 {rss['after_second_listing']}"
    )
    print(f"target < {TARGET_SECONDS:.0f} s per listing: {'met' if results['under_target'] else 'MISSED'}")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
