"""Sensitivity of the DiD conclusions: pre-trend tests and Rambachan & Roth (2023) bounds."""
