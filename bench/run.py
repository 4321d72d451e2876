#!/usr/bin/env python3
"""tessera vs scikit-learn, LightGBM and XGBoost: fit time, predict time,
latency, accuracy, size, memory.

Usage (from anywhere; paths are relative to the repository root):

    python3 bench/run.py --quick          # small sets + the synthetic sets with --small
    python3 bench/run.py                  # every case, full sizes (higgs_like: 800k training rows)
    python3 bench/run.py --higgs-rows 200000 --only random_forest
    python3 bench/run.py --only iris,digits --threads 1
    python3 bench/run.py --only gradient_boosting,adaboost --adaboost-rows 200000
    python3 bench/run.py --only mlp       # tessera's mlp vs scikit-learn's MLP

See bench/README.md for what is measured and how. The script needs Python 3.9+
and installs scikit-learn, numpy and pandas (and lightgbm, xgboost for the
boosting cases) with pip if they are missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target"
RELEASE = TARGET / "release"
BENCH_DATA = TARGET / "bench-data"
DEFAULT_DATASETS_SCRIPT = "../shared/data/make_datasets.py"  # relative to REPO

SMALL_SETS = ["iris", "wine", "breast_cancer", "digits", "diabetes"]
REGRESSION_SETS = {"diabetes", "friedman"}
# Training rows of the synthetic sets at full size (80 % of the generated
# rows); `--quick` generates them with --small (a tenth).
FULL_TRAIN_ROWS = {"higgs_like": 800_000, "multiclass": 160_000, "friedman": 400_000}
SEED = 0
SKLEARN_LATENCY_ROWS = 200
TESSERA_LATENCY_ROWS = 1000

# Learners a case needs besides its own: bagging's and adaboost's default
# base learner.
NEEDS = {"bagging": ["decision_tree"], "adaboost": ["decision_tree"]}

# Learner name -> aliases accepted by --only.
MODEL_ALIASES = {
    "random_forest": {"random_forest", "rf", "forest"},
    "bagging": {"bagging", "bag"},
    "decision_tree": {"decision_tree", "dt", "tree"},
    "gradient_boosting": {"gradient_boosting", "gbdt", "gb", "boosting"},
    "adaboost": {"adaboost", "ada", "boosting"},
    "mlp": {"mlp", "nn"},
}

# Peer libraries: key -> display name. Every case names its peers.
PEERS = {"sklearn": "scikit-learn", "lightgbm": "LightGBM", "xgboost": "XGBoost"}
# Peer key -> (module to import, PyPI package) for the ones beyond scikit-learn.
PEER_PACKAGES = {"lightgbm": ("lightgbm", "lightgbm"), "xgboost": ("xgboost", "xgboost")}
BOOSTING_MODELS = {"gradient_boosting", "adaboost"}
MLP_MODELS = {"mlp"}

# tessera's gradient_boosting parameters (scikit-learn's
# HistGradientBoosting names); every peer gets the same values under its own
# names (see peer_estimator). No early stopping anywhere, so every tool
# builds exactly n_estimators rounds; no row or column subsampling
# (subsample and max_features 1.0; the peers' equivalents likewise).
GBDT_PARAMS = {"n_estimators": 200, "learning_rate": 0.1, "max_leaf_nodes": 31,
               "min_samples_leaf": 20, "l2_regularization": 0.0, "max_bins": 255,
               "early_stopping": False, "subsample": 1.0, "max_features": 1.0}
ADABOOST_PARAMS = {"n_estimators": 100, "learning_rate": 1.0}

# tessera's mlp parameters (scikit-learn's MLPClassifier/MLPRegressor names);
# scikit-learn gets the same values under the same names, in
# make_pipeline(StandardScaler(), MLP...) (tessera standardizes its inputs
# itself: its `standardize` defaults to true). A fixed number of epochs on
# both sides: tol 0 and n_iter_no_change above max_iter, so neither stops
# before max_iter; no early stopping (no validation split).
MLP_PARAMS = {"hidden_layer_sizes": [128, 64], "activation": "relu", "solver": "adam",
              "learning_rate_init": 0.001, "alpha": 0.0001, "batch_size": 200,
              "max_iter": 200, "tol": 0.0, "n_iter_no_change": 1000,
              "early_stopping": False, "shuffle": True}
# Epochs (max_iter) per dataset: 200 on the small sets, 20 on the synthetic ones.
MLP_EPOCHS = {"digits": 200, "breast_cancer": 200, "wine": 200, "diabetes": 200,
              "multiclass": 20, "friedman": 20}


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

@dataclass
class Case:
    model: str                 # tessera learner name
    dataset: str
    params: dict[str, Any]     # tessera's parameters; the peers get the same values
    task: str                  # "classification" | "regression"
    metrics: list[str]         # "accuracy" | "roc_auc" | "r2" | "rmse"; the first is the main one
    peers: list[str] = field(default_factory=lambda: ["sklearn"])

    @property
    def metric(self) -> str:
        return self.metrics[0]

    @property
    def name(self) -> str:
        return f"{self.model}:{self.dataset}"

    @property
    def target(self) -> str:
        return "target" if self.task == "regression" else "label"

    @property
    def boosting(self) -> bool:
        return self.model in BOOSTING_MODELS

    @property
    def mlp(self) -> bool:
        return self.model in MLP_MODELS


def make_case(model: str, dataset: str, params: dict[str, Any],
              metrics: Optional[list[str]] = None, peers: Optional[list[str]] = None) -> Case:
    task = "regression" if dataset in REGRESSION_SETS else "classification"
    if metrics is None:
        metrics = (["r2"] if task == "regression"
                   else ["roc_auc"] if dataset == "higgs_like" else ["accuracy"])
    return Case(model, dataset, params, task, metrics, peers or ["sklearn"])


def all_cases(quick: bool) -> list[Case]:
    cases = []
    for ds in SMALL_SETS:
        cases.append(make_case("random_forest", ds, {"n_estimators": 100}))
        if not quick:
            cases.append(make_case("bagging", ds, {"n_estimators": 10}))
            cases.append(make_case("decision_tree", ds, {}))
    cases.append(make_case("random_forest", "higgs_like",
                           {"n_estimators": 100, "max_features": "sqrt"}))
    # Boosting: the same sizes with --quick, on the --small sets.
    gb_peers = ["lightgbm", "xgboost", "sklearn"]
    cases.append(make_case("gradient_boosting", "higgs_like", GBDT_PARAMS,
                           ["roc_auc", "accuracy"], gb_peers))
    cases.append(make_case("gradient_boosting", "multiclass", GBDT_PARAMS,
                           ["accuracy"], gb_peers))
    cases.append(make_case("gradient_boosting", "friedman", GBDT_PARAMS,
                           ["rmse", "r2"], gb_peers))
    cases.append(make_case("adaboost", "higgs_like", ADABOOST_PARAMS,
                           ["accuracy", "roc_auc"], ["sklearn"]))
    # MLP: the same cases with --quick (the synthetic sets at --small sizes).
    for ds, epochs in MLP_EPOCHS.items():
        cases.append(make_case("mlp", ds, dict(MLP_PARAMS, max_iter=epochs)))
    return cases


# --------------------------------------------------------------------------
# Targets (the boosting and MLP issues'): tessera against one peer on one case.
# --------------------------------------------------------------------------

@dataclass
class Target:
    peer: str
    metric: str
    tolerance: float           # how much worse tessera's metric may be
    relative: bool             # tolerance as a fraction of the peer's value (RMSE)
    max_fit_ratio: Optional[float]   # tessera fit time / peer fit time (None: no fit target)
    text: str                  # the target in words
    # Batch prediction: tessera's rows/s / the peer's, at least this (None: no target).
    min_batch_speedup: Optional[float] = None
    # tessera's median single-row latency (in-process, µs), at most this.
    max_latency_us: Optional[float] = None

    def check(self, t: "Side", p: "Side",
              test_rows: Optional[int] = None) -> tuple[Optional[bool], str]:
        """(met?, details); met is None when a figure is missing.
        `test_rows` (the test file's rows) turns batch times into rows/s."""
        tv, pv = t.metrics.get(self.metric), p.metrics.get(self.metric)
        parts, ok = [], True
        if tv is None or pv is None:
            parts.append(f"{METRIC_NAMES[self.metric]} n/a")
            ok = None
        else:
            lower_better = self.metric in LOWER_IS_BETTER
            worse = (tv - pv) if lower_better else (pv - tv)
            limit = self.tolerance * abs(pv) if self.relative else self.tolerance
            m_ok = worse <= limit + 1e-12
            ok = ok and m_ok
            parts.append(f"{METRIC_NAMES[self.metric]} {metric_fmt(tv)} vs {metric_fmt(pv)} "
                         f"({metric_diff(self.metric, tv, pv)}): {'yes' if m_ok else 'NO'}")
        if self.max_fit_ratio is None:
            pass
        elif t.fit_s is None or p.fit_s is None or p.fit_s <= 0:
            parts.append("fit n/a")
            ok = None
        else:
            r = t.fit_s / p.fit_s
            f_ok = r <= self.max_fit_ratio
            ok = None if ok is None else (ok and f_ok)
            parts.append(f"fit {sig(t.fit_s)} s vs {sig(p.fit_s)} s "
                         f"({sig(r, 2)}×, needs ≤ {self.max_fit_ratio:g}×): "
                         f"{'yes' if f_ok else 'NO'}")
        if self.min_batch_speedup is None:
            pass
        elif not t.batch_s or not p.batch_s:
            parts.append("batch predict n/a")
            ok = None
        else:
            r = p.batch_s / t.batch_s   # = tessera's rows/s / the peer's
            b_ok = r >= self.min_batch_speedup
            ok = None if ok is None else (ok and b_ok)
            if test_rows:
                figs = (f"{sig(test_rows / t.batch_s)} vs {sig(test_rows / p.batch_s)} rows/s")
            else:
                figs = f"{sig(t.batch_s * 1e3)} vs {sig(p.batch_s * 1e3)} ms"
            parts.append(f"batch predict {figs} ({sig(r, 2)}×, needs ≥ "
                         f"{self.min_batch_speedup:g}×): {'yes' if b_ok else 'NO'}")
        if self.max_latency_us is None:
            pass
        elif t.latency_us is None:
            parts.append("1-row latency n/a")
            ok = None
        else:
            l_ok = t.latency_us <= self.max_latency_us
            ok = None if ok is None else (ok and l_ok)
            parts.append(f"1-row latency {sig(t.latency_us)} µs (needs ≤ "
                         f"{self.max_latency_us:g} µs): {'yes' if l_ok else 'NO'}")
        return ok, "; ".join(parts)


TARGETS = {
    ("gradient_boosting", "higgs_like"): Target(
        "lightgbm", "roc_auc", 0.002, False, 1.0,
        "ROC AUC ≥ LightGBM's − 0.002, fit time ≤ 1.0× LightGBM's"),
    ("gradient_boosting", "multiclass"): Target(
        "lightgbm", "accuracy", 0.005, False, 1.0,
        "accuracy ≥ LightGBM's − 0.5 points, fit time ≤ 1.0× LightGBM's"),
    ("gradient_boosting", "friedman"): Target(
        "lightgbm", "rmse", 0.01, True, 1.0,
        "RMSE ≤ 1.01 × LightGBM's, fit time ≤ 1.0× LightGBM's"),
    ("adaboost", "higgs_like"): Target(
        "sklearn", "accuracy", 0.01, False, 0.2,
        "accuracy ≥ scikit-learn's − 1 point, fit time ≤ 0.2× scikit-learn's"),
}
# MLP against scikit-learn's MLP on every case: the metric (accuracy within
# 0.5 points, R² within 0.01; "within" = not worse by more than), batch
# prediction ≥ 3× scikit-learn's rows/s, tessera's single-row latency
# ≤ 10 µs in-process; on multiclass also fit time ≤ 0.3× scikit-learn's.
MLP_BATCH_SPEEDUP = 3.0
MLP_LATENCY_US = 10.0
MLP_FIT_RATIO = {"multiclass": 0.3}


def mlp_target(dataset: str) -> Target:
    fit = MLP_FIT_RATIO.get(dataset)
    if dataset in REGRESSION_SETS:
        metric, tol, words = "r2", 0.01, "R² ≥ scikit-learn's − 0.01"
    else:
        metric, tol, words = "accuracy", 0.005, "accuracy ≥ scikit-learn's − 0.5 points"
    if fit is not None:
        words += f", fit time ≤ {fit:g}× scikit-learn's"
    words += (f", batch rows/s ≥ {MLP_BATCH_SPEEDUP:g}× scikit-learn's, "
              f"1-row latency ≤ {MLP_LATENCY_US:g} µs")
    return Target("sklearn", metric, tol, False, fit, words,
                  min_batch_speedup=MLP_BATCH_SPEEDUP, max_latency_us=MLP_LATENCY_US)


TARGETS.update({("mlp", ds): mlp_target(ds) for ds in MLP_EPOCHS})


def select_cases(cases: list[Case], only: Optional[str]) -> list[Case]:
    if not only:
        return cases
    tokens = [t.strip() for t in only.split(",") if t.strip()]

    def matches(c: Case, tok: str) -> bool:
        if ":" in tok:
            m, d = tok.split(":", 1)
            return (not m or m in MODEL_ALIASES.get(c.model, {c.model})) and (not d or d == c.dataset)
        return tok == c.dataset or tok in MODEL_ALIASES.get(c.model, {c.model})

    chosen = [c for c in cases if any(matches(c, t) for t in tokens)]
    unknown = [t for t in tokens if not any(matches(c, t) for c in cases)]
    if unknown:
        names = ", ".join(c.name for c in cases)
        sys.exit(f"--only: nothing matches {', '.join(unknown)}; cases are: {names}")
    return chosen


# --------------------------------------------------------------------------
# Running measured commands
# --------------------------------------------------------------------------

@dataclass
class Proc:
    cmd: list[str]
    rc: int
    wall: float                # seconds, spawn to reap
    maxrss_mb: float           # peak resident set of this child alone
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


def _maxrss_mb(ru_maxrss: int) -> float:
    # Linux reports KiB, macOS bytes.
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


# Peak memory. A child's ru_maxrss includes the high-water mark of the
# process it was forked from (Linux keeps it across exec), so a child of
# this Python process would never report less than this process's own RSS.
# GNU time is a small C program: wrapping each command in
# `time -f %M -o FILE` reports the command's own peak with a floor of about
# 1 MB. Without it, the rusage of wait4 is used, and this process keeps its
# own footprint small (numpy, pandas and scikit-learn are only imported by
# the worker processes); `rss_floor_mb` records what an empty command reads.
GNU_TIME: Optional[str] = None


def detect_gnu_time() -> Optional[str]:
    for cand in ("/usr/bin/time", shutil.which("gtime"), shutil.which("time")):
        if not cand or not os.path.exists(cand):
            continue
        with tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
            r = subprocess.run([cand, "-f", "%M", "-o", f.name, "true"],
                               capture_output=True)
            if r.returncode == 0:
                try:
                    int(f.read().strip().splitlines()[-1])
                    return cand
                except (ValueError, IndexError):
                    pass
    return None


def run_measured(cmd: list[str], timeout: float, env: Optional[dict] = None,
                 quiet_fail: bool = False) -> Proc:
    """Runs `cmd` in a fresh child (its own process group, killed whole on
    timeout) and returns its exit status, wall time and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        full = [GNU_TIME, "-f", "%M", "-o", rss.name, *cmd] if GNU_TIME else cmd
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 cwd=REPO, env=env, start_new_session=True)
        except OSError as e:
            proc = Proc(cmd, 127, 0.0, 0.0, "", str(e))
            if not quiet_fail:
                report_failure(proc)
            return proc
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be
            # a max over every child this script has waited for).
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            timer.cancel()
            kill()
            p.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        maxrss = _maxrss_mb(ru.ru_maxrss)
        if GNU_TIME:
            # "Command exited with non-zero status N" may precede the number.
            lines = rss.read().strip().splitlines()
            try:
                maxrss = int(lines[-1]) / 1024
            except (ValueError, IndexError):
                maxrss = float("nan")
        out.seek(0)
        err.seek(0)
        proc = Proc(cmd, p.returncode, wall, maxrss,
                    out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                    timed_out.is_set())
    if not proc.ok and not quiet_fail:
        report_failure(proc)
    return proc


def report_failure(p: Proc) -> None:
    why = f"timed out after {p.wall:.0f}s" if p.timed_out else f"exit status {p.rc}"
    print(f"    ! command failed ({why}): {shlex.join(p.cmd)}", file=sys.stderr)
    tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-15:]
    for line in tail:
        print(f"    !   {line}", file=sys.stderr)


def last_json(text: str) -> dict:
    """The last line of `text` that parses as a JSON object."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    # Pretty-printed output spans lines.
    return json.loads(text)


# --------------------------------------------------------------------------
# Dependencies, build, data
# --------------------------------------------------------------------------

def ensure_python_deps(peers: set[str]) -> None:
    """Installs scikit-learn, numpy and pandas, and the peer libraries the
    chosen cases use (lightgbm, xgboost), if the worker Python lacks them.
    Checked in a subprocess so this process stays small (see run_measured)."""
    modules = ["sklearn", "numpy", "pandas", "threadpoolctl"]
    packages = ["scikit-learn", "numpy", "pandas", "threadpoolctl"]
    for peer in sorted(peers):
        if peer in PEER_PACKAGES:
            modules.append(PEER_PACKAGES[peer][0])
            packages.append(PEER_PACKAGES[peer][1])
    missing = [pkg for mod, pkg in zip(modules, packages)
               if subprocess.run([sys.executable, "-c", f"import {mod}"],
                                 capture_output=True).returncode != 0]
    if not missing:
        return
    print(f"installing {', '.join(missing)} with pip ...", flush=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing])
    check = [sys.executable, "-c", "import " + ", ".join(modules)]
    if r.returncode != 0 or subprocess.run(check).returncode != 0:
        sys.exit(f"pip install failed; install {' '.join(packages)} and rerun")


