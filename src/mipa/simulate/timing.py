"""The time base of the data-generating process: calendar, COVID curve and lag distributions.

The data-generating process is described in :mod:`mipa.simulate.model` (overview:
cases are generated backwards along the chain request -> decision -> laissez-passer ->
departure). This module holds what links the months:

* :class:`Calendar`: the months from ``requests_from`` to the window end, as day numbers;
* :func:`covid_curve`: the COVID factor by month (trough, ramp, new normal);
* :class:`Lag`: the days between two links (0 with ``zero_share``, else a capped
  two-part lognormal), its mean and month kernel computed on ``N_NODES``
  equal-probability normal quantile nodes;
* :func:`backshift`: expected upstream events by month, ``out[m] = sum_k kernel[k] down[m + k]``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

__all__ = ["MONTH_DAYS", "N_NODES", "Calendar", "Lag", "backshift", "covid_curve"]

MONTH_DAYS = 30.4375
N_NODES = 600
# equal-probability standard-normal quantile nodes for expectations and lag kernels
_Z = np.array([NormalDist().inv_cdf((i + 0.5) / N_NODES) for i in range(N_NODES)])


@dataclass(frozen=True)
class Calendar:
    """Months from ``requests_from`` to the window end; days are int64 since 1970-01-01."""

    months: pd.PeriodIndex
    month_start: np.ndarray  # len n + 1: start day of every month and the day after the end
    w0: int  # index of the first panel month

    @classmethod
    def from_config(cls, cfg: dict) -> Calendar:
        win = cfg["window"]
        first = pd.Period(str(win.get("requests_from", win["start"])), "M")
        start = pd.Period(str(win["start"]), "M")
        end = pd.Period(str(win["end"]), "M")
        if first > start:
            first = start
        months = pd.period_range(first, end, freq="M")
        edges = pd.period_range(first, end + 1, freq="M").to_timestamp()
        month_start = (edges.values.astype("datetime64[D]").astype(np.int64)).astype(np.int64)
        return cls(months=months, month_start=month_start, w0=int((start - first).n))

    @property
    def n(self) -> int:
        return len(self.months)

    @property
    def floor_day(self) -> int:
        return int(self.month_start[0])

    @property
    def end_day(self) -> int:  # last day of the window (inclusive)
        return int(self.month_start[-1] - 1)

    def index(self, ym: str) -> int:
        return int((pd.Period(str(ym), "M") - self.months[0]).n)

    def month_of(self, days: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_start, days, side="right") - 1

    def month_days(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniform day inside month m for each of counts[m] events."""
        idx = np.repeat(np.arange(len(counts)), counts)
        start = self.month_start[idx]
        length = self.month_start[idx + 1] - start
        return start + (rng.random(idx.size) * length).astype(np.int64)


def covid_curve(cal: Calendar, cfg: dict) -> np.ndarray:
    c = cfg["covid"]
    out = np.ones(cal.n)
    idx = np.arange(cal.n)
    s, t, nn, e = (cal.index(c[k]) for k in ("start", "trough_until", "new_normal_from", "end"))
    trough, residual, new_normal = float(c["trough"]), float(c["residual"]), float(c["new_normal"])
    out[(idx >= s) & (idx <= t)] = trough
    ramp = (idx > t) & (idx < nn)
    out[ramp] = trough + (new_normal - trough) * (idx[ramp] - t) / (nn - t)
    out[(idx >= nn) & (idx <= e)] = new_normal * residual
    out[idx > e] = new_normal
    return out


# --------------------------------------------------------------------------- lags
@dataclass(frozen=True)
class Lag:
    """Days between two links: 0 with ``zero_share``; else min(cap, scale * lognormal),
    the lognormal being a mixture of a main part and, with ``share2``, a slow part
    (old cases decided late)."""

    mu: float
    sigma: float
    cap: float
    scale: float = 1.0
    zero_share: float = 0.0
    share2: float = 0.0
    mu2: float = 0.0
    sigma2: float = 1.0

    @classmethod
    def from_median(cls, median: float, sigma: float, cap: float, **kw) -> Lag:
        return cls(mu=float(np.log(median)), sigma=float(sigma), cap=float(cap), **kw)

    @classmethod
    def from_mean(cls, mean: float, sigma: float, cap: float, **kw) -> Lag:
        return cls(mu=float(np.log(mean) - sigma**2 / 2), sigma=float(sigma), cap=float(cap), **kw)

    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        main = np.minimum(self.cap, self.scale * np.exp(self.mu + self.sigma * _Z))
        slow = np.minimum(self.cap, self.scale * np.exp(self.mu2 + self.sigma2 * _Z))
        rest = 1.0 - self.zero_share
        values = np.concatenate([main, slow, [0.0]])
        weights = np.concatenate(
            [
                np.full(N_NODES, rest * (1 - self.share2) / N_NODES),
                np.full(N_NODES, rest * self.share2 / N_NODES),
                [self.zero_share],
            ]
        )
        keep = weights > 0
        return values[keep], weights[keep]

    def mean(self) -> float:
        v, w = self.nodes()
        return float(np.dot(v, w))

    def rescaled_to_mean(self, target: float) -> tuple[Lag, float]:
        """Same shape with the non-zero part rescaled so the mean is ``target``.

        Returns the new lag and the mean actually reached (>= 0, <= the cap's limit)."""
        if target <= 0 or self.zero_share >= 1:
            return replace(self, scale=0.0), 0.0
        lo, hi = 0.0, 1.0
        while replace(self, scale=hi).mean() < target and hi < 1e6:
            hi *= 2
        for _ in range(80):
            mid = (lo + hi) / 2
            if replace(self, scale=mid).mean() < target:
                lo = mid
            else:
                hi = mid
        lag = replace(self, scale=(lo + hi) / 2)
        return lag, lag.mean()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        z = rng.standard_normal(size)
        u = rng.random(size)
        slow = (u >= self.zero_share) & (u < self.zero_share + (1 - self.zero_share) * self.share2)
        log_days = np.where(slow, self.mu2 + self.sigma2 * z, self.mu + self.sigma * z)
        days = np.rint(np.minimum(self.cap, self.scale * np.exp(log_days)))
        days[u < self.zero_share] = 0
        return days.astype(np.int64)

    def kernel(self) -> np.ndarray:
        """P(upstream month = anchor month - k), anchor uniform within its month."""
        v, w = self.nodes()
        ell = v / MONTH_DAYS
        n = np.floor(ell).astype(np.int64)
        f = ell - n
        size = int(n.max()) + 2
        k = np.bincount(n, weights=w * (1 - f), minlength=size)
        k += np.bincount(n + 1, weights=w * f, minlength=size)
        return k


def backshift(down: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """out[m] = sum_k kernel[k] * down[m + k]: expected upstream events by month."""
    n = len(down)
    return np.convolve(down[::-1], kernel)[:n][::-1]
