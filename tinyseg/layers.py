"""Layers: each keeps its parameters, runs an op forward, and remembers what its backward needs.

A layer has ``forward(x, train) -> out`` and ``backward(dout) -> dx``; after ``backward`` its
``grads`` hold the parameter gradients under the same names as ``params``. Layers call
:mod:`tinyseg.ops`, which runs on whichever backend owns the arrays — no layer knows which.

Only a training-mode forward (``train=True``) keeps what backward needs; a test-mode forward
keeps nothing, so a network's inference holds no activations beyond the one being computed
(``predict`` peaks at about two activations and one convolution workspace). Calling ``backward``
after a test-mode forward raises a ``RuntimeError`` that says so.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .backend import backend_for


_IDENTITY = ("identity",)       # a training-mode dropout with p = 0 keeps this: backward is identity


class Layer:
    """Base class: no parameters, identity bookkeeping."""

    def __init__(self, name: str):
        self.name = name
        self.params: dict = {}
        self.grads: dict = {}
        self._cache = None

    def forward(self, x, train: bool = False):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def clear(self):
        """Drop what forward kept for backward (frees activation memory)."""
        self._cache = None

    def _keep(self, cache, train: bool):
        """Remember ``cache`` for backward in training; keep nothing in test mode."""
        self._cache = cache if train else None

    def _out(self, out_cache, train: bool):
        """``out`` of an op's ``(out, cache)``, its ``cache`` kept for backward in training only."""
        out, cache = out_cache
        self._keep(cache, train)
        return out

    def _saved(self):
        """What the last training-mode forward kept; a clear error if there is none."""
        if self._cache is None:
            raise RuntimeError(
                f"layer {self.name!r}: backward needs a training-mode forward first "
                f"(forward(x, train=True)); a test-mode forward keeps nothing for backward")
        return self._cache

    def __repr__(self):
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({self.name!r}{', ' + shapes if shapes else ''})"


class Conv2D(Layer):
    """SAME convolution, stride 1, dilation ``d``: ``w (kh, kw, c_in, c_out)``, ``b (c_out,)``.

    ``dilation > 1`` spaces the taps ``d`` pixels apart (atrous convolution, DeepLab). With
    ``need_dx=False`` backward computes only ``dw`` and ``db`` and returns None (for the first
    layer, whose input is the image).
    """

    def __init__(self, name, w, b, dilation: int = 1, need_dx: bool = True):
        super().__init__(name)
        self.params = {"w": w, "b": b}
        self.dilation = int(dilation)
        self.need_dx = bool(need_dx)

    def forward(self, x, train=False):
        w, b = self.params["w"], self.params["b"]
        return self._out(ops.conv2d_forward(x, w, b, self.dilation), train)

    def backward(self, dout):
        # Last step's gradient arrays are overwritten: by now the optimizer has used them.
        dx, dw, db = ops.conv2d_backward(dout, self._saved(), self.grads.get("w"),
                                         self.grads.get("b"), need_dx=self.need_dx)
        self.grads = {"w": dw, "b": db}
        return dx

    def __repr__(self):
        extra = f", dilation={self.dilation}" if self.dilation != 1 else ""
        return super().__repr__()[:-1] + extra + ")"


class ReLU(Layer):
    def forward(self, x, train=False):
        return self._out(ops.relu_forward(x), train)

    def backward(self, dout):
        return ops.relu_backward(dout, self._saved())


class MaxPool(Layer):
    """2×2 stride-2 max pooling with SAME (ceil) semantics."""

    def forward(self, x, train=False):
        return self._out(ops.maxpool_forward(x), train)

    def backward(self, dout):
        return ops.maxpool_backward(dout, self._saved())


class MaxPool3x3(Layer):
    """3×3 max pooling, padding 1 (−∞), stride 1 or 2: ``(N, H, W, C) -> (N, ⌈H/s⌉, ⌈W/s⌉, C)``.

    DeepLab's pools (Caffe's ``kernel_size: 3, stride: s, pad: 1``); equal to
    ``torch.nn.functional.max_pool2d(x, 3, s, 1)``. With stride 1 the map keeps its size.
    """

    def __init__(self, name, stride: int):
        super().__init__(name)
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride not in (1, 2):
            raise ValueError(f"`stride` must be 1 or 2, got {stride!r}")
        self.stride = int(stride)

    def forward(self, x, train=False):
        return self._out(ops.maxpool3x3_forward(x, self.stride), train)

    def backward(self, dout):
        return ops.maxpool3x3_backward(dout, self._saved())

    def __repr__(self):
        return f"MaxPool3x3({self.name!r}, stride={self.stride})"


