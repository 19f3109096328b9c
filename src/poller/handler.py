"""Lambda entry point. It only wires: config -> adapters (cached per container) -> drain."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from . import telemetry
from .config import Config
from .drain import Drain, RunSummary, Settings
from .errors import ConfigError, ConfigErrors, RunFailedError
from .mapping import Mapper
from .policies import Deadline, RateLimiter
from .schema import verify_at_start

SERVICE = "sqs-airtable-poller"
NAMESPACE = telemetry.NAMESPACE

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics()


@functools.cache
def _route_core_logs() -> None:
    """Send the core's stdlib loggers (`poller.*`, children of `poller`) through the
    Powertools JSON formatter, so that every line carries the request id."""
    logging.getLogger("poller")
    copy_config_to_registered_loggers(source_logger=logger, include={"poller"})


@dataclass(frozen=True)
class _Adapters:
    sqs: Any
    table: Any
    #: one limiter per base for the container's life: every request to the base takes a slot
    limiter: RateLimiter


@functools.lru_cache(maxsize=4)
def _adapters(config: Config) -> _Adapters:
    """The SQS client, the Airtable table and its rate limiter, built once per container and
    reused while warm.

    The token is read from Secrets Manager here, i.e. at cold start, and is never logged."""
    import boto3
    from botocore.config import Config as BotoConfig

    sqs = boto3.client(
        "sqs",
        config=BotoConfig(
            connect_timeout=3,
            read_timeout=config.tuning.wait_time_seconds + 10,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )
    limiter = RateLimiter(config.tuning.max_rps)
    table = airtable_table(config)
    # Once per cold start, before any receive: a table that does not fit FIELD_MAP/MERGE_ON
    # stops the run with one error listing every problem (SCHEMA_CHECK, README "The schema check").
    verify_at_start(
        table,
        config.table,
        config.field_map,
        config.merge_on,
        config.schema_check,
        limiter=limiter,
    )
    return _Adapters(sqs, table, limiter)


def airtable_table(config: Config) -> Any:
    """The pyairtable Table the config names, with the poller's timeouts and no retries."""
    from .airtable import make_table

    return make_table(
        token=read_token(config),
        base_id=config.base_id,
        table=config.table,
        api_url=config.api_url,
        timeout=config.tuning.airtable_timeout_seconds,
    )


def read_token(config: Config) -> str:
    """The Airtable token: AIRTABLE_TOKEN locally, else the secret (Powertools-cached)."""
    if config.token:
        return config.token
    from aws_lambda_powertools.utilities import parameters

    assert config.token_secret_arn
    secret = parameters.get_secret(config.token_secret_arn, max_age=3600)
    return token_from_secret(secret)


def token_from_secret(secret: str | bytes | dict[str, Any]) -> str:
    """The secret holds the bare token, or JSON {"token": "..."}."""
    if isinstance(secret, bytes):
        secret = secret.decode()
    if isinstance(secret, str):
        stripped = secret.strip()
        if stripped and not stripped.startswith("{"):
            return stripped
        try:
            secret = json.loads(stripped)
        except json.JSONDecodeError:
            secret = None
    token = secret.get("token") if isinstance(secret, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise ConfigError(
            "AIRTABLE_TOKEN_SECRET_ARN",
            'names a secret that holds neither a token nor JSON {"token": "..."}; put the token in it',
        )
    return token.strip()


def run(config: Config, remaining_ms: Callable[[], int]) -> RunSummary:
    """One drain of the queue with the real adapters."""
    from .airtable import AirtableSink
    from .model import DEFAULT_ROUTE
    from .ports import Destination
    from .sqs import SqsQueue

    adapters = _adapters(config)
    tuning = config.tuning
    limiter = adapters.limiter
    sink = AirtableSink(
        adapters.table, config.merge_on, typecast=tuning.typecast, on_sent=limiter.mark_sent
    )
    drain = Drain(
        queue=SqsQueue(adapters.sqs, config.queue_url, config.dead_letter_queue_url),
        mapper=Mapper(config.field_map, config.merge_on),
        deadline=Deadline(remaining_ms, tuning.stop_margin),
        destinations={DEFAULT_ROUTE: Destination(DEFAULT_ROUTE, sink, limiter)},
        settings=Settings(
            wait_time_seconds=tuning.wait_time_seconds,
            max_in_flight=1 if config.is_fifo else tuning.max_in_flight,
            max_attempts=tuning.max_attempts,
            dead_letter_after_receives=tuning.dead_letter_after_receives,
            batch_linger_seconds=tuning.batch_linger_seconds,
            max_buffered=tuning.max_buffered_messages,
            lockout_seconds=tuning.lockout_seconds,
            fifo=config.is_fifo,
        ),
    )
    return drain.run()


def _publish(summary: RunSummary) -> None:
    for name, attribute in telemetry.RUN_COUNTS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(summary, attribute))
    for latency in summary.batch_latency_ms[:100]:  # EMF takes at most 100 values per metric
        metrics.add_metric(
            name=telemetry.BATCH_LATENCY, unit=MetricUnit.Milliseconds, value=round(latency, 1)
        )
    metrics.add_metric(
        name=telemetry.RUN_DURATION, unit=MetricUnit.Milliseconds, value=summary.elapsed_ms
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


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, object]:
    """Drain the queue until it is empty or the Lambda is close to its time limit."""
    _route_core_logs()
    metrics.namespace = metrics.namespace or NAMESPACE
    config = load_config()
    summary = run(config, context.get_remaining_time_in_millis)
    _publish(summary)
    result = summary.to_dict()
    if summary.stopped_because == "error":
        logger.error("run stopped on an error", extra={"summary": result})
        raise RunFailedError(f"run stopped on an error: {summary.error}", result)
    logger.info("run finished", extra={"summary": result})
    return result
