"""InferenceId: how a scored request names its subscriber and scoring date, so that later labels join it.

SageMaker's InvokeEndpoint takes an InferenceId of 1 to 64 printable characters and keeps it in data
capture (eventMetadata.inferenceId). The lake's pseudonymised subscriber ids are 64 hex characters
(HMAC-SHA256), so `<id>:<YYYY-MM-DD>` would not fit: the InferenceId carries the id's first 53
characters, `<subscriber part>:<YYYY-MM-DD>`, exactly 64 characters for a pseudonym (212 bits of the HMAC:
no collision in practice). Shorter ids are used whole. Clients, the labels feed, the drift job's join and
the erasure job all go through this module, so they agree on the cut.
"""

from __future__ import annotations

import re
from datetime import date

MAX_LENGTH = 64  # InvokeEndpoint's InferenceId
SUBSCRIBER_CHARS = MAX_LENGTH - len(":YYYY-MM-DD")
PATTERN = re.compile(r"^(.+):([0-9]{4}-[0-9]{2}-[0-9]{2})$")


def subscriber_part(subscriber_id: str) -> str:
    """The part of `subscriber_id` an InferenceId carries."""
    return subscriber_id[:SUBSCRIBER_CHARS]


def make(subscriber_id: str, scoring_date: date | str) -> str:
    """The InferenceId of `subscriber_id` scored on `scoring_date` (a date or YYYY-MM-DD)."""
    day = scoring_date.isoformat() if isinstance(scoring_date, date) else scoring_date
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day):
        raise ValueError(f"scoring date {day!r} is not YYYY-MM-DD")
    if not subscriber_id or ":" in subscriber_id or not subscriber_id.isprintable():
        raise ValueError(f"subscriber id {subscriber_id!r} must be printable, non-empty and without ':'")
    return f"{subscriber_part(subscriber_id)}:{day}"


def belongs_to(inference_id: str, subscriber_id: str) -> bool:
    """Whether `inference_id` names `subscriber_id` (any scoring date)."""
    return inference_id.startswith(f"{subscriber_part(subscriber_id)}:")
