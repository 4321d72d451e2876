#!/usr/bin/env python3
"""Remote graph nodes under load: a forest split into 4 shards served by 4
`tessera serve --node` processes behind a front host, against the same
forest in one process; a hung shard; a killed and restarted replica.

Usage (from anywhere; paths are relative to the repository root):

    python3 bench/remote.py                   # 10 s per load run
    python3 bench/remote.py --quick           # 3 s per load run
    python3 bench/remote.py --no-build --json target/bench-remote/results.json

The model is bench/serve.py's (its functions prepare it): a 100-tree
random forest (max_depth 12) trained by `tessera train` on 100,000 rows of
higgs_like (28 features, seed 0), in target/bench-serve/. `tessera
decompose --with shard --set parts=4` splits it into 4 shards of 25
trees and writes the graph fragment that recombines them (a `weighted`
node); this script adds `remote = ["http://ADDR"]` under each shard node.

The processes, every one a `tessera serve` of this build:

* single: `tessera serve --model higgs=rf.tsr` on 127.0.0.1;
* shard i (i = 0..3): `tessera serve --node <model>_shard_i deploy.toml`,
  on 127.0.0.2 .. 127.0.0.5 (separate loopback addresses; 127.0.0.1 with
  distinct ports where binding to them fails);
* front: `tessera serve deploy.toml` on 127.0.0.1, which calls the shards;
* for the replica run, two `--node higgs` processes (the whole forest) on
  127.0.0.6 and 127.0.0.7 and a front host whose one node has them both.

The runs, in order:

1. Correctness: the same 64 test rows through the front host and through
   the single process: the largest difference of the probabilities.
2. Throughput: bench/serve.py's two cases (1 row at 64 connections, 64
   rows at 8 connections), wrk -t2 with bench/serve_post.lua after a 1 s
   warm-up, single process then 4-process graph, with where the time went:
   the CPU time each process used during the run (from /proc) and, from
   each server's /metrics, its batches, the requests and rows per batch,
   the time per request inside it and each graph node's time per batch
   (on the front host, a shard node's time is its remote call).
   `--front-instances N` (a diagnosis, off by default) gives the front
   host's output `batching = { instances = N }`.
3. Hung shard: a front host whose shard nodes have `timeout_ms = 50` and
   `on_failure = "degrade"`, loaded (1 row, 64 connections); 1 s into the
   run one shard gets SIGSTOP (a hang, not a crash) and stays stopped to
   the end. A sampler posts one request every 50 ms alongside wrk and
   records which shards each answer says are missing. After the run one
   64-row request must answer 200 with `parameters.missing` naming the
   stopped shard; then SIGCONT (always, also on errors), and the time until
   answers are whole again.
4. Replica failover: the two-replica graph under wrk load (1 row, 64
   connections) for --failover-seconds (8): at 2 s replica B gets SIGKILL,
   at 4 s it is restarted on the same address. From the front host's log
   (level info): when it took B out of rotation and put it back, against
   the restart; from B's /metrics: when it first answered a request again.

Targets (the remote-nodes issue's): predictions equal the single process's
(largest difference <= 1e-6); the graph's throughput >= 0.5x the single
process's on the same 2 cores, in both cases; with a shard hung, p99 <
100 ms and answers name the missing shard; with a replica killed, zero
failed requests and the replica back in rotation within 2 s of its restart.

Every process shares 2 cores with wrk: on a machine with more, all of them
are pinned with taskset to two CPUs (see --cpus), as in bench/serve.py.
Every process this script starts is stopped at its end, on errors, Ctrl-C
and SIGTERM too (a stopped shard is continued first). Logs of the servers
are in target/bench-remote/logs/. Python 3.9+, standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import serve as sb  # noqa: E402  (bench/serve.py: data, model, servers, wrk)

common = sb.common
REPO = sb.REPO
OUT = common.TARGET / "bench-remote"
LOGS = OUT / "logs"
SHARDS = OUT / "shards"
TESSERA = sb.TESSERA
# The servers' logs go here rather than to bench/serve.py's folder.
sb.LOGS = LOGS

PARTS = 4
SINGLE_NAME = sb.MODEL_NAME            # the model name of the single process
REPLICA_NODE = "higgs"                 # the node (and output) of the replica graph
# Loopback addresses: the 4 shards, then the 2 replicas.
SHARD_HOSTS = [f"127.0.0.{i}" for i in range(2, 2 + PARTS)]
REPLICA_HOSTS = ["127.0.0.6", "127.0.0.7"]
FRONT_HOST = "127.0.0.1"

CASES = sb.CASES
CASE_TEXT = sb.CASE_TEXT

# The hung-shard run.
STOP_TIMEOUT_MS = 50
STOP_AT_S = 1.0                        # SIGSTOP this long into the run
SAMPLE_EVERY_S = 0.05
# The failover run.
FAILOVER_S = 8
KILL_AT_S = 2.0
RESTART_AT_S = 4.0

# Targets.
MAX_DIFF = 1e-6
GRAPH_VS_SINGLE = 0.5
STOP_P99_MS = 100.0
BACK_WITHIN_S = 2.0

BACK_LINE = "replica back in rotation"
OUT_LINE = "replica out of rotation"


class Failure(Exception):
    """A step that could not run; its phase is reported as not run."""


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

@dataclass
class Proc(sb.Server):
    """A `tessera serve` on `host:port` answering model `model`."""
    host: str = FRONT_HOST
    model: str = SINGLE_NAME
    stopped: bool = False              # SIGSTOP sent, SIGCONT not yet

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    @property
    def infer_url(self) -> str:
        return self.url(f"/v2/models/{self.model}/infer")

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"


# Everything started, for the cleanup.
STARTED: list[Proc] = []
BACKGROUND: list[subprocess.Popen] = []


def serve_cmd(args: list[str], host: str, port: int, extra: list[str]) -> list[str]:
    return [str(TESSERA), "serve", *args, "--listen", f"{host}:{port}", *extra]


def launch(p: Proc, pin: list[str]) -> Proc:
    STARTED.append(p)
    ok, why = sb.start(p, pin)
    if not ok:
        lines = sb.tail(p.log, 6) if p.log else []
        raise Failure(f"{p.name} did not start: {why}"
                      + ("".join(f"\n    {ln}" for ln in lines)))
    return p


def stop(p: Proc) -> None:
    if p.stopped and p.proc is not None and p.proc.poll() is None:
        resume(p)
    sb.stop(p)


def resume(p: Proc) -> None:
    try:
        os.kill(p.proc.pid, signal.SIGCONT)
    except (ProcessLookupError, PermissionError, AttributeError):
        pass
    p.stopped = False


def cleanup() -> None:
    # Stopped shards first: a process in SIGSTOP does not act on SIGTERM.
    for p in STARTED:
        if p.stopped:
            resume(p)
    for w in BACKGROUND:
        if w.poll() is None:
            w.kill()
        try:
            w.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    # SIGTERM to all at once, then bench/serve.py's stop (wait, then
    # SIGKILL to what is left) one by one.
    for p in STARTED:
        if p.proc is not None and p.exit_code is None and p.proc.poll() is None:
            try:
                os.kill(p.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    for p in STARTED:
        sb.stop(p)


def usable_hosts() -> tuple[bool, str]:
    """Whether every loopback address this script wants can be listened on
    and connected to."""
    for host in SHARD_HOSTS + REPLICA_HOSTS:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                s.listen(1)
                with socket.create_connection(s.getsockname(), timeout=2):
                    pass
        except OSError as e:
            return False, f"{host}: {e}"
    return True, ""


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Wrk:
    """wrk in the background (bench/serve.py's command and summary)."""

    def __init__(self, wrk: str, pin: list[str], url: str, body: Path, conns: int,
                 seconds: int):
        self.seconds = seconds
        self.cmd = sb.wrk_command(wrk, pin, url, body, conns, seconds)
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, cwd=REPO)
        BACKGROUND.append(self.proc)
        self.t0 = time.monotonic()

    def result(self) -> dict[str, Any]:
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return {"error": f"wrk did not finish within {self.seconds + 60} s",
                    "cmd": self.cmd}
        return sb.wrk_summary(self.cmd, self.proc.returncode, out, err)


