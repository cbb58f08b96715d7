"""Benchmark: how many autosaves and heartbeats one node answers at saturation, and what each
costs the server, driven by wrk (a C load generator) so the client does not starve the server.

The exam-day and delivery benches simulate candidates in Python (asyncio + httpx): realistic,
but their client costs ~0.45 cores at 92 requests/s on this 2-core machine, so they cannot
offer the 1,000 saves/s of issue 15's goal 2 while leaving the server its two cores. Here the
simulated candidates only sign in and start (in Python, before the clock), and then wrk sends
their runners' two hot requests as fast as the server answers them:

1. A throwaway instance as in ``bench/delivery_load.py`` (temporary SQLite file by default, or
   a fresh PostgreSQL database with ``--database-url``), the unproctored bench exam and
   ``--candidates`` candidates, each signed in with a started attempt.
2. ``microcred serve`` (``--server``/``--workers``/``--threads`` as the serve command takes them;
   by default its own defaults).
3. ``wrk -t T -c C -d S`` with a Lua script (written to the work directory) that takes the
   candidates in turn, each wrk thread its own share of them, and sends, per ``--kind``:
   ``saves``, one save per request (``POST /api/attempts/<id>/saves``, the runner's body and
   CSRF header); ``heartbeat`` (``GET .../heartbeat``); or ``mixed``, the two alternately.
   Each candidate's cookie and user agent are the ones its sign-in was issued to.
   Seqs are unique across candidates (candidate i sends i+1, i+1+N, i+1+2N, ...), so the seq in
   an ack names the attempt; wrk's threads record every seq acknowledged ``saved``, and the
   value of each save is a function of its seq (the j-th save of a candidate answers item j mod
   its item count with option j mod its option count).
4. The server is stopped and every acknowledged save is looked up in ``response_saves`` with
   the item, value and flag it was sent with (``check_lost`` of the delivery bench): ``lost``
   and ``mismatched`` must be 0.

Figures: requests/s and saves/s at saturation, wrk's latency percentiles (closed loop: ``-c``
requests in flight at any moment, so read the latency with the concurrency), non-2xx answers by
status (503 is the backpressure limit answering), and the server's CPU milliseconds per request
(its process tree's CPU over the run divided by the requests answered), wrk's CPU apart.

Usage::

    .venv/bin/python bench/save_saturation.py [--kind saves|heartbeat|mixed] [--candidates 500]
        [--seconds 20] [--connections 32] [--wrk-threads 1] [--server gunicorn|granian]
        [--workers N] [--threads N] [--database-url postgresql+psycopg://...]
        [--soak-minutes 30 --pace-ms 20 --window-seconds 60]

The soak (issue 15, goal 12) with a client that does not drift itself: ``--soak-minutes 30
--pace-ms D`` runs the load in windows of ``--window-seconds`` (one wrk run each, the saves'
seqs going on from window to window), each connection waiting ``D`` ms before each request
(choose ``D`` for 80 % of the saturation rate), and prints per window the rate, latency, the
server's CPU and the resident memory of its process tree; at the end every acknowledged save of
every window is checked, with the memory's growth and the last window's p99 over the first's.

Needs wrk (Debian: ``apt-get install wrk``). A benchmark, not a test: it prints its figures,
whatever they are (issue 15's goal on a 2-core machine: >= 1,000 saves/s at saturation, at most
1 ms of server CPU per save or heartbeat, 0 lost). The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from delivery_load import (
    EXAM_CODE,
    Candidate,
    Server,
    Stats,
    _canonical,
    _microcred,
    _run,
    bench_instance,
    check_lost,
    end_instance,
    machine_cpu,
    prepare,
    steal_cpu,
)

#: the item types a save here answers with one option id (or a list of one, multiple response)
SIMPLE = ("single_choice", "true_false", "multiple_response")

LUA = r"""
local cands = dofile(%(data)s)
local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end
function init(args)
  local nthreads, n = tonumber(args[1]), #cands
  kind = args[2]
  local offset = tonumber(args[3] or "0")  -- a soak's window: its saves' j start here
  if (args[4] or "") ~= "" then  -- the camera frame a snapshot sends
    local f = assert(io.open(args[4], "rb"))
    photo = f:read("*a")
    f:close()
  end
  mine, idx, sent, acked, statuses = {}, 0, 0, {}, {}
  firsts = math.ceil(tonumber(args[5] or "0") / nthreads)  -- this thread's connections
  math.randomseed(1000003 * (tid + 1) + offset)
  for i, c in ipairs(cands) do
    if (i - 1) %% nthreads == tid then
      c.j, c.snap, c.ev = offset, offset, 2 * offset
      c.n, c.i = n, i
      table.insert(mine, c)
    end
  end
