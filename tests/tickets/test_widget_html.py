"""helpdesk.widget_html writes select boxes and check/radio options exactly as Django's widget templates do."""

import re
from pathlib import Path

import pytest
from django import forms
from django.conf import settings
from django.forms.renderers import DjangoTemplates
from django.template import engines
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from accounts.models import Membership
from helpdesk.widget_html import WIDGETS, preloaded_choices
from tests.tickets import factories as f
from tickets.access import visible_queue_list
from tickets.forms import TicketFieldsForm

DJANGO = DjangoTemplates()
EVIL = """<b>"x" & 'y'</b>"""


def both(make_form) -> tuple[str, str]:
    """Every field of the form, tag by tag and option by option, with Django's renderer and with ours."""
    out = []
    for renderer in (DJANGO, WIDGETS):
        form = make_form(renderer)
        parts = []
        for field in form:
            parts.append(str(field))
            if hasattr(field.field.widget, "option_template_name"):
                parts += [f"{w.tag()}|{w}" for w in field]  # as templates use them
        out.append("\n".join(parts))
    return out[0], out[1]


class Everything(forms.Form):
    plain = forms.ChoiceField(choices=[("a", "A"), ("b", EVIL)])
    required_empty_first = forms.ChoiceField(choices=[("", "---"), ("x", "X")])
    grouped = forms.ChoiceField(
        choices=[("Fruit", [("apple", "Apple"), ("pear", "Pear")]), ("none", "None"), (EVIL, [(1, 2)])],
        required=False,
    )
    many = forms.MultipleChoiceField(choices=[(1, "One"), (2, "Two"), (3, mark_safe("<i>Three</i>"))])
    lazy = forms.ChoiceField(choices=[("l", gettext_lazy("Sunday")), ("n", 12345.5)])
    boxes = forms.MultipleChoiceField(
        choices=[(1, "One"), (EVIL, EVIL)], widget=forms.CheckboxSelectMultiple, required=False
    )
    radio = forms.ChoiceField(choices=[("r", "R"), ("s", "S")], widget=forms.RadioSelect)
    attrs = forms.ChoiceField(
        choices=[("1", "1")],
        widget=forms.Select(attrs={"data-x": EVIL, "data-on": True, "data-off": False, "data-n": 0}),
        help_text="Helps",
    )
    nullable = forms.NullBooleanField(required=False)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"plain": "b", "required_empty_first": "x", "grouped": "pear", "many": ["1", "3"], "lazy": "l"},
        {"plain": "nope", "many": ["9"], "boxes": [EVIL], "radio": "s", "attrs": "1", "nullable": "true"},
    ],
)
@pytest.mark.parametrize("language", ["en", "de"])
def test_widgets_are_djangos(data, language):
    with translation.override(language):
        django, ours = both(lambda renderer: Everything(data, renderer=renderer, auto_id="f-%s"))
    assert ours == django
    assert "<b>" not in ours


@pytest.mark.django_db
@pytest.mark.parametrize("bound", [False, True])
def test_the_side_panel_is_djangos(tenant, agent, bound):
    membership = Membership.objects.get(user=agent)
    billing = f.queue(tenant, "Billing")
    f.queue(tenant, f"Restricted {EVIL}", restricted=True)
    vip, _other = f.tag(tenant, "vip"), f.tag(tenant, EVIL)
    t = f.ticket(tenant, queue=billing, tags=[vip], assignee=agent)
    data = {"status": "bogus", "priority": "3", "queue": str(billing.pk), "tags": [str(vip.pk)]}

    def make(renderer):
        form = (
            TicketFieldsForm(data, membership=membership, renderer=renderer)
            if bound
            else TicketFieldsForm(membership=membership, ticket=t, renderer=renderer)
        )
        if bound:
            assert not form.is_valid()
        if renderer is WIDGETS:  # as tickets.views shows it: the queues from the request's list
            form.fields["queue"].choices = preloaded_choices(
                form.fields["queue"], visible_queue_list(membership)
            )
        return form

    django, ours = both(make)
    assert ours == django
    assert 'aria-invalid="true"' in ours if bound else " selected>" in ours


# The tag checkboxes of the ticket page's side panel: once a template loop, now `{% tag_checks %}`.
OLD_TAG_PICKER = (
    '{% for cb in fields_form.tags %}<label class="tag-check">{{ cb.tag }}<span>{{ cb.choice_label }}</span>'
    '</label>{% empty %}<span class="muted small">No tags yet.</span>{% endfor %}'
)


def tag_picker_of_the_page() -> str:
    """The tag picker's content as templates/tickets/detail.html has it today."""
    source = (Path(settings.BASE_DIR) / "templates" / "tickets" / "detail.html").read_text()
    return "{% load detail_tags %}" + re.search(r'<div class="tag-picker">(.*?)</div>', source).group(1)


@pytest.mark.django_db
@pytest.mark.parametrize("tags", [0, 3])
@pytest.mark.parametrize("bound", [False, True])
def test_the_tag_picker_is_the_loop_it_replaced(tenant, agent, tags, bound):
    membership = Membership.objects.get(user=agent)
    made = [f.tag(tenant, name) for name in ["vip", EVIL, "refund"][:tags]]
    t = f.ticket(tenant, tags=made[:1])
    if bound:
        form = TicketFieldsForm({"tags": [str(x.pk) for x in made[1:]], "status": "?"}, membership=membership)
        assert not form.is_valid()
    else:
        form = TicketFieldsForm(membership=membership, ticket=t)
    form.renderer = WIDGETS
    engine = engines["django"]
    page = engine.from_string(tag_picker_of_the_page()).render({"fields_form": form})
    assert page == engine.from_string(OLD_TAG_PICKER).render({"fields_form": form})
    assert ("No tags yet." in page) == (tags == 0)
