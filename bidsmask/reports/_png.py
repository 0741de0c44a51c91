"""A small PNG encoder (stdlib ``zlib``): the rasters the SVG figures embed.

Rasters are drawn at their native size (one pixel per voxel, matrix cell or volume × voxel) and
scaled by the SVG, so encoding is cheap. Colour-mapped rasters are indexed (one byte a pixel and
a palette); composited ones (brain slices with a coloured overlay) are RGB. No date or software
chunk: the same pixels give the same bytes.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Return the PNG file of an image.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(rows, columns, 3)`` RGB, or ``(rows, columns)`` grey levels or, with ``palette``,
        indices into it; values are cast to ``uint8``.
    palette : numpy.ndarray or None
        ``(n, 3)`` RGB or ``(n, 4)`` RGBA colours (``uint8``, at most 256) of an indexed image.

    Returns
    -------
    bytes

    Examples
    --------
    >>> encode_png(np.zeros((2, 3), dtype=np.uint8))[:8] == _SIGNATURE
    True
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    rows, columns = pixels.shape[:2]
    if pixels.ndim == 3:
        colour_type = 2
    else:
        colour_type = 0 if palette is None else 3
    head = _chunk(b"IHDR", struct.pack(">IIBBBBB", columns, rows, 8, colour_type, 0, 0, 0))
    extra = b""
    if palette is not None:
        palette = np.asarray(palette, dtype=np.uint8)
        extra = _chunk(b"PLTE", palette[:, :3].tobytes())
        if palette.shape[1] == 4:
            extra += _chunk(b"tRNS", palette[:, 3].tobytes())
    # each row starts with its filter type (0: none)
    lines = np.zeros((rows, 1 + pixels[0].size), dtype=np.uint8)
    lines[:, 1:] = pixels.reshape(rows, -1)
    body = _chunk(b"IDAT", zlib.compress(lines.tobytes(), 6))
    return _SIGNATURE + head + extra + body + _chunk(b"IEND", b"")
