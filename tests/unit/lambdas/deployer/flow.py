"""Drives the deployer's steps in the order the state machine runs them (infra/constructs/serving/
deployer_flow.py), with SageMaker's progress simulated between polls. The state machine itself is
checked in tests/infra/test_serving_flow.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdas.deployer import steps
from lambdas.deployer.state import DeploymentState
from tests.unit.lambdas.deployer.conftest import Cloud

Progress = Callable[[Cloud, DeploymentState], None]


def in_service(cloud: Cloud, state: DeploymentState) -> None:
    cloud.settle("InService")


def receive(cloud: Cloud, event: Any, execution: str = "exec-1") -> DeploymentState:
    return steps.receive(event, execution, cloud.ctx)


def deploy(cloud: Cloud, state: DeploymentState, progress: Progress = in_service) -> list[DeploymentState]:
    """prepare -> start (until not busy) -> check (until settled) -> scale + follow_up/recover -> finish, then
    the queue."""
    finished = []
    while state.outcome == "deploy":
        state = steps.prepare(state, cloud.ctx)
        if state.outcome == "deploy":
            state = _start_and_wait(cloud, state, progress)
            state = steps.scale(state, cloud.ctx)  # after success, or to restore scaling after a failure
            if state.status == "in_service":
                state = steps.follow_up(state, cloud.ctx)
        done = steps.finish(state, cloud.ctx)
        finished.append(state.but(outcome=_final(state)))
        state = done
    return finished


def _start_and_wait(cloud: Cloud, state: DeploymentState, progress: Progress) -> DeploymentState:
    state = steps.start(state, cloud.ctx)
    while state.status == "busy":
        progress(cloud, state)
        state = steps.start(state, cloud.ctx)
    if state.status == "in_service":
        return state
    while state.status in ("started", "in_progress"):
        progress(cloud, state)
        state = steps.check(state, cloud.ctx)
    return state


def _final(state: DeploymentState) -> Any:
    if state.outcome == "withdrawn":
        return "withdrawn"
    return "deployed" if state.status == "in_service" else "failed"
