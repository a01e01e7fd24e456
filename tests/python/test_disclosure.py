"""The publication rule: counts under 5 suppressed, the rest rounded to tens, flagged."""

from __future__ import annotations

import pandas as pd

from mipa.disclosure import protect_counts, round_half_up


def test_rounding_is_half_up_to_tens() -> None:
    assert round_half_up(pd.Series([5, 14, 15, 25, 104, 105, 0])).tolist() == [10, 10, 20, 30, 100, 110, 0]


def test_small_counts_are_suppressed_and_others_rounded() -> None:
    frame = pd.DataFrame({"forced_departures": [0, 1, 4, 5, 17, 30], "confirmations": [0, 3, 8, 12, 2, 40],
                          "lead_time_days": [None, 10.0, 55.5, 70.0, 12.0, 99.0]})
    out = protect_counts(frame, ["forced_departures", "confirmations"], dependent_columns={"lead_time_days": "confirmations"})
    assert out["forced_departures"].tolist() == [0, pd.NA, pd.NA, 10, 20, 30]
    # a multiple of ten is flagged 'rounded' too: an 'exact' flag would publish its true value
    assert out["forced_departures_sdc"].tolist() == ["zero", "suppressed", "suppressed", "rounded", "rounded", "rounded"]
    # lead time rests on the month's confirmations: suppressed with them
    assert out["lead_time_days"].isna().tolist() == [True, True, False, False, True, False]
    assert out["lead_time_days_sdc"].tolist() == ["missing", "suppressed", "rounded", "rounded", "suppressed", "rounded"]
    # and published to whole days (halves up): at full precision, mean x count would be whole
    # only for the true count, which rounding the count to tens is meant to hide
    assert out["lead_time_days"].dropna().tolist() == [56.0, 70.0, 99.0]
    # the input keeps exact counts (estimates use the unrounded panel)
    assert frame["forced_departures"].tolist() == [0, 1, 4, 5, 17, 30]


def test_zero_can_be_suppressed_too() -> None:
    out = protect_counts(pd.DataFrame({"n": [0, 6]}), ["n"], suppress_zero=True)
    assert out["n"].isna().tolist() == [True, False]
