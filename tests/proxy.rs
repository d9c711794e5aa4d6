//! tinyws behind a real nginx, using the shipped recipe `docs/deploy/nginx.conf` with only
//! ports and certificate paths replaced: ws:// through the proxy, the Origin check seeing
//! the browser's Host, and TLS-terminating wss:// with a certificate made at test time.
//! `.ci/run` installs nginx; locally the test is skipped, loudly, without it, and fails
//! when `CI` is set.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tinyws::Message;

const NGINX: &str = "/usr/sbin/nginx";

/// Two distinct ports that were free a moment ago (both listeners are held at once, so
/// the same port cannot come back twice). Another process may still take one before
/// nginx binds it: then nginx exits, and `start_nginx` says so instead of waiting for
/// somebody else's listener.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// An nginx process with its own prefix directory; killed by PID on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until something listens on `addr`; false if nginx exited first (it could not
/// bind).
fn wait_port(child: &mut Child, addr: SocketAddr) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
        thread::sleep(Duration::from_millis(20));
    }
    child.try_wait().unwrap().is_none()
}

/// nginx with the recipe on these ports, or `None` if it exited because a port was taken.
fn start_nginx(upstream: SocketAddr, http_port: u16, tls_port: u16) -> Option<Nginx> {
    let dir = std::env::temp_dir().join(format!("tinyws-nginx-{}-{http_port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = test_certificate(&dir);

    let recipe = std::fs::read_to_string("docs/deploy/nginx.conf").unwrap();
    let replaced = [
        ("listen 80;", format!("listen 127.0.0.1:{http_port};")),
        (
            "listen 443 ssl;",
            format!("listen 127.0.0.1:{tls_port} ssl;"),
        ),
        ("server 127.0.0.1:8080;", format!("server {upstream};")),
        ("/etc/ssl/tinyws/cert.pem", cert.display().to_string()),
        ("/etc/ssl/tinyws/key.pem", key.display().to_string()),
    ];
    let mut site = recipe.clone();
    for (from, to) in &replaced {
        assert!(
            site.contains(from),
            "the recipe no longer contains {from:?}"
        );
        site = site.replace(from, to);
    }
    std::fs::write(dir.join("tinyws.conf"), site).unwrap();
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n  include {d}/tinyws.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut nginx = Nginx { child, dir };
    let up = wait_port(
        &mut nginx.child,
        SocketAddr::from(([127, 0, 0, 1], http_port)),
    ) && wait_port(
        &mut nginx.child,
        SocketAddr::from(([127, 0, 0, 1], tls_port)),
    );
    // nginx retries a failed bind for a while, so a listener there may be someone
    // else's: its error log says so.
    let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
    (up && !log.contains("Address already in use")).then_some(nginx)
}

fn upgrade_via(addr: SocketAddr, host: &str, origin: &str) -> String {
    let mut s = tcp(addr);
    let req = upgrade_request("/", &format!("Origin: {origin}\r\n"))
        .replace("Host: localhost", &format!("Host: {host}"));
    s.write_all(req.as_bytes()).unwrap();
    read_head(&mut s)
}

#[test]
fn ws_and_wss_through_nginx_echo_and_keep_the_origin_check() {
    if !required("nginx (apt-get install nginx)", Path::new(NGINX).exists()) {
        return;
    }
    let server = start(config());
    let (nginx, http_port, tls_port) = (0..3)
        .find_map(|_| {
            let (http_port, tls_port) = free_ports();
            start_nginx(server.addr, http_port, tls_port).map(|n| (n, http_port, tls_port))
        })
        .expect("nginx could not bind its ports in three tries");
    let proxy = SocketAddr::from(([127, 0, 0, 1], http_port));

    // ws:// through the proxy, with a real client.
    let mut ws = ws(proxy, "/echo");
    for m in [
        Message::text("through nginx"),
        Message::binary(vec![0, 1, 255]),
    ] {
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m);
    }
    ws.close(None).unwrap();

    // Host passes through with its port, so a page served by the proxy is same-origin,
    // and a foreign page still gets 403 from tinyws.
    let host = format!("127.0.0.1:{http_port}");
    let same = upgrade_via(proxy, &host, &format!("http://{host}"));
    assert!(same.starts_with("HTTP/1.1 101 "), "{same}");
    let foreign = upgrade_via(proxy, &host, "http://evil.example");
    assert!(foreign.starts_with("HTTP/1.1 403 "), "{foreign}");

    // Plain HTTP answers pass through too.
    let answer = http(
        proxy,
        &format!("GET /echo HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");

    // wss:// terminated by nginx, verified against the test certificate.
    python_wss_echo(
        &format!("wss://localhost:{tls_port}/secure"),
        &nginx.dir.join("cert.pem"),
        &format!("https://localhost:{tls_port}"),
    );
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if !required("systemd-analyze", runs("systemd-analyze", &["--version"])) {
        return;
    }
    let unit = std::fs::read_to_string("docs/deploy/tinyws.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/tinyws "));
    // Verify the unit as shipped, pointing ExecStart at the binary cargo just built.
    let dir = std::env::temp_dir().join(format!("tinyws-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tinyws.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/tinyws", env!("CARGO_BIN_EXE_tinyws")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "{complaints}"
    );
}
