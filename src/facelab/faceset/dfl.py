"""Import DeepFaceLab faces without running code from them.

A DeepFaceLab aligned JPG carries a pickled dict in a JPEG APP15 segment. Unpickling can call any importable
function, so a crafted face could run code on load. ``SafeUnpickler`` resolves only the handful of globals a
DFL dict of plain values and numpy arrays needs (the ndarray/dtype/scalar rebuilders) from its own table —
it never imports by name — and refuses everything else with a MetadataError before anything is called.
What it does build is then checked before use: nesting depth and size bounded, numbers finite, names plain.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from facelab.errors import MetadataError
from facelab.geometry.pose import pose_from_landmarks
from facelab.io.faceimage import image_header_size, jpeg_segments, list_faces, write_meta
from facelab.io.files import atomic_path
from facelab.names import is_plain_name
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.types import FaceMeta, FaceType

log = logging.getLogger(__name__)

_APP15 = 0xEF
# A DFL dict nests 4 deep (dict → seg_ie_polys → polys → poly dict); anything far deeper, or with more values
# than a 64 KB segment plausibly holds, is crafted (and would exhaust Python's recursion or memory).
MAX_DEPTH = 16
MAX_VALUES = 100_000

# DeepFaceLab face type names → ours. The "no_align" variants are the same crop without rotation.
FACE_TYPES = {
    "half_face": FaceType.HALF, "midfull_face": FaceType.MID_FULL, "full_face": FaceType.FULL,
    "full_face_no_align": FaceType.FULL, "whole_face": FaceType.WHOLE_FACE, "head": FaceType.HEAD,
    "head_no_align": FaceType.HEAD,
}


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """Protocol 2 writes bytes as ``_codecs.encode(text, 'latin1')``; nothing else is let through."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise RefusedGlobal(f"refused _codecs.encode with {encoding!r}")
    return text.encode("latin-1")


def _numpy_core(module: str, name: str) -> Any:
    core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
    return getattr(getattr(core, module), name)


