//! # Uploading files over one WebSocket, with progress on both sides
//!
//! What it shows: a small protocol of your own on top of WebSocket messages. Text
//! messages carry commands, binary messages carry the file's bytes, and the server reports
//! progress back after every chunk. Several files go one after another over the same
//! connection. It also shows the checks every upload needs: size limits (per file and for
//! the whole folder), and a file name that cannot escape the upload folder on any OS
//! (`../../etc/passwd`, `C:notes.txt`, `CON`).
//!
//! Run it:     cargo run --example upload              (WebSocket on 8080, page on 8081)
//!             cargo run --example upload -- 9000 /tmp/uploads 1MiB 20MiB
//!             (port, folder, per-file limit, total limit; defaults 8080, ./uploads,
//!             10MiB, 100MiB)
//! Then open:  http://localhost:8081/ , pick several files, press Upload.
//! Look for:   a progress bar per file in the browser, and the same progress printed by
//!             the server; the files appear in the folder. Try a file over the limit, or
//!             rename one to `..`: the server refuses it and says why.
//!
//! The protocol, one file at a time:
//!   client: text   `file <size> <name>`       server: text `ready <name>`
//!   client: binary chunks (at most 32 KiB)    server: text `progress <name> <got> <size>`
//!                                             server: text `done <name> <size>` (last chunk)
//!   on any problem                            server: text `error <why>`, file discarded
//!
//! A file is written under a temporary name (`.<name>.part`, which no upload can have:
//! names never start with a dot) and renamed to its own name only once it is complete, so
//! a server stopped mid-upload (Ctrl-C, a power cut) never leaves a truncated file that
//! looks finished; the leftover temporary files are removed when the server starts again.
//!
//! The page is served on the next port by a few lines of `std`, because it is filled in
//! from this file (the port, the size limit); tinyws itself serves files only from a
//! directory (`Config::static_dir`, `--static`). It is another origin, so the WebSocket
//! server allows exactly that origin (for `localhost` and `127.0.0.1`); from other
//! machines, set UPLOAD_ORIGIN to the page's origin, e.g.
//! `UPLOAD_ORIGIN=http://192.168.1.10:8081`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tinyws::{Client, Config, Handler, Message, Server, parse_size};

/// One chunk fits well under tinyws's default 64 KiB message limit.
const CHUNK: usize = 32 * 1024;

struct Upload {
    dir: PathBuf,
    max_file_size: u64,
    /// What the folder may hold in all, so uploads cannot fill the disk.
    max_total_size: u64,
    /// The file each connection is sending right now, by client id.
    current: Mutex<HashMap<u64, Incoming>>,
}

struct Incoming {
    name: String,
    size: u64,
    got: u64,
    /// Where the file goes once complete.
    path: PathBuf,
    /// Where it is written meanwhile.
    part: PathBuf,
    file: File,
}

/// The temporary name of an upload in progress: hidden, so never an upload's own name.
fn part_name(name: &str) -> String {
    format!(".{name}.part")
}

/// Removes what uploads cut off by a stopped server left behind.
fn remove_stale_parts(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".part") {
            println!("removing {name}: an upload the server was stopped in the middle of");
            fs::remove_file(dir.join(&*name))?;
        }
    }
    Ok(())
}

/// Names Windows gives to devices, in any directory and with any extension (`NUL.txt`
/// is the null device too): writing to one does not make a file.
const WINDOWS_DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Accepts a plain file name that is the same harmless name on Linux, macOS and
/// Windows, and refuses everything else (it never "cleans" a name). An allow-list, as
/// docs/security.md prescribes: ASCII letters, digits, `.`, `_`, `-` and spaces, 1 to
/// 100 bytes, starting with a letter or digit (so no `.`, `..` or hidden file, and no
/// option-like `-x`), not ending with a dot or a space (Windows drops them, so
/// `notes.txt.` would be `notes.txt`), and not a Windows device name (`CON`, `NUL.txt`,
/// `COM1`). That leaves out every separator (`/`, `\`), drive letters and NTFS streams
/// (`C:notes.txt`, `name:stream`: no `:`), and control characters.
fn safe_name(name: &str) -> Result<&str, String> {
    if name.is_empty() || name.len() > 100 {
        return Err("the name must be 1 to 100 bytes".into());
    }
    if name.contains(['/', '\\']) {
        return Err(format!(
            "{name:?} is a path; only plain file names are accepted"
        ));
    }
    if name.contains(':') {
        return Err(format!(
            "{name:?} has a ':', which on Windows is a drive letter (C:notes.txt) or a hidden stream (name:stream)"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' ')))
    {
        return Err(format!(
            "{name:?} has {bad:?}; names may only use letters, digits, '.', '_', '-' and spaces"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "{name:?} must start with a letter or digit (not a hidden file, . or .., or an option)"
        ));
    }
    if name.ends_with(['.', ' ']) {
        return Err(format!(
            "{name:?} ends with a dot or a space, which Windows silently removes"
        ));
    }
    let base = name.split('.').next().unwrap_or(name).trim_end();
    if WINDOWS_DEVICES.iter().any(|d| base.eq_ignore_ascii_case(d)) {
        return Err(format!(
            "{name:?} is a device name on Windows ({}), not a file",
            base.to_ascii_uppercase()
        ));
    }
    Ok(name)
}