def sleep_until(t: float) -> None:
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


# --------------------------------------------------------------------------
# CPU time, from /proc
# --------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> Optional[float]:
    """User + system time of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, ValueError, IndexError):
        return None


def machine_ticks() -> Optional[tuple[int, int]]:
    """(busy, total) jiffies of all CPUs."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])
    return total - idle, total


class CpuWatch:
    """The CPU each named process used between start() and stop(), in %
    of one core, and the machine's busy CPUs (the rest: wrk, the kernel,
    anything else running)."""

    def __init__(self, procs: dict[str, Proc]):
        self.procs = procs

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.m0 = machine_ticks()
        self.c0 = {k: cpu_seconds(p.proc.pid) for k, p in self.procs.items()}

    def stop(self) -> dict[str, Any]:
        dt = time.monotonic() - self.t0
        m1 = machine_ticks()
        out: dict[str, Any] = {}
        for k, p in self.procs.items():
            a, b = self.c0.get(k), cpu_seconds(p.proc.pid)
            out[k] = None if a is None or b is None or dt <= 0 else 100 * (b - a) / dt
        if self.m0 and m1 and m1[1] > self.m0[1]:
            cpus = os.cpu_count() or 1
            out["machine"] = 100 * cpus * (m1[0] - self.m0[0]) / (m1[1] - self.m0[1])
        return out


def cpu_text(cpu: dict[str, Any]) -> str:
    parts = [f"{k} {v:.0f}%" for k, v in cpu.items() if k != "machine" and v is not None]
    if cpu.get("machine") is not None:
        mine = sum(v for k, v in cpu.items() if k != "machine" and v is not None)
        parts.append(f"wrk and the rest {max(cpu['machine'] - mine, 0):.0f}%")
        parts.append(f"machine {cpu['machine']:.0f}% of {100 * (os.cpu_count() or 1)}%")
    return ", ".join(parts)


# --------------------------------------------------------------------------
# The servers' own figures, from /metrics
# --------------------------------------------------------------------------

def metrics(p: Proc) -> dict[str, float]:
    """Every sample of a server's /metrics, keyed by name and labels."""
    try:
        with urllib.request.urlopen(p.url("/metrics"), timeout=2) as r:
            text = r.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return {}
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def server_figures(before: dict[str, float], after: dict[str, float], model: str,
                   seconds: float) -> dict[str, Any]:
    """What one server did between two /metrics snapshots: its batches,
    the requests and rows per batch, the time per request from its read
    to its answer, and each graph node's time per batch."""
    d = {k: v - before.get(k, 0.0) for k, v in after.items()}

    def mean(metric: str, label: str) -> Optional[float]:
        c = d.get(f"{metric}_count{{{label}}}")
        return d.get(f"{metric}_sum{{{label}}}", 0.0) / c if c else None

    m = f'model="{model}"'
    batches = d.get(f"tessera_batch_requests_count{{{m}}}", 0.0)
    t = mean("tessera_inference_duration_seconds", m)
    nodes = {}
    for k in d:
        g = re.fullmatch(r'tessera_node_duration_seconds_count\{node="([^"]+)"\}', k)
        if g:
            v = mean("tessera_node_duration_seconds", f'node="{g.group(1)}"')
            if v is not None:
                nodes[g.group(1)] = v * 1000
    return {"batches_per_s": batches / seconds if seconds > 0 else None,
            "requests_per_batch": mean("tessera_batch_requests", m),
            "rows_per_batch": mean("tessera_batch_rows", m),
            "request_ms": None if t is None else t * 1000,
            "node_ms_per_batch": nodes}


def short_node(node: str) -> str:
    """`shard_2` for `<model>_shard_2`."""
    m = re.search(r"_(shard_[0-9]+)$", node)
    return m.group(1) if m else node


def figures_text(name: str, f: dict[str, Any]) -> str:
    if not f or f.get("batches_per_s") is None:
        return f"{name}: n/a"
    text = (f"{name} {f['batches_per_s']:,.0f} batches/s of {f['requests_per_batch'] or 0:.1f} "
            f"requests ({f['rows_per_batch'] or 0:.0f} rows), "
            f"{f['request_ms'] or 0:.2f} ms per request inside")
    nodes = f.get("node_ms_per_batch") or {}
    if nodes:
        text += ", each node's time per batch: " + ", ".join(
            f"{short_node(k)} {v:.2f} ms" for k, v in nodes.items())
    return text


# --------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------

