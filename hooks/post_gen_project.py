"""Finish the generated project: drop unselected files, write .env, say what next.

Runs inside the new project directory. Tests import it and call the functions
with a context dict and a directory.
"""

import json
import re
import secrets
import shutil
import sys
from pathlib import Path

# The one table of option -> paths that exist only when the option is on.
OPTIONAL_PATHS = {
    "use_docker": ["Dockerfile", ".dockerignore", "compose.yaml"],
    "use_supervisord": ["deploy/supervisord"],
    "use_systemd": ["deploy/systemd"],
}


def remove_unselected(context, root):
    """Delete the files of every option answered no, then empty folders."""
    for option, paths in OPTIONAL_PATHS.items():
        if context[option]:
            continue
        for relative in paths:
            path = root / relative
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    deploy = root / "deploy"
    if deploy.is_dir() and not any(deploy.iterdir()):
        deploy.rmdir()


# Files that only some backends fill (their folder has the file, or their
# row has the process): each is removed when it renders empty, and
# core/management with them when no command is left.
BACKEND_OPTIONAL = [
    "core/management/commands/worker.py",
    "core/management/commands/scheduler.py",
    "tests/core/test_commands.py",
    "bin/scheduler",
    "deploy/systemd/{slug}-scheduler.service",
]


def remove_unfilled(context, root):
    """Delete the optional backend files the chosen backend left empty."""
    for relative in BACKEND_OPTIONAL:
        path = root / relative.format(slug=context["project_slug"])
        if path.exists() and not path.read_text().strip():
            path.unlink()
    management = root / "core" / "management"
    if management.is_dir() and not list(management.glob("commands/[!_]*.py")):
        shutil.rmtree(management)


def write_env(root):
    """Copy .env.example to a git-ignored .env, with a fresh secret key.

    The same command makes .env on a fresh clone (README.md): .env.example is
    a working development configuration whose empty key falls back to a
    development-only one.
    """
    env = root / ".env"
    if env.exists():
        return
    example = (root / ".env.example").read_text()
    key = f"SECRET_KEY={secrets.token_urlsafe(50)}"
    env.write_text(re.sub(r"^SECRET_KEY=$", key, example, count=1, flags=re.M))
    env.chmod(0o600)


def record_answers(context, root):
    """Write the answers to .cookiecutter.json, to re-generate or update later.

    Only the answers: cookiecutter's private keys hold the template's tables
    and local paths (its checkout, the output folder) that mean nothing
    elsewhere.
    """
    answers = {key: value for key, value in context.items() if key[0] != "_"}
    (root / ".cookiecutter.json").write_text(json.dumps(answers, indent=2) + "\n")


def next_steps(context):
    slug = context["project_slug"]
    lines = [f"Created {slug}/. Next:", f"  cd {slug}"]
    broker = context["_backends"][context["task_backend"]]["broker"]
    if broker:
        broker = context["_brokers"][broker]
        lines.append(f"  # start {broker['label']} on {broker['default_url']}")
    lines += [
        "  uv run python manage.py migrate",
        "  uv run honcho start -p 8000  # web on :8000 + worker, SQLite",
    ]
    if context["use_docker"]:
        lines.append("  docker compose up --build   # or PostgreSQL + mail catcher")
    lines.append("Then read README.md.")
    return "\n".join(lines)


def main(context, root):
    remove_unselected(context, root)
    remove_unfilled(context, root)
    write_env(root)
    record_answers(context, root)
    print(next_steps(context))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}"""), Path.cwd()))
