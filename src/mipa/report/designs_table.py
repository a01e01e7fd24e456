"""Table I4 of the inference part: which estimator is unbiased where (``fct_estimator_designs``).

For each outcome and each estimator's main interval (overall effect): the bias in sampling
sds and the coverage under no effect, the annex's effects added every month, and the same
effects as a constant rate ratio (``scripts/design_study.py``). An interval cannot cover when
its estimate is biased by a large part of its own sd, whatever the inference method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from mipa.report import labels
from mipa.report.formatting import fmt_int, fmt_number, fmt_percent
from mipa.report.table_model import Cell, Row, Table

MART = "marts.fct_estimator_designs"
DESIGNS = (("zero", "additive"), ("annex", "additive"), ("annex", "multiplicative"))
# each estimator's main interval in the design study (the conformal rows: the average of the per-country effects)
MAIN_INTERVALS = (
    ("etwfe", "cluster_unit"), ("twfe", "cluster_unit"), ("csdid", "multiplier_bootstrap"),
    ("poisson_etwfe", "cluster_unit"), ("conformal", "conformal_average_factor_refit_ma2"),
    ("conformal", "conformal_average_ratio_refit"), ("poisson_etwfe", "conformal_average_poisson_refit"),
)

LABELS: dict[str, dict[str, str]] = labels.load_text("designs")


def _t(lang: str, key: str, **values: object) -> str:
    return LABELS[lang][key].format(**values)


def designs_table(frame: pd.DataFrame, lang: str, outcomes: Sequence[str],
                  method_label: Callable[[str, str, str], str]) -> Table | None:
    """Table I4 from ``fct_estimator_designs`` (None when the mart has no overall rows).
    ``method_label(lang, estimator, inference)`` names a row's interval."""
    if frame.empty:
        return None
    rows = frame[frame["scope"] == "overall"]
    if rows.empty:
        return None
    keyed = rows.set_index(["outcome", "estimator", "inference", "effects", "effect_form"])
    header_cells = [Cell(_t(lang, "col_row"), header=True, scope="col")]
    for effects, form in DESIGNS:
        design = _t(lang, f"design_{effects}_{form}")
        header_cells += [Cell(_t(lang, "col_bias", design=design), header=True, scope="col"),
                         Cell(_t(lang, "col_coverage", design=design), header=True, scope="col")]
    body, tidy = [], []
    # the outcomes the design study ran on every design (the others it ran only on additive
    # effects, for the method choice: Tables I1 and I2 carry their coverage)
    complete = set.intersection(*[set(rows.loc[(rows["effects"] == e) & (rows["effect_form"] == f), "outcome"])
                                  for e, f in DESIGNS])
    for outcome in [o for o in outcomes if o in complete]:
        for estimator, inference in MAIN_INTERVALS:
            found = [keyed.loc[(outcome, estimator, inference, e, f)] if (outcome, estimator, inference, e, f)
                     in keyed.index else None for e, f in DESIGNS]
            if all(r is None for r in found):
                continue
            label = f"{labels.outcome(lang, outcome)}: {method_label(lang, estimator, inference)}"
            cells = [Cell(label, header=True, scope="row")]
            for (effects, form), r in zip(DESIGNS, found, strict=True):
                bias_sd = None if r is None else r["bias_in_sd"]
                coverage = None if r is None else r["coverage"]
                cells += [Cell(fmt_number(bias_sd, 2, lang), classes=("num",), number="ratio"),
                          Cell(fmt_percent(coverage, 1, lang), classes=("num",), number="percent")]
                tidy.append({"outcome": outcome, "estimator": estimator, "inference": inference, "effects": effects,
                             "effect_form": form, "bias_in_sd": bias_sd, "coverage": coverage,
                             "n_replications": None if r is None else r["n_replications"]})
            body.append(Row(cells))
    if not body:
        return None
    data = pd.DataFrame(tidy)
    reps = fmt_int(data["n_replications"].min(), lang)  # formatted as MISSING when no design was found
    return Table("table_i4_estimator_designs", _t(lang, "caption"), [Row(header_cells)], body,
                 [_t(lang, "note", reps=reps)], data, classes=("results",))
