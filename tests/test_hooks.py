"""The hooks, imported as modules and run through cookiecutter itself."""

import importlib.util
import json
import re
import tempfile

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from .bakery import CASES, ROOT
from .published import commit_all, git


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load("pre_gen_project")
post_gen = load("post_gen_project")
DEFAULTS = json.loads((ROOT / "cookiecutter.json").read_text())
# As cookiecutter passes it: the answers, the private tables, the checkout.
GOOD = {
    **DEFAULTS,
    "task_backend": DEFAULTS["task_backend"][0],
    "project_slug": "observatory_notes",
    "author_email": "ada@example.com",
    "domain_name": "example.com",
    "time_zone": "UTC",
}


def test_good_answers_have_no_problems():
    assert pre_gen.problems(GOOD) == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("project_slug", "My Project", "is not a lowercase Python identifier"),
        ("project_slug", "2fast", "is not a lowercase Python identifier"),
        ("project_slug", "class", "is not a lowercase Python identifier"),
        ("project_slug", "test", "is the name of a module or package"),
        ("project_slug", "email", "is the name of a module or package"),
        ("project_slug", "config", "is the name of a module or package"),
        ("project_slug", "dotenv", "is the name of a module or package"),
        ("author_email", "ada.example.com", "is not an email address"),
        ("author_email", "ada@localhost", "is not an email address"),
        ("domain_name", "localhost", "is not a host name"),
        ("domain_name", "exa mple.com", "is not a host name"),
        ("domain_name", "-bad.example.com", "is not a host name"),
        ("time_zone", "Mars/Olympus", "is not an IANA time zone"),
    ],
)
def test_each_bad_answer_gets_one_sentence(field, value, expected):
    problems = pre_gen.problems({**GOOD, field: value})
    assert len(problems) == 1
    assert expected in problems[0]
    assert repr(value) in problems[0]


@pytest.fixture
def temporary(tmp_path, monkeypatch):
    """A temporary folder of the test's own, for cookiecutter and its hooks."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    return folder


def template_copies(folder):
    """cookiecutter's copies of the template left in ``folder``."""
    return [path for path in folder.iterdir() if path.is_dir()]


@pytest.mark.parametrize(
    "answers",
    [
        {"project_name": "Django"},
        {"project_slug": "Bad Slug"},
        {"author_email": "not-an-email"},
        {"domain_name": "nodots"},
    ],
)
def test_bad_answers_stop_generation_and_leave_nothing(
    tmp_path, temporary, capfd, answers
):
    output = tmp_path / "out"
    with pytest.raises(FailedHookException):
        cookiecutter(
            str(ROOT), no_input=True, extra_context=answers, output_dir=str(output)
        )
    assert list(output.iterdir()) == []
    assert template_copies(temporary) == []
    assert "ERROR: " in capfd.readouterr().err


@pytest.mark.parametrize("backend", DEFAULTS["task_backend"])
def test_a_slug_equal_to_any_locked_package_is_refused(backend, tmp_path):
    """Every package of the backend's uv.lock, dependencies of dependencies
    included: uv cannot lock a project named like one of them. The lock is
    read after rendering, from the project (the post-generation hook)."""
    context = {**GOOD, "task_backend": backend}
    lock = (ROOT / "templates" / "backends" / backend / "uv.lock").read_text()
    (tmp_path / "uv.lock").write_text(lock)
    names = re.findall(r'^name = "([a-z0-9-]+)"$', lock, re.M)
    assert len(names) > 20
    for name in names:
        slug = name.replace("-", "_")
        assert post_gen.dependency_problem(slug, tmp_path), slug
    assert post_gen.dependency_problem("observatory_notes", tmp_path) is None
    for module in DEFAULTS["_backends"][backend]["modules"]:
        assert pre_gen.slug_problem(module, context), module


def test_a_project_named_like_a_dependency_is_removed_with_one_sentence(
    tmp_path, temporary, capfd
):
    output = tmp_path / "out"
    with pytest.raises(FailedHookException):
        cookiecutter(
            str(ROOT),
            no_input=True,
            extra_context={"project_slug": "sqlparse"},
            output_dir=str(output),
        )
    assert list(output.iterdir()) == []
    assert template_copies(temporary) == []
    errors = [line for line in capfd.readouterr().err.splitlines() if "ERROR" in line]
    assert errors == [
        "ERROR: Project slug 'sqlparse' is the name of a module or package "
        "the project depends on."
    ]


