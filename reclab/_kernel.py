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
- At shutdown its control thread ends before the exit handlers stop the IOPub thread it flushes
  to (a flush still under way then waited 10 s, and the stage 5 s until SIGTERM: see
  :func:`_run_kernel`).
- Registered first, its exit handler runs last (``atexit`` runs them last-in, first-out): after
  those of ipykernel, multiprocessing (child processes), ``weakref.finalize`` (temporary
  folders), logging and MLflow. It flushes the standard streams and ends the process at once.
- Under :class:`ForkServer` (what ``reclab run`` uses on Linux), one process per pipeline
  imports :data:`PRELOADED` once and every stage's kernel is a fork of it (``--fork-server``):
  a stage kernel then starts in a few hundredths of a second of CPU rather than the imports' 2-3
  s. The server ends when the pipeline closes its end of the channel, or its process dies; its
  kernels then see their parent gone and end too (ipykernel's parent poller).

Measured on 2 cores by ``benchmarks/pipeline.py`` (``benchmarks/results/pipeline.md``).

The kernel runs this file by its path (``python <...>/reclab/_kernel.py -f <connection file>``),
not with ``-m reclab._kernel``, which would import the package, and with it modules that
register exit handlers, before this one. Only kernels that :mod:`reclab.pipeline` starts run it;
a notebook in JupyterLab or under the papermill CLI runs the user's own kernel.
"""

import atexit
import json
import os
import signal
import socket
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


def _run_kernel() -> None:
    """ipykernel's kernel (as its own launcher starts it), with :func:`_kernel_class`; once its
    loop has ended (a shutdown request), its control thread ends before the exit handlers run.

    ipykernel's exit handlers stop the IOPub thread first (its handler is registered last), while
    the control thread may still be flushing the output streams after its shutdown reply: that
    flush then waited for the stopped thread, its full 10 s, and jupyter_client ended the kernel
    with SIGTERM 5 s after asking (3 of 125 stage kernels, ipykernel 7.4).
    """
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=_kernel_class())
    control = IPKernelApp.instance().control_thread
    if control is not None and control.is_alive():
        control.stop()
        control.join(timeout=5)


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


# -- the fork server -------------------------------------------------------------------------
# One message per request and per reply on a SOCK_SEQPACKET socket pair (message boundaries
# kept): a request is JSON {"argv", "env", "cwd"} with the kernel's stdout and stderr attached
# as file descriptors; the server replies {"started": pid} (or {"error": text}), and
# {"exited": pid, "returncode": code} whenever one of its kernels ends.
_MESSAGE_BYTES = 1 << 20


def serve_forks(channel_fd: int) -> None:
    """The fork server's loop (``_kernel.py --fork-server <fd>``): preload, then fork one kernel
    per request read from the socket ``channel_fd``, report every kernel that ends, and end
    when the channel closes. Never returns."""
    import selectors

    preload()
    channel = socket.socket(fileno=channel_fd)
    wake_read, wake_write = os.pipe()
    for fd in (wake_read, wake_write):
        os.set_blocking(fd, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)   # select() wakes through the wakeup fd
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    selector = selectors.DefaultSelector()
    selector.register(channel, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    own = (selector, channel, wake_read, wake_write)
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is channel:
                    message, fds, _, _ = socket.recv_fds(channel, _MESSAGE_BYTES, 2)
                    if not message:   # the pipeline closed the channel, or its process died
                        return
                    channel.send(json.dumps(_fork_kernel(json.loads(message), fds, own)).encode())
                    for fd in fds:
                        os.close(fd)
                else:
                    os.read(wake_read, 4096)
                    for pid, returncode in _ended_children():
                        channel.send(json.dumps({"exited": pid, "returncode": returncode}).encode())
    except (BrokenPipeError, ConnectionResetError):   # the pipeline is gone
        return
    except Exception:   # a bug here: say what it was (the pipeline's stage then fails)
        import traceback

        traceback.print_exc()
    finally:
        os._exit(0)


def _ended_children():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)


def _fork_kernel(request: dict, fds: list, own: tuple) -> dict:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        pid = os.fork()
    except OSError as error:
        return {"error": f"cannot start a stage kernel: {error}"}
    if pid == 0:
        _become_kernel(request, fds, own)
    return {"started": pid}


def _become_kernel(request: dict, fds: list, own: tuple) -> None:
    """In a forked child: become the kernel of ``request`` (its own session, standard streams,
    working folder, environment and arguments), as ``python _kernel.py <argv>`` would. Ends the
    process, after the exit handlers (the last is :func:`_end_without_teardown`)."""
    try:
        selector, channel, wake_read, wake_write = own
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        selector.close()
        channel.close()
        os.close(wake_read)
        os.close(wake_write)
        os.setsid()   # as jupyter_client starts kernels: signals to its group reach only it
        null = os.open(os.devnull, os.O_RDWR)
        for target, fd in enumerate((null, *fds)):
            os.dup2(fd, target)
        for fd in {null, *fds} - {0, 1, 2}:
            os.close(fd)
        if request.get("cwd"):
            os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # ipykernel ends its kernel when its parent goes: the parent is this server, not the
        # process that asked for the kernel.
        os.environ["JPY_PARENT_PID"] = str(os.getppid())
        sys.argv = [__file__, *request["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"]
        _run_kernel()
    except SystemExit:
        pass
    except BaseException:   # noqa: BLE001 - a forked child must never return into the server
        import traceback

        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()   # the last one ends the process
        os._exit(1)


class ForkServer:
    """Starts stage kernels as forks of one process that has imported :data:`PRELOADED` (Linux:
    it needs Unix sockets of type SOCK_SEQPACKET, and macOS libraries are not safe to fork).

    ``launch(argv, env, cwd, stdout, stderr)`` starts ``python _kernel.py <argv>`` that way and
    returns a :class:`ForkedKernel`, which jupyter_client drives like the ``subprocess.Popen`` of
    a kernel it started itself. Use it as a context manager: closing it ends the server (its
    kernels, whose parent it is, end when it goes).
    """

    def __init__(self):
        import subprocess

        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, __file__, "--fork-server", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True)
        self.returncodes: dict = {}
        self._gone = self._started = False

    def launch(self, argv, env, cwd=None, stdout=None, stderr=None) -> "ForkedKernel":
        targets = [_descriptor(stream) for stream in (stdout, stderr)]
        try:
            socket.send_fds(self.channel, [json.dumps({"argv": list(argv), "env": dict(env),
                                                       "cwd": None if cwd is None else str(cwd)}
                                                      ).encode()], [fd for fd, _ in targets])
        except OSError as error:
            raise RuntimeError(f"the stage kernels' fork server has ended ({error})") from None
        finally:
            for fd, opened in targets:
                if opened:
                    os.close(fd)
        while True:
            reply = self._receive(timeout=None)
            if reply is None:
                raise RuntimeError("the stage kernels' fork server ended before it started the "
                                   f"kernel (exit status {self.process.wait()})")
            if "error" in reply:
                raise RuntimeError(reply["error"])
            if "started" in reply:
                self._started = True
                return ForkedKernel(self, reply["started"])

    def _receive(self, timeout):
        """One message (``None`` once the server is gone); exits are recorded on the way.
        ``timeout`` 0 returns ``{}`` at once when nothing is waiting."""
        self.channel.settimeout(timeout)
        try:
            message = self.channel.recv(_MESSAGE_BYTES)
        except (BlockingIOError, socket.timeout):
            return {}
        except OSError:
            message = b""
        if not message:
            return None
        reply = json.loads(message)
        if "exited" in reply:
            self.returncodes[reply["exited"]] = reply["returncode"]
        return reply

    def returncode(self, pid: int, timeout=0):
        """The exit status of kernel ``pid``, waiting up to ``timeout`` seconds (``None``: no
        limit); ``None`` while it runs."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self.returncodes:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            if self._gone:   # its kernels were reaped by another parent: whether it runs is all
                import psutil

                if not psutil.pid_exists(pid):
                    self.returncodes[pid] = -signal.SIGKILL
                elif left == 0:
                    return None
                else:
                    time.sleep(0.05)
                continue
            reply = self._receive(timeout=left)
            if reply is None:
                self._gone = True
            elif not reply:   # nothing came in time
                return None
        return self.returncodes[pid]

    def close(self) -> None:
        """End the server: at once when it is still importing (it has started no kernel), else
        once it has read the end of the channel."""
        import subprocess

        self.channel.close()
        self._gone = True
        if not self._started:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _descriptor(stream):
    """``(fd, opened here)`` of a kernel's standard stream: a file, a descriptor, or ``None``
    (the null device, as jupyter_client gives a kernel)."""
    if stream is None:
        return os.open(os.devnull, os.O_WRONLY), True
    if isinstance(stream, int) and stream >= 0:
        return stream, False
    if hasattr(stream, "fileno"):
        return stream.fileno(), False
    raise ValueError(f"a forked kernel's output goes to a file or None, not {stream!r}")


class ForkedKernel:
    """The part of :class:`subprocess.Popen` that jupyter_client uses, for a kernel that
    :class:`ForkServer` started (a child of the server, not of this process)."""

    stdin = stdout = stderr = None

    def __init__(self, server: ForkServer, pid: int):
        self.server, self.pid = server, pid

    def poll(self):
        return self.server.returncode(self.pid, timeout=0)

    def wait(self, timeout=None):
        import subprocess

        code = self.server.returncode(self.pid, timeout=timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"stage kernel {self.pid}", timeout)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


if __name__ == "__main__":
    # Run by path, sys.path[0] is this file's folder, whose modules would shadow top-level ones
    # (``config``, ``data``): it goes, as ipykernel_launcher removes the working folder (IPython
    # puts the working folder back for the notebook's code).
    del sys.path[0]
    atexit.register(_end_without_teardown)
    if sys.argv[1:2] == ["--fork-server"]:
        serve_forks(int(sys.argv[2]))
    preload()
    _run_kernel()
