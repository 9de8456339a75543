"""One InferenceData builder for every backend.

A backend hands over the user-facing posterior draws (named as in the spec's parameter table,
``(chain, draw, ...)``), its sample stats under ArviZ's names, and, where it computed them,
the pointwise groups; :func:`build_idata` lays them out the same way whichever sampler made
them: group labels as coordinates, the observed response, ``log_lik`` and the replicated
response along the rows of the data.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from . import pointwise as pointwise_module

if TYPE_CHECKING:
    import arviz as az

    from .spec import ModelSpec

__all__ = [
    "OBS_DIM", "SAMPLE_STATS", "obs_coords_dims", "param_coords_dims", "resolve_pointwise", "build_idata",
    "import_arviz_in_background",
]

log = logging.getLogger("hbstan")

OBS_DIM = "__obs__"

# CmdStan's sampler diagnostics and ArviZ's names for them (the sample stats of every fit)
SAMPLE_STATS = {
    "lp__": "lp",
    "accept_stat__": "acceptance_rate",
    "stepsize__": "step_size",
    "treedepth__": "tree_depth",
    "n_leapfrog__": "n_steps",
    "divergent__": "diverging",
    "energy__": "energy",
}
_COUNTS = ("tree_depth", "n_steps")


def obs_coords_dims(spec: ModelSpec) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Coords and dims of the per-observation variables (``log_lik``, the response).

    Both the observed and the replicated response run along the rows of the model's data.
    """
    return {OBS_DIM: np.arange(spec.design.N)}, {"log_lik": [OBS_DIM], spec.design.response: [OBS_DIM]}


def param_coords_dims(spec: ModelSpec) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Coords and dims of the user-facing posterior variables (group labels as coordinates)."""
    coords: dict[str, Any] = {}
    dims: dict[str, list[str]] = {}
    for p in spec.params:
        if p.dims:
            dims[p.name] = list(p.dims)
            coords.update(p.coords or {})
    return coords, dims


def resolve_pointwise(pointwise: str | bool, spec: ModelSpec, chains: int, draws: int) -> str | bool:
    """``"auto"`` as ``"python"`` or, for arrays too large to build by default, False (with a note)."""
    if pointwise != "auto":
        return pointwise
    n_values = spec.design.N * chains * draws
    limit = pointwise_module.AUTO_MAX_VALUES
    if n_values <= limit:
        return "python"
    log.warning(
        "hbstan: log_lik and the replicated data (%d rows x %d draws = %.0f MB each, over pointwise='auto''s "
        "%d values) were not computed; fit.add_pointwise() adds them (az.loo and az.plot_ppc need them), "
        "or pass pointwise='python' to compute them while fitting",
        spec.design.N, chains * draws, n_values * 8 / 2**20, limit,
    )
    return False


def import_arviz_in_background() -> threading.Thread | None:
    """Start importing ArviZ in a thread; None when it is imported already.

    A process's first :func:`build_idata` imports ArviZ (with xarray, matplotlib and numba's
    compilation of ArviZ's kernels: about 1.3 s, most of the first fit's conversion). A
    backend starts this before it samples, while its main thread only waits for the sampler,
    and joins the thread before building the InferenceData. An error is left for that
    ordinary import to raise.
    """
    if "arviz" in sys.modules:
        return None

    def run() -> None:
        try:
            import arviz  # noqa: F401
        except Exception:  # noqa: BLE001 (the import in build_idata raises it again)
            pass

    thread = threading.Thread(target=run, name="hbstan-import-arviz", daemon=True)
    thread.start()
    return thread


def _complete_stats(stats: Mapping[str, np.ndarray], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The seven sample stats of :data:`SAMPLE_STATS` with CmdStan's dtypes (missing ones as NaN/0)."""
    out = {}
    for key in SAMPLE_STATS.values():
        v = stats.get(key)
        if v is None:
            v = np.zeros(shape) if key in ("diverging", *_COUNTS) else np.full(shape, np.nan)
        if key == "diverging":
            v = np.asarray(v).astype(bool)
        elif key in _COUNTS:
            v = np.asarray(v).astype(int)
        else:
            v = np.asarray(v, dtype=float)
        out[key] = v
    return out


def build_idata(
    spec: ModelSpec,
    post: Mapping[str, np.ndarray],
    stats: Mapping[str, np.ndarray],
    *,
    pointwise: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> az.InferenceData:
    """InferenceData of a fit of ``spec``, laid out the same for every backend.

    Parameters
    ----------
    spec : ModelSpec
        The model the draws belong to.
    post : dict
        User-facing posterior arrays, (chain, draw, ...), keyed by the names of ``spec.params``.
    stats : dict
        Sample stats under ArviZ's names (:data:`SAMPLE_STATS`; missing ones are filled in).
    pointwise : dict, optional
        ``az.from_dict`` keyword arguments of the ``posterior_predictive`` and
        ``log_likelihood`` groups (:func:`hbstan.pointwise.pointwise_groups` makes them).
    attrs : dict, optional
        Attributes (``inference_library`` and the like); the formula and family are added.
    """
    import arviz as az

    coords, dims = param_coords_dims(spec)
    # arrays, not lists: ArviZ deep-copies the coords once per variable
    coords = {k: np.asarray(v) if isinstance(v, list) else v for k, v in coords.items()}
    obs_coords, obs_dims = obs_coords_dims(spec)
    coords.update(obs_coords)
    dims.update(obs_dims)
    C, D = next(iter(post.values())).shape[:2] if post else (0, 0)
    return az.from_dict(
        posterior={p.name: post[p.name] for p in spec.params},
        **dict(pointwise or {}),
        observed_data={spec.design.response: spec.design.y},
        sample_stats=_complete_stats(stats, (C, D)),
        coords=coords,
        dims=dims,
        # the formula as a plain str: netCDF cannot store an hbstan.Formula (a str subclass)
        attrs={**dict(attrs or {}), "hbstan_formula": str(spec.formula), "family": spec.family.name},
    )
