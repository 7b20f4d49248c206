"""Bake each case once per session and share it between tests.

A case is a set of answers; ``baked(case)`` renders it with cookiecutter and
``synced(case)`` also installs its virtual environment with uv. Both are
cached for the session, so every assertion runs against the same output.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from .bakery import CASES, UV, run
from .published import publish


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory):
    """This template, published as a git repository (tests/published.py)."""
    return publish(tmp_path_factory.mktemp("published"))


@pytest.fixture(scope="session")
def baked(tmp_path_factory, template_repo):
    """Bake a case from a user's checkout of the published template."""
    projects = {}
    files = {}

    def bake(case):
        if case not in projects:
            output = tmp_path_factory.mktemp(f"bake-{case}")
            path = Path(
                cookiecutter(
                    str(template_repo.clone),
                    no_input=True,
                    extra_context=CASES[case],
                    output_dir=str(output),
                )
            )
            projects[case] = path
            files[case] = [p for p in sorted(path.rglob("*")) if p.is_file()]
        return projects[case]

    def written(case):
        """The files the bake wrote: tests that run the project add others
        (a virtual environment, collected static files)."""
        bake(case)
        return files[case]

    bake.written = written
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


@pytest.fixture(scope="session")
def docker_engine():
    """For the tests on a Docker engine: fail, saying what to run, when none
    answers (rather than a docker error in the middle of a fixture)."""
    answers = shutil.which("docker") and not (
        subprocess.run(["docker", "info"], capture_output=True).returncode
    )
    if not answers:
        pytest.fail("No Docker engine answers: run `bash .ci/docker` first.")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that ran services reports the end of their logs.

    The processes ran in the background: without their logs, a timeout in
    CI says nothing of what the worker was doing. A fixture value that is a
    dict with ``logs`` (a folder of ``*.log`` files) or ``report`` (a
    callable giving {name: text}) says where they are.
    """
    report = yield
    if not report.failed:
        return report
    for value in getattr(item, "funcargs", {}).values():
        if not isinstance(value, dict):
            continue
        logs = {}
        if "logs" in value:
            for log in sorted(Path(value["logs"]).glob("*.log")):
                logs[log.name] = log.read_text(errors="replace")
        if callable(value.get("report")):
            logs.update(value["report"]())
        for name, text in logs.items():
            tail = "\n".join(text.splitlines()[-60:])
            report.sections.append((f"{name} (last lines)", tail))
        if logs:
            break
    return report


# The modules whose groups take minutes (running stacks, schedules of
# minute-long ticks, a project's own suite), slowest first. They run first,
# so that the processes of pytest-xdist are not left waiting on one of them
# at the end.
SLOW_FIRST = ["test_schedule", "test_e2e", "test_switch", "test_bake", "test_deploy"]


GROUP = pytest.StashKey[int]()


def slowness(item):
    name = item.module.__name__.rsplit(".", 1)[-1]
    return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``--dist loadgroup``), one process runs a module's
    tests of one project: its module fixtures (a baked project, a running
    stack) are made once, not once per process.

    A group is the module and the case, or the pair of cases of a switch,
    that the test is parametrized with; other parameters (the front of an
    end-to-end stack, a test's own) do not split it.

    First of the hooks: pytest-xdist's own reads the groups to send each to
    one process. This conftest is loaded before that plugin, and pluggy calls
    the plugin loaded last first: without ``tryfirst``, xdist's hook ran
    before this one and found no group, every test was sent on its own, and
    each process started every stack. (pytest 9.2 loses the groups in
    another way: pyproject.toml.)
    """
    groups = {}  # group -> its place, in the order pytest collected them
    for item in items:
        callspec = getattr(item, "callspec", None)
        projects = [
            str(value)
            for value in (callspec.params.values() if callspec else ())
            if isinstance(value, tuple) or (isinstance(value, str) and value in CASES)
        ]
        group = "-".join([item.module.__name__, *projects])
        item.add_marker(pytest.mark.xdist_group(group))
        groups.setdefault(group, len(groups))
        item.stash[GROUP] = groups[group]
    # A group's tests one after another (stable: pytest's order within it is
    # kept). pytest interleaves the cases of a module by their other
    # parameters; a process that runs two groups of one module would then
    # tear a module fixture (a running stack) down and make it again at
    # each switch.
    items.sort(key=lambda item: (slowness(item), item.stash[GROUP]))
