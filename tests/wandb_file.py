"""Read the history of an offline W&B run back from its ``run-<id>.wandb`` file.

The file is a LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB
blocks of records, each with a 7-byte header (crc32, length, type) and a payload that may
be split over blocks (FIRST/MIDDLE/LAST). Payloads are wandb's protobuf ``Record``.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> list[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    pos, pending, out = HEADER, b"", []
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
    return out


def history(run_file: Path, timeout_s: float = 60.0) -> list[dict]:
    """One dict per logged step, keys as logged (``_step`` and friends included), once the
    run's exit record is in the file: W&B's service may still be writing it for a moment
    after ``finish`` returns."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            records = [wandb_internal_pb2.Record.FromString(payload)
                       for payload in _payloads(Path(run_file).read_bytes())]
        except DecodeError:  # a record half written
            records = []
        kinds = [record.WhichOneof("record_type") for record in records]
        if "exit" in kinds or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json)
             for item in record.history.item}
            for record, kind in zip(records, kinds) if kind == "history"]
