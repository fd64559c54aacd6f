"""ML constructs: the training pipeline and what starts it."""