end
function request()
  idx = idx %% #mine + 1
  sent = sent + 1
  local c = mine[idx]
  if kind == "snapshot" then  -- the proctoring runner's camera frame (a JPEG body)
    c.snap = c.snap + 1
    return wrk.format("POST", c.snapurl,
      {["Cookie"] = c.cookie, ["X-CSRFToken"] = c.token, ["User-Agent"] = c.ua,
       ["Content-Type"] = "image/jpeg", ["X-Snapshot-Seq"] = string.format("%%d", c.snap)},
      photo)
  end
  if kind == "events" then  -- a focus loss and its return, as the proctoring runner batches them
    c.ev = c.ev + 2
    local at = os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ")
    local body = string.format('{"events":[{"seq":%%d,"kind":"window_blur","at":"%%s"},'
      .. '{"seq":%%d,"kind":"window_focus","at":"%%s"}]}', c.ev - 1, at, c.ev, at)
    return wrk.format("POST", c.evurl,
      {["Cookie"] = c.cookie, ["X-CSRFToken"] = c.token, ["User-Agent"] = c.ua,
       ["Content-Type"] = "application/json"}, body)
  end
  if kind == "saves" or (kind == "mixed" and sent %% 2 == 0) then
    local j = c.j
    c.j = j + 1
    local seq = c.i + j * c.n
    local k = j %% #c.items
    local it = c.items[k + 1]
    local opt = it.opts[j %% #it.opts + 1]
    local value = it.multi and ("[" .. opt .. "]") or opt  -- opt: the option id's JSON
    local body = '{"saves":[{"seq":' .. seq .. ',"item":' .. it.id .. ',"value":' .. value
      .. ',"flagged":false}],"position":' .. it.pos .. '}'
    return wrk.format("POST", "/api/attempts/" .. c.aid .. "/saves",
      {["Cookie"] = c.cookie, ["X-CSRFToken"] = c.token, ["User-Agent"] = c.ua,
       ["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/api/attempts/" .. c.aid .. "/heartbeat",
    {["Cookie"] = c.cookie, ["User-Agent"] = c.ua})
end
%(delay)s
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    for seq in body:gmatch('"seq":(%%d+),"status":"saved"') do
      acked[#acked + 1] = tonumber(seq)
    end
  end
end
function done(summary, latency, requests)
  local out = {}
  local codes = {}
  local seqs = {}
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("statuses")) do
      codes[#codes + 1] = '[' .. code .. ',' .. count .. ']'
    end
    for _, seq in ipairs(t:get("acked")) do seqs[#seqs + 1] = string.format("%%d", seq) end
  end
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"duration_us":%%d,"errors":{"connect":%%d,"read":%%d,'
    .. '"write":%%d,"status":%%d,"timeout":%%d},"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,'
    .. '"max_us":%%d,"statuses":[%%s],"acked":[%%s]}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(codes, ","), table.concat(seqs, ",")))
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII is a valid Lua string literal


#: candidates per function of the Lua data file
LUA_CHUNK = 100


def _lua_data(cands: list[Candidate], agent: str) -> str:
    """The candidates as a Lua table: attempt, cookie, CSRF token, user agent, answerable items."""
    rows = []
    for c in cands:
        cookie = "; ".join(f"{name}={value}" for name, value in c.client.cookies.items())
        items = ",".join(
            f"{{id={item['id']},pos={pos},"
            f"multi={'true' if item['type'] == 'multiple_response' else 'false'},"
            f"opts={{{','.join(lua_string(json.dumps(o['id'])) for o in item['options'])}}}}}"
            for pos, item in c.simple)
        proctoring = getattr(c, "proctoring", None) or {}
        urls = "".join(f",{name}={lua_string(proctoring[key])}" for name, key in
                       (("snapurl", "snapshots_url"), ("evurl", "events_url")) if key in proctoring)
        rows.append(f"{{aid={c.attempt_id},cookie={lua_string(cookie)},"
                    f"token={lua_string(c.token)},ua={lua_string(agent)},items={{{items}}}{urls}}}")
    # one function per LUA_CHUNK candidates: LuaJIT allows 65,536 constants per function, and
    # one table literal of 5,000 candidates has more
    chunks = [rows[i:i + LUA_CHUNK] for i in range(0, len(rows), LUA_CHUNK)]
    return ("local t = {}\n" + "".join(
        "do\n  local function add()\n" + "".join(f"    t[#t + 1] = {row}\n" for row in chunk)
        + "  end\n  add()\nend\n" for chunk in chunks) + "return t\n")


def expected_saves(cands: list[Candidate], seqs: list[int]) -> dict[tuple[int, int], tuple]:
    """What each acknowledged seq was sent as: (attempt, seq) -> (item, value, flagged), the
    Lua script's rule in Python."""
    n = len(cands)
    out = {}
    for seq in seqs:
        i, j = (seq - 1) % n, (seq - 1) // n
        c = cands[i]
        _, item = c.simple[j % len(c.simple)]
        option = item["options"][j % len(item["options"])]["id"]
        value = [option] if item["type"] == "multiple_response" else option
        out[(c.attempt_id, seq)] = (item["id"], _canonical(value), False)
    return out


async def sign_in_all(base_url: str, emails: list[str], concurrency: int,
                      stats: Stats) -> list[Candidate]:
    """Sign every candidate in and start its attempt (the delivery bench's set-up)."""
    cands = [Candidate(n, email, base_url, stats, 2026) for n, email in enumerate(emails)]
    gate = asyncio.Semaphore(concurrency)

    async def one(c: Candidate) -> bool:
        async with gate:
            return await c.setup()

    done = await asyncio.gather(*(one(c) for c in cands))
    ready = []
    for c, ok in zip(cands, done):
        if ok:
            # the items in the exam's order (the save's position is the item's index)
            resp = await c.client.get(f"/api/attempts/{c.attempt_id}/state")
            order = resp.json()["items"]
            c.simple = [(pos, i) for pos, i in enumerate(order) if i.get("type") in SIMPLE]
            if c.simple:
                ready.append(c)
    return ready


def _delay_lua(pace_ms: int, pace_range_ms: tuple[int, int] | None) -> str:
    """wrk's ``delay()``: none (saturation), a fixed ``pace_ms`` before each request, or a
    candidate's cadence: each connection's first request at a random moment within one
    interval (the candidates did not all open the page at once), then ``lo``..``hi`` ms apart."""
    if pace_range_ms is not None:
        lo, hi = (int(v) for v in pace_range_ms)
        return (f"local calls = 0\nfunction delay()\n  calls = calls + 1\n"
                f"  if calls <= firsts then return math.random(0, {hi}) end\n"
                f"  return math.random({lo}, {hi})\nend")
    return f"function delay() return {int(pace_ms)} end" if pace_ms > 0 else ""


def start_wrk(base_url: str, cands: list[Candidate], kind: str, seconds: float,
              connections: int, wrk_threads: int, workdir: Path, *, offset: int = 0,
              pace_ms: int = 0, pace_range_ms: tuple[int, int] | None = None,
              photo: Path | None = None, name: str = "load") -> tuple[subprocess.Popen, Path]:
    """Start one wrk run (its script and data written to ``workdir`` under ``name``); its
    output goes to a file, so several runs can go at once. :func:`finish_wrk` reads it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    data = workdir / f"{name}-candidates.lua"
    data.write_text(_lua_data(cands, cands[0].client.headers["User-Agent"]))
    script = workdir / f"{name}.lua"
    script.write_text(LUA % {"data": lua_string(str(data)),
                             "delay": _delay_lua(pace_ms, pace_range_ms)})
    # wrk counts a connection as timed out while it waits its delay: the timeout must outlast it
    timeout = 10 + (pace_range_ms[1] // 1000 if pace_range_ms else pace_ms // 1000)
    out = workdir / f"{name}.out"
    with out.open("w") as fh:
        proc = subprocess.Popen(
            [wrk, "-t", str(wrk_threads), "-c", str(connections), "-d", f"{seconds}s",
             "--timeout", f"{timeout}s", "-s", str(script), base_url, "--", str(wrk_threads),
             kind, str(offset), str(photo or ""), str(connections)],
            stdout=fh, stderr=subprocess.STDOUT, text=True)
    return proc, out


def finish_wrk(proc: subprocess.Popen, out: Path) -> dict[str, Any]:
    """Wait for a run of :func:`start_wrk`: wrk's figures (its JSON line), statuses summed."""
    proc.wait()
    text = out.read_text()
    line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text[-2000:]}")
    w = json.loads(line.removeprefix("WRK_JSON "))
    statuses: dict[str, int] = {}
    for code, count in w["statuses"]:
        statuses[str(code)] = statuses.get(str(code), 0) + count
    w["statuses"] = statuses
    return w


def run_wrk(base_url: str, cands: list[Candidate], kind: str, seconds: float,
            connections: int, wrk_threads: int, workdir: Path,
            server_cpu: Callable[[], float] = lambda: 0.0, *, offset: int = 0,
            pace_ms: int = 0) -> dict[str, Any]:
    """Run wrk's load against ``base_url`` as ``cands``: wrk's figures (its JSON line) with the
    statuses summed, the acknowledged seqs, and the CPU seconds of the server (``server_cpu()``
    before and after), of wrk and of the machine. ``offset``: each candidate's first save is
    its ``offset``-th (a soak's later windows go on where the earlier stopped, in seq space);
    ``pace_ms``: each connection waits this long before each request (0: none, saturation)."""
    cpu0, machine0, steal0 = server_cpu(), machine_cpu(), steal_cpu()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = finish_wrk(*start_wrk(base_url, cands, kind, seconds, connections, wrk_threads, workdir,
                              offset=offset, pace_ms=pace_ms))
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w["cpu_server"], w["cpu_machine"] = server_cpu() - cpu0, machine_cpu() - machine0
    w["cpu_steal"] = steal_cpu() - steal0
    w["cpu_wrk"] = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    return w


def figures(w: dict[str, Any], check: dict[str, int]) -> dict[str, Any]:
    """What the bench prints, from :func:`run_wrk`'s answer and ``check_lost``'s."""
    seconds = w["duration_us"] / 1e6
    statuses = w["statuses"]
    answered = sum(statuses.values())
    return {
        "requests_per_s": round(answered / seconds, 1),
        "saves_per_s": round(len(w["acked"]) / seconds, 1),
        "p50_ms": round(w["p50_us"] / 1000, 1),
        "p90_ms": round(w["p90_us"] / 1000, 1),
        "p99_ms": round(w["p99_us"] / 1000, 1),
        "max_ms": round(w["max_us"] / 1000, 1),
        "server_cpu_ms_per_request": (round(1000 * w["cpu_server"] / answered, 3)
                                      if answered else None),
        "server_cpu_cores": round(w["cpu_server"] / seconds, 2),
        "wrk_cpu_cores": round(w["cpu_wrk"] / seconds, 2),
        "machine_cpu_cores": round(w["cpu_machine"] / seconds, 2),
        "steal_cores": round(w["cpu_steal"] / seconds, 2),
        "statuses": statuses,
        "non_2xx": sum(v for k, v in statuses.items() if not k.startswith("2")),
        "socket_errors": sum(w["errors"].values()) - w["errors"]["status"],
        "acknowledged": len(w["acked"]),
        "lost": check["lost"],
        "mismatched": check["mismatched"],
        "stored_unacknowledged": check["stored_unacknowledged"],
        "seconds": round(seconds, 1),
    }


def soak(base_url: str, cands: list[Candidate], kind: str, minutes: float,
         window_s: int, pace_ms: int, connections: int, wrk_threads: int, workdir: Path,
         server_cpu: Callable[[], float], rss: Callable[[], tuple[float, float]],
         check: Callable[[dict[tuple[int, int], tuple]], dict[str, int]],
         sqlite_file: Path | None = None) -> dict[str, Any]:
    """``minutes`` of paced load in windows of ``window_s`` seconds, one wrk run each (the
    saves going on in seq space), a row of figures per window with the server's memory after
    it; at the end every acknowledged save of every window checked (``check``), the memory's
    growth from the first window to the last and the last window's p99 over the first's."""
    rows, acked = [], []
    windows = max(1, round(minutes * 60 / window_s))
    for n in range(windows):
        w = run_wrk(base_url, cands, kind, window_s, connections, wrk_threads, workdir,
                    server_cpu, offset=n * 1_000_000, pace_ms=pace_ms)
        acked += w["acked"]
        total, largest = rss()
        row = {"window": n + 1, **figures(w, {"lost": 0, "mismatched": 0,
                                                "stored_unacknowledged": 0}),
               "rss_mb": round(total, 1), "worker_rss_mb": round(largest, 1)}
        if sqlite_file is not None:  # the write-ahead log's size: a checkpoint that cannot finish
            wal = Path(f"{sqlite_file}-wal")
            row["wal_mb"] = round(wal.stat().st_size / 2**20, 1) if wal.exists() else 0.0
            row["db_mb"] = round(sqlite_file.stat().st_size / 2**20, 1)
        for key in ("lost", "mismatched", "stored_unacknowledged", "seconds"):
            row.pop(key)
        rows.append(row)
        print(f"window {n + 1}/{windows}: {row['requests_per_s']} requests/s, p50 "
              f"{row['p50_ms']} p99 {row['p99_ms']} max {row['max_ms']} ms, server "
              f"{row['server_cpu_cores']} cores ({row['server_cpu_ms_per_request']} ms per "
              f"request), stolen by the host {row['steal_cores']} cores, RSS {row['rss_mb']} MB (largest worker {row['worker_rss_mb']} MB), "
              f"statuses {row['statuses']}, socket errors {row['socket_errors']}"
              + (f", SQLite {row['db_mb']} MB + WAL {row['wal_mb']} MB" if "wal_mb" in row else ""),
              flush=True)
    found = check(expected_saves(cands, acked))
    first, last = rows[0], rows[-1]
    return {"rows": rows, "acknowledged": len(acked), "lost": found["lost"],
            "mismatched": found["mismatched"],
            "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
            "p99_drift": round(last["p99_ms"] / first["p99_ms"], 2) if first["p99_ms"] else None,
            "rate_drift": (round(last["requests_per_s"] / first["requests_per_s"], 2)
                           if first["requests_per_s"] else None)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=("saves", "heartbeat", "mixed"), default="saves")
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=20, help="wrk's duration")
    ap.add_argument("--connections", type=int, default=32, help="wrk's connections (-c)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk's threads (-t)")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--server", choices=("granian", "gunicorn"), default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--setup-concurrency", type=int, default=8)
    ap.add_argument("--soak-minutes", type=float, default=0.0,
                    help="instead of one run at saturation, this many minutes of load paced by "
                         "--pace-ms, in windows of --window-seconds (goal 12's soak)")
    ap.add_argument("--window-seconds", type=int, default=60)
    ap.add_argument("--pace-ms", type=int, default=0,
                    help="each connection waits this long before each request (choose it for "
                         "80%% of the saturation rate; 0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    if args.candidates < 1 or args.seconds < 1 or args.connections < 1 or args.wrk_threads < 1:
        ap.error("--candidates, --seconds, --connections and --wrk-threads must be positive")
    if args.connections < args.wrk_threads:
        ap.error("--connections must be at least --wrk-threads (each wrk thread needs one)")
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    workdir, log, db, env = bench_instance("microcred-saturation-", args.database_url)
    server = Server(env, log, args.workers, args.threads, None, args.server)
    failed = True
    try:
        db.create()
        _run([_microcred(), "init"], env, log)
        _run([_microcred(), "demo"], env, log)
        # the attempts' time limit outlasts the load (a soak's too): no deadline falls inside it
        emails = prepare(db.url, args.candidates,
                         int(max(args.seconds, args.soak_minutes * 60)) + 1800)
        server.start()
        print(f"database {db.kind}; server {server.kind}, {server.workers} workers x "
              f"{server.threads} threads, {os.cpu_count()} cores; log {log}", flush=True)
        stats = Stats()
        t = time.perf_counter()
        cands = asyncio.run(sign_in_all(server.base_url, emails, args.setup_concurrency, stats))
        print(f"{len(cands)} candidates signed in with an attempt of {EXAM_CODE} started in "
              f"{time.perf_counter() - t:.1f} s; set-up errors {dict(stats.errors) or 0}",
              flush=True)
        if not cands:
            return 1
        time.sleep(2.0)  # the set-up's writes settle (the sweeper, the checkpoint)
        if args.soak_minutes > 0:
            from soak import tree_rss

            result = soak(server.base_url, cands, args.kind, args.soak_minutes,
                          args.window_seconds, args.pace_ms, args.connections,
                          args.wrk_threads, workdir, server.cpu,
                          lambda: tree_rss(server.proc.pid),
                          lambda expected: check_lost(db.url, expected),
                          workdir / "microcred.db" if db.kind == "sqlite" else None)
            server.stop()
            failed = bool(result["lost"] or result["mismatched"])
            print(f"soak: {len(result['rows'])} windows; acknowledged {result['acknowledged']}, "
                  f"lost {result['lost']}, mismatched {result['mismatched']}; RSS growth "
                  f"{result['rss_growth_mb']} MB; p99 last/first {result['p99_drift']}; "
                  f"rate last/first {result['rate_drift']}")
            print(json.dumps({"kind": args.kind, "pace_ms": args.pace_ms,
                              "connections": args.connections, "server": server.kind,
                              "workers": server.workers, "threads": server.threads,
                              "database": db.kind, **result}))
            return 1 if failed else 0
        w = run_wrk(server.base_url, cands, args.kind, args.seconds, args.connections,
                    args.wrk_threads, workdir, server.cpu)
        server.stop()
        out = {"kind": args.kind,
               **figures(w, check_lost(db.url, expected_saves(cands, w["acked"]))),
               "candidates": len(cands), "connections": args.connections,
               "server": server.kind, "workers": server.workers, "threads": server.threads,
               "database": db.kind, "cores": os.cpu_count()}
        statuses = out["statuses"]
        failed = bool(out["lost"] or out["mismatched"] or out["socket_errors"]
                      or (out["non_2xx"] - statuses.get("503", 0)))
        print(f"{args.kind}: {out['requests_per_s']} requests/s, {out['saves_per_s']} saves/s "
              f"acknowledged; latency p50 {out['p50_ms']} p90 {out['p90_ms']} p99 "
              f"{out['p99_ms']} max {out['max_ms']} ms at {args.connections} in flight")
        print(f"server CPU {out['server_cpu_ms_per_request']} ms per request "
              f"({out['server_cpu_cores']} cores); wrk {out['wrk_cpu_cores']} cores; machine "
              f"{out['machine_cpu_cores']} cores, of which the host took {out['steal_cores']}")
        print(f"answers by status {statuses}; socket errors {out['socket_errors']}; acknowledged "
              f"{out['acknowledged']}, lost {out['lost']}, mismatched {out['mismatched']}, "
              f"stored but not acknowledged {out['stored_unacknowledged']}")
        print(json.dumps(out))
        return 1 if failed else 0
    finally:
        end_instance(server, db, workdir, keep=failed or args.keep)


if __name__ == "__main__":
    sys.exit(main())
