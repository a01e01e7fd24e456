"""Standard normal draws for HonestDiD's two simulations, and how to inject them.

Two quantities are simulated, as in R ``HonestDiD``: the least-favourable critical value
of the C-LF hybrid test (:data:`LF_SIMS` draws of ``N(0, Sigma_Y)``; Andrews, I., Roth, J.
and Pakes, A. (2023), "Inference for Linear Conditional Moment Inequalities", Review of
Economic Studies 90(6), sec. 5.3; HonestDiD ``.compute_least_favorable_cv``) and the
folded-normal quantile of the fixed-length CI (:data:`FOLDED_SIMS` draws; HonestDiD
``.qfoldednormal``). Each simulation restarts one stream of standard normals and uses its
first ``n`` draws, as HonestDiD calls ``set.seed(seed)`` before each.

The stream is numpy's: ``np.random.default_rng(seed).standard_normal(n)`` (deterministic
for a fixed ``seed``; its first ``n`` draws do not depend on how many are drawn). A caller
may inject another stream through ``normals``: a function ``n -> n draws`` or a pre-drawn
array (any shape, read by rows; its first ``n`` entries are used). The tests inject R's
``set.seed(seed); rnorm(n)`` this way to reproduce HonestDiD's digits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

__all__ = ["FOLDED_SIMS", "LF_SIMS", "Draws", "NormalSource", "mvnormal_draws", "normal_draws"]

#: Least-favourable simulation draws (HonestDiD ``.compute_least_favorable_cv``).
LF_SIMS = 1000
#: Folded-normal simulation draws (HonestDiD ``.qfoldednormal``).
FOLDED_SIMS = 10**6

#: ``draws(n)``: the first ``n`` standard normals of the (restarted) simulation stream.
Draws = Callable[[int], np.ndarray]
#: What a caller may inject: a draw function or pre-drawn standard normals.
NormalSource = Callable[[int], np.ndarray] | np.ndarray


@functools.lru_cache(maxsize=8)
def _seeded(seed: int, n: int) -> np.ndarray:
    """``np.random.default_rng(seed).standard_normal(n)`` (cached, read-only)."""
    z = np.random.default_rng(seed).standard_normal(n)
    z.flags.writeable = False
    return z


def _first(z: np.ndarray | list[float], n: int) -> np.ndarray:
    flat = np.asarray(z, dtype=float).ravel()
    if flat.size < n:
        raise ValueError(f"the injected normals hold {flat.size} draws, the simulation needs {n}")
    return flat[:n]


def normal_draws(seed: int = 0, normals: NormalSource | None = None) -> Draws:
    """The simulation stream as a function ``n -> first n draws``: numpy's generator seeded
    with ``seed``, or the injected ``normals`` (then ``seed`` is not used)."""
    if normals is None:
        return functools.partial(_seeded, int(seed))
    if callable(normals):
        return lambda n: _first(normals(n), n)
    return functools.partial(_first, normals)


def mvnormal_draws(n: int, sigma: np.ndarray, draws: Draws) -> np.ndarray:
    """``n`` draws of ``N(0, sigma)``: ``Z R`` with ``Z`` the ``n x p`` matrix of
    ``draws(n p)`` filled by rows and ``R = V diag(sqrt(max(lambda, 0))) V'`` the symmetric
    square root of ``sigma`` (as ``mvtnorm::rmvnorm(method = "eigen")``)."""
    sig = np.asarray(sigma, dtype=float)
    p = sig.shape[0]
    lam, vec = np.linalg.eigh((sig + sig.T) / 2)
    root = (vec * np.sqrt(np.maximum(lam, 0.0))) @ vec.T
    return draws(n * p).reshape(n, p) @ root
