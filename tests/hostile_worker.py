"""Child process of tests/test_hostile_args.py: one operator family, each of its size arguments
set in turn to each hostile value, jaxpool beside torch on the same input.

    python tests/hostile_worker.py FAMILY MEMORY_BYTES [all|rotate]

``all`` runs every case in 1-d, 2-d and 3-d; ``rotate`` (the default run's) runs each
(argument, value) pair once, the dimensionality turning from pair to pair, so every operator
and every hostile value is still met.

Runs under an address-space cap (so a blow-up is a MemoryError here, not a dead machine) and
prints one JSON object per case: the jaxpool and torch outcomes and, where both computed,
whether they agree.  The parent classifies and asserts; this file only observes.
"""

from __future__ import annotations

import json
import resource
import sys
import time

FAMILY, MEMORY = sys.argv[1], int(sys.argv[2])
ALL_DIMS = sys.argv[3:4] != ["rotate"]
resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import jaxpool  # noqa: E402

torch.set_num_threads(1)

# Each hostile value by the name the report uses.
VALUES = {
    "0": 0, "-1": -1, "2**31": 2**31, "2**40": 2**40, "2**63": 2**63, "10**400": 10**400,
    "2.5": 2.5, "True": True, "np.int64(3)": np.int64(3), "None": None,
}

# family: (arguments of a valid call, the arguments to make hostile one at a time)
FAMILIES = {
    "max_pool": (dict(kernel_size=2, stride=1, padding=1, dilation=1, return_indices=True),
                 ("kernel_size", "stride", "padding", "dilation")),
    "avg_pool": (dict(kernel_size=2, stride=1, padding=1), ("kernel_size", "stride", "padding")),
    "lp_pool": (dict(norm_type=2.0, kernel_size=2, stride=1), ("norm_type", "kernel_size", "stride")),
    "max_unpool": (dict(kernel_size=2, stride=2, padding=0), ("kernel_size", "stride", "padding", "output_size")),
    "adaptive_avg_pool": (dict(output_size=3), ("output_size",)),
    "adaptive_max_pool": (dict(output_size=3, return_indices=True), ("output_size",)),
    "fractional_max_pool": (dict(kernel_size=2, output_size=3), ("kernel_size", "output_size", "output_ratio")),
    "stochastic_pool": (dict(kernel_size=2, stride=1, padding=1, training=False), ("kernel_size", "stride", "padding")),
}
SHAPES = {1: (2, 3, 7), 2: (2, 3, 7, 6), 3: (1, 2, 7, 6, 5)}


def outcome(call):
    """("ok", result, seconds) or ("error", "Type: message", seconds)."""
    start = time.perf_counter()
    try:
        result = jax.block_until_ready(call())  # a jax result counts once computed; torch's pass through
        return "ok", result, time.perf_counter() - start
    except Exception as e:  # noqa: BLE001  (observing every failure is the point)
        return "error", f"{type(e).__name__}: {str(e)[:300]}", time.perf_counter() - start


def as_numpy(result):
    parts = result if isinstance(result, tuple) else (result,)
    return [np.asarray(p.detach().numpy() if isinstance(p, torch.Tensor) else p) for p in parts]


def agree(a, b) -> bool:
    a, b = as_numpy(a), as_numpy(b)
    return len(a) == len(b) and all(
        x.shape == y.shape and np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-5, atol=1e-6,
                                           equal_nan=True)
        for x, y in zip(a, b))


def main() -> None:
    base, hostile = FAMILIES[FAMILY]
    dims = (2, 3) if FAMILY == "fractional_max_pool" else (1, 2, 3)
    for n in dims:
        op = f"{FAMILY}{n}d"
        x = np.random.default_rng(n).standard_normal(SHAPES[n]).astype(np.float32)
        if FAMILY == "max_unpool":
            pooled, indices = getattr(F, f"max_pool{n}d")(torch.from_numpy(x), 2, 2, return_indices=True)
            first = dict(jax=(pooled.numpy(), indices.numpy().astype(np.int32)), torch=(pooled, indices))
            base = dict(base, output_size=x.shape[2:])  # the pooled plane's own size: indices fit
        else:
            first = dict(jax=(x,), torch=(torch.from_numpy(x),))
        if FAMILY == "fractional_max_pool":
            samples = np.random.default_rng(0).uniform(size=(x.shape[0], x.shape[1], n)).astype(np.float32)
        for a, name in enumerate(hostile):
            for v, (label, value) in enumerate(VALUES.items()):
                if not ALL_DIMS and (a + v) % len(dims) != dims.index(n):
                    continue
                kwargs = dict(base, **{name: value})
                if name == "output_ratio":
                    kwargs["output_size"] = None
                jax_kwargs, torch_kwargs = dict(kwargs), dict(kwargs)
                if FAMILY == "fractional_max_pool":
                    jax_kwargs["_random_samples"] = samples
                    torch_kwargs["_random_samples"] = torch.from_numpy(samples)
                fn = getattr(jaxpool, op)
                j = outcome(lambda: fn(*first["jax"], **jax_kwargs))
                if FAMILY == "stochastic_pool":
                    t = ("absent", "torch has no stochastic pooling", 0.0)
                else:
                    t = outcome(lambda: getattr(F, op)(*first["torch"], **torch_kwargs))
                same = agree(j[1], t[1]) if j[0] == t[0] == "ok" else None
                print(json.dumps(dict(op=op, arg=name, value=label, jax=j[0],
                                      jax_error=j[1] if j[0] == "error" else None,
                                      torch=t[0], torch_error=t[1] if t[0] == "error" else None,
                                      agree=same, seconds=round(j[2], 3))), flush=True)


if __name__ == "__main__":
    main()
