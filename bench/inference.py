#!/usr/bin/env python3
"""Tree-ensemble prediction speed: tessera against LightGBM, Treelite, ONNX
Runtime, TL2cgen, lleaves, XGBoost and scikit-learn, side by side in one run
on the same model, the same rows and the same thread count.

Usage (from anywhere; paths are relative to the repository root):

    python3 bench/inference.py --quick            # small sizes, about 2 minutes
    python3 bench/inference.py                    # full sizes (800k training rows, 200k test rows)
    python3 bench/inference.py --only lightgbm --peers lleaves,tl2cgen
    python3 bench/inference.py --only forest --rf-train-rows 50000 --threads 1

Case 1 (`lightgbm`, `xgboost`): a LightGBM model (200 trees x 31 leaves)
trained on higgs_like's training split, saved as
target/bench-inference/model.txt, is predicted on the test split by LightGBM
itself, Treelite's interpreter (GTIL), ONNX Runtime (onnxmltools), TL2cgen
(compiled C), lleaves (LLVM) and by tessera after `tessera import --from
lightgbm`; an XGBoost model of the same size, trained on the same rows, by
XGBoost's `inplace_predict` and by tessera after `tessera import --from
xgboost`. Case 2 (`forest`): a 100-tree random forest (max_depth 12) trained
by tessera and one trained by scikit-learn, with the latter also run by ONNX
Runtime (skl2onnx).

Every Python peer runs in a worker process of this script (with
OMP_NUM_THREADS set to --threads) so that a peer that crashes or is missing
is reported as "unavailable: <reason>" and the others still run; missing
packages are installed with pip here (never by the test suite). Every tessera
step is skippable: a command that fails shows as "not run". The tables are
printed as Markdown and every figure is written to
target/bench-inference/results.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import run as common  # noqa: E402  (bench/run.py: build, datasets, measured commands)

REPO = common.REPO
OUT = common.TARGET / "bench-inference"
DATASET = "higgs_like"
LABEL = "label"
SEED = 0

# The boosted models (case 1).
N_TREES = 200
N_LEAVES = 31
LEARNING_RATE = 0.1
# The forests (case 2): the same parameters for tessera and scikit-learn.
RF_TREES = 100
RF_MAX_DEPTH = 12

BATCH_RUNS = 3          # batch throughput: best of this many
LATENCY_CALLS = 1000    # single-row latency: median over this many calls ...
WARMUP_CALLS = 20       # ... after this many warm-up calls (tessera's latency example: 20)
DIFF_LIMIT = 1e-5       # tessera's probabilities vs the reference library's

# Sizes: full / --quick.
FULL = {"train_rows": None, "test_rows": None, "rf_train_rows": 100_000}
QUICK = {"train_rows": 20_000, "test_rows": 20_000, "rf_train_rows": 20_000}

CASES = ("lightgbm", "xgboost", "forest")
CASE_ALIASES = {"lightgbm": "lightgbm", "lgb": "lightgbm", "lgbm": "lightgbm",
                "xgboost": "xgboost", "xgb": "xgboost",
                "forest": "forest", "rf": "forest", "random_forest": "forest"}

# Peer key -> display name.
PEERS = {
    "lightgbm": "LightGBM `Booster.predict`",
    "treelite": "Treelite GTIL (interpreter)",
    "onnxruntime": "ONNX Runtime",
    "tl2cgen": "TL2cgen (compiled C, gcc)",
    "lleaves": "lleaves (LLVM)",
    "xgboost": "XGBoost `inplace_predict`",
    "sklearn": "scikit-learn `predict_proba`",
}
# Which peers run on which model.
MODEL_PEERS = {
    "lightgbm": ["lightgbm", "treelite", "onnxruntime", "tl2cgen", "lleaves"],
    "xgboost": ["xgboost"],
    "forest": ["sklearn", "onnxruntime"],
}
# The library whose predictions are the reference for each model's max abs diff.
REFERENCE = {"lightgbm": "lightgbm", "xgboost": "xgboost", "forest": "sklearn"}

# (module, pip package) pairs: what every selected case needs, and what
# each peer needs on each model.
BASE_DEPS = [("numpy", "numpy"), ("pandas", "pandas"), ("sklearn", "scikit-learn")]
CASE_DEPS = {"lightgbm": [("lightgbm", "lightgbm")], "xgboost": [("xgboost", "xgboost")],
             "forest": []}
PEER_DEPS = {
    ("lightgbm", "lightgbm"): [("lightgbm", "lightgbm")],
    ("treelite", "lightgbm"): [("treelite", "treelite")],
    ("onnxruntime", "lightgbm"): [("onnxruntime", "onnxruntime"), ("onnx", "onnx"),
                                  ("onnxmltools", "onnxmltools")],
    ("tl2cgen", "lightgbm"): [("treelite", "treelite"), ("tl2cgen", "tl2cgen")],
    ("lleaves", "lightgbm"): [("lleaves", "lleaves")],
    ("xgboost", "xgboost"): [("xgboost", "xgboost")],
    ("sklearn", "forest"): [("sklearn", "scikit-learn")],
    ("onnxruntime", "forest"): [("onnxruntime", "onnxruntime"), ("onnx", "onnx"),
                                ("skl2onnx", "skl2onnx")],
}


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def failure_reason(p: common.Proc) -> str:
    """One line saying why a command failed: the worker's own error when it
    printed one, else the last line of stderr, with the exit status."""
    if p.timed_out:
        return f"timed out after {p.wall:.0f} s"
    try:
        err = common.last_json(p.stdout).get("error")
        if err:
            return short(err)
    except (json.JSONDecodeError, ValueError, AttributeError):
        pass
    lines = [ln.strip() for ln in (p.stderr.strip() or p.stdout.strip()).splitlines()
             if ln.strip()]
    # clap and tessera print "error: ..." and then usage hints; keep the error.
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    last = errors[-1] if errors else (lines[-1] if lines else "")
    status = f"killed by signal {-p.rc}" if p.rc < 0 else f"exit {p.rc}"
    return short(f"{status}: {last}" if last else status)


def head_rows(src: Path, rows: int, dst: Path) -> Path:
    """The header and the first `rows` data lines of `src` in `dst` (or `src`
    itself when it has no more rows than that)."""
    if common.count_rows(src) <= rows:
        return src
    tmp = dst.with_suffix(".tmp")
    with open(src) as f, open(tmp, "w") as g:
        g.write(f.readline())
        for i, line in enumerate(f):
            if i >= rows:
                break
            g.write(line)
    os.replace(tmp, dst)
    return dst


def ensure_packages(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Installs the missing (module, pip package) pairs with pip, one package
    at a time so that one failure does not stop the others. Returns
    {module: reason} for those still not importable."""
    failed: dict[str, str] = {}
    seen: set[str] = set()
    todo = []
    for mod, pkg in pairs:
        if mod in seen:
            continue
        seen.add(mod)
        if importlib.util.find_spec(mod) is None:
            todo.append((mod, pkg))
    for mod, pkg in todo:
        print(f"installing {pkg} with pip ...", flush=True)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pkg],
                           capture_output=True, text=True)
        if r.returncode != 0:
            lines = [ln for ln in r.stderr.splitlines() if ln.strip()
                     and "WARNING" not in ln and "notice" not in ln]
            failed[mod] = short(f"pip install {pkg} failed"
                                + (f": {lines[-1]}" if lines else ""))
            print(f"  ! {failed[mod]}", flush=True)
            continue
        chk = subprocess.run([sys.executable, "-c", f"import {mod}"],
                             capture_output=True, text=True)
        if chk.returncode != 0:
            last = (chk.stderr.strip().splitlines() or ["?"])[-1]
            failed[mod] = short(f"import {mod} fails after pip install {pkg}: {last}")
            print(f"  ! {failed[mod]}", flush=True)
    importlib.invalidate_caches()
    return failed


