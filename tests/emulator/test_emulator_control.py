"""The /__emulator/* control endpoints, for users in another process."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from airtable_emulator import Faults
from emulator_testkit import BASE, TABLE, Running


def test_stats_and_records_endpoints_mirror_the_python_api(emu: Running) -> None:
    # GIVEN two records written through the API
    emu.table().batch_create([{"Id": "a"}, {"Id": "b"}])
    control = emu.http(token=None)
    # WHEN the control endpoints are read (twice, to show they are not counted)
    control.get(f"{emu.url}/__emulator/stats")
    stats = control.get(f"{emu.url}/__emulator/stats").json()
    records = control.get(f"{emu.url}/__emulator/records/{BASE}/{TABLE}").json()
    # THEN they report what the Python API reports
    assert stats == emu.emu.stats.to_json()
    assert stats["requests"] == 1
    assert stats["by_status"] == {"200": 1}
    assert stats["records_per_write"] == [2]
    assert records == emu.emu.records(BASE, TABLE)
    log = control.get(f"{emu.url}/__emulator/write-log").json()
    assert [(e["kind"], len(e["record_ids"])) for e in log] == [("created", 2)]


def test_config_endpoint_changes_behaviour(emu: Running) -> None:
    # GIVEN a running emulator with no limit, latency or faults
    control = emu.http(token=None)
    # WHEN the config endpoint sets a 1 req/s limit, faults and latency
    response = control.post(
        f"{emu.url}/__emulator/config",
        json={
            "rate_limit_rps": 1,
            "lockout_seconds": 5,
            "latency": [0.0, 0.01],
            "faults": {"error_5xx_rate": 0.25},
        },
    )
    # THEN the new settings are reported and enforced
    assert response.status_code == 200
    assert response.json()["rate_limit_rps"] == 1
    assert response.json()["faults"] == {"error_5xx_rate": 0.25, "lost_response_rate": 0.0}
    assert response.json()["latency"] == [0.0, 0.01]
    session = emu.http()
    assert [session.get(emu.records_url()).status_code for _ in range(2)] == [200, 429]
    assert emu.emu.current_settings()["faults"] == {
        "error_5xx_rate": 0.25,
        "lost_response_rate": 0.0,
    }


def test_config_endpoint_rejects_bad_settings(emu: Running) -> None:
    # GIVEN bad settings
    control = emu.http(token=None)
    for body in ({"latency": [0.5, 0.1]}, {"faults": {"error_5xx_rate": 2}}, {"speed": 1}):
        # WHEN they are posted, THEN they are refused and nothing changes
        assert control.post(f"{emu.url}/__emulator/config", json=body).status_code == 400
    assert emu.emu.current_settings()["latency"] == [0.0, 0.0]


def test_lockout_endpoint_locks_the_base_and_controls_stay_open(
    start: Callable[..., Running],
) -> None:
    # GIVEN an emulator with a 5 s lockout
    running = start(rate_limit_rps=5, lockout_seconds=5)
    control = running.http(token=None)
    # WHEN a lockout is started through the control endpoint
    assert control.post(f"{running.url}/__emulator/lockout/{BASE}").status_code == 200
    # THEN the API answers 429 while the control endpoints still answer
    assert running.http().get(running.records_url()).status_code == 429
    assert control.get(f"{running.url}/__emulator/stats").json()["lockouts"] == 1
    assert control.get(f"{running.url}/__emulator/health").json() == {"ok": True}


def test_clear_and_reset_endpoints(emu: Running) -> None:
    # GIVEN a record and some stats
    emu.table().create({"Id": "a"})
    control = emu.http(token=None)
    # WHEN the table is cleared and the stats reset
    deleted = control.delete(f"{emu.url}/__emulator/records/{BASE}/{TABLE}").json()
    reset = control.post(f"{emu.url}/__emulator/stats/reset").json()
    # THEN both are empty
    assert deleted == {"deleted": 1}
    assert emu.emu.records(BASE, TABLE) == []
    assert reset["requests"] == 0
    assert emu.emu.write_log == []


def test_unknown_control_paths_are_404(emu: Running) -> None:
    # GIVEN control paths that do not exist (or name a missing table)
    control = emu.http(token=None)
    for path in ("/__emulator/nope", f"/__emulator/records/{BASE}/Missing"):
        # WHEN they are requested, THEN they are 404
        assert control.get(emu.url + path).status_code == 404


def test_python_configure_validates_its_arguments(emu: Running) -> None:
    # GIVEN a running emulator
    # WHEN it is configured with valid values, THEN they apply
    emu.emu.configure(faults=Faults(lost_response_rate=0.5), rate_limit_rps=None)
    assert emu.emu.current_settings()["faults"]["lost_response_rate"] == 0.5
    # WHEN values are invalid, THEN configure raises and keeps the old settings
    for bad in ({"latency": (-1, 0)}, {"rate_limit_rps": 0}, {"lockout_seconds": -1}):
        with pytest.raises(ValueError):
            emu.emu.configure(**bad)
    assert emu.emu.current_settings()["rate_limit_rps"] is None
