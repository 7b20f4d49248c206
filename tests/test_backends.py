"""The backend seam: one row in cookiecutter.json and one folder per backend.

A backend is complete when its prompt label, its `_backends` row and its
folder `templates/backends/<name>/` all exist and agree, and the folder has
every file the shared template includes. The shared template never names a
backend: adding one needs no edit outside its row, its folder and, for a new
broker, one `_brokers` row.
"""

import json
import re
import shlex
import signal

import pytest

from .bakery import ROOT, TEMPLATE

BACKENDS_DIR = ROOT / "templates" / "backends"
SHARED = ROOT / "{{cookiecutter.project_slug}}"
# `{% include "backends/" ~ cookiecutter.task_backend ~ "/<path>" ... %}`
INCLUDE_TAG = re.compile(r"\{% include .*? %\}")
INCLUDE = re.compile(
    r'"backends/" ~ cookiecutter\.task_backend ~ "/([^"]+)"( ignore missing)?'
)
ROW_KEYS = {
    "label": str,
    "library": str,
    "packages": list,
    "modules": list,
    "broker": (str, type(None)),
    "worker_command": str,
    "worker_dev_flags": str,
    "stop_signal": str,
    "stop_grace_seconds": int,
    "ready_marker": str,
    # The finest schedule its scheduler keeps (tests/test_schedule.py).
    "schedule_resolution_seconds": int,
    # A scheduler process of its own (bin/scheduler), or None: the workers
    # schedule, or nothing needs one.
    "scheduler": (dict, type(None)),
    "state_volume": bool,
    "delivery": dict,
    # Python for `manage.py shell -c` that prints how many tasks wait or run:
    # the README's drain step before a switch (tests/test_switch.py).
    "waiting": str,
    # The README's porting table: how each thing a task needs is written.
    "porting": dict,
    # The KEDA trigger on the depth of its queue (deploy/kubernetes), or
    # None: no worker autoscaling (tests/test_kubernetes.py).
    "keda": (dict, type(None)),
}
PORTING_KEYS = {"task", "enqueue", "retries", "delay", "schedule", "failed"}
SCHEDULER_KEYS = {
    "command": str,
    "stop_signal": str,
    "stop_grace_seconds": int,
    "ready_marker": str,
}
BROKER_KEYS = {
    "label": str,
    "url_variable": str,
    "default_url": str,
    "compose_url": str,
    "port": int,
    "service": dict,
    "systemd_unit": str,
    # On a server (the README's guide): Debian's package of the broker, its
    # address there, and the commands that make it keep what it is given
    # across restarts.
    "debian_package": str,
    "server_url": str,
    "server_setup": list,
    # What the guide says of it after those commands.
    "server_text": str,
    # compose.yaml's service asks for BROKER_PASSWORD (.env, written by the
    # post-generation hook).
    "compose_password": bool,
}
DELIVERY = {"at-most-once", "at-least-once"}


def shared_files():
    return [path for path in SHARED.rglob("*") if path.is_file()]


def included_paths(optional=False):
    """Paths inside a backend folder that the shared files include: those
    every backend must fill, or (``optional``) those a backend may leave."""
    paths = set()
    for path in shared_files():
        for included, ignore_missing in INCLUDE.findall(path.read_text("utf-8")):
            if bool(ignore_missing) == optional:
                paths.add(included)
    return paths


def folder_files(name):
    folder = BACKENDS_DIR / name
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


# A whole file that is another one under templates/: another backend's
# (two backends of one library), or a shared piece (templates/schedulers/).
SHARED_FILE = re.compile(r'\{% include "([^"]+)" %\}')


def folder_text(name, path):
    """A backend folder's file, or the file it includes whole."""
    return template_text(BACKENDS_DIR / name / path)


def template_text(path):
    text = path.read_text()
    shared = SHARED_FILE.fullmatch(text)
    return template_text(ROOT / "templates" / shared[1]) if shared else text


def test_choices_labels_rows_and_folders_are_the_same_backends():
    choices = TEMPLATE["task_backend"]
    labels = TEMPLATE["__prompts__"]["task_backend"]
    folders = sorted(path.name for path in BACKENDS_DIR.iterdir() if path.is_dir())
    assert sorted(choices) == sorted(TEMPLATE["_backends"]) == folders
    assert sorted(choices) == sorted(set(labels) - {"__prompt__"})
    for name in choices:
        assert labels[name] == TEMPLATE["_backends"][name]["label"], name


