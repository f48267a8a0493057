"""What to do when a server's binary is missing: skip locally, fail in CI, and say what to install.

A developer without Postfix should still be able to run the rest of the suite, so fixtures skip. In CI a
skipped server would silently hide a whole area of tests, so there the same fixture fails. Either way the
Debian packages are collected so the session can print one line telling the developer what to install.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# Marker in skip messages, so the summary can count the tests skipped for a missing server.
SKIP_MARKER = "[rig: missing]"
# Where Debian puts daemons; not on a normal user's PATH.
_SYSTEM_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")

missing_packages: dict[str, None] = {}  # ordered set of package names to install


def in_ci() -> bool:
    """CI=true (GitHub Actions, GitLab, etc. set it) turns skips into failures."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def find_binary(name: str) -> str | None:
    """Absolute path of ``name`` (a command or an absolute path), looking in sbin dirs and the venv too."""
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([os.environ.get("PATH", ""), venv_bin, *_SYSTEM_DIRS])
    return shutil.which(name, path=path)


def unavailable(server: str, reason: str, packages: list[str]) -> None:
    """Skip (or fail in CI) the fixture for ``server``, remembering which packages would fix it."""
    for package in packages:
        missing_packages.setdefault(package)
    hint = f" (install: {' '.join(packages)})" if packages else ""
    message = f"{SKIP_MARKER} {server}: {reason}{hint}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require(server: str, binaries: dict[str, str]) -> dict[str, str]:
    """Resolve ``{binary: debian package}``; skip/fail naming every missing package at once.

    Returns ``{binary: absolute path}``.
    """
    found: dict[str, str] = {}
    missing: list[str] = []
    for binary, package in binaries.items():
        path = find_binary(binary)
        if path is None:
            if package not in missing:
                missing.append(package)
        else:
            found[binary] = path
    if missing:
        names = ", ".join(b for b in binaries if b not in found)
        unavailable(server, f"not found: {names}", missing)
    return found


def require_root(server: str) -> None:
    """Some servers (Postfix) only run as root; treat "not root" like a missing binary."""
    if os.geteuid() != 0:
        unavailable(server, "needs root (run the tests as root, e.g. in the CI container)", [])
