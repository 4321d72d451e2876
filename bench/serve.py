#!/usr/bin/env python3
"""`tessera serve` against MLServer and a bare hyper server, side by side in
one run: requests per second and latency of Open Inference Protocol (v2)
`POST /v2/models/NAME/infer` calls, and the memory of `tessera serve`.

Usage (from anywhere; paths are relative to the repository root):

    python3 bench/serve.py                    # 10 s per load run, every server
    python3 bench/serve.py --quick            # 3 s per load run
    python3 bench/serve.py --skip-mlserver --json target/bench-serve/results.json
    python3 bench/serve.py --servers bare,tessera --serve-args="--threads 1"

The servers, each started on a free 127.0.0.1 port and stopped at the end:

* bare hyper (host/examples/bare_oip.rs): reads the body, parses it with
  serde_json and answers a fixed small OIP answer; no model. The ceiling of
  HTTP/1.1 + JSON parsing on the runtime tessera uses (tokio + hyper 1.x).
* tessera: `tessera serve --model higgs=rf.tsr`, a 100-tree random forest
  (max_depth 12) trained by `tessera train` on 100,000 rows of higgs_like
  (28 features, seed 0).
* MLServer with its scikit-learn runtime (`mlserver_sklearn.SKLearnModel`)
  serving scikit-learn's RandomForestClassifier of the same shape
  (n_estimators=100, max_depth=12, random_state=0, n_jobs=2) trained on the
  same rows and saved with joblib. MLServer runs it in its fastest 2-core
  setting we found: 2 inference workers (parallel_workers), each predicting
  on one thread (the saved copy's n_jobs = 1); see MLSERVER_WORKERS below.
  MLServer is installed from PyPI (`mlserver`, `mlserver-sklearn`, with
  uvloop < 0.22, which MLServer 1.7 needs) into a virtualenv in
  target/bench-serve/venv; if that fails, its rows are left out with the
  reason and the rest still runs.

Every server gets the same load from wrk (installed with apt-get when
missing) with bench/serve_post.lua, which POSTs a fixed JSON body with
Content-Type application/json and prints the latency percentiles and the
error counts: `wrk -t2 -cC -dDs --timeout 5s`, after a 1 s warm-up run with
the same settings. After every run the script waits for the server to
answer one more request, so that what a slow server still had queued when
wrk stopped does not spill into the next run. Two cases:

* A: one real test row per request (FP32, shape [1, 28]), 64 connections;
* B: 64 real test rows per request (shape [64, 28]), 8 connections.

Server and load share 2 cores: on a machine with more, every server and
wrk are pinned with taskset to two CPUs (see --cpus). Before each load run
one real request must answer 200 with a JSON body that has `outputs`
(for tessera, the first row's label must also equal `tessera predict`'s);
a server that fails that is reported, not loaded. A load run with errors
(non-2xx answers, socket errors, timeouts) is reported as such, not as
throughput. After its load runs the resident memory of `tessera serve`
(VmRSS now and VmHWM, the peak, from /proc/PID/status) is compared with
50 MB + the model file's size.

Targets (the serving issue's): case A throughput >= 0.5x the bare hyper
server's (and so >= 100x MLServer's), case A p99 latency <= 5 ms, case B
throughput >= 0.4x the bare hyper server's, peak RSS <= 50 MB + model size.

The build, the data (target/bench-data/, made by the shared dataset
generator through bench/run.py's helpers) and the models
(target/bench-serve/) are reused by later runs. Logs of the servers are in
target/bench-serve/logs/. Python 3.9+, standard library only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import run as common  # noqa: E402  (bench/run.py: datasets, subsampling, machine line)

REPO = common.REPO
OUT = common.TARGET / "bench-serve"
VENV = OUT / "venv"
LOGS = OUT / "logs"
LUA = BENCH_DIR / "serve_post.lua"
TESSERA = common.RELEASE / "tessera"
BARE = common.RELEASE / "examples" / "bare_oip"

DATASET = "higgs_like"
LABEL = "label"
N_FEATURES = 28
TRAIN_ROWS = 100_000
RF_TREES = 100
RF_MAX_DEPTH = 12
SEED = 0
TRAIN_THREADS = 2
MODEL_NAME = "higgs"

# The two load cases: (key, rows per request, wrk connections).
CASES = [("single", 1, 64), ("batch", 64, 8)]
CASE_TEXT = {"single": "1 row, 64 connections", "batch": "64 rows, 8 connections"}
WRK_THREADS = 2
WRK_TIMEOUT = "5s"
WARMUP_S = 1

# Targets.
SINGLE_VS_BARE = 0.5
SINGLE_VS_MLSERVER = 100.0
SINGLE_P99_MS = 5.0
BATCH_VS_BARE = 0.4
RSS_BASE_BYTES = 50_000_000          # "50 MB" (10^6 bytes: the stricter reading)

READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15
# MLServer's HTTP side (uvicorn) now and then waits forever for
# "background tasks" when it stops; it is killed sooner.
MLSERVER_STOP_TIMEOUT_S = 5
MLSERVER_READY_TIMEOUT_S = 180
# uvloop 0.22 (October 2025) broke MLServer 1.7.1's inference workers: each
# one dies at start with "RuntimeError: There is no current event loop in
# thread 'MainThread'" (MLServer issue #2286, open), so no model loads. The
# last uvloop before it is kept in the virtualenv.
MLSERVER_PACKAGES = ["mlserver", "mlserver-sklearn", "uvloop<0.22"]
MLSERVER_CHECK = ("import mlserver, mlserver_sklearn, sklearn, joblib, uvloop\n"
                  "v = tuple(int(x) for x in uvloop.__version__.split('.')[:2])\n"
                  "assert v < (0, 22), 'uvloop ' + uvloop.__version__")
# MLServer's configuration for a fair 2-core comparison: its fastest one on
# 2 cores in our runs. MLServer's HTTP side (uvicorn, in the main process)
# hands each request to one of `parallel_workers` inference processes.
# With 2 workers, each predicting on one thread (the forest's n_jobs = 1),
# two requests are predicted at once, one per core: 2-3x the requests/s
# of MLServer's default of 1 worker with the forest as trained (n_jobs = 2:
# joblib's per-call thread dispatch costs more than it gains on one row,
# 36 ms against 13 ms per 1-row predict in our runs).
# 2 workers with n_jobs = 2 fell in between; 0 workers (the model in the
# HTTP event loop) was the slowest and timed out requests at 64
# connections. --mlserver-workers and --mlserver-n-jobs change it.
MLSERVER_WORKERS = 2
MLSERVER_N_JOBS = 1


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print(f"$ {shlex.join(cmd)}", flush=True)
    return subprocess.run(cmd, cwd=kw.pop("cwd", REPO), **kw)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 12) -> list[str]:
    try:
        return path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return []


def fmt_ratio(x: Optional[float]) -> str:
    """Three significant figures below 100 (so 0.498× is not shown as a
    met 0.50×), whole numbers above."""
    if x is None:
        return "n/a"
    return f"{x:#.3g}".rstrip(".") + "×" if x < 100 else f"{x:,.0f}×"


def verdict(ok: Optional[bool]) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


# --------------------------------------------------------------------------
# Tools: the build, wrk, MLServer
# --------------------------------------------------------------------------

def build(no_build: bool) -> None:
    if not no_build:
        ok = sh(["cargo", "build", "--release"]).returncode == 0
        ok = sh(["cargo", "build", "--release", "-p", "tessera-host",
                 "--example", "bare_oip"]).returncode == 0 and ok
        if not ok:
            print("  WARNING: the build failed; using the binaries already in target/release",
                  flush=True)
    missing = [rel(p) for p in (TESSERA, BARE) if not p.exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: build with `cargo build --release` and "
                 "`cargo build --release -p tessera-host --example bare_oip`")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            sys.exit("wrk is not installed and this user cannot install it "
                     "(not root, no sudo): install wrk (e.g. `apt-get install wrk`) and rerun")
        prefix = ["sudo"]
    if not shutil.which("apt-get"):
        sys.exit("wrk is not installed and there is no apt-get here: install wrk and rerun")
    print("wrk is missing; installing it with apt-get ...", flush=True)
    if sh(prefix + ["apt-get", "install", "-y", "wrk"]).returncode != 0:
        # Perhaps the package lists are old or absent.
        sh(prefix + ["apt-get", "update"])
        sh(prefix + ["apt-get", "install", "-y", "wrk"])
    found = shutil.which("wrk")
    if not found:
        sys.exit("installing wrk with apt-get failed: install wrk and rerun")
    return found


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_mlserver() -> tuple[bool, str]:
    """(installed?, reason if not). MLServer and its scikit-learn runtime go
    into their own virtualenv so that the Python running this script (and
    its scikit-learn) is left as it is."""
    check = [str(venv_python()), "-c", MLSERVER_CHECK]
    if venv_python().exists() and (VENV / "bin" / "mlserver").exists() and \
            subprocess.run(check, capture_output=True).returncode == 0:
        return True, ""
    if not venv_python().exists():
        r = sh([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if r.returncode != 0:
            return False, short("python3 -m venv failed: "
                                + (r.stderr.strip().splitlines() or ["?"])[-1])
    print(f"installing {shlex.join(MLSERVER_PACKAGES)} into {rel(VENV)} with pip "
          "(a minute or two) ...", flush=True)
    r = sh([str(venv_python()), "-m", "pip", "install", "--quiet", *MLSERVER_PACKAGES],
           capture_output=True, text=True)
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.splitlines()
                 if ln.strip() and "WARNING" not in ln and "notice" not in ln]
        return False, short(f"pip install {shlex.join(MLSERVER_PACKAGES)} failed"
                            + (f": {lines[-1]}" if lines else ""))
    c = subprocess.run(check, capture_output=True, text=True)
    if c.returncode != 0:
        return False, short("MLServer does not import after pip install: "
                            + (c.stderr.strip().splitlines() or ["?"])[-1])
    return True, ""


def venv_versions() -> dict[str, str]:
    code = ("import json, importlib.metadata as m\n"
            "out = {}\n"
            "for d in ('mlserver', 'mlserver-sklearn', 'scikit-learn', 'numpy', 'uvicorn',\n"
            "          'uvloop'):\n"
            "    try: out[d] = m.version(d)\n"
            "    except Exception: pass\n"
            "print(json.dumps(out))")
    r = subprocess.run([str(venv_python()), "-c", code], capture_output=True, text=True)
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        return {}


def tool_version(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (r.stdout.strip() or r.stderr.strip()).splitlines()
    return lines[0].strip() if lines else "?"


def pin_prefix(cpus: str) -> tuple[list[str], str]:
    """The taskset prefix that keeps servers and load on two CPUs, and a
    line saying what was done."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:
        allowed = list(range(os.cpu_count() or 1))
    if cpus == "all":
        return [], f"not pinned ({len(allowed)} CPUs)"
    if cpus == "auto":
        if len(allowed) <= 2:
            return [], f"not pinned: the machine has {len(allowed)} CPUs"
        cpus = ",".join(str(c) for c in allowed[:2])
    if not shutil.which("taskset"):
        return [], f"not pinned: no taskset ({len(allowed)} CPUs)"
    return ["taskset", "-c", cpus], f"servers and wrk pinned to CPUs {cpus} (taskset)"


