"""Zero-cost proxies: scores of an untrained (remapped) student from one batch, without training
(:mod:`.zero_cost`), and their computation over a task's students (:mod:`.batch`). A library shared
by the predictor's proxy inputs and the evaluation's baselines."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "zero_cost": ["PROXIES", "compute", "diswot", "relation_matrices"],
    "batch": ["ARCH_PROXIES", "PROXY_IMAGES", "ProxySetting", "archs_proxy", "image_batch", "proxy_images"],
})
