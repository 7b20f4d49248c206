"""The deployment kit: schemas, linters, unit checks, and supervisord for real."""

import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from .bakery import BIN, PG_URL, ROOT, production_env, run
from .web import free_port, serving, wait_until

BACKEND = json.loads((ROOT / "cookiecutter.json").read_text())["_backends"][
    "django_tasks_db"
]


@pytest.fixture(scope="module")
def project(baked):
    return baked("default")


@pytest.fixture(scope="module")
def compose(project):
    return yaml.safe_load((project / "compose.yaml").read_text())


def unit_files(project):
    units = sorted((project / "deploy" / "systemd").glob("*.service"))
    assert len(units) == 3
    return units


def systemd_unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


def supervisord_conf(project):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(project / "deploy" / "supervisord" / "supervisord.conf")
    return parser


# Schemas and linters --------------------------------------------------------


def test_compose_file_matches_the_compose_spec(project):
    run(
        project,
        BIN / "check-jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        "compose.yaml",
    )


@pytest.mark.parametrize("where", ["template", "project"])
def test_github_workflows_match_their_schema(project, where):
    root = ROOT if where == "template" else project
    workflows = sorted((root / ".github" / "workflows").glob("*.yml"))
    assert workflows
    run(
        root,
        BIN / "check-jsonschema",
        "--builtin-schema",
        "vendor.github-workflows",
        *workflows,
    )


def test_dockerfile_passes_hadolint(project):
    result = run(project, BIN / "hadolint", "Dockerfile")
    assert result.stdout == ""


# compose.yaml ----------------------------------------------------------------


def test_compose_has_the_services_of_the_backend(compose):
    assert set(compose["services"]) == {"db", "mailpit", "migrate", "web", "worker"}


def test_compose_waits_for_healthy_dependencies(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            if "healthcheck" in services[dependency]:
                assert rule["condition"] == "service_healthy", (name, dependency)
            elif dependency == "migrate":
                assert rule["condition"] == "service_completed_successfully"
    assert set(services["worker"]["depends_on"]) == {"db", "migrate", "mailpit"}
    assert set(services["web"]["depends_on"]) == {"db", "migrate", "mailpit"}


def test_compose_publishes_no_database_and_only_loopback_ports(compose):
    assert "ports" not in compose["services"]["db"]
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_web_and_worker_share_the_media_volume(compose):
    services = compose["services"]
    assert "media:/app/media" in services["web"]["volumes"]
    assert "media:/app/media" in services["worker"]["volumes"]
    assert services["worker"]["environment"]["MEDIA_ROOT"] == "/app/media"


# Stop rules: the same in compose, supervisord and systemd ---------------------


def test_worker_stop_signal_and_grace_agree_everywhere(project, compose):
    signal_name = BACKEND["stop_signal"]
    grace = BACKEND["stop_grace_seconds"]

    worker = compose["services"]["worker"]
    assert worker["stop_signal"] == f"SIG{signal_name}"
    assert worker["stop_grace_period"] == f"{grace}s"

    program = supervisord_conf(project)["program:worker"]
    assert program["stopsignal"] == signal_name
    assert int(program["stopwaitsecs"]) == grace
    assert program["stopasgroup"] == "false"
    assert program["killasgroup"] == "true"

    unit = systemd_unit(next(project.glob("deploy/systemd/*-worker@.service")))
    assert unit["Service"]["KillSignal"] == f"SIG{signal_name}"
    assert unit["Service"]["KillMode"] == "mixed"
    assert int(unit["Service"]["TimeoutStopSec"]) == grace


def test_worker_script_stops_on_the_signal_the_managers_send(project):
    # The worker process must be the one the signal reaches: exec, no shell.
    script = (project / "bin" / "worker").read_text()
    assert re.search(r"^exec python manage.py db_worker --no-reload", script, re.M)


# systemd -------------------------------------------------------------------


@pytest.fixture(scope="module")
def systemd_root(project, tmp_path_factory):
    """A root with the units installed and their ExecStart paths present."""
    root = tmp_path_factory.mktemp("systemd-root")
    shutil.copytree(
        "/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True
    )
    shutil.copytree(project / "deploy" / "systemd", root / "etc/systemd/system")
    shutil.copytree(project / "bin", root / "srv" / project.name / "bin")
    return root


def test_systemd_units_verify_cleanly(project, systemd_root):
    names = [unit.name.replace("@.", "@1.") for unit in unit_files(project)]
    result = run(
        systemd_root,
        "systemd-analyze",
        "verify",
        "--man=no",
        f"--root={systemd_root}",
        *names,
    )
    assert result.stdout + result.stderr == ""


@pytest.mark.parametrize("unit", ["migrate", "web", "worker@"])
def test_systemd_units_are_hardened(project, unit):
    path = next(project.glob(f"deploy/systemd/*-{unit}.service"))
    result = run(project, "systemd-analyze", "security", "--offline=yes", str(path))
    score = float(
        re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout).group(1)
    )
    assert score <= 2.0, result.stdout


# supervisord, for real ------------------------------------------------------


def test_supervisord_runs_web_and_workers_and_stops_them(synced, tmp_path):
    project = synced("default")
    conf = project / "deploy" / "supervisord" / "supervisord.conf"
    port = free_port()
    env = {
        **production_env("supervisord"),
        "USE_HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PORT": str(port),
    }
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    maintenance = f"--maintenance-db={PG_URL}/postgres"
    run(project, "dropdb", "--if-exists", "--force", maintenance, database)
    run(project, "createdb", maintenance, database)
    venv = {"PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    run(project, "bin/migrate", env={**env, **venv})
    run(
        project,
        "python",
        "manage.py",
        "collectstatic",
        "--no-input",
        env={**env, **venv},
    )

    log_path = tmp_path / "supervisord.log"
    log = log_path.open("w")
    supervisord = subprocess.Popen(
        [BIN / "supervisord", "-c", conf],
        cwd=project,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def status():
            result = run(
                project, BIN / "supervisorctl", "-c", conf, "status", check=False
            )
            return result.stdout

        wait_until(lambda: status().count("RUNNING") == 3, 30, "3 programs RUNNING")
        assert re.search(r"^web\s+RUNNING", status(), re.M)
        assert len(re.findall(r"^worker:worker_\d\d\s+RUNNING", status(), re.M)) == 2
        serving(f"http://127.0.0.1:{port}/accounts/login/", timeout=30)
        # RUNNING means "up for 1 s"; a worker handles SIGTERM gracefully
        # once started (killed earlier, it had no task to lose).
        wait_until(
            lambda: log_path.read_text().count("Starting worker") == 2,
            30,
            "both workers to start",
        )

        supervisord.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert supervisord.wait(timeout=BACKEND["stop_grace_seconds"] + 10) == 0
        stopping = time.monotonic() - started
    finally:
        if supervisord.poll() is None:
            supervisord.kill()
            supervisord.wait()
    text = log_path.read_text()
    for program in ("web", "worker_00", "worker_01"):
        assert f"stopped: {program} (exit status 0)" in text, text
    # Idle workers exit at once on SIGTERM: nothing waited for the kill.
    assert stopping < BACKEND["stop_grace_seconds"], text
