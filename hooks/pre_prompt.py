"""Make cookiecutter hand the other hooks an absolute template path.

cookiecutter tells the hooks where the template is (``_repo_dir``) as the
user typed it: ``.`` for ``cookiecutter .``, ``../offload`` for a relative
path. The hooks run in the new project's folder, where such a path names
something else. A template that has a pre_prompt hook is first copied by
cookiecutter (2.4 and later) to a folder of its own, and the copy's absolute
path is what the other hooks are given, however the template was named: this
hook exists for that. The post-generation hook reads the template's git
origin and commit from that copy (``.cruft.json``).

It runs in the copy, before the first question, unrendered. It marks the
copy as one (COPY_MARK): cookiecutter removes its copy after a bake that
succeeds, not after one a hook stops, so the other hooks remove a marked
copy when they stop a bake. The template the user named has no mark.
"""

import sys
from pathlib import Path

COPY_MARK = ".offload-template-copy"

if __name__ == "__main__":
    (Path.cwd() / COPY_MARK).touch()
    sys.exit(0)
