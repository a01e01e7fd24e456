"""Every word the report shows, in English and Dutch: one dictionary per language (the
longer texts in ``text/*.yml``, read by :func:`load_text`).

The Dutch terms are the annex's own (Gedwongen vertrek, Laissez-passers,
Nationaliteitsbevestigingen, Doorlooptijd, Aanvragen, Aantoonbaar vertrek). Code looks
labels up with :func:`label`; a missing key is an error, so both languages stay complete
(``tests/python/test_report.py`` checks that they have the same keys).
"""

from __future__ import annotations

from pathlib import Path

import yaml

LANGUAGES = ("en", "nl")


def load_text(name: str) -> dict[str, dict[str, str]]:
    """The words of ``text/<name>.yml`` beside this module: one map per language of
    :data:`LANGUAGES` (the report's prose is data, kept out of the code)."""
    data = yaml.safe_load((Path(__file__).with_name("text") / f"{name}.yml").read_text(encoding="utf-8"))
    return {lang: {str(k): str(v) for k, v in data[lang].items()} for lang in LANGUAGES}


# column of dim_country that holds the country name in each language
COUNTRY_NAME_COLUMN = {"en": "country_name_en", "nl": "country_name_nl"}

OUTCOMES: dict[str, dict[str, str]] = {
    "en": {
        "forced_departures": "Forced departures",
        "laissez_passers": "Laissez-passers",
        "confirmations": "Nationality confirmations",
        "lead_time_days": "Lead time (days)",
        "requests": "Requests",
        "verified_departures": "Verified departures",
        # yearly exploratory panel (annex 11.2)
        "independent_departures": "Independent returns",
        "unsupervised_departures": "Returns without supervision",
        "total_departures": "Total returns",
    },
    "nl": {
        "forced_departures": "Gedwongen vertrek",
        "laissez_passers": "Laissez-passers",
        "confirmations": "Nationaliteitsbevestigingen",
        "lead_time_days": "Doorlooptijd",
        "requests": "Aanvragen",
        "verified_departures": "Aantoonbaar vertrek",
        "independent_departures": "Zelfstandige terugkeer",
        "unsupervised_departures": "Terugkeer zonder toezicht",
        "total_departures": "Terugkeer totaal",
    },
}

# the yearly panel names forced departures the way annex 11.2 does
YEARLY_OUTCOMES: dict[str, dict[str, str]] = {
    "en": {"forced_departures": "Forced returns"},
    "nl": {"forced_departures": "Gedwongen terugkeer"},
}

ESTIMATORS: dict[str, dict[str, str]] = {
    "en": {
        "etwfe": "Extended two-way fixed effects (Wooldridge)",
        "csdid": "Doubly robust staggered DiD (Callaway & Sant'Anna)",
        "twfe": "Classic two-way fixed effects",
    },
    "nl": {
        "etwfe": "Extended two-way fixed effects (Wooldridge)",
        "csdid": "Doubly robust staggered difference-in-differences (Callaway & Sant'Anna)",
        "twfe": "Klassieke two-way fixed effects",
    },
}

INFERENCE: dict[str, dict[str, str]] = {
    "en": {
        "cluster_unit": "Clustered by country",
        "cluster_unit_stata": "Clustered by country",
        "twoway_cluster": "Two-way clustered (country and month)",
        "driscoll_kraay": "Driscoll-Kraay",
        "multiplier_bootstrap": "Multiplier bootstrap",
        "analytic_influence_function": "Analytic (influence function)",
        "wild_cluster_bootstrap_webb": "Wild cluster bootstrap (Webb)",
        "randomization_conley_taber": "Randomization (Conley-Taber)",
        "randomization_ferman_pinto": "Randomization (Ferman-Pinto)",
        "sdid_placebo": "Placebo",
        "conformal_factor_t_ma2": "Conformal (CWZ), factor model",
        "conformal_average_factor_t_ma2": "Conformal test of the average (countries' own effects kept), factor model",
        "conformal_average_factor_refit_ma2": "Conformal test of the average, refitted on every shift, factor model",
        "conformal_ratio_t": "Conformal (CWZ), ratio (Poisson) model",
        "conformal_average_ratio_refit": "Conformal test of the average, refitted on every shift, ratio (Poisson) model",
        "conformal_poisson_t": "Conformal (CWZ) around the model's own counterfactual",
        "conformal_average_poisson_refit": "Conformal test of the average around the model's own counterfactual, "
                                           "refitted on every shift",
    },
    "nl": {
        "cluster_unit": "Geclusterd per land",
        "cluster_unit_stata": "Geclusterd per land",
        "twoway_cluster": "Two-way clustered (land en maand)",
        "driscoll_kraay": "Driscoll-Kraay",
        "multiplier_bootstrap": "Multiplier bootstrap",
        "analytic_influence_function": "Analytisch (influence function)",
        "wild_cluster_bootstrap_webb": "Wild cluster bootstrap (Webb)",
        "randomization_conley_taber": "Randomisatie (Conley-Taber)",
        "randomization_ferman_pinto": "Randomisatie (Ferman-Pinto)",
        "sdid_placebo": "Placebo",
        "conformal_factor_t_ma2": "Conform (CWZ), factormodel",
        "conformal_average_factor_t_ma2": "Conforme toets van het gemiddelde (eigen effect per land), factormodel",
        "conformal_average_factor_refit_ma2": "Conforme toets van het gemiddelde, bij elke verschuiving opnieuw geschat, factormodel",
        "conformal_ratio_t": "Conform (CWZ), ratiomodel (Poisson)",
        "conformal_average_ratio_refit": "Conforme toets van het gemiddelde, bij elke verschuiving opnieuw geschat, ratiomodel (Poisson)",
        "conformal_poisson_t": "Conform (CWZ) rond het eigen tegenfeitelijke verloop van het model",
        "conformal_average_poisson_refit": "Conforme toets van het gemiddelde rond het eigen tegenfeitelijke verloop "
                                           "van het model, bij elke verschuiving opnieuw geschat",
    },
}

