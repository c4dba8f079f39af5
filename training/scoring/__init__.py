"""Bulk scoring: `sentiment-predict` (local streaming engine, or Ray Data with --engine ray)."""
