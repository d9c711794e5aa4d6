// The frame lab (tinyws's framelab.rs): build frames byte by byte, send them inside a
// plain HTTP request (a page cannot put bytes of its own on a WebSocket: the browser
// builds and masks every frame), and show what the server would answer. Words: TEXT.lab.
const OPCODES = ["continuation", "text", "binary"];
OPCODES[8] = "close"; OPCODES[9] = "ping"; OPCODES[10] = "pong";
const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
// "81 85 37fa" → its bytes; null unless two hex digits per byte (spaces ignored).
function bytesOfHex(text) {
  const digits = text.replace(/\s+/g, "");
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) return null;
  return Uint8Array.from(digits.match(/../g) || [], (p) => parseInt(p, 16));
}
// The frame the fields describe (RFC 6455 §5.2), or why there is none.
function labFrame() {
  const text = $("lab-payload").value;
  const payload = $("lab-as").value === "hex" ? bytesOfHex(text) : new TextEncoder().encode(text);
  const key = bytesOfHex($("lab-key").value);
  const masked = $("lab-mask").checked;
  if (!payload) return { error: TEXT.lab.notHex };
  if (masked && (!key || key.length !== 4)) return { error: TEXT.lab.badKey };
  const bit = (id, b) => ($(id).checked ? b : 0);
  const first = bit("lab-fin", 0x80) | bit("lab-rsv1", 0x40) | bit("lab-rsv2", 0x20) |
      bit("lab-rsv3", 0x10) | Number($("lab-opcode").value);
  // The length in 7 bits; or 126 and 16 bits; or 127 and 64 bits (network byte order).
  const n = payload.length;
  const length = n < 126 ? [n] : n < 65536 ? [126, n >> 8, n & 255]
      : [127, 0, 0, 0, 0, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255];
  length[0] |= masked ? 0x80 : 0;
  // §5.3: payload byte i XOR key byte i mod 4.
  const body = masked ? payload.map((b, i) => b ^ key[i % 4]) : payload;
  return { bytes: Uint8Array.from([first, ...length, ...(masked ? key : []), ...body]) };
}
// Each frame in `bytes`, decoded as the trace and `client --raw` show them.
function describe(bytes) {
  const lines = [];
  let at = 0;
  while (at < bytes.length) {
    const b1 = bytes[at + 1];
    const size = b1 === undefined ? 2 : 2 + ({ 126: 2, 127: 8 }[b1 & 127] || 0) + (b1 & 128 ? 4 : 0);
    if (at + size > bytes.length) return lines.concat(TEXT.lab.short(at + size - bytes.length));
    let len = b1 & 127;
    if (len >= 126) len = bytes.slice(at + 2, at + (len === 126 ? 4 : 10)).reduce((n, b) => n * 256 + b, 0);
    const op = bytes[at] & 15;
    lines.push("frame: FIN=" + (bytes[at] >> 7) + " RSV=" + ((bytes[at] >> 4) & 7).toString(2).padStart(3, "0") +
        " opcode=0x" + op.toString(16) + " (" + (OPCODES[op] || "reserved") + ") MASK=" + (b1 >> 7) +
        " length=" + len + " (" + TEXT.lab.lengthIn((b1 & 127) < 126 ? 7 : (b1 & 127) === 126 ? 16 : 64) + ")",
        "  header   " + hexOf(bytes.slice(at, at + size)));
    if (at + size + len > bytes.length) return lines.concat(TEXT.lab.short(at + size + len - bytes.length));
    const key = b1 & 128 ? bytes.slice(at + size - 4, at + size) : null;
    const payload = bytes.slice(at + size, at + size + len).map((b, i) => (key ? b ^ key[i % 4] : b));
    if (len) lines.push("  payload  " + hexOf(payload.slice(0, 32)) + (len > 32 ? " …" : "") + (key ? TEXT.lab.unmasked : ""));
    if (op === 8 && len >= 2) {
      const code = payload[0] * 256 + payload[1];
      lines.push("  close    " + code + " (" + (TEXT.codes[code] || TEXT.appCode) + ") " +
          JSON.stringify(new TextDecoder().decode(payload.slice(2))));
    } else if (op < 2 || op === 9 || op === 10) {
      lines.push("  text     " + JSON.stringify(new TextDecoder().decode(payload)));
    }
    at += size + len;
  }
  return lines;
}
function labShow(id, bytes) {
  $(id).textContent = bytes ? hexOf(bytes) + "\n" + describe(bytes).join("\n") : TEXT.lab.notHex;
}
function labFields() {
  const f = labFrame();
  if (f.error) $("lab-frame").textContent = f.error;
  else labShow("lab-frame", f.bytes);
}
function labAdd() {
  const f = labFrame();
  if (!f.bytes) return;
  $("lab-hex").value = ($("lab-hex").value.trim() + "\n" + hexOf(f.bytes)).trim();
  labShow("lab-bytes", bytesOfHex($("lab-hex").value));
}
// The verdict (framelab.rs's JSON), in words, and the bytes back, decoded.
function labVerdict(a) {
  const what = TEXT.codes[a.code] || a.name;
  const lines = [a.end === "open" ? TEXT.lab.open(a.needs)
    : a.end === "closed" ? TEXT.lab.closed(a.code, what)
    : TEXT.lab.failed(a.code, what, JSON.stringify(a.reason), a.section)];
  const reply = bytesOfHex(a.reply);
  lines.push(reply.length ? TEXT.lab.reply(reply.length) : TEXT.lab.nothing);
  return lines.concat(describe(reply)).join("\n");
}
async function labSend() {
  const digits = $("lab-hex").value.replace(/\s+/g, "");
  $("lab-answer").textContent = TEXT.lab.sending(digits.length / 2);
  try {
    const r = await fetch("/.framelab?hex=" + encodeURIComponent(digits), { cache: "no-store" });
    $("lab-answer").textContent = r.ok ? labVerdict(await r.json())
      : TEXT.lab.refused(r.status, (await r.text()).trim());
  } catch (e) {
    $("lab-answer").textContent = TEXT.lab.lost;
  }
}
for (const id of ["lab-fin", "lab-rsv1", "lab-rsv2", "lab-rsv3", "lab-opcode", "lab-mask", "lab-key", "lab-as", "lab-payload"]) {
  $(id).addEventListener("input", labFields);
  $(id).addEventListener("change", labFields);
}
$("lab-hex").addEventListener("input", () => labShow("lab-bytes", bytesOfHex($("lab-hex").value)));
$("lab-add").onclick = labAdd;
$("lab-clear").onclick = () => { $("lab-hex").value = ""; $("lab-bytes").textContent = ""; };
$("lab-send").onclick = labSend;
labFields();
