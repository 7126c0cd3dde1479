"""``DataLoader``: mini-batches of a dataset, optionally shuffled from a seeded generator."""
import math
import numbers

import numpy as np

from ..autograd import Tensor, tensor
from ..autograd._tensor import _to_namespace_of
from ..backend import array_namespace, is_foreign_array
from ..autograd.random import default_generator
from .dataset import TensorDataset

__all__ = ["DataLoader", "default_collate"]


def default_collate(batch):
    """Stack a list of samples into a batch (``torch.utils.data.default_collate``).

    Tensors and arrays are stacked along a new first axis; Python numbers become
    a tensor; tuples, lists and dicts are collated element by element.
    """
    first = batch[0]
    if isinstance(first, Tensor):
        xp = array_namespace(first.data)
        return Tensor(xp.stack([b.data for b in batch]))
    if isinstance(first, np.ndarray) or is_foreign_array(first):
        xp = array_namespace(first)
        return Tensor(xp.stack(list(batch)))
    if isinstance(first, np.generic):               # NumPy scalars keep their dtype
        return tensor(np.asarray(batch))
    if isinstance(first, (bool, numbers.Number)):   # Python: float64 / int64 / bool
        if isinstance(first, float):
            return tensor(np.asarray(batch, dtype=np.float64))
        return tensor(np.asarray(batch))
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(b) != len(first) for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        out = [default_collate(list(col)) for col in zip(*batch)]
        return tuple(out) if isinstance(first, tuple) else out
    raise TypeError(f"default_collate: batch must contain tensors, arrays, numbers, dicts or "
                    f"lists; found {type(first).__name__}")


class DataLoader:
    """Iterate over ``dataset`` in mini-batches (``torch.utils.data.DataLoader``).

    Parameters
    ----------
    dataset : Dataset
        Anything with ``__len__`` and ``__getitem__``.
    batch_size : int, default 1
    shuffle : bool, default False
        Draw a new permutation of the samples at the start of every pass.
    seed : int or numpy.random.Generator, optional
        The source of the permutations: an int seeds a new
        ``numpy.random.default_rng(seed)``, so the sequence of epochs is
        reproducible; None draws every permutation from the generator that
        :func:`neurenix.manual_seed` seeds (as PyTorch's loader draws from the
        global generator that ``torch.manual_seed`` seeds).  ``generator=``
        (PyTorch's name) is accepted as a synonym.
    drop_last : bool, default False
        Drop the last batch when it is smaller than ``batch_size``.
    collate_fn : callable, optional
        Turns a list of samples into a batch; :func:`default_collate` by default.

    Notes
    -----
    A :class:`TensorDataset` with the default collate function is batched by
    one gather per tensor (``t[indices]``), not sample by sample.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, *, seed=None, drop_last=False,
                 collate_fn=None, generator=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"dataset must define __len__ and __getitem__, got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size!r}")
        for name, v in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(v, bool):
                raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
        if seed is not None and generator is not None:
            raise ValueError("give seed or generator, not both")
        src = seed if seed is not None else generator
        if src is None or isinstance(src, np.random.Generator):
            rng = src
        elif isinstance(src, (int, np.integer)) and not isinstance(src, bool):
            rng = np.random.default_rng(int(src))
        else:
            raise TypeError(f"seed must be an int or a numpy.random.Generator, got {type(src).__name__}")
        if rng is not None and not shuffle:
            raise ValueError("seed/generator is only used with shuffle=True")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError("collate_fn must be callable")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self.generator = rng

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _batches(self):
        n = len(self.dataset)
        if self.shuffle:
            gen = self.generator if self.generator is not None else default_generator()
            order = gen.permutation(n)
        else:
            order = np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        for s in range(0, stop, self.batch_size):
            yield order[s:s + self.batch_size]

    def __iter__(self):
        ds = self.dataset
        fast = self.collate_fn is default_collate and isinstance(ds, TensorDataset)
        for idx in self._batches():
            if fast:
                yield tuple(t[_to_namespace_of(idx, t)] if not isinstance(t.data, np.ndarray)
                            else t[idx] for t in ds.tensors)
            else:
                yield self.collate_fn([ds[int(i)] for i in idx])
