"""Who may talk to the simulator: CurveZMQ with a ZAP allow-list, and a record of who tried.

The simulator's ROUTER is a CURVE server (its key pair from a zcert ``.key_secret`` file). A
ZAP authenticator, started on the socket's context before the socket binds, admits a client only
if its public key is in the allow-list: the directory ``clients`` of zcert public certificates
named ``agent_NNNN.key`` (NNNN, the agent id the key belongs to). Every message then carries the
authenticated key (ZeroMQ's ``User-Id`` metadata), and the simulator rejects any message whose
``agent_id`` is not the one that key belongs to: an agent cannot speak for another.

Failed attempts are counted and logged (and recorded as events, at most
:data:`swarmcover.simulator.connections.EVENTS_PER_SECOND` a second) by the socket's
:class:`~swarmcover.simulator.connections.ConnectionGuard`: unknown keys (by the ZAP handler), a key over its
connections, and handshakes that fail before ZAP is asked (a plaintext client, garbage bytes, a
wrong server key), read off the socket's monitor.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from .connections import ConnectionGuard

__all__ = ["CurveGuard", "load_allow_list"]

log = logging.getLogger("swarmcover.sim.security")

ZAP_DOMAIN = "swarmcover"  # the ZAP handler answers for exactly this domain (the socket's)

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
    """Makes ``sock`` (not yet bound) a CURVE server whose clients are ``allow`` (``{id: key}``);
    refusals are counted and queued as events by ``conns`` (the socket's connection guard),
    which also bounds the connections each key may hold."""

    def __init__(self, ctx: zmq.Context, sock: zmq.Socket, secret_key: str | Path, allow: dict[int, bytes],
                 conns: ConnectionGuard):  # fmt: skip
        public, secret = load_secret(secret_key)
        self.public_key = public
        self.keys = dict(allow)
        self.ids_by_key = {k.decode("ascii"): a for a, k in allow.items()}
        self.conns = conns
        self.auth = ThreadAuthenticator(ctx, log=logging.getLogger("swarmcover.sim.zap"))
        self.auth.start()
        self.auth.configure_curve_callback(ZAP_DOMAIN, credentials_provider=self)
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
        sock.zap_domain = ZAP_DOMAIN.encode()

    # called by the ZAP thread
    def callback(self, domain: str, key: bytes) -> bool:
        what = key.decode("ascii", "replace")
        if what not in self.ids_by_key:
            self.conns.note(
                "auth_denied", {"key": what}, "CURVE client with an unknown key refused: %s", what
            )
            return False
        return self.conns.admit_key(what)

    def agent_for(self, user_id: str | None) -> int | None:
        """The agent id the authenticated key ``user_id`` belongs to (None: not ours)."""
        return None if user_id is None else self.ids_by_key.get(user_id)

    def close(self) -> None:
        self.auth.stop()
