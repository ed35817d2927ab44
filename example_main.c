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
    "<meta name=\"color-scheme\" content=\"light dark\">\n"
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
    "<h2><span data-en=\"Online\">在线用户</span> <span id=\"count\"></span></h2>\n"
    "<ul id=\"users\"></ul>\n"
    "<p id=\"alone\" hidden></p>\n"
    "</aside>\n"
    "<main>\n"
    "<div id=\"pane\">\n"
    "<div id=\"conversation\" role=\"log\"></div>\n"
    "<button id=\"jump\" type=\"button\" hidden></button>\n"
    "</div>\n"
    "<div id=\"notice\" role=\"status\" hidden><span id=\"notice-text\"></span> <span id=\"countdown\" aria-hidden=\"true\"></span> <button id=\"notice-action\" type=\"button\" hidden></button></div>\n"
    "<form id=\"form\">\n"
    "<label for=\"data\" class=\"sr\" data-en=\"Message\">消息</label>\n"
    "<textarea id=\"data\" rows=\"1\" placeholder=\"发送消息\" data-en-ph=\"Send a message\" autocomplete=\"off\" enterkeyhint=\"send\"></textarea>\n"
    "<button id=\"send\" data-en=\"Send\" disabled>发送</button>\n"
    "</form>\n"
    "</main>\n"
    "<template id=\"user\"><li><span></span></li></template>\n"
    "<template id=\"message\"><div><span></span> <time></time><p></p></div></template>\n"
    "</body>\n"
    "</html>\n";
static const char public_style_css[] =
    "/* chat.h: header/users/chat grid, one column on phones; system fonts only; light and dark colours below */\n"
    ":root{color-scheme:light dark;\n"
    "  --bg:#f4f5f7;--fg:#1d1d1f;--muted:#5a616c;--panel:#fff;--border:#dde1e6;--bubble:#fff;--bubble-me:#dce6ff;\n"
    "  --accent:#3a5ccc;--on-accent:#fff;--link:#2446b8;--danger:#c42b2b;--focus:#3a5ccc;--online:#2e9e44;\n"
    "  --head-bg:#1d1d1f;--head-fg:#fff;--head-muted:#d0d3d8;--note-bg:#fff3d1;--note-fg:#4d3800;--shadow:#0002;--veil:#0007}\n"
    "@media(prefers-color-scheme:dark){:root{\n"
    "  --bg:#111317;--fg:#e7e9ec;--muted:#a3aab5;--panel:#1a1d23;--border:#2d323b;--bubble:#23272f;--bubble-me:#263a66;\n"
    "  --link:#9bb8ff;--danger:#ff8a8a;--focus:#8fb0ff;--online:#3fcf5f;\n"
    "  --head-bg:#07080a;--note-bg:#3b3013;--note-fg:#ffe3a3;--shadow:#0008;--veil:#000b}}\n"
    "*{box-sizing:border-box}\n"
    "[hidden]{display:none!important}\n"
    "body{display:grid;grid-template:\"h h\" auto \"a m\" minmax(0,1fr)/14rem minmax(0,1fr);margin:0;height:100vh;height:100dvh;font:16px/1.4 system-ui,-apple-system,sans-serif;color:var(--fg);background:var(--bg)}\n"
    "button,input,textarea{font:inherit}\n"
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}\n"
    "/* visible, not heavy: only where the keyboard (or a text field) has the focus */\n"
    ":focus-visible{outline:2px solid var(--focus);outline-offset:2px}\n"
    "\n"
    "header{grid-area:h;display:flex;flex-wrap:wrap;gap:0 1rem;align-items:center;justify-content:space-between;padding:.6rem 1.25rem;background:var(--head-bg);color:var(--head-fg)}\n"
    "h1{margin:0;font-size:1.2rem}\n"
    "#status{margin:0;font-size:.85rem;color:var(--head-muted);max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\n"
    "/* amber: (re)connecting */\n"
    "#status::before{content:\"\";display:inline-block;width:.6em;height:.6em;margin-right:.4em;border-radius:50%;background:#f0b429}\n"
    "[data-s=connected] #status::before{background:#34c759}\n"
    "[data-s=idle] #status::before{background:#8a8f98}\n"
    "\n"
    "aside{grid-area:a;padding:1rem;border-right:1px solid var(--border);background:var(--panel);overflow:auto}\n"
    "body:not([data-s=connected]) aside{opacity:.55}\n"
    "h2{margin:0 0 .5rem;font-size:.95rem;color:var(--muted)}\n"
    "#count:not(:empty){display:inline-block;min-width:1.5em;padding:0 .4em;border-radius:1em;background:var(--border);color:var(--fg);font-size:.8rem;text-align:center}\n"
    "#users{list-style:none;margin:0;padding:0}\n"
    "/* long names end in an ellipsis; the whole name on hover (title) and on focus */\n"
    "#users li{display:flex;align-items:baseline;gap:.35em;min-width:0;padding:.2rem 0;border-radius:.3rem}\n"
    "#users li::before{content:\"●\";flex:none;color:var(--c,var(--online))}\n"
    "#users span{min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\n"
    "#users li:focus span{white-space:normal;overflow-wrap:anywhere}\n"
    "#users .me::after{content:attr(data-you);flex:none;color:var(--muted)}\n"
    "#alone{margin:.5rem 0 0;font-size:.9rem;color:var(--muted)}\n"
    "\n"
    "main{grid-area:m;display:flex;flex-direction:column;min-width:0;padding:1rem}\n"
    "#pane{position:relative;flex:1;display:flex;min-height:0}\n"
    "#conversation{flex:1;display:flex;flex-direction:column;gap:.5rem;min-width:0;overflow-y:auto}\n"
    "/* short histories sit at the bottom, by the input */\n"
    "#conversation>:first-child{margin-top:auto}\n"
    "#conversation:empty::before{content:attr(data-empty);margin:auto;color:var(--muted)}\n"
    "#conversation>div{align-self:flex-start;max-width:min(85%,42rem);padding:.4rem .75rem;border-radius:.8rem .8rem .8rem .2rem;background:var(--bubble);box-shadow:0 1px 2px var(--shadow)}\n"
    "#conversation>.me{align-self:flex-end;border-radius:.8rem .8rem .2rem;background:var(--bubble-me)}\n"
    "#conversation span{font-weight:600;font-size:.85rem;color:var(--accent);overflow-wrap:anywhere}\n"
    "time{font-size:.75rem;color:var(--muted)}\n"
    "#conversation p{margin:.15rem 0 0;white-space:pre-wrap;overflow-wrap:anywhere}\n"
    "#conversation a{color:var(--link)}\n"
    "/* sent, not yet back from the server */\n"
    "#conversation>.pending{opacity:.65}\n"
    "#conversation>h3{align-self:center;margin:.5rem 0 0;font-size:.75rem;font-weight:600;color:var(--muted)}\n"
    "#jump{position:absolute;bottom:.5rem;left:50%;transform:translateX(-50%);padding:.35rem .9rem;border-radius:1rem;box-shadow:0 2px 8px var(--shadow)}\n"
    "\n"
    "#notice{margin:.75rem 0 0;padding:.45rem .75rem;border-radius:.5rem;background:var(--note-bg);color:var(--note-fg);overflow-wrap:anywhere}\n"
    "#notice-action{margin-left:.25rem;padding:.2rem .7rem}\n"
    "\n"
    "form{display:flex;gap:.5rem}\n"
    "#form{margin-top:.75rem;align-items:flex-end}\n"
    "input,textarea{flex:1;min-width:0;padding:.55rem .75rem;border:1px solid var(--border);border-radius:.5rem;background:var(--panel);color:inherit}\n"
    "::placeholder{color:var(--muted);opacity:1}\n"
    "/* one line that grows with Shift+Enter, up to a few lines */\n"
    "textarea{resize:none;field-sizing:content;min-height:calc(1.4em + 1.1rem + 2px);max-height:9rem;line-height:1.4}\n"
    "button{padding:.55rem 1.1rem;border:0;border-radius:.5rem;background:var(--accent);color:var(--on-accent);font-weight:600;cursor:pointer}\n"
    "button:disabled{opacity:.45}\n"
    "\n"
    "/* name form: card over the page, high enough to clear a phone keyboard */\n"
    "#join{position:fixed;inset:0;z-index:1;display:grid;place-items:start center;padding:12vh 1rem 1rem;background:var(--veil)}\n"
    "#login{flex-direction:column;width:min(22rem,100%);padding:1.25rem;border-radius:.8rem;background:var(--panel);box-shadow:0 8px 30px #0005}\n"
    "#login h2{margin:0;font-size:1.15rem;color:var(--fg)}\n"
    "label{font-size:.9rem;color:var(--muted)}\n"
    "#why{margin:0;color:var(--danger);overflow-wrap:anywhere}\n"
    "#why:empty{display:none}\n"
    "\n"
    "/* phones: users in a strip above the chat; a faded edge while more names are off to the side */\n"
    "@media(max-width:40rem){\n"
    "  body{grid-template:\"h\" auto \"a\" auto \"m\" minmax(0,1fr)/minmax(0,1fr)}\n"
    "  header{padding:.5rem .75rem}\n"
    "  h1{font-size:1rem}\n"
    "  aside{display:flex;align-items:center;gap:.75rem;padding:.4rem .75rem;border:0;border-bottom:1px solid var(--border);white-space:nowrap}\n"
    "  aside.more{mask-image:linear-gradient(to left,transparent,#000 2.5rem)}\n"
    "  aside h2,#alone{margin:0;font-size:.85rem}\n"
    "  #users{display:flex;gap:.75rem}\n"
    "  #users li{max-width:11rem}\n"
    "  #users li:focus{max-width:none}\n"
    "  main{padding:.5rem .75rem}\n"
    "  #notice{margin-top:.5rem}\n"
    "}\n";
