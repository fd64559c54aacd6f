"""The cost model (infra/cost, `make cost`): counting from templates, the schedule parser, the price table, the
estimate's arithmetic, and the README / docs/cost.md tables it generates."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import EnvironmentConfig, load_environment
from infra.cost.__main__ import estimates, main
from infra.cost.docs import DocsError, generated_block, readme_table, with_generated_block, with_readme_table
from infra.cost.inventory import Inventory, InventoryError, JobStep, read_stage
from infra.cost.model import HOURS_PER_MONTH, WEEKS_PER_MONTH, Assumptions, estimate
from infra.cost.prices import PRICES_FILE, PriceError, PriceTable, load_prices
from infra.cost.report import markdown_details, markdown_idle
from infra.cost.schedules import ScheduleError, runs_per_month
from tests.conftest import ROOT
from tests.infra.conftest import Assembly

DEV = ROOT / "config" / "dev.yaml"


# ------------------------------------------------------------------------------------------ tiny templates
def write_stage(cdk_out: Path, stage: str, resources: dict[str, Any]) -> Path:
    """A one-stack nested assembly as `cdk synth` lays it out: cdk.out/assembly-<Stage>/{manifest, template}."""
    stage_dir = cdk_out / f"assembly-{stage}"
    stage_dir.mkdir(parents=True)
    (stage_dir / "Stack.template.json").write_text(json.dumps({"Resources": resources}))
    manifest = {
        "artifacts": {
            "Stack": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "Stack.template.json"}},
            "Stack.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Stack.assets.json"}},
        }
    }
    (stage_dir / "manifest.json").write_text(json.dumps(manifest))
    return cdk_out


def endpoint(service: str, subnets: int, kind: str = "Interface") -> dict[str, Any]:
    props = {"VpcEndpointType": kind, "ServiceName": service}
    if kind == "Interface":
        props["SubnetIds"] = [{"Ref": f"Subnet{i}"} for i in range(subnets)]
    return {"Type": "AWS::EC2::VPCEndpoint", "Properties": props}


def alarm(namespace: str, name: str, period: int = 300) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {"Namespace": namespace, "MetricName": name, "Period": period},
    }


def math_alarm(metrics: int) -> dict[str, Any]:
    stats = [
        {"Id": f"m{i}", "MetricStat": {"Metric": {"Namespace": "AWS/Glue", "MetricName": f"x{i}"}, "Period": 300}}
        for i in range(metrics)
    ]
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": [*stats, {"Id": "e", "Expression": "m0+m1"}]}}


def pipeline(name: str, steps: list[dict[str, Any]], parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body = json.dumps({"Version": "2020-12-01", "Parameters": parameters or [], "Steps": steps})
    body = body.replace('"KMSKEY"', '"${MlKey.Arn}"')  # a substitution, as CDK writes it with Fn::Sub
    return {
        "Type": "AWS::SageMaker::Pipeline",
        "Properties": {"PipelineName": name, "PipelineDefinition": {"PipelineDefinitionBody": {"Fn::Sub": body}}},
    }


def processing(name: str, instance_type: Any, count: int = 1) -> dict[str, Any]:
    cluster = {"InstanceType": instance_type, "InstanceCount": count, "VolumeKmsKeyId": "KMSKEY"}
    return {"Name": name, "Type": "Processing", "Arguments": {"ProcessingResources": {"ClusterConfig": cluster}}}


def training(name: str, instance_type: str, spot: bool = False) -> dict[str, Any]:
    args = {"ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1}, "EnableManagedSpotTraining": spot}
    return {"Name": name, "Type": "Training", "Arguments": args}


def condition(name: str, if_steps: list[dict[str, Any]], else_steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Name": name, "Type": "Condition", "Arguments": {"IfSteps": if_steps, "ElseSteps": else_steps}}


def glue_job(worker_type: str, workers: int) -> dict[str, Any]:
    return {"Type": "AWS::Glue::Job", "Properties": {"WorkerType": worker_type, "NumberOfWorkers": workers}}


def state_machine(states: dict[str, Any], start: str) -> dict[str, Any]:
    text = json.dumps({"StartAt": start, "States": states})
    parts: list[Any] = []
    for piece in re.split(r"(@@\w+@@)", text):  # @@Job@@ marks a Ref, as CDK joins it into the definition
        parts.append({"Ref": piece.strip("@")} if piece.startswith("@@") else piece)
    return {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"DefinitionString": {"Fn::Join": ["", parts]}}}


def glue_task(job: str, next_state: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {"JobName": f"@@{job}@@"},
    }
    if next_state:
        state["Next"] = next_state
    else:
        state["End"] = True
    return state


@pytest.fixture
def dev() -> EnvironmentConfig:
    return load_environment(DEV)


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return load_prices()


# ------------------------------------------------------------------------------------------ counting
def test_counts_what_costs_money_in_a_template(tmp_path: Path) -> None:
    cdk_out = write_stage(
        tmp_path,
        "Qa",
        {
            "KeyA": {"Type": "AWS::KMS::Key"},
            "KeyB": {"Type": "AWS::KMS::Key"},
            "Secret": {"Type": "AWS::SecretsManager::Secret"},
            "Sts": endpoint("sts", 2),
            "Logs": endpoint("logs", 2),
            "Kms": endpoint("kms", 3),
            "S3": endpoint("s3", 0, kind="Gateway"),  # free: not counted
            "Plain": alarm("AWS/SQS", "ApproximateAgeOfOldestMessage"),
            "Math": math_alarm(3),
            "Drift": alarm("aws/sagemaker/Endpoints/data-metrics", "feature_psi_tenure"),
            "DriftAgain": alarm("aws/sagemaker/Endpoints/data-metrics", "feature_psi_tenure"),
            **{f"Dash{i}": {"Type": "AWS::CloudWatch::Dashboard"} for i in range(4)},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"BillingMode": "PAY_PER_REQUEST"}},
            "Job": glue_job("G.2X", 3),
            "Stream": {"Type": "AWS::KinesisFirehose::DeliveryStream", "Properties": {}},
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        },
    )
    inv = read_stage(cdk_out, "Qa")
    assert (inv.kms_keys, inv.secrets, inv.dashboards, inv.firehose_streams, inv.lambda_functions) == (2, 1, 4, 1, 1)
    assert sorted(inv.interface_endpoints) == [("Kms", 3), ("Logs", 2), ("Sts", 2)]
    assert inv.alarms == 4 and inv.alarm_metrics == 1 + 3 + 1 + 1  # a metric-math alarm bills each metric it reads
    assert inv.custom_metrics == {("aws/sagemaker/Endpoints/data-metrics", "feature_psi_tenure")}
    assert inv.dynamodb_tables == [("Table", "PAY_PER_REQUEST")]
    assert inv.glue_jobs["Job"].dpus == 6.0


def test_schedules_name_the_pipeline_they_start_and_disabled_ones_are_skipped(tmp_path: Path) -> None:
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/telecom-ml-qa-churn-batch-scoring"
    universal = {
        "Arn": "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution",
        "Input": json.dumps({"PipelineName": "telecom-ml-qa-churn-drift"}),
    }
    cdk_out = write_stage(
        tmp_path,
        "Qa",
        {
            "Scoring": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {"ScheduleExpression": "cron(0 5 1 * ? *)", "Target": {"Arn": arn}},
            },
            "Drift": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {"ScheduleExpression": "rate(1 hour)", "Target": universal},
            },
            "Off": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {"ScheduleExpression": "rate(1 minute)", "State": "DISABLED", "Target": {"Arn": arn}},
            },
            "EventRule": {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": {"source": ["aws.s3"]}}},
        },
    )
    inv = read_stage(cdk_out, "Qa")
    assert [(s.logical_id, s.target_pipeline) for s in inv.schedules] == [
        ("Scoring", "telecom-ml-qa-churn-batch-scoring"),
        ("Drift", "telecom-ml-qa-churn-drift"),
    ]


def test_pipeline_jobs_on_the_run_path_with_parameter_defaults_and_spot(tmp_path: Path) -> None:
    steps = [
        processing("Preprocess", {"Get": "Parameters.ProcessingType"}, count=2),
        training("Train", "ml.m5.xlarge", spot=True),
        condition(
            "Gate",
            [processing("Baseline", "ml.m5.large"), condition("Ship", [training("Compile", "ml.trn1.2xlarge")], [])],
            [processing("NeverRuns", "ml.m5.24xlarge")],
        ),
        {"Name": "Lookup", "Type": "Lambda", "Arguments": {}},
    ]
    parameters = [{"Name": "ProcessingType", "Type": "String", "DefaultValue": "ml.c5.xlarge"}]
    cdk_out = write_stage(tmp_path, "Qa", {"Churn": pipeline("telecom-ml-qa-churn", steps, parameters)})
    jobs = read_stage(cdk_out, "Qa").pipelines["telecom-ml-qa-churn"]
    assert [(j.name, j.kind, j.instance_type, j.instance_count, j.managed_spot) for j in jobs] == [
        ("Preprocess", "Processing", "ml.c5.xlarge", 2, False),
        ("Train", "Training", "ml.m5.xlarge", 1, True),
        ("Baseline", "Processing", "ml.m5.large", 1, False),
        ("Compile", "Training", "ml.trn1.2xlarge", 1, False),
    ]


def test_a_snapshot_runs_the_glue_jobs_on_the_orchestrations_default_path(tmp_path: Path) -> None:
    states = {
        "Which": {"Type": "Choice", "Choices": [{"Next": "Labels"}], "Default": "Conform"},
        "Labels": glue_task("LabelsJob", None),
        "Conform": glue_task("ConformJob", "Features"),
        "Features": glue_task("FeaturesJob", "Done"),
        "Done": {"Type": "Succeed"},
    }
    cdk_out = write_stage(
        tmp_path,
        "Qa",
        {
            "ConformJob": glue_job("G.1X", 2),
            "FeaturesJob": glue_job("G.1X", 4),
            "LabelsJob": glue_job("G.1X", 2),
            "Orchestration": state_machine(states, "Which"),
        },
    )
    inv = read_stage(cdk_out, "Qa")
    assert inv.snapshot_glue_jobs == ["ConformJob", "FeaturesJob"]
    assert inv.snapshot_transitions == 4  # Which, Conform, Features, Done
    assert inv.state_machine_states == {"Orchestration": 5}


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"A": alarm("AWS/Lambda", "Errors", period=10)}, "Stack.template.json: A: a high-resolution alarm"),
        (
            {
                "E": {
                    "Type": "AWS::EC2::VPCEndpoint",
                    "Properties": {"VpcEndpointType": "Interface", "SubnetIds": {"Ref": "X"}},
                }
            },
            "Stack.template.json: E: SubnetIds is not a list",
        ),
        ({"J": glue_job("Z.9X", 2)}, "Stack.template.json: J: WorkerType 'Z.9X'"),
        (
            {"P": {"Type": "AWS::SageMaker::Pipeline", "Properties": {"PipelineName": "p", "PipelineDefinition": {}}}},
            "Stack.template.json: P: the pipeline definition is not in the template",
        ),
    ],
)
def test_what_cannot_be_counted_fails_naming_file_and_resource(
    tmp_path: Path, resources: dict[str, Any], message: str
) -> None:
    with pytest.raises(InventoryError, match=re.escape(message)):
        read_stage(write_stage(tmp_path, "Qa", resources), "Qa")


def test_a_missing_stage_says_to_synthesize(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"no assembly-Qa/manifest.json \(synthesize first: make synth\)"):
        read_stage(tmp_path, "Qa")


# ------------------------------------------------------------------------------------------ schedules
@pytest.mark.parametrize(
    ("expression", "runs"),
    [
        ("cron(0 5 1 * ? *)", 1.0),  # monthly, on the 1st
        ("cron(0 5 ? * MON *)", 365.25 / 7 / 12),  # weekly
        ("cron(0 6 ? * * *)", 365.25 / 12),  # daily
        ("cron(0 * ? * * *)", 24 * 365.25 / 12),  # hourly, over the calendar's average month
        ("cron(0 0 1 JAN,JUL ? *)", 2 / 12),
        ("cron(0/15 9-17 ? * MON-FRI *)", 4 * 9 * 365.25 * 5 / 7 / 12),
        ("cron(30 2 29 2 ? *)", 7 / (28 * 12)),  # 29 February: 7 leap years in the 28-year cycle
        ("rate(1 hour)", HOURS_PER_MONTH),
        ("rate(5 minutes)", HOURS_PER_MONTH * 12),
        ("rate(2 days)", HOURS_PER_MONTH / 48),
        ("at(2027-01-01T05:00:00)", 0.0),  # one run ever: nothing a month
    ],
)
def test_schedule_expressions_fire_so_often_a_month(expression: str, runs: float) -> None:
    assert runs_per_month(expression) == pytest.approx(runs, rel=1e-9)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 5 L * ? *)", "day-of-month value 'L' is not supported"),
        ("cron(0 5 ? * MON#2 *)", "day-of-week value 'MON#2' is not supported"),
        ("cron(0 5 1 * MON *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 5 1 * ? 2027)", "year field '2027' must be *"),
        ("cron(0 25 * * ? *)", "hours '25' is outside 0-23"),
        ("cron(0 5 * *)", "is none of rate(<n> <unit>), cron(<6 fields>) or at(<date>T<time>)"),
        ("rate(0 hours)", "a rate must be at least 1"),
    ],
)
def test_expressions_the_parser_cannot_count_are_refused(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(message)):
        runs_per_month(expression)


# ------------------------------------------------------------------------------------------ prices
def test_every_shipped_price_has_a_unit_a_source_a_date_and_both_config_regions() -> None:
    table = load_prices()
    regions = {load_environment(p).region for p in (ROOT / "config").glob("*.yaml")}
    for item in table.entries:
        for region in regions:
            price = table.get(item, region)
            assert price.source and price.unit and price.read, item
            assert price.value is not None or price.basis is None, item


def test_a_stand_in_price_is_labelled_with_the_region_it_was_published_for(prices: PriceTable) -> None:
    assert prices.instance("ml.inf2.xlarge", "eu-west-1").label == "0.99 [us-east-1 rate]"
    assert prices.get("athena_tb_scanned", "eu-west-1").label == "5 [region not stated]"
    assert prices.get("step_functions_1k_transitions", "eu-central-1").label == "0.025"
    assert prices.instance("ml.trn1.2xlarge", "eu-west-1").label == "no cited price"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("source"), "kms_key_month: 'source' is missing or empty"),
        (lambda e: e.update(read="last week"), "kms_key_month: read 'last week' is not a date"),
        (lambda e: e["regions"].update({"eu-west-1": {"price": -1}}), "regions.eu-west-1.price -1 is not"),
        (
            lambda e: e["regions"].update({"eu-west-1": {"price": None, "basis": "us-east-1"}}),
            "a null price has no basis",
        ),
        (lambda e: e.update(cost=1), "unknown field(s) ['cost']"),
    ],
)
def test_a_malformed_price_entry_is_refused_naming_it(tmp_path: Path, change: Any, message: str) -> None:
    raw = yaml.safe_load(PRICES_FILE.read_text())
    change(raw["prices"]["kms_key_month"])
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PriceError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        load_prices(path)


def test_an_instance_type_without_a_price_says_what_to_add(prices: PriceTable) -> None:
    with pytest.raises(PriceError, match=r"no entry 'sagemaker:ml.r6i.16xlarge' \(add the instance type"):
        prices.instance("ml.r6i.16xlarge", "eu-west-1")


# ------------------------------------------------------------------------------------------ estimate arithmetic
def test_each_line_is_its_quantity_times_its_cited_price(dev: EnvironmentConfig, prices: PriceTable) -> None:
    inv = Inventory("Dev", kms_keys=5, secrets=1, interface_endpoints=[("A", 2), ("B", 2), ("C", 3)], dashboards=5)
    inv.alarms, inv.alarm_metrics = 3, 7
    est = estimate(dev, inv, prices, Assumptions())
    region = dev.region
    assert est.line("Interface endpoints").idle_usd == pytest.approx(
        7 * HOURS_PER_MONTH * prices.get("interface_endpoint_az_hour", region).value
    )
    assert est.line("KMS keys").idle_usd == pytest.approx(5 * prices.get("kms_key_month", region).value)
    assert est.line("CloudWatch alarms").idle_usd == pytest.approx(
        7 * prices.get("cloudwatch_alarm_metric_month", region).value
    )
    assert est.line("CloudWatch dashboards").idle_quantity == 2  # 3 free per account
    assert est.total("idle") == pytest.approx(sum(line.idle_usd or 0.0 for line in est.lines))


def test_the_retrain_path_is_priced_from_the_pipeline_jobs(dev: EnvironmentConfig, prices: PriceTable) -> None:
    inv = Inventory("Dev")
    inv.pipelines["telecom-ml-dev-churn"] = [
        JobStep("Preprocess", "Processing", "ml.m5.xlarge", 1),
        JobStep("Train", "Training", "ml.m5.xlarge", 2, managed_spot=True),
    ]
    load = Assumptions(retrains_per_week=2, job_minutes=30, spot_discount_percent=60)
    line = estimate(dev, inv, prices, load).line("Retraining jobs (ml.m5.xlarge)")
    retrains = 2 * WEEKS_PER_MONTH
    expected_hours = retrains * 0.5 * (1 + 2 * 0.4)
    assert line.idle_quantity == 0 and line.load_quantity == pytest.approx(expected_hours)
    assert line.load_usd == pytest.approx(expected_hours * prices.instance("ml.m5.xlarge", dev.region).value)


def test_an_unpriced_line_is_reported_and_left_out_of_the_total(dev: EnvironmentConfig, prices: PriceTable) -> None:
    inv = Inventory("Dev", firehose_streams=1)
    est = estimate(dev, inv, prices, Assumptions(cdr_gb_per_day=2))
    firehose = est.line("Firehose ingestion")
    assert firehose.load_quantity == pytest.approx(2 * HOURS_PER_MONTH / 24) and firehose.load_usd is None
    assert firehose in est.unpriced("load")
    assert est.total("load") == pytest.approx(sum(line.load_usd or 0.0 for line in est.lines))


# ------------------------------------------------------------------------------------------ the shipped app
@pytest.fixture(scope="module")
def shipped(assembly: Assembly) -> list[Any]:
    return estimates(assembly.outdir, ROOT / "config", PRICES_FILE, Assumptions())


def test_dev_costs_at_most_30_usd_a_month_at_idle(shipped: list[Any]) -> None:
    dev = next(e for e in shipped if e.environment == "dev")
    assert dev.total("idle") <= 30.0, markdown_idle([dev])
    assert dev.line("Interface endpoints").idle_quantity == 0  # network mode isolated
    assert dev.line("Endpoint (the deployer's, from ml.endpoint)").idle_quantity == 0  # async, scales to zero


def test_counts_match_the_shipped_templates(assembly: Assembly) -> None:
    prod = read_stage(assembly.outdir, "Prod")
    config = load_environment(ROOT / "config" / "prod.yaml")
    assert len(prod.interface_endpoints) == len(config.network.interface_endpoints)
    assert {azs for _, azs in prod.interface_endpoints} == {len(config.availability_zones)}
    assert prod.kms_keys == 5 and prod.secrets == 1
    assert [s.expression for s in prod.schedules_of("telecom-ml-prod-churn-batch-scoring")] == [
        config.ml.batch_scoring.schedule
    ]
    assert [s.expression for s in prod.schedules_of("telecom-ml-prod-churn-drift")] == [config.monitoring.schedule]
    assert [j.name for j in prod.pipelines["telecom-ml-prod-churn-drift"]] == ["DetectDrift"]


@pytest.mark.parametrize("mode", ["async", "realtime"])
def test_an_endpoint_instance_added_to_a_config_copy_costs_its_cited_price_times_730_hours(
    assembly: Assembly, prices: PriceTable, mode: str
) -> None:
    dev = load_environment(DEV)
    assert dev.ml.endpoint.min_instances == 0
    more = dev.model_copy(
        update={
            "ml": dev.ml.model_copy(
                update={"endpoint": dev.ml.endpoint.model_copy(update={"min_instances": 1, "mode": mode})}
            )
        }
    )
    inventory = read_stage(assembly.outdir, dev.stage_name)
    before = estimate(dev, inventory, prices, Assumptions()).total("idle")
    after = estimate(more, inventory, prices, Assumptions()).total("idle")
    hourly = prices.instance(dev.ml.endpoint.instance_type, dev.region).value
    assert hourly == 0.99  # the cited price (prices.yaml): the test shows the figure it checks
    assert after - before == pytest.approx(hourly * 730)


def test_make_cost_prints_every_environment_and_the_assumptions(
    assembly: Assembly, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--cdk-out", str(assembly.outdir), "--config-dir", str(ROOT / "config"), "--predictions-per-day", "5"])
        == 0
    )
    out = capsys.readouterr().out
    for stage in ("Dev", "Staging", "Prod"):
        assert re.search(rf"^{stage} \(", out, re.MULTILINE), stage
    for assumption in Assumptions(predictions_per_day=5).describe():
        assert assumption in out
    assert "5 predictions a day" in out and "Total (priced lines)" in out


def test_bad_inputs_fail_with_one_line(assembly: Assembly, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--cdk-out", str(tmp_path), "--env", "dev"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"cost: error: {tmp_path}: no assembly-Dev/manifest.json (synthesize first: make synth)"
    )
    assert main(["--cdk-out", str(assembly.outdir), "--spot-discount-percent", "120"]) == 2
    assert "--spot-discount-percent must be at most 100" in capsys.readouterr().err


def test_readme_cost_table_is_the_generated_one(shipped: list[Any]) -> None:
    table = readme_table((ROOT / "README.md").read_text())
    assert table == markdown_idle(shipped), "README's cost table is stale: python -m infra.cost --write-docs ."


def test_docs_cost_tables_are_the_generated_ones(shipped: list[Any]) -> None:
    block = generated_block((ROOT / "docs" / "cost.md").read_text())
    assert block == markdown_details(shipped, Assumptions(), load_prices()), (
        "docs/cost.md is stale: python -m infra.cost --write-docs ."
    )


def test_write_docs_replaces_stale_tables_and_nothing_else(
    assembly: Assembly, shipped: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    readme = (ROOT / "README.md").read_text()
    stale = readme.replace(readme_table(readme), "| Item | Dev |\n| --- | --- |\n| KMS keys | 1.00 |")
    (tmp_path / "README.md").write_text(stale)
    doc = (ROOT / "docs" / "cost.md").read_text()
    (tmp_path / "docs" / "cost.md").write_text(with_generated_block(doc, "| old | table |"))
    args = ["--cdk-out", str(assembly.outdir), "--config-dir", str(ROOT / "config"), "--write-docs", str(tmp_path)]
    assert main(args) == 0
    assert (tmp_path / "README.md").read_text() == readme
    assert (tmp_path / "docs" / "cost.md").read_text() == doc
    assert capsys.readouterr().out.count(": updated") == 2
    assert main([*args, "--retrains-per-week", "3"]) == 2  # the documents show the default load only


def test_documents_without_their_table_place_are_refused() -> None:
    with pytest.raises(DocsError, match=re.escape("README.md: no '## Cost at idle' section")):
        readme_table("# Title\n\n## Teardown\n")
    with pytest.raises(DocsError, match=re.escape("README.md: no table in the '## Cost at idle' section")):
        readme_table("# T\n\n## Cost at idle\n\nprose only\n\n## Teardown\n")
    with pytest.raises(DocsError, match=re.escape("docs/cost.md: the markers")):
        generated_block("<!-- end generated --> then <!-- generated: python -m infra.cost --markdown details -->")
    text = "# T\n\n## Cost at idle\n\nIntro.\n\n| a | b |\n| --- | --- |\n\nAfter.\n\n## Teardown\n| keep | me |\n"
    replaced = with_readme_table(text, "| x |\n| --- |")
    assert replaced == text.replace("| a | b |\n| --- | --- |", "| x |\n| --- |")


def test_the_model_is_plain_python_without_the_cdk() -> None:
    code = (
        "import sys, infra.cost.__main__; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'aws_cdk', 'constructs', 'cdk_nag', 'jsii', 'boto3'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
