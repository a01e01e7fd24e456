"""The own flows of the data-generating process and a country's plan (:class:`CountryPlan`).

The data-generating process is described in :mod:`mipa.simulate.model`. Every case
starts from an own flow: an expected count by month of departures, laissez-passers,
decisions or requests that no downstream link induces. :data:`FLOWS` names them (the
order is that of the random draws); :data:`EXTRA_FLOWS` are the effect-driven extra cases
of a partner country, whose upstream links stay on or after the start date.
:class:`CountryPlan` holds a country's final own flows, lead-time distributions before
and after its start and the planted truth (:meth:`mipa.simulate.plan.Model.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mipa.simulate.timing import Lag

__all__ = ["EXTRA_FLOWS", "FLOWS", "CountryPlan"]

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
