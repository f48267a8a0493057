"""Small presentation helpers for ticket pages: short ages, status tones, initials."""

import datetime as dt
import re

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from helpdesk import markup

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
    return markup.html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), clock.short(value), clock.age(value)
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
    label = due.label
    return markup.html(
        '<span class="sla sla-{}" data-sla-due="{}" title="{} due {}">'
        '<span class="visually-hidden">{} </span><span data-sla-text>{}</span></span>',
        tone,
        due.at.isoformat(),
        label,
        f"{_MONTHS[local.month - 1]} {local.day}, {local.hour:02d}:{local.minute:02d}",
        label,
        text,
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

_ROW = (
    '<tr class="ticket-row{}" id="row-{}" data-row data-href="{}">\n{}\n'
    '<td class="c-who">\n<span class="unread-dot" aria-hidden="true"></span>\n{}\n{}\n</td>\n'
    '<td class="c-subject"><div class="subj-line">\n<a class="row-link" href="{}">\n{}\n{}\n'
    '<span class="subject">{}</span>\n</a>\n{}\n<span class="num">#{}</span>\n</div></td>\n'
    '<td class="c-dir">{}</td>\n<td class="c-assignee">{}</td>\n'
    '<td class="c-status"><span class="badge badge-{}">{}</span></td>\n{}\n<td class="c-age">{}</td>\n</tr>'
)
_DIR_IN = mark_safe(
    '<span class="dir dir-in" title="The customer wrote last"><span class="visually-hidden">Customer wrote last'
    "</span></span>"
)
_DIR_OUT = mark_safe(
    '<span class="dir dir-out" title="Your team wrote last"><span class="visually-hidden">Team wrote last'
    "</span></span>"
)
_UNKNOWN_SENDER = mark_safe('<span class="muted">Unknown sender</span>')
_UNREAD = mark_safe('<span class="visually-hidden">(unread)</span>')
_NO_ASSIGNEE = mark_safe('<span class="muted">—</span>')


def ticket_row(t, *, can_edit: bool, show_sla: bool, sort: str, clock: Clock) -> SafeString:
    """One <tr> of the ticket list (`t` from tickets.lists.ticket_rows, with `url` and `sla_due` set)."""
    href = t.url
    requester, mailbox, assignee = t.requester, t.mailbox, t.assignee
    return markup.html(
        _ROW,
        "" if t.is_read else " is-unread",
        t.pk,
        href,
        markup.html(
            '<td class="c-check"><input type="checkbox" name="ids" value="{}" form="bulk-form" '
            'aria-label="Select #{}" data-row-check></td>',
            t.pk,
            t.number,
        )
        if can_edit
        else _EMPTY,
        markup.html('<span class="who-name" title="{}">{}</span>', requester.email, requester.display_name)
        if requester
        else _UNKNOWN_SENDER,
        _EMPTY if t.is_read else _UNREAD,
        href,
        markup.html('<span class="chip" title="{} · {}">{}</span>', mailbox.name, mailbox.email, mailbox.key)
        if mailbox
        else _EMPTY,
        markup.html(
            '<span class="prio prio-{}">{}</span>', priority_tone(t.priority), t.get_priority_display()
        )
        if t.priority >= 3
        else _EMPTY,
        t.title or "(no subject)",
        markup.join(markup.html('<span class="tag">{}</span>', name) for name in t.tag_names),
        t.number,
        _DIR_IN if t.last_message_inbound else _DIR_OUT,
        markup.html(
            '<span class="avatar avatar-xs" aria-hidden="true">{}</span><span class="assignee-name">{}</span>',
            assignee.initials,
            assignee.display_name,
        )
        if assignee
        else _NO_ASSIGNEE,
        status_tone(t.status),
        t.get_status_display(),
        markup.html('<td class="c-sla">{}</td>', sla_chip(t.sla_due, clock)) if show_sla else _EMPTY,
        time_cell(sort_time(t, sort), clock),
    )


@register.simple_tag
def ticket_rows(rows, can_edit: bool, show_sla: bool, sort: str) -> SafeString:
    """The <tbody> rows of the ticket list, in one tag instead of a template loop."""
    opts = {"can_edit": bool(can_edit), "show_sla": bool(show_sla), "sort": sort, "clock": Clock()}
    return markup.join((ticket_row(t, **opts) for t in rows), "\n")


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
