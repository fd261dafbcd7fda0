"""Tests of the built-in patient generator (models.phantom)."""
