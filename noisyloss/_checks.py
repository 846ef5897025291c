"""The one home of argument checks: every public function of the package validates with these.

Each check raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value out of
range, and the message names the argument, says what is allowed and quotes what was given.
"""
from __future__ import annotations

import inspect
import math
import numbers
import re
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    "REDUCTIONS", "check_param", "check_int", "check_seed", "check_reduction", "check_logits_target", "check_labels",
    "check_generator", "check_bool", "check_str", "check_choice", "check_name", "check_callable", "check_subclass",
    "check_index", "check_invertible", "check_probabilities", "check_text", "check_float32_power",
    "check_below_uniform", "check_instance", "check_model_output", "check_loss_value", "check_takes", "check_device",
    "check_same_device", "check_epoch_logits", "check_float_tensor",
]

REDUCTIONS = ("mean", "sum", "none")


def check_param(
    name: str,
    value: object,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check that ``value`` is a finite real number in the interval from ``low`` to ``high``
    (closed ends unless ``low_open``/``high_open``; ``None``: unbounded); return it as ``float``.

    Python and numpy numbers and one-element tensors without gradient are accepted; ``bool`` is not.
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not value.requires_grad:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    bad = not -math.inf < value < math.inf  # NaN too (math.isfinite would break torch.compile's graph)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        left = "(-inf" if low is None else f"{'(' if low_open else '['}{low:g}"
        right = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {left}, {right}, got {value:g}")
    return value


def check_int(name: str, value: object, low: int) -> int:
    """Check that ``value`` is an integer (Python or numpy, not bool) ``>= low``; return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return int(value)


#: the largest seed a torch generator takes (an unsigned 64-bit integer)
MAX_SEED = 2 ** 64 - 1


def check_seed(name: str, value: object) -> int:
    """Check that ``value`` is a seed a torch generator takes: an int in ``[0, 2**64 - 1]``; return it."""
    value = check_int(name, value, 0)
    if value > MAX_SEED:
        raise ValueError(f"{name} must be an int in [0, 2**64 - 1] (a torch generator's seed), got {value}")
    return value


def check_reduction(reduction: object) -> str:
    """Check that ``reduction`` is one of ``"mean"``, ``"sum"``, ``"none"``; return it."""
    return check_choice("reduction", reduction, REDUCTIONS)


def _check_index_tensor(name: str, t: object) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of class indices, got dtype {t.dtype}")
    return t


def _check_range(name: str, values: Tensor, high: int, what: str = "C") -> None:
    """Check that the integer tensor ``values`` lies in ``[0, high)``, ``high`` being ``what``."""
    outside = (values < 0) | (values >= high)
    if bool(outside.any()):  # a host sync: the one place a check reads tensor values
        raise ValueError(f"{name} must be in [0, {high - 1}] ({what}={high}), found {values[outside][0].item()}")


def check_logits_target(logits: object, target: object, num_classes: Optional[int] = None) -> Tensor:
    """Check a classification loss's inputs; return ``target`` as int64.

    ``logits``: ``(N, C)`` floating tensor with ``C >= 2`` (``C == num_classes`` when that is given:
    a loss built for ``num_classes`` classes); ``target``: ``(N,)`` integer tensor on the same device.
    The values of ``target`` are checked against ``[0, C)`` only on CPU and outside
    :func:`torch.compile`: that check reads the tensor on the host, which would sync a CUDA stream
    and break a compiled graph.  On CUDA an out-of-range target trips the device-side assert of
    ``gather``, as in ``F.cross_entropy``.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating tensor, got dtype {logits.dtype}")
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (N, C) with C >= 2, got {tuple(logits.shape)}")
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(f"logits must have C = num_classes = {num_classes} columns, got {tuple(logits.shape)}")
    target = _check_index_tensor("target", target)
    if target.dim() != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"target must have shape (N,) = ({logits.shape[0]},) to match logits, "
                         f"got {tuple(target.shape)}")
    if target.device != logits.device:
        raise ValueError(f"target is on {target.device} but logits are on {logits.device}")
    if target.device.type == "cpu" and not torch.compiler.is_compiling():
        _check_range("target", target, logits.shape[1])
    return target.long()


def check_labels(name: str, labels: object, num_classes: Optional[int] = None) -> Tensor:
    """Check that ``labels`` is a 1-D integer tensor of class indices in ``[0, num_classes)`` (range
    checked when ``num_classes`` is given, on any device); return it as int64."""
    labels = _check_index_tensor(name, labels)
    if labels.dim() != 1:
        raise ValueError(f"{name} must have shape (N,), got {tuple(labels.shape)}")
    if num_classes is not None:
        _check_range(name, labels, num_classes)
    return labels.long()


