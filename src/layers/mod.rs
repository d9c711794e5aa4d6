//! The optional layers: what a build can leave out, each a cargo feature, all registered
//! here and nowhere else. A build without a layer compiles its stand-in instead (under
//! `off/`, the same few names, doing nothing; without `teach` the page is one line),
//! and `bind` refuses the settings that
//! would reach it ([`refused`]), so the rest of `src/` never asks which layers were built.
//!
//! | feature | what it adds | its settings |
//! |---|---|---|
//! | `teach` | the teaching page, `--trace`, the inspector, the frame lab (teach/) | `trace`, `trace_quiet`, `trace_only`, `trace_secrets`, `inspect` |
//! | `static` | `--static`: files from a directory (files.rs, beneath.rs) | `static_dir` |
//! | `pipes` | `--stdin` and `--stdout` (pipes.rs) | `stdin`, `stdout` |
//! | `rooms` | `--rooms`: one room per request path (rooms.rs) | `rooms` |
//! | `tls` | `wss://` on the tinyws port (tls.rs, rustls), behind the transport | `tls_cert`, `tls_key` |
//!
//! The default build has every layer but `tls` (Cargo.toml, `[features]`). A server opens
//! them once ([`Layers`]: `open`, `start`, `finish`). Called by the core (http/, ws/, the
//! shared state, server/); a layer may call room/, client/, util/ and the root's files,
//! never the core that calls it.

#[cfg(feature = "static")]
pub(crate) mod beneath;
#[cfg(feature = "static")]
pub(crate) mod files;
#[cfg(not(feature = "static"))]
#[path = "off/files.rs"]
pub(crate) mod files;
#[cfg(feature = "pipes")]
pub(crate) mod pipes;
#[cfg(not(feature = "pipes"))]
#[path = "off/pipes.rs"]
pub(crate) mod pipes;
#[cfg(feature = "rooms")]
pub(crate) mod rooms;
#[cfg(not(feature = "rooms"))]
#[path = "off/rooms.rs"]
pub(crate) mod rooms;
#[cfg(feature = "teach")]
pub(crate) mod teach;
#[cfg(not(feature = "teach"))]
#[path = "off/teach/mod.rs"]
pub(crate) mod teach;
#[cfg(feature = "tls")]
pub(crate) mod tls;
#[cfg(not(feature = "tls"))]
#[path = "off/tls.rs"]
pub(crate) mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{info, warn};

use crate::client::handle::ServerHandle;
use crate::client::registry::Registry;
use crate::config::Config;
use crate::error::Error;

/// What the optional layers hold for one server: one field of its shared state.
pub(crate) struct Layers {
    /// `rooms`: a room per path (empty otherwise).
    pub(crate) rooms: rooms::Rooms,
    /// The live inspector's records (inspect.rs); empty unless a page asked for one or
    /// the projector view is on.
    pub(crate) inspect: Arc<teach::inspect::Inspector>,
    /// `wss://`: the certificate and key every connection's TLS session starts from.
    pub(crate) tls: Option<Arc<tls::ServerConfig>>,
    /// `static_dir`: the directory plain GET/HEAD requests are served from (files.rs).
    pub(crate) files: Option<files::Files>,
}

impl Layers {
    /// What `config` asks of the layers, before the port opens: a certificate that does
    /// not load, or a typo in the directory, is a startup error, not a 404 for every
    /// request.
    pub(crate) fn open(config: &Config) -> Result<Layers, Error> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::load(cert, key)?),
            _ => None,
        };
        let files = match &config.static_dir {
            Some(dir) => {
                Some(files::Files::new(dir).map_err(|e| Error::InvalidConfig(e.to_string()))?)
            }
            None => None,
        };
        Ok(Layers {
            rooms: rooms::Rooms::default(),
            inspect: Arc::new(teach::inspect::Inspector::new(config.inspect)),
            tls,
            files,
        })
    }

    /// When the server starts serving: a line for each layer that serves a path of its
    /// own (`page`: where the built-in page is), and `--stdin`'s reader thread.
    pub(crate) fn start(
        &self,
        config: &Config,
        server: &ServerHandle,
        registry: &Arc<Mutex<Registry>>,
        page: &str,
    ) {
        let prefix = server.control.prefix();
        if config.inspect {
            info!(
                "{prefix}inspect: the projector view is on at {}://{}{}: every connection's handshake and frames, live, to anyone who opens it (`inspect`)",
                if self.tls.is_some() { "https" } else { "http" },
                server.local_addr(),
                teach::inspect::VIEW_PATH
            );
        }
        if let Some(files) = &self.files {
            info!(
                "{prefix}static files from {} (the built-in page is at {page})",
                files.root().display()
            );
        }
        if config.stdin {
            pipes::read_stdin(server, registry, config);
        }
    }

    /// After the shutdown: the trace's last lines, unless stdout stopped draining
    /// (trace.rs: the shutdown bound must hold whatever the terminal does), and
    /// `--stdout`'s.
    pub(crate) fn finish(&self, config: &Config, prefix: &str) {
        if config.trace && !teach::trace::drain(Duration::from_millis(500)) {
            warn!("{prefix}`trace`: stdout is not being read; the end of the trace is lost");
        }
        if config.stdout {
            pipes::finish_stdout(Duration::from_millis(500));
        }
    }
}