# lleaves 1.3 builds its optimisation pipeline with llvmlite's legacy
# PassManagerBuilder, which llvmlite 0.45 removed. When the installed
# llvmlite lacks it, an older one is installed for lleaves alone into
# target/bench-inference/pydeps (pip --target) and put first on the lleaves
# worker's PYTHONPATH; the Python environment itself is left as it is.
LLVMLITE_FOR_LLEAVES = "llvmlite<0.45"
LLVMLITE_CHECK = "import llvmlite.binding as b; assert hasattr(b, 'PassManagerBuilder')"


def lleaves_pythonpath() -> tuple[Optional[Path], str]:
    """(folder to put first on PYTHONPATH or None, failure reason)."""
    if subprocess.run([sys.executable, "-c", LLVMLITE_CHECK],
                      capture_output=True).returncode == 0:
        return None, ""
    d = OUT / "pydeps" / "llvmlite-lt-0.45"
    env = dict(os.environ, PYTHONPATH=str(d))
    if d.exists() and subprocess.run([sys.executable, "-c", LLVMLITE_CHECK], env=env,
                                     capture_output=True).returncode == 0:
        return d, ""
    print(f"installing {LLVMLITE_FOR_LLEAVES} for lleaves into {rel(d)} with pip ...",
          flush=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--upgrade", "--target", str(d), LLVMLITE_FOR_LLEAVES],
                       capture_output=True, text=True)
    if r.returncode != 0 or subprocess.run([sys.executable, "-c", LLVMLITE_CHECK], env=env,
                                           capture_output=True).returncode != 0:
        return None, (f"lleaves needs {LLVMLITE_FOR_LLEAVES} (PassManagerBuilder) and "
                      "installing it failed")
    return d, ""


# --------------------------------------------------------------------------
# Worker (runs in its own process: `inference.py --worker SPEC.json`)
# --------------------------------------------------------------------------

