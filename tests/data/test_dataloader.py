"""Dataset, TensorDataset, DataLoader: batching, shuffling determinism, collation, errors."""
import numpy as np
import pytest

import neurenix
from neurenix.data import DataLoader, Dataset, Subset, TensorDataset, default_collate


def _ds(n=10):
    X = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    return TensorDataset(neurenix.tensor(X), neurenix.tensor(np.arange(n)))


def test_sequential_batches_and_len():
    loader = DataLoader(_ds(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 2) and batches[0][0].dtype == np.float32
    dl = DataLoader(_ds(10), batch_size=4, drop_last=True)
    assert len(dl) == 2 and [b[1].size(0) for b in dl] == [4, 4]


def test_shuffle_is_a_permutation_new_each_epoch_and_reproducible():
    a = DataLoader(_ds(50), batch_size=8, shuffle=True, seed=123)
    b = DataLoader(_ds(50), batch_size=8, shuffle=True, seed=123)
    ea1 = np.concatenate([y.numpy() for _, y in a])
    ea2 = np.concatenate([y.numpy() for _, y in a])
    eb1 = np.concatenate([y.numpy() for _, y in b])
    assert sorted(ea1.tolist()) == list(range(50))
    assert not np.array_equal(ea1, ea2)                      # a new permutation each pass
    np.testing.assert_array_equal(ea1, eb1)                  # same seed, same order
    np.testing.assert_array_equal(ea1, np.random.default_rng(123).permutation(50))
    g = np.random.default_rng(123)
    c = DataLoader(_ds(50), batch_size=8, shuffle=True, generator=g)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in c]), ea1)
    neurenix.manual_seed(9)                                  # no seed: the global generator
    d1 = np.concatenate([y.numpy() for _, y in DataLoader(_ds(50), batch_size=8, shuffle=True)])
    neurenix.manual_seed(9)
    d2 = np.concatenate([y.numpy() for _, y in DataLoader(_ds(50), batch_size=8, shuffle=True)])
    np.testing.assert_array_equal(d1, d2)
    for x, y in a:                                           # rows stay paired
        np.testing.assert_array_equal(x.numpy()[:, 0], 2 * y.numpy())


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.array([i, i * i], dtype=np.float64), "y": i, "w": 0.5}


def test_generic_dataset_default_collate():
    batches = list(DataLoader(Squares(), batch_size=2))
    assert len(batches) == 3
    b = batches[1]
    assert b["x"].tolist() == [[2, 4], [3, 9]] and b["y"].tolist() == [2, 3]
    assert b["y"].dtype == np.int64 and b["w"].dtype == np.float64
    tup = default_collate([(neurenix.tensor([1.0]), 1), (neurenix.tensor([2.0]), 2)])
    assert tup[0].shape == (2, 1) and tup[1].tolist() == [1, 2]
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    assert default_collate([True, False]).dtype == np.bool_
    custom = DataLoader(Squares(), batch_size=5, collate_fn=lambda s: len(s))
    assert list(custom) == [5]


def test_subset_and_dataset_errors():
    ds = _ds(6)
    sub = Subset(ds, [5, 0, 3])
    assert len(sub) == 3 and sub[0][1].item() == 5
    assert [y.tolist() for _, y in DataLoader(sub, batch_size=2)] == [[5, 0], [3]]
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(TypeError, match="tensors\\[0\\]"):
        TensorDataset([1, 2])
    with pytest.raises(NotImplementedError):
        Dataset()[0]


@pytest.mark.parametrize("kw, err, msg", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.0), ValueError, "batch_size"),
    (dict(shuffle=1), TypeError, "shuffle"),
    (dict(drop_last="no"), TypeError, "drop_last"),
    (dict(shuffle=True, seed="a"), TypeError, "seed"),
    (dict(shuffle=True, seed=1, generator=np.random.default_rng()), ValueError, "not both"),
    (dict(seed=1), ValueError, "shuffle=True"),
    (dict(collate_fn=3), TypeError, "collate_fn"),
])
def test_dataloader_bad_arguments(kw, err, msg):
    with pytest.raises(err, match=msg):
        DataLoader(_ds(), **kw)
