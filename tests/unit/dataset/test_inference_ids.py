"""InferenceIds fit SageMaker's 64 characters for the lake's 64-hex pseudonyms, and name their subscriber."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest

from dataset import inference_ids

PSEUDONYM = hashlib.sha256(b"7590-VHVEG").hexdigest()


def test_a_pseudonymised_id_gives_exactly_sixty_four_characters() -> None:
    made = inference_ids.make(PSEUDONYM, date(2026, 11, 27))
    assert len(made) == inference_ids.MAX_LENGTH == 64
    assert made == f"{PSEUDONYM[:53]}:2026-11-27"
    assert inference_ids.belongs_to(made, PSEUDONYM)
    assert not inference_ids.belongs_to(made, hashlib.sha256(b"other").hexdigest())


def test_short_ids_are_used_whole() -> None:
    assert inference_ids.make("7590-VHVEG", "2026-11-27") == "7590-VHVEG:2026-11-27"
    assert inference_ids.belongs_to("7590-VHVEG:2026-11-27", "7590-VHVEG")
    assert not inference_ids.belongs_to("7590-VHVEGX:2026-11-27", "7590-VHVEG")


@pytest.mark.parametrize(
    "subscriber,day,message",
    [
        ("", "2026-11-27", "subscriber id"),
        ("a:b", "2026-11-27", "subscriber id"),
        ("a\n", "2026-11-27", "subscriber id"),
        ("abc", "27/11/2026", "scoring date"),
    ],
)
def test_bad_parts_are_refused_naming_them(subscriber: str, day: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        inference_ids.make(subscriber, day)
