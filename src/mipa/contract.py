"""The raw feed contract: the interface with the return service's feed maintainers.

One folder per feed under the raw directory, each holding one or more CSV or Parquet
files. Only the required columns are read; extra columns are ignored. The README
documents the same contract for people; this module is the one place code reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeedSpec:
    """Required columns of one feed, and which of them identifies a person."""

    name: str
    required_columns: tuple[str, ...]
    person_column: str | None
    description: str


FEEDS: dict[str, FeedSpec] = {
    spec.name: spec
    for spec in (
        FeedSpec(
            "returns",
            ("record_id", "person_id", "nationality", "departure_date", "departure_type"),
            "person_id",
            "departures recorded by the return service (forced, independent, unsupervised)",
        ),
        FeedSpec(
            "requests",
            ("record_id", "person_id", "nationality", "request_date"),
            "person_id",
            "nationality-confirmation requests sent by the Netherlands",
        ),
        FeedSpec(
            "nationality_confirmations",
            ("record_id", "request_id", "nationality", "decision_date", "outcome"),
            None,
            "decisions of origin countries on nationality-confirmation requests",
        ),
        FeedSpec(
            "laissez_passers",
            ("record_id", "person_id", "nationality", "issue_date"),
            "person_id",
            "travel documents (laissez-passers) issued by origin countries",
        ),
    )
}

DATA_FILE_SUFFIXES = (".csv", ".parquet")
