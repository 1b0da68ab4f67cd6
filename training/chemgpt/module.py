"""Lightning module for ChemGPT: next-token cross-entropy (nats/token), AdamW, warmup + cosine decay."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from transformers import GPTNeoConfig, GPTNeoForCausalLM


def token_nll(model: GPTNeoForCausalLM, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood (nats) of every next token, and the number of tokens."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    targets = batch["labels"][:, 1:]
    nll = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum")
    return nll, (targets != -100).sum()


class ChemGPTModule(L.LightningModule):
    def __init__(self, config: dict, lr: float = 1e-3, weight_decay: float = 0.01, warmup_steps: int = 200,
                 total_steps: int = 10_000, min_lr_ratio: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.model = GPTNeoForCausalLM(GPTNeoConfig(**config))
        self._val = []

    def training_step(self, batch, batch_idx):
        nll, n = token_nll(self.model, batch)
        loss = nll / n
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        nll, n = token_nll(self.model, batch)
        self._val.append(torch.stack([nll.detach(), n.to(nll.dtype)]))

    def on_validation_epoch_end(self):
        total = torch.stack(self._val).sum(0) if self._val else torch.zeros(2)
        self._val.clear()
        total = self.all_gather(total)
        total = total.sum(0) if total.dim() > 1 else total
        self.log("val_loss", total[0] / total[1].clamp(min=1), prog_bar=True)  # same on every rank

    def configure_optimizers(self):
        hp = self.hparams
        decay = [p for n, p in self.model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=hp.lr, betas=(0.9, 0.95))

        def schedule(step: int) -> float:
            if step < hp.warmup_steps:
                return (step + 1) / hp.warmup_steps
            frac = min(1.0, (step - hp.warmup_steps) / max(1, hp.total_steps - hp.warmup_steps))
            return hp.min_lr_ratio + (1 - hp.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
