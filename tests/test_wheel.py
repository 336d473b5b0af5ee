"""The wheel as users get it: built from the sources, installed outside the checkout, imported.

The default run builds the wheel with this environment's setuptools (``pip wheel --no-deps
--no-build-isolation``: seconds, no network) from a copy of the files the build reads, installs
it with ``pip install --no-deps --target`` into a temporary folder and, from a folder outside
the repository with only that folder on ``PYTHONPATH``, imports every public module (found from
the package's files, so a new module is picked up), runs ``python -m jaxpool explain`` and the
installed ``jaxpool bench --help``.  The dependencies come from this environment there;
``JAXPOOL_FULL=1`` also installs the wheel with its extras into a fresh virtual environment.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

FULL = os.environ.get("JAXPOOL_FULL") == "1"

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxpool"
# What setuptools reads to build the wheel: the metadata, the readme, the license, the package.
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "jaxpool")
# Modules that must exist: a guard against a file walk that finds nothing.
KNOWN_MODULES = ("jaxpool", "jaxpool.functional", "jaxpool.windows", "jaxpool.flax.linen", "jaxpool.flax.nnx",
                 "jaxpool.haiku", "jaxpool.testing", "jaxpool.testing.sweep")
EXPLAIN = ["explain", "adaptive_avg_pool1d", "--input-size", "5", "--output-size", "3"]
EXPLAINED = "windows: [0,2) [1,4) [3,5)"


def package_files() -> set[str]:
    """Every file of the source package, as a path inside the wheel (``jaxpool/...``)."""
    return {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def public_modules() -> list[str]:
    """Every module of the package whose dotted name has no part starting with ``_``."""
    names = []
    for path in sorted(f for f in package_files() if f.endswith(".py")):
        parts = path[:-len(".py")].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return names


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def pip(*args: str, cwd: Path) -> str:
    """Run pip verbosely (build backend output included); returns everything it printed."""
    proc = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return output


def assert_no_deprecation(output: str, what: str) -> None:
    found = [line.strip() for line in output.splitlines() if "deprecat" in line.lower()]
    assert not found, f"{what} warns of a deprecation:\n" + "\n".join(found)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the build inputs (an in-tree build would leave build/ and
    *.egg-info in the checkout, under the feet of parallel test workers)."""
    tmp = tmp_path_factory.mktemp("wheel")
    for name in BUILD_INPUTS:
        source, copy = ROOT / name, tmp / "src" / name
        if source.is_dir():
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
    output = pip("wheel", "-v", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"),
                 str(tmp / "src"), cwd=tmp)
    assert_no_deprecation(output, "the wheel build")
    (built,) = (tmp / "dist").glob("jaxpool-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The folder the wheel is installed into (``--target``: no dependencies, nothing else)."""
    target = tmp_path_factory.mktemp("site")
    output = pip("install", "-v", "--no-deps", "--no-index", "--target", str(target), str(wheel), cwd=target)
    assert_no_deprecation(output, "the wheel install")
    return target


def run_installed(target: Path, argv: list[str], cwd: Path, extra_path: Path | None = None):
    """``argv`` with only ``target`` (then ``extra_path``) on PYTHONPATH, from ``cwd`` (outside
    the repository)."""
    path = os.pathsep.join(str(p) for p in (target, extra_path) if p)
    env = {**os.environ, "PYTHONPATH": path, "JAX_PLATFORMS": "cpu", "KERAS_BACKEND": "jax"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_public_modules_are_found_from_the_package_files():
    found = public_modules()
    assert set(KNOWN_MODULES) <= set(found), set(KNOWN_MODULES) - set(found)
    assert not any(part.startswith("_") for name in found for part in name.split("."))


def test_the_wheel_holds_the_package_its_license_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"jaxpool-{version()}.dist-info"
        metadata = z.read(f"{info}/METADATA").decode()
        license_text = z.read(f"{info}/licenses/LICENSE").decode()
    assert wheel.name == f"jaxpool-{version()}-py3-none-any.whl"
    # every file of the package (py.typed and other data included), and nothing from outside it
    assert package_files() <= names, package_files() - names
    assert {n for n in names if not n.startswith(f"{info}/")} == package_files()
    assert license_text == (ROOT / "LICENSE").read_text()
    headers = metadata.split("\n\n", 1)[0].splitlines()
    assert "License-Expression: Apache-2.0" in headers and "License-File: LICENSE" in headers
    assert not any(h.startswith("Classifier: License ::") for h in headers)  # the expression says it
    assert f"Version: {version()}" in headers
    assert any(h.startswith("Classifier: ") for h in headers)
    with zipfile.ZipFile(wheel) as z:
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    assert re.search(r"^jaxpool = jaxpool\.cli:main$", entry_points, re.M)


def test_the_installed_wheel_imports_every_public_module_without_torch(installed, tmp_path):
    modules = public_modules()
    script = (
        "import importlib, sys\n"
        "import jaxpool\n"
        "assert 'torch' not in sys.modules, 'import jaxpool imported torch'\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(installed)!r}), (name, module.__file__)\n"
        "print(jaxpool.__version__)\n"
    )
    proc = run_installed(installed, [sys.executable, "-c", script], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [version()]  # the version read from the installed metadata


def test_the_installed_commands_run(installed, tmp_path):
    proc = run_installed(installed, [sys.executable, "-m", "jaxpool", *EXPLAIN], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert EXPLAINED in proc.stdout
    # the console script pip wrote, and the benchmark shipped in the package, never another
    # distribution's benchmarks/bench.py beside it in site-packages (which would leave a marker)
    marker = tmp_path / "foreign_code_ran"
    foreign = tmp_path / "foreign"
    (foreign / "benchmarks").mkdir(parents=True)
    (foreign / "benchmarks" / "__init__.py").write_text("")
    (foreign / "benchmarks" / "bench.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef main(argv=None, prog=None):\n    return 0\n")
    proc = run_installed(installed, [str(installed / "bin" / "jaxpool"), "bench", "--help"], tmp_path,
                         extra_path=foreign)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: jaxpool bench") and "--warm-allocator" in proc.stdout
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="a fresh environment downloads every dependency: JAXPOOL_FULL=1")
def test_the_wheel_with_its_extras_works_in_a_fresh_virtual_environment(wheel, tmp_path):
    """The wheel and its framework extras (not ``test``/``bench``: torch) in a new virtual
    environment: every public module imports, ``jaxpool explain`` and ``jaxpool bench --help`` run."""
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(f"jaxpool-{version()}.dist-info/METADATA").decode()
    extras = [e for e in re.findall(r"^Provides-Extra: (\S+)$", metadata, re.M) if e not in ("test", "bench")]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "-v", f"{wheel}[{','.join(extras)}]"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr
    assert_no_deprecation(proc.stdout + proc.stderr, "the install into a fresh environment")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(JAX_PLATFORMS="cpu", KERAS_BACKEND="jax")
    script = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in public_modules())
    for argv in ([str(python), "-c", script], [str(venv / "bin" / "jaxpool"), *EXPLAIN],
                 [str(venv / "bin" / "jaxpool"), "bench", "--help"]):
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (argv, proc.stderr)
    assert "usage: jaxpool bench" in proc.stdout
