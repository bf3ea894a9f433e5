//! ASF core (stub, filled in by the ASF work).
