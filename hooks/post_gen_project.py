"""Finish the generated project: refuse a slug uv cannot lock, drop unselected
files, write .env, record where the template came from, say what next.

Runs inside the new project directory (cookiecutter's rule, under cruft too).
Tests import it and call the functions with a context dict and a directory.
"""

import contextlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def distribution(requirement):
    """The normalised name of a requirement: "Pillow>=11" -> "pillow"."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group()
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_problem(slug, root):
    """A sentence if the slug names a package of the project's uv.lock.

    The rendered lock pins every package the project installs, dependencies
    of dependencies included, so a new backend extends the check with no edit
    here. uv cannot lock a project named like one of them, and a package of
    that name would shadow it. (Module names that differ from their
    package's are checked before rendering, from cookiecutter.json.)
    """
    lock = root / "uv.lock"
    text = lock.read_text() if lock.exists() else ""  # empty until .ci/lock
    packages = tomllib.loads(text).get("package", [])
    names = {
        distribution(package["name"])
        for package in packages
        if package.get("source") != {"virtual": "."}  # the project itself
    }
    if distribution(slug) in names:
        return (
            f"Project slug {slug!r} is the name of a module or package the "
            "project depends on."
        )
    return None


# Written by hooks/pre_prompt.py in cookiecutter's copy of the template.
COPY_MARK = ".offload-template-copy"

# The one table of option -> paths that exist only when the option is on.
OPTIONAL_PATHS = {
    "use_docker": ["Dockerfile", ".dockerignore", "compose.yaml", "deploy/kubernetes"],
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
    "config/celery.py",
    "core/actors.py",
    "core/admin.py",
    "core/broker.py",
    "core/jobs.py",
    "core/management/commands/worker.py",
    "core/management/commands/scheduler.py",
    "core/queue.py",
    "tests/core/test_commands.py",
    "tests/core/test_queue.py",
    "tests/photos/test_tasks.py",
    "tests/core/test_scheduler.py",
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
    """Copy .env.example to a git-ignored .env, with a fresh secret key and
    passwords for compose's S3 server and broker (where it asks for one).

    The same command makes .env on a fresh clone (README.md): .env.example is
    a working development configuration whose empty key falls back to a
    development-only one.
    """
    env = root / ".env"
    if env.exists():
        return
    example = (root / ".env.example").read_text()
    key = f"SECRET_KEY={secrets.token_urlsafe(50)}"
    example = re.sub(r"^SECRET_KEY=$", key, example, count=1, flags=re.M)
    for name in ("BROKER_PASSWORD", "STORAGE_PASSWORD"):
        password = f"{name}={secrets.token_urlsafe(24)}"
        example = re.sub(rf"^{name}=$", password, example, count=1, flags=re.M)
    env.write_text(example)
    env.chmod(0o600)


def git(folder, *args):
    """Standard output of a git command in ``folder``, or "" if it fails."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def template_origin(context):
    """The template's git address and commit, or None where there is none.

    cookiecutter gives the template's folder: its clone of a URL, or the
    user's checkout, as an absolute copy (hooks/pre_prompt.py). That folder
    is a path of this machine and this run; its ``origin`` remote is the
    address anyone can update from. A folder that is no git checkout, or has
    no remote, has nothing to record.
    """
    folder = Path(context.get("_repo_dir", ""))
    if not folder.is_absolute():  # cookiecutter before 2.4: no pre_prompt copy
        return None
    url = without_credentials(git(folder, "remote", "get-url", "origin"))
    commit = git(folder, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return (url, commit) if url and commit else None


def without_credentials(url):
    """``url`` without a password or an HTTP(S) user name: a clone over
    ``https://<token>@host/...`` must not put the token in the project's
    history. (ssh's ``git@`` stays: it is no secret.)"""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    user = user.split(":", 1)[0]
    keep_user = user and parts.scheme not in {"http", "https"}
    netloc = f"{user}@{host}" if keep_user else host
    return urlunsplit(parts._replace(netloc=netloc))


def record_origin(context, root, origin):
    """Write .cruft.json as ``cruft create`` would: template, commit, answers.

    cruft (check, diff, update) reads it to bring template changes, or another
    backend, into the project. Only the answers go in the context: the
    template's tables come from the template at the commit updated to, and
    cookiecutter's paths (its copy, the output folder) mean nothing elsewhere.
    """
    template, commit = origin
    answers = {key: value for key, value in context.items() if key[0] != "_"}
    state = {
        "template": template,
        "commit": commit,
        "checkout": context.get("_checkout"),
        "context": {
            "cookiecutter": {**answers, "_template": template, "_commit": commit}
        },
        "directory": None,
    }
    text = json.dumps(state, ensure_ascii=False, indent=2)
    (root / ".cruft.json").write_text(text + "\n")


NO_ORIGIN = (
    "Note: no .cruft.json was written: the template's git origin and commit "
    "could not be read (bake from a git clone or URL, with cookiecutter 2.4 "
    "or newer). To take template updates later, run "
    "`uvx cruft link <the template's git URL>` in the project."
)


def next_steps(context):
    slug = context["project_slug"]
    lines = [f"Created {slug}/. Next:", f"  cd {slug}"]
    broker = context["_backends"][context["task_backend"]]["broker"]
    if broker:
        broker = context["_brokers"][broker]
        lines.append(f"  # start {broker['label']} on {broker['default_url']}")
    # The README's "Run it" commands, in its order (tests/test_bake.py).
    lines += [
        "  uv run python manage.py migrate",
        "  uv run python manage.py createsuperuser",
        "  uv run honcho start -p 8000  # web on :8000 + worker, SQLite",
    ]
    if context["use_docker"]:
        lines += [
            "  # or, with Docker (PostgreSQL, an S3 server, a mail catcher):",
            "  docker compose up --build --wait",
            "  docker compose run --rm web python manage.py createsuperuser",
        ]
    lines.append("Then read README.md.")
    return "\n".join(lines)


def remove_template_copy(context):
    """Remove cookiecutter's copy of the template, which it keeps after a
    bake a hook stops: only a copy hooks/pre_prompt.py marked, never the
    template the user named."""
    copy = Path(context.get("_repo_dir", ""))
    if copy.is_absolute() and (copy / COPY_MARK).is_file():
        shutil.rmtree(copy)
        with contextlib.suppress(OSError):
            copy.parent.rmdir()  # cookiecutter's folder for it, now empty


def main(context, root):
    problem = dependency_problem(context["project_slug"], root)
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        remove_template_copy(context)
        return 1
    remove_unselected(context, root)
    remove_unfilled(context, root)
    write_env(root)
    # cruft (create, update) passes the commit and writes .cruft.json itself.
    if "_commit" not in context:
        origin = template_origin(context)
        if origin:
            record_origin(context, root, origin)
        else:
            print(NO_ORIGIN, file=sys.stderr)
    print(next_steps(context))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}"""), Path.cwd()))
