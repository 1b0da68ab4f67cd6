"""One decoding step over fixed-shape buffers, replayed as a CUDA graph on a CUDA device.

A small ChemGPT on a GPU is bound by kernel launches, not arithmetic: each step launches a dozen
kernels per layer from Python. Here the key/value cache has a fixed capacity and the step reads all
of it, positions after the current one masked (``NeoDecoder.step_fixed``), so every step has the
same shapes and is captured once as a ``torch.cuda.CUDAGraph``; a step is then one replay. On a CPU
the same fixed-shape step runs eagerly (for tests: it is what the graph replays).
"""

from __future__ import annotations

import torch


class FixedStep:
    """Logits for ``batch`` rows at any position below ``capacity``; the cache lives in the buffers."""

    def __init__(self, decoder, batch: int, capacity: int):
        self.decoder, self.batch, self.capacity = decoder, batch, capacity
        like = decoder.wte
        self.tokens = torch.zeros(batch, dtype=torch.long, device=like.device)
        self.pos = torch.zeros(1, dtype=torch.long, device=like.device)
        shape = (capacity, batch, decoder.heads, decoder.d)
        # zeros, not empty: masked positions still meet the softmax weights (as 0 x value)
        self.keys = [like.new_zeros(shape) for _ in decoder.blocks]
        self.values = [like.new_zeros(shape) for _ in decoder.blocks]
        self.graph = None
        if like.device.type == "cuda":
            self._capture()

    def _run(self) -> torch.Tensor:
        return self.decoder.step_fixed(self.tokens, self.pos, self.keys, self.values)

    def _capture(self) -> None:
        stream = torch.cuda.Stream()  # warm up off the default stream, as CUDA graph capture requires
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._run()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._run()

    def __call__(self, tokens: torch.Tensor, pos: int) -> torch.Tensor:
        """Logits (batch, vocab) after writing this step's ``tokens`` at position ``pos`` into the cache;
        the returned tensor is overwritten by the next call."""
        if pos >= self.capacity:
            raise IndexError(f"position {pos} is beyond the cache capacity {self.capacity}")
        self.tokens.copy_(tokens)
        self.pos.fill_(pos)
        if self.graph is None:
            return self._run()
        self.graph.replay()
        return self.logits

    def take_cache(self, other: "FixedStep") -> None:
        """Copy ``other``'s cache (a smaller capacity, the same batch) into this one's first positions."""
        for mine, theirs in zip(self.keys + self.values, other.keys + other.values):
            mine[: other.capacity].copy_(theirs)
