/* example_main.c - the chat.h example: the tutorial's chat app, page included, in one binary.

   Build and run:   cc -O2 -o chat example_main.c && ./chat      then open an address it prints
   Options:         ./chat -h
*/
#define CHAT_IMPLEMENTATION
#include "chat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- public/ embedded by `make embed` (tests/embed.sh): edit public/, not this block --- */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
#endif
static const char public_index_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"zh-CN\">\n"
    "<head>\n"
    "<meta charset=\"UTF-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1, interactive-widget=resizes-content\">\n"
    "<title data-en=\"chat.h · Deno chat app\">chat.h · Deno 聊天应用程序</title>\n"
    "<link rel=\"icon\" href=\"data:,\">\n"
    "<link rel=\"stylesheet\" href=\"/public/style.css\">\n"
    "<script type=\"module\" src=\"/public/app.js\"></script>\n"
    "</head>\n"
    "<body>\n"
    "<header>\n"
    "<h1>🦕 chat.h · <span data-en=\"Deno chat app\">Deno 聊天应用程序</span></h1>\n"
    "<p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\n"
    "</header>\n"
    "<div id=\"join\">\n"
    "<form id=\"login\">\n"
    "<h2 data-en=\"Join the chat\">加入聊天</h2>\n"
    "<label for=\"name\" data-en=\"Your name\">你的名字</label>\n"
    "<input id=\"name\" required autocomplete=\"nickname\" autocapitalize=\"off\" spellcheck=\"false\" enterkeyhint=\"go\">\n"
    "<p id=\"why\" role=\"alert\"></p>\n"
    "<button data-en=\"Join\">加入</button>\n"
    "</form>\n"
    "</div>\n"
    "<aside>\n"
    "<h2 data-en=\"Online\">在线用户</h2>\n"
    "<ul id=\"users\"></ul>\n"
    "<p id=\"alone\" hidden></p>\n"
    "</aside>\n"
    "<main>\n"
    "<div id=\"conversation\" role=\"log\"></div>\n"
    "<form id=\"form\">\n"
    "<label for=\"data\" class=\"sr\" data-en=\"Message\">消息</label>\n"
    "<input id=\"data\" placeholder=\"发送消息\" data-en-ph=\"Send a message\" autocomplete=\"off\" enterkeyhint=\"send\">\n"
    "<button id=\"send\" data-en=\"Send\" disabled>发送</button>\n"
    "</form>\n"
    "</main>\n"
    "<template id=\"user\"><li></li></template>\n"
    "<template id=\"message\"><div><span></span> <time></time><p></p></div></template>\n"
    "</body>\n"
    "</html>\n";
