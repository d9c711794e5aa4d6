//! A connection's name on its log lines ([`Tag`]): formatted where a line is written.

/// How a connection's log lines name it: `#7`, or `sensors #7` for a server with a
/// `Config::name`. Formatted where the line is, no string kept per connection.
#[derive(Clone, Copy)]
pub(crate) struct Tag<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) id: u64,
}

impl std::fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name {
            Some(name) => write!(f, "{name} #{}", self.id),
            None => write!(f, "#{}", self.id),
        }
    }
}
