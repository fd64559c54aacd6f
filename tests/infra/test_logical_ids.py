"""Logical ids of stateful resources never move: a changed id makes CloudFormation create a new,
empty resource and orphan the old one. The committed list is the contract; change it only on purpose
(`UPDATE_STATEFUL_IDS=1 make infra` rewrites it, and the diff is what a reviewer reads).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from constructs import Construct

from infra.logical_ids import StableIdStack, TransparentGroup, logical_id_of, logical_ids_in, make_logical_id
from tests.infra.conftest import Assembly

STATEFUL_TYPES = (
    "AWS::Athena::WorkGroup",
    "AWS::DynamoDB::Table",
    "AWS::Glue::Database",
    "AWS::Glue::Table",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::S3::Bucket",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::SecretsManager::Secret",
    "AWS::SQS::Queue",
)
COMMITTED = Path(__file__).with_name("stateful_logical_ids.json")


def stateful_ids(assembly: Assembly) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    # The environment stages and the top-level stacks (the delivery pipeline's, in the shared synth).
    manifests = [*sorted(assembly.outdir.glob("assembly-*/manifest.json")), assembly.outdir / "manifest.json"]
    for manifest_file in manifests:
        for artifact in json.loads(manifest_file.read_text())["artifacts"].values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            template = json.loads((manifest_file.parent / artifact["properties"]["templateFile"]).read_text())
            found[artifact["displayName"]] = {
                logical_id: resource["Type"]
                for logical_id, resource in sorted(template["Resources"].items())
                if resource["Type"] in STATEFUL_TYPES
            }
    return dict(sorted(found.items()))


def test_stateful_logical_ids_match_the_committed_list(assembly: Assembly) -> None:
    current = stateful_ids(assembly)
    if os.environ.get("UPDATE_STATEFUL_IDS") == "1":
        COMMITTED.write_text(json.dumps(current, indent=2) + "\n")
    committed = json.loads(COMMITTED.read_text())
    for stack in sorted(set(committed) | set(current)):
        was, now = committed.get(stack, {}), current.get(stack, {})
        moved = sorted(set(was) - set(now))
        assert not moved, f"{stack}: stateful resources lost their logical id (would be replaced): {moved}"
        added = sorted(set(now) - set(was))
        assert not added, f"{stack}: new stateful resources {added}: add them to {COMMITTED.name} on purpose"


def _elements(scope: Construct) -> Iterator[cdk.CfnElement]:
    for child in scope.node.find_all():
        if isinstance(child, cdk.CfnElement):
            yield child


@pytest.mark.parametrize(
    "path",
    [
        ["Bucket"],
        ["Zones", "Raw", "Bucket"],
        ["Default", "Inner"],
        ["Raw", "RawCdr"],  # a component ending with the next one is dropped from the readable part
        ["Odd-Name.With_Chars", "X" * 300],
        ["Y" * 300],
    ],
)
def test_make_logical_id_is_cdks_scheme(path: list[str]) -> None:
    stack = cdk.Stack(cdk.App(), "Probe")
    scope: Construct = stack
    for part in path:
        scope = Construct(scope, part)
    element = s3.CfnBucket(scope, "Resource")
    components = element.node.path.split("/")[1:]
    assert make_logical_id(components) == stack.resolve(stack.get_logical_id(element))


def test_transparent_group_keeps_ids_and_plain_stack_refuses_it() -> None:
    app = cdk.App()
    flat = StableIdStack(app, "Flat")
    s3.CfnBucket(flat, "Raw")
    grouped = StableIdStack(app, "Grouped")
    group = TransparentGroup(grouped, "Zones")
    s3.CfnBucket(group, "Raw")
    assert [logical_id_of(e) for st in (flat, grouped) for e in _elements(st)] == ["Raw", "Raw"]
    s3.CfnBucket(Construct(group, "AddedLater"), "Resource")  # e.g. a policy a grant adds after construction
    templates = [Template.from_stack(st).to_json()["Resources"] for st in (flat, grouped)]
    assert [sorted(t) for t in templates] == [["Raw"], [make_logical_id(["AddedLater", "Resource"]), "Raw"]]
    with pytest.raises(TypeError, match="must live in a StableIdStack"):
        TransparentGroup(cdk.Stack(app, "Plain"), "Zones")


def test_logical_ids_in_a_stack_are_those_its_template_will_have() -> None:
    app = cdk.App()
    grouped = StableIdStack(app, "Grouped")
    s3.CfnBucket(grouped, "Plain")
    s3.CfnBucket(TransparentGroup(grouped, "Zones"), "Raw")
    s3.Bucket(grouped, "Versioned", versioned=True)
    plain = cdk.Stack(app, "Plain")
    s3.Bucket(plain, "Bucket")
    cdk.CfnOutput(plain, "Name", value="x")
    for stack in (grouped, plain):
        found = logical_ids_in(stack)  # before synth, as the serving grants ask
        template = Template.from_stack(stack).to_json()
        assert set(template["Resources"]) <= found
        assert found <= {key for section in template.values() if isinstance(section, dict) for key in section}
    assert "Raw" in logical_ids_in(grouped)

