"""Lambda handler: the `follow_up` state of the deployer state machine (logic in deployer.steps.follow_up)."""

from __future__ import annotations

from .. import steps
from ._wrap import state_handler

handler = state_handler(steps.follow_up)