class Dropout(Layer):
    """Inverted dropout in training, identity at test time.

    The mask of each call is a pure function of ``seed``, which the model sets before every
    training step (``layer.seed = ...``), so a resumed run draws exactly the same masks.
    """

    def __init__(self, name, p: float):
        super().__init__(name)
        self.p = float(p)
        self.seed = 0

    def forward(self, x, train=False):
        if not train:
            self._cache = None
            return x
        if self.p == 0.0:
            self._cache = _IDENTITY
            return x
        out, self._cache = ops.dropout_forward(x, self.p, self.seed)
        return out

    def backward(self, dout):
        cache = self._saved()
        return dout if cache is _IDENTITY else ops.dropout_backward(dout, cache)


class BilinearUpsample(Layer):
    """The post's fixed transposed convolution: ×``factor`` with bilinear weights, not trained.

    Its weights are ``bilinear_upsample_weights(factor, C)``, diagonal, so it runs the depthwise
    kernel with the ``upsample_filt`` tent (same result, 1/C of the work).
    """

    def __init__(self, name, factor: int):
        from .ops.upsampling import get_kernel_size, upsample_filt

        super().__init__(name)
        self.factor = factor
        self.kernel = upsample_filt(get_kernel_size(factor)).astype(np.float32)

    def forward(self, x, train=False):
        kernel = self._kernel_for(x)
        return self._out(ops.conv_transpose2d_depthwise_forward(x, kernel, self.factor), train)

    def backward(self, dout):
        return ops.conv_transpose2d_depthwise_backward(dout, self._saved())

    def _kernel_for(self, x):
        be = backend_for(x)
        if not be.owns(self.kernel):
            self.kernel = be.asarray(self.kernel)
        return self.kernel


class CropTo(Layer):
    """Keep the top-left ``H × W`` of an ``(N, H', W', C)`` map (``H' >= H``); backward pads with 0.

    ``forward(x, train, size=(H, W))`` — the size is the input image's, given per call.
    """

    def forward(self, x, train=False, size=None):
        H, W = size
        self._keep(tuple(x.shape), train)
        if x.shape[1] == H and x.shape[2] == W:
            return x
        return backend_for(x).crop(x, H, W)

    def backward(self, dout):
        full = self._saved()
        if tuple(dout.shape) == tuple(full):
            return dout
        be = backend_for(dout)
        dx = be.zeros(full, np.float32)
        be.uncrop(dout, dx)
        return dx


# ----------------------------------------------------------------------------- model heads
# Layers of the FCN skip heads and of DeepLab's head (tinyseg.models). In test mode
# (``train=False``) they keep nothing for backward.


class TransposedConv2D(Layer):
    """Trainable transposed convolution ×``factor``, no bias: FCN's ``upscore2``/``upscore_pool4``.

    ``w (k, k, c_out, c_in)`` (TensorFlow's layout), ``k = get_kernel_size(factor)``; FCN
    initialises it with ``bilinear_upsample_weights(factor, C)``. TF SAME cropping maps input
    ``i`` to output ``f·i + (f − 1)/2`` (DESIGN.md's alignment rule).
    """

    def __init__(self, name, w, factor: int):
        super().__init__(name)
        self.factor = factor
        self.params = {"w": w}

    def forward(self, x, train=False):
        return self._out(ops.conv_transpose2d_forward(x, self.params["w"], self.factor), train)

    def backward(self, dout):
        dx, dw = ops.conv_transpose2d_backward(dout, self._saved())
        self.grads = {"w": dw}
        return dx


class CropAdd(Layer):
    """FCN's fuse: ``forward(big, small) = big[:, :h, :w] + small``; backward -> ``(dbig, dsmall)``.

    ``big`` is the upsampled coarser score map, ``small`` the finer one (``score_pool4``…); both
    are aligned at their top-left, so only ``big``'s bottom/right overhang is cut.
    """

    def forward(self, big, small, train=False):
        return self._out(ops.crop_add_forward(big, small), train)

    def backward(self, dout):
        return ops.crop_add_backward(dout, self._saved())


class Scale(Layer):
    """Multiply by a fixed ``factor`` (FCN-8s at-once scales pool4 by 0.01 and pool3 by 1e-4)."""

    def __init__(self, name, factor: float):
        super().__init__(name)
        self.factor = float(factor)

    def forward(self, x, train=False):
        return ops.scale_forward(x, self.factor)[0]

    def backward(self, dout):
        return ops.scale_backward(dout, self.factor)


class AvgPool3x3(Layer):
    """3×3 average pooling, stride 1, padding 1, padded zeros counted: DeepLab's ``pool5a``."""

    def forward(self, x, train=False):
        return ops.avgpool3x3_forward(x)[0]

    def backward(self, dout):
        return ops.avgpool3x3_backward(dout)


class Interp(Layer):
    """DeepLab's fixed bilinear ×``factor`` upsampling, score ``i`` on output pixel ``factor·i``.

    ``forward(x, train, size=(H, W))`` writes only the image's ``H × W`` (no overhang to crop).
    """

    def __init__(self, name, factor: int):
        super().__init__(name)
        self.factor = factor

    def forward(self, x, train=False, size=None):
        return self._out(ops.interp_forward(x, self.factor, size), train)

    def backward(self, dout):
        return ops.interp_backward(dout, self._saved())
