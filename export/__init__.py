"""Checkpoint -> ONNX (with parity checks and optional INT8) -> TensorRT engine.

Desktop side of the model hand-over: this package may import torch; the runtime it targets
(`edgefer.runtime`) never does.
"""
