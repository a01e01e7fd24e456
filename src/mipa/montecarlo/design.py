"""Monte Carlo designs: country-month panels drawn from the feed generator's model.

A design fixes what an evaluation fixes: the countries in the pool, their parameters
(size, cooperation shares, lead times) and the partnership starts. A replication redraws
everything that is chance in the real data: each country's slow trend and seasonal phase
(:meth:`mipa.simulate.model.Model.plan`), its month noise and batches, the Poisson counts
and the case-level lags (:meth:`~mipa.simulate.model.Model.events`). The cases are then
counted into the panel with the definitions of ``fct_country_month`` (the same as
:func:`mipa.simulate.calibration.panel_from_feeds`), without writing feed files.

Truth
-----
For a treated country the planted effect is the generator's achieved expected effect
(``CountryPlan.truth``: the mean over its post-start panel months of
``E[Y | effects] - E[Y | none]``), redrawn with the country's trend in every
replication. The overall truth is the average over all treated country-months (each
country weighted by its post-start months in the window): the estimand of ETWFE's and
Callaway & Sant'Anna's ``simple`` aggregate and of SDID's post-period-weighted average.

Effects
-------
* ``annex``: the per-country effects of ``default.yml`` (the annex's Table 2 ETWFE
  estimates; very heterogeneous: Morocco +9.3 forced departures a month, the others
  around +0.5), times ``effect_scale``.
* ``homogeneous``: every treated country gets the annex countries' average effect.
* ``zero``: no effect anywhere (rejection rates are then the size of the tests).

``effect_form``: ``additive`` (the same change in every post month) or ``multiplicative``
(a constant rate ratio: the change follows the country's expected count month by month,
with the same average; :mod:`mipa.simulate.model`).

``n_treated`` keeps the first ``n`` partners in start order (1-6).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from mipa.outcomes import OUTCOMES
from mipa.simulate.config import load_config
from mipa.simulate.countries import choose_countries, load_countries
from mipa.simulate.model import (
    EFFECT_FORMS,
    FORCED,
    INDEPENDENT,
    PURPOSE_EVENTS,
    PURPOSE_PLAN,
    Model,
    country_rng,
    draw_country_params,
)

EffectPattern = Literal["annex", "homogeneous", "zero"]
EFFECT_PATTERNS: tuple[str, ...] = ("annex", "homogeneous", "zero")
PANEL_OUTCOMES: tuple[str, ...] = OUTCOMES
# entropy key of the Monte Carlo streams (the generator's streams use 101/202/303)
STREAM_MONTECARLO = 404
GENERATOR_STREAMS = -1


@dataclass(frozen=True)
class Design:
    """What is held fixed across replications (see the module docstring)."""

    effects: EffectPattern = "annex"
    effect_scale: float = 1.0
    effect_form: str = "additive"  # or "multiplicative": see mipa.simulate.model (Planted effects)
    n_treated: int = 6
    seed: int = 20260522  # the generator's default seed: the annex-calibrated country draw
    config: dict = field(default_factory=dict, hash=False, compare=False)  # merged over default.yml

    def __post_init__(self) -> None:
        if self.effects not in EFFECT_PATTERNS:
            raise ValueError(f"effects must be one of {EFFECT_PATTERNS}, not {self.effects!r}")
        if self.effect_scale < 0:
            raise ValueError("effect_scale must be >= 0")
        if self.effect_form not in EFFECT_FORMS:
            raise ValueError(f"effect_form must be one of {EFFECT_FORMS}, not {self.effect_form!r}")

    @property
    def label(self) -> str:
        """The design's name in summaries: the effects pattern, ``_multiplicative`` appended
        for a rate-ratio effect (no effect has no form)."""
        if self.effect_form == "additive" or self.effects == "zero":
            return self.effects
        return f"{self.effects}_{self.effect_form}"

    def describe(self) -> dict:
        out = asdict(self)
        out.pop("config")
        out["config_overrides"] = bool(self.config)
        return out


@dataclass
class DrawnPanel:
    """One replication: the long panel and the truth per scope ('overall' and each ISO3)."""

    panel: pd.DataFrame  # iso3, period (1..T), first_treat (0 = never), outcome columns
    truth: dict[str, dict[str, float]]  # outcome -> scope -> planted effect
    treated: list[str]  # in start order


# Never-treated countries drawn lately, shared by the samplers of designs that differ only in
# their effects (the Monte Carlo draws each replication for its three designs in turn): a
# country without a partnership has no effect in any of them and draws from its own streams,
# so its months are the same. Keyed by everything its draw reads; only the newest
# replication is kept.
_NEVER_TREATED_DRAWS: dict[tuple, tuple[dict[str, np.ndarray], float]] = {}


class PanelSampler:
    """Draws replications of one :class:`Design`; the fixed part is built once."""

    def __init__(self, design: Design) -> None:
        self.design = design

    @cached_property
    def _shared_key(self) -> tuple:
        """What a never-treated country's draw depends on besides its streams: the design
        without its effects, and the country's drawn parameters (see :meth:`draw`)."""
        d = self.design
        return (d.seed, d.n_treated, d.effect_form, json.dumps(d.config, sort_keys=True, default=str))

    @cached_property
    def _country_params(self) -> dict[str, tuple]:
        params = self._fixed[0].params
        return {iso: (tuple(map(str, params.columns)), tuple(map(repr, params.loc[iso].to_numpy())))
                for iso in self._fixed[1]}

    def _country_key(self, iso: str, replication: int) -> tuple:
        return (self._shared_key, replication, iso, *self._country_params[iso])

    @cached_property
    def _fixed(self) -> tuple[Model, list[str], dict[str, int], list[str]]:
        d = self.design
        cfg = load_config(d.config or None)
        partners = sorted(cfg["treatment"], key=lambda k: (str(cfg["treatment"][k]), k))
        if not 1 <= d.n_treated <= len(partners):
            raise ValueError(f"n_treated must be between 1 and {len(partners)}")
        treated = partners[: d.n_treated]
        cfg["treatment"] = {k: cfg["treatment"][k] for k in treated}
        cfg["effects"] = self._effects(cfg, treated)
        cfg["effect_form"] = d.effect_form
        countries = load_countries()
        choice = choose_countries(countries, cfg, d.seed)
        params = draw_country_params(choice, countries, cfg, d.seed)
        model = Model(cfg, params, effect_scale=d.effect_scale if d.effects != "zero" else 0.0)
        pool = sorted(choice.pool)
        keys = {iso: int(params.loc[iso, "key"]) for iso in pool}
        return model, pool, keys, [t for t in treated if t in pool]

    def _effects(self, cfg: dict, treated: list[str]) -> dict:
        effects = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg["effects"].items()}
        if self.design.effects == "homogeneous":
            for outcome, table in effects.items():
                if isinstance(table, dict) and table:
                    mean = float(np.mean([float(table.get(iso, 0.0)) for iso in cfg["treatment"]] or [0.0]))
                    effects[outcome] = dict.fromkeys(treated, mean)
        return effects

    @property
    def treated(self) -> list[str]:
        return self._fixed[3]

    @property
    def countries(self) -> list[str]:
        return self._fixed[1]

    def _rng(self, replication: int, key: int, purpose: int) -> np.random.Generator:
        if replication == GENERATOR_STREAMS:
            return country_rng(self.design.seed, key, purpose)
        return np.random.default_rng([self.design.seed, STREAM_MONTECARLO, replication, key, purpose])

    def draw(self, replication: int) -> DrawnPanel:
        """Replication ``replication`` (an int >= 0); the same number gives the same panel.

        ``GENERATOR_STREAMS`` (-1) uses ``mipa simulate``'s own random streams: with the
        default design that is exactly the panel of ``mipa simulate --seed <design.seed>``
        (a test checks it against the panel counted from the written feeds).
        """
        if replication < 0 and replication != GENERATOR_STREAMS:
            raise ValueError("replication must be >= 0")
        model, pool, keys, treated = self._fixed
        cal = model.cal
        n_months = cal.n - cal.w0
        columns: list[dict[str, np.ndarray]] = []
        first_treat: list[float] = []
        truth: dict[str, dict[str, float]] = {o: {} for o in PANEL_OUTCOMES}
        started = set(model.cfg["treatment"])
        for iso in pool:
            shared = iso not in started and replication != GENERATOR_STREAMS
            key = self._country_key(iso, replication) if shared else None
            if key is not None and key in _NEVER_TREATED_DRAWS:
                counts, first = _NEVER_TREATED_DRAWS[key]
                columns.append(counts)
                first_treat.append(first)
                continue
            plan = model.plan(iso, self._rng(replication, keys[iso], PURPOSE_PLAN))
            events = model.events(plan, self._rng(replication, keys[iso], PURPOSE_EVENTS))
            columns.append(month_count_columns(events, cal.month_start, cal.w0, n_months))
            start = plan.start_idx - cal.w0 + 1 if plan.start_idx >= 0 else 0
            first_treat.append(float(start) if 1 <= start <= n_months else 0.0)
            if key is not None:
                if _NEVER_TREATED_DRAWS and next(iter(_NEVER_TREATED_DRAWS))[1] != replication:
                    _NEVER_TREATED_DRAWS.clear()  # all keys hold one replication
                _NEVER_TREATED_DRAWS[key] = (columns[-1], first_treat[-1])
            if iso in treated and 1 <= start <= n_months:
                for outcome in PANEL_OUTCOMES:
                    truth[outcome][iso] = float(plan.truth.get(outcome, 0.0))
        # one frame from the countries' columns (a frame per country and three inserts each
        # were a third of a draw)
        panel = pd.DataFrame({
            "iso3": np.repeat(np.array(pool, dtype=object), n_months),
            "period": np.tile(np.arange(1, n_months + 1), len(pool)),
            "first_treat": np.repeat(np.array(first_treat, dtype=float), n_months),
            **{name: np.concatenate([c[name] for c in columns]) for name in columns[0]},
        })
        post = panel.loc[panel["first_treat"] > 0].groupby("iso3")["first_treat"].first()
        post_months = {iso: n_months - int(g) + 1 for iso, g in post.items()}
        for outcome, by_unit in truth.items():
            weights = np.array([post_months[i] for i in by_unit], dtype=float)
            values = np.array(list(by_unit.values()), dtype=float)
            by_unit["overall"] = float(weights @ values / weights.sum()) if weights.size else 0.0
        return DrawnPanel(panel=panel, truth=truth, treated=[t for t in treated if t in post_months])


