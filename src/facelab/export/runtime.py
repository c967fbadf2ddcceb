"""Swapping faces with an exported model in ONNX Runtime: the same ``FaceSwapper`` contract merge and live use.

``load_swapper`` takes either kind of model: an exported file (``.onnx``/``.dfm``) → ``OnnxSwapper``; a model
folder → the PyTorch ``facelab.train.swap.Swapper``.

A file is a stranger's until checked: its facelab metadata (``formats.read_info``) is validated for type and
range and must agree with the graph's tensor shapes. A ``.dfm`` made by DeepFaceLab (no facelab metadata) loads
too when its tensors read like DeepFaceLive expects (``in_face`` (N, R, R, 3), three outputs by position); its
face type is then taken as whole face, the face type DeepFaceLive's face aligner uses by default.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelab.errors import InputError, ModelError
from facelab.export.formats import FORMATS, SUFFIXES, ExportedInfo, GraphNames, face_side, read_info
from facelab.train.swap import Swapper, checked_dst_faces
from facelab.types import FaceType

log = logging.getLogger(__name__)
FOREIGN_FACE_TYPE = FaceType.WHOLE_FACE.value
FULL_SWAP = 1.0  # morph_value of a plain swap: the dst face's code read entirely as src


def cpu_threads() -> int:
    """Cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def providers_for(device: str) -> list:
    """ONNX Runtime execution providers for a facelab device spec: CUDA first when the spec resolves to a GPU
    and this ONNX Runtime build has the CUDA provider, else the CPU alone."""
    import onnxruntime as ort

    from facelab.device import resolve_devices

    dev = resolve_devices(device)[0]
    if dev.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        cuda = ("CUDAExecutionProvider", {"device_id": dev.index or 0})
        return [cuda, "CPUExecutionProvider"]
    if dev.type == "cuda":
        log.warning("this onnxruntime has no CUDA provider: running on the CPU (install onnxruntime-gpu)")
    return ["CPUExecutionProvider"]


