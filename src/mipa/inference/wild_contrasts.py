"""The regression and the linear combination ``w'b`` that the wild cluster bootstrap tests.

Reference: Roodman, D., Nielsen, M. O., MacKinnon, J. G. and Webb, M. D. (2019), "Fast and
wild: bootstrap inference in Stata using boottest", Stata Journal 19(1), 4-60 (the
bootstrap needs the within-transformed fit and ``w`` over its kept coefficients).

A :class:`FittedContrast` is a fixed-effects OLS fit (:func:`mipa.estimators.ols.fit_within`)
with ``w``, the clusters and the small-sample degrees of freedom: for any design
(:func:`fit_contrast`), for the aggregates of Wooldridge's ETWFE with exactly its rows,
design and weights (:func:`etwfe_contrasts`, :func:`fit_contrasts`) and for the classic TWFE
coefficient (:func:`twfe_contrast`), so the bootstrap studentizes by the estimators' own
cluster-robust standard errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from mipa.estimability import NotEstimable
from mipa.estimators import ols
from mipa.estimators.etwfe import EtwfeFit, etwfe_fit
from mipa.estimators.twfe import prepare_rows as twfe_rows

__all__ = ["FittedContrast", "etwfe_contrast", "etwfe_contrasts", "fit_contrast", "fit_contrasts", "twfe_contrast"]


@dataclass(frozen=True)
class FittedContrast:
    """A fitted fixed-effects regression and the linear combination ``w'b`` under test.

    ``contrast`` is ``w`` over the fit's kept coefficients. ``df_a`` is the absorbed
    degrees of freedom for the small-sample factor (:func:`ols.absorbed_dof`).
    """

    fit: ols.OLSFit
    contrast: np.ndarray
    fe_codes: tuple[np.ndarray, ...]
    cluster_codes: np.ndarray
    df_a: int
    n_treated_clusters: int
    label: str = "overall"

    @property
    def estimate(self) -> float:
        """``theta_hat = w'b``."""
        return float(self.contrast @ self.fit.coef[self.fit.kept])

    @property
    def n_clusters(self) -> int:
        return int(self.cluster_codes.max()) + 1


def fit_contrast(
    y: np.ndarray,
    X: np.ndarray | sparse.spmatrix,
    fe_codes: Sequence[np.ndarray],
    cluster_codes: np.ndarray,
    contrast: np.ndarray,
    *,
    n_treated_clusters: int,
    label: str = "overall",
) -> FittedContrast:
    """Fit ``y`` on ``X`` with ``fe_codes`` absorbed and attach ``w`` (over all columns of X).

    A ``w`` that loads on a column dropped as collinear is an error (its coefficient is
    not identified). Clusters are re-coded to ``0..G-1``.
    """
    fe = tuple(np.asarray(c) for c in fe_codes)
    fit = ols.fit_within(y, X, fe)
    w = np.asarray(contrast, dtype=float)
    if w.shape != fit.kept.shape:
        raise ValueError(f"contrast has {w.shape[0]} entries, the design {fit.kept.size} columns")
    if np.any(w[~fit.kept] != 0):
        raise NotEstimable("not_identified", "the contrast loads on a coefficient dropped as collinear "
                           "with the fixed effects")
    cl, _ = ols.factorize(cluster_codes)
    return FittedContrast(
        fit=fit,
        contrast=w[fit.kept],
        fe_codes=fe,
        cluster_codes=cl,
        df_a=ols.absorbed_dof(list(fe), [cl]),
        n_treated_clusters=int(n_treated_clusters),
        label=label,
    )


