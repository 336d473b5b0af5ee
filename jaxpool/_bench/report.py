"""The benchmark's outputs: the printed table and its summary, CSV, the plot, the environment."""

from __future__ import annotations

import csv
import math
import os
import platform

import numpy as np

from .cases import PEER_LIBRARIES, keras_status

COLUMNS = [
    ("workload", "workload", "{}"),
    ("jaxpool_fwd_ms", "jax fwd ms", "{:.3f}"),
    ("torch_fwd_ms", "torch fwd ms", "{:.3f}"),
    ("ratio_fwd", "ratio fwd", "{:.2f}"),
    ("jaxpool_fwdbwd_ms", "jax f+b ms", "{:.3f}"),
    ("torch_fwdbwd_ms", "torch f+b ms", "{:.3f}"),
    ("ratio_fwdbwd", "ratio f+b", "{:.2f}"),
    ("roofline_fwd", "roofline", "{:.0%}"),
    *((f"{lib}_{when}_ms", f"{lib} {title} ms", "{:.3f}") for lib in PEER_LIBRARIES
      for when, title in (("fwd", "fwd"), ("fwdbwd", "f+b"))),
]
# Marks a peer's time whose forward output is not torch's (see _agreement and peer_notes).
DIFFERS_MARK = "!"


def geomean(values) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def summary(rows) -> dict:
    ok = [r for r in rows if r.get("status") == "ok"]
    ratios = [r["ratio_fwd"] for r in ok] + [r["ratio_fwdbwd"] for r in ok]
    worst = max(((r[k], r["workload"], k) for r in ok for k in ("ratio_fwd", "ratio_fwdbwd")), default=None)
    return {
        "geomean_ratio": geomean(ratios),
        "geomean_ratio_fwd": geomean([r["ratio_fwd"] for r in ok]),
        "geomean_ratio_fwdbwd": geomean([r["ratio_fwdbwd"] for r in ok]),
        "worst": None if worst is None else {"ratio": worst[0], "workload": worst[1], "pass": worst[2]},
        "measured": len(ok),
        "not_available": [r["workload"] for r in rows if r.get("status") != "ok"],
    }


def _cell(row, key: str, fmt: str) -> str:
    if key not in row:
        return "-"
    library = key.split("_")[0]
    differs = library in PEER_LIBRARIES and row.get(f"{library}_matches_torch") is False
    return fmt.format(row[key]) + (DIFFERS_MARK if differs else "")


def peer_notes(rows) -> list[str]:
    """One line per peer whose forward output is not torch's."""
    return [f"{DIFFERS_MARK} {r[lib + '_call']} differs from torch on {r['workload']}: {r[lib + '_differs']}"
            for r in rows for lib in PEER_LIBRARIES if r.get(f"{lib}_matches_torch") is False]


def format_table(rows) -> str:
    ok = [r for r in rows if r.get("status") == "ok"]
    cells = [[title for _, title, _ in COLUMNS]]
    cells += [[_cell(r, key, fmt) for key, _, fmt in COLUMNS] for r in ok]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))
             for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    lines += [f"{r['workload'].ljust(widths[0])}  {r.get('status')}" for r in rows if r not in ok]
    return "\n".join(lines)


def write_csv(path: str, rows) -> None:
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("x".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()})


def plot(path: str, rows) -> None:
    """Bar chart of the ratios (needs matplotlib: ``main`` checks for it before the run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(ok) + 1.5))
    y = np.arange(len(ok))
    ax.barh(y - 0.2, [r["ratio_fwd"] for r in ok], 0.4, label="forward")
    ax.barh(y + 0.2, [r["ratio_fwdbwd"] for r in ok], 0.4, label="forward+backward")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(y, [r["workload"] for r in ok])
    ax.invert_yaxis()
    ax.set_xlabel("time jaxpool / time torch (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def environment(device: str, torch_threads: int) -> dict:
    import jax
    import torch

    return {
        "device": device,
        "jax": jax.__version__,
        "torch": torch.__version__,
        "jax_devices": [str(d) for d in jax.devices("gpu" if device == "gpu" else "cpu")],
        "cpu_count": os.cpu_count(),
        "jax_threads": cpu_cores(),
        "torch_threads": torch_threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "flax": _version("flax"),
        "keras": keras_status() or _version("keras"),
    }


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS)
        return os.cpu_count() or 1
