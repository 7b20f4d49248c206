"""Switching a grown project to another task backend, as its README says.

First, for every backend, the README's drain step: the count it gives sees
a queued task and reaches 0 once a worker has run it. Then a project of
one backend, grown by its team (tests/grown.py), is switched with ``cruft
update --variables-to-update``; the team's task is ported as the new
README shows. The result must be what a fresh bake of the new backend is,
plus the team's work, and pass its own suite (the real-worker tests run on
the fresh bake, in tests/test_bake.py) and ``check --deploy``.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .bakery import (
    BACKENDS,
    UV,
    backend_of,
    fresh_database,
    production_env,
    python,
    run,
)
from .grown import (
    USER_FILES,
    as_repository,
    edit_readme,
    edit_settings,
    example_tasks,
    grow,
    port_tasks,
    unmerged,
)
from .published import commit_all, git

CRUFT = str(Path(sys.executable).with_name("cruft"))
WAITING = re.compile(r'\$ uv run python manage\.py shell --no-imports -c "(.*)"')
ENQUEUE = (
    "from notifications.tasks import enqueue_email; "
    "enqueue_email(subject='Drain', body='One task to drain.', to=['a@example.com'])"
)


def waiting(project, env):
    """The README's count of the tasks that wait or run, as it gives it."""
    statement = WAITING.search((project / "README.md").read_text())[1]
    result = run(
        project,
        *(python(project), "manage.py", "shell", "--no-imports", "-c", statement),
        env=env,
    )
    return int(result.stdout.strip())


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_drain_count_sees_a_queued_task_and_reaches_zero(synced, backend):
    project = synced(backend)
    assert (
        WAITING.search((project / "README.md").read_text())[1]
        == (backend_of(backend)["waiting"])
    )
    env = {
        **production_env(f"drain_{backend}", backend),
        "DEBUG": "true",  # mail goes to the console: the task succeeds
        "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    fresh_database(env)
    run(project, "bin/migrate", env=env)
    assert waiting(project, env) == 0
    run(project, python(project), "manage.py", "shell", "-c", ENQUEUE, env=env)
    assert waiting(project, env) == 1

    worker = subprocess.Popen(
        ["bin/worker"],
        cwd=project,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (count := waiting(project, env)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert count == 0, "the worker did not drain the queue within 60 s"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=backend_of(backend)["stop_grace_seconds"])


SWITCHES = [
    (old, new)
    for old, new in [("django_tasks_db", "rq"), ("huey_redis", "django_tasks_db")]
    if {old, new} <= set(BACKENDS)
]


@pytest.fixture(
    scope="module", params=SWITCHES, ids=[f"{old}-to-{new}" for old, new in SWITCHES]
)
def switched(request, baked, tmp_path_factory):
    """The grown project of the first backend, switched to the second (the
    tests read it; the suite's run adds only ignored files)."""
    old, new = request.param
    project = as_repository(baked(old), tmp_path_factory.mktemp("team") / "team")
    grow(project)
    result = run(
        project,
        *(CRUFT, "update", "--skip-apply-ask"),
        *("--variables-to-update", f'{{"task_backend": "{new}"}}'),
    )
    assert unmerged(project) == [], result.stdout + result.stderr
    commit_all(project, f"Switch to {new}")
    port_tasks(project)
    commit_all(project, f"Reports ported to {new}")
    return old, new, project


def tracked(project):
    return set(git(project, "ls-files").split("\n"))


def test_the_switched_project_is_a_fresh_bake_plus_the_teams_work(
    switched, baked, tmp_path
):
    _, new, project = switched
    fresh = as_repository(baked(new), tmp_path / "fresh")
    ported = {"reports/tasks.py", *USER_FILES}
    assert tracked(project) == tracked(fresh) | ported
    edited = {"config/settings.py": edit_settings, "README.md": edit_readme}
    differ = []
    for name in sorted(tracked(fresh) - {".cruft.json"}):
        expected = (fresh / name).read_bytes()
        if name in edited:
            expected = edited[name](expected.decode()).encode()
        if (project / name).read_bytes() != expected:
            differ.append(name)
    assert differ == []  # README, compose file, units: the new backend's only
    assert (project / "reports" / "tasks.py").read_text() == example_tasks(fresh)


def test_the_switched_project_passes_its_suite_and_the_deploy_check(switched):
    """All but the real-worker tests: the test above finds the switched
    project's files those run byte for byte the fresh bake's (but for the
    team's settings lines), and tests/test_bake.py runs that bake's whole
    suite. The team's own test runs here."""
    old, new, project = switched
    run(project, UV, "sync", "--locked", "--quiet")
    env = production_env(f"switched_{old}", new)
    result = run(
        project,
        *(python(project), "manage.py", "check", "--deploy"),
        *("--fail-level", "WARNING"),
        env=env,
    )
    assert "no issues" in result.stdout
    result = run(
        project,
        *(UV, "run", "--no-sync", "pytest", "-v", "-p", "no:cacheprovider"),
        *("--create-db", "-m", "not worker"),
        env={**env, "SECRET_KEY": "test-" + "k" * 60},
        timeout=900,
    )
    assert re.search(r"\d+ passed", result.stdout)
    assert " failed" not in result.stdout
    assert (
        "tests/reports/test_tasks.py::"
        "test_a_queued_report_is_made_once_its_transaction_commits PASSED"
    ) in result.stdout
