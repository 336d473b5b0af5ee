"""``jaxpool parity``: run :mod:`jaxpool.testing.sweep` cases, in worker processes if asked, and report.

A case *passes* when :func:`jaxpool.testing.sweep.run_case` returns (values, indices and gradients
within tolerance), *fails* on :class:`jaxpool.testing.Mismatch`, and is an *error* on any
other exception (jaxpool raising where torch accepted the call counts as an error).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import multiprocessing
import sys
import time

from jaxpool.testing import sweep
from jaxpool.testing import Mismatch


@dataclasses.dataclass
class Result:
    case: sweep.Case
    status: str  # "pass", "fail" or "error"
    max_error: float = 0.0
    message: str = ""
    seconds: float = 0.0


def expand_ops(names) -> list[str]:
    """Operator names from ``--ops``: exact names (``max_pool2d``) or families (``max_pool``)."""
    if not names:
        return list(sweep.OPS)
    ops = []
    for name in names:
        matched = [op for op in sweep.OPS if op == name or op[:-2] == name]
        if not matched:
            raise ValueError(f"unknown operator {name!r}; choose from {', '.join(sweep.OPS)} "
                             "or a family name without the 1d/2d/3d suffix")
        ops += [op for op in matched if op not in ops]
    return ops


def plan(ops, level: str, dtypes=None, per_op: int | None = None) -> tuple[list[sweep.Case], list[str]]:
    """The cases to run and the operators skipped because none of ``dtypes`` applies to them.

    A dtype applies to an operator when the default sweep of that operator uses it (integer
    dtypes only exist for max pooling, as in PyTorch).
    """
    selected, skipped = [], []
    for op in ops:
        wanted = None
        if dtypes:
            supported = {c.dtype for c in sweep.cases([op], level="quick")} | set(sweep.FLOAT_DTYPES)
            wanted = tuple(d for d in dtypes if d in supported)
            if not wanted:
                skipped.append(op)
                continue
        selected += list(sweep.cases([op], level=level, dtypes=wanted, per_op=per_op))
    return selected, skipped


def run_one(case: sweep.Case) -> Result:
    start = time.perf_counter()
    try:
        comparison = sweep.run_case(case)
    except Mismatch as e:
        return Result(case, "fail", message=str(e), seconds=time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001  (reported, never hidden)
        return Result(case, "error", message=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - start)
    return Result(case, "pass", comparison.max_error, seconds=time.perf_counter() - start)


def _worker_init():
    import torch

    torch.set_num_threads(1)  # one busy thread per worker: the workers are the parallelism


def run(cases, jobs: int = 1, fail_fast: bool = False, progress=None) -> list[Result]:
    """Run ``cases``; ``progress(done, total, result)`` is called after each.  Ordered as given."""
    results: dict[int, Result] = {}
    total = len(cases)
    if jobs <= 1:
        for k, case in enumerate(cases):
            results[k] = run_one(case)
            if progress:
                progress(len(results), total, results[k])
            if fail_fast and results[k].status != "pass":
                break
        return [results[k] for k in sorted(results)]
    context = multiprocessing.get_context("spawn")  # jax is not fork-safe
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init) as pool:
        futures = {pool.submit(run_one, case): k for k, case in enumerate(cases)}
        try:
            for future in concurrent.futures.as_completed(futures):
                k = futures[future]
                results[k] = future.result()
                if progress:
                    progress(len(results), total, results[k])
                if fail_fast and results[k].status != "pass":
                    break
        finally:
            for future in futures:
                future.cancel()
    return [results[k] for k in sorted(results)]


class Progress:
    """One updating line on a terminal; a line every ~10% or 30 s otherwise.

    :meth:`begin` prints a first line at once, before any worker has started.  The time left is
    estimated only after ``3 * jobs`` cases (the first results wait for the workers to import
    jax and torch), from the wall-clock rate since the first result.
    """

    def __init__(self, stream=None, interval: float = 30.0, jobs: int = 1):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.last = self.start
        self.interval = interval
        self.jobs = jobs
        self.failed = 0
        self.reported = 0
        self.first = None  # when the first result arrived

    def begin(self, total: int) -> None:
        self.start = self.last = time.perf_counter()
        who = f"{self.jobs} worker processes" if self.jobs > 1 else "this process"
        self._write(f"[{0:>{len(str(total))}}/{total}]   0%  starting: {who} import jax and torch, then run "
                    "the cases", final=False, force=True)

    def left(self, done: int, total: int, now: float) -> str:
        if self.first is None or done < 3 * self.jobs or done == total:
            return "estimating time left" if done < total else "done"
        return f"~{_clock((now - self.first) / (done - 1) * (total - done))} left"

    def __call__(self, done: int, total: int, result: Result) -> None:
        self.failed += result.status != "pass"
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        text = (f"[{done:>{len(str(total))}}/{total}] {100 * done // total:3d}%  {result.case.op:<22} "
                f"{_clock(now - self.start)} elapsed, {self.left(done, total, now)}, {self.failed} failed")
        due = now - self.last >= self.interval or done * 10 // total > self.reported
        self._write(text, final=done == total, force=done == total or due)
        if due or done == total:
            self.last = now
            self.reported = done * 10 // total

    def _write(self, text: str, final: bool, force: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif force:
            self.stream.write(text + "\n")
        else:
            return
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def table(results: list[Result], ops, wall: float | None = None) -> str:
    """Per operator: cases, passed, failed (mismatch or error), max error / tolerance, time.

    ``time`` is wall-clock time: the total row is the run's ``wall`` time (default: the cases'
    time added up, right for one process), and each operator gets the share of it that its
    cases took in the workers, so the column adds up to the total however many workers ran.
    """
    by_op = collections.defaultdict(list)
    for r in results:
        by_op[r.case.op].append(r)
    busy = sum(r.seconds for r in results)
    wall = busy if wall is None else wall
    share = (lambda rs: wall * sum(r.seconds for r in rs) / busy) if busy else (lambda rs: 0.0)  # noqa: E731
    header = ["op", "cases", "passed", "failed", "max err/tol", "time", "status"]
    rows = []
    for op in ops:
        rs = by_op.get(op, [])
        if not rs:
            continue
        passed = sum(r.status == "pass" for r in rs)
        worst = max((r.max_error for r in rs if r.status == "pass"), default=0.0)
        rows.append([op, str(len(rs)), str(passed), str(len(rs) - passed),
                     f"{worst:.3f}" if passed else "-", f"{share(rs):.1f}s",
                     "ok" if passed == len(rs) else "FAIL"])
    passed = sum(r.status == "pass" for r in results)
    worst = max((r.max_error for r in results if r.status == "pass"), default=0.0)
    rows.append(["total", str(len(results)), str(passed), str(len(results) - passed), f"{worst:.3f}",
                 f"{wall:.1f}s", "ok" if passed == len(results) else "FAIL"])
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(header)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths))).rstrip()
    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *map(fmt, rows[:-1]), rule, fmt(rows[-1])])


def failures(results: list[Result], limit: int = 20) -> str:
    bad = [r for r in results if r.status != "pass"]
    lines = [f"{r.status.upper()} {r.case}\n    {r.message}" for r in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more")
    return "\n".join(lines)
