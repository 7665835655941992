# %% [markdown]
# # Image segmentation with FCN-32s and a fully connected CRF — the post, with tinyseg
#
# This file follows Daniil Pakhomov's post *"Image Segmentation with Tensorflow using CNNs and
# Conditional Random Fields"* (Dec 2016) cell by cell, with tinyseg calls where the post used
# TensorFlow r0.12 and TF-Slim. The story is the post's:
#
# 1. train an FCN-32s (VGG-16 turned fully convolutional, upsampled ×32) on **one** image for a
#    few iterations — small enough to run on a CPU;
# 2. predict on that same image and see that even there the segmentation is **coarse**, because
#    five max-pools leave one score per 32×32 block of pixels;
# 3. refine it with a **fully connected CRF** that looks at the RGB image, and compare with the
#    ground truth.
#
# The post used a PASCAL VOC cat (`cat.jpg` + `cat_annotation.png`). tinyseg ships nothing
# downloadable at run time, so we use scikit-image's `chelsea` cat and the annotation tinyseg
# bundles for it (`tinyseg/assets/README.md` says how it was made).
#
# Run it as a script (figures go to `--out`, nothing is shown) or cell by cell in an editor that
# understands `# %%` cells (VS Code, Spyder, Jupytext):
#
#     python examples/post_walkthrough.py --out walkthrough/                  # from scratch, CPU
#     python examples/post_walkthrough.py --weights vgg16.npz --out walkthrough/   # the post's setting
#
# Without `--weights` the network starts from random (He) weights at width 0.25 — a VGG-16 with
# a quarter of the channels, 1/16 of the compute — and trains 30 iterations (the post's 10 start
# from ImageNet weights; from scratch 10 are not enough to find the cat). With `--weights`
# (VGG-16 imported with `tinyseg import-weights`) it is the post's setting: full width, 10
# iterations.

# %%
import argparse
import os
import time
import warnings

import matplotlib

matplotlib.use("Agg")                   # write figures to files; no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinyseg  # noqa: E402
from tinyseg import ops  # noqa: E402
from tinyseg.data import binary_labels, chelsea, preprocess  # noqa: E402
from tinyseg.figures import show  # noqa: E402
from tinyseg.metrics import ConfusionMatrix  # noqa: E402
from tinyseg.models import FCN32s, FCN32sConfig  # noqa: E402
from tinyseg.training.optim import Adam, AdamConfig  # noqa: E402

parser = argparse.ArgumentParser(description="The post, cell by cell, with tinyseg.")
parser.add_argument("--width", type=float, default=None,
                    help="VGG channel multiplier (default 1.0 with --weights, else 0.25)")
parser.add_argument("--iterations", type=int, default=None,
                    help="training iterations (default 10 with --weights, as the post; else 30)")
parser.add_argument("--out", default="walkthrough_out", help="folder for the figures (created)")
parser.add_argument("--weights", default=None,
                    help="imported VGG-16 weights (.npz or Keras .h5), see weights/README.md")
# parse_known_args: inside Jupyter, sys.argv holds the kernel's own options.
args, _ = parser.parse_known_args()
width = args.width if args.width is not None else (1.0 if args.weights else 0.25)
iterations = args.iterations if args.iterations is not None else (10 if args.weights else 30)
os.makedirs(args.out, exist_ok=True)

fig_size = [15, 4]
plt.rcParams["figure.figsize"] = fig_size
# plt.show() is a no-op under Agg; the cells below keep it where the post has it.
warnings.filterwarnings("ignore", message=".*non-interactive.*")


def save_figure(name):
    """Where the post calls plt.show(): write the current figure to OUT/name and close it."""
    path = os.path.join(args.out, name)
    plt.gcf().savefig(path, dpi=80, bbox_inches="tight")
    plt.close("all")
    print(f"wrote {path}")
    show(path)