def workspace_packages() -> dict[str, Path]:
    """Package name -> manifest folder for every workspace member."""
    r = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                       cwd=REPO, capture_output=True, text=True)
    if r.returncode == 0:
        meta = json.loads(r.stdout)
        return {p["name"]: Path(p["manifest_path"]).parent for p in meta["packages"]}
    # The workspace may be mid-edit (a member someone is still writing);
    # fall back to reading the manifests ourselves.
    print("  (cargo metadata failed; reading Cargo.toml files directly)", flush=True)
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        return {}
    out: dict[str, Path] = {}
    try:
        ws = tomllib.loads((REPO / "Cargo.toml").read_text())
        for m in ws.get("workspace", {}).get("members", []):
            try:
                man = tomllib.loads((REPO / m / "Cargo.toml").read_text())
                out[man["package"]["name"]] = REPO / m
            except (OSError, KeyError, tomllib.TOMLDecodeError):
                continue
    except (OSError, tomllib.TOMLDecodeError):
        pass
    return out


def build(timeout: float) -> None:
    pkgs = workspace_packages()
    wanted = ["tessera-host", "tessera-forest"]
    # Every learner plugin in plugins/ (tessera-bagging, and whichever
    # package provides decision_tree) if the workspace has it.
    extra = sorted(n for n, d in pkgs.items()
                   if n not in wanted and (REPO / "plugins") in d.parents)
    cmds = []
    if extra:
        cmds.append(wanted + extra)
    cmds.append(wanted)
    built = False
    for i, ps in enumerate(cmds):
        cmd = ["cargo", "build", "--release"] + [a for p in ps for a in ("-p", p)]
        print(f"$ {shlex.join(cmd)}", flush=True)
        if subprocess.run(cmd, cwd=REPO, timeout=timeout).returncode == 0:
            built = True
            break
        if i + 1 < len(cmds):
            print("  build failed; retrying without the extra plugins", flush=True)
    cmd = ["cargo", "build", "--release", "-p", "tessera-host", "--example", "latency"]
    print(f"$ {shlex.join(cmd)}", flush=True)
    example_ok = subprocess.run(cmd, cwd=REPO, timeout=timeout).returncode == 0
    if not (built and example_ok):
        if tessera_bin().exists() and latency_bin().exists():
            print("  WARNING: the build failed; using the binaries already in target/release",
                  flush=True)
        else:
            sys.exit("the build failed and there is no earlier build in target/release")


