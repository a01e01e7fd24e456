r"""Event studies, pre-trend tests, HonestDiD bounds and Poisson ETWFE on the country-month panel.

The dbt Python models in ``python_models/sensitivity/`` call :func:`run_event_study_sensitivity`
and :func:`run_poisson`; everything they write is decided here and by
:class:`SensitivitySettings` (seeds included), so the same panel gives the same tables.

Event studies (``result_table = 'event_study'``), months since the start ``e`` in the
window ``[-24, 24]``, reference ``e = -1``, each with pointwise 95% intervals and a sup-t
uniform band over the window (:func:`mipa.sensitivity.event_studies.event_study_table`):

* ``etwfe``: Wooldridge ETWFE with **never-treated** controls (every cohort row but
  ``g - 1`` a cell, so the leads exist; Wooldridge 2021 sec. 7). The main marts' ETWFE
  event study uses not-yet-treated controls and has lags only.
* ``csdid``: Callaway & Sant'Anna, never-treated controls, **universal** base period
  ``g - 1`` (the main marts' CS event study has R ``did``'s varying base, whose leads are
  month-on-month changes and not comparable with the lags).
* ``twfe``: classic dynamic TWFE, relative-month dummies in the window, end bins.
* ``poisson_etwfe``: Poisson ETWFE, never-treated controls, count scale (count outcomes).

Pre-trend tests (``'pretrend_test'``): ``H0: beta(e) = 0`` for the leads
``e = -24..-2`` (all leads would need the covariance of ~117 leads from 86 clusters:
singular; the window is also the one the event studies show). Wald ``W = b'V^-1 b`` on
``chi2(q)`` and ``F = W/q`` on ``F(q, G-1)`` with each estimator's clustered covariance
(:func:`mipa.sensitivity.pretrends.wald_pretrend_test`): with one partner per cohort they
leave out the partner's own noise and reject almost always. For ``csdid`` (its leads equal
never-treated ETWFE's on a balanced outcome) also the placebo-referenced test
(:mod:`mipa.sensitivity.placebo`), which does not, but has little power and does not see a
violation shared by all countries of a partner's size.

HonestDiD (``'honest_bounds'``, Rambachan & Roth 2023; :mod:`mipa.sensitivity.honest_did`)
for ``etwfe`` and ``csdid`` on the annex's five main outcomes (verified departures, its
appendix, is left out for runtime). The monthly event study is binned into quarters to keep
the problem small (12 pre and 12 post months take ~10 s per outcome and estimator as
months, ~1 s as quarters; quarters also average out the month-to-month noise that
``Delta^RM`` would otherwise read as pre-trend): with ``beta(-1) = 0``, quarter ``k`` is
the mean of months ``3k..3k+2``, and every quarter is taken relative to the reference
quarter ``k = -1`` (months -3..-1), ``gamma_k = qbar_k - qbar_{-1}``, covariance
``A V A'``. Pre: quarters -4..-2 (months -12..-4); post: quarters 0..3 (months 0..11).
Target ``theta = l'gamma_post`` with equal weights ``l = 1/4``: the average effect over the
first year, relative to the quarter before the start. Rows: the original interval
``theta_hat +/- z sd`` (no violation allowed), ``Delta^RM(Mbar)`` by the conditional /
least-favourable hybrid (C-LF, RR2023's recommendation for relative magnitudes) for
``Mbar`` in (0, 0.5, 1, 1.5, 2), ``Delta^SD(M)`` by the fixed-length interval (FLCI) for
``M`` = (0, 0.25, 0.5, 1, 2) times ``m_unit``, the standard deviation of the three
pre-quarter coefficients (a pre-trend of that size bending by ``M`` per quarter), and the
breakdown values (smallest ``Mbar`` / ``M`` whose interval contains 0, RR2023 sec. 6;
bracketed by the grid and bisected to 1/32, :func:`bracketed_breakdown`). The
covariances are the estimators' clustered ones, too small with one partner per cohort:
the width of the bounds comes mostly from the violation allowed.

Poisson ETWFE (:func:`run_poisson`; Wooldridge 2023): count-scale effects of the count
outcomes, overall (cohorts) and per country (every partner its own cohort), with the
not-yet-treated controls of the linear ETWFE. Countries whose outcome is 0 in every post
month are kept (effect = minus the counterfactual mean), as are zero cells; the rows say
which ones and flag the inference (``cluster_unit_separated``); countries with 0 in every
month are left out of the fit (no information under Poisson) and listed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimability import (
    NUMERICAL_FAILURES,
    STATUS_COLUMNS,
    NotEstimable,
    attempt,
    finalize_status,
    status_columns,
)
from mipa.estimation import OUTCOMES, prepare_panel
from mipa.estimators.poisson_etwfe import poisson_etwfe
from mipa.sensitivity import honest_did as hd
from mipa.sensitivity.event_studies import (
    csdid_event_study_vcov,
    event_study_table,
    poisson_event_study_vcov,
    select_window,
    settings_json,
    twfe_event_study_vcov,
)
from mipa.sensitivity.placebo import placebo_pretrend_test
from mipa.sensitivity.pretrends import EventStudyVcov, etwfe_event_study_vcov, wald_pretrend_test

__all__ = [
    "COUNT_OUTCOMES",
    "EVENT_STUDY_ESTIMATORS",
    "HONEST_ESTIMATORS",
    "RESULT_COLUMNS",
    "POISSON_COLUMNS",
    "SensitivitySettings",
    "event_study_vcovs",
    "honest_rows",
    "pretrend_rows",
    "quarterly_event_study",
    "run_event_study_sensitivity",
    "run_poisson",
]

COUNT_OUTCOMES: tuple[str, ...] = tuple(o for o in OUTCOMES if o != "lead_time_days")
# the annex's main table; verified departures (its appendix) gets no HonestDiD rows (runtime)
MAIN_OUTCOMES: tuple[str, ...] = tuple(o for o in OUTCOMES if o != "verified_departures")
EVENT_STUDY_ESTIMATORS: tuple[str, ...] = ("etwfe", "csdid", "twfe", "poisson_etwfe")
HONEST_ESTIMATORS: tuple[str, ...] = ("etwfe", "csdid")
UNIT = dict(unit="iso3", period="period", first_treat="first_treat")

# how each event study was specified (mart column 'specification')
SPECIFICATION = {
    "etwfe": "cohort_period_cells_never_treated",
    "csdid": "universal_base_period",
    "twfe": "relative_month_dummies_binned_ends",
    "poisson_etwfe": "cohort_period_cells_never_treated_count_scale",
}
CONTROL_GROUP = {"etwfe": "nevertreated", "csdid": "nevertreated", "twfe": "all", "poisson_etwfe": "nevertreated"}
VCOV_SOURCE = {
    "etwfe": "cluster_unit",
    "csdid": "analytic_influence_function",
    "twfe": "cluster_unit",
    "poisson_etwfe": "cluster_unit",
}
PLACEBO_SOURCE = "placebo_rescaled"

RESULT_COLUMNS = [
    "result_table",  # 'event_study' | 'pretrend_test' | 'honest_bounds'
    "estimator",
    "outcome",
    "specification",
    "control_group",
    "event_time",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "band_low",
    "band_high",
    "critical_value",
    "inference",
    "n_clusters",
    "vcov_source",
    "first_lead",
    "last_lead",
    "statistic",
    "df",
    "p_value",
    "f_statistic",
    "df_denominator",
    "p_value_f",
    "n_placebo",
    "restriction",
    "method",
    "parameter",
    "parameter_multiple",
    "m_unit",
    "open_lower",
    "open_upper",
    "breakdown_value",
    "breakdown_multiple",
    "breakdown_limit",
    "pre_window",
    "post_window",
    "note",
    "status",
    "reason",
    "reason_detail",
    "run_settings",
]


@dataclass(frozen=True)
class SensitivitySettings:
    """Options of one sensitivity run; written to every row as JSON."""

    event_window: tuple[int, int] = (-24, 24)
    pretrend_leads: tuple[int, int] = (-24, -2)
    honest_pre_quarters: int = 3
    honest_post_quarters: int = 4
    mbar_grid: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    m_multiples: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
    breakdown_mbar_limit: float = 10.0
    breakdown_m_limit_multiple: float = 20.0
    breakdown_tol: float = 1 / 32  # in Mbar, and in multiples of m_unit for M
    honest_grid_points: int = 200
    alpha: float = 0.05
    seed: int = 20260701
    n_band_draws: int = 10_000
    n_placebo: int = 999
    etwfe_control_group: str = "notyettreated"  # Poisson estimates: as the linear ETWFE
    outcomes: tuple[str, ...] = OUTCOMES
    honest_outcomes: tuple[str, ...] = MAIN_OUTCOMES
    poisson_outcomes: tuple[str, ...] = COUNT_OUTCOMES

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _quiet(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``fn`` and return its result with the text of the warnings it raised (for the
    mart's note column: a warning that reaches the dbt log alone is lost)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, sorted({str(w.message) for w in caught})


# --------------------------------------------------------------------------- event studies
def event_study_vcovs(
    panel: pd.DataFrame, outcome: str, settings: SensitivitySettings
) -> dict[str, tuple[EventStudyVcov, list[str]] | NotEstimable]:
    """Every event study of ``outcome`` with its covariance (and the warnings raised), or
    the :class:`~mipa.estimability.NotEstimable` that says why it has none.

    ``panel`` is :func:`mipa.estimation.prepare_panel`'s output. Poisson for counts only.
    """
    fits: dict[str, Callable[[], EventStudyVcov]] = {
        "etwfe": lambda: etwfe_event_study_vcov(panel, outcome=outcome, **UNIT, control_group="nevertreated"),
        "csdid": lambda: csdid_event_study_vcov(panel, outcome=outcome, **UNIT),
        "twfe": lambda: twfe_event_study_vcov(panel, outcome=outcome, **UNIT, window=settings.event_window),
    }
    if outcome in COUNT_OUTCOMES:
        fits["poisson_etwfe"] = lambda: poisson_event_study_vcov(panel, outcome=outcome, **UNIT)
    out: dict[str, tuple[EventStudyVcov, list[str]] | NotEstimable] = {}
    for name, fit in fits.items():
        result, failure = attempt(lambda fit=fit: _quiet(fit))
        out[name] = result if result is not None else failure
    return out


def _t_df(estimator: str, es: EventStudyVcov) -> int | None:
    """Pointwise reference: t(G-1) for the regressions (as their estimates tables), normal for CS."""
    return None if estimator == "csdid" else es.df


def event_study_rows(estimator: str, outcome: str, es: EventStudyVcov, settings: SensitivitySettings) -> pd.DataFrame:
    """The window's rows of one event study, with pointwise intervals and the sup-t band."""
    table = event_study_table(es, window=settings.event_window, alpha=settings.alpha, t_df=_t_df(estimator, es),
                              n_draws=settings.n_band_draws, seed=settings.seed)
    rows = table.rows.copy()
    separated = set(es.settings.get("separated_event_times", []))
    rows["inference"] = [
        "reference" if np.isnan(se) and e == -1 else (
            VCOV_SOURCE[estimator] + ("_separated" if e in separated else ""))
        for e, se in zip(rows["event_time"], rows["std_error"], strict=True)
    ]
    rows["critical_value"] = table.band_critical_value
    rows["n_clusters"] = es.n_clusters
    return _described(rows, "event_study", estimator, outcome)