# --------------------------------------------------------------------------
# Data and models
# --------------------------------------------------------------------------

def read_rows(test: Path, n: int) -> tuple[list[str], list[list[str]]]:
    """The header and the first `n` rows of the test file, as text."""
    with open(test, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        rows = [row for _, row in zip(range(n), r)]
    return header, rows


def write_bodies(header: list[str], rows: list[list[str]]) -> dict[str, Path]:
    """The request bodies of the two cases: the features of the first 1 and
    64 test rows (the label column left out) as an FP32 tensor named
    `input`."""
    feats = [i for i, name in enumerate(header) if name != LABEL]
    if len(feats) != N_FEATURES:
        sys.exit(f"expected {N_FEATURES} feature columns in the test file, found {len(feats)}")
    bodies = {}
    for key, n, _ in CASES:
        data = [float(rows[r][i]) for r in range(n) for i in feats]
        body = {"inputs": [{"name": "input", "shape": [n, N_FEATURES], "datatype": "FP32",
                            "data": data}]}
        path = OUT / f"body.{key}.json"
        path.write_text(json.dumps(body, separators=(",", ":")))
        bodies[key] = path
    return bodies


def train_tessera(train: Path) -> Path:
    """The tessera forest, retrained when the tessera binary is newer."""
    model = OUT / f"rf{RF_TREES}-d{RF_MAX_DEPTH}-{TRAIN_ROWS}.tsr"
    if model.exists() and model.stat().st_mtime >= TESSERA.stat().st_mtime:
        print(f"reusing {rel(model)}", flush=True)
        return model
    r = sh([str(TESSERA), "train", "--learner", "random_forest", "--data", str(train),
            "--target", LABEL, "--set", f"n_estimators={RF_TREES}",
            "--set", f"max_depth={RF_MAX_DEPTH}", "--seed", str(SEED),
            "--threads", str(TRAIN_THREADS), "--out", str(model)])
    if r.returncode != 0:
        sys.exit("tessera train failed")
    return model


def tessera_first_label(model: Path, header: list[str], row: list[str]) -> Optional[str]:
    """What `tessera predict` answers for the first test row (None if it fails)."""
    one = OUT / "first_row.csv"
    with open(one, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerow(row)
    r = subprocess.run([str(TESSERA), "predict", "--model", str(model), "--data", str(one),
                        "--threads", "1"], capture_output=True, text=True, cwd=REPO)
    lines = [ln.strip() for ln in r.stdout.strip().splitlines() if ln.strip()]
    if r.returncode != 0 or len(lines) < 2:
        print(f"  ! tessera predict failed: {short(r.stderr)}", flush=True)
        return None
    # A header line, then one line per row; the first column is the label.
    return lines[1].split(",")[0]


SKLEARN_TRAIN = r"""
import json, sys, time
import numpy as np, joblib, sklearn
from sklearn.ensemble import RandomForestClassifier
train, out, meta_path = sys.argv[1], sys.argv[2], sys.argv[3]
meta = json.loads(sys.argv[4])
with open(train) as f:
    header = f.readline().strip().split(",")
data = np.loadtxt(train, delimiter=",", skiprows=1, dtype=np.float32)
y_col = header.index(meta["label"])
X = np.delete(data, y_col, axis=1)
y = data[:, y_col].astype(np.int64)
est = RandomForestClassifier(n_estimators=meta["n_estimators"], max_depth=meta["max_depth"],
                             random_state=meta["seed"], n_jobs=meta["n_jobs"])
t0 = time.perf_counter()
est.fit(X, y)
meta["fit_seconds"] = time.perf_counter() - t0
meta["sklearn"] = sklearn.__version__
joblib.dump(est, out)
with open(meta_path, "w") as f:
    json.dump(meta, f)
"""

# The served copy: the same forest with n_jobs set to the threads one
# predict call may use under MLServer.
SKLEARN_SERVE_COPY = r"""
import sys, joblib
est = joblib.load(sys.argv[1])
est.n_jobs = int(sys.argv[3])
joblib.dump(est, sys.argv[2])
"""


def train_sklearn(train: Path, model_dir: Path,
                  serve_n_jobs: int) -> tuple[Optional[Path], str]:
    """scikit-learn's forest for MLServer, trained by the virtualenv's own
    scikit-learn (a joblib file loads reliably only into the version that
    wrote it) and reused while the parameters and that version are the
    same; returns the copy MLServer serves (n_jobs = serve_n_jobs)."""
    trained = OUT / "sklearn-rf.joblib"
    meta_path = OUT / "sklearn-rf.meta.json"
    served = model_dir / "model.joblib"
    meta = {"label": LABEL, "n_estimators": RF_TREES, "max_depth": RF_MAX_DEPTH,
            "seed": SEED, "n_jobs": TRAIN_THREADS, "train": rel(train)}
    sk = venv_versions().get("scikit-learn")
    reuse = False
    try:
        old = json.loads(meta_path.read_text())
        reuse = trained.exists() and old.get("sklearn") == sk and \
            all(old.get(k) == v for k, v in meta.items())
    except (OSError, json.JSONDecodeError):
        pass
    if reuse:
        print(f"reusing {rel(trained)}", flush=True)
    else:
        print("training scikit-learn's RandomForestClassifier for MLServer ...", flush=True)
        r = subprocess.run([str(venv_python()), "-c", SKLEARN_TRAIN, str(train), str(trained),
                            str(meta_path), json.dumps(meta)], capture_output=True, text=True)
        if r.returncode != 0:
            return None, short("training scikit-learn's forest failed: "
                               + (r.stderr.strip().splitlines() or ["?"])[-1])
    model_dir.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(venv_python()), "-c", SKLEARN_SERVE_COPY, str(trained), str(served),
                        str(serve_n_jobs)], capture_output=True, text=True)
    if r.returncode != 0:
        return None, short("writing the served copy of scikit-learn's forest failed: "
                           + (r.stderr.strip().splitlines() or ["?"])[-1])
    return served, ""


