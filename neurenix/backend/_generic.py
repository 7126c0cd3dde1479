"""Generic twins of the Cython first-order kernels, written with namespace calls only.

Each method has the signature of the kernel of the same name in
:mod:`neurenix._ext._first_order` and updates its arrays in place
(``a[...] = value``).  These run on any Array-API namespace (CuPy,
``array_api_strict``, ...) and are the oracle the Cython kernels are tested
against.  Per-array scalars arrive as a NumPy float64 array ``sc``.
"""


def _lerp(a, b, w):
    # torch.lerp: a + w (b - a) for w < 0.5, else b - (b - a)(1 - w)
    if w < 0.5:
        return a + w * (b - a)
    return b - (b - a) * (1.0 - w)


def _signed_decayed(p, g, weight_decay, decay, decoupled, maximize):
    """The Adam family's direction ``d`` (``-g`` when maximizing, plus ``weight_decay p``
    when the decay is coupled) and the parameter after decoupled decay (``p decay``)."""
    d = -g if maximize else g
    pj = p
    if decoupled:
        pj = p * decay
    elif weight_decay != 0:
        d = d + weight_decay * p
    return d, pj


def _moments(m, v, d, beta1, beta2):
    """Adam's moment updates in place: ``m = lerp(m, d, 1 - beta1)``,
    ``v = beta2 v + (1 - beta2) d^2``."""
    m[...] = _lerp(m, d, 1.0 - beta1)
    v[...] = beta2 * v + (1.0 - beta2) * d * d


