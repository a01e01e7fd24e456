"""The raw feed contract: the interface with the return service's feed maintainers.

One folder per feed under the raw directory, each holding one or more CSV or Parquet
files. Only the required columns are read; extra columns are ignored. The README
documents the same contract for people; this module is the one place code reads it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class FeedSpec:
    """Required columns of one feed, and which of them identifies a person."""

    name: str
    required_columns: tuple[str, ...]
    person_column: str | None
    description: str
    date_column: str


FEEDS: dict[str, FeedSpec] = {
    spec.name: spec
    for spec in (
        FeedSpec(
            "returns",
            ("record_id", "person_id", "nationality", "departure_date", "departure_type"),
            "person_id",
            "departures recorded by the return service (forced, independent, unsupervised)",
            "departure_date",
        ),
        FeedSpec(
            "requests",
            ("record_id", "person_id", "nationality", "request_date"),
            "person_id",
            "nationality-confirmation requests sent by the Netherlands",
            "request_date",
        ),
        FeedSpec(
            "nationality_confirmations",
            ("record_id", "request_id", "nationality", "decision_date", "outcome"),
            None,
            "decisions of origin countries on nationality-confirmation requests",
            "decision_date",
        ),
        FeedSpec(
            "laissez_passers",
            ("record_id", "person_id", "nationality", "issue_date"),
            "person_id",
            "travel documents (laissez-passers) issued by origin countries",
            "issue_date",
        ),
    )
}

DATA_FILE_SUFFIXES = (".csv", ".parquet")

CODES: dict[str, tuple[str, ...]] = {
    "departure_type": ("forced", "independent", "unsupervised"),
    "outcome": ("confirmed", "rejected"),
}
"""The contract's codes of the coded columns. A delivery with other codes translates them
in its mapping file (``mipa.mapping``); a value that is neither is quarantined by dbt."""

MAPPING_FILE = "_mapping.yml"
"""Name of a feed's optional mapping file, in the feed folder next to the deliveries: how
the export's column names, date format, codes and missing values read as this contract
(``mipa.mapping``). It is never loaded as a delivery."""

MISSING_VALUES: tuple[str, ...] = ("", "na", "n/a", "#n/a", "null", "none", "nan", "-", "?")
"""Text that means "no value" in any column, compared after trimming, in any case. Such a
value is loaded as NULL, so a missing nationality is never read as a country (``NA`` is
not Namibia: deliver Namibia as ``NAM`` or by name) and missing person ids are never
linked to each other."""

DATE_ORDER = "DD-MM-YYYY"
"""Day-first: the order of a date that is not ISO ``YYYY-MM-DD``. A delivery with a date
that only makes sense month-first (``03-25-2023``) contradicts it and stops the load
(rule ``date_order``): its other dates would be read with day and month swapped."""

SYNTHETIC_MARKER = "_synthetic.json"
_MANIFEST_CONTEXT = b"mipa synthetic feeds manifest v1"


def manifest_signature(files: dict[str, str]) -> str:
    """Signature of a synthetic-feed manifest (relative file path -> SHA-256 of its bytes).

    The generator writes it into ``_synthetic.json``; the loader recomputes it from the
    files it finds. It binds the marker to exactly these files: a marker dropped into a
    folder of other files, or a feed file added or changed after generation, does not
    verify. It is an integrity check, not a secret (the code is public): synthetic feeds
    are therefore pseudonymised under a random per-build key, never a public one.
    """
    canonical = json.dumps(dict(sorted(files.items())), separators=(",", ":")).encode("utf-8")
    return hmac.new(_MANIFEST_CONTEXT, canonical, hashlib.sha256).hexdigest()
