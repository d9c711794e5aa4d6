//! The page on `/`: a plain `GET /` gets one self-contained HTML page that points at the
//! configured WebSocket path; `/` still upgrades when a WebSocket client asks.

mod common;

use common::*;
use tinyws::Message;

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").unwrap().1
}

#[test]
fn plain_get_slash_returns_the_page() {
    let server = start(config());
    let a = http(
        server.addr,
        "GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: test-agent\r\n\r\n",
    );
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
    let head = a.split("\r\n\r\n").next().unwrap();
    assert!(
        head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nCache-Control: no-store\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body(&a).len())));
    let html = body(&a);
    assert!(html.starts_with("<!doctype html>"));
    // Connects back to where it came from, at the default path.
    assert!(html.contains("const WS_PATH = \"/\";"), "path not injected");
    assert!(html.contains("location.host + WS_PATH"));
    // The request that fetched the page is shown, escaped.
    assert!(html.contains("GET / HTTP/1.1\nHost: localhost:8080\nUser-Agent: test-agent"));
    // Self-contained: nothing is loaded from elsewhere (classrooms are often offline).
    for external in ["<link", " src=", "@import", "url(", "http://", "https://"] {
        assert!(!html.contains(external), "page refers to {external}");
    }
}

#[test]
fn page_uses_the_configured_path_and_escapes_what_it_embeds() {
    let server = start(config().path("/echo"));
    let a = http(
        server.addr,
        "GET /?x HTTP/1.1\r\nHost: h\r\nX-Evil: </pre><script>alert(1)</script>\r\n\r\n",
    );
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
    let html = body(&a);
    assert!(html.contains("const WS_PATH = \"/echo\";"));
    assert!(html.contains("X-Evil: &lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("alert(1)</script>"));
    // Other plain GETs are unchanged: 426 on the endpoint, 404 elsewhere.
    let a = http(server.addr, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(a.starts_with("HTTP/1.1 426 "), "{a}");
    let a = http(server.addr, "GET /other HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(a.starts_with("HTTP/1.1 404 "), "{a}");
    // A WebSocket request for / is not the page: with --path /echo it is a 404.
    let a = http(server.addr, &upgrade_request("/", ""));
    assert!(a.starts_with("HTTP/1.1 404 "), "{a}");
}

#[test]
fn slash_still_upgrades_for_websocket_clients() {
    let server = start(config());
    let mut ws = ws(server.addr, "/");
    ws.send(Message::text("still a WebSocket endpoint"))
        .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::text("still a WebSocket endpoint")
    );
}

#[test]
fn same_origin_page_passes_the_origin_check() {
    let server = start(config());
    let host = format!("localhost:{}", server.addr.port());
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}\r\n\r\n"
    );
    let mut s = tcp(server.addr);
    std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
}

/// Browsers that prefer Chinese get the Chinese page, everyone else the English one;
/// both connect to the same path and show the same request.
#[test]
fn the_page_is_chinese_for_browsers_that_prefer_it() {
    let server = start(config());
    let get = |lang: Option<&str>| {
        let extra = lang.map_or(String::new(), |l| format!("Accept-Language: {l}\r\n"));
        http(
            server.addr,
            &format!("GET / HTTP/1.1\r\nHost: localhost:8080\r\n{extra}\r\n"),
        )
    };
    for (lang, chinese) in [
        (Some("zh-CN,zh;q=0.9,en;q=0.8"), true),
        (Some("zh-CN"), true),
        (Some("zh-TW,zh;q=0.9"), true),
        (Some("en-US,en;q=0.9,zh-CN;q=0.8"), false),
        (Some("fr-FR"), false),
        (None, false),
    ] {
        let a = get(lang);
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{lang:?}: {a}");
        let head = a.split("\r\n\r\n").next().unwrap();
        assert!(head.contains("\r\nVary: Accept-Language\r\n"), "{head}");
        let html = body(&a);
        assert!(html.contains("const WS_PATH = \"/\";"), "{lang:?}");
        if chinese {
            assert!(head.contains("\r\nContent-Language: zh-Hans\r\n"), "{head}");
            assert!(html.contains("<html lang=\"zh-Hans\">"), "{lang:?}");
            assert!(html.contains("<h2>握手</h2>"), "{lang:?}");
        } else {
            assert!(head.contains("\r\nContent-Language: en\r\n"), "{head}");
            assert!(html.contains("<html lang=\"en\">"), "{lang:?}");
            assert!(html.contains("<h2>The handshake</h2>"), "{lang:?}");
        }
        // The buttons keep the words the lesson plans use in both languages.
        for word in ["Connect", "Close (1000)", "Send"] {
            assert!(html.contains(word), "{lang:?}: no {word:?}");
        }
    }
}

/// Every registered close code from 1000 to 1015 but the reserved 1004 has its own label
/// on the page, in both languages: tinyws's own 1013 is not "application code".
#[test]
fn the_page_names_every_registered_close_code_in_both_languages() {
    for (file, html) in [
        ("page.html", include_str!("../src/layers/teach/page.html")),
        (
            "page.zh.html",
            include_str!("../src/layers/teach/page.zh.html"),
        ),
    ] {
        let codes = &html[html.find("codes: {").expect("the page's close codes")..];
        let codes = &codes[..codes.find('}').expect("the end of the close codes")];
        for code in (1000..=1015).filter(|c| *c != 1004) {
            assert!(
                codes.contains(&format!("{code}: \"")),
                "{file}: no label for close code {code}"
            );
        }
    }
}

/// `?lang=en` or `?lang=zh` outranks `Accept-Language`, on the page and on the projector
/// view; then the answer no longer varies on that header.
#[test]
fn lang_in_the_query_outranks_accept_language() {
    let server = start(config().inspect(true));
    for path in ["/", "/inspect"] {
        for (query, accept, chinese) in [
            ("?lang=zh", "en-US,en;q=0.9", true),
            ("?x=1&lang=en", "zh-CN,zh;q=0.9", false),
            ("?lang=en", "zh", false),
        ] {
            let a = get(server.addr, &format!("{path}{query}"), accept);
            assert_eq!(language(&a), chinese, "{path}{query} with {accept}: {a}");
            assert!(!a.contains("\r\nVary:"), "{path}{query}: {a}");
        }
    }
}

/// Any other `lang` is no choice: the browser's language, never an error, and the value
/// reaches the page only inside the request head it shows, escaped: but for that head,
/// the page is the one a plain `GET` gets, byte for byte.
#[test]
fn other_lang_values_fall_back_to_accept_language_and_stay_escaped() {
    let server = start(config().inspect(true));
    let long = format!("lang={}", "z".repeat(6000));
    let hostile = [
        "lang=",
        "lang",
        "lang=fr",
        "lang=ZH",
        "lang=zh-CN",
        "lang=%7A%68",
        "lang=<script>alert(1)</script>",
        "lang=\"><svg/onload=alert(1)>",
        "lang=%3Cscript%3Ealert(1)%3C/script%3E%00%ff%zz%",
        "lang=zh\\\";alert(1);//",
        long.as_str(),
    ];
    for path in ["/", "/inspect"] {
        for (accept, chinese) in [("zh-CN", true), ("en", false)] {
            let plain = get(server.addr, path, accept);
            let (plain_rest, _) = split_shown_head(body(&plain));
            for query in hostile {
                let a = get(server.addr, &format!("{path}?{query}"), accept);
                let shown = &query[..query.len().min(60)];
                assert_eq!(language(&a), chinese, "{path}?{shown} with {accept}");
                assert!(a.contains("\r\nVary: Accept-Language\r\n"), "{shown}");
                let (rest, head) = split_shown_head(body(&a));
                assert_eq!(rest, plain_rest, "{path}?{shown}: the page changed");
                assert!(!head.contains(['<', '>', '"']), "{shown}: {head}");
            }
        }
    }
}

/// The page without the text of its `<pre id="head">`, and that text.
fn split_shown_head(html: &str) -> (String, &str) {
    let start = html.find("<pre id=\"head\">").expect("the shown head") + 15;
    let len = html[start..].find("</pre>").expect("its end");
    let rest = format!("{}{}", &html[..start], &html[start + len..]);
    (rest, &html[start..start + len])
}

/// Both templates carry the switch, with their own language marked as the current one.
#[test]
fn both_templates_have_the_language_switch() {
    for (html, current) in [
        (include_str!("../src/layers/teach/page.html"), "English"),
        (include_str!("../src/layers/teach/page.zh.html"), "中文"),
    ] {
        let nav = &html[html.find("<nav class=\"lang\"").expect("the switch")..];
        let nav = &nav[..nav.find("</nav>").expect("the switch's end")];
        assert!(nav.contains("href=\"?lang=en\""), "{nav}");
        assert!(nav.contains("href=\"?lang=zh\""), "{nav}");
        assert!(
            nav.contains(&format!("aria-current=\"true\">{current}</a>")),
            "{nav}"
        );
    }
}

/// A GET of `target` with `Accept-Language: accept`, answered 200.
fn get(addr: std::net::SocketAddr, target: &str, accept: &str) -> String {
    let a = http(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: h\r\nAccept-Language: {accept}\r\n\r\n"),
    );
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{target}: {a}");
    a
}

/// Whether an answer is the Chinese page (its header and its `<html lang>` agree).
fn language(answer: &str) -> bool {
    let head = answer.split("\r\n\r\n").next().unwrap();
    let chinese = head.contains("\r\nContent-Language: zh-Hans\r\n");
    assert!(
        chinese || head.contains("\r\nContent-Language: en\r\n"),
        "{head}"
    );
    let html = if chinese {
        "<html lang=\"zh-Hans\">"
    } else {
        "<html lang=\"en\">"
    };
    assert!(body(answer).starts_with(&format!("<!doctype html>\n{html}")));
    chinese
}

/// The frame lab's panel is in both templates: every element framelab.js looks up, every
/// word of `TEXT.lab` it uses, and the sentence that says the bytes travel inside an HTTP
/// request, not on a WebSocket.
#[test]
fn the_frame_lab_is_on_the_page_in_both_languages() {
    let script = include_str!("../src/layers/teach/framelab.js");
    let ids: Vec<&str> = script
        .split('"')
        .filter(|s| s.starts_with("lab-"))
        .collect();
    let words: Vec<&str> = script
        .split("TEXT.lab.")
        .skip(1)
        .filter_map(|s| s.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .filter(|w| !w.is_empty())
        .collect();
    assert!(ids.len() > 10 && words.len() > 10, "{ids:?} {words:?}");
    for (file, html, says) in [
        (
            "page.html",
            include_str!("../src/layers/teach/page.html"),
            "the page sends them to the server inside an\nordinary HTTP request",
        ),
        (
            "page.zh.html",
            include_str!("../src/layers/teach/page.zh.html"),
            "页面把这些字节放在一个普通的 HTTP 请求里发给服务器",
        ),
    ] {
        for id in &ids {
            assert!(html.contains(&format!("id=\"{id}\"")), "{file}: no #{id}");
        }
        let lab = &html[html.find("  lab: {").expect("TEXT.lab")..];
        for word in &words {
            assert!(
                lab.contains(&format!("\n    {word}:")),
                "{file}: no TEXT.lab.{word}"
            );
        }
        assert!(html.contains(says), "{file}");
    }
}