static const char public_app_js[] =
    "// chat.h client: join, chat, reconnect with backoff, and always say why when something goes wrong.\n"
    "// The server's limits come from its welcome, never from here; text is inserted as text, never as HTML.\n"
    "// Nothing is lost or doubled across drops: every message has the server's id, a reconnect asks for\n"
    "// what came after the newest one seen (since) and takes the name back from its old connection\n"
    "// (resume), and what the user sends waits in an outbox until its own broadcast comes back.\n"
    "const $ = (id) => document.getElementById(id);\n"
    "const zh = /^zh/i.test(navigator.language);\n"
    "const num = (n) => n.toLocaleString(zh ? \"zh-CN\" : \"en-US\");\n"
    "const T = zh ? {\n"
    "  idle: \"未连接\", connecting: \"连接中…\", connected: \"已连接\", reconnecting: \"重连中…\",\n"
    "  alone: \"还没有其他人\", empty: \"还没有消息\", you: \"（你）\", jump: \"新消息 ↓\", rename: \"换个名字\",\n"
    "  blank: \"请输入名字\", missing: \"服务器没有收到名字\", utf8: \"名字不是有效的 UTF-8 文本\", control: \"名字不能包含控制字符\",\n"
    "  taken: (n, alt) => `名字“${n}”已被占用，换成“${alt}”如何？`,\n"
    "  takenHere: (n, alt) => `你已在另一个标签页中使用“${n}”，这里用“${alt}”如何？`,\n"
    "  tooLong: (max) => `名字太长：最多 ${num(max)} 字节（一个汉字占 3 字节）`,\n"
    "  refused: \"服务器不接受这个名字，请换一个\", reserved: \"这个名字被服务器保留，请换一个\",\n"
    "  rate: (r) => `你发送得太快${r ? `（每秒最多 ${num(r)} 条）` : \"\"}，服务器断开了连接`,\n"
    "  big: (b, max) => `消息太长：${num(b)} 字节，服务器最多接受 ${num(max)} 字节`,\n"
    "  bigClosed: \"服务器因消息太长拒绝了它，文字已放回输入框\",\n"
    "  full: \"聊天室已满\", unreachable: \"无法连接服务器，或服务器拒绝了连接\", lost: \"连接已断开\",\n"
    "  ghost: (n) => `你之前的连接仍占用着“${n}”`, shutdown: \"服务器正在关闭或重启\", ping: \"连接没有响应，服务器关闭了它\",\n"
    "  closed: (code) => `服务器关闭了连接（代码 ${code}）`, retryIn: (s) => `${s} 秒后重试`, retrying: \"正在重试…\",\n"
    "  sending: \"发送中…\", gap: \"部分消息可能缺失：服务器已不再保存你离开期间的全部消息\", replaced: \"这个聊天已在别处重新打开\",\n"
    "} : {\n"
    "  idle: \"Offline\", connecting: \"Connecting…\", connected: \"Connected\", reconnecting: \"Reconnecting…\",\n"
    "  alone: \"No one else is here yet\", empty: \"No messages yet\", you: \" (you)\", jump: \"New messages ↓\", rename: \"Change name\",\n"
    "  blank: \"Please enter a name\", missing: \"The server got no name.\", utf8: \"That name is not valid UTF-8 text.\",\n"
    "  control: \"A name cannot contain control characters.\",\n"
    "  taken: (n, alt) => `The name “${n}” is already taken. How about “${alt}”?`,\n"
    "  takenHere: (n, alt) => `You already use “${n}” in another tab. How about “${alt}” here?`,\n"
    "  tooLong: (max) => `That name is too long: at most ${num(max)} bytes (letters outside English take 2–4 each).`,\n"
    "  refused: \"The server does not accept this name. Please pick another one.\",\n"
    "  reserved: \"This name is reserved by the server. Please pick another one.\",\n"
    "  rate: (r) => `You sent messages too fast${r ? ` (at most ${num(r)} a second)` : \"\"}, so the server closed the connection.`,\n"
    "  big: (b, max) => `This message is too long: ${num(b)} bytes, the server takes at most ${num(max)}.`,\n"
    "  bigClosed: \"The server refused that message as too long; the text is back in the box.\",\n"
    "  full: \"The room is full.\", unreachable: \"The server cannot be reached, or it refuses the connection.\",\n"
    "  lost: \"The connection was lost.\", ghost: (n) => `Your previous connection still holds the name “${n}”.`,\n"
    "  shutdown: \"The server is shutting down or restarting.\", ping: \"The connection went quiet and the server closed it.\",\n"
    "  closed: (code) => `The server closed the connection (code ${code}).`, retryIn: (s) => `Trying again in ${s} s.`,\n"
    "  retrying: \"Trying again…\", sending: \"sending…\",\n"
    "  gap: \"Some messages may be missing: the server no longer holds everything sent while you were away.\",\n"
    "  replaced: \"This chat was opened again somewhere else.\",\n"
    "};\n"
    "\n"
    "// The server's close reasons this page knows, said in its own words; any other is shown as the server wrote it.\n"
    "const REASONS = [\n"
    "  [1008, /^用户名 [^]* 已被占用$/, \"taken\"],\n"
    "  [1008, /^username is missing$/, \"missing\"],\n"
    "  [1008, /^username is empty$/, \"blank\"],\n"
    "  [1008, /^username is too long \\(max (\\d+) bytes\\)$/, \"tooLong\"],\n"
    "  [1008, /^username is not valid UTF-8$/, \"utf8\"],\n"
    "  [1008, /^username contains control characters$/, \"control\"],\n"
    "  [1008, /^username refused/, \"refused\"],\n"
    "  [1008, /^username is reserved/, \"reserved\"],\n"
    "  [1008, /^too many messages$/, \"rate\"],\n"
    "  [1009, /^/, \"big\"], // \"message too big\", or any other server's words for the standard code\n"
    "  [1013, /^room is full/, \"full\"],\n"
    "  [1001, /^server shutting down$/, \"shutdown\"],\n"
    "  [1001, /^no response to ping$/, \"ping\"],\n"
    "  [4001, /^/, \"replaced\"], // our session was taken over with our own resume token\n"
    "];\n"
    "const NAME_PROBLEMS = new Set([\"taken\", \"missing\", \"blank\", \"tooLong\", \"utf8\", \"control\", \"refused\", \"reserved\"]);\n"
    "const MAX_SHOWN = 500;            // message nodes kept in the page; older ones go\n"
    "const FIRST_RETRY_MS = 500, MAX_RETRY_MS = 10_000, STABLE_MS = 5_000; // backoff; reset after this long joined\n"
    "const NEAR_BOTTOM_PX = 40;        // \"at the bottom\" for following new messages\n"
    "const NAME_KEY = \"chat.h name\", LIMITS_KEY = \"chat.h limits\", OUTBOX_KEY = \"chat.h outbox\";\n"
    "\n"
    "const log = $(\"conversation\"), input = $(\"data\"), nameIn = $(\"name\"), form = $(\"form\"), aside = document.querySelector(\"aside\");\n"
    "const encoder = new TextEncoder(), bytes = (s) => encoder.encode(s).length;\n"
    "// HTML holds the Chinese labels, data-en* the English ones\n"
    "if (!zh) {\n"
    "  document.documentElement.lang = \"en\";\n"
    "  for (const el of document.querySelectorAll(\"[data-en]\")) el.textContent = el.dataset.en;\n"
    "  input.placeholder = input.dataset.enPh;\n"
    "}\n"
    "const title = document.title;\n"
    "$(\"alone\").textContent = T.alone;\n"
    "$(\"jump\").textContent = T.jump;\n"
    "$(\"notice-action\").textContent = T.rename;\n"
    "log.dataset.empty = T.empty; // shown by CSS while empty\n"
    "\n"
    "const load = (store, key) => { try { return window[store].getItem(key); } catch { return null; } };\n"
    "const save = (store, key, value) => { try { window[store].setItem(key, value); } catch {} };\n"
    "\n"
    "let myName = \"\";          // the name this tab joins with\n"
    "let joinedAs = \"\";        // the name this tab was in the room with and is reconnecting as (\"\" after a refusal)\n"
    "let current = null;       // the connection being made or in use: { ws, opened, joined, joinedAt }\n"
    "let attempt = 0;          // connection attempts since the last stable one (backoff exponent)\n"
    "let unopened = 0;         // attempts in a row that failed before the socket opened\n"
    "let retryTimer = 0, retryAt = 0, tickTimer = 0;\n"
    "let limits = readLimits(parseJSON(load(\"sessionStorage\", LIMITS_KEY))); // the server's, from its last welcome\n"
    "let unsent = \"\";          // the last text handed to the socket, given back if the server finds it too big\n"
    "let noticeKind = \"\";      // \"connection\": goes once joined; \"sticky\": stays until the next edit or send\n"
    "let unread = 0;           // messages from others while the tab is hidden\n"
    "let atBottom = true;      // the conversation follows new messages\n"
    "let nameEdited = false;   // the user typed in the name field (suggestions no longer replace it)\n"
    "const elsewhere = new Set(); // names other tabs of this browser are in the room with\n"
    "let topId = 0;            // the newest message id seen: a reconnect asks for what came after it\n"
    "let resumeToken = \"\";     // from the welcome: lets a reconnect take the name from our old connection\n"
    "const seen = new Set();   // ids of the messages shown (the newest 2 * MAX_SHOWN), so none is shown twice\n"
    "// what the user sent that has not come back yet, oldest first: { cid, text, at }; kept over a reload\n"
    "let outbox = (() => { const o = parseJSON(load(\"sessionStorage\", OUTBOX_KEY)); return Array.isArray(o) ? o.filter((e) => typeof e?.cid === \"string\" && typeof e.text === \"string\") : []; })();\n"
    "let lastDay = \"\";         // the day of the newest message placed, for the separators between days\n"
    "let queue = [];           // outbox entries still to go out on this connection, paced by pump()\n"
    "let nextSendAt = 0, pumpTimer = 0;\n"
    "\n"
    "function parseJSON(text) { try { return JSON.parse(text); } catch { return null; } }\n"
    "const saveOutbox = () => save(\"sessionStorage\", OUTBOX_KEY, JSON.stringify(outbox));\n"
    "\n"
    "function readLimits(l) {\n"
    "  if (!l || typeof l !== \"object\") return null;\n"
    "  const n = (v) => (Number.isSafeInteger(v) && v > 0 ? v : 0); // 0: no limit, or not told\n"
    "  return { max_message: n(l.max_message), max_name: n(l.max_name), max_rate: n(l.max_rate) };\n"
    "}\n"
    "\n"
    "function rememberLimits(l) {\n"
    "  limits = l;\n"
    "  save(\"sessionStorage\", LIMITS_KEY, JSON.stringify(l));\n"
    "}\n"
    "\n"
    "function setState(s) {\n"
    "  document.body.dataset.s = s;\n"
    "  $(\"status\").textContent = T[s] + (s === \"connected\" ? \" · \" + myName : \"\");\n"
    "  // while reconnecting, what is sent waits in the outbox\n"
    "  $(\"send\").disabled = s !== \"connected\" && s !== \"reconnecting\";\n"
    "}\n"
    "\n"
    "// --- the notice above the input: why something failed, and when the page tries again -----------\n"
    "\n"
    "function note(text, kind, action = null) {\n"
    "  $(\"notice-text\").textContent = text;\n"
    "  $(\"notice\").hidden = !text;\n"
    "  noticeKind = text ? kind : \"\";\n"
    "  $(\"notice-action\").hidden = !action;\n"
    "  $(\"notice-action\").onclick = action;\n"
    "}\n"
    "\n"
    "function tick() {\n"
    "  clearTimeout(tickTimer);\n"
    "  let text = \"\";\n"
    "  if (retryAt) {\n"
    "    text = T.retryIn(Math.max(1, Math.ceil((retryAt - Date.now()) / 1000)));\n"
    "    tickTimer = setTimeout(tick, 250);\n"
    "  } else if (current && !current.joined && noticeKind === \"connection\") text = T.retrying;\n"
    "  $(\"countdown\").textContent = text;\n"
    "}\n"
    "\n"
    "// --- the connection ------------------------------------------------------------------------------\n"
    "\n"
    "function connect() {\n"
    "  clearTimeout(retryTimer);\n"
    "  retryAt = 0;\n"
    "  setState(joinedAs ? \"reconnecting\" : \"connecting\");\n"
    "  let query = \"?username=\" + encodeURIComponent(myName);\n"
    "  if (topId) query += \"&since=\" + topId;\n"
    "  if (resumeToken && joinedAs === myName) query += \"&resume=\" + encodeURIComponent(resumeToken);\n"
    "  const url = new URL(\"/start_web_socket\" + query, location.href);\n"
    "  url.protocol = url.protocol.replace(\"http\", \"ws\");\n"
    "  const conn = { ws: new WebSocket(url), opened: false, joined: false, joinedAt: 0 };\n"
    "  current = conn;\n"
    "  tick();\n"
    "  conn.ws.onopen = () => { conn.opened = true; };\n"
    "  conn.ws.onmessage = (e) => { if (current === conn) receive(conn, e.data); };\n"
    "  conn.ws.onclose = (e) => { if (current === conn) closed(conn, e.code, e.reason); };\n"
    "}\n"
    "\n"
    "function receive(conn, text) {\n"
    "  const data = parseJSON(text);\n"
    "  if (!data || typeof data !== \"object\") return;\n"
    "  if (data.event === \"welcome\") {\n"
    "    joined(conn);\n"
    "    const l = readLimits(data.limits);\n"
    "    if (l) rememberLimits(l);\n"
    "    resumeToken = typeof data.resume === \"string\" ? data.resume : \"\";\n"
    "    if (!topId && Number.isSafeInteger(data.id)) topId = data.id; // so even a quiet page can resume\n"
    "    if (data.missing === true) note(T.gap, \"sticky\");\n"
    "    // what has not come back yet goes again, with its cid: the server drops what it already said\n"
    "    queue = outbox.slice();\n"
    "    pump();\n"
    "  } else if (data.event === \"update-users\" && Array.isArray(data.usernames)) {\n"
    "    joined(conn);\n"
    "    showUsers(data.usernames.map(String));\n"
    "  } else if (data.event === \"send-message\") {\n"
    "    const id = Number.isSafeInteger(data.id) && data.id > 0 ? data.id : 0;\n"
    "    // the server's clock when it says (a replay shows when it was said), else ours\n"
    "    const time = Number.isFinite(data.time) && Math.abs(data.time) < 8.64e15 ? data.time : Date.now();\n"
    "    const m = { user: String(data.username), text: String(data.message ?\? \"\"), time };\n"
    "    if (id > topId) topId = id;\n"
    "    const mine = m.user === myName && typeof data.cid === \"string\" ? outbox.findIndex((e) => e.cid === data.cid) : -1;\n"
    "    if (mine >= 0) {\n"
    "      queue = queue.filter((e) => e !== outbox[mine]); // already said: not again\n"
    "      outbox.splice(mine, 1);\n"
    "      saveOutbox();\n"
    "    }\n"
    "    if (id && seen.has(id)) return;\n"
    "    if (id) {\n"
    "      seen.add(id);\n"
    "      if (seen.size > 2 * MAX_SHOWN) seen.delete(seen.values().next().value);\n"
    "    }\n"
    "    const pending = mine >= 0 ? log.querySelector(`:scope > .pending[data-cid=\"${CSS.escape(data.cid)}\"]`) : null;\n"
    "    if (pending) markSent(pending, m);\n"
    "    else addMessage(m, data.replay !== true);\n"
    "  } // anything else: a newer server's, ignored\n"
    "}\n"
    "\n"
    "// the server took the name: the welcome, or the first user list from a server without one\n"
    "function joined(conn) {\n"
    "  if (conn.joined) return;\n"
    "  conn.joined = true;\n"
    "  conn.joinedAt = Date.now();\n"
    "  joinedAs = myName;\n"
    "  unopened = 0;\n"
    "  if (noticeKind === \"connection\") note(\"\", \"\");\n"
    "  setState(\"connected\");\n"
    "  tick();\n"
    "  tabs?.postMessage({ here: myName, limits });\n"
    "}\n"
    "\n"
    "function closed(conn, code, reason) {\n"
    "  current = null;\n"
    "  unopened = conn.opened ? 0 : unopened + 1;\n"
    "  const why = classify(code, reason);\n"
    "  if (why.kind === \"tooLong\") rememberLimits({ ...(limits || readLimits({})), max_name: why.max });\n"
    "  if (why.kind === \"taken\" && joinedAs === myName) {\n"
    "    // our own dropped connection may still hold the name until the server notices: keep trying\n"
    "    note(T.ghost(myName), \"connection\", () => { stop(); askName(\"\"); });\n"
    "    return retryLater();\n"
    "  }\n"
    "  if (NAME_PROBLEMS.has(why.kind) || (code === 1008 && why.kind === \"unknown\")) return askName(nameProblem(why, reason));\n"
    "  if (conn.joined && Date.now() - conn.joinedAt > STABLE_MS) attempt = 0;\n"
    "  if (why.kind === \"replaced\") {\n"
    "    note(T.replaced, \"sticky\");\n"
    "    return setState(\"idle\");\n"
    "  }\n"
    "  if (why.kind === \"big\") {\n"
    "    // the server will never take it: out of the outbox, back into the input\n"
    "    const k = outbox.findIndex((e) => e.text === unsent);\n"
    "    if (k >= 0) {\n"
    "      log.querySelector(`:scope > .pending[data-cid=\"${CSS.escape(outbox[k].cid)}\"]`)?.remove();\n"
    "      outbox.splice(k, 1);\n"
    "      saveOutbox();\n"
    "    }\n"
    "    if (!input.value) input.value = unsent;\n"
    "    note(T.bigClosed, \"sticky\");\n"
    "  } else if (why.kind === \"rate\") note(T.rate(limits?.max_rate), \"sticky\");\n"
    "  else if (why.kind === \"full\") note(T.full, \"connection\");\n"
    "  else if (why.kind === \"shutdown\" || why.kind === \"ping\") note(T[why.kind], \"connection\");\n"
    "  else if (reason) note(reason, \"connection\");\n"
    "  else if (unopened > 1 || (unopened && !joinedAs)) note(T.unreachable, \"connection\");\n"
    "  else if (noticeKind !== \"sticky\") note(code === 1006 ? T.lost : T.closed(code), \"connection\");\n"
    "  retryLater();\n"
    "}\n"
    "\n"
    "function classify(code, reason) {\n"
    "  for (const [c, re, kind] of REASONS) {\n"
    "    const m = code === c ? re.exec(reason) : null;\n"
    "    if (m) return { kind, max: m[1] ? Number(m[1]) : 0 };\n"
    "  }\n"
    "  return { kind: \"unknown\", max: 0 };\n"
    "}\n"
    "\n"
    "function nameProblem(why, reason) {\n"
    "  if (why.kind === \"unknown\") return reason || T.closed(1008);\n"
    "  if (why.kind !== \"taken\") return typeof T[why.kind] === \"function\" ? T[why.kind](why.max) : T[why.kind];\n"
    "  const alt = variant(myName);\n"
    "  nameIn.value = alt;\n"
    "  return (elsewhere.has(myName) ? T.takenHere : T.taken)(myName, alt);\n"
    "}\n"
    "\n"
    "// 0.5 s doubling to 10 s, jittered\n"
    "function retryLater() {\n"
    "  const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt++) * (0.5 + Math.random() / 2);\n"
    "  retryAt = Date.now() + delay;\n"
    "  retryTimer = setTimeout(connect, delay);\n"
    "  setState(joinedAs ? \"reconnecting\" : \"connecting\");\n"
    "  tick();\n"
    "}\n"
    "\n"
    "function stop() {\n"
    "  clearTimeout(retryTimer);\n"
    "  retryAt = 0;\n"
    "  const conn = current;\n"
    "  current = null;\n"
    "  conn?.ws.close();\n"
    "  tick();\n"
    "}\n"
    "\n"
    "// --- two tabs of one browser: each its own name ------------------------------------------------------\n"
    "\n"
    "const tabs = typeof BroadcastChannel === \"function\" ? new BroadcastChannel(\"chat.h tabs\") : null;\n"
    "if (tabs) {\n"
    "  tabs.onmessage = ({ data }) => {\n"
    "    if (data?.ask && joinedAs) tabs.postMessage({ here: joinedAs, limits });\n"
    "    if (typeof data?.gone === \"string\") elsewhere.delete(data.gone);\n"
    "    if (typeof data?.here !== \"string\") return;\n"
    "    elsewhere.add(data.here);\n"
    "    if (!limits && readLimits(data.limits)) rememberLimits(readLimits(data.limits));\n"
    "    // suggest a name of our own while the field holds one another tab uses\n"
    "    if (!nameEdited && !$(\"join\").hidden && nameIn.value.trim() === data.here) {\n"
    "      nameIn.value = variant(data.here);\n"
    "      if (document.activeElement === nameIn) nameIn.select();\n"
    "    }\n"
    "  };\n"
    "  tabs.postMessage({ ask: true });\n"
    "  addEventListener(\"pagehide\", () => { if (joinedAs) tabs.postMessage({ gone: joinedAs }); });\n"
    "}\n"
    "\n"
    "// \"Alice\" -> \"Alice 2\" (or the next number no other tab of ours uses), within the server's name limit\n"
    "function variant(name) {\n"
    "  const m = /^(.*) (\\d+)$/su.exec(name);\n"
    "  const base = m ? m[1] : name;\n"
    "  for (let k = m ? Number(m[2]) + 1 : 2; ; k++) {\n"
    "    let chars = [...base], alt = `${base} ${k}`;\n"
    "    while (limits?.max_name && bytes(alt) > limits.max_name && chars.length) alt = `${chars.slice(0, -1).join(\"\")} ${k}`, chars.pop();\n"
    "    if (!elsewhere.has(alt)) return alt.trim();\n"
    "  }\n"
    "}\n"
    "\n"
    "// --- the user list ---------------------------------------------------------------------------------\n"
    "\n"
    "function showUsers(list) {\n"
    "  $(\"users\").replaceChildren(...list.map((u) => {\n"
    "    const li = $(\"user\").content.firstElementChild.cloneNode(true);\n"
    "    li.firstElementChild.textContent = u;\n"
    "    li.title = u;\n"
    "    li.dataset.name = u;\n"
    "    if (u === myName) li.className = \"me\", li.dataset.you = T.you;\n"
    "    return li;\n"
    "  }));\n"
    "  $(\"count\").textContent = list.length;\n"
    "  $(\"alone\").hidden = list.length > 1;\n"
    "  paintUsers();\n"
    "  fitUsers();\n"
    "}\n"
    "\n"
    "// a shortened name can be reached with the keyboard, and shows in full while focused\n"
    "function fitUsers() {\n"
    "  for (const li of $(\"users\").children) {\n"
    "    if (li === document.activeElement) continue;\n"
    "    const span = li.firstElementChild;\n"
    "    if (span.scrollWidth > span.clientWidth) li.tabIndex = 0;\n"
    "    else li.removeAttribute(\"tabindex\");\n"
    "  }\n"
    "  aside.classList.toggle(\"more\", aside.scrollWidth - aside.scrollLeft - aside.clientWidth > 1);\n"
    "}\n"
    "aside.addEventListener(\"scroll\", fitUsers, { passive: true });\n"
    "\n"
    "// --- sender colours: a hue from the name, as light or dark as the background needs for 4.5:1 ------\n"
    "\n"
    "const colours = new Map(); // name + background -> colour\n"
    "const backs = new Map();   // \"me\" / \"other\" / \"list\" -> background of that place in the current colour scheme\n"
    "const darkScheme = matchMedia(\"(prefers-color-scheme: dark)\");\n"
    "\n"
    "function luminance(rgb) {\n"
    "  const [r, g, b] = rgb.map((v) => (v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);\n"
    "  return 0.2126 * r + 0.7152 * g + 0.0722 * b;\n"
    "}\n"
    "const contrast = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };\n"
    "const hsl = (h, s, l) => [0, 8, 4].map((n) => {\n"
    "  const k = (n + h / 30) % 12;\n"
    "  return Math.round(255 * (l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1))));\n"
    "});\n"
    "\n"
    "function colourOf(name, back) {\n"
    "  const key = name + \"\\n\" + back;\n"
    "  if (colours.has(key)) return colours.get(key);\n"
    "  let hash = 0x811c9dc5; // FNV-1a\n"
    "  for (const ch of name) hash = Math.imul(hash ^ ch.codePointAt(0), 0x01000193);\n"
    "  const hue = (hash >>> 0) % 360, bg = back.split(\",\").map(Number), dark = luminance(bg) < 0.3;\n"
    "  let rgb = dark ? [255, 255, 255] : [0, 0, 0];\n"
    "  for (let l = dark ? 0.6 : 0.45; l > 0 && l < 1; l += dark ? 0.025 : -0.025) {\n"
    "    const c = hsl(hue, 0.7, l);\n"
    "    if (contrast(c, bg) >= 4.6) { rgb = c; break; }\n"
    "  }\n"
    "  if (colours.size > 4 * MAX_SHOWN) colours.clear();\n"
    "  colours.set(key, `rgb(${rgb.join(\", \")})`);\n"
    "  return colours.get(key);\n"
    "}\n"
    "\n"
    "function backOf(place, el) {\n"
    "  if (!backs.has(place)) backs.set(place, (getComputedStyle(el).backgroundColor.match(/\\d+(\\.\\d+)?/g) || [255, 255, 255]).slice(0, 3).join(\",\"));\n"
    "  return backs.get(place);\n"
    "}\n"
    "\n"
    "function paintMessage(div) {\n"
    "  const span = div.firstElementChild;\n"
    "  span.style.color = colourOf(span.textContent, backOf(div.classList.contains(\"me\") ? \"me\" : \"other\", div));\n"
    "}\n"
    "\n"
    "function paintUsers() {\n"
    "  for (const li of $(\"users\").children) li.style.setProperty(\"--c\", colourOf(li.dataset.name, backOf(\"list\", aside)));\n"
    "}\n"
    "\n"
    "darkScheme.addEventListener(\"change\", () => {\n"
    "  backs.clear();\n"
    "  for (const div of log.children) paintMessage(div);\n"
    "  paintUsers();\n"
    "});\n"
    "\n"
    "// --- the conversation ------------------------------------------------------------------------------\n"
    "\n"
    "const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;\n"
    "function toBottom() {\n"
    "  log.scrollTop = log.scrollHeight;\n"
    "  atBottom = true;\n"
    "  $(\"jump\").hidden = true;\n"
    "}\n"
    "\n"
    "// a message node: the sender, the time (or \"sending…\" while pending), the text\n"
    "function messageNode(user, text) {\n"
    "  const div = $(\"message\").content.firstElementChild.cloneNode(true);\n"
    "  const [span, , p] = div.querySelectorAll(\"span,time,p\");\n"
    "  span.textContent = user; // never innerHTML\n"
    "  fillText(p, text);\n"
    "  if (user === myName) div.className = \"me\";\n"
    "  return div;\n"
    "}\n"
    "\n"
    "function stamp(div, time) {\n"
    "  const when = new Date(time), el = div.querySelector(\"time\");\n"
    "  el.dateTime = when.toISOString();\n"
    "  el.textContent = when.toTimeString().slice(0, 5); // local HH:MM\n"
    "}\n"
    "\n"
    "// Confirmed messages go in id order, before the pending ones (which stay at the bottom); a day\n"
    "// that is not today, or a new day, starts with its date.\n"
    "function place(div, time) {\n"
    "  const first = log.querySelector(\":scope > .pending\");\n"
    "  const when = new Date(time), day = when.toDateString();\n"
    "  if (day !== lastDay && (lastDay || day !== new Date().toDateString())) {\n"
    "    const h = document.createElement(\"h3\");\n"
    "    h.textContent = when.toLocaleDateString(zh ? \"zh-CN\" : \"en-US\", { weekday: \"short\", year: \"numeric\", month: \"short\", day: \"numeric\" });\n"
    "    log.insertBefore(h, first);\n"
    "  }\n"
    "  lastDay = day;\n"
    "  log.insertBefore(div, first);\n"
    "  // at most MAX_SHOWN messages, and no date left without its messages\n"
    "  while (log.querySelectorAll(\":scope > div\").length > MAX_SHOWN) {\n"
    "    log.querySelector(\":scope > div\").remove();\n"
    "    while (log.firstElementChild?.tagName === \"H3\" && log.firstElementChild.nextElementSibling?.tagName !== \"DIV\") log.firstElementChild.remove();\n"
    "  }\n"
    "}\n"
    "\n"
    "function addMessage(m, live) {\n"
    "  const follow = nearBottom();\n"
    "  const div = messageNode(m.user, m.text);\n"
    "  stamp(div, m.time);\n"
    "  place(div, m.time);\n"
    "  paintMessage(div);\n"
    "  if (follow || (live && m.user === myName)) toBottom();\n"
    "  else $(\"jump\").hidden = false;\n"
    "  if (live && m.user !== myName && document.visibilityState === \"hidden\") unread++, showUnread();\n"
    "}\n"
    "\n"
    "// what the user sent, shown at once and marked sent when its own broadcast comes back\n"
    "function addPending(e) {\n"
    "  const div = messageNode(myName, e.text);\n"
    "  div.classList.add(\"pending\");\n"
    "  div.dataset.cid = e.cid;\n"
    "  div.querySelector(\"time\").textContent = T.sending;\n"
    "  log.append(div);\n"
    "  paintMessage(div);\n"
    "  toBottom();\n"
    "}\n"
    "\n"
    "function markSent(div, m) {\n"
    "  div.classList.remove(\"pending\");\n"
    "  delete div.dataset.cid;\n"
    "  stamp(div, m.time);\n"
    "  place(div, m.time);\n"
    "  if (atBottom) toBottom();\n"
    "}\n"
    "\n"
    "// http and https links become links (built as nodes); everything else stays text\n"
    "const LINK = /\\bhttps?:\\/\\/[^\\s<>\"]+/gi;\n"
    "function fillText(p, text) {\n"
    "  let done = 0;\n"
    "  for (const m of text.matchAll(LINK)) {\n"
    "    let href = m[0].replace(/[.,;:!?'\"»」』。，；：！？、]+$/u, \"\");\n"
    "    while (href.endsWith(\")\") && href.split(\"(\").length < href.split(\")\").length) href = href.slice(0, -1);\n"
    "    let url = null;\n"
    "    try { url = new URL(href); } catch {}\n"
    "    if (!url || (url.protocol !== \"http:\" && url.protocol !== \"https:\")) continue;\n"
    "    const a = document.createElement(\"a\");\n"
    "    a.href = url.href;\n"
    "    a.textContent = href;\n"
    "    a.target = \"_blank\";\n"
    "    a.rel = \"noopener noreferrer\";\n"
    "    p.append(text.slice(done, m.index), a);\n"
    "    done = m.index + href.length;\n"
    "  }\n"
    "  p.append(text.slice(done));\n"
    "}\n"
    "\n"
    "function showUnread() {\n"
    "  document.title = unread ? `(${unread}) ${title}` : title;\n"
    "}\n"
    "document.addEventListener(\"visibilitychange\", () => {\n"
    "  if (document.visibilityState === \"visible\") unread = 0, showUnread();\n"
    "});\n"
    "\n"
    "log.addEventListener(\"scroll\", () => {\n"
    "  atBottom = nearBottom();\n"
    "  if (atBottom) $(\"jump\").hidden = true;\n"
    "}, { passive: true });\n"
    "$(\"jump\").onclick = () => { toBottom(); input.focus(); };\n"
    "// a phone keyboard (or any resize) shrinks the conversation: stay at the bottom if we were there\n"
    "const keepBottom = () => { if (atBottom) toBottom(); fitUsers(); };\n"
    "new ResizeObserver(keepBottom).observe(log);\n"
    "window.visualViewport?.addEventListener(\"resize\", keepBottom);\n"
    "\n"
    "// --- sending -------------------------------------------------------------------------------------------\n"
    "\n"
    "// Enter sends, Shift+Enter starts a new line (and Enter that ends an input method's composition does neither)\n"
    "input.addEventListener(\"keydown\", (e) => {\n"
    "  if (e.key !== \"Enter\" || e.shiftKey || e.isComposing || e.keyCode === 229) return;\n"
    "  e.preventDefault();\n"
    "  form.requestSubmit();\n"
    "});\n"
    "input.addEventListener(\"input\", () => { if (noticeKind === \"sticky\") note(\"\", \"\"); });\n"
    "\n"
    "// Sends the queue at half the server's rate limit at most, so a burst (the user's, or an outbox\n"
    "// resent after a reconnect) is never closed for flooding; what waits stays shown as \"sending…\".\n"
    "function pump() {\n"
    "  clearTimeout(pumpTimer);\n"
    "  const ws = current?.joined ? current.ws : null;\n"
    "  const gap = limits?.max_rate ? 1000 / Math.max(1, Math.floor(limits.max_rate / 2)) : 0;\n"
    "  while (queue.length && ws?.readyState === WebSocket.OPEN) {\n"
    "    const wait = nextSendAt - Date.now();\n"
    "    if (wait > 0) return void (pumpTimer = setTimeout(pump, wait));\n"
    "    ws.send(frameOf(queue.shift()));\n"
    "    nextSendAt = Math.max(nextSendAt, Date.now() - gap) + gap;\n"
    "  }\n"
    "}\n"
    "\n"
    "// a client's id for a message (crypto.getRandomValues also works on a plain-http LAN page)\n"
    "const newCid = () => [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, \"0\")).join(\"\");\n"
    "const frameOf = (e) => JSON.stringify({ event: \"send-message\", message: e.text, cid: e.cid });\n"
    "\n"
    "form.onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  const text = input.value;\n"
    "  if (!text.trim() || !joinedAs) return;\n"
    "  const entry = { cid: newCid(), text, at: Date.now() };\n"
    "  const frame = frameOf(entry);\n"
    "  const size = bytes(frame);\n"
    "  if (limits?.max_message && size > limits.max_message) {\n"
    "    note(T.big(size, limits.max_message), \"sticky\");\n"
    "    return input.focus();\n"
    "  }\n"
    "  outbox.push(entry);\n"
    "  saveOutbox();\n"
    "  addPending(entry);\n"
    "  if (current?.joined) queue.push(entry), pump();\n"
    "  unsent = text;\n"
    "  input.value = \"\";\n"
    "  if (noticeKind === \"sticky\") note(\"\", \"\");\n"
    "  input.focus();\n"
    "};\n"
    "\n"
    "// --- the name ----------------------------------------------------------------------------------------\n"
    "\n"
    "// the name form covers the page, inert meanwhile\n"
    "function cover(on) {\n"
    "  $(\"join\").hidden = !on;\n"
    "  for (const el of document.querySelectorAll(\"aside,main\")) el.inert = on;\n"
    "}\n"
    "\n"
    "function askName(why = \"\") {\n"
    "  if (joinedAs) tabs?.postMessage({ gone: joinedAs });\n"
    "  joinedAs = \"\";\n"
    "  attempt = unopened = 0;\n"
    "  if (noticeKind === \"connection\") note(\"\", \"\");\n"
    "  setState(\"idle\");\n"
    "  $(\"why\").textContent = why;\n"
    "  nameEdited = false;\n"
    "  cover(true);\n"
    "  nameIn.select();\n"
    "  nameIn.focus();\n"
    "}\n"
    "\n"
    "nameIn.addEventListener(\"input\", () => { nameEdited = true; });\n"
    "\n"
    "$(\"login\").onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  const n = nameIn.value.trim();\n"
    "  // what needs no server to say (its size limit only once it has told us)\n"
    "  if (!n) return askName(T.blank);\n"
    "  if (/[\\0-\\x1f\\x7f]/.test(n)) return askName(T.control);\n"
    "  if (limits?.max_name && bytes(n) > limits.max_name) return askName(T.tooLong(limits.max_name));\n"
    "  myName = n;\n"
    "  // typed before a reload and not sent yet: shown now, sent once joined\n"
    "  if (!log.querySelector(\":scope > .pending\")) for (const e of outbox) addPending(e);\n"
    "  save(\"sessionStorage\", NAME_KEY, n); // this tab's name, after a reload\n"
    "  save(\"localStorage\", NAME_KEY, n);   // a suggestion for new tabs\n"
    "  cover(false);\n"
    "  connect();\n"
    "  input.focus();\n"
    "};\n"
    "\n"
    "nameIn.value = load(\"sessionStorage\", NAME_KEY) || load(\"localStorage\", NAME_KEY) || \"\";\n"
    "setState(\"idle\");\n"
    "askName();\n";
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
/* --- end of embedded public/ --- */

