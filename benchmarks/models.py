"""Whole training steps of models that use the pools: jaxpool's Flax layers against PyTorch
(eager and ``torch.compile``) and against Flax's own pools, in one process on the same data.

Run ``python3 benchmarks/models.py`` (``--help``).  For each model of
``benchmarks/model_zoo.py`` (ResNet-18 style, VGG-11 style with ``AdaptiveAvgPool2d((7,7))``
of a 6x6 map, SegNet style with pool indices and ``MaxUnpool2d``, a 3-D net with
``MaxPool3d``) it times one training step -- forward, loss (cross-entropy, or MSE for the 3-D
net), gradient, SGD-momentum update (optax / ``torch.optim.SGD``, lr 1e-3, momentum 0.9) --
for these implementations:

* ``jaxpool``: Flax with :mod:`jaxpool.flax.linen` pools, channels-last, the whole step one
  ``jax.jit`` program (parameters and optimizer state donated, as in a training loop);
* ``flax``: the same model with ``flax.linen.max_pool``/``avg_pool`` where Flax can express it;
* ``slice``: the same model with every pool replaced by the cheapest op of its output shape (a
  strided slice, a pad): ``jaxpool - slice`` is the pools' share of the step;
* ``torch``: the PyTorch twin (NCHW, ``torch.nn`` pools) in eager mode, same initial weights
  (ported from the Flax parameters), same data;
* ``torch.compile``: the twin's forward compiled (the backward by AOTAutograd), optimizer eager;
* ``torch.slice``: the eager twin with the slice stand-ins for its pools
  (``model_zoo.torch_without_pools``): ``torch - torch.slice`` is torch's pools' share, so the
  pools' cost compares across libraries even where the rest of the step (XLA:CPU's
  convolutions against oneDNN's) does not.

Each step is timed to completion (``block_until_ready``), the implementations sampled
round-robin with an idle gap before each sample (``jaxpool._bench.timing.interleaved``), the median
reported.  Compile time is ``jit(step).lower(...).compile()`` in seconds; for torch.compile, its
first step's time minus that of its fourth.  torch runs with as many threads as XLA's CPU client
uses (the cores this process may run on), as in ``benchmarks/bench.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: import this checkout's jaxpool and the zoo
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [_here, os.path.dirname(_here)]

import numpy as np  # noqa: E402

LR, MOMENTUM = 1e-3, 0.9
IMPLS = ("jaxpool", "flax", "slice", "torch", "torch.compile", "torch.slice")


# ------------------------------------------------------------------------------ steps


def jax_loss(model, logits, y):
    import jax.numpy as jnp
    import optax

    if model.loss == "mse":
        return jnp.mean((logits - y) ** 2)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def jax_step(module, model):
    """``step(params, opt_state, x, y) -> (params, opt_state, loss)``: one SGD-momentum step."""
    import jax
    import optax

    tx = optax.sgd(LR, momentum=MOMENTUM)

    def loss_fn(params, x, y):
        return jax_loss(model, module.apply({"params": params}, x), y)

    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return tx, step


def compile_jax(module, model, params, x, y):
    """The compiled step, its compile seconds (lower + compile) and a fresh training state."""
    import jax
    import jax.numpy as jnp

    tx, step = jax_step(module, model)
    state = [jax.tree.map(jnp.copy, params)]
    state.append(tx.init(state[0]))
    start = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(state[0], state[1], x, y).compile()
    seconds = time.perf_counter() - start
    return compiled, seconds, state


def jax_runner(compiled, state, x, y):
    """A callable running one step in place on ``state``; returns the loss as a float."""
    def run():
        state[0], state[1], loss = compiled(state[0], state[1], x, y)
        return float(loss)  # waits for the step, as a training loop logging its loss does
    return run


def torch_runner(model, net, x, y):
    import torch
    import torch.nn.functional as F

    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)

    def run():
        opt.zero_grad(set_to_none=True)
        out = net(x)
        loss = F.mse_loss(out, y) if model.loss == "mse" else F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return run


# ------------------------------------------------------------------------------ one model


def run_model(model, *, quick: bool, repeats: int, gap: float, impls, torch_compile: bool,
              seed: int = 0, device: str = "cpu", log=lambda s: None) -> dict:
    """Build, check and time ``model`` on ``device`` (``"cpu"``, or ``"gpu"``: jax's first GPU
    against torch CUDA); returns its result row."""
    import jax
    import torch

    from jaxpool._bench import report, timing
    import model_zoo

    shape = model.quick_shape if quick else model.shape
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape).astype(np.float32)
    y_np = model.targets(rng, shape)
    jax_device = jax.devices(device)[0]  # the jitted step runs where its arguments live
    x, y = jax.device_put(x_np, jax_device), jax.device_put(y_np, jax_device)
    row = {"model": model.name, "description": model.description, "input_nhwc": list(shape),
           "loss": "mse" if model.loss == "mse" else "cross-entropy"}

    jaxpool_module = model.flax("jaxpool", quick)
    params = jax.device_put(model_zoo.init_params(jaxpool_module, x, seed), jax_device)
    row["parameters"] = int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
    runners, losses = {}, {}
    if model.name in model_zoo.FLAX_CANNOT:  # a fact about the model, whatever was asked for
        row["flax_ms"] = model_zoo.FLAX_CANNOT[model.name]
    if device == "gpu":
        # XLA:GPU autotunes each convolution and matrix product once per process and keeps the
        # choice, so the first step compiled would pay it for all: pay it untimed, first, with the
        # no-pool step (the same convolutions and dense layers).
        log("  compiling the no-pool step once, untimed (XLA:GPU's autotuning)")
        compile_jax(model.flax("slice", quick), model, params, x, y)
        jax.clear_caches()
    for kit in ("jaxpool", "flax", "slice"):
        if kit not in impls or (kit == "flax" and model.name in model_zoo.FLAX_CANNOT):
            continue
        log(f"  compiling the {kit} step")
        module = jaxpool_module if kit == "jaxpool" else model.flax(kit, quick)
        compiled, seconds, state = compile_jax(module, model, params, x, y)
        row[f"{kit}_compile_s"] = seconds
        runners[kit] = jax_runner(compiled, state, x, y)
        losses[kit] = [runners[kit]() for _ in range(3)]  # also the warm-up

    torch_device = "cuda" if device == "gpu" else "cpu"
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_np, -1, 1))).to(torch_device)
    yt = torch.from_numpy(y_np if model.loss == "mse" else y_np.astype(np.int64)).to(torch_device)
    twins = {}
    for impl in ("torch", "torch.compile", "torch.slice"):
        if impl not in impls or (impl == "torch.compile" and not torch_compile):
            continue
        net = model.torch(xt.shape[1], quick)
        model_zoo.port_to_torch(params, net)
        if impl == "torch.slice":
            model_zoo.torch_without_pools(net)
        twins[impl] = net.to(torch_device)
    for impl in ("torch", "torch.slice"):
        if impl in twins:
            runners[impl] = torch_runner(model, twins[impl], xt, yt)
            losses[impl] = [runners[impl]() for _ in range(3)]
    if "torch.compile" in twins:
        log("  compiling the torch.compile step")
        try:
            compiled_net = torch.compile(twins["torch.compile"])
            run = torch_runner(model, compiled_net, xt, yt)
            start = time.perf_counter()
            first = run()
            first_s = time.perf_counter() - start
            losses["torch.compile"] = [first, run(), run()]
            start = time.perf_counter()
            run()
            row["torch.compile_compile_s"] = max(0.0, first_s - (time.perf_counter() - start))
            runners["torch.compile"] = run
        except Exception as error:  # noqa: BLE001 (reported in the table, not raised)
            row["torch.compile_ms"] = f"n/a: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
    elif "torch.compile" in impls:
        row["torch.compile_ms"] = f"n/a: not run ({'--quick' if quick else '--no-torch-compile'})"

    for impl, values in losses.items():
        row[f"{impl}_losses"] = values
    _agreement(row)
    log(f"  timing {', '.join(runners)}: {repeats} interleaved samples")
    times = timing.interleaved(runners, repeats, target=0.0, gap=gap)
    for impl, seconds in times.items():
        row[f"{impl}_ms"] = seconds * 1e3
    _ratios(row)
    return row


def _agreement(row: dict) -> None:
    """How far the others' losses of the first three steps are from jaxpool's: the same
    weights, data and optimizer must give the same losses up to float32 rounding."""
    ref = row.get("jaxpool_losses")
    for other in ("torch", "torch.compile", "flax"):
        losses = row.get(f"{other}_losses")
        if ref and losses:
            row[f"{other}_loss_diff"] = _relative_difference(ref, losses)
    # the two no-pool models use the same stand-ins, so they must agree as well
    ref, losses = row.get("slice_losses"), row.get("torch.slice_losses")
    if ref and losses:
        row["torch.slice_loss_diff"] = _relative_difference(ref, losses)


def _relative_difference(ref, losses) -> float:
    return max(abs(a - b) / max(abs(a), 1e-30) for a, b in zip(ref, losses))


def _ratios(row: dict) -> None:
    def ms(impl):
        value = row.get(f"{impl}_ms")
        return value if isinstance(value, float) else None

    jp = ms("jaxpool")
    for other, key in (("torch", "ratio_jaxpool_torch"), ("flax", "ratio_jaxpool_flax"),
                       ("torch.compile", "ratio_jaxpool_torch_compile")):
        if jp and ms(other):
            row[key] = jp / ms(other)
    for kit, without in (("jaxpool", "slice"), ("flax", "slice"), ("torch", "torch.slice")):
        if ms(kit) and ms(without):
            row[f"{kit}_pool_ms"] = ms(kit) - ms(without)
            row[f"{kit}_pool_share"] = row[f"{kit}_pool_ms"] / ms(kit)


# ------------------------------------------------------------------------------ output

STEP_COLUMNS = [
    ("model", "model", "{}"),
    ("jaxpool_ms", "jaxpool ms", "{:.1f}"),
    ("flax_ms", "flax pools ms", "{:.1f}"),
    ("torch_ms", "torch ms", "{:.1f}"),
    ("torch.compile_ms", "torch.compile ms", "{:.1f}"),
    ("ratio_jaxpool_torch", "jaxpool/torch", "{:.2f}"),
    ("ratio_jaxpool_flax", "jaxpool/flax", "{:.2f}"),
    ("slice_ms", "no-pool ms", "{:.1f}"),
    ("jaxpool_pool_share", "pools' share", "{:.0%}"),
    ("flax_pool_share", "flax pools' share", "{:.0%}"),
    ("torch.slice_ms", "torch no-pool ms", "{:.1f}"),
    ("torch_pool_share", "torch pools' share", "{:.0%}"),
    ("jaxpool_pool_ms", "jaxpool pools ms", "{:.1f}"),
    ("torch_pool_ms", "torch pools ms", "{:.1f}"),
]
COMPILE_COLUMNS = [
    ("model", "model", "{}"),
    ("jaxpool_compile_s", "jaxpool compile s", "{:.2f}"),
    ("flax_compile_s", "flax pools compile s", "{:.2f}"),
    ("slice_compile_s", "no-pool compile s", "{:.2f}"),
    ("torch.compile_compile_s", "torch.compile s", "{:.1f}"),
    ("torch_loss_diff", "torch loss rel. diff", "{:.1e}"),
    ("flax_loss_diff", "flax loss rel. diff", "{:.1e}"),
    ("torch.slice_loss_diff", "no-pool twins' loss rel. diff", "{:.1e}"),
]


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if isinstance(value, str) and value.startswith("n/a"):
        return "n/a"
    return fmt.format(value)


def format_table(rows, columns) -> str:
    from jaxpool._bench import report

    return "\n".join(report._grid(rows, columns, cell=_cell))  # the operator bench's layout


def notes(rows) -> list[str]:
    """The reasons behind every n/a cell, and the models' inputs."""
    lines = []
    for r in rows:
        lines.append(f"{r['model']}: {r['description']}; input {'x'.join(map(str, r['input_nhwc']))} "
                     f"(channels-last), {r['parameters']:,} parameters, {r['loss']} loss")
        lines += [f"  {key[:-3]}: {value}" for key, value in r.items()
                  if key.endswith("_ms") and isinstance(value, str)]
    lines.append("loss rel. diff = largest relative difference from jaxpool's loss over the first 3 steps "
                 "(same initial weights, data and optimizer)")
    lines.append("no-pool = the same model with each pool replaced by a strided slice or pad of its output "
                 "shape (in JAX, and in torch: torch no-pool); pools' share = (step - no-pool step) / step; "
                 "pools ms = step - no-pool step (within the timing noise of the two steps)")
    return lines


