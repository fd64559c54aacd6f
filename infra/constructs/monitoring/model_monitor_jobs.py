"""SageMaker Model Monitor job definitions (engine `model_monitor`): data quality and, with ground truth, model quality.

Every property of a job definition forces its replacement, so each is named after a hash of its resolved
properties: a change deploys a new definition beside the old one (no name clash), never edits one in place.
The MonitoringSchedules that run them must name the endpoint, which exists only at run time: the endpoint
deployer creates, updates and deletes them from `schedule_specs` after each deployment (docs/monitoring.md).
Both definitions read the stable current-baseline prefix the deployer refreshes on every deployment. The
data-quality definition runs the record preprocessor (RecordPreprocessorSourceUri, record_preprocessor.py),
which flattens the endpoint's `{"instances": [...]}`/list/CSV requests into the schema's raw features.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

# Registry account of the Model Monitor analyzer image (repository sagemaker-model-monitor-analyzer) per
# region, from the SageMaker Python SDK 3.27's bundled image_uri_config/model-monitor.json (what
# image_uris.retrieve("model-monitor", region) reads); a test compares this table with that file.
ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
ANALYZER_ACCOUNTS = {
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-2": "159807026194",
    "ca-central-1": "536280801234",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "eu-central-1": "048819808253",
    "eu-north-1": "895015795356",
    "eu-south-2": "437450045455",
    "ap-south-1": "126357580389",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "sa-east-1": "539772159869",
}
PROCESSING = "/opt/ml/processing"
NAME_DIGEST_CHARS = 10
# The endpoint's response (serving/inference.py): {"predictions": [{"probability": p, "label": ...}], ...}.
PROBABILITY_ATTRIBUTE = "predictions[0].probability"
PROBABILITY_THRESHOLD = 0.5


def analyzer_image(region: str) -> str:
    if region not in ANALYZER_ACCOUNTS:
        raise ValueError(f"no Model Monitor analyzer image is known for region {region}")
    return f"{ANALYZER_ACCOUNTS[region]}.dkr.ecr.{region}.amazonaws.com/{ANALYZER_REPOSITORY}"


def hashed_name(stack: cdk.Stack, prefix: str, properties: dict[str, Any]) -> str:
    """`prefix`-<digest of the properties as CloudFormation will see them> (intrinsics included)."""
    text = json.dumps(stack.resolve(properties), sort_keys=True, separators=(",", ":"))
    name = f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:NAME_DIGEST_CHARS]}"
    if len(name) > 63:
        raise ValueError(f"job definition name '{name}' is longer than the 63 characters SageMaker takes")
    return name


def _name_of(definition: sagemaker.CfnDataQualityJobDefinition | sagemaker.CfnModelQualityJobDefinition) -> str:
    name = definition.job_definition_name
    assert name is not None  # always set from hashed_name
    return name


@dataclass(frozen=True)
class MonitoringJobSettings:
    """What both job definitions share."""

    env_name: str
    endpoint_name: str
    region: str
    role_arn: str
    kms_key_arn: str
    instance_type: str
    volume_gb: int
    max_runtime_seconds: int
    baseline_uri: str  # s3://.../current-baseline/ (statistics.json, constraints.json)
    reports_uri: str  # s3://.../reports/
    window_hours: int
    record_preprocessor_uri: str  # s3:// object of the rendered training_jobs/monitor_preprocessor.py
    security_group_ids: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()


class ModelMonitorJobs(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MonitoringJobSettings,
        ground_truth_uri: str | None,
        data_quality_schedule: str,
        model_quality_schedule: str,
        schedule_expression: str,
    ) -> None:
        """`ground_truth_uri` None: no model-quality definition (the environment has no ground truth yet)."""
        super().__init__(scope, construct_id)
        self.settings = settings
        self.image = analyzer_image(settings.region)
        stack = cdk.Stack.of(self)
        self.data_quality = self._data_quality(stack)
        self.data_quality_name = _name_of(self.data_quality)
        self.model_quality: sagemaker.CfnModelQualityJobDefinition | None = None
        specs = [
            {
                "name": data_quality_schedule,
                "job_definition_name": self.data_quality_name,
                "type": "DataQuality",
                "schedule_expression": schedule_expression,
            }
        ]
        if ground_truth_uri is not None:
            self.model_quality = self._model_quality(stack, ground_truth_uri)
            specs.append(
                {
                    "name": model_quality_schedule,
                    "job_definition_name": _name_of(self.model_quality),
                    "type": "ModelQuality",
                    "schedule_expression": schedule_expression,
                }
            )
        # The endpoint deployer creates/updates/deletes one MonitoringSchedule per spec after each deployment.
        self.schedule_specs: list[dict[str, str]] = specs

    # ------------------------------------------------------------------------------------ shared parts
    def _resources(self, cls: Any) -> Any:
        s = self.settings
        return cls.MonitoringResourcesProperty(
            cluster_config=cls.ClusterConfigProperty(
                instance_count=1,
                instance_type=s.instance_type,
                volume_size_in_gb=s.volume_gb,
                volume_kms_key_id=s.kms_key_arn,
            )
        )

    def _network(self, cls: Any) -> Any:
        # Not isolated: the analyzer publishes CloudWatch metrics itself (through the monitoring interface
        # endpoint in 'vpc' mode). Inter-container traffic is encrypted.
        s = self.settings
        vpc = (
            cls.VpcConfigProperty(security_group_ids=list(s.security_group_ids), subnets=list(s.subnets))
            if s.subnets
            else None
        )
        return cls.NetworkConfigProperty(
            enable_inter_container_traffic_encryption=True, enable_network_isolation=False, vpc_config=vpc
        )

    def _output(self, cls: Any, kind: str) -> Any:
        s = self.settings
        return cls.MonitoringOutputConfigProperty(
            kms_key_id=s.kms_key_arn,
            monitoring_outputs=[
                cls.MonitoringOutputProperty(
                    s3_output=cls.S3OutputProperty(
                        s3_uri=f"{s.reports_uri}{kind}", local_path=f"{PROCESSING}/output", s3_upload_mode="EndOfJob"
                    )
                )
            ],
        )

    def _stopping(self, cls: Any) -> Any:
        return cls.StoppingConditionProperty(max_runtime_in_seconds=self.settings.max_runtime_seconds)

    def _endpoint_input(self, cls: Any, **extra: Any) -> Any:
        """The endpoint's captured data as the job's input (`extra`: what only model quality needs)."""
        return cls.EndpointInputProperty(
            endpoint_name=self.settings.endpoint_name,
            local_path=f"{PROCESSING}/input/endpoint",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
            **extra,
        )

    def _job(self, cls: Any) -> dict[str, Any]:
        """The properties both job definitions share: compute, network, role and time limit."""
        return {
            "job_resources": self._resources(cls),
            "network_config": self._network(cls),
            "role_arn": self.settings.role_arn,
            "stopping_condition": self._stopping(cls),
        }

    # ---------------------------------------------------------------------------------- definitions
    def _data_quality(self, stack: cdk.Stack) -> sagemaker.CfnDataQualityJobDefinition:
        s, cls = self.settings, sagemaker.CfnDataQualityJobDefinition
        properties: dict[str, Any] = {
            "data_quality_app_specification": cls.DataQualityAppSpecificationProperty(
                image_uri=self.image,
                environment={"publish_cloudwatch_metrics": "Enabled"},
                record_preprocessor_source_uri=s.record_preprocessor_uri,
            ),
            "data_quality_baseline_config": cls.DataQualityBaselineConfigProperty(
                constraints_resource=cls.ConstraintsResourceProperty(s3_uri=f"{s.baseline_uri}constraints.json"),
                statistics_resource=cls.StatisticsResourceProperty(s3_uri=f"{s.baseline_uri}statistics.json"),
            ),
            "data_quality_job_input": cls.DataQualityJobInputProperty(endpoint_input=self._endpoint_input(cls)),
            "data_quality_job_output_config": self._output(cls, "data-quality"),
            **self._job(cls),
        }
        name = hashed_name(stack, f"telecom-ml-{s.env_name}-churn-dq", properties)
        return cls(self, "DataQuality", job_definition_name=name, **properties)

    def _model_quality(self, stack: cdk.Stack, ground_truth_uri: str) -> sagemaker.CfnModelQualityJobDefinition:
        s, cls = self.settings, sagemaker.CfnModelQualityJobDefinition
        properties: dict[str, Any] = {
            "model_quality_app_specification": cls.ModelQualityAppSpecificationProperty(
                image_uri=self.image,
                problem_type="BinaryClassification",
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            "model_quality_job_input": cls.ModelQualityJobInputProperty(
                endpoint_input=self._endpoint_input(
                    cls,
                    probability_attribute=PROBABILITY_ATTRIBUTE,
                    probability_threshold_attribute=PROBABILITY_THRESHOLD,
                    start_time_offset=f"-PT{s.window_hours}H",
                    end_time_offset="-PT0H",
                ),
                ground_truth_s3_input=cls.MonitoringGroundTruthS3InputProperty(s3_uri=ground_truth_uri),
            ),
            "model_quality_job_output_config": self._output(cls, "model-quality"),
            **self._job(cls),
        }
        name = hashed_name(stack, f"telecom-ml-{s.env_name}-churn-mq", properties)
        return cls(self, "ModelQuality", job_definition_name=name, **properties)
