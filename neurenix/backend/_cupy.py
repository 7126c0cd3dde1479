"""Fused CuPy kernels: one GPU pass per parameter array for the SGD and Adam rules.

The generic kernels (:mod:`._generic`) run on CuPy too, but each operation of an
update is a separate CuPy call: about ten passes over memory and ten kernel
launches per array for Adam.  Here each rule is one ``cupy.ElementwiseKernel``,
written from the same equations in the same order of operations as the generic
kernel (scalars reach the kernel already converted to the array's dtype, as CuPy
converts Python scalars in the generic code).  The other rules run the generic
kernels.  Results agree with the generic/Cython paths to rounding: the CUDA compiler
may contract ``a * b + c`` into one fused multiply-add.

This module imports CuPy; :func:`neurenix.backend.kernels_for` loads it only for
CuPy arrays.
"""
import cupy as cp

from ._generic import GenericKernels

_SGD_BODY = """
T d = maximize ? -g : g;
if (wd != (T)0) d = d + wd * p;
p = p - lr * d;
"""

_SGD_MOMENTUM_BODY = """
T d = maximize ? -g : g;
if (wd != (T)0) d = d + wd * p;
T b = first ? d : momentum * buf + one_m_damp * d;
buf = b;
d = nesterov ? d + momentum * buf : buf;
p = p - lr * d;
"""

# m <- lerp(m, d, w) as torch.lerp (and _generic._lerp): a + w (b - a) for w < 0.5,
# else b - (b - a) (1 - w); the branch is on a scalar, the same for every element
_ADAM_BODY = """
T d = maximize ? -g : g;
T pj = p;
if (decoupled) pj = p * decay;
else if (wd != (T)0) d = d + wd * p;
m = low_w ? m + w1 * (d - m) : d - (d - m) * one_m_w1;
if (belief) {
    T r = d - m;
    v = beta2 * v + one_m_beta2 * r * r + eps;
} else {
    v = beta2 * v + one_m_beta2 * d * d;
}
%s
T denom = sqrt(vv) / bc2_sqrt + eps;
p = pj - step_size * (m / denom);
"""

_sgd = cp.ElementwiseKernel(
    "T g, T lr, T wd, bool maximize", "T p", _SGD_BODY, "neurenix_sgd")
_sgd_momentum = cp.ElementwiseKernel(
    "T g, T lr, T wd, T momentum, T one_m_damp, bool first, bool nesterov, bool maximize",
    "T p, T buf", _SGD_MOMENTUM_BODY, "neurenix_sgd_momentum")
_ADAM_IN = ("T g, T step_size, T bc2_sqrt, T decay, T wd, T w1, T one_m_w1, bool low_w, "
            "T beta2, T one_m_beta2, T eps, bool decoupled, bool belief, bool maximize")
_adam = cp.ElementwiseKernel(
    _ADAM_IN, "T p, T m, T v", _ADAM_BODY % "T vv = v;", "neurenix_adam")
_adam_amsgrad = cp.ElementwiseKernel(
    _ADAM_IN, "T p, T m, T v, T vm",
    _ADAM_BODY % "vm = (vm > v || isnan(vm)) ? vm : v;  // maximum, NaN-propagating\nT vv = vm;", "neurenix_adam_amsgrad")


class CupyKernels(GenericKernels):
    """Kernel table for CuPy arrays: fused SGD and Adam (incl. AdamW, AMSGrad,
    AdaBelief), the generic kernels for the other rules."""

    name = "cupy"

    def sgd(self, params, grads, momentum_buffers, sc, weight_decay, momentum,
            dampening, nesterov, maximize):
        for i, (p, g) in enumerate(zip(params, grads)):
            t = p.dtype.type
            lr, first = t(sc[i, 0]), bool(sc[i, 1])
            if momentum_buffers is None:
                _sgd(g, lr, t(weight_decay), bool(maximize), p)
            else:
                _sgd_momentum(g, lr, t(weight_decay), t(momentum), t(1.0 - dampening), first,
                              bool(nesterov), bool(maximize), p, momentum_buffers[i])

    def adam(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, sc, beta1,
             beta2, eps, weight_decay, decoupled, belief, maximize):
        w = 1.0 - beta1
        for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
            t = p.dtype.type
            args = (g, t(sc[i, 0]), t(sc[i, 1]), t(sc[i, 2]), t(weight_decay), t(w),
                    t(1.0 - w), w < 0.5, t(beta2), t(1.0 - beta2), t(eps), bool(decoupled),
                    bool(belief), bool(maximize), p, m, v)
            if max_exp_avg_sqs is None:
                _adam(*args)
            else:
                _adam_amsgrad(*args, max_exp_avg_sqs[i])
