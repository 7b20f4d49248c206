"""The deployment kit: schemas, linters, unit checks, and the processes for real.

No Docker engine and no systemd (as PID 1) run here, so the image build is
replayed natively from the Dockerfile's own instructions, and the systemd
sandbox is checked by tracing the real processes' system calls against the
units' filters.
"""

import configparser
import contextlib
import fnmatch
import io
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from PIL import Image

from .bakery import (
    BACKENDS,
    BIN,
    ROOT,
    backend_of,
    broker_of,
    fresh_database,
    production_env,
    python,
    run,
)
from .web import (
    PASSWORD,
    SlowInbox,
    catches,
    free_port,
    login,
    post,
    serving,
    settled,
    wait_until,
)

# The web process's own graceful stop (config/gunicorn.py).
GUNICORN_GRACE = re.compile(r"^graceful_timeout = (\d+)$", re.M)


@pytest.fixture(scope="module", params=BACKENDS)
def case(request):
    """Each backend's case: every test here runs once per backend."""
    return request.param


@pytest.fixture(scope="module")
def row(case):
    return backend_of(case)


@pytest.fixture(scope="module")
def project(baked, case):
    return baked(case)


@pytest.fixture(scope="module")
def compose(project):
    return yaml.safe_load((project / "compose.yaml").read_text())


def service_units(project, row):
    """The units, checked against the row: a scheduler's unit exactly when
    the backend has a scheduler process."""
    units = sorted((project / "deploy" / "systemd").glob("*.service"))
    names = [unit.name.split("-", 1)[1] for unit in units]
    optional = ["scheduler.service"] if row["scheduler"] else []
    assert names == ["migrate.service", *optional, "web.service", "worker@.service"]
    return units


def systemd_unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


def supervisord_programs(project):
    """deploy/supervisord/<slug>.conf: the file that conf.d includes."""
    return project / "deploy" / "supervisord" / f"{project.name}.conf"


def supervisord_conf(project):
    """The programs file, with sections named as in the other files (web, ...)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(supervisord_programs(project))
    prefix = f"program:{project.name}-"
    renamed = configparser.ConfigParser(interpolation=None)
    for name in parser.sections():
        renamed[name.replace(prefix, "program:")] = parser[name]
    return renamed


def prepare_release(project, env, username):
    """What a deploy does before starting processes, on a fresh database.

    Migrations (bin/migrate), static files, and one user to log in as.
    """
    fresh_database(env)
    venv = {"PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    run(project, "bin/migrate", env={**env, **venv})
    run(project, python(project), "manage.py", "collectstatic", "--no-input", env=env)
    run(
        project,
        python(project),
        "manage.py",
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user({username!r}, password={PASSWORD!r})",
        env=env,
    )


def alive(pid):
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def children(process):
    """The pids of ``process``'s children, none once it has ended."""
    path = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    try:
        return [int(pid) for pid in path.read_text().split()]
    except FileNotFoundError:
        return []


def child(process, marker):
    """The child of ``process`` whose command line contains ``marker``."""
    for pid in children(process):
        with contextlib.suppress(FileNotFoundError):
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def stop(process, timeout):
    """SIGTERM, then SIGKILL after ``timeout`` seconds; never waits longer."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def kill_groups(pids):
    """SIGKILL what is left of process groups led by ``pids``."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def smtp():
    inbox = SlowInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


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
    folder = root / ".github" / "workflows"
    workflows = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    assert workflows, f"no workflow in {folder}"
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


# The image, built without Docker ---------------------------------------------


def dockerfile_stages(path):
    """[(base, [(instruction, arguments), ...]), ...], continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append((arguments, []))
        else:
            stages[-1][1].append((instruction.upper(), arguments.strip()))
    return stages


def docker_ignored(patterns, relative):
    """.dockerignore's rule: the last matching pattern wins; ! re-includes."""
    parts = relative.split("/")
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        candidates = {pattern, pattern.removeprefix("**/")}
        # A pattern that matches a folder matches everything inside it.
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            ignored = not negated
    return ignored


