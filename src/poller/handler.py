"""The Lambda handler. It only wires: config -> the container's runtime (built once) -> one
run -> logs, metrics and the summary."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from . import logs, telemetry
from .config import Config
from .credentials import TokenNotConfiguredError
from .errors import ConfigErrors, RunFailedError
from .runtime import RunResult, Runtime
from .summary import RunSummary

SERVICE = "sqs-airtable-poller"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or telemetry.NAMESPACE)


@functools.cache
def _route_core_logs() -> None:
    """The core's loggers (`poller.*`) write through the Powertools JSON formatter."""
    copy_config_to_registered_loggers(source_logger=logger, include={"poller"})


@functools.lru_cache(maxsize=4)
def runtime(config: Config) -> Runtime:
    """Built once per container and configuration; not cached when it raises."""
    return Runtime.on_aws(config)


def load_config() -> Config:
    try:
        return Config.from_env(os.environ)
    except ConfigErrors as exc:
        logger.error(
            "configuration is invalid; no message was touched",
            extra={"problems": [str(e) for e in exc.errors]},
        )
        raise


@logger.inject_lambda_context(clear_state=True)
@telemetry.log_metrics(metrics)
def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, object]:
    """Drain the queue until it is empty or the Lambda is close to its time limit."""
    _route_core_logs()
    logs.install(logger)
    config = load_config()
    logs.install(logger, wire_debug=config.wire_debug, secrets=(config.token,))
    try:
        result = runtime(config).run(context.get_remaining_time_in_millis)
    except TokenNotConfiguredError as exc:
        logger.warning(str(exc))
        telemetry.publish(metrics, logger.service, None, [])
        return {**RunSummary(stopped_because="not_configured").to_dict(), "error": str(exc)}
    telemetry.report(logger, result.failures)
    telemetry.publish(
        metrics,
        logger.service,
        result.summary,
        result.failures,
        result.requests_by_base,
        result.this_month,
    )
    return _outcome(result)


def _outcome(result: RunResult) -> dict[str, object]:
    """The summary; raises RunFailedError (the invocation fails) when the run stopped on an
    error or a systemic failure, or the dead-letter queue is missing."""
    summary = result.summary.to_dict()
    if result.dead_letter_queue_missing:
        message = "DEAD_LETTER_QUEUE_URL names a queue that does not exist: poison stays in the source queue"
        logger.error(message, extra={"summary": summary})
        raise RunFailedError(message, summary)
    if result.summary.stopped_because in ("error", "systemic"):
        logger.error("run stopped on an error", extra={"summary": summary})
        raise RunFailedError(f"run stopped: {result.summary.error}", summary)
    logger.info("run finished", extra={"summary": summary})
    return summary
