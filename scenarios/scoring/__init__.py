"""Scoring of an attempt: geometry, breaches, views, dose, procedure checks, composite, report."""