def build_context(project, destination):
    lines = (project / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip()[:1] not in {"", "#"}]
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if path.is_file() and not docker_ignored(patterns, relative):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return destination


@pytest.fixture(scope="module")
def image(project, tmp_path_factory):
    """Replay the build stage's instructions natively; returns /app's copy.

    COPY from the context (filtered by .dockerignore), ENV, WORKDIR and RUN
    are followed; uv comes from the template's venv instead of its image,
    and the interpreter from .python-version instead of /usr/local/bin.
    """
    root = tmp_path_factory.mktemp("image")
    context = build_context(project, root / "context")
    # As if checked out with umask 077: nothing readable by others.
    for path in context.rglob("*"):
        path.chmod(path.stat().st_mode & 0o700)
    (build_base, build), (final_base, final) = dockerfile_stages(project / "Dockerfile")
    assert build_base.startswith("python:3.13-slim")
    assert final_base.startswith("python:3.13-slim")
    # Nothing else from this machine: a build sees no DEBUG, key or database.
    env = {"HOME": os.environ["HOME"], "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    workdir = root
    for instruction, arguments in build:
        if instruction == "ENV":
            env.update(dict(item.split("=", 1) for item in shlex.split(arguments)))
            env.pop("UV_PYTHON", None)
        elif instruction == "WORKDIR":
            workdir = root / arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY" and not arguments.startswith("--from="):
            *sources, destination = shlex.split(arguments)
            assert destination in {".", "./"}
            for source in sources:
                for path in [context] if source == "." else context.glob(source):
                    if path.is_dir():
                        shutil.copytree(path, workdir, dirs_exist_ok=True)
                    else:
                        shutil.copy2(path, workdir / path.name)
        elif instruction == "RUN":
            command = re.sub(r"--mount=\S+\s+", "", arguments)
            run(workdir, "sh", "-c", command, env=env, timeout=300)
    assert ("COPY", "--from=build /app /app") in final
    return workdir


def test_image_holds_no_secret_or_local_state(image):
    for name in (".env", ".git", "db.sqlite3", "media", "deploy"):
        assert not (image / name).exists(), name


def test_image_is_readable_by_its_unprivileged_user(image):
    def readable(path):
        needed = 0o005 if path.is_dir() else 0o004  # others: r-x / r--
        return path.is_symlink() or path.stat().st_mode & needed == needed

    unreadable = [path for path in image.rglob("*") if not readable(path)]
    assert unreadable == []


def test_image_has_static_files_and_no_dev_tools(image):
    assert (image / "staticfiles" / "admin" / "css" / "base.css").is_file()
    assert (image / ".venv" / "bin" / "gunicorn").is_file()
    assert not (image / ".venv" / "bin" / "pytest").exists()


def test_image_runs_the_web_app_with_production_settings(image, case, tmp_path):
    # Loads config.wsgi, so settings and every import, from the --no-dev venv.
    env = {
        **production_env(f"image_{case}", case),
        "MEDIA_ROOT": str(tmp_path),
        "PATH": f"{image / '.venv' / 'bin'}{os.pathsep}/usr/bin:/bin",
    }
    run(
        image,
        "gunicorn",
        "--check-config",
        "--config",
        "config/gunicorn.py",
        "config.wsgi",
        env=env,
        timeout=60,
    )


# compose.yaml ----------------------------------------------------------------


def app_services(row):
    """What web and worker wait for: the database, migrations, mail, the
    uploads' S3 server, the broker."""
    broker = {row["broker"]} if row["broker"] else set()
    return {"db", "migrate", "mailpit", "s3"} | broker


def processes(row):
    """The long-running processes: web, worker, and a scheduler if any."""
    return {"web", "worker"} | ({"scheduler"} if row["scheduler"] else set())


def test_compose_has_the_services_of_the_backend(compose, row):
    assert set(compose["services"]) == app_services(row) | processes(row)


def test_compose_broker_is_persisted_healthchecked_and_not_published(compose, case):
    broker = broker_of(case)
    if broker is None:
        images = [s.get("image", "") for s in compose["services"].values()]
        assert not [image for image in images if re.search("redis|rabbitmq", image)]
        return
    service = compose["services"][backend_of(case)["broker"]]
    assert service["image"] == broker["service"]["image"]
    assert service["command"] == broker["service"]["command"]
    assert "appendonly" not in broker["service"]["command"] or (
        broker["service"]["command"][-2:] == ["--appendonly", "yes"]
    )
    assert service["volumes"] == [
        f"{backend_of(case)['broker']}:{broker['service']['data']}"
    ]
    assert service["healthcheck"]["test"] == broker["service"]["healthcheck"]
    assert "ports" not in service
    # A user and password of the project's, never a default one.
    slug = compose["name"]
    if broker["compose_password"]:
        assert "guest" not in json.dumps(service)
    expected = {
        name: value.replace("{slug}", slug)
        for name, value in broker["service"]["environment"].items()
    }
    assert service.get("environment", {}) == expected
    for name in ("web", "worker"):
        environment = compose["services"][name]["environment"]
        url = broker["compose_url"].replace("{slug}", slug)
        assert environment[broker["url_variable"]] == url


def assert_healthy_dependencies(services):
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            if "healthcheck" in services[dependency]:
                assert rule["condition"] == "service_healthy", (name, dependency)
            elif dependency == "migrate":
                assert rule["condition"] == "service_completed_successfully"


def test_compose_waits_for_healthy_dependencies(compose, row):
    services = compose["services"]
    assert_healthy_dependencies(services)
    for name in processes(row):
        assert set(services[name]["depends_on"]) == app_services(row), name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert "restart" not in services["migrate"]


def test_compose_services_run_the_start_scripts(compose, row):
    for name in {"migrate", *processes(row)}:
        assert compose["services"][name]["command"] == f"bin/{name}"


def test_compose_publishes_no_database_and_only_loopback_ports(compose):
    assert "ports" not in compose["services"]["db"]
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_web_and_worker_keep_uploads_in_the_s3_services_bucket(compose):
    """No media volume: web and worker share no disk, as on two machines;
    the s3 service keeps the bucket in a volume of its own, unpublished."""
    services = compose["services"]
    bucket = compose["name"].replace("_", "-")
    for name in ("web", "worker", "migrate"):
        environment = services[name]["environment"]
        assert (environment["S3_BUCKET"], environment["S3_ENDPOINT_URL"]) == (
            bucket,
            "http://s3:8333",
        ), name
        assert environment["AWS_SECRET_ACCESS_KEY"].startswith("${STORAGE_PASSWORD:?")
        assert not [v for v in services[name].get("volumes", []) if "media" in v]
    s3 = services["s3"]
    assert f"-bucket={bucket}" in s3["command"]
    assert s3["volumes"] == ["objects:/data"]
    assert "ports" not in s3
    assert s3["healthcheck"]["test"][-1] == "http://127.0.0.1:8333/healthz"


def test_web_and_worker_share_the_state_volume_when_the_backend_has_one(
    compose, row, project
):
    services = compose["services"]
    shared = ["state:/app/var" in s.get("volumes", []) for s in services.values()]
    # migrate and every process
    assert sum(shared) == (1 + len(processes(row)) if row["state_volume"] else 0)
    # The image says where state goes, whatever the backend (SQLite too).
    assert "STATE_DIRECTORY=/app/var" in (project / "Dockerfile").read_text()


def test_compose_file_has_no_blank_line_runs(project):
    lines = (project / "compose.yaml").read_text().splitlines()
    assert not [i for i, line in enumerate(lines) if line == "" == lines[i - 1]]
    assert lines[-1].strip()


def test_supervisord_programs_fit_the_servers_layout(project, row):
    """Included from conf.d by a root supervisord under an init system: no
    path relative to the file, no /dev/stdout (a journal socket there), and
    never root for the programs."""
    text = supervisord_programs(project).read_text()
    assert "%(here)s" not in text
    assert "/dev/stdout" not in text
    conf = supervisord_conf(project)
    programs = [name for name in conf.sections() if name.startswith("program:")]
    assert len(programs) == len(processes(row))
    slug = project.name
    group = conf[f"group:{slug}"]["programs"].split(",")
    assert sorted(group) == sorted(f"{slug}-{p.split(':')[1]}" for p in programs)
    for name in programs:
        program = conf[name]
        assert program["user"] == slug
        assert program["command"].startswith(f"/srv/{slug}/bin/")
        assert program["directory"] == f"/srv/{slug}"
        assert f'ENV_FILE="/etc/{slug}/env"' in program["environment"]
        assert program["stdout_logfile"].startswith(f"/var/log/{slug}/")
        assert program["redirect_stderr"] == "true"


# Stop rules: the same in compose, supervisord and systemd ---------------------


def test_worker_stop_signal_and_grace_agree_everywhere(project, compose, row):
    signal_name = row["stop_signal"]
    grace = row["stop_grace_seconds"]

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


def test_the_scheduler_is_one_process_with_its_stop_rule_everywhere(
    project, compose, row
):
    scheduler = row["scheduler"]
    programs = supervisord_conf(project).sections()
    assert ("program:scheduler" in programs) == bool(scheduler)
    assert (project / "bin" / "scheduler").exists() == bool(scheduler)
    procfile = (project / "Procfile").read_text().splitlines()
    assert ("scheduler: bin/scheduler" in procfile) == bool(scheduler)
    if not scheduler:
        return
    service = compose["services"]["scheduler"]
    assert service["stop_signal"] == f"SIG{scheduler['stop_signal']}"
    assert service["stop_grace_period"] == f"{scheduler['stop_grace_seconds']}s"
    assert "deploy" not in service  # one replica, never scaled with workers
    program = supervisord_conf(project)["program:scheduler"]
    assert program["stopsignal"] == scheduler["stop_signal"]
    assert int(program["stopwaitsecs"]) == scheduler["stop_grace_seconds"]
    assert "numprocs" not in program
    unit = systemd_unit(next(project.glob("deploy/systemd/*-scheduler.service")))
    assert unit["Service"]["KillSignal"] == f"SIG{scheduler['stop_signal']}"
    assert unit["Service"]["KillMode"] == "mixed"
    assert int(unit["Service"]["TimeoutStopSec"]) == scheduler["stop_grace_seconds"]
    script = (project / "bin" / "scheduler").read_text()
    assert f'\nexec {scheduler["command"]} "$@"\n' in script
    assert os.access(project / "bin" / "scheduler", os.X_OK)


def test_web_stop_grace_agrees_everywhere_and_outlasts_gunicorns(project, compose):
    gunicorn = int(
        GUNICORN_GRACE.search((project / "config" / "gunicorn.py").read_text())[1]
    )
    unit = systemd_unit(next(project.glob("deploy/systemd/*-web.service")))
    program = supervisord_conf(project)["program:web"]
    graces = {
        compose["services"]["web"]["stop_grace_period"],
        program["stopwaitsecs"] + "s",
        unit["Service"]["TimeoutStopSec"] + "s",
    }
    assert len(graces) == 1, graces
    assert int(graces.pop().removesuffix("s")) > gunicorn
    assert program["stopsignal"] == "TERM"
    assert unit["Service"]["KillSignal"] == "SIGTERM"


def test_worker_script_execs_the_backends_worker_command(project, row):
    # The worker process must be the one the signal reaches: exec, no shell.
    script = (project / "bin" / "worker").read_text()
    assert f'\nexec {row["worker_command"]} "$@"\n' in script


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
    # ExecReload= of the web unit.
    (root / "bin").mkdir()
    shutil.copy(shutil.which("kill"), root / "bin" / "kill")
    return root


def test_systemd_units_verify_cleanly(project, row, systemd_root):
    units = [unit.name.replace("@.", "@1.") for unit in service_units(project, row)]
    result = run(
        systemd_root,
        "systemd-analyze",
        "verify",
        "--man=no",
        f"--root={systemd_root}",
        *units,
        f"{project.name}.target",
    )
    assert result.stdout + result.stderr == ""


def test_systemd_units_are_hardened(project, row):
    for path in service_units(project, row):
        result = run(project, "systemd-analyze", "security", "--offline=yes", str(path))
        score = float(
            re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)[1]
        )
        assert score <= 2.0, (path.name, result.stdout)


