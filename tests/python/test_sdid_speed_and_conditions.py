"""Synthetic DiD: the compiled solver against a plain reference, and data conditions.

Known truths only:

* the compiled Frank-Wolfe solver (scalar recursions, shared leave-one-out Gram blocks,
  all placebo problems of all units in one solve) gives the numbers of a plain
  implementation of ``synthdid``'s ``sc.weight.fw`` / ``placebo_se`` kept in this file
  (to 1e-9 on a random panel);
* the leave-one-out blocks equal the problems built from the permuted panel, and
  stacks of mixed shapes equal the plain solver problem by problem;
* every treated unit gets a row: a unit that cannot be estimated has NaN numbers,
  ``status = 'not_estimable'`` and a documented reason, and the other units are
  computed exactly as without it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mipa.estimability import REASONS
from mipa.inference import randomization as ri
from mipa.inference import sdid, sdid_fit, sdid_placebo, sdid_solver

KW = dict(outcome="y", unit="unit", period="period", first_treat="first_treat")


# --------------------------------------------------------------------------- reference
def _ref_fw(A: np.ndarray, b: np.ndarray, zeta: float, x: np.ndarray, *, intercept: bool,
            min_decrease: float, max_iter: int) -> np.ndarray:
    """``synthdid``'s ``sc.weight.fw`` with ``fw.step``, line by line (one problem)."""
    if intercept:
        A = A - A.mean(axis=0)
        b = b - b.mean()
    n = A.shape[0]
    eta = n * zeta**2
    x = x.astype(float).copy()
    vals: list[float] = []
    t = 0
    while t < max_iter and (t < 2 or vals[t - 2] - vals[t - 1] > min_decrease**2):
        t += 1
        Ax = A @ x
        half_grad = (Ax - b) @ A + eta * x
        i = int(np.argmin(half_grad))
        d_x = -x.copy()
        d_x[i] = 1 - x[i]
        if np.any(d_x != 0):
            d_err = A[:, i] - Ax
            step = -(half_grad @ d_x) / (d_err @ d_err + eta * d_x @ d_x)
            x = x + min(1.0, max(0.0, step)) * d_x
        err = A @ x - b
        vals.append(zeta**2 * x @ x + err @ err / n)
    return x


def _ref_weights(A, b, zeta, x0, *, intercept, min_decrease, max_iter):
    """Two stages as ``synthdid``: 100 steps, sparsify, then ``max_iter``."""
    x = _ref_fw(A, b, zeta, x0, intercept=intercept, min_decrease=min_decrease, max_iter=100)
    x[x <= x.max() / 4] = 0
    x = x / x.sum()
    return _ref_fw(A, b, zeta, x, intercept=intercept, min_decrease=min_decrease, max_iter=max_iter)


def _ref_solve(Y, n0, t0, zeta_omega, zeta_lambda, min_decrease, omega0, lambda0, max_iter):
    """SDID weights and estimate of one ``N x T`` block (controls first; one treated row here)."""
    post = Y[:, t0:].mean(axis=1)
    lam = _ref_weights(Y[:n0, :t0], post[:n0], zeta_lambda, lambda0, intercept=True,
                       min_decrease=min_decrease, max_iter=max_iter)
    om = _ref_weights(Y[:n0, :t0].T, Y[n0:, :t0].mean(axis=0), zeta_omega, omega0, intercept=True,
                      min_decrease=min_decrease, max_iter=max_iter)
    n1, t1 = Y.shape[0] - n0, Y.shape[1] - t0
    tau = np.r_[-om, np.full(n1, 1 / n1)] @ Y @ np.r_[-lam, np.full(t1, 1 / t1)]
    return tau, om, lam


def _ref_unit(Y: np.ndarray, n0: int, t0: int, max_iter: int) -> tuple[float, float]:
    """``synthdid_estimate`` and ``placebo_se`` with every control once as the placebo unit."""
    sigma = np.std(np.diff(Y[:n0, :t0], axis=1), ddof=1)
    n1, t1 = Y.shape[0] - n0, Y.shape[1] - t0
    zo, zl, md = (n1 * t1) ** 0.25 * sigma, 1e-6 * sigma, 1e-5 * sigma
    tau, om, lam = _ref_solve(Y, n0, t0, zo, zl, md, np.full(n0, 1 / n0), np.full(t0, 1 / t0), max_iter)
    taus = []
    for c in range(n0):  # control c plays treated, the others are the donors
        donors = [d for d in range(n0) if d != c]
        w = om[donors]
        w0 = w / w.sum() if w.sum() != 0 else np.full(len(donors), 1 / len(donors))
        taus.append(_ref_solve(Y[donors + [c]], n0 - 1, t0, zo, zl, md, w0, lam, max_iter)[0])
    taus = np.array(taus)
    return float(tau), float(np.sqrt((n0 - 1) / n0) * np.std(taus, ddof=1))


