"""Baking however cookiecutter is pointed at the template, from anywhere.

Every way people bake runs from a working directory other than the
template's (but ``cookiecutter .``, whose point is to stand in the
checkout), with the same answers; the projects must be the same files, byte
for byte, apart from the secrets in ``.env`` and the recorded source in
``.cruft.json``. A bad answer is one sentence however the template is named.
"""

import json
import re
import sys
from pathlib import Path

import pytest

from .bakery import TEMPLATE, UV, json_strings, run
from .published import publish

ANSWERS = {
    "project_name": "Sky Notes",
    "task_backend": "rq",
    "time_zone": "Europe/Paris",
}
ARGUMENTS = [f"{key}={value}" for key, value in ANSWERS.items()]
COOKIECUTTER = str(Path(sys.executable).with_name("cookiecutter"))
CRUFT = str(Path(sys.executable).with_name("cruft"))


@pytest.fixture(scope="module")
def ways(tmp_path_factory):
    """Bake the same answers every way; {way: project folder}."""
    top = tmp_path_factory.mktemp("anywhere")
    template = publish(top / "published")
    elsewhere = top / "elsewhere"
    elsewhere.mkdir()
    out = top / "out"
    # cookiecutter's clones, replay files and user config stay in the test.
    config = top / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {top / 'cache'}\nreplay_dir: {top / 'replay'}\n"
    )
    env = {"COOKIECUTTER_CONFIG": str(config)}

    def bake(way, cwd, *command):
        run(cwd, *command, env=env)
        return out / way / "sky_notes"

    projects = {
        "dot": bake(
            "dot",
            template.clone,
            *(COOKIECUTTER, "--no-input", "-o", out / "dot", "."),
            *ARGUMENTS,
        ),
        "relative": bake(
            "relative",
            elsewhere,
            *(
                COOKIECUTTER,
                "--no-input",
                "-o",
                "../out/relative",
                "../published/offload",
            ),
            *ARGUMENTS,
        ),
        "absolute": bake(
            "absolute",
            elsewhere,
            *(COOKIECUTTER, "--no-input", "-o", out / "absolute", template.clone),
            *ARGUMENTS,
        ),
        # What `cookiecutter gh:…` does: clone the URL into cookiecutter's cache.
        "git_url": bake(
            "git_url",
            elsewhere,
            *(COOKIECUTTER, "--no-input", "-o", out / "git_url", template.url),
            *ARGUMENTS,
        ),
        # The newest cookiecutter from PyPI, as a newcomer runs it.
        "uvx": bake(
            "uvx",
            elsewhere,
            *(UV, "tool", "run", "cookiecutter", "--no-input"),
            *("-o", out / "uvx", template.clone),
            *ARGUMENTS,
        ),
        "cruft_create": bake(
            "cruft_create",
            elsewhere,
            *(CRUFT, "create", "--no-input", "--config-file", config),
            *("--extra-context", json.dumps(ANSWERS)),
            *("--output-dir", out / "cruft_create", template.url),
        ),
    }
    # The answers of the first bake, replayed (cookiecutter names the file
    # after the template's folder).
    replay = top / "replay" / "offload.json"
    assert replay.exists()
    projects["replay"] = bake(
        "replay",
        elsewhere,
        *(COOKIECUTTER, "--replay-file", replay, "-o", out / "replay", template.clone),
    )
    return template, projects, top


def files(project):
    return sorted(
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file()
    )


def content(path):
    """What must not differ between two bakes: the bytes and the mode."""
    return path.read_bytes(), path.stat().st_mode


WAYS = ["relative", "absolute", "git_url", "uvx", "cruft_create", "replay"]


@pytest.mark.parametrize("way", WAYS)
def test_every_way_bakes_the_same_files_as_cookiecutter_dot(ways, way):
    _, projects, _ = ways
    reference, project = projects["dot"], projects[way]
    assert files(project) == files(reference)
    differ = [
        name
        for name in files(project)
        if name not in {".env", ".cruft.json"}
        and content(project / name) != content(reference / name)
    ]
    assert differ == []


@pytest.mark.parametrize("way", ["dot", *WAYS])
def test_env_differs_only_by_its_fresh_secrets(ways, way):
    """The secret key, and the passwords of compose's servers."""
    _, projects, _ = ways
    secret = re.compile(
        r"^(SECRET_KEY|STORAGE_PASSWORD|BROKER_PASSWORD)=(\S{32,})$", re.M
    )
    env = (projects[way] / ".env").read_text()
    reference = (projects["dot"] / ".env").read_text()
    assert secret.sub(r"\1=", env) == secret.sub(r"\1=", reference)
    assert "SECRET_KEY" in dict(m.groups() for m in secret.finditer(env))
    if way != "dot":
        ours = dict(m.groups() for m in secret.finditer(env))
        theirs = dict(m.groups() for m in secret.finditer(reference))
        assert ours.keys() == theirs.keys()
        assert all(ours[name] != theirs[name] for name in ours)


@pytest.mark.parametrize("way", ["dot", *WAYS])
def test_the_source_and_answers_are_recorded_and_no_path_of_the_bake(ways, way):
    template, projects, _ = ways
    state = json.loads((projects[way] / ".cruft.json").read_text())
    # The template's home, however it was named: its path, or its URL where
    # cookiecutter cloned that URL.
    assert state["template"] in {str(template.home), template.url}
    assert state["commit"] == template.commit
    answers = state["context"]["cookiecutter"]
    assert {key: answers[key] for key in ANSWERS} == ANSWERS
    assert answers["project_slug"] == "sky_notes"
    # No other path: not the checkout, cookiecutter's cache, the output
    # folder, the working directory, nor the copy the hooks ran from. (cruft
    # create also records the template's tables, cookiecutter.json's data.)
    tables = {key for key in answers if key[0] == "_"} - {"_template", "_commit"}
    for key in tables:
        assert answers[key] == TEMPLATE[key]
        del answers[key]
    found = {value for value in json_strings(state) if value.startswith(("/", "file:"))}
    assert found == {state["template"]}


@pytest.mark.parametrize(
    ("answer", "sentence"),
    [
        (
            "project_slug=Bad Slug",
            "Project slug 'Bad Slug' is not a lowercase Python identifier "
            "(letters, digits and underscores, not starting with a digit).",
        ),
        (
            "project_slug=django",
            "Project slug 'django' is the name of a module or package the "
            "project depends on.",
        ),
    ],
)
def test_a_bad_answer_from_the_checkout_is_one_sentence_and_leaves_nothing(
    ways, answer, sentence
):
    template, _, top = ways
    out = top / "refused"
    result = run(
        template.clone,
        *(COOKIECUTTER, "--no-input", "-o", out, ".", answer),
        check=False,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert errors == [f"ERROR: {sentence}"]
    assert not out.exists() or list(out.iterdir()) == []
