"""Wooldridge's extended two-way fixed effects (ETWFE) difference-in-differences.

Reference: Wooldridge, J. M. (2021), "Two-way fixed effects, the two-way Mundlak
regression, and difference-in-differences estimators", SSRN 3906345, sections 6-7;
implemented as Stata ``jwdid`` (Rios-Avila) and ``xthdidregress twfe``, and R ``etwfe``
(McDermott). The annex of the evaluation used ``xthdidregress``.

Regression (one row per unit ``i`` and period ``t``, rows with a missing outcome or
covariate dropped)::

    y_it = a_i + l_t + sum_{(c,s) in cells} tau_cs * 1[cohort_i = c, t = s]
           [+ x_it'(k + k_t + k_g(i)) + sum_cells 1[...] * (x_it - xbar_c)' d_cs] + e_it

* ``control_group="notyettreated"`` (``jwdid`` / ``etwfe`` default): cells are the
  post-treatment cells ``s >= g_c``; the not-yet-treated rows of later cohorts and the
  never treated identify the period effects.
* ``control_group="nevertreated"``: cells are all ``s != r_c``, with ``r_c`` the last
  period before ``g_c`` (``g - 1`` with consecutive periods); every cohort row except its
  reference period is saturated, so only the never treated identify the period effects
  and a post cell's ``tau`` is exactly Callaway & Sant'Anna's (2021) unconditional
  never-treated ``ATT(g, t)`` (``(ybar_gt - ybar_g,g-1) - (ybar_Ct - ybar_C,g-1)``); the
  pre cells are the event-study leads.
* ``cohort="group"``: a cohort is the set of units with the same first treated period.
  ``cohort="unit"``: every treated unit is its own cohort (unit x period cells), for the
  per-country effects of the annex; Egypt and Nigeria share a start but are reported
  apart. Without covariates the unit cells of a cohort average (by rows) to its group
  cell, so the ``simple`` effect is the same for both cohort definitions.
* Covariates ``x`` (Wooldridge 2021, eq. 6.33; ``jwdid``/``etwfe``): ``x``, ``x`` x period
  dummies and ``x`` x cohort dummies enter as controls (the unit fixed effects absorb
  whatever is time-invariant), and each cell dummy is also interacted with ``x``
  demeaned within its cohort (``xbar_c`` = mean of ``x`` over the cohort's rows in the
  sample). A cell's effect is then ``tau_cs + d_cs'(xbar_cs - xbar_c)``, the average over
  the cell's rows of the derivative in the treatment (Stata ``margins`` after ``jwdid``).

Aggregates are linear combinations ``w'b`` of the coefficients with delta-method
variance ``w'Vw`` (exact, as ``w`` does not depend on ``b``):

* ``simple``: average over all treated post-treatment rows, i.e. post cells weighted by
  their number of observed rows (``jwdid estat simple``, ``etwfe emfx("simple")``).
* ``group``: per cohort, its post cells weighted by rows; ``overall`` = cohorts weighted
  by their number of units (Callaway & Sant'Anna's ``P(G = g)``).
* ``dynamic``: per event time ``e = t - g``, cells weighted by rows (``estat event``,
  ``emfx("event")``); ``overall`` = unweighted mean of the ``e >= 0`` effects (as CS).
  The per-``e`` effects are the event-study table; with never-treated controls it has
  the leads ``e < -1`` and the reference ``e = -1`` (estimate 0, no standard error).
* ``calendar``: per period, the post cells of that period weighted by rows
  (``estat calendar``); ``overall`` = unweighted mean over periods (as CS). Its
  per-period rows carry the period (as text) in ``scope``.

Standard errors are clustered by unit with ``reghdfe``'s small-sample factor
``(N-1)/(N-K) * G/(G-1)``: the unit fixed effects are nested in the clusters and not
counted, the period effects count all ``T`` levels (reghdfe's ``dof(all)`` once the unit
effects are set aside as nested), so ``K = rank + T``. This reproduces ``jwdid``'s
standard errors to the published digits. R ``etwfe`` uses cohort fixed effects, which
are not nested in units, so fixest's ``K`` is a few larger and its standard errors a
few parts in 10^4 larger; linearmodels by default counts all absorbed effects. Intervals
and p-values use t with ``G-1`` degrees of freedom, as ``reghdfe``/``jwdid`` report (R
``etwfe`` via ``marginaleffects`` reports normal intervals).

Unbalanced panels: rows with a missing outcome are dropped, the within transformation is
done by alternating projections on the observed rows (exact, not a balanced-panel
shortcut), and every weight above counts observed rows only. Rows alone in their unit or
period are dropped as reghdfe drops singletons; units treated in the first period (no
untreated row) are dropped; a ``first_treat`` after the last period counts as never
treated. Without never-treated units (not-yet-treated controls only) the last cohort
serves as the control group and the rows from its start on are dropped, as R ``etwfe``
does. ``settings`` records all of these.

:func:`etwfe_fit` prepares the panel, fits once and keeps the cells' covariance; the
tables (:func:`etwfe`), the event-study covariance (pre-trend tests, HonestDiD), the
wild cluster bootstrap and the API's delta-method aggregation all read that one
:class:`EtwfeFit`. :func:`prepare_rows`, :func:`drop_singleton_rows`, :func:`cell_table`,
:func:`aggregation_matrix` and :func:`cohort_labels` are the sample, cell and weight rules
that Poisson ETWFE (:mod:`mipa.estimators.poisson_etwfe`) shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from mipa.estimability import NotEstimable, status_columns
from mipa.estimators import _ols
from mipa.estimators.results import (
    ATT_GT_COLUMNS,
    ESTIMATE_COLUMNS,
    DidResult,
    estimate_frame,
    event_study_frame,
    plain,
)

__all__ = [
    "Aggregation",
    "Cohort",
    "ControlGroup",
    "EtwfeFit",
    "aggregation_matrix",
    "cell_table",
    "cohort_labels",
    "drop_singleton_rows",
    "etwfe",
    "etwfe_fit",
    "prepare_rows",
    "scope_label",
]

ControlGroup = Literal["notyettreated", "nevertreated"]
Cohort = Literal["group", "unit"]
INFERENCE = "cluster_unit"


# --------------------------------------------------------------------------- preparation
def prepare_rows(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    covariates: Sequence[str],
    control_group: ControlGroup,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate the panel and return the regression rows with a numeric ``_g`` column,
    and a dict saying what was dropped (for the run settings).

    Shared with :mod:`mipa.estimators.poisson_etwfe`, so both estimators apply the same
    sample rules. ``_g`` is the first treated period, ``inf`` for never treated (``first_treat`` 0,
    NaN, or after the last period). Units treated in or before the first period have no
    untreated row and are dropped (no cell of theirs is identified).
    """
    cols = [unit, period, outcome, first_treat, *covariates]
    missing = [c for c in cols if c not in panel.columns]
    if missing:
        raise KeyError(f"columns not in panel: {missing}")
    df = panel[list(dict.fromkeys(cols))].copy()
    if df[[unit, period]].isna().any().any():
        raise ValueError("unit and period must not be missing")
    if df.duplicated([unit, period]).any():
        raise ValueError("panel has more than one row per unit and period")
    if not pd.api.types.is_integer_dtype(df[period]):
        as_int = df[period].astype("int64")
        if not np.array_equal(as_int.to_numpy(), df[period].to_numpy()):
            raise ValueError(f"period column {period!r} must hold integers")
        df[period] = as_int
    g = pd.to_numeric(df[first_treat], errors="raise").astype(float)
    if (g.groupby(df[unit]).nunique(dropna=False) > 1).any():
        raise ValueError(f"{first_treat!r} must be constant within each unit")
    t_min, t_max = df[period].min(), df[period].max()
    g = g.where(~(g.isna() | (g == 0) | (g > t_max)), np.inf)
    df["_g"] = g.to_numpy()
    info: dict[str, Any] = {}
    always = df.loc[df["_g"] <= t_min, unit].unique()
    if len(always):
        info["dropped_always_treated_units"] = [plain(u) for u in always]
        df = df[df["_g"] > t_min]
    n_rows = len(df)
    df = df.dropna(subset=[outcome, *covariates])
    info["dropped_missing_rows"] = int(n_rows - len(df))
    never = np.isinf(df["_g"])
    if not never.any():
        if control_group == "nevertreated":
            raise NotEstimable("no_control_units", "no never-treated country is observed: use not-yet-treated controls")
        # The last cohort is the control group until it is treated (R etwfe's gref).
        last = df["_g"].max()
        df = df[df[period] < last].copy()
        df.loc[df["_g"] == last, "_g"] = np.inf
        info["last_cohort_as_control"] = plain(last)
    if not np.isfinite(df["_g"]).any():
        raise NotEstimable("no_treated_units", "no treated unit has an observed untreated period")
    return df.reset_index(drop=True), info


