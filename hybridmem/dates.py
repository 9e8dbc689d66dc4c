"""When a memory was said, and the dates it speaks of.

`parse_timestamp` turns what `add(..., timestamp=...)` accepts (a datetime, an ISO 8601
string, unix seconds) into the UTC ISO string a memory keeps as `created_at`, so an
imported conversation keeps its own dates.

`date_words` resolves the relative dates of a text ("yesterday", "last week", "two years
ago", "next month") against the moment it was said into words BM25 can match ("7 may
2023", "april 2023", "2021"): a question asking about May 2023 finds "I went there
yesterday" said on 8 May 2023. Resolution is by rule, with no model, and always against
the memory's own `created_at`, so re-indexing gives the same words.
"""

from __future__ import annotations

import calendar
import contextlib
import re
from datetime import UTC, date, datetime, timedelta

from hybridmem.errors import InvalidInputError

__all__ = ["DATE_MARKER", "date_words", "parse_timestamp"]

# Added to every memory with a resolved or explicit date, so that a "when" question can
# ask for "a memory that says when" (see `hybridmem.read.lexical_index`).
DATE_MARKER = "datementioned"

_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
            "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
            "twelve": 12, "a couple of": 2, "couple of": 2, "a few": 3, "few": 3}
_WEEKDAYS = [d.lower() for d in calendar.day_name]
_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_COUNT = r"(\d{1,3}|a couple of|couple of|a few|few|an|a|one|two|three|four|five|six|seven" \
         r"|eight|nine|ten|eleven|twelve)"
_UNIT = r"(day|week|month|year)s?"
_AGO = re.compile(rf"\b{_COUNT}\s+{_UNIT}\s+ago\b")
_IN = re.compile(rf"\bin\s+{_COUNT}\s+{_UNIT}\b")
_RELATIVE = re.compile(r"\b(last|next|this|past|coming)\s+(week|weekend|month|year|"
                       + "|".join(_WEEKDAYS) + r")\b")
_SINGLE = re.compile(r"\b(yesterday|today|tonight|tomorrow|this morning|this afternoon|"
                     r"this evening|the other day|the day before yesterday)\b")
_ANY = re.compile(r"\b(yesterday|today|tonight|tomorrow|ago|week|weekend|weeks|month|months|"
                  r"year|years|day|days|morning|afternoon|evening|"
                  + "|".join(_WEEKDAYS + _MONTHS) + r"|(19|20)\d\d)\b")
_EXPLICIT = re.compile(r"\b(" + "|".join(_MONTHS) + r")\b|\b(19|20)\d\d\b")


