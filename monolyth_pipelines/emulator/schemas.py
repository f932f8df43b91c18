"""The discovery documents shipped inside google-api-python-client: the emulator's field authority."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def discovery(api: str) -> dict[str, Any]:
    """The static discovery document of ``api`` (``"drive.v3"`` or ``"gmail.v1"``)."""
    package = resources.files("googleapiclient") / "discovery_cache" / "documents"
    return json.loads((package / f"{api}.json").read_text(encoding="utf-8"))


def schemas(api: str) -> dict[str, Any]:
    return discovery(api)["schemas"]
