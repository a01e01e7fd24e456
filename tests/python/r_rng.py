"""R's random numbers, for tests that reproduce R HonestDiD's digits (not production code).

:func:`r_rnorm` reproduces ``set.seed(seed); rnorm(n)`` of R (default kinds:
Mersenne-Twister, Inversion) bit for bit; :func:`r_rmvnorm` ``mvtnorm::rmvnorm``
(``method = "eigen"``) through the production transform with R's normals injected.
:func:`r_normals` is what a test passes as ``normals=`` to
:mod:`mipa.sensitivity.honest_did` to get HonestDiD's draws: every simulation there
restarts the stream, as HonestDiD calls ``set.seed(seed)`` before each.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import ndtri

from mipa.sensitivity import honest_did as hd

__all__ = ["r_normals", "r_rmvnorm", "r_rnorm", "r_uniforms"]


def r_uniforms(n: int, seed: int) -> np.ndarray:
    """``n`` draws of R's ``unif_rand()`` after ``set.seed(seed)`` (Mersenne-Twister).

    R's ``RNG_Init``: ``s <- seed``; 50 times ``s <- 69069 s + 1 (mod 2^32)``; then 625
    more steps fill the seed vector whose first entry is the position (reset to 624)
    and the rest the MT19937 state; outputs are ``genrand_int32 * 2^-32``.
    """
    s = int(seed) & 0xFFFFFFFF
    for _ in range(50):
        s = (69069 * s + 1) & 0xFFFFFFFF
    key = np.empty(625, dtype=np.uint64)
    for j in range(625):
        s = (69069 * s + 1) & 0xFFFFFFFF
        key[j] = s
    bitgen = np.random.MT19937()
    bitgen.state = {
        "bit_generator": "MT19937",
        "state": {"key": key[1:].astype(np.uint32), "pos": 624},
    }
    u = bitgen.random_raw(n).astype(np.float64) * 2.3283064365386963e-10
    # R's fixup(): keep draws inside (0, 1)
    u[u <= 0.0] = 0.5 * 2.328306437080797e-10
    u[u >= 1.0] = 1.0 - 0.5 * 2.328306437080797e-10
    return u


def r_rnorm(n: int, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); rnorm(n)`` of R (default kinds: Mersenne-Twister, Inversion).

    Each normal uses two uniforms: ``u = floor(2^27 u1) + u2``, ``z = Phi^-1(u / 2^27)``
    (R ``norm_rand``, ``INVERSION``).
    """
    raw = r_uniforms(2 * n, seed)
    big = 134217728.0
    return ndtri((np.floor(big * raw[0::2]) + raw[1::2]) / big)


@functools.lru_cache(maxsize=4)
def r_normals(seed: int = 0) -> np.ndarray:
    """R's ``set.seed(seed); rnorm(10^6)`` (cached, read-only): enough for both of
    HonestDiD's simulations, whose draws are prefixes of this stream."""
    z = r_rnorm(hd.FOLDED_SIMS, seed)
    z.flags.writeable = False
    return z


def r_rmvnorm(n: int, sigma: np.ndarray, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); mvtnorm::rmvnorm(n, sigma = sigma)`` (``method = "eigen"``)."""
    p = np.asarray(sigma).shape[0]
    return hd.mvnormal_draws(n, sigma, hd.normal_draws(normals=r_rnorm(n * p, seed)))
