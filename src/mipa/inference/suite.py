r"""Every estimator x inference method on one outcome of the panel, as one tidy table.

The same function fills the ``fct_did_inference`` mart (on the real or synthetic panel) and
runs inside every Monte Carlo replication (:mod:`mipa.montecarlo`), so the coverage the
harness measures is the coverage of exactly the intervals the marts and the report show.

Methods (``inference`` column; ``scope`` = 'overall' or a partner's ISO3)
-----------------------------------------------------------------------
========== ====================================== ==============================================
estimator  inference                              what
========== ====================================== ==============================================
etwfe      cluster_unit                           Wooldridge (2021) ETWFE, not-yet-treated
                                                  controls; country-clustered SE (the annex's)
etwfe      wild_cluster_bootstrap_webb            restricted wild cluster bootstrap-t, Webb
                                                  weights, constant-effect null, interval by
                                                  test inversion (MacKinnon & Webb 2018;
                                                  :mod:`~mipa.inference.wild_bootstrap`)
etwfe      randomization_conley_taber             placebo assignments of the treated starts to
                                                  never-treated countries (Conley & Taber 2011)
etwfe      randomization_ferman_pinto             the same with each placebo country's residuals
                                                  rescaled to the treated country's pre-period
                                                  scale (Ferman & Pinto 2019)
csdid      multiplier_bootstrap                   Callaway & Sant'Anna (2021) doubly robust,
                                                  never-treated controls, multiplier bootstrap
twfe       cluster_unit / twoway_cluster /        classic TWFE coefficient with the annex's
           driscoll_kraay                         standard errors
twfe       wild_cluster_bootstrap_webb            restricted WCR for the TWFE coefficient
sdid       sdid_placebo                           synthetic DiD per country (Arkhangelsky et al.
                                                  2021) against never-treated countries,
                                                  placebo SE (every control once); per
                                                  country only
poisson_   cluster_unit                           Poisson ETWFE (Wooldridge 2023), not-yet-treated
etwfe                                             controls, count-scale effects, country-
                                                  clustered delta-method SE (count outcomes)
poisson_   conformal_poisson_t                    per country: Poisson ETWFE's own count-scale
etwfe                                             effect (the partner as a multiple of the
                                                  model's month profile, fitted on every
                                                  untreated cell: Poisson imputation), with
                                                  the CWZ test of conformal_ratio_t around it
poisson_   conformal_average_poisson_refit        overall: Poisson ETWFE's simple effect with the
etwfe                                             refitted conformal average's interval
conformal  conformal_factor_t_ma2                 per country: the partner on the (2-month
                                                  smoothed) never-treated mean, a + b ybar_ct,
                                                  refitted under each null; CWZ (2021)
                                                  conformal permutation test with a
                                                  studentized post-vs-rest statistic, inverted
                                                  exactly (:mod:`~mipa.inference.conformal`)
conformal  conformal_average_factor_t_ma2          overall: the per-country factor-model effects
                                                  averaged over post months; conformal test of
                                                  the average with the countries' own effects
                                                  kept, common calendar shifts, studentized by
                                                  the long-run variance of the average
conformal  conformal_average_factor_refit_ma2      overall: the same average and shifts, each
                                                  country's effect re-estimated on every
                                                  shifted sample and the average studentized by
                                                  its own sandwich long-run variance there
                                                  (Chung & Romano 2013): no levelling off of
                                                  the statistic far from the estimate
conformal  conformal_ratio_t                      per country: the partner on the raw never-
                                                  treated mean, b ybar_ct, b fitted by the
                                                  Poisson score (the multiplicative counterfactual
                                                  of Poisson ETWFE: b = pre-period sum of y over
                                                  pre-period sum of ybar); CWZ test as above
conformal  conformal_average_ratio_refit           overall: the refitted average (as above) of
                                                  the ratio-model effects
========== ====================================== ==============================================

Per country, ETWFE's clustered and WCR rows come from the regression with one cohort per
country (``cohort="unit"``); the randomization rows from the panel of the never-treated
countries plus that country alone (:func:`~mipa.inference.randomization.placebo_in_space`);
on a balanced panel both are the imputation estimator's per-country mean (Borusyak et al.
2024), so their estimates agree up to the other partners serving as not-yet-treated
controls in the first.

Randomization and WCR intervals are test inversions under a constant additive effect;
a row whose test rejects no value within reach has an infinite bound (say so, never clip).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable, attempt, finalize_status, status_columns
from mipa.estimation import OUTCOMES, complete_rows, diagnose_scope, prepare_panel
from mipa.estimators.csdid import callaway_santanna
from mipa.estimators.etwfe import EtwfeFit, etwfe, etwfe_fit
from mipa.estimators.poisson_etwfe import poisson_etwfe
from mipa.estimators.results import ESTIMATE_COLUMNS
from mipa.estimators.twfe import twfe
from mipa.inference.conformal import conformal_rows, overall_row
from mipa.inference.conformal_stats import SCORE_MODELS
from mipa.inference.randomization import (
    PanelArrays,
    conley_taber,
    imputation_estimator,
    placebo_in_space,
)
from mipa.inference.sdid import sdid_by_unit
from mipa.inference.wild_bootstrap import fit_contrasts, twfe_contrast, wild_cluster_bootstrap

# estimator x inference pairs this module can produce, in table order
METHODS: tuple[tuple[str, str], ...] = (
    ("etwfe", "cluster_unit"),
    ("etwfe", "wild_cluster_bootstrap_webb"),
    ("etwfe", "randomization_conley_taber"),
    ("etwfe", "randomization_ferman_pinto"),
    ("csdid", "multiplier_bootstrap"),
    ("twfe", "cluster_unit"),
    ("twfe", "twoway_cluster"),
    ("twfe", "driscoll_kraay"),
    ("twfe", "wild_cluster_bootstrap_webb"),
    ("sdid", "sdid_placebo"),
    ("poisson_etwfe", "cluster_unit"),
    ("poisson_etwfe", "conformal_average_poisson_refit"),
    ("poisson_etwfe", "conformal_poisson_t"),
    ("conformal", "conformal_average_factor_t_ma2"),
    ("conformal", "conformal_average_factor_refit_ma2"),
    ("conformal", "conformal_average_ratio_refit"),
    ("conformal", "conformal_factor_t_ma2"),
    ("conformal", "conformal_ratio_t"),
)
__all__ = ["METHODS", "SUITE_COLUMNS", "InferenceSettings", "inference_results", "inference_table"]
SUITE_COLUMNS = ["estimator", "inference", "outcome", "aggregation", "scope", "estimate", "std_error", "ci_low",
                 "ci_high", "p_value", "n_obs", "n_clusters", "n_treated_clusters", "status", "reason",
                 "reason_detail", "seconds"]


@dataclass(frozen=True)
class InferenceSettings:
    """Draws, seeds and level of every method; written to the mart as JSON."""

    alpha: float = 0.05
    wild_n_boot: int = 999
    wild_seed: int = 20260701
    n_placebo: int = 999  # Conley-Taber overall: placebo assignments (all of them when fewer)
    placebo_seed: int = 20260701
    # per country every control is the placebo once (exact; synthdid samples these N0 with
    # replacement); the overall SDID average is not run: ETWFE is the overall estimator of
    # record, and its joint placebo doubles the cost of the Monte Carlo
    sdid_exhaustive: bool = True
    sdid_replications: int = 200  # used only when sdid_exhaustive is False
    sdid_seed: int = 20260701
    cs_n_boot: int = 999
    cs_seed: int = 20260701
    # conformal per-country intervals (CWZ 2021): counterfactual model, statistic, and the
    # control mean smoothed over 2h+1 months (h = 2 measured best in the Monte Carlo pilot)
    conformal_model: str = "factor"
    conformal_statistic: str = "t"
    conformal_smooth: int = 2
    methods: tuple[tuple[str, str], ...] = METHODS

    def as_json(self) -> str:
        out = asdict(self)
        out["methods"] = [f"{e}:{m}" for e, m in self.methods]
        return json.dumps(out, sort_keys=True)


def _timed_rows(frame: pd.DataFrame, estimator: str, seconds: float) -> pd.DataFrame:
    out = frame.reindex(columns=ESTIMATE_COLUMNS).copy()
    out.insert(0, "estimator", estimator)
    out["seconds"] = seconds
    return out


def _wants(settings: InferenceSettings, estimator: str, inference: str | None = None) -> bool:
    return any(e == estimator and (inference is None or m == inference) for e, m in settings.methods)


def _overall_and_countries(fit: Callable[..., pd.DataFrame], treated: Sequence[str],
                           inference: str | None,
                           by_unit: Callable[[], pd.DataFrame] | None = None) -> pd.DataFrame:
    """The overall ``simple`` row of ``fit()`` and the per-country ``group`` rows of
    ``fit(cohort="unit", ...)`` (every partner its own cohort; or ``by_unit()`` when given),
    each attempted on its own: a run that cannot be estimated leaves its rows with the reason."""
    frames = []
    overall, failure = attempt(fit)
    if overall is not None:
        frames.append(overall[(overall["aggregation"] == "simple") & (overall["scope"] == "overall")])
    else:
        frames.append(_failed_rows(["overall"], failure, inference))
    countries, failure = attempt(by_unit or (lambda: fit(cohort="unit", unit_labels={u: u for u in treated})))
    if countries is not None:
        frames.append(countries[(countries["aggregation"] == "group") & countries["scope"].isin(list(treated))])
    else:
        frames.append(_failed_rows(treated, failure, inference))
    return pd.concat(frames)


def _unit_cohort_fit(panel: pd.DataFrame, outcome: str, treated: Sequence[str]) -> EtwfeFit:
    """ETWFE with every partner its own cohort: fitted once per outcome, shared by the
    clustered country rows and the wild bootstrap."""
    return etwfe_fit(panel, outcome=outcome, unit="iso3", period="period", first_treat="first_treat",
                     control_group="notyettreated", cohort="unit", unit_labels={u: u for u in treated})


def _etwfe_cluster(panel: pd.DataFrame, outcome: str, treated: Sequence[str], alpha: float,
                   unit_fit: Callable[[], EtwfeFit]) -> pd.DataFrame:
    common = {"outcome": outcome, "unit": "iso3", "period": "period", "first_treat": "first_treat",
              "control_group": "notyettreated", "alpha": alpha}
    return _overall_and_countries(lambda **kw: etwfe(panel, **common, **kw).estimates, treated, "cluster_unit",
                                  by_unit=lambda: unit_fit().result(alpha).estimates)


def _failed_rows(scopes: Sequence[str], failure: NotEstimable, inference: str | None = None) -> pd.DataFrame:
    """Rows of ``scopes`` that could not be estimated, with the failure's reason."""
    return pd.DataFrame([
        {"aggregation": "simple" if sc == "overall" else "group", "scope": sc, "inference": inference,
         **status_columns(failure)}
        for sc in scopes
    ])


