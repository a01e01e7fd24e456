"""The variants of the robustness grid: the baseline and one changed analysis choice each.

Reference: Simonsohn, U., Simmons, J. P. and Nelson, L. D. (2020), "Specification curve
analysis", Nature Human Behaviour 4, 1208-1214 (a specification curve, here over a
one-at-a-time grid). Each :class:`Variant` says which single choice of the annex's
baseline it changes (COVID months, anticipation, start dates, control pool, comparison
group, MISA controls); :func:`default_grid` lists them. What each choice does to the panel
and to the estimators: :mod:`mipa.sensitivity.robustness`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from mipa.estimation import EstimationSettings

__all__ = ["DIMENSIONS", "ControlGroup", "ControlPool", "CovidHandling", "Variant", "default_grid"]

CovidHandling = Literal["included", "excluded", "modelled"]
ControlPool = Literal["full", "africa_only", "no_neighbours"]
ControlGroup = Literal["nevertreated", "notyettreated"]

# in the order the report shows them
DIMENSIONS: tuple[str, ...] = (
    "baseline", "covid", "anticipation", "start_dates", "control_pool", "control_group", "misa",
)


@dataclass(frozen=True)
class Variant:
    """One specification of the grid: the baseline with (at most) one choice changed.

    ``partnership_variant=None`` means the start dates the panel was built with (dbt var
    ``partnership_variant``); ``control_group=None`` means each estimator's default in
    :class:`~mipa.estimation.EstimationSettings`.
    """

    variant_id: str
    dimension: str
    label: str
    covid: CovidHandling = "included"
    anticipation: int = 0
    partnership_variant: str | None = None
    control_pool: ControlPool = "full"
    control_group: ControlGroup | None = None
    drop_misa_controls: bool = False

    def resolved(self, estimator: str, settings: EstimationSettings, panel_variant: str) -> dict[str, Any]:
        """The choices this variant makes for one estimator, defaults filled in."""
        default_group = settings.etwfe_control_group if estimator == "etwfe" else settings.cs_control_group
        return {
            "covid_handling": self.covid,
            "anticipation_months": int(self.anticipation),
            "partnership_variant": self.partnership_variant or panel_variant,
            "control_pool": self.control_pool,
            "control_group": self.control_group or default_group,
            "misa_controls_removed": bool(self.drop_misa_controls),
        }


def default_grid(start_date_variants: Iterable[str] = (), max_anticipation: int = 3) -> list[Variant]:
    """The baseline and one variant per alternative choice (see the module docstring).

    ``start_date_variants``: versions of the partnership dates other than the panel's own
    (``partnerships.variant`` values), one ``start_dates_<name>`` variant each.
    """
    grid = [
        Variant("baseline", "baseline", "Baseline (annex): ETWFE, all months, annex start dates, full pool"),
        Variant("covid_excluded", "covid", "COVID months (2020-05 to 2022-08) excluded", covid="excluded"),
        Variant("covid_modelled", "covid", "COVID: country-specific level shifts", covid="modelled"),
    ]
    for k in range(1, max_anticipation + 1):
        grid.append(Variant(f"anticipation_{k}", "anticipation", f"Anticipation of {k} month{'s' * (k > 1)}",
                            anticipation=k))
    for name in sorted(set(start_date_variants)):
        grid.append(Variant(f"start_dates_{name}", "start_dates", f"Start dates: {name}", partnership_variant=name))
    grid += [
        Variant("controls_africa_only", "control_pool", "Controls: African countries only", control_pool="africa_only"),
        Variant("controls_no_neighbours", "control_pool", "Controls: without land neighbours of partners",
                control_pool="no_neighbours"),
        Variant("nevertreated_controls", "control_group", "Control group: never treated", control_group="nevertreated"),
        Variant("notyettreated_controls", "control_group", "Control group: not yet treated",
                control_group="notyettreated"),
        Variant("misa_controls_removed", "misa", "Controls: MISA countries removed", drop_misa_controls=True),
    ]
    ids = [v.variant_id for v in grid]
    if len(set(ids)) != len(ids):
        raise ValueError(f"variant ids are not unique: {ids}")
    return grid
