"""Serving: the endpoint deployer (Step Functions + Lambda decisions), rollback alarms, async topics,
dashboard and budget. The endpoint itself is created at run time by the deployer (docs/serving.md)."""
