"""Reading fields of a raw (YAML/JSON-decoded) schema document, with one-line SchemaErrors.

Every message starts with `where` (the file) and names the key's path inside it (`ctx`).
"""

from __future__ import annotations

from typing import Any

from dataset.schema_model import SchemaError


def mapping(raw: Any, where: str, ctx: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        label = ctx or "the document"
        raise SchemaError(f"{where}: {label} must be a mapping, got {type(raw).__name__}")
    return raw


def only_keys(obj: dict[str, Any], where: str, ctx: str, allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        prefix = f"{ctx}." if ctx else ""
        raise SchemaError(f"{where}: unknown key(s) {[prefix + k for k in unknown]}; allowed: {sorted(allowed)}")


def required(obj: dict[str, Any], key: str, where: str, ctx: str) -> Any:
    if key not in obj or obj[key] is None:
        prefix = f"{ctx}." if ctx else ""
        raise SchemaError(f"{where}: {prefix}{key} is required")
    return obj[key]


def text(obj: dict[str, Any], key: str, where: str, ctx: str) -> str:
    val = required(obj, key, where, ctx)
    if not isinstance(val, str) or not val.strip():
        prefix = f"{ctx}." if ctx else ""
        raise SchemaError(f"{where}: {prefix}{key} must be a non-empty string, got {val!r}")
    return val
