"""Inference for few treated units: wild cluster bootstrap, randomization inference, SDID.

* :mod:`mipa.inference.wild_bootstrap`: restricted wild cluster bootstrap (WCR) for a
  linear combination of fixed-effects coefficients (ETWFE aggregates, the TWFE
  coefficient), Webb weights, interval by test inversion.
* :mod:`mipa.inference.randomization`: Conley & Taber (2011) / Ferman & Pinto (2019)
  placebo inference for the overall effect and for one treated unit.
* :mod:`mipa.inference.sdid`: synthetic difference-in-differences (Arkhangelsky et al.
  2021) per treated unit, with placebo standard errors.
"""
