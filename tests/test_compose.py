"""`docker compose up`, for real: the generated README's commands on an engine.

`bash .ci/docker` prepares the engine, the Compose plugin and the images the
project names: pulled where a registry answers, stand-ins built from Debian
packages where none does (this machine). The tests run the README's own
commands (read from its "With Docker" section), with one CI-only override
file: builds use the host's network (an engine without iptables rules gives
its default bridge no way out) and published ports are ephemeral, so that
two stacks and the rest of the suite never compete for a port. Everything a
user does then goes through the published HTTP port.

Cases: the default backend, and one backend per broker (the one with a
scheduler process first, so that compose's scheduler service runs too):
tests/bakery.py HEAVY. tests/test_conformance.py shows that the others'
compose files differ from theirs only in what the cheaper checks cover.
"""

import datetime as dt
import json
import os
import re
import shlex
import signal
import subprocess
import time
import tomllib

import httpx
import pytest

from .bakery import HEAVY, backend_of, run
from .web import (
    PASSWORD,
    http_contract,
    login,
    mailpit_recipients,
    noise_png,
    notify,
    post,
    sending,
    serving,
    settled,
    wait_until,
)

pytestmark = pytest.mark.compose


def docker_section(project):
    """The generated README's "With Docker" section."""
    readme = (project / "README.md").read_text()
    return readme.split("### With Docker", 1)[1].split("\n#", 1)[0]


def readme_commands(project):
    """The console lines of the README's "With Docker" section."""
    block = re.search(r"```console\n(.*?)```", docker_section(project), re.S)[1]
    lines = block.splitlines()
    return [shlex.split(line[2:]) for line in lines if line.startswith("$ ")]


def override(project, folder):
    """The CI-only compose file: host network for builds, ephemeral ports."""
    import yaml

    services = yaml.safe_load((project / "compose.yaml").read_text())["services"]
    lines = ["services:"]
    for name, service in services.items():
        if "build" not in service and "ports" not in service:
            continue
        lines.append(f"  {name}:")
        if "build" in service:
            lines.append("    build: {context: ., network: host}")
        if "ports" in service:
            targets = [port.rsplit(":", 1)[1] for port in service["ports"]]
            ports = ", ".join(f'"127.0.0.1::{target}"' for target in targets)
            lines.append(f"    ports: !override [{ports}]")
    path = folder / "compose.ci.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def compose(stack, *args, timeout=600, check=True):
    return run(
        stack["project"], "docker", "compose", *args,
        env=stack["env"], timeout=timeout, check=check,
    )  # fmt: skip


def containers(stack):
    """``docker compose ps -a``: one dict per container, by service."""
    out = compose(stack, "ps", "--all", "--format", "json").stdout
    found = {}
    for line in out.splitlines():
        if line.strip():
            rows = json.loads(line)
            for row in rows if isinstance(rows, list) else [rows]:
                found.setdefault(row["Service"], []).append(row)
    return found


def up(stack, command=None):
    """The README's `docker compose up ... --wait` (or ``command``), then
    where the published ports are now: each container start picks anew."""
    compose(stack, *(command or stack["up"])[2:], timeout=1200)
    web = compose(stack, "port", "web", "8000").stdout.strip()
    mail = compose(stack, "port", "mailpit", "8025").stdout.strip()
    stack["url"] = f"http://{web}"
    stack["mail"] = f"http://{mail}"
    serving(f"{stack['url']}/accounts/login/", timeout=60)


def shell(stack, code):
    """Run Python in the web container's Django shell; its output."""
    manage = ["python", "manage.py", "shell", "--no-imports", "-c", code]
    return compose(stack, "exec", "-T", "web", *manage)


@pytest.fixture(scope="module", params=HEAVY)
def stack(request, baked, tmp_path_factory, docker_engine):
    case = request.param
    project = baked(case)
    folder = tmp_path_factory.mktemp(f"compose-{case}")
    env = {
        "COMPOSE_FILE": f"compose.yaml:{override(project, folder)}",
        "COMPOSE_PROJECT_NAME": f"offload-test-{case}".replace("_", "-"),
    }
    commands = readme_commands(project)
    stack = {
        "case": case,
        "row": backend_of(case),
        "project": project,
        "env": env,
        "up": next(c for c in commands if c[:3] == ["docker", "compose", "up"]),
    }
    assert "--wait" in stack["up"], stack["up"]
    compose(stack, "down", "--volumes", "--remove-orphans")
    try:
        up(stack)
        # The README's createsuperuser, answered by flags instead of prompts.
        (superuser,) = [c for c in commands if "createsuperuser" in c]
        at = superuser.index("run") + 1
        for name in ("alice", "mallory"):
            compose(
                stack, *superuser[2:at], "-e", f"DJANGO_SUPERUSER_PASSWORD={PASSWORD}",
                *superuser[at:], "--no-input", "--username", name,
                "--email", f"{name}@example.org",
            )  # fmt: skip
        yield stack
    finally:
        logs = compose(stack, "logs", "--no-color", "--timestamps", check=False)
        (folder / "compose.log").write_text(logs.stdout + logs.stderr)
        compose(stack, "down", "--volumes", "--remove-orphans", "--timeout", "30")


