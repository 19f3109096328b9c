"""What `sam build` packages: the arm64 artifact has aarch64/cp313 native code, no boto3, the
pinned dependencies; the host build has this machine's native code."""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

#: ELF e_machine values.
EM_AARCH64, EM_X86_64 = 183, 62
HOST_MACHINE = EM_AARCH64 if platform.machine() in ("aarch64", "arm64") else EM_X86_64


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    assert header[4] == 2, f"{path} is not 64-bit"
    return int.from_bytes(header[18:20], "little")


def native_libraries(artifact: Path) -> list[Path]:
    return sorted(artifact.rglob("*.so"))


def pins(artifact: Path) -> dict[str, str]:
    """name -> version from the requirements.txt that sam build installed from."""
    found = {}
    for line in (artifact / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def installed(artifact: Path) -> dict[str, str]:
    """name -> version of every distribution in the artifact (from its .dist-info)."""
    found = {}
    for info in artifact.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[name.lower().replace("_", "-")] = version
    return found


def test_the_arm64_artifact_has_an_aarch64_cp313_pydantic_core(arm64_artifact: Path) -> None:
    # GIVEN the arm64 build WHEN we look at pydantic-core, the compiled dependency
    (library,) = (arm64_artifact / "pydantic_core").glob("_pydantic_core*.so")
    # THEN it is CPython 3.13's ABI, built for aarch64, per its file name, ELF header and wheel
    assert "cpython-313-aarch64-linux-gnu" in library.name
    assert elf_machine(library) == EM_AARCH64
    (wheel,) = arm64_artifact.glob("pydantic_core-*.dist-info/WHEEL")
    tags = [
        line.split(": ", 1)[1]
        for line in wheel.read_text().splitlines()
        if line.startswith("Tag: ")
    ]
    assert tags and all(t.startswith("cp313-cp313-") and t.endswith("aarch64") for t in tags), tags


def test_every_native_library_in_the_arm64_artifact_is_aarch64(arm64_artifact: Path) -> None:
    libraries = native_libraries(arm64_artifact)
    assert libraries, "no native code at all: were the dependencies installed?"
    assert {lib.relative_to(arm64_artifact).as_posix(): elf_machine(lib) for lib in libraries} == {
        lib.relative_to(arm64_artifact).as_posix(): EM_AARCH64 for lib in libraries
    }


def test_the_artifact_holds_the_pinned_dependencies_and_not_boto3(arm64_artifact: Path) -> None:
    # GIVEN the requirements sam build installed and what it put in the artifact
    wanted, present = pins(arm64_artifact), installed(arm64_artifact)
    # THEN the function's pins are there, at their pinned versions ...
    assert {"pyairtable", "aws-lambda-powertools"} <= set(wanted)
    assert {name: present.get(name) for name in wanted} == wanted
    # ... with the poller's code, and without boto3/botocore, which the runtime ships
    assert (arm64_artifact / "lambda_function.py").is_file()  # the Handler, at the task root
    assert (arm64_artifact / "handler.py").is_file()
    assert list((arm64_artifact / "field_maps").glob("*.json"))  # FieldMapFile
    assert not {"boto3", "botocore", "s3transfer"} & set(present)
    # AND it stays small (~15 MB unzipped; boto3 alone would add ~30 MB)
    size = sum(f.stat().st_size for f in arm64_artifact.rglob("*") if f.is_file())
    assert size < 30 * 2**20, f"artifact is {size / 2**20:.1f} MB"


def distribution_files(artifact: Path) -> set[str]:
    """The top-level names the installed distributions put in the artifact (their RECORDs)."""
    names = set()
    for record in artifact.glob("*.dist-info/RECORD"):
        for line in record.read_text().splitlines():
            path = line.split(",", 1)[0]
            if path and not path.startswith(".."):
                names.add(path.split("/", 1)[0])
    return names


def test_the_artifact_holds_the_function_s_package_and_its_dependencies_only(
    arm64_artifact: Path,
) -> None:
    # GIVEN what sam build put at the task root, and what the function's own directory
    # (CodeUri, src/poller) holds
    source = ROOT / "src" / "poller"
    own = {p.name for p in source.iterdir() if p.name != "__pycache__"}
    present = {p.name for p in arm64_artifact.iterdir() if p.name != "__pycache__"}
    # THEN every entry is the function's own code (the handler's module and the package it
    # loads) or a file of a dependency it packages: nothing else of the repository
    assert present - own - distribution_files(arm64_artifact) == set()
    assert (arm64_artifact / "lambda_function.py").is_file()
    # AND none of the operator tooling, the local stack or the tests came along
    assert not {"poller_ops", "devstack", "airtable_emulator", "tests", "bench"} & present
    own_files = [
        path
        for name in own
        for path in [arm64_artifact / name, *(arm64_artifact / name).rglob("*")]
        if path.is_file()
    ]
    assert own_files
    assert [p for p in own_files if p.name.startswith("test_") or p.name == "conftest.py"] == []


def test_the_host_build_has_this_machines_native_code(host_artifact: Path) -> None:
    libraries = native_libraries(host_artifact)
    assert any(lib.name.startswith("_pydantic_core.cpython-313-") for lib in libraries)
    assert {elf_machine(lib) for lib in libraries} == {HOST_MACHINE}


@pytest.mark.skipif(HOST_MACHINE != EM_X86_64, reason="only an x86_64 host cannot load aarch64")
def test_the_arm64_artifact_cannot_run_on_this_x86_64_host(
    arm64_artifact: Path, lambda_python: Path
) -> None:
    # GIVEN the arm64 build's pydantic-core and the Lambda-like python3.13
    assert list((arm64_artifact / "pydantic_core").glob("_pydantic_core*.so"))
    # WHEN it imports pydantic_core from the arm64 build
    result = subprocess.run(
        [
            str(lambda_python),
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(arm64_artifact)!r}); import pydantic_core",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # THEN the native library does not load: this is why the host build exists
    assert result.returncode != 0
    assert "_pydantic_core" in result.stderr and "Error" in result.stderr, result.stderr