# (module, name) a DFL pickle may reference → the object it gets. Pickles made under numpy 1.x name
# numpy.core.*, numpy 2.x numpy._core.*; protocol 5 rebuilds arrays with numeric._frombuffer (which refuses
# object dtypes); protocol-2 pickles spell bytes as _codecs.encode.
_ALLOWED = {
    **{(f"{pkg}.{module}", name): _numpy_core(module, name) for pkg in ("numpy.core", "numpy._core")
       for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): lambda text, encoding="utf-8": _latin1_bytes(text, encoding),
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allowed table (it would have been called on load)."""


class UnsafeFaceError(MetadataError):
    """A face whose metadata tried to run code: the import stops, where a merely damaged face is skipped."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain values (dict, list, tuple, str, bytes, numbers, bool, None) and numpy arrays only."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobal("refused persistent id")


def safe_loads(data: bytes) -> Any:
    """Unpickle ``data`` with ``SafeUnpickler``; RefusedGlobal for anything outside its table."""
    return SafeUnpickler(io.BytesIO(data)).load()


def dfl_payload(data: bytes) -> bytes | None:
    """The APP15 segment's body of a JPEG (DeepFaceLab's pickled dict), or None when there is none (or the
    header is damaged before it)."""
    if data[:2] != b"\xff\xd8":
        return None
    try:
        for marker, start, end in jpeg_segments(data):
            if marker == 0xFF00 | _APP15:
                return data[start + 4:end]
    except MetadataError:
        return None
    return None


def read_dfl_dict(path: str | Path) -> dict[str, Any]:
    """The DeepFaceLab dict inside a face JPG, unpickled safely. MetadataError naming the file otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MetadataError(f"cannot read ({err.strerror})", path=path) from None
    payload = dfl_payload(data)
    if payload is None:
        raise MetadataError("no DeepFaceLab metadata (JPEG APP15 segment) in this file", path=path,
                            fix="import aligned faces written by DeepFaceLab 2 (.jpg)")
    try:
        value = safe_loads(payload)
    except RefusedGlobal as err:
        raise UnsafeFaceError(f"unsafe DeepFaceLab metadata: {err}; nothing from it was run", path=path,
                              fix="this file was crafted or is not a DeepFaceLab face; do not use it") from None
    except Exception as err:  # truncated or garbled pickle data: any of a dozen exception types
        raise MetadataError(f"corrupt DeepFaceLab metadata ({type(err).__name__}: {err})", path=path,
                            fix="re-extract this face in DeepFaceLab") from None
    if not isinstance(value, dict):
        raise MetadataError("DeepFaceLab metadata is not a dict", path=path, fix="re-extract this face")
    problem = _shape_problem(value)
    if problem:
        raise MetadataError(f"DeepFaceLab metadata {problem}", path=path, fix="re-extract this face")
    return value


def meta_from_dfl(dfl: dict[str, Any], image_size: int, path: Path | None = None) -> FaceMeta:
    """A FaceMeta from a DeepFaceLab dict. Fields we have no slot for go to ``extra`` (JSON values only).

    DeepFaceLab stores no source frame size; it is left (0, 0). ``dfl`` must have passed ``read_dfl_dict``'s
    depth and size check.
    """
    try:
        face_type = FACE_TYPES[str(dfl.get("face_type", "full_face"))]
    except KeyError:
        raise MetadataError(f"DeepFaceLab face type {dfl.get('face_type')!r} has no facelab equivalent", path=path,
                            fix=f"re-extract with one of {', '.join(FACE_TYPES)}") from None
    landmarks = _array(dfl, "landmarks", (68, 2), path)
    source_landmarks = _array(dfl, "source_landmarks", (68, 2), path)
    face_from_image = _array(dfl, "image_to_face_mat", (2, 3), path)
    rect = _array(dfl, "source_rect", (4,), path)
    source_filename = dfl.get("source_filename") or ""
    if source_filename and not is_plain_name(source_filename):
        raise MetadataError(f"DeepFaceLab source_filename {str(source_filename)[:80]!r} is not a plain file name",
                            path=path, fix="re-extract this face in DeepFaceLab")
    pitch, yaw, roll = pose_from_landmarks(landmarks)
    used = {"face_type", "landmarks", "source_landmarks", "image_to_face_mat", "source_rect", "source_filename",
            "seg_ie_polys", "ie_polys"}
    extra = {"dfl_" + str(k): _jsonable(v) for k, v in dfl.items() if k not in used}
    return FaceMeta(
        face_type=face_type.value, image_size=int(image_size), landmarks=landmarks,
        source_filename=source_filename, source_size=(0, 0),
        source_rect=tuple(float(v) for v in rect), source_landmarks=source_landmarks,
        face_from_image=face_from_image, detector="deepfacelab", pitch=pitch, yaw=yaw, roll=roll,
        face_index=_face_index(path, source_filename),
        mask_polygons=_polygons(dfl.get("seg_ie_polys", dfl.get("ie_polys")), path),
        extra={k: v for k, v in extra.items() if v is not None},
    )


def import_dfl(folder: str | Path, output: str | Path | None = None,
               progress: ProgressCallback = no_progress) -> list[Path]:
    """Give every DeepFaceLab face JPG in ``folder`` facelab metadata; returns the files written.

    With ``output`` None the files gain the metadata in place (pixels and DFL's own segment kept bit-exact,
    so DeepFaceLab still reads them); otherwise copies go to ``output``. Every file is checked first: a file
    whose metadata would run code stops the import before anything is written (UnsafeFaceError); a damaged
    one is skipped with a warning. MetadataError when no face is left to import.
    """
    folder = Path(folder)
    paths = [p for p in list_faces(folder) if p.suffix.lower() in (".jpg", ".jpeg")]
    if not paths:
        raise MetadataError("no .jpg faces in this folder", path=folder, fix="point at a DeepFaceLab aligned folder")
    checked = []
    for done, path in enumerate(paths, 1):
        try:
            checked.append((path, _read_face_meta(path)))
        except UnsafeFaceError:
            raise
        except MetadataError as err:
            log.warning("skipped %s: %s", path, err.message)
        progress(Progress("Checking DeepFaceLab faces", done, len(paths)))
    if not checked:
        raise MetadataError(f"none of the {len(paths)} .jpg files has usable DeepFaceLab metadata", path=folder,
                            fix="point at a DeepFaceLab aligned folder (the warnings above say what is wrong)")
    out_dir = Path(output) if output is not None else folder
    written = []
    for done, (path, meta) in enumerate(checked, 1):
        target = out_dir / path.name
        with atomic_path(target) as tmp:
            tmp.write_bytes(path.read_bytes())
            write_meta(tmp, meta)
        written.append(target)
        progress(Progress("Importing", done, len(checked)))
    return written


def _read_face_meta(path: Path) -> FaceMeta:
    dfl = read_dfl_dict(path)
    header = image_header_size(path.read_bytes())
    size = header[0] if header is not None else None
    if not size:
        raise MetadataError("the image data is corrupt (no JPEG frame header)", path=path,
                            fix="re-extract this face")
    return meta_from_dfl(dfl, size, path)


# -- internals ---------------------------------------------------------------------------------------------


def _shape_problem(value: Any) -> str | None:
    """What makes an unpickled value unfit to walk (too deep, too many values, an object array), or None.

    Iterative, so a crafted 30,000-deep list is reported instead of exhausting the recursion limit; values
    shared through the pickle memo are counted at every use, so a small pickle cannot stand for a huge tree.
    """
    stack, count = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            return f"is nested more than {MAX_DEPTH} levels deep"
        if count > MAX_VALUES:
            return f"holds more than {MAX_VALUES} values"
        if isinstance(item, np.ndarray) and item.dtype.hasobject:
            return "holds an array of Python objects"
        if isinstance(item, dict):
            stack += [(v, depth + 1) for pair in item.items() for v in pair]
        elif isinstance(item, (list, tuple)):
            stack += [(v, depth + 1) for v in item]
    return None


def _array(dfl: dict, key: str, shape: tuple[int, ...], path: Path | None) -> np.ndarray:
    try:
        arr = np.asarray(dfl[key], dtype=np.float64)
    except KeyError:
        raise MetadataError(f"DeepFaceLab metadata lacks {key!r}", path=path, fix="re-extract this face") from None
    except (TypeError, ValueError):
        raise MetadataError(f"DeepFaceLab {key!r} is not numeric", path=path, fix="re-extract this face") from None
    if arr.shape != shape:
        raise MetadataError(f"DeepFaceLab {key!r} has shape {arr.shape}, expected {shape}", path=path,
                            fix="re-extract this face")
    if not np.isfinite(arr).all():
        raise MetadataError(f"DeepFaceLab {key!r} holds non-finite numbers", path=path, fix="re-extract this face")
    return arr


_FACE_NUMBER = re.compile(r"[0-9]{1,9}")


def _face_index(path: Path | None, source_filename: str) -> int:
    """DeepFaceLab names a face ``<frame>_<n>.jpg`` but stores only the frame: n from the name, else 0.

    Only ASCII digits count: ``str.isdigit`` also accepts '²' or '٣', which ``int`` refuses or reads oddly.
    """
    if path is None:
        return 0
    stem, _, n = path.stem.rpartition("_")
    return int(n) if _FACE_NUMBER.fullmatch(n) and stem == Path(source_filename).stem else 0


def _polygons(value: Any, path: Path | None) -> dict[str, list]:
    """DFL include/exclude polygons → ``{"include": [[[x, y], ...]], "exclude": [...]}``.

    DFL 2 stores ``{"polys": [{"type": 1|0, "pts": (n, 2) array}]}``; older versions a list of (type, points).
    Type 1 is include, 0 exclude.
    """
    if value is None:
        return {}
    out: dict[str, list] = {"include": [], "exclude": []}
    try:
        items = value.get("polys", []) if isinstance(value, dict) else value
        for item in items:
            kind, pts = (item.get("type"), item.get("pts")) if isinstance(item, dict) else item
            points = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
            if kind not in (0, 1):
                raise ValueError(f"polygon type {str(kind)[:40]!r} is neither 1 (include) nor 0 (exclude)")
            if not np.isfinite(points).all():
                raise ValueError("a polygon point is not a finite number")
            if len(points) >= 3:
                out["include" if kind == 1 else "exclude"].append(points.tolist())
    except (TypeError, ValueError, AttributeError) as err:
        raise MetadataError(f"DeepFaceLab mask polygons are malformed ({err})", path=path,
                            fix="redraw this face's mask in DeepFaceLab's XSeg editor") from None
    return out if out["include"] or out["exclude"] else {}


def _jsonable(value: Any) -> Any:
    """A JSON value for ``value``: arrays to lists, bytes/uint8 buffers (e.g. DFL's xseg_mask PNG) to base64."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8 and value.ndim == 1:
            return base64.b64encode(value.tobytes()).decode()
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return None
