r"""Andrews-Roth-Pakes conditional tests and the conditional / least-favourable hybrid.

Reference: Andrews, I., Roth, J. and Pakes, A. (2023), "Inference for Linear Conditional
Moment Inequalities", Review of Economic Studies 90(6) (ARP2023); Rambachan, A. and Roth,
J. (2023), Review of Economic Studies 90(5), sec. 3.3 (C-LF, recommended for
``Delta^RM``); R ``HonestDiD`` ``.ARP_computeCI``, ``.lp_conditional_test_fn``,
``.testInIdentifiedSet``, ``.testInIdentifiedSet_LF_Hybrid``,
``.compute_least_favorable_cv``.

For each ``theta`` the test asks whether ``E[Y(theta) - X gamma] <= 0`` for some
nuisance ``gamma``, ``Y(theta) = A beta_hat - d - A_post Gamma^{-1} e_1 theta``. The
statistic is the LP value ``eta`` (:class:`~mipa.sensitivity.honest_did.arp_lp.EtaProgram`);
the conditional critical value is a truncated-normal quantile with truncation
``[v_lo, v_up]`` from the optimal dual vertex. ``"LF"`` (C-LF) rejects when ``eta``
exceeds the least-favourable ``1-kappa`` critical value (``kappa = alpha/10``, simulated
from :data:`~mipa.sensitivity.honest_did.draws.LF_SIMS` normal draws), otherwise tests
conditionally at size ``(alpha-kappa)/(1-kappa)`` with ``v_up`` capped at that value;
``"ARP"`` is the purely conditional test. With one post period there is no nuisance
parameter and HonestDiD's LF test keeps size ``alpha`` in its second stage (reproduced).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from mipa.sensitivity.honest_did.arp_lp import TOL_LAMBDA, DualBounds, EtaProgram
from mipa.sensitivity.honest_did.deltas import post_rows
from mipa.sensitivity.honest_did.draws import LF_SIMS, Draws, mvnormal_draws
from mipa.sensitivity.honest_did.inputs import Hybrid

__all__ = ["arp_accept"]


def _truncnorm_ppf(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Quantile ``p`` of ``N(0,1)`` truncated to ``[lo, hi]`` (TruncatedNormal ``norminvp``)."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    out = np.full(np.broadcast(lo, hi).shape, np.nan)
    ok = hi > lo
    if ok.any():
        out[ok] = stats.truncnorm.ppf(p, np.broadcast_to(lo, out.shape)[ok], np.broadcast_to(hi, out.shape)[ok])
    return out


# =========================================================================== no nuisance
def _lf_cv_no_nuisance(sigma_y: np.ndarray, kappa: float, draws: Draws, sims: int = LF_SIMS) -> float:
    """``1-kappa`` quantile of ``max_j xi_j / sd_j``, ``xi ~ N(0, Sigma_Y)`` (``sims`` draws)."""
    xi = mvnormal_draws(sims, sigma_y, draws) / np.sqrt(np.diag(sigma_y))
    return float(np.quantile(xi.max(axis=1), 1 - kappa))


def _arp_no_nuisance_accept(
    beta: np.ndarray,
    sigma: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    num_pre: int,
    theta: np.ndarray,
    alpha: float,
    lf_cv: float | None,
) -> np.ndarray:
    """Acceptance over ``theta`` of the ARP test without nuisance parameters (one post period).

    HonestDiD ``.testInIdentifiedSet`` / ``.testInIdentifiedSet_LF_Hybrid``: with
    ``y = beta - e_{post} theta``, normalised moments ``m = (A y - d) / sd``; at the
    largest ``m_j``, ``gamma = A_j / sd_j``, the conditioning set is
    ``{Abar z + Abar c t <= dbar}`` with ``c = Sigma gamma / gamma'Sigma gamma``,
    ``z = (I - c gamma') y``, giving ``[V_lo, V_up]`` for ``t = gamma'y``; reject when
    ``m_j + d_j/sd_j`` exceeds the ``1-alpha`` quantile of ``N(d_j/sd_j, gamma'Sigma gamma)``
    truncated to ``[V_lo, V_up]``. LF hybrid (``lf_cv`` given): reject outright when
    ``m_j > lf_cv``; the second stage keeps size ``alpha`` as HonestDiD does.
    """
    sd_t = np.sqrt(np.diag(a @ sigma @ a.T))
    at = a / sd_t[:, None]
    dt = d / sd_t
    e = np.zeros(beta.size)
    e[num_pre] = 1.0
    y = beta[None, :] - theta[:, None] * e[None, :]  # G x n
    moments = y @ at.T - dt[None, :]  # G x k
    jmax = np.argmax(moments, axis=1)
    mmax = moments[np.arange(theta.size), jmax]
    accept = np.ones(theta.size, dtype=bool)
    for j in np.unique(jmax):
        rows = np.flatnonzero(jmax == j)
        gamma = at[j]
        abar = at - at[j][None, :]
        dbar = dt - dt[j]
        s2 = float(gamma @ sigma @ gamma)
        c = sigma @ gamma / s2
        ac = abar @ c
        yy = y[rows]
        z = yy - (yy @ gamma)[:, None] * c[None, :]
        obj = (dbar[None, :] - z @ abar.T) / np.where(ac == 0, np.nan, ac)[None, :]
        vlo = np.max(np.where(ac < 0, obj, -np.inf), axis=1)
        vup = np.min(np.where(ac > 0, obj, np.inf), axis=1)
        sd_b = np.sqrt(s2)
        crit = dt[j] + sd_b * _truncnorm_ppf(1 - alpha, (vlo - dt[j]) / sd_b, (vup - dt[j]) / sd_b)
        rej = mmax[rows] + dt[j] > crit
        if lf_cv is not None:
            rej |= mmax[rows] > lf_cv
        accept[rows] = ~rej
    return accept


# =========================================================================== nuisance
def _lf_cv_nuisance(x: np.ndarray, sigma_y: np.ndarray, kappa: float, draws: Draws, sims: int = LF_SIMS) -> float:
    """Least-favourable critical value (ARP2023 sec. 5.3; HonestDiD
    ``.compute_least_favorable_cv``): the ``1-kappa`` quantile of ``eta(xi)``,
    ``xi ~ N(0, Sigma_Y)`` (``sims`` draws), LP failures dropped."""
    xi = mvnormal_draws(sims, sigma_y, draws)
    eta, _, _ = EtaProgram(x, np.sqrt(np.diag(sigma_y))).solve(xi)
    return float(np.quantile(eta[np.isfinite(eta)], 1 - kappa))


def _conditional_accept(
    eta: np.ndarray, sigma_b: float, vlo: np.ndarray, vup: np.ndarray, lf_cv: float, size: float
) -> np.ndarray:
    """Not rejected: statistic ``eta / sigma_b`` outside the truncation interval
    ``[v_lo, min(v_up, c_LF)] / sigma_b`` (as HonestDiD) or at most ``max(0, q_{1-size})``
    of ``N(0,1)`` truncated to it."""
    zlo = vlo / sigma_b
    zup = np.minimum(vup, lf_cv) / sigma_b
    stat = eta / sigma_b
    inside = (zlo <= stat) & (stat <= zup)
    cval = np.maximum(0.0, _truncnorm_ppf(1 - size, zlo, zup))
    return ~(inside & (stat > cval))


def _arp_nuisance_accept(
    y_full: np.ndarray,
    a1: np.ndarray,
    x_full: np.ndarray,
    sigma_y_full: np.ndarray,
    rows: np.ndarray,
    theta: np.ndarray,
    alpha: float,
    hybrid: Hybrid,
    kappa: float,
    draws: Draws,
) -> np.ndarray:
    """Acceptance over ``theta`` of the ARP (``"ARP"``) or C-LF (``"LF"``) test of
    ``E[Y - a1 theta - X gamma] <= 0`` on the moments ``rows`` (HonestDiD
    ``.ARP_computeCI`` / ``.lp_conditional_test_fn``).

    ``eta <= 0`` is never rejected and, for C-LF, ``eta > c_LF`` always is; the others
    are tested conditionally. Primal path (``m`` positive duals ``B``, ``X_B`` of full
    rank): ``v_B' = e_1' W_B^{-1} S_B``, ``sigma_B^2 = v_B' Sigma v_B``,
    ``Gamma_B = W_Bc W_B^{-1} S_B - S_Bc``, ``rho = Gamma_B Sigma v_B / sigma_B^2``,
    ``v_lo = max_{rho>0} (v_B'y - (Gamma_B y) / rho)``, ``v_up = min_{rho<0}`` of the
    same. Otherwise (degenerate LP) the dual-vertex bounds of
    :class:`~mipa.sensitivity.honest_did.arp_lp.DualBounds`. Critical value: see
    :func:`_conditional_accept`, with ``size = (alpha - kappa)/(1 - kappa)`` (C-LF) or
    ``alpha`` (ARP).
    """
    y = y_full[rows][None, :] - theta[:, None] * a1[rows][None, :]
    x = x_full[rows]
    sig = sigma_y_full[np.ix_(rows, rows)]
    sd = np.sqrt(np.diag(sig))
    lf_cv = np.inf
    if hybrid == "LF":
        lf_cv = _lf_cv_nuisance(x, sig, kappa, draws)
        size = (alpha - kappa) / (1 - kappa)
    else:
        size = alpha
    prog = EtaProgram(x, sd)
    eta, which, duals = prog.solve(y)
    accept = np.ones(theta.size, dtype=bool)  # LP failure or eta <= 0: not rejected
    accept[np.isfinite(eta) & (eta > lf_cv)] = False
    todo = np.isfinite(eta) & (eta > 0) & (eta <= lf_cv)
    kk = prog.k
    for b_id in np.unique(which[todo & (which >= 0)]):
        idx = np.flatnonzero(todo & (which == b_id))
        lam = prog.bases[b_id][2]
        pos = lam > TOL_LAMBDA
        if pos.sum() != prog.m or np.linalg.matrix_rank(x[pos]) != prog.m - 1:
            continue  # degenerate: dual path below
        todo[idx] = False
        winv = np.linalg.inv(prog.w[pos])
        s_b = np.eye(kk)[pos]
        s_bc = np.eye(kk)[~pos]
        v_b = winv[0] @ s_b
        gamma_b = prog.w[~pos] @ winv @ s_b - s_bc
        s2 = float(v_b @ sig @ v_b)
        rho = gamma_b @ sig @ v_b / s2
        yy = y[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            mm = -(yy @ gamma_b.T) / rho[None, :] + (yy @ v_b)[:, None]
        vlo = np.max(np.where(rho[None, :] > 0, mm, -np.inf), axis=1, initial=-np.inf)
        vup = np.min(np.where(rho[None, :] < 0, mm, np.inf), axis=1, initial=np.inf)
        accept[idx] = _conditional_accept(eta[idx], np.sqrt(s2), vlo, vup, lf_cv, size)
    groups: dict[int, list[int]] = {}
    for j in np.flatnonzero(todo):
        groups.setdefault(int(which[j]) if which[j] >= 0 else -1 - int(j), []).append(int(j))
    for members in groups.values():
        idx = np.array(members)
        lam = prog.dual(int(which[idx[0]]), duals, int(idx[0]))
        s2 = float(lam @ sig @ lam)
        if abs(s2) < np.finfo(float).eps:
            accept[idx] = ~(eta[idx] > 0)
            continue
        vlo, vup = DualBounds(lam, sig, prog.w).bounds(y[idx])
        accept[idx] = _conditional_accept(eta[idx], np.sqrt(s2), vlo, vup, lf_cv, size)
    return accept


def _construct_gamma(lv: np.ndarray) -> np.ndarray:
    """Invertible ``Gamma`` with first row ``l'``: ``l`` then the unit vectors that the
    reduced row echelon form of ``[l, I]`` picks as pivots (HonestDiD ``.construct_Gamma``)."""
    n = lv.size
    rows = [lv]
    for i in range(n):
        cand = np.vstack([*rows, np.eye(n)[i]])
        if np.linalg.matrix_rank(cand) == len(rows) + 1:
            rows.append(np.eye(n)[i])
        if len(rows) == n:
            break
    return np.vstack(rows)


def _arp_ci_nuisance(
    beta: np.ndarray,
    sigma: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    num_pre: int,
    lv: np.ndarray,
    theta: np.ndarray,
    alpha: float,
    hybrid: Hybrid,
    rows: np.ndarray,
    draws: Draws,
) -> np.ndarray:
    """Acceptance over ``theta`` of the ``hybrid`` test of ``delta in {A delta <= d}`` on the
    moments ``rows`` when ``theta`` comes with nuisance parameters (several post periods):
    ``Y = A b - d``, ``[a1, X] = A_post Gamma^{-1}``, ``kappa = alpha / 10``."""
    gamma = _construct_gamma(lv)
    ag = a[:, num_pre:] @ np.linalg.inv(gamma)
    y = a @ beta - d
    sigma_y = a @ sigma @ a.T
    return _arp_nuisance_accept(y, ag[:, 0], ag[:, 1:], sigma_y, rows, theta, alpha, hybrid, alpha / 10, draws)


def arp_accept(
    beta: np.ndarray,
    sigma: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    num_pre: int,
    num_post: int,
    lv: np.ndarray,
    theta: np.ndarray,
    alpha: float,
    hybrid: Hybrid,
    draws: Draws,
) -> np.ndarray:
    """Acceptance over ``theta`` of the ``hybrid`` test of ``delta in {A delta <= d}``: the
    no-nuisance test on all rows with one post period, otherwise the test with nuisance
    parameters on the rows that involve a post period (HonestDiD's default)."""
    if num_post == 1:
        lf = _lf_cv_no_nuisance(a @ sigma @ a.T, alpha / 10, draws) if hybrid == "LF" else None
        return _arp_no_nuisance_accept(beta, sigma, a, d, num_pre, theta, alpha, lf)
    rows = post_rows(a, num_pre)
    return _arp_ci_nuisance(beta, sigma, a, d, num_pre, lv, theta, alpha, hybrid, rows, draws)
