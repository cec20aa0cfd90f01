"""The Jupyter kernel of the stages that ``reclab run`` executes: ipykernel, started with what
every stage imports already imported, and ending without the interpreter's teardown.

Most of a stage kernel's own time on small data is fixed cost: imports (MLflow and its SQL
store, pandas, matplotlib, reclab: about 2 s of CPU) and, at exit, Python freeing all of those
objects one by one (about 0.9 s), for a stage whose work takes a second or two. This launcher
cuts both, and nothing else changes:

- It imports :data:`PRELOADED` (what every stage notebook's first cell imports, and the MLflow
  store every stage opens) with the cyclic garbage collector paused, then freezes those objects
  (:func:`gc.freeze`): collections during the imports, and later ones walking the imported
  objects, were about a fifth of the import time. The notebook's own import cell then finds them
  loaded. A module that fails to import here is left to fail there, with its error in the cell.
- Its kernel reaps, at shutdown, the child processes that have ended but were never waited for
  (pyspark never waits for the JVM of a Spark session): ipykernel's shutdown signals every child
  in its process group until none is left, and counts such a "zombie" as alive, so each Spark
  stage waited 2.5 s until jupyter_client gave up and sent SIGTERM.
- Registered first, its exit handler runs last (``atexit`` runs them last-in, first-out): after
  those of ipykernel, multiprocessing (child processes), ``weakref.finalize`` (temporary
  folders), logging and MLflow. It flushes the standard streams and ends the process at once.

Measured on 2 cores by ``benchmarks/pipeline.py`` (``benchmarks/results/pipeline.md``): a
five-stage pipeline on small synthetic data in 24 s rather than 35 s.

The kernel runs this file by its path (``python <...>/reclab/_kernel.py -f <connection file>``),
not with ``-m reclab._kernel``, which would import the package, and with it modules that
register exit handlers, before this one. Only kernels that :mod:`reclab.pipeline` starts run it;
a notebook in JupyterLab or under the papermill CLI runs the user's own kernel.
"""

import atexit
import os
import sys

# What every stage imports (its first cell, and MLflow's store for a local tracking URI): never
# a library only some stages use (tests/test_architecture.py).
PRELOADED = ("ipykernel.kernelapp", "pandas", "matplotlib.figure", "reclab.pipeline",
             "reclab.tracking", "mlflow.store.tracking.sqlalchemy_store")


def _end_without_teardown() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):   # absent, or closed by a handler before
            pass
    os._exit(0)


def living(children: list) -> list:
    """The processes of ``children`` (``psutil.Process``) still running; those that ended but were
    never waited for are waited for now (reaped), so they are gone rather than "zombies"."""
    import psutil

    alive = []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
                continue
            os.waitpid(child.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):   # gone, or another process's child
            pass
    return alive


def _kernel_class():
    from ipykernel.ipkernel import IPythonKernel

    class StageKernel(IPythonKernel):
        def _process_children(self):
            return living(super()._process_children())

    return StageKernel


def preload(names=PRELOADED) -> None:
    """Import ``names`` with the garbage collector paused, then freeze what they made."""
    import gc
    import importlib

    gc.disable()
    try:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:   # the notebook's import cell raises it, where the user sees it
                pass
        gc.freeze()
    finally:
        gc.enable()


if __name__ == "__main__":
    # Run by path, sys.path[0] is this file's folder, whose modules would shadow top-level ones
    # (``config``, ``data``): it goes, as ipykernel_launcher removes the working folder (IPython
    # puts the working folder back for the notebook's code).
    del sys.path[0]
    atexit.register(_end_without_teardown)
    preload()

    from ipykernel import kernelapp

    kernelapp.launch_new_instance(kernel_class=_kernel_class())
