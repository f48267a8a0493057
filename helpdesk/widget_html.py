"""A form renderer that writes select boxes and checkboxes in Python: `Form(..., renderer=WIDGETS)`.

Django renders a <select> as a template that includes a template per <option>, each including the attributes
template: a ticket's side panel (status, priority, assignee, queue, forty tag checkboxes) cost more to render
than the rest of the page around it. This renderer writes the same markup from the same widget context
(Django still decides names, ids, `required`, `aria-invalid`, what is selected), byte for byte what Django's
own templates give (tests/tickets/test_widget_html.py compares them); every other template, and any option
with a template of its own, goes through Django as usual. (It stands in for Django's built-in widget templates:
a project template overriding one of those four would be bypassed; there is none.)
"""

from __future__ import annotations

from html import escape as _escape

from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.safestring import SafeData
from django.utils.timezone import template_localtime

from helpdesk.markup import esc

SELECT = "django/forms/widgets/select.html"
SELECT_OPTION = "django/forms/widgets/select_option.html"
CHECKBOX_OPTION = "django/forms/widgets/checkbox_option.html"
RADIO_OPTION = "django/forms/widgets/radio_option.html"


def _text(value) -> str:
    """`{{ value }}`: localised, then escaped unless safe."""
    if type(value) is not str:
        value = localize(template_localtime(value))
        value = value if isinstance(value, str) else str(value)
    return esc(value)


def _formatted(value) -> str:
    """`{{ value|stringformat:'s' }}`: str() of it, escaped unless it was safe."""
    text = str(value)
    return text if isinstance(value, SafeData) else _escape(text)


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html: ` name="value"`, ` name` for True, nothing for False."""
    return "".join(
        f" {_text(name)}" if value is True else f' {_text(name)}="{_formatted(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


def _option(option: dict) -> str:
    """select_option.html (with its closing newline: the select includes it)."""
    return f'<option value="{_formatted(option["value"])}"{_attrs(option["attrs"])}>{_text(option["label"])}</option>\n'


def _select(widget: dict) -> str:
    parts = [f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        parts.extend(f"\n  {_option(option)}" for option in group_choices)
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>\n")
    return "".join(parts)


def _input_option(widget: dict) -> str:
    """checkbox_option.html / radio_option.html: input_option.html, which wraps input.html in a label."""
    attrs = widget["attrs"]
    value = widget["value"]
    tag = (
        f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"'
        + (f' value="{_formatted(value)}"' if value != None else "")  # noqa: E711 - the template's comparison
        + f"{_attrs(attrs)}>\n"
    )
    if widget.get("wrap_label"):
        label_for = f' for="{_text(attrs["id"])}"' if attrs.get("id") else ""
        tag = f"<label{label_for}>{tag} {_text(widget['label'])}</label>"
    return f"{tag}\n\n"


class WidgetRenderer(DjangoTemplates):
    """Django's template renderer, with select boxes and check/radio options written in Python."""

    def render(self, template_name, context, request=None):
        widget = context.get("widget") if isinstance(context, dict) else None
        if widget is None:
            return super().render(template_name, context, request)
        if template_name == SELECT and all(
            option.get("template_name") == SELECT_OPTION
            for _name, options, _index in widget["optgroups"]
            for option in options
        ):
            return _select(widget).strip()
        if template_name in (CHECKBOX_OPTION, RADIO_OPTION):
            return _input_option(widget).strip()
        return super().render(template_name, context, request)


WIDGETS = WidgetRenderer()


def preloaded_choices(field, objects) -> list:
    """The choices a ModelChoiceField would query for, made from objects the request loaded already.

    Assign them to `field.choices` on a form that is only shown: validation still asks the field's queryset.
    """
    iterator = field.iterator(field)
    empty = [("", field.empty_label)] if field.empty_label is not None else []
    return [*empty, *map(iterator.choice, objects)]
