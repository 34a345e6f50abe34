"""Dictionaries, figures and images as artifact bytes (for ``log_dict``, ``log_figure``, ``log_image``).

Nothing here is imported up front: matplotlib, Plotly, NumPy and Pillow are
used only when the object given is one of theirs.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from pathlib import PurePosixPath
from typing import Any

from steward.errors import StewardError

JSON = "application/json"


def _suffix(artifact_file: str) -> str:
    return PurePosixPath(artifact_file).suffix.lower().lstrip(".")


def _json_default(value: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"log_dict: {type(value).__name__} is not JSON serialisable")


def dict_bytes(dictionary: Any, artifact_file: str) -> tuple[bytes, str]:
    """YAML for a ``.yaml``/``.yml`` file (needs PyYAML), JSON (indented) for any other name."""
    if _suffix(artifact_file) in ("yaml", "yml"):
        try:
            import yaml
        except ImportError:
            raise StewardError("log_dict to a .yaml file needs PyYAML (pip install pyyaml); "
                               "or give a .json file name.") from None
        text = yaml.safe_dump(json.loads(json.dumps(dictionary, default=_json_default)),
                              default_flow_style=False, sort_keys=False)
        return text.encode("utf-8"), "application/yaml"
    return json.dumps(dictionary, indent=2, default=_json_default).encode("utf-8"), JSON


def figure_bytes(figure: Any, artifact_file: str) -> tuple[bytes, str | None]:
    """A matplotlib figure in the file name's format (PNG when it has none), or a Plotly figure.

    A Plotly figure becomes a self-contained ``.html`` page (plotly.js inside,
    no CDN: it opens offline), its ``.json`` spec, or an image format through
    kaleido when that is installed.
    """
    fmt = _suffix(artifact_file)
    if hasattr(figure, "savefig"):  # matplotlib.figure.Figure
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt or "png")
        return buffer.getvalue(), None
    if hasattr(figure, "to_plotly_json"):  # plotly.graph_objects.Figure
        if fmt in ("html", "htm"):
            html = figure.to_html(full_html=True, include_plotlyjs=True)
            return html.encode("utf-8"), "text/html; charset=utf-8"
        if fmt == "json":
            return figure.to_json().encode("utf-8"), JSON
        try:
            return figure.to_image(format=fmt or "png"), None
        except (ImportError, ValueError, RuntimeError) as exc:
            raise StewardError(f"log_figure: a Plotly figure as .{fmt or 'png'} needs kaleido ({exc}); "
                               f"name the file .html or .json to store it without.") from None
    raise TypeError(f"log_figure takes a matplotlib Figure or a Plotly figure, got {type(figure).__name__}.")


def _pixels(array: Any) -> Any:
    """An image array as uint8 (H, W) or (H, W, 1|3|4), by MLflow's rules for its values."""
    import numpy as np

    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"log_image: an image array is (height, width) or (height, width, 1|3|4), "
                         f"got shape {array.shape}.")
    if array.size == 0:
        raise ValueError("log_image: the image has no pixels.")
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise ValueError("log_image: integer pixel values must be within 0..255.")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ValueError("log_image: float pixel values must be within 0.0..1.0.")
        return np.round(array * 255).astype(np.uint8)
    raise TypeError(f"log_image: pixel values must be numbers, got dtype {array.dtype}.")


def png_bytes(pixels: Any) -> bytes:
    """Encode uint8 (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA pixels as PNG (zlib only, no Pillow)."""
    import numpy as np

    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(height, width * channels)
    # Each scanline starts with its filter type; 0 is "none".
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def image_bytes(image: Any, artifact_file: str) -> tuple[bytes, str | None]:
    """A Pillow image (in the file name's format, PNG when it has none) or a NumPy array (PNG)."""
    fmt = _suffix(artifact_file)
    if type(image).__module__.startswith("PIL.") and hasattr(image, "save"):
        buffer = io.BytesIO()
        image.save(buffer, format={"jpg": "jpeg", "": "png"}.get(fmt, fmt))
        return buffer.getvalue(), None
    if not hasattr(image, "__array__") and not isinstance(image, (list, tuple)):
        raise TypeError(f"log_image takes a NumPy array or a Pillow image, got {type(image).__name__}.")
    if fmt not in ("png", ""):
        raise ValueError(f"log_image stores an array as PNG: name the file .png, not .{fmt}.")
    return png_bytes(_pixels(image)), "image/png"
