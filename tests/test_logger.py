"""ember.log: Pyro's package logger, the parent of every Ember module's logger."""

from __future__ import annotations

import logging

import pyro.logger

import ember
from ember import logger


def test_the_package_logger_is_set_up_like_pyros() -> None:
    assert ember.log is logger.log is logging.getLogger("ember")
    assert ember.log.level == pyro.logger.log.level == logging.INFO
    assert logger.default_format == pyro.logger.default_format
    # Whether it got its own handler depends on the root logger's state at import (as in Pyro).
    if not ember.log.propagate:
        (handler,) = [h for h in ember.log.handlers if type(h) is logging.StreamHandler]
        assert handler.formatter is not None and handler.formatter._fmt == logger.default_format


def test_module_loggers_log_under_it() -> None:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.name}: {record.getMessage()}")

    handler = Collect()
    ember.log.addHandler(handler)
    try:
        logging.getLogger("ember.infer.elbo").info("Guessed max_plate_nesting = %s", 2)
        logging.getLogger("ember.infer.elbo").debug("hidden at INFO")
    finally:
        ember.log.removeHandler(handler)
    assert seen == ["ember.infer.elbo: Guessed max_plate_nesting = 2"]
