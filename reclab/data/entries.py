"""A users x items sparse matrix given by a caller, made into the form ``Interactions`` keeps: CSR,
float32, sorted indices, one stored entry per pair, finite values; with the timestamps that ride
on its entries kept on the same entries."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclab.errors import ReclabError

__all__ = ["canonical_entries"]


def canonical_entries(given, timestamps, caller: str) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """``given`` as a new canonical CSR matrix of float32 and ``timestamps`` in its entries' order.

    ``timestamps`` (or None) hold one number per stored entry of ``given``, in the order
    ``given.tocoo()`` lists them: ``given.data``'s order for a CSR, CSC or COO matrix, whether or
    not its indices are sorted. Sorting the entries moves each timestamp with its entry. Explicit
    zeros stay stored entries; ``given`` is not changed.

    Raises
    ------
    ReclabError
        Naming ``caller``: an inconsistent or complex matrix, a (user, item) pair stored twice
        (it would be summed), a NaN or infinite value, or timestamps that are not one finite
        number per stored entry.
    """
    if given.dtype.kind == "c":   # float32 would silently drop the imaginary part
        raise ReclabError(f"{caller} got a matrix of complex numbers ({given.dtype}); values must "
                          "be real numbers")
    try:
        matrix = sp.csr_matrix(given, dtype=np.float32, copy=True)
        # Before any sorting: scipy's C++ routines trust indptr and indices, so a crafted
        # matrix (for example read from a file) could make them read out of bounds.
        matrix.check_format(full_check=True)
    except ValueError as error:
        raise ReclabError(f"{caller} got an inconsistent sparse matrix of shape {given.shape}: "
                          f"{error}") from None
    # A repeated (user, item) entry would be summed (two 5-star entries, one 10): refused, as
    # from_frame keeps one row per pair instead (given.nnz counts a COO input's repeats).
    matrix.sum_duplicates()
    if matrix.nnz < given.nnz:
        raise ReclabError(f"{caller} got {given.nnz - matrix.nnz} repeated (user, item) entries, "
                          f"which would be summed; give each pair once (from_frame keeps a "
                          f"repeated pair's latest row)")
    if not np.isfinite(matrix.data).all():
        raise ReclabError(f"{caller} got {int((~np.isfinite(matrix.data)).sum())} NaN or infinite "
                          f"value(s) in its matrix (after conversion to float32); values must be finite")
    if timestamps is None:
        matrix.sort_indices()
        return matrix, None
    timestamps = _checked_timestamps(timestamps, given.nnz, caller)
    # Each entry's position in given's order, sorted as the values are (from 1: never a zero).
    entries = given.tocoo()
    positions = sp.csr_matrix((np.arange(1, entries.nnz + 1, dtype=np.float64),
                               (entries.row, entries.col)), shape=given.shape)
    positions.sort_indices()
    matrix.sort_indices()
    return matrix, timestamps[positions.data.astype(np.int64) - 1]


def _checked_timestamps(timestamps, nnz: int, caller: str) -> np.ndarray:
    """Timestamps given as an array next to a matrix: one finite number per stored entry."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.shape != (nnz,):
        raise ReclabError(f"{caller}: timestamps has shape {timestamps.shape}, expected ({nnz},), "
                          f"one per stored entry of the matrix")
    if not np.isfinite(timestamps).all():
        position = int(np.flatnonzero(~np.isfinite(timestamps))[0])
        raise ReclabError(f"{caller}: timestamps has {int((~np.isfinite(timestamps)).sum())} NaN or "
                          f"infinite value(s), the first {float(timestamps[position])!r} at entry "
                          f"{position}; timestamps must be finite seconds")
    return timestamps
