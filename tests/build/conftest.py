"""`sam build` and what it builds, checked without Docker or an AWS account.

Builds are made once per session into temporary directories, or reused from
SAM_BUILD_DIR / SAM_HOST_BUILD_DIR when they name builds already made (`make build` writes
.aws-sam/build, `make build-host` .aws-sam/build-host).
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "PollerFunction"
#: Lambda's name for this machine's architecture.
HOST_ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def _fail_or_skip(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def real_python313() -> Path | None:
    """A python3.13 binary that runs (pyenv's shim only runs inside its version)."""
    candidates = [os.environ.get("PY313", "")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    candidates.append(shutil.which("python3.13") or "")
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def py313() -> Path:
    found = real_python313()
    if found is None:
        _fail_or_skip("no python3.13 on this machine: sam build for python3.13 needs one")
    assert found is not None
    return found


def sam_build(py313: Path, build_dir: Path, architecture: str) -> Path:
    """Run `sam build` for `architecture`; return the function's artifact directory."""
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{py313.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "sam"),
            "build",
            "--template-file",
            "template.yaml",
            "--build-dir",
            str(build_dir),
            "--parameter-overrides",
            f"Architecture={architecture}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    return build_dir / FUNCTION


def _reuse_or_build(
    variable: str, py313: Path, factory: pytest.TempPathFactory, architecture: str
) -> Path:
    given = os.environ.get(variable)
    if given:
        artifact = (ROOT / given / FUNCTION).resolve()
        assert artifact.is_dir(), f"{variable}={given} has no {FUNCTION}: run make build first"
        return artifact
    return sam_build(py313, factory.mktemp(f"build-{architecture}"), architecture)


@pytest.fixture(scope="session")
def arm64_artifact(py313: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The function as `sam build` packages it for Lambda (arm64)."""
    return _reuse_or_build("SAM_BUILD_DIR", py313, tmp_path_factory, "arm64")


@pytest.fixture(scope="session")
def host_artifact(py313: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same template built for this machine's architecture."""
    return _reuse_or_build("SAM_HOST_BUILD_DIR", py313, tmp_path_factory, HOST_ARCH)


@pytest.fixture(scope="session")
def lambda_python(py313: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python3.13 with nothing installed but boto3: what the Lambda runtime provides.

    Same boto3 as the dev venv (pinned there), installed from pip's cache when it can be."""
    venv = tmp_path_factory.mktemp("lambda-runtime") / "venv"
    subprocess.run([str(py313), "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    boto3_version = importlib.metadata.version("boto3")
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"boto3=={boto3_version}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    return python
