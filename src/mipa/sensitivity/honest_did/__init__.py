r"""Sensitivity of event-study conclusions to violations of parallel trends (HonestDiD).

Reference: Rambachan, A. and Roth, J. (2023), "A More Credible Approach to Parallel
Trends", Review of Economic Studies 90(5), 2555-2591 (RR2023); the inference builds on
Andrews, I., Roth, J. and Pakes, A. (2023), "Inference for Linear Conditional Moment
Inequalities", Review of Economic Studies 90(6) (ARP2023), and Armstrong, T. and Kolesar,
M. (2018), "Optimal inference in a class of regression models", Econometrica 86(2)
(fixed-length confidence intervals). This package reproduces the computations of the R
package ``HonestDiD`` (Rambachan & Roth, github.com/asheshrambachan/HonestDiD), which
the tests check against its published output on the Benzarti & Carloni (2019) example.

Setting
-------
An event study gives ``beta_hat = (beta_pre, beta_post)`` (``num_pre`` leads, reference
period -1 omitted and normalised to 0, then ``num_post`` lags) with covariance
``sigma``; ``beta = tau + delta`` with ``tau_pre = 0``. The target is
``theta = l' tau_post``. A restriction ``delta in Delta`` bounds the post-period bias
``delta_post`` by what the pre-periods show: relative magnitudes ``Delta^RM(Mbar)`` or
smoothness ``Delta^SD(M)``.

Modules
-------
* :mod:`~mipa.sensitivity.honest_did.inputs`: validated inputs and the conventional
  interval :func:`original_ci` (HonestDiD ``constructOriginalCS``).
* :mod:`~mipa.sensitivity.honest_did.deltas`: the restriction sets as polyhedra
  (:func:`create_a_rm`, :func:`create_a_sd`) and their identified sets.
* :mod:`~mipa.sensitivity.honest_did.draws`: the standard normal draws of the two
  simulations (numpy's generator, or injected).
* :mod:`~mipa.sensitivity.honest_did.arp_lp` and :mod:`~mipa.sensitivity.honest_did.arp`:
  the ARP conditional test and the conditional / least-favourable hybrid (C-LF).
* :mod:`~mipa.sensitivity.honest_did.conditional`: robust sets by inverting those tests on
  a grid (:func:`conditional_cs_rm`, :func:`conditional_cs_sd`).
* :mod:`~mipa.sensitivity.honest_did.flci`: fixed-length CIs under ``Delta^SD``
  (:func:`flci_sd`).
* :mod:`~mipa.sensitivity.honest_did.sensitivity`: sensitivity tables and breakdown values.

Matching R HonestDiD
--------------------
Two results are simulated: the C-LF least-favourable critical value (1000 draws) and the
FLCI's folded-normal quantile (``10^6`` draws, ``folded_normal="simulation"``). Their
standard normals come from ``np.random.default_rng(seed)`` (default ``seed=0``), or from
``normals`` (a draw function or a pre-drawn array) where given. With R's
``set.seed(seed); rnorm(n)`` injected (the tests emulate R's generator) the sets equal
R's to the precision of the optimisers (the tests reproduce the published BC numbers to
1e-6 or better); with numpy's draws they differ from R's by the simulation error.
``folded_normal="exact"`` uses the exact folded-normal quantile (no draws). Differences
that remain: (i) LPs are solved by HiGHS, not lpSolve/glpk; where the dual optimum is
not unique (measure zero in the data) the vertex can differ; (ii) degenerate LPs get
exact truncation bounds (Charnes-Cooper LPs) where HonestDiD bisects to 1e-6 and treats
+/-100 as infinite; (iii) optimal LP bases are cached and reused across the grid and the
simulation draws (exact, since dual feasibility does not depend on the data), which
makes the C-LF sets ~100x faster than a per-point LP; (iv) C-F (FLCI hybrid) and the
sign/monotonicity variants (``Delta^SDB``, ``Delta^SDM``, ``Delta^RMB``, ``Delta^RMM``,
``Delta^SDRM``) are not implemented; (v) with one post period HonestDiD's no-nuisance LF
test uses size ``alpha`` (no ``kappa`` adjustment, no cap at the least-favourable value)
in its second stage; this package reproduces that.
"""

from __future__ import annotations

from mipa.sensitivity.honest_did.conditional import (
    GridCS,
    conditional_cs_rm,
    conditional_cs_sd,
    rm_accept,
    sd_accept,
)
from mipa.sensitivity.honest_did.deltas import create_a_rm, create_a_sd, identified_set_rm, identified_set_sd
from mipa.sensitivity.honest_did.draws import FOLDED_SIMS, LF_SIMS, Draws, NormalSource, mvnormal_draws, normal_draws
from mipa.sensitivity.honest_did.flci import FLCIResult, FoldedNormal, FoldedNormalCV, flci_sd
from mipa.sensitivity.honest_did.inputs import Hybrid, basis_vector, original_ci
from mipa.sensitivity.honest_did.sensitivity import (
    bisect_threshold,
    breakdown_value_rm,
    breakdown_value_sd,
    expand_and_bisect,
    sd_upper_bound_m_pre,
    sensitivity_rm,
    sensitivity_sd,
)

__all__ = [
    "FOLDED_SIMS",
    "LF_SIMS",
    "Draws",
    "FLCIResult",
    "FoldedNormal",
    "FoldedNormalCV",
    "GridCS",
    "Hybrid",
    "NormalSource",
    "basis_vector",
    "bisect_threshold",
    "breakdown_value_rm",
    "breakdown_value_sd",
    "conditional_cs_rm",
    "conditional_cs_sd",
    "create_a_rm",
    "create_a_sd",
    "expand_and_bisect",
    "flci_sd",
    "identified_set_rm",
    "identified_set_sd",
    "mvnormal_draws",
    "normal_draws",
    "original_ci",
    "rm_accept",
    "sd_accept",
    "sd_upper_bound_m_pre",
    "sensitivity_rm",
    "sensitivity_sd",
]
