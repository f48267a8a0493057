"""Every message of the shared corpus goes through `import_eml` into S3 and tickets: the README's invariants."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import re

import pytest
from django.core.management import call_command

from mailboxes import blobs
from mailboxes.models import InboundMessage, InboundStatus
from tests.corpus import AUTOMATIC_TAGS, CORPUS, manifest_rows
from tests.inbound.conftest import make_mailbox
from tickets.models import Attachment, Message

UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]|^\.\.?$|^\.\.|[a-z][a-z0-9+.-]*://", re.I)


ROWS = manifest_rows()


def _leaf_hashes(raw: bytes) -> set[str]:
    """sha256 of every MIME leaf's transfer-decoded payload, by the stdlib as an independent decoder."""
    hashes = set()
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in message.walk():
        if part.is_multipart():
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            continue
        if isinstance(payload, bytes):
            hashes.add(hashlib.sha256(payload).hexdigest())
    return hashes


def test_corpus_is_present():
    assert len(ROWS) >= 290, f"corpus not found under {CORPUS}"


@pytest.mark.django_db
@pytest.mark.parametrize("row", ROWS, ids=[r["path"] for r in ROWS])
def test_corpus_message_goes_through_import_eml(row, tenant, s3_storage):
    path = CORPUS / row["path"]
    raw = path.read_bytes()
    tags = set(row["tags"].split(","))
    mailbox = make_mailbox(tenant, autoreply_enabled=True)

    out = io.StringIO()
    call_command("import_eml", "--mailbox", str(mailbox.pk), str(path), stdout=out)

    inbound = InboundMessage.objects.get(mailbox=mailbox)
    assert inbound.status in (InboundStatus.PROCESSED, InboundStatus.QUARANTINED), inbound.status
    assert inbound.outcome in ("new-ticket", "reply", "automatic", "quarantined"), inbound.outcome
    assert blobs.read(inbound.raw_key) == raw  # the raw message is kept byte for byte
    assert inbound.sha256 == hashlib.sha256(raw).hexdigest()
    steps = {s["step"]: s.get("note", "") for s in inbound.trace}

    if inbound.status == InboundStatus.QUARANTINED:
        assert inbound.quarantine_reason
        if tags & AUTOMATIC_TAGS:
            assert steps.get("classify", "").startswith("automatic") or "limit" in inbound.quarantine_reason
        return

    message = Message.objects.get(inbound=inbound)
    assert message.ticket_id == inbound.ticket_id
    for text in (message.subject, message.text, message.html, message.from_name, message.ticket.title):
        text.encode("utf-8")  # no lone surrogates
        assert "\x00" not in text
    if tags & AUTOMATIC_TAGS:
        assert message.kind == "automatic", steps.get("classify")
        assert not steps.get("auto-reply", "").startswith("queued")

    leaves = _leaf_hashes(raw)
    for att in Attachment.objects.filter(message=message):
        assert att.filename and not UNSAFE_NAME.search(att.filename), att.filename
        stored = blobs.read(att.storage_key)
        assert hashlib.sha256(stored).hexdigest() == att.sha256
        assert len(stored) == att.size
        if not att.content_type.startswith("message/") and "tnef" not in tags and "uuencode" not in tags:
            assert att.sha256 in leaves, f"{att.filename}: stored bytes differ from the decoded MIME part"
