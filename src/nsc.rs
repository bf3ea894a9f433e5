//! .nsc announcements (stub, filled in by the NSC work).
