"""The source countries' parameters and the random streams of the data-generating process.

The data-generating process is described in :mod:`mipa.simulate.model`. :func:`draw_country_params`
draws every source country's case load (a mixture of tiny countries and a lognormal body,
stratified so the cross-section varies little between seeds, the usual big origin
countries given the big loads by rank coupling), its cooperation shares (beta draws,
rank-coupled with the case load), own and unsupervised departures, lead-time
distribution and seasonal phase, then applies the configured overrides. All draws are
made for all countries in ISO3 order from ``default_rng([seed, STREAM_PARAMS])``, so an
override does not shift another country's draws. :func:`country_rng` is the stream of one
country (plan or events), independent of chunking and of the other countries.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from mipa.simulate.countries import CountryChoice, iso3_number

__all__ = ["PURPOSE_EVENTS", "PURPOSE_PLAN", "STREAM_COUNTRY", "STREAM_DIRTY", "STREAM_PARAMS", "country_rng",
           "draw_country_params"]

# random-stream keys (second element of the seed sequence entropy)
STREAM_PARAMS, STREAM_COUNTRY, STREAM_DIRTY = 101, 202, 303

PURPOSE_PLAN, PURPOSE_EVENTS = 1, 2


def _beta(rng: np.random.Generator, mean: float, conc: float, size: int) -> np.ndarray:
    """Stratified beta draws: a jittered quantile grid of a large sorted sample."""
    reference = np.sort(rng.beta(mean * conc, (1 - mean) * conc, 4096))
    u = (rng.permutation(size) + rng.random(size)) / size
    return reference[np.minimum((u * reference.size).astype(np.int64), reference.size - 1)]


def _stratified_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """Standard-normal scores of a jittered quantile grid, in random order."""
    if size <= 0:
        return np.empty(0)
    u = (rng.permutation(size) + rng.random(size)) / size
    return np.array([NormalDist().inv_cdf(min(max(x, 1e-12), 1 - 1e-12)) for x in u])


def _rank_couple(values: np.ndarray, score: np.ndarray, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Reassign ``values`` so their ranks follow ``rho * z(score) + noise`` (same marginal)."""
    z = (score - score.mean()) / (score.std() or 1.0)
    key = rho * z + np.sqrt(max(0.0, 1 - rho**2)) * rng.standard_normal(values.size)
    out = np.empty_like(values)
    out[np.argsort(key, kind="stable")] = np.sort(values)
    return out


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(size))


