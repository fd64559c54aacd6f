"""The endpoint deployer: an approved model package reaches the environment's endpoint, safely.

One sub-module per decision (event validation, dedupe and queueing, naming, what to create, how to
update, scaling, teardown); `handlers/` holds one thin Lambda handler per function. Nothing here
imports the CDK; every module can be imported and tested without Lambda (docs/serving.md).
"""
