"""Do other JAX libraries' adaptive pools compute PyTorch's numbers?  A sweep against torch.

Every 1-d case ``input size x output size`` in ``1..--max-size`` (both ways: pooling and
upsampling) runs each peer's adaptive average and max pool on a random ``(2, 3, in)`` input and
compares it with ``torch.nn.functional.adaptive_{avg,max}_pool1d`` (the benchmark's
tolerance).  The table counts the cases whose output differs and those with NaN, and names the
first few.  The 2-d cases that models use (VGG's ``AdaptiveAvgPool2d((7, 7))``) follow.

Peers (the ``bench`` extra installs them): Keras 3's ``keras.ops.adaptive_average_pool``/
``adaptive_max_pool`` on the JAX backend, and Equinox's ``eqx.nn.AdaptiveAvgPool1d/2d`` and
``AdaptiveMaxPool1d/2d`` (unbatched modules, mapped over the batch with ``jax.vmap``; Equinox
documents that its windows are not PyTorch's).  Flax has no adaptive pool.  A peer that is not
installed is left out.  Run ``python3 benchmarks/peer_parity.py``; jaxpool's own parity is
``jaxpool parity``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script: import this checkout's jaxpool
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxpool._bench import cases as bench  # noqa: E402  (the benchmark's peers and tolerance)

# The 2-d (input, output) sizes of models ported from PyTorch.
MODEL_CASES = (((14, 14), (7, 7)), ((7, 7), (7, 7)), ((13, 13), (7, 7)), ((10, 9), (80, 60)))


def peer_ops() -> dict:
    """``{name: (fn(x, output_size) on NCHW input, {rank: torch fn})}`` of the peers here."""
    import torch.nn.functional as F

    avg_fns = {3: F.adaptive_avg_pool1d, 4: F.adaptive_avg_pool2d}
    max_fns = {3: F.adaptive_max_pool1d, 4: F.adaptive_max_pool2d}
    ops = {}
    if bench.keras_status() is None:
        import keras

        for name, torch_fns in (("adaptive_average_pool", avg_fns), ("adaptive_max_pool", max_fns)):
            ops[f"keras.ops.{name}"] = (functools.partial(getattr(keras.ops, name), data_format="channels_first"),
                                        torch_fns)
    try:
        import equinox as eqx
    except ImportError:
        return ops
    import jax

    def equinox(kind):
        def fn(x, output_size):
            layer = getattr(eqx.nn, f"Adaptive{kind}Pool{x.ndim - 2}d")(output_size)
            return jax.vmap(layer)(x)
        return fn

    ops["eqx.nn.AdaptiveAvgPool1d/2d"] = (equinox("Avg"), avg_fns)
    ops["eqx.nn.AdaptiveMaxPool1d/2d"] = (equinox("Max"), max_fns)
    return ops


def compare(peer_fn, torch_fn, x: np.ndarray, output_size) -> dict:
    """``bench.agreement`` of one call; a peer raising where torch computes differs too."""
    import jax
    import torch

    reference = torch_fn(torch.from_numpy(x), output_size).numpy()
    try:
        out = np.asarray(jax.jit(lambda x: peer_fn(x, output_size))(x))
    except Exception as e:  # a peer rejecting a size torch accepts differs from torch
        return {"peer_matches_torch": False, "peer_raised": True, "peer_differs": f"raised {type(e).__name__}"}
    return bench.agreement("peer", out, reference)


def sweep(max_size: int, seed: int = 0, ops: dict | None = None) -> list[dict]:
    """One row per op of ``ops`` (default: :func:`peer_ops`): the 1-d sweep's counts and the
    model cases' verdicts."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, (peer_fn, torch_fns) in (peer_ops() if ops is None else ops).items():
        wrong, nan, raised = [], 0, 0
        sizes = [(i, o) for i in range(1, max_size + 1) for o in range(1, max_size + 1)]
        for i, o in sizes:
            found = compare(peer_fn, torch_fns[3], rng.standard_normal((2, 3, i)).astype(np.float32), o)
            if not found["peer_matches_torch"]:
                wrong.append(f"{i}->{o}")
                nan += found.get("peer_nan_outputs", 0) > 0
                raised += found.get("peer_raised", False)
        models = {f"{i[0]}x{i[1]}->{o[0]}x{o[1]}": compare(
            peer_fn, torch_fns[4], rng.standard_normal((2, 3, *i)).astype(np.float32), o)["peer_matches_torch"]
            for i, o in MODEL_CASES}
        rows.append({"op": name, "cases": len(sizes), "wrong": len(wrong), "with_nan": nan, "raised": raised,
                     "first_wrong": wrong[:8], "models": models})
    return rows


def format_rows(rows) -> str:
    lines = []
    for r in rows:
        lines.append(f"{r['op']}: {r['wrong']} of {r['cases']} 1-d cases differ from torch "
                     f"({r['with_nan']} with NaN, {r['raised']} raised); first: "
                     f"{', '.join(r['first_wrong']) or 'none'}")
        lines.append("  model cases: " + ", ".join(f"{k} {'same' if ok else 'DIFFERS'}"
                                                  for k, ok in r["models"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="peer_parity", description=__doc__.split("\n\n")[0])
    p.add_argument("--max-size", type=int, default=40, help="largest 1-d input and output size")
    args = p.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    rows = sweep(args.max_size)
    if not rows:
        print(f"peer_parity: no peer to compare (Keras 3 {bench.keras_status()}; Equinox not "
              "installed): pip install -e '.[bench]'", file=sys.stderr)
        return 2
    print(format_rows(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
