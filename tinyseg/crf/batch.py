"""Refine many images with the dense CRF on every core: ``refine_many(items, params)``.

One image's mean field is a chain of filterings whose parallel parts are short; a set of images
is better spread one image per core. :class:`CRFPool` keeps ``workers`` refiners, one image per
task, and yields the labels in input order. By default they are threads of this process: each
runs its image on one core (Numba's thread count is a per-thread setting, set to 1 in each; the
CRF's kernels release the GIL, so the threads run side by side), with nothing to start and no
arrays to copy. ``kind="processes"`` uses single-threaded worker processes instead (each with
``NUMBA_NUM_THREADS = OMP_NUM_THREADS = ... = 1``), which pay their start-up (imports, Numba's
cache) once each. Either way every image runs the same :func:`tinyseg.crf.dense_crf` as a call in
this process would, so the labels are those of one image at a time.

Under an MPI launcher with more than one rank (``mpiexec -n R``), each rank refines every R-th
image (``items[rank::R]``, in this process, with the rank's own threads) and rank 0 gathers all
labels; ``mpi4py`` is imported only then.

An item is ``(image, probabilities)``: ``image`` an H×W×3 uint8 array or an image file's path,
``probabilities`` an H×W×C float array or a ``.npy`` path (read by ``reader(path, (H, W))``,
default :func:`read_probabilities`; the command line passes its own, which also takes ``.npz``
and C×H×W). Paths are read by the worker, so only names cross a process boundary.
"""
from __future__ import annotations

import collections
import itertools
import multiprocessing as mp
import os
import sys
from typing import Iterable, Iterator

import numpy as np

from .._processes import single_threaded_children
from .._processes import usable_cores as default_workers
from .._processes import world_size_from_env as mpi_world_size

__all__ = ["refine_many", "refine_stream", "CRFPool", "default_workers", "mpi_world_size",
           "single_threaded_children", "read_probabilities", "one_core_per_thread"]

def read_probabilities(path: str, shape) -> np.ndarray:
    """An H×W×C float array from a ``.npy`` file, for an image of ``shape`` (H, W)."""
    p = np.load(path, allow_pickle=False)
    if p.ndim != 3 or p.shape[:2] != tuple(shape) or not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"probabilities in {path!r} have shape {p.shape} and dtype {p.dtype}: "
                         f"expected H×W×C floats for the {shape[0]}×{shape[1]} image")
    return p


def _load(image, probabilities, reader=None):
    """An item's arrays: paths are read here (in the worker), arrays pass through."""
    if isinstance(image, (str, os.PathLike)):
        from ..data import load_image
        image = load_image(os.fspath(image))
    if isinstance(probabilities, (str, os.PathLike)):
        probabilities = (reader or read_probabilities)(os.fspath(probabilities),
                                                      np.asarray(image).shape[:2])
    return image, probabilities


_PARAMS: dict = {}
_WITH_Q = False
_READER = None


def _init_worker(params: dict, with_q: bool, reader=None) -> None:
    global _PARAMS, _WITH_Q, _READER
    import numba

    numba.set_num_threads(1)                    # the processes are the parallelism
    _PARAMS, _WITH_Q, _READER = params, with_q, reader


def _refine(item, params: dict, with_q: bool, reader=None):
    from .refine import dense_crf

    image, probabilities = _load(*item, reader)
    labels, q = dense_crf(image, probabilities, **params)
    return (labels, q) if with_q else labels


def one_core_per_thread() -> None:
    """A pool thread's set-up: its parallel kernels run on one core (Numba's thread count is a
    per-thread setting); the initializer of every CRF thread pool."""
    import numba

    numba.set_num_threads(1)


def _refine_task(task):
    index, item, params = task
    return index, _refine(item, _PARAMS if params is None else params, _WITH_Q, _READER)


class CRFPool:
    """``workers`` refiners with fixed ``params``, one image per task (see the module).

    ``kind``: "threads" (default; threads of this process, one core each) or "processes"
    (single-threaded worker processes, started with ``start_method``). Keep one open to refine
    several sets without starting it again::

        with CRFPool(params, workers=2) as pool:
            labels = list(pool.imap(items))
    """

    def __init__(self, params: dict, workers: int | None = None, *, with_q: bool = False,
                 reader=None, kind: str = "threads", start_method: str = "spawn"):
        self.workers = default_workers() if workers is None else int(workers)
        if self.workers < 1:
            raise ValueError(f"`workers` must be >= 1, got {workers}")
        if kind not in ("threads", "processes"):
            raise ValueError(f"`kind` must be 'threads' or 'processes', got {kind!r}")
        self.kind, self.params, self.with_q, self.reader = kind, dict(params), with_q, reader
        if kind == "threads":
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="tinyseg-crf",
                                            initializer=one_core_per_thread)
        else:
            with single_threaded_children():
                self._pool = mp.get_context(start_method).Pool(
                    self.workers, initializer=_init_worker, initargs=(self.params, with_q, reader))

    def imap(self, items: Iterable, params: dict | None = None) -> Iterator:
        """Labels (or ``(labels, Q)``) of each item, in input order, as they are ready;
        ``params`` (default: the pool's) are sent with every task."""
        if self.kind == "processes":
            tasks = ((i, item, params) for i, item in enumerate(items))
            for _, result in self._pool.imap(_refine_task, tasks, chunksize=1):
                yield result
            return
        params = self.params if params is None else params
        pending = collections.deque()                 # at most two images per thread in flight
        for item in items:
            pending.append(self._pool.submit(_refine, item, params, self.with_q, self.reader))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        if self.kind == "threads":
            self._pool.shutdown(wait=True)
            return
        self._pool.close()
        self._pool.join()

    def terminate(self) -> None:
        """Stop: queued images are dropped (a thread finishes the image it is on)."""
        if self.kind == "threads":
            self._pool.shutdown(wait=False, cancel_futures=True)
            return
        self._pool.terminate()
        self._pool.join()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.close()
        else:
            self.terminate()


