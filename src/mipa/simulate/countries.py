"""Country seeds and the deterministic choice of the 151 simulated source countries.

The seeds (``seeds/countries.csv`` and ``seeds/country_aliases.csv``) are read with
``keep_default_na=False`` because Namibia's ISO2 code is the string "NA".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


def project_dir() -> Path:
    """Repository root: env ``MIPA_PROJECT_DIR`` or the checkout holding this package."""
    env = os.environ.get("MIPA_PROJECT_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "seeds" / "countries.csv").exists():
            return parent
    # src/mipa/simulate/countries.py -> repository root is three levels above src/
    return here.parents[3]


def _as_bool(col: pd.Series) -> pd.Series:
    if col.dtype == bool:
        return col
    return col.astype(str).str.strip().str.lower().isin({"true", "1", "t", "yes", "y"})


def load_countries(path: Path | None = None) -> pd.DataFrame:
    path = path or project_dir() / "seeds" / "countries.csv"
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    for col in ("is_eu_member", "in_analysis_pool"):
        frame[col] = _as_bool(frame[col])
    return frame.sort_values("iso3").reset_index(drop=True)


def load_aliases(path: Path | None = None) -> pd.DataFrame:
    path = path or project_dir() / "seeds" / "country_aliases.csv"
    return pd.read_csv(path, keep_default_na=False, dtype=str)


def iso3_number(iso3: str) -> int:
    """Stable integer for an ISO3 code (base 37), used to key per-country random streams."""
    value = 0
    for ch in iso3.upper():
        value = value * 37 + (ord(ch) - 47 if ch.isdigit() else ord(ch) - 54)
    return value


@dataclass(frozen=True)
class CountryChoice:
    pool: list[str]  # analysis-pool source countries (the panel's units)
    other: list[str]  # source countries outside the analysis pool

    @property
    def all(self) -> list[str]:
        return sorted(self.pool + self.other)


def _weighted_pick(
    candidates: list[str], weights: np.ndarray, k: int, rng: np.random.Generator
) -> list[str]:
    """Weighted sampling without replacement (Efraimidis-Spirakis keys); weight 0 = never."""
    if k <= 0:
        return []
    weights = np.asarray(weights, dtype=float)
    ok = weights > 0
    cand = [c for c, keep in zip(candidates, ok) if keep]
    w = weights[ok]
    if k >= len(cand):
        return sorted(cand)
    u = rng.random(len(cand))
    keys = np.log(u) / w  # larger is better
    order = np.argsort(-keys, kind="stable")
    return sorted(cand[i] for i in order[:k])


def choose_countries(countries: pd.DataFrame, cfg: dict, seed: int) -> CountryChoice:
    """Pick the source countries: a deterministic function of the seed and the config.

    * ``n_pool`` analysis-pool countries, always including the partners; the rest drawn
      with plausibility weights (territories and microstates have weight 0).
    * ``n_sources - n_pool`` countries outside the pool: the ``core_other`` list first,
      then weighted draws.
    An explicit ``pool`` / ``other`` list in the config overrides the draw.
    """
    ccfg = cfg["countries"]
    rng = np.random.default_rng([seed, 7001])
    known = set(countries["iso3"])
    exclude = set(ccfg.get("exclude", []))
    partners = list(ccfg["partners"])
    weights_cfg = ccfg.get("weights", {})

    def weight(row) -> float:
        if row.iso3 in exclude:
            return 0.0
        if row.iso3 in weights_cfg.get("by_iso3", {}):
            return float(weights_cfg["by_iso3"][row.iso3])
        if row.is_eu_member:
            return float(weights_cfg.get("eu_member", 0.3))
        for key in (row.intermediate_region, row.subregion, row.region):
            if key and key in weights_cfg.get("by_region", {}):
                return float(weights_cfg["by_region"][key])
        return float(weights_cfg.get("default", 1.0))

    pool_frame = countries[countries["in_analysis_pool"]]
    other_frame = countries[~countries["in_analysis_pool"]]
    n_pool = int(ccfg.get("n_pool", 86))
    n_other = int(ccfg.get("n_sources", 151)) - n_pool

    if ccfg.get("pool"):
        pool = sorted(c for c in ccfg["pool"] if c in known)
    else:
        missing = [p for p in partners if p not in set(pool_frame["iso3"])]
        if missing:
            raise ValueError(f"partner countries not in the analysis pool seed: {missing}")
        rest = pool_frame[~pool_frame["iso3"].isin(partners)]
        w = np.array([weight(r) for r in rest.itertuples()])
        pool = sorted(partners + _weighted_pick(list(rest["iso3"]), w, n_pool - len(partners), rng))

    if ccfg.get("other"):
        other = sorted(c for c in ccfg["other"] if c in known and c not in pool)
    else:
        core = [c for c in ccfg.get("core_other", []) if c in set(other_frame["iso3"])]
        core = core[:n_other]
        rest = other_frame[~other_frame["iso3"].isin(core)]
        w = np.array([weight(r) for r in rest.itertuples()])
        other = sorted(core + _weighted_pick(list(rest["iso3"]), w, n_other - len(core), rng))
    return CountryChoice(pool=pool, other=other)
