"""mipa: return-cooperation panel warehouse and staggered DiD estimators."""

__version__ = "0.1.0"
