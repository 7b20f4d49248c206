"""Bake each backend's project and benchmark it on the local servers.

    uv run python benchmarks/run.py [--backend NAME ...] [--requests N] [--tasks N]

Prints measured figures only; it asserts nothing. The measuring code runs in
each baked project's own virtual environment (benchmarks/in_project.py),
with the backend's driver (templates/backends/<backend>/benchmark.py) as the
task module of a small app added to the project.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
UV = str(Path(sys.executable).with_name("uv"))
PG_URL = os.environ.get("OFFLOAD_PG_URL", "postgres://postgres@127.0.0.1:5432")
TEMPLATE = json.loads((ROOT / "cookiecutter.json").read_text())


def bench_path(backend, folder):
    """The benchmark's modules, with the backend's driver as bench_app.tasks."""
    folder.mkdir()
    for name in ("in_project.py", "bench_settings.py", "bench_views.py", "bench_app"):
        source = HERE / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy(source, folder / name)
    # Drivers may include each other's text, as the template's files do.
    loader = jinja2.FileSystemLoader(ROOT / "templates")
    driver = jinja2.Environment(loader=loader, autoescape=False).get_template(  # noqa: S701
        f"backends/{backend}/benchmark.py"
    )
    (folder / "bench_app" / "tasks.py").write_text(driver.render())
    return folder


def benchmark(backend, args, tmp, inline):
    row = TEMPLATE["_backends"][backend]
    project = Path(
        cookiecutter(
            str(ROOT),
            no_input=True,
            output_dir=str(tmp),
            extra_context={"task_backend": backend},
        )
    )
    subprocess.run([UV, "sync", "--locked", "--quiet"], cwd=project, check=True)
    env = {
        **os.environ,
        "DEBUG": "false",
        "USE_HTTPS": "false",
        "SECRET_KEY": "benchmark-" + "k" * 60,
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "DATABASE_URL": f"{PG_URL}/offload_bench_{backend}",
        "MEDIA_ROOT": str(tmp / "media"),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "bench_settings",
    }
    bench = bench_path(backend, tmp / "bench")
    env["PYTHONPATH"] = str(bench)
    if row["broker"]:
        broker = TEMPLATE["_brokers"][row["broker"]]
        env[broker["url_variable"]] = (
            os.environ.get(f"OFFLOAD_{broker['url_variable']}") or broker["default_url"]
        )
    if row["state_volume"]:
        env["STATE_DIRECTORY"] = str(tmp)
    print(f"\n== {backend}: {row['label']}", flush=True)
    subprocess.run(
        [
            str(project / ".venv" / "bin" / "python"),
            str(bench / "in_project.py"),
            "--requests",
            str(args.requests),
            "--tasks",
            str(args.tasks),
            *(["--inline"] if inline else []),
        ],
        cwd=project,
        env=env,
        check=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=TEMPLATE["task_backend"])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    for n, backend in enumerate(args.backend or TEMPLATE["task_backend"]):
        with tempfile.TemporaryDirectory(prefix="offload-bench-") as tmp:
            # The thumbnail made in the request does not depend on the
            # backend: measured with the first one only.
            benchmark(backend, args, Path(tmp), inline=n == 0)


if __name__ == "__main__":
    main()
