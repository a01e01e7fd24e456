"""Annex 11.2 yearly exploratory regressions on int_panel__country_year (thin wrapper)."""

from mipa.estimation import run_yearly


def model(dbt, session):
    dbt.config(materialized="table")
    # the window is defined once, in dbt_project.yml's vars (passed through the model config)
    first, last = int(dbt.config.get("yearly_panel_start_year")), int(dbt.config.get("yearly_panel_end_year"))
    panel = dbt.ref("int_panel__country_year").df()
    years = sorted(int(y) for y in panel["calendar_year"].unique())
    if years != list(range(first, last + 1)):
        # a selective build can leave the panel of another window behind: never mix the two
        held = f"the years {years[0]}-{years[-1]}" if years else "no rows"
        raise ValueError(
            f"int_panel__country_year holds {held}, "
            f"not the window {first}-{last} of vars yearly_panel_start_year/yearly_panel_end_year: rebuild it "
            "(mipa build -- --select int_panel__country_year+)"
        )
    return run_yearly(panel)
