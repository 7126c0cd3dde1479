"""Federated averaging over MPI ranks: FedAvg, FedProx, secure aggregation, DP-FedAvg.

Roles: rank 0 is the server, ranks ``1..K-1`` are the clients (on a single
process, rank 0 is the server and the only client).  One round:

1. the server samples ``m = max(int(client_fraction * n_clients), 1)`` clients
   without replacement (``rng.choice(n_clients, m, replace=False)`` with
   ``rng = numpy.random.default_rng(seed)`` on the server) and broadcasts the
   selection and the global parameters ``w_t``;
2. every selected client resets its optimizer's state, trains ``local_epochs``
   epochs of ``batches_per_epoch`` minibatches from ``w_t`` (FedProx adds
   ``mu/2 ||w - w_t||^2`` to the local objective) and forms its update
   ``d_k = w_k - w_t``;
3. the server receives the weighted sum ``sum_k p_k d_k`` — in the clear
   (``Reduce``), or through secure aggregation (:class:`SecureAggregator`),
   with ``p_k = n_k / sum_selected n_j`` (``n_k`` the client's sample count)
   or, with differential privacy (:class:`GaussianDP`), ``p_k = 1/m`` on
   clipped updates plus Gaussian noise;
4. the server sets ``w_{t+1} = w_t + server_lr * sum_k p_k d_k``.

Each round is a fixed sequence of collectives driven by the server's
broadcast (``ROUND`` or ``STOP``), and every piece of local work is followed
by an all-reduced failure flag (:func:`neurenix.distributed.collective_errors`),
so an exception on any rank raises on every rank.

Threat model
------------
See ``docs/federated.md``.  In short: secure aggregation here is the
simplified *honest-but-curious, no-dropout* variant of Bonawitz et al. (2017)
— pairwise additive masks only, agreed directly between clients; it hides
individual updates from a server that follows the protocol and does not
collude with clients, and it offers nothing against a malicious server,
colluding parties, dropouts, or what the sum itself reveals.
"""
import hashlib
import math
import secrets

import numpy as np

from ..optim import Optimizer
from ._flat import FlatParams
from ._comm import get_comm, mpi, collective_errors, wait_all, get_default_timeout

__all__ = ["FedAvg", "FedProx", "SecureAggregator", "GaussianDP"]

_ROUND, _STOP = 1, 0
_TAG_SEED = 7201
_MOD_MASK = np.uint64(0xFFFFFFFF)


