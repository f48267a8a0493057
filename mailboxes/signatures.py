"""Signatures, greetings, layouts and notification texts: Django templates rendered in a sandbox.

Admins and agents write these templates, and they are filled with things a customer wrote (a contact's
name), so they get their own template engine:

* only a short list of tags and filters (no ``include``, ``extends``, ``load``, ``debug``, ``url``, no
  ``autoescape off`` or ``safe``, no loops or padding filters that could make the output explode);
* the context holds plain strings in dicts, never model instances, so there is no attribute of any object
  to reach (``{{ agent.password }}`` is simply empty);
* HTML output (layouts) is autoescaped; plain-text templates are rendered as text and escaped as a whole
  when they go into an HTML part (``text_to_html``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.template import Context, Engine, Library, TemplateSyntaxError, defaultfilters, defaulttags
from django.utils.html import escape, urlize
from django.utils.safestring import SafeString, mark_safe

MAX_TEMPLATE_CHARS = 20_000

ALLOWED_TAGS = ("if", "with", "firstof", "now", "comment", "spaceless", "verbatim", "templatetag")
ALLOWED_FILTERS = (
    "capfirst",
    "cut",
    "date",
    "default",
    "default_if_none",
    "escape",
    "first",
    "force_escape",
    "join",
    "last",
    "length",
    "linebreaks",
    "linebreaksbr",
    "lower",
    "pluralize",
    "slice",
    "striptags",
    "time",
    "title",
    "truncatechars",
    "truncatewords",
    "upper",
    "urlencode",
    "urlize",
    "wordcount",
    "yesno",
)

# The engine's only library: `builtins=["mailboxes.signatures"]` imports this module's `register`.
register = Library()
for _name in ALLOWED_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
for _name in ALLOWED_FILTERS:
    register.filters[_name] = defaultfilters.register.filters[_name]


class _SandboxEngine(Engine):
    default_builtins: list[str] = []


def _engine(autoescape: bool) -> Engine:
    return _SandboxEngine(
        builtins=["mailboxes.signatures"],
        libraries={},
        loaders=[("django.template.loaders.locmem.Loader", {})],
        autoescape=autoescape,
        debug=False,
    )


_TEXT_ENGINE = _engine(autoescape=False)
_HTML_ENGINE = _engine(autoescape=True)


class TemplateProblem(ValueError):
    """A template that cannot be used, explained for the person who wrote it."""


VARIABLES_HELP = (
    "{{ agent.name }}, {{ agent.first_name }}, {{ agent.email }}, {{ agent.phone }}, {{ agent.mobile }}, "
    "{{ agent.fax }}, {{ ticket.number }}, {{ ticket.reference }}, {{ ticket.title }}, {{ ticket.queue }}, "
    "{{ contact.name }}, {{ contact.first_name }}, {{ contact.email }}, {{ tenant.name }}"
)


def _compile(source: str, engine: Engine):
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"The text is too long (at most {MAX_TEMPLATE_CHARS} characters).")
    return _compiled(source, engine is _HTML_ENGINE)


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool):
    # Compiled templates are immutable and safe to render from many threads; the same few sources
    # (layouts, signatures, greetings) are rendered for every mail.
    try:
        return (_HTML_ENGINE if html else _TEXT_ENGINE).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(_explain(exc)) from exc


def _explain(exc: TemplateSyntaxError) -> str:
    text = str(exc)
    if "Invalid block tag" in text or "Invalid filter" in text:
        return f"{text.split('.')[0]}. Only simple variables and if/with blocks can be used here."
    return f"The template has a mistake: {text}"


def check(source: str, *, html: bool = False) -> str | None:
    """None when ``source`` compiles in the sandbox, else what is wrong in plain words (for form errors)."""
    try:
        _compile(source, _HTML_ENGINE if html else _TEXT_ENGINE)
    except TemplateProblem as exc:
        return str(exc)
    return None


def render_text(source: str, variables: Mapping[str, Any]) -> str:
    """The template rendered as plain text (no escaping): for subjects and text/plain parts."""
    if not source:
        return ""
    return _compile(source, _TEXT_ENGINE).render(Context(dict(variables), autoescape=False)).strip()


def render_html(source: str, variables: Mapping[str, Any]) -> SafeString:
    """An HTML template (a layout) rendered with every variable escaped; SafeString values pass as they are."""
    return mark_safe(_compile(source, _HTML_ENGINE).render(Context(dict(variables), autoescape=True)))  # noqa: S308


def text_to_html(text: str) -> SafeString:
    """Plain text as HTML: escaped, links made clickable, line breaks kept."""
    if not text:
        return mark_safe("")
    linked = urlize(escape(text), autoescape=False, nofollow=True)
    return mark_safe(linked.replace("\r\n", "\n").replace("\n", "<br>\n"))  # noqa: S308


# --- the variables -----------------------------------------------------------------------------------------


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _first_name(name: str) -> str:
    return name.split()[0] if name.strip() else ""


def agent_vars(user) -> dict[str, str]:
    if user is None:
        return {}
    name = getattr(user, "display_name", "") or _str(getattr(user, "name", ""))
    return {
        "name": _str(name),
        "first_name": _first_name(_str(getattr(user, "name", "")) or _str(name)),
        "email": _str(getattr(user, "email", "")),
        "phone": _str(getattr(user, "phone", "")),
        "mobile": _str(getattr(user, "mobile", "")),
        "fax": _str(getattr(user, "fax", "")),
    }


def contact_vars(contact) -> dict[str, str]:
    if contact is None:
        return {}
    name = _str(getattr(contact, "name", ""))
    return {
        "name": name or _str(contact.email),
        "first_name": _first_name(name),
        "email": _str(contact.email),
    }


def ticket_vars(ticket) -> dict[str, str]:
    if ticket is None:
        return {}
    queue = ticket.queue.name if ticket.queue_id else ""
    return {
        "number": _str(ticket.number),
        "reference": ticket.reference,
        "title": _str(ticket.title),
        "queue": queue,
        "status": ticket.get_status_display(),
        "priority": ticket.get_priority_display(),
        "url": settings.SITE_URL + ticket.get_absolute_url(),
    }


def variables(*, tenant, agent=None, ticket=None, contact=None, mailbox=None, **extra: Any) -> dict[str, Any]:
    """The context of every template: plain values only (see the module docstring)."""
    if contact is None and ticket is not None and ticket.requester_id:
        contact = ticket.requester
    context: dict[str, Any] = {
        "tenant": {"name": _str(tenant.name)},
        "agent": agent_vars(agent),
        "ticket": ticket_vars(ticket),
        "contact": contact_vars(contact),
        "mailbox": {"name": _str(mailbox.from_header_name), "email": _str(mailbox.email)} if mailbox else {},
    }
    context.update({key: _plain(value) for key, value in extra.items()})
    return context


def _plain(value: Any) -> Any:
    """Only strings, numbers and dicts/lists of them go into a context."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, SafeString)):
        return value
    return str(value)


def signature_source(*, tenant, agent=None, mailbox=None) -> str:
    """The signature that applies: the agent's own, else the mailbox's, else the workspace standard."""
    from mailboxes.models import EmailSettings

    for source in (getattr(agent, "signature", ""), getattr(mailbox, "signature", "")):
        if source and source.strip():
            return source
    return EmailSettings.for_tenant(tenant).signature
