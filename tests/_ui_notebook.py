"""Support for the real-browser test of the predictor widget.

* :func:`write_predictor_notebook` saves a trained :class:`~helpers.crabnet.CrabModel`
  (safetensors, via ``CrabModel.save``), a tiny dataset CSV and a notebook that
  loads both and displays ``Predictor(...).widget(initial="CsPbI3")``.
* :class:`LabServer` runs a private JupyterLab on 127.0.0.1 with a random token
  and throw-away Jupyter/IPython/HOME folders, and stops it (and its kernels).
* :func:`chromium_executable` finds Debian's Chromium or says how to install it;
  :func:`chromium_args` are the flags that keep it quiet on a closed network.
* :class:`Watchdog` kills what this test started if it ever runs past a hard limit,
  so a hang becomes a failure instead of a stuck CI job.

Everything listens and connects on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

import nbformat
import pandas as pd
import psutil

#: Environment variable that skips the browser tests (for students without root).
SKIP_ENV = "BANDGAP_SKIP_BROWSER_TESTS"
#: Environment variable naming another Chromium/Chrome binary (default: Debian's).
CHROMIUM_ENV = "BANDGAP_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: pip pin of the browser driver (keep in step with requirements.txt).
PLAYWRIGHT_PIN = "playwright==1.65.2"

INSTALL_HINT = (
    "Install Debian's Chromium as root: `apt-get update && apt-get install -y chromium chromium-driver` "
    f"(or point {CHROMIUM_ENV} at a Chromium/Chrome binary). Never run `playwright install`: "
    f"browser downloads are not available here. To skip the browser tests instead, set {SKIP_ENV}=1."
)

LOOPBACK = "127.0.0.1"


class BrowserMissing(RuntimeError):
    """No usable Chromium binary."""


def skip_requested() -> bool:
    """True when :data:`SKIP_ENV` is set to a truthy value."""
    return os.environ.get(SKIP_ENV, "").strip().lower() not in ("", "0", "false", "no")


def chromium_executable(candidate: str | None = None) -> str:
    """Path of the Chromium to drive; :class:`BrowserMissing` with install instructions if absent."""
    path = candidate or os.environ.get(CHROMIUM_ENV, "").strip() or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise BrowserMissing(f"Chromium not found at {path}. {INSTALL_HINT}")
    return path


def chromium_args() -> list[str]:
    """Flags for a quiet, loopback-only headless Chromium (Playwright adds ``--headless``)."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--disable-breakpad",
        "--disable-domain-reliability",
        "--no-pings",
        "--no-proxy-server",
        # any host name other than the loopback address fails to resolve: no traffic leaves the machine
        f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {LOOPBACK}",
    ]


def isolated_home_env(root: Path) -> dict[str, str]:
    """Environment that points HOME/XDG/Jupyter/IPython/matplotlib folders into ``root``."""
    dirs = {
        "HOME": root / "home",
        "XDG_CONFIG_HOME": root / "home" / ".config",
        "XDG_CACHE_HOME": root / "home" / ".cache",
        "XDG_DATA_HOME": root / "home" / ".local" / "share",
        "JUPYTER_CONFIG_DIR": root / "jupyter" / "config",
        "JUPYTER_DATA_DIR": root / "jupyter" / "data",
        "JUPYTER_RUNTIME_DIR": root / "jupyter" / "runtime",
        "IPYTHONDIR": root / "ipython",
        "MPLCONFIGDIR": root / "mpl",
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return {k: str(v) for k, v in dirs.items()}


def launch_chromium(
    pw: Any,
    profile: Path,
    home: Path,
    executable: str,
    viewport: dict[str, int] | None = None,
    timeout_ms: float = 60_000,
) -> Any:
    """Headless Debian Chromium as every browser test and the slide measurement start it: a persistent profile in
    ``profile`` (so :func:`processes_with_arg` finds and a :class:`Watchdog` can kill it), HOME and the Jupyter/
    matplotlib folders isolated below ``home``, :func:`chromium_args` (no host but the loopback resolves),
    ``viewport`` in CSS px (default 1280×800), ``timeout_ms`` for the launch. Returns the Playwright context."""
    return pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=executable,
        headless=True,
        args=chromium_args(),
        env={**os.environ, **isolated_home_env(home)},
        viewport=viewport or {"width": 1280, "height": 800},
        timeout=timeout_ms,
    )


# --------------------------------------------------------------------------- notebook
NOTEBOOK_NAME = "predictor_ui.ipynb"
CHECKPOINT_NAME = "tiny_crabnet.safetensors"
DATASET_NAME = "tiny_dataset.csv"
#: Call logs written by the notebook's instrumentation cell (one JSON line per model call).
MAIN_CALLS = "calls_main.jsonl"
SLOW_CALLS = "calls_slow.jsonl"
#: Seconds each call of the second ("slow") widget's model sleeps, like a full-size CrabNet on a busy CPU.
SLOW_DELAY_S = 0.4
#: Index (among code cells) of the cell showing the widget under test, and of the slow one.
MAIN_WIDGET_CELL, SLOW_WIDGET_CELL = 1, 3