static const char public_style_css[] =
    "/* chat.h: header/users/chat grid, one column on phones; system fonts only */\n"
    "*{box-sizing:border-box}\n"
    "[hidden]{display:none!important}\n"
    "body{display:grid;grid-template:\"h h\" auto \"a m\" minmax(0,1fr)/14rem minmax(0,1fr);margin:0;height:100vh;height:100dvh;font:16px/1.4 system-ui,-apple-system,sans-serif;color:#1d1d1f;background:#f4f5f7}\n"
    "button,input{font:inherit}\n"
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}\n"
    "\n"
    "header{grid-area:h;display:flex;flex-wrap:wrap;gap:0 1rem;align-items:center;justify-content:space-between;padding:.6rem 1.25rem;background:#1d1d1f;color:#fff}\n"
    "h1{margin:0;font-size:1.2rem}\n"
    "#status{margin:0;font-size:.85rem;color:#d0d3d8;max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\n"
    "/* amber: (re)connecting */\n"
    "#status::before{content:\"\";display:inline-block;width:.6em;height:.6em;margin-right:.4em;border-radius:50%;background:#f0b429}\n"
    "[data-s=connected] #status::before{background:#34c759}\n"
    "[data-s=idle] #status::before{background:#8a8f98}\n"
    "\n"
    "aside{grid-area:a;padding:1rem;border-right:1px solid #dde1e6;background:#fff;overflow:auto}\n"
    "body:not([data-s=connected]) aside{opacity:.55}\n"
    "h2{margin:0 0 .5rem;font-size:.95rem;color:#6b7280}\n"
    "#users{list-style:none;margin:0;padding:0}\n"
    "#users li{padding:.2rem 0;overflow-wrap:anywhere}\n"
    "#users li::before{content:\"● \";color:#2e9e44}\n"
    "#users .me::after{content:attr(data-you);color:#6b7280}\n"
    "#alone{margin:.5rem 0 0;font-size:.9rem;color:#6b7280}\n"
    "\n"
    "main{grid-area:m;display:flex;flex-direction:column;padding:1rem}\n"
    "#conversation{flex:1;display:flex;flex-direction:column;gap:.5rem;overflow-y:auto}\n"
    "/* short histories sit at the bottom, by the input */\n"
    "#conversation>:first-child{margin-top:auto}\n"
    "#conversation:empty::before{content:attr(data-empty);margin:auto;color:#6b7280}\n"
    "#conversation>div{align-self:flex-start;max-width:min(85%,42rem);padding:.4rem .75rem;border-radius:.8rem .8rem .8rem .2rem;background:#fff;box-shadow:0 1px 2px #0002}\n"
    "#conversation>.me{align-self:flex-end;border-radius:.8rem .8rem .2rem;background:#dce6ff}\n"
    "main span{font-weight:600;font-size:.85rem;color:#3a5ccc;overflow-wrap:anywhere}\n"
    "time{font-size:.75rem;color:#6b7280}\n"
    "main p{margin:.15rem 0 0;white-space:pre-wrap;overflow-wrap:anywhere}\n"
    "\n"
    "form{display:flex;gap:.5rem}\n"
    "#form{margin-top:.75rem}\n"
    "input{flex:1;min-width:0;padding:.55rem .75rem;border:1px solid #dde1e6;border-radius:.5rem;background:#fff;color:inherit}\n"
    "button{padding:.55rem 1.1rem;border:0;border-radius:.5rem;background:#3a5ccc;color:#fff;font-weight:600;cursor:pointer}\n"
    "button:disabled{opacity:.45}\n"
    "\n"
    "/* name form: card over the page, high enough to clear a phone keyboard */\n"
    "#join{position:fixed;inset:0;z-index:1;display:grid;place-items:start center;padding:12vh 1rem 1rem;background:#0007}\n"
    "#login{flex-direction:column;width:min(22rem,100%);padding:1.25rem;border-radius:.8rem;background:#fff;box-shadow:0 8px 30px #0005}\n"
    "#login h2{margin:0;font-size:1.15rem;color:#1d1d1f}\n"
    "label{font-size:.9rem;color:#6b7280}\n"
    "#why{margin:0;color:#d23b3b;overflow-wrap:anywhere}\n"
    "#why:empty{display:none}\n"
    "\n"
    "/* phones: users in a strip above the chat */\n"
    "@media(max-width:40rem){\n"
    "  body{grid-template:\"h\" auto \"a\" auto \"m\" minmax(0,1fr)/minmax(0,1fr)}\n"
    "  header{padding:.5rem .75rem}\n"
    "  h1{font-size:1rem}\n"
    "  aside{display:flex;align-items:center;gap:.75rem;padding:.4rem .75rem;border:0;border-bottom:1px solid #dde1e6;white-space:nowrap}\n"
    "  aside h2,#alone{margin:0;font-size:.85rem}\n"
    "  #users{display:flex;gap:.75rem}\n"
    "  main{padding:.5rem .75rem}\n"
    "}\n";
