"""The generated README's server guide, followed as written (issue 8).

A container boots Debian 13 with systemd as PID 1 (tests/server/Dockerfile),
and each step of the README's "On a Debian or Ubuntu server" section runs
in it as the README gives it: its console blocks are read from the baked
README, one shell per step, nothing retyped here. Then the site is used
through nginx's HTTPS port, one worker unit is stopped mid-task, one is
killed, the units' sandbox is read back from systemd, and a release is
shipped. The same then for supervisord, started by that systemd. This runs
for one backend per broker (tests/bakery.py HEAVY); tests/test_conformance.py
shows that the guide and the deployment files of the others differ from
theirs only in what the cheaper checks cover.

Three things of the outside world stand in for theirs, each set up before
the guide runs and said here (and one setting of a Debian unit, below): the
repository's address is a bare clone of the baked project in the container
(git's ``insteadOf``); ``certbot`` is a script earlier on root's PATH that
fetches the challenge file through nginx's port 80, as Let's Encrypt would,
then writes a self-signed certificate where certbot puts its own; the mail
relay on 127.0.0.1:25 is Mailpit (its stand-in here), in the server's
network namespace.
"""

import concurrent.futures
import datetime as dt
import hashlib
import itertools
import re
import shlex
import subprocess
import time
import uuid

import httpx
import pytest

from .bakery import HEAVY, ROOT, TEMPLATE, backend_of, guide_steps
from .web import (
    PASSWORD,
    http_contract,
    login,
    mailpit_recipients,
    sending,
    settled,
    wait_until,
)

pytestmark = pytest.mark.server

SERVER_DOCKERFILE = ROOT / "tests" / "server"
REPOSITORY = "https://git.example.com/you/{slug}.git"
MAILPIT = "axllent/mailpit:v1.27"
# Flags that let systemd boot as PID 1 in a container on these hosts
# (../shared/DOCKER_HERE.md): --privileged is refused here. The host's
# cgroup tree, mounted writable, is systemd's to manage units in.
SYSTEMD_FLAGS = [
    "--cgroupns=host", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--security-opt", "seccomp=unconfined",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
]  # fmt: skip
FAKE_CERTBOT = r"""#!/bin/sh
# Stands in for Let's Encrypt (tests/test_server.py): the challenge file must
# be served on port 80 from the webroot, then a self-signed certificate goes
# where certbot writes its own.
set -eu
webroot="" domain=""
while [ $# -gt 0 ]; do
    case "$1" in
        -w) webroot=$2; shift ;;
        -d) domain=$2; shift ;;
    esac
    shift
done
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$webroot/.well-known/acme-challenge"
echo "$token" > "$webroot/.well-known/acme-challenge/$token"
python3 - "$domain" "$token" <<'EOF'
import sys, urllib.request
domain, token = sys.argv[1:]
request = urllib.request.Request(
    f"http://127.0.0.1/.well-known/acme-challenge/{token}", headers={"Host": domain}
)
assert urllib.request.urlopen(request, timeout=10).read().decode().strip() == token
EOF
live=/etc/letsencrypt/live/$domain
mkdir -p "$live"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$domain" \
    -keyout "$live/privkey.pem" -out "$live/fullchain.pem" 2>/dev/null
"""


def docker(*args, check=True, timeout=900, **kwargs):
    return subprocess.run(
        ["docker", *args], check=check, text=True, capture_output=True,
        timeout=timeout, **kwargs,
    )  # fmt: skip


def packages(readme):
    """Every package the guide's apt-get install lines name."""
    names = set()
    for _, commands, _ in guide_steps(readme):
        for command in commands:
            if command.startswith("apt-get install"):
                names.update(w for w in shlex.split(command)[2:] if w[0] != "-")
    return names


