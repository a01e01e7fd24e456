"""Synthetic return-service feeds with known planted effects (``mipa simulate``).

>>> from mipa.simulate import simulate
>>> summary = simulate("data/raw", seed=20260522)          # doctest: +SKIP

See :mod:`mipa.simulate.model` for the data-generating process, :mod:`mipa.simulate.writer`
for the raw feed contract, :mod:`mipa.simulate.dirty` for the messy mode and
:mod:`mipa.simulate.calibration` for the check against the annex's descriptive table.
"""

from typing import Any

__all__ = ["MARKER", "TRUTH", "SimulationSummary", "simulate"]


def __getattr__(name: str) -> Any:
    # lazily: `mipa --help` imports mipa.simulate.command without loading pandas
    if name in __all__:
        from mipa.simulate import runner

        return getattr(runner, name)
    raise AttributeError(name)
