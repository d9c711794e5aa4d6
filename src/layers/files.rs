//! Static files from one directory, on the WebSocket port (`Config::static_dir`, `--static DIR`).
//!
//! A plain `GET` or `HEAD` that is not an upgrade can be answered from DIR: the teacher's
//! own lesson page or a device's dashboard then comes from the server's own origin, so
//! its `new WebSocket(...)` passes the origin check (RFC 6455 §10.2) without any flag.
//!
//! Self-contained on purpose: it knows nothing about connections or the rest of the
//! request, only a method, a request path and an `If-Modified-Since` value.
//!
//! ```text
//! let files = Files::new(dir)?;                       // once, at start
//! match files.answer(method, path, if_modified_since) {
//!     Answer::Fallback => { /* serve the built-in page */ }
//!     Answer::Reply { status, head, body } => {
//!         out.write_all(&head)?;
//!         if let Some(body) = body { body.send(&mut out)?; }
//!         /* close */
//!     }
//! }
//! ```
//!
//! Nothing outside DIR is ever served, and a refusal looks exactly like a file that is
//! not there (`404`, the same bytes), so a client learns nothing about the layout. Two
//! independent layers: the request path is checked segment by segment before it touches
//! the file system (no `..`, no hidden names, no encoded separators, NUL, drive letters),
//! and the file found is canonicalized (symlinks resolved) and must still lie under the
//! canonical DIR, through no hidden name. That file is then opened beneath DIR by the same
//! names, following no symlink (beneath.rs), so renaming things between the check and the
//! open cannot lead outside.
//!
//! Memory per request is bounded whatever the file size: [`Body::send`] copies the file
//! in chunks of [`CHUNK`] bytes.
//!
//! Choices: `/sub` (a directory named without its slash) is a `301` to `/sub/` when
//! `sub/index.html` exists, else `404`: relative links in that page need the slash, and
//! there are no directory listings. Only `/` without `index.html` falls back to the
//! built-in page. Every answer closes the connection (`Connection: close`), as all of
//! tinyws's HTTP answers do; `Cache-Control: no-cache` makes a browser revalidate each
//! load (a 304 when nothing changed) so an edited page shows up on reload. No ranges, no
//! ETags, no directory listings, no compression.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use log::info;

use crate::client::head::values;
use crate::client::response::{
    DRAIN_FOR, DRAIN_MAX, Plain, Response, respond_and_close, shut_and_drain,
};
use crate::client::transport::Transport;
use crate::guard::escape;
use crate::guard::floor::write_failure;
use crate::layers::beneath;
use crate::layers::teach::trace;

/// The copy buffer of [`Body::send`]: the most memory one file answer holds, whatever
/// the file's size. 16 KiB is a TLS record's worth of plaintext (RFC 8446 §5.1) and
/// more than a socket's write usually takes at once.
pub(crate) const CHUNK: usize = 16 * 1024;

/// The body of every 404, whatever the reason: a refused path and a missing file must
/// not be told apart.
const NOT_FOUND_BODY: &str = "Not found.\n";
const NOT_ALLOWED_BODY: &str = "Only GET and HEAD are served here.\n";

/// Serves the files under one directory.
#[derive(Debug)]
pub(crate) struct Files {
    /// Canonical (absolute, no symlinks): whatever is served must canonicalize under it.
    root: PathBuf,
}

/// What to answer a request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Write `head`, then, when there is one, stream `body` with [`Body::send`]; then
    /// close (every tinyws HTTP answer closes; `head` says `Connection: close`).
    ///
    /// `head` is the status line and the header fields through the blank line; for a
    /// 404 or 405 to a GET it also holds their one-line text body. `status` is for the
    /// log: 200, 301, 304, 404 or 405.
    Reply {
        status: u16,
        head: Vec<u8>,
        body: Option<Body>,
    },
    /// `GET /` or `HEAD /` and DIR has no `index.html`: serve the built-in page instead.
    Fallback,
}

/// An open file and how many bytes of it the head announced in `Content-Length`.
#[derive(Debug)]
pub(crate) struct Body {
    file: File,
    len: u64,
}

impl Body {
    /// Copies exactly the announced length to `out`, [`CHUNK`] bytes at most per write
    /// (the memory bound), and returns how many bytes went out. A file that grew since
    /// the head was made is cut at the announced length (more would break the framing,
    /// RFC 9112 §6.3); one that shrank ends in an `UnexpectedEof` error: close the
    /// connection, and the client sees a body shorter than `Content-Length`, which it
    /// must treat as incomplete (RFC 9112 §8). Each write blocks at most as long as
    /// `out` lets it (the write floor: the write timeout per 16 KiB the client takes).
    pub(crate) fn send(mut self, out: &mut impl Write) -> io::Result<u64> {
        let size = usize::try_from(self.len).map_or(CHUNK, |len| len.min(CHUNK));
        // On the heap: a connection thread's stack is small and its pages stay resident
        // (stack.rs).
        let mut buf = vec![0u8; size];
        let mut sent = 0u64;
        while sent < self.len {
            let want = usize::try_from(self.len - sent).map_or(size, |left| left.min(size));
            let n = match self.file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the file became shorter while it was sent ({sent} of {} bytes)",
                            self.len
                        ),
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n])?;
            sent += n as u64;
        }
        out.flush()?;
        Ok(sent)
    }
}

