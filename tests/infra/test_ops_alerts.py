"""Alerts that arrive: one ops topic per environment whose key every publisher can use."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import ConfigError, load_environment
from tests.conftest import ROOT
from tests.infra.conftest import Assembly


def only(resources: dict[str, Any], prefix: str, resource_type: str) -> dict[str, Any]:
    (match,) = [r for k, r in resources.items() if k.startswith(prefix) and r["Type"] == resource_type]
    return match


def statements(resource: dict[str, Any], key: str = "PolicyDocument") -> list[dict[str, Any]]:
    return resource["Properties"][key]["Statement"]


@pytest.mark.parametrize("stage,account", [("Dev", "111111111111"), ("Prod", "333333333333")])
def test_ops_key_lets_alarms_rules_and_budgets_of_this_account_publish(
    assembly: Assembly, stage: str, account: str
) -> None:
    resources = assembly.template(stage, "Foundation")["Resources"]
    key = only(resources, "OpsKey", "AWS::KMS::Key")
    by_service = {
        s["Principal"]["Service"]: s for s in statements(key, "KeyPolicy") if "Service" in s.get("Principal", {})
    }
    assert set(by_service) == {"cloudwatch.amazonaws.com", "events.amazonaws.com", "budgets.amazonaws.com"}
    for service, arn_part in (("cloudwatch.amazonaws.com", ":alarm:*"), ("events.amazonaws.com", ":rule/*"),
                              ("budgets.amazonaws.com", ":budget/*")):
        st = by_service[service]
        assert sorted(st["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert st["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
        assert st["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":{account}{arn_part}")
    topic = only(resources, "OpsTopic", "AWS::SNS::Topic")
    (key_id,) = [k for k, r in resources.items() if k.startswith("OpsKey") and r["Type"] == "AWS::KMS::Key"]
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_topic_policy_requires_tls_and_scopes_service_publishers(assembly: Assembly) -> None:
    policy = only(assembly.template("Dev", "Foundation")["Resources"], "OpsTopicPolicy", "AWS::SNS::TopicPolicy")
    sts = statements(policy)
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in sts)
    publishers = [s for s in sts if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"] for s in publishers} == {
        "cloudwatch.amazonaws.com", "events.amazonaws.com", "budgets.amazonaws.com"}
    assert all(s["Condition"]["StringEquals"]["aws:SourceAccount"] == "111111111111" for s in publishers)


def test_state_machine_role_can_publish_through_the_key(assembly: Assembly) -> None:
    resources = assembly.template("Dev", "DataLake")["Resources"]
    policy = only(resources, "OrchestrationStateMachineRoleDefaultPolicy", "AWS::IAM::Policy")
    sts = statements(policy)
    publish = [s for s in sts if s["Action"] == "sns:Publish"]
    assert len(publish) == 1 and publish[0]["Resource"] == "arn:aws:sns:eu-west-1:111111111111:telecom-ml-dev-ops"
    kms = [s for s in sts if s["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]]
    assert len(kms) == 1 and "OpsKey" in str(kms[0]["Resource"])
    assert kms[0]["Condition"] == {"StringEquals": {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}}
    assert not [k for k, r in resources.items() if r["Type"] == "AWS::SNS::Topic"], "the lake keeps no topic of its own"


def test_failed_executions_and_glue_runs_alert_the_ops_topic(assembly: Assembly) -> None:
    template = Template.from_json(assembly.template("Dev", "DataLake"))
    ops_topic = "arn:aws:sns:eu-west-1:111111111111:telecom-ml-dev-ops"
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmDescription": Match.string_like_regexp("execution failed, timed out or was aborted"),
            "AlarmActions": [ops_topic],
            "Threshold": 1,
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"AlarmDescription": Match.string_like_regexp("could not deliver"), "AlarmActions": [ops_topic]},
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {
                    "jobName": [{"Ref": Match.string_like_regexp("ConformSubscribersJob")},
                                {"Ref": Match.string_like_regexp("BuildFeaturesJob")},
                                {"Ref": Match.string_like_regexp("ConformLabelsJob")}],
                    "state": ["FAILED", "TIMEOUT", "ERROR"],
                },
            },
            "Targets": [Match.object_like({"Arn": ops_topic})],
        },
    )


def test_subscriptions_come_from_config(assembly: Assembly) -> None:
    staging = assembly.template("Staging", "Foundation")["Resources"]
    subs = [r["Properties"] for r in staging.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "ml-platform-oncall@example.com")]
    dev = assembly.template("Dev", "Foundation")["Resources"]
    assert not [r for r in dev.values() if r["Type"] == "AWS::SNS::Subscription"]


@pytest.mark.parametrize(
    "subscriber,message",
    [
        ({"protocol": "email", "endpoint": "not-an-address"}, "ops.notifications.0: 'not-an-address' is not an email"),
        ({"protocol": "https", "endpoint": "http://hooks.example.com/x"}, "is not an https:// URL"),
        ({"protocol": "sms", "endpoint": "+15550100"}, "ops.notifications.0.protocol: 'sms' is not allowed"),
    ],
)
def test_bad_subscriptions_are_one_line_errors(tmp_path, subscriber: dict[str, str], message: str) -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())
    doc["ops"] = {"notifications": [subscriber]}
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_environment(path)
    assert message in str(err.value) and "\n" not in str(err.value)