def refine_many(items, params: dict | None = None, *, workers: int | None = None,
                progress: bool = False, with_q: bool = False, desc: str = "crf",
                reader=None, kind: str = "threads") -> list:
    """Refine every ``(image, probabilities)`` item with :func:`tinyseg.crf.dense_crf`.

    Parameters
    ----------
    items : sequence of ``(image, probabilities)``: arrays (H×W×3 uint8, H×W×C float) or paths.
    params : :func:`tinyseg.crf.dense_crf`'s keywords (``sdims``, ``schan``, ``compat``,
        ``gaussian_sdims``, ``gaussian_compat``, ``iterations``, ``method``, ``clip``); default
        its defaults (the post's parameters).
    workers : refiners (threads of this process, or processes with ``kind="processes"``);
        default :func:`default_workers`. With 1 (or one item) the images are refined here, one
        after the other, with this process's threads.
    progress : show a tqdm bar (on stderr).
    with_q : return ``(labels, Q)`` per item instead of labels.
    reader : ``reader(path, (H, W)) -> (H, W, C)`` for probabilities given as paths (a
        module-level function: worker processes receive it by name); default
        :func:`read_probabilities`.
    kind : "threads" or "processes" (see :class:`CRFPool`).

    Returns
    -------
    A list, in input order, of labels ``(H, W) int32`` (or ``(labels, Q (H, W, C) float32)``).
    Under MPI with several ranks: that list on rank 0, ``None`` on the others.
    """
    params = dict(params or {})
    if params.get("device", "cpu") != "cpu":
        raise ValueError("refine_many runs on the CPU; use dense_crf(device=...) per image")
    items = list(items)
    if mpi_world_size() > 1:
        return _refine_mpi(items, params, progress, with_q, desc, reader)
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ValueError(f"`workers` must be >= 1, got {workers}")
    bar = _bar(len(items), progress, desc)
    out = []
    try:
        if n == 1 or len(items) <= 1:
            for item in items:
                out.append(_refine(item, params, with_q, reader))
                bar.update(1)
        else:
            with CRFPool(params, min(n, len(items)), with_q=with_q, reader=reader,
                         kind=kind) as pool:
                for result in pool.imap(items):
                    out.append(result)
                    bar.update(1)
    finally:
        bar.close()
    return out


def refine_stream(records: Iterable, params: dict | None = None, *, workers: int | None = None,
                  chunk: int | None = None, item=lambda record: record) -> Iterator:
    """``(record, labels)`` for each record of a (lazy) iterable, in order, refined on every core.

    For loops that make their inputs as they go (a network's probabilities, image after image):
    ``chunk`` records (default ``2 * workers``) are drawn from ``records`` -- running whatever
    produces them, in this process -- then refined together by one :class:`CRFPool` that stays
    open for the whole stream, so only a chunk's arrays are held at a time. ``item(record)``
    gives the record's ``(image, probabilities)``. With one worker, or ``device`` other than
    ``"cpu"`` in ``params``, each record is refined here as it comes. No MPI here: a caller that
    runs under ``mpiexec`` shards its records itself.
    """
    params = dict(params or {})
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ValueError(f"`workers` must be >= 1, got {workers}")
    if n == 1 or params.get("device", "cpu") != "cpu":
        for record in records:
            yield record, _refine(item(record), params, False)
        return
    chunk = chunk or 2 * n
    records, pool = iter(records), None
    try:
        while True:
            batch = list(itertools.islice(records, chunk))
            if not batch:
                break
            if pool is None:
                pool = CRFPool(params, n)
            yield from zip(batch, pool.imap([item(r) for r in batch]))
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool = None
        raise
    finally:
        if pool is not None:
            pool.close()


def _bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="image", file=sys.stderr, disable=not enabled)


def _refine_mpi(items: list, params: dict, progress: bool, with_q: bool, desc: str, reader):
    """Rank r refines items[r::R]; rank 0 gathers and orders them."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    mine = list(range(len(items)))[rank::size]
    bar = _bar(len(mine), progress and rank == 0, desc)
    results, error = [], None
    try:
        for i in mine:
            results.append((i, _refine(items[i], params, with_q, reader)))
            bar.update(1)
    except Exception as exc:                 # every rank must reach the gather below
        error = f"{type(exc).__name__}: {exc}"
    finally:
        bar.close()
    gathered = comm.gather((results, error), root=0)
    if rank != 0:
        return None
    errors = [e for _, e in gathered if e]
    if errors:
        raise RuntimeError(f"refine_many: a rank failed: {errors[0]}")
    ordered = [None] * len(items)
    for part, _ in gathered:
        for i, result in part:
            ordered[i] = result
    return ordered
