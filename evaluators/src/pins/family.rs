//! Families of snapshots.
use crate::snapshot::Provider;

/// The family of `id`.
pub fn family(provider: Provider, id: &str) -> Option<String> {
    let _ = (provider, id);
    None
}

/// Whether `id` may ever be proposed.
pub fn proposable(provider: Provider, id: &str) -> bool {
    family(provider, id).is_some()
}
