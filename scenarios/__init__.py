"""Procedure definitions, targets, scoring, the headless session and recording. No Qt."""