def _version(dist: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _load_test(spec: dict):
    import numpy as np
    X = np.load(spec["test_x"])
    y = np.load(spec["test_y"])
    return X, y


def _scores(y, p) -> dict:
    """Accuracy (threshold 0.5) and ROC AUC of positive-class probabilities."""
    import numpy as np
    out = {"accuracy": float(np.mean((p >= 0.5).astype(np.int64) == y))}
    try:
        from sklearn.metrics import roc_auc_score
        out["roc_auc"] = float(roc_auc_score(y, p))
    except Exception:  # noqa: BLE001 - a metric is optional
        pass
    return out


def _read_csv_xy(path: str):
    """float32 features (parsed with correct rounding, as tessera does), int labels."""
    import numpy as np
    import pandas as pd
    df = pd.read_csv(path, float_precision="round_trip")
    names = [c for c in df.columns if c != LABEL]
    X = np.ascontiguousarray(df[names].to_numpy(dtype=np.float64).astype(np.float32))
    y = df[LABEL].to_numpy(dtype=np.int64)
    return X, y, names


def w_prepare(spec: dict) -> dict:
    import numpy as np
    X, y, names = _read_csv_xy(spec["test_csv"])
    np.save(spec["test_x"], X)
    np.save(spec["test_y"], y)
    return {"n_rows": int(X.shape[0]), "n_features": int(X.shape[1]), "features": names,
            "versions": {"numpy": _version("numpy"), "pandas": _version("pandas")}}


def w_train_boosters(spec: dict) -> dict:
    """Trains the LightGBM and/or XGBoost model on the training file, saves
    them, and saves each one's own probabilities on the test rows (the
    reference for the max abs diff)."""
    import numpy as np
    X, y, names = _read_csv_xy(spec["train_csv"])
    Xt, yt = _load_test(spec)
    threads = spec["threads"]
    res: dict[str, Any] = {"n_train": int(X.shape[0])}
    for which in spec["models"]:
        r: dict[str, Any] = {}
        try:
            if which == "lightgbm":
                import lightgbm as lgb
                r["version"] = lgb.__version__
                params = {"objective": "binary", "num_leaves": N_LEAVES,
                          "learning_rate": LEARNING_RATE, "max_depth": -1, "max_bin": 255,
                          "min_data_in_leaf": 20, "num_threads": threads, "seed": SEED,
                          "deterministic": True, "verbose": -1}
                t = time.perf_counter()
                ds = lgb.Dataset(X, y, feature_name=names, free_raw_data=True)
                bst = lgb.train(params, ds, num_boost_round=N_TREES)
                r["fit_seconds"] = time.perf_counter() - t
                bst.save_model(spec["lgb_model"])
                ref = np.asarray(bst.predict(Xt, num_threads=threads), dtype=np.float64)
                r["n_trees"] = bst.num_trees()
                r["params"] = params
            else:
                import xgboost as xgb
                r["version"] = xgb.__version__
                params = {"objective": "binary:logistic", "tree_method": "hist",
                          "grow_policy": "lossguide", "max_leaves": N_LEAVES, "max_depth": 0,
                          "eta": LEARNING_RATE, "max_bin": 255, "nthread": threads,
                          "seed": SEED}
                t = time.perf_counter()
                dm = xgb.QuantileDMatrix(X, y, feature_names=names, max_bin=255)
                bst = xgb.train(params, dm, num_boost_round=N_TREES)
                r["fit_seconds"] = time.perf_counter() - t
                bst.save_model(spec["xgb_model"])
                ref = np.asarray(bst.inplace_predict(Xt), dtype=np.float64).ravel()
                r["n_trees"] = int(bst.num_boosted_rounds())
                r["params"] = params
            np.save(spec[f"{which}_ref"], ref)
            r["test_scores"] = _scores(yt, ref)
        except Exception as e:  # noqa: BLE001 - reported per model
            traceback.print_exc()
            r["error"] = short(f"{type(e).__name__}: {e}")
        res[which] = r
    return res


def w_train_forest(spec: dict) -> dict:
    """scikit-learn's forest: fit, pickle, its probabilities on the test rows."""
    import pickle
    import numpy as np
    import sklearn
    from sklearn.ensemble import RandomForestClassifier
    X, y, _ = _read_csv_xy(spec["train_csv"])
    Xt, yt = _load_test(spec)
    rf = RandomForestClassifier(n_estimators=RF_TREES, max_depth=RF_MAX_DEPTH,
                                random_state=SEED, n_jobs=spec["threads"])
    t = time.perf_counter()
    rf.fit(X, y)
    fit = time.perf_counter() - t
    with open(spec["rf_model"], "wb") as f:
        pickle.dump(rf, f, protocol=5)
    ref = np.asarray(rf.predict_proba(Xt)[:, 1], dtype=np.float64)
    np.save(spec["forest_ref"], ref)
    return {"version": sklearn.__version__, "fit_seconds": fit, "n_train": int(X.shape[0]),
            "estimator": repr(rf), "test_scores": _scores(yt, ref)}


# Each peer's setup: (model kind, spec, X) -> (batch_fn, single_fn, info).
# batch_fn(X) returns the positive-class probability of every row with
# `threads` threads; single_fn(row) predicts one 1-row array with 1 thread.
# info holds the compile/convert time and anything else worth recording.

def _ort_sessions(onx_bytes: bytes, threads: int):
    import onnxruntime as ort

    def session(n: int):
        so = ort.SessionOptions()
        so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(onx_bytes, so, providers=["CPUExecutionProvider"])

    return session(threads), session(1)


def _ort_fns(onx_bytes: bytes, threads: int):
    import numpy as np
    t = time.perf_counter()
    sess, sess1 = _ort_sessions(onx_bytes, threads)
    session_s = time.perf_counter() - t
    inp = sess.get_inputs()[0].name
    # The probabilities: the 2-D float output (the other is the label).
    outs = sess.get_outputs()
    prob = next((o.name for o in outs if "prob" in o.name.lower()), outs[-1].name)

    def batch(X):
        return np.asarray(sess.run([prob], {inp: X})[0])[:, 1]

    def single(row):
        return sess1.run([prob], {inp: row})

    return batch, single, session_s


def peer_setup(peer: str, model: str, spec: dict, X) -> tuple[Callable, Callable, dict]:
    import numpy as np
    threads = spec["threads"]
    n_features = X.shape[1]
    info: dict[str, Any] = {}
    if peer == "lightgbm":
        import lightgbm as lgb
        info["version"] = lgb.__version__
        bst = lgb.Booster(model_file=spec["lgb_model"])
        return (lambda A: bst.predict(A, num_threads=threads),
                lambda r: bst.predict(r, num_threads=1), info)
    if peer == "xgboost":
        import xgboost as xgb
        info["version"] = xgb.__version__
        bst = xgb.Booster(model_file=spec["xgb_model"])
        bst.set_param({"nthread": threads})
        bst1 = xgb.Booster(model_file=spec["xgb_model"])
        bst1.set_param({"nthread": 1})
        return (lambda A: bst.inplace_predict(A), lambda r: bst1.inplace_predict(r), info)
    if peer == "treelite":
        import treelite
        info["version"] = treelite.__version__
        t = time.perf_counter()
        tl = treelite.frontend.load_lightgbm_model(spec["lgb_model"])
        info["compile_seconds"] = time.perf_counter() - t
        info["compile_what"] = "treelite.frontend.load_lightgbm_model"
        return (lambda A: treelite.gtil.predict(tl, A, nthread=threads).reshape(A.shape[0]),
                lambda r: treelite.gtil.predict(tl, r, nthread=1), info)
    if peer == "tl2cgen":
        import tl2cgen
        import treelite
        info["version"] = tl2cgen.__version__
        lib = Path(spec["work"]) / "tl2cgen" / "model.so"
        lib.parent.mkdir(parents=True, exist_ok=True)
        lib.unlink(missing_ok=True)
        params = {"parallel_comp": threads} if threads > 1 else {}
        t = time.perf_counter()
        tl = treelite.frontend.load_lightgbm_model(spec["lgb_model"])
        tl2cgen.export_lib(tl, toolchain="gcc", libpath=str(lib), params=params,
                           nthread=threads)
        info["compile_seconds"] = time.perf_counter() - t
        info["compile_what"] = (f"load + tl2cgen.export_lib(toolchain='gcc', params={params}, "
                                f"nthread={threads})")
        pred = tl2cgen.Predictor(str(lib), nthread=threads)
        pred1 = tl2cgen.Predictor(str(lib), nthread=1)
        # The compiled code compares in the model's threshold type (float64
        # for LightGBM); the DMatrix is built from the numpy array inside
        # the timed calls, as a caller holding numpy rows must.
        dtype = "float32" if str(getattr(tl, "input_type", "float64")) == "float32" \
            else "float64"
        info["dmatrix_dtype"] = dtype
        npdt = np.float64 if dtype == "float64" else np.float32
        return (lambda A: pred.predict(tl2cgen.DMatrix(A.astype(npdt, copy=False), dtype=dtype)
                                       ).reshape(A.shape[0]),
                lambda r: pred1.predict(tl2cgen.DMatrix(r.astype(npdt, copy=False),
                                                        dtype=dtype)), info)
    if peer == "lleaves":
        import lleaves
        info["version"] = _version("lleaves")
        info["llvmlite_version"] = _version("llvmlite")
        m = lleaves.Model(model_file=spec["lgb_model"])
        t = time.perf_counter()
        m.compile()
        info["compile_seconds"] = time.perf_counter() - t
        info["compile_what"] = "lleaves.Model.compile() (no cache)"
        return (lambda A: m.predict(A, n_jobs=threads), lambda r: m.predict(r, n_jobs=1), info)
    if peer == "onnxruntime":
        import onnxruntime as ort
        info["version"] = ort.__version__
        if model == "lightgbm":
            import lightgbm as lgb
            from onnxmltools import convert_lightgbm
            from onnxmltools.convert.common.data_types import FloatTensorType
            info["converter"] = f"onnxmltools {_version('onnxmltools')}"
            bst = lgb.Booster(model_file=spec["lgb_model"])
            t = time.perf_counter()
            onx = convert_lightgbm(bst, initial_types=[("input", FloatTensorType([None, n_features]))],
                                   zipmap=False)
            info["compile_seconds"] = time.perf_counter() - t
            info["compile_what"] = "onnxmltools.convert_lightgbm(zipmap=False)"
        else:
            import pickle
            from skl2onnx import to_onnx
            info["converter"] = f"skl2onnx {_version('skl2onnx')}"
            with open(spec["rf_model"], "rb") as f:
                rf = pickle.load(f)
            t = time.perf_counter()
            onx = to_onnx(rf, X[:1], options={id(rf): {"zipmap": False}})
            info["compile_seconds"] = time.perf_counter() - t
            info["compile_what"] = "skl2onnx.to_onnx(zipmap=False)"
        data = onx.SerializeToString()
        (Path(spec["work"]) / f"{model}.onnx").write_bytes(data)
        batch, single, session_s = _ort_fns(data, threads)
        info["session_seconds"] = session_s
        return batch, single, info
    if peer == "sklearn":
        import copy
        import pickle
        import sklearn
        info["version"] = sklearn.__version__
        with open(spec["rf_model"], "rb") as f:
            rf = pickle.load(f)
        rf.n_jobs = threads
        rf1 = copy.copy(rf)
        rf1.n_jobs = 1
        return (lambda A: rf.predict_proba(A)[:, 1], lambda r: rf1.predict_proba(r), info)
    raise ValueError(f"unknown peer {peer}")


def w_peer(spec: dict) -> dict:
    import numpy as np
    X, y = _load_test(spec)
    n = X.shape[0]
    peer, model = spec["peer"], spec["model"]
    batch, single, info = peer_setup(peer, model, spec, X)
    runs, p = [], None
    for _ in range(BATCH_RUNS):
        t = time.perf_counter()
        p = batch(X)
        runs.append(time.perf_counter() - t)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if p.shape[0] != n:
        raise ValueError(f"batch prediction returned {p.shape[0]} values for {n} rows")
    res: dict[str, Any] = dict(info)
    res["batch_runs_seconds"] = runs
    res["batch_rows_per_second"] = n / min(runs)
    res["n_rows"] = int(n)
    ref_path = spec.get("ref")
    if ref_path and Path(ref_path).exists():
        ref = np.load(ref_path)
        d = np.abs(p - ref)
        res["max_abs_diff"] = float(d.max())
        res["rows_over_limit"] = int((d > DIFF_LIMIT).sum())
    res["test_scores"] = _scores(y, p)
    calls = min(spec["calls"], n)
    rows = [X[i:i + 1] for i in range(calls)]
    for i in range(min(WARMUP_CALLS, n)):
        single(X[i:i + 1])
    lat = []
    clock = time.perf_counter_ns
    for r in rows:
        t0 = clock()
        single(r)
        lat.append((clock() - t0) / 1e3)
    lat.sort()
    res["single_row"] = {"calls": calls, "warmup_calls": min(WARMUP_CALLS, n), "threads": 1,
                         "median_us": float(np.median(lat)),
                         "p99_us": lat[max(math.ceil(0.99 * calls), 1) - 1],
                         "min_us": lat[0], "mean_us": float(np.mean(lat))}
    return res


def w_diff(spec: dict) -> dict:
    """Max abs diff between tessera's `predict --proba` CSV (positive class)
    and the reference probabilities."""
    import numpy as np
    import pandas as pd
    df = pd.read_csv(spec["pred_csv"], float_precision="round_trip")
    cols = [c for c in df.columns if c.startswith("proba_")]
    if not cols:
        raise ValueError(f"no proba_ column in {spec['pred_csv']}: {list(df.columns)}")
    pos = next((c for c in cols if c[len("proba_"):] in ("1", "1.0", "True", "true")), cols[-1])
    p = df[pos].to_numpy(dtype=np.float64)
    ref = np.load(spec["ref"])
    if p.shape[0] != ref.shape[0]:
        raise ValueError(f"tessera predicted {p.shape[0]} rows, the reference has {ref.shape[0]}")
    d = np.abs(p - ref)
    y = np.load(spec["test_y"])
    return {"column": pos, "max_abs_diff": float(d.max()),
            "rows_over_limit": int((d > DIFF_LIMIT).sum()), "n_rows": int(p.shape[0]),
            "test_scores": _scores(y, p)}


WORKER_PHASES = {"prepare": w_prepare, "train_boosters": w_train_boosters,
                 "train_forest": w_train_forest, "peer": w_peer, "diff": w_diff}


def worker(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        res = WORKER_PHASES[spec["phase"]](spec)
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        traceback.print_exc()
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(res))
    return 0


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.threads = args.threads
        self.timeout = args.timeout
        self.env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        self.spec_n = 0
        self.lleaves_path: Optional[Path] = None
        # False (with the reason) when the binaries are missing: every tessera row "not run".
        self.tessera_ok = True
        self.tessera_ok_reason = ""

    # -- processes ---------------------------------------------------------

    def call_worker(self, phase: str, env: Optional[dict] = None,
                    **kw) -> tuple[Optional[dict], str, float]:
        """(result, failure reason, wall seconds) of one worker process."""
        self.spec_n += 1
        spec = OUT / "specs" / f"{self.spec_n:02d}.{phase}.json"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(json.dumps(dict(phase=phase, threads=self.threads, **kw), indent=1))
        p = common.run_measured([sys.executable, str(Path(__file__).resolve()), "--worker",
                                 str(spec)], self.timeout, env=env or self.env,
                                quiet_fail=True)
        if not p.ok:
            tail = (p.stderr.strip().splitlines() or [""])[-6:]
            for line in tail:
                print(f"    !   {line}", file=sys.stderr, flush=True)
            return None, failure_reason(p), p.wall
        try:
            return common.last_json(p.stdout), "", p.wall
        except (json.JSONDecodeError, ValueError):
            return None, "unreadable worker output", p.wall

    def tessera(self, args: list[str], what: str) -> tuple[Optional[common.Proc], str]:
        cmd = [str(common.tessera_bin()), *args]
        print(f"    $ {shlex.join([rel(Path(cmd[0])), *cmd[1:]])}", flush=True)
        p = common.run_measured(cmd, self.timeout, env=self.env, quiet_fail=True)
        if not p.ok:
            reason = f"`{what}` failed ({failure_reason(p)})"
            print(f"    ! {reason}", flush=True)
            return None, reason
        return p, ""

    def latency(self, model: Path, test: Path) -> tuple[Optional[dict], str]:
        cmd = [str(common.latency_bin()), "--plugins", str(common.RELEASE), "--model", str(model),
               "--data", str(test), "--rows", str(LATENCY_CALLS), "--threads", str(self.threads)]
        print(f"    $ {shlex.join([rel(Path(c)) if i in (0, 2, 4, 6) else c for i, c in enumerate(cmd)])}",
              flush=True)
        p = common.run_measured(cmd, self.timeout, env=self.env, quiet_fail=True)
        if not p.ok:
            reason = f"latency example failed ({failure_reason(p)})"
            print(f"    ! {reason}", flush=True)
            return None, reason
        try:
            return common.last_json(p.stdout), ""
        except (json.JSONDecodeError, ValueError):
            return None, "latency example printed no JSON"

    # -- rows ----------------------------------------------------------------

    @staticmethod
    def row(tool: str, key: str, model: str) -> dict:
        return {"tool": tool, "key": key, "model": model, "status": "ok", "reason": "",
                "batch_rows_per_second": None, "single_row_median_us": None,
                "compile_seconds": None, "compile_what": None, "max_abs_diff": None,
                "diff_note": "", "version": None, "extra": {}}

    def run_peer(self, peer: str, model: str, paths: dict, unavailable: dict) -> dict:
        r = self.row(PEERS[peer] if not (peer == "onnxruntime") else
                     f"ONNX Runtime ({'onnxmltools' if model == 'lightgbm' else 'skl2onnx'})",
                     peer, model)
        missing = [unavailable[m] for m, _ in PEER_DEPS[(peer, model)] if m in unavailable]
        if missing:
            r.update(status="unavailable", reason=missing[0])
            print(f"  {r['tool']}: unavailable: {r['reason']}", flush=True)
            return r
        print(f"  {r['tool']} ...", flush=True)
        ref = paths[f"{model}_ref"]
        env = None
        if peer == "lleaves" and self.lleaves_path is not None:
            env = dict(self.env, PYTHONPATH=os.pathsep.join(
                [str(self.lleaves_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
        res, why, wall = self.call_worker(
            "peer", env=env, peer=peer, model=model, ref=str(ref) if peer != REFERENCE[model] else None,
            calls=LATENCY_CALLS, **{k: str(v) for k, v in paths.items()})
        if res is None:
            r.update(status="unavailable", reason=why)
            print(f"    unavailable: {why}", flush=True)
            return r
        r["batch_rows_per_second"] = res["batch_rows_per_second"]
        r["single_row_median_us"] = res["single_row"]["median_us"]
        r["compile_seconds"] = res.get("compile_seconds")
        r["compile_what"] = res.get("compile_what")
        r["version"] = res.get("version")
        if peer == REFERENCE[model]:
            r["diff_note"] = "reference"
        else:
            r["max_abs_diff"] = res.get("max_abs_diff")
            if r["max_abs_diff"] is None:
                r["diff_note"] = "no reference"
        r["extra"] = res
        print(f"    batch {res['batch_rows_per_second']:,.0f} rows/s, single row "
              f"{r['single_row_median_us']:.1f} µs"
              + (f", compile/convert {r['compile_seconds']:.2f} s" if r["compile_seconds"] else "")
              + (f", max abs diff {r['max_abs_diff']:.2e}" if r["max_abs_diff"] is not None else ""),
              flush=True)
        return r

    def tessera_measure(self, r: dict, model_file: Path, test: Path, ref: Optional[Path],
                        paths: dict) -> None:
        """The latency example on `model_file`, then `tessera predict --proba`
        compared with the reference probabilities (when `ref` is given)."""
        lat, why = self.latency(model_file, test)
        if lat is None:
            r.update(status="not run", reason=why)
            return
        r["batch_rows_per_second"] = lat["batch"]["rows_per_second"]
        r["single_row_median_us"] = lat["single_row"]["median_us"]
        r["extra"]["latency"] = lat
        print(f"    batch {r['batch_rows_per_second']:,.0f} rows/s, single row "
              f"{r['single_row_median_us']:.2f} µs", flush=True)
        if ref is None:
            return
        pred = OUT / f"{model_file.stem}.pred.csv"
        pred.unlink(missing_ok=True)
        p, why = self.tessera(["predict", "--model", str(model_file), "--data", str(test),
                               "--proba", "--threads", str(self.threads), "--out", str(pred)],
                              "tessera predict --proba")
        if p is None:
            r["diff_note"] = f"not run: {why}"
            return
        r["extra"]["predict_seconds_process"] = p.wall
        res, why, _ = self.call_worker("diff", pred_csv=str(pred), ref=str(ref),
                                       test_y=str(paths["test_y"]))
        if res is None:
            r["diff_note"] = f"not run: {why}"
            return
        r["max_abs_diff"] = res["max_abs_diff"]
        r["extra"]["diff"] = res
        ok = res["max_abs_diff"] <= DIFF_LIMIT
        print(f"    max abs diff vs reference {res['max_abs_diff']:.2e} "
              f"({'ok' if ok else 'OVER ' + format(DIFF_LIMIT, 'g')}; "
              f"{res['rows_over_limit']} rows over)", flush=True)

    def tessera_import(self, fmt: str, src: Path, test: Path, ref: Path, paths: dict) -> dict:
        label = "LightGBM" if fmt == "lightgbm" else "XGBoost"
        r = self.row(f"**tessera** (imported {label} model)", "tessera", fmt)
        print(f"  tessera ({label} model) ...", flush=True)
        if not self.tessera_ok:
            r.update(status="not run", reason=self.tessera_ok_reason)
            return r
        out = OUT / ("model.tsr" if fmt == "lightgbm" else "xgb.tsr")
        out.unlink(missing_ok=True)
        p, why = self.tessera(["import", "--from", fmt, str(src), "--out", str(out)],
                              f"tessera import --from {fmt}")
        if p is None:
            r.update(status="not run", reason=why)
            return r
        if not out.exists():
            r.update(status="not run", reason=f"`tessera import` wrote no {out.name}")
            return r
        r["compile_seconds"] = p.wall
        r["compile_what"] = f"whole `tessera import --from {fmt}` process"
        r["extra"]["model_bytes"] = out.stat().st_size
        print(f"    import {p.wall:.3f} s", flush=True)
        self.tessera_measure(r, out, test, ref, paths)
        return r


# --------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------

def fmt_rate(x: Optional[float]) -> str:
    return "" if x is None else f"{x:,.0f}"


def fmt_us(x: Optional[float]) -> str:
    return "" if x is None else common.sig(x, 3)


def fmt_s(x: Optional[float]) -> str:
    return "—" if x is None else common.sig(x, 3)


def fmt_diff(r: dict) -> str:
    if r["max_abs_diff"] is None:
        return r["diff_note"] or "—"
    d = r["max_abs_diff"]
    s = "0" if d == 0 else f"{d:.1e}"
    if r["key"] == "tessera":
        s += " ✓" if d <= DIFF_LIMIT else f" **> {DIFF_LIMIT:g}**"
    return s


def tessera_for(rows: list[dict], model: str) -> Optional[dict]:
    return next((r for r in rows if r["key"] == "tessera" and r["model"] == model), None)


def speedup(rows: list[dict], r: dict) -> Optional[float]:
    t = tessera_for(rows, r["model"])
    if (t is None or r is t or t["batch_rows_per_second"] is None
            or not r["batch_rows_per_second"]):
        return None
    return t["batch_rows_per_second"] / r["batch_rows_per_second"]


def table(rows: list[dict]) -> list[str]:
    out = ["| tool | batch rows/s | tessera speed-up | single-row µs | compile/convert s "
           "| max abs diff vs reference |",
           "|---|--:|--:|--:|--:|--:|"]
    for r in rows:
        if r["status"] != "ok":
            what = "not run" if r["key"] == "tessera" else "unavailable"
            out.append(f"| {r['tool']} | {what}: {r['reason']} | | | "
                       f"{fmt_s(r['compile_seconds']) if r['compile_seconds'] else ''} | |")
            continue
        su = speedup(rows, r)
        su_s = "—" if r["key"] == "tessera" else ("n/a" if su is None else f"{su:.2f}×")
        out.append(f"| {r['tool']} | {fmt_rate(r['batch_rows_per_second'])} | {su_s} "
                   f"| {fmt_us(r['single_row_median_us'])} | {fmt_s(r['compile_seconds'])} "
                   f"| {fmt_diff(r)} |")
    return out


def targets(rows: list[dict]) -> list[dict]:
    """Case 1's targets, judged on this run's figures."""
    t = tessera_for(rows, "lightgbm")
    t_ok = t is not None and t["batch_rows_per_second"] is not None
    why_t = "tessera not run"
    by_key = {(r["key"], r["model"]): r for r in rows}
    res = []

    def add(name: str, met: Optional[bool], detail: str) -> None:
        res.append({"target": name, "met": met, "detail": detail})

    ll = by_key.get(("lleaves", "lightgbm"))
    if not t_ok:
        add("batch ≥ 1.0× lleaves", None, why_t)
    elif ll is None or ll["batch_rows_per_second"] is None:
        add("batch ≥ 1.0× lleaves", None, "lleaves " + (f"unavailable: {ll['reason']}"
                                                        if ll else "not selected"))
    else:
        ratio = speedup(rows, ll)
        add("batch ≥ 1.0× lleaves", ratio >= 1.0, f"{ratio:.2f}×")

    others = [r for r in rows if r["key"] != "tessera" and r["model"] in ("lightgbm", "xgboost")]
    ran = [(r, speedup(rows, r)) for r in others]
    ran = [(r, s) for r, s in ran if s is not None]
    missing = [r["tool"] for r in others if speedup(rows, r) is None]
    if not ran:
        add("batch ≥ 1.0× every other tool", None, why_t if not t_ok else "no other tool ran")
    else:
        low = [f"{s:.2f}× {r['tool']}" for r, s in sorted(ran, key=lambda x: x[1]) if s < 1.0]
        worst_r, worst = min(ran, key=lambda x: x[1])
        detail = (f"below 1.0× against: {', '.join(low)}" if low
                  else f"lowest {worst:.2f}× ({worst_r['tool']})")
        if missing:
            detail += f"; not compared: {', '.join(missing)}"
        add("batch ≥ 1.0× every other tool", not low, detail)

    if not t_ok:
        add("single-row ≤ 3 µs", None, why_t)
    else:
        us = t["single_row_median_us"]
        tx = tessera_for(rows, "xgboost")
        extra = (f"; {tx['single_row_median_us']:.2f} µs on the XGBoost model"
                 if tx and tx["single_row_median_us"] is not None else "")
        add("single-row ≤ 3 µs", us <= 3.0, f"{us:.2f} µs on the LightGBM model{extra}")

    if t is None or t["compile_seconds"] is None:
        add("tessera compile step ≤ lleaves compile", None, why_t)
    elif ll is None or ll["compile_seconds"] is None:
        add("tessera compile step ≤ lleaves compile", None, "lleaves " + (
            f"unavailable: {ll['reason']}" if ll else "not selected"))
    else:
        a, b = t["compile_seconds"], ll["compile_seconds"]
        add("tessera compile step ≤ lleaves compile", a <= b,
            f"{common.sig(a)} s vs {common.sig(b)} s ({common.sig(a / b, 2)}×)")
    return res


def verdict(met: Optional[bool]) -> str:
    return "n/a" if met is None else ("met" if met else "**not met**")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_list(text: str, allowed, aliases: Optional[dict] = None, what: str = "") -> list[str]:
    out = []
    for tok in (t.strip() for t in text.split(",")):
        if not tok:
            continue
        key = (aliases or {}).get(tok, tok)
        if key not in allowed:
            sys.exit(f"{what}: unknown `{tok}`; choose from {', '.join(allowed)}")
        if key not in out:
            out.append(key)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Tree-ensemble prediction speed: tessera against LightGBM, Treelite, ONNX "
                    "Runtime, TL2cgen, lleaves, XGBoost and scikit-learn on the same model, "
                    "rows and threads.")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for every tool's batch prediction (default 2); single-row "
                         "latency is measured with 1 thread everywhere")
    ap.add_argument("--train-rows", type=int, metavar="N",
                    help="subsample higgs_like's training split to N rows (seed 0) for the "
                         "LightGBM and XGBoost models (default: all of it; --quick: 20000)")
    ap.add_argument("--test-rows", type=int, metavar="N",
                    help="predict only the first N rows of the test split "
                         "(default: all of it, 200000; --quick: 20000)")
    ap.add_argument("--rf-train-rows", type=int, metavar="N",
                    help="training rows of the forests (default 100000; --quick: 20000)")
    ap.add_argument("--only", metavar="CASES", default=",".join(CASES),
                    help="comma-separated: lightgbm, xgboost, forest (default all)")
    ap.add_argument("--peers", metavar="LIST", default=",".join(PEERS),
                    help=f"comma-separated peers to run (default all): {', '.join(PEERS)}; "
                         "tessera always runs")
    ap.add_argument("--no-build", action="store_true",
                    help="use the binaries already in target/release")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (the --small higgs_like set: 20000 training rows for "
                         "every model, 20000 test rows); about 2 minutes")
    ap.add_argument("--datasets-script", default=common.DEFAULT_DATASETS_SCRIPT, metavar="PATH",
                    help="the dataset generator, relative to the repository root "
                         f"(default {common.DEFAULT_DATASETS_SCRIPT})")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds before one command is killed (default 1800)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    for name in ("train_rows", "test_rows", "rf_train_rows"):
        v = getattr(args, name)
        if v is not None and v < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
        if v is None:
            setattr(args, name, (QUICK if args.quick else FULL)[name])
    cases = parse_list(args.only, CASES, CASE_ALIASES, "--only")
    peers = parse_list(args.peers, PEERS, {"ort": "onnxruntime", "onnx": "onnxruntime",
                                           "scikit-learn": "sklearn", "lgb": "lightgbm",
                                           "xgb": "xgboost"}, "--peers")

    started = time.perf_counter()
    command = shlex.join(["python3", rel(Path(__file__))] + (sys.argv[1:] if argv is None else argv))
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {common.machine_line()}", flush=True)

    # 1. Python packages: the cases' own, then each selected peer's.
    deps = list(BASE_DEPS)
    for c in cases:
        deps += CASE_DEPS[c]
        deps += [d for p in MODEL_PEERS[c] if p in peers for d in PEER_DEPS[(p, c)]]
    unavailable = ensure_packages(deps)
    bench = Bench(args)
    if "lightgbm" in cases and "lleaves" in peers and "lleaves" not in unavailable:
        bench.lleaves_path, why = lleaves_pythonpath()
        if why:
            unavailable["lleaves"] = why
    base_missing = [unavailable[m] for m, _ in BASE_DEPS if m in unavailable]
    if base_missing:
        sys.exit(f"cannot run without numpy, pandas and scikit-learn: {base_missing[0]}")

    # 2. tessera (skippable: every tessera row says "not run" when it fails).
    if not args.no_build:
        try:
            common.build(args.timeout)
        except SystemExit as e:
            print(f"  ! build failed: {e}", flush=True)
        except subprocess.TimeoutExpired:
            print("  ! build timed out", flush=True)
    for b in (common.tessera_bin(), common.latency_bin()):
        if not b.exists():
            bench.tessera_ok, bench.tessera_ok_reason = False, f"{rel(b)} missing (build failed)"

    # 3. Data: higgs_like from the generator, a capped test file, its float32 matrix.
    script = Path(args.datasets_script)
    if not script.is_absolute():
        script = (REPO / script).resolve()
    common.ensure_datasets(script, [DATASET], args.quick, args.timeout)
    train_full, test_full = common.dataset_paths(DATASET, args.quick)
    test = (test_full if args.test_rows is None
            else head_rows(test_full, args.test_rows, OUT / f"test.{args.test_rows}.csv"))
    paths: dict[str, Path] = {
        "work": OUT, "test_x": OUT / "test_x.npy", "test_y": OUT / "test_y.npy",
        "lgb_model": OUT / "model.txt", "xgb_model": OUT / "xgb.json",
        "rf_model": OUT / "sklearn_rf.pkl", "lightgbm_ref": OUT / "lightgbm_ref.npy",
        "xgboost_ref": OUT / "xgboost_ref.npy", "forest_ref": OUT / "forest_ref.npy"}
    # Remove what this run makes anew, so that a failed step cannot leave a stale file.
    stale = {"lightgbm": ("lgb_model", "lightgbm_ref"), "xgboost": ("xgb_model", "xgboost_ref"),
             "forest": ("rf_model", "forest_ref")}
    for k in ("test_x", "test_y", *(f for c in cases for f in stale[c])):
        paths[k].unlink(missing_ok=True)
    prep, why, _ = bench.call_worker("prepare", test_csv=str(test), test_x=str(paths["test_x"]),
                                     test_y=str(paths["test_y"]))
    if prep is None:
        sys.exit(f"cannot read the test file {rel(test)}: {why}")
    n_test = prep["n_rows"]
    print(f"test rows: {n_test:,} ({rel(test)}), {prep['n_features']} features", flush=True)
    sp = {k: str(v) for k, v in paths.items()}

    results: dict[str, Any] = {"cases": {}}
    loads = {"start": common.load_average()}
    versions: dict[str, Any] = dict(prep.get("versions", {}))

    # 4. Case 1: the LightGBM model (and the XGBoost one).
    boost_cases = [c for c in cases if c in ("lightgbm", "xgboost")]
    case1_rows: list[dict] = []
    train_info: dict[str, Any] = {}
    if boost_cases:
        train = (common.subsample(train_full, args.train_rows) if args.train_rows
                 else train_full)
        n_train = common.count_rows(train)
        loads["case1"] = common.load_average()
        print(f"\n== case 1: {N_TREES} trees x {N_LEAVES} leaves, trained on {n_train:,} rows "
              f"of {rel(train)} [load average {loads['case1']:.1f}]", flush=True)
        can_train = [c for c in boost_cases if c not in unavailable]
        for c in boost_cases:
            if c in unavailable:
                train_info[c] = {"error": unavailable[c]}
        if can_train:
            res, why, _ = bench.call_worker("train_boosters", models=can_train,
                                            train_csv=str(train), **sp)
            for c in can_train:
                train_info[c] = (res or {}).get(c) or {"error": why or "training failed"}
        for c in boost_cases:
            ti = train_info[c]
            name = "LightGBM" if c == "lightgbm" else "XGBoost"
            if "error" in ti:
                print(f"  ! {name} model not trained: {ti['error']}", flush=True)
            else:
                versions[c] = ti.get("version")
                print(f"  {name} model: fit {ti['fit_seconds']:.2f} s, test ROC AUC "
                      f"{ti['test_scores'].get('roc_auc', float('nan')):.4f}", flush=True)

        for c in boost_cases:
            ti = train_info[c]
            model_path = paths["lgb_model"] if c == "lightgbm" else paths["xgb_model"]
            if "error" in ti:
                name = "LightGBM" if c == "lightgbm" else "XGBoost"
                r = bench.row(f"**tessera** (imported {name} model)", "tessera", c)
                r.update(status="not run", reason=f"no {name} model: {ti['error']}")
                case1_rows.append(r)
                for p in MODEL_PEERS[c]:
                    if p in peers:
                        pr = bench.row(PEERS[p], p, c)
                        pr.update(status="unavailable", reason=f"no {name} model")
                        case1_rows.append(pr)
                continue
            case1_rows.append(bench.tessera_import(c, model_path, test, paths[f"{c}_ref"],
                                                   paths))
            for p in MODEL_PEERS[c]:
                if p in peers:
                    case1_rows.append(bench.run_peer(p, c, sp, unavailable))
        results["cases"]["boosted"] = {"train": rel(train), "train_rows": n_train,
                                       "models": train_info, "rows": case1_rows,
                                       "targets": targets(case1_rows)
                                       if "lightgbm" in boost_cases else []}

    # 5. Case 2: random forests, tessera's and scikit-learn's.
    case2_rows: list[dict] = []
    forest_info: dict[str, Any] = {}
    if "forest" in cases:
        rf_train = common.subsample(train_full, args.rf_train_rows)
        n_rf = common.count_rows(rf_train)
        loads["case2"] = common.load_average()
        print(f"\n== case 2: random forest, {RF_TREES} trees, max_depth {RF_MAX_DEPTH}, trained "
              f"on {n_rf:,} rows of {rel(rf_train)} [load average {loads['case2']:.1f}]",
              flush=True)
        t = bench.row("**tessera** `random_forest` (its own forest)", "tessera", "forest")
        print("  tessera ...", flush=True)
        rf_tsr = OUT / "rf.tsr"
        rf_tsr.unlink(missing_ok=True)
        if not bench.tessera_ok:
            t.update(status="not run", reason=bench.tessera_ok_reason)
        else:
            report = OUT / "rf.train.json"
            p, why = bench.tessera(
                ["train", "--learner", "random_forest", "--data", str(rf_train),
                 "--target", LABEL, "--set", f"n_estimators={RF_TREES}",
                 "--set", f"max_depth={RF_MAX_DEPTH}", "--seed", str(SEED),
                 "--threads", str(args.threads), "--out", str(rf_tsr), "--report", str(report)],
                "tessera train")
            if p is None:
                t.update(status="not run", reason=why)
            else:
                try:
                    forest_info["tessera_fit_seconds"] = json.loads(
                        report.read_text()).get("fit_seconds")
                except (OSError, json.JSONDecodeError):
                    forest_info["tessera_fit_seconds"] = None
                forest_info["tessera_train_process_seconds"] = p.wall
                t["diff_note"] = "own model"
                bench.tessera_measure(t, rf_tsr, test, None, paths)
                pe, _ = bench.tessera(["eval", "--model", str(rf_tsr), "--data", str(test),
                                       "--target", LABEL, "--threads", str(args.threads),
                                       "--json"], "tessera eval")
                if pe is not None:
                    try:
                        ev = common.last_json(pe.stdout)
                        forest_info["tessera_scores"] = {
                            k: float(ev[k]) for k in ("accuracy", "roc_auc")
                            if isinstance(ev.get(k), (int, float))}
                    except (json.JSONDecodeError, ValueError):
                        pass
        case2_rows.append(t)
        print("  scikit-learn forest: training ...", flush=True)
        res, why, _ = bench.call_worker("train_forest", train_csv=str(rf_train), **sp)
        if res is None:
            forest_info["sklearn_error"] = why
            print(f"  ! scikit-learn forest not trained: {why}", flush=True)
            for p in MODEL_PEERS["forest"]:
                if p in peers:
                    r = bench.row(PEERS[p], p, "forest")
                    r.update(status="unavailable", reason=f"no scikit-learn forest: {why}")
                    case2_rows.append(r)
        else:
            forest_info["sklearn"] = res
            versions["sklearn"] = res.get("version")
            print(f"    fit {res['fit_seconds']:.2f} s", flush=True)
            for p in MODEL_PEERS["forest"]:
                if p in peers:
                    case2_rows.append(bench.run_peer(p, "forest", sp, unavailable))
        results["cases"]["forest"] = {"train": rel(rf_train), "train_rows": n_rf,
                                      "params": {"n_estimators": RF_TREES,
                                                 "max_depth": RF_MAX_DEPTH, "seed": SEED},
                                      "models": forest_info, "rows": case2_rows}

    # 6. Report.
    for r in case1_rows + case2_rows:
        if r["key"] != "tessera" and r.get("version"):
            versions.setdefault(r["key"], r["version"])
            if r["extra"].get("llvmlite_version"):
                versions["llvmlite (lleaves)"] = r["extra"]["llvmlite_version"]
            conv = r["extra"].get("converter")
            if conv:
                name, _, ver = conv.partition(" ")
                versions[name] = ver
    elapsed = time.perf_counter() - started
    loads["end"] = common.load_average()
    load_vals = [v for v in loads.values() if v is not None]
    load_line = (f"**Load average** (1 min): {min(load_vals):.1f}–{max(load_vals):.1f} on "
                 f"{os.cpu_count()} cores" if load_vals else "")
    if load_vals and max(load_vals) > (os.cpu_count() or 1) + 0.5:
        load_line += " — **the machine was busy**; rerun on a quiet machine before comparing"
    vers = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if v)
    header = (f"**Machine:** {common.machine_line()}. **Threads:** {args.threads} for batch "
              f"prediction (OMP_NUM_THREADS={args.threads}), 1 for single-row latency. "
              f"**Versions:** {vers}, Python {platform.python_version()}, "
              f"{common.rustc_version()}. **Command:** `{command}` ({elapsed / 60:.1f} min). "
              f"{load_line}.")
    lines = [header, ""]
    if case1_rows:
        bi = results["cases"]["boosted"]
        lines += [f"### Case 1: boosted trees ({N_TREES} trees × {N_LEAVES} leaves, "
                  f"trained on {bi['train_rows']:,} rows of {DATASET}; {n_test:,} test rows)", "",
                  *table(case1_rows), ""]
        lines.append("Batch: rows/s predicting all test rows, best of 3. Single-row: median over "
                     f"{LATENCY_CALLS} one-row calls after {WARMUP_CALLS} warm-up calls (tessera "
                     "in-process in Rust via the latency example; the peers from Python). "
                     "Speed-up: tessera's rows/s on the same model ÷ the tool's. Max abs diff: "
                     "positive-class probability vs LightGBM's (XGBoost's for the XGBoost "
                     "model) on every test row.")
        for c, ti in bi["models"].items():
            if "error" not in ti:
                sc = ti["test_scores"]
                lines.append(f"{'LightGBM' if c == 'lightgbm' else 'XGBoost'} model: fit "
                             f"{ti['fit_seconds']:.1f} s, test ROC AUC "
                             f"{sc.get('roc_auc', float('nan')):.4f}, accuracy "
                             f"{sc['accuracy']:.4f}.")
        if bi["targets"]:
            lines += ["", "Targets (LightGBM model):", ""]
            lines += [f"- {tg['target']}: {verdict(tg['met'])} ({tg['detail']})"
                      for tg in bi["targets"]]
        lines.append("")
    if case2_rows:
        fi = results["cases"]["forest"]
        lines += [f"### Case 2: random forest ({RF_TREES} trees, max_depth {RF_MAX_DEPTH}, "
                  f"trained on {fi['train_rows']:,} rows; {n_test:,} test rows)", "",
                  *table(case2_rows), ""]
        ts, ss = forest_info.get("tessera_scores"), forest_info.get("sklearn", {}).get(
            "test_scores")

        def q(s: Optional[dict]) -> str:
            if not s:
                return "n/a"
            return (f"accuracy {s.get('accuracy', float('nan')):.4f}, ROC AUC "
                    f"{s.get('roc_auc', float('nan')):.4f}")

        tf = forest_info.get("tessera_fit_seconds")
        sf = forest_info.get("sklearn", {}).get("fit_seconds")
        lines.append(f"Forests on the test rows: tessera {q(ts)}; scikit-learn {q(ss)}. "
                     f"Fit: tessera {fmt_s(tf)} s, scikit-learn {fmt_s(sf)} s. The two forests "
                     "are different models (speed-up compares the same-size forests); ONNX "
                     "Runtime runs scikit-learn's forest, its max abs diff is vs "
                     "scikit-learn's probabilities.")
        lines.append("")
    text = "\n".join(lines)
    print()
    print(text)

    results.update({"command": command, "machine": common.machine_line(),
                    "threads": args.threads, "quick": args.quick,
                    "sizes": {"train_rows": args.train_rows, "test_rows": n_test,
                              "rf_train_rows": args.rf_train_rows},
                    "test": rel(test), "load_average": loads, "versions": versions,
                    "python": platform.python_version(), "rustc": common.rustc_version(),
                    "elapsed_seconds": elapsed, "diff_limit": DIFF_LIMIT,
                    "latency_calls": LATENCY_CALLS, "warmup_calls": WARMUP_CALLS,
                    "batch_runs": BATCH_RUNS, "unavailable_packages": unavailable})
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (OUT / "results.md").write_text(text)
    print(f"(results also in {rel(OUT / 'results.json')} and {rel(OUT / 'results.md')}; "
          f"total {elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
