"""The result types of the analyst's API (:mod:`mipa.api`), after R ``did`` and pyfixest.

:class:`GroupTimeResult` (cell effects ATT(g,t), from :func:`mipa.api.att_gt` and
:func:`mipa.api.etwfe`), its ``aggregate(type)``, an :class:`AggregateResult`
(``"simple"``, ``"group"``, ``"dynamic"``, ``"calendar"``; R ``did::aggte``,
``etwfe::emfx``), and :class:`TwfeResult`. Every result has ``tidy()`` (columns
:data:`TIDY_COLUMNS`), ``summary()`` (a text table), ``vcov`` (the variance matrix of the
estimates, ``None`` where the estimator does not give one) and ``plot()`` (a matplotlib
Figure). Each keeps the estimator's :class:`~mipa.estimators.results.DidResult` as
``.result``; the numbers are the estimator's, unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from mipa.estimators.csdid import AGGREGATIONS, BOOTSTRAP, CSFit, aggte
from mipa.estimators.etwfe import EtwfeFit
from mipa.estimators.poisson_etwfe import RATE_RATIO_COLUMNS
from mipa.estimators.results import DidResult

__all__ = ["AggregateResult", "GroupTimeResult", "TIDY_COLUMNS", "TwfeResult"]

TIDY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]

_TITLES = {
    "csdid": "Callaway & Sant'Anna (2021) group-time ATTs",
    "etwfe": "Extended TWFE (Wooldridge 2021) cell effects",
    "poisson_etwfe": "Poisson extended TWFE (Wooldridge 2023) cell effects, count scale",
    "twfe": "Two-way fixed effects regression",
}
_KEY = {"group": ("group", "g"), "dynamic": ("event_time", "e"), "calendar": ("period", "t")}
_CONTROLS = {"nevertreated": "never treated", "notyettreated": "not yet treated", "all": "all untreated rows"}


# --------------------------------------------------------------------------- helpers
def _p_values(estimate: np.ndarray, std_error: np.ndarray, distribution: str | None) -> np.ndarray:
    """Two-sided p-values, t with the estimator's degrees of freedom ('t(df)') or normal."""
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(est / se)
    m = re.fullmatch(r"t\((\d+)\)", distribution or "")
    return 2 * (stats.t.sf(z, int(m.group(1))) if m else stats.norm.sf(z))


def _key(value: Any) -> Any:
    """A group / period label as a number when it is one (``'2004'`` -> 2004)."""
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return value
        return int(f) if f.is_integer() else f
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    return value.item() if hasattr(value, "item") else value


