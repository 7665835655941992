"""The ``import-weights`` subcommand: Keras VGG-16 weights into a tinyseg .npz."""
from __future__ import annotations

import os

import numpy as np

from . import argcheck


def register(subparsers):
    p = subparsers.add_parser(
        "import-weights", help="import Keras VGG-16 weights into a tinyseg .npz",
        description="""Import vgg16_weights_tf_dim_ordering_tf_kernels(.h5|_notop.h5) (or a .npz of
        named arrays), verify its MD5, make conv1_1 take RGB instead of Caffe's BGR, recast fc1/fc2
        as 7×7 and 1×1 convolutions, and save tinyseg-named arrays. Nothing is downloaded.""")
    p.add_argument("path", help="the Keras .h5 file (or a .npz)")
    p.add_argument("--out", default=os.path.join("weights", "vgg16.npz"),
                   help="output .npz (default: %(default)s)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the MD5 check (for files other than the two published Keras files)")
    p.set_defaults(func=_import_weights)


def _import_weights(args) -> int:
    from ..weights import load_params, save_params_npz

    argcheck.existing_file(args.path, "path")
    folder = os.path.dirname(os.path.abspath(args.out))
    argcheck.output_folder(folder, "--out")
    if os.path.isdir(args.out):
        raise ValueError(f"--out: {args.out} is a folder, expected a .npz file name")
    params = load_params(args.path, verify_md5=not args.no_verify)
    os.makedirs(folder, exist_ok=True)
    save_params_npz(args.out, params)
    n = sum(int(np.prod(v.shape)) for v in params.values())
    print(f"imported {len(params)} arrays ({n / 1e6:.1f} M parameters) from {args.path} into {args.out}")
    return 0
