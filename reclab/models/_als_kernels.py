"""numba kernels for alternating least squares (used by :mod:`reclab.models.als`), and the score
products of every factor model (:func:`row_products`, used by :mod:`reclab.models.base`).

One half-sweep of ALS solves one small ridge problem per row of a CSR matrix (a user, or an item
when the transposed matrix is passed), each independent of the others. The kernels run those
solves in ``prange`` over *chunks* of rows; each row's arithmetic is sequential and touches no
other row, so the result does not depend on the number of threads or on how chunks are scheduled:
same inputs, same output bits, on one machine. The one sum across rows, the Gram matrix
``F^T F``, is computed in a fixed number of fixed blocks whose partial sums are added in a fixed
order, for the same reason.

Compiled with ``fastmath`` restricted to reassociation, contraction, signed zeros and reciprocals
(no ``nnan``/``ninf``, so non-finite checks still work), so that dot products vectorize; this
changes only the last bits relative to a strictly sequential sum, provided every process runs the
same machine code. numba does not ensure that for a ``parallel`` kernel (the process that compiles
it runs other code than the processes that load it from the cache), so the ``fastmath`` kernels
are called through :class:`reclab._numba_cache.FromCache`, which always runs the cached code. Only the
explicit ``prange`` loops run in parallel.

Dtypes: factor arrays are float32 (or float64), C-contiguous; ``indptr`` int64, ``indices``
int32, per-entry weights the factor dtype; ``bounds`` int64. The callers cast once, so each
kernel compiles to one signature per factor dtype.
"""

import numba
import numpy as np
from numba import njit, prange

from reclab._numba_cache import FromCache

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
_SOLVE_PANEL = 128  # entries of one row gathered at a time by the exact solves
_CG_TOLERANCE = 1e-20  # squared residual norm below which a CG solve stops, as in implicit
_MAX_JITTER_TRIES = 12