def drop_singleton_rows(
    df: pd.DataFrame, *, unit: str, period: str, info: dict[str, Any]
) -> tuple[pd.DataFrame, np.ndarray, int, np.ndarray, int]:
    """Drop the rows alone in their unit or period (iteratively, as reghdfe drops
    singletons), counted in ``info["dropped_singleton_rows"]``; returns the rows kept and
    their unit and period codes with the numbers of levels.

    Shared with :mod:`mipa.estimators.poisson_etwfe`, which applies the same rule to the
    rows of :func:`prepare_rows`.
    """
    unit_codes, n_units = _ols.factorize(df[unit].to_numpy())
    period_codes, n_periods = _ols.factorize(df[period].to_numpy())
    keep = _ols.drop_singletons([unit_codes, period_codes])
    if not keep.all():
        info["dropped_singleton_rows"] = int((~keep).sum())
        df = df[keep].reset_index(drop=True)
        unit_codes, n_units = _ols.factorize(df[unit].to_numpy())
        period_codes, n_periods = _ols.factorize(df[period].to_numpy())
    return df, unit_codes, int(n_units), period_codes, int(n_periods)


def scope_label(v: Any) -> str:
    """Scope text for a group or period value: ``2004`` rather than ``2004.0``."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


# --------------------------------------------------------------------------- design
def cell_table(
    df: pd.DataFrame,
    *,
    unit: str,
    period: str,
    cohort: Cohort,
    control_group: ControlGroup,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Cell index of every row (-1 when in no cell) and the table of cells.

    ``df`` is :func:`prepare_rows`'s output. With ``"notyettreated"`` the cells are the
    treated rows from their start on; with ``"nevertreated"`` every treated row but the
    one of the last period before the start (the reference).

    The cell table has one row per (cohort key, period) with ``key``, ``g``, ``period``,
    ``event_time``, ``n_obs`` (observed rows) and ``units`` (set of units in the cell).
    """
    g = df["_g"].to_numpy()
    t = df[period].to_numpy()
    treated = np.isfinite(g)
    if control_group == "notyettreated":
        in_cell = treated & (t >= g)
    else:
        periods = np.unique(t)
        ref = np.full(len(df), np.nan)
        gi = g[treated]
        pos = np.searchsorted(periods, gi, side="left") - 1  # last period before g
        ref_t = np.where(pos >= 0, periods[np.clip(pos, 0, None)], -np.inf)
        ref[treated] = ref_t
        in_cell = treated & (t != ref)
    if not in_cell.any():
        raise NotEstimable("no_post_treatment_data", "no observed row of a treated unit falls in a treatment cell")
    key = df[unit].to_numpy() if cohort == "unit" else g
    cell_frame = pd.DataFrame(
        {"key": key[in_cell], "g": g[in_cell], "period": t[in_cell], "u": df[unit].to_numpy()[in_cell]}
    )
    codes, _ = pd.factorize(
        pd.MultiIndex.from_arrays([cell_frame["g"], cell_frame["key"], cell_frame["period"]]),
        sort=True,
    )
    cell_idx = np.full(len(df), -1, dtype=np.int64)
    cell_idx[in_cell] = codes
    # one pass over the rows sorted by cell (a groupby with a Python aggregate per cell
    # cost ~25 ms a fit, a fifth of the robustness grid's ETWFE time)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    first = order[starts]
    table = pd.DataFrame({
        "key": cell_frame["key"].to_numpy()[first],
        "g": cell_frame["g"].to_numpy()[first],
        "period": cell_frame["period"].to_numpy()[first],
        "n_obs": np.diff(np.r_[starts, codes.size]),
        "units": [frozenset(us) for us in np.split(cell_frame["u"].to_numpy()[order], starts[1:])],
    })
    table["event_time"] = (table["period"] - table["g"]).astype(np.int64)
    return cell_idx, table


