"""Monte Carlo harness: coverage, size, width and bias of every estimator and inference
method on panels drawn from the feed generator's model (``mipa montecarlo``)."""