def _wild(panel: pd.DataFrame, outcome: str, treated: Sequence[str], s: InferenceSettings,
          unit_fit: Callable[[], EtwfeFit]) -> pd.DataFrame:
    scopes = ["overall", *treated]
    contrasts, failure = attempt(lambda: fit_contrasts(
        unit_fit(), rows=[("simple", "overall")] + [("group", u) for u in treated]))
    if contrasts is None:
        return _failed_rows(scopes, failure)
    rows = []
    for scope, fc in zip(scopes, contrasts, strict=True):
        aggregation = "simple" if scope == "overall" else "group"
        if isinstance(fc, NotEstimable):
            why = diagnose_scope(panel, outcome, scope) if fc.reason == "no_post_treatment_data" else fc
            rows.append(_failed_rows([scope], why).iloc[0].to_dict())
            continue
        res, failure = attempt(lambda fc=fc: wild_cluster_bootstrap(
            fc, n_boot=s.wild_n_boot, seed=s.wild_seed, alpha=s.alpha))
        rows.append(res.row(aggregation) if res is not None else _failed_rows([scope], failure).iloc[0].to_dict())
    return pd.DataFrame(rows)


def _check_placebo_pool(n_controls: int, alpha: float) -> None:
    """A two-sided rank test over ``n_controls`` placebos reaches level ``alpha`` only when
    ``1 / (n_controls + 1) <= alpha``; with fewer its interval could never exclude a value."""
    if (n_controls + 1) * alpha < 1:
        raise NotEstimable("too_few_controls", f"{n_controls} control countries: a placebo test needs at least "
                           f"{int(np.ceil(1 / alpha)) - 1} to reach the {1 - alpha:.0%} level")


