r"""Randomization (placebo) inference for few treated units: Conley & Taber, Ferman & Pinto.

References
----------
* Conley, T. G. and Taber, C. R. (2011), "Inference with 'difference in differences' with
  a small number of policy changes", REStat 93(1), 113-125 (CT 2011).
* Ferman, B. and Pinto, C. (2019), "Inference in differences-in-differences with few
  treated groups and heteroskedasticity", REStat 101(3), 452-467 (FP 2019).
* Abadie, A., Diamond, A. and Hainmueller, J. (2010), "Synthetic control methods for
  comparative case studies", JASA 105(490), 493-505 (the placebo-in-space rank test).
* Imbens, G. W. and Rubin, D. B. (2015), *Causal Inference*, ch. 5 (inverting a
  randomization test into a confidence set under a constant additive effect).

Idea
----
With ``J`` treated units and ``N0`` never-treated controls, the error of a DiD-type
estimate, ``theta_hat - theta``, is driven by the treated units' own shocks, which a few
treated units cannot estimate (clustered standard errors fail). CT 2011 approximate its
distribution by the estimates that the same estimator produces on controls that were
given the treated units' start periods (placebo assignments): with exchangeable errors
those placebo estimates are draws of ``theta_hat - theta`` under the null.

Everything here works on :class:`PanelArrays` (outcome matrix ``N x T`` with NaN for a
missing cell, and each unit's first treated period) and an *estimator*: any callable
``PanelArrays -> float`` giving the effect of the panel's treated units. Adapters wrap
the project's estimators (:func:`etwfe_estimator`, :func:`twfe_estimator`,
:func:`frame_estimator` for any ``DataFrame -> DidResult``), and fast exact matrix
versions exist for the Monte Carlo (:func:`imputation_estimator` = ETWFE with
not-yet-treated controls, :func:`did_estimator` = ETWFE/CS with never-treated controls,
:func:`twfe_estimator`).

Placebo panels
--------------
* Overall effect (:func:`conley_taber`): the treated units are removed; a placebo
  assignment gives ``J`` distinct controls the treated units' first periods (control
  ``c_k`` takes the start of treated unit ``k``); the estimator runs on that panel of
  ``N0`` units. All ``N0! / (N0-J)!`` assignments when there are at most ``n_placebo``
  of them, else ``n_placebo`` assignments drawn with ``default_rng(seed)``.
* One treated unit ``j`` (:func:`placebo_in_space`): the estimate is the estimator on
  the panel of the controls plus ``j`` alone (the other treated units removed); the
  placebo for control ``c`` is the estimator on the controls with ``c`` given ``j``'s
  start. Every control is used once (``N0`` placebos).

Treated and placebo estimates are thus computed alike (``N0`` vs ``N0 - 1`` or ``N0 - J``
controls, as in CT 2011, whose asymptotics are in ``N0``). A placebo estimate that is not
finite (e.g. a control with no observed month before the start it was given, possible
for ``lead_time_days``) is left out; ``n_placebo`` counts the ones used.

p-value and interval (test inversion under a constant additive effect)
---------------------------------------------------------------------
For ``H0: theta = delta`` the treated units' outcomes net of the effect are
``y - delta * D``; every estimator here is shift-equivariant in that sense
(``theta_hat(y - delta D) = theta_hat - delta``; OLS/imputation/DiD are linear with
``D``'s coefficient, SDID's weights do not use treated post-period outcomes), and the
placebo panels contain no treated unit, so their distribution does not depend on
``delta``. With ``R`` placebo estimates ``theta*_r`` and ``x = theta_hat - delta``:

* ``tails="symmetric"`` (default): ``p(delta) = (1 + #{r: |theta*_r| >= |x|}) / (1 + R)``;
  the set ``{delta: p(delta) > alpha}`` is ``[theta_hat - a_(m), theta_hat + a_(m)]``
  with ``a_(m)`` the ``m``-th largest ``|theta*_r|``, ``m = floor(alpha (1+R) - 1) + 1``.
* ``tails="equal"`` (CT 2011's interval): ``p = min(1, 2 min(P_lo, P_hi))`` with
  ``P_lo = (1 + #{theta*_r <= x}) / (1 + R)``, ``P_hi`` likewise with ``>=``; the set is
  ``[theta_hat - l_(m'), theta_hat - s_(m')]``, ``l``/``s`` the ``m'``-th largest /
  smallest placebo, ``m' = floor(alpha/2 (1+R) - 1) + 1``.

If ``m <= 0`` (too few placebos for the level: ``R + 1 < 1/alpha``, or ``2/alpha`` for
``equal``) the interval is the whole line. ``(1 + #...)/(1 + R)`` counts the observed
statistic among the draws, so the test has level ``alpha`` exactly under exchangeability
when all assignments are used (Abadie et al. 2010).

Heteroskedasticity (FP 2019)
----------------------------
CT 2011 need the treated and control errors to be identically distributed. In a country
panel they are not: a country with large flows has a noisier outcome. FP 2019 rescale
the placebo residuals by an estimate of each unit's error variance. Here
(``rescale=True``): a two-way fixed-effects fit ``y_it = a_i + g_t + e_it`` on the
untreated cells (controls, and treated units before their start; the same fit as
:func:`imputation_estimator`) gives residuals; a unit's scale is
``s_i = sqrt(sum_{t < g} e_it^2 / n)`` over the pre-period window ``t < g`` of the
treated unit ``k`` it represents (``n - 1`` in the denominator for ``k`` itself, whose
effect ``a_k`` is estimated from that window only). A control ``c`` standing in for
``k`` enters its placebo panel as ``a_c + g_t + (s_k / s_c) e_ct`` for every ``t``, so
its noise has the treated unit's scale; the estimator is then rerun as usual. Controls
with ``s_c = 0`` (no variation in the window) cannot be rescaled and are left out of the
placebo draws (recorded in ``n_placebo``). This is FP 2019's correction with the
pre-period residual variance as the variance model (their group-size model
``var ~ 1/M_j`` needs micro-data sizes, which a country-month panel lacks).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable
from mipa.estimators import ols
from mipa.estimators.results import DidResult, estimate_row

__all__ = [
    "Estimator",
    "PanelArrays",
    "RandomizationResult",
    "conley_taber",
    "did_estimator",
    "etwfe_estimator",
    "frame_estimator",
    "imputation_estimator",
    "invert_rank_test",
    "placebo_assignments",
    "placebo_in_space",
    "placebo_in_space_all",
    "rank_p_value",
    "twfe_estimator",
    "twoway_residuals",
]

Tails = Literal["symmetric", "equal"]
INFERENCE = "randomization_conley_taber"
DEFAULT_SEED = 20260701


# --------------------------------------------------------------------------- panel
@dataclass(frozen=True)
class PanelArrays:
    """A unit x period outcome matrix and each unit's first treated period.

    ``y``: ``N x T`` floats, NaN where the outcome is missing. ``first_treat``: length
    ``N``, the first treated period (a value of ``periods``) or ``inf`` when never
    treated within the window. ``units``/``periods``: labels, ``periods`` sorted.
    """

    y: np.ndarray
    first_treat: np.ndarray
    units: np.ndarray
    periods: np.ndarray

    @classmethod
    def from_frame(
        cls, panel: pd.DataFrame, *, outcome: str, unit: str, period: str, first_treat: str
    ) -> PanelArrays:
        """Pivot a long panel. ``first_treat`` 0, NaN or after the last period = never treated."""
        if panel.duplicated([unit, period]).any():
            raise ValueError("panel has more than one row per unit and period")
        wide = panel.pivot(index=unit, columns=period, values=outcome).sort_index(axis=1)
        g = pd.to_numeric(panel.groupby(unit)[first_treat].first(), errors="raise").astype(float)
        if (panel.groupby(unit)[first_treat].nunique(dropna=False) > 1).any():
            raise ValueError(f"{first_treat!r} must be constant within each unit")
        g = g.reindex(wide.index)
        periods = wide.columns.to_numpy()
        g = g.where(~(g.isna() | (g == 0) | (g > periods.max())), np.inf)
        return cls(
            y=wide.to_numpy(dtype=float),
            first_treat=g.to_numpy(dtype=float),
            units=wide.index.to_numpy(),
            periods=periods,
        )

    @property
    def treated(self) -> np.ndarray:
        """Mask of units treated within the window."""
        return np.isfinite(self.first_treat)

    @property
    def treatment(self) -> np.ndarray:
        """``N x T`` 0/1 matrix ``D_it = 1[t >= first_treat_i]``."""
        return (self.periods[None, :] >= self.first_treat[:, None]).astype(float)

    @property
    def balanced(self) -> bool:
        return bool(np.isfinite(self.y).all())

    def treated_position(self, unit: Any) -> int:
        """Row of treated ``unit``; KeyError if it is not in the panel, ValueError if untreated."""
        pos = np.flatnonzero(self.units == unit)
        if pos.size != 1:
            raise KeyError(f"unit {unit!r} not in the panel")
        if not self.treated[pos[0]]:
            raise ValueError(f"unit {unit!r} is not treated")
        return int(pos[0])

    def select(self, rows: np.ndarray | Sequence[int]) -> PanelArrays:
        """The panel of the given unit rows (index array or boolean mask)."""
        idx = np.asarray(rows)
        return replace(self, y=self.y[idx], first_treat=self.first_treat[idx], units=self.units[idx])

    def with_first_treat(self, first_treat: np.ndarray) -> PanelArrays:
        return replace(self, first_treat=np.asarray(first_treat, dtype=float))

    def to_frame(
        self, *, outcome: str = "y", unit: str = "unit", period: str = "period",
        first_treat: str = "first_treat", treatment: str = "treated",
    ) -> pd.DataFrame:
        """Long panel (missing cells left out); never treated as ``first_treat = 0``."""
        N, T = self.y.shape
        ft = np.where(np.isfinite(self.first_treat), self.first_treat, 0.0)
        df = pd.DataFrame(
            {
                unit: np.repeat(self.units, T),
                period: np.tile(self.periods, N),
                outcome: self.y.ravel(),
                first_treat: np.repeat(ft, T),
                treatment: self.treatment.ravel(),
            }
        )
        return df[np.isfinite(df[outcome].to_numpy())].reset_index(drop=True)


Estimator = Callable[[PanelArrays], float]


# --------------------------------------------------------------------------- estimators
def twoway_residuals(pa: PanelArrays, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS of ``y_it = a_i + g_t`` on the cells in ``cells`` (``N x T`` bool), exactly.

    Eliminating ``a_i = mean_{t in O_i}(y_it - g_t)`` leaves the ``T x T`` normal equations
    ``S g = r`` with ``S = diag(sum_i O_it) - sum_i o_i o_i' / n_i`` and
    ``r = sum_i (o_i y_i - o_i (o_i'y_i) / n_i)`` (``o_i`` = indicator of unit ``i``'s cells,
    ``n_i`` their number); ``S`` has the constant in its null space, so ``(S + 11'/T) g = r``
    picks the solution with ``sum g = 0`` (the cells must connect all periods).
    Returns ``a`` (NaN for a unit with no cell), ``g`` (NaN for a period with no cell)
    and the residual matrix (NaN outside ``cells``). Exact on unbalanced panels.

    Solved by :func:`_twoway_effects`: when most units have every period (the placebo
    draws of the randomization tests: only the placebo units lose their post months) the
    ``F`` units with all ``T`` cells add ``F (I - 11'/T)`` to ``S``, so
    ``S + 11'/T = diag(d) + U C U'`` with ``U = [1, o_j]`` over the ``m`` other units and
    Woodbury's identity solves it in ``O(T m^2)`` instead of ``O(N T^2 + T^3)``.
    """
    O = cells & np.isfinite(pa.y)
    a, g = _twoway_effects(pa.y, O)
    resid = np.where(O, pa.y - a[:, None] - g[None, :], np.nan)
    return a, g, resid