def tessera_bin() -> Path:
    return RELEASE / ("tessera.exe" if os.name == "nt" else "tessera")


def latency_bin() -> Path:
    return RELEASE / "examples" / ("latency.exe" if os.name == "nt" else "latency")


def tessera_learners() -> set[str]:
    p = run_measured([str(tessera_bin()), "plugins", "--json"], 120)
    if not p.ok:
        return set()
    # Warnings about skipped plugins go to stderr; stdout is the JSON.
    data = json.loads(p.stdout)
    return {c["name"] for pl in data.get("plugins", []) for c in pl.get("components", [])
            if c.get("kind") == "learner"}


def dataset_paths(name: str, small: bool) -> tuple[Path, Path]:
    d = BENCH_DATA / ("small" if small and name not in SMALL_SETS else "full")
    return d / f"{name}.train.csv", d / f"{name}.test.csv"


def ensure_datasets(script: Path, names: list[str], small: bool, timeout: float) -> None:
    by_dir: dict[Path, list[str]] = {}
    for n in names:
        tr, te = dataset_paths(n, small)
        if not (tr.exists() and te.exists()):
            by_dir.setdefault(tr.parent, []).append(n)
    for out_dir, todo in by_dir.items():
        if not script.exists():
            sys.exit(f"dataset generator not found: {script} (use --datasets-script PATH)")
        cmd = [sys.executable, str(script), str(out_dir), "--only", ",".join(todo)]
        if out_dir.name == "small":
            cmd.append("--small")
        print(f"$ {shlex.join(cmd)}", flush=True)
        if subprocess.run(cmd, cwd=REPO, timeout=timeout).returncode != 0:
            sys.exit("dataset generation failed")


