"""EASE: the closed-form item-item linear autoencoder of Steck (2019)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import get_lapack_funcs

from reclab.errors import ReclabError
from reclab.models.base import Recommender, check_bool, check_choice, check_float, interaction_matrix

__all__ = ["EASE"]

# Items whose Gram columns are computed at once: bounds the sparse product and its dense copy
# to about this many entries (64 MB of float32).
_BLOCK_ELEMENTS = 1 << 24


def _gram(columns: sp.csc_matrix, dtype) -> np.ndarray:
    """``X^T X`` as a dense Fortran-ordered (n_items, n_items) array, built block by block so that
    no sparse product larger than ``_BLOCK_ELEMENTS`` entries exists at once."""
    n_items = columns.shape[1]
    gram = np.empty((n_items, n_items), dtype=dtype, order="F")
    rows = columns.T.tocsr()
    block = max(1, _BLOCK_ELEMENTS // n_items)
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        gram[:, start:stop] = (rows @ columns[:, start:stop]).toarray()
    return gram


def _symmetrize_upper(matrix: np.ndarray) -> None:
    """Copy the upper triangle of a square matrix onto its lower triangle, in place, a block of
    rows at a time (no second n x n array)."""
    n = matrix.shape[0]
    # At most 1024 rows, so that the diagonal block's index arrays stay small (8 MB).
    block = max(1, min(1024, _BLOCK_ELEMENTS // n))
    for start in range(0, n, block):
        stop = min(start + block, n)
        matrix[start:stop, :start] = matrix[:start, start:stop].T
        square = matrix[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        square[lower] = square.T[lower]


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck 2019): item-item weights in closed form.

    With ``X`` the users x items training matrix (every stored interaction as 1.0 with
    ``binarize``, else its rating) and ``lambda = regularization``, EASE learns the item-item
    matrix ``B`` that minimizes ``||X - X B||_F^2 + lambda ||B||_F^2`` subject to
    ``diag(B) = 0`` (no item predicts itself). Its solution is

    ``P = (X^T X + lambda I)^-1``,  ``B = I - P diag(1 / diag(P))``,
    i.e. ``B_ij = -P_ij / P_jj`` off the diagonal and ``B_jj = 0``,

    and a user's scores are ``score(u, :) = X_u B``: the sum of the rows of ``B`` of the items the
    user interacted with. EASE ranks; it does not predict ratings.

    ``similar_items`` and ``item_similarity`` use the partial correlation of two items given all
    others, ``s(i, j) = -P_ij / sqrt(P_ii P_jj) = B_ij sqrt(P_jj / P_ii)``: symmetric, in
    [-1, 1] (``P`` is positive definite), and of the sign of ``B_ij``.

    Memory: ``B`` is dense, ``n_items^2`` floats (4 bytes each in float32: 1.6 GB at 20,000 items,
    160 GB at 200,000). ``fit`` builds ``X^T X``, factors and inverts it in place (LAPACK
    ``potrf``/``potri``) and turns it into ``B`` in the same array, so its peak is that one matrix
    plus blocks of about 64 MB; it refuses, before allocating anything, a catalog whose matrix
    would exceed ``max_memory_gb`` and says how much it needs. Time is ``O(n_items^3)`` for the
    inversion plus ``O(sum_u n_u^2)`` for ``X^T X``.

    Parameters
    ----------
    regularization : float, > 0
        ``lambda``, in the units of ``X^T X`` (co-occurrence counts with ``binarize``); larger
        values shrink ``B`` towards 0. Items without training interactions get ``B`` rows and
        columns of 0.
    binarize : bool
        Use every stored interaction as 1.0 (the paper's setting); False weights them by their
        value (the rating).
    dtype : {"float32", "float64"}
        Floating type of ``X^T X``, the inversion and ``B``.
    max_memory_gb : float, > 0
        Largest ``B`` (``n_items^2`` x 4 or 8 bytes, in GB = 1e9 bytes) that ``fit`` builds; raise it
        for larger catalogs when the machine has the memory.

    Attributes
    ----------
    weights_ : numpy.ndarray of ``dtype``, shape (n_items_, n_items_)
        ``B``, zero diagonal; row ``i`` is what interacting with item ``i`` adds to each item's
        score.
    inverse_diagonal_ : numpy.ndarray of ``dtype``, shape (n_items_,)
        ``diag(P)``, for the partial correlations of ``similar_items``.

    Notes
    -----
    float32 is the default because memory is what limits EASE: it halves the matrix (0.38 GB
    instead of 0.76 GB for ml-latest-small's 9,724 items) at no cost in ranking. Measured on the
    80/20 seed-42 splits (``benchmarks/results/ease.md``): float32 scores differ from a float64
    ``numpy.linalg.inv`` reference by at most 2.5e-6 on MovieLens 100k and from EASE's float64
    path by 1.6e-5 on ml-latest-small, and precision@10 is the same to the last digit in both
    dtypes (0.3701; 0.3107 on ml-latest-small, measured at regularization 400). Fit times were about equal at these sizes (MovieLens 100k, one
    BLAS thread: 1.4 s float32, 1.1 s float64, on a machine loaded by other jobs), where the
    sparse ``X^T X`` and Python overhead weigh as much as the inversion.

    The default ``regularization=200`` has the best mean validation precision@10 over MovieLens
    100k and ml-latest-small of the grid 100-1600 (``benchmarks/defaults.py``, validation splits
    carved from the training part; 0.211 and 0.189, against 0.214 and 0.185 at 400: a flat
    optimum between 200 and 800). On the 80/20 per-user test splits (seed 42) it reaches
    precision@10 0.370 on MovieLens 100k (0.380 at 400).

    References
    ----------
    H. Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.

    Examples
    --------
    >>> model = EASE(regularization=200.0).fit(train)   # doctest: +SKIP
    >>> ids, scores = model.recommend([0, 1], n=10)      # doctest: +SKIP
    """

    def __init__(self, regularization: float = 200.0, binarize: bool = True, dtype: str = "float32",
                 max_memory_gb: float = 4.0):
        self.regularization = regularization
        self.binarize = binarize
        self.dtype = dtype
        self.max_memory_gb = max_memory_gb

    def _validate_params(self) -> None:
        check_choice("dtype", self.dtype, ("float32", "float64"), model=self)
        # The weights scale as 1 / regularization: beyond 1 / (the dtype's smallest normal number),
        # 8.5e37 in float32, it is no number the solve can use (inf in float32 from 3.4e38).
        check_float("regularization", self.regularization, low=0.0, low_open=True,
                    high=float(1.0 / np.finfo(self.dtype).tiny), model=self)
        check_bool("binarize", self.binarize, model=self)
        check_float("max_memory_gb", self.max_memory_gb, low=0.0, low_open=True, model=self)

    def _fit(self, train, report) -> None:
        dtype = np.dtype(self.dtype)
        n_items = train.n_items
        needed = n_items * n_items * dtype.itemsize
        if needed > self.max_memory_gb * 1e9:
            raise ReclabError(
                f"EASE needs {needed / 1e9:.1f} GB for its {n_items:,} x {n_items:,} {dtype.name} item-item "
                f"matrix (n_items^2 x {dtype.itemsize} bytes = {needed:,} bytes), more than "
                f"max_memory_gb={self.max_memory_gb}; raise max_memory_gb (EASE(max_memory_gb="
                f"{np.ceil(needed / 1e9 * 1.1):.0f})) if the machine has that much memory, or shrink the "
                f"catalog (reclab.preprocess.kcore with a larger min_item)")
        columns = interaction_matrix(train.matrix, self.binarize, dtype).tocsc()
        matrix = _gram(columns, dtype)
        matrix[np.diag_indices(n_items)] += dtype.type(self.regularization)
        # potrf/potri on the Fortran-ordered array work in place: the one n x n array becomes
        # the Cholesky factor, then the upper triangle of P = (X^T X + lambda I)^-1.
        potrf, potri = get_lapack_funcs(("potrf", "potri"), (matrix,))
        factor, info = potrf(matrix, lower=False, overwrite_a=True, clean=False)
        if info == 0:
            matrix, info = potri(factor, lower=False, overwrite_c=True)
        diagonal = matrix.diagonal().copy()
        if info != 0 or not (np.isfinite(diagonal).all() and (diagonal > 0).all()):
            raise ReclabError(f"EASE regularization={self.regularization} is too small: X^T X + lambda I "
                              f"is not numerically positive definite in {dtype.name} (LAPACK info "
                              f"{info}); use a larger regularization or dtype='float64'")
        _symmetrize_upper(matrix)
        # P is symmetric, so the transpose of the Fortran array is the same matrix in C order.
        inverse = matrix.T
        inverse /= -diagonal[None, :]
        inverse[np.diag_indices(n_items)] = 0.0
        self.weights_ = inverse
        self.inverse_diagonal_ = diagonal

    def _score(self, users: np.ndarray) -> np.ndarray:
        rows = interaction_matrix(self.seen_[users], self.binarize, self.weights_.dtype)
        return np.asarray(rows @ self.weights_, dtype=np.float32)

    def _item_similarities(self, items: np.ndarray) -> np.ndarray:
        scale = np.sqrt(self.inverse_diagonal_)
        return self.weights_[items] * (scale[None, :] / scale[items][:, None])
