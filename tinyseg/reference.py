"""Readable NumPy twins of every op: the algorithmic reference the fast kernels are tested against.

Each twin has the op's own name and signature (``reference.conv2d_forward`` is the twin of
:func:`tinyseg.ops.conv2d_forward`; ``*_forward -> (out, cache)``, ``*_backward(dout, cache)``),
written for clarity, not speed: loops over kernel offsets with vectorised NumPy inside. They work
in the dtype they are given (the gradient checks use float64). The in-place updates
(``adam_update``, ``sgd_update``, ``copy_into``, ``add_into``, ``scale_into``) update their
arguments in place, as the ops do.
"""
from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------------------- convolution
def conv2d_forward(x, w, b, dilation=1):
    """SAME convolution as a sum over kernel taps: ``out = b + Σ_{i,j} shift_{d·i, d·j}(x) @ w[i, j]``.

    Tap ``(i, j)`` of a kernel dilated by ``d`` reads the input ``d·i − ph`` rows and ``d·j − pw``
    columns away, ``ph = d·(kh − 1)/2``: pad by ``ph, pw`` with zeros and slice at ``d·i, d·j``.
    """
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    d = dilation
    ph, pw = d * (kh - 1) // 2, d * (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    out = np.zeros((N, H, W, F), dtype=x.dtype) + b
    for i in range(kh):
        for j in range(kw):
            out += xp[:, d * i:d * i + H, d * j:d * j + W, :] @ w[i, j]     # (N, H, W, C) @ (C, F)
    return out, (x, w, dilation)


def conv2d_backward(dout, cache):
    x, w, d = cache
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    ph, pw = d * (kh - 1) // 2, d * (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            window = xp[:, d * i:d * i + H, d * j:d * j + W, :]
            dw[i, j] = np.tensordot(window, dout, axes=([0, 1, 2], [0, 1, 2]))  # (C, F)
            dxp[:, d * i:d * i + H, d * j:d * j + W, :] += dout @ w[i, j].T      # (N, H, W, C)
    dx = dxp[:, ph:ph + H, pw:pw + W, :]
    db = dout.sum(axis=(0, 1, 2))
    return dx, dw, db


# Winograd F(2×2, 3×3) (Lavin & Gray 2016): Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A for a 4×4 tile d
WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def winograd_weights(w):
    """``U[a, b, c, f] = (G g Gᵀ)[a, b]`` for every 3×3 filter ``g = w[:, :, c, f]``: (4, 4, C, F)."""
    return np.einsum("ai,ijcf,bj->abcf", WINOGRAD_G, w, WINOGRAD_G).astype(w.dtype)


def conv2d_winograd_forward(x, w, b, dilation=1):
    """The 3×3 convolution of :func:`conv2d_forward` by Winograd F(2×2, 3×3), any dilation.

    A kernel dilated by ``d`` only ever combines pixels ``d`` apart, so each of the ``d × d``
    phases ``x[:, py::d, px::d]`` is convolved on its own with the undilated filter; each phase is
    cut into 4×4 tiles at stride 2 (zero padding 1), and every tile gives a 2×2 block of outputs.
    """
    N, H, W, C = x.shape
    d = dilation
    U = winograd_weights(w)
    out = np.zeros((N, H, W, w.shape[3]), dtype=x.dtype)
    for py in range(min(d, H)):
        for px in range(min(d, W)):
            out[:, py::d, px::d] = _winograd_phase(x[:, py::d, px::d], U) + b
    return out, (x, w, dilation)