static const char public_app_js[] =
    "// chat.h client: join, chat, reconnect after drops\n"
    "const $ = (id) => document.getElementById(id);\n"
    "const zh = /^zh/i.test(navigator.language);\n"
    "const T = zh\n"
    "  ? { idle: \"未连接\", connecting: \"连接中…\", connected: \"已连接\", reconnecting: \"重连中…\",\n"
    "      alone: \"还没有其他人\", empty: \"还没有消息\", you: \"（你）\", bad: \"名字需 1–64 字节，不含控制字符\" }\n"
    "  : { idle: \"Offline\", connecting: \"Connecting…\", connected: \"Connected\", reconnecting: \"Reconnecting…\",\n"
    "      alone: \"No one else is here yet\", empty: \"No messages yet\", you: \" (you)\", bad: \"Name: 1–64 bytes, no control characters\" };\n"
    "\n"
    "const log = $(\"conversation\"), input = $(\"data\"), nameIn = $(\"name\"), KEY = \"chat.h name\";\n"
    "// HTML holds the Chinese labels, data-en* the English ones\n"
    "if (!zh) {\n"
    "  document.documentElement.lang = \"en\";\n"
    "  for (const el of document.querySelectorAll(\"[data-en]\")) el.textContent = el.dataset.en;\n"
    "  input.placeholder = input.dataset.enPh;\n"
    "}\n"
    "$(\"alone\").textContent = T.alone;\n"
    "log.dataset.empty = T.empty; // shown by CSS while empty\n"
    "let name, ws, tries = 0, lost = 0, seen = [];\n"
    "\n"
    "function setState(s) {\n"
    "  document.body.dataset.s = s;\n"
    "  $(\"status\").textContent = T[s] + (s == \"connected\" ? \" · \" + name : \"\");\n"
    "  $(\"send\").disabled = s != \"connected\";\n"
    "}\n"
    "\n"
    "function connect() {\n"
    "  setState(tries ? \"reconnecting\" : \"connecting\");\n"
    "  const url = new URL(\"/start_web_socket?username=\" + encodeURIComponent(name), location.href);\n"
    "  url.protocol = url.protocol.replace(\"http\", \"ws\");\n"
    "  const sock = (ws = new WebSocket(url));\n"
    "  sock.r = []; // until the first user list: the server's replay\n"
    "  sock.onopen = () => {\n"
    "    sock.t = Date.now();\n"
    "    setState(\"connected\");\n"
    "  };\n"
    "  sock.onmessage = (e) => {\n"
    "    let d;\n"
    "    try { d = JSON.parse(e.data); } catch { return; }\n"
    "    if (d?.event == \"update-users\") replay(sock), showUsers(d.usernames.map(String));\n"
    "    if (d?.event == \"send-message\") {\n"
    "      const m = [String(d.username), String(d.message ?\? \"\")];\n"
    "      sock.r ? sock.r.push(m) : addMessage(...m);\n"
    "    }\n"
    "  };\n"
    "  sock.onclose = (e) => {\n"
    "    if (sock != ws) return;\n"
    "    ws = null;\n"
    "    if (!sock.r) lost = Date.now();\n"
    "    // refused: ask again; but within 70 s of a drop our ghost may hold the name: retry\n"
    "    if (e.code == 1008 && (!sock.r || Date.now() - lost > 7e4)) {\n"
    "      tries = lost = 0;\n"
    "      setState(\"idle\");\n"
    "      return askName(e.reason || T.bad);\n"
    "    }\n"
    "    // other drops: 0.5 s doubling to 10 s, jittered; reset only after 5 s up\n"
    "    if (Date.now() - sock.t > 5e3) tries = 0;\n"
    "    setTimeout(connect, Math.min(1e4, 500 * 2 ** tries++) * (0.5 + Math.random() / 2));\n"
    "    setState(\"reconnecting\");\n"
    "  };\n"
    "}\n"
    "\n"
    "function showUsers(list) {\n"
    "  $(\"users\").replaceChildren(...list.map((u) => {\n"
    "    const li = $(\"user\").content.firstElementChild.cloneNode();\n"
    "    li.textContent = u;\n"
    "    if (u == name) li.className = \"me\", li.dataset.you = T.you;\n"
    "    return li;\n"
    "  }));\n"
    "  $(\"alone\").hidden = list.length > 1;\n"
    "}\n"
    "\n"
    "// skip the start of a replay that is already shown (a reconnect)\n"
    "function replay(sock, r = sock.r || []) {\n"
    "  let k = Math.min(r.length, seen.length);\n"
    "  while (k && JSON.stringify(seen.slice(-k)) != JSON.stringify(r.slice(0, k))) k--;\n"
    "  r.slice(k).forEach((m) => addMessage(...m));\n"
    "  sock.r = null;\n"
    "}\n"
    "\n"
    "function addMessage(user, text) {\n"
    "  seen.push([user, text]);\n"
    "  // autoscroll only when at the bottom\n"
    "  const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;\n"
    "  const m = $(\"message\").content.firstElementChild.cloneNode(true);\n"
    "  const [span, time, p] = m.querySelectorAll(\"span,time,p\");\n"
    "  span.textContent = user; // never innerHTML\n"
    "  p.textContent = text;\n"
    "  time.textContent = new Date().toTimeString().slice(0, 5); // local HH:MM\n"
    "  if (user == name) m.className = \"me\";\n"
    "  log.append(m);\n"
    "  if (stick || user == name) log.scrollTop = log.scrollHeight;\n"
    "}\n"
    "\n"
    "$(\"form\").onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  if (!input.value.trim() || ws?.readyState != 1) return;\n"
    "  ws.send(JSON.stringify({ event: \"send-message\", message: input.value }));\n"
    "  input.value = \"\";\n"
    "  input.focus();\n"
    "};\n"
    "\n"
    "// the name form covers the page, inert meanwhile\n"
    "function cover(on) {\n"
    "  $(\"join\").hidden = !on;\n"
    "  for (const el of document.querySelectorAll(\"aside,main\")) el.inert = on;\n"
    "}\n"
    "\n"
    "function askName(why = \"\") {\n"
    "  $(\"why\").textContent = why;\n"
    "  cover(true);\n"
    "  nameIn.select();\n"
    "  nameIn.focus();\n"
    "}\n"
    "\n"
    "$(\"login\").onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  const n = nameIn.value.trim();\n"
    "  // the server's own limits, to answer at once\n"
    "  if (!n || new TextEncoder().encode(n).length > 64 || /[\\0-\\x1f\\x7f]/.test(n)) return askName(T.bad);\n"
    "  name = n;\n"
    "  try { localStorage[KEY] = n; } catch {} // pre-fill next time\n"
    "  cover(false);\n"
    "  connect();\n"
    "  input.focus();\n"
    "};\n"
    "\n"
    "try { nameIn.value = localStorage[KEY] || \"\"; } catch {}\n"
    "setState(\"idle\");\n"
    "askName();\n";
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
/* --- end of embedded public/ --- */

