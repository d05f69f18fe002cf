"""Record and refuse outbound network use from Python (anything but loopback), for the privacy tests.

In a subprocess it is installed by a sitecustomize.py (see test_privacy.py) before any other import, so every
library's connect, DNS lookup and UDP send goes through it; in-process, install() / uninstall() around a call.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import threading

_WRITE = threading.Lock()


def is_loopback(host: object) -> bool:
    """127.0.0.0/8, ::1 and 'localhost' are allowed; any other address or name is outbound."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).strip("[]").split("%")[0]
    if text.lower() in ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"):
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False  # a host name: resolving it is itself outbound (DNS)


def _is_address(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%")[0])
        return True
    except ValueError:
        return False


class NetGuard:
    """Wraps socket.connect/connect_ex/sendto and getaddrinfo: non-loopback use is recorded, then refused."""

    def __init__(self, log_path: str | None = None):
        self.log_path = log_path
        self.attempts: list[dict[str, str]] = []
        self._saved: dict[str, object] = {}

    def _refuse(self, kind: str, target: object) -> None:
        entry = {"kind": kind, "target": repr(target), "pid": str(os.getpid())}
        self.attempts.append(entry)
        if self.log_path:
            with _WRITE, open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")

    def install(self) -> NetGuard:
        guard = self
        sock = socket.socket
        saved = {"connect": sock.connect, "connect_ex": sock.connect_ex, "sendto": sock.sendto,
                 "getaddrinfo": socket.getaddrinfo}
        self._saved = saved

        def outbound(s: socket.socket, address: object) -> bool:
            return (s.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
                    and not is_loopback(address[0]))

        def connect(s, address):
            if outbound(s, address):
                guard._refuse("connect", address)
                raise OSError(errno.ENETUNREACH, "outbound network blocked by the privacy test")
            return saved["connect"](s, address)

        def connect_ex(s, address):
            if outbound(s, address):
                guard._refuse("connect", address)
                return errno.ENETUNREACH
            return saved["connect_ex"](s, address)

        def sendto(s, data, *args):
            if args and outbound(s, args[-1]):
                guard._refuse("sendto", args[-1])
                raise OSError(errno.ENETUNREACH, "outbound network blocked by the privacy test")
            return saved["sendto"](s, data, *args)

        def getaddrinfo(host, *args, **kwargs):
            if not is_loopback(host) and not _is_address(host):  # an address needs no lookup; connect decides
                guard._refuse("dns", host)
                raise socket.gaierror(socket.EAI_NONAME, "name resolution blocked by the privacy test")
            return saved["getaddrinfo"](host, *args, **kwargs)

        sock.connect, sock.connect_ex, sock.sendto = connect, connect_ex, sendto
        socket.getaddrinfo = getaddrinfo
        return self

    def uninstall(self) -> None:
        if self._saved:
            sock = socket.socket
            sock.connect, sock.connect_ex = self._saved["connect"], self._saved["connect_ex"]
            sock.sendto = self._saved["sendto"]
            socket.getaddrinfo = self._saved["getaddrinfo"]
            self._saved = {}

    def __enter__(self) -> NetGuard:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


def install_from_environment() -> None:
    """For sitecustomize.py: guard this process if NETGUARD_LOG names a log file."""
    path = os.environ.get("NETGUARD_LOG")
    if path:
        NetGuard(path).install()
