"""The ticket page's thread built in Python: every message with its body, files, delivery state and the place
its processing trace loads into when opened (tickets.views_files.message_trace renders templates/tickets/
_trace.html).

A template include per message (with the body and trace includes inside it) was half of a long ticket's
render time: thousands of variable lookups and date filters. This module writes the same markup, byte for
byte, as those templates did (tests/tickets/test_thread_html.py renders both and compares them), so read the
constants below as the templates they were: the blank lines and indentation are the templates' own.

Every value that comes from mail or from people (names, addresses, subjects, bodies, filenames, trace notes)
goes through `helpdesk.markup.html`, which escapes it; only this module's constants are trusted markup.
"""

from __future__ import annotations

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.formats import localize
from django.utils.safestring import SafeString

from helpdesk.date_text import DateText
from helpdesk.markup import html, join
from tickets.models import Message
from tickets.templatetags.ticket_tags import addresses, initials, linkify

# --- _message.html -------------------------------------------------------------------------------------------

_AUTOMATIC = """
<details class="msg msg-automatic" id="m-{}" data-message>
  <summary class="msg-auto-summary">
    <span class="msg-kind-label">Automatic</span>
    <span class="msg-auto-from">{}</span>
    <span class="msg-auto-subject">{}</span>
    <time class="muted" datetime="{}" title="{}">{}</time>
  </summary>
  {}
</details>
"""

_ARTICLE = """
<article class="msg msg-{}" id="m-{}" data-message>
  <header class="msg-head">
    {}
    <div class="msg-aside">
      {}
      <time datetime="{}" title="{}">{}</time>
      {}
    </div>
  </header>
  {}
  {}
  {}
  {}
</article>
"""

_INBOUND_WHO = """
      <span class="avatar avatar-light" aria-hidden="true">{}</span>
      <div class="msg-who">
        <div><strong>{}</strong>{}</div>
        <div class="msg-to muted">to {}{}</div>
      </div>
    """

_OUTBOUND_WHO = """
      <span class="avatar avatar-team" aria-hidden="true">{}</span>
      <div class="msg-who">
        <div><strong>{}</strong> <span class="msg-kind-label">replied</span></div>
        <div class="msg-to muted">to {}{}{}</div>
      </div>
    """

_NOTE_WHO = """
      <span class="avatar avatar-note" aria-hidden="true">{}</span>
      <div class="msg-who">
        <div><strong>{}</strong> <span class="msg-kind-label"><span class="icon i-lock" aria-hidden="true"></span>\
Internal note</span></div>
      </div>
    """

_FROM_ADDR = ' <span class="muted">&lt;{}&gt;</span>'
_DELIVERY = '<span class="delivery delivery-{}" title="{}">{}</span>'

# The message menu: `{% if editable or admin %}` around `{% if m.kind != 'note' or editable %}` around it.
_MENU_OUTER = "\n      {}\n      "
_MENU = """
      <details class="dropdown msg-menu">
        <summary class="btn btn-ghost btn-icon" aria-label="Message actions"><span class="icon i-more" \
aria-hidden="true"></span></summary>
        <div class="menu menu-right">
          {}
          {}
        </div>
      </details>
      """
_SPLIT = """
            <form method="post" action="{}split/" data-confirm="Move this message into a new ticket of its own?">\
{}<button type="submit" role="menuitem">Split into new ticket</button></form>
          """
_ORIGINAL = """
            <a role="menuitem" href="{}original/" target="_blank" rel="noopener">View original</a>
            <a role="menuitem" href="{}original/?download=1">Download .eml</a>
          """

_SUBJECT = '<p class="msg-subject">{}</p>'
# The trace is loaded when opened (htmx; without scripts the link opens it): most are never looked at, and a
# long thread's traces were a tenth of the page's work.
_TRACE_DETAILS = """
    <details class="msg-trace" hx-get="{}trace/" hx-trigger="toggle once" hx-target="find .trace-slot" \
hx-swap="outerHTML"><summary class="msg-signal" title="How this mail was processed">{}</summary>\
<a class="trace-slot muted small" href="{}trace/">Show the processing trace</a></details>
  """
_SIGNAL = '<p class="msg-signal" title="How this mail found its ticket">{}</p>'
_NOT_DELIVERED = '<div class="alert alert-error msg-alert"><strong>Not delivered.</strong> {}</div>'

# --- _message_body.html --------------------------------------------------------------------------------------

_BODY = """
<div class="msg-body">
  {}
  {}
</div>
"""
_FRAME = """
    {}
    <iframe class="msg-frame" name="frame-{}" src="{}" sandbox="allow-same-origin allow-popups \
allow-popups-to-escape-sandbox" referrerpolicy="no-referrer" title="Message {}" data-autosize></iframe>
  """
_REMOTE_BAR = """
      <p class="remote-bar" data-remote-bar><span class="icon i-image" aria-hidden="true"></span>Remote images \
are blocked to protect your privacy.
        <a href="{}?images=1" target="frame-{}" data-show-images>Show images</a></p>
    """
_TEXT = """
    <div class="msg-text">{}</div>
  """
_FILES = """
    {}
  """
_FILE_LIST = """
      <ul class="attachments" aria-label="Attachments">
        {}
      </ul>
    """
_FILE = """
          <li><a class="attachment" href="{}{}/" download>
            <span class="file-icon" aria-hidden="true"></span>
            <span class="file-text"><span class="file-name">{}</span><span class="file-meta">{} · {}</span></span>
          </a></li>
        """

_NOTHING = SafeString("")  # for absent parts: escaping "" is not free

# The thread loop of detail.html around each entry.
_ENTRY = "\n          \n{}\n\n        "