def infer(p: Proc, body: bytes, timeout: float = 30) -> tuple[int, Any, float]:
    """(status, parsed answer or text, seconds)."""
    t = time.monotonic()
    status, raw = sb.post(p.infer_url, body, timeout=timeout)
    took = time.monotonic() - t
    try:
        return status, json.loads(raw), took
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace"), took


def output(answer: Any, name: str) -> Optional[list[float]]:
    if not isinstance(answer, dict):
        return None
    for o in answer.get("outputs") or []:
        if o.get("name") == name:
            return [float(x) for x in o.get("data", [])]
    return None


def missing_of(answer: Any) -> list[str]:
    if not isinstance(answer, dict):
        return []
    m = (answer.get("parameters") or {}).get("missing")
    return list(m) if isinstance(m, list) else []


def check_ok(p: Proc, body: bytes, what: str) -> None:
    try:
        status, answer, _ = infer(p, body)
    except (urllib.error.URLError, OSError) as e:
        raise Failure(f"{what}: the check request failed: {e}")
    if status != 200 or not isinstance(answer, dict) or not answer.get("outputs"):
        raise Failure(sb.short(f"{what}: the check request answered {status}: {answer}"))


def served_200(p: Proc, model: str) -> float:
    """The count of 200 answers of `model` on a server's /metrics (0 when
    none or unreadable)."""
    try:
        with urllib.request.urlopen(p.url("/metrics"), timeout=1) as r:
            text = r.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0.0
    want = f'tessera_inference_requests_total{{model="{model}",code="200"}}'
    for line in text.splitlines():
        if line.startswith(want):
            try:
                return float(line.split()[-1])
            except ValueError:
                return 0.0
    return 0.0


class Sampler(threading.Thread):
    """One request every SAMPLE_EVERY_S beside the load: when, how long,
    the status and the missing shards of each answer."""

    def __init__(self, p: Proc, body: bytes):
        super().__init__(daemon=True)
        self.p, self.body = p, body
        self.done = threading.Event()
        self.samples: list[tuple[float, float, int, list[str]]] = []

    def run(self) -> None:
        while not self.done.is_set():
            t = time.monotonic()
            try:
                status, answer, took = infer(self.p, self.body, timeout=5)
                self.samples.append((t, took, status, missing_of(answer)))
            except (urllib.error.URLError, OSError):
                self.samples.append((t, time.monotonic() - t, 0, []))
            self.done.wait(max(0.0, SAMPLE_EVERY_S - (time.monotonic() - t)))


# --------------------------------------------------------------------------
# The front host's log
# --------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_events(path: Path, text: str, replica: str) -> list[float]:
    """The wall-clock times (seconds since the epoch) of the log lines
    holding `text` about `replica` (`http://host:port`)."""
    out = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        line = ANSI.sub("", line)
        if text not in line or f"replica={replica}" not in line:
            continue
        stamp = line.split(None, 1)[0] if line.strip() else ""
        try:
            out.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
        except ValueError:
            continue
    return out


# --------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------

def build(no_build: bool) -> None:
    if not no_build:
        if sb.sh(["cargo", "build", "--release"]).returncode != 0:
            print("  WARNING: the build failed; using the binaries already in target/release",
                  flush=True)
    if not TESSERA.exists():
        sys.exit(f"missing {sb.rel(TESSERA)}: build with `cargo build --release`")
    h = subprocess.run([str(TESSERA), "serve", "--help"], capture_output=True, text=True)
    if h.returncode != 0 or "--node" not in h.stdout:
        sys.exit(f"{sb.rel(TESSERA)} has no `serve --node` (remote graph nodes): rebuild it")


@dataclass
class Fragment:
    text: str
    output: str                        # the graph output (the model id)
    shards: list[str]                  # the shard node ids, by index


