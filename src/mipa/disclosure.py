"""Statistical disclosure control for published exports.

The return service's publication rule: a count under 5 is suppressed, every other count is
rounded to the nearest ten; a flag column says what was done. Statistics derived from few
cases (the mean lead time over fewer than 5 confirmations) are suppressed with their count.
Estimates are always computed on the exact, unrounded panel; only exports pass through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

SUPPRESSION_THRESHOLD = 5
ROUNDING_BASE = 10


def round_half_up(values: pd.Series, base: int = ROUNDING_BASE) -> pd.Series:
    """Round to the nearest multiple of ``base``, halves up (15 -> 20, 14 -> 10).

    Python's and numpy's round() send halves to the even neighbour, which publication
    tables do not use.
    """
    return (np.floor(values.astype(float) / base + 0.5) * base).astype("Int64")


def protect_counts(
    frame: pd.DataFrame,
    count_columns: Sequence[str],
    *,
    dependent_columns: Mapping[str, str] | None = None,
    threshold: int = SUPPRESSION_THRESHOLD,
    base: int = ROUNDING_BASE,
    suppress_zero: bool = False,
) -> pd.DataFrame:
    """Suppress small counts and round the rest, adding ``<column>_sdc`` flags.

    For each count column c: 0 < c < threshold -> NULL, flag 'suppressed'; otherwise
    c -> round_half_up(c, base), flag 'rounded' (or 'exact' where rounding left it equal).
    Zero is a structural zero and stays 0 unless ``suppress_zero``. ``dependent_columns``
    maps a derived column to the count it rests on (``lead_time_days`` ->
    ``confirmations``): it is suppressed wherever that count is under the threshold.
    Returns a new frame; the input is not changed.
    """
    out = frame.copy()
    for column in count_columns:
        exact = frame[column]
        small = (exact < threshold) & ((exact > 0) | suppress_zero)
        rounded = round_half_up(exact.where(~small), base)
        out[column] = rounded.where(~small, pd.NA)
        unchanged = (rounded == exact).fillna(False).to_numpy(dtype=bool)
        out[f"{column}_sdc"] = np.where(small, "suppressed", np.where(unchanged, "exact", "rounded"))
    for column, count in (dependent_columns or {}).items():
        small = frame[count] < threshold
        out[column] = frame[column].where(~small)
        out[f"{column}_sdc"] = np.where(small & frame[column].notna(), "suppressed", "exact")
        out[f"{column}_sdc"] = np.where(frame[column].isna(), "missing", out[f"{column}_sdc"])
    return out
