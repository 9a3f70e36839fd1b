"""One package per pipeline (ml.registry lists them)."""
