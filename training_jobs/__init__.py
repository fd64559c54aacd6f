"""Job scripts that run in Glue/SageMaker containers and, unchanged, in the local twin.

Nothing in this package imports the CDK.
"""
