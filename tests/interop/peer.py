#!/usr/bin/env python3
"""peer.py - a Python service on the other side of an rsbus stream, for tests/test_interop.c.

Uses Debian's python3-redis (redis-py) only. Commands (REDIS is redis://127.0.0.1:PORT):

  peer.py REDIS publish TAG
      XADDs the entries of every layout (see entries()) and prints, for each, one manifest line
          E <kind> <stream> <stream-id> <hex name>:<hex value> ...
      so that the C side can check what rsbus hands its handlers byte for byte.
  peer.py REDIS check-rsbus STREAM N             events rsbus published with rsbus_publish (+ extra fields)
  peer.py REDIS check-eventsource STREAM N       events rsbus wrote in eventsource-py's layout
  peer.py REDIS check-watermill STREAM N         messages rsbus wrote in Watermill's redisstream layout
  peer.py REDIS check-dlq STREAM DLQ GROUP N     dead letters of foreign entries: every original field verbatim
      Each check prints "ID <stream-id>" per entry it accepted and "OK <n>"; on any mismatch it prints
      "FAIL <why>" and exits 1.

The layouts are the ones the libraries write (looked up in their sources):
  eventsource-py (tyevans/eventsource-py, eventsource/bus/redis.py, RedisEventBus._serialize_event):
      event_id (UUID text), event_type (the event class name), aggregate_id, aggregate_type,
      tenant_id ("" when none), occurred_at (datetime.isoformat(), UTC offset), payload (the whole
      event as pydantic JSON: model_dump_json()); consumers read event_type, event_id, occurred_at and
      validate payload.
  Watermill redisstream (ThreeDotsLabs/watermill-redisstream, pkg/redisstream/marshaller.go):
      _watermill_message_uuid (the message UUID), metadata (msgpack of map[string]string, or empty when
      the message has none), payload (the raw bytes); written from a Go map, so in any order.
"""
import datetime
import json
import sys
import uuid

try:
    import redis
except ImportError:
    print("FAIL python3-redis is not installed (apt-get install python3-redis)")
    sys.exit(3)


def fail(why):
    print("FAIL " + why)
    sys.stdout.flush()
    sys.exit(1)


def connect(url):
    if not url.startswith("redis://127.0.0.1:"):
        fail("only loopback redis:// URLs")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=False, socket_timeout=10)
    r.set_response_callback("XRANGE", lambda resp, **kw: resp)   # the flat reply: order and duplicates kept
    return r


def xrange(r, stream, start="-", end="+"):
    """[(stream id, [(name, value), ...])] as Redis stores them, bytes throughout."""
    out = []
    for sid, flat in r.execute_command("XRANGE", stream, start, end):
        out.append((sid.decode(), [(flat[k], flat[k + 1]) for k in range(0, len(flat), 2)]))
    return out


# ---- msgpack, the subset Watermill's metadata uses: a map of strings to strings ----
def mp_str(b):
    n = len(b)
    if n < 32:
        return bytes([0xA0 | n]) + b
    if n < 256:
        return bytes([0xD9, n]) + b
    return bytes([0xDA, n >> 8, n & 0xFF]) + b


def mp_map(d):
    out = bytes([0x80 | len(d)]) if len(d) < 16 else bytes([0xDE, len(d) >> 8, len(d) & 0xFF])
    for k, v in d.items():
        out += mp_str(k.encode()) + mp_str(v.encode())
    return out


def mp_read_str(b, i):
    t = b[i]
    if 0xA0 <= t <= 0xBF:
        n, i = t & 0x1F, i + 1
    elif t == 0xD9:
        n, i = b[i + 1], i + 2
    elif t == 0xDA:
        n, i = (b[i + 1] << 8) | b[i + 2], i + 3
    else:
        raise ValueError("not a msgpack string at %d" % i)
    return b[i:i + n].decode(), i + n


def mp_read_map(b):
    if not b:
        return {}
    t = b[0]
    if 0x80 <= t <= 0x8F:
        n, i = t & 0x0F, 1
    elif t == 0xDE:
        n, i = (b[1] << 8) | b[2], 3
    else:
        raise ValueError("not a msgpack map")
    d = {}
    for _ in range(n):
        k, i = mp_read_str(b, i)
        v, i = mp_read_str(b, i)
        d[k] = v
    if i != len(b):
        raise ValueError("trailing bytes after the msgpack map")
    return d


# ---- what this peer publishes ----
def es_event(tag, i, event_type):
    """An eventsource-py DomainEvent as RedisEventBus writes it."""
    eid = str(uuid.UUID(int=(0xE5 << 120) | (hash_tag(tag) << 16) | i))
    agg = str(uuid.UUID(int=(0xA6 << 120) | i))
    occurred = datetime.datetime(2026, 1, 2, 3, 4, 5, 6000 + i, tzinfo=datetime.timezone.utc).isoformat()
    payload = {"event_id": eid, "event_type": event_type, "event_version": 1, "aggregate_id": agg,
               "aggregate_type": "Order", "tenant_id": None, "occurred_at": occurred,
               "order_number": "N-%d" % i, "note": "caf\u00e9 \u2603 from " + tag}
    return [(b"event_id", eid.encode()), (b"event_type", event_type.encode()), (b"aggregate_id", agg.encode()),
            (b"aggregate_type", b"Order"), (b"tenant_id", b""), (b"occurred_at", occurred.encode()),
            (b"payload", json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())]