def _panel(n_units: int, n_periods: int, starts: dict[int, int], *, seed: int, effect: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 2, n_units)
    g = 0.3 * rng.normal(size=n_periods).cumsum()
    load = rng.normal(size=n_units)
    f = np.linspace(0, 2, n_periods) ** 2
    per = np.arange(1, n_periods + 1)
    ft = np.array([starts.get(i, 0) for i in range(n_units)], dtype=float)
    D = (ft[:, None] > 0) & (per[None, :] >= ft[:, None])
    y = a[:, None] + g[None, :] + load[:, None] * f[None, :] + effect * D + rng.normal(size=(n_units, n_periods))
    return pd.DataFrame({
        "unit": np.repeat([f"U{i:03d}" for i in range(n_units)], n_periods),
        "period": np.tile(per, n_units),
        "first_treat": np.repeat(ft, n_periods),
        "y": y.ravel(),
    })


# --------------------------------------------------------------------------- solver
def test_sdid_matches_the_plain_reference_unit_by_unit() -> None:
    """Estimates and placebo SEs of all units (one fit solve, one placebo solve)
    equal the plain implementation run problem by problem."""
    p = _panel(17, 22, {0: 14, 1: 18, 2: 14}, seed=3)
    pa = ri.PanelArrays.from_frame(p, **KW)
    rows = sdid.sdid_by_unit(pa, exhaustive=True, overall=False, max_iter=1500, min_controls=2)
    assert [r.scope for r in rows] == ["U000", "U001", "U002"]
    controls = np.flatnonzero(~pa.treated)
    for r, j in zip(rows, np.flatnonzero(pa.treated), strict=True):
        Y = np.vstack([pa.y[controls], pa.y[[j]]])
        t0 = int(np.searchsorted(pa.periods, pa.first_treat[j]))
        tau, se = _ref_unit(Y, controls.size, t0, max_iter=1500)
        assert r.status == "estimated" and r.reason is None
        assert r.estimate == pytest.approx(tau, abs=1e-9)
        assert r.std_error == pytest.approx(se, abs=1e-9)


@pytest.mark.parametrize("zeros", [False, True])
def test_leave_one_out_blocks_equal_the_permuted_problems(zeros: bool) -> None:
    """The unit-weight problems taken from the control block's one Gram matrix give the
    numbers of the problems built from the permuted stack (the generic path, used for
    random orderings), also when controls are all zero (count outcomes of small
    countries: tied weights that must stay tied)."""
    p = _panel(21, 26, {0: 17}, seed=5)
    if zeros:
        p.loc[p["unit"].isin(["U003", "U004", "U009", "U010"]), "y"] = 0.0
        p.loc[p["unit"].isin(["U011", "U012"]) & (p["period"] % 3 > 0), "y"] = 0.0
    pa = ri.PanelArrays.from_frame(p, **KW)
    controls = np.flatnonzero(~pa.treated)
    Y = np.vstack([pa.y[controls], pa.y[[0]]])
    fit = sdid.sdid_estimate(Y, controls.size, 16, max_iter=3000)
    perms = sdid.placebo_permutations(controls.size, 1, exhaustive=True)
    job = sdid_placebo.placebo_job(Y, fit, perms)
    assert job.loo_controls is not None
    generic = sdid_fit.Job(job.Y, job.n0, job.t0, job.tune, job.omega0, job.lambda0)
    loo, plain = sdid_placebo.placebo_taus_many([job, generic], max_iter=3000, use_sparsify=True)
    np.testing.assert_allclose(loo, plain, rtol=0, atol=1e-10)
    # the block's dense problems are the permuted ones
    Z = Y[:-1, :16].T - Y[:-1, :16].T.mean(axis=0)
    G, c = sdid_solver.LooOmega(Z=Z, F=Z.T @ Z, zeta2=np.ones(20), tol=np.ones(20)).dense()
    Yc = sdid_fit.collapsed(job.Y, job.n0, job.t0)
    ref = sdid_solver.fw_set(Yc[:, :job.n0, :16].transpose(0, 2, 1), Yc[:, job.n0, :16], 1.0, 1.0, intercept=True)
    np.testing.assert_allclose(G, ref.G, rtol=0, atol=1e-12 * np.abs(ref.G).max())
    np.testing.assert_allclose(c, ref.c, rtol=0, atol=1e-12 * np.abs(ref.c).max())


