"""numba kernels for alternating least squares (used by :mod:`reclab.models.als`).

One half-sweep of ALS solves one small ridge problem per row of a CSR matrix (a user, or an item
when the transposed matrix is passed), each independent of the others. The kernels run those
solves in ``prange`` over *chunks* of rows; each row's arithmetic is sequential and touches no
other row, so the result does not depend on the number of threads or on how chunks are scheduled:
same inputs, same output bits, on one machine. The one sum across rows, the Gram matrix
``F^T F``, is computed in a fixed number of fixed blocks whose partial sums are added in a fixed
order, for the same reason.

Compiled with ``fastmath`` restricted to reassociation and contraction (no ``nnan``/``ninf``), so
that dot products vectorize; the compiled code is fixed, so this changes nothing about
run-to-run determinism, only the last bits relative to a strictly sequential sum.

Dtypes: factor arrays are float32 (or float64), C-contiguous; ``indptr`` int64, ``indices``
int32, per-entry weights the factor dtype; ``bounds`` int64. The callers cast once, so each
kernel compiles to one signature per factor dtype.
"""

import numba
import numpy as np
from numba import njit, prange

_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
# Only explicit prange loops run in parallel: numba would otherwise turn every np.zeros and array
# expression into a parallel region with its own barrier, which costs a scheduler time slice each
# when the cores are shared.
_PARALLEL = {
    "prange": True, "comprehension": False, "reduction": False, "inplace_binop": False,
    "setitem": False, "numpy": False, "stencil": False, "fusion": False,
}
_GRAM_BLOCKS = 64  # fixed (not per thread) so that the Gram matrix is bit-identical across threads
_GRAM_PANEL = 256  # rows whose products are summed in the factor dtype before adding in float64
_CG_TOLERANCE = 1e-20  # squared residual norm below which a CG solve stops, as in implicit
_CHOLESKY_PIVOT = 1e-10  # pivot relative to the mean diagonal below which a system counts as singular
_MAX_JITTER_TRIES = 8


def row_chunks(indptr, factors, n_chunks=256):
    """Split rows into contiguous chunks of about equal work, for dynamic scheduling.

    Parameters
    ----------
    indptr : ndarray of int64, shape (n_rows + 1,)
    factors : int
        Number of factors k; a row costs about ``nnz_row + k / 2`` dot products of length k.
    n_chunks : int
        Upper bound on the number of chunks (fixed, so chunks are independent of threads).

    Returns
    -------
    bounds : ndarray of int64, shape (n_chunks_used + 1,)
        Chunk c covers rows ``bounds[c]:bounds[c + 1]``.
    """
    n_rows = len(indptr) - 1
    if n_rows == 0:
        return np.zeros(1, dtype=np.int64)
    cost = np.diff(indptr).astype(np.float64) + 0.5 * factors
    cumulative = np.cumsum(cost)
    targets = cumulative[-1] * np.arange(1, n_chunks, dtype=np.float64) / n_chunks
    cuts = np.searchsorted(cumulative, targets, side="left") + 1
    bounds = np.unique(np.concatenate(([0], np.minimum(cuts, n_rows), [n_rows])))
    return bounds.astype(np.int64)


@njit(parallel=_PARALLEL, cache=True, fastmath=_FASTMATH)
def gram(factors, regularization):
    """``factors.T @ factors + regularization * I`` in float64, summed in a fixed order.

    Rows are taken in panels of ``_GRAM_PANEL``; a panel's products are dot products of its
    transposed columns (contiguous, so they vectorize) in the factor dtype, and panels are added
    in float64, in fixed blocks (independent of the number of threads) added in a fixed order.

    Parameters
    ----------
    factors : ndarray, shape (n, k)
    regularization : float

    Returns
    -------
    ndarray of float64, shape (k, k)
    """
    n, k = factors.shape
    n_panels = (n + _GRAM_PANEL - 1) // _GRAM_PANEL
    n_blocks = min(_GRAM_BLOCKS, max(n_panels, 1))
    per_block = (n_panels + n_blocks - 1) // n_blocks
    partial = np.zeros((n_blocks, k, k), dtype=np.float64)
    for block in prange(n_blocks):
        columns = np.empty((k, _GRAM_PANEL), dtype=factors.dtype)
        out = partial[block]
        for panel in range(block * per_block, min(n_panels, (block + 1) * per_block)):
            start = panel * _GRAM_PANEL
            size = min(_GRAM_PANEL, n - start)
            for i in range(size):
                for a in range(k):
                    columns[a, i] = factors[start + i, a]
            for a in range(k):
                column_a = columns[a]
                for c in range(a, k):
                    column_c = columns[c]
                    s = np.float32(0.0)
                    for i in range(size):
                        s += column_a[i] * column_c[i]
                    out[a, c] += s
    total = np.zeros((k, k), dtype=np.float64)
    for block in range(n_blocks):
        for a in range(k):
            for c in range(a, k):
                total[a, c] += partial[block, a, c]
    for a in range(k):
        total[a, a] += regularization
        for c in range(a + 1, k):
            total[c, a] = total[a, c]
    return total