def decompose(model: Path) -> Fragment:
    SHARDS.mkdir(parents=True, exist_ok=True)
    for old in SHARDS.glob("*"):
        if old.is_file():
            old.unlink()
    r = sb.sh([str(TESSERA), "decompose", "--model", str(model), "--with", "shard",
               "--set", f"parts={PARTS}", "--out", str(SHARDS)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("tessera decompose failed:\n" + r.stderr)
    text = (SHARDS / "graph.toml").read_text()
    shards: dict[int, str] = {}
    outputs: list[str] = []
    section = None
    for line in text.splitlines():
        m = re.match(r"\s*\[(nodes|outputs)\.([^\]]+)\]\s*$", line)
        if m:
            section = m.groups()
            if section[0] == "outputs":
                outputs.append(section[1])
            continue
        m = re.match(r'\s*model\s*=\s*"shard_(\d+)\.tsr"', line)
        if m and section and section[0] == "nodes":
            shards[int(m.group(1))] = section[1]
    if sorted(shards) != list(range(PARTS)) or len(outputs) != 1:
        sys.exit(f"unexpected graph fragment from tessera decompose:\n{text}")
    return Fragment(text, outputs[0], [shards[i] for i in range(PARTS)])


def with_remote(fragment: str, node: str, keys: str) -> str:
    head = f"[nodes.{node}]\n"
    if head not in fragment:
        sys.exit(f"no `{head.strip()}` in the graph fragment")
    return fragment.replace(head, head + keys + "\n", 1)


def deploy_file(frag: Fragment, shards: list[Proc], name: str, extra: str = "",
                instances: Optional[int] = None, max_batch: Optional[int] = None) -> Path:
    text = frag.text
    for node, p in zip(frag.shards, shards):
        text = with_remote(text, node, f'remote = ["http://{p.addr}"]' + extra)
    keys = []
    if instances:
        keys.append(f"instances = {instances}")
    if max_batch:
        keys.append(f"max_batch = {max_batch}")
    if keys:
        head = f"[outputs.{frag.output}]\n"
        text = text.replace(head, f"{head}batching = {{ {', '.join(keys)} }}\n", 1)
    path = SHARDS / name                 # next to shard_i.tsr: the paths are relative
    path.write_text(text)
    return path


def replica_file(model: Path, a: str, b: str) -> Path:
    text = (f'[inputs.features]\ndatatype = "FP32"\nshape = [-1, {sb.N_FEATURES}]\n\n'
            f'[nodes.{REPLICA_NODE}]\nmodel = {json.dumps(str(model.resolve()))}\n'
            f'inputs = ["features"]\nremote = ["http://{a}", "http://{b}"]\n\n'
            f'[outputs.{REPLICA_NODE}]\nfrom = "{REPLICA_NODE}"\n')
    path = OUT / "deploy-replicas.toml"
    path.write_text(text)
    return path


def feature_bodies(bodies: dict[str, Path]) -> dict[str, Path]:
    """bench/serve.py's bodies with the tensor named `features` (the graph
    input) instead of `input` (the single model's)."""
    out = {}
    for case, path in bodies.items():
        body = json.loads(path.read_text())
        body["inputs"][0]["name"] = "features"
        p = OUT / f"body.{case}.features.json"
        p.write_text(json.dumps(body, separators=(",", ":")))
        out[case] = p
    return out


# --------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------

def correctness(single: Proc, front: Proc, bodies: dict[str, Path],
                fbodies: dict[str, Path]) -> dict[str, Any]:
    print("\n== correctness: 64 rows through the front host and the single process",
          flush=True)
    s_status, s_ans, _ = infer(single, bodies["batch"].read_bytes())
    f_status, f_ans, _ = infer(front, fbodies["batch"].read_bytes())
    res: dict[str, Any] = {"single_status": s_status, "front_status": f_status}
    sp, fp = output(s_ans, "probabilities"), output(f_ans, "probabilities")
    if s_status != 200 or f_status != 200 or sp is None or fp is None or len(sp) != len(fp):
        res["error"] = sb.short(f"single {s_status}: {s_ans} / front {f_status}: {f_ans}", 300)
        print(f"  ! {res['error']}", flush=True)
        return res
    res["values"] = len(sp)
    res["max_abs_diff"] = max(abs(a - b) for a, b in zip(sp, fp))
    sl, fl = output(s_ans, "label"), output(f_ans, "label")
    res["labels_equal"] = None if sl is None or fl is None else sl == fl
    res["missing"] = missing_of(f_ans)
    print(f"  {len(sp)} probabilities, largest difference {res['max_abs_diff']:.3g}; "
          f"labels equal: {res['labels_equal']}", flush=True)
    return res


def throughput(single: Proc, front: Proc, shards: list[Proc], wrk: str,
               pin: list[str], bodies: dict[str, Path], fbodies: dict[str, Path],
               seconds: int) -> list[dict[str, Any]]:
    rows = []
    graph_procs = {"front": front, **{f"shard {i}": p for i, p in enumerate(shards)}}
    for case, _, conns in CASES:
        for key, p, body, watched in (("single", single, bodies[case], {"single": single}),
                                      ("graph", front, fbodies[case], graph_procs)):
            print(f"\n== throughput, {CASE_TEXT[case]}: {key}", flush=True)
            row: dict[str, Any] = {"key": key, "case": case, "connections": conns}
            try:
                check_ok(p, body.read_bytes(), key)
            except Failure as e:
                row["error"] = str(e)
                print(f"  ! {e}", flush=True)
                rows.append(row)
                continue
            sb.run_wrk(wrk, pin, p.infer_url, body, conns, sb.WARMUP_S)
            sb.drain(p, body)
            print(f"  wrk {seconds} s ...", flush=True)
            watch = CpuWatch(watched)
            m0 = {k: metrics(q) for k, q in watched.items()}
            watch.start()
            res = sb.run_wrk(wrk, pin, p.infer_url, body, conns, seconds)
            cpu = watch.stop()
            m1 = {k: metrics(q) for k, q in watched.items()}
            ran = res.get("duration_us", seconds * 1e6) / 1e6
            row["server_figures"] = {k: server_figures(m0[k], m1[k], q.model, ran)
                                     for k, q in watched.items()}
            sb.drain(p, body)
            row["cpu_percent"] = cpu
            row.update({k: v for k, v in res.items()})
            if "error" not in res:
                print(f"    {res['requests_per_s']:,.0f} requests/s, p50 {res['p50_ms']:.2f} ms, "
                      f"p99 {res['p99_ms']:.2f} ms, errors {res['error_count']}", flush=True)
                print(f"    CPU during the run: {cpu_text(cpu)}", flush=True)
                for k, f in row["server_figures"].items():
                    print(f"    {figures_text(k, f)}", flush=True)
            else:
                print(f"  ! {res['error']}", flush=True)
            rows.append(row)
    return rows


def hung_shard(front: Proc, shards: list[Proc], frag: Fragment, index: int, wrk: str,
               pin: list[str], fbodies: dict[str, Path], conns: int,
               seconds: int) -> dict[str, Any]:
    victim, node = shards[index], frag.shards[index]
    print(f"\n== hung shard: SIGSTOP to {node} {STOP_AT_S:g} s into a {seconds} s run "
          f"(timeout_ms = {STOP_TIMEOUT_MS}, on_failure = \"degrade\")", flush=True)
    res: dict[str, Any] = {"shard": node, "connections": conns, "seconds": seconds,
                           "stop_at_s": STOP_AT_S}
    single_body = fbodies["single"].read_bytes()
    check_ok(front, single_body, "front (degrade)")
    sb.run_wrk(wrk, pin, front.infer_url, fbodies["single"], conns, sb.WARMUP_S)
    sb.drain(front, fbodies["single"])
    sampler = Sampler(front, single_body)
    watch = CpuWatch({"front": front, **{f"shard {i}": p for i, p in enumerate(shards)
                                         if i != index}})
    try:
        w = Wrk(wrk, pin, front.infer_url, fbodies["single"], conns, seconds)
        sampler.start()
        sleep_until(w.t0 + STOP_AT_S)
        t_stop, t_stop_wall = time.monotonic(), time.time()
        os.kill(victim.proc.pid, signal.SIGSTOP)
        victim.stopped = True
        watch.start()
        res["wrk"] = w.result()
        res["cpu_percent"] = watch.stop()
        sampler.done.set()
        sampler.join(10)
        # One more request, the shard still stopped.
        status, answer, took = infer(front, fbodies["batch"].read_bytes())
        res["check"] = {"status": status, "missing": missing_of(answer),
                        "seconds": took,
                        "fallbacks": (answer.get("parameters") or {}).get("fallbacks")
                        if isinstance(answer, dict) else None}
        if status != 200:
            res["check"]["answer"] = sb.short(str(answer), 300)
    finally:
        sampler.done.set()
        t_cont, t_cont_wall = time.monotonic(), time.time()
        if victim.stopped:
            resume(victim)
    # Whole answers again after SIGCONT?
    whole_after = None
    while time.monotonic() - t_cont < 5:
        try:
            status, answer, _ = infer(front, single_body, timeout=5)
            if status == 200 and not missing_of(answer):
                whole_after = time.monotonic() - t_cont
                break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.02)
    res["whole_again_after_cont_s"] = whole_after
    # The front host's view of the stopped shard (its health checks).
    url = f"http://{victim.addr}"
    outs = [t - t_stop_wall for t in log_events(front.log, OUT_LINE, url)
            if t >= t_stop_wall - 0.05]
    backs = [t - t_cont_wall for t in log_events(front.log, BACK_LINE, url)
             if t >= t_stop_wall]
    res["out_of_rotation_after_stop_s"] = outs[0] if outs else None
    res["back_in_rotation_after_cont_s"] = backs[0] if backs else None
    # The sampler's view: before and after the stop.
    before = [s for s in sampler.samples if s[0] < t_stop]
    after = [s for s in sampler.samples if s[0] >= t_stop]
    res["samples"] = {
        "before_stop": len(before),
        "before_stop_degraded": sum(1 for s in before if s[3]),
        "after_stop": len(after),
        "after_stop_naming_shard": sum(1 for s in after if node in s[3]),
        "after_stop_other_missing": sum(1 for s in after if set(s[3]) - {node}),
        "after_stop_not_200": sum(1 for s in after if s[2] != 200),
        "after_stop_max_ms": max((s[1] for s in after), default=0) * 1000,
        "first_second_max_ms": max((s[1] for s in after if s[0] < t_stop + 1), default=0)
        * 1000,
    }
    r = res["wrk"]
    if "error" in r:
        print(f"  ! {r['error']}", flush=True)
    else:
        print(f"    {r['requests_per_s']:,.0f} requests/s, p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms, max {r['latency_us']['max'] / 1000:.1f} ms, "
              f"errors {r['error_count']}", flush=True)
    print(f"    CPU while stopped: {cpu_text(res.get('cpu_percent', {}))}", flush=True)
    print(f"    check request: {res['check']['status']}, missing {res['check']['missing']}, "
          f"{res['check']['seconds'] * 1000:.1f} ms", flush=True)
    sm = res["samples"]
    print(f"    sampled answers after the stop: {sm['after_stop']}, "
          f"{sm['after_stop_naming_shard']} naming the shard, {sm['after_stop_other_missing']} "
          f"missing another, slowest {sm['after_stop_max_ms']:.1f} ms", flush=True)
    print("    whole answers again "
          + (f"{whole_after:.2f} s after SIGCONT" if whole_after is not None
             else "not within 5 s of SIGCONT")
          + f"; front host's log: out of rotation {secs(res['out_of_rotation_after_stop_s'])} "
          f"after SIGSTOP, back {secs(res['back_in_rotation_after_cont_s'])} after SIGCONT",
          flush=True)
    return res


def failover(model: Path, wrk: str, pin: list[str], fbodies: dict[str, Path],
             hosts: list[str], conns: int, seconds: int, serve_extra: list[str]) -> dict[str, Any]:
    print(f"\n== replica failover: SIGKILL replica B at {KILL_AT_S:g} s, restart at "
          f"{RESTART_AT_S:g} s, of a {seconds} s run", flush=True)
    ports = [free_port(h) for h in hosts]
    addrs = [f"{h}:{p}" for h, p in zip(hosts, ports)]
    deploy = replica_file(model, *addrs)
    node_args = ["--node", REPLICA_NODE, str(deploy)]

    def replica(tag: str, i: int) -> Proc:
        return Proc(f"replica_{tag}", f"replica {tag}",
                    serve_cmd(node_args, hosts[i], ports[i], serve_extra), ports[i],
                    "/v2/health/ready", host=hosts[i], model=REPLICA_NODE)

    a = launch(replica("a", 0), pin)
    b = launch(replica("b", 1), pin)
    fport = free_port(FRONT_HOST)
    front = launch(Proc("front_replicas", "front (2 replicas)",
                        serve_cmd([str(deploy)], FRONT_HOST, fport, serve_extra), fport,
                        "/v2/health/ready", host=FRONT_HOST, model=REPLICA_NODE), pin)
    body = fbodies["single"]
    check_ok(front, body.read_bytes(), "front (2 replicas)")
    sb.run_wrk(wrk, pin, front.infer_url, body, conns, sb.WARMUP_S)
    sb.drain(front, body)
    b_url = f"http://{b.addr}"
    res: dict[str, Any] = {"connections": conns, "seconds": seconds, "kill_at_s": KILL_AT_S,
                           "restart_at_s": RESTART_AT_S, "replicas": [f"http://{x}" for x in addrs]}
    w = Wrk(wrk, pin, front.infer_url, body, conns, seconds)
    sleep_until(w.t0 + KILL_AT_S)
    served_before = served_200(b, REPLICA_NODE)
    t_kill = time.time()
    os.kill(b.proc.pid, signal.SIGKILL)
    sb.stop(b)                           # reaps it
    res["b_served_before_kill"] = served_before
    sleep_until(w.t0 + RESTART_AT_S)
    b2 = replica("b_restarted", 1)
    t_restart = time.time()
    launch(b2, pin)
    res["restarted_ready_s"] = time.time() - t_restart
    first_served = None
    while w.proc.poll() is None:
        if first_served is None and served_200(b2, REPLICA_NODE) > 0:
            first_served = time.time() - t_restart
        time.sleep(0.02)
    res["wrk"] = w.result()
    if first_served is None and served_200(b2, REPLICA_NODE) > 0:
        first_served = time.time() - t_restart
    res["first_served_after_restart_s"] = first_served
    res["b_restarted_served"] = served_200(b2, REPLICA_NODE)
    res["a_served"] = served_200(a, REPLICA_NODE)
    outs = [t - t_kill for t in log_events(front.log, OUT_LINE, b_url) if t >= t_kill - 0.05]
    backs = [t - t_restart for t in log_events(front.log, BACK_LINE, b_url)
             if t >= t_kill]
    res["out_of_rotation_after_kill_s"] = outs[0] if outs else None
    res["back_in_rotation_after_restart_s"] = backs[0] if backs else None
    res["log_lines"] = [ANSI.sub("", ln) for ln in sb.tail(front.log, 400)
                        if "rotation" in ln][-10:]
    r = res["wrk"]
    if "error" in r:
        print(f"  ! {r['error']}", flush=True)
    else:
        print(f"    {r['requests_per_s']:,.0f} requests/s, p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms, max {r['latency_us']['max'] / 1000:.1f} ms, "
              f"errors {r['errors']}", flush=True)

    def s(x: Optional[float]) -> str:
        return "never" if x is None else f"{x:.3f} s"
    print(f"    out of rotation {s(res['out_of_rotation_after_kill_s'])} after SIGKILL; "
          f"restarted replica ready {s(res['restarted_ready_s'])}, back in rotation "
          f"{s(res['back_in_rotation_after_restart_s'])}, first request served "
          f"{s(first_served)} after the restart", flush=True)
    for ln in res["log_lines"]:
        print(f"    | {ln}", flush=True)
    for p in (front, a, b2):
        stop(p)
    return res


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def ms(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def secs(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


def wrk_cells(r: dict[str, Any]) -> str:
    if not r or "error" in r:
        return f"not run: {(r or {}).get('error', '?')} | | | | |"
    e = r["errors"]
    sock = e["connect"] + e["read"] + e["write"] + e["timeout"]
    return (f"{r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['latency_us']['max'] / 1000:.1f} | {e['status']} | {sock}")


def report(a: argparse.Namespace, argv: list[str], meta: dict[str, Any],
           results: dict[str, Any]) -> list[dict[str, Any]]:
    seconds = meta["seconds"]
    print()
    print(f"Command: `python3 bench/remote.py{(' ' + shlex.join(argv)) if argv else ''}`")
    print(f"Model: random forest, {sb.RF_TREES} trees, max_depth {sb.RF_MAX_DEPTH}, trained "
          f"on {sb.TRAIN_ROWS:,} rows of {sb.DATASET} ({sb.N_FEATURES} features); graph: "
          f"{PARTS} shards of it (`tessera decompose --with shard`), each in its own "
          f"`tessera serve --node` process ({meta['addresses']}), behind a front host on "
          f"{FRONT_HOST}. Load: wrk -t{sb.WRK_THREADS}, {seconds} s per throughput run after "
          f"a {sb.WARMUP_S} s warm-up, bench/serve_post.lua; {meta['pin_note']}."
          + f" The front host's output has `max_batch = {a.front_max_batch}`."
          + (f" The front hosts' output has `batching = {{ instances = {a.front_instances} }}` "
             "(--front-instances)." if a.front_instances else "")
          + (f" Every `tessera serve` gets `{a.serve_args}` (--serve-args)."
             if a.serve_args else ""))
    load = meta["load_before"]
    print(f"Machine: {common.machine_line()}; load average before the runs: "
          f"{'?' if load is None else f'{load:.1f}'}. {meta['wrk_version']}.")
    print()
    corr = results.get("correctness") or {}
    if "max_abs_diff" in corr:
        print(f"Correctness: {corr['values']} probabilities (64 rows) through the front host "
              f"and the single process: largest difference {corr['max_abs_diff']:.3g}; "
              f"labels equal: {corr['labels_equal']}.")
    else:
        print(f"Correctness: not run: {corr.get('error', results.get('setup_error', '?'))}")
    print()
    print("| server | case | requests/s | p50 ms | p99 ms | max ms | non-2xx | socket errors "
          "| graph ÷ single |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    tp = results.get("throughput") or []
    names = {"single": "single process (`--model`)", "graph": "**4-process graph** (front + "
             f"{PARTS} shards)"}
    for case, _, _ in CASES:
        for r in (x for x in tp if x["case"] == case):
            vs = sb.fmt_ratio(graph_ratio(tp, case)) if r["key"] == "graph" else ""
            print(f"| {names[r['key']]} | {CASE_TEXT[case]} | {wrk_cells(r)} | {vs} |")
    print()
    print("Where the time went (CPU from /proc, in % of one core; batches and times from "
          "each server's /metrics: \"inside\" is from reading a request to answering it, a "
          "front host's shard node time is its remote call):")
    for r in tp:
        if not r.get("cpu_percent"):
            continue
        what = "graph" if r["key"] == "graph" else "single process"
        print(f"- {what}, {CASE_TEXT[r['case']]}: CPU {cpu_text(r['cpu_percent'])}")
        figs = r.get("server_figures") or {}
        keys = [k for k in figs if not k.startswith("shard")] + \
            [k for k in figs if k.startswith("shard")][:1]
        for k in keys:
            print(f"  - {figures_text(k, figs[k])}")
    print()
    hs = results.get("hung") or {}
    if hs.get("wrk"):
        print(f"Hung shard: `kill -STOP` {hs['shard']} {hs['stop_at_s']:g} s into a "
              f"{hs['seconds']} s run (1 row, {hs['connections']} connections; every shard "
              f"node `timeout_ms = {STOP_TIMEOUT_MS}`, `on_failure = \"degrade\"`), "
              "SIGCONT after it.")
        print()
        print("| run | requests/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | "
              "check request: status, `missing` |")
        print("|---|--:|--:|--:|--:|--:|--:|---|")
        c = hs.get("check", {})
        print(f"| front host, one shard stopped | {wrk_cells(hs['wrk'])} | "
              f"{c.get('status')}, {json.dumps(c.get('missing'))} |")
        sm = hs.get("samples", {})
        print(f"- Sampled answers (one every {SAMPLE_EVERY_S * 1000:.0f} ms beside wrk): "
              f"before the stop {sm.get('before_stop')} ({sm.get('before_stop_degraded')} "
              f"degraded); after it {sm.get('after_stop')}, {sm.get('after_stop_naming_shard')} "
              f"naming {hs['shard']} as missing, {sm.get('after_stop_other_missing')} missing "
              f"another shard too, {sm.get('after_stop_not_200')} not 200; slowest "
              f"{sm.get('after_stop_max_ms', 0):.1f} ms (in the first second after the stop "
              f"{sm.get('first_second_max_ms', 0):.1f} ms).")
        if hs.get("cpu_percent"):
            print(f"- CPU while the shard was stopped: {cpu_text(hs['cpu_percent'])}")
        w = hs.get("whole_again_after_cont_s")
        print(f"- The front host took the shard out of rotation "
              f"{secs(hs.get('out_of_rotation_after_stop_s'))} after SIGSTOP (its log) and put "
              f"it back {secs(hs.get('back_in_rotation_after_cont_s'))} after SIGCONT; whole "
              "answers again " + (f"{w:.2f} s after SIGCONT." if w is not None
                                  else "not within 5 s of SIGCONT."))
    else:
        print(f"Hung shard: not run: {hs.get('error', results.get('setup_error', '?'))}")
    print()
    fo = results.get("failover") or {}
    if fo.get("wrk"):
        print(f"Replica failover: one remote node (the whole forest) with 2 replicas "
              f"({', '.join(fo['replicas'])}), 1 row at {fo['connections']} connections for "
              f"{fo['seconds']} s; `kill -9` replica B at {fo['kill_at_s']:g} s, restarted on "
              f"the same address at {fo['restart_at_s']:g} s.")
        print()
        print("| run | requests/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | out of "
              "rotation after kill | back in rotation after restart | first served after "
              "restart |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        print(f"| front host, 2 replicas | {wrk_cells(fo['wrk'])} | "
              f"{secs(fo.get('out_of_rotation_after_kill_s'))} | "
              f"{secs(fo.get('back_in_rotation_after_restart_s'))} | "
              f"{secs(fo.get('first_served_after_restart_s'))} |")
        print(f"- The restarted replica answered ready {secs(fo.get('restarted_ready_s'))} after "
              f"its start; it served {fo.get('b_restarted_served', 0):,.0f} requests to the end "
              f"of the run (replica A: {fo.get('a_served', 0):,.0f} in all).")
    else:
        print(f"Replica failover: not run: {fo.get('error', results.get('setup_error', '?'))}")

    tg = targets(results)
    print()
    print("Targets:")
    for t in tg:
        print(f"- {t['target']}: {t['shown']} — {sb.verdict(t['met'])}")
    return tg


def graph_ratio(tp: list[dict[str, Any]], case: str) -> Optional[float]:
    def ok_rps(key: str) -> Optional[float]:
        r = next((x for x in tp if x["key"] == key and x["case"] == case), None)
        if r is None or "error" in r or r.get("error_count") or not r.get("requests"):
            return None
        return r["requests_per_s"]
    return sb.ratio(ok_rps("graph"), ok_rps("single"))


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []

    def add(text: str, value: Any, ok: Optional[bool], shown: str) -> None:
        out.append({"target": text, "value": value, "met": ok, "shown": shown})

    corr = results.get("correctness") or {}
    d = corr.get("max_abs_diff")
    add(f"4 remote shards answer as the single process: largest difference of the "
        f"probabilities ≤ {MAX_DIFF:g}", d, None if d is None else d <= MAX_DIFF,
        "n/a" if d is None else f"{d:.3g}")
    tp = results.get("throughput") or []
    for case, _, _ in CASES:
        r = graph_ratio(tp, case)
        add(f"{CASE_TEXT[case]}: the 4-process graph ≥ {GRAPH_VS_SINGLE:g}× the single "
            f"process's requests/s", r, None if r is None else r >= GRAPH_VS_SINGLE,
            sb.fmt_ratio(r))
    hs = results.get("hung") or {}
    w = hs.get("wrk") or {}
    p99 = w.get("p99_ms") if "error" not in w else None
    add(f"one shard stopped (kill -STOP): p99 < {STOP_P99_MS:g} ms", p99,
        None if p99 is None else p99 < STOP_P99_MS, "n/a" if p99 is None else f"{p99:.2f} ms")
    n2 = w.get("errors", {}).get("status") if "error" not in w else None
    add("one shard stopped: no failed request (non-2xx and socket errors)",
        w.get("error_count") if w and "error" not in w else None,
        None if n2 is None else w["error_count"] == 0,
        "n/a" if n2 is None else f"{w['error_count']}")
    c = hs.get("check") or {}
    named = c.get("status") == 200 and hs.get("shard") in (c.get("missing") or [])
    add("one shard stopped: the answer's `parameters.missing` names it", c.get("missing"),
        None if not c else named,
        "n/a" if not c else f"{c.get('status')}, missing {json.dumps(c.get('missing'))}")
    fo = results.get("failover") or {}
    fw = fo.get("wrk") or {}
    errs = fw.get("error_count") if fw and "error" not in fw else None
    add("replica killed (kill -9) under load: zero failed requests", errs,
        None if errs is None else errs == 0,
        "n/a" if errs is None else
        f"{errs} ({', '.join(f'{k} {v}' for k, v in fw['errors'].items() if v) or 'none'})")
    back = fo.get("back_in_rotation_after_restart_s")
    add(f"restarted replica back in rotation within {BACK_WITHIN_S:g} s (front host's log)",
        back, None if not fo.get("wrk") else (back is not None and back <= BACK_WITHIN_S),
        "never" if fo.get("wrk") and back is None else secs(back))
    return out


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10,
                    help="seconds per throughput run and of the hung-shard run (default 10)")
    ap.add_argument("--quick", action="store_true", help="3 s load runs")
    ap.add_argument("--failover-seconds", type=int, default=FAILOVER_S,
                    help=f"length of the replica failover run (default {FAILOVER_S}; the kill "
                         f"is at {KILL_AT_S:g} s, the restart at {RESTART_AT_S:g} s)")
    ap.add_argument("--connections", type=int, default=64,
                    help="connections of the hung-shard and failover runs (1 row each; "
                         "default 64)")
    ap.add_argument("--stop-shard", type=int, default=2, help="the shard to stop (default 2)")
    ap.add_argument("--front-max-batch", type=int, metavar="ROWS", default=512,
                    help="`batching = { max_batch = ROWS }` on the front host's output "
                         "(default 512: concurrent requests share one call per shard)")
    ap.add_argument("--front-instances", type=int, metavar="N",
                    help="a diagnosis: `batching = { instances = N }` on the front host's "
                         "output (default: the server's default, one per core); the shard "
                         "servers read the same file but serve nodes, not that output")
    ap.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    ap.add_argument("--no-build", action="store_true",
                    help="use the binaries already in target/release")
    ap.add_argument("--cpus", default="auto",
                    help="CPUs for every process and wrk (taskset list, e.g. 0,1); 'auto' "
                         "(default): the first two this script may use when there are more "
                         "than two; 'all': no pinning")
    ap.add_argument("--serve-args", default="",
                    help="extra arguments for every `tessera serve` (one shell-quoted string)")
    ap.add_argument("--datasets-script", default=common.DEFAULT_DATASETS_SCRIPT)
    a = ap.parse_args(argv)
    seconds = 3 if a.quick else a.duration
    if not 0 <= a.stop_shard < PARTS:
        sys.exit(f"--stop-shard: 0..{PARTS - 1}")
    if a.failover_seconds < RESTART_AT_S + 2:
        sys.exit(f"--failover-seconds: at least {RESTART_AT_S + 2:g}")
    extra = shlex.split(a.serve_args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # The servers log at their default level (info): the failover run reads
    # the front host's rotation lines.
    os.environ.pop("TESSERA_LOG", None)

    OUT.mkdir(parents=True, exist_ok=True)
    sb.OUT.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    build(a.no_build)
    wrk = sb.ensure_wrk()
    pin, pin_note = sb.pin_prefix(a.cpus)

    common.ensure_datasets((REPO / a.datasets_script).resolve(), [sb.DATASET], False, 3600)
    train_full, test = common.dataset_paths(sb.DATASET, False)
    train = common.subsample(train_full, sb.TRAIN_ROWS)
    header, test_rows = sb.read_rows(test, max(n for _, n, _ in CASES))
    bodies = sb.write_bodies(header, test_rows)
    fbodies = feature_bodies(bodies)
    model = sb.train_tessera(train)
    frag = decompose(model)

    separate, why_not = usable_hosts()
    global SHARD_HOSTS, REPLICA_HOSTS
    if not separate:
        print(f"  (loopback addresses other than 127.0.0.1 are not usable here ({why_not}): "
              "every process on 127.0.0.1, distinct ports)", flush=True)
        SHARD_HOSTS = [FRONT_HOST] * PARTS
        REPLICA_HOSTS = [FRONT_HOST] * 2
    addresses = (f"{SHARD_HOSTS[0]} .. {SHARD_HOSTS[-1]}" if separate
                 else "127.0.0.1, distinct ports")

    meta = {"seconds": seconds, "pin_note": pin_note, "addresses": addresses,
            "load_before": common.load_average(),
            "wrk_version": sb.tool_version([wrk, "--version"])}
    results: dict[str, Any] = {}
    t_start = time.monotonic()
    try:
        # The shards and front hosts.
        shards: list[Proc] = []
        ports = [free_port(h) for h in SHARD_HOSTS]
        placeholders = [Proc(f"shard{i}", "", [], ports[i], "", host=SHARD_HOSTS[i])
                        for i in range(PARTS)]
        deploy = deploy_file(frag, placeholders, "deploy.toml", instances=a.front_instances,
                             max_batch=a.front_max_batch)
        degrade = deploy_file(frag, placeholders, "deploy-degrade.toml",
                              f"\ntimeout_ms = {STOP_TIMEOUT_MS}\non_failure = \"degrade\"",
                              a.front_instances, a.front_max_batch)
        try:
            sport = free_port(FRONT_HOST)
            single = launch(Proc("single", "single process",
                                 serve_cmd(["--model", f"{SINGLE_NAME}={model}"], FRONT_HOST,
                                           sport, extra), sport, "/v2/health/ready"), pin)
            for i, node in enumerate(frag.shards):
                shards.append(launch(Proc(f"shard{i}", f"shard {i} ({node})",
                                          serve_cmd(["--node", node, str(deploy)],
                                                    SHARD_HOSTS[i], ports[i], extra),
                                          ports[i], "/v2/health/ready", host=SHARD_HOSTS[i],
                                          model=node), pin))
            fport = free_port(FRONT_HOST)
            front = launch(Proc("front", "front host",
                                serve_cmd([str(deploy)], FRONT_HOST, fport, extra), fport,
                                "/v2/health/ready", model=frag.output), pin)
            results["correctness"] = correctness(single, front, bodies, fbodies)
            results["throughput"] = throughput(single, front, shards, wrk, pin, bodies,
                                               fbodies, seconds)
            stop(front)
            stop(single)
            try:
                dport = free_port(FRONT_HOST)
                front_d = launch(Proc("front_degrade", "front host (degrade)",
                                      serve_cmd([str(degrade)], FRONT_HOST, dport, extra),
                                      dport, "/v2/health/ready", model=frag.output), pin)
                results["hung"] = hung_shard(front_d, shards, frag, a.stop_shard, wrk, pin,
                                             fbodies, a.connections, seconds)
            except Failure as e:
                results["hung"] = {"error": str(e)}
                print(f"  ! {e}", flush=True)
        except Failure as e:
            results["setup_error"] = str(e)
            print(f"  ! {e}", flush=True)
        for p in list(STARTED):
            stop(p)
        try:
            results["failover"] = failover(model, wrk, pin, fbodies, REPLICA_HOSTS,
                                           a.connections, a.failover_seconds, extra)
        except Failure as e:
            results["failover"] = {"error": str(e)}
            print(f"  ! {e}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process started", flush=True)
        cleanup()
        return 130
    finally:
        cleanup()
    meta["run_seconds"] = time.monotonic() - t_start

    tg = report(a, argv, meta, results)
    print(f"\n(load runs took {meta['run_seconds']:.0f} s; logs in {sb.rel(LOGS)})")

    if a.json:
        out = {
            "command": ["python3", "bench/remote.py", *argv],
            "settings": {"duration_s": seconds, "warmup_s": sb.WARMUP_S,
                         "wrk_threads": sb.WRK_THREADS, "wrk_timeout": sb.WRK_TIMEOUT,
                         "pinning": pin_note, "addresses": addresses, "parts": PARTS,
                         "stop_timeout_ms": STOP_TIMEOUT_MS, "connections": a.connections,
                         "front_instances": a.front_instances, "serve_args": a.serve_args,
                         "failover_seconds": a.failover_seconds,
                         "model": {"trees": sb.RF_TREES, "max_depth": sb.RF_MAX_DEPTH,
                                   "train_rows": sb.TRAIN_ROWS, "dataset": sb.DATASET,
                                   "seed": sb.SEED},
                         "cases": {c: {"rows": n, "connections": k} for c, n, k in CASES}},
            "machine": common.machine_line(), "platform": platform.platform(),
            "load_average_before": meta["load_before"], "wrk": meta["wrk_version"],
            "results": json.loads(json.dumps(results, default=str)),
            "targets": [{k: v for k, v in t.items() if k != "shown"} for t in tg],
        }
        res = out["results"]
        for r in res.get("throughput", []) + [(res.get(k) or {}).get("wrk") or {}
                                              for k in ("hung", "failover")]:
            if isinstance(r.get("cmd"), list):
                r["cmd"] = shlex.join(r["cmd"])
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {a.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