def _randomization(pa: PanelArrays, s: InferenceSettings, rescale: bool) -> pd.DataFrame:
    label = "randomization_ferman_pinto" if rescale else "randomization_conley_taber"
    est = imputation_estimator()
    n_controls = int((~pa.treated).sum())

    def overall():
        _check_placebo_pool(n_controls, s.alpha)
        return conley_taber(pa, est, n_placebo=s.n_placebo, seed=s.placebo_seed, alpha=s.alpha, rescale=rescale)

    def country(u):
        _check_placebo_pool(n_controls, s.alpha)
        return placebo_in_space(pa, est, u, alpha=s.alpha, rescale=rescale)

    rows = []
    for scope, run in [("overall", overall)] + [(u, lambda u=u: country(u)) for u in pa.units[pa.treated]]:
        res, failure = attempt(run)
        aggregation = "simple" if scope == "overall" else "group"
        rows.append(res.row(aggregation) if res is not None else _failed_rows([str(scope)], failure).iloc[0].to_dict())
    return pd.DataFrame(rows).assign(inference=label)


def _require_count(panel: pd.DataFrame, outcome: str) -> None:
    if (panel[outcome].dropna() < 0).any() or outcome == "lead_time_days":
        raise NotEstimable("not_a_count", f"{outcome} is not a count: Poisson ETWFE is for counts")


