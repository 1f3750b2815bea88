"""Fixtures shared by every test directory: pytester, for black-box tests of the plugin."""

from __future__ import annotations

pytest_plugins = ["pytester"]