def _described(frame: pd.DataFrame, table: str, estimator: str, outcome: str, **more: Any) -> pd.DataFrame:
    """``frame`` with the columns that say which result it is and how it was specified."""
    return frame.assign(result_table=table, estimator=estimator, outcome=outcome,
                        specification=SPECIFICATION[estimator], control_group=CONTROL_GROUP[estimator],
                        vcov_source=VCOV_SOURCE[estimator], **more)


# --------------------------------------------------------------------------- pre-trend tests
def pretrend_rows(
    panel: pd.DataFrame, outcome: str, vcovs: dict[str, tuple[EventStudyVcov, list[str]]],
    settings: SensitivitySettings,
) -> pd.DataFrame:
    """Wald tests of the leads in ``settings.pretrend_leads`` (module docstring), one row per
    estimator and covariance source."""
    lo, hi = settings.pretrend_leads
    leads = list(range(lo, hi + 1))
    out = []
    for estimator, fitted in vcovs.items():
        if isinstance(fitted, NotEstimable):
            out.append({"estimator": estimator, "vcov_source": VCOV_SOURCE[estimator], **status_columns(fitted)})
            continue
        es, notes = fitted
        sub, failure = attempt(lambda es=es: _usable_leads(es, leads))
        if sub is None:
            out.append({"estimator": estimator, "vcov_source": VCOV_SOURCE[estimator], **status_columns(failure)})
            continue
        test, test_notes = _quiet(lambda sub=sub: wald_pretrend_test(sub.estimate, sub.vcov, sub.n_clusters,
                                                                     sub.event_time))
        note = notes + test_notes
        if estimator == "poisson_etwfe" and set(es.settings["separated_event_times"]) & set(map(int, sub.event_time)):
            note.append("some leads have all-zero treated cells (boundary effect; standard error unreliable)")
        out.append({
            "estimator": estimator, "vcov_source": VCOV_SOURCE[estimator],
            "first_lead": int(sub.event_time.min()), "last_lead": int(sub.event_time.max()),
            "statistic": test.statistic, "df": test.df, "p_value": test.p_value,
            "f_statistic": test.f_statistic, "df_denominator": test.df_denominator, "p_value_f": test.p_value_f,
            "n_clusters": sub.n_clusters, "n_placebo": np.nan, "note": "; ".join(note) or None,
        })
    try:
        placebo, notes = _quiet(lambda: placebo_pretrend_test(panel, outcome=outcome, **UNIT, event_times=leads,
                                                              n_placebo=settings.n_placebo, seed=settings.seed))
    except ValueError as exc:  # too few usable controls or draws: say so, keep the other rows
        why = exc if isinstance(exc, NotEstimable) else NotEstimable("too_few_controls", str(exc))
        out.append({"estimator": "csdid", "vcov_source": PLACEBO_SOURCE, **status_columns(why)})
        return _pretrend_frame(out, outcome)
    except NUMERICAL_FAILURES as exc:
        out.append({"estimator": "csdid", "vcov_source": PLACEBO_SOURCE,
                    **status_columns(NotEstimable("singular_design", str(exc)))})
        return _pretrend_frame(out, outcome)
    csdid_fit = vcovs["csdid"]
    out.append({
        "estimator": "csdid", "vcov_source": PLACEBO_SOURCE,
        "first_lead": min(placebo.event_times), "last_lead": max(placebo.event_times),
        "statistic": placebo.statistic, "df": placebo.df, "p_value": placebo.p_value,
        "f_statistic": placebo.statistic / placebo.df, "df_denominator": np.nan, "p_value_f": np.nan,
        "n_clusters": csdid_fit[0].n_clusters if not isinstance(csdid_fit, NotEstimable) else np.nan,
        "n_placebo": placebo.n_placebo,
        "note": "; ".join(notes) or None,
    })
    return _pretrend_frame(out, outcome)


