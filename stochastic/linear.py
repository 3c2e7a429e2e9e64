"""Array-based construction of Pyomo variables, parameters and linear constraints.

Pyomo builds one Python object per variable and per constraint; what we control is how
much Python work goes into each. The helpers here take NumPy arrays (index arrays and
coefficients, in COO form) for a whole constraint family at once and create one flat
indexed Pyomo component per family, so formulations are written as array algebra and
the per-row cost is a single ``LinearExpression`` construction.

Conventions
-----------
* Every variable, parameter and constraint family is a flat Pyomo component indexed
  ``0..size-1``; :class:`VarArray`, :class:`ParamArray` and :class:`RowArray` remember its
  shape and dimension names and convert between flat and shaped views.
* Data that changes between solves (demand, PV availability, scenario weights, initial
  state of charge) lives in mutable :class:`ParamArray` objects; the persistent solver
  interface then updates only those numbers on a re-solve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.core.expr.numeric_expr import LinearExpression

__all__ = [
    "ParamArray",
    "RowArray",
    "Terms",
    "VarArray",
    "add_abs_rows",
    "add_param",
    "add_rows",
    "add_var",
    "linear_sum",
    "terms",
]


@dataclass(frozen=True, eq=False)
class VarArray:
    """A flat Pyomo ``Var`` seen as an N-dimensional array.

    Attributes
    ----------
    component : pyomo.environ.Var
    shape : tuple of int
    dims : tuple of str
    data : list
        The ``VarData`` objects in C order.
    """

    component: pyo.Var
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    data: list

    @property
    def size(self) -> int:
        return len(self.data)

    def index(self) -> np.ndarray:
        """Flat position of every element, shaped like the array."""
        return np.arange(self.size).reshape(self.shape)

    def values(self) -> np.ndarray:
        """Current values (``nan`` where a variable has no value), shaped like the array."""
        out = np.array([v.value for v in self.data], dtype=float)
        return out.reshape(self.shape)


@dataclass(frozen=True, eq=False)
class ParamArray:
    """A flat mutable Pyomo ``Param`` seen as an N-dimensional array."""

    component: pyo.Param
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    data: list

    @property
    def size(self) -> int:
        return len(self.data)

    def set(self, values: np.ndarray | float) -> None:
        """Overwrite all values (broadcast to the array's shape)."""
        flat = np.broadcast_to(np.asarray(values, dtype=float), self.shape).ravel()
        for item, value in zip(self.data, flat.tolist(), strict=True):
            item.set_value(value)

    def values(self) -> np.ndarray:
        return np.array([pyo.value(p) for p in self.data], dtype=float).reshape(self.shape)


@dataclass(frozen=True, eq=False)
class RowArray:
    """A flat Pyomo ``Constraint`` family seen as an N-dimensional array."""

    component: pyo.Constraint
    shape: tuple[int, ...]
    dims: tuple[str, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))


@dataclass(frozen=True, eq=False)
class Terms:
    """Linear terms ``coef * var[col]`` contributing to rows ``row`` (COO triplets)."""

    var: VarArray
    row: np.ndarray
    col: np.ndarray
    coef: np.ndarray


def _bound_list(value, shape: tuple[int, ...]) -> list:
    """Bounds as a list of floats, ``None`` (unbounded) or ``ParamData`` (mutable)."""
    size = int(np.prod(shape, dtype=int))
    if value is None:
        return [None] * size
    if isinstance(value, ParamArray):
        if value.shape != shape:
            raise ValueError(f"parameter bound of shape {value.shape} for shape {shape}")
        return value.data
    flat = np.broadcast_to(np.asarray(value, dtype=float), shape).ravel()
    return [None if np.isinf(v) else v for v in flat.tolist()]


def add_var(
    block: pyo.Block,
    name: str,
    shape: Sequence[int],
    dims: Sequence[str],
    lb: np.ndarray | float | ParamArray | None = None,
    ub: np.ndarray | float | ParamArray | None = None,
) -> VarArray:
    """Add a flat continuous variable family to ``block``.

    Parameters
    ----------
    block : pyomo Block
    name : str
        Component name inside ``block``.
    shape, dims : sequence
        Array shape and dimension names.
    lb, ub : array-like, float, ParamArray or None
        Bounds broadcast to ``shape``; ``±inf`` or ``None`` mean unbounded; a
        :class:`ParamArray` of the same shape gives mutable bounds.
    """
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape, dtype=int))
    lo = _bound_list(lb, shape)
    hi = _bound_list(ub, shape)
    var = pyo.Var(range(size), bounds=lambda _, i: (lo[i], hi[i]), dense=True)
    block.add_component(name, var)
    return VarArray(var, shape, tuple(dims), list(var.values()))


