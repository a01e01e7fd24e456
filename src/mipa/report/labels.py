"""Every word the report shows, in English and Dutch: one dictionary per language.

The Dutch terms are the annex's own (Gedwongen vertrek, Laissez-passers,
Nationaliteitsbevestigingen, Doorlooptijd, Aanvragen, Aantoonbaar vertrek). Code looks
labels up with :func:`label`; a missing key is an error, so both languages stay complete
(``tests/python/test_report.py`` checks that they have the same keys).
"""

from __future__ import annotations

LANGUAGES = ("en", "nl")

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

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Evaluation of the Dutch migration partnerships: statistical analysis",
        "subtitle": "Rebuilt from the warehouse marts: return cooperation per country and month",
        "synthetic_banner": "Synthetic data — not the real DTenV feeds",
        "synthetic_figure": "Synthetic data — not the real DTenV feeds",
        "real_banner": "Data: DTenV feeds",
        "contents": "Contents",
        # sections
        "sec_data": "Data",
        "sec_trends": "Per-country trends",
        "sec_parallel": "Parallel trends",
        "sec_results": "Results",
        "sec_conclusions": "Conclusions",
        "sec_facts": "Run facts",
        "sub_main": "Main result: Poisson extended TWFE on the counts",
        "sub_etwfe": "The annex's specification: extended two-way fixed effects in levels",
        "intro_main": (
            "The counts of the return chain move with multiplicative country and month effects (COVID-19 "
            "lowered every country's flows by a share, not by a number), so parallel trends hold in ratios, "
            "not in levels. Poisson extended TWFE (Wooldridge 2023) models each country's counts as a "
            "multiple of the untreated countries' month pattern; its effects are on the count scale, per "
            "country-month (Table S3 gives them as rate ratios too). In the Monte Carlo at the annex's design "
            "it is unbiased where extended TWFE in levels is not (Table I4), and its conformal intervals meet "
            "the coverage rule overall and per country on forced departures (Table I1). Lead time is not a "
            "count: its main estimate is Table 2's."
        ),
        "sub_event": "Event studies",
        "sub_robust": "Other estimators: Callaway & Sant'Anna and classic TWFE (appendices 2 and 3)",
        "sub_verified": "Verified departures (appendix 4)",
        "sub_yearly": "Exploratory yearly panel (annex 11.2)",
        # intro texts
        "intro_data": (
            "Country-month panel of the return chain: requests (output), lead time, nationality "
            "confirmations and laissez-passers (outcomes) and forced departures (impact). "
            "Panel: {n_countries} countries, {first_month} to {last_month} ({n_rows} country-months)."
        ),
        "intro_trends": (
            "Each partner country against the mean of the control group (never-treated panel "
            "countries), per month. The vertical line marks the start of the partnership; the "
            "shaded band is the COVID-19 period. Lead time is left out, as in the annex: many "
            "countries have no confirmation, hence no lead time, in most months."
        ),
        "intro_parallel": (
            "Monthly means of three groups: never-treated countries (control group), partner "
            "countries before their partnership started (not yet treated) and partner countries "
            "after the start (already treated). Difference-in-differences assumes parallel trends "
            "before the start."
        ),
        "intro_results": (
            "Effects of a partnership in outcome units per country-month. Brackets: 95% confidence "
            "interval; * p < 0.05. The per-country rows are illustrative, not causal."
        ),
        "intro_yearly": (
            "Exploratory yearly panel of the terms of reference: each return outcome regressed on "
            "MISA or MIPA with country and year fixed effects, standard errors clustered by country."
        ),
        "intro_facts": "What a reader needs to reproduce the numbers in this report.",
        # table 1
        "table1_caption": "Table 1. Descriptive statistics",
        "tableA3_caption": "Table A3. Descriptive statistics, verified departures",
        "col_variable": "Variable",
        "col_n_obs": "Observations",
        "col_mean": "Mean",
        "col_sd": "Std. dev.",
        "col_min": "Min.",
        "col_max": "Max.",
        "col_share_zero": "% zero",
        "col_n_countries": "# Countries",
        # figures
        "fig1_caption": "Figure 1. Histograms of the outcomes, zeros left out",
        "fig1_zero_share": "Share of observations equal to 0 (left out): {shares}.",
        "fig1_panel_note": "{share} of observations are 0 (left out)",
        "fig1_alt": "Histograms of {outcomes}, one panel per outcome, without the zero observations.",
        "fig_trend_caption": "Figure {number}. {outcome}: partner countries against the control-group mean",
        "fig_trend_alt": (
            "Monthly {outcome} from {first_month} to {last_month}, one panel per partner country "
            "({countries}), each against the control-group mean, with the partnership start marked "
            "and the COVID-19 period shaded."
        ),
        "fig_parallel_caption": "Figure {number}. {outcome}: monthly means of never-treated, not-yet-treated and already-treated countries",
        "fig_parallel_alt": (
            "Monthly mean {outcome} from {first_month} to {last_month} for three groups: "
            "never-treated, not yet treated and already treated countries."
        ),
        "fig_interval_coverage": "Intervals: {method}; Monte Carlo coverage of this nominal 95% interval at the annex design: {coverage} ({verdict}).",
        "fig_interval_unmeasured": "Intervals: {method}, nominal 95%; the Monte Carlo scores the overall and per-country effects, not these intervals, so their coverage is not measured.",
        "fig_interval_valid": "valid: within 93-97%",
        "fig_interval_not_valid": "not a valid 95% interval at this design",
        "fig11_caption": "Figure 11. Average effect of a migration partnership (ETWFE), nominal 95% intervals",
        "fig11_alt": "Point estimates with 95% confidence intervals of the average partnership effect on {outcomes}.",
        "fig11_note": "Extended two-way fixed effects (Wooldridge), simple aggregation; intervals from country-clustered standard errors.",
        "fig_event_caption": "Figure {number}. Event study, {estimator}: effect by months since the partnership start ({low} to {high})",
        "fig_event_alt": (
            "Effect by months since the start of the partnership for {outcomes}, with pointwise "
            "95% intervals{band}."
        ),
        "fig_event_band_alt": " and the uniform 95% band",
        "fig_event_note": "Dark band: pointwise 95% interval. Light band: uniform (simultaneous) 95% band, where the method gives one.",
        "fig_event_window": "Shown: months {low} to {high} relative to the start (the window of {window_low} to {window_high} months, where estimated); every event time is in {file}.",
        "legend_country": "Partner country",
        "legend_control": "Control-group mean",
        "legend_start": "Partnership start",
        "legend_covid": "COVID-19 period",
        "legend_never": "Never treated (control group)",
        "legend_notyet": "Not yet treated",
        "legend_already": "Already treated",
        "legend_estimate": "Estimate",
        "legend_ci": "Pointwise 95% interval",
        "legend_band": "Uniform 95% band",
        "axis_month": "Month",
        "axis_count": "Number per month",
        "axis_mean": "Mean per country and month",
        "axis_event_time": "Months since the partnership start",
        "axis_effect": "Effect",
        "axis_frequency": "Country-months",
        "no_data": "No data",
        # result tables
        "table2_caption": "Table 2. Effect of the migration partnerships (ETWFE)",
        "table2p_caption": "Table 2P. Effect of the migration partnerships on the counts (Poisson ETWFE, main estimator)",
        "note_poisson_etwfe": (
            "Poisson extended two-way fixed effects (Wooldridge 2023), not-yet-treated controls; effects on the "
            "count scale; 95% confidence intervals in brackets from country-clustered standard errors."
        ),
        "note_poisson_etwfe_estimator": (
            "Poisson extended two-way fixed effects (Wooldridge 2023), not-yet-treated controls; effects on the "
            "count scale."
        ),
        "tableA1_caption": "Table A1. Effect of the migration partnerships, doubly robust staggered difference-in-differences (Callaway & Sant'Anna)",
        "tableA2_caption": "Table A2. Effect of the migration partnerships, classic TWFE difference-in-differences",
        "tableA4_caption": "Table A4. Effect of the migration partnerships on verified departures (ETWFE)",
        "table_yearly_caption": "Table 11.2. Exploratory yearly panel: effect of MISA and MIPA on returns",
        "row_overall_group": "Overall effect",
        "row_country_group": "Effect per country",
        "row_overall": "MIPA",
        "row_n": "N",
        "country_note": (
            "Illustrative, not causal: one treated country per row, and clustered intervals "
            "under-cover with a single treated country."
        ),
        "note_etwfe": "Extended two-way fixed effects difference-in-differences (Wooldridge); 95% confidence intervals in brackets from country-clustered standard errors.",
        "note_csdid": "95% confidence intervals in brackets, from the multiplier bootstrap.",
        "note_twfe": "Standard errors in parentheses, one row per inference method.",
        "note_star": "* p < 0.05.",
        "note_etwfe_estimator": "Extended two-way fixed effects difference-in-differences (Wooldridge), not-yet-treated controls.",
        "note_default_interval": (
            "Brackets: the 95% interval of the estimator's default inference method, chosen by Monte Carlo at "
            "this design ({overall} overall, Monte Carlo coverage {overall_coverage}; "
            "{countries} per country, coverage {countries_coverage}); the smaller line below is the annex's "
            "country-clustered interval (coverage {clustered_overall} overall, {clustered_countries} per "
            "country). See 'Inference with six partner countries'."
        ),
        "clustered_short": "clustered",
        "no_valid_interval": "no valid interval at this design",
        "measured_coverage": "{method} covers {coverage}",
        "note_no_valid_interval": (
            "Where a cell reads 'no valid interval at this design', no inference method of the estimator "
            "reached 93-97% Monte Carlo coverage with the annex's and with homogeneous effects, 3-7% size and "
            "a width at most 1.5 times the oracle interval's at this design: the cell shows the estimate "
            "without a star and the measured coverage of the annex's interval beneath it. Table I2 shows "
            "every per-country method with its measured coverage; a method that qualifies there is marked."
        ),
        "note_yearly": "Coefficient (standard error); p-value in the next column. Standard errors clustered by country.",
        "note_not_estimated": "—: not estimated.",
        "col_coef_se": "Coefficient (SE)",
        "col_p_value": "p-value",
        "col_outcome": "Outcome",
        "col_treatment": "Treatment",
        "col_n_clusters": "Clusters",
        "missing_estimates": "No estimates for {estimator} in this database.",
        # run facts
        "facts_source": "Data source",
        "facts_synthetic": "Synthetic feeds from the mipa generator",
        "facts_real": "Real DTenV feeds",
        "facts_generator_seed": "Generator seed",
        "facts_generator": "Generator",
        "facts_database": "Database file",
        "facts_fingerprint": "Feed fingerprint (SHA-256 over the delivered files)",
        "facts_panel_range": "Panel",
        "facts_panel_range_value": "{first_month} to {last_month} ({n_months} months)",
        "facts_countries": "Countries",
        "facts_countries_value": "{n_panel} panel countries: {n_partner} partner countries, {n_control} never treated",
        "facts_partners": "Partner countries (start)",
        "facts_rows": "Country-months",
        "facts_covid": "COVID-19 period",
        "facts_feeds_caption": "Feeds: rows landed, staged and quarantined (data-quality reconciliation)",
        "facts_files_caption": "Delivered files",
        "facts_quarantine_caption": "Quarantined rows by feed and rule",
        "facts_versions_caption": "Tool versions (environment that built this report)",
        "facts_settings_caption": "Estimation settings (fct_did_estimates.run_settings)",
        "col_feed": "Feed",
        "col_files": "Files",
        "col_rows_landed": "Rows landed",
        "col_rows_staged": "Rows staged",
        "col_rows_quarantined": "Rows quarantined",
        "col_quarantined_share": "Share quarantined",
        "col_reconciled": "Reconciled",
        "col_file": "File",
        "col_rows": "Rows",
        "col_status": "Status",
        "col_sha": "SHA-256 (first 16)",
        "col_identical": "Identical to",
        "col_rule": "Rule",
        "col_count": "Rows",
        "col_example": "Example",
        "col_tool": "Tool",
        "col_version": "Version",
        "col_setting": "Setting",
        "col_value": "Value",
        "col_estimators": "Estimators",
        "yes": "yes",
        "no": "no",
        "none_quarantined": "No rows were quarantined.",
        "downloads": "Files of this run",
        "downloads_text": "The result tables (CSV, Parquet) and every figure (PNG, SVG) are in the same folder as this page:",
        "footer": "Generated by mipa {version} from {database}. The numbers are read from the marts; nothing is typed in by hand.",
        # first screen
        "facts_report_date": "Report date",
        "facts_data_window": "Data window",
        "facts_data_window_value": "{first} to {last} (first and last month with a recorded event; panel {panel_first} to {panel_last})",
        "facts_data_window_whole": "{first} to {last} (events recorded from the panel's first to its last month)",
        "facts_code_version": "Code version",
        "code_version_commit": "mipa {version}, git commit {commit}",
        "code_version_modified": "{text}, with uncommitted changes",
        "code_version_no_git": "mipa {version} (no git commit available)",
        "toc_first_screen": "Go to",
        # planted effects (synthetic runs)
        "planted_short": "planted {value}",
        "note_planted": (
            "Synthetic data: beneath each estimate, the effect the generator planted (fct_planted_effects): "
            "per country its expected effect over the months from its start on; for the overall row the "
            "countries' planted effects averaged with their months since the start as weights, the quantity "
            "the simple aggregate estimates."
        ),
        # table A1: what N counts
        "note_csdid_n": (
            "N counts the country-months that enter at least one of the estimator's post-start comparisons: "
            "each partner country and its comparison countries in the months from the start on, plus each "
            "comparison's base month ({n} of the panel's {n_rows} country-months for {outcome}). It is not the "
            "panel size that Table 2's N (and the annex's 10,320) counts; the estimates use the same panel. "
            "Per-country rows rest on fewer: {countries} (column n_obs of the CSV)."
        ),
        # conclusions
        "intro_conclusions": (
            "Written from this run's numbers (Tables 2P and 2 and the appendix tables), with the caveats the annex "
            "states. Estimates are changes per country and month after a partnership started."
        ),
        "concl_overall": (
            "Averaged over the {n_partner} partnerships, {estimators} estimate these changes per "
            "country-month: {items}."
        ),
        "concl_no_valid": (
            "No inference method gives a valid 95% interval for these averages at this design (Monte Carlo, "
            "see the inference section): they are point estimates, and whether they differ from zero cannot "
            "be said."
        ),
        "concl_no_valid_some": (
            "For {outcomes} no inference method gives a valid 95% interval at this design (Monte Carlo, see the "
            "inference section): those are point estimates, and whether they differ from zero cannot be said."
        ),
        "concl_valid_alternative_conformal": (
            "A valid 95% interval at this design does exist for the average of each partner's own effect, "
            "estimated against the mean of the never-treated countries ({method}, Table I1; Monte Carlo on "
            "{mc_outcome}: coverage {coverage}, rejects a true zero in {size} of the replications): {items}. "
            "Intervals that exclude zero: {outcomes}."
        ),
        "concl_valid_alternative_poisson_etwfe": (
            "A valid 95% interval at this design does exist for Poisson ETWFE, which models each partner's "
            "counts as a multiple of the untreated countries' month pattern and is unbiased where ETWFE in "
            "levels is not (Table I4); its effect on the count scale ({method}, Table I1; Monte Carlo on "
            "{mc_outcome}: coverage {coverage}, rejects a true zero in {size} of the replications): {items}. "
            "Intervals that exclude zero: {outcomes}."
        ),
        "concl_main_poisson_etwfe": "Poisson extended TWFE (Table 2P) on {outcomes}",
        "concl_main_etwfe": "extended TWFE in levels (Table 2) on {outcomes}",
        "concl_annex": "The annex's specification, extended TWFE in levels (Table 2), gives: {items}.",
        "concl_annex_no_valid": (
            "Where it shows no interval, no inference method gives it a valid 95% interval at this design: in "
            "the Monte Carlo it is biased when the month shocks are multiplicative (Table I4)."
        ),
        "concl_per_country_valid": (
            "Per country the estimates differ widely: on {outcome_lower} from {low_country} ({low}) to "
            "{high_country} ({high}). Their intervals ({method}) are valid for one treated country at this design "
            "(Monte Carlo coverage {coverage}); intervals that exclude zero: {countries}. Each still rests on a "
            "single partnership: whatever else changed in that country when it started is part of its estimate, "
            "so they are illustrative, not causal."
        ),
        "concl_intervals": "Brackets: 95% intervals ({methods}).",
        "concl_excludes_zero": "Intervals that exclude zero: {outcomes}.",
        "concl_includes_zero": "Intervals that include zero (no effect distinguishable from none): {outcomes}.",
        "concl_none": "none",
        "concl_robust": (
            "Other estimators on {outcome_lower}: Callaway & Sant'Anna {csdid}, classic TWFE {twfe}; "
            "{agreement}"
        ),
        "concl_same_sign": "the same sign as the main estimate.",
        "concl_other_sign": "not all of the same sign as the main estimate: the average effect depends on the method.",
        "concl_per_country": (
            "Per country the estimates differ widely: on {outcome_lower} from {low_country} ({low}) to "
            "{high_country} ({high}). They are illustrative, not causal: difference-in-differences is not built "
            "for one treated country, and the annex's clustered intervals cover the truth far less often than "
            "95% with a single treated country (see the inference section)."
        ),
        "concl_covid": (
            "COVID-19 ({covid_first} to {covid_last}) depressed all flows, in partner and control countries alike; "
            "it falls in the months before the start of {countries}, and {recent} started before its end or "
            "within a year of it, while flows were still settling at a new level. Before-after comparisons for those countries "
            "partly compare the recovery."
        ),
        "concl_covid_none_recent": "none of them",
        "concl_morocco": (
            "Morocco (start {start}): the Dutch government changed its wording on the Western Sahara autonomy "
            "plan in {statement}, {gap}. Morocco's estimate on {outcome_lower} ({estimate}) cannot be told apart "
            "from the effect of that statement."
        ),
        "concl_gap_one": "one month before the start",
        "concl_gap_before": "{n} months before the start",
        "concl_gap_after": "not before the start",
        "concl_lead_time": (
            "Lead time exists only in months with a confirmation, so its N varies: {n_lead} country-months for "
            "extended TWFE against {n_panel} for the counts{csdid_part}. Its estimates rest on fewer, unevenly "
            "spread months and are less precise than those of the counts."
        ),
        "concl_lead_time_csdid": ", {n_cs} for Callaway & Sant'Anna",
        "concl_synthetic": (
            "These are synthetic data with known effects: the planted average effect on {outcome_lower} is "
            "{planted}; the estimate is {estimate} {verdict}."
        ),
        "concl_covers": "and its interval contains it",
        "concl_misses": "but its interval misses it",
        "concl_point_only": "(no valid interval to check it against)",
        "concl_not_estimated": "No extended TWFE estimates in this database: no conclusions on the effects can be drawn.",
    },
    "nl": {
        "title": "Evaluatie van de Nederlandse inzet op migratiepartnerschappen: statistische analyse",
        "subtitle": "Opnieuw opgebouwd uit de marts van het datawarehouse: terugkeersamenwerking per land en maand",
        "synthetic_banner": "Synthetische gegevens — niet de echte DTenV-bestanden",
        "synthetic_figure": "Synthetische gegevens — niet de echte DTenV-bestanden",
        "real_banner": "Gegevens: DTenV-bestanden",
        "contents": "Inhoudsopgave",
        "sec_data": "Data",
        "sec_trends": "Visualisatie per land",
        "sec_parallel": "Visualisatie parallelle trends",
        "sec_results": "Resultaten",
        "sec_conclusions": "Conclusies",
        "sec_facts": "Verantwoording van deze run",
        "sub_main": "Hoofdresultaat: Poisson-extended TWFE voor de aantallen",
        "sub_etwfe": "De specificatie van de bijlage: extended two-way fixed effects in niveaus",
        "intro_main": (
            "De aantallen in de terugkeerketen bewegen met multiplicatieve land- en maandeffecten (corona "
            "verlaagde de stromen van elk land met een fractie, niet met een vast aantal), dus parallelle "
            "trends gelden in verhoudingen, niet in niveaus. Poisson-extended TWFE (Wooldridge 2023) modelleert "
            "de aantallen van elk land als een veelvoud van het maandpatroon van de onbehandelde landen; de "
            "effecten zijn in aantallen per land-maand (tabel S3 geeft ze ook als verhouding). In de Monte Carlo "
            "bij het ontwerp van de bijlage is het zuiver waar extended TWFE in niveaus dat niet is (tabel I4), "
            "en de conforme intervallen halen de dekkingsregel voor het gemiddelde en per land bij gedwongen "
            "vertrek (tabel I1). Doorlooptijd is geen aantal: de hoofdschatting daarvan staat in tabel 2."
        ),
        "sub_event": "Event studies",
        "sub_robust": "Andere schatters: Callaway & Sant'Anna en klassieke TWFE (appendix 2 en 3)",
        "sub_verified": "Aantoonbaar vertrek (appendix 4)",
        "sub_yearly": "Initiële panelanalyse per jaar (bijlage 11.2)",
        "intro_data": (
            "Panel per land en maand van de terugkeerketen: aanvragen (output), doorlooptijd, "
            "nationaliteitsbevestigingen en laissez-passers (outcome) en gedwongen vertrek (impact). "
            "Panel: {n_countries} landen, {first_month} tot en met {last_month} ({n_rows} land-maanden)."
        ),
        "intro_trends": (
            "Elk partnerland vergeleken met het gemiddelde van de controlegroep (panellanden zonder "
            "migratiepartnerschap), per maand. De verticale lijn markeert de start van het "
            "migratiepartnerschap; de gearceerde periode is de coronapandemie. Doorlooptijd wordt "
            "hier weggelaten, zoals in de bijlage: voor veel landen is er niet voor iedere maand een "
            "doorlooptijd."
        ),
        "intro_parallel": (
            "Gemiddelde per maand voor drie groepen: de controlegroep (nooit behandeld), "
            "partnerlanden vóór de start van het migratiepartnerschap (nog niet behandeld) en "
            "partnerlanden na de start (al behandeld). Difference-in-differences veronderstelt "
            "parallelle trends vóór de start."
        ),
        "intro_results": (
            "Effect van een migratiepartnerschap in eenheden van de variabele per land-maand. Tussen "
            "haakjes: 95%-betrouwbaarheidsinterval; * p < 0,05. De schattingen per land zijn ter "
            "illustratie, niet causaal."
        ),
        "intro_yearly": (
            "Initiële panelanalyse uit de Terms of Reference: elke terugkeervariabele geregresseerd "
            "op MISA of MIPA met land- en jaar-fixed effects, standaardfouten geclusterd per land."
        ),
        "intro_facts": "Wat een lezer nodig heeft om de cijfers in dit rapport te reproduceren.",
        "table1_caption": "Tabel 1. Beschrijvende statistieken",
        "tableA3_caption": "Tabel A3. Beschrijvende statistieken, aantoonbaar vertrek",
        "col_variable": "Variabele",
        "col_n_obs": "Observaties",
        "col_mean": "Gemiddelde",
        "col_sd": "Std. Afw.",
        "col_min": "Min.",
        "col_max": "Max.",
        "col_share_zero": "%0",
        "col_n_countries": "#Landen",
        "fig1_caption": "Figuur 1. Histogrammen, zonder de nullen",
        "fig1_zero_share": "Aandeel observaties gelijk aan 0 (hier weggelaten): {shares}.",
        "fig1_panel_note": "{share} van de observaties is 0 (hier weggelaten)",
        "fig1_alt": "Histogrammen van {outcomes}, één paneel per variabele, zonder de observaties gelijk aan nul.",
        "fig_trend_caption": "Figuur {number}. {outcome}: partnerlanden vergeleken met het gemiddelde van de controlegroep",
        "fig_trend_alt": (
            "{outcome} per maand van {first_month} tot en met {last_month}, één paneel per "
            "partnerland ({countries}), telkens vergeleken met het gemiddelde van de controlegroep, "
            "met de start van het migratiepartnerschap gemarkeerd en de coronaperiode gearceerd."
        ),
        "fig_parallel_caption": "Figuur {number}. {outcome}: gemiddelde per maand van nooit, nog niet en al behandelde landen",
        "fig_parallel_alt": (
            "Gemiddelde {outcome} per maand van {first_month} tot en met {last_month} voor drie "
            "groepen: nooit behandelde, nog niet behandelde en al behandelde landen."
        ),
        "fig_interval_coverage": "Intervallen: {method}; Monte Carlo-dekking van dit nominale 95%-interval in het ontwerp van de bijlage: {coverage} ({verdict}).",
        "fig_interval_unmeasured": "Intervallen: {method}, nominaal 95%; de Monte Carlo meet de dekking van het gemiddelde en de landeffecten, niet van deze intervallen.",
        "fig_interval_valid": "geldig: binnen 93-97%",
        "fig_interval_not_valid": "geen geldig 95%-interval in dit ontwerp",
        "fig11_caption": "Figuur 11. Gemiddeld effect migratiepartnerschap (ETWFE), nominale 95%-intervallen",
        "fig11_alt": "Puntschattingen met 95%-betrouwbaarheidsintervallen van het gemiddelde effect van een migratiepartnerschap op {outcomes}.",
        "fig11_note": "Extended two-way fixed effects (Wooldridge), eenvoudige aggregatie; intervallen op basis van geclusterde standaardfouten.",
        "fig_event_caption": "Figuur {number}. Event study, {estimator}: effect per maand sinds de start van het migratiepartnerschap ({low} tot en met {high})",
        "fig_event_alt": (
            "Effect per maand sinds de start van het migratiepartnerschap voor {outcomes}, met "
            "puntsgewijze 95%-intervallen{band}."
        ),
        "fig_event_band_alt": " en de uniforme 95%-band",
        "fig_event_note": "Donkere band: puntsgewijs 95%-interval. Lichte band: uniforme (simultane) 95%-band, waar de methode die geeft.",
        "fig_event_window": "Getoond: maand {low} tot en met {high} ten opzichte van de start (het venster van {window_low} tot {window_high} maanden, voor zover geschat); alle maanden staan in {file}.",
        "legend_country": "Partnerland",
        "legend_control": "Gemiddelde controlegroep",
        "legend_start": "Start migratiepartnerschap",
        "legend_covid": "Coronapandemie",
        "legend_never": "Nooit behandeld (controlegroep)",
        "legend_notyet": "Nog niet behandeld",
        "legend_already": "Al behandeld",
        "legend_estimate": "Schatting",
        "legend_ci": "Puntsgewijs 95%-interval",
        "legend_band": "Uniforme 95%-band",
        "axis_month": "Maand",
        "axis_count": "Aantal per maand",
        "axis_mean": "Gemiddelde per land en maand",
        "axis_event_time": "Maanden sinds de start van het migratiepartnerschap",
        "axis_effect": "Effect",
        "axis_frequency": "Land-maanden",
        "no_data": "Geen gegevens",
        "table2_caption": "Tabel 2. Effect migratiepartnerschappen (ETWFE)",
        "table2p_caption": "Tabel 2P. Effect migratiepartnerschappen op de aantallen (Poisson-ETWFE, hoofdschatter)",
        "note_poisson_etwfe": (
            "Poisson-extended two-way fixed effects (Wooldridge 2023), nog niet behandelde landen als controle; "
            "effecten in aantallen; tussen haakjes de 95%-betrouwbaarheidsintervallen op basis van geclusterde "
            "standaardfouten."
        ),
        "note_poisson_etwfe_estimator": (
            "Poisson-extended two-way fixed effects (Wooldridge 2023), nog niet behandelde landen als controle; "
            "effecten in aantallen."
        ),
        "tableA1_caption": "Tabel A1. Effect migratiepartnerschappen doubly robust staggered difference-in-differences (Callaway & Sant'Anna)",
        "tableA2_caption": "Tabel A2. Effect migratiepartnerschappen TWFE difference-in-differences",
        "tableA4_caption": "Tabel A4. Effect migratiepartnerschappen op aantoonbaar vertrek (ETWFE)",
        "table_yearly_caption": "Tabel 11.2. Initiële panelanalyse per jaar: effect van MISA en MIPA op terugkeer",
        "row_overall_group": "Effect algemeen",
        "row_country_group": "Effect per land",
        "row_overall": "MIPA",
        "row_n": "N",
        "country_note": (
            "Ter illustratie, niet causaal: één behandeld land per rij, en geclusterde intervallen "
            "zijn te smal bij één behandeld land."
        ),
        "note_etwfe": "Extended two-way fixed effects difference-in-differences (Wooldridge); tussen haakjes de 95%-betrouwbaarheidsintervallen op basis van geclusterde standaardfouten.",
        "note_csdid": "Tussen haakjes de 95%-betrouwbaarheidsintervallen, berekend met de multiplier bootstrap.",
        "note_twfe": "Standaardfouten tussen haakjes, één rij per methode.",
        "note_star": "* p < 0,05.",
        "note_etwfe_estimator": "Extended two-way fixed effects difference-in-differences (Wooldridge), nog niet behandelde landen als controle.",
        "note_default_interval": (
            "Tussen haakjes: het 95%-interval van de standaard-inferentiemethode van de schatter, gekozen met "
            "een Monte Carlo bij dit ontwerp ({overall} voor het totaal, Monte "
            "Carlo-dekking {overall_coverage}; {countries} per land, dekking {countries_coverage}); de kleinere "
            "regel eronder is het per land geclusterde interval van de bijlage (dekking {clustered_overall} "
            "totaal, {clustered_countries} per land). Zie 'Inferentie met zes partnerlanden'."
        ),
        "clustered_short": "geclusterd",
        "no_valid_interval": "geen geldig interval bij dit ontwerp",
        "measured_coverage": "{method} dekt {coverage}",
        "note_no_valid_interval": (
            "Waar een cel 'geen geldig interval bij dit ontwerp' toont, haalde geen inferentiemethode van de "
            "schatter bij dit ontwerp 93-97% Monte Carlo-dekking met de effecten van de bijlage en met "
            "homogene effecten, 3-7% onterechte verwerping en een breedte van hoogstens 1,5 keer het "
            "orakelinterval: de cel toont de schatting zonder ster en de gemeten dekking van het interval "
            "van de bijlage eronder. Tabel I2 toont elke methode per land met haar gemeten dekking; een "
            "methode die daar voldoet is gemarkeerd."
        ),
        "note_yearly": "Coëfficiënt (standaardfout); p-waarde in de volgende kolom. Standaardfouten geclusterd per land.",
        "note_not_estimated": "—: niet geschat.",
        "col_coef_se": "Coëfficiënt (SE)",
        "col_p_value": "p-waarde",
        "col_outcome": "Variabele",
        "col_treatment": "Behandeling",
        "col_n_clusters": "Clusters",
        "missing_estimates": "Geen schattingen voor {estimator} in deze database.",
        "facts_source": "Gegevensbron",
        "facts_synthetic": "Synthetische bestanden uit de mipa-generator",
        "facts_real": "Echte DTenV-bestanden",
        "facts_generator_seed": "Seed van de generator",
        "facts_generator": "Generator",
        "facts_database": "Databasebestand",
        "facts_fingerprint": "Vingerafdruk van de bestanden (SHA-256 over de geleverde bestanden)",
        "facts_panel_range": "Panel",
        "facts_panel_range_value": "{first_month} tot en met {last_month} ({n_months} maanden)",
        "facts_countries": "Landen",
        "facts_countries_value": "{n_panel} panellanden: {n_partner} partnerlanden, {n_control} nooit behandeld",
        "facts_partners": "Partnerlanden (start)",
        "facts_rows": "Land-maanden",
        "facts_covid": "Coronaperiode",
        "facts_feeds_caption": "Bronnen: rijen geladen, verwerkt en in quarantaine (datakwaliteit)",
        "facts_files_caption": "Geleverde bestanden",
        "facts_quarantine_caption": "Rijen in quarantaine per bron en regel",
        "facts_versions_caption": "Versies van de software (omgeving die dit rapport maakte)",
        "facts_settings_caption": "Instellingen van de schatting (fct_did_estimates.run_settings)",
        "col_feed": "Bron",
        "col_files": "Bestanden",
        "col_rows_landed": "Rijen geladen",
        "col_rows_staged": "Rijen verwerkt",
        "col_rows_quarantined": "Rijen in quarantaine",
        "col_quarantined_share": "Aandeel in quarantaine",
        "col_reconciled": "Sluit aan",
        "col_file": "Bestand",
        "col_rows": "Rijen",
        "col_status": "Status",
        "col_sha": "SHA-256 (eerste 16)",
        "col_identical": "Gelijk aan",
        "col_rule": "Regel",
        "col_count": "Rijen",
        "col_example": "Voorbeeld",
        "col_tool": "Software",
        "col_version": "Versie",
        "col_setting": "Instelling",
        "col_value": "Waarde",
        "col_estimators": "Schatters",
        "yes": "ja",
        "no": "nee",
        "none_quarantined": "Er staan geen rijen in quarantaine.",
        "downloads": "Bestanden van deze run",
        "downloads_text": "De resultaattabellen (CSV, Parquet) en alle figuren (PNG, SVG) staan in dezelfde map als deze pagina:",
        "footer": "Gemaakt door mipa {version} uit {database}. De cijfers komen uit de marts; niets is met de hand ingetypt.",
        "facts_report_date": "Datum van het rapport",
        "facts_data_window": "Periode van de gegevens",
        "facts_data_window_value": "{first} tot en met {last} (eerste en laatste maand met een geregistreerde gebeurtenis; panel {panel_first} tot en met {panel_last})",
        "facts_data_window_whole": "{first} tot en met {last} (gebeurtenissen geregistreerd van de eerste tot de laatste maand van het panel)",
        "facts_code_version": "Versie van de code",
        "code_version_commit": "mipa {version}, git-commit {commit}",
        "code_version_modified": "{text}, met niet-vastgelegde wijzigingen",
        "code_version_no_git": "mipa {version} (geen git-commit beschikbaar)",
        "toc_first_screen": "Ga naar",
        "planted_short": "geplant {value}",
        "note_planted": (
            "Synthetische gegevens: onder elke schatting het effect dat de generator heeft geplant "
            "(fct_planted_effects): per land het verwachte effect over de maanden vanaf de start; voor de rij "
            "van het algemene effect het gemiddelde van de landen, gewogen met hun aantal maanden sinds de "
            "start, de grootheid die de eenvoudige aggregatie schat."
        ),
        "note_csdid_n": (
            "N telt de land-maanden die in minstens één vergelijking na een start meedoen: elk partnerland en "
            "zijn vergelijkingslanden in de maanden vanaf de start, plus de basismaand van elke vergelijking "
            "({n} van de {n_rows} land-maanden van het panel voor {outcome}). Het is niet de omvang van het "
            "panel, die N in tabel 2 (en de 10.320 van de bijlage) telt; de schattingen gebruiken hetzelfde "
            "panel. De rijen per land steunen op minder: {countries} (kolom n_obs van de CSV)."
        ),
        "intro_conclusions": (
            "Geschreven uit de cijfers van deze run (tabel 2P, tabel 2 en de tabellen in de appendices), met de "
            "kanttekeningen uit de bijlage. Schattingen zijn veranderingen per land en maand na de start van "
            "een migratiepartnerschap."
        ),
        "concl_overall": (
            "Gemiddeld over de {n_partner} migratiepartnerschappen schatten {estimators} deze "
            "veranderingen per land-maand: {items}."
        ),
        "concl_no_valid": (
            "Geen inferentiemethode geeft bij dit ontwerp een geldig 95%-interval voor deze gemiddelden (Monte "
            "Carlo, zie de paragraaf over inferentie): het zijn puntschattingen, en of ze van nul verschillen "
            "valt niet te zeggen."
        ),
        "concl_no_valid_some": (
            "Voor {outcomes} geeft geen inferentiemethode bij dit ontwerp een geldig 95%-interval (Monte Carlo, zie "
            "de paragraaf over inferentie): dat zijn puntschattingen, en of ze van nul verschillen valt niet te "
            "zeggen."
        ),
        "concl_valid_alternative_conformal": (
            "Voor het gemiddelde van het eigen effect per partnerland, geschat tegen het gemiddelde van de nooit "
            "behandelde landen, bestaat bij dit ontwerp wel een geldig 95%-interval ({method}, tabel I1; "
            "Monte Carlo op {mc_outcome}: dekking {coverage}, verwerpt een werkelijk nuleffect in {size} van "
            "de replicaties): "
            "{items}. Intervallen zonder nul: {outcomes}."
        ),
        "concl_valid_alternative_poisson_etwfe": (
            "Voor Poisson-ETWFE, dat de aantallen van elk partnerland modelleert als een veelvoud van het "
            "maandpatroon van de onbehandelde landen en zuiver is waar ETWFE in niveaus dat niet is (tabel I4), "
            "bestaat bij dit ontwerp wel een geldig 95%-interval; het effect in aantallen ({method}, tabel I1; "
            "Monte Carlo op {mc_outcome}: dekking {coverage}, verwerpt een werkelijk nuleffect in {size} van "
            "de replicaties): {items}. Intervallen zonder nul: {outcomes}."
        ),
        "concl_main_poisson_etwfe": "Poisson-extended TWFE (tabel 2P) voor {outcomes}",
        "concl_main_etwfe": "extended TWFE in niveaus (tabel 2) voor {outcomes}",
        "concl_annex": "De specificatie van de bijlage, extended TWFE in niveaus (tabel 2), geeft: {items}.",
        "concl_annex_no_valid": (
            "Waar geen interval staat, geeft geen inferentiemethode er bij dit ontwerp een geldig 95%-interval "
            "voor: in de Monte Carlo is de schatter vertekend als de maandschokken multiplicatief zijn (tabel I4)."
        ),
        "concl_per_country_valid": (
            "Per land lopen de schattingen sterk uiteen: voor {outcome_lower} van {low_country} ({low}) tot "
            "{high_country} ({high}). De intervallen ({method}) zijn bij dit ontwerp geldig voor één behandeld "
            "land (dekking in de Monte Carlo {coverage}); intervallen zonder nul: {countries}. Elke schatting "
            "steunt toch op één migratiepartnerschap: wat er verder in dat land veranderde toen het begon, zit "
            "in de schatting, dus ze zijn ter illustratie, niet causaal."
        ),
        "concl_intervals": "Tussen haakjes: 95%-intervallen ({methods}).",
        "concl_excludes_zero": "Intervallen zonder nul: {outcomes}.",
        "concl_includes_zero": "Intervallen met nul (geen effect te onderscheiden van geen effect): {outcomes}.",
        "concl_none": "geen",
        "concl_robust": (
            "Andere schatters voor {outcome_lower}: Callaway & Sant'Anna {csdid}, klassieke TWFE {twfe}; "
            "{agreement}"
        ),
        "concl_same_sign": "hetzelfde teken als de hoofdschatting.",
        "concl_other_sign": "niet allemaal met hetzelfde teken als de hoofdschatting: het gemiddelde effect hangt af van de methode.",
        "concl_per_country": (
            "Per land lopen de schattingen sterk uiteen: voor {outcome_lower} van {low_country} ({low}) tot "
            "{high_country} ({high}). Ze zijn ter illustratie, niet causaal: difference-in-differences is niet "
            "gemaakt voor één behandeld land, en de geclusterde intervallen van de bijlage bevatten het echte "
            "effect bij één behandeld land veel minder vaak dan 95% (zie de paragraaf over inferentie)."
        ),
        "concl_covid": (
            "De coronapandemie ({covid_first} tot en met {covid_last}) drukte alle stromen, in partner- en "
            "controlelanden; zij valt in de maanden vóór de start van {countries}, en bij {recent} lag de start vóór "
            "het einde ervan of binnen een jaar daarna, toen de stromen nog naar een nieuw niveau zochten. Voor-na-vergelijkingen "
            "voor die landen vergelijken deels het herstel."
        ),
        "concl_covid_none_recent": "geen van hen",
        "concl_morocco": (
            "Marokko (start {start}): de Nederlandse regering paste in {statement}, {gap}, haar bewoording over "
            "het Marokkaanse autonomieplan voor de Westelijke Sahara aan. De schatting voor Marokko voor "
            "{outcome_lower} ({estimate}) is niet te onderscheiden van het effect daarvan."
        ),
        "concl_gap_one": "een maand vóór de start",
        "concl_gap_before": "{n} maanden vóór de start",
        "concl_gap_after": "niet vóór de start",
        "concl_lead_time": (
            "Doorlooptijd bestaat alleen in maanden met een nationaliteitsbevestiging, dus N wisselt: {n_lead} "
            "land-maanden voor extended TWFE tegen {n_panel} voor de tellingen{csdid_part}. De schattingen "
            "steunen op minder, ongelijk verdeelde maanden en zijn minder precies dan die van de tellingen."
        ),
        "concl_lead_time_csdid": ", {n_cs} voor Callaway & Sant'Anna",
        "concl_synthetic": (
            "Dit zijn synthetische gegevens met bekende effecten: het geplante gemiddelde effect op "
            "{outcome_lower} is {planted}; de schatting is {estimate} {verdict}."
        ),
        "concl_covers": "en het interval bevat het",
        "concl_misses": "maar het interval mist het",
        "concl_point_only": "(geen geldig interval om het aan te toetsen)",
        "concl_not_estimated": "Geen schattingen van extended TWFE in deze database: er zijn geen conclusies over de effecten te trekken.",
    },
}

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
