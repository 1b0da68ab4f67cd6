"""Log-log scaling plots: the runs, each group's fitted power law and its confidence band.

Returns ``matplotlib.figure.Figure`` objects built without pyplot (no global state: safe in
notebooks, threads and servers); ``fig.savefig("curve.png")`` writes the PNG.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from chemzoo.scaling.fits import Fit


def scaling_figure(groups: dict[str, tuple[np.ndarray, np.ndarray, Fit | None]], x_label: str, y_label: str,
                   title: str | None = None) -> Figure:
    """One colour per group: its runs as points, its fit as a line over the fitted range (extended by
    a quarter decade each side) with the fit's band shaded, the exponent and its CI in the legend."""
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    colours = [f"C{k % 10}" for k in range(len(groups))]
    for colour, (name, (x, y, fit)) in zip(colours, groups.items()):
        label = name
        if fit is not None:
            lo_x, hi_x = np.log10(x.min()) - 0.25, np.log10(x.max()) + 0.25
            grid = np.logspace(lo_x, hi_x, 200)
            lo, hi = fit.band(grid)
            ax.fill_between(grid, lo, hi, color=colour, alpha=0.18, linewidth=0)
            ax.plot(grid, fit.predict(grid), color=colour, linewidth=1.5)
            a_lo, a_hi = fit.ci["alpha"]
            label = f"{name}: α = {fit.params['alpha']:.3f} [{a_lo:.3f}, {a_hi:.3f}]"
        ax.scatter(x, y, color=colour, s=22, zorder=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    level = next((f.level for _, _, f in groups.values() if f is not None), 0.95)
    ax.legend(title=f"fit and {level:.0%} band (bootstrap over runs)", fontsize=8, title_fontsize=8)
    if title:
        ax.set_title(title)
    return fig
