"""edgefer: interpretable facial expression recognition on the edge.

The runtime core. It imports neither torch nor Qt, so a Jetson runs it with TensorRT or
ONNX Runtime alone; `train`, `export` and `ui` build on it, never the other way round.
"""

__version__ = "0.1.0"