def test_compiled_solver_equals_the_plain_reference_on_mixed_shapes() -> None:
    """Every problem of stacks of different shapes and tunings gets the weights of the
    line-by-line ``sc.weight.fw`` above (no recursions, no shared state)."""
    rng = np.random.default_rng(11)
    for P, n, k in [(6, 30, 9), (5, 12, 23), (7, 40, 4)]:
        A, b = rng.normal(size=(P, n, k)), rng.normal(size=(P, n))
        zeta, x0 = rng.uniform(0.05, 0.5, P), rng.dirichlet(np.ones(k), size=P)
        x, steps = sdid.frank_wolfe(A, b, zeta, x0, intercept=True, min_decrease=1e-7, max_iter=400)
        for p in range(P):
            ref = _ref_fw(A[p], b[p], zeta[p], x0[p], intercept=True, min_decrease=1e-7, max_iter=400)
            np.testing.assert_allclose(x[p], ref, atol=1e-12)
        assert steps.min() >= 2 and steps.max() <= 400


def test_units_sharing_a_start_get_the_numbers_they_get_alone() -> None:
    p = _panel(24, 24, {0: 15, 1: 15}, seed=4)
    pa = ri.PanelArrays.from_frame(p, **KW)
    both = sdid.sdid_by_unit(pa, exhaustive=True, overall=False, max_iter=800, min_controls=2)
    for k, unit in enumerate(["U000", "U001"]):
        other = "U001" if unit == "U000" else "U000"
        alone = ri.PanelArrays.from_frame(p[p["unit"] != other], **KW)
        (row,) = sdid.sdid_by_unit(alone, exhaustive=True, overall=False, max_iter=800, min_controls=2)
        assert row.estimate == pytest.approx(both[k].estimate, abs=1e-10)
        assert row.std_error == pytest.approx(both[k].std_error, abs=1e-10)


# --------------------------------------------------------------------------- conditions
def _conditions_panel() -> pd.DataFrame:
    """U000 fine; U001 no outcome after its start; U002 no outcome before; U003 starts in
    the first month; U004 one pre-month; U005 starts in the last month; U006 a gap after
    its start; U007 a gap before; 20 complete controls."""
    starts = {0: 10, 1: 12, 2: 12, 3: 1, 4: 2, 5: 20, 6: 11, 7: 11}
    p = _panel(28, 20, starts, seed=6)
    drop = (
        ((p["unit"] == "U001") & (p["period"] >= 12))
        | ((p["unit"] == "U002") & (p["period"] < 12))
        | ((p["unit"] == "U006") & (p["period"] == 15))
        | ((p["unit"] == "U007") & (p["period"] == 3))
    )
    return p[~drop]


def test_every_treated_unit_gets_a_row_with_a_documented_reason() -> None:
    pa = ri.PanelArrays.from_frame(_conditions_panel(), **KW)
    rows = sdid.sdid_by_unit(pa, exhaustive=True, overall=True, max_iter=500, min_controls=2)
    got = {r.scope: r for r in rows}
    assert list(got) == [f"U{i:03d}" for i in range(8)] + ["overall"]
    expected = {
        "U001": "no_post_treatment_data",
        "U002": "no_pre_treatment_data",
        "U003": "no_pre_treatment_data",
        "U004": "too_few_pre_periods",
        "U006": "too_few_post_periods",
        "U007": "too_few_pre_periods",
    }
    for scope, reason in expected.items():
        r = got[scope]
        assert r.status == "not_estimable" and r.reason == reason and r.reason in REASONS
        assert scope in r.reason_detail
        assert np.isnan([r.estimate, r.std_error, r.ci_low, r.ci_high, r.p_value]).all()
    for scope in ("U000", "U005"):  # a start in the last month has one post period: run
        r = got[scope]
        assert r.status == "estimated" and r.reason is None
        assert np.isfinite([r.estimate, r.std_error]).all() and r.std_error > 0
    assert got["U005"].n_post == 1
    ov = got["overall"]
    assert ov.status == "estimated" and ov.reason == "cells_left_out" and "U001" in ov.reason_detail
    assert ov.n_treated_clusters == 2
    # row(): the estimate columns plus the three status keys
    row = got["U001"].row("group")
    assert (row["status"], row["reason"]) == ("not_estimable", "no_post_treatment_data")
    assert row["reason_detail"] == got["U001"].reason_detail