def _format(frame: pd.DataFrame) -> str:
    def fmt(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"

    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = [fmt(v) for v in shown[col]]
        elif shown[col].dtype == object:
            shown[col] = ["" if v is None else v for v in shown[col]]
    return shown.to_string(index=False)


def _figure(ax: Any, nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (6.4, 4.0)) -> tuple[Any, Any]:
    """A new matplotlib Figure with its axes (no pyplot state), or the figure of ``ax``."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure  # lazily: `import mipa` must not load matplotlib

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, sharey=True) if nrows * ncols > 1 else fig.subplots()


def _errorbars(ax: Any, x: np.ndarray, est: np.ndarray, lo: np.ndarray, hi: np.ndarray, pre: np.ndarray) -> None:
    """Points with interval bars; pre-treatment ones grey, post-treatment ones blue (R ggdid)."""
    for mask, color, label in ((pre, "0.45", "pre"), (~pre, "tab:blue", "post")):
        if mask.any():
            yerr = np.vstack([est[mask] - lo[mask], hi[mask] - est[mask]])
            ax.errorbar(x[mask], est[mask], yerr=np.where(np.isfinite(yerr), yerr, 0.0), fmt="o", color=color,
                        capsize=3, label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)


class _Result:
    """tidy / summary / vcov / plot shared by the result types."""

    result: DidResult

    def tidy(self) -> pd.DataFrame:
        """One row per estimate: :data:`TIDY_COLUMNS`, then the result's own key columns."""
        return self._table().reset_index(drop=True)

    def summary(self) -> str:
        """A printable text table with a header saying what was estimated and how."""
        return "\n".join([*self._header(), "", _format(self.tidy())])

    def __repr__(self) -> str:
        return self.summary()

    @property
    def vcov(self) -> pd.DataFrame | None:
        """Variance matrix of the ``tidy()`` estimates (rows and columns named by ``term``),
        ``None`` where the estimator does not give one."""
        return None

    def _table(self) -> pd.DataFrame:  # pragma: no cover - every subclass has one
        raise NotImplementedError

    def _header(self) -> list[str]:
        s = self.result.settings
        title = _TITLES.get(self.result.estimator, self.result.estimator)
        sizes = ", ".join(f"{s[k]} {w}" for k, w in (("n_units", "units"), ("n_periods", "periods"),
                                                      ("n_obs", "observations")) if k in s)
        level = 100 * (1 - float(s.get("alpha", 0.05)))
        return [f"{title}: outcome {self.result.outcome}",
                f"control group: {_CONTROLS.get(self.result.control_group, self.result.control_group)}; {sizes}",
                f"{level:g}% intervals; inference: {self._inference()}"]

    def _inference(self) -> str:
        s = self.result.settings
        kinds = ", ".join(sorted({str(v) for v in self.tidy().get("inference", pd.Series(dtype=object)).dropna()}))
        if s.get("bootstrap"):
            return f"{kinds} ({s['n_boot']} draws, seed {s['seed']})"
        return kinds + (f", {s['ci_distribution']}" if "ci_distribution" in s else "")


def _iv_vcov(influence: np.ndarray, terms: list[str], ok: np.ndarray) -> pd.DataFrame:
    """psi' psi / N^2, NaN for estimates that are NaN."""
    n = influence.shape[0]
    v = influence.T @ influence / n**2
    v[~ok, :] = np.nan
    v[:, ~ok] = np.nan
    return pd.DataFrame(v, index=terms, columns=terms)


# --------------------------------------------------------------------------- stage 1: cells
@dataclass(frozen=True, repr=False, eq=False)
class GroupTimeResult(_Result):
    """The cell effects ATT(g,t) of :func:`att_gt` or :func:`etwfe`.

    ``cells``: ``group``, ``period``, ``event_time``, ``estimate``, ``std_error``,
    ``ci_low``, ``ci_high``, ``p_value``, ``n_obs``, ``inference``, one row per cell, in the
    estimator's order. ``influence_function`` (N, K) and ``unit_ids`` (N,): the cells'
    influence functions (R ``did``'s ``inffunc``; Callaway & Sant'Anna only, else None).
    ``result``: the estimator's own tables, including its aggregations. ``fit``: the
    linear ETWFE regression (:class:`~mipa.estimators.etwfe.EtwfeFit`, with the cells'
    clustered covariance), None for the other estimators.
    """

    result: DidResult
    cells: pd.DataFrame
    influence_function: np.ndarray | None = None
    unit_ids: np.ndarray | None = None
    _cs_fit: CSFit | None = field(default=None, repr=False)
    fit: EtwfeFit | None = field(default=None, repr=False)

    @classmethod
    def from_result(cls, result: DidResult, cs_fit: CSFit | None = None,
                    etwfe_fit: EtwfeFit | None = None) -> GroupTimeResult:
        """The cells of an estimator's result; ``cs_fit`` / ``etwfe_fit`` (the fit behind it)
        give the influence functions / the cell covariance that ``aggregate`` and ``vcov`` use."""
        cells = result.att_gt.copy()
        dist = result.settings.get("ci_distribution")
        cells.insert(cells.columns.get_loc("ci_high") + 1, "p_value",
                     _p_values(cells["estimate"], cells["std_error"], dist))
        if cs_fit is None:
            return cls(result, cells, fit=etwfe_fit)
        return cls(result, cells, cs_fit.influence, cs_fit.unit_ids, cs_fit)

    @property
    def estimator(self) -> str:
        return self.result.estimator

    def _terms(self) -> list[str]:
        return [f"ATT(g={g},t={t})" for g, t in zip(self.cells["group"], self.cells["period"], strict=True)]

    def _table(self) -> pd.DataFrame:
        out = self.cells.copy()
        out.insert(0, "term", self._terms())
        return out[[*TIDY_COLUMNS, "group", "period", "event_time", "n_obs", "inference"]]

    @property
    def vcov(self) -> pd.DataFrame | None:
        """Variance matrix of the cells: psi' psi / N^2 from the influence functions
        (Callaway & Sant'Anna, analytic), the unit cluster-robust covariance of the regression
        (linear ETWFE, reghdfe small-sample factor; the ``std_error`` column is the square
        root of its diagonal); ``None`` for Poisson ETWFE. NaN rows and columns for NaN cells."""
        if self.fit is not None:
            terms = self._terms()
            return pd.DataFrame(self.fit.vcov.copy(), index=terms, columns=terms)
        if self.influence_function is None:
            return None
        return _iv_vcov(self.influence_function, self._terms(), np.isfinite(self.cells["estimate"].to_numpy()))

    def aggregate(self, type: Literal["simple", "group", "dynamic", "calendar"] = "simple") -> AggregateResult:
        """Aggregate the cells (R ``did::aggte`` / ``etwfe::emfx``).

        ``simple``: one overall effect; ``group``: by cohort; ``dynamic``: by event time
        (an event study); ``calendar``: by calendar period. The overall effect of
        ``group``/``dynamic``/``calendar`` is the estimator's (cohort-share weighted mean of
        the groups; mean over event times e >= 0; mean over periods). Callaway & Sant'Anna:
        cohort-share (pi_g) weights and influence functions as R ``did``
        (:func:`mipa.estimators.csdid.aggte`); linear ETWFE: the estimator's row-weighted
        aggregates ``W att`` with the delta-method covariance ``W V W'`` of the cells'
        covariance ``V`` (:meth:`mipa.estimators.etwfe.EtwfeFit.aggregate`); Poisson ETWFE:
        the estimator's tables.
        """
        if type not in AGGREGATIONS:
            raise ValueError(f"type must be one of {AGGREGATIONS}, not {type!r}")
        if self._cs_fit is not None:
            return AggregateResult._from_cs(self, type)
        if self.fit is not None:
            return AggregateResult._from_etwfe(self, type)
        return AggregateResult._from_table(self, type)

    def plot(self, ax: Any = None) -> Any:
        """ATT(g,t) by period, one panel per group (R ``ggdid`` of an ``att_gt`` result);
        pre-treatment cells grey, post-treatment blue, bars the pointwise intervals."""
        groups = list(pd.unique(self.cells["group"]))
        ncols = min(3, len(groups))
        nrows = -(-len(groups) // ncols)
        if ax is not None and len(groups) > 1:
            raise ValueError("a plot of several groups makes its own figure; call plot() without ax")
        fig, axes = _figure(ax, nrows, ncols, size=(4.0 * ncols, 2.8 * nrows))
        flat = np.atleast_1d(axes).ravel()
        for a, g in zip(flat, groups, strict=False):
            c = self.cells[self.cells["group"] == g]
            e = c["event_time"].to_numpy(dtype=float)
            _errorbars(a, c["period"].to_numpy(dtype=float), c["estimate"].to_numpy(dtype=float),
                       c["ci_low"].to_numpy(dtype=float), c["ci_high"].to_numpy(dtype=float), e < 0)
            a.set_title(f"group {g}")
            a.set_xlabel("period")
        for a in flat[len(groups):]:
            a.set_visible(False)
        flat[0].set_ylabel(f"ATT(g,t): {self.result.outcome}")
        return fig


# --------------------------------------------------------------------------- stage 2: aggregates
@dataclass(frozen=True, repr=False, eq=False)
class AggregateResult(_Result):
    """One aggregation of the cells: the overall effect (first row, term ``ATT``) and the
    detail by group, event time or period (terms ``ATT(g=...)``, ``ATT(e=...)``,
    ``ATT(t=...)``).

    ``table``: :data:`TIDY_COLUMNS`, the detail key (``group`` / ``event_time`` /
    ``period``, empty on the overall row), ``band_low``/``band_high`` (uniform band of the
    detail rows, from the bootstrap; NaN otherwise), ``inference``. Callaway & Sant'Anna
    only: ``influence_function`` (N, 1+J) of the rows, ``unit_ids``, ``critical_value``
    of the band. Linear ETWFE only: ``delta_vcov``, the delta-method covariance of the rows.
    """

    type: str
    result: DidResult
    table: pd.DataFrame
    influence_function: np.ndarray | None = None
    unit_ids: np.ndarray | None = None
    critical_value: float = float("nan")
    delta_vcov: np.ndarray | None = field(default=None, repr=False)

    @property
    def overall(self) -> pd.Series:
        """The overall effect's row."""
        return self.table.iloc[0]

    @property
    def detail(self) -> pd.DataFrame:
        """The rows by group / event time / period (empty for ``simple``)."""
        return self.table.iloc[1:].reset_index(drop=True)

    @property
    def key(self) -> str | None:
        return _KEY[self.type][0] if self.type in _KEY else None

    @classmethod
    def _from_cs(cls, cells: GroupTimeResult, type: str) -> AggregateResult:
        agg = aggte(cells._cs_fit, type)
        est, se = agg.estimate, agg.std_error
        z = stats.norm.ppf(1 - agg.alpha / 2)
        band = np.full(len(est), np.nan)
        if agg.inference == BOOTSTRAP:
            band[1:] = agg.critical_value
        table = cls._assemble(type, agg.keys, est, se, est - z * se, est + z * se,
                              _p_values(est, se, None), est - band * se, est + band * se, agg.inference)
        return cls(type, cells.result, table, agg.influence, cells.unit_ids, agg.critical_value)

    @classmethod
    def _from_etwfe(cls, cells: GroupTimeResult, type: str) -> AggregateResult:
        fit, res = cells.fit, cells.result
        scopes, est, cov = fit.aggregate(type)
        keys = [_key(v) for v in scopes]
        inference = ["cluster_unit"] * len(est)
        if type == "dynamic" and fit.control_group == "nevertreated" and -1 not in keys and min(keys) < -1:
            # the reference period, as in the event_study table: 0 by construction, no variance
            at = 1 + int(np.searchsorted(np.asarray(keys), -1))
            keys.insert(at - 1, -1)
            inference.insert(at, "reference")
            est = np.insert(est, at, 0.0)
            cov = np.insert(np.insert(cov, at, np.nan, axis=0), at, np.nan, axis=1)
        with np.errstate(invalid="ignore"):
            se = np.sqrt(np.diag(cov))
        alpha = float(res.settings.get("alpha", 0.05))
        c = stats.t.ppf(1 - alpha / 2, fit.df)
        nan = np.full(len(est), np.nan)
        table = cls._assemble(type, keys, est, se, est - c * se, est + c * se,
                              _p_values(est, se, res.settings.get("ci_distribution")), nan, nan,
                              np.asarray(inference, dtype=object))
        return cls(type, res, table, delta_vcov=cov)

    @classmethod
    def _from_table(cls, cells: GroupTimeResult, type: str) -> AggregateResult:
        res = cells.result
        rows = res.estimates[res.estimates["aggregation"] == type]
        top = rows[rows["scope"] == "overall"]
        if type == "dynamic":
            detail = res.event_study
            keys = [_key(v) for v in detail["event_time"]]
        else:
            detail = rows[rows["scope"] != "overall"]
            keys = [_key(v) for v in detail["scope"]]
        both = pd.concat([top, detail], ignore_index=True)
        est = both["estimate"].to_numpy(dtype=float)
        se = both["std_error"].to_numpy(dtype=float)
        p = _p_values(est, se, res.settings.get("ci_distribution"))
        if "p_value" in both.columns:  # the estimator's own where it gives one
            p = np.where(both["p_value"].notna(), pd.to_numeric(both["p_value"]), p)
        table = cls._assemble(type, keys, est, se, both["ci_low"].to_numpy(dtype=float),
                              both["ci_high"].to_numpy(dtype=float), p,
                              pd.to_numeric(both.get("band_low")).to_numpy(dtype=float)
                              if "band_low" in both else np.full(len(both), np.nan),
                              pd.to_numeric(both.get("band_high")).to_numpy(dtype=float)
                              if "band_high" in both else np.full(len(both), np.nan),
                              both["inference"].to_numpy())
        for col in RATE_RATIO_COLUMNS:  # Poisson: the rate ratio of each aggregate row
            if col in both.columns:
                table[col] = pd.to_numeric(both[col]).to_numpy(dtype=float)
        return cls(type, res, table)

    @staticmethod
    def _assemble(type: str, keys: list[Any], est, se, lo, hi, p, band_lo, band_hi, inference) -> pd.DataFrame:
        key_col, short = _KEY.get(type, (None, None))
        terms = ["ATT"] + [f"ATT({short}={k})" for k in keys]
        frame = pd.DataFrame({"term": terms, "estimate": est, "std_error": se, "ci_low": lo, "ci_high": hi,
                              "p_value": p})
        if key_col is not None:
            frame[key_col] = pd.Series([None, *keys], dtype=object)
        frame["band_low"] = band_lo
        frame["band_high"] = band_hi
        frame["inference"] = inference
        return frame

    def _table(self) -> pd.DataFrame:
        return self.table.copy()

    def _header(self) -> list[str]:
        head = super()._header()
        o = self.overall
        what = {"simple": "simple average over post-treatment cells", "group": "by group",
                "dynamic": "by event time (event study)", "calendar": "by calendar period"}[self.type]
        head.insert(1, f"aggregation: {what}")
        head.append(f"overall ATT = {o['estimate']:.4f} (se {o['std_error']:.4f}), "
                    f"[{o['ci_low']:.4f}, {o['ci_high']:.4f}]")
        if np.isfinite(self.critical_value) and self.type != "simple":
            head.append(f"uniform band critical value {self.critical_value:.3f}")
        return head

    @property
    def vcov(self) -> pd.DataFrame | None:
        """Variance matrix of the rows: analytic psi' psi / N^2 (Callaway & Sant'Anna), the
        delta-method ``W V W'`` (linear ETWFE); None for Poisson ETWFE."""
        if self.delta_vcov is not None:
            terms = list(self.table["term"])
            return pd.DataFrame(self.delta_vcov.copy(), index=terms, columns=terms)
        if self.influence_function is None:
            return None
        return _iv_vcov(self.influence_function, list(self.table["term"]),
                        np.isfinite(self.table["estimate"].to_numpy(dtype=float)))

    def plot(self, ax: Any = None) -> Any:
        """Event-study plot (``dynamic``), or the effects by group / period, with the
        pointwise intervals (thin) and the uniform band where there is one (thick)."""
        fig, a = _figure(ax)
        rows = self.detail if self.type != "simple" else self.table
        est = rows["estimate"].to_numpy(dtype=float)
        if self.type == "simple":
            x, labels = np.zeros(1), ["ATT"]
        else:
            keys = rows[self.key].tolist()
            numeric = all(isinstance(k, int | float) for k in keys)
            x = np.asarray(keys, dtype=float) if numeric else np.arange(len(keys), dtype=float)
            labels = None if numeric else [str(k) for k in keys]
        pre = x < 0 if self.type == "dynamic" else np.zeros(len(x), dtype=bool)
        band_lo, band_hi = rows["band_low"].to_numpy(dtype=float), rows["band_high"].to_numpy(dtype=float)
        if np.isfinite(band_lo).any():
            for mask, color in ((pre, "0.45"), (~pre, "tab:blue")):
                if mask.any():
                    a.vlines(x[mask], band_lo[mask], band_hi[mask], color=color, linewidth=4, alpha=0.35)
        _errorbars(a, x, est, rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float), pre)
        if labels is not None:
            a.set_xticks(x, labels)
        if self.type == "dynamic":
            a.axvline(-0.5, color="0.6", linestyle="--", linewidth=0.8)
        a.set_xlabel({"simple": "", "group": "group (first treated period)", "dynamic": "event time",
                      "calendar": "period"}[self.type])
        a.set_ylabel(f"ATT: {self.result.outcome}")
        a.set_title(f"{_TITLES.get(self.result.estimator, self.result.estimator).split(' (')[0]}: {self.type}")
        return fig


# --------------------------------------------------------------------------- classic TWFE
@dataclass(frozen=True, repr=False, eq=False)
class TwfeResult(_Result):
    """The coefficient(s) of :func:`twfe`: ``table`` with :data:`TIDY_COLUMNS`,
    ``inference``, ``n_obs``, ``n_clusters`` (a row per treatment and variance method)."""

    result: DidResult
    table: pd.DataFrame

    @classmethod
    def from_result(cls, result: DidResult) -> TwfeResult:
        """The rows of :func:`mipa.estimators.twfe.twfe`'s result, one term per treatment and
        covariance (a ``vcov="all"`` result has one row per covariance)."""
        est = result.estimates
        names = result.settings["treatments"]
        per = len(names)
        terms = [names[i % per] for i in range(len(est))]
        if len(est) > per:  # vcov="all": a row per method
            terms = [f"{t} ({m})" for t, m in zip(terms, est["inference"], strict=True)]
        table = est[["estimate", "std_error", "ci_low", "ci_high", "p_value", "inference", "n_obs",
                     "n_clusters"]].copy()
        table.insert(0, "term", terms)
        return cls(result, table.reset_index(drop=True))

    def _table(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def vcov(self) -> pd.DataFrame | None:
        """The 1x1 variance of a single treatment's coefficient (one variance method);
        ``None`` with several (the estimator reports no covariances)."""
        if len(self.table) != 1:
            return None
        term = self.table["term"].iloc[0]
        return pd.DataFrame([[float(self.table["std_error"].iloc[0]) ** 2]], index=[term], columns=[term])

    def plot(self, ax: Any = None) -> Any:
        """Coefficient plot: estimates with their intervals."""
        fig, a = _figure(ax, size=(6.4, 1.2 + 0.5 * len(self.table)))
        y = np.arange(len(self.table), dtype=float)[::-1]
        est = self.table["estimate"].to_numpy(dtype=float)
        err = np.vstack([est - self.table["ci_low"].to_numpy(dtype=float),
                         self.table["ci_high"].to_numpy(dtype=float) - est])
        a.errorbar(est, y, xerr=np.where(np.isfinite(err), err, 0.0), fmt="o", color="tab:blue", capsize=3)
        a.axvline(0.0, color="black", linewidth=0.8)
        a.set_yticks(y, self.table["term"].tolist())
        a.set_xlabel(f"effect on {self.result.outcome}")
        a.set_title(_TITLES["twfe"])
        return fig