/// Where a request path leads.
enum Found {
    /// The file, and the name that decides its type: the last name of the request path
    /// (not of a symlink's target, as other servers do), or `index.html`.
    File(File, Metadata, &'static str),
    /// A directory named without its trailing slash: 301 to this path with the slash.
    Redirect(String),
    /// `/` and no `index.html`.
    Fallback,
}

impl Files {
    /// Serves `dir`. Fails, saying so, if it does not exist or is not a directory.
    pub(crate) fn new(dir: &Path) -> io::Result<Files> {
        let refused = |kind, why: String| {
            io::Error::new(kind, format!("`static_dir` {}{why}", dir.display()))
        };
        let serve = "give the directory whose files to serve";
        let root =
            fs::canonicalize(dir).map_err(|e| refused(e.kind(), format!(": {e}; {serve}")))?;
        if !root.is_dir() {
            let why = format!(" is not a directory; {serve}");
            return Err(refused(io::ErrorKind::InvalidInput, why));
        }
        // Readable: a directory this process may not list is usually one it may not
        // read files from either, and every request would get a 404 without a word.
        if let Err(e) = fs::read_dir(&root) {
            let why = format!(" cannot be read: {e}; give a directory this user may read");
            return Err(refused(e.kind(), why));
        }
        Ok(Files { root })
    }

    /// The canonical directory served.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The answer to `method` on `target`: the request target's path as it came
    /// (still percent-encoded; a query or fragment after it is ignored), or the path
    /// of an absolute-form target. `if_modified_since` is that header's value if the
    /// request has exactly one; pass `None` when the request also has `If-None-Match`
    /// (RFC 9110 §13.1.3: then If-Modified-Since must be ignored).
    pub(crate) fn answer(
        &self,
        method: &str,
        target: &str,
        if_modified_since: Option<&str>,
    ) -> Answer {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.answer_at(method, target, if_modified_since, now)
    }

    /// [`answer`](Self::answer) at `now` (seconds since the Unix epoch), for tests.
    fn answer_at(
        &self,
        method: &str,
        target: &str,
        if_modified_since: Option<&str>,
        now: u64,
    ) -> Answer {
        // RFC 9110 §9.1: method names are case-sensitive; §9.3.1/§9.3.2: GET and HEAD
        // are all a file server needs.
        let head_only = match method {
            "GET" => false,
            "HEAD" => true,
            _ => {
                return text_reply(405, NOT_ALLOWED_BODY, "Allow: GET, HEAD\r\n", false, now);
            }
        };
        let (file, meta, ty) = match self.find(target) {
            Some(Found::File(file, meta, ty)) => (file, meta, ty),
            Some(Found::Fallback) => return Answer::Fallback,
            Some(Found::Redirect(location)) => {
                // RFC 9110 §15.4.2. Relative links in `sub/index.html` need the slash.
                let fields = format!("Location: {location}\r\nContent-Length: 0\r\n");
                return reply(301, &fields, None, None, now);
            }
            None => return not_found(head_only, now),
        };
        let len = meta.len();
        // RFC 9110 §8.8.2.1: a Last-Modified later than the answer's Date is replaced
        // by the Date. Whole seconds: that is all an HTTP-date can say.
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs().min(now));
        let (status, mut fields, body);
        // RFC 9110 §13.1.3: If-Modified-Since applies to GET and HEAD, is ignored when
        // it is not a valid HTTP-date or the file has no modification time, and the
        // comparison is at one-second resolution. A date in the future still compares.
        let unchanged = match (
            modified,
            if_modified_since.and_then(|v| parse_http_date(v, now)),
        ) {
            (Some(m), Some(since)) => m <= since,
            _ => false,
        };
        if unchanged {
            // RFC 9110 §15.4.5: no content, and of the representation's metadata only
            // what helps a cache (Last-Modified, as there is no ETag).
            (status, fields, body) = (304, String::new(), None);
        } else {
            status = 200;
            fields = format!("Content-Type: {ty}\r\nContent-Length: {len}\r\n");
            // RFC 9110 §9.3.2: HEAD gets the same header fields, without the content.
            body = (!head_only).then_some(Body { file, len });
        }
        if let Some(m) = modified {
            fields.push_str(&format!("Last-Modified: {}\r\n", imf_fixdate(m)));
        }
        // The teacher edits the page during the lesson: without this a browser may
        // reuse its copy for a while by heuristic freshness (RFC 9111 §4.2.2) instead
        // of asking again; with it, every load revalidates and most get a small 304.
        fields.push_str("Cache-Control: no-cache\r\n");
        reply(status, &fields, None, body, now)
    }

    /// The file (or redirect) a request path leads to; `None` for "not found", which
    /// includes every refused path.
    fn find(&self, target: &str) -> Option<Found> {
        let path = target_path(target);
        let names = segments(path)?;
        let wants_dir = path.ends_with('/');
        let mut candidate = self.root.clone();
        candidate.extend(&names);
        let real = self.inside(&candidate)?;
        let meta = fs::metadata(&real).ok()?;
        if meta.is_dir() {
            let index = self.inside(&real.join("index.html"));
            if !wants_dir {
                // `/sub` names a directory: redirect to `/sub/` when there is a page
                // to show there, else 404 (a listing would show the layout). Only a
                // path made of visible ASCII goes into the Location header, and it
                // cannot start with `//` (empty segments are refused), so it is never
                // read as another host.
                let visible = path.bytes().all(|b| b.is_ascii_graphic());
                return (index.is_some() && visible && !path.starts_with("//"))
                    .then(|| Found::Redirect(format!("{path}/")));
            }
            return match index.and_then(|index| open_file(&self.root, &index)) {
                Some((file, meta)) => Some(Found::File(file, meta, content_type("index.html"))),
                None if names.is_empty() => Some(Found::Fallback),
                None => None,
            };
        }
        if wants_dir {
            return None; // `/a.txt/` is not a directory
        }
        let ty = content_type(names.last().map_or("", String::as_str));
        open_file(&self.root, &real).map(|(file, meta)| Found::File(file, meta, ty))
    }

    /// `path` with symlinks resolved, if it exists and lies under the root through no
    /// hidden name (a symlink `pub -> .git` inside DIR must not show `.git`).
    fn inside(&self, path: &Path) -> Option<PathBuf> {
        let real = fs::canonicalize(path).ok()?;
        let rest = real.strip_prefix(&self.root).ok()?;
        rest.components()
            .all(|c| match c {
                Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
                _ => false,
            })
            .then_some(real)
    }
}