def mlserver_config(model: Path, http_port: int, workers: int) -> Path:
    """MLServer's settings.json and the model's model-settings.json; returns
    the folder to start MLServer in."""
    root = OUT / "mlserver"
    grpc_port, metrics_port = free_port(), free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": http_port,
        # gRPC cannot be turned off: it gets a free port of its own.
        "grpc_port": grpc_port,
        # No Prometheus endpoint (and so no metrics server or middleware).
        "metrics_endpoint": None,
        "metrics_port": metrics_port,
        "parallel_workers": workers,
        "debug": False,
        "load_models_at_startup": True,
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model.resolve()), "version": "1"},
    }
    (model.parent / "model-settings.json").write_text(json.dumps(model_settings, indent=2)
                                                      + "\n")
    return root


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------

@dataclass
class Server:
    key: str                       # "bare" | "tessera" | "mlserver"
    name: str                      # as shown in the table
    cmd: list[str]
    port: int
    ready_path: str
    ready_timeout: float = READY_TIMEOUT_S
    stop_timeout: float = STOP_TIMEOUT_S
    cwd: Path = REPO
    proc: Optional[subprocess.Popen] = None
    log: Optional[Path] = None
    exit_code: Optional[int] = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def infer_url(self) -> str:
        return self.url(f"/v2/models/{MODEL_NAME}/infer")


