//! Which HTTP a client on a station path speaks: MMS over HTTP ([MS-WMSP], `$`-framed chunks)
//! or plain HTTP (a progressive ASF byte stream). The generated `.asx` ends with
//! `http://box/<station>`, and players that do not speak [MS-WMSP] (mpv, GStreamer's
//! `souphttpsrc`, a browser plug-in) fetch it with an ordinary GET; answered as MMSH they got
//! one `$H` chunk and nothing else.
//!
//! # The rule
//!
//! A GET or HEAD is **MMSH** when either
//! - its `User-Agent` starts with an [MS-WMSP] client token — `NSPlayer`, `NSServer` or
//!   `WMCacheProxy` ([MS-WMSP] §2.2.1.8 allows only these three), or
//! - a `Pragma` field carries a token only [MS-WMSP] defines: `xClientGUID`, `xPlayStrm`,
//!   `xPlayNextEntry`, `pipeline-request`, `stream-switch-entry`, `stream-switch-count`,
//!   `request-context`, `client-id`;
//!
//! and **plain** otherwise. `Pragma: no-cache` alone (HTTP/1.0 caches, browsers on reload)
//! proves nothing, and is not counted. A WMSP-looking request is never served the plain
//! stream: the MMSH clients depend on the chunk framing, while a plain client that somehow
//! sent one of these tokens would at worst get the header (the old behaviour).
//!
//! # The evidence (what each client sends)
//!
//! | client | `User-Agent` | WMSP `Pragma` |
//! |---|---|---|
//! | FFmpeg `mmsh://` (libavformat/mmsh.c, both requests) | `NSPlayer/4.1.0.3856` | `xClientGUID`, `request-context`; Play: `xPlayStrm=1`, `stream-switch-*` |
//! | VLC `mmsh://` and `mms://` rollover (modules/access/mms/mmsh.c) | `NSPlayer/7.10.0.3059` | `xClientGUID`, `request-context`; Play: `xPlayStrm=1`, `stream-switch-*` |
//! | libmms (mmsh.c, Describe and Play) | `NSPlayer/4.1.0.3856` | `xClientGUID`, `request-context`; Play: `xPlayStrm=1` |
//! | Windows Media Player 6.4–12 (MS-WMSP §2.2.1.8, §4 examples) | `NSPlayer/<major>.<minor>…` | `xClientGUID` |
//! | WMS distribution server / cache proxy | `NSServer/…`, `WMCacheProxy/…` | `xClientGUID` |
//! | mpv, ffmpeg/ffprobe `http://` (libavformat/http.c) | `Lavf/<version>` | none |
//! | GStreamer `souphttpsrc` | `GStreamer souphttpsrc <version> libsoup/<version>` | none |
//! | VLC `http://` (modules/access/http) | `VLC/<version> LibVLC/<version>` | none |
//! | curl, browsers | `curl/…`, `Mozilla/5.0 …` | none (a reload may add `Pragma: no-cache`) |
//!
//! Every MMSH client sends both signs, so either one suffices; the User-Agent alone also
//! catches a WMSP client whose `Pragma` fields a proxy dropped, and the `Pragma` alone a
//! client with a changed User-Agent (FFmpeg's `-user_agent` does not reach its mmsh requests,
//! but tools built on libmms may set their own).

use super::request::Request;

/// The client tokens [MS-WMSP] §2.2.1.8 allows as the first product of `User-Agent`.
const WMSP_AGENTS: [&str; 3] = ["NSPlayer", "NSServer", "WMCacheProxy"];

/// `Pragma` tokens only [MS-WMSP] defines (§2.2.1.4).
const WMSP_PRAGMAS: [&str; 8] = [
    "xClientGUID",
    "xPlayStrm",
    "xPlayNextEntry",
    "pipeline-request",
    "stream-switch-entry",
    "stream-switch-count",
    "request-context",
    "client-id",
];

/// The HTTP a client on a station path speaks; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MMS over HTTP: Describe/Play and `$`-framed chunks ([`super::mmsh`]).
    Mmsh,
    /// Plain HTTP: one progressive ASF stream ([`super::plain_stream`]).
    Plain,
}