@njit(parallel=_PARALLEL, cache=True, fastmath=_FASTMATH)
def implicit_cg_sweep(indptr, indices, weight, other, gram_reg, factors, cg_steps, bounds):
    """Update ``factors`` in place by ``cg_steps`` conjugate-gradient steps per row.

    Row u solves ``(G + Y^T (C_u - I) Y) x_u = Y^T C_u p_u`` with ``G = Y^T Y + lambda I``,
    ``Y = other``, ``C_u - I = diag(weight)`` over the row's stored entries and ``p_u`` = 1 on
    them; warm-started from the current ``x_u`` (Hu, Koren & Volinsky 2008; Takacs et al. 2011).

    Parameters
    ----------
    indptr, indices : CSR structure of the rows being solved (int64, int32)
    weight : ndarray, shape (nnz,)
        ``c_ui - 1 = alpha * r_ui`` per stored entry (all > 0).
    other : ndarray, shape (n_other, k)
        The fixed factors Y.
    gram_reg : ndarray, shape (k, k)
        ``Y^T Y + lambda I`` in the factor dtype.
    factors : ndarray, shape (n_rows, k)
        Current factors X, overwritten.
    cg_steps : int
    bounds : ndarray of int64
        Row chunks from :func:`row_chunks`.
    """
    k = factors.shape[1]
    one = np.float32(1.0)
    for chunk in prange(len(bounds) - 1):
        r = np.empty(k, dtype=factors.dtype)
        p = np.empty(k, dtype=factors.dtype)
        ap = np.empty(k, dtype=factors.dtype)
        for u in range(bounds[chunk], bounds[chunk + 1]):
            x = factors[u]
            if indptr[u] == indptr[u + 1]:  # no interactions: the exact minimizer is x = 0
                for a in range(k):
                    x[a] = 0.0
                continue
            # r = b - A x
            for a in range(k):
                s = np.float32(0.0)
                for c in range(k):
                    s += gram_reg[a, c] * x[c]
                r[a] = -s
            for j in range(indptr[u], indptr[u + 1]):
                y = other[indices[j]]
                w = weight[j]
                s = np.float32(0.0)
                for a in range(k):
                    s += y[a] * x[a]
                coef = (one + w) - w * s
                for a in range(k):
                    r[a] += coef * y[a]
            rs_old = np.float32(0.0)
            for a in range(k):
                p[a] = r[a]
                rs_old += r[a] * r[a]
            if rs_old < _CG_TOLERANCE:
                continue
            for _ in range(cg_steps):
                for a in range(k):
                    s = np.float32(0.0)
                    for c in range(k):
                        s += gram_reg[a, c] * p[c]
                    ap[a] = s
                for j in range(indptr[u], indptr[u + 1]):
                    y = other[indices[j]]
                    s = np.float32(0.0)
                    for a in range(k):
                        s += y[a] * p[a]
                    s *= weight[j]
                    for a in range(k):
                        ap[a] += s * y[a]
                p_ap = np.float32(0.0)
                for a in range(k):
                    p_ap += p[a] * ap[a]
                if not p_ap > 0.0:  # singular direction (regularization 0): stop, stay finite
                    break
                step = rs_old / p_ap
                rs_new = np.float32(0.0)
                for a in range(k):
                    x[a] += step * p[a]
                    r[a] -= step * ap[a]
                    rs_new += r[a] * r[a]
                if rs_new < _CG_TOLERANCE:
                    break
                beta = rs_new / rs_old
                for a in range(k):
                    p[a] = r[a] + beta * p[a]
                rs_old = rs_new


