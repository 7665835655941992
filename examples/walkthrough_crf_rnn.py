# %% [markdown]
# # A trainable CRF: mean field as a recurrent layer (CRF-as-RNN)
#
# The post refines the network's output with a dense CRF *after* training, with
# hand-picked parameters (a spatial kernel of weight 3, a bilateral kernel of weight 10, the
# Potts label compatibility). Zheng et al. (*Conditional Random Fields as Recurrent Neural
# Networks*, ICCV 2015) noticed that every step of mean-field inference is differentiable, so
# the CRF can sit on top of the network as a layer, pass gradients down to it, and learn its own
# parameters. This chapter derives that layer's backward pass, checks each step numerically and
# then trains a small network with and without the CRF on top.
#
#     python examples/walkthrough_crf_rnn.py --out crf_rnn_walkthrough/
#
# Every formula below is implemented literally, in float64 NumPy, in
# `tinyseg/crf/rnn/reference.py`; the fast kernels (`tinyseg/crf/rnn/kernels.py`, and their CUDA
# twins) compute the same thing and are tested against it.

# %%
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from tinyseg.crf import CRFasRNN, dense_crf  # noqa: E402
from tinyseg.crf.features import bilateral_features, spatial_features  # noqa: E402
from tinyseg.crf.filters import GridFilter, exact_filter_reference  # noqa: E402
from tinyseg.crf.rnn.reference import (crf_rnn_backward_reference,  # noqa: E402
                                       crf_rnn_forward_reference, normalised_kernel, potts_compat)
from tinyseg.figures import show  # noqa: E402
from tinyseg.models.small import SmallFCN  # noqa: E402
from tinyseg.studies.crf_rnn import compare, plot_crf_parameters  # noqa: E402
from tinyseg.data.synthetic import class_names, synthetic_dataset  # noqa: E402

parser = argparse.ArgumentParser(description="CRF-as-RNN, derived and trained.")
parser.add_argument("--out", default="crf_rnn_walkthrough", help="folder for the figure")
parser.add_argument("--size", default="48x64", help="HxW of the synthetic images")
parser.add_argument("--classes", type=int, default=3, help="classes (background + shapes), 2..6")
parser.add_argument("--iterations", type=int, default=300, help="training iterations in total")
parser.add_argument("--pretrain", type=int, default=150, help="of which the network trains alone")
parser.add_argument("--train-images", type=int, default=32)
parser.add_argument("--test-images", type=int, default=16)
parser.add_argument("--seed", type=int, default=0)
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)
H, W = (int(s) for s in args.size.lower().split("x"))
rng = np.random.default_rng(args.seed)

# %% [markdown]
# ## 1. Mean field is a recurrence
#
# For one image with N pixels and C labels, the network gives logits `Z` (N, C). CRF-as-RNN reads
# them as a negative unary, `U = −Z`. Each Gaussian kernel `k` (spatial; bilateral) is an N×N
# matrix, normalised symmetrically, `K̃_k = D^-½ K_k D^-½` with `D = K_k 1`. The parameters are
# a weight per kernel and label, `w` (K, C), and a label compatibility `μ` (C, C), an energy:
# `μ[l, l']` is what label `l` costs at a pixel whose neighbours have label `l'`. Potts is
# `μ = 1 − I`. Then
#
#     Q_0 = softmax(Z)
#     M_k,t = K̃_k Q_t                 message passing (the filtering)
#     A_t   = Σ_k M_k,t diag(w_k)       weighting
#     L_t+1 = Z − A_t μᵀ               compatibility transform, adding the unary
#     Q_t+1 = softmax(L_t+1)           normalising
#
# and the layer outputs `L_T`, whose softmax is `Q_T`. With Potts and `w = (3, 10)` this is
# exactly the post's dense CRF: `A μᵀ = w (K̃Q 1 − K̃Q)` and the first term is the same for every
# label of a pixel, which softmax ignores. A tiny scene shows it:

