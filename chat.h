/* chat.h - v0.5.0 - a real-time group chat server in one header (HTTP + WebSocket, RFC 6455)

   The chat app of Deno's "chat app with WebSockets" tutorial, rebuilt as a dependency-free
   C99 library for small Linux boards: libc + POSIX only, one event loop (epoll on Linux, poll()
   elsewhere), one thread.

   DO THIS:
       #define CHAT_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes it without the define and sees only the declarations.

       #define CHAT_IMPLEMENTATION
       #include "chat.h"
       static const char page[] = "<!doctype html><title>chat</title>...";
       int main(void) {
           chat_server *srv = chat_server_create(NULL);           // NULL: all defaults
           if (!srv) return 1;
           chat_server_add_asset(srv, "/", "text/html; charset=UTF-8", page, sizeof page - 1);
           if (chat_server_listen(srv, NULL, 8080) != CHAT_OK) return 1;   // NULL: [::] and 0.0.0.0
           chat_server_run(srv);                                    // until chat_server_stop()
           chat_server_free(srv);
           return 0;
       }

   WHAT IT SPEAKS (the tutorial's wire contract)
       GET /start_web_socket?username=NAME   WebSocket upgrade; NAME is percent-decoded ('+' = space)
       server -> all   {"event":"update-users","usernames":[...]}  after joins/leaves, in join order
       client -> server {"event":"send-message","message":"TEXT"}
       server -> all   {"event":"send-message","username":"NAME","message":"TEXT"}
       GET <asset>      the bytes registered with chat_server_add_asset(); anything else: 404
   Our additions (the tutorial's page ignores them; README.md "The protocol" has every detail):
       server -> joined, first  {"event":"welcome","id":TOP,"resume":"TOKEN","limits":{...}}
                        TOP: the newest message id; TOKEN: this session's secret; "missing":true
                        when a `since` gap could not be filled
       send-message out also carries "id" (+1 per message, never reused, also across restarts),
                        "time" (ms since 1970, server clock) and the sender's "cid" if it gave one
       send-message in  may carry "cid" (<= 64 bytes): a repeat of (name, cid) in the history is
                        not said again
       replayed history the same message plus "replay":true
       /start_web_socket?username=NAME&since=ID&resume=TOKEN   replay what came after ID; take the
                        name over from this session's old connection (closed with 4001)
   A refused name (missing, empty, too long, invalid UTF-8, control characters, reserved, taken,
   vetoed) completes the upgrade and then closes with 1008 and a reason; a taken name's reason is
   the tutorial's "用户名 NAME 已被占用"; a full room closes with 1013 "room is full". Other
   events and invalid JSON are ignored; binary messages close with 1003; a message over the limit
   closes with 1009.

   HOW IT BEHAVES
   - Each broadcast is encoded once into a reference-counted frame shared by all recipients.
   - Writes are corked: frames are queued during a loop turn and each connection is flushed once
     per turn with one send() (one frame) or sendmsg() (several) over its whole queue.
   - The user list is latest-state: joins and leaves in one turn produce one update-users, a
     client gets a newer list only after its previous one was written, and new lists are spaced
     by their own cost, so a join storm costs a few lists per client instead of one per join.
     The last list a client receives is exact.
   - An idle connection owns no receive or send buffer; name lookup is a hash.
   - Every buffer is bounded (see the limits below). A client that cannot keep up is closed; the
     others never wait for it. SIGPIPE is never raised.

   CONFIGURATION (every limit is described here, and only here)
   At run time: a zero-initialised chat_config. One rule for every field: 0 means the default
   below; negative means none (no limit, no history, the system's size) for the fields marked
   "negative: none" in chat_config, and is an error (chat_server_create returns NULL) elsewhere.
   chat_server_config reads back what is in effect.
   At compile time, #define before the implementation to change a default:
       CHAT_MAX_CLIENTS            1024     WebSocket clients at once; more close with 1013
       CHAT_MAX_CONNECTIONS        0        TCP connections of every kind (0: CHAT_MAX_CLIENTS
                                            * 5/4 + 16); more are reset at once
       CHAT_MAX_PER_ADDRESS        0        connections from one address; more are reset (0:
                                            half of max_clients, from 16 to 32: a browser opens
                                            a few connections per tab)
       CHAT_MAX_JOIN_RATE          60       upgrades per minute from one address; more get 429
       CHAT_MAX_NAME               64       bytes of UTF-8 in a username
       CHAT_MAX_HEADER             8192     bytes of an HTTP request head; more get 431
       CHAT_MAX_MESSAGE            65536    bytes of one WebSocket message; more close with 1009
       CHAT_MAX_BACKLOG            1048576  bytes queued for one client before it is closed as
                                            too slow: each frame counts its bytes (shared frames
                                            in full) plus CHAT__FRAME_COST for its bookkeeping
       CHAT_HANDSHAKE_TIMEOUT_MS   10000    to send a complete HTTP request (also keep-alive
                                            idle; a keep-alive connection lives at most 6 times
                                            this, and for at most 100 requests)
       CHAT_PING_INTERVAL_MS       30000    silence before a ping; as long again for any answer
       CHAT_CLOSE_TIMEOUT_MS       2000     to finish a close handshake, and to drain on shutdown
       CHAT_MAX_RATE               1000     frames and HTTP requests per second from one
                                            connection, counted in whole seconds of the server's
                                            clock; more close it (1008; HTTP 429)
       CHAT_MAX_BYTE_RATE          262144   bytes per second read from one connection; past it
                                            the server stops reading it until the next second
       CHAT_SNDBUF, CHAT_RCVBUF    65536    the kernel's send / receive buffer of each socket
       CHAT_HISTORY                50       recent messages replayed to each newcomer (0: none)
       CHAT_HISTORY_FILE_MAX       67108864 bytes of the history file (history_file): it is
                                            compacted by bytes too, never passes this, and a
                                            bigger one is set aside at start (RAM at start and
                                            compaction is about this much)
       CHAT_JSON_MAX_DEPTH         32       nesting accepted by the JSON decoder
       CHAT_READ_CHUNK             16384    bytes read per recv(); one shared buffer of this size
       CHAT_MQTT_QUEUE             1000     messages waiting for the broker (mqtt_queue); more
       CHAT_MQTT_QUEUE_BYTES       1048576  ... or bytes of them: a message past either is not
                                            sent to other boards (counted, logged)
       CHAT_MQTT_KEEPALIVE         30       seconds of MQTT keep-alive (a ping when idle; the link
                                            is dropped 1.5 times this after an unanswered one)
       CHAT_MQTT_MAX_PACKET        4194304  bytes of one packet from the broker; more drops the link
       CHAT_MQTT_MAX_REMOTE        16384    users of other boards listed (and 256 boards)
   A peer's own output holds back its input: while a response or pong it caused is unsent, the
   server reads nothing more from it, so a client that pipelines or pings without reading makes
   the server hold one answer, not thousands. The worst case of memory is in README.md.
   Other switches:
       CHAT_STATIC                 make every function static (private to the including file)
       CHATDEF                     the linkage of the API functions (default: extern)
       CHAT_MALLOC(n), CHAT_REALLOC(p, n), CHAT_FREE(p)   all three or none (default: libc)
       CHAT_ASSERT(x)              default: assert(x)
       CHAT_NO_LOG                 compile the log calls out
       CHAT_NO_ACCEPT4             use accept() + fcntl() even where accept4() exists
       CHAT_NO_MSG_NOSIGNAL        use SO_NOSIGPIPE, or ignore SIGPIPE, even where MSG_NOSIGNAL exists
       CHAT_NO_EPOLL               wait with poll() on Linux too (chat.h's path on every other system)
       CHAT_NO_MQTT                no MQTT bridge and no chat_mqtt_* codec (20 KB less on x86-64)
       CHAT_TLS_MBEDTLS            https and wss with mbedTLS 2.28 (chat_tls_create below; link
                                   -lmbedtls -lmbedx509 -lmbedcrypto): TLS 1.2, ECDHE + AEAD only,
                                   every connection TLS; ~37 KB per idle client (mbedTLS's record
                                   buffers), a handshake bounded by CHAT_HANDSHAKE_TIMEOUT_MS

   TIERS (each calls only those below it)
       public API   chat_server_*                      the server: connections by state, limits,
       server                                          timers, one turn at a time
       room         members, user lists, history       reached through one outlet (deliver a frame
                                                       to a member; a member left): a member need
                                                       not be a socket; no callback while it walks
                                                       its members -- leaving, on_leave and freeing
                                                       happen at the end of the turn
       frames       bytes for the wire, shared by reference
       platform     every OS call; the default transport (chat_transport: read, write, shutdown,
                    close; handshake and pending for TLS -- TLS or a test double can take its place)
       tls          the mbedTLS adapter (CHAT_TLS_MBEDTLS), a transport over the platform's calls
       codecs       chat_buf/sha1/base64/utf8, chat_json, chat_http, chat_url, chat_ws,
                    chat_mqtt: public, documented below; CHAT_CODECS_ONLY compiles only these

   MORE THAN ONE BOARD (chat_config.mqtt; ./chat -m mqtt://BROKER -n NODE)
   Boards that share an MQTT 3.1.1 broker (mosquitto, or a cluster) are one room. Each publishes
   its messages (QoS 1) on PREFIX/msg/NODE with their id and time, and keeps a retained list of
   its users on PREFIX/users/NODE, cleared by a zero-length retained will when it dies and by
   itself when it stops. Every board says the others' messages once, with its own ids (so
   since/resume work per board), in each sender's order, and lists the union of all boards' users
   (remote ones are room members that are no socket). A name admitted on two boards at once goes
   to the lower node id on every board; the other board closes its user with 1008. The broker
   link is one more descriptor of the same loop: non-blocking, a persistent session, reconnect
   with backoff, subscribe and republish after every reconnect, a bounded queue in order. No TLS
   to the broker. Payloads and guarantees: README.md, "More than one board".

   WHOSE LOOP
   chat_server_run (or chat_server_poll, one turn) uses chat.h's own wait: epoll on Linux (a turn
   costs what became ready, not how many are connected), poll() elsewhere. A program with a loop
   of its own drives the same turn with chat_server_watches (what to watch), chat_server_timeout
   (how long it may wait) and chat_server_process (what became ready). chat_server_adopt serves a
   socket connected elsewhere.

   THREADS
   A server is used from one thread. The exceptions: chat_server_stop() may be called from a
   signal handler or any thread, and chat_server_post() (a broadcast) from any thread; the loop
   takes at most 64 posts a turn, so a thread posting without pause cannot hold it.

   REVISION HISTORY
       0.5.0  (2026-12-07)  one room across boards through an MQTT 3.1.1 broker (chat_config.mqtt,
                            the chat_mqtt_* codec, CHAT_NO_MQTT); TLS through the transport table
                            (handshake wanting read or write within the handshake timeout, pending
                            input) and the mbedTLS adapter, --cert/--key; epoll on Linux
                            (CHAT_NO_EPOLL: poll()); message ids, times, cids, replays, since and
                            resume; the history file (CHAT_HISTORY_FILE_MAX); a turn's output
                            gathered once and shared by every client it matches
       0.3.0  (2026-12-02)  seams: the room in its own struct behind one outlet; death deferred to
                            the end of the turn; client events by table; the codec tier public
                            (JSON walk, HTTP headers by name and responses, client-side frames),
                            CHAT_CODECS_ONLY; every OS call behind the platform door, a transport
                            table, chat_server_adopt; a loop the embedder owns; one rule for
                            limits (a negative limit that cannot be lifted is an error),
                            chat_server_config; scratch buffers given back after big messages
       0.2.0  (2026-12-01)  bounded under attack: a peer's answers hold back its input; caps on
                            connections (every kind, per address), joins per address, frames,
                            requests and bytes per second; slow readers reset; kernel buffers
                            bounded; rate-limited log; on_upgrade, on_joined, reserved names,
                            chat_server_send; the welcome event; 1013 for a full room; RFC 9112
                            absolute-form targets and leading empty lines, case-sensitive methods
       0.1.0  (2026-11-26)  first release: HTTP/1.1 assets, RFC 6455, the tutorial's chat room;
                            origin policy, history for newcomers, /stats, rate limit,
                            chat_server_post from other threads

   LICENSE: MIT or public domain (Unlicense), your choice; see the end of this file.
*/

#if defined(_WIN32) && !defined(__CYGWIN__)
#error "chat.h needs POSIX sockets and poll(): Windows (WSAPoll, closesocket, no MSG_NOSIGNAL) is not supported yet; use WSL or Cygwin"
#endif

/* glibc hides POSIX under -std=c99 unless asked before its first header: defining it here works
   only when chat.h comes before any system header in the implementation file. After one, glibc
   has already decided (__GLIBC__ is set), so say what to do instead of failing on addrinfo. */
#if defined(CHAT_IMPLEMENTATION) && !defined(CHAT_CODECS_ONLY) && defined(__linux__) && !defined(_POSIX_C_SOURCE) && \
    !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#ifdef __GLIBC__
#error "chat.h: with -std=c99 the implementation needs POSIX: include chat.h before any system header in the file that defines CHAT_IMPLEMENTATION, or put #define _POSIX_C_SOURCE 200809L at the top of that file (or -D_POSIX_C_SOURCE=200809L on the command line)"
#define CHAT_IMPLEMENTATION_ONCE /* skip the implementation: this error, not a cascade of others */
#endif
#define _POSIX_C_SOURCE 200809L
#endif

#ifndef CHAT_H_INCLUDED
#define CHAT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifndef CHATDEF
#ifdef CHAT_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define CHATDEF static __attribute__((unused)) /* a program need not call every function */
#else
#define CHATDEF static
#endif
#else
#define CHATDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: every function that can fail returns one of these (negative) or CHAT_OK. */
enum {
    CHAT_OK = 0,
    CHAT_ENOMEM = -1, /* out of memory */
    CHAT_EINVAL = -2, /* invalid argument */
    CHAT_EADDR = -3,  /* the listen address could not be resolved */
    CHAT_ESYS = -4,   /* a system call failed: errno says which */
    CHAT_ESTATE = -5, /* not possible in the server's current state */
    CHAT_EBUSY = -6   /* the server's queue is full: try again later */
};

/* Log levels, for chat_config.log_level and the on_log callback. */
enum { CHAT_LOG_ERROR = 1, CHAT_LOG_WARN = 2, CHAT_LOG_INFO = 3, CHAT_LOG_DEBUG = 4 };

/* ============================================================================================ */
/* THE CODEC TIER                                                                               */
/* The parsers and encoders the server is built from, for other uses: a client, a proxy, a fuzz  */
/* target. Pure functions over the caller's memory: no sockets, no globals, no allocation except */
/* into a chat_buf. Build with CHAT_CODECS_ONLY defined to compile only these (no server, no     */
/* POSIX headers). Each name says its layer: chat_buf/sha1/base64/utf8, chat_json, chat_http and  */
/* chat_url, chat_ws.                                                                           */
/* ============================================================================================ */

/* bytes: a growable buffer (zero-initialise it; chat_buf_free when done) */
typedef struct chat_buf {
    unsigned char *data;
    size_t len, cap;
} chat_buf;
CHATDEF int chat_buf_reserve(chat_buf *b, size_t extra); /* room for `extra` more bytes; CHAT_ENOMEM */
CHATDEF int chat_buf_append(chat_buf *b, const void *p, size_t n);
CHATDEF void chat_buf_free(chat_buf *b);

/* SHA-1 (FIPS 180-4), one-shot; base64 (RFC 4648, padded). encode writes 4*ceil(n/3)
   characters and a NUL and returns the count; decode is strict (canonical, padded) and returns
   the decoded length, or -1 when the input is not base64 or does not fit in cap. */
CHATDEF void chat_sha1(const void *data, size_t len, unsigned char out[20]);
CHATDEF size_t chat_base64_encode(const unsigned char *in, size_t n, char *out);
CHATDEF long chat_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap);

/* UTF-8 validation, incremental: start from CHAT_UTF8_ACCEPT and feed bytes in any chunks; the
   state is CHAT_UTF8_ACCEPT between characters and CHAT_UTF8_REJECT (for good) after an invalid
   byte. Overlongs, surrogates and code points above U+10FFFF are invalid. */
#define CHAT_UTF8_ACCEPT 0u
#define CHAT_UTF8_REJECT 1u
CHATDEF uint32_t chat_utf8_step(uint32_t state, unsigned byte);
CHATDEF uint32_t chat_utf8_feed(uint32_t state, const unsigned char *p, size_t n);
CHATDEF int chat_utf8_valid(const void *p, size_t n);

/* A span of bytes in someone else's buffer. */
typedef struct chat_span {
    const char *p;
    size_t n;
} chat_span;

/* json: a strict RFC 8259 validator (UTF-8, nesting at most CHAT_JSON_MAX_DEPTH) and a walk over
   one object's members, which hands out raw tokens (spans into the document) and allocates
   nothing; strings are decoded only when asked. */
CHATDEF int chat_json_validate(const void *s, size_t n); /* 0 when s is one valid document, else -1 */
typedef struct chat_json_walk {
    const unsigned char *p, *end;
    int state; /* 0 before the first member, 1 inside, 2 done, -1 invalid */
} chat_json_walk;
/* Starts a walk over the object s[0..n). Returns 0, or -1 when s does not start with an object. */
CHATDEF int chat_json_walk_begin(chat_json_walk *w, const void *s, size_t n);
/* The next member: returns 1 with its key (a string token, quotes included) and its value (one
   token: value.p[0] is '"', '{', '[', 't', 'f', 'n', '-' or a digit); 0 after the last member of
   a valid document (nothing but whitespace after the object); -1 when the document is invalid. */
CHATDEF int chat_json_walk_next(chat_json_walk *w, chat_span *key, chat_span *value);
/* The value of the last member called `key` (decoded; JSON.parse's rule for repeated keys).
   Returns 1 when found, 0 when absent or s is valid JSON but not an object, -1 when invalid. */
CHATDEF int chat_json_get(const void *s, size_t n, const char *key, chat_span *value);
/* Decodes a string token (quotes included) and appends the UTF-8 to out; a lone UTF-16
   surrogate escape becomes U+FFFD. Returns 0, or -1 when it is not a valid string token. */
CHATDEF int chat_json_string(chat_span token, chat_buf *out);
/* Is the string token, decoded, exactly the NUL-terminated text? */
CHATDEF int chat_json_string_is(chat_span token, const char *text);
/* Appends s (valid UTF-8) as a string literal, escaped exactly as JavaScript's JSON.stringify. */
CHATDEF int chat_json_put_string(chat_buf *b, const void *s, size_t n);

/* http: an incremental, bounded HTTP/1.x head parser (RFC 9112). Spans point into the caller's
   buffer; headers are looked up by name in the head, so any header can be read. */
typedef struct chat_http_request {
    chat_span head;   /* the whole head, request (or status) line through the last header */
    chat_span method; /* requests */
    chat_span target; /* requests: in origin form ("/path?query"), an absolute-form one reduced */
    int status;       /* responses (chat_http_parse_response): the status code */
    int minor;        /* HTTP/1.minor */
    unsigned flags;   /* CHAT_HTTP_CLOSE ... below */
} chat_http_request;
#define CHAT_HTTP_CLOSE 1u        /* Connection: close */
#define CHAT_HTTP_KEEPALIVE 2u    /* Connection: keep-alive */
#define CHAT_HTTP_CONN_UPGRADE 4u /* Connection: upgrade */
#define CHAT_HTTP_BODY 8u         /* a body follows (Content-Length > 0 or Transfer-Encoding) */
#define CHAT_HTTP_INCOMPLETE 0
#define CHAT_HTTP_BAD (-1)
#define CHAT_HTTP_TOO_LARGE (-2)
/* Looks for a complete head in buf[0..len). `scanned` (start at 0) carries how far an earlier
   call searched, so bytes arriving one at a time are not searched again. Returns the head's
   length, CHAT_HTTP_INCOMPLETE, CHAT_HTTP_TOO_LARGE (no end within max_head bytes) or
   CHAT_HTTP_BAD. Lines may end in CRLF or LF; empty lines before the request line are skipped;
   header names are tokens, values have no control characters, a second Host is bad. */
CHATDEF int chat_http_parse(const char *buf, size_t len, size_t max_head, size_t *scanned,
                            chat_http_request *req);
/* The same for a response head ("HTTP/1.1 101 Switching Protocols"): fills status. */
CHATDEF int chat_http_parse_response(const char *buf, size_t len, size_t max_head, size_t *scanned,
                                     chat_http_request *resp);
/* The first header called `name` (any case), its value trimmed, in *value. Returns how many
   headers have that name (0: none, and *value is empty). */
CHATDEF int chat_http_header(const chat_http_request *req, const char *name, chat_span *value);
/* Does a comma-separated value ("keep-alive, Upgrade") hold `token` (any case)? */
CHATDEF int chat_http_token_list_has(chat_span value, const char *token);
CHATDEF const char *chat_http_reason(int status); /* "Not Found" for 404 */
/* Percent-decoding into out (room for n bytes); returns the length. A '%' without two hex
   digits stays as it is, as in URLSearchParams; plus_is_space for query strings. */
CHATDEF size_t chat_url_decode(const char *s, size_t n, char *out, int plus_is_space);
/* The first `name` parameter of a query string, decoded into out (replacing it, NUL-terminated).
   Returns 1 when found, 0 when absent, CHAT_ENOMEM. */
CHATDEF int chat_url_query_param(const char *query, size_t n, const char *name, chat_buf *out);

/* ws: RFC 6455 frames. The decoder is fed arbitrary chunks and returns one event at a time. */
#define CHAT_WS_OP_CONT 0x0
#define CHAT_WS_OP_TEXT 0x1
#define CHAT_WS_OP_BINARY 0x2
#define CHAT_WS_OP_CLOSE 0x8
#define CHAT_WS_OP_PING 0x9
#define CHAT_WS_OP_PONG 0xA
#define CHAT_WS_MAX_HEADER 14 /* 2 + 8 (64-bit length) + 4 (mask) */
#define CHAT_WS_MAX_CONTROL 125
/* Sec-WebSocket-Accept for a client's key: base64(SHA-1(key + GUID)), 28 characters + NUL. */
CHATDEF void chat_ws_accept_key(const char *key, size_t key_len, char out[29]);
/* Writes a frame header (FIN set) for `len` payload bytes, with the 4 mask bytes after it when
   mask is not NULL (a client's frames). Returns its length: 2, 4 or 10 (+4 masked). */
CHATDEF size_t chat_ws_header(unsigned char *out, int opcode, uint64_t len, const unsigned char *mask);
/* XORs n bytes with the mask, starting `phase` bytes into it. */
CHATDEF void chat_ws_unmask(unsigned char *p, size_t n, const unsigned char mask[4], unsigned phase);
/* Close codes allowed on the wire (RFC 6455 7.4, IANA registry). */
CHATDEF int chat_ws_close_code_valid(int code);
/* The decoder's state between chunks; zero-initialise it. A server decodes a client's frames,
   which must be masked; set `unmasked` to 1 to decode a server's frames instead (a client). */
typedef struct chat_ws_decoder {
    uint64_t remaining;        /* payload bytes still due in the current data frame */
    uint64_t message_len;      /* payload bytes of the current message so far */
    uint32_t utf8;             /* UTF-8 state of the current text message */
    unsigned char mask[4];     /* of the current data frame */
    unsigned char phase;       /* how far into the mask the next payload byte is */
    unsigned char message_op;  /* CHAT_WS_OP_TEXT/BINARY while a message is open, else 0 */
    unsigned char in_frame;    /* 1 while inside a data frame's payload */
    unsigned char fin;         /* FIN bit of the current data frame */
    unsigned char unmasked;    /* 1: frames must not be masked (decoding a server's frames) */
} chat_ws_decoder;
enum {
    CHAT_WS_NEED_MORE, /* nothing more to do with these bytes: keep the unconsumed ones */
    CHAT_WS_NONE,      /* consumed a data frame header; call again */
    CHAT_WS_DATA,      /* data (unmasked in place) of the open message; `last` ends it */
    CHAT_WS_PING,
    CHAT_WS_PONG,
    CHAT_WS_CLOSE,     /* code (1005 when none) and reason (UTF-8 checked) */
    CHAT_WS_ERROR      /* the connection must be failed with `code` */
};
typedef struct chat_ws_event {
    int type;   /* CHAT_WS_* above */
    int opcode; /* DATA: CHAT_WS_OP_TEXT or CHAT_WS_OP_BINARY */
    int last;   /* DATA: this chunk completes the message */
    int code;   /* CLOSE: the peer's status code; ERROR: the code to close with */
    unsigned char *data;
    size_t len;
} chat_ws_event;
/* Feeds bytes of a stream. Returns how many were consumed and what they were in *ev; call again
   with the rest until ev->type is CHAT_WS_NEED_MORE (keep the unconsumed bytes for next time) or
   CHAT_WS_ERROR. Data is streamed as it arrives (invalid UTF-8 is caught at its first byte);
   control frames are returned whole. A message over max_message fails (1009) at its header. */
CHATDEF size_t chat_ws_decode(chat_ws_decoder *d, unsigned char *p, size_t n, uint64_t max_message,
                              chat_ws_event *ev);

#ifndef CHAT_NO_MQTT
/* mqtt: MQTT 3.1.1 control packets (OASIS standard, 2014), both sides. One encoder appends a
   whole packet to a chat_buf; one parser finds a whole packet at the front of a buffer that is
   filled in any chunks, and refuses one over a size bound from its fixed header alone. Strings
   are checked as the standard says: valid UTF-8 without U+0000, at most 65,535 bytes. */
enum {
    CHAT_MQTT_CONNECT = 1, CHAT_MQTT_CONNACK, CHAT_MQTT_PUBLISH, CHAT_MQTT_PUBACK, CHAT_MQTT_PUBREC,
    CHAT_MQTT_PUBREL, CHAT_MQTT_PUBCOMP, CHAT_MQTT_SUBSCRIBE, CHAT_MQTT_SUBACK, CHAT_MQTT_UNSUBSCRIBE,
    CHAT_MQTT_UNSUBACK, CHAT_MQTT_PINGREQ, CHAT_MQTT_PINGRESP, CHAT_MQTT_DISCONNECT
};
#define CHAT_MQTT_MAX_LENGTH 268435455u /* the largest remaining length (four 7-bit bytes) */
#define CHAT_MQTT_INCOMPLETE 0
#define CHAT_MQTT_BAD (-1)
#define CHAT_MQTT_TOO_LARGE (-2)
typedef struct chat_mqtt_connect {
    chat_span client_id;
    chat_span username, password;      /* .p NULL: none (a password needs a username) */
    chat_span will_topic, will_message; /* will_topic.p NULL: no will */
    int will_qos, will_retain;
    int clean_session;
    unsigned keep_alive; /* seconds; 0: none */
} chat_mqtt_connect;
typedef struct chat_mqtt_packet {
    int type;             /* CHAT_MQTT_* */
    int dup, qos, retain; /* PUBLISH */
    unsigned id;          /* the packet identifier (1-65535) of PUBLISH with qos > 0, PUBACK, PUBREC,
                             PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK */
    chat_span topic;      /* PUBLISH: the topic name */
    chat_span payload;    /* PUBLISH: the message; SUBSCRIBE: (filter, requested QoS) pairs;
                             UNSUBSCRIBE: filters; SUBACK: one return code per filter */
    int session_present, return_code; /* CONNACK */
    chat_mqtt_connect connect;        /* CONNECT */
} chat_mqtt_packet;
/* Appends p as one packet, from its type and the fields that type has (the rest are ignored).
   Returns CHAT_OK, CHAT_EINVAL (a field the standard does not allow: a wildcard in a topic
   name, a packet id of 0, QoS 3, ...) or CHAT_ENOMEM; on an error b is as it was. */
CHATDEF int chat_mqtt_put(chat_buf *b, const chat_mqtt_packet *p);
/* Appends a length-prefixed string (for SUBSCRIBE and UNSUBSCRIBE payloads); CHAT_EINVAL when it
   is over 65,535 bytes. */
CHATDEF int chat_mqtt_put_string(chat_buf *b, const void *s, size_t n);
/* The remaining length n (at most CHAT_MQTT_MAX_LENGTH) in its variable-length form: 1 to 4
   bytes, 7 bits each, least significant first. Returns how many bytes it wrote. */
CHATDEF size_t chat_mqtt_length_put(unsigned char out[4], size_t n);
/* Looks for one packet at the front of buf[0..len). Returns its whole length with *p filled
   (spans point into buf), CHAT_MQTT_INCOMPLETE (more bytes needed), CHAT_MQTT_TOO_LARGE (its
   remaining length is over max_length: known from the first 5 bytes) or CHAT_MQTT_BAD. */
CHATDEF long chat_mqtt_parse(const void *buf, size_t len, size_t max_length, chat_mqtt_packet *p);
/* Takes one length-prefixed string off the front of *rest (a SUBSCRIBE payload): 0, or -1 when
   *rest does not start with one. */
CHATDEF int chat_mqtt_take_string(chat_span *rest, chat_span *out);
/* What a CONNACK return code means ("bad user name or password" for 4). */
CHATDEF const char *chat_mqtt_connack_reason(int code);
#endif

#ifndef CHAT_CODECS_ONLY

/* ============================================================================================ */
/* THE SERVER                                                                                   */
/* ============================================================================================ */

typedef struct chat_server chat_server;

typedef struct chat_request chat_request; /* an upgrade request, seen by on_upgrade */

/* A connection's byte transport. The default is the socket itself (recv, sendmsg, shutdown,
   close); a program may put another in chat_config.transport -- TLS over the socket, or a test
   double that injects failures. Each function gets `user` and the connection's descriptor and
   behaves like the call it replaces: -1 with errno on failure (EAGAIN or EWOULDBLOCK: not now,
   the server waits for the descriptor; EINTR: at once again; anything else: the connection is
   lost). A NULL function means the default one.
   A TLS library plugs in with two more (NULL: none). The descriptor names the connection from
   open to close (keep per-connection state by it); read and write carry plaintext.
   - handshake: called instead of read and write until it returns 0 (done): first when the
     socket is readable, then whenever the socket is ready for what it last asked for --
     CHAT_WATCH_READ or CHAT_WATCH_WRITE (the library wants to read or to write first). -1:
     failed, the connection is reset. It must finish within handshake_timeout_ms, like a
     request head: a stalled or silent peer is reset by that timer.
   - pending: bytes the library holds, read from the socket already, that read would return
     now (the rest of a decrypted record): the server reads them without waiting for the
     socket, so nothing stalls in the library and nothing spins.
   write takes bytes from the front of the vector; when it cannot take them all, what it took
   is counted and the rest comes again, unchanged, when the socket is writable (a library that
   encrypted a record it could not send yet must not count it: it is offered again). read and
   write must need only their own direction after the handshake (no renegotiation); a library
   that needs the other one fails the call (errno EPROTO). shutdown is where a close_notify goes
   out, before the FIN. The mbedTLS adapter below (CHAT_TLS_MBEDTLS) is one such transport. */
typedef struct chat_iovec {
    const void *base;
    size_t len;
} chat_iovec;
typedef struct chat_transport {
    int (*open)(void *user, int fd);                               /* a connection begins; nonzero refuses it */
    long (*read)(void *user, int fd, void *buf, size_t len);       /* bytes read, 0 at the end of the stream */
    long (*write)(void *user, int fd, const chat_iovec *iov, int count); /* bytes taken, from the front */
    int (*shutdown)(void *user, int fd);                           /* no more output (TCP: FIN) */
    void (*close)(void *user, int fd, int reset);                  /* closes fd; reset: drop what is unsent (RST) */
    void *user;
    /* 0.5.0, after user so that tables written before still fill the same fields */
    int (*handshake)(void *user, int fd);      /* 0: done; CHAT_WATCH_READ/WRITE: wait for that; -1 */
    size_t (*pending)(void *user, int fd);     /* bytes read would return without the socket */
} chat_transport;

typedef struct chat_config {
    /* Limits, each described in CONFIGURATION above (CHAT_MAX_CLIENTS and friends): 0 means the
       default; negative means none where marked, else is an error. */
    int max_clients;          /* CHAT_MAX_CLIENTS */
    int max_connections;      /* CHAT_MAX_CONNECTIONS */
    int max_per_address;      /* CHAT_MAX_PER_ADDRESS; negative: none */
    int max_join_rate;        /* CHAT_MAX_JOIN_RATE; negative: none */
    int max_name;             /* CHAT_MAX_NAME */
    size_t max_header;        /* CHAT_MAX_HEADER */
    size_t max_message;       /* CHAT_MAX_MESSAGE */
    size_t max_backlog;       /* CHAT_MAX_BACKLOG */
    int handshake_timeout_ms; /* CHAT_HANDSHAKE_TIMEOUT_MS */
    int ping_interval_ms;     /* CHAT_PING_INTERVAL_MS */
    int close_timeout_ms;     /* CHAT_CLOSE_TIMEOUT_MS */
    int max_rate;             /* CHAT_MAX_RATE; negative: none */
    int max_byte_rate;        /* CHAT_MAX_BYTE_RATE; negative: none */
    int sndbuf, rcvbuf;       /* CHAT_SNDBUF, CHAT_RCVBUF; negative: the system's */
    int log_level;            /* CHAT_LOG_*; 0: CHAT_LOG_INFO */
    int history;              /* messages replayed to a newcomer; 0: CHAT_HISTORY; negative: none */

    /* Deployment. Strings are copied by chat_server_create. */
    const char *const *origins; /* Origin values allowed to open a WebSocket ("https://x.org"),
                                   NULL-terminated; "*" allows any. NULL: same-origin only (the
                                   Origin's host is the Host header) and clients without Origin */
    const char *stats_path;     /* serve counters as JSON here (e.g. "/stats"); NULL: off */
    const char *trusted_proxy;  /* a proxy's numeric address (e.g. "127.0.0.1") whose
                                   X-Forwarded-For is believed: for the per-address limits, the
                                   address on_upgrade sees, and log lines */
    const char *const *reserved_names; /* NULL-terminated names no client may take (compared
                                   ASCII case-insensitively), e.g. {"server", NULL}: they close
                                   with 1008 "username is reserved". The program may still speak
                                   as them with chat_server_broadcast/chat_server_send */
    const chat_transport *transport; /* how connections move bytes (copied); NULL: the sockets */
    /* A file that keeps the history across restarts and crashes (NULL: none): every message is
       appended before anyone is sent it, in one write per loop turn; at start the newest come
       back and ids go on from the last. history_sync 1: fdatasync after each write (survives a
       power cut; costs a flash write per turn); 0: none (survives a crash of the program, which
       leaves the data with the kernel). A symlink is followed once at start; the file stays
       within CHAT_HISTORY_FILE_MAX; damage keeps the records before it and sets the file aside
       as FILE.bad; a turn that cannot be appended (disk full, a failed compaction) cuts the
       file back to that turn alone, so no id is given twice after a restart. See "The history
       file" in README.md. */
    const char *history_file;
    int history_sync;
    /* The MQTT bridge: one room across boards through a broker (README.md, "More than one
       board"). mqtt is the broker, "mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX]" (USER and
       PASSWORD percent-encoded; PORT 1883; PREFIX, the room's topics, "chat"); NULL: this board
       alone. No TLS to the broker: one on the board or the LAN, or a local TLS proxy. mqtt_node
       names this board among the others: 1 to 64 letters, digits, '.', '_' or '-'; NULL: the
       host name and the listening port. mqtt_queue: CHAT_MQTT_QUEUE. A build with CHAT_NO_MQTT
       has no bridge, and chat_server_create refuses a config that asks for one. */
    const char *mqtt;
    const char *mqtt_node;
    int mqtt_queue;

    /* Callbacks, all optional; `user` is passed back to each. Names and texts are valid UTF-8,
       NUL-terminated, and also given with their length (a message may contain U+0000). */
    void *user;
    /* An upgrade request, before anything is answered: look at it with the chat_request_*
       functions (headers such as Cookie or Authorization, the address, the username, which it
       may also set). Return 0 to go on, or 401, 403 or 429 to refuse with that HTTP status (any
       other value: 403). */
    int (*on_upgrade)(void *user, chat_server *srv, chat_request *req);
    /* A client asks to join with a name that is valid and free; return nonzero to refuse it
       (it is closed with 1008 "username refused"). Nothing is sent to anyone yet. */
    int (*on_join)(void *user, chat_server *srv, const char *name, size_t name_len);
    /* A client has joined: it is in the room and has been sent the welcome and the history;
       what this sends (chat_server_send, chat_server_broadcast) comes after those. */
    void (*on_joined)(void *user, chat_server *srv, const char *name, size_t name_len);
    /* A joined client left, for whatever reason. */
    void (*on_leave)(void *user, chat_server *srv, const char *name, size_t name_len);
    /* A client sent a message; return nonzero to drop it instead of broadcasting it. */
    int (*on_message)(void *user, chat_server *srv, const char *name, size_t name_len,
                      const char *text, size_t text_len);
    /* One log line, without a newline. Without it the server logs nothing. Lines are rate
       limited (a burst of 50, then 10 a second; a later line says how many were dropped). */
    void (*on_log)(void *user, int level, const char *line);
} chat_config;

/* Creates a server (NULL config: all defaults). Returns NULL when out of memory or when the
   self-wakeup pipe cannot be created. */
CHATDEF chat_server *chat_server_create(const chat_config *config);

/* Listens on address:port. address NULL or "" means every interface, IPv6 dual-stack when the
   system has IPv6, else IPv4. port 0 picks a free port (see chat_server_port). */
CHATDEF int chat_server_listen(chat_server *srv, const char *address, int port);

/* Serves an already connected stream socket (accepted elsewhere, one end of a socketpair(), a
   systemd socket) as if the server had accepted it: the server owns fd from now on, also when
   this fails (then fd is closed). Returns CHAT_OK, CHAT_EINVAL, CHAT_ESTATE (stopping),
   CHAT_ENOMEM, CHAT_ESYS, or CHAT_EBUSY when a connection limit refused it. */
CHATDEF int chat_server_adopt(chat_server *srv, int fd);

/* The port the server listens on, or 0 before chat_server_listen succeeded. */
CHATDEF int chat_server_port(const chat_server *srv);

/* Serves `len` bytes at `path` (e.g. "/" or "/public/app.js") with a Content-Type. The path and
   type are copied; the body is NOT: it must stay valid until chat_server_free. */
CHATDEF int chat_server_add_asset(chat_server *srv, const char *path, const char *content_type,
                                  const void *body, size_t len);

/* Runs one turn of the loop, waiting at most timeout_ms for something to happen (-1: until
   something does). Returns 1 while the server runs, 0 once it has stopped (after
   chat_server_stop and the graceful close of every client), or a negative CHAT_E* code. */
CHATDEF int chat_server_poll(chat_server *srv, int timeout_ms);

/* A loop the program owns (its own poll, epoll, select, libuv, ...) drives the server with
   three calls instead of chat_server_poll: before each wait, chat_server_watches (what to watch:
   the set changes every turn) and chat_server_timeout (how long it may wait); after it,
   chat_server_process with what became ready. chat_server_poll is this same turn over chat.h's
   own epoll set (poll() where there is no epoll). */
#define CHAT_WATCH_READ 1
#define CHAT_WATCH_WRITE 2
#define CHAT_WATCH_ERROR 4 /* in what happened: an error or a hang-up */
typedef struct chat_watch {
    int fd;
    int events; /* CHAT_WATCH_*: what to watch for (0: errors and hang-ups only), or what happened */
} chat_watch;
/* Fills out[0..cap) and returns how many descriptors there are to watch; when that is more than
   cap, call again with room for all. */
CHATDEF int chat_server_watches(chat_server *srv, chat_watch *out, int cap);
/* Milliseconds the loop may wait before calling chat_server_process even if nothing is ready:
   0 when there is work at once, -1 when nothing is due. */
CHATDEF int chat_server_timeout(chat_server *srv);
/* Handles the n ready descriptors (fd and what happened; in any order, unknown ones ignored),
   then one turn of timers and output. Returns like chat_server_poll. */
CHATDEF int chat_server_process(chat_server *srv, const chat_watch *ready, int n);

/* Polls until the server has stopped. Returns CHAT_OK or a negative CHAT_E* code. */
CHATDEF int chat_server_run(chat_server *srv);

/* Asks the server to stop: every client is closed with 1001, queued output is flushed for at
   most close_timeout_ms, then chat_server_poll returns 0. Async-signal-safe. */
CHATDEF void chat_server_stop(chat_server *srv);

/* Sends {"event":"send-message","username":USERNAME,"message":TEXT} to every joined client, as if
   USERNAME had said TEXT. Both must be valid UTF-8. Returns the number of recipients, or a
   negative CHAT_E* code. The frame goes out at the end of the current (or next) loop turn. */
CHATDEF int chat_server_broadcast(chat_server *srv, const char *username, const char *text,
                                  size_t text_len);

/* Sends {"event":"send-message","username":USERNAME,"message":TEXT} to the one joined user
   named `to`. Returns 1 when queued, 0 when nobody of that name is joined, or a CHAT_E* code. */
CHATDEF int chat_server_send(chat_server *srv, const char *to, const char *username, const char *text,
                             size_t text_len);

/* What on_upgrade can read of the request; valid only during that call. Strings are
   NUL-terminated copies; *len (when not NULL) gets their length. */
/* The first header called `name` (any case), trimmed, or NULL. */
CHATDEF const char *chat_request_header(const chat_request *req, const char *name, size_t *len);
/* The request target as sent: path and query ("/start_web_socket?username=al"). */
CHATDEF const char *chat_request_target(const chat_request *req, size_t *len);
/* The client's numeric address ("192.0.2.7", "2001:db8::1"); behind trusted_proxy, the one the
   proxy forwarded. */
CHATDEF const char *chat_request_address(const chat_request *req);
/* The username the client asked for (percent-decoded), or NULL when it gave none. */
CHATDEF const char *chat_request_username(const chat_request *req, size_t *len);
/* Replaces the username (e.g. with the one a session cookie proves); the usual checks apply.
   Returns CHAT_OK, CHAT_EINVAL or CHAT_ENOMEM. */
CHATDEF int chat_request_set_username(chat_request *req, const char *name, size_t len);

/* The configuration in effect: every default filled in (see the one rule in chat_config). Its
   strings and transport are the server's own copies, valid until chat_server_free. */
CHATDEF void chat_server_config(const chat_server *srv, chat_config *out);

/* The number of joined users. */
CHATDEF int chat_server_user_count(const chat_server *srv);

/* Counters since chat_server_create, as served at stats_path. */
typedef struct chat_stats {
    int clients;                      /* joined users now (of this board) */
    int connections;                  /* open TCP connections now (HTTP and WebSocket) */
    unsigned long long accepted;      /* TCP connections accepted */
    unsigned long long messages;      /* chat messages broadcast */
    unsigned long long bytes_in, bytes_out;
    unsigned long long refused_name;     /* 1008: missing, empty, too long, invalid or taken name, or vetoed */
    unsigned long long refused_full;     /* 1013: max_clients reached; or max_connections */
    unsigned long long refused_address;  /* max_per_address or max_join_rate reached */
    unsigned long long refused_origin;   /* 403: Origin not allowed */
    unsigned long long refused_http;     /* other 4xx answers */
    unsigned long long closed_protocol;  /* 1002, 1003, 1007, 1009 */
    unsigned long long closed_rate;      /* 1008: over max_rate */
    unsigned long long closed_slow;      /* dropped: over max_backlog */
    unsigned long long closed_idle;      /* 1001 after an unanswered ping, or a stalled handshake */
    unsigned long long log_dropped;      /* log lines left out by the rate limit */
    unsigned long long resumed;          /* joins that took over their name from a live connection */
    unsigned long long repeats;          /* messages dropped as a repeat of one in the history */
    unsigned long long history_errors;   /* history file writes and compactions that failed */
    long long uptime_ms;
    /* the MQTT bridge (all 0 without one) */
    int mqtt_connected;                  /* 1 while the broker link is up */
    int mqtt_remote_users;               /* users of other boards in the room now */
    int mqtt_queued;                     /* messages waiting for the broker now */
    unsigned long long mqtt_connects;    /* times the link came up */
    unsigned long long mqtt_published;   /* messages the broker took */
    unsigned long long mqtt_received;    /* messages from other boards said here */
    unsigned long long mqtt_repeats;     /* ... dropped as repeats (QoS 1 may deliver twice) */
    unsigned long long mqtt_dropped;     /* messages not sent to other boards: the queue was full */
    unsigned long long mqtt_conflicts;   /* local users closed (1008): a board with a lower node
                                            id admitted the same name at the same time */
} chat_stats;
CHATDEF void chat_server_stats(const chat_server *srv, chat_stats *out);

/* chat_server_broadcast for other threads: safe to call from any thread while the loop runs
   (the message travels to the loop through its wake-up pipe). Returns CHAT_OK, CHAT_EINVAL,
   CHAT_ENOMEM, or CHAT_EBUSY when too many posts are waiting. CHAT_MALLOC must be thread-safe
   (libc malloc is). chat_server_stop may likewise be called from any thread; it is done with srv
   before the loop can see the request, so the loop's thread may free the server once
   chat_server_run returns. Posting threads must have finished before chat_server_free. */
CHATDEF int chat_server_post(chat_server *srv, const char *username, const char *text, size_t text_len);

/* Closes every socket at once (no close handshake) and frees everything. NULL is fine. */
CHATDEF void chat_server_free(chat_server *srv);

/* A short English description of a CHAT_E* code. */
CHATDEF const char *chat_strerror(int err);

#ifdef CHAT_TLS_MBEDTLS
/* https:// and wss:// with mbedTLS 2.28 (build with -DCHAT_TLS_MBEDTLS, link -lmbedtls
   -lmbedx509 -lmbedcrypto): a chat_transport for chat_config.transport. TLS 1.2 only (2.28 has
   no TLS 1.3 server), ECDHE with AES-GCM or ChaCha20-Poly1305, session tickets. Every
   connection of that server speaks TLS: a plain http:// client fails the handshake and is
   reset. Loads a certificate chain and its private key (PEM files). Returns NULL when one cannot be
   read or parsed or they do not match, with one line saying why in err (cap bytes). */
typedef struct chat_tls chat_tls;
CHATDEF chat_tls *chat_tls_create(const char *cert_file, const char *key_file, char *err, size_t cap);
/* The transport to put in chat_config.transport; tls must outlive the server. */
CHATDEF const chat_transport *chat_tls_transport(chat_tls *tls);
CHATDEF void chat_tls_free(chat_tls *tls); /* after chat_server_free; NULL is fine */
#endif

#endif /* CHAT_CODECS_ONLY */

#ifdef __cplusplus
}
#endif

#endif /* CHAT_H_INCLUDED */

/* ============================================================================================ */
/*                                      IMPLEMENTATION                                           */
/* ============================================================================================ */

#if defined(CHAT_IMPLEMENTATION) && !defined(CHAT_IMPLEMENTATION_ONCE)
#define CHAT_IMPLEMENTATION_ONCE

#ifndef CHAT_MAX_CLIENTS
#define CHAT_MAX_CLIENTS 1024
#endif
#ifndef CHAT_MAX_NAME
#define CHAT_MAX_NAME 64
#endif
#ifndef CHAT_MAX_HEADER
#define CHAT_MAX_HEADER 8192
#endif
#ifndef CHAT_MAX_MESSAGE
#define CHAT_MAX_MESSAGE 65536
#endif
#ifndef CHAT_MAX_BACKLOG
#define CHAT_MAX_BACKLOG (1024 * 1024)
#endif
#ifndef CHAT_HANDSHAKE_TIMEOUT_MS
#define CHAT_HANDSHAKE_TIMEOUT_MS 10000
#endif
#ifndef CHAT_PING_INTERVAL_MS
#define CHAT_PING_INTERVAL_MS 30000
#endif
#ifndef CHAT_CLOSE_TIMEOUT_MS
#define CHAT_CLOSE_TIMEOUT_MS 2000
#endif
#ifndef CHAT_MAX_RATE
#define CHAT_MAX_RATE 1000
#endif
#ifndef CHAT_HISTORY
#define CHAT_HISTORY 50
#endif
#ifndef CHAT_HISTORY_FILE_MAX
#define CHAT_HISTORY_FILE_MAX (64u << 20)
#endif
#ifndef CHAT_MAX_CONNECTIONS
#define CHAT_MAX_CONNECTIONS 0
#endif
#ifndef CHAT_MAX_PER_ADDRESS
#define CHAT_MAX_PER_ADDRESS 0
#endif
#ifndef CHAT_MAX_JOIN_RATE
#define CHAT_MAX_JOIN_RATE 60
#endif
#ifndef CHAT_MAX_BYTE_RATE
#define CHAT_MAX_BYTE_RATE 262144
#endif
#ifndef CHAT_SNDBUF
#define CHAT_SNDBUF 65536
#endif
#ifndef CHAT_RCVBUF
#define CHAT_RCVBUF 65536
#endif
#ifndef CHAT_JSON_MAX_DEPTH
#define CHAT_JSON_MAX_DEPTH 32
#endif
#ifndef CHAT_READ_CHUNK
#define CHAT_READ_CHUNK 16384
#endif
#ifndef CHAT_MQTT_QUEUE
#define CHAT_MQTT_QUEUE 1000
#endif
#ifndef CHAT_MQTT_QUEUE_BYTES
#define CHAT_MQTT_QUEUE_BYTES (1024 * 1024)
#endif
#ifndef CHAT_MQTT_KEEPALIVE
#define CHAT_MQTT_KEEPALIVE 30
#endif
#ifndef CHAT_MQTT_MAX_PACKET
#define CHAT_MQTT_MAX_PACKET (4 * 1024 * 1024)
#endif
#ifndef CHAT_MQTT_MAX_REMOTE
#define CHAT_MQTT_MAX_REMOTE 16384
#endif

#if defined(CHAT_MALLOC) && defined(CHAT_REALLOC) && defined(CHAT_FREE)
/* the user's allocator */
#elif !defined(CHAT_MALLOC) && !defined(CHAT_REALLOC) && !defined(CHAT_FREE)
#include <stdlib.h>
#define CHAT_MALLOC(n) malloc(n)
#define CHAT_REALLOC(p, n) realloc(p, n)
#define CHAT_FREE(p) free(p)
#else
#error "chat.h: define all of CHAT_MALLOC, CHAT_REALLOC and CHAT_FREE, or none of them"
#endif

#ifndef CHAT_ASSERT
#include <assert.h>
#define CHAT_ASSERT(x) assert(x)
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifndef CHAT_CODECS_ONLY
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
/* Linux: readiness from epoll (see "readiness" in the platform section); CHAT_NO_EPOLL: poll(). */
#if defined(__linux__) && !defined(CHAT_NO_EPOLL)
#define CHAT__EPOLL
#include <sys/epoll.h>
#endif
#endif

/* Internal functions are static; the unused-attribute keeps builds that use only part of the
   library (a fuzz target, the example) free of warnings. */
#if defined(__GNUC__) || defined(__clang__)
#define CHAT__FN static __attribute__((unused))
#else
#define CHAT__FN static
#endif

#define CHAT__MIN(a, b) ((a) < (b) ? (a) : (b))

/* ============================================================================================ */
/* bytes: growable buffer, SHA-1, base64, UTF-8                                                 */
/* ============================================================================================ */


CHATDEF int chat_buf_reserve(chat_buf *b, size_t extra) {
    size_t want, cap;
    unsigned char *p;
    if (extra > (size_t)-1 - b->len) return CHAT_ENOMEM;
    want = b->len + extra;
    if (want <= b->cap) return CHAT_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < want) cap = cap > (size_t)-1 / 2 ? want : cap * 2;
    p = (unsigned char *)CHAT_REALLOC(b->data, cap);
    if (!p) return CHAT_ENOMEM;
    b->data = p;
    b->cap = cap;
    return CHAT_OK;
}

CHATDEF int chat_buf_append(chat_buf *b, const void *p, size_t n) {
    if (chat_buf_reserve(b, n) != CHAT_OK) return CHAT_ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return CHAT_OK;
}

CHATDEF void chat_buf_free(chat_buf *b) {
    CHAT_FREE(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* --- SHA-1 (FIPS 180-4); only the handshake needs it, so one-shot is enough --- */

static uint32_t chat__rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void chat__sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f, k, t;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (; i < 80; i++) w[i] = chat__rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (i = 0; i < 80; i++) {
        if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
        else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
        else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
        else f = b ^ c ^ d, k = 0xCA62C1D6u;
        t = chat__rol32(a, 5) + f + e + k + w[i];
        e = d, d = c, c = chat__rol32(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

CHATDEF void chat_sha1(const void *data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    const unsigned char *p = (const unsigned char *)data;
    unsigned char tail[128];
    uint64_t bits = (uint64_t)len * 8;
    size_t rest, padded, i;
    for (; len >= 64; p += 64, len -= 64) chat__sha1_block(h, p);
    rest = len;
    memset(tail, 0, sizeof tail);
    if (rest) memcpy(tail, p, rest);
    tail[rest] = 0x80;
    padded = rest < 56 ? 64 : 128;
    for (i = 0; i < 8; i++) tail[padded - 1 - i] = (unsigned char)(bits >> (8 * i));
    chat__sha1_block(h, tail);
    if (padded == 128) chat__sha1_block(h, tail + 64);
    for (i = 0; i < 20; i++) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* --- base64 (RFC 4648, standard alphabet, padded) --- */

static const char chat__b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes 4*ceil(n/3) characters and a NUL; returns the number of characters. */
CHATDEF size_t chat_base64_encode(const unsigned char *in, size_t n, char *out) {
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = chat__b64[v >> 18], out[o++] = chat__b64[(v >> 12) & 63];
        out[o++] = chat__b64[(v >> 6) & 63], out[o++] = chat__b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = chat__b64[v >> 18], out[o++] = chat__b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? chat__b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int chat__b64_value(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict decoding: padded, canonical (unused bits zero). Returns the decoded length, or -1 when
   the input is not base64 or the output would not fit in `cap`. */
CHATDEF long chat_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
    size_t i, o = 0;
    if (n % 4) return -1;
    for (i = 0; i < n; i += 4) {
        int a = chat__b64_value((unsigned char)in[i]), b = chat__b64_value((unsigned char)in[i + 1]);
        int last = i + 4 == n, pad2 = last && in[i + 2] == '=' && in[i + 3] == '=';
        int pad1 = last && !pad2 && in[i + 3] == '=';
        int c = pad2 ? 0 : chat__b64_value((unsigned char)in[i + 2]);
        int d = pad1 || pad2 ? 0 : chat__b64_value((unsigned char)in[i + 3]);
        size_t k = pad2 ? 1 : pad1 ? 2 : 3;
        uint32_t v;
        if (a < 0 || b < 0 || c < 0 || d < 0 || o + k > cap) return -1;
        v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        if ((pad2 && (v & 0xFFFF)) || (pad1 && (v & 0xFF))) return -1;
        out[o++] = (unsigned char)(v >> 16);
        if (k > 1) out[o++] = (unsigned char)(v >> 8);
        if (k > 2) out[o++] = (unsigned char)v;
    }
    return (long)o;
}

/* --- UTF-8 validation, incremental (a message may arrive split anywhere) ---
   The state is 0 (between characters), 1 (rejected), or the byte range the next continuation
   byte must fall in plus how many continuation bytes are still due. Overlongs, surrogates and
   code points above U+10FFFF are excluded by the ranges (Unicode table 3-7). */

#define CHAT__UTF8_NEED(n, lo, hi) ((uint32_t)(lo) << 16 | (uint32_t)(hi) << 8 | (uint32_t)(n))

CHATDEF uint32_t chat_utf8_step(uint32_t st, unsigned c) {
    if (st == CHAT_UTF8_ACCEPT) {
        if (c < 0x80) return CHAT_UTF8_ACCEPT;
        if (c < 0xC2) return CHAT_UTF8_REJECT;
        if (c < 0xE0) return CHAT__UTF8_NEED(1, 0x80, 0xBF);
        if (c == 0xE0) return CHAT__UTF8_NEED(2, 0xA0, 0xBF);
        if (c == 0xED) return CHAT__UTF8_NEED(2, 0x80, 0x9F);
        if (c < 0xF0) return CHAT__UTF8_NEED(2, 0x80, 0xBF);
        if (c == 0xF0) return CHAT__UTF8_NEED(3, 0x90, 0xBF);
        if (c < 0xF4) return CHAT__UTF8_NEED(3, 0x80, 0xBF);
        if (c == 0xF4) return CHAT__UTF8_NEED(3, 0x80, 0x8F);
        return CHAT_UTF8_REJECT;
    }
    if (st == CHAT_UTF8_REJECT || c < ((st >> 16) & 0xFF) || c > ((st >> 8) & 0xFF))
        return CHAT_UTF8_REJECT;
    return (st & 0xFF) == 1 ? CHAT_UTF8_ACCEPT : CHAT__UTF8_NEED((st & 0xFF) - 1, 0x80, 0xBF);
}

/* Feeds n bytes; stops at the first invalid byte and returns CHAT_UTF8_REJECT. */
CHATDEF uint32_t chat_utf8_feed(uint32_t st, const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (st == CHAT_UTF8_ACCEPT) { /* ASCII runs 8 bytes at a time */
            uint64_t w;
            while (i + 8 <= n) {
                memcpy(&w, p + i, 8);
                if (w & UINT64_C(0x8080808080808080)) break;
                i += 8;
            }
            while (i < n && p[i] < 0x80) i++;
            if (i == n) break;
        }
        st = chat_utf8_step(st, p[i++]);
        if (st == CHAT_UTF8_REJECT) break;
    }
    return st;
}

CHATDEF int chat_utf8_valid(const void *p, size_t n) {
    return chat_utf8_feed(CHAT_UTF8_ACCEPT, (const unsigned char *)p, n) == CHAT_UTF8_ACCEPT;
}

/* ============================================================================================ */
/* json: string encoder, strict decoder                                                         */
/* ============================================================================================ */

/* Appends s as a JSON string literal, escaped exactly as JavaScript's JSON.stringify does, so a
   browser sees the same bytes as from the tutorial. s must be valid UTF-8. */
CHATDEF int chat_json_put_string(chat_buf *b, const void *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    unsigned char *o;
    size_t i, run = 0;
    if (n > ((size_t)-1 - 2) / 6 || chat_buf_reserve(b, n * 6 + 2) != CHAT_OK) return CHAT_ENOMEM;
    o = b->data + b->len;
    *o++ = '"';
    for (i = 0; i < n; i++) {
        unsigned c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        memcpy(o, p + i - run, run), o += run, run = 0;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default: *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = hex[c >> 4], *o++ = hex[c & 15];
        }
    }
    memcpy(o, p + n - run, run), o += run;
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return CHAT_OK;
}

/* The decoder is a recursive-descent validator over a complete document (a WebSocket message
   is complete before it is parsed). It allocates nothing per token: strings are decoded only
   when the caller wants them, into one buffer. Nesting beyond CHAT_JSON_MAX_DEPTH is an error. */
typedef struct chat__json {
    const unsigned char *p, *end;
    int depth;
} chat__json;

static void chat__json_ws(chat__json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int chat__json_hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

static void chat__utf8_put(unsigned char **o, unsigned cp) {
    unsigned char *q = *o;
    if (cp < 0x80) *q++ = (unsigned char)cp;
    else if (cp < 0x800) *q++ = (unsigned char)(0xC0 | cp >> 6), *q++ = (unsigned char)(0x80 | (cp & 63));
    else if (cp < 0x10000)
        *q++ = (unsigned char)(0xE0 | cp >> 12), *q++ = (unsigned char)(0x80 | ((cp >> 6) & 63)),
        *q++ = (unsigned char)(0x80 | (cp & 63));
    else
        *q++ = (unsigned char)(0xF0 | cp >> 18), *q++ = (unsigned char)(0x80 | ((cp >> 12) & 63)),
        *q++ = (unsigned char)(0x80 | ((cp >> 6) & 63)), *q++ = (unsigned char)(0x80 | (cp & 63));
    *o = q;
}

/* Parses a string at j->p (which is at the opening quote). With `out`, appends the decoded
   UTF-8 to it; a lone UTF-16 surrogate escape, which UTF-8 cannot carry, becomes U+FFFD. */
static int chat__json_string(chat__json *j, chat_buf *out) {
    const unsigned char *p = j->p + 1, *run = p;
    unsigned char *o = NULL;
    uint32_t st = CHAT_UTF8_ACCEPT;
    if (out) { /* decoded text is never longer than its source */
        if (chat_buf_reserve(out, (size_t)(j->end - p) + 1) != CHAT_OK) return -1;
        o = out->data + out->len;
    }
    for (;;) {
        unsigned c;
        if (st == CHAT_UTF8_ACCEPT) /* printable ASCII, most of any text, takes no more than this */
            while (p < j->end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        if (p == j->end) return -1;
        c = *p;
        if (c == '"' || c == '\\') {
            if (st != CHAT_UTF8_ACCEPT) return -1; /* a character cut by an escape or the end */
            if (o) memcpy(o, run, (size_t)(p - run)), o += p - run;
            if (c == '"') break;
            if (j->end - p < 2) return -1;
            c = p[1];
            p += 2;
            switch (c) {
            case '"': case '\\': case '/': if (o) *o++ = (unsigned char)c; break;
            case 'b': if (o) *o++ = '\b'; break;
            case 'f': if (o) *o++ = '\f'; break;
            case 'n': if (o) *o++ = '\n'; break;
            case 'r': if (o) *o++ = '\r'; break;
            case 't': if (o) *o++ = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (j->end - p < 4 || chat__json_hex4(p, &cp) < 0) return -1;
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && j->end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                    chat__json_hex4(p + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                    cp = 0xFFFD;
                }
                if (o) chat__utf8_put(&o, cp);
                break;
            }
            default: return -1;
            }
            run = p;
            continue;
        }
        if (c < 0x20) return -1; /* control characters must be escaped */
        st = chat_utf8_step(st, c);
        if (st == CHAT_UTF8_REJECT) return -1;
        p++;
    }
    if (out) out->len = (size_t)(o - out->data);
    j->p = p + 1;
    return 0;
}

static int chat__json_digits(chat__json *j) {
    const unsigned char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > start ? 0 : -1;
}

static int chat__json_number(chat__json *j) {
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p < j->end && *j->p == '0') j->p++;
    else if (chat__json_digits(j) < 0) return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (chat__json_digits(j) < 0) return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (chat__json_digits(j) < 0) return -1;
    }
    return 0;
}

static int chat__json_literal(chat__json *j, const char *word, size_t n) {
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return -1;
    j->p += n;
    return 0;
}

static int chat__json_value(chat__json *j);

/* Arrays and objects share one loop; `close` says which. */
static int chat__json_container(chat__json *j, unsigned char close) {
    if (++j->depth > CHAT_JSON_MAX_DEPTH) return -1;
    j->p++;
    chat__json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (j->p == j->end || *j->p != '"' || chat__json_string(j, NULL) < 0) return -1;
            chat__json_ws(j);
            if (j->p == j->end || *j->p != ':') return -1;
            j->p++;
        }
        if (chat__json_value(j) < 0) return -1;
        if (j->p == j->end) return -1;
        if (*j->p == close) break;
        if (*j->p != ',') return -1;
        j->p++;
        chat__json_ws(j);
    }
    j->p++;
    j->depth--;
    return 0;
}

/* One value with the whitespace around it. */
static int chat__json_value(chat__json *j) {
    int r;
    chat__json_ws(j);
    if (j->p == j->end) return -1;
    switch (*j->p) {
    case '{': r = chat__json_container(j, '}'); break;
    case '[': r = chat__json_container(j, ']'); break;
    case '"': r = chat__json_string(j, NULL); break;
    case 't': r = chat__json_literal(j, "true", 4); break;
    case 'f': r = chat__json_literal(j, "false", 5); break;
    case 'n': r = chat__json_literal(j, "null", 4); break;
    default: r = chat__json_number(j);
    }
    chat__json_ws(j);
    return r;
}

/* Returns 0 when s is exactly one valid JSON document (RFC 8259, UTF-8), else -1. */
CHATDEF int chat_json_validate(const void *s, size_t n) {
    chat__json j;
    j.p = (const unsigned char *)s, j.end = j.p + n, j.depth = 0;
    return chat__json_value(&j) == 0 && j.p == j.end ? 0 : -1;
}

/* A string token's decoded text equals a word. Keys with escapes are rare: they take a copy. */
CHATDEF int chat_json_string_is(chat_span token, const char *text) {
    size_t n = strlen(text);
    chat_buf tmp = {NULL, 0, 0};
    int same;
    if (token.n < 2 || token.p[0] != '"') return 0;
    if (!memchr(token.p, '\\', token.n)) return token.n - 2 == n && memcmp(token.p + 1, text, n) == 0;
    same = chat_json_string(token, &tmp) == 0 && tmp.len == n && memcmp(tmp.data, text, n) == 0;
    chat_buf_free(&tmp);
    return same;
}

CHATDEF int chat_json_string(chat_span token, chat_buf *out) {
    chat__json j;
    j.p = (const unsigned char *)token.p, j.end = j.p + token.n, j.depth = 0;
    if (!token.n || *j.p != '"' || chat__json_string(&j, out) < 0 || j.p != j.end) return -1;
    return 0;
}

CHATDEF int chat_json_walk_begin(chat_json_walk *w, const void *s, size_t n) {
    chat__json j;
    j.p = (const unsigned char *)s, j.end = j.p + n, j.depth = 0;
    chat__json_ws(&j);
    w->end = j.end;
    if (j.p == j.end || *j.p != '{') {
        w->p = j.p, w->state = -1;
        return -1;
    }
    w->p = j.p + 1, w->state = 0;
    return 0;
}

CHATDEF int chat_json_walk_next(chat_json_walk *w, chat_span *key, chat_span *value) {
    chat__json j;
    if (w->state == 2) return 0;
    if (w->state < 0) return -1;
    j.p = w->p, j.end = w->end, j.depth = 1; /* the object itself is one level */
    chat__json_ws(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
        chat__json_ws(&j);
        w->state = j.p == j.end ? 2 : -1;
        return w->state == 2 ? 0 : -1;
    }
    if (w->state == 1) {
        if (j.p == j.end || *j.p != ',') return w->state = -1;
        j.p++;
        chat__json_ws(&j);
    }
    key->p = (const char *)j.p;
    if (j.p == j.end || *j.p != '"' || chat__json_string(&j, NULL) < 0) return w->state = -1;
    key->n = (size_t)((const char *)j.p - key->p);
    chat__json_ws(&j);
    if (j.p == j.end || *j.p != ':') return w->state = -1;
    j.p++;
    chat__json_ws(&j);
    value->p = (const char *)j.p;
    if (chat__json_value(&j) < 0) return w->state = -1;
    value->n = (size_t)((const char *)j.p - value->p);
    while (value->n && strchr(" \t\n\r", value->p[value->n - 1])) value->n--; /* the space after it */
    w->p = j.p, w->state = 1;
    return 1;
}

CHATDEF int chat_json_get(const void *s, size_t n, const char *key, chat_span *value) {
    chat_json_walk w;
    chat_span k, v;
    int r, found = 0;
    value->p = NULL, value->n = 0;
    if (chat_json_walk_begin(&w, s, n) < 0) return chat_json_validate(s, n) == 0 ? 0 : -1;
    while ((r = chat_json_walk_next(&w, &k, &v)) == 1)
        if (chat_json_string_is(k, key)) *value = v, found = 1;
    return r < 0 ? -1 : found;
}

/* ============================================================================================ */
/* http: request head parser (incremental, bounded) and response helpers                        */
/* ============================================================================================ */





static int chat__lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int chat__ieq(const char *a, size_t an, const char *b, size_t bn) {
    size_t i;
    if (an != bn) return 0;
    for (i = 0; i < an; i++)
        if (chat__lower((unsigned char)a[i]) != chat__lower((unsigned char)b[i])) return 0;
    return 1;
}

static int chat__span_ieq(chat_span s, const char *text) { return chat__ieq(s.p, s.n, text, strlen(text)); }

/* Does a comma-separated header value (e.g. "keep-alive, Upgrade") contain `token`? */
CHATDEF int chat_http_token_list_has(chat_span v, const char *token) {
    size_t i = 0;
    while (i < v.n) {
        chat_span t;
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ',')) i++;
        t.p = v.p + i;
        while (i < v.n && v.p[i] != ',') i++;
        t.n = (size_t)(v.p + i - t.p);
        while (t.n && (t.p[t.n - 1] == ' ' || t.p[t.n - 1] == '\t')) t.n--;
        if (t.n && chat__span_ieq(t, token)) return 1;
    }
    return 0;
}

static int chat__is_tchar(int c) { /* RFC 9110 token characters */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Splits a header line "name: value" (without its line ending); -1 when it is malformed. */
static int chat__http_header_split(const char *p, size_t n, chat_span *name, chat_span *value) {
    size_t i = 0;
    while (i < n && chat__is_tchar((unsigned char)p[i])) i++;
    if (i == 0 || i == n || p[i] != ':') return -1; /* no space before the colon (RFC 9112 5.1) */
    name->p = p, name->n = i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    value->p = p + i, value->n = n - i;
    while (value->n && (value->p[value->n - 1] == ' ' || value->p[value->n - 1] == '\t')) value->n--;
    return 0;
}

/* Checks one header line and notes what the HTTP layer itself needs of it: the connection's
   fate, whether a body follows, and the Host count (a second one is an error, RFC 9112 3.2). */
static int chat__http_header_line(const char *p, size_t n, chat_http_request *req, int *hosts) {
    chat_span name, value;
    size_t i;
    if (chat__http_header_split(p, n, &name, &value) < 0) return -1;
    for (i = 0; i < value.n; i++) {
        unsigned char c = (unsigned char)value.p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F) return -1;
    }
    if (chat__span_ieq(name, "host")) {
        if (++*hosts > 1) return -1;
    } else if (chat__span_ieq(name, "connection")) {
        if (chat_http_token_list_has(value, "close")) req->flags |= CHAT_HTTP_CLOSE;
        if (chat_http_token_list_has(value, "keep-alive")) req->flags |= CHAT_HTTP_KEEPALIVE;
        if (chat_http_token_list_has(value, "upgrade")) req->flags |= CHAT_HTTP_CONN_UPGRADE;
    } else if (chat__span_ieq(name, "content-length")) {
        if (value.n == 0) return -1;
        for (i = 0; i < value.n; i++) {
            if (value.p[i] < '0' || value.p[i] > '9') return -1;
            if (value.p[i] != '0') req->flags |= CHAT_HTTP_BODY;
        }
    } else if (chat__span_ieq(name, "transfer-encoding")) {
        req->flags |= CHAT_HTTP_BODY;
    }
    return 0;
}

/* The lines of a parsed head after its first, one at a time: 1 with the next line's span. */
static int chat__http_next_line(const chat_http_request *req, size_t *pos, chat_span *line) {
    const char *p = req->head.p, *nl;
    size_t n = req->head.n;
    if (*pos == 0) { /* skip the request or status line */
        nl = (const char *)memchr(p, '\n', n);
        *pos = nl ? (size_t)(nl - p) + 1 : n;
    }
    if (*pos >= n) return 0;
    nl = (const char *)memchr(p + *pos, '\n', n - *pos);
    line->p = p + *pos;
    line->n = nl ? (size_t)(nl - line->p) : n - *pos;
    *pos += line->n + 1;
    if (line->n && line->p[line->n - 1] == '\r') line->n--;
    return line->n > 0; /* the empty line ends the head */
}

CHATDEF int chat_http_header(const chat_http_request *req, const char *name, chat_span *value) {
    size_t pos = 0, name_len = strlen(name);
    chat_span line, k, v;
    int count = 0;
    value->p = NULL, value->n = 0;
    while (chat__http_next_line(req, &pos, &line))
        if (chat__http_header_split(line.p, line.n, &k, &v) == 0 && chat__ieq(k.p, k.n, name, name_len) && !count++)
            *value = v;
    return count;
}

/* The origin-form part of an absolute-form target ("http://host/x?y" -> "/x?y"), which a server
   must accept (RFC 9112 3.2.2); -1 when the target is in neither form. */
static int chat__http_origin_form(chat_span *t) {
    static const char root[] = "/";
    size_t i = 0;
    if (t->n && t->p[0] == '/') return 0;
    while (i < t->n && t->p[i] != ':') i++;
    if (!((i == 4 && chat__ieq(t->p, 4, "http", 4)) || (i == 5 && chat__ieq(t->p, 5, "https", 5))) ||
        t->n - i < 3 || memcmp(t->p + i, "://", 3) != 0)
        return -1;
    for (i += 3; i < t->n && t->p[i] != '/' && t->p[i] != '?'; i++) {}
    if (i == t->n) t->p = root, t->n = 1; /* no path: the root */
    else if (t->p[i] == '?') return -1;    /* a query without a path: no span says "/?..." */
    else t->p += i, t->n -= i;
    return 0;
}

/* Parses the request line: METHOD SP request-target SP HTTP/1.x */
static int chat__http_request_line(const char *p, size_t n, chat_http_request *req) {
    size_t i = 0, t;
    while (i < n && chat__is_tchar((unsigned char)p[i])) i++;
    if (i == 0 || i == n || p[i] != ' ') return -1;
    req->method.p = p, req->method.n = i++;
    t = i;
    while (i < n && (unsigned char)p[i] > ' ' && p[i] != 0x7F) i++;
    if (i == t || i == n || p[i] != ' ') return -1;
    req->target.p = p + t, req->target.n = i - t;
    if (chat__http_origin_form(&req->target) < 0) return -1;
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || p[i + 7] < '0' || p[i + 7] > '9') return -1;
    req->minor = p[i + 7] - '0';
    return 0;
}

/* Parses a status line: HTTP/1.x SP 3DIGIT [SP reason] */
static int chat__http_status_line(const char *p, size_t n, chat_http_request *resp) {
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ' || p[9] < '1' ||
        p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' || (n > 12 && p[12] != ' '))
        return -1;
    resp->minor = p[7] - '0';
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return 0;
}

/* Requests and responses differ only in their first line. */
typedef int (*chat__http_first_line)(const char *p, size_t n, chat_http_request *req);

static int chat__http_parse_head(const char *buf, size_t len, size_t max_head, size_t *scanned, chat_http_request *req,
                                 chat__http_first_line first_line) {
    size_t i, end = 0, line, head_len, start = 0;
    int hosts = 0;
    /* Empty lines before the request line are ignored (RFC 9112 2.2); they count as head. */
    while (start < len && (buf[start] == '\n' || (buf[start] == '\r' && start + 1 < len && buf[start + 1] == '\n')))
        start += buf[start] == '\r' ? 2 : 1;
    if (start == len || (start + 1 == len && buf[start] == '\r'))
        return len >= max_head ? CHAT_HTTP_TOO_LARGE : CHAT_HTTP_INCOMPLETE;
    for (i = *scanned > start ? *scanned : start; i < len && i < max_head; i++) {
        if (buf[i] != '\n') continue;
        if (buf[i - 1] == '\n' || (buf[i - 1] == '\r' && i - start >= 2 && buf[i - 2] == '\n')) {
            end = i + 1;
            break;
        }
    }
    if (!end) {
        *scanned = i;
        return len >= max_head ? CHAT_HTTP_TOO_LARGE : CHAT_HTTP_INCOMPLETE;
    }
    if (end > INT_MAX) return CHAT_HTTP_TOO_LARGE;
    head_len = end;
    memset(req, 0, sizeof *req);
    req->head.p = buf + start, req->head.n = head_len - start;
    for (line = start, i = start; i < head_len; i++) {
        size_t n;
        int bad;
        if (buf[i] != '\n') continue;
        n = i - line;
        if (n && buf[i - 1] == '\r') n--;
        if (n == 0) break; /* the empty line */
        if (memchr(buf + line, '\r', n)) return CHAT_HTTP_BAD; /* a bare CR */
        bad = line != start ? chat__http_header_line(buf + line, n, req, &hosts) : first_line(buf + line, n, req);
        if (bad) return CHAT_HTTP_BAD;
        line = i + 1;
    }
    *scanned = 0;
    return (int)head_len;
}

CHATDEF int chat_http_parse(const char *buf, size_t len, size_t max_head, size_t *scanned, chat_http_request *req) {
    return chat__http_parse_head(buf, len, max_head, scanned, req, chat__http_request_line);
}

CHATDEF int chat_http_parse_response(const char *buf, size_t len, size_t max_head, size_t *scanned,
                                     chat_http_request *resp) {
    return chat__http_parse_head(buf, len, max_head, scanned, resp, chat__http_status_line);
}

static int chat__hex_digit(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes s into out (which has room for n bytes) and returns the decoded length. As in
   a browser's URLSearchParams, a '%' not followed by two hex digits stays as it is. */
CHATDEF size_t chat_url_decode(const char *s, size_t n, char *out, int plus_is_space) {
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = chat__hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (lo = chat__hex_digit((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
        }
    }
    return o;
}

/* Finds the first `name` parameter of a query string and decodes its value into out (replacing
   its contents). Returns 1 when found, 0 when absent, CHAT_ENOMEM. */
CHATDEF int chat_url_query_param(const char *q, size_t qn, const char *name, chat_buf *out) {
    size_t i = 0, name_len = strlen(name);
    while (i <= qn) {
        size_t start = i, eq, end;
        char key[64];
        while (i < qn && q[i] != '&') i++;
        end = i++;
        for (eq = start; eq < end && q[eq] != '='; eq++) {}
        if (eq - start <= sizeof key &&
            chat_url_decode(q + start, eq - start, key, 1) == name_len && memcmp(key, name, name_len) == 0) {
            size_t vn = eq < end ? end - eq - 1 : 0;
            out->len = 0;
            if (chat_buf_reserve(out, vn + 1) != CHAT_OK) return CHAT_ENOMEM;
            out->len = vn ? chat_url_decode(q + eq + 1, vn, (char *)out->data, 1) : 0;
            out->data[out->len] = '\0';
            return 1;
        }
    }
    return 0;
}

CHATDEF const char *chat_http_reason(int status) {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 401: return "Unauthorized";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
    }
}

/* ============================================================================================ */
/* ws: RFC 6455 handshake key, frame decoder (fed arbitrary chunks), frame header encoder        */
/* ============================================================================================ */


/* Sec-WebSocket-Accept for a client's key: base64(SHA-1(key + GUID)), 28 characters + NUL. */
CHATDEF void chat_ws_accept_key(const char *key, size_t key_len, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char tmp[64 + sizeof guid], digest[20];
    size_t n = CHAT__MIN(key_len, (size_t)64);
    memcpy(tmp, key, n);
    memcpy(tmp + n, guid, sizeof guid - 1);
    chat_sha1(tmp, n + sizeof guid - 1, digest);
    chat_base64_encode(digest, 20, out);
}

/* Writes a frame header (FIN set) for a payload of `len` bytes; with a mask (clients only) the
   4 mask bytes follow. Returns the header length: 2, 4 or 10 (+4 masked). */
CHATDEF size_t chat_ws_header(unsigned char *out, int opcode, uint64_t len, const unsigned char *mask) {
    size_t n;
    int i;
    out[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        out[1] = (unsigned char)len, n = 2;
    } else if (len <= 0xFFFF) {
        out[1] = 126, out[2] = (unsigned char)(len >> 8), out[3] = (unsigned char)len, n = 4;
    } else {
        out[1] = 127, n = 10;
        for (i = 0; i < 8; i++) out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    }
    if (mask) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* XORs n bytes with the mask, starting `phase` bytes into it; 8 bytes at a time. */
CHATDEF void chat_ws_unmask(unsigned char *p, size_t n, const unsigned char mask[4], unsigned phase) {
    unsigned char m[8];
    size_t i = 0;
    int k;
    for (k = 0; k < 8; k++) m[k] = mask[(phase + (unsigned)k) & 3];
    if (n >= 8) {
        uint64_t w, mw;
        memcpy(&mw, m, 8);
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, p + i, 8);
            w ^= mw;
            memcpy(p + i, &w, 8);
        }
    }
    for (; i < n; i++) p[i] ^= m[i & 7];
}



/* Valid close codes on the wire: RFC 6455 7.4.1 and the IANA registry (1012-1014); 1004-1006
   and 1015 are reserved, 1016-2999 unassigned, 3000-4999 for libraries and applications. */
CHATDEF int chat_ws_close_code_valid(int code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static size_t chat__ws_fail(chat_ws_event *ev, int code) {
    ev->type = CHAT_WS_ERROR;
    ev->code = code;
    return 0;
}

/* Feeds bytes of a client's stream. Returns how many were consumed and what they were in *ev;
   the caller calls again with the rest until ev->type is CHAT_WS_NEED_MORE (and then keeps the
   unconsumed bytes for next time) or CHAT_WS_ERROR. Data payload is streamed as it arrives
   (so invalid UTF-8 is caught at its first byte); control frames are returned whole. A message
   longer than max_message is refused from the frame header, before its payload is buffered. */
CHATDEF size_t chat_ws_decode(chat_ws_decoder *d, unsigned char *p, size_t n, uint64_t max_message,
                                chat_ws_event *ev) {
    size_t head, i;
    uint64_t len;
    int op, fin;
    memset(ev, 0, sizeof *ev);
    if (d->in_frame) {
        size_t take = (size_t)CHAT__MIN((uint64_t)n, d->remaining);
        if (take == 0 && d->remaining) return ev->type = CHAT_WS_NEED_MORE, 0;
        if (!d->unmasked) chat_ws_unmask(p, take, d->mask, d->phase);
        d->phase = (unsigned char)((d->phase + take) & 3);
        d->remaining -= take;
        d->message_len += take;
        ev->type = CHAT_WS_DATA, ev->opcode = d->message_op, ev->data = p, ev->len = take;
        ev->last = d->remaining == 0 && d->fin;
        if (d->message_op == CHAT_WS_OP_TEXT) {
            d->utf8 = chat_utf8_feed(d->utf8, p, take);
            if (d->utf8 == CHAT_UTF8_REJECT || (ev->last && d->utf8 != CHAT_UTF8_ACCEPT))
                return chat__ws_fail(ev, 1007);
        }
        if (d->remaining == 0) {
            d->in_frame = 0;
            if (d->fin) d->message_op = 0, d->message_len = 0;
        }
        return take;
    }
    if (n < 2) return ev->type = CHAT_WS_NEED_MORE, 0;
    fin = p[0] & 0x80, op = p[0] & 0x0F, len = p[1] & 0x7F;
    head = 2 + (len == 126 ? 2 : len == 127 ? 8 : 0) + (d->unmasked ? 0 : 4);
    if (p[0] & 0x70) return chat__ws_fail(ev, 1002);                /* RSV without extension */
    if (!(p[1] & 0x80) != !!d->unmasked) return chat__ws_fail(ev, 1002); /* clients mask, servers not */
    if ((op > CHAT_WS_OP_BINARY && op < CHAT_WS_OP_CLOSE) || op > CHAT_WS_OP_PONG) return chat__ws_fail(ev, 1002);
    if (op >= CHAT_WS_OP_CLOSE && (!fin || len > CHAT_WS_MAX_CONTROL)) return chat__ws_fail(ev, 1002);
    if (op == CHAT_WS_OP_CONT && !d->message_op) return chat__ws_fail(ev, 1002);
    if ((op == CHAT_WS_OP_TEXT || op == CHAT_WS_OP_BINARY) && d->message_op) return chat__ws_fail(ev, 1002);
    if (n < head) return ev->type = CHAT_WS_NEED_MORE, 0;
    if (len == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126) return chat__ws_fail(ev, 1002); /* lengths must be minimal */
    } else if (len == 127) {
        for (len = 0, i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        if (len >> 63 || len <= 0xFFFF) return chat__ws_fail(ev, 1002);
    }
    if (op >= CHAT_WS_OP_CLOSE) {
        unsigned char *payload = p + head;
        if (n < head + len) return ev->type = CHAT_WS_NEED_MORE, 0;
        if (!d->unmasked) chat_ws_unmask(payload, (size_t)len, p + head - 4, 0);
        ev->data = payload, ev->len = (size_t)len;
        if (op == CHAT_WS_OP_PING) ev->type = CHAT_WS_PING;
        else if (op == CHAT_WS_OP_PONG) ev->type = CHAT_WS_PONG;
        else {
            ev->type = CHAT_WS_CLOSE;
            ev->code = 1005; /* "no status received" */
            if (len == 1) return chat__ws_fail(ev, 1002);
            if (len >= 2) {
                ev->code = payload[0] << 8 | payload[1];
                if (!chat_ws_close_code_valid(ev->code)) return chat__ws_fail(ev, 1002);
                if (!chat_utf8_valid(payload + 2, (size_t)len - 2)) return chat__ws_fail(ev, 1007);
                ev->data = payload + 2, ev->len = (size_t)len - 2;
            }
        }
        return head + (size_t)len;
    }
    if (len > max_message || d->message_len + len > max_message) return chat__ws_fail(ev, 1009);
    if (op != CHAT_WS_OP_CONT) d->message_op = (unsigned char)op, d->utf8 = CHAT_UTF8_ACCEPT, d->message_len = 0;
    if (!d->unmasked) memcpy(d->mask, p + head - 4, 4);
    d->phase = 0, d->remaining = len, d->fin = (unsigned char)(fin != 0), d->in_frame = 1;
    if (len == 0) { /* an empty frame still moves the message along; report it at once */
        ev->type = CHAT_WS_DATA, ev->opcode = d->message_op, ev->data = p + head, ev->len = 0;
        ev->last = d->fin;
        d->in_frame = 0;
        if (ev->last) {
            if (d->message_op == CHAT_WS_OP_TEXT && d->utf8 != CHAT_UTF8_ACCEPT) return chat__ws_fail(ev, 1007);
            d->message_op = 0, d->message_len = 0;
        }
        return head;
    }
    ev->type = CHAT_WS_NONE;
    return head;
}

#ifndef CHAT_NO_MQTT
/* ============================================================================================ */
/* mqtt: MQTT 3.1.1 control packets; one encoder, one parser (pure: bytes in, fields out)      */
/* ============================================================================================ */

/* The fixed header's low nibble: PUBLISH carries DUP, QoS and RETAIN there; PUBREL, SUBSCRIBE
   and UNSUBSCRIBE must have 0010, every other packet 0000 (MQTT-2.2.2-1, -2). */
static unsigned chat__mqtt_fixed_flags(int type) {
    return type == CHAT_MQTT_PUBREL || type == CHAT_MQTT_SUBSCRIBE || type == CHAT_MQTT_UNSUBSCRIBE ? 2u : 0u;
}

CHATDEF size_t chat_mqtt_length_put(unsigned char out[4], size_t n) {
    size_t k = 0;
    do {
        out[k] = (unsigned char)(n & 127);
        n >>= 7;
        if (n) out[k] |= 128;
        k++;
    } while (n && k < 4);
    return k;
}

/* A UTF-8 string as MQTT-1.5.3 has it: well-formed, no U+0000, at most 65,535 bytes. */
static int chat__mqtt_string_ok(const char *s, size_t n) {
    return n <= 0xFFFF && (!n || !memchr(s, 0, n)) && chat_utf8_valid(s, n);
}

/* A topic name (PUBLISH, a will): a string of at least one byte without wildcards (MQTT-3.3.2-2). */
static int chat__mqtt_topic_ok(const char *s, size_t n) {
    return n && chat__mqtt_string_ok(s, n) && !memchr(s, '+', n) && !memchr(s, '#', n);
}

/* A topic filter: '+' fills a whole level; '#' is a whole level and the last (MQTT-4.7.1-2, -3). */
static int chat__mqtt_filter_ok(const char *s, size_t n) {
    size_t i;
    if (!n || !chat__mqtt_string_ok(s, n)) return 0;
    for (i = 0; i < n; i++) {
        int alone = (i == 0 || s[i - 1] == '/') && (i + 1 == n || s[i + 1] == '/');
        if ((s[i] == '+' && !alone) || (s[i] == '#' && (!alone || i + 1 != n))) return 0;
    }
    return 1;
}

static void chat__mqtt_u16(unsigned char *p, size_t v) { p[0] = (unsigned char)(v >> 8), p[1] = (unsigned char)v; }

CHATDEF int chat_mqtt_put_string(chat_buf *b, const void *s, size_t n) {
    unsigned char len[2];
    if (n > 0xFFFF) return CHAT_EINVAL;
    chat__mqtt_u16(len, n);
    if (chat_buf_reserve(b, 2 + n) != CHAT_OK) return CHAT_ENOMEM;
    chat_buf_append(b, len, 2);
    return chat_buf_append(b, s, n);
}

/* Are a packet's fields what its type allows? (The encoder's half of the parser's checks.) */
static int chat__mqtt_put_ok(const chat_mqtt_packet *p) {
    const chat_mqtt_connect *c = &p->connect;
    int has_id = p->type == CHAT_MQTT_PUBLISH ? p->qos > 0 : (p->type >= CHAT_MQTT_PUBACK && p->type <= CHAT_MQTT_UNSUBACK);
    if (p->type < CHAT_MQTT_CONNECT || p->type > CHAT_MQTT_DISCONNECT) return 0;
    if (has_id && (p->id == 0 || p->id > 0xFFFF)) return 0;
    switch (p->type) {
    case CHAT_MQTT_CONNECT:
        if (!chat__mqtt_string_ok(c->client_id.p, c->client_id.n) || c->keep_alive > 0xFFFF) return 0;
        if (c->will_topic.p && (!chat__mqtt_topic_ok(c->will_topic.p, c->will_topic.n) || c->will_message.n > 0xFFFF ||
                                c->will_qos < 0 || c->will_qos > 2))
            return 0;
        if (c->username.p && !chat__mqtt_string_ok(c->username.p, c->username.n)) return 0;
        return !c->password.p || (c->username.p && c->password.n <= 0xFFFF); /* MQTT-3.1.2-22 */
    case CHAT_MQTT_CONNACK: return p->return_code >= 0 && p->return_code <= 255 && !(p->return_code && p->session_present);
    case CHAT_MQTT_PUBLISH:
        return chat__mqtt_topic_ok(p->topic.p, p->topic.n) && p->qos >= 0 && p->qos <= 2 && !(p->dup && !p->qos);
    case CHAT_MQTT_SUBSCRIBE: case CHAT_MQTT_SUBACK: case CHAT_MQTT_UNSUBSCRIBE: return p->payload.n > 0;
    default: return 1;
    }
}

CHATDEF int chat_mqtt_put(chat_buf *b, const chat_mqtt_packet *p) {
    const chat_mqtt_connect *c = &p->connect;
    unsigned char head[5], var[10];
    size_t rl = 0, vn = 0, at = b->len;
    if (!chat__mqtt_put_ok(p)) return CHAT_EINVAL;
    head[0] = (unsigned char)(p->type << 4 | (int)chat__mqtt_fixed_flags(p->type));
    switch (p->type) { /* the variable header (var) and how long everything after it is (rl) */
    case CHAT_MQTT_CONNECT:
        memcpy(var, "\0\4MQTT\4", 7);
        var[7] = (unsigned char)((c->username.p ? 0x80 : 0) | (c->password.p ? 0x40 : 0) |
                                 (c->will_topic.p ? (c->will_retain ? 0x20 : 0) | c->will_qos << 3 | 0x04 : 0) |
                                 (c->clean_session ? 0x02 : 0));
        chat__mqtt_u16(var + 8, c->keep_alive), vn = 10;
        rl = 2 + c->client_id.n + (c->will_topic.p ? 4 + c->will_topic.n + c->will_message.n : 0) +
             (c->username.p ? 2 + c->username.n : 0) + (c->password.p ? 2 + c->password.n : 0);
        break;
    case CHAT_MQTT_CONNACK: var[0] = (unsigned char)(p->session_present ? 1 : 0), var[1] = (unsigned char)p->return_code, vn = 2; break;
    case CHAT_MQTT_PUBLISH:
        head[0] |= (unsigned char)((p->dup ? 8 : 0) | p->qos << 1 | (p->retain ? 1 : 0));
        chat__mqtt_u16(var, p->topic.n), vn = 2;
        rl = p->topic.n + (p->qos ? 2 : 0) + p->payload.n;
        break;
    case CHAT_MQTT_PINGREQ: case CHAT_MQTT_PINGRESP: case CHAT_MQTT_DISCONNECT: break;
    default: /* everything else starts with its packet id */
        chat__mqtt_u16(var, p->id), vn = 2;
        rl = p->type == CHAT_MQTT_SUBSCRIBE || p->type == CHAT_MQTT_SUBACK || p->type == CHAT_MQTT_UNSUBSCRIBE ? p->payload.n : 0;
        break;
    }
    if (rl > CHAT_MQTT_MAX_LENGTH - vn) return CHAT_EINVAL;
    rl += vn;
    if (chat_buf_reserve(b, 5 + rl) != CHAT_OK) return CHAT_ENOMEM;
    chat_buf_append(b, head, 1 + chat_mqtt_length_put(head + 1, rl));
    chat_buf_append(b, var, vn);
    if (p->type == CHAT_MQTT_CONNECT) { /* reserved room: these appends cannot fail */
        chat_mqtt_put_string(b, c->client_id.p, c->client_id.n);
        if (c->will_topic.p) chat_mqtt_put_string(b, c->will_topic.p, c->will_topic.n), chat_mqtt_put_string(b, c->will_message.p, c->will_message.n);
        if (c->username.p) chat_mqtt_put_string(b, c->username.p, c->username.n);
        if (c->password.p) chat_mqtt_put_string(b, c->password.p, c->password.n);
    } else if (p->type == CHAT_MQTT_PUBLISH) {
        unsigned char id[2];
        chat_buf_append(b, p->topic.p, p->topic.n);
        chat__mqtt_u16(id, p->id);
        if (p->qos) chat_buf_append(b, id, 2);
        chat_buf_append(b, p->payload.p, p->payload.n);
    } else if (rl > vn) {
        chat_buf_append(b, p->payload.p, p->payload.n);
    }
    CHAT_ASSERT(b->len == at + (size_t)(1 + chat_mqtt_length_put(head + 1, rl)) + rl);
    (void)at;
    return CHAT_OK;
}

CHATDEF int chat_mqtt_take_string(chat_span *rest, chat_span *out) {
    size_t n;
    if (rest->n < 2) return -1;
    n = (size_t)((unsigned char)rest->p[0] << 8 | (unsigned char)rest->p[1]);
    if (rest->n - 2 < n) return -1;
    out->p = rest->p + 2, out->n = n;
    rest->p += 2 + n, rest->n -= 2 + n;
    return 0;
}

/* A string field of a packet: present, and a valid MQTT string. */
static int chat__mqtt_take_text(chat_span *rest, chat_span *out) {
    return chat_mqtt_take_string(rest, out) == 0 && chat__mqtt_string_ok(out->p, out->n) ? 0 : -1;
}

static int chat__mqtt_take_id(chat_span *rest, unsigned *id) {
    if (rest->n < 2) return -1;
    *id = (unsigned)((unsigned char)rest->p[0] << 8 | (unsigned char)rest->p[1]);
    rest->p += 2, rest->n -= 2;
    return *id ? 0 : -1; /* MQTT-2.3.1-1: never 0 */
}

/* CONNECT's variable header and payload (MQTT-3.1). */
static int chat__mqtt_parse_connect(chat_span r, chat_mqtt_connect *c) {
    chat_span name;
    unsigned flags;
    if (chat_mqtt_take_string(&r, &name) || name.n != 4 || memcmp(name.p, "MQTT", 4) || r.n < 4) return -1;
    if (r.p[0] != 4) return -1; /* protocol level: 3.1.1 */
    flags = (unsigned char)r.p[1];
    c->keep_alive = (unsigned)((unsigned char)r.p[2] << 8 | (unsigned char)r.p[3]);
    r.p += 4, r.n -= 4;
    if ((flags & 1) || (!(flags & 0x80) && (flags & 0x40))) return -1; /* reserved bit; password without user */
    if (!(flags & 4) && (flags & 0x38)) return -1;                     /* will QoS or retain without a will */
    c->will_qos = (int)(flags >> 3 & 3), c->will_retain = (flags & 0x20) != 0, c->clean_session = (flags & 2) != 0;
    if (c->will_qos == 3 || chat__mqtt_take_text(&r, &c->client_id)) return -1;
    if ((flags & 4) && (chat__mqtt_take_text(&r, &c->will_topic) || !chat__mqtt_topic_ok(c->will_topic.p, c->will_topic.n) ||
                        chat_mqtt_take_string(&r, &c->will_message)))
        return -1;
    if ((flags & 0x80) && chat__mqtt_take_text(&r, &c->username)) return -1;
    if ((flags & 0x40) && chat_mqtt_take_string(&r, &c->password)) return -1;
    return r.n == 0 ? 0 : -1;
}

/* SUBSCRIBE's and UNSUBSCRIBE's payloads: one filter or more, each with a QoS byte when `qos`. */
static int chat__mqtt_filters_ok(chat_span r, int qos) {
    if (!r.n) return 0; /* MQTT-3.8.3-3, 3.10.3-2 */
    while (r.n) {
        chat_span f;
        if (chat_mqtt_take_string(&r, &f) || !chat__mqtt_filter_ok(f.p, f.n)) return 0;
        if (qos) {
            if (!r.n || (unsigned char)r.p[0] > 2) return 0; /* MQTT-3-8.3-4: upper bits 0 */
            r.p++, r.n--;
        }
    }
    return 1;
}

CHATDEF long chat_mqtt_parse(const void *buf, size_t len, size_t max_length, chat_mqtt_packet *p) {
    const unsigned char *b = (const unsigned char *)buf;
    size_t rl = 0, head = 1;
    chat_span r;
    int type, flags, ok;
    memset(p, 0, sizeof *p);
    if (len < 2) return CHAT_MQTT_INCOMPLETE;
    type = b[0] >> 4, flags = b[0] & 15;
    if (type < CHAT_MQTT_CONNECT || type > CHAT_MQTT_DISCONNECT) return CHAT_MQTT_BAD;
    if (type == CHAT_MQTT_PUBLISH ? (flags & 6) == 6 || ((flags & 8) && !(flags & 6)) : (unsigned)flags != chat__mqtt_fixed_flags(type))
        return CHAT_MQTT_BAD; /* QoS 3; DUP on QoS 0 (MQTT-3.3.1-2); reserved flags */
    for (;;) {
        if (head >= len) return CHAT_MQTT_INCOMPLETE;
        rl |= (size_t)(b[head] & 127) << (7 * (head - 1));
        if (!(b[head++] & 128)) break;
        if (head == 5) return CHAT_MQTT_BAD; /* a fifth length byte */
    }
    if (rl > max_length) return CHAT_MQTT_TOO_LARGE;
    if (len - head < rl) return CHAT_MQTT_INCOMPLETE;
    p->type = type;
    r.p = (const char *)b + head, r.n = rl;
    switch (type) {
    case CHAT_MQTT_CONNECT: ok = chat__mqtt_parse_connect(r, &p->connect) == 0; break;
    case CHAT_MQTT_CONNACK:
        ok = rl == 2 && b[head] <= 1 && !(b[head] && b[head + 1]); /* refused: no session (MQTT-3.2.2-4) */
        if (ok) p->session_present = b[head], p->return_code = b[head + 1];
        break;
    case CHAT_MQTT_PUBLISH:
        p->dup = (flags & 8) != 0, p->qos = flags >> 1 & 3, p->retain = flags & 1;
        ok = chat_mqtt_take_string(&r, &p->topic) == 0 && chat__mqtt_topic_ok(p->topic.p, p->topic.n) &&
             (!p->qos || chat__mqtt_take_id(&r, &p->id) == 0);
        p->payload = r;
        break;
    case CHAT_MQTT_PINGREQ: case CHAT_MQTT_PINGRESP: case CHAT_MQTT_DISCONNECT: ok = rl == 0; break;
    default: /* a packet id, then (SUBSCRIBE, SUBACK, UNSUBSCRIBE) a payload */
        ok = chat__mqtt_take_id(&r, &p->id) == 0;
        p->payload = r;
        if (type == CHAT_MQTT_SUBSCRIBE || type == CHAT_MQTT_UNSUBSCRIBE) {
            ok = ok && chat__mqtt_filters_ok(r, type == CHAT_MQTT_SUBSCRIBE);
        } else if (type == CHAT_MQTT_SUBACK) {
            size_t i;
            ok = ok && r.n > 0;
            for (i = 0; ok && i < r.n; i++) ok = (unsigned char)r.p[i] <= 2 || (unsigned char)r.p[i] == 0x80;
        } else {
            ok = ok && r.n == 0;
        }
        break;
    }
    if (!ok) return CHAT_MQTT_BAD;
    return (long)(head + rl);
}

CHATDEF const char *chat_mqtt_connack_reason(int code) {
    switch (code) {
    case 0: return "accepted";
    case 1: return "unacceptable protocol version";
    case 2: return "client identifier rejected";
    case 3: return "server unavailable";
    case 4: return "bad user name or password";
    case 5: return "not authorized";
    default: return "refused (unknown return code)";
    }
}
#endif /* CHAT_NO_MQTT */

#ifndef CHAT_CODECS_ONLY /* the platform and the server */

/* ============================================================================================ */
/* platform: the only place with OS calls                                                      */
/* ============================================================================================ */

/* SIGPIPE must never kill the embedding program: MSG_NOSIGNAL per call (Linux, the BSDs),
   else SO_NOSIGPIPE per socket (macOS), else -- on a system with neither -- SIGPIPE is ignored
   process-wide when a server is created, unless the program installed its own handler. */
#if defined(MSG_NOSIGNAL) && !defined(CHAT_NO_MSG_NOSIGNAL)
#define CHAT__SEND_FLAGS MSG_NOSIGNAL
#else
#define CHAT__SEND_FLAGS 0
#if !defined(SO_NOSIGPIPE)
#define CHAT__IGNORE_SIGPIPE
#endif
#endif

#define CHAT__IOV_MAX 64          /* iovecs per sendmsg; POSIX guarantees at least 16, Linux 1024 */
#define CHAT__QUEUE_FIRST_CAP 8   /* a connection's first output queue, in frames */
#define CHAT__SPARE_QUEUES 128    /* emptied queues kept for the next turn's output, */
#define CHAT__SPARE_QUEUE_CAP 64  /* each of at most this many frames (64 KB in all) */
#define CHAT__LISTEN_BACKLOG 4096 /* the kernel caps it at its own maximum */
#define CHAT__ACCEPT_BACKOFF_MS 100 /* pause after EMFILE so a full table does not spin the CPU */
#define CHAT__SWEEP_MS 250         /* granularity of deadlines (handshake, ping, close) */
#define CHAT__ACCEPT_PER_TURN 128  /* so a connect flood cannot starve the clients already in */
#define CHAT__USERS_BYTES_PER_MS (64 * 1024) /* user-list bytes a server hands out per ms */
#define CHAT__USERS_MAX_SPACING_MS 1000     /* ... but a list is never later than this */
#define CHAT__POSTS_PER_TURN 64             /* chat_server_post messages handled per loop turn */
#define CHAT__POSTS_AT_STOP 16384           /* ... and at a stop: more than a full pipe holds */
#define CHAT__HTTP_MAX_REQUESTS 100         /* per keep-alive connection */
#define CHAT__HTTP_LIFETIME 6               /* a keep-alive connection lives this many idle times */
#define CHAT__SCRATCH_KEEP 16384       /* bytes a scratch buffer keeps between turns */
#define CHAT__MAX_BUFFER (1u << 28) /* max_message and max_backlog at most: 32-bit counts stay exact */

/* A scratch buffer that grew for one big message (escaping a 64 KiB message may take 6 times
   that) is given back at the end of the turn: a board must not keep the peak for good. */
static void chat__scratch_shrink(chat_buf *b) {
    if (b->cap > CHAT__SCRATCH_KEEP) chat_buf_free(b);
}

typedef long long chat__ms;

static chat__ms chat__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (chat__ms)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The wall clock, for the time stamped on messages and the first message id (see chat__room). */
static uint64_t chat__wall_us(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* n unpredictable bytes from the system; -1 when it has no /dev/urandom. */
static int chat__random_bytes(unsigned char *out, size_t n) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    if (fd < 0) return -1;
    while (got < n) {
        ssize_t r = read(fd, out + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    return got == n ? 0 : -1;
}

/* The history file: opened for appending; read whole at start; replaced whole by a compaction. */
static int chat__file_open_append(const char *path) { return open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644); }

/* The file's bytes, up to max (more: -2); -1 when it cannot be read. *out is CHAT_MALLOC'd. */
static long chat__file_read_all(int fd, size_t max, unsigned char **out) {
    size_t len = 0, cap = 4096;
    unsigned char *buf = (unsigned char *)CHAT_MALLOC(cap);
    *out = NULL;
    if (!buf || lseek(fd, 0, SEEK_SET) < 0) return CHAT_FREE(buf), -1;
    for (;;) {
        ssize_t n;
        if (len == cap) {
            unsigned char *bigger;
            if (cap > max) return CHAT_FREE(buf), -2;
            bigger = (unsigned char *)CHAT_REALLOC(buf, cap * 2);
            if (!bigger) return CHAT_FREE(buf), -1;
            buf = bigger, cap *= 2;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return CHAT_FREE(buf), -1;
        if (n == 0) break;
        len += (size_t)n;
    }
    if (len > max) return CHAT_FREE(buf), -2;
    *out = buf;
    return (long)len;
}

/* Appends all n bytes; on a failure the file is cut back to `size` (its length before), so no
   torn record stays in the middle. Returns 0 or -1. */
static int chat__file_append(int fd, const void *p, size_t n, long long size, int sync) {
    const unsigned char *c = (const unsigned char *)p;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, c + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (ftruncate(fd, (off_t)size) != 0) {} /* best effort: the next start drops a torn tail */
            return -1;
        }
        done += (size_t)w;
    }
#if defined(_POSIX_SYNCHRONIZED_IO) && _POSIX_SYNCHRONIZED_IO > 0
    if (sync && fdatasync(fd) != 0) return -1;
#else
    if (sync && fsync(fd) != 0) return -1;
#endif
    return 0;
}

static int chat__file_truncate(int fd, long long size) { return ftruncate(fd, (off_t)size) == 0 ? 0 : -1; }

/* Writes path.tmp with these bytes (synced first with `sync`) and renames it over path: the old
   file stays whole until the new one is. Returns the new file open for appending, or -1. */
static int chat__file_replace(const char *path, const void *p, size_t n, int sync) {
    char tmp[4096];
    int fd;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (chat__file_append(fd, p, n, 0, sync) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return chat__file_open_append(path);
}

/* Moves a file the server cannot read out of the way, never over another: path.bad, path.bad.2 ...
   Writes the name it got into out. Returns 0 or -1. Where there are no hard links (FAT: EPERM)
   the name is claimed by an exclusive create and the file renamed over that empty one. */
static int chat__file_set_aside(const char *path, char *out, size_t cap) {
    int k, fd;
    for (k = 1; k < 1000; k++) {
        if (k == 1) snprintf(out, cap, "%s.bad", path);
        else snprintf(out, cap, "%s.bad.%d", path, k);
        if (link(path, out) == 0) return unlink(path) == 0 ? 0 : -1;
        if (errno == EEXIST) continue;
        fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST) continue;
        if (fd < 0) return -1;
        close(fd);
        if (rename(path, out) == 0) return 0;
        unlink(out);
        return -1;
    }
    return -1;
}

/* The file that path names, its symlinks followed (a compaction renames over the file, in its
   own directory, not over the link). CHAT_MALLOC'd; NULL with errno set when a link cannot be
   read (ELOOP: too many). A name that does not exist yet is itself. */
static char *chat__file_resolve(const char *path) {
    size_t n = strlen(path);
    char *cur = (char *)CHAT_MALLOC(n + 1), link_to[4096];
    int hops;
    if (!cur) return NULL;
    memcpy(cur, path, n + 1);
    for (hops = 0; hops < 40; hops++) {
        struct stat st;
        const char *slash;
        size_t dir;
        ssize_t k;
        char *next;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) return cur;
        k = readlink(cur, link_to, sizeof link_to - 1);
        if (k <= 0) break;
        slash = strrchr(cur, '/'); /* a relative link is relative to the link's directory */
        dir = link_to[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1;
        next = (char *)CHAT_MALLOC(dir + (size_t)k + 1);
        if (!next) break;
        memcpy(next, cur, dir), memcpy(next + dir, link_to, (size_t)k), next[dir + (size_t)k] = '\0';
        CHAT_FREE(cur);
        cur = next;
        if (hops == 39) errno = ELOOP;
    }
    CHAT_FREE(cur);
    return NULL;
}

static int chat__set_nonblock_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* accept4() sets both flags in the same call: one syscall per client instead of four, which
   counts in a join storm. Linux and the BSDs have it; glibc declares it only for _GNU_SOURCE,
   so elsewhere on Linux we declare it ourselves. Other systems use accept() + fcntl(). */
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC) && (defined(__linux__) || defined(__FreeBSD__)) && \
    !defined(CHAT_NO_ACCEPT4)
#if defined(__linux__) && !defined(_GNU_SOURCE)
extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
#endif
static int chat__accept(int listener) { return accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }
#else
static int chat__accept(int listener) {
    int fd = accept(listener, NULL, NULL);
    if (fd >= 0 && chat__set_nonblock_cloexec(fd) < 0) {
        close(fd);
        errno = EINTR; /* "try the next one" */
        return -1;
    }
    return fd;
}
#endif

/* Bounds the kernel's buffers too: without it the kernel grows a socket's send buffer to
   megabytes for a client that never reads, outside every bound of ours. */
static void chat__socket_tune(int fd, int sndbuf, int rcvbuf) {
    int one = 1;
    /* Frames are corked per loop turn by us; Nagle would only add latency on top. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sndbuf > 0) (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (rcvbuf > 0) (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
#ifdef SO_NOSIGPIPE
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
}

/* With `reset`, the kernel drops what is still queued and sends RST: a peer we give up on (too
   slow, timed out) must not leave an orphan holding its send buffer for minutes. */
static void chat__socket_close(int fd, int reset) {
    if (reset) {
        struct linger lg;
        lg.l_onoff = 1, lg.l_linger = 0;
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
}

/* A peer's address as 16 bytes (IPv4 as ::ffff:a.b.c.d), the key of the per-address limits. */
typedef struct chat__addr {
    unsigned char b[16];
} chat__addr;

static int chat__addr_parse(const char *text, chat__addr *out) {
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET6, text, out->b) == 1) return 0;
    out->b[10] = out->b[11] = 0xFF;
    return inet_pton(AF_INET, text, out->b + 12) == 1 ? 0 : -1;
}

static int chat__peer_addr(int fd, chat__addr *out) {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } a;
    socklen_t len = sizeof a;
    memset(out, 0, sizeof *out);
    if (getpeername(fd, &a.sa, &len) < 0) return -1;
    if (a.sa.sa_family == AF_INET6) {
        memcpy(out->b, &a.in6.sin6_addr, 16);
    } else if (a.sa.sa_family == AF_INET) {
        out->b[10] = out->b[11] = 0xFF;
        memcpy(out->b + 12, &a.in4.sin_addr, 4);
    } /* else (a Unix socket in tests): all zero, one "address" */
    return 0;
}

/* Numeric text of an address; IPv4 without the ::ffff: prefix. */
static void chat__addr_text(const chat__addr *a, char *out, size_t cap) {
    static const unsigned char v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (memcmp(a->b, v4, 12) == 0) inet_ntop(AF_INET, a->b + 12, out, (socklen_t)cap);
    else inet_ntop(AF_INET6, a->b, out, (socklen_t)cap);
}

/* The stop request crosses threads (and signal handlers): a lock-free atomic where the compiler
   has one (C99 has no <stdatomic.h>), else the volatile sig_atomic_t that C99 promises. */
#if defined(__GNUC__) || defined(__clang__)
typedef int chat__flag;
#define CHAT__FLAG_SET(f) __atomic_store_n(&(f), 1, __ATOMIC_SEQ_CST)
#define CHAT__FLAG_GET(f) __atomic_load_n(&(f), __ATOMIC_SEQ_CST)
#else
typedef volatile sig_atomic_t chat__flag;
#define CHAT__FLAG_SET(f) ((f) = 1)
#define CHAT__FLAG_GET(f) (f)
#endif

static int chat__would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

/* The self-wakeup pipes: chat_server_post writes one pointer per call into one, chat_server_stop
   a byte into the other (a stop must not wait behind thousands of posts). */
static int chat__wake_pipe(int *rd, int *wr) {
    int p[2];
    if (pipe(p) < 0) return -1;
    *rd = p[0], *wr = p[1];
    return chat__set_nonblock_cloexec(p[0]) < 0 || chat__set_nonblock_cloexec(p[1]) < 0 ? -1 : 0;
}

static ssize_t chat__wake_read(int fd, void *p, size_t n) { return read(fd, p, n); }
static int chat__wake_write(int fd, const void *p, size_t n) { return write(fd, p, n) == (ssize_t)n ? 0 : -1; }

static int chat__listen_fd(int family, const struct sockaddr *addr, socklen_t len) {
    int fd = socket(family, SOCK_STREAM, 0), one = 1, zero = 0, saved;
    if (fd < 0) return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef IPV6_V6ONLY
    if (family == AF_INET6) (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
#endif
    (void)zero;
    if (chat__set_nonblock_cloexec(fd) == 0 && bind(fd, addr, len) == 0 && listen(fd, CHAT__LISTEN_BACKLOG) == 0)
        return fd;
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* A listening socket on address:port (NULL or "": every interface, IPv6 dual-stack when the
   system has IPv6, else IPv4); *bound_port gets the port (the one picked for port 0). */
static int chat__listen_socket(const char *address, int port, int *out_fd, int *bound_port) {
    int fd = -1;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    if (!address || !*address) { /* [::] accepts IPv4 too; fall back to 0.0.0.0 without IPv6 */
        addr.in6.sin6_family = AF_INET6;
        addr.in6.sin6_port = htons((unsigned short)port);
        addr.in6.sin6_addr = in6addr_any;
        fd = chat__listen_fd(AF_INET6, &addr.sa, sizeof addr.in6);
        if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL || errno == EPROTONOSUPPORT)) {
            memset(&addr, 0, sizeof addr);
            addr.in4.sin_family = AF_INET;
            addr.in4.sin_port = htons((unsigned short)port);
            addr.in4.sin_addr.s_addr = htonl(INADDR_ANY);
            fd = chat__listen_fd(AF_INET, &addr.sa, sizeof addr.in4);
        }
        if (fd < 0) return CHAT_ESYS;
    } else {
        struct addrinfo hints, *res, *ai;
        char service[8];
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        snprintf(service, sizeof service, "%d", port);
        if (getaddrinfo(address, service, &hints, &res) != 0) return CHAT_EADDR;
        for (ai = res; ai && fd < 0; ai = ai->ai_next) fd = chat__listen_fd(ai->ai_family, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(res);
        if (fd < 0) return CHAT_ESYS;
    }
    *bound_port = 0;
    if (getsockname(fd, &addr.sa, &len) == 0)
        *bound_port = ntohs(addr.sa.sa_family == AF_INET6 ? addr.in6.sin6_port : addr.in4.sin_port);
    *out_fd = fd;
    return CHAT_OK;
}

static void chat__fd_close(int fd) {
    if (fd >= 0) close(fd);
}

/* What is left to a system without MSG_NOSIGNAL or SO_NOSIGPIPE: ignore SIGPIPE process-wide,
   unless the program has a handler of its own. */
static void chat__sigpipe_ignore(void) {
#ifdef CHAT__IGNORE_SIGPIPE
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
#endif
}

static int chat__poll(struct pollfd *fds, unsigned n, int timeout_ms) { return poll(fds, (nfds_t)n, timeout_ms); }

/* --- readiness on Linux: epoll ---
   poll() hands the kernel the whole set each turn: it visits every socket, joins and leaves
   every socket's wait queue, and the server then scans every slot for what happened. epoll keeps
   the set in the kernel and reports only what is ready, so a turn costs what happened in it, not
   what is watched: a room of 10,000 idle members costs nothing when one of them speaks. The
   set is level-triggered, changed only when what a socket waits for changes. */
#define CHAT__EPOLL_EVENTS 256 /* ready descriptors taken per wait; more wait for the next turn */
#ifdef CHAT__EPOLL
typedef struct epoll_event chat__ready;
static int chat__ready_open(void) { return epoll_create1(EPOLL_CLOEXEC); }
static uint32_t chat__ready_mask(short events) {
    return (events & POLLIN ? (uint32_t)EPOLLIN : 0) | (events & POLLOUT ? (uint32_t)EPOLLOUT : 0);
}
/* Adds (EPOLL_CTL_ADD), changes (_MOD) or drops (_DEL) fd; 0 or -1. */
static int chat__ready_watch(int set, int op, int fd, short events) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = chat__ready_mask(events);
    ev.data.fd = fd;
    return epoll_ctl(set, op, fd, &ev);
}
static int chat__ready_wait(int set, chat__ready *out, int cap, int timeout_ms) { return epoll_wait(set, out, cap, timeout_ms); }
static int chat__ready_fd(const chat__ready *r) { return r->data.fd; }
static short chat__ready_revents(const chat__ready *r) {
    return (short)((r->events & EPOLLIN ? POLLIN : 0) | (r->events & EPOLLOUT ? POLLOUT : 0) |
                   (r->events & EPOLLERR ? POLLERR : 0) | (r->events & EPOLLHUP ? POLLHUP : 0));
}
#endif

/* --- the default transport: the socket itself --- */

static long chat__posix_read(void *user, int fd, void *buf, size_t len) {
    (void)user;
    return (long)recv(fd, buf, len, 0);
}

static long chat__posix_write(void *user, int fd, const chat_iovec *iov, int count) {
    struct iovec v[CHAT__IOV_MAX];
    struct msghdr m;
    int i;
    (void)user;
    if (count == 1) return (long)send(fd, iov[0].base, iov[0].len, CHAT__SEND_FLAGS); /* no msghdr to copy in */
    if (count > CHAT__IOV_MAX) count = CHAT__IOV_MAX;
    for (i = 0; i < count; i++) v[i].iov_base = (void *)(uintptr_t)iov[i].base, v[i].iov_len = iov[i].len;
    memset(&m, 0, sizeof m);
    m.msg_iov = v;
    m.msg_iovlen = count;
    return (long)sendmsg(fd, &m, CHAT__SEND_FLAGS);
}

static int chat__posix_shutdown(void *user, int fd) {
    (void)user;
    return shutdown(fd, SHUT_WR);
}

static void chat__posix_close(void *user, int fd, int reset) {
    (void)user;
    chat__socket_close(fd, reset);
}

#ifndef CHAT_NO_MQTT
/* --- outgoing connections (the MQTT bridge's broker link) --- */

typedef struct chat__netaddr {
    struct sockaddr_storage ss;
    socklen_t len;
} chat__netaddr;

/* Up to cap addresses of host:port. A name is looked up here, and the lookup blocks the loop
   while the resolver works (an address or a name in /etc/hosts does not wait). Returns how many,
   or -1 with *why set. */
static int chat__net_resolve(const char *host, int port, chat__netaddr *out, int cap, const char **why) {
    struct addrinfo hints, *res, *ai;
    char service[8];
    int n = 0, r;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    r = getaddrinfo(host, service, &hints, &res);
    if (r != 0) {
        *why = gai_strerror(r);
        return -1;
    }
    for (ai = res; ai && n < cap; ai = ai->ai_next)
        if (ai->ai_addrlen <= sizeof out[n].ss) memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen), out[n].len = ai->ai_addrlen, n++;
    freeaddrinfo(res);
    if (!n) *why = "no address";
    return n ? n : -1;
}

/* A non-blocking socket connecting to a (poll it for writing, then ask chat__net_connect_error);
   -1 with errno when it failed at once. */
static int chat__net_connect(const chat__netaddr *a) {
    int fd = socket(a->ss.ss_family, SOCK_STREAM, 0), saved;
    if (fd < 0) return -1;
    if (chat__set_nonblock_cloexec(fd) == 0 &&
        (connect(fd, (const struct sockaddr *)(const void *)&a->ss, a->len) == 0 || errno == EINPROGRESS || errno == EINTR)) {
        chat__socket_tune(fd, -1, -1); /* TCP_NODELAY (and SO_NOSIGPIPE where there is no MSG_NOSIGNAL) */
        return fd;
    }
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* How the connect of fd ended: 0 connected, else the errno it failed with. */
static int chat__net_connect_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
}

/* This machine's name, for the default node id; "" when it has none. */
static void chat__host_name(char *out, size_t cap) {
    if (gethostname(out, cap) != 0) out[0] = '\0';
    out[cap - 1] = '\0';
}
#endif

/* ============================================================================================ */
/* tls: the mbedTLS adapter (CHAT_TLS_MBEDTLS), a transport made of the socket calls above     */
/* ============================================================================================ */

#ifdef CHAT_TLS_MBEDTLS
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h> /* its error codes only: the bytes go through the platform */
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#if MBEDTLS_VERSION_MAJOR != 2 || MBEDTLS_VERSION_MINOR < 28
#error "chat.h: the mbedTLS adapter is written and tested for mbedTLS 2.28 (Debian 12: libmbedtls-dev); other versions differ in its API (3.x: key parsing, version setting)"
#endif

/* Forward secrecy and AEAD only. */
static const int chat__tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,       MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,       MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0};

/* The key exchange's curves, cheapest first: mbedTLS's own order starts at P-521, which costs a
   board ten times X25519 per handshake for no safety a chat needs. */
static const mbedtls_ecp_group_id chat__tls_curves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                                         MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};

/* One per connection, made when its first bytes arrive (a silent peer costs a table slot). No cap
   of its own on handshakes under way: one that stalls is an HTTP connection to the server, reset
   by the handshake timer and the first to give way at max_connections; a cap would let a few
   stalled ClientHellos lock every newcomer out. */
typedef struct chat__tls_conn {
    mbedtls_ssl_context ssl;
    int fd;
    int open;    /* the handshake is done */
    size_t held; /* bytes of a record encrypted but not sent yet: offered again, not counted */
} chat__tls_conn;

struct chat_tls {
    chat_transport io;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_ticket_context ticket;
    chat__tls_conn **by_fd; /* the transport's calls name a connection by its descriptor */
    unsigned cap;
    unsigned char stage[MBEDTLS_SSL_OUT_CONTENT_LEN]; /* a write vector gathered into one record */
};

static int chat__tls_send(void *ctx, const unsigned char *p, size_t n) {
    chat_iovec v;
    long r;
    v.base = p, v.len = n;
    r = chat__posix_write(NULL, ((chat__tls_conn *)ctx)->fd, &v, 1);
    if (r >= 0) return (int)r;
    return chat__would_block(errno) ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int chat__tls_recv(void *ctx, unsigned char *p, size_t n) {
    long r = chat__posix_read(NULL, ((chat__tls_conn *)ctx)->fd, p, n);
    if (r >= 0) return (int)r;
    return chat__would_block(errno) ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED;
}

static chat__tls_conn *chat__tls_conn_of(chat_tls *t, int fd) {
    return fd >= 0 && (unsigned)fd < t->cap ? t->by_fd[fd] : NULL;
}

static int chat__tls_open(void *user, int fd) {
    chat_tls *t = (chat_tls *)user;
    if (fd < 0) return -1;
    if ((unsigned)fd >= t->cap) {
        unsigned cap = (unsigned)fd + 64, i;
        chat__tls_conn **p = (chat__tls_conn **)CHAT_REALLOC(t->by_fd, cap * sizeof *p);
        if (!p) return -1;
        for (i = t->cap; i < cap; i++) p[i] = NULL;
        t->by_fd = p, t->cap = cap;
    }
    CHAT_ASSERT(!t->by_fd[fd]); /* close comes before a descriptor is used again */
    return 0;
}

static int chat__tls_handshake(void *user, int fd) {
    chat_tls *t = (chat_tls *)user;
    chat__tls_conn *c = chat__tls_conn_of(t, fd);
    int r;
    if (!c) {
        c = (chat__tls_conn *)CHAT_MALLOC(sizeof *c);
        if (!c) return errno = ENOMEM, -1;
        memset(c, 0, sizeof *c);
        c->fd = fd;
        mbedtls_ssl_init(&c->ssl);
        t->by_fd[fd] = c;
        if (mbedtls_ssl_setup(&c->ssl, &t->conf) != 0) return errno = ENOMEM, -1; /* its buffers */
        mbedtls_ssl_set_bio(&c->ssl, c, chat__tls_send, chat__tls_recv, NULL);
    }
    r = mbedtls_ssl_handshake(&c->ssl);
    if (r == MBEDTLS_ERR_SSL_WANT_READ) return CHAT_WATCH_READ;
    if (r == MBEDTLS_ERR_SSL_WANT_WRITE) return CHAT_WATCH_WRITE;
    if (r != 0) return errno = EPROTO, -1; /* not TLS, an old version, no common suite, ... */
    c->open = 1;
    return 0;
}

static long chat__tls_read(void *user, int fd, void *buf, size_t len) {
    chat__tls_conn *c = chat__tls_conn_of((chat_tls *)user, fd);
    int r = mbedtls_ssl_read(&c->ssl, (unsigned char *)buf, len);
    if (r >= 0) return r; /* 0: the peer closed without a close_notify -- the end all the same */
    if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return 0;
    errno = r == MBEDTLS_ERR_SSL_WANT_READ ? EAGAIN : r == MBEDTLS_ERR_SSL_WANT_WRITE ? EPROTO : ECONNRESET;
    return -1;
}

/* bytes from the front of a vector, from `skip` on, at most cap */
static size_t chat__tls_gather(unsigned char *out, size_t cap, const chat_iovec *iov, int count, size_t skip) {
    size_t n = 0;
    int i;
    for (i = 0; i < count && n < cap; i++) {
        size_t k;
        if (skip >= iov[i].len) {
            skip -= iov[i].len;
            continue;
        }
        k = CHAT__MIN(iov[i].len - skip, cap - n);
        memcpy(out + n, (const unsigned char *)iov[i].base + skip, k);
        n += k, skip = 0;
    }
    return n;
}

/* The queue goes out as few records as it fits in (one per turn for a chat's small frames). A
   record mbedTLS could not send yet is not counted: the same bytes come again, as it asks. */
static long chat__tls_write(void *user, int fd, const chat_iovec *iov, int count) {
    chat_tls *t = (chat_tls *)user;
    chat__tls_conn *c = chat__tls_conn_of(t, fd);
    size_t taken = 0, n;
    while ((n = chat__tls_gather(t->stage, c->held ? c->held : sizeof t->stage, iov, count, taken)) > 0) {
        int r = mbedtls_ssl_write(&c->ssl, t->stage, n);
        if (r == MBEDTLS_ERR_SSL_WANT_WRITE) {
            c->held = n;
            break;
        }
        if (r < 0) {
            if (taken) break;
            errno = r == MBEDTLS_ERR_SSL_WANT_READ ? EPROTO : ECONNRESET;
            return -1;
        }
        c->held = 0;
        taken += (size_t)r;
    }
    if (!taken) errno = EAGAIN;
    return taken ? (long)taken : -1;
}

static int chat__tls_shutdown(void *user, int fd) {
    chat__tls_conn *c = chat__tls_conn_of((chat_tls *)user, fd);
    if (c && c->open) (void)mbedtls_ssl_close_notify(&c->ssl); /* best effort: the FIN follows */
    return chat__posix_shutdown(NULL, fd);
}

static void chat__tls_close(void *user, int fd, int reset) {
    chat_tls *t = (chat_tls *)user;
    chat__tls_conn *c = chat__tls_conn_of(t, fd);
    if (c) {
        mbedtls_ssl_free(&c->ssl);
        CHAT_FREE(c);
        t->by_fd[fd] = NULL;
    }
    chat__posix_close(NULL, fd, reset);
}

static size_t chat__tls_pending(void *user, int fd) {
    chat__tls_conn *c = chat__tls_conn_of((chat_tls *)user, fd);
    return c && c->open ? mbedtls_ssl_get_bytes_avail(&c->ssl) : 0;
}

static chat_tls *chat__tls_fail(chat_tls *t, char *err, size_t cap, const char *what, const char *file, int code) {
    char why[128];
    mbedtls_strerror(code, why, sizeof why);
    if (err && cap) snprintf(err, cap, "%s%s%s (%s)", file ? file : "", file ? ": " : "", what, why);
    chat_tls_free(t);
    return NULL;
}

CHATDEF chat_tls *chat_tls_create(const char *cert_file, const char *key_file, char *err, size_t cap) {
    chat_tls *t;
    int r;
    if (!cert_file || !key_file) {
        if (err && cap) snprintf(err, cap, "a certificate file and a key file are needed");
        return NULL;
    }
    t = (chat_tls *)CHAT_MALLOC(sizeof *t);
    if (!t) return chat__tls_fail(NULL, err, cap, "out of memory", NULL, 0);
    memset(t, 0, sizeof *t);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->cert);
    mbedtls_pk_init(&t->key);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_ssl_ticket_init(&t->ticket);
    t->io.open = chat__tls_open, t->io.read = chat__tls_read, t->io.write = chat__tls_write;
    t->io.shutdown = chat__tls_shutdown, t->io.close = chat__tls_close;
    t->io.handshake = chat__tls_handshake, t->io.pending = chat__tls_pending, t->io.user = t;
    if ((r = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, (const unsigned char *)"chat.h", 6)))
        return chat__tls_fail(t, err, cap, "no randomness for TLS", NULL, r);
    r = mbedtls_x509_crt_parse_file(&t->cert, cert_file);
    if (r > 0) r = MBEDTLS_ERR_X509_INVALID_FORMAT; /* some of the file's certificates were not */
    if (r) return chat__tls_fail(t, err, cap, "cannot load the certificate (PEM)", cert_file, r);
    if ((r = mbedtls_pk_parse_keyfile(&t->key, key_file, NULL)))
        return chat__tls_fail(t, err, cap, "cannot load the private key (PEM, unencrypted)", key_file, r);
    if ((r = mbedtls_pk_check_pair(&t->cert.pk, &t->key)))
        return chat__tls_fail(t, err, cap, "the key does not belong to the certificate", key_file, r);
    if ((r = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT)) ||
        (r = mbedtls_ssl_conf_own_cert(&t->conf, &t->cert, &t->key)) ||
        (r = mbedtls_ssl_ticket_setup(&t->ticket, mbedtls_ctr_drbg_random, &t->drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                      86400)))
        return chat__tls_fail(t, err, cap, "cannot set up TLS", NULL, r);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3); /* TLS 1.2 */
    mbedtls_ssl_conf_ciphersuites(&t->conf, chat__tls_suites);
    mbedtls_ssl_conf_curves(&t->conf, chat__tls_curves);
    mbedtls_ssl_conf_session_tickets_cb(&t->conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &t->ticket);
    return t;
}

CHATDEF const chat_transport *chat_tls_transport(chat_tls *tls) { return tls ? &tls->io : NULL; }

CHATDEF void chat_tls_free(chat_tls *t) {
    unsigned i;
    if (!t) return;
    for (i = 0; i < t->cap; i++)
        if (t->by_fd[i]) {
            mbedtls_ssl_free(&t->by_fd[i]->ssl);
            CHAT_FREE(t->by_fd[i]);
        }
    CHAT_FREE(t->by_fd);
    mbedtls_ssl_ticket_free(&t->ticket);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_pk_free(&t->key);
    mbedtls_x509_crt_free(&t->cert);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    CHAT_FREE(t);
}
#endif /* CHAT_TLS_MBEDTLS */


/* ============================================================================================ */
/* frames: bytes ready for the wire, encoded once and queued by reference by many              */
/* ============================================================================================ */

#define CHAT__FRAME_SHARED 0 /* refcounted bytes; count toward each recipient's backlog */
#define CHAT__FRAME_PINNED 1 /* an asset body: static bytes, never freed; costs its queue slot */
#define CHAT__FRAME_USERS 2  /* a user list: latest-state, at most one in flight per client */
#define CHAT__FRAME_REPLY 3  /* an answer the peer asked for (HTTP response, pong): while one is
                                unsent, the peer's further input waits */

/* Bytes ready for the wire (HTTP or WebSocket), queued by reference by any number of clients. */
typedef struct chat__frame {
    const unsigned char *data;
    size_t len;
    uint32_t refs;
    int kind;
    uint32_t out_era, out_at; /* where this turn's output holds a copy (see chat__conn_gather) */
} chat__frame;

/* What queuing a frame costs besides its bytes: the frame's header, the allocator's own header
   and the queue slot. Counted in the backlog, so a flood of tiny frames is bounded too. */
#define CHAT__FRAME_COST ((uint32_t)(sizeof(chat__frame) + 2 * sizeof(void *) + 16))

static uint32_t chat__hash(const char *s, size_t n) { /* FNV-1a */
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* A frame of head + body, allocated in one block with one reference (the creator's). */
static chat__frame *chat__frame_new(const void *head, size_t head_len, const void *body, size_t body_len, int kind) {
    chat__frame *f;
    unsigned char *data;
    if (body_len > (size_t)-1 - sizeof *f - head_len) return NULL;
    f = (chat__frame *)CHAT_MALLOC(sizeof *f + head_len + body_len);
    if (!f) return NULL;
    data = (unsigned char *)(f + 1);
    if (head_len) memcpy(data, head, head_len);
    if (body_len) memcpy(data + head_len, body, body_len);
    f->data = data, f->len = head_len + body_len, f->refs = 1, f->kind = kind;
    f->out_era = f->out_at = 0;
    return f;
}

static chat__frame *chat__frame_ws(int opcode, const void *payload, size_t n, int kind) {
    unsigned char head[CHAT_WS_MAX_HEADER];
    return chat__frame_new(head, chat_ws_header(head, opcode, n, NULL), payload, n, kind);
}

static void chat__frame_release(chat__frame *f) {
    if (f->kind == CHAT__FRAME_PINNED) return;
    CHAT_ASSERT(f->refs > 0);
    if (--f->refs == 0) CHAT_FREE(f);
}

/* What a queued frame counts in its recipient's backlog. A user list is not counted: there is at
   most one in flight per client. */
static uint32_t chat__frame_cost(const chat__frame *f) {
    if (f->kind == CHAT__FRAME_USERS) return 0;
    return CHAT__FRAME_COST + (f->kind == CHAT__FRAME_PINNED ? 0 : (uint32_t)f->len);
}

/* ============================================================================================ */
/* room: members by name and in join order, user lists, history; reached through one outlet  */
/* ============================================================================================ */

/* The room knows its members only as chat__member: a local connection embeds one, and so can
   anything else that can take frames (a test double, a user on another board). It reaches them
   through one outlet: deliver a frame to a member, a member has left. Leaving is deferred: a
   member marked to leave is out of the list, the names and the count at once, but it is
   unlinked, and `left` is called, only in chat__room_settle, at the end of the server's turn --
   never inside a delivery loop, so a loop over members needs no care for members that go. */

/* 40 bytes on a 64-bit system, in every connection: the name's hash is computed again where it
   is needed (a lookup, a rehash) rather than kept, and a name is at most 65,535 bytes. */
typedef struct chat__member {
    char *name; /* NUL-terminated UTF-8, owned by the room from join to settle */
    struct chat__member *hash_next, *prev, *next;
    unsigned users_version;       /* the version of the last user list handed to it */
    uint16_t name_len;
    unsigned char users_inflight; /* that list is not yet written: no newer one until it is */
    unsigned char leaving;        /* marked by chat__room_leave_later */
#ifndef CHAT_NO_MQTT
    unsigned char remote; /* a user of another board (the MQTT bridge): listed, never sent frames */
#endif
} chat__member;

#define CHAT__NAME_MAX 65535 /* what chat__member.name_len holds: the most max_name can be */



typedef struct chat__words chat__words;

typedef struct chat__room_outlet {
    /* Queues f for m, taking a reference if it keeps it; CHAT_OK when it will go out. It must
       not call back into the room except chat__room_leave_later. */
    int (*deliver)(void *user, chat__member *m, chat__frame *f);
    /* m is out of the room (called from chat__room_settle; m->name still valid). */
    void (*left)(void *user, chat__member *m);
    /* A message was said, with this id (NULL: nobody keeps the record, e.g. a history file). */
    void (*said)(void *user, const struct chat__words *w, uint64_t id);
    void *user;
} chat__room_outlet;

/* What someone says to the room (or to one member: then id is 0). */
struct chat__words {
    const char *name;
    size_t name_len;
    const void *text;
    size_t text_len;
    const char *cid; /* the sender's own id for it (at most CHAT__CID_MAX bytes); NULL: none */
    size_t cid_len;
    uint64_t time_ms; /* the server's wall clock when it accepted the message */
};

#define CHAT__CID_MAX 64

/* One message of the history: the frame everyone got, and the same message flagged as a replay,
   made the first time someone needs it. The spans say where the encoded name and cid sit in
   `live`, so a repeat of (name, cid) is recognised exactly. */
typedef struct chat__said {
    chat__frame *live, *replayed;
    uint64_t id;
    uint32_t cid_hash; /* of name and cid; 0: said without a cid */
    uint32_t name_at, name_n, cid_at, cid_n;
} chat__said;

typedef struct chat__room {
    chat__room_outlet out;
    chat__member **buckets; /* members by name (hash with chaining) */
    unsigned nbuckets;
    chat__member *first, *last; /* in join order, leaving ones too until settled */
    int count;                  /* members not leaving */
    int leaving;                /* members marked to leave, not yet settled */
    int delivering;             /* inside a loop over members: no callback may run */
    unsigned version;           /* bumped by every join and leave */
    unsigned frame_version;     /* the version users_frame shows */
    int handout;                /* some member may need users_frame */
    chat__ms not_before;        /* no new list before this: see chat__room_publish_users */
    chat__frame *users_frame;
    chat__said *history; /* the last history_cap messages, oldest first from history_head; their
                            ids follow each other, so the one after id X is found by arithmetic */
    int history_cap, history_head, history_count;
    uint64_t next_id;            /* the id of the next message said */
    unsigned long long messages; /* said in the room */
    chat_buf json;               /* an event being encoded */
} chat__room;

static unsigned chat__room_bucket(const chat__room *r, const char *name, size_t n) {
    return chat__hash(name, n) & (r->nbuckets - 1);
}

/* A room keeping the last `history` messages; the first message said gets id first_id. */
static int chat__room_init(chat__room *r, const chat__room_outlet *out, int history, uint64_t first_id) {
    memset(r, 0, sizeof *r);
    r->out = *out;
    r->next_id = first_id ? first_id : 1;
    r->history_cap = history > 0 ? history : 0;
    if (r->history_cap) {
        r->history = (chat__said *)CHAT_MALLOC((size_t)r->history_cap * sizeof *r->history);
        if (!r->history) return CHAT_ENOMEM;
    }
    return CHAT_OK;
}

static chat__said *chat__room_held(const chat__room *r, int k) { /* k-th oldest held message */
    return &r->history[(r->history_head + k) % r->history_cap];
}

static void chat__said_release(chat__said *s) {
    chat__frame_release(s->live);
    if (s->replayed) chat__frame_release(s->replayed);
    memset(s, 0, sizeof *s);
}

/* Frees what the room owns: frames, the index, the names of members still in it. */
static void chat__room_free(chat__room *r) {
    chat__member *m;
    int k;
    for (m = r->first; m; m = m->next) CHAT_FREE(m->name), m->name = NULL;
    if (r->users_frame) chat__frame_release(r->users_frame);
    for (k = 0; k < r->history_count; k++) chat__said_release(chat__room_held(r, k));
    CHAT_FREE(r->history);
    CHAT_FREE(r->buckets);
    chat_buf_free(&r->json);
    memset(r, 0, sizeof *r);
}

/* The newest id given to a message (before any: one below the first). */
static uint64_t chat__room_top_id(const chat__room *r) { return r->next_id - 1; }

/* The member called `name` that is not leaving, or NULL. */
static chat__member *chat__room_find(const chat__room *r, const char *name, size_t n) {
    chat__member *m;
    if (!r->nbuckets) return NULL;
    for (m = r->buckets[chat__room_bucket(r, name, n)]; m; m = m->hash_next)
        if (m->name_len == n && !m->leaving && memcmp(m->name, name, n) == 0) return m;
    return NULL;
}

static int chat__room_grow(chat__room *r) {
    unsigned nb = r->nbuckets ? r->nbuckets * 2 : 64;
    chat__member **b = (chat__member **)CHAT_MALLOC(nb * sizeof *b), *m;
    if (!b) return CHAT_ENOMEM;
    memset(b, 0, nb * sizeof *b);
    for (m = r->first; m; m = m->next) {
        unsigned k = chat__hash(m->name, m->name_len) & (nb - 1);
        m->hash_next = b[k];
        b[k] = m;
    }
    CHAT_FREE(r->buckets);
    r->buckets = b, r->nbuckets = nb;
    return CHAT_OK;
}

/* Adds m under `name` (owned from now on). The caller checked that the name is free. */
static int chat__room_join(chat__room *r, chat__member *m, char *name, size_t n) {
    unsigned b;
    if ((unsigned)(r->count + r->leaving) >= r->nbuckets && chat__room_grow(r) != CHAT_OK && !r->nbuckets)
        return CHAT_ENOMEM;
    memset(m, 0, sizeof *m);
    if (n > CHAT__NAME_MAX) return CHAT_EINVAL;
    m->name = name, m->name_len = (uint16_t)n;
    b = chat__room_bucket(r, name, n);
    m->hash_next = r->buckets[b];
    r->buckets[b] = m;
    m->prev = r->last;
    if (r->last) r->last->next = m;
    else r->first = m;
    r->last = m;
    r->count++;
    r->version++;
    return CHAT_OK;
}

/* `fresh` takes old's place (its name, its place in the join order) at once, as if it had been
   there all along: nobody sees a leave or a join, and the list is unchanged. Only `fresh` is
   handed the list again. `old` is no member any more, and the outlet is not told it left. */
static void chat__room_replace(chat__room *r, chat__member *old, chat__member *fresh) {
    chat__member **pp;
    *fresh = *old;
    for (pp = &r->buckets[chat__room_bucket(r, old->name, old->name_len)]; *pp != old; pp = &(*pp)->hash_next) {}
    *pp = fresh;
    if (fresh->prev) fresh->prev->next = fresh;
    else r->first = fresh;
    if (fresh->next) fresh->next->prev = fresh;
    else r->last = fresh;
    fresh->users_version = r->frame_version - 1, fresh->users_inflight = 0;
    r->handout = 1;
    memset(old, 0, sizeof *old);
}

/* Marks m to leave: from now on it gets nothing, is not listed, and its name is free. Safe
   anywhere, also inside a delivery loop; the rest happens in chat__room_settle. */
static void chat__room_leave_later(chat__room *r, chat__member *m) {
    if (m->leaving || !m->name) return; /* marked already, or not (any more) a member */
    m->leaving = 1;
    r->count--, r->leaving++;
    r->version++;
}

/* Unlinks the members marked to leave and tells the outlet, one by one. What `left` does
   (speak in the room, mark others to leave) is safe: the ones it marks are settled too. */
static void chat__room_settle(chat__room *r) {
    while (r->leaving) {
        chat__member *gone = NULL, **tail = &gone, *m, *next, **pp;
        CHAT_ASSERT(!r->delivering);
        for (m = r->first; m; m = next) { /* unlink them all first: `left` may walk the list */
            next = m->next;
            if (!m->leaving) continue;
            for (pp = &r->buckets[chat__room_bucket(r, m->name, m->name_len)]; *pp != m; pp = &(*pp)->hash_next) {}
            *pp = m->hash_next;
            if (m->prev) m->prev->next = m->next;
            else r->first = m->next;
            if (m->next) m->next->prev = m->prev;
            else r->last = m->prev;
            m->next = NULL, *tail = m, tail = &m->next; /* in join order */
            r->leaving--;
        }
        for (m = gone; m; m = next) {
            next = m->next;
            m->next = m->prev = m->hash_next = NULL;
            if (r->out.left) r->out.left(r->out.user, m);
            CHAT_FREE(m->name);
            m->name = NULL, m->name_len = 0, m->leaving = 0;
        }
    }
}

/* Hands f to every member; returns how many took it. */
static int chat__room_broadcast(chat__room *r, chat__frame *f) {
    chat__member *m;
    int n = 0;
    r->delivering++;
    for (m = r->first; m; m = m->next)
        if (!m->leaving && r->out.deliver(r->out.user, m, f) == CHAT_OK) n++;
    r->delivering--;
    return n;
}

static uint32_t chat__room_cid_hash(const char *name, size_t name_len, const char *cid, size_t cid_len) {
    uint32_t h = chat__hash(name, name_len) ^ (chat__hash(cid, cid_len) * 0x9E3779B1u);
    return h ? h : 1;
}

/* Appends v in decimal: every message's id and time (snprintf costs more than the rest of the
   frame's encoding). */
static int chat__room_put_u64(chat_buf *b, uint64_t v) {
    char digits[20];
    size_t n = sizeof digits;
    do digits[--n] = (char)('0' + v % 10); while (v /= 10);
    return chat_buf_append(b, digits + n, sizeof digits - n);
}

/* {"event":"send-message","username":NAME,"message":TEXT,"id":ID,"time":MS,"cid":CID}, encoded
   once: the tutorial's three members first, ours after them; no id when id is 0, no cid
   without one. With `at`, where the name and cid are in the frame. */
static chat__frame *chat__room_message(chat__room *r, const chat__words *w, uint64_t id, chat__said *at) {
    static const char a[] = "{\"event\":\"send-message\",\"username\":", b[] = ",\"message\":";
    size_t name_at, name_end, cid_at = 0, head;
    chat__frame *f;
    r->json.len = 0;
    if (chat_buf_append(&r->json, a, sizeof a - 1)) return NULL;
    name_at = r->json.len;
    if (chat_json_put_string(&r->json, w->name, w->name_len)) return NULL;
    name_end = r->json.len;
    if (chat_buf_append(&r->json, b, sizeof b - 1) || chat_json_put_string(&r->json, w->text, w->text_len)) return NULL;
    if ((id && (chat_buf_append(&r->json, ",\"id\":", 6) || chat__room_put_u64(&r->json, id))) ||
        chat_buf_append(&r->json, ",\"time\":", 8) || chat__room_put_u64(&r->json, w->time_ms))
        return NULL;
    if (w->cid) {
        if (chat_buf_append(&r->json, ",\"cid\":", 7)) return NULL;
        cid_at = r->json.len;
        if (chat_json_put_string(&r->json, w->cid, w->cid_len)) return NULL;
    }
    if (chat_buf_append(&r->json, "}", 1)) return NULL;
    f = chat__frame_ws(CHAT_WS_OP_TEXT, r->json.data, r->json.len, CHAT__FRAME_SHARED);
    if (f && at) {
        head = f->len - r->json.len;
        at->name_at = (uint32_t)(head + name_at), at->name_n = (uint32_t)(name_end - name_at);
        at->cid_at = w->cid ? (uint32_t)(head + cid_at) : 0;
        at->cid_n = w->cid ? (uint32_t)(r->json.len - 1 - cid_at) : 0;
        at->cid_hash = w->cid ? chat__room_cid_hash(w->name, w->name_len, w->cid, w->cid_len) : 0;
    }
    return f;
}

static void chat__room_keep(chat__room *r, chat__said *said) {
    if (r->history_cap > 0) { /* the history keeps the frame itself: no copy */
        if (r->history_count == r->history_cap) {
            chat__said_release(chat__room_held(r, 0));
            r->history_head = (r->history_head + 1) % r->history_cap;
            r->history_count--;
        }
        *chat__room_held(r, r->history_count++) = *said;
    } else {
        chat__frame_release(said->live);
    }
}

/* Says a message to everyone and keeps it in the history, with the next id. Returns the
   number of recipients, or CHAT_ENOMEM (then nothing was said and no id was used). */
static int chat__room_say(chat__room *r, const chat__words *w) {
    chat__said said;
    int n;
    memset(&said, 0, sizeof said);
    said.id = r->next_id;
    said.live = chat__room_message(r, w, said.id, &said);
    if (!said.live) return CHAT_ENOMEM;
    r->next_id++;
    if (r->out.said) r->out.said(r->out.user, w, said.id);
    n = chat__room_broadcast(r, said.live);
    r->messages++;
    chat__room_keep(r, &said);
    return n;
}

/* Puts a message said before (a history file's) back in the history as it was, without
   sending it; ids go on after it. Ids must come in increasing order. */
static int chat__room_restore(chat__room *r, const chat__words *w, uint64_t id) {
    chat__said said;
    memset(&said, 0, sizeof said);
    said.id = id;
    if (id < r->next_id && r->history_count) return CHAT_EINVAL;
    if (r->history_count && id != r->next_id) { /* a gap (compaction keeps ids apart): forget older */
        while (r->history_count) chat__said_release(chat__room_held(r, 0)), r->history_head = (r->history_head + 1) % r->history_cap, r->history_count--;
    }
    said.live = chat__room_message(r, w, id, &said);
    if (!said.live) return CHAT_ENOMEM;
    r->next_id = id + 1;
    chat__room_keep(r, &said);
    return CHAT_OK;
}

/* The held message that `name` said with this cid, or NULL: a client that sends a message again
   (it never saw it come back) must not have it said twice. */
static chat__said *chat__room_said_before(chat__room *r, const char *name, size_t name_len, const char *cid,
                                         size_t cid_len) {
    uint32_t h = chat__room_cid_hash(name, name_len, cid, cid_len);
    int k;
    for (k = r->history_count; k-- > 0;) {
        chat__said *s = chat__room_held(r, k);
        size_t name_enc;
        if (s->cid_hash != h) continue;
        r->json.len = 0;
        if (chat_json_put_string(&r->json, name, name_len)) return NULL;
        name_enc = r->json.len;
        if (chat_json_put_string(&r->json, cid, cid_len)) return NULL;
        if (s->name_n == name_enc && s->cid_n == r->json.len - name_enc &&
            memcmp(s->live->data + s->name_at, r->json.data, name_enc) == 0 &&
            memcmp(s->live->data + s->cid_at, r->json.data + name_enc, s->cid_n) == 0)
            return s;
    }
    return NULL;
}

/* The message as a replay: the same bytes with "replay":true added, made once and kept. */
static chat__frame *chat__room_replayed(chat__room *r, chat__said *s) {
    static const char flag[] = ",\"replay\":true}";
    size_t head;
    if (s->replayed) return s->replayed;
    /* the live frame is one unmasked text frame: its header is 2, 4 or 10 bytes by length */
    head = s->live->data[1] == 126 ? 4 : s->live->data[1] == 127 ? 10 : 2;
    r->json.len = 0;
    if (chat_buf_append(&r->json, s->live->data + head, s->live->len - head - 1) || /* without its '}' */
        chat_buf_append(&r->json, flag, sizeof flag - 1))
        return NULL;
    return s->replayed = chat__frame_ws(CHAT_WS_OP_TEXT, r->json.data, r->json.len, CHAT__FRAME_SHARED);
}

/* Hands m the held message s again, flagged as a replay. */
static int chat__room_replay_one(chat__room *r, chat__member *m, chat__said *s) {
    chat__frame *f = chat__room_replayed(r, s);
    int ok;
    if (!f) return CHAT_ENOMEM;
    r->delivering++;
    ok = m->leaving ? CHAT_EINVAL : r->out.deliver(r->out.user, m, f);
    r->delivering--;
    return ok;
}

/* What a member who has seen everything up to id `since` gets (a newcomer: since 0): the held
   messages after it, as many of the newest as fit in max_bytes (half its backlog, so a history
   of big messages cannot get it closed as too slow). Returns how many of the held ones to
   skip; *missing says whether some message after `since` will not come (no longer held, too
   big to fit, or `since` is not an id this room gave). */
static int chat__room_replay_plan(const chat__room *r, uint64_t since, size_t max_bytes, int *missing) {
    uint64_t oldest = r->next_id - (uint64_t)r->history_count, top = chat__room_top_id(r);
    size_t bytes = 0;
    int first = r->history_count, skip = 0, foreign = since > top;
    if (foreign) since = 0; /* not an id of ours: everything held, and say so */
    else if (since >= oldest) skip = (int)(since - oldest + 1);
    while (first > skip) {
        const chat__said *s = chat__room_held(r, first - 1);
        size_t len = s->live->len + 14; /* its replay is 14 bytes longer */
        if (bytes + len > max_bytes) break;
        bytes += len;
        first--;
    }
    *missing = foreign || (since < top && (first == r->history_count ? top : chat__room_held(r, first)->id - 1) > since);
    return first;
}

/* Replays the held messages from the `first` oldest on (see chat__room_replay_plan) to m. */
static void chat__room_replay(chat__room *r, chat__member *m, int first) {
    int i;
    for (i = first; i < r->history_count && !m->leaving; i++)
        if (chat__room_replay_one(r, m, chat__room_held(r, i)) != CHAT_OK) break;
}

/* The outlet wrote the user list m was handed: m may have a newer one. */
static void chat__room_users_written(chat__room *r, chat__member *m) {
    m->users_inflight = 0;
    if (m->users_version != r->version) r->handout = 1;
}

/* Once per turn: if the room changed, encode the new list once; hand it to every member that has
   no list in flight. A member with one in flight gets the newest when that one is written.
   A list costs O(users) bytes for each of O(users) members, and the kernel takes it at memcpy
   speed, so "in flight" alone does not slow a join storm of thousands down. New lists are
   therefore also spaced by their own cost: after one that handed out B bytes in all, the next
   waits B / CHAT__USERS_BYTES_PER_MS (64 MB/s of lists at most, a small part of a core), and at
   most CHAT__USERS_MAX_SPACING_MS. A room of 100 never notices (a few ms); join churn against a
   room of 200 costs tens of lists a second, not hundreds; a storm of 10,000 gets a new list
   about once a second. */
static void chat__room_publish_users(chat__room *r, chat__ms now) {
    chat__member *m;
    uint64_t sent = 0;
    if (r->frame_version != r->version && now >= r->not_before) {
        static const char head[] = "{\"event\":\"update-users\",\"usernames\":[";
        chat__frame *f;
        int listed = 0;
        r->json.len = 0;
        if (chat_buf_append(&r->json, head, sizeof head - 1)) return;
        for (m = r->first; m; m = m->next) {
            if (m->leaving) continue;
            if ((listed++ && chat_buf_append(&r->json, ",", 1)) || chat_json_put_string(&r->json, m->name, m->name_len))
                return;
        }
        if (chat_buf_append(&r->json, "]}", 2)) return;
        f = chat__frame_ws(CHAT_WS_OP_TEXT, r->json.data, r->json.len, CHAT__FRAME_USERS);
        if (!f) return;
        if (r->users_frame) chat__frame_release(r->users_frame);
        r->users_frame = f;
        r->frame_version = r->version;
        r->handout = 1;
    }
    if (!r->handout) return;
    r->handout = 0;
    r->delivering++;
    for (m = r->first; m; m = m->next) {
        if (m->leaving || m->users_inflight || m->users_version == r->frame_version) continue;
        m->users_version = r->frame_version;
        m->users_inflight = 1;
        if (r->out.deliver(r->out.user, m, r->users_frame) == CHAT_OK) sent += r->users_frame->len;
    }
    r->delivering--;
    { /* a late handout of the same list must not bring the next one forward */
        chat__ms next = now + (chat__ms)CHAT__MIN(sent / CHAT__USERS_BYTES_PER_MS, (uint64_t)CHAT__USERS_MAX_SPACING_MS);
        if (next > r->not_before) r->not_before = next;
    }
}

/* ============================================================================================ */
/* history file: the record format and its reader (pure: bytes in, records out)              */
/* ============================================================================================ */

/* The file: an 8-byte header ("CHAThst" and the format version), then one record per message:
     u32 payload length, u32 CRC-32 of the payload, then the payload:
     u64 id, u64 time (ms), u16 name length, u8 cid length, u8 0, the name, the cid, the text.
   Little-endian whatever the machine, so a file moves between boards. A record is appended
   whole or (after a power cut) torn at the end of the file; the reader drops a torn tail and
   refuses anything else that is not a record. */
#define CHAT__HFILE_MAGIC "CHAThst"
#define CHAT__HFILE_VERSION 1
#define CHAT__HFILE_HEAD 8
#define CHAT__HRECORD_FIXED 28 /* length, CRC, id, time, lengths */

static uint32_t chat__crc32(const unsigned char *p, size_t n) { /* IEEE 802.3, a nibble at a time */
    static const uint32_t t[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
                                   0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                   0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        c = (c >> 4) ^ t[c & 15];
        c = (c >> 4) ^ t[c & 15];
    }
    return c ^ 0xFFFFFFFFu;
}

static void chat__le_put(unsigned char *p, uint64_t v, int bytes) {
    int i;
    for (i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t chat__le_get(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    int i;
    for (i = bytes; i-- > 0;) v = v << 8 | p[i];
    return v;
}

/* Appends the record of a message said with this id. */
static int chat__hrecord_put(chat_buf *b, const chat__words *w, uint64_t id) {
    size_t payload = CHAT__HRECORD_FIXED - 8 + w->name_len + w->cid_len + w->text_len;
    unsigned char *p;
    if (w->name_len > 0xFFFF || w->cid_len > 0xFF || payload > 0xFFFFFFFFu) return CHAT_EINVAL;
    if (chat_buf_reserve(b, 8 + payload) != CHAT_OK) return CHAT_ENOMEM;
    p = b->data + b->len;
    chat__le_put(p, payload, 4);
    chat__le_put(p + 8, id, 8);
    chat__le_put(p + 16, w->time_ms, 8);
    chat__le_put(p + 24, w->name_len, 2);
    p[26] = (unsigned char)w->cid_len, p[27] = 0;
    if (w->name_len) memcpy(p + CHAT__HRECORD_FIXED, w->name, w->name_len);
    if (w->cid_len) memcpy(p + CHAT__HRECORD_FIXED + w->name_len, w->cid, w->cid_len);
    if (w->text_len) memcpy(p + CHAT__HRECORD_FIXED + w->name_len + w->cid_len, w->text, w->text_len);
    chat__le_put(p + 4, chat__crc32(p + 8, payload), 4);
    b->len += 8 + payload;
    return CHAT_OK;
}

/* One record at p[0..n): its length, 0 when it is not all there (a torn tail), -1 when it is
   not a record (bad length, checksum, UTF-8, or a name or cid that a live server refuses). The
   words point into p. */
static long chat__hrecord_parse(const unsigned char *p, size_t n, size_t max_payload, chat__words *w, uint64_t *id) {
    size_t payload, name_n, cid_n;
    if (n < 8) return 0;
    payload = (size_t)chat__le_get(p, 4);
    if (payload < CHAT__HRECORD_FIXED - 8 || payload > max_payload) return -1;
    if (n - 8 < payload) return 0;
    if ((uint32_t)chat__le_get(p + 4, 4) != chat__crc32(p + 8, payload)) return -1;
    name_n = (size_t)chat__le_get(p + 24, 2), cid_n = p[26];
    if (p[27] != 0 || name_n + cid_n > payload - (CHAT__HRECORD_FIXED - 8) || name_n == 0 || cid_n > CHAT__CID_MAX) return -1;
    memset(w, 0, sizeof *w);
    *id = chat__le_get(p + 8, 8);
    w->time_ms = chat__le_get(p + 16, 8);
    w->name = (const char *)p + CHAT__HRECORD_FIXED, w->name_len = name_n;
    w->cid = cid_n ? w->name + name_n : NULL, w->cid_len = cid_n;
    w->text = w->name + name_n + cid_n, w->text_len = payload - (CHAT__HRECORD_FIXED - 8) - name_n - cid_n;
    if (*id == 0 || !chat_utf8_valid(w->name, name_n) || !chat_utf8_valid(w->cid ? w->cid : "", cid_n) ||
        !chat_utf8_valid(w->text, w->text_len))
        return -1;
    return (long)(8 + payload);
}

/* What chat__hfile_scan found. */
typedef struct chat__hfile_scan_result {
    size_t good;           /* bytes of header and whole records: the file is cut here */
    size_t records;        /* whole records */
    int torn;              /* bytes after `good` were a torn record (or zeros): dropped */
    const char *problem;   /* not a history file, or a newer one: set aside (NULL: fine) */
    int prefix;            /* ... but the `records` before `good` are sound (damage, ids out of order) */
} chat__hfile_scan_result;

/* Reads a whole file (an empty one is a new file), handing each record to `each` in order
   (ids must go up). A torn tail -- an incomplete record, an invalid last one, or zeros, as a
   power cut leaves -- is dropped; anything else invalid makes the file a problem, and when it
   is damage or ids out of order, the records before it are a sound prefix (`prefix`): a power
   cut tears a whole turn's write, pages of it may be missing before others that are whole. */
static void chat__hfile_scan(const unsigned char *f, size_t n, size_t max_payload,
                             int (*each)(void *user, const chat__words *w, uint64_t id), void *user,
                             chat__hfile_scan_result *out) {
    size_t at = CHAT__HFILE_HEAD;
    uint64_t last = 0;
    memset(out, 0, sizeof *out);
    if (n == 0) return;
    if (n < CHAT__HFILE_HEAD && memcmp(f, CHAT__HFILE_MAGIC "\1", n) == 0) { /* cut while being made */
        out->torn = 1;
        return;
    }
    if (n < CHAT__HFILE_HEAD || memcmp(f, CHAT__HFILE_MAGIC, 7) != 0) {
        out->problem = "not a chat.h history file";
        return;
    }
    if (f[7] != CHAT__HFILE_VERSION) {
        out->problem = f[7] > CHAT__HFILE_VERSION ? "written by a newer chat.h" : "not a chat.h history file";
        return;
    }
    while (at < n) {
        chat__words w;
        uint64_t id;
        long len = chat__hrecord_parse(f + at, n - at, max_payload, &w, &id);
        if (len <= 0) {
            size_t k = at, declared = n - at >= 4 ? (size_t)chat__le_get(f + at, 4) : 0;
            while (k < n && f[k] == 0) k++;
            /* incomplete, or a bad record that is the file's last, or only zeros left: torn */
            if (len == 0 || k == n || (declared <= max_payload && n - at - 8 == declared)) {
                out->torn = 1;
                break;
            }
            out->problem = "a damaged record inside the file";
            out->good = at, out->prefix = 1;
            return;
        }
        if (id <= last) {
            out->problem = "message ids out of order";
            out->good = at, out->prefix = 1;
            return;
        }
        last = id;
        if (each && each(user, &w, id) != CHAT_OK) {
            out->problem = "out of memory while loading it";
            return;
        }
        at += (size_t)len;
        out->records++;
    }
    out->good = at > n ? n : at;
}

/* ============================================================================================ */
/* connections: the server's per-peer state, output queues, per-address limits              */
/* ============================================================================================ */

typedef enum chat__state {
    CHAT__HTTP,    /* reading HTTP requests */
    CHAT__OPEN,    /* WebSocket open */
    CHAT__CLOSING, /* our close frame or last response is queued; input is discarded */
    CHAT__LINGER,  /* all sent, our side shut down; discarding input until the peer closes */
    CHAT__DEAD     /* freed at the end of the loop turn */
} chat__state;

#define CHAT__C_FLUSH_LISTED 1u   /* on srv->flush_head */
#define CHAT__C_TOO_SLOW 2u       /* over max_backlog: said in the log when it is freed */
#define CHAT__C_PING_SENT 4u      /* waiting for any sign of life after our ping */
#define CHAT__C_JOINED 8u         /* a member of the room (until it is settled) */
#define CHAT__C_PEER_EOF 16u      /* the peer shut down its side */
#define CHAT__C_HELD 32u          /* complete input waits in rx until our replies are written */
#define CHAT__C_THROTTLED 64u     /* over max_byte_rate: not read until the next second */
#define CHAT__C_RESET 128u        /* given up on: closed with RST, so the kernel frees its buffers */
#define CHAT__C_VIA_PROXY 256u    /* the socket's peer is the trusted proxy */
#define CHAT__C_HANDSHAKE 512u    /* the transport's handshake is not done: no read or write yet */
#define CHAT__C_HS_WRITE 1024u    /* ... and it waits for the socket to be writable */
#define CHAT__C_PENDING 2048u     /* the transport holds input read from the socket already */

/* One per address with connections (or with joins in the current minute): the per-address
   limits. Behind the trusted proxy, the address it forwarded. */
typedef struct chat__peer {
    chat__addr addr;
    struct chat__peer *next; /* hash chain */
    uint32_t hash;
    uint32_t conns;       /* connections counted here */
    uint32_t join_minute; /* the minute (server clock) `joins` counts in */
    uint32_t joins;
} chat__peer;

/* One per TCP connection, so every byte counts: 10,000 idle clients should cost little more than
   this struct each (buffers are allocated only while in use). Sizes of buffers are 32-bit:
   max_message and max_backlog are capped at CHAT__MAX_BUFFER. */
typedef struct chat__conn {
    chat__ms deadline; /* by state: handshake or keep-alive idle, next ping or ping answer, close */
    union {
        struct {
            size_t scanned;   /* bytes searched for the end of the head */
            chat__ms expires; /* the end of this keep-alive connection's life */
            uint32_t requests;
        } http;              /* CHAT__HTTP */
        chat_ws_decoder ws; /* CHAT__OPEN */
    } u;
    /* Input not yet consumed: a partial request, frame or message, or input held back; exactly
       rx_len bytes. NULL between messages, so an idle connection owns no buffer. Bounded by
       max_header or max_message + a frame header, plus one read. */
    unsigned char *rx;
    /* Output: a ring of frame references, NULL when empty. Bounded by max_backlog. */
    chat__frame **q;
    struct chat__conn *flush_next;
    chat__peer *peer; /* the address this connection counts against; NULL: none (yet) */
    chat__member member; /* the room's part: only used while joined */
    int fd;
    unsigned slot; /* index in srv->pfds and srv->conns */
    uint32_t rx_len;
    uint32_t q_head, q_count, q_cap;
    uint32_t q_off;   /* bytes of the first frame already sent */
    uint32_t backlog; /* what the queued frames cost: bytes + CHAT__FRAME_COST each */
    uint32_t rate_second;   /* the second (server clock) the rate counts count in */
    uint32_t rate_count;    /* frames and requests received in that second */
    uint32_t rate_bytes;    /* bytes read in that second */
    uint32_t session;       /* while joined: the number its resume token is made from */
    uint16_t replies;       /* CHAT__FRAME_REPLY frames queued */
    uint16_t flags;         /* CHAT__C_* */
    unsigned char state;    /* chat__state */
} chat__conn;

#define CHAT__SLOT_LISTEN 0 /* the poll set's fixed slots */
#define CHAT__SLOT_POSTS 1
#define CHAT__SLOT_STOP 2
#ifndef CHAT_NO_MQTT
#define CHAT__SLOT_MQTT 3  /* the broker link of the MQTT bridge (fd -1 while there is none) */
#define CHAT__SLOT_CONNS 4 /* the first connection */
#else
#define CHAT__SLOT_CONNS 3
#endif

typedef struct chat__asset {
    char *path; /* owned copies */
    char *type;
    chat__frame body; /* CHAT__FRAME_PINNED over the caller's bytes */
} chat__asset;

enum { CHAT__RUNNING, CHAT__STOPPING, CHAT__STOPPED };

struct chat_server {
    chat_config cfg; /* with defaults filled in */
    chat_transport io; /* cfg.transport's functions, the defaults where it has none */
    int *slot_of_fd;   /* fd -> poll slot: what epoll and chat_server_process report is by fd */
    unsigned slot_of_fd_cap;
    unsigned *ready;   /* slots of connections with something to handle this turn (cap entries) */
    unsigned nready;
    int ready_set;     /* the epoll set; -1: poll() (CHAT__READY_UNTRIED: not yet needed) */
    int listen_fd, port, wake_rd, wake_wr, stop_rd, stop_wr;
    chat__flag stop_requested; /* set by chat_server_stop when its pipe is full */
    int phase, in_poll, accept_paused, resume_pending;
    int read_pending; /* a connection may read what its transport holds: a turn without waiting */
    chat__ms now, next_sweep, stop_deadline, accept_resume;
    /* The poll set: the listener, the posts' pipe, the stop pipe, then connections, compact. */
    struct pollfd *pfds;
    chat__conn **conns;
    unsigned nfds, cap, dead_count;
    chat__conn *flush_head; /* connections with output queued this turn */
    chat__asset **assets;
    int nassets;
    /* Connections by address (hash with chaining), for the per-address limits. */
    chat__peer **peers;
    unsigned npeer_buckets, npeers, peers_idle; /* idle: entries kept only for their joins */
    chat__addr proxy;                           /* cfg.trusted_proxy, parsed */
    chat__room room;
    chat_stats stats;   /* the counters; the gauges are computed by chat_server_stats */
    unsigned long long closed_slow_logged; /* stats.closed_slow when their log lines were written */
    chat__ms started;
    int log_tokens;     /* lines the log may still write now; refilled 10 a second, up to 50 */
    chat__ms log_refilled;
    unsigned long log_dropped; /* since the last line that said so */
    char *owned;        /* one block holding the copies of cfg's strings */
    unsigned char *rxbuf; /* CHAT_READ_CHUNK bytes: every recv() lands here first */
    uint32_t out_era, out_fill; /* output gathered in rxbuf since the last read: chat__conn_gather */
    struct { chat__frame **q; unsigned cap; } spare_q[CHAT__SPARE_QUEUES]; /* for the next turn */
    unsigned nspare_q;
    int queues_made; /* output queues this turn started: spares are wanted */
    chat_buf text;       /* a decoded message or username */
    chat_buf cid;        /* a decoded cid */
    int hist_fd;         /* the history file, -1: none */
    long long hist_size; /* its length: whole records only */
    size_t hist_records, hist_pending_records;
    chat_buf hist_pending; /* records of this turn, written before any frame goes out */
    char *hist_path;       /* the file itself, symlinks followed (CHAT_MALLOC'd) */
    unsigned char secret[16]; /* resume tokens are SHA-1(secret, session): see chat__resume_token */
    uint32_t sessions;        /* joins so far: the next session number */
#ifndef CHAT_NO_MQTT
    struct chat__mqtt *mqtt;  /* the bridge to other boards; NULL: none */
#endif
};

/* The MQTT bridge's hooks in the server (its section is after the server's). */
#ifndef CHAT_NO_MQTT
static void chat__mqtt_said(chat_server *srv, const chat__words *w, uint64_t id);
static void chat__mqtt_left(chat_server *srv, chat__member *m);
static int chat__mqtt_remote_count(const chat_server *srv);
static int chat__mqtt_done(const chat_server *srv);
static long long chat__mqtt_due(const chat_server *srv);
static void chat__mqtt_stop(chat_server *srv);
static const char *chat__mqtt_node_id(const chat_server *srv);
#define CHAT__REMOTE(m) ((m)->remote)
#else
#define CHAT__REMOTE(m) 0
#define chat__mqtt_remote_count(srv) 0
#define chat__mqtt_done(srv) 1
#endif

/* Every call of the program's code goes through here: never from inside a loop over the room's
   members (where a callback could change what the loop walks). */
static void chat__callback_check(const chat_server *srv) { CHAT_ASSERT(!srv->room.delivering); (void)srv; }
#define CHAT__CALLBACK(srv) chat__callback_check(srv)

#define CHAT__LOG_BURST 50
#define CHAT__LOG_PER_SECOND 10

#ifndef CHAT_NO_LOG
static void chat__log_refill(chat_server *srv) {
    chat__ms step = 1000 / CHAT__LOG_PER_SECOND, steps = (srv->now - srv->log_refilled) / step;
    if (steps <= 0) return;
    srv->log_tokens = (int)CHAT__MIN((chat__ms)CHAT__LOG_BURST, srv->log_tokens + steps);
    srv->log_refilled += steps * step;
}

/* Says how many lines the rate limit left out, once there is room (also from the sweep). */
static void chat__log_dropped_note(chat_server *srv) {
    char line[64];
    chat__log_refill(srv);
    if (!srv->log_dropped || srv->log_tokens < 1) return;
    snprintf(line, sizeof line, "(%lu log lines dropped: too many)", srv->log_dropped);
    srv->log_dropped = 0, srv->log_tokens--;
    CHAT__CALLBACK(srv);
    srv->cfg.on_log(srv->cfg.user, CHAT_LOG_WARN, line);
}

/* Rate limited, so a flood of refusals cannot become a flood of log lines (on a board's flash). */
static void chat__log(chat_server *srv, int level, const char *fmt, ...) {
    char line[256];
    va_list ap;
    if (!srv->cfg.on_log || level > srv->cfg.log_level) return;
    chat__log_dropped_note(srv);
    if (srv->log_tokens < 1 || srv->log_dropped) {
        srv->log_dropped++, srv->stats.log_dropped++;
        return;
    }
    srv->log_tokens--;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    CHAT__CALLBACK(srv);
    srv->cfg.on_log(srv->cfg.user, level, line);
}
#define CHAT__LOG_NOTE(srv) do { if ((srv)->cfg.on_log) chat__log_dropped_note(srv); } while (0)
#define CHAT__LOG(args) chat__log args
#define CHAT__LOGGING(srv, level) ((srv)->cfg.on_log && (level) <= (srv)->cfg.log_level)
#else
#define CHAT__LOG(args) ((void)0)
#define CHAT__LOGGING(srv, level) 0
#define CHAT__LOG_NOTE(srv) ((void)0)
#endif

static void chat__conn_kill(chat_server *srv, chat__conn *c);

/* Gives up on a peer: killed now, and reset rather than closed (see chat__socket_close). */
static void chat__conn_abort(chat_server *srv, chat__conn *c) {
    c->flags |= CHAT__C_RESET;
    chat__conn_kill(srv, c);
}

static void chat__flush_later(chat_server *srv, chat__conn *c) {
    if (c->flags & CHAT__C_FLUSH_LISTED) return;
    c->flags |= CHAT__C_FLUSH_LISTED;
    c->flush_next = srv->flush_head;
    srv->flush_head = c;
}

/* Queues a reference to f; it is written at the end of the turn. A client whose backlog passes
   the limit is closed: it cannot keep up, and the others must not wait for it. */
static int chat__enqueue(chat_server *srv, chat__conn *c, chat__frame *f) {
    if (c->state >= CHAT__CLOSING) return CHAT_ESTATE; /* after our last words, nothing */
    if (!c->q_cap) {
        srv->queues_made = 1;
        if (srv->nspare_q) {
            srv->nspare_q--;
            c->q = srv->spare_q[srv->nspare_q].q, c->q_cap = srv->spare_q[srv->nspare_q].cap;
        }
    }
    if (c->q_count == c->q_cap) {
        unsigned cap = c->q_cap ? c->q_cap * 2 : CHAT__QUEUE_FIRST_CAP, i;
        chat__frame **q = (chat__frame **)CHAT_MALLOC(cap * sizeof *q);
        if (!q) {
            chat__conn_abort(srv, c);
            return CHAT_ENOMEM;
        }
        for (i = 0; i < c->q_count; i++) q[i] = c->q[(c->q_head + i) & (c->q_cap - 1)];
        CHAT_FREE(c->q);
        c->q = q, c->q_head = 0, c->q_cap = cap;
    }
    /* The check comes before the frame is counted, so one frame bigger than the whole backlog
       (a long message JSON-escaped, with max_message near max_backlog) still goes through. */
    if (f->kind != CHAT__FRAME_USERS && c->backlog > srv->cfg.max_backlog) {
        srv->stats.closed_slow++;
        c->flags |= CHAT__C_TOO_SLOW; /* logged when it is freed: this may run inside a broadcast */
        chat__conn_abort(srv, c);
        return CHAT_ESTATE;
    }
    c->q[(c->q_head + c->q_count++) & (c->q_cap - 1)] = f;
    if (f->kind != CHAT__FRAME_PINNED) f->refs++;
    if (f->kind == CHAT__FRAME_REPLY) c->replies++;
    c->backlog += chat__frame_cost(f);
    chat__flush_later(srv, c);
    return CHAT_OK;
}

/* An emptied queue leaves its connection (an idle one owns none) but is kept for the next turn:
   a busy server would otherwise allocate and free one or more per recipient each turn. */
static void chat__queue_emptied(chat_server *srv, chat__conn *c) {
    if (c->q_cap <= CHAT__SPARE_QUEUE_CAP && srv->nspare_q < CHAT__SPARE_QUEUES) {
        srv->spare_q[srv->nspare_q].q = c->q, srv->spare_q[srv->nspare_q].cap = c->q_cap;
        srv->nspare_q++;
    } else {
        CHAT_FREE(c->q);
    }
    c->q = NULL, c->q_head = c->q_cap = 0;
}

/* At the end of a turn: a turn that started no queue wants no spares (nor does an idle server). */
static void chat__spares_settle(chat_server *srv) {
    if (!srv->queues_made)
        while (srv->nspare_q) CHAT_FREE(srv->spare_q[--srv->nspare_q].q);
    srv->queues_made = 0;
}

/* Queues a new frame built from the arguments (the usual case for one recipient). */
static int chat__enqueue_new(chat_server *srv, chat__conn *c, chat__frame *f) {
    int r;
    if (!f) {
        chat__conn_abort(srv, c);
        return CHAT_ENOMEM;
    }
    r = chat__enqueue(srv, c, f);
    chat__frame_release(f);
    return r;
}

static void chat__queue_clear(chat__conn *c) {
    while (c->q_count) {
        chat__frame_release(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) & (c->q_cap - 1);
        c->q_count--;
    }
    CHAT_FREE(c->q);
    c->q = NULL, c->q_head = c->q_cap = 0, c->q_off = 0, c->backlog = 0, c->replies = 0;
}

/* --- addresses: the per-address limits --- */

static int chat__peers_grow(chat_server *srv) {
    unsigned nb = srv->npeer_buckets ? srv->npeer_buckets * 2 : 64, i;
    chat__peer **b = (chat__peer **)CHAT_MALLOC(nb * sizeof *b), *p, *next;
    if (!b) return CHAT_ENOMEM;
    memset(b, 0, nb * sizeof *b);
    for (i = 0; i < srv->npeer_buckets; i++)
        for (p = srv->peers[i]; p; p = next) {
            next = p->next;
            p->next = b[p->hash & (nb - 1)];
            b[p->hash & (nb - 1)] = p;
        }
    CHAT_FREE(srv->peers);
    srv->peers = b, srv->npeer_buckets = nb;
    return CHAT_OK;
}

/* The entry of an address, made when missing; NULL when out of memory. */
static chat__peer *chat__peer_get(chat_server *srv, const chat__addr *a) {
    uint32_t h = chat__hash((const char *)a->b, sizeof a->b);
    chat__peer *p;
    if (srv->npeer_buckets)
        for (p = srv->peers[h & (srv->npeer_buckets - 1)]; p; p = p->next)
            if (p->hash == h && memcmp(p->addr.b, a->b, sizeof a->b) == 0) return p;
    if (srv->npeers >= srv->npeer_buckets && chat__peers_grow(srv) != CHAT_OK && !srv->npeer_buckets) return NULL;
    p = (chat__peer *)CHAT_MALLOC(sizeof *p);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->addr = *a, p->hash = h;
    p->next = srv->peers[h & (srv->npeer_buckets - 1)];
    srv->peers[h & (srv->npeer_buckets - 1)] = p;
    srv->npeers++;
    return p;
}

/* An entry without connections is kept while its joins of this minute still count. */
static int chat__peer_idle(const chat_server *srv, const chat__peer *p) {
    return p->conns == 0 && (p->joins == 0 || p->join_minute != (uint32_t)(srv->now / 60000));
}

/* Frees the entries that no longer count anything (sweep and chat_server_free: all = 1). */
static void chat__peers_prune(chat_server *srv, int all) {
    unsigned i;
    for (i = 0; i < srv->npeer_buckets; i++) {
        chat__peer **pp = &srv->peers[i];
        while (*pp) {
            chat__peer *p = *pp;
            if (all || chat__peer_idle(srv, p)) {
                *pp = p->next;
                CHAT_FREE(p);
                srv->npeers--;
            } else {
                pp = &p->next;
            }
        }
    }
    srv->peers_idle = 0;
}

static void chat__peer_remove(chat_server *srv, chat__peer *p) {
    chat__peer **pp = &srv->peers[p->hash & (srv->npeer_buckets - 1)];
    while (*pp != p) pp = &(*pp)->next;
    *pp = p->next;
    CHAT_FREE(p);
    srv->npeers--;
}

/* Moves c to count against `p` (NULL: against nothing). Returns 0, or -1 when p is full. */
static int chat__conn_set_peer(chat_server *srv, chat__conn *c, chat__peer *p) {
    if (c->peer == p) return 0;
    if (p && srv->cfg.max_per_address > 0 && p->conns >= (uint32_t)srv->cfg.max_per_address) return -1;
    if (c->peer && --c->peer->conns == 0) {
        if (chat__peer_idle(srv, c->peer)) chat__peer_remove(srv, c->peer);
        else srv->peers_idle++;
    }
    c->peer = p;
    if (p) p->conns++;
    return 0;
}

/* ============================================================================================ */
/* server: accept, read, dispatch by connection state, write, timers; the loop                 */
/* ============================================================================================ */

/* Why a requested name cannot be used, or NULL when it can (apart from being taken). */
CHAT__FN const char *chat__name_problem(const char *name, size_t n, size_t max) {
    size_t i;
    if (n == 0) return "username is empty";
    if (n > max) return "username is too long";
    if (!chat_utf8_valid(name, n)) return "username is not valid UTF-8";
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        /* C0, DEL and C1 (U+0080-U+009F, encoded C2 80-C2 9F) */
        if (c < 0x20 || c == 0x7F || (c == 0xC2 && i + 1 < n && (unsigned char)name[i + 1] < 0xA0))
            return "username contains control characters";
    }
    return NULL;
}

static int chat__name_reserved(const chat_server *srv, const char *name, size_t n) {
    const char *const *r;
    for (r = srv->cfg.reserved_names; r && *r; r++)
        if (chat__ieq(*r, strlen(*r), name, n)) return 1;
    return 0;
}

/* The room's outlet to local members: a member is a connection. */
#define CHAT__CONN_OF(m) ((chat__conn *)(void *)((char *)(m) - offsetof(chat__conn, member)))

static int chat__member_deliver(void *user, chat__member *m, chat__frame *f) {
    if (CHAT__REMOTE(m)) return CHAT_ESTATE; /* its own board delivers to it */
    return chat__enqueue((chat_server *)user, CHAT__CONN_OF(m), f);
}

static void chat__member_left(void *user, chat__member *m) {
    chat_server *srv = (chat_server *)user;
    chat__conn *c;
#ifndef CHAT_NO_MQTT
    chat__mqtt_left(srv, m); /* a remote user's end; for a local one, a name another board waits for */
    if (m->remote) return;
#endif
    c = CHAT__CONN_OF(m);
    c->flags &= ~CHAT__C_JOINED;
    CHAT__LOG((srv, CHAT_LOG_DEBUG, "leave: %s (%d users)", m->name, srv->room.count));
    if (srv->cfg.on_leave) {
        CHAT__CALLBACK(srv);
        srv->cfg.on_leave(srv->cfg.user, srv, m->name, m->name_len);
    }
}


/* --- the history file: records written before the frames go out --- */

static void chat__member_said(void *user, const chat__words *w, uint64_t id) {
    chat_server *srv = (chat_server *)user;
#ifndef CHAT_NO_MQTT
    chat__mqtt_said(srv, w, id); /* to the other boards */
#endif
    if (srv->hist_fd < 0) return;
    if (chat__hrecord_put(&srv->hist_pending, w, id) == CHAT_OK) srv->hist_pending_records++;
    else srv->stats.history_errors++;
}

#define CHAT__HFILE_MAX ((size_t)CHAT_HISTORY_FILE_MAX) /* bytes; a bigger file is not ours to load */

static size_t chat__history_keep(const chat_server *srv) {
    return srv->room.history_cap > 0 ? (size_t)srv->room.history_cap : 1; /* the last one keeps the ids going */
}

static size_t chat__history_max_payload(const chat_server *srv) {
    return CHAT__HRECORD_FIXED + (size_t)srv->cfg.max_name + CHAT__CID_MAX + srv->cfg.max_message;
}

/* The file is compacted once it holds this many records more than twice the history, or passes
   3/4 of its byte bound with `more` bytes appended: the rewrite costs a read of the file and a
   write of the history, so it comes rarely. A compaction keeps at most half the bound, so the
   file never passes it. */
#define CHAT__HFILE_SLACK 256
static int chat__history_over(const chat_server *srv, size_t more) {
    return srv->hist_records > 2 * chat__history_keep(srv) + CHAT__HFILE_SLACK ||
           (size_t)srv->hist_size + more > CHAT__HFILE_MAX / 4 * 3;
}

/* Rewrites the file with its newest records only (at most the history, and at most half the
   byte bound), so it stays within about twice the history. NULL, or why it could not. */
static const char *chat__history_compact(chat_server *srv) {
    unsigned char *f = NULL;
    long n = chat__file_read_all(srv->hist_fd, CHAT__HFILE_MAX, &f);
    size_t at = CHAT__HFILE_HEAD, skip = 0;
    int fd;
    if (n < (long)CHAT__HFILE_HEAD) {
        CHAT_FREE(f);
        return n == -2 ? "it is over CHAT_HISTORY_FILE_MAX" : n >= 0 ? "it is cut short" : strerror(errno);
    }
    /* the oldest records go (the file holds whole ones only); the last one stays, whatever its size */
    while (at + 8 <= (size_t)n) {
        size_t next = at + 8 + (size_t)chat__le_get(f + at, 4);
        if (next >= (size_t)n) break;
        if (srv->hist_records - skip <= chat__history_keep(srv) && (size_t)n - at <= CHAT__HFILE_MAX / 2) break;
        at = next, skip++;
    }
    memmove(f + CHAT__HFILE_HEAD, f + at, (size_t)n - at);
    /* synced as the appends are: without history_sync the promise is a crash of the process */
    fd = chat__file_replace(srv->hist_path, f, CHAT__HFILE_HEAD + ((size_t)n - at), srv->cfg.history_sync);
    CHAT_FREE(f);
    if (fd < 0) return strerror(errno);
    chat__fd_close(srv->hist_fd);
    srv->hist_fd = fd;
    srv->hist_size = (long long)(CHAT__HFILE_HEAD + ((size_t)n - at));
    srv->hist_records -= skip;
    return NULL;
}

/* This turn's records could not be appended (a disk full, a compaction that failed: rename()
   refused on a bind-mounted file, EACCES ...), yet its messages go out with their ids. A file
   whose last id is older would make a restart give those ids again, so the file is cut back to
   its header (which needs no space) and this turn's records are written alone: the history
   before them is then in memory only, until a restart. If even they do not fit the file stays
   empty, and a restart takes ids from the clock, as without a file. Either way it stays within
   its bound, and the next compaction is tried only once it is over it again. */
static void chat__history_start_over(chat_server *srv, const char *what, const char *why) {
    int sync = srv->cfg.history_sync;
    srv->stats.history_errors++;
    (void)what, (void)why; /* CHAT_NO_LOG */
    if (chat__file_truncate(srv->hist_fd, CHAT__HFILE_HEAD) != 0) {
        CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: %s (%s), and it cannot be cut back (%s): %lu messages are not "
                   "kept, their ids may be given again after a restart", srv->hist_path, what, why, strerror(errno),
                   (unsigned long)srv->hist_pending_records));
        return;
    }
    srv->hist_size = CHAT__HFILE_HEAD, srv->hist_records = 0;
    if (CHAT__HFILE_HEAD + srv->hist_pending.len <= CHAT__HFILE_MAX &&
        chat__file_append(srv->hist_fd, srv->hist_pending.data, srv->hist_pending.len, srv->hist_size, sync) == 0) {
        srv->hist_size += (long long)srv->hist_pending.len, srv->hist_records = srv->hist_pending_records;
        CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: %s (%s); it starts again with this turn's %lu messages, the "
                   "older ones are replayed from memory until a restart", srv->hist_path, what, why,
                   (unsigned long)srv->hist_pending_records));
        return;
    }
    if (sync) (void)chat__file_append(srv->hist_fd, "", 0, srv->hist_size, 1); /* the cut, at least */
    CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: %s (%s); it is emptied and %lu messages are not kept (after a "
               "restart ids go on from the clock)", srv->hist_path, what, why, (unsigned long)srv->hist_pending_records));
}

/* Once a turn, before any frame of it is written: this turn's records in one write, after a
   compaction when the file is over its bound. */
static void chat__history_write(chat_server *srv) {
    const char *failed = NULL;
    if (srv->hist_fd < 0 || !srv->hist_pending.len) return;
    if (chat__history_over(srv, srv->hist_pending.len) && (failed = chat__history_compact(srv)) != NULL)
        chat__history_start_over(srv, "compaction failed", failed);
    else if ((size_t)srv->hist_size + srv->hist_pending.len > CHAT__HFILE_MAX)
        chat__history_start_over(srv, "a turn over the bound", "CHAT_HISTORY_FILE_MAX");
    else if (chat__file_append(srv->hist_fd, srv->hist_pending.data, srv->hist_pending.len, srv->hist_size,
                               srv->cfg.history_sync) == 0) {
        srv->hist_size += (long long)srv->hist_pending.len;
        srv->hist_records += srv->hist_pending_records;
    } else
        chat__history_start_over(srv, "a write failed", strerror(errno));
    srv->hist_pending.len = 0, srv->hist_pending_records = 0;
    chat__scratch_shrink(&srv->hist_pending);
}

static int chat__history_restore_one(void *user, const chat__words *w, uint64_t id) {
    return chat__room_restore(&((chat_server *)user)->room, w, id);
}

/* Opens the history file, brings its newest messages back and cuts a torn tail. A file that is
   not a history file is set aside (never overwritten) and the server starts with an empty one;
   a damaged one is set aside too, and the sound records before the damage are kept. The path
   is resolved once here: a symlink stays one, the file it points to is written and compacted. */
static int chat__history_open(chat_server *srv, const chat__room_outlet *outlet) {
    const char *path, *failed;
    chat__hfile_scan_result scan;
    unsigned char *f = NULL;
    long n;
    srv->hist_path = chat__file_resolve(srv->cfg.history_file);
    if (!srv->hist_path) {
        CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: cannot follow its symlink: %s", srv->cfg.history_file,
                   strerror(errno)));
        return CHAT_ESYS;
    }
    path = srv->hist_path;
    srv->hist_fd = chat__file_open_append(path);
    if (srv->hist_fd < 0) {
        CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: cannot open it: %s", path, strerror(errno)));
        return CHAT_ESYS;
    }
    if (chat__history_keep(srv) * (8 + chat__history_max_payload(srv)) > CHAT__HFILE_MAX / 2)
        CHAT__LOG((srv, CHAT_LOG_WARN, "history file %s: %lu messages of the largest size are more than half of "
                   "CHAT_HISTORY_FILE_MAX (%lu bytes): the file keeps fewer of them", path,
                   (unsigned long)chat__history_keep(srv), (unsigned long)CHAT__HFILE_MAX));
    n = chat__file_read_all(srv->hist_fd, CHAT__HFILE_MAX, &f);
    if (n == -1) {
        CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: cannot read it: %s", path, strerror(errno)));
        return CHAT_ESYS;
    }
    if (n == -2) memset(&scan, 0, sizeof scan), scan.problem = "larger than CHAT_HISTORY_FILE_MAX";
    else chat__hfile_scan(f, (size_t)n, chat__history_max_payload(srv), chat__history_restore_one, srv, &scan);
    if (scan.problem) {
        char aside[4200];
        uint64_t next = srv->room.next_id;
        chat__fd_close(srv->hist_fd);
        srv->hist_fd = -1;
        if (chat__file_set_aside(path, aside, sizeof aside) != 0) {
            CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: %s, and it cannot be moved aside: %s", path, scan.problem,
                       strerror(errno)));
            CHAT_FREE(f);
            return CHAT_ESYS;
        }
        if (scan.prefix && scan.records) { /* the sound records before the damage stay */
            CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: %s at byte %lu (a power cut during a write?); the %lu "
                       "messages before it are kept, the file as it was is kept as %s", path, scan.problem,
                       (unsigned long)scan.good, (unsigned long)scan.records, aside));
            srv->hist_fd = chat__file_replace(path, f, scan.good, 1);
            CHAT_FREE(f), f = NULL;
            if (srv->hist_fd < 0) {
                CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: cannot write it: %s", path, strerror(errno)));
                return CHAT_ESYS;
            }
            scan.problem = NULL, scan.torn = 0;
        } else {
            CHAT_FREE(f), f = NULL;
            CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: %s; kept as %s, starting with an empty history", path,
                       scan.problem, aside));
            chat__room_free(&srv->room); /* what was restored before the problem goes too */
            if (chat__room_init(&srv->room, outlet, srv->cfg.history, next > chat__wall_us() ? next : chat__wall_us()) != CHAT_OK)
                return CHAT_ENOMEM;
            srv->hist_fd = chat__file_open_append(path);
            if (srv->hist_fd < 0) return CHAT_ESYS;
            memset(&scan, 0, sizeof scan);
        }
    }
    CHAT_FREE(f);
    if (scan.torn) {
        CHAT__LOG((srv, CHAT_LOG_WARN, "history file %s: dropped an incomplete last record (a crash or power cut during a write)",
                   path));
        if (chat__file_truncate(srv->hist_fd, (long long)scan.good) != 0) return CHAT_ESYS;
    }
    srv->hist_size = (long long)scan.good, srv->hist_records = scan.records;
    if (scan.good < CHAT__HFILE_HEAD) {
        unsigned char head[CHAT__HFILE_HEAD];
        memcpy(head, CHAT__HFILE_MAGIC, 7), head[7] = CHAT__HFILE_VERSION;
        if (chat__file_truncate(srv->hist_fd, 0) != 0 || chat__file_append(srv->hist_fd, head, sizeof head, 0, 1) != 0)
            return CHAT_ESYS;
        srv->hist_size = CHAT__HFILE_HEAD;
    }
    CHAT__LOG((srv, CHAT_LOG_INFO, "history file %s: %lu messages kept, the next id is %llu", path,
               (unsigned long)srv->hist_records, (unsigned long long)srv->room.next_id));
    if (chat__history_over(srv, 0) && (failed = chat__history_compact(srv)) != NULL) /* the next turn starts over */
        CHAT__LOG((srv, CHAT_LOG_ERROR, "history file %s: compaction failed (%s)", path, failed));
    return CHAT_OK;
}

/* Input is read only while nothing holds it back: the peer's own answers still unsent, complete
   input still waiting, its byte rate spent this second, or its side shut down. */
static int chat__input_paused(const chat__conn *c) {
    return (c->flags & (CHAT__C_PEER_EOF | CHAT__C_HELD | CHAT__C_THROTTLED)) || c->replies;
}

/* Rates count in whole seconds of the server's clock: cheap (no timer per client). */
static void chat__rate_window(chat_server *srv, chat__conn *c) {
    uint32_t second = (uint32_t)(srv->now / 1000);
    if (c->rate_second != second) c->rate_second = second, c->rate_count = 0, c->rate_bytes = 0;
}

/* Counts one frame or request; 0 when that is one too many this second. */
static int chat__rate_ok(chat_server *srv, chat__conn *c) {
    if (srv->cfg.max_rate < 0) return 1;
    chat__rate_window(srv, c);
    return ++c->rate_count <= (uint32_t)srv->cfg.max_rate;
}

#define CHAT__READY_UNTRIED (-2)

#ifdef CHAT__EPOLL
/* Without the epoll set, poll() is used from now on: an epoll call that fails (out of memory)
   must not lose a descriptor's events. */
static void chat__ready_give_up(chat_server *srv) {
    CHAT__LOG((srv, CHAT_LOG_WARN, "epoll: %s; using poll()", strerror(errno)));
    chat__fd_close(srv->ready_set);
    srv->ready_set = -1;
}
#endif

/* What a slot waits for: kept in the poll set, and told to the epoll set when it changes. */
static void chat__watch(chat_server *srv, unsigned slot, short events) {
    if (srv->pfds[slot].events == events) return;
    srv->pfds[slot].events = events;
#ifdef CHAT__EPOLL
    if (srv->ready_set >= 0 && srv->pfds[slot].fd >= 0 &&
        chat__ready_watch(srv->ready_set, EPOLL_CTL_MOD, srv->pfds[slot].fd, events) < 0)
        chat__ready_give_up(srv);
#endif
}

/* A descriptor enters (add) or leaves slot's place in the sets; fd -> slot is kept for both. */
static int chat__watch_fd(chat_server *srv, unsigned slot, int fd, int add) {
    if (add) {
        if ((unsigned)fd >= srv->slot_of_fd_cap) {
            unsigned want = (unsigned)fd + 64;
            int *t = (int *)CHAT_REALLOC(srv->slot_of_fd, want * sizeof *t);
            if (!t) return CHAT_ENOMEM;
            srv->slot_of_fd = t, srv->slot_of_fd_cap = want;
        }
        srv->slot_of_fd[fd] = (int)slot;
    }
#ifdef CHAT__EPOLL
    if (srv->ready_set >= 0 && fd >= 0 &&
        chat__ready_watch(srv->ready_set, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, srv->pfds[slot].events) < 0 && add)
        chat__ready_give_up(srv);
#endif
    srv->pfds[slot].fd = add ? fd : -1;
    return CHAT_OK;
}

static void chat__set_events(chat_server *srv, chat__conn *c) {
    short ev = 0;
    if (c->flags & CHAT__C_HANDSHAKE) { /* the transport's handshake says which way it waits */
        chat__watch(srv, c->slot, c->flags & CHAT__C_HS_WRITE ? POLLOUT : POLLIN);
        return;
    }
    if (!chat__input_paused(c)) ev |= POLLIN;
    if (!chat__input_paused(c) && (c->flags & CHAT__C_PENDING)) srv->read_pending = 1;
    if (c->q_count) ev |= POLLOUT;
    chat__watch(srv, c->slot, ev);
}

/* Marks c dead: it gets and does nothing more, and is freed at the end of the turn (chat__reap),
   where it also leaves the room. No callback runs from here, so this is safe anywhere. */
static void chat__conn_kill(chat_server *srv, chat__conn *c) {
    if (c->state == CHAT__DEAD) return;
    if (c->flags & CHAT__C_JOINED) chat__room_leave_later(&srv->room, &c->member);
    chat__queue_clear(c);
    chat__conn_set_peer(srv, c, NULL);
    CHAT_FREE(c->rx);
    c->rx = NULL, c->rx_len = 0;
    c->state = CHAT__DEAD;
    srv->pfds[c->slot].events = 0; /* not told to epoll: the reap at the end of this turn drops it */
    srv->dead_count++;
}

/* Sends our last words (queued) and stops reading: after them the socket is shut down. */
static void chat__conn_finish(chat_server *srv, chat__conn *c) {
    if (c->flags & CHAT__C_JOINED) chat__room_leave_later(&srv->room, &c->member);
    c->state = CHAT__CLOSING;
    c->deadline = srv->now + srv->cfg.close_timeout_ms;
    c->flags &= ~CHAT__C_HELD;
    CHAT_FREE(c->rx);
    c->rx = NULL, c->rx_len = 0;
    chat__flush_later(srv, c);
}

/* Closes a WebSocket with a code (0: an empty close frame) and a reason of at most 123 bytes. */
static void chat__conn_close(chat_server *srv, chat__conn *c, int code, const char *reason) {
    unsigned char payload[2 + 123];
    size_t n = 0;
    if (c->state != CHAT__OPEN && c->state != CHAT__HTTP) return;
    if (code) {
        size_t r = reason ? strlen(reason) : 0;
        if (r > 123) { /* cut at a character boundary */
            r = 123;
            while (r && ((unsigned char)reason[r] & 0xC0) == 0x80) r--;
        }
        payload[0] = (unsigned char)(code >> 8), payload[1] = (unsigned char)code;
        if (r) memcpy(payload + 2, reason, r);
        n = 2 + r;
    }
    CHAT__LOG((srv, CHAT_LOG_DEBUG, "close %d%s%s%s for %s", code, reason && *reason ? " (" : "",
               reason ? reason : "", reason && *reason ? ")" : "", c->member.name ? c->member.name : "a client"));
    if (chat__enqueue_new(srv, c, chat__frame_ws(CHAT_WS_OP_CLOSE, payload, n, CHAT__FRAME_SHARED)) == CHAT_OK)
        chat__conn_finish(srv, c);
}

/* --- HTTP --- */

/* Queues a response: head, then `body` (a frame, e.g. an asset) or `text` (a short message). */
typedef struct chat__response {
    int status;
    const char *type;  /* Content-Type */
    const char *extra; /* more header lines, each ending in CRLF, or NULL */
    chat__frame *body; /* the body as a frame (an asset), or NULL */
    const char *text;  /* ... or a short text, or NULL */
} chat__response;

static void chat__conn_respond(chat_server *srv, chat__conn *c, const chat_http_request *req,
                               const chat__response *resp, int keep) {
    char head[640];
    chat__frame *body = resp->body;
    const char *text = resp->text;
    int status = resp->status;
    const char *type = resp->type, *extra = resp->extra;
    size_t body_len = body ? body->len : text ? strlen(text) : 0;
    int head_only = req->method.n == 4 && memcmp(req->method.p, "HEAD", 4) == 0;
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %lu\r\n%s%s\r\n",
                     status, chat_http_reason(status), type, (unsigned long)body_len,
                     !keep ? "Connection: close\r\n" : req->minor == 0 ? "Connection: keep-alive\r\n" : "",
                     extra ? extra : "");
    if (n < 0 || n >= (int)sizeof head) n = 0;
    if (chat__enqueue_new(srv, c, chat__frame_new(head, (size_t)n, text, head_only ? 0 : text ? body_len : 0,
                                                  CHAT__FRAME_REPLY)) != CHAT_OK)
        return;
    if (body && body->len && !head_only && chat__enqueue(srv, c, body) != CHAT_OK) return;
    if (!keep) chat__conn_finish(srv, c);
}

/* An error response; `keep` only where the request itself was fine (404, 405). Refusals with a
   counter of their own (403, 429) are counted by the caller. */
static void chat__conn_error(chat_server *srv, chat__conn *c, const chat_http_request *req, int status,
                             const char *extra, int keep) {
    char text[64];
    snprintf(text, sizeof text, "%d %s\n", status, chat_http_reason(status));
    if (status != 404 && status != 403 && status != 429) srv->stats.refused_http++;
    CHAT__LOG((srv, CHAT_LOG_DEBUG, "HTTP %d", status));
    chat__response r;
    r.status = status, r.type = "text/plain; charset=UTF-8", r.extra = extra, r.body = NULL, r.text = text;
    chat__conn_respond(srv, c, req, &r, keep);
}

/* The tutorial's route, matched as its router does: any case, optional trailing slash. */
static int chat__server_is_chat_path(chat_span path) {
    if (path.n > 1 && path.p[path.n - 1] == '/') path.n--;
    return chat__span_ieq(path, "/start_web_socket");
}

/* The address behind the trusted proxy: the last one of X-Forwarded-For (the one that proxy
   added; the ones before it are the client's to forge). -1 when there is none. */
static int chat__forwarded_addr(const chat_http_request *req, chat__addr *out) {
    chat_span fwd;
    const char *p, *end, *last;
    char text[64];
    size_t n;
    if (!chat_http_header(req, "x-forwarded-for", &fwd) || !fwd.n) return -1;
    p = last = fwd.p, end = fwd.p + fwd.n;
    for (; p < end; p++)
        if (*p == ',') last = p + 1;
    while (last < end && (*last == ' ' || *last == '\t')) last++;
    n = (size_t)(end - last);
    if (n == 0 || n >= sizeof text) return -1;
    memcpy(text, last, n);
    text[n] = '\0';
    return chat__addr_parse(text, out);
}

/* The client's address for log lines and on_upgrade: the one its limits count against. */
static void chat__conn_address(const chat__conn *c, char *out, size_t cap) {
    snprintf(out, cap, "?");
    if (c->peer) chat__addr_text(&c->peer->addr, out, cap);
}

/* A page may open a WebSocket from its own origin (the Origin's host is the Host it asked),
   from an origin on the allow-list, or send no Origin at all (not a browser: nothing to hijack).
   Anything else is cross-site WebSocket hijacking until proven otherwise. */
CHAT__FN int chat__server_origin_allowed(const chat_server *srv, const chat_http_request *req) {
    const char *const *o;
    chat_span origin, host;
    size_t i = 0;
    if (!chat_http_header(req, "origin", &origin)) return 1;
    for (o = srv->cfg.origins; o && *o; o++)
        if (strcmp(*o, "*") == 0 || chat__ieq(origin.p, origin.n, *o, strlen(*o))) return 1;
    /* a span into the receive buffer, not a string: searched within its length only */
    while (i + 3 <= origin.n && memcmp(origin.p + i, "://", 3) != 0) i++;
    if (i + 3 > origin.n || !chat_http_header(req, "host", &host)) return 0;
    i += 3;
    return chat__ieq(origin.p + i, origin.n - i, host.p, host.n);
}

/* What on_upgrade sees. The head is copied once, when first asked for, with every line end and
   the space after the target made NULs, so the strings handed out stay valid and terminated. */
struct chat_request {
    chat_server *srv;
    chat__conn *c;
    const chat_http_request *http;
    char *copy; /* NULL until a header or the target is asked for */
    int has_name; /* srv->text holds the username */
    char address[64];
};

static int chat__request_copy(chat_request *r) {
    size_t i, n = r->http->head.n;
    if (r->copy) return CHAT_OK;
    r->copy = (char *)CHAT_MALLOC(n + 1);
    if (!r->copy) return CHAT_ENOMEM;
    memcpy(r->copy, r->http->head.p, n);
    r->copy[n] = '\0';
    for (i = 0; i < n; i++)
        if (r->copy[i] == '\r' || r->copy[i] == '\n') r->copy[i] = '\0';
    return CHAT_OK;
}

static void chat__conn_refuse_name(chat_server *srv, chat__conn *c, int code, const char *problem) {
    if (CHAT__LOGGING(srv, CHAT_LOG_INFO)) {
        char addr[64];
        chat__conn_address(c, addr, sizeof addr);
        CHAT__LOG((srv, CHAT_LOG_INFO, "refused a name from %s: %s", addr, problem));
    }
    chat__conn_close(srv, c, code, problem);
}

/* A joined connection's resume token: 32 hex digits of SHA-1(secret, session). Only its holder
   learns it (in its welcome); with it, a new connection takes the name over from this one. */
static void chat__resume_token(const chat_server *srv, uint32_t session, char out[33]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char in[sizeof srv->secret + 4], digest[20];
    int i;
    memcpy(in, srv->secret, sizeof srv->secret);
    for (i = 0; i < 4; i++) in[sizeof srv->secret + i] = (unsigned char)(session >> (8 * i));
    chat_sha1(in, sizeof in, digest);
    for (i = 0; i < 16; i++) out[2 * i] = hex[digest[i] >> 4], out[2 * i + 1] = hex[digest[i] & 15];
    out[32] = '\0';
}

/* {"event":"welcome",...}: the first frame a joined client gets: the newest message id (so a
   client that gets nothing else can still resume from it), its resume token, whether messages
   after its `since` will be missing, and the limits a page needs so that it need not copy the
   server's numbers. */
static int chat__conn_welcome(chat_server *srv, chat__conn *c, int missing) {
    char text[256], token[33];
    int n;
    chat__resume_token(srv, c->session, token);
    n = snprintf(text, sizeof text,
                 "{\"event\":\"welcome\",\"id\":%llu,\"resume\":\"%s\",%s\"limits\":{\"max_message\":%lu,"
                 "\"max_name\":%d,\"max_rate\":%d}}",
                 (unsigned long long)chat__room_top_id(&srv->room), token, missing ? "\"missing\":true," : "",
                 (unsigned long)srv->cfg.max_message, srv->cfg.max_name, srv->cfg.max_rate < 0 ? 0 : srv->cfg.max_rate);
    return chat__enqueue_new(srv, c, chat__frame_ws(CHAT_WS_OP_TEXT, text, (size_t)n, CHAT__FRAME_SHARED));
}

/* What the page asks for besides its name: since=ID (the newest id it has) and resume=TOKEN. */
typedef struct chat__rejoin {
    int has_since;
    uint64_t since;
    char token[33]; /* empty: none */
} chat__rejoin;

static int chat__rejoin_parse(chat_span query, chat__rejoin *out) {
    chat_buf v;
    int r;
    memset(out, 0, sizeof *out);
    memset(&v, 0, sizeof v);
    r = chat_url_query_param(query.p, query.n, "since", &v);
    if (r == 1 && v.len >= 1 && v.len <= 20) { /* digits only, and no more than a uint64 holds */
        size_t i;
        uint64_t x = 0;
        for (i = 0; i < v.len && v.data[i] >= '0' && v.data[i] <= '9'; i++) {
            if (x > (UINT64_MAX - (uint64_t)(v.data[i] - '0')) / 10) break;
            x = x * 10 + (uint64_t)(v.data[i] - '0');
        }
        if (i == v.len) out->has_since = 1, out->since = x;
    }
    if (r >= 0) r = chat_url_query_param(query.p, query.n, "resume", &v);
    if (r == 1 && v.len == 32) memcpy(out->token, v.data, 33);
    chat_buf_free(&v);
    return r < 0 ? r : CHAT_OK;
}

/* Does `token` open the session of the connection holding a name? Compared in constant time. */
static int chat__resume_valid(const chat_server *srv, const chat__conn *holder, const char *token) {
    char want[33];
    unsigned diff = 0;
    int i;
    if (!token[0]) return 0;
    chat__resume_token(srv, holder->session, want);
    for (i = 0; i < 32; i++) diff |= (unsigned)(want[i] ^ token[i]);
    return diff == 0;
}

/* Counts an upgrade against its address's joins of this minute; 0 when over max_join_rate. */
static int chat__join_rate_ok(chat_server *srv, chat__conn *c) {
    uint32_t minute = (uint32_t)(srv->now / 60000);
    chat__peer *p = c->peer;
    if (!p || srv->cfg.max_join_rate < 0) return 1;
    if (p->join_minute != minute) p->join_minute = minute, p->joins = 0;
    return ++p->joins <= (uint32_t)srv->cfg.max_join_rate;
}

/* The upgrade, then the name check: a refused name still gets a WebSocket, closed with 1008 and
   a reason, so the page can show why (an HTTP error would reach it as a bare 1006). */
static void chat__conn_upgrade(chat_server *srv, chat__conn *c, const chat_http_request *req, chat_span query) {
    static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: ";
    unsigned char key[18];
    char accept[29], head[sizeof ok + 32], *name = NULL, reason[160];
    const char *problem = NULL;
    chat_span upgrade, ws_key, version;
    chat__rejoin rejoin;
    chat__member *taken = NULL, *holder = NULL; /* holder: the name's connection, to be replaced */
    int found, verdict = 0, missing = 0, first;
    size_t n;
    if (req->method.n != 3 || memcmp(req->method.p, "GET", 3) != 0) {
        chat__conn_error(srv, c, req, 405, "Allow: GET\r\n", 0);
        return;
    }
    if (!chat_http_header(req, "upgrade", &upgrade) || !chat_http_token_list_has(upgrade, "websocket")) {
        chat__conn_error(srv, c, req, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", 0);
        return;
    }
    if (req->minor < 1 || !(req->flags & CHAT_HTTP_CONN_UPGRADE) || (req->flags & CHAT_HTTP_BODY) ||
        chat_http_header(req, "sec-websocket-key", &ws_key) != 1 ||
        chat_base64_decode(ws_key.p, ws_key.n, key, sizeof key) != 16) {
        chat__conn_error(srv, c, req, 400, NULL, 0);
        return;
    }
    chat_http_header(req, "sec-websocket-version", &version);
    if (version.n != 2 || memcmp(version.p, "13", 2) != 0) {
        chat__conn_error(srv, c, req, 426, "Sec-WebSocket-Version: 13\r\n", 0);
        return;
    }
    if (!chat__server_origin_allowed(srv, req)) {
        srv->stats.refused_origin++;
        if (CHAT__LOGGING(srv, CHAT_LOG_INFO)) {
            chat_span origin, host;
            chat_http_header(req, "origin", &origin);
            chat_http_header(req, "host", &host);
            CHAT__LOG((srv, CHAT_LOG_INFO, "refused Origin %.*s (Host %.*s)", (int)CHAT__MIN(origin.n, (size_t)100),
                       origin.p, (int)CHAT__MIN(host.n, (size_t)100), host.p ? host.p : ""));
        }
        chat__conn_error(srv, c, req, 403, NULL, 0);
        return;
    }
    if (!chat__join_rate_ok(srv, c)) {
        srv->stats.refused_address++;
        CHAT__LOG((srv, CHAT_LOG_INFO, "refused an upgrade: more than %d a minute from one address",
                   srv->cfg.max_join_rate));
        chat__conn_error(srv, c, req, 429, "Retry-After: 60\r\n", 0);
        return;
    }
    found = chat__rejoin_parse(query, &rejoin);
    if (found == CHAT_OK) found = chat_url_query_param(query.p, query.n, "username", &srv->text);
    if (found < 0) {
        chat__conn_abort(srv, c);
        return;
    }
    if (srv->cfg.on_upgrade) {
        chat_request r;
        memset(&r, 0, sizeof r);
        r.srv = srv, r.c = c, r.http = req, r.has_name = found;
        chat__conn_address(c, r.address, sizeof r.address);
        CHAT__CALLBACK(srv);
        verdict = srv->cfg.on_upgrade(srv->cfg.user, srv, &r);
        found = r.has_name;
        CHAT_FREE(r.copy);
        if (c->state == CHAT__DEAD) return;
        if (verdict) {
            if (verdict != 401 && verdict != 429) verdict = 403;
            srv->stats.refused_http++;
            CHAT__LOG((srv, CHAT_LOG_INFO, "refused an upgrade: on_upgrade said %d", verdict));
            chat__conn_error(srv, c, req, verdict, verdict == 429 ? "Retry-After: 10\r\n" : NULL, 0);
            return;
        }
    }
    chat_ws_accept_key(ws_key.p, ws_key.n, accept);
    n = sizeof ok - 1;
    memcpy(head, ok, n);
    memcpy(head + n, accept, 28);
    memcpy(head + n + 28, "\r\n\r\n", 4);
    if (chat__enqueue_new(srv, c, chat__frame_new(head, n + 32, NULL, 0, CHAT__FRAME_SHARED)) != CHAT_OK) return;
    c->state = CHAT__OPEN;
    memset(&c->u.ws, 0, sizeof c->u.ws);
    c->deadline = srv->now + srv->cfg.ping_interval_ms;

    if (!found) problem = "username is missing";
    else problem = chat__name_problem((const char *)srv->text.data, srv->text.len, (size_t)srv->cfg.max_name);
    if (problem && strcmp(problem, "username is too long") == 0) {
        snprintf(reason, sizeof reason, "username is too long (max %d bytes)", srv->cfg.max_name);
        problem = reason;
    } else if (!problem && chat__name_reserved(srv, (const char *)srv->text.data, srv->text.len)) {
        problem = "username is reserved";
    } else if (!problem && (taken = chat__room_find(&srv->room, (const char *)srv->text.data, srv->text.len)) &&
               !CHAT__REMOTE(taken) && chat__resume_valid(srv, CHAT__CONN_OF(taken), rejoin.token)) {
        /* the same user again (its page reconnected while the old connection still looks alive):
           below, the new connection takes the name over; the room does not grow */
        holder = taken;
    } else if (!problem && srv->room.count - chat__mqtt_remote_count(srv) >= srv->cfg.max_clients) {
        /* a browser cannot see an HTTP status: the page learns it from the close */
        srv->stats.refused_full++;
        CHAT__LOG((srv, CHAT_LOG_WARN, "refused a client: %d clients is the limit", srv->cfg.max_clients));
        chat__conn_close(srv, c, 1013, "room is full");
        return;
    } else if (!problem && taken) {
        /* the tutorial's words; the name is cut so the reason fits in a close frame */
        size_t cut = CHAT__MIN(srv->text.len, (size_t)100);
        while (cut < srv->text.len && (srv->text.data[cut] & 0xC0) == 0x80) cut--;
        snprintf(reason, sizeof reason, "用户名 %.*s 已被占用", (int)cut, (const char *)srv->text.data);
        problem = reason;
    } else if (!problem && srv->cfg.on_join && (CHAT__CALLBACK(srv),
               srv->cfg.on_join(srv->cfg.user, srv, (const char *)srv->text.data, srv->text.len))) {
        problem = "username refused";
    }
    if (problem) {
        srv->stats.refused_name++;
        chat__conn_refuse_name(srv, c, 1008, problem);
        return;
    }
    if (c->state != CHAT__OPEN) return; /* on_join did something to it */
    if (holder) { /* a resume: nobody sees a leave or a join; on_join, on_joined, on_leave do not run */
        chat__conn *old = CHAT__CONN_OF(holder);
        chat__room_replace(&srv->room, holder, &c->member);
        old->flags &= ~CHAT__C_JOINED;
        c->flags |= CHAT__C_JOINED;
        srv->stats.resumed++;
        if (CHAT__LOGGING(srv, CHAT_LOG_INFO)) {
            char addr[64];
            chat__conn_address(c, addr, sizeof addr);
            CHAT__LOG((srv, CHAT_LOG_INFO, "resume: %s from %s took over its old connection", c->member.name, addr));
        }
        chat__conn_close(srv, old, 4001, "replaced by a new connection");
    } else {
        name = (char *)CHAT_MALLOC(srv->text.len + 1);
        if (name) memcpy(name, srv->text.data, srv->text.len + 1);
        if (!name || chat__room_join(&srv->room, &c->member, name, srv->text.len) != CHAT_OK) {
            CHAT_FREE(name);
            chat__conn_abort(srv, c);
            return;
        }
        c->flags |= CHAT__C_JOINED;
        if (CHAT__LOGGING(srv, CHAT_LOG_DEBUG)) {
            char addr[64];
            chat__conn_address(c, addr, sizeof addr);
            CHAT__LOG((srv, CHAT_LOG_DEBUG, "join: %s from %s (%d users)", name, addr, srv->room.count));
        }
    }
    c->session = ++srv->sessions;
    first = chat__room_replay_plan(&srv->room, rejoin.since, srv->cfg.max_backlog / 2, &missing);
    if (chat__conn_welcome(srv, c, rejoin.has_since && missing) != CHAT_OK) return;
    chat__room_replay(&srv->room, &c->member, first);
    if (!holder && c->state == CHAT__OPEN && srv->cfg.on_joined) {
        CHAT__CALLBACK(srv);
        srv->cfg.on_joined(srv->cfg.user, srv, c->member.name, c->member.name_len);
    }
}

/* The counters of chat_server_stats as JSON, for monitoring. */
static void chat__conn_stats(chat_server *srv, chat__conn *c, const chat_http_request *req, int keep) {
    chat__response r;
    chat_stats st;
    char text[1280];
    chat_server_stats(srv, &st);
    snprintf(text, sizeof text,
             "{\"clients\":%d,\"connections\":%d,\"accepted\":%llu,\"messages\":%llu,\"bytes_in\":%llu,"
             "\"bytes_out\":%llu,\"refused\":{\"name\":%llu,\"full\":%llu,\"origin\":%llu,\"http\":%llu,"
             "\"address\":%llu},\"closed\":{\"protocol\":%llu,\"rate\":%llu,\"slow\":%llu,\"idle\":%llu},"
             "\"log_dropped\":%llu,\"resumed\":%llu,\"repeats\":%llu,\"history_errors\":%llu,\"uptime_ms\":%lld}\n",
             st.clients, st.connections, st.accepted, st.messages, st.bytes_in, st.bytes_out, st.refused_name,
             st.refused_full, st.refused_origin, st.refused_http, st.refused_address, st.closed_protocol,
             st.closed_rate, st.closed_slow, st.closed_idle, st.log_dropped, st.resumed, st.repeats, st.history_errors,
             st.uptime_ms);
#ifndef CHAT_NO_MQTT
    if (srv->mqtt) { /* the bridge's counters, before the closing brace */
        size_t n = strlen(text) - 2;
        snprintf(text + n, sizeof text - n,
                 ",\"mqtt\":{\"node\":\"%s\",\"connected\":%s,\"remote_users\":%d,\"queued\":%d,\"connects\":%llu,"
                 "\"published\":%llu,\"received\":%llu,\"repeats\":%llu,\"dropped\":%llu,\"conflicts\":%llu}}\n",
                 chat__mqtt_node_id(srv), st.mqtt_connected ? "true" : "false", st.mqtt_remote_users, st.mqtt_queued, st.mqtt_connects,
                 st.mqtt_published, st.mqtt_received, st.mqtt_repeats, st.mqtt_dropped, st.mqtt_conflicts);
    }
#endif
    r.status = 200, r.type = "application/json", r.extra = "Cache-Control: no-store\r\n", r.body = NULL, r.text = text;
    chat__conn_respond(srv, c, req, &r, keep);
}

/* Methods are case-sensitive (RFC 9110 9.1): "get" is not GET. A method we know of but do not
   serve is 405; anything else 501. */
static int chat__method_status(chat_span m) {
    static const char *const known[] = {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    size_t i;
    if ((m.n == 3 && memcmp(m.p, "GET", 3) == 0) || (m.n == 4 && memcmp(m.p, "HEAD", 4) == 0)) return 0;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == m.n && memcmp(m.p, known[i], m.n) == 0) return 405;
    return 501;
}

/* Behind the trusted proxy a connection counts against the address the proxy forwarded (the
   proxy's own when it forwarded none). Returns 0, or -1 when that address is over its limit. */
static int chat__conn_forwarded(chat_server *srv, chat__conn *c, const chat_http_request *req) {
    chat__addr a;
    chat__peer *p;
    if (!(c->flags & CHAT__C_VIA_PROXY)) return 0;
    if (chat__forwarded_addr(req, &a) < 0) a = srv->proxy;
    p = chat__peer_get(srv, &a);
    return p ? chat__conn_set_peer(srv, c, p) : -1;
}

static void chat__conn_request(chat_server *srv, chat__conn *c, const chat_http_request *req) {
    chat_span path = req->target, query, host;
    const char *q = (const char *)memchr(path.p, '?', path.n);
    int keep = !(req->flags & CHAT_HTTP_BODY) &&
               (req->minor >= 1 ? !(req->flags & CHAT_HTTP_CLOSE) : (req->flags & CHAT_HTTP_KEEPALIVE) != 0);
    int i, status;
    query.p = q ? q + 1 : path.p + path.n;
    query.n = (size_t)(path.p + path.n - query.p);
    if (q) path.n = (size_t)(q - path.p);
    /* A keep-alive connection is bounded in requests and in life, so no one can hold a
       descriptor for ever by asking a little now and then. */
    if (++c->u.http.requests >= CHAT__HTTP_MAX_REQUESTS || srv->now >= c->u.http.expires) keep = 0;
    c->deadline = CHAT__MIN(srv->now + srv->cfg.handshake_timeout_ms, c->u.http.expires);
    if (!chat__rate_ok(srv, c)) {
        srv->stats.closed_rate++;
        CHAT__LOG((srv, CHAT_LOG_INFO, "closing a connection: more than %d requests per second", srv->cfg.max_rate));
        chat__conn_error(srv, c, req, 429, "Retry-After: 1\r\n", 0);
        return;
    }
    if (chat__conn_forwarded(srv, c, req) < 0) {
        srv->stats.refused_address++;
        CHAT__LOG((srv, CHAT_LOG_INFO, "refused a request: %d connections from one address", srv->cfg.max_per_address));
        chat__conn_error(srv, c, req, 429, "Retry-After: 10\r\n", 0);
        return;
    }
    if (req->minor >= 1 && !chat_http_header(req, "host", &host)) {
        chat__conn_error(srv, c, req, 400, NULL, 0); /* RFC 9112 3.2: Host is required */
        return;
    }
    status = chat__method_status(req->method);
    if (status == 501) {
        chat__conn_error(srv, c, req, 501, NULL, 0);
        return;
    }
    if (chat__server_is_chat_path(path)) {
        chat__conn_upgrade(srv, c, req, query);
        return;
    }
    if (status) {
        chat__conn_error(srv, c, req, 405, "Allow: GET, HEAD\r\n", keep);
        return;
    }
    if (chat_buf_reserve(&srv->text, path.n) != CHAT_OK) {
        chat__conn_abort(srv, c);
        return;
    }
    /* Assets are matched by their decoded path; nothing is ever read from a file system. */
    srv->text.len = chat_url_decode(path.p, path.n, (char *)srv->text.data, 0);
    if (srv->cfg.stats_path && strlen(srv->cfg.stats_path) == srv->text.len &&
        memcmp(srv->cfg.stats_path, srv->text.data, srv->text.len) == 0) {
        chat__conn_stats(srv, c, req, keep);
        return;
    }
    for (i = 0; i < srv->nassets; i++) {
        chat__asset *a = srv->assets[i];
        if (strlen(a->path) == srv->text.len && memcmp(a->path, srv->text.data, srv->text.len) == 0) {
            chat__response r;
            r.status = 200, r.type = a->type, r.extra = "Cache-Control: no-cache\r\n", r.body = &a->body, r.text = NULL;
            chat__conn_respond(srv, c, req, &r, keep);
            return;
        }
    }
    chat__conn_error(srv, c, req, 404, NULL, keep);
}

/* --- WebSocket input --- */

/* --- client events: a new one is a row of chat__events --- */

/* The string member `key` of an event, decoded into srv->text and NUL-terminated; 0 when the
   event has none (or it is not a string). */
static int chat__event_text(chat_server *srv, const unsigned char *msg, size_t n, const char *key) {
    chat_span v;
    srv->text.len = 0;
    if (chat_json_get(msg, n, key, &v) != 1 || v.p[0] != '"') return 0;
    if (chat_json_string(v, &srv->text) < 0 || chat_buf_reserve(&srv->text, 1) != CHAT_OK) return 0;
    srv->text.data[srv->text.len] = '\0';
    return 1;
}

/* Does the JSON string literal v escape a lone UTF-16 surrogate? Decoding makes each one U+FFFD,
   so two different cids would read the same: such a cid is no cid. */
static int chat__json_lone_surrogate(chat_span v) {
    size_t i;
    unsigned u, next;
    for (i = 1; i + 1 < v.n; i++) {
        if (v.p[i] != '\\') continue;
        if (v.p[++i] != 'u' || i + 5 > v.n || chat__json_hex4((const unsigned char *)v.p + i + 1, &u) < 0) continue;
        i += 4;
        if (u >= 0xDC00 && u <= 0xDFFF) return 1; /* a low one with no high one before it */
        if (u < 0xD800 || u > 0xDBFF) continue;
        if (i + 7 > v.n || v.p[i + 1] != '\\' || v.p[i + 2] != 'u' ||
            chat__json_hex4((const unsigned char *)v.p + i + 3, &next) < 0 || next < 0xDC00 || next > 0xDFFF)
            return 1;
        i += 6;
    }
    return 0;
}

/* The event's "cid" (a client's own id for its message: 1 to CHAT__CID_MAX bytes), decoded
   into srv->cid; 0 when it has none or it is not such a string (the message goes out without). */
static int chat__event_cid(chat_server *srv, const unsigned char *msg, size_t n) {
    chat_span v;
    srv->cid.len = 0;
    if (chat_json_get(msg, n, "cid", &v) != 1 || v.p[0] != '"' || v.n > 2 + 6 * CHAT__CID_MAX || chat__json_lone_surrogate(v))
        return 0;
    return chat_json_string(v, &srv->cid) == 0 && srv->cid.len >= 1 && srv->cid.len <= CHAT__CID_MAX;
}

/* What the server says itself (chat_server_broadcast, chat_server_post): no cid. */
static chat__words chat__words_of(const char *name, size_t name_len, const void *text, size_t text_len) {
    chat__words w;
    w.name = name, w.name_len = name_len, w.text = text, w.text_len = text_len;
    w.cid = NULL, w.cid_len = 0;
    w.time_ms = chat__wall_us() / 1000u;
    return w;
}

/* {"event":"send-message","message":TEXT,"cid":CID}: said to everyone, unless on_message vetoes
   it. A message with a cid its sender already used for a message still in the history is that
   message again (its page never saw it come back): it is not said twice, and the sender alone
   gets the original again, flagged as a replay, so its page knows it went out. */
static void chat__event_send_message(chat_server *srv, chat__conn *c, const unsigned char *msg, size_t n) {
    chat__words w;
    int has_cid;
    if (!chat__event_text(srv, msg, n, "message")) return;
    has_cid = chat__event_cid(srv, msg, n);
    if (has_cid) {
        chat__said *before = chat__room_said_before(&srv->room, c->member.name, c->member.name_len,
                                                    (const char *)srv->cid.data, srv->cid.len);
        if (before) {
            srv->stats.repeats++;
            chat__room_replay_one(&srv->room, &c->member, before);
            return;
        }
    }
    if (srv->cfg.on_message && (CHAT__CALLBACK(srv), srv->cfg.on_message(srv->cfg.user, srv, c->member.name,
                                                                          c->member.name_len, (const char *)srv->text.data,
                                                                          srv->text.len)))
        return;
    w = chat__words_of(c->member.name, c->member.name_len, srv->text.data, srv->text.len);
    if (has_cid) w.cid = (const char *)srv->cid.data, w.cid_len = srv->cid.len;
    chat__room_say(&srv->room, &w);
}

typedef struct chat__event {
    const char *name; /* the value of "event" */
    void (*handle)(chat_server *srv, chat__conn *c, const unsigned char *msg, size_t n);
} chat__event;

static const chat__event chat__events[] = {
    {"send-message", chat__event_send_message},
};

/* A complete text message is an event by its "event" member (the last one, as in JSON.parse).
   Unknown events and other valid JSON are ignored, as in the tutorial, and so is invalid JSON
   (where the tutorial crashes). */
static void chat__conn_message(chat_server *srv, chat__conn *c, const unsigned char *msg, size_t n) {
    chat_span event;
    size_t i;
    if (chat_json_get(msg, n, "event", &event) != 1 || event.p[0] != '"') return;
    for (i = 0; i < sizeof chat__events / sizeof chat__events[0]; i++)
        if (chat_json_string_is(event, chat__events[i].name)) {
            chat__events[i].handle(srv, c, msg, n);
            return;
        }
}

static const char *chat__close_reason(int code) {
    switch (code) {
    case 1002: return "protocol error";
    case 1007: return "invalid UTF-8";
    case 1009: return "message too big";
    default: return "";
    }
}

/* Decodes frames from buf, which holds the message assembled so far (u.ws.message_len bytes)
   followed by new input. Data is compacted onto the message as it is decoded, so a fragmented
   message ends up contiguous at buf[0]. Returns how many bytes must be kept for next time; they
   are left at buf[0]. */
static size_t chat__conn_frames(chat_server *srv, chat__conn *c, unsigned char *buf, size_t len) {
    size_t msg = (size_t)c->u.ws.message_len, pos = msg;
    chat_ws_event ev;
    while (c->state == CHAT__OPEN) {
        pos += chat_ws_decode(&c->u.ws, buf + pos, len - pos, srv->cfg.max_message, &ev);
        if (ev.type == CHAT_WS_NEED_MORE) break;
        if (c->u.ws.message_op == CHAT_WS_OP_BINARY || ev.opcode == CHAT_WS_OP_BINARY) {
            srv->stats.closed_protocol++;
            chat__conn_close(srv, c, 1003, "binary messages are not supported");
            break;
        }
        /* every frame counts, empty ones and pongs too: each costs a turn of work */
        if ((ev.type == CHAT_WS_NONE || (ev.type == CHAT_WS_DATA && ev.len == 0) || ev.type == CHAT_WS_PING ||
             ev.type == CHAT_WS_PONG) && !chat__rate_ok(srv, c)) {
            srv->stats.closed_rate++;
            CHAT__LOG((srv, CHAT_LOG_INFO, "closing %s: more than %d frames per second", c->member.name ? c->member.name : "a client",
                       srv->cfg.max_rate));
            chat__conn_close(srv, c, 1008, "too many messages");
            break;
        }
        switch (ev.type) {
        case CHAT_WS_DATA:
            memmove(buf + msg, ev.data, ev.len);
            msg += ev.len;
            if (ev.last) {
                chat__conn_message(srv, c, buf, msg);
                msg = 0;
            }
            break;
        case CHAT_WS_PING:
            chat__enqueue_new(srv, c, chat__frame_ws(CHAT_WS_OP_PONG, ev.data, ev.len, CHAT__FRAME_REPLY));
            break;
        case CHAT_WS_CLOSE: /* echo the peer's code, as RFC 6455 5.5.1 expects */
            chat__conn_close(srv, c, ev.code == 1005 ? 0 : ev.code, NULL);
            break;
        case CHAT_WS_ERROR:
            srv->stats.closed_protocol++;
            CHAT__LOG((srv, CHAT_LOG_DEBUG, "closing %s: %d %s", c->member.name ? c->member.name : "a client", ev.code,
                       chat__close_reason(ev.code)));
            chat__conn_close(srv, c, ev.code, chat__close_reason(ev.code));
            break;
        default: /* a data frame header, or a pong: the read itself proved the peer alive */
            break;
        }
        if (c->replies && pos < len && c->state == CHAT__OPEN) { /* the rest waits for the pong */
            c->flags |= CHAT__C_HELD;
            break;
        }
    }
    if (c->state != CHAT__OPEN) return 0;
    memmove(buf + msg, buf + pos, len - pos);
    return msg + len - pos;
}

/* Everything a connection does with new input, by state. Returns the bytes to keep (at buf[0]). */
static size_t chat__conn_input(chat_server *srv, chat__conn *c, unsigned char *buf, size_t len) {
    size_t pos = 0;
    for (;;) {
        switch (c->state) {
        case CHAT__HTTP: {
            chat_http_request req;
            int r = chat_http_parse((const char *)buf + pos, len - pos, srv->cfg.max_header, &c->u.http.scanned, &req);
            if (r == CHAT_HTTP_INCOMPLETE) {
                memmove(buf, buf + pos, len - pos);
                return len - pos;
            }
            if (r < 0) {
                memset(&req, 0, sizeof req);
                req.minor = 1;
                chat__conn_error(srv, c, &req, r == CHAT_HTTP_TOO_LARGE ? 431 : 400, NULL, 0);
                return 0;
            }
            chat__conn_request(srv, c, &req);
            pos += (size_t)r;
            if (c->state == CHAT__HTTP && c->replies && pos < len) { /* the next request waits */
                c->flags |= CHAT__C_HELD;
                memmove(buf, buf + pos, len - pos);
                return len - pos;
            }
            break;
        }
        case CHAT__OPEN:
            memmove(buf, buf + pos, len - pos);
            return chat__conn_frames(srv, c, buf, len - pos);
        default: /* closing: the peer's data no longer matters */
            return 0;
        }
    }
}

static void chat__conn_eof(chat_server *srv, chat__conn *c) {
    c->flags |= CHAT__C_PEER_EOF;
    if (c->state == CHAT__HTTP || c->state == CHAT__OPEN) chat__conn_finish(srv, c);
    if (c->state == CHAT__LINGER || !c->q_count) chat__conn_kill(srv, c);
    else chat__set_events(srv, c);
}

/* Where the next input lands: the shared buffer. What must be kept of it (a partial request,
   frame or message, or input held back) is copied out to c->rx, exactly as much as is kept, so
   a connection between messages owns no receive buffer and a partial one costs its size. */
static unsigned char *chat__conn_rx_space(chat_server *srv, size_t *room) {
    *room = CHAT_READ_CHUNK;
    if (++srv->out_era == 0) srv->out_era = 1; /* what output gathered there is overwritten */
    srv->out_fill = 0;
    return srv->rxbuf;
}

/* Handles n bytes just placed at chat__conn_rx_space() (n = 0: input held back earlier). */
static void chat__conn_received(chat_server *srv, chat__conn *c, size_t n) {
    unsigned char *buf = srv->rxbuf;
    size_t keep, len = n;
    c->flags &= ~CHAT__C_HELD;
    if (c->state == CHAT__OPEN && n) { /* any input proves the peer alive */
        c->deadline = srv->now + srv->cfg.ping_interval_ms;
        c->flags &= ~CHAT__C_PING_SENT;
    }
    if (c->rx_len) {
        unsigned char *p = n ? (unsigned char *)CHAT_REALLOC(c->rx, (size_t)c->rx_len + n) : c->rx;
        if (!p) {
            chat__conn_abort(srv, c);
            return;
        }
        memcpy(p + c->rx_len, srv->rxbuf, n);
        c->rx = buf = p, len = c->rx_len + n;
    }
    keep = chat__conn_input(srv, c, buf, len);
    if (c->state == CHAT__DEAD) return;
    if (!keep) {
        CHAT_FREE(c->rx);
        c->rx = NULL;
    } else if (buf == srv->rxbuf || keep < len) { /* the kept bytes are at buf[0] */
        unsigned char *p = (unsigned char *)(buf == srv->rxbuf ? CHAT_MALLOC(keep) : CHAT_REALLOC(c->rx, keep));
        if (!p) {
            chat__conn_abort(srv, c);
            return;
        }
        if (buf == srv->rxbuf) memcpy(p, buf, keep);
        c->rx = p;
    }
    c->rx_len = (uint32_t)keep;
    if (c->flags & CHAT__C_HELD) chat__set_events(srv, c);
}

/* Input the transport holds (see chat_transport.pending) is read next turn, without waiting for
   the socket, which may have nothing more to say; while input is paused it waits (set_events). */
static void chat__conn_pending(chat_server *srv, chat__conn *c) {
    c->flags &= ~CHAT__C_PENDING;
    if (srv->io.pending(srv->io.user, c->fd)) c->flags |= CHAT__C_PENDING;
    chat__set_events(srv, c);
}

/* One recv() per ready connection per turn, so a fast sender cannot starve the rest. */
static void chat__conn_read(chat_server *srv, chat__conn *c) {
    size_t room;
    unsigned char *space = chat__conn_rx_space(srv, &room);
    long n = srv->io.read(srv->io.user, c->fd, space, room);
    if (n < 0) {
        if (!chat__would_block(errno)) chat__conn_kill(srv, c);
        return;
    }
    if (n == 0) {
        chat__conn_eof(srv, c);
        return;
    }
    srv->stats.bytes_in += (unsigned long long)n;
    chat__rate_window(srv, c);
    c->rate_bytes += (uint32_t)n;
    if (srv->cfg.max_byte_rate >= 0 && c->rate_bytes >= (uint32_t)srv->cfg.max_byte_rate) {
        c->flags |= CHAT__C_THROTTLED; /* lifted by the sweep when the second is over */
        chat__set_events(srv, c);
    }
    chat__conn_received(srv, c, (size_t)n);
    if (srv->io.pending && c->state != CHAT__DEAD) chat__conn_pending(srv, c);
}

/* The transport's handshake (TLS): the first thing on a connection, bounded by the handshake
   timer like a request head (the sweep resets a peer that stalls in it). */
static void chat__conn_handshake(chat_server *srv, chat__conn *c) {
    int r = srv->io.handshake(srv->io.user, c->fd);
    if (r < 0) {
        srv->stats.closed_protocol++;
        CHAT__LOG((srv, CHAT_LOG_DEBUG, "transport handshake failed: %s", strerror(errno)));
        chat__conn_abort(srv, c);
        return;
    }
    c->flags &= ~(CHAT__C_HANDSHAKE | CHAT__C_HS_WRITE);
    if (r) c->flags |= CHAT__C_HANDSHAKE | (r == CHAT_WATCH_WRITE ? CHAT__C_HS_WRITE : 0);
    else if (srv->io.pending) chat__conn_pending(srv, c); /* a request may have come with it */
    chat__set_events(srv, c);
}

/* --- output --- */

/* Drops the first `sent` bytes of the queue, releasing the frames written out. */
static void chat__conn_advance(chat_server *srv, chat__conn *c, size_t sent) {
    while (sent) {
        chat__frame *f;
        CHAT_ASSERT(c->q_count > 0); /* the kernel took no more than we offered */
        f = c->q[c->q_head];
        size_t left = f->len - c->q_off;
        if (sent < left) {
            c->q_off += sent;
            return;
        }
        sent -= left;
        c->q_off = 0;
        c->q_head = (c->q_head + 1) & (c->q_cap - 1);
        c->q_count--;
        if (f->kind == CHAT__FRAME_USERS) {
            chat__room_users_written(&srv->room, &c->member);
        } else if (f->kind == CHAT__FRAME_REPLY && --c->replies == 0 && (c->flags & CHAT__C_HELD)) {
            srv->resume_pending = 1; /* the input it held back is handled next turn */
        }
        c->backlog -= chat__frame_cost(f);
        chat__frame_release(f);
    }
}

/* The first n queued frames of c as one buffer, for the kernel copies one faster than many small
   ones (its copy has a cost per piece: ~3 % of fanout's CPU). It is made in the read buffer,
   which is free while output is written: each frame is copied there once and stamped with where,
   so the next client whose queue holds the same frames in the same order (every member, after a
   broadcast) is written from the same bytes without a copy of its own. */
static const unsigned char *chat__conn_gather(chat_server *srv, chat__conn *c, unsigned n) {
    chat__frame *f = c->q[c->q_head];
    uint32_t at = f->out_at, end = f->out_at;
    size_t need = 0;
    unsigned i;
    for (i = 0; i < n; i++, end += (uint32_t)f->len) {
        f = c->q[(c->q_head + i) & (c->q_cap - 1)];
        if (f->out_era != srv->out_era || f->out_at != end) break;
    }
    if (i == n) return srv->rxbuf + at;
    for (i = 0; i < n; i++) need += c->q[(c->q_head + i) & (c->q_cap - 1)]->len;
    if (srv->out_fill + need > CHAT_READ_CHUNK) { /* full: start over, forgetting what is there */
        if (++srv->out_era == 0) srv->out_era = 1;
        srv->out_fill = 0;
    }
    at = srv->out_fill;
    for (i = 0; i < n; i++) {
        f = c->q[(c->q_head + i) & (c->q_cap - 1)];
        memcpy(srv->rxbuf + srv->out_fill, f->data, f->len);
        f->out_era = srv->out_era, f->out_at = srv->out_fill;
        srv->out_fill += (uint32_t)f->len;
    }
    return srv->rxbuf + at;
}

/* Writes as much of the queue as the socket takes, with one sendmsg() per CHAT__IOV_MAX frames. */
static void chat__conn_flush(chat_server *srv, chat__conn *c) {
    while (c->q_count) {
        chat_iovec iov[CHAT__IOV_MAX];
        size_t total = 0;
        unsigned i, n = CHAT__MIN(c->q_count, (unsigned)CHAT__IOV_MAX);
        long sent;
        for (i = 0; i < n; i++) {
            chat__frame *f = c->q[(c->q_head + i) & (c->q_cap - 1)];
            size_t off = i ? 0 : c->q_off;
            iov[i].base = f->data + off;
            iov[i].len = f->len - off;
            total += f->len - off;
        }
        if (n > 1 && total + c->q_off <= CHAT_READ_CHUNK && srv->io.write == chat__posix_write) {
            iov[0].base = chat__conn_gather(srv, c, n) + c->q_off, iov[0].len = total, n = 1;
        }
        sent = srv->io.write(srv->io.user, c->fd, iov, (int)n);
        if (sent < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            chat__conn_kill(srv, c);
            return;
        }
        srv->stats.bytes_out += (unsigned long long)sent;
        chat__conn_advance(srv, c, (size_t)sent);
        if ((size_t)sent < total) break;
    }
    if (!c->q_count) {
        chat__queue_emptied(srv, c);
        if (c->state == CHAT__CLOSING) {
            if (c->flags & CHAT__C_PEER_EOF) {
                chat__conn_kill(srv, c);
                return;
            }
            /* FIN after the last byte; then wait for the peer's FIN rather than close() at once,
               which would reset the connection if the peer's last bytes were still unread. */
            (void)srv->io.shutdown(srv->io.user, c->fd);
            c->state = CHAT__LINGER;
        }
    }
    chat__set_events(srv, c);
}

static void chat__flush_all(chat_server *srv) {
    while (srv->flush_head) {
        chat__conn *c = srv->flush_head;
        srv->flush_head = c->flush_next;
        c->flags &= ~CHAT__C_FLUSH_LISTED;
        if (c->state != CHAT__DEAD) chat__conn_flush(srv, c);
    }
}

/* --- connections and the poll set --- */

static chat__conn *chat__conn_new(chat_server *srv, int fd) {
    chat__conn *c;
    if (srv->nfds == srv->cap) {
        unsigned cap = srv->cap * 2;
        struct pollfd *p = (struct pollfd *)CHAT_REALLOC(srv->pfds, cap * sizeof *p);
        chat__conn **cs;
        unsigned *ready;
        if (!p) return NULL;
        srv->pfds = p;
        cs = (chat__conn **)CHAT_REALLOC(srv->conns, cap * sizeof *cs);
        if (!cs) return NULL;
        srv->conns = cs;
        ready = (unsigned *)CHAT_REALLOC(srv->ready, cap * sizeof *ready);
        if (!ready) return NULL;
        srv->ready = ready, srv->cap = cap;
    }
    c = (chat__conn *)CHAT_MALLOC(sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->fd = fd, c->slot = srv->nfds, c->state = CHAT__HTTP;
    c->deadline = srv->now + srv->cfg.handshake_timeout_ms;
    c->u.http.expires = srv->now + (chat__ms)srv->cfg.handshake_timeout_ms * CHAT__HTTP_LIFETIME;
    srv->pfds[c->slot].events = POLLIN, srv->pfds[c->slot].revents = 0;
    if (chat__watch_fd(srv, c->slot, fd, 1) != CHAT_OK) {
        CHAT_FREE(c);
        return NULL;
    }
    srv->conns[c->slot] = c;
    srv->nfds++;
    return c;
}

/* The end of a turn, the one place where anything goes: members that left leave the room (and
   on_leave runs), then the connections that died are closed and freed; the last slot moves into
   each freed one. */
static void chat__reap(chat_server *srv) {
    unsigned i;
    if (srv->closed_slow_logged != srv->stats.closed_slow) /* said here: not from inside a broadcast */
        for (i = CHAT__SLOT_CONNS; i < srv->nfds; i++) {
            chat__conn *c = srv->conns[i];
            if (!(c->flags & CHAT__C_TOO_SLOW)) continue;
            c->flags &= ~CHAT__C_TOO_SLOW;
            CHAT__LOG((srv, CHAT_LOG_INFO, "closing %s: more than %lu bytes queued", c->member.name ? c->member.name : "a client",
                       (unsigned long)srv->cfg.max_backlog));
        }
    srv->closed_slow_logged = srv->stats.closed_slow;
    chat__room_settle(&srv->room); /* members that left this turn: on_leave */
    if (!srv->dead_count) return;
    for (i = srv->nfds; i-- > CHAT__SLOT_CONNS;) {
        chat__conn *c = srv->conns[i];
        if (c->state != CHAT__DEAD) continue;
        chat__watch_fd(srv, i, c->fd, 0);
        srv->io.close(srv->io.user, c->fd, (c->flags & CHAT__C_RESET) != 0);
        CHAT_FREE(c);
        srv->nfds--;
        if (i != srv->nfds) {
            srv->pfds[i] = srv->pfds[srv->nfds];
            srv->conns[i] = srv->conns[srv->nfds];
            srv->conns[i]->slot = i;
            srv->slot_of_fd[srv->pfds[i].fd] = (int)i;
        }
    }
    srv->dead_count = 0;
    if (srv->accept_paused) { /* descriptors were freed: try again */
        srv->accept_paused = 0;
        chat__watch(srv, CHAT__SLOT_LISTEN, POLLIN);
    }
}

static void chat__accept_pause(chat_server *srv) {
    srv->accept_paused = 1;
    srv->accept_resume = srv->now + CHAT__ACCEPT_BACKOFF_MS;
    chat__watch(srv, CHAT__SLOT_LISTEN, 0);
}

/* At max_connections a newcomer takes the place of the connection that has waited longest
   for its next HTTP request: a page loads in a moment, so whoever holds an HTTP connection
   for long (a trickle of requests, a half-sent head) gives way rather than lock others out.
   Returns 1 when one was evicted. */
static int chat__evict_http(chat_server *srv, const chat__conn *newcomer) {
    chat__conn *victim = NULL;
    unsigned i;
    for (i = CHAT__SLOT_CONNS; i < srv->nfds; i++) {
        chat__conn *c = srv->conns[i];
        if (c != newcomer && c->state == CHAT__HTTP && (!victim || c->deadline < victim->deadline)) victim = c;
    }
    if (!victim) return 0;
    srv->stats.closed_idle++;
    chat__conn_abort(srv, victim);
    return 1;
}

/* A new connection counts against its address (unless it comes from the trusted proxy: then
   against the address the proxy forwards, once its request says which) and against
   max_connections. Returns 0, or -1 when it must be refused. */
static int chat__conn_admit(chat_server *srv, chat__conn *c) {
    chat__addr a;
    chat__peer *p;
    if (srv->nfds - CHAT__SLOT_CONNS - srv->dead_count > (unsigned)srv->cfg.max_connections && !chat__evict_http(srv, c)) {
        srv->stats.refused_full++;
        CHAT__LOG((srv, CHAT_LOG_WARN, "refused a connection: %d connections is the limit", srv->cfg.max_connections));
        return -1;
    }
    if (chat__peer_addr(c->fd, &a) < 0) return -1;
    if (srv->cfg.trusted_proxy && memcmp(a.b, srv->proxy.b, sizeof a.b) == 0) {
        c->flags |= CHAT__C_VIA_PROXY;
        return 0;
    }
    p = chat__peer_get(srv, &a);
    if (!p || chat__conn_set_peer(srv, c, p) < 0) {
        char text[64];
        srv->stats.refused_address++;
        chat__addr_text(&a, text, sizeof text);
        CHAT__LOG((srv, CHAT_LOG_INFO, "refused a connection from %s: %d is the limit per address", text,
                   srv->cfg.max_per_address));
        return -1;
    }
    return 0;
}

/* A connected socket (accepted, or adopted) becomes a connection. Returns CHAT_OK; CHAT_EBUSY
   when a limit refused it (it is reset at the end of the turn); CHAT_ENOMEM (fd closed). */
static int chat__conn_start(chat_server *srv, int fd) {
    chat__conn *c = chat__conn_new(srv, fd);
    if (!c) {
        srv->io.close(srv->io.user, fd, 1);
        return CHAT_ENOMEM;
    }
    srv->stats.accepted++;
    if (chat__conn_admit(srv, c) < 0 || (srv->io.open && srv->io.open(srv->io.user, fd) != 0)) {
        chat__conn_abort(srv, c); /* reset at once: a refused connection holds nothing */
        return CHAT_EBUSY;
    }
    if (srv->io.handshake) c->flags |= CHAT__C_HANDSHAKE; /* waits for the peer's first bytes */
    chat__socket_tune(fd, srv->cfg.sndbuf, srv->cfg.rcvbuf);
    return CHAT_OK;
}

static void chat__accept_all(chat_server *srv) {
    int i;
    for (i = 0; i < CHAT__ACCEPT_PER_TURN; i++) {
        int fd = chat__accept(srv->listen_fd);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays in the kernel's queue
               and poll() would report it again at once; wait instead of spinning. */
            CHAT__LOG((srv, CHAT_LOG_WARN, "accept: %s; pausing for %d ms", strerror(errno), CHAT__ACCEPT_BACKOFF_MS));
            chat__accept_pause(srv);
            return;
        }
        if (chat__conn_start(srv, fd) == CHAT_ENOMEM) {
            chat__accept_pause(srv);
            return;
        }
    }
}

/* Deadlines, checked a few times a second rather than per connection per turn. */
static void chat__sweep(chat_server *srv) {
    uint32_t second = (uint32_t)(srv->now / 1000);
    unsigned i;
    for (i = CHAT__SLOT_CONNS; i < srv->nfds; i++) {
        chat__conn *c = srv->conns[i];
        if ((c->flags & CHAT__C_THROTTLED) && c->rate_second != second) {
            c->flags &= ~CHAT__C_THROTTLED;
            chat__set_events(srv, c);
        }
        if (c->state == CHAT__DEAD || srv->now < c->deadline) continue;
        if (c->state == CHAT__OPEN && !(c->flags & CHAT__C_PING_SENT)) {
            c->flags |= CHAT__C_PING_SENT;
            c->deadline = srv->now + srv->cfg.ping_interval_ms;
            chat__enqueue_new(srv, c, chat__frame_ws(CHAT_WS_OP_PING, NULL, 0, CHAT__FRAME_SHARED));
        } else if (c->state == CHAT__OPEN) {
            srv->stats.closed_idle++;
            CHAT__LOG((srv, CHAT_LOG_DEBUG, "closing %s: no response to ping", c->member.name ? c->member.name : "a client"));
            chat__conn_close(srv, c, 1001, "no response to ping");
        } else {
            if (c->state == CHAT__HTTP) srv->stats.closed_idle++;
            CHAT__LOG((srv, CHAT_LOG_DEBUG, "timeout in state %d", c->state));
            chat__conn_abort(srv, c);
        }
    }
    if (srv->peers_idle) chat__peers_prune(srv, 0);
    CHAT__LOG_NOTE(srv);
    if (srv->accept_paused && srv->now >= srv->accept_resume) {
        srv->accept_paused = 0;
        chat__watch(srv, CHAT__SLOT_LISTEN, POLLIN);
    }
    srv->next_sweep = srv->now + CHAT__SWEEP_MS;
}

static void chat__drain_posts(chat_server *srv, int all);

static void chat__begin_shutdown(chat_server *srv) {
    unsigned i;
    chat__drain_posts(srv, 1); /* what was posted before the stop still goes out */
    srv->phase = CHAT__STOPPING;
    srv->stop_deadline = srv->now + srv->cfg.close_timeout_ms;
    if (srv->listen_fd >= 0) chat__watch_fd(srv, CHAT__SLOT_LISTEN, srv->listen_fd, 0);
    chat__fd_close(srv->listen_fd);
    srv->listen_fd = -1;
    CHAT__LOG((srv, CHAT_LOG_INFO, "shutting down: closing %d client%s", srv->room.count - chat__mqtt_remote_count(srv),
               srv->room.count - chat__mqtt_remote_count(srv) == 1 ? "" : "s"));
#ifndef CHAT_NO_MQTT
    chat__mqtt_stop(srv); /* what is queued goes out, then this board's list is cleared */
#endif
    for (i = CHAT__SLOT_CONNS; i < srv->nfds; i++) {
        chat__conn *c = srv->conns[i];
        if (c->state == CHAT__OPEN) chat__conn_close(srv, c, 1001, "server shutting down");
        else if (c->state == CHAT__HTTP && !c->q_count) chat__conn_kill(srv, c);
        else if (c->state == CHAT__HTTP) chat__conn_finish(srv, c);
    }
}

/* The posts' pipe carries one pointer per write(), a message from chat_server_post. A pointer is
   written in one piece (far below PIPE_BUF), so reads of a multiple of its size always see whole
   records. */
typedef struct chat__post {
    size_t name_len, text_len; /* the name, then the text, follow the struct */
} chat__post;

/* One read per turn, at most CHAT__POSTS_PER_TURN records: a thread posting without pause keeps
   the pipe full, and the loop must still serve its clients and see a stop. What is left waits
   for the next turn (the pipe stays readable). With `all` (a stop, chat_server_free), as many
   as a full pipe holds, so what was posted before still goes out, and no more: a poster that
   goes on cannot make that last. */
static void chat__drain_posts(chat_server *srv, int all) {
    chat__post *posts[CHAT__POSTS_PER_TURN];
    ssize_t n;
    int batches = all ? CHAT__POSTS_AT_STOP / CHAT__POSTS_PER_TURN : 1;
    while (batches-- > 0 && (n = chat__wake_read(srv->wake_rd, posts, sizeof posts)) > 0) {
        size_t i;
        for (i = 0; i < (size_t)n / sizeof posts[0]; i++) {
            chat__post *p = posts[i];
            if (srv->phase == CHAT__RUNNING) {
                chat__words w = chat__words_of((const char *)(p + 1), p->name_len, (const char *)(p + 1) + p->name_len,
                                               p->text_len);
                chat__room_say(&srv->room, &w);
            }
            CHAT_FREE(p);
        }
    }
}


static void chat__drain_stops(chat_server *srv) {
    char bytes[64];
    while (chat__wake_read(srv->stop_rd, bytes, sizeof bytes) > 0) CHAT__FLAG_SET(srv->stop_requested);
}

/* How long poll() may sleep: until the next deadline, at most timeout_ms (-1: no limit). */
static int chat__poll_timeout(chat_server *srv, int timeout_ms) {
    chat__ms due = 0, wait;
    int has_due = 0;
    if (srv->flush_head || srv->room.handout || srv->room.leaving || srv->resume_pending || srv->dead_count ||
        srv->read_pending ||
        (CHAT__FLAG_GET(srv->stop_requested) && srv->phase == CHAT__RUNNING) ||
        (srv->phase == CHAT__STOPPING && srv->nfds == CHAT__SLOT_CONNS && chat__mqtt_done(srv))) /* nothing left: stop now */
        return 0;
#define CHAT__DUE(t) do { if (!has_due || (t) < due) due = (t), has_due = 1; } while (0)
    if (srv->nfds > CHAT__SLOT_CONNS || srv->accept_paused || srv->log_dropped || srv->nspare_q) CHAT__DUE(srv->next_sweep);
    if (srv->room.frame_version != srv->room.version) CHAT__DUE(srv->room.not_before);
    if (srv->phase == CHAT__STOPPING) CHAT__DUE(srv->stop_deadline);
#ifndef CHAT_NO_MQTT
    if (chat__mqtt_due(srv) >= 0) CHAT__DUE(chat__mqtt_due(srv));
#endif
#undef CHAT__DUE
    if (!has_due) return timeout_ms < 0 ? -1 : timeout_ms;
    wait = due > srv->now ? due - srv->now : 0;
    if (timeout_ms >= 0 && timeout_ms < wait) wait = timeout_ms;
    return wait > INT_MAX ? INT_MAX : (int)wait;
}


#ifndef CHAT_NO_MQTT
/* ============================================================================================ */
/* mqtt bridge: one room across boards through an MQTT 3.1.1 broker                            */
/* ============================================================================================ */

/* The topics, under the prefix P (README.md, "More than one board", says the same for others):
     P/msg/NODE    every message said on board NODE, QoS 1, not retained:
                   {"node":NODE,"id":ID,"time":MS,"username":NAME,"message":TEXT[,"cid":CID]}
                   ID is NODE's own id of the message, so it grows: one that is not above the last
                   taken from NODE is a repeat (QoS 1 may deliver twice) and is dropped.
     P/users/NODE  retained, QoS 1: NODE's own users in join order,
                   {"node":NODE,"run":RUN,"serial":N,"users":[NAME,...]}; empty when NODE has
                   gone (its will, or its clean stop).
   The link: clean session off (the broker keeps this board's messages while it is away), a
   zero-length retained will on P/users/NODE, keep-alive. Its own publishes come back (3.1.1 has
   no "no local"): dropped by node. A name two boards admitted at once goes to the lower node id
   (bytewise) on every board, so all agree without clocks. */

#define CHAT__MQTT_NODE_MAX 64
#define CHAT__MQTT_MAX_NODES 256          /* boards remembered (their last message id) */
#define CHAT__MQTT_WINDOW 64              /* messages sent and not yet acknowledged */
#define CHAT__MQTT_TX_AHEAD 65536         /* bytes encoded ahead of the socket */
#define CHAT__MQTT_TX_MAX (4 * CHAT__MQTT_TX_AHEAD) /* unsent past this: the broker does not read */
#define CHAT__MQTT_CONNECT_TIMEOUT_MS 10000
#define CHAT__MQTT_BACKOFF_MIN_MS 100
#define CHAT__MQTT_BACKOFF_MAX_MS 30000
#define CHAT__MQTT_STABLE_MS 5000         /* a link up this long starts the backoff afresh */
#define CHAT__MQTT_ADDRS 4

enum { CHAT__MQTT_DOWN, CHAT__MQTT_CONNECTING, CHAT__MQTT_HANDSHAKE, CHAT__MQTT_UP, CHAT__MQTT_DONE };

/* A message for the broker, its payload after it. */
typedef struct chat__mqtt_msg {
    size_t len;
    unsigned pid;        /* packet id, given when it is first sent */
    unsigned char acked; /* PUBACK came (it leaves when those before it have too) */
} chat__mqtt_msg;

/* A name in another board's list. At most one claim of a name holds it: it is then a member of
   the room (a chat__member that is no connection). */
typedef struct chat__mqtt_claim {
    struct chat__mqtt_claim *hash_next, *node_next;
    chat__member *member; /* in the room while this claim holds the name */
    int node;             /* index in nodes */
    size_t name_len;
    unsigned char seen;   /* in the list being taken in */
    /* the name follows */
} chat__mqtt_claim;

#define CHAT__CLAIM_NAME(c) ((const char *)((c) + 1))

typedef struct chat__mqtt_node {
    char id[CHAT__MQTT_NODE_MAX + 1];
    uint64_t last_id;   /* the newest message id taken from it */
    chat__mqtt_claim *claims;
    int nclaims;
    unsigned char stale; /* listed before the link went: gone unless its list comes again */
} chat__mqtt_node;

typedef struct chat__mqtt {
    /* what to connect to, from the URL; names and topics */
    char host[256], node[CHAT__MQTT_NODE_MAX + 1], run[17];
    int port, has_user, has_pass;
    chat_buf prefix, user, pass, topic_msg, topic_users, client_id;
    /* the link */
    chat__netaddr addrs[CHAT__MQTT_ADDRS];
    int naddrs, addr_at;
    int fd, state, attempts, stopping;
    chat__ms due;        /* DOWN: next attempt; CONNECTING, HANDSHAKE: give up */
    chat__ms backoff, up_since, last_in, last_out;
    int ping_out;
    chat_buf rx, tx;     /* tx: bytes for the broker from tx_off on */
    size_t tx_off;
    unsigned next_pid, sub_pid, users_pid, bye_pid; /* in flight: SUBSCRIBE, users list, farewell */
    /* messages for the broker, in order: q_sent of them from the head are written */
    chat__mqtt_msg **q;
    unsigned q_cap, q_head, q_count, q_sent;
    size_t q_bytes;
    /* this board's users */
    chat_buf users, users_sent; /* the JSON array now, and as last published */
    unsigned users_seen;        /* room.frame_version it was built at */
    int users_pending;
    unsigned long serial, resync_serial; /* resync_serial: our list whose echo ends a resync */
    int resyncing;
    /* the other boards */
    chat__mqtt_node *nodes;
    int nnodes, nclaims, remote, full_logged;
    chat__mqtt_claim **buckets;
    unsigned nbuckets;
    chat__member *graveyard; /* remote members settled, freed at the end of the turn */
    int injecting;           /* saying another board's message: not ours to publish */
    chat_buf name;           /* a decoded username */
} chat__mqtt;

static int chat__mqtt_remote_count(const chat_server *srv) { return srv->mqtt ? srv->mqtt->remote : 0; }
static const char *chat__mqtt_node_id(const chat_server *srv) { return srv->mqtt->node; }

/* --- configuration --- */

/* Copies the percent-decoded s[0..n) into b, NUL-terminated. */
static int chat__mqtt_decoded(chat_buf *b, const char *s, size_t n) {
    b->len = 0;
    if (chat_buf_reserve(b, n + 1) != CHAT_OK) return -1;
    b->len = chat_url_decode(s, n, (char *)b->data, 0);
    b->data[b->len] = '\0';
    return 0;
}

static int chat__mqtt_node_ok(const char *s, size_t n) {
    size_t i;
    if (n < 1 || n > CHAT__MQTT_NODE_MAX) return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/* mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX]; HOST may be [IPv6]. Returns NULL or what is wrong. */
static const char *chat__mqtt_parse_url(chat__mqtt *q, const char *url) {
    const char *p = url, *at, *end, *slash, *host_end, *colon;
    size_t n;
    if (strncmp(p, "mqtt://", 7) != 0) return "it must start with mqtt:// (no TLS: mqtts is not supported)";
    p += 7;
    slash = strchr(p, '/');
    end = slash ? slash : p + strlen(p);
    for (at = end; at > p && at[-1] != '@'; at--) {}
    if (at > p) { /* credentials */
        const char *c = (const char *)memchr(p, ':', (size_t)(at - 1 - p));
        if (chat__mqtt_decoded(&q->user, p, (size_t)((c ? c : at - 1) - p)) < 0) return "out of memory";
        q->has_user = 1;
        if (c) {
            if (chat__mqtt_decoded(&q->pass, c + 1, (size_t)(at - 1 - c - 1)) < 0) return "out of memory";
            q->has_pass = 1;
        }
        p = at;
    }
    if (*p == '[') {
        host_end = (const char *)memchr(p, ']', (size_t)(end - p));
        if (!host_end) return "an IPv6 address needs its closing ]";
        n = (size_t)(host_end - p - 1), p++;
        colon = host_end + 1 < end && host_end[1] == ':' ? host_end + 1 : NULL;
        if (host_end + 1 < end && !colon) return "something after the ] that is not :PORT";
    } else {
        colon = (const char *)memchr(p, ':', (size_t)(end - p));
        n = (size_t)((colon ? colon : end) - p);
    }
    if (n == 0 || n >= sizeof q->host) return "no host, or a host name over 255 bytes";
    memcpy(q->host, p, n);
    q->host[n] = '\0';
    q->port = 1883;
    if (colon) {
        char *e;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || colon + 1 == end || v < 1 || v > 65535) return "the port must be a number from 1 to 65535";
        q->port = (int)v;
    }
    n = slash ? strlen(slash + 1) : 0;
    while (n && slash[n] == '/') n--; /* a trailing slash */
    if (chat__mqtt_decoded(&q->prefix, n ? slash + 1 : "chat", n ? n : 4) < 0) return "out of memory";
    if (!chat__mqtt_topic_ok((const char *)q->prefix.data, q->prefix.len) || q->prefix.data[0] == '$')
        return "the prefix must be a topic name without + or # that does not start with $";
    return NULL;
}

static chat__ms chat__mqtt_jitter(chat__mqtt *q, chat__ms ms) { /* +-20 %: boards that lost one broker do not all come back at once */
    unsigned h = chat__hash(q->node, strlen(q->node)) ^ (unsigned)q->attempts * 2654435761u;
    return ms - ms / 5 + (chat__ms)(h % (unsigned)(ms * 2 / 5 + 1));
}

/* The topics and the client id, once the node id is known (at the first attempt: the default
   needs the listening port). */
static int chat__mqtt_names(chat_server *srv, chat__mqtt *q) {
    static const char msg[] = "/msg/", users[] = "/users/";
    if (!q->node[0]) { /* the default: host name and port, made a valid node id */
        char host[CHAT__MQTT_NODE_MAX - 6];
        size_t i;
        chat__host_name(host, sizeof host);
        for (i = 0; host[i]; i++)
            if (!chat__mqtt_node_ok(host + i, 1)) host[i] = '-';
        snprintf(q->node, sizeof q->node, "%s-%d", host[0] ? host : "board", srv->port);
        CHAT__LOG((srv, CHAT_LOG_INFO, "mqtt: this board is node %s (-n or chat_config.mqtt_node to name it)", q->node));
    }
    q->topic_msg.len = q->topic_users.len = q->client_id.len = 0;
    if (chat_buf_append(&q->topic_msg, q->prefix.data, q->prefix.len) || chat_buf_append(&q->topic_msg, msg, sizeof msg - 1) ||
        chat_buf_append(&q->topic_msg, q->node, strlen(q->node)) ||
        chat_buf_append(&q->topic_users, q->prefix.data, q->prefix.len) ||
        chat_buf_append(&q->topic_users, users, sizeof users - 1) || chat_buf_append(&q->topic_users, q->node, strlen(q->node)) ||
        chat_buf_append(&q->client_id, q->prefix.data, q->prefix.len) || chat_buf_append(&q->client_id, ":", 1) ||
        chat_buf_append(&q->client_id, q->node, strlen(q->node)))
        return CHAT_ENOMEM;
    return CHAT_OK;
}

/* Made by chat_server_create when cfg.mqtt is set. */
static int chat__mqtt_create(chat_server *srv) {
    chat__mqtt *q = (chat__mqtt *)CHAT_MALLOC(sizeof *q);
    const char *problem;
    unsigned char r[8];
    int i;
    if (!q) return CHAT_ENOMEM;
    memset(q, 0, sizeof *q);
    srv->mqtt = q;
    q->fd = -1;
    q->backoff = CHAT__MQTT_BACKOFF_MIN_MS;
    q->next_pid = 1;
    problem = chat__mqtt_parse_url(q, srv->cfg.mqtt);
    if (!problem && srv->cfg.mqtt_node) {
        if (!chat__mqtt_node_ok(srv->cfg.mqtt_node, strlen(srv->cfg.mqtt_node)))
            problem = "the node id must be 1 to 64 letters, digits, '.', '_' or '-'";
        else
            snprintf(q->node, sizeof q->node, "%s", srv->cfg.mqtt_node);
    }
    if (problem) {
        CHAT__LOG((srv, CHAT_LOG_ERROR, "mqtt: %s: %s", srv->cfg.mqtt, problem));
        return CHAT_EINVAL;
    }
    if (chat__random_bytes(r, sizeof r) < 0) memcpy(r, srv->secret, sizeof r);
    for (i = 0; i < 8; i++) snprintf(q->run + 2 * i, 3, "%02x", r[i]);
    q->users_seen = srv->room.frame_version - 1; /* the first list goes out on connecting */
    return CHAT_OK;
}

/* --- the other boards' users --- */

static int chat__mqtt_node_find(const chat__mqtt *q, const char *id, size_t n) {
    int i;
    for (i = 0; i < q->nnodes; i++)
        if (strlen(q->nodes[i].id) == n && memcmp(q->nodes[i].id, id, n) == 0) return i;
    return -1;
}

/* The node's index, added when new; -1 when there are too many or out of memory. */
static int chat__mqtt_node_get(chat_server *srv, chat__mqtt *q, const char *id, size_t n) {
    int i = chat__mqtt_node_find(q, id, n);
    chat__mqtt_node *more;
    (void)srv; /* for the log */
    if (i >= 0) return i;
    if (q->nnodes >= CHAT__MQTT_MAX_NODES) {
        if (!q->full_logged++) CHAT__LOG((srv, CHAT_LOG_ERROR, "mqtt: more than %d boards: the others are ignored", CHAT__MQTT_MAX_NODES));
        return -1;
    }
    more = (chat__mqtt_node *)CHAT_REALLOC(q->nodes, (size_t)(q->nnodes + 1) * sizeof *more);
    if (!more) return -1;
    q->nodes = more;
    memset(&q->nodes[q->nnodes], 0, sizeof *more);
    memcpy(q->nodes[q->nnodes].id, id, n);
    return q->nnodes++;
}

static unsigned chat__mqtt_bucket(const chat__mqtt *q, const char *name, size_t n) {
    return chat__hash(name, n) & (q->nbuckets - 1);
}

static chat__mqtt_claim *chat__mqtt_claim_find(const chat__mqtt *q, int node, const char *name, size_t n) {
    chat__mqtt_claim *c;
    if (!q->nbuckets) return NULL;
    for (c = q->buckets[chat__mqtt_bucket(q, name, n)]; c; c = c->hash_next)
        if (c->node == node && c->name_len == n && memcmp(CHAT__CLAIM_NAME(c), name, n) == 0) return c;
    return NULL;
}

/* The one claim that holds a name, or should: the lowest node id among its claims. */
static chat__mqtt_claim *chat__mqtt_winner(const chat__mqtt *q, const char *name, size_t n) {
    chat__mqtt_claim *c, *best = NULL;
    if (!q->nbuckets) return NULL;
    for (c = q->buckets[chat__mqtt_bucket(q, name, n)]; c; c = c->hash_next)
        if (c->name_len == n && memcmp(CHAT__CLAIM_NAME(c), name, n) == 0 &&
            (!best || strcmp(q->nodes[c->node].id, q->nodes[best->node].id) < 0))
            best = c;
    return best;
}

static void chat__mqtt_release(chat_server *srv, chat__mqtt_claim *c) {
    if (!c->member) return;
    chat__room_leave_later(&srv->room, c->member); /* freed from the graveyard once settled */
    c->member = NULL;
}

/* Decides who holds a name after a change: a local user, one claim, or nobody. A local user
   that a lower node id claims too is closed with the tutorial's 1008; every board decides the
   same way from the same lists. */
static void chat__mqtt_resolve(chat_server *srv, const char *name, size_t n) {
    chat__mqtt *q = srv->mqtt;
    chat__mqtt_claim *best = chat__mqtt_winner(q, name, n), *c;
    chat__member *here = chat__room_find(&srv->room, name, n), *m;
    int local_wins;
    char *copy;
    if (!best) return;
    if (here && here->remote) here = NULL;
    local_wins = here && strcmp(q->node, q->nodes[best->node].id) < 0;
    for (c = q->buckets[chat__mqtt_bucket(q, name, n)]; c; c = c->hash_next)
        if ((c != best || local_wins) && c->name_len == n && memcmp(CHAT__CLAIM_NAME(c), name, n) == 0) chat__mqtt_release(srv, c);
    if (local_wins || best->member) return;
    if (here) {
        chat__conn *lost = CHAT__CONN_OF(here);
        char reason[160];
        size_t cut = CHAT__MIN(n, (size_t)100);
        while (cut < n && (name[cut] & 0xC0) == 0x80) cut--;
        snprintf(reason, sizeof reason, "用户名 %.*s 已被占用", (int)cut, name);
        srv->stats.mqtt_conflicts++;
        CHAT__LOG((srv, CHAT_LOG_WARN, "mqtt: %s joined here and on board %s at once: the lower node id keeps it, so %s here is closed",
                   here->name, q->nodes[best->node].id, here->name));
        chat__conn_close(srv, lost, 1008, reason);
        if (!here->leaving) chat__conn_abort(srv, lost); /* the close could not even be queued */
    }
    m = (chat__member *)CHAT_MALLOC(sizeof *m);
    copy = (char *)CHAT_MALLOC(n + 1);
    if (!m || !copy || (memcpy(copy, name, n), copy[n] = '\0', chat__room_join(&srv->room, m, copy, n)) != CHAT_OK) {
        CHAT_FREE(m), CHAT_FREE(copy);
        return;
    }
    m->remote = 1;
    m->users_inflight = 1; /* never handed a user list */
    best->member = m;
    q->remote++;
}

static int chat__mqtt_claims_grow(chat__mqtt *q) {
    unsigned nb = q->nbuckets ? q->nbuckets * 2 : 64, i;
    chat__mqtt_claim **b = (chat__mqtt_claim **)CHAT_MALLOC(nb * sizeof *b), *c, *next;
    if (!b) return CHAT_ENOMEM;
    memset(b, 0, nb * sizeof *b);
    for (i = 0; i < q->nbuckets; i++)
        for (c = q->buckets[i]; c; c = next) {
            unsigned k = chat__hash(CHAT__CLAIM_NAME(c), c->name_len) & (nb - 1);
            next = c->hash_next;
            c->hash_next = b[k], b[k] = c;
        }
    CHAT_FREE(q->buckets);
    q->buckets = b, q->nbuckets = nb;
    return CHAT_OK;
}

static chat__mqtt_claim *chat__mqtt_claim_add(chat_server *srv, int node, const char *name, size_t n) {
    chat__mqtt *q = srv->mqtt;
    chat__mqtt_claim *c;
    unsigned b;
    if (q->nclaims >= CHAT_MQTT_MAX_REMOTE) {
        if (!q->full_logged++)
            CHAT__LOG((srv, CHAT_LOG_ERROR, "mqtt: more than %d users on other boards: the others are not listed", CHAT_MQTT_MAX_REMOTE));
        return NULL;
    }
    if ((unsigned)q->nclaims >= q->nbuckets && chat__mqtt_claims_grow(q) != CHAT_OK && !q->nbuckets) return NULL;
    c = (chat__mqtt_claim *)CHAT_MALLOC(sizeof *c + n);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    memcpy(c + 1, name, n);
    c->node = node, c->name_len = n;
    b = chat__mqtt_bucket(q, name, n);
    c->hash_next = q->buckets[b], q->buckets[b] = c;
    c->node_next = q->nodes[node].claims, q->nodes[node].claims = c;
    q->nodes[node].nclaims++;
    q->nclaims++;
    return c;
}

/* Drops a node's claims that are not `seen` (all of them with all = 1), and gives their names
   to whoever holds them next. */
static void chat__mqtt_claims_prune(chat_server *srv, int node, int all) {
    chat__mqtt *q = srv->mqtt;
    chat__mqtt_claim **pp = &q->nodes[node].claims;
    while (*pp) {
        chat__mqtt_claim *c = *pp, **hp;
        if (c->seen && !all) {
            c->seen = 0;
            pp = &c->node_next;
            continue;
        }
        *pp = c->node_next;
        for (hp = &q->buckets[chat__mqtt_bucket(q, CHAT__CLAIM_NAME(c), c->name_len)]; *hp != c; hp = &(*hp)->hash_next) {}
        *hp = c->hash_next;
        chat__mqtt_release(srv, c);
        q->nodes[node].nclaims--, q->nclaims--;
        chat__mqtt_resolve(srv, CHAT__CLAIM_NAME(c), c->name_len); /* another board's claim may hold it now */
        CHAT_FREE(c);
    }
}

/* The room settled member m. A remote one is freed at the end of the turn (the room still
   touches it after `left`); a local one leaves its name to a board that claims it too. */
static void chat__mqtt_left(chat_server *srv, chat__member *m) {
    chat__mqtt *q = srv->mqtt;
    if (!q) return;
    if (m->remote) {
        q->remote--;
        m->next = q->graveyard, q->graveyard = m;
        return;
    }
    if (q->nclaims) chat__mqtt_resolve(srv, m->name, m->name_len);
}

static void chat__mqtt_bury(chat__mqtt *q) {
    while (q->graveyard) {
        chat__member *m = q->graveyard;
        q->graveyard = m->next;
        CHAT_FREE(m);
    }
}

/* --- what comes from the broker --- */

/* A JSON number token that is a whole number (no sign, fraction or exponent) in a uint64. */
static int chat__mqtt_json_u64(chat_span v, uint64_t *out) {
    size_t i;
    uint64_t x = 0;
    if (!v.n || v.n > 20) return -1;
    for (i = 0; i < v.n; i++) {
        unsigned d = (unsigned)(v.p[i] - '0');
        if (d > 9 || x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* The node named by a topic's last level after P/KIND/, or -1 when the topic is not that. */
static int chat__mqtt_topic_node(const chat__mqtt *q, chat_span topic, const char *kind, chat_span *node) {
    size_t k = strlen(kind);
    if (topic.n <= q->prefix.len + k + 2 || memcmp(topic.p, q->prefix.data, q->prefix.len) != 0 ||
        topic.p[q->prefix.len] != '/' || memcmp(topic.p + q->prefix.len + 1, kind, k) != 0 || topic.p[q->prefix.len + 1 + k] != '/')
        return -1;
    node->p = topic.p + q->prefix.len + 2 + k, node->n = topic.n - q->prefix.len - 2 - k;
    return chat__mqtt_node_ok(node->p, node->n) ? 0 : -1;
}

/* P/msg/NODE: said here, once, with an id of this board; never published again. */
static void chat__mqtt_take_message(chat_server *srv, chat__mqtt *q, chat_span node, chat_span payload) {
    chat_json_walk w;
    chat_span key, v;
    chat__words words;
    uint64_t id = 0, time_ms = 0;
    int k, r, has_name = 0, has_text = 0;
    memset(&words, 0, sizeof words);
    srv->text.len = srv->cid.len = 0;
    if (chat_json_walk_begin(&w, payload.p, payload.n) < 0) return;
    while ((r = chat_json_walk_next(&w, &key, &v)) == 1) {
        if (chat_json_string_is(key, "id")) chat__mqtt_json_u64(v, &id);
        else if (chat_json_string_is(key, "time")) chat__mqtt_json_u64(v, &time_ms);
        else if (chat_json_string_is(key, "username") && v.p[0] == '"') q->name.len = 0, has_name = chat_json_string(v, &q->name) == 0;
        else if (chat_json_string_is(key, "message") && v.p[0] == '"') srv->text.len = 0, has_text = chat_json_string(v, &srv->text) == 0;
        else if (chat_json_string_is(key, "cid") && v.p[0] == '"' && v.n <= 2 + 6 * CHAT__CID_MAX && !chat__json_lone_surrogate(v))
            srv->cid.len = 0, chat_json_string(v, &srv->cid);
    }
    if (r < 0 || !id || !has_name || !has_text || chat__name_problem((const char *)q->name.data, q->name.len, CHAT__NAME_MAX)) {
        CHAT__LOG((srv, CHAT_LOG_DEBUG, "mqtt: an invalid message from board %.*s ignored", (int)node.n, node.p));
        return;
    }
    k = chat__mqtt_node_get(srv, q, node.p, node.n);
    if (k < 0) return;
    if (id <= q->nodes[k].last_id) { /* QoS 1 delivered it again */
        srv->stats.mqtt_repeats++;
        return;
    }
    q->nodes[k].last_id = id;
    if (srv->text.len > srv->cfg.max_message) { /* what this board's own users could not say */
        CHAT__LOG((srv, CHAT_LOG_WARN, "mqtt: a message of %lu bytes from %.*s on board %.*s is over this board's max_message (%lu): not said here",
                   (unsigned long)srv->text.len, (int)q->name.len, (const char *)q->name.data, (int)node.n, node.p,
                   (unsigned long)srv->cfg.max_message));
        return;
    }
    words.name = (const char *)q->name.data, words.name_len = q->name.len;
    words.text = srv->text.data ? (const char *)srv->text.data : "", words.text_len = srv->text.len;
    if (srv->cid.len >= 1 && srv->cid.len <= CHAT__CID_MAX) words.cid = (const char *)srv->cid.data, words.cid_len = srv->cid.len;
    words.time_ms = time_ms ? time_ms : chat__wall_us() / 1000u;
    q->injecting = 1;
    if (chat__room_say(&srv->room, &words) >= 0) srv->stats.mqtt_received++;
    q->injecting = 0;
}

/* A stale node whose list did not come again after a reconnect has gone (its will was published
   while this board was away). */
static void chat__mqtt_resync_done(chat_server *srv, chat__mqtt *q) {
    int i;
    q->resyncing = 0;
    for (i = 0; i < q->nnodes; i++)
        if (q->nodes[i].stale) {
            q->nodes[i].stale = 0;
            if (q->nodes[i].nclaims)
                CHAT__LOG((srv, CHAT_LOG_INFO, "mqtt: board %s went while the link was down: its %d users leave", q->nodes[i].id,
                           q->nodes[i].nclaims));
            chat__mqtt_claims_prune(srv, i, 1);
        }
}

/* P/users/NODE: the node's list replaces what it had; empty: it has gone. */
static void chat__mqtt_take_users(chat_server *srv, chat__mqtt *q, chat_span node, const chat_mqtt_packet *p) {
    chat_span v, s;
    const char *at, *end;
    int k;
    if (node.n == strlen(q->node) && memcmp(node.p, q->node, node.n) == 0) { /* ours, coming back */
        uint64_t serial = 0;
        chat_span run;
        if (!p->payload.n || chat_json_get(p->payload.p, p->payload.n, "serial", &v) != 1 || chat__mqtt_json_u64(v, &serial) < 0)
            return;
        if (chat_json_get(p->payload.p, p->payload.n, "run", &run) == 1 && !chat_json_string_is(run, q->run) && !p->retain)
            CHAT__LOG((srv, CHAT_LOG_ERROR, "mqtt: another board also calls itself %s: give each board its own node id (-n)", q->node));
        else if (q->resyncing && serial == q->resync_serial)
            chat__mqtt_resync_done(srv, q);
        return;
    }
    k = chat__mqtt_node_get(srv, q, node.p, node.n);
    if (k < 0) return;
    q->nodes[k].stale = 0;
    if (p->payload.n && chat_json_get(p->payload.p, p->payload.n, "users", &v) == 1 && v.p[0] == '[') {
        /* the document is valid (chat_json_get checked it): its strings are taken one by one */
        for (at = v.p + 1, end = v.p + v.n - 1; at < end; at++) {
            chat__mqtt_claim *c;
            if (*at != '"') continue;
            s.p = at;
            for (at++; *at != '"'; at++)
                if (*at == '\\') at++;
            s.n = (size_t)(at - s.p + 1);
            q->name.len = 0;
            if (chat_json_string(s, &q->name) < 0 || chat__name_problem((const char *)q->name.data, q->name.len, CHAT__NAME_MAX))
                continue;
            c = chat__mqtt_claim_find(q, k, (const char *)q->name.data, q->name.len);
            if (!c && (c = chat__mqtt_claim_add(srv, k, (const char *)q->name.data, q->name.len)) != NULL)
                chat__mqtt_resolve(srv, (const char *)q->name.data, q->name.len);
            if (c) c->seen = 1;
        }
    }
    chat__mqtt_claims_prune(srv, k, 0);
}

/* --- the link --- */

static unsigned chat__mqtt_pid(chat__mqtt *q) {
    unsigned id = q->next_pid;
    q->next_pid = q->next_pid == 0xFFFF ? 1 : q->next_pid + 1;
    return id;
}

static int chat__mqtt_put(chat__mqtt *q, const chat_mqtt_packet *p) { return chat_mqtt_put(&q->tx, p); }

static int chat__mqtt_put_publish(chat__mqtt *q, const chat_buf *topic, const void *payload, size_t n, int retain, int dup, unsigned pid) {
    chat_mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_PUBLISH, p.qos = 1, p.retain = retain, p.dup = dup, p.id = pid;
    p.topic.p = (const char *)topic->data, p.topic.n = topic->len;
    p.payload.p = (const char *)payload, p.payload.n = n;
    return chat__mqtt_put(q, &p);
}

/* Closes the broker link's socket, if there is one, and takes it out of the server's sets. */
static void chat__mqtt_unlink(chat_server *srv, chat__mqtt *q) {
    if (q->fd < 0) return;
    chat__watch_fd(srv, CHAT__SLOT_MQTT, q->fd, 0);
    chat__socket_close(q->fd, 0);
    q->fd = -1;
}

/* The link failed or ended: everything sent but not acknowledged goes again on the next one. */
static void chat__mqtt_drop(chat_server *srv, chat__mqtt *q, const char *why) {
    int was_up = q->state == CHAT__MQTT_UP;
    chat__ms wait;
    (void)why; /* for the log */
    chat__mqtt_unlink(srv, q);
    q->rx.len = q->tx.len = q->tx_off = 0;
    chat__scratch_shrink(&q->rx), chat__scratch_shrink(&q->tx);
    q->q_sent = 0, q->sub_pid = q->users_pid = q->bye_pid = 0;
    q->ping_out = 0;
    if (q->stopping) {
        q->state = CHAT__MQTT_DONE;
        return;
    }
    if (was_up && srv->now - q->up_since >= CHAT__MQTT_STABLE_MS) q->backoff = CHAT__MQTT_BACKOFF_MIN_MS;
    wait = chat__mqtt_jitter(q, q->backoff);
    q->backoff = CHAT__MIN(q->backoff * 2, (chat__ms)CHAT__MQTT_BACKOFF_MAX_MS);
    q->state = CHAT__MQTT_DOWN;
    q->due = srv->now + wait;
    /* the broker keeps one connection per client id: two boards with one node id push each other out */
    CHAT__LOG((srv, was_up ? CHAT_LOG_WARN : CHAT_LOG_INFO, "mqtt: %s %s:%d: %s%s%s%s; local chat goes on, next attempt in %lld ms",
               was_up ? "lost the broker" : "no broker at", q->host, q->port, why,
               was_up && srv->now - q->up_since < 1000 ? " right after connecting (does another board use node id " : "",
               was_up && srv->now - q->up_since < 1000 ? q->node : "", was_up && srv->now - q->up_since < 1000 ? "?)" : "",
               (long long)wait));
}

/* The TCP connection is there: CONNECT with the will. */
static void chat__mqtt_hello(chat_server *srv, chat__mqtt *q) {
    chat_mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_CONNECT;
    p.connect.client_id.p = (const char *)q->client_id.data, p.connect.client_id.n = q->client_id.len;
    if (q->has_user) p.connect.username.p = (const char *)q->user.data, p.connect.username.n = q->user.len;
    if (q->has_pass) p.connect.password.p = (const char *)q->pass.data, p.connect.password.n = q->pass.len;
    p.connect.will_topic.p = (const char *)q->topic_users.data, p.connect.will_topic.n = q->topic_users.len;
    p.connect.will_message.p = "", p.connect.will_qos = 1, p.connect.will_retain = 1;
    p.connect.keep_alive = CHAT_MQTT_KEEPALIVE;
    if (chat__mqtt_put(q, &p) != CHAT_OK) {
        chat__mqtt_drop(srv, q, "the CONNECT cannot be made (a user name that is not UTF-8?)");
        return;
    }
    q->state = CHAT__MQTT_HANDSHAKE;
    q->due = srv->now + CHAT__MQTT_CONNECT_TIMEOUT_MS;
    q->last_in = srv->now;
}

/* Tries the next address of the broker (resolving its name first when none is left). */
static void chat__mqtt_dial(chat_server *srv, chat__mqtt *q) {
    const char *why = NULL;
    if (q->addr_at >= q->naddrs) {
        if (chat__mqtt_names(srv, q) != CHAT_OK) return;
        q->attempts++;
        q->addr_at = 0;
        q->naddrs = chat__net_resolve(q->host, q->port, q->addrs, CHAT__MQTT_ADDRS, &why);
        if (q->naddrs < 0) {
            q->naddrs = 0;
            chat__mqtt_drop(srv, q, why);
            return;
        }
    }
    q->fd = chat__net_connect(&q->addrs[q->addr_at++]);
    if (q->fd < 0) {
        if (q->addr_at < q->naddrs) chat__mqtt_dial(srv, q);
        else chat__mqtt_drop(srv, q, strerror(errno));
        return;
    }
    srv->pfds[CHAT__SLOT_MQTT].events = POLLOUT; /* connected when writable */
    if (chat__watch_fd(srv, CHAT__SLOT_MQTT, q->fd, 1) != CHAT_OK) {
        chat__socket_close(q->fd, 0);
        q->fd = -1;
        chat__mqtt_drop(srv, q, "out of memory");
        return;
    }
    q->state = CHAT__MQTT_CONNECTING;
    q->due = srv->now + CHAT__MQTT_CONNECT_TIMEOUT_MS;
}

/* CONNACK accepted: subscribe (again: a client that forgets it after a reconnect hears
   nothing), and republish this board's list. Until that list comes back, every other board's
   list is re-sent by the broker as retained; a board that does not show up again has gone. */
static void chat__mqtt_welcome(chat_server *srv, chat__mqtt *q, const chat_mqtt_packet *ack) {
    static const char *const kinds[] = {"/msg/+", "/users/+"};
    chat_mqtt_packet p;
    chat_buf filters;
    int i, ok = 1;
    (void)ack; /* for the log */
    q->state = CHAT__MQTT_UP;
    q->up_since = srv->now;
    q->addr_at = q->naddrs; /* next time: resolve again */
    srv->stats.mqtt_connects++;
    CHAT__LOG((srv, CHAT_LOG_INFO, "mqtt: connected to %s:%d as board %s (%s session, %u messages waiting)", q->host, q->port,
               q->node, ack->session_present ? "its" : "a new", q->q_count));
    memset(&filters, 0, sizeof filters);
    for (i = 0; i < 2 && ok; i++) { /* P/msg/+ and P/users/+, QoS 1, in one SUBSCRIBE */
        size_t n = strlen(kinds[i]);
        unsigned char len[2];
        len[0] = (unsigned char)((q->prefix.len + n) >> 8), len[1] = (unsigned char)(q->prefix.len + n);
        ok = chat_buf_append(&filters, len, 2) == CHAT_OK && chat_buf_append(&filters, q->prefix.data, q->prefix.len) == CHAT_OK &&
             chat_buf_append(&filters, kinds[i], n) == CHAT_OK && chat_buf_append(&filters, "\1", 1) == CHAT_OK;
    }
    memset(&p, 0, sizeof p);
    p.type = CHAT_MQTT_SUBSCRIBE, p.id = q->sub_pid = chat__mqtt_pid(q);
    p.payload.p = (const char *)filters.data, p.payload.n = filters.len;
    if (!ok || chat__mqtt_put(q, &p) != CHAT_OK) {
        chat_buf_free(&filters);
        chat__mqtt_drop(srv, q, "out of memory");
        return;
    }
    chat_buf_free(&filters);
    for (i = 0; i < q->nnodes; i++) q->nodes[i].stale = q->nodes[i].nclaims > 0;
    q->resyncing = 1, q->resync_serial = 0;
    q->users_pending = 1;
    q->users_sent.len = 0;
}

static void chat__mqtt_acked(chat_server *srv, chat__mqtt *q, unsigned pid) {
    unsigned i;
    if (pid == q->users_pid) {
        q->users_pid = 0;
        return;
    }
    if (pid == q->bye_pid) { /* the farewell is in: the last words */
        chat_mqtt_packet p;
        memset(&p, 0, sizeof p);
        p.type = CHAT_MQTT_DISCONNECT;
        chat__mqtt_put(q, &p);
        q->bye_pid = 0;
        q->state = CHAT__MQTT_DONE;
        return;
    }
    for (i = 0; i < q->q_sent; i++) {
        chat__mqtt_msg *m = q->q[(q->q_head + i) & (q->q_cap - 1)];
        if (m->pid == pid) m->acked = 1;
    }
    while (q->q_sent && q->q[q->q_head]->acked) { /* in order: those before it went first */
        chat__mqtt_msg *m = q->q[q->q_head];
        q->q_bytes -= m->len;
        CHAT_FREE(m);
        q->q_head = (q->q_head + 1) & (q->q_cap - 1);
        q->q_count--, q->q_sent--;
        srv->stats.mqtt_published++;
    }
}

/* One packet from the broker. Returns 0, or -1 when the link must go. */
static int chat__mqtt_packet(chat_server *srv, chat__mqtt *q, const chat_mqtt_packet *p) {
    chat_span node;
    if (q->state == CHAT__MQTT_HANDSHAKE) {
        if (p->type != CHAT_MQTT_CONNACK) return -1;
        if (p->return_code) {
            CHAT__LOG((srv, CHAT_LOG_ERROR, "mqtt: the broker %s:%d refused board %s: %s (CONNACK %d)", q->host, q->port, q->node,
                       chat_mqtt_connack_reason(p->return_code), p->return_code));
            q->backoff = CHAT__MQTT_BACKOFF_MAX_MS; /* it will not change its mind soon */
            return -1;
        }
        chat__mqtt_welcome(srv, q, p);
        return 0;
    }
    switch (p->type) {
    case CHAT_MQTT_PUBLISH:
        if (chat__mqtt_topic_node(q, p->topic, "msg", &node) == 0) {
            if (node.n != strlen(q->node) || memcmp(node.p, q->node, node.n) != 0) /* our own come back too */
                chat__mqtt_take_message(srv, q, node, p->payload);
        } else if (chat__mqtt_topic_node(q, p->topic, "users", &node) == 0) {
            chat__mqtt_take_users(srv, q, node, p);
        }
        if (p->qos == 1) { /* acknowledged after it was said (and is in the history file's records) */
            chat_mqtt_packet ack;
            memset(&ack, 0, sizeof ack);
            ack.type = CHAT_MQTT_PUBACK, ack.id = p->id;
            if (chat__mqtt_put(q, &ack) != CHAT_OK) return -1;
        }
        return 0;
    case CHAT_MQTT_PUBACK: chat__mqtt_acked(srv, q, p->id); return 0;
    case CHAT_MQTT_SUBACK:
        if (p->id == q->sub_pid) {
            size_t i;
            q->sub_pid = 0;
            for (i = 0; i < p->payload.n; i++)
                if ((unsigned char)p->payload.p[i] == 0x80)
                    CHAT__LOG((srv, CHAT_LOG_ERROR, "mqtt: the broker refused to subscribe board %s to %.*s/%s/+ (not authorized?)",
                               q->node, (int)q->prefix.len, (const char *)q->prefix.data, i ? "users" : "msg"));
        }
        return 0;
    case CHAT_MQTT_PINGRESP: return 0;
    default: return -1; /* nothing else is for a client */
    }
}

/* Reads once, then handles every whole packet. */
static void chat__mqtt_read(chat_server *srv, chat__mqtt *q) {
    long n, r;
    size_t at = 0;
    chat_mqtt_packet p;
    if (q->tx.len - q->tx_off > CHAT__MQTT_TX_MAX) { /* our acknowledgements pile up, unread */
        chat__mqtt_drop(srv, q, "the broker does not read what the board sends");
        return;
    }
    if (chat_buf_reserve(&q->rx, CHAT_READ_CHUNK) != CHAT_OK) return;
    n = chat__posix_read(NULL, q->fd, q->rx.data + q->rx.len, CHAT_READ_CHUNK);
    if (n < 0 && chat__would_block(errno)) return;
    if (n <= 0) {
        chat__mqtt_drop(srv, q, n == 0 ? "the broker closed the connection" : strerror(errno));
        return;
    }
    q->rx.len += (size_t)n;
    q->last_in = srv->now, q->ping_out = 0;
    while ((r = chat_mqtt_parse(q->rx.data + at, q->rx.len - at, CHAT_MQTT_MAX_PACKET, &p)) > 0) {
        at += (size_t)r;
        if (chat__mqtt_packet(srv, q, &p) < 0) {
            chat__mqtt_drop(srv, q, p.type == CHAT_MQTT_CONNACK ? "refused" : "a packet a client must not get");
            return;
        }
        if (q->fd < 0) return; /* the link went while handling it */
    }
    if (r < 0) {
        chat__mqtt_drop(srv, q, r == CHAT_MQTT_TOO_LARGE ? "a packet over CHAT_MQTT_MAX_PACKET" : "a malformed packet");
        return;
    }
    memmove(q->rx.data, q->rx.data + at, q->rx.len - at);
    q->rx.len -= at;
    if (!q->rx.len) chat__scratch_shrink(&q->rx);
}

static void chat__mqtt_flush(chat_server *srv, chat__mqtt *q) {
    while (q->tx_off < q->tx.len) {
        chat_iovec v;
        long n;
        v.base = q->tx.data + q->tx_off, v.len = q->tx.len - q->tx_off;
        n = chat__posix_write(NULL, q->fd, &v, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            chat__mqtt_drop(srv, q, strerror(errno));
            return;
        }
        q->tx_off += (size_t)n;
        q->last_out = srv->now;
    }
    if (q->tx_off == q->tx.len) {
        q->tx.len = q->tx_off = 0;
        chat__scratch_shrink(&q->tx);
    }
    if (q->state == CHAT__MQTT_DONE && !q->tx.len) { /* DISCONNECT is out */
        chat__mqtt_unlink(srv, q);
    }
}

/* This board's users as a JSON array, when the room's list changed; published if it differs. */
static void chat__mqtt_users_check(chat_server *srv, chat__mqtt *q) {
    chat__member *m;
    int first = 1;
    if (q->users_seen == srv->room.frame_version) return;
    q->users_seen = srv->room.frame_version; /* seen also when stopping, or chat__mqtt_due says "now" */
    if (q->stopping) return;                 /* the farewell clears the list */
    q->users.len = 0;
    if (chat_buf_append(&q->users, "[", 1)) return;
    for (m = srv->room.first; m; m = m->next) {
        if (m->leaving || m->remote) continue;
        if ((!first && chat_buf_append(&q->users, ",", 1)) || chat_json_put_string(&q->users, m->name, m->name_len)) return;
        first = 0;
    }
    if (chat_buf_append(&q->users, "]", 1)) return;
    if (q->users.len != q->users_sent.len || memcmp(q->users.data, q->users_sent.data, q->users.len) != 0) q->users_pending = 1;
}

static void chat__mqtt_send_users(chat_server *srv, chat__mqtt *q) {
    char head[CHAT__MQTT_NODE_MAX + 96];
    chat_buf *b = &srv->room.json; /* scratch, free at this point of the turn */
    int n;
    q->serial++;
    n = snprintf(head, sizeof head, "{\"node\":\"%s\",\"run\":\"%s\",\"serial\":%lu,\"users\":", q->node, q->run, q->serial);
    b->len = 0;
    if (chat_buf_append(b, head, (size_t)n) || chat_buf_append(b, q->users.data, q->users.len) || chat_buf_append(b, "}", 1))
        return;
    q->users_pid = chat__mqtt_pid(q);
    if (chat__mqtt_put_publish(q, &q->topic_users, b->data, b->len, 1, 0, q->users_pid) != CHAT_OK) return;
    q->users_pending = 0;
    if (q->resyncing && !q->resync_serial) q->resync_serial = q->serial;
    q->users_sent.len = 0;
    chat_buf_append(&q->users_sent, q->users.data, q->users.len);
}

/* Once a turn, after the history file's write: connect, time out, ping, publish, write. */
static void chat__mqtt_output(chat_server *srv) {
    chat__mqtt *q = srv->mqtt;
    short events = 0;
    if (!q) return;
    chat__mqtt_users_check(srv, q);
    if (q->state == CHAT__MQTT_DOWN && srv->now >= q->due) {
        if (q->stopping) q->state = CHAT__MQTT_DONE;
        else chat__mqtt_dial(srv, q);
    }
    if ((q->state == CHAT__MQTT_CONNECTING || q->state == CHAT__MQTT_HANDSHAKE) && srv->now >= q->due)
        chat__mqtt_drop(srv, q, "no answer");
    if (q->state == CHAT__MQTT_UP) {
        if (q->ping_out && srv->now - q->last_in >= (chat__ms)CHAT_MQTT_KEEPALIVE * 1000 * 3 / 2) {
            chat__mqtt_drop(srv, q, "no answer to a ping");
        } else {
            if (!q->ping_out && srv->now - q->last_out >= (chat__ms)CHAT_MQTT_KEEPALIVE * 1000) {
                chat_mqtt_packet p;
                memset(&p, 0, sizeof p);
                p.type = CHAT_MQTT_PINGREQ;
                if (chat__mqtt_put(q, &p) == CHAT_OK) q->ping_out = 1, q->last_in = q->last_out = srv->now;
            }
            if (q->users_pending && !q->users_pid) chat__mqtt_send_users(srv, q);
            while (q->q_sent < q->q_count && q->q_sent < CHAT__MQTT_WINDOW && q->tx.len - q->tx_off < CHAT__MQTT_TX_AHEAD) {
                chat__mqtt_msg *m = q->q[(q->q_head + q->q_sent) & (q->q_cap - 1)];
                int dup = m->pid != 0; /* sent on an earlier link: same id, DUP set (MQTT-4.4.0-1) */
                if (!m->pid) m->pid = chat__mqtt_pid(q);
                if (chat__mqtt_put_publish(q, &q->topic_msg, m + 1, m->len, 0, dup, m->pid) != CHAT_OK) break;
                q->q_sent++;
            }
            if (q->stopping && !q->q_count && !q->users_pid && !q->users_pending && !q->bye_pid) {
                q->bye_pid = chat__mqtt_pid(q); /* the farewell: this board's list is gone */
                chat__mqtt_put_publish(q, &q->topic_users, "", 0, 1, 0, q->bye_pid);
            }
        }
    }
    if (q->fd >= 0 && q->state != CHAT__MQTT_CONNECTING) chat__mqtt_flush(srv, q);
    if (q->fd >= 0) {
        if (q->state != CHAT__MQTT_CONNECTING) events |= POLLIN;
        if (q->state == CHAT__MQTT_CONNECTING || q->tx.len) events |= POLLOUT;
    }
    chat__watch(srv, CHAT__SLOT_MQTT, events);
    chat__mqtt_bury(q);
}

/* The broker link's descriptor was ready. */
static void chat__mqtt_ready(chat_server *srv, short revents) {
    chat__mqtt *q = srv->mqtt;
    if (!q || q->fd < 0 || !revents) return;
    if (q->state == CHAT__MQTT_CONNECTING) {
        int err = chat__net_connect_error(q->fd);
        if (err) {
            chat__mqtt_unlink(srv, q);
            errno = err;
            if (q->addr_at < q->naddrs) chat__mqtt_dial(srv, q); /* the broker's next address */
            else chat__mqtt_drop(srv, q, strerror(err));
            return;
        }
        chat__mqtt_hello(srv, q);
        return;
    }
    /* writing waits for chat__mqtt_output, after the history file's write: a PUBACK goes out
       only once what it acknowledges is kept */
    if (revents & (POLLIN | POLLHUP | POLLERR)) chat__mqtt_read(srv, q);
}

/* A message said in the room goes to the other boards (not one that came from them). */
static void chat__mqtt_said(chat_server *srv, const chat__words *w, uint64_t id) {
    chat__mqtt *q = srv->mqtt;
    chat_buf *b;
    chat__mqtt_msg *m;
    char nums[64];
    if (!q || q->injecting) return;
    b = &q->name; /* scratch: nothing else uses it while a message is said here */
    if (!q->node[0] && chat__mqtt_names(srv, q) != CHAT_OK) return;
    b->len = 0;
    snprintf(nums, sizeof nums, ",\"id\":%llu,\"time\":%llu,\"username\":", (unsigned long long)id, (unsigned long long)w->time_ms);
    if (chat_buf_append(b, "{\"node\":\"", 9) || chat_buf_append(b, q->node, strlen(q->node)) || chat_buf_append(b, "\"", 1) ||
        chat_buf_append(b, nums, strlen(nums)) || chat_json_put_string(b, w->name, w->name_len) ||
        chat_buf_append(b, ",\"message\":", 11) || chat_json_put_string(b, w->text, w->text_len) ||
        (w->cid && (chat_buf_append(b, ",\"cid\":", 7) || chat_json_put_string(b, w->cid, w->cid_len))) ||
        chat_buf_append(b, "}", 1))
        return;
    if (q->q_count >= (unsigned)srv->cfg.mqtt_queue || q->q_bytes + b->len > CHAT_MQTT_QUEUE_BYTES) {
        srv->stats.mqtt_dropped++;
        CHAT__LOG((srv, CHAT_LOG_WARN, "mqtt: %u messages (%lu bytes) wait for the broker: one from %s is not sent to other boards (%llu so far)",
                   q->q_count, (unsigned long)q->q_bytes, w->name, srv->stats.mqtt_dropped));
        return;
    }
    if (q->q_count == q->q_cap) {
        unsigned cap = q->q_cap ? q->q_cap * 2 : 64, i;
        chat__mqtt_msg **ring = (chat__mqtt_msg **)CHAT_MALLOC(cap * sizeof *ring);
        if (!ring) return;
        for (i = 0; i < q->q_count; i++) ring[i] = q->q[(q->q_head + i) & (q->q_cap - 1)];
        CHAT_FREE(q->q);
        q->q = ring, q->q_head = 0, q->q_cap = cap;
    }
    m = (chat__mqtt_msg *)CHAT_MALLOC(sizeof *m + b->len);
    if (!m) return;
    m->len = b->len, m->pid = 0, m->acked = 0;
    memcpy(m + 1, b->data, b->len);
    q->q[(q->q_head + q->q_count++) & (q->q_cap - 1)] = m;
    q->q_bytes += m->len;
    chat__scratch_shrink(b);
}

/* When the loop must come back for the bridge: 0 now; -1 never. */
static long long chat__mqtt_due(const chat_server *srv) {
    const chat__mqtt *q = srv->mqtt;
    chat__ms keep = (chat__ms)CHAT_MQTT_KEEPALIVE * 1000;
    if (!q || q->state == CHAT__MQTT_DONE) return -1;
    if (q->state != CHAT__MQTT_UP) return q->due;
    if ((q->users_pending && !q->users_pid) || (q->q_sent < q->q_count && q->q_sent < CHAT__MQTT_WINDOW) ||
        srv->room.frame_version != q->users_seen)
        return srv->now;
    return q->ping_out ? q->last_in + keep * 3 / 2 : q->last_out + keep;
}

/* A graceful stop: what is queued goes out, then the farewell, then DISCONNECT. Done when the
   link is down or the farewell is out (chat__turn waits for it, at most close_timeout_ms). */
static void chat__mqtt_stop(chat_server *srv) {
    chat__mqtt *q = srv->mqtt;
    if (!q) return;
    q->stopping = 1;
    if (q->state != CHAT__MQTT_UP) { /* nothing to say goodbye on: the will does it */
        chat__mqtt_unlink(srv, q);
        q->state = CHAT__MQTT_DONE;
    }
}

static int chat__mqtt_done(const chat_server *srv) {
    const chat__mqtt *q = srv->mqtt;
    return !q || (q->state == CHAT__MQTT_DONE && q->fd < 0);
}

static void chat__mqtt_stats(const chat_server *srv, chat_stats *out) {
    const chat__mqtt *q = srv->mqtt;
    if (!q) return;
    out->mqtt_connected = q->state == CHAT__MQTT_UP;
    out->mqtt_remote_users = q->remote;
    out->mqtt_queued = (int)q->q_count;
}

/* Before chat__room_free: the room's remote members are the bridge's to free. */
static void chat__mqtt_free(chat_server *srv) {
    chat__mqtt *q = srv->mqtt;
    chat__member *m, *next;
    int i;
    if (!q) return;
    for (m = srv->room.first; m; m = next) { /* unlinked: the room is going anyway */
        next = m->next;
        if (!m->remote) continue;
        if (m->prev) m->prev->next = m->next;
        else srv->room.first = m->next;
        if (m->next) m->next->prev = m->prev;
        else srv->room.last = m->prev;
        CHAT_FREE(m->name);
        CHAT_FREE(m);
    }
    if (q->fd >= 0) chat__socket_close(q->fd, 0);
    while (q->q_count) CHAT_FREE(q->q[q->q_head]), q->q_head = (q->q_head + 1) & (q->q_cap - 1), q->q_count--;
    CHAT_FREE(q->q);
    for (i = 0; i < q->nnodes; i++)
        while (q->nodes[i].claims) {
            chat__mqtt_claim *c = q->nodes[i].claims;
            q->nodes[i].claims = c->node_next;
            CHAT_FREE(c);
        }
    chat__mqtt_bury(q);
    CHAT_FREE(q->nodes);
    CHAT_FREE(q->buckets);
    chat_buf_free(&q->prefix), chat_buf_free(&q->user), chat_buf_free(&q->pass);
    chat_buf_free(&q->topic_msg), chat_buf_free(&q->topic_users), chat_buf_free(&q->client_id);
    chat_buf_free(&q->rx), chat_buf_free(&q->tx), chat_buf_free(&q->users), chat_buf_free(&q->users_sent);
    chat_buf_free(&q->name);
    CHAT_FREE(q);
    srv->mqtt = NULL;
}
#endif /* CHAT_NO_MQTT */

/* ============================================================================================ */
/* public API                                                                                   */
/* ============================================================================================ */

CHATDEF const char *chat_strerror(int err) {
    switch (err) {
    case CHAT_OK: return "success";
    case CHAT_ENOMEM: return "out of memory";
    case CHAT_EINVAL: return "invalid argument";
    case CHAT_EADDR: return "address could not be resolved";
    case CHAT_ESYS: return "system call failed";
    case CHAT_ESTATE: return "not possible in the server's current state";
    case CHAT_EBUSY: return "the server's queue is full; try again";
    default: return "unknown error";
    }
}

/* The one rule of every limit: 0 means the default; a negative value means none (no limit, no
   history, the system's buffer size) where the field says so, and is an error elsewhere. */
typedef struct chat__limit {
    size_t offset; /* of an int in chat_config */
    int fallback;  /* the default (0 here: computed below) */
    int may_be_none;
} chat__limit;

static int chat__config_resolve(chat_config *c) {
#define CHAT__LIMIT(field, fallback, may_be_none) {offsetof(chat_config, field), fallback, may_be_none}
    static const chat__limit limits[] = {
        CHAT__LIMIT(max_clients, CHAT_MAX_CLIENTS, 0),
        CHAT__LIMIT(max_connections, CHAT_MAX_CONNECTIONS, 0),
        CHAT__LIMIT(max_per_address, CHAT_MAX_PER_ADDRESS, 1),
        CHAT__LIMIT(max_join_rate, CHAT_MAX_JOIN_RATE, 1),
        CHAT__LIMIT(max_name, CHAT_MAX_NAME, 0),
        CHAT__LIMIT(handshake_timeout_ms, CHAT_HANDSHAKE_TIMEOUT_MS, 0),
        CHAT__LIMIT(ping_interval_ms, CHAT_PING_INTERVAL_MS, 0),
        CHAT__LIMIT(close_timeout_ms, CHAT_CLOSE_TIMEOUT_MS, 0),
        CHAT__LIMIT(max_rate, CHAT_MAX_RATE, 1),
        CHAT__LIMIT(max_byte_rate, CHAT_MAX_BYTE_RATE, 1),
        CHAT__LIMIT(sndbuf, CHAT_SNDBUF, 1),
        CHAT__LIMIT(rcvbuf, CHAT_RCVBUF, 1),
        CHAT__LIMIT(history, CHAT_HISTORY, 1),
        CHAT__LIMIT(log_level, CHAT_LOG_INFO, 0),
        CHAT__LIMIT(mqtt_queue, CHAT_MQTT_QUEUE, 0),
    };
#undef CHAT__LIMIT
    size_t i;
    for (i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        int *v = (int *)(void *)((char *)c + limits[i].offset);
        if (*v == 0) *v = limits[i].fallback;
        else if (*v < 0 && !limits[i].may_be_none) return -1;
        else if (*v < 0) *v = -1;
    }
    if (c->max_connections == 0) c->max_connections = c->max_clients / 4 * 5 + 16;
    if (c->max_per_address == 0) c->max_per_address = c->max_clients / 2 < 16 ? 16 : CHAT__MIN(c->max_clients / 2, 32);
    if (c->max_name > CHAT__NAME_MAX) c->max_name = CHAT__NAME_MAX;
    if (!c->max_header) c->max_header = CHAT_MAX_HEADER; /* sizes: unsigned, so only 0 */
    if (!c->max_message) c->max_message = CHAT_MAX_MESSAGE;
    if (!c->max_backlog) c->max_backlog = CHAT_MAX_BACKLOG;
    if (c->max_message > CHAT__MAX_BUFFER) c->max_message = CHAT__MAX_BUFFER;
    if (c->max_backlog > CHAT__MAX_BUFFER) c->max_backlog = CHAT__MAX_BUFFER;
    return 0;
}

/* The server keeps its own copies of the configuration's strings, in one block. */
static int chat__copy_strings(chat_server *srv) {
    const char *const *o;
    size_t bytes = 0, count = 0;
    char *p, **list;
    for (o = srv->cfg.origins; o && *o; o++) bytes += strlen(*o) + 1, count++;
    for (o = srv->cfg.reserved_names; o && *o; o++) bytes += strlen(*o) + 1, count++;
    if (srv->cfg.stats_path) bytes += strlen(srv->cfg.stats_path) + 1;
    if (srv->cfg.trusted_proxy) bytes += strlen(srv->cfg.trusted_proxy) + 1;
    if (srv->cfg.history_file) bytes += strlen(srv->cfg.history_file) + 1;
    if (srv->cfg.mqtt) bytes += strlen(srv->cfg.mqtt) + 1;
    if (srv->cfg.mqtt_node) bytes += strlen(srv->cfg.mqtt_node) + 1;
    if (!bytes) return CHAT_OK;
    srv->owned = (char *)CHAT_MALLOC((count + 2) * sizeof(char *) + bytes);
    if (!srv->owned) return CHAT_ENOMEM;
    list = (char **)(void *)srv->owned;
    p = srv->owned + (count + 2) * sizeof(char *);
#define CHAT__COPY(dst, src) (strcpy(p, src), dst = p, p += strlen(p) + 1)
#define CHAT__COPY_LIST(field) \
    if (srv->cfg.field) { \
        char **first = list; \
        for (o = srv->cfg.field; *o; o++) CHAT__COPY(*list++, *o); \
        *list++ = NULL; \
        srv->cfg.field = (const char *const *)first; \
    }
    CHAT__COPY_LIST(origins)
    CHAT__COPY_LIST(reserved_names)
    if (srv->cfg.stats_path) CHAT__COPY(srv->cfg.stats_path, srv->cfg.stats_path);
    if (srv->cfg.trusted_proxy) CHAT__COPY(srv->cfg.trusted_proxy, srv->cfg.trusted_proxy);
    if (srv->cfg.history_file) CHAT__COPY(srv->cfg.history_file, srv->cfg.history_file);
    if (srv->cfg.mqtt) CHAT__COPY(srv->cfg.mqtt, srv->cfg.mqtt);
    if (srv->cfg.mqtt_node) CHAT__COPY(srv->cfg.mqtt_node, srv->cfg.mqtt_node);
#undef CHAT__COPY_LIST
#undef CHAT__COPY
    return CHAT_OK;
}

CHATDEF chat_server *chat_server_create(const chat_config *config) {
    chat_server *srv = (chat_server *)CHAT_MALLOC(sizeof *srv);
    chat__room_outlet outlet;
    int i;
    if (!srv) return NULL;
    outlet.deliver = chat__member_deliver, outlet.left = chat__member_left, outlet.said = chat__member_said;
    outlet.user = srv;
    memset(srv, 0, sizeof *srv);
    srv->hist_fd = -1;
    if (config) srv->cfg = *config;
    if (chat__config_resolve(&srv->cfg) < 0) {
        CHAT_FREE(srv);
        return NULL;
    }
    srv->listen_fd = srv->wake_rd = srv->wake_wr = srv->stop_rd = srv->stop_wr = -1;
#ifdef CHAT__EPOLL
    srv->ready_set = CHAT__READY_UNTRIED;
#else
    srv->ready_set = -1;
#endif
    srv->started = srv->now = srv->log_refilled = chat__now_ms();
    srv->log_tokens = CHAT__LOG_BURST;
    chat__sigpipe_ignore();
    if (config && config->transport) srv->io = *config->transport;
    if (!srv->io.read) srv->io.read = chat__posix_read;
    if (!srv->io.write) srv->io.write = chat__posix_write;
    if (!srv->io.shutdown) srv->io.shutdown = chat__posix_shutdown;
    if (!srv->io.close) srv->io.close = chat__posix_close;
    srv->cfg.transport = &srv->io;
    srv->cap = 16;
    srv->pfds = (struct pollfd *)CHAT_MALLOC(srv->cap * sizeof *srv->pfds);
    srv->conns = (chat__conn **)CHAT_MALLOC(srv->cap * sizeof *srv->conns);
    srv->ready = (unsigned *)CHAT_MALLOC(srv->cap * sizeof *srv->ready);
    srv->rxbuf = (unsigned char *)CHAT_MALLOC(CHAT_READ_CHUNK);
    srv->out_era = 1; /* a new frame's stamp (0) names no gathered copy */
    /* Ids start from the wall clock in microseconds, so a restart without a history file gives
       no id again that an earlier run gave (unless the clock went back); JavaScript numbers
       hold them exactly until the year 2255. */
    if (!srv->pfds || !srv->conns || !srv->ready || !srv->rxbuf ||
        chat__room_init(&srv->room, &outlet, srv->cfg.history, chat__wall_us()) != CHAT_OK ||
        chat__copy_strings(srv) != CHAT_OK ||
        (srv->cfg.trusted_proxy && chat__addr_parse(srv->cfg.trusted_proxy, &srv->proxy) < 0) ||
        chat__wake_pipe(&srv->wake_rd, &srv->wake_wr) < 0 || chat__wake_pipe(&srv->stop_rd, &srv->stop_wr) < 0 ||
        (srv->cfg.history_file && chat__history_open(srv, &outlet) != CHAT_OK)) {
        chat_server_free(srv);
        return NULL;
    }
#ifndef CHAT_NO_MQTT
    if (srv->cfg.mqtt && chat__mqtt_create(srv) != CHAT_OK) {
        chat_server_free(srv);
        return NULL;
    }
#else
    if (srv->cfg.mqtt) { /* asked for a bridge this build does not have */
        CHAT__LOG((srv, CHAT_LOG_ERROR, "mqtt: this build has no MQTT bridge (CHAT_NO_MQTT)"));
        chat_server_free(srv);
        return NULL;
    }
#endif
    for (i = 0; i < CHAT__SLOT_CONNS; i++) srv->pfds[i].fd = -1, srv->pfds[i].events = POLLIN, srv->pfds[i].revents = 0, srv->conns[i] = NULL;
    srv->nfds = CHAT__SLOT_CONNS;
    if (chat__watch_fd(srv, CHAT__SLOT_POSTS, srv->wake_rd, 1) != CHAT_OK ||
        chat__watch_fd(srv, CHAT__SLOT_STOP, srv->stop_rd, 1) != CHAT_OK) {
        chat_server_free(srv);
        return NULL;
    }
    if (chat__random_bytes(srv->secret, sizeof srv->secret) < 0) {
        uint64_t t = chat__wall_us();
        memcpy(srv->secret, &t, sizeof t);
        memcpy(srv->secret + sizeof t, &srv, sizeof srv < 8 ? sizeof srv : 8);
        CHAT__LOG((srv, CHAT_LOG_WARN, "no /dev/urandom: resume tokens can be guessed"));
    }
    return srv;
}

CHATDEF int chat_server_listen(chat_server *srv, const char *address, int port) {
    int fd, r;
    if (!srv || port < 0 || port > 65535) return CHAT_EINVAL;
    if (srv->listen_fd >= 0 || srv->phase != CHAT__RUNNING) return CHAT_ESTATE;
    r = chat__listen_socket(address, port, &fd, &srv->port);
    if (r != CHAT_OK) return r;
    if (chat__watch_fd(srv, CHAT__SLOT_LISTEN, fd, 1) != CHAT_OK) {
        chat__fd_close(fd);
        return CHAT_ENOMEM;
    }
    srv->listen_fd = fd;
    CHAT__LOG((srv, CHAT_LOG_INFO, "listening on port %d", srv->port));
    return CHAT_OK;
}

CHATDEF int chat_server_adopt(chat_server *srv, int fd) {
    int r;
    if (!srv || fd < 0) {
        if (fd >= 0) chat__fd_close(fd);
        return CHAT_EINVAL;
    }
    if (srv->phase != CHAT__RUNNING) {
        srv->io.close(srv->io.user, fd, 1);
        return CHAT_ESTATE;
    }
    if (chat__set_nonblock_cloexec(fd) < 0) {
        srv->io.close(srv->io.user, fd, 1);
        return CHAT_ESYS;
    }
    srv->now = chat__now_ms();
    r = chat__conn_start(srv, fd);
    return r;
}

CHATDEF int chat_server_port(const chat_server *srv) { return srv ? srv->port : 0; }

CHATDEF int chat_server_add_asset(chat_server *srv, const char *path, const char *content_type, const void *body,
                                  size_t len) {
    chat__asset *a, **list;
    size_t pn, tn;
    if (!srv || !path || path[0] != '/' || !content_type || (!body && len)) return CHAT_EINVAL;
    pn = strlen(path) + 1, tn = strlen(content_type) + 1;
    if (strpbrk(content_type, "\r\n")) return CHAT_EINVAL; /* it goes into a header */
    list = (chat__asset **)CHAT_REALLOC(srv->assets, (size_t)(srv->nassets + 1) * sizeof *list);
    if (!list) return CHAT_ENOMEM;
    srv->assets = list;
    a = (chat__asset *)CHAT_MALLOC(sizeof *a + pn + tn); /* one block: struct, path, type */
    if (!a) return CHAT_ENOMEM;
    a->path = (char *)(a + 1);
    a->type = a->path + pn;
    memcpy(a->path, path, pn);
    memcpy(a->type, content_type, tn);
    a->body.data = (const unsigned char *)body, a->body.len = len;
    a->body.refs = 0, a->body.kind = CHAT__FRAME_PINNED;
    a->body.out_era = a->body.out_at = 0;
    srv->assets[srv->nassets++] = a;
    return CHAT_OK;
}

/* Input held back while a connection's replies were unsent: one more unit of it each turn. */
static void chat__resume_held(chat_server *srv) {
    unsigned i;
    srv->resume_pending = 0;
    for (i = CHAT__SLOT_CONNS; i < srv->nfds; i++) {
        chat__conn *c = srv->conns[i];
        if ((c->flags & CHAT__C_HELD) && !c->replies && c->state != CHAT__DEAD) {
            chat__conn_received(srv, c, 0);
            if (c->state != CHAT__DEAD) chat__set_events(srv, c);
        }
    }
}


/* Input a transport holds (TLS: the rest of a record) is read as if the socket were readable. */
static void chat__read_pending(chat_server *srv) {
    unsigned i;
    srv->read_pending = 0;
    for (i = CHAT__SLOT_CONNS; i < srv->nfds; i++) {
        chat__conn *c = srv->conns[i];
        if ((c->flags & CHAT__C_PENDING) && !chat__input_paused(c) && c->state != CHAT__DEAD) chat__conn_read(srv, c);
    }
}

/* What happened to the descriptor in `slot` (fd and events from epoll or the embedder's loop):
   noted in the poll set's revents, and a connection's slot listed for the turn. */
static void chat__ready_note(chat_server *srv, int fd, short revents) {
    unsigned slot;
    if (fd < 0 || (unsigned)fd >= srv->slot_of_fd_cap || !revents) return;
    slot = (unsigned)srv->slot_of_fd[fd];
    if (slot >= srv->nfds || srv->pfds[slot].fd != fd) return; /* not ours (any more) */
    if (!srv->pfds[slot].revents && slot >= CHAT__SLOT_CONNS) srv->ready[srv->nready++] = slot;
    srv->pfds[slot].revents |= revents;
}

/* One turn after the wait: what became ready (the slots in srv->ready, their revents in the
   poll set), then the work of the turn in a fixed order. Connections that died during it are
   freed at its end. */
static int chat__turn(chat_server *srv) {
    unsigned i, k;
    srv->now = chat__now_ms();
    if (CHAT__FLAG_GET(srv->stop_requested) && srv->phase == CHAT__RUNNING) chat__begin_shutdown(srv);
    if (srv->resume_pending) chat__resume_held(srv);
    if (srv->read_pending) chat__read_pending(srv);
    for (k = 0; k < srv->nready; k++) {
        chat__conn *c = srv->conns[i = srv->ready[k]];
        short re = srv->pfds[i].revents;
        srv->pfds[i].revents = 0;
        if (c->state == CHAT__DEAD) continue;
        if (c->flags & CHAT__C_HANDSHAKE) {
            chat__conn_handshake(srv, c);
            continue;
        }
        if (re & POLLOUT) chat__flush_later(srv, c);
        if (chat__input_paused(c) && !(c->flags & CHAT__C_PEER_EOF)) {
            if (re & (POLLERR | POLLHUP | POLLNVAL)) chat__conn_kill(srv, c); /* gone: nothing to wait for */
        } else if (re & (POLLIN | POLLHUP | POLLERR)) {
            chat__conn_read(srv, c);
        } else if (re & POLLNVAL) {
            chat__conn_kill(srv, c);
        }
    }
    srv->nready = 0;
    if (srv->pfds[CHAT__SLOT_STOP].revents) chat__drain_stops(srv);
    if (srv->pfds[CHAT__SLOT_POSTS].revents) chat__drain_posts(srv, 0);
    if (srv->pfds[CHAT__SLOT_LISTEN].revents & POLLIN) chat__accept_all(srv);
#ifndef CHAT_NO_MQTT
    chat__mqtt_ready(srv, srv->pfds[CHAT__SLOT_MQTT].revents); /* other boards' messages and lists */
#endif
    for (i = 0; i < CHAT__SLOT_CONNS; i++) srv->pfds[i].revents = 0;
    if (CHAT__FLAG_GET(srv->stop_requested) && srv->phase == CHAT__RUNNING) chat__begin_shutdown(srv);
    if (srv->now >= srv->next_sweep) chat__sweep(srv);
    chat__room_publish_users(&srv->room, srv->now);
    chat__history_write(srv); /* a message is kept before anyone is sent it */
#ifndef CHAT_NO_MQTT
    chat__mqtt_output(srv); /* ... or acknowledged to the broker */
#endif
    chat__flush_all(srv);
    chat__reap(srv);
    chat__scratch_shrink(&srv->text);
    chat__scratch_shrink(&srv->room.json);
    chat__spares_settle(srv);
    if (srv->phase == CHAT__STOPPING && ((srv->nfds == CHAT__SLOT_CONNS && chat__mqtt_done(srv)) || srv->now >= srv->stop_deadline)) {
        for (i = CHAT__SLOT_CONNS; i < srv->nfds; i++) chat__conn_kill(srv, srv->conns[i]);
        chat__reap(srv);
        srv->phase = CHAT__STOPPED;
        CHAT__LOG((srv, CHAT_LOG_INFO, "stopped"));
    }
    return srv->phase == CHAT__STOPPED ? 0 : 1;
}

/* A server is not re-entered from its own callbacks. */
static int chat__enter(chat_server *srv) {
    if (!srv) return CHAT_EINVAL;
    if (srv->in_poll) return CHAT_ESTATE;
    return CHAT_OK;
}

#ifdef CHAT__EPOLL
/* The epoll set, made when chat_server_poll first needs it (a program that drives the server
   from its own loop never does), with every descriptor watched so far. */
static void chat__ready_start(chat_server *srv) {
    unsigned i;
    srv->ready_set = chat__ready_open();
    if (srv->ready_set < 0) {
        chat__ready_give_up(srv);
        return;
    }
    for (i = 0; i < srv->nfds && srv->ready_set >= 0; i++)
        if (srv->pfds[i].fd >= 0 && chat__ready_watch(srv->ready_set, EPOLL_CTL_ADD, srv->pfds[i].fd, srv->pfds[i].events) < 0)
            chat__ready_give_up(srv);
}

/* Waits on the epoll set; returns like poll(). */
static int chat__ready_collect(chat_server *srv, int timeout_ms) {
    chat__ready got[CHAT__EPOLL_EVENTS];
    int n = chat__ready_wait(srv->ready_set, got, CHAT__EPOLL_EVENTS, timeout_ms), k;
    for (k = 0; k < n; k++) chat__ready_note(srv, chat__ready_fd(&got[k]), chat__ready_revents(&got[k]));
    return n;
}
#endif

/* Waits with poll() over the whole set; returns like poll(). */
static int chat__poll_collect(chat_server *srv, int timeout_ms) {
    int n = chat__poll(srv->pfds, srv->nfds, timeout_ms);
    unsigned i;
    for (i = srv->nfds; n > 0 && i-- > CHAT__SLOT_CONNS;)
        if (srv->pfds[i].revents) srv->ready[srv->nready++] = i;
    return n;
}

CHATDEF int chat_server_poll(chat_server *srv, int timeout_ms) {
    int n, r = chat__enter(srv), wait;
    if (r != CHAT_OK) return r;
    if (srv->phase == CHAT__STOPPED) return 0;
    srv->in_poll = 1;
    srv->now = chat__now_ms();
    if (CHAT__FLAG_GET(srv->stop_requested) && srv->phase == CHAT__RUNNING) chat__begin_shutdown(srv);
    wait = chat__poll_timeout(srv, timeout_ms);
#ifdef CHAT__EPOLL
    if (srv->ready_set == CHAT__READY_UNTRIED) chat__ready_start(srv);
    if (srv->ready_set >= 0) n = chat__ready_collect(srv, wait);
    else
#endif
        n = chat__poll_collect(srv, wait);
    r = n < 0 && errno != EINTR ? CHAT_ESYS : chat__turn(srv);
    srv->in_poll = 0;
    return r;
}

CHATDEF int chat_server_watches(chat_server *srv, chat_watch *out, int cap) {
    unsigned i;
    int n = 0, r = chat__enter(srv);
    if (r != CHAT_OK) return r;
    if (cap < 0 || (cap && !out)) return CHAT_EINVAL;
    for (i = 0; i < srv->nfds; i++) {
        int fd = srv->pfds[i].fd;
        if (fd < 0) continue;
        if (n < cap) {
            out[n].fd = fd;
            out[n].events = (srv->pfds[i].events & POLLIN ? CHAT_WATCH_READ : 0) |
                            (srv->pfds[i].events & POLLOUT ? CHAT_WATCH_WRITE : 0);
        }
        n++;
    }
    return n;
}

CHATDEF int chat_server_timeout(chat_server *srv) {
    int r = chat__enter(srv);
    if (r != CHAT_OK) return r;
    if (srv->phase == CHAT__STOPPED) return 0;
    srv->now = chat__now_ms();
    return chat__poll_timeout(srv, -1);
}

CHATDEF int chat_server_process(chat_server *srv, const chat_watch *ready, int n) {
    int k, r = chat__enter(srv);
    if (r != CHAT_OK) return r;
    if (n < 0 || (n && !ready)) return CHAT_EINVAL;
    if (srv->phase == CHAT__STOPPED) return 0;
    srv->in_poll = 1;
    for (k = 0; k < n; k++) {
        int ev = ready[k].events;
        chat__ready_note(srv, ready[k].fd, (short)((ev & CHAT_WATCH_READ ? POLLIN : 0) | (ev & CHAT_WATCH_WRITE ? POLLOUT : 0) |
                                                   (ev & CHAT_WATCH_ERROR ? POLLERR | POLLHUP : 0)));
    }
    r = chat__turn(srv);
    srv->in_poll = 0;
    return r;
}

CHATDEF int chat_server_run(chat_server *srv) {
    int r;
    while ((r = chat_server_poll(srv, -1)) > 0) {}
    return r;
}

CHATDEF void chat_server_stop(chat_server *srv) {
    static const char stop = 's';
    int saved = errno;
    if (!srv) return;
    /* The byte is the request itself, so a thread calling this has read srv for the last time
       before the loop can see the request, return, and be freed. */
    if (chat__wake_write(srv->stop_wr, &stop, 1) < 0)
        CHAT__FLAG_SET(srv->stop_requested); /* pipe full (65,536 stops): the loop checks the flag each turn */
    errno = saved;
}

CHATDEF int chat_server_post(chat_server *srv, const char *username, const char *text, size_t text_len) {
    chat__post *post;
    size_t name_len;
    if (!srv || !username || (!text && text_len)) return CHAT_EINVAL;
    name_len = strlen(username);
    if (!chat_utf8_valid(username, name_len) || !chat_utf8_valid(text, text_len)) return CHAT_EINVAL;
    post = (chat__post *)CHAT_MALLOC(sizeof *post + name_len + text_len);
    if (!post) return CHAT_ENOMEM;
    post->name_len = name_len, post->text_len = text_len;
    memcpy((char *)(post + 1), username, name_len);
    if (text_len) memcpy((char *)(post + 1) + name_len, text, text_len);
    /* one pointer per write: atomic, since it is far below PIPE_BUF */
    if (chat__wake_write(srv->wake_wr, &post, sizeof post) < 0) {
        CHAT_FREE(post);
        return CHAT_EBUSY;
    }
    return CHAT_OK;
}

CHATDEF void chat_server_config(const chat_server *srv, chat_config *out) { *out = srv->cfg; }

CHATDEF void chat_server_stats(const chat_server *srv, chat_stats *out) {
    chat__ms now = chat__now_ms();
    *out = srv->stats;
    out->messages = srv->room.messages;
    out->clients = srv->room.count - chat__mqtt_remote_count(srv);
    out->connections = (int)srv->nfds - CHAT__SLOT_CONNS;
    out->uptime_ms = now - srv->started;
#ifndef CHAT_NO_MQTT
    chat__mqtt_stats(srv, out);
#endif
}

CHATDEF int chat_server_broadcast(chat_server *srv, const char *username, const char *text, size_t text_len) {
    chat__words w;
    if (!srv || !username || (!text && text_len)) return CHAT_EINVAL;
    if (!chat_utf8_valid(username, strlen(username)) || !chat_utf8_valid(text, text_len)) return CHAT_EINVAL;
    w = chat__words_of(username, strlen(username), text ? text : "", text_len);
    return chat__room_say(&srv->room, &w);
}

CHATDEF int chat_server_user_count(const chat_server *srv) { return srv ? srv->room.count : 0; }

CHATDEF int chat_server_send(chat_server *srv, const char *to, const char *username, const char *text,
                             size_t text_len) {
    chat__member *m;
    chat__frame *f;
    chat__words w;
    int r;
    if (!srv || !to || !username || (!text && text_len)) return CHAT_EINVAL;
    if (!chat_utf8_valid(username, strlen(username)) || !chat_utf8_valid(text, text_len)) return CHAT_EINVAL;
    m = chat__room_find(&srv->room, to, strlen(to));
    if (!m || CHAT__REMOTE(m)) return 0; /* a user of another board is not joined here */
    w = chat__words_of(username, strlen(username), text ? text : "", text_len);
    f = chat__room_message(&srv->room, &w, 0, NULL); /* to one member: no id, not in the history */
    if (!f) return CHAT_ENOMEM;
    r = srv->room.out.deliver(srv->room.out.user, m, f);
    chat__frame_release(f);
    return r == CHAT_OK ? 1 : r;
}

CHATDEF const char *chat_request_header(const chat_request *req, const char *name, size_t *len) {
    chat_request *r = (chat_request *)(uintptr_t)req; /* the copy is made on first use */
    size_t i, n, name_len = name ? strlen(name) : 0;
    if (!req || !name || chat__request_copy(r) != CHAT_OK) return NULL;
    n = r->http->head.n;
    for (i = strlen(r->copy) + 1; i < n; i += strlen(r->copy + i) + 1) { /* line by line after the first */
        char *line = r->copy + i, *v, *end;
        if (!*line || strlen(line) <= name_len || line[name_len] != ':' || !chat__ieq(line, name_len, name, name_len))
            continue;
        for (v = line + name_len + 1; *v == ' ' || *v == '\t'; v++) {}
        for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t'); end--) {}
        *end = '\0';
        if (len) *len = (size_t)(end - v);
        return v;
    }
    return NULL;
}

CHATDEF const char *chat_request_target(const chat_request *req, size_t *len) {
    chat_request *r = (chat_request *)(uintptr_t)req;
    char *t, *end;
    if (!req || chat__request_copy(r) != CHAT_OK) return NULL;
    t = strchr(r->copy, ' '); /* the request line parsed, so it has two spaces */
    if (!t) return NULL;
    t++;
    end = strchr(t, ' ');
    if (end) *end = '\0';
    if (len) *len = strlen(t);
    return t;
}

CHATDEF const char *chat_request_address(const chat_request *req) { return req ? req->address : NULL; }

CHATDEF const char *chat_request_username(const chat_request *req, size_t *len) {
    if (!req || !req->has_name) return NULL;
    if (len) *len = req->srv->text.len;
    return (const char *)req->srv->text.data;
}

CHATDEF int chat_request_set_username(chat_request *req, const char *name, size_t len) {
    chat_buf *b;
    if (!req || (!name && len)) return CHAT_EINVAL;
    b = &req->srv->text;
    b->len = 0;
    if (chat_buf_append(b, name, len) != CHAT_OK || chat_buf_reserve(b, 1) != CHAT_OK) return CHAT_ENOMEM;
    b->data[b->len] = '\0';
    req->has_name = 1;
    return CHAT_OK;
}

CHATDEF void chat_server_free(chat_server *srv) {
    unsigned i;
    int k;
    if (!srv) return;
    chat__history_write(srv); /* what chat_server_broadcast said since the last turn */
    chat__fd_close(srv->hist_fd);
    chat_buf_free(&srv->hist_pending);
    CHAT_FREE(srv->hist_path);
#ifndef CHAT_NO_MQTT
    chat__mqtt_free(srv); /* its members leave the room first */
#endif
    chat__room_free(&srv->room); /* first: it walks its members, which the connections hold */
    for (i = CHAT__SLOT_CONNS; i < srv->nfds; i++) {
        chat__conn *c = srv->conns[i];
        chat__queue_clear(c);
        CHAT_FREE(c->rx);
        srv->io.close(srv->io.user, c->fd, 0);
        CHAT_FREE(c);
    }
    chat__peers_prune(srv, 1);
    CHAT_FREE(srv->peers);
    chat__fd_close(srv->listen_fd);
    if (srv->wake_rd >= 0) {
        srv->phase = CHAT__STOPPED; /* posts still in the pipe are freed, not sent */
        chat__drain_posts(srv, 1);
        chat__fd_close(srv->wake_rd);
    }
    chat__fd_close(srv->wake_wr);
    chat__fd_close(srv->stop_rd);
    chat__fd_close(srv->stop_wr);
    CHAT_FREE(srv->slot_of_fd);
    CHAT_FREE(srv->ready);
    if (srv->ready_set >= 0) chat__fd_close(srv->ready_set);
    for (k = 0; k < srv->nassets; k++) CHAT_FREE(srv->assets[k]);
    CHAT_FREE(srv->owned);
    CHAT_FREE(srv->assets);
    CHAT_FREE(srv->pfds);
    CHAT_FREE(srv->conns);
    CHAT_FREE(srv->rxbuf);
    while (srv->nspare_q) CHAT_FREE(srv->spare_q[--srv->nspare_q].q);
    chat_buf_free(&srv->text);
    chat_buf_free(&srv->cid);
    CHAT_FREE(srv);
}

#endif /* CHAT_CODECS_ONLY */
#endif /* CHAT_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the chat.h authors
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
