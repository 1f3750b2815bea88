"""Tests of the engine modules of pytest_futures_plugin (everything but plugin.py), in-process
and fast: one file per engine module, plus the layering test."""
