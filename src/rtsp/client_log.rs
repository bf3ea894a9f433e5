//! Player logs over RTSP ([MS-RTSP] §2.2.7.6–7, §4.5.1; facts:
//! `docs/protocols/ingest-relay-ops.md` §d.2): a `SET_PARAMETER` in the session with
//! `Content-Type: application/x-wms-Logconnectstats` (the Connect-Time log, sent right after
//! PLAY) or `application/x-wms-Logplaystats` (the play log, after PAUSE or before TEARDOWN),
//! an [MS-WMLOG] XML body. Answered 200 with no body; a refused body gets its 4xx
//! ([`LogError::status`]). Any other SET_PARAMETER stays a keep-alive.

use crate::ops::wmlog_client::{
    is_content_type, parse_log_stats, ClientForm, ClientReport, LogError, LOG_CONNECT_STATS,
    LOG_PLAY_STATS,
};

/// What a SET_PARAMETER carries.
#[derive(Debug, PartialEq, Eq)]
pub enum SetParameter {
    /// Not a log (a keep-alive).
    NotALog,
    Log(Box<ClientReport>),
    Refused(LogError),
}

/// Classifies a SET_PARAMETER by its `Content-Type` and parses a log body.
pub fn set_parameter(content_type: Option<&str>, body: &[u8]) -> SetParameter {
    let form = match content_type {
        Some(t) if is_content_type(t, LOG_CONNECT_STATS) => ClientForm::RtspConnect,
        Some(t) if is_content_type(t, LOG_PLAY_STATS) => ClientForm::RtspPlay,
        _ => return SetParameter::NotALog,
    };
    match parse_log_stats(body) {
        Ok(record) => SetParameter::Log(Box::new(ClientReport {
            form,
            record,
            station: None,
            client_id: None,
        })),
        Err(e) => SetParameter::Refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_bodies_by_content_type() {
        let body =
            b"<XML><Summary></Summary><c-os>Windows_XP</c-os><transport>TCP</transport></XML>";
        let SetParameter::Log(r) = set_parameter(
            Some("application/x-wms-Logconnectstats;charset=UTF-8"),
            body,
        ) else {
            panic!("a connect-time log");
        };
        assert_eq!(r.form, ClientForm::RtspConnect);
        assert_eq!(r.record.get("c-os"), Some("Windows_XP"));
        assert!(matches!(
            set_parameter(Some("application/x-wms-Logplaystats"), b"<XML>"),
            SetParameter::Refused(LogError::Malformed(_))
        ));
        assert_eq!(
            set_parameter(Some("text/parameters"), b"x"),
            SetParameter::NotALog
        );
        assert_eq!(set_parameter(None, b""), SetParameter::NotALog);
    }
}
