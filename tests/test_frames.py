"""Issue 22: memory per message is bounded. ZeroMQ keeps every frame of a multipart message until
its last frame, and bounds neither their number nor (beyond ``MAXMSGSIZE``, per frame) their
total; these tests attack a launched simulator with a real ZMTP 3.0 peer written here from the
specification (https://rfc.zeromq.org/spec/23/, NULL mechanism), which can send what pyzmq
would buffer on its own side: a message with too many frames, a frame too big, a message that
never ends."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest
from launching import events_of, summary_of, wait_until

pytestmark = pytest.mark.integration

LAUNCH = Path(__file__).resolve().parents[1] / "launch"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb(pid: int, key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"{key} not in /proc/{pid}/status")


class ZmtpPeer:
    """A DEALER speaking ZMTP 3.0 with the NULL mechanism over a plain TCP socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        greeting = b"\xff" + b"\0" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\0") + b"\0" * 32
        self.sock.sendall(greeting)
        ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
        self.sock.sendall(bytes([0x04, len(ready)]) + ready)
        got = b""
        while len(got) < 64:  # the server's greeting
            chunk = self.sock.recv(64 - len(got))
            if not chunk:
                raise ConnectionError("the server closed during the greeting")
            got += chunk
        assert got[0] == 0xFF and got[9] == 0x7F and got[10] == 3, got

    @staticmethod
    def frame(body: bytes, more: bool) -> bytes:
        flags = 0x01 if more else 0x00
        if len(body) <= 255:
            return bytes([flags, len(body)]) + body
        return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body

    def send(self, *frames: bytes) -> None:
        self.sock.sendall(b"".join(self.frame(f, i < len(frames) - 1) for i, f in enumerate(frames)))

    def closed_by_peer(self, timeout: float = 15.0) -> bool:
        """Whether the server ends this connection within ``timeout`` s (what it sends us before
        is read and dropped: it owes us nothing)."""
        self.sock.settimeout(0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                continue
            except OSError:  # reset
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def test_many_frames_a_huge_frame_or_an_endless_message_cost_a_connection_not_the_run(tmp_path, launches):
    """The quickstart (--insecure: anyone on loopback may connect), attacked once its fleet runs:
    a complete message of three frames, a 1 MiB frame, and one message whose frames never end
    (16 KB frames sent as fast as loopback takes them: 4.2 GB in 15 s grew the simulator by
    4 GB before). Each attacker's connection is closed, the simulator's peak memory stays within
    its budget (512 MiB over the start) plus what comes in before the next look, what was held
    is given back, and the run ends whole with every robot alive."""
    port = _free_port()
    out = tmp_path / "run"
    p = launches.start(str(LAUNCH / "quickstart.toml"), "--headless", "--insecure", "--duration", "60",
                       "--bind", f"tcp://127.0.0.1:{port}", out=out)  # fmt: skip
    wait_until(lambda: sum(e["kind"] == "joined" for e in events_of(out)) == 12 or p.poll() is not None,
               120.0, "the fleet to join")  # fmt: skip
    assert p.poll() is None
    before = _memory_mb(p.pid, "VmRSS")
    peers = []
    try:
        many = ZmtpPeer(port)
        peers.append(many)
        many.send(b"{}", b"x" * 100, b"y" * 100)
        assert many.closed_by_peer(), "a three-frame message did not cost its connection"

        huge = ZmtpPeer(port)
        peers.append(huge)
        try:
            huge.send(b"x" * (1 << 20))
        except OSError:  # closed while the frame was still going out
            pass
        assert huge.closed_by_peer(), "a 1 MiB frame did not cost its connection"

        endless = ZmtpPeer(port)
        peers.append(endless)
        endless.send(b'{"v":1}')  # one complete message: it is not a silent connection
        chunk = ZmtpPeer.frame(b"x" * 16_000, more=True) * 64
        sent, deadline = 0, time.monotonic() + 60.0
        endless.sock.settimeout(2.0)
        try:
            while sent < 4 << 30 and time.monotonic() < deadline:
                endless.sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # reset, or the server stopped reading
            pass
        assert endless.closed_by_peer(), (
            f"an endless message ({sent / 2**20:.0f} MiB sent) kept its connection"
        )
        peak = _memory_mb(p.pid, "VmHWM")
        assert sent > 100 << 20, f"only {sent / 2**20:.0f} MiB went"
        assert peak - before < 1024, (
            f"the simulator grew {peak - before:.0f} MiB (sent {sent / 2**20:.0f} MiB)"
        )
        wait_until(lambda: _memory_mb(p.pid, "VmRSS") < before + 256 or p.poll() is not None, 20.0,
                   "the memory to be given back")  # fmt: skip
        _, se = p.communicate(timeout=180)
    finally:
        for peer in peers:
            peer.close()
    assert p.returncode == 0, se.decode()[-3000:]
    summary = summary_of(out)
    assert summary["final"]["alive"] == 12 and not summary["interrupted"]
    kinds = [e["kind"] for e in summary["events"]]
    assert "detected_failure" not in kinds
    c = summary["messages"]["connections"]
    assert c["connections_dropped"] >= 1 and c["connections_memory"] >= 1, c
    assert c["memory_peak_growth"] > 256 << 20, c
