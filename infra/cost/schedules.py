"""How often an EventBridge schedule expression fires in an average month.

`rate(n unit)` fires every n units; `cron(minutes hours day-of-month month day-of-week year)` fires at every
minute/hour of every day its fields match; a one-time `at(...)` fires once ever, so 0 times a month. Days are
counted over the 28-year calendar cycle 2001-2028 (every weekday and leap-year alignment once): a weekly schedule
fires 365.25 / 7 / 12 = 4.35 times a month, a monthly one once and an hourly one 730.5 times (the calendar's
average month), while always-on resources are priced at the 730 hours a month AWS's pricing pages use. A time
zone moves the hour, not the count (daylight-saving days aside).
"""

from __future__ import annotations

import datetime
import re
from functools import cache

HOURS_PER_MONTH = 730.0  # 8,760 hours a year / 12, the month every monthly figure uses
_CYCLE_START, _CYCLE_YEARS = 2001, 28
_MONTHS = {
    m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)
}
_WEEKDAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}  # cron: 1 = Sunday
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")
_RATE = re.compile(r"^rate\((\d+) (minutes?|hours?|days?)\)$")
_CRON = re.compile(r"^cron\((\S+( \S+){5})\)$")
_UNIT_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0}


class ScheduleError(ValueError):
    """An expression this parser cannot count; str(err) names the expression and the field."""


@cache
def runs_per_month(expression: str) -> float:
    """Average number of times `expression` fires in a month of HOURS_PER_MONTH hours (a one-time at(...): 0)."""
    if _AT.fullmatch(expression.strip()):
        return 0.0
    rate = _RATE.fullmatch(expression.strip())
    if rate:
        count, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if count < 1:
            raise ScheduleError(f"'{expression}': a rate must be at least 1")
        return HOURS_PER_MONTH / (count * _UNIT_HOURS[unit])
    cron = _CRON.fullmatch(expression.strip())
    if not cron:
        raise ScheduleError(f"'{expression}' is none of rate(<n> <unit>), cron(<6 fields>) or at(<date>T<time>)")
    minutes, hours, dom, month, dow, year = cron.group(1).split(" ")
    if year not in ("*", "?"):
        raise ScheduleError(
            f"'{expression}': year field '{year}' must be * (a schedule bounded in years has no monthly rate)"
        )
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"'{expression}': exactly one of day-of-month and day-of-week must be '?'")
    per_day = len(_field(minutes, 0, 59, {}, expression, "minutes")) * len(
        _field(hours, 0, 23, {}, expression, "hours")
    )
    months = _field(month, 1, 12, _MONTHS, expression, "month")
    days = _field(dom, 1, 31, {}, expression, "day-of-month") if dom != "?" else None
    weekdays = _field(dow, 1, 7, _WEEKDAYS, expression, "day-of-week") if dow != "?" else None
    matching = 0
    day = datetime.date(_CYCLE_START, 1, 1)
    end = datetime.date(_CYCLE_START + _CYCLE_YEARS, 1, 1)
    while day < end:
        weekday = day.isoweekday() % 7 + 1  # Monday=1..Sunday=7 -> Sunday=1..Saturday=7
        if day.month in months and (days is None or day.day in days) and (weekdays is None or weekday in weekdays):
            matching += 1
        day += datetime.timedelta(days=1)
    return matching * per_day / (_CYCLE_YEARS * 12)


def _field(text: str, low: int, high: int, names: dict[str, int], expression: str, what: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = _number(step_text, {}, expression, what)
            if step < 1:
                raise ScheduleError(f"'{expression}': {what} step '{step_text}' must be at least 1")
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            first_text, last_text = part.split("-", 1)
            first, last = _number(first_text, names, expression, what), _number(last_text, names, expression, what)
        else:
            first = _number(part, names, expression, what)
            last = high if step > 1 else first
        if not low <= first <= last <= high:
            raise ScheduleError(f"'{expression}': {what} '{text}' is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(text: str, names: dict[str, int], expression: str, what: str) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(
            f"'{expression}': {what} value '{text}' is not supported (numbers, names, *, ranges, lists and steps; "
            "not L, W or #)"
        )
    return int(text)
