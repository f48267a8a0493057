"""The shared mail corpus (../shared/corpus), read in place and never copied: where it is, its manifest, and
the guard every corpus test starts with (skip without the corpus, fail under CI=true)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
if not CORPUS.is_dir():
    CORPUS = Path(os.environ.get("HELPDESK_CORPUS", "/work/shared/corpus"))

#: Manifest tags of machine-written mail (auto-replies, bounces, receipts, reports).
AUTOMATIC_TAGS = frozenset(
    {
        "auto-reply",
        "auto-submitted",
        "x-autoreply",
        "precedence-bulk",
        "precedence-junk",
        "x-auto-response-suppress",
        "bounce-dsn",
        "mdn",
        "arf-feedback",
    }
)


def tags_of(row: dict[str, str]) -> set[str]:
    return set(row["tags"].split(","))


def manifest_rows() -> list[dict[str, str]]:
    """Every message of MANIFEST.tsv (not the expected-output files next to them); [] without the corpus."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [row for row in rows if "expected-output" not in tags_of(row)]


def tagged(*tags: str) -> list[dict[str, str]]:
    """The messages carrying any of `tags`."""
    return [row for row in manifest_rows() if set(tags) & tags_of(row)]


def params(rows: list[dict[str, str]]) -> list:
    """pytest parameters of the rows' paths, named after them; one "corpus-missing" case when there are none."""
    return [pytest.param(row["path"], id=row["path"].removeprefix("mail/")) for row in rows] or [
        pytest.param(None, id="corpus-missing")
    ]


def require_corpus(path: str | None) -> None:
    """Skip (fail under CI=true) when the corpus is not there; `path` None means no message was found."""
    if path is None or not CORPUS.is_dir():
        message = f"the shared mail corpus is not at {CORPUS}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