# %% [markdown]
# ## Upsampling helper functions
#
# The previous post built the ×32 upsampling as a *transposed convolution* whose weights make it
# exactly bilinear interpolation, and checked it against scikit-image. The post repeats the three
# helpers; tinyseg has them under the same names:
#
# * `get_kernel_size(factor) = 2·factor − factor mod 2` — 64 for ×32;
# * `upsample_filt(size)` — the 2-D bilinear "tent" kernel;
# * `bilinear_upsample_weights(factor, number_of_classes)` — that tent on the diagonal of a
#   `(k, k, C, C)` filter, so each class channel is upsampled on its own.
#
# tinyseg's `upsample(x, factor)` runs that transposed convolution (per channel, since the filter
# is diagonal). As in the previous post, it should equal `skimage.transform.rescale` with
# bilinear interpolation (`order=1`) and zeros outside the image.

# %%
upsample_factor = 32
number_of_classes = 2

print("get_kernel_size(32) =", tinyseg.get_kernel_size(upsample_factor))
print("upsample_filt(4) =\n", tinyseg.upsample_filt(4))
upsample_filter_np = tinyseg.bilinear_upsample_weights(upsample_factor, number_of_classes)
print("bilinear_upsample_weights(32, 2):", upsample_filter_np.shape, upsample_filter_np.dtype)

from skimage.transform import rescale  # noqa: E402

coarse = np.random.default_rng(0).standard_normal((1, 3, 5, number_of_classes)).astype(np.float32)
ours = tinyseg.upsample(coarse, upsample_factor)[0]                   # (1, 3, 5, 2) -> (96, 160, 2)
theirs = rescale(coarse[0].astype(np.float64), upsample_factor, order=1, mode="constant", cval=0,
                 clip=False, anti_aliasing=False, channel_axis=-1)
print(f"upsample vs skimage rescale: shapes {ours.shape} {theirs.shape}, "
      f"max |difference| = {np.abs(ours - theirs).max():.2e}")

f, (ax1, ax2, ax3) = plt.subplots(1, 3)
ax1.imshow(tinyseg.upsample_filt(tinyseg.get_kernel_size(upsample_factor)))
ax1.set_title("upsample_filt(64): the bilinear kernel")
ax2.imshow(ours[:, :, 0])
ax2.set_title("tinyseg.upsample ×32")
ax3.imshow(theirs[:, :, 0])
ax3.set_title("skimage rescale ×32, order=1")
save_figure("upsampling_check.png")

# %% [markdown]
# ## Image and annotation loading
#
# The post reads a JPEG and a PNG annotation and turns the annotation into two 0/1 masks: the
# object is where the annotation equals 1, the background everywhere else ("sometimes the
# ground-truth masks have values other than 1 and 0"), stacked into a one-hot target for the
# cross-entropy.
#
# tinyseg keeps labels as class *indices* rather than one-hot columns: `binary_labels` gives
# **1 = object, 0 = background** (the post's one-hot put the object in column 0 — the order does
# not change what is learned, but it flips the meaning of `argmax`, which matters for the
# figures below). It also keeps PASCAL VOC's value 255, the thin "unsure" band along the outline,
# as 255 = *ignored* by the loss and the metrics; `binary_labels(..., keep_ignore=False)` is the
# post's exact mapping.

# %%
image, annotation = chelsea()                       # (300, 451, 3) uint8 RGB, (300, 451) uint8
labels = binary_labels(annotation)                  # int32: 1 = cat, 0 = background, 255 = ignored
train_image = image
train_annotation = np.uint8(annotation == 1)        # the post's object mask, for display
print(f"image {image.shape} {image.dtype}; annotation values {np.unique(annotation).tolist()}; "
      f"cat {np.mean(labels == 1):.1%}, background {np.mean(labels == 0):.1%}, "
      f"ignored {np.mean(labels == 255):.1%} of the pixels")

