"""CRF-as-RNN on the CUDA backend equals the CPU's: kernels, one image's recurrence, the layer
(tiny shapes, simulator-safe)."""
import numpy as np
import pytest

from tinyseg import ops
from tinyseg.backend import get_backend
from tinyseg.crf import CRFasRNN
from tinyseg.crf.rnn import kernels as cpu
from tinyseg.crf.refine import bilateral_filter, spatial_filter
from tinyseg.crf.rnn.engine import MeanFieldRNN
from tinyseg.training.optim import Adam, AdamConfig

pytestmark = pytest.mark.cuda


def test_cuda_kernels_match_cpu(gpu, rng):
    from tinyseg.crf.cuda import rnn as cuda
    n, k, c = 13, 2, 3
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    z, messages, weights, compat, g = r(n, c), r(k, n, c), r(k, c), r(c, c), r(n, c)
    pre, k1 = rng.uniform(0.2, 1, (k, n)).astype(np.float32), r(k, n)
    d = gpu.asarray
    host = gpu.to_numpy

    def both(name, inputs, outputs):
        """Run kernel `name` on both backends; return [(cpu output, cuda output), ...]."""
        cpu_out = [np.zeros_like(o) for o in outputs]
        getattr(cpu, name)(*inputs, *cpu_out)
        cuda_out = [d(np.zeros_like(o)) for o in outputs]
        getattr(cuda, name)(*[d(a) if isinstance(a, np.ndarray) else a for a in inputs], *cuda_out)
        return [(a, host(b)) for a, b in zip(cpu_out, cuda_out)]

    nc = np.empty((n, c), np.float32)
    checks = (both("copy", [z], [nc]) + both("softmax", [z], [nc])
              + both("combine", [z, messages, weights, compat], [nc, nc])
              + both("scale_columns", [z, pre[0]], [np.empty((n, c - 1), np.float32)])
              + both("complete", [z[:, :c - 1].copy(), pre[0], k1[0]], [nc])
              + both("gather_adjoint", [z[:, :c - 1].copy(), pre[0], False], [nc])
              + both("softmax_backward", [np.abs(z), r(n, c)], [nc, nc]))
    parts = cuda.partials(n)
    assert parts == n                         # one pixel per chunk on a tiny image
    # the chunk counts differ (threads vs CUDA chunks): compare the summed partials
    v = [np.zeros((k, n, c - 1), np.float32), d(np.zeros((k, n, c - 1), np.float32))]
    dmu = [np.zeros((cpu.partials(n), c, c)), d(np.zeros((parts, c, c)))]
    dw = [np.zeros((cpu.partials(n), k, c)), d(np.zeros((parts, k, c)))]
    work = np.empty(cpu.pairwise_scratch_shape(n, c), np.float32)
    cpu.pairwise_backward(g, messages, weights, compat, pre, work, v[0], dmu[0], dw[0])
    cuda.pairwise_backward(d(g), d(messages), d(weights), d(compat), d(pre), d(work), v[1], dmu[1],
                           dw[1])
    checks += [(v[0], host(v[1])), (dmu[0].sum(0), host(dmu[1]).sum(0)),
               (dw[0].sum(0), host(dw[1]).sum(0))]
    for a, b in checks:
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_cuda_recurrence_matches_cpu(gpu, rng, method):
    h, w, c = 4, 5, 3
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    # wide colour bandwidth: a small grid, since the simulator runs every grid cell as a thread
    filters = [spatial_filter((h, w), 2, method), bilateral_filter(img, 3, 120, method)]
    z = rng.standard_normal((h * w, c)).astype(np.float32)
    weights = rng.uniform(1, 3, (2, c)).astype(np.float32)
    compat = (1 - np.eye(c) + 0.3 * rng.standard_normal((c, c))).astype(np.float32)
    dout = rng.standard_normal((h * w, c)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        engine = MeanFieldRNN(filters, device=device)
        be = engine.backend
        args = be.asarray(weights), be.asarray(compat)
        logits, cache = engine.forward(be.asarray(z), *args, 2, keep=True)
        dz, dw, dmu = engine.backward(be.asarray(dout), cache, *args)
        results.append([be.to_numpy(logits), be.to_numpy(dz), dw, dmu])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_cuda_layer_trains_like_the_cpu_layer(gpu, rng):
    n, h, w, c = 1, 4, 5, 2
    images = rng.integers(0, 256, (n, h, w, 3)).astype(np.uint8)
    logits = rng.standard_normal((n, h, w, c)).astype(np.float32)
    labels = rng.integers(0, c, (n, h, w)).astype(np.int32)
    kw = dict(iterations=2, sdims=3, schan=40, gaussian_sdims=1.5, method="exact")
    layers = {dev: CRFasRNN(c, backend=dev, **kw) for dev in ("cpu", "cuda")}
    got = {}
    for dev, crf in layers.items():
        be = get_backend(dev)
        out = crf.forward(be.asarray(logits), images, train=True)
        _, dout = ops.softmax_cross_entropy(out, be.asarray(labels))
        dlogits = crf.backward(dout)
        assert all(be.owns(g) for g in crf.grads.values())
        Adam(AdamConfig(lr=0.1)).step(crf.params, crf.grads)
        got[dev] = [be.to_numpy(out), be.to_numpy(dlogits), *crf.host_params().values()]
    for a, b in zip(got["cpu"], got["cuda"]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
