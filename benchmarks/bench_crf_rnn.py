"""CRF-as-RNN: forward and backward at 375×500 (2 and 21 labels), and a training step with it.

* **backward vs forward** (``crf_rnn.backward.*``): one image's recurrence at the post's kernel
  parameters, T = 5, chelsea resized to 375×500, FCN-like coarse logits; ``tinyseg_s`` is the
  backward pass (gradients of the logits, the kernel weights and the compatibility), ``peer_s``
  the training-mode forward of the same T iterations (which keeps the messages), ``ratio`` their
  quotient (the target: at most 2). Neither includes the filters' set-up (shown as
  ``setup_s``). Both run with a warm workspace, as in training after the first step.
* **forward vs pydensecrf** (``crf_rnn.forward+setup.*``): the layer's test-mode forward (set-up
  + T = 5 iterations, Potts initialisation, i.e. the post's dense CRF) against pydensecrf's
  set-up + ``inference(5)``; skipped when pydensecrf is not installed.
* **training step** (``train_step.*``): FCN-8s + CRF-as-RNN (forward, loss, backward of both,
  Adam on both) against FCN-8s alone, at ``--size`` and ``--width`` (FCN-32s when
  ``tinyseg.models`` is missing; the record says which).

Everything is timed round-robin (one warm-up round, then ``--repeat`` rounds; medians), so a
shared machine's load falls on both sides alike.

Usage: ``python benchmarks/bench_crf_rnn.py [--json PATH] [--repeat 5] [--quick]
[--width 1.0] [--size 375x500] [--classes 21] [--skip-train]``
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import alternating_medians, coarse_object_map, print_table, record, write_json  # noqa: E402


def post_image() -> np.ndarray:
    """scikit-image's chelsea resized to the post's 375×500, uint8."""
    from skimage import data, transform

    img = transform.resize(data.chelsea(), (375, 500), anti_aliasing=True)
    return np.ascontiguousarray((img * 255).round().astype(np.uint8))


def coarse_logits(image: np.ndarray, n_labels: int, seed: int = 0) -> np.ndarray:
    """FCN-32s-like logits (H, W, C) float32: an Otsu mask averaged over 32×32 blocks and
    upsampled bilinearly for labels 0/1, smooth random logits for the others."""
    from skimage import transform

    h, w = image.shape[:2]
    m, hb, wb = coarse_object_map(image)
    logits = [np.zeros((h, w)), 4.0 * (m - 0.5)]
    rng = np.random.default_rng(seed)
    for _ in range(n_labels - 2):
        logits.append(transform.resize(rng.normal(0, 1, (hb, wb)), (h, w), order=1) - 1.0)
    return np.stack(logits, axis=-1).astype(np.float32)


def pydensecrf_run(image, logits, iterations=5):
    """The post's CRF (:data:`tinyseg.crf.refine.POST_CRF`) in pydensecrf (set-up + inference), or
    None when pydensecrf is not installed."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        return None
    from tinyseg.crf.refine import POST_CRF

    h, w, c = logits.shape
    z = logits - logits.max(-1, keepdims=True)
    unary = np.ascontiguousarray((np.log(np.exp(z).sum(-1, keepdims=True)) - z)
                                 .transpose(2, 0, 1).reshape(c, -1), dtype=np.float32)

    def run():
        d = dcrf.DenseCRF2D(w, h, c)
        d.setUnaryEnergy(unary)
        d.addPairwiseGaussian(sxy=POST_CRF["gaussian_sdims"], compat=POST_CRF["gaussian_compat"])
        d.addPairwiseBilateral(sxy=POST_CRF["sdims"], srgb=POST_CRF["schan"], rgbim=image,
                               compat=POST_CRF["compat"])
        return d.inference(iterations)
    return run


