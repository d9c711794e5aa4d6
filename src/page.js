"use strict";
// Shared by page.html and page.zh.html: their TEXT holds what the page says (page.rs).
const WS_PATH = {{WS_PATH}};
const $ = (id) => document.getElementById(id);
let ws = null;
let started = 0;

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
  $("disconnect").disabled = !open;
  $("msg").disabled = !open;
  $("send").disabled = !open;
}
function connect() {
  const url = $("url").value.trim();
  log("ev", TEXT.connecting(url));
  setState("CONNECTING");
  started = performance.now();
  try {
    ws = new WebSocket(url);
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

const scheme = location.protocol === "https:" ? "wss://" : "ws://";
$("url").value = scheme + location.host + WS_PATH;
$("target").textContent = $("url").value;
$("origin").textContent = location.origin;
$("connect").onclick = connect;
$("disconnect").onclick = disconnect;
$("send").onclick = send;
$("msg").addEventListener("keydown", (e) => { if (e.key === "Enter") send(); });
$("url").addEventListener("keydown", (e) => { if (e.key === "Enter" && !ws) connect(); });
