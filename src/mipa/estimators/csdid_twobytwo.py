"""Two-period panel DiD estimators with influence functions (private helper of ``csdid``).

These are numpy ports of the panel estimators of the R package ``DRDID`` that R ``did``
calls for each ATT(g,t) cell (Sant'Anna & Zhao 2020, "Doubly robust
difference-in-differences estimators", Journal of Econometrics 219(1), 101-122):

* :func:`drdid_panel`   -- ``DRDID::drdid_panel`` (traditional doubly robust; R ``did``'s
  ``est_method = "dr"``),
* :func:`ipw_panel`     -- ``DRDID::std_ipw_did_panel`` (normalised / Hajek IPW),
* :func:`reg_panel`     -- ``DRDID::reg_did_panel`` (outcome regression).

Each takes the outcome change ``dy = Y_t - Y_base`` of the ``n`` units of one 2x2
comparison, the treatment indicator ``d`` and a design matrix ``x`` whose first column is
the intercept, and returns ``(att, psi)`` with ``psi`` the length-``n`` influence function
scaled so that ``att - ATT ~= mean(psi)`` (no sampling weights: every ``i.weights`` = 1).

A cell the R code would refuse (overlap violated, singular design) raises
:class:`CellEstimationError`; the caller turns it into a missing ATT(g,t), as R ``did`` does.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

_EPS = np.finfo(float).eps


class CellEstimationError(ValueError):
    """The 2x2 estimator cannot be computed for this cell (R ``did`` returns NA)."""


def logit_fit(x: np.ndarray, d: np.ndarray, *, max_iter: int = 100) -> np.ndarray:
    """Maximum-likelihood logit of ``d`` on ``x`` by Newton-Raphson; returns fitted P(d=1|x).

    Convergence: relative deviance change below 1e-12 (tighter than R ``glm``'s 1e-8, so
    fitted values agree with R to the precision R itself reaches). Under (quasi-)separation
    the iterations run to ``max_iter`` and the fitted values go to 0/1, which the overlap
    check of the caller then flags, as in R.
    """
    n, p = x.shape
    beta = np.zeros(p)
    dev_old = np.inf
    for _ in range(max_iter):
        eta = x @ beta
        ps = expit(eta)
        w = ps * (1.0 - ps)
        hess = (x * w[:, None]).T @ x
        grad = x.T @ (d - ps)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as exc:  # pragma: no cover - guarded by rank check
            raise CellEstimationError("singular propensity-score design") from exc
        beta = beta + step
        ps_new = np.clip(expit(x @ beta), 1e-300, 1 - 1e-16)
        dev = -2.0 * np.sum(d * np.log(ps_new) + (1 - d) * np.log1p(-ps_new))
        if abs(dev - dev_old) / (abs(dev) + 0.1) < 1e-12:
            break
        dev_old = dev
    return expit(x @ beta)


def _check_overlap_and_design(x: np.ndarray, d: np.ndarray, need_ps: bool, need_reg: bool,
                              ps_cache: dict | None = None):
    """R ``did``'s pre-checks of a cell (``run_DRDID``): overlap and control-design rank.

    ``ps_cache`` memoises the logit by its exact inputs: cells of one cohort share their
    units and (time-invariant) covariates on a balanced panel, so the logit is fitted once.
    """
    ps = None
    if need_reg:
        xc = x[d == 0]
        xtx = xc.T @ xc
        if xc.shape[0] == 0 or 1.0 / np.linalg.cond(xtx) < _EPS:
            raise CellEstimationError("not enough control units to run the outcome regression")
    if need_ps:
        key = (x.shape, x.tobytes(), d.tobytes()) if ps_cache is not None else None
        ps = ps_cache.get(key) if key is not None else None
        if ps is None:
            if np.linalg.matrix_rank(x) < x.shape[1]:
                raise CellEstimationError("propensity-score design is rank deficient")
            ps = logit_fit(x, d)
            if key is not None:
                ps_cache[key] = ps
        if ps.max() >= 0.999:
            raise CellEstimationError("overlap condition violated (propensity score >= 0.999)")
    return ps


def _ols_on_controls(x: np.ndarray, d: np.ndarray, dy: np.ndarray):
    n = len(d)
    w_ols = 1.0 - d
    xc = x[d == 0]
    beta = np.linalg.solve(xc.T @ xc, xc.T @ dy[d == 0])
    out = x @ beta
    xpx = (x * w_ols[:, None]).T @ x / n
    if 1.0 / np.linalg.cond(xpx) < _EPS:
        raise CellEstimationError("the regression design matrix is singular")
    # asymptotic linear representation of the OLS coefficients (n x k)
    alr_ols = ((w_ols * (dy - out))[:, None] * x) @ np.linalg.inv(xpx)
    return out, alr_ols


def _ps_pieces(x: np.ndarray, d: np.ndarray, ps_raw: np.ndarray, trim_level: float):
    n = len(d)
    ps = np.minimum(ps_raw, 1 - 1e-6)
    trim = np.ones(n, dtype=bool)
    trim[d == 0] = ps[d == 0] < trim_level
    w = ps * (1.0 - ps)
    xtwx = (x * w[:, None]).T @ x
    if 1.0 / np.linalg.cond(xtwx) < _EPS:
        raise CellEstimationError("the propensity score design matrix is singular")
    hess = np.linalg.inv(xtwx) * n
    alr_ps = ((d - ps)[:, None] * x) @ hess
    w_treat = trim * d
    w_cont = trim * ps * (1.0 - d) / (1.0 - ps)
    return w_treat, w_cont, alr_ps


def drdid_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray, *, trim_level: float = 0.995,
                ps_cache: dict | None = None):
    """Traditional doubly robust DiD for panel data (Sant'Anna & Zhao 2020, eq. 3.1).

    ATT = E_n[w1 (dY - m(X))] / E_n[w1] - E_n[w0 (dY - m(X))] / E_n[w0], with
    w1 = D, w0 = p(X)(1-D)/(1-p(X)), p(X) a logit propensity score and m(X) the OLS fit of
    dY on X among controls. Controls with p(X) >= ``trim_level`` get weight 0 (DRDID).
    The influence function includes the estimation effects of the logit and OLS
    coefficients, exactly as ``DRDID::drdid_panel``.
    """
    ps_raw = _check_overlap_and_design(x, d, need_ps=True, need_reg=True, ps_cache=ps_cache)
    out, alr_ols = _ols_on_controls(x, d, dy)
    w_treat, w_cont, alr_ps = _ps_pieces(x, d, ps_raw, trim_level)
    resid = dy - out
    att_treat = w_treat * resid
    att_cont = w_cont * resid
    mwt, mwc = w_treat.mean(), w_cont.mean()
    eta_treat = att_treat.mean() / mwt
    eta_cont = att_cont.mean() / mwc
    att = eta_treat - eta_cont

    m1 = (w_treat[:, None] * x).mean(axis=0)
    inf_treat = (att_treat - w_treat * eta_treat - alr_ols @ m1) / mwt
    m2 = ((w_cont * (resid - eta_cont))[:, None] * x).mean(axis=0)
    m3 = (w_cont[:, None] * x).mean(axis=0)
    inf_cont = (att_cont - w_cont * eta_cont + alr_ps @ m2 - alr_ols @ m3) / mwc
    return float(att), inf_treat - inf_cont


def ipw_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray, *, trim_level: float = 0.995,
              ps_cache: dict | None = None):
    """Normalised (Hajek) IPW DiD for panel data (Abadie 2005; DRDID ``std_ipw_did_panel``).

    ATT = E_n[w1 dY] / E_n[w1] - E_n[w0 dY] / E_n[w0], weights as in :func:`drdid_panel`;
    the influence function includes the logit estimation effect.
    """
    ps_raw = _check_overlap_and_design(x, d, need_ps=True, need_reg=False, ps_cache=ps_cache)
    w_treat, w_cont, alr_ps = _ps_pieces(x, d, ps_raw, trim_level)
    att_treat = w_treat * dy
    att_cont = w_cont * dy
    mwt, mwc = w_treat.mean(), w_cont.mean()
    eta_treat = att_treat.mean() / mwt
    eta_cont = att_cont.mean() / mwc
    inf_treat = (att_treat - w_treat * eta_treat) / mwt
    m2 = ((w_cont * (dy - eta_cont))[:, None] * x).mean(axis=0)
    inf_cont = (att_cont - w_cont * eta_cont + alr_ps @ m2) / mwc
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def reg_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray, *, ps_cache: dict | None = None):
    """Outcome-regression DiD for panel data (Heckman et al. 1997; DRDID ``reg_did_panel``).

    ATT = E_n[D (dY - m(X))] / E_n[D], m(X) the OLS fit of dY on X among controls; the
    influence function includes the OLS estimation effect. (``ps_cache`` is unused.)
    """
    _check_overlap_and_design(x, d, need_ps=False, need_reg=True)
    out, alr_ols = _ols_on_controls(x, d, dy)
    w = d.astype(float)
    mw = w.mean()
    eta_treat = (w * dy).mean() / mw
    eta_cont = (w * out).mean() / mw
    inf_treat = (w * dy - w * eta_treat) / mw
    m1 = (w[:, None] * x).mean(axis=0)
    inf_cont = (w * out - w * eta_cont + alr_ols @ m1) / mw
    return float(eta_treat - eta_cont), inf_treat - inf_cont
