"""docs/: every example of the rules page runs (jaxpool and torch), and api.md is up to date."""

import doctest
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch  # noqa: F401  (the rules page compares against torch)

from jaxpool import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RULES = (DOCS / "rules.md").read_text()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_rules_page_examples_run_against_jaxpool_and_torch():
    """All python blocks, in order, in one namespace, as doctests; none may be skipped."""
    blocks = python_blocks(RULES)
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, "docs/rules.md", str(DOCS / "rules.md"), 0)
    examples = len(test.examples)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} examples of docs/rules.md failed (see the output above)"
    assert len(blocks) >= 15 and examples >= 50  # the page is not silently empty


def test_rules_page_examples_compare_with_torch():
    """Value examples go through both(), which asserts jaxpool == torch before returning."""
    assert len(re.findall(r'>>> .*both\("', RULES)) >= 20


@pytest.mark.parametrize("block", re.findall(r"```text\n\$ (jaxpool .*?)```", RULES, flags=re.S))
def test_rules_page_command_output_is_current(block, capsys):
    command, *expected = block.rstrip("\n").split("\n")
    assert cli.main(shlex.split(command)[1:]) == 0
    out = capsys.readouterr().out.splitlines()
    shown = [line for line in expected if line.strip() != "..."]
    assert shown and all(line in out for line in shown), (shown, out)


def test_api_page_is_generated_from_the_current_docstrings():
    proc = subprocess.run([sys.executable, str(DOCS / "gen_api.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_links_the_docs():
    readme = (ROOT / "README.md").read_text()
    for page in ("docs/rules.md", "docs/api.md", "docs/performance.md"):
        assert f"({page})" in readme, page