def draw_country_params(choice: CountryChoice, countries: pd.DataFrame, cfg: dict, seed: int) -> pd.DataFrame:
    """One row per source country with its case load and cooperation parameters.

    All draws are made for all countries in ISO3 order (so overrides do not shift the
    random streams of the other countries), then the overrides are applied."""
    cal = cfg["calibration"]
    iso = choice.all
    n = len(iso)
    rng = np.random.default_rng([seed, STREAM_PARAMS])
    meta = countries.set_index("iso3").reindex(iso)
    pool = np.isin(iso, choice.pool)

    # case load: a mixture of tiny countries and a lognormal body (heavy tail). Draws are
    # stratified (an exact share of tiny countries, normal scores on a jittered quantile
    # grid in random order) so the cross-section varies little between seeds.
    size = np.zeros(n)
    pinned_sizes = {c: float(v["caseload"]) for c, v in (cfg.get("overrides") or {}).items() if "caseload" in (v or {})}
    pinned = np.isin(iso, list(pinned_sizes))
    size[pinned] = [pinned_sizes[c] for c in np.asarray(iso)[pinned]]
    for mask, key in ((pool & ~pinned, "pool"), (~pool & ~pinned, "other")):
        c = cal["caseload"][key]
        members = np.nonzero(mask)[0]
        m = members.size
        order = rng.permutation(m)
        n_tiny = int(round(float(c["tiny_share"]) * m))
        tiny_idx, body_idx = members[order[:n_tiny]], members[order[n_tiny:]]
        size[tiny_idx] = float(c["tiny_median"]) * np.exp(float(c["tiny_sigma"]) * _stratified_normal(rng, n_tiny))
        size[body_idx] = float(c["median"]) * np.exp(float(c["sigma"]) * _stratified_normal(rng, m - n_tiny))
        size[members] = np.minimum(size[members], float(c["max"]))
        # the usual big origin countries get the big case loads (rank coupling)
        codes = np.asarray(iso)[members]
        prior = np.isin(codes, list(c.get("major", []))).astype(float) - np.isin(codes, list(c.get("minor", [])))
        if prior.any():
            size[members] = _rank_couple(size[members], prior, float(c.get("major_rank_corr", 0.0)), rng)

    cs = cal["confirm_share"]
    confirm = _beta(rng, float(cs["mean"]), float(cs["concentration"]), n)
    # bigger case loads come with better-established procedures: couple the ranks
    confirm = _rank_couple(confirm, np.log(size), float(cs.get("size_rank_corr", 0.0)), rng)
    noncoop = rng.random(n) < float(cs.get("noncooperative_share", 0.0))
    confirm = np.where(noncoop, 0.01 * confirm, confirm)
    reject = _beta(rng, float(cal["reject_share"]["mean"]), float(cal["reject_share"]["concentration"]), n)
    lp_share = _beta(rng, float(cal["lp_share"]["mean"]), float(cal["lp_share"]["concentration"]), n)
    lp_share = _rank_couple(lp_share, np.log(size), float(cal["lp_share"].get("size_rank_corr", 0.0)), rng)
    lp_forced = _beta(rng, float(cal["lp_forced_share"]["mean"]), float(cal["lp_forced_share"]["concentration"]), n)
    lp_indep = _beta(
        rng, float(cal["lp_independent_share"]["mean"]), float(cal["lp_independent_share"]["concentration"]), n
    )
    od = cal["own_departures"]
    medians = od["median"]
    region_median = np.array(
        [
            float(medians.get(code, medians.get(r.subregion, medians.get(r.region, medians.get("default", 1.0)))))
            for code, r in zip(iso, meta.itertuples())
        ]
    )
    own = np.minimum(region_median * np.exp(float(od["sigma"]) * _stratified_normal(rng, n)), float(od["max"]))
    own_forced = _beta(rng, float(cal["own_forced_share"]["mean"]), float(cal["own_forced_share"]["concentration"]), n)
    unsup = _lognormal(rng, float(cal["unsupervised_ratio"]["median"]), float(cal["unsupervised_ratio"]["sigma"]), n)
    lt = cal["lead_time"]
    lead_mean = float(lt["mean_median"]) * np.exp(float(lt["mean_sigma"]) * _stratified_normal(rng, n))
    lead_zero = _beta(rng, float(lt["zero_share"]["mean"]), float(lt["zero_share"]["concentration"]), n)
    phase = float(cfg["seasonality"].get("phase_sd_months", 0.0)) * rng.standard_normal(n)

    frame = pd.DataFrame(
        {
            "iso3": iso,
            "pool": pool,
            "caseload": size,
            "confirm_share": confirm,
            "reject_share": reject,
            "lp_share": lp_share,
            "lp_forced_share": lp_forced,
            "lp_independent_share": lp_indep,
            "own_departures": own,
            "own_forced_share": own_forced,
            "unsupervised_ratio": unsup,
            "lead_mean": lead_mean,
            "lead_zero_share": lead_zero,
            "lead_sigma": float(lt["sigma"]),
            "season_phase": phase,
        }
    ).set_index("iso3")
    for code, values in (cfg.get("overrides") or {}).items():
        if code in frame.index:
            for key, value in values.items():
                if key not in frame.columns:
                    raise KeyError(f"unknown override {key!r} for {code}")
                frame.loc[code, key] = float(value)
    frame["lead_mean"] *= float(lt.get("mean_multiplier", 1.0))
    # keep shares coherent: pending share >= 5 %, LP shares sum <= 1
    total = frame["confirm_share"] + frame["reject_share"]
    squeeze = np.where(total > 0.95, 0.95 / total, 1.0)
    frame["confirm_share"] *= squeeze
    frame["reject_share"] *= squeeze
    lp_total = frame["lp_forced_share"] + frame["lp_independent_share"]
    squeeze = np.where(lp_total > 0.98, 0.98 / lp_total, 1.0)
    frame["lp_forced_share"] *= squeeze
    frame["lp_independent_share"] *= squeeze
    # requests never decided: the rest, optionally boosted (more requests left unanswered)
    frame["pending_share"] = (1.0 - frame["confirm_share"] - frame["reject_share"]) * float(
        cal.get("pending_multiplier", 1.0)
    )
    frame["key"] = [iso3_number(c) for c in frame.index]
    return frame



def country_rng(seed: int, key: int, purpose: int) -> np.random.Generator:
    """The random stream of one country (independent of chunking and of other countries)."""
    return np.random.default_rng([seed, STREAM_COUNTRY, key, purpose])