def hash_tag(tag):
    return sum(tag.encode()) & 0xFFFF


def wm_message(tag, i, payload, metadata):
    mid = str(uuid.UUID(int=(0x3A << 120) | (hash_tag(tag) << 16) | i))
    md = mp_map(metadata) if metadata else b""
    # a Go map has no order: write the three fields in another order than the marshaller's literal
    return [(b"payload", payload), (b"_watermill_message_uuid", mid.encode()), (b"metadata", md)]


def entries(tag):
    """(kind, stream, fields) of everything this peer publishes, deterministic for a tag."""
    out = []
    for i in range(3):
        data = json.dumps({"n": i, "from": tag, "s": "h\u00e9llo \u2603", "list": [1, 2.5, None, True]},
                          ensure_ascii=False, separators=(",", ":")).encode()
        out.append(("rsbus", "ix:rsbus", [(b"type", b"order.created"), (b"id", ("%s-rs-%d" % (tag, i)).encode()),
                                          (b"ts", str(1767225600000 + i).encode()), (b"v", b"2"), (b"data", data),
                                          (b"key", ("k%d" % i).encode()), (b"x-origin", tag.encode())]))
    for i, et in enumerate(["OrderCreated", "OrderRejected", "OrderRetried", "OrderShipped"]):
        out.append(("es", "ix:es", es_event(tag, i, et)))
    out.append(("wm", "ix:wm", wm_message(tag, 0, b'{"sku":"A-1","qty":2}', {"name": "order", "trace": tag})))
    out.append(("wm", "ix:wm", wm_message(tag, 1, b"\x00\x01binary\xff\xfe\r\n payload", {})))
    out.append(("wm", "ix:wm", wm_message(tag, 2, b"dead letter me", {"reason": "test"})))
    out.append(("wm", "ix:wm", wm_message(tag, 0, b'{"sku":"A-1","qty":2}', {"name": "order", "trace": tag})))  # a retry
    out.append(("raw", "ix:raw", [(b"\xff\x00name", b"\x00"), (b"empty", b""), (b"crlf", b"a\r\nb"),
                                  (b"latin1", "caf\u00e9".encode("latin-1")), (b"tag", tag.encode()),
                                  (b"n", b"42")]))
    return out


def publish(r, tag):
    for kind, stream, fields in entries(tag):
        # XADD with the fields in this order, as bytes
        sid = r.execute_command("XADD", stream, "*", *[x for pair in fields for x in pair]).decode()
        print("E %s %s %s %s" % (kind, stream, sid, " ".join(n.hex() + ":" + v.hex() for n, v in fields)))
    print("OK published")


# ---- what rsbus publishes (tests/test_interop.c builds the same values) ----
def expect_rsbus(i):
    return {"type": "invoice.issued", "id": "inv-%d" % i, "ts": str(1767225600000 + 1000 * i), "v": "3",
            "data": {"n": i, "text": "line\nbreak \u00e9\u2603", "ok": i % 2 == 0, "nested": {"a": [i, -i]}},
            "key": "cust-%d" % (i % 3), "src": "billing", "corr": "c-%d" % i}


def check_rsbus(r, stream, n):
    entries_ = xrange(r, stream)
    if len(entries_) != n:
        fail("%s: %d entries, expected %d" % (stream, len(entries_), n))
    last = None
    for i, (sid, pairs) in enumerate(entries_):
        names = [k for k, _ in pairs]
        vals = [v for _, v in pairs]
        e = expect_rsbus(i)
        want = [b"type", b"id", b"ts", b"v", b"data", b"key", b"src", b"corr", b"x-schema", b"x-bin"]
        if names != want:
            fail("entry %d: fields %r, expected %r" % (i, names, want))
        f = dict(zip(names, vals))
        for k in ("type", "id", "ts", "v", "key", "src", "corr"):
            if f[k.encode()] != e[k].encode():
                fail("entry %d: %s is %r, expected %r" % (i, k, f[k.encode()], e[k]))
        if json.loads(f[b"data"].decode("utf-8")) != e["data"]:
            fail("entry %d: data %r" % (i, f[b"data"]))
        if f[b"x-schema"] != b"invoice/v3" or f[b"x-bin"] != b"\xff\x00\x01":
            fail("entry %d: extra fields %r %r" % (i, f[b"x-schema"], f[b"x-bin"]))
        ms, seq = (int(x) for x in sid.split("-"))
        if last is not None and (ms, seq) <= last:
            fail("entry %d: stream ids out of order" % i)
        last = (ms, seq)
        print("ID " + sid)
    print("OK %d" % n)