def open_session(path: Path, device: str = "auto", threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` for ``path``; ModelError when the file is not a readable ONNX model."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Batch 1 live: one op at a time on every core is fastest; parallel op scheduling only adds contention.
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle threads sleep instead of spinning: on a few cores shared with detection and blending (live), spinning
    # burnt ~45 % more CPU per face for no gain (demo SAE, 2 cores: 135 against 92 ms CPU per face).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers_for(device))
    except Exception as err:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        raise ModelError(f"not a readable ONNX model ({str(err).splitlines()[0][:200]})", path=path,
                         fix="export the model again with `facelab export`") from None


@dataclass
class OnnxSwapper:
    """An exported model ready to predict, with ``train.swap.Swapper``'s attributes and ``predict``."""

    session: Any
    path: Path
    name: str
    resolution: int
    face_type: str
    learn_mask: bool
    iteration: int
    format: str
    morph: bool
    names: GraphNames
    outputs: tuple[str, ...]  # graph output names in the order (face, swap mask, dst mask) as it has them
    batch_size: int = 16

    @classmethod
    def load(cls, path: Path, device: str = "auto", *, threads: int | None = None) -> "OnnxSwapper":
        """Open an exported ``.onnx``/``.dfm`` file on ``device`` (``auto|cpu|cuda|cuda:N``); ``threads``: CPU
        threads (default every core this process may use). ModelError for a file that is not a face-swap model
        of either convention, or whose metadata is malformed or disagrees with its graph."""
        path = Path(path)
        if not path.is_file():
            raise InputError("model file not found", path=path, fix="give an exported .onnx or .dfm file")
        session = open_session(path, device, threads)
        info = read_info(session.get_modelmeta().custom_metadata_map, path)
        swapper = (cls._facelab(session, path, info) if info is not None else cls._foreign(session, path))
        log.info("loaded %s (%s, %s at %d px) with %s", path, swapper.name, swapper.face_type, swapper.resolution,
                 session.get_providers()[0])
        return swapper

    @classmethod
    def _facelab(cls, session, path: Path, info: ExportedInfo) -> "OnnxSwapper":
        names = FORMATS[info.format]
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        wanted_out = (names.face,) + ((names.swap_mask, names.dst_mask) if info.learn_mask or names.masks_always
                                      else ())
        if names.face_input not in inputs or (names.morph_input in inputs) != info.morph or set(wanted_out) - outputs:
            raise ModelError(f"the graph's tensors do not match its {info.format} metadata", path=path,
                             fix="export the model again with `facelab export`")
        side = face_side(inputs[names.face_input].shape, path)
        if side != info.resolution:
            raise ModelError(f"the graph takes {side} px faces but its metadata says {info.resolution}", path=path,
                             fix="export the model again with `facelab export`")
        return cls(session, path, info.model, info.resolution, info.face_type, info.learn_mask, info.iteration,
                   info.format, info.morph, names, wanted_out)

    @classmethod
    def _foreign(cls, session, path: Path) -> "OnnxSwapper":
        """A DFM exported by DeepFaceLab: read the way DeepFaceLive reads it (first input ``in_face``, optional
        second ``morph_value``, three outputs by position: dst mask, face, face mask)."""
        inputs, outputs = session.get_inputs(), session.get_outputs()
        morph = len(inputs) == 2 and "morph_value" in inputs[1].name
        if not inputs or "in_face" not in inputs[0].name or len(inputs) > 1 + morph or len(outputs) != 3:
            raise ModelError("not a face-swap model: no facelab metadata and not DeepFaceLive's layout (input "
                             "in_face, optional morph_value, three outputs)", path=path,
                             fix="give a model exported by `facelab export` or DeepFaceLab's .dfm export")
        side = face_side(inputs[0].shape, path)
        for out, channels in zip(outputs, (1, 3, 1)):
            shape = out.shape  # a dimension ONNX Runtime cannot tell is a name or None: checked at predict
            last = shape[-1] if isinstance(shape, list) and len(shape) == 4 else channels + 1
            if isinstance(last, int) and last != channels:
                raise ModelError(f"output {out.name[:60]!r} has shape {str(shape)[:60]}, not (N, R, R, {channels})",
                                 path=path, fix="give a face-swap model in DeepFaceLive's layout")
        names = GraphNames(inputs[0].name, inputs[1].name if morph else "", outputs[1].name, outputs[2].name,
                           outputs[0].name, tuple(o.name for o in outputs), masks_always=True)
        log.warning("%s carries no facelab metadata: taking it as a %s model at %d px", path, FOREIGN_FACE_TYPE, side)
        return cls(session, path, path.stem[:100], side, FOREIGN_FACE_TYPE, True, 0, "dfm", morph, names,
                   (names.face, names.swap_mask, names.dst_mask))

    @property
    def device(self) -> str:
        """Where the graph runs: ``cuda:N`` under ONNX Runtime's CUDA provider, else ``cpu``."""
        cuda = self.session.get_provider_options().get("CUDAExecutionProvider")
        return "cpu" if cuda is None else f"cuda:{cuda.get('device_id', 0)}"

    def run(self, faces: np.ndarray, morph_value: float = FULL_SWAP,
            outputs: tuple[str, ...] | None = None) -> list[np.ndarray]:
        """The graph's raw outputs ``outputs`` [default: face, swap mask, dst mask as there are] for float32 NHWC
        faces in [0, 1]. ONNX Runtime runs only the nodes the outputs asked for need."""
        feed = {self.names.face_input: faces}
        if self.morph:
            feed[self.names.morph_input] = np.array([morph_value], np.float32)
        return self.session.run(list(outputs or self.outputs), feed)

    def predict(self, dst_faces: np.ndarray, masks: tuple[bool, bool] = (True, True)
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(pred_src (N, R, R, 3) float32 [0, 1] BGR, pred_src_mask (N, R, R) float32 [0, 1] or None,
        pred_dst_mask (N, R, R) or None) for ``dst_faces`` (N, R, R, 3) uint8 BGR aligned at the model's
        face type and resolution — ``train.swap.Swapper.predict``'s contract and errors. ``masks``: whether the
        swap mask and the dst mask are wanted; those not wanted are not computed (None), which saves their
        decoders' time (live with ``--mask dst``)."""
        faces = checked_dst_faces(dst_faces, self.resolution, self.face_type)
        r = self.resolution
        wanted = [(0, 3)] + [(k, 1) for k, want in ((1, masks[0]), (2, masks[1]))
                             if want and self.learn_mask and k < len(self.outputs)]
        names = tuple(self.outputs[k] for k, _ in wanted)
        parts: dict[int, list[np.ndarray]] = {k: [] for k, _ in wanted}
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start:start + self.batch_size].astype(np.float32) / np.float32(255)
            for (k, channels), out in zip(wanted, self.run(chunk, outputs=names)):
                out = np.asarray(out, np.float32)
                if out.shape != (len(chunk), r, r, channels):
                    raise ModelError(f"the model answered with shape {out.shape}, not {(len(chunk), r, r, channels)}",
                                     path=self.path, fix="export the model again with `facelab export`")
                parts[k].append(np.clip(out if channels == 3 else out[..., 0], 0, 1))
        if not len(faces):
            parts = {k: [np.zeros((0, r, r, 3) if k == 0 else (0, r, r), np.float32)] for k in parts}
        face, swap_mask, dst_mask = (np.concatenate(parts[k]) if k in parts else None for k in range(3))
        return face, swap_mask, dst_mask


def is_exported_file(path: Path) -> bool:
    """Whether ``path`` names an exported model file (by its suffix) rather than a model folder."""
    return Path(path).suffix.lower() in SUFFIXES and not Path(path).is_dir()


def load_swapper(path: Path, model_name: str | None = None, device: str = "auto", *, threads: int | None = None):
    """A ``FaceSwapper`` for ``path``: an exported ``.onnx``/``.dfm`` file → ``OnnxSwapper`` (``model_name``
    must then be None or the file's model; ``threads`` as ``OnnxSwapper.load``); a model folder →
    ``facelab.train.swap.Swapper.load``."""
    path = Path(path)
    if is_exported_file(path):
        from facelab.train.checkpoint import parse_saved_name

        swapper = OnnxSwapper.load(path, device, threads=threads)
        if model_name is not None and model_name not in (swapper.name, parse_saved_name(swapper.name)[0]):
            raise ModelError(f"this file holds the {swapper.name} model, not {model_name}", path=path,
                             fix="leave out --model, or give the file exported from that model")
        return swapper
    return Swapper.load(path, model_name, device)
