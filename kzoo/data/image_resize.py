"""Pillow's bilinear resize and its ``L``/``RGB`` conversions, computed in NumPy for a whole batch at once.

The image-folder pipeline defines its pixels as Pillow's (``Image.convert`` then ``Image.resize(size,
BILINEAR)``). Calling Pillow per image costs about 50 us of Python wrappers under the GIL
(``fromarray``/``convert``/``resize``/``asarray``), more than OpenCV takes to decode a small PNG. This module
computes the same integers without Pillow: the coefficients of ``precompute_coeffs`` and
``normalize_coeffs_8bpc`` (``libImaging/Resample.c``: a triangle filter widened by the shrink factor, so
shrinking is antialiased, each output's weights normalised, then rounded to 22-bit fixed point), one pass
rounded to uint8, then the other, in Pillow's order, each as one matrix product over the batch (float64 holds the
integer sums exactly). ``tests/data/test_image_resize.py`` compares it with Pillow bit for bit over random
sizes, shrinking and enlarging, grey and RGB.
"""

from __future__ import annotations

import functools

import numpy as np

PRECISION_BITS = 32 - 8 - 2  # Resample.c: 8-bit samples, fixed-point weights


@functools.lru_cache(maxsize=256)
def bilinear_weights(in_size, out_size):
    """``(in_size, out_size)`` float64 matrix of Pillow's fixed-point bilinear weights (integers < 2**23)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the bilinear filter's support is 1
    ss = 1.0 / filterscale
    weights = np.zeros((in_size, out_size), dtype=np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)  # C's (int) truncates toward zero, as int() does
        xmax = min(int(center + support + 0.5), in_size) - xmin
        k = []
        for x in range(xmax):
            t = abs((x + xmin - center + 0.5) * ss)
            k.append(1.0 - t if t < 1.0 else 0.0)
        ww = 0.0
        for w in k:  # summed in order, as the C loop does
            ww += w
        for x, w in enumerate(k):
            w = w / ww if ww != 0.0 else w
            weights[xmin + x, xx] = int(0.5 + w * (1 << PRECISION_BITS)) if w >= 0 else \
                int(-0.5 + w * (1 << PRECISION_BITS))
    weights.setflags(write=False)
    return weights


def _round_fixed(sums):
    """``clip8``: fixed-point sums (plus the half added first) back to uint8."""
    shifted = np.floor((sums + (1 << (PRECISION_BITS - 1))) * (1.0 / (1 << PRECISION_BITS)))
    return np.clip(shifted, 0, 255).astype(np.uint8)


def _passes(images, height, width, vertical_first):
    n, in_h, in_w, channels = images.shape

    def vertical(out):
        if out.shape[1] == height:
            return out
        ky = bilinear_weights(out.shape[1], height)
        flat = out.reshape(n, out.shape[1], -1).astype(np.float64)  # (N, H, W * C)
        return _round_fixed(np.swapaxes(ky, 0, 1) @ flat).reshape(n, height, out.shape[2], channels)

    def horizontal(out):
        if out.shape[2] == width:
            return out
        kx = bilinear_weights(out.shape[2], width)
        moved = np.moveaxis(out, 2, 3).astype(np.float64)  # (N, H, C, W)
        return np.moveaxis(_round_fixed(moved @ kx), 3, 2)  # (N, H, width, C)

    out = horizontal(vertical(images)) if vertical_first else vertical(horizontal(images))
    return np.ascontiguousarray(out)


def _pillow_order():
    """How the installed Pillow orders its two passes, found by asking it once: ``"height"`` (Pillow 11.2 and
    later: the vertical pass first when the height shrinks by more than twice what the width does),
    ``"horizontal"`` (earlier releases: always the horizontal pass first), or ``None`` if neither reproduces
    Pillow's pixels (then :func:`resize_bilinear` is not used; see :func:`available`)."""
    global _ORDER
    if _ORDER is _UNKNOWN:
        from PIL import Image

        probe = (np.arange(49 * 38, dtype=np.int64) * 7919 % 251).astype(np.uint8).reshape(49, 38)
        want = np.asarray(Image.fromarray(probe).resize((127, 28), Image.BILINEAR))
        _ORDER = None
        for order, vertical_first in (("height", True), ("horizontal", False)):
            if np.array_equal(_passes(probe[None, :, :, None], 28, 127, vertical_first)[0, :, :, 0], want):
                _ORDER = order
                break
    return _ORDER


_UNKNOWN = object()
_ORDER = _UNKNOWN


def available():
    """Whether this module reproduces the installed Pillow's bilinear resize (checked once)."""
    return _pillow_order() is not None


def resize_bilinear(images, height, width):
    """``images`` uint8 ``(N, H, W, C)`` resized to ``(N, height, width, C)`` exactly as Pillow's
    ``Image.resize((width, height), Image.BILINEAR)`` resizes each image (``L`` for C=1, ``RGB`` for C=3).

    Each pass is rounded to uint8 before the next, in Pillow's order: ``libImaging/Resample.c`` runs the
    vertical pass first when the height shrinks by more than twice as many pixels as the width does.
    """
    images = np.asarray(images)
    _, in_h, in_w, _ = images.shape
    vertical_first = _pillow_order() == "height" and 0 < in_h - height and in_h - height > (in_w - width) * 2
    return _passes(images, height, width, vertical_first)


def to_channels(pixels, channels):
    """A decoded ``(H, W)`` grey or ``(H, W, 3)`` RGB uint8 image as ``(H, W, channels)``, converted as Pillow
    converts: grey to RGB repeats the grey; RGB to ``L`` is ``(19595 R + 38470 G + 7471 B + 0x8000) >> 16``
    (``libImaging/Convert.c``)."""
    if pixels.ndim == 2:
        grey = pixels[..., None]
        return grey if channels == 1 else np.repeat(grey, 3, axis=2)
    if channels == 3:
        return pixels
    rgb = pixels.astype(np.uint32)
    grey = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return grey.astype(np.uint8)[..., None]