@njit(cache=True, fastmath=_FASTMATH)
def _cholesky_solve(a, b, out):
    """Solve ``a x = b`` for symmetric positive definite ``a`` (float64, overwritten).

    Returns False, leaving ``out`` untouched, when a pivot falls below ``_CHOLESKY_PIVOT`` times
    the mean diagonal (numerically singular); the caller then adds a jitter and retries.
    """
    k = a.shape[0]
    scale = 0.0
    for i in range(k):
        scale += a[i, i]
    scale = scale / k
    floor = _CHOLESKY_PIVOT * scale
    # lower-triangular L stored in a
    for j in range(k):
        d = a[j, j]
        for m in range(j):
            d -= a[j, m] * a[j, m]
        if not d > floor or d <= 0.0:
            return False
        d = np.sqrt(d)
        a[j, j] = d
        for i in range(j + 1, k):
            s = a[i, j]
            for m in range(j):
                s -= a[i, m] * a[j, m]
            a[i, j] = s / d
    # forward then backward substitution, in b
    for i in range(k):
        s = b[i]
        for m in range(i):
            s -= a[i, m] * b[m]
        b[i] = s / a[i, i]
    for i in range(k - 1, -1, -1):
        s = b[i]
        for m in range(i + 1, k):
            s -= a[m, i] * b[m]
        b[i] = s / a[i, i]
    for i in range(k):
        out[i] = b[i]
    return True


@njit(parallel=_PARALLEL, cache=True, fastmath=_FASTMATH)
def cholesky_sweep(indptr, indices, a_weight, b_weight, other, base, reg_per_entry, factors,
                   bounds):
    """Exact least-squares update of ``factors`` in place, one Cholesky solve per row.

    Row u solves ``(base + sum_j a_j y_j y_j^T + reg_per_entry * n_u I) x_u = sum_j b_j y_j``
    over its stored entries j (item ``y_j = other[indices[j]]``), in float64.

    * implicit ALS: ``base = Y^T Y + lambda I``, ``a_j = c_uj - 1``, ``b_j = c_uj``,
      ``reg_per_entry = 0``;
    * explicit ALS with weighted-lambda regularization (Zhou et al. 2008): ``base = 0``,
      ``a_j = 1``, ``b_j`` = the residual rating, ``reg_per_entry = lambda``.

    A row with no entries and a zero ``base`` gets ``x_u = 0``. A numerically singular system
    (only possible with ``lambda = 0``) gets a diagonal jitter of 1e-8, 1e-7, ... times its
    mean diagonal (plus 1e-12) until Cholesky succeeds.

    Parameters
    ----------
    indptr, indices : CSR structure of the rows being solved (int64, int32)
    a_weight, b_weight : ndarray, shape (nnz,)
    other : ndarray, shape (n_other, k)
    base : ndarray of float64, shape (k, k)
    reg_per_entry : float
    factors : ndarray, shape (n_rows, k), overwritten
    bounds : ndarray of int64, row chunks from :func:`row_chunks`
    """
    k = factors.shape[1]
    for chunk in prange(len(bounds) - 1):
        a = np.empty((k, k), dtype=np.float64)
        work = np.empty((k, k), dtype=np.float64)
        b = np.empty(k, dtype=np.float64)
        rhs = np.empty(k, dtype=np.float64)
        y = np.empty(k, dtype=np.float64)
        solution = np.empty(k, dtype=np.float64)
        for u in range(bounds[chunk], bounds[chunk + 1]):
            start = indptr[u]
            end = indptr[u + 1]
            for r in range(k):
                b[r] = 0.0
                for c in range(k):
                    a[r, c] = base[r, c]
            for j in range(start, end):
                row = other[indices[j]]
                for r in range(k):
                    y[r] = row[r]
                wa = np.float64(a_weight[j])
                wb = np.float64(b_weight[j])
                for r in range(k):
                    b[r] += wb * y[r]
                    war = wa * y[r]
                    for c in range(r, k):
                        a[r, c] += war * y[c]
            ridge = reg_per_entry * (end - start)
            for r in range(k):
                a[r, r] += ridge
                for c in range(r + 1, k):
                    a[c, r] = a[r, c]
            mean_diagonal = 0.0
            for r in range(k):
                mean_diagonal += a[r, r]
            mean_diagonal /= k
            if mean_diagonal == 0.0:  # empty row, nothing known: the minimum-norm answer is 0
                for r in range(k):
                    factors[u, r] = 0.0
                continue
            jitter = 0.0
            for attempt in range(_MAX_JITTER_TRIES + 1):
                for r in range(k):
                    rhs[r] = b[r]
                    for c in range(k):
                        work[r, c] = a[r, c]
                    work[r, r] += jitter
                if _cholesky_solve(work, rhs, solution):
                    for r in range(k):
                        factors[u, r] = solution[r]
                    break
                jitter = mean_diagonal * 10.0 ** (attempt - 8) + 1e-12


