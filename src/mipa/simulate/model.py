"""The data-generating process: return cases, country by country, month by month.

Overview
--------
Every source country has a size (its case load: nationality-confirmation requests per
month), cooperation parameters (shares of requests confirmed / rejected / left pending,
share of confirmations followed by a laissez-passer, lead-time distribution) and
departure parameters. A smooth monthly factor multiplies all flows: seasonality x COVID
x a slow country trend. Month noise (gamma, mean 1) and Poisson counts come on top.

Cases are generated *backwards*, from the last link of the chain to the first, so that
the expected panel value of every outcome is known exactly:

1. departures by departure month: forced and independent departures that used a
   laissez-passer (LP), own-passport forced / independent departures, unsupervised
   departures;
2. LPs: one per LP-linked departure (issued a few weeks before it) plus LPs that were
   never used for a supervised departure ("own" LPs, some of whose holders later leave
   unsupervised);
3. decisions: a confirmation behind each LP (a small share of LPs needs none), plus
   confirmations that led to no LP, plus rejections;
4. requests: one behind each decision, ``lead time`` days earlier (the lead time is drawn
   from the country's distribution *for the decision month*), plus requests that were
   never decided (pending at the export date).

The expected count of an upstream link in a month = its own flow + the flows induced by
the downstream links (a convolution with the month-lag kernel of the lag distribution).

Planted effects
---------------
For a partner country from its start month on, the expected panel value of outcome X
moves by ``delta_X``. Extra forced (and independent) departures get their own flows; the
share ``forced_via_lp_share`` of them uses a laissez-passer. For LPs, confirmations and
requests the *own* flow of that link absorbs the difference between the wanted change and
the change already induced by the downstream links (compensation, also in the months
before the start). Extra LPs and the LPs / confirmations behind extra departures are kept
on or after the start date (their lags are drawn truncated), so nothing moves into the
pre-period: no anticipation. Reductions thin the existing flows. ``effect_form`` says how ``delta_X`` spreads
over the post months: ``additive`` (default) adds it to every month; ``multiplicative``
adds ``delta_X x E[Y_t | none] / mean_post E[Y | none]``, a constant rate ratio whose
average is still ``delta_X``, so the effect rises and falls with the country's own
seasonality, trend and shocks (the case where a level DiD and a rate model disagree).
Lead time: the non-zero
part of the lead-time distribution of decisions taken from the start month on is rescaled
so that its mean moves by ``delta_lead``. Where an own flow would have to become negative
it is clipped at zero; the truth file reports the achieved expected effect (mean over the
post-start panel months of E[Y | effects] - E[Y | none]), computed on the smooth
intensities, i.e. in expectation over month noise and Poisson draws, conditional on the
country's drawn parameters and trend.

Open cases at the export date
-----------------------------
Departures, LPs and decisions after the window are not generated; the LPs, confirmations
and requests that would precede them are added as own flows ("LP not yet used",
"confirmation without LP yet", "request pending"), so every count stays stationary up to
the last month instead of sagging.

Noise
-----
Each own flow gets a mean-1 month factor: gamma noise whose shape grows with the flow's
intensity (small flows bursty, big flows steady), mixed with rare batches (identification
missions, charter flights, request campaigns) whose weight shrinks for big flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

from mipa.simulate.countries import CountryChoice, iso3_number

MONTH_DAYS = 30.4375
N_NODES = 600
# equal-probability standard-normal quantile nodes for expectations and lag kernels
_Z = np.array([NormalDist().inv_cdf((i + 0.5) / N_NODES) for i in range(N_NODES)])

COUNT_OUTCOMES = [
    "requests",
    "confirmations",
    "laissez_passers",
    "forced_departures",
    "verified_departures",
]
OUTCOMES = [
    "requests",
    "confirmations",
    "lead_time_days",
    "laissez_passers",
    "forced_departures",
    "verified_departures",
]
# how a planted effect spreads over the post months (config ``effect_form``; Model._profile)
EFFECT_FORMS = ("additive", "multiplicative")
EFFECT_KEYS = [
    "requests",
    "confirmations",
    "lead_time_days",
    "laissez_passers",
    "forced_departures",
    "independent_departures",
]

# departure_type codes
FORCED, INDEPENDENT, UNSUPERVISED = 0, 1, 2
DEPARTURE_TYPES = np.array(["forced", "independent", "unsupervised"])

# random-stream keys (second element of the seed sequence entropy)
STREAM_PARAMS, STREAM_COUNTRY, STREAM_DIRTY = 101, 202, 303


# --------------------------------------------------------------------------- calendar
@dataclass(frozen=True)
class Calendar:
    """Months from ``requests_from`` to the window end; days are int64 since 1970-01-01."""

    months: pd.PeriodIndex
    month_start: np.ndarray  # len n + 1: start day of every month and the day after the end
    w0: int  # index of the first panel month

    @classmethod
    def from_config(cls, cfg: dict) -> Calendar:
        win = cfg["window"]
        first = pd.Period(str(win.get("requests_from", win["start"])), "M")
        start = pd.Period(str(win["start"]), "M")
        end = pd.Period(str(win["end"]), "M")
        if first > start:
            first = start
        months = pd.period_range(first, end, freq="M")
        edges = pd.period_range(first, end + 1, freq="M").to_timestamp()
        month_start = (edges.values.astype("datetime64[D]").astype(np.int64)).astype(np.int64)
        return cls(months=months, month_start=month_start, w0=int((start - first).n))

    @property
    def n(self) -> int:
        return len(self.months)

    @property
    def floor_day(self) -> int:
        return int(self.month_start[0])

    @property
    def end_day(self) -> int:  # last day of the window (inclusive)
        return int(self.month_start[-1] - 1)

    def index(self, ym: str) -> int:
        return int((pd.Period(str(ym), "M") - self.months[0]).n)

    def month_of(self, days: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_start, days, side="right") - 1

    def month_days(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniform day inside month m for each of counts[m] events."""
        idx = np.repeat(np.arange(len(counts)), counts)
        start = self.month_start[idx]
        length = self.month_start[idx + 1] - start
        return start + (rng.random(idx.size) * length).astype(np.int64)


