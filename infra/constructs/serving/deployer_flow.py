"""The deployer's state machine: orchestration and waiting; every decision is a Lambda (lambdas/deployer).

receive ─ not deploy ─> NothingToDeploy
   └ deploy ─> prepare ─ withdrawn ─────────────────────────────────────────────> finish
                  └─> start ─ busy ─> wait ─> start (bounded by max polls)
                        └ started ─> wait ─> check ─ in_progress ─> wait ─> check (bounded)
                        └ in_service ───────────┴ in_service ─> scale ─> follow_up ─(notices: notify)─> finish
                                                └ rolled_back/failed/timed_out ─> recover ─> notify ─> finish
finish ─ deploy (next queued approval) ─> prepare ; failed ─> DeploymentFailed ; else Done
Any task error: notify the ops topic, then finish (records the failure and frees the endpoint).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

POLL = cdk.Duration.seconds(60)


class DeployerFlow(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, functions: dict[str, lambda_.IFunction], ops_topic: sns.ITopic,
        endpoint_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._functions = functions
        self._ops_topic = ops_topic
        self._endpoint_name = endpoint_name
        self.definition = self._build()

    def _task(self, name: str, function: str, payload: sfn.TaskInput | None = None) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self, name, lambda_function=self._functions[function], payload=payload, payload_response_only=True,
            retry_on_service_exceptions=True, task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(5)),
        )
        task.add_retry(errors=["LedgerContentionError"], interval=cdk.Duration.seconds(2), max_attempts=5)
        return task

    def _notify(self, name: str, subject: str) -> tasks.SnsPublish:
        return tasks.SnsPublish(
            self, name, topic=self._ops_topic, subject=subject,
            message=sfn.TaskInput.from_object({
                "endpoint": self._endpoint_name,
                "execution": sfn.JsonPath.execution_id,
                "deployment": sfn.JsonPath.json_to_string(sfn.JsonPath.entire_payload),
            }),
            result_path=sfn.JsonPath.DISCARD,
        )

    def _build(self) -> sfn.IChainable:
        receive = self._task("Receive", "receive", sfn.TaskInput.from_object(
            {"event": sfn.JsonPath.entire_payload, "execution": sfn.JsonPath.execution_id}))
        prepare, start = self._task("Prepare", "prepare"), self._task("Start", "start")
        check, scale = self._task("Check", "check"), self._task("RegisterScaling", "scale")
        recover, finish = self._task("RestoreScaling", "scale"), self._task("Finish", "finish")
        follow_up = self._task("FollowUp", "follow_up")
        notify_notices = self._notify("NotifyDeployedWithNotices", f"{self._endpoint_name}: deployed, with notices")
        notify_failure = self._notify("NotifyFailure", f"{self._endpoint_name}: model deployment failed")
        notify_declined = self._notify("NotifyDeclinedEvent", f"{self._endpoint_name}: approval event refused")
        stuck = self._notify("NotifyLedgerFailure", f"{self._endpoint_name}: deployer could not record an outcome")
        wait_start = sfn.Wait(self, "WaitToStart", time=sfn.WaitTime.duration(POLL))
        wait_check = sfn.Wait(self, "WaitForEndpoint", time=sfn.WaitTime.duration(POLL))
        failed = sfn.Fail(self, "DeploymentFailed", error="DeploymentFailed", cause="See the ops topic notice")
        refused = sfn.Fail(self, "EventRefused", error="EventRefused", cause="The approval event was refused")

        receive.add_catch(notify_declined.next(refused), errors=["States.ALL"], result_path="$.error")
        for task in (prepare, start, check, scale, follow_up, recover):
            task.add_catch(notify_failure, errors=["States.ALL"], result_path="$.error")
        finish.add_catch(stuck.next(sfn.Fail(self, "LedgerFailed", error="LedgerFailed")), errors=["States.ALL"],
                         result_path="$.error")
        notify_failure.next(finish)
        recover.next(notify_failure)
        scale.next(follow_up)
        follow_up.next(sfn.Choice(self, "Notices?")
                       .when(sfn.Condition.is_present("$.notices[0]"), notify_notices.next(finish))
                       .otherwise(finish))
        wait_start.next(start)
        wait_check.next(check)

        def status(value: str) -> sfn.Condition:
            return sfn.Condition.string_equals("$.status", value)

        def outcome(value: str) -> sfn.Condition:
            return sfn.Condition.string_equals("$.outcome", value)

        finish.next(sfn.Choice(self, "NextQueued?")
                    .when(outcome("deploy"), prepare)
                    .when(outcome("failed"), failed)
                    .otherwise(sfn.Succeed(self, "Done")))
        check.next(sfn.Choice(self, "Settled?")
                   .when(status("in_progress"), wait_check)
                   .when(status("in_service"), scale)
                   .otherwise(recover))
        start.next(sfn.Choice(self, "Started?")
                   .when(status("busy"), wait_start)
                   .when(status("started"), wait_check)
                   .when(status("in_service"), scale)
                   .otherwise(recover))
        prepare.next(sfn.Choice(self, "StillApproved?").when(outcome("withdrawn"), finish).otherwise(start))
        return receive.next(
            sfn.Choice(self, "Deploy?").when(outcome("deploy"), prepare).otherwise(sfn.Succeed(self, "NothingToDeploy"))
        )