def write_csv(path: str, rows) -> None:
    import csv

    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("x".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()})


# ------------------------------------------------------------------------------ main


def parse_args(argv):
    import model_zoo

    p = argparse.ArgumentParser(
        prog="benchmarks/models.py", description=__doc__.split("\n\n")[0].replace("\n", " ") +
        "  Prints a step-time table and a compile-time table; progress goes to stderr.")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny models and inputs, 3 samples, no idle gap, no torch.compile; "
                        "shows that every model runs, its figures mean nothing as measurements")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=[m.name for m in model_zoo.MODELS],
                   help=f"run only these models, of {', '.join(m.name for m in model_zoo.MODELS)} (default: all)")
    p.add_argument("--impls", nargs="+", metavar="IMPL", choices=IMPLS, default=list(IMPLS),
                   help=f"implementations to run, of {', '.join(IMPLS)} (default: all; slice is the model "
                        "with each pool replaced by a strided slice or pad, the no-pool baseline, and "
                        "torch.slice the PyTorch twin with the same stand-ins)")
    p.add_argument("--no-torch-compile", action="store_true",
                   help="skip torch.compile (its compile takes tens of seconds per model here)")
    p.add_argument("--repeats", type=int, metavar="N",
                   help="timed samples per implementation; the median is reported (default 11, --quick 3)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch's thread count (default: the cores XLA uses)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="cpu (default), or gpu: jax on its first GPU against torch CUDA (the losses, "
                        "read back each step, synchronise both)")
    p.add_argument("--json", metavar="PATH", help="also write the environment and every row as JSON to PATH")
    p.add_argument("--csv", metavar="PATH", help="also write one row per model as CSV to PATH")
    return p.parse_args(argv)


def quick_warning(repeats: int) -> str:
    return (f"WARNING: --quick is a smoke run (tiny models, {repeats} samples, no idle gap): its times "
            "and ratios mean nothing as measurements.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import flax
    import optax
    import torch

    import model_zoo
    from jaxpool._bench import report, timing
    from jaxpool.cli import output_path_error

    errors = [e for e in (output_path_error(f"--{n}", getattr(args, n)) for n in ("json", "csv")
                          if getattr(args, n)) if e]
    for e in errors:
        print(f"models.py: {e}", file=sys.stderr)
    if errors:
        return 2
    threads = args.threads or report.cpu_cores()
    torch.set_num_threads(threads)
    repeats = args.repeats or (3 if args.quick else 11)
    gap = 0.0 if args.quick else timing.IDLE_GAP_S
    torch_compile = not (args.quick or args.no_torch_compile)
    selected = [m for m in model_zoo.MODELS if not args.only or m.name in args.only]
    env = {**report.environment(args.device, threads), "optax": optax.__version__, "flax": flax.__version__}
    print(f"model training steps on {args.device}: jax {env['jax']} ({env['jax_threads']} cores), torch {env['torch']} "
          f"({threads} threads), flax {env['flax']}, optax {env['optax']}; median of {repeats} interleaved "
          "samples; ratio = jaxpool / other (below 1: jaxpool is faster)", flush=True)
    if args.quick:
        print(quick_warning(repeats), file=sys.stderr, flush=True)
    def run_one(k, model):
        print(f"[{k}/{len(selected)}] {model.name}", file=sys.stderr, flush=True)
        return run_model(model, quick=args.quick, repeats=repeats, gap=gap, impls=args.impls,
                         torch_compile=torch_compile, device=args.device,
                         log=lambda s: print(s, file=sys.stderr, flush=True))

    rows, stopped = report.run_until_stopped(selected, run_one)
    print("\nstep time (forward, loss, gradient, SGD-momentum update)")
    print(format_table(rows, STEP_COLUMNS))
    print("\ncompile time (jit(step).lower().compile(); torch.compile: its first step minus a later one)")
    print(format_table(rows, COMPILE_COLUMNS))
    print()
    for line in notes(rows):
        print(line)
    result = {"environment": env, "quick": args.quick, "repeats": repeats, "rows": rows}
    if args.quick:
        print(quick_warning(repeats))
        result["warning"] = quick_warning(repeats)
    if stopped:
        result["incomplete"] = stopped
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.csv:
        write_csv(args.csv, rows)
    return 1 if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
