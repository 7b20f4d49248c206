"""The heavy checks stand for every backend.

`docker compose up` for real (tests/test_compose.py) and the server guide
on Debian booting systemd (tests/test_server.py) run for one backend per
broker (tests/bakery.py HEAVY): minutes each, they would not fit eight
backends. Here every other backend's deployment (the guide's commands,
``deploy/``, ``compose.yaml``) must be its representative's, once what the
cheaper checks cover for every backend is set aside:

- the scheduler process, there or not: its unit, program and service, and
  its name in commands (tests/test_deploy.py checks them against the row);
- the stop rules' values, signal and grace (tests/test_deploy.py, against
  the row, and a real supervisord stop for every backend);
- the state volume web and worker share (tests/test_deploy.py);
- comments and blank lines.

What runs inside the processes (bin/worker, settings, tasks) is each
backend's own, run for every backend by the end-to-end tests, the sandbox
trace and supervisord (tests/test_e2e.py, tests/test_deploy.py). A backend
that changes anything else (a package, a command, a unit setting) fails
here: cover the change with a cheaper check, or give it heavy checks of its
own.
"""

import re

import pytest
import yaml

from .bakery import BACKENDS, HEAVY, guide_steps, representative

COVERED = [name for name in BACKENDS if name not in HEAVY]
# Stop rules: checked against the row by tests/test_deploy.py.
STOP_RULES = re.compile(
    r"^(KillSignal|TimeoutStopSec|stopsignal|stopwaitsecs)=.*$", re.M
)


def without_state(value):
    """A compose value without the state volume, at any depth (and without
    a list of volumes that held only it)."""
    if isinstance(value, dict):
        kept = {k: without_state(v) for k, v in value.items() if k != "state"}
        return {k: v for k, v in kept.items() if v or not value[k]}
    if isinstance(value, list):
        return [without_state(v) for v in value if v != "state:/app/var"]
    return value


def deployment(project):
    """What the heavy checks run of ``project``, less what cheaper ones cover."""
    slug = project.name
    scheduler = re.compile(rf"[ ,]{slug}[-:]scheduler(\.service)?\b")
    readme = (project / "README.md").read_text()
    guide = [
        (heading, [scheduler.sub("", command) for command in commands])
        for heading, commands, _ in guide_steps(readme)
    ]

    files = {}
    for path in sorted((project / "deploy").rglob("*")):
        if not path.is_file() or path.stem.endswith("-scheduler"):
            continue
        if "kubernetes" in path.parts:  # every backend's: tests/test_kubernetes.py
            continue
        text = re.sub(
            rf"^\[program:{slug}-scheduler\]\n.*?(?=^\[|\Z)",
            "",
            path.read_text(),
            flags=re.M | re.S,
        )
        lines = [
            line
            for line in scheduler.sub("", text).splitlines()
            if line.strip() and not line.lstrip().startswith(("#", ";"))
        ]
        files[str(path.relative_to(project))] = STOP_RULES.sub(
            r"\1=(the row's)", "\n".join(lines)
        )

    compose = without_state(yaml.safe_load((project / "compose.yaml").read_text()))
    compose["services"].pop("scheduler", None)
    for name in ("stop_signal", "stop_grace_period"):
        compose["services"]["worker"].pop(name)
    return {"guide": guide, "deploy": files, "compose": compose}


@pytest.mark.parametrize("name", COVERED)
def test_a_backend_without_heavy_checks_deploys_as_its_representative(baked, name):
    ours = deployment(baked(name))
    theirs = deployment(baked(representative(name)))
    assert ours["guide"] == theirs["guide"]
    assert ours["deploy"] == theirs["deploy"]
    assert ours["compose"] == theirs["compose"]