def covid_curve(cal: Calendar, cfg: dict) -> np.ndarray:
    c = cfg["covid"]
    out = np.ones(cal.n)
    idx = np.arange(cal.n)
    s, t, nn, e = (cal.index(c[k]) for k in ("start", "trough_until", "new_normal_from", "end"))
    trough, residual, new_normal = float(c["trough"]), float(c["residual"]), float(c["new_normal"])
    out[(idx >= s) & (idx <= t)] = trough
    ramp = (idx > t) & (idx < nn)
    out[ramp] = trough + (new_normal - trough) * (idx[ramp] - t) / (nn - t)
    out[(idx >= nn) & (idx <= e)] = new_normal * residual
    out[idx > e] = new_normal
    return out


# --------------------------------------------------------------------------- lags
@dataclass(frozen=True)
class Lag:
    """Days between two links: 0 with ``zero_share``; else min(cap, scale * lognormal),
    the lognormal being a mixture of a main part and, with ``share2``, a slow part
    (old cases decided late)."""

    mu: float
    sigma: float
    cap: float
    scale: float = 1.0
    zero_share: float = 0.0
    share2: float = 0.0
    mu2: float = 0.0
    sigma2: float = 1.0

    @classmethod
    def from_median(cls, median: float, sigma: float, cap: float, **kw) -> Lag:
        return cls(mu=float(np.log(median)), sigma=float(sigma), cap=float(cap), **kw)

    @classmethod
    def from_mean(cls, mean: float, sigma: float, cap: float, **kw) -> Lag:
        return cls(mu=float(np.log(mean) - sigma**2 / 2), sigma=float(sigma), cap=float(cap), **kw)

    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        main = np.minimum(self.cap, self.scale * np.exp(self.mu + self.sigma * _Z))
        slow = np.minimum(self.cap, self.scale * np.exp(self.mu2 + self.sigma2 * _Z))
        rest = 1.0 - self.zero_share
        values = np.concatenate([main, slow, [0.0]])
        weights = np.concatenate(
            [
                np.full(N_NODES, rest * (1 - self.share2) / N_NODES),
                np.full(N_NODES, rest * self.share2 / N_NODES),
                [self.zero_share],
            ]
        )
        keep = weights > 0
        return values[keep], weights[keep]

    def mean(self) -> float:
        v, w = self.nodes()
        return float(np.dot(v, w))

    def rescaled_to_mean(self, target: float) -> tuple[Lag, float]:
        """Same shape with the non-zero part rescaled so the mean is ``target``.

        Returns the new lag and the mean actually reached (>= 0, <= the cap's limit)."""
        if target <= 0 or self.zero_share >= 1:
            return replace(self, scale=0.0), 0.0
        lo, hi = 0.0, 1.0
        while replace(self, scale=hi).mean() < target and hi < 1e6:
            hi *= 2
        for _ in range(80):
            mid = (lo + hi) / 2
            if replace(self, scale=mid).mean() < target:
                lo = mid
            else:
                hi = mid
        lag = replace(self, scale=(lo + hi) / 2)
        return lag, lag.mean()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        z = rng.standard_normal(size)
        u = rng.random(size)
        slow = (u >= self.zero_share) & (u < self.zero_share + (1 - self.zero_share) * self.share2)
        log_days = np.where(slow, self.mu2 + self.sigma2 * z, self.mu + self.sigma * z)
        days = np.rint(np.minimum(self.cap, self.scale * np.exp(log_days)))
        days[u < self.zero_share] = 0
        return days.astype(np.int64)

    def kernel(self) -> np.ndarray:
        """P(upstream month = anchor month - k), anchor uniform within its month."""
        v, w = self.nodes()
        ell = v / MONTH_DAYS
        n = np.floor(ell).astype(np.int64)
        f = ell - n
        size = int(n.max()) + 2
        k = np.bincount(n, weights=w * (1 - f), minlength=size)
        k += np.bincount(n + 1, weights=w * f, minlength=size)
        return k


