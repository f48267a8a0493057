"""Automatic mail about tickets: confirmations and resolutions to contacts, alerts to agents.

Each kind has a template per tenant (`NotificationTemplate`, edited under Settings → Templates with a live
preview); a tenant without its own row gets the default in its language. Templates are rendered in the
signature sandbox (`mailboxes.signatures`) with plain values only. Everything goes through the outbox
(`mailboxes.outbound.queue`) in the caller's transaction, so a notification is sent only if the change that
caused it commits. Mail to contacts carries the ticket's subject tag so answers thread back; every
notification carries ``Auto-Submitted`` (``auto-replied`` for the new-ticket confirmation, which answers a
mail; ``auto-generated`` otherwise). Agents choose what they get (`NotificationPreference`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from mailboxes import signatures
from mailboxes.errors import MailError
from mailboxes.models import Mailbox, OutboundEmail, OutboundKind
from tickets.models import NotificationKind, NotificationPreference, NotificationTemplate, Ticket

log = logging.getLogger(__name__)

_EN = {
    NotificationKind.NEW_TICKET_CONFIRMATION: (
        "We received your request: {{ ticket.title }}",
        "Hello {{ contact.first_name|default:'there' }},\n\n"
        "Thank you for writing to {{ tenant.name }}. Your request has the number {{ ticket.reference }}; "
        "we will get back to you as soon as we can.\n\n"
        "To add anything, simply reply to this email.\n\n{{ tenant.name }}",
    ),
    NotificationKind.AGENT_REPLY: (
        "New reply on {{ ticket.reference }}: {{ ticket.title }}",
        "Hello {{ agent.first_name|default:agent.name }},\n\n"
        "{{ contact.name }} replied on ticket {{ ticket.reference }} “{{ ticket.title }}”:\n\n"
        "{{ message.excerpt }}\n\nOpen the ticket: {{ ticket.url }}",
    ),
    NotificationKind.ASSIGNED: (
        "Assigned to you: {{ ticket.reference }} {{ ticket.title }}",
        "Hello {{ agent.first_name|default:agent.name }},\n\n"
        "{{ actor.name|default:'The helpdesk' }} assigned ticket {{ ticket.reference }} “{{ ticket.title }}” "
        "to you.\n\nOpen the ticket: {{ ticket.url }}",
    ),
    NotificationKind.RESOLUTION: (
        "Your request is solved: {{ ticket.title }}",
        "Hello {{ contact.first_name|default:'there' }},\n\n"
        "We marked your request {{ ticket.reference }} as solved. If something is still not right, just reply "
        "to this email and we will pick it up again.\n\n{{ tenant.name }}",
    ),
    NotificationKind.SLA_BREACH: (
        "SLA missed: {{ ticket.reference }} {{ ticket.title }}",
        "Hello {{ agent.first_name|default:agent.name }},\n\n"
        "Ticket {{ ticket.reference }} “{{ ticket.title }}” missed its {{ sla.target }} target "
        "({{ sla.policy }}), due {{ sla.due }}.\n\nOpen the ticket: {{ ticket.url }}",
    ),
    NotificationKind.DELIVERY_FAILED: (
        "Not delivered: your reply on {{ ticket.reference }}",
        "Hello {{ agent.first_name|default:agent.name }},\n\n"
        "Your reply on ticket {{ ticket.reference }} “{{ ticket.title }}” to {{ delivery.recipients }} could "
        "not be delivered.\n\n{{ delivery.message }}\n\nWhat to do: {{ delivery.advice }}\n\n"
        "The ticket was reopened: {{ ticket.url }}",
    ),
}

_DE = {
    NotificationKind.NEW_TICKET_CONFIRMATION: (
        "Wir haben Ihre Anfrage erhalten: {{ ticket.title }}",
        "Hallo {{ contact.first_name|default:'' }},\n\n"
        "vielen Dank für Ihre Nachricht an {{ tenant.name }}. Ihre Anfrage hat die Nummer {{ ticket.reference }}; "
        "wir melden uns so bald wie möglich.\n\nFür Ergänzungen antworten Sie einfach auf diese E-Mail.\n\n"
        "{{ tenant.name }}",
    ),
    NotificationKind.RESOLUTION: (
        "Ihre Anfrage ist gelöst: {{ ticket.title }}",
        "Hallo {{ contact.first_name|default:'' }},\n\n"
        "wir haben Ihre Anfrage {{ ticket.reference }} als gelöst markiert. Falls noch etwas offen ist, antworten "
        "Sie einfach auf diese E-Mail.\n\n{{ tenant.name }}",
    ),
    NotificationKind.AGENT_REPLY: (
        "Neue Antwort zu {{ ticket.reference }}: {{ ticket.title }}",
        "Hallo {{ agent.first_name|default:agent.name }},\n\n{{ contact.name }} hat zu Ticket "
        "{{ ticket.reference }} „{{ ticket.title }}“ geantwortet:\n\n{{ message.excerpt }}\n\n"
        "Ticket öffnen: {{ ticket.url }}",
    ),
    NotificationKind.ASSIGNED: (
        "Ihnen zugewiesen: {{ ticket.reference }} {{ ticket.title }}",
        "Hallo {{ agent.first_name|default:agent.name }},\n\n{{ actor.name|default:'Der Helpdesk' }} hat Ihnen "
        "das Ticket {{ ticket.reference }} „{{ ticket.title }}“ zugewiesen.\n\nTicket öffnen: {{ ticket.url }}",
    ),
    NotificationKind.SLA_BREACH: (
        "SLA verfehlt: {{ ticket.reference }} {{ ticket.title }}",
        "Hallo {{ agent.first_name|default:agent.name }},\n\nTicket {{ ticket.reference }} „{{ ticket.title }}“ "
        "hat sein Ziel ({{ sla.target }}, {{ sla.policy }}) verfehlt, fällig {{ sla.due }}.\n\n"
        "Ticket öffnen: {{ ticket.url }}",
    ),
    NotificationKind.DELIVERY_FAILED: (
        "Nicht zugestellt: Ihre Antwort zu {{ ticket.reference }}",
        "Hallo {{ agent.first_name|default:agent.name }},\n\nIhre Antwort zu Ticket {{ ticket.reference }} an "
        "{{ delivery.recipients }} konnte nicht zugestellt werden.\n\n{{ delivery.message }}\n\n"
        "Was tun: {{ delivery.advice }}\n\nDas Ticket wurde wieder geöffnet: {{ ticket.url }}",
    ),
}

_FR = {
    NotificationKind.NEW_TICKET_CONFIRMATION: (
        "Nous avons bien reçu votre demande : {{ ticket.title }}",
        "Bonjour {{ contact.first_name|default:'' }},\n\n"
        "Merci pour votre message à {{ tenant.name }}. Votre demande porte le numéro {{ ticket.reference }} ; "
        "nous vous répondrons dès que possible.\n\nPour compléter, répondez simplement à cet e-mail.\n\n"
        "{{ tenant.name }}",
    ),
    NotificationKind.RESOLUTION: (
        "Votre demande est résolue : {{ ticket.title }}",
        "Bonjour {{ contact.first_name|default:'' }},\n\n"
        "Nous avons marqué votre demande {{ ticket.reference }} comme résolue. Si quelque chose ne va pas, "
        "répondez simplement à cet e-mail.\n\n{{ tenant.name }}",
    ),
}

_ES = {
    NotificationKind.NEW_TICKET_CONFIRMATION: (
        "Hemos recibido su solicitud: {{ ticket.title }}",
        "Hola {{ contact.first_name|default:'' }}:\n\n"
        "Gracias por escribir a {{ tenant.name }}. Su solicitud tiene el número {{ ticket.reference }}; "
        "le responderemos lo antes posible.\n\nPara añadir algo, responda a este correo.\n\n{{ tenant.name }}",
    ),
    NotificationKind.RESOLUTION: (
        "Su solicitud está resuelta: {{ ticket.title }}",
        "Hola {{ contact.first_name|default:'' }}:\n\n"
        "Hemos marcado su solicitud {{ ticket.reference }} como resuelta. Si algo no está bien, responda a "
        "este correo.\n\n{{ tenant.name }}",
    ),
}

_NL = {
    NotificationKind.NEW_TICKET_CONFIRMATION: (
        "We hebben uw aanvraag ontvangen: {{ ticket.title }}",
        "Hallo {{ contact.first_name|default:'' }},\n\n"
        "Bedankt voor uw bericht aan {{ tenant.name }}. Uw aanvraag heeft nummer {{ ticket.reference }}; "
        "we reageren zo snel mogelijk.\n\nWilt u iets toevoegen? Beantwoord dan deze e-mail.\n\n{{ tenant.name }}",
    ),
    NotificationKind.RESOLUTION: (
        "Uw aanvraag is opgelost: {{ ticket.title }}",
        "Hallo {{ contact.first_name|default:'' }},\n\n"
        "We hebben uw aanvraag {{ ticket.reference }} als opgelost gemarkeerd. Klopt er iets niet, beantwoord "
        "dan deze e-mail.\n\n{{ tenant.name }}",
    ),
}

# Defaults per language; a kind missing in a language falls back to English.
DEFAULTS: dict[str, dict[str, tuple[str, str]]] = {"en": _EN, "de": _DE, "fr": _FR, "es": _ES, "nl": _NL}

TO_CONTACT = (NotificationKind.NEW_TICKET_CONFIRMATION, NotificationKind.RESOLUTION)
PREFERENCE_OF = {
    NotificationKind.AGENT_REPLY: "reply_on_my_ticket",
    NotificationKind.ASSIGNED: "assigned_to_me",
    NotificationKind.SLA_BREACH: "sla_breach",
    NotificationKind.DELIVERY_FAILED: "delivery_failed",
}


@dataclass(frozen=True)
class Wording:
    subject: str
    body: str
    enabled: bool = True
    customized: bool = False


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


def default_wording(kind: str, language: str) -> Wording:
    subject, body = DEFAULTS.get(language, _EN).get(kind) or _EN[kind]
    return Wording(subject, body)


def wording(tenant, kind: str) -> Wording:
    """The tenant's template for a kind, else the default in the tenant's language."""
    row = NotificationTemplate.objects.filter(tenant=tenant, kind=kind).first()
    if row is not None:
        return Wording(row.subject, row.body, row.enabled, customized=True)
    return default_wording(kind, tenant.language)


def render(subject: str, body: str, variables: dict[str, Any]) -> Rendered:
    """Subject (one line) and plain-text body; raises signatures.TemplateProblem for a broken template."""
    rendered_subject = " ".join(signatures.render_text(subject, variables).split())
    return Rendered(rendered_subject, signatures.render_text(body, variables))


def sample_variables(tenant, agent=None) -> dict[str, Any]:
    """Made-up values for the live preview on the Templates page."""
    context = signatures.variables(tenant=tenant, agent=agent)
    context["ticket"] = {
        "number": "1042",
        "reference": f"{tenant.slug.upper()}-1042",
        "title": "Printer on the 2nd floor does not print",
        "queue": "Support",
        "status": "Open",
        "priority": "Normal",
        "url": f"{settings.SITE_URL}/{tenant.slug}/1042/",
    }
    context["contact"] = {"name": "Dana Customer", "first_name": "Dana", "email": "dana@example.com"}
    context["actor"] = {"name": "Adam Admin"}
    context["message"] = {"excerpt": "It still shows “paper jam” although the tray is empty."}
    context["sla"] = {"target": "first response", "policy": "Standard", "due": "Mon 10:00"}
    context["delivery"] = {
        "recipients": "dana@example.com",
        "message": "The address does not exist (the server does not know it).",
        "advice": "Check the address for typos.",
    }
    return context


def preview(tenant, subject: str, body: str, agent=None) -> Rendered:
    return render(subject, body, sample_variables(tenant, agent))


# --- who, from where --------------------------------------------------------------------------------------


def mailbox_for(tenant, ticket: Ticket | None = None) -> Mailbox | None:
    """The ticket's mailbox, else its queue's, else the tenant's default, else any active one."""
    if ticket is not None:
        if ticket.mailbox_id and ticket.mailbox.is_active:
            return ticket.mailbox
        if ticket.queue_id and ticket.queue.default_mailbox_id:
            return ticket.queue.default_mailbox
    mailboxes = Mailbox.objects.for_tenant(tenant).active()
    return mailboxes.filter(is_default=True).first() or mailboxes.order_by("pk").first()


