"""Call rooms in Redis: who is in a consult's (or a round's) call, from which socket.

A room is named `consult:<id>` or `round:<id>`. Each joined connection is a peer with its own
`peer_id`. A peer whose socket drops is kept, marked dropped, for the reconnect grace period;
if the same user joins again in time they take the peer back (same peer_id, same role), else
the peer is removed and the others are told.

Keys:
- `room:<room>:peers` hash peer_id → JSON `{peer_id, user, role, sid, dropped_at}`.
- `room:<room>:quality` hash peer_id → JSON of the latest `rtc:stats` sample.
- `room:<room>:invited` set of user ids invited by a participant.
- `sid:<sid>:peers` set of `<room>|<peer_id>` a socket has joined (for disconnect).
- `rooms:dropped` sorted set of `<room>|<peer_id>` by when their grace period ends.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from server.contract.views import Person
from server.live import keys

MAX_PEERS = 6  # a mesh call: each peer sends to every other (a recorder peer takes no seat)

# Join atomically: take this user's peer (one seat per user: a dropped one is taken back, a live
# one on another socket is taken over), or add a new one while there is room. Returns [status,
# peer_json, replaced socket, other peers' json...]: status 'new', 'rejoined', 'replaced' (the
# user's live peer moved to this socket from the one named), 'same' (this socket already
# joined), 'full'. The others are read in the same step, so of two peers joining at once exactly
# one sees the other and offers: never both (glare), never neither.
_JOIN = """
local peers = redis.call('HGETALL', KEYS[1])
local function answer(status, encoded, own_id, replaced)
  local out = {status, encoded, replaced}
  for i = 1, #peers, 2 do
    if peers[i] ~= own_id then table.insert(out, peers[i + 1]) end
  end
  return out
end
for i = 1, #peers, 2 do
  local peer = cjson.decode(peers[i + 1])
  if peer['sid'] == ARGV[2] then return answer('same', peers[i + 1], peers[i], '') end
end
for i = 1, #peers, 2 do
  local peer = cjson.decode(peers[i + 1])
  if peer['user']['id'] == ARGV[1] then
    local dropped = peer['dropped_at'] ~= nil and peer['dropped_at'] ~= cjson.null
    local replaced = peer['sid']
    peer['sid'] = ARGV[2]
    peer['dropped_at'] = cjson.null
    local encoded = cjson.encode(peer)
    redis.call('HSET', KEYS[1], peer['peer_id'], encoded)
    redis.call('ZREM', KEYS[2], ARGV[5] .. '|' .. peer['peer_id'])
    redis.call('SADD', KEYS[3], ARGV[5] .. '|' .. peer['peer_id'])
    if dropped then return answer('rejoined', encoded, peers[i], '') end
    return answer('replaced', encoded, peers[i], replaced)
  end
end
local peer = cjson.decode(ARGV[3])
local seated = 0
for i = 1, #peers, 2 do
  if cjson.decode(peers[i + 1])['role'] ~= 'recorder' then seated = seated + 1 end
end
if peer['role'] ~= 'recorder' and seated >= tonumber(ARGV[4]) then return {'full', '', ''} end
redis.call('HSET', KEYS[1], peer['peer_id'], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[5] .. '|' .. peer['peer_id'])
return answer('new', ARGV[3], peer['peer_id'], '')
"""

# Remove a dropped peer whose grace period ended, unless it was taken back meanwhile.
_REMOVE_IF_DROPPED = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local peer = cjson.decode(raw)
if peer['dropped_at'] == nil or peer['dropped_at'] == cjson.null then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return raw
"""


@dataclass(frozen=True)
class Peer:
    peer_id: str
    user: Person  # who they are, as the call's other peers see them
    role: str
    sid: str
    dropped_at: float | None = None

    @staticmethod
    def decode(raw: str | bytes) -> Peer:
        data = json.loads(raw)
        return Peer(data["peer_id"], data["user"], data["role"], data["sid"], data.get("dropped_at"))

    def encode(self) -> str:
        return json.dumps(
            {
                "peer_id": self.peer_id,
                "user": self.user,
                "role": self.role,
                "sid": self.sid,
                "dropped_at": self.dropped_at,
            }
        )

    def public(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "user": self.user, "role": self.role}


class Joined(NamedTuple):
    """What `Rooms.join` did: its status, the caller's peer, the others already in the call,
    and the socket the user's peer moved from (status `replaced`)."""

    status: str
    peer: Peer | None
    others: list[Peer]
    replaced_sid: str | None


def decode_peers(records: Iterable[str | bytes]) -> list[Peer]:
    """Peers from their records (the values of a room's hash), by peer id."""
    return sorted((Peer.decode(record) for record in records), key=lambda p: p.peer_id)


