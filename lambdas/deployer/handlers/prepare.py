"""Lambda handler: the `prepare` state of the deployer state machine (logic in deployer.steps.prepare)."""

from __future__ import annotations

from .. import steps
from ._wrap import state_handler

handler = state_handler(steps.prepare)