def thread_html(
    entries: list[Message],
    *,
    ticket_title: str,
    editable: bool,
    is_admin: bool,
    csrf_token,
    attachment_prefix: str,
) -> SafeString:
    """The messages of `thread.for_display()` as the ticket page's thread (without the empty state)."""
    writer = _Writer(
        ticket_title=ticket_title,
        editable=editable,
        is_admin=is_admin,
        csrf_input=_csrf_input(csrf_token),
        attachment_prefix=attachment_prefix,
        splittable=editable and len(entries) > 1,
    )
    return join(html(_ENTRY, writer.message(m, n)) for n, m in enumerate(entries, 1))


def _csrf_input(token) -> str:
    """What `{% csrf_token %}` writes for this token (nothing without one)."""
    if not token or token == "NOTPROVIDED":
        return ""
    return html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)


class _Writer:
    """One render of a thread: the page's options, and the active language's dates and numbers."""

    def __init__(self, *, ticket_title, editable, is_admin, csrf_input, attachment_prefix, splittable):
        self.ticket_title = ticket_title
        self.editable = editable
        self.is_admin = is_admin
        self.csrf_input = csrf_input
        self.attachment_prefix = attachment_prefix
        self.splittable = splittable
        self.dates = DateText()
        self.grouping = settings.USE_THOUSAND_SEPARATOR

    # --- one message

    def message(self, m: Message, counter: int) -> SafeString:
        local = self.dates.local(m.created_at)
        iso = local.isoformat()
        title = self.dates.format(local, self.dates.datetime_format)
        short = self.dates.format(local, "M j, H:i")
        body = self.body(m, counter)
        if m.kind == "automatic":
            return html(
                _AUTOMATIC,
                self.number(m.pk),
                m.from_name or m.from_addr or "Mail system",
                m.subject,
                iso,
                title,
                short,
                body,
            )
        delivery = m.delivery
        return html(
            _ARTICLE,
            m.kind,
            self.number(m.pk),
            self.who(m),
            html(_DELIVERY, delivery.tone, delivery.detail, delivery.label) if delivery else _NOTHING,
            iso,
            title,
            short,
            self.menu(m),
            html(_SUBJECT, m.subject)
            if m.subject and m.subject != self.ticket_title and m.kind != "note"
            else _NOTHING,
            body,
            self.trace_block(m),
            html(_NOT_DELIVERED, delivery.detail) if delivery and delivery.tone == "err" else _NOTHING,
        )

    def who(self, m: Message) -> SafeString:
        author = m.author
        if m.kind == "inbound":
            return html(
                _INBOUND_WHO,
                initials(m.from_name or m.from_addr),
                m.from_name or m.from_addr or "Unknown sender",
                html(_FROM_ADDR, m.from_addr) if m.from_name and m.from_addr else _NOTHING,
                addresses(m.to) or "—",
                f" · cc {addresses(m.cc)}" if m.cc else _NOTHING,
            )
        if m.kind == "outbound":
            return html(
                _OUTBOUND_WHO,
                author.initials if author else initials(m.from_name or m.from_addr),
                author.display_name if author else (m.from_name or m.from_addr),
                addresses(m.to) or "—",
                f" · cc {addresses(m.cc)}" if m.cc else _NOTHING,
                f" · bcc {addresses(m.bcc)}" if m.bcc else _NOTHING,
            )
        return html(
            _NOTE_WHO,
            author.initials if author else "?",
            author.display_name if author else "Someone",
        )

    def menu(self, m: Message) -> SafeString | str:
        if not (self.editable or self.is_admin):
            return _NOTHING
        if m.kind == "note" and not self.editable:
            return html(_MENU_OUTER, _NOTHING)
        return html(
            _MENU_OUTER,
            html(
                _MENU,
                html(_SPLIT, m.url, self.csrf_input) if self.splittable else _NOTHING,
                html(_ORIGINAL, m.url, m.url) if self.is_admin and m.kind != "note" else _NOTHING,
            ),
        )

    def trace_block(self, m: Message) -> SafeString | str:
        if m.kind != "inbound":
            return _NOTHING
        if m.inbound_id:
            return html(_TRACE_DETAILS, m.url, m.signal_label or "How this mail was processed", m.url)
        return html(_SIGNAL, m.signal_label) if m.signal_label else _NOTHING

    # --- _message_body.html

    def body(self, m: Message, counter: int) -> SafeString:
        if m.html:
            remote = html(_REMOTE_BAR, m.body_url, self.number(m.pk)) if m.has_remote_images else _NOTHING
            content = html(_FRAME, remote, self.number(m.pk), m.body_url, self.number(counter))
        else:
            content = html(_TEXT, linkify(m.text))
        files = m.files
        listed = _NOTHING
        if files:
            listed = html(
                _FILE_LIST,
                join(
                    html(
                        _FILE,
                        self.attachment_prefix,
                        self.number(a.pk),
                        a.filename,
                        filesizeformat(a.size),
                        a.content_type,
                    )
                    if not a.is_inline
                    else _NOTHING
                    for a in files
                ),
            )
        return html(_BODY, content, html(_FILES, listed))

    # --- numbers and values as `{{ }}` shows them

    def number(self, value: int) -> str:
        """`{{ value }}` of an id or count (digits need no escaping)."""
        return SafeString(value) if type(value) is int and not self.grouping else self.text(value)

    def text(self, value) -> str:
        """`{{ value }}`: strings as they are, numbers and dates localised (escaping is html()'s job)."""
        if isinstance(value, str):
            return value
        if value is None:
            return "None"
        return str(localize(self.dates.local(value) if hasattr(value, "astimezone") else value))
