//! Model-check tests: the default configurations pass with pinned state
//! counts, and each fault that concerns the core is caught.

/// Negative controls: each fault breaks the property it names.
mod faults;
/// The default check: every property holds, state counts pinned.
mod standard;