def _poisson(panel: pd.DataFrame, outcome: str, treated: Sequence[str], s: InferenceSettings) -> pd.DataFrame:
    _require_count(panel, outcome)
    common = {"outcome": outcome, "unit": "iso3", "period": "period", "first_treat": "first_treat",
              "control_group": "notyettreated", "alpha": s.alpha}
    out = _overall_and_countries(lambda **kw: poisson_etwfe(panel, **common, **kw).estimates, treated,
                                 "cluster_unit").reindex(columns=ESTIMATE_COLUMNS)
    # separated cells are flagged in the estimator's own label; the method is the clustered one
    return out.assign(inference="cluster_unit")


def _csdid(panel: pd.DataFrame, outcome: str, treated: Sequence[str], s: InferenceSettings) -> pd.DataFrame:
    common = {"outcome": outcome, "unit": "iso3", "period": "period", "first_treat": "first_treat",
              "control_group": "nevertreated", "n_boot": s.cs_n_boot, "seed": s.cs_seed, "alpha": s.alpha}
    return _overall_and_countries(lambda **kw: callaway_santanna(panel, **common, **kw).estimates, treated,
                                  "multiplier_bootstrap")


def _twfe(panel: pd.DataFrame, outcome: str, s: InferenceSettings) -> pd.DataFrame:
    frames = []
    analytic = [m for e, m in s.methods if e == "twfe" and m != "wild_cluster_bootstrap_webb"]
    if analytic:
        res, failure = attempt(lambda: twfe(panel, outcome=outcome, unit="iso3", period="period",
                                            treatments=("treated_now",), vcov="all", alpha=s.alpha).estimates)
        if res is not None:
            frames.append(res[res["inference"].isin(analytic)])
        else:
            frames += [_failed_rows(["overall"], failure, m) for m in analytic]
    if _wants(s, "twfe", "wild_cluster_bootstrap_webb"):
        def wild():
            fc = twfe_contrast(panel, outcome=outcome, unit="iso3", period="period", treatment="treated_now")
            return wild_cluster_bootstrap(fc, n_boot=s.wild_n_boot, seed=s.wild_seed, alpha=s.alpha)

        res, failure = attempt(wild)
        frames.append(pd.DataFrame([res.row("simple")]) if res is not None
                      else _failed_rows(["overall"], failure, "wild_cluster_bootstrap_webb"))
    return pd.concat(frames) if frames else pd.DataFrame(columns=ESTIMATE_COLUMNS)


def _sdid(pa: PanelArrays, s: InferenceSettings) -> pd.DataFrame:
    rows = sdid_by_unit(pa, replications=s.sdid_replications, seed=s.sdid_seed, alpha=s.alpha,
                        exhaustive=s.sdid_exhaustive, overall=False, on_gaps="skip")
    return pd.DataFrame([r.row("group") for r in rows])


