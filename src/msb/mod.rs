//! MS-MSB packetizer (stub, filled in by the MSB work).
