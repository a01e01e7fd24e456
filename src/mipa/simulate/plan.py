"""The smooth monthly intensities of one country, with its planted effects (:class:`Model`).

The data-generating process is described in :mod:`mipa.simulate.model` (sections
"Overview", "Planted effects" and "Open cases at the export date"). :class:`Model` holds
what the countries share (calendar, COVID curve, lag kernels, noise settings) and
:meth:`Model.plan` computes one country's own flows: a smooth monthly factor (seasonality
x COVID x an AR(1) trend) times its case load and shares, the open cases at the export
date added as own flows, and, for a partner country, the planted effects with the
compensation of the upstream links, the expected counts before and after
(:meth:`Model._totals`, convolutions with the lag kernels) and the truth they imply.
:meth:`Model.events` draws the cases (:func:`mipa.simulate.events.draw_events`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mipa.simulate.events import CountryEvents, draw_events
from mipa.simulate.flows import EXTRA_FLOWS, FLOWS, CountryPlan
from mipa.simulate.timing import Calendar, Lag, backshift, covid_curve

__all__ = ["COUNT_OUTCOMES", "EFFECT_FORMS", "EFFECT_KEYS", "OUTCOMES", "Model"]

# the generator's causal order (requests lead to confirmations, ...): its random streams are
# drawn in this order, so it differs from mipa.outcomes' table order on purpose
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
        """Draw the cases of one country from its plan (:func:`mipa.simulate.events.draw_events`)."""
        return draw_events(self, plan, rng)
