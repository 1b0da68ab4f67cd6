"""Scaling laws of loss in model and data size (fits with bootstrap CIs, plots, compute-optimal
allocation) and training speed estimation (TSE) to rank configurations from their first epochs.

    from chemzoo.scaling import fit, read_table, rank_runs
    f = fit(params, loss)                       # L = a x^-alpha; f.params["alpha"], f.ci["alpha"]
    j = fit(np.stack([N, D]), loss, "joint")    # L = E + A/N^alpha + B/D^beta
"""

from chemzoo.scaling.fits import Allocation, Fit, compute_optimal, fit
from chemzoo.scaling.table import ScalingDataError, Table, read_table
from chemzoo.scaling.tse import RunCurve, estimates, rank_runs

__all__ = ["fit", "Fit", "compute_optimal", "Allocation", "read_table", "Table", "ScalingDataError", "rank_runs",
           "estimates", "RunCurve"]