@pytest.fixture(scope="session")
def server_image(baked, docker_engine):
    """The server image, its apt cache warmed with the packages of the
    backends the guide is followed for."""
    wanted = set()
    for case in HEAVY:
        wanted |= packages((baked(case) / "README.md").read_text())
    wanted = " ".join(sorted(wanted))
    recipe = (SERVER_DOCKERFILE / "Dockerfile").read_bytes() + wanted.encode()
    tag = f"offload-test/server:{hashlib.sha256(recipe).hexdigest()[:12]}"
    if docker("image", "inspect", tag, check=False).returncode:
        docker(
            "build", "--network=host", "--quiet", f"--build-arg=PACKAGES={wanted}",
            "--tag", tag, str(SERVER_DOCKERFILE),
        )  # fmt: skip
    return tag


def sh(server, script, *, check=True, timeout=600):
    """Run a shell script as root on the server; the completed process."""
    result = docker(
        "exec", server["name"], "bash", "-euo", "pipefail", "-c", script,
        check=False, timeout=timeout,
    )  # fmt: skip
    if check and result.returncode:
        raise AssertionError(
            f"on the server, exit {result.returncode}:\n{script}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        )
    return result


def follow(server, heading):
    """Run one step of the guide, its commands in one root shell."""
    _, commands, _ = step(server, heading)
    assert commands, heading
    started = time.monotonic()
    sh(server, "cd /root\n" + "\n".join(commands))
    server["timings"].append((heading, time.monotonic() - started))


# What each broker holds, for the report of a failed test: a task stuck
# somewhere shows there.
BROKER_STATE = {
    # Each key and its type.
    "redis": (
        'for k in $(redis-cli --scan | sort); do echo "$k $(redis-cli type $k)"; done'
    ),
    "rabbitmq": (
        "rabbitmqctl list_queues -p {slug} name messages_ready "
        "messages_unacknowledged consumers"
    ),
}


def server_logs(server):
    """The journal and the supervisord programs' logs, as they end now."""
    slug = server["slug"]
    logs = {
        "journal": sh(server, "journalctl --no-pager -n 100", check=False).stdout,
        "units' journal": sh(
            server, f"journalctl --no-pager -n 100 -u '{slug}-*'", check=False
        ).stdout,
    }
    logs["processes"] = sh(server, "ps -eo pid,ppid,user,stat,args", check=False).stdout
    broker = server["row"]["broker"]
    if broker:
        state = BROKER_STATE[broker].format(slug=slug)
        logs[broker] = sh(server, state, check=False).stdout
    listed = sh(server, f"ls /var/log/{slug}/ 2>/dev/null", check=False).stdout
    for name in listed.split():
        path = f"/var/log/{slug}/{name}"
        logs[path] = sh(server, f"tail -n 60 {path}", check=False).stdout
    return logs


def django_shell(server, code):
    slug = server["slug"]
    return sh(
        server,
        f"cd /srv/{slug} && runuser -u {slug} -- env ENV_FILE=/etc/{slug}/env "
        f".venv/bin/python manage.py shell --no-imports -c {shlex.quote(code)}",
    ).stdout


def step(server, start):
    """The step whose heading starts with ``start``: (heading, commands, text)."""
    (found,) = [s for s in server["steps"] if s[0].startswith(start)]
    return found


@pytest.fixture(scope="module", params=HEAVY)
def server(request, baked, server_image):
    case = request.param
    project = baked(case)
    slug = project.name
    readme = (project / "README.md").read_text()
    name = f"offload-server-{case}-{uuid.uuid4().hex[:6]}"
    docker(
        "run", "--detach", "--name", name, "--hostname", "server",
        *SYSTEMD_FLAGS, server_image,
    )  # fmt: skip
    server = {
        "name": name,
        "slug": slug,
        "case": case,
        "row": backend_of(case),
        "project": project,
        "steps": guide_steps(readme),
        "timings": [],
        "domain": TEMPLATE["domain_name"],
    }
    server["report"] = lambda: server_logs(server)
    try:
        wait_until(
            lambda: (
                sh(server, "systemctl is-system-running", check=False).stdout.strip()
                in {"running", "degraded"}
            ),
            120,
            "systemd to boot",
        )
        server["ip"] = docker(
            "inspect", "--format", "{{.NetworkSettings.IPAddress}}", name
        ).stdout.strip()
        # The one change to a Debian unit: redis-server.service has
        # PrivateUsers=yes beside ProtectProc=, which fails with 217/USER in
        # this nested container (as the project's own units did; they no
        # longer ask for PrivateUsers). On a real server it starts as is.
        sh(
            server,
            "mkdir -p /etc/systemd/system/redis-server.service.d && printf "
            "'[Service]\\nPrivateUsers=no\\n' "
            "> /etc/systemd/system/redis-server.service.d/container.conf",
        )
        # certbot, as Let's Encrypt would check it, then a self-signed one.
        sh(
            server,
            f"cat > /usr/local/bin/certbot <<'FAKE'\n{FAKE_CERTBOT}FAKE\n"
            "chmod 755 /usr/local/bin/certbot",
        )
        # The mail relay on the server's 127.0.0.1:25.
        docker(
            "run", "--detach", "--name", f"{name}-mail",
            f"--network=container:{name}",
            "--env", "MP_SMTP_BIND_ADDR=127.0.0.1:25", MAILPIT,
        )  # fmt: skip
        server["mail"] = f"http://{server['ip']}:8025"
        # The steps before the process manager's (7): 1 installs git.
        packages_step, *setup = itertools.takewhile(
            lambda heading: not heading.startswith("7"),
            (heading for heading, _, _ in server["steps"]),
        )
        follow(server, packages_step)
        # The repository (git is installed now): a bare clone of the baked
        # project, at the address the guide names (git's insteadOf).
        sh(server, "mkdir /root/project")
        tar = subprocess.Popen(
            ["tar", "-C", project, "--exclude=.venv", "-c", "."],
            stdout=subprocess.PIPE,
        )
        subprocess.run(
            ["docker", "exec", "-i", name, "tar", "-C", "/root/project", "-x"],
            stdin=tar.stdout, check=True,
        )  # fmt: skip
        assert tar.wait() == 0
        sh(
            server,
            "cd /root/project && git init -q -b main && git add -A "
            "&& git -c user.name=t -c user.email=t@t commit -q -m release-1 "
            "&& git clone -q --bare /root/project /root/repository.git "
            "&& git config --global url./root/repository.git.insteadOf "
            + REPOSITORY.format(slug=slug),
        )
        for heading in setup:
            follow(server, heading)
        django_shell(
            server,
            "from django.contrib.auth.models import User\n"
            "for name in ('alice', 'mallory'):\n"
            f"    User.objects.create_user(name, password={PASSWORD!r})",
        )
        yield server
    finally:
        print(f"{case}: guide steps took", server["timings"])
        docker("rm", "--force", f"{name}-mail", check=False)
        docker("rm", "--force", name, check=False)


def site(server, username):
    """A logged-in client of the site, through nginx's HTTPS port.

    Each server logs its two users in once: nginx limits login attempts per
    address (20 a minute), and the tests all come from one.
    """
    domain = server["domain"]
    return login(
        {"url": f"https://{server['ip']}"},
        username,
        # The certificate is self-signed; the name is the site's.
        verify=False,
        headers={"Host": domain, "Origin": f"https://{domain}"},
    )


def unit_show(server, unit, *properties):
    out = sh(server, f"systemctl show {unit} -p {','.join(properties)}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def site_contract(server):
    """The HTTP contract (tests/web.py) through nginx, and nginx's own part:
    plain HTTP sent to HTTPS, but for certbot's challenges."""
    http_contract(
        server["alice"],
        server["mallory"],
        lambda subject: mailpit_recipients(server["mail"], subject),
    )
    # Plain HTTP is sent to HTTPS, but for certbot's renewals, whose
    # challenge files nginx serves from its webroot on port 80.
    host = {"Host": server["domain"]}
    plain = httpx.get(f"http://{server['ip']}/", headers=host)
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://{server['domain']}/"
    challenges = "/var/www/html/.well-known/acme-challenge"
    sh(server, f"mkdir -p {challenges} && echo renewal > {challenges}/renewal")
    url = f"http://{server['ip']}/.well-known/acme-challenge/renewal"
    renewal = httpx.get(url, headers=host)
    assert (renewal.status_code, renewal.text.strip()) == (200, "renewal")


def stopped_mid_task(server, stop, start):
    """``stop`` while a notification is sending: it goes on, then the
    process exits on its own. ``stop`` runs with one worker process left."""
    alice = server["alice"]
    caught, urls = sending(alice, "Stop")
    stopping = dt.datetime.now(dt.UTC)
    stop()
    last = django_shell(
        server,
        "from notifications.models import Delivery\n"
        f"sent = Delivery.objects.filter(notification={caught['id']}, "
        "sent_at__isnull=False)\n"
        "print(max(d.sent_at for d in sent).isoformat())",
    ).strip()
    # The caught notification went on sending after the stop signal.
    assert dt.datetime.fromisoformat(last) > stopping, (last, stopping)
    start()
    for url in urls:
        body = settled(alice, url, timeout=120)
        assert (body["status"], body["sent"], body["pending"]) == ("done", 200, 0)


def shipped(server, manager, command, web_pid):
    """A new release, as the guide ships one: its "A new release" step, then
    the reload and restart commands its process manager's step names (the
    backquoted ones matching ``command``), while a client keeps asking.

    The release adds a static file: served once web is reloaded, which
    shows the new code runs; every request meanwhile is answered; gunicorn's
    main process stays (a reload, not a restart) and its workers are new.
    """
    server["releases"] = server.get("releases", 1) + 1
    release = f"release {server['releases']}"
    sh(
        server,
        "cd /root/project && mkdir -p core/static/core "
        f"&& echo '{release}' > core/static/core/release.txt && git add -A "
        f"&& git -c user.name=t -c user.email=t@t commit -q -m '{release}' "
        "&& git push -q /root/repository.git main",
    )
    master = web_pid()
    before = sh(server, f"pgrep -P {master}").stdout.split()
    follow(server, "A new release")
    text = " ".join(step(server, manager)[2].split())
    commands = re.findall(rf"`({command}[^`]+)`", text)
    assert len(commands) == 2, commands
    alice, statuses = server["alice"], []

    def ask(deadline):
        while time.monotonic() < deadline:
            statuses.append(alice.get("/photos/").status_code)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        asking = [pool.submit(ask, time.monotonic() + 6) for _ in range(2)]
        time.sleep(1)
        for reload_or_restart in commands:
            sh(server, reload_or_restart, timeout=300)
        for future in asking:
            future.result()
    assert statuses and set(statuses) == {200}, statuses
    assert web_pid() == master
    after = sh(server, f"pgrep -P {master}").stdout.split()
    assert after and not set(after) & set(before), (before, after)
    static = alice.get("/static/core/release.txt")
    assert (static.status_code, static.text.strip()) == (200, release)
    site_contract(server)


# --- systemd -----------------------------------------------------------------


@pytest.fixture(scope="module")
def systemd(server):
    follow(server, step(server, "7. Start, with systemd")[0])
    url = f"https://{server['ip']}/accounts/login/"
    headers = {"Host": server["domain"]}

    def answers():
        # verify=False: the stand-in certificate is self-signed.
        page = httpx.get(url, headers=headers, verify=False)  # noqa: S501
        return page.status_code == 200

    wait_until(answers, 60, "the site to answer through nginx")
    server["alice"], server["mallory"] = site(server, "alice"), site(server, "mallory")
    return server


def units(server):
    slug = server["slug"]
    names = [f"{slug}-web", f"{slug}-worker@1", f"{slug}-worker@2"]
    if server["row"]["scheduler"]:
        names.append(f"{slug}-scheduler")
    return names


def test_systemd_runs_every_process_as_the_service_user(systemd):
    for unit in units(systemd):
        wait_until(
            lambda unit=unit: (
                unit_show(systemd, unit, "ActiveState")["ActiveState"] == "active"
            ),
            60,
            f"{unit} to be active",
        )
        pid = unit_show(systemd, unit, "MainPID")["MainPID"]
        user = sh(systemd, f"ps -o user= -p {pid}").stdout.strip()
        assert user == systemd["slug"], (unit, user)
    # The migrations ran once, before web and workers.
    migrate = unit_show(systemd, f"{systemd['slug']}-migrate", "Result", "ActiveState")
    assert migrate == {"Result": "success", "ActiveState": "active"}


def test_systemd_site_works_through_nginx(systemd):
    site_contract(systemd)


# Sandbox settings that `systemctl show` spells as the unit files do.
SANDBOX = (
    "User", "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities",
    "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
    "PrivateUsers", "PrivateMounts", "ProtectKernelTunables",
    "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
    "ProtectClock", "ProtectHostname", "ProtectProc", "ProcSubset",
    "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
    "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC", "UMask",
    "KillMode", "Restart",
)  # fmt: skip


def test_systemd_sandbox_is_what_the_units_say(systemd):
    """Each unit's sandbox, as systemd applied it, is its file's; and
    `systemd-analyze security` gives the score the README states."""
    (stated,) = re.findall(
        r"`systemd-analyze security`\s+rates them ([\d.]+)",
        (systemd["project"] / "README.md").read_text(),
    )
    for unit in units(systemd):
        file = sh(systemd, f"systemctl cat {unit}").stdout
        written = dict(re.findall(rf"^({'|'.join(SANDBOX)})=(.*)$", file, re.M))
        shown = unit_show(systemd, unit, *SANDBOX)
        for key in SANDBOX:
            # Not written: systemd's default (PrivateUsers=no, ...).
            expected = written.get(key, shown[key])
            if key == "UMask":
                expected = expected.zfill(4)
            assert shown[key] == expected, (
                unit, key, shown[key], expected,
            )  # fmt: skip
        assert len(written) >= 25, (unit, sorted(written))
        score = sh(systemd, f"systemd-analyze security --no-pager {unit}").stdout
        (measured,) = re.findall(r"Overall exposure level for \S+: ([\d.]+)", score)
        assert measured == stated, (unit, measured, stated)


def test_systemd_stop_of_a_worker_lets_its_task_finish(systemd):
    slug = systemd["slug"]
    sh(systemd, f"systemctl stop {slug}-worker@2")

    def stop():
        sh(systemd, f"systemctl stop {slug}-worker@1", timeout=300)
        shown = unit_show(systemd, f"{slug}-worker@1", "Result", "ExecMainStatus")
        # The worker exited on its own, not killed when the grace ran out.
        assert shown == {"Result": "success", "ExecMainStatus": "0"}, shown

    stopped_mid_task(
        systemd,
        stop,
        lambda: sh(systemd, f"systemctl start {slug}-worker@1 {slug}-worker@2"),
    )


def test_systemd_restarts_a_killed_worker(systemd):
    unit = f"{systemd['slug']}-worker@1"
    before = unit_show(systemd, unit, "MainPID", "NRestarts")
    sh(systemd, f"systemctl kill -s KILL {unit}")

    def restarted():
        now = unit_show(systemd, unit, "MainPID", "NRestarts", "ActiveState")
        return (
            now["ActiveState"] == "active"
            and now["MainPID"] not in {"0", before["MainPID"]}
            and int(now["NRestarts"]) == int(before["NRestarts"]) + 1
        )

    wait_until(restarted, 30, f"{unit} to be restarted")
    site_contract(systemd)


def test_systemd_release_reloads_web_without_dropping_requests(systemd):
    web = f"{systemd['slug']}-web"
    shipped(
        systemd,
        "7. Start, with systemd",
        r"systemctl (?:reload|restart) ",
        lambda: unit_show(systemd, web, "MainPID")["MainPID"],
    )


# --- supervisord, started by systemd -------------------------------------------


@pytest.fixture(scope="module")
def supervised(systemd):
    """systemd's units stopped and disabled, then the guide's supervisord."""
    slug = systemd["slug"]
    sh(
        systemd,
        f"systemctl disable --now {slug}.target {' '.join(units(systemd))}",
        timeout=300,
    )
    follow(systemd, step(systemd, "7, or: start with supervisord")[0])
    return systemd


def programs(server):
    out = sh(server, f"supervisorctl status '{server['slug']}:*'", check=False).stdout
    return {
        line.split()[0].split(":", 1)[1]: line.split()
        for line in out.splitlines()
        if line.strip()
    }


def program_pid(fields):
    """The pid in a program's `supervisorctl status` fields; None if stopped."""
    return fields[fields.index("pid") + 1].rstrip(",") if "pid" in fields else None


def test_supervisord_runs_the_programs_as_the_service_user(supervised):
    expected = {"web", "worker_00", "worker_01"}
    if supervised["row"]["scheduler"]:
        expected.add("scheduler")
    wait_until(
        lambda: (
            {n for n, f in programs(supervised).items() if f[1] == "RUNNING"}
            == expected
        ),
        60,
        "every program to run",
    )
    for name, fields in programs(supervised).items():
        user = sh(supervised, f"ps -o user= -p {program_pid(fields)}").stdout.strip()
        assert user == supervised["slug"], (name, user)
    logs = sh(supervised, f"ls /var/log/{supervised['slug']}").stdout.split()
    assert {f"{name}.log" for name in expected} <= set(logs), logs


def test_supervisord_site_works_through_nginx(supervised):
    site_contract(supervised)


def test_supervisord_stop_of_a_worker_lets_its_task_finish(supervised):
    slug = supervised["slug"]
    sh(supervised, f"supervisorctl stop {slug}:worker_01")

    def stop():
        out = sh(supervised, f"supervisorctl stop {slug}:worker_00", timeout=300)
        assert "stopped" in out.stdout, out.stdout
        log = sh(supervised, "cat /var/log/supervisor/supervisord.log").stdout
        # It exited on its own, not killed when the grace ran out.
        stops = re.findall(rf"stopped: (?:{slug}:)?worker_00 \(([^)]*)\)", log)
        assert stops and stops[-1] == "exit status 0", log[-2000:]

    stopped_mid_task(
        supervised,
        stop,
        lambda: sh(
            supervised, f"supervisorctl start {slug}:worker_00 {slug}:worker_01"
        ),
    )


def test_supervisord_restarts_a_killed_worker(supervised):
    slug = supervised["slug"]

    def pid():
        return program_pid(programs(supervised)["worker_00"])

    before = pid()
    sh(supervised, f"kill -KILL {before}")
    wait_until(lambda: pid() not in {None, before}, 30, "worker_00 to be restarted")
    log = sh(supervised, "cat /var/log/supervisor/supervisord.log").stdout
    assert re.search(rf"exited: (?:{slug}:)?worker_00 \(terminated by SIGKILL", log), (
        log[-2000:]
    )
    site_contract(supervised)


def test_supervisord_release_reloads_web_without_dropping_requests(supervised):
    slug = supervised["slug"]
    shipped(
        supervised,
        "7, or: start with supervisord",
        r"supervisorctl (?:signal HUP|restart) ",
        lambda: sh(supervised, f"supervisorctl pid {slug}:web").stdout.strip(),
    )


def test_every_step_of_the_guide_ran(supervised):
    """The tests above ran each step that has commands, the whole of it."""
    ran = [heading for heading, _ in supervised["timings"]]
    with_commands = [heading for heading, cmds, _ in supervised["steps"] if cmds]
    assert sorted(set(ran)) == sorted(with_commands), (ran, with_commands)
