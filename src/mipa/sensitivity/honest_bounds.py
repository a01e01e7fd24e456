r"""HonestDiD bounds of the sensitivity mart: the first year's average effect under
bounded violations of parallel trends.

Reference: Rambachan, A. and Roth, J. (2023), "A more credible approach to parallel
trends", Review of Economic Studies 90(5), 2555-2591 (RR2023), computed by
:mod:`mipa.sensitivity.honest_did` (the R package ``HonestDiD``'s methods).

HonestDiD (``'honest_bounds'``, Rambachan & Roth 2023; :mod:`mipa.sensitivity.honest_did`)
for ``etwfe`` and ``csdid`` on the annex's five main outcomes (verified departures, its
appendix, is left out for runtime). The monthly event study is binned into quarters to keep
the problem small (12 pre and 12 post months take ~10 s per outcome and estimator as
months, ~1 s as quarters; quarters also average out the month-to-month noise that
``Delta^RM`` would otherwise read as pre-trend): with ``beta(-1) = 0``, quarter ``k`` is
the mean of months ``3k..3k+2``, and every quarter is taken relative to the reference
quarter ``k = -1`` (months -3..-1), ``gamma_k = qbar_k - qbar_{-1}``, covariance
``A V A'``. Pre: quarters -4..-2 (months -12..-4); post: quarters 0..3 (months 0..11).
Target ``theta = l'gamma_post`` with equal weights ``l = 1/4``: the average effect over the
first year, relative to the quarter before the start. Rows: the original interval
``theta_hat +/- z sd`` (no violation allowed), ``Delta^RM(Mbar)`` by the conditional /
least-favourable hybrid (C-LF, RR2023's recommendation for relative magnitudes) for
``Mbar`` in (0, 0.5, 1, 1.5, 2), ``Delta^SD(M)`` by the fixed-length interval (FLCI) for
``M`` = (0, 0.25, 0.5, 1, 2) times ``m_unit``, the standard deviation of the three
pre-quarter coefficients (a pre-trend of that size bending by ``M`` per quarter), and the
breakdown values (smallest ``Mbar`` / ``M`` whose interval contains 0, RR2023 sec. 6;
bracketed by the grid and bisected to 1/32, :func:`bracketed_breakdown`). The
covariances are the estimators' clustered ones, too small with one partner per cohort:
the width of the bounds comes mostly from the violation allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable
from mipa.sensitivity import honest_did as hd
from mipa.sensitivity.pretrends import EventStudyVcov
from mipa.sensitivity.specification import SensitivitySettings, described

__all__ = [
    "bias_multiplier",
    "bracketed_breakdown",
    "honest_rows",
    "honest_rows_or_reason",
    "quarterly_event_study",
    "rm_set",
]


def quarterly_event_study(es: EventStudyVcov, n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """Quarter bins relative to the reference quarter (module docstring): ``(gamma, A V A')``
    with ``n_pre`` pre quarters (-n_pre-1..-2) then ``n_post`` post quarters (0..n_post-1).

    Raises ``KeyError`` when a needed month is not in the event study.
    """
    months = list(range(-3 * (n_pre + 1), 3 * n_post))
    estimated = [m for m in months if m != -1]
    sub = es.select(estimated)
    if not np.all(np.isfinite(sub.estimate)):
        raise KeyError("a month of the HonestDiD window has no estimate")
    beta = np.zeros(len(months))
    vcov = np.zeros((len(months), len(months)))
    idx = [months.index(m) for m in estimated]
    beta[idx] = sub.estimate
    vcov[np.ix_(idx, idx)] = sub.vcov
    quarters = list(range(-n_pre - 1, n_post))
    bins = np.array([[1 / 3 if m // 3 == q else 0.0 for m in months] for q in quarters])
    ref = bins[quarters.index(-1)]
    a = np.delete(bins - ref[None, :], quarters.index(-1), axis=0)
    sigma = a @ vcov @ a.T
    return a @ beta, (sigma + sigma.T) / 2


def bias_multiplier(lv: np.ndarray) -> float:
    """``sum_t t l_t``: the bias of ``theta`` per unit of post-period slope (``delta_t = t c``),
    i.e. the identified set's half-width per unit of ``Mbar max|pre difference|``."""
    return float(np.arange(1, lv.size + 1) @ np.abs(lv))


def rm_set(beta: np.ndarray, sigma: np.ndarray, n_pre: int, lv: np.ndarray, mbar: float,
            settings: SensitivitySettings) -> hd.GridCS:
    """C-LF confidence set under ``Delta^RM(Mbar)`` on a grid that holds it.

    Grid: the identified set for ``beta`` widened by 6 sd of ``theta_hat`` plus
    ``Mbar * sum_t t l_t * 3 sd`` of the largest pre difference (its sampling noise moves
    the set); a side that still touches the grid's end is widened (at most 3 times).
    """
    n_post = lv.size
    sd = float(np.sqrt(lv @ sigma[n_pre:, n_pre:] @ lv))
    # consecutive pre differences beta_{s+1} - beta_s, the last one against beta_ref = 0
    diff = np.vstack([np.eye(n_pre)[1:] - np.eye(n_pre)[:-1], -np.eye(n_pre)[-1:]]) if n_pre > 1 else -np.eye(1)
    sd_diff = float(np.sqrt(np.max(np.diag(diff @ sigma[:n_pre, :n_pre] @ diff.T))))
    lo, hi = hd.identified_set_rm(beta, n_pre, n_post, mbar, lv)
    pad = 6 * sd + mbar * bias_multiplier(lv) * 3 * sd_diff
    lb, ub = lo - pad, hi + pad
    for _ in range(4):
        cs = hd.conditional_cs_rm(beta, sigma, n_pre, n_post, mbar, lv, settings.alpha, "LF",
                                  grid_points=settings.honest_grid_points, grid_lb=lb, grid_ub=ub)
        if not (cs.open_lower or cs.open_upper):
            break
        width = ub - lb
        lb, ub = lb - width * cs.open_lower, ub + width * cs.open_upper
    return cs


def bracketed_breakdown(
    contains_zero: Callable[[float], bool], grid: Sequence[float], grid_contains: Sequence[bool],
    *, tol: float, limit: float,
) -> float:
    """Smallest parameter whose confidence set contains 0 (RR2023 sec. 6's breakdown value).

    The computed grid brackets it: between the last grid value whose set excludes 0 and the
    first that includes it; bisection on ``contains_zero`` (the direct test of
    ``theta = 0``) narrows the bracket to ``tol``. Beyond the grid: doubling up to
    ``limit`` (``inf`` when even ``limit`` excludes 0). The sets grow with the parameter.
    """
    lo = None
    for value, holds in zip(grid, grid_contains, strict=True):
        if holds:
            if lo is None:
                return float(value)
            hi = float(value)
            break
        lo = float(value)
    else:
        return float(hd.expand_and_bisect(contains_zero, lo, max(2 * float(grid[-1]), tol), tol, limit))
    return hd.bisect_threshold(contains_zero, lo, hi, tol)


def honest_rows(estimator: str, outcome: str, es: EventStudyVcov, settings: SensitivitySettings) -> pd.DataFrame:
    """Original interval, ``Delta^RM`` and ``Delta^SD`` sets and breakdown values for
    ``theta`` = the first year's average effect (module docstring)."""
    n_pre, n_post = settings.honest_pre_quarters, settings.honest_post_quarters
    beta, sigma = quarterly_event_study(es, n_pre, n_post)
    lv = np.full(n_post, 1.0 / n_post)
    theta = float(lv @ beta[n_pre:])
    sd = float(np.sqrt(lv @ sigma[n_pre:, n_pre:] @ lv))
    alpha = settings.alpha
    m_unit = float(np.std(beta[:n_pre], ddof=1)) if n_pre > 1 else np.nan
    if not (np.isfinite(beta).all() and np.isfinite(sigma).all() and np.isfinite(m_unit)):
        raise NotEstimable("too_few_pre_periods", "the quarterly event study lacks a finite pre-quarter "
                           "coefficient or variance (the smoothness scale needs two pre quarters)")
    base = {"estimate": theta, "std_error": sd, "m_unit": m_unit}
    lo, hi = hd.original_ci(beta, sigma, n_pre, n_post, lv, alpha)
    rows: list[dict[str, Any]] = [{**base, "restriction": "original", "method": "normal", "parameter": 0.0,
                                   "parameter_multiple": 0.0, "ci_low": lo, "ci_high": hi,
                                   "open_lower": False, "open_upper": False}]

    rm = [(float(mb), rm_set(beta, sigma, n_pre, lv, float(mb), settings)) for mb in settings.mbar_grid]
    zero = np.zeros(1)
    bd_rm = bracketed_breakdown(
        lambda mb: bool(hd.rm_accept(beta, sigma, n_pre, n_post, lv, mb, zero, alpha, "LF", 0)[0]),
        [mb for mb, _ in rm], [cs.lb <= 0 <= cs.ub for _, cs in rm],
        tol=settings.breakdown_tol, limit=settings.breakdown_mbar_limit,
    )
    for mb, cs in rm:
        rows.append({**base, "restriction": "relative_magnitude", "method": "C-LF", "parameter": mb,
                     "parameter_multiple": mb, "ci_low": cs.lb, "ci_high": cs.ub,
                     "open_lower": cs.open_lower, "open_upper": cs.open_upper,
                     "breakdown_value": bd_rm, "breakdown_multiple": bd_rm,
                     "breakdown_limit": settings.breakdown_mbar_limit})

    def flci(m: float) -> hd.FLCIResult:
        return hd.flci_sd(beta, sigma, n_pre, n_post, m, lv, alpha, folded_normal="exact")

    sd_sets = [(float(k), flci(float(k) * m_unit)) for k in settings.m_multiples]
    m_limit = settings.breakdown_m_limit_multiple * m_unit
    bd_sd = bracketed_breakdown(
        lambda m: (lambda r: r.lb <= 0 <= r.ub)(flci(m)),
        [k * m_unit for k, _ in sd_sets], [r.lb <= 0 <= r.ub for _, r in sd_sets],
        tol=settings.breakdown_tol * m_unit, limit=m_limit,
    )
    for k, r in sd_sets:
        rows.append({**base, "restriction": "smoothness", "method": "FLCI", "parameter": k * m_unit,
                     "parameter_multiple": k, "ci_low": r.lb, "ci_high": r.ub,
                     "open_lower": False, "open_upper": False,
                     "breakdown_value": bd_sd, "breakdown_multiple": bd_sd / m_unit if m_unit > 0 else np.nan,
                     "breakdown_limit": m_limit})
    frame = pd.DataFrame(rows)
    for col in ("breakdown_value", "breakdown_multiple"):
        frame[col] = frame[col].replace([np.inf, -np.inf], np.nan)
    return described(
        frame, "honest_bounds", estimator, outcome,
        pre_window=f"quarters -{n_pre + 1}..-2 (months {-3 * (n_pre + 1)}..-4); reference quarter: months -3..-1",
        post_window=f"quarters 0..{n_post - 1} (months 0..{3 * n_post - 1}), equal weights",
    )


def honest_rows_or_reason(estimator: str, outcome: str, es: EventStudyVcov, settings: SensitivitySettings
                      ) -> pd.DataFrame:
    """:func:`honest_rows`, with a month of the window that has no estimate (e.g. no
    observed partner in it) turned into a reason."""
    try:
        return honest_rows(estimator, outcome, es, settings)
    except KeyError as exc:
        raise NotEstimable("too_few_pre_periods", f"a month of the HonestDiD window has no estimate ({exc})") from exc
