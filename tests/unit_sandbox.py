"""Run a command under the seccomp filters that a systemd unit's settings install.

Usage: ``python unit_sandbox.py UNIT_FILE -- COMMAND [ARG...]``

systemd is not PID 1 where the tests run, so the unit's sandbox cannot be
started as systemd would. This script rebuilds the two seccomp parts of it,
the ones a program can trip over at run time, and then executes COMMAND:

- ``SystemCallFilter=`` with ``SystemCallErrorNumber=``: an allow list built
  from the unit's lines, expanded with ``systemd-analyze syscall-filter``;
  every other system call fails with that errno.
- ``MemoryDenyWriteExecute=yes``: ``mmap()`` with both ``PROT_WRITE`` and
  ``PROT_EXEC``, ``mprotect()`` or ``pkey_mprotect()`` with ``PROT_EXEC``, and
  ``shmat()`` with ``SHM_EXEC`` fail with ``EPERM``, as in systemd's
  ``seccomp_memory_deny_write_execute()``.

It calls libseccomp through ctypes. Namespaces, capabilities and device
policy are out of its reach.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import subprocess
import sys
from pathlib import Path

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7
SHM_EXEC = 0o100000


def scmp_act_errno(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


class ArgCmp(ctypes.Structure):
    """``struct scmp_arg_cmp`` of libseccomp."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def syscall_groups() -> dict[str, list[str]]:
    """Return the members of every ``@group`` that this systemd version defines."""
    listing = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in listing.splitlines():
        item = line.strip()
        if line.startswith("@"):
            current = item
            groups[current] = []
        elif item and not item.startswith("#") and current is not None:
            groups[current].append(item)
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    """Expand ``@group`` names recursively into system call names."""
    result: set[str] = set()
    for name in names:
        if name.startswith("@"):
            result |= expand(groups[name], groups)
        else:
            result.add(name)
    return result


def unit_settings(unit: Path) -> tuple[set[str], int, bool]:
    """Return the allowed system calls, the errno for the others and whether W^X is on."""
    groups = syscall_groups()
    allowed: set[str] | None = None
    error_number = 0
    deny_write_execute = False
    for line in unit.read_text().splitlines():
        key, _, value = line.strip().partition("=")
        if key == "SystemCallFilter":
            if value.startswith("~"):
                if allowed is None:
                    raise SystemExit(f"{unit}: only allow lists are emulated, got {line!r}")
                allowed -= expand(value[1:].split(), groups)
            elif value:
                allowed = (allowed or set()) | expand(value.split(), groups)
        elif key == "SystemCallErrorNumber":
            error_number = getattr(errno, value)
        elif key == "MemoryDenyWriteExecute":
            deny_write_execute = value in {"yes", "true", "1", "on"}
    if allowed is None or not error_number:
        raise SystemExit(
            f"{unit}: needs an allow list in SystemCallFilter= and a SystemCallErrorNumber="
        )
    return allowed, error_number, deny_write_execute


def load_filters(allowed: set[str], error_number: int, deny_write_execute: bool) -> None:
    library = ctypes.util.find_library("seccomp")
    if library is None:
        raise SystemExit("libseccomp not found")
    seccomp = ctypes.CDLL(library, use_errno=True)
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]

    def check(result: int, action: str) -> None:
        if result != 0:
            raise SystemExit(f"libseccomp: {action} failed: {os.strerror(-result)}")

    allow_list = seccomp.seccomp_init(scmp_act_errno(error_number))
    for name in sorted(allowed):
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            continue  # not a system call on this architecture
        check(
            seccomp.seccomp_rule_add_array(allow_list, SCMP_ACT_ALLOW, number, 0, None),
            f"allowing {name}",
        )

    if deny_write_execute:
        write_execute = seccomp.seccomp_init(SCMP_ACT_ALLOW)
        rules = [
            ("mmap", 2, mmap.PROT_WRITE | mmap.PROT_EXEC, mmap.PROT_WRITE | mmap.PROT_EXEC),
            ("mprotect", 2, mmap.PROT_EXEC, mmap.PROT_EXEC),
            ("pkey_mprotect", 2, mmap.PROT_EXEC, mmap.PROT_EXEC),
            ("shmat", 2, SHM_EXEC, SHM_EXEC),
        ]
        for name, arg, mask, value in rules:
            number = seccomp.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue
            compare = ArgCmp(arg, SCMP_CMP_MASKED_EQ, mask, value)
            check(
                seccomp.seccomp_rule_add_array(
                    write_execute, scmp_act_errno(errno.EPERM), number, 1, ctypes.byref(compare)
                ),
                f"denying W^X in {name}",
            )
        check(seccomp.seccomp_load(write_execute), "loading the write-execute filter")
    # Loaded last, so that the W^X filter's own seccomp() call was still allowed.
    check(seccomp.seccomp_load(allow_list), "loading the system call filter")


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit(__doc__.splitlines()[2])
    allowed, error_number, deny_write_execute = unit_settings(Path(argv[0]))
    load_filters(allowed, error_number, deny_write_execute)
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
