// One app-like workload through a node client library, printed as a transcript: one
// normalised line `step: <canonical JSON>` per step, the same lines as workload.py prints.
// tests/compat_libraries.rs runs it against a standalone redis-server and against meridian and
// compares the two transcripts line by line. Every wait is bounded; the script exits non-zero if
// a step fails.
//
// Usage: node workload.mjs HOST PORT LIBRARY-MODE PREFIX
//   LIBRARY-MODE: ioredis-resp2, ioredis-resp3, node-redis-resp2 or node-redis-resp3
//   PREFIX: start of every key and channel name (the same for both servers).
// The workload is written once (`run`); `ioredisApi` and `nodeRedisApi` say how each library
// spells each step, in its own API.

import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { createClient, defineScript, WatchError, MultiErrorReply } from "redis";

const TIMEOUT_MS = 30_000; // per command and connect: a hang guard, not a speed limit
const BLOCK_S = 8; // a blocking pop may wait this long; a second connection wakes it much earlier
const PIPELINE_KEYS = 250; // x (SET, INCR, GET, DEL) = 1,000 commands in one pipeline
const LUA = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Canonical JSON: object keys sorted, Maps as objects (as Python's json.dumps(sort_keys)). */
function canon(v) {
  if (v === undefined || v === null) return "null";
  if (Buffer.isBuffer(v)) return JSON.stringify(v.toString());
  if (v instanceof Map) v = Object.fromEntries(v);
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  if (typeof v === "object") {
    const keys = Object.keys(v).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canon(v[k])).join(",") + "}";
  }
  return JSON.stringify(v);
}

function emit(step, value) {
  process.stdout.write(`${step}: ${canon(value)}\n`);
}

// The normalisers below accept only the shape the library gives for the connection's protocol
// against Redis itself (each library's `shapes` say which); any other shape becomes an
// `unexpected` marker, so that a reply of the wrong RESP type shows as a difference instead of
// being normalised away.

const unexpected = (what, reply) => ({ "unexpected reply shape": what, got: canon(reply) });
const isMap = (v) => v instanceof Map || (v !== null && typeof v === "object" && !Array.isArray(v));

/** A score or double as the shortest decimal text (3 -> "3", 3.5 -> "3.5"). */
function num(x, type) {
  return typeof x === type ? String(Number(x)) : unexpected(type, x);
}

/** A map reply as a plain object: a map (object or Map) if `map`, else a flat [k, v, ...]. */
function pairs(reply, map) {
  if (map)
    return isMap(reply)
      ? Object.fromEntries(reply instanceof Map ? reply : Object.entries(reply))
      : unexpected("map", reply);
  if (!Array.isArray(reply)) return unexpected("flat array", reply);
  const out = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[reply[i]] = reply[i + 1];
  return out;
}

/** Stream entries as [id, {field: value}]: [id, [f, v, ...]] pairs (`arrays`), else
 * {id, message} objects. */
function entries(list, arrays) {
  if (!Array.isArray(list)) return unexpected("stream entries", list);
  return list.map((e) => {
    if (arrays)
      return Array.isArray(e) ? [e[0], pairs(e[1], false)] : unexpected("[id, fields]", e);
    return isMap(e) ? [e.id, pairs(e.message, true)] : unexpected("{id, message}", e);
  });
}

/** XREAD's reply as {stream: entries}, from `shape`: "map" ({stream: entries}), "pairs"
 * ([[stream, entries]]) or "objects" ([{name, messages}]). */
function xreadResult(reply, shape, arrays) {
  const out = {};
  if (shape === "map") {
    if (!isMap(reply)) return unexpected("map", reply);
    for (const [stream, items] of Object.entries(pairs(reply, true)))
      out[stream] = entries(items, arrays);
  } else {
    if (!Array.isArray(reply)) return unexpected("array", reply);
    for (const s of reply) {
      if (shape === "pairs" && Array.isArray(s)) out[s[0]] = entries(s[1], arrays);
      else if (shape === "objects" && isMap(s)) out[s.name] = entries(s.messages, arrays);
      else return unexpected(shape, reply);
    }
  }
  return out;
}