# %%
h, w = 10, 12
image = np.zeros((h, w, 3), np.uint8)
image[:, :5] = (200, 40, 40)
image[:, 5:] = (40, 40, 200)
image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
z = rng.normal(0, 1, (h * w, 2))
z[:, 1] += np.where(np.arange(w) >= 7, 1.0, -1.0)[None, :].repeat(h, 0).ravel()   # a blurry guess
sdims, schan, gsdims = (5, 5), (20, 20, 20), (2, 2)
kernels = [exact_filter_reference(f, np.eye(h * w)) for f in
           (spatial_features((h, w), gsdims), bilateral_features(image, sdims, schan))]
weights = np.array([[3.0, 3.0], [10.0, 10.0]])
logits_T, cache = crf_rnn_forward_reference(z, kernels, weights, potts_compat(2), 5)
p = np.exp(z - z.max(1, keepdims=True))
p /= p.sum(1, keepdims=True)
_, q_crf = dense_crf(image, p.reshape(h, w, 2).astype(np.float32), sdims=sdims, schan=schan,
                     gaussian_sdims=gsdims, method="exact", clip=1e-30)
q_T = np.exp(logits_T - logits_T.max(1, keepdims=True))
q_T /= q_T.sum(1, keepdims=True)
print(f"recurrence vs dense_crf: max |ΔQ| = {np.abs(q_T - q_crf.reshape(-1, 2)).max():.1e}")
print(f"labels changed by the CRF: {int((q_T.argmax(1) != z.argmax(1)).sum())} of {h * w}")

# %% [markdown]
# ## 2. The backward pass
#
# Write `G_t = ∂ℓ/∂L_t` for a loss `ℓ` of the output; `G_T` is given (`dout`). Four facts carry
# the whole derivation.
#
# **(a) Softmax.** `q = softmax(L)` has the Jacobian `∂q_l/∂L_m = q_l (δ_lm − q_m)`, i.e.
# `diag(q) − q qᵀ`, so from `dq = ∂ℓ/∂q` a pixel's `dL = q ⊙ (dq − ⟨q, dq⟩)`. A constant added
# to all of a pixel's `dq` vanishes.
#
# **(b) One step.** `L_t = Z − A_t-1 μᵀ` is linear in `Z`, in `μ` and in `A`:
#
#     ∂ℓ/∂Z     += G_t                       (Z enters every step: it collects T+1 terms)
#     ∂ℓ/∂μ     −= G_tᵀ A_t-1                (C×C: a sum over pixels)
#     dA         = −G_t μ
#     ∂ℓ/∂w_k   += Σ_pixels dA ⊙ M_k,t-1     (one number per kernel and label)
#     ∂ℓ/∂M_k    = dA diag(w_k)
#
# **(c) The filter's adjoint.** `M_k = K̃_k Q` is linear in `Q`, so `∂ℓ/∂Q = Σ_k K̃_kᵀ ∂ℓ/∂M_k`:
# backpropagating a filter means applying its transpose. `K̃ᵀ = D^-½ Kᵀ D^-½`; the exact and
# separable Gaussians are symmetric; the bilateral grid `SᵀBS` (splat, blur, slice) has the
# transpose `SᵀBᵀS` — slice transposed, the blur passes transposed in reverse order, splat
# transposed — which `GridFilter.apply_transpose` builds literally. Its defining property:

# %%
grid = GridFilter(bilateral_features(image, sdims, schan), rotate=(2, 3, 4))
x = rng.standard_normal((h * w, 3)).astype(np.float32)
y = rng.standard_normal((h * w, 3)).astype(np.float32)
left = float(np.sum(grid.apply(y).astype(np.float64) * x))
right = float(np.sum(y.astype(np.float64) * grid.apply_transpose(x)))
print(f"grid adjoint: <K y, x> = {left:.6f}, <y, Kᵀ x> = {right:.6f}")

