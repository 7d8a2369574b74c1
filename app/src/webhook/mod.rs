//! What GitHub sends: the signature over a delivery's body, and the few fields of each event
//! that evalgate acts on, parsed into our own small structs (GitHub adds actions and fields
//! over time; a payload type that failed on those would drop deliveries).

pub mod events;
pub mod signature;

pub use events::{Event, parse_delivery, parse_event};
