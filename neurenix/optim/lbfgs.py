"""L-BFGS as a closure-driven stateful optimizer (``torch.optim.LBFGS``)."""
import math
import numbers

import numpy as np

from .._ext import _lbfgs as _kernel
from .._core.linesearch import scalar_search_wolfe
from .optimizer import Optimizer
from .._core.validation import check_lr, check_nonneg

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    r"""Limited-memory BFGS with PyTorch's closure semantics (``torch.optim.LBFGS``).

    Each :meth:`step` runs up to ``max_iter`` L-BFGS iterations, calling
    ``closure()`` (which must recompute the loss, fill every ``p.grad`` and
    return the loss) once per function evaluation.  The search direction comes
    from the two-loop recursion (Nocedal & Wright 2006, Algorithm 7.4; Liu &
    Nocedal 1989), computed by the same compiled kernel as
    ``minimize(method="L-BFGS")``.  A pair is stored when :math:`y^Ts > 10^{-10}`;
    :math:`H_0 = (y^Ts / y^Ty) I`; the first step is
    :math:`\min(1, 1/\|g\|_1)\,lr`, later steps ``lr``.

    Parameters
    ----------
    params : iterable of Parameter
        One parameter group only (as PyTorch).
    lr : float, default 1
    max_iter : int, default 20
        Iterations per :meth:`step`.
    max_eval : int, optional
        Function evaluations per :meth:`step` (default ``max_iter * 5 // 4``).
    tolerance_grad : float, default 1e-7
        Stop when :math:`\max|g| \le` tolerance_grad.
    tolerance_change : float, default 1e-9
        Stop on a smaller change of loss or of the parameters.
    history_size : int, default 100
    line_search_fn : None or "strong_wolfe"
        ``"strong_wolfe"`` searches each step with the Moré–Thuente line search
        (Moré & Thuente 1994, ACM TOMS 20(3)) -- the same compiled search as
        ``minimize``'s quasi-Newton methods -- with PyTorch's constants
        ``c1=1e-4, c2=0.9``, PyTorch's first trial step (as above) and at most
        ``max_ls=25`` evaluations per search.

        **Deviation from PyTorch, on purpose** (one home per algorithm):
        ``torch.optim.LBFGS`` uses its own strong-Wolfe search (bracketing
        with cubic interpolation, then a zoom).  Every step accepted here
        satisfies the same strong Wolfe conditions
        :math:`f(x+td) \le f(x) + c_1 t g^Td` and
        :math:`|g(x+td)^Td| \le c_2 |g^Td|`, but the two searches pick
        different points in the acceptable set, so with a line search the
        iterates, ``t`` and ``func_evals`` differ from PyTorch's (without one
        they are identical).  The search's own stopping tolerance differs
        too: PyTorch stops a zoom when the bracket times :math:`\|d\|` is
        below 1e-9 (a constant, not the group's ``tolerance_change``); this
        search stops when its interval of uncertainty is below a relative
        1e-9.  When no acceptable step is found within ``max_ls``
        evaluations, PyTorch takes the bracket end with the lower loss; this takes
        the best point evaluated if it lowered the loss, else it does not
        move (``t = 0``), which ends the step through ``tolerance_change``.
        What the group's options mean is PyTorch's in both modes: every
        closure call, the search's included, counts toward ``max_eval`` and
        ``state["func_evals"]``; ``max_eval`` is tested after each
        iteration, so the last search may pass it by up to ``max_ls - 1``;
        a step ends when ``g^Td > -tolerance_change``, when
        :math:`\max|t d| \le` ``tolerance_change`` or when the loss changed
        by less than ``tolerance_change``.

    Notes
    -----
    ``state`` follows PyTorch's layout, kept under the first parameter:
    ``func_evals, n_iter, d, t, old_dirs (y), old_stps (s), ro, al, H_diag,
    prev_flat_grad, prev_loss``.  All parameters are flattened into one vector.
    ``al`` (PyTorch's scratch list of first-loop coefficients) is kept with
    PyTorch's length but not filled: the kernel keeps those coefficients
    internally.
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4 if isinstance(max_iter, numbers.Integral) else max_iter
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("params: LBFGS doesn't support per-parameter options "
                             "(parameter groups)")
        self._params = self.param_groups[0]["params"]
        dts = {p.data.dtype for p in self._params}
        if len(dts) != 1 or not all(isinstance(p.data, np.ndarray) for p in self._params):
            raise TypeError("params: LBFGS needs NumPy parameters of a single dtype")
        self._dtype = dts.pop()
        self._numel = sum(p.data.size for p in self._params)

    def _check_group(self, group):
        check_lr(group["lr"])
        for name in ("max_iter", "max_eval", "history_size"):
            v = group[name]
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        check_nonneg(group["tolerance_grad"], "tolerance_grad")
        check_nonneg(group["tolerance_change"], "tolerance_change")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError("line_search_fn must be None or 'strong_wolfe', got "
                             f"{group['line_search_fn']!r}")

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("param_group: LBFGS doesn't support per-parameter options "
                             "(parameter groups)")
        super().add_param_group(param_group)

    # ---------------------------------------------------------------- helpers
    def _gather_flat_grad(self):
        parts = []
        for p in self._params:
            if p.grad is None:
                parts.append(np.zeros(p.data.size, dtype=self._dtype))
            else:
                g = np.asarray(p.grad)
                if g.shape != p.data.shape:
                    raise ValueError(f"grad has shape {g.shape}, expected {p.data.shape}")
                parts.append(g.astype(self._dtype, copy=False).ravel())
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def _add_grad(self, t, d):
        off = 0
        for p in self._params:
            n = p.data.size
            p.data += (t * d[off:off + n]).astype(self._dtype, copy=False).reshape(p.data.shape)
            off += n

    def _clone_param(self):
        return [p.data.copy() for p in self._params]

    def _set_param(self, data):
        for p, v in zip(self._params, data):
            p.data[...] = v

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def _direction(self, flat_grad, old_dirs, old_stps, ro, H_diag, al):
        k = len(old_dirs)
        q = np.negative(flat_grad).astype(self._dtype)
        if k:
            S = np.ascontiguousarray(np.stack(old_stps), dtype=self._dtype)
            Y = np.ascontiguousarray(np.stack(old_dirs), dtype=self._dtype)
            rho = np.ascontiguousarray(ro, dtype=np.float64)
            _kernel.two_loop(S, Y, rho, k - 1, k, float(H_diag), q)
        else:
            q *= H_diag
        return q

    def _strong_wolfe(self, closure, t, d, loss, flat_grad, gtd, max_ls=25):
        x0 = self._clone_param()
        cache = {}

        def phi_dphi(s):
            f, g = self._directional_evaluate(closure, x0, s, d)
            cache[s] = (f, g)
            return f, float(g @ d)

        stp, phi, _, nev, _ = scalar_search_wolfe(phi_dphi, loss, gtd, t, c1=1e-4, c2=0.9,
                                                  xtol=1e-9, maxls=max_ls)
        if stp is None:
            # no acceptable step: take the best point evaluated (or none)
            best = min(cache.items(), key=lambda kv: kv[1][0], default=None)
            if best is None or not best[1][0] < loss:
                return loss, flat_grad, 0.0, nev
            stp = best[0]
        f, g = cache[stp]
        return f, g, stp, nev

    # -------------------------------------------------------------------- step
    def step(self, closure):
        """Run up to ``max_iter`` iterations; returns the loss of the first
        closure evaluation (as PyTorch)."""
        if closure is None or not callable(closure):
            raise TypeError("closure: LBFGS.step requires a closure that returns the loss")
        group = self.param_groups[0]
        self._check_group(group)
        lr = float(group["lr"])
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]

        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if float(np.max(np.abs(flat_grad))) <= tolerance_grad:
            return orig_loss

        # An exception in the closure (or Ctrl-C) must not leave the parameters at a trial
        # point of the line search or the state between iterations: each completed
        # iteration is committed (parameters and state), and an exception rolls back to
        # the last commit before propagating, so the optimizer stays usable.
        committed = (self._clone_param(), dict(state))
        try:
            return self._iterate(closure, state, orig_loss, loss, flat_grad, current_evals, lr,
                                 max_iter, max_eval, tolerance_grad, tolerance_change,
                                 line_search_fn, history_size, committed)
        except BaseException:
            params, saved = committed
            evals = state["func_evals"]         # the calls made are still counted
            self._set_param(params)
            state.clear()
            state.update(saved)
            state["func_evals"] = evals
            raise

    def _iterate(self, closure, state, orig_loss, loss, flat_grad, current_evals, lr, max_iter,
                 max_eval, tolerance_grad, tolerance_change, line_search_fn, history_size,
                 committed):
        d = state.get("d")
        t = state.get("t")
        old_dirs = state.get("old_dirs")
        old_stps = state.get("old_stps")
        ro = state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad = state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")
        if old_dirs is not None:          # mutated in place below: not the committed lists
            old_dirs, old_stps, ro = list(old_dirs), list(old_stps), list(ro)

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = np.negative(flat_grad)
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(y @ y)
                if "al" not in state or len(state["al"]) != history_size:
                    state["al"] = [None] * history_size
                d = self._direction(flat_grad, old_dirs, old_stps, ro, H_diag, state["al"])
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(np.sum(np.abs(flat_grad)))) * lr
            else:
                t = lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:
                break
            ls_func_evals = 0
            if line_search_fn is not None:
                loss, flat_grad, t, ls_func_evals = self._strong_wolfe(closure, t, d, loss,
                                                                       flat_grad, gtd)
                self._add_grad(t, d)
                opt_cond = float(np.max(np.abs(flat_grad))) <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    loss = float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = float(np.max(np.abs(flat_grad))) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                         prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
            committed[0][:] = self._clone_param()
            committed[1].clear()
            committed[1].update(state)
            committed[1].update(old_dirs=list(old_dirs), old_stps=list(old_stps), ro=list(ro))
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                break
            if opt_cond:
                break
            if float(np.max(np.abs(d * t))) <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    @staticmethod
    def _cast_state(p, key, val, index=None):
        # flat vectors (d, prev_flat_grad) have the size of all parameters together
        if isinstance(val, np.ndarray):
            if not np.all(np.isfinite(val)):
                raise ValueError(f"state_dict: state entry {key!r} contains non-finite values")
            return np.array(val, copy=True)
        return Optimizer._cast_state(p, key, val, index)
