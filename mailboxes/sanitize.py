"""Customer HTML made safe to show, and HTML turned into plain text.

Pure functions (nh3 + stdlib): no Django, no I/O.

`clean_html` runs once when a mail is stored: it keeps only an allowlist of formatting tags and
attributes and parks every image source so that nothing loads by itself (remote images become
``data-remote-src``, ``cid:`` images become ``data-cid``). `render_html` turns that stored HTML into
what the sandboxed iframe shows, mapping cid images to authorised URLs and restoring remote images
only when the agent asked for them. `html_to_text` gives the text of html-only mails and the
search index.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote

import nh3

__all__ = ["RenderedHtml", "clean_html", "html_to_text", "render_html"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TAGS = _words(
    """
    a abbr acronym address article aside b bdi bdo big blockquote br caption center cite code col
    colgroup dd del details dfn div dl dt em figcaption figure font footer h1 h2 h3 h4 h5 h6 header
    hgroup hr i img ins kbd li main mark nav ol p pre q rp rt ruby s samp section small span strike
    strong sub summary sup table tbody td tfoot th thead time tr tt u ul var wbr
    """
)
# Removed together with everything inside them (their text is never message content).
_DROP_WITH_CONTENT = _words(
    """
    script style title template noscript iframe frame frameset object embed applet svg math xml
    head audio video canvas
    """
)
_COMMON_ATTRS = _words("style title dir lang align valign width height bgcolor class border")
_ATTRS: dict[str, set[str]] = {
    "*": set(_COMMON_ATTRS),
    "a": {"href", "name"},
    "img": {"src", "alt", "hspace", "vspace", "data-cid", "data-remote-src"},
    "font": {"color", "face", "size"},
    "table": {"cellpadding", "cellspacing", "summary", "frame", "rules"},
    "td": {"colspan", "rowspan", "nowrap", "abbr", "scope", "headers"},
    "th": {"colspan", "rowspan", "nowrap", "abbr", "scope", "headers"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "time": {"datetime"},
    "del": {"datetime"},
    "ins": {"datetime"},
    "details": {"open"},
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}
_LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
_INLINE_IMAGE_DATA = re.compile(r"data:image/(?:png|gif|jpe?g|webp|bmp);base64,[a-z0-9+/=\s]*\Z", re.I)
_LINK_REL = "noopener noreferrer nofollow"


def _style_properties() -> set[str]:
    props = set(
        _words(
            """
            color background-color font font-family font-size font-style font-weight font-variant
            text-align text-decoration text-indent text-transform letter-spacing word-spacing
            line-height vertical-align white-space word-wrap word-break overflow-wrap direction
            width height max-width min-width max-height min-height display float clear
            list-style-type list-style-position table-layout caption-side empty-cells
            border-collapse border-spacing border-radius box-sizing text-shadow
            """
        )
    )
    for side in ("", "-top", "-right", "-bottom", "-left"):
        props.update({f"margin{side}", f"padding{side}"})
        props.update(f"border{side}{part}" for part in ("", "-color", "-style", "-width"))
    return props


_STYLE_PROPERTIES = _style_properties()
# A declaration whose value could load something or run something is dropped whole. Backslashes
# (CSS escapes) and comments are refused because they can hide the words below from this check.
_STYLE_DANGER = re.compile(
    r"url\s*\(|expression|@import|javascript:|vbscript:|behavio(?:u)?r|-moz-binding|image-set|"
    r"image\s*\(|src\s*\(|\\|/\*|<|>",
    re.I,
)


def _relative_url(url: str) -> str | None:
    # Protocol-relative URLs are remote URLs in disguise: make them explicit so they get blocked.
    return "https:" + url if url.startswith("//") else None


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    low = value.strip().lower()
    if attr == "href":
        return value if low.startswith(_LINK_SCHEMES) else None
    if attr == "src":
        if low.startswith(("http:", "https:", "//", "cid:")):
            return value
        return value if _INLINE_IMAGE_DATA.match(low) else None
    if attr == "data-remote-src":
        return value if low.startswith(("http:", "https:")) else None
    if attr == "data-cid":
        return value if value and not any(c in value for c in "<>\"'\\") else None
    if attr == "style":
        return _clean_style(value) or None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(_TAGS),
    clean_content_tags=set(_DROP_WITH_CONTENT),
    attributes=_ATTRS,
    attribute_filter=_attribute_filter,
    strip_comments=True,
    link_rel=_LINK_REL,
    set_tag_attribute_values={"a": {"target": "_blank"}},
    url_schemes=_URL_SCHEMES,
    filter_style_properties=_STYLE_PROPERTIES,
    url_relative=_relative_url,
)


def _clean_style(style: str) -> str:
    kept = []
    for declaration in style.split(";"):
        name, sep, value = declaration.partition(":")
        name = name.strip().lower()
        if not sep or name not in _STYLE_PROPERTIES or _STYLE_DANGER.search(value):
            continue
        kept.append(f"{name}:{value.strip()}")
    return ";".join(kept)


def _is_remote(url: str) -> bool:
    return url.strip().lower().startswith(("http:", "https:"))


class _Rewriter(HTMLParser):
    """Re-serialises already sanitised HTML, letting a hook edit each start tag's attributes.

    The input is nh3 output (well formed, quoted attributes, no comments), so a plain
    HTMLParser pass is exact; attribute values are re-escaped on the way out.
    """

    def __init__(self, hook: Callable[[str, dict[str, str | None]], None]) -> None:
        super().__init__(convert_charrefs=False)
        self.hook = hook
        self.out: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        self.hook(tag, values)
        text = "".join(
            f" {name}" if value is None else f' {name}="{htmllib.escape(value, quote=True)}"'
            for name, value in values.items()
        )
        self.out.append(f"<{tag}{text}>")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self.out.append(f"</{tag}>")

    def handle_data(self, data):
        self.out.append(data.replace("<", "&lt;").replace(">", "&gt;"))

    def handle_entityref(self, name):
        self.out.append(f"&{name};")

    def handle_charref(self, name):
        self.out.append(f"&#{name};")

    def rewrite(self, html: str) -> str:
        self.feed(html)
        self.close()
        return "".join(self.out)


def _park_sources(tag: str, attrs: dict[str, str | None]) -> None:
    style = attrs.get("style")
    if style is not None:
        cleaned = _clean_style(style)
        if cleaned:
            attrs["style"] = cleaned
        else:
            del attrs["style"]
    if tag != "img":
        return
    src = (attrs.pop("src", None) or "").strip()
    if src.lower().startswith("cid:"):
        attrs["data-cid"] = unquote(src[4:]).strip().strip("<>")
    elif _is_remote(src):
        attrs["data-remote-src"] = src
    elif src:
        attrs["src"] = src  # an inline data:image, already checked by the attribute filter


_TAG_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^<>]*>?")
_VOID = _words("area base br col embed hr img input keygen link meta param source track wbr")
_OPTIONAL_END = _words("p li dt dd tr td th option optgroup rb rt rp rtc tbody thead tfoot colgroup")
_MAX_NESTING = 200


def _limit_nesting(html: str) -> str:
    """Drop start/end tags nested deeper than _MAX_NESTING, keeping their text.

    The HTML tree builder behind nh3 (html5ever) checks element scope along the open-element
    stack, so 100,000 nested <div>s cost minutes; no real mail nests 200 deep.
    """
    if html.count("<") <= _MAX_NESTING:
        return html
    stack: list[str] = []
    dropped: dict[str, int] = {}
    out: list[str] = []
    pos = 0
    for match in _TAG_TOKEN.finditer(html):
        closing, name = match.group(1), match.group(2).lower()
        if name in _VOID or name in _OPTIONAL_END:
            continue
        drop = False
        if not closing:
            if len(stack) >= _MAX_NESTING:
                dropped[name] = dropped.get(name, 0) + 1
                drop = True
            else:
                stack.append(name)
        elif dropped.get(name):
            dropped[name] -= 1
            drop = True
        elif name in stack:
            del stack[len(stack) - 1 - stack[::-1].index(name) :]
        if drop:
            out.append(html[pos : match.start()])
            pos = match.end()
    if not out:
        return html
    out.append(html[pos:])
    return "".join(out)


def clean_html(html: str) -> str:
    """Sanitised HTML to store: safe tags only, and no image source that loads by itself."""
    if not html:
        return ""
    return _Rewriter(_park_sources).rewrite(_CLEANER.clean(_limit_nesting(html)))


@dataclass(frozen=True, slots=True)
class RenderedHtml:
    html: str
    blocked_remote_count: int


def render_html(clean: str, *, cid_url: Callable[[str], str | None], show_remote: bool) -> RenderedHtml:
    """HTML for the sandboxed iframe: cid images point at `cid_url(cid)`, remote images load only
    when `show_remote`; the stored HTML is sanitised again so older rows get today's rules."""
    blocked = 0

    def place_images(tag: str, attrs: dict[str, str | None]) -> None:
        nonlocal blocked
        _park_sources(tag, attrs)
        if tag != "img":
            return
        cid = attrs.pop("data-cid", None)
        if cid:
            url = cid_url(cid)
            if url:
                attrs["src"] = url
        remote = attrs.get("data-remote-src")
        if remote and _is_remote(remote):
            if show_remote:
                attrs["src"] = attrs.pop("data-remote-src") or ""
            else:
                blocked += 1

    html = _Rewriter(place_images).rewrite(_CLEANER.clean(_limit_nesting(clean))) if clean else ""
    return RenderedHtml(html=html, blocked_remote_count=blocked)


