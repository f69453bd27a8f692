"""Asterisk configuration for one sandbox: the shipped samples in etc/asterisk plus test additions.

The samples are used as shipped. The sandbox only swaps the placeholders it must (ports,
passwords, the provider's address), drops the example operators and queues, and appends its own:
static-contact operator phones 1001.. on loopback ports, one queue per test queue name and a
number per queue. A placeholder that is no longer in a sample fails loudly, so the tested files
and the shipped files cannot drift apart.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "etc" / "asterisk"
SHIPPED_FILES = (
    "modules.conf",
    "http.conf",
    "ari.conf",
    "manager.conf",
    "pjsip.conf",
    "extensions.conf",
    "queues.conf",
    "musiconhold.conf",
)
# The ARI and AMI user names of the samples: the sandbox changes only their passwords.
ARI_USERNAME = "callcenterd"
AMI_USERNAME = "callcenterd"
# Dialing QUEUE_NUMBER_BASE + i reaches the i-th test queue (see SandboxSettings.queue_number).
QUEUE_NUMBER_BASE = 7000
DEFAULT_TEST_QUEUES = ("support", "sales", "billing", "vip", "overflow", "q1", "q2", "q3")
# app_queue reads [general] as its settings; the template holds every queue's shared settings.
RESERVED_QUEUE_NAMES = frozenset({"general", "callcenterd-queue"})
EXAMPLE_OPERATORS = frozenset({"1001", "1002"})
EXAMPLE_QUEUES = frozenset({"support", "sales"})


@dataclass(frozen=True)
class SandboxSettings:
    """What a test run may choose about its Asterisk; passwords are fresh for every run."""

    ari_app: str = "callcenterd"
    operator_extensions: tuple[str, ...] = tuple(str(n) for n in range(1001, 1021))
    queues: tuple[str, ...] = DEFAULT_TEST_QUEUES
    ari_password: str = field(default_factory=lambda: secrets.token_hex(12))
    ami_secret: str = field(default_factory=lambda: secrets.token_hex(12))

    def __post_init__(self) -> None:
        reserved = RESERVED_QUEUE_NAMES.intersection(self.queues)
        if reserved:
            raise ValueError(f"queue names reserved by queues.conf: {sorted(reserved)}")

    def queue_number(self, queue: str) -> str:
        """The number a caller dials to reach `queue` (7000 for the first test queue, ...)."""
        return str(QUEUE_NUMBER_BASE + self.queues.index(queue))


@dataclass(frozen=True)
class SandboxPorts:
    ari_http: int
    ami: int
    sip: int
    phones: Mapping[str, int]


def replace_once(text: str, old: str, new: str, file_name: str) -> str:
    if text.count(old) != 1:
        raise ValueError(
            f"{file_name}: expected {old!r} exactly once; update tests/sandbox/config.py"
        )
    return text.replace(old, new)


def drop_sections(text: str, names: frozenset[str]) -> str:
    """Remove every `[name]` section (all of them, as pjsip.conf repeats names per type)."""
    kept: list[str] = []
    keeping = True
    for line in text.splitlines(keepends=True):
        header = re.match(r"\[([^\]]+)\]", line)
        if header:
            keeping = header.group(1) not in names
        if keeping:
            kept.append(line)
    return "".join(kept)


def _sample(name: str) -> str:
    return (SAMPLES_DIR / name).read_text()


def _asterisk_conf(instance_dir: PurePosixPath, modules_dir: PurePosixPath) -> str:
    # Every folder Asterisk writes to is inside the instance folder: runs never share state.
    return f"""[directories]
astetcdir => {instance_dir}/etc
astmoddir => {modules_dir}
astvarlibdir => {instance_dir}/lib
astdbdir => {instance_dir}/lib
astkeydir => {instance_dir}/lib
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {instance_dir}/spool
astrundir => {instance_dir}/run
astlogdir => {instance_dir}/log
astsbindir => /usr/sbin
astcachedir => {instance_dir}/cache

[options]
verbose=3
"""


# Every loopback address is the trunk (the sipp callers), so a call a sipp phone places itself
# (an attended transfer's consultation) names its endpoint in this header, which Asterisk's
# `header` identifier checks before the addresses.
PHONE_HEADER = "X-Callcenterd-Phone"

# Loopback phones answer a qualify in milliseconds. A short timeout bounds how long a qualify
# sent while no phone listened (between two tests) can take to fail: see OperatorPhones.start.
QUALIFY_TIMEOUT = 1.0


def _operators(settings: SandboxSettings, ports: SandboxPorts) -> str:
    blocks = ["\n; ---- sandbox: operator phones are sipp processes on fixed loopback ports ----\n"]
    for extension in settings.operator_extensions:
        blocks.append(
            f"""
