"""The export options, declared once (CLI flags and prompts come from them); no torch here, so `facelab --help`
stays fast."""

from __future__ import annotations

from facelab.export.formats import FORMATS
from facelab.options import Option

DEFAULT_OPSET = 13  # every op the models use exists there; older DeepFaceLive builds ship older onnxruntimes
FORMAT_OPTION = Option("format", "dfm", "dfm: DeepFaceLive's model file; onnx: a plain ONNX graph with facelab's "
                       "tensor names (both run in `facelab live`).", choices=tuple(FORMATS), prompt="Export format")
OPSET_OPTION = Option("opset", DEFAULT_OPSET, "ONNX opset of the graph (DeepFaceLab's own .dfm exports use 12; "
                      "a newer one only helps newer runtimes).", min=12, max=20, prompt="ONNX opset")
EXPORT_OPTIONS: tuple[Option, ...] = (FORMAT_OPTION, OPSET_OPTION)