@pytest.mark.parametrize("name", TEMPLATE["task_backend"])
def test_each_row_has_every_field_the_shared_files_read(name):
    row = TEMPLATE["_backends"][name]
    assert set(row) == set(ROW_KEYS), name
    for key, kind in ROW_KEYS.items():
        assert isinstance(row[key], kind), (name, key)
    assert row["broker"] is None or row["broker"] in TEMPLATE["_brokers"]
    assert hasattr(signal, f"SIG{row['stop_signal']}")
    assert row["stop_grace_seconds"] > 0
    assert set(row["porting"]) == PORTING_KEYS, name
    assert all(
        isinstance(cell, str) and "|" not in cell for cell in row["porting"].values()
    )
    assert set(row["delivery"]) == {"stopped", "killed", "second_signal"}
    assert row["delivery"]["stopped"] == "finishes"
    assert row["delivery"]["killed"] in DELIVERY
    assert row["delivery"]["second_signal"] in {"requeued", "lost", "finishes"}
    assert shlex.split(row["worker_command"])[:2] == ["python", "manage.py"]
    if row["scheduler"] is not None:
        assert set(row["scheduler"]) == set(SCHEDULER_KEYS), name
        for key, kind in SCHEDULER_KEYS.items():
            assert isinstance(row["scheduler"][key], kind), (name, key)
        assert hasattr(signal, f"SIG{row['scheduler']['stop_signal']}")
        assert row["scheduler"]["stop_grace_seconds"] > 0
        command = shlex.split(row["scheduler"]["command"])
        assert command[:2] == ["python", "manage.py"]


@pytest.mark.parametrize("name", sorted(TEMPLATE["_brokers"]))
def test_each_broker_row_has_what_compose_ci_and_systemd_need(name):
    broker = TEMPLATE["_brokers"][name]
    assert set(broker) == set(BROKER_KEYS), name
    for key, kind in BROKER_KEYS.items():
        assert isinstance(broker[key], kind), (name, key)
    service = broker["service"]
    assert set(service) == {"image", "command", "data", "healthcheck", "environment"}
    uses_password = "BROKER_PASSWORD" in json.dumps([broker["compose_url"], service])
    assert uses_password == broker["compose_password"]
    assert broker["service"]["healthcheck"][0] == "CMD"
    assert f":{broker['port']}" in broker["default_url"]
    assert broker["compose_url"].startswith(broker["default_url"].split(":")[0])
    # The compose service's name, after the credentials if any.
    assert re.search(rf"[/@]{name}:", broker["compose_url"])
    assert broker["systemd_unit"].endswith(".service")
    assert [row for row in TEMPLATE["_backends"].values() if row["broker"] == name]


@pytest.mark.parametrize("name", TEMPLATE["task_backend"])
def test_each_folder_fills_exactly_the_paths_the_shared_template_includes(name):
    # benchmark.py is the benchmark's driver (benchmarks/run.py), not baked.
    files = folder_files(name) - {"benchmark.py"}
    assert files - included_paths(optional=True) == included_paths()


def test_optional_files_are_removed_by_the_hook_when_a_backend_leaves_them():
    hook = (ROOT / "hooks" / "post_gen_project.py").read_text()
    for path in included_paths(optional=True):
        own = INCLUDE_TAG.sub("", (SHARED / path).read_text()).strip()
        # A file with text of its own around the include is never empty.
        assert own or f'"{path}"' in hook, path


@pytest.mark.parametrize("name", TEMPLATE["task_backend"])
def test_each_worker_script_execs_the_rows_worker_command(name):
    script = folder_text(name, "bin/worker")
    assert script.startswith("#!/bin/sh\n")
    assert f'\nexec {TEMPLATE["_backends"][name]["worker_command"]} "$@"\n' in script


@pytest.mark.parametrize("name", TEMPLATE["task_backend"])
def test_a_scheduler_script_exists_exactly_when_the_row_has_a_scheduler(name):
    scheduler = TEMPLATE["_backends"][name]["scheduler"]
    script = BACKENDS_DIR / name / "bin" / "scheduler"
    assert script.exists() == (scheduler is not None)
    if scheduler:
        text = folder_text(name, "bin/scheduler")
        assert text.startswith("#!/bin/sh\n")
        assert f'\nexec {scheduler["command"]} "$@"\n' in text


def test_the_shared_template_never_names_a_backend_or_broker():
    names = [*TEMPLATE["_backends"], *TEMPLATE["_brokers"]]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    found = []
    for path in shared_files():
        for number, line in enumerate(path.read_text(errors="replace").split("\n")):
            if pattern.search(line):
                found.append(f"{path.relative_to(SHARED)}:{number + 1}: {line}")
    for path in (ROOT / "hooks").glob("*.py"):
        if pattern.search(path.read_text()):
            found.append(str(path.relative_to(ROOT)))
    assert found == []
