"""Bake each case once per session and share it between tests.

A case is a set of answers; ``baked(case)`` renders it with cookiecutter and
``synced(case)`` also installs its virtual environment with uv. Both are
cached for the session, so every assertion runs against the same output.
"""

from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from .bakery import CASES, ROOT, UV, run


@pytest.fixture(scope="session")
def baked(tmp_path_factory):
    projects = {}

    def bake(case):
        if case not in projects:
            output = tmp_path_factory.mktemp(f"bake-{case}")
            path = cookiecutter(
                str(ROOT),
                no_input=True,
                extra_context=CASES[case],
                output_dir=str(output),
            )
            projects[case] = Path(path)
        return projects[case]

    return bake


@pytest.fixture(scope="session")
def synced(baked):
    done = set()

    def sync(case):
        project = baked(case)
        if case not in done:
            run(project, UV, "sync", "--locked", "--quiet")
            done.add(case)
        return project

    return sync
