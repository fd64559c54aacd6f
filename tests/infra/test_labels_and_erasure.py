"""Labels feed, personal-data retention and the erasure job, as synthesized (and their config's validation)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from dataset.schema import load_schema
from dataset.schema_labels import CONTRACT_COLUMNS, labels_contract
from infra.config import ConfigError, load_all, load_environment
from tests.conftest import ROOT
from tests.infra.conftest import Assembly
from tests.infra.test_data_lake import by_prefix, import_from_library_alone, shipped_library, statements_of

CONFIGS = {c.stage_name: c for c in load_all(ROOT / "config")}


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return set(value if isinstance(value, list) else [value])


def resources(statement: dict[str, Any]) -> str:
    return json.dumps(statement["Resource"])


def each_resource(statement: dict[str, Any]) -> list[str]:
    value = statement["Resource"]
    return [json.dumps(r) for r in (value if isinstance(value, list) else [value])]


def object_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if actions(s) & {"s3:GetObject", "s3:PutObject", "s3:DeleteObjectVersion"}]


def rule_days(bucket: dict[str, Any], rule_id: str) -> tuple[str, int]:
    (rule,) = [r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"] if r.get("Id") == rule_id]
    assert rule["Status"] == "Enabled"
    return rule["Prefix"], rule["ExpirationInDays"]


@pytest.mark.parametrize("stage", ["Dev", "Staging", "Prod"])
def test_retention_expires_captures_and_labels_as_configured(resources_of, stage: str) -> None:
    retention = CONFIGS[stage].data_lake.retention
    artefacts = by_prefix(resources_of(stage, "Foundation", "AWS::S3::Bucket"), "MlArtifacts")
    assert rule_days(artefacts, "ExpireDataCapture") == ("data-capture/", retention.captures_days)
    curated = by_prefix(resources_of(stage, "DataLake", "AWS::S3::Bucket"), "CuratedBucket")
    assert rule_days(curated, "ExpireLabels") == ("churn_labels/", retention.labels_days)


def test_labels_table_is_contract_c5_partitioned_by_label_date(resources_of) -> None:
    table = by_prefix(resources_of("Dev", "DataLake", "AWS::Glue::Table"), "CatalogLabelsTable")["Properties"]
    spec = table["TableInput"]
    assert spec["Name"] == "churn_labels"
    assert spec["PartitionKeys"] == [{"Name": "label_date", "Type": "string"}]
    columns = [(c["Name"], c["Type"]) for c in spec["StorageDescriptor"]["Columns"]]
    assert columns == [
        ("subscriber_id", "string"),
        ("churned", "boolean"),
        ("observed_at", "date"),
        ("inference_id", "string"),
    ]
    assert [name for name, *_ in CONTRACT_COLUMNS] == [name for name, _ in columns]
    assert "CuratedBucket" in json.dumps(spec["StorageDescriptor"]["Location"])
    assert json.dumps(spec["StorageDescriptor"]["Location"]).endswith('"/churn_labels/"]]}')


def test_labels_are_governed_by_lake_formation(resources_of) -> None:
    locations = resources_of("Dev", "DataLake", "AWS::LakeFormation::Resource")
    labels_location = by_prefix(locations, "LakeFormationLabelsLocation")["Properties"]
    assert labels_location["UseServiceLinkedRole"] is False
    assert json.dumps(labels_location["ResourceArn"]).endswith('"/churn_labels"]]}')
    grants = [
        g["Properties"] for g in resources_of("Dev", "DataLake", "AWS::LakeFormation::PrincipalPermissions").values()
    ]
    on_labels = {
        json.dumps(g["Principal"]): g["Permissions"]
        for g in grants
        if g["Resource"].get("Table", {}).get("Name") == "churn_labels"
    }
    assert sorted(on_labels.values()) == [["ALTER", "DESCRIBE", "INSERT", "SELECT"], ["DESCRIBE", "SELECT"]]
    writer = next(p for p, perms in on_labels.items() if "INSERT" in perms)
    reader = next(p for p, perms in on_labels.items() if perms == ["DESCRIBE", "SELECT"])
    assert "ConformLabelsRole" in writer and "sagemaker-execution" in reader
    assert all(g["PermissionsWithGrantOption"] == [] for g in grants)
    data_locations = [
        g
        for g in grants
        if g["Permissions"] == ["DATA_LOCATION_ACCESS"] and "ConformLabelsRole" in json.dumps(g["Principal"])
    ]
    assert len(data_locations) == 1 and "churn_labels" in json.dumps(data_locations[0]["Resource"])


def test_labels_job_reaches_only_its_prefixes(resources_of) -> None:
    statements = statements_of(resources_of, "Dev", "ConformLabelsRole")
    objects: dict[str, set[str]] = {}
    for statement in object_statements(statements):
        for resource in each_resource(statement):
            objects.setdefault(resource, set()).update(actions(statement))
    raw = [r for r in objects if "RawBucket" in r]
    assert raw and all(r.endswith('"/labels/*"]]}') and objects[r] == {"s3:GetObject"} for r in raw)
    curated = [r for r in objects if "CuratedBucket" in r]
    assert curated and all(r.endswith(('"/churn_labels/*"]]}', '"/_suppression/*"]]}')) for r in curated)
    # The erased-subscriber suppression list: read, never written, by the labels job.
    (listed,) = [r for r in curated if r.endswith('"/_suppression/*"]]}')]
    assert "s3:PutObject" not in objects[listed]
    quarantine = [r for r in objects if "QuarantineBucket" in r]
    assert quarantine and all(
        r.endswith('"/ibm_telco_churn/labels/*"]]}') and "s3:GetObject" not in objects[r] for r in quarantine
    )
    assert not any("FeaturesBucket" in r or "RawCdr" in r for r in objects)
    assert not any("subscribers/" in r for r in objects)
    assert any("secretsmanager:GetSecretValue" in actions(s) for s in statements)  # the pseudonymisation key


def test_labels_job_arguments_and_shipped_schema(assembly: Assembly, resources_of) -> None:
    from etl import labels
    from tests.infra.test_data_lake import GLUE_OWN_ARGUMENTS

    job = by_prefix(resources_of("Dev", "DataLake", "AWS::Glue::Job"), "ConformLabelsJob")["Properties"]
    assert job["Command"]["ScriptLocation"].endswith(".py")
    wired = {k for k in job["DefaultArguments"] if k not in GLUE_OWN_ARGUMENTS}
    argv = [part for name in sorted(wired) for part in (name, "value")] + ["--input_uri", "s3://raw/labels/x.csv"]
    parsed = vars(labels.parse_args(argv))
    assert {f"--{name}" for name, value in parsed.items() if value == "value"} == wired
    assert parsed["allow_dev_key"] == "false"
    key = job["DefaultArguments"]["--schema_uri"].rsplit("/", 1)[1]
    shipped = labels_contract(load_schema(assembly.outdir / f"asset.{key}")).schema
    assert shipped.fingerprint == load_schema(ROOT / "dataset" / "schemas" / "churn_labels.yaml").fingerprint


def test_a_labels_batch_starts_the_labels_job_and_its_failures_alert(resources_of) -> None:
    machine = next(iter(resources_of("Dev", "DataLake", "AWS::StepFunctions::StateMachine").values()))
    definition = "".join(
        p if isinstance(p, str) else json.dumps(p) for p in machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    )
    assert '"StartAt":"LabelsOrSnapshot"' in definition
    assert '"Variable":"$.detail.object.key","StringMatches":"labels/*","Next":"ConformLabels"' in definition
    assert '"Default":"Conform"' in definition
    labels_state = definition[definition.index('"ConformLabels":{') :]
    assert '"Next":"LabelsConformed"' in labels_state and '"Catch":[{"ErrorEquals":["States.ALL"]' in labels_state
    failed_job_rules = [
        r
        for r in resources_of("Dev", "DataLake", "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"].get("source") == ["aws.glue"]
    ]
    (rule,) = failed_job_rules
    assert "ConformLabelsJob" in json.dumps(rule["Properties"]["EventPattern"]["detail"]["jobName"])


def test_erasure_job_covers_every_location_and_defaults_to_a_dry_run(resources_of) -> None:
    from etl import erasure
    from tests.infra.test_data_lake import GLUE_OWN_ARGUMENTS

    job = by_prefix(resources_of("Dev", "DataLake", "AWS::Glue::Job"), "EraseSubscriberJob")["Properties"]
    args = job["DefaultArguments"]
    assert args["--dry_run"] == "true"
    wired = {k for k in args if k not in GLUE_OWN_ARGUMENTS}
    argv = [part for name in sorted(wired) for part in (name, "value")] + ["--subscriber_id", "x"]
    parsed = vars(erasure.parse_args(argv))
    assert {f"--{name}" for name, value in parsed.items() if value == "value"} == wired
    parquet = json.dumps(args["--parquet_uris"])
    for bucket, prefix in [
        ("CuratedBucket", "/ibm_telco_churn/"),
        ("FeaturesBucket", "/ibm_telco_churn/"),
        ("FeaturesBucket", "/scores/"),
        ("CuratedBucket", "/churn_labels/"),
    ]:
        assert f'{{"Ref": "{bucket}' in parquet and prefix in parquet
    assert parquet.count("s3://") == 4
    captures = json.dumps(args["--capture_uris"])
    # Dev (model_monitor with model quality) also erases the ground truth the labels job writes.
    assert "MlArtifactsBucket" in captures and "/data-capture/,s3://" in captures
    assert captures.endswith('"/monitoring/telecom-ml-dev-churn/ground-truth/"]]}')


def test_erasure_role_rewrites_only_the_erased_prefixes(resources_of) -> None:
    statements = statements_of(resources_of, "Dev", "EraseSubscriberRole")
    writes = [s for s in object_statements(statements) if "s3:PutObject" in actions(s)]
    written = sorted(r for s in writes for r in each_resource(s))
    assert len(written) == 5
    suffixes = ('"/ibm_telco_churn/*"]]}', '"/scores/*"]]}', '"/churn_labels/*"]]}', '"/_suppression/*"]]}')
    assert all(r.endswith(suffixes) for r in written)
    assert not any("RawBucket" in r or "Quarantine" in r or "RawCdr" in r for r in written)
    # Old versions are deleted where data is erased; the suppression list is only added to.
    erased = [s for s in writes if not resources(s).endswith('"/_suppression/*"]]}')]
    assert len(erased) < len(writes) and all("s3:DeleteObjectVersion" in actions(s) for s in erased)
    listings = [s for s in statements if actions(s) & {"s3:ListBucket", "s3:ListBucketVersions"}]
    assert listings and all("s3:prefix" in s["Condition"]["StringLike"] for s in listings)
    # Erasure by request object: it reads the key the conform job uses (and only that secret).
    (secret,) = [s for s in statements if "secretsmanager:GetSecretValue" in actions(s)]
    assert "PseudonymisationKey" in resources(secret)
    requests = [s for s in statements if any(r.endswith('"/erasure-requests/*"]]}') for r in each_resource(s))]
    assert {a for s in requests for a in actions(s)} == {"s3:GetObject", "s3:DeleteObject"}
    role = by_prefix(resources_of("Dev", "DataLake", "AWS::IAM::Role"), "EraseSubscriberRole")["Properties"]
    assert "CaptureErasurePolicy" in json.dumps(role["ManagedPolicyArns"])


def test_capture_erasure_policy_is_scoped_to_data_capture(resources_of) -> None:
    policy = by_prefix(resources_of("Dev", "Foundation", "AWS::IAM::ManagedPolicy"), "CaptureErasurePolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (objects,) = [s for s in statements if "s3:PutObject" in actions(s)]
    assert actions(objects) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"}
    ground_truth = "monitoring/telecom-ml-dev-churn/ground-truth/"
    assert [r.rsplit('"', 2)[1] for r in each_resource(objects)] == ["/data-capture/*", f"/{ground_truth}*"]
    assert "MlArtifactsBucket" in resources(objects)
    (listing,) = [s for s in statements if "s3:ListBucketVersions" in actions(s)]
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["data-capture", "data-capture/*", ground_truth.rstrip("/"), f"{ground_truth}*"]}
    }
    (key,) = [s for s in statements if "kms:Decrypt" in actions(s)]
    assert "MlKey" in resources(key) and key["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3.")


def _write(tmp_path, data: dict) -> Any:
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"retention": {"labels_days": 365}},
            r"data_lake: retention.labels_days \(365\) is longer than curated.expire_after_days \(180\)",
        ),
        ({"retention": {"captures_days": 0}}, r"data_lake.retention.captures_days: Input should be greater than"),
        ({"retention": {"keep_forever": True}}, r"data_lake.retention.keep_forever: unknown setting"),
        ({"erasure": {"features_zone_prefixes": ["/scores"]}}, r"data_lake.erasure.features_zone_prefixes.0: String"),
        ({"erasure": {"features_zone_prefixes": ["scores/", "scores/"]}}, r"repeats a prefix"),
    ],
)
def test_bad_retention_or_erasure_config_fails_with_the_field(tmp_path, change: dict, message: str) -> None:
    data = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())
    data["data_lake"].update(change)
    with pytest.raises(ConfigError, match=message):
        load_environment(_write(tmp_path, data))


def test_sagemaker_reads_labels_and_nothing_else_of_the_curated_zone(resources_of) -> None:
    policies = resources_of("Dev", "DataLake", "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("SageMakerExecutionRolePolicy")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    curated = [r for s in object_statements(statements) for r in each_resource(s) if "CuratedBucket" in r]
    assert curated and all(r.endswith('"/churn_labels/*"]]}') for r in curated)
    writes = [r for s in statements if "s3:PutObject" in actions(s) for r in each_resource(s)]
    assert not [r for r in writes if "CuratedBucket" in r], "its one write is batch scoring's scores folder"


def test_labels_and_erasure_scripts_import_from_the_shipped_library_alone(assembly: Assembly, resources_of, tmp_path):
    library = shipped_library(assembly, resources_of, "EraseSubscriberJob")
    assert (library / "dataset" / "schema_labels.py").is_file()
    modules = "etl.labels, etl.erasure, dataset.schema_labels"
    import_from_library_alone(library, modules, modules, tmp_path)


@pytest.mark.parametrize("stage", ["Dev", "Staging", "Prod"])
def test_model_monitor_ground_truth_is_written_by_the_labels_job_only_where_model_quality_reads_it(
    resources_of, stage: str
) -> None:
    config = CONFIGS[stage]
    wanted = config.monitoring.engine == "model_monitor" and config.monitoring.model_quality
    prefix = f"monitoring/telecom-ml-{config.name}-churn/ground-truth/"
    job = by_prefix(resources_of(stage, "DataLake", "AWS::Glue::Job"), "ConformLabelsJob")["Properties"]
    argument = job["DefaultArguments"].get("--ground_truth_uri")
    policies = resources_of(stage, "Foundation", "AWS::IAM::ManagedPolicy")
    writers = [p for name, p in policies.items() if name.startswith("GroundTruthWriterPolicy")]
    artefacts = by_prefix(resources_of(stage, "Foundation", "AWS::S3::Bucket"), "MlArtifacts")
    rules = [r["Id"] for r in artefacts["Properties"]["LifecycleConfiguration"]["Rules"]]
    if not wanted:
        assert argument is None and not writers and "ExpireGroundTruth" not in rules
        return
    assert "MlArtifactsBucket" in json.dumps(argument) and json.dumps(argument).endswith(f'"/{prefix}"]]}}')
    (writer,) = writers
    statements = writer["Properties"]["PolicyDocument"]["Statement"]
    (objects,) = [s for s in statements if "s3:PutObject" in actions(s)]
    assert actions(objects) == {"s3:PutObject", "s3:AbortMultipartUpload"}
    assert resources(objects).endswith(f'"/{prefix}*"]]}}')
    (key,) = [s for s in statements if "kms:GenerateDataKey" in actions(s)]
    assert "MlKey" in resources(key) and key["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3.")
    role = by_prefix(resources_of(stage, "DataLake", "AWS::IAM::Role"), "ConformLabelsRole")["Properties"]
    assert "GroundTruthWriterPolicy" in json.dumps(role["ManagedPolicyArns"])
    # Ground truth is labels: it expires as the labels feed does.
    assert rule_days(artefacts, "ExpireGroundTruth") == (prefix, config.data_lake.retention.labels_days)


def test_erased_subscribers_stay_erased_when_old_batches_are_conformed_again(resources_of) -> None:
    """Erasure adds to the suppression list; the conform and labels jobs read it (etl/suppression.py)."""
    jobs = {
        name: by_prefix(resources_of("Dev", "DataLake", "AWS::Glue::Job"), f"{name}Job")["Properties"]
        for name in ("ConformSubscribers", "ConformLabels", "EraseSubscriber")
    }
    for name, job in jobs.items():
        argument = json.dumps(job["DefaultArguments"]["--suppression_uri"])
        assert "CuratedBucket" in argument and argument.endswith('"/_suppression/"]]}'), name
    conform = statements_of(resources_of, "Dev", "ConformSubscribersRole")
    listed = [
        s for s in object_statements(conform) if any(r.endswith('"/_suppression/*"]]}') for r in each_resource(s))
    ]
    assert listed and not any("s3:PutObject" in actions(s) for s in listed)
