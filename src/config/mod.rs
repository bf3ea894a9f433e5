//! Station configuration (stub, filled in by the config work).