# --- HTML to text -----------------------------------------------------------------------------

# A linear scan: tags are matched only where a "<" is, up to the next ">" (or the end), so
# pathological input (deep nesting, unclosed tags or comments) costs one pass.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*(?:>|\Z)")
_SKIP_UNTIL = {"script", "style", "title", "template", "xml"}
_BREAK = _words(
    """
    tr div li dt dd ul ol dl table section article header footer address center form caption
    figure nav main aside
    """
)
_PARAGRAPH = _words("p h1 h2 h3 h4 h5 h6 blockquote pre hr")
_CELL = {"td", "th"}
_SPACE = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


class _TextWriter:
    """Text pieces with pending line breaks: a break is written only before the next text, and
    several breaks in a row count as the largest of them (at most one blank line)."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.pending = 0
        self.pre = 0

    def text(self, text: str) -> None:
        text = htmllib.unescape(text)
        if not self.pre:
            text = _SPACE.sub(" ", text)
            if self.pending or not self.out or self.out[-1].endswith("\n"):
                text = text.lstrip(" ")
        if not text:
            return
        if self.pending and self.out:
            self.out.append("\n" * self.pending)
        self.pending = 0
        self.out.append(text)

    def tag(self, name: str, closing: bool, source: str) -> None:
        if name == "pre":
            self.pre = max(0, self.pre - 1) if closing else self.pre + 1
        if name == "br":
            self.pending = min(self.pending + 1, 2)
        elif name in _PARAGRAPH:
            self.pending = 2
        elif name in _BREAK:
            self.pending = max(self.pending, 1)
            if name == "li" and not closing:
                self.text("- ")
        elif name in _CELL and not closing and self.out and not self.pending:
            self.out.append(" ")
        elif name == "img" and not closing and (alt := _ALT.search(source)):
            label = (alt.group(1) or alt.group(2) or "").strip()
            if label:
                self.text(f"[{label}]")

    def result(self) -> str:
        text = "".join(self.out)
        return re.sub(r"[ \t]+\n", "\n", text).strip()


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML document (for html-only mails and search)."""
    if not html:
        return ""
    writer = _TextWriter()
    pos = 0
    end = len(html)
    low = None  # lower-cased copy, made only if a raw-text element has to be skipped
    while pos < end:
        lt = html.find("<", pos)
        if lt < 0:
            writer.text(html[pos:])
            break
        if lt > pos:
            writer.text(html[pos:lt])
        if html.startswith("<!--", lt):
            close = html.find("-->", lt + 4)
            pos = end if close < 0 else close + 3
            continue
        if html.startswith(("<!", "<?"), lt):
            close = html.find(">", lt)
            pos = end if close < 0 else close + 1
            continue
        match = _TAG.match(html, lt)
        if not match:
            writer.text("<")
            pos = lt + 1
            continue
        pos = match.end()
        closing, name = bool(match.group(1)), match.group(2).lower()
        if not closing and name in _SKIP_UNTIL:
            if low is None:
                low = html.lower()
            close = low.find("</" + name, pos)
            gt = html.find(">", close) if close >= 0 else -1
            pos = end if gt < 0 else gt + 1
            continue
        writer.tag(name, closing, match.group(0))
    return writer.result()
