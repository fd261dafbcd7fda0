"""Tests of the real-anatomy bone template (models/template)."""
