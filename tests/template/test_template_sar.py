"""Publishable to the AWS Serverless Application Repository: the template's
`AWS::ServerlessRepo::Application` metadata, checked with the SAM CLI's own parser and against
the constraints of the SAM developer guide ("AWS SAM template Metadata section properties")."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from samcli.vendor.serverlessrepo.application_metadata import ApplicationMetadata
from samcli.vendor.serverlessrepo.parser import get_app_metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def metadata(sam: dict[str, Any]) -> ApplicationMetadata:
    return get_app_metadata(sam)


def test_sam_publish_finds_every_property_it_needs(metadata: ApplicationMetadata) -> None:
    # GIVEN the metadata as `sam publish` reads it THEN nothing it requires is missing
    assert metadata.validate(
        [
            "name",
            "description",
            "author",
            "spdx_license_id",
            "license_url",
            "readme_url",
            "labels",
            "semantic_version",
            "source_code_url",
        ]
    )


def test_the_values_fit_the_repositorys_constraints(metadata: ApplicationMetadata) -> None:
    # Name: 1-140 of [a-zA-Z0-9-]; Description: 1-256; Author: lower-case words joined by
    # single hyphens, 1-127; Labels: at most 10, each 1-127 of [a-zA-Z0-9+-_:/@]
    assert re.fullmatch(r"[a-zA-Z0-9\-]{1,140}", metadata.name)
    assert 1 <= len(metadata.description) <= 256
    assert re.fullmatch(r"^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$", metadata.author)
    assert len(metadata.author) <= 127
    assert 1 <= len(metadata.labels) <= 10
    assert all(re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label) for label in metadata.labels)
    assert re.fullmatch(r"\d+\.\d+\.\d+", metadata.semantic_version)
    assert metadata.source_code_url.startswith("https://")


def test_the_license_and_readme_are_the_repositorys_own(metadata: ApplicationMetadata) -> None:
    # GIVEN the local files `sam package` uploads THEN they exist, and the license is MIT
    license_file = ROOT / metadata.license_url
    readme = ROOT / metadata.readme_url
    assert license_file.is_file() and readme.is_file()
    assert metadata.spdx_license_id == "MIT"
    text = license_file.read_text()
    assert text.startswith("MIT License")
    assert "the sqs-airtable-poller authors" in text


def test_the_semantic_version_is_the_packages(metadata: ApplicationMetadata) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert metadata.semantic_version == project["version"]
