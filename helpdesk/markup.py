"""HTML built in Python for the hottest loops (list rows, thread messages): `html()` is `format_html()` without
its lazy-string wrappers, which cost more than the escaping itself when a page formats thousands of values.

Same escaping as Django's: a value with `__html__` (SafeString, a rendered fragment) goes in as it is, anything
else is `str()`-ed and escaped with `html.escape` (quotes too), exactly what `django.utils.html.escape` does.
"""

from __future__ import annotations

from html import escape as _escape

from django.utils.safestring import SafeString


def esc(value) -> str:
    """`conditional_escape` for the hot path: safe markup as is, everything else escaped."""
    if isinstance(value, str):
        return value if isinstance(value, SafeString) else _escape(value)
    html_method = getattr(value, "__html__", None)
    return html_method() if html_method is not None else _escape(str(value))


def html(template: str, *args) -> SafeString:
    """`template` (str.format placeholders, trusted markup) with each argument escaped: a safe string."""
    return SafeString(template.format(*map(esc, args)))


def join(parts, sep: str = "") -> SafeString:
    """Fragments joined into one: safe ones (from `html`) as they are, plain text escaped; `sep` is trusted."""
    return SafeString(sep.join(map(esc, parts)))