[{extension}](operator)
aors={extension}
callerid="Operator {extension}" <{extension}>
media_address=127.0.0.1
bind_rtp_to_media_address=yes

[{extension}](operator-aor)
contact=sip:{extension}@127.0.0.1:{ports.phones[extension]}
qualify_timeout={QUALIFY_TIMEOUT}

[{extension}-phone]
type=identify
endpoint={extension}
match_header={PHONE_HEADER}: {extension}
"""
        )
    return "".join(blocks)


def _pjsip_conf(settings: SandboxSettings, ports: SandboxPorts) -> str:
    text = _sample("pjsip.conf")
    text = replace_once(
        text,
        "endpoint_identifier_order=ip,username",
        "endpoint_identifier_order=header,ip,username",
        "pjsip.conf",
    )
    text = replace_once(text, "bind=0.0.0.0:5060", f"bind=127.0.0.1:{ports.sip}", "pjsip.conf")
    # Any INVITE from loopback (the sipp callers) is a call from the provider.
    text = replace_once(text, "match=203.0.113.10", "match=127.0.0.1", "pjsip.conf")
    text = replace_once(
        text,
        "context=from-trunk\n",
        "context=from-trunk\nmedia_address=127.0.0.1\nbind_rtp_to_media_address=yes\n",
        "pjsip.conf",
    )
    return drop_sections(text, EXAMPLE_OPERATORS) + _operators(settings, ports)


# The outside world, for external transfers: numbers dialed in this context reach the sipp
# listening on phone OUTSIDE_PHONE's port (its endpoint used as a trunk, the number in the
# INVITE's request URI, as towards a provider).
OUTSIDE_CONTEXT = "sandbox-outside"
OUTSIDE_PHONE = "1020"


def _outside(ports: SandboxPorts) -> str:
    port = ports.phones[OUTSIDE_PHONE]
    return (
        f"\n; ---- sandbox: external numbers reach phone {OUTSIDE_PHONE}'s sipp ----\n"
        f"[{OUTSIDE_CONTEXT}]\n"
        f"exten => _X.,1,Dial(PJSIP/{OUTSIDE_PHONE}/sip:${{EXTEN}}@127.0.0.1:{port},30)\n"
        " same => n,Hangup()\n"
    )


def _extensions_conf(settings: SandboxSettings) -> str:
    text = replace_once(
        _sample("extensions.conf"),
        "CALLCENTERD_APP=callcenterd\n",
        f"CALLCENTERD_APP={settings.ari_app}\n",
        "extensions.conf",
    )
    lines = ["\n; ---- sandbox: one number per test queue ----\n[from-trunk](+)\n"]
    for queue in settings.queues:
        lines.append(f"exten => {settings.queue_number(queue)},1,Set(QUEUE={queue})\n")
        lines.append(" same => n,Goto(callcenterd,${EXTEN},1)\n")
    return text + "".join(lines)


def _queues_conf(settings: SandboxSettings) -> str:
    members = "".join(f"member => PJSIP/{ext}\n" for ext in settings.operator_extensions)
    queues = "".join(f"\n[{queue}](callcenterd-queue)\n{members}" for queue in settings.queues)
    sandbox_header = "\n; ---- sandbox: every test queue has every operator phone ----\n"
    return drop_sections(_sample("queues.conf"), EXAMPLE_QUEUES) + sandbox_header + queues


def render_config(
    settings: SandboxSettings,
    ports: SandboxPorts,
    instance_dir: PurePosixPath,
    modules_dir: PurePosixPath,
) -> dict[str, str]:
    """File name -> content of every file in the instance's etc/ folder."""
    files = {name: _sample(name) for name in SHIPPED_FILES}
    files["http.conf"] = replace_once(
        files["http.conf"], "bindport=8088", f"bindport={ports.ari_http}", "http.conf"
    )
    files["ari.conf"] = replace_once(
        files["ari.conf"], "password=change-me-ari", f"password={settings.ari_password}", "ari.conf"
    )
    manager = replace_once(files["manager.conf"], "port=5038", f"port={ports.ami}", "manager.conf")
    files["manager.conf"] = replace_once(
        manager, "secret=change-me-ami", f"secret={settings.ami_secret}", "manager.conf"
    )
    files["pjsip.conf"] = _pjsip_conf(settings, ports)
    files["extensions.conf"] = _extensions_conf(settings) + _outside(ports)
    files["queues.conf"] = _queues_conf(settings)
    # Sandbox-only files: the admin keeps their own.
    files["asterisk.conf"] = _asterisk_conf(instance_dir, modules_dir)
    files["logger.conf"] = "[logfiles]\nmessages.log => notice,warning,error,verbose\n"
    files["rtp.conf"] = "[general]\nrtpstart=10000\nrtpend=19999\n"
    return files
