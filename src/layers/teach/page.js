"use strict";
// Shared by page.html and page.zh.html: their TEXT holds what the page says (page.rs).
const WS_PATH = {{WS_PATH}};
// true on /inspect, the projector view (tinyws --inspect): every connection, no controls.
const PROJECTOR = {{PROJECTOR}};
// The server's --protocol list, in its order: the field starts with it (empty: none).
const WS_PROTOCOLS = {{WS_PROTOCOLS}};
const $ = (id) => document.getElementById(id);
let ws = null;
let started = 0;
// The current connection's inspector token: 128 random bits that only this page knows,
// sent in the WebSocket URL's query (the server ignores the query when matching paths).
let token = "";

function newToken() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
function eventBlock(text) {
  const pre = document.createElement("pre");
  pre.textContent = text;
  return pre;
}
// Asks the server for the events of the records `query` selects, again and again: each
// answer comes as soon as there is something new (long polling, tinyws's inspect.rs),
// and each takes up where the one before ended (`since`).
// `onRecords` returns false to stop. Resolves to why it stopped ("" if asked to).
async function poll(query, onRecords) {
  let since = 0;
  for (;;) {
    let answer;
    try {
      const r = await fetch("/.inspect?" + query + "&since=" + since, { cache: "no-store" });
      if (r.status === 503) {
        // The server answers a bounded number of polls at once; it says when to ask again.
        const wait = Math.min(Number(r.headers.get("Retry-After")) || 1, 30);
        await new Promise((done) => setTimeout(done, 1000 * wait));
        continue;
      }
      if (!r.ok) return (await r.text()).trim();
      answer = await r.json();
    } catch (e) {
      return TEXT.inspectLost;
    }
    // One answer holds at most 32 KiB: `next` is the last event it holds, and the rest
    // (`more`) comes with the next poll, at once.
    since = answer.next;
    if (onRecords(answer.records) === false) return "";
  }
}
// This page's own connection, as the server received and answered it.
function watchOwn(mine) {
  const box = $("inspect");
  box.textContent = "";
  poll("inspect_token=" + mine, (records) => {
    if (mine !== token) return false; // a newer connection took over the box
    let ended = false;
    for (const r of records) {
      for (const e of r.events) box.append(eventBlock(e));
      ended = ended || r.ended;
    }
    box.scrollTop = box.scrollHeight;
    return !ended;
  }).then((why) => { if (why && mine === token) box.append(eventBlock("-- " + why)); });
}
// The projector view: every connection, newest first, one collapsible block each.
function watchRoom() {
  const room = $("room");
  const blocks = new Map();
  poll("all", (records) => {
    // Oldest first, so that the newest block ends up on top.
    for (const r of records.slice().reverse()) {
      let b = blocks.get(r.id);
      if (!b) {
        b = document.createElement("details");
        b.open = true;
        b.id = "conn-" + r.id;
        b.append(document.createElement("summary"), document.createElement("div"));
        blocks.set(r.id, b);
        room.prepend(b);
      }
      b.firstChild.textContent = TEXT.connection(r.id, r.peer, r.ended, r.dropped);
      for (const e of r.events) b.lastChild.append(eventBlock(e));
    }
  }).then((why) => { if (why) room.prepend(eventBlock("-- " + why)); });
}

