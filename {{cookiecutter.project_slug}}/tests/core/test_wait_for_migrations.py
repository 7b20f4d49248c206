"""bin/wait-for-migrations, the init container of the pods on Kubernetes:
it returns at once when the database has every migration, and waits while
one is missing (the migrate Job has not run yet)."""

import os
import subprocess
import sys

import pytest

from tests.test_worker import PROJECT, database_url


def start(database):
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
    return subprocess.Popen(
        [PROJECT / "bin" / "wait-for-migrations"],
        env={**os.environ, "PATH": path, "DATABASE_URL": database},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
def test_it_returns_at_once_on_a_migrated_database():
    waiting = start(database_url())

    assert waiting.wait(timeout=60) == 0


def test_it_waits_while_migrations_are_missing(tmp_path):
    waiting = start(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=8)
    finally:
        waiting.kill()
    assert "Waiting for the migrations" in waiting.stdout.read()