def subsample(train: Path, rows: int, seed: int = SEED) -> Path:
    """The first line plus `rows` data lines of `train`, drawn without
    replacement with a fixed seed, in their original order."""
    out = train.with_name(train.name.replace(".train.csv", f".rows{rows}-seed{seed}.train.csv"))
    if out.exists():
        return out
    n = count_rows(train)
    if rows >= n:
        return train
    # Streamed (not read into memory) so that this process stays small.
    keep = set(random.Random(seed).sample(range(n), rows))
    tmp = out.with_suffix(".tmp")
    with open(train) as src, open(tmp, "w") as dst:
        dst.write(src.readline())
        for i, line in enumerate(src):
            if i in keep:
                dst.write(line)
    os.replace(tmp, out)
    return out


def count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


# --------------------------------------------------------------------------
# Peer worker (runs in its own process: `run.py --worker SPEC.json`)
# --------------------------------------------------------------------------

def xgb_min_child_weight(task: str, n_classes: int, min_samples_leaf: int) -> float:
    """XGBoost has no minimum row count per leaf, only a minimum hessian sum
    (`min_child_weight`). The value used: min_samples_leaf times the
    largest hessian one row can have under the loss (squared error 1,
    logistic p(1-p) <= 1/4, XGBoost's softmax 2p(1-p) <= 1/2): the loosest
    floor that still guarantees min_samples_leaf rows, equal to the others'
    rule where predictions are uncertain (p = 1/2), stricter where they are
    confident."""
    if task == "regression":
        return float(min_samples_leaf)
    return min_samples_leaf * (0.25 if n_classes <= 2 else 0.5)


def peer_estimator(spec: dict, n_classes: int):
    """The peer's estimator for `spec["model"]`, with tessera's parameters
    translated to the peer's names."""
    peer = spec.get("peer", "sklearn")
    model = spec["model"]
    clf = spec["task"] == "classification"
    params = dict(spec["params"])
    seed, n_jobs = spec["seed"], spec["threads"]
    if model == "gradient_boosting":
        p = params
        if p.get("early_stopping", False) is not False:
            raise ValueError("the benchmark runs every tool without early stopping")
        if p.get("subsample", 1.0) != 1.0 or p.get("max_features", 1.0) != 1.0:
            raise ValueError("the peers are configured without row or column subsampling")
        if peer == "lightgbm":
            import lightgbm as lgb
            kw = dict(n_estimators=p["n_estimators"], learning_rate=p["learning_rate"],
                      num_leaves=p["max_leaf_nodes"], max_depth=-1,
                      min_child_samples=p["min_samples_leaf"], reg_lambda=p["l2_regularization"],
                      reg_alpha=0.0, max_bin=p["max_bins"], subsample=1.0, subsample_freq=0,
                      colsample_bytree=1.0, n_jobs=n_jobs, random_state=seed, verbose=-1)
            if not clf:
                return lgb.LGBMRegressor(objective="regression", **kw)
            return lgb.LGBMClassifier(objective="multiclass" if n_classes > 2 else "binary", **kw)
        if peer == "xgboost":
            import xgboost as xgb
            kw = dict(tree_method="hist", grow_policy="lossguide",
                      max_leaves=p["max_leaf_nodes"], max_depth=0,
                      n_estimators=p["n_estimators"], learning_rate=p["learning_rate"],
                      max_bin=p["max_bins"],
                      min_child_weight=xgb_min_child_weight(spec["task"], n_classes,
                                                            p["min_samples_leaf"]),
                      reg_lambda=p["l2_regularization"], reg_alpha=0.0,
                      subsample=1.0, colsample_bytree=1.0, n_jobs=n_jobs, random_state=seed)
            return (xgb.XGBClassifier(**kw) if clf
                    else xgb.XGBRegressor(objective="reg:squarederror", **kw))
        if peer == "sklearn":
            from sklearn.ensemble import (HistGradientBoostingClassifier,
                                          HistGradientBoostingRegressor)
            cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
            # Threads: OpenMP, limited by OMP_NUM_THREADS in the worker's environment.
            return cls(max_iter=p["n_estimators"], learning_rate=p["learning_rate"],
                       max_leaf_nodes=p["max_leaf_nodes"], max_depth=None,
                       min_samples_leaf=p["min_samples_leaf"],
                       l2_regularization=p["l2_regularization"], max_bins=p["max_bins"],
                       early_stopping=False, random_state=seed)
        raise ValueError(f"unknown peer {peer}")
    if peer != "sklearn":
        raise ValueError(f"no {peer} counterpart for {model}")
    if model == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        if params.get("early_stopping", False) is not False:
            raise ValueError("the benchmark runs every tool without early stopping")
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        # tessera standardizes the features itself (`standardize = true`,
        # its default); scikit-learn's MLP does not, so a StandardScaler
        # goes in front. Threads: BLAS only (no n_jobs), limited by
        # OPENBLAS_NUM_THREADS / MKL_NUM_THREADS and threadpoolctl.
        cls = MLPClassifier if clf else MLPRegressor
        return make_pipeline(StandardScaler(), cls(random_state=seed, **params))
    from sklearn.ensemble import (AdaBoostClassifier, BaggingClassifier, BaggingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    if model == "adaboost":  # single-threaded in scikit-learn (no n_jobs)
        if not clf:
            raise ValueError("the benchmark's adaboost case is a classifier")
        return AdaBoostClassifier(estimator=DecisionTreeClassifier(max_depth=1),
                                  random_state=seed, **params)
    if model == "random_forest":
        cls = RandomForestClassifier if clf else RandomForestRegressor
        return cls(random_state=seed, n_jobs=n_jobs, **params)
    if model == "bagging":
        tree = DecisionTreeClassifier() if clf else DecisionTreeRegressor()
        cls = BaggingClassifier if clf else BaggingRegressor
        return cls(estimator=tree, random_state=seed, n_jobs=n_jobs, **params)
    if model == "decision_tree":  # single-threaded in scikit-learn
        cls = DecisionTreeClassifier if clf else DecisionTreeRegressor
        return cls(random_state=seed, **params)
    raise ValueError(f"no scikit-learn counterpart for {model}")


def load_xy(path: str, target: str, clf: bool):
    import numpy as np
    import pandas as pd
    df = pd.read_csv(path)
    X = np.ascontiguousarray(df.drop(columns=[target]).to_numpy(dtype=np.float32))
    y = df[target].to_numpy(dtype=np.int64 if clf else np.float64)
    return X, y


def set_n_jobs(est, n: int) -> None:
    if "n_jobs" in est.get_params(deep=False):
        est.set_params(n_jobs=n)


def blas_limits(spec: dict):
    """For the MLP (whose only threads are BLAS's): a context limiting the
    BLAS pools to the case's thread count with threadpoolctl, when it is
    installed (the worker's environment already sets OPENBLAS_NUM_THREADS
    and MKL_NUM_THREADS). Other models: no change."""
    import contextlib
    if spec["model"] not in MLP_MODELS:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=spec["threads"], user_api="blas")