def conv2d_winograd_weight_grad(dout, x, w_shape, dilation=1):
    """``dw`` of the 3×3 convolution through the Winograd transforms, phase by phase.

    Forward ``Y_t = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d_t B)] A`` gives ``dM_t = A dY_t Aᵀ``,
    ``dU = Σ_t (Bᵀ d_t B) ⊙ dM_t`` (per channel pair) and ``dg = Gᵀ dU G``.
    """
    d = dilation
    N, H, W, C = x.shape
    dU = np.zeros((4, 4, C, w_shape[3]), dtype=np.float64)
    for py in range(min(d, H)):
        for px in range(min(d, W)):
            V, th, tw = _winograd_tiles(x[:, py::d, px::d])          # (N, th, tw, 4, 4, C)
            g = dout[:, py::d, px::d]
            gp = np.zeros((g.shape[0], 2 * th, 2 * tw, g.shape[3]), dtype=np.float64)
            gp[:, :g.shape[1], :g.shape[2]] = g
            dY = gp.reshape(N, th, 2, tw, 2, -1).transpose(0, 1, 3, 2, 4, 5)  # (N, th, tw, 2, 2, F)
            dM = np.einsum("ai,ntsabf,bj->ntsijf", WINOGRAD_AT, dY, WINOGRAD_AT)   # A dY Aᵀ
            dU += np.einsum("ntsabc,ntsabf->abcf", V, dM)
    return np.einsum("ai,abcf,bj->ijcf", WINOGRAD_G, dU, WINOGRAD_G).astype(x.dtype)


def _winograd_tiles(x):
    """The transformed 4×4 input tiles ``Bᵀ d B`` of an undilated phase, and the tile counts."""
    N, H, W, C = x.shape
    th, tw = (H + 1) // 2, (W + 1) // 2
    xp = np.zeros((N, 2 * th + 2, 2 * tw + 2, C), dtype=np.float64)
    xp[:, 1:H + 1, 1:W + 1] = x
    tiles = np.stack([np.stack([xp[:, i:i + 2 * th:2, j:j + 2 * tw:2] for j in range(4)], axis=3)
                      for i in range(4)], axis=3)                        # (N, th, tw, 4, 4, C)
    return np.einsum("ai,ntsijc,bj->ntsabc", WINOGRAD_BT, tiles, WINOGRAD_BT), th, tw


def _winograd_phase(x, U):
    N, H, W, C = x.shape
    V, th, tw = _winograd_tiles(x)                                 # Bᵀ d B
    M = np.einsum("ntsabc,abcf->ntsabf", V, U)                          # 16 products over c
    Y = np.einsum("ai,ntsijf,bj->ntsabf", WINOGRAD_AT, M, WINOGRAD_AT)  # (N, th, tw, 2, 2, F)
    F = U.shape[3]
    Y = Y.transpose(0, 1, 3, 2, 4, 5).reshape(N, 2 * th, 2 * tw, F)     # tiles back to pixels
    return Y[:, :H, :W].astype(x.dtype)


# ----------------------------------------------------------------------------- pooling
def maxpool_forward(x):
    """2×2/2 max pooling, SAME: pad odd sizes with −∞, view as windows, take the max."""
    N, H, W, C = x.shape
    Ho, Wo = (H + 1) // 2, (W + 1) // 2
    xp = np.full((N, 2 * Ho, 2 * Wo, C), -np.inf, dtype=x.dtype)
    xp[:, :H, :W] = x
    windows = xp.reshape(N, Ho, 2, Wo, 2, C).transpose(0, 1, 3, 5, 2, 4).reshape(N, Ho, Wo, C, 4)
    argmax = windows.argmax(axis=-1)            # first maximum, index 2·dy + dx
    out = windows.max(axis=-1)
    return out, (x.shape, argmax.astype(np.int8))


