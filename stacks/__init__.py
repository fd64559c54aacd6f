"""Stacks compose constructs; the stage deploys the same stacks to every environment."""
