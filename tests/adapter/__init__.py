"""Tests of the pytest adapter (plugin.py), black-box: each runs pytest in a subprocess on a
small project, as a user would (pytester), and matches its output."""
