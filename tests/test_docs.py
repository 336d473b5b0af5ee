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


PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md")])


def run_page(path: Path) -> int:
    """Run every python block of a Markdown page as a reader would, in order, in one namespace:
    a block of ``>>>`` lines as a doctest (its printed output must match), any other block as
    a script.  Returns the number of blocks run."""
    blocks = python_blocks(path.read_text())
    namespace: dict = {"__name__": f"docs:{path.name}"}
    for n, block in enumerate(blocks):
        where = f"{path.relative_to(ROOT)}, python block {n + 1}"
        if block.lstrip().startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(block, namespace, where, str(path), 0)
            runner = doctest.DocTestRunner(optionflags=FLAGS)
            runner.run(test, clear_globs=False)
            namespace.update(test.globs)  # DocTest ran on a copy of the namespace
            failed, attempted = runner.summarize(verbose=False)
            assert failed == 0, f"{failed} of {attempted} examples of {where} failed (see the output above)"
        else:
            exec(compile(block, where, "exec"), namespace)  # noqa: S102  (our own documentation)
    return len(blocks)


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "rules.md"], ids=lambda p: p.name)
def test_every_python_block_of_the_page_runs_as_written(page):
    """README.md and docs/*.md (rules.md below, with its torch comparisons): a block that does
    not run as written is a broken promise to the reader who copies it."""
    ran = run_page(page)
    assert ran == len(re.findall(r"^```python$", page.read_text(), flags=re.M))
    if page.name == "README.md":
        assert ran >= 6  # the README's examples are not silently gone


README_COMMANDS = [line.split("#")[0].strip() for block in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
                   for line in block.splitlines() if line.startswith("jaxpool ")]


@pytest.mark.parametrize("command", [c for c in README_COMMANDS if not c.startswith("jaxpool parity")])
def test_readme_jaxpool_commands_run_as_written(command, capsys):
    """The README's `jaxpool ...` lines (parity runs in CI as the README's first command)."""
    try:
        code = cli.main(shlex.split(command)[1:])
    except SystemExit as e:  # --version exits through argparse
        code = e.code
    assert code == 0, capsys.readouterr()
    assert capsys.readouterr().out.strip()


def test_readme_names_its_commands():
    assert any(c.startswith("jaxpool explain fractional") for c in README_COMMANDS)
    assert any(c.startswith("jaxpool parity") for c in README_COMMANDS)


def test_only_runnable_code_is_fenced_as_python():
    """Signatures and values are fenced as text, so 'every python block runs' means all of them."""
    for page in PAGES:
        fences = re.findall(r"^```(\S*)$", page.read_text(), flags=re.M)
        assert set(fences) <= {"python", "bash", "text", ""}, (page.name, set(fences))


def test_rules_page_examples_run_against_jaxpool_and_torch():
    """All python blocks, in order, in one namespace, as doctests; none may be skipped."""
    blocks = python_blocks(RULES)
    assert all(block.lstrip().startswith(">>>") for block in blocks)  # so each is checked as a doctest
    examples = len(doctest.DocTestParser().get_examples("\n".join(blocks)))
    assert run_page(DOCS / "rules.md") == len(blocks)
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
