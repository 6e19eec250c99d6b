//! The little HTTP/1.1 both sides of the SMS example need: splitting a message's head (start
//! line and headers) from its body. Deliberately minimal: the examples run only on loopback
//! against each other; a real plugin would use a full HTTP client.

/// A start line (request or status line) and its headers, names lower-cased.
pub struct Head {
    /// The request line or status line.
    pub start: String,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where the head ends (the index of the blank line's `\r\n\r\n`), if it is complete.
pub fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The head of a message and what follows it, if the head is complete and well-formed.
pub fn split_head(raw: &[u8]) -> Option<(Head, &[u8])> {
    let end = head_end(raw)?;
    let text = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let start = lines.next()?.to_owned();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((Head { start, headers }, &raw[end + 4..]))
}
