"""Tests of the records database, ledger, CUSUM and reports."""
