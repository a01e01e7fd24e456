"""The conclusions section: sentences written from the run's numbers, with the caveats the
annex states (per-country effects are illustrative, COVID-19 overlaps the pre-periods,
Morocco's Western Sahara statement one month before its start, lead time's varying N).

Every number comes from the same mart rows the tables show (:mod:`mipa.report.tables`
picks them), so the words cannot drift from Table 2. Pure: ReportData in, text out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mipa.outcomes import ANNEX_ESTIMATOR, MAIN_OUTCOMES, PRIMARY_OUTCOME, main_estimator
from mipa.report import labels
from mipa.report.data import ReportData
from mipa.report.formatting import (
    MISSING,
    as_date,
    auto_decimals,
    fmt_int,
    fmt_interval,
    fmt_month_long,
    fmt_number,
    fmt_percent,
    is_missing,
    not_estimable_text,
)
from mipa.report.tables import planted_effect, select_estimate
from mipa.report.validity import default_inference_row, valid_interval_at_design

# the annex: the Dutch government changed its wording on Morocco's autonomy plan for the
# Western Sahara one month before the partnership started (June 2022)
WESTERN_SAHARA_STATEMENT = dt.date(2022, 5, 1)
MOROCCO = "MAR"
# a start this many months after the end of the COVID period is still in the recovery
RECOVERY_MONTHS = 12
LEAD_TIME = "lead_time_days"


@dataclass
class Headline:
    """One effect as Table 2P or Table 2 shows it."""

    outcome: str
    estimate: float
    ci_low: float | None  # None: no valid interval at this design
    ci_high: float | None
    method: str | None  # inference method of the interval
    estimator: str = ANNEX_ESTIMATOR

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    @property
    def excludes_zero(self) -> bool:
        return self.has_interval and (self.ci_low > 0 or self.ci_high < 0)

    def covers(self, value: float) -> bool:
        return self.has_interval and self.ci_low <= value <= self.ci_high


def _float(value: Any) -> float | None:
    return None if is_missing(value) else float(value)


def headline(data: ReportData, outcome: str, *, estimator: str | None = None, scope: str = "overall") -> Headline | None:
    """The estimate and interval of one Table 2P / Table 2 cell: the default (Monte
    Carlo-validated) method's interval where the fct_did_inference mart names one, none where
    no method is valid at this design, else the estimator's own mart interval.

    ``estimator`` None: the outcome's main estimator (:func:`~mipa.outcomes.main_estimator`),
    or the annex's where the main one has no estimate (not estimated, or not estimable)."""
    if estimator is None:
        main = main_estimator(outcome)
        return headline(data, outcome, estimator=main, scope=scope) or (
            headline(data, outcome, estimator=ANNEX_ESTIMATOR, scope=scope) if main != ANNEX_ESTIMATOR else None)
    row = select_estimate(data.estimates_of(estimator), estimator=estimator, outcome=outcome, scope=scope)
    if row is None or not_estimable_text(row) or is_missing(row["estimate"]):
        return None
    if not valid_interval_at_design(data.inference, estimator=estimator, scope=scope, outcome=outcome):
        return Headline(outcome, float(row["estimate"]), None, None, None, estimator)
    default = default_inference_row(data.inference, estimator=estimator, outcome=outcome, scope=scope)
    if default is not None and not is_missing(default["estimate"]):
        return Headline(outcome, float(default["estimate"]), _float(default["ci_low"]), _float(default["ci_high"]),
                        str(default["inference"]), estimator)
    lo, hi = _float(row.get("ci_low")), _float(row.get("ci_high"))
    if lo is None or hi is None:
        return Headline(outcome, float(row["estimate"]), None, None, None, estimator)
    return Headline(outcome, float(row["estimate"]), lo, hi, str(row["inference"]), estimator)


