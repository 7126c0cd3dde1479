# cython: language_level=3
"""Fused single-pass element-wise kernels for the first-order update rules.

Each public function updates *every* parameter of a group in one call: the
Python layer hands over lists of arrays (parameters, gradients, state buffers)
and per-array scalars (bias corrections, step sizes); the kernel collects raw
pointers once, releases the GIL and walks the elements of all arrays in fixed
chunks, optionally on several OpenMP threads.  Every element is read and
written once per step (LAMB and LARS need a reduction first, so they make two
passes), and no temporary array is allocated.

The equations are those documented by PyTorch (``torch.optim``) and by the
papers cited in :mod:`neurenix.optim`; the generic twin of each kernel, written
with Array-API calls only, lives in :mod:`neurenix.backend._generic` and is
the oracle these kernels are tested against.

Everything that reaches this module has been validated in Python (dtype,
shape, contiguity, option ranges); :class:`_Pack` re-checks the cheap
structural invariants (dtype, contiguity, sizes) so that no call can read or
write out of bounds.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt as _sqrt_d, sqrtf as _sqrt_f
from libc.stdlib cimport malloc, free
cimport openmp

from ._vec cimport fold8, nrm2sq_lanes8, nrm2sq2_lanes8, all_finite as _all_finite

cnp.import_array()


cdef inline floating sqrt(floating x) noexcept nogil:
    # single-precision sqrt for float32 (libc's sqrt would promote to double)
    if floating is float:
        return _sqrt_f(x)
    else:
        return _sqrt_d(x)

cdef extern from *:
    """
    #define NX_PREFETCH_W(p) __builtin_prefetch((const void*)(p), 1, 0)
    #define NX_PREFETCH_R(p) __builtin_prefetch((const void*)(p), 0, 0)
    """
    void NX_PREFETCH_W(const void* p) noexcept nogil
    void NX_PREFETCH_R(const void* p) noexcept nogil


cdef enum:
    LINE = 16                # elements per prefetch step (one 64-byte line of float32)
    PF = 512                # prefetch distance in elements
    CHUNK = 32768            # elements per work item
    PARALLEL_MIN = 131072    # below this many elements in total, stay on one thread

cdef int _nthreads = openmp.omp_get_max_threads()


def set_num_threads(int n):
    """Set the number of OpenMP threads the kernels use (``n >= 1``)."""
    global _nthreads
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    _nthreads = n


def get_num_threads():
    """Return the number of OpenMP threads the kernels use."""
    return _nthreads


def openmp_max_threads():
    """Return ``omp_get_max_threads()`` (the OpenMP default, honours OMP_NUM_THREADS)."""
    return openmp.omp_get_max_threads()


cdef struct PackC:
    void** ptr           # ptr[b * narr + i]: buffer b of array i (NULL when absent)
    Py_ssize_t* c_arr    # chunk -> array index
    Py_ssize_t* c_lo     # chunk -> first element
    Py_ssize_t* c_hi     # chunk -> one past the last element
    Py_ssize_t narr
    Py_ssize_t nbuf
    Py_ssize_t nchunks
    Py_ssize_t total
    int nthreads


cdef class _Pack:
    """Raw pointers of ``nbuf`` lists of ``narr`` equally sized arrays and a chunk table."""
    cdef PackC c
    cdef readonly int typenum

    def __cinit__(self, tuple buffers):
        cdef Py_ssize_t b, i, k, n, lo, nch
        cdef list first = buffers[0]
        cdef list lst
        cdef cnp.ndarray a
        self.c.ptr = NULL
        self.c.c_arr = NULL
        self.c.c_lo = NULL
        self.c.c_hi = NULL
        self.c.narr = len(first)
        self.c.nbuf = len(buffers)
        if self.c.narr == 0:
            raise ValueError("params must not be empty")
        a = <cnp.ndarray?>first[0]
        self.typenum = cnp.PyArray_TYPE(a)
        if self.typenum != cnp.NPY_FLOAT32 and self.typenum != cnp.NPY_FLOAT64:
            raise TypeError("kernels accept float32 and float64 arrays only")
        self.c.ptr = <void**>malloc(self.c.narr * self.c.nbuf * sizeof(void*))
        if self.c.ptr == NULL:
            raise MemoryError()
        nch = 0
        self.c.total = 0
        for b in range(self.c.nbuf):
            lst = buffers[b]
            if lst is None:
                for i in range(self.c.narr):
                    self.c.ptr[b * self.c.narr + i] = NULL
                continue
            if len(lst) != self.c.narr:
                raise ValueError("all buffer lists must have the same length")
            for i in range(self.c.narr):
                a = <cnp.ndarray?>lst[i]
                if cnp.PyArray_TYPE(a) != self.typenum:
                    raise TypeError("all arrays of one call must share a dtype")
                if not cnp.PyArray_IS_C_CONTIGUOUS(a):
                    raise ValueError("kernel arrays must be C-contiguous")
                n = cnp.PyArray_SIZE(a)
                if b == 0:
                    self.c.total += n
                    nch += (n + CHUNK - 1) // CHUNK
                elif n != cnp.PyArray_SIZE(<cnp.ndarray>first[i]):
                    raise ValueError("buffer sizes differ from their parameter's size")
                if b == 0 or b >= 2:
                    if not cnp.PyArray_ISWRITEABLE(a) and b != 1:
                        raise ValueError("parameter and state arrays must be writeable")
                self.c.ptr[b * self.c.narr + i] = cnp.PyArray_DATA(a)
        self.c.nchunks = nch
        nch = nch if nch > 0 else 1
        self.c.c_arr = <Py_ssize_t*>malloc(nch * sizeof(Py_ssize_t))
        self.c.c_lo = <Py_ssize_t*>malloc(nch * sizeof(Py_ssize_t))
        self.c.c_hi = <Py_ssize_t*>malloc(nch * sizeof(Py_ssize_t))
        if self.c.c_arr == NULL or self.c.c_lo == NULL or self.c.c_hi == NULL:
            raise MemoryError()
        k = 0
        for i in range(self.c.narr):
            n = cnp.PyArray_SIZE(<cnp.ndarray>first[i])
            lo = 0
            while lo < n:
                self.c.c_arr[k] = i
                self.c.c_lo[k] = lo
                self.c.c_hi[k] = lo + CHUNK if lo + CHUNK < n else n
                lo += CHUNK
                k += 1
        self.c.nthreads = _nthreads if self.c.total >= PARALLEL_MIN else 1
        if self.c.nthreads > self.c.nchunks:
            self.c.nthreads = self.c.nchunks if self.c.nchunks > 0 else 1

    def __dealloc__(self):
        free(self.c.ptr)
        free(self.c.c_arr)
        free(self.c.c_lo)
        free(self.c.c_hi)


cdef inline void* _p(PackC* pk, Py_ssize_t b, Py_ssize_t i) noexcept nogil:
    return pk.ptr[b * pk.narr + i]


cdef void _check_scalars(const double[:, ::1] sc, _Pack pk, Py_ssize_t k) except *:
    if sc.shape[0] != pk.c.narr or sc.shape[1] != k:
        raise ValueError(f"scalars must have shape ({pk.c.narr}, {k})")


cdef void _chunk_pairs_to_arrays(PackC* pk, const double* part, double* out) noexcept nogil:
    # out[2i], out[2i+1] = sums over the chunks of array i of part[2c], part[2c+1]
    cdef Py_ssize_t c, i
    for i in range(pk.narr):
        out[2 * i] = 0
        out[2 * i + 1] = 0
    for c in range(pk.nchunks):
        i = pk.c_arr[c]
        out[2 * i] += part[2 * c]
        out[2 * i + 1] += part[2 * c + 1]


# --------------------------------------------------------------------------- SGD
cdef void _sgd_range(floating* p, const floating* g, floating* buf, Py_ssize_t lo,
                     Py_ssize_t hi, floating lr, floating wd, floating mom,
                     floating one_m_damp, bint nesterov, bint maximize,
                     bint first) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating d, b
    for j in range(lo, hi):
        d = -g[j] if maximize else g[j]
        if wd != 0:
            d = d + wd * p[j]
        if buf != NULL:
            if first:
                b = d
            else:
                b = mom * buf[j] + one_m_damp * d
            buf[j] = b
            if nesterov:
                d = d + mom * b
            else:
                d = b
        p[j] = p[j] - lr * d


cdef void _sgd_run(PackC* pk, floating t, const double[:, ::1] sc, double wd, double mom,
                   double damp, bint nesterov, bint maximize) noexcept nogil:
    cdef Py_ssize_t c, i
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _sgd_range(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                   <floating*>_p(pk, 2, i), pk.c_lo[c], pk.c_hi[c],
                   <floating>sc[i, 0], <floating>wd, <floating>mom, <floating>(1.0 - damp),
                   nesterov, maximize, sc[i, 1] != 0)


def sgd(list params, list grads, object momentum_buffers, const double[:, ::1] sc,
        double weight_decay, double momentum, double dampening, bint nesterov,
        bint maximize):
    """SGD with momentum.  ``sc[i] = (lr, first)``; ``first`` marks a fresh buffer."""
    cdef _Pack pk = _Pack((params, grads, momentum_buffers))
    _check_scalars(sc, pk, 2)
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _sgd_run(&pk.c, <float>0, sc, weight_decay, momentum, dampening, nesterov, maximize)
        else:
            _sgd_run(&pk.c, <double>0, sc, weight_decay, momentum, dampening, nesterov, maximize)


# ----------------------------------------------------------------------- AdaGrad
cdef void _adagrad_range(floating* p, const floating* g, floating* s, Py_ssize_t lo,
                         Py_ssize_t hi, floating clr, floating wd, floating eps,
                         bint maximize) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating d, sj
    for j in range(lo, hi):
        d = -g[j] if maximize else g[j]
        if wd != 0:
            d = d + wd * p[j]
        sj = s[j] + d * d
        s[j] = sj
        p[j] = p[j] - clr * (d / (sqrt(sj) + eps))


cdef void _adagrad_run(PackC* pk, floating t, const double[:, ::1] sc, double wd,
                       double eps, bint maximize) noexcept nogil:
    cdef Py_ssize_t c, i
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _adagrad_range(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                       <floating*>_p(pk, 2, i), pk.c_lo[c], pk.c_hi[c],
                       <floating>sc[i, 0], <floating>wd, <floating>eps, maximize)


def adagrad(list params, list grads, list state_sums, const double[:, ::1] sc,
            double weight_decay, double eps, bint maximize):
    """AdaGrad.  ``sc[i] = (clr,)`` with ``clr = lr / (1 + (step - 1) * lr_decay)``."""
    cdef _Pack pk = _Pack((params, grads, state_sums))
    _check_scalars(sc, pk, 1)
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _adagrad_run(&pk.c, <float>0, sc, weight_decay, eps, maximize)
        else:
            _adagrad_run(&pk.c, <double>0, sc, weight_decay, eps, maximize)


# ----------------------------------------------------------------------- RMSProp
cdef inline void _rmsprop_elem(floating* p, const floating* g, floating* sq, floating* ga,
                               floating* buf, Py_ssize_t j, floating lr, floating alpha,
                               floating w, floating eps, floating wd, floating mom,
                               floating sgn, bint centered, bint has_buf,
                               bint small_w) noexcept nogil:
    # d = +-g + wd p (wd = 0 and sgn = 1 leave g unchanged)
    cdef floating d = sgn * g[j] + wd * p[j]
    cdef floating s, a, avg, b
    s = alpha * sq[j] + w * d * d
    sq[j] = s
    if centered:
        a = ga[j]
        if small_w:
            a = a + w * (d - a)
        else:
            a = d - (d - a) * (1 - w)
        ga[j] = a
        avg = sqrt(s - a * a) + eps
    else:
        avg = sqrt(s) + eps
    if has_buf:
        b = mom * buf[j] + d / avg
        buf[j] = b
        p[j] = p[j] - lr * b
    else:
        p[j] = p[j] - lr * (d / avg)


cdef void _rmsprop_range(floating* p, const floating* g, floating* sq, floating* ga,
                         floating* buf, Py_ssize_t lo, Py_ssize_t hi, floating lr,
                         floating alpha, floating w, floating eps, floating wd,
                         floating mom, bint maximize) noexcept nogil:
    # The flags are constants inside each loop below, so every loop compiles to
    # branch-free (vectorized) code.
    cdef Py_ssize_t j
    cdef floating sgn = -1 if maximize else 1
    cdef bint small = w < 0.5
    if ga == NULL and buf == NULL:
        for j in range(lo, hi):
            _rmsprop_elem(p, g, sq, ga, buf, j, lr, alpha, w, eps, wd, mom, sgn, False, False, True)
    elif ga == NULL:
        for j in range(lo, hi):
            _rmsprop_elem(p, g, sq, ga, buf, j, lr, alpha, w, eps, wd, mom, sgn, False, True, True)
    elif small and buf == NULL:
        for j in range(lo, hi):
            _rmsprop_elem(p, g, sq, ga, buf, j, lr, alpha, w, eps, wd, mom, sgn, True, False, True)
    elif small:
        for j in range(lo, hi):
            _rmsprop_elem(p, g, sq, ga, buf, j, lr, alpha, w, eps, wd, mom, sgn, True, True, True)
    else:
        for j in range(lo, hi):
            _rmsprop_elem(p, g, sq, ga, buf, j, lr, alpha, w, eps, wd, mom, sgn, True,
                          buf != NULL, False)


cdef void _rmsprop_run(PackC* pk, floating t, const double[:, ::1] sc, double alpha,
                       double eps, double wd, double mom, bint maximize) noexcept nogil:
    cdef Py_ssize_t c, i
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _rmsprop_range(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                       <floating*>_p(pk, 2, i), <floating*>_p(pk, 3, i),
                       <floating*>_p(pk, 4, i), pk.c_lo[c], pk.c_hi[c],
                       <floating>sc[i, 0], <floating>alpha, <floating>(1.0 - alpha), <floating>eps, <floating>wd,
                       <floating>mom, maximize)


def rmsprop(list params, list grads, list square_avgs, object grad_avgs,
            object momentum_buffers, const double[:, ::1] sc, double alpha, double eps,
            double weight_decay, double momentum, bint maximize):
    """RMSProp (optionally centered, with momentum).  ``sc[i] = (lr,)``."""
    cdef _Pack pk = _Pack((params, grads, square_avgs, grad_avgs, momentum_buffers))
    _check_scalars(sc, pk, 1)
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _rmsprop_run(&pk.c, <float>0, sc, alpha, eps, weight_decay, momentum, maximize)
        else:
            _rmsprop_run(&pk.c, <double>0, sc, alpha, eps, weight_decay, momentum, maximize)


# -------------------------------------------------- Adam / AdamW / AdaBelief
cdef inline floating _lerp(floating a, floating b, floating w) noexcept nogil:
    # torch.lerp: a + w (b - a) for w < 0.5, else b - (b - a)(1 - w)
    if w < 0.5:
        return a + w * (b - a)
    return b - (b - a) * (1 - w)


cdef inline void _adam_elem(floating* p, const floating* g, floating* m, floating* v,
                            floating* vmax, Py_ssize_t j, floating step_size,
                            floating bc2_sqrt, floating beta2, floating w1, floating w2,
                            floating eps, floating wd_l2, floating decay, floating sgn,
                            bint belief, bint ams, bint small_w) noexcept nogil:
    # L2 decay adds wd_l2 * p to the gradient (0 when decoupled); decoupled decay
    # multiplies p by ``decay`` (1 otherwise); ``sgn`` is -1 for maximize.
    cdef floating pj = p[j]
    cdef floating d = sgn * g[j] + wd_l2 * pj
    cdef floating mj, vj, r
    pj = pj * decay
    if small_w:
        mj = m[j] + w1 * (d - m[j])
    else:
        mj = d - (d - m[j]) * (1 - w1)
    m[j] = mj
    if belief:
        # AdaBelief: s = b2 s + (1 - b2)(g - m)^2 + eps
        r = d - mj
        vj = beta2 * v[j] + w2 * r * r + eps
    else:
        vj = beta2 * v[j] + w2 * d * d
    v[j] = vj
    if ams:
        if vmax[j] > vj:
            vj = vmax[j]
        vmax[j] = vj
    p[j] = pj - step_size * (mj / (sqrt(vj) / bc2_sqrt + eps))


cdef void _adam_range(floating* p, const floating* g, floating* m, floating* v,
                      floating* vmax, Py_ssize_t lo, Py_ssize_t hi, floating step_size,
                      floating bc2_sqrt, floating beta1, floating beta2, floating w1,
                      floating w2, floating eps, floating wd, floating decay,
                      bint decoupled, bint belief, bint maximize) noexcept nogil:
    # The flags are constants inside each loop below, so every loop compiles to
    # branch-free (vectorized) code.
    cdef Py_ssize_t j
    cdef floating sgn = -1 if maximize else 1
    cdef floating wd_l2 = 0 if decoupled else wd
    cdef bint ams = vmax != NULL
    if not decoupled:
        decay = 1
    cdef Py_ssize_t b0, b1, k
    if w1 < 0.5:
        if not belief and not ams:
            # line by line, prefetching each stream PF elements ahead (the hardware
            # prefetchers stop at 4 KiB page boundaries)
            b0 = lo
            while b0 + LINE <= hi:
                if b0 + PF < hi:
                    NX_PREFETCH_R(&g[b0 + PF])
                    NX_PREFETCH_W(&p[b0 + PF])
                    NX_PREFETCH_W(&m[b0 + PF])
                    NX_PREFETCH_W(&v[b0 + PF])
                for j in range(b0, b0 + LINE):
                    _adam_elem(p, g, m, v, vmax, j, step_size, bc2_sqrt, beta2, w1, w2, eps,
                               wd_l2, decay, sgn, False, False, True)
                b0 += LINE
            for j in range(b0, hi):
                _adam_elem(p, g, m, v, vmax, j, step_size, bc2_sqrt, beta2, w1, w2, eps,
                           wd_l2, decay, sgn, False, False, True)
        elif not belief:
            for j in range(lo, hi):
                _adam_elem(p, g, m, v, vmax, j, step_size, bc2_sqrt, beta2, w1, w2, eps,
                           wd_l2, decay, sgn, False, True, True)
        elif not ams:
            for j in range(lo, hi):
                _adam_elem(p, g, m, v, vmax, j, step_size, bc2_sqrt, beta2, w1, w2, eps,
                           wd_l2, decay, sgn, True, False, True)
        else:
            for j in range(lo, hi):
                _adam_elem(p, g, m, v, vmax, j, step_size, bc2_sqrt, beta2, w1, w2, eps,
                           wd_l2, decay, sgn, True, True, True)
    else:
        for j in range(lo, hi):
            _adam_elem(p, g, m, v, vmax, j, step_size, bc2_sqrt, beta2, w1, w2, eps,
                       wd_l2, decay, sgn, belief, ams, False)


cdef void _adam_run(PackC* pk, floating t, const double[:, ::1] sc, double beta1,
                    double beta2, double eps, double wd, bint decoupled, bint belief,
                    bint maximize) noexcept nogil:
    cdef Py_ssize_t c, i
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _adam_range(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                    <floating*>_p(pk, 2, i), <floating*>_p(pk, 3, i),
                    <floating*>_p(pk, 4, i), pk.c_lo[c], pk.c_hi[c],
                    <floating>sc[i, 0], <floating>sc[i, 1], <floating>beta1,
                    <floating>beta2, <floating>(1.0 - beta1), <floating>(1.0 - beta2), <floating>eps, <floating>wd, <floating>sc[i, 2],
                    decoupled, belief, maximize)


def adam(list params, list grads, list exp_avgs, list exp_avg_sqs, object max_exp_avg_sqs,
         const double[:, ::1] sc, double beta1, double beta2, double eps,
         double weight_decay, bint decoupled, bint belief, bint maximize):
    """Adam, AdamW (``decoupled``) and AdaBelief (``belief``); AMSGrad when
    ``max_exp_avg_sqs`` is given.  ``sc[i] = (lr / bc1, sqrt(bc2), 1 - lr * wd)``."""
    cdef _Pack pk = _Pack((params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs))
    _check_scalars(sc, pk, 3)
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _adam_run(&pk.c, <float>0, sc, beta1, beta2, eps, weight_decay, decoupled,
                      belief, maximize)
        else:
            _adam_run(&pk.c, <double>0, sc, beta1, beta2, eps, weight_decay, decoupled,
                      belief, maximize)


# ------------------------------------------------------------------------- NAdam
cdef void _nadam_range(floating* p, const floating* g, floating* m, floating* v,
                       Py_ssize_t lo, Py_ssize_t hi, floating bc2, floating c_grad,
                       floating c_m, floating beta1, floating beta2, floating w1, floating w2, floating eps,
                       floating wd, floating decay, bint decoupled,
                       bint maximize) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating d, pj, mj, vj, denom
    for j in range(lo, hi):
        d = -g[j] if maximize else g[j]
        pj = p[j]
        if decoupled:
            pj = pj * decay
        elif wd != 0:
            d = d + wd * pj
        mj = _lerp(m[j], d, w1)
        m[j] = mj
        vj = beta2 * v[j] + w2 * d * d
        v[j] = vj
        denom = sqrt(vj / bc2) + eps
        pj = pj - c_grad * (d / denom)
        p[j] = pj - c_m * (mj / denom)


cdef void _nadam_run(PackC* pk, floating t, const double[:, ::1] sc, double beta1,
                     double beta2, double eps, double wd, bint decoupled,
                     bint maximize) noexcept nogil:
    cdef Py_ssize_t c, i
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _nadam_range(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                     <floating*>_p(pk, 2, i), <floating*>_p(pk, 3, i),
                     pk.c_lo[c], pk.c_hi[c], <floating>sc[i, 0], <floating>sc[i, 1],
                     <floating>sc[i, 2], <floating>beta1, <floating>beta2, <floating>(1.0 - beta1), <floating>(1.0 - beta2), <floating>eps,
                     <floating>wd, <floating>sc[i, 3], decoupled, maximize)


def nadam(list params, list grads, list exp_avgs, list exp_avg_sqs, const double[:, ::1] sc,
          double beta1, double beta2, double eps, double weight_decay, bint decoupled,
          bint maximize):
    """NAdam.  ``sc[i] = (bc2, lr (1 - mu) / (1 - prod mu), lr mu' / (1 - prod mu'), 1 - lr wd)``."""
    cdef _Pack pk = _Pack((params, grads, exp_avgs, exp_avg_sqs))
    _check_scalars(sc, pk, 4)
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _nadam_run(&pk.c, <float>0, sc, beta1, beta2, eps, weight_decay, decoupled, maximize)
        else:
            _nadam_run(&pk.c, <double>0, sc, beta1, beta2, eps, weight_decay, decoupled, maximize)


# ------------------------------------------------------------------------- RAdam
cdef void _radam_range(floating* p, const floating* g, floating* m, floating* v,
                       Py_ssize_t lo, Py_ssize_t hi, floating lr, floating bc1,
                       floating bc2_sqrt, floating rect, bint rectify, floating beta1,
                       floating beta2, floating w1, floating w2, floating eps, floating wd, floating decay,
                       bint decoupled, bint maximize) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating d, pj, mj, vj, u
    for j in range(lo, hi):
        d = -g[j] if maximize else g[j]
        pj = p[j]
        if decoupled:
            pj = pj * decay
        elif wd != 0:
            d = d + wd * pj
        mj = _lerp(m[j], d, w1)
        m[j] = mj
        vj = beta2 * v[j] + w2 * d * d
        v[j] = vj
        u = (mj / bc1) * lr
        if rectify:
            u = u * (bc2_sqrt / (sqrt(vj) + eps)) * rect
        p[j] = pj - u


cdef void _radam_run(PackC* pk, floating t, const double[:, ::1] sc, double beta1,
                     double beta2, double eps, double wd, bint decoupled,
                     bint maximize) noexcept nogil:
    cdef Py_ssize_t c, i
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _radam_range(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                     <floating*>_p(pk, 2, i), <floating*>_p(pk, 3, i),
                     pk.c_lo[c], pk.c_hi[c], <floating>sc[i, 0], <floating>sc[i, 1],
                     <floating>sc[i, 2], <floating>sc[i, 3], sc[i, 4] != 0,
                     <floating>beta1, <floating>beta2, <floating>(1.0 - beta1), <floating>(1.0 - beta2), <floating>eps, <floating>wd,
                     <floating>sc[i, 5], decoupled, maximize)


def radam(list params, list grads, list exp_avgs, list exp_avg_sqs, const double[:, ::1] sc,
          double beta1, double beta2, double eps, double weight_decay, bint decoupled,
          bint maximize):
    """RAdam.  ``sc[i] = (lr, bc1, sqrt(bc2), rect, rho_t > 5, 1 - lr wd)``."""
    cdef _Pack pk = _Pack((params, grads, exp_avgs, exp_avg_sqs))
    _check_scalars(sc, pk, 6)
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _radam_run(&pk.c, <float>0, sc, beta1, beta2, eps, weight_decay, decoupled, maximize)
        else:
            _radam_run(&pk.c, <double>0, sc, beta1, beta2, eps, weight_decay, decoupled, maximize)


# -------------------------------------------------------------------------- LAMB
cdef inline floating _lamb_r(floating mj, floating vj, floating pj, floating inv_bc1,
                             floating bc2_sqrt, floating eps, floating wd) noexcept nogil:
    # r = m_hat / (sqrt(v_hat) + eps) + wd * p
    return (mj * inv_bc1) / (sqrt(vj) / bc2_sqrt + eps) + wd * pj


cdef void _lamb_pass1(floating* p, const floating* g, floating* m, floating* v,
                      Py_ssize_t lo, Py_ssize_t hi, floating inv_bc1, floating bc2_sqrt,
                      floating beta1, floating beta2, floating w1, floating w2, floating eps,
                      floating wd, double* out) noexcept nogil:
    # Moments update plus the sums of squares of p and r, accumulated in float64 in
    # eight interleaved partial sums (a fixed order, so the result does not depend
    # on the vector width or thread count, and the loop vectorizes).
    cdef Py_ssize_t j, k, nb
    cdef floating d, mj, vj, r
    cdef double sp[8]
    cdef double sr[8]
    cdef double pj
    cdef bint small = w1 < 0.5
    for k in range(8):
        sp[k] = 0
        sr[k] = 0
    nb = lo + ((hi - lo) // 8) * 8
    j = lo
    while j < nb:
        for k in range(8):
            d = g[j + k]
            mj = m[j + k] + w1 * (d - m[j + k]) if small else _lerp(m[j + k], d, w1)
            m[j + k] = mj
            vj = beta2 * v[j + k] + w2 * d * d
            v[j + k] = vj
            r = _lamb_r(mj, vj, p[j + k], inv_bc1, bc2_sqrt, eps, wd)
            pj = p[j + k]
            sp[k] += pj * pj
            sr[k] += <double>r * <double>r
        j += 8
    for j in range(nb, hi):
        d = g[j]
        mj = _lerp(m[j], d, w1)
        m[j] = mj
        vj = beta2 * v[j] + w2 * d * d
        v[j] = vj
        r = _lamb_r(mj, vj, p[j], inv_bc1, bc2_sqrt, eps, wd)
        sp[0] += <double>p[j] * <double>p[j]
        sr[0] += <double>r * <double>r
    out[0] = fold8(sp)
    out[1] = fold8(sr)


cdef void _lamb_pass2(floating* p, const floating* m, const floating* v, Py_ssize_t lo,
                      Py_ssize_t hi, floating scale, floating inv_bc1, floating bc2_sqrt,
                      floating eps, floating wd) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(lo, hi):
        p[j] = p[j] - scale * _lamb_r(m[j], v[j], p[j], inv_bc1, bc2_sqrt, eps, wd)


cdef void _lamb_run(PackC* pk, floating t, const double[:, ::1] sc, double beta1,
                    double beta2, double eps, double wd, double* part,
                    double* trust) noexcept nogil:
    cdef Py_ssize_t c, i
    cdef double np_, nr
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _lamb_pass1(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                    <floating*>_p(pk, 2, i), <floating*>_p(pk, 3, i),
                    pk.c_lo[c], pk.c_hi[c], <floating>sc[i, 1], <floating>sc[i, 2],
                    <floating>beta1, <floating>beta2, <floating>(1.0 - beta1), <floating>(1.0 - beta2), <floating>eps, <floating>wd,
                    &part[2 * c])
    _chunk_pairs_to_arrays(pk, part, trust)
    for i in range(pk.narr):
        np_ = _sqrt_d(trust[2 * i])
        nr = _sqrt_d(trust[2 * i + 1])
        trust[2 * i] = np_ / nr if (np_ > 0 and nr > 0) else 1.0
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _lamb_pass2(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 2, i),
                    <const floating*>_p(pk, 3, i), pk.c_lo[c], pk.c_hi[c],
                    <floating>(sc[i, 0] * trust[2 * i]), <floating>sc[i, 1],
                    <floating>sc[i, 2], <floating>eps, <floating>wd)


def lamb(list params, list grads, list exp_avgs, list exp_avg_sqs, const double[:, ::1] sc,
         double beta1, double beta2, double eps, double weight_decay):
    """LAMB (two passes: moments + norms, then the trust-scaled update).

    ``sc[i] = (lr, 1 / bc1, sqrt(bc2))``.  Returns the per-array trust ratios.
    """
    cdef _Pack pk = _Pack((params, grads, exp_avgs, exp_avg_sqs))
    _check_scalars(sc, pk, 3)
    cdef cnp.ndarray part = cnp.PyArray_ZEROS(1, [2 * max(pk.c.nchunks, 1)], cnp.NPY_FLOAT64, 0)
    cdef cnp.ndarray trust = cnp.PyArray_ZEROS(1, [2 * pk.c.narr], cnp.NPY_FLOAT64, 0)
    cdef double* pp = <double*>cnp.PyArray_DATA(part)
    cdef double* tp = <double*>cnp.PyArray_DATA(trust)
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _lamb_run(&pk.c, <float>0, sc, beta1, beta2, eps, weight_decay, pp, tp)
        else:
            _lamb_run(&pk.c, <double>0, sc, beta1, beta2, eps, weight_decay, pp, tp)
    return trust[::2].copy()


# -------------------------------------------------------------------------- LARS
cdef void _lars_range(floating* p, const floating* g, floating* buf, Py_ssize_t lo,
                      Py_ssize_t hi, floating lr, floating trust, floating wd,
                      floating mom) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating d, b
    for j in range(lo, hi):
        d = trust * (g[j] + wd * p[j])
        if buf != NULL:
            b = mom * buf[j] + d
            buf[j] = b
            d = b
        p[j] = p[j] - lr * d


cdef void _lars_run(PackC* pk, floating t, const double[:, ::1] sc, double wd, double mom,
                    double tc, double eps, double* part, double* trust) noexcept nogil:
    cdef Py_ssize_t c, i
    cdef double npn, ngn
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        nrm2sq2_lanes8(<const floating*>_p(pk, 0, i) + pk.c_lo[c],
                       <const floating*>_p(pk, 1, i) + pk.c_lo[c], pk.c_hi[c] - pk.c_lo[c],
                       &part[2 * c])
    _chunk_pairs_to_arrays(pk, part, trust)
    for i in range(pk.narr):
        npn = _sqrt_d(trust[2 * i])
        ngn = _sqrt_d(trust[2 * i + 1])
        if npn > 0 and ngn > 0:
            trust[2 * i] = tc * npn / (ngn + wd * npn + eps)
        else:
            trust[2 * i] = 1.0
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _lars_range(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                    <floating*>_p(pk, 2, i), pk.c_lo[c], pk.c_hi[c],
                    <floating>sc[i, 0], <floating>trust[2 * i], <floating>wd,
                    <floating>mom)


def lars(list params, list grads, object momentum_buffers, const double[:, ::1] sc,
         double weight_decay, double momentum, double trust_coefficient, double eps):
    """LARS (two passes: norms, then the trust-scaled momentum update).

    ``sc[i] = (lr,)``.  Returns the per-array local learning rates (trust ratios).
    """
    cdef _Pack pk = _Pack((params, grads, momentum_buffers))
    _check_scalars(sc, pk, 1)
    cdef cnp.ndarray part = cnp.PyArray_ZEROS(1, [2 * max(pk.c.nchunks, 1)], cnp.NPY_FLOAT64, 0)
    cdef cnp.ndarray trust = cnp.PyArray_ZEROS(1, [2 * pk.c.narr], cnp.NPY_FLOAT64, 0)
    cdef double* pp = <double*>cnp.PyArray_DATA(part)
    cdef double* tp = <double*>cnp.PyArray_DATA(trust)
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _lars_run(&pk.c, <float>0, sc, weight_decay, momentum, trust_coefficient, eps, pp, tp)
        else:
            _lars_run(&pk.c, <double>0, sc, weight_decay, momentum, trust_coefficient, eps, pp, tp)
    return trust[::2].copy()


# ----------------------------------------------------------------- gradient tools
cdef bint _finite_run(PackC* pk, floating t) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(pk.nchunks):
        if not _all_finite(<const floating*>_p(pk, 0, pk.c_arr[c]) + pk.c_lo[c],
                           pk.c_hi[c] - pk.c_lo[c]):
            return False
    return True


def all_finite(list arrays):
    """True when every element of every (C-contiguous, float) array is finite."""
    cdef _Pack pk = _Pack((arrays,))
    cdef bint ok
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            ok = _finite_run(&pk.c, <float>0)
        else:
            ok = _finite_run(&pk.c, <double>0)
    return bool(ok)


cdef void _sumsq_run(PackC* pk, floating t, double* part) noexcept nogil:
    cdef Py_ssize_t c
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        part[c] = nrm2sq_lanes8(<const floating*>_p(pk, 0, pk.c_arr[c]) + pk.c_lo[c],
                                pk.c_hi[c] - pk.c_lo[c])


def sum_squares(list arrays):
    """Per-array sum of squares (accumulated in float64), as a float64 array."""
    cdef _Pack pk = _Pack((arrays,))
    cdef cnp.ndarray part = cnp.PyArray_ZEROS(1, [max(pk.c.nchunks, 1)], cnp.NPY_FLOAT64, 0)
    cdef cnp.ndarray out = cnp.PyArray_ZEROS(1, [pk.c.narr], cnp.NPY_FLOAT64, 0)
    cdef double* pp = <double*>cnp.PyArray_DATA(part)
    cdef double* op = <double*>cnp.PyArray_DATA(out)
    cdef Py_ssize_t c
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _sumsq_run(&pk.c, <float>0, pp)
        else:
            _sumsq_run(&pk.c, <double>0, pp)
        for c in range(pk.c.nchunks):
            op[pk.c.c_arr[c]] += pp[c]
    return out


# ------------------------------------------------------- memory-bound probe
cdef void _probe_range(floating* p, const floating* g, floating* m, floating* v,
                       Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating d
    for j in range(lo, hi):
        d = g[j]
        m[j] = m[j] + d
        v[j] = v[j] + d
        p[j] = p[j] + d


cdef void _probe_run(PackC* pk, floating t) noexcept nogil:
    cdef Py_ssize_t c, i
    for c in prange(pk.nchunks, schedule="static", num_threads=pk.nthreads):
        i = pk.c_arr[c]
        _probe_range(<floating*>_p(pk, 0, i), <const floating*>_p(pk, 1, i),
                     <floating*>_p(pk, 2, i), <floating*>_p(pk, 3, i), pk.c_lo[c], pk.c_hi[c])


def memory_probe(list params, list grads, list exp_avgs, list exp_avg_sqs):
    """Benchmark helper: the memory traffic of one Adam step (read 4 arrays, write 3,
    in place) with trivial arithmetic, on the same chunking and threads as the
    kernels.  Its time is the single-pass memory bound an update can reach."""
    cdef _Pack pk = _Pack((params, grads, exp_avgs, exp_avg_sqs))
    with nogil:
        if pk.typenum == cnp.NPY_FLOAT32:
            _probe_run(&pk.c, <float>0)
        else:
            _probe_run(&pk.c, <double>0)