def pivot_floor(dtype):
    """Relative Cholesky pivot below which a system built from ``dtype`` sums counts as singular.

    The systems' sums are taken in the factor dtype, so a pivot that keeps less than about
    100 units of roundoff of its diagonal entry is noise: trusting it would put huge values in
    directions the data does not determine.
    """
    return 100.0 * float(np.finfo(dtype).eps)


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


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _matvec(matrix, vector, out):
    """``out = matrix @ vector``, four rows at a time so that they share each load of ``vector``."""
    k = vector.shape[0]
    a = 0
    while a + 4 <= k:
        row0, row1, row2, row3 = matrix[a], matrix[a + 1], matrix[a + 2], matrix[a + 3]
        s0 = np.float32(0.0)
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        s3 = np.float32(0.0)
        for c in range(k):
            v = vector[c]
            s0 += row0[c] * v
            s1 += row1[c] * v
            s2 += row2[c] * v
            s3 += row3[c] * v
        out[a] = s0
        out[a + 1] = s1
        out[a + 2] = s2
        out[a + 3] = s3
        a += 4
    while a < k:
        s0 = np.float32(0.0)
        for c in range(k):
            s0 += matrix[a, c] * vector[c]
        out[a] = s0
        a += 1


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _add_weighted_rows(start, end, indices, weight, other, vector, out, residual):
    """``out += sum_j coef_j y_j`` over entries ``start:end``, with ``s_j = y_j . vector`` and
    ``coef_j = (1 + w_j) - w_j s_j`` (``residual``: the part of ``b - A x``) or ``w_j s_j``.

    Four entries at a time: their dot products are independent, and ``out`` is loaded and
    stored once per four rows instead of once per row (about 25% faster than one at a time).
    """
    k = vector.shape[0]
    one = np.float32(1.0)
    j = start
    while j + 4 <= end:
        y0, y1 = other[indices[j]], other[indices[j + 1]]
        y2, y3 = other[indices[j + 2]], other[indices[j + 3]]
        s0 = np.float32(0.0)
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        s3 = np.float32(0.0)
        for a in range(k):
            v = vector[a]
            s0 += y0[a] * v
            s1 += y1[a] * v
            s2 += y2[a] * v
            s3 += y3[a] * v
        w0, w1, w2, w3 = weight[j], weight[j + 1], weight[j + 2], weight[j + 3]
        if residual:
            s0 = (one + w0) - w0 * s0
            s1 = (one + w1) - w1 * s1
            s2 = (one + w2) - w2 * s2
            s3 = (one + w3) - w3 * s3
        else:
            s0 *= w0
            s1 *= w1
            s2 *= w2
            s3 *= w3
        for a in range(k):
            out[a] += s0 * y0[a] + s1 * y1[a] + s2 * y2[a] + s3 * y3[a]
        j += 4
    while j < end:
        y0 = other[indices[j]]
        s0 = np.float32(0.0)
        for a in range(k):
            s0 += y0[a] * vector[a]
        w0 = weight[j]
        if residual:
            s0 = (one + w0) - w0 * s0
        else:
            s0 *= w0
        for a in range(k):
            out[a] += s0 * y0[a]
        j += 1


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
            start = indptr[u]
            end = indptr[u + 1]
            # r = b - A x
            _matvec(gram_reg, x, r)
            for a in range(k):
                r[a] = -r[a]
            _add_weighted_rows(start, end, indices, weight, other, x, r, True)
            rs_old = np.float32(0.0)
            for a in range(k):
                p[a] = r[a]
                rs_old += r[a] * r[a]
            if rs_old < _CG_TOLERANCE:
                continue
            for _ in range(cg_steps):
                _matvec(gram_reg, p, ap)
                _add_weighted_rows(start, end, indices, weight, other, p, ap, False)
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
def _cholesky_solve(a, b, out, floor, n):
    """Solve ``a[:n, :n] x = b[:n]`` for symmetric positive definite ``a`` (float64).

    ``a`` and ``b`` are overwritten (``a`` by its Cholesky factor). Returns False, leaving
    ``out`` untouched, when a pivot keeps no more than ``floor`` times its diagonal entry
    (numerically singular); the caller then adds a jitter and retries.
    """
    k = n
    # lower-triangular L stored in a
    for j in range(k):
        diagonal = a[j, j]
        d = diagonal
        for m in range(j):
            d -= a[j, m] * a[j, m]
        if not d > floor * diagonal or d <= 0.0:
            return False
        d = np.sqrt(d)
        a[j, j] = d
        row_j = a[j]
        i = j + 1
        while i + 4 <= k:  # four rows at a time share each load of row j
            row_0, row_1, row_2, row_3 = a[i], a[i + 1], a[i + 2], a[i + 3]
            s0 = row_0[j]
            s1 = row_1[j]
            s2 = row_2[j]
            s3 = row_3[j]
            for m in range(j):
                v = row_j[m]
                s0 -= row_0[m] * v
                s1 -= row_1[m] * v
                s2 -= row_2[m] * v
                s3 -= row_3[m] * v
            row_0[j] = s0 / d
            row_1[j] = s1 / d
            row_2[j] = s2 / d
            row_3[j] = s3 / d
            i += 4
        while i < k:
            s = a[i, j]
            for m in range(j):
                s -= a[i, m] * row_j[m]
            a[i, j] = s / d
            i += 1
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


@njit(cache=True, fastmath=_FASTMATH)
def _solve_with_jitter(a, b, n, work, rhs, out, floor):
    """Solve ``a[:n, :n] x = b[:n]`` into ``out[:n]``, adding the smallest diagonal jitter that
    makes the system numerically positive definite (none when it already is).

    ``a[:n, :n]`` is symmetric with a positive mean diagonal; ``work`` and ``rhs`` are scratch
    of at least the same size. Returns False if even the largest jitter failed.
    """
    mean_diagonal = 0.0
    for r in range(n):
        mean_diagonal += a[r, r]
    mean_diagonal /= n
    jitter = 0.0
    for attempt in range(_MAX_JITTER_TRIES + 1):
        for r in range(n):
            rhs[r] = b[r]
            for c in range(n):
                work[r, c] = a[r, c]
            work[r, r] += jitter
        if _cholesky_solve(work, rhs, out, floor, n):
            return True
        jitter = mean_diagonal * floor * 10.0 ** (attempt + 1) + 1e-30
    return False


