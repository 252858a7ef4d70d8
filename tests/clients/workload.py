"""One app-like workload through redis-py, printed as a transcript: one normalised line
`step: <canonical JSON>` per step. tests/compat_libraries.rs runs it against a standalone
redis-server and against meridian and compares the two transcripts line by line;
tests/clients/workload.mjs is the same workload for the node libraries and prints the same
lines. Every wait is bounded; the script exits non-zero if a step fails.

The workload is written once (`Workload.run`) for both redis-py clients: every call goes through
`aw`, which awaits what the asyncio client returns and passes the sync client's values through.

Usage: workload.py HOST PORT MODE PREFIX
  MODE: sync-resp2, sync-resp3, asyncio-resp2 or asyncio-resp3
  PREFIX: start of every key and channel name (the same for both servers)."""

import asyncio
import inspect
import json
import sys

import redis
import redis.asyncio

TIMEOUT = 30  # seconds: socket timeout of every connection (a hang guard, not a speed limit)
BLOCK = 8  # seconds a blocking pop may wait; a second connection wakes it much earlier
PIPELINE_KEYS = 250  # x (SET, INCR, GET, DEL) = 1,000 commands in one pipeline
LUA = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"


def emit(step, value):
    print(f"{step}: {json.dumps(value, sort_keys=True, separators=(',', ':'))}", flush=True)


async def aw(value):
    """The value, awaited when the async client returned an awaitable."""
    return (await value) if inspect.isawaitable(value) else value


def error_text(e):
    """The error reply as the server sent it: redis-py strips known codes (ERR, NOSCRIPT…)
    off the message and keeps them in status_code."""
    code = getattr(e, "status_code", None)
    return f"{code} {e}" if code else str(e)


def ok(reply):
    """redis-py turns +OK into True for some commands."""
    return "OK" if reply is True else reply


# The normalisers below accept only the shape redis-py gives for the connection's protocol
# against Redis itself; any other shape becomes an `unexpected` marker, so that a reply of the
# wrong RESP type shows as a difference instead of being normalised away.


def unexpected(what, reply):
    return {"unexpected reply shape": what, "got": repr(reply)}


def num(x):
    """A score or double (a float in both protocols) as the shortest decimal text
    (3.0 -> "3", 3.5 -> "3.5")."""
    if not isinstance(x, float):
        return unexpected("float", x)
    return str(int(x)) if x.is_integer() else repr(x)


def pairs(reply, protocol):
    """A map reply of a raw command (a dict in RESP3, a flat list in RESP2) as a dict."""
    if protocol == 3 and isinstance(reply, dict):
        return reply
    if protocol == 2 and isinstance(reply, list):
        return dict(zip(reply[0::2], reply[1::2]))
    return unexpected(f"RESP{protocol} map", reply)


def entries(reply):
    """Stream entries ((id, {field: value}) in both protocols) as [id, {field: value}]."""
    shaped = (isinstance(e, (tuple, list)) and len(e) == 2 and isinstance(e[1], dict) for e in reply)
    if not all(shaped):
        return unexpected("stream entries", reply)
    return [[entry_id, fields] for entry_id, fields in reply]


def xread_result(reply, protocol):
    """XREAD's reply as {stream: entries}: {stream: [entries]} in RESP3, [[stream, entries]]
    in RESP2."""
    if protocol == 3 and isinstance(reply, dict):
        return {stream: entries(items[0]) for stream, items in reply.items()}
    if protocol == 2 and isinstance(reply, list):
        return {stream: entries(items) for stream, items in reply}
    return unexpected(f"RESP{protocol} XREAD reply", reply)


def members(reply):
    """A set reply (a Python set in both protocols), sorted."""
    return sorted(reply) if isinstance(reply, set) else unexpected("set", reply)