static chat_server *server; /* for the signal handler */
static const char *scheme = "http"; /* https with --cert */
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
        log_line(&log_stdout, "Listening at %s://%s%s%s:%d", scheme, ipv6 ? "[" : "", address, ipv6 ? "]" : "", port);
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
                        log_line(&log_stdout, "Listening at %s://%s:%d", scheme, host, port);
                } else if (pass == 1 && v6 && sa->sa_family == AF_INET6) {
                    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
                    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) || IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
                    if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host))
                        log_line(&log_stdout, "Listening at %s://[%s]:%d", scheme, host, port);
                }
            }
        }
        freeifaddrs(list);
    }
    log_line(&log_stdout, "Listening at %s://localhost:%d", scheme, port);
}

static void usage(FILE *out, const char *argv0) {
    fprintf(out,
            "usage: %s [-p PORT] [-b ADDRESS] [-c MAX_CLIENTS] [-r RATE] [-R BYTES] [-a CONNECTIONS] [-j JOINS]\n"
            "          [-o ORIGIN]... [-s] [-H FILE [-F]] [-t PROXY] [-m mqtt://BROKER [-n NODE]] [-q] [-v]\n"
            "  -p PORT         port to listen on (default: $PORT, else 8080; 0 picks a free one)\n"
            "  -b ADDRESS      address to listen on (default: every interface, IPv6 and IPv4)\n"
            "  -c MAX_CLIENTS  chat clients at once (default %d)\n"
            "  -r RATE         frames (messages, pings) and HTTP requests per second one connection may\n"
            "                  send; more close it (default %d; 0: no limit)\n"
            "  -R BYTES        bytes per second read from one connection; past it, reading waits for\n"
            "                  the next second (default %d; 0: no limit)\n"
            "  -a CONNECTIONS  connections from one address (behind -t: the forwarded one; default:\n"
            "                  half of -c, from 16 to 32; 0: no limit)\n"
            "  -j JOINS        chat joins per minute from one address (default %d; 0: no limit)\n"
            "  -o ORIGIN       also accept WebSockets from pages of ORIGIN (e.g. https://example.com;\n"
            "                  repeatable; * for any). Default: only this server's own pages\n"
            "  -s              serve counters as JSON at /stats\n"
            "  -H FILE         keep the history in FILE across restarts and crashes (ids go on)\n"
            "  -F              with -H: fdatasync FILE after each write, to survive a power cut too\n"
            "  -t PROXY        the IP address of a reverse proxy whose X-Forwarded-For is logged\n"
            "  -m URL          one room across boards through an MQTT 3.1.1 broker (no TLS):\n"
            "                  mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX] (port 1883, prefix chat);\n"
            "                  a USER without :PASSWORD takes it from $CHAT_MQTT_PASSWORD\n"
            "  -n NODE         this board's name among them (default: host name and port)\n"
            "  -q              quiet: warnings and errors only (no join and leave lines)\n"
            "  -v              verbose: log every connection event\n"
            "  -h              this help\n",
            argv0, CHAT_MAX_CLIENTS, CHAT_MAX_RATE, CHAT_MAX_BYTE_RATE, CHAT_MAX_JOIN_RATE);
#ifdef CHAT_TLS_MBEDTLS
    fprintf(out, "  --cert FILE     serve https:// and wss:// (TLS 1.2) with this PEM certificate (chain)\n"
                 "  --key FILE      ... and its PEM private key\n");
#endif
}

