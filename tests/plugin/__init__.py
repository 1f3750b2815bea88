"""Tests of pytest_futures_plugin: engine modules directly, the pytest adapter black-box."""
