"""Write deploy/requirements.lock: every distribution '.[deploy]' installs, at an exact version.

pip resolves '.[deploy]' (without installing anything) with the development virtualenv's versions
as constraints, so the image runs what the test suite ran; what only the deploy extra brings
(dagster-k8s and its kubernetes client) gets the version pip picks, pinned from then on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = """# Exact versions of everything the image installs besides the project itself ('.[deploy]'),
# so the same commit builds the same image. The wheels deploy-check builds come from this file,
# and the Dockerfile installs nothing that is not in it.
# Regenerate after changing pyproject.toml's dependencies (`make deploy-lock`): pip resolves
# '.[deploy]' with the development virtualenv's versions as constraints and writes every pin.
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        constraints, report = Path(tmp) / "constraints.txt", Path(tmp) / "report.json"
        frozen = subprocess.run(
            [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
            check=True, capture_output=True, text=True,
        ).stdout
        constraints.write_text(frozen)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
             "--report", str(report), "-c", str(constraints), f"{REPO}[deploy]"],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    pins = sorted(
        (item["metadata"]["name"].lower().replace("_", "-"), item["metadata"]["version"]) for item in installs
    )
    lines = [f"{name}=={version}\n" for name, version in pins if name != "monolyth-pipelines"]
    (REPO / "deploy" / "requirements.lock").write_text(HEADER + "".join(lines))
    print(f"deploy/requirements.lock: {len(lines)} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