# the estimators whose overall interval the Monte Carlo may validate where ETWFE's is not, in
# order of preference: Poisson ETWFE (unbiased where effects and the month shocks are
# multiplicative, Table I4) with its conformal interval, then the conformal average of the
# partners' own counterfactual-model effects (fct_did_inference)
VALID_ALTERNATIVES: tuple[str, ...] = ("poisson_etwfe", "conformal")


def valid_alternative(data: ReportData, outcome: str, *, exclude: str) -> tuple[str, Headline] | None:
    """The first of :data:`VALID_ALTERNATIVES` other than ``exclude`` (the headline's
    estimator) with a method that qualifies at this design for the overall effect on
    ``outcome``, with its default method's estimate and interval (else None)."""
    if data.inference is None or data.inference.empty:
        return None
    for estimator in VALID_ALTERNATIVES:
        if estimator == exclude or not valid_interval_at_design(data.inference, estimator=estimator, scope="overall",
                                                                outcome=outcome):
            continue
        row = default_inference_row(data.inference, estimator=estimator, outcome=outcome, scope="overall")
        if row is None or is_missing(row["estimate"]) or is_missing(row["ci_low"]) or is_missing(row["ci_high"]):
            continue
        return estimator, Headline(outcome, float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"]),
                                   str(row["inference"]), estimator)
    return None


def _number(value: Any, lang: str, outcome: str) -> str:
    return MISSING if is_missing(value) else fmt_number(value, auto_decimals(value, outcome=outcome), lang)


def _estimate_text(h: Headline, lang: str) -> str:
    if h.has_interval:
        return fmt_interval(h.estimate, h.ci_low, h.ci_high, lang=lang, outcome=h.outcome)
    return _number(h.estimate, lang, h.outcome)


def join_names(names: Sequence[str], lang: str) -> str:
    """``a, b and c`` / ``a, b en c``."""
    names = list(names)
    if not names:
        return labels.text(lang, "concl_none")
    if len(names) == 1:
        return names[0]
    word = " and " if lang == "en" else " en "
    return ", ".join(names[:-1]) + word + names[-1]


def _months_between(a: dt.date, b: dt.date) -> int:
    """Whole months from ``a`` to ``b`` (positive when b is later)."""
    return (b.year - a.year) * 12 + (b.month - a.month)


def _country_names(data: ReportData, lang: str) -> dict[str, str]:
    col = labels.COUNTRY_NAME_COLUMN[lang]
    return {r["iso3"]: (r[col] or r["iso3"]) for _, r in data.partners.iterrows()}


def _estimator_names(heads: dict[str, Headline], lang: str) -> str:
    """``Poisson extended TWFE (Table 2P) on forced departures and requests and extended TWFE
    in levels (Table 2) on lead time``: the estimators behind ``heads`` with their outcomes."""
    used = list(dict.fromkeys(h.estimator for h in heads.values()))
    return join_names([labels.text(lang, f"concl_main_{estimator}", outcomes=join_names(
        [labels.outcome(lang, o).lower() for o, h in heads.items() if h.estimator == estimator], lang))
        for estimator in used], lang)


def _n_obs(data: ReportData, estimator: str, outcome: str) -> Any:
    row = select_estimate(data.estimates, estimator=estimator, outcome=outcome, scope="overall")
    return None if row is None else row.get("n_obs")