def _design(
    df: pd.DataFrame,
    cell_idx: np.ndarray,
    n_cells: int,
    *,
    period: str,
    covariates: Sequence[str],
    cohort_key: np.ndarray,
) -> tuple[sparse.csc_matrix, list[tuple[str, int, str | None]], np.ndarray]:
    """Sparse design matrix, a description of its columns, and the cell-mean covariates.

    Columns: the cell dummies, then per covariate the cell x demeaned-covariate
    interactions, then the covariate, covariate x cohort-start and covariate x period
    controls. The third output is ``n_cells x n_covariates``: the mean over each cell's
    rows of the within-cohort demeaned covariate.
    """
    n = len(df)
    rows = np.flatnonzero(cell_idx >= 0)
    cols = cell_idx[rows]

    def block(r: np.ndarray, c: np.ndarray, v: np.ndarray, width: int) -> sparse.csc_matrix:
        return sparse.csc_matrix((v, (r, c)), shape=(n, width))

    blocks = [block(rows, cols, np.ones(rows.size), n_cells)]
    desc: list[tuple[str, int, str | None]] = [("cell", c, None) for c in range(n_cells)]
    xbar_cell = np.zeros((n_cells, len(covariates)))
    if covariates:
        counts = np.bincount(cols, minlength=n_cells).astype(float)
        key_codes, _ = pd.factorize(pd.Series(cohort_key))
        g = df["_g"].to_numpy()
        t_codes, n_t = _ols.factorize(df[period].to_numpy())
        g_codes, g_levels = pd.factorize(pd.Series(np.where(np.isfinite(g), g, np.nan)), sort=True)
        ok = np.flatnonzero(g_codes >= 0)
        allr = np.arange(n)
        for j, name in enumerate(covariates):
            x = df[name].to_numpy(dtype=float)
            x_dm = x - pd.Series(x).groupby(key_codes).transform("mean").to_numpy()
            blocks.append(block(rows, cols, x_dm[rows], n_cells))
            desc += [("cell_x", c, name) for c in range(n_cells)]
            xbar_cell[:, j] = np.bincount(cols, weights=x_dm[rows], minlength=n_cells) / counts
            blocks.append(block(allr, np.zeros(n, dtype=np.int64), x, 1))
            desc.append(("x", -1, name))
            blocks.append(block(ok, g_codes[ok], x[ok], len(g_levels)))
            desc += [("x_cohort", k, name) for k in range(len(g_levels))]
            blocks.append(block(allr, t_codes, x, n_t))
            desc += [("x_period", k, name) for k in range(n_t)]
    X = sparse.hstack(blocks, format="csc") if len(blocks) > 1 else blocks[0]
    return X, desc, xbar_cell


