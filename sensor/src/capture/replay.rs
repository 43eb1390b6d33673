//! Offline capture reading. STUB: being implemented by a helper.
