"""Later approvals: canary update with auto-rollback alarms, duplicates, queueing, rollback, refusals."""

from __future__ import annotations

from lambdas.deployer import steps
from lambdas.deployer.state import DeploymentState
from tests.unit.lambdas.deployer.api_model import problems
from tests.unit.lambdas.deployer.conftest import ENDPOINT, ROLLBACK_ALARMS, Cloud, approval_event
from tests.unit.lambdas.deployer.flow import deploy, receive


def _deployed(cloud: Cloud) -> tuple[str, DeploymentState]:
    arn = cloud.register_package()
    [done] = deploy(cloud, receive(cloud, approval_event(arn)))
    assert done.outcome == "deployed"
    return arn, done


def test_second_approval_updates_with_a_canary_and_the_templates_alarms(cloud: Cloud) -> None:
    _, first = _deployed(cloud)
    arn = cloud.register_package()
    [done] = deploy(cloud, receive(cloud, approval_event(arn, execution="exec-2")))
    assert done.outcome == "deployed" and done.previous_config == first.config_name
    [update] = cloud.requests("UpdateEndpoint")
    assert problems("sagemaker", "UpdateEndpoint", update) == []
    assert update == {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": done.config_name,
        "RetainAllVariantProperties": False,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    "WaitIntervalInSeconds": 600,
                },
                "TerminationWaitInSeconds": 300,
                "MaximumExecutionTimeoutInSeconds": 7200,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in ROLLBACK_ALARMS]},
        },
    }
    assert len(cloud.requests("CreateEndpoint")) == 1
    assert done.config_name != first.config_name and done.model_name != first.model_name


def test_the_same_approval_delivered_twice_deploys_once(cloud: Cloud) -> None:
    arn, _ = _deployed(cloud)
    again = receive(cloud, approval_event(arn), execution="exec-2")
    assert again.outcome == "duplicate"
    assert cloud.operations().count("CreateModel") == 1 and cloud.requests("UpdateEndpoint") == []


def test_a_duplicate_while_the_first_is_still_deploying_is_dropped(cloud: Cloud) -> None:
    arn = cloud.register_package()
    assert receive(cloud, approval_event(arn)).outcome == "deploy"
    assert receive(cloud, approval_event(arn), execution="exec-2").outcome == "duplicate"
    assert cloud.ctx.ledger.lock().get("queue") in (None, [])


def test_rejected_and_pending_packages_never_deploy(cloud: Cloud) -> None:
    for status in ("Rejected", "PendingManualApproval"):
        arn = cloud.register_package(status=status)
        state = receive(cloud, approval_event(arn, status=status))
        assert state.outcome == "not_approved"
        assert cloud.ctx.ledger.status(arn) is None
    assert cloud.ctx.ledger.lock() == {}
    assert not {"CreateModel", "CreateEndpointConfig", "CreateEndpoint"} & set(cloud.operations())


def test_an_approval_event_for_a_package_rejected_since_is_withdrawn(cloud: Cloud) -> None:
    arn = cloud.register_package()
    state = receive(cloud, approval_event(arn))
    cloud.set_approval(arn, "Rejected")  # an approver changed their mind before the deployer got to it
    [done] = deploy(cloud, state)
    assert done.outcome == "withdrawn"
    assert cloud.ctx.ledger.status(arn) == "withdrawn" and cloud.ctx.ledger.lock().get("holder") is None
    assert "CreateModel" not in cloud.operations()
    cloud.set_approval(arn, "Approved")  # approved again later: a new decision, deployed
    [again] = deploy(cloud, receive(cloud, approval_event(arn), execution="exec-2"))
    assert again.outcome == "deployed"


def test_an_approval_during_an_update_is_queued_then_deployed(cloud: Cloud) -> None:
    _deployed(cloud)
    second, third = cloud.register_package(), cloud.register_package()
    running = receive(cloud, approval_event(second), execution="exec-2")
    assert running.outcome == "deploy"
    running = steps.start(steps.prepare(running, cloud.ctx), cloud.ctx)
    assert cloud.endpoint().endpoint_status == "Updating"
    # The third approval arrives while the second is being rolled out.
    queued = receive(cloud, approval_event(third), execution="exec-3")
    assert queued.outcome == "queued" and cloud.ctx.ledger.status(third) == "queued"
    assert cloud.ctx.ledger.lock()["queue"] == [third]
    cloud.settle("InService")
    running = steps.scale(steps.check(running, cloud.ctx), cloud.ctx)
    handed = steps.finish(running, cloud.ctx)
    assert handed.outcome == "deploy" and handed.package_arn == third
    assert cloud.ctx.ledger.lock()["holder"] == third
    [done] = deploy(cloud, handed)
    assert done.package_arn == third and done.outcome == "deployed"
    assert [u["EndpointConfigName"] for u in cloud.requests("UpdateEndpoint")][-1] == done.config_name
    assert cloud.ctx.ledger.status(second) == "deployed" and cloud.ctx.ledger.status(third) == "deployed"
    assert cloud.ctx.ledger.lock().get("holder") is None