_INSTRUMENTATION = """\
# Test instrumentation, not course code: log every CrabNet call (thread, start, end) to a file,
# optionally after a delay. The predictor's own behaviour is unchanged.
import json, threading, time


def log_calls(crab_model, log_path, delay_s=0.0):
    inner = crab_model.crab.predict

    def predict(*args, **kwargs):
        start = time.time()
        time.sleep(delay_s)
        try:
            return inner(*args, **kwargs)
        finally:
            line = {"thread": threading.current_thread().name, "start": start, "end": time.time()}
            with open(log_path, "a") as f:
                f.write(json.dumps(line) + "\\n")

    crab_model.crab.predict = predict


log_calls(model, @MAIN_LOG@)"""

_SLOW_WIDGET = """\
# The same widget on a model that needs {delay} s per call (as the full-size CrabNet can on a busy CPU)
slow_model = load_model({checkpoint!r})
log_calls(slow_model, {slow_log!r}, delay_s={delay})
Predictor(slow_model, dataset, measured_column="target", train_formulas=train_formulas).widget(initial="CsPbI3")"""


def write_predictor_notebook(folder: Path, model, dataset: pd.DataFrame) -> Path:
    """Save ``model`` + ``dataset`` into ``folder`` and write a notebook that shows the widget.

    ``dataset`` needs ``formula``, ``target`` and ``split`` columns (``split == "train"``
    rows are passed as ``train_formulas``). Code cells: 0 loads the checkpoint with
    ``load_model`` and builds the :class:`~helpers.predictor.Predictor`; 1 shows
    ``predictor.widget(initial="CsPbI3")``; 2 logs every model call to
    :data:`MAIN_CALLS`; 3 shows a second widget whose model sleeps
    :data:`SLOW_DELAY_S` per call (log :data:`SLOW_CALLS`). Returns the notebook's path.
    """
    folder = Path(folder)
    checkpoint = str(model.save(folder / CHECKPOINT_NAME))
    dataset.to_csv(folder / DATASET_NAME, index=False)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Band-gap predictor (browser test)\nA tiny CrabNet loaded from a safetensors checkpoint."
        ),
        nbformat.v4.new_code_cell(
            "import pandas as pd\n"
            "from helpers.crabnet import load_model\n"
            "from helpers.predictor import Predictor\n"
            "\n"
            f"model = load_model({checkpoint!r})\n"
            f"dataset = pd.read_csv({str(folder / DATASET_NAME)!r})\n"
            "train_formulas = dataset.loc[dataset['split'] == 'train', 'formula']\n"
            "predictor = Predictor(model, dataset, measured_column='target', train_formulas=train_formulas)\n"
            "print(f'loaded {model.config.name}: at most {model.max_elements} elements, {len(dataset)} dataset rows')"
        ),
        nbformat.v4.new_code_cell('predictor.widget(initial="CsPbI3")'),
        nbformat.v4.new_code_cell(_INSTRUMENTATION.replace("@MAIN_LOG@", repr(str(folder / MAIN_CALLS)))),
        nbformat.v4.new_code_cell(
            _SLOW_WIDGET.format(checkpoint=checkpoint, slow_log=str(folder / SLOW_CALLS), delay=SLOW_DELAY_S)
        ),
    ]
    path = folder / NOTEBOOK_NAME
    nbformat.write(nb, path)
    return path


def read_calls(path: Path) -> list[dict]:
    """The model calls logged so far (see :func:`write_predictor_notebook`)."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def overlapping_calls(calls: list[dict]) -> list[tuple[dict, dict]]:
    """Pairs of calls that ran at the same time (in different threads)."""
    ordered = sorted(calls, key=lambda c: c["start"])
    pairs = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b["start"] < a["end"]:
                pairs.append((a, b))
    return pairs


def wait_calls(path: Path, at_least: int, timeout: float) -> list[dict]:
    """Poll the call log until it has ``at_least`` lines (or ``timeout`` s pass)."""
    deadline = time.monotonic() + timeout
    while True:
        calls = read_calls(path)
        if len(calls) >= at_least or time.monotonic() > deadline:
            return calls
        time.sleep(0.05)


def wait_quiet(path: Path, quiet: float, timeout: float) -> list[dict]:
    """Poll the call log until it has not grown for ``quiet`` s (or ``timeout`` s pass)."""
    deadline = time.monotonic() + timeout
    calls = read_calls(path)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read_calls(path)
        if len(now) != len(calls):
            calls, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return calls


# --------------------------------------------------------------------------- server
def free_port() -> int:
    """A currently free TCP port on the loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(url: str, method: str = "GET", timeout: float = 5.0) -> int:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with _NO_PROXY_OPENER.open(request, timeout=timeout) as response:
        return response.status