def _usable_leads(es: EventStudyVcov, leads: Sequence[int]) -> EventStudyVcov:
    """The leads of ``leads`` that the event study estimated with a positive variance."""
    sub = select_window(es, leads)
    ok = np.sqrt(np.clip(np.diag(sub.vcov), 0, None)) > 0
    if not ok.any():
        raise NotEstimable("too_few_pre_periods", "no lead in the test window has an estimate with a variance")
    return sub.select([int(e) for e in sub.event_time[ok]])


def _pretrend_frame(out: list[dict[str, Any]], outcome: str) -> pd.DataFrame:
    frame = pd.DataFrame(out)
    return frame.assign(result_table="pretrend_test", outcome=outcome,
                        specification=frame["estimator"].map(SPECIFICATION),
                        control_group=frame["estimator"].map(CONTROL_GROUP))


# --------------------------------------------------------------------------- HonestDiD
def quarterly_event_study(es: EventStudyVcov, n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """Quarter bins relative to the reference quarter (module docstring): ``(gamma, A V A')``
    with ``n_pre`` pre quarters (-n_pre-1..-2) then ``n_post`` post quarters (0..n_post-1).

    Raises ``KeyError`` when a needed month is not in the event study.
    """
    months = list(range(-3 * (n_pre + 1), 3 * n_post))
    estimated = [m for m in months if m != -1]
    sub = es.select(estimated)
    if not np.all(np.isfinite(sub.estimate)):
        raise KeyError("a month of the HonestDiD window has no estimate")
    beta = np.zeros(len(months))
    vcov = np.zeros((len(months), len(months)))
    idx = [months.index(m) for m in estimated]
    beta[idx] = sub.estimate
    vcov[np.ix_(idx, idx)] = sub.vcov
    quarters = list(range(-n_pre - 1, n_post))
    bins = np.array([[1 / 3 if m // 3 == q else 0.0 for m in months] for q in quarters])
    ref = bins[quarters.index(-1)]
    a = np.delete(bins - ref[None, :], quarters.index(-1), axis=0)
    sigma = a @ vcov @ a.T
    return a @ beta, (sigma + sigma.T) / 2


def _bias_multiplier(lv: np.ndarray) -> float:
    """``sum_t t l_t``: the bias of ``theta`` per unit of post-period slope (``delta_t = t c``),
    i.e. the identified set's half-width per unit of ``Mbar max|pre difference|``."""
    return float(np.arange(1, lv.size + 1) @ np.abs(lv))


def _rm_set(beta: np.ndarray, sigma: np.ndarray, n_pre: int, lv: np.ndarray, mbar: float,
            settings: SensitivitySettings) -> hd.GridCS:
    """C-LF confidence set under ``Delta^RM(Mbar)`` on a grid that holds it.

    Grid: the identified set for ``beta`` widened by 6 sd of ``theta_hat`` plus
    ``Mbar * sum_t t l_t * 3 sd`` of the largest pre difference (its sampling noise moves
    the set); a side that still touches the grid's end is widened (at most 3 times).
    """
    n_post = lv.size
    sd = float(np.sqrt(lv @ sigma[n_pre:, n_pre:] @ lv))
    # consecutive pre differences beta_{s+1} - beta_s, the last one against beta_ref = 0
    diff = np.vstack([np.eye(n_pre)[1:] - np.eye(n_pre)[:-1], -np.eye(n_pre)[-1:]]) if n_pre > 1 else -np.eye(1)
    sd_diff = float(np.sqrt(np.max(np.diag(diff @ sigma[:n_pre, :n_pre] @ diff.T))))
    lo, hi = hd.identified_set_rm(beta, n_pre, n_post, mbar, lv)
    pad = 6 * sd + mbar * _bias_multiplier(lv) * 3 * sd_diff
    lb, ub = lo - pad, hi + pad
    for _ in range(4):
        cs = hd.conditional_cs_rm(beta, sigma, n_pre, n_post, mbar, lv, settings.alpha, "LF",
                                  grid_points=settings.honest_grid_points, grid_lb=lb, grid_ub=ub)
        if not (cs.open_lower or cs.open_upper):
            break
        width = ub - lb
        lb, ub = lb - width * cs.open_lower, ub + width * cs.open_upper
    return cs


def bracketed_breakdown(
    contains_zero: Callable[[float], bool], grid: Sequence[float], grid_contains: Sequence[bool],
    *, tol: float, limit: float,
) -> float:
    """Smallest parameter whose confidence set contains 0 (RR2023 sec. 6's breakdown value).

    The computed grid brackets it: between the last grid value whose set excludes 0 and the
    first that includes it; bisection on ``contains_zero`` (the direct test of
    ``theta = 0``) narrows the bracket to ``tol``. Beyond the grid: doubling up to
    ``limit`` (``inf`` when even ``limit`` excludes 0). The sets grow with the parameter.
    """
    lo = None
    for value, holds in zip(grid, grid_contains, strict=True):
        if holds:
            if lo is None:
                return float(value)
            hi = float(value)
            break
        lo = float(value)
    else:
        return float(hd.expand_and_bisect(contains_zero, lo, max(2 * float(grid[-1]), tol), tol, limit))
    return hd.bisect_threshold(contains_zero, lo, hi, tol)


def honest_rows(estimator: str, outcome: str, es: EventStudyVcov, settings: SensitivitySettings) -> pd.DataFrame:
    """Original interval, ``Delta^RM`` and ``Delta^SD`` sets and breakdown values for
    ``theta`` = the first year's average effect (module docstring)."""
    n_pre, n_post = settings.honest_pre_quarters, settings.honest_post_quarters
    beta, sigma = quarterly_event_study(es, n_pre, n_post)
    lv = np.full(n_post, 1.0 / n_post)
    theta = float(lv @ beta[n_pre:])
    sd = float(np.sqrt(lv @ sigma[n_pre:, n_pre:] @ lv))
    alpha = settings.alpha
    m_unit = float(np.std(beta[:n_pre], ddof=1)) if n_pre > 1 else np.nan
    if not (np.isfinite(beta).all() and np.isfinite(sigma).all() and np.isfinite(m_unit)):
        raise NotEstimable("too_few_pre_periods", "the quarterly event study lacks a finite pre-quarter "
                           "coefficient or variance (the smoothness scale needs two pre quarters)")
    base = {"estimate": theta, "std_error": sd, "m_unit": m_unit}
    lo, hi = hd.original_ci(beta, sigma, n_pre, n_post, lv, alpha)
    rows: list[dict[str, Any]] = [{**base, "restriction": "original", "method": "normal", "parameter": 0.0,
                                   "parameter_multiple": 0.0, "ci_low": lo, "ci_high": hi,
                                   "open_lower": False, "open_upper": False}]

    rm = [(float(mb), _rm_set(beta, sigma, n_pre, lv, float(mb), settings)) for mb in settings.mbar_grid]
    zero = np.zeros(1)
    bd_rm = bracketed_breakdown(
        lambda mb: bool(hd.rm_accept(beta, sigma, n_pre, n_post, lv, mb, zero, alpha, "LF", 0)[0]),
        [mb for mb, _ in rm], [cs.lb <= 0 <= cs.ub for _, cs in rm],
        tol=settings.breakdown_tol, limit=settings.breakdown_mbar_limit,
    )
    for mb, cs in rm:
        rows.append({**base, "restriction": "relative_magnitude", "method": "C-LF", "parameter": mb,
                     "parameter_multiple": mb, "ci_low": cs.lb, "ci_high": cs.ub,
                     "open_lower": cs.open_lower, "open_upper": cs.open_upper,
                     "breakdown_value": bd_rm, "breakdown_multiple": bd_rm,
                     "breakdown_limit": settings.breakdown_mbar_limit})

    def flci(m: float) -> hd.FLCIResult:
        return hd.flci_sd(beta, sigma, n_pre, n_post, m, lv, alpha, folded_normal="exact")

    sd_sets = [(float(k), flci(float(k) * m_unit)) for k in settings.m_multiples]
    m_limit = settings.breakdown_m_limit_multiple * m_unit
    bd_sd = bracketed_breakdown(
        lambda m: (lambda r: r.lb <= 0 <= r.ub)(flci(m)),
        [k * m_unit for k, _ in sd_sets], [r.lb <= 0 <= r.ub for _, r in sd_sets],
        tol=settings.breakdown_tol * m_unit, limit=m_limit,
    )
    for k, r in sd_sets:
        rows.append({**base, "restriction": "smoothness", "method": "FLCI", "parameter": k * m_unit,
                     "parameter_multiple": k, "ci_low": r.lb, "ci_high": r.ub,
                     "open_lower": False, "open_upper": False,
                     "breakdown_value": bd_sd, "breakdown_multiple": bd_sd / m_unit if m_unit > 0 else np.nan,
                     "breakdown_limit": m_limit})
    frame = pd.DataFrame(rows)
    for col in ("breakdown_value", "breakdown_multiple"):
        frame[col] = frame[col].replace([np.inf, -np.inf], np.nan)
    return _described(
        frame, "honest_bounds", estimator, outcome,
        pre_window=f"quarters -{n_pre + 1}..-2 (months {-3 * (n_pre + 1)}..-4); reference quarter: months -3..-1",
        post_window=f"quarters 0..{n_post - 1} (months 0..{3 * n_post - 1}), equal weights",
    )


# --------------------------------------------------------------------------- the run
def run_event_study_sensitivity(
    country_month: pd.DataFrame, settings: SensitivitySettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Event studies, pre-trend tests and HonestDiD bounds on ``fct_country_month`` as one
    long table of :data:`RESULT_COLUMNS` (``result_table`` says which). ``progress`` gets a
    line per outcome done."""
    settings = settings or SensitivitySettings()
    panel = prepare_panel(country_month)
    frames = []
    for k, outcome in enumerate(settings.outcomes, 1):
        if progress:
            progress(f"sensitivity: {outcome} ({k}/{len(settings.outcomes)} outcomes: event studies, pre-trend "
                     f"tests{', HonestDiD' if outcome in settings.honest_outcomes else ''})")
        vcovs = event_study_vcovs(panel, outcome, settings)
        for estimator, fitted in vcovs.items():
            rows, failure = (None, fitted) if isinstance(fitted, NotEstimable) else attempt(
                lambda estimator=estimator, es=fitted[0]: event_study_rows(estimator, outcome, es, settings))
            if rows is None:  # one row says why the whole event study is missing
                frames.append(_described(pd.DataFrame([status_columns(failure)]), "event_study", estimator, outcome))
            else:
                frames.append(rows.assign(note="; ".join(fitted[1]) or None))
        frames.append(pretrend_rows(panel, outcome, vcovs, settings))
        if outcome in settings.honest_outcomes:
            for estimator in HONEST_ESTIMATORS:
                fitted = vcovs[estimator]
                rows, failure = (None, fitted) if isinstance(fitted, NotEstimable) else attempt(
                    lambda estimator=estimator, es=fitted[0]: _honest_or_reason(estimator, outcome, es, settings))
                if rows is None:
                    rows = _described(pd.DataFrame([{"restriction": "original", "method": "normal", "parameter": 0.0,
                                                     "parameter_multiple": 0.0, **status_columns(failure)}]),
                                      "honest_bounds", estimator, outcome)
                frames.append(rows)
    out = pd.concat([f.reindex(columns=RESULT_COLUMNS) for f in frames], ignore_index=True)
    out["run_settings"] = settings.as_json()
    return _typed(_with_status(out))


def _with_status(out: pd.DataFrame) -> pd.DataFrame:
    """Status of every row: a test row is estimated when it has a statistic; the event
    study's reference month (estimate 0 by construction) needs no standard error."""
    is_test = (out["result_table"] == "pretrend_test").to_numpy()
    reference = (out["inference"] == "reference").to_numpy()
    probe = out.assign(
        estimate=np.where(is_test, out["statistic"], out["estimate"]),
        std_error=np.where(is_test | reference, 0.0, out["std_error"]),
    )
    done = finalize_status(probe)
    return out.assign(**{c: done[c] for c in STATUS_COLUMNS})


def _honest_or_reason(estimator: str, outcome: str, es: EventStudyVcov, settings: SensitivitySettings
                      ) -> pd.DataFrame:
    """:func:`honest_rows`, with a month of the window that has no estimate (e.g. no
    observed partner in it) turned into a reason."""
    try:
        return honest_rows(estimator, outcome, es, settings)
    except KeyError as exc:
        raise NotEstimable("too_few_pre_periods", f"a month of the HonestDiD window has no estimate ({exc})") from exc


_INTEGER_COLUMNS = ("event_time", "n_clusters", "first_lead", "last_lead", "df", "n_placebo")
_BOOLEAN_COLUMNS = ("open_lower", "open_upper")
_TEXT_COLUMNS = ("result_table", "estimator", "outcome", "specification", "control_group", "inference",
                 "vcov_source", "restriction", "method", "pre_window", "post_window", "note", "status", "reason",
                 "reason_detail", "run_settings")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """One dtype per column (nullable integers and booleans), so that every result table
    of the union lands in the warehouse with the same column types."""
    out = frame.copy()
    for col in out.columns:
        if col in _INTEGER_COLUMNS:
            out[col] = pd.array(out[col].astype(float).round(), dtype="Int64")
        elif col in _BOOLEAN_COLUMNS:
            out[col] = out[col].astype("boolean")
        elif col in _TEXT_COLUMNS:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        else:
            out[col] = out[col].astype(float)
    return out


# --------------------------------------------------------------------------- Poisson ETWFE
POISSON_COLUMNS = [
    "estimator",
    "outcome",
    "aggregation",
    "scope",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "rate_ratio",
    "rate_ratio_ci_low",
    "rate_ratio_ci_high",
    "n_obs",
    "n_clusters",
    "n_treated_clusters",
    "inference",
    "control_group",
    "n_all_zero_countries",
    "all_zero_countries",
    "n_zero_cells",
    "zero_post_countries",
    "zero_baseline_countries",
    "separation_handling",
    "status",
    "reason",
    "reason_detail",
    "run_settings",
]
SEPARATION_HANDLING = (
    "kept: a treated cell with 0 in every row has effect minus its counterfactual mean "
    "(tau = -inf, standard error unreliable); a treated country with 0 in every month before "
    "its start has counterfactual 0 (effect = its mean count); countries with 0 in every month "
    "carry no information under Poisson and are left out of the fit, listed"
)


def zero_post_countries(panel: pd.DataFrame, outcome: str) -> list[str]:
    """Partner countries whose ``outcome`` is 0 in every observed month from their start on
    (the case that made the annex drop Poisson); partners never observed after the start
    are not listed."""
    treated = panel[(panel["first_treat"] > 0) & (panel["period"] >= panel["first_treat"])]
    post = treated.dropna(subset=[outcome]).groupby("iso3")[outcome].max()
    return sorted(str(c) for c in post.index[post <= 0])


def _text(values: Sequence[Any]) -> str | None:
    """Comma-separated text of ``values``; None when there are none."""
    return ", ".join(str(v) for v in values) if len(values) else None


def poisson_rows(panel: pd.DataFrame, outcome: str, settings: SensitivitySettings) -> pd.DataFrame:
    """Overall (cohort) and per-country Poisson ETWFE rows of one count outcome.

    Always the four overall aggregations (simple, group, dynamic, calendar) and one
    ``group`` row per partner country (``first_treat > 0``), whether or not they can be
    estimated. The cohort fit gives the overall rows and the per-country fit (each partner
    its own cohort) the country rows, each attempted on its own
    (:func:`mipa.estimability.attempt`): a data condition
    (:class:`~mipa.estimability.NotEstimable`, a singular matrix) gives rows with NULL
    numbers and the status columns filled, anything else propagates. When the joint
    per-country fit fails as a whole, each partner is fitted alone with the other partners'
    post-start months left out; in the per-country model those months are their own cells
    and fit exactly, so the partner's estimate is the same (only ``N`` in the small-sample
    factor differs).
    """
    common = dict(outcome=outcome, **UNIT, control_group=settings.etwfe_control_group, alpha=settings.alpha)
    labels = dict(zip(panel["iso3"], panel["iso3"], strict=True))
    partners = sorted(str(c) for c in panel.loc[panel["first_treat"] > 0, "iso3"].unique())
    zero_post = zero_post_countries(panel, outcome)
    totals = panel.dropna(subset=[outcome]).groupby("iso3")[outcome].sum()
    all_zero = sorted(str(c) for c in totals.index[totals <= 0])
    handling = (SEPARATION_HANDLING + "; a month in which every comparison country has 0 while a partner has "
                "events has counterfactual 0 (effect = the partner's fitted count, inference flagged)")
    aggregations = ("simple", "group", "dynamic", "calendar")
    numbers = ["estimate", "std_error", "ci_low", "ci_high", "p_value", "rate_ratio", "rate_ratio_ci_low",
               "rate_ratio_ci_high", "n_obs", "n_clusters", "n_treated_clusters"]

    def fitted(data: pd.DataFrame, **kw: Any) -> tuple[Any, list[str], NotEstimable | None]:
        out, failure = attempt(lambda: _quiet(lambda: poisson_etwfe(data, **common, **kw)))
        return (None, [], failure) if out is None else (out[0], out[1], None)

    def missing(aggregation: str, scope: str, failure: NotEstimable, fit: Any = None) -> dict[str, Any]:
        row: dict[str, Any] = {"aggregation": aggregation, "scope": scope, **dict.fromkeys(numbers, np.nan),
                               "inference": None, **status_columns(failure)}
        if fit is not None:
            row.update(n_obs=fit.settings["n_obs"], n_clusters=fit.settings["n_units"], n_treated_clusters=0)
        return row

    def zero_cells(fit: Any, scope: str | None) -> int:
        cells = fit.settings["separation"]["zero_cells"] if fit is not None else []
        return sum(1 for c in cells if c["event_time"] >= 0 and (scope is None or str(c["group"]) == scope))

    def why_no_row(iso: str, fit: Any) -> NotEstimable:
        rows = panel[(panel["iso3"] == iso)].dropna(subset=[outcome])
        g = float(panel.loc[panel["iso3"] == iso, "first_treat"].iloc[0])
        if not (rows["period"] < g).any():
            return NotEstimable("no_pre_treatment_data", f"{iso}: {outcome} is not observed before its start")
        if not (rows["period"] >= g).any():
            return NotEstimable("no_post_treatment_data", f"{iso}: {outcome} is not observed from its start on")
        if fit is not None and fit.settings.get("last_cohort_as_control") == g:
            return NotEstimable("no_control_units", f"{iso}: no never-treated country; the last partner is the "
                                                    "comparison until its start and has no comparison after it")
        if (rows[outcome] <= 0).all():
            return NotEstimable("all_zero_outcome", f"{iso}: {outcome} is 0 in every month")
        return NotEstimable("no_estimate_for_scope", f"{iso}: no cell of this partner is left in the fit")

    # overall: the cohort fit
    cohort_fit, notes_g, fail_g = fitted(panel)
    if cohort_fit is not None:
        est = cohort_fit.estimates
        overall = est[est["scope"] == "overall"].copy()
        have = set(overall["aggregation"])
        extra = [missing(a, "overall", NotEstimable("no_estimate_for_scope"), cohort_fit)
                 for a in aggregations if a not in have]
        overall = pd.concat([overall, pd.DataFrame(extra)], ignore_index=True) if extra else overall
        sep = cohort_fit.settings["separation"]
        overall["n_zero_cells"] = zero_cells(cohort_fit, None)
        overall["zero_baseline_countries"] = _text([str(u) for u in sep["zero_baseline_units"]])
    else:
        overall = pd.DataFrame([missing(a, "overall", fail_g) for a in aggregations])
        overall["n_zero_cells"] = 0
        overall["zero_baseline_countries"] = None
    overall["zero_post_countries"] = _text(zero_post)

    # per country: the joint per-unit fit, else each partner alone
    unit_fit, notes_u, fail_u = fitted(panel, cohort="unit", unit_labels=labels)
    refitted: dict[str, str] = {}
    country_rows = []
    for iso in partners:
        fit, failure = unit_fit, fail_u
        if fit is None:
            others_post = (panel["first_treat"] > 0) & (panel["iso3"] != iso) & (panel["period"] >= panel["first_treat"])
            fit, _, failure = fitted(panel[~others_post], cohort="unit", unit_labels=labels)
            refitted[iso] = "estimated alone" if fit is not None else f"{failure.reason} alone"
        if fit is None:
            row = missing("group", iso, failure)
            zb = False
        else:
            est = fit.estimates
            match = est[(est["aggregation"] == "group") & (est["scope"] == iso)]
            row = match.iloc[0].to_dict() if len(match) else missing("group", iso, why_no_row(iso, fit), fit)
            zb = iso in {str(u) for u in fit.settings["separation"]["zero_baseline_units"]}
        row.update(n_zero_cells=zero_cells(fit, iso), zero_post_countries=iso if iso in zero_post else None,
                   zero_baseline_countries=iso if zb else None)
        country_rows.append(row)
    country = pd.DataFrame(country_rows, columns=list(overall.columns) if not country_rows else None)

    fit_settings = (settings_json({k: v for k, v in cohort_fit.settings.items() if k != "cells_log_scale"})
                    if cohort_fit is not None else {"failure": str(fail_g)})
    run_settings = json.dumps({**json.loads(settings.as_json()), "notes": notes_g + notes_u, "fit": fit_settings,
                               "per_country_fit": ("joint" if unit_fit is not None else
                                                   {"joint_failure": str(fail_u), "partners": refitted})},
                              sort_keys=True, default=str)
    out = pd.concat([overall, country], ignore_index=True)
    return out.assign(
        estimator="poisson_etwfe", outcome=outcome, control_group=settings.etwfe_control_group,
        n_all_zero_countries=len(all_zero), all_zero_countries=_text(all_zero),
        separation_handling=handling, run_settings=run_settings,
    )


def run_poisson(country_month: pd.DataFrame, settings: SensitivitySettings | None = None) -> pd.DataFrame:
    """Poisson ETWFE (count scale) for every count outcome, as rows of :data:`POISSON_COLUMNS`:
    per outcome the four overall aggregations and one row per partner country, each either
    estimated or ``not_estimable`` with a documented reason (:mod:`mipa.estimability`)."""
    settings = settings or SensitivitySettings()
    panel = prepare_panel(country_month)
    frames = [poisson_rows(panel, outcome, settings) for outcome in settings.poisson_outcomes]
    out = pd.concat(frames, ignore_index=True).reindex(columns=POISSON_COLUMNS)
    for col in ("estimate", "std_error", "ci_low", "ci_high", "p_value", "rate_ratio", "rate_ratio_ci_low",
                "rate_ratio_ci_high", "n_obs", "n_clusters", "n_treated_clusters"):
        out[col] = pd.to_numeric(out[col], errors="raise").astype(float)
    for col in ("n_all_zero_countries", "n_zero_cells"):
        out[col] = out[col].astype(np.int64)
    for col in ("estimator", "outcome", "aggregation", "scope", "inference", "control_group", "all_zero_countries",
                "zero_post_countries", "zero_baseline_countries", "separation_handling", *STATUS_COLUMNS,
                "run_settings"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out.reset_index(drop=True)
