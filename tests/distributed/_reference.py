"""NumPy transcriptions of PyTorch's SGD (momentum) and Adam update rules, the references of the
distributed tests (so they run without torch; ``test_reference_matches_torch`` checks them
against torch where it is installed)."""
import numpy as np


class RefSGD:
    """``torch.optim.SGD`` with ``dampening=0``, ``nesterov=False``, no weight decay."""

    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum, self.buf = lr, momentum, None

    def step(self, w, g):
        if self.momentum:
            self.buf = g.copy() if self.buf is None else self.momentum * self.buf + g
            g = self.buf
        return w - self.lr * g


class RefAdam:
    """``torch.optim.Adam`` (no amsgrad, no weight decay), in torch's order of operations."""

    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t, self.m, self.v = 0, 0.0, 0.0

    def step(self, w, g):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        bc1 = 1 - self.b1 ** self.t
        bc2 = 1 - self.b2 ** self.t
        denom = np.sqrt(self.v) / np.sqrt(bc2) + self.eps
        return w - (self.lr / bc1) * self.m / denom
