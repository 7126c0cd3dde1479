"""Independent reference implementations of the first-order update rules.

Written from PyTorch's documented algorithms (docs of torch.optim.<Name>) and the
papers (AdaBelief Alg. 2, LAMB Alg. 2, LARS Alg. 1), one parameter at a time, in
plain NumPy of the parameter's dtype.  They share no code with neurenix.
"""
import math

import numpy as np


def _wd(p, g, wd, maximize=False):
    g = -g if maximize else g
    return g + wd * p if wd else g


def _adam_decay(p, g, lr, weight_decay, decoupled, maximize):
    """Adam-family weight decay: decoupled (p <- p (1 - lr wd)) or L2 (g <- g + wd p)."""
    g = -g if maximize else g
    if decoupled:
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * p
    return p, g


def sgd(p, g, st, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False):
    g = _wd(p, g, weight_decay, maximize)
    if momentum:
        if "b" not in st:
            st["b"] = g.copy()
        else:
            st["b"] = momentum * st["b"] + (1 - dampening) * g
        g = g + momentum * st["b"] if nesterov else st["b"]
    return p - lr * g


def adagrad(p, g, st, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
            eps=1e-10, maximize=False):
    st["t"] = t = st.get("t", 0) + 1
    st.setdefault("s", np.full_like(p, initial_accumulator_value))
    g = _wd(p, g, weight_decay, maximize)
    clr = lr / (1 + (t - 1) * lr_decay)
    st["s"] = st["s"] + g * g
    return p - clr * g / (np.sqrt(st["s"]) + eps)


def rmsprop(p, g, st, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
            centered=False, maximize=False):
    g = _wd(p, g, weight_decay, maximize)
    v = st.get("v", np.zeros_like(p))
    st["v"] = v = alpha * v + (1 - alpha) * g * g
    vt = v
    if centered:
        ga = st.get("ga", np.zeros_like(p))
        st["ga"] = ga = alpha * ga + (1 - alpha) * g
        vt = v - ga * ga
    denom = np.sqrt(vt) + eps
    if momentum > 0:
        b = st.get("b", np.zeros_like(p))
        st["b"] = b = momentum * b + g / denom
        return p - lr * b
    return p - lr * g / denom


def adam(p, g, st, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
         maximize=False, decoupled_weight_decay=False, belief=False):
    b1, b2 = betas
    st["t"] = t = st.get("t", 0) + 1
    p, g = _adam_decay(p, g, lr, weight_decay, decoupled_weight_decay, maximize)
    m = st.get("m", np.zeros_like(p))
    v = st.get("v", np.zeros_like(p))
    st["m"] = m = b1 * m + (1 - b1) * g
    if belief:
        st["v"] = v = b2 * v + (1 - b2) * (g - m) ** 2 + eps
    else:
        st["v"] = v = b2 * v + (1 - b2) * g * g
    if amsgrad:
        st["vmax"] = v = np.maximum(st.get("vmax", np.zeros_like(p)), v)
    mhat = m / (1 - b1 ** t)
    vhat = v / (1 - b2 ** t)
    return p - lr * mhat / (np.sqrt(vhat) + eps)


def adamw(p, g, st, lr, weight_decay=1e-2, **kw):
    return adam(p, g, st, lr, weight_decay=weight_decay, decoupled_weight_decay=True, **kw)


def adabelief(p, g, st, lr, eps=1e-16, **kw):
    return adam(p, g, st, lr, eps=eps, belief=True, **kw)


def nadam(p, g, st, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    st["t"] = t = st.get("t", 0) + 1
    p, g = _adam_decay(p, g, lr, weight_decay, decoupled_weight_decay, maximize)
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    st["prod"] = prod = st.get("prod", 1.0) * mu
    m = st["m"] = b1 * st.get("m", np.zeros_like(p)) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", np.zeros_like(p)) + (1 - b2) * g * g
    vhat = v / (1 - b2 ** t)
    denom = np.sqrt(vhat) + eps
    return p - lr * (1 - mu) / (1 - prod) * g / denom - lr * mu1 / (1 - prod * mu1) * m / denom


def radam(p, g, st, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
          decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    st["t"] = t = st.get("t", 0) + 1
    p, g = _adam_decay(p, g, lr, weight_decay, decoupled_weight_decay, maximize)
    m = st["m"] = b1 * st.get("m", np.zeros_like(p)) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", np.zeros_like(p)) + (1 - b2) * g * g
    mhat = m / (1 - b1 ** t)
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho > 5:
        lt = math.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps)
        r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        return p - lr * mhat * lt * r
    return p - lr * mhat


def lamb(p, g, st, lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
         bias_correction=True):
    b1, b2 = betas
    st["t"] = t = st.get("t", 0) + 1
    m = st["m"] = b1 * st.get("m", np.zeros_like(p)) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", np.zeros_like(p)) + (1 - b2) * g * g
    if bias_correction:
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    else:
        mhat, vhat = m, v
    r = mhat / (np.sqrt(vhat) + eps) + weight_decay * p
    pn = math.sqrt(float(np.sum(p.astype(np.float64) ** 2)))
    rn = math.sqrt(float(np.sum(r.astype(np.float64) ** 2)))
    ratio = pn / rn if pn > 0 and rn > 0 else 1.0
    return p - lr * ratio * r


def lars(p, g, st, lr, momentum=0.9, weight_decay=5e-4, trust_coefficient=1e-3, eps=1e-8):
    pn = math.sqrt(float(np.sum(p.astype(np.float64) ** 2)))
    gn = math.sqrt(float(np.sum(g.astype(np.float64) ** 2)))
    local = trust_coefficient * pn / (gn + weight_decay * pn + eps) if pn > 0 and gn > 0 else 1.0
    d = local * (g + weight_decay * p)
    if momentum:
        st["b"] = d = momentum * st.get("b", np.zeros_like(p)) + d
    return p - lr * d


class ReferenceOptimizer:
    """Runs a reference rule over param groups (list of (arrays, options))."""

    def __init__(self, rule, groups):
        self.rule = rule
        self.groups = groups          # [(list of arrays, dict of options)]
        self.states = [[{} for _ in arrs] for arrs, _ in groups]

    def step(self, grads):
        for (arrs, opts), sts, gs in zip(self.groups, self.states, grads):
            for i, (p, st, g) in enumerate(zip(arrs, sts, gs)):
                arrs[i] = self.rule(p, g, st, **opts).astype(p.dtype)
