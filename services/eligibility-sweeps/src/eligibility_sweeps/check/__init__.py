"""Eligibility checks: one 270 per member coverage, and its 271."""
