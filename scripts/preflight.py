r"""Preflight of one environment's AWS account, with the caller's credentials, before its first deploy.

    make preflight ENV=dev                       # synthesizes dev, then runs:
    .venv/bin/python -m scripts.preflight dev [--config-dir config] [--assembly cdk.out]

Reads config/<env>.yaml and checks, in the account and region it names:
- the caller's account (sts:GetCallerIdentity) is the configured one; if not, nothing else is checked;
- every IAM role the config names exists (iam:GetRole): the Lake Formation admin, the KMS key admins and the
  batch-scores readers;
- SageMaker offers each configured instance type in the region for its use, and its Service Quota covers what
  the config runs at once (scripts/preflight_needs.py): a quota the region's default list
  (servicequotas:ListAWSDefaultServiceQuotas) does not hold is an instance type SageMaker does not offer there
  for that use; the value checked is the account's applied one (servicequotas:ListServiceQuotas), or the
  default where none is applied;
- the CDK bootstrap of the account and region is at least the version the synthesized stage requires (the
  largest of its templates' CheckBootstrapVersion rules and its artefacts' `requiresBootstrapStackVersion`),
  read from the SSM parameter the cloud assembly names (its qualifier included).

Prints one line per check (`ok` or `FAIL` and what to do), then a summary. Exit codes: 0 every check passed;
1 some check failed; 2 it could not run (no or rejected credentials, bad config, no network).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file from anywhere: the repository's packages
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound  # noqa: E402

from infra.config import ConfigError, EnvironmentConfig, load_environment  # noqa: E402
from scripts.preflight_needs import InstanceNeed, instance_needs  # noqa: E402

QUOTA_SERVICE = "sagemaker"
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
THROTTLED = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
REJECTED_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
# botocore's standard retry mode backs off on throttling; what still fails after it is reported.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 6})


class CannotRun(Exception):
    """Preflight cannot check anything (exit 2); the message is the one line to show."""


@dataclass(frozen=True)
class Result:
    ok: bool
    line: str


@dataclass(frozen=True)
class Clients:
    sts: Any
    iam: Any
    quotas: Any
    ssm: Any


@dataclass(frozen=True)
class BootstrapRequirement:
    version: int
    parameters: tuple[str, ...]  # SSM parameter names holding the bootstrap version (one per qualifier)


def make_clients(session: boto3.Session, region: str) -> Clients:
    def client(service: str) -> Any:
        return session.client(service, region_name=region, config=CLIENT_CONFIG)

    return Clients(sts=client("sts"), iam=client("iam"), quotas=client("service-quotas"), ssm=client("ssm"))


def explain(exc: ClientError, action: str) -> str:
    """What a failed AWS call means for the person running preflight."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    if code in ACCESS_DENIED:
        return f"access denied to {action}: allow it for the caller or run preflight as an administrator"
    if code in THROTTLED:
        return f"{action} was throttled ({code}) even after retries: run preflight again in a minute"
    return f"{action} failed: {code}: {message}".rstrip(": ")


