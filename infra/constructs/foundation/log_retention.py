"""Log groups as config states their retention: the CDK enum member for a number of days, and the encrypted
log group every function of the project writes to."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

_BY_DAYS = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    try:
        return _BY_DAYS[days]
    except KeyError:
        raise ValueError(f"log retention {days} days is not one of {sorted(_BY_DAYS)}") from None


def encrypted_log_group(scope: Construct, key: kms.IKey, retention_days: int, removal: cdk.RemovalPolicy,
                        construct_id: str = "Logs") -> logs.LogGroup:
    """A log group in `scope` encrypted with `key`, kept `retention_days`."""
    return logs.LogGroup(scope, construct_id, encryption_key=key, retention=retention(retention_days),
                         removal_policy=removal)
