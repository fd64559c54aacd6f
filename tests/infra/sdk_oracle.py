"""One process renders every pipeline with the SageMaker Python SDK 3, the oracle of the definition format.

Importing the SDK costs seconds, so the test session starts this module once (`sdk_oracle` fixture) and
sends it one JSON line per request, `[kind, request]`, answered by one JSON line, `{"ok": {env: definition}}`
or `{"error": traceback}`. The kinds are the renderers below; each module also runs alone
(`python -m <module> <request.json>`). The SDK's offline settings (tests.infra.pipeline_sdk) are set before
it is imported. Never imported at synth.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import traceback
from typing import Any

from tests.conftest import ROOT
from tests.infra.pipeline_sdk import go_offline

RENDERERS = {
    "churn": "tests.infra.pipeline_sdk",
    "scoring": "tests.infra.test_batch_scoring_sdk",
    "drift": "tests.infra.drift_pipeline_sdk",
}


def serve() -> int:
    go_offline()
    for line in sys.stdin:
        kind, request = json.loads(line)
        try:
            answer: dict[str, Any] = {"ok": importlib.import_module(RENDERERS[kind]).render_definitions(request)}
        except Exception:
            answer = {"error": traceback.format_exc()}
        print(json.dumps(answer), flush=True)
    return 0


class SdkOracle:
    """The client side: `render(kind, request)` returns {env: definition} as the SDK writes it."""

    def __init__(self) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.infra.sdk_oracle"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def render(self, kind: str, request: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps([kind, request]) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise AssertionError(f"the SDK oracle process ended: {self._stderr.read()[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"the SDK could not render the {kind} pipeline:\n{answer['error'][-3000:]}")
        result: dict[str, Any] = answer["ok"]
        return result

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._stderr.close()


if __name__ == "__main__":
    sys.exit(serve())