def test_systemd_units_share_one_sandbox(project, row):
    def sandbox(path):
        text = path.read_text()
        return text[text.index("\nNoNewPrivileges=") :].split("\n[")[0].strip()

    sandboxes = {sandbox(path) for path in service_units(project, row)}
    assert len(sandboxes) == 1


def test_systemd_units_run_the_start_scripts_as_the_project_user(project, case, row):
    slug = project.name
    for path in service_units(project, row):
        name = path.name.removeprefix(f"{slug}-").split("@")[0].split(".")[0]
        service = systemd_unit(path)["Service"]
        assert service["ExecStart"] == f"/srv/{slug}/bin/{name}"
        assert service["WorkingDirectory"] == f"/srv/{slug}"
        assert service["EnvironmentFile"] == f"/etc/{slug}/env"
        assert service["User"] == slug
        assert service["StateDirectory"] == slug
        assert systemd_unit(path)["Unit"]["PartOf"] == f"{slug}.target"
    for name in ("web", "worker@", "scheduler"):
        path = next(project.glob(f"deploy/systemd/*-{name}.service"), None)
        if path is None:
            continue
        unit = systemd_unit(path)
        assert unit["Unit"]["Requires"] == f"{slug}-migrate.service"
        assert unit["Unit"]["After"].startswith(f"{slug}-migrate.service")
        broker = broker_of(case)
        if broker:
            assert broker["systemd_unit"] in unit["Unit"]["After"].split()
            assert broker["systemd_unit"] in unit["Unit"]["Wants"].split()
        assert unit["Install"]["WantedBy"] == f"{slug}.target"


