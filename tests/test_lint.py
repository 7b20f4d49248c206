"""The template's own code passes the linters it gives the projects (STYLE 6).

The template folders hold Jinja, not Python: they are linted once rendered,
in every baked case (test_bake.py).
"""

import pytest

from .bakery import BIN, ROOT, run

OWN_CODE = ["hooks", "tests", "benchmarks", ".ci/lock"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_template_code_passes_ruff(command):
    run(ROOT, BIN / "ruff", *command, *OWN_CODE)
