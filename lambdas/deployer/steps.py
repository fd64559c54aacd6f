"""One function per state of the deployer's state machine: state document in, state document out.

receive -> prepare -> start (until not busy) -> check (until settled) -> scale -> follow_up | recover -> finish
`finish` releases the endpoint or hands it to the next queued approval, which loops back to prepare.
"""

from __future__ import annotations

from . import baseline, batch_scoring, endpoint, scaling, schedules
from .context import StepContext, decision
from .errors import EndpointStateError, PackageNotDeployableError
from .events import parse_approval_event
from .package import APPROVED, describe_package, serving_spec
from .promotion import PROMOTED_FROM
from .state import DeploymentState


def receive(event: object, execution: str, ctx: StepContext) -> DeploymentState:
    """Validate the approval, then: not approved -> decline; seen before -> duplicate; else deploy or queue."""
    approval = parse_approval_event(event, ctx.settings).detail
    arn, version = approval.ModelPackageArn, approval.ModelPackageVersion
    state = DeploymentState(package_arn=arn, version=version, execution=execution, outcome="deploy")
    if approval.ModelApprovalStatus != APPROVED:
        decision("not_approved", arn, status=approval.ModelApprovalStatus)
        return state.but(outcome="not_approved", reason=f"status {approval.ModelApprovalStatus}")
    if not ctx.ledger.claim(arn, version, execution, ctx.now()):
        decision("duplicate", arn, previous_status=ctx.ledger.status(arn))
        return state.but(outcome="duplicate", reason="this approval was received before")
    held = ctx.ledger.acquire_or_enqueue(arn, execution, ctx.now(), ctx.settings.lease_seconds)
    if held == "queued":
        ctx.ledger.set_status(arn, "queued", ctx.now(), "another deployment holds the endpoint")
        decision("queued", arn, holder=ctx.ledger.lock().get("holder"))
        return state.but(outcome="queued", reason="deployed after the current deployment")
    decision("deploy", arn)
    return state


def prepare(state: DeploymentState, ctx: StepContext) -> DeploymentState:
    """Re-check approval now, create model and endpoint configuration, deregister scaling if the type changes."""
    settings, arn = ctx.settings, state.package_arn
    state = state.but(polls=0, status=None, error=None, reason="", next_package_arn=None)
    description = describe_package(ctx.sagemaker, arn)
    if description.get("ModelApprovalStatus") != APPROVED:
        ctx.ledger.set_status(arn, "withdrawn", ctx.now(), str(description.get("ModelApprovalStatus")))
        decision("withdrawn", arn, status=description.get("ModelApprovalStatus"))
        return state.but(outcome="withdrawn", reason=f"no longer approved ({description.get('ModelApprovalStatus')})")
    if description.get("ModelPackageGroupName") != settings.model_package_group_name:
        raise PackageNotDeployableError(arn, f"is not in group {settings.model_package_group_name}")
    if settings.require_promoted and not (description.get("CustomerMetadataProperties") or {}).get(PROMOTED_FROM):
        raise PackageNotDeployableError(arn, "was not promoted: this environment deploys only packages promoted "
                                             "from its source environment (docs/serving.md, Promotion)")
    spec = serving_spec(description, settings.instance_type)
    model_name = endpoint.ensure_model(ctx.sagemaker, ctx.ledger, settings, spec)
    config_name = endpoint.ensure_endpoint_config(ctx.sagemaker, ctx.ledger, settings, spec, model_name)
    ctx.ledger.set_status(arn, "deploying", ctx.now())
    current = endpoint.describe_endpoint(ctx.sagemaker, settings.endpoint_name)
    previous = current["EndpointConfigName"] if current else None
    changed = False
    if current is not None and previous != config_name:
        old_type = endpoint.current_instance_type(ctx.sagemaker, current, settings.variant_name)
        changed = old_type is not None and old_type != settings.instance_type
        if changed:
            scaling.deregister(ctx.autoscaling, ctx.cloudwatch, settings)
            decision("deregistered_scaling", arn, old_instance_type=old_type, new_instance_type=settings.instance_type)
    decision("prepared", arn, model=model_name, endpoint_config=config_name, previous_config=previous,
             specification=spec.specification, images=[c["Image"] for c in spec.containers])
    return state.but(model_name=model_name, config_name=config_name, previous_config=previous,
                     instance_type_changed=changed, status="prepared")


