"""Tests of the haptics package."""
