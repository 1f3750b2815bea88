"""Tests of the specification itself: every spec area must catch its broken executors."""
