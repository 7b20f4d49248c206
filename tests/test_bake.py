"""Every baked case: clean output, lint, Django checks and its own test suite."""

import json
import os
import re
import shutil
import subprocess
import tomllib

import pytest

from .bakery import (
    BACKENDS,
    CASES,
    DEFAULT,
    UV,
    json_strings,
    production_env,
    python,
    run,
    s3_test_env,
)

JINJA = re.compile(r"{{|{%|{#")


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    return request.param


def test_no_jinja_leftovers(baked, case):
    project = baked(case)
    leftovers = []
    for path in baked.written(case):
        text = path.read_text(errors="replace")
        leftovers += [
            f"{path.relative_to(project)}: {m.group()}"
            for m in JINJA.finditer(text)
            if not _django_template_tag(path)
        ]
    assert leftovers == []


def _django_template_tag(path):
    # Django templates are meant to contain {% %} and {{ }}.
    return path.suffix == ".html"


def test_origin_and_answers_are_recorded_for_cruft(baked, case, template_repo):
    state = json.loads((baked(case) / ".cruft.json").read_text())
    # Where the template lives and which commit made the project: what cruft
    # updates from. Not the checkout it was baked from, nor a copy of it.
    assert state["template"] == str(template_repo.home)
    assert state["commit"] == template_repo.commit
    answers = state["context"]["cookiecutter"]
    assert answers["task_backend"] == CASES[case].get("task_backend", DEFAULT)
    for key, value in CASES[case].items():
        assert answers[key] == value
    assert {key for key in answers if key.startswith("_")} == {"_template", "_commit"}
    paths = {value for value in json_strings(state) if value.startswith("/")}
    assert paths == {str(template_repo.home)}


def test_env_is_git_ignored_and_holds_a_key(baked, case):
    project = baked(case)
    assert ".env" in (project / ".gitignore").read_text().splitlines()
    assert re.search(r"^SECRET_KEY=\S{50,}$", (project / ".env").read_text(), re.M)


def test_python_version_is_pinned_for_uv_and_pyenv(baked, case):
    project = baked(case)
    assert (project / ".python-version").read_text().strip() == "3.13"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.13"


def test_ruff_check(synced, case):
    project = synced(case)
    run(project, UV, "run", "--no-sync", "ruff", "check", ".")


def test_ruff_format(synced, case):
    project = synced(case)
    run(project, UV, "run", "--no-sync", "ruff", "format", "--check", ".")


def test_manage_check(synced, case):
    project = synced(case)
    run(project, python(project), "manage.py", "check", "--fail-level", "WARNING")


def test_no_missing_migrations(synced, case):
    project = synced(case)
    run(project, python(project), "manage.py", "makemigrations", "--check", "--dry-run")


def test_check_deploy_is_clean_with_production_env(synced, case):
    project = synced(case)
    result = run(
        project,
        python(project),
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=production_env(case, case),
    )
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secret_key(synced, case):
    project = synced(case)
    env = {**production_env(case, case), "SECRET_KEY": ""}
    # .env would supply a key: run from a copy of the settings without it.
    result = run(
        project,
        python(project),
        "-c",
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'config.settings'); import dotenv; dotenv.load_dotenv = lambda *a, **k: None; "
        "django.setup()",
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_project_test_suite_passes_on_postgresql(synced, case):
    """The whole suite for each backend's case, its bucket tests on the S3
    server; for the variants (another slug, no deploy files), all but the
    real-worker tests, which are the default backend's and run in its case."""
    project = synced(case)
    env = {
        **production_env(case, case),
        "SECRET_KEY": "test-" + "k" * 60,
        **s3_test_env(f"suite-{case}"),
    }
    variant = ["-m", "not worker"] if case not in BACKENDS else []
    result = run(
        project,
        UV,
        "run",
        "--no-sync",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *("-n", "2"),  # as the project's README and CI run it
        "--create-db",
        *variant,
        env=env,
        timeout=900,
    )
    assert re.search(r"\d+ passed", result.stdout)
    assert " failed" not in result.stdout
    assert "S3_TEST_BUCKET is not set" not in result.stdout  # they ran


def test_settings_refuse_a_rescue_bound_within_the_time_limit(synced, case):
    """A rescue could queue a job again beside its own run (core/rescue.py)."""
    project = synced(case)
    env = {
        **production_env(case, case),
        "TASK_TIME_LIMIT": "60",
        "JOB_RESCUE_SECONDS": "60",
    }
    result = run(project, python(project), "manage.py", "check", env=env, check=False)
    assert result.returncode != 0
    assert "JOB_RESCUE_SECONDS must exceed TASK_TIME_LIMIT" in result.stderr


def test_gunicorn_reads_dotenv_like_django_and_the_environment_wins(
    synced, case, tmp_path
):
    project = synced(case)
    (tmp_path / "config").mkdir()
    shutil.copy(project / "config" / "gunicorn.py", tmp_path / "config")
    (tmp_path / ".env").write_text("PORT=8123\nWEB_CONCURRENCY=3\n")
    show = (
        "import runpy; c = runpy.run_path('config/gunicorn.py'); "
        "print(c['bind'], c['workers'])"
    )
    env = {key: value for key, value in os.environ.items() if key != "PORT"}
    env.pop("WEB_CONCURRENCY", None)
    result = subprocess.run(
        [python(project), "-c", show],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["0.0.0.0:8123", "3"]
    result = subprocess.run(
        [python(project), "-c", show],
        cwd=tmp_path,
        env={**env, "PORT": "9000"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["0.0.0.0:9000", "3"]
