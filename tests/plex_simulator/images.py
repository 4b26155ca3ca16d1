"""Placeholder artwork: small solid-colour PNGs (pure Python, deterministic, cached).

Real servers send JPEG posters; a PNG of the asked size is enough for clients that proxy or
display the image. The colour is derived from the image path, so every item looks different.
"""

from __future__ import annotations

from functools import lru_cache
import hashlib
import struct
from typing import Final
import zlib

MAX_SIDE: Final = 1920
DEFAULT_SIZES: Final[dict[str, tuple[int, int]]] = {
    "thumb": (300, 450),
    "art": (640, 360),
    "banner": (600, 110),
    "composite": (300, 300),
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@lru_cache(maxsize=256)
def solid_png(rgb: tuple[int, int, int], width: int, height: int) -> bytes:
    """A width x height PNG of one colour."""
    width = max(1, min(width, MAX_SIDE))
    height = max(1, min(height, MAX_SIDE))
    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * height, 6))
        + _chunk(b"IEND", b"")
    )


def colour_of(path: str) -> tuple[int, int, int]:
    """A stable, not too dark colour for an image path."""
    digest = hashlib.sha256(path.encode()).digest()
    return (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)


def image_for(path: str, width: int | None = None, height: int | None = None) -> bytes:
    """The placeholder for an image path (`/library/metadata/1/thumb/123`...)."""
    kind = next((k for k in DEFAULT_SIZES if f"/{k}" in path), "thumb")
    default_w, default_h = DEFAULT_SIZES[kind]
    return solid_png(colour_of(path.split("?", 1)[0]), width or default_w, height or default_h)
