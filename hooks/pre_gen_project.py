"""Validate the answers before cookiecutter writes anything.

Each check returns one clear sentence, or None. Run by cookiecutter, the
module exits 1 with that sentence on stderr, and cookiecutter then removes the
half-made output directory. Tests import it and call ``problems()`` directly.
"""

import json
import keyword
import re
import sys
import zoneinfo

# Modules the generated project imports or ships: a project package with one
# of these names would shadow it on sys.path.
SHADOWED = {
    "config",
    "django",
    "django_tasks_db",
    "gunicorn",
    "notifications",
    "photos",
    "PIL",
    "psycopg",
    "pytest",
    "test",
    "tests",
} | set(sys.stdlib_module_names)

SLUG = re.compile(r"^[a-z_][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def slug_problem(slug):
    if not SLUG.match(slug) or keyword.iskeyword(slug):
        return (
            f"Project slug {slug!r} is not a lowercase Python identifier "
            "(letters, digits and underscores, not starting with a digit)."
        )
    if slug in SHADOWED:
        return f"Project slug {slug!r} would shadow the Python module of that name."
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
        slug_problem(context["project_slug"]),
        email_problem(context["author_email"]),
        domain_problem(context["domain_name"]),
        time_zone_problem(context["time_zone"]),
    ]
    return [problem for problem in found if problem]


def main(context):
    found = problems(context)
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}""")))
