"""Loss modules: ``CrossEntropyLoss``, ``MSELoss``."""
from . import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss"]


class CrossEntropyLoss(Module):
    """Cross-entropy from logits and integer class targets (``torch.nn.CrossEntropyLoss``).

    Parameters
    ----------
    weight : Tensor or array, shape (C,), optional
        Per-class weights.
    ignore_index : int, default -100
        Targets equal to it contribute nothing (nor to the mean's denominator).
    reduction : {"mean", "sum", "none"}, default "mean"

    See :func:`neurenix.nn.functional.cross_entropy` for the formula.
    Class-probability targets and ``label_smoothing`` are not supported.
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__()
        F._check_reduction(reduction)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__}")
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight,
                               ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(Module):
    """Mean squared error (``torch.nn.MSELoss``).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default "mean"
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        F._check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
