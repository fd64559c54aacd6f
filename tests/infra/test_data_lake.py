"""The data lake stack: zones, catalog, Glue jobs, Lake Formation, Athena, CDR stream, orchestration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from dataset.schema import load_schema
from infra.config import load_all
from infra.constructs.lake.lake_catalog import feature_columns
from tests.conftest import ROOT
from tests.infra.conftest import Assembly

CONFIGS = {c.stage_name: c for c in load_all(ROOT / "config")}
SCHEMA = load_schema(ROOT / "dataset" / "schemas" / "ibm_telco_churn.yaml")


def lake(assembly: Assembly, stage: str = "Dev") -> Template:
    return Template.from_json(assembly.template(stage, "DataLake"))


def by_prefix(resources: dict[str, Any], prefix: str) -> dict[str, Any]:
    (match,) = [r for k, r in resources.items() if k.startswith(prefix)]
    return match


def shipped_library(assembly: Assembly, resources_of, job_prefix: str) -> Path:
    """The staged --extra-py-files asset of a Dev Glue job."""
    job = by_prefix(resources_of("Dev", "DataLake", "AWS::Glue::Job"), job_prefix)
    asset_hash = job["Properties"]["DefaultArguments"]["--extra-py-files"].rsplit("/", 1)[1].removesuffix(".zip")
    return assembly.outdir / f"asset.{asset_hash}"


def import_from_library_alone(library: Path, imports: str, from_library: str, cwd: Path) -> None:
    """In a fresh Python with only `library` (not this repository) on its path: `import {imports}` succeeds and
    the modules in `from_library` come from the library. -B: importing from the staged asset must not write a
    __pycache__ into what is shipped."""
    code = (
        "import sys; sys.path = [p for p in sys.path if p not in ('', sys.argv[1])]; sys.path.insert(0, sys.argv[2]); "
        f"import {imports}; "
        f"assert all(m.__file__.startswith(sys.argv[2]) for m in ({from_library},))"
    )
    result = subprocess.run([sys.executable, "-B", "-c", code, str(ROOT), str(library)], cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def statements_of(resources_of, stage: str, role_prefix: str) -> list[dict[str, Any]]:
    policies = resources_of(stage, "DataLake", "AWS::IAM::Policy")
    found = [
        p
        for p in policies.values()
        if any(
            isinstance(r, dict) and r.get("Ref", "").startswith(role_prefix) for r in p["Properties"].get("Roles", [])
        )
    ]
    assert found, role_prefix
    return [s for p in found for s in p["Properties"]["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("stage", ["Dev", "Prod"])
def test_zone_buckets_use_the_data_key(resources_of, stage: str) -> None:
    buckets = resources_of(stage, "DataLake", "AWS::S3::Bucket")
    zones = {k.split("Bucket")[0] for k in buckets}
    assert zones == {"Raw", "RawCdr", "Curated", "Features", "Quarantine", "AthenaResults"}
    for bucket in buckets.values():
        sse = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert "DataKey" in json.dumps(sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])
        assert "LoggingConfiguration" in bucket["Properties"]


def test_zone_lifecycle_follows_config(resources_of) -> None:
    buckets = resources_of("Dev", "DataLake", "AWS::S3::Bucket")
    dev = CONFIGS["Dev"].data_lake

    def current(prefix: str) -> dict[str, Any]:
        rules = by_prefix(buckets, prefix)["Properties"]["LifecycleConfiguration"]["Rules"]
        return next(r for r in rules if r["Id"] == "CurrentVersions")

    assert current("QuarantineBucket")["ExpirationInDays"] == dev.quarantine.expire_after_days == 30
    assert current("CuratedBucket")["ExpirationInDays"] == 180
    assert current("RawBucket")["Transitions"] == [{"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 0}]


def test_raw_cdr_object_lock_only_where_configured(resources_of) -> None:
    prod = by_prefix(resources_of("Prod", "DataLake", "AWS::S3::Bucket"), "RawCdrBucket")["Properties"]
    assert prod["ObjectLockEnabled"] is True
    assert prod["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 2555}
    dev = by_prefix(resources_of("Dev", "DataLake", "AWS::S3::Bucket"), "RawCdrBucket")["Properties"]
    assert "ObjectLockConfiguration" not in dev


def test_raw_zone_emits_eventbridge_notifications(assembly: Assembly) -> None:
    lake(assembly).has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {"EventBridgeConfiguration": {}},
        },
    )


def test_catalog_tables_follow_the_dataset_schema(resources_of) -> None:
    tables = resources_of("Dev", "DataLake", "AWS::Glue::Table")
    features = by_prefix(tables, "CatalogFeaturesTable")["Properties"]["TableInput"]
    assert features["Name"] == "ibm_telco_churn_features"
    columns = [(c["Name"], c["Type"]) for c in features["StorageDescriptor"]["Columns"]]
    assert columns == feature_columns(SCHEMA)
    assert ("churn", "int") in columns and ("tenure", "int") in columns and ("contract", "string") in columns
    assert features["PartitionKeys"] == [{"Name": "snapshot_date", "Type": "string"}]
    assert features["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    curated = by_prefix(tables, "CatalogCuratedTable")["Properties"]["TableInput"]
    curated_names = [c["Name"] for c in curated["StorageDescriptor"]["Columns"]]
    assert curated_names == SCHEMA.source_columns


def test_glue_jobs_run_glue_5_1_with_security_configuration(resources_of) -> None:
    jobs = resources_of("Dev", "DataLake", "AWS::Glue::Job")
    security = by_prefix(resources_of("Dev", "DataLake", "AWS::Glue::SecurityConfiguration"), "GlueSecurity")
    enc = security["Properties"]["EncryptionConfiguration"]
    assert enc["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert enc["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert enc["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    assert len(jobs) == 4  # conform, features, labels (tests/infra/test_labels_and_erasure.py), erasure
    for job in jobs.values():
        props = job["Properties"]
        assert props["GlueVersion"] == "5.1"
        assert props["Command"]["Name"] == "glueetl"
        assert props["SecurityConfiguration"] == security["Properties"]["Name"]
        assert props["DefaultArguments"]["--extra-py-files"].endswith(".zip")
        assert props["DefaultArguments"].get("--schema_uri", ".json").endswith(".json")


def test_conform_job_role_reaches_only_its_prefixes(resources_of) -> None:
    statements = statements_of(resources_of, "Dev", "ConformSubscribersRole")
    rendered = json.dumps(statements)
    assert '"s3:*"' not in rendered and "s3:GetObject*" not in rendered and "kms:*" not in rendered
    object_resources = {
        json.dumps(s["Resource"]) for s in statements if "s3:PutObject" in s["Action"] or s["Action"] == "s3:GetObject"
    }
    assert any("/subscribers/*" in r and "RawBucket" in r for r in object_resources)
    assert any("CuratedBucket" in r and "/ibm_telco_churn/*" in r for r in object_resources)
    assert not any("FeaturesBucket" in r or "RawCdrBucket" in r for r in object_resources)
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]) <= {
                "cloudwatch:PutMetricData",
                "lakeformation:GetDataAccess",
            }
            if statement["Action"] == "cloudwatch:PutMetricData":
                assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Glue"}}


def test_sagemaker_role_reads_only_the_feature_table(resources_of) -> None:
    policies = resources_of("Dev", "DataLake", "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("SageMakerExecutionRolePolicy")]
    assert policy["Properties"]["Roles"] == ["telecom-ml-dev-sagemaker-execution"]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # Its one write: batch scoring's PublishScores into the scores table's folder (tests/infra/test_batch_scoring.py).
    reads = [s for s in statements if "ibm_telco_churn_scores" not in json.dumps(s)]
    actions = {a for s in reads for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert "s3:PutObject" not in actions and "kms:Encrypt" not in actions
    grants = resources_of("Dev", "DataLake", "AWS::LakeFormation::PrincipalPermissions")
    sagemaker = [g["Properties"] for g in grants.values() if "sagemaker-execution" in json.dumps(g)]
    assert len(sagemaker) == 2  # the feature table and the labels table (ground truth for model quality)
    assert all(g["Permissions"] == ["DESCRIBE", "SELECT"] for g in sagemaker)
    assert all(g["PermissionsWithGrantOption"] == [] for g in sagemaker)
    assert {g["Resource"]["Table"]["Name"] for g in sagemaker} == {"ibm_telco_churn_features", "churn_labels"}


def test_lake_formation_settings_and_registered_locations(assembly: Assembly, resources_of) -> None:
    settings = by_prefix(resources_of("Dev", "DataLake", "AWS::LakeFormation::DataLakeSettings"), "LakeFormation")
    admins = json.dumps(settings["Properties"]["Admins"])
    assert "role/TelecomMlDataLakeAdmin" in admins and "cfn-exec-role" in admins
    assert settings["Properties"]["CreateDatabaseDefaultPermissions"] == []
    assert settings["Properties"]["CreateTableDefaultPermissions"] == []
    locations = resources_of("Dev", "DataLake", "AWS::LakeFormation::Resource").values()
    assert len(locations) == 4  # curated and features dataset folders, curated churn_labels/, scores folder
    assert all(loc["Properties"]["UseServiceLinkedRole"] is False for loc in locations)
    grants = resources_of("Dev", "DataLake", "AWS::LakeFormation::PrincipalPermissions").values()
    data_location = [g for g in grants if g["Properties"]["Permissions"] == ["DATA_LOCATION_ACCESS"]]
    assert len(data_location) == 3


def test_athena_workgroup_is_enforced_and_capped(assembly: Assembly) -> None:
    lake(assembly, "Prod").has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": CONFIGS["Prod"].data_lake.athena_bytes_scanned_cutoff_mib * 1024 * 1024,
                "ResultConfiguration": {
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": Match.any_value()}
                },
            },
        },
    )


def test_cdr_firehose_is_encrypted_and_partitioned_by_event_date(assembly: Assembly) -> None:
    lake(assembly).has_resource_properties(
        "AWS::KinesisFirehose::DeliveryStream",
        {
            "DeliveryStreamType": "DirectPut",
            "DeliveryStreamEncryptionConfigurationInput": {
                "KeyType": "CUSTOMER_MANAGED_CMK",
                "KeyARN": Match.any_value(),
            },
            "ExtendedS3DestinationConfiguration": Match.object_like(
                {
                    "Prefix": "cdr/event_date=!{partitionKeyFromQuery:event_date}/",
                    "ErrorOutputPrefix": Match.string_like_regexp(r"^cdr-errors/!\{firehose:error-output-type\}/"),
                    "CompressionFormat": "GZIP",
                    "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": Match.any_value()}},
                    "DynamicPartitioningConfiguration": Match.object_like({"Enabled": True}),
                }
            ),
        },
    )


def test_snapshot_upload_starts_conform_then_features_then_announces(resources_of) -> None:
    rules = resources_of("Dev", "DataLake", "AWS::Events::Rule")
    (rule,) = [r for r in rules.values() if r["Properties"]["EventPattern"].get("source") == ["aws.s3"]]
    assert rule["Properties"]["EventPattern"]["detail"]["object"] == {
        "key": [{"prefix": "subscribers/"}, {"prefix": "labels/"}]
    }
    target = rule["Properties"]["Targets"][0]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 4
    machine = next(iter(resources_of("Dev", "DataLake", "AWS::StepFunctions::StateMachine").values()))
    props = machine["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    definition = "".join(p if isinstance(p, str) else json.dumps(p) for p in props["DefinitionString"]["Fn::Join"][1])
    assert definition.index('"Conform"') < definition.index('"BuildFeatures"') < definition.index('"FeaturesReady"')
    assert "glue:startJobRun.sync" in definition and "events:putEvents" in definition
    assert '"DetailType":"FeaturesReady"' in definition and "sns:publish" in definition
    # The pipeline trigger starts only on its own environment's event.
    assert '\\"environment\\":\\"dev\\"' in definition or '"environment":"dev"' in definition


GLUE_OWN_ARGUMENTS = {
    "--job-language",
    "--extra-py-files",
    "--enable-metrics",
    "--enable-observability-metrics",
    "--enable-continuous-cloudwatch-log",
    "--job-bookmark-option",
}


@pytest.mark.parametrize(
    ("job_prefix", "module", "run_time_args"),
    [
        ("ConformSubscribersJob", "etl.glue_conform", ["--input_uri", "s3://raw/subscribers/x.csv"]),
        ("BuildFeaturesJob", "etl.glue_features", []),
    ],
)
def test_job_arguments_match_what_the_script_parses(
    resources_of, job_prefix: str, module: str, run_time_args: list[str]
) -> None:
    import importlib

    job = by_prefix(resources_of("Dev", "DataLake", "AWS::Glue::Job"), job_prefix)
    wired = {k: v for k, v in job["Properties"]["DefaultArguments"].items() if k not in GLUE_OWN_ARGUMENTS}
    argv = [part for name in sorted(wired) for part in (name, "value")] + run_time_args
    parsed = vars(importlib.import_module(module).parse_args(argv))
    assert {f"--{name}" for name, value in parsed.items() if value == "value"} == set(wired)
    assert parsed["pseudonymisation_secret_id"] == "value" and parsed["allow_dev_key"] == "false"


def test_glue_gets_the_schema_as_equivalent_json(assembly: Assembly, resources_of) -> None:
    from dataset.schema import load_schema

    job = by_prefix(resources_of("Dev", "DataLake", "AWS::Glue::Job"), "ConformSubscribersJob")
    key = job["Properties"]["DefaultArguments"]["--schema_uri"].rsplit("/", 1)[1]
    shipped = load_schema(assembly.outdir / f"asset.{key}")
    assert shipped.fingerprint == SCHEMA.fingerprint
    assert shipped.source_columns == SCHEMA.source_columns


def test_glue_entry_points_import_from_the_shipped_library_alone(assembly: Assembly, resources_of, tmp_path) -> None:
    """The --extra-py-files zip must hold every module the entry points import (nothing from the repo)."""
    library = shipped_library(assembly, resources_of, "ConformSubscribersJob")
    shipped = sorted(p.relative_to(library).as_posix() for p in library.rglob("*.py"))
    assert shipped and all(p.startswith(("dataset/", "etl/")) for p in shipped), shipped
    import_from_library_alone(library, "etl.glue_conform, etl.glue_features, etl.preflight",
                              "etl.glue_conform, etl.preflight", tmp_path)
