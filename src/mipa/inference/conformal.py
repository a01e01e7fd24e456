r"""Conformal (permutation) inference for the effect of ONE treated unit: CWZ 2021.

Reference
---------
* Chernozhukov, V., Wüthrich, K. and Zhu, Y. (2021), "An exact and robust conformal
  inference method for counterfactual and synthetic controls", Journal of the American
  Statistical Association 116(536), 1849-1864 (CWZ 2021).

Why
---
With one treated country per cohort, a per-country interval has to learn the treated
country's own noise from that country's own months: the clustered errors cannot
(one treated cluster), and placebo countries (Conley-Taber, Ferman-Pinto, SDID placebo)
carry the *controls'* noise, not the treated country's. CWZ 2021 test a hypothesis on the
treated unit's post-period path by permuting its own residuals over time.

Test of one constant effect
---------------------------
Unit ``j`` with ``T0`` pre- and ``T1`` post-periods (``T = T0 + T1``), ``D_t = 1[t post]``.
For ``H0: theta_t = theta0`` for every post period ``t`` (a constant additive effect):

1. ``y_t(theta0) = y_jt - theta0 D_t`` (the outcome with the null effect taken out);
2. fit a counterfactual model of ``y_t(theta0)`` on the controls over ALL ``T`` periods
   (pre and post: under the null the post months are untreated months too), residuals
   ``u_t(theta0)``;
3. a statistic of the post block (``statistic``):

   * ``"mean"``: ``S(u) = |T1^{-1} sum_{t > T0} u_t|``, the post mean (the natural
     statistic for a constant effect; CWZ 2021's construction with a mean statistic);
   * ``"t"``: the studentized difference between the post block and the rest,
     ``S(u) = |m_post - m_pre| / sqrt(V_post / T1 + V_pre / T0)``, ``m`` the means of ``u``
     over the block and over its complement and ``V`` their Bartlett long-run variances
     (lags ``floor(n^(1/3))`` for a block of ``n`` periods; ``lags=0`` is Welch's
     statistic). Studentizing makes the permutation test robust to a post period whose
     noise differs from the pre-period's (Chung & Romano 2013, "Exact and asymptotically
     robust permutation tests", Annals of Statistics 41(2); Wu & Ding 2021, JASA 116(536),
     for weak nulls), which a planted effect with its own month-to-month noise causes:
     the sharp null of ``mean`` then fails for every ``theta0``;
   * ``"s1"``: CWZ's ``S_1(u) = T1^{-1/2} sum_{t > T0} |u_t|`` (their ``S_q`` with
     ``q = 1``), a test of the whole post path; it rejects every constant effect when the
     post noise is larger than the pre noise (the set can then be empty: NaN bounds).

   ``"t"`` is the default: in the pilot Monte Carlo at the annex's design
   (``scripts/conformal_pilot.py``, 500 replications per design, forced departures) the
   ``mean`` intervals covered 92-93% under the annex's effects and 89% under a homogeneous
   one (the effect's own noise), ``t`` 96% under both and under no effect (size 3.5%),
   at about 1.5 times the oracle width (1.4-1.5 with ``smooth=2``); ``s1`` 44-66%;
4. moving-block permutations (cyclic shifts) ``pi_k(t) = (t + k) mod T``, ``k = 0..T-1``
   (``k = 0`` the identity): ``p(theta0) = T^{-1} sum_k 1[S(u o pi_k) >= S(u)]``;
5. the ``1 - alpha`` confidence set is ``{theta0 : p(theta0) > alpha}``.

The test is exact (level ``floor(alpha T) / T <= alpha``) when the residuals are
exchangeable over time and the fit is invariant to permuting the periods (OLS on all
``T`` periods is): CWZ 2021, Theorem 1; the cyclic shifts are a group, so exchangeability
is more than needed. Under weak dependence and a consistent counterfactual model the
moving-block test is asymptotically valid (CWZ 2021, Theorem 2): the shifted blocks keep
the serial dependence inside a block. ``p`` cannot fall below ``1/T``: with fewer than
``1/alpha`` usable periods the test cannot reject at level ``alpha`` (not estimable).

Counterfactual models (``model``)
---------------------------------
All are linear in the outcome and fitted on all ``T`` periods (OLS; ``ratio`` by its score), so with ``M`` the
annihilator of the model's regressors ``X`` (after an offset ``o_t``)
``u(theta0) = M (y - o) - theta0 M D = u0 - theta0 r``: the residuals are linear in
``theta0`` and the confidence set is computed exactly (below).

* ``"did"``: ``y_jt = a_j + ybar_ct + u_t``: the period effect is the control mean
  ``ybar_ct`` (two-way fixed effects with the controls), ``X = 1``, ``o = ybar_c``.
* ``"factor"``: ``y_jt = a_j + b_j ybar_ct + u_t``: OLS of the treated unit on the
  control-mean series, ``X = [1, ybar_c]``, ``o = 0``. Robust to common shocks that
  scale with a country's size (multiplicative seasonality, COVID), which the additive
  ``did`` model leaves in the residuals of a country much bigger than the average control.
* ``"ratio"``: ``y_jt = b_j ybar_ct + u_t`` with ``b_j`` fitted by the Poisson score
  ``sum_t (y_jt - b_j ybar_ct) = 0`` (the exponential-mean QMLE), not by OLS:
  ``M = I - ybar 1' / (1' ybar)``, oblique. This is the counterfactual of Poisson ETWFE
  (Wooldridge 2023) with unit and month effects: on the never-treated block the month
  effects are proportional to the control mean, and with the post months left out the
  unit's scale is ``sum_pre y / sum_pre ybar``, so the point estimate (below) is the post
  mean of ``y - b_pre ybar``, the count-scale effect of Poisson imputation against the
  never-treated. Unbiased under multiplicative country x month structure, where ``did``
  is not and ``factor`` (an intercept, OLS on a noisy regressor) is slightly biased
  (``scripts/design_study.py``). Not smoothed: no regression on the noisy mean.
* ``"poisson"``: ``ratio`` with Poisson ETWFE's own month profile ``e^{g_t}`` in place of the
  raw never-treated mean: the two-way Poisson fit on every untreated cell, never-treated
  countries and the partners' months before their start
  (:func:`~mipa.inference.poisson_profile.poisson_month_profile`). With a cohort x post-month
  dummy for every treated cell that is the fit of Poisson ETWFE with not-yet-treated controls
  (Wooldridge 2023, section 6), so the point estimate is Poisson ETWFE's count-scale effect
  of the unit, and the average over units its ``simple`` effect. The profile uses the unit's
  own pre-period months (one country of many), so exchangeability is approximate; the harness
  measures the coverage.

``smooth = h > 0`` replaces the control mean by its centred moving average over
``2h + 1`` used months (fewer at the ends) before either model uses it. The month noise of
the control mean (a few large controls dominate it) otherwise attenuates ``b_j`` in the
factor model (errors in variables), which then leaves part of a size-proportional shock
in a big country's residuals; the shocks in question (COVID, the partners' trends) are
smooth. The fit is then no longer invariant to permuting the periods, so exactness under
exchangeability becomes approximate (validity under weak dependence, CWZ Theorem 2, is
unaffected). Default 0 (the raw mean).

Point estimate (``theta0`` free): OLS of ``y - o`` on ``[X, D]``, i.e.
``theta_hat = r'u0 / r'r`` (Frisch-Waugh); for ``ratio`` the just-identified score
equations, ``theta_hat = D'u0 / D'r`` (:func:`~mipa.inference.conformal_stats.score_weights`). It also solves ``S(u(theta)) = 0`` for the
``mean`` and ``t`` statistics (the residuals sum to zero), so ``p(theta_hat) = 1`` and the
estimate lies in their sets (not necessarily in the ``s1`` set).

Exact inversion
---------------
``S_k(theta) = S(u(theta) o pi_k)``; the count ``sum_k 1[S_k >= S_0]`` changes only where
some ``S_k - S_0`` changes sign. For ``mean`` and ``s1`` ``S_k`` is piecewise linear in
``theta`` (``mean``: kinks at ``A_k / B_k``, ``A``/``B`` the shifted block means of
``u0``/``r``; ``s1``: kinks at ``u0_t / r_t``), so each ``S_k - S_0`` is linear between
consecutive kinks and its zeros are exact. For ``t`` the mean difference is linear and
the variance quadratic in ``theta`` (``a_k - theta b_k``; ``q0_k - 2 theta q1_k +
theta^2 q2_k``), so ``S_k^2 >= S_0^2`` is the sign of a quartic: its real roots. ``p`` is
evaluated at every such point and between them, so it is known everywhere and the set
``{p > alpha}`` exactly (no grid; a test checks it against brute-force refits).
``ci_low``/``ci_high`` are its infimum/supremum, ``-inf``/``inf`` when it is unbounded:
never clipped. It is unbounded when, far out, some shifted statistic grows at least as
fast in ``theta0`` as the post block's (``mean``: a block mean of ``r`` at least as large
as the post block's, which under ``did`` needs ``T1 = T0``; under ``factor`` it happens
when ``D`` is nearly a linear function of the control mean, i.e. the effect is not
identified apart from the factor). ``convex`` says whether the set is one interval (rarely not: a hole inside is reported).

Missing months (``lead_time_days`` without confirmations)
---------------------------------------------------------
The months used are those where unit ``j`` is observed and at least one control is
observed; ``ybar_ct`` is the mean over the controls observed in month ``t``. The time
index of the permutations is the sequence of those months (a gap is closed up). Post
months are the used months from ``j``'s start on (the last ``T1`` of them).

Not estimable (:class:`mipa.estimability.NotEstimable`)
-------------------------------------------------------
``no_control_units`` (no never-treated unit observed with ``j``), ``no_post_treatment_data``
(no used month from the start on), ``no_pre_treatment_data`` (none before it),
``too_few_pre_periods`` (``T < 1/alpha``: fewer cyclic shifts than the level needs, or
fewer than ``dim X + 1`` months; ``t``: fewer than 2 pre months), ``too_few_post_periods``
(``t`` only: one post month, no post variance), ``constant_outcome`` (``j``'s outcome,
or under ``factor`` the control mean, is constant over the used months).

The computation is split by responsibility (each module states its formulas):

* :mod:`mipa.inference.conformal_stats`: the residual parts of the two models, the
  statistics over the cyclic shifts and the exact inversion;
* :mod:`mipa.inference.conformal_unit`: one treated unit's test and confidence set
  (:func:`conformal_unit`, :func:`conformal_series`, :func:`conformal_rows`);
* :mod:`mipa.inference.conformal_average`: the average over the treated units, with the
  block-studentized and the re-estimated statistics (:func:`conformal_average`);
* this module: the method's description and the names of the three.
"""

