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

The process is computed in :mod:`mipa.simulate.timing` (calendar, COVID curve, lag
distributions), :mod:`mipa.simulate.params` (the countries' parameters and random
streams), :mod:`mipa.simulate.flows` (the own flows and a country's plan),
:mod:`mipa.simulate.plan` (:class:`Model`: the smooth intensities with the planted
effects) and :mod:`mipa.simulate.events` (the cases drawn from a plan); this module
gathers their public names.
"""

from mipa.simulate.events import DEPARTURE_TYPES, FORCED, INDEPENDENT, UNSUPERVISED, CountryEvents, draw_events
from mipa.simulate.flows import EXTRA_FLOWS, FLOWS, CountryPlan
from mipa.simulate.params import (
    PURPOSE_EVENTS,
    PURPOSE_PLAN,
    STREAM_COUNTRY,
    STREAM_DIRTY,
    STREAM_PARAMS,
    country_rng,
    draw_country_params,
)
from mipa.simulate.plan import COUNT_OUTCOMES, EFFECT_FORMS, EFFECT_KEYS, OUTCOMES, Model
from mipa.simulate.timing import MONTH_DAYS, N_NODES, Calendar, Lag, backshift, covid_curve

__all__ = [
    "COUNT_OUTCOMES",
    "DEPARTURE_TYPES",
    "EFFECT_FORMS",
    "EFFECT_KEYS",
    "EXTRA_FLOWS",
    "FLOWS",
    "FORCED",
    "INDEPENDENT",
    "MONTH_DAYS",
    "N_NODES",
    "OUTCOMES",
    "PURPOSE_EVENTS",
    "PURPOSE_PLAN",
    "STREAM_COUNTRY",
    "STREAM_DIRTY",
    "STREAM_PARAMS",
    "UNSUPERVISED",
    "Calendar",
    "CountryEvents",
    "CountryPlan",
    "Lag",
    "Model",
    "backshift",
    "country_rng",
    "covid_curve",
    "draw_country_params",
    "draw_events",
]
