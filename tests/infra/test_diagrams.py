"""Architecture diagrams from the synthesized templates (infra/diagram, `make diagram`).

The committed DOT must be what the session synth gives (the SVG is rendered from it and not compared: it
carries Graphviz's version); a change to a template changes the DOT; the graph builder on small hand-made
templates finds references, grants, events, cross-stack outputs and aggregates.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.diagram.__main__ import main as diagram_main
from infra.diagram.__main__ import render_all
from infra.diagram.assembly import DiagramError, StackTemplate, Stage, load_stage
from infra.diagram.dot import overview_to_dot, to_dot
from infra.diagram.graph import Edge, build, layer_view
from infra.diagram.layers import DEFAULT_STAGE, LAYERS, Layer
from infra.diagram.overview import overview
from tests.conftest import ROOT
from tests.infra.conftest import Assembly

DIAGRAMS = ROOT / "docs" / "diagrams"


def test_committed_diagrams_match_the_templates(assembly: Assembly) -> None:
    generated = render_all(assembly.outdir)
    stale = [
        name
        for name, source in generated.items()
        if not (DIAGRAMS / name).exists() or (DIAGRAMS / name).read_text() != source
    ]
    assert not stale, f"docs/diagrams/{', '.join(stale)} no longer match the templates: run make diagram"
    unknown = sorted(p.name for p in DIAGRAMS.glob("*.dot") if p.name not in generated)
    assert not unknown, f"docs/diagrams/{', '.join(unknown)}: no layer writes these (infra/diagram/layers.py)"
    missing_svg = sorted(name for name in generated if not (DIAGRAMS / name).with_suffix(".svg").exists())
    assert not missing_svg, f"no SVG beside docs/diagrams/{', '.join(missing_svg)}: run make diagram"


def test_the_readme_shows_every_layer() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("overview", *(layer.file for layer in LAYERS)):
        assert f"docs/diagrams/{name}.svg" in readme, f"README.md does not show the {name} diagram"


def _copy_stage(assembly: Assembly, destination: Path) -> Path:
    destination.mkdir()
    for name in ("manifest.json", "tree.json"):
        shutil.copy(assembly.outdir / name, destination / name)
    shutil.copytree(assembly.stage_dir(DEFAULT_STAGE), destination / f"assembly-{DEFAULT_STAGE}")
    return destination


def test_a_removed_resource_changes_the_diagram(assembly: Assembly, tmp_path: Path) -> None:
    copy = _copy_stage(assembly, tmp_path / "cdk.out")
    before = render_all(copy)
    assert '"DataLake/Etl/BuildFeatures/Job"' in before["lake.dot"]
    template_file = next((copy / f"assembly-{DEFAULT_STAGE}").glob(f"{DEFAULT_STAGE}DataLake*.template.json"))
    template = json.loads(template_file.read_text())
    paths = load_stage(copy, DEFAULT_STAGE).stack("DataLake").paths
    job = next(k for k, path in paths.items() if path == f"{DEFAULT_STAGE}/DataLake/Etl/BuildFeatures/Job")
    del template["Resources"][job]
    template_file.write_text(json.dumps(template))

    after = render_all(copy)
    assert after["lake.dot"] != before["lake.dot"]
    assert "BuildFeatures/Job" not in after["lake.dot"]
    assert after["serving.dot"] == before["serving.dot"]  # the job is in no other layer


def test_the_cli_writes_one_dot_per_layer_and_names_a_missing_assembly(
    assembly: Assembly, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert diagram_main([str(assembly.outdir), str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(["overview.dot", *(f"{layer.file}.dot" for layer in LAYERS)])

    assert diagram_main([str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 1
    assert "manifest.json: missing; run `make synth`" in capsys.readouterr().err
    assert diagram_main([str(assembly.outdir), str(tmp_path / "out"), "--stage", "Qa"]) == 1
    assert "no stage 'Qa' (stages: Dev, Prod, Staging)" in capsys.readouterr().err


# --- the graph builder on hand-made templates -------------------------------------------------------------


def _resource(kind: str, path: str, **properties: Any) -> dict[str, Any]:
    return {"Type": kind, "Properties": properties, "Metadata": {"aws:cdk:path": f"Test/{path}"}}


def _tiny_stage() -> Stage:
    base = {
        "Resources": {
            "Key": _resource("AWS::KMS::Key", "Base/Key/Resource", KeyPolicy={"Statement": []}),
            "Data": _resource(
                "AWS::S3::Bucket",
                "Base/Data/Bucket/Resource",
                BucketEncryption={
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]}}}
                    ]
                },
            ),
            "Ops": _resource("AWS::SNS::Topic", "Base/Ops/Topic/Resource", TopicName="test-ops"),
            "LogGroup": _resource("AWS::Logs::LogGroup", "Base/Logs/Resource"),
        },
        "Outputs": {
            "DataArn": {"Value": {"Fn::GetAtt": ["Data", "Arn"]}},
            "DataName": {"Value": {"Ref": "Data"}, "Export": {"Name": "Test-Base:DataName"}},
            "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}},
        },
    }
    data_arn = {"Fn::GetStackOutput": {"StackName": "Test-Base", "OutputName": "DataArn", "Region": "eu-west-1"}}
    key_arn = {"Fn::GetStackOutput": {"StackName": "Test-Base", "OutputName": "KeyArn", "Region": "eu-west-1"}}
    app = {
        "Resources": {
            "HandlerRole": _resource("AWS::IAM::Role", "App/Handler/Role/Resource"),
            "HandlerPolicy": _resource(
                "AWS::IAM::Policy",
                "App/Handler/Role/DefaultPolicy/Resource",
                Roles=[{"Ref": "HandlerRole"}],
                PolicyDocument={
                    "Statement": [
                        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Join": ["", [data_arn, "/*"]]}},
                        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn},
                    ]
                },
            ),
            "Handler": _resource(
                "AWS::Lambda::Function",
                "App/Handler/Function/Resource",
                Role={"Fn::GetAtt": ["HandlerRole", "Arn"]},
                Environment={"Variables": {"PIPELINE": "test-train", "LOGS": {"Ref": "LogGroup"}}},
            ),
            "OnUpload": _resource(
                "AWS::Events::Rule",
                "App/OnUpload/Resource",
                EventPattern={"detail": {"bucket": {"name": [{"Fn::ImportValue": "Test-Base:DataName"}]}}},
                Targets=[{"Id": "1", "Arn": {"Fn::GetAtt": ["Handler", "Arn"]}}],
            ),
            "Train": _resource("AWS::SageMaker::Pipeline", "App/Train/Pipeline", PipelineName="test-train"),
            "HighAlarm": _resource(
                "AWS::CloudWatch::Alarm",
                "App/Alarms/High/Resource",
                AlarmActions=[{"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:test-ops"}],
                Dimensions=[{"Name": "FunctionName", "Value": {"Ref": "Handler"}}],
            ),
            "LowAlarm": _resource("AWS::CloudWatch::Alarm", "App/Alarms/Low/Resource", AlarmName="test-low"),
            "LogGroup": _resource("AWS::Logs::LogGroup", "App/Handler/Logs/Resource"),
        },
    }
    return Stage(
        "Test",
        "123456789012",
        "eu-west-1",
        (StackTemplate("Base", "Test-Base", base), StackTemplate("App", "Test-App", app)),
    )


def test_graph_of_hand_made_templates() -> None:
    graph = build(_tiny_stage())

    assert sorted(graph.nodes) == [
        "App/Alarms/cloudwatch-alarms",
        "App/Handler/Function",
        "App/OnUpload",
        "App/Train/Pipeline",
        "Base/Data/Bucket",
        "Base/Key",
        "Base/Ops/Topic",
    ]  # roles, policies and log groups are not drawn
    alarms = graph.nodes["App/Alarms/cloudwatch-alarms"]
    assert (alarms.name, alarms.kind) == ("Alarms", "2 CloudWatch alarms")
    assert graph.nodes["App/Handler/Function"].name == "Handler"
    assert graph.edges == {
        # through the unnamed role to what its policy grants, via the other stack's outputs
        Edge("App/Handler/Function", "Base/Data/Bucket", "IAM", "App"),
        Edge("App/Handler/Function", "Base/Key", "IAM", "App"),
        # a name in an environment variable
        Edge("App/Handler/Function", "App/Train/Pipeline", "env", "App"),
        # the bucket the rule's pattern matches (an import) sends to the rule, drawn in both stacks' layers
        Edge("Base/Data/Bucket", "App/OnUpload", "event", "App"),
        Edge("Base/Data/Bucket", "App/OnUpload", "event", "Base"),
        Edge("App/OnUpload", "App/Handler/Function", "ref", "App"),  # the rule's target
        Edge("App/Alarms/cloudwatch-alarms", "Base/Ops/Topic", "ref", "App"),  # the topic's ARN in a Fn::Sub
        Edge("App/Handler/Function", "App/Alarms/cloudwatch-alarms", "metric", "App"),  # what the alarm watches
        Edge("Base/Data/Bucket", "Base/Key", "ref", "Base"),
    }


def test_layer_view_folds_other_stacks_keys_and_draws_what_the_layer_declares() -> None:
    graph = build(_tiny_stage())
    app = layer_view(graph, Layer("app", "app", ("App",)))
    base = layer_view(graph, Layer("base", "base", ("Base",)))

    assert [n.id for n in app.nodes] == [
        "App/Alarms/cloudwatch-alarms",
        "App/Handler/Function",
        "App/OnUpload",
        "App/Train/Pipeline",
        "Base/Data/Bucket",
        "Base/Ops/Topic",
    ]  # the key is another stack's: written on the function instead of drawn
    assert app.notes == {"App/Handler/Function": ("KMS: Key",)}
    assert ("App/Handler/Function", "Base/Data/Bucket", ("IAM",)) in app.edges
    assert [n.id for n in base.nodes] == ["App/OnUpload", "Base/Data/Bucket", "Base/Key", "Base/Ops/Topic"]
    assert base.edges == (("Base/Data/Bucket", "App/OnUpload", ("event",)), ("Base/Data/Bucket", "Base/Key", ("ref",)))


def test_dot_is_deterministic_and_marks_grants_events_and_other_stacks() -> None:
    view = layer_view(build(_tiny_stage()), Layer("app", "app", ("App",)))
    source = to_dot(view)

    assert source == to_dot(layer_view(build(_tiny_stage()), Layer("app", "app", ("App",))))
    assert "subgraph cluster_App {" in source and 'label="Base stack (referenced)"' in source
    assert '"App/Handler/Function" -> "Base/Data/Bucket" [style=dashed]' in source
    assert '"Base/Data/Bucket" -> "App/OnUpload" [label=event]' in source
    assert 'label="Handler\\nLambda function\\nKMS: Key"' in source
    assert "/work" not in source and str(ROOT) not in source


def test_overview_counts_what_each_stack_holds_and_the_references_between_stacks() -> None:
    view = overview(build(_tiny_stage()), ("Base", "App"))

    assert view.stacks == (
        ("Base", ("1 KMS key", "1 S3 bucket", "1 SNS topic")),
        ("App", ("2 CloudWatch alarms", "1 EventBridge rule", "1 Lambda function", "1 SageMaker pipeline")),
    )
    assert view.edges == (
        ("App", "Base", "3 references (2 IAM)"),  # function -> bucket and key (IAM), alarms -> topic
        ("Base", "App", "1 reference (1 event)"),
    )
    assert view == overview(build(_tiny_stage()), ("Base", "App"), kinds_shown=5)
    short = overview(build(_tiny_stage()), ("Base", "App"), kinds_shown=1)
    assert short.stacks[1] == ("App", ("2 CloudWatch alarms", "and 3 more"))
    assert 'App -> Base [label="3 references (2 IAM)"]' in overview_to_dot(view)


def test_unresolvable_cross_stack_reference_names_the_stack() -> None:
    stage = _tiny_stage()
    broken = {
        "Resources": {
            "Bad": _resource(
                "AWS::SQS::Queue",
                "App/Bad/Resource",
                KmsMasterKeyId={"Fn::GetStackOutput": {"StackName": "Test-Gone", "OutputName": "KeyArn"}},
            )
        }
    }
    with pytest.raises(DiagramError, match=r"stage Test, stack App: Fn::GetStackOutput .* names no output"):
        build(
            Stage(stage.name, stage.account, stage.region, (stage.stacks[0], StackTemplate("App", "Test-App", broken)))
        )


def test_load_stage_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DiagramError, match=r"manifest\.json: missing; run `make synth`"):
        load_stage(tmp_path, "Prod")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DiagramError, match=r"manifest\.json: not valid JSON"):
        load_stage(tmp_path, "Prod")


def test_custom_events_and_alarm_name_prefixes_reach_the_rules_that_match_them() -> None:
    definition = {
        "Fn::Join": [
            "",
            [
                '{"Parameters":{"Entries":[{"Source":"test.lake","DetailType":"Ready","Bus":"',
                {"Ref": "AWS::Region"},
                '"}]}}',
            ],
        ]
    }
    stack = {
        "Resources": {
            "Flow": _resource("AWS::StepFunctions::StateMachine", "Lake/Flow/Resource", DefinitionString=definition),
            "OnReady": _resource(
                "AWS::Events::Rule",
                "Lake/OnReady/Resource",
                EventPattern={"source": ["test.lake"], "detail-type": ["Ready"]},
            ),
            "OnOther": _resource(
                "AWS::Events::Rule",
                "Lake/OnOther/Resource",
                EventPattern={"source": ["test.lake"], "detail-type": ["Other"]},
            ),
            "Drift": _resource("AWS::CloudWatch::Alarm", "Lake/Retrain/Drift/Resource", AlarmName="test-retrain-a"),
            "Quiet": _resource("AWS::CloudWatch::Alarm", "Lake/Quiet/Resource", AlarmName="test-other"),
            "OnAlarm": _resource(
                "AWS::Events::Rule",
                "Lake/OnAlarm/Resource",
                EventPattern={"detail": {"alarmName": [{"prefix": "test-retrain-"}]}},
            ),
        }
    }
    graph = build(Stage("Test", "123456789012", "eu-west-1", (StackTemplate("Lake", "Test-Lake", stack),)))

    assert {(e.source, e.target, e.kind) for e in graph.edges} == {
        ("Lake/Flow", "Lake/OnReady", "event"),  # its definition sends that source and detail type
        ("Lake/Retrain/cloudwatch-alarms", "Lake/OnAlarm", "event"),  # the alarm whose name has the prefix
    }


def test_names_inside_a_substituted_json_document_are_references() -> None:
    body = '{"Steps":[{"Arguments":{"ModelPackageGroupName":"test-models","Output":"s3://${Out}/x"}}]}'
    stack = {
        "Resources": {
            "Out": _resource("AWS::S3::Bucket", "Ml/Out/Bucket/Resource"),
            "Models": _resource(
                "AWS::SageMaker::ModelPackageGroup", "Ml/Models/Group", ModelPackageGroupName="test-models"
            ),
            "Train": _resource(
                "AWS::SageMaker::Pipeline",
                "Ml/Train/Pipeline",
                PipelineName="test-models",
                PipelineDefinition={"PipelineDefinitionBody": {"Fn::Sub": [body, {"Out": {"Ref": "Out"}}]}},
            ),
        }
    }
    graph = build(Stage("Test", "123456789012", "eu-west-1", (StackTemplate("Ml", "Test-Ml", stack),)))

    # the pipeline shares the group's name: the key ("ModelPackageGroupName") says which one the document means
    assert {(e.source, e.target, e.kind) for e in graph.edges} == {
        ("Ml/Train/Pipeline", "Ml/Models/Group", "ref"),
        ("Ml/Train/Pipeline", "Ml/Out/Bucket", "ref"),
    }
