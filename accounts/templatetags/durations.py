"""`{{ delta|minutes }}`: a timedelta as whole minutes, rounded up, for messages such as the lockout page."""

import math
from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def minutes(value: timedelta | None) -> int:
    if not isinstance(value, timedelta):
        return 0
    return max(1, math.ceil(value.total_seconds() / 60))
