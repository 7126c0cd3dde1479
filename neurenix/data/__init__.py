"""Datasets and mini-batch loading (``torch.utils.data``'s interface)."""
from .dataset import Dataset, TensorDataset, Subset
from .dataloader import DataLoader, default_collate

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "default_collate"]
