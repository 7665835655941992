"""The CRF-as-RNN study: train a network with the CRF on top, compare with the post-hoc CRF, and
look at what the CRF learned.

* :func:`train_segmenter` -- a plain loop (Adam, mean cross-entropy, fixed batches), with or
  without a :class:`~tinyseg.crf.CRFasRNN` on top from a given iteration on;
* :func:`evaluate` -- held-out mean IoU of the network's argmax, of the post-hoc dense CRF
  (:func:`~tinyseg.crf.dense_crf`, the post's parameters) and of the CRF-as-RNN;
* :func:`compare` -- Zheng et al.'s comparison (their Table 1): the same network, from the same
  initialisation and the same batches, trained alone and then refined by the post-hoc CRF, or
  trained end to end with CRF-as-RNN, for the same number of iterations. As in the paper the
  CRF joins after a pre-training of the network alone (``pretrain`` iterations, shared by both
  runs; 0 trains end to end from scratch);
* :func:`plot_crf_parameters` -- the learned compatibility matrix and kernel weights beside the
  hand-picked ones (Potts, 3 and 10).

Models are anything with tinyseg's model interface: ``forward(x, train)``, ``backward(dlogits)``,
``params``, ``grads``, ``clear()``; :class:`~tinyseg.models.small.SmallFCN` is one that trains in
seconds.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from .. import ops
from ..data import preprocess
from ..metrics import ConfusionMatrix
from ..ops import copy_into
from ..training.optim import Adam, AdamConfig
from ..crf.refine import dense_crf
from ..models.small import SmallFCN

__all__ = ["train_segmenter", "evaluate", "compare", "plot_crf_parameters"]


def _batch(samples, t: int, batch: int):
    """Batch ``t``: samples ``t*batch .. t*batch+batch-1`` (cyclically), stacked."""
    picks = [samples[(t * batch + j) % len(samples)] for j in range(batch)]
    images = np.stack([np.asarray(img, np.uint8) for img, _ in picks])      # (B, H, W, 3)
    labels = np.stack([np.asarray(lab, np.int32) for _, lab in picks])      # (B, H, W)
    return images, labels


def train_segmenter(model, samples, *, iterations: int, batch: int = 1, lr: float = 3e-3,
                    crf=None, crf_lr: float = 0.1, crf_from: int = 0, start: int = 0,
                    optimizers=None, freeze_model: bool = False, aux_weight: float = 0.0):
    """Train ``model`` (and ``crf`` on top of it from iteration ``crf_from`` on).

    One iteration: ``logits = model(x)``; with the CRF, ``out = crf(logits, images)``; mean
    softmax cross-entropy of ``out`` (else of ``logits``), plus ``aux_weight`` times that of
    ``logits`` when the CRF is on (deep supervision: ``L = CE(out) + lambda CE(logits)``, so the
    network's own logits keep a direct target); backward through both; Adam steps on
    the model (``lr``) and the CRF (``crf_lr``: its parameters are O(1)-O(10) numbers, the
    network's O(0.01), hence a rate of their own, as Caffe's ``lr_mult`` gave CRF-RNN).

    Parameters
    ----------
    samples : sequence of (image uint8 (H, W, 3), labels int (H, W)), all of one size.
    iterations : iterations to run, numbered ``start .. start + iterations - 1`` (the batches
        follow the numbers, so two runs that share a prefix see the same data).
    optimizers : ``(model optimizer, crf optimizer)`` to continue with (default: fresh Adams).
    freeze_model : train the CRF alone (the network's parameters and optimizer stay as they are).
    aux_weight : lambda of the auxiliary loss on the network's logits (with the CRF only).

    Returns
    -------
    losses : list of float (the whole objective ``L``); optimizers : the pair, to continue.
    """
    opt, crf_opt = optimizers or (Adam(AdamConfig(lr=lr)), Adam(AdamConfig(lr=crf_lr)))
    losses = []
    for t in range(start, start + int(iterations)):
        images, labels = _batch(samples, t, batch)
        logits = model.forward(preprocess(images), train=True, step=t)
        with_crf = crf is not None and t >= crf_from
        out = crf.forward(logits, images, train=True) if with_crf else logits
        loss, dout = ops.softmax_cross_entropy(out, labels, reduction="mean")
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at iteration {t}")
        if with_crf:
            dout = crf.backward(dout)
            crf_opt.step(crf.params, crf.grads)
            crf.clear()
            if aux_weight:
                aux, daux = ops.softmax_cross_entropy(logits, labels, reduction="mean")
                loss += aux_weight * aux
                dout += np.float32(aux_weight) * daux
        if not freeze_model:
            model.backward(dout)
            opt.step(model.params, model.grads)
        model.clear()
        losses.append(float(loss))
    return losses, (opt, crf_opt)


def evaluate(model, samples, n_classes: int, *, crf=None, posthoc: bool = True,
             crf_iterations=(None,)) -> dict:
    """Held-out mean IoU: ``network`` (argmax), ``posthoc_crf`` (dense_crf at the post's
    parameters on the network's softmax, 5 iterations) and, with ``crf``, ``crf_rnn`` at each
    count of ``crf_iterations`` (None: the layer's test count; keys ``crf_rnn`` / ``crf_rnn_T``)."""
    meters = {"network": ConfusionMatrix(n_classes)}
    if posthoc:
        meters["posthoc_crf"] = ConfusionMatrix(n_classes)
    for img, lab in samples:
        logits = model.forward(preprocess(img)[None], train=False)                # (1, H, W, C)
        z = np.asarray(logits[0], np.float64)
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p = (p / p.sum(axis=-1, keepdims=True)).astype(np.float32)
        meters["network"].update(p.argmax(axis=-1), lab)
        if posthoc:
            meters["posthoc_crf"].update(dense_crf(img, p)[0], lab)
        if crf is not None:
            for t in crf_iterations:
                key = "crf_rnn" if t is None else f"crf_rnn_{t}"
                meters.setdefault(key, ConfusionMatrix(n_classes))
                meters[key].update(crf.predict(logits, img[None], iterations=t)[0][0], lab)
    return {k: m.mean_iou() for k, m in meters.items()}


def compare(make_model, make_crf, train_samples, test_samples, n_classes: int, *,
            iterations: int, pretrain: int = 0, batch: int = 1, lr: float = 3e-3,
            crf_lr: float = 0.1, crf_iterations=(None,), finetune_lr: float | None = 3e-4,
            crf_warmup: int = 50, aux_weight: float = 3.0) -> dict:
    """The network alone + post-hoc CRF versus network + CRF-as-RNN, same iterations.

    Both runs start from ``make_model()`` (deterministic), see the same batches and run
    ``iterations`` in total; the first ``pretrain`` of them train the network alone and are
    shared. ``finetune_lr``: the network's Adam rate after ``pretrain`` in *both* runs (None:
    ``lr`` throughout); ``crf_warmup``: of the joint run's remaining iterations, the first
    ``crf_warmup`` train the CRF alone, the network frozen; ``aux_weight``: the joint run's loss
    is ``CE(CRF output) + aux_weight CE(network logits)`` once the network trains (deep
    supervision; the network-alone run's loss is CE(logits) as ever).

    Why the defaults (3e-4, 50, 3; Zheng et al. had none of them: their CRF joined FCN-8s at
    the hand-picked parameters with plain SGD): a CRF at the post's parameters first raises the
    loss (0.13 -> 0.53 on seed 2's first joint batch; its 50-pixel bilateral kernel spans a
    64x96 image) and its gradient into the logits is concentrated (seed 0: 91% of the squared
    norm on 1% of the pixels) and nearly orthogonal to the network's own (cosine 0.2); the
    network, chasing it at Adam's rate, is wrecked. Measured, 4 classes at 64x96, seeds 0/1/2
    (``benchmarks/study_crf_rnn.py``): with none of the three CRF-as-RNN reached 0.59/0.38/0.34
    against the post-hoc CRF's 0.90/0.76/0.95; a lower rate and warm-up, without the auxiliary
    loss, 0.78/0.72/0.86 against 0.86/0.85/0.94; scaling the gradient into the network down to
    the network's own norm, a rate ramp, or the CRF's weights started at a tenth each failed on
    at least one seed. With all three defaults: 0.93/0.94/0.935 against 0.86/0.85/0.94, and
    0.95 against 0.88 on seed 3 (not used to choose them): +0.057 on average, not on every
    seed, and not on smaller data (see README).

    Returns ``{"alone": evaluate(...), "joint": evaluate(...), "crf": joint CRF,
    "seconds": {...}}``.
    """
    t0 = time.perf_counter()
    model = make_model()
    _, opts = train_segmenter(model, train_samples, iterations=pretrain, batch=batch, lr=lr)
    shared = time.perf_counter() - t0
    joint_model, joint_opts = make_model(), copy.deepcopy(opts)
    for name, value in joint_model.params.items():             # the pre-trained network, twice
        copy_into(value, model.params[name])
    rest = int(iterations) - int(pretrain)
    if finetune_lr is not None:
        opts[0].config.lr = joint_opts[0].config.lr = float(finetune_lr)
    t0 = time.perf_counter()
    train_segmenter(model, train_samples, iterations=rest, batch=batch, start=pretrain,
                    optimizers=opts)
    alone_s = time.perf_counter() - t0
    crf = make_crf()
    joint_opts = (joint_opts[0], Adam(AdamConfig(lr=crf_lr)))
    t0 = time.perf_counter()
    warm = min(int(crf_warmup), rest)
    train_segmenter(joint_model, train_samples, iterations=warm, batch=batch, start=pretrain,
                    crf=crf, optimizers=joint_opts, freeze_model=True)
    train_segmenter(joint_model, train_samples, iterations=rest - warm, batch=batch,
                    start=pretrain + warm, crf=crf, optimizers=joint_opts, aux_weight=aux_weight)
    joint_s = time.perf_counter() - t0
    return {"alone": evaluate(model, test_samples, n_classes),
            "joint": evaluate(joint_model, test_samples, n_classes, crf=crf,
                              crf_iterations=crf_iterations),
            "crf": crf, "seconds": {"pretrain": shared, "alone": alone_s, "joint": joint_s}}


def plot_crf_parameters(crf, path: str, *, class_names=None, title: str | None = None) -> str:
    """Figure: the learned compatibility beside Potts, the learned kernel weights beside 3 and 10.

    Left to right: the hand-picked compatibility (Potts ``1 - I``), the learned one (each column
    shifted so that its diagonal entry is 0: only differences within a column matter), and one
    bar chart per kernel of the learned weight of each label with the hand-picked value dashed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = crf.host_params()
    c = crf.config.n_labels
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    mu = params["compat"].astype(np.float64)
    shown = mu - np.diag(mu)[None, :]                          # column l' shifted: mu[l', l'] = 0
    potts = 1.0 - np.eye(c)
    lim = max(1.0, float(np.abs(shown).max()))
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.8), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1.1, 1.1]})
    for ax, m, label, first in ((axes[0], potts, "hand-picked: Potts 1 - I", True),
                                (axes[1], shown, "learned compatibility mu", False)):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(label)
        ax.set_xticks(range(c), names, rotation=45, ha="right")
        ax.set_yticks(range(c), names if first else [])
        ax.set_xlabel("neighbour's label l'")
        if first:
            ax.set_ylabel("label l")
        if c <= 8:
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=axes[1], shrink=0.8, label="cost of l next to l'")
    for ax, kernel, start in ((axes[2], "spatial", crf.config.w_spatial),
                              (axes[3], "bilateral", crf.config.w_bilateral)):
        w = np.broadcast_to(params["w_" + kernel], (c,))
        ax.bar(range(c), w, color="tab:blue", label="learned")
        ax.axhline(start, color="k", linestyle="--", label=f"hand-picked {start:g}")
        ax.set_xticks(range(c), names, rotation=45, ha="right")
        ax.set_title(f"{kernel} kernel weight per label")
        ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
