"""``simulate()``: generate the synthetic raw feeds into a folder (library entry point)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import mipa
from mipa.contract import MAPPING_FILE, MISSING_VALUES, SYNTHETIC_MARKER, manifest_signature
from mipa.mapping import write_mapping
from mipa.simulate.config import config_hash, load_config
from mipa.simulate.countries import choose_countries, load_aliases, load_countries
from mipa.simulate.dirty import KINDS, LABEL, Spellings, inject
from mipa.simulate.model import (
    OUTCOMES,
    PURPOSE_EVENTS,
    PURPOSE_PLAN,
    STREAM_DIRTY,
    Model,
    country_rng,
    draw_country_params,
)
from mipa.simulate.writer import (
    FEEDS,
    LAYOUTS,
    Counters,
    FeedWriter,
    assemble,
    dutch_mapping,
    id_width,
    write_truth,
)

MARKER = SYNTHETIC_MARKER
TRUTH = "truth.csv"
CHUNK_EVENTS = 1_000_000  # expected clean events per chunk of countries (bounds memory)


@dataclass
class SimulationSummary:
    out_dir: str
    seed: int
    scale: float
    dirty: bool
    fmt: str
    counts: dict[str, int]  # rows written per feed (dirty rows and re-delivered copies included)
    clean_counts: dict[str, int]  # clean rows per feed
    events: int  # clean events over all feeds
    seconds: float
    files: int
    chunks: int
    config_hash: str
    dirty_counts: dict[str, int] = field(default_factory=dict)
    layout: str = "contract"

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["events_per_second"] = self.events_per_second
        return out


def _years_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def feed_manifest(out: Path) -> dict[str, str]:
    """``feed/name`` -> SHA-256 of every entry of every feed folder under ``out``."""
    manifest = {}
    for feed in FEEDS:
        folder = out / feed
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.is_symlink():
                    manifest[f"{feed}/{path.name}"] = _sha256(path)
                else:
                    manifest[f"{feed}/{path.name}"] = ""  # never verifies: not ours
    return manifest


def _is_our_output(out: Path) -> bool:
    """Whether ``out`` holds a complete, unchanged output of the generator (signed marker)."""
    marker = out / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(meta, dict):
        return False
    if meta.get("status") == "incomplete":
        # an interrupted run of ours, which never gets as far as signing its files
        return meta.get("generator") == "mipa simulate"
    manifest, signature = meta.get("file_sha256"), meta.get("signature")
    if not isinstance(manifest, dict) or not isinstance(signature, str):
        return False
    return manifest_signature(manifest) == signature and feed_manifest(out) == manifest


def _prepare(out: Path, force: bool) -> None:
    """Clear a previous synthetic output; refuse to touch anything that is not synthetic."""
    ours = [out / f for f in FEEDS] + [out / TRUTH, out / MARKER]
    present = [p for p in ours if p.exists()]
    if present and not force and not _is_our_output(out):
        raise FileExistsError(
            f"{out} already holds raw feeds that this generator did not write, or changed since "
            f"(no {MARKER} marker whose signed manifest matches them: real data?); refusing to "
            "overwrite. Choose another --out or pass force=True / --force."
        )
    for p in present:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _chunks(expected: dict[str, float], budget: float) -> list[list[str]]:
    chunks, current, size = [], [], 0.0
    for iso in sorted(expected):
        if current and size + expected[iso] > budget:
            chunks.append(current)
            current, size = [], 0.0
        current.append(iso)
        size += expected[iso]
    if current:
        chunks.append(current)
    return chunks


def simulate(
    out_dir: str | Path,
    *,
    seed: int | None = None,
    scale: float = 1,
    dirty: bool = False,
    fmt: str | None = None,
    config: str | Path | dict | None = None,
    scenario: str = "default",
    effect_scale: float | None = None,
    dirty_rate: float | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    layout: str = "contract",
) -> SimulationSummary:
    """Write synthetic raw feeds, ``truth.csv`` and ``_synthetic.json`` into ``out_dir``.

    ``seed`` defaults to the config's seed; ``fmt`` None = CSV at scale 1, Parquet above;
    ``effect_scale`` multiplies all planted effects (0 = null simulation); ``dirty_rate``
    defaults to the config's ``dirty.rate``; ``scenario`` names a preset merged under
    ``config`` ('hard': conditions on which some effects cannot be estimated, see
    ``simulate/scenarios/hard.yml``). ``layout="dutch"`` writes Dutch column names, codes and
    dates with a ``_mapping.yml`` per feed that reads them as the contract (same rows, same
    panel). Quiet unless ``progress`` is given."""
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    cfg = load_config(config, scenario)
    seed = int(cfg["seed"] if seed is None else seed)
    scale = float(scale)
    if scale <= 0:
        raise ValueError("scale must be > 0")
    fmt = fmt or ("parquet" if scale > 1 else "csv")
    effect_scale = float(cfg.get("effect_scale", 1.0) if effect_scale is None else effect_scale)
    rate = float(cfg["dirty"]["rate"] if dirty_rate is None else dirty_rate)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    out = Path(out_dir)
    _prepare(out, force)
    (out / MARKER).write_text(
        json.dumps({"status": "incomplete", "generator": "mipa simulate"}) + "\n", encoding="utf-8"
    )

    countries = load_countries()
    choice = choose_countries(countries, cfg, seed)
    params = draw_country_params(choice, countries, cfg, seed)
    model = Model(cfg, params, scale=scale, effect_scale=effect_scale)
    cal = model.cal
    plans = {iso: model.plan(iso, country_rng(seed, int(params.loc[iso, "key"]), PURPOSE_PLAN)) for iso in choice.all}
    # expected clean events per country (each link of a chain is a row somewhere)
    expected = {
        iso: float(sum(v.sum() for v in plan.own.values())) * 2.5 for iso, plan in plans.items()
    }
    chunks = _chunks(expected, CHUNK_EVENTS)
    say(f"simulate: {len(choice.all)} countries ({len(choice.pool)} in the panel), seed {seed}, "
        f"scale {scale:g}, {fmt}, {len(chunks)} chunk(s){', dirty' if dirty else ''}")

    counters = Counters(width=id_width(scale))
    writer = FeedWriter(out, fmt, layout)
    # never a spelling the contract reads as missing (Namibia's ISO2 code NA)
    aliases = load_aliases() if dirty else None
    if aliases is not None:
        aliases = aliases[~aliases["alias"].str.strip().str.lower().isin(MISSING_VALUES)]
    spellings = Spellings(aliases) if dirty else None
    clean_counts = {f: 0 for f in FEEDS}
    dirty_by_feed = {f: {k: 0 for k in KINDS} for f in FEEDS}
    dirty_details: dict = {}
    try:
        for i, chunk in enumerate(chunks):
            events = [
                model.events(plans[iso], country_rng(seed, int(params.loc[iso, "key"]), PURPOSE_EVENTS))
                for iso in chunk
            ]
            feeds = assemble(events, counters, _years_of)
            del events
            for feed, part in feeds.items():
                clean_counts[feed] += part.table.num_rows
            if dirty:
                rng = np.random.default_rng([seed, STREAM_DIRTY, i])
                report = inject(feeds, chunk, spellings, counters, rng, cfg, rate, dirty_details)
                for feed, kinds in report.items():
                    for kind, n in kinds.items():
                        dirty_by_feed[feed][kind] += n
            for feed in FEEDS:
                part = feeds[feed]
                writer.write(feed, part.table, part.year, part.extra.get("label"))
            del feeds
            if len(chunks) > 1:
                say(f"  chunk {i + 1}/{len(chunks)}: {chunk[0]}..{chunk[-1]}, "
                    f"{sum(clean_counts.values()):,} clean rows so far")
    finally:
        writer.close()

    redelivered = []
    if dirty:
        rng = np.random.default_rng([seed, STREAM_DIRTY, 10**6])
        window_years = {str(y) for y in range(cal.months[cal.w0].year, cal.months[-1].year + 1)}
        candidates = sorted(p for p in writer.rows if p.rsplit("_", 1)[-1].split(".")[0] in window_years)
        n_files = min(int(cfg["dirty"].get("redelivered_files", 1)), len(candidates))
        for j in sorted(rng.choice(len(candidates), size=n_files, replace=False)) if n_files else []:
            src = candidates[int(j)]
            stem, ext = src.rsplit(".", 1)
            dst = f"{stem}_redelivery.{ext}"
            rows = writer.redeliver(src, dst)
            tally = writer.labels[src]
            redelivered.append(
                {
                    "file": dst,
                    "copy_of": src,
                    "rows": rows,
                    "contains": {k: int(tally[LABEL[k]]) for k in KINDS if tally[LABEL[k]]},
                }
            )

    # truth and marker
    truth_rows, effects = [], {}
    for iso, start in (cfg.get("treatment") or {}).items():
        plan = plans.get(iso)
        if plan is None or plan.start_idx < 0:
            continue
        effects[iso] = {
            o: {
                "configured": round(plan.configured.get(o, 0.0), 6),
                "planted": round(plan.truth.get(o, 0.0), 6),
                "max_abs_pre_start_drift": round(plan.pre_drift.get(o, 0.0), 6),
            }
            for o in OUTCOMES
        }
        for o in OUTCOMES:
            truth_rows.append({"iso3": iso, "outcome": o, "partnership_start_month": str(start)[:7],
                               "planted_effect": plan.truth.get(o, 0.0)})
    write_truth(out / TRUTH, truth_rows)
    if layout == "dutch":
        for feed in FEEDS:
            (out / feed).mkdir(parents=True, exist_ok=True)
            write_mapping(
                out / feed / MAPPING_FILE,
                dutch_mapping(feed, fmt),
                f"How the Dutch layout of feed '{feed}' reads as the mipa raw contract\n"
                "(written by mipa simulate --layout dutch; see README, 'Mapping files').",
            )

    feed_rows = {f: sum(n for p, n in writer.rows.items() if p.startswith(f + "/")) for f in FEEDS}
    dirty_rows = {k: sum(dirty_by_feed[f][k] for f in FEEDS) for k in KINDS}
    if dirty:
        dirty_rows["redelivered_file_rows"] = sum(r["rows"] for r in redelivered)
    chash = config_hash(cfg)
    marker = {
        "generator": "mipa simulate",
        "version": mipa.__version__,
        "seed": seed,
        "scenario": scenario,
        "config_hash": chash,
        "settings": {
            "scale": scale,
            "format": fmt,
            "dirty": dirty,
            "dirty_rate": rate if dirty else 0.0,
            "effect_scale": effect_scale,
            "layout": layout,
            "window": {"start": str(cal.months[cal.w0]), "end": str(cal.months[-1]),
                       "requests_from": str(cal.months[0])},
            "id_width": counters.width,
        },
        "countries": {"panel": choice.pool, "other": choice.other},
        "treatment": {k: str(v)[:7] for k, v in (cfg.get("treatment") or {}).items()},
        "counts": {
            f: {"rows": feed_rows[f], "clean_rows": clean_counts[f],
                "files": sum(1 for p in writer.rows if p.startswith(f + "/"))}
            for f in FEEDS
        },
        "events": int(sum(clean_counts.values())),
        "files": dict(sorted(writer.rows.items())),
        "effects": effects,
        "dirty": {
            "enabled": dirty,
            "rate": rate if dirty else 0.0,
            "rows": dirty_rows if dirty else {},
            "by_feed": dirty_by_feed if dirty else {},
            # of the injected bad values: how many were empty strings (missing) vs not
            "empty_values": {f: dirty_details.get(f, {}) for f in FEEDS} if dirty else {},
            "redelivered_files": redelivered,
        },
    }
    # the signed manifest binds the marker to exactly these files (the mapping files of the
    # Dutch layout included): the loader treats the feeds as synthetic (no pseudonym key
    # needed) only when every feed file matches it
    manifest = feed_manifest(out)
    marker["file_sha256"] = manifest
    marker["signature"] = manifest_signature(manifest)
    (out / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    for path, n in sorted(writer.rows.items()):
        say(f"  {path}: {n:,} rows")
    seconds = time.perf_counter() - t0
    return SimulationSummary(
        out_dir=str(out),
        seed=seed,
        scale=scale,
        dirty=dirty,
        fmt=fmt,
        counts=feed_rows,
        clean_counts=clean_counts,
        events=int(sum(clean_counts.values())),
        seconds=seconds,
        files=len(writer.rows),
        chunks=len(chunks),
        config_hash=chash,
        dirty_counts=dirty_rows if dirty else {},
        layout=layout,
    )
