"""Gradient buckets and the MPI world: sums over images and ranks, with one and with 2 ranks."""
import textwrap

import numpy as np
import pytest

from tinyseg.backend import get_backend
from tinyseg.training.distributed import GradientBuckets, World, world_size_from_env
from mpi_helpers import run_mpi


def _params(rng):
    shapes = {"conv1.w": (3, 3, 2, 4), "conv1.b": (4,), "fc.w": (1, 1, 4, 3), "fc.b": (3,)}
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def test_world_size_comes_from_the_launchers_environment():
    assert world_size_from_env({}) == 1
    assert world_size_from_env({"PMI_SIZE": "4"}) == 4
    assert world_size_from_env({"OMPI_COMM_WORLD_SIZE": "3"}) == 3
    assert world_size_from_env({"SLURM_NTASKS": "8"}) == 1            # sbatch shell, not a step
    assert world_size_from_env({"SLURM_NTASKS": "8", "SLURM_STEP_ID": "0"}) == 8


@pytest.mark.parametrize("bucket_bytes", [1, 64, 10**6])
def test_buckets_sum_the_images_of_a_step(rng, bucket_bytes):
    params = _params(rng)
    buckets = GradientBuckets(params, World(), get_backend("cpu"), bucket_bytes=bucket_bytes)
    assert sorted(buckets.views) == sorted(params)
    images = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
              for _ in range(3)]
    for _ in range(2):                                    # a second step starts afresh
        buckets.begin(len(images))
        for grads in images:
            hook = buckets.hook(lambda g=grads: g)
            hook(["fc.w", "fc.b"])                        # announced layer by layer, last first
            hook(["conv1.w", "conv1.b"])
            buckets.end_image(grads)
        summed = buckets.finish()
        for name in params:
            np.testing.assert_allclose(summed[name], sum(g[name] for g in images), rtol=1e-6)


def test_gradients_never_announced_are_taken_after_backward(rng):
    params = _params(rng)
    buckets = GradientBuckets(params, World(), get_backend("cpu"))
    grads = {k: np.ones_like(v) for k, v in params.items()}
    buckets.begin(1)
    buckets.end_image(grads)                              # a model without grad_ready
    assert all((g == 1).all() for g in buckets.finish().values())


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from tinyseg.backend import get_backend
    from tinyseg.training.distributed import GradientBuckets, World
    world = World.detect()
    assert world.size == 2
    rng = np.random.default_rng(0)
    shapes = {"a.w": (50, 40), "a.b": (40,), "b.w": (300, 7)}
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    # rank r's images: the global batch positions r, r+2, ... of 3 images
    images = [{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()} for _ in range(3)]
    mine = world.share(range(3))
    buckets = GradientBuckets(params, world, get_backend("cpu"), bucket_bytes=4096)
    buckets.begin(len(mine))
    for i in mine:
        hook = buckets.hook(lambda g=images[i]: g)
        hook(["b.w"]); hook(["a.w", "a.b"])
        buckets.end_image(images[i])
    got = buckets.finish()
    for k in shapes:
        np.testing.assert_allclose(got[k], sum(g[k] for g in images), rtol=1e-5, atol=1e-5)
    # Parameters broadcast from rank 0 become bit-identical.
    if world.rank == 1:
        params["a.w"] += 1
    assert world.same_on_all_ranks(params, get_backend("cpu")) is False
    world.broadcast_params(params, get_backend("cpu"))
    assert world.same_on_all_ranks(params, get_backend("cpu"))
    assert world.sum_int(np.array([world.rank + 1])).tolist() == [3]
    try:
        world.agree(FileNotFoundError("rank 1 cannot read x.png") if world.rank == 1 else None)
    except FileNotFoundError as e:
        assert "x.png" in str(e)
    else:
        raise AssertionError("agree did not raise")
    sys.stdout.write(f"rank {world.rank} ok\\n")   # one write (ranks share the pipe)
    sys.stdout.flush()
""")


def test_two_ranks_sum_buckets_and_agree_on_errors():
    proc = run_mpi(2, ["-c", SCRIPT], timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rank 0 ok" in proc.stdout and "rank 1 ok" in proc.stdout
