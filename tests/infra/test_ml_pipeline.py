"""The SageMaker pipeline as synthesized: a definition SageMaker accepts, scoped roles, network modes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from infra.config import load_all
from infra.pipeline import churn, render
from tests.conftest import ROOT
from tests.infra.conftest import Assembly
from tests.infra.pipeline_checks import (
    OPERATIONS,
    Execution,
    all_steps,
    concrete,
    definition_of,
    gets,
    pipeline_resource,
    problems,
    service_model,
    sub_of,
    values_for,
)

CONFIGS = {c.stage_name: c for c in load_all(ROOT / "config")}
STAGES = sorted(CONFIGS)
GOLDEN = Path(__file__).with_name("pipeline_golden")


def template(assembly: Assembly, stage: str) -> dict[str, Any]:
    return assembly.template(stage, "MlPipeline")


def definition(assembly: Assembly, stage: str) -> dict[str, Any]:
    config = CONFIGS[stage]
    return definition_of(template(assembly, stage), config.region, config.account)


def steps_by_name(assembly: Assembly, stage: str) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in all_steps(definition(assembly, stage)["Steps"])}


# ------------------------------------------------------------------------------ the definition
@pytest.mark.parametrize("stage", STAGES)
def test_every_job_and_register_step_is_a_valid_api_request(assembly: Assembly, stage: str) -> None:
    document = definition(assembly, stage)
    checked = []
    for step in all_steps(document["Steps"]):
        if step["Type"] in OPERATIONS:
            found = problems(OPERATIONS[step["Type"]], concrete(document, step))
            assert not found, f"{stage} {step['Name']}: {found}"
            checked.append(step["Type"])
    assert sorted(checked) == sorted(["Processing"] * 7 + ["Training"] * 3 + ["RegisterModel"] * 2)


def test_the_validator_catches_what_botocore_alone_does_not(assembly: Assembly) -> None:
    document = definition(assembly, "Dev")
    preprocess = concrete(document, steps_by_name(assembly, "Dev")["Preprocess"])
    preprocess["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.inf2.xlarge"  # no Neuron in Processing
    preprocess["RoleArn"] = "telecom-ml-dev-sagemaker-execution"  # a name, not an ARN
    found = problems("CreateProcessingJob", preprocess)
    assert any("InstanceType: 'ml.inf2.xlarge' is not one of ProcessingInstanceType" in p for p in found)
    assert any("RoleArn" in p and "pattern" in p for p in found)


@pytest.mark.parametrize("stage", STAGES)
def test_every_get_resolves_to_a_parameter_or_an_earlier_steps_property(assembly: Assembly, stage: str) -> None:
    document = definition(assembly, stage)
    parameters = {p["Name"] for p in document["Parameters"]}
    steps = {s["Name"]: s for s in all_steps(document["Steps"])}
    model = service_model()
    for step in steps.values():
        for path in gets(step["Arguments"] if step["Type"] != "Condition" else step["Arguments"]["Conditions"]):
            if path.startswith("Parameters."):
                assert path.removeprefix("Parameters.") in parameters, (step["Name"], path)
                continue
            if path.startswith("Execution."):
                assert path == "Execution.PipelineExecutionId", path
                continue
            target_name, prop = re.fullmatch(r"Steps\.([A-Za-z0-9]+)\.(.+)", path).groups()  # type: ignore[union-attr]
            target = steps[target_name]
            if prop.startswith("PropertyFiles."):
                declared = {p["PropertyFileName"] for p in target.get("PropertyFiles", [])}
                assert prop.removeprefix("PropertyFiles.") in declared, (step["Name"], path)
            elif target["Type"] == "Lambda":
                outputs = {o["OutputName"] for o in target["OutputParameters"]}
                assert re.fullmatch(r"OutputParameters\['(\w+)'\]", prop)[1] in outputs, path  # type: ignore[index]
            else:
                response = {"Processing": "DescribeProcessingJobResponse", "Training": "DescribeTrainingJobResponse"}
                assert _shape_has(model.shape_for(response[target["Type"]]), prop, target), (step["Name"], path)
        # Every value an execution would see can be computed: nothing dangles (JsonGet paths included).
        Execution(document).value(step["Arguments"])


def _shape_has(shape: Any, path: str, step: dict[str, Any]) -> bool:
    for name, key in re.findall(r"(\w+)(?:\['([^']+)'\])?", path):
        if shape.type_name != "structure" or name not in shape.members:
            return False
        shape = shape.members[name]
        if key:
            assert shape.type_name == "list", path
            outputs = {o["OutputName"] for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
            assert key in outputs, path
            shape = shape.member
    return True


@pytest.mark.parametrize("stage", STAGES)
def test_steps_follow_the_issue_in_order(assembly: Assembly, stage: str) -> None:
    document = definition(assembly, stage)
    assert [s["Name"] for s in document["Steps"]] == [
        "Preprocess", "TrainXGBoost", "TrainPyTorch", "ChampionLookup", "EvaluateXGBoost", "EvaluatePyTorch",
        "EvaluateChampion", "SelectModel", "Gate",
    ]
    gate = steps_by_name(assembly, stage)["Gate"]["Arguments"]
    assert [s["Name"] for s in gate["IfSteps"]] == ["Baseline", "ShipChoice"]
    assert [s["Name"] for s in gate["ElseSteps"]] == ["GateFailed"]
    choice = gate["IfSteps"][1]["Arguments"]
    assert [s["Name"] for s in choice["IfSteps"]] == ["CompileNeuron", "RegisterNeuron"]
    assert [s["Name"] for s in choice["ElseSteps"]] == ["PackageXGBoost", "RegisterXGBoost"]
    assert [p["Name"] for p in document["Parameters"]] == ["SnapshotDate", "FeaturesUri", "TriggerReason"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_gate_compares_the_shipped_candidate_with_thresholds_and_the_champion(assembly: Assembly,
                                                                                  stage: str) -> None:
    config = CONFIGS[stage].ml
    conditions = steps_by_name(assembly, stage)["Gate"]["Arguments"]["Conditions"]
    rendered = [(c["Type"], c["LeftValue"]["Std:JsonGet"]["Path"], c["RightValue"]) for c in conditions]
    selection = {"Get": "Steps.SelectModel.PropertyFiles.Selection"}
    assert rendered == [
        ("GreaterThanOrEqualTo", "ship.roc_auc", config.quality_gate.min_roc_auc),
        ("GreaterThanOrEqualTo", "ship.top_decile_lift", config.quality_gate.min_top_decile_lift),
        ("GreaterThanOrEqualTo", "ship.roc_auc",
         {"Std:JsonGet": {"PropertyFile": selection, "Path": "champion.floor"}}),
    ]
    document = definition(assembly, stage)
    message = Execution(document).value(steps_by_name(assembly, stage)["GateFailed"]["Arguments"]["ErrorMessage"])
    assert re.search(r"Quality gate failed: pytorch test ROC-AUC 0\.838 \(min [\d.]+, champion floor 0\.83 \), "
                     r"top-decile lift 3\.0 \(min [\d.]+\)\. pytorch ships", message), message


@pytest.mark.parametrize("stage", STAGES)
def test_jobs_encrypt_with_the_ml_key_and_run_isolated_per_network_mode(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    values = values_for(template(assembly, stage), config.region, config.account)
    key = values["MlKeyArn"]
    for step in steps_by_name(assembly, stage).values():
        args = step["Arguments"]
        if step["Type"] == "Processing":
            assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key
            assert args["ProcessingOutputConfig"]["KmsKeyId"] == key
            network = args["NetworkConfig"]
            assert network["EnableNetworkIsolation"] is True and network["EnableInterContainerTrafficEncryption"]
            vpc = network.get("VpcConfig")
        elif step["Type"] == "Training":
            assert args["ResourceConfig"]["VolumeKmsKeyId"] == key and args["OutputDataConfig"]["KmsKeyId"] == key
            assert args["EnableNetworkIsolation"] is True and args["EnableInterContainerTrafficEncryption"] is True
            vpc = args.get("VpcConfig")
        else:
            continue
        assert args["RoleArn"] == f"arn:aws:iam::{config.account}:role/telecom-ml-{config.name}-sagemaker-execution"
        if config.network.mode == "vpc":
            assert vpc == {"SecurityGroupIds": [values["JobSecurityGroup"]],
                           "Subnets": [values["JobSubnet1"], values["JobSubnet2"]]}, step["Name"]
        else:
            assert vpc is None, step["Name"]


@pytest.mark.parametrize("stage", STAGES)
def test_compute_comes_from_config(assembly: Assembly, stage: str) -> None:
    ml = CONFIGS[stage].ml
    steps = steps_by_name(assembly, stage)
    preprocess = steps["Preprocess"]["Arguments"]["ProcessingResources"]["ClusterConfig"]
    assert preprocess["InstanceType"] == ml.processing_type(ml.pipeline.preprocess)
    assert preprocess["InstanceCount"] == ml.pipeline.preprocess.instance_count
    for name, settings in (("TrainXGBoost", ml.pipeline.train_xgboost), ("TrainPyTorch", ml.pipeline.train_pytorch)):
        args = steps[name]["Arguments"]
        assert args["ResourceConfig"]["InstanceType"] == ml.training_type(settings)
        assert args["EnableManagedSpotTraining"] is settings.managed_spot
        assert ("CheckpointConfig" in args) is settings.managed_spot
        if settings.managed_spot:
            assert args["StoppingCondition"]["MaxWaitTimeInSeconds"] == settings.max_wait_seconds
    compile_neuron = steps["CompileNeuron"]["Arguments"]
    assert compile_neuron["ResourceConfig"]["InstanceType"].startswith("ml.trn1.")
    assert compile_neuron["OutputDataConfig"]["CompressionType"] == "NONE"
    assert compile_neuron["HyperParameters"]["compiler"] == "neuron"


@pytest.mark.parametrize("stage", STAGES)
def test_registered_packages_pin_images_approval_and_baselines(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    steps = steps_by_name(assembly, stage)
    neuron, xgboost = steps["RegisterNeuron"]["Arguments"], steps["RegisterXGBoost"]["Arguments"]
    compile_image = steps["CompileNeuron"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    serving_image = neuron["InferenceSpecification"]["Containers"][0]["Image"]
    sdk = re.compile(r"-sdk(\d+\.\d+\.\d+)")
    assert sdk.search(compile_image)[1] == sdk.search(serving_image)[1]  # type: ignore[index]
    assert "pytorch-inference-neuronx" in serving_image
    assert neuron["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"] == [
        config.ml.endpoint.instance_type
    ]
    assert "sagemaker-xgboost" in xgboost["InferenceSpecification"]["Containers"][0]["Image"]
    for args in (neuron, xgboost):
        assert args["ModelApprovalStatus"] == ("Approved" if stage == "Dev" else "PendingManualApproval")
        assert args["ModelPackageGroupName"] == f"telecom-ml-{config.name}-churn"
        baselines = args["DriftCheckBaselines"]["ModelDataQuality"]
        assert set(baselines) == {"Statistics", "Constraints"}
        assert args["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"] == "application/json"
        assert set(args["CustomerMetadataProperties"]) >= {"model_type", "training_model_data_url"}


@pytest.mark.parametrize("stage", STAGES)
def test_deterministic_steps_are_cached_and_write_content_addressed_outputs(assembly: Assembly, stage: str) -> None:
    steps = steps_by_name(assembly, stage)
    cached = {name for name, s in steps.items() if s.get("CacheConfig", {}).get("Enabled")}
    assert cached == {"Preprocess", "TrainXGBoost", "TrainPyTorch", "Baseline", "CompileNeuron"}
    for name in ("Preprocess", "Baseline"):
        for output in steps[name]["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
            values = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
            assert values[1] == {"Get": "Parameters.SnapshotDate"}
            assert "Execution" not in json.dumps(values)  # an execution id would defeat the cache
    for name in ("EvaluateXGBoost", "SelectModel", "PackageXGBoost"):
        (output,) = steps[name]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
        assert {"Get": "Execution.PipelineExecutionId"} in output["S3Output"]["S3Uri"]["Std:Join"]["Values"]


# ------------------------------------------------------------------------ copies for people
@pytest.mark.parametrize("stage", STAGES)
def test_pretty_copy_in_the_assembly_equals_the_template_body(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    tpl = template(assembly, stage)
    pretty = (assembly.outdir / "pipelines" / f"{churn.pipeline_name(config.name)}.json").read_text()
    values = values_for(tpl, config.region, config.account)
    body, _ = sub_of(tpl)
    assert json.loads(render.resolve(pretty, values)) == json.loads(render.resolve(body, values))
    assert pretty.count("\n") > 500  # indented for people


@pytest.mark.parametrize("stage", STAGES)
def test_definition_matches_the_reviewed_golden_copy(assembly: Assembly, stage: str) -> None:
    """Every change to a definition is a reviewed diff: `UPDATE_PIPELINE_GOLDEN=1` rewrites the copies."""
    config = CONFIGS[stage]
    body, _ = sub_of(template(assembly, stage))
    current = re.sub(r"[0-9a-f]{64}\.gz", "<code-bundle>.gz", render.pretty(body))
    # Cached steps write under a fingerprint of their request, which includes the code bundle's key.
    current = re.sub(r"(?<=/)[0-9a-f]{16}(?=[/\"])", "<fingerprint>", current)
    golden = GOLDEN / f"{config.name}.json"
    if os.environ.get("UPDATE_PIPELINE_GOLDEN") == "1":
        golden.write_text(current)
    assert current == golden.read_text(), f"{golden.name} differs; review and rerun with UPDATE_PIPELINE_GOLDEN=1"


def test_job_code_is_one_content_addressed_file_asset(assembly: Assembly) -> None:
    import tarfile

    keys = set()
    for stage in STAGES:
        body, variables = sub_of(template(assembly, stage))
        keys |= set(re.findall(r"s3://\$\{CodeBucket\}/([0-9a-f]{64}\.gz)", body))
        assert variables["CodeBucket"].startswith("cdk-hnb659fds-assets-")
    (key,) = keys  # one bundle, the same in every environment
    staged = assembly.outdir / f"asset.{key.removesuffix('.gz')}.tar.gz"
    with tarfile.open(staged) as bundle:
        names = bundle.getnames()
    assert "training_jobs/preprocess.py" in names and "serving/inference.py" in names
    assert "dataset/schemas/ibm_telco_churn.yaml" in names
    assert not [n for n in names if n.endswith(".pyc") or n.startswith(("tests", "infra", "lambdas"))]


# ---------------------------------------------------------------------------------- roles
def policy_statements(resources: dict[str, Any], role_fragment: str) -> list[dict[str, Any]]:
    found = []
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = json.dumps(resource["Properties"]["Roles"])
        if role_fragment in roles:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    assert found, role_fragment
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def resources_in(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


@pytest.mark.parametrize("stage", STAGES)
def test_job_role_reaches_only_its_images_logs_and_key(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    statements = policy_statements(template(assembly, stage)["Resources"], f"telecom-ml-{config.name}-sagemaker")
    registries = {"763104351884", "141502667606", "492215442770"}
    for statement in statements:
        actions, resources = actions_of(statement), resources_in(statement)
        assert not any(a.endswith("*") for a in actions), actions
        if any(a.startswith("ecr:Batch") or a == "ecr:GetDownloadUrlForLayer" for a in actions):
            accounts = {re.match(r"arn:aws:ecr:[a-z0-9-]+:(\d{12}):repository/[a-z]", r)[1] for r in resources}
            assert accounts <= registries, resources
        if any(a.startswith("logs:") for a in actions):
            assert all(re.search(r"log-group:/aws/sagemaker/(Processing|Training)Jobs", r) for r in resources)
        if any(a.startswith("kms:") for a in actions):
            # The ML key; the lake's data key too for batch scoring's PublishScores volume (volume grants only).
            assert all(re.search("Keys(Ml|Data)Key", json.dumps(r)) for r in resources), resources
            assert statement["Condition"]["Bool"]["kms:GrantIsForAWSResource"] == "true"
        if resources == ["*"]:
            assert set(actions) <= {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "ec2:DescribeDhcpOptions",
                                    "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                                    "ec2:DescribeSubnets", "ec2:DescribeVpcs"}, actions
            if "cloudwatch:PutMetricData" in actions:
                assert statement["Condition"]["StringLike"]["cloudwatch:namespace"] == [
                    "/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs"
                ]
    network = [s for s in statements if "ec2:CreateNetworkInterface" in actions_of(s)]
    assert bool(network) is (config.network.mode == "vpc")


@pytest.mark.parametrize("stage", STAGES)
def test_pipeline_role_runs_only_this_pipelines_jobs(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    name = f"telecom-ml-{config.name}"
    statements = {s["Sid"]: s for s in policy_statements(template(assembly, stage)["Resources"],
                                                         f"{name}-pipeline-execution") if "Sid" in s}
    prefix = f"arn:aws:sagemaker:{config.region}:{config.account}"
    assert resources_in(statements["PipelineJobs"]) == [f"{prefix}:processing-job/pipelines-*",
                                                        f"{prefix}:training-job/pipelines-*"]
    assert resources_in(statements["RegisterInTheGroup"]) == [f"{prefix}:model-package-group/{name}-churn",
                                                              f"{prefix}:model-package/{name}-churn/*"]
    passing = statements["PassTheJobRole"]
    assert passing["Resource"] == f"arn:aws:iam::{config.account}:role/{name}-sagemaker-execution"
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert statements["LambdaStep"]["Resource"] == {"Fn::GetAtt": [_function_id(assembly, stage), "Arn"]}
    properties = pipeline_resource(template(assembly, stage))
    assert properties["RoleArn"] == f"arn:aws:iam::{config.account}:role/{name}-pipeline-execution"
    assert properties["PipelineName"] == f"{name}-churn"


def _function_id(assembly: Assembly, stage: str) -> str:
    resources = template(assembly, stage)["Resources"]
    (function,) = [k for k, r in resources.items()
                   if r["Type"] == "AWS::Lambda::Function" and k.startswith("ChampionLookup")]
    return function


@pytest.mark.parametrize("stage", STAGES)
def test_foundation_grants_only_the_pipeline_prefix_of_the_artefact_bucket(assembly: Assembly, stage: str) -> None:
    resources = assembly.template(stage, "Foundation")["Resources"]
    for role in ("SageMakerExecutionRole", "PipelineExecutionRole"):  # same stack: {"Ref": <logical id>}
        for statement in policy_statements(resources, f'"{role}'):
            rendered = json.dumps(statement["Resource"])
            if statement["Action"] == "s3:ListBucket":
                assert statement["Condition"]["StringLike"]["s3:prefix"] == ["churn-pipeline", "churn-pipeline/*"]
            elif any(a.startswith("s3:") for a in actions_of(statement)):
                assert "MlArtifactsBucket" in rendered and rendered.endswith('"/churn-pipeline/*"]]}'), rendered
                writes = any(a in actions_of(statement) for a in ("s3:PutObject", "s3:DeleteObject"))
                assert writes is (role == "SageMakerExecutionRole")


@pytest.mark.parametrize("stage", STAGES)
def test_champion_lookup_function_placement_follows_network_mode(assembly: Assembly, stage: str,
                                                                 resources_of) -> None:
    config = CONFIGS[stage]
    (function,) = [f for k, f in resources_of(stage, "MlPipeline", "AWS::Lambda::Function").items()
                   if k.startswith("ChampionLookup")]
    assert function["Properties"]["Handler"] == "lambdas.champion_lookup.handler.handler"
    code = assembly.outdir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    shipped = sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file())
    assert shipped == ["lambdas/__init__.py", "lambdas/champion_lookup/__init__.py",
                       "lambdas/champion_lookup/handler.py", "lambdas/champion_lookup/lookup.py"]
    assert ("VpcConfig" in function["Properties"]) is (config.network.mode == "vpc")
    statements = policy_statements(template(assembly, stage)["Resources"], "ChampionLookupRole")
    star = {a for s in statements if s["Resource"] == "*" for a in actions_of(s)}
    assert star <= {"sagemaker:ListModelPackages", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}
    groups = resources_of(stage, "Foundation", "AWS::EC2::SecurityGroup").values()
    workload = [g for g in groups if g["Properties"]["GroupDescription"].startswith("SageMaker jobs and Lambdas")]
    assert len(workload) == (config.network.mode == "vpc")


@pytest.mark.parametrize("stage", STAGES)
def test_failures_and_pending_approvals_reach_the_ops_topic(assembly: Assembly, stage: str, resources_of) -> None:
    config = CONFIGS[stage]
    rules = list(resources_of(stage, "MlPipeline", "AWS::Events::Rule").values())
    patterns = [r["Properties"]["EventPattern"] for r in rules]
    assert {"pipelineArn": [f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/"
                            f"telecom-ml-{config.name}-churn"],
            "currentPipelineExecutionStatus": ["Failed"]} in [p["detail"] for p in patterns]
    notices = [r for r in rules if r["Properties"]["EventPattern"].get("source") == ["aws.sagemaker"]]
    assert len(notices) == 3  # churn failures, packages awaiting approval, batch-scoring failures
    for rule in notices:
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"].endswith(f":telecom-ml-{config.name}-ops")


def test_model_registry_is_retained_outside_dev(resources_of) -> None:
    for stage in STAGES:
        (group,) = resources_of(stage, "MlPipeline", "AWS::SageMaker::ModelPackageGroup").values()
        assert group["Properties"]["ModelPackageGroupName"] == f"telecom-ml-{CONFIGS[stage].name}-churn"
        assert group["DeletionPolicy"] == ("Delete" if stage == "Dev" else "Retain")


def test_dev_idles_without_interface_endpoints(resources_of) -> None:
    assert CONFIGS["Dev"].network.mode == "isolated"
    endpoints = resources_of("Dev", "Foundation", "AWS::EC2::VPCEndpoint").values()
    assert [e["Properties"]["VpcEndpointType"] for e in endpoints] == ["Gateway"]  # S3, free
