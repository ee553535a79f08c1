"""The export stage: a KD-trained student as files that run without this package (``python -m
dass.export``, :func:`run`): TorchScript, ONNX (checked with onnxruntime), the state dict with its
architecture, ``model.json`` (input size, normalisation, class names) and ``MODEL_CARD.md``.

Names are imported lazily (``dass/_lazy.py``): the config needs no torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ["ExportConfig", "FORMATS"],
    "exporter": ["run", "read_kd_run"],
})
