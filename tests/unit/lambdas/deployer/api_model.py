"""Validate a request against botocore's service model: shapes (ParamValidator) and enums, which
botocore does not check on the client side."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import ParamValidator

_SESSION = botocore.session.get_session()


def service_model(service: str) -> Any:
    return _SESSION.get_service_model(service)


def problems(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    shape = service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    found = [report.generate_report()] if report.has_errors() else []
    return found + _enum_problems(shape, params, operation)


def _enum_problems(shape: Shape, value: Any, path: str) -> list[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        members = shape.members
        return [p for k, v in value.items() if k in members for p in _enum_problems(members[k], v, f"{path}.{k}")]
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _enum_problems(shape.member, v, f"{path}[{i}]")]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return [p for k, v in value.items() for p in _enum_problems(shape.value, v, f"{path}.{k}")]
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        return [f"{path}: {value!r} is not one of {shape.name}'s {len(enum)} values"]
    return []


def enum_of(service: str, shape_name: str) -> list[str]:
    return list(service_model(service).shape_for(shape_name).enum)
