#!/usr/bin/env python3
"""Compression benchmark: `tessera compress` (quantize, prune) on the
issue's models, each compared with the model it came from, in one run, on
the same rows and thread count, and checked against the targets.

Usage (from anywhere; paths are relative to the repository root):

    python3 bench/compress.py                 # full sizes
    python3 bench/compress.py --quick         # synthetic sets at a tenth
    python3 bench/compress.py --no-build --json target/bench-compress/results.json

Cases (models trained by `tessera train`, seed 0, in target/bench-compress/):

* mlp int8: `mlp` with hidden_layer_sizes [128, 64] on digits (200
  epochs) and multiclass (20 epochs), quantized with bits 8, activations
  calibrated on 2,048 training rows; the same with a model trained with
  quantization_aware = true (its accuracy drop is against the plain f32
  model, which is what a user would otherwise ship).
* mlp units 50%: the same f32 models, prune keep_units = 0.5 and 10 epochs
  of fine-tuning on the training rows.
* forest prune: random_forest, 500 trees, max_depth 12, on 100,000 rows of
  higgs_like; prune to 100 trees greedily on the first half of the test
  split; AUC measured on the second half (rows the selection never saw).
* forest quantize: the same forest, quantize with bits 8 (leaves f16).
* boosting quantize: gradient_boosting, 200 trees, on the same rows;
  quantize (leaves i16); largest raw-score difference on the test rows.

Batch throughput and single-row latency come from `tessera compress`'s own
report: both models timed in turn, several rounds, medians (`--rounds`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (bench/run.py: datasets, build helpers)

REPO = common.REPO
RELEASE = common.RELEASE
WORK = common.TARGET / "bench-compress"
PACKAGES = ["tessera-host", "tessera-forest", "tessera-boosting", "tessera-mlp",
            "tessera-compress"]


def sh(cmd: list[str], timeout: float = 3600) -> str:
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    p = subprocess.run([str(c) for c in cmd], cwd=REPO, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p.stdout


def tessera(*args: object, timeout: float = 3600) -> str:
    return sh([RELEASE / "tessera", "--plugins", RELEASE, *args], timeout=timeout)


def train(name: str, learner: str, data: Path, target: str, sets: list[str],
          threads: int) -> Path:
    out = WORK / f"{name}.tsr"
    if out.exists():
        return out
    args = ["train", "--learner", learner, "--data", data, "--target", target, "--seed", "0",
            "--threads", threads, "--out", out]
    for s in sets:
        args += ["--set", s]
    t = time.time()
    tessera(*args)
    print(f"  trained {name} in {time.time() - t:.1f} s", flush=True)
    return out


def compress(model: Path, out: Path, with_: str, sets: list[str], threads: int, rounds: int,
             eval_: Path, target: str, data: Path | None = None) -> dict:
    args = ["compress", "--model", model, "--with", with_, "--out", out, "--eval", eval_,
            "--target", target, "--threads", threads, "--rounds", rounds, "--json"]
    for s in sets:
        args += ["--set", s]
    if data is not None:
        args += ["--data", data]
    return json.loads(tessera(*args))


def evaluate(model: Path, data: Path, target: str, threads: int) -> dict:
    return json.loads(tessera("eval", "--model", model, "--data", data, "--target", target,
                              "--json", "--threads", threads))


def split_test(test: Path) -> tuple[Path, Path]:
    """The test split cut in two halves (header kept): rows to choose on,
    rows to measure on."""
    a, b = WORK / f"{test.stem}.select.csv", WORK / f"{test.stem}.holdout.csv"
    if a.exists() and b.exists():
        return a, b
    lines = test.read_text().splitlines(keepends=True)
    head, rows = lines[0], lines[1:]
    half = len(rows) // 2
    a.write_text(head + "".join(rows[:half]))
    b.write_text(head + "".join(rows[half:]))
    return a, b


def target_col(path: Path) -> str:
    with open(path) as f:
        return f.readline().strip().split(",")[-1]


def row(case: str, r: dict, metric: str, checks: list[tuple[str, float, str, float]]) -> dict:
    b, a = r["before"], r["after"]
    return {
        "case": case,
        "size_ratio": b["file_bytes"] / a["file_bytes"],
        "before_bytes": b["file_bytes"],
        "after_bytes": a["file_bytes"],
        "metric": metric,
        "before_metric": b["metrics"][metric],
        "after_metric": a["metrics"][metric],
        "batch_speedup": a["batch_rows_per_second"] / b["batch_rows_per_second"],
        "latency_speedup": b["row_latency_seconds"] / a["row_latency_seconds"],
        "raw_max_abs_diff": r.get("raw_max_abs_diff"),
        "checks": [{"what": w, "value": v, "op": op, "bound": bound,
                    "met": (v >= bound) if op == ">=" else (v <= bound)}
                   for (w, v, op, bound) in checks],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="synthetic sets at a tenth (multiclass 16k rows, higgs_like 20k)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated: mlp, units, forest, boosting")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--datasets-script", default=common.DEFAULT_DATASETS_SCRIPT)
    a = ap.parse_args(argv)
    only = set(filter(None, a.only.split(",")))
    want = (lambda k: not only or k in only)
    WORK.mkdir(parents=True, exist_ok=True)
    if not a.no_build:
        sh(["cargo", "build", "--release"] + sum((["-p", p] for p in PACKAGES), []))
    script = (REPO / a.datasets_script).resolve()
    common.ensure_datasets(script, ["digits"], False, 3600)
    common.ensure_datasets(script, ["multiclass", "higgs_like"], a.quick, 3600)
    t = a.threads
    rows: list[dict] = []
    tag = "quick-" if a.quick else ""

    if want("mlp") or want("units"):
        for ds, epochs in (("digits", 200), ("multiclass", 20)):
            tr, te = common.dataset_paths(ds, a.quick and ds != "digits")
            y = target_col(tr)
            base = ["hidden_layer_sizes=[128,64]", f"max_iter={epochs}"]
            f32 = train(f"{tag}mlp-{ds}", "mlp", tr, y, base, t)
            if want("mlp"):
                r = compress(f32, WORK / f"{tag}mlp-{ds}-int8.tsr", "quantize", ["bits=8"], t,
                             a.rounds, te, y, data=tr)
                drop = (r["before"]["metrics"]["accuracy"] - r["after"]["metrics"]["accuracy"])
                rows.append(row(f"mlp [128,64] {ds} int8", r, "accuracy", [
                    ("file smaller", r["before"]["file_bytes"] / r["after"]["file_bytes"], ">=",
                     3.5),
                    ("accuracy drop (points)", 100 * drop, "<=", 0.5),
                    ("batch faster", r["after"]["batch_rows_per_second"]
                     / r["before"]["batch_rows_per_second"], ">=", 1.5)]))
                qat = train(f"{tag}mlp-{ds}-qat", "mlp", tr, y,
                            base + ["quantization_aware=true"], t)
                r = compress(qat, WORK / f"{tag}mlp-{ds}-qat-int8.tsr", "quantize", ["bits=8"],
                             t, a.rounds, te, y, data=tr)
                plain = evaluate(f32, te, y, t)["accuracy"]
                drop = plain - r["after"]["metrics"]["accuracy"]
                rows.append(row(f"mlp [128,64] {ds} QAT int8", r, "accuracy", [
                    ("accuracy drop vs plain f32 (points)", 100 * drop, "<=", 0.3)]))
            if want("units"):
                r = compress(f32, WORK / f"{tag}mlp-{ds}-units50.tsr", "prune",
                             ["keep_units=0.5", "fine_tune_epochs=10"], t, a.rounds, te, y,
                             data=tr)
                drop = (r["before"]["metrics"]["accuracy"] - r["after"]["metrics"]["accuracy"])
                rows.append(row(f"mlp [128,64] {ds} units 50%", r, "accuracy", [
                    ("accuracy drop (points)", 100 * drop, "<=", 1.0),
                    ("batch faster", r["after"]["batch_rows_per_second"]
                     / r["before"]["batch_rows_per_second"], ">=", 1.7)]))

    if want("forest") or want("boosting"):
        tr, te = common.dataset_paths("higgs_like", a.quick)
        if not a.quick:
            tr = common.subsample(tr, 100_000)
        select, holdout = split_test(te)
        if want("forest"):
            rf = train(f"{tag}rf500", "random_forest", tr, "label",
                       ["n_estimators=500", "max_depth=12"], t)
            pruned = WORK / f"{tag}rf500-pruned100.tsr"
            r = compress(rf, pruned, "prune", ["n_estimators=100"], t, a.rounds, select, "label")
            before = evaluate(rf, holdout, "label", t)["roc_auc"]
            after = evaluate(pruned, holdout, "label", t)["roc_auc"]
            x = row("random_forest 500 -> 100 trees (greedy)", r, "roc_auc", [
                ("AUC drop on unseen rows", before - after, "<=", 0.002)])
            x["holdout_auc"] = [before, after]
            rows.append(x)
            r = compress(rf, WORK / f"{tag}rf500-q8.tsr", "quantize", ["bits=8"], t, a.rounds,
                         holdout, "label")
            rows.append(row("random_forest 500 quantized", r, "roc_auc", [
                ("file smaller", r["before"]["file_bytes"] / r["after"]["file_bytes"], ">=", 2.0),
                ("batch faster", r["after"]["batch_rows_per_second"]
                 / r["before"]["batch_rows_per_second"], ">=", 1.2),
                ("AUC drop", r["before"]["metrics"]["roc_auc"] - r["after"]["metrics"]["roc_auc"],
                 "<=", 0.001)]))
        if want("boosting"):
            gb = train(f"{tag}gbdt200", "gradient_boosting", tr, "label", ["n_estimators=200"], t)
            r = compress(gb, WORK / f"{tag}gbdt200-q.tsr", "quantize", [], t, a.rounds, holdout,
                         "label")
            rows.append(row("gradient_boosting 200 quantized", r, "roc_auc", [
                ("raw score max abs error", r["raw_max_abs_diff"], "<=", 1e-3),
                ("AUC drop", r["before"]["metrics"]["roc_auc"] - r["after"]["metrics"]["roc_auc"],
                 "<=", 0.0005)]))

    print()
    print(f"threads {t}, {a.rounds} timing rounds, load average before the last case "
          f"{os.getloadavg()[0]:.2f}")
    print()
    print("| case | size | metric before -> after | batch | 1-row latency |")
    print("|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['case']} | {x['size_ratio']:.2f}x smaller "
              f"({common.size_fmt(x['before_bytes'])} -> {common.size_fmt(x['after_bytes'])}) "
              f"| {x['metric']} {x['before_metric']:.4f} -> {x['after_metric']:.4f} "
              f"| {x['batch_speedup']:.2f}x | {x['latency_speedup']:.2f}x |")
    print()
    print("| case | target | measured | bound | met |")
    print("|---|---|---|---|---|")
    for x in rows:
        for c in x["checks"]:
            v = c["value"]
            shown = f"{v:.2e}" if abs(v) < 1e-2 and v != 0 else f"{v:.4g}"
            print(f"| {x['case']} | {c['what']} | {shown} | {c['op']} {c['bound']} | "
                  f"{'yes' if c['met'] else 'NO'} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
