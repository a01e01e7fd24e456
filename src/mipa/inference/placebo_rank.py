"""The placebo rank test and its inversion into a confidence set, and the placebo assignments.

References: Conley, T. G. and Taber, C. R. (2011), "Inference with 'difference in
differences' with a small number of policy changes", REStat 93(1), 113-125; Abadie, A.,
Diamond, A. and Hainmueller, J. (2010), JASA 105(490), 493-505 (the rank test counting
the observed statistic among the draws); Imbens, G. W. and Rubin, D. B. (2015), *Causal
Inference*, ch. 5 (inverting a randomization test under a constant additive effect).
The p-values and the closed-form intervals: :mod:`mipa.inference.randomization`
("p-value and interval").
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import numpy as np

from mipa.estimability import NotEstimable

__all__ = ["DEFAULT_SEED", "Tails", "invert_rank_test", "kth_value", "placebo_assignments", "rank_p_value"]

Tails = Literal["symmetric", "equal"]
DEFAULT_SEED = 20260701


def kth_value(m: int, values: np.ndarray, largest: bool) -> float:
    """The ``m``-th largest (or smallest) value; NaN when ``m`` is out of range."""
    if m <= 0 or m > values.size:
        return np.nan
    s = np.sort(values)
    return float(s[-m] if largest else s[m - 1])


def rank_p_value(stat: float, placebo: np.ndarray, tails: Tails = "symmetric") -> float:
    """Randomization p-value of ``stat`` among the placebo statistics (module docstring)."""
    placebo = np.asarray(placebo, dtype=float)
    R = placebo.size
    if tails == "symmetric":
        return float((1 + np.sum(np.abs(placebo) >= abs(stat))) / (1 + R))
    if tails == "equal":
        lo = (1 + np.sum(placebo <= stat)) / (1 + R)
        hi = (1 + np.sum(placebo >= stat)) / (1 + R)
        return float(min(1.0, 2 * min(lo, hi)))
    raise ValueError(f"tails must be 'symmetric' or 'equal', not {tails!r}")


def invert_rank_test(
    estimate: float, placebo: np.ndarray, *, alpha: float = 0.05, tails: Tails = "symmetric",
    scale: float = 1.0,
) -> tuple[float, float]:
    """``{delta : p(delta) > alpha}`` for ``H0: theta = delta`` (constant additive effect).

    ``p(delta)`` is :func:`rank_p_value` of ``(estimate - delta) / scale`` among the
    placebo statistics (``scale`` is the treated unit's noise scale when the placebos are
    studentized; 1 otherwise). Closed form from the order statistics (module docstring);
    ``(-inf, inf)`` when there are too few placebos for the level.
    """
    placebo = np.asarray(placebo, dtype=float)
    R = placebo.size
    if tails == "symmetric":
        m = math.floor(alpha * (1 + R) - 1) + 1
        a = kth_value(m, np.abs(placebo), largest=True)
        if np.isnan(a):
            return -np.inf, np.inf
        return estimate - scale * a, estimate + scale * a
    if tails == "equal":
        m = math.floor(alpha / 2 * (1 + R) - 1) + 1
        hi = kth_value(m, placebo, largest=True)
        lo = kth_value(m, placebo, largest=False)
        if np.isnan(hi):
            return -np.inf, np.inf
        return estimate - scale * hi, estimate - scale * lo
    raise ValueError(f"tails must be 'symmetric' or 'equal', not {tails!r}")


# --------------------------------------------------------------------------- assignments
def placebo_assignments(
    n_controls: int, n_treated: int, *, n_placebo: int = 999, seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, bool]:
    """``R x J`` array: row ``r`` gives, for each treated unit ``k``, the control taking its start.

    All ``N0!/(N0-J)!`` ordered assignments when there are at most ``n_placebo`` of them
    (returned in lexicographic order; ``exhaustive=True``), else ``n_placebo`` draws of
    ``J`` distinct controls from ``default_rng(seed)`` (the first ``J`` of a random
    permutation; repeats across draws are possible and harmless).
    """
    N0, J = int(n_controls), int(n_treated)
    if J > N0:
        raise NotEstimable("too_few_controls", f"{J} treated units but only {N0} controls")
    total = math.perm(N0, J)
    if total <= n_placebo:
        return np.array(list(itertools.permutations(range(N0), J)), dtype=np.int64).reshape(-1, J), True
    rng = np.random.default_rng(seed)
    out = np.empty((n_placebo, J), dtype=np.int64)
    for r in range(n_placebo):
        out[r] = rng.permutation(N0)[:J]
    return out, False

