"""The event-study and pre-trend-test rows of the sensitivity mart.

References: Wooldridge, J. M. (2021), SSRN 3906345, sec. 7 (ETWFE leads with never-treated
controls); Callaway, B. and Sant'Anna, P. H. C. (2021), Journal of Econometrics 225(2)
(universal base period); Wooldridge, J. M. (2023), The Econometrics Journal 26(3) (Poisson
ETWFE); Montiel Olea, J. L. and Plagborg-Møller, M. (2019), "Simultaneous confidence bands",
J. Applied Econometrics 34(1) (the sup-t band of
:func:`mipa.sensitivity.event_studies.event_study_table`).

:func:`event_study_vcovs` fits every event study of an outcome with its covariance,
:func:`event_study_rows` gives the window's rows with pointwise intervals and the sup-t
band, and :func:`pretrend_rows` the tests of the leads.

Pre-trend tests (``'pretrend_test'``): ``H0: beta(e) = 0`` for the leads
``e = -24..-2`` (all leads would need the covariance of ~117 leads from 86 clusters:
singular; the window is also the one the event studies show). Wald ``W = b'V^-1 b`` on
``chi2(q)`` and ``F = W/q`` on ``F(q, G-1)`` with each estimator's clustered covariance
(:func:`mipa.sensitivity.pretrends.wald_pretrend_test`): with one partner per cohort they
leave out the partner's own noise and reject almost always. For ``csdid`` (its leads equal
never-treated ETWFE's on a balanced outcome) also the placebo-referenced test
(:mod:`mipa.sensitivity.placebo`), which does not, but has little power and does not see a
violation shared by all countries of a partner's size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimability import NUMERICAL_FAILURES, NotEstimable, attempt, status_columns
from mipa.sensitivity import specification as spec
from mipa.sensitivity.event_studies import (
    csdid_event_study_vcov,
    event_study_table,
    poisson_event_study_vcov,
    select_window,
    twfe_event_study_vcov,
)
from mipa.sensitivity.placebo import placebo_pretrend_test
from mipa.sensitivity.pretrends import EventStudyVcov, etwfe_event_study_vcov, wald_pretrend_test
from mipa.sensitivity.specification import COUNT_OUTCOMES, UNIT, SensitivitySettings, described, quiet

__all__ = ["event_study_rows", "event_study_vcovs", "pretrend_frame", "pretrend_rows", "t_df", "usable_leads"]


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
        result, failure = attempt(lambda fit=fit: quiet(fit))
        out[name] = result if result is not None else failure
    return out


def t_df(estimator: str, es: EventStudyVcov) -> int | None:
    """Pointwise reference: t(G-1) for the regressions (as their estimates tables), normal for CS."""
    return None if estimator == "csdid" else es.df


def event_study_rows(estimator: str, outcome: str, es: EventStudyVcov, settings: SensitivitySettings) -> pd.DataFrame:
    """The window's rows of one event study, with pointwise intervals and the sup-t band."""
    table = event_study_table(es, window=settings.event_window, alpha=settings.alpha, t_df=t_df(estimator, es),
                              n_draws=settings.n_band_draws, seed=settings.seed)
    rows = table.rows.copy()
    separated = set(es.settings.get("separated_event_times", []))
    rows["inference"] = [
        "reference" if np.isnan(se) and e == -1 else (
            spec.VCOV_SOURCE[estimator] + ("_separated" if e in separated else ""))
        for e, se in zip(rows["event_time"], rows["std_error"], strict=True)
    ]
    rows["critical_value"] = table.band_critical_value
    rows["n_clusters"] = es.n_clusters
    return described(rows, "event_study", estimator, outcome)


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
            out.append({"estimator": estimator, "vcov_source": spec.VCOV_SOURCE[estimator], **status_columns(fitted)})
            continue
        es, notes = fitted
        sub, failure = attempt(lambda es=es: usable_leads(es, leads))
        if sub is None:
            out.append({"estimator": estimator, "vcov_source": spec.VCOV_SOURCE[estimator], **status_columns(failure)})
            continue
        test, test_notes = quiet(lambda sub=sub: wald_pretrend_test(sub.estimate, sub.vcov, sub.n_clusters,
                                                                     sub.event_time))
        note = notes + test_notes
        if estimator == "poisson_etwfe" and set(es.settings["separated_event_times"]) & set(map(int, sub.event_time)):
            note.append("some leads have all-zero treated cells (boundary effect; standard error unreliable)")
        out.append({
            "estimator": estimator, "vcov_source": spec.VCOV_SOURCE[estimator],
            "first_lead": int(sub.event_time.min()), "last_lead": int(sub.event_time.max()),
            "statistic": test.statistic, "df": test.df, "p_value": test.p_value,
            "f_statistic": test.f_statistic, "df_denominator": test.df_denominator, "p_value_f": test.p_value_f,
            "n_clusters": sub.n_clusters, "n_placebo": np.nan, "note": "; ".join(note) or None,
        })
    try:
        placebo, notes = quiet(lambda: placebo_pretrend_test(panel, outcome=outcome, **UNIT, event_times=leads,
                                                              n_placebo=settings.n_placebo, seed=settings.seed))
    except ValueError as exc:  # too few usable controls or draws: say so, keep the other rows
        why = exc if isinstance(exc, NotEstimable) else NotEstimable("too_few_controls", str(exc))
        out.append({"estimator": "csdid", "vcov_source": spec.PLACEBO_SOURCE, **status_columns(why)})
        return pretrend_frame(out, outcome)
    except NUMERICAL_FAILURES as exc:
        out.append({"estimator": "csdid", "vcov_source": spec.PLACEBO_SOURCE,
                    **status_columns(NotEstimable("singular_design", str(exc)))})
        return pretrend_frame(out, outcome)
    csdid_fit = vcovs["csdid"]
    out.append({
        "estimator": "csdid", "vcov_source": spec.PLACEBO_SOURCE,
        "first_lead": min(placebo.event_times), "last_lead": max(placebo.event_times),
        "statistic": placebo.statistic, "df": placebo.df, "p_value": placebo.p_value,
        "f_statistic": placebo.statistic / placebo.df, "df_denominator": np.nan, "p_value_f": np.nan,
        "n_clusters": csdid_fit[0].n_clusters if not isinstance(csdid_fit, NotEstimable) else np.nan,
        "n_placebo": placebo.n_placebo,
        "note": "; ".join(notes) or None,
    })
    return pretrend_frame(out, outcome)


def usable_leads(es: EventStudyVcov, leads: Sequence[int]) -> EventStudyVcov:
    """The leads of ``leads`` that the event study estimated with a positive variance."""
    sub = select_window(es, leads)
    ok = np.sqrt(np.clip(np.diag(sub.vcov), 0, None)) > 0
    if not ok.any():
        raise NotEstimable("too_few_pre_periods", "no lead in the test window has an estimate with a variance")
    return sub.select([int(e) for e in sub.event_time[ok]])


def pretrend_frame(out: list[dict[str, Any]], outcome: str) -> pd.DataFrame:
    frame = pd.DataFrame(out)
    return frame.assign(result_table="pretrend_test", outcome=outcome,
                        specification=frame["estimator"].map(spec.SPECIFICATION),
                        control_group=frame["estimator"].map(spec.CONTROL_GROUP))
