"""Bake the default project and benchmark it on the local PostgreSQL.

    uv run python benchmarks/run.py [--requests N] [--tasks N]

Prints measured figures only; it asserts nothing. The measuring code runs in
the baked project's own virtual environment (benchmarks/in_project.py).
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
UV = str(Path(sys.executable).with_name("uv"))
PG_URL = os.environ.get("OFFLOAD_PG_URL", "postgres://postgres@127.0.0.1:5432")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=3000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="offload-bench-") as tmp:
        project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=tmp))
        subprocess.run([UV, "sync", "--quiet"], cwd=project, check=True)
        env = {
            **os.environ,
            "DEBUG": "false",
            "USE_HTTPS": "false",
            "SECRET_KEY": "benchmark-" + "k" * 60,
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "DATABASE_URL": f"{PG_URL}/offload_bench",
            "MEDIA_ROOT": str(Path(tmp) / "media"),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT / "benchmarks"),
        }
        subprocess.run(
            [
                str(project / ".venv" / "bin" / "python"),
                str(ROOT / "benchmarks" / "in_project.py"),
                "--requests",
                str(args.requests),
                "--tasks",
                str(args.tasks),
            ],
            cwd=project,
            env=env,
            check=True,
        )


if __name__ == "__main__":
    main()