def backshift(down: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """out[m] = sum_k kernel[k] * down[m + k]: expected upstream events by month."""
    n = len(down)
    return np.convolve(down[::-1], kernel)[:n][::-1]


# --------------------------------------------------------------------------- parameters
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


# --------------------------------------------------------------------------- one country
FLOWS = [
    "forced_lp",  # forced departures with a laissez-passer
    "indep_lp",  # independent departures with a laissez-passer
    "forced_own",  # forced departures on an own passport
    "indep_own",  # independent departures on an own passport
    "unsup_own",  # unsupervised departures of people without a case here
    "lp_own",  # LPs not followed by a supervised departure
    "conf_own",  # confirmations not followed by an LP
    "rejections",  # rejected requests (by decision month)
    "pending",  # requests never decided by the export date
    # effect-driven extra cases of a partner country; their upstream links (LP issue,
    # decision) are kept on/after the start date, so nothing moves into the pre-period
    "forced_lp_x",
    "indep_lp_x",
    "lp_own_x",
]
EXTRA_FLOWS = ("forced_lp_x", "indep_lp_x", "lp_own_x")


@dataclass
class CountryPlan:
    """Smooth monthly intensities of one country (with effects) and its planted truth."""

    iso3: str
    own: dict[str, np.ndarray]  # final own flows (effects and compensation applied)
    lead_pre: Lag
    lead_post: Lag
    start_idx: int  # -1 when never treated
    truth: dict[str, float] = field(default_factory=dict)
    configured: dict[str, float] = field(default_factory=dict)
    pre_drift: dict[str, float] = field(default_factory=dict)  # max |E1 - E0| before start


class Model:
    """Everything shared by the countries: calendar, curves, lag distributions."""

    def __init__(self, cfg: dict, params: pd.DataFrame, *, scale: float = 1.0, effect_scale: float | None = None):
        self.cfg = cfg
        self.params = params
        self.scale = float(scale)
        self.effect_scale = float(cfg.get("effect_scale", 1.0) if effect_scale is None else effect_scale)
        self.effect_form = str(cfg.get("effect_form", "additive"))
        if self.effect_form not in EFFECT_FORMS:
            raise ValueError(f"effect_form must be one of {EFFECT_FORMS}, not {self.effect_form!r}")
        self.cal = Calendar.from_config(cfg)
        cal = self.cal
        self.covid = covid_curve(cal, cfg)
        self.moy = np.array([p.month for p in cal.months])
        self.win = np.arange(cal.n) >= cal.w0
        lags = cfg["lags"]
        self.dep_lag = Lag.from_median(**lags["lp_to_departure"])
        self.lp_lag = Lag.from_median(**lags["decision_to_lp"])
        self.unsup_lag = Lag.from_median(**lags["to_unsupervised"])
        self.lead_cap = float(lags["lead_time_cap"])
        slow = cfg["calibration"]["lead_time"].get("slow", {"share": 0.0, "median": 365, "sigma": 1.0})
        self.lead_slow_share = float(slow["share"])
        self.lead_slow_mu = float(np.log(float(slow["median"])))
        self.lead_slow_sigma = float(slow["sigma"])
        self.k_dep = self.dep_lag.kernel()
        self.k_lp = self.lp_lag.kernel()
        calib = cfg["calibration"]
        self.lp_noconf = float(calib["lp_without_confirmation"])
        self.unsup_after_lp = float(calib["unsupervised_after_lp"])
        self.unsup_after_rej = float(calib["unsupervised_after_rejection"])
        self.unsup_floor = float(calib.get("unsupervised_floor", 0.0))
        noise = cfg["noise"]
        self.noise_small = float(noise["shape_small"])
        self.noise_big = float(noise["shape_big"])
        self.noise_half = float(noise["half_intensity"])
        self.batch_half = float(noise.get("batch_half_intensity", 1e12))
        self.shape_mult = {k: float(v) for k, v in (noise.get("flow_shape_multiplier") or {}).items()}
        self.batches = {
            key: (float(v["share"]), float(v["month_prob"])) for key, v in (noise.get("batches") or {}).items()
        }
        unknown = set(self.batches) - set(FLOWS)
        if unknown:
            raise KeyError(f"noise.batches: unknown flows {sorted(unknown)}")
        self.starts = {k: cal.index(v) for k, v in (cfg.get("treatment") or {}).items()}

    # ---------------------------------------------------------------- smooth flows
    def _factor(self, p: pd.Series, rng: np.random.Generator) -> np.ndarray:
        cal, cfg = self.cal, self.cfg
        amp = float(cfg["seasonality"]["amplitude"])
        peak = float(cfg["seasonality"]["peak_month"]) + float(p["season_phase"])
        season = 1.0 + amp * np.cos(2 * np.pi * (self.moy - peak) / 12.0)
        rho, sd = float(cfg["trend"]["rho"]), float(cfg["trend"]["sd"])
        shocks = rng.standard_normal(cal.n) * sd
        x = np.empty(cal.n)
        x[0] = shocks[0] / np.sqrt(max(1e-9, 1 - rho**2))
        for t in range(1, cal.n):  # 144 steps per country, not per event
            x[t] = rho * x[t - 1] + shocks[t]
        trend = np.exp(x - x[cal.w0 :].mean())
        return season * self.covid * trend * self.win

    def plan(self, iso3: str, rng: np.random.Generator) -> CountryPlan:
        p = self.params.loc[iso3]
        factor = self._factor(p, rng)
        g = factor * float(p["caseload"]) * self.scale
        conf, lp = float(p["confirm_share"]), float(p["lp_share"])
        lp_level = g * conf * lp
        base = {
            "forced_lp": lp_level * p["lp_forced_share"],
            "indep_lp": lp_level * p["lp_independent_share"],
            "lp_own": lp_level * (1 - p["lp_forced_share"] - p["lp_independent_share"]),
            "forced_own": g * p["own_departures"] * p["own_forced_share"],
            "indep_own": g * p["own_departures"] * (1 - p["own_forced_share"]),
            # a floor so every source country shows up in the feeds at least now and then
            "unsup_own": g * p["unsupervised_ratio"] + factor * self.unsup_floor * self.scale,
            "conf_own": g * conf * (1 - lp),
            "rejections": g * p["reject_share"],
            "pending": g * p["pending_share"],
        }
        base = {k: np.asarray(v, dtype=float) for k, v in base.items()}
        for key in EXTRA_FLOWS:
            base[key] = np.zeros(self.cal.n)
        lead_pre = Lag.from_mean(
            float(p["lead_mean"]),
            float(p["lead_sigma"]),
            self.lead_cap,
            zero_share=float(p["lead_zero_share"]),
            share2=self.lead_slow_share,
            mu2=self.lead_slow_mu,
            sigma2=self.lead_slow_sigma,
        )
        self._add_tails(base, lead_pre.kernel())
        start = self.starts.get(iso3, -1)
        plan = CountryPlan(iso3=iso3, own=base, lead_pre=lead_pre, lead_post=lead_pre, start_idx=start)
        if start < 0 or start >= self.cal.n:
            plan.start_idx = -1
            return plan
        self._apply_effects(plan, base)
        return plan

    def _add_tails(self, own: dict[str, np.ndarray], k_lead: np.ndarray) -> None:
        """Cases still open at the export date: departures, LPs and decisions after the
        window are not generated, so their upstream links (LPs, confirmations, requests
        late in the window) are added as own flows ("not yet used / not yet decided"),
        at the level of the last 12 months. Keeps every count stationary up to the end."""
        n = self.cal.n
        ahead = n - np.arange(n)  # months from m to the first month after the window

        def survival(kernel: np.ndarray) -> np.ndarray:
            tail = np.concatenate([np.cumsum(kernel[::-1])[::-1], [0.0]])
            return tail[np.minimum(ahead, kernel.size)]

        last = slice(n - 12, n)
        dep = own["forced_lp"] + own["indep_lp"]
        own["lp_own"] = own["lp_own"] + dep[last].mean() * survival(self.k_dep) * self.win
        lp_total = own["lp_own"] + backshift(dep, self.k_dep)
        conf_src = (1 - self.lp_noconf) * lp_total
        own["conf_own"] = own["conf_own"] + conf_src[last].mean() * survival(self.k_lp) * self.win
        decisions = own["conf_own"] + backshift(conf_src, self.k_lp) + own["rejections"]
        own["pending"] = own["pending"] + decisions[last].mean() * survival(k_lead) * self.win

    def _effect(self, outcome: str, iso3: str) -> float:
        table = (self.cfg.get("effects") or {}).get(outcome) or {}
        value = float(table.get(iso3, 0.0)) * self.effect_scale
        return value if outcome == "lead_time_days" else value * self.scale

    def _truncated_backshift(self, down: np.ndarray, kernel: np.ndarray, start: int) -> np.ndarray:
        """Like backshift, but events anchored in month start + d take their upstream
        link only from months start .. start + d (kernel truncated and renormalised)."""
        out = np.zeros_like(down)
        cum = np.cumsum(kernel)
        for m in np.nonzero(down)[0]:
            if m < start:
                out[m - np.arange(min(len(kernel), m + 1))] += down[m] * kernel[: m + 1]
                continue
            d = min(m - start, len(kernel) - 1)
            out[m - np.arange(d + 1)] += down[m] * kernel[: d + 1] / cum[d]
        return out

    def _totals(self, own: dict[str, np.ndarray], post: np.ndarray, k_lead_pre: np.ndarray,
                k_lead_post: np.ndarray, start: int) -> dict[str, np.ndarray]:
        """Expected panel counts by month from own flows."""
        keep = 1 - self.lp_noconf
        lp_base = own["lp_own"] + backshift(own["forced_lp"] + own["indep_lp"], self.k_dep)
        lp_extra = own["lp_own_x"]
        if (own["forced_lp_x"] + own["indep_lp_x"]).any():
            lp_extra = lp_extra + self._truncated_backshift(own["forced_lp_x"] + own["indep_lp_x"], self.k_dep, start)
        conf = own["conf_own"] + backshift(keep * lp_base, self.k_lp)
        if lp_extra.any():
            conf = conf + self._truncated_backshift(keep * lp_extra, self.k_lp, start)
        decisions = conf + own["rejections"]
        induced_req = backshift(decisions * ~post, k_lead_pre) + backshift(decisions * post, k_lead_post)
        forced = own["forced_lp"] + own["forced_own"] + own["forced_lp_x"]
        return {
            "laissez_passers": lp_base + lp_extra,
            "confirmations": conf,
            "requests": own["pending"] + induced_req,
            "forced_departures": forced,
            "verified_departures": forced + own["indep_lp"] + own["indep_own"] + own["indep_lp_x"],
        }

    def _profile(self, expected: np.ndarray, postw: np.ndarray) -> np.ndarray:
        """How a planted monthly effect spreads over the months: ``1`` in every post month
        (``additive``), or proportional to the month's expected count without the effect,
        scaled to mean 1 over the post months (``multiplicative``: a constant rate ratio, so
        the effect follows the country's seasonality, trend and shocks)."""
        if self.effect_form == "additive":
            return postw.astype(float)
        level = float(expected[postw].mean()) if postw.any() else 0.0
        return postw * expected / level if level > 0 else postw.astype(float)

    def _apply_effects(self, plan: CountryPlan, base: dict[str, np.ndarray]) -> None:
        iso3, start, cal = plan.iso3, plan.start_idx, self.cal
        post = np.arange(cal.n) >= start
        postw = post & self.win
        never = np.zeros(cal.n, dtype=bool)
        d = {k: self._effect(k, iso3) for k in EFFECT_KEYS}
        plan.configured = {
            "requests": d["requests"],
            "confirmations": d["confirmations"],
            "lead_time_days": d["lead_time_days"],
            "laissez_passers": d["laissez_passers"],
            "forced_departures": d["forced_departures"],
            "verified_departures": d["forced_departures"] + d["independent_departures"],
        }
        k_pre = plan.lead_pre.kernel()
        lead_post, lead_mean_post = plan.lead_pre.rescaled_to_mean(plan.lead_pre.mean() + d["lead_time_days"])
        k_post = lead_post.kernel()
        size = max(len(k_pre), len(k_post))
        k_pre = np.pad(k_pre, (0, size - len(k_pre)))
        k_post = np.pad(k_post, (0, size - len(k_post)))
        e0 = self._totals(base, never, k_pre, k_pre, start)
        own = {k: v.copy() for k, v in base.items()}

        # 1. departures: extra LP-linked ones are separate (truncated upstream lags);
        #    fewer departures = thinning of the existing flows
        for delta, lp_key, own_key in (
            (d["forced_departures"], "forced_lp", "forced_own"),
            (d["independent_departures"], "indep_lp", "indep_own"),
        ):
            shape = self._profile(base[lp_key] + base[own_key], postw)
            if delta > 0:
                share = float(self.cfg["effects"].get("forced_via_lp_share", 0.8))
                if d["laissez_passers"] < delta * share:
                    share = max(0.0, d["laissez_passers"]) / delta
                own[lp_key + "_x"] = own[lp_key + "_x"] + delta * share * shape
                own[own_key] = own[own_key] + delta * (1 - share) * shape
            elif delta < 0:
                total = base[lp_key] + base[own_key]
                with np.errstate(divide="ignore", invalid="ignore"):
                    factor = np.where(total > 0, np.clip(1 + delta * shape / total, 0, None), 1.0)
                factor = np.where(postw, factor, 1.0)
                own[lp_key] = base[lp_key] * factor
                own[own_key] = base[own_key] * factor

        # 2.-4. upstream links: the own flow absorbs (wanted change - induced change).
        #    Additions in post months are extra cases (LPs: truncated upstream lags);
        #    reductions thin the base flow; clipped at zero.
        for key, outcome, extra_key in (
            ("lp_own", "laissez_passers", "lp_own_x"),
            ("conf_own", "confirmations", None),
            ("pending", "requests", None),
        ):
            cur = self._totals(own, post, k_pre, k_post, start)
            need = (e0[outcome] + d[outcome] * self._profile(e0[outcome], postw) - cur[outcome]) * self.win
            add = np.clip(need, 0, None)
            if extra_key is not None:
                own[extra_key] = own[extra_key] + add * post
                own[key] = own[key] + add * ~post
            else:
                own[key] = own[key] + add
            own[key] = np.clip(own[key] + np.clip(need, None, 0), 0, None)
        e1 = self._totals(own, post, k_pre, k_post, start)
        plan.own = own
        plan.lead_post = lead_post
        pre = self.win & ~post
        for outcome in COUNT_OUTCOMES:
            diff = e1[outcome] - e0[outcome]
            plan.truth[outcome] = float(diff[postw].mean()) if postw.any() else 0.0
            plan.pre_drift[outcome] = float(np.abs(diff[pre]).max()) if pre.any() else 0.0
        plan.truth["lead_time_days"] = lead_mean_post - plan.lead_pre.mean()
        plan.pre_drift["lead_time_days"] = 0.0

    # ---------------------------------------------------------------- events
    def events(self, plan: CountryPlan, rng: np.random.Generator) -> CountryEvents:
        """Draw the cases of one country from its plan (vectorised, no per-event loops)."""
        cal = self.cal
        counts = {}
        for key in FLOWS:  # fixed order: the random stream does not depend on the values
            # small flows are bursty, big flows steadier: gamma shape grows with intensity
            lam = plan.own[key]
            k = self.noise_small + (self.noise_big - self.noise_small) * lam / (lam + self.noise_half)
            k = k * self.shape_mult.get(key, 1.0)
            noise = rng.gamma(k, 1.0 / k)
            batch_share, batch_prob = self.batches.get(key, (0.0, 1.0))
            # batches weigh less in big flows (a charter is a small part of a big month)
            batch_share = batch_share * self.batch_half / (lam + self.batch_half)
            in_batch = rng.random(cal.n) < batch_prob
            # mean-1 month factor: part of the flow comes in rare batches (identification
            # missions, charter flights, request campaigns)
            noise = (1.0 - batch_share) * noise + batch_share * in_batch / batch_prob
            counts[key] = rng.poisson(plan.own[key] * noise)

        # departures (extra effect-driven LP-linked ones flagged: their LP and decision
        # stay on/after the start date)
        dep_f_lp = np.concatenate([cal.month_days(counts["forced_lp"], rng), cal.month_days(counts["forced_lp_x"], rng)])
        dep_i_lp = np.concatenate([cal.month_days(counts["indep_lp"], rng), cal.month_days(counts["indep_lp_x"], rng)])
        x_f = np.arange(dep_f_lp.size) >= counts["forced_lp"].sum()
        x_i = np.arange(dep_i_lp.size) >= counts["indep_lp"].sum()
        dep_f_own = cal.month_days(counts["forced_own"], rng)
        dep_i_own = cal.month_days(counts["indep_own"], rng)
        dep_u_own = cal.month_days(counts["unsup_own"], rng)
        linked_dep = np.concatenate([dep_f_lp, dep_i_lp])
        linked_extra = np.concatenate([x_f, x_i])
        linked_type = np.concatenate(
            [np.full(dep_f_lp.size, FORCED, np.int8), np.full(dep_i_lp.size, INDEPENDENT, np.int8)]
        )
        start_day = int(cal.month_start[plan.start_idx]) if plan.start_idx >= 0 else cal.floor_day
        # laissez-passers: linked ones first, then own ones (persons 0 .. n_lp - 1)
        lp_linked = linked_dep - self._lags(self.dep_lag, linked_dep - start_day, linked_extra, rng)
        lp_own = np.concatenate([cal.month_days(counts["lp_own"], rng), cal.month_days(counts["lp_own_x"], rng)])
        own_extra = np.arange(lp_own.size) >= counts["lp_own"].sum()
        lp_day = np.concatenate([lp_linked, lp_own])
        lp_extra = np.concatenate([linked_extra, own_extra])
        n_lp, n_linked = lp_day.size, linked_dep.size
        # some own-LP holders leave unsupervised later
        later = rng.random(lp_own.size) < self.unsup_after_lp
        u_lp_day = lp_own[later] + self.unsup_lag.sample(rng, int(later.sum()))
        u_lp_person = (n_linked + np.nonzero(later)[0]).astype(np.int64)
        keep = u_lp_day <= cal.end_day
        u_lp_day, u_lp_person = u_lp_day[keep], u_lp_person[keep]
        # decisions: confirmations behind LPs, own confirmations, rejections
        has_conf = rng.random(n_lp) >= self.lp_noconf
        lp_conf_idx = np.nonzero(has_conf)[0]
        dec_lp = lp_day[lp_conf_idx] - self._lags(
            self.lp_lag, lp_day[lp_conf_idx] - start_day, lp_extra[lp_conf_idx], rng
        )
        dec_lp = np.maximum(dec_lp, cal.floor_day)  # nothing predates `requests_from`
        dec_c0 = cal.month_days(counts["conf_own"], rng)
        dec_rej = cal.month_days(counts["rejections"], rng)
        dec_day = np.concatenate([dec_lp, dec_c0, dec_rej])
        dec_outcome = np.concatenate(
            [np.ones(dec_lp.size + dec_c0.size, np.int8), np.zeros(dec_rej.size, np.int8)]
        )
        # persons: LPs | own confirmations | rejections | pending | own departures
        p_c0 = n_lp + np.arange(dec_c0.size)
        p_rej = n_lp + dec_c0.size + np.arange(dec_rej.size)
        dec_person = np.concatenate([lp_conf_idx, p_c0, p_rej]).astype(np.int64)
        # rejected people who later leave unsupervised
        later = rng.random(dec_rej.size) < self.unsup_after_rej
        u_rej_day = dec_rej[later] + self.unsup_lag.sample(rng, int(later.sum()))
        u_rej_person = p_rej[later]
        keep = u_rej_day <= cal.end_day
        u_rej_day, u_rej_person = u_rej_day[keep], u_rej_person[keep]
        # requests behind decisions: lead time by decision month
        lead = self._lead_times(plan, dec_day, rng)
        req_dec = dec_day - lead
        req_pend = cal.month_days(counts["pending"], rng)
        next_person = n_lp + dec_c0.size + dec_rej.size
        p_pend = next_person + np.arange(req_pend.size)
        next_person += req_pend.size
        n_own = dep_f_own.size + dep_i_own.size + dep_u_own.size
        p_own = next_person + np.arange(n_own)
        next_person += n_own

        returns_day = np.concatenate([linked_dep, dep_f_own, dep_i_own, dep_u_own, u_lp_day, u_rej_day])
        returns_type = np.concatenate(
            [
                linked_type,
                np.full(dep_f_own.size, FORCED, np.int8),
                np.full(dep_i_own.size, INDEPENDENT, np.int8),
                np.full(dep_u_own.size + u_lp_day.size + u_rej_day.size, UNSUPERVISED, np.int8),
            ]
        )
        returns_person = np.concatenate(
            [np.arange(n_linked), p_own, u_lp_person, u_rej_person]
        ).astype(np.int64)
        return CountryEvents(
            iso3=plan.iso3,
            n_persons=int(next_person),
            returns_person=returns_person,
            returns_day=returns_day.astype(np.int64),
            returns_type=returns_type,
            requests_person=np.concatenate([dec_person, p_pend]).astype(np.int64),
            requests_day=np.concatenate([req_dec, req_pend]).astype(np.int64),
            decisions_day=dec_day.astype(np.int64),
            decisions_outcome=dec_outcome,
            lp_person=np.arange(n_lp, dtype=np.int64),
            lp_day=lp_day.astype(np.int64),
        )

    @staticmethod
    def _lags(lag: Lag, room: np.ndarray, truncated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Lag draws; where ``truncated``, redrawn until they fit in ``room`` days."""
        days = lag.sample(rng, room.size)
        room = np.maximum(room, 0)
        for _ in range(30):
            bad = truncated & (days > room)
            if not bad.any():
                return days
            days = np.where(bad, lag.sample(rng, room.size), days)
        bad = truncated & (days > room)
        days[bad] = (rng.random(int(bad.sum())) * (room[bad] + 1)).astype(np.int64)
        return days

    def _lead_times(self, plan: CountryPlan, dec_day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        post = np.zeros(dec_day.size, dtype=bool)
        if plan.start_idx >= 0:
            post = self.cal.month_of(dec_day) >= plan.start_idx
        lead = np.where(post, plan.lead_post.sample(rng, dec_day.size), plan.lead_pre.sample(rng, dec_day.size))
        room = np.maximum(dec_day - self.cal.floor_day, 0)  # requests cannot predate `requests_from`
        for _ in range(30):
            bad = lead > room
            if not bad.any():
                break
            redraw = np.where(post, plan.lead_post.sample(rng, dec_day.size), plan.lead_pre.sample(rng, dec_day.size))
            lead = np.where(bad, redraw, lead)
        bad = lead > room
        if bad.any():
            lead[bad] = (rng.random(int(bad.sum())) * (room[bad] + 1)).astype(np.int64)
        return lead


@dataclass
class CountryEvents:
    """The cases of one country; person ids and request links are local (0-based)."""

    iso3: str
    n_persons: int
    returns_person: np.ndarray
    returns_day: np.ndarray
    returns_type: np.ndarray
    requests_person: np.ndarray
    requests_day: np.ndarray
    decisions_day: np.ndarray  # decision i belongs to request i
    decisions_outcome: np.ndarray  # 1 confirmed, 0 rejected
    lp_person: np.ndarray
    lp_day: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.returns_day.size + self.requests_day.size + self.decisions_day.size + self.lp_day.size)


PURPOSE_PLAN, PURPOSE_EVENTS = 1, 2


def country_rng(seed: int, key: int, purpose: int) -> np.random.Generator:
    """The random stream of one country (independent of chunking and of other countries)."""
    return np.random.default_rng([seed, STREAM_COUNTRY, key, purpose])
