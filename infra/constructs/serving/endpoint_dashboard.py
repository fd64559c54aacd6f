"""Per-endpoint CloudWatch dashboard (cdk-monitoring-constructs) and the deployer's own alarms.

cdk-monitoring-constructs 10.3 has no SageMaker endpoint monitor, so the endpoint's metrics enter as
custom metric groups of its MonitoringFacade; the deployer's state machine and functions use the
library's own monitors, whose alarms go to the ops topic. The rollback alarms are not the library's:
their names are a contract with UpdateEndpoint (rollback_alarms.py).
"""

from __future__ import annotations

import aws_cdk as cdk
import cdk_monitoring_constructs as monitoring
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

INVOCATIONS = "AWS/SageMaker"
INSTANCES = "/aws/sagemaker/Endpoints"
MINUTE = cdk.Duration.minutes(1)


class EndpointDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        mode: str,
        state_machine: sfn.IStateMachine,
        functions: list[lambda_.IFunction],
        ops_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.facade = monitoring.MonitoringFacade(
            self,
            "Monitoring",
            alarm_factory_defaults=monitoring.AlarmFactoryDefaults(
                actions_enabled=True,
                alarm_name_prefix=endpoint_name,
                action=monitoring.SnsAlarmActionStrategy(on_alarm_topic=ops_topic),
            ),
            dashboard_factory=monitoring.DefaultDashboardFactory(
                self, "Dashboards", dashboard_name_prefix=endpoint_name, create_dashboard=True,
                create_summary_dashboard=False, create_alarm_dashboard=False,
            ),
        )
        self.facade.add_large_header(f"Endpoint {endpoint_name} ({mode})")
        self.facade.monitor_custom(
            human_readable_name=f"{endpoint_name} / {variant_name}",
            alarm_friendly_name="Endpoint",
            metric_groups=_endpoint_groups(endpoint_name, variant_name, mode),
        )
        self.facade.add_large_header("Deployer")
        no_errors = {"Any": monitoring.ErrorCountThreshold(max_error_count=0)}
        self.facade.monitor_step_function(
            state_machine=state_machine,
            human_readable_name="Deployer executions",
            alarm_friendly_name="Deployer",
            add_failed_execution_count_alarm=no_errors,
            add_timed_out_execution_count_alarm=no_errors,
            add_aborted_execution_count_alarm=no_errors,
        )
        for function in functions:
            self.facade.monitor_lambda_function(lambda_function=function, add_to_summary_dashboard=False)


def _endpoint_groups(endpoint: str, variant: str, mode: str) -> list[monitoring.CustomMetricGroup]:
    dims = {"EndpointName": endpoint, "VariantName": variant}

    def metric(name: str, statistic: str, label: str, namespace: str = INVOCATIONS,
               dimensions: dict[str, str] | None = None) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=namespace, metric_name=name, dimensions_map=dimensions or dims,
                                 statistic=statistic, period=MINUTE, label=label)

    groups = [
        monitoring.CustomMetricGroup(title="Invocations", metrics=[
            metric("Invocations", "Sum", "invocations"),
            metric("InvocationsPerInstance", "Sum", "per instance"),
        ]),
        monitoring.CustomMetricGroup(title="Errors", metrics=[
            metric("Invocation4XXErrors", "Sum", "4xx"),
            metric("Invocation5XXErrors", "Sum", "5xx"),
            metric("InvocationModelErrors", "Sum", "model errors"),
        ]),
        monitoring.CustomMetricGroup(title="Model latency (µs)", metrics=[
            metric("ModelLatency", "p50", "p50"),
            metric("ModelLatency", "p99", "p99"),
            metric("OverheadLatency", "p99", "overhead p99"),
        ]),
        monitoring.CustomMetricGroup(title="Instances (%)", metrics=[
            metric("CPUUtilization", "Average", "CPU", INSTANCES),
            metric("MemoryUtilization", "Average", "memory", INSTANCES),
            metric("DiskUtilization", "Average", "disk", INSTANCES),
        ]),
        # Published only where the serving container exports Neuron metrics; the graph stays empty otherwise.
        monitoring.CustomMetricGroup(title="NeuronCore utilisation (%), where published", metrics=[
            metric("NeuronCoreUtilization", "Average", "NeuronCores", INSTANCES),
        ]),
    ]
    if mode == "async":
        endpoint_only = {"EndpointName": endpoint}
        groups.append(monitoring.CustomMetricGroup(title="Asynchronous backlog", metrics=[
            metric("ApproximateBacklogSize", "Average", "backlog", dimensions=endpoint_only),
            metric("ApproximateBacklogSizePerInstance", "Average", "per instance", dimensions=endpoint_only),
            metric("HasBacklogWithoutCapacity", "Maximum", "waiting for capacity", dimensions=endpoint_only),
            metric("ApproximateAgeOfOldestRequest", "Maximum", "oldest request (s)", dimensions=endpoint_only),
        ]))
    return groups
