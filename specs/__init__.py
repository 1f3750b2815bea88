"""The executable specification: Hypothesis state machines, one module per contract area.

Planned; run them with ``pytest specs --executor=...`` once they exist.
"""
