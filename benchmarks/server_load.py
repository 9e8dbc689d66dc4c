"""`hybridmem serve` under load, against the same searches in process, in one run.

1. A store of `--memories` memories (one user per 500, statements of benchmarks/common.py)
   is built, then searched in process: p50/p95 of one `Memory.search(limit=10)` at a time,
   and the best throughput of 1, 2 and 4 threads for `--seconds` (the 2 cores' figure).
2. The same store is served (`hybridmem serve --no-auth`, loopback, local embedder) and
   loaded by 1, 4 and 16 concurrent clients, as threads (`MemoryClient`) and as asyncio
   tasks (`AsyncMemoryClient`), on a mix of 90 % searches and 10 % adds (rules
   extractor): searches/s, adds/s, search p50/p95/p99, errors.
3. HTTP overhead per search: one client, one search at a time, p50 against step 1's p50,
   and the CPU one search costs the server process (from /proc) against the CPU of the
   same search in process: the CPU figure holds on a busy machine, where the wall-clock
   one measures the scheduler as much as the server.
4. A slow LLM add (an OpenAI-compatible endpoint that answers after `--llm-delay` s)
   beside one searching client: search p95 during the adds against idle, on a second
   server configured with that LLM.
5. The server's RSS: idle (after start), once the first add has opened Milvus Lite, and
   after the load.

Run: `python benchmarks/server_load.py [--memories 2000] [--seconds 8]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import synthetic_statements, table  # noqa: E402
from hybridmem import AsyncMemoryClient, Memory, MemoryClient  # noqa: E402

USERS_PER = 500
QUESTIONS = ["Where does my sister live?", "What do I enjoy?", "Who works at Acme?",
             "Who has a dog?", "What did we talk about on Monday?", "Who likes sailing?",
             "Which cafe was recommended?", "Who is planning a trip?"]


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def build(data_dir: Path, memories: int) -> list[str]:
    users = [f"user-{i}" for i in range(max(1, memories // USERS_PER))]
    texts = synthetic_statements(memories, seed=3)
    with Memory({"data_dir": str(data_dir)}) as memory:
        for n, user in enumerate(users):
            chunk = texts[n * USERS_PER:(n + 1) * USERS_PER]
            for i in range(0, len(chunk), 100):
                memory.add(chunk[i:i + 100], user_id=user, infer=False)
    return users


def in_process(data_dir: Path, users: list[str], seconds: float) -> dict[str, float]:
    rng = random.Random(1)
    with Memory({"data_dir": str(data_dir)}) as memory:
        for user in users:  # warm each scope's in-process views, as a running server has
            memory.search("warm up", user_id=user)
        one = []
        cpu_start = time.process_time()
        for _ in range(200):
            start = time.perf_counter()
            memory.search(rng.choice(QUESTIONS), user_id=rng.choice(users), limit=10)
            one.append(time.perf_counter() - start)
        cpu_ms = (time.process_time() - cpu_start) / 200 * 1000
        best = 0.0
        for threads in (1, 2, 4):
            done = _run_for(seconds, threads, lambda: memory.search(
                rng.choice(QUESTIONS), user_id=rng.choice(users), limit=10))
            best = max(best, done / seconds)
    return {"p50": ms(one, 50), "p95": ms(one, 95), "throughput": best, "cpu_ms": cpu_ms}


def _run_for(seconds: float, threads: int, call) -> int:
    deadline = time.perf_counter() + seconds
    counts = [0] * threads

    def loop(i: int) -> None:
        while time.perf_counter() < deadline:
            call()
            counts[i] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    return sum(counts)


class Serve:
    """A `hybridmem serve --no-auth` child on a free port."""

    def __init__(self, data_dir: Path, config: dict | None = None) -> None:
        command = [sys.executable, "-m", "hybridmem.cli", "serve", "--no-auth", "--port", "0",
                   "--data-dir", str(data_dir), "--max-pending-writes", "256"]
        if config is not None:
            path = data_dir.parent / "serve-config.json"
            path.write_text(json.dumps(config))
            command += ["--config", str(path)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        for line in self.process.stdout:
            found = re.search(r"serving .*? at (http://[^\s/]+)", line)
            if found:
                self.url = found.group(1)
                break
        # the URL is printed once listening; the app answers after the store opens
        while httpx.get(self.url + "/health", timeout=120).status_code != 200:
            time.sleep(0.1)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def sequential(server: Serve, users: list[str], count: int = 300) -> tuple[list[float], float]:
    """One search at a time: wall times, and the server's CPU ms per search."""
    rng = random.Random(2)
    times = []
    cpu_start = server.cpu_seconds()
    with MemoryClient(host=server.url) as client:
        for _ in range(count):
            start = time.perf_counter()
            client.search(rng.choice(QUESTIONS), user_id=rng.choice(users), limit=10)
            times.append(time.perf_counter() - start)
    return times, (server.cpu_seconds() - cpu_start) / count * 1000


def mixed_threads(url: str, users: list[str], clients: int, seconds: float) -> dict:
    searches: list[float] = []
    adds: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        rng = random.Random(i)
        with MemoryClient(host=url) as client:
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                start = time.perf_counter()
                try:
                    if n % 10 == 0:
                        client.add(f"My friend Client{i} enjoys chess number {n}",
                                   user_id=rng.choice(users))
                        adds.append(time.perf_counter() - start)
                    else:
                        client.search(rng.choice(QUESTIONS), user_id=rng.choice(users),
                                      limit=10)
                        searches.append(time.perf_counter() - start)
                except Exception:  # noqa: BLE001 - counted, the figure says how many
                    errors[0] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _summary(searches, adds, errors[0], seconds)


