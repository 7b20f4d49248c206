""".ci/images.py takes the image a registry serves, and builds no stand-in.

Registries cannot be reached from this machine, so CI's own run shows only
the other path (pull fails, stand-in). Here a local registry (Debian's
docker-registry, the distribution project's server) serves an image under a
name of its own: the script pulls it, as it pulls python:3.13-slim where
Docker Hub answers.
"""

import shutil
import subprocess
import sys
import uuid

import pytest

from .bakery import ROOT, run
from .web import free_port, wait_until

pytestmark = pytest.mark.compose


def images_script(*images, check=True):
    script = ROOT / ".ci" / "images.py"
    return run(ROOT, sys.executable, script, *images, timeout=300, check=check)


def exists(image):
    return (
        subprocess.run(["docker", "image", "inspect", image], capture_output=True)
    ).returncode == 0


@pytest.fixture
def registry(tmp_path, docker_engine):
    server = shutil.which("docker-registry")
    if server is None:
        pytest.fail("docker-registry is not installed: run `bash .ci/docker` first")
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(
        [server, "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        wait_until(
            lambda: (
                subprocess.run(
                    ["curl", "-sf", f"http://127.0.0.1:{port}/v2/"], capture_output=True
                ).returncode
                == 0
            ),
            30,
            "the registry",
        )
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_image_a_registry_serves_is_pulled_not_built(registry):
    # Any small local image will do as the registry's content: the uv one.
    local = images_script("ghcr.io/astral-sh/uv:0.12.1")
    assert "ghcr.io/astral-sh/uv:0.12.1: " in local.stdout
    served = f"{registry}/offload-test/uv:{uuid.uuid4().hex[:8]}"
    run(ROOT, "docker", "tag", "ghcr.io/astral-sh/uv:0.12.1", served)
    run(ROOT, "docker", "push", served)
    run(ROOT, "docker", "image", "rm", served)
    assert not exists(served)

    result = images_script(served)
    try:
        assert f"{served}: pulled" in result.stdout, result.stdout
        assert exists(served)
    finally:
        run(ROOT, "docker", "image", "rm", served, check=False)


def test_an_image_no_registry_serves_and_no_recipe_knows_is_an_error(registry):
    missing = f"{registry}/offload-test/nothing-here:1"
    result = images_script(missing, check=False)
    assert result.returncode != 0
    assert f"{missing}: the pull failed and there is no stand-in for it" in (
        result.stderr
    )
