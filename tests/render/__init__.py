"""Tests of the render package."""