def start(state: DeploymentState, ctx: StepContext) -> DeploymentState:
    """Create or update the endpoint once its state allows (busy: the state machine waits and retries)."""
    if state.config_name is None:
        raise EndpointStateError("start needs the endpoint configuration prepared first")
    polls = state.polls + 1
    if polls > ctx.settings.max_polls:
        decision("timed_out", state.package_arn, waited_for="the endpoint to accept an update")
        return state.but(status="timed_out", polls=polls, reason="the endpoint stayed busy")
    spec = serving_spec(describe_package(ctx.sagemaker, state.package_arn), ctx.settings.instance_type)
    action = "create" if state.previous_config is None else "update"
    result = endpoint.start(ctx.sagemaker, ctx.settings, spec, state.config_name)
    decision(f"start_{result}", state.package_arn, action=action, endpoint_config=state.config_name)
    if result == "started":
        return state.but(status="started", polls=0)
    return state.but(status=result, polls=polls)


def check(state: DeploymentState, ctx: StepContext) -> DeploymentState:
    polls = state.polls + 1
    status, reason = endpoint.check(ctx.sagemaker, ctx.settings, state.config_name or "")
    if status == "in_progress" and polls >= ctx.settings.max_polls:
        status, reason = "timed_out", f"not settled after {polls} polls"
    if status != "in_progress":
        decision(status, state.package_arn, endpoint_config=state.config_name, reason=reason)
    return state.but(status=status, polls=polls, reason=reason)


def scale(state: DeploymentState, ctx: StepContext) -> DeploymentState:
    """Register autoscaling for whatever configuration is live (the new one, or the old after a rollback)."""
    current = endpoint.describe_endpoint(ctx.sagemaker, ctx.settings.endpoint_name)
    if current is None or current["EndpointStatus"] != "InService":
        decision("scaling_not_registered", state.package_arn, reason="endpoint not in service")
        return state
    policies = scaling.register(ctx.autoscaling, ctx.cloudwatch, ctx.settings)
    decision("registered_scaling", state.package_arn, policies=policies, min=ctx.settings.scaling.min_instances,
             max=ctx.settings.scaling.max_instances)
    return state


def follow_up(state: DeploymentState, ctx: StepContext) -> DeploymentState:
    """After the new model is in service, before the deployment is reported done: monitoring follows it.

    The current baseline becomes the package's (or is emptied, with a notice, when it has none), the Model
    Monitor schedules are created or moved to the stack's job definitions, and batch scoring starts."""
    settings, arn = ctx.settings, state.package_arn
    description = describe_package(ctx.sagemaker, arn)
    refreshed = baseline.refresh(ctx.s3, description, settings.baseline)
    notices = [refreshed.notice] if refreshed.notice else []
    decision("baseline_refreshed" if refreshed.copied else "baseline_missing", arn, sources=refreshed.copied,
             current_baseline=f"s3://{settings.baseline.bucket}/{settings.baseline.current_prefix}")
    if settings.monitoring_schedules:
        decision("monitoring_schedules", arn, schedules=schedules.ensure(ctx.sagemaker, settings))
    started = None
    if settings.batch_scoring_pipeline_name:
        started = batch_scoring.start(ctx.sagemaker, settings.batch_scoring_pipeline_name, state.execution, arn)
        decision("batch_scoring_started", arn, pipeline=settings.batch_scoring_pipeline_name, execution_arn=started)
    return state.but(notices=tuple(notices), batch_scoring_execution=started)


def finish(state: DeploymentState, ctx: StepContext) -> DeploymentState:
    """Record the outcome, then release the endpoint or hand it to the next queued approval."""
    deployed = state.status == "in_service" and state.error is None
    if state.outcome == "withdrawn":
        outcome = "withdrawn"
    else:
        outcome = "deployed" if deployed else "failed"
        reason = state.reason or _error_text(state)
        ctx.ledger.set_status(state.package_arn, outcome, ctx.now(), reason)
        decision(outcome, state.package_arn, reason=reason)
    following = ctx.ledger.release_or_hand_over(
        state.package_arn, state.execution, ctx.now(), ctx.settings.lease_seconds
    )
    if following is None:
        decision("released", state.package_arn)
        return state.but(outcome=outcome, next_package_arn=None)
    decision("hand_over", state.package_arn, next_model_package_arn=following)
    tail = following.rsplit("/", 1)[-1]
    return DeploymentState(
        package_arn=following,
        version=int(tail) if tail.isdigit() else 1,
        execution=state.execution,
        outcome="deploy",
        reason=f"queued behind {state.package_arn} ({outcome})",
    )


def _error_text(state: DeploymentState) -> str:
    if state.error:
        return f"{state.error.get('Error', 'error')}: {str(state.error.get('Cause', ''))[:500]}"
    return f"endpoint {state.status}"