class Rooms:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._join = redis.register_script(_JOIN)
        self._remove_if_dropped = redis.register_script(_REMOVE_IF_DROPPED)

    async def join(self, room: str, user: Person, role: str, sid: str) -> Joined:
        """Status `new`, `rejoined`, `replaced`, `same` or `full` (peer None); `others` are the
        peers already in the call at that instant. A user has one seat in a call: joining from
        a second socket moves their peer there (`replaced`, naming the socket it left)."""
        fresh = Peer(secrets.token_urlsafe(9), user, role, sid)
        status, raw, replaced, *others = await self._join(
            keys=[keys.room_peers(room), keys.ROOMS_DROPPED, keys.sid_peers(sid)],
            args=[user["id"], sid, fresh.encode(), MAX_PEERS, room],
        )
        status = status.decode() if isinstance(status, bytes) else str(status)
        if status == "full":
            return Joined(status, None, [], None)
        if replaced:
            # The old socket's list no longer names this peer: its leave or disconnect must not
            # take the seat from the new one.
            await self.forget_sid(str(replaced), room, Peer.decode(raw).peer_id)
        return Joined(status, Peer.decode(raw), decode_peers(others), str(replaced) or None)

    async def peers(self, room: str) -> list[Peer]:
        return decode_peers((await self.redis.hgetall(keys.room_peers(room))).values())

    async def peer(self, room: str, peer_id: str) -> Peer | None:
        raw = await self.redis.hget(keys.room_peers(room), peer_id)
        return Peer.decode(raw) if raw else None

    async def peer_of_sid(self, room: str, sid: str) -> Peer | None:
        for entry in await self.redis.smembers(keys.sid_peers(sid)):
            entry_room, _, peer_id = str(entry).rpartition("|")
            if entry_room == room:
                peer = await self.peer(room, peer_id)
                # Not when the peer moved to another socket of its user since.
                return peer if peer is not None and peer.sid == sid else None
        return None

    async def leave(self, room: str, peer_id: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.room_peers(room), peer_id)
            pipe.hdel(keys.room_quality(room), peer_id)
            pipe.zrem(keys.ROOMS_DROPPED, f"{room}|{peer_id}")
            removed, _, _ = await pipe.execute()
        await self.forget_links(room, peer_id)
        return bool(removed)

    async def forget_sid(self, sid: str, room: str, peer_id: str) -> None:
        await self.redis.srem(keys.sid_peers(sid), f"{room}|{peer_id}")

    async def drop_sid(self, sid: str, grace_s: float) -> list[tuple[str, Peer]]:
        """A socket is gone: mark its peers dropped until `now + grace_s`. Returns them."""
        entries = [str(e) for e in await self.redis.smembers(keys.sid_peers(sid))]
        await self.redis.delete(keys.sid_peers(sid))
        dropped: list[tuple[str, Peer]] = []
        moment = time.time()
        for entry in entries:
            room, _, peer_id = entry.rpartition("|")
            peer = await self.peer(room, peer_id)
            if peer is None or peer.sid != sid:
                continue  # already taken back by a new connection
            marked = Peer(peer.peer_id, peer.user, peer.role, peer.sid, moment)
            await self.redis.hset(keys.room_peers(room), peer_id, marked.encode())
            await self.redis.zadd(keys.ROOMS_DROPPED, {entry: moment + grace_s})
            dropped.append((room, marked))
        return dropped

    async def due_removals(self, now: float) -> list[tuple[str, Peer]]:
        """Dropped peers whose grace ended, each removed by exactly one caller."""
        removed = []
        for entry in [
            str(e) for e in await self.redis.zrangebyscore(keys.ROOMS_DROPPED, "-inf", now, start=0, num=100)
        ]:
            if await self.redis.zrem(keys.ROOMS_DROPPED, entry):
                room, _, peer_id = entry.rpartition("|")
                raw = await self._remove_if_dropped(
                    keys=[keys.room_peers(room), keys.room_quality(room)], args=[peer_id]
                )
                if raw:
                    removed.append((room, Peer.decode(raw)))
        return removed

    async def invite(self, room: str, user_id: str) -> None:
        await self.redis.sadd(keys.room_invited(room), user_id)

    async def uninvite(self, room: str, user_id: str) -> None:
        await self.redis.srem(keys.room_invited(room), user_id)

    async def invited(self, room: str, user_id: str) -> bool:
        return bool(await self.redis.sismember(keys.room_invited(room), user_id))

    async def report_quality(self, room: str, peer_id: str, sample: dict[str, Any]) -> None:
        await self.redis.hset(keys.room_quality(room), peer_id, json.dumps({**sample, "at": time.time()}))

    async def quality(self, room: str) -> dict[str, dict[str, Any]]:
        """Each peer's last figures; `audio_only_link: true` for a peer sending audio only to
        someone in the call because their link is weak."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.room_quality(room))
            pipe.hkeys(keys.room_links(room))
            pipe.hkeys(keys.room_peers(room))
            raw, links, peers = await pipe.execute()
        quality = {str(k): json.loads(v) for k, v in raw.items()}
        present = {str(p) for p in peers}
        for link in links:
            sender, _, receiver = str(link).partition("|")
            if sender in present and receiver in present:
                quality.setdefault(sender, {})["audio_only_link"] = True
        return quality

    async def set_link(self, room: str, sender: str, receiver: str, state: str) -> None:
        """The link from `sender` to `receiver` carries audio only (`audio_only`) or all again (`ok`)."""
        field = f"{sender}|{receiver}"
        if state == "audio_only":
            await self.redis.hset(keys.room_links(room), field, state)
        else:
            await self.redis.hdel(keys.room_links(room), field)

    async def forget_links(self, room: str, peer_id: str) -> None:
        """A peer left or made its connections anew: its links start over, carrying video."""
        mine = [f for f in await self.redis.hkeys(keys.room_links(room)) if peer_id in str(f).split("|")]
        if mine:
            await self.redis.hdel(keys.room_links(room), *mine)

    async def close(self, room: str) -> list[Peer]:
        """The call is over (consult ended): forget the room."""
        peers = await self.peers(room)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.room_peers(room), keys.room_quality(room), keys.room_links(room), keys.room_invited(room))
            for peer in peers:
                pipe.srem(keys.sid_peers(peer.sid), f"{room}|{peer.peer_id}")
                pipe.zrem(keys.ROOMS_DROPPED, f"{room}|{peer.peer_id}")
            await pipe.execute()
        return peers
