"""The ledger's helpers: header summary, and big attachments decoded straight into storage."""

from __future__ import annotations

import hashlib
import os

import pytest

from mailboxes import blobs, inbound, parsing
from tests.inbound.conftest import build_mail


def test_summary_reads_only_the_header_block():
    raw = build_mail(sender="Zoë <zoe@customer.test>", subject="Grüße", message_id="<a.b@c.test>")
    summary = inbound.summarize(raw + b"\r\nMessage-ID: <not-a-header@x>\r\n")
    assert summary == inbound.Summary("<a.b@c.test>", "Zoë <zoe@customer.test>", "Grüße")


def test_big_attachment_is_streamed_and_the_parser_still_names_and_types_it(s3_storage):
    payload = os.urandom(3 * 1024 * 1024)
    raw = build_mail(
        body="See attached.", attachments=[("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + payload)]
    )
    reference = parsing.parse(raw)

    small, streamed = inbound.stream_large_parts(raw)
    assert len(small) < 20_000 and len(streamed) == 1
    parsed = parsing.parse(small)
    assert parsed.text_body == reference.text_body
    (att,) = parsed.attachments
    part = inbound.streamed_part(att.payload, streamed)
    assert part is not None
    assert (att.filename, att.content_type) == (
        reference.attachments[0].filename,
        reference.attachments[0].content_type,
    )
    assert (
        part.blob.sha256
        == reference.attachments[0].sha256
        == hashlib.sha256(b"\x89PNG\r\n\x1a\n" + payload).hexdigest()
    )
    assert blobs.read(part.blob.key) == reference.attachments[0].payload


def test_text_bodies_nested_messages_and_broken_base64_are_left_to_the_parser(s3_storage):
    big_text = ("line of text " * 8 + "\n") * 20_000
    raw = build_mail(body=big_text)  # a big text body (base64 or QP): never streamed
    assert inbound.stream_large_parts(raw)[1] == {}

    inner = build_mail(attachments=[("inner.bin", "application/octet-stream", os.urandom(2 * 1024 * 1024))])
    outer = build_mail(attachments=[("fwd.eml", "message/rfc822", inner)])
    assert inbound.stream_large_parts(outer)[1] == {}

    broken = build_mail(attachments=[("x.bin", "application/octet-stream", os.urandom(2 * 1024 * 1024))])
    cut = broken.index(b"filename=")
    broken = broken[: cut + 2000] + b"*" + broken[cut + 2001 :]  # a stray character inside the base64 body
    small, streamed = inbound.stream_large_parts(broken)
    assert streamed == {} and small == broken


@pytest.mark.parametrize("size", [0, 1, 5 * 1024 * 1024])
def test_blobs_are_content_addressed_and_idempotent(s3_storage, size):
    data = os.urandom(size)
    first = blobs.put(data)
    second = blobs.put(data)
    assert first == second and first.key.endswith(hashlib.sha256(data).hexdigest())
    assert blobs.read(first.key) == data
