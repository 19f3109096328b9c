"""Integration tests: real boto3 over HTTP to moto's SQS server, real pyairtable over HTTP to
the project's Airtable emulator, and the real Lambda handler (helpers: harness.py).

Every test collected under this folder is marked `integration`, and `slow` when it is
named in SLOW (it takes more than a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack.stack import LocalStack, default_emulator_config, moto_sqs
from harness import LOCKOUT_SECONDS, Container

HERE = Path(__file__).resolve().parent
#: Tests that take more than a few seconds (3 s or more on an idle 2-core machine): a
#: module's file name (all of its tests) or "file::test" (every parametrization of it).
SLOW = frozenset(
    {
        "test_cli.py::test_peek_dlq_shows_reasons_and_consumes_nothing",
        "test_cli.py::test_redrive_falls_back_to_copy_on_moto",
        "test_cli.py::test_run_as_a_subprocess_honours_the_log_level",
        "test_cli.py::test_status_answers_what_is_stuck_and_why",
        "test_cli_local.py::test_every_json_key_of_every_command_is_an_identifier",
        "test_cli_local.py::test_no_command_shows_a_traceback_on_an_error",
        "test_cli_local.py::test_the_progress_line_shows_a_lockout_countdown",
        "test_pace_kept.py::test_a_learned_pace_is_kept_and_a_new_container_writes_without_a_new_lockout",
        "test_end_to_end.py::test_drains_a_queue_with_duplicates_and_poison_exactly_once",
        "test_end_to_end.py::test_the_token_never_appears_in_the_output",
        "test_end_to_end.py::test_warm_start_reuses_the_clients_and_drains_again",
        "test_log_safety.py::test_debug_logging_leaks_neither_the_token_nor_a_body",
        "test_log_safety.py::test_wire_debug_shows_the_wire_and_still_masks_the_token_even_after_a_rotation",
        "test_mirror.py::test_a_hard_delete_answered_503_or_429_is_made_again_in_the_same_run",
        "test_mirror.py::test_a_hard_delete_removes_the_rows_and_a_key_without_a_row_is_a_success",
        "test_mirror.py::test_a_link_with_if_missing_dead_letter_makes_a_missing_key_poison",
        "test_mirror.py::test_a_key_that_matches_several_linked_rows_is_poison_naming_it",
        "test_mirror.py::test_a_link_points_at_the_row_with_that_key",
        "test_mirror.py::test_a_missing_linked_record_gets_a_stub_that_its_own_event_fills_in",
        "test_mirror.py::test_a_shuffled_stream_converges_to_the_true_final_state",
        "test_mirror.py::test_a_soft_delete_keeps_the_version_so_an_older_update_cannot_bring_the_row_back",
        "test_mirror.py::test_an_older_version_is_stale_across_runs_and_after_a_cold_start",
        "test_observability.py",
        "test_preflight.py::test_the_check_costs_four_requests_per_run_that_finds_messages_none_when_empty",
        "test_routes.py::test_a_broken_route_holds_the_whole_queue_until_it_is_fixed",
        "test_routes.py::test_every_event_type_and_envelope_lands_once_in_its_own_table",
        "test_systemic_conditions.py",
        "test_world_changes.py::test_a_deleted_field_holds_the_queue_until_it_is_back",
        "test_world_changes.py::test_a_renamed_field_is_no_failure_at_all",
        "test_world_changes.py::test_a_retyped_field_holds_the_queue_until_it_is_fixed",
        "test_world_changes.py::test_a_rotated_token_is_read_again_from_the_secret",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what this folder holds (the hook sees every collected item: only ours)."""
    for item in items:
        path = Path(item.path).resolve()
        if not path.is_relative_to(HERE):
            continue
        item.add_marker(pytest.mark.integration)
        name = getattr(item, "originalname", item.name)
        if path.name in SLOW or f"{path.name}::{name}" in SLOW:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """One moto server for the session; every test gets its own queues."""
    with moto_sqs() as endpoint:
        yield endpoint


@pytest.fixture
def stack(sqs_endpoint: str) -> Iterator[LocalStack]:
    """Fresh queues and a fresh emulator with Airtable's real 5 req/s limit and a short lockout."""
    config = default_emulator_config(lockout_seconds=LOCKOUT_SECONDS)
    with LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config) as local:
        yield local


@pytest.fixture
def invoke(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Container:
    """The real handler on `stack`, in this process: `invoke(timeout_s=60, **env)`."""
    return Container(stack, monkeypatch)