static chat_server *server; /* for the signal handler */
static int verbosity = 1;   /* 0: warnings and errors (-q), 1: also info and the tutorial's lines, 2: debug (-v) */

static void on_signal(int sig) {
    (void)sig;
    chat_server_stop(server);
}

/* --- log lines, which must never stop the loop ------------------------------------------------ */

/* A pipe takes a write of up to PIPE_BUF bytes (at least 512, POSIX) whole or not at all, so a
   line is cut to this: one write() of it either goes through at once or is not tried. */
#define LOG_LINE_MAX 512

typedef struct log_stream {
    int fd;
    const char *name;
    unsigned long dropped; /* lines lost since the last one that went out */
} log_stream;

static log_stream log_stdout = {1, "stdout", 0}, log_stderr = {2, "stderr", 0};

#if defined(__GNUC__) || defined(__clang__)
static void log_line(log_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif

/* Writes one line (the newline is added) with a single write(), and only when the descriptor can
   take it now: a stdout or stderr that nobody reads (a full pipe) must not block the server.
   Otherwise the line is dropped and counted, and the next line that goes out on that stream is
   preceded by the count. No stdio buffering: a buffered line could block in a later flush. */
static void log_line(log_stream *s, const char *fmt, ...) {
    char line[LOG_LINE_MAX];
    size_t n = 0, room;
    int k;
    va_list ap;
    struct pollfd p;
    p.fd = s->fd, p.events = POLLOUT, p.revents = 0;
    if (poll(&p, 1, 0) != 1 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) || !(p.revents & POLLOUT)) {
        s->dropped++;
        return;
    }
    if (s->dropped) {
        k = snprintf(line, sizeof line, "chat: warning: %lu lines dropped (%s was full)\n", s->dropped, s->name);
        n = k > 0 ? (size_t)k : 0;
    }
    room = sizeof line - 1 - n; /* 1 for the newline */
    va_start(ap, fmt);
    k = vsnprintf(line + n, room, fmt, ap);
    va_end(ap);
    if (k > 0) n += (size_t)k < room ? (size_t)k : room - 1;
    line[n++] = '\n';
    if (write(s->fd, line, n) == (ssize_t)n) s->dropped = 0;
    else s->dropped++; /* EINTR, or a short write to something that is not a pipe */
}