class LabServer:
    """A private JupyterLab on 127.0.0.1 serving ``root_dir``; use as a context manager."""

    def __init__(self, root_dir: Path, state_dir: Path, extra_env: dict[str, str] | None = None):
        self.root_dir = Path(root_dir)
        self.state_dir = Path(state_dir)
        self.token = secrets.token_hex(24)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = self.state_dir / "jupyterlab.log"
        self.env = {**os.environ, **isolated_home_env(self.state_dir), **(extra_env or {})}
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            self.env.pop(var, None)
        self._log = None
        # answer JupyterLab's "get notified about official Jupyter news?" toast with "Never" up front
        settings = Path(self.env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 60.0, attempts: int = 3) -> "LabServer":
        """Start and wait until ``/api/status`` answers; fail with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        last, why = "", "did not start"
        for _ in range(attempts):
            self.port = free_port()
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                self._command(),
                cwd=self.root_dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if _http(self.url("api/status"), timeout=2.0) == 200:
                        return self
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.25)
            last = self.log_tail()
            running = self.proc.poll() is None
            why = f"did not answer within {timeout:.0f} s" if running else f"exited with code {self.proc.returncode}"
            self.stop()
            if running:  # timed out rather than crashed: another attempt would not help
                break
            if "address already in use" not in last.lower():
                break
        raise RuntimeError(f"JupyterLab on {LOOPBACK} {why}; log tail:\n{last}")

    def _command(self) -> list[str]:
        return [
            # `-m jupyterlab`, not `-m jupyter lab`: the `jupyter` dispatcher runs the jupyter-lab script,
            # whose shebang may name another interpreter (a copied virtualenv) -- then neither this
            # environment's extensions (jupyterlab-rise) nor its kernel would be the ones under test
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--ServerApp.ip={LOOPBACK}",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.allow_root=True",  # CI runs as root; no effect otherwise
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.open_browser=False",
            "--ServerApp.terminals_enabled=False",
            # no calls home: no news feed, no update check, no PyPI listing of extensions
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            # window.jupyterapp, to read the kernel state (as JupyterLab's own Galata tests do)
            "--LabApp.expose_app_in_browser=True",
        ]

    def url(self, path: str = "") -> str:
        sep = "&" if "?" in path else "?"
        return f"http://{LOOPBACK}:{self.port}/{path}{sep}token={self.token}"

    def descendants(self) -> list[psutil.Process]:
        """The server's child processes (kernels), which live in their own sessions."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []

    def stop(self, grace: float = 15.0) -> None:
        """Ask the server to shut down (it stops its kernels); then terminate/kill what is left, by pid."""
        if self.proc is None:
            return
        children = self.descendants()
        if self.proc.poll() is None:
            try:
                _http(self.url("api/shutdown"), method="POST", timeout=3.0)
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        kill_processes(children)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.proc = None

    def kill_now(self) -> None:
        """For the watchdog: kill the server and its kernels at once (by pid)."""
        if self.proc is not None and self.proc.poll() is None:
            kill_processes([*self.descendants(), psutil.Process(self.proc.pid)], grace=0)

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def __enter__(self) -> "LabServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def kill_processes(procs: Iterable[psutil.Process], grace: float = 5.0) -> None:
    """Terminate the given processes (by pid), then kill those still alive after ``grace`` s."""
    alive = []
    for p in procs:
        try:
            if p.is_running():
                if grace:
                    p.terminate()
                else:
                    p.kill()
                alive.append(p)
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(alive, timeout=max(grace, 1.0))
    for p in still:
        try:
            p.kill()
        except psutil.Error:
            pass


def processes_with_arg(marker: str) -> list[psutil.Process]:
    """Descendants of this process whose command line contains ``marker`` (our Chromium profile dir)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any(marker in a for a in p.cmdline()):
                found.append(p)
        except psutil.Error:
            pass
    return found


class Watchdog:
    """Run ``on_expire`` (in a thread) if not cancelled within ``seconds``."""

    def __init__(self, seconds: float, on_expire: Callable[[], None]):
        self.seconds = seconds
        self.fired = threading.Event()

        def _fire() -> None:
            self.fired.set()
            on_expire()

        self._timer = threading.Timer(seconds, _fire)
        self._timer.daemon = True

    def start(self) -> "Watchdog":
        self._timer.start()
        return self

    def cancel(self) -> None:
        self._timer.cancel()


class Budget:
    """A shared deadline: each wait gets ``min(its own limit, time left)``."""

    def __init__(self, seconds: float):
        self.total = seconds
        self.start = time.monotonic()

    def left(self) -> float:
        return self.total - (time.monotonic() - self.start)

    def ms(self, step_seconds: float) -> float:
        """Milliseconds for one Playwright wait; raises once the budget is spent."""
        left = self.left()
        if left <= 0:
            raise TimeoutError(f"the browser test used up its {self.total:.0f} s budget")
        return 1000.0 * min(step_seconds, left)


def dump_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))
