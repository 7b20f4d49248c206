"""A project that has grown: the work its users add after baking it.

``grow(project)`` commits what a team does in its first weeks: an app of
its own (``reports``) whose task is written as the README's backend section
shows, with a test; a new setting and the app in INSTALLED_APPS; a README
section. The update and switch tests then check that it all survives.
"""

import re
import shutil

from .published import commit_all, git

MODELS = '''\
"""A report a user asked for: made in the background."""

from django.db import models


class Report(models.Model):
    title = models.CharField(max_length=100)
    done = models.BooleanField(default=False)
'''

MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Report",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("title", models.CharField(max_length=100)),
                ("done", models.BooleanField(default=False)),
            ],
        ),
    ]
"""

SERVICES = '''\
"""The work of a report, given its id: nothing here knows of queues."""

from .models import Report


def make_report(report_id):
    Report.objects.filter(pk=report_id).update(done=True)
'''

TEST = '''\
"""The report's task, run as the worker would run it, whatever the backend."""

from django.db import transaction

from reports.models import Report
from reports.tasks import enqueue_report


def test_a_queued_report_is_made_once_its_transaction_commits(run_queued_tasks):
    with transaction.atomic():
        report = Report.objects.create(title="weekly")
        enqueue_report(report.id)
    run_queued_tasks()
    report.refresh_from_db()
    assert report.done
'''

SECTION = """
## Reports

Weekly reports for the team, made in the background (`reports/`).
"""


def edit_settings(text):
    """The team's settings edit: its app installed, one setting of its own."""
    text = text.replace('    "photos",\n]', '    "photos",\n    "reports",\n]', 1)
    return text.replace(
        "NOTIFICATION_MAX_ATTEMPTS = 5\n",
        "NOTIFICATION_MAX_ATTEMPTS = 5\n# Reports a user may keep.\nREPORTS_MAX = 50\n",
        1,
    )


def edit_readme(text):
    return text + SECTION


def example_tasks(project):
    """The ``reports/tasks.py`` of the project's README (its backend section)."""
    readme = (project / "README.md").read_text()
    found = re.search(r"```python\n(# reports/tasks\.py\n.*?)```", readme, re.S)
    assert found, "the README's backend section shows reports/tasks.py"
    return found[1]


def port_tasks(project):
    """Write the app's task module as the project's README shows it."""
    (project / "reports" / "tasks.py").write_text(example_tasks(project))


USER_FILES = {
    "reports/__init__.py": "",
    "reports/models.py": MODELS,
    "reports/migrations/__init__.py": "",
    "reports/migrations/0001_initial.py": MIGRATION,
    "reports/services.py": SERVICES,
    "tests/reports/__init__.py": "",
    "tests/reports/test_tasks.py": TEST,
}


def as_repository(source, target):
    """A git repository of a baked project, as its team would start one."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".venv"))
    git(target, "init", "--quiet", "--initial-branch", "main")
    commit_all(target, "Baked")
    return target


def grow(project):
    """Commit the team's own work on ``project`` (a git repository)."""
    for name, text in USER_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    port_tasks(project)
    settings = project / "config" / "settings.py"
    settings.write_text(edit_settings(settings.read_text()))
    readme = project / "README.md"
    readme.write_text(edit_readme(readme.read_text()))
    return commit_all(project, "Reports, a setting, a README section")


def unmerged(project):
    """Paths git lists as unmerged, and *.rej files a patch left."""
    status = git(project, "status", "--porcelain").splitlines()
    conflicts = [line[3:] for line in status if line[:2] in {"UU", "AA", "DU", "UD"}]
    return conflicts + [p.name for p in project.rglob("*.rej")]