def add_param(block: pyo.Block, name: str, values: np.ndarray, dims: Sequence[str]) -> ParamArray:
    """Add a flat mutable parameter family holding ``values``."""
    values = np.asarray(values, dtype=float)
    flat = values.ravel().tolist()
    param = pyo.Param(
        range(len(flat)), mutable=True, initialize=dict(enumerate(flat)), within=pyo.Reals
    )
    block.add_component(name, param)
    return ParamArray(param, values.shape, tuple(dims), list(param.values()))


def terms(
    var: VarArray,
    row: np.ndarray,
    col: np.ndarray,
    coef: np.ndarray | float = 1.0,
) -> Terms:
    """Broadcast row indices, variable indices and coefficients together into COO terms.

    Parameters
    ----------
    var : VarArray
    row : array of int
        Flat row position of each term.
    col : array of int
        Flat position in ``var`` of each term.
    coef : array-like or float
    """
    row, col, coef = np.broadcast_arrays(
        np.asarray(row), np.asarray(col), np.asarray(coef, dtype=float)
    )
    keep = coef.ravel() != 0.0
    return Terms(
        var,
        row.ravel()[keep].astype(np.int64),
        col.ravel()[keep].astype(np.int64),
        coef.ravel()[keep].astype(float),
    )


def _csr(all_terms: Sequence[Terms], n_rows: int):
    """Merge term lists into rows: (row starts, coefficients, VarData), one entry per
    variable and row (repeated terms summed, zero sums dropped), columns in order."""
    arrays: dict[int, tuple[int, VarArray]] = {}
    offset = 0
    for t in all_terms:
        if id(t.var) not in arrays:
            arrays[id(t.var)] = (offset, t.var)
            offset += t.var.size
    if not all_terms:
        return [0] * (n_rows + 1), [], []
    rows = np.concatenate([t.row for t in all_terms])
    cols = np.concatenate([t.col + arrays[id(t.var)][0] for t in all_terms])
    coefs = np.concatenate([t.coef for t in all_terms])
    mat = sp.csr_matrix((coefs, (rows, cols)), shape=(n_rows, max(offset, 1)))
    mat.sum_duplicates()
    mat.eliminate_zeros()
    mat.sort_indices()
    flat: list = []
    for _, var in sorted(arrays.values(), key=lambda x: x[0]):
        flat.extend(var.data)
    return mat.indptr.tolist(), mat.data.tolist(), [flat[c] for c in mat.indices.tolist()]


def add_rows(
    block: pyo.Block,
    name: str,
    shape: Sequence[int],
    dims: Sequence[str],
    all_terms: Sequence[Terms],
    lb: np.ndarray | float | ParamArray | None = None,
    ub: np.ndarray | float | ParamArray | None = None,
) -> RowArray:
    """Add a family of linear rows ``lb <= sum(terms) <= ub`` to ``block``.

    Parameters
    ----------
    block : pyomo Block
    name : str
    shape, dims : sequence
        Shape and dimension names of the row array.
    all_terms : sequence of Terms
        Every linear term of every row, rows addressed by flat position.
    lb, ub : array-like, float, ParamArray or None
        Row bounds broadcast to ``shape`` (``None`` or ``±inf``: no bound). Pass the same
        object for both to get an equality; a :class:`ParamArray` makes the bound mutable.
    """
    shape = tuple(int(s) for s in shape)
    n_rows = int(np.prod(shape, dtype=int))
    starts, coefs, var_list = _csr(all_terms, n_rows)
    lo = _bound_list(lb, shape)
    hi = _bound_list(ub, shape)
    equal = lb is ub and lb is not None

    def rule(_, i):
        s, e = starts[i], starts[i + 1]
        body = LinearExpression(constant=0, linear_coefs=coefs[s:e], linear_vars=var_list[s:e])
        if equal:
            return body == lo[i]
        return (lo[i], body, hi[i])

    con = pyo.Constraint(range(n_rows), rule=rule)
    block.add_component(name, con)
    return RowArray(con, shape, tuple(dims))


def add_abs_rows(
    block: pyo.Block,
    name: str,
    bound: VarArray,
    x: VarArray,
    dims: Sequence[str],
) -> tuple[RowArray, RowArray]:
    """Rows ``bound >= x`` and ``bound >= -x`` elementwise (``name_above``,
    ``name_below``): with ``bound`` priced, ``bound = |x|`` at an optimum.

    ``bound`` and ``x`` have the same shape; returns the two row arrays.
    """
    idx = np.arange(x.size)
    return tuple(
        add_rows(
            block,
            f"{name}_{side}",
            x.shape,
            dims,
            [terms(bound, idx, idx), terms(x, idx, idx, -sign)],
            0.0,
            None,
        )
        for sign, side in ((1.0, "above"), (-1.0, "below"))
    )


def linear_sum(all_terms: Sequence[Terms]) -> LinearExpression:
    """One linear expression ``sum(coef * var)`` over all terms (rows are ignored)."""
    coefs = [c for t in all_terms for c in t.coef.tolist()]
    var_list = [t.var.data[c] for t in all_terms for c in t.col.tolist()]
    return LinearExpression(constant=0, linear_coefs=coefs, linear_vars=var_list)
