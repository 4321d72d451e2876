#!/usr/bin/env python3
"""Checks `tessera serve` with an unchanged client of the Open Inference
Protocol v2: Triton's `tritonclient[http]`, installed from PyPI into
target/oip-clients/venv by this script.

It starts `tessera serve` on a graph written to a temporary folder (two
models trained at start-up on the shipped breast cancer data, an admin
token, a small body limit, an output with a one-request queue), then runs
every call a Triton user makes and every error case, and checks the
answers against `tessera predict` on the same rows. Prints one line per
check and exits 1 if any fails.

    cargo build --release
    python3 bench/oip_clients.py            # --keep-venv is implied; --port N
"""

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "oip-clients" / "venv"
TESSERA = ROOT / "target" / "release" / "tessera"
TRAIN = ROOT / "examples" / "data" / "breast_cancer.train.csv"
TEST = ROOT / "examples" / "data" / "breast_cancer.test.csv"
TOKEN = "s3cret-admin"


def ensure_venv():
    """Re-runs this script inside a virtualenv holding tritonclient."""
    if os.environ.get("OIP_CLIENTS_IN_VENV") == "1":
        return
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"installing tritonclient[http] into {VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "tritonclient[http]", "numpy"], check=True
        )
    env = dict(os.environ, OIP_CLIENTS_IN_VENV="1")
    sys.exit(subprocess.call([str(py), __file__, *sys.argv[1:]], env=env))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GRAPH = """
[server]
admin_token = "{token}"
max_body_bytes = 65536

[inputs.features]
shape = [-1, 30]

[nodes.forest]
inputs = ["features"]
train = {{ learner = "random_forest", data = "{train}", target = "label", params = {{ n_estimators = 50 }}, seed = 0 }}

[nodes.mlp]
inputs = ["features"]
train = {{ learner = "mlp", data = "{train}", target = "label", params = {{ hidden_layer_sizes = [16], max_iter = 50 }}, seed = 0 }}

[outputs.forest]
from = "forest"

[outputs.mlp]
from = "mlp"

[outputs.slow]
from = "forest"
batching = {{ max_batch = 64, max_delay_ms = 1500, max_queue = 1 }}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    ensure_venv()
    import numpy as np
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    if not TESSERA.exists():
        sys.exit("build first: cargo build --release")
    rows = list(csv.reader(open(TEST)))
    label_at = rows[0].index("label")
    x = np.array(
        [[float(v) for i, v in enumerate(r) if i != label_at] for r in rows[1:]], dtype=np.float32
    )
    tmp = Path(tempfile.mkdtemp(prefix="oip-clients-"))
    graph = tmp / "graph.toml"
    graph.write_text(GRAPH.format(token=TOKEN, train=TRAIN.as_posix()))
    port = args.port or free_port()
    server = subprocess.Popen(
        [str(TESSERA), "serve", str(graph), "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    failures = []

    def check(name, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'}  {name}{'  ' + str(detail) if detail and not ok else ''}")
        if not ok:
            failures.append(name)

    def fails_with(name, status, fn, *pieces):
        try:
            fn()
        except InferenceServerException as e:
            msg = e.message() or ""
            ok = str(e.status()) == str(status) and all(p in msg for p in pieces)
            check(f"{name} -> {status}", ok, f"got {e.status()}: {msg}")
            return
        check(f"{name} -> {status}", False, "no error")

    try:
        line = server.stderr.readline()
        while line and "listening on" not in line:
            line = server.stderr.readline()
        if not line:
            sys.exit("tessera serve did not start")
        threading.Thread(target=lambda: server.stderr.read(), daemon=True).start()
        c = httpclient.InferenceServerClient(f"127.0.0.1:{port}", concurrency=4)

        check("is_server_live", c.is_server_live())
        check("is_server_ready", c.is_server_ready())
        check("is_model_ready", c.is_model_ready("forest"))
        meta = c.get_server_metadata()
        check("server metadata", meta["name"] == "tessera" and "binary_tensor_data" in meta["extensions"])
        mm = c.get_model_metadata("forest")
        check(
            "model metadata",
            mm["inputs"][0] == {"name": "features", "datatype": "FP32", "shape": [-1, 30]}
            and [o["name"] for o in mm["outputs"]] == ["label", "probabilities"],
            mm,
        )
        check("model metadata by version", c.get_model_metadata("forest", model_version="1")["name"] == "forest")
        check("model config", c.get_model_config("forest")["input"][0]["dims"] == [30])
        index = c.get_model_repository_index()
        check("repository index", sorted(m["name"] for m in index) == ["forest", "mlp", "slow"], index)

        # Expected answers from the CLI, on a model trained the same way.
        model = tmp / "forest.tsr"
        subprocess.run(
            [str(TESSERA), "train", "--learner", "random_forest", "--data", str(TRAIN), "--target", "label",
             "--set", "n_estimators=50", "--seed", "0", "--out", str(model)],
            check=True, capture_output=True,
        )
        out = tmp / "pred.csv"
        subprocess.run(
            [str(TESSERA), "predict", "--model", str(model), "--data", str(TEST), "--proba", "--out", str(out)],
            check=True, capture_output=True,
        )
        pred = list(csv.DictReader(open(out)))
        want_p = np.array([[float(r["proba_0"]), float(r["proba_1"])] for r in pred])
        want_l = [r["prediction"] for r in pred]

        for binary in (True, False):
            inp = httpclient.InferInput("features", list(x.shape), "FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            outs = [
                httpclient.InferRequestedOutput("probabilities", binary_data=binary),
                httpclient.InferRequestedOutput("label", binary_data=binary),
            ]
            r = c.infer("forest", [inp], outputs=outs, request_id="req-7")
            p = r.as_numpy("probabilities")
            labels = [v.decode() if isinstance(v, bytes) else v for v in r.as_numpy("label")]
            kind = "binary" if binary else "JSON"
            check(f"infer ({kind}) probabilities equal tessera predict", np.allclose(p, want_p, atol=1e-6))
            check(f"infer ({kind}) labels equal tessera predict", labels == want_l)
            check(f"infer ({kind}) echoes the id", r.get_response()["id"] == "req-7")
        r = c.infer("forest", [inp])
        check("infer with no outputs named", np.allclose(r.as_numpy("probabilities"), want_p, atol=1e-6))
        for dt, np_dt in (("FP64", np.float64), ("INT32", np.int32), ("INT64", np.int64)):
            inp = httpclient.InferInput("features", [1, 30], dt)
            inp.set_data_from_numpy(np.round(x[:1]).astype(np_dt))
            check(f"infer {dt}", c.infer("forest", [inp]).as_numpy("probabilities").shape == (1, 2))
        async_results = [c.async_infer("forest", [inp]) for _ in range(8)]
        check("async_infer x8", all(a.get_result().as_numpy("label") is not None for a in async_results))

        # Errors a Triton user meets.
        good = httpclient.InferInput("features", [1, 30], "FP32")
        good.set_data_from_numpy(x[:1])
        fails_with("unknown model", 404, lambda: c.infer("forrest", [good]), "no model `forrest`", "did you mean `forest`")
        fails_with("unknown version", 404, lambda: c.infer("forest", [good], model_version="9"), "no version `9`")
        bad = httpclient.InferInput("features", [2, 3], "FP32")
        bad.set_data_from_numpy(np.zeros((2, 3), np.float32))
        fails_with("wrong shape", 400, lambda: c.infer("forest", [bad]), "shape [2, 3]", "[-1, 30]")
        bad = httpclient.InferInput("features", [1, 30], "INT8")
        bad.set_data_from_numpy(np.zeros((1, 30), np.int8))
        fails_with("wrong datatype", 400, lambda: c.infer("forest", [bad]), "INT8")
        bad = httpclient.InferInput("pixels", [1, 30], "FP32")
        bad.set_data_from_numpy(x[:1])
        fails_with("wrong input name", 400, lambda: c.infer("forest", [bad]), "no input `pixels`")
        fails_with(
            "unknown output", 400,
            lambda: c.infer("forest", [good], outputs=[httpclient.InferRequestedOutput("logits")]),
            "no output `logits`",
        )
        nan = httpclient.InferInput("features", [1, 30], "FP32")
        nan.set_data_from_numpy(np.full((1, 30), np.nan, np.float32))
        fails_with("NaN refused by the mlp", 400, lambda: c.infer("mlp", [nan]), "missing")
        big = httpclient.InferInput("features", [1000, 30], "FP32")
        big.set_data_from_numpy(np.zeros((1000, 30), np.float32))
        fails_with("body over max_body_bytes", 413, lambda: c.infer("forest", [big]), "max_body_bytes")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/models/forest/infer", data=b'{"inputs": [', method="POST"
        )
        try:
            urllib.request.urlopen(req)
            check("malformed JSON -> 400", False, "no error")
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
            check("malformed JSON -> 400", e.code == 400 and "line 1" in body["error"], body)
        fails_with("load without token", 401, lambda: c.load_model("forest"), "admin token")
        fails_with(
            "unload with a wrong token", 401,
            lambda: c.unload_model("forest", headers={"Authorization": "Bearer nope"}), "wrong",
        )
        auth = {"Authorization": f"Bearer {TOKEN}"}
        c.unload_model("mlp", headers=auth)
        check("unload_model: not ready", not c.is_model_ready("mlp"))
        fails_with("infer on an unloaded model", 503, lambda: c.infer("mlp", [good]), "unloaded")
        c.load_model("mlp", headers=auth)
        check("load_model: ready again", c.is_model_ready("mlp"))
        # A one-request queue whose batches wait 1.5 s for company: the
        # second and third concurrent requests find it full.
        pending = [c.async_infer("slow", [good]) for _ in range(3)]
        statuses = []
        for a in pending:
            try:
                a.get_result()
                statuses.append(200)
            except InferenceServerException as e:
                statuses.append(int(e.status()))
        check("overloaded queue -> 503, others answered", 503 in statuses and 200 in statuses, statuses)
        check("still live after every error", c.is_server_live())
    finally:
        server.terminate()
        try:
            code = server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "killed"
        check("SIGTERM: exit status 0", code == 0, code)
    print(f"\n{len(failures)} failed" if failures else "\nall passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
