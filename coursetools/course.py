"""Run the whole course headless: every notebook in order, in its own kernel.

``python -m coursetools.course`` (or ``make course``) executes
``notebooks/NN_*.ipynb`` in order, writes the executed copies to
``<output>/notebooks/``, and prints and writes ``<output>/course_run.json``:
one row per notebook with status, wall time (s) and the kernel's peak resident
memory (MB, from ``getrusage`` inside the kernel, so it is exact, not sampled).
Later notebooks read what earlier ones wrote, so the run stops at the first
failure and marks the rest ``not run``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import config, fileio

#: Printed by the extra cell run in each kernel after the notebook finishes.
_RSS_PROBE = (
    "import resource as _r, sys as _s\n"
    "_k = 1 if _s.platform == 'darwin' else 1024\n"
    "print(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss * _k / 2**20)"
)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class NotebookRun:
    """One row of ``course_run.json``."""

    notebook: str
    status: str  # "ok", "failed" or "not run"
    wall_s: float | None = None
    peak_rss_mb: float | None = None
    error: str | None = None
    executed_copy: str | None = None


def course_notebooks(folder: Path | None = None) -> list[Path]:
    """The lesson notebooks (``NN_name.ipynb``) in course order."""
    folder = folder or (config.REPO_ROOT / "notebooks")
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def _kernel_config(socket_dir: Path):
    """Kernel-manager settings: talk to the kernel over local IPC sockets in ``socket_dir`` where the OS has them.

    Over TCP (the default) ipykernel warns on every start that the connection is
    unencrypted; IPC sockets are files in a private temporary folder, so there is
    nothing to warn about. Windows has no IPC transport: TCP there. Passed as
    traitlets config, so nbclient still owns (and shuts down) the kernel.
    """
    from traitlets.config import Config

    if os.name == "posix":
        return Config({"KernelManager": {"transport": "ipc", "ip": str(socket_dir / "kernel")}})
    return Config()


def run_notebook(path: Path, out_dir: Path, timeout: int = 3600) -> NotebookRun:
    """Execute one notebook in a fresh kernel; save the executed copy in ``out_dir``.

    The kernel's working directory is the notebook's folder, as in JupyterLab.
    Returns a :class:`NotebookRun`; never raises for a failing cell (the error's
    last line is stored in ``error`` and the partially executed copy is saved).
    """
    nb = nbformat.read(str(path), as_version=4)
    with tempfile.TemporaryDirectory(prefix="bandgap-kernel-") as sockets:
        return _run_notebook(nb, path, out_dir, timeout, Path(sockets))


def _run_notebook(nb, path: Path, out_dir: Path, timeout: int, socket_dir: Path) -> NotebookRun:
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        config=_kernel_config(socket_dir),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / path.name
    start = time.perf_counter()
    status, error, peak = "ok", None, None
    with client.setup_kernel():
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except CellExecutionError as exc:
            status = "failed"
            plain = _ANSI.sub("", str(exc))
            lines = [ln for ln in plain.strip().splitlines() if ln.strip()]
            error = lines[-1] if lines else repr(exc)
        wall = time.perf_counter() - start
        # nbclient stores the executed cell back into nb.cells[index], so the
        # probe is appended for the measurement and removed afterwards.
        nb.cells.append(nbformat.v4.new_code_cell(_RSS_PROBE))
        try:
            probe = client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
            text = "".join(o.get("text", "") for o in probe.outputs if o.get("output_type") == "stream")
            peak = round(float(text.strip().splitlines()[-1]), 1)
        except (CellExecutionError, ValueError, IndexError):
            peak = None
        finally:
            nb.cells.pop()
    nbformat.write(nb, str(executed))
    return NotebookRun(
        notebook=path.name,
        status=status,
        wall_s=round(wall, 1),
        peak_rss_mb=peak,
        error=error,
        executed_copy=str(executed),
    )


def run_course(notebooks: list[Path] | None = None, out_dir: Path | None = None) -> list[NotebookRun]:
    """Run ``notebooks`` (default: all lessons) in order; stop at the first failure.

    Writes ``<out_dir>/course_run.json`` and returns the rows.
    """
    notebooks = notebooks if notebooks is not None else course_notebooks()
    out_dir = out_dir or config.output_dir()
    rows: list[NotebookRun] = []
    failed = False
    for path in notebooks:
        if failed:
            rows.append(NotebookRun(notebook=path.name, status="not run"))
            continue
        print(f"running {path.name} ...", flush=True)
        row = run_notebook(path, out_dir / "notebooks")
        print(f"  {row.status} in {row.wall_s} s, kernel peak RSS {row.peak_rss_mb} MB", flush=True)
        if row.error:
            print(f"  error: {row.error}", flush=True)
        rows.append(row)
        failed = row.status != "ok"
    report = {
        "mode": config.course_mode(),
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "total_wall_s": round(sum(r.wall_s or 0.0 for r in rows), 1),
        "notebooks": [asdict(r) for r in rows],
    }
    fileio.atomic_write_json(out_dir / "course_run.json", report)
    return rows


def format_table(rows: list[NotebookRun]) -> str:
    """Plain-text table of a course run."""
    lines = [f"{'notebook':<34} {'status':<8} {'wall s':>8} {'peak RSS MB':>12}"]
    for r in rows:
        wall = "" if r.wall_s is None else f"{r.wall_s:.1f}"
        rss = "" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}"
        lines.append(f"{r.notebook:<34} {r.status:<8} {wall:>8} {rss:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; exit status 1 when any notebook failed."""
    parser = argparse.ArgumentParser(prog="python -m coursetools.course", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all lessons)")
    parser.add_argument(
        "--output", type=Path, default=None, help="output folder (default: BANDGAP_OUTPUT_DIR or output/)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("BANDGAP_MODE", "quick")
    if args.output is not None:
        os.environ["BANDGAP_OUTPUT_DIR"] = str(args.output.resolve())
    rows = run_course(args.notebooks or None, args.output.resolve() if args.output else None)
    print()
    print(format_table(rows))
    print(f"\nwritten: {(args.output or config.output_dir()) / 'course_run.json'}")
    return 0 if all(r.status == "ok" for r in rows) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
