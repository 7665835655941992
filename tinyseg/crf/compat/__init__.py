"""pydensecrf's ``densecrf`` API on tinyseg's permutohedral-free CRF.

``import pydensecrf.densecrf as dcrf`` becomes ``import tinyseg.crf.compat as dcrf`` and
``from pydensecrf.utils import ...`` becomes ``from tinyseg.crf.compat.utils import ...``; the rest
of a pydensecrf script runs unchanged::

    d = dcrf.DenseCRF2D(W, H, n_labels)          # or dcrf.DenseCRF(H * W, n_labels)
    d.setUnaryEnergy(U)                           # (n_labels, N) float32, C-contiguous
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=img, compat=10)
    Q = d.inference(5)                            # (n_labels, N) float32 ndarray

Layouts and meanings are pydensecrf's: unaries ``C × N``, features ``D × N``, pixels in row-major
order, ``compat`` a Potts weight (number), a per-label vector or a label-compatibility matrix.
Differences, all deliberate:

* filtering is tinyseg's: features on a regular pixel grid (``create_pairwise_gaussian``,
  ``addPairwiseGaussian``) get the separable (or recursive) spatial Gaussian, all others the
  sparse bilateral grid or, for small bandwidths and many dimensions, the cluster filter
  (:mod:`tinyseg.crf.filters.auto`); ``method="exact"`` (keyword of the constructors) uses brute
  force everywhere (small images);
* ``inference`` and ``startInference`` return NumPy arrays rather than Eigen wrappers;
* ``NO_NORMALIZATION`` uses ``K`` with ``K[i, i] = 1`` (pydensecrf's lattice scales it differently);
* ``+inf`` unaries (``-log 0``, e.g. from ``softmax_to_unary``) are hard constraints, as in
  pydensecrf (that label's ``Q`` stays exactly 0 there); NaN, ``-inf``, or ``+inf`` for every
  label of a pixel are errors (pydensecrf would return NaN);
* the kernel type (``DIAG_KERNEL``/``CONST_KERNEL``/``FULL_KERNEL``) only matters for learning,
  which is not supported: all three use the features as given;
* pydensecrf rejects a float64 ``compat`` array (its own test ``test_compact_wrong``); here any
  float array is taken.
"""
from __future__ import annotations

import enum
from numbers import Number

import numpy as np

from ..features import as_pair, as_triple, bilateral_features, spatial_features
from ..filters import ExactFilter, auto_filter, spatial_gaussian
from ..inference import MeanField, PairwiseTerm, check_unary
from ..mean_field_kernels import transpose

__all__ = [
    "DenseCRF",
    "DenseCRF2D",
    "Unary",
    "ConstUnary",
    "LogisticUnary",
    "KernelType",
    "NormalizationType",
    "CONST_KERNEL",
    "DIAG_KERNEL",
    "FULL_KERNEL",
    "NO_NORMALIZATION",
    "NORMALIZE_BEFORE",
    "NORMALIZE_AFTER",
    "NORMALIZE_SYMMETRIC",
]


class KernelType(enum.IntEnum):
    """pydensecrf's kernel types (same values)."""

    CONST_KERNEL = 0
    DIAG_KERNEL = 1
    FULL_KERNEL = 2


class NormalizationType(enum.IntEnum):
    """pydensecrf's normalisation types (same values)."""

    NO_NORMALIZATION = 0
    NORMALIZE_BEFORE = 1
    NORMALIZE_AFTER = 2
    NORMALIZE_SYMMETRIC = 3


CONST_KERNEL = KernelType.CONST_KERNEL
DIAG_KERNEL = KernelType.DIAG_KERNEL
FULL_KERNEL = KernelType.FULL_KERNEL
NO_NORMALIZATION = NormalizationType.NO_NORMALIZATION
NORMALIZE_BEFORE = NormalizationType.NORMALIZE_BEFORE
NORMALIZE_AFTER = NormalizationType.NORMALIZE_AFTER
NORMALIZE_SYMMETRIC = NormalizationType.NORMALIZE_SYMMETRIC

_NORMALIZATION_NAMES = {
    NO_NORMALIZATION: "none",
    NORMALIZE_BEFORE: "before",
    NORMALIZE_AFTER: "after",
    NORMALIZE_SYMMETRIC: "symmetric",
}


