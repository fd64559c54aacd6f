"""Reading the serving stack's templates: the deployer's settings document and policy statements."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Assembly

PLACEHOLDER = "resolved-at-deploy"


def resources(assembly: Assembly, stage: str, kind: str | None = None) -> dict[str, Any]:
    found = assembly.template(stage, "Serving")["Resources"]
    return {k: r for k, r in found.items() if kind is None or r["Type"] == kind}


def render(value: Any) -> str:
    """A template string with intrinsics replaced by a placeholder (Fn::Join flattened)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(p) for p in parts)
    if isinstance(value, dict) and value.get("Ref") == "AWS::Partition":
        return "aws"
    return PLACEHOLDER


def settings_document(assembly: Assembly, stage: str) -> dict[str, Any]:
    """DEPLOYER_SETTINGS of the deployer functions (all share one document)."""
    documents = {
        render(r["Properties"]["Environment"]["Variables"]["DEPLOYER_SETTINGS"])
        for r in resources(assembly, stage, "AWS::Lambda::Function").values()
        if "DEPLOYER_SETTINGS" in r["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert len(documents) == 1, documents
    document: dict[str, Any] = json.loads(documents.pop())
    return document


def role_statements(assembly: Assembly, stage: str, role_prefix: str) -> list[dict[str, Any]]:
    policies = resources(assembly, stage, "AWS::IAM::Policy").values()
    return [
        statement
        for policy in policies
        if any((role if isinstance(role, str) else role.get("Ref", "")).startswith(role_prefix)
               for role in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
