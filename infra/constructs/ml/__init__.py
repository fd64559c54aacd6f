"""ML constructs: the model registry, the pipeline's code, role, Lambda step and the pipeline itself."""