def test_optional_paths_name_real_template_files():
    template = ROOT / "{{cookiecutter.project_slug}}"
    for paths in post_gen.OPTIONAL_PATHS.values():
        for path in paths:
            assert (template / path).exists(), path


def test_options_in_the_table_are_booleans_in_cookiecutter_json():
    for option in post_gen.OPTIONAL_PATHS:
        assert DEFAULTS[option] is True


def test_remove_unselected_deletes_only_what_is_off(tmp_path):
    for name in ("Dockerfile", ".dockerignore", "compose.yaml"):
        (tmp_path / name).write_text("x")
    for unit in ("supervisord", "systemd"):
        (tmp_path / "deploy" / unit).mkdir(parents=True)
        (tmp_path / "deploy" / unit / "unit").write_text("x")
    context = {"use_docker": False, "use_supervisord": True, "use_systemd": False}

    post_gen.remove_unselected(context, tmp_path)

    assert not (tmp_path / "Dockerfile").exists()
    assert not (tmp_path / "compose.yaml").exists()
    assert (tmp_path / "deploy" / "supervisord" / "unit").exists()
    assert not (tmp_path / "deploy" / "systemd").exists()


def test_empty_deploy_folder_is_removed(tmp_path):
    (tmp_path / "deploy" / "systemd").mkdir(parents=True)
    (tmp_path / "deploy" / "supervisord").mkdir()
    context = {"use_docker": True, "use_supervisord": False, "use_systemd": False}
    post_gen.remove_unselected(context, tmp_path)
    assert not (tmp_path / "deploy").exists()


def test_env_gets_a_fresh_long_secret_key_each_time(tmp_path):
    keys = []
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        (root / ".env.example").write_text("DEBUG=true\nSECRET_KEY=\nEMAIL_HOST=\n")
        post_gen.write_env(root)
        assert (root / ".env").read_text().startswith("DEBUG=true\nSECRET_KEY=")
        env = (root / ".env").read_text()
        keys.append(
            next(line for line in env.splitlines() if line.startswith("SECRET_KEY="))
        )
        assert (root / ".env").stat().st_mode & 0o777 == 0o600
    assert keys[0] != keys[1]
    assert all(len(key) > len("SECRET_KEY=") + 50 for key in keys)


def test_env_gets_random_passwords_for_composes_servers(tmp_path):
    example = "SECRET_KEY=\nRABBITMQ_URL=amqp://guest:guest@localhost:5672/%2F\n"
    (tmp_path / ".env.example").write_text(
        example + "BROKER_PASSWORD=\nSTORAGE_PASSWORD=\n"
    )
    post_gen.write_env(tmp_path)
    env = dict(
        line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
    )
    passwords = [env["BROKER_PASSWORD"], env["STORAGE_PASSWORD"]]
    assert all(len(password) >= 32 for password in passwords)
    assert len({*passwords, env["SECRET_KEY"]}) == 3
    # The development URL (a local server's guest) is kept as it is.
    assert env["RABBITMQ_URL"] == "amqp://guest:guest@localhost:5672/%2F"


def checkout(folder, remote=None):
    """A git checkout with one commit, and an origin remote if given."""
    folder.mkdir()
    git(folder, "init", "--quiet")
    (folder / "cookiecutter.json").write_text("{}")
    commit = commit_all(folder, "template")
    if remote:
        git(folder, "remote", "add", "origin", remote)
    return commit


def test_the_origin_is_the_checkouts_remote_and_commit(tmp_path):
    url = "https://git.example.com/org/offload.git"
    commit = checkout(tmp_path / "copy", remote=url)
    context = {**GOOD, "_repo_dir": str(tmp_path / "copy")}
    assert post_gen.template_origin(context) == (url, commit)


@pytest.mark.parametrize("remote", [None, "https://git.example.com/offload.git"])
def test_no_origin_without_a_remote_or_an_absolute_template_folder(
    tmp_path, monkeypatch, remote
):
    checkout(tmp_path / "copy", remote=remote)
    monkeypatch.chdir(tmp_path)
    # Without a remote there is no address to record; and a relative path
    # (cookiecutter before 2.4, which made no copy) is the caller's, not ours.
    where = str(tmp_path / "copy") if remote is None else "copy"
    assert post_gen.template_origin({**GOOD, "_repo_dir": where}) is None
    assert post_gen.template_origin(GOOD) is None


