"""Canned answers: prepared replies with variables and attachments, offered to agents in the composer.

Bodies are sandboxed templates (`mailboxes.signatures`): `{{ contact.first_name }}`, `{{ ticket.reference }}`,
`{{ agent.name }}` and friends. Attachment bytes go to object storage under their content hash
(`mailboxes.blobs`), so an answer used a thousand times stores its PDF once.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.defaultfilters import filesizeformat

from accounts.models import Membership
from mailboxes import blobs, signatures
from tickets.models import Attachment, CannedAnswer, CannedAnswerAttachment

VARIABLES = [v.strip() for v in signatures.VARIABLES_HELP.split(", ")]
MAX_ATTACHMENTS = 10


def check_body(body: str) -> str | None:
    """None if the body is a usable template, else what is wrong in plain words."""
    return signatures.check(body)


def check_files(files: Iterable[UploadedFile], *, already: int = 0) -> None:
    """Refuse too many or too large files, with a message for the form."""
    files = list(files)
    if already + len(files) > MAX_ATTACHMENTS:
        raise ValidationError(f"An answer can carry at most {MAX_ATTACHMENTS} files.")
    for f in files:
        if f.size > settings.ATTACHMENT_MAX_BYTES:
            raise ValidationError(
                f"“{f.name}” is {filesizeformat(f.size)}; files can be at most "
                f"{filesizeformat(settings.ATTACHMENT_MAX_BYTES)}."
            )


def save_answer(answer: CannedAnswer, *, files: Iterable[UploadedFile] = (), actor=None) -> CannedAnswer:
    """Create or update an answer and add the uploaded files (uploaded before the row is written)."""
    files = list(files)
    if answer.pk is None:
        answer.created_by = actor
    # Blobs are written before the transaction (no transaction across storage I/O); a failure leaves at most
    # an orphan blob, never a row without bytes.
    stored = [(f, blobs.put_file(f.file)) for f in files]
    with transaction.atomic():
        answer.save()
        CannedAnswerAttachment.objects.bulk_create(
            CannedAnswerAttachment(
                tenant_id=answer.tenant_id,
                canned_answer=answer,
                filename=(f.name or "attachment")[:255],
                content_type=(f.content_type or "application/octet-stream")[:255],
                size=blob.size,
                sha256=blob.sha256,
                storage_key=blob.key,
            )
            for f, blob in stored
        )
    return answer


def remove_attachment(attachment: CannedAnswerAttachment) -> None:
    """Detach a file; its bytes go too unless another answer or a message still uses them."""
    key = attachment.storage_key
    attachment.delete()
    transaction.on_commit(lambda: _forget_blob(key))


def delete_answer(answer: CannedAnswer) -> None:
    """Delete the answer and the bytes only it used."""
    keys = list(answer.attachments.values_list("storage_key", flat=True))
    answer.delete()
    for key in keys:
        transaction.on_commit(lambda key=key: _forget_blob(key))


def _forget_blob(key: str) -> None:
    still_used = (
        CannedAnswerAttachment.objects.filter(storage_key=key).exists()
        or Attachment.objects.filter(storage_key=key).exists()
    )
    if not still_used:
        blobs.delete(key)


def search(
    membership: Membership, query: str = "", *, mailbox=None, limit: int = 20
) -> QuerySet[CannedAnswer]:
    """Answers the member may use, matching `query` in key, title or body; key matches first."""
    qs = CannedAnswer.objects.available_to(membership, mailbox=mailbox).prefetch_related("attachments")
    query = query.strip()
    if query:
        qs = qs.filter(Q(key__istartswith=query) | Q(title__icontains=query) | Q(body__icontains=query))
    return qs.order_by("key")[:limit]


def get_attachment(membership: Membership, attachment_id: int) -> CannedAnswerAttachment | None:
    """The attachment if its answer is one the member may use; None otherwise (the view answers 404)."""
    answers = CannedAnswer.objects.available_to(membership).values("pk")
    return (
        CannedAnswerAttachment.objects.filter(
            tenant=membership.tenant, pk=attachment_id, canned_answer__in=answers
        )
        .select_related("canned_answer")
        .first()
    )


def render(answer: CannedAnswer, *, ticket=None, agent=None, mailbox=None) -> str:
    """The answer's body with its variables filled in for this ticket and agent (plain text)."""
    variables = signatures.variables(tenant=answer.tenant, agent=agent, ticket=ticket, mailbox=mailbox)
    return signatures.render_text(answer.body, variables)