def maxpool_backward(dout, cache):
    x_shape, argmax = cache
    N, H, W, C = x_shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    onehot = np.eye(4, dtype=dout.dtype)[argmax]                    # (N, Ho, Wo, C, 4)
    windows = onehot * dout[..., None]
    dxp = windows.reshape(N, Ho, Wo, C, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(N, 2 * Ho, 2 * Wo, C)
    return dxp[:, :H, :W]


def maxpool3x3_forward(x, stride):
    """3×3 max pooling, padding 1 with −∞, stride ``s``: stack the 9 strided window taps, take the max.

    ``argmax`` is the first maximal tap ``3·dy + dx`` (``np.argmax``'s first-occurrence rule: the
    kernels' and PyTorch's tie rule; NaN input is left to the kernels' tests).
    """
    N, H, W, C = x.shape
    s = stride
    Ho, Wo = -(-H // s), -(-W // s)
    xp = np.full((N, s * Ho + 2, s * Wo + 2, C), -np.inf, dtype=x.dtype)    # pad 1 (and the ceil)
    xp[:, 1:H + 1, 1:W + 1] = x
    taps = np.stack([xp[:, dy:dy + s * Ho:s, dx:dx + s * Wo:s] for dy in range(3) for dx in range(3)],
                    axis=-1)                                                # (N, Ho, Wo, C, 9)
    return taps.max(axis=-1), (x.shape, taps.argmax(axis=-1).astype(np.int8), stride)


def maxpool3x3_backward(dout, cache):
    """Scatter-add each ``dout`` to its window's winner (windows overlap, so winners can repeat)."""
    x_shape, argmax, s = cache
    N, H, W, C = x_shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    dxp = np.zeros((N, s * Ho + 2, s * Wo + 2, C), dtype=dout.dtype)
    n, yo, xo, c = np.indices(dout.shape)
    rows = s * yo + argmax // 3                                             # in padded coordinates
    cols = s * xo + argmax % 3
    np.add.at(dxp, (n, rows, cols, c), dout)
    return dxp[:, 1:H + 1, 1:W + 1]


# ----------------------------------------------------------------------------- ReLU, dropout
def relu_forward(x):
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout, cache):
    return dout * (cache > 0)


def uniform_from_counter(seed: int, n: int) -> np.ndarray:
    """The dropout generator, vectorised: SplitMix64 of ``seed·φ⁻¹·2⁶⁴ + i·c`` → 24-bit float."""
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64)
        z = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + i * np.uint64(0xBF58476D1CE4E5B9)
             + np.uint64(0x94D049BB133111EB))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def dropout_forward(x, p, seed):
    mask = (uniform_from_counter(seed, x.size) >= np.float32(p)).reshape(x.shape)
    scale = np.float32(1.0 / (1.0 - p)) if x.dtype == np.float32 else 1.0 / (1.0 - p)
    return x * mask * scale, (mask.astype(np.uint8), p)


def dropout_backward(dout, cache):
    mask, p = cache
    scale = np.float32(1.0 / (1.0 - p)) if dout.dtype == np.float32 else 1.0 / (1.0 - p)
    return dout * mask * scale


# ----------------------------------------------------------------------------- transposed conv
def conv_transpose2d_forward(x, w, factor):
    """Each input pixel stamps ``x[n,i,j,:] · w`` into a full canvas at stride f; crop SAME."""
    N, H, W, Ci = x.shape
    k, Co = w.shape[0], w.shape[2]
    pad = (k - factor) // 2
    full = np.zeros((N, factor * (H - 1) + k, factor * (W - 1) + k, Co), dtype=x.dtype)
    for i in range(H):
        for j in range(W):
            stamp = np.einsum("nc,yxoc->nyxo", x[:, i, j, :], w)       # (N, k, k, Co)
            full[:, factor * i:factor * i + k, factor * j:factor * j + k, :] += stamp
    out = full[:, pad:pad + factor * H, pad:pad + factor * W, :]
    return out, (x, w, factor)


def conv_transpose2d_backward(dout, cache):
    x, w, factor = cache
    N, H, W, Ci = x.shape
    k = w.shape[0]
    pad = (k - factor) // 2
    full = np.zeros((N, factor * (H - 1) + k, factor * (W - 1) + k, dout.shape[3]), dtype=dout.dtype)
    full[:, pad:pad + factor * H, pad:pad + factor * W, :] = dout
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for i in range(H):
        for j in range(W):
            window = full[:, factor * i:factor * i + k, factor * j:factor * j + k, :]  # (N, k, k, Co)
            dx[:, i, j, :] = np.einsum("nyxo,yxoc->nc", window, w)
            dw += np.einsum("nc,nyxo->yxoc", x[:, i, j, :], window)
    return dx, dw


def conv_transpose2d_depthwise_forward(x, kernel, factor):
    C = x.shape[3]
    w = np.zeros(kernel.shape + (C, C), dtype=x.dtype)
    for c in range(C):
        w[:, :, c, c] = kernel
    out, _ = conv_transpose2d_forward(x, w, factor)
    return out, (x, w, factor)


def conv_transpose2d_depthwise_backward(dout, cache):
    dx, _ = conv_transpose2d_backward(dout, cache)
    return dx


