"""CRF-as-RNN (Zheng et al. 2015): the dense CRF as a trainable layer on top of any tinyseg model.

::

    crf = CRFasRNN(n_labels=21)                      # the post's kernels, Potts, T = 5 / 10
    logits = model.forward(x, train=True)            # (N, H, W, C)
    out = crf.forward(logits, images, train=True)    # (N, H, W, C), softmax(out) = Q_T
    loss, dout = ops.softmax_cross_entropy(out, labels)
    dlogits = crf.backward(dout)                     # fills crf.grads
    model.backward(dlogits)
    optimizer.step({**model.params, **prefixed(crf.params)}, {...grads...})

The math, forward and backward, is in :mod:`tinyseg.crf.rnn.reference`; one image's recurrence
is :class:`~tinyseg.crf.rnn.engine.MeanFieldRNN`. This module adds what a layer needs: the
learnable parameters, the filters of each image (built from the image, as :func:`dense_crf`
builds them), the batch, and train/test modes.

Parameters (``params``; ``grads`` has the same keys and shapes after ``backward``):

* ``"compat"`` (C, C): the label compatibility ``mu``, an energy (cost of label ``l`` next to
  ``l'``), initialised to Potts ``1 - I``. Only differences within a column matter (softmax
  ignores per-pixel constants), so for a loss of ``Q_T`` such as cross-entropy its gradient's
  columns sum to zero.
* ``"w_spatial"``, ``"w_bilateral"``: the kernel weights, one per label (``per_class=True``, the
  paper's) or one per kernel (shape (1,)), initialised to the post's ``gaussian_compat = 3`` and
  ``compat = 10``. With these initial values the layer computes exactly
  ``dense_crf(image, softmax(logits), iterations=T)``'s ``Q`` (up to float rounding).

Iterations. Zheng et al. train with T = 5 and test with T = 10. ``iterations`` is the count of
a training-mode forward (``train=True``), ``test_iterations`` that of a test-mode forward
(``train=False``); both can be overridden per call (``forward(..., iterations=T)``). The
parameters do not depend on T, so a layer trained at 5 runs at 10.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ...backend import get_backend
from ..features import as_pair, as_triple
from ..refine import METHODS, POST_CRF, bilateral_filter, spatial_filter
from .engine import MeanFieldRNN

__all__ = ["CRFasRNN", "CRFasRNNConfig", "KERNELS"]

#: The kernels, in the order of the rows of the weight matrix (and of dense_crf's terms).
KERNELS = ("spatial", "bilateral")


@dataclass
class CRFasRNNConfig:
    n_labels: int                              # C
    iterations: int = 5                        # T of a training-mode forward (Zheng et al.: 5)
    test_iterations: int = 10                  # T of a test-mode forward (Zheng et al.: 10)
    sdims: tuple = POST_CRF["sdims"]           # bilateral spatial std (pixels), the post's
    schan: tuple = POST_CRF["schan"]           # bilateral colour std (0-255 units), the post's
    gaussian_sdims: tuple = POST_CRF["gaussian_sdims"]   # spatial kernel std (pixels), the post's
    method: str = "fast"                       # "fast" (separable + grid) or "exact" (brute force)
    w_spatial: float = POST_CRF["gaussian_compat"]   # initial spatial weight (the post's)
    w_bilateral: float = POST_CRF["compat"]          # initial bilateral weight (the post's)
    per_class: bool = True                     # one weight per label and kernel (the paper)


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    return int(value)


class CRFasRNN:
    """The dense CRF's mean field as a recurrent layer, trained with the network beneath it.

    Parameters
    ----------
    n_labels : C >= 2.
    iterations, test_iterations : mean-field iterations in training / test mode (5 and 10).
    sdims, schan : the bilateral kernel's standard deviations (pixels, colour units).
    gaussian_sdims : the spatial kernel's standard deviations (pixels).
    method : "fast" (exact separable spatial filter + bilateral grid) or "exact" (brute force,
        tiny images only: the finite-difference checks use it).
    w_spatial, w_bilateral : initial kernel weights; per_class : one weight per label.
    backend : "cpu" or "cuda": where the parameters live and the kernels run (the logits must be
        that backend's arrays; the images are host uint8 arrays).
    """

    def __init__(self, n_labels: int, *, iterations: int = 5, sdims=POST_CRF["sdims"],
                 schan=POST_CRF["schan"], gaussian_sdims=POST_CRF["gaussian_sdims"],
                 method: str = "fast", test_iterations: int = 10,
                 w_spatial: float = POST_CRF["gaussian_compat"],
                 w_bilateral: float = POST_CRF["compat"], per_class: bool = True,
                 backend: str = "cpu"):
        if isinstance(n_labels, bool) or int(n_labels) != n_labels or n_labels < 2:
            raise ValueError(f"`n_labels` must be an integer >= 2, got {n_labels!r}")
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
        for name, value in (("w_spatial", w_spatial), ("w_bilateral", w_bilateral)):
            if not np.isfinite(value):
                raise ValueError(f"`{name}` must be finite, got {value}")
        self.config = CRFasRNNConfig(
            n_labels=int(n_labels), iterations=_check_count(iterations, "iterations"),
            test_iterations=_check_count(test_iterations, "test_iterations"),
            sdims=as_pair(sdims, "sdims"), schan=as_triple(schan, "schan"),
            gaussian_sdims=as_pair(gaussian_sdims, "gaussian_sdims"), method=method,
            w_spatial=float(w_spatial), w_bilateral=float(w_bilateral), per_class=bool(per_class))
        self.backend = get_backend(backend)
        self.params = {k: self.backend.asarray(v) for k, v in self.init_params(self.config).items()}
        self.grads: dict = {}
        self._cache = None
        self._workspaces: list = []      # one per image of the batch: work arrays kept for reuse

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def init_params(config: CRFasRNNConfig) -> dict:
        """Potts compatibility ``1 - I`` and the hand-picked kernel weights, float32 host arrays."""
        c = config.n_labels
        width = c if config.per_class else 1
        return {"compat": (1.0 - np.eye(c)).astype(np.float32),
                "w_spatial": np.full(width, config.w_spatial, np.float32),
                "w_bilateral": np.full(width, config.w_bilateral, np.float32)}

    def load_params(self, params: dict) -> None:
        """Replace the parameters (e.g. from a checkpoint); shapes must match this layer's."""
        for name, current in self.params.items():
            if name not in params:
                raise ValueError(f"CRF-as-RNN parameter {name!r} is missing")
            value = np.asarray(params[name], dtype=np.float32)
            if value.shape != tuple(current.shape):
                raise ValueError(f"CRF-as-RNN parameter {name!r} has shape {value.shape}, "
                                 f"expected {tuple(current.shape)}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"CRF-as-RNN parameter {name!r} contains NaN or infinite values")
            self.params[name] = self.backend.asarray(np.ascontiguousarray(value))

    def host_params(self) -> dict:
        """The parameters as host float32 arrays (for checkpoints and figures)."""
        return {k: np.asarray(self.backend.to_numpy(v), np.float32) for k, v in self.params.items()}

    def config_dict(self) -> dict:
        return {**asdict(self.config), "sdims": list(self.config.sdims),
                "schan": list(self.config.schan),
                "gaussian_sdims": list(self.config.gaussian_sdims)}

    def kernel_weights(self) -> np.ndarray:
        """The weights as a (K, C) float32 host matrix, rows in :data:`KERNELS` order."""
        p = self.host_params()
        c = self.config.n_labels
        return np.stack([np.broadcast_to(p["w_" + k], (c,)) for k in KERNELS]).astype(np.float32)

    # ------------------------------------------------------------------ forward / backward
    def filters(self, image: np.ndarray) -> list:
        """The kernels' filters of one H×W×3 uint8 image, in :data:`KERNELS` order (CPU filters)."""
        cfg = self.config
        h, w = image.shape[:2]
        return [spatial_filter((h, w), cfg.gaussian_sdims, cfg.method),
                bilateral_filter(image, cfg.sdims, cfg.schan, cfg.method)]

    def forward(self, logits, image, train: bool = False, iterations: int | None = None):
        """Mean field on top of ``logits``.

        Parameters
        ----------
        logits : (N, H, W, C) float32, this layer's backend's array: the network's output, read
            as the negative unary.
        image : (N, H, W, 3) uint8 host array (an (H, W, 3) image is taken as N = 1).
        train : keep what :meth:`backward` needs, and run ``iterations`` (else
            ``test_iterations``).
        iterations : override the iteration count of this call.

        Returns
        -------
        (N, H, W, C) float32 logits whose softmax over C is the CRF's marginals ``Q_T``.
        """
        be = self.backend
        image = self._check_inputs(logits, image)
        t_max = (self.config.iterations if train else self.config.test_iterations) \
            if iterations is None else _check_count(iterations, "iterations")
        n, h, w, c = logits.shape
        weights, compat = self._device_params()
        out = be.empty((n, h, w, c), np.float32)
        caches = []
        while len(self._workspaces) < n:
            self._workspaces.append({})
        for b in range(n):
            engine = MeanFieldRNN(self.filters(image[b]), device=be.name,
                                  workspace=self._workspaces[b])
            z = logits[b].reshape(h * w, c)                                   # (H, W, C) -> (HW, C)
            if train:                                   # backward reads z: keep our own copy
                z_own = be.empty((h * w, c), np.float32)
                engine.kernels.copy(z, z_own)
                z = z_own
            result, cache = engine.forward(z, weights, compat, t_max, keep=train)
            engine.kernels.copy(result, out[b].reshape(h * w, c))
            caches.append((engine, cache))
        self._cache = (caches, weights, compat, logits.shape) if train else None
        return out

    def backward(self, dout):
        """``dout`` (N, H, W, C) = dloss/d(output logits) -> dloss/dlogits; fills :attr:`grads`.

        The gradients are summed over the batch (as the network's are).
        """
        if self._cache is None:
            raise RuntimeError("CRFasRNN.backward needs a training-mode forward first "
                               "(forward(logits, image, train=True)); a test-mode forward keeps "
                               "nothing for backward")
        caches, weights, compat, shape = self._cache
        if tuple(dout.shape) != tuple(shape):
            raise ValueError(f"`dout` has shape {tuple(dout.shape)} but the forward's output was "
                             f"{tuple(shape)}")
        be = self.backend
        n, h, w, c = shape
        dlogits = be.empty(shape, np.float32)
        dweights = np.zeros((len(KERNELS), c))
        dcompat = np.zeros((c, c))
        d = np.ascontiguousarray(dout, dtype=np.float32) if be.name == "cpu" else dout
        for b, (engine, cache) in enumerate(caches):
            dz, dw_b, dmu_b = engine.backward(d[b].reshape(h * w, c), cache, weights, compat)
            engine.kernels.copy(dz, dlogits[b].reshape(h * w, c))
            dweights += dw_b
            dcompat += dmu_b
        grads = {"compat": dcompat}
        for k, name in enumerate(KERNELS):
            grads["w_" + name] = dweights[k] if self.config.per_class else dweights[k].sum(keepdims=True)
        self.grads = {k: be.asarray(np.ascontiguousarray(v, dtype=np.float32)) for k, v in grads.items()}
        return dlogits

    def clear(self, workspace: bool = False) -> None:
        """Drop what a training-mode forward kept (and, with ``workspace``, the reusable work
        arrays, about ``(T K + 8) N C`` floats per image)."""
        self._cache = None
        if workspace:
            self._workspaces = []

    def predict(self, logits, image, iterations: int | None = None):
        """Test-mode forward, then ``(labels (N, H, W) int32, Q (N, H, W, C) float32)`` on the host."""
        out = self.backend.to_numpy(self.forward(logits, image, train=False, iterations=iterations))
        e = np.exp(out - out.max(axis=-1, keepdims=True))
        q = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        return np.argmax(q, axis=-1).astype(np.int32), q

    # ------------------------------------------------------------------ helpers
    def _device_params(self):
        """(weights (K, C), compat (C, C)) as this backend's contiguous float32 arrays."""
        compat = np.ascontiguousarray(self.host_params()["compat"])
        return (self.backend.asarray(np.ascontiguousarray(self.kernel_weights())),
                self.backend.asarray(compat))

    def _check_inputs(self, logits, image) -> np.ndarray:
        if not self.backend.owns(logits):
            raise ValueError(f"`logits` must be a {self.backend.name} array for this layer "
                             f"(backend={self.backend.name!r}), got {type(logits).__name__}")
        if len(logits.shape) != 4:
            raise ValueError(f"`logits` must be (N, H, W, C), got shape {tuple(logits.shape)}")
        if np.dtype(logits.dtype) != np.float32:
            raise ValueError(f"`logits` must be float32, got dtype {logits.dtype}")
        n, h, w, c = logits.shape
        if c != self.config.n_labels:
            raise ValueError(f"`logits` has {c} classes but the layer was built for "
                             f"n_labels={self.config.n_labels}")
        image = np.asarray(image)
        if image.ndim == 3:
            image = image[None]                                             # (H, W, 3) -> (1, H, W, 3)
        if image.ndim != 4 or image.shape[-1] != 3:
            raise ValueError(f"`image` must be (N, H, W, 3) RGB, got shape {image.shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"`image` must be uint8 (0-255), got dtype {image.dtype}")
        if image.shape[:3] != (n, h, w):
            raise ValueError(f"`image` is {image.shape[:3]} (N, H, W) but `logits` is {(n, h, w)}: "
                             "they must match")
        if self.backend.name == "cpu" and not logits.flags.c_contiguous:
            raise ValueError("`logits` must be C-contiguous")
        return np.ascontiguousarray(image)

    def __repr__(self):
        cfg = self.config
        return (f"CRFasRNN(n_labels={cfg.n_labels}, iterations={cfg.iterations}, "
                f"test_iterations={cfg.test_iterations}, method={cfg.method!r})")
