//! What players send about their own playback, in the three forms the server accepts
//! (`docs/protocols/ingest-relay-ops.md` §d.2), parsed into a [`Record`] to merge with the
//! server's ([`super::wmlog::merge`]):
//!
//! - the WMSP Log request ([MS-WMSP] §2.2.2.4, §3.2.5.11): a `POST` with
//!   `Content-Type: application/x-wms-LogStats` and an XML body ([`parse_log_stats`]), or with
//!   `Pragma: log-line=<legacy W3C line>` and no body ([`parse_log_line`]);
//! - RTSP `SET_PARAMETER` with `application/x-wms-Logconnectstats` (the Connect-Time log) or
//!   `application/x-wms-Logplaystats` ([MS-RTSP] §2.2.7.6–7): the same XML ([`parse_log_stats`]);
//! - the multicast logging agent ([MS-WMLOG] §2.3, §3.6): `MX_STATS_LogLine: <TAB><line>`
//!   ([`parse_mx_stats`]).
//!
//! The XML form is `<XML><Summary>legacy line</Summary><c-ip>…</c-ip>…</XML>` ([MS-WMLOG] §2.4):
//! the summary line first, then the root's direct children named like fields override it.
//! The reader here is deliberately small: no DTD, no entity definitions, no processing
//! instructions beyond the `<?xml?>` declaration, no comments or CDATA — so there is nothing
//! to expand (no XML bomb) — bounded in size ([`MAX_LOG_BODY`]), depth and element count.
//! Values are checked as [MS-WMLOG] §4 asks (numbers numeric, no control characters in a
//! line) and sanitized like every written value ([`super::wmlog::escape`]).

use super::wmlog::{escape, field_index, is_numeric, Record, FIELDS};

/// Largest log body accepted (a WMP play log is about 3 KB: the spec example's 2759 bytes).
pub const MAX_LOG_BODY: usize = 16 * 1024;
/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 8;
/// Most elements accepted in one body.
const MAX_ELEMENTS: usize = 256;
/// Field counts a legacy line may have: 44, the 47-field form, the 52-field rendering form.
const LINE_FIELDS: [usize; 3] = [44, 47, 52];

/// Content types of the client log bodies.
pub const LOG_STATS: &str = "application/x-wms-logstats";
pub const LOG_CONNECT_STATS: &str = "application/x-wms-logconnectstats";
pub const LOG_PLAY_STATS: &str = "application/x-wms-logplaystats";
/// The multicast agent's body prefix.
pub const MX_STATS_PREFIX: &str = "MX_STATS_LogLine:";
/// The multicast logging agent's well-known path.
pub const ISAPI_LOG_PATH: &str = "/wmsiislog.dll";
/// What the agent's GET answers: players only post after seeing this ([MS-WMLOG] §3.6).
pub const ISAPI_BANNER: &str = "<html><head><title>WMS ISAPI Log Dll/9.00.00.3372</title></head><body><h1>WMS ISAPI Log Dll/9.00.00.3372</h1></body></html>";

/// Which form a report came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientForm {
    /// MMSH POST, `application/x-wms-LogStats` XML.
    LogStats,
    /// MMSH POST, `Pragma: log-line=`.
    LogLine,
    /// RTSP SET_PARAMETER, Connect-Time log.
    RtspConnect,
    /// RTSP SET_PARAMETER, play log.
    RtspPlay,
    /// The multicast logging agent (`MX_STATS_LogLine`).
    Multicast,
}

impl ClientForm {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientForm::LogStats => "logstats",
            ClientForm::LogLine => "log-line",
            ClientForm::RtspConnect => "logconnectstats",
            ClientForm::RtspPlay => "logplaystats",
            ClientForm::Multicast => "mx_stats",
        }
    }
}

/// A player's report, as a session hands it to the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientReport {
    pub form: ClientForm,
    pub record: Record,
    /// The station the report was sent for (the POST's path), when the session has none.
    pub station: Option<String>,
    /// The MMSH `client-id` the POST carried (`Pragma: client-id=<n>`): the session it reports
    /// on, when that session's connection has already ended.
    pub client_id: Option<u32>,
}

