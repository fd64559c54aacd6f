"""The handler's logger is its own: importing it must not change what every other library logs."""

from __future__ import annotations

import importlib
import logging


def test_importing_the_handler_leaves_the_root_logger_alone() -> None:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.WARNING)
    try:
        import lambdas.champion_lookup.handler as handler

        importlib.reload(handler)
        assert root.level == logging.WARNING
        assert handler.logger.name == "champion_lookup" and handler.logger.getEffectiveLevel() == logging.INFO
    finally:
        root.setLevel(before)
