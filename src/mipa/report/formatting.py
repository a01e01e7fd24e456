"""Numbers as the annex prints them: English or Dutch separators, the star rule, and the
number of decimals per outcome and magnitude.

Every function is pure (value in, text out), so the table tests can pin the layout.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

from mipa.report import labels

MISSING = "—"
STAR_LEVEL = 0.05  # "*" when p < 0.05, as in the annex's tables

# outcomes the annex always prints without decimals (days)
WHOLE_NUMBER_OUTCOMES = frozenset({"lead_time_days"})

# The one rule for decimals: the digits after the decimal point of every number in a table
# cell, by the cell's number type. A table states its rule as this dict (Table.decimals
# overrides a type where it must differ); every cell of the type follows it, whatever the
# magnitude, so a column never mixes 3.0 and 0.11. Tested on the built report.
DECIMALS: dict[str, int] = {
    "count": 0,       # observations, countries, rows, files, replications, minimum and maximum of counts
    "days": 0,        # lead time in days: its statistics and effects, as the annex prints them
    "statistic": 1,   # descriptive means and standard deviations
    "effect": 2,      # estimates, interval bounds, standard errors, planted effects, bias, RMSE
    "ratio": 2,       # width ratios and other unitless factors
    "p_value": 3,
    "percent": 1,     # shares and coverage, printed as %
}


def number_type(kind: str, outcome: str | None = None) -> str:
    """The type of a number: ``effect`` and ``statistic`` of lead time are ``days``."""
    return "days" if outcome in WHOLE_NUMBER_OUTCOMES and kind in ("effect", "statistic") else kind


def decimals_for(kind: str, outcome: str | None = None, rule: dict[str, int] | None = None) -> int:
    """Decimals of a number of type ``kind`` (see :data:`DECIMALS`) for ``outcome``."""
    return (rule or DECIMALS)[number_type(kind, outcome)]


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA (scalars only; a string is never missing)."""
    if value is None:
        return True
    if isinstance(value, str):
        return False
    try:
        result = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return bool(result) if isinstance(result, (bool, np.bool_)) else False


def _separators(lang: str) -> tuple[str, str]:
    """(thousands, decimal) separators."""
    return (".", ",") if labels.check_lang(lang) == "nl" else (",", ".")


def fmt_number(value: Any, decimals: int = 1, lang: str = "en", *, thousands: bool = True) -> str:
    """``1234.56`` -> ``1,234.6`` (en) or ``1.234,6`` (nl); missing -> ``—``."""
    if is_missing(value):
        return MISSING
    text = f"{float(value):,.{decimals}f}" if thousands else f"{float(value):.{decimals}f}"
    thou, dec = _separators(lang)
    return text.replace(",", "\0").replace(".", dec).replace("\0", thou if thousands else "")


def fmt_int(value: Any, lang: str = "en") -> str:
    """Counts with thousands separators: ``10320`` -> ``10,320`` / ``10.320``."""
    if is_missing(value):
        return MISSING
    return fmt_number(round(float(value)), 0, lang)


def fmt_percent(share: Any, decimals: int = 1, lang: str = "en", *, sign: bool = True) -> str:
    """A share (0..1) as a percentage: ``0.838`` -> ``83.8%`` (``83,8%`` in Dutch)."""
    if is_missing(share):
        return MISSING
    return fmt_number(100.0 * float(share), decimals, lang) + ("%" if sign else "")


def auto_decimals(*values: Any, outcome: str | None = None) -> int:
    """Decimals of an effect (estimate, bound, standard error): the ``effect`` rule, or
    ``days`` for lead time. The values are not consulted: one rule, whatever the size."""
    return decimals_for("effect", outcome)


def star(p_value: Any) -> str:
    """``*`` when p < 0.05; nothing for larger or missing p-values."""
    if is_missing(p_value):
        return ""
    return "*" if float(p_value) < STAR_LEVEL else ""


def fmt_estimate_ci(
    estimate: Any, ci_low: Any, ci_high: Any, p_value: Any, *, lang: str = "en", outcome: str | None = None
) -> str:
    """Annex layout ``3.0* [-0.8 6.7]``: estimate, star, interval in brackets."""
    if is_missing(estimate):
        return MISSING
    d = auto_decimals(estimate, ci_low, ci_high, outcome=outcome)
    text = fmt_number(estimate, d, lang) + star(p_value)
    if not (is_missing(ci_low) or is_missing(ci_high)):
        text += f" [{fmt_number(ci_low, d, lang)} {fmt_number(ci_high, d, lang)}]"
    return text