# ---------------------------------------------------------------------- secure aggregation
class SecureAggregator:
    """Pairwise-masked fixed-point summation (simplified Bonawitz et al. 2017).

    A real vector ``x`` is encoded in fixed point with ``precision_bits``
    fractional bits as ``round(x * 2**precision_bits) mod 2**32``
    (two's complement).  Every pair of clients ``i < j`` shares a 32-byte seed;
    per round they expand it with SHAKE-256 into a uniform mask vector
    ``m_ij`` in ``Z_{2^32}^n``; client ``i`` adds ``m_ij`` and client ``j``
    subtracts it, so a client's masked vector is uniformly distributed to
    anyone without its seeds while the masks cancel in the sum over the
    round's clients.  The server adds the masked vectors modulo ``2**32`` and
    decodes only the sum.

    Parameters
    ----------
    precision_bits : int, default 20
        Fractional bits of the encoding: resolution ``2**-precision_bits``;
        every client's update entries (and its loss) must be smaller than
        ``2**(30 - precision_bits)`` in magnitude, which keeps the weighted
        sum inside the ``int32`` range (``1024`` for the default).

    Notes
    -----
    The variant: no Diffie-Hellman key agreement (seeds are sent from client
    ``i`` to client ``j`` directly over MPI, which the server is assumed not
    to read), no secret sharing of the seeds, hence no recovery from a client
    that drops out (the round fails and every rank raises), no protection
    against a server that deviates from the protocol or colludes with
    clients.  See ``docs/federated.md``.

    References
    ----------
    Bonawitz et al. (2017), "Practical secure aggregation for
    privacy-preserving machine learning", ACM CCS.

    Examples
    --------
    >>> import numpy as np
    >>> from neurenix.distributed import SecureAggregator
    >>> agg = SecureAggregator(precision_bits=16)
    >>> seed = bytes(32)                  # the seed clients 0 and 1 share
    >>> x0, x1 = np.array([0.5, -1.25]), np.array([0.25, 2.0])
    >>> m = agg.mask(seed, round_index=0, n=2)
    >>> y0 = agg.encode(x0) + m           # client 0 adds the pair's mask
    >>> y1 = agg.encode(x1) - m           # client 1 subtracts it
    >>> agg.decode(y0 + y1)               # the server sees y0, y1 and decodes the sum
    array([0.75, 0.75])
    """

    def __init__(self, precision_bits=20):
        if isinstance(precision_bits, bool) or not isinstance(precision_bits, (int, np.integer)) \
                or not 1 <= precision_bits <= 29:
            raise ValueError(f"precision_bits must be an int in [1, 29], got {precision_bits!r}")
        self.precision_bits = int(precision_bits)
        self.scale = float(2 ** self.precision_bits)
        self.bound = float(2 ** (30 - self.precision_bits))

    def encode(self, x):
        """Fixed-point encoding of a float array into ``uint32`` (mod ``2**32``)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.abs(x) < self.bound):
            raise ValueError(f"secure aggregation: values must be smaller than "
                             f"{self.bound:g} in magnitude for precision_bits="
                             f"{self.precision_bits} (got max |x| = {np.max(np.abs(x)):g}); "
                             "lower precision_bits or scale the model")
        return np.rint(x * self.scale).astype(np.int64).astype(np.uint32)

    def decode(self, u):
        """Inverse of :meth:`encode` for a (summed) ``uint32`` vector."""
        return np.asarray(u, dtype=np.uint32).view(np.int32).astype(np.float64) / self.scale

    @staticmethod
    def mask(seed, round_index, n):
        """The pair's mask for one round: SHAKE-256(seed || round) as ``n`` uint32."""
        h = hashlib.shake_256(bytes(seed) + int(round_index).to_bytes(8, "little"))
        return np.frombuffer(h.digest(4 * n), dtype="<u4").astype(np.uint32)

    def masked(self, x, me, selected, seeds, round_index):
        """Client ``me``'s masked encoding of ``x`` for the round's ``selected`` clients.

        ``seeds[j]`` is the seed ``me`` shares with client ``j``; masks of
        pairs ``(me, j)`` are added when ``me < j`` and subtracted otherwise.
        """
        y = self.encode(x)
        n = y.shape[0]
        for j in selected:
            if j == me:
                continue
            m = self.mask(seeds[j], round_index, n)
            if me < j:
                y += m
            else:
                y -= m
        return y


