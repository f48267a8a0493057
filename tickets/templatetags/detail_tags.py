"""Tags of the ticket page (tickets/detail.html) that write its long loops in Python instead of template loops.

Each writes what the loop it replaced wrote, byte for byte (tests/tickets/test_thread_html.py and
tests/tickets/test_widget_html.py compare them).
"""

from django import template
from django.utils.safestring import SafeString

from helpdesk.markup import html, join
from tickets.thread_html import thread_html

register = template.Library()


@register.simple_tag(takes_context=True)
def thread_messages(context, entries, *, ticket, editable, is_admin, attachment_prefix) -> SafeString:
    """Every entry of `thread.for_display()`; the split forms carry the page's own CSRF token."""
    return thread_html(
        entries,
        ticket_title=ticket.title,
        editable=bool(editable),
        is_admin=bool(is_admin),
        csrf_token=context.get("csrf_token"),
        attachment_prefix=attachment_prefix,
    )


@register.simple_tag
def tag_checks(field) -> SafeString:
    """The side panel's tag checkboxes, each in its label: `{% for cb in field %}` with `{{ cb.tag }}`."""
    return join(
        html('<label class="tag-check">{}<span>{}</span></label>', cb.tag(), cb.choice_label) for cb in field
    )