f, (ax1, ax2) = plt.subplots(1, 2, sharey=True)
ax1.imshow(image)
ax1.set_title("Image (skimage.data.chelsea)")
ax2.imshow(np.where(labels == 255, 0.5, labels), cmap="gray")
ax2.set_title("Labels: cat white, background black, ignored grey")
save_figure("image_and_annotation.png")

# %% [markdown]
# ## The model: FCN-32s on VGG-16
#
# The post feeds the image, minus VGG's per-channel RGB means, to TF-Slim's `vgg_16` with two
# output classes and `fc_conv_padding='SAME'`: VGG's fully connected layers recast as
# convolutions (fc6 a 7×7 conv, fc7 and fc8 1×1), so the network takes any image size and gives
# a coarse score map, 1/32 of the input. It then upsamples that map ×32 with the fixed bilinear
# transposed convolution from above. It initialises everything but fc8 from the ImageNet VGG-16
# checkpoint; fc8 must be new because it now predicts 2 classes, not 1000.
#
# In tinyseg `FCN32s` is that whole network as an explicit list of layers, each with its
# `forward` and `backward`. Its pooling is SAME (ceil), so a 300×451 image gives a ⌈300/32⌉ ×
# ⌈451/32⌉ = 10×15 score map, upsampled to 320×480 and cropped back to 300×451, pixel-aligned
# (see `tinyseg/models/fcn32s.py`). `width` scales the number of channels.

# %%
params = None
if args.weights:
    from tinyseg.weights import load_params

    # Everything but fc8, as the post's get_variables_to_restore(exclude=['vgg_16/fc8', ...]).
    params = {k: v for k, v in load_params(args.weights).items() if not k.startswith("fc8.")}
model = FCN32s(FCN32sConfig(n_classes=number_of_classes, width=width, seed=0), params=params)
processed_images = preprocess(image)[None]          # (1, 300, 451, 3) float32, RGB minus the means
print(f"FCN-32s, width {width}: {model.n_params() / 1e6:.1f} M parameters, "
      f"{'conv1_1…fc7 from ' + args.weights + ', fc8 new' if args.weights else 'from scratch (He initialisation)'}")
print(f"input {processed_images.shape} -> scores "
      f"{(1, -(-image.shape[0] // 32), -(-image.shape[1] // 32), number_of_classes)} -> "
      f"upsampled and cropped logits (1, {image.shape[0]}, {image.shape[1]}, {number_of_classes})")

# %% [markdown]
# ## Loss and training with Adam
#
# As in the FCN paper, the loss is the pixel-wise cross-entropy, **summed** over the image:
#
# $$E = - \sum_{n=1}^N \sum_{k=1}^K t_{nk} \ln(y_{nk})$$
#
# with $N$ pixels, $K$ classes, $t_{nk}$ the one-hot ground truth and $y_{nk}$ the softmax of the
# upsampled logits. The post minimises it with Adam (learning rate 1e-4), which needs little
# tuning.
#
# TensorFlow derives the gradients from the graph; tinyseg has no autograd, so one iteration
# spells it out: `forward` (with dropout), `softmax_cross_entropy` returns the loss *and*
# ∂E/∂logits, `backward` fills `model.grads` layer by layer, and `Adam.step` updates the
# parameters in place. (`tinyseg.training.trainer.Trainer` does the same with checkpoints, a CSV log and,
# like the post, TensorBoard histograms of the gradients.)
#
# As the post says, training and testing on one image is not a real setting; it shows the model's
# limit: if the segmentation is coarse even here, it will be on unseen images too.

# %%
optimizer = Adam(AdamConfig(lr=0.0001))
losses = []
t0 = time.perf_counter()
for i in range(iterations):
    logits = model.forward(processed_images, train=True, step=i)               # (1, H, W, 2)
    cross_entropy_sum, dlogits = ops.softmax_cross_entropy(logits, labels[None], reduction="sum")
    model.backward(dlogits)                                                     # fills model.grads
    optimizer.step(model.params, model.grads)
    model.clear()                                                               # free activations
    losses.append(cross_entropy_sum)
    print("Current Loss: " + str(cross_entropy_sum))