# --------------------------------------------------------------------------- aggregation
def _cell_gradient(
    fit: _ols.OLSFit,
    desc: list[tuple[str, int, str | None]],
    n_cells: int,
    covariates: Sequence[str],
    xbar_cell: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cell effects and their gradient in the kept coefficients.

    ``att_c = tau_c + sum_x d_{c,x} * xbar_c,x``; a dropped ``d`` counts as zero (the
    fixed effects absorbed its column), a dropped ``tau`` makes the cell NaN.
    """
    p = len(desc)
    full = np.zeros((n_cells, p))
    full[np.arange(n_cells), np.arange(n_cells)] = 1.0
    for j, _name in enumerate(covariates):
        start = n_cells * (1 + j)
        full[np.arange(n_cells), start + np.arange(n_cells)] = xbar_cell[:, j]
    kept = fit.kept
    grad = full[:, kept]
    coef = np.where(kept, fit.coef, 0.0)
    att = full @ coef
    tau_dropped = ~kept[:n_cells]
    att[tau_dropped] = np.nan
    grad[tau_dropped] = np.nan
    return att, grad


class Aggregation(NamedTuple):
    """Weights of the aggregates over the cells (rows ``x`` cells): a row's effect is
    ``weights @ att``, its variance ``w V w'``.

    ``meta``: one dict per row of the estimates table (``aggregation``, ``scope``,
    ``n_treated_clusters``, ``cells_left_out``), ``weights`` its rows; ``event_meta``
    (``event_time``) and ``event_weights``: the event-study rows.
    """

    meta: list[dict[str, Any]]
    weights: np.ndarray
    event_meta: list[dict[str, Any]]
    event_weights: np.ndarray


def cohort_labels(
    cells: pd.DataFrame, cohort: Cohort, unit_labels: Mapping[Any, str] | pd.Series | None = None
) -> dict[Any, str]:
    """Scope label of every cohort key of ``cells``: the unit's label (``unit_labels[u]``
    or ``str(u)``) with ``cohort="unit"``, else the first treated period as text."""
    if cohort == "unit":
        return _unit_label_map(cells["key"], unit_labels)
    return {k: scope_label(k) for k in pd.unique(cells["key"])}


def _rows_weights(cells: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """Weights over all cells: rows share within ``mask``, zero elsewhere; all NaN when
    ``mask`` is empty (the aggregate has no identified cell)."""
    w = np.where(mask, cells["n_obs"].to_numpy(dtype=float), 0.0)
    total = w.sum()
    return w / total if total > 0 else np.full(len(w), np.nan)


def aggregation_matrix(
    cells: pd.DataFrame, labels: Mapping[Any, str], identified: np.ndarray | None = None
) -> Aggregation:
    """Weight matrices for the estimates table and the event-study table (the rows of
    ``simple``, ``group``, ``dynamic`` and ``calendar`` described in the module docstring).

    Returns (estimate row meta, W_est) and (event row meta, W_event), each ``W`` of
    shape ``rows x n_cells``; a row's effect is ``W @ att``. Cells not ``identified``
    (their dummy is collinear with the fixed effects) get weight 0: every aggregate is
    over the identified cells, and a row with none is all NaN. Each meta row counts the
    cells it left out (``cells_left_out``).
    """
    ident = np.ones(len(cells), dtype=bool) if identified is None else np.asarray(identified, dtype=bool)
    post = cells["event_time"].to_numpy() >= 0
    meta: list[dict[str, Any]] = []
    W: list[np.ndarray] = []
    unit_codes, _ = pd.factorize(pd.Series([u for us in cells["units"] for u in us]))
    lengths = np.fromiter((len(us) for us in cells["units"]), dtype=np.int64, count=len(cells))
    # cells x units (a few hundred x ~100): dense, so a row selection is one fast pass
    incidence = np.zeros((len(cells), int(unit_codes.max()) + 1 if unit_codes.size else 0), dtype=bool)
    incidence[np.repeat(np.arange(len(cells)), lengths), unit_codes] = True

    def units_of(mask: np.ndarray) -> int:
        return int(incidence[mask].any(axis=0).sum())

    def add(agg: str, scope: str, w: np.ndarray, mask: np.ndarray) -> None:
        meta.append({"aggregation": agg, "scope": scope, "n_treated_clusters": units_of(mask & ident),
                     "cells_left_out": int((mask & ~ident).sum())})
        W.append(w)

    def mean_of(rows: list[np.ndarray]) -> np.ndarray:
        usable = [w for w in rows if np.isfinite(w).all()]
        return np.vstack(usable).mean(axis=0) if usable else np.full(len(cells), np.nan)

    add("simple", "overall", _rows_weights(cells, post & ident), post)

    keys = cells["key"].to_numpy()
    group_rows: list[np.ndarray] = []
    group_units: list[int] = []
    for k in pd.unique(keys):
        m = post & (keys == k)
        if not m.any():
            continue
        w = _rows_weights(cells, m & ident)
        add("group", labels[k], w, m)
        if np.isfinite(w).all():
            group_rows.append(w)
            group_units.append(units_of(m & ident))
    if group_rows:
        pi = np.asarray(group_units, dtype=float)
        add("group", "overall", (pi / pi.sum()) @ np.vstack(group_rows), post)
    else:
        add("group", "overall", np.full(len(cells), np.nan), post)

    e = cells["event_time"].to_numpy()
    ev_meta: list[dict[str, Any]] = []
    ev_W: list[np.ndarray] = []
    for ei in np.unique(e):
        m = e == ei
        ev_meta.append({"event_time": int(ei)})
        ev_W.append(_rows_weights(cells, m & ident))
    add("dynamic", "overall", mean_of([w for mt, w in zip(ev_meta, ev_W, strict=True) if mt["event_time"] >= 0]),
        post)

    t = cells["period"].to_numpy()
    cal = []
    for ti in np.unique(t[post]):
        m = post & (t == ti)
        w = _rows_weights(cells, m & ident)
        add("calendar", scope_label(ti), w, m)
        cal.append(w)
    add("calendar", "overall", mean_of(cal), post)
    return Aggregation(meta, np.vstack(W), ev_meta, np.vstack(ev_W))


# --------------------------------------------------------------------------- the fit
@dataclass(frozen=True, eq=False)
class EtwfeFit:
    """One ETWFE regression, fitted once, with everything its consumers need.

    :func:`etwfe` turns it into the tables (:meth:`result`); the event-study covariance
    (:meth:`event_study_vcov`, for pre-trend tests and HonestDiD), the wild cluster
    bootstrap (:mod:`mipa.inference.wild_bootstrap`) and the API's delta-method
    aggregation (:meth:`aggregate`) read the same sample, design and covariance, so
    their numbers are those of the tables by construction.

    ``rows``: the regression rows (after the drops in ``info``) with the numeric first
    treated period ``_g``; ``unit_codes``/``period_codes``: their fixed-effect codes
    (units are also the clusters); ``cells``: the cell table (:func:`cell_table`);
    ``labels``: the scope label of each cohort key; ``ols``: the within fit;
    ``df_a``: the absorbed degrees of freedom of the small-sample factor; ``att``: the
    cell effects (NaN for a cell collinear with the fixed effects); ``gradient``: their
    gradient in the kept coefficients; ``vcov``: the unit cluster-robust covariance of
    the cell effects (reghdfe factor; NaN rows and columns for unidentified cells);
    ``aggregation``: the aggregation weights over the identified cells.
    """

    outcome: str
    unit: str
    period: str
    control_group: ControlGroup
    cohort: Cohort
    covariates: list[str]
    rows: pd.DataFrame
    info: dict[str, Any]
    unit_codes: np.ndarray
    n_units: int
    period_codes: np.ndarray
    n_periods: int
    cells: pd.DataFrame
    labels: dict[Any, str]
    n_regressors: int
    ols: _ols.OLSFit
    df_a: int
    att: np.ndarray
    gradient: np.ndarray
    vcov: np.ndarray
    vcov_info: _ols.VcovInfo
    aggregation: Aggregation

    @property
    def identified(self) -> np.ndarray:
        """Cells whose dummy is not collinear with the fixed effects."""
        return np.isfinite(self.att)

    @property
    def fe_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """The unit and period codes of the absorbed fixed effects."""
        return self.unit_codes, self.period_codes

    @property
    def df(self) -> int:
        """Degrees of freedom of the t reference distribution (clusters - 1)."""
        return self.vcov_info.df

    def _zero_filled(self) -> tuple[np.ndarray, np.ndarray]:
        # unidentified cells carry weight 0; zero-fill them so 0 * NaN does not spread
        ok = self.identified
        return np.where(ok, self.att, 0.0), np.where(np.isfinite(self.vcov), self.vcov, 0.0)

    def aggregate(self, aggregation: str) -> tuple[list[Any], np.ndarray, np.ndarray]:
        """One aggregation as ``(scopes, estimate, vcov)`` by the delta method.

        Row 0 is the overall effect, then the detail rows: the scope labels of
        ``group`` / ``calendar`` or the event times of ``dynamic`` (``simple`` has none).
        ``estimate = W att`` and ``vcov = W V W'`` with ``W`` the rows' weights over the
        identified cells (exact: ``W`` does not depend on the coefficients); a row over
        no identified cell is NaN.
        """
        meta, weights, ev_meta, ev_weights = self.aggregation
        idx = [j for j, m in enumerate(meta) if m["aggregation"] == aggregation]
        if not idx:
            raise ValueError(f"aggregation must be one of simple, group, dynamic, calendar, not {aggregation!r}")
        top = next(j for j in idx if meta[j]["scope"] == "overall")
        if aggregation == "dynamic":
            scopes: list[Any] = [m["event_time"] for m in ev_meta]
            w = np.vstack([weights[top], ev_weights])
        else:
            detail = [j for j in idx if j != top]
            scopes = [meta[j]["scope"] for j in detail]
            w = weights[[top, *detail]]
        att, v = self._zero_filled()
        est = w @ att
        cov = w @ v @ w.T
        return scopes, est, (cov + cov.T) / 2

    def event_study_vcov(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(event_time, estimate, vcov)``: the event study by event time with its full
        clustered covariance ``W_ev V W_ev'``.

        Unlike the ``event_study`` table, which averages over the identified cells of an
        event time, an event time with an unidentified cell is NaN here (estimate, row
        and column of ``vcov``): a lead or lag that silently drops a cohort would not be
        comparable with its neighbours in a joint test or in HonestDiD.
        """
        _, _, ev_meta, w_ev = aggregation_matrix(self.cells, self.labels)
        ok = self.identified
        att, v = self._zero_filled()
        est = w_ev @ att
        bad = (w_ev[:, ~ok] != 0).any(axis=1)
        est[bad] = np.nan
        v_ev = w_ev @ v @ w_ev.T
        v_ev[bad, :] = np.nan
        v_ev[:, bad] = np.nan
        return np.array([m["event_time"] for m in ev_meta], dtype=np.int64), est, (v_ev + v_ev.T) / 2

    def result(self, alpha: float = 0.05) -> DidResult:
        """The estimator's tables (:func:`etwfe`'s return value)."""
        cells, n_cells, ok = self.cells, len(self.cells), self.identified
        if not (cells["event_time"] >= 0).any():
            raise NotEstimable("no_post_treatment_data", f"{self.outcome} is not observed after any start")
        meta, W, ev_meta, W_ev = self.aggregation
        df_t = self.df
        n_obs = self.ols.n_obs
        att_0, V_0 = self._zero_filled()

        # estimates
        est = W @ att_0
        se = np.sqrt(((W @ V_0) * W).sum(axis=1))
        lo, hi, p = _ols.wald_ci(est, se, df=df_t, alpha=alpha)
        estimates = estimate_frame(meta, est, se, lo, hi, p, n_obs=n_obs, n_clusters=self.vcov_info.n_clusters,
                                   inference=INFERENCE)
        estimates = _with_status(estimates, cells, ok, self.labels if self.cohort == "unit" else None)
        estimates = estimates[ESTIMATE_COLUMNS]

        # event study
        ev = W_ev @ att_0
        ev_se = np.sqrt(((W_ev @ V_0) * W_ev).sum(axis=1))
        ev_lo, ev_hi, _ = _ols.wald_ci(ev, ev_se, df=df_t, alpha=alpha)
        event_study = event_study_frame([m["event_time"] for m in ev_meta], ev, ev_se, ev_lo, ev_hi,
                                        inference=INFERENCE, reference=self.control_group == "nevertreated")

        # cells
        cell_se = np.sqrt(np.diag(self.vcov))
        c_lo, c_hi, _ = _ols.wald_ci(self.att, cell_se, df=df_t, alpha=alpha)
        att_gt = pd.DataFrame(
            {
                "group": self.cell_groups(),
                "period": cells["period"].to_numpy(),
                "event_time": cells["event_time"].to_numpy(),
                "estimate": self.att,
                "std_error": cell_se,
                "ci_low": c_lo,
                "ci_high": c_hi,
                "n_obs": cells["n_obs"].to_numpy(),
                "inference": INFERENCE,
            }
        )[ATT_GT_COLUMNS]

        settings: dict[str, Any] = {
            "control_group": self.control_group,
            "cohort": self.cohort,
            "covariates": list(self.covariates),
            "alpha": alpha,
            "n_obs": n_obs,
            "n_units": int(self.n_units),
            "n_periods": int(self.n_periods),
            "n_cells": int(n_cells),
            "n_regressors": int(self.n_regressors),
            "rank": self.ols.rank,
            "vcov": "cluster by unit; reghdfe small-sample factor (N-1)/(N-K)*G/(G-1)",
            "small_sample_factor": self.vcov_info.small_sample_factor,
            "ci_distribution": f"t({df_t})",
            "fe_sweeps": self.ols.fe_sweeps,
            **self.info,
        }
        return DidResult(
            estimator="etwfe",
            outcome=self.outcome,
            control_group=self.control_group,
            estimates=estimates.reset_index(drop=True),
            event_study=event_study,
            att_gt=att_gt,
            settings=settings,
        )

    def cell_groups(self) -> list[Any]:
        """The ``att_gt.group`` value of every cell: the first treated period, or the
        unit's label with ``cohort="unit"``."""
        if self.cohort == "unit":
            return [self.labels[k] for k in self.cells["key"]]
        return self.cells["g"].astype(np.int64).tolist()