class GaussianDP:
    """Client-level differential privacy by clipping and Gaussian noise (DP-FedAvg).

    Each selected client's update is clipped to L2 norm ``clip_norm``; the
    server averages the clipped updates with the fixed weight ``1/m`` (``m``
    clients per round) and adds ``N(0, (noise_multiplier * clip_norm / m)^2)``
    to every coordinate of the average — the Gaussian mechanism with
    sensitivity ``clip_norm / m`` (McMahan et al. 2018, the fixed-denominator
    estimator with uniform client weights).

    Parameters
    ----------
    clip_norm : float > 0
    noise_multiplier : float >= 0
        ``z``: the noise standard deviation in units of the sensitivity.
    seed : int, optional
        Seed of the server's noise generator (NumPy's PCG64: *not* a
        cryptographic generator; see ``docs/federated.md``).

    Notes
    -----
    :meth:`privacy_spent` gives the ``(epsilon, delta)`` of the rounds run,
    for client-level *replace-one* adjacency and without amplification by
    client sampling (every rank sees the selection here, so the adversary
    may know it).  The guarantee assumes that the server adds the noise
    honestly (central DP: the server sees the un-noised sum); see
    ``docs/federated.md`` for the rest of the threat model.

    References
    ----------
    McMahan, Ramage, Talwar & Zhang (2018), "Learning differentially private
    recurrent language models", ICLR.

    Dong, Roth & Su (2022), "Gaussian differential privacy", JRSS-B
    (composition of Gaussian mechanisms and the exact (epsilon, delta) curve).

    Balle & Wang (2018), "Improving the Gaussian mechanism for differential
    privacy: analytical calibration and optimal denoising", ICML.
    """

    def __init__(self, clip_norm, noise_multiplier, seed=None):
        if isinstance(clip_norm, bool) or not isinstance(clip_norm, (int, float, np.floating)) \
                or not (math.isfinite(clip_norm) and clip_norm > 0):
            raise ValueError(f"clip_norm must be a positive finite number, got {clip_norm!r}")
        if isinstance(noise_multiplier, bool) or not isinstance(
                noise_multiplier, (int, float, np.floating)) \
                or not (math.isfinite(noise_multiplier) and noise_multiplier >= 0):
            raise ValueError(f"noise_multiplier must be a finite number >= 0, got "
                             f"{noise_multiplier!r}")
        self.clip_norm = float(clip_norm)
        self.noise_multiplier = float(noise_multiplier)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def clip(self, update):
        """``update * min(1, clip_norm / ||update||)`` (a new array)."""
        nrm = float(np.linalg.norm(update))
        return update * min(1.0, self.clip_norm / nrm) if nrm > 0 else update.copy()

    def noise_std(self, m):
        """Standard deviation of the noise added to the average of ``m`` clipped updates."""
        return self.noise_multiplier * self.clip_norm / m

    def gdp_mu(self, rounds):
        """``mu`` of the ``mu``-GDP guarantee of ``rounds`` rounds: ``2 sqrt(rounds) / z``.

        Replacing one client's update moves the average of the ``m`` clipped
        updates by at most ``2 clip_norm / m`` and the noise has standard
        deviation ``z clip_norm / m``: each round is ``2/z``-GDP, and ``T``
        Gaussian mechanisms compose exactly to ``sqrt(T) 2/z``-GDP (Dong, Roth
        & Su, Corollary 2).  Amplification by client sampling is not counted.
        """
        rounds = _check_rounds(rounds)
        if rounds == 0:
            return 0.0
        if self.noise_multiplier == 0:
            return math.inf
        return 2.0 * math.sqrt(rounds) / self.noise_multiplier

    def privacy_spent(self, rounds, delta):
        """Client-level ``epsilon`` of ``rounds`` rounds at ``delta`` (replace-one adjacency).

        The exact ``(epsilon, delta)`` curve of a ``mu``-GDP mechanism (the
        pair of Gaussians ``N(0, 1)`` and ``N(mu, 1)``; Balle & Wang 2018,
        Theorem 8; Dong, Roth & Su, Corollary 1):
        ``delta(eps) = Phi(-eps/mu + mu/2) - exp(eps) Phi(-eps/mu - mu/2)``,
        solved for ``eps``, with ``mu`` from :meth:`gdp_mu`.  Nothing is
        gained from client sampling (see the class notes), so the figure is
        an upper bound when only some clients train each round.

        Parameters
        ----------
        rounds : int >= 0
            Rounds run (``FedAvg.round``).
        delta : float in (0, 1)

        Returns
        -------
        float
            ``epsilon`` (``inf`` without noise, ``0.0`` after no rounds).
        """
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating)) \
                or not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta!r}")
        mu = self.gdp_mu(rounds)
        if mu == 0:
            return 0.0
        if math.isinf(mu):
            return math.inf
        return _gdp_epsilon(mu, float(delta))


def _check_rounds(rounds):
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 0:
        raise ValueError(f"rounds must be an int >= 0, got {rounds!r}")
    return int(rounds)


def _gdp_delta(eps, mu):
    """``delta(eps)`` of ``mu``-GDP, the second term in logs (no overflow at large ``eps``)."""
    from scipy.special import ndtr, log_ndtr
    a = -eps / mu
    return float(ndtr(a + mu / 2) - math.exp(eps + log_ndtr(a - mu / 2)))


