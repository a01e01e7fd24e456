"""mipa: return-cooperation panel warehouse and staggered DiD estimators.

The analyst's API (:mod:`mipa.api`)::

    import mipa
    fit = mipa.att_gt(df, yname="y", tname="t", idname="id", gname="g")
    print(fit.aggregate("dynamic").summary())

``att_gt``, ``etwfe``, ``twfe`` and the result types are loaded on first use, so
``import mipa`` (and the command line) stays fast and does not import pandas or scipy.
"""

from typing import Any

__version__ = "0.1.0"

_API = ("att_gt", "etwfe", "twfe", "GroupTimeResult", "AggregateResult", "TwfeResult")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from mipa import api

        return getattr(api, name)
    raise AttributeError(f"module 'mipa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
