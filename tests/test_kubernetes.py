"""deploy/kubernetes/: the kustomize base and its production overlay.

Offline: kubectl renders the overlay, kubernetes-validate checks the core
objects against the API's schemas, KEDA's triggers are checked against the
fields each scaler reads (its CRD types them as a map of strings, so no
schema would catch a misspelt one), and the rules the other process
managers follow (stop grace, commands) are checked against the backend's
row. Last, each trigger is shown to count a task queued by the project's
own code, on the local PostgreSQL, Redis and RabbitMQ.
"""

import json
import shutil

import kubernetes_validate
import pika
import pytest
import redis
import yaml

from .bakery import (
    BACKENDS,
    CASES,
    PG_URL,
    ROOT,
    TEMPLATE,
    backend_of,
    broker_of,
    broker_url,
    fresh_database,
    production_env,
    python,
    run,
)

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
KUBERNETES_VERSION = "1.32"
OVERLAY = "deploy/kubernetes/overlays/production"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}

# The trigger metadata each KEDA scaler reads (keda.sh/docs/2.x/scalers/:
# redis-lists, rabbitmq-queue, postgresql): every field it accepts, those it
# requires, and groups of which one must be given (where to connect).
SCALERS = {
    "redis": {
        "allowed": {
            "address",
            "addressFromEnv",
            "host",
            "hostFromEnv",
            "port",
            "portFromEnv",
            "usernameFromEnv",
            "passwordFromEnv",
            "listName",
            "listLength",
            "activationListLength",
            "enableTLS",
            "unsafeSsl",
            "databaseIndex",
        },
        "required": {"listName", "listLength"},
        "one_of": [{"address", "addressFromEnv", "host", "hostFromEnv"}],
    },
    "rabbitmq": {
        "allowed": {
            "host",
            "hostFromEnv",
            "protocol",
            "mode",
            "value",
            "activationValue",
            "queueName",
            "vhostName",
            "useRegex",
            "excludeUnacknowledged",
            "pageSize",
            "operation",
            "timeout",
            "unsafeSsl",
        },
        "required": {"queueName", "mode", "value"},
        "one_of": [{"host", "hostFromEnv"}],
    },
    "postgresql": {
        "allowed": {
            "connectionFromEnv",
            "host",
            "port",
            "userName",
            "passwordFromEnv",
            "dbName",
            "sslmode",
            "query",
            "targetQueryValue",
            "activationTargetQueryValue",
        },
        "required": {"query", "targetQueryValue"},
        "one_of": [{"connectionFromEnv", "host"}],
    },
}


def trigger_problems(trigger):
    """What KEDA would ignore or miss in a trigger: [] when it is sound."""
    scaler = SCALERS.get(trigger.get("type"))
    if scaler is None:
        return [f"no scaler table for {trigger.get('type')!r}"]
    metadata = trigger.get("metadata", {})
    problems = [
        f"unknown field {key!r}" for key in metadata if key not in scaler["allowed"]
    ]
    problems += [
        f"missing {key!r}" for key in sorted(scaler["required"] - set(metadata))
    ]
    for group in scaler["one_of"]:
        if len(group & set(metadata)) != 1:
            problems.append(f"exactly one of {sorted(group)} is needed")
    problems += [
        f"{key!r} is not a string"
        for key, value in metadata.items()
        if not isinstance(value, str)
    ]
    return problems


@pytest.fixture(scope="module", params=BACKENDS)
def case(request):
    return request.param


@pytest.fixture(scope="module")
def row(case):
    return backend_of(case)


@pytest.fixture(scope="module")
def project(baked, case):
    return baked(case)


def kustomize(project):
    result = run(project, KUBECTL, "kustomize", OVERLAY, check=False, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def objects(project):
    return kustomize(project)


def find(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind]
    if name is not None:
        found = [o for o in found if o["metadata"]["name"] == name]
    return found


def one(objects, kind, name):
    found = find(objects, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def settings_of(objects):
    return one(objects, "ConfigMap", find(objects, "ConfigMap")[0]["metadata"]["name"])[
        "data"
    ]


def pod_specs(objects):
    """(kind/name, pod spec) of every workload."""
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}
    ]


def expanded(row, project):
    """The row's trigger metadata as rendered: {queue} is the project's queue."""
    return {
        key: value.replace("{queue}", project.name)
        for key, value in row["keda"]["metadata"].items()
    }


# 1. Rendering -------------------------------------------------------------


