"""Delivery: attempts, the server-owned clock, autosave, finalization and scoring."""