@njit(parallel=_PARALLEL, cache=True, fastmath=_FASTMATH)
def cholesky_sweep(indptr, indices, a_weight, b_weight, other, base, reg_per_entry, factors,
                   bounds, floor, dual):
    """Exact least-squares update of ``factors`` in place, one Cholesky solve per row.

    Row u solves ``(base + sum_j a_j y_j y_j^T + reg_per_entry * n_u I) x_u = sum_j b_j y_j``
    over its n_u stored entries j (item ``y_j = other[indices[j]]``). The sums run over panels
    of ``_SOLVE_PANEL`` entries in the factor dtype and are added across panels in float64; the
    Cholesky factorization and solve are in float64.

    * implicit ALS: ``base = Y^T Y + lambda I``, ``a_j = c_uj - 1``, ``b_j = c_uj``,
      ``reg_per_entry = 0``;
    * explicit ALS with weighted-lambda regularization (Zhou et al. 2008): ``base = 0``,
      ``a_j = 1``, ``b_j`` = the residual rating, ``reg_per_entry = lambda``.

    With ``dual`` (valid only for ``base = 0`` and every ``a_j = 1``), a row with fewer entries
    than factors is solved through the n_u x n_u system of the identity
    ``(Q^T Q + mu I)^-1 Q^T e = Q^T (Q Q^T + mu I)^-1 e`` (``Q`` the row's n_u x k item factors,
    ``mu = reg_per_entry * n_u``), which costs O(n_u^2 k + n_u^3) instead of O(k^3): the long
    tail of rarely rated items becomes almost free.

    A row with no entries and a zero ``base`` gets ``x_u = 0``. A numerically singular system
    (only possible with ``lambda = 0``) gets a diagonal jitter of 10, 100, ... times
    ``floor`` times its mean diagonal (plus 1e-30) until Cholesky succeeds.

    Parameters
    ----------
    indptr, indices : CSR structure of the rows being solved (int64, int32)
    a_weight, b_weight : ndarray, shape (nnz,)
    other : ndarray, shape (n_other, k)
    base : ndarray of float64, shape (k, k)
    reg_per_entry : float
    factors : ndarray, shape (n_rows, k), overwritten
    bounds : ndarray of int64, row chunks from :func:`row_chunks`
    floor : float
        Relative pivot floor, :func:`pivot_floor` of the factor dtype.
    dual : bool
        Solve rows with fewer entries than factors through the dual system (see above).
    """
    k = factors.shape[1]
    for chunk in prange(len(bounds) - 1):
        a = np.empty((k, k), dtype=np.float64)
        work = np.empty((k, k), dtype=np.float64)
        b = np.empty(k, dtype=np.float64)
        rhs = np.empty(k, dtype=np.float64)
        solution = np.empty(k, dtype=np.float64)
        # A panel of the row's entries, transposed (factor-major), so that every entry of
        # sum_j a_j y_j y_j^T is a contiguous dot product: 2-5x faster than rank-1 updates.
        columns = np.empty((k, _SOLVE_PANEL), dtype=other.dtype)
        weighted = np.empty((k, _SOLVE_PANEL), dtype=other.dtype)
        b_panel = np.empty(_SOLVE_PANEL, dtype=other.dtype)
        for u in range(bounds[chunk], bounds[chunk + 1]):
            start = indptr[u]
            end = indptr[u + 1]
            count = end - start
            ridge = reg_per_entry * count
            if dual and 0 < count < k:
                n = count
                _build_dual(start, end, indices, b_weight, other, ridge, a, b)
            else:
                n = k
                _build_primal(start, end, indices, a_weight, b_weight, other, base, ridge, a, b,
                              columns, weighted, b_panel)
            trace = 0.0
            for r in range(n):
                trace += a[r, r]
            if trace == 0.0:  # empty row, nothing known: the minimum-norm answer is 0
                for r in range(k):
                    factors[u, r] = 0.0
                continue
            if not _solve_with_jitter(a, b, n, work, rhs, solution, floor):
                continue  # cannot happen for finite input; keep the previous factors
            if n == k:
                for r in range(k):
                    factors[u, r] = solution[r]
            else:  # x_u = Q^T z
                for r in range(k):
                    factors[u, r] = 0.0
                for j in range(n):
                    y = other[indices[start + j]]
                    z = solution[j]
                    for r in range(k):
                        factors[u, r] += z * y[r]


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _build_dual(start, end, indices, b_weight, other, ridge, a, b):
    """``a[:n, :n] = Q Q^T + ridge I`` and ``b[:n] = e`` for the n = end - start entries."""
    k = other.shape[1]
    n = end - start
    for i in range(n):
        y_i = other[indices[start + i]]
        b[i] = b_weight[start + i]
        for j in range(i, n):
            y_j = other[indices[start + j]]
            s = np.float32(0.0)
            for r in range(k):
                s += y_i[r] * y_j[r]
            a[i, j] = s
            a[j, i] = s
        a[i, i] += ridge


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _build_primal(start, end, indices, a_weight, b_weight, other, base, ridge, a, b, columns,
                  weighted, b_panel):
    """``a = base + sum_j a_j y_j y_j^T + ridge I`` and ``b = sum_j b_j y_j`` (k x k, k)."""
    k = other.shape[1]
    for r in range(k):
        b[r] = 0.0
        for c in range(k):
            a[r, c] = base[r, c]
    for panel in range(start, end, _SOLVE_PANEL):
        size = min(_SOLVE_PANEL, end - panel)
        for j in range(size):
            row = other[indices[panel + j]]
            wa = a_weight[panel + j]
            b_panel[j] = b_weight[panel + j]
            for r in range(k):
                columns[r, j] = row[r]
                weighted[r, j] = wa * row[r]
        for r in range(k):
            column_r = columns[r]
            weighted_r = weighted[r]
            s = np.float32(0.0)
            for j in range(size):
                s += b_panel[j] * column_r[j]
            b[r] += s
            c = r
            while c + 4 <= k:  # four entries at a time share each load of weighted_r
                column_0, column_1 = columns[c], columns[c + 1]
                column_2, column_3 = columns[c + 2], columns[c + 3]
                s0 = np.float32(0.0)
                s1 = np.float32(0.0)
                s2 = np.float32(0.0)
                s3 = np.float32(0.0)
                for j in range(size):
                    v = weighted_r[j]
                    s0 += v * column_0[j]
                    s1 += v * column_1[j]
                    s2 += v * column_2[j]
                    s3 += v * column_3[j]
                a[r, c] += s0
                a[r, c + 1] += s1
                a[r, c + 2] += s2
                a[r, c + 3] += s3
                c += 4
            while c < k:
                column_c = columns[c]
                s = np.float32(0.0)
                for j in range(size):
                    s += weighted_r[j] * column_c[j]
                a[r, c] += s
                c += 1
    for r in range(k):
        a[r, r] += ridge
        for c in range(r + 1, k):
            a[c, r] = a[r, c]


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


@njit(parallel=_PARALLEL, cache=True)
def row_products(rows, other_t, out):
    """``out = rows @ other_t``: every factor model's scores (``p_u . q_i`` for all items).

    ``rows`` (m, k), ``other_t`` (k, n_items) C-contiguous (the item factors transposed), ``out``
    (m, n_items) zeros, all one dtype. Each output element is summed over the k factors in the
    same order whatever m is and whichever thread computes its row, so that a user's scores do not
    depend on which other users are scored with it (a BLAS library picks different kernels, with
    different rounding, for different batch sizes and processors). The inner loop runs over items,
    so it vectorizes without reassociation (no ``fastmath``).
    """
    for u in prange(rows.shape[0]):
        row = out[u]
        for c in range(rows.shape[1]):
            weight = rows[u, c]
            column = other_t[c]
            for i in range(row.shape[0]):
                row[i] += weight * column[i]


# The fastmath kernels run numba's cached machine code in every process (reclab._numba_cache).
gram, implicit_cg_sweep, cholesky_sweep, implicit_loss_rows, squared_error_rows = (
    FromCache(kernel, __name__) for kernel in (gram, implicit_cg_sweep, cholesky_sweep, implicit_loss_rows,
                                               squared_error_rows))