/// The threads the layers start, as (how many, stack size), for the memory budget
/// (server/budget.rs): `--stdin`'s reader and `--stdout`'s writer (pipes.rs, spool.rs).
pub(crate) fn threads(config: &Config) -> [(usize, usize); 2] {
    [
        (usize::from(config.stdin), pipes::READER_STACK),
        (usize::from(config.stdout), crate::util::spool::WRITER_STACK),
    ]
}

/// One optional layer.
pub(crate) struct Layer {
    /// The cargo feature that builds it.
    pub(crate) feature: &'static str,
    /// Whether this build has it.
    pub(crate) built: bool,
    /// The first of its `Config` fields that is set, if any: a build without the layer
    /// refuses it.
    set: fn(&Config) -> Option<&'static str>,
}

/// Every optional layer, in the order `--version` lists them.
pub(crate) const LAYERS: [Layer; 5] = [
    Layer {
        feature: "teach",
        built: cfg!(feature = "teach"),
        set: |c| {
            if c.trace || c.trace_quiet || c.trace_only.is_some() {
                Some("trace")
            } else if c.trace_secrets {
                Some("trace_secrets")
            } else {
                c.inspect.then_some("inspect")
            }
        },
    },
    Layer {
        feature: "static",
        built: cfg!(feature = "static"),
        set: |c| c.static_dir.is_some().then_some("static_dir"),
    },
    Layer {
        feature: "pipes",
        built: cfg!(feature = "pipes"),
        set: |c| {
            if c.stdin {
                Some("stdin")
            } else {
                c.stdout.then_some("stdout")
            }
        },
    },
    Layer {
        feature: "rooms",
        built: cfg!(feature = "rooms"),
        set: |c| c.rooms.then_some("rooms"),
    },
    Layer {
        feature: "tls",
        built: cfg!(feature = "tls"),
        set: |c| (c.tls_cert.is_some() && c.tls_key.is_some()).then_some("tls_cert`/`tls_key"),
    },
];

/// The features this build has, for `--version` ("none" when it has none).
pub fn built() -> String {
    let names: Vec<&str> = LAYERS
        .iter()
        .filter(|l| l.built)
        .map(|l| l.feature)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The error for a setting whose layer (of `layers`: [`LAYERS`]) this build does not
/// have: it names the setting and the feature to build with.
pub(crate) fn refused(layers: &[Layer], config: &Config) -> Result<(), String> {
    for layer in layers.iter().filter(|l| !l.built) {
        if let Some(field) = (layer.set)(config) {
            return Err(format!(
                "`{field}` needs the layer \"{0}\", which this tinyws was built without; rebuild it with `cargo build --release --features {0}`",
                layer.feature
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layer as if this build had none of them.
    fn unbuilt() -> Vec<Layer> {
        LAYERS
            .iter()
            .map(|l| Layer {
                feature: l.feature,
                built: false,
                set: l.set,
            })
            .collect()
    }

    #[test]
    fn a_setting_of_a_layer_not_built_names_the_feature_to_build_with() {
        let none = unbuilt();
        assert_eq!(refused(&none, &Config::default()), Ok(()));
        let e = refused(&none, &Config::default().static_dir("www")).unwrap_err();
        assert_eq!(
            e,
            "`static_dir` needs the layer \"static\", which this tinyws was built without; rebuild it with `cargo build --release --features static`"
        );
        let e = refused(&none, &Config::default().stdout(true)).unwrap_err();
        assert!(e.starts_with("`stdout` needs the layer \"pipes\""), "{e}");
        let tls = Config::default().tls_cert("c.pem").tls_key("k.pem");
        let e = refused(&none, &tls).unwrap_err();
        assert!(e.contains("--features tls"), "{e}");
        // Built: nothing to refuse.
        assert_eq!(refused(&LAYERS[..0], &tls), Ok(()));
    }
}
