"""Validate the answers before cookiecutter writes anything.

Each check returns one clear sentence, or None. Run by cookiecutter, the
module exits 1 with that sentence on stderr, after removing cookiecutter's
copy of the template (``remove_template_copy``), and cookiecutter then
removes the half-made output directory. Tests import it and call
``problems()`` directly.

Everything comes from the answers and cookiecutter.json's tables: no file is
read, so the checks hold however the template was named (``cookiecutter .``,
a path, a URL, ``cruft create``). A slug equal to a package of the
project's uv.lock is refused after rendering, by the post-generation hook,
which reads the rendered lock.
"""

import contextlib
import json
import keyword
import re
import shutil
import sys
import zoneinfo
from pathlib import Path

# The project's own packages, and names every Python program imports: a
# project package with one of these names would shadow it on sys.path.
OWN_MODULES = {"config", "core", "notifications", "photos", "test", "tests"}
SHADOWED = OWN_MODULES | set(sys.stdlib_module_names)

SLUG = re.compile(r"^[a-z_][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Written by hooks/pre_prompt.py in cookiecutter's copy of the template.
COPY_MARK = ".offload-template-copy"


def slug_problem(slug, context):
    if not SLUG.match(slug) or keyword.iskeyword(slug):
        return (
            f"Project slug {slug!r} is not a lowercase Python identifier "
            "(letters, digits and underscores, not starting with a digit)."
        )
    backend = context["_backends"][context["task_backend"]]
    modules = context["_packages"]["modules"] + backend["modules"]
    if slug in SHADOWED | set(modules):
        return (
            f"Project slug {slug!r} is the name of a module or package the "
            "project depends on."
        )
    return None


def email_problem(email):
    if not EMAIL.match(email):
        return f"Author email {email!r} is not an email address."
    return None


def domain_problem(domain):
    labels = domain.lower().split(".")
    if (
        len(domain) > 253
        or len(labels) < 2
        or not all(HOST_LABEL.match(label) for label in labels)
    ):
        return f"Domain name {domain!r} is not a host name such as example.com."
    return None


def time_zone_problem(name):
    if name not in zoneinfo.available_timezones():
        return f"Time zone {name!r} is not an IANA time zone such as Europe/Paris."
    return None


def problems(context):
    """Every sentence that explains a bad answer, in prompt order."""
    found = [
        slug_problem(context["project_slug"], context),
        email_problem(context["author_email"]),
        domain_problem(context["domain_name"]),
        time_zone_problem(context["time_zone"]),
    ]
    return [problem for problem in found if problem]


def remove_template_copy(context):
    """Remove cookiecutter's copy of the template, which it keeps after a
    bake a hook stops: only a copy hooks/pre_prompt.py marked, never the
    template the user named."""
    copy = Path(context.get("_repo_dir", ""))
    if copy.is_absolute() and (copy / COPY_MARK).is_file():
        shutil.rmtree(copy)
        with contextlib.suppress(OSError):
            copy.parent.rmdir()  # cookiecutter's folder for it, now empty


def main(context):
    found = problems(context)
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    if found:
        remove_template_copy(context)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}""")))