def bench_recurrence(repeat: int, labels=(2, 21)) -> list[dict]:
    from tinyseg.crf import CRFasRNN
    from tinyseg.crf.rnn.engine import MeanFieldRNN

    image = post_image()
    h, w = image.shape[:2]
    records = []
    for c in labels:
        logits = coarse_logits(image, c)
        z = np.ascontiguousarray(logits.reshape(h * w, c))
        crf = CRFasRNN(c)
        MeanFieldRNN(crf.filters(image))                     # untimed: first calls load kernels
        t0 = time.perf_counter()
        engine = MeanFieldRNN(crf.filters(image), workspace={})
        setup = time.perf_counter() - t0
        weights, compat = crf._device_params()
        dout = np.random.default_rng(0).standard_normal(z.shape).astype(np.float32)
        dout -= dout.mean(axis=1, keepdims=True)            # a loss of Q: rows sum to zero
        state = {}

        def forward():
            state["cache"] = engine.forward(z, weights, compat, 5, keep=True)[1]

        def backward():
            engine.backward(dout, state["cache"], weights, compat)

        # alternate forward and its backward (the dict's order), medians of each
        wall, cpu = alternating_medians({"forward": forward, "backward": backward}, repeat)
        kept_mb = 5 * 2 * h * w * c * 4 / 2**20
        records.append(record(f"crf_rnn.backward.T5.375x500.C{c}", wall["backward"],
                              peer="forward (same T)", peer_s=wall["forward"],
                              cpu_ratio=cpu["backward"] / cpu["forward"], setup_s=setup,
                              kept_mb=round(kept_mb, 1)))
        peer = pydensecrf_run(image, logits)
        if peer is not None:
            fns = {"tinyseg": lambda: crf.forward(logits[None], image[None], iterations=5),
                   "peer": peer}
            wall, cpu = alternating_medians(fns, repeat)
            records.append(record(f"crf_rnn.forward+setup.T5.375x500.C{c}", wall["tinyseg"],
                                  peer="pydensecrf", peer_s=wall["peer"],
                                  cpu_ratio=cpu["tinyseg"] / cpu["peer"]))
    return records


def _models(name: str, n_classes: int, width: float):
    """(model, which) -- FCN-8s from tinyseg.models if present, else FCN-32s."""
    try:
        from tinyseg.models import build_model
        return build_model(name, n_classes, width=width, seed=0), name
    except ImportError:
        from tinyseg.models import FCN32s, FCN32sConfig
        return FCN32s(FCN32sConfig(n_classes=n_classes, width=width, seed=0)), "fcn32s"


def bench_train_step(repeat: int, width: float, size, n_classes: int) -> list[dict]:
    from tinyseg import ops
    from tinyseg.crf import CRFasRNN
    from tinyseg.data import preprocess
    from tinyseg.training.optim import Adam, AdamConfig

    image = post_image()
    if tuple(size) != image.shape[:2]:
        from skimage import transform
        image = (transform.resize(image, size, anti_aliasing=True) * 255).round().astype(np.uint8)
    h, w = image.shape[:2]
    labels = (np.arange(h)[:, None] * n_classes // h + np.zeros(w, int)[None]).astype(np.int32)[None]
    x = preprocess(image)[None]
    model_alone, which = _models("fcn8s", n_classes, width)
    model_joint, _ = _models("fcn8s", n_classes, width)
    crf = CRFasRNN(n_classes)
    opt_alone, opt_joint, opt_crf = Adam(AdamConfig()), Adam(AdamConfig()), Adam(AdamConfig(lr=1e-2))

    def alone():
        logits = model_alone.forward(x, train=True)
        _, d = ops.softmax_cross_entropy(logits, labels)
        model_alone.backward(d)
        opt_alone.step(model_alone.params, model_alone.grads)
        model_alone.clear()

    def joint():
        logits = model_joint.forward(x, train=True)
        out = crf.forward(logits, image[None], train=True)
        _, d = ops.softmax_cross_entropy(out, labels)
        model_joint.backward(crf.backward(d))
        opt_crf.step(crf.params, crf.grads)
        opt_joint.step(model_joint.params, model_joint.grads)
        model_joint.clear()
        crf.clear()

    wall, cpu = alternating_medians({"joint": joint, "alone": alone}, repeat)
    return [record(f"train_step.{which}+crf_rnn.{h}x{w}.C{n_classes}.width{width:g}", wall["joint"],
                   peer=f"{which} alone", peer_s=wall["alone"],
                   cpu_ratio=cpu["joint"] / cpu["alone"])]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the records to this JSON file")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (medians)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, training step at width 0.25")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier of FCN-8s")
    parser.add_argument("--size", default="375x500", help="HxW of the training-step image")
    parser.add_argument("--classes", type=int, default=21, help="classes of the training step")
    parser.add_argument("--skip-train", action="store_true", help="only the recurrence")
    args = parser.parse_args(argv)
    repeat = 2 if args.quick else args.repeat
    width = 0.25 if args.quick else args.width
    size = tuple(int(s) for s in args.size.lower().split("x"))
    records = bench_recurrence(repeat)
    if not args.skip_train:
        records += bench_train_step(repeat, width, size, args.classes)
    print_table(records, ["name", "tinyseg_s", "peer", "peer_s", "ratio", "cpu_ratio", "setup_s",
                          "kept_mb"])
    write_json(args.json, records)


if __name__ == "__main__":
    main()
