"""Workers on two hosts over one database, broker and bucket (the generated
README, "More than one machine").

Each host is a network namespace made here (root only), with a host name of
its own (a UTS namespace). It reaches this machine's PostgreSQL, broker, S3
server and SMTP server through its own link (a veth pair) and the kernel's
NAT, so every server sees an ordinary TCP client. Cutting a host off takes
its link down: packets are dropped both ways and nothing is closed, as when
a cable, a switch or a cloud network fails; then its processes are killed,
as on a host that is gone for good.

For one backend per broker (tests/bakery.py HEAVY): tasks spread over both
hosts; the notifications running on the cut host all end `done`; the
database closes the cut host's connections within its keepalive bound; log
lines and worker ids name their host. The figures are printed: .ci/run runs
this module with -s.
"""

import contextlib
import os
import re
import signal
import subprocess
import threading
import time

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller

from .bakery import (
    HEAVY,
    PG_URL,
    ROOT,
    S3_URL,
    backend_of,
    broker_of,
    fresh_bucket,
    fresh_database,
    production_env,
    python,
    run,
    s3_env,
)
from .test_e2e import compose_command
from .web import (
    PASSWORD,
    SlowInbox,
    free_port,
    login,
    noise_png,
    notify,
    post,
    sending,
    serving,
    settled,
    wait_until,
)

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]
PHOTOS = 16
RECIPIENTS = 30  # of each of 4 notifications
# The bounds the test holds the project to, in these runs' settings (short
# time limit and rescue, as in tests/test_e2e.py): a notification caught on
# the cut host ends done within RECOVERY (the rescue's bound, the longest
# way back on every backend; the measured time is printed); the database
# closes a dead host's connections after 30 s of silence and 3 probes 10 s
# apart (config/settings.py), then CONNECTIONS for a loaded machine.
TIME_LIMIT = 20
RESCUE_SECONDS = 30
RECOVERY = RESCUE_SECONDS + 60 + 60
CONNECTIONS = 30 + 3 * 10 + 30


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, text=True)


class Host:
    """A network namespace reaching this machine's servers on ``ports``."""

    def __init__(self, index, name, ports):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        number = int(re.sub(r"\D", "", worker) or 0) * 4 + index
        self.name = name  # the host name its processes see
        self.netns = f"offload-{number}"
        self.link = f"ofl{number}h"  # this side; the host's side: ...n
        self.gateway = f"10.211.{number}.1"
        self.address = f"10.211.{number}.2"
        self.ports = ",".join(map(str, ports))
        self.processes = []

    def _nat(self, action):
        sh(
            "iptables", "-t", "nat", action, "PREROUTING", "-i", self.link,
            "-d", self.gateway, "-p", "tcp", "-m", "multiport",
            "--dports", self.ports, "-j", "DNAT", "--to-destination", "127.0.0.1",
        )  # fmt: skip
        # As a local client: the servers trust and answer loopback only.
        sh(
            "iptables", "-t", "nat", action, "INPUT", "-s", f"{self.address}/32",
            "-d", "127.0.0.1", "-j", "SNAT", "--to-source", "127.0.0.1",
        )  # fmt: skip

    def up(self):
        self.down()
        peer = f"{self.link[:-1]}n"
        sh("ip", "netns", "add", self.netns)
        sh("ip", "link", "add", self.link, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", peer, "netns", self.netns)
        sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.link)
        sh("ip", "link", "set", self.link, "up")
        inside = ("ip", "-n", self.netns)
        sh(*inside, "addr", "add", f"{self.address}/24", "dev", peer)
        sh(*inside, "link", "set", peer, "up")
        sh(*inside, "link", "set", "lo", "up")
        sh(*inside, "route", "add", "default", "via", self.gateway)
        sh("sysctl", "-qw", f"net.ipv4.conf.{self.link}.route_localnet=1")
        self._nat("-A")

    def start(self, project, command, env, log):
        """``command`` on this host, in a process group of its own."""
        wrapped = ["sh", "-c", f'hostname {self.name} && exec "$@"', "sh", *command]
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--uts", *wrapped],
            cwd=project,
            env=env,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def cut(self):
        """Take the link down: every packet to and from the host is lost."""
        sh("ip", "link", "set", self.link, "down")

    def kill(self):
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def down(self):
        self.kill()
        with contextlib.suppress(subprocess.CalledProcessError):
            self._nat("-D")
        with contextlib.suppress(subprocess.CalledProcessError):
            sh("ip", "link", "del", self.link)
        with contextlib.suppress(subprocess.CalledProcessError):
            sh("ip", "netns", "del", self.netns)


def on_host(value, host):
    """A server address of this machine, as ``host`` reaches it."""
    return value.replace("127.0.0.1", host.gateway).replace("localhost", host.gateway)


