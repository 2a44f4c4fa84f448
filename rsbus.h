/* rsbus.h - v0.1.0 - event bus on Redis Streams for C (hiredis) - license at end of file */
/*
    rsbus: durable, load-balanced, at-least-once events between processes and machines, on Redis Streams.
    One header, C99, depends on hiredis only (it brings its own JSON reader and writer).

    Do this:
        #define RSBUS_IMPLEMENTATION
    before you include this file in *one* C or C++ file to create the implementation; include it
    without the define everywhere else. Link with -lhiredis (and -lm; and -pthread where libc does not
    hold POSIX threads, glibc before 2.34 and some others: the in-process bus, mem://, uses them).

        cc -std=c99 -O2 app.c -lhiredis -lm -pthread

    The implementation needs POSIX. Under -std=c99/c11 it defines _POSIX_C_SOURCE 200809L itself when
    rsbus.h is the first #include of the file that defines RSBUS_IMPLEMENTATION; otherwise define it
    before the first #include there (an #error says so).

    Supported: hiredis 0.14.1 (Debian 12) and 1.x; Redis 6.2 and later (XPENDING IDLE and exclusive
    ranges need 6.2; lag and entries-added in the numbers need 7.0, they read -1 before). Tested on
    Redis 7.0 with hiredis 0.14.1 and 1.2.0. TLS (rediss://) needs hiredis 1.x built with TLS: define
    RSBUS_TLS and link -lhiredis_ssl -lhiredis -lssl -lcrypto (see TLS); without it a rediss:// URL
    fails with RSBUS_E_TLS and says how to get TLS. Redis Cluster (redis+cluster://, CLUSTER SLOTS) and
    Sentinel (redis+sentinel://) work with the same versions and no other library; tested with Redis
    7.0's cluster and redis-sentinel. The in-process bus (mem://) needs POSIX threads: link -pthread, or
    build with RSBUS_NO_MEM.

    TL;DR
        #define _POSIX_C_SOURCE 200809L
        #define RSBUS_IMPLEMENTATION
        #include "rsbus.h"
        #include <stdio.h>

        static rsbus_verdict on_order(const rsbus_msg *m, void *user) {
            (void)user;
            printf("%s %s delivery %lld: %.*s\n", m->type, m->id, (long long)m->deliveries,
                   (int)m->data_len, m->data);
            return RSBUS_ACK;                  // RSBUS_RETRY: again after a backoff; RSBUS_DEAD: to the DLQ
        }

        int main(void) {
            rsbus_config cfg = {0};
            rsbus_error err;
            rsbus_event ev = {0};
            rsbus *bus;
            cfg.url = "redis://127.0.0.1:6379";  // NULL: this default; RSBUS_URL with rsbus_config_from_env
            cfg.stream = "orders";
            cfg.group = "billing";
            bus = rsbus_open(&cfg, &err);
            if (!bus) { fprintf(stderr, "%s: %s\n", rsbus_result_str(err.code), err.msg); return 1; }
            ev.type = "order.created";
            ev.data = "{\"order\":42,\"total\":9.5}";
            if (rsbus_publish(bus, &ev, NULL) != RSBUS_OK) fprintf(stderr, "%s\n", rsbus_errmsg(bus));
            rsbus_subscribe(bus, "order.*", on_order, NULL);
            while (rsbus_poll(bus, 1000) > 0) {}   // or rsbus_run(bus, &stop_flag) in a service
            rsbus_close(bus);
            return 0;
        }

    CONCEPTS
        stream      an append-only log in one Redis key (config.stream); each event is one entry.
        group       a consumer group: every group gets every entry; within a group each entry goes to
                    one consumer. Created by rsbus_open (MKSTREAM) at config.group_start.
        consumer    a named reader in a group (config.consumer; default "<host>-<pid>-<random>"). Give a
                    service a stable name to have it re-handle its own unfinished entries after a restart.
        pending     an entry delivered to a consumer and not yet acknowledged (Redis's PEL), with the
                    count of its deliveries, kept by Redis: it survives crashes of consumers.
        DLQ         the dead-letter stream "{<stream>}:dlq": entries that failed for good, with why.
        partition   with config.partitions N >= 2, one of the N streams "<stream>:p<i>" the stream is made
                    of; an event goes to the one its key picks (see PARTITIONS).

    SEMANTICS
        - At-least-once. An entry is acknowledged (XACK) only after every matching handler returned
          RSBUS_ACK; a consumer that dies before that leaves it pending, and it is delivered again.
          Handlers must be idempotent (the event id, msg->id, is stable across deliveries and replays).
        - Order: entries are read in stream order; a retry or a claim handles an entry later than its
          successors, so per-key order holds only while nothing fails.
        - RSBUS_RETRY leaves the entry pending; rsbus_claim (called by rsbus_run every
          claim_interval_ms) hands it to a handler again once it has been idle for
          retry_backoff_ms * 2^(deliveries-1), capped at retry_backoff_max_ms.
        - When an entry fails having been delivered more than max_retries times, or a handler returns
          RSBUS_DEAD, it moves to the DLQ: XADD to {<stream>}:dlq and XACK in one MULTI/EXEC.
        - An entry that cannot be decoded (no type, data that is not JSON, data over max_event_bytes,
          a bad v or ts, the wrong tenant, data that does not match the schema registered for its
          type and version) goes to the DLQ with the reason and reaches no handler (with accept_foreign
          most of these are delivered instead: see WIRE FORMAT). Fields rsbus does not know are kept:
          msg->fields holds every field. An entry with no matching handler is acknowledged and counted.
        - rsbus_claim takes over other consumers' entries idle at least min_idle_ms (XCLAIM with that
          min-idle, the guard against two consumers taking one entry) and this consumer's own failed
          entries once their backoff is due. Entries already delivered more than max_retries times
          go to the DLQ without reaching a handler: a handler that crashes the process on an entry
          cannot loop forever ("deliveries" counts crashed deliveries too).
        - After rsbus_open and after every reconnect, the first rsbus_poll re-reads this consumer's own
          pending entries (XREADGROUP from 0, page by page) before it reads new ones; their backoff
          is not waited for then.
        - Entries deleted or trimmed while pending come back with no fields: they are acknowledged and
          counted (deleted_while_pending), never retried.
        - If the group disappears (stream deleted, server flushed), rsbus_run recreates it from the
          start of the stream ("0": whatever was published meanwhile is handled) and warns, at most
          once every 10 s; attempts back off.
        - Trimming: see TRIMMING. For no loss, use trim_policy = RSBUS_TRIM_ACKED.

    TRIMMING
        A stream grows until something trims it. Two policies (config.trim_policy):
        RSBUS_TRIM_MAXLEN (default)  every XADD carries MAXLEN ~ max_len: a memory bound that drops the
                                     oldest entries whatever their state, so a group more than max_len
                                     behind loses entries. rsbus_run notices and says so: a warning,
                                     stats.trimmed_unread and rsbus_trimmed_unread_total (Redis 7).
        RSBUS_TRIM_ACKED             the choice for no loss: XADD does not trim; rsbus_run (every
                                     claim_interval_ms, at least 1 s apart) and rsbus_trim remove only
                                     entries every group has acknowledged (XTRIM MINID ~ the oldest
                                     entry a group still needs: its oldest pending entry, else the one
                                     after its last delivered). The stream is bounded once the groups
                                     catch up, and grows while one lags or is gone: watch lag (health).
                                     With no group at all nothing is trimmed. A group created later at
                                     "0", or rewound, finds only what was still there.

    CONFIG MACROS
        RSBUS_IMPLEMENTATION    define in one file: the implementation goes there
        RSBUS_STATIC            global: every function static (a private copy in one file)
        RSBUS_API               global: how public functions are declared (default: extern)
        RSBUS_ASSERT(c)         implementation: debug checks of caller bugs (default: assert)
        RSBUS_JSON_MAX_DEPTH    implementation: deepest JSON nesting the reader accepts (default 512,
                                at most 512)

        Build switches (implementation; define before the #include that has RSBUS_IMPLEMENTATION). Each
        removes a part's code from the object file, never a declaration or a struct field, so one
        header serves every build of a program. A call of a compiled-out function returns RSBUS_E_ARG
        and rsbus_errmsg says so ("rsbus_dlq_list: compiled out by RSBUS_NO_ADMIN"); rsbus_open
        refuses a config that needs a missing part with RSBUS_E_ARG naming the field and the switch.
        RSBUS_NO_SPOOL          the offline spool: rsbus_spool_flush, rsbus_spool_pending; spool_path
                                is refused
        RSBUS_NO_SCHEMA         schemas: rsbus_schema_register (nothing is checked against a schema)
        RSBUS_NO_DEDUPE         consumer-side dedupe; dedupe_ttl_ms is refused
        RSBUS_NO_ADMIN          operating calls: rsbus_dlq_list/_replay/_purge, rsbus_consumers_list/
                                _gc, rsbus_tail, rsbus_replay_range, rsbus_group_rewind, rsbus_trim
                                (rsbus_run still trims by trim_policy; rsbus_dlq_page_free stays)
        RSBUS_NO_CLUSTER        Redis Cluster and Sentinel (redis+cluster:// and redis+sentinel:// URLs
                                are refused by rsbus_open) and partitions (partitions >= 2 is refused;
                                the key layout and rsbus_key_slot stay)
        RSBUS_NO_MEM            the in-process bus: a mem:// URL is refused (no pthreads needed then)
        A publish-only gateway builds with all of them but RSBUS_NO_SPOOL, at -Os with
        -ffunction-sections -fdata-sections and -Wl,--gc-sections; README.md shows the sizes.

    CONFIG AND DEFAULTS
        rsbus_config is zero-initialised by the caller; a zero field means the default (see its
        declaration). Strings are copied by rsbus_open. rsbus_config_from_env(&cfg, NULL, &err) reads
        RSBUS_URL, RSBUS_STREAM, RSBUS_GROUP, RSBUS_CONSUMER, RSBUS_GROUP_START, RSBUS_TENANT,
        RSBUS_MAX_LEN, RSBUS_DLQ_MAX_LEN, RSBUS_BATCH_SIZE, RSBUS_BLOCK_MS, RSBUS_MAX_RETRIES,
        RSBUS_RETRY_BACKOFF_MS, RSBUS_RETRY_BACKOFF_MAX_MS, RSBUS_CLAIM_IDLE_MS, RSBUS_CLAIM_INTERVAL_MS,
        RSBUS_CONNECT_TIMEOUT_MS, RSBUS_IO_TIMEOUT_MS, RSBUS_REQUIRE_TLS, RSBUS_PUBLISH_ONLY,
        RSBUS_MAX_EVENT_BYTES, RSBUS_LOG_LEVEL (0-4 or error/warn/info/debug), RSBUS_TRIM_POLICY
        (maxlen or acked), the spool and dedupe fields, RSBUS_ACCEPT_FOREIGN, RSBUS_TYPE_FIELD,
        RSBUS_ID_FIELD, RSBUS_DATA_FIELD, RSBUS_PARTITIONS, RSBUS_PUBLISH_WAIT_REPLICAS and
        RSBUS_PUBLISH_WAIT_MS; booleans are 0/1/true/false/yes/no/on/off. cfg is written only if every
        variable is valid.

        URLs
            redis://[user[:password]@]host[:port][/db]      (IPv6: redis://[::1]:6380/0)
            unix:///path/to/redis.sock[?db=N&user=U&password=P]
            rediss://...   (TLS, see above)
            redis+sentinel://[user:pass@]host:port[,host:port...]/<master-name>[/db]
                             [?sentinel_user=U&sentinel_password=P]      (see FAILOVER)
            rediss+sentinel://...   (TLS to the sentinels and the master, rediss:// parameters)
            redis+cluster://[user[:password]@]host:port[,host:port...]   (REDIS CLUSTER; rediss+cluster://
                           with the TLS parameters of rediss://; the nodes are seeds, at most 16; db 0 only)
            mem://[name]   the in-process bus, no Redis (see IN-PROCESS BUS)
        redis://:pw@host authenticates with the password alone, redis://user:pw@host as an ACL user.
        Percent-escapes are decoded in the user, the password, the path and query values; a raw '@'
        or ':' in a password works, '/', '?', '&' must be escaped. Error messages and logs show the
        URL with "***" in place of the user and password, never them.

    REDIS CLUSTER
        url = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000" makes a bus work on a Redis Cluster, with
        the same calls and the same promises. Every key rsbus keeps for a stream K hashes to K's slot
        (K, {K}:dlq, {K}:dedupe:..., see WIRE FORMAT), so each MULTI/EXEC and script stays in one slot.
        - The listed nodes are seeds: the slot map comes from CLUSTER SLOTS (Redis 6.2 and later; no
          other library is needed, hiredis 0.14 and 1.x both work). The bus connects to the master that
          serves its stream's slot; replicas are never read.
        - Redirects are rsbus's business: a command answered MOVED is sent again to the master named and
          the map is updated; ASK is followed once with ASKING; a MULTI/EXEC aborted by a redirect is
          sent again whole; TRYAGAIN, CLUSTERDOWN and LOADING are sent again after a backoff (10 ms
          doubling to 200 ms) within io_timeout_ms. A caller never sees MOVED, ASK or CROSSSLOT for
          rsbus's commands. Commands sent again go over one spare connection per bus; a blocking read
          redirected is answered as "nothing yet" and the next read goes to the right master.
        - A lost master: calls fail within the timeouts (RSBUS_E_IO, RSBUS_E_TIMEOUT, or RSBUS_E_REDIS
          with CLUSTERDOWN once the backoff is spent) and mark the map stale; the next call reads it
          again (at most every 100 ms) from the masters known, then the seeds. rsbus_run keeps going
          through a failover. Acknowledged XADDs the dead master had not replicated can be lost with
          it (replication is asynchronous; see publish_wait_replicas).
        - Partitions (see PARTITIONS) spread a stream over the masters: each partition's commands go to
          the master of its slot, on a connection per master. Their keys are in different slots, so a
          poll reads each partition with a command of its own: all of them without BLOCK, sent at once
          (one round trip per master, all masters together); when none has entries and time is left,
          one partition at a time, in turn, waits with BLOCK for at most 100 ms, then all are read
          again. So an event in another partition waits at most that long, and an idle consumer sends
          about ten reads a second per partition. A master that fails leaves the others read. Batches
          are atomic per partition (a MULTI/EXEC each, every master's sent before any reply is read);
          rsbus_tail reads each partition on its own too.
        - Reads ahead (rsbus_run, unpartitioned streams), deferred XACKs and dedupe marks work as on one
          server; commands are kept until they are answered so that they can be sent again (up to 64 MiB
          per connection).
        - With publish_wait_replicas, the WAIT goes to each master a publish wrote to, after its
          commands: a master promoted without a replica answers RSBUS_E_REPLICAS until one syncs.
        - A /db other than 0 is refused. RSBUS_NO_CLUSTER compiles all of it out.

    TLS
        Build with -DRSBUS_TLS against hiredis 1.x with hiredis_ssl (OpenSSL 1.1 or later) and use
            rediss://host:port[/db]?ca=FILE&capath=DIR&cert=FILE&key=FILE&sni=NAME&verify=0|1
        The server's certificate is verified against ca/capath (else the system's CAs) and its name
        against sni= (else the host; an IP address is checked as one): hiredis only sends SNI, so rsbus
        has OpenSSL check the name. verify=0 turns both checks off (tests only). cert= and key= give a
        client certificate. A refused handshake is RSBUS_E_TLS with the reason ("certificate
        verification failed: hostname mismatch"). With require_tls, redis:// and unix:// URLs are
        refused by rsbus_open before anything is sent. TLS writes cannot use MSG_NOSIGNAL: rsbus blocks
        SIGPIPE in the writing thread for the write and discards one it raised (pthread_sigmask).

    IN-PROCESS BUS (mem://)
        For tests and prototypes: RSBUS_URL=mem:// (or config.url) runs a program with no Redis at
        all, and RSBUS_URL=redis://... moves it to Redis without a rebuild. Every bus opened in the
        process on mem://<name> shares that namespace's streams (mem:// is the namespace ""), so a
        publisher and consumers in one program, or in its threads, exchange events. It is another kind
        of connection, not another bus: the commands rsbus would send to Redis are run by a small engine
        in the process that implements them with Redis 7.0's meanings and error texts, and the replies
        are read by the same code, so every call keeps its meaning: ids ms-seq, MAXLEN ~ trimming in
        whole nodes of 100 entries as Redis does, ACKED trimming, groups, pending lists with delivery
        counts and idle times, retries with backoff, claims, the DLQ with replay and purge, dedupe,
        schemas, replay_range and rewind, stream/group/consumer info and lag (Redis 7.0's rules),
        health, stats, metrics, tenants and foreign entries; entries are field/value pairs as on Redis.
        What differs, all of it:
        - Nothing survives the process; a namespace is freed when its last bus closes. Another process
          cannot see it (use Redis for that).
        - rsbus_open refuses with RSBUS_E_ARG, saying why: a spool (spool_path), require_tls, and a
          mem:// URL with anything but a name (user, password, port, db, query). Cluster, Sentinel and
          publish_wait_replicas are refused the same way where a build has them.
        - A read that waits (block_ms, rsbus_poll's timeout) waits on a condition variable that any
          publish to the namespace signals, also from another thread; rsbus_run still notices a stop
          within 100 ms. Buses stay one per thread; the namespace is guarded by a mutex.
        - Memory is bounded as on Redis: by max_len and dlq_max_len (with RSBUS_TRIM_ACKED, by what the
          groups have not acknowledged), and dedupe marks expire with dedupe_ttl_ms. A namespace's
          memory comes from the allocator of the bus that opened it first (keep it usable until the
          last bus of the namespace closes); it is called with the namespace's mutex held. Each
          published entry is one allocation.
        - The engine knows the commands rsbus sends (and KEYS, INFO commandstats, CONFIG SET/GET
          maxmemory-policy for tests), not Lua: rsbus_consumers_gc's script is recognised and run
          natively. maxmemory-policy is kept and reported by health, but nothing is ever evicted.
        - There is no AUTH, no db but 0, no TLS. The list of namespaces is the one process-wide state
          of rsbus (behind its own mutex).
        RSBUS_NO_MEM compiles it out.

    ERRORS
        Fallible calls return rsbus_result: RSBUS_OK (0) or a negative RSBUS_E_*; rsbus_result_str
        names it and rsbus_errmsg(bus) says what rsbus was doing and why, with Redis's own error text
        where Redis answered (never a password, never a payload). rsbus_open reports into the caller's
        rsbus_error. RSBUS_SPOOLED (1) is the one other success (see OFFLINE SPOOL).
        RSBUS_E_ARG: a bad argument, config field or event, found before anything was sent (the
        message names the field: "rsbus_config.batch_size: must be 1..10000"), or a call not allowed
        where it was made (rsbus_poll from a handler, a consume call on a publish_only bus);
        RSBUS_E_NOMEM: an allocation failed (the bus stays usable); RSBUS_E_IO: Redis unreachable
        (refused, reset, closed), or answering that it is not ready (LOADING after a restart,
        MASTERDOWN, READONLY from a demoted master, NOREPLICAS: nothing was written): retry later; RSBUS_E_TIMEOUT: no answer within io_timeout_ms
        (connect_timeout_ms while connecting); RSBUS_E_AUTH: NOAUTH, WRONGPASS, NOPERM; RSBUS_E_TLS:
        TLS asked for but not built in, or the handshake failed; RSBUS_E_REDIS: another error reply;
        RSBUS_E_PROTOCOL: a reply of unexpected shape; RSBUS_E_JSON: malformed JSON (the JSON calls);
        RSBUS_E_NOTFOUND: what was asked for does not exist (a stream, a group, a dead letter, a JSON
        path, a handler token); RSBUS_E_REPLICAS: published, but fewer replicas than
        publish_wait_replicas confirmed it within publish_wait_ms (see FAILOVER).
        After an I/O error, a timeout or a protocol error the connection is dropped: the next call on
        the bus reconnects first (one attempt within connect_timeout_ms); so does a call that finds
        the connection closed by the server. A publisher keeps working once Redis is back, without
        reopening. rsbus_run reconnects with a backoff from 100 ms doubling to 5 s, with jitter.
        Blocking reads (rsbus_poll with a timeout, rsbus_run) wait BLOCK + io_timeout_ms for a reply.
        rsbus never aborts, never exits, and never raises SIGPIPE: it writes with MSG_NOSIGNAL.

    PUBLISHING
        rsbus_publish validates the event first (type 1..128 bytes of [A-Za-z0-9._:-], data one JSON
        value of at most max_event_bytes, optional fields 1..1024 bytes, event id 1..47 bytes of the
        type's charset, the tenant, and its data against the schema of its type and version if one is
        registered, see SCHEMAS): an invalid event is refused with RSBUS_E_ARG and nothing is sent.
        It then sends one XADD with MAXLEN ~ max_len. Event ids are 32 hex digits from the kernel's
        random source (getrandom, else /dev/urandom). rsbus_publish_batch sends MULTI, the XADDs and
        EXEC in one write and one round trip: all or none (on a partitioned stream, all or none per
        partition: see PARTITIONS).

    CONSUMING
        rsbus_subscribe(bus, pattern, fn, user): an exact type, "*" for every type, or a prefix
        "order.*" (order.a and order.a.b, not order). Every matching handler runs for an entry, in
        subscription order; the entry is acknowledged only if all returned RSBUS_ACK; RSBUS_DEAD from
        any sends it to the DLQ; otherwise it is retried. msg->reason (RSBUS_REASON_SIZE bytes) is
        where a handler says why it failed: it becomes dlq_error. The rsbus_msg and its strings are
        valid only during the call. A handler may publish on the same bus and call rsbus_stop; it must
        not call rsbus_poll, rsbus_run, rsbus_claim or rsbus_close on it.
        rsbus_poll reads and settles one batch: acknowledgements of the batch go in one XACK, and
        dead-letter moves with them, in one round trip. rsbus_run loops: claim every
        claim_interval_ms, poll with block_ms, reconnect, until *stop or rsbus_stop; a stop request
        is noticed within 100 ms while it waits, and the batch in hand is finished and acknowledged
        first (a stop while blocked in XREADGROUP drops the connection: an entry Redis delivered in
        that instant stays pending and is re-read on the next start under the same name).
        Reading ahead: after a batch, rsbus_run sends its XACK together with reads (XREADGROUP without
        BLOCK) of the batches after it, so that two reads are in flight: Redis answers the next one
        while this consumer reads and handles the one before, and a batch costs one write and no
        waiting. The entries of the next batch are then delivered to this consumer, so pending, while
        the current one is handled: at most one batch (batch_size entries) ahead of the one in hand. A
        crash leaves them pending, to be claimed as any other (claim_idle_ms); when rsbus_run returns
        with a batch read ahead and unhandled, its entries stay pending to this consumer and the next
        rsbus_poll or rsbus_run of the bus re-reads them first (as after a reconnect). rsbus_poll does
        not read ahead.

    DEAD LETTERS
        {<stream>}:dlq holds each dead entry's fields verbatim and in order (any field, foreign ones too;
        only a field named like one of the seven below is replaced) plus dlq_error, dlq_stream_id,
        dlq_stream, dlq_group, dlq_consumer, dlq_deliveries, dlq_failed_at (ms), trimmed by
        MAXLEN ~ dlq_max_len. rsbus_dlq_list pages oldest first; rsbus_dlq_replay re-adds one
        atomically (WATCH/MULTI/EXEC) with the same event id, replay_of and replay_for (the group that
        failed it; the other groups acknowledge it without dispatch) and deletes it from the DLQ;
        rsbus_dlq_purge deletes those dead-lettered before a time by Redis's clock (the entry ids).
        A DLQ kept by rsbus 0.1 under "<stream>:dlq" moves with one RENAME "<stream>:dlq" "{<stream>}:dlq"
        on a standalone server (README.md, Wire format).

    IDEMPOTENT CONSUMERS (dedupe_ttl_ms)
        With dedupe_ttl_ms > 0 a group remembers the event ids it handled, as keys
        "{<stream key>}:dedupe:<group>:<event id>" expiring after dedupe_ttl_ms, and acknowledges an
        entry whose event id it handled already without calling a handler (stats.deduped). That
        absorbs a publisher's retries of one id (an outbox sending again, a spool chunk sent twice)
        and an entry delivered again after its consumer died between handling and XACK. The ids of a
        batch are checked with one MGET before its handlers run. An id is marked only once every
        matching handler returned RSBUS_ACK (not after a failed attempt, nor for an unhandled entry);
        the mark (SET PX) is written as soon as that is known and its reply is read with the batch's
        XACK, so a consumer killed later in the batch has marked what it finished, at no extra round
        trip. A DLQ replay addressed to the group (replay_for) is handled even if its id is marked.
        Trade-offs: one key per handled event and group for the window (about 100 bytes each); a
        repeat after the window is handled again; check and mark are not one transaction, so copies
        of one id handled at the same moment by two consumers both run, and a consumer that dies
        between a handler's return and the mark's write repeats that one event. Entries without an
        id are not deduplicated, nor is publishing. An ACL user needs MGET and SET on
        "{<stream key>}:dedupe:*". On a partitioned stream the marks are the partition's
        ("{<stream>:p<i>}:dedupe:..."), and an event id sent twice lands in the same partition.

    OFFLINE SPOOL (spool_path)
        With spool_path set, a publish that cannot reach Redis (RSBUS_E_IO, RSBUS_E_TIMEOUT) appends
        its events to that file and returns RSBUS_SPOOLED (1: a success, so test failures with r < 0);
        their stream ids are "". Spooled events keep their event id and ts and are sent in order,
        before any later publish of the bus reaches Redis: by the next publish, by rsbus_run (at most
        once a second) or by rsbus_spool_flush; rsbus_spool_pending counts them. With a spool,
        rsbus_open succeeds while Redis is down, so a gateway can start offline. Invalid events and
        errors Redis answered (OOM, NOPERM, WRONGTYPE) are returned, never spooled. A timeout is
        ambiguous: the XADD may have reached Redis, and then the spooled copy arrives a second time
        with the same event id (dedupe on the consumers absorbs it).
        Each publish writes its records with one write(): length, CRC-32 and the event's fields;
        spool_fsync 0 (the default) fdatasyncs before the publish returns, 1 leaves it to the OS (a
        power cut may lose the last seconds). Opening checks every record and cuts off a torn or
        damaged last record and whatever follows it, saying so in the log. Sending goes in MULTI/EXEC
        chunks of up to 1000 events; the file's header records how far it got and the file is
        truncated once all is sent. A crash between a chunk reaching Redis and that header write
        sends the chunk again (the same ids). The file is bounded by spool_max_bytes (default 64 MiB;
        sent records count until the spool is empty): past it a publish fails with RSBUS_E_IO "spool
        ... is full". One bus per spool file (flock). While Redis is down every publish first tries
        to connect (connect_timeout_ms): on links where connecting hangs rather than fails, keep
        that short. The file format is described at ">>offline spool" in the implementation.

    SCHEMAS
        rsbus_schema_register(bus, "order.created", 2, schema_json) gives the events of that type and
        version a schema. Events of another version, or of a type without a schema, are not checked.
            {"id": "string",
             "customer": {"id": "integer", "name?": "string"},   an object with its own schema
             "items": [{"sku": "string", "qty": "integer"}],     each element matches that schema
             "tags?": ["string"],                                an array of strings
             "meta?": "object", "note?": "any"}
        Types: "string"; "number" (any JSON number); "integer" (a JSON number with no fraction and no
        exponent: 3, -0, 123456789012345678901 yes; 3.0, 1e3 no); "boolean"; "object" (any object);
        "array" (any array); "any" (any value, null too); {...} an object matching that schema; [T]
        an array whose every element is a T, for any of these T ([["number"]] too).
        A field is required unless its name ends in "?" (not part of the name). An optional field
        may be absent or null; a required one, or an array element, is never null unless its type is
        "any". Fields the schema does not name are allowed at every level; a key the payload holds
        twice is checked each time. The payload must be an object.
        Publishing: rsbus_publish and rsbus_publish_batch check after the other checks and refuse an
        event that does not match with RSBUS_E_ARG, sending nothing (in a batch, none of the batch).
        The message names the field by its path (array elements by index), never a payload value:
            publish order.created v2: field "customer.address.zip" must be a string
            publish order.created v2: field "items.3.qty" must be an integer (event 5 of the batch)
            publish order.created v2: missing required field "customer.id"
            publish order.created v2: the payload must be a JSON object
        (Array indexes and batch event numbers count from 0.)
        Consuming: an entry that does not match (written by another client, or before the schema)
        is malformed: it goes to the DLQ without reaching a handler, counts in stats.malformed, and
        its dlq_error reads "malformed: schema: order.created v2: field ...". History is shown as it
        is: rsbus_tail and rsbus_replay_range do not check schemas (events from before a schema reach
        a projection's callback too). Handlers see msg->version (1 for an entry without v).
        Registering: version 0 means 1, as in rsbus_event; the type follows the rules of event types.
        Registering again for the same (type, version) replaces the schema (there is no unregister).
        The text is compiled and not kept. A bad schema is RSBUS_E_ARG saying what and where:
            schema_register order.created v2: unknown type "int" (expected string, number, integer,
            boolean, object, array, any, {...} or [type]) (field "items[].qty", byte 19)
        A failed registration, RSBUS_E_NOMEM included, changes nothing. Each bus has its own schemas
        (in its allocator's memory, until rsbus_close): register them on every bus that publishes or
        consumes the type. No I/O.
        Limits: 64 KiB of schema text; 16 levels of nesting (the top object is level 1, each {...} or
        [...] one more); 256 fields in one object, 1024 fields and [...] in all; field names 1..128
        bytes without control characters, '.', '[' or ']' (they would make paths ambiguous); 1024
        (type, version) pairs per bus. A path too long for the message keeps its end, after "...".
        Cost: none for a bus without schemas; a hash lookup of the type on one with schemas; checking
        a payload is one pass over its text, without allocation or recursion.

    OPERATING
        rsbus_stream_info_get, rsbus_group_info_get, rsbus_groups_list (XINFO; lag is -1 when Redis
        cannot tell, e.g. after a restart from the AOF on 7.0), rsbus_health_check (UNHEALTHY: Redis
        unreachable; DEGRADED: lag or pending of this bus's group above max_lag, a non-empty DLQ, or
        a maxmemory-policy allkeys-* that can evict the stream), rsbus_stats_get, rsbus_metrics_text
        (Prometheus text), rsbus_consumers_list / rsbus_consumers_gc (deletes consumers idle longer
        than a bound that hold nothing pending), rsbus_tail, rsbus_replay_range, rsbus_group_rewind,
        rsbus_server_time_ms, rsbus_server_info_get (the server reached, its role and replicas).
        Ages are computed from Redis's clock, never the device's.
        rsbus_stream_snapshot is what a monitor polls: the stream's numbers, its DLQ's length and every
        group's lag, pending, consumers and oldest_idle_ms (how long the oldest pending entry has waited
        since its last delivery) from one pipelined round trip (XINFO STREAM FULL COUNT 1, XLEN of the
        DLQ, TIME); the cost grows with the number of groups and consumers, not with the stream.
        examples/rsbusctl.c is a command-line tool built on these (its "exporter" serves them to
        Prometheus).

    FAILOVER (Sentinel, replicated publishing)
        redis+sentinel://h1:26379,h2:26379,h3:26379/mymaster finds the master through the sentinels:
        each is asked in turn (SENTINEL get-master-addr-by-name, connect_timeout_ms to connect and
        io_timeout_ms to answer), the master it names is connected to and checked with ROLE (a
        sentinel naming a replica or an unreachable server is passed over for the next one), and the
        sentinel that answered is asked first next time. user:pass in the URL authenticate to the
        master, sentinel_user / sentinel_password to the sentinels. Every reconnect asks again, and so
        does the next call after READONLY or MASTERDOWN (a demoted master keeps its connections open).
        When no sentinel names a reachable master the call fails with RSBUS_E_IO (RSBUS_E_AUTH when
        every sentinel refused the password), the message naming the master and each sentinel asked
        with its answer; never a password. rsbus_run rides through a failover with its usual backoff.
        During the switch calls fail with RSBUS_E_IO; READONLY, MASTERDOWN, LOADING and NOREPLICAS are
        transient RSBUS_E_IO too.

        Replication is asynchronous, so an XADD the master acknowledged can vanish when the master
        dies before a replica copied it. publish_wait_replicas = n follows every publishing XADD or
        MULTI/EXEC (rsbus_publish, _batch, _fields, the spool, the move to the DLQ) with WAIT n
        publish_wait_ms in the same write and round trip. RSBUS_OK then means n replicas have the event;
        fewer within publish_wait_ms is RSBUS_E_REPLICAS: the event is in the master's stream (stream
        ids filled, not spooled, counted in stats.published and stats.replica_shortfalls), but a
        failover can lose it; publishing it again with the same event id is safe (consumers with
        dedupe_ttl_ms skip the repeat). A DLQ move that fell short is logged and counted; the move
        stands. WAIT does not make a write durable on disk, nor stop a master that lost its replicas
        from accepting writes: pair it with min-replicas-to-write (the master then refuses writes
        with NOREPLICAS, which rsbus reports as RSBUS_E_IO and a spool bus spools) and appendonly yes.
        A newly promoted master has no replica until one resyncs: publishes answer RSBUS_E_REPLICAS
        meanwhile. rsbus_health_check asks ROLE when publish_wait_replicas > 0 or on a sentinel URL and
        is DEGRADED when fewer replicas are in sync than publish_wait_replicas or the server is not a
        master; rsbus_server_info_get says which server the bus reached and how many replicas it has.

    TENANTS
        With config.tenant set (1..64 bytes of [A-Za-z0-9._-]) the bus uses the keys
        "tenant:<tenant>:<stream>" and "{tenant:<tenant>:<stream>}:dlq" (and so on, see KEY LAYOUT), so
        the ACL key patterns "~tenant:<tenant>:* ~{tenant:<tenant>:*" confine a tenant's credentials. An event with no tenant gets the bus's;
        a different one is refused; a consumed entry whose tenant is missing or different goes to the
        DLQ. msg->stream is the Redis key.

    ALLOCATOR
        Every allocation rsbus makes goes through config.allocator (all NULL: malloc/realloc/free;
        all three or none). free and realloc are told the size. A failed allocation returns
        RSBUS_E_NOMEM and leaves the bus usable; an entry whose handling was cut short stays pending.
        In steady state rsbus_publish and rsbus_poll allocate nothing: buffers are kept by the bus.
        hiredis allocates on its own: 0.14 has no hook, 1.x has a process-wide one
        (hiredisSetAllocators), which rsbus never changes.

    LOGGING AND REDACTION
        config.log (default none) receives one line per event worth logging at config.log_level
        (default RSBUS_LOG_WARN). Lines and error messages carry stream, group and consumer names,
        entry and event ids, counts and Redis error text; never payloads, field values, passwords or
        AUTH arguments. Text from Redis is cleaned of control characters.

    THREADING AND SIGNALS
        A bus is used by one thread at a time; buses share nothing, so one bus per thread (mem:// buses
        of one namespace share its streams, guarded by its mutex). rsbus_stop only sets a flag: it is
        safe from a handler and from a signal handler. rsbus does not change signal dispositions.

    WIRE FORMAT
        One stream entry per event; every name and value is a Redis string (binary-safe bytes). rsbus
        writes, in this order:
            type    required; 1..128 bytes of [A-Za-z0-9._:-]
            id      the event id, 1..47 bytes (rsbus writes 32 random hex digits unless given one);
                    optional when consuming (then msg->id is NULL and the entry is not deduplicated)
            ts      milliseconds since the epoch, decimal; optional (msg->ts_ms 0)
            v       the payload's schema version, a decimal integer >= 1; optional (1)
            data    the payload: one JSON value (RFC 8259, UTF-8), at most max_event_bytes; required
        then only those set: key, src, tenant, corr, trace (each 1..1024 bytes), replay_of (a DLQ
        entry id) and replay_for (a group name) on a replayed dead letter, then an event's extra
        fields. Any client can read and write these with plain XADD/XRANGE; fields in another order,
        and fields rsbus does not know, are fine.
        An entry is malformed (dead-lettered with dlq_error "malformed: <why>", never handed to a
        handler) when: it has no type or data; type is not 1..128 bytes of that set; data is not valid
        JSON or is larger than max_event_bytes; v is not a positive integer or ts not a non-negative
        integer; id or replay_of is 48 bytes or more, key/src/tenant/corr/trace more than 1024; it has
        more than 256 field pairs; a registered schema refuses data; on a tenant-bound bus, its tenant
        is missing or another. A field that appears twice is checked each time, and the last value
        rsbus accepts is used (msg->fields has both).
    FOREIGN ENTRIES (streams other programs write)
        msg->fields / msg->field_count hold every field of the consumed entry as stored, in order, names
        and values binary-safe (pointer and length, each also followed by a NUL), pointing into the
        reply: no copy and no allocation per entry; rsbus_msg_field(msg, "name", &len) finds one. A DLQ
        entry's msg->fields (rsbus_dlq_list) are the original fields, without the dlq_* ones.
        config.type_field, id_field, data_field (default "type", "id", "data") name the fields consuming
        reads as type, event id (dedupe uses it) and payload, e.g. "event_type", "event_id", "payload"
        for eventsource-py's layout, or id_field "_watermill_message_uuid" and data_field "payload" for
        Watermill's. Without accept_foreign the rules above apply with these names. With
        accept_foreign = 1 every entry reaches the handlers except one of more than 256 fields and, on a
        tenant-bound bus, one of another tenant: type is its type field when that is valid, else ""
        (matched only by the pattern "*"); data is its data field as it is (not validated: any bytes,
        any size the reply bound allows), or NULL with data_len 0; an id, ts, v, key, ... that rsbus
        would refuse is left out (NULL, 0 or 1) and stays readable in msg->fields. Retries, claims,
        dead letters and dedupe work as for rsbus's own entries; a schema registered for a type still
        applies. rsbus_publish_fields writes exactly the fields given (another system's layout), and
        rsbus_event.extra adds fields after rsbus's own.

    JSON
        rsbus_json_validate: strict RFC 8259 (UTF-8 checked, no recursion, depth at most
        RSBUS_JSON_MAX_DEPTH), reports the byte offset where the text stopped being valid.
        rsbus_json_get(s, n, "items.0.sku" or "items[0].sku", &v) gives a slice of the text;
        rsbus_jval_* convert it. The writer (rsbus_jw_*) writes into a fixed buffer or a growing one;
        once anything goes wrong it stays failed and rsbus_jw_result returns NULL, so check once at
        the end.

    KEY LAYOUT
        Every key of a stream K is K or "{K}:<suffix>": the dead letters "{K}:dlq", dedupe marks
        "{K}:dedupe:<group>:<event id>", the partition record "{K}:meta". The braces are a Redis Cluster
        hash tag, so all of them hash to K's slot and every MULTI/EXEC rsbus sends stays in one slot, in
        every mode (standalone included). K is config.stream, "tenant:<t>:<stream>" on a tenant-bound bus,
        or a partition's stream "<stream>:p<i>". Stream, group and consumer names with '{' or '}' are
        RSBUS_E_ARG, naming the field (tenants cannot hold them anyway). rsbus_key_slot(key, len) gives a
        key's slot as Redis computes it (CRC16-XMODEM of the key or of its first non-empty {tag}, mod
        16384). An unpartitioned bus reads "{K}:meta" at open (HGET; a user not allowed to is let through)
        and refuses a stream that is partitioned.

    PARTITIONS (config.partitions, RSBUS_PARTITIONS)
        N >= 2 (at most 256) makes the stream K the N streams "K:p0" .. "K:p<N-1>". On a Redis Cluster they
        hash to different slots and spread over the masters; on one server they cost little and gain
        nothing. 0 or 1: one stream, as before.
        Routing: an event goes to partition rsbus_key_slot(key) % N of its key, else of its event id
        (an event published twice with one id lands in one partition). rsbus_publish_fields routes by its
        key argument, else by the bus's id field, else to partition 0. Order holds within a partition,
        so per key; events of different keys have no order between them.
        The count is pinned: the first rsbus_open writes "{K}:meta" (HSETNX of the field "partitions");
        opening with another count, or with 0/1 while the record says N >= 2, fails with RSBUS_E_ARG
        naming both numbers ("rsbus_config.partitions: 4, but stream orders has 3 partitions (pinned in
        {orders}:meta)"). A user that opens a partitioned bus needs HSETNX and HGET on it.
        Publishing: rsbus_publish is one XADD to the event's partition. rsbus_publish_batch sends one
        MULTI/EXEC per partition the batch touches, all in one round trip (per server); each partition's
        part is all or none. When one partition fails (WRONGTYPE, OOM) the result is the first error and
        stream_ids[i] is "" for exactly the events that were not added; the others are in Redis with
        their ids filled (stats count them as published). After a lost connection or a timeout, ""
        means "not known to be added", as for any publish then. A spooled event keeps the
        partition it was routed to (its spool record says which) and is sent there.
        Consuming: rsbus_open creates the group on every partition, and every consumer reads all of
        them. rsbus_poll reads up to batch_size entries from each partition and returns as soon as any
        has entries, within its timeout: on one server that is one XREADGROUP naming every partition's
        stream, so a poll is one round trip whatever N is; rsbus_run reads ahead the same way. A batch
        handles the entries of each partition in their order; acknowledgements, retries, claims
        (rsbus_claim: up to max_count from each partition), dead letters and dedupe marks happen in the
        entry's own partition. msg->partition is its index and msg->stream its partition's key.
        Dead letters: partition i's are in "{K:p<i>}:dlq". rsbus_dlq_list merges all partitions oldest
        first (by entry id, then partition) and names each "p<i>/<ms-seq>"; that id is what after_id,
        rsbus_dlq_replay (which re-adds the event to partition i, replay_of that id) and rsbusctl take.
        A bare "<ms-seq>" after_id means after it in every partition; replay needs the p<i>/ form.
        rsbus_dlq_purge cuts every partition's.
        Numbers: rsbus_stream_info_get and rsbus_stream_snapshot sum length, dlq_length and entries_added
        (first_id the oldest, last_id the newest of any partition; a partition not created yet counts as
        empty); group numbers sum pending, entries_read and lag (-1 when any partition cannot tell) and
        report the largest consumers of any partition; rsbus_consumers_list sums a consumer's pending over
        the partitions; rsbus_health_check asks every partition in one round trip and is the worst of
        them, each finding prefixed "partition i (key): "; rsbus_metrics_text adds, beside each total,
        series with a partition="i" label (stream and DLQ length, this bus's group's lag and pending);
        rsbus_partitions_list gives each partition's key, slot, server, length, DLQ length, pending and
        lag. rsbus_group_rewind and rsbus_consumers_gc act on every partition; rsbus_trim and rsbus_run's
        trimming trim each partition on its own.
        History: rsbus_replay_range reads every partition a page (batch_size) at a time and calls fn in
        stream id order across them (at each round trip, up to the lowest last id of the full pages);
        rsbus_tail reads every partition after last_id in one XREAD and calls fn in id order, last_id
        becoming the newest id shown (an entry added to another partition afterwards within that same
        millisecond, with a lower sequence number, is not shown: tail is for watching).
        Cost: one XREADGROUP for all partitions on one server (make bench, W9, measures the rest).

    LIMITS
        batch_size 1..10000; stream names 1..200 bytes, group and consumer names 1..127, printable
        ASCII without spaces or braces (they appear in log lines and key names); partitions 0..256; 256 field pairs per consumed entry, id 47
        bytes, key/src/tenant/corr/trace 1024 bytes each (longer ones are malformed); payloads up to
        max_event_bytes (default 1 MiB, at most 512 MiB). A reply bigger than max(2 * max_event_bytes *
        batch_size * partitions, 16 MiB) + 8 MiB is cut off (RSBUS_E_PROTOCOL) and the reads after it take one
        entry at a time, so an oversized entry within that bound still reaches the DLQ; one beyond it
        cannot be read by this bus (raise max_event_bytes).
*/
#ifndef RSBUS_H_INCLUDED
#define RSBUS_H_INCLUDED

/* The implementation needs POSIX (clock_gettime, poll, sendmsg). Under -std=c99/c11 it asks for it here
   when rsbus.h comes before any libc header; after one, it is too late and >>implementation says so. */
#if defined(RSBUS_IMPLEMENTATION) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && \
    !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) && !defined(_FEATURES_H) && !defined(__cplusplus)
#  define _POSIX_C_SOURCE 200809L
#endif

#define RSBUS_VERSION_MAJOR 0
#define RSBUS_VERSION_MINOR 1
#define RSBUS_VERSION_PATCH 0
#define RSBUS_VERSION_STRING "0.1.0"

/* RSBUS_API: how public functions are declared (default: extern).
   RSBUS_STATIC: every function static, for a private copy in one .c file. */
#ifndef RSBUS_API
#  ifdef RSBUS_STATIC
#    if defined(__GNUC__) || defined(__clang__)
#      define RSBUS_API static __attribute__((unused))
#    else
#      define RSBUS_API static
#    endif
#  else
#    define RSBUS_API extern
#  endif
#endif

#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- results and errors ----------------------------------------------------------------- */

typedef enum rsbus_result {
    RSBUS_OK         =   0,
    RSBUS_E_ARG      =  -1,  /* invalid argument, configuration or event */
    RSBUS_E_NOMEM    =  -2,
    RSBUS_E_IO       =  -3,  /* cannot reach Redis: refused, reset, closed */
    RSBUS_E_TIMEOUT  =  -4,
    RSBUS_E_AUTH     =  -5,  /* AUTH/ACL refused (NOAUTH, WRONGPASS, NOPERM) */
    RSBUS_E_TLS      =  -6,  /* TLS required but unavailable, or handshake failed */
    RSBUS_E_REDIS    =  -7,  /* Redis answered with another error */
    RSBUS_E_PROTOCOL =  -8,  /* a reply of unexpected shape */
    RSBUS_E_JSON     =  -9,  /* malformed JSON */
    RSBUS_E_NOTFOUND = -10,
    RSBUS_E_REPLICAS = -11   /* written to the master, but fewer than publish_wait_replicas replicas confirmed
                                it in time: a failover can lose it; the stream ids are filled */
} rsbus_result;

typedef struct rsbus_error { rsbus_result code; char msg[256]; } rsbus_error;
typedef struct rsbus rsbus;     /* opaque; one per thread */

RSBUS_API const char *rsbus_result_str(rsbus_result r);  /* "RSBUS_E_IO", ...; static string */
RSBUS_API const char *rsbus_errmsg(const rsbus *bus);    /* last error on this bus, "" if none; owned by the bus */

/* ---- opening a bus ---------------------------------------------------------------------- */

typedef struct rsbus_allocator {
    void *(*alloc_fn)(void *user, size_t size);
    void *(*realloc_fn)(void *user, void *ptr, size_t old_size, size_t new_size);
    void  (*free_fn)(void *user, void *ptr, size_t size);
    void  *user;
} rsbus_allocator;  /* all NULL: malloc/realloc/free; all three or none */

typedef enum rsbus_log_level { RSBUS_LOG_DEFAULT = 0, RSBUS_LOG_ERROR = 1, RSBUS_LOG_WARN = 2,
                               RSBUS_LOG_INFO = 3, RSBUS_LOG_DEBUG = 4 } rsbus_log_level;

typedef enum rsbus_trim_policy {
    RSBUS_TRIM_MAXLEN = 0,        /* XADD MAXLEN ~ max_len: a memory bound; can drop entries a slow group has not read */
    RSBUS_TRIM_ACKED  = 1         /* trim only what every group has acknowledged: no loss (see TRIMMING) */
} rsbus_trim_policy;

typedef struct rsbus_config {
    const char *url;              /* redis://[user:pass@]host[:port][/db], unix:///path[?db=N&user=..&password=..],
                                     rediss://...[?ca=FILE&capath=DIR&cert=FILE&key=FILE&sni=NAME&verify=0|1]
                                     default: redis://127.0.0.1:6379 */
    const char *stream;           /* stream key; default "rsbus:events" */
    const char *group;            /* consumer group; default "default" */
    const char *consumer;         /* consumer name; default "<hostname>-<pid>-<random>" */
    const char *group_start;      /* where a newly created group starts: "$" (default) or "0" or an id */
    const char *tenant;           /* optional: bind the bus to one tenant (see TENANTS) */
    int64_t max_len;              /* XADD MAXLEN ~ bound; default 100000; negative: never trim */
    int64_t dlq_max_len;          /* MAXLEN ~ bound of the dead-letter stream; default 10000; negative: never trim */
    int     batch_size;           /* XREADGROUP COUNT; default 100 */
    int     block_ms;             /* XREADGROUP BLOCK used by rsbus_run; default 5000 */
    int     max_retries;          /* failures retried before the DLQ; default 3 (so at most 4 attempts);
                                     negative: 0 retries */
    int     retry_backoff_ms;     /* wait before the first retry, doubling per attempt; default 1000 */
    int     retry_backoff_max_ms; /* cap of that wait; default 60000 */
    int     claim_idle_ms;        /* take over another consumer's entry idle this long; default 60000 */
    int     claim_interval_ms;    /* how often rsbus_run claims; default 5000 */
    int     connect_timeout_ms;   /* default 5000 */
    int     io_timeout_ms;        /* default 5000 (BLOCK time is added on reads) */
    int     require_tls;          /* refuse any url that is not rediss:// */
    int     publish_only;         /* 1: rsbus_open creates no group; consume calls fail with RSBUS_E_ARG */
    size_t  max_event_bytes;      /* largest payload accepted; default 1 MiB */
    rsbus_allocator allocator;
    void  (*log)(void *user, rsbus_log_level level, const char *msg);  /* default: none */
    void   *log_user;
    rsbus_log_level log_level;    /* 0: RSBUS_LOG_WARN */
    /* beyond delivery (see IDEMPOTENCY, SPOOL) */
    int64_t     dedupe_ttl_ms;    /* > 0: the group remembers handled event ids this long and skips repeats
                                     (IDEMPOTENT CONSUMERS) */
    const char *spool_path;       /* set: a publish that cannot reach Redis is appended to this file
                                     (OFFLINE SPOOL); created 0600, one bus per file */
    int64_t     spool_max_bytes;  /* bound of the spool file; default 64 MiB, at least 4096 */
    int         spool_fsync;      /* 0: fsync every record (default); 1: leave it to the OS */
    rsbus_trim_policy trim_policy;/* RSBUS_TRIM_MAXLEN (default) or RSBUS_TRIM_ACKED, the choice for no loss */
    /* streams other programs write (see WIRE FORMAT, FOREIGN ENTRIES) */
    int         accept_foreign;   /* 1: entries that lack rsbus's fields (or hold values rsbus would refuse) reach
                                     the handlers instead of the DLQ; type "" when the entry has no valid type */
    const char *type_field;       /* the field consuming reads the type from; default "type" */
    const char *id_field;         /* the field consuming reads the event id from (and dedupes by); default "id" */
    const char *data_field;       /* the field consuming reads the payload from; default "data". Each of the three:
                                     1..128 bytes of printable ASCII without spaces, distinct, none of rsbus's
                                     other field names; publishing still writes type, id and data */
    /* outgrowing one stream (see PARTITIONS) */
    int         partitions;       /* 0 or 1: one stream. N >= 2 (at most 256): the stream is N streams
                                     "<stream>:p0" .. "<stream>:p<N-1>", an event going to the one its key
                                     (else its event id) hashes to; the count is pinned in Redis */
    /* replicated publishing (see FAILOVER) */
    int         publish_wait_replicas;  /* 0: off (default). n > 0: every XADD or MULTI/EXEC that publishes (publish,
                                           batch, fields, spool sending, the DLQ move) is followed in the same round
                                           trip by WAIT n publish_wait_ms; fewer confirmations: RSBUS_E_REPLICAS */
    int         publish_wait_ms;  /* how long WAIT waits for the replicas; default 100; below io_timeout_ms */
} rsbus_config;

RSBUS_API rsbus_result rsbus_config_from_env(rsbus_config *cfg, const char *prefix, rsbus_error *err);
             /* prefix NULL: "RSBUS_". Reads PREFIX + FIELD in upper case for each scalar field
                (RSBUS_URL, RSBUS_STREAM, RSBUS_BATCH_SIZE, ...); unset variables leave the field as it was;
                a bad value fails with RSBUS_E_ARG naming the variable. Strings point into the environment. */
RSBUS_API rsbus *rsbus_open(const rsbus_config *cfg, rsbus_error *err);
             /* connects, authenticates, selects the db, creates the group (MKSTREAM) if missing;
                blocks up to connect_timeout_ms + a few io_timeout_ms; NULL on failure (err says why) */
RSBUS_API void   rsbus_close(rsbus *bus);   /* NULL is a no-op; frees everything the bus owns */

/* ---- publishing ------------------------------------------------------------------------- */

#define RSBUS_ID_SIZE 48          /* fits any stream id "ms-seq" and any event id, with the NUL */

/* One field of a stream entry, binary-safe. Consumed: points into the reply (valid during the callback
   only), and name and value are each followed by a NUL that is not part of them. Published: name_len 0
   means strlen(name), value_len 0 means strlen(value) (value NULL: the empty value). */
typedef struct rsbus_field { const char *name; size_t name_len; const char *value; size_t value_len; } rsbus_field;

typedef struct rsbus_event {
    const char *type;             /* required: 1..128 bytes of [A-Za-z0-9._:-] */
    const char *data;             /* the payload: one JSON value; NULL means {} ; validated before sending */
    size_t      data_len;         /* 0: strlen(data) */
    const char *id;               /* event id, for idempotency; NULL: 32 random hex digits are generated */
    const char *key;              /* ordering key (optional) */
    const char *source, *tenant, *correlation_id, *traceparent;   /* optional */
    int         version;          /* payload schema version; 0 means 1 */
    int64_t     ts_ms;            /* 0: now */
    const rsbus_field *extra;     /* more fields, written after rsbus's own (what another system's consumers
                                     read); names 1..1024 bytes, distinct, none of rsbus's field names
                                     (type id ts v data key src tenant corr trace replay_of replay_for, the
                                     bus's type_field/id_field/data_field, the dlq_* fields); values together
                                     at most max_event_bytes */
    size_t      extra_count;      /* 0..244 (so that the entry, replayed from the DLQ too, stays within the
                                     256 fields a consumer reads) */
} rsbus_event;

RSBUS_API rsbus_result rsbus_publish(rsbus *bus, const rsbus_event *ev, char stream_id[RSBUS_ID_SIZE]);
             /* one XADD; blocks up to io_timeout_ms (plus a reconnect within connect_timeout_ms) */
RSBUS_API rsbus_result rsbus_publish_batch(rsbus *bus, const rsbus_event *evs, size_t n,
                                           char (*stream_ids)[RSBUS_ID_SIZE]);
             /* one round trip (MULTI/EXEC); all or none; ids in order. Partitioned: all or none per
                partition, ids "" for the events not added (see PARTITIONS) */
RSBUS_API rsbus_result rsbus_publish_fields(rsbus *bus, const char *key, const rsbus_field *fields, size_t n,
                                            char stream_id[RSBUS_ID_SIZE]);
             /* one XADD of exactly these n fields (1..256, in order; names 1..1024 bytes, values together at
                most max_event_bytes; binary-safe), for a stream whose consumers expect another layout; with the
                bus's trimming, spool and tenant key. Nothing is added (no type, id or ts): on a tenant-bound
                bus include "tenant" (a different tenant is RSBUS_E_ARG) if rsbus consumers must accept it.
                key (may be NULL, 1..1024 bytes) is the ordering key: it picks the partition (see
                PARTITIONS). Blocks like rsbus_publish. */

/* ---- consuming -------------------------------------------------------------------------- */

#define RSBUS_REASON_SIZE 256

typedef struct rsbus_msg {
    const char *stream, *stream_id;      /* where it came from, "ms-seq" */
    const char *type, *id, *key, *source, *tenant, *correlation_id, *traceparent, *replay_of;
    const char *data; size_t data_len;   /* the JSON payload, not copied */
    int     version;
    int64_t ts_ms;
    int64_t deliveries;                  /* 1 on the first delivery */
    char   *reason;                      /* a handler may write why it failed here (RSBUS_REASON_SIZE bytes);
                                            it becomes dlq_error */
    const rsbus_field *fields;           /* every field of the entry as stored, in order, rsbus's own included,
                                            binary-safe, pointing into the reply (not copied) */
    size_t  field_count;                 /* at most 256 */
    int     partition;                   /* the partition it came from (0 on an unpartitioned stream) */
} rsbus_msg;                             /* valid only during the handler call */

RSBUS_API const char *rsbus_msg_field(const rsbus_msg *m, const char *name, size_t *len);
             /* the value of the entry's first field called name (and its length in *len, which may be NULL),
                or NULL when there is none; points into the message; no I/O */

typedef enum rsbus_verdict { RSBUS_ACK = 0, RSBUS_RETRY = 1, RSBUS_DEAD = 2 } rsbus_verdict;
typedef rsbus_verdict (*rsbus_handler_fn)(const rsbus_msg *msg, void *user);

RSBUS_API int          rsbus_subscribe(rsbus *bus, const char *pattern, rsbus_handler_fn fn, void *user);
             /* pattern: an exact type, "*" for every type, or a prefix such as "order.*";
                returns a token > 0, or a negative rsbus_result */
RSBUS_API rsbus_result rsbus_unsubscribe(rsbus *bus, int token);
             /* removes the handler of that token; RSBUS_E_NOTFOUND for a token that is not subscribed. No I/O. */

RSBUS_API int          rsbus_poll(rsbus *bus, int timeout_ms);
             /* one XREADGROUP of up to batch_size new entries (of each partition; timeout_ms <= 0: do not block), dispatch each
                to every matching handler, XACK those that succeeded; returns how many entries were disposed
                of (>= 0) or a negative rsbus_result. Blocks up to timeout_ms + io_timeout_ms. */
RSBUS_API rsbus_result rsbus_run(rsbus *bus, volatile sig_atomic_t *stop);
             /* poll, claim every claim_interval_ms, reconnect with backoff on I/O errors, until *stop
                becomes non-zero or rsbus_stop() is called; returns RSBUS_OK then. stop may be NULL.
                Keeps the next batch's read in flight while handlers run (see CONSUMING: reading ahead). */
RSBUS_API void         rsbus_stop(rsbus *bus);   /* safe from a handler and from a signal handler */

typedef struct rsbus_claim_stats { int64_t checked, claimed, handled, dead, deleted; } rsbus_claim_stats;
RSBUS_API rsbus_result rsbus_claim(rsbus *bus, int64_t min_idle_ms, size_t max_count, rsbus_claim_stats *out);
             /* take over pending entries of this group idle >= min_idle_ms (any consumer, this one too),
                send to the DLQ those already delivered more than max_retries times, dispatch the rest;
                'deleted' counts entries trimmed or deleted while pending. max_count 0: batch_size (both per
                partition on a partitioned stream). */

/* ---- dead letters ----------------------------------------------------------------------- */

typedef struct rsbus_dlq_entry {
    char dlq_id[RSBUS_ID_SIZE];
    rsbus_msg msg;                        /* the original event; fields NULL where it was malformed */
    const char *original_stream_id, *group, *consumer, *error;
    int64_t failed_at_ms, deliveries;
} rsbus_dlq_entry;
typedef struct rsbus_dlq_page { rsbus_dlq_entry *entries; size_t count; void *internal; } rsbus_dlq_page;

RSBUS_API rsbus_result rsbus_dlq_list(rsbus *bus, const char *after_id, size_t max, rsbus_dlq_page *page);
             /* oldest first, after_id NULL: from the oldest; free with rsbus_dlq_page_free */
RSBUS_API void         rsbus_dlq_page_free(rsbus *bus, rsbus_dlq_page *page);
             /* frees a page from rsbus_dlq_list (its entries and their strings) and zeroes it; NULL is fine */
RSBUS_API rsbus_result rsbus_dlq_replay(rsbus *bus, const char *dlq_id, char new_stream_id[RSBUS_ID_SIZE]);
             /* atomically re-add the event (same event id, replay_of, replay_for) and delete it from the DLQ;
                RSBUS_E_NOTFOUND if absent */
RSBUS_API rsbus_result rsbus_dlq_purge(rsbus *bus, int64_t before_ms, int64_t *removed);
             /* delete entries dead-lettered before that time (Redis's clock, epoch ms) */

/* ---- lag, health and numbers ------------------------------------------------------------ */

typedef struct rsbus_stream_info {
    int64_t length, dlq_length, groups, entries_added;
    char first_id[RSBUS_ID_SIZE], last_id[RSBUS_ID_SIZE];
} rsbus_stream_info;
typedef struct rsbus_group_info {
    char name[128];
    int64_t consumers, pending, entries_read;
    int64_t lag;                          /* entries not yet delivered to the group; -1 when Redis cannot tell */
    char last_delivered_id[RSBUS_ID_SIZE];
    int64_t oldest_idle_ms;               /* rsbus_stream_snapshot: ms since the oldest pending entry was last
                                             delivered (Redis's clock), 0 when none is pending; -1 from the
                                             other calls (they do not ask) */
} rsbus_group_info;

RSBUS_API rsbus_result rsbus_stream_info_get(rsbus *bus, rsbus_stream_info *out);
             /* one round trip (XINFO STREAM, XLEN of the DLQ; of every partition, summed); entries_added -1
                before Redis 7.0;
                RSBUS_E_NOTFOUND when the stream does not exist */
RSBUS_API rsbus_result rsbus_group_info_get(rsbus *bus, const char *group, rsbus_group_info *out);
             /* group NULL: this bus's group; RSBUS_E_NOTFOUND when there is no such group */
RSBUS_API rsbus_result rsbus_groups_list(rsbus *bus, rsbus_group_info *out, size_t max, size_t *count);
             /* every group of the stream (XINFO GROUPS), at most max of them into out; *count: all of
                them, even beyond max */
RSBUS_API rsbus_result rsbus_stream_snapshot(rsbus *bus, rsbus_stream_info *info, rsbus_group_info *groups,
                                             size_t max, size_t *count);
             /* the stream, its DLQ and up to max of its groups (with oldest_idle_ms) in one round trip;
                *count: all groups, even beyond max. RSBUS_E_NOTFOUND: no stream (info->dlq_length is
                still set). Blocks up to io_timeout_ms */

typedef enum rsbus_health { RSBUS_HEALTHY = 0, RSBUS_DEGRADED = 1, RSBUS_UNHEALTHY = 2 } rsbus_health;
typedef struct rsbus_server_info {
    char addr[300];               /* the server this bus reached: "host:port" (IPv6 in brackets) or the unix path */
    char role[16];                /* its ROLE: "master", "slave", ...; "" when ROLE was refused */
    int  replicas;                /* replicas connected to it and in sync (ROLE); -1 when unknown */
    int  sentinel;                /* 1: the master the sentinels of a redis+sentinel:// url named */
} rsbus_server_info;
RSBUS_API rsbus_result rsbus_server_info_get(rsbus *bus, rsbus_server_info *out);
             /* which server the bus is connected to and how many replicas it has: one round trip (ROLE) */
RSBUS_API rsbus_health rsbus_health_check(rsbus *bus, int64_t max_lag, char *why, size_t why_size);
             /* one round trip. UNHEALTHY: Redis unreachable or refusing PING; DEGRADED: this bus's group
                missing, its lag or pending above max_lag, the DLQ not empty, a maxmemory-policy that can
                evict the stream, or (asked with ROLE when publish_wait_replicas > 0 or on a sentinel url)
                fewer replicas in sync than publish_wait_replicas, or a server that is not a master; why
                (may be NULL) says which, "ok" when healthy, cut to fit why_size */

typedef struct rsbus_stats {
    uint64_t published, publish_errors, delivered, acked, retried, dead_lettered,
             malformed, unhandled, claimed, deleted_while_pending, reconnects, replayed;
    uint64_t deduped, spooled;    /* repeats skipped by dedupe; events written to the spool (published
                                     counts them when they are sent) */
    uint64_t trimmed_unread;      /* entries MAXLEN trimming removed before this bus's group read them */
    uint64_t trimmed;             /* entries removed by rsbus_trim and rsbus_run's trimming */
    uint64_t replica_shortfalls;  /* WAITs (publish_wait_replicas) answered by fewer replicas than asked: each
                                     is an RSBUS_E_REPLICAS, or a warning for spool sending and DLQ moves */
} rsbus_stats;
RSBUS_API void   rsbus_stats_get(const rsbus *bus, rsbus_stats *out);
             /* counters of this bus since rsbus_open (see OPERATING); a replay addressed to another group
                is counted in delivered only; deleted_while_pending entries are acknowledged, not acked */
RSBUS_API size_t rsbus_metrics_text(rsbus *bus, char *buf, size_t size);
             /* Prometheus text exposition; returns bytes needed without the NUL, like snprintf */

/* ---- key layout and partitions (see KEY LAYOUT, PARTITIONS in the manual) -------------------- */

RSBUS_API int rsbus_key_slot(const char *key, size_t len);
             /* the Redis Cluster slot of a key, 0..16383: CRC16 (XMODEM) of the key, or of what its first
                "{...}" holds when that is not empty, mod 16384; len 0: strlen(key). No I/O */
typedef struct rsbus_partition_info {
    int     index;
    char    key[256];             /* the partition's stream key */
    int     slot;                 /* rsbus_key_slot(key) */
    char    node[128];            /* "host:port" (or the unix socket path) of the server that holds it */
    int64_t length, dlq_length;
    int64_t pending, lag;         /* of this bus's group; lag -1 when Redis cannot tell (or no group) */
} rsbus_partition_info;
RSBUS_API rsbus_result rsbus_partitions_list(rsbus *bus, rsbus_partition_info *out, size_t max, size_t *count);
             /* one entry per partition (one, index 0, on an unpartitioned stream), at most max into out;
                *count: all of them, even beyond max. One round trip per server */

typedef int (*rsbus_replay_fn)(const rsbus_msg *msg, void *user);   /* return non-zero to stop */

/* ---- operating: consumers, tail, clock (see OPERATING in the manual) ------------------------ */

typedef struct rsbus_consumer_info {
    char name[128];
    int64_t pending;
    int64_t idle_ms;       /* since its last attempted read or claim, by Redis's clock */
    int64_t inactive_ms;   /* since its last successful one; -1 where Redis (before 7.2) does not say */
} rsbus_consumer_info;
RSBUS_API rsbus_result rsbus_consumers_list(rsbus *bus, const char *group, rsbus_consumer_info *out, size_t max,
                                            size_t *count);
             /* group NULL: this bus's group; *count: all consumers, even beyond max */
RSBUS_API rsbus_result rsbus_consumers_gc(rsbus *bus, const char *group, int64_t idle_ms, int64_t *removed);
             /* deletes consumers idle at least idle_ms (inactive on Redis 7.2+) that hold nothing pending,
                never this bus's own consumer; the pending check and the delete are one atomic script */
RSBUS_API int          rsbus_tail(rsbus *bus, char last_id[RSBUS_ID_SIZE], int timeout_ms, rsbus_replay_fn fn,
                                  void *user);
             /* reads up to batch_size entries after last_id without a group (XREAD; last_id "" or "$": only
                entries added from now on), blocking up to timeout_ms (<= 0: not at all); calls fn for each
                well-formed one; updates last_id; returns entries read (malformed ones too) or a negative result */
RSBUS_API rsbus_result rsbus_server_time_ms(rsbus *bus, int64_t *ms);   /* Redis's clock (TIME), epoch ms */
RSBUS_API rsbus_result rsbus_trim(rsbus *bus, int64_t *removed);
             /* trims the stream by the bus's trim_policy now: RSBUS_TRIM_ACKED removes the entries every
                group has acknowledged (nothing when there is no group), RSBUS_TRIM_MAXLEN applies
                MAXLEN ~ max_len. rsbus_run does this every claim_interval_ms (at least 1 s apart). */

/* ---- beyond delivery -------------------------------------------------------------------- */

#define RSBUS_SPOOLED 1           /* a success result: the event is in the local spool, not yet in Redis */
             /* rsbus_publish and rsbus_publish_batch return it on a bus with spool_path when Redis could
                not be reached; the stream ids are "" then. It is >= 0: test failures with r < 0. */
RSBUS_API rsbus_result rsbus_spool_flush(rsbus *bus, size_t *sent);
             /* sends the spooled events in order (MULTI/EXEC chunks of up to 1000); blocks while it sends;
                RSBUS_OK with *sent 0 when nothing is spooled or the bus has no spool; on failure what was
                sent stays sent and the rest stays spooled. rsbus_publish and rsbus_run also do this. */
RSBUS_API rsbus_result rsbus_spool_pending(rsbus *bus, size_t *events, size_t *bytes);
             /* events in the spool not yet sent, and their bytes in the file; no I/O */
RSBUS_API rsbus_result rsbus_schema_register(rsbus *bus, const char *type, int version, const char *schema_json);
             /* schema: {"field": "string"|"number"|"integer"|"boolean"|"object"|"array"|"any", ...}
                with nested objects as nested schemas and ["T"] an array whose elements are all T; a
                field name ending in "?" is optional (absent or null); other fields are allowed. From
                now on publish refuses a (type, version) event that does not match (RSBUS_E_ARG naming
                the field's path) and consume dead-letters one (malformed). version 0 means 1;
                registering again replaces; the text is compiled, not kept. No I/O. See SCHEMAS. */
RSBUS_API rsbus_result rsbus_replay_range(rsbus *bus, const char *from_id, const char *to_id,
                                          rsbus_replay_fn fn, void *user);
             /* calls fn for each well-formed entry from from_id to to_id, both included (XRANGE, batch_size
                a round trip): "-" and "+" for the ends (NULL too), stream ids, or a bare number of
                milliseconds covering that whole millisecond; no group, nothing acknowledged, schemas not
                checked. RSBUS_OK also when fn stopped it by returning non-zero. */
RSBUS_API rsbus_result rsbus_group_rewind(rsbus *bus, const char *group, const char *id);
             /* moves a group's position (XGROUP SETID): id "$" (the end), "0" (the start) or a stream id;
                group NULL: this bus's group; its pending entries stay pending; RSBUS_E_NOTFOUND when the
                group or the stream does not exist */

/* ---- JSON ------------------------------------------------------------------------------- */

typedef enum rsbus_jtype { RSBUS_JNONE, RSBUS_JNULL, RSBUS_JBOOL, RSBUS_JNUMBER,
                           RSBUS_JSTRING, RSBUS_JARRAY, RSBUS_JOBJECT } rsbus_jtype;

/* The writer lives wherever the caller puts it (usually the stack). Its fields are private: set them
   only through rsbus_jw_init / rsbus_jw_init_alloc. The layout depends on no macro. */
typedef struct rsbus_jw {
    char   *buf;                 /* the text: the caller's buffer, or one owned by the writer */
    size_t  len;                 /* bytes written so far, without the NUL */
    size_t  cap;                 /* bytes in buf, the NUL included */
    rsbus_allocator alloc;       /* growing writer: where buf comes from (all NULL: libc) */
    int     growing;             /* 1: buf grows through alloc; 0: a fixed buffer that never grows */
    int     failed;              /* set by any error; never cleared; rsbus_jw_result then returns NULL */
    unsigned depth;              /* containers open, at most 512 */
    unsigned char comma;         /* 1: the current container already has an element, the next needs ',' */
    unsigned char after_key;     /* 1: a key was written, its value comes next */
    unsigned char done;          /* 1: the top-level value is complete */
    unsigned char spare;         /* unused, keeps the layout explicit */
    unsigned char stack[64];     /* one bit per open container (512 levels): 1 object, 0 array */
} rsbus_jw;

RSBUS_API void rsbus_jw_init(rsbus_jw *w, char *buf, size_t size);       /* fixed buffer, never grows */
RSBUS_API void rsbus_jw_init_alloc(rsbus_jw *w, const rsbus_allocator *a); /* growing; NULL: malloc */
RSBUS_API void rsbus_jw_obj(rsbus_jw *w);
RSBUS_API void rsbus_jw_obj_end(rsbus_jw *w);
RSBUS_API void rsbus_jw_arr(rsbus_jw *w);
RSBUS_API void rsbus_jw_arr_end(rsbus_jw *w);
RSBUS_API void rsbus_jw_key(rsbus_jw *w, const char *key);
RSBUS_API void rsbus_jw_str(rsbus_jw *w, const char *s);
RSBUS_API void rsbus_jw_strn(rsbus_jw *w, const char *s, size_t n);
RSBUS_API void rsbus_jw_int(rsbus_jw *w, int64_t v);
RSBUS_API void rsbus_jw_num(rsbus_jw *w, double v);
RSBUS_API void rsbus_jw_bool(rsbus_jw *w, int v);
RSBUS_API void rsbus_jw_null(rsbus_jw *w);
RSBUS_API const char *rsbus_jw_result(rsbus_jw *w, size_t *len);
             /* NUL-terminated text owned by the writer, or NULL if anything went wrong */
RSBUS_API void rsbus_jw_free(rsbus_jw *w);

RSBUS_API rsbus_result rsbus_json_validate(const char *s, size_t n, size_t *error_offset);
typedef struct rsbus_jval { rsbus_jtype type; const char *ptr; size_t len; } rsbus_jval;  /* a slice of the text */
RSBUS_API rsbus_result rsbus_json_get(const char *s, size_t n, const char *path, rsbus_jval *out);
RSBUS_API rsbus_result rsbus_jval_str(const rsbus_jval *v, char *out, size_t size, size_t *len);
RSBUS_API rsbus_result rsbus_jval_int(const rsbus_jval *v, int64_t *out);
RSBUS_API rsbus_result rsbus_jval_num(const rsbus_jval *v, double *out);
RSBUS_API rsbus_result rsbus_jval_bool(const rsbus_jval *v, int *out);

#ifdef __cplusplus
}
#endif
#endif /* RSBUS_H_INCLUDED */

#if defined(RSBUS_IMPLEMENTATION) && !defined(RSBUS_IMPLEMENTATION_INCLUDED)
#define RSBUS_IMPLEMENTATION_INCLUDED
/* ==== implementation ======================================================================== */

/* ---- implementation-only config macros ---- */
#ifndef RSBUS_ASSERT
#  include <assert.h>
#  define RSBUS_ASSERT(c) assert(c)
#endif
#ifndef RSBUS_JSON_MAX_DEPTH
#  define RSBUS_JSON_MAX_DEPTH 512
#endif
#if RSBUS_JSON_MAX_DEPTH < 1 || RSBUS_JSON_MAX_DEPTH > 512
#  error "RSBUS_JSON_MAX_DEPTH must be between 1 and 512 (the writer's nesting stack holds 512 levels)"
#endif

#if defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) \
    && !defined(_DEFAULT_SOURCE) && !defined(__cplusplus)
#  error "rsbus needs POSIX: define _POSIX_C_SOURCE 200809L before the first include in the file that defines RSBUS_IMPLEMENTATION"
#endif

/* hiredis 1.x's own headers (sds.h) do not pass -Wconversion: their warnings are not ours */
#if defined(__GNUC__) || defined(__clang__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wconversion"
#  pragma GCC diagnostic ignored "-Wsign-conversion"
#endif
#include <hiredis/hiredis.h>
#ifdef RSBUS_TLS
#  if HIREDIS_MAJOR < 1
#    error "RSBUS_TLS needs hiredis 1.x built with TLS (hiredis_ssl); this hiredis is older"
#  endif
#  include <hiredis/hiredis_ssl.h>
#  include <openssl/ssl.h>
#  include <openssl/err.h>
#  include <openssl/x509v3.h>
#  include <signal.h>
#  include <arpa/inet.h>
#  include <netinet/in.h>
#endif
#if defined(__GNUC__) || defined(__clang__)
#  pragma GCC diagnostic pop
#endif
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>
#ifndef RSBUS_NO_MEM
#  include <pthread.h>   /* mem://: link with -pthread where libc does not hold POSIX threads (glibc < 2.34) */
#endif

/* >>private macros */
#if defined(__GNUC__) || defined(__clang__)
#  define RSBUS__PRIVATE static __attribute__((unused))
#  define RSBUS__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define RSBUS__PRIVATE static
#  define RSBUS__PRINTF(f, a)
#endif
#ifdef RSBUS_STATIC
#  define RSBUS__PUBLIC static
#else
#  define RSBUS__PUBLIC
#endif
#define RSBUS__DEF(v, d) ((v) ? (v) : (d))
#define RSBUS__MIN(a, b) ((a) < (b) ? (a) : (b))
#define RSBUS__MAX(a, b) ((a) > (b) ? (a) : (b))

/* >>memory */
/* Every allocation rsbus makes goes through these; 'a' may be all-NULL (libc). */
RSBUS__PRIVATE void *rsbus__alloc(const rsbus_allocator *a, size_t size) {
    if (size == 0) size = 1;
    if (a && a->alloc_fn) return a->alloc_fn(a->user, size);
    return malloc(size);
}
RSBUS__PRIVATE void *rsbus__realloc(const rsbus_allocator *a, void *p, size_t old_size, size_t new_size) {
    if (new_size == 0) new_size = 1;
    if (a && a->realloc_fn) return a->realloc_fn(a->user, p, old_size, new_size);
    (void)old_size;
    return realloc(p, new_size);
}
RSBUS__PRIVATE void rsbus__free(const rsbus_allocator *a, void *p, size_t size) {
    if (!p) return;
    if (a && a->free_fn) { a->free_fn(a->user, p, size); return; }
    (void)size;
    free(p);
}
/* The one growable array: room for at least 'need' elements of 'size' bytes in p (cap of them now), the
   capacity doubling from 'first'. Returns the array, moved or not, with *cap updated; NULL when out of
   memory or too large (p is then unchanged and still the caller's). */
RSBUS__PRIVATE void *rsbus__grow(const rsbus_allocator *a, void *p, size_t *cap, size_t need, size_t size, size_t first) {
    size_t c = *cap ? *cap : first;
    void *np;
    if (need <= *cap) return p;
    while (c < need) {
        if (c > SIZE_MAX / 2 / size) return NULL;
        c *= 2;
    }
    np = p ? rsbus__realloc(a, p, *cap * size, c * size) : rsbus__alloc(a, c * size);
    if (np) *cap = c;
    return np;
}
/* 1 when the allocator is usable: all three functions or none */
RSBUS__PRIVATE int rsbus__allocator_ok(const rsbus_allocator *a) {
    int n = (a->alloc_fn != NULL) + (a->realloc_fn != NULL) + (a->free_fn != NULL);
    return n == 0 || n == 3;
}
/* >>json writer */

/* Byte classes inside a JSON string, shared by the writer and the reader:
   0 plain ASCII (copied as is), 1 '"', 2 '\\', 3 control character (< 0x20), 4 never valid in UTF-8
   (continuation byte where a character starts, C0/C1 overlong leads, F5..FF), 5..11 UTF-8 lead bytes
   whose second byte range and length are in rsbus__json_u8_len/_lo/_hi (RFC 3629 table 3.9). */
RSBUS__PRIVATE const unsigned char rsbus__json_class[256] = {
    3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,  /* 0_ */
    3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,  /* 1_ */
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,  /* 2_ */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,  /* 3_ */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,  /* 4_ */
    0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,  /* 5_ */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,  /* 6_ */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,  /* 7_ */
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,  /* 8_ */
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,  /* 9_ */
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,  /* A_ */
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,  /* B_ */
    4,4,5,5,5,5,5,5,5,5,5,5,5,5,5,5,  /* C_ */
    5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,  /* D_ */
    6,7,7,7,7,7,7,7,7,7,7,7,7,8,7,7,  /* E_ */
    9,10,10,10,11,4,4,4,4,4,4,4,4,4,4,4,  /* F_ */
};
/* indexed by class - 5: C2..DF, E0, E1..EC EE..EF, ED, F0, F1..F3, F4 */
RSBUS__PRIVATE const unsigned char rsbus__json_u8_len[7] = { 2, 3, 3, 3, 4, 4, 4 };
RSBUS__PRIVATE const unsigned char rsbus__json_u8_lo[7] = { 0x80, 0xA0, 0x80, 0x80, 0x90, 0x80, 0x80 };
RSBUS__PRIVATE const unsigned char rsbus__json_u8_hi[7] = { 0xBF, 0xBF, 0xBF, 0x9F, 0xBF, 0xBF, 0x8F };

#define RSBUS__JW_MAX_DEPTH 512u   /* the size of rsbus_jw.stack in bits */

/* The reader's hot functions are inlined into their callers where the compiler allows it: the copy of
   rsbus__json_parse in rsbus_json_validate (g == NULL) then loses every test of the path matcher. */
#if defined(__GNUC__) || defined(__clang__)
#  define RSBUS__JSON_INLINE __attribute__((always_inline)) __inline__
#else
#  define RSBUS__JSON_INLINE
#endif

/* One UTF-8 sequence at p (lead byte of class cls >= 5), avail bytes readable. Returns its length, or 0
   with *bad = offset of the first byte that cannot belong to it (avail when the text ends first). */
RSBUS__PRIVATE size_t rsbus__json_u8(const unsigned char *p, size_t avail, unsigned cls, size_t *bad) {
    size_t len = rsbus__json_u8_len[cls - 5], i;
    if (avail < 2) { *bad = avail; return 0; }
    if (p[1] < rsbus__json_u8_lo[cls - 5] || p[1] > rsbus__json_u8_hi[cls - 5]) { *bad = 1; return 0; }
    for (i = 2; i < len; i++) {
        if (i >= avail) { *bad = avail; return 0; }
        if ((p[i] & 0xC0) != 0x80) { *bad = i; return 0; }
    }
    return len;
}

/* Room for n more bytes plus the NUL; grows a growing writer, fails a fixed one. */
RSBUS__PRIVATE int rsbus__jw_reserve(rsbus_jw *w, size_t n) {
    char *nb;
    if (w->failed) return 0;
    if (w->cap > w->len && n < w->cap - w->len) return 1;
    if (!w->growing || n > SIZE_MAX - 1 - w->len) { w->failed = 1; return 0; }
    nb = (char *)rsbus__grow(&w->alloc, w->buf, &w->cap, w->len + n + 1, 1, 256);
    if (!nb) { w->failed = 1; return 0; }
    w->buf = nb;
    return 1;
}
RSBUS__PRIVATE void rsbus__jw_put(rsbus_jw *w, const char *s, size_t n) {
    if (n == 0 || !rsbus__jw_reserve(w, n)) return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}
RSBUS__PRIVATE void rsbus__jw_putc(rsbus_jw *w, char c) {
    if (!rsbus__jw_reserve(w, 1)) return;
    w->buf[w->len++] = c;
}
RSBUS__PRIVATE int rsbus__jw_top_is_obj(const rsbus_jw *w) {
    unsigned d = w->depth - 1;
    return (w->stack[d >> 3] >> (d & 7)) & 1;
}
/* Before any value: refuses a value where a key belongs or after the top-level value, writes the ','. */
RSBUS__PRIVATE int rsbus__jw_begin(rsbus_jw *w) {
    if (!w || w->failed) return 0;
    if (w->done) { w->failed = 1; return 0; }
    if (w->depth) {
        if (rsbus__jw_top_is_obj(w)) {
            if (!w->after_key) { w->failed = 1; return 0; }
            w->after_key = 0;
        } else if (w->comma) {
            rsbus__jw_putc(w, ',');
        }
    }
    return !w->failed;
}
/* After a complete value. */
RSBUS__PRIVATE void rsbus__jw_end(rsbus_jw *w) {
    if (w->depth) w->comma = 1;
    else w->done = 1;
}
/* A quoted, escaped string; invalid UTF-8 fails the writer. */
RSBUS__PRIVATE void rsbus__jw_string(rsbus_jw *w, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *e = p + n, *run = p;
    char esc[6];
    size_t bad, len;
    unsigned cls;
    rsbus__jw_putc(w, '"');
    while (p < e) {
        cls = rsbus__json_class[*p];
        if (cls == 0) { p++; continue; }
        if (cls >= 5) {
            len = rsbus__json_u8(p, (size_t)(e - p), cls, &bad);
            if (!len) { w->failed = 1; return; }
            p += len;
            continue;
        }
        if (cls == 4) { w->failed = 1; return; }
        rsbus__jw_put(w, (const char *)run, (size_t)(p - run));
        esc[0] = '\\';
        switch (*p) {
        case '"':  esc[1] = '"';  len = 2; break;
        case '\\': esc[1] = '\\'; len = 2; break;
        case '\b': esc[1] = 'b';  len = 2; break;
        case '\f': esc[1] = 'f';  len = 2; break;
        case '\n': esc[1] = 'n';  len = 2; break;
        case '\r': esc[1] = 'r';  len = 2; break;
        case '\t': esc[1] = 't';  len = 2; break;
        default:
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[*p >> 4]; esc[5] = hex[*p & 15];
            len = 6;
            break;
        }
        rsbus__jw_put(w, esc, len);
        run = ++p;
    }
    rsbus__jw_put(w, (const char *)run, (size_t)(p - run));
    rsbus__jw_putc(w, '"');
}

RSBUS__PUBLIC void rsbus_jw_init(rsbus_jw *w, char *buf, size_t size) {
    if (!w) return;
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = buf ? size : 0;
    if (!buf && size) w->failed = 1;
}

RSBUS__PUBLIC void rsbus_jw_init_alloc(rsbus_jw *w, const rsbus_allocator *a) {
    if (!w) return;
    memset(w, 0, sizeof *w);
    w->growing = 1;
    if (a) {
        if (!rsbus__allocator_ok(a)) { w->failed = 1; return; }
        w->alloc = *a;
    }
}

RSBUS__PRIVATE void rsbus__jw_open(rsbus_jw *w, unsigned obj, char c) {
    unsigned d;
    if (!rsbus__jw_begin(w)) return;
    if (w->depth >= RSBUS__JW_MAX_DEPTH) { w->failed = 1; return; }
    rsbus__jw_putc(w, c);
    if (w->failed) return;
    d = w->depth++;
    w->stack[d >> 3] = (unsigned char)((w->stack[d >> 3] & ~(1u << (d & 7))) | (obj << (d & 7)));
    w->comma = 0;
    w->after_key = 0;
}
RSBUS__PRIVATE void rsbus__jw_close(rsbus_jw *w, int obj, char c) {
    if (!w || w->failed) return;
    if (!w->depth || rsbus__jw_top_is_obj(w) != obj || w->after_key) { w->failed = 1; return; }
    rsbus__jw_putc(w, c);
    if (w->failed) return;
    w->depth--;
    rsbus__jw_end(w);
}
RSBUS__PUBLIC void rsbus_jw_obj(rsbus_jw *w) { rsbus__jw_open(w, 1, '{'); }
RSBUS__PUBLIC void rsbus_jw_obj_end(rsbus_jw *w) { rsbus__jw_close(w, 1, '}'); }
RSBUS__PUBLIC void rsbus_jw_arr(rsbus_jw *w) { rsbus__jw_open(w, 0, '['); }
RSBUS__PUBLIC void rsbus_jw_arr_end(rsbus_jw *w) { rsbus__jw_close(w, 0, ']'); }

RSBUS__PUBLIC void rsbus_jw_key(rsbus_jw *w, const char *key) {
    if (!w || w->failed) return;
    if (!key || !w->depth || !rsbus__jw_top_is_obj(w) || w->after_key) { w->failed = 1; return; }
    if (w->comma) rsbus__jw_putc(w, ',');
    rsbus__jw_string(w, key, strlen(key));
    rsbus__jw_putc(w, ':');
    w->after_key = 1;
    w->comma = 0;
}

RSBUS__PUBLIC void rsbus_jw_strn(rsbus_jw *w, const char *s, size_t n) {
    if (!w) return;
    if (!s && n) { w->failed = 1; return; }
    if (!rsbus__jw_begin(w)) return;
    rsbus__jw_string(w, s ? s : "", n);
    rsbus__jw_end(w);
}
RSBUS__PUBLIC void rsbus_jw_str(rsbus_jw *w, const char *s) {
    if (!w) return;
    if (!s) { w->failed = 1; return; }
    rsbus_jw_strn(w, s, strlen(s));
}

RSBUS__PUBLIC void rsbus_jw_int(rsbus_jw *w, int64_t v) {
    char tmp[24], *q = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (!rsbus__jw_begin(w)) return;
    do { *--q = (char)('0' + (int)(u % 10)); u /= 10; } while (u);
    if (v < 0) *--q = '-';
    rsbus__jw_put(w, q, (size_t)(tmp + sizeof tmp - q));
    rsbus__jw_end(w);
}

RSBUS__PRIVATE RSBUS__JSON_INLINE const unsigned char *rsbus__json_number(const unsigned char *p,
                                                                          const unsigned char *e,
                                                                          const unsigned char **err);

/* Doubles: the shortest of %.15g, %.16g, %.17g that reads back as the same double. snprintf and strtod
   both use the C locale's LC_NUMERIC, so the round trip is checked on the locale's own text and only then
   is its decimal separator (whatever bytes are not digits, signs or 'e') replaced by '.'. */
RSBUS__PUBLIC void rsbus_jw_num(rsbus_jw *w, double v) {
    char raw[64], txt[64];
    const unsigned char *end, *err;
    size_t i, o;
    int prec, k;
    if (!w || w->failed) return;
    if (isnan(v) || isinf(v)) { w->failed = 1; return; }
    if (!rsbus__jw_begin(w)) return;
    for (prec = 15; prec <= 17; prec++) {
        k = snprintf(raw, sizeof raw, "%.*g", prec, v);
        if (k <= 0 || (size_t)k >= sizeof raw) { w->failed = 1; return; }
        if (strtod(raw, NULL) == v) break;
    }
    for (i = o = 0; raw[i] && o < sizeof txt - 1;) {
        char c = raw[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E') {
            txt[o++] = c;
            i++;
        } else {
            txt[o++] = '.';
            while (raw[i] && !((raw[i] >= '0' && raw[i] <= '9') || raw[i] == '-' || raw[i] == '+'
                               || raw[i] == 'e' || raw[i] == 'E')) i++;
        }
    }
    end = rsbus__json_number((const unsigned char *)txt, (const unsigned char *)txt + o, &err);
    if (o == 0 || end != (const unsigned char *)txt + o) { w->failed = 1; return; }
    rsbus__jw_put(w, txt, o);
    rsbus__jw_end(w);
}

RSBUS__PUBLIC void rsbus_jw_bool(rsbus_jw *w, int v) {
    if (!rsbus__jw_begin(w)) return;
    if (v) rsbus__jw_put(w, "true", 4);
    else rsbus__jw_put(w, "false", 5);
    rsbus__jw_end(w);
}

RSBUS__PUBLIC void rsbus_jw_null(rsbus_jw *w) {
    if (!rsbus__jw_begin(w)) return;
    rsbus__jw_put(w, "null", 4);
    rsbus__jw_end(w);
}

RSBUS__PUBLIC const char *rsbus_jw_result(rsbus_jw *w, size_t *len) {
    if (len) *len = 0;
    if (!w || w->failed || w->depth || !w->done || !w->buf || w->len >= w->cap) return NULL;
    w->buf[w->len] = '\0';
    if (len) *len = w->len;
    return w->buf;
}

RSBUS__PUBLIC void rsbus_jw_free(rsbus_jw *w) {
    if (!w || !w->growing) return;
    rsbus__free(&w->alloc, w->buf, w->cap);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->failed = 1;
}

/* >>json reader */

/* A single pass over the text with an explicit stack of one bit per open container (1 object, 0 array),
   no recursion and no allocation. rsbus_json_get runs the same pass with a path matcher attached
   (rsbus__json_get), so a lookup validates the whole document too. */

#define RSBUS__JSON_WORDS ((RSBUS_JSON_MAX_DEPTH + 63) / 64)
#define RSBUS__JSON_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')
#define RSBUS__JSON_DIGIT(c) ((unsigned)((c) - '0') < 10u)
#define RSBUS__JSON_PLAIN(c) (rsbus__json_class[c] == 0)
/* whitespace is rare in event payloads: one compare when there is none */
#define RSBUS__JSON_SKIP_WS(p, e) \
    do { while ((p) < (e) && *(p) <= ' ' && RSBUS__JSON_WS(*(p))) (p)++; } while (0)

/* Runs of plain string bytes and of digits are scanned 8 bytes at a time (SWAR on a uint64_t loaded with
   memcpy: portable C99, no alignment or aliasing assumption, never a byte past e). The masks below set
   the high bit of each byte that ends the run. A byte >= 0x80 (which always ends it) is flagged by x
   itself; the per-byte sums on it may carry into the byte after it, whose flag is then meaningless,
   but no carry reaches an earlier byte and bytes below 0x80 carry nothing: the first flagged byte is
   exact, and so is whether there is one. */
#define RSBUS__J_ONES UINT64_C(0x0101010101010101)
#define RSBUS__J_HIGH UINT64_C(0x8080808080808080)
#define RSBUS__J_LOW7 UINT64_C(0x7F7F7F7F7F7F7F7F)
/* '"' (0x22), '\\' (0x5C), a control character (< 0x20) or a byte >= 0x80: the bytes of class != 0 */
#define RSBUS__JSON_SPECIAL8(x) \
    (((x) | ~((((x) ^ (RSBUS__J_ONES * 0x22)) + RSBUS__J_LOW7) & (((x) ^ (RSBUS__J_ONES * 0x5C)) + RSBUS__J_LOW7) \
              & ((x) + RSBUS__J_ONES * 0x60))) & RSBUS__J_HIGH)
/* not '0'..'9': below 0x30 (+ 0x50 leaves the high bit clear) or above 0x39 (+ 0x46 sets it) */
#define RSBUS__JSON_NONDIGIT8(x) \
    (((x) | ~((x) + RSBUS__J_ONES * 0x50) | ((x) + RSBUS__J_ONES * 0x46)) & RSBUS__J_HIGH)
#ifndef RSBUS__JSON_LE                      /* may be set to 0 to test the other path on a little-endian machine */
#  if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#    define RSBUS__JSON_LE 1
#  elif defined(_MSC_VER) && (defined(_M_IX86) || defined(_M_X64) || defined(_M_ARM64))
#    define RSBUS__JSON_LE 1
#  else
#    define RSBUS__JSON_LE 0
#  endif
#endif
/* Once the mask says the run ends among the 8 bytes at p, p gets to that byte in one of two ways:
   - SCAN8: one byte at a time. Where runs are the same from one document to the next (the keys of a
     schema, numbers) these branches are predicted and the CPU runs on ahead without waiting for data;
   - JUMP8: on a little-endian machine, straight to the lowest flagged byte (the index from a count of
     trailing zeros), no branch per byte: for string values, whose length varies from one event to the
     next, where a mispredicted branch would cost more than waiting for the mask. Elsewhere it is SCAN8.
   (Measured on event payloads: a branch per byte alone, as before, was slower on varied documents;
   JUMP8 alone was slower on a document seen again and again, as in a benchmark.) */
#define RSBUS__JSON_SCAN8(p, m, keep) do { while (keep(*(p))) (p)++; } while (0)
#if RSBUS__JSON_LE
#  if (defined(__GNUC__) || defined(__clang__)) && !defined(RSBUS__JSON_NO_BUILTIN)
#    define RSBUS__JSON_FIRST(m) ((unsigned)__builtin_ctzll(m) >> 3)
#  else
#    define RSBUS__JSON_FIRST(m) \
         ((size_t)((((((m) & (~(m) + 1)) >> 7) - 1) & RSBUS__J_ONES) * RSBUS__J_ONES >> 56))
#  endif
#  define RSBUS__JSON_JUMP8(p, m, keep) ((p) += RSBUS__JSON_FIRST(m))
#elif defined(RSBUS__JSON_BREAK_FALLBACK)  /* tests only (make test-cross): the little-endian jump on a big-endian
                                              machine, which lands on the wrong byte; the JSON tests must fail */
#  define RSBUS__JSON_JUMP8(p, m, keep) ((p) += (unsigned)__builtin_ctzll(m) >> 3)
#else
#  define RSBUS__JSON_JUMP8 RSBUS__JSON_SCAN8
#endif
/* Advances p over bytes for which keep() holds, 8 at a time while mask8 flags none of them, then by
   skip8 (RSBUS__JSON_SCAN8 or RSBUS__JSON_JUMP8); stops at the first other byte, or at e. lim: 8 bytes
   are readable at p while p < lim (e - 7, or the start of a text shorter than 8 bytes). */
#define RSBUS__JSON_RUN_LIM(p, e, lim, mask8, keep, skip8) \
    do { \
        uint64_t x_, m_; \
        for (;;) { \
            if ((p) >= (lim)) { while ((p) < (e) && keep(*(p))) (p)++; break; } \
            memcpy(&x_, (p), 8); \
            m_ = mask8(x_); \
            if (m_) { skip8(p, m_, keep); break; } \
            (p) += 8; \
        } \
    } while (0)
#define RSBUS__JSON_RUN(p, e, mask8, keep, skip8) \
    do { \
        const unsigned char *lim_ = (e) - (p) >= 8 ? (e) - 7 : (p); \
        RSBUS__JSON_RUN_LIM(p, e, lim_, mask8, keep, skip8); \
    } while (0)
/* For runs that are mostly short (keys, digits): their first 8 bytes tested one at a time, each test a
   branch straight to the end of the run (no wait for a mask), then RUN_LIM with SCAN8. */
#define RSBUS__JSON_SHORT_RUN(p, e, lim, mask8, keep) \
    do { \
        if ((p) < (lim)) { \
            if (!keep((p)[0])) {} \
            else if (!keep((p)[1])) (p) += 1; \
            else if (!keep((p)[2])) (p) += 2; \
            else if (!keep((p)[3])) (p) += 3; \
            else if (!keep((p)[4])) (p) += 4; \
            else if (!keep((p)[5])) (p) += 5; \
            else if (!keep((p)[6])) (p) += 6; \
            else if (!keep((p)[7])) (p) += 7; \
            else { (p) += 8; RSBUS__JSON_RUN_LIM(p, e, lim, mask8, keep, RSBUS__JSON_SCAN8); } \
        } else { \
            while ((p) < (e) && keep(*(p))) (p)++; \
        } \
    } while (0)
#define RSBUS__JSON_DIGITS(p, e, lim) RSBUS__JSON_SHORT_RUN(p, e, lim, RSBUS__JSON_NONDIGIT8, RSBUS__JSON_DIGIT)

RSBUS__PRIVATE int rsbus__json_hex(unsigned c) {
    if (c - '0' < 10u) return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6u) return (int)(c - 'a' + 10);
    return -1;
}
/* 4 hex digits at p (the caller checked they are readable); -1 with *bad = index of a bad one. */
RSBUS__PRIVATE long rsbus__json_hex4(const unsigned char *p, size_t *bad) {
    long v = 0;
    int i, h;
    for (i = 0; i < 4; i++) {
        h = rsbus__json_hex(p[i]);
        if (h < 0) { *bad = (size_t)i; return -1; }
        v = v * 16 + h;
    }
    return v;
}

/* An escape at p (a backslash inside a string; e ends the text). Returns the bytes it takes (2, 6 or 12
   for a surrogate pair) with the code point in *cp, or 0 with *bad = offset from p of the byte where it
   stopped being valid (e - p when the text ends first). A lone or reversed surrogate is refused. */
RSBUS__PRIVATE size_t rsbus__json_escape(const unsigned char *p, const unsigned char *e, uint32_t *cp,
                                         size_t *bad) {
    size_t avail = (size_t)(e - p), b = 0;
    long hi, lo;
    if (avail < 2) { *bad = avail; return 0; }
    switch (p[1]) {
    case '"': *cp = '"'; return 2;
    case '\\': *cp = '\\'; return 2;
    case '/': *cp = '/'; return 2;
    case 'b': *cp = '\b'; return 2;
    case 'f': *cp = '\f'; return 2;
    case 'n': *cp = '\n'; return 2;
    case 'r': *cp = '\r'; return 2;
    case 't': *cp = '\t'; return 2;
    case 'u': break;
    default: *bad = 1; return 0;
    }
    if (avail < 6) {
        for (b = 2; b < avail; b++) if (rsbus__json_hex(p[b]) < 0) { *bad = b; return 0; }
        *bad = avail;
        return 0;
    }
    hi = rsbus__json_hex4(p + 2, &b);
    if (hi < 0) { *bad = 2 + b; return 0; }
    if (hi < 0xD800 || hi > 0xDFFF) { *cp = (uint32_t)hi; return 6; }
    if (hi >= 0xDC00) { *bad = 0; return 0; }           /* a low surrogate first */
    if (avail < 7) { *bad = avail; return 0; }
    if (p[6] != '\\') { *bad = 6; return 0; }
    if (avail < 8) { *bad = avail; return 0; }
    if (p[7] != 'u') { *bad = 7; return 0; }
    if (avail < 12) {
        for (b = 8; b < avail; b++) if (rsbus__json_hex(p[b]) < 0) { *bad = b; return 0; }
        *bad = avail;
        return 0;
    }
    lo = rsbus__json_hex4(p + 8, &b);
    if (lo < 0) { *bad = 8 + b; return 0; }
    if (lo < 0xDC00 || lo > 0xDFFF) { *bad = 6; return 0; }   /* the high surrogate is not followed by a low one */
    *cp = (uint32_t)(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
    return 12;
}

/* The rest of a string after its opening quote. Returns the byte after the closing quote, or NULL with
   *err at the byte where it stopped being valid. *esc is set when the string contains an escape. */
RSBUS__PRIVATE const unsigned char *rsbus__json_string(const unsigned char *p, const unsigned char *e,
                                                       const unsigned char **err, int *esc) {
    unsigned cls;
    uint32_t cp;
    size_t len, bad = 0;
    for (;;) {
        RSBUS__JSON_RUN(p, e, RSBUS__JSON_SPECIAL8, RSBUS__JSON_PLAIN, RSBUS__JSON_JUMP8);
        if (p >= e) { *err = e; return NULL; }
        cls = rsbus__json_class[*p];
        if (cls == 1) return p + 1;
        if (cls == 2) {
            len = rsbus__json_escape(p, e, &cp, &bad);
            if (!len) { *err = p + bad; return NULL; }
            *esc = 1;
            p += len;
        } else if (cls >= 5) {
            do {                                              /* a run of UTF-8 sequences */
                if (cls == 5 && e - p >= 2 && (p[1] & 0xC0) == 0x80) {
                    p += 2;                                   /* C2..DF 80..BF */
                } else if (cls == 7 && e - p >= 3 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
                    p += 3;                                   /* E1..EC or EE..EF, 80..BF 80..BF */
                } else {
                    len = rsbus__json_u8(p, (size_t)(e - p), cls, &bad);
                    if (!len) { *err = p + bad; return NULL; }
                    p += len;
                }
            } while (p < e && (cls = rsbus__json_class[*p]) >= 5);
        } else {
            *err = p;                                         /* control character or invalid byte */
            return NULL;
        }
    }
}

/* A number by the RFC 8259 grammar, starting at p (p < e). Returns the byte after it, or NULL with *err.
   lim as for RSBUS__JSON_RUN_LIM. */
RSBUS__PRIVATE RSBUS__JSON_INLINE const unsigned char *rsbus__json_number_lim(const unsigned char *p,
                                                                              const unsigned char *e,
                                                                              const unsigned char *lim,
                                                                              const unsigned char **err) {
    if (p < e && *p == '-') p++;
    if (p >= e) { *err = e; return NULL; }
    if (*p == '0') {
        p++;
    } else if ((unsigned)(*p - '1') < 9u) {
        p++;
        RSBUS__JSON_DIGITS(p, e, lim);
    } else {
        *err = p;
        return NULL;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e) { *err = e; return NULL; }
        if (!RSBUS__JSON_DIGIT(*p)) { *err = p; return NULL; }
        p++;
        RSBUS__JSON_DIGITS(p, e, lim);
    }
    if (p < e && (*p | 0x20) == 'e') {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e) { *err = e; return NULL; }
        if (!RSBUS__JSON_DIGIT(*p)) { *err = p; return NULL; }
        p++;
        RSBUS__JSON_DIGITS(p, e, lim);
    }
    return p;
}

RSBUS__PRIVATE RSBUS__JSON_INLINE const unsigned char *rsbus__json_number(const unsigned char *p,
                                                                          const unsigned char *e,
                                                                          const unsigned char **err) {
    return rsbus__json_number_lim(p, e, e - p >= 8 ? e - 7 : p, err);
}

/* true/false/null at p: the byte after it, or NULL with *err at the first byte that differs. */
RSBUS__PRIVATE const unsigned char *rsbus__json_literal(const unsigned char *p, const unsigned char *e,
                                                        const char *lit, size_t n, const unsigned char **err) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (p + i >= e) { *err = e; return NULL; }
        if (p[i] != (unsigned char)lit[i]) { *err = p + i; return NULL; }
    }
    return p + n;
}

/* Code point to UTF-8 (cp <= 0x10FFFF, no surrogates); returns the length. */
RSBUS__PRIVATE size_t rsbus__json_utf8_put(uint32_t cp, unsigned char *b) {
    if (cp < 0x80) { b[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- path matching for rsbus_json_get ---- */

enum { RSBUS__JG_SEARCH, RSBUS__JG_TARGET, RSBUS__JG_FOUND, RSBUS__JG_MISS };

typedef struct rsbus__json_get {
    const char *cur;                 /* the path after the current segment */
    const char *seg;                 /* current segment: key text, or digits of an index */
    size_t seg_len;
    int seg_bracket;                 /* [N]: matches array elements only */
    int seg_isidx;                   /* the segment is a canonical index (matches array elements) */
    uint64_t seg_index;
    uint64_t count;                  /* elements seen so far in the array being searched */
    unsigned pdepth;                 /* depth inside the container being searched */
    unsigned tdepth;                 /* depth of the target value */
    int state;                       /* RSBUS__JG_* */
    const unsigned char *start, *stop;
} rsbus__json_get;

/* Path syntax: segments joined by '.', a segment being a key (1+ bytes, none of ". [ ]") or an index in
   brackets ([N], N of 1..18 digits without leading zeros) which may also follow a segment directly
   ("a[0][1]", "[0].a"). */
RSBUS__PRIVATE int rsbus__json_path_ok(const char *p) {
    const char *k;
    size_t nd;
    if (*p == '\0') return 1;
    for (;;) {
        if (*p == '[') {
            p++;
            if (*p == '0' && p[1] != ']') return 0;
            for (nd = 0; *p >= '0' && *p <= '9'; p++) nd++;
            if (nd == 0 || nd > 18 || *p != ']') return 0;
            p++;
        } else {
            for (k = p; *p && *p != '.' && *p != '[' && *p != ']'; p++) {}
            if (p == k || *p == ']') return 0;
        }
        if (*p == '\0') return 1;
        if (*p == '.') {
            p++;
            if (*p == '\0' || *p == '.' || *p == '[' || *p == ']') return 0;
        } else if (*p != '[') {
            return 0;
        }
    }
}

/* Loads the next segment of a path that passed rsbus__json_path_ok; 0 at its end. */
RSBUS__PRIVATE int rsbus__json_next_seg(rsbus__json_get *g) {
    const char *p = g->cur;
    size_t i;
    if (*p == '\0') return 0;
    if (*p == '.') p++;
    if (*p == '[') {
        g->seg = ++p;
        while (*p != ']') p++;
        g->seg_len = (size_t)(p - g->seg);
        g->seg_bracket = 1;
        p++;
    } else {
        g->seg = p;
        while (*p && *p != '.' && *p != '[') p++;
        g->seg_len = (size_t)(p - g->seg);
        g->seg_bracket = 0;
    }
    g->cur = p;
    g->seg_isidx = g->seg_len <= 18 && (g->seg_len == 1 || g->seg[0] != '0');
    g->seg_index = 0;
    for (i = 0; i < g->seg_len && g->seg_isidx; i++) {
        if (!RSBUS__JSON_DIGIT(g->seg[i])) g->seg_isidx = 0;
        else g->seg_index = g->seg_index * 10 + (uint64_t)(g->seg[i] - '0');
    }
    return 1;
}

/* The value at p (at depth) is the one the current segment named. */
RSBUS__PRIVATE void rsbus__json_get_hit(rsbus__json_get *g, const unsigned char *p, unsigned depth) {
    if (!rsbus__json_next_seg(g)) {
        g->state = RSBUS__JG_TARGET;
        g->start = p;
        g->tdepth = depth;
    } else if (*p == '{' || *p == '[') {
        g->pdepth = depth + 1;
        g->count = 0;
    } else {
        g->state = RSBUS__JG_MISS;                          /* the path goes on into a scalar */
    }
}

/* The unescaped bytes of the JSON string text k..ke (between its quotes), a piece at a time: a run of
   plain bytes, or one escape as UTF-8 in u. Returns the piece, its length in *n, and moves *k past it;
   NULL at a bad escape. The one unescaper of rsbus: rsbus__json_unescape copies, rsbus__json_str_eq
   compares. */
RSBUS__PRIVATE const unsigned char *rsbus__json_piece(const unsigned char **k, const unsigned char *ke,
                                                     unsigned char u[4], size_t *n) {
    const unsigned char *p = *k, *q;
    size_t bad, l;
    uint32_t cp;
    if (*p != '\\') {
        q = (const unsigned char *)memchr(p, '\\', (size_t)(ke - p));
        if (!q) q = ke;
        *n = (size_t)(q - p);
        *k = q;
        return p;
    }
    l = rsbus__json_escape(p, ke, &cp, &bad);
    if (!l) return NULL;
    *k = p + l;
    *n = rsbus__json_utf8_put(cp, u);
    return u;
}
/* Unescapes k..ke into out (cap bytes, not NUL-terminated, cut short when it does not fit); *len is the
   whole unescaped length. -1 at a bad escape. */
RSBUS__PRIVATE int rsbus__json_unescape(const unsigned char *k, const unsigned char *ke, char *out, size_t cap,
                                        size_t *len) {
    unsigned char u[4];
    size_t n, need = 0;
    while (k < ke) {
        const unsigned char *piece = rsbus__json_piece(&k, ke, u, &n);
        if (!piece) return -1;
        if (need < cap) memcpy(out + need, piece, RSBUS__MIN(n, cap - need));
        need += n;
    }
    *len = need;
    return 0;
}
/* Whether the JSON string text k..ke unescapes to exactly the n bytes of name. */
RSBUS__PRIVATE int rsbus__json_str_eq(const unsigned char *k, const unsigned char *ke, const char *name, size_t n) {
    unsigned char u[4];
    size_t i = 0, l;
    while (k < ke) {
        const unsigned char *piece = rsbus__json_piece(&k, ke, u, &l);
        if (!piece || l > n - i || memcmp(name + i, piece, l) != 0) return 0;
        i += l;
    }
    return i == n;
}

/* Does the key text k..ke (between the quotes; esc: it has escapes) equal the current segment? */
RSBUS__PRIVATE int rsbus__json_key_match(const rsbus__json_get *g, const unsigned char *k,
                                         const unsigned char *ke, int esc) {
    if (g->seg_bracket) return 0;
    if (!esc) return (size_t)(ke - k) == g->seg_len && memcmp(k, g->seg, g->seg_len) == 0;
    return rsbus__json_str_eq(k, ke, g->seg, g->seg_len);
}

/* The closing byte of the innermost open container (depth > 0): ']' + 0x20 is '}' */
#define RSBUS__JSON_CLOSER(st, depth) \
    ((unsigned char)(']' + ((((st)[((depth) - 1) >> 6] >> (((depth) - 1) & 63)) & 1) << 5)))

/* Every token starts with a test of the byte expected there; whitespace is skipped only when that fails
   (event payloads rarely have any). */
RSBUS__PRIVATE RSBUS__JSON_INLINE rsbus_result rsbus__json_parse(const char *text, size_t n, size_t *error_offset,
                                                                 rsbus__json_get *g) {
    const unsigned char *s = (const unsigned char *)text, *p, *e, *lim, *q, *k, *err;
    uint64_t st[RSBUS__JSON_WORDS] = { 0 };
    unsigned depth = 0;
    int esc, slow_esc = 0, hit;
    unsigned char c, closer = 0;                           /* '}' or ']': the innermost open container's */

    if (!s) { err = NULL; goto fail; }                     /* n == 0 here: empty text */
    p = s;
    e = s + n;
    lim = n >= 8 ? e - 7 : s;                              /* 8 bytes readable at p while p < lim */
    err = e;
    hit = g != NULL;

value:                                                     /* a value must start here (or whitespace) */
    if (p >= e) { err = e; goto fail; }
    c = *p;
    if (c == '"') {                                        /* the most common value first */
        if (hit) { hit = 0; rsbus__json_get_hit(g, p, depth); }
        p++;
        RSBUS__JSON_RUN_LIM(p, e, lim, RSBUS__JSON_SPECIAL8, RSBUS__JSON_PLAIN, RSBUS__JSON_JUMP8);
        if (p < e && *p == '"') { p++; goto after; }
        q = rsbus__json_string(p, e, &err, &slow_esc);      /* an escape, UTF-8, or an error */
        if (!q) goto fail;
        p = q;
        goto after;
    }
    if (c == '-' || RSBUS__JSON_DIGIT(c)) {
        if (hit) { hit = 0; rsbus__json_get_hit(g, p, depth); }
        q = rsbus__json_number_lim(p, e, lim, &err);
        if (!q) goto fail;
        p = q;
        goto after;
    }
    if (c == '{') {
        if (hit) { hit = 0; rsbus__json_get_hit(g, p, depth); }
        if (depth >= RSBUS_JSON_MAX_DEPTH) { err = p; goto fail; }
        st[depth >> 6] |= (uint64_t)1 << (depth & 63);
        depth++;
        p++;
        if (p < e && *p == '"') { closer = '}'; goto key_body; }
        RSBUS__JSON_SKIP_WS(p, e);
        if (p < e && *p == '}') {
            if (g && g->state == RSBUS__JG_SEARCH && depth == g->pdepth) g->state = RSBUS__JG_MISS;
            depth--;
            p++;
            goto after;                                    /* closer is still the enclosing container's */
        }
        closer = '}';
        goto key;
    }
    if (c == '[') {
        if (hit) { hit = 0; rsbus__json_get_hit(g, p, depth); }
        if (depth >= RSBUS_JSON_MAX_DEPTH) { err = p; goto fail; }
        st[depth >> 6] &= ~((uint64_t)1 << (depth & 63));
        depth++;
        p++;
        RSBUS__JSON_SKIP_WS(p, e);
        if (p < e && *p == ']') {
            if (g && g->state == RSBUS__JG_SEARCH && depth == g->pdepth) g->state = RSBUS__JG_MISS;
            depth--;
            p++;
            goto after;
        }
        closer = ']';
        if (g && g->state == RSBUS__JG_SEARCH && depth == g->pdepth) {
            hit = g->seg_isidx && g->count == g->seg_index;
            g->count++;
        }
        goto value;
    }
    switch (c) {
    case ' ': case '\t': case '\n': case '\r':
        p++;
        RSBUS__JSON_SKIP_WS(p, e);
        goto value;
    case 't':
        if (hit) { hit = 0; rsbus__json_get_hit(g, p, depth); }
        if (e - p >= 4 && p[1] == 'r' && p[2] == 'u' && p[3] == 'e') { p += 4; goto after; }
        q = rsbus__json_literal(p, e, "true", 4, &err);
        break;
    case 'f':
        if (hit) { hit = 0; rsbus__json_get_hit(g, p, depth); }
        if (e - p >= 5 && p[1] == 'a' && p[2] == 'l' && p[3] == 's' && p[4] == 'e') { p += 5; goto after; }
        q = rsbus__json_literal(p, e, "false", 5, &err);
        break;
    case 'n':
        if (hit) { hit = 0; rsbus__json_get_hit(g, p, depth); }
        if (e - p >= 4 && p[1] == 'u' && p[2] == 'l' && p[3] == 'l') { p += 4; goto after; }
        q = rsbus__json_literal(p, e, "null", 4, &err);
        break;
    default:
        if (hit) { hit = 0; rsbus__json_get_hit(g, p, depth); }
        err = p;
        goto fail;
    }
    if (!q) goto fail;
    p = q;
    goto after;

key:                                                       /* a key must start here (or whitespace) */
    if (p >= e) { err = e; goto fail; }
    if (*p != '"') {
        if (RSBUS__JSON_WS(*p)) { p++; RSBUS__JSON_SKIP_WS(p, e); goto key; }
        err = p;
        goto fail;
    }
key_body:                                                  /* p at the key's opening quote */
    k = ++p;
    RSBUS__JSON_SHORT_RUN(p, e, lim, RSBUS__JSON_SPECIAL8, RSBUS__JSON_PLAIN);
    if (p < e && *p == '"') {
        p++;
        esc = 0;
    } else {
        slow_esc = 0;
        q = rsbus__json_string(p, e, &err, &slow_esc);
        if (!q) goto fail;
        p = q;
        esc = slow_esc;
    }
    if (g && g->state == RSBUS__JG_SEARCH && depth == g->pdepth) hit = rsbus__json_key_match(g, k, p - 1, esc);
    if (p < e && *p == ':') { p++; goto value; }
    RSBUS__JSON_SKIP_WS(p, e);
    if (p >= e) { err = e; goto fail; }
    if (*p != ':') { err = p; goto fail; }
    p++;
    goto value;

after:                                                     /* a value just ended at p */
    if (g && g->state == RSBUS__JG_TARGET && depth == g->tdepth) { g->stop = p; g->state = RSBUS__JG_FOUND; }
    if (depth == 0) goto done;
next:                                                      /* ',' or the closer must come (or whitespace) */
    if (p >= e) { err = e; goto fail; }
    c = *p;
    if (c == ',') {
        p++;
        if (closer == '}') goto key;
        if (g && g->state == RSBUS__JG_SEARCH && depth == g->pdepth) {
            hit = g->seg_isidx && g->count == g->seg_index;
            g->count++;
        }
        goto value;
    }
    if (c == closer) {
        if (g && g->state == RSBUS__JG_SEARCH && depth == g->pdepth) g->state = RSBUS__JG_MISS;
        depth--;
        p++;
        if (depth) closer = RSBUS__JSON_CLOSER(st, depth);
        goto after;
    }
    if (RSBUS__JSON_WS(c)) { p++; RSBUS__JSON_SKIP_WS(p, e); goto next; }
    err = p;
    goto fail;

done:
    RSBUS__JSON_SKIP_WS(p, e);
    if (p != e) { err = p; goto fail; }
    return RSBUS_OK;

fail:
    if (error_offset) *error_offset = err ? (size_t)(err - s) : 0;
    return RSBUS_E_JSON;
}

RSBUS__PUBLIC rsbus_result rsbus_json_validate(const char *s, size_t n, size_t *error_offset) {
    if (!s && n) return RSBUS_E_ARG;
    return rsbus__json_parse(s, n, error_offset, NULL);
}

/* The whole document is validated in the same pass (an invalid one is RSBUS_E_JSON even when the value
   comes before the error). A string's slice includes its quotes. Among duplicate keys the first wins. */
RSBUS__PUBLIC rsbus_result rsbus_json_get(const char *s, size_t n, const char *path, rsbus_jval *out) {
    rsbus__json_get g;
    rsbus_result r;
    if (out) { out->type = RSBUS_JNONE; out->ptr = NULL; out->len = 0; }
    if ((!s && n) || !path || !rsbus__json_path_ok(path)) return RSBUS_E_ARG;
    memset(&g, 0, sizeof g);
    g.cur = path;
    g.state = RSBUS__JG_SEARCH;
    r = rsbus__json_parse(s, n, NULL, &g);
    if (r != RSBUS_OK) return r;
    if (g.state != RSBUS__JG_FOUND) return RSBUS_E_NOTFOUND;
    if (out) {
        switch (*g.start) {
        case '{': out->type = RSBUS_JOBJECT; break;
        case '[': out->type = RSBUS_JARRAY; break;
        case '"': out->type = RSBUS_JSTRING; break;
        case 't': case 'f': out->type = RSBUS_JBOOL; break;
        case 'n': out->type = RSBUS_JNULL; break;
        default: out->type = RSBUS_JNUMBER; break;
        }
        out->ptr = (const char *)g.start;
        out->len = (size_t)(g.stop - g.start);
    }
    return RSBUS_OK;
}

/* Wrong type: RSBUS_E_ARG. Text that is not a valid JSON string: RSBUS_E_JSON. Too small (out may be NULL
   with size 0): RSBUS_E_ARG, *len = bytes needed without the NUL and out = "" when size > 0. */
RSBUS__PUBLIC rsbus_result rsbus_jval_str(const rsbus_jval *v, char *out, size_t size, size_t *len) {
    size_t need = 0;
    if (len) *len = 0;
    if (!v || v->type != RSBUS_JSTRING || !v->ptr || (!out && size)) return RSBUS_E_ARG;
    if (v->len < 2 || v->ptr[0] != '"' || v->ptr[v->len - 1] != '"') return RSBUS_E_JSON;
    if (rsbus__json_unescape((const unsigned char *)v->ptr + 1, (const unsigned char *)v->ptr + v->len - 1, out, size,
                             &need) != 0)
        return RSBUS_E_JSON;
    if (len) *len = need;
    if (need >= size) {
        if (size) out[0] = '\0';
        return RSBUS_E_ARG;
    }
    out[need] = '\0';
    return RSBUS_OK;
}

/* Integer grammar only: -?(0|[1-9][0-9]*). A fraction or exponent ("1.0", "1e3") or a value outside
   int64 is RSBUS_E_ARG. */
RSBUS__PUBLIC rsbus_result rsbus_jval_int(const rsbus_jval *v, int64_t *out) {
    const unsigned char *p, *e, *q, *err;
    uint64_t m = 0, lim;
    unsigned d;
    int neg = 0;
    if (!v || v->type != RSBUS_JNUMBER || !v->ptr) return RSBUS_E_ARG;
    p = (const unsigned char *)v->ptr;
    e = p + v->len;
    q = rsbus__json_number(p, e, &err);
    if (!q || q != e) return RSBUS_E_JSON;
    if (*p == '-') { neg = 1; p++; }
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < e; p++) {
        if (!RSBUS__JSON_DIGIT(*p)) return RSBUS_E_ARG;      /* '.', 'e' or 'E' */
        d = (unsigned)(*p - '0');
        if (m > (lim - d) / 10) return RSBUS_E_ARG;
        m = m * 10 + d;
    }
    if (out) *out = neg ? (m ? -(int64_t)(m - 1) - 1 : 0) : (int64_t)m;
    return RSBUS_OK;
}

/* Locale-proof: the digits are rewritten as "[-]DIGITSe[-]N", which has no decimal separator, before
   strtod. At most RSBUS__JSON_NUM_DIGITS significant digits are kept, then one sticky '1' standing for
   any nonzero digits dropped, which keeps strtod's rounding exact (a double's halfway points need 768).
   A magnitude beyond DBL_MAX: RSBUS_E_ARG with *out = +-HUGE_VAL; underflow rounds (to 0 at worst). */
#define RSBUS__JSON_NUM_DIGITS 800
RSBUS__PUBLIC rsbus_result rsbus_jval_num(const rsbus_jval *v, double *out) {
    char buf[RSBUS__JSON_NUM_DIGITS + 32];
    const unsigned char *p, *e, *q, *err;
    size_t nd = 0, o;
    int64_t e10 = 0, ex = 0;
    int neg = 0, eneg = 0, sticky = 0;
    double d;
    if (!v || v->type != RSBUS_JNUMBER || !v->ptr) return RSBUS_E_ARG;
    p = (const unsigned char *)v->ptr;
    e = p + v->len;
    q = rsbus__json_number(p, e, &err);
    if (!q || q != e) return RSBUS_E_JSON;
    if (*p == '-') { neg = 1; p++; }
    o = (size_t)neg;
    buf[0] = '-';
    for (; p < e && RSBUS__JSON_DIGIT(*p); p++) {
        if (nd == 0 && *p == '0') continue;
        if (nd < RSBUS__JSON_NUM_DIGITS) { buf[o + nd++] = (char)*p; continue; }
        if (*p != '0') sticky = 1;
        e10++;
    }
    if (p < e && *p == '.') {
        for (p++; p < e && RSBUS__JSON_DIGIT(*p); p++) {
            if (nd == 0 && *p == '0') { e10--; continue; }
            if (nd < RSBUS__JSON_NUM_DIGITS) { buf[o + nd++] = (char)*p; e10--; continue; }
            if (*p != '0') sticky = 1;
        }
    }
    if (p < e) {                                            /* 'e' or 'E' */
        p++;
        if (*p == '-') { eneg = 1; p++; }
        else if (*p == '+') p++;
        for (; p < e; p++) if (ex < 1000000000) ex = ex * 10 + (*p - '0');
    }
    if (nd == 0) {
        if (out) *out = neg ? -0.0 : 0.0;
        return RSBUS_OK;
    }
    if (sticky) { buf[o + nd++] = '1'; e10--; }
    e10 += eneg ? -ex : ex;
    if (e10 > 99999) e10 = 99999;
    if (e10 < -99999) e10 = -99999;
    o += nd;
    snprintf(buf + o, sizeof buf - o, "e%ld", (long)e10);
    d = strtod(buf, NULL);
    if (out) *out = d;
    return isinf(d) ? RSBUS_E_ARG : RSBUS_OK;
}

RSBUS__PUBLIC rsbus_result rsbus_jval_bool(const rsbus_jval *v, int *out) {
    if (!v || v->type != RSBUS_JBOOL || !v->ptr) return RSBUS_E_ARG;
    if (v->len == 4 && memcmp(v->ptr, "true", 4) == 0) { if (out) *out = 1; return RSBUS_OK; }
    if (v->len == 5 && memcmp(v->ptr, "false", 5) == 0) { if (out) *out = 0; return RSBUS_OK; }
    return RSBUS_E_JSON;
}
/* >>url and environment */
/* URL forms (config.url):
     redis://[user[:password]@]host[:port][/db]
     rediss://[user[:password]@]host[:port][/db][?ca=FILE&capath=DIR&cert=FILE&key=FILE&sni=NAME&verify=0|1]
     unix:///abs/path[?db=N&user=U&password=P]
   NULL means redis://127.0.0.1:6379; "" is an error; at most 4096 bytes. Schemes are case-insensitive.
   Only printable ASCII without spaces (0x21..0x7e) may appear; anything else must be percent-encoded.
   %XX is decoded in the user, the password, the unix path and every query value (%00 is refused).
   The userinfo ends at the LAST '@' before the first '/' or '?', and the user ends at its first ':', so
   a raw '@' or ':' in a password works; '/', '?' and '&' in a password must be written %2F, %3F, %26.
   An empty user or password is absent: "redis://:pw@h" is password-only, "redis://u@h" and
   "redis://u:@h" are user-only (has_user 1, has_password 0; the connect code decides what to do).
   host: a name or IPv4 of [A-Za-z0-9._-] (up to 255 bytes), or an IPv6 address in brackets
   ("[::1]", zone as "[fe80::1%25eth0]"). port: 1..65535, digits only. db: 0..INT_MAX, digits only;
   "/" alone is db 0. unix path: absolute, at most 107 bytes decoded, not ending in '/'; a raw '&' or
   '=' in it is refused (a missing '?' would otherwise put "password=..." into the path, which messages
   show), %26 and %3D work.
   Query parameters: each at most once, each with a non-empty value, any order. redis:// takes none;
   rediss:// takes ca, capath, cert, key, sni, verify (0 or 1), cert and key only together; unix://
   takes db, user, password. Anything else is an error (a TLS parameter anywhere but rediss://, db/user/
   password anywhere but unix://, an unknown name).
   Errors are RSBUS_E_ARG with msg "url: <why>"; the message never contains the URL, the host, the user
   or the password (only fixed text and the names of known query parameters).
   Several hosts (Sentinel, Redis Cluster):
     redis+sentinel://[user:pass@]host[:port][,host[:port]...]/<master-name>[/db][?sentinel_user=U&sentinel_password=P]
     rediss+sentinel://...   the same, plus the TLS parameters of rediss:// (used for the sentinels and the master)
     redis+cluster://[user:pass@]host[:port][,host[:port]...][/0]   and rediss+cluster://... (TLS parameters)
   At most RSBUS__MAX_SEEDS hosts, separated by ','; each as for redis:// (IPv6 in brackets). A sentinel's
   port defaults to 26379, a cluster node's to 6379. user:pass authenticate to Redis (the master, the
   cluster nodes); sentinel_user / sentinel_password (percent-decoded) to the sentinels. The master name
   is 1..255 bytes, percent-decoded, printable ASCII without spaces. A cluster has only db 0. kind stays
   RSBUS__URL_TCP or RSBUS__URL_TLS; the flags 'sentinel' and 'cluster' say which form it was. Every tcp
   or tls url fills seeds[0..nseeds) (one seed for redis:// and rediss://); host and port are seeds[0]. */
#define RSBUS__URL_MAX 4096         /* longest url accepted, in bytes */
#define RSBUS__ENV_PREFIX_MAX 64    /* longest prefix rsbus_config_from_env accepts */
#define RSBUS__MAX_SEEDS 16         /* hosts of a redis+sentinel:// or redis+cluster:// url */
#define RSBUS__SENTINEL_PORT 26379  /* a sentinel's default port */

typedef struct rsbus__addr { char host[256]; int port; } rsbus__addr;   /* host: IPv6 without brackets */

typedef enum rsbus__url_kind { RSBUS__URL_TCP = 1, RSBUS__URL_TLS = 2, RSBUS__URL_UNIX = 3,
                               RSBUS__URL_MEM = 4 } rsbus__url_kind;
#define RSBUS__MEM_NAME_MAX 64      /* mem://<name>: the namespace's name, in host */
typedef struct rsbus__url {
    rsbus__url_kind kind;
    char host[256];                 /* IPv6 without the brackets */
    int  port;                      /* default 6379 */
    char path[108];                 /* unix socket path (sockaddr_un limit, incl. NUL) */
    char user[128], password[256];  /* percent-decoded; "" when absent */
    int  has_user, has_password;
    int  db;                        /* default 0; 0..INT_MAX */
    char ca[512], capath[512], cert[512], key[512], sni[256];  /* rediss:// query parameters */
    int  verify;                    /* default 1 */
    int  cluster, sentinel;         /* redis+cluster:// / redis+sentinel:// (and the rediss+ forms) */
    rsbus__addr seeds[RSBUS__MAX_SEEDS];  /* the hosts of the url, in order (sentinels, cluster seeds); */
    int  nseeds;                    /* 1 for redis:// and rediss://, 0 for unix:// */
    char master_name[256];          /* redis+sentinel://: the master's name at the sentinels */
    char sentinel_user[128], sentinel_password[256];  /* percent-decoded; "" when absent */
    int  has_sentinel_user, has_sentinel_password;
    char redacted[1200];            /* safe for messages, never a user or a password: "redis://[::1]:6380",
                                       "redis://" "***@127.0.0.1:6379/2" (a user or password present),
                                       "unix:///tmp/r.sock?db=1&password=***",
                                       "redis+sentinel://h1:26379,h2:26379/mymaster?sentinel_password=***" */
} rsbus__url;

/* Strict decimal: an optional leading '-', then 1+ ASCII digits, exactly n bytes, no spaces, no '+',
   no overflow. Returns 1 and sets *out (if out is not NULL) on success; 0 (and *out untouched) otherwise. */
RSBUS__PRIVATE int rsbus__parse_i64(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    int64_t v = 0;                  /* accumulated as a negative number: |INT64_MIN| > INT64_MAX */
    if (!s || n == 0) return 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1) return 0;
    }
    for (; i < n; i++) {
        int64_t d;
        if (s[i] < '0' || s[i] > '9') return 0;
        d = (int64_t)(s[i] - '0');
        /* 18 digits cannot overflow; past them, check before each step */
        if (i >= 18 && v < (INT64_MIN + d) / 10) return 0;   /* v * 10 - d would go below INT64_MIN */
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN) return 0;
        v = -v;
    }
    if (out) *out = v;
    return 1;
}

/* 1 when s[0..n) is 1+ digits (no sign) with a value <= max */
RSBUS__PRIVATE int rsbus__url_num(const char *s, size_t n, int64_t max, int64_t *out) {
    int64_t v;
    if (n == 0 || s[0] == '-') return 0;
    if (!rsbus__parse_i64(s, n, &v) || v > max) return 0;
    *out = v;
    return 1;
}

RSBUS__PRIVATE rsbus_result rsbus__url_fail(char *msg, size_t msg_size, const char *why, const char *name) {
    if (msg && msg_size) {
        if (name) snprintf(msg, msg_size, "url: '%s' %s", name, why);
        else snprintf(msg, msg_size, "url: %s", why);
    }
    return RSBUS_E_ARG;
}

RSBUS__PRIVATE int rsbus__url_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (NUL-terminated, at most size - 1 bytes).
   Returns 0, -1 for a bad escape or %00, -2 when it does not fit. *len (if not NULL) gets the length. */
RSBUS__PRIVATE int rsbus__url_decode(const char *s, size_t n, char *out, size_t size, size_t *len) {
    size_t i = 0, o = 0;
    while (i < n) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3) return -1;
            hi = rsbus__url_hex(s[i + 1]);
            lo = rsbus__url_hex(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
            c = (char)(unsigned char)(hi * 16 + lo);
            i += 3;
        } else {
            i++;
        }
        if (o + 1 >= size) return -2;
        out[o++] = c;
    }
    if (size == 0) return -2;
    out[o] = '\0';
    if (len) *len = o;
    return 0;
}

/* Decodes a component, or fails with "url: <what> has a bad percent-escape ..." / "url: <what> too long ..."
   (what in quotes when it is a query parameter's name). */
RSBUS__PRIVATE rsbus_result rsbus__url_component(const char *s, size_t n, char *out, size_t size, size_t *len,
                                                 const char *what, int quoted, char *msg, size_t msg_size) {
    const char *q = quoted ? "'" : "";
    int rc = rsbus__url_decode(s, n, out, size, len);
    if (rc == 0) return RSBUS_OK;
    if (msg && msg_size) {
        if (rc == -1) snprintf(msg, msg_size, "url: %s%s%s has a bad percent-escape (%%XX, not %%00)", q, what, q);
        else snprintf(msg, msg_size, "url: %s%s%s too long (at most %u bytes)", q, what, q, (unsigned)(size - 1));
    }
    return RSBUS_E_ARG;
}

/* appends s[0..n) to out at *pos, bounded; 'enc' percent-encodes bytes outside [A-Za-z0-9-._~/] (enc 2: ':'
   kept too; enc 3: '/' encoded as well, for a name that is one path segment) */
RSBUS__PRIVATE void rsbus__url_put(char *out, size_t size, size_t *pos, const char *s, size_t n, int enc) {
    static const char hexd[] = "0123456789ABCDEF";
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~' || (c == '/' && enc != 3) || (enc == 2 && c == ':');
        if (!enc || plain) {
            if (*pos + 1 >= size) return;
            out[(*pos)++] = (char)c;
        } else {
            if (*pos + 3 >= size) return;
            out[(*pos)++] = '%';
            out[(*pos)++] = hexd[c >> 4];
            out[(*pos)++] = hexd[c & 15];
        }
        out[*pos] = '\0';
    }
}

/* host:port, IPv6 in brackets, appended at *pos */
RSBUS__PRIVATE void rsbus__url_put_addr(char *out, size_t size, size_t *pos, const char *host, int port) {
    char num[16];
    if (strchr(host, ':')) {
        rsbus__url_put(out, size, pos, "[", 1, 0);
        rsbus__url_put(out, size, pos, host, strlen(host), 2);
        rsbus__url_put(out, size, pos, "]", 1, 0);
    } else {
        rsbus__url_put(out, size, pos, host, strlen(host), 1);
    }
    snprintf(num, sizeof num, ":%d", port);
    rsbus__url_put(out, size, pos, num, strlen(num), 0);
}

/* The url for messages and logs: scheme, "***@" when there is a user or a password, host, port, db when
   not 0, "?verify=0" when a rediss:// url turns verification off; unix: the path and "?db=N" when not 0,
   "user=***" / "password=***" when present. Sentinel and cluster: every host, the master name, and
   "sentinel_user=***" / "sentinel_password=***" when present. Never a user name or a password.
   Truncated to fit. */
RSBUS__PRIVATE void rsbus__url_redact(const rsbus__url *u, char *out, size_t size) {
    size_t pos = 0;
    char num[32];
    if (!out || size == 0) return;
    out[0] = '\0';
#ifndef RSBUS_NO_MEM
    if (u->kind == RSBUS__URL_MEM) {
        rsbus__url_put(out, size, &pos, "mem://", 6, 0);
        rsbus__url_put(out, size, &pos, u->host, strlen(u->host), 0);
        return;
    }
#endif
    if (u->kind == RSBUS__URL_UNIX) {
        char sep = '?';
        rsbus__url_put(out, size, &pos, "unix://", 7, 0);
        rsbus__url_put(out, size, &pos, u->path, strlen(u->path), 1);
        if (u->db != 0) {
            snprintf(num, sizeof num, "%cdb=%d", sep, u->db);
            rsbus__url_put(out, size, &pos, num, strlen(num), 0);
            sep = '&';
        }
        if (u->has_user) {
            snprintf(num, sizeof num, "%cuser=***", sep);
            rsbus__url_put(out, size, &pos, num, strlen(num), 0);
            sep = '&';
        }
        if (u->has_password) {
            snprintf(num, sizeof num, "%cpassword=***", sep);
            rsbus__url_put(out, size, &pos, num, strlen(num), 0);
        }
        return;
    }
    {
        const char *scheme = u->kind == RSBUS__URL_TLS ? "rediss" : "redis";
        char sep = '?';
        int i;
        rsbus__url_put(out, size, &pos, scheme, strlen(scheme), 0);
        if (u->sentinel) rsbus__url_put(out, size, &pos, "+sentinel", 9, 0);
        if (u->cluster) rsbus__url_put(out, size, &pos, "+cluster", 8, 0);
        rsbus__url_put(out, size, &pos, "://", 3, 0);
        if (u->has_user || u->has_password) rsbus__url_put(out, size, &pos, "***@", 4, 0);
        if (u->nseeds > 1) {
            for (i = 0; i < u->nseeds; i++) {
                if (i) rsbus__url_put(out, size, &pos, ",", 1, 0);
                rsbus__url_put_addr(out, size, &pos, u->seeds[i].host, u->seeds[i].port);
            }
        } else {
            rsbus__url_put_addr(out, size, &pos, u->host, u->port);
        }
        if (u->sentinel) {
            rsbus__url_put(out, size, &pos, "/", 1, 0);
            rsbus__url_put(out, size, &pos, u->master_name, strlen(u->master_name), 3);
        }
        if (u->db != 0) {
            snprintf(num, sizeof num, "/%d", u->db);
            rsbus__url_put(out, size, &pos, num, strlen(num), 0);
        }
        if (u->kind == RSBUS__URL_TLS && !u->verify) { rsbus__url_put(out, size, &pos, "?verify=0", 9, 0); sep = '&'; }
        if (u->has_sentinel_user) {
            snprintf(num, sizeof num, "%csentinel_user=***", sep);
            rsbus__url_put(out, size, &pos, num, strlen(num), 0);
            sep = '&';
        }
        if (u->has_sentinel_password) {
            snprintf(num, sizeof num, "%csentinel_password=***", sep);
            rsbus__url_put(out, size, &pos, num, strlen(num), 0);
        }
    }
}

RSBUS__PRIVATE int rsbus__url_ieq(const char *a, size_t n, const char *lower) {
    size_t i;
    for (i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (lower[i] == '\0' || c != lower[i]) return 0;
    }
    return lower[n] == '\0';
}

/* host[:port] (or [v6][:port]) in s[0..n) */
RSBUS__PRIVATE rsbus_result rsbus__url_hostport(const char *s, size_t n, rsbus__url *out, char *msg,
                                                size_t msg_size) {
    size_t hl, i, rest;
    const char *h, *r;
    if (n == 0) return rsbus__url_fail(msg, msg_size, "empty host", NULL);
    if (s[0] == '[') {
        const char *close = (const char *)memchr(s, ']', n);
        size_t o = 0;
        int colons = 0;
        if (!close) return rsbus__url_fail(msg, msg_size, "IPv6 address without ']'", NULL);
        h = s + 1;
        hl = (size_t)(close - h);
        if (hl == 0) return rsbus__url_fail(msg, msg_size, "empty host", NULL);
        for (i = 0; i < hl; i++) {
            char c = h[i];
            if (c == '%') {     /* zone id: %25 then [A-Za-z0-9._~-]+ */
                size_t j;
                if (hl - i < 4 || h[i + 1] != '2' || h[i + 2] != '5')
                    return rsbus__url_fail(msg, msg_size, "bad IPv6 zone (write it as %25zone)", NULL);
                if (o + 1 >= sizeof out->host) return rsbus__url_fail(msg, msg_size, "host too long", NULL);
                out->host[o++] = '%';
                for (j = i + 3; j < hl; j++) {
                    char z = h[j];
                    if (!((z >= 'a' && z <= 'z') || (z >= 'A' && z <= 'Z') || (z >= '0' && z <= '9') || z == '.' ||
                          z == '_' || z == '~' || z == '-'))
                        return rsbus__url_fail(msg, msg_size, "bad IPv6 zone", NULL);
                    if (o + 1 >= sizeof out->host) return rsbus__url_fail(msg, msg_size, "host too long", NULL);
                    out->host[o++] = z;
                }
                break;
            }
            if (!(rsbus__url_hex(c) >= 0 || c == ':' || c == '.'))
                return rsbus__url_fail(msg, msg_size, "bad IPv6 address", NULL);
            if (c == ':') colons++;
            if (o + 1 >= sizeof out->host) return rsbus__url_fail(msg, msg_size, "host too long", NULL);
            out->host[o++] = c;
        }
        out->host[o] = '\0';
        if (colons < 2) return rsbus__url_fail(msg, msg_size, "bad IPv6 address", NULL);
        r = close + 1;
        rest = n - (size_t)(r - s);
        if (rest > 0 && r[0] != ':') return rsbus__url_fail(msg, msg_size, "unexpected text after ']'", NULL);
    } else {
        const char *colon = (const char *)memchr(s, ':', n);
        h = s;
        hl = colon ? (size_t)(colon - s) : n;
        if (hl == 0) return rsbus__url_fail(msg, msg_size, "empty host", NULL);
        if (hl >= sizeof out->host) return rsbus__url_fail(msg, msg_size, "host too long (at most 255 bytes)", NULL);
        for (i = 0; i < hl; i++) {
            char c = h[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '-' || c == '_'))
                return rsbus__url_fail(msg, msg_size, "bad character in host (IPv6 needs [brackets])", NULL);
        }
        memcpy(out->host, h, hl);
        out->host[hl] = '\0';
        r = h + hl;
        rest = n - hl;
    }
    if (rest > 0) {     /* r[0] == ':' */
        int64_t port;
        if (!rsbus__url_num(r + 1, rest - 1, 65535, &port) || port == 0)
            return rsbus__url_fail(msg, msg_size, "bad port (digits, 1..65535)", NULL);
        out->port = (int)port;
    }
    return RSBUS_OK;
}

/* The host list s[0..n): one host[:port] for redis:// and rediss://, 1..RSBUS__MAX_SEEDS separated by ','
   for the sentinel and cluster forms; fills out->seeds and out->nseeds, and out->host/port (the first). */
RSBUS__PRIVATE rsbus_result rsbus__url_seeds(const char *s, size_t n, rsbus__url *out, char *msg, size_t msg_size) {
    size_t i = 0;
    int def_port = out->sentinel ? RSBUS__SENTINEL_PORT : 6379;
    if (!out->sentinel && !out->cluster) {
        rsbus_result r = rsbus__url_hostport(s, n, out, msg, msg_size);
        if (r != RSBUS_OK) return r;
        memcpy(out->seeds[0].host, out->host, sizeof out->host);
        out->seeds[0].port = out->port;
        out->nseeds = 1;
        return RSBUS_OK;
    }
    for (;;) {
        const char *comma = (const char *)memchr(s + i, ',', n - i);
        size_t len = comma ? (size_t)(comma - (s + i)) : n - i;
        rsbus_result r;
        if (out->nseeds == RSBUS__MAX_SEEDS) return rsbus__url_fail(msg, msg_size, "more than 16 hosts", NULL);
        if (len == 0) return rsbus__url_fail(msg, msg_size, "empty host in the host list", NULL);
        out->port = def_port;
        r = rsbus__url_hostport(s + i, len, out, msg, msg_size);
        if (r != RSBUS_OK) return r;
        memcpy(out->seeds[out->nseeds].host, out->host, sizeof out->host);
        out->seeds[out->nseeds].port = out->port;
        out->nseeds++;
        if (!comma) break;
        i += len + 1;
    }
    memcpy(out->host, out->seeds[0].host, sizeof out->host);
    out->port = out->seeds[0].port;
    return RSBUS_OK;
}

/* query s[0..n) (after the '?') for the kind in out->kind */
RSBUS__PRIVATE rsbus_result rsbus__url_query(const char *s, size_t n, rsbus__url *out, char *msg,
                                             size_t msg_size) {
    static const char *const names[] = { "ca", "capath", "cert", "key", "sni", "verify", "db", "user", "password",
                                         "sentinel_user", "sentinel_password" };
    unsigned seen = 0;
    size_t i = 0;
    if (n == 0) return rsbus__url_fail(msg, msg_size, "empty query after '?'", NULL);
    while (i <= n) {
        const char *p = s + i, *amp, *eq;
        size_t pl, nl, vl, k;
        amp = (const char *)memchr(p, '&', n - i);
        pl = amp ? (size_t)(amp - p) : n - i;
        if (pl == 0) return rsbus__url_fail(msg, msg_size, "empty query parameter", NULL);
        eq = (const char *)memchr(p, '=', pl);
        nl = eq ? (size_t)(eq - p) : pl;
        for (k = 0; k < sizeof names / sizeof names[0]; k++)
            if (strlen(names[k]) == nl && memcmp(names[k], p, nl) == 0) break;
        if (k == sizeof names / sizeof names[0]) {
            if (out->sentinel)
                return rsbus__url_fail(msg, msg_size,
                                       "unknown query parameter (redis+sentinel:// takes sentinel_user and "
                                       "sentinel_password, rediss+sentinel:// the TLS ones too)", NULL);
            if (out->cluster && out->kind != RSBUS__URL_TLS)
                return rsbus__url_fail(msg, msg_size, "redis+cluster:// takes no query parameters", NULL);
            if (out->kind == RSBUS__URL_TLS)
                return rsbus__url_fail(msg, msg_size,
                                       "unknown query parameter (rediss:// takes ca, capath, cert, key, sni, verify)",
                                       NULL);
            if (out->kind == RSBUS__URL_UNIX)
                return rsbus__url_fail(msg, msg_size, "unknown query parameter (unix:// takes db, user, password)",
                                       NULL);
            return rsbus__url_fail(msg, msg_size, "redis:// takes no query parameters", NULL);
        }
        if (k <= 5 && out->kind != RSBUS__URL_TLS) return rsbus__url_fail(msg, msg_size, "needs rediss://", names[k]);
        if (k >= 9 && !out->sentinel)
            return rsbus__url_fail(msg, msg_size, "is only for redis+sentinel:// and rediss+sentinel://", names[k]);
        if (k >= 6 && k <= 8 && out->kind != RSBUS__URL_UNIX)
            return rsbus__url_fail(msg, msg_size,
                                   k == 6 ? "is only for unix:// (write the db as /N after the host)"
                                          : "is only for unix:// (write user:password@ before the host)",
                                   names[k]);
        if (seen & (1u << k)) return rsbus__url_fail(msg, msg_size, "given twice", names[k]);
        seen |= 1u << k;
        if (!eq || pl - nl - 1 == 0) return rsbus__url_fail(msg, msg_size, "needs a value", names[k]);
        vl = pl - nl - 1;
        {
            const char *v = eq + 1;
            rsbus_result r = RSBUS_OK;
            size_t dl = 0;
            switch (k) {
            case 0: r = rsbus__url_component(v, vl, out->ca, sizeof out->ca, NULL, "ca", 1, msg, msg_size); break;
            case 1:
                r = rsbus__url_component(v, vl, out->capath, sizeof out->capath, NULL, "capath", 1, msg, msg_size);
                break;
            case 2: r = rsbus__url_component(v, vl, out->cert, sizeof out->cert, NULL, "cert", 1, msg, msg_size); break;
            case 3: r = rsbus__url_component(v, vl, out->key, sizeof out->key, NULL, "key", 1, msg, msg_size); break;
            case 4: r = rsbus__url_component(v, vl, out->sni, sizeof out->sni, NULL, "sni", 1, msg, msg_size); break;
            case 5:
                if (vl != 1 || (v[0] != '0' && v[0] != '1'))
                    return rsbus__url_fail(msg, msg_size, "must be 0 or 1", "verify");
                out->verify = v[0] - '0';
                break;
            case 6: {
                int64_t db;
                if (!rsbus__url_num(v, vl, INT_MAX, &db))
                    return rsbus__url_fail(msg, msg_size, "must be digits, 0..2147483647", "db");
                out->db = (int)db;
                break;
            }
            case 7:
                r = rsbus__url_component(v, vl, out->user, sizeof out->user, &dl, "user", 1, msg, msg_size);
                out->has_user = dl > 0;
                break;
            case 8:
                r = rsbus__url_component(v, vl, out->password, sizeof out->password, &dl, "password", 1, msg,
                                         msg_size);
                out->has_password = dl > 0;
                break;
            case 9:
                r = rsbus__url_component(v, vl, out->sentinel_user, sizeof out->sentinel_user, &dl, "sentinel_user", 1,
                                         msg, msg_size);
                out->has_sentinel_user = dl > 0;
                break;
            default:
                r = rsbus__url_component(v, vl, out->sentinel_password, sizeof out->sentinel_password, &dl,
                                         "sentinel_password", 1, msg, msg_size);
                out->has_sentinel_password = dl > 0;
                break;
            }
            if (r != RSBUS_OK) return r;
        }
        if (!amp) break;
        i += pl + 1;
    }
    return RSBUS_OK;
}

/* Parses url (NULL: the default redis://127.0.0.1:6379) into *out (zeroed first, then defaults: port 6379,
   db 0, verify 1) and fills out->redacted. On failure: RSBUS_E_ARG, msg "url: <why>" (msg may be NULL). */
RSBUS__PRIVATE rsbus_result rsbus__url_parse(const char *url, rsbus__url *out, char *msg, size_t msg_size) {
    size_t n = 0, i, sl;
    const char *sep, *rest, *end;
    rsbus_result r;
    if (msg && msg_size) msg[0] = '\0';
    if (!out) return rsbus__url_fail(msg, msg_size, "no output", NULL);
    memset(out, 0, sizeof *out);
    out->port = 6379;
    out->verify = 1;
    if (!url) url = "redis://127.0.0.1:6379";
    while (n <= RSBUS__URL_MAX && url[n]) n++;
    if (n == 0) return rsbus__url_fail(msg, msg_size, "empty", NULL);
    if (n > RSBUS__URL_MAX) return rsbus__url_fail(msg, msg_size, "longer than 4096 bytes", NULL);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return rsbus__url_fail(msg, msg_size, "space, control or non-ASCII character (percent-encode it)", NULL);
    }
    end = url + n;
    sep = strstr(url, "://");
    if (!sep) return rsbus__url_fail(msg, msg_size, "no scheme (redis://, rediss:// or unix://)", NULL);
    sl = (size_t)(sep - url);
    if (rsbus__url_ieq(url, sl, "redis")) out->kind = RSBUS__URL_TCP;
    else if (rsbus__url_ieq(url, sl, "redis+cluster")) { out->kind = RSBUS__URL_TCP; out->cluster = 1; }
    else if (rsbus__url_ieq(url, sl, "rediss+cluster")) { out->kind = RSBUS__URL_TLS; out->cluster = 1; }
    else if (rsbus__url_ieq(url, sl, "rediss")) out->kind = RSBUS__URL_TLS;
    else if (rsbus__url_ieq(url, sl, "unix")) out->kind = RSBUS__URL_UNIX;
    else if (rsbus__url_ieq(url, sl, "redis+sentinel")) { out->kind = RSBUS__URL_TCP; out->sentinel = 1; }
    else if (rsbus__url_ieq(url, sl, "rediss+sentinel")) { out->kind = RSBUS__URL_TLS; out->sentinel = 1; }
    else if (rsbus__url_ieq(url, sl, "redis+cluster")) { out->kind = RSBUS__URL_TCP; out->cluster = 1; }
    else if (rsbus__url_ieq(url, sl, "rediss+cluster")) { out->kind = RSBUS__URL_TLS; out->cluster = 1; }
    else if (rsbus__url_ieq(url, sl, "mem")) {
#ifdef RSBUS_NO_MEM
        return rsbus__url_fail(msg, msg_size, "mem:// is compiled out by RSBUS_NO_MEM", NULL);
#else
        out->kind = RSBUS__URL_MEM;
#endif
    }
    else return rsbus__url_fail(msg, msg_size, "unknown scheme (redis://, rediss://, unix://, redis+sentinel://, "
                                "redis+cluster://, mem://)", NULL);
    rest = sep + 3;

#ifndef RSBUS_NO_MEM
    if (out->kind == RSBUS__URL_MEM) {   /* mem://<name>: letters, digits, '.', '_', '-' */
        n = (size_t)(end - rest);
        if (n > RSBUS__MEM_NAME_MAX)
            return rsbus__url_fail(msg, msg_size, "mem:// name longer than 64 bytes", NULL);
        for (i = 0; i < n; i++) {
            char c = rest[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-'))
                return rsbus__url_fail(msg, msg_size, "mem:// takes only a name (letters, digits, '.', '_', '-'): no user, "
                                       "password, port, path or query", NULL);
        }
        memcpy(out->host, rest, n);
        out->host[n] = 0;
        rsbus__url_redact(out, out->redacted, sizeof out->redacted);
        return RSBUS_OK;
    }
#endif

    if (out->kind == RSBUS__URL_UNIX) {
        const char *q = (const char *)memchr(rest, '?', (size_t)(end - rest));
        size_t pl = q ? (size_t)(q - rest) : (size_t)(end - rest);
        if (pl == 0 || rest[0] != '/')
            return rsbus__url_fail(msg, msg_size, "unix:// needs an absolute path and no host (unix:///path)", NULL);
        /* a raw '&' or '=' is almost surely a query whose '?' went missing: refuse it, or a password would
           end up in the path, which messages show (%26 and %3D still work) */
        if (memchr(rest, '&', pl) || memchr(rest, '=', pl))
            return rsbus__url_fail(msg, msg_size, "'&' or '=' in the unix socket path (query needs '?')", NULL);
        r = rsbus__url_component(rest, pl, out->path, sizeof out->path, NULL, "unix socket path", 0, msg, msg_size);
        if (r != RSBUS_OK) return r;
        if (out->path[strlen(out->path) - 1] == '/')
            return rsbus__url_fail(msg, msg_size, "unix socket path ends with '/'", NULL);
        for (i = 0; out->path[i]; i++) {
            unsigned char c = (unsigned char)out->path[i];
            if (c < 0x20 || c == 0x7f)
                return rsbus__url_fail(msg, msg_size, "control character in the unix socket path", NULL);
        }
        if (q) {
            r = rsbus__url_query(q + 1, (size_t)(end - q - 1), out, msg, msg_size);
            if (r != RSBUS_OK) return r;
        }
    } else {
        const char *auth_end = rest, *at = NULL, *hp;
        while (auth_end < end && *auth_end != '/' && *auth_end != '?') {
            if (*auth_end == '@') at = auth_end;
            auth_end++;
        }
        if (at) {
            const char *colon = (const char *)memchr(rest, ':', (size_t)(at - rest));
            size_t ul = colon ? (size_t)(colon - rest) : (size_t)(at - rest), dl = 0;
            r = rsbus__url_component(rest, ul, out->user, sizeof out->user, &dl, "user", 0, msg, msg_size);
            if (r != RSBUS_OK) return r;
            out->has_user = dl > 0;
            if (colon) {
                r = rsbus__url_component(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password,
                                         &dl, "password", 0, msg, msg_size);
                if (r != RSBUS_OK) return r;
                out->has_password = dl > 0;
            }
            hp = at + 1;
        } else {
            hp = rest;
        }
        r = rsbus__url_seeds(hp, (size_t)(auth_end - hp), out, msg, msg_size);
        if (r != RSBUS_OK) return r;
        if (out->sentinel) {   /* "/<master-name>" then the optional "/db" */
            const char *nm, *ne;
            size_t ml = 0;
            if (auth_end >= end || *auth_end != '/')
                return rsbus__url_fail(msg, msg_size, "redis+sentinel:// needs the master's name after the hosts (/name)", NULL);
            nm = auth_end + 1;
            ne = nm;
            while (ne < end && *ne != '/' && *ne != '?') ne++;
            if (ne == nm) return rsbus__url_fail(msg, msg_size, "empty master name", NULL);
            /* as for a unix path: a raw '&' or '=' means a '?' went missing, and would put a password into
               the name, which messages show (%26 and %3D work) */
            if (memchr(nm, '&', (size_t)(ne - nm)) || memchr(nm, '=', (size_t)(ne - nm)))
                return rsbus__url_fail(msg, msg_size, "'&' or '=' in the master name (query needs '?')", NULL);
            r = rsbus__url_component(nm, (size_t)(ne - nm), out->master_name, sizeof out->master_name, &ml,
                                     "master name", 0, msg, msg_size);
            if (r != RSBUS_OK) return r;
            for (i = 0; i < ml; i++) {
                unsigned char c = (unsigned char)out->master_name[i];
                if (c <= 0x20 || c >= 0x7f)
                    return rsbus__url_fail(msg, msg_size, "master name: printable ASCII without spaces", NULL);
            }
            auth_end = ne;
        }
        if (auth_end < end && *auth_end == '/') {
            const char *d = auth_end + 1, *q = (const char *)memchr(d, '?', (size_t)(end - d));
            size_t dl = q ? (size_t)(q - d) : (size_t)(end - d);
            if (dl > 0) {
                int64_t db;
                if (!rsbus__url_num(d, dl, INT_MAX, &db))
                    return rsbus__url_fail(msg, msg_size, "bad db (digits, 0..2147483647)", NULL);
                out->db = (int)db;
            }
            auth_end = d + dl;
        }
        if (out->cluster && out->db != 0)
            return rsbus__url_fail(msg, msg_size, "redis+cluster:// has only db 0", NULL);
        if (auth_end < end) {   /* '?' */
            r = rsbus__url_query(auth_end + 1, (size_t)(end - auth_end - 1), out, msg, msg_size);
            if (r != RSBUS_OK) return r;
        }
        if (out->kind == RSBUS__URL_TLS && (out->cert[0] != '\0') != (out->key[0] != '\0'))
            return rsbus__url_fail(msg, msg_size, "cert and key go together", NULL);
    }
    rsbus__url_redact(out, out->redacted, sizeof out->redacted);
    return RSBUS_OK;
}

/* ---- rsbus_config_from_env ---- */
typedef struct rsbus__env {
    const char *prefix;
    rsbus_error *err;
    char name[RSBUS__ENV_PREFIX_MAX + 32];
} rsbus__env;

/* the value of PREFIX+field, or NULL when unset; env->name holds the variable's name */
RSBUS__PRIVATE const char *rsbus__env_get(rsbus__env *env, const char *field) {
    snprintf(env->name, sizeof env->name, "%s%s", env->prefix, field);
    return getenv(env->name);
}

RSBUS__PRIVATE rsbus_result rsbus__env_fail(rsbus__env *env, const char *why) {
    if (env->err) {
        env->err->code = RSBUS_E_ARG;
        snprintf(env->err->msg, sizeof env->err->msg, "%s: %s", env->name, why);
    }
    return RSBUS_E_ARG;
}

RSBUS__PRIVATE rsbus_result rsbus__env_str(rsbus__env *env, const char *field, const char **dst) {
    const char *v = rsbus__env_get(env, field);
    if (v) *dst = v;
    return RSBUS_OK;
}

RSBUS__PRIVATE rsbus_result rsbus__env_url(rsbus__env *env, const char *field, const char **dst) {
    const char *v = rsbus__env_get(env, field);
    if (!v) return RSBUS_OK;
    if (v[0] != '\0') {     /* "" is kept as is: rsbus_open refuses it */
        rsbus__url u;
        char why[128];      /* the name (at most 95 bytes) + ": " + this fit in rsbus_error.msg */
        if (rsbus__url_parse(v, &u, why, sizeof why) != RSBUS_OK)
            return rsbus__env_fail(env, strncmp(why, "url: ", 5) == 0 ? why + 5 : why);
    }
    *dst = v;
    return RSBUS_OK;
}

/* strict decimal in [lo, hi]; messages say "not an integer" or "out of range" */
RSBUS__PRIVATE rsbus_result rsbus__env_num(rsbus__env *env, const char *v, int64_t lo, int64_t hi, int64_t *out,
                                           const char *range) {
    size_t n = strlen(v), i;
    int intlike = n > 0;
    char why[96];
    for (i = (n > 0 && v[0] == '-') ? 1 : 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9') intlike = 0;
    if (n == 1 && v[0] == '-') intlike = 0;
    if (!intlike) return rsbus__env_fail(env, "not an integer");
    if (!rsbus__parse_i64(v, n, out) || *out < lo || *out > hi) {
        snprintf(why, sizeof why, "out of range (%s)", range);
        return rsbus__env_fail(env, why);
    }
    return RSBUS_OK;
}

RSBUS__PRIVATE rsbus_result rsbus__env_i64(rsbus__env *env, const char *field, int64_t *dst) {
    const char *v = rsbus__env_get(env, field);
    int64_t x;
    rsbus_result r;
    if (!v) return RSBUS_OK;
    r = rsbus__env_num(env, v, INT64_MIN, INT64_MAX, &x, "64-bit integer");
    if (r == RSBUS_OK) *dst = x;
    return r;
}

RSBUS__PRIVATE rsbus_result rsbus__env_int(rsbus__env *env, const char *field, int *dst) {
    const char *v = rsbus__env_get(env, field);
    int64_t x;
    rsbus_result r;
    if (!v) return RSBUS_OK;
    r = rsbus__env_num(env, v, INT_MIN, INT_MAX, &x, "int");
    if (r == RSBUS_OK) *dst = (int)x;
    return r;
}

RSBUS__PRIVATE rsbus_result rsbus__env_size(rsbus__env *env, const char *field, size_t *dst) {
    const char *v = rsbus__env_get(env, field);
    int64_t x;
    rsbus_result r;
    if (!v) return RSBUS_OK;
    if (v[0] == '-') return rsbus__env_fail(env, "must not be negative");
    r = rsbus__env_num(env, v, 0, (uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (int64_t)SIZE_MAX : INT64_MAX, &x,
                       "size");
    if (r == RSBUS_OK) *dst = (size_t)x;
    return r;
}

RSBUS__PRIVATE rsbus_result rsbus__env_bool(rsbus__env *env, const char *field, int *dst) {
    static const char *const yes[] = { "1", "true", "yes", "on" }, *const no[] = { "0", "false", "no", "off" };
    const char *v = rsbus__env_get(env, field);
    size_t n, k;
    if (!v) return RSBUS_OK;
    n = strlen(v);
    for (k = 0; k < 4; k++) {
        if (rsbus__url_ieq(v, n, yes[k])) { *dst = 1; return RSBUS_OK; }
        if (rsbus__url_ieq(v, n, no[k])) { *dst = 0; return RSBUS_OK; }
    }
    return rsbus__env_fail(env, "not a boolean (1/0, true/false, yes/no, on/off)");
}

RSBUS__PRIVATE rsbus_result rsbus__env_level(rsbus__env *env, const char *field, rsbus_log_level *dst) {
    static const char *const names[] = { "error", "warn", "info", "debug" };
    const char *v = rsbus__env_get(env, field);
    size_t n, k;
    if (!v) return RSBUS_OK;
    n = strlen(v);
    if (n == 1 && v[0] >= '0' && v[0] <= '4') {
        *dst = (rsbus_log_level)(v[0] - '0');
        return RSBUS_OK;
    }
    for (k = 0; k < 4; k++)
        if (rsbus__url_ieq(v, n, names[k])) {
            *dst = (rsbus_log_level)(k + 1);
            return RSBUS_OK;
        }
    return rsbus__env_fail(env, "not a log level (0-4, error, warn, info, debug)");
}

/* Reads PREFIX+FIELD for every scalar field into a copy of *cfg, and writes *cfg only when all are good:
   on failure *cfg is unchanged. Strings point into the environment (an empty value sets ""); URL is
   checked with the url parser; integers are strict decimal ('-' allowed, no '+', no spaces) and
   range-checked; booleans 1/0/true/false/yes/no/on/off; LOG_LEVEL 0-4 or error/warn/info/debug (any case).
   The prefix (NULL: "RSBUS_") is at most 64 bytes of [A-Za-z0-9_]. Error messages name the variable
   ("RSBUS_BATCH_SIZE: not an integer") and never echo a value. */
RSBUS__PUBLIC rsbus_result rsbus_config_from_env(rsbus_config *cfg, const char *prefix, rsbus_error *err) {
    rsbus__env env;
    rsbus_config c;
    rsbus_result r = RSBUS_OK;
    size_t i;
    if (err) {
        err->code = RSBUS_OK;
        err->msg[0] = '\0';
    }
    if (!prefix) prefix = "RSBUS_";
    for (i = 0; prefix[i]; i++) {
        char ch = prefix[i];
        if (i >= RSBUS__ENV_PREFIX_MAX || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                                            (ch >= '0' && ch <= '9') || ch == '_')) {
            if (err) {
                err->code = RSBUS_E_ARG;
                snprintf(err->msg, sizeof err->msg, "rsbus_config_from_env: prefix must be at most %d bytes of "
                         "[A-Za-z0-9_]", RSBUS__ENV_PREFIX_MAX);
            }
            return RSBUS_E_ARG;
        }
    }
    if (!cfg) {
        if (err) {
            err->code = RSBUS_E_ARG;
            snprintf(err->msg, sizeof err->msg, "rsbus_config_from_env: cfg is NULL");
        }
        return RSBUS_E_ARG;
    }
    c = *cfg;
    env.prefix = prefix;
    env.err = err;
    env.name[0] = '\0';
    if (r == RSBUS_OK) r = rsbus__env_url(&env, "URL", &c.url);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "STREAM", &c.stream);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "GROUP", &c.group);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "CONSUMER", &c.consumer);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "GROUP_START", &c.group_start);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "TENANT", &c.tenant);
    if (r == RSBUS_OK) r = rsbus__env_i64(&env, "MAX_LEN", &c.max_len);
    if (r == RSBUS_OK) r = rsbus__env_i64(&env, "DLQ_MAX_LEN", &c.dlq_max_len);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "BATCH_SIZE", &c.batch_size);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "BLOCK_MS", &c.block_ms);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "MAX_RETRIES", &c.max_retries);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "RETRY_BACKOFF_MS", &c.retry_backoff_ms);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "RETRY_BACKOFF_MAX_MS", &c.retry_backoff_max_ms);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "CLAIM_IDLE_MS", &c.claim_idle_ms);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "CLAIM_INTERVAL_MS", &c.claim_interval_ms);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "CONNECT_TIMEOUT_MS", &c.connect_timeout_ms);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "IO_TIMEOUT_MS", &c.io_timeout_ms);
    if (r == RSBUS_OK) r = rsbus__env_bool(&env, "REQUIRE_TLS", &c.require_tls);
    if (r == RSBUS_OK) r = rsbus__env_bool(&env, "PUBLISH_ONLY", &c.publish_only);
    if (r == RSBUS_OK) r = rsbus__env_size(&env, "MAX_EVENT_BYTES", &c.max_event_bytes);
    if (r == RSBUS_OK) r = rsbus__env_level(&env, "LOG_LEVEL", &c.log_level);
    if (r == RSBUS_OK) r = rsbus__env_i64(&env, "DEDUPE_TTL_MS", &c.dedupe_ttl_ms);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "SPOOL_PATH", &c.spool_path);
    if (r == RSBUS_OK) r = rsbus__env_i64(&env, "SPOOL_MAX_BYTES", &c.spool_max_bytes);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "SPOOL_FSYNC", &c.spool_fsync);
    if (r == RSBUS_OK) r = rsbus__env_bool(&env, "ACCEPT_FOREIGN", &c.accept_foreign);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "TYPE_FIELD", &c.type_field);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "ID_FIELD", &c.id_field);
    if (r == RSBUS_OK) r = rsbus__env_str(&env, "DATA_FIELD", &c.data_field);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "PARTITIONS", &c.partitions);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "PUBLISH_WAIT_REPLICAS", &c.publish_wait_replicas);
    if (r == RSBUS_OK) r = rsbus__env_int(&env, "PUBLISH_WAIT_MS", &c.publish_wait_ms);
    if (r == RSBUS_OK) {
        const char *v = rsbus__env_get(&env, "TRIM_POLICY");
        if (v) {
            size_t n = strlen(v);
            if (rsbus__url_ieq(v, n, "maxlen")) c.trim_policy = RSBUS_TRIM_MAXLEN;
            else if (rsbus__url_ieq(v, n, "acked")) c.trim_policy = RSBUS_TRIM_ACKED;
            else r = rsbus__env_fail(&env, "not a trim policy (maxlen, acked)");
        }
    }
    if (r != RSBUS_OK) return r;
    *cfg = c;
    return RSBUS_OK;
}
/* >>core types */

#if defined(__linux__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
#  include <sys/random.h>
#  define RSBUS__HAVE_GETRANDOM 1
#endif

#define RSBUS__TYPE_MAX 128
#define RSBUS__NAME_MAX 256        /* stream, group, consumer, tenant-prefixed key */
#define RSBUS__FIELD_MAX 1024      /* key, source, correlation_id, traceparent */
#define RSBUS__MAX_FIELDS 256      /* field pairs of one consumed entry */
#define RSBUS__DLQ_FIELDS 7        /* the dlq_* fields a dead letter adds */
#define RSBUS__TYPICAL_FIELDS 12   /* field pairs per entry the field pool is sized for at open (rsbus's own,
                                      at most); a batch of entries with more grows it */
#define RSBUS__FNAME_MAX 1024      /* a published field name (extra, rsbus_publish_fields) */
#define RSBUS__EXTRA_MAX 244       /* extra fields of one event: with rsbus's 12 at most, 256 */
#define RSBUS__PENDING_PAGE 1000   /* XPENDING page size of rsbus_claim */
#define RSBUS__QUIET_MS 200        /* a connection quiet this long is checked before it is used */
#define RSBUS__AHEAD 2             /* rsbus_run's reads in flight after a batch: the next one and the one after */

enum { RSBUS__PAT_EXACT = 0, RSBUS__PAT_PREFIX = 1, RSBUS__PAT_ALL = 2 };
typedef struct rsbus__handler {
    int token, kind;
    char pattern[RSBUS__TYPE_MAX + 1];
    size_t plen;                   /* for a prefix pattern, the prefix length (with the dot) */
    rsbus_handler_fn fn;
    void *user;
} rsbus__handler;

/* What happens to one entry of a batch once its handlers ran. */
enum { RSBUS__OUT_ACK = 0, RSBUS__OUT_RETRY, RSBUS__OUT_DEAD, RSBUS__OUT_DELETED, RSBUS__OUT_SKIP };
typedef struct rsbus__item {
    const redisReply *entry;       /* [id, [field, value, ...] or nil] */
    int64_t deliveries;            /* including this one */
    int outcome, malformed;
    /* decoded once, when the batch arrives: the message (its fields in the bus's field pool), why it is
       malformed (NULL: it is not; else its dlq_error, in the item's reason), and the group a replay is
       addressed to */
    rsbus_msg msg;
    const char *bad, *replay_for;
    /* dedupe (dedupe_ttl_ms > 0): the entry's event id, whether the group handled it already, whether it
       is a DLQ replay addressed to this group (handled even so), whether it was marked now */
    const char *eid; size_t eid_len;
    int seen, replay_mine, marked;
    int part;                      /* the partition it came from (0: unpartitioned) */
} rsbus__item;

typedef struct rsbus__seg { size_t off, len; } rsbus__seg;
typedef struct rsbus__cand { char id[RSBUS_ID_SIZE]; int64_t idle, count; } rsbus__cand;   /* a claim candidate */
#define RSBUS__MAX_PARTS 256               /* most partitions a stream may have */
/* One partition of the stream (see >>partitions): its stream and dead-letter keys, its slot, the constant
   start of its XADDs, and where the re-read of this consumer's own pending entries stands in it. An
   unpartitioned bus has one, whose key is the stream key. */
typedef struct rsbus__part {
    char key[RSBUS__NAME_MAX + 8]; size_t key_len;           /* K, or K:p<i> */
    char dlq_key[RSBUS__NAME_MAX + 16]; size_t dlq_key_len;  /* {key}:dlq */
    int slot;                                                /* rsbus_key_slot(key) */
    char xadd_pre[RSBUS__NAME_MAX + 104]; size_t xadd_pre_len; int xadd_pre_argc;
    int reread;                                              /* its own pending entries are still to re-read */
    char reread_from[RSBUS_ID_SIZE];
    uint64_t trimmed_unread_seen;                            /* MAXLEN drops of our group already counted */
} rsbus__part;
typedef struct rsbus__chunk { struct rsbus__chunk *next; size_t size, used; } rsbus__chunk;  /* arena memory follows */
#define RSBUS__CHUNK 65536                 /* arena chunk size; larger replies get a chunk of their own */
#define RSBUS__CHUNK_FIRST 4096            /* the first chunk: all a publisher's replies ever need */
#define RSBUS__MAX_ELEMENTS (1 << 18)      /* largest array a reply may announce (dlq_list asks 100000 at most) */
#define RSBUS__MAX_NESTING 8               /* deepest reply rsbus reads (an XREADGROUP reply is 5 deep) */

/* A reply a connection owes, and what becomes of it (RSBUS__OWE_*, see >>connection). */
typedef struct rsbus__owe {
    int kind; size_t acked, deleted;
    /* on a cluster (>>cluster), where its command is kept until it answers: the command at soff (slen
       bytes) of cn->sent; in a MULTI/EXEC, the whole block at boff (blen bytes, bn commands) and its
       place in it (bpos); bn 0: not in a block */
    size_t soff, slen, boff, blen, bn, bpos;
} rsbus__owe;
/* One connection to Redis (see >>connection). */
typedef struct rsbus__conn {
    rsbus *bus;                    /* its owner: allocator, log, error message */
    redisContext *c;               /* NULL: not connected */
    void *ssl;                     /* RSBUS_TLS: the connection's SSL (owned by hiredis) */
    int tls_cert_asked, tls_alert; /* RSBUS_TLS, this handshake: the server asked for a client certificate;
                                      the TLS alert it sent (-1: none) */
    redisReplyObjectFunctions fns; /* hiredis builds this connection's replies in the bus's arena */
    int64_t last_io_ms;            /* when the last reply arrived (monotonic) */
    size_t reply_bytes, reply_bound;  /* arena bytes of the reply being read, and their limit */
    int reply_refused;             /* the reply builder refused a hostile length, depth or size */
    char *out; size_t out_len, out_cap;          /* RESP of the commands not yet sent ... */
    rsbus__seg *segs; size_t nsegs, capsegs;     /* ... one segment each */
    size_t cmd_off; int cmd_argc, oom;           /* the command being written; a failed allocation */
    rsbus__owe *owe; size_t owe_head, owe_len, owe_cap, owe_sent;   /* replies owed: a ring, oldest first */
    char host[256]; int port;      /* this connection's own target (the master a sentinel named, a cluster
                                      node); port 0: bus->url's host and port */
    /* on a cluster: the commands sent whose replies are owed (to send again after a redirect), from
       sent_head on; and replies that stand in for the next ones owed (a MULTI/EXEC sent again elsewhere) */
    char *sent; size_t sent_head, sent_len, sent_cap;
    redisReply **sub; size_t nsub, sub_pos, cap_sub;
    int side;                      /* the cluster's spare connection: redirects are not followed on it */
    struct rsbus__mconn *mem;      /* mem://: the in-process side (>>in-process bus); NULL: Redis */
} rsbus__conn;

struct rsbus {
    rsbus_config cfg;              /* defaults applied; strings point into strs */
    rsbus_allocator a;
    char *strs; size_t strs_size;
    rsbus__url url;
    rsbus__conn conn;
    void *ssl_ctx;                 /* RSBUS_TLS: the SSL_CTX of the bus */
    int was_connected;
    int group_named;               /* config.group was given (not the default): health judges it */
    int small_reads;               /* after a reply too large: this many reads of one entry each */
    int no_config;                 /* CONFIG GET was refused: health stops asking */
    int sentinel_stale;            /* redis+sentinel://: the master answered READONLY or MASTERDOWN; the next call
                                      drops the connection and asks the sentinels again (>>sentinel) */
    int sentinel_inner;            /* >>sentinel: rsbus__connect called by rsbus__sentinel_connect */
    char err[256];
    char rcode[16];                /* the code of the last error reply ("NOGROUP"), "" if none */
    rsbus_stats st;
    /* handlers */
    rsbus__handler *handlers; size_t nhandlers, caphandlers; int next_token;
    /* run state */
    volatile sig_atomic_t stop_req;
    volatile sig_atomic_t *run_stop;
    int in_run, dispatching, nogroup;
    int reread;                    /* re-read own pending entries before new ones (in the parts that say so) */
    unsigned block_next;           /* partitions on a cluster: the one whose read waits next (>>cluster) */
    redisReply *held[RSBUS__AHEAD]; int nheld;   /* rsbus_run: replies of reads ahead, read before their turn */
    int64_t nogroup_logged_ms;
    /* keys */
    char key[RSBUS__NAME_MAX + 1], dlq_key[RSBUS__NAME_MAX + 16];   /* the stream K and {K}:dlq (parts[i] for each
                                                                        partition's own) */
    size_t key_len, dlq_key_len, group_len, consumer_len;
    rsbus__part *parts; int nparts;   /* the partitions (>>partitions); nparts 1 when unpartitioned */
    int *batch_parts;              /* scratch: the partition of each entry of a batch being read */
    /* XADD's constant start for this bus: "XADD key [MAXLEN ~ n] * type" as RESP, built on first use;
       and the last ts as a RESP bulk string (events published within a millisecond share it) */
    char xadd_pre[RSBUS__NAME_MAX + 96]; size_t xadd_pre_len; int xadd_pre_argc;
    char ts_bulk[32]; size_t ts_bulk_len; int64_t ts_last;
    /* per-batch scratch, sized batch_size */
    rsbus__item *items;
    char *reasons;                 /* batch_size * RSBUS_REASON_SIZE */
    char reason[RSBUS_REASON_SIZE];
    int64_t *counts;               /* delivery counts of a batch */
    redisReply **reps;             /* replies of a pipelined batch */
    const redisReply **got;        /* claimed entries of a batch */
    /* claim candidates, grown as needed */
    rsbus__cand *cand; size_t capcand;
    /* replies are built in this arena (hiredis's reply-object hooks), reset at each public call */
    struct rsbus__chunk *arena, *arena_cur;
    /* random bytes */
    unsigned char rnd[256]; size_t rnd_pos;
    /* offline spool (spool_path): the file, its first unsent record and its end, the events from there */
    int spool_fd;                  /* -1: no spool */
    uint64_t spool_start, spool_end;
    size_t spool_events;
    char *spool_stage; size_t spool_stage_len, spool_stage_cap;   /* records of the publish in hand */
    char *spool_rd; size_t spool_rd_cap;                          /* records read back from the file */
    int64_t spool_tried_ms;        /* rsbus_run: when it last tried to send the spool */
    struct rsbus__schemas *schemas;   /* registered schemas (>>schemas); NULL: none */
    struct rsbus__cluster *cl;     /* redis+cluster:// (>>cluster); NULL: one server */
    /* the field pool (msg->fields): one entry's worth first (RSBUS__MAX_FIELDS + RSBUS__DLQ_FIELDS: tail,
       replay_range, a DLQ page; a handler may call those), then every entry of a batch, decoded all at
       once (grown to a batch's need); and the lengths of the configured type/id/data field names */
    rsbus_field *fields; size_t cap_fields;
    size_t type_field_len, id_field_len, data_field_len;
    int custom_fields;             /* one of them is not its default name */
};

/* The connection that serves partition i (the cluster transport picks it by slot). */
#ifndef RSBUS_NO_CLUSTER
RSBUS__PRIVATE rsbus__conn *rsbus__slot_conn(rsbus *bus, int slot);   /* in >>cluster */
#endif
RSBUS__PRIVATE rsbus__conn *rsbus__part_conn(rsbus *bus, int i) {
#ifndef RSBUS_NO_CLUSTER
    if (bus->cl) return rsbus__slot_conn(bus, bus->parts[i].slot);
#endif
    (void)i;
    return &bus->conn;
}
/* 1 when every partition is served by the one connection, so one command may name several partitions'
   keys (a multi-stream XREADGROUP); the cluster transport says 0 */
RSBUS__PRIVATE int rsbus__one_conn(const rsbus *bus) { return !bus->cl || bus->nparts == 1; }
/* Every partition re-reads this consumer's own pending entries before new ones (after open, a reconnect). */
RSBUS__PRIVATE void rsbus__reread_all(rsbus *bus) {
    int i;
    if (bus->cfg.publish_only || !bus->parts) return;
    for (i = 0; i < bus->nparts; i++) { bus->parts[i].reread = 1; strcpy(bus->parts[i].reread_from, "0"); }
    bus->reread = 1;
}

/* in >>schemas */
RSBUS__PRIVATE rsbus_result rsbus__schema_publish(rsbus *bus, const char *type, int version, const char *data,
                                                  size_t len, size_t index);
RSBUS__PRIVATE const char *rsbus__schema_decode(rsbus *bus, const rsbus_msg *m);
RSBUS__PRIVATE void rsbus__schema_free(rsbus *bus);

/* What one publish call sends: n events (in MULTI/EXEC unless single), or one entry of exactly these fields. */
typedef struct rsbus__pub {
    const rsbus_event *evs; size_t n; int single;
    const rsbus_field *fields; size_t nfields;
    const char *key;               /* rsbus_publish_fields: the ordering key (picks the partition) */
    /* scratch: a partitioned batch's checked events, their partitions and a map (n each); pp[0] is a
       single publish's partition */
    struct rsbus__ev *es; int *pp; size_t *map;
} rsbus__pub;

/* in >>offline spool */
RSBUS__PRIVATE rsbus_result rsbus__publish_spooled(rsbus *bus, const rsbus__pub *pub, char (*ids)[RSBUS_ID_SIZE]);
RSBUS__PRIVATE rsbus_result rsbus__spool_open(rsbus *bus);
RSBUS__PRIVATE rsbus_result rsbus__spool_drain(rsbus *bus, size_t *sent);

/* in >>in-process bus (mem://): the hooks of a mem:// connection into >>connection */
#ifndef RSBUS_NO_MEM
RSBUS__PRIVATE rsbus_result rsbus__mem_connect(rsbus__conn *cn);
RSBUS__PRIVATE void rsbus__mem_reset(rsbus__conn *cn);
RSBUS__PRIVATE rsbus_result rsbus__mem_send(rsbus__conn *cn, size_t from, const char *what);
RSBUS__PRIVATE rsbus_result rsbus__mem_pump(rsbus__conn *cn, const char *what);
RSBUS__PRIVATE int rsbus__mem_wait(rsbus__conn *cn, int64_t timeout_ms);
RSBUS__PRIVATE rsbus_result rsbus__mem_open(rsbus *bus, const rsbus_config *c, char *msg, size_t size);
RSBUS__PRIVATE void rsbus__mem_close(rsbus *bus);
#endif

/* >>time and randomness */
RSBUS__PRIVATE int64_t rsbus__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
RSBUS__PRIVATE int64_t rsbus__mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
RSBUS__PRIVATE void rsbus__sleep_ms(int64_t ms) {
    struct timespec ts;
    if (ms <= 0) return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}
/* Fills out with n bytes from the kernel's random source; 0 on success. */
RSBUS__PRIVATE int rsbus__os_random(unsigned char *out, size_t n) {
    size_t got = 0;
#ifdef RSBUS__HAVE_GETRANDOM
    while (got < n) {
        ssize_t r = getrandom(out + got, n - got, 0);
        if (r < 0) { if (errno == EINTR) continue; break; }
        got += (size_t)r;
    }
    if (got == n) return 0;
#endif
    {
        int fd = open("/dev/urandom", O_RDONLY);
        if (fd < 0) return -1;
        while (got < n) {
            ssize_t r = read(fd, out + got, n - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) { close(fd); return -1; }
            got += (size_t)r;
        }
        close(fd);
    }
    return 0;
}
RSBUS__PRIVATE int rsbus__random(rsbus *bus, unsigned char *out, size_t n) {
    while (n > 0) {
        size_t take;
        if (bus->rnd_pos >= sizeof bus->rnd) {
            if (rsbus__os_random(bus->rnd, sizeof bus->rnd) != 0) return -1;
            bus->rnd_pos = 0;
        }
        take = RSBUS__MIN(n, sizeof bus->rnd - bus->rnd_pos);
        memcpy(out, bus->rnd + bus->rnd_pos, take);
        memset(bus->rnd + bus->rnd_pos, 0, take);
        bus->rnd_pos += take; out += take; n -= take;
    }
    return 0;
}
/* 32 lower-case hex digits and a NUL. */
RSBUS__PRIVATE int rsbus__event_id(rsbus *bus, char out[33]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int i;
    if (rsbus__random(bus, b, sizeof b) != 0) return -1;
    for (i = 0; i < 16; i++) { out[2 * i] = hex[b[i] >> 4]; out[2 * i + 1] = hex[b[i] & 15]; }
    out[32] = 0;
    return 0;
}

/* >>logging */
/* Copies at most n bytes of s into out (size > 0), replacing control and non-ASCII bytes by '?',
   so that text from Redis or a caller cannot forge a log line. */
RSBUS__PRIVATE void rsbus__clean(const char *s, size_t n, char *out, size_t size) {
    size_t i, j = 0;
    for (i = 0; i < n && s[i] && j + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[j++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    out[j] = 0;
}

RSBUS__PRIVATE void rsbus__log(rsbus *bus, rsbus_log_level level, const char *fmt, ...) RSBUS__PRINTF(3, 4);
RSBUS__PRIVATE void rsbus__log(rsbus *bus, rsbus_log_level level, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    if (!bus->cfg.log || level > bus->cfg.log_level) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bus->cfg.log(bus->cfg.log_user, level, msg);
}

/* >>errors */
RSBUS__PUBLIC const char *rsbus_result_str(rsbus_result r) {
    switch (r) {
    case RSBUS_OK: return "RSBUS_OK";
    case RSBUS_E_ARG: return "RSBUS_E_ARG";
    case RSBUS_E_NOMEM: return "RSBUS_E_NOMEM";
    case RSBUS_E_IO: return "RSBUS_E_IO";
    case RSBUS_E_TIMEOUT: return "RSBUS_E_TIMEOUT";
    case RSBUS_E_AUTH: return "RSBUS_E_AUTH";
    case RSBUS_E_TLS: return "RSBUS_E_TLS";
    case RSBUS_E_REDIS: return "RSBUS_E_REDIS";
    case RSBUS_E_PROTOCOL: return "RSBUS_E_PROTOCOL";
    case RSBUS_E_JSON: return "RSBUS_E_JSON";
    case RSBUS_E_NOTFOUND: return "RSBUS_E_NOTFOUND";
    case RSBUS_E_REPLICAS: return "RSBUS_E_REPLICAS";
    }
    return (int)r == RSBUS_SPOOLED ? "RSBUS_SPOOLED" : "RSBUS_E_UNKNOWN";
}
RSBUS__PUBLIC const char *rsbus_errmsg(const rsbus *bus) { return bus ? bus->err : ""; }

RSBUS__PRIVATE rsbus_result rsbus__fail(rsbus *bus, rsbus_result code, const char *fmt, ...) RSBUS__PRINTF(3, 4);
RSBUS__PRIVATE rsbus_result rsbus__fail(rsbus *bus, rsbus_result code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bus->err, sizeof bus->err, fmt, ap);
    va_end(ap);
    rsbus__log(bus, RSBUS_LOG_DEBUG, "%s: %s", rsbus_result_str(code), bus->err);
    return code;
}
/* Whether the last error reply's code (its first word) was this one. */
RSBUS__PRIVATE int rsbus__rcode_is(const rsbus *bus, const char *code) { return strcmp(bus->rcode, code) == 0; }

/* One mapping of a failed socket or hiredis call to a result: herr is hiredis's error kind (0 after a
   plain socket call), e the errno read right after the call, text hiredis's message (may be NULL). */
RSBUS__PRIVATE rsbus_result rsbus__io_code(int herr, int e, const char *text) {
    switch (herr) {
#ifdef REDIS_ERR_TIMEOUT
    case REDIS_ERR_TIMEOUT: return RSBUS_E_TIMEOUT;
#endif
    case REDIS_ERR_OOM: return RSBUS_E_NOMEM;
    case REDIS_ERR_PROTOCOL: return RSBUS_E_PROTOCOL;
    case 0: case REDIS_ERR_IO:
        if (e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT || e == EINPROGRESS) return RSBUS_E_TIMEOUT;
        break;
    default: break;
    }
    if (text && (strstr(text, "timed out") || strstr(text, "Timed out"))) return RSBUS_E_TIMEOUT;
    return RSBUS_E_IO;
}

/* An error reply from Redis. Its code, the first word ("NOGROUP", "BUSYGROUP", "NOPERM", "ERR"), is kept
   in bus->rcode for the caller to branch on and decides the result; its text (bounded, cleaned) goes
   into the message. */
RSBUS__PRIVATE rsbus_result rsbus__reply_fail(rsbus *bus, const redisReply *r, const char *what) {
    char text[200];
    rsbus_result code = RSBUS_E_REDIS;
    size_t n = 0, len = r->str ? r->len : 0;
    while (n < len && n < sizeof bus->rcode - 1 && r->str[n] >= 'A' && r->str[n] <= 'Z') n++;
    if (n) memcpy(bus->rcode, r->str, n);
    bus->rcode[n] = 0;
    rsbus__clean(r->str ? r->str : "", len, text, sizeof text);
    if (rsbus__rcode_is(bus, "NOAUTH") || rsbus__rcode_is(bus, "WRONGPASS") || rsbus__rcode_is(bus, "NOPERM"))
        code = RSBUS_E_AUTH;
    else if (rsbus__rcode_is(bus, "NOGROUP"))
        bus->nogroup = 1;
    else if (rsbus__rcode_is(bus, "RSBUSNOMEM"))
        code = RSBUS_E_NOMEM;   /* mem://: the bus's allocator failed in the in-process engine */
    else if (rsbus__rcode_is(bus, "LOADING") || rsbus__rcode_is(bus, "MASTERDOWN") || rsbus__rcode_is(bus, "READONLY") ||
             rsbus__rcode_is(bus, "NOREPLICAS"))
        code = RSBUS_E_IO;   /* not ready to serve (loading after a restart, a replica without its master, a demoted
                                master, too few replicas for min-replicas-to-write: nothing was written): transient */
    if (bus->url.sentinel && (rsbus__rcode_is(bus, "READONLY") || rsbus__rcode_is(bus, "MASTERDOWN")))
        bus->sentinel_stale = 1;   /* not the master any more: the next call asks the sentinels (>>sentinel) */
    else if (rsbus__rcode_is(bus, "ERR") && (strstr(text, "no such key") || strstr(text, "requires the key to exist")))
        code = RSBUS_E_NOTFOUND;   /* a missing stream has no code of its own (XINFO, XGROUP SETID) */
    return rsbus__fail(bus, code, "%s: %s", what, text);
}

/* >>connection
   A connection is a hiredis context (used for its socket and its reply parser), a buffer of commands not
   yet sent (RESP written by rsbus, one segment per command) and the queue of replies it owes, oldest
   first. Every command goes in with rsbus__cmd ... rsbus__cmd_end, which queues its reply together with
   what becomes of it:
   - RSBUS__OWE_CALLER: the caller reads it with rsbus__recv or rsbus__call;
   - RSBUS__OWE_MARK:   a dedupe mark sent at once and read later; a refusal is logged;
   - RSBUS__OWE_ACK:    a batch's XACK that goes out with the next command (rsbus_run); its entries are
                        counted when it answers, and stay pending when it is refused or lost;
   - RSBUS__OWE_READ:   a read ahead of the next batches (rsbus_run); its reply is held for its turn.
   Reading one reply first takes care of those owed before it, in order, so replies can never be taken
   for one another. The first 'owe_sent' entries of the queue went out; the others are the segments in
   the buffer. The rules for every command:
   - a reply of the wrong shape drops the connection (the pipeline may be out of step): RSBUS_E_PROTOCOL;
   - a lost connection drops every reply owed: a lost XACK leaves its entries pending, a lost read
     ahead leaves its entries pending too, and both come back (at-least-once). */
enum { RSBUS__OWE_CALLER = 0, RSBUS__OWE_MARK, RSBUS__OWE_ACK, RSBUS__OWE_READ };
#ifndef RSBUS_NO_CLUSTER
/* in >>cluster */
RSBUS__PRIVATE void rsbus__keep_sent(rsbus__conn *cn);
RSBUS__PRIVATE void rsbus__sent_done(rsbus__conn *cn, const rsbus__owe *o);
RSBUS__PRIVATE int rsbus__redirect_kind(const redisReply *r);
RSBUS__PRIVATE rsbus_result rsbus__follow(rsbus__conn *cn, redisReply **out, const char *what);
RSBUS__PRIVATE void rsbus__lost(rsbus *bus);
#else
#define rsbus__lost(bus) ((void)(bus))
#endif

RSBUS__PRIVATE rsbus__owe *rsbus__owe_at(const rsbus__conn *cn, size_t i) {
    return &cn->owe[(cn->owe_head + i) % cn->owe_cap];
}
/* Whether a reply of this kind is owed (the queue is a few entries long). */
RSBUS__PRIVATE int rsbus__owes(const rsbus__conn *cn, int kind) {
    size_t i;
    for (i = 0; i < cn->owe_len; i++) if (rsbus__owe_at(cn, i)->kind == kind) return 1;
    return 0;
}
/* Forgets the replies owed by commands that went out (the connection is gone). */
RSBUS__PRIVATE void rsbus__owe_drop_sent(rsbus__conn *cn) {
    if (cn->owe_cap) cn->owe_head = (cn->owe_head + cn->owe_sent) % cn->owe_cap;
    cn->owe_len -= cn->owe_sent;
    cn->owe_sent = 0;
}

/* Where the queue stands, to go back to when a command cannot be completed (a batch with a bad event):
   the commands queued before it (a deferred XACK) stay. */
typedef struct rsbus__mark { size_t out_len, nsegs, owe_len; } rsbus__mark;
RSBUS__PRIVATE rsbus__mark rsbus__cmd_mark(const rsbus__conn *cn) {
    rsbus__mark m;
    m.out_len = cn->out_len; m.nsegs = cn->nsegs; m.owe_len = cn->owe_len;
    return m;
}
RSBUS__PRIVATE void rsbus__cmd_rewind(rsbus__conn *cn, rsbus__mark m) {
    cn->out_len = m.out_len; cn->nsegs = m.nsegs; cn->owe_len = m.owe_len; cn->oom = 0;
}
/* Forgets every command not yet sent. */
RSBUS__PRIVATE void rsbus__reset_cmds(rsbus__conn *cn) {
    cn->out_len = 0; cn->nsegs = 0; cn->owe_len = cn->owe_sent; cn->oom = 0;
}

/* Closes the connection. keep_unsent: the commands not yet sent stay queued for the next connection
   (nothing of them went out, so they cannot reach Redis twice); else they are forgotten too. */
RSBUS__PRIVATE void rsbus__disconnect(rsbus__conn *cn, int keep_unsent) {
    if (cn->c) { redisFree(cn->c); cn->c = NULL; }   /* frees the connection's SSL too */
    cn->ssl = NULL;
#ifndef RSBUS_NO_MEM
    if (cn->mem) rsbus__mem_reset(cn);
#endif
    rsbus__owe_drop_sent(cn);
    cn->sent_head = cn->sent_len = cn->nsub = cn->sub_pos = 0;
    if (!keep_unsent) rsbus__reset_cmds(cn);
}
RSBUS__PRIVATE void rsbus__drop(rsbus__conn *cn) { rsbus__disconnect(cn, 0); }

/* A failed hiredis call: map the context's error and drop the connection (a hiredis context never
   recovers from one). */
RSBUS__PRIVATE rsbus_result rsbus__ctx_fail(rsbus__conn *cn, const char *what) {
    int e = errno;
    rsbus *bus = cn->bus;
    rsbus_result code;
    char text[128];
    if (!cn->c) return rsbus__fail(bus, RSBUS_E_IO, "%s: not connected", what);
    code = rsbus__io_code(cn->c->err, e, NULL);
    rsbus__clean(cn->c->errstr, sizeof cn->c->errstr, text, sizeof text);
    if (code == RSBUS_E_TIMEOUT) snprintf(text, sizeof text, "timed out");
    if (code == RSBUS_E_NOMEM) snprintf(text, sizeof text, "out of memory");
    if (cn->reply_refused) {
        code = RSBUS_E_PROTOCOL;
        snprintf(text, sizeof text, "reply too large or too deep for rsbus");
    }
#ifdef RSBUS_TLS
    if (cn->ssl && code == RSBUS_E_IO) {   /* a TLS alert (a refused client certificate) says more */
        unsigned long ssl_err = ERR_peek_last_error();
        if (ssl_err && ERR_reason_error_string(ssl_err)) {
            code = RSBUS_E_TLS;
            snprintf(text, sizeof text, "TLS: %s", ERR_reason_error_string(ssl_err));
        }
    }
#endif
    rsbus__drop(cn);
    rsbus__lost(bus);
    return rsbus__fail(bus, code, "%s %s: %s", what, bus->url.redacted, text);
}
/* A reply of a shape rsbus does not expect: the one rule for every command. */
RSBUS__PRIVATE rsbus_result rsbus__shape_fail(rsbus__conn *cn, const char *what) {
    rsbus__drop(cn);   /* a reply we do not understand may leave the pipeline out of step */
    return rsbus__fail(cn->bus, RSBUS_E_PROTOCOL, "%s: unexpected reply from Redis", what);
}

/* >>command buffer */
/* Commands are written as RESP into cn->out, one segment per command, and sent with one sendmsg.
   Each command reserves 16 bytes in front for its "*argc\r\n" header, written when it ends. */
RSBUS__PRIVATE int rsbus__reserve(rsbus__conn *cn, size_t more) {
    char *p;
    if (cn->oom) return -1;
    if (more > SIZE_MAX / 2 - cn->out_len) { cn->oom = 1; return -1; }
    p = (char *)rsbus__grow(&cn->bus->a, cn->out, &cn->out_cap, cn->out_len + more, 1, 4096);
    if (!p) { cn->oom = 1; return -1; }
    cn->out = p;
    return 0;
}
RSBUS__PRIVATE void rsbus__cmd(rsbus__conn *cn) {
    cn->cmd_argc = 0;
    if (rsbus__reserve(cn, 16) != 0) return;
    cn->cmd_off = cn->out_len;
    cn->out_len += 16;
}
/* RESP written in place at o (the caller reserved room: n + 32 bytes for a bulk string); each returns the
   end. "$<n>\r\n", then "<p>\r\n" for a bulk string; an integer as a bulk string of its decimal digits. */
RSBUS__PRIVATE char *rsbus__put_dec(char *o, uint64_t v, size_t digits) {   /* v has exactly 'digits' digits */
    char *end = o + digits;
    do { *--end = (char)('0' + v % 10); v /= 10; } while (v);
    return o + digits;
}
RSBUS__PRIVATE size_t rsbus__ndigits(uint64_t v) {
    size_t k = 1;
    while (v >= 10) { v /= 10; k++; }
    return k;
}
RSBUS__PRIVATE char *rsbus__bulk(char *o, const char *p, size_t n) {
    *o++ = '$';
    o = rsbus__put_dec(o, n, rsbus__ndigits(n));
    *o++ = '\r'; *o++ = '\n';
    if (n) memcpy(o, p, n);
    o += n;
    *o++ = '\r'; *o++ = '\n';
    return o;
}
RSBUS__PRIVATE char *rsbus__bulk_int(char *o, int64_t v) {
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t k = rsbus__ndigits(u);
    *o++ = '$';
    o = rsbus__put_dec(o, k + (v < 0), rsbus__ndigits(k + (v < 0)));
    *o++ = '\r'; *o++ = '\n';
    if (v < 0) *o++ = '-';
    o = rsbus__put_dec(o, u, k);
    *o++ = '\r'; *o++ = '\n';
    return o;
}
RSBUS__PRIVATE void rsbus__arg(rsbus__conn *cn, const char *p, size_t n) {
    if (rsbus__reserve(cn, n + 32) != 0) return;
    cn->out_len = (size_t)(rsbus__bulk(cn->out + cn->out_len, p, n) - cn->out);
    cn->cmd_argc++;
}
/* A literal argument: command words and fixed options, their length taken by the compiler. */
#define rsbus__lit(cn, s) rsbus__arg((cn), "" s, sizeof(s) - 1)
RSBUS__PRIVATE void rsbus__argz(rsbus__conn *cn, const char *s) { rsbus__arg(cn, s, strlen(s)); }
RSBUS__PRIVATE void rsbus__argi(rsbus__conn *cn, int64_t v) {
    if (rsbus__reserve(cn, 48) != 0) return;
    cn->out_len = (size_t)(rsbus__bulk_int(cn->out + cn->out_len, v) - cn->out);
    cn->cmd_argc++;
}
/* Ends the command begun by rsbus__cmd and queues its reply as 'kind' (RSBUS__OWE_*), with the counts
   an RSBUS__OWE_ACK settles. */
/* Room for one more segment and one more owed reply; 0, or -1 (and cn->oom) when memory ran out. */
RSBUS__PRIVATE int rsbus__queue_room(rsbus__conn *cn) {
    if (cn->oom) return -1;
    if (cn->nsegs == cn->capsegs) {
        rsbus__seg *p = (rsbus__seg *)rsbus__grow(&cn->bus->a, cn->segs, &cn->capsegs, cn->nsegs + 1, sizeof *p, 16);
        if (!p) { cn->oom = 1; return -1; }
        cn->segs = p;
    }
    if (cn->owe_len == cn->owe_cap) {   /* a full ring: grown, and its wrapped part moved after the old end */
        size_t old = cn->owe_cap;
        rsbus__owe *p = (rsbus__owe *)rsbus__grow(&cn->bus->a, cn->owe, &cn->owe_cap, cn->owe_len + 1, sizeof *p, 16);
        if (!p) { cn->oom = 1; return -1; }
        cn->owe = p;
        if (cn->owe_head) memcpy(p + old, p, cn->owe_head * sizeof *p);   /* old >= owe_head: it fits */
    }
    return 0;
}
RSBUS__PRIVATE void rsbus__owe_push(rsbus__conn *cn, int kind, size_t acked, size_t deleted) {
    rsbus__owe *o = rsbus__owe_at(cn, cn->owe_len++);
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->acked = acked;
    o->deleted = deleted;
}
RSBUS__PRIVATE void rsbus__cmd_end_owing(rsbus__conn *cn, int kind, size_t acked, size_t deleted) {
    size_t nl, start;
    char *h;
    if (rsbus__queue_room(cn) != 0) return;
    nl = rsbus__ndigits((uint64_t)cn->cmd_argc);
    start = cn->cmd_off + 16 - (nl + 3);
    h = cn->out + start;
    *h++ = '*';
    h = rsbus__put_dec(h, (uint64_t)cn->cmd_argc, nl);
    *h++ = '\r'; *h = '\n';
    cn->segs[cn->nsegs].off = start;
    cn->segs[cn->nsegs].len = cn->out_len - start;
    cn->nsegs++;
    rsbus__owe_push(cn, kind, acked, deleted);
}
RSBUS__PRIVATE void rsbus__cmd_end(rsbus__conn *cn) { rsbus__cmd_end_owing(cn, RSBUS__OWE_CALLER, 0, 0); }

/* >>reply arena */
/* hiredis builds each reply through these hooks: every object and string of a reply lands in the bus's
   arena instead of one malloc each. The arena is reset when a public call starts (never during a
   handler, whose publish may need the batch still in hand, nor while replies read ahead are held), so
   steady state allocates nothing.
   rsbus never calls freeReplyObject: a reply lives until the next reset. */
RSBUS__PRIVATE char *rsbus__chunk_base(rsbus__chunk *ch) {   /* 16-byte aligned start of its memory */
    uintptr_t p = (uintptr_t)(ch + 1);
    return (char *)(ch + 1) + ((16 - (p & 15)) & 15);
}
RSBUS__PRIVATE void *rsbus__arena_alloc(rsbus *bus, size_t n) {
    rsbus__chunk *ch = bus->arena_cur;
    void *p;
    n = (n + 15) & ~(size_t)15;
    while (ch && ch->size - ch->used < n && ch->next) ch = bus->arena_cur = ch->next;
    if (!ch || ch->size - ch->used < n) {
        size_t size = RSBUS__MAX(n, ch ? (size_t)RSBUS__CHUNK : (size_t)RSBUS__CHUNK_FIRST);
        rsbus__chunk *nc;
        if (size > SIZE_MAX - sizeof(rsbus__chunk) - 16) return NULL;
        nc = (rsbus__chunk *)rsbus__alloc(&bus->a, sizeof(rsbus__chunk) + 16 + size);
        if (!nc) return NULL;
        nc->next = ch ? ch->next : NULL;
        nc->size = size;
        nc->used = 0;
        if (ch) ch->next = nc; else bus->arena = nc;
        bus->arena_cur = ch = nc;
    }
    p = rsbus__chunk_base(ch) + ch->used;
    ch->used += n;
    return p;
}
/* Forgets every reply; keeps the chunks of ordinary size for the next call, frees the outsized ones. */
RSBUS__PRIVATE void rsbus__arena_reset(rsbus *bus) {
    rsbus__chunk **link = &bus->arena;
    while (*link) {
        rsbus__chunk *ch = *link;
        if (ch->size > RSBUS__CHUNK) {
            *link = ch->next;
            rsbus__free(&bus->a, ch, sizeof(rsbus__chunk) + 16 + ch->size);
            continue;
        }
        ch->used = 0;
        link = &ch->next;
    }
    bus->arena_cur = bus->arena;
}
RSBUS__PRIVATE void rsbus__arena_free(rsbus *bus) {
    while (bus->arena) {
        rsbus__chunk *ch = bus->arena;
        bus->arena = ch->next;
        rsbus__free(&bus->a, ch, sizeof(rsbus__chunk) + 16 + ch->size);
    }
    bus->arena_cur = NULL;
}
RSBUS__PRIVATE redisReply *rsbus__reply_new(const redisReadTask *task, size_t extra) {
    rsbus__conn *cn = (rsbus__conn *)task->privdata;
    const redisReadTask *t = task;
    redisReply *r;
    int depth = 0;
    while ((t = t->parent) != NULL)
        if (++depth >= RSBUS__MAX_NESTING) { cn->reply_refused = 1; return NULL; }
    cn->reply_bytes += sizeof(redisReply) + extra;
    if (cn->reply_bytes > cn->reply_bound) {   /* a batch too large: the next reads take one entry at a time */
        cn->reply_refused = 1;
        cn->bus->small_reads = 100;
        return NULL;
    }
    r = (redisReply *)rsbus__arena_alloc(cn->bus, sizeof(redisReply) + extra);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->type = task->type;
    if (task->parent) {
        redisReply *parent = (redisReply *)task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}
RSBUS__PRIVATE void *rsbus__reply_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *r;
    if (len > SIZE_MAX / 2) return NULL;
    r = rsbus__reply_new(task, len + 1);
    if (!r) return NULL;
    r->str = (char *)(r + 1);
    memcpy(r->str, str, len);
    r->str[len] = 0;
    r->len = len;
    return r;
}
#if HIREDIS_MAJOR >= 1
RSBUS__PRIVATE void *rsbus__reply_array(const redisReadTask *task, size_t elements) {
#else
RSBUS__PRIVATE void *rsbus__reply_array(const redisReadTask *task, int elements) {
#endif
    redisReply *r;
    size_t n = (size_t)elements;
    if (n > RSBUS__MAX_ELEMENTS) {   /* a hostile length: refused, not allocated */
        ((rsbus__conn *)task->privdata)->reply_refused = 1;
        return NULL;
    }
    r = rsbus__reply_new(task, n * sizeof(redisReply *));
    if (!r) return NULL;
    r->elements = n;
    if (n) {
        r->element = (redisReply **)(void *)(r + 1);
        memset(r->element, 0, n * sizeof(redisReply *));
    }
    return r;
}
RSBUS__PRIVATE void *rsbus__reply_integer(const redisReadTask *task, long long value) {
    redisReply *r = rsbus__reply_new(task, 0);
    if (r) r->integer = value;
    return r;
}
RSBUS__PRIVATE void *rsbus__reply_nil(const redisReadTask *task) {
    redisReply *r = rsbus__reply_new(task, 0);
    if (r) r->type = REDIS_REPLY_NIL;   /* the task says ARRAY or STRING for "*-1" and "$-1" */
    return r;
}
#if HIREDIS_MAJOR >= 1
RSBUS__PRIVATE void *rsbus__reply_double(const redisReadTask *task, double value, char *str, size_t len) {
    redisReply *r = (redisReply *)rsbus__reply_string(task, str, len);
    if (r) r->dval = value;
    return r;
}
RSBUS__PRIVATE void *rsbus__reply_bool(const redisReadTask *task, int value) {
    redisReply *r = rsbus__reply_new(task, 0);
    if (r) r->integer = value != 0;
    return r;
}
#endif
RSBUS__PRIVATE void rsbus__reply_forget(void *reply) { (void)reply; }   /* hiredis's freeObject: the arena owns every reply */
/* A connection of the bus, not connected yet; hiredis will build its replies in the bus's arena. */
RSBUS__PRIVATE void rsbus__conn_init(rsbus *bus, rsbus__conn *cn) {
    memset(cn, 0, sizeof *cn);
    cn->bus = bus;
    cn->fns.createString = rsbus__reply_string;
    cn->fns.createArray = rsbus__reply_array;
    cn->fns.createInteger = rsbus__reply_integer;
    cn->fns.createNil = rsbus__reply_nil;
#if HIREDIS_MAJOR >= 1
    cn->fns.createDouble = rsbus__reply_double;
    cn->fns.createBool = rsbus__reply_bool;
#endif
    cn->fns.freeObject = rsbus__reply_forget;
}
/* Frees what a connection holds. */
RSBUS__PRIVATE void rsbus__conn_free(rsbus__conn *cn) {
    rsbus_allocator *a = &cn->bus->a;
    rsbus__drop(cn);
    rsbus__free(a, cn->out, cn->out_cap);
    rsbus__free(a, cn->segs, cn->capsegs * sizeof *cn->segs);
    rsbus__free(a, cn->owe, cn->owe_cap * sizeof *cn->owe);
    rsbus__free(a, cn->sent, cn->sent_cap);
    rsbus__free(a, (void *)cn->sub, cn->cap_sub * sizeof *cn->sub);
    cn->out = NULL; cn->segs = NULL; cn->owe = NULL; cn->sent = NULL; cn->sub = NULL;
    cn->out_cap = cn->capsegs = cn->owe_cap = cn->sent_cap = cn->cap_sub = 0;
}
/* A reply the caller keeps after the call (a DLQ page): copied out of the arena into one block. */
RSBUS__PRIVATE size_t rsbus__reply_size(const redisReply *r) {
    size_t n = sizeof(redisReply) + 32, i;
    if (r->str) n += r->len + 1;
    if (r->type == REDIS_REPLY_ARRAY) {
        n += r->elements * sizeof(redisReply *);
        for (i = 0; i < r->elements; i++) n += rsbus__reply_size(r->element[i]);
    }
    return n;
}
RSBUS__PRIVATE redisReply *rsbus__reply_copy(const redisReply *r, char **mem) {
    redisReply *c = (redisReply *)(void *)*mem;
    size_t i;
    *mem += (sizeof(redisReply) + 15) & ~(size_t)15;
    *c = *r;
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        c->element = (redisReply **)(void *)*mem;
        *mem += r->elements * sizeof(redisReply *);
        for (i = 0; i < r->elements; i++) c->element[i] = rsbus__reply_copy(r->element[i], mem);
    }
    if (r->str) {
        c->str = *mem;
        memcpy(c->str, r->str, r->len + 1);
        *mem += r->len + 1;
    }
    *mem += (16 - ((uintptr_t)*mem & 15)) & 15;
    return c;
}

/* >>redis glue */
RSBUS__PRIVATE rsbus_result rsbus__connect(rsbus__conn *cn);
RSBUS__PRIVATE void rsbus__forget_ahead(rsbus *bus);

#ifdef RSBUS_TLS
/* >>tls (RSBUS_TLS, hiredis 1.x) */
/* TLS goes through OpenSSL, which writes with write(2) (also from inside SSL_read, for alerts), so it
   cannot use MSG_NOSIGNAL: around each TLS call SIGPIPE is blocked in this thread, and one it raised is
   taken off the pending set before the mask is restored. */
typedef struct rsbus__pipe_guard { sigset_t set, old; int had; } rsbus__pipe_guard;
RSBUS__PRIVATE void rsbus__pipe_block(rsbus__pipe_guard *g) {
    sigset_t pend;
    sigemptyset(&g->set);
    sigaddset(&g->set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &g->set, &g->old);
    sigpending(&pend);
    g->had = sigismember(&pend, SIGPIPE);
}
RSBUS__PRIVATE void rsbus__pipe_restore(rsbus__pipe_guard *g) {
    if (!g->had) {
        sigset_t pend;
        sigpending(&pend);
        if (sigismember(&pend, SIGPIPE)) {
            struct timespec zero = { 0, 0 };
            (void)sigtimedwait(&g->set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}
/* The bus's SSL_CTX, from the URL's ca, capath, cert, key and verify. */
RSBUS__PRIVATE rsbus_result rsbus__tls_setup(rsbus *bus, char *msg, size_t size) {
    const rsbus__url *u = &bus->url;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    const char *bad = NULL;
    if (!ctx) { snprintf(msg, size, "TLS: cannot create an SSL context"); return RSBUS_E_TLS; }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, u->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (u->ca[0] || u->capath[0]) {
        if (SSL_CTX_load_verify_locations(ctx, u->ca[0] ? u->ca : NULL, u->capath[0] ? u->capath : NULL) != 1)
            bad = "cannot load the CA file or directory (ca=, capath=)";
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        bad = "cannot load the system's CA certificates";
    }
    if (!bad && u->cert[0]) {
        if (SSL_CTX_use_certificate_chain_file(ctx, u->cert) != 1) bad = "cannot load the client certificate (cert=)";
        else if (SSL_CTX_use_PrivateKey_file(ctx, u->key, SSL_FILETYPE_PEM) != 1) bad = "cannot load the client key (key=)";
        else if (SSL_CTX_check_private_key(ctx) != 1) bad = "the client key does not match the certificate";
    }
    if (bad) {
        SSL_CTX_free(ctx);
        snprintf(msg, size, "TLS %.150s: %s", u->redacted, bad);
        return RSBUS_E_TLS;
    }
    bus->ssl_ctx = ctx;
    return RSBUS_OK;
}
/* Watches the handshake for what explains a connection the server drops right after it: with TLS 1.3 the
   client's handshake is done before the server has judged the client's certificate, so a refusal
   arrives as an alert with the first reply, or, when the server's close beats it, as a reset. */
RSBUS__PRIVATE void rsbus__tls_watch(int write_p, int version, int content_type, const void *buf, size_t len,
                                     SSL *ssl, void *arg) {
    rsbus__conn *cn = (rsbus__conn *)arg;
    const unsigned char *b = (const unsigned char *)buf;
    (void)version; (void)ssl;
    if (write_p || len < 1) return;
    if (content_type == SSL3_RT_HANDSHAKE && b[0] == SSL3_MT_CERTIFICATE_REQUEST) cn->tls_cert_asked = 1;
    else if (content_type == SSL3_RT_ALERT && len >= 2 && b[0] == SSL3_AL_FATAL) cn->tls_alert = b[1];
}
/* A connection lost in its first round trip after a handshake in which the server asked for a client
   certificate, or sent an alert: that is a TLS refusal, not a network error. */
RSBUS__PRIVATE rsbus_result rsbus__tls_refusal(rsbus__conn *cn, rsbus_result r) {
    rsbus *bus = cn->bus;
    if (bus->url.kind != RSBUS__URL_TLS || (r != RSBUS_E_IO && r != RSBUS_E_PROTOCOL) ||
        (!cn->tls_cert_asked && cn->tls_alert < 0))
        return r;
    if (cn->tls_alert >= 0)
        return rsbus__fail(bus, RSBUS_E_TLS, "TLS %s: the server ended the session: %s", bus->url.redacted,
                           SSL_alert_desc_string_long(cn->tls_alert));
    return rsbus__fail(bus, RSBUS_E_TLS, "TLS %s: the server closed the connection after asking for a client "
                       "certificate: it needs one (cert=, key=) or refused this one", bus->url.redacted);
}
/* The TLS handshake on a fresh connection. Certificates are checked against the CA and the name (sni=,
   else the host): hiredis sets SNI only, so rsbus asks OpenSSL to check the name too. */
RSBUS__PRIVATE rsbus_result rsbus__tls_handshake(rsbus__conn *cn) {
    rsbus *bus = cn->bus;
    const rsbus__url *u = &bus->url;
    const char *name = u->sni[0] ? u->sni : cn->port ? cn->host : u->host;
    unsigned char ipbuf[16];
    int is_ip = inet_pton(AF_INET, name, ipbuf) == 1 || inet_pton(AF_INET6, name, ipbuf) == 1;
    char sni[256];   /* OpenSSL's SNI macro takes a non-const pointer */
    SSL *ssl = SSL_new((SSL_CTX *)bus->ssl_ctx);
    if (!ssl) { rsbus__drop(cn); return rsbus__fail(bus, RSBUS_E_NOMEM, "TLS %s: out of memory", u->redacted); }
    snprintf(sni, sizeof sni, "%s", name);
    if (!is_ip) SSL_set_tlsext_host_name(ssl, sni);
    cn->tls_cert_asked = 0;
    cn->tls_alert = -1;
    SSL_set_msg_callback(ssl, rsbus__tls_watch);
    SSL_set_msg_callback_arg(ssl, cn);
    if (u->verify) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) : SSL_set1_host(ssl, name);
        if (ok != 1) {
            SSL_free(ssl);
            rsbus__drop(cn);
            return rsbus__fail(bus, RSBUS_E_TLS, "TLS %s: cannot check the server name", u->redacted);
        }
    }
    ERR_clear_error();
    {
        rsbus__pipe_guard g;
        int ok;
        rsbus__pipe_block(&g);
        ok = redisInitiateSSL(cn->c, ssl) == REDIS_OK;
        rsbus__pipe_restore(&g);
        if (ok) { cn->ssl = ssl; return RSBUS_OK; }
    }
    {
        long vr = SSL_get_verify_result(ssl);
        char text[160];
        if (vr != X509_V_OK) snprintf(text, sizeof text, "certificate verification failed: %s",
                                      X509_verify_cert_error_string(vr));
        else rsbus__clean(cn->c->errstr, sizeof cn->c->errstr, text, sizeof text);
        SSL_free(ssl);   /* on failure hiredis leaves it to us */
        rsbus__drop(cn);
        if (vr == X509_V_OK && strstr(text, "(null)"))   /* no answer: hiredis had no reason to give */
            return rsbus__fail(bus, RSBUS_E_TIMEOUT, "TLS handshake with %s: no TLS answer within io_timeout_ms "
                               "(is it a TLS port?)", u->redacted);
        return rsbus__fail(bus, RSBUS_E_TLS, "TLS handshake with %s: %s", u->redacted, text);
    }
}
/* rsbus__write_segs over TLS: hiredis's SSL writer, with SIGPIPE held off. */
RSBUS__PRIVATE rsbus_result rsbus__write_segs_tls(rsbus__conn *cn, size_t from, const char *what) {
    rsbus__pipe_guard g;
    size_t i;
    int done = 0, failed = 0;
    for (i = from; i < cn->nsegs; i++)
        if (redisAppendFormattedCommand(cn->c, cn->out + cn->segs[i].off, cn->segs[i].len) != REDIS_OK)
            return rsbus__ctx_fail(cn, what);
    ERR_clear_error();
    rsbus__pipe_block(&g);
    while (!done && !failed) failed = redisBufferWrite(cn->c, &done) != REDIS_OK;
    rsbus__pipe_restore(&g);
    if (failed) return rsbus__ctx_fail(cn, what);
    return RSBUS_OK;
}
#endif

/* Writes the queued segments from index 'from' on. The socket is written directly with MSG_NOSIGNAL, so
   a connection the server closed never raises SIGPIPE in the caller's process. When the connection is
   found closed before a byte went out and reopen is set, it reconnects once and sends them there. */
RSBUS__PRIVATE rsbus_result rsbus__reopen(rsbus__conn *cn);
RSBUS__PRIVATE rsbus_result rsbus__write_segs(rsbus__conn *cn, size_t from, int reopen, const char *what) {
    struct iovec iov[256];
    size_t seg = from, skip = 0;
#ifndef RSBUS_NO_MEM
    if (cn->mem) return rsbus__mem_send(cn, from, what);
#endif
#ifdef RSBUS_TLS
    if (cn->ssl) return rsbus__write_segs_tls(cn, from, what);
#endif
    while (seg < cn->nsegs) {
        struct msghdr mh;
        size_t k = 0, s = seg, sent;
        ssize_t w;
        for (; s < cn->nsegs && k < 256; s++, k++) {
            iov[k].iov_base = cn->out + cn->segs[s].off + (k == 0 ? skip : 0);
            iov[k].iov_len = cn->segs[s].len - (k == 0 ? skip : 0);
        }
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = k;
        w = sendmsg(cn->c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            int e = errno;
            rsbus_result code;
            if (e == EINTR) continue;
            if ((e == EPIPE || e == ECONNRESET || e == ENOTCONN) && seg == from && skip == 0 && reopen) {
                rsbus_result rr = rsbus__reopen(cn);
                if (rr != RSBUS_OK) return rr;   /* the reconnect's own error and message */
                reopen = 0;
                continue;
            }
            code = rsbus__io_code(0, e, NULL);
            rsbus__drop(cn);
            rsbus__lost(cn->bus);
            if (code == RSBUS_E_TIMEOUT)
                return rsbus__fail(cn->bus, code, "%s %s: timed out sending", what, cn->bus->url.redacted);
            return rsbus__fail(cn->bus, code, "%s %s: %s", what, cn->bus->url.redacted, strerror(e));
        }
        sent = (size_t)w;
        while (sent > 0) {
            size_t left = cn->segs[seg].len - skip;
            if (sent >= left) { sent -= left; seg++; skip = 0; }
            else { skip += sent; sent = 0; }
        }
    }
    return RSBUS_OK;
}


/* Sends every queued command; their replies are then owed. */
RSBUS__PRIVATE rsbus_result rsbus__flush(rsbus__conn *cn, const char *what) {
    rsbus_result r;
    if (cn->oom) { rsbus__reset_cmds(cn); return rsbus__fail(cn->bus, RSBUS_E_NOMEM, "%s: out of memory", what); }
    if (!cn->nsegs) return RSBUS_OK;
    if (!cn->c) {
        rsbus__reset_cmds(cn);
        if (cn->port) return rsbus__fail(cn->bus, RSBUS_E_IO, "%s: not connected to %s:%d", what, cn->host, cn->port);
        return rsbus__fail(cn->bus, RSBUS_E_IO, "%s: not connected", what);
    }
    r = rsbus__write_segs(cn, 0, 1, what);
    if (r != RSBUS_OK) { rsbus__reset_cmds(cn); return r; }
#ifndef RSBUS_NO_CLUSTER
    if (cn->bus->cl && !cn->side) rsbus__keep_sent(cn);
#endif
    cn->owe_sent = cn->owe_len;
    cn->out_len = 0;
    cn->nsegs = 0;
    return RSBUS_OK;
}

/* Reads one reply from the socket. io_timeout_ms bounds the whole reply, not each read: a server that
   trickles bytes forever is cut off, and so is one that announces more than a reply can hold. */
RSBUS__PRIVATE rsbus_result rsbus__read_reply(rsbus__conn *cn, redisReply **out, const char *what) {
    rsbus *bus = cn->bus;
    void *p = NULL;
    int64_t deadline = 0;
    /* what a batch of this bus can hold, at least 16 MiB (so an entry far over max_event_bytes can still be
       read, and dead-lettered), plus room for the rest of the reply; a batch over it is read again one
       entry at a time (see small_reads) */
    size_t bound = RSBUS__MAX(bus->cfg.max_event_bytes * (size_t)bus->cfg.batch_size *
                              (size_t)(bus->nparts > 1 ? bus->nparts : 1) * 2, (size_t)16 << 20) + ((size_t)8 << 20);
    *out = NULL;
    if (!cn->c) return rsbus__fail(bus, RSBUS_E_IO, "%s: not connected", what);
    cn->reply_bytes = 0;
    cn->reply_bound = bound;
    cn->reply_refused = 0;
    for (;;) {
        if (redisGetReplyFromReader(cn->c, &p) != REDIS_OK) return rsbus__ctx_fail(cn, what);
        if (p) break;
#ifndef RSBUS_NO_MEM
        if (cn->mem) {   /* the engine's replies come whole: one too large is cut off below, as from a socket */
            rsbus_result mr = rsbus__mem_pump(cn, what);
            if (mr != RSBUS_OK) return mr;
            if (cn->c->reader->len - cn->c->reader->pos <= bound) continue;
        }
#endif
        if (!deadline) deadline = rsbus__mono_ms() + bus->cfg.io_timeout_ms;
        else if (rsbus__mono_ms() > deadline) {
            rsbus__drop(cn);
            rsbus__lost(bus);
            return rsbus__fail(bus, RSBUS_E_TIMEOUT, "%s %s: reply not complete within io_timeout_ms", what,
                               bus->url.redacted);
        }
        if (cn->c->reader->len - cn->c->reader->pos > bound) {
            rsbus__drop(cn);
            bus->small_reads = 100;   /* the next reads take one entry at a time */
            return rsbus__fail(bus, RSBUS_E_PROTOCOL, "%s %s: reply larger than any rsbus expects", what,
                               bus->url.redacted);
        }
#ifdef RSBUS_TLS
        if (cn->ssl) {
            rsbus__pipe_guard g;
            int ok;
            rsbus__pipe_block(&g);
            ok = redisBufferRead(cn->c) == REDIS_OK;
            rsbus__pipe_restore(&g);
            if (!ok) return rsbus__ctx_fail(cn, what);
            continue;
        }
#endif
        if (redisBufferRead(cn->c) != REDIS_OK) return rsbus__ctx_fail(cn, what);
    }
    *out = (redisReply *)p;
    cn->last_io_ms = rsbus__mono_ms();
    return RSBUS_OK;
}

/* Takes care of a reply nobody waits for (see >>connection). */
RSBUS__PRIVATE void rsbus__settle_owed(rsbus__conn *cn, const rsbus__owe *o, redisReply *rep) {
    rsbus *bus = cn->bus;
    if (o->kind == RSBUS__OWE_READ) {   /* at most RSBUS__AHEAD are ever in flight */
        if (bus->nheld < RSBUS__AHEAD) bus->held[bus->nheld++] = rep;
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        char text[160];
        int mark = o->kind == RSBUS__OWE_MARK;
        rsbus__clean(rep->str, rep->len, text, sizeof text);
        rsbus__log(bus, RSBUS_LOG_WARN, "%s %s/%s: %s (%s)", mark ? "dedupe mark in" : "XACK", bus->key,
                   bus->cfg.group, text, mark ? "a repeat of that event would be handled again" : "the entries stay pending");
    } else if (o->kind == RSBUS__OWE_ACK) {
        bus->st.acked += o->acked;
        bus->st.deleted_while_pending += o->deleted;
    }
}
/* Reads the reply at the head of the queue, sending what is queued first when it has not gone out. */
RSBUS__PRIVATE rsbus_result rsbus__next(rsbus__conn *cn, redisReply **out, rsbus__owe *o, const char *what) {
    rsbus_result r;
    *out = NULL;
    if (!cn->owe_len && cn->oom) return rsbus__flush(cn, what);   /* the command could not be written: out of memory */
    if (!cn->owe_len) return rsbus__fail(cn->bus, RSBUS_E_PROTOCOL, "%s: no reply is owed", what);   /* a bug */
    if (cn->sub_pos < cn->nsub) {   /* it came already, from where a redirect sent its MULTI/EXEC (>>cluster) */
        *out = cn->sub[cn->sub_pos++];
        if (cn->sub_pos == cn->nsub) cn->nsub = cn->sub_pos = 0;
    } else {
        if (!cn->owe_sent && (r = rsbus__flush(cn, what)) != RSBUS_OK) return r;
        if ((r = rsbus__read_reply(cn, out, what)) != RSBUS_OK) return r;
#ifndef RSBUS_NO_CLUSTER
        if (cn->bus->cl && !cn->side && (*out)->type == REDIS_REPLY_ERROR && rsbus__redirect_kind(*out) &&
            (r = rsbus__follow(cn, out, what)) != RSBUS_OK) {
            rsbus__drop(cn);   /* replies of the block were read ahead of their turn: out of step */
            return r;
        }
#endif
    }
    *o = *rsbus__owe_at(cn, 0);
    cn->owe_head = (cn->owe_head + 1) % cn->owe_cap;
    cn->owe_len--;
    cn->owe_sent--;
#ifndef RSBUS_NO_CLUSTER
    if (cn->bus->cl) rsbus__sent_done(cn, o);
#endif
    return RSBUS_OK;
}
/* Reads the replies owed to nobody in particular that went out before the caller's next one. */
RSBUS__PRIVATE rsbus_result rsbus__recv_owed(rsbus__conn *cn) {
    while (cn->owe_sent && rsbus__owe_at(cn, 0)->kind != RSBUS__OWE_CALLER) {
        rsbus__owe o;
        redisReply *rep;
        rsbus_result r = rsbus__next(cn, &rep, &o, "XACK");
        if (r != RSBUS_OK) return r;
        rsbus__settle_owed(cn, &o, rep);
    }
    return RSBUS_OK;
}
/* The caller's next reply, error replies included (the caller judges them): sends what is queued, and
   takes care of the replies owed before it. */
RSBUS__PRIVATE rsbus_result rsbus__recv(rsbus__conn *cn, redisReply **out, const char *what) {
    for (;;) {
        rsbus__owe o;
        rsbus_result r = rsbus__next(cn, out, &o, what);
        if (r != RSBUS_OK) return r;
        if (o.kind == RSBUS__OWE_CALLER) return RSBUS_OK;
        rsbus__settle_owed(cn, &o, *out);
        *out = NULL;
    }
}
/* The common case, one command's reply: like rsbus__recv, with an error reply turned into a result. */
RSBUS__PRIVATE rsbus_result rsbus__call(rsbus__conn *cn, redisReply **out, const char *what) {
    rsbus_result r = rsbus__recv(cn, out, what);
    if (r == RSBUS_OK && (*out)->type == REDIS_REPLY_ERROR) {
        r = rsbus__reply_fail(cn->bus, *out, what);
        *out = NULL;
    }
    return r;
}
/* The caller's next n replies, error replies included, into rs. */
RSBUS__PRIVATE rsbus_result rsbus__recv_n(rsbus__conn *cn, redisReply **rs, size_t n, const char *what) {
    size_t i;
    rsbus_result r = RSBUS_OK;
    for (i = 0; i < n && r == RSBUS_OK; i++) r = rsbus__recv(cn, &rs[i], what);
    return r;
}
/* Sends what is queued and reads every reply owed (rsbus_run returning, rsbus_close). A batch read ahead
   batch is not handled: its entries stay pending and the next read of this consumer re-reads them. */
RSBUS__PRIVATE rsbus_result rsbus__settle_all(rsbus__conn *cn) {
    rsbus_result r = RSBUS_OK;
    while (r == RSBUS_OK && cn->c && cn->owe_len) {
        rsbus__owe o;
        redisReply *rep;
        r = rsbus__next(cn, &rep, &o, "XACK");
        if (r == RSBUS_OK) rsbus__settle_owed(cn, &o, rep);
    }
    rsbus__forget_ahead(cn->bus);
    return r;
}

RSBUS__PRIVATE int rsbus__stop_requested(rsbus *bus) {
    return bus->stop_req || (bus->run_stop && *bus->run_stop);
}
/* Waits until a reply can be read, up to timeout_ms; in rsbus_run a stop request ends the wait early.
   Returns 1 ready, 0 timed out, -1 stopped, -2 poll failed. */
RSBUS__PRIVATE int rsbus__wait_readable(rsbus__conn *cn, int64_t timeout_ms) {
    rsbus *bus = cn->bus;
    int64_t deadline = rsbus__mono_ms() + timeout_ms;
    redisReader *rd = cn->c->reader;
    if (rd && rd->len > rd->pos) return 1;
#ifndef RSBUS_NO_MEM
    if (cn->mem) return rsbus__mem_wait(cn, timeout_ms);
#endif
#ifdef RSBUS_TLS
    if (cn->ssl && SSL_pending((SSL *)cn->ssl) > 0) return 1;   /* decrypted, not on the socket */
#endif
    for (;;) {
        struct pollfd pfd;
        int64_t left = deadline - rsbus__mono_ms();
        int slice, n;
        if (bus->in_run && rsbus__stop_requested(bus)) return -1;
        if (left <= 0) return 0;
        slice = (int)RSBUS__MIN(left, bus->in_run ? 100 : left);
        pfd.fd = cn->c->fd; pfd.events = POLLIN; pfd.revents = 0;
        n = poll(&pfd, 1, slice);
        if (n > 0) return 1;
        if (n < 0 && errno != EINTR) return -2;
    }
}

/* The caller's next reply to a read that may BLOCK block_ms (> 0): it is waited for BLOCK +
   io_timeout_ms. *stopped: a stop request ended the wait (in rsbus_run); the connection was dropped (an
   entry Redis handed out meanwhile stays pending, nothing is lost) and *out is NULL. */
RSBUS__PRIVATE rsbus_result rsbus__recv_block(rsbus__conn *cn, redisReply **out, int block_ms, int *stopped,
                                              const char *what) {
    rsbus_result r;
    *out = NULL;
    *stopped = 0;
    if ((r = rsbus__flush(cn, what)) != RSBUS_OK) return r;
    if ((r = rsbus__recv_owed(cn)) != RSBUS_OK) return r;   /* a deferred XACK sent with it answers first */
    if (block_ms > 0) {
        int w = rsbus__wait_readable(cn, (int64_t)block_ms + cn->bus->cfg.io_timeout_ms);
        if (w == -1) { rsbus__drop(cn); *stopped = 1; return RSBUS_OK; }
        if (w != 1) {
            rsbus__drop(cn);
            return rsbus__fail(cn->bus, RSBUS_E_TIMEOUT, "%s %s: no reply within BLOCK + io_timeout_ms", what,
                               cn->bus->url.redacted);
        }
    }
    return rsbus__recv(cn, out, what);
}

RSBUS__PRIVATE int rsbus__is_str(const redisReply *r) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}
RSBUS__PRIVATE int rsbus__str_eq(const redisReply *r, const char *s) {
    size_t n = strlen(s);
    return rsbus__is_str(r) && r->len == n && memcmp(r->str, s, n) == 0;
}
/* A stream id "ms-seq" from a reply, copied into out; 0 if it is not one. */
RSBUS__PRIVATE int rsbus__copy_id(const redisReply *r, char out[RSBUS_ID_SIZE]) {
    size_t i, dash = 0;
    if (!rsbus__is_str(r) || r->len == 0 || r->len >= RSBUS_ID_SIZE) return 0;
    for (i = 0; i < r->len; i++) {
        char ch = r->str[i];
        if (ch == '-' && !dash && i > 0) { dash = i; continue; }
        if (ch < '0' || ch > '9') return 0;
    }
    if (!dash || dash == r->len - 1) return 0;
    memcpy(out, r->str, r->len);
    out[r->len] = 0;
    return 1;
}
/* A stream id as two numbers; 0 if it is not one. */
RSBUS__PRIVATE int rsbus__id_parse(const char *s, size_t n, uint64_t *ms, uint64_t *seq) {
    const char *dash = (const char *)memchr(s, '-', n);
    size_t i;
    uint64_t v[2] = { 0, 0 };
    int part = 0;
    if (!dash || dash == s || dash == s + n - 1) return 0;
    for (i = 0; i < n; i++) {
        unsigned d;
        if (s + i == dash) { part = 1; continue; }
        d = (unsigned)(s[i] - '0');
        if (d > 9 || v[part] > (UINT64_MAX - d) / 10) return 0;
        v[part] = v[part] * 10 + d;
    }
    *ms = v[0]; *seq = v[1];
    return 1;
}
RSBUS__PRIVATE int rsbus__id_less(uint64_t am, uint64_t as, uint64_t bm, uint64_t bs) {
    return am < bm || (am == bm && as < bs);
}

RSBUS__PRIVATE int rsbus__reply_i64(const redisReply *r, int64_t *out) {
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) { *out = (int64_t)r->integer; return 1; }
    if (rsbus__is_str(r)) return rsbus__parse_i64(r->str, r->len, out);
    return 0;
}
/* Milliseconds part of a stream id. */
RSBUS__PRIVATE int64_t rsbus__id_ms(const char *id) {
    int64_t v = 0;
    const char *dash = strchr(id, '-');
    if (!rsbus__parse_i64(id, dash ? (size_t)(dash - id) : strlen(id), &v)) return 0;
    return v;
}
/* Looks a key up in a flat [k, v, k, v, ...] reply. */
RSBUS__PRIVATE const redisReply *rsbus__map_get(const redisReply *m, const char *key) {
    size_t i;
    if (!m || m->type != REDIS_REPLY_ARRAY) return NULL;
    for (i = 0; i + 1 < m->elements; i += 2)
        if (rsbus__str_eq(m->element[i], key)) return m->element[i + 1];
    return NULL;
}

RSBUS__PRIVATE void rsbus__timeval(struct timeval *tv, int ms) {
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

#ifndef RSBUS_NO_CLUSTER
/* >>sentinel (redis+sentinel://, rediss+sentinel://)
   rsbus__connect on a sentinel url first finds the master: the sentinels are asked in the url's order
   (SENTINEL get-master-addr-by-name, connect_timeout_ms to connect and io_timeout_ms to answer, each;
   AUTH with sentinel_user / sentinel_password when given, TLS as for the master), the master they name
   is connected to (AUTH with the url's user:pass, SELECT, PING as always) and checked with ROLE. A
   sentinel that names a replica (a failover in progress, a stale sentinel) or an unreachable master is
   passed over for the next one. The sentinel that named the master moves to the front of the list. Every
   reconnect asks again, and so does the call after a READONLY or MASTERDOWN reply (sentinel_stale, set
   in rsbus__reply_fail): a demoted master keeps its connections open. The connection's target (cn->host,
   cn->port) is the master found. Messages name the master and each sentinel tried, never a password. */

/* The cause in bus->err (after its last ": "), or the result's name. */
RSBUS__PRIVATE const char *rsbus__err_cause(const rsbus *bus, rsbus_result r) {
    const char *c = strrchr(bus->err, ':');
    return c && c[1] == ' ' && c[2] ? c + 2 : rsbus_result_str(r);
}
/* Appends "host:port (why)" to the list of sentinels tried, bounded. */
RSBUS__PRIVATE void rsbus__sentinel_note(char *tried, size_t size, const rsbus__addr *a, const char *why) {
    size_t len = strlen(tried);
    if (len + 1 >= size) return;
    snprintf(tried + len, size - len, "%s%s%s%s:%d (%s)", len ? ", " : "", strchr(a->host, ':') ? "[" : "",
             a->host, strchr(a->host, ':') ? "]" : "", a->port, why);
}

/* Asks the sentinel at a for the master's address. RSBUS_OK and *out filled; else the result, with a short
   reason in why (no Redis text after AUTH, which may echo its arguments). */
RSBUS__PRIVATE rsbus_result rsbus__sentinel_ask(rsbus *bus, const rsbus__addr *a, rsbus__addr *out, char *why,
                                                size_t why_size) {
    const rsbus__url *u = &bus->url;
    rsbus__conn sc;
    struct timeval tv;
    redisReply *rep = NULL;
    rsbus_result r = RSBUS_OK;
    int authed = u->has_sentinel_user || u->has_sentinel_password;
    rsbus__conn_init(bus, &sc);
    memcpy(sc.host, a->host, sizeof sc.host);
    sc.port = a->port;
    rsbus__timeval(&tv, bus->cfg.connect_timeout_ms);
    sc.c = redisConnectWithTimeout(a->host, a->port, tv);
    if (!sc.c) { snprintf(why, why_size, "out of memory"); return RSBUS_E_NOMEM; }
    if (sc.c->err) {
        int e = errno;
        char text[128];
        rsbus__clean(sc.c->errstr, sizeof sc.c->errstr, text, sizeof text);
        r = rsbus__io_code(0, e, text);
        snprintf(why, why_size, "%.60s", r == RSBUS_E_TIMEOUT ? "connect timed out" : text);
        rsbus__conn_free(&sc);
        return r;
    }
    rsbus__timeval(&tv, bus->cfg.io_timeout_ms);
    if (redisSetTimeout(sc.c, tv) != REDIS_OK) r = RSBUS_E_IO;
#ifdef RSBUS_TLS
    if (r == RSBUS_OK && u->kind == RSBUS__URL_TLS) r = rsbus__tls_handshake(&sc);
#endif
    if (r == RSBUS_OK && sc.c) {
        sc.c->reader->fn = &sc.fns;
        sc.c->reader->privdata = &sc;
        if (authed) {
            rsbus__cmd(&sc);
            rsbus__lit(&sc, "AUTH");
            if (u->has_sentinel_user) rsbus__argz(&sc, u->sentinel_user);
            rsbus__argz(&sc, u->sentinel_password);
            rsbus__cmd_end(&sc);
        }
        rsbus__cmd(&sc);
        rsbus__lit(&sc, "SENTINEL"); rsbus__lit(&sc, "get-master-addr-by-name"); rsbus__argz(&sc, u->master_name);
        rsbus__cmd_end(&sc);
        /* sent here, not by rsbus__recv's flush: that one reconnects a closed connection, which on this
           bus would mean asking the sentinels from inside asking them */
        if (sc.oom) r = RSBUS_E_NOMEM;
        else if ((r = rsbus__write_segs(&sc, 0, 0, "SENTINEL")) == RSBUS_OK) {
            sc.owe_sent = sc.owe_len;
            sc.out_len = 0;
            sc.nsegs = 0;
        }
        if (r == RSBUS_OK && authed && (r = rsbus__recv(&sc, &rep, "sentinel AUTH")) == RSBUS_OK &&
            rep->type == REDIS_REPLY_ERROR) {
            r = RSBUS_E_AUTH;
            snprintf(why, why_size, "AUTH refused");
        }
        if (r == RSBUS_OK && (r = rsbus__recv(&sc, &rep, "SENTINEL get-master-addr-by-name")) == RSBUS_OK) {
            int64_t port = 0;
            if (rep->type == REDIS_REPLY_ERROR) {
                r = rsbus__reply_fail(bus, rep, "SENTINEL");
                if (r == RSBUS_E_AUTH) snprintf(why, why_size, "%s", bus->rcode);
                else rsbus__clean(rep->str, rep->len, why, why_size);
            } else if (rep->type == REDIS_REPLY_NIL || (rep->type == REDIS_REPLY_ARRAY && rep->elements == 0)) {
                r = RSBUS_E_NOTFOUND;
                snprintf(why, why_size, "does not know the master");
            } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || !rsbus__is_str(rep->element[0]) ||
                       !rsbus__is_str(rep->element[1]) || rep->element[0]->len == 0 ||
                       rep->element[0]->len >= sizeof out->host ||
                       !rsbus__url_num(rep->element[1]->str, rep->element[1]->len, 65535, &port) || port == 0) {
                r = RSBUS_E_PROTOCOL;
                snprintf(why, why_size, "unexpected reply");
            } else {
                memcpy(out->host, rep->element[0]->str, rep->element[0]->len);
                out->host[rep->element[0]->len] = 0;
                out->port = (int)port;
            }
        }
    }
    if (r != RSBUS_OK && !why[0]) snprintf(why, why_size, "%.60s", rsbus__err_cause(bus, r));
    rsbus__conn_free(&sc);
    return r;
}

/* ROLE on the connection just made: RSBUS_OK when it is a master. Sent and read on its own, after the
   commands already queued (as the handshake's are). */
RSBUS__PRIVATE rsbus_result rsbus__sentinel_role(rsbus__conn *cn) {
    rsbus *bus = cn->bus;
    rsbus__mark m = rsbus__cmd_mark(cn);
    redisReply *rep = NULL;
    rsbus_result r;
    rsbus__cmd(cn); rsbus__lit(cn, "ROLE"); rsbus__cmd_end(cn);
    if (cn->oom) { rsbus__drop(cn); return rsbus__fail(bus, RSBUS_E_NOMEM, "ROLE: out of memory"); }
    r = rsbus__write_segs(cn, m.nsegs, 0, "ROLE");
    if (r == RSBUS_OK) r = rsbus__read_reply(cn, &rep, "ROLE");
    if (cn->c) rsbus__cmd_rewind(cn, m);
    if (r != RSBUS_OK) return r;
    if (rep->type == REDIS_REPLY_ERROR) { r = rsbus__reply_fail(bus, rep, "ROLE"); rsbus__drop(cn); return r; }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || !rsbus__is_str(rep->element[0]))
        return rsbus__shape_fail(cn, "ROLE");
    if (rsbus__str_eq(rep->element[0], "master")) return RSBUS_OK;
    rsbus__drop(cn);
    return rsbus__fail(bus, RSBUS_E_IO, "ROLE: %s", rsbus__str_eq(rep->element[0], "slave") ? "a replica" : "not a master");
}

/* rsbus__connect for a sentinel url: see >>sentinel. */
RSBUS__PRIVATE rsbus_result rsbus__sentinel_connect(rsbus__conn *cn) {
    rsbus *bus = cn->bus;
    rsbus__url *u = &bus->url;
    char tried[200];
    int i, nauth = 0;
    rsbus_result r = RSBUS_E_IO;
    tried[0] = 0;
    for (i = 0; i < u->nseeds; i++) {
        rsbus__addr m;
        char why[96];
        why[0] = 0;
        r = rsbus__sentinel_ask(bus, &u->seeds[i], &m, why, sizeof why);
        if (r == RSBUS_OK) {
            memcpy(cn->host, m.host, sizeof cn->host);
            cn->port = m.port;
            bus->sentinel_inner = 1;
            r = rsbus__connect(cn);
            bus->sentinel_inner = 0;
            if (r == RSBUS_OK) r = rsbus__sentinel_role(cn);
            if (r == RSBUS_OK) {
                if (i > 0) {   /* the sentinel that answered goes first next time */
                    rsbus__addr first = u->seeds[i];
                    memmove(&u->seeds[1], &u->seeds[0], (size_t)i * sizeof u->seeds[0]);
                    u->seeds[0] = first;
                    memcpy(u->host, first.host, sizeof u->host);
                    u->port = first.port;
                }
                bus->sentinel_stale = 0;
                rsbus__log(bus, RSBUS_LOG_INFO, "sentinel %s:%d: master '%s' is %s:%d", u->seeds[0].host,
                           u->seeds[0].port, u->master_name, cn->host, cn->port);
                return RSBUS_OK;
            }
            if (r == RSBUS_E_AUTH || r == RSBUS_E_NOMEM || r == RSBUS_E_TLS) return r;   /* the master's own refusal */
            snprintf(why, sizeof why, "named %.40s:%d: %.40s", m.host, m.port, rsbus__err_cause(bus, r));
        }
        if (r == RSBUS_E_AUTH) nauth++;
        rsbus__sentinel_note(tried, sizeof tried, &u->seeds[i], why);
    }
    rsbus__disconnect(cn, 1);
    bus->sentinel_stale = 1;
    return rsbus__fail(bus, nauth == u->nseeds ? RSBUS_E_AUTH : RSBUS_E_IO,
                       "sentinel: no master '%s' found; asked %s", u->master_name, tried);
}
#endif /* RSBUS_NO_CLUSTER */

/* Connects, authenticates and selects the db. One attempt, bounded by connect_timeout_ms + io_timeout_ms.
   Commands queued before it stay queued: the handshake's own go after them, and are sent and read on
   their own. */
RSBUS__PRIVATE rsbus_result rsbus__connect(rsbus__conn *cn) {
    rsbus *bus = cn->bus;
    struct timeval tv;
    redisReply *rs[3] = { NULL, NULL, NULL };
    size_t nrep = 0, i;
    rsbus__mark m;
    rsbus_result r = RSBUS_OK;
#ifndef RSBUS_NO_CLUSTER
    if (bus->url.sentinel && !bus->sentinel_inner) return rsbus__sentinel_connect(cn);   /* finds the master first */
#endif
    rsbus__disconnect(cn, 1);
#ifndef RSBUS_NO_MEM
    if (cn->mem) return rsbus__mem_connect(cn);
#endif
    rsbus__timeval(&tv, bus->cfg.connect_timeout_ms);
#ifndef RSBUS_TLS
    if (bus->url.kind == RSBUS__URL_TLS)
        return rsbus__fail(bus, RSBUS_E_TLS, "connect %s: rediss:// needs rsbus built with TLS: hiredis 1.x with "
                           "hiredis_ssl, -DRSBUS_TLS, and -lhiredis_ssl -lssl -lcrypto", bus->url.redacted);
#endif
    if (bus->url.kind == RSBUS__URL_UNIX) cn->c = redisConnectUnixWithTimeout(bus->url.path, tv);
    else if (cn->port) cn->c = redisConnectWithTimeout(cn->host, cn->port, tv);   /* the connection's own target */
    else cn->c = redisConnectWithTimeout(bus->url.host, bus->url.port, tv);
    if (!cn->c) return rsbus__fail(bus, RSBUS_E_NOMEM, "connect %s: out of memory", bus->url.redacted);
    if (cn->c->err) {
        int e = errno;
        char text[128];
        rsbus__clean(cn->c->errstr, sizeof cn->c->errstr, text, sizeof text);
        rsbus__disconnect(cn, 1);
        rsbus__lost(bus);
        return rsbus__fail(bus, rsbus__io_code(0, e, text), "connect %s: %s", bus->url.redacted, text);
    }
    rsbus__timeval(&tv, bus->cfg.io_timeout_ms);
    if (redisSetTimeout(cn->c, tv) != REDIS_OK) return rsbus__ctx_fail(cn, "connect");
#ifdef RSBUS_TLS
    if (bus->url.kind == RSBUS__URL_TLS && (r = rsbus__tls_handshake(cn)) != RSBUS_OK) return r;
#endif
    cn->c->reader->fn = &cn->fns;
    cn->c->reader->privdata = cn;
    m = rsbus__cmd_mark(cn);
    if (bus->url.has_password || bus->url.has_user) {
        rsbus__cmd(cn);
        rsbus__lit(cn, "AUTH");
        if (bus->url.has_user) rsbus__argz(cn, bus->url.user);
        rsbus__argz(cn, bus->url.password);
        rsbus__cmd_end(cn);
        nrep++;
    }
    if (bus->url.db) {
        rsbus__cmd(cn); rsbus__lit(cn, "SELECT"); rsbus__argi(cn, bus->url.db); rsbus__cmd_end(cn);
        nrep++;
    }
    /* a PING too: only a server that answers counts as connected (a dying server's listen backlog
       can accept a connection it will never serve) */
    rsbus__cmd(cn); rsbus__lit(cn, "PING"); rsbus__cmd_end(cn);
    nrep++;
    if (cn->oom) { rsbus__drop(cn); return rsbus__fail(bus, RSBUS_E_NOMEM, "connect: out of memory"); }
    r = rsbus__write_segs(cn, m.nsegs, 0, "connect");
    for (i = 0; r == RSBUS_OK && i < nrep; i++) r = rsbus__read_reply(cn, &rs[i], "connect");
    if (cn->c) rsbus__cmd_rewind(cn, m);   /* the handshake's commands leave the queue (a failure emptied it) */
#ifdef RSBUS_TLS
    if (r != RSBUS_OK) r = rsbus__tls_refusal(cn, r);
#endif
    if (r != RSBUS_OK) return r;
    for (i = 0; i < nrep && r == RSBUS_OK; i++) {
        if (rs[i]->type != REDIS_REPLY_ERROR) continue;
        if (i == 0 && (bus->url.has_password || bus->url.has_user)) {
            /* Never Redis's text here: an error about AUTH may echo its arguments. */
            char word[16];
            size_t n = 0;
            while (n < rs[i]->len && n < sizeof word - 1 && rs[i]->str[n] >= 'A' && rs[i]->str[n] <= 'Z') n++;
            memcpy(word, rs[i]->str, n); word[n] = 0;
            r = rsbus__fail(bus, RSBUS_E_AUTH, "AUTH %s: refused (%s)", bus->url.redacted, n ? word : "ERR");
        } else {
            r = rsbus__reply_fail(bus, rs[i], i == nrep - 1 ? "PING" : "SELECT");
        }
    }
    if (r == RSBUS_OK && !rsbus__str_eq(rs[nrep - 1], "PONG")) return rsbus__shape_fail(cn, "PING");
    if (r != RSBUS_OK) rsbus__drop(cn);
    return r;
}

/* After a (re)connect: entries this consumer was handed on the old connection are re-read first. */
RSBUS__PRIVATE void rsbus__reconnected(rsbus *bus) {
    if (bus->was_connected) {
        bus->st.reconnects++;
        rsbus__log(bus, RSBUS_LOG_INFO, "reconnected to %s", bus->url.redacted);
    } else {
        rsbus__log(bus, RSBUS_LOG_INFO, "connected to %s", bus->url.redacted);
    }
    bus->was_connected = 1;
    bus->nheld = 0;   /* read ahead on the old connection: pending to this consumer, re-read below */
    rsbus__reread_all(bus);
}
/* The connection was found closed before anything queued went out: reconnect and keep the queue. */
RSBUS__PRIVATE rsbus_result rsbus__reopen(rsbus__conn *cn) {
    rsbus_result r = rsbus__connect(cn);
    if (r == RSBUS_OK) rsbus__reconnected(cn->bus);
    return r;
}

#ifndef RSBUS_NO_CLUSTER
/* >>cluster (redis+cluster://, rediss+cluster://)
   A bus on a Redis Cluster keeps the slot map CLUSTER SLOTS gives: the master that serves each slot.
   Its connection (bus->conn) goes to the master of the stream's slot and follows it when it moves; any
   other master a call needs gets a connection of its own (rsbus__slot_conn). Replicas are never read.
   Redirects are taken care of where replies are read (rsbus__next), so no caller ever sees one: each
   connection keeps the commands it sent until they answer (rsbus__keep_sent); one answered MOVED or
   ASK is sent again where the redirect points, on a spare connection (cl->side), and that answer takes
   its place; a MULTI/EXEC aborted by a redirect is sent again whole, and the answers of its commands
   take the place of theirs. TRYAGAIN, CLUSTERDOWN and LOADING are sent again after a backoff, within
   io_timeout_ms. A MOVED, a lost connection or a failed connect marks the map stale: the next call reads
   it again (at most every RSBUS__REFRESH_MS), asking the masters it knows, then the url's nodes. */
#define RSBUS__SLOTS 16384
#define RSBUS__MAX_NODES 512           /* masters a slot map may name */
#define RSBUS__REFRESH_MS 100          /* the slot map is read at most this often */
#define RSBUS__REDIRECTS 8             /* redirects followed for one command */
#define RSBUS__KEEP_MAX ((size_t)64 << 20)   /* commands kept beyond this are not sent again after a redirect */
enum { RSBUS__RD_NONE = 0, RSBUS__RD_MOVED, RSBUS__RD_ASK, RSBUS__RD_RETRY };
typedef struct rsbus__cluster {
    uint16_t slot[RSBUS__SLOTS];       /* 1 + the index in node[] of the slot's master; 0: not served */
    rsbus__addr node[RSBUS__MAX_NODES]; size_t nnodes;
    rsbus__conn **pool; size_t npool, cap_pool;   /* connections to masters other than bus->conn's */
    rsbus__conn side;                  /* sends a redirected command again; reads the slot map */
    int loaded, stale;
    int64_t refreshed_ms;
    int home;                          /* the slot of the stream's keys */
} rsbus__cluster;

/* What kind of redirect an error reply is. LOADING counts only here, on a cluster: a master that
   restarts is soon back. */
RSBUS__PRIVATE int rsbus__redirect_kind(const redisReply *r) {
    if (r->type != REDIS_REPLY_ERROR || !r->str) return RSBUS__RD_NONE;
    if (r->len > 6 && memcmp(r->str, "MOVED ", 6) == 0) return RSBUS__RD_MOVED;
    if (r->len > 4 && memcmp(r->str, "ASK ", 4) == 0) return RSBUS__RD_ASK;
    if ((r->len >= 8 && memcmp(r->str, "TRYAGAIN", 8) == 0) || (r->len >= 11 && memcmp(r->str, "CLUSTERDOWN", 11) == 0) ||
        (r->len >= 7 && memcmp(r->str, "LOADING", 7) == 0)) return RSBUS__RD_RETRY;
    return RSBUS__RD_NONE;
}
/* "MOVED <slot> <host>:<port>" or "ASK ...": the host is everything before the last ':' (an IPv6
   address comes without brackets); an empty host means the node that answered (here). 0, or -1 when
   the text is not of that form. */
RSBUS__PRIVATE int rsbus__redirect_parse(const char *s, size_t n, int *slot, rsbus__addr *to, const rsbus__addr *here) {
    size_t i = 0, a, colon;
    int64_t v, port;
    while (i < n && s[i] != ' ') i++;
    a = ++i;
    while (i < n && s[i] != ' ') i++;
    if (a >= n || i >= n || !rsbus__parse_i64(s + a, i - a, &v) || v < 0 || v >= RSBUS__SLOTS) return -1;
    a = i + 1;
    for (colon = n; colon > a && s[colon - 1] != ':'; colon--) {}
    if (colon == a && (a >= n || s[a] != ':')) return -1;
    if (colon <= a) return -1;
    colon--;   /* at the ':' */
    if (!rsbus__parse_i64(s + colon + 1, n - colon - 1, &port) || port < 1 || port > 65535) return -1;
    if (colon - a >= sizeof to->host) return -1;
    for (i = a; i < colon; i++) if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return -1;
    if (colon == a) memcpy(to->host, here->host, sizeof to->host);
    else { memcpy(to->host, s + a, colon - a); to->host[colon - a] = 0; }
    to->port = (int)port;
    *slot = (int)v;
    return 0;
}

RSBUS__PRIVATE int rsbus__addr_eq(const rsbus__addr *a, const char *host, int port) {
    return a->port == port && strcmp(a->host, host) == 0;
}
/* The index of a node in the map, added if new; -1 when the map is full. */
RSBUS__PRIVATE int rsbus__node_index(rsbus__cluster *cl, const rsbus__addr *a) {
    size_t i;
    for (i = 0; i < cl->nnodes; i++) if (rsbus__addr_eq(&cl->node[i], a->host, a->port)) return (int)i;
    if (cl->nnodes == RSBUS__MAX_NODES) return -1;
    cl->node[cl->nnodes] = *a;
    return (int)cl->nnodes++;
}
/* A node entry of CLUSTER SLOTS: [host, port, id, ...]. A host "" or "?" is the node that answered. */
RSBUS__PRIVATE int rsbus__slots_addr(const redisReply *e, const rsbus__addr *asked, rsbus__addr *out) {
    int64_t port;
    size_t i;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || !rsbus__is_str(e->element[0]) ||
        !rsbus__reply_i64(e->element[1], &port) || port < 1 || port > 65535) return -1;
    if (e->element[0]->len >= sizeof out->host) return -1;
    for (i = 0; i < e->element[0]->len; i++)
        if ((unsigned char)e->element[0]->str[i] <= 0x20 || (unsigned char)e->element[0]->str[i] >= 0x7f) return -1;
    if (e->element[0]->len == 0 || (e->element[0]->len == 1 && e->element[0]->str[0] == '?')) {
        memcpy(out->host, asked->host, sizeof out->host);
    } else {
        memcpy(out->host, e->element[0]->str, e->element[0]->len);
        out->host[e->element[0]->len] = 0;
    }
    out->port = (int)port;
    return 0;
}
/* Reads a CLUSTER SLOTS reply, [[start, end, master, replica...], ...], into the map (the masters only).
   The reply is checked whole first: one of another shape leaves the map as it was. 0, or -1. */
RSBUS__PRIVATE int rsbus__slots_parse(rsbus__cluster *cl, const redisReply *rep, const rsbus__addr *asked) {
    size_t i;
    int pass;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return -1;
    for (pass = 0; pass < 2; pass++) {
        if (pass == 1) { memset(cl->slot, 0, sizeof cl->slot); cl->nnodes = 0; }
        for (i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            int64_t lo, hi, k;
            rsbus__addr a;
            int idx;
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !rsbus__reply_i64(e->element[0], &lo) ||
                !rsbus__reply_i64(e->element[1], &hi) || lo < 0 || hi < lo || hi >= RSBUS__SLOTS ||
                rsbus__slots_addr(e->element[2], asked, &a) != 0) return -1;
            if (pass == 0) continue;
            if ((idx = rsbus__node_index(cl, &a)) < 0) return -1;
            for (k = lo; k <= hi; k++) cl->slot[k] = (uint16_t)(idx + 1);
        }
    }
    return 0;
}

/* Where a connection goes. */
RSBUS__PRIVATE void rsbus__conn_addr(const rsbus__conn *cn, rsbus__addr *out) {
    const rsbus__url *u = &cn->bus->url;
    memcpy(out->host, cn->port ? cn->host : u->host, sizeof out->host);
    out->port = cn->port ? cn->port : u->port;
}
/* Points a connection at another node: its replies owed are read first (a deferred XACK), then it is
   closed; commands not sent yet stay queued and go to the new node. */
RSBUS__PRIVATE void rsbus__retarget(rsbus__conn *cn, const rsbus__addr *a) {
    if (cn->port && rsbus__addr_eq(a, cn->host, cn->port)) return;
    if (cn->c && cn->owe_sent) (void)rsbus__recv_owed(cn);
    rsbus__disconnect(cn, 1);
    memcpy(cn->host, a->host, sizeof cn->host);
    cn->port = a->port;
}
/* Notes a connection lost or refused: the master may be gone, the map is read again before the next call. */
RSBUS__PRIVATE void rsbus__lost(rsbus *bus) {
    if (bus->cl) bus->cl->stale = 1;
}

/* Reads the slot map from the first node that answers: the masters known, then the url's nodes. */
RSBUS__PRIVATE rsbus_result rsbus__cluster_refresh(rsbus *bus) {
    rsbus__cluster *cl = bus->cl;
    rsbus__addr *cand;
    size_t ncand = 0, i, known = cl->nnodes;
    int k;
    rsbus_result r = RSBUS_E_IO;
    cand = (rsbus__addr *)rsbus__alloc(&bus->a, (known + (size_t)bus->url.nseeds) * sizeof *cand);
    if (!cand) return rsbus__fail(bus, RSBUS_E_NOMEM, "cluster: out of memory");
    for (i = 0; i < known; i++) cand[ncand++] = cl->node[i];
    for (k = 0; k < bus->url.nseeds; k++) cand[ncand++] = bus->url.seeds[k];
    cl->refreshed_ms = rsbus__mono_ms();
    for (i = 0; i < ncand; i++) {
        redisReply *rep = NULL;
        rsbus__retarget(&cl->side, &cand[i]);
        if (!cl->side.c && (r = rsbus__connect(&cl->side)) != RSBUS_OK) {
            if (r == RSBUS_E_AUTH || r == RSBUS_E_TLS) break;   /* the same refusal from every node */
            continue;
        }
        rsbus__cmd(&cl->side); rsbus__lit(&cl->side, "CLUSTER"); rsbus__lit(&cl->side, "SLOTS"); rsbus__cmd_end(&cl->side);
        r = rsbus__call(&cl->side, &rep, "CLUSTER SLOTS");
        if (r != RSBUS_OK) { if (r == RSBUS_E_AUTH) break; continue; }
        if (rsbus__slots_parse(cl, rep, &cand[i]) != 0) { r = rsbus__shape_fail(&cl->side, "CLUSTER SLOTS"); continue; }
        cl->loaded = 1;
        cl->stale = 0;
        break;
    }
    rsbus__free(&bus->a, cand, (known + (size_t)bus->url.nseeds) * sizeof *cand);
    if (r == RSBUS_OK || r == RSBUS_E_AUTH || r == RSBUS_E_TLS) return r;
    return rsbus__fail(bus, r == RSBUS_E_TIMEOUT ? r : RSBUS_E_IO, "cluster %s: no node answered CLUSTER SLOTS (%zu tried; last: %s)",
                       bus->url.redacted, ncand, bus->err);
}
/* rsbus__settle_all on every connection of a cluster bus. */
RSBUS__PRIVATE rsbus_result rsbus__cluster_settle(rsbus *bus) {
    rsbus_result r = RSBUS_OK, r2;
    size_t i;
    for (i = 0; i < bus->cl->npool; i++)
        if ((r2 = rsbus__settle_all(bus->cl->pool[i])) != RSBUS_OK && r == RSBUS_OK) r = r2;
    return r;
}
/* A cluster bus's map and connections, made at rsbus_open. */
RSBUS__PRIVATE rsbus_result rsbus__cluster_new(rsbus *bus, char *msg, size_t size) {
    rsbus__cluster *cl = (rsbus__cluster *)rsbus__alloc(&bus->a, sizeof *cl);
    if (!cl) { snprintf(msg, size, "rsbus_open: out of memory"); return RSBUS_E_NOMEM; }
    memset(cl, 0, sizeof *cl);
    rsbus__conn_init(bus, &cl->side);
    cl->side.side = 1;
    cl->home = rsbus_key_slot(bus->key, bus->key_len);
    bus->cl = cl;
    return RSBUS_OK;
}
RSBUS__PRIVATE void rsbus__cluster_free(rsbus *bus) {
    rsbus__cluster *cl = bus->cl;
    size_t i;
    for (i = 0; i < cl->npool; i++) {
        (void)rsbus__settle_all(cl->pool[i]);
        rsbus__conn_free(cl->pool[i]);
        rsbus__free(&bus->a, cl->pool[i], sizeof *cl->pool[i]);
    }
    rsbus__free(&bus->a, (void *)cl->pool, cl->cap_pool * sizeof *cl->pool);
    rsbus__conn_free(&cl->side);
    rsbus__free(&bus->a, cl, sizeof *cl);
    bus->cl = NULL;
}
/* Before a call: the slot map read (again, when stale), and bus->conn pointed at the stream's master. */
RSBUS__PRIVATE rsbus_result rsbus__cluster_ensure(rsbus *bus) {
    rsbus__cluster *cl = bus->cl;
    if (!cl->loaded || (cl->stale && rsbus__mono_ms() - cl->refreshed_ms >= RSBUS__REFRESH_MS)) {
        rsbus_result r = rsbus__cluster_refresh(bus);
        if (r != RSBUS_OK && !cl->loaded) return r;
        bus->err[0] = 0;   /* an older map serves meanwhile */
    }
    if (!cl->slot[cl->home])
        return rsbus__fail(bus, RSBUS_E_REDIS, "cluster %s: CLUSTERDOWN: no master serves slot %d of %s",
                           bus->url.redacted, cl->home, bus->key);
    rsbus__retarget(&bus->conn, &cl->node[cl->slot[cl->home] - 1]);
    return RSBUS_OK;
}
/* The connection to the master serving a slot (bus->conn on one server), connected if it can be: when it
   cannot, it stays closed and the command queued on it fails with the reason (a connect is tried at most
   every RSBUS__REFRESH_MS). Out of memory: bus->conn, whose master redirects the command. */
RSBUS__PRIVATE rsbus__conn *rsbus__slot_conn(rsbus *bus, int slot) {
    rsbus__cluster *cl = bus->cl;
    const rsbus__addr *a;
    rsbus__conn *cn = NULL;
    size_t i;
    if (!cl || !cl->slot[slot]) return &bus->conn;
    a = &cl->node[cl->slot[slot] - 1];
    if (rsbus__addr_eq(a, bus->conn.host, bus->conn.port)) return &bus->conn;
    for (i = 0; i < cl->npool && !cn; i++)
        if (rsbus__addr_eq(a, cl->pool[i]->host, cl->pool[i]->port)) cn = cl->pool[i];
    if (!cn) {
        rsbus__conn **p = (rsbus__conn **)rsbus__grow(&bus->a, (void *)cl->pool, &cl->cap_pool, cl->npool + 1,
                                                      sizeof *p, 4);
        if (!p) return &bus->conn;   /* out of memory: the stream's master redirects it */
        cl->pool = p;
        if (!(cn = (rsbus__conn *)rsbus__alloc(&bus->a, sizeof *cn))) return &bus->conn;
        rsbus__conn_init(bus, cn);
        memcpy(cn->host, a->host, sizeof cn->host);
        cn->port = a->port;
        cl->pool[cl->npool++] = cn;
    }
    if (!cn->c && rsbus__mono_ms() - cn->last_io_ms >= RSBUS__REFRESH_MS) {
        char keep[sizeof bus->err];
        memcpy(keep, bus->err, sizeof keep);
        if (rsbus__connect(cn) == RSBUS_OK && !bus->cfg.publish_only) rsbus__reread_all(bus);   /* (re)connected */
        else cn->last_io_ms = rsbus__mono_ms();
        memcpy(bus->err, keep, sizeof keep);
    }
    return cn;
}

/* After a flush: keeps the commands just sent, and notes which form a MULTI/EXEC, so that a redirect can
   send them again. Beyond RSBUS__KEEP_MAX (or out of memory) they are not kept: a redirect of one of
   them is then the caller's error. */
RSBUS__PRIVATE void rsbus__keep_sent(rsbus__conn *cn) {
    size_t k, first = 0, in_block = 0;
    char *p = NULL;
    if (cn->nsegs == cn->owe_len - cn->owe_sent && cn->sent_len + cn->out_len <= RSBUS__KEEP_MAX)
        p = (char *)rsbus__grow(&cn->bus->a, cn->sent, &cn->sent_cap, cn->sent_len + cn->out_len, 1, 4096);
    if (!p) {
        for (k = cn->owe_sent; k < cn->owe_len; k++) rsbus__owe_at(cn, k)->slen = 0;
        return;
    }
    cn->sent = p;
    for (k = 0; k < cn->nsegs; k++) {
        rsbus__owe *o = rsbus__owe_at(cn, cn->owe_sent + k);
        const char *c = cn->out + cn->segs[k].off;
        size_t n = cn->segs[k].len, j;
        o->soff = cn->sent_len;
        o->slen = n;
        o->bn = 0;
        memcpy(cn->sent + cn->sent_len, c, n);
        cn->sent_len += n;
        if (n == 15 && memcmp(c, "*1\r\n$5\r\nMULTI\r\n", 15) == 0) { in_block = 1; first = k; }
        else if (in_block && n == 14 && memcmp(c, "*1\r\n$4\r\nEXEC\r\n", 14) == 0) {
            size_t boff = rsbus__owe_at(cn, cn->owe_sent + first)->soff;
            for (j = first; j <= k; j++) {
                rsbus__owe *b = rsbus__owe_at(cn, cn->owe_sent + j);
                b->boff = boff;
                b->blen = cn->sent_len - boff;
                b->bn = k - first + 1;
                b->bpos = j - first;
            }
            in_block = 0;
        }
    }
}
/* A reply was taken: the commands kept for replies no longer owed are let go of. */
RSBUS__PRIVATE void rsbus__sent_done(rsbus__conn *cn, const rsbus__owe *o) {
    size_t k, from;
    if (!cn->owe_sent) { cn->sent_head = cn->sent_len = 0; return; }
    if (o->slen) cn->sent_head = o->soff + o->slen;
    if (cn->sent_head < ((size_t)1 << 16) || cn->sent_head * 2 < cn->sent_len) return;
    from = cn->sent_head;   /* a block partly answered keeps its start */
    for (k = 0; k < cn->owe_sent; k++) {
        const rsbus__owe *w = rsbus__owe_at(cn, k);
        if (w->slen && w->bn && w->boff < from) from = w->boff;
    }
    memmove(cn->sent, cn->sent + from, cn->sent_len - from);
    cn->sent_len -= from;
    cn->sent_head -= from;
    for (k = 0; k < cn->owe_sent; k++) {
        rsbus__owe *w = rsbus__owe_at(cn, k);
        if (!w->slen) continue;
        w->soff -= from;
        if (w->bn) w->boff -= from;
    }
}
/* Queues n commands already written as RESP (p, len) as one segment, their replies owed to the caller. */
RSBUS__PRIVATE void rsbus__cmd_raw(rsbus__conn *cn, const char *p, size_t len, size_t n) {
    size_t i;
    if (rsbus__reserve(cn, len) != 0) return;
    memcpy(cn->out + cn->out_len, p, len);
    for (i = 0; i < n; i++) {
        if (rsbus__queue_room(cn) != 0) return;
        if (i == 0) {
            cn->segs[cn->nsegs].off = cn->out_len;
            cn->segs[cn->nsegs].len = len;
            cn->nsegs++;
        }
        rsbus__owe_push(cn, RSBUS__OWE_CALLER, 0, 0);
    }
    cn->out_len += len;
}
/* Whether a command blocks (XREADGROUP ... BLOCK): one redirected is answered as timed out instead (the
   next read goes to the right master). */
RSBUS__PRIVATE int rsbus__blocks(const char *p, size_t n) {
    static const char w[] = "\r\n$5\r\nBLOCK\r\n";
    size_t i;
    for (i = 0; i + sizeof w - 1 <= n; i++) if (memcmp(p + i, w, sizeof w - 1) == 0) return 1;
    return 0;
}
/* Sends n commands (p, len) again on the spare connection, to node 'to' (after ASKING when asking), and
   reads their answers: the one at 'at' into *out, those after it into cn->sub. */
RSBUS__PRIVATE rsbus_result rsbus__resend(rsbus__conn *cn, const rsbus__addr *to, int asking, const char *p, size_t len,
                                          size_t n, size_t at, redisReply **out) {
    rsbus__conn *sd = &cn->bus->cl->side;
    rsbus_result r = RSBUS_OK;
    size_t i;
    rsbus__retarget(sd, to);
    if (!sd->c && (r = rsbus__connect(sd)) != RSBUS_OK) return r;
    if (asking) { rsbus__cmd(sd); rsbus__lit(sd, "ASKING"); rsbus__cmd_end(sd); }
    rsbus__cmd_raw(sd, p, len, n);
    if (n - at - 1 > cn->cap_sub) {
        redisReply **s = (redisReply **)rsbus__grow(&cn->bus->a, (void *)cn->sub, &cn->cap_sub, n - at - 1, sizeof *s, 16);
        if (!s) { rsbus__reset_cmds(sd); return rsbus__fail(cn->bus, RSBUS_E_NOMEM, "cluster redirect: out of memory"); }
        cn->sub = s;
    }
    cn->nsub = cn->sub_pos = 0;
    for (i = 0; i < (size_t)asking + n && r == RSBUS_OK; i++) {
        redisReply *rep = NULL;
        r = rsbus__recv(sd, &rep, "cluster redirect");
        if (r != RSBUS_OK || i < (size_t)asking + at) continue;
        if (i == (size_t)asking + at) *out = rep;
        else cn->sub[cn->nsub++] = rep;
    }
    if (r != RSBUS_OK) cn->nsub = 0;
    return r;
}
/* The reply at the head of cn's queue is a redirect: its command (or its whole MULTI/EXEC) goes where
   it points, and the answer from there replaces it in *out. */
RSBUS__PRIVATE rsbus_result rsbus__follow(rsbus__conn *cn, redisReply **out, const char *what) {
    rsbus *bus = cn->bus;
    rsbus__cluster *cl = bus->cl;
    const rsbus__owe *o = rsbus__owe_at(cn, 0);
    size_t off = o->bn ? o->boff : o->soff, len = o->bn ? o->blen : o->slen;
    size_t n = o->bn ? o->bn : 1, at = o->bn ? o->bpos : 0, k;
    int64_t deadline = rsbus__mono_ms() + bus->cfg.io_timeout_ms, wait = 10;
    rsbus__addr here, to;
    redisReply *rep = *out;
    rsbus_result r = RSBUS_OK;
    int tries, kind, asking = 0;
    if (!o->slen) return RSBUS_OK;   /* not kept: the redirect stands, as an error */
    /* the rest of an aborted block answers here first (errors, then EXECABORT): those answers are replaced */
    for (k = at + 1; k < n && r == RSBUS_OK; k++) {
        redisReply *skip;
        r = rsbus__read_reply(cn, &skip, what);
    }
    if (r != RSBUS_OK) return r;
    rsbus__conn_addr(cn, &here);
    to = here;
    for (tries = 0; (kind = rsbus__redirect_kind(rep)) != RSBUS__RD_NONE && tries < RSBUS__REDIRECTS; tries++) {
        char text[96];
        int slot;
        rsbus__clean(rep->str, rep->len, text, sizeof text);
        if (kind == RSBUS__RD_RETRY) {   /* the same node again, after a while */
            if (rsbus__mono_ms() + wait > deadline) break;
            rsbus__sleep_ms(wait);
            wait = RSBUS__MIN(wait * 2, 200);
            cl->stale = 1;
        } else {
            if (rsbus__redirect_parse(rep->str, rep->len, &slot, &to, &here) != 0) break;
            asking = kind == RSBUS__RD_ASK;
            if (!asking) {
                int idx = rsbus__node_index(cl, &to);
                if (idx >= 0) cl->slot[slot] = (uint16_t)(idx + 1);
                cl->stale = 1;   /* a moved slot rarely moves alone */
            }
        }
        rsbus__log(bus, RSBUS_LOG_DEBUG, "%s: %s; sending it to %s:%d", what, text, to.host, to.port);
        if (!o->bn && rsbus__blocks(cn->sent + off, len)) {
            redisReply *nil = (redisReply *)rsbus__arena_alloc(bus, sizeof *nil);
            if (!nil) return rsbus__fail(bus, RSBUS_E_NOMEM, "%s: out of memory", what);
            memset(nil, 0, sizeof *nil);
            nil->type = REDIS_REPLY_NIL;
            rep = nil;
            break;
        }
        r = rsbus__resend(cn, &to, asking, cn->sent + off, len, n, at, &rep);
        if (r != RSBUS_OK) return r;
    }
    *out = rep;
    return RSBUS_OK;
}
#endif /* RSBUS_NO_CLUSTER */

/* Sends what is queued and reads every reply owed, on every connection of the bus. */
RSBUS__PRIVATE rsbus_result rsbus__settle_every(rsbus *bus) {
    rsbus_result r = rsbus__settle_all(&bus->conn);
#ifndef RSBUS_NO_CLUSTER
    rsbus_result r2;
    if (bus->cl && (r2 = rsbus__cluster_settle(bus)) != RSBUS_OK && r == RSBUS_OK) r = r2;
#endif
    return r;
}

/* Creates the group on every partition where it does not exist (BUSYGROUP is fine); the commands of all
   partitions go out together, and every reply is read. */
RSBUS__PRIVATE rsbus_result rsbus__create_group(rsbus *bus, const char *start) {
    rsbus_result r = RSBUS_OK, first = RSBUS_OK;
    int i;
    for (i = 0; i < bus->nparts; i++) {
        rsbus__conn *cn = rsbus__part_conn(bus, i);
        rsbus__cmd(cn);
        rsbus__lit(cn, "XGROUP"); rsbus__lit(cn, "CREATE");
        rsbus__arg(cn, bus->parts[i].key, bus->parts[i].key_len);
        rsbus__arg(cn, bus->cfg.group, bus->group_len);
        rsbus__argz(cn, start);
        rsbus__lit(cn, "MKSTREAM");
        rsbus__cmd_end(cn);
    }
    for (i = 0; i < bus->nparts && r == RSBUS_OK; i++) {
        redisReply *rep = NULL;
        r = rsbus__recv(rsbus__part_conn(bus, i), &rep, "XGROUP CREATE");
        if (r == RSBUS_OK && rep->type == REDIS_REPLY_ERROR && first == RSBUS_OK) {
            rsbus_result e = rsbus__reply_fail(bus, rep, "XGROUP CREATE");
            if (e == RSBUS_E_REDIS && rsbus__rcode_is(bus, "BUSYGROUP")) bus->err[0] = 0;
            else first = e;
        }
    }
    if (r == RSBUS_OK) r = first;
    if (r == RSBUS_OK) { bus->nogroup = 0; bus->rcode[0] = 0; }
    return r;
}

/* Every public call that talks to Redis starts here: reconnect once if the connection was lost. */
RSBUS__PRIVATE rsbus_result rsbus__ensure(rsbus *bus) {
    rsbus__conn *cn = &bus->conn;
    rsbus_result r;
    bus->err[0] = 0;
    bus->rcode[0] = 0;
    /* no reply of an earlier call is in use (replies still owed are read when their turn comes) */
    if (!bus->dispatching && !bus->nheld) rsbus__arena_reset(bus);
#ifndef RSBUS_NO_CLUSTER
    if (bus->cl && (r = rsbus__cluster_ensure(bus)) != RSBUS_OK) return r;
#endif
    if (cn->c && (rsbus__owes(cn, RSBUS__OWE_CALLER) || (!cn->owe_sent && cn->c->reader->len > cn->c->reader->pos))) {
        /* a reply an earlier call did not read, or bytes no command asked for: out of step, start afresh */
        rsbus__log(bus, RSBUS_LOG_WARN, "unexpected data from %s; reconnecting", bus->url.redacted);
        rsbus__drop(cn);
    }
    if (cn->c && bus->sentinel_stale) {   /* READONLY or MASTERDOWN: ask the sentinels again (>>sentinel) */
        rsbus__log(bus, RSBUS_LOG_INFO, "%s:%d is no longer the master; asking the sentinels", cn->host, cn->port);
        rsbus__drop(cn);
    }
    if (cn->c && cn->owe_sent) return RSBUS_OK;   /* replies are coming: it is in use */
    if (cn->c && cn->mem) return RSBUS_OK;   /* mem://: nothing closes it behind rsbus's back */
    if (cn->c) {
        /* Between commands Redis sends nothing: a readable socket means it closed the connection
           (CLIENT KILL, timeout, restart). Notice that now rather than fail the next command; checked
           only after a quiet spell, since a busy connection would have shown it already. */
        struct pollfd pfd;
        if (rsbus__mono_ms() - cn->last_io_ms < RSBUS__QUIET_MS) return RSBUS_OK;
        pfd.fd = cn->c->fd; pfd.events = POLLIN; pfd.revents = 0;
        if (poll(&pfd, 1, 0) == 0) return RSBUS_OK;
        rsbus__log(bus, RSBUS_LOG_INFO, "connection to %s was closed; reconnecting", bus->url.redacted);
        rsbus__drop(cn);
    }
    r = rsbus__connect(cn);
    if (r != RSBUS_OK) return r;
    rsbus__reconnected(bus);
    return RSBUS_OK;
}

/* >>config defaults */
/* Stream, group and consumer names: printable ASCII, no spaces (they appear in log lines). */
RSBUS__PRIVATE int rsbus__name_ok(const char *s, size_t max) {
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (n >= max || ch <= 0x20 || ch >= 0x7f) return 0;
    }
    return n > 0;
}
RSBUS__PRIVATE int rsbus__type_ok(const char *s, size_t n) {
    size_t i;
    if (n < 1 || n > RSBUS__TYPE_MAX) return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-')) return 0;
    }
    return 1;
}
RSBUS__PRIVATE int rsbus__tenant_ok(const char *s) {
    size_t n = strlen(s), i;
    if (n < 1 || n > 64) return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) return 0;
    }
    return 1;
}

/* Whether a field name is one rsbus writes itself: its wire names other than type, id and data (with
   with_own also those three), or a dlq_* field of a dead letter. */
RSBUS__PRIVATE int rsbus__reserved_field(const char *s, size_t n, int with_own) {
    static const char *const names[] = { "ts", "v", "key", "src", "tenant", "corr", "trace", "replay_of",
                                         "replay_for", "dlq_error", "dlq_stream_id", "dlq_stream", "dlq_group",
                                         "dlq_consumer", "dlq_deliveries", "dlq_failed_at", "type", "id", "data" };
    size_t k, count = with_own ? 19 : 16;
    for (k = 0; k < count; k++)
        if (strlen(names[k]) == n && memcmp(names[k], s, n) == 0) return 1;
    return 0;
}
/* One of the dlq_* fields a dead letter adds (a field of the original entry keeps any other name). */
RSBUS__PRIVATE int rsbus__dlq_field(const char *s, size_t n) {
    return n >= 9 && memcmp(s, "dlq_", 4) == 0 && rsbus__reserved_field(s, n, 0);
}
/* A public call of a part that a build switch (RSBUS_NO_*, see CONFIG MACROS) compiled out. */
RSBUS__PRIVATE rsbus_result rsbus__compiled_out(rsbus *bus, const char *call, const char *sw) {
    if (!bus) return RSBUS_E_ARG;
    return rsbus__fail(bus, RSBUS_E_ARG, "%s: compiled out by %s", call, sw);
}

/* Copies the caller's config and fills in every default; checks every field. */
RSBUS__PRIVATE rsbus_result rsbus__config_defaults(const rsbus_config *in, rsbus_config *c, char *msg, size_t size) {
#define RSBUS__CHECK(cond, text) do { if (!(cond)) { snprintf(msg, size, "rsbus_config.%s", text); return RSBUS_E_ARG; } } while (0)
    *c = *in;
    RSBUS__CHECK(!c->url || c->url[0], "url: empty (NULL means the default)");
    c->url = RSBUS__DEF(c->url, "redis://127.0.0.1:6379");
    c->stream = RSBUS__DEF(c->stream, "rsbus:events");
    c->group = RSBUS__DEF(c->group, "default");
    c->group_start = RSBUS__DEF(c->group_start, "$");
    RSBUS__CHECK(rsbus__name_ok(c->stream, 200), "stream: 1..200 bytes of printable ASCII, no spaces");
    RSBUS__CHECK(rsbus__name_ok(c->group, 127), "group: 1..127 bytes of printable ASCII, no spaces");
    RSBUS__CHECK(!c->consumer || rsbus__name_ok(c->consumer, 127), "consumer: 1..127 bytes of printable ASCII, no spaces");
    RSBUS__CHECK(rsbus__name_ok(c->group_start, RSBUS_ID_SIZE - 1), "group_start: \"$\", \"0\" or a stream id");
    RSBUS__CHECK(!c->tenant || rsbus__tenant_ok(c->tenant), "tenant: 1..64 bytes of [A-Za-z0-9._-]");
    /* every key of a stream is the stream's or "{stream}:...": a brace in a name would break that */
    RSBUS__CHECK(!strpbrk(c->stream, "{}"), "stream: must not contain '{' or '}' (they pick a key's cluster slot)");
    RSBUS__CHECK(!strpbrk(c->group, "{}"), "group: must not contain '{' or '}' (they pick a key's cluster slot)");
    RSBUS__CHECK(!c->consumer || !strpbrk(c->consumer, "{}"),
                 "consumer: must not contain '{' or '}' (they pick a key's cluster slot)");
    RSBUS__CHECK(c->partitions >= 0 && c->partitions <= RSBUS__MAX_PARTS, "partitions: must be 0..256 (0 or 1: one stream)");
    if (c->partitions == 0) c->partitions = 1;
    if (c->max_len == 0) c->max_len = 100000;
    if (c->dlq_max_len == 0) c->dlq_max_len = 10000;
    c->batch_size = RSBUS__DEF(c->batch_size, 100);
    RSBUS__CHECK(c->batch_size > 0 && c->batch_size <= 10000, "batch_size: must be 1..10000");
    c->block_ms = RSBUS__DEF(c->block_ms, 5000);
    RSBUS__CHECK(c->block_ms > 0, "block_ms: must be positive");
    if (c->max_retries == 0) c->max_retries = 3;
    else if (c->max_retries < 0) c->max_retries = 0;
    c->retry_backoff_ms = RSBUS__DEF(c->retry_backoff_ms, 1000);
    c->retry_backoff_max_ms = RSBUS__DEF(c->retry_backoff_max_ms, 60000);
    RSBUS__CHECK(c->retry_backoff_ms > 0, "retry_backoff_ms: must be positive");
    RSBUS__CHECK(c->retry_backoff_max_ms > 0, "retry_backoff_max_ms: must be positive");
    c->claim_idle_ms = RSBUS__DEF(c->claim_idle_ms, 60000);
    c->claim_interval_ms = RSBUS__DEF(c->claim_interval_ms, 5000);
    RSBUS__CHECK(c->claim_idle_ms > 0, "claim_idle_ms: must be positive");
    RSBUS__CHECK(c->claim_interval_ms > 0, "claim_interval_ms: must be positive");
    c->connect_timeout_ms = RSBUS__DEF(c->connect_timeout_ms, 5000);
    c->io_timeout_ms = RSBUS__DEF(c->io_timeout_ms, 5000);
    RSBUS__CHECK(c->connect_timeout_ms > 0, "connect_timeout_ms: must be positive");
    RSBUS__CHECK(c->io_timeout_ms > 0, "io_timeout_ms: must be positive");
    c->max_event_bytes = RSBUS__DEF(c->max_event_bytes, (size_t)1 << 20);
    RSBUS__CHECK(c->max_event_bytes <= ((size_t)512 << 20), "max_event_bytes: at most 512 MiB (Redis's limit)");
    RSBUS__CHECK(rsbus__allocator_ok(&c->allocator), "allocator: set all three functions or none");
    c->log_level = RSBUS__DEF(c->log_level, RSBUS_LOG_WARN);
    RSBUS__CHECK(c->log_level >= RSBUS_LOG_ERROR && c->log_level <= RSBUS_LOG_DEBUG, "log_level: out of range");
    RSBUS__CHECK(c->trim_policy == RSBUS_TRIM_MAXLEN || c->trim_policy == RSBUS_TRIM_ACKED,
                 "trim_policy: RSBUS_TRIM_MAXLEN or RSBUS_TRIM_ACKED");
    RSBUS__CHECK(c->dedupe_ttl_ms >= 0, "dedupe_ttl_ms: must not be negative (0 turns dedupe off)");
    RSBUS__CHECK(!c->spool_path || (c->spool_path[0] && strlen(c->spool_path) < 4096),
                 "spool_path: empty or longer than 4095 bytes (NULL turns the spool off)");
    c->spool_max_bytes = RSBUS__DEF(c->spool_max_bytes, (int64_t)64 << 20);
    RSBUS__CHECK(c->spool_max_bytes >= 4096, "spool_max_bytes: at least 4096");
    RSBUS__CHECK(sizeof(off_t) >= 8 || c->spool_max_bytes <= INT32_MAX,
                 "spool_max_bytes: at most 2 GiB - 1 where off_t has 32 bits (build with -D_FILE_OFFSET_BITS=64)");
    RSBUS__CHECK(c->spool_fsync == 0 || c->spool_fsync == 1, "spool_fsync: 0 (fsync every record) or 1 (leave it to the OS)");
    RSBUS__CHECK(c->accept_foreign == 0 || c->accept_foreign == 1, "accept_foreign: 0 or 1");
    c->type_field = RSBUS__DEF(c->type_field, "type");
    c->id_field = RSBUS__DEF(c->id_field, "id");
    c->data_field = RSBUS__DEF(c->data_field, "data");
    RSBUS__CHECK(rsbus__name_ok(c->type_field, 128) && !rsbus__reserved_field(c->type_field, strlen(c->type_field), 0),
                 "type_field: 1..128 bytes of printable ASCII without spaces, not another of rsbus's field names");
    RSBUS__CHECK(rsbus__name_ok(c->id_field, 128) && !rsbus__reserved_field(c->id_field, strlen(c->id_field), 0),
                 "id_field: 1..128 bytes of printable ASCII without spaces, not another of rsbus's field names");
    RSBUS__CHECK(rsbus__name_ok(c->data_field, 128) && !rsbus__reserved_field(c->data_field, strlen(c->data_field), 0),
                 "data_field: 1..128 bytes of printable ASCII without spaces, not another of rsbus's field names");
    RSBUS__CHECK(strcmp(c->type_field, c->id_field) != 0 && strcmp(c->type_field, c->data_field) != 0 &&
                 strcmp(c->id_field, c->data_field) != 0, "type_field, id_field, data_field: must differ");
    RSBUS__CHECK(c->publish_wait_replicas >= 0 && c->publish_wait_replicas <= 1000,
                 "publish_wait_replicas: 0 (off) .. 1000");
    c->publish_wait_ms = RSBUS__DEF(c->publish_wait_ms, 100);
    RSBUS__CHECK(c->publish_wait_ms > 0, "publish_wait_ms: must be positive (WAIT 0 would wait forever)");
    RSBUS__CHECK(c->publish_wait_replicas == 0 || c->publish_wait_ms < c->io_timeout_ms,
                 "publish_wait_ms: must be below io_timeout_ms (WAIT's answer is read within it)");
#ifdef RSBUS_NO_SPOOL
    RSBUS__CHECK(!c->spool_path, "spool_path: the spool is compiled out by RSBUS_NO_SPOOL");
#endif
#ifdef RSBUS_NO_DEDUPE
    RSBUS__CHECK(c->dedupe_ttl_ms == 0, "dedupe_ttl_ms: dedupe is compiled out by RSBUS_NO_DEDUPE");
#endif
#ifdef RSBUS_NO_CLUSTER
    RSBUS__CHECK(c->partitions <= 1, "partitions: partitions are compiled out by RSBUS_NO_CLUSTER");
#endif
    return RSBUS_OK;
#undef RSBUS__CHECK
}

/* >>partitions
   Key layout: every key of a stream K is K itself or "{K}:<suffix>" (the dead letters "{K}:dlq", dedupe
   marks "{K}:dedupe:<group>:<event id>", the partition record "{K}:meta"), so that in a Redis Cluster they
   all hash to K's slot and every MULTI/EXEC of rsbus stays in one slot.
   Partitions (config.partitions N >= 2): the stream is N streams "K:p0" .. "K:p<N-1>", each with its own
   dead letters "{K:p<i>}:dlq" and dedupe marks; an event goes to rsbus_key_slot(its key, else its event id)
   % N. The count is pinned in "{K}:meta" (field "partitions", HSETNX by the first rsbus_open). bus->parts
   holds one rsbus__part per partition (one, the stream itself, when unpartitioned).
   Every command about partition i's keys goes to rsbus__part_conn(bus, i); commands for several
   partitions share one command only where rsbus__one_conn(bus) says that they can (one server, where
   one XREADGROUP may name all of them). */

/* "{key}<suffix>" into out (room for key_len + strlen(suffix) + 3); returns its length. */
RSBUS__PRIVATE size_t rsbus__tagged_key(char *out, const char *key, size_t key_len, const char *suffix) {
    size_t n = strlen(suffix);
    out[0] = '{';
    memcpy(out + 1, key, key_len);
    out[key_len + 1] = '}';
    memcpy(out + key_len + 2, suffix, n + 1);
    return key_len + 2 + n;
}

/* CRC16-CCITT as XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster hashes keys; four bits at
   a time from a 16-entry table */
RSBUS__PRIVATE const uint16_t rsbus__crc16_table[16] = {
    0x0000u, 0x1021u, 0x2042u, 0x3063u, 0x4084u, 0x50A5u, 0x60C6u, 0x70E7u,
    0x8108u, 0x9129u, 0xA14Au, 0xB16Bu, 0xC18Cu, 0xD1ADu, 0xE1CEu, 0xF1EFu
};
RSBUS__PRIVATE unsigned rsbus__crc16(const unsigned char *p, size_t n) {
    unsigned c = 0;
    while (n--) {
        c ^= (unsigned)*p++ << 8;
        c = ((c << 4) & 0xFFFFu) ^ rsbus__crc16_table[(c >> 12) & 15u];
        c = ((c << 4) & 0xFFFFu) ^ rsbus__crc16_table[(c >> 12) & 15u];
    }
    return c;
}
RSBUS__PUBLIC int rsbus_key_slot(const char *key, size_t len) {
    const char *open, *close;
    if (!key) return 0;
    if (len == 0) len = strlen(key);
    open = (const char *)memchr(key, '{', len);
    if (open) {   /* the first '{' and the first '}' after it: a non-empty tag between them is what is hashed */
        close = (const char *)memchr(open + 1, '}', len - (size_t)(open + 1 - key));
        if (close && close > open + 1) { key = open + 1; len = (size_t)(close - key); }
    }
    return (int)(rsbus__crc16((const unsigned char *)key, len) & 16383u);
}

/* The server that holds partition i, for rsbus_partitions_list: "host:port", the unix socket path, or
   "mem://<name>" for the in-process bus. */
RSBUS__PRIVATE void rsbus__part_node(rsbus *bus, int i, char *buf, size_t size) {
#ifndef RSBUS_NO_CLUSTER
    if (bus->cl) {   /* the master the slot map names, as CLUSTER SLOTS gives it */
        const rsbus__conn *cn = rsbus__part_conn(bus, i);
        if (cn->port) { snprintf(buf, size, "%.100s:%d", cn->host, cn->port); return; }
    }
#endif
    (void)i;
    if (bus->url.kind == RSBUS__URL_MEM) snprintf(buf, size, "mem://%.100s", bus->url.host);
    else if (bus->url.kind == RSBUS__URL_UNIX) snprintf(buf, size, "%.107s", bus->url.path);
    else if (strchr(bus->url.host, ':')) snprintf(buf, size, "[%.100s]:%d", bus->url.host, bus->url.port);
    else snprintf(buf, size, "%.100s:%d", bus->url.host, bus->url.port);
}
/* The partition an event goes to: by its key when it has one, else by its event id. */
RSBUS__PRIVATE int rsbus__route(const rsbus *bus, const char *key, const char *id) {
    const char *by = key ? key : id;
    if (bus->nparts <= 1 || !by) return 0;
    return rsbus_key_slot(by, strlen(by)) % bus->nparts;
}
/* The partition named by the stream key of a reply (a multi-stream XREADGROUP), -1 when none is. */
RSBUS__PRIVATE int rsbus__part_of_key(const rsbus *bus, const char *key, size_t len) {
    int i;
    for (i = 0; i < bus->nparts; i++)
        if (bus->parts[i].key_len == len && !memcmp(bus->parts[i].key, key, len)) return i;
    return -1;
}
/* The most entries one read brings: batch_size from each partition (the per-batch scratch is this big). */
RSBUS__PRIVATE size_t rsbus__batch_max(const rsbus *bus) {
    return (size_t)bus->cfg.batch_size * (size_t)(bus->nparts > 1 ? bus->nparts : 1);
}
/* The partitions' keys, from the stream key and config.partitions. */
RSBUS__PRIVATE rsbus_result rsbus__parts_init(rsbus *bus) {
    int i, n = bus->cfg.partitions > 1 ? bus->cfg.partitions : 1;
    bus->parts = (rsbus__part *)rsbus__alloc(&bus->a, (size_t)n * sizeof *bus->parts);
    if (!bus->parts) return RSBUS_E_NOMEM;
    memset(bus->parts, 0, (size_t)n * sizeof *bus->parts);
    bus->nparts = n;
    for (i = 0; i < n; i++) {
        rsbus__part *pt = &bus->parts[i];
        memcpy(pt->key, bus->key, bus->key_len + 1);
        pt->key_len = bus->key_len;
        if (n > 1) {   /* K:p<i>, i < 256 */
            char num[8];
            size_t nl = (size_t)snprintf(num, sizeof num, "%d", i % 1000);
            memcpy(pt->key + pt->key_len, ":p", 2);
            memcpy(pt->key + pt->key_len + 2, num, nl + 1);
            pt->key_len += 2 + nl;
        }
        pt->dlq_key_len = rsbus__tagged_key(pt->dlq_key, pt->key, pt->key_len, ":dlq");
        pt->slot = rsbus_key_slot(pt->key, pt->key_len);
        strcpy(pt->reread_from, "0");
    }
    return RSBUS_OK;
}
RSBUS__PRIVATE void rsbus__parts_free(rsbus *bus) {
    if (bus->parts) rsbus__free(&bus->a, bus->parts, (size_t)bus->nparts * sizeof *bus->parts);
    bus->parts = NULL;
}

/* Pins the partition count in {K}:meta (HSETNX, then HGET what is there): another count, or an
   unpartitioned bus on a partitioned stream, is RSBUS_E_ARG naming both numbers. An unpartitioned bus
   only reads the record, and goes on when it may not (a least-privilege user without HGET). */
RSBUS__PRIVATE rsbus_result rsbus__pin_partitions(rsbus *bus) {
    rsbus__conn *cn = &bus->conn;   /* {K}:meta is in K's slot (bus->conn's master on a cluster), not partition 0's */
    char meta[RSBUS__NAME_MAX + 16];
    size_t ml = rsbus__tagged_key(meta, bus->key, bus->key_len, ":meta");
    redisReply *rs[2] = { NULL, NULL };
    int64_t have = 0;
    size_t nrep = 0;
    rsbus_result r;
    if (bus->nparts > 1) {
        rsbus__cmd(cn); rsbus__lit(cn, "HSETNX"); rsbus__arg(cn, meta, ml); rsbus__lit(cn, "partitions");
        rsbus__argi(cn, bus->nparts); rsbus__cmd_end(cn);
        nrep++;
    }
    rsbus__cmd(cn); rsbus__lit(cn, "HGET"); rsbus__arg(cn, meta, ml); rsbus__lit(cn, "partitions"); rsbus__cmd_end(cn);
    nrep++;
    r = rsbus__recv_n(cn, rs, nrep, "HGET (partitions)");
    if (r != RSBUS_OK) return r;
    if (rs[nrep - 1]->type == REDIS_REPLY_ERROR || (nrep == 2 && rs[0]->type == REDIS_REPLY_ERROR)) {
        redisReply *e = rs[0]->type == REDIS_REPLY_ERROR ? rs[0] : rs[nrep - 1];
        r = rsbus__reply_fail(bus, e, nrep == 2 ? "HSETNX (partitions)" : "HGET (partitions)");
        if (nrep == 2) return r;   /* a partitioned bus must pin its count */
        rsbus__log(bus, RSBUS_LOG_INFO, "cannot read the partition record of %s (%s); assuming one stream",
                   bus->key, bus->err);
        bus->err[0] = 0;
        return RSBUS_OK;
    }
    if (rs[nrep - 1]->type == REDIS_REPLY_NIL) return RSBUS_OK;   /* unpartitioned and no record */
    if (!rsbus__reply_i64(rs[nrep - 1], &have) || have < 1) return rsbus__shape_fail(cn, "HGET (partitions)");
    if ((have >= 2 || bus->nparts >= 2) && have != bus->nparts)
        return rsbus__fail(bus, RSBUS_E_ARG, "rsbus_config.partitions: %d, but stream %s has %lld partitions "
                           "(pinned in {%s}:meta)", bus->cfg.partitions, bus->key,
                           (long long)have, bus->key);
    return RSBUS_OK;
}

/* >>public api: open and close */
/* The bus's own copy of the config (strings in one allocation, the consumer's name made up when not
   given) and the keys it derives. */
RSBUS__PRIVATE rsbus_result rsbus__own_config(rsbus *bus, rsbus_config c, char *msg, size_t size) {
    const char *strs[10];
    size_t lens[10], total = 0, i;
    char consumer[160], *p;
    if (!c.consumer) {   /* <hostname>-<pid>-<random> */
        char host[64];
        unsigned char rb[2];
        if (gethostname(host, sizeof host) != 0) strcpy(host, "host");
        host[sizeof host - 1] = 0;
        for (p = host; *p; p++) if ((unsigned char)*p <= 0x20 || *p == 0x7f) *p = '_';
        if (rsbus__random(bus, rb, 2) != 0) { snprintf(msg, size, "rsbus_open: no random source"); return RSBUS_E_IO; }
        snprintf(consumer, sizeof consumer, "%.64s-%ld-%02x%02x", host, (long)getpid(), rb[0], rb[1]);
        c.consumer = consumer;
    }
    strs[0] = c.url; strs[1] = c.stream; strs[2] = c.group; strs[3] = c.consumer; strs[4] = c.group_start;
    strs[5] = c.tenant ? c.tenant : "";
    strs[6] = c.spool_path ? c.spool_path : "";
    strs[7] = c.type_field; strs[8] = c.id_field; strs[9] = c.data_field;
    for (i = 0; i < 10; i++) { lens[i] = strlen(strs[i]) + 1; total += lens[i]; }
    bus->strs = (char *)rsbus__alloc(&bus->a, total);
    if (!bus->strs) { snprintf(msg, size, "rsbus_open: out of memory"); return RSBUS_E_NOMEM; }
    bus->strs_size = total;
    for (p = bus->strs, i = 0; i < 10; i++) { memcpy(p, strs[i], lens[i]); strs[i] = p; p += lens[i]; }
    c.url = strs[0]; c.stream = strs[1]; c.group = strs[2]; c.consumer = strs[3]; c.group_start = strs[4];
    c.tenant = c.tenant ? strs[5] : NULL;
    c.spool_path = c.spool_path ? strs[6] : NULL;
    c.type_field = strs[7]; c.id_field = strs[8]; c.data_field = strs[9];
    bus->type_field_len = lens[7] - 1; bus->id_field_len = lens[8] - 1; bus->data_field_len = lens[9] - 1;
    bus->custom_fields = strcmp(c.type_field, "type") || strcmp(c.id_field, "id") || strcmp(c.data_field, "data");
    bus->cfg = c;
    if (c.tenant) snprintf(bus->key, sizeof bus->key, "tenant:%s:%s", c.tenant, c.stream);
    else snprintf(bus->key, sizeof bus->key, "%s", c.stream);
    bus->key_len = strlen(bus->key);
    bus->dlq_key_len = rsbus__tagged_key(bus->dlq_key, bus->key, bus->key_len, ":dlq");
    bus->group_len = strlen(c.group);
    bus->consumer_len = strlen(c.consumer);
    if (rsbus__parts_init(bus) != RSBUS_OK) { snprintf(msg, size, "rsbus_open: out of memory"); return RSBUS_E_NOMEM; }
    return RSBUS_OK;
}
/* Scratch sized once, so that a batch allocates nothing: the fields of the entry being decoded (tail and
   replay_range decode on a publish_only bus too), and a consuming bus's per-batch arrays. */
RSBUS__PRIVATE rsbus_result rsbus__alloc_scratch(rsbus *bus) {
    size_t n = rsbus__batch_max(bus);
    size_t nf = RSBUS__MAX_FIELDS + RSBUS__DLQ_FIELDS + (bus->cfg.publish_only ? 0 : n * RSBUS__TYPICAL_FIELDS);
    bus->fields = (rsbus_field *)rsbus__grow(&bus->a, NULL, &bus->cap_fields, nf, sizeof *bus->fields, nf);
    if (!bus->fields) return rsbus__fail(bus, RSBUS_E_NOMEM, "rsbus_open: out of memory");
    if (bus->cfg.publish_only) return RSBUS_OK;
    bus->items = (rsbus__item *)rsbus__alloc(&bus->a, n * sizeof *bus->items);
    bus->reasons = (char *)rsbus__alloc(&bus->a, n * RSBUS_REASON_SIZE);
    bus->counts = (int64_t *)rsbus__alloc(&bus->a, n * sizeof *bus->counts);
    bus->reps = (redisReply **)rsbus__alloc(&bus->a, n * sizeof *bus->reps);
    bus->got = (const redisReply **)rsbus__alloc(&bus->a, n * sizeof *bus->got);
    bus->batch_parts = (int *)rsbus__alloc(&bus->a, n * sizeof *bus->batch_parts);
    if (!bus->items || !bus->reasons || !bus->counts || !bus->reps || !bus->got || !bus->batch_parts)
        return rsbus__fail(bus, RSBUS_E_NOMEM, "rsbus_open: out of memory");
    return RSBUS_OK;
}
/* Connects and creates the group. A bus with a spool starts offline when Redis cannot be reached yet. */
RSBUS__PRIVATE rsbus_result rsbus__start(rsbus *bus) {
    rsbus_result r = rsbus__ensure(bus);
    if ((r == RSBUS_E_IO || r == RSBUS_E_TIMEOUT) && bus->cfg.spool_path) {   /* a gateway: it spools */
        rsbus__log(bus, RSBUS_LOG_WARN, "cannot reach Redis yet (%s); publishing to the spool until it can", bus->err);
        return RSBUS_OK;
    }
    if (r == RSBUS_OK) r = rsbus__pin_partitions(bus);
    if (r == RSBUS_OK && !bus->cfg.publish_only) {
        r = rsbus__create_group(bus, bus->cfg.group_start);
        if (r == RSBUS_E_AUTH && rsbus__rcode_is(bus, "NOPERM")) {   /* least privilege: the group must exist */
            rsbus__log(bus, RSBUS_LOG_INFO, "cannot create group %s of %s (%s); assuming it exists",
                       bus->cfg.group, bus->key, bus->err);
            r = RSBUS_OK;
        }
    }
    return r;
}

RSBUS__PUBLIC rsbus *rsbus_open(const rsbus_config *cfg, rsbus_error *err) {
    rsbus_config c, zero_cfg;
    rsbus_error dummy;
    rsbus *bus;
    rsbus_result r;
    if (!err) err = &dummy;
    err->code = RSBUS_OK; err->msg[0] = 0;
    if (!cfg) { memset(&zero_cfg, 0, sizeof zero_cfg); cfg = &zero_cfg; }
    r = rsbus__config_defaults(cfg, &c, err->msg, sizeof err->msg);
    if (r != RSBUS_OK) { err->code = r; return NULL; }
    bus = (rsbus *)rsbus__alloc(&c.allocator, sizeof *bus);
    if (!bus) { err->code = RSBUS_E_NOMEM; snprintf(err->msg, sizeof err->msg, "rsbus_open: out of memory"); return NULL; }
    memset(bus, 0, sizeof *bus);
    bus->spool_fd = -1;
    bus->a = c.allocator;
    rsbus__conn_init(bus, &bus->conn);
    bus->rnd_pos = sizeof bus->rnd;
    bus->next_token = 1;
    bus->group_named = cfg->group != NULL;
    r = rsbus__url_parse(c.url, &bus->url, err->msg, sizeof err->msg);
#ifndef RSBUS_NO_MEM   /* (without it the url parser refuses mem://, naming the switch) */
    if (r == RSBUS_OK && bus->url.kind == RSBUS__URL_MEM) r = rsbus__mem_open(bus, &c, err->msg, sizeof err->msg);
#endif
    if (r == RSBUS_OK && c.require_tls && bus->url.kind != RSBUS__URL_TLS) {
        r = RSBUS_E_TLS;
        snprintf(err->msg, sizeof err->msg, "rsbus_open: require_tls is set but the url is not rediss:// (%.120s)",
                 bus->url.redacted);
    }
#ifdef RSBUS_TLS
    if (r == RSBUS_OK && bus->url.kind == RSBUS__URL_TLS) r = rsbus__tls_setup(bus, err->msg, sizeof err->msg);
#endif
    if (r == RSBUS_OK) r = rsbus__own_config(bus, c, err->msg, sizeof err->msg);
#ifndef RSBUS_NO_CLUSTER
    if (r == RSBUS_OK && bus->url.cluster) r = rsbus__cluster_new(bus, err->msg, sizeof err->msg);
#else
    if (r == RSBUS_OK && (bus->url.cluster || bus->url.sentinel)) {
        r = RSBUS_E_ARG;
        snprintf(err->msg, sizeof err->msg, "rsbus_open: a %s url needs %s support, compiled out by RSBUS_NO_CLUSTER",
                 bus->url.cluster ? "redis+cluster://" : "redis+sentinel://", bus->url.cluster ? "Redis Cluster" : "Sentinel");
    }
#endif
    if (r != RSBUS_OK) goto fail;   /* err->msg is written */
    r = rsbus__alloc_scratch(bus);
    if (r == RSBUS_OK && c.spool_path) r = rsbus__spool_open(bus);
    if (r == RSBUS_OK) r = rsbus__start(bus);
    if (r == RSBUS_OK) return bus;
    snprintf(err->msg, sizeof err->msg, "%s", bus->err);
fail:
    err->code = r;
    rsbus_close(bus);
    return NULL;
}

RSBUS__PUBLIC void rsbus_close(rsbus *bus) {
    rsbus_allocator a;
    if (!bus) return;
    a = bus->a;
    (void)rsbus__settle_all(&bus->conn);
    rsbus__conn_free(&bus->conn);
#ifndef RSBUS_NO_CLUSTER
    if (bus->cl) rsbus__cluster_free(bus);
#endif
#ifndef RSBUS_NO_MEM
    rsbus__mem_close(bus);
#endif
    rsbus__arena_free(bus);
#ifdef RSBUS_TLS
    if (bus->ssl_ctx) SSL_CTX_free((SSL_CTX *)bus->ssl_ctx);
#endif
    rsbus__free(&a, bus->strs, bus->strs_size);
    rsbus__free(&a, bus->handlers, bus->caphandlers * sizeof *bus->handlers);
    if (bus->items) rsbus__free(&a, bus->items, rsbus__batch_max(bus) * sizeof *bus->items);
    if (bus->reasons) rsbus__free(&a, bus->reasons, rsbus__batch_max(bus) * RSBUS_REASON_SIZE);
    if (bus->counts) rsbus__free(&a, bus->counts, rsbus__batch_max(bus) * sizeof *bus->counts);
    if (bus->reps) rsbus__free(&a, (void *)bus->reps, rsbus__batch_max(bus) * sizeof *bus->reps);
    if (bus->got) rsbus__free(&a, (void *)bus->got, rsbus__batch_max(bus) * sizeof *bus->got);
    rsbus__free(&a, bus->cand, bus->capcand * sizeof *bus->cand);
    rsbus__free(&a, bus->fields, bus->cap_fields * sizeof *bus->fields);
    if (bus->spool_fd >= 0) close(bus->spool_fd);   /* and its flock */
    rsbus__free(&a, bus->spool_stage, bus->spool_stage_cap);
    rsbus__free(&a, bus->spool_rd, bus->spool_rd_cap);
    rsbus__schema_free(bus);
    rsbus__parts_free(bus);
    if (bus->batch_parts) rsbus__free(&a, bus->batch_parts, rsbus__batch_max(bus) * sizeof *bus->batch_parts);
    memset(bus, 0, sizeof *bus);
    rsbus__free(&a, bus, sizeof *bus);
}

/* >>public api: publish */

typedef struct rsbus__ev {   /* (struct tag: rsbus__pub points at it before it is defined) */
    const char *data; size_t data_len;
    const char *tenant;
    char id[RSBUS_ID_SIZE];
    int64_t ts; int version;
} rsbus__ev;

RSBUS__PRIVATE int rsbus__opt_ok(const char *s) {
    size_t n;
    if (!s) return 1;
    n = strlen(s);
    return n > 0 && n <= RSBUS__FIELD_MAX;
}

/* A field's name and value with the published defaults applied (name_len/value_len 0: strlen). */
RSBUS__PRIVATE size_t rsbus__fname_len(const rsbus_field *f) { return f->name_len ? f->name_len : strlen(f->name); }
RSBUS__PRIVATE size_t rsbus__fvalue_len(const rsbus_field *f) {
    return f->value_len ? f->value_len : f->value ? strlen(f->value) : 0;
}
/* Checks fields to publish (an event's extra, or rsbus_publish_fields's): NULL when they are good, else
   why not (a fixed text naming the field by its index, never a name or value). extra: names must also
   differ from rsbus's own fields. */
#define RSBUS__WHY_SIZE 96
RSBUS__PRIVATE const char *rsbus__fields_check(rsbus *bus, const rsbus_field *fl, size_t n, size_t max, int extra,
                                               char why[RSBUS__WHY_SIZE]) {
    size_t i, j, total = 0;   /* total <= max_event_bytes throughout */
    const size_t WHY = RSBUS__WHY_SIZE;
    if (n == 0 || n > max) {
        snprintf(why, WHY, "must be 1..%lu fields", (unsigned long)max);
        return why;
    }
    if (!fl) return "fields is NULL";
    for (i = 0; i < n; i++) {
        size_t nl, vl;
        if (!fl[i].name) { snprintf(why, WHY, "field %lu: name is NULL", (unsigned long)i); return why; }
        if (!fl[i].value && fl[i].value_len) { snprintf(why, WHY, "field %lu: value is NULL", (unsigned long)i); return why; }
        nl = rsbus__fname_len(&fl[i]);
        vl = rsbus__fvalue_len(&fl[i]);
        if (nl < 1 || nl > RSBUS__FNAME_MAX) {
            snprintf(why, WHY, "field %lu: name must be 1..%d bytes", (unsigned long)i, RSBUS__FNAME_MAX);
            return why;
        }
        if (extra && (rsbus__reserved_field(fl[i].name, nl, 1) ||
                      (nl == bus->type_field_len && !memcmp(fl[i].name, bus->cfg.type_field, nl)) ||
                      (nl == bus->id_field_len && !memcmp(fl[i].name, bus->cfg.id_field, nl)) ||
                      (nl == bus->data_field_len && !memcmp(fl[i].name, bus->cfg.data_field, nl)))) {
            snprintf(why, WHY, "field %lu: the name is one of rsbus's own fields", (unsigned long)i);
            return why;
        }
        if (vl > bus->cfg.max_event_bytes - total) {
            snprintf(why, WHY, "the values are more than max_event_bytes (%lu) together",
                     (unsigned long)bus->cfg.max_event_bytes);
            return why;
        }
        total += vl;
        for (j = 0; j < i; j++)
            if (rsbus__fname_len(&fl[j]) == nl && !memcmp(fl[j].name, fl[i].name, nl)) {
                snprintf(why, WHY, "fields %lu and %lu have the same name", (unsigned long)j, (unsigned long)i);
                return why;
            }
        if (!extra && bus->cfg.tenant && nl == 6 && !memcmp(fl[i].name, "tenant", 6) &&
            (vl != strlen(bus->cfg.tenant) || (vl && memcmp(fl[i].value, bus->cfg.tenant, vl))))
            return "the tenant field differs from the bus's tenant";
    }
    return NULL;
}

/* " (event N of the batch)", for messages about one event of a batch (index -1: a single publish) */
RSBUS__PRIVATE const char *rsbus__at(size_t index, char at[64]) {
    at[0] = 0;
    if (index != (size_t)-1) snprintf(at, 64, " (event %lu of the batch)", (unsigned long)index);
    return at;
}
/* Checks an event and resolves its defaults; nothing is sent for an event that fails here. */
RSBUS__PRIVATE rsbus_result rsbus__check_event(rsbus *bus, const rsbus_event *ev, size_t index, rsbus__ev *out) {
    size_t off = 0, n;
    char atbuf[64];
#define RSBUS__AT rsbus__at(index, atbuf)   /* formatted only when a message needs it */
    if (!ev) return rsbus__fail(bus, RSBUS_E_ARG, "publish: event is NULL%s", RSBUS__AT);
    if (!ev->type || !rsbus__type_ok(ev->type, strlen(ev->type)))
        return rsbus__fail(bus, RSBUS_E_ARG, "publish: type must be 1..128 bytes of [A-Za-z0-9._:-]%s", RSBUS__AT);
    out->data = ev->data ? ev->data : "{}";
    out->data_len = ev->data ? (ev->data_len ? ev->data_len : strlen(ev->data)) : 2;
    if (out->data_len > bus->cfg.max_event_bytes)
        return rsbus__fail(bus, RSBUS_E_ARG, "publish %s: data is %lu bytes, more than max_event_bytes (%lu)%s",
                           ev->type, (unsigned long)out->data_len, (unsigned long)bus->cfg.max_event_bytes, RSBUS__AT);
    if (rsbus_json_validate(out->data, out->data_len, &off) != RSBUS_OK)
        return rsbus__fail(bus, RSBUS_E_ARG, "publish %s: data is not valid JSON (at byte %lu)%s", ev->type,
                           (unsigned long)off, RSBUS__AT);
    if (ev->id) {
        n = strlen(ev->id);
        if (n >= RSBUS_ID_SIZE || !rsbus__type_ok(ev->id, n))
            return rsbus__fail(bus, RSBUS_E_ARG, "publish %s: id must be 1..47 bytes of [A-Za-z0-9._:-]%s", ev->type, RSBUS__AT);
        memcpy(out->id, ev->id, n + 1);
    } else if (rsbus__event_id(bus, out->id) != 0) {
        return rsbus__fail(bus, RSBUS_E_IO, "publish: no random source for the event id");
    }
    if (!rsbus__opt_ok(ev->key) || !rsbus__opt_ok(ev->source) || !rsbus__opt_ok(ev->correlation_id) ||
        !rsbus__opt_ok(ev->traceparent) || !rsbus__opt_ok(ev->tenant))
        return rsbus__fail(bus, RSBUS_E_ARG, "publish %s: key, source, tenant, correlation_id and traceparent must be "
                           "1..1024 bytes when set%s", ev->type, RSBUS__AT);
    out->tenant = ev->tenant;
    if (bus->cfg.tenant) {
        if (!ev->tenant) out->tenant = bus->cfg.tenant;
        else if (strcmp(ev->tenant, bus->cfg.tenant) != 0)
            return rsbus__fail(bus, RSBUS_E_ARG, "publish %s: event tenant differs from the bus's tenant%s", ev->type, RSBUS__AT);
    }
    if (ev->version < 0) return rsbus__fail(bus, RSBUS_E_ARG, "publish %s: version must be positive%s", ev->type, RSBUS__AT);
    out->version = ev->version ? ev->version : 1;
    if (ev->ts_ms < 0) return rsbus__fail(bus, RSBUS_E_ARG, "publish %s: ts_ms must not be negative%s", ev->type, RSBUS__AT);
    out->ts = ev->ts_ms ? ev->ts_ms : rsbus__now_ms();
    if (ev->extra_count) {
        char whybuf[RSBUS__WHY_SIZE];
        const char *why = rsbus__fields_check(bus, ev->extra, ev->extra_count, RSBUS__EXTRA_MAX, 1, whybuf);
        if (why) return rsbus__fail(bus, RSBUS_E_ARG, "publish %s: extra: %s%s", ev->type, why, RSBUS__AT);
    }
    if (bus->schemas) return rsbus__schema_publish(bus, ev->type, out->version, out->data, out->data_len, index);
    return RSBUS_OK;
#undef RSBUS__AT
}

RSBUS__PRIVATE void rsbus__xadd_head(rsbus__conn *cn, const char *key, size_t key_len, int64_t max_len) {
    rsbus__cmd(cn);
    rsbus__lit(cn, "XADD");
    rsbus__arg(cn, key, key_len);
    if (max_len > 0) {
        rsbus__lit(cn, "MAXLEN");
        rsbus__lit(cn, "~");
        rsbus__argi(cn, max_len);
    }
    rsbus__lit(cn, "*");
}
RSBUS__PRIVATE void rsbus__field(rsbus__conn *cn, const char *name, const char *value) {
    if (!value) return;
    rsbus__argz(cn, name);
    rsbus__argz(cn, value);
}
/* The MAXLEN of the stream's XADDs: none when trimming follows what the groups acknowledged. */
RSBUS__PRIVATE int64_t rsbus__xadd_maxlen(const rsbus *bus) {
    return bus->cfg.trim_policy == RSBUS_TRIM_ACKED ? -1 : bus->cfg.max_len;
}
/* Everything before the event's type (the same for every event of a partition), written once. */
RSBUS__PRIVATE void rsbus__xadd_pre_build(rsbus *bus, rsbus__part *pt) {
    char *o = pt->xadd_pre;
    int64_t max_len = rsbus__xadd_maxlen(bus);
    o = rsbus__bulk(o, "XADD", 4);
    o = rsbus__bulk(o, pt->key, pt->key_len);
    pt->xadd_pre_argc = 4;
    if (max_len > 0) {
        o = rsbus__bulk(o, "MAXLEN", 6);
        o = rsbus__bulk(o, "~", 1);
        o = rsbus__bulk_int(o, max_len);
        pt->xadd_pre_argc += 3;
    }
    o = rsbus__bulk(o, "*", 1);
    o = rsbus__bulk(o, "type", 4);
    pt->xadd_pre_len = (size_t)(o - pt->xadd_pre);
}
/* Queues the XADD of one checked event, in the wire format's field order:
   XADD key [MAXLEN ~ n] * type T id I ts TS v V data D [key K] [src S] [tenant T] [corr C] [trace T],
   the constant start copied, the five fields every event has written in place with one reserve.
   Returns where the fields start in the command buffer (at "type": a spool record), 0 when out of memory. */
RSBUS__PRIVATE size_t rsbus__queue_xadd(rsbus *bus, int pi, const rsbus_event *ev, const rsbus__ev *e) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    rsbus__part *pt = &bus->parts[pi];
    size_t tl = strlen(ev->type), il = strlen(e->id), fields;
    char *o;
    if (!pt->xadd_pre_len) rsbus__xadd_pre_build(bus, pt);
    rsbus__cmd(cn);
    if (rsbus__reserve(cn, pt->xadd_pre_len + tl + il + e->data_len + 160) != 0) return 0;
    o = cn->out + cn->out_len;
    memcpy(o, pt->xadd_pre, pt->xadd_pre_len); o += pt->xadd_pre_len;
    fields = (size_t)(o - cn->out) - 10;   /* "$4\r\ntype\r\n" */
    o = rsbus__bulk(o, ev->type, tl);
    memcpy(o, "$2\r\nid\r\n", 8); o += 8;
    o = rsbus__bulk(o, e->id, il);
    memcpy(o, "$2\r\nts\r\n", 8); o += 8;
    if (!bus->ts_bulk_len || e->ts != bus->ts_last) {
        bus->ts_bulk_len = (size_t)(rsbus__bulk_int(bus->ts_bulk, e->ts) - bus->ts_bulk);
        bus->ts_last = e->ts;
    }
    memcpy(o, bus->ts_bulk, bus->ts_bulk_len); o += bus->ts_bulk_len;
    memcpy(o, "$1\r\nv\r\n", 7); o += 7;
    o = rsbus__bulk_int(o, e->version);
    memcpy(o, "$4\r\ndata\r\n", 10); o += 10;
    o = rsbus__bulk(o, e->data, e->data_len);
    cn->out_len = (size_t)(o - cn->out);
    cn->cmd_argc += pt->xadd_pre_argc + 9;
    rsbus__field(cn, "key", ev->key);
    rsbus__field(cn, "src", ev->source);
    rsbus__field(cn, "tenant", e->tenant);
    rsbus__field(cn, "corr", ev->correlation_id);
    rsbus__field(cn, "trace", ev->traceparent);
    if (ev->extra_count) {
        size_t i;
        for (i = 0; i < ev->extra_count; i++) {
            const rsbus_field *x = &ev->extra[i];
            rsbus__arg(cn, x->name, rsbus__fname_len(x));
            rsbus__arg(cn, x->value ? x->value : "", rsbus__fvalue_len(x));
        }
    }
    rsbus__cmd_end(cn);
    return cn->oom ? 0 : fields;
}
/* Queues XADD key [MAXLEN ~ n] * with exactly these (checked) fields; returns where the fields start in
   the command buffer (a spool record), 0 when out of memory. */
RSBUS__PRIVATE size_t rsbus__queue_xadd_fields(rsbus *bus, int pi, const rsbus_field *fl, size_t n) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    size_t i, fields;
    rsbus__xadd_head(cn, bus->parts[pi].key, bus->parts[pi].key_len, rsbus__xadd_maxlen(bus));
    fields = cn->out_len;
    for (i = 0; i < n; i++) {
        rsbus__arg(cn, fl[i].name, rsbus__fname_len(&fl[i]));
        rsbus__arg(cn, fl[i].value ? fl[i].value : "", rsbus__fvalue_len(&fl[i]));
    }
    rsbus__cmd_end(cn);
    return cn->oom ? 0 : fields;
}

/* >>replicated publishing (publish_wait_replicas > 0)
   WAIT n ms is queued right after the XADD or MULTI/EXEC it confirms, on the same connection, and goes out
   in the same write: its reply is read with theirs, one round trip. WAIT counts the replicas that
   acknowledged the connection's writes so far, so it confirms everything queued before it. Two helpers,
   used by every path that publishes (rsbus__read_xadds: publish, batch, fields, spool sending; rsbus__settle:
   the DLQ move), and by any connection that publishes: rsbus__queue_wait queues it (1 when it did, so one
   more reply is owed to the caller), rsbus__wait_judge judges that reply. */
RSBUS__PRIVATE int rsbus__queue_wait(rsbus__conn *cn) {
    const rsbus_config *c = &cn->bus->cfg;
    if (c->publish_wait_replicas <= 0) return 0;
    rsbus__cmd(cn);
    rsbus__lit(cn, "WAIT");
    rsbus__argi(cn, c->publish_wait_replicas);
    rsbus__argi(cn, c->publish_wait_ms);
    rsbus__cmd_end(cn);
    return 1;
}
/* The reply of that WAIT, for what it followed: RSBUS_OK when enough replicas confirmed; RSBUS_E_REPLICAS
   (counted in stats.replica_shortfalls, the message saying how many did) when fewer did; an error reply's
   result; RSBUS_E_PROTOCOL without a message for a reply of another shape (the caller reads the rest of
   its replies, then drops the connection with rsbus__shape_fail). */
RSBUS__PRIVATE rsbus_result rsbus__wait_judge(rsbus *bus, const redisReply *rep, const char *what) {
    const rsbus_config *c = &bus->cfg;
    if (rep->type == REDIS_REPLY_ERROR) return rsbus__reply_fail(bus, rep, "WAIT");
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 0) return RSBUS_E_PROTOCOL;
    if (rep->integer >= c->publish_wait_replicas) return RSBUS_OK;
    bus->st.replica_shortfalls++;
    return rsbus__fail(bus, RSBUS_E_REPLICAS, "%s: written, but %lld of %d replicas confirmed it within %d ms "
                       "(a failover can lose it)", what, (long long)rep->integer, c->publish_wait_replicas,
                       c->publish_wait_ms);
}

/* Replicated publishing over several partitions (a batch, a batch's dead letters): one WAIT per
   connection, queued after every command of the partitions it serves, read after all their replies. */
typedef struct rsbus__waits { rsbus__conn *cn[RSBUS__MAX_PARTS]; int n; } rsbus__waits;
RSBUS__PRIVATE void rsbus__waits_queue(rsbus *bus, rsbus__waits *w, const int *touched) {
    int pi, k;
    w->n = 0;
    if (bus->cfg.publish_wait_replicas <= 0) return;
    for (pi = 0; pi < bus->nparts; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        if (!touched[pi]) continue;
        for (k = 0; k < w->n && w->cn[k] != cn; k++) {}
        if (k == w->n) { w->cn[w->n++] = cn; (void)rsbus__queue_wait(cn); }
    }
}
/* Reads the WAITs rsbus__waits_queue queued: RSBUS_OK, or the first judgement that is not (RSBUS_E_REPLICAS
   with its message, an error reply's result); a connection lost meanwhile is skipped (its caller saw that). */
RSBUS__PRIVATE rsbus_result rsbus__waits_read(rsbus *bus, rsbus__waits *w, const char *what) {
    rsbus_result first = RSBUS_OK;
    int k;
    for (k = 0; k < w->n; k++) {
        redisReply *rep;
        rsbus_result r, j;
        if (!w->cn[k]->c || !w->cn[k]->owe_len) continue;
        if ((r = rsbus__recv(w->cn[k], &rep, what)) != RSBUS_OK) { if (first == RSBUS_OK) first = r; continue; }
        j = rsbus__wait_judge(bus, rep, what);
        if (j == RSBUS_E_PROTOCOL) j = rsbus__shape_fail(w->cn[k], "WAIT");
        if (j != RSBUS_OK && first == RSBUS_OK) first = j;
    }
    return first;
}

/* Reads the replies of n XADDs on cn, in MULTI/EXEC when atomic; ids (may be NULL) get the stream ids, the
   k-th XADD's at ids[map[k]] (map NULL: at ids[k]). with_wait: with publish_wait_replicas, the WAIT is
   queued after them first and judged last (RSBUS_E_REPLICAS with the ids filled when too few replicas
   confirmed); 0 where the caller queues one WAIT for several partitions on the connection (rsbus__waits). */
RSBUS__PRIVATE rsbus_result rsbus__read_xadds_on(rsbus *bus, rsbus__conn *cn, size_t n, int atomic,
                                                 char (*ids)[RSBUS_ID_SIZE], const size_t *map, int with_wait,
                                                 const char *what) {
    redisReply *rep = NULL;
    rsbus_result r = RSBUS_OK, first = RSBUS_OK;
    int waited = with_wait ? rsbus__queue_wait(cn) : 0;   /* nothing queued went out yet: it joins their write */
    size_t i, total = (atomic ? n + 2 : n) + (size_t)waited;
    /* Read every reply, whatever happens, so the connection stays in step. */
    for (i = 0; r == RSBUS_OK && i < total; i++) {
        r = rsbus__recv(cn, &rep, what);
        if (r != RSBUS_OK) break;
        if (waited && i == total - 1) {   /* the WAIT: judged only when everything before it was written */
            if (first == RSBUS_OK) first = rsbus__wait_judge(bus, rep, what);
        } else if (rep->type == REDIS_REPLY_ERROR) {
            if (first == RSBUS_OK) first = rsbus__reply_fail(bus, rep, what);
        } else if (!atomic) {
            char id[RSBUS_ID_SIZE];
            if (!rsbus__copy_id(rep, id)) { if (first == RSBUS_OK) first = RSBUS_E_PROTOCOL; }
            else if (ids) memcpy(ids[map ? map[i] : i], id, strlen(id) + 1);
        } else if (i == n + 1) {
            size_t k;
            if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
                if (first == RSBUS_OK) first = rsbus__fail(bus, RSBUS_E_REDIS, "EXEC: the batch was not applied");
            } else {
                for (k = 0; k < n; k++) {
                    char id[RSBUS_ID_SIZE];
                    if (rep->element[k]->type == REDIS_REPLY_ERROR) {
                        if (first == RSBUS_OK) first = rsbus__reply_fail(bus, rep->element[k], what);
                    } else if (!rsbus__copy_id(rep->element[k], id)) {
                        if (first == RSBUS_OK) first = RSBUS_E_PROTOCOL;
                    } else if (ids) {
                        memcpy(ids[map ? map[k] : k], id, strlen(id) + 1);
                    }
                }
            }
        }
    }
    if (r != RSBUS_OK) return r;
    return first == RSBUS_E_PROTOCOL ? rsbus__shape_fail(cn, what) : first;   /* all read: then the one rule */
}
/* The same on an unpartitioned bus's one connection. */
RSBUS__PRIVATE rsbus_result rsbus__read_xadds(rsbus *bus, size_t n, int atomic, char (*ids)[RSBUS_ID_SIZE],
                                              const char *what) {
    return rsbus__read_xadds_on(bus, rsbus__part_conn(bus, 0), n, atomic, ids, NULL, 1, what);
}

/* A batch on a partitioned bus: its events' partitions, in MULTI/EXEC per partition, every partition's
   commands queued before any reply is read (one round trip per connection). evs[i]'s partition is
   pp[i]; es[i] is the checked event. Queued partition by partition, each one's events in their order;
   stage: each XADD also becomes a spool record (in that order: per-key order is what a spool keeps). */
RSBUS__PRIVATE int rsbus__spool_stage(rsbus *bus, rsbus__conn *cn, size_t fields_off, int pi);
RSBUS__PRIVATE rsbus_result rsbus__queue_parts(rsbus *bus, const rsbus_event *evs, const rsbus__ev *es,
                                               const int *pp, size_t n, int stage) {
    int pi;
    size_t i;
    for (pi = 0; pi < bus->nparts; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        int any = 0;
        for (i = 0; i < n; i++) {
            size_t off;
            if (pp[i] != pi) continue;
            if (!any) { rsbus__cmd(cn); rsbus__lit(cn, "MULTI"); rsbus__cmd_end(cn); any = 1; }
            off = rsbus__queue_xadd(bus, pi, &evs[i], &es[i]);
            if (stage && rsbus__spool_stage(bus, cn, off, pi) != 0)
                return rsbus__fail(bus, RSBUS_E_NOMEM, "publish: out of memory");
        }
        if (any) { rsbus__cmd(cn); rsbus__lit(cn, "EXEC"); rsbus__cmd_end(cn); }
    }
    return RSBUS_OK;
}
/* Reads what rsbus__queue_parts queued: ids[i] is evs[i]'s stream id, "" for each event not added; the
   result is the first error; *added counts the events added. map: scratch of n. */
RSBUS__PRIVATE rsbus_result rsbus__read_parts(rsbus *bus, const int *pp, size_t n, size_t *map,
                                              char (*ids)[RSBUS_ID_SIZE], size_t *added, const char *what) {
    rsbus_result r = RSBUS_OK, first = RSBUS_OK;
    char err[sizeof bus->err];
    int pi;
    size_t i;
    rsbus__waits waits;
    int touched[RSBUS__MAX_PARTS];
    *added = 0;
    err[0] = 0;
    if (ids) for (i = 0; i < n; i++) ids[i][0] = 0;
    memset(touched, 0, sizeof touched);
    for (i = 0; i < n; i++) touched[pp[i]] = 1;
    rsbus__waits_queue(bus, &waits, touched);   /* after every partition's MULTI/EXEC, on each connection */
    for (pi = 0; pi < bus->nparts; pi++) {
        size_t k = 0;
        for (i = 0; i < n; i++) if (pp[i] == pi) map[k++] = i;
        if (!k) continue;
        r = rsbus__read_xadds_on(bus, rsbus__part_conn(bus, pi), k, 1, ids, map, 0, what);
        if (r == RSBUS_OK) { *added += k; continue; }
        if (first == RSBUS_OK) { first = r; memcpy(err, bus->err, sizeof err); }
        if (ids) for (i = 0; i < k; i++) ids[map[i]][0] = 0;   /* a partition's batch is all or none */
        if (!rsbus__part_conn(bus, pi)->c) break;   /* the connection is gone, and the replies with it */
    }
    if (pi == bus->nparts && waits.n) {   /* every partition read: the WAITs answer after them */
        r = rsbus__waits_read(bus, &waits, what);
        if (r != RSBUS_OK && first == RSBUS_OK) { first = r; memcpy(err, bus->err, sizeof err); }
    }
    if (first != RSBUS_OK) memcpy(bus->err, err, sizeof err);
    return first;
}
/* rsbus_publish_batch on a partitioned bus (spool: through rsbus__stage). */
RSBUS__PRIVATE rsbus_result rsbus__publish_parts(rsbus *bus, const rsbus_event *evs, size_t n,
                                                 char (*ids)[RSBUS_ID_SIZE]) {
    rsbus__ev *es;
    int *pp;
    size_t *map, i, added = 0, bytes = n * (sizeof *es + sizeof *pp + sizeof *map);
    rsbus_result r = RSBUS_OK;
    char *mem;
    if (n > SIZE_MAX / (sizeof *es + sizeof *pp + sizeof *map)) return rsbus__fail(bus, RSBUS_E_ARG, "publish_batch: too many events");
    mem = (char *)rsbus__alloc(&bus->a, bytes);
    if (!mem) { bus->st.publish_errors += n; return rsbus__fail(bus, RSBUS_E_NOMEM, "publish_batch: out of memory"); }
    es = (rsbus__ev *)(void *)mem;
    map = (size_t *)(void *)(mem + n * sizeof *es);
    pp = (int *)(void *)(mem + n * (sizeof *es + sizeof *map));
    for (i = 0; i < n && r == RSBUS_OK; i++) {
        r = rsbus__check_event(bus, &evs[i], i, &es[i]);
        if (r == RSBUS_OK) pp[i] = rsbus__route(bus, evs[i].key, es[i].id);
    }
    if (r == RSBUS_OK) r = rsbus__ensure(bus);
    if (r == RSBUS_OK) {
        rsbus__mark m0 = rsbus__cmd_mark(rsbus__part_conn(bus, 0));
        r = rsbus__queue_parts(bus, evs, es, pp, n, 0);
        if (r != RSBUS_OK) rsbus__cmd_rewind(rsbus__part_conn(bus, 0), m0);
        else r = rsbus__read_parts(bus, pp, n, map, ids, &added, "XADD (batch)");
    } else if (ids) {
        for (i = 0; i < n; i++) ids[i][0] = 0;
    }
    bus->st.published += added;
    bus->st.publish_errors += n - added;
    rsbus__free(&bus->a, mem, bytes);
    return r;
}

RSBUS__PUBLIC rsbus_result rsbus_publish(rsbus *bus, const rsbus_event *ev, char stream_id[RSBUS_ID_SIZE]) {
    rsbus__ev e;
    rsbus_result r;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (bus->spool_fd >= 0) {
        rsbus__pub pub;
        if (!ev) return rsbus__fail(bus, RSBUS_E_ARG, "publish: event is NULL");
        memset(&pub, 0, sizeof pub);
        pub.evs = ev; pub.n = 1; pub.single = 1;
        return rsbus__publish_spooled(bus, &pub, (char (*)[RSBUS_ID_SIZE])stream_id);
    }
    r = rsbus__check_event(bus, ev, (size_t)-1, &e);
    if (r != RSBUS_OK) return r;
    r = rsbus__ensure(bus);
    if (r == RSBUS_OK) {
        int pi = rsbus__route(bus, ev->key, e.id);
        rsbus__queue_xadd(bus, pi, ev, &e);
        r = rsbus__read_xadds_on(bus, rsbus__part_conn(bus, pi), 1, 0, (char (*)[RSBUS_ID_SIZE])stream_id, NULL, 1, "XADD");
    }
    if (r == RSBUS_OK || r == RSBUS_E_REPLICAS) bus->st.published++;   /* in the stream either way */
    else bus->st.publish_errors++;
    return r;
}


RSBUS__PUBLIC rsbus_result rsbus_publish_batch(rsbus *bus, const rsbus_event *evs, size_t n,
                                               char (*stream_ids)[RSBUS_ID_SIZE]) {
    rsbus__ev e;
    rsbus__conn *cn;
    rsbus__mark mark;
    rsbus_result r = RSBUS_OK;
    size_t i;
    if (!bus) return RSBUS_E_ARG;
    cn = &bus->conn;
    bus->err[0] = 0;
    if (n == 0) return RSBUS_OK;
    if (!evs) return rsbus__fail(bus, RSBUS_E_ARG, "publish_batch: events is NULL");
    if (bus->spool_fd >= 0) {
        rsbus__pub pub;
        memset(&pub, 0, sizeof pub);
        pub.evs = evs; pub.n = n;
        return rsbus__publish_spooled(bus, &pub, stream_ids);
    }
    if (bus->nparts > 1) return rsbus__publish_parts(bus, evs, n, stream_ids);
    r = rsbus__ensure(bus);
    if (r != RSBUS_OK) { bus->st.publish_errors += n; return r; }
    mark = rsbus__cmd_mark(cn);
    rsbus__cmd(cn); rsbus__lit(cn, "MULTI"); rsbus__cmd_end(cn);
    for (i = 0; i < n; i++) {
        r = rsbus__check_event(bus, &evs[i], i, &e);
        if (r != RSBUS_OK) { rsbus__cmd_rewind(cn, mark); bus->st.publish_errors += n; return r; }
        rsbus__queue_xadd(bus, 0, &evs[i], &e);
    }
    rsbus__cmd(cn); rsbus__lit(cn, "EXEC"); rsbus__cmd_end(cn);
    r = rsbus__read_xadds(bus, n, 1, stream_ids, "XADD (batch)");
    if (r == RSBUS_OK || r == RSBUS_E_REPLICAS) bus->st.published += n;
    else bus->st.publish_errors += n;
    return r;
}

/* The partition of an entry of exactly these fields: by key when given, else by the value of the bus's id
   field when there is one, else partition 0. */
RSBUS__PRIVATE int rsbus__fields_part(const rsbus *bus, const char *key, const rsbus_field *fl, size_t n) {
    size_t i;
    if (bus->nparts <= 1) return 0;
    if (key) return rsbus__route(bus, key, NULL);
    for (i = 0; i < n; i++) {
        size_t vl = rsbus__fvalue_len(&fl[i]);
        if (rsbus__fname_len(&fl[i]) == bus->id_field_len && !memcmp(fl[i].name, bus->cfg.id_field, bus->id_field_len) &&
            vl > 0)
            return rsbus_key_slot(fl[i].value, vl) % bus->nparts;
    }
    return 0;
}

RSBUS__PUBLIC rsbus_result rsbus_publish_fields(rsbus *bus, const char *key, const rsbus_field *fields, size_t n,
                                                char stream_id[RSBUS_ID_SIZE]) {
    const char *why;
    char whybuf[RSBUS__WHY_SIZE];
    rsbus_result r;
    if (stream_id) stream_id[0] = 0;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (!rsbus__opt_ok(key)) return rsbus__fail(bus, RSBUS_E_ARG, "publish_fields: key must be 1..1024 bytes when set");
    why = rsbus__fields_check(bus, fields, n, RSBUS__MAX_FIELDS, 0, whybuf);
    if (why) return rsbus__fail(bus, RSBUS_E_ARG, "publish_fields: %s", why);
    if (bus->spool_fd >= 0) {
        rsbus__pub pub;
        memset(&pub, 0, sizeof pub);
        pub.fields = fields; pub.nfields = n; pub.n = 1; pub.single = 1; pub.key = key;
        return rsbus__publish_spooled(bus, &pub, (char (*)[RSBUS_ID_SIZE])stream_id);
    }
    r = rsbus__ensure(bus);
    if (r == RSBUS_OK) {
        int pi = rsbus__fields_part(bus, key, fields, n);   /* key, else the id field, picks the partition */
        rsbus__queue_xadd_fields(bus, pi, fields, n);
        r = rsbus__read_xadds_on(bus, rsbus__part_conn(bus, pi), 1, 0, (char (*)[RSBUS_ID_SIZE])stream_id, NULL, 1, "XADD");
    }
    if (r == RSBUS_OK || r == RSBUS_E_REPLICAS) bus->st.published++;
    else bus->st.publish_errors++;
    return r;
}

/* >>public api: subscribe */
RSBUS__PUBLIC int rsbus_subscribe(rsbus *bus, const char *pattern, rsbus_handler_fn fn, void *user) {
    rsbus__handler h;
    size_t n;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (!pattern || !fn) return rsbus__fail(bus, RSBUS_E_ARG, "subscribe: pattern and handler are required");
    n = strlen(pattern);
    memset(&h, 0, sizeof h);
    if (n == 1 && pattern[0] == '*') h.kind = RSBUS__PAT_ALL;
    else if (n >= 3 && pattern[n - 1] == '*' && pattern[n - 2] == '.' && rsbus__type_ok(pattern, n - 1)) {
        h.kind = RSBUS__PAT_PREFIX; h.plen = n - 1;
    } else if (rsbus__type_ok(pattern, n)) h.kind = RSBUS__PAT_EXACT;
    else return rsbus__fail(bus, RSBUS_E_ARG, "subscribe: pattern must be a type, \"*\" or a prefix such as \"order.*\"");
    memcpy(h.pattern, pattern, n + 1);
    if (h.kind == RSBUS__PAT_EXACT) h.plen = n;
    h.fn = fn; h.user = user;
    if (bus->next_token == INT_MAX) return rsbus__fail(bus, RSBUS_E_ARG, "subscribe: out of tokens");
    h.token = bus->next_token;
    if (bus->nhandlers == bus->caphandlers) {
        rsbus__handler *p = (rsbus__handler *)rsbus__grow(&bus->a, bus->handlers, &bus->caphandlers, bus->nhandlers + 1,
                                                          sizeof h, 4);
        if (!p) return rsbus__fail(bus, RSBUS_E_NOMEM, "subscribe: out of memory");
        bus->handlers = p;
    }
    bus->handlers[bus->nhandlers++] = h;
    bus->next_token++;
    return h.token;
}

RSBUS__PUBLIC rsbus_result rsbus_unsubscribe(rsbus *bus, int token) {
    size_t i;
    if (!bus) return RSBUS_E_ARG;
    for (i = 0; i < bus->nhandlers; i++) {
        if (bus->handlers[i].token != token) continue;
        memmove(&bus->handlers[i], &bus->handlers[i + 1], (bus->nhandlers - i - 1) * sizeof *bus->handlers);
        bus->nhandlers--;
        return RSBUS_OK;
    }
    return rsbus__fail(bus, RSBUS_E_NOTFOUND, "unsubscribe: no handler with token %d", token);
}

RSBUS__PRIVATE int rsbus__matches(const rsbus__handler *h, const char *type, size_t n) {
    if (h->kind == RSBUS__PAT_ALL) return 1;
    if (h->kind == RSBUS__PAT_EXACT) return n == h->plen && memcmp(type, h->pattern, n) == 0;
    return n > h->plen && memcmp(type, h->pattern, h->plen) == 0;
}

/* >>consume: decoding entries */
/* Decodes the fields of an entry into msg (pointing into the reply; msg->fields into fl, room for
   max_pairs), reading at most max_pairs field pairs; *id_len (may be NULL) is the event id's length.
   Returns NULL when it is well-formed, else why it is malformed (a fixed text: never field values). The type, id and data are read from the configured field names. With
   accept_foreign every entry is well-formed but one of another tenant: a value rsbus would refuse is left
   out (type "", id/ts/v/key/... NULL or default; the raw value stays in msg->fields) and data is not
   checked. */
RSBUS__PRIVATE const char *rsbus__decode_into(rsbus *bus, const redisReply *entry, rsbus_msg *m, const char **replay_for,
                                              size_t *id_len, rsbus_field *fl, size_t max_pairs) {
    const redisReply *f = entry->element[1];
    size_t i, idl = 0;
    int has_data = 0, too_long = 0, foreign = bus->cfg.accept_foreign;
    memset(m, 0, sizeof *m);
    *replay_for = NULL;
    m->stream = bus->parts[0].key;   /* a batch's entries get their own partition's (rsbus__decode_batch) */
    m->stream_id = entry->element[0]->str;
    m->version = 1;
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2) return "entry fields are not name/value pairs";
    if (f->elements > 2 * max_pairs) return "entry has too many fields (more than 256)";
    m->fields = fl;
    for (i = 0; i < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        const char *name;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) { m->fields = NULL; return "entry field is not a string"; }
        fl->name = name = k->str; fl->name_len = k->len;
        fl->value = v->str; fl->value_len = v->len;
        fl++;
        if (bus->custom_fields) {   /* type_field, id_field or data_field set: compare with all three */
            if (k->len == bus->type_field_len && !memcmp(name, bus->cfg.type_field, k->len)) goto is_type;
            if (k->len == bus->id_field_len && !memcmp(name, bus->cfg.id_field, k->len)) goto is_id;
            if (k->len == bus->data_field_len && !memcmp(name, bus->cfg.data_field, k->len)) goto is_data;
        }
        switch (k->len) {
        case 1:
            if (name[0] == 'v') {
                int64_t ver;
                if (rsbus__parse_i64(v->str, v->len, &ver) && ver >= 1 && ver <= INT_MAX) m->version = (int)ver;
                else if (!foreign) return "v is not a positive integer";
            }
            break;
        case 2:
            if (!memcmp(name, "ts", 2)) {
                if (!rsbus__parse_i64(v->str, v->len, &m->ts_ms) || m->ts_ms < 0) {
                    m->ts_ms = 0;
                    if (!foreign) return "ts is not an integer";
                }
            } else if (!bus->custom_fields && !memcmp(name, "id", 2)) goto is_id;
            break;
        case 3:
            if (!memcmp(name, "key", 3)) { if (v->len <= RSBUS__FIELD_MAX) m->key = v->str; else too_long = 1; }
            else if (!memcmp(name, "src", 3)) { if (v->len <= RSBUS__FIELD_MAX) m->source = v->str; else too_long = 1; }
            break;
        case 4:
            if (!bus->custom_fields && !memcmp(name, "type", 4)) goto is_type;
            if (!bus->custom_fields && !memcmp(name, "data", 4)) goto is_data;
            if (!memcmp(name, "corr", 4)) { if (v->len <= RSBUS__FIELD_MAX) m->correlation_id = v->str; else too_long = 1; }
            break;
        case 5:
            if (!memcmp(name, "trace", 5)) { if (v->len <= RSBUS__FIELD_MAX) m->traceparent = v->str; else too_long = 1; }
            break;
        case 6:
            if (!memcmp(name, "tenant", 6)) { if (v->len <= RSBUS__FIELD_MAX) m->tenant = v->str; else too_long = 1; }
            break;
        case 9:
            if (!memcmp(name, "replay_of", 9)) { if (v->len < RSBUS_ID_SIZE) m->replay_of = v->str; else too_long = 1; }
            break;
        case 10:
            if (!memcmp(name, "replay_for", 10)) *replay_for = v->str;
            break;
        default: break;
        }
        continue;
    is_type:
        if (rsbus__type_ok(v->str, v->len)) m->type = v->str;
        else if (!foreign) return "type is not 1..128 bytes of [A-Za-z0-9._:-]";
        else m->type = "";
        continue;
    is_id:
        if (v->len < RSBUS_ID_SIZE) { m->id = v->str; idl = v->len; }
        else if (!foreign) too_long = 1;
        continue;
    is_data:
        m->data = v->str; m->data_len = v->len; has_data = 1;
    }
    m->field_count = f->elements / 2;
    if (id_len) *id_len = m->id ? idl : 0;
    if (foreign) {
        if (!m->type) m->type = "";
    } else {
        if (!m->type) return "entry has no type";
        if (too_long) return "a field is longer than rsbus allows (id 47 bytes, key/src/tenant/corr/trace 1024)";
        if (!has_data) return "entry has no data";
        if (m->data_len > bus->cfg.max_event_bytes) return "data is larger than max_event_bytes";
        if (rsbus_json_validate(m->data, m->data_len, NULL) != RSBUS_OK) return "data is not valid JSON";
    }
    if (bus->cfg.tenant && (!m->tenant || strcmp(m->tenant, bus->cfg.tenant) != 0))
        return "tenant is missing or not this bus's tenant";
    return NULL;
}
/* One entry at a time (tail, replay_range): its fields go to the start of the bus's field pool. */
RSBUS__PRIVATE const char *rsbus__decode(rsbus *bus, const redisReply *entry, rsbus_msg *m, const char **replay_for) {
    return rsbus__decode_into(bus, entry, m, replay_for, NULL, bus->fields, RSBUS__MAX_FIELDS);
}
RSBUS__PUBLIC const char *rsbus_msg_field(const rsbus_msg *m, const char *name, size_t *len) {
    size_t i, n;
    if (len) *len = 0;
    if (!m || !name || !m->fields) return NULL;
    n = strlen(name);
    for (i = 0; i < m->field_count; i++) {
        const rsbus_field *f = &m->fields[i];
        if (f->name_len == n && memcmp(f->name, name, n) == 0) {
            if (len) *len = f->value_len;
            return f->value;
        }
    }
    return NULL;
}
/* The entry's shape: [id-string, fields-array-or-nil]. */
RSBUS__PRIVATE int rsbus__entry_ok(const redisReply *e) {
    char id[RSBUS_ID_SIZE];
    return e && e->type == REDIS_REPLY_ARRAY && e->elements == 2 && rsbus__copy_id(e->element[0], id) &&
           (e->element[1]->type == REDIS_REPLY_ARRAY || e->element[1]->type == REDIS_REPLY_NIL);
}

/* >>consume: dispatch and settle */
RSBUS__PRIVATE int64_t rsbus__backoff_ms(const rsbus *bus, int64_t deliveries) {
    int64_t b = bus->cfg.retry_backoff_ms;
    int64_t k;
    for (k = 1; k < deliveries && b < bus->cfg.retry_backoff_max_ms; k++) b *= 2;
    return RSBUS__MIN(b, (int64_t)bus->cfg.retry_backoff_max_ms);
}

#ifndef RSBUS_NO_DEDUPE
/* >>consume: dedupe (dedupe_ttl_ms > 0)
   A group remembers the event ids it handled as keys "<stream key>:dedupe:<group>:<event id>" that expire
   after dedupe_ttl_ms. A batch's ids are checked with one MGET before any handler runs. An id is marked
   (SET ... PX) the moment every handler acked its entry, written at once but with its reply read with
   the batch's XACK: no round trip per event, and a consumer killed later in the batch does not leave
   an event it already handled unmarked. The mark goes out before the XACK on the same connection, so
   Redis applies it first. */
RSBUS__PRIVATE void rsbus__arg_dedupe_key(rsbus *bus, rsbus__conn *cn, int pi, const char *id, size_t n) {
    char k[RSBUS__NAME_MAX + 16 + 8 + 128 + 1 + RSBUS_ID_SIZE];   /* {key}, ":dedupe:", group, ':', id */
    size_t off = rsbus__tagged_key(k, bus->parts[pi].key, bus->parts[pi].key_len, ":dedupe:");
    memcpy(k + off, bus->cfg.group, bus->group_len); off += bus->group_len;
    k[off++] = ':';
    memcpy(k + off, id, n); off += n;
    rsbus__arg(cn, k, off);
}
/* One MGET per partition that has ids in the batch (a partition's marks share its slot), all sent before
   any reply is read. */
RSBUS__PRIVATE rsbus_result rsbus__dedupe_check(rsbus *bus, rsbus__item *items, size_t n) {
    size_t i, k, nk;
    rsbus_result r = RSBUS_OK;
    int pi;
    for (pi = 0; pi < bus->nparts; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        for (i = 0, nk = 0; i < n; i++) nk += items[i].eid && items[i].part == pi;
        if (!nk) continue;
        rsbus__cmd(cn);
        rsbus__lit(cn, "MGET");
        for (i = 0; i < n; i++)
            if (items[i].eid && items[i].part == pi) rsbus__arg_dedupe_key(bus, cn, pi, items[i].eid, items[i].eid_len);
        rsbus__cmd_end(cn);
    }
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        redisReply *rep = NULL;
        for (i = 0, nk = 0; i < n; i++) nk += items[i].eid && items[i].part == pi;
        if (!nk) continue;
        r = rsbus__call(cn, &rep, "MGET (dedupe)");
        if (r != RSBUS_OK) break;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != nk) return rsbus__shape_fail(cn, "MGET (dedupe)");
        for (i = 0, k = 0; i < n; i++)
            if (items[i].eid && items[i].part == pi) items[i].seen = rep->element[k++]->type != REDIS_REPLY_NIL;
    }
    return r;
}
/* Marks a handled entry's event id now (see above); a mark that cannot be sent is lost with the
   connection, and so is the batch's XACK, so the entry comes back and is handled again (at-least-once). */
RSBUS__PRIVATE void rsbus__dedupe_mark(rsbus *bus, rsbus__item *it) {
    rsbus__conn *cn = rsbus__part_conn(bus, it->part);
    rsbus__cmd(cn);
    rsbus__lit(cn, "SET");
    rsbus__arg_dedupe_key(bus, cn, it->part, it->eid, it->eid_len);
    rsbus__lit(cn, "1");
    rsbus__lit(cn, "PX");
    rsbus__argi(cn, bus->cfg.dedupe_ttl_ms);
    rsbus__cmd_end_owing(cn, RSBUS__OWE_MARK, 0, 0);
    if (rsbus__flush(cn, "SET (dedupe mark)") != RSBUS_OK) return;
    it->marked = 1;
}
#else /* RSBUS_NO_DEDUPE: rsbus_open refuses dedupe_ttl_ms, so these are never called */
RSBUS__PRIVATE rsbus_result rsbus__dedupe_check(rsbus *bus, rsbus__item *items, size_t n) {
    (void)bus; (void)items; (void)n;
    return RSBUS_OK;
}
RSBUS__PRIVATE void rsbus__dedupe_mark(rsbus *bus, rsbus__item *it) { (void)bus; (void)it; }
#endif /* RSBUS_NO_DEDUPE */

/* Runs the handlers of one entry and decides what becomes of it. undispatched: dead-letter without
   calling handlers (delivered too often already). */
RSBUS__PRIVATE void rsbus__dispatch(rsbus *bus, rsbus__item *it, char *reason, int undispatched) {
    rsbus_msg m = it->msg;
    size_t i, tlen;
    int matched = 0, verdict = RSBUS_ACK;
    bus->st.delivered++;
    if (it->bad) {   /* its reason is written already */
        it->outcome = RSBUS__OUT_DEAD; it->malformed = 1;
        return;
    }
    reason[0] = 0;
    if (it->entry->element[1]->type != REDIS_REPLY_ARRAY) {   /* deleted or trimmed while pending */
        it->outcome = RSBUS__OUT_DELETED;
        return;
    }
    if (it->replay_for && !it->replay_mine) {
        it->outcome = RSBUS__OUT_SKIP;   /* a replay addressed to another group */
        return;
    }
    if (undispatched) {
        it->outcome = RSBUS__OUT_DEAD;
        snprintf(reason, RSBUS_REASON_SIZE, "delivered %lld times without an acknowledgement (max_retries %d): "
                 "its consumers crashed or timed out on it", (long long)(it->deliveries - 1), bus->cfg.max_retries);
        return;
    }
    if (it->seen && !it->replay_mine) {   /* handled by this group before (dedupe) */
        it->outcome = RSBUS__OUT_SKIP;
        bus->st.deduped++;
        return;
    }
    m.deliveries = it->deliveries;
    m.reason = bus->reason;
    bus->reason[0] = 0;
    tlen = strlen(m.type);
    bus->dispatching = 1;
    for (i = 0; i < bus->nhandlers; i++) {
        rsbus__handler *h = &bus->handlers[i];
        rsbus_verdict v;
        if (!rsbus__matches(h, m.type, tlen)) continue;
        matched = 1;
        v = h->fn(&m, h->user);
        if (v == RSBUS_DEAD) verdict = RSBUS_DEAD;
        else if (v != RSBUS_ACK && verdict == RSBUS_ACK) verdict = RSBUS_RETRY;
    }
    bus->dispatching = 0;
    bus->reason[RSBUS_REASON_SIZE - 1] = 0;
    if (!matched) { it->outcome = RSBUS__OUT_SKIP; bus->st.unhandled++; return; }
    if (verdict == RSBUS_ACK) { it->outcome = RSBUS__OUT_ACK; return; }
    if (verdict == RSBUS_RETRY && it->deliveries <= bus->cfg.max_retries) {
        it->outcome = RSBUS__OUT_RETRY;
        bus->st.retried++;
        return;
    }
    it->outcome = RSBUS__OUT_DEAD;
    if (bus->reason[0]) memcpy(reason, bus->reason, RSBUS_REASON_SIZE);
    else if (verdict == RSBUS_DEAD) snprintf(reason, RSBUS_REASON_SIZE, "handler returned RSBUS_DEAD");
    else snprintf(reason, RSBUS_REASON_SIZE, "handler failed %lld times (max_retries %d)",
                  (long long)it->deliveries, bus->cfg.max_retries);
}

/* Queues MULTI, XADD of the DLQ (every field of the entry verbatim and in order, but a dlq_* field of
   rsbus's own, then the dlq_* fields), XACK, EXEC. */
/* Writes an entry's fields (f: [name, value, ...]) into the command being written, verbatim and in order,
   but rsbus's own dlq_* fields and, for a replay, replay_of and replay_for (they are written anew); a pair
   that is not two strings is left out. Returns the value of dlq_group (NULL when absent). */
RSBUS__PRIVATE const char *rsbus__arg_fields(rsbus__conn *cn, const redisReply *f, int replay) {
    const char *group = NULL;
    size_t i;
    for (i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (rsbus__dlq_field(k->str, k->len)) {
            if (rsbus__str_eq(k, "dlq_group")) group = v->str;
            continue;
        }
        if (replay && (rsbus__str_eq(k, "replay_of") || rsbus__str_eq(k, "replay_for"))) continue;
        rsbus__arg(cn, k->str, k->len);
        rsbus__arg(cn, v->str, v->len);
    }
    return group;
}
RSBUS__PRIVATE void rsbus__queue_dead(rsbus *bus, const rsbus__item *it, const char *reason) {
    rsbus__conn *cn = rsbus__part_conn(bus, it->part);
    const rsbus__part *pt = &bus->parts[it->part];
    const redisReply *id = it->entry->element[0];
    rsbus__cmd(cn); rsbus__lit(cn, "MULTI"); rsbus__cmd_end(cn);
    rsbus__xadd_head(cn, pt->dlq_key, pt->dlq_key_len, bus->cfg.dlq_max_len);
    (void)rsbus__arg_fields(cn, it->entry->element[1], 0);   /* the dlq_* fields follow */
    rsbus__lit(cn, "dlq_error"); rsbus__argz(cn, reason);
    rsbus__lit(cn, "dlq_stream_id"); rsbus__arg(cn, id->str, id->len);
    rsbus__lit(cn, "dlq_stream"); rsbus__arg(cn, pt->key, pt->key_len);
    rsbus__lit(cn, "dlq_group"); rsbus__arg(cn, bus->cfg.group, bus->group_len);
    rsbus__lit(cn, "dlq_consumer"); rsbus__arg(cn, bus->cfg.consumer, bus->consumer_len);
    rsbus__lit(cn, "dlq_deliveries"); rsbus__argi(cn, it->deliveries);
    rsbus__lit(cn, "dlq_failed_at"); rsbus__argi(cn, rsbus__now_ms());
    rsbus__cmd_end(cn);
    rsbus__cmd(cn);
    rsbus__lit(cn, "XACK"); rsbus__arg(cn, pt->key, pt->key_len);
    rsbus__arg(cn, bus->cfg.group, bus->group_len); rsbus__arg(cn, id->str, id->len);
    rsbus__cmd_end(cn);
    rsbus__cmd(cn); rsbus__lit(cn, "EXEC"); rsbus__cmd_end(cn);
}

/* Acknowledges and dead-letters the settled items of a batch in one round trip: per partition (on its
   connection) the dead letters' moves and one XACK, every partition's queued before any reply is read. */
RSBUS__PRIVATE rsbus_result rsbus__settle(rsbus *bus, rsbus__item *items, size_t n, const char *what) {
    size_t i, nack, ndead, any_dead = 0;
    rsbus_result r = RSBUS_OK, first = RSBUS_OK;
    rsbus__waits waits;
    int defer, pi;
    waits.n = 0;
    for (i = 0; i < n; i++) any_dead += items[i].outcome == RSBUS__OUT_DEAD;
    /* in rsbus_run a batch's XACK goes out with the next command, so a batch costs one round trip */
    defer = bus->in_run && any_dead == 0;
    for (pi = 0; pi < bus->nparts; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        size_t acked = 0, deleted = 0;
        nack = 0;
        for (i = 0; i < n; i++) {
            if (items[i].part != pi) continue;
            if (items[i].outcome == RSBUS__OUT_DEAD) {
                rsbus__queue_dead(bus, &items[i], bus->reasons + i * RSBUS_REASON_SIZE);
            } else if (items[i].outcome != RSBUS__OUT_RETRY) {
                nack++;
                acked += items[i].outcome == RSBUS__OUT_ACK;
                deleted += items[i].outcome == RSBUS__OUT_DELETED;
            }
        }
        if (!nack) continue;
        rsbus__cmd(cn);
        rsbus__lit(cn, "XACK"); rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len);
        rsbus__arg(cn, bus->cfg.group, bus->group_len);
        for (i = 0; i < n; i++) {
            const redisReply *id = items[i].entry->element[0];
            if (items[i].part == pi && items[i].outcome != RSBUS__OUT_DEAD && items[i].outcome != RSBUS__OUT_RETRY)
                rsbus__arg(cn, id->str, id->len);
        }
        if (defer) rsbus__cmd_end_owing(cn, RSBUS__OWE_ACK, acked, deleted);
        else rsbus__cmd_end(cn);
    }
    if (defer) return RSBUS_OK;   /* counted when the XACKs answer */
    if (any_dead) {   /* a DLQ move is a publish too: WAIT after it (>>replicated publishing) */
        int touched[RSBUS__MAX_PARTS];
        memset(touched, 0, sizeof touched);
        for (i = 0; i < n; i++) if (items[i].outcome == RSBUS__OUT_DEAD) touched[items[i].part] = 1;
        rsbus__waits_queue(bus, &waits, touched);
    }
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) {   /* the replies, in the order queued */
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        size_t nrep;
        nack = ndead = 0;
        for (i = 0; i < n; i++) {
            if (items[i].part != pi) continue;
            if (items[i].outcome == RSBUS__OUT_DEAD) ndead++;
            else if (items[i].outcome != RSBUS__OUT_RETRY) nack++;
        }
        nrep = ndead * 4 + (nack && !defer ? 1 : 0);
        for (i = 0; r == RSBUS_OK && i < nrep; i++) {
            redisReply *rep;
            r = rsbus__recv(cn, &rep, what);
            if (r != RSBUS_OK) break;
            if (rep->type == REDIS_REPLY_ERROR && first == RSBUS_OK) first = rsbus__reply_fail(bus, rep, what);
            if (i % 4 == 3 && i < ndead * 4 && rep->type != REDIS_REPLY_ARRAY && first == RSBUS_OK)
                first = rsbus__fail(bus, RSBUS_E_REDIS, "%s: the move to the dead-letter stream was not applied", what);
        }
    }
    if (r == RSBUS_OK && waits.n) {
        char keep[sizeof bus->err];
        rsbus_result w;
        memcpy(keep, bus->err, sizeof keep);
        w = rsbus__waits_read(bus, &waits, "dead-letter move");
        if (w == RSBUS_E_REPLICAS) {   /* moved; a failover could undo the move, and the entry is pending again */
            rsbus__log(bus, RSBUS_LOG_WARN, "%s", bus->err);
            memcpy(bus->err, keep, sizeof keep);
        } else if (w != RSBUS_OK && first == RSBUS_OK) {
            first = w;
        }
    }
    if (r == RSBUS_OK) r = first;
    if (r != RSBUS_OK) return r;
    for (i = 0; i < n; i++) {
        const rsbus__item *it = &items[i];
        switch (it->outcome) {
        case RSBUS__OUT_ACK: bus->st.acked++; break;
        case RSBUS__OUT_DELETED: bus->st.deleted_while_pending++; break;
        case RSBUS__OUT_DEAD:
            bus->st.dead_lettered++;
            if (it->malformed) bus->st.malformed++;
            rsbus__log(bus, RSBUS_LOG_WARN, "dead-lettered entry %s of %s/%s after %lld deliveries%s",
                       it->entry->element[0]->str, bus->parts[it->part].key, bus->cfg.group, (long long)it->deliveries,
                       it->malformed ? " (malformed)" : "");
            break;
        default: break;
        }
    }
    return RSBUS_OK;
}

/* Decodes the entries of a batch into bus->items, each once: its message (fields in the bus's field
   pool after the part for one entry, grown first to the batch's need so that no pointer moves), why it is malformed (the schema of its
   type and version included), its event id for dedupe, and whether it is a replay for this group. */
RSBUS__PRIVATE rsbus_result rsbus__decode_batch(rsbus *bus, const redisReply *const *entries, const int *parts,
                                                size_t n, const int64_t *deliveries) {
    size_t i, need = RSBUS__MAX_FIELDS + RSBUS__DLQ_FIELDS, pos = need;   /* after one entry's worth */
    for (i = 0; i < n; i++) {
        const redisReply *f = entries[i]->element[1];
        if (f->type == REDIS_REPLY_ARRAY) need += RSBUS__MIN(f->elements / 2, (size_t)RSBUS__MAX_FIELDS);
    }
    if (need > bus->cap_fields) {
        rsbus_field *p = (rsbus_field *)rsbus__grow(&bus->a, bus->fields, &bus->cap_fields, need, sizeof *p, 1);
        if (!p) return rsbus__fail(bus, RSBUS_E_NOMEM, "decoding a batch: out of memory");
        bus->fields = p;
    }
    for (i = 0; i < n; i++) {
        rsbus__item *it = &bus->items[i];
        const redisReply *f = entries[i]->element[1];
        memset(it, 0, sizeof *it);
        it->entry = entries[i];
        it->deliveries = deliveries ? deliveries[i] : 1;
        it->outcome = RSBUS__OUT_ACK;
        it->part = parts ? parts[i] : 0;
        if (f->type != REDIS_REPLY_ARRAY) continue;   /* deleted or trimmed while pending */
        it->bad = rsbus__decode_into(bus, it->entry, &it->msg, &it->replay_for, &it->eid_len, bus->fields + pos,
                                     RSBUS__MAX_FIELDS);
        it->msg.stream = bus->parts[it->part].key;
        it->msg.partition = it->part;
        pos += RSBUS__MIN(f->elements / 2, (size_t)RSBUS__MAX_FIELDS);
        if (!it->bad && bus->schemas) {   /* "schema: ..." when it does not match */
            rsbus_msg sm = it->msg;
            if (!sm.data) sm.data = "";   /* a foreign entry without data: checked as an empty payload */
            it->bad = rsbus__schema_decode(bus, &sm);
        }
        if (it->bad) {   /* the reason now: a schema's text lives in the bus until the next check */
            char *reason = bus->reasons + i * RSBUS_REASON_SIZE;
            snprintf(reason, RSBUS_REASON_SIZE, "malformed: %.*s", RSBUS_REASON_SIZE - 12, it->bad);   /* fits: 11 + 244 + NUL */
            it->bad = reason;
        }
        if (!it->bad && it->eid_len) it->eid = it->msg.id;
        it->replay_mine = it->replay_for && strlen(it->replay_for) == bus->group_len &&
                          !memcmp(it->replay_for, bus->cfg.group, bus->group_len);
    }
    return RSBUS_OK;
}
/* Dispatches up to batch_size entries of a reply and settles them. deliveries: per-entry counts
   (NULL: 1 each); an entry delivered more than max_retries + 1 times is dead-lettered undispatched. */
RSBUS__PRIVATE rsbus_result rsbus__handle(rsbus *bus, const redisReply *const *entries, const int *parts, size_t n,
                                          const int64_t *deliveries, const char *what) {
    size_t i, j;
    int dedupe = bus->cfg.dedupe_ttl_ms > 0 && bus->nhandlers > 0;
    rsbus_result r = rsbus__decode_batch(bus, entries, parts, n, deliveries);
    if (r == RSBUS_OK && dedupe) r = rsbus__dedupe_check(bus, bus->items, n);
    if (r != RSBUS_OK) return r;   /* nothing was handled: the entries stay pending and come back */
    for (i = 0; i < n; i++) {
        rsbus__item *it = &bus->items[i];
        if (dedupe && it->eid && !it->seen) {   /* the same event twice in one batch */
            for (j = 0; j < i && !it->seen; j++)
                it->seen = bus->items[j].marked && bus->items[j].eid_len == it->eid_len &&
                           !memcmp(bus->items[j].eid, it->eid, it->eid_len);
        }
        rsbus__dispatch(bus, it, bus->reasons + i * RSBUS_REASON_SIZE,
                        deliveries && deliveries[i] - 1 > bus->cfg.max_retries);
        if (dedupe && it->eid && it->outcome == RSBUS__OUT_ACK) rsbus__dedupe_mark(bus, it);
    }
    return rsbus__settle(bus, bus->items, n, what);
}

/* Checks the shape of a one-stream XREAD(GROUP) reply and returns its entries array (NULL: no entries). */
RSBUS__PRIVATE rsbus_result rsbus__read_entries(rsbus *bus, const redisReply *rep, const redisReply **entries,
                                                const char *what) {
    rsbus__conn *cn = rsbus__part_conn(bus, 0);
    const redisReply *s;
    size_t i;
    *entries = NULL;
    if (rep->type == REDIS_REPLY_NIL) return RSBUS_OK;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1) return rsbus__shape_fail(cn, what);
    s = rep->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[1]->type != REDIS_REPLY_ARRAY)
        return rsbus__shape_fail(cn, what);
    if (s->element[1]->elements > (size_t)bus->cfg.batch_size) return rsbus__shape_fail(cn, what);
    for (i = 0; i < s->element[1]->elements; i++)
        if (!rsbus__entry_ok(s->element[1]->element[i])) return rsbus__shape_fail(cn, what);
    *entries = s->element[1];
    return RSBUS_OK;
}

/* Reading partitions. rsbus__queue_read_parts queues one XREADGROUP of this consumer naming the partitions
   idx[0..n) that one connection serves (STREAMS k1 k2 ... from from ...: on one server every partition in
   one command, so a poll is one round trip however many there are), COUNT batch_size for each; and
   rsbus__collect_read decodes its reply (nil, or one [key, entries] per partition that had entries) into
   the batch being gathered in bus->got / bus->batch_parts, each entry tagged with its partition. The
   cluster transport calls the pair once per connection, with the partitions that connection serves. */
RSBUS__PRIVATE void rsbus__queue_read_parts(rsbus *bus, rsbus__conn *cn, const int *idx, size_t n, int block_ms,
                                            const char *from, int kind) {
    size_t i;
    rsbus__cmd(cn);
    rsbus__lit(cn, "XREADGROUP");
    rsbus__lit(cn, "GROUP");
    rsbus__arg(cn, bus->cfg.group, bus->group_len);
    rsbus__arg(cn, bus->cfg.consumer, bus->consumer_len);
    rsbus__lit(cn, "COUNT");
    if (bus->small_reads > 0) { bus->small_reads--; rsbus__argi(cn, 1); }
    else rsbus__argi(cn, bus->cfg.batch_size);
    if (block_ms >= 0) { rsbus__lit(cn, "BLOCK"); rsbus__argi(cn, block_ms); }
    rsbus__lit(cn, "STREAMS");
    for (i = 0; i < n; i++) rsbus__arg(cn, bus->parts[idx[i]].key, bus->parts[idx[i]].key_len);
    for (i = 0; i < n; i++) rsbus__argz(cn, from ? from : bus->parts[idx[i]].reread_from);
    rsbus__cmd_end_owing(cn, kind, 0, 0);
}
RSBUS__PRIVATE rsbus_result rsbus__collect_read(rsbus *bus, rsbus__conn *cn, const redisReply *rep, const int *idx,
                                                size_t n, size_t *count, const char *what) {
    size_t i, j, k;
    if (rep->type == REDIS_REPLY_NIL) return RSBUS_OK;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements > n) return rsbus__shape_fail(cn, what);
    for (i = 0; i < rep->elements; i++) {
        const redisReply *s = rep->element[i], *es;
        int pi = -1;
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || !rsbus__is_str(s->element[0]) ||
            s->element[1]->type != REDIS_REPLY_ARRAY)
            return rsbus__shape_fail(cn, what);
        for (k = 0; k < n && pi < 0; k++) {
            const rsbus__part *pt = &bus->parts[idx[k]];
            if (pt->key_len == s->element[0]->len && !memcmp(pt->key, s->element[0]->str, pt->key_len)) pi = idx[k];
        }
        es = s->element[1];
        if (pi < 0 || es->elements > (size_t)bus->cfg.batch_size || es->elements > rsbus__batch_max(bus) - *count)
            return rsbus__shape_fail(cn, what);
        for (j = 0; j < es->elements; j++) {
            if (!rsbus__entry_ok(es->element[j])) return rsbus__shape_fail(cn, what);
            bus->got[*count] = es->element[j];
            bus->batch_parts[*count] = pi;
            (*count)++;
        }
    }
    return RSBUS_OK;
}
/* The partitions that connection cn serves, in order, into idx (room for nparts): every one of them when
   rsbus__one_conn says so. One read may name them all (they share a server; on a cluster, only where
   they share a slot, which the cluster transport decides). */
RSBUS__PRIVATE size_t rsbus__parts_of_conn(rsbus *bus, const rsbus__conn *cn, int *idx) {
    int i;
    size_t n = 0;
    for (i = 0; i < bus->nparts; i++)
        if (rsbus__one_conn(bus) || rsbus__part_conn(bus, i) == cn) idx[n++] = i;
    return n;
}

/* Reading ahead (rsbus_run): after a batch, its XACK goes out with reads of the next batches, so that
   RSBUS__AHEAD reads are in flight: Redis answers the next one while this consumer reads and handles
   the one before, and a batch costs no waiting. While a batch is handled, at most the next one has been
   delivered ahead of it. The reads do not BLOCK: a read waiting in Redis would hold up every command
   behind it on the connection (a dead letter's move, a dedupe mark). A send that fails drops the
   connection; the next call reconnects. */
RSBUS__PRIVATE int rsbus__reads_ahead(rsbus *bus) {
    const rsbus__conn *cn = rsbus__part_conn(bus, 0);
    size_t i;
    int n = bus->nheld;
    for (i = 0; i < cn->owe_len; i++) n += rsbus__owe_at(cn, i)->kind == RSBUS__OWE_READ;
    return n;
}
RSBUS__PRIVATE void rsbus__read_ahead(rsbus *bus) {
    int idx[RSBUS__MAX_PARTS];
    size_t np;
    int n;
    if (!rsbus__one_conn(bus)) return;   /* partitions on a cluster: rsbus__poll_nodes reads them all each time */
    np = rsbus__parts_of_conn(bus, rsbus__part_conn(bus, 0), idx);
    n = rsbus__reads_ahead(bus);
    if (n >= RSBUS__AHEAD) return;
    for (; n < RSBUS__AHEAD; n++)
        rsbus__queue_read_parts(bus, rsbus__part_conn(bus, 0), idx, np, -1, ">", RSBUS__OWE_READ);
    (void)rsbus__flush(rsbus__part_conn(bus, 0), "XREADGROUP (ahead)");
}
/* The batches read ahead will not be handled here (rsbus_run returned): their entries stay pending to
   this consumer, whose next read re-reads them first. */
RSBUS__PRIVATE void rsbus__forget_ahead(rsbus *bus) {
    int i, had = 0;
    for (i = 0; i < bus->nheld; i++) had |= bus->held[i]->type != REDIS_REPLY_NIL;
    bus->nheld = 0;
    if (had) rsbus__reread_all(bus);
}

/* Re-reads this consumer's own pending entries (after open and after a reconnect), a partition at a time
   and a page at a time. Their delivery counts come from XPENDING. Returns entries disposed of, 0 when
   none are left in any partition. */
RSBUS__PRIVATE int rsbus__reread_pending(rsbus *bus) {
    int pi;
    for (pi = 0; pi < bus->nparts; pi++) {
        rsbus__part *pt = &bus->parts[pi];
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        redisReply *rep = NULL, *pend = NULL;
        const redisReply *const *entries = bus->got;
        int64_t *counts = bus->counts;
        size_t i, j, n = 0;
        rsbus_result r;
        const char *what = "XREADGROUP (own pending)";
        if (!pt->reread) continue;
        rsbus__queue_read_parts(bus, cn, &pi, 1, -1, NULL, RSBUS__OWE_CALLER);
        r = rsbus__call(cn, &rep, what);
        if (r != RSBUS_OK) return r;
        r = rsbus__collect_read(bus, cn, rep, &pi, 1, &n, what);
        if (r != RSBUS_OK) return r;
        if (n == 0) { pt->reread = 0; continue; }
        rsbus__cmd(cn);
        rsbus__lit(cn, "XPENDING"); rsbus__arg(cn, pt->key, pt->key_len);
        rsbus__arg(cn, bus->cfg.group, bus->group_len);
        rsbus__arg(cn, entries[0]->element[0]->str, entries[0]->element[0]->len);
        rsbus__arg(cn, entries[n - 1]->element[0]->str, entries[n - 1]->element[0]->len);
        rsbus__argi(cn, (int64_t)n);
        rsbus__arg(cn, bus->cfg.consumer, bus->consumer_len);
        rsbus__cmd_end(cn);
        r = rsbus__call(cn, &pend, "XPENDING");
        if (r != RSBUS_OK) return r;
        for (i = 0, j = 0; i < n; i++) {
            const redisReply *id = entries[i]->element[0];
            counts[i] = 1;
            for (; pend->type == REDIS_REPLY_ARRAY && j < pend->elements; j++) {
                const redisReply *p = pend->element[j];
                if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 || !rsbus__is_str(p->element[0])) continue;
                if (p->element[0]->len == id->len && !memcmp(p->element[0]->str, id->str, id->len)) {
                    if (!rsbus__reply_i64(p->element[3], &counts[i]) || counts[i] < 1) counts[i] = 1;
                    j++;
                    break;
                }
            }
        }
        memcpy(pt->reread_from, entries[n - 1]->element[0]->str, entries[n - 1]->element[0]->len + 1);
        r = rsbus__handle(bus, entries, bus->batch_parts, n, counts, what);
        return r != RSBUS_OK ? (int)r : (int)n;
    }
    bus->reread = 0;
    return 0;
}

RSBUS__PRIVATE rsbus_result rsbus__consumer_ok(rsbus *bus, const char *what) {
    if (bus->cfg.publish_only) return rsbus__fail(bus, RSBUS_E_ARG, "%s: the bus is publish_only", what);
    if (bus->dispatching) return rsbus__fail(bus, RSBUS_E_ARG, "%s: not allowed from a handler", what);
    return RSBUS_OK;
}

/* One read of new entries and their dispatch: rsbus_poll, and rsbus_run's rounds (which take a batch read
   ahead when there is one, and read ahead after it). On a partitioned stream the read names every
   partition and returns as soon as any has entries (BLOCK covers them all), up to batch_size from each. */
#ifndef RSBUS_NO_CLUSTER
/* rsbus__poll for partitions on a cluster, where their keys are in different slots and a read names one:
   every partition gets a read without BLOCK, all sent at once, one round trip per master and all masters
   together; the first answers with entries are handled. When none has any and time is left, one
   partition (each in turn) waits with BLOCK for at most RSBUS__SLICE_MS, then all are read again. A
   master that fails leaves the others read; its error is returned only when no entries came. */
#define RSBUS__SLICE_MS 100
RSBUS__PRIVATE int rsbus__poll_nodes(rsbus *bus, int timeout_ms) {
    int64_t deadline = rsbus__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    const char *what = "XREADGROUP";
    for (;;) {
        rsbus_result r, first = RSBUS_OK;
        size_t n = 0;
        int pi, stopped;
        int64_t left;
        redisReply *rep = NULL;
        rsbus__conn *cn;
        for (pi = 0; pi < bus->nparts; pi++)
            rsbus__queue_read_parts(bus, rsbus__part_conn(bus, pi), &pi, 1, -1, ">", RSBUS__OWE_CALLER);
        for (pi = 0; pi < bus->nparts; pi++) {   /* every connection's reads go out before any is read */
            cn = rsbus__part_conn(bus, pi);
            if (cn->nsegs && (r = rsbus__flush(cn, what)) != RSBUS_OK && first == RSBUS_OK) first = r;
        }
        for (pi = 0; pi < bus->nparts; pi++) {
            cn = rsbus__part_conn(bus, pi);
            if (!cn->owe_sent) continue;   /* its send failed: the error is in first */
            r = rsbus__recv(cn, &rep, what);
            if (r == RSBUS_OK && rep->type == REDIS_REPLY_ERROR) r = rsbus__reply_fail(bus, rep, what);
            if (r == RSBUS_OK) r = rsbus__collect_read(bus, cn, rep, &pi, 1, &n, what);
            if (r != RSBUS_OK && first == RSBUS_OK) first = r;
        }
        if (n) {
            if (first != RSBUS_OK) rsbus__log(bus, RSBUS_LOG_WARN, "poll: %s (the other partitions were read)", bus->err);
            r = rsbus__handle(bus, bus->got, bus->batch_parts, n, NULL, "XACK");
            return r != RSBUS_OK ? (int)r : (int)n;
        }
        if (first != RSBUS_OK) return first;
        left = deadline - rsbus__mono_ms();
        if (left <= 0 || (bus->in_run && rsbus__stop_requested(bus))) return 0;
        pi = (int)(bus->block_next++ % (unsigned)bus->nparts);
        cn = rsbus__part_conn(bus, pi);
        left = RSBUS__MIN(left, RSBUS__SLICE_MS);
        rsbus__queue_read_parts(bus, cn, &pi, 1, (int)left, ">", RSBUS__OWE_CALLER);
        r = rsbus__recv_block(cn, &rep, (int)left, &stopped, what);
        if (stopped) return 0;
        if (r == RSBUS_OK && rep->type == REDIS_REPLY_ERROR) r = rsbus__reply_fail(bus, rep, what);
        if (r == RSBUS_OK) r = rsbus__collect_read(bus, cn, rep, &pi, 1, &n, what);
        if (r != RSBUS_OK) return r;
        if (n) {
            r = rsbus__handle(bus, bus->got, bus->batch_parts, n, NULL, "XACK");
            return r != RSBUS_OK ? (int)r : (int)n;
        }
    }
}
#endif

RSBUS__PRIVATE int rsbus__poll(rsbus *bus, int timeout_ms) {
    rsbus__conn *cn = rsbus__part_conn(bus, 0);
    redisReply *rep = NULL;
    int idx[RSBUS__MAX_PARTS];
    size_t np = rsbus__parts_of_conn(bus, cn, idx), n = 0;
    rsbus_result r;
    const char *what = "XREADGROUP";
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    if (bus->reread) {
        int k = rsbus__reread_pending(bus);
        if (k != 0) return k;
    }
#ifndef RSBUS_NO_CLUSTER
    if (!rsbus__one_conn(bus)) return rsbus__poll_nodes(bus, timeout_ms);
#endif
    while (!bus->nheld && rsbus__owes(cn, RSBUS__OWE_READ) && cn->c) {   /* read ahead (rsbus_run): its reply */
        rsbus__owe o;
        if ((r = rsbus__next(cn, &rep, &o, what)) != RSBUS_OK) return r;
        rsbus__settle_owed(cn, &o, rep);
    }
    rep = NULL;
    if (bus->nheld) {
        rep = bus->held[0];
        bus->held[0] = bus->held[1];
        bus->nheld--;
    } else {
        int stopped;
        if (timeout_ms <= 0) timeout_ms = -1;   /* BLOCK 0 would mean "forever" to Redis */
        rsbus__queue_read_parts(bus, cn, idx, np, timeout_ms, ">", RSBUS__OWE_CALLER);
        r = rsbus__recv_block(cn, &rep, timeout_ms, &stopped, what);
        if (stopped) return 0;
        if (r != RSBUS_OK) return r;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        char w2[300];
        snprintf(w2, sizeof w2, "XREADGROUP %s/%s", bus->key, bus->cfg.group);
        return rsbus__reply_fail(bus, rep, w2);
    }
    r = rsbus__collect_read(bus, cn, rep, idx, np, &n, what);
    if (r != RSBUS_OK || !n) return r;
    r = rsbus__handle(bus, bus->got, bus->batch_parts, n, NULL, "XACK");
    if (r == RSBUS_OK && bus->in_run && !rsbus__stop_requested(bus)) rsbus__read_ahead(bus);
    return r != RSBUS_OK ? (int)r : (int)n;
}

RSBUS__PUBLIC int rsbus_poll(rsbus *bus, int timeout_ms) {
    rsbus_result r;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if ((r = rsbus__consumer_ok(bus, "poll")) != RSBUS_OK) return r;
    return rsbus__poll(bus, timeout_ms);
}

/* >>consume: claim */

/* Claims and handles candidates [from, from+n): one XCLAIM per distinct min-idle (other consumers'
   entries share claim_idle_ms, this consumer's share a backoff per delivery count), the min-idle being
   the guard against two consumers taking one entry. XCLAIM answers with the entries it claimed, in the
   order asked; the ones that did not come back were deleted, or taken by someone else. */
RSBUS__PRIVATE rsbus_result rsbus__claim_chunk(rsbus *bus, int pi, size_t from, size_t n, rsbus_claim_stats *cs) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    const rsbus__part *pt = &bus->parts[pi];
    redisReply **reps = bus->reps;
    const redisReply **got = bus->got;
    int64_t *counts = bus->counts;
    rsbus__cand *cand = bus->cand + from;
    int64_t idles[16];
    size_t i, j, nidle = 0, ngot = 0, nmissing = 0, ncmd = 0;
    rsbus_result r = RSBUS_OK;
    /* the distinct min-idle values, at most 16 per command round (the rest wait for the next claim) */
    for (i = 0; i < n; i++) {
        for (j = 0; j < nidle && idles[j] != cand[i].idle; j++) {}
        if (j == nidle && nidle < 16) idles[nidle++] = cand[i].idle;
    }
    for (j = 0; j < nidle; j++) {
        rsbus__cmd(cn);
        rsbus__lit(cn, "XCLAIM"); rsbus__arg(cn, pt->key, pt->key_len);
        rsbus__arg(cn, bus->cfg.group, bus->group_len);
        rsbus__arg(cn, bus->cfg.consumer, bus->consumer_len);
        rsbus__argi(cn, idles[j]);
        for (i = 0; i < n; i++) if (cand[i].idle == idles[j]) rsbus__argz(cn, cand[i].id);
        rsbus__cmd_end(cn);
        ncmd++;
    }
    r = rsbus__recv_n(cn, reps, ncmd, "XCLAIM");
    if (r != RSBUS_OK) return r;
    for (j = 0; j < ncmd && r == RSBUS_OK; j++) {
        const redisReply *rep = reps[j];
        size_t k = 0;
        if (rep->type == REDIS_REPLY_ERROR) { r = rsbus__reply_fail(bus, rep, "XCLAIM"); break; }
        if (rep->type != REDIS_REPLY_ARRAY) { r = rsbus__shape_fail(cn, "XCLAIM"); break; }
        for (i = 0; i < n; i++) {
            const redisReply *e;
            if (cand[i].idle != idles[j]) continue;
            e = k < rep->elements ? rep->element[k] : NULL;
            if (e && e->type == REDIS_REPLY_NIL) { k++; e = NULL; cand[i].count = -1; continue; }   /* Redis 6.2: deleted */
            if (e && !rsbus__entry_ok(e)) { r = rsbus__shape_fail(cn, "XCLAIM"); break; }
            if (e && e->element[0]->len == strlen(cand[i].id) && !memcmp(e->element[0]->str, cand[i].id, e->element[0]->len)) {
                got[ngot] = e;
                bus->batch_parts[ngot] = pi;
                counts[ngot] = cand[i].count + 1;   /* XCLAIM counted one more delivery */
                ngot++;
                k++;
            } else {
                cand[i].count = -1;                 /* not claimed: see below */
            }
        }
        if (r == RSBUS_OK && k < rep->elements) r = rsbus__shape_fail(cn, "XCLAIM");   /* entries not asked for */
    }
    for (i = 0; i < n; i++) {   /* unclaimed ones first in the chunk; claimed ones are in got[] */
        if (cand[i].count == -1) cand[nmissing++] = cand[i];
    }
    if (r != RSBUS_OK) return r;
    if (ngot) {
        cs->claimed += (int64_t)ngot;
        bus->st.claimed += ngot;
        for (i = 0; i < ngot; i++) if (counts[i] - 1 > bus->cfg.max_retries) cs->dead++;
        r = rsbus__handle(bus, got, bus->batch_parts, ngot, counts, "XACK (claimed)");
        if (r == RSBUS_OK) cs->handled += (int64_t)ngot;
    }
    if (r != RSBUS_OK || !nmissing) return r;
    /* Which of the missing ones are gone from the stream? Those were deleted or trimmed while pending:
       acknowledge them (a no-op on Redis 7, which already dropped them) and count them. */
    for (i = 0; i < nmissing; i++) {
        rsbus__cmd(cn);
        rsbus__lit(cn, "XRANGE"); rsbus__arg(cn, pt->key, pt->key_len);
        rsbus__argz(cn, cand[i].id); rsbus__argz(cn, cand[i].id);
        rsbus__cmd_end(cn);
    }
    r = rsbus__recv_n(cn, reps, nmissing, "XRANGE");
    if (r != RSBUS_OK) return r;
    {
        size_t ngone = 0;
        for (i = 0; i < nmissing; i++) {
            if (reps[i]->type == REDIS_REPLY_ARRAY && reps[i]->elements == 0)
                cand[ngone++] = cand[i];
        }
        if (ngone) {
            redisReply *rep = NULL;
            rsbus__cmd(cn);
            rsbus__lit(cn, "XACK"); rsbus__arg(cn, pt->key, pt->key_len);
            rsbus__arg(cn, bus->cfg.group, bus->group_len);
            for (i = 0; i < ngone; i++) rsbus__argz(cn, cand[i].id);
            rsbus__cmd_end(cn);
            r = rsbus__call(cn, &rep, "XACK (deleted)");
            if (r == RSBUS_OK) {
                cs->deleted += (int64_t)ngone;
                bus->st.deleted_while_pending += ngone;
            }
        }
    }
    return r;
}

/* rsbus_claim in one partition. */
RSBUS__PRIVATE rsbus_result rsbus__claim_part(rsbus *bus, int pi, int64_t min_idle_ms, size_t max_count,
                                              rsbus_claim_stats *csp) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    rsbus_claim_stats cs = *csp;
    char start[RSBUS_ID_SIZE + 1] = "-";
    int64_t scan_idle;
    size_t ncand = 0, i;
    rsbus_result r = RSBUS_OK;
    {
        rsbus__cand *p = (rsbus__cand *)rsbus__grow(&bus->a, bus->cand, &bus->capcand, max_count, sizeof *p, 64);
        if (!p) return rsbus__fail(bus, RSBUS_E_NOMEM, "claim: out of memory");
        bus->cand = p;
    }
    scan_idle = RSBUS__MIN(min_idle_ms, (int64_t)bus->cfg.retry_backoff_ms);
    /* 1. find due entries: other consumers' idle >= min_idle_ms, ours idle past their backoff */
    while (ncand < max_count) {
        redisReply *rep = NULL;
        size_t n;
        rsbus__cmd(cn);
        rsbus__lit(cn, "XPENDING"); rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len);
        rsbus__arg(cn, bus->cfg.group, bus->group_len);
        rsbus__lit(cn, "IDLE"); rsbus__argi(cn, scan_idle);
        rsbus__argz(cn, start); rsbus__lit(cn, "+"); rsbus__argi(cn, RSBUS__PENDING_PAGE);
        rsbus__cmd_end(cn);
        r = rsbus__call(cn, &rep, "XPENDING");
        if (r != RSBUS_OK) break;
        if (rep->type != REDIS_REPLY_ARRAY) { r = rsbus__shape_fail(cn, "XPENDING"); break; }
        n = rep->elements;
        for (i = 0; i < n && ncand < max_count; i++) {
            const redisReply *p = rep->element[i];
            int64_t idle, count;
            int own;
            if (p->type != REDIS_REPLY_ARRAY || p->elements != 4 || !rsbus__copy_id(p->element[0], bus->cand[ncand].id) ||
                !rsbus__is_str(p->element[1]) || !rsbus__reply_i64(p->element[2], &idle) ||
                !rsbus__reply_i64(p->element[3], &count)) {
                r = RSBUS_E_PROTOCOL;
                break;
            }
            cs.checked++;
            own = p->element[1]->len == bus->consumer_len &&
                  !memcmp(p->element[1]->str, bus->cfg.consumer, bus->consumer_len);
            {
                int64_t need = own ? rsbus__backoff_ms(bus, count) : min_idle_ms;
                if (idle < need) continue;
                bus->cand[ncand].idle = need;
                bus->cand[ncand].count = count;
                ncand++;
            }
        }
        if (r == RSBUS_OK && n > 0) {
            const redisReply *last = rep->element[n - 1];
            char prev[RSBUS_ID_SIZE + 1];
            uint64_t pm, ps, lm, ls;
            memcpy(prev, start, sizeof prev);
            start[0] = '(';
            if (!rsbus__copy_id(last->element[0], start + 1)) r = RSBUS_E_PROTOCOL;
            /* each page must start after the last: a server that repeats a page would loop forever */
            else if (prev[0] == '(' && rsbus__id_parse(prev + 1, strlen(prev + 1), &pm, &ps) &&
                     rsbus__id_parse(start + 1, strlen(start + 1), &lm, &ls) && !rsbus__id_less(pm, ps, lm, ls))
                r = RSBUS_E_PROTOCOL;
        }
        if (r == RSBUS_E_PROTOCOL) { r = rsbus__shape_fail(cn, "XPENDING"); break; }
        if (n < RSBUS__PENDING_PAGE) break;
    }
    /* 2. claim and handle them, batch_size at a time */
    for (i = 0; r == RSBUS_OK && i < ncand; i += (size_t)bus->cfg.batch_size) {
        size_t n = RSBUS__MIN(ncand - i, (size_t)bus->cfg.batch_size);
        r = rsbus__claim_chunk(bus, pi, i, n, &cs);
    }
    *csp = cs;
    return r;
}

RSBUS__PUBLIC rsbus_result rsbus_claim(rsbus *bus, int64_t min_idle_ms, size_t max_count, rsbus_claim_stats *out) {
    rsbus_claim_stats cs;
    rsbus_result r;
    int pi;
    memset(&cs, 0, sizeof cs);
    if (out) *out = cs;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if ((r = rsbus__consumer_ok(bus, "claim")) != RSBUS_OK) return r;
    if (min_idle_ms < 0) return rsbus__fail(bus, RSBUS_E_ARG, "claim: min_idle_ms must not be negative");
    if (max_count == 0) max_count = (size_t)bus->cfg.batch_size;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    /* each partition in turn, up to max_count entries from each */
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) r = rsbus__claim_part(bus, pi, min_idle_ms, max_count, &cs);
    if (out) *out = cs;
    return r;
}

/* in >>trimming, after the info helpers */
RSBUS__PRIVATE rsbus_result rsbus__maintain(rsbus *bus, int64_t *trimmed);

/* >>consume: run */
/* Sleeps up to ms, waking within 100 ms of a stop request. */
RSBUS__PRIVATE void rsbus__nap(rsbus *bus, int64_t ms) {
    int64_t end = rsbus__mono_ms() + ms;
    while (!rsbus__stop_requested(bus)) {
        int64_t left = end - rsbus__mono_ms();
        if (left <= 0) break;
        rsbus__sleep_ms(RSBUS__MIN(left, 100));
    }
}

RSBUS__PUBLIC rsbus_result rsbus_run(rsbus *bus, volatile sig_atomic_t *stop) {
    int64_t backoff = 100, last_claim = 0, last_trim = 0;
    int maintain = 1, rounds;
    rsbus_result r;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if ((r = rsbus__consumer_ok(bus, "run")) != RSBUS_OK) return r;
    if (bus->in_run) return rsbus__fail(bus, RSBUS_E_ARG, "run: already running");
    bus->in_run = 1;
    bus->run_stop = stop;
    while (!rsbus__stop_requested(bus)) {
        int n;
        if (!bus->conn.c) {
            unsigned char j[2];
            r = rsbus__ensure(bus);
            if (r != RSBUS_OK) {
                int64_t wait = backoff;
                if (rsbus__random(bus, j, 2) == 0) wait += (int64_t)(((unsigned)j[0] << 8 | j[1]) % (unsigned)(backoff / 2 + 1));
                rsbus__log(bus, RSBUS_LOG_WARN, "cannot reach Redis (%s: %s); retrying in %lld ms",
                           rsbus_result_str(r), bus->err, (long long)wait);
                rsbus__nap(bus, wait);
                backoff = RSBUS__MIN(backoff * 2, 5000);
                continue;
            }
        }
        if (bus->spool_events && rsbus__mono_ms() - bus->spool_tried_ms >= 1000) {
            size_t sent;
            bus->spool_tried_ms = rsbus__mono_ms();
            r = rsbus__spool_drain(bus, &sent);
            if (r != RSBUS_OK && r != RSBUS_E_REPLICAS)   /* a shortfall was logged by the drain */
                rsbus__log(bus, RSBUS_LOG_WARN, "spool: %s: %s (kept; trying again in a second)", rsbus_result_str(r), bus->err);
            if (!bus->conn.c) continue;
        }
        if (bus->nogroup) {
            int64_t now = rsbus__mono_ms();
            if (now - bus->nogroup_logged_ms >= 10000 || !bus->nogroup_logged_ms) {
                rsbus__log(bus, RSBUS_LOG_WARN, "group %s of %s is missing (stream deleted or server flushed): "
                           "recreating it from the start of the stream", bus->cfg.group, bus->key);
                bus->nogroup_logged_ms = now;
            }
            r = rsbus__create_group(bus, "0");
            if (r != RSBUS_OK) { rsbus__nap(bus, backoff); backoff = RSBUS__MIN(backoff * 2, 5000); continue; }
        }
        if (rsbus__mono_ms() - last_claim >= bus->cfg.claim_interval_ms) {
            rsbus_claim_stats cs;
            last_claim = rsbus__mono_ms();
            /* a claim that came back full may have more due: claim again (a few rounds) before reading */
            for (rounds = 0; rounds < 16 && !rsbus__stop_requested(bus); rounds++) {
                r = rsbus_claim(bus, bus->cfg.claim_idle_ms, (size_t)bus->cfg.batch_size, &cs);
                if (r != RSBUS_OK || cs.claimed + cs.deleted < bus->cfg.batch_size) break;
            }
            if (r != RSBUS_OK && r != RSBUS_E_IO && r != RSBUS_E_TIMEOUT && !bus->nogroup)
                rsbus__log(bus, RSBUS_LOG_WARN, "claim: %s: %s", rsbus_result_str(r), bus->err);
            if (!bus->conn.c || bus->nogroup) continue;
            if (maintain && last_claim - last_trim >= RSBUS__MAX(1000, bus->cfg.claim_interval_ms)) {
                last_trim = last_claim;
                r = rsbus__maintain(bus, NULL);
                if (r == RSBUS_E_AUTH) {   /* a least-privilege worker without XINFO/XTRIM: say so once */
                    rsbus__log(bus, RSBUS_LOG_WARN, "trimming and trim checks are off for this consumer: %s", bus->err);
                    maintain = 0;
                } else if (r != RSBUS_OK && r != RSBUS_E_IO && r != RSBUS_E_TIMEOUT) {
                    rsbus__log(bus, RSBUS_LOG_WARN, "trim: %s: %s", rsbus_result_str(r), bus->err);
                }
                if (!bus->conn.c) continue;
            }
        }
        n = rsbus__poll(bus, bus->cfg.block_ms);
        if (n >= 0) { backoff = 100; continue; }
        if (bus->nogroup) continue;
        /* whatever failed, the next try waits: a failure that repeats must not spin */
        if (n != RSBUS_E_IO && n != RSBUS_E_TIMEOUT)
            rsbus__log(bus, RSBUS_LOG_WARN, "poll: %s: %s", rsbus_result_str((rsbus_result)n), bus->err);
        rsbus__nap(bus, backoff);
        backoff = RSBUS__MIN(backoff * 2, 5000);
    }
    bus->in_run = 0;
    if (rsbus__settle_every(bus) != RSBUS_OK)   /* the batch in hand is acknowledged before returning */
        rsbus__log(bus, RSBUS_LOG_WARN, "run: last XACK: %s (the entries stay pending)", bus->err);
    bus->run_stop = NULL;
    bus->stop_req = 0;
    return RSBUS_OK;
}

RSBUS__PUBLIC void rsbus_stop(rsbus *bus) { if (bus) bus->stop_req = 1; }

/* >>dead letters */
#ifndef RSBUS_NO_ADMIN
/* Fills a DLQ entry from a [id, fields] reply: the original event in msg, the dlq_* fields beside it.
   out (room for RSBUS__MAX_FIELDS + RSBUS__DLQ_FIELDS, or NULL) receives msg.fields: the original fields,
   without rsbus's dlq_* ones. */
RSBUS__PRIVATE void rsbus__dlq_decode(rsbus *bus, const redisReply *e, rsbus_dlq_entry *d, rsbus_field *out) {
    const redisReply *f = e->element[1];
    const char *replay_for;
    size_t i, kept = 0;
    memset(d, 0, sizeof *d);
    memcpy(d->dlq_id, e->element[0]->str, e->element[0]->len + 1);
    if (f->type != REDIS_REPLY_ARRAY) return;
    (void)rsbus__decode_into(bus, e, &d->msg, &replay_for, NULL, bus->fields, RSBUS__MAX_FIELDS + RSBUS__DLQ_FIELDS);
    if (d->msg.fields && out) {
        for (i = 0; i < d->msg.field_count; i++)
            if (!rsbus__dlq_field(d->msg.fields[i].name, d->msg.fields[i].name_len)) out[kept++] = d->msg.fields[i];
        d->msg.fields = out;
        d->msg.field_count = kept;
    } else {
        d->msg.fields = NULL;
        d->msg.field_count = 0;
    }
    d->msg.stream = NULL; d->msg.stream_id = NULL;
    if (d->msg.data && rsbus_json_validate(d->msg.data, d->msg.data_len, NULL) != RSBUS_OK) {
        d->msg.data = NULL; d->msg.data_len = 0;
    }
    for (i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (rsbus__str_eq(k, "dlq_error")) d->error = v->str;
        else if (rsbus__str_eq(k, "dlq_stream_id")) { d->original_stream_id = v->str; d->msg.stream_id = v->str; }
        else if (rsbus__str_eq(k, "dlq_stream")) d->msg.stream = v->str;
        else if (rsbus__str_eq(k, "dlq_group")) d->group = v->str;
        else if (rsbus__str_eq(k, "dlq_consumer")) d->consumer = v->str;
        else if (rsbus__str_eq(k, "dlq_deliveries")) (void)rsbus__parse_i64(v->str, v->len, &d->deliveries);
    }
    d->failed_at_ms = rsbus__id_ms(d->dlq_id);   /* Redis's clock, as rsbus_dlq_purge cuts by it */
    d->msg.deliveries = d->deliveries;
}

RSBUS__PRIVATE int rsbus__id_arg_ok(const char *id) {
    size_t n;
    if (!id) return 0;
    n = strlen(id);
    return n > 0 && n < RSBUS_ID_SIZE && strspn(id, "0123456789-") == n;
}

/* A DLQ id as callers give it: "<ms-seq>", or "p<i>/<ms-seq>" for partition i of a partitioned stream.
   Sets *part (-1: no partition named) and *id (the stream id in it); 0 when it is neither. */
RSBUS__PRIVATE int rsbus__dlq_id_parse(const rsbus *bus, const char *s, int *part, const char **id) {
    *part = -1;
    *id = s;
    if (s && s[0] == 'p' && s[1] >= '0' && s[1] <= '9') {
        int v = 0;
        const char *q = s + 1;
        while (*q >= '0' && *q <= '9' && v < 100000) v = v * 10 + (*q++ - '0');
        if (*q != '/' || v >= bus->nparts || (q - s > 2 && s[1] == '0')) return 0;
        *part = v;
        *id = q + 1;
    }
    return rsbus__id_arg_ok(*id);
}

/* The DLQ entries of every partition after (after_id, after_part) in the order (id, partition), at most
   max: XRANGE of each partition's DLQ (after the id in the partitions up to after_part, from it in the
   ones after), merged. *out is an array reply in the arena holding them; parts[i] the partition of each. */
RSBUS__PRIVATE rsbus_result rsbus__dlq_merged(rsbus *bus, const char *after_id, int after_part, size_t max,
                                              redisReply **out, int **parts) {
    redisReply **reps, *m;
    size_t *pos, k;
    int pi;
    rsbus_result r = RSBUS_OK;
    *out = NULL;
    reps = (redisReply **)rsbus__arena_alloc(bus, (size_t)bus->nparts * (sizeof *reps + sizeof *pos));
    m = (redisReply *)rsbus__arena_alloc(bus, sizeof *m + max * (sizeof(redisReply *) + sizeof(int)));
    if (!reps || !m) return rsbus__fail(bus, RSBUS_E_NOMEM, "dlq_list: out of memory");
    pos = (size_t *)(void *)(reps + bus->nparts);
    for (pi = 0; pi < bus->nparts; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        char start[RSBUS_ID_SIZE + 1];
        if (!after_id) strcpy(start, "-");
        else snprintf(start, sizeof start, "%s%s", pi <= after_part ? "(" : "", after_id);
        rsbus__cmd(cn);
        rsbus__lit(cn, "XRANGE"); rsbus__arg(cn, bus->parts[pi].dlq_key, bus->parts[pi].dlq_key_len);
        rsbus__argz(cn, start); rsbus__lit(cn, "+");
        rsbus__lit(cn, "COUNT"); rsbus__argi(cn, (int64_t)max);
        rsbus__cmd_end(cn);
    }
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        size_t i;
        pos[pi] = 0;
        if ((r = rsbus__call(cn, &reps[pi], "XRANGE (dlq)")) != RSBUS_OK) break;
        if (reps[pi]->type != REDIS_REPLY_ARRAY || reps[pi]->elements > max) return rsbus__shape_fail(cn, "XRANGE (dlq)");
        for (i = 0; i < reps[pi]->elements; i++)
            if (!rsbus__entry_ok(reps[pi]->element[i])) return rsbus__shape_fail(cn, "XRANGE (dlq)");
    }
    if (r != RSBUS_OK) return r;
    memset(m, 0, sizeof *m);
    m->type = REDIS_REPLY_ARRAY;
    m->element = (redisReply **)(void *)(m + 1);
    *parts = (int *)(void *)(m->element + max);
    for (k = 0; k < max; k++) {   /* the oldest head of all partitions, ties to the lower partition */
        int best = -1;
        uint64_t bm = 0, bs = 0;
        for (pi = 0; pi < bus->nparts; pi++) {
            uint64_t em, es;
            const redisReply *id;
            if (pos[pi] >= reps[pi]->elements) continue;
            id = reps[pi]->element[pos[pi]]->element[0];
            if (!rsbus__id_parse(id->str, id->len, &em, &es)) return rsbus__shape_fail(rsbus__part_conn(bus, pi), "XRANGE (dlq)");
            if (best < 0 || rsbus__id_less(em, es, bm, bs)) { best = pi; bm = em; bs = es; }
        }
        if (best < 0) break;
        m->element[k] = reps[best]->element[pos[best]++];
        (*parts)[k] = best;
    }
    m->elements = k;
    *out = m;
    return RSBUS_OK;
}

RSBUS__PUBLIC rsbus_result rsbus_dlq_list(rsbus *bus, const char *after_id, size_t max, rsbus_dlq_page *page) {
    rsbus__conn *cn;
    redisReply *rep = NULL;
    rsbus_result r;
    const char *aid = NULL;
    int apart = -1, *eparts = NULL;
    size_t i;
    if (!bus || !page) return RSBUS_E_ARG;
    cn = rsbus__part_conn(bus, 0);
    memset(page, 0, sizeof *page);
    bus->err[0] = 0;
    if (after_id && !rsbus__dlq_id_parse(bus, after_id, &apart, &aid))
        return rsbus__fail(bus, RSBUS_E_ARG, "dlq_list: after_id is not a dead letter's id (\"<ms-seq>\", or \"p<i>/<ms-seq>\")");
    if (apart < 0) apart = bus->nparts - 1;   /* a bare id: after it in every partition */
    if (max == 0 || max > 100000) return rsbus__fail(bus, RSBUS_E_ARG, "dlq_list: max must be 1..100000");
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    if ((r = rsbus__dlq_merged(bus, aid, apart, max, &rep, &eparts)) != RSBUS_OK) return r;
    if (rep->elements) {
        /* the page outlives this call: its reply leaves the arena for a block of its own */
        size_t size = rsbus__reply_size(rep) + 32, nf = 0, fields_at;
        char *block, *mem;
        redisReply *copy;
        rsbus_field *fl;
        for (i = 0; i < rep->elements; i++) {   /* room for each entry's msg.fields */
            const redisReply *f = rep->element[i]->element[1];
            if (f->type == REDIS_REPLY_ARRAY && f->elements <= 2 * (RSBUS__MAX_FIELDS + RSBUS__DLQ_FIELDS))
                nf += f->elements / 2;
        }
        fields_at = size;
        size += nf * sizeof(rsbus_field) + 16;
        block = (char *)rsbus__alloc(&bus->a, size);
        page->entries = (rsbus_dlq_entry *)rsbus__alloc(&bus->a, rep->elements * sizeof *page->entries);
        if (!block || !page->entries) {
            if (block) rsbus__free(&bus->a, block, size);
            if (page->entries) rsbus__free(&bus->a, page->entries, rep->elements * sizeof *page->entries);
            page->entries = NULL;
            return rsbus__fail(bus, RSBUS_E_NOMEM, "dlq_list: out of memory");
        }
        memcpy(block, &size, sizeof size);
        mem = block + 16;
        mem += (16 - ((uintptr_t)mem & 15)) & 15;
        copy = rsbus__reply_copy(rep, &mem);
        mem = block + fields_at;
        mem += (16 - ((uintptr_t)mem & 15)) & 15;
        fl = (rsbus_field *)(void *)mem;
        for (i = 0; i < copy->elements; i++) {
            rsbus_dlq_entry *d = &page->entries[i];
            rsbus__dlq_decode(bus, copy->element[i], d, fl);
            fl += d->msg.field_count;
            d->msg.partition = eparts[i];
            if (bus->nparts > 1) {   /* "p<i>/<ms-seq>" (an id too long for it cannot come from Redis's clock) */
                char id[RSBUS_ID_SIZE];
                memcpy(id, d->dlq_id, sizeof id);
                snprintf(d->dlq_id, sizeof d->dlq_id, "p%d/%.40s", eparts[i], id);
            }
        }
        (void)cn;
        page->internal = block;
    }
    page->count = rep->elements;
    return RSBUS_OK;
}
#else
RSBUS__PUBLIC rsbus_result rsbus_dlq_list(rsbus *bus, const char *after_id, size_t max, rsbus_dlq_page *page) {
    (void)after_id; (void)max;
    if (page) memset(page, 0, sizeof *page);
    return rsbus__compiled_out(bus, "rsbus_dlq_list", "RSBUS_NO_ADMIN");
}
#endif /* RSBUS_NO_ADMIN */

RSBUS__PUBLIC void rsbus_dlq_page_free(rsbus *bus, rsbus_dlq_page *page) {
    if (!bus || !page) return;
    if (page->entries) rsbus__free(&bus->a, page->entries, page->count * sizeof *page->entries);
    if (page->internal) {
        size_t size;
        memcpy(&size, page->internal, sizeof size);
        rsbus__free(&bus->a, page->internal, size);
    }
    memset(page, 0, sizeof *page);
}

#ifndef RSBUS_NO_ADMIN
/* Queues the XADD that puts a dead-lettered entry back on the stream: its original fields (not the
   dlq_* ones, nor an earlier replay's), then replay_of and replay_for. */
RSBUS__PRIVATE void rsbus__queue_replay(rsbus *bus, int pi, const redisReply *e, const char *replay_of,
                                        const char **group) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    rsbus__xadd_head(cn, bus->parts[pi].key, bus->parts[pi].key_len, bus->cfg.max_len);
    *group = rsbus__arg_fields(cn, e->element[1], 1);
    rsbus__lit(cn, "replay_of");
    rsbus__argz(cn, replay_of);   /* the id as the caller knows it ("p<i>/<ms-seq>" when partitioned) */
    if (*group) { rsbus__lit(cn, "replay_for"); rsbus__argz(cn, *group); }
    rsbus__cmd_end(cn);
}

/* One replay: WATCH the DLQ, read the entry, then MULTI / XADD / XDEL / EXEC. Returns 1 when EXEC was
   refused because the DLQ changed in between (the caller tries again). */
RSBUS__PRIVATE int rsbus__replay_once(rsbus *bus, int pi, const char *dlq_id, const char *given,
                                     char new_id[RSBUS_ID_SIZE], rsbus_result *res) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    const char *dlq_key = bus->parts[pi].dlq_key;
    size_t dlq_key_len = bus->parts[pi].dlq_key_len;
    redisReply *rs[5] = { NULL, NULL, NULL, NULL, NULL };
    const redisReply *e;
    const char *group;
    rsbus_result r;
    size_t i;
    int again = 0;
    rsbus__cmd(cn); rsbus__lit(cn, "WATCH"); rsbus__arg(cn, dlq_key, dlq_key_len); rsbus__cmd_end(cn);
    rsbus__cmd(cn);
    rsbus__lit(cn, "XRANGE"); rsbus__arg(cn, dlq_key, dlq_key_len);
    rsbus__argz(cn, dlq_id); rsbus__argz(cn, dlq_id);
    rsbus__cmd_end(cn);
    r = rsbus__recv_n(cn, rs, 2, "XRANGE (replay)");
    if (r != RSBUS_OK) { *res = r; return 0; }
    if (rs[0]->type == REDIS_REPLY_ERROR) r = rsbus__reply_fail(bus, rs[0], "WATCH");
    else if (rs[1]->type == REDIS_REPLY_ERROR) r = rsbus__reply_fail(bus, rs[1], "XRANGE (replay)");
    else if (rs[1]->type != REDIS_REPLY_ARRAY || rs[1]->elements > 1 ||
             (rs[1]->elements == 1 && !rsbus__entry_ok(rs[1]->element[0]))) r = rsbus__shape_fail(cn, "XRANGE (replay)");
    else if (rs[1]->elements == 0 || rs[1]->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
        r = rsbus__fail(bus, RSBUS_E_NOTFOUND, "dlq_replay: no dead letter %s in %s", given, dlq_key);
    if (r != RSBUS_OK) {
        redisReply *u = NULL;
        if (cn->c) {
            rsbus__cmd(cn); rsbus__lit(cn, "UNWATCH"); rsbus__cmd_end(cn);
            (void)rsbus__call(cn, &u, "UNWATCH");
            if (r == RSBUS_E_NOTFOUND) snprintf(bus->err, sizeof bus->err, "dlq_replay: no dead letter %s in %.150s",
                                                given, dlq_key);
        }
        *res = r;
        return 0;
    }
    e = rs[1]->element[0];
    rsbus__cmd(cn); rsbus__lit(cn, "MULTI"); rsbus__cmd_end(cn);
    rsbus__queue_replay(bus, pi, e, given, &group);
    rsbus__cmd(cn);
    rsbus__lit(cn, "XDEL"); rsbus__arg(cn, dlq_key, dlq_key_len); rsbus__argz(cn, dlq_id);
    rsbus__cmd_end(cn);
    rsbus__cmd(cn); rsbus__lit(cn, "EXEC"); rsbus__cmd_end(cn);
    rs[1] = NULL;
    r = rsbus__recv_n(cn, rs, 4, "MULTI/XADD/XDEL/EXEC (replay)");
    if (r != RSBUS_OK) { *res = r; return 0; }
    for (i = 0; i < 3 && r == RSBUS_OK; i++)
        if (rs[i]->type == REDIS_REPLY_ERROR) r = rsbus__reply_fail(bus, rs[i], "replay");
    if (r == RSBUS_OK) {
        if (rs[3]->type == REDIS_REPLY_NIL) again = 1;
        else if (rs[3]->type == REDIS_REPLY_ERROR) r = rsbus__reply_fail(bus, rs[3], "EXEC (replay)");
        else if (rs[3]->type != REDIS_REPLY_ARRAY || rs[3]->elements != 2) r = rsbus__shape_fail(cn, "EXEC (replay)");
        else if (rs[3]->element[0]->type == REDIS_REPLY_ERROR) r = rsbus__reply_fail(bus, rs[3]->element[0], "XADD (replay)");
        else if (!rsbus__copy_id(rs[3]->element[0], new_id)) r = rsbus__shape_fail(cn, "XADD (replay)");
    }
    *res = r;
    return again;
}

RSBUS__PUBLIC rsbus_result rsbus_dlq_replay(rsbus *bus, const char *dlq_id, char new_stream_id[RSBUS_ID_SIZE]) {
    char id[RSBUS_ID_SIZE];
    rsbus_result r = RSBUS_OK;
    int attempt;
    const char *sid;
    int pi;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (!rsbus__dlq_id_parse(bus, dlq_id, &pi, &sid) || (pi < 0 && bus->nparts > 1))
        return rsbus__fail(bus, RSBUS_E_ARG, "dlq_replay: dlq_id is not a dead letter's id (%s)",
                           bus->nparts > 1 ? "\"p<i>/<ms-seq>\" on a partitioned stream" : "\"<ms-seq>\"");
    if (pi < 0) pi = 0;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    for (attempt = 0; attempt < 50; attempt++) {
        if (!rsbus__replay_once(bus, pi, sid, dlq_id, id, &r)) break;
        rsbus__sleep_ms(attempt);   /* the DLQ changed under us: try again */
        r = RSBUS_E_REDIS;
    }
    if (r == RSBUS_E_REDIS && !bus->err[0])
        return rsbus__fail(bus, RSBUS_E_REDIS, "dlq_replay: the dead-letter stream kept changing; try again");
    if (r != RSBUS_OK) return r;
    bus->st.replayed++;
    if (new_stream_id) memcpy(new_stream_id, id, strlen(id) + 1);
    return RSBUS_OK;
}

RSBUS__PUBLIC rsbus_result rsbus_dlq_purge(rsbus *bus, int64_t before_ms, int64_t *removed) {
    rsbus__conn *cn;
    redisReply *rep = NULL;
    rsbus_result r;
    char minid[32];
    int pi;
    if (removed) *removed = 0;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (before_ms < 0) return rsbus__fail(bus, RSBUS_E_ARG, "dlq_purge: before_ms must not be negative");
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    snprintf(minid, sizeof minid, "%lld-0", (long long)before_ms);
    for (pi = 0; pi < bus->nparts; pi++) {   /* every partition's DLQ */
        cn = rsbus__part_conn(bus, pi);
        rsbus__cmd(cn);
        rsbus__lit(cn, "XTRIM"); rsbus__arg(cn, bus->parts[pi].dlq_key, bus->parts[pi].dlq_key_len);
        rsbus__lit(cn, "MINID"); rsbus__lit(cn, "="); rsbus__argz(cn, minid);
        rsbus__cmd_end(cn);
    }
    for (pi = 0; pi < bus->nparts; pi++) {
        cn = rsbus__part_conn(bus, pi);
        if ((r = rsbus__call(cn, &rep, "XTRIM (dlq)")) != RSBUS_OK) return r;
        if (rep->type != REDIS_REPLY_INTEGER) return rsbus__shape_fail(cn, "XTRIM (dlq)");
        if (removed) *removed += (int64_t)rep->integer;
    }
    return RSBUS_OK;
}
#else
RSBUS__PUBLIC rsbus_result rsbus_dlq_replay(rsbus *bus, const char *dlq_id, char new_stream_id[RSBUS_ID_SIZE]) {
    (void)dlq_id;
    if (new_stream_id) new_stream_id[0] = 0;
    return rsbus__compiled_out(bus, "rsbus_dlq_replay", "RSBUS_NO_ADMIN");
}
RSBUS__PUBLIC rsbus_result rsbus_dlq_purge(rsbus *bus, int64_t before_ms, int64_t *removed) {
    (void)before_ms;
    if (removed) *removed = 0;
    return rsbus__compiled_out(bus, "rsbus_dlq_purge", "RSBUS_NO_ADMIN");
}
#endif /* RSBUS_NO_ADMIN */

/* >>info and health */
/* Names and ids as Redis sent them, byte for byte (so a name read here can be passed back), truncated
   to fit; whoever prints them escapes what a terminal should not see. */
RSBUS__PRIVATE void rsbus__copy_reply_str(const redisReply *r, char *out, size_t size) {
    size_t n;
    out[0] = 0;
    if (!rsbus__is_str(r)) return;
    n = RSBUS__MIN(r->len, size - 1);
    memcpy(out, r->str, n);
    out[n] = 0;
}
/* One group of an XINFO GROUPS reply. */
RSBUS__PRIVATE int rsbus__group_decode(const redisReply *g, rsbus_group_info *out) {
    const redisReply *v;
    memset(out, 0, sizeof *out);
    out->oldest_idle_ms = -1;
    if (!g || g->type != REDIS_REPLY_ARRAY) return 0;
    rsbus__copy_reply_str(rsbus__map_get(g, "name"), out->name, sizeof out->name);
    if (!out->name[0]) return 0;
    (void)rsbus__reply_i64(rsbus__map_get(g, "consumers"), &out->consumers);
    (void)rsbus__reply_i64(rsbus__map_get(g, "pending"), &out->pending);
    rsbus__copy_reply_str(rsbus__map_get(g, "last-delivered-id"), out->last_delivered_id, sizeof out->last_delivered_id);
    out->entries_read = -1;
    (void)rsbus__reply_i64(rsbus__map_get(g, "entries-read"), &out->entries_read);
    v = rsbus__map_get(g, "lag");   /* Redis 7.0+; nil when it cannot tell */
    out->lag = -1;
    if (!rsbus__reply_i64(v, &out->lag) || out->lag < 0) out->lag = -1;
    return 1;
}

/* Queues XINFO <sub> of partition pi's stream: sub "STREAM", "GROUPS", or "CONSUMERS" with the group's name. */
RSBUS__PRIVATE void rsbus__queue_xinfo_part(rsbus *bus, int pi, const char *sub, const char *group) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    rsbus__cmd(cn);
    rsbus__lit(cn, "XINFO"); rsbus__argz(cn, sub); rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len);
    if (group) rsbus__argz(cn, group);
    rsbus__cmd_end(cn);
}
/* The same of the stream (partition 0 on a partitioned one: the operating calls that look at one). */
RSBUS__PRIVATE void rsbus__queue_xinfo(rsbus *bus, const char *sub, const char *group) {
    rsbus__queue_xinfo_part(bus, 0, sub, group);
}
/* The stream's numbers in an XINFO STREAM reply (dlq_length is not in it). */
RSBUS__PRIVATE void rsbus__stream_decode(const redisReply *r, rsbus_stream_info *out) {
    const redisReply *v;
    memset(out, 0, sizeof *out);
    (void)rsbus__reply_i64(rsbus__map_get(r, "length"), &out->length);
    (void)rsbus__reply_i64(rsbus__map_get(r, "groups"), &out->groups);
    out->entries_added = -1;   /* Redis 7.0+ */
    (void)rsbus__reply_i64(rsbus__map_get(r, "entries-added"), &out->entries_added);
    rsbus__copy_reply_str(rsbus__map_get(r, "last-generated-id"), out->last_id, sizeof out->last_id);
    v = rsbus__map_get(r, "first-entry");
    if (v && v->type == REDIS_REPLY_ARRAY && v->elements == 2)
        rsbus__copy_reply_str(v->element[0], out->first_id, sizeof out->first_id);
}

/* Whether stream id a is less than b (as text; "" is less than anything, so an empty stream does not count). */
RSBUS__PRIVATE int rsbus__id_str_less(const char *a, const char *b) {
    uint64_t am, as, bm, bs;
    if (!a[0]) return 1;
    if (!b[0]) return 0;
    if (!rsbus__id_parse(a, strlen(a), &am, &as) || !rsbus__id_parse(b, strlen(b), &bm, &bs)) return strcmp(a, b) < 0;
    return rsbus__id_less(am, as, bm, bs);
}
/* Adds one partition's stream numbers to the stream's: lengths and entries_added summed (-1 once one is
   unknown), first_id the smallest, last_id the largest, groups the most. */
RSBUS__PRIVATE void rsbus__stream_add(rsbus_stream_info *acc, const rsbus_stream_info *p, int first) {
    if (first) { *acc = *p; return; }
    acc->length += p->length;
    acc->dlq_length += p->dlq_length;
    acc->entries_added = acc->entries_added < 0 || p->entries_added < 0 ? -1 : acc->entries_added + p->entries_added;
    acc->groups = RSBUS__MAX(acc->groups, p->groups);
    if (p->first_id[0] && (!acc->first_id[0] || rsbus__id_str_less(p->first_id, acc->first_id)))
        memcpy(acc->first_id, p->first_id, sizeof acc->first_id);
    if (rsbus__id_str_less(acc->last_id, p->last_id)) memcpy(acc->last_id, p->last_id, sizeof acc->last_id);
}
/* Adds one partition's numbers of a group to the group's: pending, entries_read and lag summed (lag -1
   once one partition cannot tell), consumers the most, last_delivered_id the largest, oldest_idle_ms the
   longest. */
RSBUS__PRIVATE void rsbus__group_add(rsbus_group_info *acc, const rsbus_group_info *g, int first) {
    if (first) { *acc = *g; return; }
    acc->pending += g->pending;
    acc->lag = acc->lag < 0 || g->lag < 0 ? -1 : acc->lag + g->lag;
    acc->entries_read = acc->entries_read < 0 || g->entries_read < 0 ? -1 : acc->entries_read + g->entries_read;
    acc->consumers = RSBUS__MAX(acc->consumers, g->consumers);
    if (rsbus__id_str_less(acc->last_delivered_id, g->last_delivered_id))
        memcpy(acc->last_delivered_id, g->last_delivered_id, sizeof acc->last_delivered_id);
    acc->oldest_idle_ms = RSBUS__MAX(acc->oldest_idle_ms, g->oldest_idle_ms);
}

/* XINFO GROUPS of every partition, all sent before any reply is read: reps[pi] an array (one map per
   group), or NULL for a partition whose stream does not exist (yet). RSBUS_E_NOTFOUND when none exists. */
RSBUS__PRIVATE rsbus_result rsbus__xinfo_groups_all(rsbus *bus, redisReply ***reps_out) {
    redisReply **reps = (redisReply **)rsbus__arena_alloc(bus, (size_t)bus->nparts * sizeof *reps);
    rsbus_result r = RSBUS_OK, missing = RSBUS_OK;
    int pi, found = 0;
    *reps_out = NULL;
    if (!reps) return rsbus__fail(bus, RSBUS_E_NOMEM, "XINFO GROUPS: out of memory");
    for (pi = 0; pi < bus->nparts; pi++) rsbus__queue_xinfo_part(bus, pi, "GROUPS", NULL);
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        r = rsbus__recv(cn, &reps[pi], "XINFO GROUPS");
        if (r != RSBUS_OK) break;
        if (reps[pi]->type == REDIS_REPLY_ERROR) {
            rsbus_result e = rsbus__reply_fail(bus, reps[pi], "XINFO GROUPS");
            reps[pi] = NULL;
            if (e != RSBUS_E_NOTFOUND && missing == RSBUS_OK) missing = e;
            continue;
        }
        if (reps[pi]->type != REDIS_REPLY_ARRAY) {
            /* read the rest first: the connection stays in step until the one rule drops it */
            reps[pi] = NULL;
            missing = RSBUS_E_PROTOCOL;
            continue;
        }
        found = 1;
    }
    if (r != RSBUS_OK) return r;
    if (missing == RSBUS_E_PROTOCOL) return rsbus__shape_fail(rsbus__part_conn(bus, 0), "XINFO GROUPS");
    if (missing != RSBUS_OK) return missing;
    if (!found) return RSBUS_E_NOTFOUND;   /* bus->err says which stream */
    bus->err[0] = 0;
    *reps_out = reps;
    return RSBUS_OK;
}
/* XINFO GROUPS of the stream: an array (one map per group), else an error (partition 0's on a partitioned
   stream, for the calls that want one reply: trimming, metrics' group names). */
RSBUS__PRIVATE rsbus_result rsbus__xinfo_groups(rsbus *bus, redisReply **rep) {
    rsbus__conn *cn = rsbus__part_conn(bus, 0);
    rsbus_result r;
    rsbus__queue_xinfo(bus, "GROUPS", NULL);
    r = rsbus__call(cn, rep, "XINFO GROUPS");
    if (r == RSBUS_OK && (*rep)->type != REDIS_REPLY_ARRAY) {
        *rep = NULL;
        r = rsbus__shape_fail(cn, "XINFO GROUPS");
    }
    return r;
}

RSBUS__PUBLIC rsbus_result rsbus_stream_info_get(rsbus *bus, rsbus_stream_info *out) {
    redisReply *rs[2] = { NULL, NULL };
    rsbus_result r = RSBUS_OK, first = RSBUS_OK;
    int pi, found = 0;
    if (!bus || !out) return RSBUS_E_ARG;
    memset(out, 0, sizeof *out);
    bus->err[0] = 0;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    for (pi = 0; pi < bus->nparts; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        rsbus__queue_xinfo_part(bus, pi, "STREAM", NULL);
        rsbus__cmd(cn); rsbus__lit(cn, "XLEN"); rsbus__arg(cn, bus->parts[pi].dlq_key, bus->parts[pi].dlq_key_len);
        rsbus__cmd_end(cn);
    }
    /* on a partitioned stream the numbers are the sums over the partitions; a partition not created yet
       counts as empty, and RSBUS_E_NOTFOUND means that none exists */
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        rsbus_stream_info p;
        r = rsbus__recv_n(cn, rs, 2, "XINFO STREAM");
        if (r != RSBUS_OK) break;
        memset(&p, 0, sizeof p);
        if (rs[0]->type == REDIS_REPLY_ERROR) {
            rsbus_result e = rsbus__reply_fail(bus, rs[0], "XINFO STREAM");
            if (e != RSBUS_E_NOTFOUND && first == RSBUS_OK) first = e;
            if (e != RSBUS_E_NOTFOUND) continue;
            p.entries_added = 0;
        } else if (rs[0]->type != REDIS_REPLY_ARRAY) {
            if (first == RSBUS_OK) first = RSBUS_E_PROTOCOL;
            continue;
        } else {
            rsbus__stream_decode(rs[0], &p);
            found = 1;
        }
        if (rs[1]->type == REDIS_REPLY_ERROR) {
            if (first == RSBUS_OK) first = rsbus__reply_fail(bus, rs[1], "XLEN (dlq)");
            continue;
        }
        if (rs[1]->type != REDIS_REPLY_INTEGER) { if (first == RSBUS_OK) first = RSBUS_E_PROTOCOL; continue; }
        p.dlq_length = (int64_t)rs[1]->integer;
        rsbus__stream_add(out, &p, pi == 0);
    }
    if (r != RSBUS_OK) return r;
    if (first == RSBUS_E_PROTOCOL) return rsbus__shape_fail(rsbus__part_conn(bus, 0), "XINFO STREAM");
    if (first != RSBUS_OK) return first;
    if (!found) return rsbus__fail(bus, RSBUS_E_NOTFOUND, "XINFO STREAM: no stream %s", bus->key);
    bus->err[0] = 0;
    return RSBUS_OK;
}

/* The groups of every partition, merged by name (partition 0's order first) into out; *n all of them. */
RSBUS__PRIVATE void rsbus__groups_merge(rsbus *bus, redisReply **reps, rsbus_group_info *out, size_t max, size_t *n) {
    int pi;
    size_t i, j;
    *n = 0;
    for (pi = 0; pi < bus->nparts; pi++) {
        if (!reps[pi]) continue;
        for (i = 0; i < reps[pi]->elements; i++) {
            rsbus_group_info g;
            if (!rsbus__group_decode(reps[pi]->element[i], &g)) continue;
            for (j = 0; j < *n && j < max && strcmp(out[j].name, g.name) != 0; j++) {}
            if (j < *n && j < max) { rsbus__group_add(&out[j], &g, 0); continue; }
            if (j < *n) continue;   /* beyond max: counted once already (by name, in an earlier partition) */
            if (*n < max) out[*n] = g;
            (*n)++;
        }
    }
}

RSBUS__PUBLIC rsbus_result rsbus_groups_list(rsbus *bus, rsbus_group_info *out, size_t max, size_t *count) {
    redisReply **reps = NULL;
    rsbus_result r;
    size_t n = 0;
    if (count) *count = 0;
    if (!bus || (!out && max)) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    if ((r = rsbus__xinfo_groups_all(bus, &reps)) != RSBUS_OK) return r;
    if (bus->nparts == 1) {
        size_t i;
        for (i = 0; i < reps[0]->elements; i++) {
            rsbus_group_info g;
            if (!rsbus__group_decode(reps[0]->element[i], &g)) continue;
            if (n < max) out[n] = g;
            n++;
        }
    } else {
        rsbus__groups_merge(bus, reps, out, max, &n);   /* (beyond max, a name seen in two partitions may count twice) */
    }
    if (count) *count = n;   /* all groups, even beyond max */
    return RSBUS_OK;
}

/* The group named 'group' in an XINFO GROUPS reply: 1 found (decoded into out), 0 absent, -1 malformed. */
RSBUS__PRIVATE int rsbus__find_group(const redisReply *groups, const char *group, rsbus_group_info *out) {
    size_t i;
    for (i = 0; i < groups->elements; i++) {
        const redisReply *name = rsbus__map_get(groups->element[i], "name");
        if (name && rsbus__str_eq(name, group)) return rsbus__group_decode(groups->element[i], out) ? 1 : -1;
    }
    return 0;
}

RSBUS__PUBLIC rsbus_result rsbus_group_info_get(rsbus *bus, const char *group, rsbus_group_info *out) {
    redisReply **reps = NULL;
    rsbus_result r;
    int found = 0, pi;
    if (!bus || !out) return RSBUS_E_ARG;
    memset(out, 0, sizeof *out);
    bus->err[0] = 0;
    if (!group) group = bus->cfg.group;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    if ((r = rsbus__xinfo_groups_all(bus, &reps)) != RSBUS_OK) return r;
    for (pi = 0; pi < bus->nparts; pi++) {   /* summed over the partitions that have it */
        rsbus_group_info g;
        int f;
        if (!reps[pi]) continue;
        f = rsbus__find_group(reps[pi], group, &g);
        if (f < 0) return rsbus__shape_fail(rsbus__part_conn(bus, pi), "XINFO GROUPS");
        if (f == 0) continue;
        rsbus__group_add(out, &g, !found);
        found = 1;
    }
    if (!found) return rsbus__fail(bus, RSBUS_E_NOTFOUND, "group_info: no group %.100s on %s", group, bus->key);
    return RSBUS_OK;
}

/* XINFO STREAM FULL COUNT 1 (groups with their pel-count, their oldest pending entry and every consumer),
   XLEN of the DLQ and TIME of partition pi, pipelined: one round trip however many groups there are. */
RSBUS__PRIVATE rsbus_result rsbus__snapshot_part(rsbus *bus, int pi, rsbus_stream_info *info, rsbus_group_info *groups,
                                                 size_t max, size_t *count) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    const rsbus__part *pt = &bus->parts[pi];
    redisReply *rs[3] = { NULL, NULL, NULL };
    const redisReply *v, *gs;
    int64_t s = -1, us = -1, now;
    size_t i, n = 0;
    rsbus_result r;
    if (count) *count = 0;
    memset(info, 0, sizeof *info);
    info->entries_added = -1;
    rsbus__cmd(cn);
    rsbus__lit(cn, "XINFO"); rsbus__lit(cn, "STREAM"); rsbus__arg(cn, pt->key, pt->key_len);
    rsbus__lit(cn, "FULL"); rsbus__lit(cn, "COUNT"); rsbus__lit(cn, "1");
    rsbus__cmd_end(cn);
    rsbus__cmd(cn); rsbus__lit(cn, "XLEN"); rsbus__arg(cn, pt->dlq_key, pt->dlq_key_len); rsbus__cmd_end(cn);
    rsbus__cmd(cn); rsbus__lit(cn, "TIME"); rsbus__cmd_end(cn);
    r = rsbus__recv_n(cn, rs, 3, "XINFO STREAM FULL");
    if (r != RSBUS_OK) return r;
    if (rs[1]->type == REDIS_REPLY_ERROR) return rsbus__reply_fail(bus, rs[1], "XLEN (dlq)");
    if (rs[1]->type != REDIS_REPLY_INTEGER) return rsbus__shape_fail(cn, "XLEN (dlq)");
    info->dlq_length = (int64_t)rs[1]->integer;
    if (rs[0]->type == REDIS_REPLY_ERROR) {
        r = rsbus__reply_fail(bus, rs[0], "XINFO STREAM FULL");
        return r == RSBUS_E_NOTFOUND ? rsbus__fail(bus, r, "XINFO STREAM: no stream %s", pt->key) : r;
    }
    if (rs[0]->type != REDIS_REPLY_ARRAY || rs[2]->type != REDIS_REPLY_ARRAY || rs[2]->elements != 2 ||
        !rsbus__reply_i64(rs[2]->element[0], &s) || !rsbus__reply_i64(rs[2]->element[1], &us) || s < 0 || us < 0)
        return rsbus__shape_fail(cn, "XINFO STREAM FULL");
    now = s * 1000 + us / 1000;
    rsbus__stream_decode(rs[0], info);              /* FULL has no first-entry: its first entry is below */
    info->dlq_length = (int64_t)rs[1]->integer;
    v = rsbus__map_get(rs[0], "entries");
    if (v && v->type == REDIS_REPLY_ARRAY && v->elements >= 1 && v->element[0]->type == REDIS_REPLY_ARRAY &&
        v->element[0]->elements == 2)
        rsbus__copy_reply_str(v->element[0]->element[0], info->first_id, sizeof info->first_id);
    gs = rsbus__map_get(rs[0], "groups");
    if (!gs || gs->type != REDIS_REPLY_ARRAY) return rsbus__shape_fail(cn, "XINFO STREAM FULL");
    for (i = 0; i < gs->elements; i++) {
        rsbus_group_info g;
        const redisReply *pel, *cons;
        int64_t delivered;
        if (!rsbus__group_decode(gs->element[i], &g)) continue;
        /* in the FULL form "pending" and "consumers" are arrays: the count is pel-count */
        g.pending = 0;
        (void)rsbus__reply_i64(rsbus__map_get(gs->element[i], "pel-count"), &g.pending);
        cons = rsbus__map_get(gs->element[i], "consumers");
        g.consumers = cons && cons->type == REDIS_REPLY_ARRAY ? (int64_t)cons->elements : 0;
        pel = rsbus__map_get(gs->element[i], "pending");   /* [id, consumer, last delivery ms, deliveries] */
        g.oldest_idle_ms = 0;
        if (g.pending > 0) {
            g.oldest_idle_ms = -1;
            if (pel && pel->type == REDIS_REPLY_ARRAY && pel->elements >= 1 && pel->element[0]->type == REDIS_REPLY_ARRAY &&
                pel->element[0]->elements >= 3 && rsbus__reply_i64(pel->element[0]->element[2], &delivered))
                g.oldest_idle_ms = now > delivered ? now - delivered : 0;
        }
        if (n < max) groups[n] = g;
        n++;
    }
    info->groups = (int64_t)gs->elements;
    if (count) *count = n;
    return RSBUS_OK;
}
RSBUS__PUBLIC rsbus_result rsbus_stream_snapshot(rsbus *bus, rsbus_stream_info *info, rsbus_group_info *groups,
                                                 size_t max, size_t *count) {
    rsbus_group_info *tmp = NULL;
    rsbus_stream_info p;
    rsbus_result r;
    size_t n = 0, i, j, pn;
    int pi, found = 0;
    if (count) *count = 0;
    if (!bus || !info || (!groups && max)) return RSBUS_E_ARG;
    memset(info, 0, sizeof *info);
    info->entries_added = -1;
    bus->err[0] = 0;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    if (bus->nparts == 1) return rsbus__snapshot_part(bus, 0, info, groups, max, count);
    /* partitioned: one round trip per partition, summed as the other numbers are */
    if (max && !(tmp = (rsbus_group_info *)rsbus__arena_alloc(bus, max * sizeof *tmp)))
        return rsbus__fail(bus, RSBUS_E_NOMEM, "stream_snapshot: out of memory");
    for (pi = 0; pi < bus->nparts; pi++) {
        r = rsbus__snapshot_part(bus, pi, &p, tmp, max, &pn);
        if (r == RSBUS_E_NOTFOUND) { info->dlq_length += p.dlq_length; continue; }   /* not created yet */
        if (r != RSBUS_OK) return r;
        p.dlq_length += found ? 0 : info->dlq_length;
        rsbus__stream_add(info, &p, !found);
        found = 1;
        for (i = 0; i < RSBUS__MIN(pn, max); i++) {
            for (j = 0; j < RSBUS__MIN(n, max) && strcmp(groups[j].name, tmp[i].name) != 0; j++) {}
            if (j < RSBUS__MIN(n, max)) rsbus__group_add(&groups[j], &tmp[i], 0);
            else if (n < max) groups[n++] = tmp[i];
        }
        n = RSBUS__MAX(n, pn);
    }
    if (!found) return rsbus__fail(bus, RSBUS_E_NOTFOUND, "XINFO STREAM: no stream %s", bus->key);
    bus->err[0] = 0;
    if (count) *count = n;
    return RSBUS_OK;
}

/* Appends to a bounded text buffer, counting what it would need (like snprintf). */
typedef struct rsbus__text { char *buf; size_t size, len; } rsbus__text;
RSBUS__PRIVATE void rsbus__textf(rsbus__text *t, const char *fmt, ...) RSBUS__PRINTF(2, 3);
RSBUS__PRIVATE void rsbus__textf(rsbus__text *t, const char *fmt, ...) {
    va_list ap;
    int n;
    char *dst = NULL;
    size_t room = 0;
    if (t->buf && t->len < t->size) { dst = t->buf + t->len; room = t->size - t->len; }
    va_start(ap, fmt);
    n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}

RSBUS__PUBLIC rsbus_result rsbus_partitions_list(rsbus *bus, rsbus_partition_info *out, size_t max, size_t *count) {
    rsbus_result r = RSBUS_OK, first = RSBUS_OK;
    int pi;
    if (count) *count = 0;
    if (!bus || (!out && max)) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    for (pi = 0; pi < bus->nparts && (size_t)pi < max; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        const rsbus__part *pt = &bus->parts[pi];
        rsbus__cmd(cn); rsbus__lit(cn, "XLEN"); rsbus__arg(cn, pt->key, pt->key_len); rsbus__cmd_end(cn);
        rsbus__cmd(cn); rsbus__lit(cn, "XLEN"); rsbus__arg(cn, pt->dlq_key, pt->dlq_key_len); rsbus__cmd_end(cn);
        rsbus__queue_xinfo_part(bus, pi, "GROUPS", NULL);
    }
    for (pi = 0; pi < bus->nparts && (size_t)pi < max && r == RSBUS_OK; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        const rsbus__part *pt = &bus->parts[pi];
        rsbus_partition_info *o = &out[pi];
        redisReply *rs[3] = { NULL, NULL, NULL };
        rsbus_group_info g;
        r = rsbus__recv_n(cn, rs, 3, "XLEN");
        if (r != RSBUS_OK) break;
        memset(o, 0, sizeof *o);
        o->index = pi;
        snprintf(o->key, sizeof o->key, "%.255s", pt->key);
        o->slot = pt->slot;
        rsbus__part_node(bus, pi, o->node, sizeof o->node);
        o->lag = -1;
        if (rs[0]->type == REDIS_REPLY_INTEGER) o->length = (int64_t)rs[0]->integer;
        else if (first == RSBUS_OK) first = rs[0]->type == REDIS_REPLY_ERROR ? rsbus__reply_fail(bus, rs[0], "XLEN") : RSBUS_E_PROTOCOL;
        if (rs[1]->type == REDIS_REPLY_INTEGER) o->dlq_length = (int64_t)rs[1]->integer;
        else if (first == RSBUS_OK) first = rs[1]->type == REDIS_REPLY_ERROR ? rsbus__reply_fail(bus, rs[1], "XLEN (dlq)") : RSBUS_E_PROTOCOL;
        if (rs[2]->type == REDIS_REPLY_ARRAY) {
            if (rsbus__find_group(rs[2], bus->cfg.group, &g) == 1) { o->pending = g.pending; o->lag = g.lag; }
        } else if (rs[2]->type == REDIS_REPLY_ERROR) {
            rsbus_result e = rsbus__reply_fail(bus, rs[2], "XINFO GROUPS");
            if (e != RSBUS_E_NOTFOUND && first == RSBUS_OK) first = e;   /* no stream yet: empty */
        } else if (first == RSBUS_OK) {
            first = RSBUS_E_PROTOCOL;
        }
    }
    if (r != RSBUS_OK) return r;
    if (first == RSBUS_E_PROTOCOL) return rsbus__shape_fail(rsbus__part_conn(bus, 0), "XLEN");
    if (first != RSBUS_OK) return first;
    bus->err[0] = 0;
    if (count) *count = (size_t)bus->nparts;
    return RSBUS_OK;
}

/* The health of partition pi from its XINFO GROUPS and DLQ length replies, its findings appended to t
   (prefixed with the partition on a partitioned stream). */
RSBUS__PRIVATE rsbus_health rsbus__health_part(rsbus *bus, int pi, const redisReply *groups, const redisReply *dlq,
                                               int64_t max_lag, rsbus__text *t) {
    rsbus_health h = RSBUS_HEALTHY;
    rsbus_group_info g;
    const char *key = bus->parts[pi].key;
    char pre[RSBUS__NAME_MAX + 40];
    pre[0] = 0;
    if (bus->nparts > 1) snprintf(pre, sizeof pre, "partition %d (%s): ", pi, key);
    if (groups && groups->type == REDIS_REPLY_ARRAY) {
        /* a publish_only bus (a publisher, an admin tool) judges its group only if it exists */
        int found = rsbus__find_group(groups, bus->cfg.group, &g) == 1;
        if (!found && (!bus->cfg.publish_only || bus->group_named)) {
            h = RSBUS_DEGRADED;
            rsbus__textf(t, "%sgroup %s does not exist; ", pre, bus->cfg.group);
        }
        else if (found) {
            if (g.lag < 0) rsbus__textf(t, "%slag unknown (judging by pending); ", pre);
            if (g.lag > max_lag) { h = RSBUS_DEGRADED; rsbus__textf(t, "%slag %lld > %lld; ", pre, (long long)g.lag, (long long)max_lag); }
            if (g.pending > max_lag) { h = RSBUS_DEGRADED; rsbus__textf(t, "%spending %lld > %lld; ", pre, (long long)g.pending, (long long)max_lag); }
        }
    } else if (groups && groups->type == REDIS_REPLY_ERROR) {
        char text[120];
        rsbus__clean(groups->str, groups->len, text, sizeof text);
        h = RSBUS_DEGRADED;
        if (rsbus__reply_fail(bus, groups, "XINFO GROUPS") == RSBUS_E_NOTFOUND)
            rsbus__textf(t, "%sstream %s does not exist; ", pre, key);
        else rsbus__textf(t, "%scannot read the groups of %s (%s); ", pre, key, text);
    }
    if (dlq && dlq->type == REDIS_REPLY_INTEGER && dlq->integer > 0) {
        h = RSBUS_DEGRADED;
        rsbus__textf(t, "%sdead-letter stream holds %lld entr%s; ", pre, (long long)dlq->integer, dlq->integer == 1 ? "y" : "ies");
    }
    return h;
}

/* >>failover health: ROLE, read by rsbus_health_check and rsbus_server_info_get */
/* Reads a ROLE reply (the caller queued ROLE): NULL in *out when it was refused (an ACL without ROLE). */
RSBUS__PRIVATE rsbus_result rsbus__recv_role(rsbus__conn *cn, redisReply **out) {
    rsbus_result r = rsbus__recv(cn, out, "ROLE");
    if (r != RSBUS_OK) return r;
    if ((*out)->type == REDIS_REPLY_ERROR) { *out = NULL; return RSBUS_OK; }
    if ((*out)->type != REDIS_REPLY_ARRAY || (*out)->elements < 1 || !rsbus__is_str((*out)->element[0]))
        return rsbus__shape_fail(cn, "ROLE");
    return RSBUS_OK;
}
/* The replicas in a master's ROLE reply (those it lists are connected and in sync), -1 for another role. */
RSBUS__PRIVATE int rsbus__role_replicas(const redisReply *role) {
    if (!rsbus__str_eq(role->element[0], "master")) return -1;
    if (role->elements < 3 || role->element[2]->type != REDIS_REPLY_ARRAY) return 0;
    return role->element[2]->elements > INT_MAX ? INT_MAX : (int)role->element[2]->elements;
}
/* The server this bus reached, as "host:port" or the unix path. */
RSBUS__PRIVATE void rsbus__server_addr(const rsbus *bus, char *out, size_t size) {
    const rsbus__conn *cn = &bus->conn;
    const char *host = cn->port ? cn->host : bus->url.host;
    int port = cn->port ? cn->port : bus->url.port;
    if (bus->url.kind == RSBUS__URL_UNIX) snprintf(out, size, "%s", bus->url.path);
    else if (strchr(host, ':')) snprintf(out, size, "[%s]:%d", host, port);
    else snprintf(out, size, "%s:%d", host, port);
}
/* Health's judgement of ROLE: DEGRADED when the server is not a master, or has fewer replicas in sync
   than publish_wait_replicas (every publish would answer RSBUS_E_REPLICAS). */
RSBUS__PRIVATE rsbus_health rsbus__role_health(rsbus *bus, const redisReply *role, rsbus_health h, rsbus__text *t) {
    char addr[300], what[16];
    int n = rsbus__role_replicas(role);
    rsbus__server_addr(bus, addr, sizeof addr);
    if (n < 0) {
        rsbus__clean(role->element[0]->str, role->element[0]->len, what, sizeof what);
        rsbus__textf(t, "%s is a %s, not a master; ", addr, what);
        return RSBUS_DEGRADED;
    }
    if (bus->cfg.publish_wait_replicas > n) {
        rsbus__textf(t, "master %s has %d replica%s in sync, publish_wait_replicas is %d (publishes answer "
                     "RSBUS_E_REPLICAS); ", addr, n, n == 1 ? "" : "s", bus->cfg.publish_wait_replicas);
        return RSBUS_DEGRADED;
    }
    return h;
}

RSBUS__PUBLIC rsbus_result rsbus_server_info_get(rsbus *bus, rsbus_server_info *out) {
    rsbus__conn *cn;
    redisReply *role = NULL;
    rsbus_result r;
    if (out) { memset(out, 0, sizeof *out); out->replicas = -1; }
    if (!bus || !out) return RSBUS_E_ARG;
    cn = &bus->conn;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    rsbus__cmd(cn); rsbus__lit(cn, "ROLE"); rsbus__cmd_end(cn);
    if ((r = rsbus__recv_role(cn, &role)) != RSBUS_OK) return r;
    rsbus__server_addr(bus, out->addr, sizeof out->addr);
    out->sentinel = bus->url.sentinel;
    if (role) {
        rsbus__clean(role->element[0]->str, role->element[0]->len, out->role, sizeof out->role);
        out->replicas = rsbus__role_replicas(role);
    }
    return RSBUS_OK;
}

RSBUS__PUBLIC rsbus_health rsbus_health_check(rsbus *bus, int64_t max_lag, char *why, size_t why_size) {
    rsbus__conn *cn;
    redisReply *ping = NULL, *policy = NULL, **groups = NULL, **dlq = NULL;
    rsbus__text t;
    rsbus_health h = RSBUS_HEALTHY;
    rsbus_result r;
    redisReply *role = NULL;
    int ask_groups, ask_policy, ask_role, pi;
    t.buf = why; t.size = why_size; t.len = 0;
    if (why && why_size) why[0] = 0;
    if (!bus) return RSBUS_UNHEALTHY;
    cn = rsbus__part_conn(bus, 0);
    bus->err[0] = 0;
    /* a publisher that names no group asks only whether Redis answers (and its eviction policy) */
    ask_groups = !bus->cfg.publish_only || bus->group_named;
    ask_policy = !bus->no_config;
    ask_role = bus->cfg.publish_wait_replicas > 0 || bus->url.sentinel;   /* replicas matter (>>failover health) */
    r = rsbus__ensure(bus);
    if (r == RSBUS_OK && ask_groups) {
        groups = (redisReply **)rsbus__arena_alloc(bus, 2 * (size_t)bus->nparts * sizeof *groups);
        if (!groups) r = rsbus__fail(bus, RSBUS_E_NOMEM, "health: out of memory");
        else { memset(groups, 0, 2 * (size_t)bus->nparts * sizeof *groups); dlq = groups + bus->nparts; }
    }
    if (r == RSBUS_OK) {
        rsbus__cmd(cn); rsbus__lit(cn, "PING"); rsbus__cmd_end(cn);
        for (pi = 0; ask_groups && pi < bus->nparts; pi++) {   /* every partition's, all sent before any is read */
            rsbus__conn *pc = rsbus__part_conn(bus, pi);
            rsbus__queue_xinfo_part(bus, pi, "GROUPS", NULL);
            rsbus__cmd(pc); rsbus__lit(pc, "XLEN"); rsbus__arg(pc, bus->parts[pi].dlq_key, bus->parts[pi].dlq_key_len);
            rsbus__cmd_end(pc);
        }
        if (ask_policy) {
            rsbus__cmd(cn); rsbus__lit(cn, "CONFIG"); rsbus__lit(cn, "GET"); rsbus__argz(cn, "maxmemory-policy"); rsbus__cmd_end(cn);
        }
        if (ask_role) { rsbus__cmd(cn); rsbus__lit(cn, "ROLE"); rsbus__cmd_end(cn); }
        r = rsbus__recv(cn, &ping, "health");
        for (pi = 0; r == RSBUS_OK && ask_groups && pi < bus->nparts; pi++) {
            r = rsbus__recv(rsbus__part_conn(bus, pi), &groups[pi], "health");
            if (r == RSBUS_OK) r = rsbus__recv(rsbus__part_conn(bus, pi), &dlq[pi], "health");
        }
        if (r == RSBUS_OK && ask_policy) r = rsbus__recv(cn, &policy, "health");
        if (r == RSBUS_OK && ask_role) r = rsbus__recv_role(cn, &role);
    }
    if (r != RSBUS_OK) {
        rsbus__textf(&t, "Redis unreachable: %s", bus->err);
        return RSBUS_UNHEALTHY;
    }
    if (ping->type == REDIS_REPLY_ERROR) {
        (void)rsbus__reply_fail(bus, ping, "PING");
        rsbus__textf(&t, "Redis refused PING: %s", bus->err);
        return RSBUS_UNHEALTHY;
    }
    for (pi = 0; ask_groups && pi < bus->nparts; pi++) {   /* the worst partition, each one named */
        rsbus_health ph = rsbus__health_part(bus, pi, groups[pi], dlq[pi], max_lag, &t);
        if (ph > h) h = ph;
    }
    if (policy && policy->type == REDIS_REPLY_ERROR) {   /* not permitted (a least-privilege user): stop asking */
        bus->no_config = 1;
        rsbus__textf(&t, "maxmemory-policy not checked (CONFIG GET refused); ");
    } else if (policy && policy->type == REDIS_REPLY_ARRAY && policy->elements == 2 && rsbus__is_str(policy->element[1]) &&
               policy->element[1]->len >= 8 && !memcmp(policy->element[1]->str, "allkeys-", 8)) {
        char pol[32];
        rsbus__clean(policy->element[1]->str, policy->element[1]->len, pol, sizeof pol);
        h = RSBUS_DEGRADED;
        rsbus__textf(&t, "maxmemory-policy %s can evict the stream (use noeviction or a volatile-* policy); ", pol);
    }
    if (role) h = rsbus__role_health(bus, role, h, &t);
    if (h == RSBUS_HEALTHY && t.len == 0) rsbus__textf(&t, "ok");
    if (why && why_size && t.len >= 2 && t.len < why_size && why[t.len - 2] == ';') why[t.len - 2] = 0;
    return h;
}

RSBUS__PUBLIC void rsbus_stats_get(const rsbus *bus, rsbus_stats *out) {
    if (!out) return;
    if (!bus) { memset(out, 0, sizeof *out); return; }
    *out = bus->st;
}

/* Writes s as a Prometheus label value: backslash, quote and newline escaped. */
RSBUS__PRIVATE void rsbus__text_label(rsbus__text *t, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') rsbus__textf(t, "\\\\");
        else if (*s == '"') rsbus__textf(t, "\\\"");
        else if (*s == '\n') rsbus__textf(t, "\\n");
        else rsbus__textf(t, "%c", *s);
    }
}

RSBUS__PUBLIC size_t rsbus_metrics_text(rsbus *bus, char *buf, size_t size) {
    /* consumer: 1 for the counters only a consumer bus moves (left out for a publish_only bus) */
    static const struct { const char *name, *help; size_t off; int consumer; } counters[] = {
        { "published", "Events published.", offsetof(rsbus_stats, published), 0 },
        { "publish_errors", "Events whose publish failed.", offsetof(rsbus_stats, publish_errors), 0 },
        { "delivered", "Entries handed to this consumer.", offsetof(rsbus_stats, delivered), 1 },
        { "acked", "Entries acknowledged after success.", offsetof(rsbus_stats, acked), 1 },
        { "retried", "Failed attempts left pending for a retry.", offsetof(rsbus_stats, retried), 1 },
        { "dead_lettered", "Entries moved to the dead-letter stream.", offsetof(rsbus_stats, dead_lettered), 1 },
        { "malformed", "Dead-lettered entries that could not be decoded.", offsetof(rsbus_stats, malformed), 1 },
        { "unhandled", "Entries acknowledged with no matching handler.", offsetof(rsbus_stats, unhandled), 1 },
        { "claimed", "Pending entries claimed from idle consumers.", offsetof(rsbus_stats, claimed), 1 },
        { "deleted_while_pending", "Entries deleted or trimmed while pending.", offsetof(rsbus_stats, deleted_while_pending), 1 },
        { "reconnects", "Reconnections to Redis.", offsetof(rsbus_stats, reconnects), 0 },
        { "replayed", "Dead letters replayed.", offsetof(rsbus_stats, replayed), 0 },
        { "deduped", "Repeated event ids skipped.", offsetof(rsbus_stats, deduped), 1 },
        { "spooled", "Events written to the offline spool.", offsetof(rsbus_stats, spooled), 0 },
        { "trimmed_unread", "Entries MAXLEN trimming removed before the group read them.", offsetof(rsbus_stats, trimmed_unread), 1 },
        { "trimmed", "Entries removed by trimming to what every group acknowledged.", offsetof(rsbus_stats, trimmed), 0 },
        { "replica_shortfalls", "Publishes fewer replicas confirmed than publish_wait_replicas.", offsetof(rsbus_stats, replica_shortfalls), 0 }
    };
    rsbus__text t;
    rsbus_stream_info si;
    redisReply **reps = NULL;
    rsbus_group_info *groups = NULL;
    rsbus_partition_info *parts = NULL;
    size_t i, ngroups = 0, maxg = 0, nparts = 0;
    int up, pi;
    t.buf = buf; t.size = size; t.len = 0;
    if (buf && size) buf[0] = 0;
    if (!bus) return 0;
    if (bus->nparts > 1) {   /* each partition's numbers too, beside the totals */
        parts = (rsbus_partition_info *)rsbus__alloc(&bus->a, (size_t)bus->nparts * sizeof *parts);
        if (parts && rsbus_partitions_list(bus, parts, (size_t)bus->nparts, &nparts) != RSBUS_OK) nparts = 0;
    }
    for (i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        uint64_t v;
        if (counters[i].consumer && bus->cfg.publish_only) continue;
        memcpy(&v, (const char *)&bus->st + counters[i].off, sizeof v);
        rsbus__textf(&t, "# HELP rsbus_%s_total %s\n# TYPE rsbus_%s_total counter\nrsbus_%s_total{stream=\"",
                     counters[i].name, counters[i].help, counters[i].name, counters[i].name);
        rsbus__text_label(&t, bus->key);
        rsbus__textf(&t, "\",group=\"");
        rsbus__text_label(&t, bus->cfg.group);
        rsbus__textf(&t, "\"} %llu\n", (unsigned long long)v);
    }
    {
        rsbus_result r = rsbus_stream_info_get(bus, &si);
        int have = r == RSBUS_OK;
        up = have || r == RSBUS_E_AUTH || r == RSBUS_E_NOTFOUND || r == RSBUS_E_REDIS;   /* it answered */
        if (have && rsbus__xinfo_groups_all(bus, &reps) == RSBUS_OK) {   /* merged over the partitions */
            for (pi = 0; pi < bus->nparts; pi++) maxg += reps[pi] ? reps[pi]->elements : 0;
            groups = (rsbus_group_info *)rsbus__arena_alloc(bus, (maxg ? maxg : 1) * sizeof *groups);
            if (groups) rsbus__groups_merge(bus, reps, groups, maxg, &ngroups);
        }
        rsbus__textf(&t, "# HELP rsbus_up Whether Redis answered this scrape.\n# TYPE rsbus_up gauge\nrsbus_up %d\n", up);
        up = have;
    }
    if (up) {
        rsbus__textf(&t, "# HELP rsbus_stream_length Entries in the stream.\n# TYPE rsbus_stream_length gauge\n"
                         "rsbus_stream_length{stream=\"");
        rsbus__text_label(&t, bus->key);
        rsbus__textf(&t, "\"} %lld\n", (long long)si.length);
        for (i = 0; i < nparts; i++) {
            rsbus__textf(&t, "rsbus_stream_length{stream=\"");
            rsbus__text_label(&t, bus->key);
            rsbus__textf(&t, "\",partition=\"%d\"} %lld\n", parts[i].index, (long long)parts[i].length);
        }
        rsbus__textf(&t, "# HELP rsbus_dlq_length Entries in the dead-letter stream.\n# TYPE rsbus_dlq_length gauge\n"
                         "rsbus_dlq_length{stream=\"");
        rsbus__text_label(&t, bus->key);
        rsbus__textf(&t, "\"} %lld\n", (long long)si.dlq_length);
        for (i = 0; i < nparts; i++) {
            rsbus__textf(&t, "rsbus_dlq_length{stream=\"");
            rsbus__text_label(&t, bus->key);
            rsbus__textf(&t, "\",partition=\"%d\"} %lld\n", parts[i].index, (long long)parts[i].dlq_length);
        }
    }
    if (groups) {
        static const char *const gauges[3][2] = {
            { "lag", "Entries not yet delivered to the group (-1: unknown)." },
            { "pending", "Entries delivered to the group and not yet acknowledged." },
            { "consumers", "Consumers of the group." } };
        size_t k;
        for (k = 0; k < 3; k++) {
            rsbus__textf(&t, "# HELP rsbus_group_%s %s\n# TYPE rsbus_group_%s gauge\n", gauges[k][0], gauges[k][1], gauges[k][0]);
            for (i = 0; i < ngroups && i < maxg; i++) {
                const rsbus_group_info g = groups[i];
                int64_t v = k == 0 ? g.lag : k == 1 ? g.pending : g.consumers;
                rsbus__textf(&t, "rsbus_group_%s{stream=\"", gauges[k][0]);
                rsbus__text_label(&t, bus->key);
                rsbus__textf(&t, "\",group=\"");
                rsbus__text_label(&t, g.name);
                rsbus__textf(&t, "\"} %lld\n", (long long)v);
            }
            for (i = 0; k < 2 && i < nparts; i++) {   /* this bus's group in each partition */
                rsbus__textf(&t, "rsbus_group_%s{stream=\"", gauges[k][0]);
                rsbus__text_label(&t, bus->key);
                rsbus__textf(&t, "\",group=\"");
                rsbus__text_label(&t, bus->cfg.group);
                rsbus__textf(&t, "\",partition=\"%d\"} %lld\n", parts[i].index,
                             (long long)(k == 0 ? parts[i].lag : parts[i].pending));
            }
        }
    }
    if (parts) rsbus__free(&bus->a, parts, (size_t)bus->nparts * sizeof *parts);
    return t.len;
}
/* >>operating: consumers, tail, clock, history */
#ifndef RSBUS_NO_ADMIN
RSBUS__PUBLIC rsbus_result rsbus_consumers_list(rsbus *bus, const char *group, rsbus_consumer_info *out, size_t max,
                                                size_t *count) {
    rsbus__conn *cn;
    redisReply *rep = NULL;
    rsbus_result r;
    size_t i, j, n = 0;
    int pi;
    if (count) *count = 0;
    if (!bus || (!out && max)) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (!group) group = bus->cfg.group;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    /* on a partitioned stream every partition's, merged by name: pending summed, the shortest idle */
    for (pi = 0; pi < bus->nparts; pi++) {
        cn = rsbus__part_conn(bus, pi);
        rsbus__queue_xinfo_part(bus, pi, "CONSUMERS", group);
        if ((r = rsbus__call(cn, &rep, "XINFO CONSUMERS")) != RSBUS_OK) {
            if (rsbus__rcode_is(bus, "NOGROUP")) return rsbus__fail(bus, RSBUS_E_NOTFOUND, "consumers: no group %.100s on %.100s",
                                                               group, bus->parts[pi].key);
            return r;
        }
        if (rep->type != REDIS_REPLY_ARRAY) return rsbus__shape_fail(cn, "XINFO CONSUMERS");
        for (i = 0; i < rep->elements; i++) {
            rsbus_consumer_info ci;
            const redisReply *c = rep->element[i];
            memset(&ci, 0, sizeof ci);
            rsbus__copy_reply_str(rsbus__map_get(c, "name"), ci.name, sizeof ci.name);
            if (!ci.name[0]) continue;
            (void)rsbus__reply_i64(rsbus__map_get(c, "pending"), &ci.pending);
            (void)rsbus__reply_i64(rsbus__map_get(c, "idle"), &ci.idle_ms);
            if (!rsbus__reply_i64(rsbus__map_get(c, "inactive"), &ci.inactive_ms)) ci.inactive_ms = -1;   /* 7.2+ */
            for (j = 0; pi > 0 && j < RSBUS__MIN(n, max) && strcmp(out[j].name, ci.name) != 0; j++) {}
            if (pi > 0 && j < RSBUS__MIN(n, max)) {
                out[j].pending += ci.pending;
                out[j].idle_ms = RSBUS__MIN(out[j].idle_ms, ci.idle_ms);
                if (ci.inactive_ms >= 0 && (out[j].inactive_ms < 0 || ci.inactive_ms < out[j].inactive_ms))
                    out[j].inactive_ms = ci.inactive_ms;
                continue;
            }
            if (pi > 0 && n >= max) continue;   /* beyond max: counted by the first partition already */
            if (n < max) out[n] = ci;
            n++;
        }
    }
    if (count) *count = n;
    return RSBUS_OK;
}

/* Deletes a consumer only if it still exists and holds nothing pending, atomically: between a check and
   a delete sent separately the consumer could read entries, and XGROUP DELCONSUMER would drop them from
   the PEL. Returns 1 deleted, 0 gone already, -1 it holds entries. */
RSBUS__PRIVATE rsbus_result rsbus__consumers_gc_part(rsbus *bus, int pi, const char *group, int64_t idle_ms,
                                                     int64_t *removed);
static const char rsbus__gc_script[] =
    "local found = false "
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do "
    "  for i = 1, #c, 2 do if c[i] == 'name' and c[i + 1] == ARGV[2] then found = true end end "
    "end "
    "if not found then return 0 end "
    "if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end "
    "redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) "
    "return 1";

RSBUS__PUBLIC rsbus_result rsbus_consumers_gc(rsbus *bus, const char *group, int64_t idle_ms, int64_t *removed) {
    rsbus_result r;
    int64_t gone = 0, n = 0;
    int pi;
    if (removed) *removed = 0;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (idle_ms < 0) return rsbus__fail(bus, RSBUS_E_ARG, "consumers_gc: idle_ms must not be negative");
    if (!group) group = bus->cfg.group;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    /* in every partition (a consumer reads them all, so it is in each); removed counts the first's */
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) {
        r = rsbus__consumers_gc_part(bus, pi, group, idle_ms, &n);
        if (pi == 0) gone = n;
    }
    if (removed) *removed = gone;
    return r;
}
RSBUS__PRIVATE rsbus_result rsbus__consumers_gc_part(rsbus *bus, int pi, const char *group, int64_t idle_ms,
                                                     int64_t *removed) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    redisReply *list = NULL;
    rsbus_result r;
    size_t i;
    int64_t gone = 0;
    rsbus__queue_xinfo_part(bus, pi, "CONSUMERS", group);
    if ((r = rsbus__call(cn, &list, "XINFO CONSUMERS")) != RSBUS_OK) return r;
    if (list->type != REDIS_REPLY_ARRAY) return rsbus__shape_fail(cn, "XINFO CONSUMERS");
    /* names are used as Redis sent them (byte for byte), not as cleaned for display */
    for (i = 0; r == RSBUS_OK && i < list->elements; i++) {
        const redisReply *c = list->element[i], *name = rsbus__map_get(c, "name");
        redisReply *rep = NULL;
        int64_t pending = 0, idle = 0, inactive = -1;
        if (!rsbus__is_str(name)) continue;
        (void)rsbus__reply_i64(rsbus__map_get(c, "pending"), &pending);
        (void)rsbus__reply_i64(rsbus__map_get(c, "idle"), &idle);
        if (!rsbus__reply_i64(rsbus__map_get(c, "inactive"), &inactive)) inactive = -1;   /* 7.2+ */
        if (pending > 0 || (inactive >= 0 ? inactive : idle) < idle_ms) continue;
        if (name->len == bus->consumer_len && !memcmp(name->str, bus->cfg.consumer, bus->consumer_len)) continue;
        rsbus__cmd(cn);
        rsbus__lit(cn, "EVAL"); rsbus__arg(cn, rsbus__gc_script, sizeof rsbus__gc_script - 1);
        rsbus__lit(cn, "1"); rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len);
        rsbus__argz(cn, group); rsbus__arg(cn, name->str, name->len);
        rsbus__cmd_end(cn);
        r = rsbus__call(cn, &rep, "consumers_gc");
        if (r != RSBUS_OK) break;
        if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
            char shown[128];
            rsbus__clean(name->str, name->len, shown, sizeof shown);
            gone++;
            rsbus__log(bus, RSBUS_LOG_INFO, "deleted idle consumer %s of %s/%.100s", shown, bus->parts[pi].key, group);
        }
    }
    if (removed) *removed = gone;
    return r;
}
#else
RSBUS__PUBLIC rsbus_result rsbus_consumers_list(rsbus *bus, const char *group, rsbus_consumer_info *out, size_t max,
                                                size_t *count) {
    (void)group; (void)out; (void)max;
    if (count) *count = 0;
    return rsbus__compiled_out(bus, "rsbus_consumers_list", "RSBUS_NO_ADMIN");
}
RSBUS__PUBLIC rsbus_result rsbus_consumers_gc(rsbus *bus, const char *group, int64_t idle_ms, int64_t *removed) {
    (void)group; (void)idle_ms;
    if (removed) *removed = 0;
    return rsbus__compiled_out(bus, "rsbus_consumers_gc", "RSBUS_NO_ADMIN");
}
#endif /* RSBUS_NO_ADMIN */

RSBUS__PUBLIC rsbus_result rsbus_server_time_ms(rsbus *bus, int64_t *ms) {
    rsbus__conn *cn;
    redisReply *rep = NULL;
    rsbus_result r;
    int64_t s, us;
    if (ms) *ms = 0;
    if (!bus || !ms) return RSBUS_E_ARG;
    cn = &bus->conn;
    bus->err[0] = 0;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    rsbus__cmd(cn); rsbus__lit(cn, "TIME"); rsbus__cmd_end(cn);
    if ((r = rsbus__call(cn, &rep, "TIME")) != RSBUS_OK) return r;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || !rsbus__reply_i64(rep->element[0], &s) ||
        !rsbus__reply_i64(rep->element[1], &us) || s < 0 || us < 0) {
        return rsbus__shape_fail(cn, "TIME");
    }
    *ms = s * 1000 + us / 1000;
    return RSBUS_OK;
}

#ifndef RSBUS_NO_ADMIN
/* Calls fn for each well-formed entry of an XRANGE/XREAD entries array; returns 1 if fn asked to stop. */
RSBUS__PRIVATE int rsbus__feed(rsbus *bus, const redisReply *entries, rsbus_replay_fn fn, void *user) {
    size_t i;
    for (i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        const char *rf;
        rsbus_msg m;
        if (e->element[1]->type != REDIS_REPLY_ARRAY) continue;
        if (rsbus__decode(bus, e, &m, &rf)) continue;
        m.deliveries = 0;
        m.reason = NULL;
        if (fn(&m, user)) return 1;
    }
    return 0;
}

/* ---- history of a partitioned stream: every partition's entries merged in id order ---- */
typedef struct rsbus__hent { uint64_t ms, seq; int part; const redisReply *e; } rsbus__hent;
RSBUS__PRIVATE int rsbus__hent_cmp(const void *a, const void *b) {
    const rsbus__hent *x = (const rsbus__hent *)a, *y = (const rsbus__hent *)b;
    if (x->ms != y->ms) return x->ms < y->ms ? -1 : 1;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return x->part - y->part;
}
/* Calls fn for one entry of partition pi (a well-formed one); 1 when fn asked to stop. */
RSBUS__PRIVATE int rsbus__feed_one(rsbus *bus, int pi, const redisReply *e, rsbus_replay_fn fn, void *user) {
    const char *rf;
    rsbus_msg m;
    if (e->element[1]->type != REDIS_REPLY_ARRAY) return 0;
    if (rsbus__decode(bus, e, &m, &rf)) return 0;
    m.stream = bus->parts[pi].key;
    m.partition = pi;
    m.deliveries = 0;
    m.reason = NULL;
    return fn(&m, user) != 0;
}
/* rsbus_tail's reply on a partitioned stream (XREAD of every partition after one id): its entries in id
   order; last_id becomes the newest. An entry added to one partition later but within the millisecond
   of the newest one shown (a lower sequence number) is not shown: tail is for watching. */
RSBUS__PRIVATE int rsbus__tail_parts(rsbus *bus, const redisReply *rep, char last_id[RSBUS_ID_SIZE],
                                     rsbus_replay_fn fn, void *user) {
    rsbus__conn *cn = rsbus__part_conn(bus, 0);
    rsbus__hent *h;
    size_t i, j, n = 0, total = 0;
    int stop = 0;
    if (rep->type == REDIS_REPLY_NIL) return 0;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements > (size_t)bus->nparts) return rsbus__shape_fail(cn, "XREAD");
    for (i = 0; i < rep->elements; i++) {
        const redisReply *st = rep->element[i];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || !rsbus__is_str(st->element[0]) ||
            st->element[1]->type != REDIS_REPLY_ARRAY || st->element[1]->elements > (size_t)bus->cfg.batch_size ||
            rsbus__part_of_key(bus, st->element[0]->str, st->element[0]->len) < 0)
            return rsbus__shape_fail(cn, "XREAD");
        total += st->element[1]->elements;
    }
    h = (rsbus__hent *)rsbus__arena_alloc(bus, (total ? total : 1) * sizeof *h);
    if (!h) return rsbus__fail(bus, RSBUS_E_NOMEM, "tail: out of memory");
    for (i = 0; i < rep->elements; i++) {
        const redisReply *st = rep->element[i];
        int pi = rsbus__part_of_key(bus, st->element[0]->str, st->element[0]->len);
        for (j = 0; j < st->element[1]->elements; j++) {
            const redisReply *e = st->element[1]->element[j];
            if (!rsbus__entry_ok(e) || !rsbus__id_parse(e->element[0]->str, e->element[0]->len, &h[n].ms, &h[n].seq))
                return rsbus__shape_fail(cn, "XREAD");
            h[n].part = pi;
            h[n].e = e;
            n++;
        }
    }
    qsort(h, n, sizeof *h, rsbus__hent_cmp);
    if (n) memcpy(last_id, h[n - 1].e->element[0]->str, h[n - 1].e->element[0]->len + 1);
    for (i = 0; i < n && !stop; i++) stop = rsbus__feed_one(bus, h[i].part, h[i].e, fn, user);
    return (int)n;
}
/* rsbus_replay_range on a partitioned stream: a page (batch_size) of each partition per round trip, and
   every entry up to the lowest last id of the full pages fed in id order (what lies beyond it is read
   again next round), so the merge never feeds an entry before an older one of another partition. */
RSBUS__PRIVATE rsbus_result rsbus__replay_parts(rsbus *bus, const char *from_id, const char *to_id,
                                                rsbus_replay_fn fn, void *user) {
    char (*cur)[RSBUS_ID_SIZE + 1];
    redisReply **reps;
    size_t *pos;
    int *done, pi, left;
    reps = (redisReply **)rsbus__arena_alloc(bus, (size_t)bus->nparts *
                                             (sizeof *reps + sizeof *pos + sizeof *done + sizeof *cur));
    if (!reps) return rsbus__fail(bus, RSBUS_E_NOMEM, "replay_range: out of memory");
    pos = (size_t *)(void *)(reps + bus->nparts);   /* pointers, sizes, ints, then bytes: each one aligned */
    done = (int *)(void *)(pos + bus->nparts);
    cur = (char (*)[RSBUS_ID_SIZE + 1])(void *)(done + bus->nparts);
    for (pi = 0; pi < bus->nparts; pi++) { snprintf(cur[pi], sizeof cur[pi], "%s", from_id); done[pi] = 0; }
    for (left = bus->nparts; left > 0;) {
        uint64_t bm = 0, bs = 0;
        int bound = 0;
        rsbus_result r = RSBUS_OK;
        for (pi = 0; pi < bus->nparts; pi++) {
            rsbus__conn *cn = rsbus__part_conn(bus, pi);
            if (done[pi]) continue;
            rsbus__cmd(cn);
            rsbus__lit(cn, "XRANGE"); rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len);
            rsbus__argz(cn, cur[pi]); rsbus__argz(cn, to_id);
            rsbus__lit(cn, "COUNT"); rsbus__argi(cn, bus->cfg.batch_size);
            rsbus__cmd_end(cn);
        }
        for (pi = 0; pi < bus->nparts; pi++) {
            rsbus__conn *cn = rsbus__part_conn(bus, pi);
            size_t i;
            reps[pi] = NULL;
            pos[pi] = 0;
            if (done[pi]) continue;
            if (r != RSBUS_OK) continue;
            if ((r = rsbus__call(cn, &reps[pi], "XRANGE")) != RSBUS_OK) continue;
            if (reps[pi]->type != REDIS_REPLY_ARRAY || reps[pi]->elements > (size_t)bus->cfg.batch_size)
                return rsbus__shape_fail(cn, "XRANGE");
            for (i = 0; i < reps[pi]->elements; i++)
                if (!rsbus__entry_ok(reps[pi]->element[i])) return rsbus__shape_fail(cn, "XRANGE");
            if (reps[pi]->elements == (size_t)bus->cfg.batch_size) {   /* more may follow: a bound */
                const redisReply *last = reps[pi]->element[reps[pi]->elements - 1]->element[0];
                uint64_t m, q;
                if (!rsbus__id_parse(last->str, last->len, &m, &q)) return rsbus__shape_fail(cn, "XRANGE");
                if (!bound || rsbus__id_less(m, q, bm, bs)) { bm = m; bs = q; bound = 1; }
            }
        }
        if (r != RSBUS_OK) return r;
        for (;;) {   /* feed the oldest head, up to the bound */
            int best = -1;
            uint64_t hm = 0, hs = 0;
            const redisReply *e;
            for (pi = 0; pi < bus->nparts; pi++) {
                uint64_t m, q;
                const redisReply *id;
                if (!reps[pi] || pos[pi] >= reps[pi]->elements) continue;
                id = reps[pi]->element[pos[pi]]->element[0];
                if (!rsbus__id_parse(id->str, id->len, &m, &q)) return rsbus__shape_fail(rsbus__part_conn(bus, pi), "XRANGE");
                if (best < 0 || rsbus__id_less(m, q, hm, hs)) { best = pi; hm = m; hs = q; }
            }
            if (best < 0 || (bound && rsbus__id_less(bm, bs, hm, hs))) break;
            e = reps[best]->element[pos[best]++];
            snprintf(cur[best], sizeof cur[best], "(%s", e->element[0]->str);
            if (rsbus__feed_one(bus, best, e, fn, user)) return RSBUS_OK;
        }
        for (pi = 0; pi < bus->nparts; pi++)   /* a short page all fed: that partition is through */
            if (reps[pi] && reps[pi]->elements < (size_t)bus->cfg.batch_size && pos[pi] == reps[pi]->elements) {
                done[pi] = 1;
                left--;
            }
    }
    return RSBUS_OK;
}

#ifndef RSBUS_NO_CLUSTER
/* rsbus_tail's read on a cluster's partitions, whose keys are in different slots: each partition is read
   on its own (all sent at once, without BLOCK; again every RSBUS__SLICE_MS while nothing came, until
   timeout_ms), and the answers are put together as the one multi-stream reply rsbus__tail_parts takes. */
RSBUS__PRIVATE rsbus_result rsbus__tail_nodes(rsbus *bus, const char *from, int timeout_ms, redisReply **out) {
    int64_t deadline = rsbus__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        redisReply *all = (redisReply *)rsbus__arena_alloc(bus, sizeof *all), *rep = NULL;
        redisReply **el = (redisReply **)rsbus__arena_alloc(bus, (size_t)bus->nparts * sizeof *el);
        rsbus_result r;
        int pi;
        int64_t left;
        if (!all || !el) return rsbus__fail(bus, RSBUS_E_NOMEM, "tail: out of memory");
        memset(all, 0, sizeof *all);
        all->type = REDIS_REPLY_ARRAY;
        all->element = el;
        for (pi = 0; pi < bus->nparts; pi++) {
            rsbus__conn *cn = rsbus__part_conn(bus, pi);
            rsbus__cmd(cn);
            rsbus__lit(cn, "XREAD"); rsbus__lit(cn, "COUNT"); rsbus__argi(cn, bus->cfg.batch_size);
            rsbus__lit(cn, "STREAMS"); rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len); rsbus__argz(cn, from);
            rsbus__cmd_end(cn);
        }
        for (pi = 0; pi < bus->nparts; pi++) {
            rsbus__conn *cn = rsbus__part_conn(bus, pi);
            if (cn->nsegs && (r = rsbus__flush(cn, "XREAD")) != RSBUS_OK) return r;
        }
        for (pi = 0; pi < bus->nparts; pi++) {
            rsbus__conn *cn = rsbus__part_conn(bus, pi);
            if ((r = rsbus__call(cn, &rep, "XREAD")) != RSBUS_OK) return r;
            if (rep->type == REDIS_REPLY_NIL) continue;
            if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1) return rsbus__shape_fail(cn, "XREAD");
            el[all->elements++] = rep->element[0];
        }
        left = deadline - rsbus__mono_ms();
        if (all->elements || left <= 0) { *out = all; return RSBUS_OK; }
        rsbus__sleep_ms(RSBUS__MIN(left, RSBUS__SLICE_MS));
    }
}
#endif

RSBUS__PUBLIC int rsbus_tail(rsbus *bus, char last_id[RSBUS_ID_SIZE], int timeout_ms, rsbus_replay_fn fn, void *user) {
    rsbus__conn *cn;
    redisReply *rep = NULL;
    const redisReply *entries = NULL;
    rsbus_result r;
    const char *from;
    size_t n;
    int stopped;
    if (!bus || !last_id || !fn) return RSBUS_E_ARG;
    cn = &bus->conn;
    bus->err[0] = 0;
    from = last_id[0] ? last_id : "$";
    if (strcmp(from, "$") != 0 && !rsbus__id_arg_ok(from)) return rsbus__fail(bus, RSBUS_E_ARG, "tail: last_id is not a stream id");
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    if (!strcmp(from, "$")) {
        /* resolve "$" to the newest id now, so that entries added between two calls are not missed */
        rsbus_stream_info si;
        r = rsbus_stream_info_get(bus, &si);
        if (r == RSBUS_E_NOTFOUND) strcpy(si.last_id, "0-0");
        else if (r != RSBUS_OK) return r;
        memcpy(last_id, si.last_id, strlen(si.last_id) + 1);
        from = last_id;
    }
#ifndef RSBUS_NO_CLUSTER
    if (!rsbus__one_conn(bus)) {
        if ((r = rsbus__tail_nodes(bus, from, timeout_ms, &rep)) != RSBUS_OK) return r;
        return rsbus__tail_parts(bus, rep, last_id, fn, user);
    }
#endif
    rsbus__cmd(cn);
    rsbus__lit(cn, "XREAD");
    rsbus__lit(cn, "COUNT"); rsbus__argi(cn, bus->cfg.batch_size);
    if (timeout_ms > 0) { rsbus__lit(cn, "BLOCK"); rsbus__argi(cn, timeout_ms); }
    rsbus__lit(cn, "STREAMS");
    if (bus->nparts > 1) {   /* every partition after the same id: stream ids are times */
        int pi;
        for (pi = 0; pi < bus->nparts; pi++) rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len);
        for (pi = 0; pi < bus->nparts; pi++) rsbus__argz(cn, from);
    } else {
        rsbus__arg(cn, bus->parts[0].key, bus->parts[0].key_len); rsbus__argz(cn, from);
    }
    rsbus__cmd_end(cn);
    if ((r = rsbus__recv_block(cn, &rep, timeout_ms, &stopped, "XREAD")) != RSBUS_OK) return r;
    if (stopped) return 0;
    if (rep->type == REDIS_REPLY_ERROR) { r = rsbus__reply_fail(bus, rep, "XREAD"); return r; }
    if (bus->nparts > 1) return rsbus__tail_parts(bus, rep, last_id, fn, user);
    r = rsbus__read_entries(bus, rep, &entries, "XREAD");
    if (r != RSBUS_OK || !entries) return r;
    n = entries->elements;
    if (n) {
        const redisReply *last = entries->element[n - 1]->element[0];
        memcpy(last_id, last->str, last->len + 1);
        (void)rsbus__feed(bus, entries, fn, user);
    }
    return (int)n;
}

/* An end of a range: "-", "+", a stream id, or a bare number of milliseconds. */
RSBUS__PRIVATE int rsbus__range_end_ok(const char *s) {
    return s && (!strcmp(s, "-") || !strcmp(s, "+") || rsbus__id_arg_ok(s));
}

RSBUS__PUBLIC rsbus_result rsbus_replay_range(rsbus *bus, const char *from_id, const char *to_id,
                                              rsbus_replay_fn fn, void *user) {
    rsbus__conn *cn;
    char start[RSBUS_ID_SIZE + 1];
    rsbus_result r;
    if (!bus) return RSBUS_E_ARG;
    cn = &bus->conn;
    bus->err[0] = 0;
    if (!fn) return rsbus__fail(bus, RSBUS_E_ARG, "replay_range: fn is required");
    if (!from_id) from_id = "-";
    if (!to_id) to_id = "+";
    if (!rsbus__range_end_ok(from_id) || !rsbus__range_end_ok(to_id))
        return rsbus__fail(bus, RSBUS_E_ARG, "replay_range: ends are \"-\", \"+\", stream ids or milliseconds");
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    if (bus->nparts > 1) return rsbus__replay_parts(bus, from_id, to_id, fn, user);
    snprintf(start, sizeof start, "%s", from_id);
    for (;;) {
        redisReply *rep = NULL;
        size_t i, n;
        int stop;
        rsbus__cmd(cn);
        rsbus__lit(cn, "XRANGE"); rsbus__arg(cn, bus->parts[0].key, bus->parts[0].key_len);
        rsbus__argz(cn, start); rsbus__argz(cn, to_id);
        rsbus__lit(cn, "COUNT"); rsbus__argi(cn, bus->cfg.batch_size);
        rsbus__cmd_end(cn);
        if ((r = rsbus__call(cn, &rep, "XRANGE")) != RSBUS_OK) return r;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements > (size_t)bus->cfg.batch_size) {
            return rsbus__shape_fail(cn, "XRANGE");
        }
        n = rep->elements;
        for (i = 0; i < n; i++)
            if (!rsbus__entry_ok(rep->element[i])) return rsbus__shape_fail(cn, "XRANGE");
        stop = rsbus__feed(bus, rep, fn, user);
        if (n) snprintf(start, sizeof start, "(%s", rep->element[n - 1]->element[0]->str);
        if (stop || n < (size_t)bus->cfg.batch_size) return RSBUS_OK;
    }
}

RSBUS__PUBLIC rsbus_result rsbus_group_rewind(rsbus *bus, const char *group, const char *id) {
    rsbus__conn *cn;
    redisReply *rep = NULL;
    rsbus_result r;
    int pi;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (!group) group = bus->cfg.group;
    if (!id || (strcmp(id, "$") != 0 && !rsbus__id_arg_ok(id)))
        return rsbus__fail(bus, RSBUS_E_ARG, "group_rewind: id must be \"$\", \"0\" or a stream id");
    if (!rsbus__name_ok(group, 127)) return rsbus__fail(bus, RSBUS_E_ARG, "group_rewind: bad group name");
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    for (pi = 0; pi < bus->nparts; pi++) {   /* every partition to the same id: stream ids are times */
        cn = rsbus__part_conn(bus, pi);
        rsbus__cmd(cn);
        rsbus__lit(cn, "XGROUP"); rsbus__lit(cn, "SETID");
        rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len); rsbus__argz(cn, group); rsbus__argz(cn, id);
        rsbus__cmd_end(cn);
        if ((r = rsbus__call(cn, &rep, "XGROUP SETID")) != RSBUS_OK) {
            if (rsbus__rcode_is(bus, "NOGROUP")) return rsbus__fail(bus, RSBUS_E_NOTFOUND, "group_rewind: no group %.100s", group);
            return r;
        }
    }
    return RSBUS_OK;
}
#else
RSBUS__PUBLIC int rsbus_tail(rsbus *bus, char last_id[RSBUS_ID_SIZE], int timeout_ms, rsbus_replay_fn fn, void *user) {
    (void)last_id; (void)timeout_ms; (void)fn; (void)user;
    return rsbus__compiled_out(bus, "rsbus_tail", "RSBUS_NO_ADMIN");
}
RSBUS__PUBLIC rsbus_result rsbus_replay_range(rsbus *bus, const char *from_id, const char *to_id,
                                              rsbus_replay_fn fn, void *user) {
    (void)from_id; (void)to_id; (void)fn; (void)user;
    return rsbus__compiled_out(bus, "rsbus_replay_range", "RSBUS_NO_ADMIN");
}
RSBUS__PUBLIC rsbus_result rsbus_group_rewind(rsbus *bus, const char *group, const char *id) {
    (void)group; (void)id;
    return rsbus__compiled_out(bus, "rsbus_group_rewind", "RSBUS_NO_ADMIN");
}
#endif /* RSBUS_NO_ADMIN */

/* >>trimming */
/* What rsbus_run does every claim_interval_ms (at least 1 s apart), and rsbus_trim on demand:
   - RSBUS_TRIM_ACKED: XTRIM MINID ~ to the oldest entry some group still needs: the oldest pending entry
     of a group with pending entries, else the entry after its last delivered one. Both only move forward
     while this runs, so a floor read a moment ago is never past what a group needs now.
   - RSBUS_TRIM_MAXLEN: notices entries that trimming removed before this bus's group read them:
     (entries added - length) removed from the head, of which the group had read entries_read
     (Redis 7; on 6.2 this cannot be told). trim != NULL: also apply MAXLEN ~ now. */
/* Counts (and says) what MAXLEN trimming removed before this bus's group read it, from the stream's
   and the group's numbers: entries added - length were removed from the head, entries_read of them read. */
RSBUS__PRIVATE void rsbus__note_trimmed_unread(rsbus *bus, int pi, const rsbus_stream_info *si, const rsbus_group_info *g) {
    rsbus__part *pt = &bus->parts[pi];
    int64_t gone;
    uint64_t fresh;
    if (bus->cfg.publish_only || strcmp(g->name, bus->cfg.group) != 0 || si->entries_added < 0 || g->entries_read < 0)
        return;
    gone = si->entries_added - si->length - g->entries_read;
    if (gone <= 0 || (uint64_t)gone <= pt->trimmed_unread_seen) return;
    fresh = (uint64_t)gone - pt->trimmed_unread_seen;
    bus->st.trimmed_unread += fresh;
    pt->trimmed_unread_seen = (uint64_t)gone;
    rsbus__log(bus, RSBUS_LOG_WARN, "%llu entries of %s were trimmed before group %s read them "
               "(MAXLEN ~ %lld): raise max_len or use RSBUS_TRIM_ACKED",
               (unsigned long long)fresh, pt->key, bus->cfg.group, (long long)bus->cfg.max_len);
}
/* Lowers the floor (*fm-*fs, *have: one was found) to id m-s when it is older. */
RSBUS__PRIVATE void rsbus__floor(uint64_t m, uint64_t s, uint64_t *fm, uint64_t *fs, int *have) {
    if (!*have || rsbus__id_less(m, s, *fm, *fs)) { *fm = m; *fs = s; *have = 1; }
}
/* RSBUS_TRIM_ACKED: the oldest entry some group still needs, from the groups of an XINFO GROUPS reply:
   the entry after a group's last delivered one, and a group's oldest pending entry (XPENDING of the
   groups with pending entries, pipelined). *have 0: no group, nothing may go. */
RSBUS__PRIVATE rsbus_result rsbus__acked_floor(rsbus *bus, int pi, const redisReply *groups, uint64_t *fm, uint64_t *fs,
                                               int *have) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    rsbus_result r = RSBUS_OK, first = RSBUS_OK;
    size_t i, npend = 0;
    *have = 0;
    for (i = 0; i < groups->elements; i++) {
        rsbus_group_info g;
        uint64_t m, s;
        if (!rsbus__group_decode(groups->element[i], &g)) continue;
        if (!rsbus__id_parse(g.last_delivered_id, strlen(g.last_delivered_id), &m, &s))
            return rsbus__shape_fail(cn, "XINFO GROUPS (trim)");
        if (s == UINT64_MAX) { m++; s = 0; } else s++;
        rsbus__floor(m, s, fm, fs, have);
        if (g.pending > 0) {   /* its oldest pending entry, if it still has one when asked */
            rsbus__cmd(cn);
            rsbus__lit(cn, "XPENDING"); rsbus__arg(cn, bus->parts[pi].key, bus->parts[pi].key_len); rsbus__argz(cn, g.name);
            rsbus__cmd_end(cn);
            npend++;
        }
    }
    for (i = 0; r == RSBUS_OK && i < npend; i++) {   /* every reply is read, whatever they say */
        redisReply *rep;
        uint64_t m, s;
        r = rsbus__recv(cn, &rep, "XPENDING (trim)");
        if (r != RSBUS_OK || first != RSBUS_OK) continue;
        /* summary: [count, oldest id, newest id, consumers]; a group we cannot judge: trim nothing */
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4 && rsbus__is_str(rep->element[1]) &&
            rsbus__id_parse(rep->element[1]->str, rep->element[1]->len, &m, &s))
            rsbus__floor(m, s, fm, fs, have);
        else if (rep->type == REDIS_REPLY_ERROR) first = rsbus__reply_fail(bus, rep, "XPENDING (trim)");
        else if (!(rep->type == REDIS_REPLY_ARRAY && rep->elements == 4 && rep->element[1]->type == REDIS_REPLY_NIL))
            first = RSBUS_E_PROTOCOL;
    }
    if (r != RSBUS_OK) return r;
    if (first == RSBUS_E_PROTOCOL) return rsbus__shape_fail(cn, "XPENDING (trim)");
    return first;
}
RSBUS__PRIVATE rsbus_result rsbus__maintain_part(rsbus *bus, int pi, int64_t *trimmed) {
    rsbus__conn *cn = rsbus__part_conn(bus, pi);
    const rsbus__part *pt = &bus->parts[pi];
    redisReply *rs[2] = { NULL, NULL }, *rep = NULL;
    rsbus_stream_info si;
    rsbus_result r;
    size_t i;
    if (trimmed) *trimmed = 0;
    rsbus__queue_xinfo_part(bus, pi, "STREAM", NULL);
    rsbus__queue_xinfo_part(bus, pi, "GROUPS", NULL);
    r = rsbus__recv_n(cn, rs, 2, "XINFO (trim)");
    if (r != RSBUS_OK) return r;
    if (rs[0]->type != REDIS_REPLY_ARRAY || rs[1]->type != REDIS_REPLY_ARRAY) {
        const redisReply *e = rs[0]->type == REDIS_REPLY_ERROR ? rs[0] : rs[1];
        if (e->type != REDIS_REPLY_ERROR) return rsbus__shape_fail(cn, "XINFO (trim)");
        r = rsbus__reply_fail(bus, e, "XINFO (trim)");
        return r == RSBUS_E_NOTFOUND ? RSBUS_OK : r;   /* no stream yet: nothing to trim */
    }
    rsbus__stream_decode(rs[0], &si);
    for (i = 0; i < rs[1]->elements; i++) {
        rsbus_group_info g;
        if (!rsbus__group_decode(rs[1]->element[i], &g)) continue;
        if (g.entries_read < 0 && !strcmp(g.last_delivered_id, "0-0")) g.entries_read = 0;   /* read nothing yet */
        rsbus__note_trimmed_unread(bus, pi, &si, &g);
    }
    if (bus->cfg.trim_policy == RSBUS_TRIM_MAXLEN) {
        if (!trimmed || bus->cfg.max_len <= 0) return RSBUS_OK;   /* rsbus_run: XADD's MAXLEN trims */
        rsbus__cmd(cn);
        rsbus__lit(cn, "XTRIM"); rsbus__arg(cn, pt->key, pt->key_len);
        rsbus__lit(cn, "MAXLEN"); rsbus__lit(cn, "~"); rsbus__argi(cn, bus->cfg.max_len);
    } else {
        uint64_t fm = 0, fs = 0;
        int have = 0;
        char minid[64];
        if ((r = rsbus__acked_floor(bus, pi, rs[1], &fm, &fs, &have)) != RSBUS_OK) return r;
        if (!have) return RSBUS_OK;   /* no group: nobody has acknowledged anything yet */
        snprintf(minid, sizeof minid, "%llu-%llu", (unsigned long long)fm, (unsigned long long)fs);
        rsbus__cmd(cn);
        rsbus__lit(cn, "XTRIM"); rsbus__arg(cn, pt->key, pt->key_len);
        rsbus__lit(cn, "MINID"); rsbus__lit(cn, "~"); rsbus__argz(cn, minid);
    }
    rsbus__cmd_end(cn);
    if ((r = rsbus__call(cn, &rep, "XTRIM")) != RSBUS_OK) return r;
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
        bus->st.trimmed += (uint64_t)rep->integer;
        if (trimmed) *trimmed = (int64_t)rep->integer;
    }
    return RSBUS_OK;
}
/* Each partition in turn (MAXLEN and MINID apply to each partition's stream on its own). */
RSBUS__PRIVATE rsbus_result rsbus__maintain(rsbus *bus, int64_t *trimmed) {
    rsbus_result r = RSBUS_OK;
    int64_t n;
    int pi;
    if (trimmed) *trimmed = 0;
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) {
        r = rsbus__maintain_part(bus, pi, trimmed ? &n : NULL);
        if (trimmed && r == RSBUS_OK) *trimmed += n;
    }
    return r;
}

#ifndef RSBUS_NO_ADMIN
RSBUS__PUBLIC rsbus_result rsbus_trim(rsbus *bus, int64_t *removed) {
    int64_t n = 0;
    rsbus_result r;
    if (removed) *removed = 0;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if ((r = rsbus__ensure(bus)) != RSBUS_OK) return r;
    r = rsbus__maintain(bus, &n);
    if (removed) *removed = n;
    return r;
}
#else /* rsbus_run still trims (rsbus__maintain): only the call on demand is out */
RSBUS__PUBLIC rsbus_result rsbus_trim(rsbus *bus, int64_t *removed) {
    if (removed) *removed = 0;
    return rsbus__compiled_out(bus, "rsbus_trim", "RSBUS_NO_ADMIN");
}
#endif /* RSBUS_NO_ADMIN */

#ifndef RSBUS_NO_SPOOL
/* >>offline spool (spool_path)
   A bus with spool_path set publishes through the spool: when Redis cannot be reached (RSBUS_E_IO or
   RSBUS_E_TIMEOUT) the events are appended to the spool file and the publish returns RSBUS_SPOOLED; the
   spooled events are sent, in order and in MULTI/EXEC chunks, before any later publish of the bus
   reaches Redis (by the next publish, by rsbus_run about once a second, or by rsbus_spool_flush).

   The file: a 16-byte header, "RSBSPL1\n" and the little-endian 64-bit offset of the first record not
   yet sent, then records. A record is the little-endian 32-bit length of its payload, the CRC-32 (IEEE,
   as zlib) of the payload, and the payload: the event's stream fields, name and value in turn, each as
   a RESP bulk string ("$3\r\nkey\r\n"); on a partitioned bus the payload starts with one pair of its
   own, an empty name and the partition's number ("$0\r\n\r\n$1\r\n2\r\n"), which is not sent. A record is written with one write; with spool_fsync 0 it is
   fdatasync'ed before the publish returns. Opening the bus checks every record: the first whose length
   or CRC is wrong (a record torn by a crash) is cut off with everything after it, and the log says how
   many bytes went. A chunk that was sent advances the header's offset; once everything is sent the
   file is truncated to its header. A crash between a chunk reaching Redis and the offset being written
   sends that chunk again (the same event ids: at-least-once, like everything else). The bus holds an
   flock on the file, so two buses or processes cannot share one spool. */
#define RSBUS__SPOOL_HEAD 16
#define RSBUS__SPOOL_CHUNK ((size_t)1 << 20)    /* bytes read at a time */
#define RSBUS__SPOOL_BATCH 1000                 /* events per MULTI/EXEC when sending the spool */

/* CRC-32 (IEEE, reflected, as zlib) four bits at a time: a 64-byte table instead of 1 KiB (make size), and
   the spool's fdatasync per record costs far more than the two lookups per byte */
RSBUS__PRIVATE const uint32_t rsbus__crc_table[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu
};
RSBUS__PRIVATE uint32_t rsbus__crc32(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        c = rsbus__crc_table[c & 15u] ^ (c >> 4);
        c = rsbus__crc_table[c & 15u] ^ (c >> 4);
    }
    return c ^ 0xFFFFFFFFu;
}
RSBUS__PRIVATE void rsbus__put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
RSBUS__PRIVATE uint32_t rsbus__get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
RSBUS__PRIVATE int rsbus__spool_buf(rsbus *bus, char **buf, size_t *cap, size_t need) {
    char *p = (char *)rsbus__grow(&bus->a, *buf, cap, need, 1, 4096);
    if (!p) return -1;
    *buf = p;
    return 0;
}
/* The largest record payload a spool may hold: the file's bound (not max_event_bytes, which may have
   changed since the record was written). */
RSBUS__PRIVATE size_t rsbus__spool_rec_max(const rsbus *bus) {
    return (size_t)RSBUS__MIN((uint64_t)bus->cfg.spool_max_bytes, (uint64_t)0xFFFFFFFFu);
}
/* A payload is name/value pairs of RESP bulk strings; returns how many strings, 0 if it is not that. */
RSBUS__PRIVATE size_t rsbus__spool_fields(const char *p, size_t n) {
    size_t i = 0, count = 0;
    while (i < n) {
        size_t len = 0, digits = 0;
        if (p[i++] != '$') return 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 10) { len = len * 10 + (size_t)(p[i++] - '0'); digits++; }
        if (!digits || n - i < 2 || p[i] != '\r' || p[i + 1] != '\n') return 0;
        i += 2;
        if (n - i < len || n - i - len < 2 || p[i + len] != '\r' || p[i + len + 1] != '\n') return 0;
        i += len + 2;
        if (++count > 2 * RSBUS__MAX_FIELDS) return 0;
    }
    return count % 2 == 0 ? count : 0;
}
RSBUS__PRIVATE int rsbus__pwrite_all(int fd, const char *p, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w; off += (uint64_t)w;
    }
    return 0;
}
RSBUS__PRIVATE int rsbus__pread_all(int fd, char *p, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t w = pread(fd, p, n, (off_t)off);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        if (w == 0) { errno = EIO; return -1; }   /* the file is shorter than it was */
        p += w; n -= (size_t)w; off += (uint64_t)w;
    }
    return 0;
}
RSBUS__PRIVATE int rsbus__spool_set_start(rsbus *bus, uint64_t start) {
    unsigned char h[8];
    rsbus__put32(h, (uint32_t)start);
    rsbus__put32(h + 4, (uint32_t)(start >> 32));
    if (rsbus__pwrite_all(bus->spool_fd, (const char *)h, 8, 8) != 0) return -1;
    if (bus->cfg.spool_fsync == 0 && fdatasync(bus->spool_fd) != 0) return -1;
    bus->spool_start = start;
    return 0;
}

/* Reads the whole records from off (at most RSBUS__SPOOL_BATCH of them, about RSBUS__SPOOL_CHUNK bytes,
   or one larger record) into spool_rd. *bytes and *nrec say what was read; *bad: what follows them up to
   limit is not a whole, intact record. */
RSBUS__PRIVATE rsbus_result rsbus__spool_read(rsbus *bus, uint64_t off, uint64_t limit, size_t *bytes,
                                              size_t *nrec, int *bad) {
    size_t want = (size_t)RSBUS__MIN(limit - off, (uint64_t)RSBUS__SPOOL_CHUNK), p = 0, rec_max = rsbus__spool_rec_max(bus);
    *bytes = *nrec = 0;
    *bad = 0;
    if (off >= limit) return RSBUS_OK;
    for (;;) {
        if (rsbus__spool_buf(bus, &bus->spool_rd, &bus->spool_rd_cap, want) != 0)
            return rsbus__fail(bus, RSBUS_E_NOMEM, "spool: out of memory");
        if (rsbus__pread_all(bus->spool_fd, bus->spool_rd, want, off) != 0)
            return rsbus__fail(bus, RSBUS_E_IO, "spool %s: read: %s", bus->cfg.spool_path, strerror(errno));
        while (*nrec < RSBUS__SPOOL_BATCH && want - p >= 8) {
            const unsigned char *h = (const unsigned char *)bus->spool_rd + p;
            size_t len = rsbus__get32(h);
            if (len == 0 || len > rec_max || off + p + 8 + len > limit) { *bad = 1; break; }
            if (want - p - 8 < len) {
                if (p == 0) { want = 8 + len; goto again; }   /* one record larger than a chunk */
                break;
            }
            if (rsbus__crc32(h + 8, len) != rsbus__get32(h + 4) || !rsbus__spool_fields((const char *)h + 8, len)) {
                *bad = 1;
                break;
            }
            p += 8 + len;
            (*nrec)++;
        }
        if (p == 0 && !*bad) *bad = 1;   /* fewer than 8 bytes left: a torn record header */
        *bytes = p;
        return RSBUS_OK;
    again:;
    }
}

/* Opens (or creates) the spool file, locks it and checks its records. */
RSBUS__PRIVATE rsbus_result rsbus__spool_open(rsbus *bus) {
    const char *path = bus->cfg.spool_path;
    struct stat st;
    unsigned char h[RSBUS__SPOOL_HEAD];
    uint64_t size, off;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return rsbus__fail(bus, RSBUS_E_IO, "spool %s: open: %s", path, strerror(errno));
    bus->spool_fd = fd;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return rsbus__fail(bus, RSBUS_E_IO, "spool %s is in use by another bus (one spool per bus)", path);
        return rsbus__fail(bus, RSBUS_E_IO, "spool %s: flock: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) return rsbus__fail(bus, RSBUS_E_IO, "spool %s: fstat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return rsbus__fail(bus, RSBUS_E_ARG, "spool %s: not a regular file", path);
    size = (uint64_t)st.st_size;
    if (size < RSBUS__SPOOL_HEAD) {   /* new, or its header was torn while it was created */
        if (size > 0 && (rsbus__pread_all(fd, (char *)h, (size_t)size, 0) != 0 || memcmp(h, "RSBSPL1\n", (size_t)RSBUS__MIN(size, 8))))
            return rsbus__fail(bus, RSBUS_E_ARG, "spool %s: not an rsbus spool file", path);
        memcpy(h, "RSBSPL1\n", 8);
        rsbus__put32(h + 8, RSBUS__SPOOL_HEAD);
        rsbus__put32(h + 12, 0);
        if (ftruncate(fd, 0) != 0 || rsbus__pwrite_all(fd, (const char *)h, RSBUS__SPOOL_HEAD, 0) != 0 ||
            (bus->cfg.spool_fsync == 0 && fdatasync(fd) != 0))
            return rsbus__fail(bus, RSBUS_E_IO, "spool %s: write: %s", path, strerror(errno));
        bus->spool_start = bus->spool_end = RSBUS__SPOOL_HEAD;
        return RSBUS_OK;
    }
    if (rsbus__pread_all(fd, (char *)h, RSBUS__SPOOL_HEAD, 0) != 0)
        return rsbus__fail(bus, RSBUS_E_IO, "spool %s: read: %s", path, strerror(errno));
    if (memcmp(h, "RSBSPL1\n", 8) != 0) return rsbus__fail(bus, RSBUS_E_ARG, "spool %s: not an rsbus spool file", path);
    off = (uint64_t)rsbus__get32(h + 8) | (uint64_t)rsbus__get32(h + 12) << 32;
    if (off < RSBUS__SPOOL_HEAD || off > size)
        return rsbus__fail(bus, RSBUS_E_IO, "spool %s: damaged header (start offset past the end)", path);
    bus->spool_start = off;
    for (;;) {
        size_t bytes, nrec;
        int bad;
        rsbus_result r = rsbus__spool_read(bus, off, size, &bytes, &nrec, &bad);
        if (r != RSBUS_OK) return r;
        off += bytes;
        bus->spool_events += nrec;
        if (off >= size) break;
        if (bad) {
            rsbus__log(bus, RSBUS_LOG_WARN, "spool %s: dropped %llu bytes at offset %llu: a record torn by a crash "
                       "or damaged (the %lu records before it are kept)", path, (unsigned long long)(size - off),
                       (unsigned long long)off, (unsigned long)bus->spool_events);
            if (ftruncate(fd, (off_t)off) != 0)
                return rsbus__fail(bus, RSBUS_E_IO, "spool %s: truncate: %s", path, strerror(errno));
            break;
        }
    }
    bus->spool_end = off;
    if (bus->spool_events == 0 && (bus->spool_start > RSBUS__SPOOL_HEAD || bus->spool_end > RSBUS__SPOOL_HEAD)) {
        if (ftruncate(fd, RSBUS__SPOOL_HEAD) != 0 || rsbus__spool_set_start(bus, RSBUS__SPOOL_HEAD) != 0)
            return rsbus__fail(bus, RSBUS_E_IO, "spool %s: truncate: %s", path, strerror(errno));
        bus->spool_end = RSBUS__SPOOL_HEAD;
    }
    if (bus->spool_events)
        rsbus__log(bus, RSBUS_LOG_INFO, "spool %s holds %lu events not yet sent", path, (unsigned long)bus->spool_events);
    return RSBUS_OK;
}

/* Adds the record of the XADD just queued on cn (its fields from fields_off on) to the staged records. On a
   partitioned bus the record starts with a pair of its own, an empty name and the partition's number, so
   that it is sent to the partition it was routed to (the count is pinned, so the number stays right). */
RSBUS__PRIVATE int rsbus__spool_stage(rsbus *bus, rsbus__conn *cn, size_t fields_off, int pi) {
    size_t n = cn->out_len - fields_off, pre = 0;
    char tag[32];
    unsigned char *h;
    if (bus->nparts > 1) {
        char num[16];
        int k = snprintf(num, sizeof num, "%d", pi);
        pre = (size_t)snprintf(tag, sizeof tag, "$0\r\n\r\n$%d\r\n%s\r\n", k, num);
    }
    if (cn->oom || !fields_off || n > 0xFFFFFFFFu - pre ||
        rsbus__spool_buf(bus, &bus->spool_stage, &bus->spool_stage_cap, bus->spool_stage_len + 8 + pre + n) != 0)
        return -1;
    h = (unsigned char *)bus->spool_stage + bus->spool_stage_len;
    if (pre) memcpy(h + 8, tag, pre);
    memcpy(h + 8 + pre, cn->out + fields_off, n);
    rsbus__put32(h, (uint32_t)(pre + n));
    rsbus__put32(h + 4, rsbus__crc32(h + 8, pre + n));
    bus->spool_stage_len += 8 + pre + n;
    return 0;
}
/* A record's partition (its own leading pair; 0 without one) and where its event's fields start. */
RSBUS__PRIVATE int rsbus__spool_rec_part(const rsbus *bus, const char *p, size_t n, size_t *skip) {
    size_t i = 10, v = 0;
    *skip = 0;
    if (n < 14 || memcmp(p, "$0\r\n\r\n$", 7) != 0) return 0;
    i = 7;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;   /* the value's length: a few digits (checked by spool_fields) */
    if (n - i < 2) return 0;
    i += 2;
    while (i < n && p[i] >= '0' && p[i] <= '9' && v < 100000) v = v * 10 + (size_t)(p[i++] - '0');
    if (n - i < 2 || p[i] != '\r') return 0;
    *skip = i + 2;
    return (int)(v % (size_t)(bus->nparts > 0 ? bus->nparts : 1));
}

/* Sends n records (checked ones: read back by spool_read) as XADDs, in MULTI/EXEC per partition, and reads
   the replies; a failure leaves the whole chunk to be sent again (what went through is sent twice, with
   the same event ids). */
RSBUS__PRIVATE rsbus_result rsbus__spool_send(rsbus *bus, const char *recs, size_t len, size_t n, int atomic,
                                              char (*ids)[RSBUS_ID_SIZE], const char *what) {
    int pi, touched[RSBUS__MAX_PARTS];
    rsbus_result r = RSBUS_OK;
    rsbus__waits waits;
    (void)n;
    for (pi = 0; pi < bus->nparts; pi++) {
        rsbus__conn *cn = rsbus__part_conn(bus, pi);
        size_t p = 0, k = 0;
        while (p + 8 <= len) {
            size_t plen = rsbus__get32((const unsigned char *)recs + p), skip;
            const char *payload = recs + p + 8;
            p += 8 + plen;
            if (rsbus__spool_rec_part(bus, payload, plen, &skip) != pi) continue;
            if (!k++ && atomic) { rsbus__cmd(cn); rsbus__lit(cn, "MULTI"); rsbus__cmd_end(cn); }
            rsbus__xadd_head(cn, bus->parts[pi].key, bus->parts[pi].key_len, rsbus__xadd_maxlen(bus));
            if (rsbus__reserve(cn, plen) == 0) {
                memcpy(cn->out + cn->out_len, payload + skip, plen - skip);
                cn->out_len += plen - skip;
                cn->cmd_argc += (int)rsbus__spool_fields(payload + skip, plen - skip);
            }
            rsbus__cmd_end(cn);
        }
        if (k && atomic) { rsbus__cmd(cn); rsbus__lit(cn, "EXEC"); rsbus__cmd_end(cn); }
    }
    {   /* replicated publishing: one WAIT per connection, after all its partitions' commands */
        size_t p = 0;
        memset(touched, 0, sizeof touched);
        while (p + 8 <= len) {
            size_t plen = rsbus__get32((const unsigned char *)recs + p), skip;
            int part = rsbus__spool_rec_part(bus, recs + p + 8, plen, &skip);
            if (part >= 0 && part < bus->nparts) touched[part] = 1;
            p += 8 + plen;
        }
        rsbus__waits_queue(bus, &waits, touched);
    }
    for (pi = 0; pi < bus->nparts && r == RSBUS_OK; pi++) {   /* the replies, in the same order */
        size_t p = 0, k = 0;
        while (p + 8 <= len) {
            size_t plen = rsbus__get32((const unsigned char *)recs + p), skip;
            if (rsbus__spool_rec_part(bus, recs + p + 8, plen, &skip) == pi) k++;
            p += 8 + plen;
        }
        if (k) r = rsbus__read_xadds_on(bus, rsbus__part_conn(bus, pi), k, atomic, bus->nparts > 1 ? NULL : ids, NULL, 0, what);
    }
    if (r == RSBUS_OK && waits.n) r = rsbus__waits_read(bus, &waits, what);
    return r;
}

/* Sends the spool, chunk by chunk; the caller has connected. A chunk fewer replicas confirmed than
   publish_wait_replicas is in Redis: it counts as sent (logged), and the drain ends with RSBUS_E_REPLICAS. */
RSBUS__PRIVATE rsbus_result rsbus__spool_drain(rsbus *bus, size_t *sent) {
    int short_of_replicas = 0;
    *sent = 0;
    while (bus->spool_start < bus->spool_end) {
        size_t bytes, nrec;
        int bad;
        rsbus_result r = rsbus__spool_read(bus, bus->spool_start, bus->spool_end, &bytes, &nrec, &bad);
        if (r != RSBUS_OK) return r;
        if (nrec == 0)   /* the file changed under the lock: nothing sane is left to send */
            return rsbus__fail(bus, RSBUS_E_IO, "spool %s: damaged record at offset %llu", bus->cfg.spool_path,
                               (unsigned long long)bus->spool_start);
        r = rsbus__spool_send(bus, bus->spool_rd, bytes, nrec, 1, NULL, "XADD (spool)");
        if (r == RSBUS_E_REPLICAS) {
            rsbus__log(bus, RSBUS_LOG_WARN, "spool %s: %s", bus->cfg.spool_path, bus->err);
            short_of_replicas = 1;
        } else if (r != RSBUS_OK) {
            return r;
        }
        bus->spool_events -= nrec;
        bus->st.published += nrec;
        *sent += nrec;
        if (bus->spool_start + bytes >= bus->spool_end) {   /* all sent: back to an empty file */
            if (ftruncate(bus->spool_fd, RSBUS__SPOOL_HEAD) != 0 || rsbus__spool_set_start(bus, RSBUS__SPOOL_HEAD) != 0)
                return rsbus__fail(bus, RSBUS_E_IO, "spool %s: truncate: %s", bus->cfg.spool_path, strerror(errno));
            bus->spool_end = RSBUS__SPOOL_HEAD;
            bus->spool_events = 0;
        } else if (rsbus__spool_set_start(bus, bus->spool_start + bytes) != 0) {
            return rsbus__fail(bus, RSBUS_E_IO, "spool %s: write: %s", bus->cfg.spool_path, strerror(errno));
        }
    }
    if (*sent) rsbus__log(bus, RSBUS_LOG_INFO, "spool %s: sent %lu events", bus->cfg.spool_path, (unsigned long)*sent);
    if (short_of_replicas)
        return rsbus__fail(bus, RSBUS_E_REPLICAS, "spool %s: sent, but fewer than %d replicas confirmed some of it "
                           "(a failover can lose it)", bus->cfg.spool_path, bus->cfg.publish_wait_replicas);
    return RSBUS_OK;
}

/* Appends the staged records with one write. */
RSBUS__PRIVATE rsbus_result rsbus__spool_append(rsbus *bus, size_t n) {
    size_t len = bus->spool_stage_len;
    if (bus->spool_end + len > (uint64_t)bus->cfg.spool_max_bytes)
        return rsbus__fail(bus, RSBUS_E_IO, "spool %s is full (%llu bytes, spool_max_bytes %lld) and Redis cannot be "
                           "reached: the event was not published", bus->cfg.spool_path,
                           (unsigned long long)bus->spool_end, (long long)bus->cfg.spool_max_bytes);
    if (rsbus__pwrite_all(bus->spool_fd, bus->spool_stage, len, bus->spool_end) != 0 ||
        (bus->cfg.spool_fsync == 0 && fdatasync(bus->spool_fd) != 0)) {
        int e = errno;
        if (ftruncate(bus->spool_fd, (off_t)bus->spool_end) != 0) { /* the next open drops a torn record */ }
        return rsbus__fail(bus, RSBUS_E_IO, "spool %s: write: %s (the event was not published)", bus->cfg.spool_path,
                           strerror(e));
    }
    bus->spool_end += len;
    bus->spool_events += n;
    return RSBUS_OK;
}

/* Checks and queues the XADDs of what is published (n events, in MULTI/EXEC unless single; or one entry
   of exactly the given fields) and copies each one's fields into a staged spool record: one builder for
   what is sent and what is spooled. send 0: the commands are then forgotten (Redis cannot be reached;
   only the records are wanted). */
RSBUS__PRIVATE rsbus_result rsbus__stage(rsbus *bus, const rsbus__pub *pub, int send) {
    rsbus__conn *cn = rsbus__part_conn(bus, 0);   /* (the cluster transport marks every connection) */
    rsbus__mark mark = rsbus__cmd_mark(cn);
    rsbus__ev e;
    rsbus_result r = RSBUS_OK;
    size_t i;
    bus->spool_stage_len = 0;
    if (!pub->single && bus->nparts > 1) {   /* MULTI/EXEC per partition */
        r = RSBUS_OK;
        for (i = 0; i < pub->n && r == RSBUS_OK; i++) {
            r = rsbus__check_event(bus, &pub->evs[i], i, &pub->es[i]);
            if (r == RSBUS_OK) pub->pp[i] = rsbus__route(bus, pub->evs[i].key, pub->es[i].id);
        }
        if (r == RSBUS_OK) r = rsbus__queue_parts(bus, pub->evs, pub->es, pub->pp, pub->n, 1);
        if (r != RSBUS_OK || !send) rsbus__cmd_rewind(cn, mark);
        return r;
    }
    if (!pub->single) { rsbus__cmd(cn); rsbus__lit(cn, "MULTI"); rsbus__cmd_end(cn); }
    for (i = 0; i < pub->n && r == RSBUS_OK; i++) {
        size_t off;
        int pi;
        if (pub->evs) {
            r = rsbus__check_event(bus, &pub->evs[i], pub->single ? (size_t)-1 : i, &e);
            if (r != RSBUS_OK) break;
            pi = rsbus__route(bus, pub->evs[i].key, e.id);
            off = rsbus__queue_xadd(bus, pi, &pub->evs[i], &e);
        } else {
            pi = rsbus__fields_part(bus, pub->key, pub->fields, pub->nfields);
            off = rsbus__queue_xadd_fields(bus, pi, pub->fields, pub->nfields);
        }
        pub->pp[0] = pi;   /* a single publish: which connection answers */
        if (rsbus__spool_stage(bus, rsbus__part_conn(bus, pi), off, pi) != 0)
            r = rsbus__fail(bus, RSBUS_E_NOMEM, "publish: out of memory");
    }
    if (!pub->single) { rsbus__cmd(cn); rsbus__lit(cn, "EXEC"); rsbus__cmd_end(cn); }
    if (r != RSBUS_OK || !send) rsbus__cmd_rewind(cn, mark);
    return r;
}

/* Publish on a bus with a spool: what is spooled goes first, then this; it is spooled when Redis cannot
   be reached (RSBUS_E_IO, RSBUS_E_TIMEOUT), never when it refused it. */
RSBUS__PRIVATE rsbus_result rsbus__publish_spooled_in(rsbus *bus, const rsbus__pub *pub, char (*ids)[RSBUS_ID_SIZE]);
RSBUS__PRIVATE rsbus_result rsbus__publish_spooled(rsbus *bus, const rsbus__pub *pub_in, char (*ids)[RSBUS_ID_SIZE]) {
    size_t n = pub_in->n, bytes = 0;
    rsbus__pub pub0 = *pub_in, *pub = &pub0;
    int one = 0;
    char *mem = NULL;
    rsbus_result r;
    pub->pp = &one;
    if (!pub->single && bus->nparts > 1) {   /* scratch of a partitioned batch: checked events, partitions, map */
        bytes = n * (sizeof(rsbus__ev) + sizeof(size_t) + sizeof(int));
        if (n > SIZE_MAX / (sizeof(rsbus__ev) + sizeof(size_t) + sizeof(int)) ||
            !(mem = (char *)rsbus__alloc(&bus->a, bytes))) {
            bus->st.publish_errors += n;
            return rsbus__fail(bus, RSBUS_E_NOMEM, "publish_batch: out of memory");
        }
        pub->es = (rsbus__ev *)(void *)mem;
        pub->map = (size_t *)(void *)(mem + n * sizeof(rsbus__ev));
        pub->pp = (int *)(void *)(mem + n * (sizeof(rsbus__ev) + sizeof(size_t)));
    }
    r = rsbus__publish_spooled_in(bus, pub, ids);
    if (mem) rsbus__free(&bus->a, mem, bytes);
    return r;
}
RSBUS__PRIVATE rsbus_result rsbus__publish_spooled_in(rsbus *bus, const rsbus__pub *pub, char (*ids)[RSBUS_ID_SIZE]) {
    size_t i, sent, n = pub->n, added = 0;
    rsbus_result r = rsbus__ensure(bus);
    if (r == RSBUS_OK && bus->spool_events) r = rsbus__spool_drain(bus, &sent);
    if (r == RSBUS_E_REPLICAS) { r = RSBUS_OK; bus->err[0] = 0; }   /* the spool went out (logged); this event next */
    if (r == RSBUS_OK) {
        if ((r = rsbus__stage(bus, pub, 1)) != RSBUS_OK) { bus->st.publish_errors += n; return r; }
        if (!pub->single && bus->nparts > 1) {
            r = rsbus__read_parts(bus, pub->pp, n, pub->map, ids, &added, "XADD (batch)");
            bus->st.published += added;
            if (r == RSBUS_OK || added) { bus->st.publish_errors += n - added; return r; }
        } else {
            r = rsbus__read_xadds_on(bus, rsbus__part_conn(bus, pub->pp[0]), n, !pub->single, ids, NULL, 1,
                                     pub->single ? "XADD" : "XADD (batch)");
            if (r == RSBUS_OK || r == RSBUS_E_REPLICAS) { bus->st.published += n; return r; }   /* in Redis: not spooled */
        }
    } else if (r == RSBUS_E_IO || r == RSBUS_E_TIMEOUT) {
        rsbus_result c = rsbus__stage(bus, pub, 0);   /* offline: the records only */
        if (c != RSBUS_OK) { bus->st.publish_errors += n; return c; }
    }
    if (r != RSBUS_E_IO && r != RSBUS_E_TIMEOUT) { bus->st.publish_errors += n; return r; }
    rsbus__log(bus, RSBUS_LOG_DEBUG, "spooling %lu events: %s", (unsigned long)n, bus->err);
    r = rsbus__spool_append(bus, n);
    if (r != RSBUS_OK) { bus->st.publish_errors += n; return r; }
    bus->err[0] = 0;
    bus->st.spooled += n;
    if (ids) for (i = 0; i < n; i++) ids[i][0] = 0;
    return (rsbus_result)RSBUS_SPOOLED;
}

RSBUS__PUBLIC rsbus_result rsbus_spool_flush(rsbus *bus, size_t *sent) {
    size_t n = 0;
    rsbus_result r;
    if (sent) *sent = 0;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (bus->dispatching) return rsbus__fail(bus, RSBUS_E_ARG, "spool_flush: not allowed from a handler");
    if (bus->spool_fd < 0 || bus->spool_events == 0) return RSBUS_OK;
    r = rsbus__ensure(bus);
    if (r == RSBUS_OK) r = rsbus__spool_drain(bus, &n);
    if (sent) *sent = n;
    return r;
}

RSBUS__PUBLIC rsbus_result rsbus_spool_pending(rsbus *bus, size_t *events, size_t *bytes) {
    if (events) *events = 0;
    if (bytes) *bytes = 0;
    if (!bus) return RSBUS_E_ARG;
    if (bus->spool_fd < 0) return RSBUS_OK;
    if (events) *events = bus->spool_events;
    if (bytes) *bytes = (size_t)(bus->spool_end - bus->spool_start);
    return RSBUS_OK;
}
#else /* RSBUS_NO_SPOOL: rsbus_open refuses spool_path, so spool_fd stays -1 and the private ones are never called */
RSBUS__PRIVATE int rsbus__spool_stage(rsbus *bus, rsbus__conn *cn, size_t fields_off, int pi) {
    (void)bus; (void)cn; (void)fields_off; (void)pi;
    return -1;
}
RSBUS__PRIVATE rsbus_result rsbus__publish_spooled(rsbus *bus, const rsbus__pub *pub, char (*ids)[RSBUS_ID_SIZE]) {
    (void)pub; (void)ids;
    return rsbus__compiled_out(bus, "publish (spool)", "RSBUS_NO_SPOOL");
}
RSBUS__PRIVATE rsbus_result rsbus__spool_open(rsbus *bus) {
    return rsbus__compiled_out(bus, "rsbus_open (spool_path)", "RSBUS_NO_SPOOL");
}
RSBUS__PRIVATE rsbus_result rsbus__spool_drain(rsbus *bus, size_t *sent) {
    *sent = 0;
    return rsbus__compiled_out(bus, "spool", "RSBUS_NO_SPOOL");
}
RSBUS__PUBLIC rsbus_result rsbus_spool_flush(rsbus *bus, size_t *sent) {
    if (sent) *sent = 0;
    return rsbus__compiled_out(bus, "rsbus_spool_flush", "RSBUS_NO_SPOOL");
}
RSBUS__PUBLIC rsbus_result rsbus_spool_pending(rsbus *bus, size_t *events, size_t *bytes) {
    if (events) *events = 0;
    if (bytes) *bytes = 0;
    return rsbus__compiled_out(bus, "rsbus_spool_pending", "RSBUS_NO_SPOOL");
}
#endif /* RSBUS_NO_SPOOL */
#ifndef RSBUS_NO_SCHEMA
/* >>schemas */
/* rsbus_schema_register compiles a schema text into one block: an array of nodes (the top object is
   node 0; the fields of an object are consecutive nodes; an array type has one element node) and the
   field names, unescaped, after it. The bus keeps the blocks in a small open-addressing table keyed by
   (type, version). Checking a payload is one pass over its text with a stack of at most
   RSBUS__SCHEMA_MAX_DEPTH frames, one per object or array the schema describes; anything the schema
   does not describe (extra fields, "any", "object", "array") is skipped without frames. Nothing is
   allocated while checking, and messages quote field names from the schema and array indexes, never
   payload text. Compiling recurses, at most two calls per level of the schema (16 levels). */

#define RSBUS__SCHEMA_MAX_TEXT 65536     /* bytes of schema text */
#define RSBUS__SCHEMA_MAX_DEPTH 16       /* nesting levels, the top object being level 1 */
#define RSBUS__SCHEMA_MAX_NODES 1024     /* fields and array element types of one schema, in all */
#define RSBUS__SCHEMA_MAX_OBJ 256        /* fields of one object */
#define RSBUS__SCHEMA_MAX_NAME 128       /* bytes of a field name (without the '?') */
#define RSBUS__SCHEMA_MAX_COUNT 1024     /* (type, version) pairs registered on one bus */
#define RSBUS__SCHEMA_PATH_MAX ((RSBUS__SCHEMA_MAX_DEPTH + 1) * (RSBUS__SCHEMA_MAX_NAME + 1) + 1)

/* node kinds; the first seven in the order of rsbus__schema_types */
enum { RSBUS__SK_ANY, RSBUS__SK_STRING, RSBUS__SK_NUMBER, RSBUS__SK_INTEGER, RSBUS__SK_BOOLEAN,
       RSBUS__SK_OBJECT, RSBUS__SK_ARRAY, RSBUS__SK_FIELDS, RSBUS__SK_ARRAY_OF };
RSBUS__PRIVATE const char *const rsbus__schema_types[7] = {
    "any", "string", "number", "integer", "boolean", "object", "array"
};
/* what a mismatch message says a value must be, by kind */
RSBUS__PRIVATE const char *const rsbus__schema_musts[9] = {
    "anything", "a string", "a number", "an integer", "a boolean", "an object", "an array", "an object",
    "an array"
};

typedef struct rsbus__snode {
    unsigned kind;                 /* RSBUS__SK_* */
    unsigned optional;             /* a field whose name ended in '?' */
    uint32_t name_off, name_len;   /* a field's name in the block's names */
    uint32_t child;                /* FIELDS: the first field's node; ARRAY_OF: the element's node */
    uint32_t nchild, nreq;         /* FIELDS: fields, and how many of them are required */
} rsbus__snode;

typedef struct rsbus__schema {
    size_t size;                   /* bytes of this block */
    int version;
    size_t type_len;
    char type[RSBUS__TYPE_MAX + 1];
    rsbus__snode *nodes;           /* in this block, after this header */
    const char *names;             /* in this block, after the nodes */
} rsbus__schema;

struct rsbus__schemas {
    rsbus__schema **slot;          /* open addressing on (type, version), at most half full */
    size_t cap, count;
    char reason[RSBUS_REASON_SIZE];   /* why the last consumed entry did not match (rsbus__schema_decode) */
};

RSBUS__PRIVATE const unsigned char *rsbus__schema_ws(const unsigned char *p, const unsigned char *e) {
    while (p < e && RSBUS__JSON_WS(*p)) p++;
    return p;
}

/* The JSON value starting at p (text already validated): the byte after it, or NULL if the text ends or
   is not what a valid text would hold. No recursion: containers are skipped by counting brackets,
   strings by the reader's scanner (so a bracket inside a string does not count). */
RSBUS__PRIVATE const unsigned char *rsbus__schema_skip(const unsigned char *p, const unsigned char *e) {
    const unsigned char *err;
    size_t depth = 0;
    int esc = 0;
    while (p < e) {
        unsigned char c = *p;
        if (c == '"') {
            p = rsbus__json_string(p + 1, e, &err, &esc);
            if (!p) return NULL;
        } else if (c == '{' || c == '[') {
            depth++;
            p++;
            continue;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return NULL;
            depth--;
            p++;
        } else if (depth > 0) {
            p++;                                            /* whitespace, ',', ':', digits, letters */
            continue;
        } else if (c == 't') {
            return rsbus__json_literal(p, e, "true", 4, &err);
        } else if (c == 'f') {
            return rsbus__json_literal(p, e, "false", 5, &err);
        } else if (c == 'n') {
            return rsbus__json_literal(p, e, "null", 4, &err);
        } else {
            return rsbus__json_number(p, e, &err);
        }
        if (depth == 0) return p;
    }
    return NULL;
}

/* ---- compiling a schema ---- */

typedef struct rsbus__schema_cc {
    const unsigned char *s, *e;    /* the schema text */
    rsbus__snode *nodes;           /* NULL in the counting pass */
    char *names;
    uint32_t nnodes;               /* nodes used, the top object's included */
    size_t nnames;                 /* name bytes used */
    const unsigned char *at;       /* where the error is */
    char why[192];                 /* what it is */
    char path[RSBUS__SCHEMA_PATH_MAX];
    size_t path_len;
} rsbus__schema_cc;

RSBUS__PRIVATE const unsigned char *rsbus__schema_bad(rsbus__schema_cc *cc, const unsigned char *at,
                                                      const char *fmt, ...) RSBUS__PRINTF(3, 4);
RSBUS__PRIVATE const unsigned char *rsbus__schema_bad(rsbus__schema_cc *cc, const unsigned char *at,
                                                      const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cc->why, sizeof cc->why, fmt, ap);
    va_end(ap);
    cc->at = at;
    return NULL;
}

/* Appends ".name" (or "name" first, or "[]" with dot 0) to the path; returns the length to restore. */
RSBUS__PRIVATE size_t rsbus__schema_path_push(rsbus__schema_cc *cc, const char *name, size_t n, int dot) {
    size_t old = cc->path_len, room = sizeof cc->path - 1 - old;
    if (dot && old > 0 && room > 0) { cc->path[cc->path_len++] = '.'; room--; }
    if (n > room) n = room;
    memcpy(cc->path + cc->path_len, name, n);
    cc->path_len += n;
    cc->path[cc->path_len] = 0;
    return old;
}
RSBUS__PRIVATE void rsbus__schema_path_pop(rsbus__schema_cc *cc, size_t old) {
    cc->path_len = old;
    cc->path[old] = 0;
}

/* The string at p (at its '"'), unescaped into out (cap bytes, not NUL-terminated): the byte after it,
   with *len its full unescaped length (more than cap when it did not fit), or NULL if it is not one. */
RSBUS__PRIVATE const unsigned char *rsbus__schema_unescape(const unsigned char *p, const unsigned char *e,
                                                           char *out, size_t cap, size_t *len) {
    const unsigned char *q, *err;
    int esc = 0;
    *len = 0;
    if (p >= e || *p != '"') return NULL;
    q = rsbus__json_string(p + 1, e, &err, &esc);
    if (!q || rsbus__json_unescape(p + 1, q - 1, out, cap, len) != 0) return NULL;
    return q;
}

RSBUS__PRIVATE const unsigned char *rsbus__schema_obj(rsbus__schema_cc *cc, const unsigned char *p, uint32_t self,
                                                      unsigned depth);

/* Counts the members of the object at p (its '{'). */
RSBUS__PRIVATE size_t rsbus__schema_members(const unsigned char *p, const unsigned char *e) {
    size_t n = 0;
    p = rsbus__schema_ws(p + 1, e);
    if (p < e && *p == '}') return 0;
    while (p && p < e) {
        p = rsbus__schema_skip(p, e);                      /* the key */
        if (!p) break;
        n++;
        p = rsbus__schema_ws(p, e);
        if (p >= e || *p != ':') break;
        p = rsbus__schema_skip(rsbus__schema_ws(p + 1, e), e);
        if (!p) break;
        p = rsbus__schema_ws(p, e);
        if (p >= e || *p != ',') break;
        p = rsbus__schema_ws(p + 1, e);
    }
    return n;
}

/* A field's type at p into node self, at nesting level depth (of the object holding the field). */
RSBUS__PRIVATE const unsigned char *rsbus__schema_spec(rsbus__schema_cc *cc, const unsigned char *p, uint32_t self,
                                                       unsigned depth) {
    const unsigned char *e = cc->e, *q;
    char t[16], shown[24];
    size_t len, k, mark;
    uint32_t child;
    if (p >= e) return rsbus__schema_bad(cc, p, "the schema text ends early");
    if (*p == '"') {
        q = rsbus__schema_unescape(p, e, t, sizeof t, &len);
        if (!q) return rsbus__schema_bad(cc, p, "not a JSON string");
        for (k = 0; k < 7; k++)
            if (len == strlen(rsbus__schema_types[k]) && memcmp(t, rsbus__schema_types[k], len) == 0) break;
        if (k == 7) {
            rsbus__clean(t, RSBUS__MIN(len, sizeof t), shown, sizeof shown);
            return rsbus__schema_bad(cc, p, "unknown type \"%s%s\" (expected string, number, integer, boolean, "
                                     "object, array, any, {...} or [type])", shown, len > sizeof t ? "..." : "");
        }
        if (cc->nodes) cc->nodes[self].kind = (unsigned)k;
        return q;
    }
    if (*p != '{' && *p != '[')
        return rsbus__schema_bad(cc, p, "a type must be a type name, an object or a one-element array");
    if (depth >= RSBUS__SCHEMA_MAX_DEPTH)
        return rsbus__schema_bad(cc, p, "nested deeper than %d levels", RSBUS__SCHEMA_MAX_DEPTH);
    if (*p == '{') return rsbus__schema_obj(cc, p, self, depth + 1);
    q = rsbus__schema_ws(p + 1, e);
    if (q >= e || *q == ']') return rsbus__schema_bad(cc, p, "an array type must hold exactly one type, as [\"string\"]");
    if (cc->nnodes > RSBUS__SCHEMA_MAX_NODES)
        return rsbus__schema_bad(cc, p, "more than %d fields and array types in all", RSBUS__SCHEMA_MAX_NODES);
    child = cc->nnodes++;
    mark = rsbus__schema_path_push(cc, "[]", 2, 0);
    q = rsbus__schema_spec(cc, q, child, depth + 1);
    if (!q) return NULL;
    rsbus__schema_path_pop(cc, mark);
    q = rsbus__schema_ws(q, e);
    if (q >= e || *q != ']') return rsbus__schema_bad(cc, p, "an array type must hold exactly one type, as [\"string\"]");
    if (cc->nodes) {
        cc->nodes[self].kind = RSBUS__SK_ARRAY_OF;
        cc->nodes[self].child = child;
    }
    return q + 1;
}

/* The object at p (its '{') into node self (a FIELDS node), at nesting level depth. */
RSBUS__PRIVATE const unsigned char *rsbus__schema_obj(rsbus__schema_cc *cc, const unsigned char *p, uint32_t self,
                                                      unsigned depth) {
    const unsigned char *e = cc->e, *key;
    char name[RSBUS__SCHEMA_MAX_NAME + 2];
    size_t n = rsbus__schema_members(p, e), len, i, mark;
    uint32_t first = cc->nnodes, k = 0, nreq = 0, j;
    unsigned optional;
    if (n > RSBUS__SCHEMA_MAX_OBJ) return rsbus__schema_bad(cc, p, "an object has more than %d fields", RSBUS__SCHEMA_MAX_OBJ);
    if (n > (size_t)RSBUS__SCHEMA_MAX_NODES + 1 - cc->nnodes)
        return rsbus__schema_bad(cc, p, "more than %d fields and array types in all", RSBUS__SCHEMA_MAX_NODES);
    cc->nnodes += (uint32_t)n;
    p = rsbus__schema_ws(p + 1, e);
    if (p < e && *p == '}') p++;
    else for (;;) {
        key = p;
        p = rsbus__schema_unescape(p, e, name, sizeof name, &len);
        if (!p) return rsbus__schema_bad(cc, key, "a field name must be a JSON string");
        optional = len > 0 && len <= sizeof name && name[len - 1] == '?';
        if (optional) len--;
        if (len == 0) return rsbus__schema_bad(cc, key, "a field name is empty");
        if (len > RSBUS__SCHEMA_MAX_NAME)
            return rsbus__schema_bad(cc, key, "a field name is longer than %d bytes", RSBUS__SCHEMA_MAX_NAME);
        for (i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)name[i];
            if (ch < 0x20 || ch == 0x7f) return rsbus__schema_bad(cc, key, "a field name holds a control character");
            if (ch == '.' || ch == '[' || ch == ']')
                return rsbus__schema_bad(cc, key, "a field name must not hold '.', '[' or ']' (they separate paths)");
        }
        mark = rsbus__schema_path_push(cc, name, len, 1);
        if (cc->nodes) {
            rsbus__snode *f = &cc->nodes[first + k];
            for (j = 0; j < k; j++) {
                const rsbus__snode *o = &cc->nodes[first + j];
                if (o->name_len == len && memcmp(cc->names + o->name_off, name, len) == 0)
                    return rsbus__schema_bad(cc, key, "the field is named twice");
            }
            memcpy(cc->names + cc->nnames, name, len);
            f->name_off = (uint32_t)cc->nnames;
            f->name_len = (uint32_t)len;
            f->optional = optional;
        }
        cc->nnames += len;
        p = rsbus__schema_ws(p, e);
        if (p >= e || *p != ':') return rsbus__schema_bad(cc, p, "':' expected");
        p = rsbus__schema_spec(cc, rsbus__schema_ws(p + 1, e), first + k, depth);
        if (!p) return NULL;
        rsbus__schema_path_pop(cc, mark);
        if (!optional) nreq++;
        k++;
        p = rsbus__schema_ws(p, e);
        if (p < e && *p == ',' && k < n) { p = rsbus__schema_ws(p + 1, e); continue; }
        if (p < e && *p == '}' && k == n) { p++; break; }
        return rsbus__schema_bad(cc, p, "not the JSON the schema was checked to be");   /* cannot happen */
    }
    if (cc->nodes) {
        cc->nodes[self].kind = RSBUS__SK_FIELDS;
        cc->nodes[self].child = first;
        cc->nodes[self].nchild = (uint32_t)n;
        cc->nodes[self].nreq = nreq;
    }
    return p;
}

/* ---- the registry ---- */

RSBUS__PRIVATE size_t rsbus__schema_hash(const char *type, size_t n, int version) {
    uint64_t h = UINT64_C(14695981039346656037);
    size_t i;
    for (i = 0; i < n; i++) { h ^= (unsigned char)type[i]; h *= UINT64_C(1099511628211); }
    h ^= (uint64_t)(unsigned)version;
    h *= UINT64_C(1099511628211);
    return (size_t)(h ^ (h >> 32));
}
/* The slot holding (type, version), or the empty slot where it would go. */
RSBUS__PRIVATE rsbus__schema **rsbus__schema_slot(struct rsbus__schemas *ss, const char *type, size_t n, int version) {
    size_t mask = ss->cap - 1, i = rsbus__schema_hash(type, n, version) & mask;
    for (;; i = (i + 1) & mask) {
        rsbus__schema *s = ss->slot[i];
        if (!s || (s->version == version && s->type_len == n && memcmp(s->type, type, n) == 0)) return &ss->slot[i];
    }
}
RSBUS__PRIVATE const rsbus__schema *rsbus__schema_find(const rsbus *bus, const char *type, int version) {
    rsbus__schema *const *slot;
    if (!bus->schemas || !bus->schemas->count) return NULL;
    slot = rsbus__schema_slot(bus->schemas, type, strlen(type), version);
    return *slot;
}

RSBUS__PRIVATE void rsbus__schema_free(rsbus *bus) {
    struct rsbus__schemas *ss = bus->schemas;
    size_t i;
    if (!ss) return;
    for (i = 0; i < ss->cap; i++) if (ss->slot[i]) rsbus__free(&bus->a, ss->slot[i], ss->slot[i]->size);
    rsbus__free(&bus->a, (void *)ss->slot, ss->cap * sizeof *ss->slot);
    rsbus__free(&bus->a, ss, sizeof *ss);
    bus->schemas = NULL;
}

/* Compiles a schema's text (checked as JSON already) into one block: pass 1 checks and counts, pass 2
   fills the block (and finds fields named twice). */
RSBUS__PRIVATE rsbus_result rsbus__schema_compile(rsbus *bus, const char *type, size_t tlen, int version,
                                                  const char *text, size_t n, rsbus__schema **out) {
    rsbus__schema_cc ccs, *cc = &ccs;
    rsbus__schema *sc;
    const unsigned char *p;
    size_t head = sizeof *sc, size;   /* head: a multiple of its alignment, which suits the nodes */
    *out = NULL;
    memset(cc, 0, sizeof *cc);
    cc->s = (const unsigned char *)text;
    cc->e = cc->s + n;
    p = rsbus__schema_ws(cc->s, cc->e);
    if (p >= cc->e || *p != '{')
        return rsbus__fail(bus, RSBUS_E_ARG, "schema_register %s v%d: the schema must be a JSON object of fields",
                           type, version);
    cc->nnodes = 1;
    if (rsbus__schema_obj(cc, p, 0, 1)) {
        size = head + cc->nnodes * sizeof(rsbus__snode) + cc->nnames;
        sc = (rsbus__schema *)rsbus__alloc(&bus->a, size);
        if (!sc) return rsbus__fail(bus, RSBUS_E_NOMEM, "schema_register %s v%d: out of memory", type, version);
        memset(sc, 0, size);
        sc->size = size;
        sc->version = version;
        sc->type_len = tlen;
        memcpy(sc->type, type, tlen + 1);
        sc->nodes = (rsbus__snode *)(void *)((char *)sc + head);
        cc->names = (char *)(sc->nodes + cc->nnodes);
        sc->names = cc->names;
        cc->nodes = sc->nodes;
        cc->nnodes = 1;
        cc->nnames = 0;
        cc->path_len = 0;
        cc->path[0] = 0;
        if (rsbus__schema_obj(cc, p, 0, 1)) { *out = sc; return RSBUS_OK; }
        rsbus__free(&bus->a, sc, sc->size);
    }
    return rsbus__fail(bus, RSBUS_E_ARG, "schema_register %s v%d: %s (%s%s%sbyte %lu)", type, version, cc->why,
                       cc->path_len ? "field \"" : "", cc->path, cc->path_len ? "\", " : "",
                       (unsigned long)(cc->at ? (size_t)(cc->at - cc->s) : 0));
}

/* Puts a compiled schema into the bus's table (created, or grown, before anything changes), replacing
   one of the same type and version. Takes sc, also when it fails. */
RSBUS__PRIVATE rsbus_result rsbus__schema_put(rsbus *bus, rsbus__schema *sc) {
    struct rsbus__schemas *ss = bus->schemas;
    rsbus__schema **slot;
    size_t i;
    if (!ss) {
        ss = (struct rsbus__schemas *)rsbus__alloc(&bus->a, sizeof *ss);
        if (ss) {
            memset(ss, 0, sizeof *ss);
            ss->slot = (rsbus__schema **)rsbus__alloc(&bus->a, 16 * sizeof *ss->slot);
            if (!ss->slot) { rsbus__free(&bus->a, ss, sizeof *ss); ss = NULL; }
        }
        if (!ss) goto nomem;
        memset((void *)ss->slot, 0, 16 * sizeof *ss->slot);
        ss->cap = 16;
        bus->schemas = ss;
    }
    slot = rsbus__schema_slot(ss, sc->type, sc->type_len, sc->version);
    if (*slot) {                                           /* a replacement */
        rsbus__free(&bus->a, *slot, (*slot)->size);
        *slot = sc;
        return RSBUS_OK;
    }
    if ((ss->count + 1) * 2 > ss->cap) {
        size_t ncap = ss->cap * 2, ocap = ss->cap;
        rsbus__schema **ns = (rsbus__schema **)rsbus__alloc(&bus->a, ncap * sizeof *ns), **old = ss->slot;
        if (!ns) goto nomem;
        memset((void *)ns, 0, ncap * sizeof *ns);
        ss->slot = ns;
        ss->cap = ncap;
        for (i = 0; i < ocap; i++)
            if (old[i]) *rsbus__schema_slot(ss, old[i]->type, old[i]->type_len, old[i]->version) = old[i];
        rsbus__free(&bus->a, (void *)old, ocap * sizeof *old);
        slot = rsbus__schema_slot(ss, sc->type, sc->type_len, sc->version);
    }
    *slot = sc;
    ss->count++;
    return RSBUS_OK;
nomem:
    rsbus__fail(bus, RSBUS_E_NOMEM, "schema_register %s v%d: out of memory", sc->type, sc->version);
    rsbus__free(&bus->a, sc, sc->size);
    return RSBUS_E_NOMEM;
}

RSBUS__PUBLIC rsbus_result rsbus_schema_register(rsbus *bus, const char *type, int version, const char *schema_json) {
    rsbus__schema *sc;
    size_t tlen, n, off = 0;
    rsbus_result r;
    if (!bus) return RSBUS_E_ARG;
    bus->err[0] = 0;
    if (!type || !rsbus__type_ok(type, tlen = strlen(type)))
        return rsbus__fail(bus, RSBUS_E_ARG, "schema_register: type must be 1..128 bytes of [A-Za-z0-9._:-]");
    if (version < 0) return rsbus__fail(bus, RSBUS_E_ARG, "schema_register %s: version must be positive (0 means 1)", type);
    if (version == 0) version = 1;
    if (!schema_json) return rsbus__fail(bus, RSBUS_E_ARG, "schema_register %s v%d: schema is NULL", type, version);
    n = strlen(schema_json);
    if (n > RSBUS__SCHEMA_MAX_TEXT)
        return rsbus__fail(bus, RSBUS_E_ARG, "schema_register %s v%d: schema is %lu bytes, more than %d", type, version,
                           (unsigned long)n, RSBUS__SCHEMA_MAX_TEXT);
    if (rsbus_json_validate(schema_json, n, &off) != RSBUS_OK)
        return rsbus__fail(bus, RSBUS_E_ARG, "schema_register %s v%d: schema is not valid JSON (at byte %lu)", type,
                           version, (unsigned long)off);
    if (bus->schemas && bus->schemas->count >= RSBUS__SCHEMA_MAX_COUNT &&
        !*rsbus__schema_slot(bus->schemas, type, tlen, version))
        return rsbus__fail(bus, RSBUS_E_ARG, "schema_register %s v%d: this bus has %d schemas already, the most it "
                           "takes", type, version, RSBUS__SCHEMA_MAX_COUNT);
    if ((r = rsbus__schema_compile(bus, type, tlen, version, schema_json, n, &sc)) != RSBUS_OK) return r;
    return rsbus__schema_put(bus, sc);
}

/* ---- checking a payload ---- */

typedef struct rsbus__sframe {
    const rsbus__snode *node;      /* FIELDS (an object) or ARRAY_OF (an array) */
    const rsbus__snode *cur;       /* FIELDS: the field whose value is being checked */
    uint64_t index;                /* ARRAY_OF: the element being checked */
    uint32_t hint;                 /* FIELDS: where to look first for the next key (fields usually come in order) */
    uint32_t nreq;                 /* FIELDS: required fields seen */
    uint64_t seen[RSBUS__SCHEMA_MAX_OBJ / 64];
} rsbus__sframe;


/* The field of the object in fr named by the key k..ke, marked seen; NULL for a field the schema does not name. */
RSBUS__PRIVATE const rsbus__snode *rsbus__schema_field(const rsbus__schema *sc, rsbus__sframe *fr,
                                                       const unsigned char *k, const unsigned char *ke, int esc) {
    const rsbus__snode *fl = sc->nodes + fr->node->child;
    uint32_t n = fr->node->nchild, i = fr->hint, j;
    size_t klen = (size_t)(ke - k);
    for (j = 0; j < n; j++, i++) {
        const rsbus__snode *f;
        if (i >= n) i = 0;
        f = &fl[i];
        if (esc ? !rsbus__json_str_eq(k, ke, sc->names + f->name_off, f->name_len)
                : (f->name_len != klen || memcmp(sc->names + f->name_off, k, klen) != 0)) continue;
        fr->hint = i + 1 < n ? i + 1 : 0;
        if (!((fr->seen[i >> 6] >> (i & 63)) & 1)) {
            fr->seen[i >> 6] |= (uint64_t)1 << (i & 63);
            if (!f->optional) fr->nreq++;
        }
        fr->cur = f;
        return f;
    }
    fr->cur = NULL;
    return NULL;
}

/* Writes lead "PATH" tail into out: the path of frames 0..depth-1 (field names, array indexes), then
   last's name if set. A path too long for out keeps its end, after "...". */
RSBUS__PRIVATE void rsbus__schema_msg(const rsbus__schema *sc, const rsbus__sframe *f, unsigned depth,
                                      const rsbus__snode *last, const char *lead, const char *tail, char *out,
                                      size_t size) {
    char path[RSBUS__SCHEMA_PATH_MAX + 32];
    size_t len = 0, fixed = strlen(lead) + strlen(tail) + 2, room, skip;
    unsigned i;
    for (i = 0; i <= depth; i++) {
        const char *name = NULL;
        size_t n = 0;
        char num[24];
        if (i < depth && f[i].node->kind == RSBUS__SK_ARRAY_OF) {
            n = (size_t)snprintf(num, sizeof num, "%llu", (unsigned long long)f[i].index);
            name = num;
        } else {
            const rsbus__snode *nd = i < depth ? f[i].cur : last;
            if (!nd) continue;
            name = sc->names + nd->name_off;
            n = nd->name_len;
        }
        if (len + n + 2 > sizeof path) break;           /* cannot happen: the path holds the deepest one */
        if (len) path[len++] = '.';
        memcpy(path + len, name, n);
        len += n;
    }
    path[len] = 0;
    if (size == 0) return;
    room = size > fixed ? size - 1 - fixed : 0;
    if (len <= room) {
        snprintf(out, size, "%s\"%s\"%s", lead, path, tail);
        return;
    }
    skip = room > 3 ? len - (room - 3) : len;          /* keep the end of the path */
    while (skip < len && ((unsigned char)path[skip] & 0xC0) == 0x80) skip++;   /* not inside a UTF-8 character */
    snprintf(out, size, "%s\"...%s\"%s", lead, path + skip, tail);
}

/* Checks data against sc: 0 when it matches, else 1 with why in msg (size bytes, truncated to fit).
   data has passed rsbus_json_validate (the callers check it first): on other text the answer means
   nothing, but no byte outside data is read either way. */
RSBUS__PRIVATE int rsbus__schema_validate(const rsbus__schema *sc, const char *data, size_t len, char *msg, size_t size) {
    rsbus__sframe f[RSBUS__SCHEMA_MAX_DEPTH];
    rsbus__sframe *fr = NULL;
    const rsbus__snode *spec = sc->nodes, *fl;
    const unsigned char *p = (const unsigned char *)data, *e = p + len, *q, *r, *err;
    char tail[40];
    unsigned d = 0;
    uint32_t i;
    int esc = 0, member = 0;
    unsigned char c;

    p = rsbus__schema_ws(p, e);
    if (p >= e || *p != '{') {
        snprintf(msg, size, "the payload must be a JSON object");
        return 1;
    }
    /* spec: nodes[0], the top object */
open_obj:                                                  /* p at '{', spec a FIELDS node */
    if (d >= RSBUS__SCHEMA_MAX_DEPTH) goto bad_json;       /* cannot happen: the schema is no deeper */
    fr = &f[d++];
    fr->node = spec;
    fr->cur = NULL;
    fr->hint = 0;
    fr->nreq = 0;
    memset(fr->seen, 0, sizeof fr->seen);
    p = rsbus__schema_ws(p + 1, e);
    if (p < e && *p == '}') goto close_obj;
member:                                                    /* p at a key of the object in fr */
    if (p >= e || *p != '"') goto bad_json;
    esc = 0;
    q = rsbus__json_string(p + 1, e, &err, &esc);
    if (!q) goto bad_json;
    spec = fr->node->nchild ? rsbus__schema_field(sc, fr, p + 1, q - 1, esc) : NULL;
    if (!spec) fr->cur = NULL;
    p = rsbus__schema_ws(q, e);
    if (p >= e || *p != ':') goto bad_json;
    p = rsbus__schema_ws(p + 1, e);
    member = 1;
    goto value;
element:                                                   /* p at an element of the array in fr */
    spec = &sc->nodes[fr->node->child];
    member = 0;
value:
    if (p >= e) goto bad_json;
    c = *p;
    if (!spec || spec->kind == RSBUS__SK_ANY || (c == 'n' && member && spec->optional)) {
        q = rsbus__schema_skip(p, e);
        goto next;
    }
    switch (spec->kind) {
    case RSBUS__SK_STRING:
        if (c != '"') goto mismatch;
        q = rsbus__json_string(p + 1, e, &err, &esc);
        break;
    case RSBUS__SK_NUMBER:
    case RSBUS__SK_INTEGER:
        if (c != '-' && !RSBUS__JSON_DIGIT(c)) goto mismatch;
        q = rsbus__json_number(p, e, &err);
        if (q && spec->kind == RSBUS__SK_INTEGER)
            for (r = p; r < q; r++) if (*r == '.' || *r == 'e' || *r == 'E') goto mismatch;
        break;
    case RSBUS__SK_BOOLEAN:
        if (c != 't' && c != 'f') goto mismatch;
        q = rsbus__schema_skip(p, e);
        break;
    case RSBUS__SK_OBJECT:
        if (c != '{') goto mismatch;
        q = rsbus__schema_skip(p, e);
        break;
    case RSBUS__SK_ARRAY:
        if (c != '[') goto mismatch;
        q = rsbus__schema_skip(p, e);
        break;
    case RSBUS__SK_FIELDS:
        if (c != '{') goto mismatch;
        goto open_obj;
    default:                                               /* RSBUS__SK_ARRAY_OF */
        if (c != '[') goto mismatch;
        if (d >= RSBUS__SCHEMA_MAX_DEPTH) goto bad_json;   /* cannot happen */
        fr = &f[d++];
        fr->node = spec;
        fr->index = 0;
        p = rsbus__schema_ws(p + 1, e);
        if (p < e && *p == ']') { p++; goto closed; }
        goto element;
    }
next:
    if (!q) goto bad_json;
    p = q;
after:                                                     /* a value of the container in fr ended at p */
    p = rsbus__schema_ws(p, e);
    if (p >= e) goto bad_json;
    if (fr->node->kind == RSBUS__SK_FIELDS) {
        if (*p == ',') { p = rsbus__schema_ws(p + 1, e); goto member; }
        if (*p == '}') goto close_obj;
    } else {
        if (*p == ',') { p = rsbus__schema_ws(p + 1, e); fr->index++; goto element; }
        if (*p == ']') { p++; goto closed; }
    }
    goto bad_json;
close_obj:                                                 /* p at the '}' of the object in fr */
    if (fr->nreq < fr->node->nreq) {
        fl = sc->nodes + fr->node->child;
        for (i = 0; i < fr->node->nchild; i++)
            if (!fl[i].optional && !((fr->seen[i >> 6] >> (i & 63)) & 1)) break;
        if (i == fr->node->nchild) goto bad_json;          /* cannot happen */
        rsbus__schema_msg(sc, f, d - 1, &fl[i], "missing required field ", "", msg, size);
        return 1;
    }
    p++;
closed:                                                    /* the container in fr ended before p */
    d--;
    if (d == 0) return 0;                                  /* the text after it was validated before */
    fr = &f[d - 1];
    goto after;
mismatch:
    snprintf(tail, sizeof tail, " must be %s", rsbus__schema_musts[spec->kind]);
    rsbus__schema_msg(sc, f, d, NULL, "field ", tail, msg, size);
    return 1;
bad_json:
    snprintf(msg, size, "data is not valid JSON");
    return 1;
}

/* rsbus__check_event: RSBUS_OK, or RSBUS_E_ARG with the mismatch in bus->err. index: the event's place in
   a batch ((size_t)-1: a single publish). */
RSBUS__PRIVATE rsbus_result rsbus__schema_publish(rsbus *bus, const char *type, int version, const char *data,
                                                  size_t len, size_t index) {
    const rsbus__schema *sc = rsbus__schema_find(bus, type, version);
    char lead[RSBUS__TYPE_MAX + 32], at[64], body[256];
    size_t room;
    if (!sc) return RSBUS_OK;
    snprintf(lead, sizeof lead, "publish %s v%d: ", type, version);
    rsbus__at(index, at);
    room = sizeof bus->err - strlen(lead) - strlen(at);
    if (room > sizeof body) room = sizeof body;
    if (!rsbus__schema_validate(sc, data, len, body, room)) return RSBUS_OK;
    return rsbus__fail(bus, RSBUS_E_ARG, "%s%s%s", lead, body, at);
}

/* rsbus__dispatch, once rsbus__decode found the entry well-formed: NULL, or why the entry's data does
   not match the schema of its (type, version): "schema: TYPE vN: ...", in the bus, short enough to
   follow "malformed: " in RSBUS_REASON_SIZE. */
RSBUS__PRIVATE const char *rsbus__schema_decode(rsbus *bus, const rsbus_msg *m) {
    const rsbus__schema *sc = rsbus__schema_find(bus, m->type, m->version);
    char *out;
    size_t k, room;
    if (!sc) return NULL;
    out = bus->schemas->reason;
    k = (size_t)snprintf(out, RSBUS_REASON_SIZE, "schema: %s v%d: ", m->type, m->version);
    room = RSBUS_REASON_SIZE - sizeof "malformed: " + 1 - k;   /* 256 - 11 - k, the NUL included */
    if (!rsbus__schema_validate(sc, m->data, m->data_len, out + k, room)) return NULL;
    return out;
}
#else /* RSBUS_NO_SCHEMA: no schema is ever registered (bus->schemas stays NULL), so these are never called */
RSBUS__PRIVATE rsbus_result rsbus__schema_publish(rsbus *bus, const char *type, int version, const char *data,
                                                  size_t len, size_t index) {
    (void)bus; (void)type; (void)version; (void)data; (void)len; (void)index;
    return RSBUS_OK;
}
RSBUS__PRIVATE const char *rsbus__schema_decode(rsbus *bus, const rsbus_msg *m) { (void)bus; (void)m; return NULL; }
RSBUS__PRIVATE void rsbus__schema_free(rsbus *bus) { (void)bus; }
RSBUS__PUBLIC rsbus_result rsbus_schema_register(rsbus *bus, const char *type, int version, const char *schema_json) {
    (void)type; (void)version; (void)schema_json;
    return rsbus__compiled_out(bus, "rsbus_schema_register", "RSBUS_NO_SCHEMA");
}
#endif /* RSBUS_NO_SCHEMA */
#ifndef RSBUS_NO_MEM
/* >>in-process bus (mem://)
   A mem:// bus is another kind of connection: its hiredis context has no socket (redisConnectFd(-1)), and
   what rsbus would send to Redis is run here, against a namespace of keys held in the process, by an
   engine that implements the commands rsbus sends with Redis 7.0's meanings and error texts. Each reply
   is written as RESP and fed to the context's reader, so rsbus reads it through the same code (and the
   same reply arena) as a reply from a socket. The hooks in >>connection are "if (cn->mem) ..." at the top
   of connect, disconnect, write, read, wait and ensure.
   - A namespace (mem://<name>; mem:// is "") is found by name in a process-wide list, the one mutable
     global of rsbus (guarded by rsbus__mem_lock), and freed when its last bus closes. Its keys are guarded
     by its own mutex: buses stay one per thread, any number of threads share a namespace.
   - Commands run when they are written, in order, each one atomically (MULTI/EXEC: the whole block). A
     read with BLOCK that finds nothing stays at the head of the connection's queue (with the commands
     written after it) until data comes, its BLOCK ends or the connection is dropped: the waiting is done
     where rsbus waits for a reply (rsbus__wait_readable, rsbus__read_reply), on the namespace's
     condition variable, which a write signals, in slices of at most 100 ms so that a stop is noticed.
   - Memory: entries are freed when trimmed or deleted, expired keys when looked up or swept (a few
     buckets per SET); the namespace's allocations go through the allocator of the bus that opened it
     first. */

typedef struct rsbus__mid { uint64_t ms, seq; } rsbus__mid;
/* An entry: its id, its node, and its fields as RESP ("*<n>\r\n$..", what a reply sends), after it. */
typedef struct rsbus__ment { rsbus__mid id; uint64_t node; size_t len; } rsbus__ment;
/* Redis keeps a stream's entries in nodes of at most 100 entries or about 4 KiB; "~" trimming removes
   only whole nodes, so the same MAXLEN ~ leaves the same length here as there (within the byte estimate). */
typedef struct rsbus__mnode { size_t total, live, bytes; rsbus__mid max; } rsbus__mnode;
#define RSBUS__MNODE_ENTRIES 100
#define RSBUS__MNODE_BYTES 4096
typedef struct rsbus__mcons { char *name; size_t len; int64_t seen_ms; size_t pending; } rsbus__mcons;
typedef struct rsbus__mpel { rsbus__mid id; rsbus__mcons *c; int64_t time_ms, count; } rsbus__mpel;
typedef struct rsbus__mgroup {
    char *name; size_t len;
    rsbus__mid last; int64_t entries_read;    /* -1: unknown */
    rsbus__mpel *pel; size_t npel, cappel;    /* by id */
    rsbus__mcons **cons; size_t ncons, capcons;   /* by name */
} rsbus__mgroup;
typedef struct rsbus__mstream {
    rsbus__ment **e; size_t head, n, cap;     /* the entries e[head .. head + n), by id */
    rsbus__mnode *nodes; size_t nhead, nn, ncap; uint64_t nseq0;   /* node seq s is nodes[s - nseq0] */
    rsbus__mid last, max_deleted; uint64_t added;
    rsbus__mgroup **g; size_t ng, capg;       /* by name */
} rsbus__mstream;
enum { RSBUS__MK_STRING = 1, RSBUS__MK_STREAM, RSBUS__MK_HASH };
typedef struct rsbus__mhf { char *f, *v; size_t fl, vl; } rsbus__mhf;
typedef struct rsbus__mkey {
    struct rsbus__mkey *next;
    size_t hash; uint64_t ver;
    int type;
    int64_t expire_ms;                        /* 0: none; else wall-clock ms */
    char *name; size_t len;                   /* follows the struct */
    char *val; size_t vlen;                   /* string */
    rsbus__mstream *st;                       /* stream */
    rsbus__mhf *h; size_t hn, hcap;           /* hash */
} rsbus__mkey;
typedef struct rsbus__mns {
    struct rsbus__mns *next;
    char name[RSBUS__MEM_NAME_MAX + 1];
    int refs, waiters;
    rsbus_allocator a;
    pthread_mutex_t mu;
    pthread_cond_t cv;                        /* broadcast by writes that a blocked read may wait for */
    rsbus__mkey **tab; size_t nb, nkeys, sweep;
    uint64_t ver;
    char policy[16];                          /* CONFIG SET maxmemory-policy: kept and reported, nothing is evicted */
    uint64_t calls[40], subcalls[16];         /* INFO commandstats: per command, per XINFO/XGROUP/CONFIG subcommand */
} rsbus__mns;
typedef struct rsbus__marg { const char *p; size_t n; const char *raw; } rsbus__marg;   /* raw: its "$" */
typedef struct rsbus__mwatch { char *name; size_t len; uint64_t ver; } rsbus__mwatch;
/* The per-bus side of a mem:// connection. */
struct rsbus__mconn {
    rsbus__mns *ns;
    char *q; size_t q_pos, q_len, q_cap;      /* commands written and not run yet */
    int64_t block_until;                      /* the head command's BLOCK ends then (monotonic ms); 0: not begun */
    char *rep; size_t rep_len, rep_cap;       /* replies of the command being run */
    rsbus__marg *argv; size_t cap_argv;
    int in_multi, multi_bad;                  /* MULTI: commands queued in tx, a refused one */
    char *tx; size_t tx_len, tx_cap; size_t tx_n;
    rsbus__mwatch *w; size_t nw, capw;
    int oom;
    int64_t block_ms;                         /* the head command's BLOCK */
    rsbus__mid dollar[64]; size_t dollar_n;   /* XREAD ... $ of the head command, as when it began */
    uint64_t seen_ver;                        /* the namespace's version when the head command blocked */
};

static pthread_mutex_t rsbus__mem_lock = PTHREAD_MUTEX_INITIALIZER;
static rsbus__mns *rsbus__mem_spaces;   /* every namespace in use in the process */

/* ---- reply writer ---- */
RSBUS__PRIVATE void rsbus__mr_raw(struct rsbus__mconn *m, rsbus__mns *ns, const char *s, size_t n) {
    char *p;
    if (m->oom) return;
    p = (char *)rsbus__grow(&ns->a, m->rep, &m->rep_cap, m->rep_len + n, 1, 256);
    if (!p) { m->oom = 1; return; }
    m->rep = p;
    memcpy(m->rep + m->rep_len, s, n);
    m->rep_len += n;
}
#define RSBUS__MR_LIT(m, ns, s) rsbus__mr_raw((m), (ns), "" s, sizeof(s) - 1)
RSBUS__PRIVATE void rsbus__mr_head(struct rsbus__mconn *m, rsbus__mns *ns, char t, int64_t v) {
    char b[32];
    int k = snprintf(b, sizeof b, "%c%lld\r\n", t, (long long)v);
    rsbus__mr_raw(m, ns, b, (size_t)k);
}
RSBUS__PRIVATE void rsbus__mr_bulk(struct rsbus__mconn *m, rsbus__mns *ns, const char *p, size_t n) {
    rsbus__mr_head(m, ns, '$', (int64_t)n);
    rsbus__mr_raw(m, ns, p, n);
    RSBUS__MR_LIT(m, ns, "\r\n");
}
RSBUS__PRIVATE void rsbus__mr_bulkz(struct rsbus__mconn *m, rsbus__mns *ns, const char *s) { rsbus__mr_bulk(m, ns, s, strlen(s)); }
RSBUS__PRIVATE void rsbus__mr_int(struct rsbus__mconn *m, rsbus__mns *ns, int64_t v) { rsbus__mr_head(m, ns, ':', v); }
RSBUS__PRIVATE void rsbus__mr_arr(struct rsbus__mconn *m, rsbus__mns *ns, size_t n) { rsbus__mr_head(m, ns, '*', (int64_t)n); }
/* An error reply: newlines become spaces, as Redis does. */
RSBUS__PRIVATE void rsbus__mr_err(struct rsbus__mconn *m, rsbus__mns *ns, const char *fmt, ...) RSBUS__PRINTF(3, 4);
RSBUS__PRIVATE void rsbus__mr_err(struct rsbus__mconn *m, rsbus__mns *ns, const char *fmt, ...) {
    char b[512];
    size_t i, n;
    va_list ap;
    b[0] = '-';
    va_start(ap, fmt);
    vsnprintf(b + 1, sizeof b - 3, fmt, ap);
    va_end(ap);
    n = strlen(b);
    for (i = 1; i < n; i++) if (b[i] == '\r' || b[i] == '\n') b[i] = ' ';
    b[n++] = '\r'; b[n++] = '\n';
    rsbus__mr_raw(m, ns, b, n);
}
/* Puts "*n\r\n" at offset 'at', before what was written since: an array whose length is known at its end. */
RSBUS__PRIVATE void rsbus__mr_insert_arr(struct rsbus__mconn *m, rsbus__mns *ns, size_t at, size_t n) {
    char b[32];
    size_t k = (size_t)snprintf(b, sizeof b, "*%lu\r\n", (unsigned long)n), body = m->rep_len - at;
    rsbus__mr_raw(m, ns, b, k);
    if (m->oom) return;
    memmove(m->rep + at + k, m->rep + at, body);
    memcpy(m->rep + at, b, k);
}
RSBUS__PRIVATE int rsbus__mid_fmt(rsbus__mid id, char out[48]) {
    return snprintf(out, 48, "%llu-%llu", (unsigned long long)id.ms, (unsigned long long)id.seq);
}
RSBUS__PRIVATE void rsbus__mr_id(struct rsbus__mconn *m, rsbus__mns *ns, rsbus__mid id) {
    char b[48];
    int k = rsbus__mid_fmt(id, b);
    rsbus__mr_bulk(m, ns, b, (size_t)k);
}
/* A name for an error message: at most 128 bytes of it. */
#define RSBUS__MNAME(a) (int)RSBUS__MIN((a).n, 128), (a).p

/* ---- ids ---- */
RSBUS__PRIVATE int rsbus__mid_cmp(rsbus__mid a, rsbus__mid b) {
    if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq) return a.seq < b.seq ? -1 : 1;
    return 0;
}
RSBUS__PRIVATE int rsbus__mid_zero(rsbus__mid a) { return a.ms == 0 && a.seq == 0; }
RSBUS__PRIVATE int rsbus__mu64(const char *s, size_t n, uint64_t *out) {
    size_t i;
    uint64_t v = 0;
    if (n == 0 || n > 20) return 0;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}
/* A stream id argument: "ms-seq", or "ms" with missing_seq as its seq; "-" and "+" when ends is set;
   "(" before it (exclusive) when excl is not NULL. 0: invalid. */
RSBUS__PRIVATE int rsbus__mid_parse(rsbus__marg a, uint64_t missing_seq, int ends, int *excl, rsbus__mid *out) {
    const char *s = a.p, *dash;
    size_t n = a.n;
    if (excl) *excl = 0;
    if (excl && n > 1 && s[0] == '(') { *excl = 1; s++; n--; }
    if (ends && n == 1 && s[0] == '-') { out->ms = 0; out->seq = 0; return excl ? !*excl : 1; }
    if (ends && n == 1 && s[0] == '+') { out->ms = UINT64_MAX; out->seq = UINT64_MAX; return excl ? !*excl : 1; }
    dash = (const char *)memchr(s, '-', n);
    if (!dash) { out->seq = missing_seq; return rsbus__mu64(s, n, &out->ms); }
    return rsbus__mu64(s, (size_t)(dash - s), &out->ms) &&
           rsbus__mu64(dash + 1, n - (size_t)(dash - s) - 1, &out->seq);
}
RSBUS__PRIVATE int rsbus__mid_incr(rsbus__mid *id) {
    if (id->seq == UINT64_MAX) { if (id->ms == UINT64_MAX) return 0; id->ms++; id->seq = 0; }
    else id->seq++;
    return 1;
}
RSBUS__PRIVATE int rsbus__mid_decr(rsbus__mid *id) {
    if (id->seq == 0) { if (id->ms == 0) return 0; id->ms--; id->seq = UINT64_MAX; }
    else id->seq--;
    return 1;
}

/* ---- arguments ---- */
RSBUS__PRIVATE int rsbus__mieq(rsbus__marg a, const char *s) {
    size_t n = strlen(s), i;
    if (a.n != n) return 0;
    for (i = 0; i < n; i++) {
        char c = a.p[i];
        if (c >= 'a' && c <= 'z') c = (char)(c - 32);
        if (c != s[i]) return 0;
    }
    return 1;
}
RSBUS__PRIVATE int rsbus__mieq_lower(rsbus__marg a, const char *s) {   /* s in lower case */
    size_t n = strlen(s), i;
    if (a.n != n) return 0;
    for (i = 0; i < n; i++) if ((a.p[i] | 0x20) != s[i]) return 0;
    return 1;
}
RSBUS__PRIVATE int rsbus__meq(rsbus__marg a, const char *p, size_t n) { return a.n == n && memcmp(a.p, p, n) == 0; }
RSBUS__PRIVATE int rsbus__mi64(rsbus__marg a, int64_t *out) { return rsbus__parse_i64(a.p, a.n, out); }

/* ---- keys ---- */
RSBUS__PRIVATE size_t rsbus__mhash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    size_t i;
    for (i = 0; i < n; i++) { h ^= (unsigned char)p[i]; h *= 1099511628211ull; }
    return (size_t)(h ^ (h >> 29));
}
RSBUS__PRIVATE void rsbus__mstream_free(rsbus__mns *ns, rsbus__mstream *st);
RSBUS__PRIVATE void rsbus__mkey_free(rsbus__mns *ns, rsbus__mkey *k) {
    size_t i;
    if (k->type == RSBUS__MK_STRING) rsbus__free(&ns->a, k->val, k->vlen + 1);
    if (k->type == RSBUS__MK_STREAM) rsbus__mstream_free(ns, k->st);
    for (i = 0; i < k->hn; i++) {
        rsbus__free(&ns->a, k->h[i].f, k->h[i].fl + 1);
        rsbus__free(&ns->a, k->h[i].v, k->h[i].vl + 1);
    }
    rsbus__free(&ns->a, k->h, k->hcap * sizeof *k->h);
    rsbus__free(&ns->a, k, sizeof *k + k->len + 1);
}
RSBUS__PRIVATE void rsbus__mkey_del(rsbus__mns *ns, rsbus__mkey *k) {
    rsbus__mkey **link = &ns->tab[k->hash % ns->nb];
    while (*link != k) link = &(*link)->next;
    *link = k->next;
    ns->nkeys--;
    ns->ver++;
    rsbus__mkey_free(ns, k);
}
RSBUS__PRIVATE int rsbus__mkey_expired(const rsbus__mkey *k, int64_t now) { return k->expire_ms && k->expire_ms <= now; }
/* The key, or NULL (an expired one is deleted on the way). */
RSBUS__PRIVATE rsbus__mkey *rsbus__mkey_get(rsbus__mns *ns, const char *p, size_t n) {
    size_t h;
    rsbus__mkey *k;
    if (!ns->nb) return NULL;
    h = rsbus__mhash(p, n);
    for (k = ns->tab[h % ns->nb]; k; k = k->next) {
        if (k->hash != h || k->len != n || memcmp(k->name, p, n) != 0) continue;
        if (rsbus__mkey_expired(k, rsbus__now_ms())) { rsbus__mkey_del(ns, k); return NULL; }
        return k;
    }
    return NULL;
}
/* A new key (the caller checked it does not exist); NULL when out of memory. */
RSBUS__PRIVATE rsbus__mkey *rsbus__mkey_new(rsbus__mns *ns, const char *p, size_t n, int type) {
    rsbus__mkey *k;
    if (ns->nkeys >= ns->nb) {   /* rehash at load 1 */
        size_t nb = ns->nb ? ns->nb * 2 : 64, i;
        rsbus__mkey **t = (rsbus__mkey **)rsbus__alloc(&ns->a, nb * sizeof *t);
        if (!t) return NULL;
        memset(t, 0, nb * sizeof *t);
        for (i = 0; i < ns->nb; i++) {
            while (ns->tab[i]) {
                rsbus__mkey *e = ns->tab[i];
                ns->tab[i] = e->next;
                e->next = t[e->hash % nb];
                t[e->hash % nb] = e;
            }
        }
        rsbus__free(&ns->a, ns->tab, ns->nb * sizeof *ns->tab);
        ns->tab = t; ns->nb = nb;
    }
    k = (rsbus__mkey *)rsbus__alloc(&ns->a, sizeof *k + n + 1);
    if (!k) return NULL;
    memset(k, 0, sizeof *k);
    k->name = (char *)(k + 1);
    memcpy(k->name, p, n);
    k->name[n] = 0;
    k->len = n;
    k->type = type;
    k->hash = rsbus__mhash(p, n);
    k->ver = ++ns->ver;
    if (type == RSBUS__MK_STREAM) {
        k->st = (rsbus__mstream *)rsbus__alloc(&ns->a, sizeof *k->st);
        if (!k->st) { rsbus__free(&ns->a, k, sizeof *k + n + 1); return NULL; }
        memset(k->st, 0, sizeof *k->st);
    }
    k->next = ns->tab[k->hash % ns->nb];
    ns->tab[k->hash % ns->nb] = k;
    ns->nkeys++;
    return k;
}
RSBUS__PRIVATE void rsbus__mkey_touch(rsbus__mns *ns, rsbus__mkey *k) { k->ver = ++ns->ver; }
/* Deletes expired keys in a few buckets (called by SET), so that keys never read again still go. */
RSBUS__PRIVATE void rsbus__mkey_sweep(rsbus__mns *ns) {
    int64_t now = rsbus__now_ms();
    int i;
    for (i = 0; i < 4 && ns->nb; i++) {
        rsbus__mkey *k = ns->tab[ns->sweep % ns->nb], *next;
        for (; k; k = next) { next = k->next; if (rsbus__mkey_expired(k, now)) rsbus__mkey_del(ns, k); }
        ns->sweep++;
    }
}

/* ---- streams ---- */
RSBUS__PRIVATE void rsbus__ment_free(rsbus__mns *ns, rsbus__ment *e) { rsbus__free(&ns->a, e, sizeof *e + e->len); }
RSBUS__PRIVATE void rsbus__mgroup_free(rsbus__mns *ns, rsbus__mgroup *g) {
    size_t i;
    for (i = 0; i < g->ncons; i++) {
        rsbus__free(&ns->a, g->cons[i]->name, g->cons[i]->len + 1);
        rsbus__free(&ns->a, g->cons[i], sizeof *g->cons[i]);
    }
    rsbus__free(&ns->a, (void *)g->cons, g->capcons * sizeof *g->cons);
    rsbus__free(&ns->a, g->pel, g->cappel * sizeof *g->pel);
    rsbus__free(&ns->a, g->name, g->len + 1);
    rsbus__free(&ns->a, g, sizeof *g);
}
RSBUS__PRIVATE void rsbus__mstream_free(rsbus__mns *ns, rsbus__mstream *st) {
    size_t i;
    for (i = 0; i < st->n; i++) rsbus__ment_free(ns, st->e[st->head + i]);
    for (i = 0; i < st->ng; i++) rsbus__mgroup_free(ns, st->g[i]);
    rsbus__free(&ns->a, (void *)st->e, st->cap * sizeof *st->e);
    rsbus__free(&ns->a, st->nodes, st->ncap * sizeof *st->nodes);
    rsbus__free(&ns->a, (void *)st->g, st->capg * sizeof *st->g);
    rsbus__free(&ns->a, st, sizeof *st);
}
RSBUS__PRIVATE rsbus__ment *rsbus__ment_at(const rsbus__mstream *st, size_t i) { return st->e[st->head + i]; }
/* Index of the first entry with id >= id (st->n when none). */
RSBUS__PRIVATE size_t rsbus__mfind(const rsbus__mstream *st, rsbus__mid id) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rsbus__mid_cmp(rsbus__ment_at(st, mid)->id, id) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
}
RSBUS__PRIVATE rsbus__ment *rsbus__mget(const rsbus__mstream *st, rsbus__mid id) {
    size_t i = rsbus__mfind(st, id);
    return i < st->n && rsbus__mid_cmp(rsbus__ment_at(st, i)->id, id) == 0 ? rsbus__ment_at(st, i) : NULL;
}
RSBUS__PRIVATE rsbus__mnode *rsbus__mnode_of(rsbus__mstream *st, const rsbus__ment *e) {
    return &st->nodes[(size_t)(e->node - st->nseq0)];
}
/* Forgets empty nodes at the front. */
RSBUS__PRIVATE void rsbus__mnodes_pop(rsbus__mstream *st) {
    while (st->nn && st->nodes[st->nhead].live == 0) { st->nhead++; st->nn--; }
}
/* Removes entry i (by index). */
RSBUS__PRIVATE void rsbus__mremove(rsbus__mns *ns, rsbus__mstream *st, size_t i) {
    rsbus__ment *e = rsbus__ment_at(st, i);
    rsbus__mnode *nd = rsbus__mnode_of(st, e);
    nd->live--;
    if (i == 0) st->head++;
    else memmove(&st->e[st->head + i], &st->e[st->head + i + 1], (st->n - i - 1) * sizeof *st->e);
    st->n--;
    if (st->n == 0) st->head = 0;
    rsbus__ment_free(ns, e);
    rsbus__mnodes_pop(st);
}
/* Appends an entry whose id is above the last one. 0 when out of memory. */
RSBUS__PRIVATE int rsbus__mappend(rsbus__mns *ns, rsbus__mstream *st, rsbus__ment *e) {
    rsbus__mnode *nd;
    if (st->head + st->n == st->cap) {
        if (st->head && st->head >= st->n) {
            memmove(st->e, st->e + st->head, st->n * sizeof *st->e);
            st->head = 0;
        } else {
            rsbus__ment **p = (rsbus__ment **)rsbus__grow(&ns->a, (void *)st->e, &st->cap, st->head + st->n + 1,
                                                          sizeof *p, 16);
            if (!p) return 0;
            st->e = p;
        }
    }
    nd = st->nn ? &st->nodes[st->nhead + st->nn - 1] : NULL;
    if (!nd || nd->total >= RSBUS__MNODE_ENTRIES || nd->bytes >= RSBUS__MNODE_BYTES) {
        if (st->nhead + st->nn == st->ncap) {
            if (st->nhead && st->nhead >= st->nn) {
                memmove(st->nodes, st->nodes + st->nhead, st->nn * sizeof *st->nodes);
                st->nseq0 += st->nhead;
                st->nhead = 0;
            } else {
                rsbus__mnode *p = (rsbus__mnode *)rsbus__grow(&ns->a, st->nodes, &st->ncap, st->nhead + st->nn + 1,
                                                              sizeof *p, 8);
                if (!p) return 0;
                st->nodes = p;
            }
        }
        nd = &st->nodes[st->nhead + st->nn];
        memset(nd, 0, sizeof *nd);
        st->nn++;
    }
    e->node = st->nseq0 + (uint64_t)(nd - st->nodes);
    nd->total++; nd->live++; nd->bytes += e->len + 16; nd->max = e->id;
    st->e[st->head + st->n++] = e;
    st->last = e->id;
    st->added++;
    return 1;
}
/* Trims: by MAXLEN (minid NULL) or MINID; approx removes whole nodes only; limit 0: none. Returns the
   number of entries removed. */
RSBUS__PRIVATE int64_t rsbus__mtrim(rsbus__mns *ns, rsbus__mstream *st, int64_t maxlen, const rsbus__mid *minid,
                                    int approx, int64_t limit) {
    int64_t removed = 0;
    while (st->n > 0) {
        if (approx) {
            rsbus__mnode *nd = &st->nodes[st->nhead];
            size_t k;
            if (minid ? rsbus__mid_cmp(nd->max, *minid) >= 0 : (int64_t)(st->n - nd->live) < maxlen) break;
            if (limit && removed + (int64_t)nd->live > limit) break;
            k = nd->live;
            while (k--) { rsbus__mremove(ns, st, 0); removed++; }
        } else {
            if (minid ? rsbus__mid_cmp(rsbus__ment_at(st, 0)->id, *minid) >= 0 : (int64_t)st->n <= maxlen) break;
            if (limit && removed >= limit) break;
            rsbus__mremove(ns, st, 0);
            removed++;
        }
    }
    return removed;
}
/* Redis 7.0's tombstone and lag rules (t_stream.c: streamRangeHasTombstones,
   streamEstimateDistanceFromFirstEverEntry). */
RSBUS__PRIVATE rsbus__mid rsbus__mfirst(const rsbus__mstream *st) {
    rsbus__mid z = { 0, 0 };
    return st->n ? rsbus__ment_at(st, 0)->id : z;
}
RSBUS__PRIVATE int rsbus__mtombstones_after(const rsbus__mstream *st, rsbus__mid start) {
    if (!st->n || rsbus__mid_zero(st->max_deleted)) return 0;
    if (rsbus__mid_cmp(rsbus__mfirst(st), st->max_deleted) > 0) return 0;
    return rsbus__mid_cmp(start, st->max_deleted) <= 0;
}
RSBUS__PRIVATE int64_t rsbus__mdistance(const rsbus__mstream *st, rsbus__mid id) {
    int cl, cf;
    if (!st->added) return 0;
    if (!st->n && rsbus__mid_cmp(id, st->last) < 1) return (int64_t)st->added;
    cl = rsbus__mid_cmp(id, st->last);
    if (cl == 0) return (int64_t)st->added;
    if (cl > 0) return -1;
    cf = rsbus__mid_cmp(id, rsbus__mfirst(st));
    if (rsbus__mid_zero(st->max_deleted) || rsbus__mid_cmp(st->max_deleted, rsbus__mfirst(st)) < 0) {
        if (cf < 0) return (int64_t)(st->added - st->n);
        if (cf == 0) return (int64_t)(st->added - st->n + 1);
    }
    return -1;
}
/* A group's lag, -1 when unknown (Redis: nil). */
RSBUS__PRIVATE int64_t rsbus__mlag(const rsbus__mstream *st, const rsbus__mgroup *g) {
    int64_t read;
    if (!st->added) return 0;
    if (g->entries_read >= 0 && !rsbus__mtombstones_after(st, g->last)) return (int64_t)st->added - g->entries_read;
    read = rsbus__mdistance(st, g->last);
    return read < 0 ? -1 : (int64_t)st->added - read;
}

/* ---- groups, consumers, pending lists ---- */
RSBUS__PRIVATE int rsbus__mname_cmp(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, RSBUS__MIN(an, bn));
    return c ? c : (an < bn ? -1 : an > bn);
}
RSBUS__PRIVATE rsbus__mgroup *rsbus__mgroup_get(const rsbus__mstream *st, rsbus__marg name, size_t *at) {
    size_t i;
    for (i = 0; i < st->ng; i++) {
        int c = rsbus__mname_cmp(st->g[i]->name, st->g[i]->len, name.p, name.n);
        if (c == 0) { if (at) *at = i; return st->g[i]; }
        if (c > 0) break;
    }
    if (at) *at = i;
    return NULL;
}
RSBUS__PRIVATE char *rsbus__mdup(rsbus__mns *ns, const char *p, size_t n) {
    char *s = (char *)rsbus__alloc(&ns->a, n + 1);
    if (s) { memcpy(s, p, n); s[n] = 0; }
    return s;
}
RSBUS__PRIVATE rsbus__mgroup *rsbus__mgroup_new(rsbus__mns *ns, rsbus__mstream *st, rsbus__marg name, size_t at) {
    rsbus__mgroup *g;
    rsbus__mgroup **p = (rsbus__mgroup **)rsbus__grow(&ns->a, (void *)st->g, &st->capg, st->ng + 1, sizeof *p, 4);
    if (!p) return NULL;
    st->g = p;
    g = (rsbus__mgroup *)rsbus__alloc(&ns->a, sizeof *g);
    if (!g) return NULL;
    memset(g, 0, sizeof *g);
    g->name = rsbus__mdup(ns, name.p, name.n);
    if (!g->name) { rsbus__free(&ns->a, g, sizeof *g); return NULL; }
    g->len = name.n;
    g->entries_read = -1;
    memmove(&st->g[at + 1], &st->g[at], (st->ng - at) * sizeof *st->g);
    st->g[at] = g;
    st->ng++;
    return g;
}
RSBUS__PRIVATE rsbus__mcons *rsbus__mcons_get(const rsbus__mgroup *g, const char *p, size_t n, size_t *at) {
    size_t lo = 0, hi = g->ncons;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = rsbus__mname_cmp(g->cons[mid]->name, g->cons[mid]->len, p, n);
        if (c == 0) { if (at) *at = mid; return g->cons[mid]; }
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    if (at) *at = lo;
    return NULL;
}
/* The consumer, created when missing (*created set); NULL when out of memory. */
RSBUS__PRIVATE rsbus__mcons *rsbus__mcons_make(rsbus__mns *ns, rsbus__mgroup *g, const char *p, size_t n, int *created) {
    size_t at;
    rsbus__mcons *c = rsbus__mcons_get(g, p, n, &at), **arr;
    if (created) *created = 0;
    if (c) return c;
    arr = (rsbus__mcons **)rsbus__grow(&ns->a, (void *)g->cons, &g->capcons, g->ncons + 1, sizeof *arr, 4);
    if (!arr) return NULL;
    g->cons = arr;
    c = (rsbus__mcons *)rsbus__alloc(&ns->a, sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->name = rsbus__mdup(ns, p, n);
    if (!c->name) { rsbus__free(&ns->a, c, sizeof *c); return NULL; }
    c->len = n;
    c->seen_ms = rsbus__now_ms();
    memmove(&g->cons[at + 1], &g->cons[at], (g->ncons - at) * sizeof *g->cons);
    g->cons[at] = c;
    g->ncons++;
    if (created) *created = 1;
    return c;
}
/* Index in the PEL of the first id >= id. */
RSBUS__PRIVATE size_t rsbus__mpel_find(const rsbus__mgroup *g, rsbus__mid id) {
    size_t lo = 0, hi = g->npel;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rsbus__mid_cmp(g->pel[mid].id, id) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
}
RSBUS__PRIVATE rsbus__mpel *rsbus__mpel_get(const rsbus__mgroup *g, rsbus__mid id) {
    size_t i = rsbus__mpel_find(g, id);
    return i < g->npel && rsbus__mid_cmp(g->pel[i].id, id) == 0 ? &g->pel[i] : NULL;
}
RSBUS__PRIVATE void rsbus__mpel_del(rsbus__mgroup *g, size_t i) {
    g->pel[i].c->pending--;
    memmove(&g->pel[i], &g->pel[i + 1], (g->npel - i - 1) * sizeof *g->pel);
    g->npel--;
}
/* Adds (or reassigns) a delivery; 0 when out of memory. */
RSBUS__PRIVATE int rsbus__mpel_add(rsbus__mns *ns, rsbus__mgroup *g, rsbus__mid id, rsbus__mcons *c, int64_t now) {
    size_t i = rsbus__mpel_find(g, id);
    if (i < g->npel && rsbus__mid_cmp(g->pel[i].id, id) == 0) {   /* delivered again (after SETID): reassigned */
        g->pel[i].c->pending--;
        g->pel[i].c = c; c->pending++;
        g->pel[i].time_ms = now; g->pel[i].count = 1;
        return 1;
    }
    {
        rsbus__mpel *p = (rsbus__mpel *)rsbus__grow(&ns->a, g->pel, &g->cappel, g->npel + 1, sizeof *p, 16);
        if (!p) return 0;
        g->pel = p;
    }
    memmove(&g->pel[i + 1], &g->pel[i], (g->npel - i) * sizeof *g->pel);
    g->pel[i].id = id; g->pel[i].c = c; g->pel[i].time_ms = now; g->pel[i].count = 1;
    c->pending++;
    g->npel++;
    return 1;
}

/* ---- commands ---- */
/* One command being run: its arguments, the namespace (locked), where its reply goes. */
typedef struct rsbus__mx {
    struct rsbus__mconn *m; rsbus__mns *ns;
    rsbus__marg *a; size_t argc;
    int64_t now;
    int in_exec;        /* inside EXEC: a read never blocks */
    int expired;        /* the head command's BLOCK is over: an empty read answers nil */
    int blocked;        /* out: the read found nothing and waits */
    int woke;           /* out: it wrote something a blocked read may wait for */
} rsbus__mx;
#define RSBUS__MX_ERR(x, ...) rsbus__mr_err((x)->m, (x)->ns, __VA_ARGS__)
static const char rsbus__m_wrongtype[] = "WRONGTYPE Operation against a key holding the wrong kind of value";
static const char rsbus__m_badid[] = "ERR Invalid stream ID specified as stream command argument";
static const char rsbus__m_notint[] = "ERR value is not an integer or out of range";
static const char rsbus__m_syntax[] = "ERR syntax error";
/* an allocation failed: rsbus__reply_fail maps this code, which Redis never sends, to RSBUS_E_NOMEM */
static const char rsbus__m_oom[] = "RSBUSNOMEM mem://: out of memory";
static const char rsbus__m_needkey[] = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE "
                                       "you may want to use the MKSTREAM option to create an empty stream automatically.";

/* The stream at argument i: 1 found, 0 missing, -1 the key is of another type (error written). */
RSBUS__PRIVATE int rsbus__mstream_arg(rsbus__mx *x, size_t i, rsbus__mkey **out) {
    rsbus__mkey *k = rsbus__mkey_get(x->ns, x->a[i].p, x->a[i].n);
    *out = k;
    if (!k) return 0;
    if (k->type != RSBUS__MK_STREAM) { RSBUS__MX_ERR(x, "%s", rsbus__m_wrongtype); return -1; }
    return 1;
}
/* An entry as a reply: [id, [field, value, ...]]. */
RSBUS__PRIVATE void rsbus__mr_entry(rsbus__mx *x, const rsbus__ment *e) {
    rsbus__mr_arr(x->m, x->ns, 2);
    rsbus__mr_id(x->m, x->ns, e->id);
    rsbus__mr_raw(x->m, x->ns, (const char *)(e + 1), e->len);
}

RSBUS__PRIVATE void rsbus__mc_xadd(rsbus__mx *x) {
    rsbus__mkey *k;
    rsbus__mstream *st;
    size_t i = 2, fi, nf, hl;
    int trim = 0, approx = 0, nomk = 0, auto_seq = 0, auto_id = 0, found;
    int64_t maxlen = 0, limit = 0;
    rsbus__mid minid = { 0, 0 }, id = { 0, 0 };
    rsbus__ment *e;
    char hdr[32];
    const char *from, *to;
    for (;;) {
        if (i < x->argc && rsbus__mieq(x->a[i], "NOMKSTREAM")) { nomk = 1; i++; continue; }
        if (i < x->argc && (rsbus__mieq(x->a[i], "MAXLEN") || rsbus__mieq(x->a[i], "MINID"))) {
            trim = rsbus__mieq(x->a[i], "MAXLEN") ? 1 : 2;
            i++;
            if (i < x->argc && (rsbus__meq(x->a[i], "~", 1) || rsbus__meq(x->a[i], "=", 1))) approx = x->a[i++].p[0] == '~';
            if (i >= x->argc) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
            if (trim == 1) {
                if (!rsbus__mi64(x->a[i], &maxlen)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
                if (maxlen < 0) { RSBUS__MX_ERR(x, "ERR The MAXLEN argument must be >= 0."); return; }
            } else if (!rsbus__mid_parse(x->a[i], 0, 0, NULL, &minid)) { RSBUS__MX_ERR(x, "%s", rsbus__m_badid); return; }
            i++;
            continue;
        }
        if (i < x->argc && rsbus__mieq(x->a[i], "LIMIT")) {
            if (i + 1 >= x->argc || !rsbus__mi64(x->a[i + 1], &limit) || limit < 0) {
                RSBUS__MX_ERR(x, "%s", rsbus__m_notint);
                return;
            }
            i += 2;
            continue;
        }
        break;
    }
    if (i >= x->argc || (x->argc - i - 1) < 2 || (x->argc - i - 1) % 2) {
        RSBUS__MX_ERR(x, "ERR wrong number of arguments for 'xadd' command");
        return;
    }
    if (limit && !approx) {
        RSBUS__MX_ERR(x, "ERR syntax error, LIMIT cannot be used without the special ~ option");
        return;
    }
    if (rsbus__meq(x->a[i], "*", 1)) auto_id = 1;
    else {
        rsbus__marg ia = x->a[i];
        if (ia.n > 2 && ia.p[ia.n - 1] == '*' && ia.p[ia.n - 2] == '-') { ia.n -= 2; auto_seq = 1; }
        if (!rsbus__mid_parse(ia, 0, 0, NULL, &id) || (auto_seq && memchr(ia.p, '-', ia.n))) {
            RSBUS__MX_ERR(x, "%s", rsbus__m_badid);
            return;
        }
        if (!auto_seq && rsbus__mid_zero(id)) {
            RSBUS__MX_ERR(x, "ERR The ID specified in XADD must be greater than 0-0");
            return;
        }
    }
    fi = i + 1;
    if ((found = rsbus__mstream_arg(x, 1, &k)) < 0) return;
    if (!found && nomk) { RSBUS__MR_LIT(x->m, x->ns, "$-1\r\n"); return; }
    st = found ? k->st : NULL;
    {   /* the new id */
        rsbus__mid last = st ? st->last : id;
        if (!st) { last.ms = 0; last.seq = 0; }
        if (auto_id) {
            uint64_t ms = (uint64_t)x->now;
            if (ms > last.ms) { id.ms = ms; id.seq = 0; }
            else {
                id = last;
                if (!rsbus__mid_incr(&id)) {
                    RSBUS__MX_ERR(x, "ERR The stream has exhausted the last possible ID, unable to add more items");
                    return;
                }
            }
        } else if (auto_seq) {
            if (id.ms == last.ms) {
                if (last.seq == UINT64_MAX) {
                    RSBUS__MX_ERR(x, "ERR The ID specified in XADD is equal or smaller than the target stream top item");
                    return;
                }
                id.seq = last.seq + 1;
            } else if (id.ms < last.ms) {
                RSBUS__MX_ERR(x, "ERR The ID specified in XADD is equal or smaller than the target stream top item");
                return;
            } else id.seq = 0;
        } else if (rsbus__mid_cmp(id, last) <= 0) {
            RSBUS__MX_ERR(x, "ERR The ID specified in XADD is equal or smaller than the target stream top item");
            return;
        }
    }
    nf = x->argc - fi;
    from = x->a[fi].raw;
    to = x->a[x->argc - 1].p + x->a[x->argc - 1].n + 2;
    hl = (size_t)snprintf(hdr, sizeof hdr, "*%zu\r\n", nf);
    e = (rsbus__ment *)rsbus__alloc(&x->ns->a, sizeof *e + hl + (size_t)(to - from));
    if (!e) { RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
    e->id = id;
    e->len = hl + (size_t)(to - from);
    memcpy((char *)(e + 1), hdr, hl);
    memcpy((char *)(e + 1) + hl, from, (size_t)(to - from));
    if (!st) {
        k = rsbus__mkey_new(x->ns, x->a[1].p, x->a[1].n, RSBUS__MK_STREAM);
        if (!k) { rsbus__ment_free(x->ns, e); RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
        st = k->st;
    }
    if (!rsbus__mappend(x->ns, st, e)) { rsbus__ment_free(x->ns, e); RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
    rsbus__mkey_touch(x->ns, k);
    if (trim) (void)rsbus__mtrim(x->ns, st, maxlen, trim == 2 ? &minid : NULL, approx,
                                 approx ? (limit ? limit : 100 * RSBUS__MNODE_ENTRIES) : 0);
    x->woke = 1;
    rsbus__mr_id(x->m, x->ns, id);
}

/* XREAD and XREADGROUP: [GROUP g c] [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id... */
RSBUS__PRIVATE void rsbus__mc_xread(rsbus__mx *x, int group_read) {
    size_t i = 1, nkeys, ks, j, served = 0;
    int64_t count = 0, block = -1;
    int noack = 0;
    rsbus__marg gname = { NULL, 0, NULL }, cname = { NULL, 0, NULL };
    const char *cmd = group_read ? "xreadgroup" : "xread";
    rsbus__mid ids[64];
    rsbus__mkey *keys[64];
    rsbus__mgroup *groups[64];
    rsbus__mcons *cons = NULL;
    for (;;) {
        if (i >= x->argc) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
        if (rsbus__mieq(x->a[i], "COUNT") && i + 1 < x->argc) {
            if (!rsbus__mi64(x->a[i + 1], &count)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
            if (count < 0) count = 0;
            i += 2;
        } else if (rsbus__mieq(x->a[i], "BLOCK") && i + 1 < x->argc) {
            if (!rsbus__mi64(x->a[i + 1], &block)) {
                RSBUS__MX_ERR(x, "ERR timeout is not an integer or out of range");
                return;
            }
            if (block < 0) { RSBUS__MX_ERR(x, "ERR timeout is negative"); return; }
            i += 2;
        } else if (group_read && rsbus__mieq(x->a[i], "GROUP") && i + 2 < x->argc) {
            gname = x->a[i + 1]; cname = x->a[i + 2];
            i += 3;
        } else if (group_read && rsbus__mieq(x->a[i], "NOACK")) {
            noack = 1; i++;
        } else if (rsbus__mieq(x->a[i], "STREAMS")) {
            i++;
            break;
        } else { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
    }
    if (x->argc - i == 0 || (x->argc - i) % 2) {
        RSBUS__MX_ERR(x, "ERR Unbalanced '%s' list of streams: for each stream key an ID or '%s' must be specified.",
                      cmd, group_read ? ">" : "$");
        return;
    }
    if (group_read && !gname.p) { RSBUS__MX_ERR(x, "ERR Missing GROUP option for XREADGROUP"); return; }
    nkeys = (x->argc - i) / 2;
    if (nkeys > 64) { RSBUS__MX_ERR(x, "ERR mem:// reads at most 64 streams in one command"); return; }
    ks = i;
    for (j = 0; j < nkeys; j++) {
        rsbus__marg ia = x->a[ks + nkeys + j];
        int found = rsbus__mstream_arg(x, ks + j, &keys[j]);
        if (found < 0) return;
        groups[j] = NULL;
        if (group_read) {
            if (found) groups[j] = rsbus__mgroup_get(keys[j]->st, gname, NULL);
            if (!groups[j]) {
                RSBUS__MX_ERR(x, "NOGROUP No such key '%.*s' or consumer group '%.*s' in XREADGROUP with GROUP option",
                              RSBUS__MNAME(x->a[ks + j]), RSBUS__MNAME(gname));
                return;
            }
        }
        if (rsbus__meq(ia, "$", 1)) {
            if (group_read) {
                RSBUS__MX_ERR(x, "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of "
                              "this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID "
                              "would just return an empty result set.");
                return;
            }
            ids[j] = found ? keys[j]->st->last : ids[j];
            if (!found) { ids[j].ms = 0; ids[j].seq = 0; }
            if (x->m->block_until && j < 64 && x->m->dollar_n > j) ids[j] = x->m->dollar[j];   /* as when it began */
            else if (j < 64) { x->m->dollar[j] = ids[j]; if (x->m->dollar_n <= j) x->m->dollar_n = j + 1; }
        } else if (rsbus__meq(ia, ">", 1)) {
            if (!group_read) {
                RSBUS__MX_ERR(x, "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
                return;
            }
            ids[j].ms = UINT64_MAX; ids[j].seq = UINT64_MAX;   /* marks ">" */
        } else if (!rsbus__mid_parse(ia, 0, 0, NULL, &ids[j])) { RSBUS__MX_ERR(x, "%s", rsbus__m_badid); return; }
    }
    if (group_read) {
        for (j = 0; j < nkeys; j++) {   /* the consumer exists from its first read, in each group read */
            int created;
            cons = rsbus__mcons_make(x->ns, groups[j], cname.p, cname.n, &created);
            if (!cons) { RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
            cons->seen_ms = x->now;
        }
    }
    /* which keys answer */
    for (j = 0; j < nkeys; j++) {
        rsbus__mstream *st = keys[j] ? keys[j]->st : NULL;
        int newer = ids[j].ms == UINT64_MAX && ids[j].seq == UINT64_MAX;
        if (group_read && !newer) { served++; continue; }   /* a history read always answers */
        if (!st) continue;
        /* an entry after the position (the same test as where the entries are written below) */
        if (st->n && rsbus__mid_cmp(rsbus__ment_at(st, st->n - 1)->id, newer ? groups[j]->last : ids[j]) > 0) served++;
    }
    if (!served) {
        if (block >= 0 && !x->in_exec && !x->expired) { x->blocked = 1; x->m->block_ms = block; return; }
        RSBUS__MR_LIT(x->m, x->ns, "*-1\r\n");
        return;
    }
    rsbus__mr_arr(x->m, x->ns, served);
    for (j = 0; j < nkeys; j++) {
        rsbus__mstream *st = keys[j] ? keys[j]->st : NULL;
        rsbus__mgroup *g = groups[j];
        int newer = ids[j].ms == UINT64_MAX && ids[j].seq == UINT64_MAX;
        size_t from, k, n = 0, hdr_at;
            if (!(group_read && !newer)) {
            rsbus__mid after = newer ? g->last : ids[j];
            if (!st) continue;
            from = rsbus__mfind(st, after);
            if (from < st->n && rsbus__mid_cmp(rsbus__ment_at(st, from)->id, after) == 0) from++;
            if (from >= st->n) continue;
            n = st->n - from;
            if (count && (size_t)count < n) n = (size_t)count;
            rsbus__mr_arr(x->m, x->ns, 2);
            rsbus__mr_bulk(x->m, x->ns, x->a[ks + j].p, x->a[ks + j].n);
            rsbus__mr_arr(x->m, x->ns, n);
            for (k = 0; k < n; k++) {
                rsbus__ment *e = rsbus__ment_at(st, from + k);
                if (group_read) {   /* pending first: an entry is never past the group's position unrecorded */
                    rsbus__mcons *c = rsbus__mcons_get(g, cname.p, cname.n, NULL);
                    if (!noack && !rsbus__mpel_add(x->ns, g, e->id, c, x->now)) { x->m->oom = 1; return; }
                    if (g->entries_read >= 0 && !rsbus__mtombstones_after(st, e->id)) g->entries_read++;
                    else g->entries_read = rsbus__mdistance(st, e->id);
                    g->last = e->id;
                    rsbus__mkey_touch(x->ns, keys[j]);
                }
                rsbus__mr_entry(x, e);
            }
            continue;
        }
        /* this consumer's own pending entries after the id, deleted ones as [id, nil] */
        rsbus__mr_arr(x->m, x->ns, 2);
        rsbus__mr_bulk(x->m, x->ns, x->a[ks + j].p, x->a[ks + j].n);
        hdr_at = x->m->rep_len;
        
        {
            rsbus__mcons *c = rsbus__mcons_get(g, cname.p, cname.n, NULL);
            for (k = rsbus__mpel_find(g, ids[j]); k < g->npel && (!count || n < (size_t)count); k++) {
                rsbus__mpel *p = &g->pel[k];
                rsbus__ment *e;
                if (p->c != c || rsbus__mid_cmp(p->id, ids[j]) <= 0) continue;
                e = st ? rsbus__mget(st, p->id) : NULL;
                if (e) { rsbus__mr_entry(x, e); p->time_ms = x->now; p->count++; }
                else { rsbus__mr_arr(x->m, x->ns, 2); rsbus__mr_id(x->m, x->ns, p->id); RSBUS__MR_LIT(x->m, x->ns, "*-1\r\n"); }
                n++;
            }
        }
        rsbus__mr_insert_arr(x->m, x->ns, hdr_at, n);
    }
}

RSBUS__PRIVATE void rsbus__mc_xack(rsbus__mx *x) {
    rsbus__mkey *k;
    rsbus__mgroup *g = NULL;
    size_t i;
    int64_t n = 0;
    rsbus__mid id;
    for (i = 3; i < x->argc; i++) if (!rsbus__mid_parse(x->a[i], 0, 0, NULL, &id)) {
        RSBUS__MX_ERR(x, "%s", rsbus__m_badid);
        return;
    }
    if (rsbus__mstream_arg(x, 1, &k) < 0) return;
    if (k) g = rsbus__mgroup_get(k->st, x->a[2], NULL);
    if (g) {
        for (i = 3; i < x->argc; i++) {
            size_t at;
            (void)rsbus__mid_parse(x->a[i], 0, 0, NULL, &id);
            at = rsbus__mpel_find(g, id);
            if (at < g->npel && rsbus__mid_cmp(g->pel[at].id, id) == 0) { rsbus__mpel_del(g, at); n++; }
        }
        if (n) rsbus__mkey_touch(x->ns, k);
    }
    rsbus__mr_int(x->m, x->ns, n);
}

RSBUS__PRIVATE void rsbus__mc_xpending(rsbus__mx *x) {
    rsbus__mkey *k;
    rsbus__mgroup *g = NULL;
    size_t i = 3, j, n = 0, hdr_at;
    int64_t idle = -1, count = 0;
    int sx = 0, ex = 0;
    rsbus__mid start, end;
    rsbus__marg cname = { NULL, 0, NULL };
    if (x->argc != 3) {
        if (x->argc > 3 && rsbus__mieq(x->a[3], "IDLE")) {
            if (x->argc < 5 || !rsbus__mi64(x->a[4], &idle)) {
                RSBUS__MX_ERR(x, "%s", x->argc < 5 ? rsbus__m_syntax : rsbus__m_notint);
                return;
            }
            if (idle < 0) idle = 0;
            i = 5;
        }
        if (x->argc - i < 3 || x->argc - i > 4) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
        if (!rsbus__mid_parse(x->a[i], 0, 1, &sx, &start) || !rsbus__mid_parse(x->a[i + 1], UINT64_MAX, 1, &ex, &end)) {
            RSBUS__MX_ERR(x, "%s", rsbus__m_badid);
            return;
        }
        if ((sx && !rsbus__mid_incr(&start)) || (ex && !rsbus__mid_decr(&end))) {
            RSBUS__MX_ERR(x, "ERR invalid start ID for the interval");
            return;
        }
        if (!rsbus__mi64(x->a[i + 2], &count)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
        if (count < 0) count = 0;
        if (x->argc - i == 4) cname = x->a[i + 3];
    }
    if (rsbus__mstream_arg(x, 1, &k) < 0) return;
    if (k) g = rsbus__mgroup_get(k->st, x->a[2], NULL);
    if (!g) {
        RSBUS__MX_ERR(x, "NOGROUP No such key '%.*s' or consumer group '%.*s'", RSBUS__MNAME(x->a[1]), RSBUS__MNAME(x->a[2]));
        return;
    }
    if (x->argc == 3) {
        size_t nc = 0;
        if (!g->npel) { RSBUS__MR_LIT(x->m, x->ns, "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n"); return; }
        rsbus__mr_arr(x->m, x->ns, 4);
        rsbus__mr_int(x->m, x->ns, (int64_t)g->npel);
        rsbus__mr_id(x->m, x->ns, g->pel[0].id);
        rsbus__mr_id(x->m, x->ns, g->pel[g->npel - 1].id);
        for (j = 0; j < g->ncons; j++) nc += g->cons[j]->pending > 0;
        rsbus__mr_arr(x->m, x->ns, nc);
        for (j = 0; j < g->ncons; j++) {
            char num[24];
            if (!g->cons[j]->pending) continue;
            rsbus__mr_arr(x->m, x->ns, 2);
            rsbus__mr_bulk(x->m, x->ns, g->cons[j]->name, g->cons[j]->len);
            rsbus__mr_bulk(x->m, x->ns, num, (size_t)snprintf(num, sizeof num, "%zu", g->cons[j]->pending));
        }
        return;
    }
    hdr_at = x->m->rep_len;
    
    for (j = rsbus__mpel_find(g, start); j < g->npel && (size_t)n < (size_t)count; j++) {
        rsbus__mpel *p = &g->pel[j];
        if (rsbus__mid_cmp(p->id, end) > 0) break;
        if (cname.p && !rsbus__meq(cname, p->c->name, p->c->len)) continue;
        if (idle >= 0 && x->now - p->time_ms < idle) continue;
        rsbus__mr_arr(x->m, x->ns, 4);
        rsbus__mr_id(x->m, x->ns, p->id);
        rsbus__mr_bulk(x->m, x->ns, p->c->name, p->c->len);
        rsbus__mr_int(x->m, x->ns, RSBUS__MAX(x->now - p->time_ms, 0));
        rsbus__mr_int(x->m, x->ns, p->count);
        n++;
    }
    rsbus__mr_insert_arr(x->m, x->ns, hdr_at, n);
}

RSBUS__PRIVATE void rsbus__mc_xclaim(rsbus__mx *x) {
    rsbus__mkey *k;
    rsbus__mgroup *g = NULL;
    rsbus__mcons *c = NULL;
    int64_t minidle, idle = -1, tms = -1, retry = -1;
    int force = 0, justid = 0;
    size_t i, first = 5, last, n = 0, hdr_at;
    rsbus__mid id;
    if (!rsbus__mi64(x->a[4], &minidle)) { RSBUS__MX_ERR(x, "ERR Invalid min-idle-time argument for XCLAIM"); return; }
    if (minidle < 0) minidle = 0;
    for (last = first; last < x->argc && rsbus__mid_parse(x->a[last], 0, 0, NULL, &id); last++) {}
    for (i = last; i < x->argc; i++) {
        int more = i + 1 < x->argc;
        if (rsbus__mieq(x->a[i], "FORCE")) force = 1;
        else if (rsbus__mieq(x->a[i], "JUSTID")) justid = 1;
        else if (more && (rsbus__mieq(x->a[i], "IDLE") || rsbus__mieq(x->a[i], "TIME") || rsbus__mieq(x->a[i], "RETRYCOUNT"))) {
            int64_t *v = rsbus__mieq(x->a[i], "IDLE") ? &idle : rsbus__mieq(x->a[i], "TIME") ? &tms : &retry;
            if (!rsbus__mi64(x->a[++i], v)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
        } else if (more && rsbus__mieq(x->a[i], "LASTID")) {
            if (!rsbus__mid_parse(x->a[++i], 0, 0, NULL, &id)) { RSBUS__MX_ERR(x, "%s", rsbus__m_badid); return; }
        } else { RSBUS__MX_ERR(x, "ERR Unrecognized XCLAIM option '%.*s'", RSBUS__MNAME(x->a[i])); return; }
    }
    if (rsbus__mstream_arg(x, 1, &k) < 0) return;
    if (k) g = rsbus__mgroup_get(k->st, x->a[2], NULL);
    if (!g) {
        RSBUS__MX_ERR(x, "NOGROUP No such key '%.*s' or consumer group '%.*s'", RSBUS__MNAME(x->a[1]), RSBUS__MNAME(x->a[2]));
        return;
    }
    hdr_at = x->m->rep_len;
    
    for (i = first; i < last; i++) {
        size_t at;
        rsbus__mpel *p;
        rsbus__ment *e;
        (void)rsbus__mid_parse(x->a[i], 0, 0, NULL, &id);
        e = rsbus__mget(k->st, id);
        at = rsbus__mpel_find(g, id);
        p = at < g->npel && rsbus__mid_cmp(g->pel[at].id, id) == 0 ? &g->pel[at] : NULL;
        if (!c) {
            c = rsbus__mcons_make(x->ns, g, x->a[3].p, x->a[3].n, NULL);
            if (!c) { x->m->oom = 1; return; }
            c->seen_ms = x->now;
        }
        if (!p && force && e) {
            if (!rsbus__mpel_add(x->ns, g, id, c, x->now)) { x->m->oom = 1; return; }
            p = rsbus__mpel_get(g, id);
            p->count = 0;
        }
        if (!p) continue;
        if (!e) { rsbus__mpel_del(g, at); continue; }   /* deleted from the stream: leaves the PEL (Redis 7.0) */
        if (minidle && x->now - p->time_ms < minidle) continue;
        if (p->c != c) { p->c->pending--; p->c = c; c->pending++; }
        p->time_ms = idle >= 0 ? x->now - idle : tms >= 0 ? tms : x->now;
        if (retry >= 0) p->count = retry; else if (!justid) p->count++;
        if (justid) rsbus__mr_id(x->m, x->ns, id); else rsbus__mr_entry(x, e);
        n++;
    }
    if (k) rsbus__mkey_touch(x->ns, k);
    rsbus__mr_insert_arr(x->m, x->ns, hdr_at, n);
}

RSBUS__PRIVATE void rsbus__mc_xrange(rsbus__mx *x, int rev) {
    rsbus__mkey *k;
    rsbus__mid s, e;
    int sx = 0, ex = 0;
    int64_t count = -1;
    size_t n = 0, hdr_at;
    const rsbus__marg *lo = &x->a[rev ? 3 : 2], *hi = &x->a[rev ? 2 : 3];
    if (x->argc == 6 && rsbus__mieq(x->a[4], "COUNT")) {
        if (!rsbus__mi64(x->a[5], &count)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
        if (count < 0) count = 0;
    } else if (x->argc != 4) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
    if (!rsbus__mid_parse(*lo, 0, 1, &sx, &s) || !rsbus__mid_parse(*hi, UINT64_MAX, 1, &ex, &e)) {
        RSBUS__MX_ERR(x, "%s", rsbus__m_badid);
        return;
    }
    if (sx && !rsbus__mid_incr(&s)) { RSBUS__MX_ERR(x, "ERR invalid start ID for the interval"); return; }
    if (ex && !rsbus__mid_decr(&e)) { RSBUS__MX_ERR(x, "ERR invalid end ID for the interval"); return; }
    if (rsbus__mstream_arg(x, 1, &k) < 0) return;
    if (!k || count == 0) { RSBUS__MR_LIT(x->m, x->ns, "*0\r\n"); return; }
    hdr_at = x->m->rep_len;
    
    if (!rev) {
        size_t i;
        for (i = rsbus__mfind(k->st, s); i < k->st->n && (count < 0 || (int64_t)n < count); i++) {
            rsbus__ment *en = rsbus__ment_at(k->st, i);
            if (rsbus__mid_cmp(en->id, e) > 0) break;
            rsbus__mr_entry(x, en);
            n++;
        }
    } else {
        size_t i = rsbus__mfind(k->st, e);
        if (i < k->st->n && rsbus__mid_cmp(rsbus__ment_at(k->st, i)->id, e) == 0) i++;
        while (i > 0 && (count < 0 || (int64_t)n < count)) {
            rsbus__ment *en = rsbus__ment_at(k->st, --i);
            if (rsbus__mid_cmp(en->id, s) < 0) break;
            rsbus__mr_entry(x, en);
            n++;
        }
    }
    rsbus__mr_insert_arr(x->m, x->ns, hdr_at, n);
}

RSBUS__PRIVATE void rsbus__mc_xlen(rsbus__mx *x) {
    rsbus__mkey *k;
    if (rsbus__mstream_arg(x, 1, &k) < 0) return;
    rsbus__mr_int(x->m, x->ns, k ? (int64_t)k->st->n : 0);
}

RSBUS__PRIVATE void rsbus__mc_xdel(rsbus__mx *x) {
    rsbus__mkey *k;
    size_t i;
    int64_t n = 0;
    rsbus__mid id;
    for (i = 2; i < x->argc; i++) if (!rsbus__mid_parse(x->a[i], 0, 0, NULL, &id)) {
        RSBUS__MX_ERR(x, "%s", rsbus__m_badid);
        return;
    }
    if (rsbus__mstream_arg(x, 1, &k) < 0) return;
    if (k) {
        for (i = 2; i < x->argc; i++) {
            size_t at;
            (void)rsbus__mid_parse(x->a[i], 0, 0, NULL, &id);
            at = rsbus__mfind(k->st, id);
            if (at < k->st->n && rsbus__mid_cmp(rsbus__ment_at(k->st, at)->id, id) == 0) {
                rsbus__mremove(x->ns, k->st, at);
                if (rsbus__mid_cmp(id, k->st->max_deleted) > 0) k->st->max_deleted = id;
                n++;
            }
        }
        if (n) rsbus__mkey_touch(x->ns, k);
    }
    rsbus__mr_int(x->m, x->ns, n);
}

RSBUS__PRIVATE void rsbus__mc_xtrim(rsbus__mx *x) {
    rsbus__mkey *k;
    int approx = 0, by_id;
    size_t i = 3;
    int64_t maxlen = 0, limit = 0, n = 0;
    rsbus__mid minid = { 0, 0 };
    by_id = rsbus__mieq(x->a[2], "MINID");
    if (!by_id && !rsbus__mieq(x->a[2], "MAXLEN")) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
    if (i < x->argc && (rsbus__meq(x->a[i], "~", 1) || rsbus__meq(x->a[i], "=", 1))) approx = x->a[i++].p[0] == '~';
    if (i >= x->argc) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
    if (!by_id) {
        if (!rsbus__mi64(x->a[i], &maxlen)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
        if (maxlen < 0) { RSBUS__MX_ERR(x, "ERR The MAXLEN argument must be >= 0."); return; }
    } else if (!rsbus__mid_parse(x->a[i], 0, 0, NULL, &minid)) { RSBUS__MX_ERR(x, "%s", rsbus__m_badid); return; }
    i++;
    if (i + 1 < x->argc + 1 && i < x->argc) {
        if (!rsbus__mieq(x->a[i], "LIMIT") || i + 2 != x->argc) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
        if (!rsbus__mi64(x->a[i + 1], &limit) || limit < 0) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
        if (!approx) { RSBUS__MX_ERR(x, "ERR syntax error, LIMIT cannot be used without the special ~ option"); return; }
    }
    if (rsbus__mstream_arg(x, 1, &k) < 0) return;
    if (k) {
        n = rsbus__mtrim(x->ns, k->st, maxlen, by_id ? &minid : NULL, approx,
                         approx ? (limit ? limit : 100 * RSBUS__MNODE_ENTRIES) : 0);
        if (n) rsbus__mkey_touch(x->ns, k);
    }
    rsbus__mr_int(x->m, x->ns, n);
}

/* XINFO STREAM [FULL [COUNT n]] | GROUPS | CONSUMERS, in Redis 7.0's shape. */
RSBUS__PRIVATE void rsbus__mr_kv_int(rsbus__mx *x, const char *k, int64_t v) {
    rsbus__mr_bulkz(x->m, x->ns, k);
    rsbus__mr_int(x->m, x->ns, v);
}
RSBUS__PRIVATE void rsbus__mr_kv_id(rsbus__mx *x, const char *k, rsbus__mid v) {
    rsbus__mr_bulkz(x->m, x->ns, k);
    rsbus__mr_id(x->m, x->ns, v);
}
RSBUS__PRIVATE void rsbus__mr_kv_nint(rsbus__mx *x, const char *k, int64_t v) {   /* -1: nil */
    rsbus__mr_bulkz(x->m, x->ns, k);
    if (v < 0) RSBUS__MR_LIT(x->m, x->ns, "$-1\r\n"); else rsbus__mr_int(x->m, x->ns, v);
}
RSBUS__PRIVATE void rsbus__mc_xinfo(rsbus__mx *x) {
    rsbus__mkey *k;
    rsbus__mstream *st;
    size_t i, j;
    int found;
    if (rsbus__mieq(x->a[1], "HELP")) { RSBUS__MR_LIT(x->m, x->ns, "*1\r\n+XINFO <subcommand> (mem://)\r\n"); return; }
    if (x->argc < 3) {
        RSBUS__MX_ERR(x, "ERR wrong number of arguments for 'xinfo|%.*s' command", RSBUS__MNAME(x->a[1]));
        return;
    }
    if (!rsbus__mieq(x->a[1], "STREAM") && !rsbus__mieq(x->a[1], "GROUPS") && !rsbus__mieq(x->a[1], "CONSUMERS")) {
        RSBUS__MX_ERR(x, "ERR unknown subcommand '%.*s'. Try XINFO HELP.", RSBUS__MNAME(x->a[1]));
        return;
    }
    if ((found = rsbus__mstream_arg(x, 2, &k)) < 0) return;
    if (!found) { RSBUS__MX_ERR(x, "ERR no such key"); return; }
    st = k->st;
    if (rsbus__mieq(x->a[1], "CONSUMERS")) {
        rsbus__mgroup *g;
        if (x->argc != 4) { RSBUS__MX_ERR(x, "ERR wrong number of arguments for 'xinfo|consumers' command"); return; }
        g = rsbus__mgroup_get(st, x->a[3], NULL);
        if (!g) {
            RSBUS__MX_ERR(x, "NOGROUP No such consumer group '%.*s' for key name '%.*s'", RSBUS__MNAME(x->a[3]), RSBUS__MNAME(x->a[2]));
            return;
        }
        rsbus__mr_arr(x->m, x->ns, g->ncons);
        for (i = 0; i < g->ncons; i++) {
            rsbus__mr_arr(x->m, x->ns, 6);
            rsbus__mr_bulkz(x->m, x->ns, "name"); rsbus__mr_bulk(x->m, x->ns, g->cons[i]->name, g->cons[i]->len);
            rsbus__mr_kv_int(x, "pending", (int64_t)g->cons[i]->pending);
            rsbus__mr_kv_int(x, "idle", RSBUS__MAX(x->now - g->cons[i]->seen_ms, 0));
        }
        return;
    }
    if (rsbus__mieq(x->a[1], "GROUPS")) {
        if (x->argc != 3) { RSBUS__MX_ERR(x, "ERR wrong number of arguments for 'xinfo|groups' command"); return; }
        rsbus__mr_arr(x->m, x->ns, st->ng);
        for (i = 0; i < st->ng; i++) {
            rsbus__mgroup *g = st->g[i];
            rsbus__mr_arr(x->m, x->ns, 12);
            rsbus__mr_bulkz(x->m, x->ns, "name"); rsbus__mr_bulk(x->m, x->ns, g->name, g->len);
            rsbus__mr_kv_int(x, "consumers", (int64_t)g->ncons);
            rsbus__mr_kv_int(x, "pending", (int64_t)g->npel);
            rsbus__mr_kv_id(x, "last-delivered-id", g->last);
            rsbus__mr_kv_nint(x, "entries-read", g->entries_read);
            rsbus__mr_kv_nint(x, "lag", rsbus__mlag(st, g));
        }
        return;
    }
    {
        int full = 0;
        int64_t count = 10;
        if (x->argc > 3) {
            if (!rsbus__mieq(x->a[3], "FULL")) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
            full = 1;
            if (x->argc == 6 && rsbus__mieq(x->a[4], "COUNT")) {
                if (!rsbus__mi64(x->a[5], &count)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
                if (count < 0) count = 10;
            } else if (x->argc != 4) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
        }
        rsbus__mr_arr(x->m, x->ns, full ? 18 : 20);
        rsbus__mr_kv_int(x, "length", (int64_t)st->n);
        rsbus__mr_kv_int(x, "radix-tree-keys", (int64_t)st->nn);
        rsbus__mr_kv_int(x, "radix-tree-nodes", (int64_t)st->nn + 1);
        rsbus__mr_kv_id(x, "last-generated-id", st->last);
        rsbus__mr_kv_id(x, "max-deleted-entry-id", st->max_deleted);
        rsbus__mr_kv_int(x, "entries-added", (int64_t)st->added);
        rsbus__mr_kv_id(x, "recorded-first-entry-id", rsbus__mfirst(st));
        if (!full) {
            rsbus__mr_kv_int(x, "groups", (int64_t)st->ng);
            rsbus__mr_bulkz(x->m, x->ns, "first-entry");
            if (st->n) rsbus__mr_entry(x, rsbus__ment_at(st, 0)); else RSBUS__MR_LIT(x->m, x->ns, "$-1\r\n");
            rsbus__mr_bulkz(x->m, x->ns, "last-entry");
            if (st->n) rsbus__mr_entry(x, rsbus__ment_at(st, st->n - 1)); else RSBUS__MR_LIT(x->m, x->ns, "$-1\r\n");
            return;
        }
        {
            size_t ne = count == 0 ? st->n : RSBUS__MIN(st->n, (size_t)count);
            size_t lim = count == 0 ? SIZE_MAX : (size_t)count;
            rsbus__mr_bulkz(x->m, x->ns, "entries");
            rsbus__mr_arr(x->m, x->ns, ne);
            for (i = 0; i < ne; i++) rsbus__mr_entry(x, rsbus__ment_at(st, i));
            rsbus__mr_bulkz(x->m, x->ns, "groups");
            rsbus__mr_arr(x->m, x->ns, st->ng);
            for (i = 0; i < st->ng; i++) {
                rsbus__mgroup *g = st->g[i];
                size_t np = RSBUS__MIN(g->npel, lim);
                rsbus__mr_arr(x->m, x->ns, 14);
                rsbus__mr_bulkz(x->m, x->ns, "name"); rsbus__mr_bulk(x->m, x->ns, g->name, g->len);
                rsbus__mr_kv_id(x, "last-delivered-id", g->last);
                rsbus__mr_kv_nint(x, "entries-read", g->entries_read);
                rsbus__mr_kv_nint(x, "lag", rsbus__mlag(st, g));
                rsbus__mr_kv_int(x, "pel-count", (int64_t)g->npel);
                rsbus__mr_bulkz(x->m, x->ns, "pending");
                rsbus__mr_arr(x->m, x->ns, np);
                for (j = 0; j < np; j++) {
                    rsbus__mr_arr(x->m, x->ns, 4);
                    rsbus__mr_id(x->m, x->ns, g->pel[j].id);
                    rsbus__mr_bulk(x->m, x->ns, g->pel[j].c->name, g->pel[j].c->len);
                    rsbus__mr_int(x->m, x->ns, g->pel[j].time_ms);
                    rsbus__mr_int(x->m, x->ns, g->pel[j].count);
                }
                rsbus__mr_bulkz(x->m, x->ns, "consumers");
                rsbus__mr_arr(x->m, x->ns, g->ncons);
                for (j = 0; j < g->ncons; j++) {
                    rsbus__mcons *c = g->cons[j];
                    size_t q, nq = 0, at;
                    rsbus__mr_arr(x->m, x->ns, 8);
                    rsbus__mr_bulkz(x->m, x->ns, "name"); rsbus__mr_bulk(x->m, x->ns, c->name, c->len);
                    rsbus__mr_kv_int(x, "seen-time", c->seen_ms);
                    rsbus__mr_kv_int(x, "pel-count", (int64_t)c->pending);
                    rsbus__mr_bulkz(x->m, x->ns, "pending");
                    at = x->m->rep_len;
                    for (q = 0; q < g->npel && nq < lim; q++) {
                        if (g->pel[q].c != c) continue;
                        rsbus__mr_arr(x->m, x->ns, 3);
                        rsbus__mr_id(x->m, x->ns, g->pel[q].id);
                        rsbus__mr_int(x->m, x->ns, g->pel[q].time_ms);
                        rsbus__mr_int(x->m, x->ns, g->pel[q].count);
                        nq++;
                    }
                    rsbus__mr_insert_arr(x->m, x->ns, at, nq);
                }
            }
        }
    }
}

RSBUS__PRIVATE void rsbus__mc_xgroup(rsbus__mx *x) {
    rsbus__marg sub = x->a[1];
    rsbus__mkey *k;
    rsbus__mgroup *g;
    rsbus__mid id = { 0, 0 };
    int found;
    size_t at, i;
    int64_t er = -1;
    int create = rsbus__mieq(sub, "CREATE"), setid = rsbus__mieq(sub, "SETID");
    if (rsbus__mieq(sub, "HELP")) { RSBUS__MR_LIT(x->m, x->ns, "*1\r\n+XGROUP <subcommand> (mem://)\r\n"); return; }
    if (!create && !setid && !rsbus__mieq(sub, "DESTROY") && !rsbus__mieq(sub, "CREATECONSUMER") && !rsbus__mieq(sub, "DELCONSUMER")) {
        RSBUS__MX_ERR(x, "ERR unknown subcommand '%.*s'. Try XGROUP HELP.", RSBUS__MNAME(sub));
        return;
    }
    if (x->argc < 4 || ((create || setid) && x->argc < 5) || (!create && !setid && x->argc != 4 + !rsbus__mieq(sub, "DESTROY"))) {
        RSBUS__MX_ERR(x, "ERR wrong number of arguments for 'xgroup|%.*s' command", RSBUS__MNAME(sub));
        return;
    }
    if ((found = rsbus__mstream_arg(x, 2, &k)) < 0) return;
    if (create || setid) {
        int mkstream = 0;
        for (i = 5; i < x->argc; i++) {
            if (create && rsbus__mieq(x->a[i], "MKSTREAM")) mkstream = 1;
            else if (rsbus__mieq(x->a[i], "ENTRIESREAD") && i + 1 < x->argc) {
                if (!rsbus__mi64(x->a[++i], &er)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
                if (er < 0 && er != -1) { RSBUS__MX_ERR(x, "ERR value for ENTRIESREAD must be positive or -1"); return; }
            } else { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
        }
        if (!rsbus__meq(x->a[4], "$", 1) && !rsbus__mid_parse(x->a[4], 0, 0, NULL, &id)) {
            RSBUS__MX_ERR(x, "%s", rsbus__m_badid);
            return;
        }
        if (!found && !(create && mkstream)) { RSBUS__MX_ERR(x, "%s", rsbus__m_needkey); return; }
        if (!found) {
            k = rsbus__mkey_new(x->ns, x->a[2].p, x->a[2].n, RSBUS__MK_STREAM);
            if (!k) { RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
        }
        if (rsbus__meq(x->a[4], "$", 1)) id = k->st->last;
        g = rsbus__mgroup_get(k->st, x->a[3], &at);
        if (create) {
            if (g) { RSBUS__MX_ERR(x, "BUSYGROUP Consumer Group name already exists"); return; }
            g = rsbus__mgroup_new(x->ns, k->st, x->a[3], at);
            if (!g) { RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
        } else if (!g) {
            RSBUS__MX_ERR(x, "NOGROUP No such consumer group '%.*s' for key name '%.*s'", RSBUS__MNAME(x->a[3]), RSBUS__MNAME(x->a[2]));
            return;
        }
        g->last = id;
        g->entries_read = er;
        rsbus__mkey_touch(x->ns, k);
        x->woke = 1;
        RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n");
        return;
    }
    if (!found) { RSBUS__MX_ERR(x, "%s", rsbus__m_needkey); return; }
    g = rsbus__mgroup_get(k->st, x->a[3], &at);
    if (rsbus__mieq(sub, "DESTROY")) {
        if (g) {
            memmove(&k->st->g[at], &k->st->g[at + 1], (k->st->ng - at - 1) * sizeof *k->st->g);
            k->st->ng--;
            rsbus__mgroup_free(x->ns, g);
            rsbus__mkey_touch(x->ns, k);
            x->woke = 1;
        }
        rsbus__mr_int(x->m, x->ns, g != NULL);
        return;
    }
    if (!g) {
        RSBUS__MX_ERR(x, "NOGROUP No such consumer group '%.*s' for key name '%.*s'", RSBUS__MNAME(x->a[3]), RSBUS__MNAME(x->a[2]));
        return;
    }
    if (rsbus__mieq(sub, "CREATECONSUMER")) {
        int created;
        if (!rsbus__mcons_make(x->ns, g, x->a[4].p, x->a[4].n, &created)) { RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
        rsbus__mr_int(x->m, x->ns, created);
        return;
    }
    {   /* DELCONSUMER: its pending entries leave the PEL; replies how many there were */
        rsbus__mcons *c = rsbus__mcons_get(g, x->a[4].p, x->a[4].n, &at);
        int64_t n = 0;
        if (c) {
            n = (int64_t)c->pending;
            for (i = g->npel; i-- > 0;) if (g->pel[i].c == c) rsbus__mpel_del(g, i);
            memmove(&g->cons[at], &g->cons[at + 1], (g->ncons - at - 1) * sizeof *g->cons);
            g->ncons--;
            rsbus__free(&x->ns->a, c->name, c->len + 1);
            rsbus__free(&x->ns->a, c, sizeof *c);
            rsbus__mkey_touch(x->ns, k);
        }
        rsbus__mr_int(x->m, x->ns, n);
    }
}

/* ---- strings, hashes, keys ---- */
RSBUS__PRIVATE void rsbus__mc_set(rsbus__mx *x) {
    rsbus__mkey *k;
    size_t i;
    int nx = 0, xx = 0;
    int64_t ttl = 0, v;
    char *val;
    for (i = 3; i < x->argc; i++) {
        if (rsbus__mieq(x->a[i], "NX")) nx = 1;
        else if (rsbus__mieq(x->a[i], "XX")) xx = 1;
        else if ((rsbus__mieq(x->a[i], "PX") || rsbus__mieq(x->a[i], "EX")) && i + 1 < x->argc && !ttl) {
            int ex = rsbus__mieq(x->a[i], "EX");
            if (!rsbus__mi64(x->a[++i], &v)) { RSBUS__MX_ERR(x, "%s", rsbus__m_notint); return; }
            if (v <= 0 || v > INT64_MAX / 1000) { RSBUS__MX_ERR(x, "ERR invalid expire time in 'set' command"); return; }
            ttl = ex ? v * 1000 : v;
        } else { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
    }
    if (nx && xx) { RSBUS__MX_ERR(x, "%s", rsbus__m_syntax); return; }
    rsbus__mkey_sweep(x->ns);
    k = rsbus__mkey_get(x->ns, x->a[1].p, x->a[1].n);
    if ((nx && k) || (xx && !k)) { RSBUS__MR_LIT(x->m, x->ns, "$-1\r\n"); return; }
    val = rsbus__mdup(x->ns, x->a[2].p, x->a[2].n);
    if (!val) { RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
    if (k && k->type != RSBUS__MK_STRING) { rsbus__mkey_del(x->ns, k); k = NULL; }
    if (!k && !(k = rsbus__mkey_new(x->ns, x->a[1].p, x->a[1].n, RSBUS__MK_STRING))) {
        rsbus__free(&x->ns->a, val, x->a[2].n + 1);
        RSBUS__MX_ERR(x, "%s", rsbus__m_oom);
        return;
    }
    if (k->val) rsbus__free(&x->ns->a, k->val, k->vlen + 1);
    k->val = val; k->vlen = x->a[2].n;
    k->expire_ms = ttl ? rsbus__now_ms() + ttl : 0;
    rsbus__mkey_touch(x->ns, k);
    RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n");
}
RSBUS__PRIVATE void rsbus__mc_get(rsbus__mx *x, size_t from, int multi) {
    size_t i;
    if (multi) rsbus__mr_arr(x->m, x->ns, x->argc - from);
    for (i = from; i < x->argc; i++) {
        rsbus__mkey *k = rsbus__mkey_get(x->ns, x->a[i].p, x->a[i].n);
        if (k && k->type == RSBUS__MK_STRING) rsbus__mr_bulk(x->m, x->ns, k->val, k->vlen);
        else if (k && !multi) RSBUS__MX_ERR(x, "%s", rsbus__m_wrongtype);
        else RSBUS__MR_LIT(x->m, x->ns, "$-1\r\n");
    }
}
RSBUS__PRIVATE void rsbus__mc_del(rsbus__mx *x, int del) {
    size_t i;
    int64_t n = 0;
    for (i = 1; i < x->argc; i++) {
        rsbus__mkey *k = rsbus__mkey_get(x->ns, x->a[i].p, x->a[i].n);
        if (!k) continue;
        n++;
        if (del) { rsbus__mkey_del(x->ns, k); x->woke = 1; }
    }
    rsbus__mr_int(x->m, x->ns, n);
}
RSBUS__PRIVATE void rsbus__mc_pttl(rsbus__mx *x) {
    rsbus__mkey *k = rsbus__mkey_get(x->ns, x->a[1].p, x->a[1].n);
    rsbus__mr_int(x->m, x->ns, !k ? -2 : !k->expire_ms ? -1 : RSBUS__MAX(k->expire_ms - rsbus__now_ms(), 0));
}
RSBUS__PRIVATE rsbus__mhf *rsbus__mh_find(rsbus__mkey *k, rsbus__marg f) {
    size_t i;
    for (i = 0; i < k->hn; i++) if (rsbus__meq(f, k->h[i].f, k->h[i].fl)) return &k->h[i];
    return NULL;
}
/* HSET key f v [f v ...] (replies how many were new), HSETNX key f v (1 set, 0 there already). */
RSBUS__PRIVATE void rsbus__mc_hset(rsbus__mx *x, int nx) {
    rsbus__mkey *k = rsbus__mkey_get(x->ns, x->a[1].p, x->a[1].n);
    size_t i;
    int64_t added = 0;
    if ((x->argc - 2) % 2 || (nx && x->argc != 4)) {
        RSBUS__MX_ERR(x, "ERR wrong number of arguments for '%s' command", nx ? "hsetnx" : "hset");
        return;
    }
    if (k && k->type != RSBUS__MK_HASH) { RSBUS__MX_ERR(x, "%s", rsbus__m_wrongtype); return; }
    if (!k && !(k = rsbus__mkey_new(x->ns, x->a[1].p, x->a[1].n, RSBUS__MK_HASH))) {
        RSBUS__MX_ERR(x, "%s", rsbus__m_oom);
        return;
    }
    for (i = 2; i + 1 < x->argc; i += 2) {
        rsbus__mhf *h = rsbus__mh_find(k, x->a[i]);
        char *v;
        if (h && nx) break;
        v = rsbus__mdup(x->ns, x->a[i + 1].p, x->a[i + 1].n);
        if (!v) { RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
        if (!h) {
            rsbus__mhf *p = (rsbus__mhf *)rsbus__grow(&x->ns->a, k->h, &k->hcap, k->hn + 1, sizeof *p, 4);
            char *f = rsbus__mdup(x->ns, x->a[i].p, x->a[i].n);
            if (!p || !f) {
                if (p) k->h = p;
                rsbus__free(&x->ns->a, f, x->a[i].n + 1);
                rsbus__free(&x->ns->a, v, x->a[i + 1].n + 1);
                RSBUS__MX_ERR(x, "%s", rsbus__m_oom);
                return;
            }
            k->h = p;
            h = &k->h[k->hn++];
            h->f = f; h->fl = x->a[i].n; h->v = NULL; h->vl = 0;
            added++;
        }
        rsbus__free(&x->ns->a, h->v, h->vl + 1);
        h->v = v; h->vl = x->a[i + 1].n;
    }
    rsbus__mkey_touch(x->ns, k);
    rsbus__mr_int(x->m, x->ns, added);
}
RSBUS__PRIVATE void rsbus__mc_hget(rsbus__mx *x) {
    rsbus__mkey *k = rsbus__mkey_get(x->ns, x->a[1].p, x->a[1].n);
    rsbus__mhf *h;
    if (k && k->type != RSBUS__MK_HASH) { RSBUS__MX_ERR(x, "%s", rsbus__m_wrongtype); return; }
    h = k ? rsbus__mh_find(k, x->a[2]) : NULL;
    if (h) rsbus__mr_bulk(x->m, x->ns, h->v, h->vl); else RSBUS__MR_LIT(x->m, x->ns, "$-1\r\n");
}
RSBUS__PRIVATE void rsbus__mc_time(rsbus__mx *x) {
    struct timespec ts;
    char b[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    rsbus__mr_arr(x->m, x->ns, 2);
    rsbus__mr_bulk(x->m, x->ns, b, (size_t)snprintf(b, sizeof b, "%lld", (long long)ts.tv_sec));
    rsbus__mr_bulk(x->m, x->ns, b, (size_t)snprintf(b, sizeof b, "%ld", ts.tv_nsec / 1000));
}
/* EVAL: only rsbus's own script (rsbus_consumers_gc), recognised by its text and run here. */
RSBUS__PRIVATE void rsbus__mc_eval(rsbus__mx *x) {
#ifndef RSBUS_NO_ADMIN
    if (x->argc == 6 && rsbus__meq(x->a[1], rsbus__gc_script, sizeof rsbus__gc_script - 1) && rsbus__meq(x->a[2], "1", 1)) {
        rsbus__mkey *k;
        rsbus__mgroup *g = NULL;
        rsbus__mcons *c;
        size_t at;
        if (rsbus__mstream_arg(x, 3, &k) < 0) return;
        if (!k) { RSBUS__MX_ERR(x, "ERR Error running script: no such key"); return; }
        g = rsbus__mgroup_get(k->st, x->a[4], NULL);
        if (!g) {
            RSBUS__MX_ERR(x, "NOGROUP No such consumer group '%.*s' for key name '%.*s'", RSBUS__MNAME(x->a[4]), RSBUS__MNAME(x->a[3]));
            return;
        }
        c = rsbus__mcons_get(g, x->a[5].p, x->a[5].n, &at);
        if (!c) { rsbus__mr_int(x->m, x->ns, 0); return; }
        if (c->pending) { rsbus__mr_int(x->m, x->ns, -1); return; }
        memmove(&g->cons[at], &g->cons[at + 1], (g->ncons - at - 1) * sizeof *g->cons);
        g->ncons--;
        rsbus__free(&x->ns->a, c->name, c->len + 1);
        rsbus__free(&x->ns->a, c, sizeof *c);
        rsbus__mr_int(x->m, x->ns, 1);
        return;
    }
#endif
    RSBUS__MX_ERR(x, "ERR mem:// runs no Lua: only rsbus's own scripts are known to it");
}

/* Redis's glob (KEYS): '*', '?', '[...]' with ranges and '^', '\\' escapes. */
RSBUS__PRIVATE int rsbus__mglob(const char *p, size_t pn, const char *s, size_t sn, int depth) {
    if (depth > 64) return 0;
    while (pn) {
        if (*p == '*') {
            size_t i;
            while (pn && *p == '*') { p++; pn--; }
            if (!pn) return 1;
            for (i = 0; i <= sn; i++) if (rsbus__mglob(p, pn, s + i, sn - i, depth + 1)) return 1;
            return 0;
        }
        if (!sn) return 0;
        if (*p == '?') { p++; pn--; s++; sn--; continue; }
        if (*p == '[') {
            int neg = 0, hit = 0;
            p++; pn--;
            if (pn && *p == '^') { neg = 1; p++; pn--; }
            while (pn && *p != ']') {
                if (*p == '\\' && pn >= 2) { p++; pn--; hit |= *p == *s; }
                else if (pn >= 3 && p[1] == '-' && p[2] != ']') {
                    char lo = p[0], hi = p[2];
                    if (lo > hi) { char t = lo; lo = hi; hi = t; }
                    hit |= *s >= lo && *s <= hi;
                    p += 2; pn -= 2;
                } else hit |= *p == *s;
                p++; pn--;
            }
            if (pn) { p++; pn--; }
            if (hit == neg) return 0;
            s++; sn--;
            continue;
        }
        if (*p == '\\' && pn >= 2) { p++; pn--; }
        if (*p != *s) return 0;
        p++; pn--; s++; sn--;
    }
    return sn == 0;
}

/* ---- dispatch ---- */
enum {
    RSBUS__MC_XADD, RSBUS__MC_XREADGROUP, RSBUS__MC_XREAD, RSBUS__MC_XACK, RSBUS__MC_XPENDING, RSBUS__MC_XCLAIM,
    RSBUS__MC_XRANGE, RSBUS__MC_XREVRANGE, RSBUS__MC_XLEN, RSBUS__MC_XDEL, RSBUS__MC_XTRIM, RSBUS__MC_XINFO,
    RSBUS__MC_XGROUP, RSBUS__MC_SET, RSBUS__MC_GET, RSBUS__MC_MGET, RSBUS__MC_DEL, RSBUS__MC_EXISTS, RSBUS__MC_PTTL,
    RSBUS__MC_HSET, RSBUS__MC_HSETNX, RSBUS__MC_HGET, RSBUS__MC_TIME, RSBUS__MC_PING, RSBUS__MC_CONFIG,
    RSBUS__MC_EVAL, RSBUS__MC_SELECT, RSBUS__MC_DBSIZE, RSBUS__MC_MULTI, RSBUS__MC_EXEC, RSBUS__MC_DISCARD,
    RSBUS__MC_WATCH, RSBUS__MC_UNWATCH, RSBUS__MC_INFO, RSBUS__MC_KEYS, RSBUS__MC_COUNT
};
/* Names and arities (Redis's: n exactly, -n at least n arguments with the name). */
static const struct { const char *name; int arity; } rsbus__mcmds[RSBUS__MC_COUNT] = {
    { "XADD", -5 }, { "XREADGROUP", -7 }, { "XREAD", -4 }, { "XACK", -4 }, { "XPENDING", -3 }, { "XCLAIM", -6 },
    { "XRANGE", -4 }, { "XREVRANGE", -4 }, { "XLEN", 2 }, { "XDEL", -3 }, { "XTRIM", -4 }, { "XINFO", -2 },
    { "XGROUP", -2 }, { "SET", -3 }, { "GET", 2 }, { "MGET", -2 }, { "DEL", -2 }, { "EXISTS", -2 }, { "PTTL", 2 },
    { "HSET", -4 }, { "HSETNX", 4 }, { "HGET", 3 }, { "TIME", 1 }, { "PING", -1 }, { "CONFIG", -2 },
    { "EVAL", -3 }, { "SELECT", 2 }, { "DBSIZE", 1 }, { "MULTI", 1 }, { "EXEC", 1 }, { "DISCARD", 1 },
    { "WATCH", -2 }, { "UNWATCH", 1 }, { "INFO", -1 }, { "KEYS", 2 }
};
typedef char rsbus__mcalls_fit[RSBUS__MC_COUNT <= 40 ? 1 : -1];   /* rsbus__mns.calls has room */
/* The subcommands INFO commandstats counts on their own ("xinfo|stream"). */
static const char *const rsbus__msubs[] = {
    "xinfo|stream", "xinfo|groups", "xinfo|consumers", "xgroup|create", "xgroup|setid", "xgroup|destroy",
    "xgroup|createconsumer", "xgroup|delconsumer", "config|get", "config|set", "config|resetstat"
};
#define RSBUS__MSUBS (sizeof rsbus__msubs / sizeof rsbus__msubs[0])
/* Counts a call for INFO commandstats. */
RSBUS__PRIVATE void rsbus__mcount(rsbus__mx *x, int c) {
    const char *name = rsbus__mcmds[c].name;
    size_t i;
    if (c != RSBUS__MC_XINFO && c != RSBUS__MC_XGROUP && c != RSBUS__MC_CONFIG) { x->ns->calls[c]++; return; }
    for (i = 0; i < RSBUS__MSUBS; i++) {
        const char *sub = strchr(rsbus__msubs[i], '|') + 1;
        size_t pl = (size_t)(sub - 1 - rsbus__msubs[i]), j;
        int same = 1;
        for (j = 0; j < pl; j++) same &= (name[j] | 0x20) == rsbus__msubs[i][j];
        if (same && rsbus__mieq_lower(x->a[1], sub)) { x->ns->subcalls[i]++; return; }
    }
}
/* INFO [commandstats]: the calls counted since the namespace began or CONFIG RESETSTAT. */
RSBUS__PRIVATE void rsbus__mc_info(rsbus__mx *x) {
    char line[160];
    size_t at, i, j;
    RSBUS__MR_LIT(x->m, x->ns, "$");
    at = x->m->rep_len;
    RSBUS__MR_LIT(x->m, x->ns, "# Commandstats\r\n");
    for (i = 0; i < RSBUS__MC_COUNT; i++) {
        char lower[16];
        if (!x->ns->calls[i]) continue;
        for (j = 0; rsbus__mcmds[i].name[j] && j < sizeof lower - 1; j++) lower[j] = (char)(rsbus__mcmds[i].name[j] | 0x20);
        lower[j] = 0;
        rsbus__mr_raw(x->m, x->ns, line, (size_t)snprintf(line, sizeof line, "cmdstat_%s:calls=%llu,usec=0,usec_per_call=0.00,"
                      "rejected_calls=0,failed_calls=0\r\n", lower, (unsigned long long)x->ns->calls[i]));
    }
    for (i = 0; i < RSBUS__MSUBS; i++) {
        if (!x->ns->subcalls[i]) continue;
        rsbus__mr_raw(x->m, x->ns, line, (size_t)snprintf(line, sizeof line, "cmdstat_%s:calls=%llu,usec=0,usec_per_call=0.00,"
                      "rejected_calls=0,failed_calls=0\r\n", rsbus__msubs[i], (unsigned long long)x->ns->subcalls[i]));
    }
    if (!x->m->oom) {   /* the bulk string's length goes before it */
        size_t body = x->m->rep_len - at;
        char hb[32];
        size_t k = (size_t)snprintf(hb, sizeof hb, "%lu\r\n", (unsigned long)body);
        rsbus__mr_raw(x->m, x->ns, hb, k);
        if (!x->m->oom) {
            memmove(x->m->rep + at + k, x->m->rep + at, body);
            memcpy(x->m->rep + at, hb, k);
            RSBUS__MR_LIT(x->m, x->ns, "\r\n");
        }
    }
}
/* Parses one RESP command at p into m->argv. Returns its length, 0 when incomplete or malformed; when
   argv cannot grow, its length with *argc 0 and m->oom set. */
RSBUS__PRIVATE size_t rsbus__mparse(struct rsbus__mconn *m, rsbus__mns *ns, const char *p, size_t n, size_t *argc) {
    const char *s = p, *end = p + n, *nl;
    int64_t na, len;
    size_t i;
    int pass;
    *argc = 0;
    if (n < 4 || *s != '*' || !(nl = (const char *)memchr(s, '\r', (size_t)(end - s))) ||
        !rsbus__parse_i64(s + 1, (size_t)(nl - s - 1), &na) || na < 1 || na > (1 << 20))
        return 0;
    for (pass = 0; pass < 2; pass++) {   /* 0: measure and check, 1: record */
        s = nl + 2;
        if (pass == 1) {
            rsbus__marg *a = (rsbus__marg *)rsbus__grow(&ns->a, m->argv, &m->cap_argv, (size_t)na, sizeof *a, 16);
            if (!a) { m->oom = 1; return (size_t)(s - p); }
            m->argv = a;
        }
        for (i = 0; i < (size_t)na; i++) {
            const char *raw = s, *q;
            if (s >= end || *s != '$' || !(q = (const char *)memchr(s, '\r', (size_t)(end - s))) ||
                !rsbus__parse_i64(s + 1, (size_t)(q - s - 1), &len) || len < 0 || (size_t)(end - q) < (size_t)len + 4)
                return 0;
            if (pass == 1) { m->argv[i].raw = raw; m->argv[i].p = q + 2; m->argv[i].n = (size_t)len; }
            s = q + 2 + len + 2;
        }
        if (pass == 0) n = (size_t)(s - p);   /* the command's length */
    }
    *argc = (size_t)na;
    return n;
}
RSBUS__PRIVATE int rsbus__mlookup(rsbus__marg name) {
    int i;
    for (i = 0; i < RSBUS__MC_COUNT; i++) if (rsbus__mieq(name, rsbus__mcmds[i].name)) return i;
    return -1;
}
RSBUS__PRIVATE int rsbus__mwatch_changed(rsbus__mx *x) {
    size_t i;
    for (i = 0; i < x->m->nw; i++) {
        rsbus__mkey *k = rsbus__mkey_get(x->ns, x->m->w[i].name, x->m->w[i].len);
        if ((k ? k->ver : 0) != x->m->w[i].ver) return 1;
    }
    return 0;
}
RSBUS__PRIVATE void rsbus__munwatch(struct rsbus__mconn *m, rsbus__mns *ns) {
    size_t i;
    for (i = 0; i < m->nw; i++) rsbus__free(&ns->a, m->w[i].name, m->w[i].len + 1);
    m->nw = 0;
}
RSBUS__PRIVATE void rsbus__mexec_parsed(rsbus__mx *x, int c);
/* EXEC: the queued commands, all under the lock already held. */
RSBUS__PRIVATE void rsbus__mc_exec(rsbus__mx *x) {
    struct rsbus__mconn *m = x->m;
    size_t pos = 0, argc;
    m->in_multi = 0;
    if (m->multi_bad) {
        RSBUS__MX_ERR(x, "EXECABORT Transaction discarded because of previous errors.");
    } else if (rsbus__mwatch_changed(x)) {
        RSBUS__MR_LIT(m, x->ns, "*-1\r\n");
    } else {
        rsbus__mr_arr(m, x->ns, m->tx_n);
        x->in_exec = 1;
        while (pos < m->tx_len) {
            size_t used = rsbus__mparse(m, x->ns, m->tx + pos, m->tx_len - pos, &argc);
            if (!used || m->oom) break;   /* out of memory: the whole EXEC answers RSBUSNOMEM */
            x->a = m->argv; x->argc = argc;
            rsbus__mexec_parsed(x, rsbus__mlookup(m->argv[0]));
            pos += used;
        }
        x->in_exec = 0;
    }
    m->tx_len = 0; m->tx_n = 0; m->multi_bad = 0;
    rsbus__munwatch(m, x->ns);
}
RSBUS__PRIVATE void rsbus__mexec_parsed(rsbus__mx *x, int c) {
    size_t i;
    if (c >= 0 && c != RSBUS__MC_INFO) rsbus__mcount(x, c);
    switch (c) {
    case RSBUS__MC_XADD: rsbus__mc_xadd(x); break;
    case RSBUS__MC_XREADGROUP: rsbus__mc_xread(x, 1); break;
    case RSBUS__MC_XREAD: rsbus__mc_xread(x, 0); break;
    case RSBUS__MC_XACK: rsbus__mc_xack(x); break;
    case RSBUS__MC_XPENDING: rsbus__mc_xpending(x); break;
    case RSBUS__MC_XCLAIM: rsbus__mc_xclaim(x); break;
    case RSBUS__MC_XRANGE: rsbus__mc_xrange(x, 0); break;
    case RSBUS__MC_XREVRANGE: rsbus__mc_xrange(x, 1); break;
    case RSBUS__MC_XLEN: rsbus__mc_xlen(x); break;
    case RSBUS__MC_XDEL: rsbus__mc_xdel(x); break;
    case RSBUS__MC_XTRIM: rsbus__mc_xtrim(x); break;
    case RSBUS__MC_XINFO: rsbus__mc_xinfo(x); break;
    case RSBUS__MC_XGROUP: rsbus__mc_xgroup(x); break;
    case RSBUS__MC_SET: rsbus__mc_set(x); break;
    case RSBUS__MC_GET: rsbus__mc_get(x, 1, 0); break;
    case RSBUS__MC_MGET: rsbus__mc_get(x, 1, 1); break;
    case RSBUS__MC_DEL: rsbus__mc_del(x, 1); break;
    case RSBUS__MC_EXISTS: rsbus__mc_del(x, 0); break;
    case RSBUS__MC_PTTL: rsbus__mc_pttl(x); break;
    case RSBUS__MC_HSET: rsbus__mc_hset(x, 0); break;
    case RSBUS__MC_HSETNX: rsbus__mc_hset(x, 1); break;
    case RSBUS__MC_HGET: rsbus__mc_hget(x); break;
    case RSBUS__MC_TIME: rsbus__mc_time(x); break;
    case RSBUS__MC_PING:
        if (x->argc > 2) RSBUS__MX_ERR(x, "ERR wrong number of arguments for 'ping' command");
        else if (x->argc == 2) rsbus__mr_bulk(x->m, x->ns, x->a[1].p, x->a[1].n);
        else RSBUS__MR_LIT(x->m, x->ns, "+PONG\r\n");
        break;
    case RSBUS__MC_CONFIG:   /* maxmemory-policy is kept and reported (nothing is evicted here); RESETSTAT */
        if (x->argc == 3 && rsbus__mieq(x->a[1], "GET") && rsbus__meq(x->a[2], "maxmemory-policy", 16)) {
            rsbus__mr_arr(x->m, x->ns, 2);
            rsbus__mr_bulkz(x->m, x->ns, "maxmemory-policy");
            rsbus__mr_bulkz(x->m, x->ns, x->ns->policy[0] ? x->ns->policy : "noeviction");
        } else if (x->argc >= 3 && rsbus__mieq(x->a[1], "GET")) {
            RSBUS__MR_LIT(x->m, x->ns, "*0\r\n");
        } else if (x->argc == 4 && rsbus__mieq(x->a[1], "SET") && rsbus__meq(x->a[2], "maxmemory-policy", 16)) {
            static const char *const pol[] = { "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
                                               "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl" };
            for (i = 0; i < sizeof pol / sizeof pol[0] && !rsbus__mieq_lower(x->a[3], pol[i]); i++) {}
            if (i == sizeof pol / sizeof pol[0]) {
                RSBUS__MX_ERR(x, "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) "
                              "must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, "
                              "allkeys-lru, allkeys-lfu, allkeys-random, noeviction");
                break;
            }
            memcpy(x->ns->policy, pol[i], strlen(pol[i]) + 1);
            RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n");
        } else if (x->argc == 2 && rsbus__mieq(x->a[1], "RESETSTAT")) {
            memset(x->ns->calls, 0, sizeof x->ns->calls);
            memset(x->ns->subcalls, 0, sizeof x->ns->subcalls);
            RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n");
        } else RSBUS__MX_ERR(x, "ERR mem:// has no CONFIG %.*s", RSBUS__MNAME(x->a[1]));
        break;
    case RSBUS__MC_INFO: rsbus__mc_info(x); break;
    case RSBUS__MC_KEYS: {
        int64_t now = rsbus__now_ms();
        size_t n = 0, at = x->m->rep_len, b;
        for (b = 0; b < x->ns->nb; b++) {
            rsbus__mkey *k;
            for (k = x->ns->tab[b]; k; k = k->next) {
                if (rsbus__mkey_expired(k, now) || !rsbus__mglob(x->a[1].p, x->a[1].n, k->name, k->len, 0)) continue;
                rsbus__mr_bulk(x->m, x->ns, k->name, k->len);
                n++;
            }
        }
        rsbus__mr_insert_arr(x->m, x->ns, at, n);
        break;
    }
    case RSBUS__MC_EVAL: rsbus__mc_eval(x); break;
    case RSBUS__MC_SELECT:
        if (rsbus__meq(x->a[1], "0", 1)) RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n");
        else RSBUS__MX_ERR(x, "ERR DB index is out of range");
        break;
    case RSBUS__MC_DBSIZE: rsbus__mr_int(x->m, x->ns, (int64_t)x->ns->nkeys); break;
    case RSBUS__MC_MULTI:
        if (x->m->in_multi) RSBUS__MX_ERR(x, "ERR MULTI calls can not be nested");
        else { x->m->in_multi = 1; x->m->tx_len = 0; x->m->tx_n = 0; x->m->multi_bad = 0; RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n"); }
        break;
    case RSBUS__MC_EXEC:
        if (!x->m->in_multi) RSBUS__MX_ERR(x, "ERR EXEC without MULTI"); else rsbus__mc_exec(x);
        break;
    case RSBUS__MC_DISCARD:
        if (!x->m->in_multi) RSBUS__MX_ERR(x, "ERR DISCARD without MULTI");
        else {
            x->m->in_multi = 0; x->m->tx_len = 0; x->m->tx_n = 0; x->m->multi_bad = 0;
            rsbus__munwatch(x->m, x->ns);
            RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n");
        }
        break;
    case RSBUS__MC_WATCH:
        if (x->m->in_multi) { RSBUS__MX_ERR(x, "ERR WATCH inside MULTI is not allowed"); break; }
        for (i = 1; i < x->argc; i++) {
            rsbus__mkey *k = rsbus__mkey_get(x->ns, x->a[i].p, x->a[i].n);
            rsbus__mwatch *w = (rsbus__mwatch *)rsbus__grow(&x->ns->a, x->m->w, &x->m->capw, x->m->nw + 1, sizeof *w, 4);
            char *name = w ? rsbus__mdup(x->ns, x->a[i].p, x->a[i].n) : NULL;
            if (w) x->m->w = w;
            if (!name) { RSBUS__MX_ERR(x, "%s", rsbus__m_oom); return; }
            x->m->w[x->m->nw].name = name; x->m->w[x->m->nw].len = x->a[i].n;
            x->m->w[x->m->nw++].ver = k ? k->ver : 0;
        }
        RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n");
        break;
    case RSBUS__MC_UNWATCH: rsbus__munwatch(x->m, x->ns); RSBUS__MR_LIT(x->m, x->ns, "+OK\r\n"); break;
    default: break;
    }
}
/* Runs one command (raw RESP, 'used' bytes) with the namespace locked. Returns 0 when it blocks (nothing
   written), 1 when its reply is in m->rep, 2 when memory ran out writing it (the reply is an error then). */
RSBUS__PRIVATE int rsbus__mrun_one(struct rsbus__mconn *m, const char *cmd, size_t n, int expired, size_t *used) {
    rsbus__mns *ns = m->ns;
    rsbus__mx x;
    size_t argc = 0;
    int c, ar;
    memset(&x, 0, sizeof x);
    x.m = m; x.ns = ns; x.expired = expired;
    m->rep_len = 0;
    m->oom = 0;
    pthread_mutex_lock(&ns->mu);
    x.now = rsbus__now_ms();
    *used = rsbus__mparse(m, ns, cmd, n, &argc);
    if (*used && m->oom) { pthread_mutex_unlock(&ns->mu); m->rep_len = 0; m->oom = 0; return 2; }
    if (!*used) {
        *used = n;   /* the rest of the queue cannot be read: it is dropped */
        RSBUS__MX_ERR(&x, "ERR Protocol error: invalid multibulk length");
        pthread_mutex_unlock(&ns->mu);
        return 1;
    }
    x.a = m->argv; x.argc = argc;
    c = rsbus__mlookup(m->argv[0]);
    ar = c >= 0 ? rsbus__mcmds[c].arity : 0;
    if (c < 0) {
        char args[300];
        size_t i, k = 0;
        args[0] = 0;
        for (i = 1; i < argc && k + 2 < sizeof args; i++) {
            int w = snprintf(args + k, sizeof args - k, "'%.*s' ", (int)RSBUS__MIN(m->argv[i].n, 128), m->argv[i].p);
            if (w < 0 || (size_t)w >= sizeof args - k) break;
            k += (size_t)w;
        }
        RSBUS__MX_ERR(&x, "ERR unknown command '%.*s', with args beginning with: %s", RSBUS__MNAME(m->argv[0]), args);
        if (m->in_multi) m->multi_bad = 1;
    } else if ((ar > 0 && argc != (size_t)ar) || (ar < 0 && argc < (size_t)-ar)) {
        char lower[16];
        size_t i;
        for (i = 0; rsbus__mcmds[c].name[i] && i < sizeof lower - 1; i++) lower[i] = (char)(rsbus__mcmds[c].name[i] | 0x20);
        lower[i] = 0;
        RSBUS__MX_ERR(&x, "ERR wrong number of arguments for '%s' command", lower);
        if (m->in_multi) m->multi_bad = 1;
    } else if (m->in_multi && c != RSBUS__MC_EXEC && c != RSBUS__MC_DISCARD && c != RSBUS__MC_MULTI && c != RSBUS__MC_WATCH) {
        char *p = (char *)rsbus__grow(&ns->a, m->tx, &m->tx_cap, m->tx_len + *used, 1, 1024);
        if (!p) { RSBUS__MX_ERR(&x, "%s", rsbus__m_oom); m->multi_bad = 1; }
        else {
            m->tx = p;
            memcpy(m->tx + m->tx_len, cmd, *used);
            m->tx_len += *used;
            m->tx_n++;
            RSBUS__MR_LIT(m, ns, "+QUEUED\r\n");
        }
    } else {
        rsbus__mexec_parsed(&x, c);
    }
    if (x.blocked) m->seen_ver = ns->ver;
    if (x.woke && ns->waiters) pthread_cond_broadcast(&ns->cv);
    pthread_mutex_unlock(&ns->mu);
    if (x.blocked) { m->rep_len = 0; return 0; }
    if (m->oom) { m->rep_len = 0; m->oom = 0; return 2; }   /* the caller answers RSBUSNOMEM */
    return 1;
}

/* ---- the connection side ---- */
/* Runs the commands queued on the connection, in order, feeding their replies to its reader; stops at a
   read that blocks (its BLOCK begins then). */
RSBUS__PRIVATE rsbus_result rsbus__mem_run(rsbus__conn *cn) {
    static const char oom[] = "-RSBUSNOMEM mem://: out of memory\r\n";
    struct rsbus__mconn *m = cn->mem;
    while (m->q_pos < m->q_len) {
        size_t used;
        int64_t now = rsbus__mono_ms();
        int expired = m->block_until && now >= m->block_until, ran;
        ran = rsbus__mrun_one(m, m->q + m->q_pos, m->q_len - m->q_pos, expired, &used);
        if (!ran) {
            if (!m->block_until) m->block_until = m->block_ms ? now + m->block_ms : INT64_MAX;
            if (m->block_until <= now) continue;   /* BLOCK 1 ms, and it is over already */
            break;
        }
        m->block_until = 0;
        m->dollar_n = 0;
        m->q_pos += used;
        if (ran == 2 ? redisReaderFeed(cn->c->reader, oom, sizeof oom - 1) != REDIS_OK
                     : redisReaderFeed(cn->c->reader, m->rep, m->rep_len) != REDIS_OK) {
            rsbus__drop(cn);   /* a reply lost: the pipeline is out of step */
            return rsbus__fail(cn->bus, RSBUS_E_NOMEM, "mem://: out of memory");
        }
    }
    if (m->q_pos == m->q_len) m->q_pos = m->q_len = 0;
    return RSBUS_OK;
}
/* Waits (at most until deadline, a slice of at most 100 ms) for a write to the namespace. */
RSBUS__PRIVATE void rsbus__mem_sleep(rsbus__conn *cn, int64_t until) {
    struct rsbus__mconn *m = cn->mem;
    rsbus__mns *ns = m->ns;
    int64_t ms = RSBUS__MIN(until - rsbus__mono_ms(), 100);
    struct timespec ts;
    if (m->block_until) ms = RSBUS__MIN(ms, m->block_until - rsbus__mono_ms());
    if (ms <= 0) return;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&ns->mu);
    if (ns->ver == m->seen_ver) {
        ns->waiters++;
        (void)pthread_cond_timedwait(&ns->cv, &ns->mu, &ts);
        ns->waiters--;
    }
    pthread_mutex_unlock(&ns->mu);
}
RSBUS__PRIVATE int rsbus__mem_has_reply(const rsbus__conn *cn) { return cn->c->reader->len > cn->c->reader->pos; }
/* rsbus__write_segs of a mem:// connection: the segments are queued and run. */
RSBUS__PRIVATE rsbus_result rsbus__mem_send(rsbus__conn *cn, size_t from, const char *what) {
    struct rsbus__mconn *m = cn->mem;
    size_t i, total = 0;
    char *p;
    for (i = from; i < cn->nsegs; i++) total += cn->segs[i].len;
    p = (char *)rsbus__grow(&cn->bus->a, m->q, &m->q_cap, m->q_len + total, 1, 4096);
    if (!p) { rsbus__drop(cn); return rsbus__fail(cn->bus, RSBUS_E_NOMEM, "%s %s: out of memory", what, cn->bus->url.redacted); }
    m->q = p;
    for (i = from; i < cn->nsegs; i++) {
        memcpy(m->q + m->q_len, cn->out + cn->segs[i].off, cn->segs[i].len);
        m->q_len += cn->segs[i].len;
    }
    return rsbus__mem_run(cn);
}
/* rsbus__read_reply of a mem:// connection, when the reader holds no reply: runs what is queued, waiting
   for a blocked read to be served or to time out. */
RSBUS__PRIVATE rsbus_result rsbus__mem_pump(rsbus__conn *cn, const char *what) {
    for (;;) {
        rsbus_result r = rsbus__mem_run(cn);
        if (r != RSBUS_OK) return r;
        if (rsbus__mem_has_reply(cn)) return RSBUS_OK;
        if (cn->mem->q_pos == cn->mem->q_len) {
            rsbus__drop(cn);
            return rsbus__fail(cn->bus, RSBUS_E_IO, "%s %s: no reply is coming", what, cn->bus->url.redacted);
        }
        rsbus__mem_sleep(cn, INT64_MAX);
    }
}
/* rsbus__wait_readable of a mem:// connection: 1 a reply is there, 0 timed out, -1 a stop (in rsbus_run). */
RSBUS__PRIVATE int rsbus__mem_wait(rsbus__conn *cn, int64_t timeout_ms) {
    rsbus *bus = cn->bus;
    int64_t deadline = rsbus__mono_ms() + timeout_ms;
    for (;;) {
        if (rsbus__mem_run(cn) != RSBUS_OK) return -2;
        if (rsbus__mem_has_reply(cn)) return 1;
        if (bus->in_run && rsbus__stop_requested(bus)) return -1;
        if (rsbus__mono_ms() >= deadline || cn->mem->q_pos == cn->mem->q_len) return 0;
        rsbus__mem_sleep(cn, deadline);
    }
}
/* A dropped mem:// connection forgets what it had not run (a blocked read never happened), its MULTI
   and its WATCHes, as Redis does for a closed client. */
RSBUS__PRIVATE void rsbus__mem_reset(rsbus__conn *cn) {
    struct rsbus__mconn *m = cn->mem;
    m->q_pos = m->q_len = 0;
    m->block_until = 0; m->dollar_n = 0;
    m->in_multi = 0; m->multi_bad = 0; m->tx_len = 0; m->tx_n = 0;
    pthread_mutex_lock(&m->ns->mu);   /* the namespace's allocator is used under its lock only */
    rsbus__munwatch(m, m->ns);
    pthread_mutex_unlock(&m->ns->mu);
}
/* rsbus__connect of a mem:// connection: a hiredis context without a socket, for its reader. */
RSBUS__PRIVATE rsbus_result rsbus__mem_connect(rsbus__conn *cn) {
    cn->c = redisConnectFd(-1);
    if (!cn->c) return rsbus__fail(cn->bus, RSBUS_E_NOMEM, "connect %s: out of memory", cn->bus->url.redacted);
    cn->c->reader->fn = &cn->fns;
    cn->c->reader->privdata = cn;
    rsbus__mem_reset(cn);
    cn->last_io_ms = rsbus__mono_ms();
    return RSBUS_OK;
}
RSBUS__PRIVATE void rsbus__mns_free(rsbus__mns *ns) {
    rsbus_allocator a = ns->a;
    size_t i;
    for (i = 0; i < ns->nb; i++) {
        while (ns->tab[i]) {
            rsbus__mkey *k = ns->tab[i];
            ns->tab[i] = k->next;
            rsbus__mkey_free(ns, k);
        }
    }
    rsbus__free(&a, ns->tab, ns->nb * sizeof *ns->tab);
    pthread_cond_destroy(&ns->cv);
    pthread_mutex_destroy(&ns->mu);
    rsbus__free(&a, ns, sizeof *ns);
}
/* rsbus_open of a mem:// bus: refuses what cannot apply, joins (or makes) the namespace. */
RSBUS__PRIVATE rsbus_result rsbus__mem_open(rsbus *bus, const rsbus_config *c, char *msg, size_t size) {
    struct rsbus__mconn *m;
    rsbus__mns *ns;
    const char *name = bus->url.host;
    if (c->spool_path) {
        snprintf(msg, size, "rsbus_open: spool_path: mem:// has no spool (nothing survives the process)");
        return RSBUS_E_ARG;
    }
    if (c->require_tls) {
        snprintf(msg, size, "rsbus_open: require_tls: mem:// has no TLS (it has no connection)");
        return RSBUS_E_ARG;
    }
    if (c->publish_wait_replicas > 0) {
        snprintf(msg, size, "rsbus_open: publish_wait_replicas: mem:// has no replicas (nothing survives the process)");
        return RSBUS_E_ARG;
    }
    m = (struct rsbus__mconn *)rsbus__alloc(&bus->a, sizeof *m);
    if (!m) { snprintf(msg, size, "rsbus_open: out of memory"); return RSBUS_E_NOMEM; }
    memset(m, 0, sizeof *m);
    pthread_mutex_lock(&rsbus__mem_lock);
    for (ns = rsbus__mem_spaces; ns && strcmp(ns->name, name) != 0; ns = ns->next) {}
    if (!ns) {
        ns = (rsbus__mns *)rsbus__alloc(&bus->a, sizeof *ns);
        if (ns) {
            memset(ns, 0, sizeof *ns);
            memcpy(ns->name, name, RSBUS__MIN(strlen(name), (size_t)RSBUS__MEM_NAME_MAX));   /* zeroed: NUL-ended */
            ns->a = bus->a;
            if (pthread_mutex_init(&ns->mu, NULL) != 0) { rsbus__free(&bus->a, ns, sizeof *ns); ns = NULL; }
            else if (pthread_cond_init(&ns->cv, NULL) != 0) {
                pthread_mutex_destroy(&ns->mu);
                rsbus__free(&bus->a, ns, sizeof *ns);
                ns = NULL;
            }
        }
        if (ns) { ns->next = rsbus__mem_spaces; rsbus__mem_spaces = ns; }
    }
    if (ns) ns->refs++;
    pthread_mutex_unlock(&rsbus__mem_lock);
    if (!ns) { rsbus__free(&bus->a, m, sizeof *m); snprintf(msg, size, "rsbus_open: out of memory"); return RSBUS_E_NOMEM; }
    m->ns = ns;
    bus->conn.mem = m;
    return RSBUS_OK;
}
/* rsbus_close of a mem:// bus (after its connection is freed): the last bus of a namespace frees it. */
RSBUS__PRIVATE void rsbus__mem_close(rsbus *bus) {
    struct rsbus__mconn *m = bus->conn.mem;
    rsbus__mns *ns;
    if (!m) return;
    ns = m->ns;
    pthread_mutex_lock(&ns->mu);
    rsbus__munwatch(m, ns);
    rsbus__free(&ns->a, m->w, m->capw * sizeof *m->w);
    rsbus__free(&ns->a, m->argv, m->cap_argv * sizeof *m->argv);
    rsbus__free(&ns->a, m->tx, m->tx_cap);
    rsbus__free(&ns->a, m->rep, m->rep_cap);
    pthread_mutex_unlock(&ns->mu);
    rsbus__free(&bus->a, m->q, m->q_cap);
    rsbus__free(&bus->a, m, sizeof *m);
    bus->conn.mem = NULL;
    pthread_mutex_lock(&rsbus__mem_lock);
    if (--ns->refs == 0) {
        rsbus__mns **link = &rsbus__mem_spaces;
        while (*link != ns) link = &(*link)->next;
        *link = ns->next;
    } else ns = NULL;
    pthread_mutex_unlock(&rsbus__mem_lock);
    if (ns) rsbus__mns_free(ns);
}
/* For tests: runs one command given as RESP on the bus's namespace, as another client would. Its reply,
   as RESP, is in *out (n bytes, the caller frees it with rsbus__free(&bus->a, *out, n)); -1 when the bus
   is not a mem:// one or memory ran out. */
RSBUS__PRIVATE int rsbus__mem_command(rsbus *bus, const char *cmd, size_t n, char **out, size_t *out_len) {
    struct rsbus__mconn side;
    size_t used;
    if (!bus->conn.mem) return -1;
    memset(&side, 0, sizeof side);
    side.ns = bus->conn.mem->ns;
    (void)rsbus__mrun_one(&side, cmd, n, 1, &used);
    *out = (char *)rsbus__alloc(&bus->a, side.rep_len);
    *out_len = side.rep_len;
    if (*out) memcpy(*out, side.rep, side.rep_len);
    pthread_mutex_lock(&side.ns->mu);
    rsbus__munwatch(&side, side.ns);
    rsbus__free(&side.ns->a, side.w, side.capw * sizeof *side.w);
    rsbus__free(&side.ns->a, side.argv, side.cap_argv * sizeof *side.argv);
    rsbus__free(&side.ns->a, side.rep, side.rep_cap);
    rsbus__free(&side.ns->a, side.tx, side.tx_cap);
    pthread_mutex_unlock(&side.ns->mu);
    return *out ? 0 : -1;
}
#endif /* RSBUS_NO_MEM */

#endif /* RSBUS_IMPLEMENTATION */
/* ---- LICENSE ----------------------------------------------------------------------------

   This software is available under 2 licenses -- choose whichever you prefer.
   ------------------------------------------------------------------------------
   ALTERNATIVE A - MIT License
   Copyright (c) 2026 the rsbus authors
   Permission is hereby granted, free of charge, to any person obtaining a copy of
   this software and associated documentation files (the "Software"), to deal in
   the Software without restriction, including without limitation the rights to
   use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
   of the Software, and to permit persons to whom the Software is furnished to do
   so, subject to the following conditions:
   The above copyright notice and this permission notice shall be included in all
   copies or substantial portions of the Software.
   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
   IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
   FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
   AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
   LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
   OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
   SOFTWARE.
   ------------------------------------------------------------------------------
   ALTERNATIVE B - Public Domain (www.unlicense.org)
   This is free and unencumbered software released into the public domain.
   Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
   software, either in source code form or as a compiled binary, for any purpose,
   commercial or non-commercial, and by any means.
   In jurisdictions that recognize copyright laws, the author or authors of this
   software dedicate any and all copyright interest in the software to the public
   domain. We make this dedication for the benefit of the public at large and to
   the detriment of our heirs and successors. We intend this dedication to be an
   overt act of relinquishment in perpetuity of all present and future rights to
   this software under copyright law.
   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
   IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
   FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
   AUTHORS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN
   ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
   WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
   ------------------------------------------------------------------------------
*/
