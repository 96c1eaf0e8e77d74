"""The locks in requirements/ agree with pyproject.toml and the Airflow image (else: `make lock`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    """Package → pinned version in one lock file."""
    text = (ROOT / "requirements" / lock).read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def direct(*extras: str) -> list[Requirement]:
    """pyproject.toml's dependencies plus those of `extras` (expanding `bankpipe[...]` self-references)."""
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    todo = list(extras)
    while todo:
        for r in map(Requirement, PYPROJECT["project"]["optional-dependencies"][todo.pop()]):
            if canonicalize_name(r.name) == "bankpipe":
                todo += sorted(r.extras)
            else:
                reqs.append(r)
    return reqs


@pytest.mark.parametrize(
    ("lock", "extras"), [("runtime.txt", ()), ("airflow.txt", ("airflow",)), ("test.txt", ("test",))]
)
def test_every_direct_dependency_is_locked_within_its_bounds(lock: str, extras: tuple[str, ...]) -> None:
    locked = pins(lock)
    for req in direct(*extras):
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in requirements/{lock}: run make lock"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"requirements/{lock} pins {req.name}=={locked[name]}, outside {req.specifier}: run make lock"
        )


def test_every_lock_line_has_hashes_and_the_locks_agree() -> None:
    tested = pins("test.txt")
    for lock in ("runtime.txt", "airflow.txt", "test.txt"):
        text = (ROOT / "requirements" / lock).read_text()
        assert "--index-url" not in text and "file:" not in text  # no machine's index or path
        for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2]):
            if PIN.match(block):
                assert "--hash=sha256:" in block, block.splitlines()[0]
        # runtime and airflow are constrained to the tested versions
        assert all(tested.get(name) == version for name, version in pins(lock).items()), lock


def test_the_airflow_image_installs_the_locked_airflow() -> None:
    dockerfile = (ROOT / "airflow" / "Dockerfile").read_text()
    (version,) = re.findall(r"^ARG AIRFLOW_VERSION=(\S+)", dockerfile, re.MULTILINE)
    assert pins("airflow.txt")["apache-airflow"] == version
    assert "--require-hashes" in dockerfile and "requirements/airflow.txt" in dockerfile