/// The path of a request target: up to `?` or `#` (the query is ignored).
fn target_path(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or("")
}

/// The decoded segments of a request path, or `None` if the path is refused. A
/// trailing slash adds no segment; `/` has none. Refused: a path not starting with `/`;
/// an empty segment (`//`: would be an absolute path, and a `//host` redirect);
/// invalid percent-encoding; and any segment that, decoded, is not a plain file name
/// (see [`name_ok`]). Decoding happens per segment, after splitting on `/`, so an
/// encoded `%2f` can never make a separator.
fn segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.split('/')
        .map(|raw| {
            let name = String::from_utf8(percent_decode(raw)?).ok()?;
            name_ok(&name).then_some(name)
        })
        .collect()
}

/// A file name that means the same on every system and names nothing hidden: not
/// empty; no leading `.` (hidden files, and `.` and `..`); no `/` or `\` (separators on
/// some system), no `:` (drive letters `C:` and NTFS streams `a.txt:x`), no NUL or other
/// control characters; no trailing space or `.` (Windows drops them, so `a.txt.` would
/// open `a.txt`).
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with(['.', ' '])
        && !name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control())
}

/// `%XX` sequences decoded (RFC 3986 §2.1); `None` for a `%` not followed by two hex
/// digits. `+` stays `+` (that is a form encoding, not a path's).
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Opens `real`, a canonical path that [`Files::inside`] accepted, if it is a regular
/// file (not a directory, FIFO or device: opening a FIFO would wait for a writer). Opened
/// beneath the root by the same names and through no symlink (beneath.rs): between the
/// check and this open, a directory on the way may have been swapped for a symlink to
/// outside, and by name that would be followed. The type is checked on the open handle,
/// not on the name.
fn open_file(root: &Path, real: &Path) -> Option<(File, Metadata)> {
    let rel = real.strip_prefix(root).ok()?;
    let file = match beneath::open(root, rel) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            // Usually a symlink that appeared on the way since the check (a local user
            // racing the server), else a file this user may not read.
            // The names are a client's request (and a local user's file names): escaped,
            // so that none of their backticks reaches the binary's flag rewriting.
            info!(
                "static_dir: \"{}\" was checked but not opened ({e}): answered 404",
                escape::client(rel.as_os_str().as_encoded_bytes())
            );
            return None;
        }
    };
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta))
}

/// The media type for a file name (or path), by its extension (any case). Text types say UTF-8:
/// without a charset a browser guesses (RFC 9110 §8.3.1), and `nosniff` stops other
/// guessing. Unknown extensions are `application/octet-stream` (RFC 2046 §4.5.1): a
/// browser downloads instead of rendering.
fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or("");
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        // RFC 9239 §6: text/javascript, for scripts and modules alike.
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        // RFC 7763 §2: charset is required for text/markdown.
        "md" | "markdown" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        // RFC 8259 §11: JSON has no charset parameter (it is UTF-8). Source maps are JSON.
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        // WebAssembly.instantiateStreaming refuses any other type.
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "pdf" => "application/pdf",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// An answer: the status line, `fields` (header lines, each ending in CRLF), the fields
/// every answer here has, the blank line, then `text` if any (a short body that travels
/// in the head).
fn reply(status: u16, fields: &str, text: Option<&str>, body: Option<Body>, now: u64) -> Answer {
    let reason = match status {
        200 => "OK",
        301 => "Moved Permanently",
        304 => "Not Modified",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "",
    };
    // RFC 9110 §6.6.1: an origin server with a clock sends Date. `nosniff`: the browser
    // keeps to Content-Type (a .txt upload is never run as a script).
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n{fields}Date: {}\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{}",
        imf_fixdate(now),
        text.unwrap_or("")
    );
    Answer::Reply {
        status,
        head: head.into_bytes(),
        body,
    }
}

/// A short text answer; for HEAD the same header fields without the text (RFC 9110
/// §9.3.2).
fn text_reply(status: u16, text: &str, extra: &str, head_only: bool, now: u64) -> Answer {
    let fields = format!(
        "{extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        text.len()
    );
    reply(status, &fields, (!head_only).then_some(text), None, now)
}

fn not_found(head_only: bool, now: u64) -> Answer {
    text_reply(404, NOT_FOUND_BODY, "", head_only, now)
}