/// Bytes stored in `dir` (finished files and parts).
fn stored_bytes(dir: &std::path::Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

impl Upload {
    fn start(&self, client: &Client, args: &str) -> Result<String, String> {
        let (size, name) = args.split_once(' ').ok_or("expected: file <size> <name>")?;
        let size: u64 = size.parse().map_err(|_| format!("bad size {size:?}"))?;
        let name = safe_name(name)?;
        if size > self.max_file_size {
            return Err(format!(
                "{name} is {size} bytes; the limit is {} bytes",
                self.max_file_size
            ));
        }
        let path = self.dir.join(name);
        let part = self.dir.join(part_name(name));
        // Under the lock: two connections may not upload the same name at once.
        let mut all = self.lock();
        // Never overwrite what someone else uploaded.
        if path.exists() {
            return Err(format!("cannot create {name}: it already exists"));
        }
        // Windows and macOS compare names without case: A.txt is a.txt there.
        if all.values().any(|up| up.name.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "cannot create {name}: another connection is uploading it"
            ));
        }
        // Files on disk (whole or in part) plus what the others have announced.
        let pending: u64 = all.values().map(|up| up.size - up.got).sum();
        if stored_bytes(&self.dir) + pending + size > self.max_total_size {
            return Err(format!(
                "{name} ({size} bytes) does not fit: the upload folder may hold {} bytes in all; delete files or raise the total limit",
                self.max_total_size
            ));
        }
        // create_new (O_EXCL): not even through a symlink planted under the part's name.
        let file = File::create_new(&part).map_err(|e| format!("cannot create {name}: {e}"))?;
        println!("#{} {name}: receiving {size} bytes", client.id());
        let incoming = Incoming {
            name: name.to_string(),
            size,
            got: 0,
            path,
            part,
            file,
        };
        let done = size == 0;
        all.insert(client.id(), incoming);
        drop(all);
        if done {
            return self.chunk(client, &[]);
        }
        Ok(format!("ready {name}"))
    }

    fn chunk(&self, client: &Client, bytes: &[u8]) -> Result<String, String> {
        let mut all = self.lock();
        let Some(up) = all.get_mut(&client.id()) else {
            return Err("binary data before a `file <size> <name>` command".into());
        };
        let result = if up.got + bytes.len() as u64 > up.size {
            Err(format!(
                "{} is longer than the {} bytes announced",
                up.name, up.size
            ))
        } else {
            up.file
                .write_all(bytes)
                .map_err(|e| format!("writing {} failed: {e}", up.name))
        };
        if let Err(e) = result {
            let up = all.remove(&client.id());
            if let Some(up) = up {
                let _ = fs::remove_file(&up.part);
            }
            return Err(e);
        }
        up.got += bytes.len() as u64;
        let pct = (up.got * 100).checked_div(up.size).unwrap_or(100);
        println!(
            "#{} {}: {}/{} bytes ({pct}%)",
            client.id(),
            up.name,
            up.got,
            up.size
        );
        if up.got < up.size {
            return Ok(format!("progress {} {} {}", up.name, up.got, up.size));
        }
        let up = all.remove(&client.id()).ok_or("lost the upload")?;
        // Complete: on disk first, closed (Windows renames no open file), then under its
        // own name.
        let Incoming {
            name,
            size,
            path,
            part,
            file,
            ..
        } = up;
        let synced = file.sync_all();
        drop(file);
        if let Err(e) = synced.and_then(|()| fs::rename(&part, &path)) {
            let _ = fs::remove_file(&part);
            return Err(format!("saving {name} failed: {e}"));
        }
        println!("#{} {name}: saved as {}", client.id(), path.display());
        Ok(format!("done {name} {size}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Incoming>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Handler for Upload {
    fn on_message(&self, client: &Client, message: Message) -> Option<Message> {
        let result = match &message {
            Message::Text(t) => match t.as_str().strip_prefix("file ") {
                Some(args) if !self.lock().contains_key(&client.id()) => self.start(client, args),
                Some(_) => Err("a file is already being sent on this connection".into()),
                None => Err("unknown command; expected: file <size> <name>".into()),
            },
            Message::Binary(b) => self.chunk(client, b),
            _ => return None,
        };
        let reply = result.unwrap_or_else(|e| {
            println!("#{} refused: {e}", client.id());
            format!("error {e}")
        });
        Some(Message::text(reply))
    }

    fn on_close(&self, client: &Client) {
        // A half-sent file is not a file: remove it.
        if let Some(up) = self.lock().remove(&client.id()) {
            println!(
                "#{} {}: connection closed after {} of {} bytes; removed",
                client.id(),
                up.name,
                up.got,
                up.size
            );
            let _ = fs::remove_file(&up.part);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().unwrap_or("8080".into()).parse()?;
    let dir = PathBuf::from(args.next().unwrap_or("uploads".into()));
    let max_file_size = parse_size(&args.next().unwrap_or("10MiB".into()))? as u64;
    let max_total_size = parse_size(&args.next().unwrap_or("100MiB".into()))? as u64;
    fs::create_dir_all(&dir)?;
    remove_stale_parts(&dir)?;

    // The page first, on the next port (or any free port when the WebSocket one is 0).
    let page = TcpListener::bind(("0.0.0.0", if port == 0 { 0 } else { port + 1 }))?;
    let page_port = page.local_addr()?.port();
    let server_config = Config::default().port(port);
    let mut origins = vec![
        format!("http://localhost:{page_port}"),
        format!("http://127.0.0.1:{page_port}"),
    ];
    origins.extend(std::env::var("UPLOAD_ORIGIN").ok());
    let handler = Upload {
        dir: dir.clone(),
        max_file_size,
        max_total_size,
        current: Mutex::new(HashMap::new()),
    };
    let server = Server::bind(server_config.allow_origins(origins), handler)?;
    let ws_port = server.local_addr().port();
    println!("upload server on ws://{}/", server.local_addr());
    println!(
        "page on http://localhost:{page_port}/ ; files go to {}",
        dir.display()
    );
    std::thread::spawn(move || serve_page(page, ws_port, max_file_size));
    server.run();
    Ok(())
}

/// Answers every request with the upload page: one request per connection, bounded.
fn serve_page(listener: TcpListener, ws_port: u16, max: u64) {
    let html = PAGE
        .replace("{{WS_PORT}}", &ws_port.to_string())
        .replace("{{MAX}}", &max.to_string())
        .replace("{{CHUNK}}", &CHUNK.to_string());
    for stream in listener.incoming().flatten() {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let mut stream = stream;
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf); // the request; every path gets the page
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
            html.len()
        );
    }
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>tinyws upload</title>
<style>
 body { font: 15px system-ui, sans-serif; max-width: 40rem; margin: 1rem auto; }
 .file { margin: .4rem 0; } progress { width: 100%; } .err { color: #a00; }
</style></head>
<body>
<h1>Upload files over one WebSocket</h1>
<p><input type="file" id="files" multiple> <button id="go">Upload</button></p>
<p id="status">not connected</p>
<div id="list"></div>
<script>
"use strict";
const MAX = {{MAX}}, CHUNK = {{CHUNK}};
const ws = new WebSocket("ws://" + location.hostname + ":{{WS_PORT}}/");
ws.binaryType = "arraybuffer";
const status = document.getElementById("status");
let waiting = null; // resolves with the server's next text message
ws.onopen = () => { status.textContent = "connected"; };
ws.onclose = (e) => { status.textContent = "closed: code " + e.code + " " + e.reason; };
ws.onmessage = (e) => { if (waiting) { const w = waiting; waiting = null; w(e.data); } };
const next = () => new Promise((resolve) => { waiting = resolve; });

function row(name) {
  const div = document.createElement("div");
  div.className = "file";
  div.innerHTML = "<div></div><progress max=1 value=0></progress>";
  div.firstChild.textContent = name;
  document.getElementById("list").append(div);
  return div;
}

async function upload(file) {
  const div = row(file.name + " (" + file.size + " bytes)");
  const bar = div.querySelector("progress");
  if (file.size > MAX) {
    div.firstChild.textContent += ": larger than the server's limit of " + MAX + " bytes";
    div.className += " err";
    return;
  }
  ws.send("file " + file.size + " " + file.name);
  let answer = await next();
  for (let at = 0; answer.startsWith("ready ") || answer.startsWith("progress "); at += CHUNK) {
    ws.send(await file.slice(at, at + CHUNK).arrayBuffer());
    answer = await next();
    const m = answer.match(/^progress .* (\d+) (\d+)$/);
    if (m) bar.value = Number(m[1]) / Number(m[2]);
  }
  if (answer.startsWith("done ")) {
    bar.value = 1;
    div.firstChild.textContent += ": saved";
  } else {
    div.firstChild.textContent += ": " + answer;
    div.className += " err";
  }
}

document.getElementById("go").onclick = async () => {
  for (const f of document.getElementById("files").files) await upload(f);
};
</script>
</body></html>
"#;
