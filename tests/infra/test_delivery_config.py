"""Delivery pipeline settings: the shipped file loads; bad files fail with one line naming file, setting and rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
import yaml

import app as cdk_app
from infra.config import ConfigError, load_all
from infra.delivery_config import DELIVERY_FILE, DeliveryConfig, load_delivery
from tests.conftest import ROOT

SHIPPED = ROOT / "config" / DELIVERY_FILE
GOOD = yaml.safe_load(SHIPPED.read_text())


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def changed(path: str, value: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[leaf] = value
    return data


def test_shipped_settings_deploy_dev_staging_then_prod_after_approval() -> None:
    settings = load_delivery(SHIPPED)
    assert [(s.environment, s.manual_approval) for s in settings.stages] == [
        ("dev", False),
        ("staging", False),
        ("prod", True),
    ]
    environments = settings.environments(load_all(ROOT / "config"), SHIPPED)
    assert [c.name for c in environments] == ["dev", "staging", "prod"]
    # The tooling account is none of the environments' accounts.
    assert settings.account not in {c.account for c in environments}


def test_environment_loader_does_not_take_the_settings_file_for_an_environment() -> None:
    assert SHIPPED.parent.parent == ROOT / "config"
    assert "pipeline" not in {c.name for c in load_all(ROOT / "config")}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("account", "12345", "account: '12345' is not a 12-digit AWS account id"),
        ("region", "mars-1", "region: 'mars-1' is not allowed"),
        (
            "source.connection_arn",
            "arn:aws:codecommit:eu-west-1:444444444444:repo",
            "source.connection_arn: 'arn:aws:codecommit:eu-west-1:444444444444:repo' is not a CodeConnections",
        ),
        (
            "source.connection_arn",
            "arn:aws:codestar-connections:eu-central-1:444444444444:connection/00000000-0000-4000-8000-000000000000",
            "source.connection_arn is in 444444444444/eu-central-1, but the pipeline runs in 444444444444/eu-west-1",
        ),
        ("source.owner", "bad owner", "source.owner: string should match pattern"),
        ("stages", [], "stages: tuple should have at least 1 item"),
        ("stages", [{"environment": "dev"}, {"environment": "dev"}], "stages: environment 'dev' is listed twice"),
        ("stages.2.approval", True, "stages.2.approval: unknown setting"),
        ("synth_compute", "XLARGE", "synth_compute: 'XLARGE' is not allowed"),
        ("colour", "blue", "colour: unknown setting"),
    ],
)
def test_bad_settings_fail_with_one_line(tmp_path: Path, path: str, value: object, message: str) -> None:
    file = write(tmp_path, changed(path, value))
    with pytest.raises(ConfigError) as err:
        load_delivery(file)
    text = str(err.value)
    assert text.startswith(f"{file}: ") and "\n" not in text
    assert message.lower() in text.lower(), text


def test_missing_source_and_unreadable_files_fail_with_one_line(tmp_path: Path) -> None:
    data = {k: v for k, v in GOOD.items() if k != "source"}
    with pytest.raises(ConfigError, match=r"pipeline.yaml: source: required setting is missing$"):
        load_delivery(write(tmp_path, data))
    with pytest.raises(ConfigError, match=r"file not found"):
        load_delivery(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("account: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line 2"):
        load_delivery(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match=r"expected a mapping"):
        load_delivery(write(tmp_path, ["dev"]))


def test_a_stage_must_name_a_loaded_environment() -> None:
    settings = DeliveryConfig.model_validate(changed("stages", [{"environment": "dev"}, {"environment": "qa"}]))
    with pytest.raises(ConfigError, match=r"stages: no environment 'qa' among those loaded \(dev, prod, staging\)"):
        settings.environments(load_all(ROOT / "config"), SHIPPED)
    with pytest.raises(ConfigError, match=r"no environment 'staging' among those loaded \(dev\).*no -c env="):
        load_delivery(SHIPPED).environments(load_all(ROOT / "config", only="dev"), SHIPPED)


def test_delivery_flag_takes_one_value() -> None:
    assert cdk_app.delivery_requested(cdk.App(context={"delivery": "pipeline"}))
    assert not cdk_app.delivery_requested(cdk.App())
    with pytest.raises(ConfigError, match=r"^-c delivery=yes: unknown value \(use -c delivery=pipeline\)$"):
        cdk_app.delivery_requested(cdk.App(context={"delivery": "yes"}))


def test_the_plain_synth_does_not_load_cdk_pipelines() -> None:
    """app.py imports the pipeline stack (and with it aws_cdk.pipelines) only when the flag asks for it."""
    probe = (
        "import sys, app; "
        "print(sorted(m for m in sys.modules if m.startswith('aws_cdk.pipelines') or 'delivery_pipeline' in m))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
