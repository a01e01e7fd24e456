"""Messy deliveries (``--dirty``): realistic defects injected into the clean feeds.

Kinds (counted exactly in ``_synthetic.json`` -> ``dirty``):

``nationality_variant``     clean row whose nationality is spelled differently: ISO2, English
                            or Dutch name, Dutch adjective, a name variant (all from
                            seeds/country_aliases.csv) or the ISO3 code, in random case and
                            with stray leading/trailing spaces. *Mutated in place*; the row is
                            valid once the spelling is resolved (upper(trim(x)) against the
                            upper-cased aliases).
``duplicate_row``           extra exact copy of a clean row (same record_id).
``bad_date``                extra row: copy of a generated row (ISO3 nationality), new
                            record_id, its date replaced by
                            an unparseable value ("2021-13-45", "n/a", "", ...).
``unknown_nationality``     extra row: copy with nationality "XXX", "Atlantis", ...
``negative_lead_time``      extra confirmation (outcome confirmed) whose decision_date lies
                            1-365 days *before* its (existing) request's request_date.
``orphan_confirmation``     extra confirmation whose request_id matches no request.
``invalid_departure_type``  extra return whose departure_type is not forced / independent /
                            unsupervised.
``redelivered_file``        a whole delivery file copied under a new name
                            (``<feed>_<year>_redelivery.<ext>``): every row is an exact
                            duplicate of a row in the original file (dirty rows included).

All extra rows are *added*: the clean rows (apart from their nationality spelling) are
exactly those of the clean run with the same seed, so after deduplication, alias
resolution and quarantine a warehouse must rebuild the clean panel exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mipa.simulate.writer import DATE_COLUMN, ID_PREFIX, Counters, FeedChunk, iso_dates, make_ids

KINDS = [
    "nationality_variant",
    "duplicate_row",
    "bad_date",
    "unknown_nationality",
    "negative_lead_time",
    "orphan_confirmation",
    "invalid_departure_type",
]
# label codes stored per row (0 = clean)
LABEL = {kind: i + 1 for i, kind in enumerate(KINDS)}
APPLIES = {
    "nationality_variant": None,  # every feed
    "duplicate_row": None,
    "bad_date": None,
    "unknown_nationality": None,
    "negative_lead_time": {"nationality_confirmations"},
    "orphan_confirmation": {"nationality_confirmations"},
    "invalid_departure_type": {"returns"},
}
VARIANT_TYPES = ("iso3", "iso2", "name_en", "name_nl", "adjective_nl", "variant")


class Spellings:
    """Alternative spellings of every country, from the alias seed."""

    def __init__(self, aliases: pd.DataFrame):
        frame = aliases[aliases["alias_type"].isin(VARIANT_TYPES)]
        self.by_iso3: dict[str, list[str]] = {
            code: sorted(set(group["alias"])) for code, group in frame.groupby("iso3", sort=True)
        }

    def candidates(self, codes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flattened candidate strings with per-country offsets and counts."""
        flat: list[str] = []
        offsets, counts = [], []
        for code in codes:
            options = self.by_iso3.get(code) or [code]
            offsets.append(len(flat))
            counts.append(len(options))
            flat.extend(options)
        return np.array(flat, dtype=object), np.array(offsets), np.array(counts)


def _respell(codes: np.ndarray, country: np.ndarray, spell: tuple, rng: np.random.Generator) -> np.ndarray:
    """A messy spelling for each row (never the bare clean ISO3 code)."""
    flat, offsets, counts = spell
    pick = offsets[country] + (rng.random(country.size) * counts[country]).astype(np.int64)
    text = flat[pick].astype(str)
    case = rng.integers(0, 4, country.size)  # as is, lower, upper, title
    text = np.where(case == 1, np.char.lower(text), text)
    text = np.where(case == 2, np.char.upper(text), text)
    text = np.where(case == 3, np.char.title(text), text)
    space = rng.integers(0, 4, country.size)  # none, leading, trailing, both
    text = np.where((space == 1) | (space == 3), np.char.add(" ", text), text)
    text = np.where((space == 2) | (space == 3), np.char.add(text, "  "), text)
    same = text == codes
    text = np.where(same, np.char.add(np.char.lower(text), " "), text)
    return text.astype(object)


def _choice(rng: np.random.Generator, options: list[str], size: int) -> pa.Array:
    return pa.array(np.array(options, dtype=object)[rng.integers(0, len(options), size)], type=pa.string())