def etwfe_contrasts(
    panel: pd.DataFrame, *, rows: Sequence[tuple[str, str]] | None = None, **options: Any
) -> list[FittedContrast]:
    """The ETWFE regression of :func:`mipa.estimators.etwfe.etwfe` and some of its aggregates.

    Builds exactly the rows, design and aggregation weights of ``etwfe`` (``options`` as
    :func:`mipa.estimators.etwfe.etwfe_fit`),
    fits once, and returns one contrast per estimate row ``(aggregation, scope)`` in
    ``rows`` (default: ``("simple", "overall")`` and every ``group`` row but the group
    overall): ``w = W_row @ grad`` with ``W_row`` the row's weights over cells and
    ``grad`` the cells' gradient in the kept coefficients (identity without covariates).
    So each ``estimate`` and cluster standard error equal that row of
    ``etwfe(...).estimates``. Clusters = units; ``n_treated_clusters`` counts the treated
    units behind the row. With ``cohort="unit"`` the ``group`` rows are the countries.
    A row with no estimate (no observed post cell, or no identified cell: the same rows
    ``etwfe`` reports as not estimable) is a :class:`~mipa.estimability.NotEstimable` in
    its place; unidentified cells are left out of every aggregate, as in ``etwfe``.
    """
    return fit_contrasts(etwfe_fit(panel, **options), rows)


def fit_contrasts(fit: EtwfeFit, rows: Sequence[tuple[str, str]] | None = None) -> list[FittedContrast]:
    """:func:`etwfe_contrasts` of an ETWFE fit already made (:func:`mipa.estimators.etwfe.etwfe_fit`)."""
    meta, W, _, _ = fit.aggregation
    grad = fit.gradient
    if rows is None:
        rows = [("simple", "overall")] + [
            ("group", m["scope"]) for m in meta if m["aggregation"] == "group" and m["scope"] != "overall"
        ]
    out: list[FittedContrast | NotEstimable] = []
    for aggregation, scope in rows:
        hits = [k for k, m in enumerate(meta) if m["aggregation"] == aggregation and m["scope"] == scope]
        if len(hits) > 1:
            raise KeyError(f"more than one ETWFE estimate row ({aggregation!r}, {scope!r})")
        if not hits:
            out.append(NotEstimable("no_post_treatment_data", f"{fit.outcome} has no observed post-treatment "
                                    f"cell for {scope}"))
            continue
        w_cells = W[hits[0]]
        if not np.isfinite(w_cells).all():
            out.append(NotEstimable("not_identified", f"no cell of {scope}'s {aggregation} effect is identified"))
            continue
        used = w_cells != 0
        out.append(
            FittedContrast(
                fit=fit.ols,
                contrast=w_cells[used] @ grad[used],
                fe_codes=fit.fe_codes,
                cluster_codes=fit.unit_codes,
                df_a=fit.df_a,
                n_treated_clusters=int(meta[hits[0]]["n_treated_clusters"]),
                label=scope,
            )
        )
    return out


def etwfe_contrast(
    panel: pd.DataFrame,
    *,
    aggregation: str = "simple",
    scope: str = "overall",
    **options: Any,
) -> FittedContrast:
    """One aggregate ``(aggregation, scope)`` of ETWFE; options as :func:`etwfe_contrasts`.
    Raises :class:`~mipa.estimability.NotEstimable` when that aggregate has no estimate."""
    out = etwfe_contrasts(panel, rows=[(aggregation, scope)], **options)[0]
    if isinstance(out, NotEstimable):
        raise out
    return out


def twfe_contrast(
    panel: pd.DataFrame, *, outcome: str, unit: str, period: str, treatment: str = "mipa"
) -> FittedContrast:
    """The classic TWFE coefficient of :func:`mipa.estimators.twfe.twfe` (one treatment).

    Same rows as ``twfe`` (missing outcome or treatment dropped, singletons dropped);
    ``w`` picks the treatment coefficient; clusters = units.
    """
    df, _ = twfe_rows(panel, outcome=outcome, unit=unit, period=period, treatments=[treatment])
    u, _ = ols.factorize(df[unit].to_numpy())
    t, _ = ols.factorize(df[period].to_numpy())
    d = df[treatment].to_numpy(dtype=float)
    treated = int(df.loc[d != 0, unit].nunique())
    return fit_contrast(
        df[outcome].to_numpy(dtype=float), d[:, None], [u, t], u, np.ones(1),
        n_treated_clusters=treated,
    )