def _twoway_effects(y: np.ndarray, O: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``g`` of :func:`twoway_residuals` on the observed cells ``O`` (bool)."""
    T = y.shape[1]
    Yo = np.where(O, y, 0.0)
    n_i = O.sum(axis=1)
    has = n_i > 0
    full = n_i == T
    n_full = int(full.sum())
    partial = has & ~full
    a = np.full(y.shape[0], np.nan)
    g = np.full(T, np.nan)
    ybar = Yo[has].sum(axis=1) / n_i[has]
    if n_full >= 1 and int(partial.sum()) + 1 <= T // 4:
        g = _low_rank_effects(Yo[full].sum(axis=0), float(Yo[full].sum()), n_full, O[partial], Yo[partial])
        a[has] = ybar - (O[has] @ g) / n_i[has]
        return a, g
    col = O.any(axis=0)
    Oi, Yi, ni = O[has][:, col].astype(float), Yo[has][:, col], n_i[has]
    S = np.diag(Oi.sum(axis=0)) - (Oi / ni[:, None]).T @ Oi
    r = Yi.sum(axis=0) - Oi.T @ ybar
    Tc = int(col.sum())
    g_col = np.linalg.solve(S + np.full((Tc, Tc), 1.0 / Tc), r)
    g[col] = g_col
    a[has] = ybar - (Oi @ g_col) / ni
    return a, g


def _low_rank_effects(
    full_colsum: np.ndarray, full_total: float, n_full: int, Op: np.ndarray, Yp: np.ndarray
) -> np.ndarray:
    """``g`` of :func:`twoway_residuals` from the ``n_full`` complete units' column sums and
    total and the other units' cells ``Op`` (bool) and values ``Yp`` (0 off their cells):
    Woodbury's identity on ``diag(d) + U C U'`` (see :func:`twoway_residuals`)."""
    T = full_colsum.size
    n_p = Op.sum(axis=1)
    Opf = Op.astype(float)
    r = full_colsum - full_total / T + Yp.sum(axis=0) - Opf.T @ (Yp.sum(axis=1) / n_p)
    d = n_full + Opf.sum(axis=0)
    c0 = -(n_full - 1) / T  # the full units' -F 11'/T and the +11'/T that fixes sum g = 0
    U = Opf.T if c0 == 0 else np.column_stack([np.ones(T), Opf.T])
    c_inv = -n_p.astype(float) if c0 == 0 else np.concatenate([[1.0 / c0], -n_p])
    DU = U / d[:, None]
    Dr = r / d
    return Dr - DU @ np.linalg.solve(np.diag(c_inv) + U.T @ DU, U.T @ Dr)


def imputation_att(pa: PanelArrays) -> tuple[float, np.ndarray]:
    """Imputation estimator (Borusyak, Jaravel & Spiess 2024) = ETWFE, not-yet-treated.

    Fit ``y = a_i + g_t`` on the untreated observed cells (:func:`twoway_residuals`),
    impute ``tau_it = y_it - a_i - g_t`` on the treated observed cells. Returns the mean
    over all treated cells (ETWFE's ``simple`` aggregate) and each treated unit's mean
    (NaN for untreated units). Wooldridge (2021) shows the ETWFE regression with a dummy
    per treated (cohort, period) cell gives the same numbers: exactly with
    ``cohort="unit"``, and with ``cohort="group"`` on a balanced panel.
    """
    D = pa.treatment > 0
    obs = np.isfinite(pa.y)
    a, g = _twoway_effects(pa.y, obs & ~D)
    tau = np.where(D & obs, pa.y - a[:, None] - g[None, :], np.nan)
    cells = D & obs
    if not cells.any():
        raise NotEstimable("no_post_treatment_data", "no observed treated cell")
    n_cells = cells.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_unit = np.where(cells, tau, 0.0).sum(axis=1) / n_cells
    per_unit[n_cells == 0] = np.nan
    return float(tau[cells].mean()), per_unit


def imputation_estimator() -> Estimator:
    """Fast exact ETWFE (not-yet-treated controls, ``simple`` aggregate); see :func:`imputation_att`.

    About 1 ms on 86 x 120 (a ``T x T`` solve), against ~100 ms for the regression.
    Requires no unit treated in the first period and an untreated cell in every period
    (true with never-treated controls). A panel whose treated units have no observed
    cell after their start (a placebo control without a lead time after the start it was
    given) gives NaN, which the placebo tests leave out. Its ``placebo`` attribute
    (:class:`_PlaceboImputation`) computes the placebo draws of the randomization tests
    from the controls' sums.
    """

    def estimate(pa: PanelArrays) -> float:
        if not (np.isfinite(pa.y) & (pa.treatment > 0)).any():
            return np.nan
        return imputation_att(pa)[0]

    estimate.placebo = _PlaceboImputation  # type: ignore[attr-defined]
    return estimate


class _PlaceboImputation:
    """:func:`imputation_att` for placebo draws on one controls-only panel ``base``.

    A draw gives ``J`` controls starts (and, for Ferman-Pinto, new outcome rows); every
    other control keeps all its cells untreated. The complete controls' column sums are
    computed once, so a draw costs ``O(J T)`` plus a small solve, not ``O(N T)``; draws the
    low-rank solve does not fit (many incomplete controls) use :func:`imputation_att`.
    Equal to the full computation up to rounding (tests).
    """

    def __init__(self, base: PanelArrays) -> None:
        self.base = base
        obs = np.isfinite(base.y)
        self.obs = obs
        self.Yo = np.where(obs, base.y, 0.0)
        T = base.y.shape[1]
        self.full = obs.sum(axis=1) == T
        self.colsum = self.Yo[self.full].sum(axis=0)
        self.total = float(self.Yo[self.full].sum())
        self.partial = np.flatnonzero(~self.full & obs.any(axis=1))

    def __call__(self, rows: np.ndarray, starts: np.ndarray, y_rows: np.ndarray | None = None) -> float:
        """The estimate with control ``rows[k]`` treated from ``starts[k]`` (outcome row
        ``y_rows[k]``, default its own)."""
        base, T = self.base, self.base.y.shape[1]
        rows = np.asarray(rows, dtype=np.intp)
        y_r = base.y[rows] if y_rows is None else np.asarray(y_rows, dtype=float)
        obs_r = np.isfinite(y_r)
        treated = obs_r & (base.periods[None, :] >= np.asarray(starts, dtype=float)[:, None])
        if not treated.any():
            return np.nan
        others = np.setdiff1d(self.partial, rows, assume_unique=True)
        full_r = rows[self.full[rows]]
        n_full = int(self.full.sum()) - full_r.size
        if n_full < 1 or others.size + rows.size + 1 > T // 4:
            ft = np.full(base.y.shape[0], np.inf)
            ft[rows] = starts
            y = base.y if y_rows is None else base.y.copy()
            if y_rows is not None:
                y[rows] = y_r
            return imputation_att(replace(base, y=y, first_treat=ft))[0]
        untreated = obs_r & ~treated
        Op = np.vstack([self.obs[others], untreated])
        Yp = np.vstack([self.Yo[others], np.where(untreated, y_r, 0.0)])
        keep = Op.any(axis=1)
        g = _low_rank_effects(self.colsum - self.Yo[full_r].sum(axis=0), self.total - float(self.Yo[full_r].sum()),
                              n_full, Op[keep], Yp[keep])
        n_r = untreated.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            a_r = (np.where(untreated, y_r, 0.0).sum(axis=1) - untreated @ g) / n_r  # NaN without a cell
        tau = y_r - a_r[:, None] - g[None, :]
        return float(tau[treated].mean())


def did_estimator() -> Estimator:
    """Fast exact DiD against never-treated controls (ETWFE ``nevertreated`` = CS simple).

    ``tau_it = (y_it - y_i,g-1) - (ybar_Ct - ybar_C,g-1)`` for every treated cell, ``C``
    the never-treated units, averaged over the treated cells (ETWFE's ``simple``
    aggregate with never-treated controls: its post cells are CS 2021's never-treated
    ATT(g, t)). Balanced panels only (raises otherwise: with gaps the regression and the
    2x2 differ); periods must be consecutive.
    """

    def estimate(pa: PanelArrays) -> float:
        if not pa.balanced:
            raise ValueError("did_estimator needs a balanced panel")
        never = ~pa.treated
        cbar = pa.y[never].mean(axis=0)
        total, count = 0.0, 0
        for i in np.flatnonzero(pa.treated):
            k = int(np.searchsorted(pa.periods, pa.first_treat[i]))
            if k == 0:
                raise ValueError("a unit is treated in the first period")
            diff = (pa.y[i, k:] - pa.y[i, k - 1]) - (cbar[k:] - cbar[k - 1])
            total += diff.sum()
            count += diff.size
        return total / count

    return estimate


def twfe_estimator() -> Estimator:
    """Classic TWFE coefficient on ``D_it`` with unit and period effects (as :func:`twfe`).

    Uses :func:`mipa.estimators.ols.fit_within` on the observed cells directly (no
    DataFrame), so it equals ``twfe(...)``'s estimate; a few ms on 86 x 120.
    """

    def estimate(pa: PanelArrays) -> float:
        obs = np.isfinite(pa.y)
        u, t = np.nonzero(obs)
        fit = ols.fit_within(pa.y[obs], pa.treatment[obs][:, None], [u, t])
        return float(fit.coef[0])

    return estimate


def frame_estimator(
    fit: Callable[[pd.DataFrame], DidResult],
    extract: Callable[[DidResult], float] = lambda r: float(r.overall("simple").estimate),
) -> Estimator:
    """Adapter for any estimator on a long panel: ``pa -> extract(fit(pa.to_frame()))``.

    The frame has columns ``unit, period, y, first_treat`` (0 = never treated) and
    ``treated`` (``D_it``); ``fit`` must use those names.
    """

    def estimate(pa: PanelArrays) -> float:
        return float(extract(fit(pa.to_frame())))

    return estimate


def etwfe_estimator(
    control_group: Literal["notyettreated", "nevertreated"] = "notyettreated",
    aggregation: str = "simple",
    cohort: Literal["group", "unit"] = "group",
) -> Estimator:
    """:func:`mipa.estimators.etwfe.etwfe`'s overall effect (the exact regression, ~0.1 s).

    With one treated unit in the panel this is that unit's effect.
    """
    from mipa.estimators.etwfe import etwfe

    def fit(df: pd.DataFrame) -> DidResult:
        return etwfe(
            df, outcome="y", unit="unit", period="period", first_treat="first_treat",
            control_group=control_group, cohort=cohort,
        )

    return frame_estimator(fit, lambda r: float(r.overall(aggregation).estimate))


# --------------------------------------------------------------------------- rank test
def _kth(m: int, values: np.ndarray, largest: bool) -> float:
    """The ``m``-th largest (or smallest) value; NaN when ``m`` is out of range."""
    if m <= 0 or m > values.size:
        return np.nan
    s = np.sort(values)
    return float(s[-m] if largest else s[m - 1])


def rank_p_value(stat: float, placebo: np.ndarray, tails: Tails = "symmetric") -> float:
    """Randomization p-value of ``stat`` among the placebo statistics (module docstring)."""
    placebo = np.asarray(placebo, dtype=float)
    R = placebo.size
    if tails == "symmetric":
        return float((1 + np.sum(np.abs(placebo) >= abs(stat))) / (1 + R))
    if tails == "equal":
        lo = (1 + np.sum(placebo <= stat)) / (1 + R)
        hi = (1 + np.sum(placebo >= stat)) / (1 + R)
        return float(min(1.0, 2 * min(lo, hi)))
    raise ValueError(f"tails must be 'symmetric' or 'equal', not {tails!r}")


def invert_rank_test(
    estimate: float, placebo: np.ndarray, *, alpha: float = 0.05, tails: Tails = "symmetric",
    scale: float = 1.0,
) -> tuple[float, float]:
    """``{delta : p(delta) > alpha}`` for ``H0: theta = delta`` (constant additive effect).

    ``p(delta)`` is :func:`rank_p_value` of ``(estimate - delta) / scale`` among the
    placebo statistics (``scale`` is the treated unit's noise scale when the placebos are
    studentized; 1 otherwise). Closed form from the order statistics (module docstring);
    ``(-inf, inf)`` when there are too few placebos for the level.
    """
    placebo = np.asarray(placebo, dtype=float)
    R = placebo.size
    if tails == "symmetric":
        m = math.floor(alpha * (1 + R) - 1) + 1
        a = _kth(m, np.abs(placebo), largest=True)
        if np.isnan(a):
            return -np.inf, np.inf
        return estimate - scale * a, estimate + scale * a
    if tails == "equal":
        m = math.floor(alpha / 2 * (1 + R) - 1) + 1
        hi = _kth(m, placebo, largest=True)
        lo = _kth(m, placebo, largest=False)
        if np.isnan(hi):
            return -np.inf, np.inf
        return estimate - scale * hi, estimate - scale * lo
    raise ValueError(f"tails must be 'symmetric' or 'equal', not {tails!r}")


# --------------------------------------------------------------------------- assignments
def placebo_assignments(
    n_controls: int, n_treated: int, *, n_placebo: int = 999, seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, bool]:
    """``R x J`` array: row ``r`` gives, for each treated unit ``k``, the control taking its start.

    All ``N0!/(N0-J)!`` ordered assignments when there are at most ``n_placebo`` of them
    (returned in lexicographic order; ``exhaustive=True``), else ``n_placebo`` draws of
    ``J`` distinct controls from ``default_rng(seed)`` (the first ``J`` of a random
    permutation; repeats across draws are possible and harmless).
    """
    N0, J = int(n_controls), int(n_treated)
    if J > N0:
        raise NotEstimable("too_few_controls", f"{J} treated units but only {N0} controls")
    total = math.perm(N0, J)
    if total <= n_placebo:
        return np.array(list(itertools.permutations(range(N0), J)), dtype=np.int64).reshape(-1, J), True
    rng = np.random.default_rng(seed)
    out = np.empty((n_placebo, J), dtype=np.int64)
    for r in range(n_placebo):
        out[r] = rng.permutation(N0)[:J]
    return out, False


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class RandomizationResult:
    """A randomization test and interval for the effect of some treated units.

    ``placebo`` holds the placebo estimates (rescaled ones with ``rescale=True``).
    ``std_error`` is NaN: the interval comes from the placebo distribution, not from a
    standard error.
    """

    scope: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    placebo: np.ndarray = field(repr=False)
    n_placebo: int
    exhaustive: bool
    n_obs: int
    n_clusters: int
    n_treated_clusters: int
    tails: str
    rescale: bool
    alpha: float
    null: float = 0.0
    inference: str = INFERENCE

    def row(self, aggregation: str = "simple") -> dict[str, Any]:
        """A row with the columns of :data:`mipa.estimators.results.ESTIMATE_COLUMNS`."""
        return estimate_row(self, aggregation, std_error=np.nan)


def _result(
    scope: str, estimate: float, placebo: np.ndarray, *, pa: PanelArrays, exhaustive: bool,
    n_treated: int, alpha: float, tails: Tails, rescale: bool, null: float,
) -> RandomizationResult:
    placebo = np.asarray(placebo, dtype=float)
    placebo = placebo[np.isfinite(placebo)]
    lo, hi = invert_rank_test(estimate, placebo, alpha=alpha, tails=tails)
    return RandomizationResult(
        scope=scope,
        estimate=float(estimate),
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=rank_p_value(estimate - null, placebo, tails),
        placebo=placebo,
        n_placebo=int(placebo.size),
        exhaustive=exhaustive,
        n_obs=int(np.isfinite(pa.y).sum()),
        n_clusters=int(pa.y.shape[0]),
        n_treated_clusters=int(n_treated),
        tails=tails,
        rescale=rescale,
        alpha=float(alpha),
        null=float(null),
    )


# --------------------------------------------------------------------------- rescaling
@dataclass(frozen=True)
class _Scales:
    """Two-way fit on untreated cells, for the FP 2019 rescaling."""

    a: np.ndarray
    g: np.ndarray
    resid: np.ndarray


def _scales(pa: PanelArrays) -> _Scales:
    """The fit and its residuals; residuals at rounding level (a unit the two-way fit
    reproduces exactly, e.g. one with a single observed month) are set to exactly zero, so
    that unit has no scale and is no FP placebo, whatever the arithmetic's rounding."""
    obs = np.isfinite(pa.y)
    a, g, resid = twoway_residuals(pa, obs & (pa.treatment == 0))
    scale = np.nanmax(np.abs(resid)) if np.isfinite(resid).any() else 0.0
    resid = np.where(np.abs(resid) <= 1e-9 * max(scale, 1.0), 0.0, resid)  # NaN stays NaN
    return _Scales(a=a, g=g, resid=resid)


def _window_sd(resid: np.ndarray, window: np.ndarray, ddof: int) -> np.ndarray:
    """``sqrt(sum_{t in window} e^2 / (n - ddof))`` per row of ``resid``."""
    e = np.where(window[None, :] & np.isfinite(resid), resid, 0.0)
    n = (window[None, :] & np.isfinite(resid)).sum(axis=1) - ddof
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((e**2).sum(axis=1) / n)


def _rescaled_outcome(sc: _Scales, rows: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``a_c + g_t + factor_c * e_ct`` for the given rows (NaN stays NaN)."""
    return sc.a[rows, None] + sc.g[None, :] + factor[:, None] * sc.resid[rows]


# --------------------------------------------------------------------------- tests
def _placebo_path(estimator: Estimator, base: PanelArrays) -> Callable[..., float] | None:
    """The estimator's own placebo-draw computation on ``base`` when it has one
    (:func:`imputation_estimator`), else None (each draw re-runs the estimator)."""
    factory = getattr(estimator, "placebo", None)
    return None if factory is None else factory(base)


def conley_taber(
    pa: PanelArrays,
    estimator: Estimator,
    *,
    n_placebo: int = 999,
    seed: int = DEFAULT_SEED,
    alpha: float = 0.05,
    tails: Tails = "symmetric",
    rescale: bool = False,
    null: float = 0.0,
    scope: str = "overall",
) -> RandomizationResult:
    """Overall effect of all treated units with CT 2011 placebo inference.

    ``estimate = estimator(pa)``; the placebo estimates come from the controls-only panel
    with the treated units' starts given to ``J`` controls (:func:`placebo_assignments`);
    p-value for ``H0: theta = null`` and interval by inverting the rank test (module
    docstring). ``rescale=True`` applies the FP 2019 correction. Cost: ``R + 1`` estimator
    calls.
    """
    treated = np.flatnonzero(pa.treated)
    controls = np.flatnonzero(~pa.treated)
    if treated.size == 0:
        raise NotEstimable("no_treated_units", "no treated unit")
    estimate = float(estimator(pa))
    assign, exhaustive = placebo_assignments(controls.size, treated.size, n_placebo=n_placebo, seed=seed)
    base = pa.select(controls)
    starts = pa.first_treat[treated]
    if rescale:
        sc = _scales(pa)
        s_treated = np.array(
            [_window_sd(sc.resid[[k]], pa.periods < pa.first_treat[k], ddof=1)[0] for k in treated]
        )
        s_ctrl = np.vstack(
            [_window_sd(sc.resid[controls], pa.periods < pa.first_treat[k], ddof=0) for k in treated]
        )  # J x N0
    fast = _placebo_path(estimator, base)
    placebo = np.full(assign.shape[0], np.nan)
    for r, row in enumerate(assign):
        y_rows = None
        if rescale:
            sd = s_ctrl[np.arange(treated.size), row]
            if not np.all(sd > 0):
                continue
            y_rows = _rescaled_outcome(sc, controls[row], s_treated / sd)
        if fast is not None:
            placebo[r] = fast(row, starts, y_rows)
            continue
        ft = np.full(controls.size, np.inf)
        ft[row] = starts
        y = base.y
        if y_rows is not None:
            y = base.y.copy()
            y[row] = y_rows
        placebo[r] = estimator(replace(base, y=y, first_treat=ft))
    return _result(
        scope, estimate, placebo, pa=pa, exhaustive=exhaustive, n_treated=treated.size,
        alpha=alpha, tails=tails, rescale=rescale, null=null,
    )


def placebo_in_space(
    pa: PanelArrays,
    estimator: Estimator,
    unit: Any,
    *,
    alpha: float = 0.05,
    tails: Tails = "symmetric",
    rescale: bool = False,
    null: float = 0.0,
) -> RandomizationResult:
    """Effect of one treated unit, tested against every control placed at its start.

    ``estimate`` = the estimator on the controls plus ``unit``; placebo ``c`` = the
    estimator on the controls with ``c`` given ``unit``'s first period (``N0`` placebos,
    all of them, so ``exhaustive``). p-value = rank of ``|estimate - null|`` among the
    ``|placebo|`` (Abadie et al. 2010, CT 2011); interval by test inversion under a
    constant additive effect. ``rescale=True``: FP 2019 (each placebo control brought to
    ``unit``'s pre-period residual scale). Cost: ``N0 + 1`` estimator calls.
    """
    j = pa.treated_position(unit)
    controls = np.flatnonzero(~pa.treated)
    own = pa.select(np.append(controls, j))
    estimate = float(estimator(own))
    base = pa.select(controls)
    if rescale:
        sc = _scales(own)
        window = pa.periods < pa.first_treat[j]
        s_j = _window_sd(sc.resid[[-1]], window, ddof=1)[0]
        s_c = _window_sd(sc.resid[:-1], window, ddof=0)
    fast = _placebo_path(estimator, base)
    placebo = np.full(controls.size, np.nan)
    for c in range(controls.size):
        y_rows = None
        if rescale:
            if not s_c[c] > 0:
                continue
            y_rows = _rescaled_outcome(sc, np.array([c]), np.array([s_j / s_c[c]]))
        if fast is not None:
            placebo[c] = fast(np.array([c]), pa.first_treat[[j]], y_rows)
            continue
        ft = np.full(controls.size, np.inf)
        ft[c] = pa.first_treat[j]
        y = base.y
        if y_rows is not None:
            y = base.y.copy()
            y[c] = y_rows[0]
        placebo[c] = estimator(replace(base, y=y, first_treat=ft))
    return _result(
        str(unit), estimate, placebo, pa=own, exhaustive=True, n_treated=1,
        alpha=alpha, tails=tails, rescale=rescale, null=null,
    )


def placebo_in_space_all(
    pa: PanelArrays, estimator: Estimator, **options: Any
) -> list[RandomizationResult]:
    """:func:`placebo_in_space` for every treated unit, in panel order."""
    return [placebo_in_space(pa, estimator, u, **options) for u in pa.units[pa.treated]]