def parse_timestamp(value: object) -> str:
    """The UTC ISO string (`records.iso` form) of a datetime, an ISO 8601 string or unix
    seconds; a naive datetime or string is taken as UTC.

    Raises:
        InvalidInputError: anything else, a string that is not ISO 8601, or a moment
            outside the years 1000-9998 (the stores' fixed-width dates, and room for the
            relative dates resolved against it).
    """
    if isinstance(value, bool):
        raise InvalidInputError("timestamp must be a datetime, an ISO 8601 string or unix "
                                f"seconds, not {value!r}")
    if isinstance(value, datetime):
        return _bounded(value, value)
    if isinstance(value, date):
        return _bounded(datetime(value.year, value.month, value.day, tzinfo=UTC), value)
    if isinstance(value, int | float):
        try:
            moment = datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInputError(f"timestamp {value!r} is out of range as unix "
                                    "seconds") from exc
        return _bounded(moment, value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidInputError(
                f"timestamp {value!r} is not an ISO 8601 date or time (e.g. "
                "'2023-05-08T13:56:00Z'); pass a datetime or unix seconds otherwise") from exc
        return _bounded(moment, value)
    raise InvalidInputError("timestamp must be a datetime, an ISO 8601 string or unix "
                            f"seconds, not {type(value).__name__}")


def _bounded(moment: datetime, given: object) -> str:
    from hybridmem.records import iso

    try:
        year = (moment if moment.tzinfo is None else moment.astimezone(UTC)).year
    except OverflowError:  # e.g. 9999-12-31T23:59-01:00 is past year 9999 in UTC
        year = 10000
    if not 1000 <= year <= 9998:
        raise InvalidInputError(f"timestamp {given!r} is outside the years 1000-9998")
    return iso(moment)


def date_words(text: str, created_at: str | None) -> list[str]:
    """Words for the dates a text speaks of, resolved against when it was said.

    A day gives "<day> <month> <year>" (also "<month> <year>"), a week its days' month
    and year, a month "<month> <year>", a year "<year>". A text that names a month or a
    year itself, or any resolved date, also gets `DATE_MARKER`. No words without
    `created_at` or without a date.
    """
    lowered = text.lower()
    if not _ANY.search(lowered):  # most texts name no date: one scan, then nothing
        return []
    words: list[str] = []
    if created_at:
        try:
            said = datetime.fromisoformat(created_at).date()
        except ValueError:
            said = None
        if said is not None:
            # "a million days ago", "tomorrow" in year 9999: no date to index
            with contextlib.suppress(OverflowError, ValueError):
                words += _resolved(lowered, said)
    if words or any(p.search(lowered) for p in (_EXPLICIT, _SINGLE, _RELATIVE, _AGO, _IN)):
        words.append(DATE_MARKER)
    return words


def _resolved(lowered: str, said: date) -> list[str]:
    words: list[str] = []
    for day in _days(lowered, said):
        words += [str(day.day), _MONTHS[day.month - 1], str(day.year)]
    for year, month in _months(lowered, said):
        words += [_MONTHS[month - 1], str(year)]
    for year in _years(lowered, said):
        words.append(str(year))
    return words


def _days(text: str, said: date) -> list[date]:
    days = []
    for m in _SINGLE.finditer(text):
        word = m.group(1)
        offset = {"yesterday": -1, "tomorrow": 1, "the day before yesterday": -2,
                  "the other day": -2}.get(word, 0)
        days.append(said + timedelta(days=offset))
    for m in _RELATIVE.finditer(text):
        which, unit = m.groups()
        if unit in _WEEKDAYS:
            target = _WEEKDAYS.index(unit)
            back = (said.weekday() - target) % 7 or 7
            ahead = (target - said.weekday()) % 7 or 7
            days.append(said + timedelta(days=ahead) if which in ("next", "coming")
                        else said - timedelta(days=back) if which in ("last", "past")
                        else said + timedelta(days=(target - said.weekday())))
        elif unit in ("week", "weekend"):
            sign = 1 if which in ("next", "coming") else -1 if which in ("last", "past") else 0
            if unit == "weekend":  # the Saturday of that weekend
                saturday = said + timedelta(days=(5 - said.weekday()))
                if sign < 0:
                    saturday -= timedelta(days=7 if saturday >= said else 0)
                elif sign > 0 and saturday <= said:
                    saturday += timedelta(days=7)
                days.append(saturday)
            else:
                days.append(said + timedelta(days=7 * sign))
    for m in _AGO.finditer(text):
        count, unit = _NUMBERS.get(m.group(1)) or int(m.group(1)), m.group(2)
        if unit == "day":
            days.append(said - timedelta(days=count))
        elif unit == "week":
            days.append(said - timedelta(days=7 * count))
    for m in _IN.finditer(text):
        count, unit = _NUMBERS.get(m.group(1)) or int(m.group(1)), m.group(2)
        if unit in ("day", "week"):
            days.append(said + timedelta(days=count * (7 if unit == "week" else 1)))
    return days


def _shift_month(said: date, months: int) -> tuple[int, int]:
    index = said.year * 12 + said.month - 1 + months
    return index // 12, index % 12 + 1


def _months(text: str, said: date) -> list[tuple[int, int]]:
    out = []
    for m in _RELATIVE.finditer(text):
        which, unit = m.groups()
        if unit == "month":
            sign = 1 if which in ("next", "coming") else -1 if which in ("last", "past") else 0
            out.append(_shift_month(said, sign))
    for pattern, sign in ((_AGO, -1), (_IN, 1)):
        for m in pattern.finditer(text):
            count, unit = _NUMBERS.get(m.group(1)) or int(m.group(1)), m.group(2)
            if unit == "month":
                out.append(_shift_month(said, sign * count))
    return out


def _years(text: str, said: date) -> list[int]:
    out = []
    for m in _RELATIVE.finditer(text):
        which, unit = m.groups()
        if unit == "year":
            out.append(said.year + (1 if which in ("next", "coming")
                                    else -1 if which in ("last", "past") else 0))
    for pattern, sign in ((_AGO, -1), (_IN, 1)):
        for m in pattern.finditer(text):
            count, unit = _NUMBERS.get(m.group(1)) or int(m.group(1)), m.group(2)
            if unit == "year":
                out.append(said.year + sign * count)
    return out
