"""Checkpoints of a search: a JSON-lines file (a header identifying the search, then one line
per finished trial) that a later :func:`reclab.tuning.tune` call resumes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from reclab.errors import ReclabError
from reclab.space import space_to_dict, to_python
from reclab.tuning._objective import score_problem
from reclab.tuning._results import Trial
from reclab.tuning._search import SMBO_OPTIONS


_CHECKPOINT_FORMAT = "reclab-tuning-checkpoint"
_CHECKPOINT_VERSION = 1


def _normalized(value):
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars plain)."""
    def plain(item):
        return to_python(item) if isinstance(item, np.generic) else repr(item)

    return json.loads(json.dumps(value, default=plain))


def _lock(handle, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ReclabError(f"checkpoint {str(path)!r} is in use by another running search; wait for "
                          f"it or use another checkpoint path") from None


class Checkpoint:
    """The JSON-lines record of one search: a header, then one line per finished trial.

    An append-only log rather than an atomically replaced file: each record is one ``write`` of
    a whole line followed by flush and fsync, and a line cut short by a crash is dropped on the
    next open, so what was recorded is always a prefix of the search.
    """

    def __init__(self, path, header: dict):
        self.path = Path(path)
        self.header = _normalized(header)
        self._file = None

    def open(self) -> dict[int, Trial]:
        """Lock the file, read back its finished trials (validating the header), keep it open.

        The file is locked before it is read, so that two searches never share it. A file killed
        while its header or a trial was being written ends in a line without its newline: that
        line is cut off, and the next record is appended where it began. Nothing is cut or
        written before the file is known to be this search's checkpoint (its complete lines are
        this search's header and trial records, or it holds only the start of that header).
        """
        if self.path.is_dir():
            raise ReclabError(f"checkpoint {str(self.path)!r} is a folder; pass a file path")
        if not self.path.parent.is_dir():
            raise ReclabError(f"checkpoint folder {str(self.path.parent)!r} does not exist; create it "
                              f"or pass another checkpoint path")
        try:
            handle = open(self.path, "a+b")   # created if missing, never truncated by opening
        except OSError as error:
            raise ReclabError(f"cannot open checkpoint {str(self.path)!r}: {error.strerror}") from None
        try:
            _lock(handle, self.path)
            handle.seek(0)
            content = handle.read()
            complete = content[:content.rfind(b"\n") + 1]
            header = (json.dumps(self.header, allow_nan=False) + "\n").encode("utf-8")
            if not complete and content and not header.startswith(content):
                raise ReclabError(f"{str(self.path)!r} is not a reclab tuning checkpoint (it holds "
                                  f"{len(content)} bytes that are not the start of this search's header, "
                                  f"and no complete line); pass another checkpoint path")
            try:
                lines = complete.decode("utf-8").splitlines()
            except UnicodeDecodeError as error:
                line = complete[:error.start].count(b"\n") + 1
                raise ReclabError(f"checkpoint {str(self.path)!r} line {line} is not UTF-8 text; it was "
                                  f"not written by reclab.tune (pass another checkpoint path)") from None
            restored: dict[int, Trial] = {}
            if lines:
                self._check_header(self._parse(lines[0], 1))
                for number, line in enumerate(lines[1:], start=2):
                    record = self._parse(line, number)
                    try:
                        trial = Trial.from_record(record)
                    except (KeyError, TypeError, ValueError) as error:
                        raise ReclabError(f"checkpoint {str(self.path)!r} line {number} is not a trial "
                                          f"record ({error}); it was not written by reclab.tune") from None
                    self._check_score(trial, record["score"], number)
                    restored[trial.number] = trial
            if len(complete) < len(content):
                handle.truncate(len(complete))
                handle.seek(0, os.SEEK_END)
            if not lines:
                self._write(handle, self.header)
        except BaseException:
            handle.close()
            raise
        self._file = handle
        return restored

    @staticmethod
    def _write(handle, record: dict) -> None:
        handle.write((json.dumps(record, allow_nan=False) + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())

    def _check_score(self, trial: Trial, recorded, number: int) -> None:
        """A recorded score passes the checks a computed one does (an edited file could claim any)."""
        metric = self.header["metric"]
        problem = (score_problem(metric, recorded) if trial.status == "ok" else
                   None if trial.status == "failed" else f"status {trial.status!r} is not 'ok' or 'failed'")
        if problem is None and trial.ok and trial.metrics.get(metric) != trial.score:
            problem = f"its score {trial.score!r} is not its {metric} {trial.metrics.get(metric)!r}"
        if problem is not None:
            raise ReclabError(f"checkpoint {str(self.path)!r} line {number} (trial {trial.number}): "
                              f"{problem}; it was not written by reclab.tune (pass another checkpoint path)")

    def _parse(self, line: str, number: int) -> dict:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReclabError(f"checkpoint {str(self.path)!r} line {number} is not valid JSON "
                              f"({error}); only the last line may be incomplete") from None
        if not isinstance(record, dict):
            raise ReclabError(f"checkpoint {str(self.path)!r} line {number} is not a JSON object")
        return record

    def _check_header(self, stored: dict) -> None:
        if stored.get("format") != _CHECKPOINT_FORMAT:
            raise ReclabError(f"{str(self.path)!r} is not a reclab tuning checkpoint (its first line "
                              f"has no format {_CHECKPOINT_FORMAT!r}); pass another checkpoint path")
        differences = []
        for key in self.header:
            if key in ("format", "kind"):
                continue
            here, there = self.header[key], stored.get(key)
            if here != there:
                if key in ("train", "valid"):
                    differences.append(f"{key} data differ (fingerprint {str(there)[:12]}... in the "
                                       f"checkpoint, {str(here)[:12]}... now)")
                else:
                    differences.append(f"{key} is {there!r} in the checkpoint but {here!r} now")
        if differences:
            raise ReclabError(f"checkpoint {str(self.path)!r} belongs to a different search: "
                              + "; ".join(differences)
                              + ". Use the same settings to resume it, or another checkpoint path "
                                "(or delete the file) to start a new search")

    def append(self, trial: Trial) -> None:
        self._write(self._file, trial.to_record())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def search_header(models, spaces, method, metric, ks, relevance_threshold, seed, estimator,
                  n_initial, n_jobs, train, valid, folds, starts) -> dict:
    """What identifies a search: a checkpoint resumes only a search with the same header.

    One model's header holds its class, fixed parameters and space as such; a list of models
    holds lists of them.
    """
    described = [(f"{type(model).__module__}.{type(model).__qualname__}",
                  {name: value for name, value in model.get_params().items() if name not in space},
                  space_to_dict(space)) for model, space in zip(models, spaces)]
    classes, fixed, data = (list(part) for part in zip(*described))
    if len(models) == 1:
        classes, fixed, data = classes[0], fixed[0], data[0]
    header = {"kind": "header", "format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION,
              "method": method, "space": data, "metric": metric, "k": list(ks),
              "relevance_threshold": relevance_threshold,
              "model": classes, "model_params": fixed,
              "train": train.fingerprint(), "valid": valid.fingerprint(),
              "folds": folds, "starts": [[index, params] for index, params in starts]}
    if method in ("random", "smbo") or folds > 1:
        header["seed"] = seed
    from reclab.split import fold_role

    role = fold_role(train, valid)
    if role == "item":   # the folds rank their held-out items only (no key before they did)
        header["ranks"] = "held-out items"
    if folds > 1:
        if role is not None:   # per-user folds have no such key, as before cold splits had their own
            header["folds_hold_out"] = {"time": "earlier periods",
                                        "user time": "each user's earlier interactions"}.get(
                                            role, f"whole {role}s")
    if method == "smbo":
        # n_jobs changes SMBO's sequence (batches of asked points); not that of grid or random.
        header.update(estimator=estimator, n_initial=n_initial, n_jobs=n_jobs,
                      smbo_options=_normalized(SMBO_OPTIONS))
    return header