def wants(tenant, user, kind: str) -> bool:
    """Whether the agent wants this kind of notification (yes unless they switched it off)."""
    if user is None or not user.is_active or not user.memberships.filter(tenant=tenant).exists():
        return False
    field = PREFERENCE_OF.get(kind)
    if field is None:
        return True
    pref = NotificationPreference.objects.filter(tenant=tenant, user=user).first()
    return True if pref is None else bool(getattr(pref, field))


def _tz(tenant):
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _excerpt(text: str, limit: int = 600) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _notify(
    ticket: Ticket,
    kind: str,
    *,
    to: str,
    agent=None,
    extra: dict[str, Any] | None = None,
    in_reply_to: str = "",
    references: list[str] | None = None,
) -> OutboundEmail | None:
    tenant = ticket.tenant
    words = wording(tenant, kind)
    if not words.enabled:
        return None
    mailbox = mailbox_for(tenant, ticket)
    if mailbox is None:
        log.info("no mailbox to send the %s notification of ticket %s", kind, ticket.pk)
        return None
    variables = signatures.variables(
        tenant=tenant, ticket=ticket, agent=agent, mailbox=mailbox, **(extra or {})
    )
    try:
        rendered = render(words.subject, words.body, variables)
    except signatures.TemplateProblem:
        log.warning("the %s template of tenant %s is broken; using the default", kind, tenant.slug)
        fallback = default_wording(kind, tenant.language)
        rendered = render(fallback.subject, fallback.body, variables)
    from mailboxes import outbound
    from tickets import threading

    subject = rendered.subject
    if kind in TO_CONTACT:
        subject = threading.with_subject_tag(subject, ticket)
    try:
        return outbound.queue(
            tenant=tenant,
            mailbox=mailbox,
            kind=OutboundKind.AUTO_REPLY
            if kind == NotificationKind.NEW_TICKET_CONFIRMATION
            else OutboundKind.NOTIFICATION,
            to=[to],
            subject=subject,
            text=rendered.text,
            ticket=ticket,
            in_reply_to=in_reply_to,
            references=references or [],
        )
    except MailError as exc:  # validation happens before anything is written: nothing to undo
        log.warning("%s notification of ticket %s not sent: %s", kind, ticket.pk, exc.message)
        return None


