"""chemzoo's sampler against ``transformers`` ``model.generate`` on the same model, batch and settings.

    python -m benchmarks.sampler [--n 512] [--max-length 64] [--repeats 3] [--device cuda]

At each batch size, prints tokens/s and molecules/s for both, their ratio, and the fraction of the matmul bound
(2 x parameters x tokens/s over a measured large fp32 matmul FLOP/s). On a GPU, chemzoo runs twice:
with its default CUDA graphs (capture time included) and without them. Models: the bundled default
(trained) and the published ChemGPT-4.7M shape (24 layers, hidden 128, vocab 669; random weights).
"""

from __future__ import annotations

import platform
import time

import click
import torch
from transformers import GPTNeoConfig, GPTNeoForCausalLM

import chemzoo
from chemzoo.lm.sampler import sample_tokens
from chemzoo.lm.tokenizer import CLS_ID, PAD_ID, SEP_ID


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_flops(size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def published_4_7m() -> GPTNeoForCausalLM:
    torch.manual_seed(0)
    config = GPTNeoConfig(vocab_size=669, hidden_size=128, num_layers=24, num_heads=16,
                          attention_types=[[["global", "local"], 12]], window_size=256, max_position_embeddings=2048,
                          embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0,
                          bos_token_id=CLS_ID, eos_token_id=SEP_ID, pad_token_id=PAD_ID)
    return GPTNeoForCausalLM(config).eval()


def run_ours(model, n, batch, max_length, seed, fixed_shapes=None):
    """chemzoo's sampler; on a GPU by default with CUDA graphs (their capture is inside the timing)."""
    sync(str(model.device))
    start = time.perf_counter()
    seqs = sample_tokens(model, n, seed=seed, batch_size=batch, max_length=max_length, fixed_shapes=fixed_shapes)
    sync(str(model.device))
    return sum(len(s) + 1 for s in seqs), time.perf_counter() - start  # + the closing [SEP]


def run_ours_without_graphs(model, n, batch, max_length, seed):
    return run_ours(model, n, batch, max_length, seed, fixed_shapes=False)


@torch.inference_mode()
def run_generate(model, n, batch, max_length, seed):
    torch.manual_seed(seed)
    sync(str(model.device))
    start, tokens = time.perf_counter(), 0
    for first in range(0, n, batch):
        b = min(batch, n - first)
        out = model.generate(torch.full((b, 1), CLS_ID, device=model.device),
                             attention_mask=torch.ones(b, 1, dtype=torch.long, device=model.device),
                             do_sample=True, top_k=0, temperature=1.0, max_length=max_length, min_new_tokens=1,
                             suppress_tokens=[0, 1, 2, 4], eos_token_id=SEP_ID, pad_token_id=PAD_ID, use_cache=True)
        for row in out[:, 1:].tolist():
            tokens += row.index(SEP_ID) + 1 if SEP_ID in row else len(row)
    return tokens, time.perf_counter() - start


@click.command()
@click.option("--n", default=512, show_default=True, help="Molecules per run.")
@click.option("--batch", "batches", multiple=True, type=int, default=(64, 512), show_default=True,
              help="Batch sizes to compare at (repeatable).")
@click.option("--max-length", default=64, show_default=True, help="Tokens per molecule at most ([CLS] included).")
@click.option("--repeats", default=3, show_default=True, help="Best of this many runs each.")
@click.option("--threads", default=None, type=int, help="torch threads [default: torch's choice].")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
def main(n, batches, max_length, repeats, threads, device):
    if threads:
        torch.set_num_threads(threads)
    flops = matmul_flops(device=device)
    where = torch.cuda.get_device_name(device) if device.startswith("cuda") else (platform.processor() or platform.machine())
    print(f"# {time.strftime('%Y-%m-%d')}, {where}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}; "
          f"fp32 matmul {flops / 1e9:.1f} GFLOP/s")
    print(f"# n={n} molecules, max_length={max_length}, temperature 1.0, no top-k/top-p, seed 0, best of {repeats}")
    header = ("model", "params", "batch", "sampler", "tokens/s", "molecules/s", "matmul bound", "speed-up")
    rows = []
    for label, model in (("bundled " + chemzoo.default_model().name, chemzoo.load(device=device).model),
                         ("ChemGPT-4.7M shape (random)", published_4_7m().to(device))):
        params = model.num_parameters()
        for batch in batches:
            results = {}
            samplers = [("transformers generate", run_generate), ("chemzoo", run_ours)]
            if device.startswith("cuda"):
                samplers[1] = ("chemzoo (CUDA graphs)", run_ours)
                samplers.append(("chemzoo (no graphs)", run_ours_without_graphs))
            for name, fn in samplers:
                runs = [fn(model, n, batch, max_length, seed=0) for _ in range(repeats)]
                results[name] = min(runs, key=lambda r: r[1] / r[0])
            base = results["transformers generate"][0] / results["transformers generate"][1]
            for name, (tokens, seconds) in results.items():
                tps = tokens / seconds
                rows.append((label, f"{params / 1e6:.2f}M", str(batch), name, f"{tps:,.0f}", f"{n / seconds:,.1f}",
                             f"{2 * params * tps / flops:.1%}", f"{tps / base:.2f}x"))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


if __name__ == "__main__":
    main()