@pytest.mark.parametrize(
    ("remote", "recorded"),
    [
        (
            "https://x-access-token:ghp_secret@github.com/org/offload.git",
            "https://github.com/org/offload.git",
        ),
        ("https://ghp_secret@github.com/org/offload", "https://github.com/org/offload"),
        (
            "ssh://git:secret@host.example/offload.git",
            "ssh://git@host.example/offload.git",
        ),
        ("ssh://git@host.example/offload.git", "ssh://git@host.example/offload.git"),
        ("git@github.com:org/offload.git", "git@github.com:org/offload.git"),
        ("https://github.com/org/offload.git", "https://github.com/org/offload.git"),
        ("/srv/git/offload.git", "/srv/git/offload.git"),
    ],
)
def test_no_credential_of_the_remote_is_recorded(tmp_path, remote, recorded):
    commit = checkout(tmp_path / "copy", remote=remote)
    context = {**GOOD, "_repo_dir": str(tmp_path / "copy")}
    assert post_gen.template_origin(context) == (recorded, commit)


def test_cruft_json_holds_the_origin_and_only_the_answers(tmp_path):
    context = {
        **GOOD,
        "_output_dir": str(tmp_path),
        "_repo_dir": str(tmp_path / "cookiecutter-copy" / "offload"),
        "_checkout": None,
    }
    url, commit = "https://git.example.com/org/offload.git", "a" * 40
    post_gen.record_origin(context, tmp_path, (url, commit))
    state = json.loads((tmp_path / ".cruft.json").read_text())
    assert state["template"] == url
    assert state["commit"] == commit
    assert state["checkout"] is None
    assert state["directory"] is None
    answers = state["context"]["cookiecutter"]
    assert answers["project_slug"] == "observatory_notes"
    assert answers["task_backend"] == GOOD["task_backend"]
    # cruft's own keys, and no table or path of the machine that baked it.
    assert {key for key in answers if key.startswith("_")} == {"_template", "_commit"}
    assert (answers["_template"], answers["_commit"]) == (url, commit)
    assert str(tmp_path) not in json.dumps(state)
    assert "cookiecutter-copy" not in json.dumps(state)  # the copy


def test_existing_env_is_kept(tmp_path):
    (tmp_path / ".env").write_text("SECRET_KEY=mine\n")
    post_gen.write_env(tmp_path)
    assert (tmp_path / ".env").read_text() == "SECRET_KEY=mine\n"


@pytest.mark.parametrize("case", [DEFAULTS["task_backend"][0], "rq", "no_deploy"])
def test_next_steps_are_the_readmes_commands_in_its_order(case, baked):
    """What the bake prints to do next is what the README's "Run it" says,
    compose's commands only with Docker; a broker's backend is told to
    start it."""
    printed = post_gen.next_steps({**GOOD, **CASES[case]}).splitlines()
    commands = [
        line.split("  #")[0].strip()
        for line in printed[2:-1]
        if not line.strip().startswith("#")
    ]
    readme = (baked(case) / "README.md").read_text()
    run_it = readme.split("\n## Run it\n")[1].split("\n## ")[0]
    given = iter(re.findall(r"^\$ (.+)$", run_it, re.M))
    assert all(command in given for command in commands), (commands, run_it)
    assert ("docker compose up --build --wait" in commands) == (case != "no_deploy")
    assert any(line.startswith("  # start Redis") for line in printed) == (case == "rq")


def test_an_optional_backend_file_left_empty_is_removed_with_its_folder(tmp_path):
    context = {"project_slug": "notes"}
    optional = [path.format(slug="notes") for path in post_gen.BACKEND_OPTIONAL]
    assert "deploy/systemd/notes-scheduler.service" in optional
    init = tmp_path / "core" / "management" / "commands" / "__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text("")
    for relative in optional:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("\n")
    post_gen.remove_unfilled(context, tmp_path)
    assert not any((tmp_path / relative).exists() for relative in optional)
    # No command left: the management package goes too.
    assert not (tmp_path / "core" / "management").exists()

    init.parent.mkdir(parents=True)
    init.write_text("")
    for relative in optional:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text('"""Filled by the backend."""\n')
    (tmp_path / optional[0]).write_text("")  # the worker's command left empty
    post_gen.remove_unfilled(context, tmp_path)
    assert [r for r in optional if (tmp_path / r).exists()] == optional[1:]
    assert init.exists()


def test_an_optional_file_of_an_option_answered_no_is_not_looked_for(tmp_path):
    post_gen.remove_unfilled({"project_slug": "notes"}, tmp_path)  # no error
    assert list(tmp_path.iterdir()) == []
