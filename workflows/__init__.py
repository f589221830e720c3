"""Deterministic orchestration: the order process, its waits and its decisions."""