def fmt_estimate_se(
    estimate: Any, std_error: Any, p_value: Any, *, lang: str = "en", outcome: str | None = None
) -> str:
    """Annex layout ``6.7* (3.2)``: estimate, star, standard error in parentheses."""
    if is_missing(estimate):
        return MISSING
    d = auto_decimals(estimate, std_error, outcome=outcome)
    text = fmt_number(estimate, d, lang) + star(p_value)
    if not is_missing(std_error):
        text += f" ({fmt_number(std_error, d, lang)})"
    return text


def fmt_p_value(p_value: Any, lang: str = "en") -> str:
    """The p-value rule's decimals (three); ``< 0.001`` below that."""
    if is_missing(p_value):
        return MISSING
    d = DECIMALS["p_value"]
    floor = 10.0 ** -d
    if float(p_value) < floor:
        return "< " + fmt_number(floor, d, lang)
    return fmt_number(p_value, d, lang)


def as_date(value: Any) -> dt.date | None:
    if is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime().date()
    return dt.date.fromisoformat(str(value)[:10])


def fmt_month_short(value: Any) -> str:
    """``2022-06-01`` -> ``06-2022`` (the annex's country labels)."""
    d = as_date(value)
    return MISSING if d is None else f"{d.month:02d}-{d.year}"


def fmt_month_long(value: Any, lang: str = "en") -> str:
    """``2022-06-01`` -> ``June 2022`` / ``juni 2022``."""
    d = as_date(value)
    return MISSING if d is None else f"{labels.month_name(lang, d.month)} {d.year}"


def country_row_label(name: str, start: Any) -> str:
    """``Marokko (06-2022)``: the country and its partnership start, as in the annex."""
    return f"{name} ({fmt_month_short(start)})"


def fmt_value_attr(value: Any) -> str:
    """Unrounded value for a ``data-value`` attribute: ``repr`` round-trips a float exactly."""
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return repr(f)


def _bound(value: Any, decimals: int, lang: str) -> str:
    if is_missing(value):
        return MISSING
    if math.isinf(float(value)):
        return "−∞" if float(value) < 0 else "∞"
    return fmt_number(value, decimals, lang)


def fmt_interval(estimate: Any, ci_low: Any, ci_high: Any, *, lang: str = "en", outcome: str | None = None,
                 with_estimate: bool = True) -> str:
    """``3.0* [2.2 3.7]`` for intervals that may be unbounded (``[-∞ ∞]``): the star marks an
    interval that excludes zero (for test-inversion intervals there is no p-value to star)."""
    if is_missing(estimate):
        return MISSING
    finite = [v for v in (estimate, ci_low, ci_high) if not is_missing(v) and math.isfinite(float(v))]
    d = auto_decimals(*finite, outcome=outcome)
    excludes_zero = not (is_missing(ci_low) or is_missing(ci_high)) and (float(ci_low) > 0 or float(ci_high) < 0)
    interval = f"[{_bound(ci_low, d, lang)} {_bound(ci_high, d, lang)}]"
    if not with_estimate:
        return interval
    return fmt_number(estimate, d, lang) + ("*" if excludes_zero else "") + " " + interval


def not_estimable_text(row: Any, lang: str = "en") -> str | None:
    """``not estimable (reason)`` for a mart row whose ``status`` is not_estimable, else
    None (the caller formats the number)."""
    if row is None:
        return None
    getter = row.get if hasattr(row, "get") else (lambda key, default=None: default)
    if getter("status", None) != "not_estimable":
        return None
    return labels.not_estimable(lang, getter("reason", None))


def fmt_day(day: dt.date, lang: str) -> str:
    """``7 December 2025`` / ``7 december 2025``."""
    return f"{day.day} {labels.month_name(lang, day.month)} {day.year}"


def code_version_text(version: dict[str, Any], lang: str) -> str:
    """Which code made the report: version, git commit, and whether it had uncommitted changes."""
    if not version.get("git_commit"):
        return labels.text(lang, "code_version_no_git", version=version["mipa"])
    text = labels.text(lang, "code_version_commit", version=version["mipa"], commit=version["git_commit"])
    return labels.text(lang, "code_version_modified", text=text) if version.get("git_modified") else text