def etwfe_fit(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    covariates: Sequence[str] = (),
    control_group: ControlGroup = "notyettreated",
    cohort: Cohort = "group",
    unit_labels: Mapping[Any, str] | pd.Series | None = None,
) -> EtwfeFit:
    """Prepare the panel once, build the design, fit, and compute the cell covariance.

    Arguments as :func:`etwfe` (without ``alpha``, which only the tables use).
    """
    if control_group not in ("notyettreated", "nevertreated"):
        raise ValueError(f"control_group must be 'notyettreated' or 'nevertreated', not {control_group!r}")
    if cohort not in ("group", "unit"):
        raise ValueError(f"cohort must be 'group' or 'unit', not {cohort!r}")
    covariates = list(covariates)
    df, info = prepare_rows(
        panel,
        outcome=outcome,
        unit=unit,
        period=period,
        first_treat=first_treat,
        covariates=covariates,
        control_group=control_group,
    )
    df, unit_codes, n_units, period_codes, n_periods = drop_singleton_rows(df, unit=unit, period=period, info=info)

    cell_idx, cells = cell_table(df, unit=unit, period=period, cohort=cohort, control_group=control_group)
    n_cells = len(cells)
    cohort_key = df[unit].to_numpy() if cohort == "unit" else df["_g"].to_numpy()
    X, desc, xbar_cell = _design(
        df, cell_idx, n_cells, period=period, covariates=covariates, cohort_key=cohort_key
    )
    y = df[outcome].to_numpy(dtype=float)
    fe = [unit_codes, period_codes]
    fit = _ols.fit_within(y, X, fe)
    df_a = _ols.absorbed_dof(fe, [unit_codes])
    att, grad = _cell_gradient(fit, desc, n_cells, covariates, xbar_cell)
    ok = np.isfinite(att)
    V_cells = np.full((n_cells, n_cells), np.nan)
    V_ok, vinfo = _ols.cluster_vcov(fit, [unit_codes], df_a=df_a, contrast=grad[ok])
    V_cells[np.ix_(ok, ok)] = V_ok
    labels = cohort_labels(cells, cohort, unit_labels)
    return EtwfeFit(
        outcome=outcome, unit=unit, period=period, control_group=control_group, cohort=cohort,
        covariates=covariates, rows=df, info=info, unit_codes=unit_codes, n_units=int(n_units),
        period_codes=period_codes, n_periods=int(n_periods), cells=cells, labels=labels,
        n_regressors=int(X.shape[1]), ols=fit, df_a=df_a, att=att, gradient=grad, vcov=V_cells,
        vcov_info=vinfo, aggregation=aggregation_matrix(cells, labels, identified=ok),
    )


