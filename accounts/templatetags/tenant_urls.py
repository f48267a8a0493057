"""`{% turl "tickets:inbox" %}`: reverse a URL of the current tenant without repeating its slug."""

from django import template

from accounts.access import tenant_reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def turl(context, viewname: str, *args, **kwargs) -> str:
    return tenant_reverse(context["request"].tenant, viewname, *args, **kwargs)
