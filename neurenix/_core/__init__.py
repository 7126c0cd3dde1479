"""What :mod:`neurenix.optim` and :mod:`neurenix.optimize` share (private).

Both public packages import from here and never from each other; this package
imports only :mod:`neurenix._ext` and :mod:`neurenix.backend` (see
``docs/architecture.md``).

Modules
-------
objective
    :class:`~.objective.ScalarObjective`, the one wrapper of a user's scalar
    function (cached f/g, counters, finite differences, Hessian products),
    :func:`~.objective.as_float_array`, :func:`~.objective.make_evaluator`.
result
    :class:`~.result.OptimizeResult`, :class:`~.result.Status`, the one status
    table (:data:`~.result.STATUS_TABLE`), :class:`~.result.OptimizeWarning`.
linesearch
    The Moré-Thuente strong-Wolfe search (Python face of the compiled kernel).
subproblems
    Trust-region subproblem solvers and the Hessian access they share.
trust_radius
    The trust-radius update and the trust-region option checks.
validation
    Hyperparameter and option checks (errors name the argument).
first_order
    The first-order update rules (names, defaults, checks, kernel calls) shared
    by the :mod:`neurenix.optim` classes and ``minimize(method="adam")`` & co.
"""
