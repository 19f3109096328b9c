"""Lambda's CPU share on this machine: a cpu cgroup with a CFS quota.

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU, so 512 MB
gets about 29% of one and 1,024 MB about 58%, enforced as a CFS quota: the function runs
for its quota of each 100 ms period, then is stalled until the next period (AWS Lambda
docs, "Configuring function memory"; the Linux CFS bandwidth control). The same is made
here with the cpu cgroup: `cpu.cfs_quota_us` / `cpu.cfs_period_us` (cgroup v1) or
`cpu.max` = "QUOTA PERIOD" (cgroup v2). Creating a cgroup needs root.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Lambda's memory per vCPU (AWS: "at 1,769 MB, a function has the equivalent of one vCPU").
MB_PER_VCPU = 1769
PERIOD_US = 100_000
CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_us(memory_mb: int, period_us: int = PERIOD_US) -> int:
    """The CFS quota of a function of `memory_mb`: 512 MB -> 28,943 us per 100 ms."""
    return round(period_us * memory_mb / MB_PER_VCPU)


@dataclass(frozen=True)
class CpuQuota:
    """A cpu cgroup the poller process enters before Python starts (`wrap`)."""

    #: None: no quota (the cgroup only tells which process to watch)
    memory_mb: int | None
    path: Path
    version: int  # 1 or 2
    quota_us: int | None
    period_us: int = PERIOD_US

    @property
    def share(self) -> float | None:
        """Of one CPU: 0.289 at 512 MB."""
        return None if self.quota_us is None else self.quota_us / self.period_us

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        return []

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` run by a shell that first moves itself into the cgroup, then execs it
        (the same process: its CPU time is the poller's)."""
        procs = shlex.quote(str(self.path / "cgroup.procs"))
        return ["/bin/sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *argv]

    def stat(self) -> dict[str, int]:
        """The cgroup's `cpu.stat`: periods, throttled periods and time stalled by the quota
        (v1 `throttled_time` in ns; v2 `throttled_usec`)."""
        out: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if value.strip().isdigit():
                    out[key] = int(value)
        if "throttled_time" in out:  # v1, ns
            out["throttled_usec"] = out["throttled_time"] // 1000
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "memory_mb": self.memory_mb,
            "cgroup": str(self.path),
            "cgroup_version": self.version,
            "quota_us": self.quota_us,
            "period_us": self.period_us,
            "share_of_one_cpu": None if self.share is None else round(self.share, 3),
        }


def unavailable() -> str | None:
    """Why a cpu cgroup cannot be made here, or None if it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to create a cpu cgroup (run as root, e.g. sudo)"
    if _v1_root() is None and _v2_root() is None:
        return f"no cpu cgroup controller under {CGROUP_ROOT} (neither v1 nor v2)"
    return None


def _v1_root() -> Path | None:
    for name in ("cpu", "cpu,cpuacct"):
        root = CGROUP_ROOT / name
        if (root / "cpu.cfs_quota_us").exists():
            return root
    return None


def _v2_root() -> Path | None:
    controllers = CGROUP_ROOT / "cgroup.controllers"
    with contextlib.suppress(OSError):
        if "cpu" in controllers.read_text().split():
            return CGROUP_ROOT
    return None


@contextlib.contextmanager
def cpu_quota(memory_mb: int | None, name: str) -> Iterator[CpuQuota]:
    """A fresh cgroup limited to the CPU share of `memory_mb` (None: no limit), removed
    after the block (once its processes are gone)."""
    reason = unavailable()
    if reason:
        raise PermissionError(reason)
    quota = None if memory_mb is None else quota_us(memory_mb)
    v1 = _v1_root()
    if v1 is not None:
        path, version = v1 / name, 1
        path.mkdir()
        (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (path / "cpu.cfs_quota_us").write_text(str(-1 if quota is None else quota))
    else:
        root = _v2_root()
        assert root is not None
        with contextlib.suppress(OSError):  # may already be enabled
            (root / "cgroup.subtree_control").write_text("+cpu")
        path, version = root / name, 2
        path.mkdir()
        (path / "cpu.max").write_text(f"{'max' if quota is None else quota} {PERIOD_US}")
    try:
        yield CpuQuota(memory_mb, path, version, quota)
    finally:
        with contextlib.suppress(OSError):
            path.rmdir()
