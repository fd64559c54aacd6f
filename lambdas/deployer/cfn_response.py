"""Answer a CloudFormation custom resource request (the presigned ResponseURL), as cfn-response does."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def response_body(event: dict[str, Any], status: str, reason: str, physical_id: str) -> bytes:
    return json.dumps(
        {
            "Status": status,
            "Reason": reason[:3000],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": {},
        }
    ).encode()


def send(event: dict[str, Any], status: str, reason: str, physical_id: str) -> None:
    url = event["ResponseURL"]
    if not url.startswith("https://"):
        raise ValueError("ResponseURL must be an https:// presigned URL")
    body = response_body(event, status, reason, physical_id)
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