# --------------------------------------------------------------------------- account
def check_account(sts: Any, config: EnvironmentConfig, config_path: Path) -> Result:
    try:
        account = sts.get_caller_identity()["Account"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in REJECTED_CREDENTIALS:
            raise CannotRun(
                f"the credentials were rejected ({code}): refresh them (e.g. aws sso login) and run preflight again"
            ) from None
        return Result(False, f"account: {explain(exc, 'sts:GetCallerIdentity')}")
    if account != config.account:
        return Result(
            False,
            f"account: the credentials are for {account}, {config_path} names {config.account}: "
            f"use credentials of account {config.account} (AWS_PROFILE) or fix `account`",
        )
    return Result(True, f"account: the credentials are for {account}")


# --------------------------------------------------------------------------- roles
def required_roles(config: EnvironmentConfig) -> dict[str, list[str]]:
    """Role name -> the settings naming it, for every role the stacks expect to exist already."""
    named: dict[str, list[str]] = {}
    named.setdefault(config.data_lake.lake_formation_admin_role_name, []).append(
        "data_lake.lake_formation_admin_role_name"
    )
    for role in config.security.key_admin_role_names:
        named.setdefault(role, []).append("security.key_admin_role_names")
    for role in config.ml.batch_scoring.reader_role_names:
        named.setdefault(role, []).append("ml.batch_scoring.reader_role_names")
    return named


def check_roles(iam: Any, config: EnvironmentConfig, config_path: Path) -> list[Result]:
    results = []
    for role, settings in required_roles(config).items():
        where = ", ".join(settings)
        try:
            iam.get_role(RoleName=role)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                results.append(
                    Result(
                        False,
                        f"role {role} ({where}) does not exist in account {config.account}: "
                        f"create it (docs/deploy.md, 'Roles') or name an existing role in "
                        f"{config_path}",
                    )
                )
            else:
                results.append(Result(False, f"role {role} ({where}): {explain(exc, 'iam:GetRole')}"))
            continue
        results.append(Result(True, f"role {role} exists ({where})"))
    return results


# --------------------------------------------------------------------------- quotas
def _pages(client: Any, operation: str) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(ServiceCode=QUOTA_SERVICE):
        yield from page.get("Quotas", [])


def sagemaker_quotas(quotas: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(applied, defaults) SageMaker quotas of the client's region, by QuotaName, every page read."""
    applied = {q["QuotaName"]: q for q in _pages(quotas, "list_service_quotas")}
    defaults = {q["QuotaName"]: q for q in _pages(quotas, "list_aws_default_service_quotas")}
    return applied, defaults


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_quota(
    need: InstanceNeed, applied: dict[str, dict[str, Any]], defaults: dict[str, dict[str, Any]], region: str
) -> Result:
    name = need.quota_name
    quota = applied.get(name) or defaults.get(name)
    if quota is None:
        return Result(
            False,
            f"{name}: no such quota in {region}, so SageMaker does not offer {need.instance_type} "
            f"there for {need.usage} use ({need.why}): choose another instance type or region",
        )
    value, code = quota.get("Value"), quota.get("QuotaCode", "?")
    if value is None:  # Service Quotas could not read it (ErrorReason says why, e.g. a dependency's throttling)
        reason = quota.get("ErrorReason", {})
        return Result(
            False,
            f"{name}: Service Quotas has no value for it in {region} ({reason.get('ErrorCode', 'no value')}: "
            f"{reason.get('ErrorMessage', '')}): run preflight again later or look it up in the console ({code})",
        )
    if value < need.count:
        return Result(
            False,
            f"{name}: quota {_number(value)} in {region}, need {need.count} ({need.why}): request "
            f"an increase in Service Quotas ({code}): aws service-quotas "
            f"request-service-quota-increase --service-code {QUOTA_SERVICE} --quota-code {code} "
            f"--desired-value {need.count} --region {region}",
        )
    return Result(True, f"{name}: quota {_number(value)} in {region}, need {need.count}")


def check_quotas(quotas: Any, needs: Iterable[InstanceNeed], region: str) -> list[Result]:
    try:
        applied, defaults = sagemaker_quotas(quotas)
    except ClientError as exc:
        return [Result(False, f"SageMaker quotas: {explain(exc, 'servicequotas:List*ServiceQuotas')}")]
    return [check_quota(need, applied, defaults, region) for need in needs]


# --------------------------------------------------------------------------- CDK bootstrap
def _read_json(path: Path, hint: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CannotRun(f"{path}: not found: {hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CannotRun(f"{path}: not a readable cloud assembly file ({exc}): {hint}") from None


def rule_minimum(template: dict[str, Any]) -> int | None:
    """The least bootstrap version a template's CheckBootstrapVersion rule accepts (it lists the refused ones)."""
    rule = template.get("Rules", {}).get("CheckBootstrapVersion")
    if not rule:
        return None
    refused: list[int] = []
    for assertion in rule.get("Assertions", []):
        try:  # {"Fn::Not": [{"Fn::Contains": [["1", ..., "5"], {"Ref": "BootstrapVersion"}]}]}
            listed = assertion["Assert"]["Fn::Not"][0]["Fn::Contains"][0]
        except (KeyError, IndexError, TypeError):
            continue  # another shape of rule: the manifest's number still applies
        refused += [int(v) for v in listed if str(v).isdigit()]
    return max(refused) + 1 if refused else None


def required_bootstrap(assembly: Path, stage: str) -> BootstrapRequirement:
    """The bootstrap version and SSM parameters the synthesized stage requires: the largest of its artefacts'
    `requiresBootstrapStackVersion` (stacks and asset manifests) and of its templates' CheckBootstrapVersion."""
    hint = f"run `make synth ENV=<env>` first (it writes {assembly}/)"
    root = _read_json(assembly / "manifest.json", hint)
    nested = next(
        (
            a.get("properties", {}).get("directoryName")
            for a in root.get("artifacts", {}).values()
            if a.get("type") == "cdk:cloud-assembly" and a.get("properties", {}).get("displayName") == stage
        ),
        None,
    )
    if nested is None:
        raise CannotRun(f"{assembly}: no cloud assembly of stage {stage}: {hint}")
    manifest = _read_json(assembly / nested / "manifest.json", hint)
    versions, parameters = [], set()
    for artifact in manifest.get("artifacts", {}).values():
        props = artifact.get("properties") or {}
        if "requiresBootstrapStackVersion" in props:
            versions.append(int(props["requiresBootstrapStackVersion"]))
            if props.get("bootstrapStackVersionSsmParameter"):
                parameters.add(props["bootstrapStackVersionSsmParameter"])
        if artifact.get("type") == "aws:cloudformation:stack" and props.get("templateFile"):
            minimum = rule_minimum(_read_json(assembly / nested / props["templateFile"], hint))
            versions += [minimum] if minimum is not None else []
    if not versions or not parameters:
        raise CannotRun(
            f"{assembly}/{nested}: no stack requires a bootstrap version (not a default-synthesizer assembly?): {hint}"
        )
    return BootstrapRequirement(max(versions), tuple(sorted(parameters)))


def check_bootstrap(ssm: Any, requirement: BootstrapRequirement, config: EnvironmentConfig) -> list[Result]:
    target = f"aws://{config.account}/{config.region}"
    fix = f"run `cdk bootstrap {target}` with this repository's CDK CLI (node_modules/.bin/cdk)"
    results = []
    for parameter in requirement.parameters:
        try:
            value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                results.append(
                    Result(False, f"CDK bootstrap: {target} is not bootstrapped ({parameter} not found): {fix}")
                )
            else:
                results.append(Result(False, f"CDK bootstrap: {explain(exc, 'ssm:GetParameter')} ({parameter})"))
            continue
        if not value.isdigit() or int(value) < requirement.version:
            results.append(
                Result(
                    False,
                    f"CDK bootstrap: version {value} in {target}, the stacks need >= {requirement.version}: {fix}",
                )
            )
        else:
            results.append(
                Result(True, f"CDK bootstrap: version {value} in {target} (the stacks need >= {requirement.version})")
            )
    return results


# --------------------------------------------------------------------------- run
def run(
    config: EnvironmentConfig, config_path: Path, assembly: Path, clients: Clients, out: Callable[[str], None] = print
) -> int:
    """Every check, one line each; 0 all passed, 1 some failed. Raises CannotRun when nothing can be checked."""
    requirement = required_bootstrap(assembly, config.stage_name)
    out(f"preflight {config.name}: account {config.account}, region {config.region}")
    account = check_account(clients.sts, config, config_path)
    results = [account]
    if account.ok:  # in another account every other answer would be about the wrong account
        results += check_roles(clients.iam, config, config_path)
        results += check_quotas(clients.quotas, instance_needs(config), config.region)
        results += check_bootstrap(clients.ssm, requirement, config)
    for result in results:
        out(f"{'ok  ' if result.ok else 'FAIL'}  {result.line}")
    failed = sum(not r.ok for r in results)
    summary = f"{failed} of {len(results)} checks failed" if failed else f"all {len(results)} checks passed"
    out(f"preflight {config.name}: {summary}")
    return 1 if failed else 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="preflight", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("env", help="environment name: config/<env>.yaml")
    parser.add_argument("--config-dir", type=Path, default=ROOT / "config")
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out", help="cloud assembly of `cdk synth`")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, session_factory: Callable[..., boto3.Session] = boto3.Session) -> int:
    args = _arguments(argv)
    config_path = args.config_dir / f"{args.env}.yaml"
    try:
        config = load_environment(config_path)
        session = session_factory(region_name=config.region)
        if session.get_credentials() is None:
            raise CannotRun(
                "no AWS credentials found: set AWS_PROFILE (or run aws configure / aws sso login) "
                f"for account {config.account}"
            )
        return run(config, config_path, args.assembly, make_clients(session, config.region))
    except ConfigError as exc:
        print(f"preflight: config error: {exc}")
    except CannotRun as exc:
        print(f"preflight: {exc}")
    except ProfileNotFound as exc:
        print(f"preflight: {exc}: set AWS_PROFILE to a profile in your AWS config")
    except NoCredentialsError:
        print("preflight: no AWS credentials found: set AWS_PROFILE (or run aws configure / aws sso login)")
    except BotoCoreError as exc:  # e.g. no network to the AWS endpoints
        print(f"preflight: could not reach AWS: {exc}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