#ifdef CHAT_TLS_MBEDTLS
/* --cert FILE and --key FILE (or --cert=FILE), taken out of argv before getopt sees it. */
static int take_tls_options(int *argc, char **argv, const char **cert, const char **key) {
    int i, n = 1;
    for (i = 1; i < *argc; i++) {
        const char **to = strncmp(argv[i], "--cert", 6) == 0 ? cert : strncmp(argv[i], "--key", 5) == 0 ? key : NULL;
        const char *eq = strchr(argv[i], '=');
        size_t name = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        if (strcmp(argv[i], "--") == 0) break;
        if (!to || name != (to == cert ? 6u : 5u)) {
            argv[n++] = argv[i];
            continue;
        }
        if (eq) *to = eq + 1;
        else if (i + 1 < *argc) *to = argv[++i];
        else {
            fprintf(stderr, "chat: %s needs a FILE\n", argv[i]);
            return -1;
        }
    }
    while (i < *argc) argv[n++] = argv[i++];
    argv[n] = NULL;
    *argc = n;
    return 0;
}
#endif

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

/* A password on the command line is seen by every user of the board (ps): with mqtt://USER@...
   (no ":PASSWORD"), it comes from $CHAT_MQTT_PASSWORD instead, percent-encoded into out.
   out stays empty when the URL is used as it is. Returns 0, or -1 after saying what is wrong. */
