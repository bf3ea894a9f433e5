//! The .asx announcement: the file a web page links to so that Windows Media Player opens the
//! station, trying the multicast first and the unicast URLs after it.
//!
//! Facts followed (see `docs/protocols/msb-nsc.md` §3):
//! - the file MUST begin with `<ASX`; `VERSION="3.0"`;
//! - several `REF` elements inside one `ENTRY` are tried in document order (URL rollover), and
//!   WMP applies its own protocol rollover to each `mms://` URL before moving on;
//! - the multicast is announced by a `REF` to the .nsc over HTTP.
//!
//! Every value is XML-escaped; characters XML 1.0 forbids (C0 controls other than tab, CR, LF)
//! are dropped. Lines end with CRLF like the .nsc.

/// XML-escapes `s` for element text and double-quoted attributes.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\r' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Writes the announcement: one `ENTRY` whose `REF`s are the .nsc URL first, then
/// `rollover_urls` in the given order (typically `mms://`, `rtsp://`, `http://`).
pub fn asx(title: &str, nsc_url: &str, rollover_urls: &[String]) -> String {
    let mut out = String::new();
    out.push_str("<ASX VERSION=\"3.0\">\r\n");
    out.push_str("  <TITLE>");
    out.push_str(&xml_escape(title));
    out.push_str("</TITLE>\r\n");
    out.push_str("  <ENTRY>\r\n");
    for url in std::iter::once(nsc_url).chain(rollover_urls.iter().map(String::as_str)) {
        out.push_str("    <REF HREF=\"");
        out.push_str(&xml_escape(url));
        out.push_str("\" />\r\n");
    }
    out.push_str("  </ENTRY>\r\n");
    out.push_str("</ASX>\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_output() {
        let got = asx(
            "Radio <One> & \"Friends\"",
            "http://10.0.0.1:8080/radio.nsc",
            &[
                "mms://10.0.0.1/radio".to_string(),
                "rtsp://10.0.0.1/radio".to_string(),
                "http://10.0.0.1:8080/radio?a=1&b=2".to_string(),
            ],
        );
        let want = "<ASX VERSION=\"3.0\">\r\n\
                    \x20 <TITLE>Radio &lt;One&gt; &amp; &quot;Friends&quot;</TITLE>\r\n\
                    \x20 <ENTRY>\r\n\
                    \x20   <REF HREF=\"http://10.0.0.1:8080/radio.nsc\" />\r\n\
                    \x20   <REF HREF=\"mms://10.0.0.1/radio\" />\r\n\
                    \x20   <REF HREF=\"rtsp://10.0.0.1/radio\" />\r\n\
                    \x20   <REF HREF=\"http://10.0.0.1:8080/radio?a=1&amp;b=2\" />\r\n\
                    \x20 </ENTRY>\r\n\
                    </ASX>\r\n";
        assert_eq!(got, want);
        assert!(got.starts_with("<ASX"));
    }

    #[test]
    fn nsc_only_and_escaping() {
        let got = asx("it's", "http://h/x.nsc", &[]);
        assert_eq!(
            got,
            "<ASX VERSION=\"3.0\">\r\n  <TITLE>it&apos;s</TITLE>\r\n  <ENTRY>\r\n    <REF HREF=\"http://h/x.nsc\" />\r\n  </ENTRY>\r\n</ASX>\r\n"
        );
        assert_eq!(xml_escape("a\u{1}b\u{7}c"), "abc");
    }
}
