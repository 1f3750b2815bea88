"""The tutorials pytest-futures grew from, rewritten as tests that run on every backend."""
