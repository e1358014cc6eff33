"""Hosts of their own for a test: Linux network namespaces joined by veth pairs to a bridge.

Each host is a namespace with one interface (``eth0``, the end of a veth pair whose other
end sits on a bridge in a hub namespace) and one address of a private /24 that exists only
inside these namespaces. The test's own namespace joins the bridge too, so the test can
talk to the hosts; everything is removed on close (deleting a namespace deletes its veths).
"""

from __future__ import annotations

import os
import subprocess
import uuid

SUBNET = "10.237.15"  # only inside the namespaces this module creates


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    probe = f"ktrdr-probe-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        return f"`ip netns add` does not work here: {str(detail).strip()}"
    _ip("netns", "del", probe)
    return None


class Hosts:
    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.hub = f"kt-{self.tag}-hub"
        self.names: dict[str, str] = {}  # host -> namespace
        self.addresses: dict[str, str] = {}
        self._root_veth = f"kt{self.tag}r"
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        # The test's own end: address .254 on the bridge.
        _ip("link", "add", self._root_veth, "type", "veth", "peer", "name", "root",
            "netns", self.hub)  # fmt: skip
        self._attach(None, self._root_veth, "root", f"{SUBNET}.254")

    def _attach(self, ns: str | None, inner: str, hub_end: str, address: str) -> None:
        where = ["-n", ns] if ns else []
        _ip("-n", self.hub, "link", "set", hub_end, "master", "br0")
        _ip("-n", self.hub, "link", "set", hub_end, "up")
        _ip(*where, "addr", "add", f"{address}/24", "dev", inner)
        _ip(*where, "link", "set", inner, "up")

    def add(self, host: str) -> str:
        """A new host; returns its address."""
        ns = f"kt-{self.tag}-{host}"
        address = f"{SUBNET}.{len(self.names) + 1}"
        hub_end = f"h{len(self.names)}"
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hub_end,
            "netns", self.hub)  # fmt: skip
        self._attach(ns, "eth0", hub_end, address)
        self.names[host] = ns
        self.addresses[host] = address
        return address

    def prefix(self, host: str) -> list[str]:
        """The command prefix that runs a process on ``host``."""
        return ["ip", "netns", "exec", self.names[host]]

    def close(self) -> None:
        for ns in [*self.names.values(), self.hub]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self._root_veth], capture_output=True, timeout=10)
