from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from etl import EtlError
from etl.pseudonymise import (
    DEV_PSEUDONYMISATION_KEY,
    hmac_hex,
    hmac_hex_col,
    key_from_secret_value,
    load_key_from_secret,
    resolve_key,
)

VALUES = ["1", "7043", "  42 ", "+15551234567", "Zoë-ü-東京", "x" * 500, "", None]
KEYS = [b"sixteen-byte-key", b"k" * 64, b"long-key-" * 20, bytes(range(256))[:80]]


def _reference(value: str | None, key: bytes) -> str | None:
    if value is None:
        return None
    return hmac.new(key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()


@pytest.mark.spark
@pytest.mark.parametrize("key", KEYS, ids=["16B", "64B-block", "180B-hashed", "80B-binary"])
def test_spark_hmac_matches_python_hmac(spark, key: bytes) -> None:
    df = spark.createDataFrame([(v,) for v in VALUES], "v string")
    got = {r["v"]: r["h"] for r in df.select("v", hmac_hex_col("v", key).alias("h")).collect()}
    for v in VALUES:
        assert got[v] == _reference(v, key), v
    assert got["  42 "] == got.get("42", _reference("42", key))  # trimmed before hashing
    assert got[None] is None
    assert all(len(h) == 64 for h in got.values() if h is not None)


def test_python_helper_matches_hmac_and_distinguishes_keys() -> None:
    assert hmac_hex(" 1 ", DEV_PSEUDONYMISATION_KEY) == _reference("1", DEV_PSEUDONYMISATION_KEY)
    assert hmac_hex("1", b"another-key-0123456") != hmac_hex("1", DEV_PSEUDONYMISATION_KEY)
    assert hmac_hex(None, DEV_PSEUDONYMISATION_KEY) is None


def test_short_key_rejected() -> None:
    with pytest.raises(EtlError, match="at least 16 bytes"):
        hmac_hex("1", b"short")


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ({"SecretString": "a-plain-secret-string-123"}, b"a-plain-secret-string-123"),
        ({"SecretString": json.dumps({"key": "json-key-field-0123456"})}, b"json-key-field-0123456"),
        ({"SecretString": json.dumps({"password": "single-field-abcdefgh"})}, b"single-field-abcdefgh"),
        ({"SecretBinary": b"\x00\x01binary-key-bytes!!"}, b"\x00\x01binary-key-bytes!!"),
    ],
)
def test_key_from_secret_value(secret: dict, expected: bytes) -> None:
    assert key_from_secret_value(secret, "s") == expected


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({"SecretString": "short"}, "shorter than 16 bytes"),
        ({"SecretString": json.dumps({"a": "x" * 20, "b": "y" * 20})}, "expected a 'key' field"),
        ({}, "neither SecretString nor SecretBinary"),
    ],
)
def test_key_from_secret_value_errors(secret: dict, message: str) -> None:
    with pytest.raises(EtlError, match=message):
        key_from_secret_value(secret, "my-secret")


class _FakeSecrets:
    def __init__(self, value: dict | Exception) -> None:
        self.value = value
        self.asked: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict:
        self.asked.append(SecretId)
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


def test_resolve_key_sources() -> None:
    client = _FakeSecrets({"SecretString": "from-secrets-manager-key"})
    expected = (b"from-secrets-manager-key", "secretsmanager:ml/pseudo")
    assert resolve_key("ml/pseudo", False, client) == expected
    assert client.asked == ["ml/pseudo"]
    assert resolve_key(None, True) == (DEV_PSEUDONYMISATION_KEY, "local-dev-key")
    with pytest.raises(EtlError, match="--allow_dev_key true"):
        resolve_key(None, False)
    with pytest.raises(EtlError, match="cannot read pseudonymisation secret 'gone'"):
        load_key_from_secret("gone", _FakeSecrets(RuntimeError("ResourceNotFoundException")))
