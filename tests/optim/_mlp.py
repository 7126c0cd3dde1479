"""A small NumPy MLP (tanh hidden layers, softmax cross-entropy) with hand-written
back-propagation, for the natural-gradient tests and benchmark.  It records what
K-FAC needs: each dense layer's inputs and the gradients of the loss with respect
to its outputs."""
import numpy as np

from neurenix.optim import Parameter


class MLP:
    def __init__(self, sizes, seed=0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        self.W, self.b = [], []
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            self.W.append(Parameter((rng.standard_normal((d_out, d_in)) / np.sqrt(d_in))
                                    .astype(dtype)))
            self.b.append(Parameter(np.zeros(d_out, dtype=dtype)))

    def parameters(self):
        out = []
        for W, b in zip(self.W, self.b):
            out += [W, b]
        return out

    def forward(self, X):
        """Logits and each layer's inputs and pre-activations."""
        inputs, zs = [], []
        h = X
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            inputs.append(h)
            z = h @ W.data.T + b.data
            zs.append(z)
            h = np.tanh(z) if i + 1 < len(self.W) else z
        return h, inputs, zs

    @staticmethod
    def _softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def loss(self, X, y):
        z, _, _ = self.forward(X)
        zmax = z.max(axis=1, keepdims=True)
        lse = (zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1)))
        return float(np.mean(lse - z[np.arange(len(y)), y]))

    def backward(self, X, y, sample_targets=None):
        """Mean cross-entropy; fills every ``.grad``; returns ``(loss, inputs,
        output_grads)``, the output gradients those of the batch-mean loss.  With
        ``sample_targets`` (a Generator) the output gradients (not ``.grad``) are
        recomputed for targets drawn from the model's own predictive distribution
        (the true Fisher's K-FAC statistics)."""
        z, inputs, zs = self.forward(X)
        N = X.shape[0]
        P = self._softmax(z)
        loss = float(np.mean(-np.log(P[np.arange(N), y])))
        grads = self._backprop(P, y, zs)
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            dz = grads[i]
            W.grad = dz.T @ inputs[i]
            b.grad = dz.sum(axis=0)
        if sample_targets is not None:
            c = P.cumsum(axis=1)
            u = sample_targets.random((N, 1))
            ys = np.minimum((u > c).sum(axis=1), P.shape[1] - 1)
            grads = self._backprop(P, ys, zs)
        return loss, inputs, grads

    def _backprop(self, P, y, zs):
        N = P.shape[0]
        dz = P.copy()
        dz[np.arange(N), y] -= 1.0
        dz /= N
        out = [None] * len(self.W)
        for i in range(len(self.W) - 1, -1, -1):
            out[i] = dz
            if i:
                dz = (dz @ self.W[i].data) * (1.0 - np.tanh(zs[i - 1]) ** 2)
        return out


def blobs(n=600, d=10, k=3, seed=1, noise=1.0):
    """A Gaussian-blob classification set."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 2.0
    y = rng.integers(0, k, n)
    X = centers[y] + noise * rng.standard_normal((n, d))
    return X, y