def start(s: Server, pin: list[str]) -> tuple[bool, str]:
    LOGS.mkdir(parents=True, exist_ok=True)
    s.log = LOGS / f"{s.key}.log"
    cmd = pin + s.cmd
    print(f"$ {shlex.join(cmd)}   (log: {rel(s.log)})", flush=True)
    with open(s.log, "wb") as log:
        try:
            # Its own session: stopping it stops its children (MLServer's
            # workers) too.
            s.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=s.cwd,
                                      start_new_session=True)
        except OSError as e:
            return False, f"cannot start: {e}"
    deadline = time.monotonic() + s.ready_timeout
    while time.monotonic() < deadline:
        if s.proc.poll() is not None:
            lines = tail(s.log, 60)
            errors = [ln for ln in lines if "error" in ln.lower()]
            last = (errors or lines or ["no output"])[-1]
            return False, short(f"exited with status {s.proc.returncode} before it was "
                                f"ready: {last}", 160)
        try:
            with urllib.request.urlopen(s.url(s.ready_path), timeout=2) as r:
                if r.status == 200:
                    return True, ""
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return False, f"not ready after {s.ready_timeout:.0f} s ({s.ready_path})"


def stop(s: Server) -> None:
    p = s.proc
    if p is None or s.exit_code is not None:
        return
    if p.poll() is None:
        # SIGTERM to the server alone: it stops its own workers (MLServer's
        # hang when they get the signal too).
        try:
            os.kill(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=s.stop_timeout)
        except subprocess.TimeoutExpired:
            print(f"  ({s.name} still ran {s.stop_timeout:g} s after SIGTERM: killed)",
                  flush=True)
    # Whatever is left of its process group (workers) goes now.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    s.exit_code = p.wait()


