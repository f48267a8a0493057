"""Small presentation helpers for ticket pages: short ages, status tones, initials."""

import datetime as dt
import re

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from helpdesk import markup
from tickets.models import Priority, Status

register = template.Library()

STATUS_TONES = {"new": "info", "open": "accent", "pending": "warn", "solved": "ok", "closed": "muted"}
PRIORITY_TONES = {1: "low", 2: "normal", 3: "high", 4: "urgent"}
_EMPTY = mark_safe("")


# Month abbreviations as strftime's %b gives them (Django never changes the C locale): cheaper than strftime
# in the list's loops.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Clock:
    """One `now` and one time zone for every cell of a render (a list asks for them hundreds of times)."""

    __slots__ = ("now", "tz", "year")

    def __init__(self):
        self.now = timezone.now()
        self.tz = timezone.get_current_timezone()
        self.year = self.now.astimezone(self.tz).year

    def short(self, value: dt.datetime) -> str:
        """Nov 23, 2026 14:05 (the tooltip of a time)."""
        local = value.astimezone(self.tz)
        return f"{_MONTHS[local.month - 1]} {local.day}, {local.year} {local.hour:02d}:{local.minute:02d}"

    def age(self, value: dt.datetime) -> str:
        seconds = max(0, int((self.now - value).total_seconds()))
        if seconds < 60:
            return "now"
        if seconds < 3600:
            return f"{seconds // 60}m"
        if seconds < 86400:
            return f"{seconds // 3600}h"
        if seconds < 86400 * 30:
            return f"{seconds // 86400}d"
        local = value.astimezone(self.tz)
        return f"{_MONTHS[local.month - 1]} {local.day if local.year == self.year else local.year}"


@register.filter
def age(value: dt.datetime | None) -> str:
    """3m, 5h, 2d, then a date: how long ago, in the width of a table cell."""
    return Clock().age(value) if value else ""


@register.filter
def time_cell(value: dt.datetime | None, clock: Clock | None = None) -> SafeString:
    """<time> with the short age as text and the full local time as tooltip (cheaper than two |date filters)."""
    if not value:
        return _EMPTY
    clock = clock or Clock()
    # isoformat(), short() and age() give digits, letters, spaces, ":", "+", "-", ",": nothing to escape.
    return SafeString(
        f'<time datetime="{value.isoformat()}" title="{clock.short(value)}">{clock.age(value)}</time>'
    )


