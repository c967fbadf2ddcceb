"""Trained models out of facelab: one ONNX graph per model (``.onnx``, or DeepFaceLive's ``.dfm``), the check
that it computes what the PyTorch model computes, and ``runtime.OnnxSwapper`` that runs it for merge and live."""
