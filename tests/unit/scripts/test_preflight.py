"""scripts/preflight.py with botocore's Stubber: each check passing and failing, pagination, errors as one line."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from infra.config import load_environment
from scripts import preflight
from scripts.preflight import CannotRun, Clients, required_bootstrap, run

ROOT = Path(__file__).resolve().parents[3]
DEV_YAML = ROOT / "config" / "dev.yaml"
DEV = load_environment(DEV_YAML)
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# The quotas dev needs (scripts/preflight_needs.py), with the value each has in the "all pass" account.
DEV_QUOTAS = {
    "ml.inf2.xlarge for endpoint usage": 2,
    "ml.inf2.xlarge for transform job usage": 1,
    "ml.m5.large for endpoint usage": 2,
    "ml.m5.large for processing job usage": 2,
    "ml.m5.large for transform job usage": 1,
    "ml.m5.xlarge for processing job usage": 3,
    "ml.m5.xlarge for spot training job usage": 2,
    "ml.trn1.2xlarge for training job usage": 1,
}


def quota_code(name: str) -> str:
    return f"L-{zlib.crc32(name.encode()):08X}"


def quota(name: str, value: float) -> dict[str, Any]:
    return {"ServiceCode": "sagemaker", "QuotaName": name, "QuotaCode": quota_code(name), "Value": float(value)}


def bootstrap_rule(least: int) -> dict[str, Any]:
    """The Rules section `cdk synth` writes into each stack template (shape copied from a synthesized one)."""
    refused = [str(v) for v in range(1, least)]
    return {
        "CheckBootstrapVersion": {
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Contains": [refused, {"Ref": "BootstrapVersion"}]}]},
                    "AssertDescription": f"CDK bootstrap stack version {least} required.",
                }
            ]
        }
    }


def write_assembly(
    root: Path,
    stage: str = "Dev",
    versions: tuple[int, ...] = (6, 6),
    parameter: str = BOOTSTRAP_PARAMETER,
    rule: int | None = 6,
) -> Path:
    """A cloud assembly shaped like `cdk synth`'s: a root manifest naming the stage's nested assembly, whose
    manifest lists asset manifests and stacks (alternately, one per version) and each stack's template."""
    nested = root / f"assembly-{stage}"
    nested.mkdir(parents=True)
    root_manifest = {
        "version": "55.0.0",
        "artifacts": {
            f"assembly-{stage}": {
                "type": "cdk:cloud-assembly",
                "properties": {"directoryName": f"assembly-{stage}", "displayName": stage},
            },
            "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
        },
    }
    artifacts: dict[str, Any] = {
        "aws-cdk-lib/feature-flag-report": {"type": "cdk:feature-flag-report", "properties": {"module": "aws-cdk-lib"}}
    }
    for i, version in enumerate(versions):
        props = {"requiresBootstrapStackVersion": version, "bootstrapStackVersionSsmParameter": parameter}
        if i % 2:
            props["templateFile"] = f"Stack{i}.template.json"
            template = {"Resources": {}, **({"Rules": bootstrap_rule(rule)} if rule else {})}
            (nested / props["templateFile"]).write_text(json.dumps(template))
        artifacts[f"Stack{i}"] = {
            "type": "aws:cloudformation:stack" if i % 2 else "cdk:asset-manifest",
            "properties": props,
        }
    (root / "manifest.json").write_text(json.dumps(root_manifest))
    (nested / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return root


@dataclass
class Stubs:
    clients: Clients
    sts: Stubber
    iam: Stubber
    quotas: Stubber
    ssm: Stubber
    lines: list[str] = field(default_factory=list)

    def all_pass(
        self,
        quotas: dict[str, float] | None = None,
        defaults: dict[str, float] | None = None,
        version: str | None = "30",
        parameter: str = BOOTSTRAP_PARAMETER,
        applied_rows: list[dict[str, Any]] | None = None,
    ) -> None:
        """Answers for every call of a run against dev: the given quotas (or applied_rows as they are) and
        bootstrap version (None: no bootstrap answer, the test adds its own)."""
        self.sts.add_response(
            "get_caller_identity",
            {"Account": DEV.account, "UserId": "AIDEXAMPLE", "Arn": f"arn:aws:iam::{DEV.account}:user/dev"},
        )
        for role in preflight.required_roles(DEV):
            self.iam.add_response("get_role", role_response(role, DEV.account), {"RoleName": role})
        applied = DEV_QUOTAS if quotas is None else quotas
        rows = applied_rows if applied_rows is not None else [quota(n, v) for n, v in applied.items()]
        self.quota_pages([rows], [[quota(n, v) for n, v in (defaults or {}).items()]])
        if version is not None:
            self.ssm.add_response(
                "get_parameter", {"Parameter": {"Name": parameter, "Value": version}}, {"Name": parameter}
            )

    def quota_pages(self, applied: list[list[dict[str, Any]]], defaults: list[list[dict[str, Any]]]) -> None:
        for operation, pages in (("list_service_quotas", applied), ("list_aws_default_service_quotas", defaults)):
            for i, page in enumerate(pages or [[]]):
                response: dict[str, Any] = {"Quotas": page}
                if i + 1 < len(pages):
                    response["NextToken"] = f"page-{i + 2}"
                params = {"ServiceCode": "sagemaker", **({"NextToken": f"page-{i + 1}"} if i else {})}
                self.quotas.add_response(operation, response, params)

    def run(self, assembly: Path) -> int:
        return run(DEV, DEV_YAML, assembly, self.clients, out=self.lines.append)

    @property
    def failures(self) -> list[str]:
        return [line for line in self.lines if line.startswith("FAIL")]


def role_response(role: str, account: str) -> dict[str, Any]:
    return {
        "Role": {
            "Path": "/",
            "RoleName": role,
            "RoleId": "AROAEXAMPLE000000000",
            "Arn": f"arn:aws:iam::{account}:role/{role}",
            "CreateDate": "2026-01-01T00:00:00Z",
        }
    }


@pytest.fixture(scope="module")
def clients() -> Clients:
    """Built once (client creation dominates these tests' time); each test stubs them afresh."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=DEV.region)
    return Clients(
        sts=session.client("sts"),
        iam=session.client("iam"),
        quotas=session.client("service-quotas"),
        ssm=session.client("ssm"),
    )


@pytest.fixture
def stubs(clients: Clients) -> Iterator[Stubs]:
    stubbers = {name: Stubber(getattr(clients, name)) for name in ("sts", "iam", "quotas", "ssm")}
    for stubber in stubbers.values():
        stubber.activate()
    yield Stubs(clients, **stubbers)
    for stubber in stubbers.values():  # every stubbed call was made, and no other
        stubber.assert_no_pending_responses()
        stubber.deactivate()


@pytest.fixture
def assembly(tmp_path: Path) -> Path:
    return write_assembly(tmp_path / "cdk.out")


# --------------------------------------------------------------------------- all checks pass
def test_every_check_passes(stubs: Stubs, assembly: Path) -> None:
    stubs.all_pass()
    assert stubs.run(assembly) == 0
    assert stubs.failures == []
    assert stubs.lines[0] == "preflight dev: account 111111111111, region eu-west-1"
    assert "ok    account: the credentials are for 111111111111" in stubs.lines
    assert "ok    role TelecomMlDataLakeAdmin exists (data_lake.lake_formation_admin_role_name)" in stubs.lines
    assert "ok    role TelecomMlKeyAdmin exists (security.key_admin_role_names)" in stubs.lines
    assert "ok    ml.inf2.xlarge for endpoint usage: quota 2 in eu-west-1, need 2" in stubs.lines
    assert "ok    CDK bootstrap: version 30 in aws://111111111111/eu-west-1 (the stacks need >= 6)" in stubs.lines
    # 1 account + 2 roles + 8 quotas + 1 bootstrap parameter
    assert stubs.lines[-1] == "preflight dev: all 12 checks passed"


# --------------------------------------------------------------------------- account
def test_another_account_fails_and_checks_nothing_else(stubs: Stubs, assembly: Path) -> None:
    stubs.sts.add_response(
        "get_caller_identity",
        {"Account": "222222222222", "UserId": "AIDEXAMPLE", "Arn": "arn:aws:iam::222222222222:user/other"},
    )
    assert stubs.run(assembly) == 1
    assert stubs.failures == [
        f"FAIL  account: the credentials are for 222222222222, {DEV_YAML} names 111111111111: use credentials of "
        "account 111111111111 (AWS_PROFILE) or fix `account`"
    ]
    assert stubs.lines[-1] == "preflight dev: 1 of 1 checks failed"


@pytest.mark.parametrize("code", ["ExpiredToken", "InvalidClientTokenId"])
def test_rejected_credentials_cannot_run(stubs: Stubs, assembly: Path, code: str) -> None:
    stubs.sts.add_client_error("get_caller_identity", service_error_code=code, http_status_code=403)
    with pytest.raises(CannotRun, match=rf"the credentials were rejected \({code}\): refresh them"):
        stubs.run(assembly)


# --------------------------------------------------------------------------- roles
def test_a_missing_role_names_the_setting_and_what_to_do(stubs: Stubs, assembly: Path) -> None:
    stubs.sts.add_response("get_caller_identity", {"Account": DEV.account})
    stubs.iam.add_response(
        "get_role", role_response("TelecomMlDataLakeAdmin", DEV.account), {"RoleName": "TelecomMlDataLakeAdmin"}
    )
    stubs.iam.add_client_error(
        "get_role",
        service_error_code="NoSuchEntity",
        http_status_code=404,
        expected_params={"RoleName": "TelecomMlKeyAdmin"},
    )
    stubs.quota_pages([[quota(n, v) for n, v in DEV_QUOTAS.items()]], [])
    stubs.ssm.add_response("get_parameter", {"Parameter": {"Value": "30"}}, {"Name": BOOTSTRAP_PARAMETER})
    assert stubs.run(assembly) == 1
    assert stubs.failures == [
        "FAIL  role TelecomMlKeyAdmin (security.key_admin_role_names) does not exist in account 111111111111: "
        f"create it (docs/deploy.md, 'Roles') or name an existing role in {DEV_YAML}"
    ]


def test_required_roles_are_every_role_the_config_names(tmp_path: Path) -> None:
    text = DEV_YAML.read_text().replace(
        "key_admin_role_names: [TelecomMlKeyAdmin]", "key_admin_role_names: [TelecomMlKeyAdmin, TelecomMlDataLakeAdmin]"
    )
    text = text.replace("  batch_scoring:\n", "  batch_scoring:\n    reader_role_names: [Analyst, TelecomMlKeyAdmin]\n")
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    assert preflight.required_roles(load_environment(path)) == {
        "TelecomMlDataLakeAdmin": ["data_lake.lake_formation_admin_role_name", "security.key_admin_role_names"],
        "TelecomMlKeyAdmin": ["security.key_admin_role_names", "ml.batch_scoring.reader_role_names"],
        "Analyst": ["ml.batch_scoring.reader_role_names"],
    }


# --------------------------------------------------------------------------- quotas
def test_quotas_are_read_across_pages(stubs: Stubs, assembly: Path) -> None:
    names = list(DEV_QUOTAS)
    stubs.sts.add_response("get_caller_identity", {"Account": DEV.account})
    for role in preflight.required_roles(DEV):
        stubs.iam.add_response("get_role", role_response(role, DEV.account), {"RoleName": role})
    filler = [quota(f"ml.c5.{i}xlarge for endpoint usage", 5) for i in range(3)]
    stubs.quota_pages(
        [filler + [quota(n, DEV_QUOTAS[n]) for n in names[:3]], [quota(n, DEV_QUOTAS[n]) for n in names[3:6]], []],
        [[quota(n, 0) for n in names], [quota(n, DEV_QUOTAS[n]) for n in names[6:]]],
    )
    stubs.ssm.add_response("get_parameter", {"Parameter": {"Value": "6"}}, {"Name": BOOTSTRAP_PARAMETER})
    assert stubs.run(assembly) == 0, stubs.lines


def test_a_low_quota_says_how_much_and_how_to_raise_it(stubs: Stubs, assembly: Path) -> None:
    stubs.all_pass(quotas={**DEV_QUOTAS, "ml.inf2.xlarge for endpoint usage": 1})
    code = quota_code("ml.inf2.xlarge for endpoint usage")
    assert stubs.run(assembly) == 1
    assert stubs.failures == [
        "FAIL  ml.inf2.xlarge for endpoint usage: quota 1 in eu-west-1, need 2 (PyTorch package: 2 x "
        "ml.endpoint.max_instances 1 (a blue/green update runs two fleets)): request an increase in Service Quotas "
        f"({code}): aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code "
        f"{code} --desired-value 2 --region eu-west-1"
    ]


def test_the_default_value_counts_where_none_is_applied(stubs: Stubs, assembly: Path) -> None:
    applied = {n: v for n, v in DEV_QUOTAS.items() if n != "ml.trn1.2xlarge for training job usage"}
    stubs.all_pass(quotas=applied, defaults={"ml.trn1.2xlarge for training job usage": 4})
    assert stubs.run(assembly) == 0
    assert "ok    ml.trn1.2xlarge for training job usage: quota 4 in eu-west-1, need 1" in stubs.lines


def test_an_applied_zero_wins_over_the_default(stubs: Stubs, assembly: Path) -> None:
    stubs.all_pass(
        quotas={**DEV_QUOTAS, "ml.trn1.2xlarge for training job usage": 0},
        defaults={"ml.trn1.2xlarge for training job usage": 8},
    )
    assert stubs.run(assembly) == 1
    assert [f.split(":")[0] for f in stubs.failures] == ["FAIL  ml.trn1.2xlarge for training job usage"]


def test_an_instance_type_the_region_does_not_offer(stubs: Stubs, assembly: Path) -> None:
    stubs.all_pass(quotas={n: v for n, v in DEV_QUOTAS.items() if n != "ml.inf2.xlarge for transform job usage"})
    assert stubs.run(assembly) == 1
    assert stubs.failures == [
        "FAIL  ml.inf2.xlarge for transform job usage: no such quota in eu-west-1, so SageMaker does not offer "
        "ml.inf2.xlarge there for transform job use (ml.batch_scoring.instance_count (PyTorch package)): choose "
        "another instance type or region"
    ]


def test_a_quota_without_a_value_says_why(stubs: Stubs, assembly: Path) -> None:
    name = "ml.m5.large for endpoint usage"
    unreadable = {k: v for k, v in quota(name, 0).items() if k != "Value"}
    unreadable["ErrorReason"] = {"ErrorCode": "DEPENDENCY_THROTTLING_ERROR", "ErrorMessage": "Rate exceeded"}
    rows = [quota(n, v) for n, v in DEV_QUOTAS.items() if n != name] + [unreadable]
    stubs.all_pass(applied_rows=rows)
    assert stubs.run(assembly) == 1
    assert stubs.failures == [
        f"FAIL  {name}: Service Quotas has no value for it in eu-west-1 (DEPENDENCY_THROTTLING_ERROR: Rate "
        f"exceeded): run preflight again later or look it up in the console ({quota_code(name)})"
    ]


# --------------------------------------------------------------------------- bootstrap
def test_an_account_without_bootstrap(stubs: Stubs, assembly: Path) -> None:
    stubs.all_pass(version=None)
    stubs.ssm.add_client_error(
        "get_parameter",
        service_error_code="ParameterNotFound",
        http_status_code=400,
        expected_params={"Name": BOOTSTRAP_PARAMETER},
    )
    assert stubs.run(assembly) == 1
    assert stubs.failures == [
        "FAIL  CDK bootstrap: aws://111111111111/eu-west-1 is not bootstrapped (/cdk-bootstrap/hnb659fds/version not "
        "found): run `cdk bootstrap aws://111111111111/eu-west-1` with this repository's CDK CLI "
        "(node_modules/.bin/cdk)"
    ]


@pytest.mark.parametrize(("value", "ok"), [("5", False), ("6", True), ("", False), ("x", False)])
def test_the_bootstrap_version_must_reach_what_the_stacks_require(
    stubs: Stubs, assembly: Path, value: str, ok: bool
) -> None:
    stubs.all_pass(version=value)
    assert stubs.run(assembly) == (0 if ok else 1)
    if not ok:
        assert stubs.failures == [
            f"FAIL  CDK bootstrap: version {value} in aws://111111111111/eu-west-1, the stacks need >= 6: run "
            "`cdk bootstrap aws://111111111111/eu-west-1` with this repository's CDK CLI (node_modules/.bin/cdk)"
        ]


def test_the_requirement_comes_from_the_stage_assembly(tmp_path: Path) -> None:
    root = write_assembly(tmp_path / "a", stage="Dev", versions=(6, 21, 6), parameter="/cdk-bootstrap/abc/version")
    assert required_bootstrap(root, "Dev") == preflight.BootstrapRequirement(21, ("/cdk-bootstrap/abc/version",))
    with pytest.raises(CannotRun, match="no cloud assembly of stage Prod: run `make synth ENV=<env>` first"):
        required_bootstrap(root, "Prod")
    with pytest.raises(CannotRun, match=r"manifest.json: not found: run `make synth ENV=<env>` first"):
        required_bootstrap(tmp_path / "missing", "Dev")
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(CannotRun, match="not a readable cloud assembly file"):
        required_bootstrap(root, "Dev")


def test_a_template_rule_can_raise_the_requirement(tmp_path: Path) -> None:
    root = write_assembly(tmp_path / "a", versions=(6, 6), rule=30)
    assert required_bootstrap(root, "Dev").version == 30
    assert required_bootstrap(write_assembly(tmp_path / "b", versions=(6, 6), rule=None), "Dev").version == 6
    assert preflight.rule_minimum({"Rules": bootstrap_rule(6)}) == 6
    assert preflight.rule_minimum({"Rules": {"CheckBootstrapVersion": {"Assertions": [{"Assert": True}]}}}) is None
    assert preflight.rule_minimum({"Resources": {}}) is None


def test_a_qualified_bootstrap_parameter_is_the_one_read(stubs: Stubs, tmp_path: Path) -> None:
    assembly = write_assembly(tmp_path / "cdk.out", parameter="/cdk-bootstrap/team42/version")
    stubs.all_pass(parameter="/cdk-bootstrap/team42/version")
    assert stubs.run(assembly) == 0


# --------------------------------------------------------------------------- AWS errors: one line each
def test_access_denied_and_throttling_are_one_line_each(stubs: Stubs, assembly: Path) -> None:
    stubs.sts.add_response("get_caller_identity", {"Account": DEV.account})
    stubs.iam.add_client_error("get_role", service_error_code="AccessDenied", http_status_code=403)
    stubs.iam.add_client_error("get_role", service_error_code="Throttling", http_status_code=400)
    stubs.quotas.add_client_error(
        "list_service_quotas", service_error_code="TooManyRequestsException", http_status_code=429
    )
    stubs.ssm.add_client_error("get_parameter", service_error_code="AccessDeniedException", http_status_code=400)
    assert stubs.run(assembly) == 1
    assert stubs.failures == [
        "FAIL  role TelecomMlDataLakeAdmin (data_lake.lake_formation_admin_role_name): access denied to iam:GetRole: "
        "allow it for the caller or run preflight as an administrator",
        "FAIL  role TelecomMlKeyAdmin (security.key_admin_role_names): iam:GetRole was throttled (Throttling) even "
        "after retries: run preflight again in a minute",
        "FAIL  SageMaker quotas: servicequotas:List*ServiceQuotas was throttled (TooManyRequestsException) even "
        "after retries: run preflight again in a minute",
        "FAIL  CDK bootstrap: access denied to ssm:GetParameter: allow it for the caller or run preflight as an "
        "administrator (/cdk-bootstrap/hnb659fds/version)",
    ]
    assert stubs.lines[-1] == "preflight dev: 4 of 5 checks failed"


def test_sts_access_denied_is_a_failed_check(stubs: Stubs, assembly: Path) -> None:
    stubs.sts.add_client_error("get_caller_identity", service_error_code="AccessDenied", http_status_code=403)
    assert stubs.run(assembly) == 1
    assert stubs.failures == [
        "FAIL  account: access denied to sts:GetCallerIdentity: allow it for the caller or run "
        "preflight as an administrator"
    ]


# --------------------------------------------------------------------------- main: exit codes
class StubbedSession:
    """What main() needs of a boto3 Session, handing out the stubbed clients."""

    def __init__(self, clients: Clients, **_: Any) -> None:
        self._clients = {"sts": clients.sts, "iam": clients.iam, "service-quotas": clients.quotas, "ssm": clients.ssm}

    def get_credentials(self) -> object:
        return object()

    def client(self, service: str, **_: Any) -> Any:
        return self._clients[service]


def test_main_runs_every_check(stubs: Stubs, assembly: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stubs.all_pass()
    rc = preflight.main(["dev", "--assembly", str(assembly)], lambda **kw: StubbedSession(stubs.clients, **kw))
    assert rc == 0
    assert capsys.readouterr().out.splitlines()[-1] == "preflight dev: all 12 checks passed"


def test_main_without_a_cloud_assembly_exits_2(
    stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = preflight.main(["dev", "--assembly", str(tmp_path)], lambda **kw: StubbedSession(stubs.clients, **kw))
    assert rc == 2
    assert capsys.readouterr().out == (
        f"preflight: {tmp_path}/manifest.json: not found: run `make synth ENV=<env>` first (it writes {tmp_path}/)\n"
    )


def test_main_with_rejected_credentials_exits_2(
    stubs: Stubs, assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stubs.sts.add_client_error("get_caller_identity", service_error_code="ExpiredToken", http_status_code=403)
    rc = preflight.main(["dev", "--assembly", str(assembly)], lambda **kw: StubbedSession(stubs.clients, **kw))
    assert rc == 2
    assert capsys.readouterr().out.splitlines()[-1].startswith("preflight: the credentials were rejected")


def test_main_without_credentials_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    rc = preflight.main(["dev", "--assembly", str(assembly)])
    assert rc == 2
    assert capsys.readouterr().out == (
        "preflight: no AWS credentials found: set AWS_PROFILE (or run aws configure / "
        "aws sso login) for account 111111111111\n"
    )


def test_main_with_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "qa.yaml").write_text("account: '12345'\n")
    assert preflight.main(["qa", "--config-dir", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"preflight: config error: {tmp_path}/qa.yaml: ") and out.count("\n") == 1
