"""Socket.IO messages that cannot be decoded: an error ack or a closed socket, never a traceback.

python-socketio decodes each message's JSON before any handler runs. A message nested deeper than
Python's recursion limit (10 KB of `[` is enough) raised `RecursionError`, and broken JSON a
`ValueError`, out of the library's message handler: engine.io logged each one at ERROR with a
traceback, anyone could fill the log that way, signed in or not, and the sender got no answer.

Now the packet's decoding raises `Undecodable`, which carries what was read before the JSON (its
type, namespace and ack id), and the server answers it: a signed-in sender's event that asked for
an ack gets the contract's error ack (`invalid`); anything else closes that socket. Either way
one warning line is logged, without the message.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from socketio import packet

from server.contract.errors import AppError

log = logging.getLogger("telerounds.signaling")


class Undecodable(ValueError):
    """A Socket.IO message whose payload could not be decoded."""

    def __init__(self, packet_type: Any, namespace: str | None, ack_id: int | None, reason: str) -> None:
        super().__init__(reason)
        self.packet_type, self.namespace, self.ack_id, self.reason = packet_type, namespace, ack_id, reason


class CheckedPacket(packet.Packet):  # type: ignore[misc]
    """The default Socket.IO packet, whose decoding fails with `Undecodable` only."""

    def decode(self, encoded_packet: Any) -> int:
        try:
            count: int = super().decode(encoded_packet) or 0
            return count
        except RecursionError:
            reason = "the message is nested too deeply"
        except ValueError:  # broken JSON, a bad ack id or attachment count
            reason = "the message is not a valid Socket.IO packet"
        raise Undecodable(getattr(self, "packet_type", None), self.namespace, self.id, reason)


class Server(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, answering undecodable messages (see the module's notes)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(serializer=CheckedPacket, **kwargs)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        # The library's own dispatch (a private method): the packet is decoded in there.
        try:
            await super()._handle_eio_message(eio_sid, data)
        except Undecodable as bad:
            await self._undecodable(eio_sid, bad)

    async def _undecodable(self, eio_sid: str, bad: Undecodable) -> None:
        namespace = bad.namespace or "/"
        signed_in = self.manager.sid_from_eio_sid(eio_sid, namespace) is not None
        answerable = bad.packet_type in (packet.EVENT, packet.BINARY_EVENT) and bad.ack_id is not None
        log.warning("undecodable Socket.IO message: %s", bad.reason, extra={"namespace": namespace[:64]})
        if signed_in and answerable:
            ack = AppError("invalid", bad.reason).as_ack()
            await self._send_packet(
                eio_sid, self.packet_class(packet.ACK, namespace=namespace, data=[ack], id=bad.ack_id)
            )
        else:
            await self.eio.disconnect(eio_sid)