def post(url: str, body: bytes, timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def probe(s: Server, body: Path, expect_label: Optional[str]) -> tuple[bool, str]:
    """One real request: 200, a JSON body with outputs, and (when given)
    the first row's label."""
    try:
        status, raw = post(s.infer_url, body.read_bytes())
    except (urllib.error.URLError, OSError) as e:
        return False, f"the check request failed: {e}"
    if status != 200:
        return False, short(f"the check request answered {status}: "
                            f"{raw.decode(errors='replace')}")
    try:
        answer = json.loads(raw)
    except json.JSONDecodeError:
        return False, short(f"the check request's answer is not JSON: "
                            f"{raw.decode(errors='replace')}")
    outputs = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(outputs, list) or not outputs:
        return False, short(f"the check request's answer has no outputs: {answer}")
    if expect_label is not None:
        label = next((o for o in outputs if o.get("name") == "label"), None)
        if label is None or not label.get("data"):
            return False, "the answer has no `label` output"
        got = label["data"][0]
        try:
            same = float(got) == float(expect_label)
        except (TypeError, ValueError):
            same = str(got) == expect_label
        if not same:
            return False, (f"first row's label {got!r} differs from tessera predict's "
                           f"{expect_label!r}")
    return True, ""


def drain(s: Server, body: Path) -> None:
    """Waits until the server has worked off what a wrk run left queued.
    wrk stops at its deadline and closes its connections, but a server may
    still be working through the requests it had read (a slow server has up
    to one per connection); the next run would then compete with them. The
    answer to one more request comes after those."""
    t0 = time.monotonic()
    try:
        post(s.infer_url, body.read_bytes(), timeout=300)
    except (urllib.error.URLError, OSError) as e:
        print(f"  ! {s.name}: no answer after the run: {e}", flush=True)
        return
    waited = time.monotonic() - t0
    if waited > 1:
        print(f"    (the server was busy for another {waited:.1f} s after the run)", flush=True)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of one process, in bytes."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return out


def group_rss(pgid: int) -> Optional[int]:
    """The sum of VmRSS over a process group (a server and its workers;
    pages they share are counted once per process)."""
    total, seen = 0, False
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            # The fields after the command name (which may hold spaces).
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != pgid:
                continue
        except (OSError, ValueError, IndexError):
            continue
        rss = proc_status(int(d)).get("VmRSS")
        if rss is not None:
            total += rss
            seen = True
    return total if seen else None


# --------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------

def wrk_command(wrk: str, pin: list[str], url: str, body: Path, conns: int,
                seconds: int) -> list[str]:
    """The wrk command line of one load run (also used by bench/remote.py)."""
    return pin + [wrk, f"-t{WRK_THREADS}", f"-c{conns}", f"-d{seconds}s", "--timeout",
                  WRK_TIMEOUT, "-s", str(LUA), url, "--", str(body)]


def run_wrk(wrk: str, pin: list[str], url: str, body: Path, conns: int,
            seconds: int) -> dict[str, Any]:
    cmd = wrk_command(wrk, pin, url, body, conns, seconds)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                           cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"wrk did not finish within {seconds + 60} s", "cmd": cmd}
    return wrk_summary(cmd, r.returncode, r.stdout, r.stderr)


