//! Raw-HTTP smoke tests.
