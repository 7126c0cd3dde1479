"""Update rules written as plain in-place NumPy: the baseline of speed comparisons.

This is what a user writes without a fused kernel (several passes over memory and
temporaries per step).  The demo, ``benchmarks/compare_first_order.py`` and the asv
suite time neurenix's kernels against these.  Signature: ``fn(p, g, m, v, t)``
with ``m``/``v`` state arrays and ``t`` the 1-based step.
"""
import numpy as np

__all__ = ["STEPS"]


def adam(p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    denom = np.sqrt(v)
    denom /= np.sqrt(1 - b2 ** t)
    denom += eps
    p -= (lr / (1 - b1 ** t)) * m / denom


def adamw(p, g, m, v, t, lr=1e-3, weight_decay=1e-2):
    p *= 1 - lr * weight_decay
    adam(p, g, m, v, t, lr=lr)


def sgd(p, g, m, v, t, lr=1e-3, momentum=0.9):
    m *= momentum
    m += g
    p -= lr * m


def rmsprop(p, g, m, v, t, lr=1e-2, alpha=0.99, eps=1e-8):
    v *= alpha
    v += (1 - alpha) * g * g
    p -= lr * g / (np.sqrt(v) + eps)


def adagrad(p, g, m, v, t, lr=1e-2, eps=1e-10):
    v += g * g
    p -= lr * g / (np.sqrt(v) + eps)


STEPS = {"Adam": adam, "AdamW": adamw, "SGD": sgd, "RMSprop": rmsprop, "Adagrad": adagrad}
