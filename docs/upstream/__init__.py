"""Standalone reproductions of the bugs pytest-futures' specs found in other executors.

Shipped as ``pytest_futures_plugin.upstream``, so that a KNOWN-BUG cell's link works from an
installed pytest-futures: ``python -m pytest_futures_plugin.upstream.NAME`` runs one (it exits
1 while the bug is present, 0 once it is fixed; every wait is bounded). Each module is a
script of its own, ready to file upstream: it imports nothing from pytest-futures.
"""
