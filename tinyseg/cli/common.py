"""Options and helpers shared by the ``train``, ``predict`` and ``evaluate`` subcommands."""
from __future__ import annotations


def add_device(p):
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the network runs: cpu (Numba @njit) or cuda (numba.cuda); default cpu")


def add_data(p, split_default):
    """The data options (see :mod:`tinyseg.cli.dataopts`)."""
    from .dataopts import add_data as add

    add(p, split_default)


def samples_from_args(args, saved_classes=None):
    """The dataset of the data options and its number of classes (``saved_classes``: a checkpoint's)."""
    from .dataopts import dataset_from_args, label_map_from_args

    dataset = dataset_from_args(args, label_map_from_args(args, saved_classes))
    return dataset, dataset.n_classes


def load_model(checkpoint: str, device: str = "cpu"):
    """The model stored in a training checkpoint (its config names it; none named: FCN-32s; with
    ``"crf_rnn"`` in it: the network with its trained CRF-as-RNN on top)."""
    from ..weights.checkpoint import load_checkpoint
    from ..models import model_from_config

    ckpt = load_checkpoint(checkpoint)
    return model_from_config(ckpt.config["model"], backend=device, params=ckpt.params)
