"""Cases, paths and a command runner shared by the template's tests."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the template venv: uv, linters, supervisord
UV = str(BIN / "uv")
PG_URL = os.environ.get("OFFLOAD_PG_URL", "postgres://postgres@127.0.0.1:5432")

# One case per backend, plus cases that change one option.
CASES = {
    "default": {},
    "no_deploy": {"use_docker": False, "use_supervisord": False, "use_systemd": False},
    "renamed": {
        "project_name": "Sky-Survey Alerts",
        "time_zone": "Europe/Paris",
        "domain_name": "alerts.example.org",
    },
}


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


def production_env(case):
    """Environment of a production-like run: DEBUG off, PostgreSQL."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "-production-key-for-tests-" + "y" * 20,
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DATABASE_URL": f"{PG_URL}/offload_{case}",
    }


def python(project):
    return str(project / ".venv" / "bin" / "python")
