#!/usr/bin/env node
// peer.js - a Node service on the other side of an rsbus stream, for tests/test_interop.c.
//
// Uses ioredis (from the npm registry; make test installs it into build/node, NODE_PATH points there).
// The same commands, output and checks as peer.py (read its header for the layouts and where they come
// from):
//   node peer.js REDIS publish TAG
//   node peer.js REDIS check-rsbus STREAM N | check-eventsource STREAM N | check-watermill STREAM N
//   node peer.js REDIS check-dlq STREAM DLQ GROUP N
'use strict';

let Redis;
try {
    Redis = require('ioredis');
} catch (e) {
    console.log('SKIP ioredis is not installed (npm install --prefix build/node ioredis@5)');
    process.exit(4);
}

function fail(why) {
    console.log('FAIL ' + why);
    process.exit(1);
}

const B = (s) => Buffer.from(s, 'utf8');
const hex = (b) => Buffer.from(b).toString('hex');

// ---- msgpack, the subset Watermill's metadata uses: a map of strings to strings ----
function mpStr(s) {
    const b = B(s);
    if (b.length < 32) return Buffer.concat([Buffer.from([0xa0 | b.length]), b]);
    if (b.length < 256) return Buffer.concat([Buffer.from([0xd9, b.length]), b]);
    return Buffer.concat([Buffer.from([0xda, b.length >> 8, b.length & 0xff]), b]);
}
function mpMap(obj) {
    const keys = Object.keys(obj);
    const parts = [Buffer.from([0x80 | keys.length])];
    for (const k of keys) parts.push(mpStr(k), mpStr(obj[k]));
    return Buffer.concat(parts);
}
function mpReadMap(b) {
    if (b.length === 0) return {};
    let i = 0;
    const t = b[i++];
    if (t < 0x80 || t > 0x8f) throw new Error('not a msgpack fixmap');
    const out = {};
    const str = () => {
        const c = b[i++];
        let n;
        if (c >= 0xa0 && c <= 0xbf) n = c & 0x1f;
        else if (c === 0xd9) n = b[i++];
        else if (c === 0xda) { n = (b[i] << 8) | b[i + 1]; i += 2; }
        else throw new Error('not a msgpack string');
        const s = b.subarray(i, i + n).toString('utf8');
        i += n;
        return s;
    };
    for (let k = 0; k < (t & 0x0f); k++) { const key = str(); out[key] = str(); }
    if (i !== b.length) throw new Error('trailing bytes after the msgpack map');
    return out;
}

