"""The analyst's API: staggered DiD in three lines, in the style of R ``did`` and pyfixest.

>>> import mipa                                                            # doctest: +SKIP
>>> fit = mipa.att_gt(df, yname="y", tname="t", idname="id", gname="g")    # doctest: +SKIP
>>> print(fit.aggregate("dynamic").summary())                              # doctest: +SKIP

Column arguments follow R ``did``: ``yname`` outcome, ``tname`` integer period, ``idname``
unit, ``gname`` first treated period (0, NaN or a period after the panel: never treated).

Three entry points wrap the estimators of :mod:`mipa.estimators` (the numbers are theirs,
unchanged; each result keeps the estimator's :class:`~mipa.estimators.results.DidResult`
as ``.result``):

* :func:`att_gt`: Callaway & Sant'Anna (2021) group-time ATTs
  (:func:`mipa.estimators.csdid.callaway_santanna`), a :class:`GroupTimeResult`;
* :func:`etwfe`: Wooldridge's extended TWFE, linear or ``family="poisson"``
  (:func:`mipa.estimators.etwfe.etwfe_fit`, :func:`mipa.estimators.poisson_etwfe.poisson_etwfe`),
  a :class:`GroupTimeResult`;
* :func:`twfe`: the classic TWFE regression (:func:`mipa.estimators.twfe.twfe`), a
  :class:`TwfeResult`.

The result types live in :mod:`mipa.api_results`.
``GroupTimeResult.aggregate(type)`` (``"simple"``, ``"group"``, ``"dynamic"``,
``"calendar"``; R ``did::aggte``, ``etwfe::emfx``) gives an :class:`AggregateResult`.
Every result has ``tidy()`` (a DataFrame with ``term``, ``estimate``, ``std_error``,
``ci_low``, ``ci_high``, ``p_value``), ``summary()`` (a text table), ``vcov`` (the variance
matrix of the estimates: from the influence functions for Callaway & Sant'Anna, the
cluster-robust covariance of the regression for linear ETWFE and its delta-method image
for the aggregates; ``None`` where the estimator does not give one: Poisson ETWFE, TWFE
with several rows) and ``plot()`` (a matplotlib Figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Unpack

import numpy as np
import pandas as pd

from mipa.api_results import TIDY_COLUMNS, AggregateResult, GroupTimeResult, TwfeResult
from mipa.estimators.csdid import CSOptions, callaway_santanna_fit
from mipa.estimators.etwfe import etwfe_fit
from mipa.estimators.poisson_etwfe import poisson_etwfe
from mipa.estimators.twfe import twfe as twfe_estimator

__all__ = ["AggregateResult", "GroupTimeResult", "TwfeResult", "TIDY_COLUMNS", "att_gt", "etwfe", "twfe"]


# --------------------------------------------------------------------------- entry points
def att_gt(
    data: pd.DataFrame, *, yname: str, tname: str, idname: str, gname: str, **options: Unpack[CSOptions]
) -> GroupTimeResult:
    """Group-time average treatment effects ATT(g,t), as R ``did::att_gt``.

    ``options`` (:class:`~mipa.estimators.csdid.CSOptions`: ``covariates``,
    ``control_group``, ``base_period``, ``anticipation``, ``est_method``, ``bootstrap``,
    ``n_boot``, ``seed``, ``alpha``, ``cohort``, ``unit_labels``, ``multiplier``) are those
    of :func:`mipa.estimators.csdid.callaway_santanna`, with its defaults (its docstring
    states the formulas). With ``bootstrap=True`` (R's default) standard errors and the
    uniform bands come from the multiplier bootstrap with ``n_boot`` draws from ``seed``;
    ``aggregate`` reuses the same draws. The result carries the cells' influence functions.
    """
    fit = callaway_santanna_fit(data, outcome=yname, unit=idname, period=tname, first_treat=gname, **options)
    return GroupTimeResult.from_result(fit.result, cs_fit=fit)


def etwfe(
    data: pd.DataFrame, *, yname: str, tname: str, idname: str, gname: str,
    covariates: Sequence[str] = (),
    control_group: Literal["notyettreated", "nevertreated"] = "notyettreated",
    family: Literal["poisson"] | None = None,
    cohort: Literal["group", "unit"] = "group",
    unit_labels: Mapping | None = None,
    alpha: float = 0.05,
) -> GroupTimeResult:
    """Wooldridge's extended TWFE, as R ``etwfe`` / Stata ``jwdid``.

    ``family=None``: OLS (:func:`mipa.estimators.etwfe.etwfe`); ``family="poisson"``:
    Poisson QMLE for counts with effects on the count scale
    (:func:`mipa.estimators.poisson_etwfe.poisson_etwfe`; with covariates R ``etwfe``'s
    covariate slopes, not-yet-treated controls). Standard errors are clustered by unit;
    intervals use t with G-1 degrees of freedom.
    """
    names = dict(outcome=yname, unit=idname, period=tname, first_treat=gname, control_group=control_group,
                 cohort=cohort, unit_labels=unit_labels)
    if family is None:
        fit = etwfe_fit(data, covariates=covariates, **names)
        return GroupTimeResult.from_result(fit.result(alpha), etwfe_fit=fit)
    if family == "poisson":
        return GroupTimeResult.from_result(poisson_etwfe(data, **names, alpha=alpha, covariates=covariates))
    raise ValueError(f"family must be None or 'poisson', not {family!r}")


def twfe(
    data: pd.DataFrame, *, yname: str, tname: str, idname: str,
    gname: str | None = None,
    dname: str | Sequence[str] | None = None,
    vcov: Literal["twoway", "cluster_unit", "driscoll_kraay", "all"] = "twoway",
    dk_lags: int | None = None,
    alpha: float = 0.05,
) -> TwfeResult:
    """Classic TWFE regression ``y_it = a_i + l_t + b D_it + e_it`` (:func:`mipa.estimators.twfe.twfe`).

    The treatment is ``dname`` (one or more numeric columns), or, given ``gname``, the
    dummy ``treated = 1[g > 0 and t >= g]``. ``vcov``: ``"twoway"`` (unit and period
    clusters), ``"cluster_unit"``, ``"driscoll_kraay"`` or ``"all"``.
    """
    if (gname is None) == (dname is None):
        raise ValueError("give exactly one of gname (first treated period) and dname (treatment column)")
    if dname is not None:
        treatments = [dname] if isinstance(dname, str) else list(dname)
        panel = data
    else:
        treatments = ["treated"]
        g = pd.to_numeric(data[gname]).to_numpy(dtype=float)
        t = pd.to_numeric(data[tname]).to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            treated = np.isfinite(g) & (g > 0) & (t >= g)
        panel = pd.DataFrame({idname: data[idname].to_numpy(), tname: data[tname].to_numpy(),
                              yname: data[yname].to_numpy(), "treated": treated.astype(float)})
        if yname == "treated":
            raise ValueError("yname 'treated' is the name of the built treatment dummy; rename the outcome")
    result = twfe_estimator(panel, outcome=yname, unit=idname, period=tname, treatments=treatments,
                            vcov=vcov, dk_lags=dk_lags, alpha=alpha)
    return TwfeResult.from_result(result)


