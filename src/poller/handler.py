"""The Lambda handler. It only wires: config -> the container's runtime (built once) -> one
run -> logs, metrics and the summary."""

from __future__ import annotations

import functools
import logging
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
from .systemic import Cause, SystemicFailure

SERVICE = "sqs-airtable-poller"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or telemetry.NAMESPACE)
log = logging.getLogger(__name__)


@functools.cache
def _route_core_logs() -> None:
    """The core's loggers (`poller.*`) write through the Powertools JSON formatter."""
    copy_config_to_registered_loggers(source_logger=logger, include={"poller"})


@functools.lru_cache(maxsize=4)
def runtime(config: Config) -> Runtime:
    """Built once per container and configuration; not cached when it raises."""
    import boto3
    from botocore.config import Config as BotoConfig

    boto = BotoConfig(
        connect_timeout=3, read_timeout=config.wait_time_seconds + 10, retries={"mode": "standard"}
    )
    ssm = boto3.client("ssm", config=boto) if config.pace_parameter_prefix else None
    for warning in config.warnings:
        log.warning(warning)
    return Runtime(
        config,
        sqs=boto3.client("sqs", config=boto),
        ssm=ssm,
        s3=lambda: boto3.client("s3", config=boto),
    )


def load_config(env: Mapping[str, str] | None = None) -> Config:
    try:
        return Config.from_env(os.environ if env is None else env)
    except ConfigErrors as exc:
        logger.error(
            "configuration is invalid; no message was touched",
            extra={"problems": [str(e) for e in exc.errors]},
        )
        raise


def report(failure: SystemicFailure) -> None:
    """The line an operator (and `poller status`) reads: the cause, what was seen, the fix.
    A base's capacity needs no one (the backlog waits): a warning."""
    log = logger.warning if failure.cause is Cause.CAPACITY else logger.error
    log(
        f"systemic failure: {failure.describe()}",
        extra={
            "systemic_cause": str(failure.cause),
            "route": failure.route,
            "detail": failure.detail,
            "fix": failure.fix,
        },
    )


@logger.inject_lambda_context(clear_state=True)
@telemetry.log_metrics(metrics)
def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, object]:
    """Drain the queue until it is empty or the Lambda is close to its time limit."""
    _route_core_logs()
    logs.install(logger)
    config = load_config()
    logs.install(logger, wire_debug=config.wire_debug, secrets=(config.token,))
    try:
        container = runtime(config)
        result = container.run(context.get_remaining_time_in_millis)
    except TokenNotConfiguredError as exc:
        logger.warning(str(exc))
        telemetry.publish(metrics, logger.service, None, [])
        return {**RunSummary(stopped_because="not_configured").to_dict(), "error": str(exc)}
    for failure in result.failures:
        report(failure)
    telemetry.publish(
        metrics,
        logger.service,
        result.summary,
        result.failures,
        result.requests_by_base,
        _month(container, config),
    )
    return _outcome(result)


def _month(container: Runtime, config: Config) -> int | None:
    return sum(container.requests_this_month().values()) if config.pace_parameter_prefix else None


def _outcome(result: RunResult) -> dict[str, object]:
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
