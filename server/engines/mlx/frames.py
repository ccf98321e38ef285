"""Length-prefixed msgpack frames: a 4-byte big-endian length, then one msgpack map.

The same framing as server/engines/mlx/framing.ts. Reads block on a binary stream;
writes go through one lock so frames from several threads never interleave.
"""

import struct
import threading

import msgpack

HEADER = struct.Struct(">I")
# A run frame carries the whole history, audio included: 30 s of float32 is 1.9 MB per clip.
MAX_FRAME_BYTES = 256 << 20


class FrameError(Exception):
    pass


def encode_frame(message):
    payload = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(payload)) + payload


def _read_exact(stream, n):
    """Reads n bytes, looping over short reads; None on a clean end of stream."""
    chunks = []
    remaining = n
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            if remaining == n:
                return None
            raise FrameError(f"stream ended inside a frame ({n - remaining} of {n} bytes)")
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_frame(stream):
    """Returns the next decoded message, or None when the stream ended between frames."""
    header = _read_exact(stream, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    payload = _read_exact(stream, length) if length else b""
    if payload is None:
        raise FrameError("stream ended after a frame header")
    message = msgpack.unpackb(payload, raw=False)
    if not isinstance(message, dict):
        raise FrameError("frame is not a msgpack map")
    return message


class FrameWriter:
    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message):
        frame = encode_frame(message)
        with self._lock:
            self._stream.write(frame)
            self._stream.flush()