/* The tutorial's log lines. */
static int on_join(void *user, chat_server *srv, const char *name, size_t len) {
    (void)user, (void)srv, (void)len;
    if (verbosity > 0) log_line(&log_stdout, "新客户端连接：%s", name);
    return 0;
}

static void on_leave(void *user, chat_server *srv, const char *name, size_t len) {
    (void)user, (void)srv, (void)len;
    if (verbosity > 0) log_line(&log_stdout, "客户端 %s 已断开连接", name);
}

static void on_log(void *user, int level, const char *line) {
    static const char *const names[] = {"log", "error", "warning", "info", "debug"};
    (void)user;
    log_line(&log_stderr, "chat: %s: %s", names[level >= 1 && level <= 4 ? level : 0], line);
}

/* --- start-up --------------------------------------------------------------------------------- */

/* "Listening at" lines with the addresses people can open: the one address it is bound to, or,
   bound to every interface, each address of this machine that is not loopback (on a board that
   is what its users need; IPv6 link-local ones are left out: a browser cannot open them without
   a zone), IPv4 first, then localhost. Scripts read the port from the first line. */
static void print_addresses(const char *address, int port) {
    struct ifaddrs *list, *ifa;
    char host[INET6_ADDRSTRLEN];
    int v6 = 1, pass;
    if (address && *address && strcmp(address, "::") != 0 && strcmp(address, "0.0.0.0") != 0) {
        int ipv6 = strchr(address, ':') != NULL;
        log_line(&log_stdout, "Listening at http://%s%s%s:%d", ipv6 ? "[" : "", address, ipv6 ? "]" : "", port);
        return;
    }
    if (address && strcmp(address, "0.0.0.0") == 0) v6 = 0;
    if (getifaddrs(&list) == 0) {
        for (pass = 0; pass < 2; pass++) {
            for (ifa = list; ifa; ifa = ifa->ifa_next) {
                const struct sockaddr *sa = ifa->ifa_addr;
                if (!sa) continue;
                if (pass == 0 && sa->sa_family == AF_INET) {
                    const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
                    if ((ntohl(in4->sin_addr.s_addr) >> 24) == 127) continue;
                    if (inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host))
                        log_line(&log_stdout, "Listening at http://%s:%d", host, port);
                } else if (pass == 1 && v6 && sa->sa_family == AF_INET6) {
                    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
                    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) || IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
                    if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host))
                        log_line(&log_stdout, "Listening at http://[%s]:%d", host, port);
                }
            }
        }
        freeifaddrs(list);
    }
    log_line(&log_stdout, "Listening at http://localhost:%d", port);
}

