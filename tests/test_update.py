"""Template updates reach a project that has grown, through cruft.

A project baked at one template commit gets its team's work (tests/grown.py);
the template then moves on; ``cruft check``, ``diff`` and ``update`` are run
in the project as its README says. The template's change arrives, the
team's work stays, and a change to the same lines is listed as a conflict.
"""

import json
import sys
from pathlib import Path

import pytest

from .bakery import run
from .grown import as_repository, grow, unmerged
from .published import commit_all, git, publish

CRUFT = str(Path(sys.executable).with_name("cruft"))
COOKIECUTTER = str(Path(sys.executable).with_name("cookiecutter"))
SETTINGS = "{{cookiecutter.project_slug}}/config/settings.py"
OLD_LINE = "FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024\n"
NEW_LINE = "FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024\n"
NEW_FILE = "{{cookiecutter.project_slug}}/docs/upgrading.md"


def new_version(folder):
    """The template's next version: a changed setting and a new file."""
    settings = folder / SETTINGS
    assert settings.read_text().count(OLD_LINE) == 1
    settings.write_text(settings.read_text().replace(OLD_LINE, NEW_LINE))
    (folder / NEW_FILE).parent.mkdir()
    (folder / NEW_FILE).write_text("# Upgrading {{ cookiecutter.project_name }}\n")


@pytest.fixture
def grown(tmp_path):
    """A project baked from the template's URL, grown by its team."""
    template = publish(tmp_path / "published")
    # cookiecutter clones a URL into its cache (~/.cookiecutters by default)
    # and deletes what an earlier clone left there: each test has its own,
    # or two processes of the suite would race on one folder.
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'cache'}\nreplay_dir: {tmp_path / 'replay'}\n"
    )
    run(
        tmp_path,
        *(COOKIECUTTER, "--no-input", "-o", tmp_path / "out", template.url),
        env={"COOKIECUTTER_CONFIG": str(config)},
    )
    project = as_repository(tmp_path / "out" / "observatory_notes", tmp_path / "team")
    grow(project)
    return template, project


def cruft(project, *args, check=True):
    return run(project, CRUFT, *args, check=check)


def test_check_and_diff_see_the_project_against_its_template(grown):
    template, project = grown
    assert cruft(project, "check").returncode == 0
    diff = cruft(project, "diff", "--exit-code", check=False)
    assert diff.returncode != 0  # the team's changes are differences
    assert '+    "reports",' not in diff.stdout  # shown template-side: removed
    assert 'reports",' in diff.stdout
    assert "REPORTS_MAX" in diff.stdout
    assert ".env" not in diff.stdout  # the project's own secret key

    template.change("A bigger upload buffer, an upgrading page", new_version)
    result = cruft(project, "check", check=False)
    assert result.returncode != 0
    assert "out of date" in result.stdout


def test_update_brings_the_template_change_and_keeps_the_teams_work(grown):
    template, project = grown
    before = {
        name: (project / name).read_text()
        for name in git(project, "ls-files", "reports", "tests/reports").split()
    }
    commit = template.change("A bigger upload buffer, an upgrading page", new_version)

    cruft(project, "update", "--skip-apply-ask")

    assert unmerged(project) == []
    settings = (project / "config" / "settings.py").read_text()
    assert NEW_LINE in settings and OLD_LINE not in settings
    assert '    "photos",\n    "reports",\n]' in settings
    assert "REPORTS_MAX = 50\n" in settings
    readme = (project / "README.md").read_text()
    assert readme.endswith("made in the background (`reports/`).\n")
    assert (project / "docs" / "upgrading.md").read_text() == (
        "# Upgrading Observatory Notes\n"
    )
    assert {name: (project / name).read_text() for name in before} == before
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == commit
    assert state["context"]["cookiecutter"]["task_backend"] == "django_tasks_db"
    commit_all(project, "Template update")
    assert cruft(project, "check").returncode == 0


def test_a_change_to_the_same_lines_is_listed_as_a_conflict(grown):
    template, project = grown
    settings = project / "config" / "settings.py"
    mine = "FILE_UPLOAD_MAX_MEMORY_SIZE = 3 * 1024 * 1024\n"
    settings.write_text(settings.read_text().replace(OLD_LINE, mine))
    commit_all(project, "Our upload buffer")
    template.change("A bigger upload buffer, an upgrading page", new_version)

    result = cruft(project, "update", "--skip-apply-ask")

    assert unmerged(project) == ["config/settings.py"]
    assert "config/settings.py" in result.stdout + result.stderr
    text = settings.read_text()
    ours, theirs = text.index(mine), text.index(NEW_LINE)
    assert text.index("<<<<<<<") < ours < text.index("=======") < theirs
    assert theirs < text.index(">>>>>>>")
    # The rest of the update went in.
    assert (project / "docs" / "upgrading.md").exists()
