"""helpdesk.markup escapes exactly as Django's format_html and conditional_escape do."""

from django.utils.functional import lazy
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from helpdesk import markup

VALUES = [
    "plain",
    "<script>alert('x')</script> & \"quoted\"",
    mark_safe("<b>trusted</b>"),
    42,
    None,
    3.5,
    lazy(lambda: "<lazy & 'text'>", str)(),
    format_html("<i>{}</i>", "<already escaped>"),
    "",
]


def test_esc_is_conditional_escape():
    for value in VALUES:
        assert markup.esc(value) == conditional_escape(value), value


def test_html_is_format_html_and_safe():
    for value in VALUES:
        out = markup.html('<a title="{}">{}</a>', value, value)
        assert out == format_html('<a title="{}">{}</a>', value, value)
        assert hasattr(out, "__html__")


def test_join_escapes_plain_parts_and_keeps_safe_ones():
    out = markup.join([markup.html("<b>{}</b>", "x"), "<i>"], sep="<br>")
    assert out == "<b>x</b><br>&lt;i&gt;" and hasattr(out, "__html__")
