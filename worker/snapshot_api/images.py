"""Uploaded images: size-checked and decoded in full before any recognition.

Pillow reads the header first, so a small file that claims a huge picture (a decompression bomb)
is refused before its pixels are allocated; then it decodes every pixel, so a truncated or
corrupt upload is refused with a reason instead of being read as half a grey picture.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
MAX_PIXELS = 25_000_000  # a 6000x4000 photo; more is no camera picture, and costs 75 MB a copy


class BadImage(ValueError):
    """An upload that is not an image we can read; the message says why."""


class TooLarge(BadImage):
    """An upload over the configured size."""


def decode_upload(data: bytes, max_bytes: int) -> np.ndarray:
    """The upload as a BGR image, or BadImage / TooLarge saying why not."""
    if not data:
        raise BadImage("the upload is empty")
    if len(data) > max_bytes:
        raise TooLarge(f"the upload is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit "
                       "(snapshot_api.max_upload_mb)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format not in FORMATS:
                    raise BadImage(f"{opened.format} images are not read; send {', '.join(FORMATS)}")
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise BadImage(f"the image is {width}x{height}, over {MAX_PIXELS // 1_000_000} megapixels")
                rgb = ImageOps.exif_transpose(opened).convert("RGB")  # decodes every pixel
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage(f"the upload is not an image ({', '.join(FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise BadImage(f"the upload is not a readable image ({exc})") from None
    return cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)
