"""Reconcile a Midaz ledger across PostgreSQL, MongoDB and Redis."""
