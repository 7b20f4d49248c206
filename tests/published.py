"""The template as people get it: a git repository they clone or name by URL.

``publish(folder)`` makes, from this working tree as it is (uncommitted
changes included), a bare repository that stands for the template's home
(``url``) and a clone of it that stands for a user's checkout (``clone``).
A project baked from either records the home in its .cruft.json, and cruft
updates it from there; ``change()`` commits a new template version.
"""

import shutil
from pathlib import Path

from .bakery import ROOT, run

# Commits made by the tests name no one's identity and read no one's config.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Offload tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Offload tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd, *args):
    return run(cwd, "git", *args, env=GIT_ENV).stdout.rstrip()


def commit_all(cwd, message):
    git(cwd, "add", "--all")
    git(cwd, "commit", "--quiet", "--message", message)
    return git(cwd, "rev-parse", "HEAD")


class Published:
    def __init__(self, folder):
        folder = Path(folder)
        self.home = folder / "offload.git"  # the template's home: its URL
        self.url = self.home.as_uri()
        self.clone = folder / "offload"  # a user's checkout of it
        self._work = folder / "maintainer"  # where new versions are made
        self.commit = None

    def change(self, message, edit):
        """Commit a new template version: ``edit(folder)`` changes the files."""
        edit(self._work)
        self.commit = commit_all(self._work, message)
        git(self._work, "push", "--quiet", "origin", "main")
        return self.commit


def copy_working_tree(target):
    """Copy every file of this working tree that git tracks or would track
    (not .venv, caches, .git) to ``target``; return it."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the tree is gone
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def publish(folder):
    """This working tree, published: every file git tracks or would track."""
    published = Published(folder)
    copy_working_tree(published._work)
    git(published._work, "init", "--quiet", "--initial-branch", "main")
    published.commit = commit_all(published._work, "The template as tested")
    git(folder, "init", "--quiet", "--bare", "--initial-branch", "main", published.home)
    git(published._work, "remote", "add", "origin", str(published.home))
    git(published._work, "push", "--quiet", "origin", "main")
    git(folder, "clone", "--quiet", str(published.home), str(published.clone))
    return published
