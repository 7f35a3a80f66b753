"""The driver <-> env-server framing: a 4-byte big-endian length, then a pickle (protocol 4) of plain Python values."""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO


def read_message(stream: BinaryIO) -> Any:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return pickle.loads(stream.read(size))


def write_message(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=4)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()
