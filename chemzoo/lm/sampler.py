"""Batched ancestral sampling from a ChemGPT with a key/value cache.

A lean decoder over the weights of a ``GPTNeoForCausalLM`` (same arithmetic: no attention
scaling, gelu_new, global/local layers), so each step is a handful of matmuls rather than a trip
through ``generate``'s machinery: the cache is written in place, never concatenated. Finished
molecules are retired from the batch (the cache is compacted once a quarter of the rows are done).
On a CUDA device each step is instead a replayed CUDA graph over fixed-shape buffers
(``chemzoo.lm.fixed_step``). Sampling is seeded by a private generator: the same seed, batch size,
settings and device give the same molecules.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from chemzoo.errors import InvalidSettingError
from chemzoo.lm.fixed_step import FixedStep
from chemzoo.lm.model import ChemGPT
from chemzoo.lm.molecules import selfies_to_smiles
from chemzoo.lm.tokenizer import CLS_ID, SEP_ID, SPECIAL_TOKENS, decode_selfies


@dataclass
class Samples:
    """Sampled molecules: SELFIES, canonical SMILES (None where it decodes to nothing), timing, and where
    asked for, each one's log-likelihood as sampled (nats; the model at temperature 1 on the sampled tokens,
    which may differ from ``score``'s, computed on the canonical SELFIES)."""

    selfies: list[str]
    smiles: list[str | None]
    num_tokens: int
    seconds: float
    settings: dict
    log_likelihood: list[float] | None = None

    def __len__(self) -> int:
        return len(self.smiles)