def test_production_overlay_renders_offline(objects, row):
    kinds = sorted(o["kind"] for o in objects)
    expected = ["ConfigMap", "Deployment", "Deployment", "Ingress", "Job", "Service"]
    if row["scheduler"]:
        expected.append("Deployment")
    expected.append("ScaledObject" if row["keda"] else "PersistentVolumeClaim")
    assert kinds == sorted(expected)
    namespaces = {o["metadata"].get("namespace") for o in objects}
    assert namespaces == {project_namespace(objects)}


def project_namespace(objects):
    return objects[0]["metadata"]["namespace"]


@pytest.mark.skipif(
    "no_deploy" not in CASES, reason="the default backend is not tested"
)
def test_kubernetes_folder_goes_with_docker(baked):
    assert not (baked("no_deploy") / "deploy" / "kubernetes").exists()


# 2. Schemas ---------------------------------------------------------------


def test_core_objects_match_the_kubernetes_schemas_strictly(objects):
    problems = []
    for item in objects:
        if item["kind"] in KEDA_KINDS:
            continue  # test_keda_trigger_*
        try:
            kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        except (
            kubernetes_validate.ValidationError,
            kubernetes_validate.SchemaNotFoundError,
        ) as error:
            problems.append(f"{item['kind']}/{item['metadata']['name']}: {error}")
    assert problems == []


# 3. KEDA ------------------------------------------------------------------


def test_keda_trigger_uses_only_fields_its_scaler_reads(objects, row, project):
    scaled = find(objects, "ScaledObject")
    if row["keda"] is None:
        assert scaled == []  # huey_sqlite: one node, no autoscaling
        return
    (scaled,) = scaled
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == row["keda"]["type"]
    assert trigger_problems(trigger) == []
    # The row is what is rendered.
    assert trigger["metadata"] == expanded(row, project)


