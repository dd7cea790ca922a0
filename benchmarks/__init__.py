"""Ghaf's benchmarks: ``make bench`` prints one JSON line per figure (not tests)."""