static void usage(FILE *out, const char *argv0) {
    fprintf(out,
            "usage: %s [-p PORT] [-b ADDRESS] [-c MAX_CLIENTS] [-r RATE] [-R BYTES] [-a CONNECTIONS] [-j JOINS]\n"
            "          [-o ORIGIN]... [-s] [-t PROXY] [-q] [-v]\n"
            "  -p PORT         port to listen on (default: $PORT, else 8080; 0 picks a free one)\n"
            "  -b ADDRESS      address to listen on (default: every interface, IPv6 and IPv4)\n"
            "  -c MAX_CLIENTS  chat clients at once (default %d)\n"
            "  -r RATE         frames (messages, pings) and HTTP requests per second one connection may\n"
            "                  send; more close it (default %d; 0: no limit)\n"
            "  -R BYTES        bytes per second read from one connection; past it, reading waits for\n"
            "                  the next second (default %d; 0: no limit)\n"
            "  -a CONNECTIONS  connections from one address (behind -t: the forwarded one; default %d;\n"
            "                  0: no limit)\n"
            "  -j JOINS        chat joins per minute from one address (default %d; 0: no limit)\n"
            "  -o ORIGIN       also accept WebSockets from pages of ORIGIN (e.g. https://example.com;\n"
            "                  repeatable; * for any). Default: only this server's own pages\n"
            "  -s              serve counters as JSON at /stats\n"
            "  -t PROXY        the IP address of a reverse proxy whose X-Forwarded-For is logged\n"
            "  -q              quiet: warnings and errors only (no join and leave lines)\n"
            "  -v              verbose: log every connection event\n"
            "  -h              this help\n",
            argv0, CHAT_MAX_CLIENTS, CHAT_MAX_RATE, CHAT_MAX_BYTE_RATE, CHAT_MAX_PER_ADDRESS, CHAT_MAX_JOIN_RATE);
}

static int parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* A limit option: 0 on the command line is "no limit", which chat_config spells -1. */
static int parse_limit(int opt, const char *s, int *out) {
    if (parse_int(s, 0, 1000000000, out) < 0) {
        fprintf(stderr, "chat: -%c needs a number from 0 (no limit) to 1000000000, not '%s'\n", opt, s);
        return -1;
    }
    if (*out == 0) *out = -1;
    return 0;
}

/* An IPv4 or IPv6 address, written to out the way the server prints a peer's (inet_ntop's form,
   an IPv4-mapped one as plain IPv4), so that -t ::ffff:127.0.0.1 or 0:0::1 still match. */
static int parse_address(const char *s, char *out, size_t cap) {
    unsigned char bin[16];
    if (inet_pton(AF_INET, s, bin) == 1) return inet_ntop(AF_INET, bin, out, (socklen_t)cap) ? 0 : -1;
    if (inet_pton(AF_INET6, s, bin) != 1 || !inet_ntop(AF_INET6, bin, out, (socklen_t)cap)) return -1;
    if (strncmp(out, "::ffff:", 7) == 0 && strchr(out + 7, '.')) memmove(out, out + 7, strlen(out + 7) + 1);
    return 0;
}