def syscall_group(name):
    """The system calls of ``@group`` (nested groups expanded), or {name}."""
    if not name.startswith("@"):
        return {name}
    output = run(ROOT, "systemd-analyze", "syscall-filter", name).stdout
    calls = set()
    for line in output.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            calls |= syscall_group(line)
    return calls


def trace_web_and_worker(project, case, folder):
    """Run web and worker under strace through an upload and an email."""
    inbox = SlowInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    port = free_port()
    env = {
        **production_env(f"sandbox_{case}", case),
        "USE_HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(controller.port),
        "MEDIA_ROOT": str(folder / "media"),
        "PORT": str(port),
        "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    prepare_release(project, env, "tracy")
    tracers = {}
    for name in ("web", "worker"):
        tracers[name] = subprocess.Popen(
            ["strace", "-f", "-qq", "-o", folder / f"{name}.trace", f"bin/{name}"],
            cwd=project,
            env={**os.environ, **env},
            stdout=(folder / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )

    try:
        # strace forks short-lived probes first: find the started command.
        pids = {
            "web": wait_until(lambda: child(tracers["web"], b"gunicorn"), 30, "web"),
            "worker": wait_until(
                lambda: child(tracers["worker"], b"manage.py"), 30, "worker"
            ),
        }
        base_url = f"http://127.0.0.1:{port}"
        serving(f"{base_url}/accounts/login/", timeout=60)
        client = login({"url": base_url}, "tracy")
        jpeg = io.BytesIO()
        Image.new("RGB", (1600, 1200), "navy").save(jpeg, "JPEG")
        response = post(
            client, "/photos/", files={"image": ("sky.jpg", jpeg.getvalue())}
        )
        assert settled(client, response.json()["status_url"], 60)["status"] == "done"
        response = post(
            client,
            "/notifications/",
            data={"subject": "Traced", "message": "m", "recipients": "a@example.org"},
        )
        assert settled(client, response.json()["status_url"], 60)["status"] == "done"
        client.close()
        # Stopped as systemd stops them: SIGTERM to the main process.
        for pid in pids.values():
            os.kill(pid, signal.SIGTERM)
        for tracer in tracers.values():
            assert tracer.wait(timeout=60) == 0
    finally:
        # strace does not stop its command on SIGTERM: end the command first.
        for tracer in tracers.values():
            for pid in children(tracer):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            stop(tracer, 10)
        controller.stop()
    return {name: (folder / f"{name}.trace").read_text() for name in tracers}


def test_web_and_worker_stay_inside_the_systemd_sandbox(synced, case, tmp_path):
    """Every system call, socket and mapping of a traced run is allowed."""
    project = synced(case)
    traces = trace_web_and_worker(project, case, tmp_path)
    for process, trace in traces.items():
        path = next(project.glob(f"deploy/systemd/*-{process}*.service"))
        service = systemd_unit(path)["Service"]
        allowed, denied = set(), set()
        # Repeated keys add up: the first list allows, "~" lists then deny.
        for value in re.findall(r"^SystemCallFilter=(.+)$", path.read_text(), re.M):
            target = denied if value.startswith("~") else allowed
            for name in value.removeprefix("~").split():
                target |= syscall_group(name)
        calls = set(re.findall(r"^\d+\s+(\w+)\(", trace, re.M))
        assert len(calls) > 20, trace[:2000]
        if os.geteuid() == 0:
            # SQLite gives a new WAL file its database's owner when it runs
            # as root, and only then (robustFchown); the units never do.
            calls.discard("fchown")
        assert sorted(calls - (allowed - denied)) == [], process
        families = set(re.findall(r"\bsocket\((AF_\w+)", trace))
        assert families <= set(service["RestrictAddressFamilies"].split()), process
        # MemoryDenyWriteExecute=: no mapping both writable and executable,
        # and no mprotect() that makes memory executable.
        assert service["MemoryDenyWriteExecute"] == "yes"
        assert not re.findall(
            r"^\d+\s+(?:mmap\(.*PROT_WRITE\|PROT_EXEC|(?:pkey_)?mprotect\(.*PROT_EXEC)",
            trace,
            re.M,
        ), process


# supervisord, for real ------------------------------------------------------


def supervisord_main(folder, programs):
    """A main config as Debian's supervisor package ships one: supervisord
    in the foreground under an init system, programs included from a file."""
    main = folder / "supervisord.conf"
    main.write_text(
        "[supervisord]\n"
        "nodaemon=true\n"
        f"logfile={folder / 'supervisord.log'}\n"
        f"pidfile={folder / 'supervisord.pid'}\n"
        f"childlogdir={folder}\n"
        "[unix_http_server]\n"
        f"file={folder / 'supervisor.sock'}\n"
        "chmod=0700\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = "
        "supervisor.rpcinterface:make_main_rpcinterface\n"
        "[supervisorctl]\n"
        f"serverurl=unix://{folder / 'supervisor.sock'}\n"
        "[include]\n"
        f"files = {programs}\n"
    )
    return main


@pytest.fixture
def supervisord(synced, case, row, smtp, tmp_path):
    """supervisord running the project's web and workers, stopped after.

    deploy/supervisord/<slug>.conf is included as the guide says, with its
    server paths (/srv, /etc, /var/log) and user moved to this test's: each
    replaced line must be found, so a change to the file cannot escape.
    """
    project = synced(case)
    slug = project.name
    inbox, smtp_port = smtp
    # A socket's path has at most 107 bytes: not pytest's long temporary path.
    folder = Path(tempfile.mkdtemp(prefix="offload-", dir="/tmp"))
    port = free_port()
    env = {
        **production_env(f"supervisord_{case}", case),
        "USE_HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PORT": str(port),
    }
    prepare_release(project, env, "sue")
    # The settings reach the programs only through the env file (ENV_FILE).
    env_file = folder / "env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    logs = folder / "log"
    logs.mkdir()
    text = supervisord_programs(project).read_text()
    for old, new in [
        (f"/srv/{slug}", str(project)),
        (f"/etc/{slug}/env", str(env_file)),
        (f"/var/log/{slug}/", f"{logs}/"),
        (f"user={slug}\n", f"user={pwd.getpwuid(os.getuid()).pw_name}\n"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    programs = folder / f"{slug}.conf"
    programs.write_text(text)
    conf = supervisord_main(folder, programs)
    # supervisord's own environment: nothing of the project's.
    bare = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    process = subprocess.Popen(
        [BIN / "supervisord", "-n", "-c", conf],
        cwd="/",
        env=bare,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    handle = {
        "process": process,
        "project": project,
        "slug": slug,
        "conf": conf,
        "log": folder / "supervisord.log",
        "logs": logs,
        "url": f"http://127.0.0.1:{port}",
        "inbox": inbox,
        "env": env,
        "pids": set(),
    }
    try:
        yield handle
    finally:
        stop(process, row["stop_grace_seconds"] + 10)
        # supervisord's programs lead their own process groups: if it had to
        # be killed, they are still running.
        kill_groups(handle["pids"])
        shutil.rmtree(folder)


def program_logs(handle):
    return "".join(path.read_text() for path in sorted(handle["logs"].glob("*.log")))


def supervisorctl(handle, *args):
    return run(
        handle["project"],
        BIN / "supervisorctl",
        "-c",
        handle["conf"],
        *args,
        check=False,
    ).stdout


def test_supervisord_runs_web_and_workers_and_lets_the_running_task_finish(
    supervisord, row
):
    handle = supervisord
    programs = 4 if row["scheduler"] else 3
    wait_until(
        lambda: supervisorctl(handle, "status").count("RUNNING") == programs,
        30,
        f"{programs} programs RUNNING",
    )
    status = supervisorctl(handle, "status")
    slug = handle["slug"]
    assert re.search(rf"^{slug}:web\s+RUNNING", status, re.M), status
    assert len(re.findall(rf"^{slug}:worker_\d\d\s+RUNNING", status, re.M)) == 2
    handle["pids"] |= {int(pid) for pid in supervisorctl(handle, "pid", "all").split()}
    assert len(handle["pids"]) == programs
    serving(f"{handle['url']}/accounts/login/", timeout=30)
    # RUNNING means "up for 1 s"; a worker handles SIGTERM gracefully once
    # its loop has started.
    # (Each worker's log says so, once per process it runs.)
    logs = [handle["logs"] / f"worker_{n:02d}.log" for n in range(2)]
    wait_until(
        lambda: all(
            log.exists() and row["ready_marker"] in log.read_text() for log in logs
        ),
        30,
        "both workers to start",
    )
    if row["scheduler"]:
        wait_until(
            lambda: row["scheduler"]["ready_marker"] in program_logs(handle),
            30,
            "the scheduler to start",
        )
    wait_until(
        lambda: all(catches(pid) for pid in handle["pids"]),
        30,
        "the processes' signal handlers",
    )

    # A task that is in the middle of sending when supervisord is stopped.
    handle["inbox"].delay = 3
    client = login(handle, "sue")
    response = post(
        client,
        "/notifications/",
        data={"subject": "Stop", "message": "m", "recipients": "a@example.org"},
    )
    client.close()
    assert response.status_code == 202, response.text
    wait_until(lambda: handle["inbox"].receiving, 30, "the task to start sending")

    handle["process"].send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert handle["process"].wait(timeout=row["stop_grace_seconds"] + 10) == 0
    stopping = time.monotonic() - started

    log = handle["log"].read_text()
    scheduler = ["scheduler"] if row["scheduler"] else []
    for program in ("web", "worker_00", "worker_01", *scheduler):
        assert f"stopped: {program} (exit status 0)" in log, log
    # The running task finished: its message was accepted, its job is done.
    assert len(handle["inbox"].envelopes) == 1, log
    status = run(
        handle["project"],
        python(handle["project"]),
        "manage.py",
        "shell",
        "--verbosity=0",
        "-c",
        "from notifications.models import Notification; "
        "print(Notification.objects.get().status)",
        env=handle["env"],
    ).stdout.strip()
    assert status == "done", log
    # It waited for the task, not for the kill.
    assert 2 < stopping < row["stop_grace_seconds"], log
    assert not [pid for pid in handle["pids"] if alive(pid)]
