"""Cold start: wall time of a fresh process that opens a store and searches once.

Each command runs `--runs` times in a new process on one data dir that already holds a few
memories (made once before timing), side by side with the interpreter alone (`python -c
pass`) as the baseline:

- the README's one-liner: `from hybridmem import Memory; Memory().search("x", user_id="u")`;
- the CLI: `hybridmem search x --user u`;
- `import hybridmem` alone.

Then one run of the one-liner under `python -X importtime`, summed per top-level package,
to show what start-up time goes where (a package not listed was not imported).

Run: `python benchmarks/cold_start.py [--runs 10]`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table  # noqa: E402

ONE_LINER = "from hybridmem import Memory; Memory().search('x', user_id='u')"


def _cli() -> list[str]:
    found = shutil.which("hybridmem")
    return [found] if found else [sys.executable, "-m", "hybridmem.cli"]


def _time(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
        seconds.append(time.perf_counter() - start)
    return seconds


def import_times(env: dict[str, str]) -> list[tuple[str, float]]:
    """Cumulative import time (s) per top-level package for one run of the one-liner."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", ONE_LINER], env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    per_package: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            per_package[match.group(4).split(".")[0]] += int(match.group(1)) / 1e6
    return sorted(per_package.items(), key=lambda kv: -kv[1])


def main(argv: list[str] | None = None) -> int:
    """Time the cold starts and print them with the import breakdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HYBRIDMEM_HOME": home}
        subprocess.run([sys.executable, "-c", "from hybridmem import Memory\n"
                        "with Memory() as m: m.add(['I like tea', 'My sister Ana lives in Porto'],"
                        " user_id='u')"], env=env, check=True, timeout=300)
        rows = []
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "import hybridmem": [sys.executable, "-c", "import hybridmem"],
            "Memory().search one-liner": [sys.executable, "-c", ONE_LINER],
            "CLI: hybridmem search": [*_cli(), "search", "x", "--user", "u"],
        }
        base = None
        for name, command in commands.items():
            seconds = _time(command, env, args.runs)
            p50, p95 = statistics.median(seconds), float(np.percentile(seconds, 95))
            base = base or p50
            rows.append([name, f"{p50:.2f} / {p95:.2f}", f"{p50 / base:.1f}x"])
        print(f"cold start, {args.runs} fresh processes each, wall seconds (p50 / p95)")
        print(table(["command", "wall s", "vs interpreter"], rows))
        print("\nimport time of the one-liner per top-level package (python -X importtime)")
        top = [(k, v) for k, v in import_times(env) if v >= 0.01]
        print(table(["package", "seconds"], [[k, f"{v:.2f}"] for k, v in top]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
