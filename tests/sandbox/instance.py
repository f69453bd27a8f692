"""One running Asterisk in the cached root filesystem, with its own config, state and ports."""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from .build import (
    READY_MARKER,
    ProvisioningError,
    RootfsRecipe,
    ensure_host_tools,
    ensure_rootfs,
    sandbox_cache_dir,
)
from .config import AMI_USERNAME, ARI_USERNAME, SandboxPorts, SandboxSettings, render_config
from .ports import PortLeases
from .processes import die_with_parent

log = logging.getLogger(__name__)

INSTANCE_PREFIX = "ccd-"
KEEP_MARKER = "KEPT"
# In the run folder of an instance started with `up --detach`: {"pid": ..., ...}.
DETACHED_STATE = "detached.json"
# Folders of failed runs are kept for reading, but not forever.
KEEP_FOR_SECONDS = 3 * 24 * 3600
# Inside a private mount namespace: /proc and /dev are mounted for the chroot only, and the
# mounts vanish with the namespace when Asterisk exits, however it exits.
LAUNCH_SCRIPT = (
    'mount --bind /proc "$1/proc" && mount --rbind /dev "$1/dev" && '
    'exec chroot "$1" /usr/sbin/asterisk -C "$2" -f -n -U root -G root'
)


class AsteriskSandbox:
    """A real Asterisk on loopback ports of its own; `provision()` builds, `start()` runs it."""

    def __init__(self, rootfs: Path, cache_dir: Path, settings: SandboxSettings) -> None:
        self.settings = settings
        self.rootfs = rootfs
        self.instance_id = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.chroot_run_dir = PurePosixPath("/run") / f"{INSTANCE_PREFIX}{self.instance_id}"
        self.run_dir = rootfs / str(self.chroot_run_dir).lstrip("/")
        self._leases = PortLeases(cache_dir / "ports")
        ari_http, ami, sip, *phones = self._leases.take(3 + len(settings.operator_extensions))
        self.ports = SandboxPorts(
            ari_http=ari_http,
            ami=ami,
            sip=sip,
            phones=dict(zip(settings.operator_extensions, phones, strict=True)),
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._run_dir_lock: TextIO | None = None
        self._closed = False

    @classmethod
    def provision(
        cls, settings: SandboxSettings | None = None, recipe: RootfsRecipe | None = None
    ) -> AsteriskSandbox:
        """Build (or reuse) the root filesystem and prepare a new instance; raises
        ProvisioningError when this machine cannot host the sandbox."""
        if os.geteuid() != 0:
            raise ProvisioningError("needs root (chroot and a private mount namespace)")
        cache_dir = sandbox_cache_dir()
        ensure_host_tools()
        rootfs = ensure_rootfs(recipe or RootfsRecipe(), cache_dir)
        remove_stale_instances(rootfs)
        remove_other_rootfs(cache_dir, rootfs)
        return cls(rootfs, cache_dir, settings or SandboxSettings())

    # ---- what clients need ------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        """Asterisk's HTTP server: what callcenterd's [ari] url setting expects."""
        return f"http://127.0.0.1:{self.ports.ari_http}"

    @property
    def ari_url(self) -> str:
        """The ARI REST base: ari_url + "/asterisk/info" and so on."""
        return f"{self.http_url}/ari"

    @property
    def ari_events_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports.ari_http}/ari/events"

    @property
    def ari_username(self) -> str:
        return ARI_USERNAME

    @property
    def ari_password(self) -> str:
        return self.settings.ari_password

    @property
    def ari_app(self) -> str:
        return self.settings.ari_app

    @property
    def ari_headers(self) -> dict[str, str]:
        """The basic-auth header for ARI REST and WebSocket requests."""
        token = base64.b64encode(f"{self.ari_username}:{self.ari_password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    @property
    def ami_host(self) -> str:
        return "127.0.0.1"

    @property
    def ami_port(self) -> int:
        return self.ports.ami

    @property
    def ami_username(self) -> str:
        return AMI_USERNAME

    @property
    def ami_secret(self) -> str:
        return self.settings.ami_secret

    @property
    def sip_host(self) -> str:
        return "127.0.0.1"

    @property
    def sip_port(self) -> int:
        return self.ports.sip

    @property
    def phone_ports(self) -> Mapping[str, int]:
        return self.ports.phones

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "log"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def queue_number(self, queue: str) -> str:
        """The number to dial so the dialplan hands the call to `queue`."""
        return self.settings.queue_number(queue)

    def describe(self) -> dict[str, Any]:
        """What a human or a detached `down` needs to know about this instance."""
        return {
            "instance_id": self.instance_id,
            "pid": self._process.pid if self._process is not None else None,
            "rootfs": str(self.rootfs),
            "run_dir": str(self.run_dir),
            "asterisk_conf": str(self.chroot_run_dir / "etc" / "asterisk.conf"),
            "http_url": self.http_url,
            "ari_url": self.ari_url,
            "ari_events_url": self.ari_events_url,
            "ari_username": self.ari_username,
            "ari_password": self.ari_password,
            "ari_app": self.ari_app,
            "ami": f"{self.ami_host}:{self.ami_port}",
            "ami_username": self.ami_username,
            "ami_secret": self.ami_secret,
            "sip": f"{self.sip_host}:{self.sip_port}",
            "queue_numbers": {queue: self.queue_number(queue) for queue in self.settings.queues},
            "phone_ports": dict(self.phone_ports),
        }

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 60.0, *, detached: bool = False) -> float:
        """Write the config, start Asterisk, wait until ARI answers; returns the seconds taken.

        A detached Asterisk outlives this process (`python -m tests.sandbox down` stops it);
        otherwise it dies with the thread that started it, even on SIGKILL."""
        if self.is_running:
            raise RuntimeError("Asterisk is already running")
        started = time.monotonic()
        self._prepare_run_dir()
        output = (self.log_dir / "asterisk.out").open("ab")
        self._process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
                LAUNCH_SCRIPT,
                "callcenterd-sandbox",
                str(self.rootfs),
                str(self.chroot_run_dir / "etc" / "asterisk.conf"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=None if detached else die_with_parent,
            # Its own session: a Ctrl-C in the terminal reaches us, and we stop Asterisk cleanly.
            start_new_session=True,
        )
        output.close()
        if not detached:
            atexit.register(self.close)
        try:
            self._wait_until_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        if detached:
            (self.run_dir / DETACHED_STATE).write_text(json.dumps(self.describe(), indent=2))
        elapsed = time.monotonic() - started
        log.info("asterisk ready at %s in %.2f s", self.ari_url, elapsed)
        return elapsed

    def stop(self, timeout: float = 10.0) -> None:
        """`core stop now`, then SIGTERM, then SIGKILL, whichever ends Asterisk first."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.cli("core stop now", timeout=timeout)
        for send_signal in (None, process.terminate, process.kill):
            if send_signal is not None:
                with contextlib.suppress(ProcessLookupError):
                    send_signal()
            try:
                process.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        self._process = None

    def restart(self, timeout: float = 60.0) -> float:
        """Stop and start again with the same ports and config (channels and ARI apps are lost)."""
        self.stop()
        return self.start(timeout)

    def close(self, keep_run_dir: bool = False) -> None:
        """Stop Asterisk, release the ports, and delete the run folder unless asked to keep it."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.stop()
        self._leases.release()
        if keep_run_dir and self.run_dir.exists():
            (self.run_dir / KEEP_MARKER).touch()
        if self._run_dir_lock is not None:
            self._run_dir_lock.close()
        if not keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # ---- control ------------------------------------------------------------------------------

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run one CLI command against this instance (`asterisk -rx`); returns its output."""
        result = subprocess.run(
            self._cli_argv(command), capture_output=True, text=True, timeout=timeout, check=True
        )
        return result.stdout

    async def cli_async(self, command: str, within: float = 10.0) -> str:
        """`cli()` without blocking the event loop (an ARI WebSocket reader must keep reading)."""
        process = await asyncio.create_subprocess_exec(
            *self._cli_argv(command),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), within)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise subprocess.CalledProcessError(process.returncode or 1, command, stdout, stderr)
        return stdout.decode()

    def active_channel_count(self) -> int:
        output = self.cli("core show channels count")
        for line in output.splitlines():
            if line.endswith("active channels") or line.endswith("active channel"):
                return int(line.split()[0])
        raise RuntimeError(f"unexpected 'core show channels count' output: {output!r}")

    def hangup_all(self, timeout: float = 10.0) -> None:
        """Hang up every channel and wait until none is left: a clean slate between tests."""
        if not self.is_running:
            return
        deadline = time.monotonic() + timeout
        while self.active_channel_count() > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"channels still up after {timeout} s:\n{self.cli('core show channels')}"
                )
            self.cli("channel request hangup all")
            time.sleep(0.1)

    # ---- internals ----------------------------------------------------------------------------

    def _cli_argv(self, command: str) -> list[str]:
        if not self.is_running or self._process is None:
            raise RuntimeError("Asterisk is not running")
        conf = str(self.chroot_run_dir / "etc" / "asterisk.conf")
        return cli_argv(self._process.pid, self.rootfs, conf, command)

    def _prepare_run_dir(self) -> None:
        if self._run_dir_lock is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            # Held while this instance lives, so a sweeper never deletes a folder in use.
            self._run_dir_lock = (self.run_dir / ".lock").open("a")
            fcntl.flock(self._run_dir_lock, fcntl.LOCK_EX)
        for sub in ("etc", "run", "spool", "log", "lib", "cache", "tests"):
            (self.run_dir / sub).mkdir(exist_ok=True)
        # ARI stores recordings in <spool>/recording, which Asterisk does not create itself
        # (a Debian install ships it): without it every bridge recording fails with ENOENT.
        (self.run_dir / "spool" / "recording").mkdir(exist_ok=True)
        # Debian's default configs first, as on a real install; the sandbox's own files on top.
        shutil.copytree(self.rootfs / "etc" / "asterisk", self.run_dir / "etc", dirs_exist_ok=True)
        modules_dir = next(self.rootfs.glob("usr/lib/*/asterisk/modules"))
        files = render_config(
            self.settings,
            self.ports,
            self.chroot_run_dir,
            PurePosixPath("/") / modules_dir.relative_to(self.rootfs),
        )
        for name, text in files.items():
            (self.run_dir / "etc" / name).write_text(text)

    def _wait_until_ready(self, deadline: float) -> None:
        request = urllib.request.Request(f"{self.ari_url}/asterisk/info", headers=self.ari_headers)
        while True:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"Asterisk exited during start-up:\n{self._output_tail()}")
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(request, timeout=1) as response,
            ):
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"ARI not ready at {self.ari_url}:\n{self._output_tail()}")
            time.sleep(0.05)
        # ARI answers once res_ari is loaded; the modules after it may still be loading.
        self.cli("core waitfullybooted", timeout=max(deadline - time.monotonic(), 1.0))

    def _output_tail(self, lines: int = 30) -> str:
        texts = []
        for name in ("asterisk.out", "messages.log"):
            path = self.log_dir / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                texts.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(texts)


def cli_argv(pid: int, rootfs: Path, asterisk_conf: str, command: str) -> list[str]:
    # Enter Asterisk's own mount namespace, where the chroot has /proc and /dev.
    return [
        "nsenter",
        f"--target={pid}",
        "--mount",
        "chroot",
        str(rootfs),
        "/usr/sbin/asterisk",
        "-C",
        asterisk_conf,
        "-rx",
        command,
    ]


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def detached_instances(cache_dir: Path) -> list[dict[str, Any]]:
    """The state of every instance started with `up --detach` that is still running."""
    states = []
    for state_file in cache_dir.glob(f"rootfs-*/run/{INSTANCE_PREFIX}*/{DETACHED_STATE}"):
        state = json.loads(state_file.read_text())
        if is_alive(state["pid"]):
            states.append(state)
    return states


def stop_detached(state: dict[str, Any], timeout: float = 10.0) -> None:
    """Stop a detached instance (`core stop now`, then SIGKILL) and delete its run folder."""
    pid = state["pid"]
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        command = cli_argv(pid, Path(state["rootfs"]), state["asterisk_conf"], "core stop now")
        subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(state["run_dir"], ignore_errors=True)


def _in_use(run_dir: Path) -> bool:
    """True while a run holds the folder's lock, or its detached Asterisk still runs."""
    lock_path = run_dir / ".lock"
    if not lock_path.exists():
        # A run creates the folder, then its lock: give it a moment.
        return time.time() - run_dir.stat().st_mtime < 60
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
    detached = run_dir / DETACHED_STATE
    return detached.exists() and is_alive(json.loads(detached.read_text())["pid"])


def remove_stale_instances(rootfs: Path) -> None:
    """Delete run folders left by runs that died; keep failed runs' folders for a few days."""
    for run_dir in (rootfs / "run").glob(f"{INSTANCE_PREFIX}*"):
        kept = run_dir / KEEP_MARKER
        if kept.exists() and time.time() - kept.stat().st_mtime < KEEP_FOR_SECONDS:
            continue
        if not _in_use(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)


def remove_other_rootfs(cache_dir: Path, current: Path) -> None:
    """Delete root filesystems of older recipes (about 380 MB each) that no run still uses."""
    for rootfs in cache_dir.glob("rootfs-*"):
        marker = rootfs / READY_MARKER
        # A fresh one may belong to a run that is about to start on it: leave it an hour.
        if rootfs == current or not marker.exists() or time.time() - marker.stat().st_mtime < 3600:
            continue
        if not any(_in_use(run_dir) for run_dir in rootfs.glob(f"run/{INSTANCE_PREFIX}*")):
            log.info("removing the root filesystem of an older recipe: %s", rootfs)
            shutil.rmtree(rootfs, ignore_errors=True)
