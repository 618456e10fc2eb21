//! Integration tests of the reference server, one test binary for the crate.
//! Every test starts its own server on a free loopback port.

/// Raw WebSocket clients: routing, keepalive, bad frames, oversize input, stalled readers.
mod socket;
