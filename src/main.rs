//! The `asfcast` command line.

fn main() {
    println!("asfcast {}", env!("CARGO_PKG_VERSION"));
}
