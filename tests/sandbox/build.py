"""The Debian sid root filesystem that holds Asterisk: built once per recipe, cached, reused."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_ENV = "CALLCENTERD_SANDBOX_CACHE"
DEFAULT_CACHE_DIR = Path("/var/cache/callcenterd-sandbox")
# Written last into a finished root filesystem: a folder without it is an interrupted build.
READY_MARKER = "callcenterd-sandbox-recipe.json"
# Host commands the harness runs, and the Debian package that provides each.
HOST_TOOLS = {"mmdebstrap": "mmdebstrap", "sipp": "sip-tester", "unshare": "util-linux"}
# Asterisk's state folders belong to a uid that means nothing outside the chroot; Asterisk runs as
# root in the sandbox, so root must own them or the ASTdb cannot be opened.
ASTERISK_STATE_DIRS = (
    "etc/asterisk",
    "var/lib/asterisk",
    "var/log/asterisk",
    "var/spool/asterisk",
)


class ProvisioningError(RuntimeError):
    """The sandbox cannot be provisioned on this machine (not root, no package registry, ...)."""


@dataclass(frozen=True)
class RootfsRecipe:
    """Everything that decides the root filesystem's content; a change means a rebuild."""

    suite: str = "sid"
    packages: tuple[str, ...] = (
        "asterisk",
        "asterisk-modules",
        "asterisk-moh-opsound-wav",
        "asterisk-core-sounds-en-wav",
    )
    # sid's Release file is often past its Valid-Until date; apt refuses it without this.
    mmdebstrap_options: tuple[str, ...] = (
        "--variant=apt",
        '--aptopt=Acquire::Check-Valid-Until "false"',
    )
    # Bump when the post-processing below changes.
    version: int = 1

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def sandbox_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def ensure_host_tools() -> None:
    """Install mmdebstrap and sipp through apt when they are missing."""
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        apt_install(missing)


def apt_install(packages: list[str]) -> None:
    """Install Debian packages on the host (root only); ProvisioningError says why not."""
    if os.geteuid() != 0:
        raise ProvisioningError(f"needs root to install {', '.join(packages)}")
    log.info("installing host packages: %s", " ".join(packages))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
            raise ProvisioningError(f"{' '.join(command[:2])} failed: {tail[0]}")


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block; waits for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_rootfs(recipe: RootfsRecipe, cache_dir: Path) -> Path:
    """Return the root filesystem for `recipe`, building it first if the cache has none."""
    target = cache_dir / f"rootfs-{recipe.digest()}"
    if (target / READY_MARKER).exists():
        return target
    if os.geteuid() != 0:
        raise ProvisioningError("needs root to build the Asterisk root filesystem")
    ensure_host_tools()
    # Two runs that both miss the cache: the second waits here and then finds the first's build.
    with file_lock(cache_dir / f"rootfs-{recipe.digest()}.lock"):
        if (target / READY_MARKER).exists():
            return target
        _build(recipe, cache_dir, target)
    return target


def _build(recipe: RootfsRecipe, cache_dir: Path, target: Path) -> None:
    staging = cache_dir / f".building-{recipe.digest()}"
    build_log = cache_dir / f"build-{recipe.digest()}.log"
    # Left over by a build that was killed: we hold the lock, so nobody else is using them.
    for leftover in (staging, target):
        if leftover.exists():
            shutil.rmtree(leftover)
    command = [
        "mmdebstrap",
        *recipe.mmdebstrap_options,
        f"--include={','.join(recipe.packages)}",
        recipe.suite,
        str(staging),
    ]
    log.info("building the Asterisk root filesystem into %s (log: %s)", target, build_log)
    started = time.monotonic()
    with build_log.open("w") as out:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = build_log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ProvisioningError(f"mmdebstrap failed ({result.returncode}): {tail[0]}")
    for relative in ASTERISK_STATE_DIRS:
        subprocess.run(["chown", "-R", "root:root", str(staging / relative)], check=True)
    (staging / READY_MARKER).write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    os.rename(staging, target)
    log.warning("built the Asterisk root filesystem in %.1f s", time.monotonic() - started)