def _gdp_epsilon(mu, delta):
    """Smallest ``eps >= 0`` with ``delta(eps) <= delta`` for ``mu``-GDP (``delta`` decreases in ``eps``)."""
    from scipy.optimize import brentq
    if _gdp_delta(0.0, mu) <= delta:
        return 0.0
    # the Renyi-DP conversion (Mironov 2017, Prop. 3) at its best order is an upper bound
    hi = mu * mu / 2 + mu * math.sqrt(2 * math.log(1 / delta)) + 1.0
    while _gdp_delta(hi, mu) > delta:           # pragma: no cover - the bound above holds
        hi *= 2
    return brentq(lambda e: _gdp_delta(e, mu) - delta, 0.0, hi, xtol=1e-12, rtol=1e-12)


# ---------------------------------------------------------------------------- FedAvg
class FedAvg:
    """Federated averaging (McMahan et al. 2017) with MPI ranks as clients.

    Every rank constructs it with the same model and calls :meth:`fit`.

    Parameters
    ----------
    params : iterable of Parameter
        The model (NumPy arrays); after :meth:`fit` every rank holds the
        server's final parameters.
    optimizer : neurenix.optim.Optimizer
        The clients' local optimizer over ``params`` (any one; closure-driven
        ones such as LBFGS too).  Its state is reset at the start of every
        round when ``reset_optimizer`` (the default).  Not used on the server.
    num_samples : int
        This client's number of training samples ``n_k`` (the aggregation
        weight; ignored on the server when it is not a client).  The counts
        are sent to the server and are not private.
    local_epochs : int, default 1
    client_fraction : float in (0, 1], default 1.0
        ``C``: ``max(int(C * n_clients), 1)`` clients per round.
    server_lr : float, default 1.0
        ``w += server_lr * aggregate`` (1 is FedAvg).
    secure_aggregation : bool or SecureAggregator, default False
        ``True`` uses ``SecureAggregator()``.  Needs at least two clients per
        round.
    dp : GaussianDP, optional
        Client-level differential privacy; the client weights become uniform
        and the training loss is not reported (it is not privatized).
    reset_optimizer : bool, default True
    seed : int, optional
        Seed of the server's client sampling.
    comm : communicator, optional
    timeout : float or None, optional
        Deadline of the failure-flag reductions and seed exchanges
        (see :func:`neurenix.distributed.wait_all`).

    Attributes
    ----------
    history : list of dict
        One record per round (the same on every rank): ``round``, ``clients``
        (the selected ranks), ``train_loss`` (the weighted mean of the
        selected clients' mean local loss, ``None`` with ``dp``), ``eval``
        (what ``evaluate`` returned, or ``None``), ``noise_std``.
    server_view : numpy.ndarray or None
        On the server with secure aggregation: the masked ``uint32`` vectors it
        received in the last round (one row per selected client), for
        inspection and tests.

    References
    ----------
    McMahan, Moore, Ramage, Hampson & Agüera y Arcas (2017),
    "Communication-efficient learning of deep networks from decentralized
    data", AISTATS.
    """

    mu = 0.0

    def __init__(self, params, optimizer, num_samples, local_epochs=1, client_fraction=1.0,
                 server_lr=1.0, secure_aggregation=False, dp=None, reset_optimizer=True,
                 seed=None, comm=None, timeout="default"):
        self.flat = FlatParams(params)
        self.params, self.dtype = self.flat.params, self.flat.dtype
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a neurenix.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
                or num_samples < 0:
            raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
        if isinstance(local_epochs, bool) or not isinstance(local_epochs, (int, np.integer)) \
                or local_epochs < 1:
            raise ValueError(f"local_epochs must be an int >= 1, got {local_epochs!r}")
        if isinstance(client_fraction, bool) or not isinstance(
                client_fraction, (int, float, np.floating)) or not 0 < client_fraction <= 1:
            raise ValueError(f"client_fraction must be in (0, 1], got {client_fraction!r}")
        if isinstance(server_lr, bool) or not isinstance(server_lr, (int, float, np.floating)) \
                or not (math.isfinite(server_lr) and server_lr > 0):
            raise ValueError(f"server_lr must be a positive finite number, got {server_lr!r}")
        if secure_aggregation is True:
            secure_aggregation = SecureAggregator()
        elif secure_aggregation is False or secure_aggregation is None:
            secure_aggregation = None
        elif not isinstance(secure_aggregation, SecureAggregator):
            raise TypeError("secure_aggregation must be a bool or a SecureAggregator, got "
                            f"{type(secure_aggregation).__name__}")
        if dp is not None and not isinstance(dp, GaussianDP):
            raise TypeError(f"dp must be a GaussianDP or None, got {type(dp).__name__}")
        if timeout == "default":
            timeout = get_default_timeout()
        self.optimizer = optimizer
        self.local_epochs = int(local_epochs)
        self.client_fraction = float(client_fraction)
        self.server_lr = float(server_lr)
        self.secure = secure_aggregation
        self.dp = dp
        self.reset_optimizer = bool(reset_optimizer)
        self.timeout = timeout
        self.comm = comm = get_comm(comm)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.clients = [0] if self.size == 1 else list(range(1, self.size))
        self.is_client = self.rank in self.clients
        self.m = max(int(self.client_fraction * len(self.clients)), 1)
        if self.secure is not None and self.m < 2:
            raise ValueError(f"secure_aggregation needs at least 2 clients per round; "
                             f"{len(self.clients)} client(s) x client_fraction "
                             f"{self.client_fraction} gives {self.m}")
        self.n = self.flat.n
        self.rng = np.random.default_rng(seed)
        counts = comm.allgather(int(num_samples))
        self.num_samples = {c: counts[c] for c in self.clients}
        if self.dp is None and sum(self.num_samples.values()) == 0:
            raise ValueError("num_samples: every client has 0 samples")
        self.history = []
        self.server_view = None
        self.round = 0
        self._seeds = self._exchange_seeds() if self.secure is not None else None

    # ------------------------------------------------------------------ helpers
    def _exchange_seeds(self):
        """Pairwise seeds between clients, sent client to client (never via the server)."""
        comm = self.comm
        seeds = {}
        reqs = []
        bufs = {}
        with collective_errors(comm, what="secure-aggregation seed exchange", timeout=self.timeout):
            if self.is_client:
                for j in self.clients:
                    if j > self.rank:
                        s = np.frombuffer(secrets.token_bytes(32), dtype=np.uint8).copy()
                        seeds[j] = s.tobytes()
                        reqs.append(comm.Isend(s, dest=j, tag=_TAG_SEED))
                    elif j < self.rank:
                        bufs[j] = np.empty(32, dtype=np.uint8)
                        reqs.append(comm.Irecv(bufs[j], source=j, tag=_TAG_SEED))
                wait_all(reqs, comm, self.timeout, what="secure-aggregation seed exchange")
                for j, b in bufs.items():
                    seeds[j] = b.tobytes()
        return seeds

    def _local_train(self, client_step, batches_per_epoch, w_global):
        """Local epochs from ``w_global``; returns (update, mean local loss)."""
        if self.reset_optimizer:
            self.optimizer.state.clear()
        mu = self.mu
        anchors = [p.data.copy() for p in self.params] if mu else None
        losses = []

        for epoch in range(self.local_epochs):
            for batch in range(batches_per_epoch):
                record = []

                def closure():
                    self.optimizer.zero_grad(set_to_none=True)
                    loss = client_step(self.params, epoch, batch)
                    if isinstance(loss, bool) or not isinstance(loss, (int, float, np.floating,
                                                                        np.integer)):
                        raise TypeError("client_step must return the minibatch loss (a real "
                                        f"number), got {type(loss).__name__}")
                    loss = float(loss)
                    record.append(loss)
                    for i, p in enumerate(self.params):
                        if p.grad is None:
                            raise ValueError(f"client_step left the gradient of params[{i}] "
                                             "unset")
                    if mu:
                        prox = 0.0
                        for p, a in zip(self.params, anchors):
                            diff = p.data - a
                            p.grad = p.grad + mu * diff
                            prox += float(np.vdot(diff, diff))
                        return loss + 0.5 * mu * prox
                    return loss

                self.optimizer.step(closure)
                if record:
                    losses.append(record[0])
        update = self.flat.data(np.empty(self.n)) - w_global
        return update, (float(np.mean(losses)) if losses else 0.0)

    # ---------------------------------------------------------------------- fit
    def fit(self, client_step, rounds, batches_per_epoch, evaluate=None, target=None):
        """Run federated rounds (collective).

        Parameters
        ----------
        client_step : callable ``client_step(params, epoch, batch) -> loss``
            On a client: fill ``p.grad`` of every parameter with the gradient
            of minibatch ``batch`` of local epoch ``epoch`` of this client's
            data at the current ``params``, and return that minibatch's loss.
        rounds : int
            Maximum number of rounds.
        batches_per_epoch : int
            This client's minibatches per local epoch.
        evaluate : callable ``evaluate(params) -> float``, optional
            Called on the server after every round (e.g. a validation loss).
        target : float, optional
            Stop after the first round whose ``evaluate`` value is ``<= target``
            (needs ``evaluate``).

        Returns
        -------
        list of dict
            :attr:`history`.
        """
        if not callable(client_step):
            raise TypeError(f"client_step must be callable, got {type(client_step).__name__}")
        for name, v, lo in (("rounds", rounds, 0), ("batches_per_epoch", batches_per_epoch, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        if evaluate is not None and not callable(evaluate):
            raise TypeError("evaluate must be callable or None")
        if target is not None and evaluate is None:
            raise ValueError("target needs evaluate")
        comm, MPI = self.comm, mpi()
        server = self.rank == 0
        head = np.zeros(2 + self.size, dtype=np.int64)
        wbuf = np.empty(self.n, dtype=self.dtype)
        stop = False
        done = 0
        while True:
            if server:
                head[:] = 0
                if stop or done >= rounds:
                    head[0] = _STOP
                else:
                    sel = np.sort(self.rng.choice(len(self.clients), self.m, replace=False))
                    head[0] = _ROUND
                    head[1] = self.round
                    head[2 + np.asarray(self.clients)[sel]] = 1
                    self.flat.data(wbuf)
            comm.Bcast(head, root=0)      # the server's command: ROUND (with the clients) or STOP
            if head[0] == _STOP:
                break
            comm.Bcast(wbuf, root=0)
            selected = [int(r) for r in np.flatnonzero(head[2:])]
            w_global = wbuf.astype(np.float64)
            if not server:
                self.flat.set_data(wbuf)
            # ------------------------------------------------- local training
            vec = np.zeros(self.n + 1, dtype=np.float64)
            masked = None
            with collective_errors(comm, what=f"federated round {self.round} (clients)",
                                   timeout=self.timeout):
                if self.rank in selected:
                    update, loss = self._local_train(client_step, int(batches_per_epoch),
                                                     w_global)
                    if not np.all(np.isfinite(update)) or not math.isfinite(loss):
                        raise FloatingPointError(f"client rank {self.rank}: non-finite update "
                                                 "or loss")
                    if self.dp is not None:
                        vec[:-1] = self.dp.clip(update) / len(selected)
                    else:
                        tot = sum(self.num_samples[c] for c in selected)
                        pk = self.num_samples[self.rank] / tot if tot else 1.0 / len(selected)
                        vec[:-1] = pk * update
                        vec[-1] = pk * loss
                    if self.secure is not None:
                        if self.dp is None and not abs(loss) < self.secure.bound:
                            raise ValueError(f"secure aggregation: the loss {loss:g} exceeds "
                                             f"the encoding range {self.secure.bound:g}")
                        # check the unweighted update, which bounds the weighted sum
                        self.secure.encode(update if self.dp is None else vec[:-1] * len(selected))
                        masked = self.secure.masked(vec, self.rank, selected, self._seeds,
                                                    self.round)
            # ---------------------------------------------------- aggregation
            if self.secure is not None:
                counts = np.array([self.n + 1 if r in selected else 0
                                   for r in range(self.size)], dtype=np.int64)
                send = masked if masked is not None else np.empty(0, dtype=np.uint32)
                if server:
                    recv = np.empty(int(counts.sum()), dtype=np.uint32)
                    displs = np.concatenate(([0], np.cumsum(counts)[:-1]))
                    comm.Gatherv(send, [recv, counts, displs, MPI.UINT32_T], root=0)
                    self.server_view = recv.reshape(len(selected), self.n + 1)
                else:
                    comm.Gatherv(send, None, root=0)
            else:
                total = np.empty_like(vec) if server else None
                comm.Reduce(vec, total, op=MPI.SUM, root=0)
            # ------------------------------------------------------ server update
            rec = None
            with collective_errors(comm, what=f"federated round {self.round} (server)",
                                   timeout=self.timeout):
                if server:
                    if self.secure is not None:
                        summed = np.zeros(self.n + 1, dtype=np.uint32)
                        for row in self.server_view:
                            summed += row              # wraps modulo 2**32
                        total = self.secure.decode(summed)
                    agg = total[:-1]
                    noise_std = 0.0
                    if self.dp is not None:
                        noise_std = self.dp.noise_std(len(selected))
                        agg = agg + self.dp.rng.normal(0.0, noise_std, size=agg.shape) \
                            if noise_std > 0 else agg
                    self.flat.set_data(w_global + self.server_lr * agg)
                    ev = float(evaluate(self.params)) if evaluate is not None else None
                    rec = {"round": self.round, "clients": selected,
                           "train_loss": None if self.dp is not None else float(total[-1]),
                           "eval": ev, "noise_std": noise_std}
                    if target is not None and ev is not None and ev <= target:
                        stop = True
            self.history.append(comm.bcast(rec, root=0) if self.size > 1 else rec)
            self.round += 1
            done += 1
        # final model on every rank
        if server:
            self.flat.data(wbuf)
        comm.Bcast(wbuf, root=0)
        self.flat.set_data(wbuf)
        return self.history

    def report(self, delta=None):
        """Privacy-relevant settings and counts (a dict; the same on every rank).

        With ``dp`` and a ``delta``, ``report["dp"]`` also holds ``mu`` (GDP)
        and ``epsilon`` of the rounds run so far (:meth:`GaussianDP.privacy_spent`:
        replace-one client adjacency, no amplification by client sampling).
        """
        if delta is not None and self.dp is None:
            raise ValueError("delta: no differential privacy configured (dp=None)")
        out = {"rounds": self.round, "clients_per_round": self.m,
               "n_clients": len(self.clients),
               "sampling_rate": self.m / len(self.clients),
               "secure_aggregation": None if self.secure is None else
               {"variant": "pairwise additive masks mod 2**32, honest-but-curious, no dropouts",
                "precision_bits": self.secure.precision_bits},
               "dp": None}
        if self.dp is not None:
            out["dp"] = {"mechanism": "Gaussian, client-level (DP-FedAvg)",
                         "clip_norm": self.dp.clip_norm,
                         "noise_multiplier": self.dp.noise_multiplier,
                         "noise_std_of_average": self.dp.noise_std(self.m)}
            if delta is not None:
                out["dp"].update(adjacency="replace one client, no amplification by sampling",
                                 delta=float(delta), mu=self.dp.gdp_mu(self.round),
                                 epsilon=self.dp.privacy_spent(self.round, delta))
        return out


class FedProx(FedAvg):
    """FedProx (Li et al. 2020): FedAvg with a proximal term in the local objective.

    Each selected client minimizes ``F_k(w) + mu/2 ||w - w_t||^2`` from
    ``w_t``: the gradient of the proximal term, ``mu (w - w_t)``, is added to
    the gradients that ``client_step`` computes, and the loss given to the
    optimizer includes the term (so line searches of closure-driven optimizers
    see the true local objective).  The reported training loss is ``F_k``.
    ``mu = 0`` is FedAvg.  The paper's variable amount of local work per
    client (``gamma``-inexact solutions) is not modelled: every client runs
    ``local_epochs`` epochs.

    Parameters
    ----------
    mu : float >= 0
    *args, **kwargs
        As :class:`FedAvg`.

    References
    ----------
    Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith (2020), "Federated
    optimization in heterogeneous networks", MLSys.
    """

    def __init__(self, params, optimizer, num_samples, mu=0.01, **kwargs):
        if isinstance(mu, bool) or not isinstance(mu, (int, float, np.floating)) \
                or not (math.isfinite(mu) and mu >= 0):
            raise ValueError(f"mu must be a finite number >= 0, got {mu!r}")
        self.mu = float(mu)
        super().__init__(params, optimizer, num_samples, **kwargs)
