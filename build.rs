//! Build script: the version string every part of asfcast reports (`--version`, the HTTP and
//! RTSP `Server:` header, `GET /v1/version`, the client logs' `#Software`, `asfcast ctl`'s
//! `User-Agent`) is `ASFCAST_VERSION` when set at build time (image/build stamps the images it
//! makes, image/test builds a second version with it), else the crate's version. It is passed
//! to the crate as `ASFCAST_BUILD_VERSION`, so `concat!` can use it in constants.

fn main() {
    println!("cargo:rerun-if-env-changed=ASFCAST_VERSION");
    let version = match std::env::var("ASFCAST_VERSION") {
        Ok(v) => v,
        Err(_) => std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
    };
    let printable = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if !printable {
        panic!("ASFCAST_VERSION must be printable ASCII without spaces or quotes: {version:?}");
    }
    println!("cargo:rustc-env=ASFCAST_BUILD_VERSION={version}");
}
