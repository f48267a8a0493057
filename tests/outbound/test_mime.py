"""Building the .eml: headers nobody can inject into, valid under the strict policy, threading ids kept sane."""

from __future__ import annotations

import email
import email.policy
from email.headerregistry import Address

import pytest
from django.utils import timezone

from mailboxes import blobs, mime
from mailboxes.models import OutboundEmail
from mailboxes.smtp_errors import AttachmentMissing, InvalidAddress

pytestmark = pytest.mark.django_db

STRICT = email.policy.strict


def row(**fields) -> OutboundEmail:
    values = {
        "kind": "reply",
        "from_addr": "Acme Support <support@acme.test>",
        "to": ["Dana Customer <dana@customer.test>"],
        "subject": "Re: printer",
        "message_id": "<hd.0123456789abcdef.aa@acme.test>",
        "text": "Hello",
        "html": "<p>Hello</p>",
        "created_at": timezone.now(),
    }
    values.update(fields)
    return OutboundEmail(**values)


def built(outbound: OutboundEmail) -> bytes:
    result = mime.build(outbound)
    with result.file as f:
        return f.read()


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=STRICT)


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if line and not line[0].isspace()]


def test_crlf_in_subject_name_and_references_cannot_add_headers():
    evil_name = mime.clean_text("Dana\r\nBcc: victim@evil.test")
    outbound = row(
        subject="Hello\r\nBcc: victim@evil.test\r\nX-Injected: 1",
        to=[str(mime.make_address("Eve\r\nX-Injected: yes", "eve@customer.test"))],
        from_addr=str(mime.make_address(evil_name, "support@acme.test")),
        in_reply_to="<a@b>\r\nX-Injected: 2",
        references=["<r1@customer.test>\r\nBcc: x@evil.test", "<r2@customer.test>"],
        extra_headers={"X-Ok": "fine\r\nBcc: x@evil.test", "Bcc": "x@evil.test", "Bad Name:": "x"},
    )
    raw = built(outbound)
    names = header_names(raw)
    assert "Bcc" not in names and "X-Injected" not in names and "Bad Name" not in names
    assert names.count("From") == 1 and names.count("To") == 1 and names.count("Subject") == 1
    message = parse(raw)  # strict: any defect raises
    assert message["Subject"] == "Hello Bcc: victim@evil.test X-Injected: 1"
    assert message["X-Ok"] == "fine Bcc: x@evil.test"
    assert message["To"].addresses[0].display_name == "Eve X-Injected: yes"
    # Only the well-formed ids survive; the text around them is dropped, never copied into a header.
    assert message["In-Reply-To"] == "<a@b>"
    assert message["References"] == "<r1@customer.test> <r2@customer.test> <a@b>"


def test_non_ascii_names_and_subject_are_encoded_and_parse_back_strictly():
    outbound = row(
        subject="Größe über alles " + "lang " * 30,
        to=[str(mime.make_address('Jörg, "der" Chef', "joerg@customer.test"))],
        cc=[str(mime.make_address("Zoë", "zoe@customer.test")), "plain@customer.test"],
        text="Grüße\n.\nZeile mit Punkt",
    )
    raw = built(outbound)
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = parse(raw)
    assert message["Subject"] == outbound.subject.strip()
    assert message["To"].addresses[0] == Address('Jörg, "der" Chef', "joerg", "customer.test")
    assert [a.addr_spec for a in message["Cc"].addresses] == ["zoe@customer.test", "plain@customer.test"]
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Grüße\n.\nZeile mit Punkt"


def test_references_are_deduplicated_capped_to_the_last_20_and_end_with_the_parent():
    refs = [f"<id{i}@customer.test>" for i in range(30)] + ["<id3@customer.test>", "garbage", "<no-at-sign>"]
    result = mime.thread_references(refs, "<id5@customer.test>")
    assert len(result) == 20
    assert len(set(result)) == 20
    assert result[-1] == "<id5@customer.test>"
    assert "<id29@customer.test>" in result and "<id0@customer.test>" not in result
    assert all(mime.clean_msg_id(r) == r for r in result)


def test_a_whole_references_header_is_split_into_ids():
    header = "<a@x.test>\r\n <b@x.test>\t<c@x.test> <a@x.test>"
    assert mime.thread_references([header]) == ["<a@x.test>", "<b@x.test>", "<c@x.test>"]


@pytest.mark.parametrize(
    "value",
    ["no-at-sign", "a b@c.test", "<x@y.test>\nBcc: z@evil.test", '"quoted local"@x.test', "a@", "@x.test"],
)
def test_invalid_addresses_are_refused_in_plain_words(value):
    with pytest.raises(InvalidAddress) as exc:
        mime.parse_addresses([value])
    assert "address" in exc.value.message


def test_address_lists_with_commas_in_names_are_parsed():
    addresses = mime.parse_addresses(['"Bob, Jr" <bob@x.test>, carol@y.test'])
    assert [a.addr_spec for a in addresses] == ["bob@x.test", "carol@y.test"]
    assert mime.envelope_recipients([str(a) for a in addresses]) == ["bob@x.test", "carol@y.test"]


def test_attachments_are_streamed_from_storage_byte_exact():
    payload = bytes(range(256)) * 4097  # ~1 MB, not a multiple of 57
    blob = blobs.put(payload)
    outbound = row(
        attachment_refs=[
            {
                "key": blob.key,
                "filename": "Prüfbericht.pdf",
                "content_type": "application/pdf",
                "size": len(payload),
            },
            {
                "key": blob.key,
                "filename": "../../etc/passwd",
                "content_type": "bogus type",
                "size": len(payload),
            },
        ]
    )
    message = parse(built(outbound))
    first, second = list(message.iter_attachments())
    assert first.get_filename() == "Prüfbericht.pdf"
    assert first.get_content_type() == "application/pdf"
    assert first.get_content() == payload
    assert "/" not in second.get_filename() and not second.get_filename().startswith(".")
    assert second.get_content_type() == "application/octet-stream"


def test_missing_attachment_blob_is_a_plain_words_failure():
    outbound = row(attachment_refs=[{"key": "blobs/00/" + "0" * 64, "filename": "gone.pdf"}])
    with pytest.raises(AttachmentMissing) as exc:
        mime.build(outbound)
    assert "gone.pdf" in exc.value.message


@pytest.mark.parametrize(
    "kind,expected",
    [("auto_reply", "auto-replied"), ("notification", "auto-generated"), ("reply", None), ("forward", None)],
)
def test_automatic_mail_carries_auto_submitted(kind, expected):
    message = parse(built(row(kind=kind)))
    assert message["Auto-Submitted"] == expected
    assert (message["X-Auto-Response-Suppress"] == "All") is (expected is not None)


def test_message_ids_carry_the_reply_token_in_our_domain(settings):
    settings.SITE_URL = "https://help.example.com"
    from types import SimpleNamespace

    ticket = SimpleNamespace(reply_token="9bafec5d5ec16053")
    mid = mime.new_message_id(ticket=ticket)
    assert mid.startswith("<hd.9bafec5d5ec16053.") and mid.endswith("@help.example.com>")
    assert mime.reply_token_of(mid) == "9bafec5d5ec16053"
    assert mime.new_message_id(ticket=ticket) != mid
    assert mime.reply_token_of("<something@else.test>") == ""
