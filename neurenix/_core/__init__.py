"""What :mod:`neurenix.optim` and :mod:`neurenix.optimize` share (private).

Both public packages import from here and never from each other.
"""