static int mqtt_password(const char *url, char *out, size_t cap) {
    const char *env = getenv("CHAT_MQTT_PASSWORD"), *rest, *at, *end;
    size_t n = 0;
    out[0] = '\0';
    if (strncmp(url, "mqtt://", 7) != 0) return 0; /* chat.h says what is wrong with it */
    rest = url + 7;
    end = rest + strcspn(rest, "/");
    for (at = end; at > rest && at[-1] != '@'; at--) {}
    if (at == rest || memchr(rest, ':', (size_t)(at - 1 - rest)) || !env) return 0;
    n = (size_t)snprintf(out, cap, "mqtt://%.*s:", (int)(at - 1 - rest), rest);
    for (; *env && n + 4 < cap; env++) {
        unsigned char c = (unsigned char)*env;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.~", c)) out[n++] = (char)c;
        else n += (size_t)snprintf(out + n, cap - n, "%%%02X", c);
    }
    if ((size_t)snprintf(out + n, cap - n, "%s", at - 1) >= cap - n) {
        fprintf(stderr, "chat: -m: the URL with $CHAT_MQTT_PASSWORD is too long\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    static const char *const reserved[] = {"server", NULL};
    static const struct {
        const char *path, *type, *body;
        size_t len;
    } assets[] = {
        {"/", "text/html; charset=UTF-8", public_index_html, sizeof public_index_html - 1},
        {"/public/index.html", "text/html; charset=UTF-8", public_index_html, sizeof public_index_html - 1},
        {"/public/style.css", "text/css; charset=UTF-8", public_style_css, sizeof public_style_css - 1},
        {"/public/app.js", "text/javascript; charset=UTF-8", public_app_js, sizeof public_app_js - 1},
    };
    static char proxy[INET6_ADDRSTRLEN], mqtt_url[2048];
    const char *address = NULL, *env_port = getenv("PORT"), *origins[33] = {NULL};
    chat_config config;
    struct sigaction sa;
    struct rlimit nofile;
    int port = 8080, opt, r, norigins = 0;
    size_t i;
#ifdef CHAT_TLS_MBEDTLS
    const char *cert_file = NULL, *key_file = NULL;
    chat_tls *tls = NULL;
#endif

    memset(&config, 0, sizeof config);
#ifdef CHAT_TLS_MBEDTLS
    if (take_tls_options(&argc, argv, &cert_file, &key_file) < 0) return 2;
    if (!cert_file != !key_file) {
        fprintf(stderr, "chat: --cert and --key go together\n");
        return 2;
    }
#endif
    if (env_port && *env_port && parse_int(env_port, 0, 65535, &port) < 0) {
        fprintf(stderr, "chat: PORT must be a number from 0 to 65535, not '%s'\n", env_port);
        return 2;
    }
    while ((opt = getopt(argc, argv, "p:b:c:r:R:a:j:o:sH:Ft:m:n:qvh")) != -1) {
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
        case 'r': case 'R': case 'a': case 'j': {
            int *limit = opt == 'r' ? &config.max_rate : opt == 'R' ? &config.max_byte_rate
                         : opt == 'a' ? &config.max_per_address : &config.max_join_rate;
            if (parse_limit(opt, optarg, limit) < 0) return 2;
            break;
        }
        case 'o':
            if (norigins + 1 >= (int)(sizeof origins / sizeof origins[0])) {
                fprintf(stderr, "chat: at most %d -o options\n", (int)(sizeof origins / sizeof origins[0]) - 1);
                return 2;
            }
            origins[norigins++] = optarg;
            config.origins = origins;
            break;
        case 's': config.stats_path = "/stats"; break;
        case 'H': config.history_file = optarg; break;
        case 'F': config.history_sync = 1; break;
        case 't':
            if (parse_address(optarg, proxy, sizeof proxy) < 0) {
                fprintf(stderr, "chat: -t needs the proxy's IPv4 or IPv6 address (e.g. 127.0.0.1), not '%s'\n", optarg);
                return 2;
            }
            config.trusted_proxy = proxy;
            break;
        case 'm': config.mqtt = optarg; break;
        case 'n': config.mqtt_node = optarg; break;
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
    if (config.history_sync && !config.history_file) {
        fprintf(stderr, "chat: -F needs -H FILE\n");
        return 2;
    }
    if (config.mqtt_node && !config.mqtt) {
        fprintf(stderr, "chat: -n needs -m mqtt://BROKER\n");
        return 2;
    }
    if (config.mqtt && mqtt_password(config.mqtt, mqtt_url, sizeof mqtt_url) < 0) return 2;
    if (config.mqtt && mqtt_url[0]) config.mqtt = mqtt_url;

    /* Each client is a descriptor: allow as many as the system lets this process have. */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &nofile);
    }

    config.reserved_names = reserved; /* nobody may speak as the system */
    config.on_join = on_join;
    config.on_leave = on_leave;
    config.on_log = on_log;
    config.log_level = verbosity == 0 ? CHAT_LOG_WARN : verbosity == 1 ? CHAT_LOG_INFO : CHAT_LOG_DEBUG;
#ifdef CHAT_TLS_MBEDTLS
    if (cert_file) {
        char why[256];
        tls = chat_tls_create(cert_file, key_file, why, sizeof why);
        if (!tls) {
            fprintf(stderr, "chat: %s\n", why);
            return 1;
        }
        config.transport = chat_tls_transport(tls);
        scheme = "https";
    }
#endif
    server = chat_server_create(&config);
    if (!server) {
        if (config.history_file) fprintf(stderr, "chat: cannot start (the history file, see above, or out of memory)\n");
        else fprintf(stderr, "chat: cannot create the server (out of memory or descriptors)\n");
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
#ifdef CHAT_TLS_MBEDTLS
        chat_tls_free(tls);
#endif
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
#ifdef CHAT_TLS_MBEDTLS
    chat_tls_free(tls);
#endif
    if (r != CHAT_OK) {
        fprintf(stderr, "chat: %s\n", chat_strerror(r));
        return 1;
    }
    return 0;
}
