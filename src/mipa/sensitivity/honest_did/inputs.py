"""Validated event-study inputs, unit vectors and the conventional confidence interval.

Every HonestDiD computation starts from ``beta_hat = (beta_pre, beta_post)`` (``num_pre``
leads, the reference period -1 omitted, then ``num_post`` lags), its covariance ``sigma``
and the weights ``l`` of the target ``theta = l' tau_post`` (Rambachan, A. and Roth, J.
(2023), "A More Credible Approach to Parallel Trends", Review of Economic Studies 90(5),
2555-2591, sec. 2). :func:`original_ci` is the interval under exact parallel trends
(R ``HonestDiD::constructOriginalCS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["Hybrid", "Vector", "basis_vector", "original_ci", "sd_theta", "validated_inputs"]

#: Second stage of the ARP test: ``"LF"`` conditional / least-favourable hybrid, ``"ARP"`` conditional.
Hybrid = Literal["LF", "ARP"]

#: An estimate vector or weight vector, as a list or an array.
Vector = Sequence[float] | np.ndarray


def basis_vector(index: int, size: int) -> np.ndarray:
    """Unit vector ``e_index`` of length ``size`` (1-based ``index``, as HonestDiD)."""
    v = np.zeros(size)
    v[index - 1] = 1.0
    return v


def validated_inputs(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(beta, sigma, l)``; ``l`` defaults to the first post period."""
    beta = np.asarray(betahat, dtype=float).ravel()
    sig = np.asarray(sigma, dtype=float)
    if num_pre < 1 or num_post < 1:
        raise ValueError("need at least one pre and one post period")
    if beta.size != num_pre + num_post:
        raise ValueError(f"betahat has {beta.size} entries, expected num_pre + num_post")
    if sig.shape != (beta.size, beta.size):
        raise ValueError("sigma must be a square matrix conformable with betahat")
    if not np.allclose(sig, sig.T, rtol=1e-8, atol=1e-14 * max(1.0, np.abs(sig).max())):
        raise ValueError("sigma must be symmetric")
    sig = (sig + sig.T) / 2
    lv = basis_vector(1, num_post) if l_vec is None else np.asarray(l_vec, dtype=float).ravel()
    if lv.size != num_post:
        raise ValueError("l_vec must have num_post entries")
    return beta, sig, lv


def sd_theta(sigma: np.ndarray, num_pre: int, lv: np.ndarray) -> float:
    """Standard deviation ``sqrt(l' Sigma_post l)`` of ``theta_hat = l' beta_post``."""
    post = slice(num_pre, num_pre + lv.size)
    return float(np.sqrt(lv @ sigma[post, post] @ lv))


def original_ci(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Conventional CI under parallel trends: ``l'b_post +/- z_{1-alpha/2} sd``."""
    beta, sig, lv = validated_inputs(betahat, sigma, num_pre, num_post, l_vec)
    est = float(lv @ beta[num_pre:])
    se = sd_theta(sig, num_pre, lv)
    z = stats.norm.ppf(1 - alpha / 2)
    return est - z * se, est + z * se