def check_generator(generator: object) -> Optional[torch.Generator]:
    """Check that ``generator`` is ``None`` or a :class:`torch.Generator`; return it."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def check_bool(name: str, value: object) -> bool:
    """Check that ``value`` is a ``bool`` (not an int, not a string); return it."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_str(name: str, value: object) -> str:
    """Check that ``value`` is a ``str``; return it."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of the strings ``choices``; return it."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {tuple(choices)}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


#: a registered name: lowercase letters, digits, ``_``, ``-``, ``.``; never ``:``, ``,``, ``=`` or spaces
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def check_name(name: str, value: object) -> str:
    """Check that ``value`` is a name a spec can spell (:data:`NAME_PATTERN`); return it."""
    check_str(name, value)
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"{name} must be lowercase letters, digits, '_', '-' or '.', starting with a "
                         f"letter or digit, got {value!r}")
    return value


def check_callable(name: str, value: object) -> Callable[..., Any]:
    """Check that ``value`` is callable; return it."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def check_subclass(name: str, value: object, base: type) -> type:
    """Check that ``value`` is a class derived from ``base``; return it."""
    if not (isinstance(value, type) and issubclass(value, base)):
        raise TypeError(f"{name} must be a subclass of {base.__module__}.{base.__qualname__}, got {value!r}")
    return value


def check_index(index: object, target: Tensor, num_examples: int) -> Tensor:
    """Check the sample indices a loss with ``needs_index`` is called with: an integer tensor of the
    shape and device of ``target``, with values in ``[0, num_examples)`` (read on the host only on
    CPU outside :func:`torch.compile`, as for targets); return it as int64."""
    index = _check_index_tensor("index", index)
    if index.shape != target.shape:
        raise ValueError(f"index must have shape {tuple(target.shape)} like target, got {tuple(index.shape)}")
    if index.device != target.device:
        raise ValueError(f"index is on {index.device} but target is on {target.device}")
    if index.device.type == "cpu" and not torch.compiler.is_compiling():
        _check_range("index", index, num_examples, "num_examples")
    return index.long()


def check_invertible(name: str, matrix: Tensor) -> Tensor:
    """Check that the square matrix ``matrix`` is invertible: full numerical rank (singular values
    above ``torch.linalg.matrix_rank``'s tolerance); return it."""
    rank = int(torch.linalg.matrix_rank(matrix))
    if rank < matrix.shape[0]:
        raise ValueError(f"{name} must be invertible, got a singular {matrix.shape[0]}x{matrix.shape[1]} "
                         f"matrix of rank {rank}")
    return matrix


#: tolerance on the row sums of a matrix of probabilities
_PROB_SUM_TOL = 1e-4


def check_probabilities(name: str, probs: object) -> Tensor:
    """Check that ``probs`` is an ``(N, C)`` floating tensor, ``N >= 1``, ``C >= 2``, of probabilities:
    entries in ``[0, 1]``, rows summing to 1 within 1e-4 (float32 softmax rounding) or, in half
    precision, within the dtype's machine epsilon (the rounding of the entries); return it."""
    check_float_tensor(name, probs)
    if probs.dim() != 2 or probs.shape[0] < 1 or probs.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, C) with N >= 1 and C >= 2, got {tuple(probs.shape)}")
    if not bool(((probs >= 0) & (probs <= 1)).all()):
        raise ValueError(f"{name} must hold probabilities in [0, 1] (softmax outputs, not logits)")
    err = float((probs.double().sum(dim=1) - 1).abs().max())
    if err > max(_PROB_SUM_TOL, torch.finfo(probs.dtype).eps):
        raise ValueError(f"rows of {name} must sum to 1, largest deviation {err:.3g}")
    return probs


def check_text(name: str, value: object) -> str:
    """Check that ``value`` is a string with something in it besides spaces (free text, unlike
    :func:`check_name`); return it."""
    if not check_str(name, value).strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value
#: the natural log of the largest float32 number
LOG_FLOAT32_MAX = math.log(torch.finfo(torch.float32).max)


def check_float32_power(expression: str, base: float, exponent: float, given: str) -> None:
    """Check that ``base ** exponent`` (positive numbers), written ``expression`` in the message with
    the arguments ``given``, is finite in float32."""
    if exponent * math.log(base) >= LOG_FLOAT32_MAX:
        raise ValueError(f"{expression} must be finite in float32 (below {torch.finfo(torch.float32).max:.3g}), "
                         f"got {given}")