def test_every_service_is_up(stack):
    services = containers(stack)
    for name in ("web", "worker", "scheduler"):
        if name == "scheduler" and not stack["row"]["scheduler"]:
            assert name not in services
            continue
        assert [c["State"] for c in services[name]] == ["running"], services[name]
    broker = stack["row"]["broker"]
    for name in ["db", "mailpit", "s3", *([broker] if broker else [])]:
        assert [c["Health"] for c in services[name]] == ["healthy"], services[name]
    (migrate,) = services["migrate"]
    assert (migrate["State"], migrate["ExitCode"]) == ("exited", 0), migrate


def test_the_image_alone_runs_on_sqlite(stack):
    """`docker run IMAGE bin/migrate` with no DATABASE_URL: SQLite, in the
    image's STATE_DIRECTORY (the code in /app is not the app user's)."""
    image = containers(stack)["web"][0]["Image"]
    result = run(
        stack["project"], "docker", "run", "--rm", "-e", "DEBUG=true",
        image, "sh", "-c", "bin/migrate && ls /app/var",
    )  # fmt: skip
    assert "Applying auth" in result.stdout, result.stdout
    assert "db.sqlite3" in result.stdout.split()


def test_the_image_holds_exactly_the_locked_versions(stack):
    """The build installed uv.lock (uv sync --locked), nothing else."""
    lock = tomllib.loads((stack["project"] / "uv.lock").read_text())
    locked = {package["name"]: package["version"] for package in lock["package"]}
    image = containers(stack)["web"][0]["Image"]
    listing = run(
        stack["project"], "docker", "run", "--rm", image, "python", "-c",
        "from importlib.metadata import distributions as d; "
        "print('\\n'.join(f'{x.name} {x.version}' for x in d()))",
    ).stdout.split("\n")  # fmt: skip
    installed = dict(line.split() for line in listing if line.strip())
    assert installed, listing
    for name, version in installed.items():
        assert locked.get(re.sub(r"[-_.]+", "-", name).lower()) == version, name


def test_the_http_contract_through_the_published_port(stack):
    alice, mallory = login(stack, "alice"), login(stack, "mallory")
    photo, thumbnail, _ = http_contract(
        alice, mallory, lambda subject: mailpit_recipients(stack["mail"], subject)
    )
    stack["photo"] = (photo, thumbnail.content, alice.cookies)


def test_uploads_are_in_the_bucket_and_web_and_worker_share_no_disk(stack):
    """The photo of the contract above is in the s3 service's bucket; web and
    worker mount no volume for it (as on two machines)."""
    state = ["/app/var"] if stack["row"]["state_volume"] else []
    for name in ("web", "worker"):
        (container,) = containers(stack)[name]
        mounts = run(
            stack["project"], "docker", "inspect", "--format",
            "{{json .Mounts}}", container["ID"],
        ).stdout  # fmt: skip
        assert [m["Destination"] for m in json.loads(mounts)] == state, mounts
    stored = shell(
        stack,
        "from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__name__, *s.listdir('photos/thumbnails')[1])",
    ).stdout.split()
    assert stored[0] == "S3Storage", stored
    assert len(stored) > 1, stored  # the contract's thumbnail, at least


def test_stop_lets_the_running_task_finish(stack):
    alice = login(stack, "alice")
    caught, urls = sending(alice, "Stop", count=5)
    stopping = dt.datetime.now(dt.UTC)
    compose(stack, "stop")
    (worker,) = containers(stack)["worker"]
    # 0: the worker stopped on its own; 137 would be compose's SIGKILL.
    assert (worker["State"], worker["ExitCode"]) == ("exited", 0), worker

    up(stack)
    alice = login(stack, "alice")
    for url in urls:
        body = settled(alice, url, timeout=120)
        assert (body["status"], body["sent"], body["pending"]) == ("done", 200, 0)
    # The notification caught sending went on after the stop signal.
    last = shell(
        stack,
        "from notifications.models import Delivery; "
        f"sent = Delivery.objects.filter(notification={caught['id']}); "
        "print(max(d.sent_at for d in sent).isoformat())",
    ).stdout.strip()
    assert dt.datetime.fromisoformat(last) > stopping, (last, stopping)