def check_eventsource(r, stream, n):
    """Reads as eventsource-py's RedisEventBus._process_message does, and checks what it would see."""
    got = xrange(r, stream)
    if len(got) != n:
        fail("%s: %d entries, expected %d" % (stream, len(got), n))
    for i, (sid, pairs) in enumerate(got):
        fields = dict(pairs)
        names = [k for k, _ in pairs]
        if names != [b"event_id", b"event_type", b"aggregate_id", b"aggregate_type", b"tenant_id", b"occurred_at",
                     b"payload"]:
            fail("entry %d: fields %r" % (i, names))
        md = {k.decode(): v.decode("utf-8") for k, v in fields.items()}
        occurred = datetime.datetime.fromisoformat(md["occurred_at"])
        if occurred.tzinfo is None or occurred != datetime.datetime(2026, 3, 4, 5, 6, 7, i * 1000,
                                                                     tzinfo=datetime.timezone.utc):
            fail("entry %d: occurred_at %s" % (i, md["occurred_at"]))
        payload = json.loads(md["payload"])
        uuid.UUID(md["event_id"])
        uuid.UUID(md["aggregate_id"])
        if payload.get("event_id") != md["event_id"] or payload.get("event_type") != md["event_type"] or \
                payload.get("aggregate_id") != md["aggregate_id"] or payload.get("amount") != i * 10 + 0.5:
            fail("entry %d: payload %r does not match its fields" % (i, payload))
        if md["event_type"] != "InvoicePaid" or md["tenant_id"] != "" or md["aggregate_type"] != "Invoice":
            fail("entry %d: event_type/tenant_id/aggregate_type %r" % (i, md))
        print("ID " + sid)
    print("OK %d" % n)


def check_watermill(r, stream, n):
    """Unmarshals as Watermill's DefaultMarshallerUnmarshaller does."""
    got = xrange(r, stream)
    if len(got) != n:
        fail("%s: %d entries, expected %d" % (stream, len(got), n))
    for i, (sid, pairs) in enumerate(got):
        fields = dict(pairs)
        mid = fields.get(b"_watermill_message_uuid")
        if mid is None or b"payload" not in fields or b"metadata" not in fields:
            fail("entry %d: fields %r" % (i, list(fields)))
        uuid.UUID(mid.decode())
        meta = mp_read_map(fields[b"metadata"])
        want_meta = {"name": "invoice", "n": str(i), "bin": "\u00e9"} if i % 2 == 0 else {}
        if meta != want_meta:
            fail("entry %d: metadata %r, expected %r" % (i, meta, want_meta))
        want_payload = (b"\x00\xffpayload-" + str(i).encode() + b"\r\n") if i % 2 else b'{"invoice":%d}' % i
        if fields[b"payload"] != want_payload:
            fail("entry %d: payload %r" % (i, fields[b"payload"]))
        print("ID " + sid)
    print("OK %d" % n)


def check_dlq(r, stream, dlq, group, n):
    got = xrange(r, dlq)
    if len(got) != n:
        fail("%s: %d dead letters, expected %d" % (dlq, len(got), n))
    ours = [b"dlq_error", b"dlq_stream_id", b"dlq_stream", b"dlq_group", b"dlq_consumer", b"dlq_deliveries",
            b"dlq_failed_at"]
    for sid, pairs in got:
        names = [k for k, _ in pairs]
        if names[-7:] != ours:
            fail("%s: the dlq_* fields are %r" % (sid, names[-7:]))
        d = dict(pairs[-7:])
        orig = xrange(r, stream, d[b"dlq_stream_id"], d[b"dlq_stream_id"])
        if len(orig) != 1:
            fail("%s: no original entry %r in %s" % (sid, d[b"dlq_stream_id"], stream))
        if orig[0][1] != pairs[:-7]:
            fail("%s: the original fields were not kept verbatim: %r vs %r" % (sid, pairs[:-7], orig[0][1]))
        if d[b"dlq_stream"] != stream.encode() or d[b"dlq_group"] != group.encode() or not d[b"dlq_error"]:
            fail("%s: dlq fields %r" % (sid, d))
        int(d[b"dlq_deliveries"])
        int(d[b"dlq_failed_at"])
        print("DLQ %s %s" % (d[b"dlq_stream_id"].decode(), d[b"dlq_error"].decode("utf-8", "replace")))
    print("OK %d" % n)


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    r = connect(argv[1])
    cmd = argv[2]
    if cmd == "publish":
        publish(r, argv[3])
    elif cmd == "check-rsbus":
        check_rsbus(r, argv[3], int(argv[4]))
    elif cmd == "check-eventsource":
        check_eventsource(r, argv[3], int(argv[4]))
    elif cmd == "check-watermill":
        check_watermill(r, argv[3], int(argv[4]))
    elif cmd == "check-dlq":
        check_dlq(r, argv[3], argv[4], argv[5], int(argv[6]))
    else:
        print("unknown command " + cmd)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
