"""Fused CuPy kernels: one GPU pass for the SGD and Adam rules.

The generic kernels (:mod:`._generic`) run on CuPy too, but each operation of an
update is a separate CuPy call: about ten passes over memory and ten kernel
launches per array for Adam.  Here SGD is one ``cupy.ElementwiseKernel`` per array,
and Adam (with AdamW, AMSGrad, AdaBelief) one launch for all the contiguous arrays of
a parameter group of four or more arrays (a ``RawKernel`` over a table of array
pointers, as torch's ``fused=True``); fewer or non-contiguous arrays take one
``ElementwiseKernel`` per array, where uploading the table would cost more than the
launches it saves.  Each
is written from the same equations in the same order of operations as the generic
kernel (scalars reach the kernel already converted to the array's dtype, as CuPy
converts Python scalars in the generic code).  The other rules run the generic
kernels.  Results agree with the generic/Cython paths to rounding: the CUDA compiler
may contract ``a * b + c`` into one fused multiply-add.

This module imports CuPy; :func:`neurenix.backend.kernels_for` loads it only for
CuPy arrays.
"""
import re

import numpy as np
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


# ---------------------------------------------------------------------------
# Multi-array Adam: one launch for every array of a parameter group (as torch's
# fused=True).  Each block updates one CHUNK of one array; a table of (array,
# chunk) pairs maps blocks to work, and a per-step table holds each array's
# pointers, size and scalars (one host-to-device copy per step).
# ---------------------------------------------------------------------------
_CHUNK = 4096           # elements per block: enough blocks to fill the GPU
_MT_MIN_ARRAYS = 4      # fewer arrays: per-array kernels (no table upload)
_MT_SRC = r"""
extern "C" __global__ void neurenix_adam_mt_T(
        const long long* meta, const int* blocks, T wd, T w1, T one_m_w1, int low_w,
        T beta2, T one_m_beta2, T eps, int decoupled, int belief, int maximize)
{
    const int a = blocks[2 * blockIdx.x];
    const long long* e = meta + 9 * (long long)a;
    T* p = (T*)e[0];
    const T* g = (const T*)e[1];
    T* m = (T*)e[2];
    T* v = (T*)e[3];
    T* vm = (T*)e[4];
    const long long n = e[5];
    const double* s = (const double*)(e + 6);
    const T step_size = (T)s[0], bc2_sqrt = (T)s[1], decay = (T)s[2];
    const long long start = (long long)blocks[2 * blockIdx.x + 1] * CHUNK;
    const long long end = start + CHUNK < n ? start + CHUNK : n;
    for (long long i = start + threadIdx.x; i < end; i += blockDim.x) {
        const T gi = g[i];
        const T pi = p[i];
        T d = maximize ? -gi : gi;
        T pj = pi;
        if (decoupled) pj = pi * decay;
        else if (wd != (T)0) d = d + wd * pi;
        T mi = m[i];
        mi = low_w ? mi + w1 * (d - mi) : d - (d - mi) * one_m_w1;
        m[i] = mi;
        T vi = v[i];
        if (belief) {
            const T r = d - mi;
            vi = beta2 * vi + one_m_beta2 * r * r + eps;
        } else {
            vi = beta2 * vi + one_m_beta2 * d * d;
        }
        v[i] = vi;
        T vv = vi;
        if (vm != 0) {
            T x = vm[i];
            x = (x > vi || isnan(x)) ? x : vi;
            vm[i] = x;
            vv = x;
        }
        const T denom = sqrt(vv) / bc2_sqrt + eps;
        p[i] = pj - step_size * (mi / denom);
    }
}
"""
_mt_kernels = {}
_block_tables = {}


def _mt_kernel(dtype):
    name = dtype.name                           # "float32" / "float64"
    k = _mt_kernels.get(name)
    if k is None:
        ctype = "float" if name == "float32" else "double"
        src = f"#define CHUNK {_CHUNK}\n" + re.sub(
            r"\bT\b", ctype, _MT_SRC.replace("neurenix_adam_mt_T", f"neurenix_adam_mt_{name}"))
        k = _mt_kernels[name] = cp.RawKernel(src, f"neurenix_adam_mt_{name}")
    return k


def _block_table(sizes):
    """Device table of (array index, chunk index) per block, cached by sizes."""
    t = _block_tables.get(sizes)
    if t is None:
        rows = [(a, c) for a, n in enumerate(sizes) for c in range(-(-n // _CHUNK))]
        if len(_block_tables) > 64:
            _block_tables.clear()
        t = _block_tables[sizes] = (cp.asarray(np.array(rows, dtype=np.int32).reshape(-1, 2)),
                                    len(rows))
    return t


def _contiguous(arrays):
    return all(x.flags.c_contiguous for x in arrays)


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
        vms = max_exp_avg_sqs if max_exp_avg_sqs is not None else [None] * len(params)
        if len(params) >= _MT_MIN_ARRAYS and _contiguous(params) and _contiguous(grads) \
                and _contiguous(exp_avgs) \
                and _contiguous(exp_avg_sqs) and _contiguous(x for x in vms if x is not None):
            sizes = tuple(int(p.size) for p in params)
            blocks, nblocks = _block_table(sizes)
            if nblocks == 0:
                return
            meta = np.empty((len(params), 9), dtype=np.int64)
            for i, (p, g, m, v, vm) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, vms)):
                meta[i, :5] = (p.data.ptr, g.data.ptr, m.data.ptr, v.data.ptr,
                               0 if vm is None else vm.data.ptr)
            meta[:, 5] = sizes
            meta[:, 6:9] = np.ascontiguousarray(sc[:, :3], dtype=np.float64).view(np.int64)
            t = params[0].dtype.type
            _mt_kernel(params[0].dtype)(
                (nblocks,), (256,),
                (cp.asarray(meta), blocks, t(weight_decay), t(w), t(1.0 - w), np.int32(w < 0.5),
                 t(beta2), t(1.0 - beta2), t(eps), np.int32(bool(decoupled)),
                 np.int32(bool(belief)), np.int32(bool(maximize))))
            return
        for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
            t = p.dtype.type
            args = (g, t(sc[i, 0]), t(sc[i, 1]), t(sc[i, 2]), t(weight_decay), t(w),
                    t(1.0 - w), w < 0.5, t(beta2), t(1.0 - beta2), t(eps), bool(decoupled),
                    bool(belief), bool(maximize), p, m, v)
            if vms[i] is None:
                _adam(*args)
            else:
                _adam_amsgrad(*args, vms[i])