def _span(seconds: int) -> str:
    """45m, 2h, 3d: a duration in the width of a chip (rounded down, at least a minute)."""
    minutes = max(1, seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 60 * 24:
        return f"{minutes // 60}h"
    return f"{minutes // (60 * 24)}d"


SLA_SOON = dt.timedelta(hours=1)  # the chip turns amber this long before the deadline


@register.filter
def sla_chip(due, clock: Clock | None = None) -> SafeString:
    """The list's SLA chip for a `tickets.sla.NextDue`: "due in 2h", "overdue 35m" (red); empty for None.

    js/tickets.js keeps the text current from `data-sla-due` while the page stays open.
    """
    if due is None:
        return _EMPTY
    clock = clock or Clock()
    seconds = int((due.at - clock.now).total_seconds())
    if seconds < 0:
        tone, text = "over", f"overdue {_span(-seconds)}"
    else:
        tone, text = ("soon" if seconds < SLA_SOON.total_seconds() else "ok"), f"due in {_span(seconds)}"
    local = due.at.astimezone(clock.tz)
    label = markup.esc(due.label)
    when = f"{_MONTHS[local.month - 1]} {local.day}, {local.hour:02d}:{local.minute:02d}"
    # Like time_cell: the times and the computed text need no escaping; the target's label gets it anyway.
    return SafeString(
        f'<span class="sla sla-{tone}" data-sla-due="{due.at.isoformat()}" title="{label} due {when}">'
        f'<span class="visually-hidden">{label} </span><span data-sla-text>{text}</span></span>'
    )


@register.filter
def sort_time(ticket, sort: str):
    """The time the list is sorted by: created for newest/oldest, updated, else the last message."""
    return {"newest": ticket.created_at, "oldest": ticket.created_at, "updated": ticket.updated_at}.get(
        sort, ticket.last_message_at
    )


@register.filter
def status_tone(status: str) -> str:
    return STATUS_TONES.get(status, "muted")


@register.filter
def priority_tone(priority: int) -> str:
    return PRIORITY_TONES.get(priority, "normal")


@register.filter
def initials(name: str) -> str:
    """JD for "Jane Doe", JA for "jane@acme.test"."""
    words = (name or "").replace("@", " ").replace(".", " ").replace("_", " ").split()
    return "".join(w[0] for w in words[:2]).upper() or "?"


@register.filter
def addresses(values) -> str:
    """A JSON list of addresses (or of {"email", "name"} objects) as one readable line."""
    out = []
    for value in values or []:
        if isinstance(value, dict):
            name, email = value.get("name", ""), value.get("email", "")
            out.append(f"{name} <{email}>" if name else email)
        else:
            out.append(str(value))
    return ", ".join(out)


@register.filter
def event_text(event) -> SafeString:
    """One history line after the actor's name: "changed status from Open to Pending"."""
    old, new, field = event.old, event.new, event.field
    if field == "merged_into":
        return format_html("merged this ticket into <strong>{}</strong>", new)
    if field == "merged_from":
        return format_html("merged <strong>{}</strong> into this ticket", new)
    if field == "split_from":
        return format_html("split this ticket off <strong>{}</strong>", new)
    if field == "split_to":
        return format_html("split a message into the new ticket <strong>{}</strong>", new)
    if field == "requester":
        return format_html("merged the requester <strong>{}</strong> into <strong>{}</strong>", old, new)
    label = {"assignee": "the assignee", "queue": "the queue"}.get(field, field)
    if old and new:
        return format_html("changed {} from <strong>{}</strong> to <strong>{}</strong>", label, old, new)
    if new:
        return format_html("set {} to <strong>{}</strong>", label, new)
    return format_html("cleared {} (was <strong>{}</strong>)", label, old)


# On escaped text: a URL runs until whitespace or an escaped quote/bracket; trailing punctuation is not part of it.
_URL = re.compile(r"https?://(?:(?!&quot;|&#x27;|&lt;|&gt;)\S)+", re.I)
_TRAILING = ".,;:!?)]}"


def _link(match: re.Match) -> str:
    url = match.group(0)
    tail = ""
    while url and url[-1] in _TRAILING:
        url, tail = url[:-1], url[-1] + tail
    return f'<a href="{url}" target="_blank" rel="noopener noreferrer nofollow">{url}</a>{tail}'


@register.filter(is_safe=True)
def linkify(text: str) -> SafeString:
    """Escaped plain text with its http(s) links clickable (a faster, stricter urlize for mail bodies)."""
    return mark_safe(_URL.sub(_link, escape(text or "")))  # noqa: S308 - the text is escaped first


# --- the list's rows -------------------------------------------------------------------------------------------
# One row of templates/tickets/list.html built in Python: 50 rows of dozens of template lookups each were half
# of the page's time, and format_html's lazy-string checks cost more than its escaping. Same markup as a
# template would give; every value goes through helpdesk.markup's escaping.

_DIR_IN = (
    '<span class="dir dir-in" title="The customer wrote last"><span class="visually-hidden">Customer wrote last'
    "</span></span>"
)
_DIR_OUT = (
    '<span class="dir dir-out" title="Your team wrote last"><span class="visually-hidden">Team wrote last'
    "</span></span>"
)
_UNKNOWN_SENDER = '<span class="muted">Unknown sender</span>'
_UNREAD = '<span class="visually-hidden">(unread)</span>'
_NO_ASSIGNEE = '<span class="muted">—</span>'
_STATUS_LABELS = dict(Status.choices)
_PRIORITY_LABELS = dict(Priority.choices)


def ticket_row(t, *, can_edit: bool, show_sla: bool, sort: str, clock: Clock) -> str:
    """One <tr> of the ticket list (`t` from tickets.lists.ticket_rows, with `url` and `sla_due` set).

    Plain f-strings: every text value goes through `e` (escaping), numbers are formatted as integers (`:d`).
    """
    e = markup.esc
    href = e(t.url)
    requester, mailbox, assignee = t.requester, t.mailbox, t.assignee
    unread = not t.is_read
    check = (
        f'<td class="c-check"><input type="checkbox" name="ids" value="{t.pk:d}" form="bulk-form" '
        f'aria-label="Select #{t.number:d}" data-row-check></td>'
        if can_edit
        else ""
    )
    who = (
        f'<span class="who-name" title="{e(requester.email)}">{e(requester.display_name)}</span>'
        if requester
        else _UNKNOWN_SENDER
    )
    chip = (
        f'<span class="chip" title="{e(mailbox.name)} · {e(mailbox.email)}">{e(mailbox.key)}</span>'
        if mailbox
        else ""
    )
    prio = (
        f'<span class="prio prio-{priority_tone(t.priority)}">{e(_PRIORITY_LABELS[t.priority])}</span>'
        if t.priority >= 3
        else ""
    )
    tags = "".join(f'<span class="tag">{e(name)}</span>' for name in t.tag_names)
    owner = (
        f'<span class="avatar avatar-xs" aria-hidden="true">{e(assignee.initials)}</span>'
        f'<span class="assignee-name">{e(assignee.display_name)}</span>'
        if assignee
        else _NO_ASSIGNEE
    )
    status = _STATUS_LABELS.get(t.status, t.status)
    due = f'<td class="c-sla">{sla_chip(t.sla_due, clock)}</td>' if show_sla else ""
    return (
        f'<tr class="ticket-row{" is-unread" if unread else ""}" id="row-{t.pk:d}" data-row data-href="{href}">\n'
        f"{check}\n"
        f'<td class="c-who">\n<span class="unread-dot" aria-hidden="true"></span>\n{who}\n'
        f"{_UNREAD if unread else ''}\n</td>\n"
        f'<td class="c-subject"><div class="subj-line">\n<a class="row-link" href="{href}">\n{chip}\n{prio}\n'
        f'<span class="subject">{e(t.title or "(no subject)")}</span>\n</a>\n{tags}\n'
        f'<span class="num">#{t.number:d}</span>\n</div></td>\n'
        f'<td class="c-dir">{_DIR_IN if t.last_message_inbound else _DIR_OUT}</td>\n'
        f'<td class="c-assignee">{owner}</td>\n'
        f'<td class="c-status"><span class="badge badge-{status_tone(t.status)}">{e(status)}</span></td>\n'
        f"{due}\n"
        f'<td class="c-age">{time_cell(sort_time(t, sort), clock)}</td>\n</tr>'
    )


@register.simple_tag
def ticket_rows(rows, can_edit: bool, show_sla: bool, sort: str) -> SafeString:
    """The <tbody> rows of the ticket list, in one tag instead of a template loop."""
    opts = {"can_edit": bool(can_edit), "show_sla": bool(show_sla), "sort": sort, "clock": Clock()}
    return mark_safe("\n".join(ticket_row(t, **opts) for t in rows))  # noqa: S308 - ticket_row escapes


# --- the filter menu and the bulk bar ----------------------------------------------------------------------------
# A hundred checkboxes and options per list page: built here, not in template loops (same markup).

_UNSCROLLED_GROUPS = ("status", "priority")


@register.simple_tag
def filter_groups(form) -> SafeString:
    """The filter menu's checkbox fieldsets, from `TicketFilterForm.groups()`."""
    out = []
    for legend, name, options in form.groups():
        checks = markup.join(
            markup.html(
                '<label class="check"><input type="checkbox" name="{}" value="{}"{}> {}</label>',
                name,
                value,
                _CHECKED if checked else _EMPTY,
                label,
            )
            for value, label, checked in options
        )
        out.append(
            markup.html(
                "<fieldset{}><legend>{}</legend>\n{}\n</fieldset>",
                _EMPTY if name in _UNSCROLLED_GROUPS else _SCROLL,
                legend,
                checks or _NONE_YET,
            )
        )
    return markup.join(out, "\n")


_CHECKED = mark_safe(" checked")
_SCROLL = mark_safe(' class="scroll"')
_NONE_YET = mark_safe('<p class="muted small">None yet.</p>')


@register.simple_tag
def choice_options(choices, placeholder: str = "") -> SafeString:
    """<option>s of `choices` ((value, label) pairs); the empty value shows `placeholder` instead of its label."""
    return markup.join(
        markup.html('<option value="{}">{}</option>', value, placeholder if value == "" else label)
        for value, label in choices
    )


@register.simple_tag
def label_options(choices) -> SafeString:
    """<option>s whose value is each choice's label (a <datalist> of suggestions)."""
    return markup.join(markup.html('<option value="{}">', label) for _, label in choices)


@register.simple_tag
def date_input(form, name: str) -> SafeString:
    """The <input type="date"> of a filter field, as its widget renders it (the raw value the URL carried)."""
    field = form[name]
    value = field.value()
    return markup.html(
        '<input type="date" name="{}"{} aria-label="{}" id="{}">',
        name,
        markup.html(' value="{}"', value) if value not in (None, "") else _EMPTY,
        field.field.widget.attrs["aria-label"],
        field.auto_id,
    )
