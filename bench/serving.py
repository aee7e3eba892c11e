"""What the service benchmarks share: the CLI in a subprocess, ``leadscore serve`` started in
its own process and stopped, CPU seconds of a process (and of its workers), percentiles.

Imported by ``api_ingest.py``, ``load_mixed.py`` and ``webhook_latency.py`` (run from the
project root, ``bench/`` is on ``sys.path``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

LEADSCORE = [sys.executable, "-c", "from leadscore.cli import main; main()"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    """Run ``leadscore ARGS...`` in a subprocess; its stdout (a failure raises)."""
    return subprocess.run([*LEADSCORE, *args], capture_output=True, text=True, check=True, env=env).stdout


def admin_key(db: str, name: str = "bench", env: dict[str, str] | None = None) -> str:
    """A new admin key on ``db`` (``keys create`` prints it alone on its last line)."""
    return cli("keys", "create", "--name", name, "--scope", "admin", "--db", db, env=env).strip().splitlines()[-1]


@contextmanager
def served(db: str, *, workers: int = 1, wait_s: float = 30.0, extra: tuple[str, ...] = (),
           env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``leadscore serve --db DB`` in its own process on a free port, once ``/health``
    answers: ``(process, base URL)``; stopped (SIGTERM, then waited for) at the end."""
    port = free_port()
    server = subprocess.Popen(
        [*LEADSCORE, "serve", "--db", db, "--port", str(port), "--log-level", "warning",
         "--workers", str(workers), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"leadscore serve did not start (exit code {server.poll()})")
            time.sleep(0.1)
        yield server, url
    finally:
        server.terminate()
        server.wait(timeout=30)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux ``/proc``; None elsewhere): on a shared
    machine the server's CPU time per event is steadier than the wall-clock rate."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU time of process ``pid`` and its descendants (``serve --workers N``: the worker
    processes) so far; None where /proc is missing."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        seconds = cpu_seconds(current)
        if seconds is None:
            if current == pid:
                return None
            continue
        total += seconds
        todo.extend(children.get(current, []))
    return total


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (the nearest rank below)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
