"""Data parallelism over MPI ranks (mpi4py), Horovod-style: one small module the trainer calls.

Under ``mpiexec -n R`` every rank holds the whole model. A global batch of ``B`` images is split
across the ranks (rank ``r`` takes batch positions ``r, r+R, r+2R, …``); each rank sums the
gradients of its images into contiguous **buckets** (a few MB each, parameters in backward
order), and as soon as a bucket's last gradient is final in the backward of the rank's last
image (the model's ``grad_ready`` hook), a non-blocking ``Iallreduce`` sums that bucket over the
ranks while backward goes on with the earlier layers. After backward the trainer waits for all
buckets; every rank then holds the same sums and applies the same optimizer step, so the
parameters stay bit-identical. Dataset evaluation shards images by rank and sums the integer
confusion matrices, so it equals the serial result exactly.

``mpi4py`` is imported only when the world has more than one rank; with one process nothing here
touches MPI and a batch of one image uses the model's gradients directly (no copy).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from .._processes import usable_cores, world_size_from_env
from ..ops import add_into, copy_into

__all__ = ["World", "GradientBuckets", "world_size_from_env", "configure_threads"]

_LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")
#: Default bucket size: large enough for Allreduce to reach its bandwidth, small enough to start early.
BUCKET_BYTES = 32 * 2**20


class World:
    """The ranks of this run: ``rank``, ``size``, and MPI's ``comm`` (``None`` for one process)."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()

    @classmethod
    def detect(cls) -> "World":
        """``World()`` for a single process; under an MPI launcher, ``COMM_WORLD`` through mpi4py."""
        if world_size_from_env() <= 1:
            return cls()
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise RuntimeError("started by an MPI launcher with several ranks, but mpi4py is not "
                               "installed: pip install 'tinyseg[mpi]'") from exc
        return cls(MPI.COMM_WORLD)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def share(self, positions):
        """This rank's part of a sequence of batch positions: every ``size``-th from ``rank``."""
        return list(positions)[self.rank::self.size]

    def agree(self, error: BaseException | None):
        """Collective: raise on every rank the first rank's error if any rank had one.

        Every rank calls it at the same point (e.g. after reading its images), so a bad file on
        one rank stops all ranks together instead of leaving the others waiting in a collective.
        """
        if self.comm is None:
            if error is not None:
                raise error
            return
        messages = self.comm.allgather(None if error is None else (type(error).__name__, str(error)))
        for rank, message in enumerate(messages):
            if message is not None:
                if error is not None and rank == self.rank:
                    raise error
                kind = {"FileNotFoundError": FileNotFoundError, "LabelError": ValueError}.get(
                    message[0], ValueError if message[0] == "ValueError" else RuntimeError)
                raise kind(message[1])

    def sum_int(self, array: np.ndarray) -> np.ndarray:
        """Collective: the element-wise sum over the ranks of an integer array (exact)."""
        return self._sum(np.ascontiguousarray(array, dtype=np.int64))

    def sum_float(self, values) -> np.ndarray:
        """Collective: the element-wise float64 sum over the ranks."""
        return self._sum(np.ascontiguousarray(values, dtype=np.float64))

    def _sum(self, array: np.ndarray) -> np.ndarray:
        """Allreduce-sum of a contiguous array (itself on a single process)."""
        if self.comm is None:
            return array
        from mpi4py import MPI
        out = np.empty_like(array)
        self.comm.Allreduce(array, out, op=MPI.SUM)
        return out

    def broadcast_params(self, params: dict, backend) -> None:
        """Collective: make every rank's parameters rank 0's, bit for bit (in place)."""
        if self.comm is None:
            return
        for name in sorted(params):
            host = np.ascontiguousarray(backend.to_numpy(params[name]))
            self.comm.Bcast(host, root=0)
            if not backend.owns(host) or host is not params[name]:
                copy_into(params[name], backend.asarray(host))

    def same_on_all_ranks(self, params: dict, backend) -> bool:
        """Collective: whether every rank holds the same parameters (compares bit-exact digests)."""
        if self.comm is None:
            return True
        import hashlib
        digest = hashlib.sha1()
        for name in sorted(params):
            digest.update(np.ascontiguousarray(backend.to_numpy(params[name])).tobytes())
        digests = self.comm.allgather(digest.hexdigest())
        return len(set(digests)) == 1

    def barrier(self) -> None:
        if self.comm is not None:
            self.comm.Barrier()


def configure_threads(world: World, environ=os.environ) -> int:
    """Split this machine's cores among the ranks running on it; return the threads per rank.

    With ``R`` ranks on a machine of ``n`` cores each rank gets ``max(1, n // R)`` Numba and BLAS
    threads (BLAS is told through ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` before it loads). A
    value the user set in ``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS`` is kept. One process: unchanged.
    """
    if world.size <= 1:
        return 0
    local = next((int(environ[v]) for v in _LOCAL_SIZE_VARIABLES if environ.get(v, "").isdigit()), 0)
    if local <= 0 and world.comm is not None:
        from mpi4py import MPI
        local = world.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    threads = max(1, usable_cores() // max(local, 1))
    if "NUMBA_NUM_THREADS" in environ or "OMP_NUM_THREADS" in environ:
        return int(environ.get("NUMBA_NUM_THREADS", environ.get("OMP_NUM_THREADS")))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        environ.setdefault(name, str(threads))
    if "scipy.linalg" in sys.modules:  # BLAS already loaded: tell OpenBLAS directly, if it is one
        _set_openblas_threads(threads)
    import numba
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return threads


def _set_openblas_threads(threads: int) -> None:
    import ctypes
    import glob

    import scipy
    for lib in glob.glob(os.path.join(os.path.dirname(scipy.__file__), "..", "scipy_openblas*", "lib", "*.so*")) + \
            glob.glob(os.path.join(os.path.dirname(scipy.__file__), "..", "scipy.libs", "*openblas*.so*")):
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for symbol in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                       "openblas_set_num_threads"):
            if hasattr(handle, symbol):
                getattr(handle, symbol)(ctypes.c_int(threads))
                return