def test_down_and_up_keep_the_database_and_uploads(stack):
    status_url, thumbnail, cookies = stack["photo"]
    compose(stack, "down")
    up(stack)
    # The same session (sessions live in the database) sees the same photo.
    alice = httpx.Client(base_url=stack["url"], cookies=cookies, timeout=10)
    body = alice.get(status_url).json()
    assert body["status"] == "done", body
    assert alice.get(body["thumbnail_url"]).content == thumbnail


def worker_logs(stack):
    """Per worker container: the photo ids its thumbnail lines name."""
    ids = compose(stack, "ps", "--quiet", "worker").stdout.split()
    seen = {}
    for container in ids:
        out = subprocess.run(
            ["docker", "logs", container], capture_output=True, text=True, check=True
        )
        seen[container] = re.findall(
            r"Photo (\d+): thumbnail (?:already )?made", out.stdout + out.stderr
        )
    return seen


def test_scaled_workers_share_the_tasks_and_none_runs_twice(stack):
    scale = next(c for c in readme_lines(stack) if "--scale" in c)
    up(stack, scale)
    assert len(containers(stack)["worker"]) == 3
    before = {c: set(ids) for c, ids in worker_logs(stack).items()}
    alice = login(stack, "alice")
    photo = noise_png((1200, 900))
    ids = []
    for _ in range(30):
        response = post(alice, "/photos/", files={"image": ("p.png", photo)})
        assert response.status_code == 202, response.text
        ids.append(str(response.json()["id"]))
    for photo_id in ids:
        body = settled(alice, f"/photos/{photo_id}/status/", timeout=120)
        assert body["status"] == "done", body

    ran = {
        container: [i for i in found if i in ids and i not in before.get(container, ())]
        for container, found in worker_logs(stack).items()
    }
    everywhere = sorted(i for found in ran.values() for i in found)
    assert everywhere == sorted(ids)  # each photo once, on one worker
    assert all(ran.values()), ran  # and every worker took some


def readme_lines(stack):
    """Commands of the README's list under "With Docker" (in backticks)."""
    section = docker_section(stack["project"])
    commands = re.findall(r"`(docker compose [^`]+)`", section.replace("\n  ", " "))
    return [shlex.split(command) for command in commands]


def inspect(container):
    out = subprocess.run(
        ["docker", "inspect", container], capture_output=True, check=True
    ).stdout
    return json.loads(out)[0]


def test_a_worker_that_dies_is_restarted_by_its_policy(stack):
    """SIGKILL to the worker's process from outside, as the OOM killer sends it.

    Not `docker kill`: Docker counts a kill it was asked for as a manual
    stop and restarts no such container (whatever its policy, next test);
    the policy is for a process that dies on its own, as this one does.
    """
    container = compose(stack, "ps", "--quiet", "worker").stdout.split()[0]
    pid = inspect(container)["State"]["Pid"]
    try:
        os.kill(pid, signal.SIGKILL)
    except PermissionError:  # the engine's containers are root's
        subprocess.run(["sudo", "-n", "kill", "-KILL", str(pid)], check=True)

    def restarted():
        state = inspect(container)
        return state["RestartCount"] >= 1 and state["State"]["Running"]

    wait_until(restarted, 60, "the dead worker to be restarted")
    alice = login(stack, "alice")
    note = notify(alice, "After the kill", ["k@example.org"])
    assert settled(alice, note, timeout=60)["status"] == "done"


def test_docker_kill_stops_a_worker_until_the_next_up(stack):
    """What the README says of `docker kill`: the policy does not apply."""
    container = compose(stack, "ps", "--quiet", "worker").stdout.split()[0]
    restarts = inspect(container)["RestartCount"]
    run(stack["project"], "docker", "kill", container)
    time.sleep(5)  # the policy would have restarted it within a second
    state = inspect(container)
    assert not state["State"]["Running"], state["State"]
    assert state["RestartCount"] == restarts
    up(stack)  # (back to one worker, if scaled)
    assert [c["State"] for c in containers(stack)["worker"]] == ["running"]
