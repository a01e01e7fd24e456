r"""Robust confidence sets for ``theta`` by inverting the ARP / C-LF tests on a grid.

Reference: Rambachan, A. and Roth, J. (2023), "A More Credible Approach to Parallel
Trends", Review of Economic Studies 90(5), sec. 3.3; R ``HonestDiD``
``computeConditionalCS_DeltaRM`` and ``computeConditionalCS_DeltaSD``.

``theta`` is in the set unless the test of :func:`~mipa.sensitivity.honest_did.arp.arp_accept`
rejects it. ``Delta^RM(Mbar)`` is the union over ``s`` and sign of the polyhedra
``Delta^RM_{s,+/-}``, so its acceptance region is the union of theirs (:func:`rm_accept`);
``Delta^SD(M)`` is one polyhedron (:func:`sd_accept`). The C-LF test simulates its
least-favourable critical value: ``seed`` seeds numpy's generator, or ``normals`` injects
the standard normal draws (:mod:`mipa.sensitivity.honest_did.draws`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np

from mipa.sensitivity.honest_did.arp import arp_accept
from mipa.sensitivity.honest_did.deltas import create_a_rm, create_a_sd, identified_set_sd
from mipa.sensitivity.honest_did.draws import NormalSource, normal_draws
from mipa.sensitivity.honest_did.inputs import Hybrid, Vector, sd_theta, validated_inputs

__all__ = ["GridCS", "GridOptions", "conditional_cs_rm", "conditional_cs_sd", "rm_accept", "sd_accept"]


@dataclass(frozen=True)
class GridCS:
    """A confidence set from test inversion on a grid of ``theta`` values.

    ``lb``/``ub`` are the smallest and largest accepted grid points (HonestDiD reports
    these); NaN when nothing is accepted. ``open_lower``/``open_upper``: an end point of
    the grid was accepted, so the set may extend beyond the grid.
    """

    grid: np.ndarray
    accept: np.ndarray

    @property
    def lb(self) -> float:
        return float(self.grid[self.accept].min()) if self.accept.any() else np.nan

    @property
    def ub(self) -> float:
        return float(self.grid[self.accept].max()) if self.accept.any() else np.nan

    @property
    def open_lower(self) -> bool:
        return bool(self.accept[0])

    @property
    def open_upper(self) -> bool:
        return bool(self.accept[-1])


def rm_accept(
    beta: np.ndarray, sig: np.ndarray, num_pre: int, num_post: int, lv: np.ndarray, mbar: float, theta: np.ndarray,
    alpha: float, hybrid: Hybrid, seed: int, normals: NormalSource | None = None,
) -> np.ndarray:
    """Union over ``s`` and sign of the ``Delta^RM_{s,+/-}(Mbar)`` acceptance regions."""
    draws = normal_draws(seed, normals)
    accept = np.zeros(theta.size, dtype=bool)
    for s in range(-(num_pre - 1), 1):
        for pos in (True, False):
            a = create_a_rm(num_pre, num_post, mbar, s, pos)
            if num_post == 1:
                a = a[a[:, -1] != 0]
            d = np.zeros(a.shape[0])
            accept |= arp_accept(beta, sig, a, d, num_pre, num_post, lv, theta, alpha, hybrid, draws)
    return accept


class GridOptions(TypedDict, total=False):
    """The grid and the draws of :func:`conditional_cs_rm` and :func:`conditional_cs_sd`:
    ``grid_points`` values (default 1000) from ``grid_lb`` to ``grid_ub`` (default: each
    function's own range), ``seed`` (default 0) or ``normals`` for the C-LF draws."""

    grid_points: int
    grid_lb: float | None
    grid_ub: float | None
    seed: int
    normals: NormalSource | None


def _inverted(
    accept: Callable[[np.ndarray, int, NormalSource | None], np.ndarray],
    default_range: Callable[[], tuple[float, float]],
    *,
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    seed: int = 0,
    normals: NormalSource | None = None,
) -> GridCS:
    """``accept(grid, seed, normals)`` on the grid of :class:`GridOptions`; ``default_range()``
    gives the ends not set."""
    if grid_lb is None or grid_ub is None:
        lo, hi = default_range()
        grid_lb = lo if grid_lb is None else grid_lb
        grid_ub = hi if grid_ub is None else grid_ub
    grid = np.linspace(grid_lb, grid_ub, grid_points)
    return GridCS(grid, accept(grid, seed, normals))


def conditional_cs_rm(
    betahat: Vector, sigma: np.ndarray, num_pre: int, num_post: int, mbar: float, l_vec: Vector | None = None,
    alpha: float = 0.05, hybrid: Hybrid = "LF", **grid: Unpack[GridOptions],
) -> GridCS:
    """Confidence set for ``theta`` under ``Delta^RM(Mbar)`` (HonestDiD
    ``computeConditionalCS_DeltaRM``; ``hybrid="LF"`` is C-LF, ``"ARP"`` Conditional).

    Default grid: ``grid_points`` values on ``[-20 sd_theta, 20 sd_theta]`` (HonestDiD),
    ``sd_theta = sqrt(l' Sigma_post l)``; pass ``grid_lb``/``grid_ub`` when the effect is
    more than ~20 standard errors from 0. Post-period moments only (HonestDiD's default).
    """
    beta, sig, lv = validated_inputs(betahat, sigma, num_pre, num_post, l_vec)

    def default_range() -> tuple[float, float]:
        sd = sd_theta(sig, num_pre, lv)
        return -20 * sd, 20 * sd

    return _inverted(
        lambda theta, seed, normals: rm_accept(beta, sig, num_pre, num_post, lv, mbar, theta, alpha, hybrid, seed,
                                               normals),
        default_range, **grid,
    )


def sd_accept(
    beta: np.ndarray, sig: np.ndarray, num_pre: int, num_post: int, lv: np.ndarray, m: float, theta: np.ndarray,
    alpha: float, hybrid: Hybrid, seed: int, normals: NormalSource | None = None,
) -> np.ndarray:
    """Acceptance region over ``theta`` under ``Delta^SD(M)``."""
    a = create_a_sd(num_pre, num_post)
    d = np.full(a.shape[0], float(m))
    return arp_accept(beta, sig, a, d, num_pre, num_post, lv, theta, alpha, hybrid, normal_draws(seed, normals))


def conditional_cs_sd(
    betahat: Vector, sigma: np.ndarray, num_pre: int, num_post: int, m: float, l_vec: Vector | None = None,
    alpha: float = 0.05, hybrid: Hybrid = "LF", **grid: Unpack[GridOptions],
) -> GridCS:
    """Confidence set for ``theta`` under ``Delta^SD(M)`` (HonestDiD
    ``computeConditionalCS_DeltaSD`` with ``hybrid_flag`` ``"LF"`` or ``"ARP"``).

    Default grid: the identified set at ``beta = 0`` widened by ``20 sd_theta`` on each
    side (HonestDiD).
    """
    beta, sig, lv = validated_inputs(betahat, sigma, num_pre, num_post, l_vec)

    def default_range() -> tuple[float, float]:
        id_lo, id_hi = identified_set_sd(np.zeros(beta.size), num_pre, num_post, m, lv)
        sd = sd_theta(sig, num_pre, lv)
        return id_lo - 20 * sd, id_hi + 20 * sd

    return _inverted(
        lambda theta, seed, normals: sd_accept(beta, sig, num_pre, num_post, lv, m, theta, alpha, hybrid, seed,
                                               normals),
        default_range, **grid,
    )
