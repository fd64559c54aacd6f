"""Monitoring of the churn endpoint: drift pipeline schedule, Model Monitor job definitions, retraining alarms."""