# --- the notifications ------------------------------------------------------------------------------------


def new_ticket_confirmation(ticket: Ticket, message=None) -> OutboundEmail | None:
    """To the contact who opened the ticket (an auto-reply to their mail)."""
    if ticket.requester_id is None:
        return None
    in_reply_to, references = "", []
    if message is not None and message.message_id:
        in_reply_to = message.message_id
        references = [*list(message.references or [])[-10:], message.message_id]
    return _notify(
        ticket,
        NotificationKind.NEW_TICKET_CONFIRMATION,
        to=ticket.requester.email,
        in_reply_to=in_reply_to,
        references=references,
    )


def ticket_solved(ticket: Ticket, actor=None) -> OutboundEmail | None:
    """To the contact when their ticket is solved (call after the status change, in its transaction)."""
    if ticket.requester_id is None:
        return None
    last = ticket.messages.exclude(message_id="").exclude(kind="note").order_by("-created_at", "-id").first()
    in_reply_to = last.message_id if last else ""
    references = [*list(last.references or [])[-10:], last.message_id] if last else []
    return _notify(
        ticket,
        NotificationKind.RESOLUTION,
        to=ticket.requester.email,
        agent=actor,
        in_reply_to=in_reply_to,
        references=references,
    )


def customer_replied(ticket: Ticket, message) -> OutboundEmail | None:
    """To the assignee: the customer answered on their ticket."""
    agent = ticket.assignee
    if agent is None or not wants(ticket.tenant, agent, NotificationKind.AGENT_REPLY):
        return None
    return _notify(
        ticket,
        NotificationKind.AGENT_REPLY,
        to=agent.email,
        agent=agent,
        extra={"message": {"excerpt": _excerpt(getattr(message, "text", ""))}},
    )


