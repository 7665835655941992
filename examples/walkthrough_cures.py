# %% [markdown]
# # The two cures for coarse maps: skip connections (FCN-8s) and atrous convolution (DeepLab)
#
# The post (see `post_walkthrough.py`) ends with FCN-32s's map looking coarse even on the
# image it was trained on, and names two remedies: **skip connections** — FCN-16s and FCN-8s
# (Long, Shelhamer & Darrell, 2015) predict from pool4 and pool3 too, where the stride is 16 and
# 8 — and **atrous convolution with a fully connected CRF** — DeepLab-LargeFOV (Chen et al.,
# 2015) removes the last two poolings' strides and dilates the layers after them, so the whole
# network runs at stride 8. This chapter derives the geometry of both (where each score sits on
# the image, what each filter sees), checks it numerically with tinyseg's layers, then trains
# FCN-32s, FCN-8s and DeepLab-LargeFOV on the post's image and measures what each cure buys
# where it matters: near object boundaries (DeepLab's "trimap" accuracy).
#
#     python examples/walkthrough_cures.py --out cures/                    # from scratch, CPU
#     python examples/walkthrough_cures.py --weights vgg16.npz --out cures/

# %%
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

import tinyseg  # noqa: E402
from tinyseg import ops  # noqa: E402
from tinyseg.layers import TransposedConv2D  # noqa: E402
from tinyseg.figures import show  # noqa: E402
from tinyseg.studies.cures import format_seed_table, format_table, run_study  # noqa: E402

parser = argparse.ArgumentParser(description="The two cures for FCN-32s's coarse maps, derived and measured.")
parser.add_argument("--width", type=float, default=None, help="VGG channel multiplier (default 0.25, 1.0 with --weights)")
parser.add_argument("--iterations", type=int, default=None, help="training iterations per model (default 30, 10 with --weights)")
parser.add_argument("--weights", default=None, help="imported VGG-16 weights (.npz or Keras .h5)")
parser.add_argument("--out", default="cures_out", help="folder for the figures and tables (created)")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)


# %% [markdown]
# ## 1. Where a score sits: the alignment rule
#
# With 2×2/2 SAME max pooling, pixel `i` of the pooled map summarises input rows `2i, 2i + 1`:
# its centre is `2i + 0.5`. Composing, a map at stride `s` (after `log2 s` pools) has pixel `i`
# centred on input coordinate
#
# $$ c_s(i) = s\,i + \frac{s - 1}{2}, $$
#
# so FCN-32s's score `i` is the centre `32i + 15.5` of its 32×32 block. A TF-SAME transposed
# convolution by `f` with the bilinear kernel (`get_kernel_size(f) = 2f − f mod 2` taps, cropped
# by `(k − f) // 2`) puts its input `i` at output `f·i + (f − 1)/2`. Feeding it the stride-`s` map:
#
# $$ c_{s/f}\!\left(f\,i + \tfrac{f-1}{2}\right) = \tfrac{s}{f}\left(f\,i + \tfrac{f-1}{2}\right) + \tfrac{s/f - 1}{2}
#    = s\,i + \tfrac{s-1}{2} = c_s(i). $$
#
# The upsampled map lies *exactly* on the finer grid, both starting at the top-left corner. So
# every fusion of FCN-16s/8s is a top-left crop and an add, and the final map a top-left crop —
# no offsets at all. (Caffe's reference FCNs pad the input by 100 pixels and need crop offsets 5,
# 9 and 31; SAME pooling makes them zero.) Check it with a delta score through `upscore2`:

# %%
C = 1
delta = np.zeros((1, 4, 1, C), np.float32)
delta[0, 1, 0, 0] = 1.0                                       # score i = 1 at stride 32
up = TransposedConv2D("upscore2", tinyseg.bilinear_upsample_weights(2, C), 2).forward(delta)
column = up[0, :, 0, 0]                                        # (8,) at stride 16
centre16 = (column * np.arange(column.size)).sum() / column.sum()
print(f"upscore2 of a delta at i=1: weights {column.round(3).tolist()}, centre j = {centre16:.2f} "
      f"(2i + 0.5); on the image 16·{centre16:.2f} + 7.5 = {16 * centre16 + 7.5:.1f} = 32·1 + 15.5")

