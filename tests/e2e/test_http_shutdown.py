"""A graceful stop (SIGTERM) of a busy server loses no acknowledged write, and exits cleanly."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from creditledger.infrastructure.http.process import ServerProcess
from tests.e2e.http_support import (
    HTTP_BACKENDS,
    external_purchase,
    new_key,
    purchase_path,
    purchases_path,
    store_url_for,
)

WRITERS = 8
WRITES_PER_WRITER = 150
ACKNOWLEDGED_BEFORE_STOP = 40


def _write_until_refused(base_url: str, acknowledged: list[str], lock: threading.Lock) -> None:
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for _ in range(WRITES_PER_WRITER):
            try:
                response = client.post(
                    purchases_path(),
                    json=external_purchase(),
                    headers={"Idempotency-Key": new_key()},
                )
            except httpx.TransportError:
                return  # the server stopped listening: this write was never acknowledged
            if response.status_code != 201:
                return
            with lock:
                acknowledged.append(response.json()["id"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", HTTP_BACKENDS)
def test_a_graceful_stop_loses_no_acknowledged_write(backend: str, tmp_path: Path) -> None:
    with store_url_for(backend, tmp_path) as url:
        server = ServerProcess(url, tmp_path / "first.log").start()
        acknowledged: list[str] = []
        lock = threading.Lock()
        writers = [
            threading.Thread(
                target=_write_until_refused, args=(server.base_url, acknowledged, lock)
            )
            for _ in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < ACKNOWLEDGED_BEFORE_STOP and time.monotonic() < deadline:
            time.sleep(0.01)
        exit_code = server.stop(signal.SIGTERM)
        for writer in writers:
            writer.join(timeout=60)

        assert exit_code == 0, server.log_tail()
        assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_STOP
        messages = [
            json.loads(line)["message"] for line in server.log_path.read_text().splitlines()
        ]
        assert "ledger closed" in messages

        with (
            ServerProcess(url, tmp_path / "second.log") as restarted,
            httpx.Client(base_url=restarted.base_url, timeout=30.0) as client,
        ):
            missing = [
                purchase_id
                for purchase_id in acknowledged
                if client.get(purchase_path(purchase_id)).status_code != 200
            ]
        assert missing == []
