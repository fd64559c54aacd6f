"""scripts/: the preflight of an AWS account."""