def test_keda_scales_the_worker_deployment_from_one(objects, row):
    if row["keda"] is None:
        worker = one(objects, "Deployment", "worker")
        assert worker["spec"]["replicas"] == 1
        return
    (scaled,) = find(objects, "ScaledObject")
    target = scaled["spec"]["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    worker = one(objects, "Deployment", target["name"])
    assert worker["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "bin/worker"
    ]
    # KEDA owns the count: a replicas field would fight it on each apply.
    assert "replicas" not in worker["spec"]
    assert scaled["spec"]["minReplicaCount"] == 1
    assert scaled["spec"]["maxReplicaCount"] >= 1


def test_keda_trigger_reads_its_connection_from_the_workers_environment(objects, row):
    if row["keda"] is None:
        return
    (scaled,) = find(objects, "ScaledObject")
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    settings = settings_of(objects)
    for key, variable in metadata.items():
        if key.endswith("FromEnv"):
            secret_ones = {"DATABASE_URL", "RABBITMQ_URL", "REDIS_PASSWORD"}
            assert variable in settings or variable in secret_ones, (key, variable)


def test_queue_name_is_set_where_worker_and_trigger_both_read_it(objects, row, project):
    if row["keda"] is None or row["keda"]["queue_variable"] is None:
        return
    assert settings_of(objects)[row["keda"]["queue_variable"]] == project.name


@pytest.mark.parametrize(
    ("scaler", "metadata"),
    [
        ("redis", {"addressFromEnv": "A", "listname": "q", "listLength": "5"}),
        ("redis", {"addressFromEnv": "A", "listName": "q", "listLenght": "5"}),
        ("redis", {"listName": "q", "listLength": "5"}),
        (
            "rabbitmq",
            {"hostFromEnv": "H", "queue": "q", "mode": "QueueLength", "value": "5"},
        ),
        (
            "rabbitmq",
            {"hostFromEnv": "H", "queueName": "q", "mode": "QueueLength", "value": 5},
        ),
        (
            "postgresql",
            {"connectionFromEnv": "D", "query": "SELECT 1", "targetValue": "5"},
        ),
        (
            "postgresql",
            {
                "connectionFromEnv": "D",
                "host": "h",
                "query": "SELECT 1",
                "targetQueryValue": "5",
            },
        ),
    ],
)
def test_keda_trigger_check_catches_misspelt_or_missing_fields(scaler, metadata):
    assert trigger_problems({"type": scaler, "metadata": metadata}) != []


# 4. Stop rules and commands agree with the row -----------------------------


def test_stop_signal_of_every_backend_is_kubernetes_sigterm():
    # Kubernetes sends SIGTERM (the image sets no STOPSIGNAL): a row that
    # stops with another signal needs a preStop hook here.
    for name, row in TEMPLATE["_backends"].items():
        assert row["stop_signal"] == "TERM", name
        if row["scheduler"]:
            assert row["scheduler"]["stop_signal"] == "TERM", name


def test_processes_run_the_start_scripts_with_the_rows_stop_grace(objects, row):
    def container(kind, name):
        spec = one(objects, kind, name)["spec"]["template"]["spec"]
        (only,) = spec["containers"]
        return spec, only

    spec, web = container("Deployment", "web")
    assert web["command"] == ["bin/web"]
    assert spec["terminationGracePeriodSeconds"] == 35  # gunicorn's 30 s + 5
    spec, worker = container("Deployment", "worker")
    assert worker["command"] == ["bin/worker"]
    assert spec["terminationGracePeriodSeconds"] == row["stop_grace_seconds"]
    spec, migrate = container("Job", "migrate")
    assert migrate["command"] == ["bin/migrate"]
    job = one(objects, "Job", "migrate")["spec"]
    assert job["backoffLimit"] >= 0
    assert job["ttlSecondsAfterFinished"] > 0
    assert spec["restartPolicy"] == "Never"
    schedulers = find(objects, "Deployment", "scheduler")
    if not row["scheduler"]:
        assert schedulers == []
        return
    (scheduler,) = schedulers
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    spec, process = container("Deployment", "scheduler")
    assert process["command"] == ["bin/scheduler"]
    assert (
        spec["terminationGracePeriodSeconds"] == row["scheduler"]["stop_grace_seconds"]
    )


def test_web_probes_ask_the_health_url_with_an_allowed_host(objects):
    (web,) = one(objects, "Deployment", "web")["spec"]["template"]["spec"]["containers"]
    assert web["ports"] == [{"name": "http", "containerPort": 8000}]
    allowed = settings_of(objects)["ALLOWED_HOSTS"].split(",")
    for probe in ("readinessProbe", "startupProbe"):
        check = web[probe]["httpGet"]
        assert check["path"] == "/healthz/"
        assert check["port"] in {"http", 8000}
        hosts = [h["value"] for h in check["httpHeaders"] if h["name"] == "Host"]
        assert len(hosts) == 1
        assert hosts[0] in allowed


def test_worker_probes_run_the_heartbeat_check_that_the_project_ships(objects, project):
    """The worker's liveness is bin/worker-alive (core/heartbeat.py), which
    the baked project has; its startup probe gives the boot time to beat."""
    (worker,) = one(objects, "Deployment", "worker")["spec"]["template"]["spec"][
        "containers"
    ]
    for probe in ("startupProbe", "livenessProbe"):
        assert worker[probe]["exec"]["command"] == ["bin/worker-alive"]
        assert worker[probe]["timeoutSeconds"] >= 5
    boot = worker["startupProbe"]
    assert boot["periodSeconds"] * boot["failureThreshold"] >= 60
    assert (project / "bin" / "worker-alive").stat().st_mode & 0o111


def test_each_long_running_pod_waits_for_its_release_migrations(objects, row):
    """web, worker and the scheduler start once the migrate Job is done:
    their init container runs bin/wait-for-migrations, as they are."""
    names = ["web", "worker"] + (["scheduler"] if row["scheduler"] else [])
    for name in names:
        pod = one(objects, "Deployment", name)["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        (main,) = pod["containers"]
        assert init["command"] == ["bin/wait-for-migrations"]
        for key in ("image", "envFrom", "securityContext", "volumeMounts"):
            assert init[key] == main[key], (name, key)


def test_settings_are_production_ones_and_secrets_are_only_referenced(objects, case):
    settings = settings_of(objects)
    assert settings["DEBUG"] == "false"
    assert settings["USE_HTTPS"] == "true"
    assert settings["S3_BUCKET"]
    secret_names = {
        "SECRET_KEY",
        "DATABASE_URL",
        "AWS_SECRET_ACCESS_KEY",
        "EMAIL_HOST_PASSWORD",
    }
    broker = broker_of(case)
    if broker:
        secret_names.add(broker["url_variable"])
    assert not secret_names & set(settings)
    assert find(objects, "Secret") == []  # the user creates it
    for name, spec in pod_specs(objects):
        (container,) = spec["containers"]
        sources = container["envFrom"]
        assert {"secretRef": {"name": "secrets"}} in sources, name
        assert any("configMapRef" in source for source in sources), name


# 5. Security context, resources, volumes -----------------------------------


def test_every_pod_runs_unprivileged_on_a_read_only_root(objects):
    for name, spec in pod_specs(objects):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == 10001, name  # the Dockerfile's USER
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert set(mounts) == {"/tmp", "/app/var"}, name  # noqa: S108
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), (name, bound)


def test_no_pod_shares_a_host_path_or_a_volume_for_media(objects, row):
    for name, spec in pod_specs(objects):
        volumes = {v["name"]: v for v in spec["volumes"]}
        for volume in volumes.values():
            assert "hostPath" not in volume, name
        assert volumes["tmp"].keys() == {"name", "emptyDir"}, name
        var = volumes["var"]
        if row["state_volume"] and name in {"Deployment/web", "Deployment/worker"}:
            # huey's SQLite queue: the one shared volume, and not media.
            assert var["persistentVolumeClaim"] == {"claimName": "state"}
        else:
            assert var.keys() == {"name", "emptyDir"}, name
        for container in spec["containers"]:
            assert all("media" not in m["mountPath"] for m in container["volumeMounts"])


def test_one_node_backend_keeps_web_and_worker_together(objects, row):
    if not row["state_volume"]:
        return
    worker = one(objects, "Deployment", "worker")["spec"]
    web = one(objects, "Deployment", "web")["spec"]
    assert web["replicas"] == 1
    assert web["strategy"] == worker["strategy"] == {"type": "Recreate"}
    (term,) = worker["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web"


# 7. The trigger counts what the project queues ------------------------------

# Queue one task with the project's own code (its scheduled rescue task).
ENQUEUE = {
    "django_tasks_db": "from core.tasks import rescue_jobs; rescue_jobs.enqueue()",
    "huey_redis": "from core.tasks import rescue_jobs; rescue_jobs()",
    "rq": "from django.conf import settings; from django_rq import get_queue; "
    "from core.tasks import rescue_jobs; "
    "get_queue(settings.RQ_QUEUE).enqueue(rescue_jobs)",
    "dramatiq_redis": "from core.tasks import rescue_jobs; rescue_jobs.send()",
    "dramatiq_rabbitmq": "from core.tasks import rescue_jobs; rescue_jobs.send()",
    "celery_redis": "from core.tasks import rescue_jobs; rescue_jobs.delay()",
    "celery_rabbitmq": "from core.tasks import rescue_jobs; rescue_jobs.delay()",
}


def queue_depth(trigger, env):
    """What KEDA would read: the trigger's own query, list or queue."""
    metadata = trigger["metadata"]
    if trigger["type"] == "postgresql":
        url = env[metadata["connectionFromEnv"]]
        return int(run(ROOT, "psql", url, "-tAc", metadata["query"]).stdout)
    if trigger["type"] == "redis":
        client = redis.Redis.from_url(
            env["REDIS_URL"], db=int(metadata["databaseIndex"])
        )
        return client.llen(metadata["listName"])
    parameters = pika.URLParameters(env[metadata["hostFromEnv"]])
    with pika.BlockingConnection(parameters) as connection:
        channel = connection.channel()
        try:
            declared = channel.queue_declare(metadata["queueName"], passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        return declared.method.message_count


def clear_queue(trigger, env):
    metadata = trigger["metadata"]
    if trigger["type"] == "redis":
        redis.Redis.from_url(env["REDIS_URL"]).delete(metadata["listName"])
    elif trigger["type"] == "rabbitmq":
        with pika.BlockingConnection(
            pika.URLParameters(env["RABBITMQ_URL"])
        ) as connection:
            connection.channel().queue_delete(metadata["queueName"])


@pytest.mark.e2e
def test_trigger_counts_a_task_the_project_queues(synced, case, row, objects):
    if row["keda"] is None:  # huey_sqlite: its workers are not autoscaled
        assert find(objects, "ScaledObject") == []
        return
    project = synced(case)
    (scaled,) = find(objects, "ScaledObject")
    trigger = json.loads(json.dumps(scaled["spec"]["triggers"][0]))
    settings = settings_of(objects)
    env = production_env(f"k8s_{case}", case)
    variable = row["keda"]["queue_variable"]
    if variable:
        # The ConfigMap's queue, made this run's own; the trigger follows.
        queue = f"{settings[variable]}_{case}"
        env[variable] = queue
        for key, value in trigger["metadata"].items():
            trigger["metadata"][key] = value.replace(settings[variable], queue)
    elif row["keda"]["type"] == "redis":
        # huey names its queue after the database, as the trigger assumes.
        env["DATABASE_URL"] = f"{PG_URL}/{project.name}"
    if broker_of(case):
        env[broker_of(case)["url_variable"]] = broker_url(broker_of(case))
    if row["keda"]["type"] == "postgresql":
        fresh_database(env)
        run(project, python(project), "manage.py", "migrate", "--no-input", env=env)
    clear_queue(trigger, env)
    before = queue_depth(trigger, env)
    run(project, python(project), "manage.py", "shell", "-c", ENQUEUE[case], env=env)
    assert queue_depth(trigger, env) == before + 1
    clear_queue(trigger, env)
