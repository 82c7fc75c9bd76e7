"""Arca's middleware for the Swift proxy pipeline (see middleware.py)."""