function stamp() {
  const d = new Date();
  const p = (n, w) => String(n).padStart(w || 2, "0");
  return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." + p(d.getMilliseconds(), 3);
}
function log(kind, text) {
  const line = document.createElement("div");
  const t = document.createElement("span");
  t.className = "t";
  t.textContent = stamp() + " ";
  const body = document.createElement("span");
  body.className = kind;
  body.textContent = text;
  line.append(t, body);
  $("log").append(line);
  $("log").scrollTop = $("log").scrollHeight;
}
function setState(name) {
  $("state").textContent = name;
  $("state").className = name.toLowerCase();
  const open = name === "OPEN";
  $("connect").disabled = name !== "CLOSED";
  $("protocol").disabled = name !== "CLOSED";
  $("disconnect").disabled = !open;
  $("msg").disabled = !open;
  $("send").disabled = !open;
}
function connect() {
  const url = $("url").value.trim();
  // Subprotocols to offer, in this order (RFC 6455 §1.9); the server answers one or none.
  const offer = $("protocol").value.split(",").map((p) => p.trim()).filter((p) => p);
  log("ev", TEXT.connecting(url, offer.join(", ")));
  setState("CONNECTING");
  started = performance.now();
  token = newToken();
  const mine = token;
  try {
    ws = new WebSocket(url + (url.includes("?") ? "&" : "?") + "inspect_token=" + token, offer);
  } catch (e) {
    log("err", TEXT.cannotConnect(e.message));
    setState("CLOSED");
    return;
  }
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    const ms = Math.round(performance.now() - started);
    setState("OPEN");
    log("ev", TEXT.open(ms, ws.protocol, ws.extensions));
    $("msg").focus();
    watchOwn(mine);
  };
  ws.onmessage = (e) => {
    if (typeof e.data === "string") {
      log("in", "← " + e.data);
    } else {
      const bytes = Array.from(new Uint8Array(e.data), (b) => b.toString(16).padStart(2, "0"));
      log("in", TEXT.binary(bytes.length, bytes.slice(0, 32).join(" ")));
    }
  };
  ws.onerror = () => {
    // The browser hides the reason on purpose (a page must not probe other servers).
    log("err", TEXT.error);
  };
  ws.onclose = (e) => {
    setState("CLOSED");
    log(e.wasClean ? "ev" : "err", TEXT.closed(e.code, TEXT.codes[e.code] || TEXT.appCode,
        JSON.stringify(e.reason), e.wasClean));
    ws = null;
  };
}
function send() {
  const text = $("msg").value;
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  ws.send(text);
  log("out", "→ " + text);
  $("msg").value = "";
}
function disconnect() {
  if (!ws) return;
  setState("CLOSING");
  log("ev", TEXT.closing);
  ws.close(1000, "bye");
}

// The language switch: its links set `?lang=`, which the server obeys over the
// browser's Accept-Language (page.rs), and a click remembers the choice in this browser.
// A later visit without a valid `?lang=` goes on to the remembered language if the
// server picked the other one: once, since the address it goes to has `?lang=`.
const LANG_KEY = "tinyws.lang";
const langIn = (search) => new URLSearchParams(search).get("lang");
const isLang = (lang) => lang === "en" || lang === "zh";
for (const a of document.querySelectorAll(".lang a")) {
  a.addEventListener("click", () => {
    try { localStorage.setItem(LANG_KEY, langIn(a.search)); } catch (e) { /* storage off */ }
  });
}
function toRememberedLanguage() {
  let kept = null;
  try { kept = localStorage.getItem(LANG_KEY); } catch (e) { /* storage off: no memory */ }
  const shown = document.documentElement.lang === "en" ? "en" : "zh";
  if (isLang(langIn(location.search)) || !isLang(kept) || kept === shown) return false;
  const url = new URL(location.href);
  url.searchParams.set("lang", kept);
  document.body.hidden = true; // not seen in the wrong language while the right one loads
  location.replace(url.href); // replace: Back does not come here to be sent on again
  return true;
}
const leaving = toRememberedLanguage();

const scheme = location.protocol === "https:" ? "wss://" : "ws://";
$("url").value = scheme + location.host + WS_PATH;
$("protocol").value = WS_PROTOCOLS;
$("target").textContent = $("url").value;
$("origin").textContent = location.origin;
$("connect").onclick = connect;
$("disconnect").onclick = disconnect;
$("send").onclick = send;
$("msg").addEventListener("keydown", (e) => { if (e.key === "Enter") send(); });
$("url").addEventListener("keydown", (e) => { if (e.key === "Enter" && !ws) connect(); });
if (PROJECTOR && !leaving) {
  document.body.classList.add("projector");
  watchRoom();
}
