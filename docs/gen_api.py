"""Generate docs/api.md from jaxpool's docstrings and the command's --help.

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date (a test runs this)

The operator families are read from ``jaxpool.functional.__all__``, so operators added later
appear without editing this script.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "api.md"
sys.path.insert(0, str(ROOT))
os.environ["COLUMNS"] = "100"  # argparse wraps --help to the terminal width; make it fixed

import jaxpool  # noqa: E402
from jaxpool import cli, convert, functional, testing, windows  # noqa: E402
from jaxpool.testing import sweep  # noqa: E402


def markdown(doc: str | None) -> str:
    """A docstring as Markdown: reST roles to code spans, doctest lines to python blocks."""
    if not doc:
        return "*(no docstring)*\n"
    text = inspect.cleandoc(doc)
    text = re.sub(r":(?:func|class|mod|meth|attr|data):`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    text = re.sub(r"(\S)::$", r"\1:", text, flags=re.M)  # reST literal-block marker
    out, in_code, in_fields = [], False, False
    for line in text.splitlines():
        if not in_code and re.fullmatch(r"(Args|Attributes|Returns|Raises|Yields):", line):
            out += [f"**{line[:-1]}:**", ""]
            in_fields = True
            continue
        if in_fields:
            field = re.fullmatch(r"  (\w+(?:, \w+)*): (.*)", line)  # "name:" or "a, b, c:"
            if field:
                names = ", ".join(f"`{name}`" for name in field[1].split(", "))
                out.append(f"* {names}: {field[2]}")
                continue
            if line.startswith("    "):
                out.append("  " + line.strip())
                continue
            in_fields = False
        starts_code = line.lstrip().startswith(">>>")
        if starts_code and not in_code:
            out.append("```python")
            in_code = True
        elif in_code and not line.strip():
            out.append("```")
            in_code = False
        out.append(line.strip() if in_code else line)
    if in_code:
        out.append("```")
    return "\n".join(out).rstrip() + "\n"


def signature(name: str, obj) -> str:
    try:
        text = f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name
    return re.sub(r"(: |-> )'([^']*)'", r"\1\2", text)  # annotations are strings: unquote them


def declaration(text: str) -> str:
    """A signature or a value, fenced as text: only runnable examples are ``python`` blocks
    (tests/test_docs.py executes every one of them)."""
    return f"```text\n{text}\n```\n"


def entry(qualified: str, obj, level: str = "###") -> str:
    return f"{level} `{qualified}`\n\n{declaration(signature(qualified.rsplit('.', 1)[-1], obj))}\n{markdown(obj.__doc__)}"


def operators() -> str:
    families: dict[str, list[str]] = {}
    for name in functional.__all__:
        families.setdefault(re.sub(r"[123]d$", "", name), []).append(name)
    parts = ["## Operators\n",
             "Every operator is `jaxpool.<name>` and `jaxpool.functional.<name>`, with "
             "`torch.nn.functional`'s name, positional order and defaults, plus the keyword-only "
             "`channels_last`.\n"]
    for family, names in families.items():
        parts.append(f"### {', '.join(f'`{n}`' for n in names)}\n")
        parts.append(declaration("\n".join(signature(n, getattr(functional, n)) for n in names)))
        generic = getattr(jaxpool, family, None)
        doc = generic.__doc__ if callable(generic) else getattr(functional, names[0]).__doc__
        parts.append(markdown(doc))
        if "module docstring" in doc:  # the family's rules live in its module's docstring: show it
            module = sys.modules[generic.__module__]
            parts.append(f"**The module docstring (`{module.__name__}`):**\n\n{markdown(module.__doc__)}")
    return "\n".join(parts)


def module_section(module, names=None) -> str:
    names = names if names is not None else module.__all__
    parts = [f"## `{module.__name__}`\n", markdown(module.__doc__)]
    for name in names:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            parts.append(entry(f"{module.__name__}.{name}", obj))
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                target = member.fget if isinstance(member, property) else getattr(member, "func", member)
                if callable(target) and getattr(target, "__doc__", None):
                    parts.append(f"#### `{name}.{attr}`\n\n{markdown(target.__doc__)}")
        elif callable(obj):
            parts.append(entry(f"{module.__name__}.{name}", obj))
        else:
            parts.append(f"### `{module.__name__}.{name}`\n\n{declaration(f'{name} = {obj!r}')}")
    return "\n".join(parts)


def layers_section() -> str:
    """The layer modules: docstring, then one row per layer; full docstrings for Flax linen."""
    import importlib

    from jaxpool.layer_specs import LAYERS

    parts = ["## Layers (Flax linen, Flax NNX, Haiku, Equinox, Keras)\n",
             "Generated from one table, `jaxpool.layer_specs.LAYERS`, by `scripts/gen_layers.py`: "
             "every module below has the same classes with `torch.nn`'s names, constructor "
             "arguments and defaults; the argument lists are given once, under "
             "`jaxpool.flax.linen`.\n"]
    for name in ("jaxpool.flax.linen", "jaxpool.flax.nnx", "jaxpool.haiku", "jaxpool.equinox",
                 "jaxpool.keras"):
        module = importlib.import_module(name)
        classes = [n for n in module.__all__ if n in LAYERS]
        others = [n for n in module.__all__ if n not in classes]
        parts += [f"### `{name}`\n", markdown(module.__doc__)]
        parts.append("| layer | |\n|---|---|\n" + "\n".join(
            f"| `{n}` | {markdown(getattr(module, n).__doc__).splitlines()[0]} |" for n in classes) + "\n")
        for n in others:
            obj = getattr(module, n)
            if inspect.isclass(obj):  # a layer base class: its framework's signature says nothing
                parts.append(f"#### `{name}.{n}`\n\n{markdown(obj.__doc__)}")
            elif callable(obj):
                parts.append(entry(f"{name}.{n}", obj, "####"))
            else:
                parts.append(f"#### `{name}.{n}`\n\n{declaration(f'{n} = {obj!r}')}")
        if name == "jaxpool.flax.linen":
            parts += [f"#### `{name}.{n}`\n\n{markdown(getattr(module, n).__doc__)}" for n in classes]
    return "\n".join(parts)


def command_help() -> str:
    parser = cli._build_parser()
    parts = ["## The `jaxpool` command\n", markdown(cli.__doc__)]
    for argv in ([], ["parity"], ["explain"]):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
            parser.parse_args([*argv, "--help"])
        parts.append(f"### `{' '.join(['jaxpool', *argv, '--help'])}`\n\n```text\n{buffer.getvalue().rstrip()}\n```\n")
    parts.append("`jaxpool bench ...` passes every argument to the benchmark, `jaxpool._bench` "
                 "(`python3 benchmarks/bench.py` in a checkout; `jaxpool bench --help` prints its options); see "
                 "[performance.md](performance.md).\n")
    return "\n".join(parts)


def generate() -> str:
    parts = [
        "# API reference\n",
        "<!-- Generated by docs/gen_api.py from the docstrings: do not edit by hand; run "
        "`python docs/gen_api.py` after changing a docstring (tests/test_docs.py checks it). -->\n",
        markdown(jaxpool.__doc__),
        "Contents: [operators](#operators) · [jaxpool.windows](#jaxpoolwindows) · "
        "[jaxpool.testing](#jaxpooltesting) · [layers](#layers-flax-linen-flax-nnx-haiku-equinox-keras) · "
        "[jaxpool.convert](#jaxpoolconvert) · [jaxpool.testing.sweep](#jaxpooltestingsweep) · "
        "[the jaxpool command](#the-jaxpool-command). The rules behind the numbers are in "
        "[rules.md](rules.md).\n",
        operators(),
        module_section(windows),
        module_section(testing),
        layers_section(),
        module_section(convert),
        module_section(sweep, ["OPS", "FLOAT_DTYPES", "INT_DTYPES", "Case", "cases", "run_case"]),
        command_help(),
    ]
    return "\n".join(parts).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is out of date")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