int main(int argc, char **argv) {
    static const struct {
        const char *path, *type, *body;
        size_t len;
    } assets[] = {
        {"/", "text/html; charset=UTF-8", public_index_html, sizeof public_index_html - 1},
        {"/public/index.html", "text/html; charset=UTF-8", public_index_html, sizeof public_index_html - 1},
        {"/public/style.css", "text/css; charset=UTF-8", public_style_css, sizeof public_style_css - 1},
        {"/public/app.js", "text/javascript; charset=UTF-8", public_app_js, sizeof public_app_js - 1},
    };
    static char proxy[INET6_ADDRSTRLEN];
    const char *address = NULL, *env_port = getenv("PORT"), *origins[33] = {NULL};
    chat_config config;
    struct sigaction sa;
    struct rlimit nofile;
    int port = 8080, opt, r, norigins = 0;
    size_t i;

    memset(&config, 0, sizeof config);
    if (env_port && *env_port && parse_int(env_port, 0, 65535, &port) < 0) {
        fprintf(stderr, "chat: PORT must be a number from 0 to 65535, not '%s'\n", env_port);
        return 2;
    }
    while ((opt = getopt(argc, argv, "p:b:c:r:R:a:j:o:st:qvh")) != -1) {
        switch (opt) {
        case 'p':
            if (parse_int(optarg, 0, 65535, &port) < 0) {
                fprintf(stderr, "chat: -p needs a port from 0 to 65535, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'b': address = optarg; break;
        case 'c':
            if (parse_int(optarg, 1, 1000000, &config.max_clients) < 0) {
                fprintf(stderr, "chat: -c needs a number from 1 to 1000000, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'r':
            if (parse_limit(opt, optarg, &config.max_rate) < 0) return 2;
            break;
        case 'R':
            if (parse_limit(opt, optarg, &config.max_byte_rate) < 0) return 2;
            break;
        case 'a':
            if (parse_limit(opt, optarg, &config.max_per_address) < 0) return 2;
            break;
        case 'j':
            if (parse_limit(opt, optarg, &config.max_join_rate) < 0) return 2;
            break;
        case 'o':
            if (norigins + 1 >= (int)(sizeof origins / sizeof origins[0])) {
                fprintf(stderr, "chat: at most %d -o options\n", (int)(sizeof origins / sizeof origins[0]) - 1);
                return 2;
            }
            origins[norigins++] = optarg;
            config.origins = origins;
            break;
        case 's': config.stats_path = "/stats"; break;
        case 't':
            if (parse_address(optarg, proxy, sizeof proxy) < 0) {
                fprintf(stderr, "chat: -t needs the proxy's IPv4 or IPv6 address (e.g. 127.0.0.1), not '%s'\n", optarg);
                return 2;
            }
            config.trusted_proxy = proxy;
            break;
        case 'q': verbosity = 0; break;
        case 'v': verbosity = 2; break;
        case 'h': usage(stdout, argv[0]); return 0;
        default: usage(stderr, argv[0]); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr, argv[0]);
        return 2;
    }

    /* Each client is a descriptor: allow as many as the system lets this process have. */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &nofile);
    }

    config.on_join = on_join;
    config.on_leave = on_leave;
    config.on_log = on_log;
    config.log_level = verbosity == 0 ? CHAT_LOG_WARN : verbosity == 1 ? CHAT_LOG_INFO : CHAT_LOG_DEBUG;
    server = chat_server_create(&config);
    if (!server) {
        fprintf(stderr, "chat: cannot create the server (out of memory or descriptors)\n");
        return 1;
    }
    for (i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        r = chat_server_add_asset(server, assets[i].path, assets[i].type, assets[i].body, assets[i].len);
        if (r != CHAT_OK) {
            fprintf(stderr, "chat: %s: %s\n", assets[i].path, chat_strerror(r));
            return 1;
        }
    }
    r = chat_server_listen(server, address, port);
    if (r != CHAT_OK) {
        fprintf(stderr, "chat: cannot listen on %s, port %d: %s\n", address && *address ? address : "every interface",
                port, r == CHAT_ESYS ? strerror(errno) : chat_strerror(r));
        chat_server_free(server);
        return 1;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN; /* a log reader that goes away gets EPIPE, the server goes on */
    sigaction(SIGPIPE, &sa, NULL);

    print_addresses(address, chat_server_port(server));
    r = chat_server_run(server);
    chat_server_free(server);
    if (r != CHAT_OK) {
        fprintf(stderr, "chat: %s\n", chat_strerror(r));
        return 1;
    }
    return 0;
}
