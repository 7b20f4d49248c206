"""Finish the generated project: drop unselected files, write .env, say what next.

Runs inside the new project directory. Tests import it and call the functions
with a context dict and a directory.
"""

import json
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


def write_env(root):
    """Write a git-ignored .env for development with a fresh secret key."""
    env = root / ".env"
    if env.exists():
        return
    env.write_text(
        "# Development settings, read by config/settings.py and compose.yaml.\n"
        "# Git-ignored: never commit it. Production sets these in its own env.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    )
    env.chmod(0o600)


def next_steps(context):
    lines = [
        f"Created {context['project_slug']}/. Next:",
        f"  cd {context['project_slug']}",
        "  uv run python manage.py migrate",
        "  uv run honcho start -p 8000  # web on :8000 + worker, SQLite",
    ]
    if context["use_docker"]:
        lines.append("  docker compose up --build   # or PostgreSQL + mail catcher")
    lines.append("Then read README.md.")
    return "\n".join(lines)


def main(context, root):
    remove_unselected(context, root)
    write_env(root)
    print(next_steps(context))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}"""), Path.cwd()))