@pytest.fixture(scope="module", params=HEAVY)
def cluster(request, synced, tmp_path_factory):
    case = request.param
    project = synced(case)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    logs = tmp_path_factory.mktemp(f"hosts-{case}")
    inbox = SlowInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    broker = broker_of(case)
    env = {
        **os.environ,
        **production_env(f"hosts_{case}", case),
        **s3_env(fresh_bucket(f"hosts-{case}")),
        "USE_HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "TASK_TIME_LIMIT": str(TIME_LIMIT),
        "TASK_RECOVERY_SECONDS": str(2 * TIME_LIMIT + 1),
        "TASK_RECOVERY_MARGIN": "1",
        "TASK_RECOVERY_INTERVAL": "1",
        "JOB_RESCUE_SECONDS": str(RESCUE_SECONDS),
        "PORT": str(port),
        "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    fresh_database(env)
    run(project, *compose_command(compose, "migrate"), env=env)
    run(
        project, python(project), "manage.py", "shell", "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user('alice', password={PASSWORD!r})",
        env=env,
    )  # fmt: skip

    ports = [5432, int(S3_URL.rsplit(":", 1)[1]), smtp.port]
    if broker:
        ports.append(broker["port"])
    hosts = [Host(1, "host-a", ports), Host(2, "host-b", ports)]
    here = []  # web (and the scheduler) run on this machine
    try:
        for service in [
            "web",
            *(["scheduler"] if "scheduler" in compose["services"] else []),
        ]:
            here.append(
                subprocess.Popen(
                    compose_command(compose, service), cwd=project, env=env,
                    stdout=(logs / f"{service}.log").open("a"),
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip
        for host in hosts:
            host.up()
            moved = {
                name: on_host(env[name], host)
                for name in ["DATABASE_URL", "S3_ENDPOINT_URL", "EMAIL_HOST"]
                + ([broker["url_variable"]] if broker else [])
            }
            host.start(
                project,
                compose_command(compose, "worker"),
                {**env, **moved, "PGAPPNAME": f"offload-{host.name}"},
                logs / f"{host.name}.log",
            )
        url = f"http://127.0.0.1:{port}"
        serving(f"{url}/accounts/login/", timeout=60)
        marker = backend_of(case)["ready_marker"].encode()
        for host in hosts:
            log = logs / f"{host.name}.log"
            wait_until(
                lambda log=log: marker in log.read_bytes(), 90, f"{host.name}'s worker"
            )
        yield {
            "case": case,
            "url": url,
            "env": env,
            "hosts": hosts,
            "logs": logs,
            "inbox": inbox,
        }
    finally:
        for host in hosts:
            host.down()
        for process in here:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in here:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        smtp.stop()


def host_lines(cluster, host, pattern):
    log = (cluster["logs"] / f"{host.name}.log").read_text(errors="replace")
    return [line for line in log.splitlines() if re.search(pattern, line)]


def test_tasks_spread_over_both_hosts_and_their_lines_name_them(cluster):
    alice = login(cluster, "alice")
    urls = []
    for _ in range(PHOTOS):
        response = post(
            alice, "/photos/", files={"image": ("sky.png", noise_png((640, 480)))}
        )
        assert response.status_code == 202, response.text
        urls.append(response.json()["status_url"])
    for url in urls:
        assert settled(alice, url, timeout=120)["status"] == "done"

    made = {}
    for host in cluster["hosts"]:
        lines = host_lines(cluster, host, r"Photo \d+: thumbnail made")
        assert all(f" {host.name} " in line for line in lines), lines
        made[host.name] = len(lines)
    print(f"\n{cluster['case']}: {PHOTOS} photos, thumbnails made per host: {made}")
    assert sum(made.values()) == PHOTOS, made
    assert all(made.values()), made  # both hosts took some


def host_connections(host):
    """The database connections ``host``'s processes hold (application_name)."""
    query = "SELECT application_name FROM pg_stat_activity"
    names = run(ROOT, "psql", f"{PG_URL}/postgres", "-tAc", query).stdout.split()
    return names.count(f"offload-{host.name}")


def test_a_host_cut_off_mid_task_then_killed_loses_nothing(cluster):
    """Notifications of 30 recipients each, some running on each host: one
    host is cut off, then killed. Every notification still ends done, every
    recipient sent to (twice at most: email is at least once), and the
    database lets go of the dead host's connections."""
    alice = login(cluster, "alice")
    # About 0.2 s a message here: some seconds a notification, well within
    # the time limit (TIME_LIMIT).
    cluster["inbox"].delay = 0.02
    cut, other = cluster["hosts"]
    assert host_connections(cut) > 0
    running, urls = sending(alice, "Cut", count=4, recipients=RECIPIENTS)
    cut.cut()
    cut_at = time.monotonic()
    time.sleep(5)  # cut off while its task runs: it cannot even say so
    cut.kill()
    cluster["inbox"].delay = 0

    released = []  # when the database closed the dead host's connections

    def watch():
        released.append(
            wait_until(
                lambda: host_connections(cut) == 0 and time.monotonic() - cut_at,
                CONNECTIONS,
                "the database to close the cut host's connections",
            )
        )

    watcher = threading.Thread(target=watch)
    watcher.start()
    for url in urls:
        body = settled(alice, url, timeout=RECOVERY)
        assert (body["status"], body["sent"], body["failed"]) == (
            "done",
            RECIPIENTS,
            0,
        )
    recovered = time.monotonic() - cut_at
    watcher.join()
    assert released, f"connections still open {CONNECTIONS} s after the cut"
    sent = cluster["inbox"].envelopes
    subjects = [e for e in sent if b"Subject: Cut" in e.content]
    print(
        f"\n{cluster['case']}: host cut off, then killed 5 s later: all 4 "
        f"notifications done {recovered:.0f} s after the cut; "
        f"{len(subjects) - 4 * RECIPIENTS} messages sent twice; the database "
        f"closed the dead host's connections {released[0]:.0f} s after the cut; "
        f"the other host's connections: {host_connections(other)}"
    )
    assert running["sent"] > 0
    assert len(subjects) >= 4 * RECIPIENTS
    # A later task runs on the host that is left.
    after = notify(alice, "After the cut", ["b@example.org"])
    assert settled(alice, after)["status"] == "done"
    assert httpx.get(f"{cluster['url']}/accounts/login/").status_code == 200
