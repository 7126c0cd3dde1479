"""Gradient compressors with one protocol, and error feedback.

A compressor maps a flat gradient ``x`` (float32/float64, 1-D) to a payload
and back:

- ``compress(x, key=0, layout=None) -> (payload, ctx)``: ``payload`` is a
  contiguous 1-D array (what travels); ``ctx`` holds what ``decompress``
  needs and is the same on every rank (shape, dtype, shared random indices).
- ``decompress(payload, ctx) -> x_hat``: a new flat array of ``x``'s dtype.
- ``summable``: True when payloads of different ranks can be added
  element-wise and decompressed once (``decompress`` is linear and ``ctx``
  is shared): they are summed by ``Allreduce`` (or by
  :func:`~neurenix.distributed.collectives.ring_allreduce` with
  :meth:`Compressor.combine` when MPI has no operation for the payload's
  dtype).  Otherwise payloads are exchanged with ``Allgather`` and every rank
  decompresses and adds them locally.
- ``reduce(x, ops, key, layout) -> sum over ranks of decompress(compress(x_r))``
  is what :class:`~neurenix.distributed.DistributedOptimizer` calls; PowerSGD
  overrides it (its two all-reduces are interleaved with the compression).

``key`` names the bucket (per-bucket state: random streams, warm-start
factors, residuals); ``layout`` lists ``(offset, shape)`` of the tensors packed
in ``x`` (PowerSGD compresses each matrix on its own).

References
----------
- FP16/BF16: casting, as Horovod's ``Compression.fp16``; bfloat16 rounding to
  nearest even (Kalamkar et al. 2019, "A study of BFLOAT16 for deep learning
  training", arXiv:1905.12322).
- TopK / RandomK: Stich, Cordonnier & Jaggi 2018, "Sparsified SGD with memory",
  NeurIPS.
- QSGD: Alistarh et al. 2017, "QSGD: communication-efficient SGD via gradient
  quantization and encoding", NeurIPS.
- signSGD: Bernstein et al. 2018, "signSGD: compressed optimisation for
  non-convex problems", ICML; scaled sign ``||x||_1 / d * sign(x)`` and error
  feedback: Karimireddy et al. 2019, "Error feedback fixes SignSGD and other
  gradient compression schemes", ICML.
- PowerSGD: Vogels, Karimireddy & Jaggi 2019, "PowerSGD: practical low-rank
  gradient compression for distributed optimization", NeurIPS.
"""
import math

import numpy as np

from ._comm import get_comm, mpi, mpi_dtype_ok, CommStats

__all__ = [
    "Compressor", "NoCompression", "FP16", "BF16", "TopK", "RandomK", "QSGD", "SignSGD",
    "PowerSGD", "ErrorFeedback", "CommOps",
]


def _check_ratio(ratio):
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
    return float(ratio)


def _count_k(ratio, n):
    """Entries kept by a sparsifier: ``ceil(ratio * n)``, at least 1, at most ``n``."""
    return max(1, min(n, int(math.ceil(ratio * n))))


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return None if seed is None else int(seed)


def _check_x(x):
    if not isinstance(x, np.ndarray) or x.ndim != 1 or x.dtype not in (np.float32, np.float64):
        raise TypeError("x must be a 1-D float32 or float64 numpy array, got "
                        f"{type(x).__name__} {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}")
    return np.ascontiguousarray(x)


def _bytes(*arrays):
    """Concatenate the raw bytes of arrays into one uint8 payload."""
    out = np.empty(sum(a.nbytes for a in arrays), dtype=np.uint8)
    pos = 0
    for a in arrays:
        out[pos:pos + a.nbytes] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        pos += a.nbytes
    return out


def _split(payload, specs):
    """Inverse of :func:`_bytes`: views of ``payload`` as ``[(dtype, count), ...]``."""
    out, pos = [], 0
    for dt, n in specs:
        dt = np.dtype(dt)
        out.append(payload[pos:pos + n * dt.itemsize].view(dt))
        pos += n * dt.itemsize
    return out


