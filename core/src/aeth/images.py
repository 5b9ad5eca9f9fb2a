"""Images that requests carry: a file path, raw bytes, or base64 text (a ``data:`` URI or bare).

Specialists that see call :func:`load_image` on each entry of ``Request.images``. aeth never
fetches an image from a URL: a request names local content only, so nothing is downloaded on a
user's behalf and no server can be probed through aeth.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from pathlib import Path
from typing import Any

from aeth.errors import AethError

__all__ = ["MAX_BYTES", "ImageError", "image_bytes", "load_image", "to_data_uri"]

_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")
#: Largest image accepted, in bytes (decoded); a guard against decompression bombs and typos.
MAX_BYTES = 32 * 1024 * 1024


class ImageError(AethError):
    """An image in a request cannot be used; the message says which and why."""


def image_bytes(ref: str | bytes | Path, index: int = 0) -> bytes:
    """The encoded bytes of image ``ref`` (``index`` is its position in the request, for messages)."""
    where = f"image {index + 1}"
    if isinstance(ref, (bytes, bytearray)):
        data = bytes(ref)
    elif isinstance(ref, str) and ref.startswith(("http://", "https://")):
        raise ImageError(f"{where}: aeth does not fetch images from URLs ({ref[:60]}); download it and pass the file")
    elif isinstance(ref, str) and (ref.startswith("data:") or (len(ref) >= 64 and _BASE64.fullmatch(ref))):
        try:
            data = base64.b64decode("".join(ref.split(",", 1)[-1].split()), validate=True)
        except (binascii.Error, ValueError):
            raise ImageError(f"{where}: the base64 image data is not valid base64") from None
    elif isinstance(ref, (str, Path)):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ImageError(f"{where}: no such file {str(path)!r}")
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"{where}: {path} is larger than {MAX_BYTES // 2**20} MB")
        data = path.read_bytes()
    else:
        raise ImageError(f"{where}: expected a path, bytes or base64 text, got {type(ref).__name__}")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{where}: larger than {MAX_BYTES // 2**20} MB")
    return data


def load_image(ref: str | bytes | Path, index: int = 0) -> Any:
    """Image ``ref`` as an RGB ``PIL.Image`` (decoded fully, so a broken file fails here)."""
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("reading images needs Pillow: `pip install pillow`") from None
    data = image_bytes(ref, index)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, Image.DecompressionBombError, ValueError) as e:
        raise ImageError(f"image {index + 1}: not a readable image ({type(e).__name__}: {e})") from None


def to_data_uri(data: bytes, mime: str = "image/png") -> str:
    """``data:<mime>;base64,...`` for ``data`` (how the API and JSON output carry images)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