def blas_pools() -> list[dict]:
    """The BLAS libraries loaded and their thread counts (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "prefix")}
            for d in threadpool_info() if d.get("user_api") == "blas"]


def worker(spec_path: str) -> int:
    import pickle
    spec = json.loads(Path(spec_path).read_text())
    clf = spec["task"] == "classification"
    res: dict[str, Any] = {}
    if spec["phase"] == "baseline":  # interpreter + imports, no data
        import numpy
        import pandas
        import sklearn
        import sklearn.ensemble  # noqa: F401
        versions = {"sklearn": sklearn.__version__, "numpy": numpy.__version__,
                    "pandas": pandas.__version__}
        for peer in spec.get("peers", []):
            if peer in PEER_PACKAGES:
                try:
                    mod = __import__(PEER_PACKAGES[peer][0])
                    versions[peer] = mod.__version__
                except ImportError:
                    pass
        print(json.dumps(versions))
        return 0
    if spec["phase"] == "fit":
        import warnings
        from sklearn.exceptions import ConvergenceWarning
        # The MLP runs a fixed number of epochs (tol 0): scikit-learn warns
        # that it did not converge, as intended.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        t = time.perf_counter()
        X, y = load_xy(spec["train"], spec["target"], clf)
        res["load_seconds"] = time.perf_counter() - t
        import numpy as np
        n_classes = int(np.unique(y).size) if clf else 0
        est = peer_estimator(spec, n_classes)
        res["estimator"] = repr(est)
        with blas_limits(spec):
            t = time.perf_counter()
            est.fit(X, y)
            res["fit_seconds"] = time.perf_counter() - t
            if spec["model"] in MLP_MODELS:
                res["blas"] = blas_pools()
                res["n_iter"] = int(est[-1].n_iter_)
        import resource
        res["maxrss_after_fit_mb"] = _maxrss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        # pickle.dump streams to the file; the bytes are those of
        # pickle.dumps(est, protocol=5).
        with open(spec["out"], "wb") as f:
            pickle.dump(est, f, protocol=5)
        res["model_bytes"] = os.path.getsize(spec["out"])
        res["n_rows"] = int(X.shape[0])
        print(json.dumps(res))
        return 0
    if spec["phase"] == "predict":
        import numpy as np
        from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
        from threadpoolctl import threadpool_limits
        with open(spec["model_path"], "rb") as f:
            est = pickle.load(f)
        X, y = load_xy(spec["test"], spec["target"], clf)
        set_n_jobs(est, spec["threads"])
        runs = []
        with blas_limits(spec):
            for _ in range(3):
                t = time.perf_counter()
                pred = est.predict(X)
                runs.append(time.perf_counter() - t)
        res["batch_runs_seconds"] = runs
        res["batch_seconds"] = min(runs)
        metrics: dict[str, float] = {}
        if clf:
            metrics["accuracy"] = float(accuracy_score(y, pred))
            if np.unique(y).size == 2:
                metrics["roc_auc"] = float(roc_auc_score(y, est.predict_proba(X)[:, 1]))
        else:
            metrics["r2"] = float(r2_score(y, pred))
            metrics["rmse"] = float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - y) ** 2)))
        res["metrics"] = metrics
        res["metric"] = metrics.get(spec["metric"])
        # Single-row latency: one row per call, one thread (as tessera's):
        # n_jobs=1 where the estimator has it, and OpenMP/BLAS pools
        # limited to 1 (HistGradientBoosting has no n_jobs).
        set_n_jobs(est, 1)
        n = min(spec["latency_rows"], X.shape[0])
        lat = []
        with threadpool_limits(limits=1):
            for i in range(min(10, n)):
                est.predict(X[i:i + 1])
            for i in range(n):
                row = X[i:i + 1]
                t = time.perf_counter()
                est.predict(row)
                lat.append((time.perf_counter() - t) * 1e6)
        lat.sort()
        res["latency_rows"] = n
        res["latency_median_us"] = statistics.median(lat)
        res["latency_p99_us"] = lat[max(math.ceil(0.99 * n), 1) - 1]
        print(json.dumps(res))
        return 0
    raise ValueError(spec["phase"])


# --------------------------------------------------------------------------
# One case, both tools
# --------------------------------------------------------------------------

@dataclass
class Side:
    fit_s: Optional[float] = None          # the tool's own fit timing
    fit_wall_s: Optional[float] = None     # the whole training process
    batch_s: Optional[float] = None        # best of 3, whole test file
    latency_us: Optional[float] = None     # median single-row predict
    latency_p99_us: Optional[float] = None
    metric: Optional[float] = None         # the case's main metric
    metrics: dict = field(default_factory=dict)   # every metric measured
    size_bytes: Optional[int] = None
    rss_mb: Optional[float] = None         # peak RSS of the training process
    note: str = ""
    extra: dict = field(default_factory=dict)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):  # a TOML array: hidden_layer_sizes=[128, 64]
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a TOML basic string


def run_tessera(case: Case, train: Path, test: Path, work: Path, threads: int,
                timeout: float, learners: set[str]) -> Side:
    s = Side()
    missing = [m for m in [case.model, *NEEDS.get(case.model, [])] if m not in learners]
    if missing:
        s.note = "learner " + " and ".join(f"`{m}`" for m in missing) + " not available"
        print(f"    tessera: n/a ({s.note})", flush=True)
        return s
    model = work / "tessera.tsr"
    report = work / "tessera.train.json"
    for f in (model, report):
        f.unlink(missing_ok=True)
    cmd = [str(tessera_bin()), "train", "--learner", case.model, "--data", str(train),
           "--target", case.target, "--task", case.task, "--seed", str(SEED),
           "--threads", str(threads), "--out", str(model), "--report", str(report)]
    for k, v in case.params.items():
        cmd += ["--set", f"{k}={toml_value(v)}"]
    p = run_measured(cmd, timeout)
    if not p.ok:
        s.note = "train failed"
        return s
    rep = json.loads(report.read_text())
    s.fit_s = rep.get("fit_seconds")
    s.fit_wall_s = p.wall
    s.rss_mb = p.maxrss_mb
    s.size_bytes = model.stat().st_size
    s.extra["train_load_seconds"] = rep.get("load_seconds")
    print(f"    tessera: fit {s.fit_s:.3f}s (process {p.wall:.3f}s, {p.maxrss_mb:.0f} MB)",
          flush=True)

    p = run_measured([str(tessera_bin()), "eval", "--model", str(model), "--data", str(test),
                      "--target", case.target, "--threads", str(threads), "--json"], timeout)
    if p.ok:
        try:
            ev = last_json(p.stdout)
            s.metrics = {k: float(ev[k]) for k in ("accuracy", "roc_auc", "r2", "rmse")
                         if isinstance(ev.get(k), (int, float))}
            s.metric = s.metrics.get(case.metric)
        except (json.JSONDecodeError, AttributeError):
            print(f"    ! cannot parse eval output: {p.stdout[-300:]}", file=sys.stderr)

    p = run_measured([str(latency_bin()), "--plugins", str(RELEASE), "--model", str(model),
                      "--data", str(test), "--rows", str(TESSERA_LATENCY_ROWS),
                      "--threads", str(threads)], timeout)
    if p.ok:
        lat = last_json(p.stdout)
        s.batch_s = lat["batch"]["best_seconds"]
        s.latency_us = lat["single_row"]["median_us"]
        s.latency_p99_us = lat["single_row"]["p99_us"]
        s.extra["latency"] = lat
    return s


def run_peer(case: Case, peer: str, train: Path, test: Path, work: Path, threads: int,
             timeout: float, omp_passive: bool = False) -> Side:
    """One peer library (scikit-learn, LightGBM, XGBoost) on one case, in
    worker processes of this script: fit (and pickle), then predict."""
    s = Side()
    label = PEERS[peer]
    pkl = work / f"{peer}.pkl"
    pkl.unlink(missing_ok=True)
    # OpenMP pools (HistGradientBoosting's, LightGBM's, XGBoost's) and BLAS
    # pools (scikit-learn's MLP: OpenBLAS or MKL under numpy) get the same
    # thread count as n_jobs.
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    if omp_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    base = {"model": case.model, "peer": peer, "task": case.task, "params": case.params,
            "seed": SEED, "threads": threads, "target": case.target, "metric": case.metric}

    def call(phase: str, **kw) -> Optional[tuple[Proc, dict]]:
        spec = work / f"{peer}.{phase}.json"
        spec.write_text(json.dumps(dict(base, phase=phase, **kw)))
        p = run_measured([sys.executable, str(Path(__file__).resolve()), "--worker", str(spec)],
                         timeout, env=env)
        if not p.ok:
            return None
        return p, last_json(p.stdout)

    r = call("fit", train=str(train), out=str(pkl))
    if r is None:
        s.note = "fit failed"
        return s
    p, res = r
    s.fit_s = res["fit_seconds"]
    s.fit_wall_s = p.wall
    s.rss_mb = p.maxrss_mb
    s.size_bytes = res["model_bytes"]
    s.extra["fit"] = res
    print(f"    {label}: fit {s.fit_s:.3f}s (process {p.wall:.3f}s, {p.maxrss_mb:.0f} MB)",
          flush=True)
    r = call("predict", test=str(test), model_path=str(pkl), latency_rows=SKLEARN_LATENCY_ROWS)
    if r is not None:
        _, res = r
        s.batch_s = res["batch_seconds"]
        s.latency_us = res["latency_median_us"]
        s.latency_p99_us = res["latency_p99_us"]
        s.metrics = res.get("metrics", {})
        s.metric = res["metric"]
        s.extra["predict"] = res
    return s


# --------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------

def sig(x: float, digits: int = 3) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    mag = math.floor(math.log10(abs(x)))
    if mag >= digits - 1:
        return f"{x:,.0f}"
    return f"{x:.{max(digits - 1 - mag, 0)}f}"


def cell(t: Optional[float], s: Optional[float], scale: float = 1.0,
         fmt=sig) -> str:
    ts = "n/a" if t is None else fmt(t * scale)
    ss = "n/a" if s is None else fmt(s * scale)
    if t is None or s is None or s == 0:
        return f"{ts} / {ss}"
    return f"{ts} / {ss} ({sig(t / s, 2)}×)"


def metric_fmt(x: float) -> str:
    return f"{x:.4f}"


def size_fmt(b: float) -> str:
    for unit, div in (("MB", 1 << 20), ("KB", 1 << 10)):
        if b >= div:
            return f"{sig(b / div)} {unit}"
    return f"{b:.0f} B"


METRIC_NAMES = {"accuracy": "accuracy", "roc_auc": "ROC AUC", "r2": "R²", "rmse": "RMSE"}
LOWER_IS_BETTER = {"rmse"}


def metric_diff(metric: str, t: float, p: float) -> str:
    """tessera − peer; for RMSE relative to the peer's value."""
    if metric in LOWER_IS_BETTER:
        return f"{(t / p - 1) * 100:+.2f} %" if p else "n/a"
    return f"{t - p:+.4f}"


