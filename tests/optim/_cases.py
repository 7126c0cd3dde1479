"""The optimizer database driving the table-driven tests: class, reference rule,
and configurations (two param groups each) covering every flag."""
from neurenix import optim

from . import _reference as ref

# name -> (class, reference rule, [(group0 options, group1 options), ...])
CASES = {
    "SGD": (optim.SGD, ref.sgd, [
        (dict(lr=0.05), dict(lr=0.02, weight_decay=0.1)),
        (dict(lr=0.05, momentum=0.9), dict(lr=0.02, momentum=0.5, dampening=0.3, weight_decay=0.01)),
        (dict(lr=0.05, momentum=0.9, nesterov=True), dict(lr=0.02, momentum=0.8, nesterov=True, maximize=False)),
        (dict(lr=0.05, maximize=True, momentum=0.9), dict(lr=0.02, maximize=True)),
    ]),
    "AdaGrad": (optim.AdaGrad, ref.adagrad, [
        (dict(lr=0.1), dict(lr=0.05, lr_decay=0.01, weight_decay=0.1)),
        (dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6), dict(lr=0.05, maximize=True)),
    ]),
    "RMSProp": (optim.RMSProp, ref.rmsprop, [
        (dict(lr=0.01), dict(lr=0.005, weight_decay=0.1, alpha=0.9)),
        (dict(lr=0.01, momentum=0.9), dict(lr=0.005, centered=True)),
        (dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01), dict(lr=0.01, maximize=True, alpha=0.3)),
    ]),
    "Adam": (optim.Adam, ref.adam, [
        (dict(lr=0.01), dict(lr=0.003, betas=(0.8, 0.99), weight_decay=0.1)),
        (dict(lr=0.01, amsgrad=True), dict(lr=0.003, amsgrad=True, weight_decay=0.1, eps=1e-6)),
        (dict(lr=0.01, maximize=True), dict(lr=0.003, decoupled_weight_decay=True, weight_decay=0.1)),
        (dict(lr=0.01, betas=(0.3, 0.5)), dict(lr=0.003, betas=(0.0, 0.0))),
    ]),
    "AdamW": (optim.AdamW, ref.adamw, [
        (dict(lr=0.01), dict(lr=0.003, weight_decay=0.0)),
        (dict(lr=0.01, amsgrad=True, weight_decay=0.1), dict(lr=0.003, maximize=True)),
    ]),
    "AdaBelief": (optim.AdaBelief, ref.adabelief, [
        (dict(lr=0.01), dict(lr=0.003, weight_decay=0.1, eps=1e-8)),
        (dict(lr=0.01, amsgrad=True), dict(lr=0.003, decoupled_weight_decay=True, weight_decay=0.1)),
        (dict(lr=0.01, maximize=True), dict(lr=0.003, betas=(0.5, 0.9))),
    ]),
    "NAdam": (optim.NAdam, ref.nadam, [
        (dict(lr=0.01), dict(lr=0.003, weight_decay=0.1, momentum_decay=0.01)),
        (dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1), dict(lr=0.003, maximize=True)),
    ]),
    "RAdam": (optim.RAdam, ref.radam, [
        (dict(lr=0.01), dict(lr=0.003, weight_decay=0.1, betas=(0.9, 0.9))),
        (dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1), dict(lr=0.003, maximize=True)),
    ]),
    "LAMB": (optim.LAMB, ref.lamb, [
        (dict(lr=0.01), dict(lr=0.003, weight_decay=0.0, betas=(0.8, 0.99))),
        (dict(lr=0.01, bias_correction=False), dict(lr=0.003, eps=1e-8, weight_decay=0.1)),
    ]),
    "LARS": (optim.LARS, ref.lars, [
        (dict(lr=0.5), dict(lr=0.2, weight_decay=0.0, trust_coefficient=0.01)),
        (dict(lr=0.5, momentum=0.0), dict(lr=0.2, momentum=0.5, eps=0.0)),
    ]),
}

PARAMS = [(name, k) for name, (_, _, cfgs) in CASES.items() for k in range(len(cfgs))]