print(f"{iterations} iterations in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## Prediction on the training image
#
# Now the network runs in test mode (no dropout) on the same image: `argmax` over the classes
# gives the segmentation and the softmax gives each pixel's probability of the object. The post
# plots both, then prints the final loss.

# %%
logits = model.forward(processed_images, train=False)
final_loss, _ = ops.softmax_cross_entropy(logits, labels[None], reduction="sum")
final_probabilities = ops.softmax(logits)           # (1, H, W, 2)
final_predictions = np.argmax(final_probabilities, axis=3)                     # (1, H, W)
model.clear()

cmap = plt.get_cmap("bwr")

f, (ax1, ax2) = plt.subplots(1, 2, sharey=True)

# The post shows `final_predictions != 1` because its object was class 0; here the object is 1.
ax1.imshow(np.uint8(final_predictions.squeeze() == 1),
           vmax=1.5,
           vmin=-0.4,
           cmap=cmap)

ax1.set_title("Final Argmax")

probability_graph = ax2.imshow(final_probabilities.squeeze()[:, :, 1])   # the post: [:, :, 0]
ax2.set_title("Final Probability of the Class")
plt.colorbar(probability_graph)

plt.show()
save_figure("final_argmax_and_probability.png")

print("Final Loss: " + str(final_loss))

plt.plot(np.arange(1, iterations + 1), losses, "o-", label="training (dropout on)")
plt.axhline(final_loss, color="k", ls="--", label="test mode (dropout off)")
plt.xlabel("iteration")
plt.ylabel("summed cross-entropy")
plt.legend()
save_figure("loss.png")

# %% [markdown]
# The result is coarse — on the very image it was trained on. One score per 32×32 block can
# only draw blobs; the post names two ways out: skip connections that also predict from earlier,
# finer layers (FCN-16s, FCN-8s, Long et al.), or atrous convolutions plus a fully connected CRF
# (Chen et al.). It uses only the CRF post-processing.
#
# About the final loss: fc6 and fc7 are trained with **dropout** (0.5) — each step trains a
# random thinned network, and test mode uses the full network with averaged weights (tinyseg's
# dropout is "inverted": it scales by 2 during training, so nothing changes at test time). That
# averaging is why the post's final test-mode loss is well below the last training loss.
#
# Training on a whole dataset only changes which image each iteration sees — with batch size 1
# this is the FCN paper's setting (`tinyseg train` does it for a PASCAL VOC folder).

# %% [markdown]
# ## Conditional Random Field post-processing
#
# A CRF here estimates the posterior labelling from two things: the network's probabilities and
# the raw RGB image. Its energy has two pairwise terms over *all* pairs of pixels (hence "fully
# connected", Krähenbühl & Koltun):
#
# * a **Gaussian** on pixel positions (`sdims=(10, 10)`, `compat=3`): nearby pixels should agree,
#   which removes small isolated islands;
# * a **bilateral** term on positions *and* colours (`sdims=(50, 50)`, `schan=(20, 20, 20)`,
#   `compat=10`): nearby pixels of similar colour should agree — so a strong colour edge is where
#   a label boundary is likely. Its effect resembles a bilateral filter.
#
# Mean-field inference (5 iterations) gives per-pixel label probabilities `Q`.
#
# The post ran pydensecrf. tinyseg's `tinyseg.crf.compat` speaks pydensecrf's API, so the post's
# cell below is unchanged except for its two import lines. (It expects `processed_probabilities`
# with the classes first, made in the post's missing cell; its line `softmax = ...transpose(...)`
# is left as it was — its result is unused.)

# %%
processed_probabilities = final_probabilities.squeeze().transpose((2, 0, 1))     # (2, H, W)

# %%
import sys

path = "/home/dpakhom1/dense_crf_python/"
sys.path.append(path)

import tinyseg.crf.compat as dcrf

from tinyseg.crf.compat.utils import compute_unary, create_pairwise_bilateral, \
    create_pairwise_gaussian, softmax_to_unary

import skimage.io as io

image = train_image

softmax = final_probabilities.squeeze()

softmax = processed_probabilities.transpose((2, 0, 1))

# The input should be the negative of the logarithm of probability values
# Look up the definition of the softmax_to_unary for more information
unary = softmax_to_unary(processed_probabilities)

# The inputs should be C-continuous -- we are using Cython wrapper
unary = np.ascontiguousarray(unary)

d = dcrf.DenseCRF(image.shape[0] * image.shape[1], 2)

d.setUnaryEnergy(unary)

# This potential penalizes small pieces of segmentation that are
# spatially isolated -- enforces more spatially consistent segmentations
feats = create_pairwise_gaussian(sdims=(10, 10), shape=image.shape[:2])

d.addPairwiseEnergy(feats, compat=3,
                    kernel=dcrf.DIAG_KERNEL,
                    normalization=dcrf.NORMALIZE_SYMMETRIC)

# This creates the color-dependent features --
# because the segmentation that we get from CNN are too coarse
# and we can use local color features to refine them
feats = create_pairwise_bilateral(sdims=(50, 50), schan=(20, 20, 20),
                                  img=image, chdim=2)

d.addPairwiseEnergy(feats, compat=10,
                    kernel=dcrf.DIAG_KERNEL,
                    normalization=dcrf.NORMALIZE_SYMMETRIC)
Q = d.inference(5)

res = np.argmax(Q, axis=0).reshape((image.shape[0], image.shape[1]))

cmap = plt.get_cmap('bwr')

f, (ax1, ax2) = plt.subplots(1, 2, sharey=True)
ax1.imshow(res, vmax=1.5, vmin=-0.4, cmap=cmap)
ax1.set_title('Segmentation with CRF post-processing')
probability_graph = ax2.imshow(np.dstack((train_annotation,)*3)*100)
ax2.set_title('Ground-Truth Annotation')
plt.show()

# %%
save_figure("crf_vs_ground_truth.png")

# %% [markdown]
# ## How much did the CRF help?
#
# The post judges by eye; here we also count. Intersection over union (IoU) of the cat, and the
# mean over both classes, from a confusion matrix of all counted pixels (the ignored outline band
# left out, as in the loss).

# %%
scores = {}
for name, prediction in (("FCN-32s", final_predictions[0]), ("FCN-32s + CRF", res)):
    cm = ConfusionMatrix(number_of_classes)
    cm.update(prediction, labels)
    scores[name] = cm
    print(f"{name:14s} cat IoU {cm.per_class_iou()[1]:.3f}, mean IoU {cm.mean_iou():.3f}, "
          f"pixel accuracy {cm.pixel_accuracy():.3f}")

f, axes = plt.subplots(1, 3, sharey=True)
for ax, (title, lab) in zip(axes, [("FCN-32s", final_predictions[0]), ("FCN-32s + CRF", res),
                                   ("Ground truth", labels)]):
    ax.imshow(image)
    ax.contour(lab == 1, levels=[0.5], colors="r", linewidths=1.5)
    iou = f", cat IoU {scores[title].per_class_iou()[1]:.3f}" if title in scores else ""
    ax.set_title(title + iou)
save_figure("before_after_crf.png")

# %% [markdown]
# ## Conclusion
#
# FCN-32s segments coarsely because of VGG-16's five max-pools: its scores live on a grid 32
# times coarser than the image. We trained it in the simplest setting — pixel-wise cross-entropy,
# backpropagation, Adam — and improved the coarse result with a fully connected CRF that uses
# the image's colours to move label boundaries onto edges.
