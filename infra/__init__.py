"""Reusable CDK constructs, the typed environment configuration and compliance helpers."""