// ---- what this peer publishes ----
function uuidOf(hi, tag, i) {
    let t = 0;
    for (const c of B(tag)) t += c;
    const h = hi.toString(16).padStart(2, '0') + '0'.repeat(22) + (t & 0xffff).toString(16).padStart(4, '0') +
              i.toString(16).padStart(4, '0');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
function esEvent(tag, i, eventType) {
    const eid = uuidOf(0xe5, tag, i), agg = uuidOf(0xa6, 'agg', i);
    const occurred = `2026-01-02T03:04:05.${String(6000 + i).padStart(6, '0')}+00:00`;
    const payload = { event_id: eid, event_type: eventType, event_version: 1, aggregate_id: agg,
                      aggregate_type: 'Order', tenant_id: null, occurred_at: occurred,
                      order_number: `N-${i}`, note: `caf\u00e9 \u2603 from ${tag}` };
    return [[B('event_id'), B(eid)], [B('event_type'), B(eventType)], [B('aggregate_id'), B(agg)],
            [B('aggregate_type'), B('Order')], [B('tenant_id'), B('')], [B('occurred_at'), B(occurred)],
            [B('payload'), B(JSON.stringify(payload))]];
}
function wmMessage(tag, i, payload, metadata) {
    const md = metadata ? mpMap(metadata) : Buffer.alloc(0);
    return [[B('_watermill_message_uuid'), B(uuidOf(0x3a, tag, i))], [B('metadata'), md], [B('payload'), payload]];
}
function entries(tag) {
    const out = [];
    for (let i = 0; i < 3; i++) {
        const data = JSON.stringify({ n: i, from: tag, s: 'h\u00e9llo \u2603', list: [1, 2.5, null, true] });
        out.push(['rsbus', 'ix:rsbus', [[B('type'), B('order.created')], [B('id'), B(`${tag}-rs-${i}`)],
                                        [B('ts'), B(String(1767225600000 + i))], [B('v'), B('2')], [B('data'), B(data)],
                                        [B('key'), B(`k${i}`)], [B('x-origin'), B(tag)]]]);
    }
    ['OrderCreated', 'OrderRejected', 'OrderRetried', 'OrderShipped'].forEach((et, i) => out.push(['es', 'ix:es', esEvent(tag, i, et)]));
    out.push(['wm', 'ix:wm', wmMessage(tag, 0, B('{"sku":"A-1","qty":2}'), { name: 'order', trace: tag })]);
    out.push(['wm', 'ix:wm', wmMessage(tag, 1, Buffer.from([0, 1, 0x62, 0xff, 0xfe, 13, 10, 0x20, 0x70]), null)]);
    out.push(['wm', 'ix:wm', wmMessage(tag, 2, B('dead letter me'), { reason: 'test' })]);
    out.push(['wm', 'ix:wm', wmMessage(tag, 0, B('{"sku":"A-1","qty":2}'), { name: 'order', trace: tag })]);   // a retry
    out.push(['raw', 'ix:raw', [[Buffer.from([0xff, 0, 0x6e]), Buffer.from([0])], [B('empty'), B('')],
                                [B('crlf'), B('a\r\nb')], [B('latin1'), Buffer.from([0x63, 0x61, 0x66, 0xe9])],
                                [B('tag'), B(tag)], [B('n'), B('42')]]]);
    return out;
}

async function xrange(r, stream, start = '-', end = '+') {
    const got = await r.callBuffer('XRANGE', stream, start, end);
    return got.map(([sid, flat]) => {
        const pairs = [];
        for (let k = 0; k < flat.length; k += 2) pairs.push([flat[k], flat[k + 1]]);
        return [sid.toString(), pairs];
    });
}
const fieldsOf = (pairs) => { const m = new Map(); for (const [k, v] of pairs) m.set(k.toString('latin1'), v); return m; };
const sameBytes = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
function deepEq(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

async function publish(r, tag) {
    for (const [kind, stream, fields] of entries(tag)) {
        const sid = String(await r.call('XADD', stream, '*', ...fields.flat()));
        console.log(`E ${kind} ${stream} ${sid} ${fields.map(([n, v]) => hex(n) + ':' + hex(v)).join(' ')}`);
    }
    console.log('OK published');
}

async function checkRsbus(r, stream, n) {
    const got = await xrange(r, stream);
    if (got.length !== n) fail(`${stream}: ${got.length} entries, expected ${n}`);
    let last = null;
    got.forEach(([sid, pairs], i) => {
        const names = pairs.map(([k]) => k.toString());
        const want = ['type', 'id', 'ts', 'v', 'data', 'key', 'src', 'corr', 'x-schema', 'x-bin'];
        if (!deepEq(names, want)) fail(`entry ${i}: fields ${names}`);
        const f = fieldsOf(pairs);
        const e = { type: 'invoice.issued', id: `inv-${i}`, ts: String(1767225600000 + 1000 * i), v: '3',
                    key: `cust-${i % 3}`, src: 'billing', corr: `c-${i}` };
        for (const k of Object.keys(e)) if (f.get(k).toString() !== e[k]) fail(`entry ${i}: ${k} is ${f.get(k)}`);
        const data = JSON.parse(f.get('data').toString('utf8'));
        if (!deepEq(data, { n: i, text: 'line\nbreak \u00e9\u2603', ok: i % 2 === 0, nested: { a: [i, -i] } }))
            fail(`entry ${i}: data ${f.get('data')}`);
        if (f.get('x-schema').toString() !== 'invoice/v3' || !sameBytes(f.get('x-bin'), [0xff, 0, 1]))
            fail(`entry ${i}: extra fields`);
        const [ms, seq] = sid.split('-').map(BigInt);
        if (last && (ms < last[0] || (ms === last[0] && seq <= last[1]))) fail(`entry ${i}: stream ids out of order`);
        last = [ms, seq];
        console.log('ID ' + sid);
    });
    console.log(`OK ${n}`);
}

async function checkEventsource(r, stream, n) {
    const got = await xrange(r, stream);
    if (got.length !== n) fail(`${stream}: ${got.length} entries, expected ${n}`);
    got.forEach(([sid, pairs], i) => {
        const names = pairs.map(([k]) => k.toString());
        if (!deepEq(names, ['event_id', 'event_type', 'aggregate_id', 'aggregate_type', 'tenant_id', 'occurred_at', 'payload']))
            fail(`entry ${i}: fields ${names}`);
        const f = fieldsOf(pairs);
        const occurred = f.get('occurred_at').toString();
        const when = new Date(occurred);
        if (!/[+-]\d\d:\d\d$/.test(occurred) || when.getTime() !== Date.UTC(2026, 2, 4, 5, 6, 7) + i)
            fail(`entry ${i}: occurred_at ${occurred}`);
        const payload = JSON.parse(f.get('payload').toString('utf8'));
        if (payload.event_id !== f.get('event_id').toString() || payload.event_type !== f.get('event_type').toString() ||
            payload.aggregate_id !== f.get('aggregate_id').toString() || payload.amount !== i * 10 + 0.5)
            fail(`entry ${i}: payload does not match its fields`);
        if (f.get('event_type').toString() !== 'InvoicePaid' || f.get('tenant_id').length !== 0 ||
            f.get('aggregate_type').toString() !== 'Invoice')
            fail(`entry ${i}: event_type/tenant_id/aggregate_type`);
        console.log('ID ' + sid);
    });
    console.log(`OK ${n}`);
}

async function checkWatermill(r, stream, n) {
    const got = await xrange(r, stream);
    if (got.length !== n) fail(`${stream}: ${got.length} entries, expected ${n}`);
    got.forEach(([sid, pairs], i) => {
        const f = fieldsOf(pairs);
        if (!f.has('_watermill_message_uuid') || !f.has('payload') || !f.has('metadata')) fail(`entry ${i}: fields`);
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(f.get('_watermill_message_uuid').toString()))
            fail(`entry ${i}: uuid`);
        const meta = mpReadMap(f.get('metadata'));
        const wantMeta = i % 2 === 0 ? { name: 'invoice', n: String(i), bin: '\u00e9' } : {};
        if (!deepEq(Object.entries(meta).sort(), Object.entries(wantMeta).sort())) fail(`entry ${i}: metadata ${JSON.stringify(meta)}`);
        const want = i % 2 ? Buffer.concat([Buffer.from([0, 0xff]), B(`payload-${i}\r\n`)]) : B(`{"invoice":${i}}`);
        if (!sameBytes(f.get('payload'), want)) fail(`entry ${i}: payload`);
        console.log('ID ' + sid);
    });
    console.log(`OK ${n}`);
}

async function checkDlq(r, stream, dlq, group, n) {
    const got = await xrange(r, dlq);
    if (got.length !== n) fail(`${dlq}: ${got.length} dead letters, expected ${n}`);
    const ours = ['dlq_error', 'dlq_stream_id', 'dlq_stream', 'dlq_group', 'dlq_consumer', 'dlq_deliveries', 'dlq_failed_at'];
    for (const [sid, pairs] of got) {
        const tail = pairs.slice(-7);
        if (!deepEq(tail.map(([k]) => k.toString()), ours)) fail(`${sid}: the dlq_* fields`);
        const d = fieldsOf(tail);
        const orig = await xrange(r, stream, d.get('dlq_stream_id').toString(), d.get('dlq_stream_id').toString());
        if (orig.length !== 1) fail(`${sid}: no original entry`);
        const a = orig[0][1], b = pairs.slice(0, -7);
        if (a.length !== b.length || a.some(([k, v], j) => !sameBytes(k, b[j][0]) || !sameBytes(v, b[j][1])))
            fail(`${sid}: the original fields were not kept verbatim`);
        if (d.get('dlq_stream').toString() !== stream || d.get('dlq_group').toString() !== group || d.get('dlq_error').length === 0)
            fail(`${sid}: dlq fields`);
        if (!/^\d+$/.test(d.get('dlq_deliveries').toString()) || !/^\d+$/.test(d.get('dlq_failed_at').toString()))
            fail(`${sid}: dlq numbers`);
        console.log(`DLQ ${d.get('dlq_stream_id')} ${d.get('dlq_error')}`);
    }
    console.log(`OK ${n}`);
}

async function main(argv) {
    const m = /^redis:\/\/127\.0\.0\.1:(\d+)$/.exec(argv[0] || '');
    if (!m) fail('only loopback redis:// URLs');
    const r = new Redis({ host: '127.0.0.1', port: Number(m[1]), maxRetriesPerRequest: 1, lazyConnect: true,
                          retryStrategy: () => null });
    await r.connect();
    try {
        switch (argv[1]) {
        case 'publish': await publish(r, argv[2]); break;
        case 'check-rsbus': await checkRsbus(r, argv[2], Number(argv[3])); break;
        case 'check-eventsource': await checkEventsource(r, argv[2], Number(argv[3])); break;
        case 'check-watermill': await checkWatermill(r, argv[2], Number(argv[3])); break;
        case 'check-dlq': await checkDlq(r, argv[2], argv[3], argv[4], Number(argv[5])); break;
        default: fail('unknown command ' + argv[1]);
        }
    } finally {
        r.disconnect();
    }
}

main(process.argv.slice(2)).catch((e) => fail(String(e && e.stack || e)));