from mipa.inference.conformal_average import (
    AVERAGE_STUDENTIZATIONS,
    AverageRefitStats,
    AverageStats,
    UnitFit,
    conformal_average,
    overall_label,
    overall_row,
    unit_fit,
)
from mipa.inference.conformal_stats import (
    MODELS,
    STATISTICS,
    Model,
    Statistic,
    StudentStats,
    bartlett_lags,
    count_at_least,
    invert,
    moving_average,
)
from mipa.inference.conformal_unit import (
    ConformalResult,
    conformal_by_unit,
    conformal_rows,
    conformal_series,
    conformal_unit,
    inference_label,
    p_values,
    studentized_standard_error,
)

__all__ = [
    "AVERAGE_STUDENTIZATIONS",
    "MODELS",
    "STATISTICS",
    "AverageRefitStats",
    "AverageStats",
    "ConformalResult",
    "Model",
    "Statistic",
    "StudentStats",
    "UnitFit",
    "bartlett_lags",
    "conformal_average",
    "conformal_by_unit",
    "conformal_rows",
    "conformal_series",
    "conformal_unit",
    "count_at_least",
    "inference_label",
    "invert",
    "moving_average",
    "overall_label",
    "overall_row",
    "p_values",
    "studentized_standard_error",
    "unit_fit",
]
