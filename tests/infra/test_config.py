"""Environment config: good files load, bad files fail with one line naming file, field and rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, load_all, load_environment
from tests.conftest import ROOT

GOOD = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())


def write(tmp_path: Path, data: dict, name: str = "dev") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def with_change(path: str, value: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return data


def test_shipped_environments_load_as_stages() -> None:
    configs = load_all(ROOT / "config")
    assert [c.stage_name for c in configs] == ["Dev", "Prod", "Staging"]
    prod = next(c for c in configs if c.name == "prod")
    assert prod.removal_policy == "retain" and prod.data_lake.raw_cdr_object_lock.enabled
    assert prod.ml.endpoint.instance_type.startswith("ml.inf2.")


def test_only_selects_one_environment() -> None:
    assert [c.name for c in load_all(ROOT / "config", only="prod")] == ["prod"]
    with pytest.raises(ConfigError, match=r"no environment 'qa' \(known: dev, prod, staging\)"):
        load_all(ROOT / "config", only="qa")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("account", "12345", "account: '12345' is not a 12-digit AWS account id"),
        ("region", "mars-1", "region: 'mars-1' is not allowed"),
        (
            "ml.endpoint.instance_type",
            "ml.inf9.xlarge",
            "ml.endpoint.instance_type: 'ml.inf9.xlarge' is not a supported endpoint instance type (allowed: ml.inf2.*",
        ),
        (
            "ml.processing_instance_type",
            "ml.inf2.xlarge",
            "ml.processing_instance_type: 'ml.inf2.xlarge' is not a supported processing instance type",
        ),
        ("network.interface_endpoints", ["sagemaker_api", "teleport"], "network.interface_endpoints.1: 'teleport'"),
        (
            "availability_zones",
            ["us-east-1a", "us-east-1b"],
            "availability zone 'us-east-1a' is not in region eu-west-1",
        ),
        ("data_lake.surprise", 1, "data_lake.surprise: unknown setting"),
        ("ml.endpoint.min_instances", 5, "min_instances is greater than max_instances"),
        ("network.vpc_cidr", "10.0.0.0/8", "network.vpc_cidr: String should match pattern"),
    ],
)
def test_bad_value_names_file_field_and_rule(tmp_path: Path, field: str, value: object, expected: str) -> None:
    path = write(tmp_path, with_change(field, value))
    with pytest.raises(ConfigError) as err:
        load_environment(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_missing_required_setting(tmp_path: Path) -> None:
    data = with_change("account", "111111111111")
    del data["network"]
    with pytest.raises(ConfigError, match=r"dev.yaml: network: required setting is missing"):
        load_environment(write(tmp_path, data))


def test_destroy_only_in_dev(tmp_path: Path) -> None:
    data = with_change("name", "prod")
    with pytest.raises(ConfigError, match="removal_policy 'destroy' is only allowed for dev/sandbox, not 'prod'"):
        load_environment(write(tmp_path, data, name="prod"))


def test_name_must_match_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="name 'prod' must match the file name 'dev'"):
        load_environment(write(tmp_path, with_change("name", "prod")))


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text("account: [unclosed\n")
    with pytest.raises(ConfigError, match=r"dev.yaml: not valid YAML at line \d"):
        load_environment(path)


def test_bad_file_stops_the_app_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    write(tmp_path, with_change("account", "12345"))
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "JSII_NODE": os.environ["JSII_NODE"],
            "CDK_CONTEXT_JSON": f'{{"config_dir": "{tmp_path}"}}',
            "CDK_OUTDIR": str(tmp_path / "out"),
        },
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"config error: {tmp_path}/dev.yaml: account: '12345' is not a 12-digit AWS account id"
    ]
    assert "Traceback" not in result.stdout + result.stderr
