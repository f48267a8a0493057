"""Times as Django templates show them, for pages that show hundreds: `{{ value }}` and `{{ value|date:"..." }}`.

Django's `date` filter builds a DateFormat per value (time zone checks included) and parses the format string
every time: about 60 µs a call, most of a long thread's date cost. `DateText` parses each format once and
looks each translated name (month, "a.m.", "noon") up once per instance, so make one per render: it then
follows the active language and time zone like the template would. Format letters it does not know go
through Django's own DateFormat, so any format string gives the same text as the filter.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone
from django.utils.dateformat import DateFormat, re_escaped, re_formatchars
from django.utils.dates import MONTHS, MONTHS_3, MONTHS_AP
from django.utils.formats import get_format
from django.utils.translation import gettext


class DateText:
    """`localtime()`, `{{ value }}` (DATETIME_FORMAT) and `|date:` for the active language and time zone."""

    def __init__(self):
        self.tz = timezone.get_current_timezone() if settings.USE_TZ else None
        self.datetime_format = get_format("DATETIME_FORMAT")
        self._formats: dict[str, list] = {}
        self._words: dict[tuple, str] = {}
        self._letters = {
            "c": lambda d: d.isoformat(),
            "d": lambda d: f"{d.day:02d}",
            "j": lambda d: str(d.day),
            "m": lambda d: f"{d.month:02d}",
            "n": lambda d: str(d.month),
            "y": lambda d: f"{d.year % 100:02d}",
            "Y": lambda d: f"{d.year:04d}",
            "G": lambda d: str(d.hour),
            "H": lambda d: f"{d.hour:02d}",
            "i": lambda d: f"{d.minute:02d}",
            "s": lambda d: f"{d.second:02d}",
            "b": lambda d: self._word("b", d.month, lambda: str(MONTHS_3[d.month])),
            "M": lambda d: self._word("M", d.month, lambda: MONTHS_3[d.month].title()),
            "N": lambda d: self._word("N", d.month, lambda: str(MONTHS_AP[d.month])),
            "F": lambda d: self._word("F", d.month, lambda: str(MONTHS[d.month])),
            "a": self._a,
            "f": self._f,
            "P": self._p,
        }

    def local(self, value: dt.datetime) -> dt.datetime:
        """The value in the active time zone, as templates show it (naive values as they are)."""
        if self.tz is None or value.tzinfo is None or value.utcoffset() is None:
            return value
        return value.astimezone(self.tz)

    def format(self, local: dt.datetime, fmt: str) -> str:
        """`dateformat.format(local, fmt)`: `local` is already in the time zone to show (see `local()`)."""
        parts = self._formats.get(fmt)
        if parts is None:
            parts = self._formats[fmt] = self._compile(fmt)
        return "".join(part if isinstance(part, str) else part(local) for part in parts)

    def text(self, value: dt.datetime) -> str:
        """`{{ value }}` of a datetime: localised with DATETIME_FORMAT."""
        return self.format(self.local(value), self.datetime_format)

    def _compile(self, fmt: str) -> list:
        parts = []
        for i, piece in enumerate(re_formatchars.split(str(fmt))):
            if i % 2:
                parts.append(self._letters.get(piece) or (lambda d, letter=piece: _django(d, letter)))
            elif piece:
                parts.append(re_escaped.sub(r"\1", piece))
        return parts

    def _word(self, letter: str, key, make) -> str:
        word = self._words.get((letter, key))
        if word is None:
            word = self._words[(letter, key)] = make()
        return word

    def _a(self, d: dt.datetime) -> str:
        return self._word("a", d.hour > 11, lambda: gettext("p.m." if d.hour > 11 else "a.m."))

    def _f(self, d: dt.datetime) -> str:
        hour = d.hour % 12 or 12
        return f"{hour}:{d.minute:02d}" if d.minute else str(hour)

    def _p(self, d: dt.datetime) -> str:
        if d.minute == 0 and d.hour in (0, 12):
            return self._word("P", d.hour, lambda: gettext("midnight" if d.hour == 0 else "noon"))
        return f"{self._f(d)} {self._a(d)}"


def _django(local: dt.datetime, letter: str) -> str:
    return str(getattr(DateFormat(local), letter)())
