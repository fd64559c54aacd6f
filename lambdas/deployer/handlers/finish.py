"""Lambda handler: the `finish` state of the deployer state machine (logic in deployer.steps.finish)."""

from __future__ import annotations

from .. import steps
from ._wrap import state_handler

handler = state_handler(steps.finish)