# --------------------------------------------------------------------------- main
def etwfe(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    covariates: Sequence[str] = (),
    control_group: ControlGroup = "notyettreated",
    cohort: Cohort = "group",
    unit_labels: Mapping[Any, str] | pd.Series | None = None,
    alpha: float = 0.05,
) -> DidResult:
    """Wooldridge's extended TWFE DiD on a long panel; see the module docstring.

    Parameters
    ----------
    panel: one row per ``unit`` and ``period`` (integer periods, consecutive for event
        time and the never-treated reference period ``g - 1``).
    outcome: outcome column; rows where it (or a covariate) is NaN are dropped.
    first_treat: first treated period; 0, NaN or a value after the last period mean never
        treated. Must be constant within a unit.
    covariates: columns ``x`` entering as in ``jwdid``/``etwfe`` (see module docstring).
    control_group: ``"notyettreated"`` (default, as ``jwdid``/``etwfe``) or
        ``"nevertreated"`` (saturated pre and post cells; post cells = CS ATT(g,t)).
    cohort: ``"group"`` (cohort = first treated period) or ``"unit"`` (each treated unit
        its own cohort; the ``group`` rows and ``att_gt.group`` carry the unit label).
    unit_labels: optional map unit -> label (e.g. ISO3) for ``cohort="unit"``.
    alpha: 1 - confidence level of the intervals.

    Returns
    -------
    DidResult with ``estimator="etwfe"``; ``estimates`` (simple, group, dynamic,
    calendar), ``event_study`` (by event time) and ``att_gt`` (the cells). The fit
    behind it, with the cells' covariance, is :func:`etwfe_fit`.
    """
    return etwfe_fit(
        panel, outcome=outcome, unit=unit, period=period, first_treat=first_treat, covariates=covariates,
        control_group=control_group, cohort=cohort, unit_labels=unit_labels,
    ).result(alpha)


