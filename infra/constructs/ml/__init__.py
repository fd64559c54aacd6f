"""ML constructs: the model registry, the pipeline (its code, role, Lambda step) and what starts it."""