def forest_table(rows: list[dict]) -> list[str]:
    out = ["Each cell: **tessera / scikit-learn (ratio tessera ÷ scikit-learn)**.", "",
           "| dataset | train rows | model | fit (s) | fit, whole process (s) "
           "| batch predict (ms) | 1-row latency, median (µs) | metric "
           "| model file | peak RSS, training (MB) |",
           "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        t, s, c = r["tessera"], r["peers"]["sklearn"], r["case"]
        metric_name = METRIC_NAMES[c.metric]
        out.append(
            f"| {c.dataset} | {r['train_rows']:,} | {c.model} "
            f"| {cell(t.fit_s, s.fit_s)} "
            f"| {cell(t.fit_wall_s, s.fit_wall_s)} "
            f"| {cell(t.batch_s, s.batch_s, 1e3)} "
            f"| {cell(t.latency_us, s.latency_us)} "
            f"| {metric_name} {cell(t.metric, s.metric, fmt=metric_fmt)} "
            f"| {cell(t.size_bytes, s.size_bytes, fmt=size_fmt)} "
            f"| {cell(t.rss_mb, s.rss_mb)} |")
    return out


def peer_label(case: Case, peer: str) -> str:
    if peer == "sklearn":
        return ("scikit-learn HistGradientBoosting" if case.model == "gradient_boosting"
                else "scikit-learn MLP" if case.mlp else "scikit-learn")
    if peer == "xgboost":
        return "XGBoost (hist)"
    return PEERS[peer]


def metric_cell(case: Case, t: Side, p: Side) -> str:
    parts = []
    for m in case.metrics:
        tv, pv = t.metrics.get(m), p.metrics.get(m)
        ts = "n/a" if tv is None else metric_fmt(tv)
        ps = "n/a" if pv is None else metric_fmt(pv)
        diff = "" if tv is None or pv is None else f" ({metric_diff(m, tv, pv)})"
        parts.append(f"{METRIC_NAMES[m]} {ts} / {ps}{diff}")
    return "; ".join(parts)


def target_check(r: dict, peer: str) -> Optional[tuple[Target, Optional[bool], str]]:
    c = r["case"]
    tg = TARGETS.get((c.model, c.dataset))
    if tg is None or tg.peer != peer or peer not in r["peers"]:
        return None
    ok, details = tg.check(r["tessera"], r["peers"][peer], r.get("test_rows"))
    return tg, ok, details


def verdict(ok: Optional[bool]) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def boosting_table(rows: list[dict]) -> list[str]:
    out = ["Each cell: **tessera / peer (ratio tessera ÷ peer)**; the metric cell gives "
           "tessera / peer (difference tessera − peer; for RMSE, relative to the peer's).", "",
           "| dataset | train rows | model | peer | fit (s) | fit, whole process (s) "
           "| batch predict (ms) | 1-row latency, median (µs) | metric "
           "| model file | peak RSS, training (MB) | target |",
           "|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in rows:
        t, c = r["tessera"], r["case"]
        for peer, s in r["peers"].items():
            chk = target_check(r, peer)
            out.append(
                f"| {c.dataset} | {r['train_rows']:,} | {c.model} | {peer_label(c, peer)} "
                f"| {cell(t.fit_s, s.fit_s)} "
                f"| {cell(t.fit_wall_s, s.fit_wall_s)} "
                f"| {cell(t.batch_s, s.batch_s, 1e3)} "
                f"| {cell(t.latency_us, s.latency_us)} "
                f"| {metric_cell(c, t, s)} "
                f"| {cell(t.size_bytes, s.size_bytes, fmt=size_fmt)} "
                f"| {cell(t.rss_mb, s.rss_mb)} "
                f"| {verdict(chk[1]) if chk else ''} |")
    return out + target_lines(rows)


def target_lines(rows: list[dict]) -> list[str]:
    """One line per target below a table: the figures and the verdict."""
    lines = []
    for r in rows:
        c = r["case"]
        tg = TARGETS.get((c.model, c.dataset))
        if tg is None:
            continue
        chk = target_check(r, tg.peer)
        head = f"- `{c.model}` on {c.dataset} vs {PEERS[tg.peer]} ({tg.text}): "
        if chk is None:
            lines.append(head + f"n/a ({PEERS[tg.peer]} not run)")
            continue
        _, ok, details = chk
        size = ""
        full = FULL_TRAIN_ROWS.get(c.dataset)
        if full and r["train_rows"] != full:
            size = (f" — measured at {r['train_rows']:,} training rows; "
                    f"the target is stated for {full:,}")
        lines.append(head + f"**{verdict(ok).strip('*')}** — {details}{size}")
    return ["", "Targets:", "", *lines] if lines else []


def rows_per_s(rows: Optional[int], seconds: Optional[float]) -> Optional[float]:
    return rows / seconds if rows and seconds else None


def mlp_table(rows: list[dict]) -> list[str]:
    """tessera's mlp against scikit-learn's MLP (StandardScaler + MLP);
    batch prediction as rows/s (higher is better), as its target is stated."""
    out = ["Each cell: **tessera / scikit-learn (ratio tessera ÷ scikit-learn)**; "
           "batch predict in rows/s (a ratio above 1 means tessera is faster there); "
           "the metric cell gives tessera / scikit-learn (difference tessera − scikit-learn).",
           "",
           "| dataset | train rows | epochs | fit (s) | fit, whole process (s) "
           "| batch predict (rows/s) | 1-row latency, median (µs) | metric "
           "| model file | peak RSS, training (MB) | target |",
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in rows:
        t, c = r["tessera"], r["case"]
        s = r["peers"].get("sklearn")
        if s is None:
            continue
        chk = target_check(r, "sklearn")
        n = r.get("test_rows")
        out.append(
            f"| {c.dataset} | {r['train_rows']:,} | {c.params.get('max_iter', '?')} "
            f"| {cell(t.fit_s, s.fit_s)} "
            f"| {cell(t.fit_wall_s, s.fit_wall_s)} "
            f"| {cell(rows_per_s(n, t.batch_s), rows_per_s(n, s.batch_s))} "
            f"| {cell(t.latency_us, s.latency_us)} "
            f"| {metric_cell(c, t, s)} "
            f"| {cell(t.size_bytes, s.size_bytes, fmt=size_fmt)} "
            f"| {cell(t.rss_mb, s.rss_mb)} "
            f"| {verdict(chk[1]) if chk else ''} |")
    return out + target_lines(rows)


def target_json(r: dict) -> Optional[dict]:
    c = r["case"]
    tg = TARGETS.get((c.model, c.dataset))
    if tg is None:
        return None
    chk = target_check(r, tg.peer)
    return {"peer": tg.peer, "target": tg.text, "met": chk[1] if chk else None,
            "details": chk[2] if chk else f"{tg.peer} not run",
            "full_train_rows": FULL_TRAIN_ROWS.get(c.dataset)}


def markdown(rows: list[dict], header: str) -> str:
    out = [header]
    forest = [r for r in rows if not r["case"].boosting and not r["case"].mlp]
    boosting = [r for r in rows if r["case"].boosting]
    mlp = [r for r in rows if r["case"].mlp]
    if forest:
        out += ["", *forest_table(forest)]
    if boosting:
        out += ["", "Boosting: tessera against LightGBM, XGBoost and scikit-learn.", "",
                *boosting_table(boosting)]
    if mlp:
        out += ["", "MLP: tessera's `mlp` against scikit-learn's "
                    "`make_pipeline(StandardScaler(), MLPClassifier/MLPRegressor)`, "
                    "same parameters, fixed epochs.", "",
                *mlp_table(mlp)]
    notes = [f"- {r['case'].name}: tessera {r['tessera'].note}" for r in rows if r["tessera"].note]
    notes += [f"- {r['case'].name}: {PEERS[peer]} {s.note}"
              for r in rows for peer, s in r["peers"].items() if s.note]
    if notes:
        out += ["", "Not measured:", *notes]
    return "\n".join(out)


def load_average() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def load_note(rows: list[dict]) -> str:
    """The 1-minute load average seen before the cases, and a warning when
    other work competed for the cores (it includes this script's previous
    measurement, which fades over a minute)."""
    loads = [r["load_before"] for r in rows if r.get("load_before") is not None]
    if not loads:
        return ""
    note = (f" **Load average** (1 min) before the cases: "
            f"{min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores.")
    if max(loads) > (os.cpu_count() or 1) + 0.5:
        note += (" **The machine was busy**: with other processes on the cores, fit times "
                 "of code that synchronizes its threads often (OpenMP in LightGBM, XGBoost "
                 "and HistGradientBoosting, whose waiting threads spin by default) grew up "
                 "to 10× in our runs; rerun on a quiet machine (or with `--omp-passive`) "
                 "before comparing fit times.")
        if any(r["case"].mlp for r in rows):
            note += (" scikit-learn's MLP (OpenBLAS, whose threads also spin while they "
                     "wait) fitted 4–13× slower with 2 threads than with 1 on a busy 2-core "
                     "machine in our runs: its fit and batch figures from a busy machine are "
                     "not comparisons.")
    return note


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / (1 << 30):.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}"


def rustc_version() -> str:
    try:
        return subprocess.run(["rustc", "--version"], capture_output=True, text=True,
                              cwd=REPO).stdout.split(" (")[0].strip()
    except OSError:
        return "rustc ?"


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark tessera against scikit-learn, LightGBM and XGBoost on the same data, "
                    "threads and parameters.")
    ap.add_argument("--quick", action="store_true",
                    help="the synthetic sets with --small (higgs_like 80k, multiclass 16k, "
                         "friedman 40k training rows) and only random_forest and mlp on the "
                         "small sets")
    ap.add_argument("--higgs-rows", type=int, metavar="N",
                    help="subsample higgs_like's training rows to N (seed 0)")
    ap.add_argument("--adaboost-rows", type=int, metavar="N",
                    help="subsample higgs_like's training rows to N for the adaboost case "
                         "only (seed 0; overrides --higgs-rows there)")
    ap.add_argument("--only", metavar="CASES",
                    help="comma-separated datasets, models (random_forest, bagging, "
                         "decision_tree, gradient_boosting, adaboost, boosting = both, "
                         "mlp/nn) or model:dataset pairs")
    ap.add_argument("--peers", metavar="LIST", default=",".join(PEERS),
                    help="comma-separated peer libraries to run: sklearn, lightgbm, xgboost "
                         "(default all; each case runs those of its peers listed here)")
    ap.add_argument("--omp-passive", action="store_true",
                    help="run the peers with OMP_WAIT_POLICY=PASSIVE (OpenMP threads sleep "
                         "instead of spinning while they wait): fairer to them on a machine "
                         "shared with other work")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for every tool (tessera --threads, n_jobs, "
                         "OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS); default 2")
    ap.add_argument("--datasets-script", default=DEFAULT_DATASETS_SCRIPT, metavar="PATH",
                    help="the dataset generator, relative to the repository root "
                         f"(default {DEFAULT_DATASETS_SCRIPT})")
    ap.add_argument("--no-build", action="store_true",
                    help="use the binaries already in target/release")
    ap.add_argument("--timeout", type=float, default=3600,
                    help="seconds before one measured command is killed (default 3600)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        return worker(args.worker)
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    if args.higgs_rows is not None and args.higgs_rows < 1:
        ap.error("--higgs-rows must be at least 1")
    if args.adaboost_rows is not None and args.adaboost_rows < 1:
        ap.error("--adaboost-rows must be at least 1")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := [p for p in peers if p not in PEERS]:
        ap.error(f"--peers: unknown {', '.join(unknown)}; choose from {', '.join(PEERS)}")

    started = time.perf_counter()
    command = shlex.join(["python3", os.path.relpath(__file__, REPO) if
                          Path(__file__).resolve().is_relative_to(REPO) else __file__]
                         + (sys.argv[1:] if argv is None else argv))
    cases = select_cases(all_cases(args.quick), args.only)
    for c in cases:
        c.peers = [p for p in c.peers if p in peers]
    used_peers = {p for c in cases for p in c.peers}

    ensure_python_deps(used_peers)
    global GNU_TIME
    GNU_TIME = detect_gnu_time()

    if not args.no_build:
        build(args.timeout)
    for b in (tessera_bin(), latency_bin()):
        if not b.exists():
            sys.exit(f"{b} is missing; build it (or drop --no-build)")
    learners = tessera_learners()
    print(f"tessera learners: {', '.join(sorted(learners)) or 'none'}", flush=True)

    script = Path(args.datasets_script)
    if not script.is_absolute():
        script = (REPO / script).resolve()
    datasets = sorted({c.dataset for c in cases})
    ensure_datasets(script, datasets, args.quick, args.timeout)

    work_root = BENCH_DATA / "runs"
    work_root.mkdir(parents=True, exist_ok=True)
    # What an empty command reads as peak RSS (the measurement's floor), and
    # an idle scikit-learn worker (interpreter + imports), for scale.
    floor = run_measured(["true"], 60, quiet_fail=True)
    floor_mb = floor.maxrss_mb if floor.ok else float("nan")
    spec = work_root / "baseline.json"
    spec.write_text(json.dumps({"phase": "baseline", "task": "classification"}))
    bp = run_measured([sys.executable, str(Path(__file__).resolve()), "--worker", str(spec)],
                      max(args.timeout, 300))
    versions = last_json(bp.stdout) if bp.ok else {}
    if used_peers - {"sklearn"}:
        spec.write_text(json.dumps({"phase": "baseline", "task": "classification",
                                    "peers": sorted(used_peers)}))
        vp = run_measured([sys.executable, str(Path(__file__).resolve()), "--worker", str(spec)],
                          max(args.timeout, 300))
        if vp.ok:
            versions.update(last_json(vp.stdout))

    rows = []
    for c in cases:
        train, test = dataset_paths(c.dataset, args.quick)
        if c.model == "adaboost" and args.adaboost_rows:
            train = subsample(train, args.adaboost_rows)
        elif c.dataset == "higgs_like" and args.higgs_rows:
            train = subsample(train, args.higgs_rows)
        n_train = count_rows(train)
        work = work_root / f"{c.model}.{c.dataset}"
        work.mkdir(parents=True, exist_ok=True)
        load = load_average()
        print(f"== {c.name} ({n_train:,} training rows, {c.params or 'defaults'})"
              + (f" [load average {load:.1f}]" if load is not None else ""), flush=True)
        t = run_tessera(c, train, test, work, args.threads, args.timeout, learners)
        ps = {peer: run_peer(c, peer, train, test, work, args.threads, args.timeout,
                             args.omp_passive)
              for peer in c.peers}
        rows.append({"case": c, "train_rows": n_train, "test_rows": count_rows(test),
                     "train": str(train), "test": str(test),
                     "tessera": t, "peers": ps, "load_before": load})

    elapsed = time.perf_counter() - started
    how_rss = (f"GNU time `%M`, floor {floor_mb:.0f} MB" if GNU_TIME
               else f"wait4 rusage, floor {floor_mb:.0f} MB")
    n = args.threads
    threads = [f"tessera `--threads {n}`", f"scikit-learn `n_jobs={n}`"]
    peer_versions = ""
    if used_peers - {"sklearn"}:
        threads[1] += f" and `OMP_NUM_THREADS={n}`"
        threads += [f"{PEERS[p]} `n_jobs={n}`" for p in ("lightgbm", "xgboost")
                    if p in used_peers]
        peer_versions = "".join(f", {PEERS[p]} {versions.get(p, '?')}"
                                for p in ("lightgbm", "xgboost") if p in used_peers)
    if any(c.model == "adaboost" and "sklearn" in c.peers for c in cases):
        threads.append("scikit-learn's AdaBoost is single-threaded")
    if any(c.mlp and "sklearn" in c.peers for c in cases):
        blas = next((r["peers"]["sklearn"].extra.get("fit", {}).get("blas") for r in rows
                     if r["case"].mlp and "sklearn" in r["peers"]
                     and r["peers"]["sklearn"].extra.get("fit", {}).get("blas")), None)
        used = ""
        if blas:
            used = " (" + ", ".join(sorted({f"{b['internal_api']} {b.get('version') or '?'} "
                                           f"with {b['num_threads']} threads"
                                           for b in blas})) + ")"
        threads.append(f"scikit-learn's MLP has no `n_jobs`: its BLAS{used} gets "
                       f"`OPENBLAS_NUM_THREADS={n}`, `MKL_NUM_THREADS={n}` and "
                       f"threadpoolctl's limit {n}")
    if args.omp_passive:
        threads.append("the peers with `OMP_WAIT_POLICY=PASSIVE`")
    header = (f"**Machine:** {machine_line()}. **Threads:** {n} "
              f"({', '.join(threads)}; single-row latency with 1). **Versions:** scikit-learn "
              f"{versions.get('sklearn', '?')}{peer_versions}, numpy {versions.get('numpy', '?')}, "
              f"pandas {versions.get('pandas', '?')}, Python {platform.python_version()}, "
              f"{rustc_version()}. **Command:** `{command}` ({elapsed / 60:.1f} min). "
              f"**Peak RSS** by {how_rss}; an idle scikit-learn worker (Python + imports) "
              f"is {bp.maxrss_mb:.0f} MB.{load_note(rows)}")
    table = markdown(rows, header)
    print()
    print(table)

    out_json = BENCH_DATA / "results.json"
    out_json.write_text(json.dumps({
        "command": command, "threads": args.threads, "elapsed_seconds": elapsed,
        "versions": versions, "machine": machine_line(),
        "omp_wait_policy": "PASSIVE" if args.omp_passive else None,
        "rss_method": "gnu-time" if GNU_TIME else "wait4", "rss_floor_mb": floor_mb,
        "sklearn_baseline_rss_mb": bp.maxrss_mb if bp.ok else None,
        "cases": [{"model": r["case"].model, "dataset": r["case"].dataset,
                   "params": r["case"].params, "metric": r["case"].metric,
                   "metrics": r["case"].metrics,
                   "train": r["train"], "test": r["test"], "train_rows": r["train_rows"],
                   "test_rows": r["test_rows"],
                   "tessera": vars(r["tessera"]),
                   "sklearn": vars(r["peers"]["sklearn"]) if "sklearn" in r["peers"] else None,
                   "peers": {k: vars(v) for k, v in r["peers"].items()},
                   "target": target_json(r), "load_average_before": r["load_before"]}
                  for r in rows],
    }, indent=2, default=str))
    (BENCH_DATA / "results.md").write_text(table + "\n")
    print(f"\n(results also in {out_json.relative_to(REPO)} and "
          f"{(BENCH_DATA / 'results.md').relative_to(REPO)}; total {elapsed:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
