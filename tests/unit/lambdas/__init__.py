"""Tests of the Lambda handlers in lambdas/ (runtime code, no CDK)."""