def conclusions(data: ReportData, lang: str) -> list[str]:
    """The conclusions, one string per point, in reading order."""
    lang = labels.check_lang(lang)
    t = lambda key, **kw: labels.text(lang, key, **kw)  # noqa: E731
    lower = lambda o: labels.outcome(lang, o).lower()  # noqa: E731
    names = _country_names(data, lang)
    points: list[str] = []

    heads = {o: headline(data, o) for o in MAIN_OUTCOMES}
    heads = {o: h for o, h in heads.items() if h is not None}
    if not heads:
        points.append(t("concl_not_estimated"))
    if heads:
        items = "; ".join(f"{lower(o)} {_estimate_text(h, lang)}" for o, h in heads.items())
        sentences = [t("concl_overall", n_partner=len(data.partners), items=items,
                       estimators=_estimator_names(heads, lang))]
        with_interval = [o for o, h in heads.items() if h.has_interval]
        if with_interval:
            methods = sorted({labels.inference(lang, heads[o].method) for o in with_interval})
            sentences += [
                t("concl_intervals", methods=", ".join(methods).lower()),
                t("concl_excludes_zero", outcomes=join_names(
                    [lower(o) for o in with_interval if heads[o].excludes_zero], lang)),
                t("concl_includes_zero", outcomes=join_names(
                    [lower(o) for o in with_interval if not heads[o].excludes_zero], lang)),
            ]
        if not with_interval:
            sentences.append(t("concl_no_valid"))
        elif len(with_interval) < len(heads):
            sentences.append(t("concl_no_valid_some", outcomes=join_names(
                [lower(o) for o, h in heads.items() if not h.has_interval], lang)))
        points.append(" ".join(sentences))
        alternatives = {o: valid_alternative(data, o, exclude=h.estimator) for o, h in heads.items()
                        if not h.has_interval}
        for estimator in VALID_ALTERNATIVES:
            alternative = {o: pair[1] for o, pair in alternatives.items() if pair is not None and pair[0] == estimator}
            if not alternative:
                continue
            # coverage and size as measured for the first outcome named (its own where the Monte Carlo ran it)
            first_outcome = next(iter(alternative))
            first = default_inference_row(data.inference, estimator=estimator, outcome=first_outcome, scope="overall")
            points.append(t(
                f"concl_valid_alternative_{estimator}",
                method=labels.inference(lang, str(first["inference"])).lower(),
                coverage=fmt_percent(first["mc_coverage"], 1, lang),
                size=fmt_percent(first["mc_size"], 1, lang),
                mc_outcome=lower(str(first["mc_outcome"])),
                items="; ".join(f"{lower(o)} {_estimate_text(h, lang)}" for o, h in alternative.items()),
                outcomes=join_names([lower(o) for o, h in alternative.items() if h.excludes_zero], lang),
            ))

        # the annex's specification beside the main estimator, on the outcomes where they differ
        annex = {o: headline(data, o, estimator=ANNEX_ESTIMATOR) for o, h in heads.items() if h.estimator != ANNEX_ESTIMATOR}
        annex = {o: h for o, h in annex.items() if h is not None}
        if annex:
            points.append(t("concl_annex", items="; ".join(f"{lower(o)} {_estimate_text(h, lang)}" for o, h in annex.items()))
                          + ("" if all(h.has_interval for h in annex.values()) else " " + t("concl_annex_no_valid")))

    main = heads.get(PRIMARY_OUTCOME)
    if main is not None:
        others = {}
        for est in ("csdid", "twfe"):
            aggs = ("simple", "coefficient") if est == "twfe" else None
            row = select_estimate(data.estimates, estimator=est, outcome=PRIMARY_OUTCOME, scope="overall",
                                  aggregations=aggs)
            if row is not None and not not_estimable_text(row) and not is_missing(row["estimate"]):
                others[est] = float(row["estimate"])
        if others:
            same = all((v > 0) == (main.estimate > 0) for v in others.values())
            points.append(t("concl_robust", outcome_lower=lower(PRIMARY_OUTCOME),
                            csdid=_number(others.get("csdid"), lang, PRIMARY_OUTCOME),
                            twfe=_number(others.get("twfe"), lang, PRIMARY_OUTCOME),
                            agreement=t("concl_same_sign") if same else t("concl_other_sign")))

    # per country: the spread, and why it is illustrative only
    by_country = {iso3: headline(data, PRIMARY_OUTCOME, scope=iso3) for iso3 in names}
    by_country = {iso3: h for iso3, h in by_country.items() if h is not None}
    if len(by_country) >= 2:
        low = min(by_country, key=lambda k: (by_country[k].estimate, k))
        high = max(by_country, key=lambda k: (by_country[k].estimate, k))
        first = default_inference_row(data.inference, estimator=by_country[low].estimator, outcome=PRIMARY_OUTCOME,
                                      scope=low)
        valid = first is not None and all(h.has_interval and h.method == first["inference"] for h in by_country.values())
        # without a valid interval per country the spread is of point estimates only
        text = (lambda h: _estimate_text(h, lang)) if valid else (lambda h: _number(h.estimate, lang, PRIMARY_OUTCOME))
        spread = dict(outcome_lower=lower(PRIMARY_OUTCOME), low_country=names[low], low=text(by_country[low]),
                      high_country=names[high], high=text(by_country[high]))
        if valid:
            points.append(t("concl_per_country_valid", **spread,
                            method=labels.inference(lang, str(first["inference"])).lower(),
                            coverage=fmt_percent(first["mc_coverage"], 1, lang),
                            countries=join_names([names[k] for k, h in by_country.items() if h.excludes_zero], lang)))
        else:
            points.append(t("concl_per_country", **spread))

    # COVID-19 overlaps the pre-periods
    if data.covid_months and len(data.partners):
        first, last = as_date(min(data.covid_months)), as_date(max(data.covid_months))
        starts = {r["iso3"]: as_date(r["mipa_start_month"]) for _, r in data.partners.iterrows()}
        overlapped = [iso for iso, s in starts.items() if s is not None and s > first]
        recent = [iso for iso, s in starts.items()
                  if s is not None and s > first and _months_between(last, s) <= RECOVERY_MONTHS]
        if overlapped:
            points.append(t("concl_covid", covid_first=fmt_month_long(first, lang),
                            covid_last=fmt_month_long(last, lang),
                            countries=join_names([names[i] for i in overlapped], lang),
                            recent=join_names([names[i] for i in recent], lang) if recent
                            else t("concl_covid_none_recent")))

    # Morocco and the Western Sahara statement
    if MOROCCO in names:
        start = as_date(data.partners.loc[data.partners["iso3"] == MOROCCO, "mipa_start_month"].iloc[0])
        gap = _months_between(WESTERN_SAHARA_STATEMENT, start)
        gap_text = (t("concl_gap_one") if gap == 1 else t("concl_gap_before", n=gap) if gap > 1
                    else t("concl_gap_after"))
        h = headline(data, PRIMARY_OUTCOME, scope=MOROCCO)
        points.append(t("concl_morocco", start=fmt_month_long(start, lang),
                        statement=fmt_month_long(WESTERN_SAHARA_STATEMENT, lang), gap=gap_text,
                        outcome_lower=lower(PRIMARY_OUTCOME),
                        estimate=MISSING if h is None else _estimate_text(h, lang)))

    # lead time: its N varies
    n_lead = _n_obs(data, "etwfe", LEAD_TIME)
    if not is_missing(n_lead):
        n_panel = _n_obs(data, "etwfe", PRIMARY_OUTCOME)
        n_panel = data.panel_facts.get("n_rows") if is_missing(n_panel) else n_panel
        n_cs = _n_obs(data, "csdid", LEAD_TIME)
        points.append(t("concl_lead_time", n_lead=fmt_int(n_lead, lang), n_panel=fmt_int(n_panel, lang),
                        csdid_part="" if is_missing(n_cs) else t("concl_lead_time_csdid", n_cs=fmt_int(n_cs, lang))))

    # synthetic runs: what the method recovered
    planted = planted_effect(data.planted, outcome=PRIMARY_OUTCOME, scope="overall") if data.synthetic else None
    if planted is not None and main is not None:
        verdict = (t("concl_covers") if main.covers(planted) else t("concl_misses")) if main.has_interval \
            else t("concl_point_only")
        points.append(t("concl_synthetic", outcome_lower=lower(PRIMARY_OUTCOME),
                        planted=_number(planted, lang, PRIMARY_OUTCOME), estimate=_number(main.estimate, lang,
                                                                                       PRIMARY_OUTCOME),
                        verdict=verdict))
    return points