/** The error reply's text as the server sent it. */
const errorText = (e) => (e && e.message) || String(e);

// ---------------------------------------------------------------------------------------------
// ioredis

const ioredisApi = {
  /** How ioredis shows replies whose shape depends on the protocol (replyMapping "resp3"). */
  shapes: (protocol) => ({
    doubles: protocol === 3 ? "number" : "string",
    nestedScores: protocol === 3,
    entryArrays: true,
    xread: protocol === 3 ? "map" : "pairs",
  }),
  async connect(host, port, protocol, name) {
    const client = new Redis({
      host,
      port,
      protocol,
      replyMapping: protocol === 3 ? "resp3" : undefined,
      connectionName: name,
      connectTimeout: TIMEOUT_MS,
      commandTimeout: TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null, // a lost connection fails the run instead of retrying
      lazyConnect: true,
    });
    await client.connect();
    return client;
  },
  close: (c) => c.quit(),
  call: (c, args) => c.call(...args),
  ping: (c) => c.ping(),
  getName: (c) => c.client("GETNAME"),
  set: (c, k, v) => c.set(k, v),
  get: (c, k) => c.get(k),
  incr: (c, k) => c.incr(k),
  incrBy: (c, k, n) => c.incrby(k, n),
  decr: (c, k) => c.decr(k),
  append: (c, k, v) => c.append(k, v),
  getExSeconds: (c, k, s) => c.getex(k, "EX", s),
  getExPersist: (c, k) => c.getex(k, "PERSIST"),
  mset: (c, obj) => c.mset(obj),
  mget: (c, keys) => c.mget(keys),
  hset: (c, k, obj) => c.hset(k, obj),
  hget: (c, k, f) => c.hget(k, f),
  hincrby: (c, k, f, n) => c.hincrby(k, f, n),
  hgetall: (c, k) => c.hgetall(k),
  hmget: (c, k, fs) => c.hmget(k, ...fs),
  hdel: (c, k, f) => c.hdel(k, f),
  hlen: (c, k) => c.hlen(k),
  hexists: (c, k, f) => c.hexists(k, f),
  hkeys: (c, k) => c.hkeys(k),
  rpush: (c, k, ...vs) => c.rpush(k, ...vs),
  lpush: (c, k, ...vs) => c.lpush(k, ...vs),
  lrange: (c, k, a, b) => c.lrange(k, a, b),
  lpop: (c, k) => c.lpop(k),
  rpop: (c, k) => c.rpop(k),
  llen: (c, k) => c.llen(k),
  lindex: (c, k, i) => c.lindex(k, i),
  sadd: (c, k, ...vs) => c.sadd(k, ...vs),
  smembers: (c, k) => c.smembers(k),
  sismember: (c, k, v) => c.sismember(k, v),
  srem: (c, k, v) => c.srem(k, v),
  scard: (c, k) => c.scard(k),
  zadd: (c, k, scored) => c.zadd(k, ...scored.flatMap(([m, s]) => [s, m])),
  async zrangeWithScores(c, k, shapes) {
    const reply = await c.zrange(k, 0, -1, "WITHSCORES");
    if (shapes.nestedScores) {
      // RESP3 mapping: [[member, score], ...]
      return reply.every(Array.isArray) ? reply : [unexpected("[[member, score]]", reply)];
    }
    if (!reply.every((v) => typeof v === "string")) return [unexpected("flat array", reply)];
    const out = [];
    for (let i = 0; i < reply.length; i += 2) out.push([reply[i], reply[i + 1]]);
    return out;
  },
  zscore: (c, k, m) => c.zscore(k, m),
  zincrby: (c, k, n, m) => c.zincrby(k, n, m),
  zrank: (c, k, m) => c.zrank(k, m),
  zcard: (c, k) => c.zcard(k),
  zrangebyscore: (c, k, a, b) => c.zrangebyscore(k, a, b),
  xadd: (c, k, id, obj) => c.xadd(k, id, ...Object.entries(obj).flat()),
  xlen: (c, k) => c.xlen(k),
  xrange: (c, k) => c.xrange(k, "-", "+"),
  xreadAfter: (c, k, id, count) => c.xread("COUNT", count, "STREAMS", k, id),
  expire: (c, k, s) => c.expire(k, s),
  ttl: (c, k) => c.ttl(k),
  persist: (c, k) => c.persist(k),
  pexpire: (c, k, ms) => c.pexpire(k, ms),
  exists: (c, k) => c.exists(k),
  del: (c, keys) => c.del(...keys),
  publish: (c, ch, msg) => c.publish(ch, msg),
  blpop: (c, k, s) => c.blpop(k, s),
  async pipeline(c, build) {
    const p = c.pipeline();
    build({
      set: (k, v) => p.set(k, v),
      incr: (k) => p.incr(k),
      get: (k) => p.get(k),
      del: (k) => p.del(k),
      lpush: (k, v) => p.lpush(k, v),
    });
    return (await p.exec()).map(([err, value]) => (err ? `error: ${errorText(err)}` : value));
  },
  /** MULTI ... EXEC; replies with `error: ...` for commands that failed; null if aborted. */
  async multi(c, build) {
    const m = c.multi();
    build({
      set: (k, v) => m.set(k, v),
      incr: (k) => m.incr(k),
      get: (k) => m.get(k),
      lpush: (k, v) => m.lpush(k, v),
    });
    const replies = await m.exec();
    if (replies === null) return null;
    return replies.map(([err, value]) => (err ? `error: ${errorText(err)}` : value));
  },
  watch: (c, k) => c.watch(k),
  scriptLoad: (c, src) => c.script("LOAD", src),
  eval: (c, src, keys, args) => c.eval(src, keys.length, ...keys, ...args),
  evalsha: (c, sha, keys, args) => c.evalsha(sha, keys.length, ...keys, ...args),
  async scriptObject(c, key, arg) {
    if (!c.workloadLua) c.defineCommand("workloadLua", { numberOfKeys: 1, lua: LUA });
    return c.workloadLua(key, arg);
  },
  /** Subscribes; resolves once confirmed, with a function waiting for `n` messages. */
  async subscribe(c, channels) {
    const received = [];
    let wake = () => {};
    c.on("message", (channel, message) => {
      received.push([channel, message]);
      wake();
    });
    await c.subscribe(...channels);
    return {
      confirmed: channels,
      async messages(n, deadline) {
        while (received.length < n && Date.now() < deadline) {
          await Promise.race([new Promise((r) => (wake = r)), sleep(100)]);
        }
        return received;
      },
      unsubscribe: () => c.unsubscribe(),
    };
  },
  async scanKeys(c, pattern) {
    const found = new Set();
    await new Promise((resolve, reject) => {
      const stream = c.scanStream({ match: pattern, count: 100 });
      stream.on("data", (keys) => keys.forEach((k) => found.add(k)));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    return [...found].sort();
  },
};

// ---------------------------------------------------------------------------------------------
// node-redis (the `redis` package)

const nodeRedisScripts = {
  workloadLua: defineScript({
    SCRIPT: LUA,
    NUMBER_OF_KEYS: 1,
    parseCommand(parser, key, arg) {
      parser.pushKey(key);
      parser.push(arg);
    },
    transformReply: (reply) => reply,
  }),
};

const nodeRedisApi = {
  /** How node-redis shows replies whose shape depends on the protocol (its default mapping). */
  shapes: () => ({ doubles: "number", nestedScores: false, entryArrays: false, xread: "objects" }),
  async connect(host, port, protocol, name) {
    const client = createClient({
      socket: { host, port, connectTimeout: TIMEOUT_MS, reconnectStrategy: false },
      RESP: protocol,
      name,
      commandOptions: { timeout: TIMEOUT_MS },
      scripts: nodeRedisScripts,
    });
    client.on("error", (err) => {
      console.error(`node-redis ${name}: ${err}`);
    });
    await client.connect();
    return client;
  },
  close: (c) => c.quit(),
  call: (c, args) => c.sendCommand(args.map(String)),
  ping: (c) => c.ping(),
  getName: (c) => c.clientGetName(),
  set: (c, k, v) => c.set(k, String(v)),
  get: (c, k) => c.get(k),
  incr: (c, k) => c.incr(k),
  incrBy: (c, k, n) => c.incrBy(k, n),
  decr: (c, k) => c.decr(k),
  append: (c, k, v) => c.append(k, v),
  getExSeconds: (c, k, s) => c.getEx(k, { type: "EX", value: s }),
  getExPersist: (c, k) => c.getEx(k, { type: "PERSIST" }),
  mset: (c, obj) => c.mSet(obj),
  mget: (c, keys) => c.mGet(keys),
  hset: (c, k, obj) => c.hSet(k, obj),
  hget: (c, k, f) => c.hGet(k, f),
  hincrby: (c, k, f, n) => c.hIncrBy(k, f, n),
  hgetall: (c, k) => c.hGetAll(k),
  hmget: (c, k, fs) => c.hmGet(k, fs),
  hdel: (c, k, f) => c.hDel(k, f),
  hlen: (c, k) => c.hLen(k),
  hexists: (c, k, f) => c.hExists(k, f),
  hkeys: (c, k) => c.hKeys(k),
  rpush: (c, k, ...vs) => c.rPush(k, vs),
  lpush: (c, k, ...vs) => c.lPush(k, vs),
  lrange: (c, k, a, b) => c.lRange(k, a, b),
  lpop: (c, k) => c.lPop(k),
  rpop: (c, k) => c.rPop(k),
  llen: (c, k) => c.lLen(k),
  lindex: (c, k, i) => c.lIndex(k, i),
  sadd: (c, k, ...vs) => c.sAdd(k, vs),
  smembers: (c, k) => c.sMembers(k),
  sismember: (c, k, v) => c.sIsMember(k, v),
  srem: (c, k, v) => c.sRem(k, v),
  scard: (c, k) => c.sCard(k),
  zadd: (c, k, scored) =>
    c.zAdd(
      k,
      scored.map(([value, score]) => ({ score, value })),
    ),
  async zrangeWithScores(c, k) {
    const reply = await c.zRangeWithScores(k, 0, -1);
    return reply.map((e) => (isMap(e) ? [e.value, e.score] : unexpected("{value, score}", e)));
  },
  zscore: (c, k, m) => c.zScore(k, m),
  zincrby: (c, k, n, m) => c.zIncrBy(k, n, m),
  zrank: (c, k, m) => c.zRank(k, m),
  zcard: (c, k) => c.zCard(k),
  zrangebyscore: (c, k, a, b) => c.zRangeByScore(k, a, b),
  xadd: (c, k, id, obj) => c.xAdd(k, id, obj),
  xlen: (c, k) => c.xLen(k),
  xrange: (c, k) => c.xRange(k, "-", "+"),
  xreadAfter: (c, k, id, count) => c.xRead({ key: k, id }, { COUNT: count }),
  expire: (c, k, s) => c.expire(k, s),
  ttl: (c, k) => c.ttl(k),
  persist: (c, k) => c.persist(k),
  pexpire: (c, k, ms) => c.pExpire(k, ms),
  exists: (c, k) => c.exists(k),
  del: (c, keys) => c.del(keys),
  publish: (c, ch, msg) => c.publish(ch, msg),
  async blpop(c, k, s) {
    const reply = await c.blPop(k, s);
    return reply === null ? null : [reply.key, reply.element];
  },
  async pipeline(c, build) {
    const p = c.multi();
    build({
      set: (k, v) => p.set(k, String(v)),
      incr: (k) => p.incr(k),
      get: (k) => p.get(k),
      del: (k) => p.del(k),
      lpush: (k, v) => p.lPush(k, v),
    });
    const replies = await p.execAsPipeline();
    return replies.map((v) => (v instanceof Error ? `error: ${errorText(v)}` : v));
  },
  async multi(c, build) {
    const m = c.multi();
    build({
      set: (k, v) => m.set(k, String(v)),
      incr: (k) => m.incr(k),
      get: (k) => m.get(k),
      lpush: (k, v) => m.lPush(k, v),
    });
    try {
      return await m.exec();
    } catch (err) {
      if (err instanceof WatchError) return null;
      if (err instanceof MultiErrorReply) {
        return err.replies.map((v) => (v instanceof Error ? `error: ${errorText(v)}` : v));
      }
      throw err;
    }
  },
  watch: (c, k) => c.watch(k),
  scriptLoad: (c, src) => c.scriptLoad(src),
  eval: (c, src, keys, args) => c.eval(src, { keys, arguments: args }),
  evalsha: (c, sha, keys, args) => c.evalSha(sha, { keys, arguments: args }),
  scriptObject: (c, key, arg) => c.workloadLua(key, arg),
  async subscribe(c, channels) {
    const received = [];
    let wake = () => {};
    await c.subscribe(channels, (message, channel) => {
      received.push([channel, message]);
      wake();
    });
    return {
      confirmed: channels,
      async messages(n, deadline) {
        while (received.length < n && Date.now() < deadline) {
          await Promise.race([new Promise((r) => (wake = r)), sleep(100)]);
        }
        return received;
      },
      unsubscribe: () => c.unsubscribe(),
    };
  },
  async scanKeys(c, pattern) {
    const found = new Set();
    for await (const keys of c.scanIterator({ MATCH: pattern, COUNT: 100 })) {
      for (const k of [].concat(keys)) found.add(k);
    }
    return [...found].sort();
  },
};

// ---------------------------------------------------------------------------------------------
// The workload, once for both libraries.

async function run(api, host, port, protocol, prefix) {
  const clients = [];
  const connect = async (role) => {
    const c = await api.connect(host, port, protocol, `${prefix}-${role}`);
    clients.push(c);
    return c;
  };
  const k = (name) => `${prefix}:${name}`;
  const r = await connect("main");
  const other = await connect("other");

  // connect: the library sent HELLO (RESP3) / CLIENT SETNAME and CLIENT SETINFO.
  const shapes = api.shapes(protocol);
  const hello = pairs(await api.call(r, ["HELLO", protocol]), protocol === 3);
  delete hello.id;
  emit("connect", { ping: await api.ping(r), name: await api.getName(r), hello });

  // strings over many slots
  const sets = [];
  for (let i = 0; i < 20; i++) sets.push(await api.set(r, k(`str:${i}`), `v${i}`));
  emit("strings.set", sets);
  const gets = [];
  for (let i = 0; i < 20; i++) gets.push(await api.get(r, k(`str:${i}`)));
  gets.push(await api.get(r, k("str:missing")));
  emit("strings.get", gets);
  emit("strings.incr", [
    await api.incr(r, k("counter")),
    await api.incr(r, k("counter")),
    await api.incrBy(r, k("counter"), 10),
    await api.decr(r, k("counter")),
  ]);
  emit("strings.append", [await api.append(r, k("str:0"), "-tail"), await api.get(r, k("str:0"))]);
  {
    const got = await api.getExSeconds(r, k("str:1"), 100);
    const ttl = await api.ttl(r, k("str:1"));
    const persisted = await api.getExPersist(r, k("str:1"));
    emit("strings.getex", [got, ttl > 0 && ttl <= 100, persisted, await api.ttl(r, k("str:1"))]);
  }
  {
    const mset = {};
    for (let i = 0; i < 20; i++) mset[k(`m:${i}`)] = `m${i}`;
    emit("strings.mset", [
      await api.mset(r, mset),
      await api.mget(r, [...Object.keys(mset), k("m:missing")]),
    ]);
  }

  // hash
  const h = k("hash");
  emit("hash", [
    await api.hset(r, h, { f1: "v1", f2: "v2", f3: "v3" }),
    await api.hget(r, h, "f1"),
    await api.hincrby(r, h, "n", 5),
    pairs(await api.hgetall(r, h), true),
    await api.hmget(r, h, ["f1", "f2", "nofield"]),
    await api.hdel(r, h, "f2"),
    await api.hlen(r, h),
    Number(await api.hexists(r, h, "f2")),
    (await api.hkeys(r, h)).sort(),
  ]);

  // list
  const lst = k("list");
  emit("list", [
    await api.rpush(r, lst, "a", "b", "c"),
    await api.lpush(r, lst, "z"),
    await api.lrange(r, lst, 0, -1),
    await api.lpop(r, lst),
    await api.rpop(r, lst),
    await api.llen(r, lst),
    await api.lindex(r, lst, 1),
  ]);

  // set
  const s = k("set");
  emit("set", [
    await api.sadd(r, s, "a", "b", "c", "d"),
    [...(await api.smembers(r, s))].sort(),
    Number(await api.sismember(r, s, "a")),
    Number(await api.sismember(r, s, "x")),
    await api.srem(r, s, "d"),
    await api.scard(r, s),
  ]);

  // sorted set
  const z = k("zset");
  emit("zset", [
    await api.zadd(r, z, [
      ["a", 1],
      ["b", 2],
      ["c", 3.5],
    ]),
    (await api.zrangeWithScores(r, z, shapes)).map((e) =>
      Array.isArray(e) ? [e[0], num(e[1], shapes.doubles)] : e,
    ),
    num(await api.zscore(r, z, "c"), shapes.doubles),
    num(await api.zincrby(r, z, 2, "a"), shapes.doubles),
    await api.zrank(r, z, "a"),
    await api.zcard(r, z),
    await api.zrangebyscore(r, z, 2, 3),
  ]);

  // stream
  const x = k("stream");
  const ids = [
    await api.xadd(r, x, "1-1", { f: "a" }),
    await api.xadd(r, x, "1-2", { f: "b", g: "2" }),
    await api.xadd(r, x, "2-0", { f: "c" }),
  ];
  emit("stream", [
    ids,
    await api.xlen(r, x),
    entries(await api.xrange(r, x), shapes.entryArrays),
    xreadResult(await api.xreadAfter(r, x, "1-1", 10), shapes.xread, shapes.entryArrays),
  ]);

  // expiry
  {
    const e = k("expiring");
    await api.set(r, e, "v");
    const expire = Number(await api.expire(r, e, 100));
    const ttl = await api.ttl(r, e);
    const persist = Number(await api.persist(r, e));
    const ttlAfter = await api.ttl(r, e);
    const short = k("short");
    await api.set(r, short, "v");
    const pexpire = Number(await api.pexpire(r, short, 50));
    await sleep(300);
    emit("expiry", [
      expire,
      ttl > 0 && ttl <= 100,
      persist,
      ttlAfter,
      await api.ttl(r, k("nokey")),
      pexpire,
      await api.get(r, short),
      await api.exists(r, short),
    ]);
  }

  // a non-transactional pipeline of 1,000 commands over many slots
  {
    const expected = [];
    const replies = await api.pipeline(r, (p) => {
      for (let i = 0; i < PIPELINE_KEYS; i++) {
        const key = k(`pipe:${i}`);
        p.set(key, i);
        p.incr(key);
        p.get(key);
        p.del(key);
        expected.push("OK", i + 1, String(i + 1), 1);
      }
    });
    const unexpected = [];
    replies.forEach((got, i) => {
      if (got !== expected[i] && unexpected.length < 5) unexpected.push([i, got]);
    });
    emit("pipeline", { replies: replies.length, unexpected });
  }

  // a transaction on keys sharing a hash tag
  const a = k("{tx}:a");
  const b = k("{tx}:b");
  emit(
    "transaction",
    await api.multi(r, (m) => {
      m.set(a, 1);
      m.incr(a);
      m.set(b, "x");
      m.get(b);
      m.lpush(k("{tx}:list"), "q");
    }),
  );

  // MULTI/EXEC where a queued command fails at EXEC
  {
    const c = k("{tx}:c");
    emit(
      "transaction.exec_error",
      await api.multi(r, (m) => {
        m.set(c, "x");
        m.incr(c);
        m.get(c);
      }),
    );
  }

  // WATCH, then a conflicting write from a second connection aborts EXEC; a retry commits
  {
    await api.watch(r, a);
    let seen = await api.get(r, a);
    await api.set(other, a, "100");
    const conflict = await api.multi(r, (m) => m.set(a, Number(seen) + 1));
    const afterConflict = await api.get(r, a);
    await api.watch(r, a);
    seen = await api.get(r, a);
    const retry = await api.multi(r, (m) => m.set(a, Number(seen) + 1));
    emit("watch", {
      conflict: conflict === null ? "aborted" : conflict,
      after_conflict: afterConflict,
      retry: retry === null ? "aborted" : retry,
      final: await api.get(r, a),
    });
  }

  // Lua: EVAL with keys, SCRIPT LOAD + EVALSHA, an unknown SHA, the library's script object
  {
    const lk = k("lua");
    const sha = await api.scriptLoad(r, LUA);
    let noscript;
    try {
      await api.evalsha(r, "0".repeat(40), [lk], ["x"]);
      noscript = "no error";
    } catch (err) {
      noscript = errorText(err);
    }
    emit("lua", [
      await api.eval(r, LUA, [lk], ["eval"]),
      sha,
      await api.evalsha(r, sha, [lk], ["evalsha"]),
      noscript,
      await api.scriptObject(r, lk, "object"),
    ]);
  }

  // a blocking pop that a second connection wakes
  {
    const bl = k("blocking");
    const popper = await connect("popper");
    let settled = false;
    const popped = api.blpop(popper, bl, BLOCK_S).finally(() => (settled = true));
    await sleep(300);
    const blocked = !settled;
    const pushed = await api.rpush(other, bl, "wake");
    const got = await popped;
    emit("blocking", { blocked, pushed, popped: got ?? [] });
  }

  // pub/sub: 3 channels, published from another connection (PUBLISH counts not compared)
  {
    const channels = [0, 1, 2].map((i) => k(`chan:${i}`));
    const sub = await connect("subscriber");
    const subscription = await api.subscribe(sub, channels);
    for (let i = 0; i < channels.length; i++) {
      await api.publish(other, channels[i], `message ${i}`);
    }
    const received = await subscription.messages(3, Date.now() + TIMEOUT_MS);
    if (received.length < 3) throw new Error(`only ${received.length} messages arrived`);
    await subscription.unsubscribe();
    emit("pubsub", {
      subscribed: [...subscription.confirmed].sort(),
      messages: [...received].sort((p, q) => (p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : 0)),
    });
  }

  // SCAN with MATCH over every key of this run
  const keys = await api.scanKeys(r, `${prefix}:*`);
  emit("scan", keys);

  // error replies
  {
    const errors = [];
    for (const command of [["LPUSH", k("str:2"), "x"], ["MERIDIANNOSUCH", "a", "b"], ["GET"]]) {
      try {
        await api.call(r, command);
        errors.push("no error");
      } catch (err) {
        errors.push(errorText(err));
      }
    }
    emit("errors", errors);
  }

  // DEL of everything, one command over every slot
  emit("delete", {
    deleted: await api.del(r, keys),
    left: await api.scanKeys(r, `${prefix}:*`),
  });

  for (const c of clients) await api.close(c);
}

const [host, port, mode, prefix] = process.argv.slice(2);
const match = /^(ioredis|node-redis)-resp([23])$/.exec(mode ?? "");
if (!match || !prefix) {
  console.error("usage: node workload.mjs HOST PORT (ioredis|node-redis)-resp(2|3) PREFIX");
  process.exit(2);
}
const api = match[1] === "ioredis" ? ioredisApi : nodeRedisApi;
const pkg = match[1] === "ioredis" ? "ioredis" : "redis";
const manifest = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
console.error(`library ${match[1]} ${JSON.parse(readFileSync(manifest, "utf8")).version}`);
try {
  await run(api, host, Number(port), Number(match[2]), prefix);
  process.stdout.write("done\n");
  process.exit(0);
} catch (err) {
  console.error(`workload failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}