def _conformal(pa: PanelArrays, s: InferenceSettings, overall: bool, studentize: str = "block",
               model: str | None = None) -> pd.DataFrame:
    # the ratio models fit no regression on the control series (no errors in variables): unsmoothed
    model = model or s.conformal_model
    smooth = 0 if model in SCORE_MODELS else s.conformal_smooth
    if overall:
        return pd.DataFrame([overall_row(pa, model=model, smooth=smooth, alpha=s.alpha, studentize=studentize)])
    units = conformal_rows(pa, model=model, statistic=s.conformal_statistic, alpha=s.alpha, smooth=smooth)
    return units.reindex(columns=ESTIMATE_COLUMNS)


def _poisson_conformal(panel: pd.DataFrame, outcome: str, pa: PanelArrays, s: InferenceSettings,
                       overall: bool) -> pd.DataFrame:
    """Poisson ETWFE's own estimates (its month profile as the counterfactual's control
    series: :func:`~mipa.inference.conformal_unit.control_profile`) with conformal intervals."""
    _require_count(panel, outcome)
    return _conformal(pa, s, overall=overall, studentize="refit" if overall else "block", model="poisson")


def _expected(estimator: str, inference: str | None, treated: Sequence[str],
              s: InferenceSettings) -> list[tuple[str, str]]:
    """(inference, scope) of every row a job must produce."""
    if estimator == "twfe":
        return [(m, "overall") for e, m in s.methods if e == "twfe"]
    if str(inference).startswith("conformal_average"):
        return [(inference, "overall")]
    per_country_only = estimator == "sdid" or str(inference).startswith("conformal_")
    scopes = list(treated) if per_country_only else ["overall", *treated]
    return [(inference, sc) for sc in scopes]


def _complete(rows: pd.DataFrame, expected: Sequence[tuple[str, str]], failure: NotEstimable | None,
              panel: pd.DataFrame, outcome: str, estimator: str) -> pd.DataFrame:
    """Every expected (inference, scope) gets a row: missing ones say why (the job's own
    failure, or what the panel shows for that scope; :func:`mipa.estimation.complete_rows`)."""
    keyed = [("simple" if sc == "overall" else "group", sc, inf) for inf, sc in expected]
    out = complete_rows(rows.reindex(columns=ESTIMATE_COLUMNS), keyed, failure, panel, outcome,
                        {"estimator": estimator})
    return out.reindex(columns=ESTIMATE_COLUMNS)


