"""`{{ seconds|duration }}`: a duration in seconds as people read it (“45 min”, “3 h 20 min”, “2 d 4 h”)."""

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def percent_of(part: int, whole: int) -> int:
    """Share as a whole percentage (for bar widths), 0 when there is no whole."""
    return round(100 * part / whole) if whole else 0


@register.filter
def duration_compact(seconds: float | None) -> str:
    """The same, shorter, for big numbers on cards: “45m”, “3h 20m”, “2d 4h”."""
    return duration(seconds).replace(" min", "m").replace(" h", "h").replace(" d", "d")