# %% [markdown]
# **(d) Through T steps.** Then `G_t-1` follows from (a) with `q = Q_t-1`, and the loop runs from
# `t = T` down to 1; finally `Q_0 = softmax(Z)` adds one last term to `∂ℓ/∂Z`. This is
# backpropagation through time: it needs every `Q_t` and every message `M_k,t`. tinyseg keeps the
# messages (`T·K·N·C` numbers) and recomputes `Q_t = softmax(Z − A_t-1 μᵀ)` from them, which costs
# no filtering. Two more economies: the rows of `Q` sum to one, so the filters see only `C − 1`
# channels in the forward pass (`K̃Q` of the last label is `K̃1` minus the others); and (a) says
# `∂ℓ/∂Q` is needed only up to a per-pixel constant, so the backward pass filters the `C − 1`
# differences to the last channel. The backward pass thus filters as much as the forward pass.
#
# The derivation, checked by central differences in float64:

# %%
mu = potts_compat(2) + 0.3 * rng.standard_normal((2, 2))
_, cache = crf_rnn_forward_reference(z, kernels, weights, mu, 3)
dout = rng.standard_normal(z.shape)
dz, dw, dmu = crf_rnn_backward_reference(dout, cache)


def loss():
    return float(np.sum(dout * crf_rnn_forward_reference(z, kernels, weights, mu, 3)[0]))


for name, param, analytic, index in (("Z", z, dz, (7, 1)), ("w", weights, dw, (1, 0)),
                                     ("mu", mu, dmu, (0, 1))):
    old = param[index]
    param[index] = old + 1e-6
    up = loss()
    param[index] = old - 1e-6
    down = loss()
    param[index] = old
    print(f"∂ℓ/∂{name}{list(index)}: backward {analytic[index]:+.8f}, "
          f"finite differences {(up - down) / 2e-6:+.8f}")
print("K̃ is symmetric:", bool(np.allclose(normalised_kernel(kernels[1]), normalised_kernel(kernels[1]).T)))

# %% [markdown]
# ## 3. Training through the CRF
#
# `tinyseg.crf.CRFasRNN` is the layer: `forward(logits, images, train)`, `backward(dout)`,
# `params`/`grads` (`compat`, `w_spatial`, `w_bilateral`) that an optimizer updates like the
# network's. We train a small FCN (stride 8, so its output is coarse) on synthetic textured
# shapes with exact labels, twice from the same initialisation and batches: alone, then refined
# after training by the dense CRF at the post's parameters; and with CRF-as-RNN on top for the
# last iterations (as Zheng et al. fine-tuned FCN-8s). Both run the same number of iterations.

# %%
names = class_names(args.classes)
train = synthetic_dataset(args.train_images, (H, W), args.classes, seed=args.seed, max_objects=3)
test = synthetic_dataset(args.test_images, (H, W), args.classes, seed=args.seed + 99, max_objects=3)
result = compare(lambda: SmallFCN(args.classes, 16, 3, args.seed), lambda: CRFasRNN(args.classes),
                 train, test, args.classes, iterations=args.iterations, pretrain=args.pretrain,
                 batch=4, crf_lr=0.1, crf_iterations=(5, 10))
alone, joint = result["alone"], result["joint"]
print(f"held-out mean IoU, {args.test_images} images {H}x{W}, {args.iterations} iterations:")
print(f"  network alone                      {alone['network']:.3f}")
print(f"  network alone + post-hoc CRF (5 it) {alone['posthoc_crf']:.3f}")
print(f"  network + CRF-as-RNN (5 it)         {joint['crf_rnn_5']:.3f}")
print(f"  network + CRF-as-RNN (10 it)        {joint['crf_rnn_10']:.3f}")

# %% [markdown]
# ## 4. What the CRF learned
#
# The figure puts the learned compatibility (each column shifted so that its diagonal is 0: only
# differences within a column matter) beside Potts, and the learned weights beside 3 and 10.

# %%
path = plot_crf_parameters(result["crf"], os.path.join(args.out, "crf_rnn_parameters.png"),
                           class_names=names, title="CRF-as-RNN: learned vs hand-picked")
print(f"wrote {path}")
show(path)
