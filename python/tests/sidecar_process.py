"""A live polars sidecar (``python -m engine_polars``) in a subprocess, spoken to over real
pipes with real frames: shared by the server tests and the fuzz test."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from engine_polars.protocol import encode_frame, read_frame

PYTHON_DIR = Path(__file__).resolve().parents[1]
#: Generous: only reached when the process hangs, which must fail the test rather than block it.
TIMEOUT_S = 60.0


class Sidecar:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.stderr_path = workdir / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine_polars"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=workdir,
            env=env,
        )
        self.frames: queue.Queue[object] = queue.Queue()
        self.trailing = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while (frame := read_frame(self.proc.stdout)) is not None:
                self.frames.put(frame)
            self.frames.put(None)
        except Exception as exc:  # surfaced to the test through the queue
            self.frames.put(exc)

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        self.send_raw(encode_frame(header, body))

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def receive(self) -> tuple[dict[str, Any], bytes]:
        try:
            item = self.frames.get(timeout=TIMEOUT_S)
        except queue.Empty:
            pytest.fail(f"no response within {TIMEOUT_S}s")
        if isinstance(item, Exception):
            raise item
        assert item is not None, "stdout closed before a response"
        return item  # type: ignore[return-value]

    def request(self, header: dict[str, Any], body: bytes = b"") -> tuple[dict[str, Any], bytes]:
        self.send(header, body)
        return self.receive()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self) -> int:
        return self.proc.wait(timeout=TIMEOUT_S)

    def stdout_closed_cleanly(self) -> bool:
        return self.frames.get(timeout=TIMEOUT_S) is None

    def stop(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT_S)
        self._reader.join(timeout=TIMEOUT_S)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()

    def stderr_lines(self) -> list[str]:
        return self.stderr_path.read_text(encoding="utf-8").splitlines()


def sidecar_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POLARS_MAX_THREADS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(PYTHON_DIR)
    env.update(extra)
    return env