class Unary:
    """Base of pydensecrf's unary objects: :meth:`get` returns the ``(n_labels, N)`` energies."""

    def get(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def _float32_matrix(a, name: str) -> np.ndarray:
    """pydensecrf's ``float[:, ::1]`` argument check: a C-contiguous float32 matrix."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"`{name}` must be a NumPy array, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise ValueError(f"`{name}` must be float32, got {a.dtype}; use .astype(np.float32)")
    if a.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"`{name}` must be C-contiguous; use np.ascontiguousarray({name})")
    return a


class ConstUnary(Unary):
    """A fixed unary (pydensecrf's ``ConstUnary``): ``(n_labels, N)`` float32 energies."""

    def __init__(self, u):
        self.unary = _float32_matrix(u, "u")

    def get(self) -> np.ndarray:
        return self.unary


class LogisticUnary(Unary):
    """pydensecrf's ``LogisticUnary(L, f)``: the energies ``L @ f`` of a linear (logistic) model.

    ``L`` (n_labels, F) weights, ``f`` (F, N) per-pixel features, both float32 C-contiguous.
    (pydensecrf learns ``L`` in C++ only; here it is a fixed unary, as in pydensecrf's Python API.)
    """

    def __init__(self, L, f):  # noqa: N803 (pydensecrf's names)
        self.L = _float32_matrix(L, "L")
        self.f = _float32_matrix(f, "f")
        if self.L.shape[1] != self.f.shape[0]:
            raise ValueError(f"`L` is {self.L.shape} and `f` is {self.f.shape}: L's columns must "
                             "match f's rows (L @ f)")

    def get(self) -> np.ndarray:
        return np.ascontiguousarray(self.L @ self.f, dtype=np.float32)


def _regular_grid(feats: np.ndarray, shape=None):
    """If ``feats`` (2, N) are ``(row / s_row, col / s_col)`` of an H×W grid, return ((H, W), sdims).

    ``shape`` is a known (H, W); without it W is found where the column feature first wraps.
    Returns None for any other features.
    """
    if feats.shape[0] != 2:
        return None
    n = feats.shape[1]
    rows, cols = feats.astype(np.float64)
    if shape is None:
        wraps = np.flatnonzero(cols[1:] <= cols[0])
        w = int(wraps[0]) + 1 if wraps.size else n
        if n % w:
            return None
        shape = (n // w, w)
    h, w = shape
    if h * w != n:
        return None
    rows, cols = rows.reshape(h, w), cols.reshape(h, w)                 # (N,) -> (H, W)
    a = rows[1, 0] - rows[0, 0] if h > 1 else 1.0
    b = cols[0, 1] - cols[0, 0] if w > 1 else 1.0
    if not (a > 0 and b > 0):
        return None
    expect_rows = rows[0, 0] + a * np.arange(h)[:, None]
    expect_cols = cols[0, 0] + b * np.arange(w)[None, :]
    tol = 1e-5 * max(1.0, abs(rows).max(), abs(cols).max())
    if np.abs(rows - expect_rows).max() > tol or np.abs(cols - expect_cols).max() > tol:
        return None
    return (h, w), (1.0 / a, 1.0 / b)


class DenseCRF:
    """A fully connected CRF over ``nvar`` variables with ``nlabels`` labels (pydensecrf's API).

    Parameters
    ----------
    nvar : number of variables (pixels) N.
    nlabels : number of labels C.
    method : keyword-only, tinyseg's: "fast" (see :data:`tinyseg.crf.refine.METHODS`) or "exact"
        (brute force; more than :data:`tinyseg.crf.filters.MAX_EXACT_POINTS` points need ``force``).
    """

    def __init__(self, nvar: int, nlabels: int, *, method: str = "fast", force: bool = False):
        if int(nvar) != nvar or nvar < 1:
            raise ValueError(f"`nvar` must be a positive integer, got {nvar}")
        if int(nlabels) != nlabels or nlabels < 1:
            raise ValueError(f"`nlabels` must be a positive integer, got {nlabels}")
        if method not in ("fast", "exact"):
            raise ValueError(f"`method` must be 'fast' or 'exact', got {method!r}")
        self.nvar = int(nvar)
        self.nlabels = int(nlabels)
        self.method = method
        self.force = bool(force)
        self._neg_unary = np.zeros((self.nvar, self.nlabels), dtype=np.float32)   # (N, C), -U
        self._terms: list[PairwiseTerm] = []
        self._engine: MeanField | None = None
        self._grid_shape = None          # (H, W) when known (DenseCRF2D)

    # -- unary --------------------------------------------------------------------------------
    def setUnaryEnergy(self, u, f=None) -> None:  # noqa: N802 (pydensecrf's name)
        """Set the unary energies: ``u`` (nlabels, nvar) float32, C-contiguous (e.g. ``-log p``).

        With ``f`` (pydensecrf's logistic form), the energies are ``u @ f``: ``u`` the (nlabels, F)
        weights, ``f`` the (F, nvar) features (see :class:`LogisticUnary`).
        """
        if f is not None:
            self.setUnary(LogisticUnary(u, f))
            return
        u = _float32_matrix(u, "unary")
        if u.shape != (self.nlabels, self.nvar):
            raise ValueError(f"`unary` must have shape (nlabels, nvar) = ({self.nlabels}, "
                             f"{self.nvar}), got {u.shape}")
        # +inf (= -log 0) stays: a hard constraint, as in pydensecrf; NaN, -inf and a pixel
        # without any finite energy are errors
        neg = transpose(u, negate=True)                                       # (C, N) -> (N, C), -U
        self._neg_unary = check_unary(neg, negated=True)   # NaN, -inf, a pixel with no label
        self._engine = None

    def setUnary(self, u) -> None:  # noqa: N802
        """Set the unary from a :class:`ConstUnary` or :class:`LogisticUnary` (or an array)."""
        self.setUnaryEnergy(u.get() if isinstance(u, Unary) else u)

    # -- pairwise -----------------------------------------------------------------------------
    def _add_term(self, filt, compat, kernel, normalization) -> None:
        if kernel not in tuple(KernelType):
            raise ValueError(f"`kernel` must be CONST_KERNEL, DIAG_KERNEL or FULL_KERNEL, got {kernel!r}")
        if normalization not in _NORMALIZATION_NAMES:
            raise ValueError("`normalization` must be NO_NORMALIZATION, NORMALIZE_BEFORE, "
                             f"NORMALIZE_AFTER or NORMALIZE_SYMMETRIC, got {normalization!r}")
        if not isinstance(compat, Number):
            compat = np.asarray(compat, dtype=np.float32)
            if compat.ndim not in (1, 2) or compat.shape[0] != self.nlabels or (
                    compat.ndim == 2 and compat.shape[1] != self.nlabels):
                raise ValueError(f"`compat` must be a number, a ({self.nlabels},) vector or a "
                                 f"({self.nlabels}, {self.nlabels}) matrix, got shape {compat.shape}")
            if compat.ndim == 2:
                compat = 0.5 * (compat + compat.T)        # pydensecrf's MatrixCompatibility
        self._terms.append(PairwiseTerm(filt, compat, _NORMALIZATION_NAMES[normalization]))
        self._engine = None

    def addPairwiseEnergy(self, features, compat, kernel=DIAG_KERNEL,  # noqa: N802
                          normalization=NORMALIZE_SYMMETRIC) -> None:
        """Add a Gaussian pairwise term on ``features`` (D, nvar), scaled by their bandwidths.

        Features of a regular pixel grid (``create_pairwise_gaussian``) get the exact separable
        filter; any other features the bilateral grid (or brute force with ``method="exact"``).
        """
        feats = np.asarray(features)
        if feats.ndim != 2 or feats.shape[1] != self.nvar:
            raise ValueError(f"`features` must have shape (D, nvar) = (D, {self.nvar}), got {feats.shape}")
        if not np.issubdtype(feats.dtype, np.floating):
            raise ValueError(f"`features` must be floating point, got dtype {feats.dtype}")
        if not np.all(np.isfinite(feats)):
            raise ValueError("`features` contains NaN or infinite values")
        points = np.ascontiguousarray(feats.T, dtype=np.float32)              # (D, N) -> (N, D)
        if self.method == "exact":
            filt = ExactFilter(points, force=self.force)
        else:
            grid = _regular_grid(feats, self._grid_shape)
            if grid is not None:
                filt = spatial_gaussian(grid[0], grid[1], self.nlabels - 1)
            else:
                # axes after the first two (pydensecrf's bilateral features: the colours) may be
                # turned onto their principal axes: same kernel, smaller grid
                filt = auto_filter(points, rotate=tuple(range(2, points.shape[1])))
        self._add_term(filt, compat, kernel, normalization)

    # -- inference ----------------------------------------------------------------------------
    def _mean_field(self) -> MeanField:
        if self._engine is None:
            self._engine = MeanField(self._neg_unary, self._terms, negated=True)
        return self._engine

    def inference(self, n_iterations: int) -> np.ndarray:
        """Run ``n_iterations`` of mean field; returns Q (nlabels, nvar) float32."""
        if int(n_iterations) != n_iterations or n_iterations < 0:
            raise ValueError(f"`n_iterations` must be a non-negative integer, got {n_iterations}")
        q = self._mean_field().run(int(n_iterations))                        # (N, C)
        return transpose(q)                                                   # (C, N)

    def startInference(self):  # noqa: N802
        """Start stepwise inference: returns ``(Q, tmp1, tmp2)``, each (nlabels, nvar) float32.

        ``Q = softmax(-U)``; pass all three to :meth:`stepInference`, which updates ``Q`` in place.
        """
        q = np.ascontiguousarray(self._mean_field().start().T)
        return q, np.zeros_like(q), np.zeros_like(q)

    def stepInference(self, Q, tmp1, tmp2) -> None:  # noqa: N802, N803
        """One mean-field update of ``Q`` (nlabels, nvar) float32, in place; ``tmp1`` receives
        the new logits ``-U - pairwise``, ``tmp2`` the pairwise part."""
        for name, arr in (("Q", Q), ("tmp1", tmp1), ("tmp2", tmp2)):
            if not isinstance(arr, np.ndarray) or arr.shape != (self.nlabels, self.nvar) \
                    or arr.dtype != np.float32:
                raise ValueError(f"`{name}` must be a ({self.nlabels}, {self.nvar}) float32 array "
                                 "from startInference()")
        engine = self._mean_field()
        pairwise = engine.pairwise_logits(np.ascontiguousarray(Q.T))          # (N, C)
        logits = pairwise + engine.neg_unary
        tmp2[...] = pairwise.T
        tmp1[...] = logits.T
        from ..inference import softmax

        Q[...] = softmax(logits).T

    def klDivergence(self, Q) -> float:  # noqa: N802, N803
        """KL divergence of ``Q`` (nlabels, nvar) from the CRF's distribution, up to ``log Z``."""
        q = np.asarray(Q, dtype=np.float32)
        if q.shape != (self.nlabels, self.nvar):
            raise ValueError(f"`Q` must have shape ({self.nlabels}, {self.nvar}), got {q.shape}")
        return self._mean_field().kl_divergence(np.ascontiguousarray(q.T))


class DenseCRF2D(DenseCRF):
    """A dense CRF over a ``w × h`` image (pydensecrf's ``DenseCRF2D(w, h, nlabels)``)."""

    def __init__(self, w: int, h: int, nlabels: int, *, method: str = "fast", force: bool = False):
        if int(w) != w or int(h) != h or w < 1 or h < 1:
            raise ValueError(f"`w` and `h` must be positive integers, got {w}, {h}")
        super().__init__(int(w) * int(h), nlabels, method=method, force=force)
        self.w, self.h = int(w), int(h)
        self._grid_shape = (self.h, self.w)

    def addPairwiseGaussian(self, sxy, compat, kernel=DIAG_KERNEL,  # noqa: N802
                            normalization=NORMALIZE_SYMMETRIC) -> None:
        """Spatial Gaussian term; ``sxy`` is a number or ``(sx, sy)`` in pixels (x = column)."""
        sx, sy = as_pair(sxy, "sxy")
        if self.method == "exact":
            filt = ExactFilter(spatial_features((self.h, self.w), (sy, sx)), force=self.force)
        else:
            filt = spatial_gaussian((self.h, self.w), (sy, sx), self.nlabels - 1)
        self._add_term(filt, compat, kernel, normalization)

    def addPairwiseBilateral(self, sxy, srgb, rgbim, compat, kernel=DIAG_KERNEL,  # noqa: N802
                             normalization=NORMALIZE_SYMMETRIC) -> None:
        """Bilateral term; ``sxy`` a number or ``(sx, sy)``, ``srgb`` a number or three, ``rgbim``
        the (h, w, 3) uint8 image."""
        sx, sy = as_pair(sxy, "sxy")
        srgb = as_triple(srgb, "srgb")
        img = np.asarray(rgbim)
        if img.shape != (self.h, self.w, 3):
            raise ValueError(f"`rgbim` must have shape (h, w, 3) = ({self.h}, {self.w}, 3), "
                             f"got {img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"`rgbim` must be uint8, got dtype {img.dtype}")
        feats = bilateral_features(img, (sy, sx), srgb)                      # (N, 5)
        filt = (ExactFilter(feats, force=self.force) if self.method == "exact"
                else auto_filter(feats, rotate=(2, 3, 4), image_shape=(self.h, self.w)))
        self._add_term(filt, compat, kernel, normalization)