/// Why a client log was refused. [`LogError::status`] is the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("log body of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("log body is not UTF-8")]
    NotUtf8,
    #[error("log XML refused: {0} not accepted")]
    Markup(&'static str),
    #[error("log XML nests deeper than {0} elements")]
    TooDeep(usize),
    #[error("log XML has more than {0} elements")]
    TooManyElements(usize),
    #[error("malformed log: {0}")]
    Malformed(&'static str),
    #[error("log line has {0} fields (44, 47 or 52 expected)")]
    FieldCount(usize),
    #[error("log field {0} is not a number")]
    NotNumber(&'static str),
    #[error("log line contains a control character")]
    ControlChar,
}

impl LogError {
    /// The status that answers it: 413 for a body over the limit, else 400.
    pub fn status(&self) -> u16 {
        match self {
            LogError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// Is `content_type` (parameters allowed) the given log type?
pub fn is_content_type(content_type: &str, wanted: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(wanted))
}

/// A legacy W3C line (`Pragma: log-line=`, the XML summary, the agent's line).
pub fn parse_log_line(line: &str) -> Result<Record, LogError> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(LogError::ControlChar);
    }
    let values: Vec<&str> = line.split_ascii_whitespace().collect();
    if !LINE_FIELDS.contains(&values.len()) {
        return Err(LogError::FieldCount(values.len()));
    }
    let mut r = Record::new();
    for (field, value) in FIELDS.iter().zip(values) {
        set_checked(&mut r, field, value)?;
    }
    Ok(r)
}

/// An XML log body (`application/x-wms-LogStats`, `…-Logconnectstats`, `…-Logplaystats`).
pub fn parse_log_stats(body: &[u8]) -> Result<Record, LogError> {
    let text = body_text(body)?;
    let (root, children) = read_xml(text)?;
    if !root.eq_ignore_ascii_case("XML") {
        return Err(LogError::Malformed("the root element is not <XML>"));
    }
    let mut r = match children
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Summary"))
    {
        Some((_, s)) if !s.trim().is_empty() => parse_log_line(s.trim())?,
        _ => Record::new(),
    };
    for (name, value) in &children {
        if let Some(i) = field_index(name) {
            set_checked(&mut r, FIELDS[i], value.trim())?;
        }
    }
    Ok(r)
}

/// The multicast agent's body: `MX_STATS_LogLine: <TAB><line>`, one line (a trailing line end
/// allowed; any other CR or LF is refused — it could only be an attempt at a second record).
pub fn parse_mx_stats(body: &[u8]) -> Result<Record, LogError> {
    let text = body_text(body)?;
    let text = text.trim_start();
    let rest = match text.get(..MX_STATS_PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(MX_STATS_PREFIX) => {
            text.get(MX_STATS_PREFIX.len()..).unwrap_or_default()
        }
        _ => return Err(LogError::Malformed("no MX_STATS_LogLine prefix")),
    };
    let rest = rest.strip_suffix('\n').unwrap_or(rest);
    let rest = rest.strip_suffix('\r').unwrap_or(rest);
    parse_log_line(rest.trim_matches([' ', '\t']))
}

fn body_text(body: &[u8]) -> Result<&str, LogError> {
    if body.len() > MAX_LOG_BODY {
        return Err(LogError::TooLarge {
            len: body.len(),
            limit: MAX_LOG_BODY,
        });
    }
    std::str::from_utf8(body).map_err(|_| LogError::NotUtf8)
}

/// Sets a client value: numbers must be numbers; the value is sanitized.
fn set_checked(r: &mut Record, field: &'static str, value: &str) -> Result<(), LogError> {
    if is_numeric(field) && value != "-" && !value.is_empty() && !is_number(value) {
        return Err(LogError::NotNumber(field));
    }
    r.set(field, escape(value));
    Ok(())
}

/// Digits with at most one `.` and an optional leading `-` (`c-rate` may be negative).
fn is_number(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty()
        && digits.len() <= 32
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit())
}

struct Open {
    name: String,
    text: String,
    has_child: bool,
}

/// Reads the XML subset: returns the root's name and its direct children that hold only
/// text, as (name, decoded text).
fn read_xml(text: &str) -> Result<(String, Vec<(String, String)>), LogError> {
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    if rest.starts_with("<?xml") {
        let end = rest
            .find("?>")
            .ok_or(LogError::Malformed("unterminated XML declaration"))?;
        rest = rest.get(end + 2..).unwrap_or_default();
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut children = Vec::new();
    let mut root: Option<String> = None;
    let mut elements = 0usize;
    loop {
        let lt = rest.find('<');
        let chunk = lt.map_or(rest, |i| rest.get(..i).unwrap_or_default());
        match stack.last_mut() {
            Some(top) => {
                if top.text.len() + chunk.len() > MAX_LOG_BODY {
                    return Err(LogError::Malformed("text too long"));
                }
                top.text.push_str(chunk);
            }
            None if !chunk.trim().is_empty() => {
                return Err(LogError::Malformed("text outside the root element"))
            }
            None => {}
        }
        let Some(lt) = lt else { break };
        rest = rest.get(lt..).unwrap_or_default();
        if rest.starts_with("<!") {
            return Err(LogError::Markup("a DTD, comment or CDATA section"));
        }
        if rest.starts_with("<?") {
            return Err(LogError::Markup("a processing instruction"));
        }
        let gt = rest
            .find('>')
            .ok_or(LogError::Malformed("unterminated tag"))?;
        let tag = rest.get(1..gt).unwrap_or_default();
        rest = rest.get(gt + 1..).unwrap_or_default();
        if tag.contains('<') {
            return Err(LogError::Malformed("'<' inside a tag"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            let open = stack
                .pop()
                .ok_or(LogError::Malformed("unmatched end tag"))?;
            if open.name != name {
                return Err(LogError::Malformed("mismatched end tag"));
            }
            if stack.len() == 1 && !open.has_child {
                children.push((open.name.clone(), decode(&open.text)?));
            }
            if stack.is_empty() {
                root = Some(open.name);
                if !rest.trim().is_empty() {
                    return Err(LogError::Malformed("content after the root element"));
                }
                break;
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = tag
            .trim_end_matches('/')
            .split(|c: char| c.is_ascii_whitespace())
            .next()
            .unwrap_or_default();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:()".contains(c))
        {
            return Err(LogError::Malformed("bad element name"));
        }
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(LogError::TooManyElements(MAX_ELEMENTS));
        }
        if let Some(parent) = stack.last_mut() {
            parent.has_child = true;
        } else if root.is_some() {
            return Err(LogError::Malformed("two root elements"));
        }
        if self_closing {
            if stack.len() == 1 {
                children.push((name.to_string(), String::new()));
            }
            if stack.is_empty() {
                root = Some(name.to_string());
                break;
            }
            continue;
        }
        if stack.len() >= MAX_DEPTH {
            return Err(LogError::TooDeep(MAX_DEPTH));
        }
        stack.push(Open {
            name: name.to_string(),
            text: String::new(),
            has_child: false,
        });
    }
    if !stack.is_empty() {
        return Err(LogError::Malformed("unclosed element"));
    }
    let root = root.ok_or(LogError::Malformed("no root element"))?;
    Ok((root, children))
}

/// Decodes the five predefined entities and character references; nothing else exists.
fn decode(text: &str) -> Result<String, LogError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        rest = rest.get(amp..).unwrap_or_default();
        let semi = rest
            .find(';')
            .filter(|&i| i <= 12)
            .ok_or(LogError::Malformed("unterminated entity"))?;
        let entity = rest.get(1..semi).unwrap_or_default();
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            e => {
                let code = if let Some(h) = e.strip_prefix("#x").or_else(|| e.strip_prefix("#X")) {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = e.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    return Err(LogError::Markup("an entity reference"));
                };
                code.and_then(char::from_u32)
                    .ok_or(LogError::Malformed("bad character reference"))?
            }
        };
        out.push(c);
        rest = rest.get(semi + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[path = "wmlog_client_tests.rs"]
mod tests;