# ------------------------------------------------------------------ CommOps
class CommOps:
    """The two exchanges a compressor needs, on one communicator, with accounting.

    Parameters
    ----------
    comm : communicator, optional
    stats : CommStats, optional
    """

    def __init__(self, comm=None, stats=None):
        self.comm = get_comm(comm)
        self.stats = stats if stats is not None else CommStats()
        self.size = self.comm.Get_size()
        self.rank = self.comm.Get_rank()

    def allreduce_sum(self, payload, combine=None):
        """Sum ``payload`` over ranks in place: ``Allreduce`` if MPI can, else a ring."""
        from .collectives import ring_allreduce
        if self.size == 1:
            self.stats.collective("Allreduce", payload.nbytes, 1)
            return payload
        if combine is None and mpi_dtype_ok(payload.dtype):
            MPI = mpi()
            self.comm.Allreduce(MPI.IN_PLACE, payload, op=MPI.SUM)
            self.stats.collective("Allreduce", payload.nbytes, self.size)
        else:
            ring_allreduce(payload, self.comm, combine=combine, stats=self.stats)
        return payload

    def allgather(self, payload):
        """Every rank's ``payload`` (equal sizes), as rows of a ``(size, n)`` array."""
        out = np.empty((self.size, payload.shape[0]), dtype=payload.dtype)
        if self.size == 1:
            out[0] = payload
        else:
            self.comm.Allgather(payload, out)
        self.stats.collective("Allgather", out.nbytes, self.size)
        return out


