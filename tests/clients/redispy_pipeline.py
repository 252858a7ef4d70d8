"""redis-py against meridian: a big pipeline written before any reply is read, and
transactions that start with keyless commands. Prints one line per check; exits non-zero on
the first wrong reply. Usage: redispy_pipeline.py HOST PORT"""

import sys

import redis


def big_pipeline(r: redis.Redis, pairs: int, size: int) -> None:
    value = b"v" * size
    pipe = r.pipeline(transaction=False)
    for i in range(pairs):
        key = f"bigpipe:{size}:{i}"
        pipe.set(key, value)
        pipe.get(key)
    replies = pipe.execute()
    assert len(replies) == 2 * pairs, len(replies)
    for i in range(pairs):
        assert replies[2 * i] is True, (i, replies[2 * i])
        assert replies[2 * i + 1] == value, (i, replies[2 * i + 1][:20])
    print(f"pipeline {pairs} x (SET+GET {size} B): ok")


def keyless_first_transactions(r: redis.Redis, rounds: int) -> None:
    for i in range(rounds):
        key = f"txkey:{i}"
        pipe = r.pipeline()  # transaction=True: MULTI ... EXEC
        pipe.time()
        pipe.incr(key)
        pipe.expire(key, 100)
        seconds, _micros = pipe.execute()[0]
        assert seconds > 0
    print(f"transactions TIME+INCR+EXPIRE x {rounds}: ok")


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    for protocol in (2, 3):
        r = redis.Redis(host=host, port=port, protocol=protocol, socket_timeout=60)
        big_pipeline(r, 10_000, 1024)
        big_pipeline(r, 2_200, 20 * 1024)
        big_pipeline(r, 25_000, 200)
        keyless_first_transactions(r, 30)
        r.close()
    print("done")


if __name__ == "__main__":
    main()
