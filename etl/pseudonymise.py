"""Keyed pseudonymisation of PII: HMAC-SHA256, hex encoded (64 lowercase hex characters).

The Spark version is built only from Spark SQL built-ins (sha2, unhex, concat), so it runs
in the JVM with no Python UDF round-trip:

    HMAC(K, m) = SHA256((K' xor opad) || SHA256((K' xor ipad) || m))

where K' is the key zero-padded to the SHA-256 block size (64 bytes), or SHA256(K) padded
when the key is longer than a block (RFC 2104). The two padded keys are computed once in
the driver and enter the plan as binary literals. Values are hashed as their UTF-8 bytes
after trimming surrounding whitespace; null stays null.

Keys: the Glue jobs read the key from AWS Secrets Manager (`load_key_from_secret`); local
runs and tests use DEV_PSEUDONYMISATION_KEY, which is public and must never be used for
real subscriber data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from etl import EtlError

DEV_PSEUDONYMISATION_KEY = b"LOCAL-DEV-ONLY-not-a-secret-telecom-ml-pseudonymisation-key"
MIN_KEY_BYTES = 16
_BLOCK = 64  # SHA-256 block size in bytes


def _padded_keys(key: bytes) -> tuple[bytes, bytes]:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise EtlError(f"pseudonymisation key must be at least {MIN_KEY_BYTES} bytes")
    k = hashlib.sha256(key).digest() if len(key) > _BLOCK else bytes(key)
    k = k.ljust(_BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def hmac_hex(value: str | None, key: bytes) -> str | None:
    """Python reference implementation (same trimming/null rules as the Spark column)."""
    if value is None:
        return None
    _padded_keys(key)  # same key validation as the Spark path
    return hmac.new(key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()


def hmac_hex_col(col: Column | str, key: bytes) -> Column:
    """Spark column: HMAC-SHA256(key, trim(col)) as lowercase hex; null for null input."""
    inner_key, outer_key = _padded_keys(key)
    c = F.col(col) if isinstance(col, str) else col
    message = F.trim(c.cast("string")).cast("binary")
    inner = F.sha2(F.concat(F.lit(inner_key), message), 256)
    outer = F.sha2(F.concat(F.lit(outer_key), F.unhex(inner)), 256)
    return F.when(c.isNull(), F.lit(None).cast("string")).otherwise(outer)


def key_from_secret_value(secret: dict[str, Any], secret_id: str) -> bytes:
    """Turn a Secrets Manager GetSecretValue response into key bytes.

    SecretBinary is used as is. SecretString may be a JSON object - its `key` field is used,
    or its only field when there is exactly one (what CDK `generateSecretString` with
    `generateStringKey` produces) - or any other string, used as its UTF-8 bytes.
    """
    if secret.get("SecretBinary") is not None:
        key = bytes(secret["SecretBinary"])
    else:
        text = secret.get("SecretString")
        if not text:
            raise EtlError(f"secret '{secret_id}' has neither SecretString nor SecretBinary")
        key = text.encode("utf-8")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            if "key" in obj:
                key = str(obj["key"]).encode("utf-8")
            elif len(obj) == 1:
                key = str(next(iter(obj.values()))).encode("utf-8")
            else:
                raise EtlError(f"secret '{secret_id}' is a JSON object with fields {sorted(obj)}; "
                               "expected a 'key' field")
    if len(key) < MIN_KEY_BYTES:
        raise EtlError(f"secret '{secret_id}' holds a key shorter than {MIN_KEY_BYTES} bytes")
    return key


def load_key_from_secret(secret_id: str, client: Any = None) -> bytes:
    """Read the pseudonymisation key from AWS Secrets Manager (boto3, imported lazily)."""
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except Exception as exc:
        raise EtlError(f"cannot read pseudonymisation secret '{secret_id}': {exc}") from exc
    return key_from_secret_value(response, secret_id)


def resolve_key(secret_id: str | None, allow_dev_key: bool, client: Any = None) -> tuple[bytes, str]:
    """The key to use and a label for run summaries ('secretsmanager:<id>' or 'local-dev-key')."""
    if secret_id:
        return load_key_from_secret(secret_id, client), f"secretsmanager:{secret_id}"
    if allow_dev_key:
        return DEV_PSEUDONYMISATION_KEY, "local-dev-key"
    raise EtlError("no --pseudonymisation_secret_id given; pass one, or --allow_dev_key true "
                   "for local/test runs with the public development key")
