"""Chromium for pytest-playwright: Debian's browser binary instead of a ``playwright install`` download.

The flags keep a headless Chromium quiet and container-friendly: no sandbox (we may run as root), no GPU, no
background traffic to Google (component updates, sync), no /dev/shm use (tiny in containers).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.rig import deps

DEFAULT_CHROMIUM = "/usr/lib/chromium/chromium"  # the real binary; /usr/bin/chromium is a noisy wrapper
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def chromium_path() -> str:
    """``CHROMIUM_PATH`` if set, else Debian's; skips (fails in CI) when it is not installed."""
    wanted = os.environ.get("CHROMIUM_PATH", DEFAULT_CHROMIUM)
    return deps.require("browser", {wanted: "chromium"})[wanted]


def launch_args(base: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments plus our executable and flags (``--headed`` still works)."""
    return {**base, "executable_path": chromium_path(), "args": [*base.get("args", []), *CHROMIUM_ARGS]}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Override of pytest-playwright's fixture: Debian's Chromium and container-friendly flags.

    This module is registered as a plugin from ``plugin.pytest_configure`` (see there for why).

    Also sets ``DJANGO_ALLOW_ASYNC_UNSAFE``: Playwright's sync API keeps an asyncio loop running in the main
    thread, and Django then refuses the ORM calls of ``live_server``/``db`` (SynchronousOnlyOperation),
    although nothing async touches the database. Only sessions that launch the browser get it.
    """
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    return launch_args(browser_type_launch_args)


def screenshot_path(root: Path, nodeid: str, name: str = "") -> Path:
    """``test-artifacts/screenshots/<test id>[-name].png``; the directory is created."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    if name:
        stem += "-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    path = root / "test-artifacts" / "screenshots" / f"{stem}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
