"""The executable specification: Hypothesis state machines, one module per contract area.

Run it with ``pytest specs --executor=...`` in this repository, or from any project with
``pytest --futures-specs --executor=...`` (it ships as ``pytest_futures_plugin.specs``).
"""