for H in (375, 300):
    h32, h16, h8 = -(-H // 32), -(-H // 16), -(-H // 8)
    print(f"H = {H}: fc8 {h32} rows -> upscore2 {2 * h32} vs pool4 {h16} (crop {2 * h32 - h16}); "
          f"upscore_pool4 {2 * h16} vs pool3 {h8} (crop {2 * h16 - h8}); upscore8 {8 * h8} vs image "
          f"{H} (crop {8 * h8 - H})")

# %% [markdown]
# The fuse is FCN's `score = upsample(coarse)[:h, :w] + score_pool(finer)` — one kernel,
# `ops.crop_add_forward`, whose backward hands `dout` to the finer branch unchanged and the
# zero-padded `dout` to the coarse one. In FCN-8s, pool4 and pool3 feed two consumers (the next
# block and their score layer), so their gradients are the sum of both paths.
#
# **Staged training** (the FCN paper) starts FCN-16s from a trained FCN-32s with `score_pool4`
# at zero — the net starts by predicting what FCN-32s predicted — and FCN-8s from FCN-16s the
# same way (`tinyseg train --model fcn16s --init-from fcn32s.h5`). The reference "at once"
# FCN-8s instead trains everything from VGG in one run with pool4 × 0.01 and pool3 × 0.0001
# (`--model fcn8s-atonce`): the skips' activations are much larger than fc7's and would swamp
# the coarse prediction while it is still being learnt.

# %% [markdown]
# ## 2. What a filter sees: dilation
#
# A `k × k` convolution with dilation `d` spaces its taps `d` pixels apart: it spans
#
# $$ k_{\text{eff}} = k + (k - 1)(d - 1) $$
#
# pixels with only `k²` weights. It equals an ordinary convolution whose kernel has `d − 1` zeros
# inserted between the taps. Through a stack of layers with strides `s_l`, the receptive field
# grows as `r ← r + (k_eff − 1)·j`, `j ← j·s`, where `j` is the current stride (jump).

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((1, 20, 23, 2)).astype(np.float32)
w = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
b = np.zeros(4, np.float32)
d = 3
stuffed = np.zeros((3 + 2 * (d - 1), 3 + 2 * (d - 1), 2, 4), np.float32)   # (7, 7, 2, 4)
stuffed[::d, ::d] = w
dilated = ops.conv2d_forward(x, w, b, dilation=d)[0]
plain = ops.conv2d_forward(x, stuffed, b)[0]
print(f"3×3 with dilation {d} == 7×7 with zeros between the taps: max |diff| = {np.abs(dilated - plain).max():.1e}")


def receptive_field(layers):
    """[(name, k, dilation, stride)] -> [(name, receptive field px, stride)] by r += (k_eff−1)·j."""
    r, j, rows = 1, 1, []
    for name, k, dil, s in layers:
        r += (k + (k - 1) * (dil - 1) - 1) * j
        j *= s
        rows.append((name, r, j))
    return rows


def vgg(deeplab):
    layers = []
    for block, n in [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]:
        dil = 2 if deeplab and block == 5 else 1
        layers += [(f"conv{block}_{i}", 3, dil, 1) for i in range(1, n + 1)]
        if deeplab:
            layers.append((f"pool{block}", 3, 1, 2 if block <= 3 else 1))
        else:
            layers.append((f"pool{block}", 2, 1, 2))
    if deeplab:
        layers.append(("pool5a", 3, 1, 1))
    return layers + [("fc6", 3, 12, 1) if deeplab else ("fc6", 7, 1, 1)]


for title, rows in (("FCN (VGG-16)", receptive_field(vgg(False))), ("DeepLab-LargeFOV", receptive_field(vgg(True)))):
    print(f"{title:<17}" + ", ".join(f"{n} {r}px/s{j}" for n, r, j in rows if n.startswith(("pool", "fc"))))

# %% [markdown]
# DeepLab keeps stride 8 after pool3 (pool4, pool5 have stride 1) and compensates with dilation:
# conv5's taps, 16 px apart in VGG at stride 16, are 2 cells × 8 px apart (d = 2); fc6, VGG's 7×7
# at stride 32 (±3 cells = ±96 px), becomes 3×3 with d = 12 at stride 8 — `k_eff = 25` cells,
# taps at −96, 0, +96 px. That is why DeepLab initialises it from VGG's fc6 by keeping taps
# 0, 3, 6 of 7 (and every 4th of the 4096 filters, to 1024: "LargeFOV" is cheap).
#
# **DeepLab's alignment.** A 3×3 pool with padding 1 and stride 2 gives output `i` the rows
# `2i − 1, 2i, 2i + 1`: centred on `2i`, not `2i + 0.5`. After three such pools score `i` sits on
# input pixel `8i`, not `8i + 3.5`. A TF-SAME ×8 transposed convolution would put it at
# `8i + 3.5`: half a pixel off any crop. So DeepLab upsamples with bilinear interpolation that
# puts score `i` on pixel `8i` (Caffe's `Interp`; the depthwise transposed convolution with the
# odd 15-tap tent `upsample_filt(15)`, cropped by 7):

# %%
score = np.zeros((1, 4, 1, 1), np.float32)
score[0, 2, 0, 0] = 1.0
interp = ops.interp_forward(score, 8, (30, 1))[0][0, :, 0, 0]
print(f"interp ×8 of a delta at i=2: peak at row {int(interp.argmax())} (= 8·2), "
      f"rows 9..23 = {interp[9:24].round(3).tolist()}")

# %% [markdown]
# ## 3. What the cures buy: the same training for three networks
#
# `tinyseg.studies.cures` trains FCN-32s, FCN-8s and DeepLab-LargeFOV identically on the post's image
# (same initial backbone, iterations and Adam), predicts, refines with the post's CRF, and scores
# mean IoU and **trimap** IoU — only pixels within ±w of the ground truth's boundaries
# (`tinyseg.metrics.trimap_band`). Interiors are easy for every model; the band is where a
# stride-32 map loses. The labels of alternate 30-row strips train the networks and the other
# strips are scored: the post scores the labels it trained on, which measures memorisation
# (`data="chelsea-post"` runs that protocol).

# %%
result = run_study(args.out, data="chelsea", weights=args.weights, width=args.width,
                   iterations=args.iterations, progress=False, verbose=False)
print(format_table(result))
print(format_seed_table(result))
for name, scores in result["models"].items():
    print(f"{name}: mean trimap IoU at w=4 {scores['fcn']['trimap']['4']['mean_iou']:.3f} -> "
          f"with the CRF {scores['crf']['trimap']['4']['mean_iou']:.3f}")
print(f"wrote {args.out}/compare.png, trimap.png, compare.csv, compare.json")
show(os.path.join(args.out, "compare.png"))
show(os.path.join(args.out, "trimap.png"))

# %% [markdown]
# `compare.png` shows the image and each model's map (top), the ground truth and each map after
# the CRF (bottom); `trimap.png` plots trimap IoU against w, as DeepLab's Figure 5 does. The
# skips sharpen FCN's boundaries from the inside (pool3's features at stride 8); DeepLab gets
# stride 8 by dilation instead; and the CRF, which looks at the image's colours, sharpens all
# three — most where the network is coarsest. The table is the mean over seeds 0–3: from
# scratch on one image, a single run is mostly its initial weights (the second table shows every
# seed). In the post's protocol, where FCN-8s can fit its own training labels almost exactly,
# the CRF's gain for FCN-8s shrinks to nothing: it moves a near-exact boundary a pixel or two
# off the annotation as often as it fixes one.
#
# Two cautions before generalising. The cat's ground truth was made by a colour-following random
# walker (`tinyseg/assets/README.md`), so a CRF that follows colour edges is scored against an
# outline drawn by following colour edges. And the synthetic shapes (`data="shapes"`) paint every
# object in its own colours: their colour edges are their label edges, the CRF's best case.
# `data="camouflage"` is the opposite case, where colour edges are not label edges; the study
# page of the docs (`docs/studies/cures.md`) gives what the CRF does there.