# --------------------------------------------------------------- base class
class Compressor:
    """Base class: the protocol (see the module docstring)."""

    summable = False

    def setup(self, rank, size, shared_seed):
        """Called once by the distributed optimizer: this rank, the world size and
        a seed that is the same on every rank."""
        return None

    def compress(self, x, key=0, layout=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def decompress(self, payload, ctx):  # pragma: no cover - abstract
        raise NotImplementedError

    def combine(self, acc, incoming):
        """Fold a summable payload ``incoming`` into ``acc`` in place."""
        np.add(acc, incoming, out=acc)

    @property
    def _mpi_combine(self):
        return type(self).combine is Compressor.combine

    def reduce_payload(self, payload, ctx, ops):
        """Sum over ranks of ``decompress(payload_r, ctx)``."""
        if self.summable:
            ops.allreduce_sum(payload, combine=None if self._mpi_combine else self.combine)
            return self.decompress(payload, ctx)
        parts = ops.allgather(payload)
        out = self.decompress(parts[0], ctx)
        for row in parts[1:]:
            self._accumulate(out, row, ctx)
        return out

    def _accumulate(self, out, payload, ctx):
        out += self.decompress(payload, ctx)

    def reduce(self, x, ops, key=0, layout=None):
        """Sum over all ranks of the decompressed compression of each rank's ``x``."""
        payload, ctx = self.compress(x, key, layout)
        return self.reduce_payload(payload, ctx, ops)

    def payload_nbytes(self, n, dtype):
        """Bytes of the payload for an ``n``-element ``dtype`` input (for the benchmark)."""
        x = np.zeros(n, dtype=dtype)
        x[0] = 1
        return self.compress(x, key=-1)[0].nbytes

    def __repr__(self):
        return f"{type(self).__name__}()"


class NoCompression(Compressor):
    """The identity: the gradient itself is the payload (``Allreduce``)."""

    summable = True

    def compress(self, x, key=0, layout=None):
        x = _check_x(x)
        return x.copy(), None

    def decompress(self, payload, ctx):
        return payload.copy()


class FP16(Compressor):
    """Cast to IEEE half precision; sums travel around a ring in float16.

    MPI has no ``float16`` sum, so payloads are reduced by
    :func:`~neurenix.distributed.collectives.ring_allreduce` (every partial sum
    is rounded to float16, as in Horovod's fp16 compression).  Values beyond
    65504 overflow to ``inf``.
    """

    summable = True

    def compress(self, x, key=0, layout=None):
        x = _check_x(x)
        return x.astype(np.float16), x.dtype

    def decompress(self, payload, ctx):
        return payload.astype(ctx)


def _to_bf16(x32):
    u = np.ascontiguousarray(x32, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = np.isnan(x32)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16          # round to nearest, ties to even
    out = u.astype(np.uint16)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def _from_bf16(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


class BF16(Compressor):
    """Round to bfloat16 (8-bit exponent, 7-bit mantissa), stored as ``uint16``.

    Rounding is to nearest, ties to even, NaN kept (Kalamkar et al. 2019).
    Sums travel around a ring: each hop decodes to float32, adds and rounds
    back to bfloat16.
    """

    summable = True

    def compress(self, x, key=0, layout=None):
        x = _check_x(x)
        return _to_bf16(x.astype(np.float32, copy=False)), x.dtype

    def decompress(self, payload, ctx):
        return _from_bf16(payload).astype(ctx)

    def combine(self, acc, incoming):
        acc[...] = _to_bf16(_from_bf16(acc) + _from_bf16(incoming))


def _index_dtype(n):
    return np.int32 if n < 2 ** 31 else np.int64


class TopK(Compressor):
    """Keep the ``ceil(ratio * n)`` entries of largest magnitude (values + indices).

    Biased (a contraction: ``||C(x) - x||^2 <= (1 - k/n) ||x||^2``); use it
    inside :class:`ErrorFeedback` (Stich et al. 2018).  Indices differ between
    ranks, so payloads are all-gathered.
    """

    summable = False

    def __init__(self, ratio=0.01):
        self.ratio = _check_ratio(ratio)

    def compress(self, x, key=0, layout=None):
        x = _check_x(x)
        n = x.shape[0]
        k = _count_k(self.ratio, n)
        if k == n:
            idx = np.arange(n)
        else:
            idx = np.argpartition(np.abs(x), n - k)[n - k:]
            idx.sort()
        itype = _index_dtype(n)
        return _bytes(x[idx], idx.astype(itype)), (n, k, x.dtype, itype)

    def decompress(self, payload, ctx):
        n, k, dt, itype = ctx
        vals, idx = _split(payload, [(dt, k), (itype, k)])
        out = np.zeros(n, dtype=dt)
        out[idx] = vals
        return out

    def _accumulate(self, out, payload, ctx):
        n, k, dt, itype = ctx
        vals, idx = _split(payload, [(dt, k), (itype, k)])
        out[idx] += vals          # indices are unique within one payload

    def __repr__(self):
        return f"TopK(ratio={self.ratio!r})"


class RandomK(Compressor):
    """Keep ``ceil(ratio * n)`` entries at random positions shared by all ranks.

    The positions come from a stream seeded by ``seed`` (or a seed broadcast
    by the distributed optimizer), the bucket and the call count, so every
    rank picks the same ones and only the values travel: payloads are
    summable (``Allreduce``).  ``unbiased=True`` scales by ``n / k`` so that
    ``E[C(x)] = x``; ``unbiased=False`` is the contraction to use inside
    :class:`ErrorFeedback` (Stich et al. 2018).
    """

    summable = True

    def __init__(self, ratio=0.01, seed=None, unbiased=True):
        self.ratio = _check_ratio(ratio)
        self.seed = _check_seed(seed)
        self.unbiased = bool(unbiased)
        self._shared = 0
        self._count = {}

    def setup(self, rank, size, shared_seed):
        self._shared = int(shared_seed)

    def compress(self, x, key=0, layout=None):
        x = _check_x(x)
        n = x.shape[0]
        k = _count_k(self.ratio, n)
        c = self._count.get(key, 0)
        self._count[key] = c + 1
        seed = self.seed if self.seed is not None else self._shared
        rng = np.random.default_rng([seed, int(key) & 0x7FFFFFFF, c])
        idx = np.sort(rng.choice(n, size=k, replace=False)) if k < n else np.arange(n)
        return x[idx], (n, idx, x.dtype)

    def decompress(self, payload, ctx):
        n, idx, dt = ctx
        out = np.zeros(n, dtype=dt)
        out[idx] = payload
        if self.unbiased:
            out[idx] *= n / idx.shape[0]
        return out

    def __repr__(self):
        return f"RandomK(ratio={self.ratio!r}, seed={self.seed!r}, unbiased={self.unbiased!r})"


class QSGD(Compressor):
    """Stochastic quantization to ``levels`` levels of ``|x_i| / ||x||_2`` (Alistarh et al. 2017).

    ``Q(x)_i = ||x||_2 sign(x_i) xi_i / s`` with ``xi_i`` the level ``l`` or
    ``l + 1`` around ``s |x_i| / ||x||_2``, rounded up with probability
    equal to the remainder: unbiased, with variance at most
    ``min(n / s^2, sqrt(n) / s) ||x||_2^2`` (their Lemma 3.1).  Payload: the
    norm and one signed ``int8`` (``int16`` above 127 levels) per entry.
    Each rank draws from its own stream (``seed`` and the rank).
    """

    summable = False

    def __init__(self, levels=127, seed=None):
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 1 <= levels <= 32767:
            raise ValueError(f"levels must be an int in [1, 32767], got {levels!r}")
        self.levels = int(levels)
        self.seed = _check_seed(seed)
        self._rng = np.random.default_rng(self.seed)

    def setup(self, rank, size, shared_seed):
        base = self.seed if self.seed is not None else shared_seed
        self._rng = np.random.default_rng([int(base), 1 + int(rank)])

    def _qtype(self):
        return np.int8 if self.levels <= 127 else np.int16

    def compress(self, x, key=0, layout=None):
        x = _check_x(x)
        n = x.shape[0]
        norm = np.array([np.linalg.norm(x)], dtype=x.dtype)
        s = self.levels
        if norm[0] == 0 or not np.isfinite(norm[0]):
            q = np.zeros(n, dtype=self._qtype())
        else:
            u = np.abs(x) * (s / norm[0])
            lev = np.floor(u)
            lev += self._rng.random(n) < (u - lev)
            np.minimum(lev, s, out=lev)
            q = (np.sign(x) * lev).astype(self._qtype())
        return _bytes(norm, q), (n, x.dtype, self._qtype())

    def decompress(self, payload, ctx):
        n, dt, qt = ctx
        norm, q = _split(payload, [(dt, 1), (qt, n)])
        return q.astype(dt) * (norm[0] / self.levels)

    def __repr__(self):
        return f"QSGD(levels={self.levels!r}, seed={self.seed!r})"


class SignSGD(Compressor):
    """Scaled sign: ``(||x_t||_1 / n_t) sign(x_t)`` per tensor ``x_t``, one bit per entry.

    signSGD (Bernstein et al. 2018) with the ``||x||_1 / d`` scale of
    Karimireddy et al. 2019, which makes it a contraction that
    :class:`ErrorFeedback` turns into a convergent method (EF-signSGD).  As in
    that paper's experiments the scale is taken per tensor (layer): with
    ``per_tensor=True`` (the default) each tensor of the bucket's ``layout``
    gets its own scale, so a bias vector is not scaled by the magnitude of a
    weight matrix packed beside it.  Without a layout, or with
    ``per_tensor=False``, the whole bucket shares one scale.  Zeros are sent as
    ``+scale``.

    Parameters
    ----------
    per_tensor : bool, default True
    """

    summable = False

    def __init__(self, per_tensor=True):
        if not isinstance(per_tensor, (bool, np.bool_)):
            raise TypeError(f"per_tensor must be a bool, got {type(per_tensor).__name__}")
        self.per_tensor = bool(per_tensor)

    def _bounds(self, n, layout):
        if not self.per_tensor or not layout:
            return (0, n)
        starts = [int(off) for off, _ in layout]
        if starts[0] != 0 or any(b < a for a, b in zip(starts, starts[1:])) or starts[-1] > n:
            raise ValueError("layout: offsets must start at 0 and not decrease inside the bucket")
        # empty tensors (repeated offsets) get no scale of their own
        return tuple(sorted({s for s in starts if s < n} | {0})) + (n,)

    def compress(self, x, key=0, layout=None):
        x = _check_x(x)
        n = x.shape[0]
        bounds = self._bounds(n, layout)
        if n:
            scale = (np.add.reduceat(np.abs(x), bounds[:-1]) / np.diff(bounds)).astype(x.dtype)
        else:
            scale = np.zeros(1, dtype=x.dtype)
        bits = np.packbits(x >= 0)
        return _bytes(scale, bits), (n, x.dtype, bounds)

    def decompress(self, payload, ctx):
        n, dt, bounds = ctx
        k = len(bounds) - 1
        scale, bits = _split(payload, [(dt, k), (np.uint8, (n + 7) // 8)])
        out = np.unpackbits(bits, count=n).astype(dt)
        out *= 2
        out -= 1
        if k == 1:
            out *= scale[0]
        else:
            out *= np.repeat(scale, np.diff(bounds))
        return out

    def __repr__(self):
        return f"SignSGD(per_tensor={self.per_tensor})"


class PowerSGD(Compressor):
    """Rank-``rank`` power-iteration compression of every matrix (Vogels et al. 2019).

    Each tensor with at least two dimensions is viewed as a matrix
    ``M`` (``shape[0]`` by the rest) and sent as ``P = M Q`` (all-reduced,
    orthonormalized) and ``Q = M^T P`` (all-reduced); the result is ``P Q^T``.
    Tensors with one dimension, or whose compression rate
    ``n m / (r (n + m))`` is below ``min_compression_rate``, travel
    uncompressed in the same all-reduce as ``P``.  The first ``start_iter``
    calls per bucket are uncompressed all-reduces (as PyTorch's PowerSGD hook).
    With ``warm_start`` the previous ``Q`` starts the next power iteration.
    Error feedback is built in (``error_feedback=True``, the paper's
    Algorithm 2): the residual ``M - P Q_local^T`` is added to the next
    gradient.  Defaults are PyTorch's ``PowerSGDState``'s.

    Parameters
    ----------
    rank : int, default 1
    start_iter : int, default 1000
    warm_start : bool, default True
    error_feedback : bool, default True
    seed : int, default 0
        Seeds the initial ``Q`` (the same on every rank).
    min_compression_rate : float, default 2
    """

    summable = True

    def __init__(self, rank=1, start_iter=1000, warm_start=True, error_feedback=True, seed=0,
                 min_compression_rate=2.0):
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        if isinstance(start_iter, bool) or not isinstance(start_iter, (int, np.integer)) or start_iter < 0:
            raise ValueError(f"start_iter must be a non-negative int, got {start_iter!r}")
        if not isinstance(min_compression_rate, (int, float)) or isinstance(min_compression_rate, bool) \
                or min_compression_rate < 0:
            raise ValueError(f"min_compression_rate must be >= 0, got {min_compression_rate!r}")
        self.rank = int(rank)
        self.start_iter = int(start_iter)
        self.warm_start = bool(warm_start)
        self.error_feedback = bool(error_feedback)
        self.seed = _check_seed(seed) or 0
        self.min_compression_rate = float(min_compression_rate)
        self._q = {}          # (key, tensor index) -> Q
        self._residual = {}   # key -> flat residual
        self._count = {}

    # which tensors are compressed, and how
    def _plan(self, n_total, layout):
        if layout is None:
            layout = [(0, (n_total,))]
        plan = []
        for ti, (off, shape) in enumerate(layout):
            size = int(np.prod(shape, dtype=np.int64))
            if len(shape) >= 2:
                rows = int(shape[0])
                cols = size // rows if rows else 0
                r = min(self.rank, rows, cols)
                if r > 0 and rows * cols / (r * (rows + cols)) >= self.min_compression_rate:
                    plan.append((ti, off, size, rows, cols, r))
                    continue
            plan.append((ti, off, size, None, None, None))
        return plan

    def _init_q(self, key, ti, cols, r, dtype):
        q = self._q.get((key, ti))
        if q is None or not self.warm_start or q.shape != (cols, r):
            c = self._count.get(key, 0)
            stream = [self.seed, int(key) & 0x7FFFFFFF, ti] + ([] if self.warm_start else [c])
            q = np.random.default_rng(stream).standard_normal((cols, r)).astype(dtype)
        return q

    @staticmethod
    def _orthonormalize(p):
        if p.shape[1] == 1:
            nrm = np.linalg.norm(p)
            return p / nrm if nrm > 0 else p
        return np.linalg.qr(p, mode="reduced")[0].astype(p.dtype, copy=False)

    def compress(self, x, key=0, layout=None):
        """One local power iteration: payload ``[uncompressed | P | Q]``.

        ``decompress`` rebuilds ``P_hat Q^T`` per matrix; for a matrix of rank
        at most ``rank`` (and a generic ``Q``) this is exact.
        """
        x = _check_x(x)
        plan = self._plan(x.shape[0], layout)
        raw, ps, qs = [], [], []
        for ti, off, size, rows, cols, r in plan:
            seg = x[off:off + size]
            if rows is None:
                raw.append(seg)
                continue
            m = seg.reshape(rows, cols)
            p = self._orthonormalize(m @ self._init_q(key, ti, cols, r, x.dtype))
            ps.append(p.reshape(-1))
            qs.append((m.T @ p).reshape(-1))
        payload = np.concatenate(raw + ps + qs) if (raw or ps) else np.zeros(0, x.dtype)
        return payload, (x.shape[0], x.dtype, plan)

    def decompress(self, payload, ctx):
        n, dt, plan = ctx
        out = np.zeros(n, dtype=dt)
        pos = 0
        for ti, off, size, rows, cols, r in plan:
            if rows is None:
                out[off:off + size] = payload[pos:pos + size]
                pos += size
        pp = pos
        qp = pp + sum(rows * r for _, _, _, rows, _, r in plan if rows is not None)
        for ti, off, size, rows, cols, r in plan:
            if rows is None:
                continue
            p = payload[pp:pp + rows * r].reshape(rows, r)
            q = payload[qp:qp + cols * r].reshape(cols, r)
            out[off:off + size] = (p @ q.T).reshape(-1)
            pp += rows * r
            qp += cols * r
        return out

    def reduce(self, x, ops, key=0, layout=None):
        x = _check_x(x)
        c = self._count.get(key, 0)
        if c < self.start_iter:
            self._count[key] = c + 1
            return ops.allreduce_sum(x.copy())
        n = x.shape[0]
        if self.error_feedback:
            res = self._residual.get(key)
            m_all = x + res if res is not None else x.copy()
        else:
            m_all = x
        plan = self._plan(n, layout)
        raw_n = sum(size for _, _, size, rows, _, _ in plan if rows is None)
        p_n = sum(rows * r for _, _, _, rows, _, r in plan if rows is not None)
        q_n = sum(cols * r for _, _, _, rows, cols, r in plan if rows is not None)
        buf1 = np.empty(raw_n + p_n, dtype=x.dtype)
        pos, pp = 0, raw_n
        mats = []
        for ti, off, size, rows, cols, r in plan:
            seg = m_all[off:off + size]
            if rows is None:
                buf1[pos:pos + size] = seg
                pos += size
                continue
            m = seg.reshape(rows, cols)
            q = self._init_q(key, ti, cols, r, x.dtype)
            buf1[pp:pp + rows * r] = (m @ q).reshape(-1)
            mats.append((ti, off, size, rows, cols, r, m, pp))
            pp += rows * r
        ops.allreduce_sum(buf1)
        out = np.zeros(n, dtype=x.dtype)
        pos = 0
        for ti, off, size, rows, cols, r in plan:
            if rows is None:
                out[off:off + size] = buf1[pos:pos + size]
                pos += size
        buf2 = np.empty(q_n, dtype=x.dtype)
        residual = np.zeros(n, dtype=x.dtype) if self.error_feedback else None
        phat, qp = [], 0
        for ti, off, size, rows, cols, r, m, pstart in mats:
            p = self._orthonormalize(buf1[pstart:pstart + rows * r].reshape(rows, r))
            q_local = m.T @ p
            buf2[qp:qp + cols * r] = q_local.reshape(-1)
            if residual is not None:
                residual[off:off + size] = (m - p @ q_local.T).reshape(-1)
            phat.append((p, qp))
            qp += cols * r
        if q_n:
            ops.allreduce_sum(buf2)
        for (ti, off, size, rows, cols, r, m, _), (p, qs) in zip(mats, phat):
            q = buf2[qs:qs + cols * r].reshape(cols, r)
            out[off:off + size] = (p @ q.T).reshape(-1)
            if self.warm_start:
                self._q[(key, ti)] = q.copy()
        if residual is not None:
            self._residual[key] = residual
        self._count[key] = c + 1
        return out

    def reduce_payload(self, payload, ctx, ops):
        raise TypeError("PowerSGD interleaves compression and communication: call reduce()")

    def __repr__(self):
        return (f"PowerSGD(rank={self.rank}, start_iter={self.start_iter}, "
                f"warm_start={self.warm_start}, error_feedback={self.error_feedback})")


class ErrorFeedback(Compressor):
    """Residual memory around a compressor (Karimireddy et al. 2019, Algorithm 2).

    Each call compresses ``p = x + e`` and keeps ``e = p - decompress(compress(p))``
    for the next call on the same bucket, so nothing the compressor drops is
    lost, only delayed.

    Parameters
    ----------
    compressor : Compressor
    """

    def __init__(self, compressor):
        if not isinstance(compressor, Compressor):
            raise TypeError(f"compressor must be a Compressor, got {type(compressor).__name__}")
        if isinstance(compressor, (PowerSGD, ErrorFeedback)):
            raise ValueError(f"compressor: {type(compressor).__name__} already has error feedback")
        self.compressor = compressor
        self.summable = compressor.summable
        self.residuals = {}

    def setup(self, rank, size, shared_seed):
        self.compressor.setup(rank, size, shared_seed)

    def compress(self, x, key=0, layout=None):
        x = _check_x(x)
        e = self.residuals.get(key)
        p = x + e if e is not None else x.copy()
        payload, ctx = self.compressor.compress(p, key, layout)
        self.residuals[key] = p - self.compressor.decompress(payload, ctx)
        return payload, ctx

    def decompress(self, payload, ctx):
        return self.compressor.decompress(payload, ctx)

    def combine(self, acc, incoming):
        self.compressor.combine(acc, incoming)

    @property
    def _mpi_combine(self):
        return self.compressor._mpi_combine

    def _accumulate(self, out, payload, ctx):
        self.compressor._accumulate(out, payload, ctx)

    def __repr__(self):
        return f"ErrorFeedback({self.compressor!r})"
