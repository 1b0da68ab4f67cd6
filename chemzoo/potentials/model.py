"""A neural-network potential: one architecture (SchNet, PaiNN or NequIP) plus its energy scale,
per-element reference energies and element list, saved as ``config.json`` + ``model.safetensors``.

Energy E = sum_i (scale * net_i + shift + E_ref[Z_i]) in eV; forces F = -dE/dr (eV/Å) by autograd,
so they are conservative; stress = (1/V) dE/d(strain) (eV/Å^3) for periodic cells.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from ase.data import chemical_symbols
from safetensors.torch import save_file
from torch import nn

from chemzoo.errors import ChemzooError
from chemzoo.files import write_atomically
from chemzoo.potentials.graph import Graph
from chemzoo.potentials.layers import scatter_sum
from chemzoo.potentials.nequip import NequIP
from chemzoo.potentials.painn import PaiNN
from chemzoo.potentials.schnet import SchNet

ARCHITECTURES = {"schnet": SchNet, "painn": PaiNN, "nequip": NequIP}
MODEL_TYPE = "chemzoo_potential"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class PotentialConfig:
    """Everything needed to rebuild a potential; written as ``config.json``."""

    architecture: str
    elements: list[int]  # atomic numbers, in species-index order
    cutoff: float = 5.0  # Å
    hyperparameters: dict = field(default_factory=dict)  # width/depth knobs of the architecture
    reference_energies: list[float] | None = None  # eV per element, fitted on the training set
    energy_scale: float = 1.0  # eV per network output unit
    energy_shift: float = 0.0  # eV per atom
    dtypes: list[str] = field(default_factory=lambda: ["float32", "float64"])
    # shortest distance (Å) of each element pair ("C-H", symbols sorted) in the training structures;
    # the calculator warns once below it (None for checkpoints trained before it was recorded)
    min_distances: dict[str, float] | None = None
    model_type: str = MODEL_TYPE

    @property
    def symbols(self) -> list[str]:
        return [chemical_symbols[z] for z in self.elements]


class Potential(nn.Module):
    def __init__(self, config: PotentialConfig):
        super().__init__()
        if config.architecture not in ARCHITECTURES:
            raise ChemzooError(f"unknown architecture {config.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        self.config = config
        self.net = ARCHITECTURES[config.architecture](num_elements=len(config.elements), cutoff=config.cutoff,
                                                      **config.hyperparameters)
        species = torch.full((119,), -1, dtype=torch.long)
        species[torch.tensor(config.elements)] = torch.arange(len(config.elements))
        self.register_buffer("species_of", species, persistent=False)
        ref = config.reference_energies or [0.0] * len(config.elements)
        self.register_buffer("reference_energies", torch.tensor(ref, dtype=torch.float64))

    def frozen(self) -> "Potential":
        """This potential for inference (what the ASE calculator uses): eval mode, parameters frozen, and the
        architecture's inference path on (SchNet and PaiNN: hand-written backward passes, first derivatives only;
        PaiNN's follows eval mode).
        ``train()`` or unfreezing a parameter goes back to plain autograd. Returns the potential itself."""
        self.eval().requires_grad_(False)
        if isinstance(self.net, SchNet):
            self.net.fused = True
            self.net.__dict__.pop("_fused_plan", None)  # its weights are read afresh on the next call
        return self

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def species(self, numbers: torch.Tensor) -> torch.Tensor:
        species = self.species_of[numbers]
        if (species < 0).any():
            bad = sorted({chemical_symbols[z] for z in numbers[species < 0].tolist()})
            raise ChemzooError(f"element(s) {', '.join(bad)} not supported by this potential; "
                               f"it was trained on {' '.join(self.config.symbols)}")
        return species

    def atomic_energies(self, graph: Graph, positions: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Energy of each atom (eV) for the given (possibly strained) positions and shifts."""
        species = self.species(graph.numbers)
        edge_index = graph.edge_index
        pairs = isinstance(self.net, SchNet)  # SchNet: one edge per atom pair, its messages go both ways
        if pairs:
            keep = self.net.pair_edges(edge_index, graph.shifts)
            edge_index, shifts = edge_index.index_select(1, keep), shifts.index_select(0, keep)
        i, j = edge_index
        vectors = positions.index_select(0, j) - positions.index_select(0, i) + shifts  # index_select: its backward is a fast index_add
        lengths = vectors.norm(dim=-1)
        out = self.net(species, vectors, lengths, edge_index, pairs=True) if pairs else self.net(species, vectors, lengths, edge_index)
        ref = self.reference_energies.to(out.dtype)[species]
        return out * self.config.energy_scale + self.config.energy_shift + ref

    def forward(self, graph: Graph, forces: bool = True, stress: bool = False) -> dict[str, torch.Tensor]:
        """energy (S,) eV; forces (N, 3) eV/Å; stress (S, 3, 3) eV/Å^3 when asked (periodic cells only).
        ``graph``: a chemzoo ``Graph``, or a PyTorch Geometric ``Data`` / ``Batch`` (``z``, ``pos`` in Å; see
        ``chemzoo.potentials.pyg``), whose neighbours are found at this potential's cutoff."""
        if not isinstance(graph, Graph):
            from chemzoo.potentials.pyg import graph_from_pyg, is_pyg

            if not is_pyg(graph):
                raise ChemzooError(f"a potential takes a chemzoo Graph or a PyG Data/Batch, not {type(graph).__name__}")
            graph = graph_from_pyg(graph, self.config.cutoff)
        positions, shifts = graph.positions, graph.shifts
        if forces:
            positions = positions.detach().requires_grad_(True)
        strained = positions
        if stress:
            strain = torch.zeros_like(graph.cell, requires_grad=True)
            sym = 0.5 * (strain + strain.transpose(1, 2))
            if graph.n_structures == 1:  # one cell (the calculator): plain matmuls, no per-edge copies of it
                strained, shifts = positions + positions @ sym[0], shifts + shifts @ sym[0]
            else:
                strained = positions + torch.einsum("ni,nij->nj", positions, sym[graph.batch])
                shifts = shifts + torch.einsum("ei,eij->ej", shifts, sym[graph.batch[graph.edge_index[0]]])
        energy = scatter_sum(self.atomic_energies(graph, strained, shifts), graph.batch, graph.n_structures)
        result = {"energy": energy}
        wrt = ([positions] if forces else []) + ([strain] if stress else [])
        if wrt:
            grads = torch.autograd.grad(energy.sum(), wrt, create_graph=self.training)
            if forces:
                result["forces"] = -grads[0]
            if stress:
                result["stress"] = grads[-1] / torch.linalg.det(graph.cell).abs()[:, None, None]
        return result

    # -- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_atomically(path / "config.json", json.dumps(asdict(self.config), indent=2) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: str = "float32", device: str = "cpu") -> "Potential":
        path = Path(path)
        raw = json.loads((path / "config.json").read_text())
        if raw.get("model_type") != MODEL_TYPE:
            raise ChemzooError(f"{path} is not a chemzoo potential (config.json model_type {raw.get('model_type')!r})")
        config = PotentialConfig(**raw)
        if dtype not in config.dtypes:
            raise ChemzooError(f"this potential cannot run in {dtype}; it supports {', '.join(config.dtypes)}")
        if dtype == "float64" and str(device).startswith("mps"):
            raise ChemzooError("float64 is not supported on Apple MPS devices; use dtype='float32' or device='cpu'")
        from chemzoo.hub import check_finite_weights, read_safetensors

        state = read_safetensors(path / "model.safetensors")
        check_finite_weights(state.items(), path / "model.safetensors")
        model = cls(config)
        model.load_state_dict(state)
        return model.to(device=device, dtype=DTYPES[dtype]).eval()
