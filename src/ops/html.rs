//! HTML escaping for the status pages: every text that came from a client (user agents) or
//! from the configuration goes through [`escape`] before it reaches a page.

/// Escapes `& < > " '` for use in HTML text and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters kept).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Only player and web URLs become links (never `javascript:` or `data:`).
pub fn is_player_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    [
        "mms://", "mmsh://", "mmst://", "mmsu://", "rtsp://", "rtspt://", "rtspu://", "http://",
        "https://",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\"\u{7}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\u{FFFD}"
        );
        assert_eq!(path_segment("a b&c"), "a%20b%26c");
        assert!(!is_player_url("javascript:alert(1)"));
        assert!(is_player_url("MMS://x/y"));
    }
}