class Workload:
    def __init__(self, host, port, mode, prefix):
        self.host, self.port, self.prefix = host, port, prefix
        self.is_async = mode.startswith("asyncio")
        self.protocol = 3 if mode.endswith("resp3") else 2
        self.lib = redis.asyncio if self.is_async else redis
        self.clients = []

    def connect(self, role):
        client = self.lib.Redis(
            host=self.host,
            port=self.port,
            protocol=self.protocol,
            decode_responses=True,
            client_name=f"{self.prefix}-{role}",
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
        )
        self.clients.append(client)
        return client

    def k(self, name):
        return f"{self.prefix}:{name}"

    def background(self, fn, *args):
        """Runs a call that blocks (BLPOP) while the script goes on: a thread for the sync
        client, a task for the asyncio one."""
        if self.is_async:
            return asyncio.ensure_future(fn(*args))
        return asyncio.ensure_future(asyncio.to_thread(fn, *args))

    async def scan_keys(self, r, pattern):
        if self.is_async:
            found = [key async for key in r.scan_iter(match=pattern, count=100)]
        else:
            found = list(r.scan_iter(match=pattern, count=100))
        return sorted(set(found))

    async def run(self):
        r = self.connect("main")
        other = self.connect("other")
        k = self.k

        # connect: the library sent HELLO (RESP3) / CLIENT SETNAME and CLIENT SETINFO.
        hello = pairs(await aw(r.execute_command("HELLO", self.protocol)), self.protocol)
        hello.pop("id", None)
        emit("connect", {
            "ping": "PONG" if await aw(r.ping()) is True else "no PONG",
            "name": await aw(r.client_getname()),
            "hello": hello,
        })

        # strings over many slots
        emit("strings.set", [ok(await aw(r.set(k(f"str:{i}"), f"v{i}"))) for i in range(20)])
        emit("strings.get", [await aw(r.get(k(f"str:{i}"))) for i in range(20)]
             + [await aw(r.get(k("str:missing")))])
        emit("strings.incr", [
            await aw(r.incr(k("counter"))),
            await aw(r.incr(k("counter"))),
            await aw(r.incrby(k("counter"), 10)),
            await aw(r.decr(k("counter"))),
        ])
        emit("strings.append", [
            await aw(r.append(k("str:0"), "-tail")),
            await aw(r.get(k("str:0"))),
        ])
        got = await aw(r.getex(k("str:1"), ex=100))
        ttl = await aw(r.ttl(k("str:1")))
        persisted = await aw(r.getex(k("str:1"), persist=True))
        emit("strings.getex", [got, 0 < ttl <= 100, persisted, await aw(r.ttl(k("str:1")))])
        mset = {k(f"m:{i}"): f"m{i}" for i in range(20)}
        emit("strings.mset", [
            ok(await aw(r.mset(mset))),
            await aw(r.mget(list(mset) + [k("m:missing")])),
        ])

        # hash
        h = k("hash")
        emit("hash", [
            await aw(r.hset(h, mapping={"f1": "v1", "f2": "v2", "f3": "v3"})),
            await aw(r.hget(h, "f1")),
            await aw(r.hincrby(h, "n", 5)),
            await aw(r.hgetall(h)),
            await aw(r.hmget(h, ["f1", "f2", "nofield"])),
            await aw(r.hdel(h, "f2")),
            await aw(r.hlen(h)),
            int(await aw(r.hexists(h, "f2"))),
            sorted(await aw(r.hkeys(h))),
        ])

        # list
        lst = k("list")
        emit("list", [
            await aw(r.rpush(lst, "a", "b", "c")),
            await aw(r.lpush(lst, "z")),
            await aw(r.lrange(lst, 0, -1)),
            await aw(r.lpop(lst)),
            await aw(r.rpop(lst)),
            await aw(r.llen(lst)),
            await aw(r.lindex(lst, 1)),
        ])

        # set
        s = k("set")
        emit("set", [
            await aw(r.sadd(s, "a", "b", "c", "d")),
            members(await aw(r.smembers(s))),
            int(await aw(r.sismember(s, "a"))),
            int(await aw(r.sismember(s, "x"))),
            await aw(r.srem(s, "d")),
            await aw(r.scard(s)),
        ])

        # sorted set
        z = k("zset")
        emit("zset", [
            await aw(r.zadd(z, {"a": 1, "b": 2, "c": 3.5})),
            [[m, num(sc)] for m, sc in await aw(r.zrange(z, 0, -1, withscores=True))],
            num(await aw(r.zscore(z, "c"))),
            num(await aw(r.zincrby(z, 2, "a"))),
            await aw(r.zrank(z, "a")),
            await aw(r.zcard(z)),
            await aw(r.zrangebyscore(z, 2, 3)),
        ])

        # stream
        x = k("stream")
        ids = [
            await aw(r.xadd(x, {"f": "a"}, id="1-1")),
            await aw(r.xadd(x, {"f": "b", "g": "2"}, id="1-2")),
            await aw(r.xadd(x, {"f": "c"}, id="2-0")),
        ]
        emit("stream", [
            ids,
            await aw(r.xlen(x)),
            entries(await aw(r.xrange(x, "-", "+"))),
            xread_result(await aw(r.xread({x: "1-1"}, count=10)), self.protocol),
        ])

        # expiry
        e = k("expiring")
        await aw(r.set(e, "v"))
        expire = int(await aw(r.expire(e, 100)))
        ttl = await aw(r.ttl(e))
        persist = int(await aw(r.persist(e)))
        ttl_after = await aw(r.ttl(e))
        short = k("short")
        await aw(r.set(short, "v"))
        pexpire = int(await aw(r.pexpire(short, 50)))
        await asyncio.sleep(0.3)
        emit("expiry", [
            expire, 0 < ttl <= 100, persist, ttl_after, await aw(r.ttl(k("nokey"))),
            pexpire, await aw(r.get(short)), await aw(r.exists(short)),
        ])

        # a non-transactional pipeline of 1,000 commands over many slots
        pipe = r.pipeline(transaction=False)
        expected = []
        for i in range(PIPELINE_KEYS):
            key = k(f"pipe:{i}")
            pipe.set(key, i)
            pipe.incr(key)
            pipe.get(key)
            pipe.delete(key)
            expected += ["OK", i + 1, str(i + 1), 1]
        replies = [ok(v) for v in await aw(pipe.execute())]
        emit("pipeline", {
            "replies": len(replies),
            "unexpected": [[i, got] for i, (got, want) in enumerate(zip(replies, expected))
                           if got != want][:5],
        })

        # a transaction on keys sharing a hash tag
        a, b, tl = k("{tx}:a"), k("{tx}:b"), k("{tx}:list")
        pipe = r.pipeline(transaction=True)
        pipe.set(a, 1).incr(a).set(b, "x").get(b).lpush(tl, "q")
        emit("transaction", [ok(v) for v in await aw(pipe.execute())])

        # MULTI/EXEC where a queued command fails at EXEC
        c = k("{tx}:c")
        pipe = r.pipeline(transaction=True)
        pipe.set(c, "x").incr(c).get(c)
        results = await aw(pipe.execute(raise_on_error=False))
        emit("transaction.exec_error", [
            f"error: {error_text(v)}" if isinstance(v, Exception) else ok(v) for v in results
        ])

        # WATCH, then a conflicting write from a second connection aborts EXEC; a retry commits
        pipe = r.pipeline(transaction=True)
        await aw(pipe.watch(a))
        seen = await aw(pipe.get(a))
        await aw(other.set(a, 100))
        pipe.multi()
        pipe.set(a, int(seen) + 1)
        try:
            conflict = [ok(v) for v in await aw(pipe.execute())]
        except redis.WatchError:
            conflict = "aborted"
        after_conflict = await aw(r.get(a))
        await aw(pipe.watch(a))
        seen = await aw(pipe.get(a))
        pipe.multi()
        pipe.set(a, int(seen) + 1)
        try:
            retry = [ok(v) for v in await aw(pipe.execute())]
        except redis.WatchError:
            retry = "aborted"
        await aw(pipe.reset())
        emit("watch", {
            "conflict": conflict,
            "after_conflict": after_conflict,
            "retry": retry,
            "final": await aw(r.get(a)),
        })

        # Lua: EVAL with keys, SCRIPT LOAD + EVALSHA, an unknown SHA, the library's script object
        lk = k("lua")
        sha = await aw(r.script_load(LUA))
        try:
            await aw(r.evalsha("0" * 40, 1, lk, "x"))
            noscript = "no error"
        except redis.ResponseError as err:
            noscript = error_text(err)
        script = r.register_script(LUA)
        emit("lua", [
            await aw(r.eval(LUA, 1, lk, "eval")),
            sha,
            await aw(r.evalsha(sha, 1, lk, "evalsha")),
            noscript,
            await aw(script(keys=[lk], args=["object"])),
        ])

        # a blocking pop that a second connection wakes
        bl = k("blocking")
        popper = self.connect("popper")
        popped = self.background(popper.blpop, [bl], BLOCK)
        await asyncio.sleep(0.3)
        blocked = not popped.done()
        pushed = await aw(other.rpush(bl, "wake"))
        got = await asyncio.wait_for(popped, BLOCK + 5)
        emit("blocking", {"blocked": blocked, "pushed": pushed, "popped": list(got or [])})

        # pub/sub: 3 channels, published from another connection (PUBLISH counts not compared)
        channels = [k(f"chan:{i}") for i in range(3)]
        sub = self.connect("subscriber")
        ps = sub.pubsub()
        await aw(ps.subscribe(*channels))
        confirmed = []
        while len(confirmed) < 3:
            msg = await aw(ps.get_message(timeout=TIMEOUT))
            if msg is None:
                raise RuntimeError(f"subscribe not confirmed, got {confirmed}")
            if msg["type"] == "subscribe":
                confirmed.append(msg["channel"])
        for i, ch in enumerate(channels):
            await aw(other.publish(ch, f"message {i}"))
        received = []
        while len(received) < 3:
            msg = await aw(ps.get_message(timeout=TIMEOUT))
            if msg is None:
                raise RuntimeError(f"only {len(received)} messages arrived: {received}")
            if msg["type"] == "message":
                received.append([msg["channel"], msg["data"]])
        await aw(ps.unsubscribe())
        await aw(ps.aclose() if self.is_async else ps.close())
        emit("pubsub", {"subscribed": sorted(confirmed), "messages": sorted(received)})

        # SCAN with MATCH over every key of this run
        keys = await self.scan_keys(r, f"{self.prefix}:*")
        emit("scan", keys)

        # error replies
        errors = []
        for command in (["LPUSH", k("str:2"), "x"], ["MERIDIANNOSUCH", "a", "b"], ["GET"]):
            try:
                await aw(r.execute_command(*command))
                errors.append("no error")
            except redis.ResponseError as err:
                errors.append(error_text(err))
        emit("errors", errors)

        # DEL of everything, one command over every slot
        emit("delete", {
            "deleted": await aw(r.delete(*keys)),
            "left": await self.scan_keys(r, f"{self.prefix}:*"),
        })

        for client in self.clients:
            await aw(client.aclose() if self.is_async else client.close())


def main():
    host, port, mode, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if mode not in ("sync-resp2", "sync-resp3", "asyncio-resp2", "asyncio-resp3"):
        sys.exit(f"unknown mode {mode}")
    print(f"library redis-py {redis.__version__}", file=sys.stderr, flush=True)
    asyncio.run(Workload(host, port, mode, prefix).run())
    print("done", flush=True)


if __name__ == "__main__":
    main()