def wrk_summary(cmd: list[str], returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The figures of a finished wrk run, from serve_post.lua's summary line
    (also used by bench/remote.py, which runs wrk in the background)."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("SERVE_BENCH ")), None)
    if returncode != 0 or line is None:
        why = (stderr.strip() or stdout.strip()).splitlines()
        return {"error": short(f"wrk failed (exit {returncode}): "
                               + (why[-1] if why else "no output")), "cmd": cmd}
    res = json.loads(line[len("SERVE_BENCH "):])
    res["cmd"] = cmd
    seconds_run = res["duration_us"] / 1e6
    res["requests_per_s"] = res["requests"] / seconds_run if seconds_run > 0 else 0.0
    res["error_count"] = sum(res["errors"].values())
    res["p50_ms"] = res["latency_us"]["p50"] / 1000
    res["p99_ms"] = res["latency_us"]["p99"] / 1000
    return res


@dataclass
class Row:
    server: str
    key: str
    case: str
    status: str = "ok"             # "ok" | "not run" | "errors"
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> Optional[float]:
        return self.result.get("requests_per_s") if self.status == "ok" else None


def bench_server(s: Server, wrk: str, pin: list[str], bodies: dict[str, Path],
                 seconds: int, expect_label: Optional[str]) -> tuple[list[Row], dict[str, Any]]:
    """Starts the server, checks it, loads it with both cases, reads its
    memory; always stops it. Returns the rows and extra facts."""
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    print(f"\n== {s.name}", flush=True)
    try:
        ok, why = start(s, pin)
        if not ok:
            print(f"  ! {s.name}: {why}", flush=True)
            for line in tail(s.log, 8) if s.log else []:
                print(f"  !   {line}", flush=True)
            return [Row(s.name, s.key, c, "not run", why) for c, _, _ in CASES], extra
        for case, _, conns in CASES:
            ok, why = probe(s, bodies[case], expect_label if case == "single" else None)
            if not ok:
                print(f"  ! {s.name}, {CASE_TEXT[case]}: {why}", flush=True)
                rows.append(Row(s.name, s.key, case, "not run", why))
                continue
            run_wrk(wrk, pin, s.infer_url, bodies[case], conns, WARMUP_S)
            drain(s, bodies[case])
            print(f"  {CASE_TEXT[case]}: wrk {seconds} s ...", flush=True)
            res = run_wrk(wrk, pin, s.infer_url, bodies[case], conns, seconds)
            drain(s, bodies[case])
            if "error" in res:
                print(f"  ! {res['error']}", flush=True)
                rows.append(Row(s.name, s.key, case, "not run", res["error"], res))
                continue
            row = Row(s.name, s.key, case, result=res)
            if res["error_count"]:
                row.status = "errors"
                row.reason = ", ".join(f"{k} {v}" for k, v in res["errors"].items() if v)
            elif res["requests"] == 0:
                row.status = "errors"
                row.reason = "no request answered within the run"
            print(f"    {res['requests_per_s']:,.0f} requests/s, p50 {res['p50_ms']:.2f} ms, "
                  f"p99 {res['p99_ms']:.2f} ms, errors {res['error_count']}", flush=True)
            rows.append(row)
        if s.proc is not None and s.proc.poll() is None:
            st = proc_status(s.proc.pid)
            extra = {"vm_rss": st.get("VmRSS"), "vm_hwm": st.get("VmHWM"),
                     "group_rss": group_rss(s.proc.pid)}
    finally:
        stop(s)
    extra["exit_code"] = s.exit_code
    return rows, extra


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def mb(b: Optional[float]) -> str:
    return "n/a" if b is None else f"{b / 1e6:.1f} MB"


def find(rows: list[Row], key: str, case: str) -> Optional[Row]:
    return next((r for r in rows if r.key == key and r.case == case), None)


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def markdown(rows: list[Row], servers: list[tuple[str, str]]) -> list[str]:
    out = ["| server | case | requests/s | p50 ms | p99 ms | errors | vs bare hyper |",
           "|---|---|--:|--:|--:|--:|--:|"]
    for key, name in servers:
        for case, _, _ in CASES:
            r = find(rows, key, case)
            if r is None:
                continue
            bare = find(rows, "bare", case)
            if r.status == "not run":
                out.append(f"| {name} | {CASE_TEXT[case]} | not run: {r.reason} | | | | |")
                continue
            res = r.result
            rps = (f"{res['requests_per_s']:,.0f}" if r.status == "ok"
                   else f"errors ({res['requests_per_s']:,.0f} answers/s, not throughput)")
            vs = fmt_ratio(ratio(r.rps, bare.rps if bare else None))
            errs = str(res["error_count"]) + (f" ({r.reason})" if r.reason else "")
            out.append(f"| {name} | {CASE_TEXT[case]} | {rps} | {res['p50_ms']:.2f} | "
                       f"{res['p99_ms']:.2f} | {errs} | {vs} |")
    return out


def targets(rows: list[Row], rss: dict[str, Any]) -> list[dict[str, Any]]:
    def rps(key: str, case: str) -> Optional[float]:
        r = find(rows, key, case)
        return r.rps if r else None

    t_single, b_single = rps("tessera", "single"), rps("bare", "single")
    t_batch, b_batch = rps("tessera", "batch"), rps("bare", "batch")
    m_single = rps("mlserver", "single")
    t_row = find(rows, "tessera", "single")
    p99 = t_row.result.get("p99_ms") if t_row and t_row.status == "ok" else None
    out = []

    def add(text: str, value: Optional[float], ok: Optional[bool], shown: str) -> None:
        out.append({"target": text, "value": value, "met": ok, "shown": shown})

    r = ratio(t_single, b_single)
    add(f"1 row at 64 connections: tessera ≥ {SINGLE_VS_BARE:g}× bare hyper's requests/s", r,
        None if r is None else r >= SINGLE_VS_BARE, fmt_ratio(r))
    r = ratio(t_single, m_single)
    add(f"1 row at 64 connections: tessera ≥ {SINGLE_VS_MLSERVER:g}× MLServer's requests/s", r,
        None if r is None else r >= SINGLE_VS_MLSERVER, fmt_ratio(r))
    add(f"1 row at 64 connections: tessera's p99 latency ≤ {SINGLE_P99_MS:g} ms", p99,
        None if p99 is None else p99 <= SINGLE_P99_MS,
        "n/a" if p99 is None else f"{p99:.2f} ms")
    r = ratio(t_batch, b_batch)
    add(f"64 rows at 8 connections: tessera ≥ {BATCH_VS_BARE:g}× bare hyper's requests/s", r,
        None if r is None else r >= BATCH_VS_BARE, fmt_ratio(r))
    hwm, size = rss.get("vm_hwm"), rss.get("model_bytes")
    bound = RSS_BASE_BYTES + size if size is not None else None
    add("memory: tessera serve's peak RSS (VmHWM) ≤ 50 MB + the model file's size", hwm,
        None if hwm is None or bound is None else hwm <= bound,
        "n/a" if hwm is None else f"{mb(hwm)} (bound {mb(bound)})")
    return out


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per load run (default 10)")
    ap.add_argument("--quick", action="store_true", help="3 s load runs")
    ap.add_argument("--skip-mlserver", action="store_true", help="no MLServer rows")
    ap.add_argument("--servers", default="bare,tessera,mlserver",
                    help="the servers to run, from bare,tessera,mlserver (default all)")
    ap.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    ap.add_argument("--no-build", action="store_true",
                    help="use the binaries already in target/release")
    ap.add_argument("--cpus", default="auto",
                    help="CPUs for servers and wrk (taskset list, e.g. 0,1); 'auto' (default): "
                         "the first two this script may use when there are more than two; "
                         "'all': no pinning")
    ap.add_argument("--mlserver-workers", type=int, default=MLSERVER_WORKERS,
                    help=f"MLServer's parallel_workers (default {MLSERVER_WORKERS})")
    ap.add_argument("--mlserver-n-jobs", type=int, default=MLSERVER_N_JOBS,
                    help="n_jobs of the scikit-learn forest MLServer serves, i.e. the threads "
                         f"of each predict call (default {MLSERVER_N_JOBS}; trained with "
                         f"{TRAIN_THREADS})")
    ap.add_argument("--serve-args", default="",
                    help="extra arguments for `tessera serve` (one shell-quoted string)")
    ap.add_argument("--datasets-script", default=common.DEFAULT_DATASETS_SCRIPT)
    a = ap.parse_args(argv)
    seconds = 3 if a.quick else a.duration
    chosen = {x.strip() for x in a.servers.split(",") if x.strip()}
    unknown = chosen - {"bare", "tessera", "mlserver"}
    if unknown or not chosen:
        sys.exit(f"--servers: unknown {', '.join(sorted(unknown)) or '(empty)'}; "
                 "choose from bare,tessera,mlserver")
    if a.skip_mlserver:
        chosen.discard("mlserver")

    # SIGTERM (and SIGHUP) end the run like Ctrl-C does, through the
    # finally blocks that stop the servers.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    OUT.mkdir(parents=True, exist_ok=True)
    build(a.no_build)
    wrk = ensure_wrk()
    pin, pin_note = pin_prefix(a.cpus)

    common.ensure_datasets((REPO / a.datasets_script).resolve(), [DATASET], False, 3600)
    train_full, test = common.dataset_paths(DATASET, False)
    train = common.subsample(train_full, TRAIN_ROWS)
    header, test_rows = read_rows(test, max(n for _, n, _ in CASES))
    bodies = write_bodies(header, test_rows)

    # tessera: its model is trained in any case (the RSS bound needs its
    # size); the server runs when this build has `serve`.
    model = train_tessera(train)
    model_bytes = model.stat().st_size
    tessera_why = "" if "tessera" in chosen else "not chosen (--servers)"
    expect_label = None
    if not tessera_why:
        serve_help = subprocess.run([str(TESSERA), "serve", "--help"], capture_output=True,
                                    text=True, cwd=REPO)
        if serve_help.returncode != 0:
            tessera_why = ("this tessera has no `serve` command yet ("
                           + short((serve_help.stderr.strip().splitlines() or ["?"])[0], 80)
                           + ")")
        else:
            expect_label = tessera_first_label(model, header, test_rows[0])

    # MLServer.
    mls_why = "" if "mlserver" in chosen else (
        "skipped (--skip-mlserver)" if a.skip_mlserver else "not chosen (--servers)")
    mls_model: Optional[Path] = None
    versions: dict[str, str] = {}
    if not mls_why:
        ok, mls_why = ensure_mlserver()
        if ok:
            versions = venv_versions()
            mls_model, mls_why = train_sklearn(train, OUT / "mlserver" / MODEL_NAME,
                                               a.mlserver_n_jobs)

    servers: list[Server] = []
    not_run: list[tuple[str, str, str]] = []
    name_b = "bare hyper (parse JSON, fixed answer)"
    if "bare" in chosen:
        port = free_port()
        servers.append(Server("bare", name_b, [str(BARE), "--listen", f"127.0.0.1:{port}"],
                              port, "/v2/health/ready"))
    name_t = "**tessera serve**"
    if "tessera" not in chosen:
        pass
    elif tessera_why:
        print(f"\n== {name_t}\n  ! not run: {tessera_why}", flush=True)
        not_run.append(("tessera", name_t, tessera_why))
    else:
        port = free_port()
        servers.append(Server("tessera", name_t,
                              [str(TESSERA), "serve", "--model", f"{MODEL_NAME}={model}",
                               "--listen", f"127.0.0.1:{port}", *shlex.split(a.serve_args)],
                              port, "/v2/health/ready"))
    name_m = " ".join(f"MLServer {versions.get('mlserver', '')} (scikit-learn runtime)".split())
    if "mlserver" not in chosen:
        pass
    elif mls_model is None:
        print(f"\n== MLServer\n  ! not run: {mls_why}", flush=True)
        not_run.append(("mlserver", name_m, mls_why))
    else:
        port = free_port()
        root = mlserver_config(mls_model, port, a.mlserver_workers)
        servers.append(Server("mlserver", name_m,
                              [str(VENV / "bin" / "mlserver"), "start", str(root)], port,
                              f"/v2/models/{MODEL_NAME}/ready",
                              ready_timeout=MLSERVER_READY_TIMEOUT_S,
                              stop_timeout=MLSERVER_STOP_TIMEOUT_S, cwd=root))

    load_before = common.load_average()
    rows: list[Row] = []
    extras: dict[str, dict[str, Any]] = {}
    try:
        for s in servers:
            r, extra = bench_server(s, wrk, pin, bodies, seconds,
                                    expect_label if s.key == "tessera" else None)
            rows += r
            extras[s.key] = extra
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", flush=True)
        for s in servers:
            stop(s)
        return 130
    finally:
        for s in servers:
            stop(s)
    for key, name, why in not_run:
        rows += [Row(name, key, c, "not run", why) for c, _, _ in CASES]

    order = [(s.key, s.name) for s in servers] + [(k, n) for k, n, _ in not_run]
    order.sort(key=lambda kn: ["bare", "tessera", "mlserver"].index(kn[0]))
    rss = dict(extras.get("tessera", {}), model_bytes=model_bytes)
    tg = targets(rows, rss)

    print()
    print(f"OIP v2 `POST /v2/models/{MODEL_NAME}/infer`: random forest, {RF_TREES} trees, "
          f"max_depth {RF_MAX_DEPTH}, trained on {TRAIN_ROWS:,} rows of {DATASET} "
          f"({N_FEATURES} features). Load: wrk -t{WRK_THREADS}, {seconds} s per run after a "
          f"{WARMUP_S} s warm-up, bench/serve_post.lua; {pin_note}.")
    load = f"{load_before:.1f}" if load_before is not None else "?"
    print(f"Machine: {common.machine_line()}; load average before the runs: {load}. "
          f"{tool_version([wrk, '--version'])}.")
    if versions:
        print("MLServer side: " + ", ".join(f"{k} {v}" for k, v in versions.items())
              + f"; parallel_workers {a.mlserver_workers}, the forest's n_jobs "
              f"{a.mlserver_n_jobs}.")
    print()
    for line in markdown(rows, order):
        print(line)
    print()
    for case, _, _ in CASES:
        t, m = find(rows, "tessera", case), find(rows, "mlserver", case)
        r = ratio(t.rps if t else None, m.rps if m else None)
        print(f"- tessera ÷ MLServer, {CASE_TEXT[case]}: {fmt_ratio(r)}")
    if "tessera" in extras:
        e = extras["tessera"]
        print(f"- tessera serve memory after the load runs: VmRSS {mb(e.get('vm_rss'))}, "
              f"peak VmHWM {mb(e.get('vm_hwm'))}; model file {mb(model_bytes)}; "
              f"bound 50 MB + model = {mb(RSS_BASE_BYTES + model_bytes)}")
        if e.get("exit_code") not in (0, None):
            print(f"- tessera serve exited with status {e['exit_code']} on SIGTERM "
                  "(expected 0)")
    if "mlserver" in extras and extras["mlserver"].get("group_rss"):
        print(f"- MLServer memory after the load runs (its processes' VmRSS added up): "
              f"{mb(extras['mlserver']['group_rss'])}")
    print()
    print("Targets:")
    for t in tg:
        print(f"- {t['target']}: {t['shown']} — {verdict(t['met'])}")

    if a.json:
        out = {
            "settings": {"duration_s": seconds, "warmup_s": WARMUP_S,
                         "wrk_threads": WRK_THREADS, "wrk_timeout": WRK_TIMEOUT,
                         "pinning": pin_note, "mlserver_parallel_workers": a.mlserver_workers,
                         "mlserver_forest_n_jobs": a.mlserver_n_jobs,
                         "model": {"trees": RF_TREES, "max_depth": RF_MAX_DEPTH,
                                   "train_rows": TRAIN_ROWS, "dataset": DATASET,
                                   "seed": SEED},
                         "cases": {c: {"rows": n, "connections": k} for c, n, k in CASES}},
            "machine": common.machine_line(), "platform": platform.platform(),
            "load_average_before": load_before,
            "versions": dict(versions, wrk=tool_version([wrk, "--version"])),
            "rows": [{"server": r.server, "key": r.key, "case": r.case, "status": r.status,
                      "reason": r.reason,
                      **{k: v for k, v in r.result.items() if k != "cmd"},
                      "wrk_command": shlex.join(r.result["cmd"]) if "cmd" in r.result else None}
                     for r in rows],
            "tessera_memory": rss,
            "servers": {k: {kk: vv for kk, vv in v.items()} for k, v in extras.items()},
            "targets": [{k: v for k, v in t.items() if k != "shown"} for t in tg],
        }
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {a.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