def test_the_estimable_units_are_computed_as_without_the_others() -> None:
    p = _conditions_panel()
    pa = ri.PanelArrays.from_frame(p, **KW)
    rows = {r.scope: r for r in sdid.sdid_by_unit(pa, exhaustive=True, overall=False, max_iter=500,
                                                  min_controls=2)}
    keep = p[~p["unit"].isin([f"U{i:03d}" for i in (1, 2, 3, 4, 5, 6, 7)])]
    (alone,) = sdid.sdid_by_unit(ri.PanelArrays.from_frame(keep, **KW), exhaustive=True, overall=False,
                                 max_iter=500, min_controls=2)
    assert rows["U000"].estimate == pytest.approx(alone.estimate, abs=1e-10)
    assert rows["U000"].std_error == pytest.approx(alone.std_error, abs=1e-10)


def test_controls_missing_or_too_few() -> None:
    p = _panel(6, 16, {0: 9, 1: 11}, seed=9)
    # one complete control left after U002..U004 lose a month: too few for any placebo
    gaps = p[~(p["unit"].isin(["U002", "U003", "U004"]) & (p["period"] == 4))]
    pa = ri.PanelArrays.from_frame(gaps, **KW)
    skip = sdid.sdid_by_unit(pa, overall=False, min_controls=1)
    assert {(r.status, r.reason) for r in skip} == {("not_estimable", "no_control_units")}
    assert "on_gaps='skip'" in skip[0].reason_detail
    drop = sdid.sdid_by_unit(pa, overall=False, min_controls=1, on_gaps="drop_controls")
    assert {(r.status, r.reason) for r in drop} == {("not_estimable", "too_few_controls")}
    # no complete control at all, and no never-treated unit at all
    none = p[~((~p["unit"].isin(["U000", "U001"])) & (p["period"] == 4))]
    rows = sdid.sdid_by_unit(ri.PanelArrays.from_frame(none, **KW), overall=True, on_gaps="drop_controls")
    assert [r.reason for r in rows] == ["no_control_units", "no_control_units", "no_estimate_for_scope"]
    only_treated = ri.PanelArrays.from_frame(p[p["unit"].isin(["U000", "U001"])], **KW)
    rows = sdid.sdid_by_unit(only_treated, overall=False)
    assert [r.reason for r in rows] == ["no_control_units", "no_control_units"]
    # two complete controls: the smallest block a placebo can use
    two = ri.PanelArrays.from_frame(p[p["unit"].isin(["U000", "U004", "U005"])], **KW)
    (row,) = sdid.sdid_by_unit(two, overall=False, min_controls=2, exhaustive=True)
    assert row.status == "estimated" and np.isfinite(row.estimate)


def test_outcome_missing_in_scattered_months_never_raises() -> None:
    """``lead_time_days``-like: NULL in months without events, in treated and controls."""
    p = _panel(30, 24, {0: 12, 1: 16, 2: 20}, seed=12)
    rng = np.random.default_rng(0)
    p = p[rng.random(len(p)) > 0.1]
    rows = sdid.sdid_by_unit(ri.PanelArrays.from_frame(p, **KW), exhaustive=True, overall=True)
    assert [r.scope for r in rows] == ["U000", "U001", "U002", "overall"]
    assert all(r.status == "not_estimable" and r.reason in REASONS for r in rows)
    frame = sdid.rows_frame(rows)
    assert frame["estimate"].isna().all() and frame["reason"].notna().all()


def test_constant_outcome_runs_without_error() -> None:
    p = _panel(14, 16, {0: 9}, seed=1)
    p["y"] = 0.0
    (row,) = sdid.sdid_by_unit(ri.PanelArrays.from_frame(p, **KW), exhaustive=True, overall=False,
                               min_controls=2)
    assert row.estimate == 0.0 and row.std_error == 0.0


def test_no_standard_error_is_a_reason_not_a_silence() -> None:
    p = _panel(14, 16, {0: 9}, seed=1)
    (row, ov) = sdid.sdid_by_unit(ri.PanelArrays.from_frame(p, **KW), replications=0, min_controls=2)
    assert row.status == "estimated" and np.isfinite(row.estimate) and np.isnan(row.std_error)
    assert row.reason == "no_variance" and ov.reason == "no_variance"