class GenericKernels:
    """Kernel table over namespace ``xp``."""

    name = "generic"

    def __init__(self, xp):
        self.xp = xp

    # ---------------------------------------------------------------- SGD
    def sgd(self, params, grads, momentum_buffers, sc, weight_decay, momentum,
            dampening, nesterov, maximize):
        for i, (p, g) in enumerate(zip(params, grads)):
            lr, first = float(sc[i, 0]), bool(sc[i, 1])
            d = -g if maximize else g
            if weight_decay != 0:
                d = d + weight_decay * p
            if momentum_buffers is not None:
                buf = momentum_buffers[i]
                b = d if first else momentum * buf + (1.0 - dampening) * d
                buf[...] = b
                d = d + momentum * buf if nesterov else buf
            p[...] = p - lr * d

    # ------------------------------------------------------------ AdaGrad
    def adagrad(self, params, grads, state_sums, sc, weight_decay, eps, maximize):
        xp = self.xp
        for i, (p, g, s) in enumerate(zip(params, grads, state_sums)):
            d = -g if maximize else g
            if weight_decay != 0:
                d = d + weight_decay * p
            s[...] = s + d * d
            p[...] = p - float(sc[i, 0]) * (d / (xp.sqrt(s) + eps))

    # ------------------------------------------------------------ RMSProp
    def rmsprop(self, params, grads, square_avgs, grad_avgs, momentum_buffers, sc,
                alpha, eps, weight_decay, momentum, maximize):
        xp = self.xp
        for i, (p, g, sq) in enumerate(zip(params, grads, square_avgs)):
            lr = float(sc[i, 0])
            d = -g if maximize else g
            if weight_decay != 0:
                d = d + weight_decay * p
            sq[...] = alpha * sq + (1.0 - alpha) * d * d
            if grad_avgs is not None:
                ga = grad_avgs[i]
                ga[...] = _lerp(ga, d, 1.0 - alpha)
                avg = xp.sqrt(sq - ga * ga)
            else:
                avg = xp.sqrt(sq)
            avg = avg + eps
            if momentum_buffers is not None:
                buf = momentum_buffers[i]
                buf[...] = momentum * buf + d / avg
                p[...] = p - lr * buf
            else:
                p[...] = p - lr * (d / avg)

    # ------------------------------------------- Adam / AdamW / AdaBelief
    def adam(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, sc, beta1,
             beta2, eps, weight_decay, decoupled, belief, maximize):
        xp = self.xp
        for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
            step_size, bc2_sqrt, decay = (float(sc[i, 0]), float(sc[i, 1]), float(sc[i, 2]))
            d, pj = _signed_decayed(p, g, weight_decay, decay, decoupled, maximize)
            m[...] = _lerp(m, d, 1.0 - beta1)
            if belief:
                r = d - m
                v[...] = beta2 * v + (1.0 - beta2) * r * r + eps
            else:
                v[...] = beta2 * v + (1.0 - beta2) * d * d
            vv = v
            if max_exp_avg_sqs is not None:
                vm = max_exp_avg_sqs[i]
                vm[...] = xp.maximum(vm, v)
                vv = vm
            denom = xp.sqrt(vv) / bc2_sqrt + eps
            p[...] = pj - step_size * (m / denom)

    # -------------------------------------------------------------- NAdam
    def nadam(self, params, grads, exp_avgs, exp_avg_sqs, sc, beta1, beta2, eps,
              weight_decay, decoupled, maximize):
        xp = self.xp
        for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
            bc2, c_grad, c_m, decay = (float(x) for x in sc[i, :4])
            d, pj = _signed_decayed(p, g, weight_decay, decay, decoupled, maximize)
            _moments(m, v, d, beta1, beta2)
            denom = xp.sqrt(v / bc2) + eps
            pj = pj - c_grad * (d / denom)
            p[...] = pj - c_m * (m / denom)

    # -------------------------------------------------------------- RAdam
    def radam(self, params, grads, exp_avgs, exp_avg_sqs, sc, beta1, beta2, eps,
              weight_decay, decoupled, maximize):
        xp = self.xp
        for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
            lr, bc1, bc2_sqrt, rect, rectify, decay = (float(x) for x in sc[i, :6])
            d, pj = _signed_decayed(p, g, weight_decay, decay, decoupled, maximize)
            _moments(m, v, d, beta1, beta2)
            u = (m / bc1) * lr
            if rectify:
                u = u * (bc2_sqrt / (xp.sqrt(v) + eps)) * rect
            p[...] = pj - u

    # --------------------------------------------------------------- LAMB
    def lamb(self, params, grads, exp_avgs, exp_avg_sqs, sc, beta1, beta2, eps,
             weight_decay):
        import numpy as np

        xp = self.xp
        trust = np.ones(len(params))
        for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
            lr, inv_bc1, bc2_sqrt = (float(x) for x in sc[i, :3])
            _moments(m, v, g, beta1, beta2)
            r = (m * inv_bc1) / (xp.sqrt(v) / bc2_sqrt + eps) + weight_decay * p
            pn = float(xp.sqrt(xp.sum(xp.astype(p, xp.float64) ** 2)))
            rn = float(xp.sqrt(xp.sum(xp.astype(r, xp.float64) ** 2)))
            t = pn / rn if (pn > 0 and rn > 0) else 1.0
            trust[i] = t
            p[...] = p - (lr * t) * r
        return trust

    # --------------------------------------------------------------- LARS
    def lars(self, params, grads, momentum_buffers, sc, weight_decay, momentum,
             trust_coefficient, eps):
        import numpy as np

        xp = self.xp
        trust = np.ones(len(params))
        for i, (p, g) in enumerate(zip(params, grads)):
            lr = float(sc[i, 0])
            pn = float(xp.sqrt(xp.sum(xp.astype(p, xp.float64) ** 2)))
            gn = float(xp.sqrt(xp.sum(xp.astype(g, xp.float64) ** 2)))
            t = trust_coefficient * pn / (gn + weight_decay * pn + eps) if (pn > 0 and gn > 0) else 1.0
            trust[i] = t
            d = t * (g + weight_decay * p)
            if momentum_buffers is not None:
                buf = momentum_buffers[i]
                buf[...] = momentum * buf + d
                d = buf
            p[...] = p - lr * d
        return trust

    # ------------------------------------------------------- gradient tools
    def all_finite(self, arrays):
        xp = self.xp
        return all(bool(xp.all(xp.isfinite(a))) for a in arrays)

    def sum_squares(self, arrays):
        import numpy as np

        xp = self.xp
        return np.array([float(xp.sum(xp.astype(a, xp.float64) ** 2)) for a in arrays])
