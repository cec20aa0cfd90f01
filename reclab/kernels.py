"""The stage kernels of a pipeline: which process each is, and how jupyter_client starts it.

:func:`kernel_manager_class` is the kernel manager that :mod:`reclab.pipeline` gives papermill
for each stage: its ``python3`` kernel runs this interpreter through ``reclab/_kernel.py``
(:data:`KERNEL_LAUNCHER`), over Unix sockets, and on Linux as a fork of the pipeline's
:func:`fork_server`. ``reclab/_kernel.py`` is what runs inside the kernel; this module is the
runner's side.

The kernel is always the Python interpreter that runs this code (``sys.executable``, the
project's ``.venv`` under ``reclab run``), not whatever a ``python3`` kernelspec installed for the
user or the system points to: the kernel must import the same reclab and the same packages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from reclab.stages import RUNNER_ENV

# The stage kernels' launcher, run by its path (see its docstring).
KERNEL_LAUNCHER = Path(__file__).with_name("_kernel.py")


def kernel_manager_class(stderr, forks=None, pipeline_id: str | None = None):
    """A kernel manager whose ``python3`` kernel is ``sys.executable`` (see the module docstring)
    and whose standard error goes to the open binary file ``stderr``; with ``forks`` (a
    :class:`reclab._kernel.ForkServer`), its kernels are forks of that server's process. With
    ``pipeline_id``, the kernels' environment names the pipeline run this runner drives
    (:data:`reclab.stages.RUNNER_ENV`): their stages leave ending their runs to it.

    An empty kernelspec search path leaves only ipykernel's built-in spec, which runs the current
    interpreter; a ``python3`` spec of the user or system is never consulted. The kernel's own
    log lines (such as the "KeyboardInterrupt caught in kernel" of every shutdown, which
    jupyter_client begins with an interrupt) go to the stage's log file rather than the terminal.

    On POSIX the kernel's sockets are Unix sockets in a private temporary folder rather than
    TCP ports: jupyter_client picks free ports before the kernel binds them, so kernels started
    at the same moment by concurrent pipelines could pick the same port, and one would die
    with "Address already in use" (papermill issue #511).

    The kernel process is ``reclab/_kernel.py``: ipykernel, started with what every stage imports
    already imported, reaping ended child processes at shutdown, and ending without the
    interpreter's teardown of its modules (see its docstring).
    """
    import tempfile
    import uuid

    import zmq
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner
    from traitlets import default

    class ForkingProvisioner(LocalProvisioner):
        """jupyter_client's local provisioner, but a stage kernel is a fork of ``forks``."""

        async def launch_kernel(self, cmd, **kwargs):
            if pipeline_id is not None:
                kwargs["env"] = {**(kwargs.get("env") or os.environ), RUNNER_ENV: pipeline_id}
            if forks is None or cmd[:2] != [sys.executable, str(KERNEL_LAUNCHER)]:
                return await super().launch_kernel(cmd, **kwargs)
            # Popen's defaults: this process's environment and working folder (papermill's
            # cwd= changes the latter around the execution).
            self.cwd = kwargs.get("cwd") or os.getcwd()
            self.process = forks.launch(cmd[2:], kwargs.get("env") or os.environ, self.cwd,
                                        kwargs.get("stdout"), kwargs.get("stderr"))
            self.pid = self.pgid = self.process.pid   # the kernel leads its own session
            return self.connection_info

    class ThisInterpreterKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw):
            if self.provisioner is None:
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                self.provisioner = ForkingProvisioner(kernel_id=self.kernel_id,
                                                      kernel_spec=self.kernel_spec, parent=self)
            return await super()._async_pre_start_kernel(**kw)

        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)

        @default("transport_encryption")
        def _transport_encryption_default(self):
            # CurveZMQ-encrypted loopback sockets when pyzmq supports them (ipykernel declares
            # support); without, the kernel warns on stderr that it runs over plain TCP.
            return "auto" if zmq.has("curve") else "disabled"

        @default("shutdown_wait_time")
        def _shutdown_wait_time_default(self):
            # A kernel asked to shut down gets half of this to end before jupyter_client sends
            # SIGTERM: 2.5 s by default, which a kernel ending on a loaded machine once exceeded
            # (the test suite, while three pipelines started at once beside it). Waiting is
            # polling: a kernel that ends at once is not kept any longer.
            return 10.0

        @default("transport")
        def _transport_default(self):
            return "ipc" if os.name == "posix" else "tcp"

        @default("ip")
        def _ip_default(self):
            if self.transport != "ipc":
                return super()._ip_default()
            self._ipc_folder = tempfile.mkdtemp(prefix="reclab-kernel-")
            return os.path.join(self._ipc_folder, "kernel")

        def format_kernel_cmd(self, extra_arguments=None):
            # ipykernel's spec runs `python -m ipykernel_launcher ...`; reclab/_kernel.py (by its
            # path) is that launcher, faster to start and to end (see its docstring).
            command = super().format_kernel_cmd(extra_arguments)
            if command[1:3] == ["-m", "ipykernel_launcher"]:
                return [command[0], str(KERNEL_LAUNCHER), *command[3:]]
            return command

        async def start_kernel(self, **kw):
            kw.setdefault("stderr", stderr)
            return await super().start_kernel(**kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart and getattr(self, "_ipc_folder", None):
                shutil.rmtree(self._ipc_folder, ignore_errors=True)

    return ThisInterpreterKernelManager


@contextlib.contextmanager
def fork_server():
    """The pipeline's :class:`reclab._kernel.ForkServer` (its stage kernels are forks of one
    preloaded process) on Linux; elsewhere ``None``, and each kernel is a process of its own
    (see :class:`reclab._kernel.ForkServer`)."""
    if not sys.platform.startswith("linux"):
        yield None
        return
    from reclab._kernel import ForkServer

    with ForkServer() as forks:
        yield forks
