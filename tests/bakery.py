"""Cases, paths and a command runner shared by the template's tests."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pika
import redis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the template venv: uv, linters, supervisord
UV = str(BIN / "uv")
PG_URL = os.environ.get("OFFLOAD_PG_URL", "postgres://postgres@127.0.0.1:5432")
# The S3-compatible server .ci/run starts (SeaweedFS), and its keys.
S3_URL = os.environ.get("OFFLOAD_S3_URL", "http://127.0.0.1:8333")
S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "offload",
    "AWS_SECRET_ACCESS_KEY": "offload-test-secret",
}

TEMPLATE = json.loads((ROOT / "cookiecutter.json").read_text())
DEFAULT = TEMPLATE["task_backend"][0]
# Every backend of the table, or those named in OFFLOAD_BACKENDS (CI's matrix
# runs one per job).
BACKENDS = [
    name
    for name in TEMPLATE["task_backend"]
    if name in os.environ.get("OFFLOAD_BACKENDS", name).split(",")
]

# One case per backend (named after it), plus cases that change one option
# of the default backend.
CASES = {name: {"task_backend": name} for name in BACKENDS}
if DEFAULT in BACKENDS:
    CASES |= {
        "no_deploy": {
            "use_docker": False,
            "use_supervisord": False,
            "use_systemd": False,
        },
        "renamed": {
            "project_name": "Sky-Survey Alerts",
            "time_zone": "Europe/Paris",
            "domain_name": "alerts.example.org",
        },
    }


def representative(name):
    """The backend whose heavy checks (compose for real, the server guide on
    Debian booting systemd) stand for backend ``name``'s: the default for
    the backends without a broker; else, of the backends on its broker, the
    first with a scheduler process. Their deployments differ only in what
    the cheaper checks cover for every backend (tests/test_conformance.py).
    """
    broker = TEMPLATE["_backends"][name]["broker"]
    if broker is None:
        return DEFAULT
    on_broker = [
        other
        for other in TEMPLATE["task_backend"]
        if TEMPLATE["_backends"][other]["broker"] == broker
    ]
    with_scheduler = [o for o in on_broker if TEMPLATE["_backends"][o]["scheduler"]]
    return (with_scheduler or on_broker)[0]


# The backends the heavy checks run for: the representatives, and any backend
# under test whose representative is not (OFFLOAD_BACKENDS).
HEAVY = [
    name
    for name in BACKENDS
    if representative(name) == name or representative(name) not in BACKENDS
]


def backend_of(case):
    """The row of the task backend a case was baked with."""
    return TEMPLATE["_backends"][CASES[case].get("task_backend", DEFAULT)]


def broker_of(case):
    """The _brokers row of a case's backend, or None."""
    name = backend_of(case)["broker"]
    return TEMPLATE["_brokers"][name] if name else None


def run(cwd, *args, env=None, check=True, timeout=600):
    """Run a command; on failure, show its output in the assertion."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, (
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def broker_url(broker):
    """Where the tests reach a broker: its row's development address, or
    OFFLOAD_<its variable> (CI's RabbitMQ has a user of its own)."""
    return os.environ.get(f"OFFLOAD_{broker['url_variable']}") or broker["default_url"]


def s3_client():
    import boto3  # only the tests of buckets need it
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=S3_URL,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, connect_timeout=5),
    )


def fresh_bucket(name):
    """An empty bucket of the test server, named after ``name`` (one per
    xdist worker, as databases are)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    bucket = re.sub(r"[^a-z0-9-]", "-", f"offload-{name}-{worker or 'main'}".lower())
    client = s3_client()
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
    return bucket


def bucket_objects(bucket, prefix=""):
    """Each object of ``bucket`` under ``prefix``: its key and its bytes."""
    client = s3_client()
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix
    )
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for page in pages
        for item in page.get("Contents", [])
    }


def s3_env(bucket):
    """What a project needs to keep its uploads in ``bucket`` of the test server."""
    return {"S3_BUCKET": bucket, "S3_ENDPOINT_URL": S3_URL, **S3_KEYS}


def s3_test_env(name):
    """What the project's own bucket tests need (tests/photos/test_bucket.py):
    a bucket of theirs, which they empty, on the test server."""
    return {"S3_TEST_BUCKET": fresh_bucket(name), "S3_ENDPOINT_URL": S3_URL, **S3_KEYS}


def production_env(name, case=DEFAULT):
    """Environment of a production-like run: DEBUG off, PostgreSQL.

    ``name`` keeps runs apart: its own database (and so its own queue on a
    broker, named after the database) and its own state directory. Under
    pytest-xdist each worker process has its own too: a module's tests can
    run in both, each with a stack of its own.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        name = f"{name}_{worker}"
    env = {
        "DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "-production-key-for-tests-" + "y" * 20,
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DATABASE_URL": f"{PG_URL}/offload_{name}",
    }
    broker = broker_of(case)
    if broker:
        env[broker["url_variable"]] = broker_url(broker)
    if backend_of(case)["state_volume"]:
        state = Path(tempfile.gettempdir()) / f"offload-state-{name}"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir()
        env["STATE_DIRECTORY"] = str(state)
    return env


def json_strings(value):
    """Every string in a JSON value, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


def python(project):
    return str(project / ".venv" / "bin" / "python")


def fresh_database(env):
    """Drop and create the PostgreSQL database that ``env`` names, empty, and
    drop what an earlier run left queued for it on the broker (the queues
    are named after the database: a task of an earlier run would name rows
    that are gone, or, worse, new rows of the same id)."""
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    maintenance = f"--maintenance-db={PG_URL}/postgres"
    run(ROOT, "dropdb", "--if-exists", "--force", maintenance, database)
    run(ROOT, "createdb", maintenance, database)
    if "REDIS_URL" in env:
        client = redis.Redis.from_url(env["REDIS_URL"])
        for key in client.scan_iter(f"*{database}*"):
            client.delete(key)
    if "RABBITMQ_URL" in env:
        parameters = pika.URLParameters(env["RABBITMQ_URL"])
        with pika.BlockingConnection(parameters) as connection:
            channel = connection.channel()
            # The queues Dramatiq declares: the queue, delayed, dead.
            for name in (database, f"{database}.DQ", f"{database}.XQ"):
                channel.queue_delete(name)


# The generated README's server guide (tests/test_server.py follows it).
GUIDE = "### On a Debian or Ubuntu server"


def guide_steps(readme):
    """The guide's steps, in order: (heading, [command, ...], text).

    A line of a console block that starts with the root prompt ``# `` is a
    command; the lines after it without a prompt belong to it (a here
    document's body).
    """
    text = readme.split(GUIDE, 1)[1]
    text = re.split(r"^#{2,3} ", text, maxsplit=1, flags=re.M)[0]
    steps = []
    for part in re.split(r"^#### ", text, flags=re.M)[1:]:
        heading = part.splitlines()[0]
        commands = []
        for block in re.findall(r"```console\n(.*?)```", part, re.S):
            for line in block.splitlines():
                if line.startswith("# "):
                    commands.append(line[2:])
                else:
                    commands[-1] += "\n" + line
        steps.append((heading, commands, part))
    return steps