def _month_counts(days: np.ndarray, month_start: np.ndarray, w0: int, n_months: int) -> np.ndarray:
    idx = np.searchsorted(month_start, days, side="right") - 1 - w0
    idx = idx[(idx >= 0) & (idx < n_months)]
    return np.bincount(idx, minlength=n_months).astype(np.int64)


def month_count_columns(events, month_start: np.ndarray, w0: int, n_months: int) -> dict[str, np.ndarray]:
    """One country's cases counted into panel months, as ``fct_country_month`` does.

    Departures by departure month (forced; verified = forced + independent),
    laissez-passers by issue month, requests by request month, confirmations by decision
    month, and the lead time = mean of (decision day - request day) over the month's
    confirmations (NaN in a month without confirmations).
    """
    forced = events.returns_type == FORCED
    verified = forced | (events.returns_type == INDEPENDENT)
    confirmed = events.decisions_outcome == 1
    conf_day = events.decisions_day[confirmed]
    lead = (conf_day - events.requests_day[: events.decisions_day.size][confirmed]).astype(float)
    n_conf = _month_counts(conf_day, month_start, w0, n_months)
    idx = np.searchsorted(month_start, conf_day, side="right") - 1 - w0
    inside = (idx >= 0) & (idx < n_months)
    lead_sum = np.bincount(idx[inside], weights=lead[inside], minlength=n_months)
    with np.errstate(invalid="ignore", divide="ignore"):
        lead_mean = np.where(n_conf > 0, lead_sum / np.maximum(n_conf, 1), np.nan)
    return {
        "forced_departures": _month_counts(events.returns_day[forced], month_start, w0, n_months),
        "laissez_passers": _month_counts(events.lp_day, month_start, w0, n_months),
        "confirmations": n_conf,
        "lead_time_days": lead_mean,
        "requests": _month_counts(events.requests_day, month_start, w0, n_months),
        "verified_departures": _month_counts(events.returns_day[verified], month_start, w0, n_months),
    }
