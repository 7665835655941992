"""CRF-as-RNN vs the post-hoc CRF on synthetic data, at a larger scale than the test, over seeds.

For each seed: a synthetic dataset (textured shapes with exact labels, ``tinyseg.data.synthetic``),
the same network trained twice from the same initialisation and batches for ``--iterations``
(the first ``--pretrain`` of them shared, network alone; then the network's rate drops to
``--finetune-lr`` in both runs): (a) alone, then refined after training
by the dense CRF at the post's parameters (Potts, weights 3 and 10, 5 iterations); (b) with
CRF-as-RNN on top (initialised to those parameters, trained with T = 5; its first
``--crf-warmup`` iterations train the CRF alone, then both learn from CE(CRF output) +
``--aux-weight`` CE(network logits)). Held-out mean IoU of the
network's argmax, of (a), and of (b) at 5 and at 10 mean-field iterations. Writes a JSON list of
records (``name``, ``tinyseg_s`` = the joint run's training seconds, ``peer_s`` = the network-alone
run's, ``ratio``, and the mIoUs) and the learned parameters' figure of the first seed.

The network: ``--model small`` (:class:`tinyseg.models.small.SmallFCN`, stride 8, trains in
minutes on a CPU) or any name of ``tinyseg.models`` (``fcn8s`` …) at ``--width``.

Usage: ``python benchmarks/study_crf_rnn.py [--json PATH] [--figure PNG] [--seeds 0 1 2]
[--size 64x96] [--classes 4] [--iterations 400] [--pretrain 200] [--model small]
[--finetune-lr 3e-4] [--crf-warmup 50] [--aux-weight 3]`` (the last three are the defaults of
``rnn_study.compare``: without them the joint run collapses here; see its docstring).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import print_table, record, write_json  # noqa: E402


def make_model_factory(name: str, n_classes: int, width: float, seed: int):
    from tinyseg.models.small import SmallFCN

    if name == "small":
        return lambda: SmallFCN(n_classes, int(round(16 * width)), 3, seed)
    from tinyseg.models import build_model      # the models package (FCN-8s, ...)
    return lambda: build_model(name, n_classes, width=width, seed=seed, dropout=0.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the records here")
    parser.add_argument("--figure", default="crf_rnn_parameters.png", help="learned-parameter figure")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", default="64x96", help="HxW of the images")
    parser.add_argument("--classes", type=int, default=4, help="background + shapes, 2..6")
    parser.add_argument("--train-images", type=int, default=48)
    parser.add_argument("--test-images", type=int, default=24)
    parser.add_argument("--iterations", type=int, default=400, help="training iterations in total")
    parser.add_argument("--pretrain", type=int, default=200, help="of which the network trains alone")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's rate for the network")
    parser.add_argument("--crf-lr", type=float, default=0.1, help="Adam's rate for the CRF")
    parser.add_argument("--finetune-lr", type=float, default=3e-4,
                        help="the network's rate after --pretrain, in both runs (0: keep --lr)")
    parser.add_argument("--crf-warmup", type=int, default=50,
                        help="joint run: iterations that train the CRF alone before both train")
    parser.add_argument("--aux-weight", type=float, default=3.0,
                        help="joint run: loss CE(CRF output) + this x CE(network logits) (0: none)")
    parser.add_argument("--model", default="small", help="'small' or a tinyseg.models name")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    args = parser.parse_args(argv)

    from tinyseg.crf import CRFasRNN
    from tinyseg.studies.crf_rnn import compare, plot_crf_parameters
    from tinyseg.data.synthetic import class_names, synthetic_dataset

    h, w = (int(s) for s in args.size.lower().split("x"))
    records = []
    for i, seed in enumerate(args.seeds):
        train = synthetic_dataset(args.train_images, (h, w), args.classes, seed=seed, max_objects=3)
        test = synthetic_dataset(args.test_images, (h, w), args.classes, seed=seed + 99,
                                 max_objects=3)
        result = compare(make_model_factory(args.model, args.classes, args.width, seed),
                         lambda: CRFasRNN(args.classes), train, test, args.classes,
                         iterations=args.iterations, pretrain=args.pretrain, batch=args.batch,
                         lr=args.lr, crf_lr=args.crf_lr, crf_iterations=(5, 10),
                         finetune_lr=args.finetune_lr or None, crf_warmup=args.crf_warmup,
                         aux_weight=args.aux_weight)
        alone, joint, secs = result["alone"], result["joint"], result["seconds"]
        records.append(record(
            f"crf_rnn_study.{args.model}.{h}x{w}.C{args.classes}.seed{seed}",
            secs["joint"], peer="network alone (training s)", peer_s=secs["alone"],
            miou_network=round(alone["network"], 4), miou_posthoc_crf=round(alone["posthoc_crf"], 4),
            miou_crf_rnn_5=round(joint["crf_rnn_5"], 4), miou_crf_rnn_10=round(joint["crf_rnn_10"], 4),
            gain_5=round(joint["crf_rnn_5"] - alone["posthoc_crf"], 4)))
        if i == 0 and args.figure:
            plot_crf_parameters(result["crf"], args.figure, class_names=class_names(args.classes),
                                title=f"CRF-as-RNN after {args.iterations} iterations "
                                      f"({args.model}, {h}x{w}, seed {seed})")
        print_table(records[-1:], ["name", "miou_network", "miou_posthoc_crf", "miou_crf_rnn_5",
                                   "miou_crf_rnn_10", "gain_5"])
    print()
    print_table(records, ["name", "miou_network", "miou_posthoc_crf", "miou_crf_rnn_5",
                          "miou_crf_rnn_10", "gain_5", "tinyseg_s", "peer_s"])
    write_json(args.json, records)


if __name__ == "__main__":
    main()