def check_below_uniform(name: str, value: float, num_classes: int) -> None:
    """Check that a probability floor ``value`` is below ``1 / num_classes``, the uniform probability."""
    if value * num_classes >= 1.0:
        raise ValueError(f"{name} must be below 1/C = {1.0 / num_classes:g} for C={num_classes} classes, "
                         f"got {value:g}")


def check_instance(name: str, value: object, cls: type, what: str = "") -> Any:
    """Check that ``value`` is an instance of ``cls``, which the message calls ``what`` (default: its
    full name); return it."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be {what or f'a {cls.__module__}.{cls.__qualname__}'}, "
                        f"got {type(value).__name__}")
    return value


def check_model_output(out: object, batch: int, num_classes: int) -> Tensor:
    """Check that a model's output for ``batch`` samples is a floating ``(batch, num_classes)`` tensor of
    logits (its shape only: no host sync); return it."""
    if not isinstance(out, Tensor) or not out.is_floating_point():
        got = f"dtype {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
        raise TypeError(f"the model must return a floating tensor of logits, got {got}")
    if tuple(out.shape) != (batch, num_classes):
        raise ValueError(f"the model must return logits of shape (N, num_classes) = ({batch}, {num_classes}) for "
                         f"{batch} samples of data with {num_classes} classes, got {tuple(out.shape)}")
    return out


def check_loss_value(loss: object) -> Tensor:
    """Check that a loss function returned a 0-dim floating tensor (reduced over the batch: its shape
    only, no host sync); return it."""
    if not isinstance(loss, Tensor) or not loss.is_floating_point():
        got = f"dtype {loss.dtype}" if isinstance(loss, Tensor) else type(loss).__name__
        raise TypeError(f"loss_fn must return a floating tensor, got {got}")
    if loss.dim() != 0:
        raise ValueError(f"loss_fn must return one number for the batch (a 0-dim tensor: reduction 'mean' or "
                         f"'sum'), got shape {tuple(loss.shape)}")
    return loss


def check_takes(name: str, value: object, arguments: Sequence[str]) -> Callable[..., Any]:
    """Check that ``value`` is a function or class that can be called with the positional
    ``arguments`` (named in the message), not an instance of ``nn.Module`` (a model or loss already
    built); return it.  A callable whose signature Python cannot read is taken as it is."""
    wanted = f"a function or class called as {name}({', '.join(arguments)})"
    if isinstance(value, torch.nn.Module):
        raise TypeError(f"{name} must be {wanted}, got a {type(value).__name__} instance (build it inside)")
    check_callable(name, value)
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return value
    try:
        signature.bind(*arguments)
    except TypeError as err:
        called = getattr(value, "__name__", type(value).__name__)
        raise TypeError(f"{name} must be {wanted}, got {called}{signature} ({err})") from None
    return value


def check_device(name: str, value: object) -> torch.device:
    """Check that ``value`` (a ``str`` or :class:`torch.device`) names a device this machine has: the
    CPU or an available CUDA device; return it as a :class:`torch.device`."""
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a str or torch.device such as 'cpu' or 'cuda:0', got {type(value).__name__}")
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(f"{name}: unknown device {value!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {value}: CUDA is not available on this machine (torch {torch.__version__})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {value}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise ValueError(f"{name}: {value!r} is not supported; use cpu, cuda or cuda:N")
    return device


def check_same_device(name: str, value: Tensor, owner: str, state: Tensor) -> None:
    """Check that the tensor ``value`` is on the device of ``state``, a buffer of the loss Module ``owner``
    (which moves with ``owner.to(device)``)."""
    if value.device != state.device:
        raise ValueError(f"{name} is on {value.device} but the state of {owner} is on {state.device}: "
                         f"move the loss to the logits' device with loss.to({str(value.device)!r})")


def check_epoch_logits(logits: object, num_examples: int) -> Tensor:
    """Check the ``train_logits`` of an :class:`~noisyloss.losses.EpochEnd`: a floating
    ``(num_examples, C)`` tensor, one row per training sample, ``C >= 2``; return it."""
    check_float_tensor("train_logits", logits)
    if logits.dim() != 2 or logits.shape[0] != num_examples or logits.shape[1] < 2:
        raise ValueError(f"train_logits must have shape (num_examples, C) = ({num_examples}, C) with C >= 2, "
                         f"one row per training sample, got {tuple(logits.shape)}")
    return logits


def check_float_tensor(name: str, value: object) -> Tensor:
    """Check that ``value`` is a floating :class:`torch.Tensor` (any shape); return it."""
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a floating torch.Tensor, got "
                        f"{value.dtype if isinstance(value, Tensor) else type(value).__name__}")
    return value