# ----------------------------------------------------------------------------- softmax, loss
def softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, labels, reduction="sum", ignore_label=255):
    """``Σ (logsumexp(z) − z_label)`` over non-ignored pixels; gradient ``softmax − onehot``."""
    C = logits.shape[-1]
    valid = labels != ignore_label
    safe = np.where(valid, labels, 0)
    m = logits.max(axis=-1, keepdims=True)
    logsumexp = (m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True)))[..., 0]
    picked = np.take_along_axis(logits, safe[..., None].astype(np.int64), axis=-1)[..., 0]
    losses = np.where(valid, logsumexp - picked, 0.0)
    grad = (softmax(logits) - np.eye(C, dtype=logits.dtype)[safe]) * valid[..., None]
    total = float(losses.astype(np.float64).sum())
    if reduction == "mean":
        count = max(int(valid.sum()), 1)
        return total / count, grad / count
    return total, grad


# ----------------------------------------------------------------------------- Adam
def adam_update(param, grad, m, v, step, lr=1e-4, beta1=0.9, beta2=0.999, eps=1e-8):
    """TensorFlow's Adam on NumPy arrays, in place (same contract as :func:`tinyseg.ops.adam_update`)."""
    lr_t = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param -= lr_t * m / (np.sqrt(v) + eps)


# ----------------------------------------------------------------------------- model heads (ops.fuse)
def crop_add_forward(big, small):
    h, w = small.shape[1:3]
    return big[:, :h, :w, :] + small, tuple(big.shape)


def crop_add_backward(dout, cache):
    dbig = np.zeros(cache, dout.dtype)
    dbig[:, :dout.shape[1], :dout.shape[2], :] = dout
    return dbig, dout


def scale_forward(x, s):
    return x * np.float32(s), float(s)


def scale_backward(dout, cache):
    return dout * np.float32(cache)


def avgpool3x3_forward(x):
    """Mean of the 3×3 window, zero padding counted (Caffe's AVE pooling, stride 1, pad 1)."""
    H, W = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = sum(padded[:, dy:dy + H, dx:dx + W, :] for dy in range(3) for dx in range(3)) / 9
    return out.astype(x.dtype), None


def avgpool3x3_backward(dout, cache=None):
    return avgpool3x3_forward(dout)[0]


def interp_weights(n_out: int, n_in: int, factor: int) -> np.ndarray:
    """``T[y, i] = max(0, 1 − |y − f·i| / f)``: the (n_out, n_in) matrix of 1-D interpolation."""
    y = np.arange(n_out)[:, None]
    i = np.arange(n_in)[None, :]
    return np.maximum(0.0, 1.0 - np.abs(y - factor * i) / factor)


def interp_forward(x, factor, size):
    """``out = T_H · x · T_Wᵀ`` per image and channel (separable bilinear)."""
    H, W = size
    Ty = interp_weights(H, x.shape[1], factor)
    Tx = interp_weights(W, x.shape[2], factor)
    out = np.einsum("yi,nijc,xj->nyxc", Ty, x.astype(np.float64), Tx)
    return out.astype(x.dtype), (tuple(x.shape), factor)


def interp_backward(dout, cache):
    """``dx = T_Hᵀ · dout · T_W`` (the transpose)."""
    x_shape, factor = cache
    Ty = interp_weights(dout.shape[1], x_shape[1], factor)
    Tx = interp_weights(dout.shape[2], x_shape[2], factor)
    return np.einsum("yi,nyxc,xj->nijc", Ty, dout.astype(np.float64), Tx).astype(dout.dtype)


# ----------------------------------------------------------------------------- in-place updates
def sgd_update(param, grad, velocity, lr, momentum=0.99, weight_decay=5e-4, grad_scale=1.0):
    """``d = s·g + λθ; u = μu + d; θ -= lr·u`` in place (float32 throughout)."""
    f = np.float32
    d = f(grad_scale) * grad + f(weight_decay) * param
    velocity *= f(momentum)
    velocity += d
    param -= f(lr) * velocity


def copy_into(dst, src):
    """``dst ← src`` in place."""
    dst[...] = src


def add_into(acc, x):
    """``acc ← acc + x`` in place; returns ``acc``."""
    acc += x
    return acc


def scale_into(x, s):
    """``x ← s·x`` in place."""
    x *= np.float32(s)


from ._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # the old names (see tinyseg._moved)