TREATMENTS: dict[str, dict[str, str]] = {
    "en": {"mipa": "MIPA", "misa": "MISA"},
    "nl": {"mipa": "MIPA", "misa": "MISA"},
}

FEEDS: dict[str, dict[str, str]] = {
    "en": {
        "returns": "Returns",
        "requests": "Requests",
        "nationality_confirmations": "Nationality confirmations",
        "laissez_passers": "Laissez-passers",
    },
    "nl": {
        "returns": "Vertrek",
        "requests": "Aanvragen",
        "nationality_confirmations": "Nationaliteitsbevestigingen",
        "laissez_passers": "Laissez-passers",
    },
}

TEXT: dict[str, dict[str, str]] = load_text("core")

LOAD_STATUS: dict[str, dict[str, str]] = {
    "en": {"loaded": "loaded", "empty_file": "empty file"},
    "nl": {"loaded": "geladen", "empty_file": "leeg bestand"},
}

MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"),
}

GROUPS = {"OUTCOMES": OUTCOMES, "LOAD_STATUS": LOAD_STATUS, "YEARLY_OUTCOMES": YEARLY_OUTCOMES, "ESTIMATORS": ESTIMATORS,
          "INFERENCE": INFERENCE, "TREATMENTS": TREATMENTS, "FEEDS": FEEDS, "TEXT": TEXT}


# short words for the reasons of mipa.estimability.REASONS, shown where a number cannot be given
NOT_ESTIMABLE_PREFIX = {"en": "not estimable", "nl": "niet schatbaar"}
REASONS: dict[str, dict[str, str]] = {
    "en": {
        "no_treated_units": "no treated country",
        "no_post_treatment_data": "no data after the start",
        "no_pre_treatment_data": "no data before the start",
        "no_control_units": "no control country",
        "too_few_controls": "too few control countries",
        "too_few_post_periods": "too few months after the start",
        "too_few_pre_periods": "too few months before the start",
        "constant_outcome": "outcome does not vary",
        "all_zero_outcome": "outcome zero throughout",
        "not_identified": "not identified",
        "singular_design": "singular design",
        "fit_not_converged": "fit did not converge",
        "cells_left_out": "some cells left out",
        "no_estimate_for_scope": "no estimate",
        "no_variance": "no standard error",
        "not_a_count": "not a count",
    },
    "nl": {
        "no_treated_units": "geen behandeld land",
        "no_post_treatment_data": "geen gegevens na de start",
        "no_pre_treatment_data": "geen gegevens voor de start",
        "no_control_units": "geen controleland",
        "too_few_controls": "te weinig controlelanden",
        "too_few_post_periods": "te weinig maanden na de start",
        "too_few_pre_periods": "te weinig maanden voor de start",
        "constant_outcome": "uitkomst varieert niet",
        "all_zero_outcome": "uitkomst overal nul",
        "not_identified": "niet geïdentificeerd",
        "singular_design": "singulier ontwerp",
        "fit_not_converged": "schatting convergeerde niet",
        "cells_left_out": "enkele cellen weggelaten",
        "no_estimate_for_scope": "geen schatting",
        "no_variance": "geen standaardfout",
        "not_a_count": "geen telling",
    },
}


def not_estimable(lang: str, reason: str | None) -> str:
    """``not estimable (no data after the start)``: what a table shows instead of a number."""
    lang = check_lang(lang)
    words = REASONS[lang].get(reason or "no_estimate_for_scope", REASONS[lang]["no_estimate_for_scope"])
    return f"{NOT_ESTIMABLE_PREFIX[lang]} ({words})"


def check_lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown report language {lang!r}: use one of {', '.join(LANGUAGES)}")
    return lang


def text(lang: str, key: str, **values: object) -> str:
    """A sentence or heading of the report, with ``{placeholders}`` filled in."""
    template = TEXT[check_lang(lang)][key]
    return template.format(**values) if values else template


def outcome(lang: str, name: str, *, yearly: bool = False) -> str:
    if yearly and name in YEARLY_OUTCOMES[lang]:
        return YEARLY_OUTCOMES[lang][name]
    return OUTCOMES[check_lang(lang)].get(name, name)


def estimator(lang: str, name: str) -> str:
    return ESTIMATORS[check_lang(lang)].get(name, name)


def inference(lang: str, name: str) -> str:
    return INFERENCE[check_lang(lang)].get(name, name.replace("_", " "))


def treatment(lang: str, name: str) -> str:
    return TREATMENTS[check_lang(lang)].get(name, name.upper())


def feed(lang: str, name: str) -> str:
    return FEEDS[check_lang(lang)].get(name, name)


def load_status(lang: str, name: str) -> str:
    return LOAD_STATUS[check_lang(lang)].get(name, name)


def month_name(lang: str, month: int) -> str:
    return MONTHS[check_lang(lang)][month - 1]