class GradientBuckets:
    """Sums gradients over a rank's images and over the ranks, in contiguous buckets.

    Parameters
    ----------
    params : dict of str -> array
        The model's parameters (names, shapes, backend); the order of the dict is taken as the
        forward order, so buckets fill in reverse: the last layers' gradients, which backward
        finishes first, are reduced first.
    world : World
    backend : module
        The parameters' backend; buckets live there (MPI reduces host buckets; a GPU bucket
        is staged through the host).
    bucket_bytes : int
        Target size of a bucket (a parameter larger than that gets a bucket of its own).
    communicate : bool
        ``False`` skips the reduction over ranks (for measuring compute alone).

    Use, per training step: ``begin(n_images)``; for each of the rank's images, run backward
    with ``grad_ready=buckets.hook(model.grads_fn, image_index)``; then ``grads = finish()``.
    """

    def __init__(self, params: dict, world: World, backend, bucket_bytes: int = BUCKET_BYTES,
                 communicate: bool = True):
        self.world, self.backend, self.communicate = world, backend, communicate
        self.buckets = []          # list of (names, flat buffer)
        self.views = {}            # name -> view of its bucket, shaped like the parameter
        self.bucket_of = {}        # name -> bucket index
        names, size = [], 0
        for name in reversed(list(params)):
            names.append(name)
            size += int(np.prod(params[name].shape))
            if size * 4 >= bucket_bytes:
                self._add_bucket(names, params)
                names, size = [], 0
        if names:
            self._add_bucket(names, params)
        self.requests = []
        self._pending = {}

    def _add_bucket(self, names, params):
        sizes = [int(np.prod(params[n].shape)) for n in names]
        flat = self.backend.zeros((sum(sizes),), np.float32)
        offset = 0
        for name, n in zip(names, sizes):
            self.views[name] = flat[offset:offset + n].reshape(params[name].shape)  # (n,) -> param shape
            self.bucket_of[name] = len(self.buckets)
            offset += n
        self.buckets.append((list(names), flat))

    def begin(self, n_images: int) -> None:
        """Start a step in which this rank processes ``n_images`` images (0 is allowed)."""
        self.n_images, self.image = n_images, 0
        self._seen = set()
        self._pending = {b: len(names) for b, (names, _) in enumerate(self.buckets)}
        self.requests = []
        if n_images == 0:
            for b, (_, flat) in enumerate(self.buckets):
                copy_into(flat, self.backend.zeros(flat.shape, np.float32))   # contributes nothing
                self._start(b)

    def hook(self, grads_of):
        """A ``grad_ready(names)`` callback for the backward of the current image.

        ``grads_of()`` returns the model's gradient dict (read when names become ready).
        """
        def grad_ready(names):
            grads = grads_of()
            first, last = self.image == 0, self.image == self.n_images - 1
            for name in names:
                if name in self._seen:
                    continue
                self._seen.add(name)
                (copy_into if first else add_into)(self.views[name], grads[name])
                if last:
                    b = self.bucket_of[name]
                    self._pending[b] -= 1
                    if self._pending[b] == 0:
                        self._start(b)
            self._progress()
        return grad_ready

    def end_image(self, grads: dict) -> None:
        """After an image's backward: take any gradient the hook was not told about."""
        missing = [n for n in self.views if n not in self._seen]
        if missing:
            self.hook(lambda: grads)(missing)
        self.image += 1
        self._seen = set()

    def _start(self, b: int) -> None:
        if self.world.comm is None or not self.communicate:
            return
        from mpi4py import MPI
        flat = self.buckets[b][1]
        if self.backend.owns(flat) and isinstance(flat, np.ndarray):
            self.requests.append(self.world.comm.Iallreduce(MPI.IN_PLACE, flat, op=MPI.SUM))
        else:  # a device bucket: reduce a host copy, then copy it back (blocking)
            host = self.backend.to_numpy(flat)
            self.world.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
            copy_into(flat, self.backend.asarray(host))

    def _progress(self) -> None:
        """Let MPI advance the reductions in flight (MPICH progresses them inside MPI calls)."""
        if self.requests:
            from mpi4py import MPI
            MPI.Request.Testall(self.requests)

    def finish(self) -> dict:
        """Wait for every bucket's reduction; return ``{name: summed gradient}`` (bucket views)."""
        if self.requests:
            from mpi4py import MPI
            MPI.Request.Waitall(self.requests)
            self.requests = []
        return self.views
