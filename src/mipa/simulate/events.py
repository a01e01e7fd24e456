"""The cases of one country drawn from its plan: departures, laissez-passers, decisions, requests.

The data-generating process is described in :mod:`mipa.simulate.model` (sections
"Overview" and "Noise"). :func:`draw_events` turns a country's smooth monthly own flows
(:class:`mipa.simulate.flows.CountryPlan`) into cases: each own flow gets a mean-1 month
factor (gamma noise whose shape grows with the intensity, mixed with rare batches) and
Poisson counts; then, backwards along the chain, every departure that used a
laissez-passer gets its LP a lag earlier, every LP its confirmation (but a small share),
every decision its request a lead time earlier (drawn from the distribution of the
decision month), and some LP holders and rejected people leave unsupervised later. The
upstream links of effect-driven extra cases are drawn truncated, on or after the start
date. :class:`CountryEvents` holds the result with local person ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mipa.simulate.flows import FLOWS, CountryPlan
from mipa.simulate.timing import Calendar, Lag

__all__ = ["DEPARTURE_TYPES", "FORCED", "INDEPENDENT", "UNSUPERVISED", "CountryEvents", "EventSettings", "draw_events"]

# departure_type codes
FORCED, INDEPENDENT, UNSUPERVISED = 0, 1, 2
DEPARTURE_TYPES = np.array(["forced", "independent", "unsupervised"])


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


class EventSettings(Protocol):
    """What :func:`draw_events` reads from the model (:class:`mipa.simulate.plan.Model`):
    the calendar, the noise and batch settings, the lag distributions and the shares of
    the chain."""

    cal: Calendar
    noise_small: float
    noise_big: float
    noise_half: float
    shape_mult: dict[str, float]
    batches: dict[str, tuple[float, float]]
    batch_half: float
    dep_lag: Lag
    lp_lag: Lag
    unsup_lag: Lag
    lp_noconf: float
    unsup_after_lp: float
    unsup_after_rej: float


def draw_events(model: EventSettings, plan: CountryPlan, rng: np.random.Generator) -> CountryEvents:
    """Draw the cases of one country from its plan (vectorised, no per-event loops)."""
    cal = model.cal
    counts = {}
    for key in FLOWS:  # fixed order: the random stream does not depend on the values
        # small flows are bursty, big flows steadier: gamma shape grows with intensity
        lam = plan.own[key]
        k = model.noise_small + (model.noise_big - model.noise_small) * lam / (lam + model.noise_half)
        k = k * model.shape_mult.get(key, 1.0)
        noise = rng.gamma(k, 1.0 / k)
        batch_share, batch_prob = model.batches.get(key, (0.0, 1.0))
        # batches weigh less in big flows (a charter is a small part of a big month)
        batch_share = batch_share * model.batch_half / (lam + model.batch_half)
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
    lp_linked = linked_dep - _lags(model.dep_lag, linked_dep - start_day, linked_extra, rng)
    lp_own = np.concatenate([cal.month_days(counts["lp_own"], rng), cal.month_days(counts["lp_own_x"], rng)])
    own_extra = np.arange(lp_own.size) >= counts["lp_own"].sum()
    lp_day = np.concatenate([lp_linked, lp_own])
    lp_extra = np.concatenate([linked_extra, own_extra])
    n_lp, n_linked = lp_day.size, linked_dep.size
    # some own-LP holders leave unsupervised later
    later = rng.random(lp_own.size) < model.unsup_after_lp
    u_lp_day = lp_own[later] + model.unsup_lag.sample(rng, int(later.sum()))
    u_lp_person = (n_linked + np.nonzero(later)[0]).astype(np.int64)
    keep = u_lp_day <= cal.end_day
    u_lp_day, u_lp_person = u_lp_day[keep], u_lp_person[keep]
    # decisions: confirmations behind LPs, own confirmations, rejections
    has_conf = rng.random(n_lp) >= model.lp_noconf
    lp_conf_idx = np.nonzero(has_conf)[0]
    dec_lp = lp_day[lp_conf_idx] - _lags(
        model.lp_lag, lp_day[lp_conf_idx] - start_day, lp_extra[lp_conf_idx], rng
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
    later = rng.random(dec_rej.size) < model.unsup_after_rej
    u_rej_day = dec_rej[later] + model.unsup_lag.sample(rng, int(later.sum()))
    u_rej_person = p_rej[later]
    keep = u_rej_day <= cal.end_day
    u_rej_day, u_rej_person = u_rej_day[keep], u_rej_person[keep]
    # requests behind decisions: lead time by decision month
    lead = _lead_times(cal, plan, dec_day, rng)
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


def _lead_times(cal: Calendar, plan: CountryPlan, dec_day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Request lead times of decisions on ``dec_day`` (the distribution of the decision month),
    redrawn where the request would predate ``requests_from``."""
    post = np.zeros(dec_day.size, dtype=bool)
    if plan.start_idx >= 0:
        post = cal.month_of(dec_day) >= plan.start_idx
    lead = np.where(post, plan.lead_post.sample(rng, dec_day.size), plan.lead_pre.sample(rng, dec_day.size))
    room = np.maximum(dec_day - cal.floor_day, 0)  # requests cannot predate `requests_from`
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
