"""Content-derived names for models and endpoint configurations (both immutable in SageMaker).

A name is `<endpoint>-m<version>-<hash>` / `<endpoint>-c<version>-<hash>`: the version makes it
readable, the hash of the request that creates it makes it unique per content. The same package
with the same config always maps to the same name (a retried step finds what it created); any
change of package or config gives a new name, never an in-place change of a fixed one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

HASH_CHARS = 12
MAX_NAME = 63


def content_hash(request: dict[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_CHARS]


def model_name(endpoint_name: str, version: int, request: dict[str, Any]) -> str:
    return _name(endpoint_name, "m", version, request)


def endpoint_config_name(endpoint_name: str, version: int, request: dict[str, Any]) -> str:
    return _name(endpoint_name, "c", version, request)


def _name(endpoint_name: str, kind: str, version: int, request: dict[str, Any]) -> str:
    body = {k: v for k, v in request.items() if k not in ("ModelName", "EndpointConfigName", "Tags")}
    name = f"{endpoint_name}-{kind}{version}-{content_hash(body)}"
    if len(name) > MAX_NAME:
        raise ValueError(f"'{name}' is longer than SageMaker's {MAX_NAME} characters")
    return name
