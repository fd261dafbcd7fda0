"""Attempt records for instructors and credentialing: the database, the ledger, CUSUM and reports."""