def inject(
    chunks: dict[str, FeedChunk],
    codes: list[str],
    spellings: Spellings,
    counters: Counters,
    rng: np.random.Generator,
    cfg: dict,
    rate: float,
    details: dict | None = None,
) -> dict[str, dict[str, int]]:
    """Add dirty rows to the chunk tables in place; returns the counts per feed and kind.

    Each chunk gets a ``label`` array (0 clean, else LABEL[kind]). ``details`` (if given)
    accumulates, per feed and kind, how many injected values were empty strings (a
    warehouse may call those "missing" rather than "unparseable"/"unknown")."""
    details = {} if details is None else details
    dcfg = cfg["dirty"]
    weights = {k: float(dcfg["weights"].get(k, 0.0)) for k in KINDS}
    spell = spellings.candidates(codes)
    width = counters.width
    report: dict[str, dict[str, int]] = {}
    for feed in sorted(chunks):
        details.setdefault(feed, {})
        chunk = chunks[feed]
        table = chunk.table
        n = table.num_rows
        kinds = [k for k in KINDS if APPLIES[k] is None or feed in APPLIES[k]]
        total_w = sum(weights[k] for k in kinds) or 1.0
        counts = {k: int(rng.binomial(n, min(1.0, rate * weights[k] / total_w))) if n else 0 for k in kinds}
        report[feed] = counts
        labels = np.zeros(n, np.int8)
        pristine = table  # corrupt copies are made from the rows as generated

        # 1. nationality spellings, in place
        k = counts["nationality_variant"]
        if k:
            rows = np.sort(rng.choice(n, size=k, replace=False))
            clean_codes = np.asarray(codes, dtype=object)[chunk.country[rows]]
            text = _respell(clean_codes.astype(str), chunk.country[rows], spell, rng)
            mask = np.zeros(n, bool)
            mask[rows] = True
            col = pc.replace_with_mask(table["nationality"], pa.array(mask), pa.array(text, type=pa.string()))
            table = table.set_column(table.schema.get_field_index("nationality"), "nationality", col)
            labels[rows] = LABEL["nationality_variant"]

        # 2. corrupt extra rows (fresh record ids)
        extras, extra_year, extra_label = [], [], []
        date_col = DATE_COLUMN[feed]
        for kind in ("bad_date", "unknown_nationality", "negative_lead_time", "orphan_confirmation",
                     "invalid_departure_type"):
            k = counts.get(kind, 0)
            if not k:
                continue
            src = rng.integers(0, n, k)
            part = pristine.take(pa.array(src))
            if kind == "bad_date":
                values = _choice(rng, list(dcfg["bad_dates"]), k)
                part = _set(part, date_col, values)
                _tally_empty(details, feed, kind, values)
            elif kind == "unknown_nationality":
                values = _choice(rng, list(dcfg["unknown_nationalities"]), k)
                part = _set(part, "nationality", values)
                _tally_empty(details, feed, kind, values)
            elif kind == "invalid_departure_type":
                values = _choice(rng, list(dcfg["invalid_departure_types"]), k)
                part = _set(part, "departure_type", values)
                _tally_empty(details, feed, kind, values)
            elif kind == "negative_lead_time":
                before = chunk.extra["request_day"][src] - rng.integers(1, 366, k)
                part = _set(part, date_col, iso_dates(before))
                part = _set(part, "outcome", pa.array(["confirmed"] * k, type=pa.string()))
            elif kind == "orphan_confirmation":
                # a reserved number range no real request reaches
                base = 9 * 10 ** (width - 1)
                numbers = base + rng.integers(0, 10 ** (width - 1) - 1, k)
                digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
                part = _set(part, "request_id", pc.binary_join_element_wise(pa.scalar(ID_PREFIX["requests"]), digits, ""))
            start = counters.take(feed, k)
            part = _set(part, "record_id", make_ids(ID_PREFIX[feed], start, k, width))
            extras.append(part)
            extra_year.append(chunk.year[src])
            extra_label.append(np.full(k, LABEL[kind], np.int8))

        # 3. exact duplicates of clean rows
        k = counts["duplicate_row"]
        if k:
            src = rng.integers(0, n, k)
            extras.append(table.take(pa.array(src)))
            extra_year.append(chunk.year[src])
            extra_label.append(np.full(k, LABEL["duplicate_row"], np.int8))

        if extras:
            added = pa.concat_tables(extras)
            m = added.num_rows
            # scatter the extra rows through the file
            key = np.concatenate([np.arange(n, dtype=float), rng.random(m) * n])
            order = np.argsort(key, kind="stable")
            table = pa.concat_tables([table, added]).take(pa.array(order))
            year = np.concatenate([chunk.year] + extra_year)[order]
            labels = np.concatenate([labels] + extra_label)[order]
            chunk.year = year
            chunk.country = np.concatenate([chunk.country, np.full(m, -1, chunk.country.dtype)])[order]
        chunk.table = table
        chunk.extra["label"] = labels
    return report


def _tally_empty(details: dict, feed: str, kind: str, values: pa.Array) -> None:
    empty = int(pc.sum(pc.equal(values, "")).as_py() or 0)
    entry = details[feed].setdefault(kind, {"empty": 0, "non_empty": 0})
    entry["empty"] += empty
    entry["non_empty"] += len(values) - empty


def _set(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(column), column, values)
