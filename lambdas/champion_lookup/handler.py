"""Lambda entry point of the pipeline's ChampionLookup step: parse, look up, answer (logic in lookup.py).

A bad request or an unusable champion raises: the Lambda step fails and the pipeline stops there, with
the message in the step's failure reason and in the function's log.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

import boto3

from lambdas.champion_lookup import lookup

# A named logger: its records reach the Lambda runtime's handler on the root logger, and importing this module
# leaves the root logger's level alone (setting it to INFO made every library's INFO records print in tests).
logger = logging.getLogger("champion_lookup")
logger.setLevel(logging.INFO)


@cache
def _sagemaker() -> Any:
    return boto3.client("sagemaker")


def handler(event: Any, _context: Any) -> dict[str, str]:
    request = lookup.Request.parse(event)
    champion = lookup.find_champion(_sagemaker(), request.group)
    result = lookup.outputs(request, champion)
    logger.info(json.dumps({"group": request.group, **result}))
    return result