// ---- HTTP-date (RFC 9110 §5.6.7) ----

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// 9999-12-31 23:59:59 GMT: the last moment a four-digit year can say.
const LAST_DATE: u64 = 253_402_300_799;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`: eras of 400 years, years starting in March so the leap day is
/// last).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `secs` since the Unix epoch as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`
/// (RFC 9110 §5.6.7: the only format a sender may generate). Times past the year 9999
/// are shown as its last second.
pub(crate) fn imf_fixdate(secs: u64) -> String {
    let secs = secs.min(LAST_DATE) as i64;
    let days = secs.div_euclid(86_400);
    let time = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[month as usize - 1],
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// An HTTP-date in any of the three formats a recipient must accept (RFC 9110 §5.6.7):
/// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850
/// `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`, as seconds
/// since the Unix epoch. `now` decides the century of a two-digit year. `None` for
/// anything else, a date before 1970 included. The day name is checked to be a day
/// name, not to be the right one.
pub(crate) fn parse_http_date(value: &str, now: u64) -> Option<u64> {
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let (year, month, day, time) = match parts[..] {
        // IMF-fixdate, strictly as §5.6.7 spells it: two-digit day, four-digit year.
        [wd, day, month, year, time, "GMT"] => {
            let wd = wd.strip_suffix(',')?;
            DAYS.contains(&wd).then_some(())?;
            (digits(year, 4)?, month, digits(day, 2)?, time)
        }
        [wd, date, time, "GMT"] => {
            let wd = wd.strip_suffix(',')?;
            LONG_DAYS.contains(&wd).then_some(())?;
            let mut it = date.split('-');
            let (day, month, yy) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() {
                return None;
            }
            (
                rfc850_year(digits(yy, 2)?, now),
                month,
                digits(day, 2)?,
                time,
            )
        }
        // asctime: the day is one or two digits (`Nov  6`, `Nov 16`).
        [wd, month, day, time, year] => {
            DAYS.contains(&wd).then_some(())?;
            let day = digits(day, 2).or_else(|| digits(day, 1))?;
            (digits(year, 4)?, month, day, time)
        }
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let days_in_month = match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let mut hms = time.split(':');
    let (h, m, s) = (
        digits(hms.next()?, 2)?,
        digits(hms.next()?, 2)?,
        digits(hms.next()?, 2)?,
    );
    // §5.6.7: `second` may be 60 (a leap second).
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + s);
    u64::try_from(secs).ok()
}

/// Exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is the most
/// recent past year with the same last two digits.
fn rfc850_year(yy: u32, now: u64) -> u32 {
    let this_year = civil_from_days((now.min(LAST_DATE) / 86_400) as i64).0 as u32;
    let year = this_year / 100 * 100 + yy;
    if year > this_year + 50 {
        year - 100
    } else {
        year
    }
}

/// A plain GET or HEAD with `static_dir` set (http/route.rs `Verdict::File`).
#[derive(Debug)]
pub(crate) struct FileRequest {
    pub(crate) head_only: bool,
    pub(crate) path: String,
    /// That header, when the request has it exactly once and has no `If-None-Match`
    /// (RFC 9110 §13.1.3: then it must be ignored; a repeated one is not a valid date).
    pub(crate) if_modified_since: Option<String>,
    /// The WebSocket endpoint's 426, when there is no file at its path.
    pub(crate) not_found: Option<Response>,
}

impl FileRequest {
    /// A request for `path`, with the `headers` it came with.
    pub(crate) fn new(
        headers: &[httparse::Header<'_>],
        head_only: bool,
        path: &str,
        not_found: Option<Response>,
    ) -> FileRequest {
        let mut dates = values(headers, "If-Modified-Since");
        let if_modified_since = match (dates.next(), dates.next()) {
            (Some(one), None) if values(headers, "If-None-Match").next().is_none() => {
                Some(one.to_string())
            }
            _ => None,
        };
        FileRequest {
            head_only,
            path: path.to_string(),
            if_modified_since,
            not_found,
        }
    }
}

/// `static_dir`: answers from the directory, on this connection's thread, so
/// it holds its slot of `max_connections` like any connection. The file goes out in
/// chunks of `files::CHUNK` straight to the socket (or TLS), under the write floor set
/// in http/serve.rs `serve`: a client that reads less than 16 KiB per write timeout is cut. Then the
/// usual close: close_notify, half-close, a short drain. One info line per answer.
/// `false`: no file is there and the teaching page is (`Answer::Fallback`), for the
/// caller to answer. `files`: the directory bind opened (`None` only without
/// `static_dir`, and then there is no such request).
pub(crate) fn serve(files: Option<&Files>, req: &Plain<'_>, request: &FileRequest) -> bool {
    let Some(files) = files else {
        return false;
    };
    let (client, tag) = (req.client, req.tag);
    let (id, peer) = (client.id(), client.peer_addr());
    let method = if request.head_only { "HEAD" } else { "GET" };
    let path = &request.path;
    let since = request.if_modified_since.as_deref();
    let (status, answer, body) = match files.answer(method, path, since) {
        Answer::Fallback => return false,
        Answer::Reply { status: 404, .. } if request.not_found.is_some() => {
            let Some(mut endpoint) = request.not_found.clone() else {
                return true;
            };
            if request.head_only {
                endpoint = endpoint.for_head();
            }
            info!(
                "{tag} {peer}: {method} \"{}\" answered 426: no file there, and it is the WebSocket endpoint",
                escape::client(path)
            );
            respond_and_close(client.transport(), &endpoint, DRAIN_FOR);
            return true;
        }
        Answer::Reply { status, head, body } => (status, head, body),
    };
    // --trace: the answer's head, as for every other HTTP answer (not the file's bytes).
    if req.traced {
        trace::emit(id, &trace::http_lines("->", "answer head", &answer));
    }
    let mut out = ToClient {
        transport: client.transport(),
        sent: 0,
    };
    let result = out
        .write_all(&answer)
        .and_then(|()| body.map_or(Ok(0), |body| body.send(&mut out)));
    match result {
        Ok(_) => {
            info!(
                "{tag} {peer}: {method} \"{}\" answered {status} from static_dir ({} bytes)",
                escape::client(path),
                out.sent
            );
            client.end_tls();
        }
        // The head, or part of the file, is out: the client sees a body shorter than
        // its Content-Length, which it must treat as incomplete (RFC 9112 §8).
        Err(e) => info!(
            "{tag} {peer}: {method} \"{}\" answered {status} from static_dir, cut after {} bytes: {}",
            escape::client(path),
            out.sent,
            write_failure(e)
        ),
    }
    shut_and_drain(client.socket(), DRAIN_FOR, DRAIN_MAX);
    true
}

/// The socket (or TLS) as an `io::Write` for `files::Body::send`, counting what went out.
struct ToClient<'a> {
    transport: &'a Transport,
    sent: u64,
}

impl io::Write for ToClient<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.transport.write_all(buf)?;
        self.sent += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// RFC 9110 §5.6.7's example, and its time in seconds since the epoch.
    const RFC_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const RFC_SECS: u64 = 784_111_777;
    /// "now" for the tests: Tue, 01 Dec 2026 00:00:00 GMT.
    const NOW: u64 = 1_796_083_200;

    /// A directory under the system's temporary directory, removed when dropped.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(name: &str) -> Tmp {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "tinyws-files-{}-{name}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Tmp(dir)
        }

        fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, bytes).unwrap();
            path
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A site in `tmp/site` with a secret next to it in `tmp/outside`.
    fn site() -> (Tmp, Files) {
        let tmp = Tmp::new("site");
        tmp.write("outside/secret.txt", b"secret");
        tmp.write("outside/index.html", b"secret page");
        tmp.write("site/index.html", b"<h1>hi</h1>");
        tmp.write("site/a.txt", b"aaa");
        tmp.write("site/sub/index.html", b"sub page");
        tmp.write("site/sub/style.css", b"body{}");
        tmp.write("site/sub/.hidden", b"hidden");
        tmp.write("site/.hidden", b"hidden");
        tmp.write("site/.git/config", b"[core]");
        tmp.write("site/empty/keep.txt", b"no index here");
        let files = Files::new(&tmp.0.join("site")).unwrap();
        (tmp, files)
    }

    /// (status, head as text, body).
    fn reply(answer: Answer) -> (u16, String, Option<Body>) {
        match answer {
            Answer::Reply { status, head, body } => {
                (status, String::from_utf8(head).unwrap(), body)
            }
            Answer::Fallback => panic!("expected a reply, got Fallback"),
        }
    }

    fn get(files: &Files, target: &str) -> (u16, String, Option<Body>) {
        reply(files.answer_at("GET", target, None, NOW))
    }

    fn body_of(body: Option<Body>) -> Vec<u8> {
        let mut out = Vec::new();
        body.expect("a body").send(&mut out).unwrap();
        out
    }

    fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
        head.split("\r\n").find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Length: 11\r\n\
        Date: Tue, 01 Dec 2026 00:00:00 GMT\r\n\
        X-Content-Type-Options: nosniff\r\n\
        Connection: close\r\n\r\n\
        Not found.\n";

    /// Every one of these is refused with exactly the bytes of a missing file.
    fn assert_refused(files: &Files, targets: &[String]) {
        for target in targets {
            let (status, head, body) = get(files, target);
            assert_eq!((status, head.as_str()), (404, NOT_FOUND), "GET {target:?}");
            assert!(body.is_none());
        }
    }

    fn strings(targets: &[&str]) -> Vec<String> {
        targets.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn serves_files_with_their_headers() {
        let (tmp, files) = site();
        let (status, head, body) = get(&files, "/a.txt");
        assert_eq!(status, 200);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"));
        assert_eq!(
            header(&head, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(header(&head, "Content-Length"), Some("3"));
        assert_eq!(header(&head, "Connection"), Some("close"));
        assert_eq!(header(&head, "X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(header(&head, "Cache-Control"), Some("no-cache"));
        assert_eq!(header(&head, "Date"), Some("Tue, 01 Dec 2026 00:00:00 GMT"));
        assert!(header(&head, "Last-Modified").is_some());
        assert_eq!(body_of(body), b"aaa");

        // `/` and `/sub/` are their index.html; the query is ignored.
        let (_, head, body) = get(&files, "/?x=1");
        assert_eq!(
            header(&head, "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(body_of(body), b"<h1>hi</h1>");
        assert_eq!(body_of(get(&files, "/sub/").2), b"sub page");
        assert_eq!(body_of(get(&files, "/sub/style.css?v=2#top").2), b"body{}");
        // Percent-encoded ordinary names are decoded.
        tmp.write("site/two words.txt", b"2");
        assert_eq!(body_of(get(&files, "/two%20words.txt").2), b"2");
    }

    #[test]
    fn missing_files_are_404_and_head_has_no_body() {
        let (_tmp, files) = site();
        assert_refused(&files, &strings(&["/nothing.html", "/sub/nothing"]));
        let (status, head, body) = reply(files.answer_at("HEAD", "/nothing", None, NOW));
        assert_eq!(status, 404);
        assert_eq!(head, NOT_FOUND.strip_suffix("Not found.\n").unwrap());
        assert!(body.is_none());
    }

    #[test]
    fn head_gets_the_headers_of_get_without_the_body() {
        let (_tmp, files) = site();
        let (_, get_head, _) = get(&files, "/sub/style.css");
        let (status, head, body) = reply(files.answer_at("HEAD", "/sub/style.css", None, NOW));
        assert_eq!(status, 200);
        assert_eq!(head, get_head);
        assert_eq!(header(&head, "Content-Length"), Some("6"));
        assert!(body.is_none());
    }

    #[test]
    fn other_methods_are_405_with_allow() {
        let (_tmp, files) = site();
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get", "Head"] {
            let (status, head, body) = reply(files.answer_at(method, "/a.txt", None, NOW));
            assert_eq!(status, 405, "{method}");
            assert_eq!(
                head,
                "HTTP/1.1 405 Method Not Allowed\r\n\
                 Allow: GET, HEAD\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 35\r\n\
                 Date: Tue, 01 Dec 2026 00:00:00 GMT\r\n\
                 X-Content-Type-Options: nosniff\r\n\
                 Connection: close\r\n\r\n\
                 Only GET and HEAD are served here.\n"
            );
            assert!(body.is_none());
        }
    }

    #[test]
    fn root_without_index_falls_back_to_the_built_in_page() {
        let tmp = Tmp::new("noindex");
        tmp.write("site/a.txt", b"a");
        let files = Files::new(&tmp.0.join("site")).unwrap();
        assert!(matches!(
            files.answer_at("GET", "/", None, NOW),
            Answer::Fallback
        ));
        assert!(matches!(
            files.answer_at("HEAD", "/?q", None, NOW),
            Answer::Fallback
        ));
        // Only `/`: another directory without index.html is just not found.
        tmp.write("site/sub/b.txt", b"b");
        assert_refused(&files, &strings(&["/sub/", "/sub"]));
    }

    #[test]
    fn a_directory_without_its_slash_is_redirected_when_it_has_an_index() {
        let (_tmp, files) = site();
        let (status, head, body) = get(&files, "/sub?x=1");
        assert_eq!(status, 301);
        assert_eq!(
            head,
            "HTTP/1.1 301 Moved Permanently\r\n\
             Location: /sub/\r\n\
             Content-Length: 0\r\n\
             Date: Tue, 01 Dec 2026 00:00:00 GMT\r\n\
             X-Content-Type-Options: nosniff\r\n\
             Connection: close\r\n\r\n"
        );
        assert!(body.is_none());
        // No index.html: no redirect, nothing to show.
        assert_refused(&files, &strings(&["/empty", "/empty/"]));
        // A file is not a directory.
        assert_refused(&files, &strings(&["/a.txt/"]));
    }

    #[test]
    fn new_refuses_what_is_not_a_directory() {
        let tmp = Tmp::new("notdir");
        let file = tmp.write("f.txt", b"x");
        let e = Files::new(&file).unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
        let e = Files::new(&tmp.0.join("missing")).unwrap_err();
        // The library names the field; the binary adds the flag (main.rs).
        assert!(e.to_string().starts_with("`static_dir` "), "{e}");
    }

    #[test]
    fn dot_dot_segments_are_refused() {
        let (_tmp, files) = site();
        assert_refused(
            &files,
            &strings(&[
                "/../outside/secret.txt",
                "/sub/../../outside/secret.txt",
                "/sub/../a.txt", // stays inside, still refused: no `..` at all
                "/./a.txt",
                "/..",
                "/../",
            ]),
        );
    }

    #[test]
    fn percent_encoded_dots_and_separators_are_refused() {
        let (_tmp, files) = site();
        assert_refused(
            &files,
            &strings(&[
                "/%2e%2e/outside/secret.txt",
                "/%2E%2E/outside/secret.txt",
                "/.%2e/outside/secret.txt",
                "/%2e./outside/secret.txt",
                "/%2e%2e%2foutside%2fsecret.txt",
                "/sub%2f..%2f..%2foutside%2fsecret.txt",
                "/sub%2Fstyle.css", // an encoded slash is never a separator
                "/%2e%2e%5coutside%5csecret.txt",
                "/sub%5cstyle.css",
                "/%252e%252e/outside/secret.txt", // decoded once only
                "/a.txt%",                        // invalid encoding
                "/a.txt%2",
                "/a%zz.txt",
            ]),
        );
    }

    #[test]
    fn backslashes_are_refused() {
        let (_tmp, files) = site();
        assert_refused(
            &files,
            &strings(&["/..\\outside\\secret.txt", "/sub\\style.css", "/\\outside"]),
        );
    }

    #[test]
    fn nul_and_control_characters_are_refused() {
        let (_tmp, files) = site();
        assert_refused(
            &files,
            &strings(&[
                "/a.txt%00",
                "/a.txt%00.html",
                "/a.txt\0",
                "/a%0a.txt",
                "/a.txt%0d%0aX: y",
            ]),
        );
    }

    #[test]
    fn absolute_paths_and_drive_letters_are_refused() {
        let (tmp, files) = site();
        let secret = tmp.0.join("outside/secret.txt");
        let secret = secret.to_string_lossy().replace('\\', "/");
        let encoded = secret.replace('/', "%2f");
        assert_refused(
            &files,
            &[
                format!("/{secret}"), // `//tmp/...`: an empty segment
                format!("/{encoded}"),
                format!("/{}", secret.replace('/', "%5c")),
                "//etc/passwd".into(),
                "a.txt".into(), // not a path at all
                "".into(),
                "http://host/a.txt".into(), // the caller passes the path, not the URL
                "/C:/Windows/win.ini".into(),
                "/C:%5cWindows%5cwin.ini".into(),
                "/c%3a/x".into(),
                "/a.txt:stream".into(),
                "/a.txt.".into(), // Windows would open a.txt
                "/a.txt%20".into(),
            ],
        );
    }

    #[test]
    fn hidden_files_and_directories_are_refused() {
        let (_tmp, files) = site();
        assert_refused(
            &files,
            &strings(&[
                "/.hidden",
                "/%2ehidden",
                "/sub/.hidden",
                "/.git/config",
                "/.git/",
                "/.git",
                "/%2Egit/config",
            ]),
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_that_leave_the_directory_are_refused() {
        use std::os::unix::fs::symlink;
        let (tmp, files) = site();
        let site = tmp.0.join("site");
        symlink(tmp.0.join("outside"), site.join("out")).unwrap();
        symlink(tmp.0.join("outside/secret.txt"), site.join("link.txt")).unwrap();
        symlink("../outside/secret.txt", site.join("sub/rel.txt")).unwrap();
        // A directory inside whose index.html points out.
        fs::create_dir(site.join("sub2")).unwrap();
        symlink(
            tmp.0.join("outside/index.html"),
            site.join("sub2/index.html"),
        )
        .unwrap();
        // Inside DIR, but to a hidden name: still hidden.
        symlink(site.join(".git"), site.join("pub")).unwrap();
        symlink(site.join(".hidden"), site.join("shown.txt")).unwrap();
        assert_refused(
            &files,
            &strings(&[
                "/out/secret.txt",
                "/out/",
                "/out",
                "/link.txt",
                "/sub/rel.txt",
                "/sub2/",
                "/sub2",
                "/pub/config",
                "/shown.txt",
            ]),
        );
        // A symlink that stays inside, to a visible name, is fine.
        symlink(site.join("a.txt"), site.join("alias.txt")).unwrap();
        assert_eq!(body_of(get(&files, "/alias.txt").2), b"aaa");
    }

    #[cfg(unix)]
    #[test]
    fn a_root_behind_a_symlink_still_serves_and_still_confines() {
        use std::os::unix::fs::symlink;
        let (tmp, _) = site();
        symlink(tmp.0.join("site"), tmp.0.join("alias")).unwrap();
        let files = Files::new(&tmp.0.join("alias")).unwrap();
        assert_eq!(body_of(get(&files, "/a.txt").2), b"aaa");
        assert_refused(&files, &strings(&["/../outside/secret.txt"]));
    }

    #[cfg(unix)]
    #[test]
    fn fifos_are_not_opened() {
        // Opening a FIFO for reading waits for a writer: the answer must not.
        let (tmp, files) = site();
        let fifo = tmp.0.join("site/pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("no mkfifo here; skipped");
            return;
        }
        assert_refused(&files, &strings(&["/pipe"]));
    }

    #[test]
    fn segments_refuse_every_unsafe_name_on_their_own() {
        // The first layer alone, without the canonical check behind it.
        for bad in [
            "/..", "/.", "/.x", "/%2e%2e", "/%2E.", "/a/../b", "/a%2fb", "/a%2Fb", "/a%5cb",
            "/a\\b", "/a%00", "/a\0", "/C:", "/c%3A", "//a", "/a//b", "/a%", "/a%g0", "/a.", "/a ",
            "/%ff", "a", "", "/a%0d",
        ] {
            assert_eq!(segments(bad), None, "{bad:?}");
        }
        assert_eq!(segments("/"), Some(vec![]));
        assert_eq!(segments("/a/b/"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            segments("/%e4%b8%ad.html"),
            Some(vec!["中.html".to_string()])
        );
        assert_eq!(segments("/a+b%20c"), Some(vec!["a+b c".to_string()]));
    }

    #[test]
    fn content_types() {
        for (name, ty) in [
            ("/index.html", "text/html; charset=utf-8"),
            ("/INDEX.HTM", "text/html; charset=utf-8"),
            ("/s.css", "text/css; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/mod.mjs", "text/javascript; charset=utf-8"),
            ("/data.json", "application/json"),
            ("/app.js.map", "application/json"),
            ("/logo.svg", "image/svg+xml"),
            ("/a.png", "image/png"),
            ("/a.jpg", "image/jpeg"),
            ("/a.JPEG", "image/jpeg"),
            ("/a.gif", "image/gif"),
            ("/a.webp", "image/webp"),
            ("/favicon.ico", "image/x-icon"),
            ("/notes.txt", "text/plain; charset=utf-8"),
            ("/lesson.md", "text/markdown; charset=utf-8"),
            ("/prog.wasm", "application/wasm"),
            ("/f.woff2", "font/woff2"),
            ("/app.webmanifest", "application/manifest+json"),
            ("/archive.tar.gz", "application/octet-stream"),
            ("/Makefile", "application/octet-stream"),
            ("/dir.d/file", "application/octet-stream"),
        ] {
            assert_eq!(content_type(name), ty, "{name}");
        }
        // And it is what a real answer says.
        let tmp = Tmp::new("types");
        tmp.write("site/m.mjs", b"export {}");
        tmp.write("site/p.wasm", b"\0asm");
        tmp.write("site/blob", b"?");
        let files = Files::new(&tmp.0.join("site")).unwrap();
        for (target, ty) in [
            ("/m.mjs", "text/javascript; charset=utf-8"),
            ("/p.wasm", "application/wasm"),
            ("/blob", "application/octet-stream"),
        ] {
            assert_eq!(header(&get(&files, target).1, "Content-Type"), Some(ty));
        }
    }

    /// `site/when.txt`, last modified at the RFC's example time and a half second.
    fn dated() -> (Tmp, Files) {
        let tmp = Tmp::new("dated");
        let path = tmp.write("site/when.txt", b"then");
        let file = fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_millis(RFC_SECS * 1000 + 500))
            .unwrap();
        let files = Files::new(&tmp.0.join("site")).unwrap();
        (tmp, files)
    }

    #[test]
    fn last_modified_is_an_imf_fixdate() {
        let (_tmp, files) = dated();
        let (_, head, _) = get(&files, "/when.txt");
        assert_eq!(header(&head, "Last-Modified"), Some(RFC_DATE));
    }

    #[test]
    fn if_modified_since_gives_304_when_unchanged() {
        let (_tmp, files) = dated();
        let ask = |method: &str, since: &str| {
            reply(files.answer_at(method, "/when.txt", Some(since), NOW))
        };
        // The same second (the file's half second does not count), or later: 304.
        for since in [
            RFC_DATE,
            "Sun, 06 Nov 1994 08:49:38 GMT",
            "Tue, 01 Dec 2026 00:00:00 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            let (status, head, body) = ask("GET", since);
            assert_eq!(status, 304, "{since}");
            assert_eq!(
                head,
                format!(
                    "HTTP/1.1 304 Not Modified\r\n\
                     Last-Modified: {RFC_DATE}\r\n\
                     Cache-Control: no-cache\r\n\
                     Date: Tue, 01 Dec 2026 00:00:00 GMT\r\n\
                     X-Content-Type-Options: nosniff\r\n\
                     Connection: close\r\n\r\n"
                )
            );
            assert!(body.is_none());
            assert_eq!(ask("HEAD", since).0, 304);
        }
        // A second earlier: changed since, 200 with the file.
        let (status, _, body) = ask("GET", "Sun, 06 Nov 1994 08:49:36 GMT");
        assert_eq!(status, 200);
        assert_eq!(body_of(body), b"then");
        // Not a date: ignored (RFC 9110 §13.1.3), a full 200.
        for junk in [
            "yesterday",
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        ] {
            let (status, _, body) = ask("GET", junk);
            assert_eq!(status, 200, "{junk:?}");
            assert_eq!(body_of(body), b"then");
        }
    }

    #[test]
    fn a_modification_time_in_the_future_is_shown_as_now() {
        // RFC 9110 §8.8.2.1: never a Last-Modified after the Date.
        let (tmp, files) = dated();
        let file = fs::OpenOptions::new()
            .write(true)
            .open(tmp.0.join("site/when.txt"))
            .unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(NOW + 3600))
            .unwrap();
        let (_, head, _) = get(&files, "/when.txt");
        assert_eq!(
            header(&head, "Last-Modified"),
            Some("Tue, 01 Dec 2026 00:00:00 GMT")
        );
    }

    /// Records the bytes written and the largest single write.
    #[derive(Default)]
    struct Recorder {
        bytes: Vec<u8>,
        largest: usize,
        writes: usize,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.largest = self.largest.max(buf.len());
            self.writes += 1;
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_large_file_goes_out_in_bounded_chunks() {
        let tmp = Tmp::new("large");
        let content: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        tmp.write("site/big.bin", &content);
        let files = Files::new(&tmp.0.join("site")).unwrap();
        let (status, head, body) = get(&files, "/big.bin");
        assert_eq!(status, 200);
        assert_eq!(header(&head, "Content-Length"), Some("5242880"));
        let mut out = Recorder::default();
        let sent = body.unwrap().send(&mut out).unwrap();
        assert_eq!(sent, content.len() as u64);
        assert!(out.bytes == content, "the bytes differ");
        assert!(out.largest <= CHUNK, "a write of {} bytes", out.largest);
        assert!(out.writes >= content.len() / CHUNK);
    }

    #[test]
    fn a_file_that_grows_while_sent_is_cut_at_its_announced_length() {
        let tmp = Tmp::new("grows");
        let path = tmp.write("site/log.txt", &[b'a'; 100_000]);
        let files = Files::new(&tmp.0.join("site")).unwrap();
        let (_, head, body) = get(&files, "/log.txt");
        assert_eq!(header(&head, "Content-Length"), Some("100000"));
        let mut more = fs::OpenOptions::new().append(true).open(&path).unwrap();
        more.write_all(&[b'b'; 50_000]).unwrap();
        let mut out = Recorder::default();
        assert_eq!(body.unwrap().send(&mut out).unwrap(), 100_000);
        assert!(out.bytes == [b'a'; 100_000], "the bytes differ");
    }

    #[test]
    fn a_file_that_shrinks_while_sent_is_an_error() {
        let tmp = Tmp::new("shrinks");
        let path = tmp.write("site/log.txt", &[b'a'; 100_000]);
        let files = Files::new(&tmp.0.join("site")).unwrap();
        let (_, _, body) = get(&files, "/log.txt");
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(40_000)
            .unwrap();
        let mut out = Recorder::default();
        let e = body.unwrap().send(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(out.bytes.len(), 40_000);
    }

    #[test]
    fn the_rfc_example_date_byte_for_byte() {
        assert_eq!(imf_fixdate(RFC_SECS), RFC_DATE);
        assert_eq!(parse_http_date(RFC_DATE, NOW), Some(RFC_SECS));
        // The two obsolete forms of the same moment (RFC 9110 §5.6.7).
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", NOW),
            Some(RFC_SECS)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994", NOW),
            Some(RFC_SECS)
        );
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(imf_fixdate(NOW), "Tue, 01 Dec 2026 00:00:00 GMT");
        assert_eq!(imf_fixdate(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(imf_fixdate(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 GMT");
        assert_eq!(imf_fixdate(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(imf_fixdate(LAST_DATE), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(imf_fixdate(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn dates_round_trip() {
        // Every day boundary for 200 years, and a spread of odd times up to 9999.
        for day in 0..(200 * 366) {
            let t = day * 86_400;
            assert_eq!(parse_http_date(&imf_fixdate(t), NOW), Some(t), "{t}");
            assert_eq!(
                parse_http_date(&imf_fixdate(t + 86_399), NOW),
                Some(t + 86_399)
            );
        }
        let mut t = 0u64;
        while t <= LAST_DATE {
            let s = imf_fixdate(t);
            assert_eq!(s.len(), 29, "{s}");
            assert_eq!(parse_http_date(&s, NOW), Some(t), "{s}");
            t += 987_654_321;
        }
        for days in [-719_468i64, -1, 0, 1, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn dates_that_are_not_http_dates() {
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 GMT x",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Fri, 29 Feb 2100 00:00:00 GMT", // 2100 is not a leap year
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Thu, 31 Dec 1969 23:59:59 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06-Nov-94-1 08:49:37 GMT",
            "Sun Nov 06 08:49:37 94",
        ] {
            assert_eq!(parse_http_date(bad, NOW), None, "{bad:?}");
        }
        assert_eq!(
            parse_http_date("Sun, 29 Feb 2004 00:00:00 GMT", NOW),
            Some(1_078_012_800)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT", NOW),
            Some(951_782_400)
        );
        // A leap second is a valid second.
        assert_eq!(
            parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT", NOW),
            Some(1_483_228_800)
        );
    }

    #[test]
    fn two_digit_years_within_fifty_years_ahead() {
        // RFC 9110 §5.6.7, seen from 2026.
        let year = |yy: u32| rfc850_year(yy, NOW);
        assert_eq!(year(94), 1994);
        assert_eq!(year(26), 2026);
        assert_eq!(year(76), 2076); // 50 years ahead: still the future
        assert_eq!(year(77), 1977); // 51: the past
        assert_eq!(year(0), 2000);
        // Seen from 2090, a year of this century is never too far ahead.
        let in_2090 = days_from_civil(2090, 6, 1) as u64 * 86_400;
        assert_eq!(rfc850_year(30, in_2090), 2030);
        assert_eq!(rfc850_year(99, in_2090), 2099);
    }

    #[test]
    fn if_modified_since_is_read_once_and_only_without_if_none_match() {
        let header = |name, value: &'static str| httparse::Header {
            name,
            value: value.as_bytes(),
        };
        let since = |headers: &[httparse::Header<'_>]| {
            FileRequest::new(headers, false, "/a.txt", None).if_modified_since
        };
        let once = header("if-modified-since", " Sun, 06 Nov 1994 08:49:37 GMT ");
        assert_eq!(since(&[once]).as_deref(), Some(RFC_DATE));
        // RFC 9110 §13.1.3: ignored with If-None-Match, and when repeated.
        assert_eq!(since(&[once, header("If-None-Match", "\"x\"")]), None);
        assert_eq!(since(&[once, once]), None);
        assert_eq!(since(&[]), None);
    }
}
