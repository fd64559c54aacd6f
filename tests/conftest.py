"""Test-wide settings: the jsii runtime runs on the project's pinned Node 22, boto3 sessions share
their parsed service models, and tests that share an expensive session fixture run on one xdist worker.

Groups (`make test` runs `pytest -n 2 --dist loadgroup`): every test under a folder of
XDIST_GROUPS is one unit of work, so its session fixtures run once per test session:
  tests/infra/  "synth"  the synthesized app (all environments) every infrastructure test reads
  tests/e2e/    "twin"   the two twin runs every end-to-end test reads (and their Spark session)

Why a scheduler and not only the `xdist_group` mark: pytest-xdist 3.8 groups by suffixing each
node id with "@<group>" (`item._nodeid`), which pytest 9 no longer reads (node ids live in
`item._id`), so the mark alone groups nothing and every worker ran each group's fixtures
(two synths, two of each twin run). The scheduler below groups by folder, from the node ids the
controller sees; a node id that does carry "@<group>" (a fixed xdist) is grouped by it as before.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_PINNED_NODE = ROOT / "node_modules" / ".bin" / "node"
if _PINNED_NODE.exists():
    os.environ.setdefault("JSII_NODE", str(_PINNED_NODE))
# The app turns CDK's built-in template validator off (app.new_app, cfn-lint is the gate); the small apps tests
# build for one construct do the same, so no test process compiles the validator's engine (1.6 s each).
os.environ.setdefault("CDK_VALIDATION", "false")
# A test process holds a million or more long-lived objects (aws_cdk's bindings, torch, pandas, pyspark, moto,
# the shared synth). Python's default runs a full collection, which walks all of them, every ten
# second-generation ones: about 20 per worker, 7 s of each worker's time. Every hundred: the same garbage is
# collected, later.
gc.set_threshold(700, 10, 100)


def _share_botocore_loaders() -> None:
    """Every boto3 session builds its own botocore loader, which parses the service models' JSON again, and
    moto starts every mocked test with a new default session: the suite parsed sagemaker's model hundreds
    of times (about half of the Lambda tests' time). Sessions in a test process share one loader per search
    path instead; the models are read-only data, already shared by every client of one session."""
    import botocore.loaders
    import botocore.session

    create = botocore.loaders.create_loader
    loaders: dict[str | None, botocore.loaders.Loader] = {}

    def shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in loaders:
            loaders[search_path_string] = create(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = shared_loader


_share_botocore_loaders()

XDIST_GROUPS = {"tests/infra/": "synth", "tests/e2e/": "twin"}
# Infrastructure tests that never read the shared synthesized app (config models, renderers, constructs
# synthesized alone, the app synthesized without acknowledgements): any free worker runs them.
SYNTH_FREE = (
    "tests/infra/test_config.py",
    "tests/infra/test_delivery_config.py",
    "tests/infra/test_ml_pipeline_config.py",
    "tests/infra/test_ml_pipeline_render.py",
    "tests/infra/test_monitoring_config.py",
    "tests/infra/test_monitoring_constructs.py",
    "tests/infra/test_retraining_config.py",
    "tests/infra/test_serving_config.py",
    "tests/infra/test_serving_constructs.py",
    "tests/infra/test_training_trigger.py",
    "tests/infra/test_compliance.py::test_every_acknowledgement_is_used",
)


@pytest.fixture
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials moto accepts, in eu-west-1, and no named profile: nothing reaches a real account."""
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def group_of(nodeid: str) -> str | None:
    if nodeid.startswith(SYNTH_FREE):
        return None
    return next((group for folder, group in XDIST_GROUPS.items() if nodeid.startswith(folder)), None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The mark says so where a test is read (and groups them once xdist reads marks again)."""
    for item in items:
        group = group_of(item.nodeid)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Collect the garbage once, then freeze what is left: at exit pytest's own unraisable-exception check and
    Python's finalization each walk every object still alive, which in a worker that ran the twin, Spark and
    the synth took 4 s after its last test (0.5 s so). Garbage made by the tests is still collected here,
    before pytest's check, so an exception raised in a finalizer is still reported."""
    gc.collect()
    gc.freeze()


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None  # xdist's own scheduler for every other --dist mode
    from xdist.scheduler import LoadGroupScheduling

    class FolderGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            if scope != nodeid:  # the node id carries "@<group>"
                return scope
            return group_of(nodeid) or nodeid

    return FolderGroupScheduling(config, log)
