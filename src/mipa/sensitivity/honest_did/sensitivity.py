r"""Sensitivity analysis: robust confidence sets over a range of restrictions, breakdown values.

Reference: Rambachan, A. and Roth, J. (2023), "A More Credible Approach to Parallel
Trends", Review of Economic Studies 90(5), sec. 5-6; R ``HonestDiD``
``createSensitivityResults``, ``createSensitivityResults_relativeMagnitudes``,
``DeltaSD_upperBound_Mpre``.

:func:`sensitivity_rm` / :func:`sensitivity_sd` tabulate the robust set for each
``Mbar`` (relative magnitudes) or ``M`` (smoothness). The breakdown value
(:func:`breakdown_value_rm`, :func:`breakdown_value_sd`) is the smallest ``Mbar`` (``M``)
whose robust set contains 0, found by bisection on the acceptance of ``theta = 0`` (the
set grows with the parameter). ``seed``/``normals`` fix the simulation draws of the C-LF
test and the FLCI's folded-normal quantile (:mod:`mipa.sensitivity.honest_did.draws`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from mipa.sensitivity.honest_did.conditional import conditional_cs_rm, conditional_cs_sd, rm_accept, sd_accept
from mipa.sensitivity.honest_did.deltas import create_a_sd
from mipa.sensitivity.honest_did.draws import NormalSource
from mipa.sensitivity.honest_did.flci import FoldedNormal, flci_sd
from mipa.sensitivity.honest_did.inputs import Hybrid, sd_theta, validated_inputs

__all__ = [
    "bisect_threshold",
    "breakdown_value_rm",
    "breakdown_value_sd",
    "expand_and_bisect",
    "sd_upper_bound_m_pre",
    "sensitivity_rm",
    "sensitivity_sd",
]


def sd_upper_bound_m_pre(
    betahat: Sequence[float] | np.ndarray, sigma: np.ndarray, num_pre: int, alpha: float = 0.05
) -> float:
    """Upper bound for ``M`` from the pre-period (HonestDiD ``DeltaSD_upperBound_Mpre``):
    ``max_j (A b_pre)_j + z_{1-alpha} se_j`` over the pre-period second differences."""
    if num_pre < 2:
        raise ValueError("need at least two pre periods")
    beta = np.asarray(betahat, dtype=float)[:num_pre]
    sig = np.asarray(sigma, dtype=float)[:num_pre, :num_pre]
    a = create_a_sd(num_pre, 0)
    se = np.sqrt(np.diag(a @ sig @ a.T))
    return float(np.max(a @ beta + stats.norm.ppf(1 - alpha) * se))


def sensitivity_rm(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    mbar_vec: Sequence[float] | None = None,
    l_vec: Sequence[float] | np.ndarray | None = None,
    method: Literal["C-LF", "Conditional"] = "C-LF",
    alpha: float = 0.05,
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    seed: int = 0,
    normals: NormalSource | None = None,
) -> pd.DataFrame:
    """Robust CIs over ``Mbar`` (HonestDiD ``createSensitivityResults_relativeMagnitudes``,
    bound = deviation from parallel trends). Default ``Mbar``: 10 values on ``[0, 2]``.

    Columns ``lb, ub, method, delta, mbar, open_lower, open_upper``. ``seed``/``normals``:
    the C-LF simulation's draws (module docstring).
    """
    mbars = np.linspace(0, 2, 10) if mbar_vec is None else np.asarray(mbar_vec, dtype=float)
    hybrid: Hybrid = "LF" if method == "C-LF" else "ARP"
    rows = []
    for mb in mbars:
        cs = conditional_cs_rm(
            betahat, sigma, num_pre, num_post, float(mb), l_vec, alpha, hybrid,
            grid_points=grid_points, grid_lb=grid_lb, grid_ub=grid_ub, seed=seed, normals=normals,
        )
        rows.append({"lb": cs.lb, "ub": cs.ub, "method": method, "delta": "DeltaRM",
                     "mbar": float(mb), "open_lower": cs.open_lower, "open_upper": cs.open_upper})
    return pd.DataFrame(rows)


def sensitivity_sd(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    m_vec: Sequence[float] | None = None,
    l_vec: Sequence[float] | np.ndarray | None = None,
    method: Literal["FLCI", "C-LF", "Conditional"] = "FLCI",
    alpha: float = 0.05,
    folded_normal: FoldedNormal = "simulation",
    seed: int = 0,
    grid_points: int = 1000,
    normals: NormalSource | None = None,
) -> pd.DataFrame:
    """Robust CIs over ``M`` (HonestDiD ``createSensitivityResults``, ``Delta^SD``).

    Default ``M``: 10 values on ``[0, M_ub]`` with ``M_ub`` from
    :func:`sd_upper_bound_m_pre` (``[0, sd(b_{-1})]`` with one pre period), as HonestDiD.
    Columns ``lb, ub, method, delta, m, open_lower, open_upper``. ``seed``/``normals``: the
    draws of the FLCI's folded-normal quantile or of the C-LF test (module docstring).
    """
    if m_vec is None:
        if num_pre == 1:
            mvals = np.linspace(0, float(np.sqrt(np.asarray(sigma)[0, 0])), 10)
        else:
            mvals = np.linspace(0, sd_upper_bound_m_pre(betahat, sigma, num_pre, 0.05), 10)
    else:
        mvals = np.asarray(m_vec, dtype=float)
    rows = []
    for mv in mvals:
        if method == "FLCI":
            r = flci_sd(betahat, sigma, num_pre, num_post, float(mv), l_vec, alpha, folded_normal, seed,
                        normals=normals)
            lb, ub, ol, ou = r.lb, r.ub, False, False
        else:
            hybrid: Hybrid = "LF" if method == "C-LF" else "ARP"
            cs = conditional_cs_sd(betahat, sigma, num_pre, num_post, float(mv), l_vec, alpha,
                                   hybrid, grid_points=grid_points, seed=seed, normals=normals)
            lb, ub, ol, ou = cs.lb, cs.ub, cs.open_lower, cs.open_upper
        rows.append({"lb": lb, "ub": ub, "method": method, "delta": "DeltaSD", "m": float(mv),
                     "open_lower": ol, "open_upper": ou})
    return pd.DataFrame(rows)


def bisect_threshold(contains_zero: Callable[[float], bool], lo: float, hi: float, tol: float) -> float:
    """Narrow ``(lo, hi]`` (``contains_zero(lo)`` false, ``contains_zero(hi)`` true; assumed
    monotone) to width ``tol`` by bisection; the upper end."""
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if contains_zero(mid):
            hi = mid
        else:
            lo = mid
    return hi


def expand_and_bisect(
    contains_zero: Callable[[float], bool], lo: float, hi: float, tol: float, limit: float
) -> float:
    """Smallest ``x > lo`` with ``contains_zero(x)`` (``contains_zero(lo)`` false): doubling
    ``hi`` until the set contains 0 (``inf`` beyond ``limit``), then :func:`bisect_threshold`."""
    while not contains_zero(hi):
        if hi >= limit:
            return np.inf
        lo, hi = hi, min(2 * hi, limit)
    return bisect_threshold(contains_zero, lo, hi, tol)


def _bisect_breakdown(
    contains_zero: Callable[[float], bool], start: float, tol: float, limit: float
) -> float:
    """Smallest ``x >= 0`` with ``contains_zero(x)`` (assumed monotone): doubling from
    ``start`` until the set contains 0 (``inf`` beyond ``limit``), then bisection to ``tol``."""
    if contains_zero(0.0):
        return 0.0
    return expand_and_bisect(contains_zero, 0.0, start, tol, limit)


def breakdown_value_rm(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None = None,
    method: Literal["C-LF", "Conditional"] = "C-LF",
    alpha: float = 0.05,
    mbar_max: float = 100.0,
    tol: float = 1e-3,
    seed: int = 0,
    normals: NormalSource | None = None,
) -> float:
    """Smallest ``Mbar`` at which ``theta = 0`` is in the ``Delta^RM(Mbar)`` set (``0`` when
    the original conclusion is not significant, ``inf`` beyond ``mbar_max``). The test of
    ``theta = 0`` is evaluated directly (no grid)."""
    beta, sig, lv = validated_inputs(betahat, sigma, num_pre, num_post, l_vec)
    hybrid: Hybrid = "LF" if method == "C-LF" else "ARP"
    zero = np.zeros(1)
    return _bisect_breakdown(
        lambda mb: bool(rm_accept(beta, sig, num_pre, num_post, lv, mb, zero, alpha, hybrid, seed, normals)[0]),
        1.0,
        tol,
        mbar_max,
    )


def breakdown_value_sd(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None = None,
    method: Literal["FLCI", "C-LF", "Conditional"] = "FLCI",
    alpha: float = 0.05,
    m_max: float | None = None,
    tol: float | None = None,
    folded_normal: FoldedNormal = "simulation",
    seed: int = 0,
    normals: NormalSource | None = None,
) -> float:
    """Smallest ``M`` at which the ``Delta^SD(M)`` set contains 0 (search from
    ``sd_theta`` upwards, ``inf`` beyond ``m_max``, default ``1000 sd_theta``; ``tol``
    defaults to ``1e-4 sd_theta``)."""
    beta, sig, lv = validated_inputs(betahat, sigma, num_pre, num_post, l_vec)
    sd = sd_theta(sig, num_pre, lv)
    m_max = 1000 * sd if m_max is None else m_max
    tol = 1e-4 * sd if tol is None else tol
    if method == "FLCI":
        def has_zero(mv: float) -> bool:
            r = flci_sd(beta, sig, num_pre, num_post, mv, lv, alpha, folded_normal, seed, normals=normals)
            return r.lb <= 0 <= r.ub
    else:
        hybrid: Hybrid = "LF" if method == "C-LF" else "ARP"
        zero = np.zeros(1)

        def has_zero(mv: float) -> bool:
            return bool(sd_accept(beta, sig, num_pre, num_post, lv, mv, zero, alpha, hybrid, seed, normals)[0])

    return _bisect_breakdown(has_zero, sd, tol, m_max)

