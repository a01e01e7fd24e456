"""Statistical disclosure control for published exports.

The return service's publication rule: a count under 5 is suppressed, every other count is
rounded to the nearest ten; a flag column says what was done. Statistics derived from few
cases (the mean lead time over fewer than 5 confirmations) are suppressed with their count.
Estimates are always computed on the exact, unrounded panel; only exports pass through here.

No protected count may be recoverable from what is published next to it:

* a mean of whole numbers (lead time in days) is a fraction with the count as denominator;
  published at full precision it gives the count away (the n for which mean x n is whole).
  Means are published rounded to whole units, which every count in the rounding interval of
  the published count can produce (an interval of n >= 1 always holds a whole sum);
* the flag never says a count was left unchanged by rounding (that would publish the exact
  value of every multiple of ten): a published count is 'rounded', 'suppressed' or 'zero';
* sums published next to their parts (verified = forced + independent) are rounded on their
  own; the intervals never narrow a protected part to one value (tested by brute force).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

SUPPRESSION_THRESHOLD = 5
ROUNDING_BASE = 10
DERIVED_DECIMALS = 0  # means of whole numbers are published to whole units


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
    derived_decimals: int = DERIVED_DECIMALS,
) -> pd.DataFrame:
    """Suppress small counts and round the rest, adding ``<column>_sdc`` flags.

    For each count column c: 0 < c < threshold -> NULL, flag 'suppressed'; 0 stays 0, flag
    'zero' (a structural zero; suppressed too if ``suppress_zero``); otherwise
    c -> round_half_up(c, base), flag 'rounded' (also when rounding left the value as it
    was, so the flag reveals nothing). ``dependent_columns`` maps a derived column to the
    count it rests on (``lead_time_days`` -> ``confirmations``): it is suppressed wherever
    that count is under the threshold and otherwise rounded, halves up, to
    ``derived_decimals`` decimals (flag 'rounded'; 'missing' where it is NULL).
    Returns a new frame; the input is not changed.
    """
    out = frame.copy()
    for column in count_columns:
        exact = frame[column]
        small = ((exact < threshold) & ((exact > 0) | suppress_zero)).fillna(False).to_numpy(dtype=bool)
        zero = (exact == 0).fillna(False).to_numpy(dtype=bool) & ~small
        rounded = round_half_up(exact.where(~small), base)
        out[column] = rounded.where(~small, pd.NA)
        out[f"{column}_sdc"] = np.where(small, "suppressed", np.where(zero, "zero", "rounded"))
        out.loc[exact.isna().to_numpy(), f"{column}_sdc"] = "missing"
    scale = 10.0**derived_decimals
    for column, count in (dependent_columns or {}).items():
        small = (frame[count] < threshold).fillna(True).to_numpy(dtype=bool)
        value = frame[column].astype(float)
        coarse = np.floor(value * scale + 0.5) / scale
        out[column] = coarse.where(~small)
        missing = value.isna().to_numpy()
        out[f"{column}_sdc"] = np.where(missing, "missing", np.where(small, "suppressed", "rounded"))
    return out
