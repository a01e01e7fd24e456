r"""Joint pre-trend tests on an event study, and the event study's full covariance.

* :func:`wald_pretrend_test`: ``H0: beta_pre = 0`` for the ``q`` pre-treatment
  event-study coefficients with covariance ``V``. Wald statistic
  ``W = beta_pre' V^{-1} beta_pre``, asymptotically ``chi2(q)``; the F version
  ``F = W / q`` with ``(q, G - 1)`` degrees of freedom for a covariance clustered on
  ``G`` clusters (Stata ``test`` after a clustered regression; Cameron & Miller 2015,
  "A practitioner's guide to cluster-robust inference", JHR 50(2), sec. VII). A
  singular ``V`` (e.g. a lead that is an exact combination of others) is handled with the
  Moore-Penrose inverse and ``q = rank(V)``.
* :func:`etwfe_event_study_vcov`: the event-study vector of
  :func:`mipa.estimators.etwfe.etwfe` (by event time ``e``, each a row-weighted average
  of the ATT(g, t) cells with ``t - g = e``) with its full cluster-robust covariance
  ``W_ev V_cells W_ev'``, which the ``event_study`` table does not carry (it has
  standard errors only). With ``control_group="nevertreated"`` every cohort row except
  its reference period ``g - 1`` is saturated, so the leads ``e <= -2`` are the
  pre-trend coefficients (Wooldridge 2021 sec. 7; as R ``did``'s ``universal`` base
  period). It reads the covariance of the cells from the fit itself
  (:func:`mipa.estimators.etwfe.etwfe_fit`, :meth:`EventStudyVcov.from_etwfe`), so the
  numbers are those of :func:`~mipa.estimators.etwfe.etwfe`: same sample, design,
  small-sample factor ``(N-1)/(N-K) G/(G-1)``.

Pre-trend tests have low power and condition the inference that follows (Roth 2022,
"Pretest with caution", AER: Insights 4(3)); :mod:`mipa.sensitivity.honest_did` is the
alternative that the evaluation should report alongside. :meth:`EventStudyVcov.honest_inputs`
hands the vector over in HonestDiD's layout.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Unpack

import numpy as np
import pandas as pd
from scipy import stats

from mipa.estimability import NotEstimable
from mipa.estimators.etwfe import EtwfeArguments, EtwfeFit, etwfe_fit

__all__ = [
    "EventStudyVcov",
    "PretrendTest",
    "etwfe_event_study_vcov",
    "wald_pretrend_test",
]


@dataclass(frozen=True)
class PretrendTest:
    """Joint test that the pre-treatment coefficients are zero.

    ``statistic`` is the Wald ``W`` (``p_value`` from ``chi2(df)``); ``f_statistic =
    W / df`` with ``p_value_f`` from ``F(df, df_denominator)`` (NaN without clusters).
    """

    statistic: float
    df: int
    p_value: float
    f_statistic: float
    df_denominator: float
    p_value_f: float
    event_times: tuple[int, ...] = ()


def wald_pretrend_test(
    estimate: Sequence[float] | np.ndarray,
    vcov: np.ndarray,
    n_clusters: int | None = None,
    event_times: Sequence[int] = (),
) -> PretrendTest:
    """Wald and F tests of ``beta_pre = 0`` (see the module docstring).

    ``W = b' V^+ b`` (``V^+`` the Moore-Penrose inverse, equal to ``V^{-1}`` when ``V``
    is non-singular), ``df = rank(V)``, ``p = P(chi2_df > W)``; ``F = W / df``,
    ``p_F = P(F_{df, G-1} > F)`` when ``n_clusters = G`` is given.
    """
    b = np.asarray(estimate, dtype=float).ravel()
    v = np.asarray(vcov, dtype=float)
    if v.shape != (b.size, b.size):
        raise ValueError("vcov must be square and conformable with estimate")
    if b.size == 0:
        raise NotEstimable("too_few_pre_periods", "no pre-treatment coefficients to test")
    if not np.all(np.isfinite(b)) or not np.all(np.isfinite(v)):
        raise ValueError("estimate and vcov must be finite")
    v = (v + v.T) / 2
    lam, vec = np.linalg.eigh(v)
    tol = lam.max() * b.size * np.finfo(float).eps * 10
    keep = lam > tol
    q = int(keep.sum())
    if q == 0:
        raise NotEstimable("singular_design", "covariance of the pre-treatment coefficients is zero")
    if q < b.size:
        warnings.warn(
            f"covariance of the {b.size} pre-treatment coefficients has rank {q}: tested on "
            f"{q} degrees of freedom. A clustered covariance has rank at most the number of "
            "clusters that move the coefficients (few treated units): the test can be "
            "badly oversized (Cameron & Miller 2015)",
            RuntimeWarning,
        )
    proj = vec[:, keep].T @ b
    w = float((proj**2 / lam[keep]).sum())
    p = float(stats.chi2.sf(w, q))
    f = w / q
    if n_clusters is not None:
        df2 = float(n_clusters - 1)
        p_f = float(stats.f.sf(f, q, df2))
    else:
        df2, p_f = np.nan, np.nan
    return PretrendTest(w, q, p, f, df2, p_f, tuple(int(e) for e in event_times))


@dataclass(frozen=True)
class EventStudyVcov:
    """An event-study vector with its full covariance.

    ``event_time`` excludes the reference period (``-1`` for never-treated ETWFE).
    ``n_clusters``/``df`` describe the clustered covariance (``df = G - 1``).
    """

    event_time: np.ndarray
    estimate: np.ndarray
    vcov: np.ndarray
    n_clusters: int
    df: int
    settings: dict[str, Any]

    @classmethod
    def from_etwfe(cls, fit: EtwfeFit) -> EventStudyVcov:
        """The event study of an ETWFE fit (:meth:`~mipa.estimators.etwfe.EtwfeFit.event_study_vcov`:
        an event time with an unidentified cell is NaN)."""
        event_time, estimate, vcov = fit.event_study_vcov()
        settings = {
            "control_group": fit.control_group,
            "cohort": fit.cohort,
            "covariates": list(fit.covariates),
            "n_obs": fit.ols.n_obs,
            "small_sample_factor": fit.vcov_info.small_sample_factor,
            **fit.info,
        }
        return cls(event_time, estimate, vcov, fit.vcov_info.n_clusters, fit.df, settings)

    def select(self, event_times: Sequence[int]) -> EventStudyVcov:
        """The sub-vector (and covariance block) of the given event times, in that order."""
        pos = {int(e): i for i, e in enumerate(self.event_time)}
        missing = [e for e in event_times if int(e) not in pos]
        if missing:
            raise KeyError(f"event times not in the event study: {missing}")
        idx = np.array([pos[int(e)] for e in event_times], dtype=np.int64)
        return EventStudyVcov(
            self.event_time[idx], self.estimate[idx], self.vcov[np.ix_(idx, idx)],
            self.n_clusters, self.df, self.settings,
        )

    def pretrend_test(self, reference: int = -1) -> PretrendTest:
        """Wald/F test that all leads ``e < reference`` are zero."""
        leads = [int(e) for e in self.event_time if e < reference]
        sub = self.select(leads)
        return wald_pretrend_test(sub.estimate, sub.vcov, self.n_clusters, leads)

    def honest_inputs(
        self, pre: Sequence[int] | None = None, post: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """``(betahat, sigma, num_pre, num_post)`` for :mod:`mipa.sensitivity.honest_did`.

        Default: all leads ``e <= -2`` then all lags ``e >= 0`` (consecutive event times
        are assumed, as HonestDiD does).
        """
        pre = [int(e) for e in self.event_time if e <= -2] if pre is None else list(pre)
        post = [int(e) for e in self.event_time if e >= 0] if post is None else list(post)
        sub = self.select([*pre, *post])
        return sub.estimate, sub.vcov, len(pre), len(post)


def etwfe_event_study_vcov(panel: pd.DataFrame, **arguments: Unpack[EtwfeArguments]) -> EventStudyVcov:
    """ETWFE event study (as :func:`~mipa.estimators.etwfe.etwfe`'s ``event_study``
    table, reference period left out) with its full clustered covariance.

    ``est_e = sum_c w_ec att_c`` with ``w_ec`` the row share of cell ``c`` among the
    cells at event time ``e``; ``V_ev = W_ev V_cells W_ev'`` with ``V_cells`` the unit
    cluster-robust covariance of the cell effects (reghdfe small-sample factor).
    An event time with a cell dropped as collinear gets NaN. One fit; to reuse a fit
    already made, :meth:`EventStudyVcov.from_etwfe`. Arguments: those of
    :func:`~mipa.estimators.etwfe.etwfe_fit`, except that ``control_group`` defaults to
    ``"nevertreated"`` (every pre-period cell estimated, as an event study needs).
    """
    return EventStudyVcov.from_etwfe(etwfe_fit(panel, **{"control_group": "nevertreated", **arguments}))
