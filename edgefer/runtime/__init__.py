"""Runtime backends: run an exported model on face crops with TensorRT or ONNX Runtime.

No torch here, ever: a Jetson runs this with TensorRT or ONNX Runtime alone. The one entry point
is `load_classifier`; everything it returns is a `Classifier` whose `predict(crops)` gives a
`ClassifierOutput` in the project's class order.
"""

from edgefer.runtime.base import Classifier, ClassifierOutput
from edgefer.runtime.errors import BackendUnavailableError, MissingContractError, ModelLoadError
from edgefer.runtime.loader import BACKENDS, choose_backend, load_classifier

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "Classifier",
    "ClassifierOutput",
    "MissingContractError",
    "ModelLoadError",
    "choose_backend",
    "load_classifier",
]
