"""Lightning module for potentials: weighted energy + force MSE, Adam with plateau decay.

Loss = w_E * MSE(E / N_atoms) + w_F * MSE(F), in eV and eV/Å (the paper's weights: 0.05 / 0.95).
Learning rate: plateau decay on the validation loss, or a cosine over the planned steps (under a time budget, the
steps that fit it: ``training.common.FitStepsToBudget``).
Validation logs energy MAE (meV/atom) and force MAE (meV/Å); forces need gradients, so the
trainer runs with ``inference_mode=False``.
"""

from __future__ import annotations

import math

import lightning as L
import torch

from chemzoo.potentials.model import Potential, PotentialConfig
from chemzoo.potentials.pyg import graph_from_pyg, is_pyg, labels_from_pyg


def prediction_errors(model: Potential, batch):
    """Energy error per atom (eV, one per structure) and force errors (eV/Å) of ``model`` on a batch: chemzoo's
    (graph, energy, forces), or a PyTorch Geometric ``Batch`` with ``energy`` and ``force`` (a PyG loader's)."""
    if is_pyg(batch):
        graph, (energy, forces) = graph_from_pyg(batch, model.config.cutoff), labels_from_pyg(batch)
    else:
        graph, energy, forces = batch
    out = model(graph, forces=True)
    n_atoms = torch.bincount(graph.batch, minlength=graph.n_structures).to(energy.dtype)
    return (out["energy"] - energy) / n_atoms, out["forces"] - forces


class PotentialModule(L.LightningModule):
    def __init__(self, config: dict, lr: float = 1e-3, energy_weight: float = 0.05, force_weight: float = 0.95,
                 patience: int = 5, factor: float = 0.5, schedule: str = "plateau"):
        super().__init__()
        self.save_hyperparameters()
        self.model = Potential(PotentialConfig(**config))
        self._val = []
        self.planned_steps: int | None = None  # set by training.common.FitStepsToBudget under a time budget

    def _errors(self, batch):
        return prediction_errors(self.model, batch)

    def training_step(self, batch, batch_idx):
        de, df = self._errors(batch)
        loss = self.hparams.energy_weight * de.pow(2).mean() + self.hparams.force_weight * df.pow(2).mean()
        self.log("train_loss", loss, on_step=True, prog_bar=True, batch_size=de.numel())
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, batch_size=de.numel())
        return loss

    def validation_step(self, batch, batch_idx):
        with torch.enable_grad():
            de, df = self._errors(batch)
        self._val.append(torch.stack([de.abs().sum(), de.pow(2).sum(), de.new_tensor(de.numel()),
                                      df.abs().sum(), df.pow(2).sum(), df.new_tensor(df.numel())]).detach())

    def on_validation_epoch_end(self):
        total = torch.stack(self._val).sum(0) if self._val else torch.ones(6, device=self.device)
        self._val.clear()
        total = self.all_gather(total)
        total = total.sum(0) if total.dim() > 1 else total
        e_mae, e_mse, n_e, f_mae, f_mse, n_f = total
        loss = self.hparams.energy_weight * e_mse / n_e + self.hparams.force_weight * f_mse / n_f
        self.log_dict({"val_loss": loss, "val_energy_mae_meV_per_atom": 1000 * e_mae / n_e,
                       "val_force_mae_meV_per_A": 1000 * f_mae / n_f}, prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr)
        if self.hparams.schedule == "cosine":  # to 1 % of lr over the planned steps: for short, fixed budgets
            estimated = max(int(self.trainer.estimated_stepping_batches), 1)

            def cosine(step: int) -> float:  # over the steps that fit a time budget once they are planned
                total = max(self.planned_steps or estimated, 1)
                return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=self.hparams.factor, patience=self.hparams.patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss", "interval": "epoch"}}