def test_auto_rollback_fails_the_deployment_restores_scaling_and_frees_the_endpoint(cloud: Cloud) -> None:
    _, first = _deployed(cloud)
    arn = cloud.register_package()

    def canary_alarm_fires(c: Cloud, state: DeploymentState) -> None:
        c.settle("InService", config=first.config_name, reason="Rolled back: alarm telecom-ml-dev-churn-model-errors")

    [done] = deploy(cloud, receive(cloud, approval_event(arn), execution="exec-2"), progress=canary_alarm_fires)
    assert done.outcome == "failed" and done.status == "rolled_back"
    assert "model-errors" in done.reason
    assert cloud.ctx.ledger.status(arn) == "failed"
    assert cloud.endpoint().endpoint_config_name == first.config_name
    assert cloud.ctx.ledger.lock().get("holder") is None
    assert cloud.operations().count("RegisterScalableTarget") == 2  # first deploy, then restored after rollback


def test_a_failed_step_releases_the_endpoint_and_records_the_error(cloud: Cloud) -> None:
    arn = cloud.register_package()
    state = receive(cloud, approval_event(arn))
    caught = state.but(error={"Error": "PackageNotDeployableError", "Cause": "no container"})
    after = steps.finish(caught, cloud.ctx)
    assert after.outcome == "failed"
    assert cloud.ctx.ledger.status(arn) == "failed" and cloud.ctx.ledger.lock().get("holder") is None


def test_instance_type_change_deregisters_scaling_before_the_update(cloud: Cloud) -> None:
    from dataclasses import replace

    _deployed(cloud)
    bigger = cloud.ctx.settings.model_copy(update={"instance_type": "ml.inf2.8xlarge"})
    cloud.ctx = replace(cloud.ctx, settings=bigger)
    arn = cloud.register_package()
    deploy(cloud, receive(cloud, approval_event(arn), execution="exec-2"))
    ops = cloud.operations()
    assert ops.index("DeregisterScalableTarget") < ops.index("UpdateEndpoint")
    assert ops[ops.index("UpdateEndpoint"):].count("RegisterScalableTarget") == 1


def test_model_only_update_keeps_scaling_registered(cloud: Cloud) -> None:
    _deployed(cloud)
    arn = cloud.register_package()
    deploy(cloud, receive(cloud, approval_event(arn), execution="exec-2"))
    assert "DeregisterScalableTarget" not in cloud.operations()


def test_a_busy_endpoint_is_waited_for_with_a_bound(cloud: Cloud) -> None:
    _deployed(cloud)
    arn = cloud.register_package()
    cloud.settle("SystemUpdating")
    state = steps.prepare(receive(cloud, approval_event(arn), execution="exec-2"), cloud.ctx)
    for _ in range(cloud.ctx.settings.max_polls):
        state = steps.start(state, cloud.ctx)
        assert state.status == "busy"
    state = steps.start(state, cloud.ctx)
    assert state.status == "timed_out"
    assert steps.finish(state, cloud.ctx).outcome == "failed"
    assert cloud.requests("UpdateEndpoint") == []


def test_an_update_that_never_settles_times_out(cloud: Cloud) -> None:
    _deployed(cloud)
    arn = cloud.register_package()
    state = steps.start(steps.prepare(receive(cloud, approval_event(arn), execution="exec-2"), cloud.ctx), cloud.ctx)
    for _ in range(cloud.ctx.settings.max_polls):
        state = steps.check(state, cloud.ctx)
    assert state.status == "timed_out"


def test_a_failed_first_creation_is_deleted_and_created_again(cloud: Cloud) -> None:
    arn = cloud.register_package()
    state = steps.prepare(receive(cloud, approval_event(arn)), cloud.ctx)
    state = steps.start(state, cloud.ctx)
    cloud.settle("Failed", reason="container did not pass the ping health check")
    assert steps.check(state, cloud.ctx).status == "failed"
    retry = steps.start(state, cloud.ctx)  # the next approval, or an operator's re-run
    assert retry.status == "busy" and "DeleteEndpoint" in cloud.operations()
    assert steps.start(retry, cloud.ctx).status == "started"
