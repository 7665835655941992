"""The recipes' optimizers and schedules: SGD against torch.optim.SGD and its NumPy twin, the
gradient-buffer kernels against NumPy, the poly schedule against torch's PolynomialLR, the CUDA
twins in the simulator."""
import numpy as np
import pytest

from tinyseg import reference
from tinyseg.ops import add_into, copy_into, scale_into, sgd_update
from tinyseg.training.optim import SGD, Adam, AdamConfig, LRSchedule, SGDConfig, make_optimizer
from conftest import require


def test_sgd_kernel_equals_its_numpy_twin(rng):
    shape = (3, 3, 4, 5)
    p1 = rng.standard_normal(shape).astype(np.float32)
    p2, u1 = p1.copy(), np.zeros(shape, np.float32)
    u2 = u1.copy()
    for _ in range(5):
        g = rng.standard_normal(shape).astype(np.float32)
        sgd_update(p1, g, u1, 0.01, 0.9, 1e-3, 0.5)
        reference.sgd_update(p2, g, u2, 0.01, 0.9, 1e-3, 0.5)
    np.testing.assert_allclose(p1, p2, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(u1, u2, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("momentum,weight_decay", [(0.99, 5e-4), (0.9, 0.0), (0.0, 1e-2)])
def test_sgd_equals_torch_sgd_with_poly_schedule(rng, momentum, weight_decay):
    torch = require("torch")
    shapes = {"a.w": (3, 3, 2, 4), "a.b": (4,)}
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    tparams = [torch.nn.Parameter(torch.tensor(v.copy())) for v in params.values()]
    steps = 12
    opt = torch.optim.SGD(tparams, lr=0.05, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=steps, power=0.9)
    mine = SGD(SGDConfig(lr=0.05, momentum=momentum, weight_decay=weight_decay))
    schedule = LRSchedule(0.05, "poly", total=steps, power=0.9)
    for t in range(steps):
        grads = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        assert schedule(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        mine.step(params, grads, lr=schedule(t))
        for tp, g in zip(tparams, grads.values()):
            tp.grad = torch.tensor(g)
        opt.step()
        sched.step()
    for (name, value), tp in zip(params.items(), tparams):
        np.testing.assert_allclose(value, tp.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert mine.t == steps and set(mine.state()["m"]) == set(shapes) and mine.state()["v"] == {}


def test_sgd_grad_scale_is_a_mean_of_a_summed_gradient(rng):
    p1 = rng.standard_normal(10).astype(np.float32)
    p2, g = p1.copy(), rng.standard_normal(10).astype(np.float32)
    SGD(SGDConfig(lr=0.1)).step({"p": p1}, {"p": g * 4}, grad_scale=0.25)
    SGD(SGDConfig(lr=0.1)).step({"p": p2}, {"p": g})
    np.testing.assert_allclose(p1, p2, rtol=1e-6)


def test_adam_grad_scale_scales_the_gradient_first(rng):
    p1 = rng.standard_normal(10).astype(np.float32)
    p2, g = p1.copy(), rng.standard_normal(10).astype(np.float32)
    Adam(AdamConfig(lr=0.1, eps=1.0)).step({"p": p1}, {"p": g * 4}, grad_scale=0.25)
    Adam(AdamConfig(lr=0.1, eps=1.0)).step({"p": p2}, {"p": g})
    np.testing.assert_allclose(p1, p2, rtol=1e-6)


def test_sgd_state_round_trips_and_resumes_exactly(rng):
    shape = (4, 3)
    grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    start = rng.standard_normal(shape).astype(np.float32)
    straight, opt = start.copy(), SGD(SGDConfig(lr=0.1, momentum=0.9))
    for g in grads:
        opt.step({"p": straight}, {"p": g})
    resumed, first = start.copy(), SGD(SGDConfig(lr=0.1, momentum=0.9))
    for g in grads[:2]:
        first.step({"p": resumed}, {"p": g})
    from tinyseg.backend import get_backend
    second = SGD(SGDConfig(lr=0.1, momentum=0.9))
    second.load_state(first.state(), get_backend("cpu"))
    for g in grads[2:]:
        second.step({"p": resumed}, {"p": g})
    np.testing.assert_array_equal(resumed, straight)


def test_buffer_kernels_equal_numpy(rng):
    x = rng.standard_normal((5, 7)).astype(np.float32)
    acc = rng.standard_normal((5, 7)).astype(np.float32)
    ref = acc.copy()
    add_into(acc, x)
    reference.add_into(ref, x)
    np.testing.assert_array_equal(acc, ref)
    scale_into(acc, 0.5)
    np.testing.assert_array_equal(acc, ref * np.float32(0.5))
    copy_into(acc, x)
    np.testing.assert_array_equal(acc, x)


@pytest.mark.parametrize("call,match", [
    (lambda: sgd_update(np.zeros(3, np.float32), np.zeros(4, np.float32), np.zeros(3, np.float32), 0.1), "`grad`"),
    (lambda: sgd_update(np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32), -1.0), "`lr`"),
    (lambda: add_into(np.zeros(3, np.float32), np.zeros(3, np.float64)), "`x`"),
    (lambda: make_optimizer("rmsprop", 0.1), "rmsprop"),
    (lambda: LRSchedule(0.1, "cosine"), "cosine"),
    (lambda: LRSchedule(float("inf")), "learning rate"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_schedules():
    s = LRSchedule(1.0, "poly", total=12, power=0.9, warmup=2)
    assert s(0) == pytest.approx(0.5) and s(1) == pytest.approx(1.0)     # the ramp
    assert s(2) == pytest.approx(1.0) and s(7) == pytest.approx(0.5 ** 0.9) and s(12) == 0.0
    assert LRSchedule(0.3)(1000) == 0.3 and LRSchedule(0.3, warmup=3)(0) == pytest.approx(0.1)
    # the warm-up does not depend on the total (so the total may be fixed after it)
    assert [LRSchedule(1.0, "poly", total=T, warmup=4)(t) for T in (10, 99) for t in range(4)] == \
        [(t + 1) / 4 for t in range(4)] * 2


@pytest.mark.cuda
def test_cuda_sgd_and_buffer_kernels_equal_the_cpu(rng):
    from tinyseg.backend import get_backend

    cuda = get_backend("cuda")
    shape = (2, 3, 5)
    p, g, u = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    dp, dg, du = cuda.asarray(p), cuda.asarray(g), cuda.asarray(u)
    sgd_update(dp, dg, du, 0.01, 0.9, 1e-3, 0.5)
    sgd_update(p, g, u, 0.01, 0.9, 1e-3, 0.5)
    np.testing.assert_allclose(cuda.to_numpy(dp), p, rtol=1e-6)
    np.testing.assert_allclose(cuda.to_numpy(du), u, rtol=1e-6)
    add_into(dp, dg)
    scale_into(dp, 2.0)
    np.testing.assert_allclose(cuda.to_numpy(dp), (p + g) * 2, rtol=1e-6)
    copy_into(dp, dg)
    np.testing.assert_array_equal(cuda.to_numpy(dp), g)