def inference_table(
    panel: pd.DataFrame, outcome: str, settings: InferenceSettings | None = None
) -> pd.DataFrame:
    """Every method of ``settings.methods`` on ``outcome``: one row per method x scope.

    ``panel``: long, one row per ``iso3`` x ``period`` (consecutive integers) with
    ``first_treat`` (the start period, 0 = never treated in the window), as
    :func:`mipa.estimation.prepare_panel` returns. Columns :data:`SUITE_COLUMNS`;
    ``seconds`` is the wall time of the estimator call that produced the row (the
    benchmark and the Monte Carlo report it; the marts drop it). Every method x scope has
    a row: one that cannot be estimated on this panel (:mod:`mipa.estimability`) has a NULL
    estimate, ``status = 'not_estimable'`` and the reason, and the others are computed.
    """
    s = settings or InferenceSettings()
    panel = panel.assign(treated_now=((panel["first_treat"] > 0) & (panel["period"] >= panel["first_treat"]))
                         .astype(float))
    treated = sorted(panel.loc[panel["first_treat"] > 0, "iso3"].unique().tolist())
    pa = PanelArrays.from_frame(panel, outcome=outcome, unit="iso3", period="period", first_treat="first_treat")
    shared: dict[str, EtwfeFit] = {}

    def unit_fit() -> EtwfeFit:  # a failure raises again for each user, with its reason
        if "fit" not in shared:
            shared["fit"] = _unit_cohort_fit(panel, outcome, treated)
        return shared["fit"]

    jobs = [
        ("etwfe", "cluster_unit", lambda: _etwfe_cluster(panel, outcome, treated, s.alpha, unit_fit)),
        ("etwfe", "wild_cluster_bootstrap_webb", lambda: _wild(panel, outcome, treated, s, unit_fit)),
        ("etwfe", "randomization_conley_taber", lambda: _randomization(pa, s, rescale=False)),
        ("etwfe", "randomization_ferman_pinto", lambda: _randomization(pa, s, rescale=True)),
        ("csdid", "multiplier_bootstrap", lambda: _csdid(panel, outcome, treated, s)),
        ("twfe", None, lambda: _twfe(panel, outcome, s)),
        ("poisson_etwfe", "cluster_unit", lambda: _poisson(panel, outcome, treated, s)),
        ("poisson_etwfe", "conformal_average_poisson_refit",
         lambda: _poisson_conformal(panel, outcome, pa, s, overall=True)),
        ("poisson_etwfe", "conformal_poisson_t", lambda: _poisson_conformal(panel, outcome, pa, s, overall=False)),
        ("sdid", "sdid_placebo", lambda: _sdid(pa, s)),
        ("conformal", "conformal_average_factor_t_ma2", lambda: _conformal(pa, s, overall=True)),
        ("conformal", "conformal_average_factor_refit_ma2",
         lambda: _conformal(pa, s, overall=True, studentize="refit")),
        ("conformal", "conformal_average_ratio_refit",
         lambda: _conformal(pa, s, overall=True, studentize="refit", model="ratio")),
        ("conformal", "conformal_factor_t_ma2", lambda: _conformal(pa, s, overall=False)),
        ("conformal", "conformal_ratio_t", lambda: _conformal(pa, s, overall=False, model="ratio")),
    ]
    frames = []
    for estimator, inference, run in jobs:
        if not _wants(s, estimator, inference):
            continue
        tick = time.perf_counter()
        rows, failure = attempt(run)
        if rows is None:
            rows = pd.DataFrame(columns=ESTIMATE_COLUMNS)
        elif inference is not None:
            rows = rows.assign(inference=rows["inference"].fillna(inference))
        rows = _complete(rows, _expected(estimator, inference, treated, s), failure, panel, outcome, estimator)
        frames.append(_timed_rows(rows, estimator, time.perf_counter() - tick))
    # the status of a row follows from the row alone: filled once for the whole table
    out = finalize_status(pd.concat(frames, ignore_index=True))
    out.insert(2, "outcome", outcome)
    order = {pair: k for k, pair in enumerate(METHODS)}
    out["_order"] = [order.get((e, m), len(order)) for e, m in zip(out["estimator"], out["inference"], strict=True)]
    out["_scope"] = out["scope"] != "overall"
    out = out.sort_values(["_order", "_scope", "scope"], kind="mergesort").drop(columns=["_order", "_scope"])
    return out.reindex(columns=SUITE_COLUMNS).reset_index(drop=True)


def inference_results(
    country_month: pd.DataFrame,
    settings: InferenceSettings | None = None,
    outcomes: Sequence[str] | None = None,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """:func:`inference_table` for every outcome of ``fct_country_month``, for the mart.
    ``progress`` (e.g. :func:`mipa.processes.progress_line`) gets a line when an outcome
    starts (what runs) and when it is done.

    Drops the timing column (it differs between runs) and adds ``run_settings`` (JSON), so
    the same panel gives the same table. ``workers > 1`` runs the outcomes in that many
    fresh processes (spawned, not forked: the caller may hold a database connection); the
    result does not depend on it.
    """

    s = settings or InferenceSettings()
    panel = prepare_panel(country_month)
    todo = list(outcomes or OUTCOMES)
    if workers > 1 and len(todo) > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context) as pool:
            frames = list(pool.map(inference_table, [panel] * len(todo), todo, [s] * len(todo)))
    else:
        frames = []
        running = ", ".join(f"{e} ({sum(m == e for m, _ in s.methods)} method"
                            f"{'' if sum(m == e for m, _ in s.methods) == 1 else 's'})"
                            for e in dict.fromkeys(m for m, _ in s.methods))
        for k, outcome in enumerate(todo, 1):
            tick = time.perf_counter()
            if progress:
                progress(f"inference: {outcome} ({k}/{len(todo)} outcomes): {running}")
            frames.append(inference_table(panel, outcome, s))
            if progress:
                progress(f"inference: {outcome} done ({k}/{len(todo)} outcomes, {len(frames[-1])} rows, "
                         f"{time.perf_counter() - tick:.1f} s)")
    out = pd.concat(frames, ignore_index=True).drop(columns=["seconds"])
    out["run_settings"] = s.as_json()
    return out
