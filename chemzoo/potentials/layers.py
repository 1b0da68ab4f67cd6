"""Building blocks shared by the potentials: radial bases, the smooth cutoff, scatter-sum, edge blocks."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn


class BesselBasis(nn.Module):
    """sin(n pi r / rc) / r for n = 1..num_basis (DimeNet/NequIP radial basis; r in Å)."""

    def __init__(self, cutoff: float, num_basis: int = 8):
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("freq", torch.arange(1, num_basis + 1) * math.pi / cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r[:, None]
        return math.sqrt(2.0 / self.cutoff) * torch.sin(self.freq * r) / r

    def value_and_derivative(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The basis (E, num_basis) and its derivative in r (per Å), without autograd."""
        value, r = self(r), r[:, None]
        return value, (math.sqrt(2.0 / self.cutoff) * self.freq * torch.cos(self.freq * r) - value) / r


class PolynomialCutoff(nn.Module):
    """Smooth envelope going to zero with two vanishing derivatives at the cutoff (p = 6)."""

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff, self.p = cutoff, p

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x, p = r / self.cutoff, self.p
        env = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
        return env * (x < 1)

    def value_and_derivative(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The envelope and its derivative in r (per Å), without autograd."""
        x, p = r / self.cutoff, self.p
        slope = -(p * (p + 1) * (p + 2) / 2) * x ** (p - 1) * (1 - x) ** 2 / self.cutoff  # d/dr of the polynomial, factored
        return self(r), slope * (x < 1)


class ShiftedSoftplus(nn.Module):
    """softplus(x) - log 2 (SchNet's activation)."""

    def forward(self, x):
        return nn.functional.softplus(x) - math.log(2.0)


def ssp_mlp(x: torch.Tensor, mlp: nn.Sequential) -> torch.Tensor:
    """``mlp(x)`` for an ``mlp`` of Linear, ShiftedSoftplus, Linear, with one pass less over ``x``'s rows:
    the shift of ssp(x) = softplus(x) - log 2 folds into the last layer's bias."""
    first, last = mlp[0], mlp[2]
    return F.linear(F.softplus(first(x)), last.weight, folded_bias(last))


def folded_bias(last: nn.Linear) -> torch.Tensor:
    """The bias of ``last`` that absorbs the - log 2 of a shifted softplus before it."""
    return last.bias - math.log(2.0) * last.weight.sum(1)


def scatter_sum(src: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """out[k] = sum of src[e] over e with index[e] == k (first dimension)."""
    out = src.new_zeros((size, *src.shape[1:]))
    return out.index_add_(0, index, src)


def inference_with_forces(module: nn.Module) -> bool:
    """Eval mode with gradients on (forces, no second derivatives): the calls that take an architecture's
    inference path (PaiNN's hand-written backward at every size)."""
    return not module.training and torch.is_grad_enabled()


def recompute_edges(module: nn.Module, n_blocks: int) -> bool:
    """Inference with forces on a system with several edge blocks: the e3nn model's message step keeps no
    per-edge tensor for the backward pass and recomputes what it needs there."""
    return inference_with_forces(module) and n_blocks > 1


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim`` (None elsewhere: macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def resident_bytes() -> int:
    """This process's resident memory now (bytes; 0 where /proc is absent)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


HEAP_GROWTH_BYTES: int | None = 2**30  # resident growth tolerated before free heap pages go back; None: never
_resident_after_trim = [0]


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the operating system (glibc ``malloc_trim(0)``) once the resident
    memory has grown by ``HEAP_GROWTH_BYTES`` since the last time; a no-op elsewhere.

    On a CPU, torch's tensors come from malloc. Between the large per-block tensors of a big system, glibc
    keeps the freed medium-sized ones in its heap, which fragments: the e3nn model peaked at ~5 GB on an
    8,000-atom box with 0.75 GB of tensors alive. Trimming before every edge block kept it at 1 GB but cost
    3x the time (each page handed back is faulted in again); trimming after 1 GB of growth keeps it under
    2 GB for ~1.5x the time (``benchmarks/RESULTS.md``). Set ``HEAP_GROWTH_BYTES = None`` for speed over memory.
    Nothing is configured: no malloc setting of the process changes."""
    trim = _malloc_trim()
    if trim is None or HEAP_GROWTH_BYTES is None:
        return
    resident = resident_bytes()
    if resident > _resident_after_trim[0] + HEAP_GROWTH_BYTES or resident < _resident_after_trim[0]:
        trim(0)
        _resident_after_trim[0] = resident_bytes()


EDGE_BLOCK_BYTES = 16 * 2**20  # on a CPU, per-edge tensors are built in blocks of at most this size
CACHE_BLOCK_BYTES = 2**20  # on a CPU, for passes of a few elementwise operations per edge: blocks that stay in cache
EDGE_BLOCK_BYTES_ACCELERATOR = 2**30  # on a GPU, only to bound memory: each block costs kernel launches


def edge_blocks(n_edges: int, width: int, device: torch.device | str = "cpu", cpu_bytes: int | None = None) -> list[slice]:
    """Slices of the edge list such that an (edges, width) float32 tensor of one slice stays under
    ``EDGE_BLOCK_BYTES`` on a CPU. There, large tensors are mmapped fresh by malloc on every call and
    page-faulted in; blocks of this size are reused from the heap, which keeps the cost linear in the
    number of atoms. A GPU's caching allocator has no such cost, while every block adds kernel launches
    (a NequIP training step was 6x slower in 16 MB blocks), so there blocks only bound memory.
    ``cpu_bytes``: a smaller CPU bound, for passes whose per-edge work is a few elementwise operations: those
    run fastest on blocks that stay in the cache."""
    limit = min(cpu_bytes or EDGE_BLOCK_BYTES, EDGE_BLOCK_BYTES) if torch.device(device).type == "cpu" else EDGE_BLOCK_BYTES_ACCELERATOR
    size = max(64, limit // (4 * width))
    return [slice(a, min(a + size, n_edges)) for a in range(0, n_edges, size)] or [slice(0, 0)]