def assigned(ticket: Ticket, assignee, actor=None) -> OutboundEmail | None:
    """To the new assignee, unless they assigned the ticket to themselves."""
    if assignee is None or (actor is not None and actor.pk == assignee.pk):
        return None
    if not wants(ticket.tenant, assignee, NotificationKind.ASSIGNED):
        return None
    actor_vars = {"name": actor.display_name} if actor is not None else {}
    return _notify(
        ticket, NotificationKind.ASSIGNED, to=assignee.email, agent=assignee, extra={"actor": actor_vars}
    )


def sla_breached(breach) -> list[OutboundEmail]:
    """To the assignee (to the tenant's admins when nobody is assigned)."""
    from accounts.models import Membership

    ticket = breach.ticket
    if ticket.assignee_id:
        people = [ticket.assignee]
    else:
        people = [
            m.user for m in Membership.objects.for_tenant(ticket.tenant).admins().select_related("user")
        ]
    due = timezone.localtime(breach.due_at, _tz(ticket.tenant))
    sla = {
        "target": breach.get_target_display().lower(),
        "policy": breach.policy.name if breach.policy_id else "",
        "due": due.strftime("%a %d %b %H:%M %Z"),
    }
    sent = []
    for person in people:
        if wants(ticket.tenant, person, NotificationKind.SLA_BREACH):
            row = _notify(
                ticket, NotificationKind.SLA_BREACH, to=person.email, agent=person, extra={"sla": sla}
            )
            if row is not None:
                sent.append(row)
    return sent


def delivery_failed(outbound_row: OutboundEmail, error) -> OutboundEmail | None:
    """To the agent whose mail could not be delivered (else the assignee)."""
    ticket = Ticket.objects.select_related("tenant", "mailbox", "queue", "requester", "assignee").get(
        pk=outbound_row.ticket_id
    )
    agent = outbound_row.created_by or ticket.assignee
    if agent is None or not wants(ticket.tenant, agent, NotificationKind.DELIVERY_FAILED):
        return None
    recipients = ", ".join([*outbound_row.to, *outbound_row.cc, *outbound_row.bcc])
    extra = {"delivery": {"recipients": recipients, "message": error.message, "advice": error.advice}}
    return _notify(ticket, NotificationKind.DELIVERY_FAILED, to=agent.email, agent=agent, extra=extra)