def _with_status(
    estimates: pd.DataFrame, cells: pd.DataFrame, identified: np.ndarray, unit_labels: Mapping[Any, str] | None
) -> pd.DataFrame:
    """Status columns: rows over no identified cell are not estimable; rows that left
    unidentified cells out say how many and which."""
    missing = cells.loc[~identified]
    names = [
        f"{unit_labels[k] if unit_labels is not None else scope_label(g)}@{scope_label(p)}"
        for k, g, p in zip(missing["key"], missing["g"], missing["period"], strict=True)
    ]
    listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    status = []
    for left_out, value in zip(estimates.pop("cells_left_out"), estimates["estimate"], strict=True):
        if not np.isfinite(value):
            failure = NotEstimable("not_identified", "no cell of this aggregate is identified (collinear with the "
                                   "fixed effects: no comparison country observed in its months)")
            status.append(status_columns(failure))
        elif left_out:
            status.append(status_columns(None, f"{left_out} unidentified cell(s) left out of the aggregate "
                                               f"(cohort@period): {listed}"))
        else:
            status.append(status_columns(None))
    return pd.concat([estimates.reset_index(drop=True), pd.DataFrame(status)], axis=1)


def _unit_label_map(
    keys: pd.Series, unit_labels: Mapping[Any, str] | pd.Series | None
) -> dict[Any, str]:
    """Label of each treated unit: ``unit_labels[u]`` when given, else ``str(u)``."""
    out: dict[Any, str] = {}
    for k in pd.unique(keys):
        if unit_labels is not None and k in unit_labels:
            out[k] = str(unit_labels[k])
        else:
            out[k] = scope_label(k)
    return out
