"""``emulator serve``: argument wiring, and the served process used the way the demo uses it."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from monolyth_pipelines.emulator.cli import add_emulator_commands, build_emulator

REPO = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="monolyth-connectors")
    add_emulator_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_arguments_and_the_emulator_they_build() -> None:
    args = _parse(
        "emulator",
        "serve",
        "--port",
        "0",
        "--seed",
        "3",
        "--accounts",
        "2",
        "--drive-files",
        "7",
        "--gmail-threads",
        "4",
        "--error-rate",
        "0.1",
        "--gmail-units-per-second",
        "100",
        "--history-retention",
        "50",
    )
    assert callable(args.func) and args.emulator_command == "serve"
    emu = build_emulator(args)
    assert [a.email for a in emu.accounts] == ["user1@example.com", "user2@example.com"]
    assert len(emu.drive("user2@example.com").files()) == 7
    assert emu.quotas.gmail_units_per_second == 100 and emu.faults.rules[0].rate == 0.1
    assert emu.gmail("user1@example.com").retention == 50


def test_serve_writes_authorized_user_files_and_serves_them(tmp_path: Path) -> None:
    accounts_file, accounts_dir = tmp_path / "accounts.json", tmp_path / "accounts"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monolyth_pipelines.emulator",
            "serve",
            "--port",
            "0",
            "--accounts",
            "2",
            "--drive-files",
            "10",
            "--gmail-threads",
            "3",
            "--accounts-file",
            str(accounts_file),
            "--accounts-dir",
            str(accounts_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Google API emulator serving at http://127.0.0.1:")
        base_url = first.split()[-1]
        written = json.loads(accounts_file.read_text())
        assert written["base_url"] == base_url and len(written["accounts"]) == 2
        assert stat.S_IMODE(accounts_file.stat().st_mode) == 0o600
        info = json.loads((accounts_dir / "user2@example.com.json").read_text())
        assert info["token_uri"] == f"{base_url}/token"
        creds = Credentials.from_authorized_user_info(info).with_token_uri(info["token_uri"])
        drive = build(
            "drive",
            "v3",
            credentials=creds,
            static_discovery=True,
            client_options={"api_endpoint": f"{base_url}/drive/v3/"},
        )
        assert (
            len(
                drive.files()
                .list(corpora="allDrives", includeItemsFromAllDrives=True, supportsAllDrives=True)
                .execute()["files"]
            )
            == 10
        )
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0
    for account in written["accounts"]:
        for secret in ("refresh_token", "client_secret", "token"):
            assert account["authorized_user"][secret] not in out + err
