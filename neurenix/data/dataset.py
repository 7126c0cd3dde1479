"""Datasets: ``Dataset``, ``TensorDataset``, ``Subset`` (``torch.utils.data``)."""
import numpy as np

from ..autograd import Tensor
from ..backend import is_foreign_array

__all__ = ["Dataset", "TensorDataset", "Subset"]


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(i)`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Samples are the rows of tensors that share their first dimension.

    Parameters
    ----------
    *tensors : Tensor or array
        Arrays are wrapped (not copied) as tensors.

    Indexing with an integer gives a tuple of rows; with an integer array
    (what :class:`~neurenix.data.DataLoader` does) a tuple of batches.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("tensors: TensorDataset needs at least one tensor")
        ts = []
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                if isinstance(t, np.ndarray) or is_foreign_array(t):
                    t = Tensor(t)
                else:
                    raise TypeError(f"tensors[{i}] must be a Tensor or an array, got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError(f"tensors[{i}] must have at least one dimension")
            ts.append(t)
        n = ts[0].shape[0]
        for i, t in enumerate(ts):
            if t.shape[0] != n:
                raise ValueError(f"Size mismatch between tensors: tensors[{i}] has {t.shape[0]} rows, "
                                 f"tensors[0] has {n}")
        self.tensors = tuple(ts)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = list(indices)

    def __getitem__(self, index):
        if isinstance(index, (list, np.ndarray)):
            return self.dataset[np.asarray(self.indices)[np.asarray(index)]]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)
