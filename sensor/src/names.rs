//! Names learned passively from DNS answers seen on the wire (skeleton; being written).

use flowtable::Timestamp;

/// A bounded IP → name cache shared by the capture thread (writer) and the workers (readers).
#[derive(Debug, Default)]
pub struct NameCache {}

impl NameCache {
    /// A cache of at most `capacity` addresses.
    pub fn new(_capacity: usize) -> NameCache {
        NameCache {}
    }

    /// A DNS response (UDP payload from port 53) seen at `now`.
    pub fn observe_response(&self, _message: &[u8], _now: Timestamp) {}
}