def check_settings(n: int, temperature: float, top_k: int | None, top_p: float | None, batch_size: int,
                   max_length: int | None = None, seed: int = 0) -> None:
    """Refuse settings that would fail later or sample something other than asked (InvalidSettingError)."""
    for name, value in (("number of molecules", n), ("batch size", batch_size), ("top-k", top_k), ("seed", seed),
                        ("max_length", max_length)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise InvalidSettingError(f"{name} must be a whole number, got {value!r}")
    if n <= 0:
        raise InvalidSettingError(f"number of molecules must be positive, got {n}")
    if not temperature > 0 or math.isinf(temperature):
        raise InvalidSettingError(f"temperature must be a positive number, got {temperature}")
    if top_k is not None and top_k <= 0:
        raise InvalidSettingError(f"top-k must be a positive integer, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise InvalidSettingError(f"top-p must be in (0, 1], got {top_p}")
    if batch_size <= 0:
        raise InvalidSettingError(f"batch size must be positive, got {batch_size}")
    if max_length is not None and max_length < 2:
        raise InvalidSettingError(f"max_length must be at least 2 ([CLS] and one token), got {max_length}")
    if not 0 <= seed < 2**63:
        raise InvalidSettingError(f"seed must be in [0, 2^63), got {seed}")


class KVCache:
    """Keys and values of every layer, each (capacity, batch, heads, head_dim).

    Position-major, so writing one step is a contiguous block. The capacity grows by doubling up to
    ``max_length`` (short molecules never pay for the longest possible one); dropping finished rows
    copies only the rows that must move (``compact``).
    """

    def __init__(self, layers: int, batch: int, heads: int, head_dim: int, max_length: int, like: torch.Tensor):
        self.max_length = max_length
        capacity = min(64, max_length)
        self.keys = [like.new_empty(capacity, batch, heads, head_dim) for _ in range(layers)]
        self.values = [like.new_empty(capacity, batch, heads, head_dim) for _ in range(layers)]

    def make_room(self, pos: int) -> None:
        capacity = self.keys[0].shape[0]
        if pos < capacity:
            return
        grown = min(self.max_length, 2 * capacity)
        for store in (self.keys, self.values):
            for i, t in enumerate(store):
                bigger = t.new_empty(grown, *t.shape[1:])
                bigger[:capacity] = t
                store[i] = bigger

    def compact(self, live: torch.Tensor) -> torch.Tensor:
        """Move the live rows (a bool mask) into the first ``live.sum()`` rows, copying only the rows
        that sit behind a finished one, and drop the rest (a view). Returns the new row order."""
        n = int(live.sum())
        order = torch.arange(n)
        holes = torch.nonzero(~live[:n]).flatten()
        movers = torch.nonzero(live[n:]).flatten() + n
        order[holes] = movers
        for store in (self.keys, self.values):
            for i, t in enumerate(store):
                if len(holes):  # advanced-index assignment: index_copy_ would copy the whole strided view
                    t[:, holes.to(t.device)] = t[:, movers.to(t.device)]
                store[i] = t[:, :n]
        return order


class NeoDecoder:
    """Incremental GPT-Neo forward pass reading the weights of a ``GPTNeoForCausalLM`` (no copies)."""

    def __init__(self, model):
        cfg = model.config
        t = model.transformer
        self.h, self.heads = cfg.hidden_size, cfg.num_heads
        self.d = self.h // self.heads
        self.window = cfg.window_size
        self.max_positions = cfg.max_position_embeddings
        self.eps = cfg.layer_norm_epsilon
        self.wte, self.wpe = t.wte.weight, t.wpe.weight
        self.ln_f = (t.ln_f.weight, t.ln_f.bias)
        self.blocks = []
        for block, kind in zip(t.h, cfg.attention_layers):
            att = block.attn.attention
            qkv = torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])
            self.blocks.append(dict(
                local=kind == "local", ln1=(block.ln_1.weight, block.ln_1.bias), qkv=qkv,
                out=(att.out_proj.weight, att.out_proj.bias), ln2=(block.ln_2.weight, block.ln_2.bias),
                fc=(block.mlp.c_fc.weight, block.mlp.c_fc.bias), proj=(block.mlp.c_proj.weight, block.mlp.c_proj.bias),
            ))

    def new_cache(self, batch: int, max_length: int) -> "KVCache":
        return KVCache(len(self.blocks), batch, self.heads, self.d, max_length, self.wte)

    def step(self, tokens: torch.Tensor, pos: int, cache: "KVCache") -> torch.Tensor:
        """Logits (batch, vocab) for the next token, given this step's tokens at position ``pos``."""
        b = tokens.shape[0]
        cache.make_room(pos)
        x = self.wte[tokens] + self.wpe[pos]
        for i, blk in enumerate(self.blocks):
            q, k, v = self._qkv(x, blk)
            cache.keys[i][pos] = k
            cache.values[i][pos] = v
            start = max(0, pos + 1 - self.window) if blk["local"] else 0
            keys = cache.keys[i][start : pos + 1].permute(1, 2, 3, 0)  # (batch, heads, head_dim, time), a view
            values = cache.values[i][start : pos + 1].permute(1, 2, 0, 3)  # (batch, heads, time, head_dim)
            att = (q.unsqueeze(2) @ keys).softmax(-1) @ values  # GPT-Neo does not scale by 1/sqrt(d)
            x = self._rest(x, att.reshape(b, self.h), blk)
        return self._logits(x)

    def step_fixed(self, tokens: torch.Tensor, pos: torch.Tensor, keys: list[torch.Tensor],
                   values: list[torch.Tensor]) -> torch.Tensor:
        """``step`` with fixed shapes: ``pos`` is a one-element tensor and every layer reads its whole
        (capacity, batch, heads, head_dim) cache, the positions after ``pos`` (and before a local layer's
        window) masked out. Same logits; the shapes never change, so the step can be a CUDA graph."""
        b = tokens.shape[0]
        positions = torch.arange(keys[0].shape[0], device=pos.device)
        visible = positions <= pos
        visible_local = visible & (positions > pos - self.window)
        x = self.wte[tokens] + self.wpe.index_select(0, pos)
        for i, blk in enumerate(self.blocks):
            q, k, v = self._qkv(x, blk)
            keys[i].index_copy_(0, pos, k.unsqueeze(0))
            values[i].index_copy_(0, pos, v.unsqueeze(0))
            scores = q.unsqueeze(2) @ keys[i].permute(1, 2, 3, 0)
            scores = scores.masked_fill(~(visible_local if blk["local"] else visible), -math.inf)
            att = scores.softmax(-1) @ values[i].permute(1, 2, 0, 3)
            x = self._rest(x, att.reshape(b, self.h), blk)
        return self._logits(x)

    def _qkv(self, x: torch.Tensor, blk: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = F.layer_norm(x, (self.h,), *blk["ln1"], self.eps)
        return (a @ blk["qkv"].T).view(x.shape[0], 3, self.heads, self.d).unbind(1)

    def _rest(self, x: torch.Tensor, att: torch.Tensor, blk: dict) -> torch.Tensor:
        """The attention output projection and the MLP, both residual."""
        x = x + F.linear(att, *blk["out"])
        m = F.layer_norm(x, (self.h,), *blk["ln2"], self.eps)
        return x + F.linear(F.gelu(F.linear(m, *blk["fc"]), approximate="tanh"), *blk["proj"])

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.h,), *self.ln_f, self.eps) @ self.wte.T


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Temperature, then top-k, then nucleus (top-p) filtering; removed entries become -inf."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # keep the smallest set reaching top_p
        logits = logits.masked_fill(drop.scatter(1, order, drop), -math.inf)
    return logits


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row by inverting the cumulative distribution (exact, and far cheaper than
    ``torch.multinomial`` on a 669-token vocabulary); zero-probability tokens are never drawn."""
    cdf = probs.cumsum(-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)


@torch.inference_mode()
def sample_tokens(model, n: int, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  seed: int = 0, batch_size: int = 512, max_length: int | None = None,
                  progress: bool = False, fixed_shapes: bool | None = None) -> list[list[int]]:
    """Token ids (without [CLS]/[SEP]) of ``n`` sampled sequences from a ``GPTNeoForCausalLM``.

    ``fixed_shapes`` (default: on a CUDA device) runs every step on fixed-shape buffers, captured as
    CUDA graphs on a GPU, with finished rows kept in the batch; otherwise finished rows leave it. The
    two draw different random streams, so a seed gives the same molecules within one mode and device.
    """
    check_settings(n, temperature, top_k, top_p, batch_size, max_length, seed)
    decoder = NeoDecoder(model)
    device = decoder.wte.device
    max_length = min(max_length or decoder.max_positions, decoder.max_positions)
    if fixed_shapes is None:
        fixed_shapes = device.type == "cuda"
    sampler = Sampler(decoder, temperature, top_k, top_p, torch.Generator(device=device).manual_seed(seed))
    run_batch = sampler.batch_fixed if fixed_shapes else sampler.batch_shrinking
    out: list[list[int]] = []
    with tqdm(total=n, desc="sampling", unit="mol", disable=not progress) as bar:
        while len(out) < n:
            out.extend(run_batch(min(batch_size, n - len(out)), max_length, bar))
    return out


class Sampler:
    """Draws batches of sequences from a decoder with fixed settings and one random generator."""

    def __init__(self, decoder: NeoDecoder, temperature: float, top_k: int | None, top_p: float | None,
                 generator: torch.Generator):
        self.decoder, self.generator = decoder, generator
        self.settings = (temperature, top_k, top_p)
        device = decoder.wte.device
        self.banned = torch.tensor([i for i in range(len(SPECIAL_TOKENS)) if i != SEP_ID], device=device)
        self.steps: dict[tuple[int, int], FixedStep] = {}  # (batch, capacity) -> reusable fixed step

    def next_tokens(self, logits: torch.Tensor, pos: int) -> torch.Tensor:
        logits = logits.float()
        logits[:, self.banned] = -math.inf
        if pos == 0:
            logits[:, SEP_ID] = -math.inf  # no empty molecules
        return draw(filter_logits(logits, *self.settings).softmax(-1), self.generator)

    def batch_shrinking(self, b: int, max_length: int, bar) -> list[list[int]]:
        """One batch, finished rows dropped from the cache (once a quarter of them are done)."""
        decoder, device = self.decoder, self.decoder.wte.device
        done: list[list[int] | None] = [None] * b
        rows = torch.arange(b)  # which of this batch's molecules each cache row holds
        cache = decoder.new_cache(b, max_length)
        tokens = torch.full((b,), CLS_ID, dtype=torch.long, device=device)
        seqs = torch.empty(b, max_length, dtype=torch.long, device=device)
        retired_since_compaction = torch.zeros(b, dtype=torch.bool)
        for pos in range(max_length - 1):
            tokens = self.next_tokens(decoder.step(tokens, pos, cache), pos)
            seqs[:, pos] = tokens
            finished = (tokens == SEP_ID).cpu() & ~retired_since_compaction
            last = pos == max_length - 2
            for r in torch.nonzero(finished | (last & ~retired_since_compaction)).flatten().tolist():
                done[rows[r]] = seqs[r, : pos + (0 if finished[r] else 1)].tolist()
                bar.update(1)
            retired_since_compaction |= finished
            if last or all(d is not None for d in done):
                break
            if retired_since_compaction.sum() * 4 >= len(rows):  # compact: drop finished rows from the cache
                order = cache.compact(~retired_since_compaction)
                seqs, tokens, rows = seqs[order], tokens[order.to(tokens.device)], rows[order]
                retired_since_compaction = torch.zeros(len(order), dtype=torch.bool)
            else:  # rows already retired keep computing until the next compaction; their output is ignored
                tokens = tokens.masked_fill(retired_since_compaction.to(tokens.device), SEP_ID)
        return done

    def fixed_step(self, b: int, capacity: int) -> FixedStep:
        if (b, capacity) not in self.steps:
            self.steps[(b, capacity)] = FixedStep(self.decoder, b, capacity)
        return self.steps[(b, capacity)]

    def batch_fixed(self, b: int, max_length: int, bar, check_every: int = 8) -> list[list[int]]:
        """One batch on fixed-shape steps: every row stays to the end, the device is asked whether
        all rows are done only every ``check_every`` steps, and the cache capacity doubles from 64."""
        device = self.decoder.wte.device
        step = self.fixed_step(b, min(64, max_length))
        tokens = torch.full((b,), CLS_ID, dtype=torch.long, device=device)
        seqs = torch.empty(b, max_length, dtype=torch.long, device=device)
        ends = torch.full((b,), max_length - 1, dtype=torch.long, device=device)  # a row's length
        alive = torch.ones(b, dtype=torch.bool, device=device)
        reported = 0
        for pos in range(max_length - 1):
            if pos == step.capacity:
                bigger = self.fixed_step(b, min(2 * step.capacity, max_length))
                bigger.take_cache(step)
                step = bigger
            tokens = self.next_tokens(step(tokens, pos), pos)
            seqs[:, pos] = tokens
            finished = alive & (tokens == SEP_ID)
            ends.masked_fill_(finished, pos)
            alive &= ~finished
            tokens = tokens.masked_fill(~alive, SEP_ID)
            if pos % check_every == check_every - 1:
                now = b - int(alive.sum())
                bar.update(now - reported)
                reported = now
                if now == b:
                    break
        bar.update(b - reported)
        return [row[:end] for row, end in zip(seqs.tolist(), ends.tolist())]


def sample(chemgpt: ChemGPT, n: int, temperature: float | None = None, top_k: int | None = None,
           top_p: float | None = None, seed: int = 0, batch_size: int = 512, max_length: int | None = None,
           progress: bool = False, log_likelihood: bool = False) -> Samples:
    """Sample ``n`` molecules; returns SELFIES and canonical SMILES (RDKit), and with ``log_likelihood``
    each sequence's log-likelihood as sampled (one teacher-forced pass after sampling; not timed).
    ``temperature=None`` takes the model's own (``ChemGPT.sampling_temperature``, from its
    ``generation_config.json``; 1.0 if it sets none); the one used is in ``settings``."""
    if temperature is None:
        temperature = chemgpt.sampling_temperature
    settings = dict(n=n, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, batch_size=batch_size,
                    max_length=max_length, model=chemgpt.name)
    start = time.perf_counter()
    ids = sample_tokens(chemgpt.model, n, temperature, top_k, top_p, seed, batch_size, max_length, progress)
    selfies = [decode_selfies(chemgpt.tokenizer, seq) for seq in ids]
    smiles = [selfies_to_smiles(s) for s in selfies]
    seconds = time.perf_counter() - start
    lls = None
    if log_likelihood:
        from chemzoo.lm.scoring import sequence_log_likelihood

        lls = sequence_log_likelihood(chemgpt, ids, batch_size)
    return Samples(selfies, smiles, sum(len(s) + 1 for s in ids), seconds, settings, lls)