/// Which HTTP `request` speaks; see the module doc for the rule and the evidence.
pub fn dialect(request: &Request) -> Dialect {
    let agent_is_wmsp = request.header("user-agent").is_some_and(|ua| {
        let product = ua.trim_start().split(['/', ' ']).next().unwrap_or_default();
        WMSP_AGENTS.iter().any(|t| product.eq_ignore_ascii_case(t))
    });
    let pragma_is_wmsp = request.pragmas().iter().any(|(key, _)| {
        WMSP_PRAGMAS
            .iter()
            .any(|t| key.trim().eq_ignore_ascii_case(t))
    });
    if agent_is_wmsp || pragma_is_wmsp {
        Dialect::Mmsh
    } else {
        Dialect::Plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::RequestReader;

    fn req(bytes: &[u8]) -> Request {
        RequestReader::new(8192)
            .feed(bytes)
            .expect("a valid request")
            .expect("a complete request")
    }

    /// Request heads as the real clients send them (captured shapes; see the module doc).
    const HEADS: &[(&str, &[u8], Dialect)] = &[
        (
            "FFmpeg mmsh Describe",
            b"GET /demo HTTP/1.1\r\nRange: bytes=0-\r\nIcy-MetaData: 1\r\nAccept: */*\r\n\
User-Agent: NSPlayer/4.1.0.3856\r\nHost: 127.0.0.1:8080\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\
Pragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\nConnection: Close\r\n\r\n",
            Dialect::Mmsh,
        ),
        (
            "FFmpeg mmsh Play (run-on last Pragma)",
            b"GET /demo HTTP/1.1\r\nRange: bytes=0-\r\nIcy-MetaData: 1\r\nAccept: */*\r\n\
User-Agent: NSPlayer/4.1.0.3856\r\nHost: 127.0.0.1:8080\r\n\
Pragma: no-cache,rate=1.000000,request-context=2\r\nPragma: xPlayStrm=1\r\n\
Pragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\nPragma: stream-switch-count=2\r\n\
Pragma: stream-switch-entry=ffff:1:0 ffff:2:0 \r\n\
Pragma: no-cache,rate=1.000000,stream-time=0Connection: Close\r\n\r\n",
            Dialect::Mmsh,
        ),
        (
            "VLC mmsh Describe",
            b"GET /demo HTTP/1.0\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\
User-Agent: NSPlayer/7.10.0.3059\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\
Pragma: xClientGUID={3300ad50-2c39-46c0-ae0a-1a2b3c4d5e6f}\r\nConnection: Close\r\n\r\n",
            Dialect::Mmsh,
        ),
        (
            "libmms Describe",
            b"GET /demo HTTP/1.0\r\nAccept: */*\r\nUser-Agent: NSPlayer/4.1.0.3856\r\n\
Host: 127.0.0.1:8080\r\n\
Pragma: no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0\r\n\
Pragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\nConnection: Close\r\n\r\n",
            Dialect::Mmsh,
        ),
        (
            "WMP 11",
            b"GET /demo HTTP/1.1\r\nAccept: */*\r\nUser-Agent: NSPlayer/11.0.5721.5145 WMFSDK/11.0\r\n\
Host: box\r\nPragma: xClientGUID={3300ad50-2c39-46c0-ae0a-1a2b3c4d5e6f}\r\n\
Supported: com.microsoft.wm.srvppair, com.microsoft.wm.sswitch, com.microsoft.wm.predstrm\r\n\r\n",
            Dialect::Mmsh,
        ),
        (
            "NSPlayer with Accept */* and no Pragma",
            b"GET /demo HTTP/1.0\r\nAccept: */*\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\r\n",
            Dialect::Mmsh,
        ),
        (
            "WMS cache proxy",
            b"GET /demo HTTP/1.1\r\nHost: box\r\nUser-Agent: WMCacheProxy/9.5\r\n\r\n",
            Dialect::Mmsh,
        ),
        (
            "WMSP Pragma with another User-Agent",
            b"GET /demo HTTP/1.1\r\nHost: box\r\nUser-Agent: mytool/1.0\r\n\
Pragma: xClientGUID={3300ad50-2c39-46c0-ae0a-1a2b3c4d5e6f}\r\n\r\n",
            Dialect::Mmsh,
        ),
        (
            "mpv / ffmpeg http://",
            b"GET /demo HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\n\
Range: bytes=0-\r\nConnection: close\r\nHost: 127.0.0.1:8080\r\nIcy-MetaData: 1\r\n\r\n",
            Dialect::Plain,
        ),
        (
            "GStreamer souphttpsrc",
            b"GET /demo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
User-Agent: GStreamer souphttpsrc 1.22.0 libsoup/3.2.2\r\nIcy-MetaData: 1\r\n\
Accept-Encoding: identity\r\nConnection: Keep-Alive\r\n\r\n",
            Dialect::Plain,
        ),
        (
            "VLC http://",
            b"GET /demo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\
Accept-Language: en_US\r\nUser-Agent: VLC/3.0.24 LibVLC/3.0.24\r\nRange: bytes=0-\r\n\r\n",
            Dialect::Plain,
        ),
        (
            "browser reload (Pragma: no-cache only)",
            b"GET /demo HTTP/1.1\r\nHost: box\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\
Pragma: no-cache\r\nCache-Control: no-cache\r\n\r\n",
            Dialect::Plain,
        ),
        (
            "curl",
            b"GET /demo HTTP/1.1\r\nHost: box\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
            Dialect::Plain,
        ),
        (
            "no User-Agent at all",
            b"GET /demo HTTP/1.0\r\n\r\n",
            Dialect::Plain,
        ),
        (
            "NSPlayer only later in the User-Agent",
            b"GET /demo HTTP/1.1\r\nHost: box\r\nUser-Agent: Mozilla/5.0 NSPlayer/9.0\r\n\r\n",
            Dialect::Plain,
        ),
    ];

    #[test]
    fn real_request_heads_are_classified() {
        for (client, head, want) in HEADS {
            assert_eq!(dialect(&req(head)), *want, "{client}");
        }
    }

    #[test]
    fn tokens_are_case_insensitive() {
        let r = req(b"GET /demo HTTP/1.0\r\nUser-Agent: nsplayer/9.0\r\n\r\n");
        assert_eq!(dialect(&r), Dialect::Mmsh);
        let r = req(b"GET /demo HTTP/1.0\r\nPragma: XCLIENTGUID={x}\r\n\r\n");
        assert_eq!(dialect(&r), Dialect::Mmsh);
    }
}
