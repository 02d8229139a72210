"""Who may talk to the simulator: CurveZMQ with a ZAP allow-list, and a record of who tried.

The simulator's ROUTER is a CURVE server (its key pair from a zcert ``.key_secret`` file). A
ZAP authenticator, started on the socket's context before the socket binds, admits a client only
if its public key is in the allow-list: the directory ``clients`` of zcert public certificates
named ``agent_NNNN.key`` (NNNN, the agent id the key belongs to). Every message then carries the
authenticated key (ZeroMQ's ``User-Id`` metadata), and the simulator rejects any message whose
``agent_id`` is not the one that key belongs to: an agent cannot speak for another.

Failed attempts are counted and logged (and recorded as events, at most :data:`EVENTS_PER_SECOND`
a second): unknown keys (by the ZAP handler), and handshakes that fail before ZAP is asked
(a plaintext client, garbage bytes, a wrong server key) through a socket monitor.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from swarmcover.logbudget import LogBudget

__all__ = ["EVENTS_PER_SECOND", "CurveGuard", "load_allow_list"]

log = logging.getLogger("swarmcover.sim.security")

EVENTS_PER_SECOND = 20
ZAP_DOMAIN = "swarmcover"  # the ZAP handler answers for exactly this domain (the socket's)

_HANDSHAKE_FAILURES = {
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake failed: protocol error (plaintext client or garbage?)",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "handshake failed: authentication refused",
}
_AGENT_CERT = re.compile(r"^agent_(\d+)\.key$")


def load_allow_list(clients: str | Path) -> dict[int, bytes]:
    """``{agent_id: z85 public key}`` from the ``agent_NNNN.key`` certificates in ``clients``."""
    d = Path(clients)
    if not d.is_dir():
        raise ValueError(f"CURVE client keys: {d} is not a directory")
    keys: dict[int, bytes] = {}
    for f in sorted(d.iterdir()):
        m = _AGENT_CERT.match(f.name)
        if not m:
            continue
        try:
            public, _ = zmq.auth.load_certificate(f)
        except (ValueError, OSError) as exc:
            raise ValueError(f"CURVE client key {f}: {exc}") from None
        if public is None or len(public) != 40:
            raise ValueError(f"CURVE client key {f}: no 40-character public-key")
        keys[int(m.group(1))] = public
    if len(set(keys.values())) != len(keys):
        raise ValueError(f"CURVE client keys in {d}: two agents share a key")
    return keys


def load_secret(path: str | Path) -> tuple[bytes, bytes]:
    """``(public, secret)`` z85 keys from a zcert ``.key_secret`` file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"CURVE secret key file not found: {p}")
    try:
        public, secret = zmq.auth.load_certificate(p)
    except (ValueError, OSError) as exc:
        raise ValueError(f"CURVE secret key {p}: {exc}") from None
    if not public or not secret:
        raise ValueError(f"CURVE secret key {p}: needs both public-key and secret-key")
    return public, secret


class CurveGuard:
    """Makes ``sock`` (not yet bound) a CURVE server whose clients are ``allow`` (``{id: key}``)."""

    def __init__(self, ctx: zmq.Context, sock: zmq.Socket, secret_key: str | Path, allow: dict[int, bytes]):
        public, secret = load_secret(secret_key)
        self.public_key = public
        self.keys = dict(allow)
        self.ids_by_key = {k.decode("ascii"): a for a, k in allow.items()}
        self.counts = {"auth_denied": 0, "handshake_failed": 0, "events_suppressed": 0}
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, dict]] = deque(maxlen=1000)
        self._window = (0.0, 0)
        self.quiet = LogBudget(log)  # a flood of refused handshakes writes a few lines, not one each
        self.auth = ThreadAuthenticator(ctx, log=logging.getLogger("swarmcover.sim.zap"))
        self.auth.start()
        self.auth.configure_curve_callback(ZAP_DOMAIN, credentials_provider=self)
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
        sock.zap_domain = ZAP_DOMAIN.encode()
        events = 0
        for e in _HANDSHAKE_FAILURES:
            events |= e
        self.monitor = sock.get_monitor_socket(events)
        self._sock = sock

    # called by the ZAP thread
    def callback(self, domain: str, key: bytes) -> bool:
        ok = key.decode("ascii", "replace") in self.ids_by_key
        if not ok:
            with self._lock:
                self.counts["auth_denied"] += 1
                self._pending.append(("auth_denied", {"key": key.decode("ascii", "replace")}))
                what = key.decode("ascii", "replace")
                self.quiet.warning("auth_denied", "CURVE client with an unknown key refused: %s", what)
        return ok

    def agent_for(self, user_id: str | None) -> int | None:
        """The agent id the authenticated key ``user_id`` belongs to (None: not ours)."""
        return None if user_id is None else self.ids_by_key.get(user_id)

    def take_events(self) -> list[tuple[str, dict]]:
        """Failed attempts since the last call (handshake failures read off the monitor here),
        rate-limited to :data:`EVENTS_PER_SECOND`; the rest are only counted."""
        for _ in range(10_000):  # bounded: a flood of handshakes cannot hold the tick loop here
            if not self.monitor.poll(0):
                break
            try:
                ev = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            what = _HANDSHAKE_FAILURES.get(ev["event"])
            if what is None:
                continue
            with self._lock:
                self.counts["handshake_failed"] += 1
                self._pending.append(("handshake_failed", {"why": what, "code": int(ev["value"])}))
                self.quiet.warning("handshake_failed", "%s (code %d)", what, ev["value"])
        out = []
        now = time.monotonic()
        with self._lock:
            start, used = self._window
            if now - start >= 1.0:
                start, used = now, 0
            while self._pending:
                item = self._pending.popleft()
                if used < EVENTS_PER_SECOND:
                    out.append(item)
                    used += 1
                else:
                    self.counts["events_suppressed"] += 1
            self._window = (start, used)
        return out

    def close(self) -> None:
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(linger=0)
        self.auth.stop()