@njit(parallel=_PARALLEL, cache=True, fastmath=_FASTMATH)
def implicit_loss_rows(indptr, indices, weight, rows, other, other_gram, bounds):
    """Per-row data term of the implicit-feedback loss, in float64.

    ``loss_u = sum_i c_ui (p_ui - x_u.y_i)^2 = x_u^T (Y^T Y) x_u
    + sum_{stored i} [c_ui (1 - s)^2 - s^2]`` with ``s = x_u.y_i``, which costs
    O(k^2 + nnz_u k) instead of O(n_items k).

    Parameters
    ----------
    indptr, indices, weight : CSR of ``c_ui - 1`` over the rows
    rows : ndarray, shape (n_rows, k)
    other : ndarray, shape (n_other, k)
    other_gram : ndarray of float64, shape (k, k), ``Y^T Y`` without regularization
    bounds : ndarray of int64

    Returns
    -------
    ndarray of float64, shape (n_rows,)
    """
    n, k = rows.shape
    out = np.empty(n, dtype=np.float64)  # every row is written: bounds cover 0..n
    for chunk in prange(len(bounds) - 1):
        x = np.empty(k, dtype=np.float64)
        for u in range(bounds[chunk], bounds[chunk + 1]):
            for a in range(k):
                x[a] = rows[u, a]
            total = 0.0
            for a in range(k):
                s = 0.0
                for c in range(k):
                    s += other_gram[a, c] * x[c]
                total += x[a] * s
            for j in range(indptr[u], indptr[u + 1]):
                y = other[indices[j]]
                s = 0.0
                for a in range(k):
                    s += x[a] * y[a]
                total += (1.0 + weight[j]) * (1.0 - s) ** 2 - s * s
            out[u] = total
    return out


@njit(parallel=_PARALLEL, cache=True, fastmath=_FASTMATH)
def squared_error_rows(indptr, indices, values, rows, other, bounds):
    """Per-row ``sum_j (values_j - x_u . y_{indices_j})^2`` over stored entries, float64.

    Returns
    -------
    ndarray of float64, shape (n_rows,)
    """
    n, k = rows.shape
    out = np.empty(n, dtype=np.float64)  # every row is written: bounds cover 0..n
    for chunk in prange(len(bounds) - 1):
        for u in range(bounds[chunk], bounds[chunk + 1]):
            x = rows[u]
            total = 0.0
            for j in range(indptr[u], indptr[u + 1]):
                y = other[indices[j]]
                s = 0.0
                for a in range(k):
                    s += np.float64(x[a]) * y[a]
                total += (values[j] - s) ** 2
            out[u] = total
    return out



def dynamic_schedule():
    """Context manager for the row sweeps: ``prange`` hands out row chunks one at a time.

    Rows differ widely in cost on long-tailed data, and the two cores are shared, so dynamic
    scheduling keeps both threads busy. Use it around the sweep kernels only: inside it, every
    array expression of a parallel kernel (``np.zeros``, ``+=`` on arrays) would also be handed
    out one element at a time. The result does not depend on the schedule (rows are independent).
    """
    return numba.parallel_chunksize(1)
