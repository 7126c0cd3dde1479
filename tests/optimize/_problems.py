"""Standard test problems with analytic gradients (Moré, Garbow & Hillstrom 1981,
"Testing unconstrained optimization software", ACM TOMS 7(1)); each returns (f, g)."""
import numpy as np


def rosen_chained(x):
    a = x[1:] - x[:-1] ** 2
    b = 1 - x[:-1]
    f = np.sum(100 * a ** 2 + b ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * a - 2 * b
    g[1:] += 200 * a
    return f, g


def rosen_uncoupled(x):
    x1, x2 = x[0::2], x[1::2]
    a = x2 - x1 ** 2
    b = 1 - x1
    g = np.empty_like(x)
    g[0::2] = -400 * x1 * a - 2 * b
    g[1::2] = 200 * a
    return np.sum(100 * a ** 2 + b ** 2), g


def powell(x):
    a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
    t1, t2, t3, t4 = a + 10 * b, c - d, b - 2 * c, a - d
    f = np.sum(t1 ** 2 + 5 * t2 ** 2 + t3 ** 4 + 10 * t4 ** 4)
    g = np.empty_like(x)
    g[0::4] = 2 * t1 + 40 * t4 ** 3
    g[1::4] = 20 * t1 + 4 * t3 ** 3
    g[2::4] = 10 * t2 - 8 * t3 ** 3
    g[3::4] = -10 * t2 - 40 * t4 ** 3
    return f, g


def beale(x):
    a, b = x
    y = np.array([1.5, 2.25, 2.625])
    k = np.arange(1, 4)
    r = y - a * (1 - b ** k)
    f = np.sum(r ** 2)
    ga = np.sum(2 * r * -(1 - b ** k))
    gb = np.sum(2 * r * a * k * b ** (k - 1))
    return f, np.array([ga, gb])


def wood(x):
    x1, x2, x3, x4 = x
    f = (100 * (x2 - x1 ** 2) ** 2 + (1 - x1) ** 2 + 90 * (x4 - x3 ** 2) ** 2 + (1 - x3) ** 2
         + 10.1 * ((x2 - 1) ** 2 + (x4 - 1) ** 2) + 19.8 * (x2 - 1) * (x4 - 1))
    g = np.array([
        -400 * x1 * (x2 - x1 ** 2) - 2 * (1 - x1),
        200 * (x2 - x1 ** 2) + 20.2 * (x2 - 1) + 19.8 * (x4 - 1),
        -360 * x3 * (x4 - x3 ** 2) - 2 * (1 - x3),
        180 * (x4 - x3 ** 2) + 20.2 * (x4 - 1) + 19.8 * (x2 - 1)])
    return f, g


def brown_badly_scaled(x):
    a, b = x
    r1, r2, r3 = a - 1e6, b - 2e-6, a * b - 2
    return r1 ** 2 + r2 ** 2 + r3 ** 2, np.array([2 * r1 + 2 * r3 * b, 2 * r2 + 2 * r3 * a])


def trigonometric(x):
    n = x.size
    c, s = np.cos(x), np.sin(x)
    r = n - np.sum(c) + np.arange(1, n + 1) * (1 - c) - s
    f = np.sum(r ** 2)
    # dr_i/dx_j = sin x_j + delta_ij (i sin x_i - cos x_i)
    g = 2 * np.sum(r) * s + 2 * r * (np.arange(1, n + 1) * s - c)
    return f, g


def quadratic(x, d):
    return 0.5 * np.sum(d * x * x) - np.sum(x), d * x - 1.0


def x0_for(name, n):
    if name in ("rosen_chained", "rosen_uncoupled"):
        x = np.full(n, -1.2)
        x[1::2] = 1.0
        return x
    if name == "powell":
        return np.tile([3.0, -1.0, 0.0, 1.0], n // 4)
    if name == "beale":
        return np.array([1.0, 1.0])
    if name == "wood":
        return np.array([-3.0, -1.0, -3.0, -1.0])
    if name == "brown_badly_scaled":
        return np.array([1.0, 1.0])
    if name == "trigonometric":
        return np.full(n, 1.0 / n)
    raise KeyError(name)


#: (name, function, n) of the comparison table
CASES = [
    ("rosen_chained", rosen_chained, 2), ("rosen_chained", rosen_chained, 10),
    ("rosen_chained", rosen_chained, 100),
    ("rosen_uncoupled", rosen_uncoupled, 10), ("rosen_uncoupled", rosen_uncoupled, 1000),
    ("powell", powell, 4), ("powell", powell, 100),
    ("beale", beale, 2), ("wood", wood, 4), ("brown_badly_scaled", brown_badly_scaled, 2),
    ("trigonometric", trigonometric, 10), ("trigonometric", trigonometric, 100),
]