def mixed_async(url: str, users: list[str], clients: int, seconds: float) -> dict:
    searches: list[float] = []
    adds: list[float] = []
    errors = [0]

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        async with AsyncMemoryClient(host=url) as client:
            async def worker(i: int) -> None:
                rng = random.Random(100 + i)
                n = 0
                while time.perf_counter() < deadline:
                    n += 1
                    start = time.perf_counter()
                    try:
                        if n % 10 == 0:
                            await client.add(f"My friend Task{i} enjoys go number {n}",
                                             user_id=rng.choice(users))
                            adds.append(time.perf_counter() - start)
                        else:
                            await client.search(rng.choice(QUESTIONS),
                                                user_id=rng.choice(users), limit=10)
                            searches.append(time.perf_counter() - start)
                    except Exception:  # noqa: BLE001 - counted
                        errors[0] += 1

            await asyncio.gather(*(worker(i) for i in range(clients)))

    asyncio.run(main())
    return _summary(searches, adds, errors[0], seconds)


def _summary(searches: list[float], adds: list[float], errors: int, seconds: float) -> dict:
    return {"searches/s": len(searches) / seconds, "adds/s": len(adds) / seconds,
            "p50": ms(searches, 50), "p95": ms(searches, 95), "p99": ms(searches, 99),
            "errors": errors}


def slow_llm(data_dir: Path, users: list[str], delay: float, seconds: float) -> dict:
    """Search p95 while slow LLM adds run, against idle, on a server with that LLM."""
    from tests.fake_openai import FakeOpenAI, Reply, tool_reply

    with FakeOpenAI() as llm:
        llm.chat_handler = lambda body: Reply(body=tool_reply(
            {"facts": [{"text": "I like slow tea", "relations": []}]}).body, delay=delay)
        config = {"llm": {"provider": "openai", "config": {
            "model": "slow", "api_key": "sk", "openai_base_url": llm.base_url,
            "max_retries": 0, "timeout": delay * 10}}}
        server = Serve(data_dir, config)
        try:
            with MemoryClient(host=server.url) as client:
                client.search("warm up", user_id=users[0])
                client.add("I like slow tea", user_id=users[0])  # opens Milvus Lite
            idle = _searching(server.url, users, seconds)
            stop = threading.Event()

            def adder() -> None:
                with MemoryClient(host=server.url) as client:
                    while not stop.is_set():
                        client.add("I like slow tea", user_id=users[0])

            writers = [threading.Thread(target=adder) for _ in range(4)]
            for w in writers:
                w.start()
            time.sleep(0.5)
            busy = _searching(server.url, users, seconds)
            stop.set()
            for w in writers:
                w.join()
        finally:
            server.stop()
    return {"idle_p95": ms(idle, 95), "during_p95": ms(busy, 95), "idle_p50": ms(idle, 50),
            "during_p50": ms(busy, 50)}


def _searching(url: str, users: list[str], seconds: float) -> list[float]:
    rng = random.Random(5)
    times = []
    deadline = time.perf_counter() + seconds
    with MemoryClient(host=url) as client:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            client.search(rng.choice(QUESTIONS), user_id=rng.choice(users), limit=10)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--llm-delay", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "store"
        users = build(data_dir, args.memories)
        local = in_process(data_dir, users, args.seconds)
        print(f"in process: search p50 {local['p50']:.2f} ms, p95 {local['p95']:.2f} ms, "
              f"best throughput {local['throughput']:.1f} searches/s "
              f"({args.memories} memories, {len(users)} users)")
        server = Serve(data_dir)
        try:
            idle_rss = server.rss_mb()
            with MemoryClient(host=server.url) as client:
                for user in users:
                    client.search("warm up", user_id=user)
                # the first write opens Milvus Lite (and checks it against the record):
                # seconds a running server pays once, not per add
                client.add("My friend Warm enjoys chess", user_id=users[0])
            opened_rss = server.rss_mb()
            one, server_cpu = sequential(server, users)
            print(f"over HTTP, one at a time: p50 {ms(one, 50):.2f} ms, p95 {ms(one, 95):.2f} "
                  f"ms -> overhead p50 {ms(one, 50) - local['p50']:.2f} ms")
            print(f"CPU per search: server {server_cpu:.2f} ms, in process "
                  f"{local['cpu_ms']:.2f} ms -> overhead {server_cpu - local['cpu_ms']:.2f} ms")
            rows = []
            for kind, run in (("threads", mixed_threads), ("asyncio", mixed_async)):
                for clients in args.clients:
                    got = run(server.url, users, clients, args.seconds)
                    rows.append([kind, str(clients), f"{got['searches/s']:.1f}",
                                 f"{got['searches/s'] / local['throughput']:.2f}",
                                 f"{got['adds/s']:.1f}", f"{got['p50']:.1f}",
                                 f"{got['p95']:.1f}", f"{got['p99']:.1f}", str(got["errors"])])
            loaded_rss = server.rss_mb()
        finally:
            server.stop()
        print(table(["clients", "n", "searches/s", "x in-process", "adds/s", "p50 ms",
                     "p95 ms", "p99 ms", "errors"], rows))
        print(f"server RSS: idle {idle_rss:.0f} MiB, after the first add (Milvus Lite open) "
              f"{opened_rss:.0f} MiB, after the load {loaded_rss:.0f} MiB")
        slow = slow_llm(data_dir, users, args.llm_delay, args.seconds)
        print(f"search beside 4 slow LLM adds ({args.llm_delay:.0f} s each): p50 "
              f"{slow['idle_p50']:.1f} -> {slow['during_p50']:.1f} ms, p95 "
              f"{slow['idle_p95']:.1f} -> {slow['during_p95']:.1f} ms "
              f"({slow['during_p95'] / slow['idle_p95']:.2f}x idle)")


if __name__ == "__main__":
    main()
