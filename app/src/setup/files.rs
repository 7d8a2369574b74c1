//! The two files `evalgate setup` writes in the current folder: `evalgate.toml` (read by every
//! later `evalgate` run in that folder) and the App's private key. Neither is ever overwritten;
//! each is written to a temporary file of mode 0600 beside it, synced, then moved into place
//! only if the name is still free, so a failure leaves nothing half-written.

use super::SetupError;
use super::exchange::Conversion;
use crate::settings::SETTINGS_FILE;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The private key's file name, beside `evalgate.toml` (which names it by this relative path).
pub const KEY_FILE: &str = "evalgate-private-key.pem";

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub settings: PathBuf,
    pub key: PathBuf,
}

/// Refuses when either file is already in `dir` (checked before the flow starts, and again,
/// atomically, when writing).
pub fn refuse_existing(dir: &Path) -> Result<(), SetupError> {
    for name in [SETTINGS_FILE, KEY_FILE] {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(SetupError::Exists(path));
        }
    }
    Ok(())
}

/// The settings `evalgate serve` needs, as `evalgate.toml` holds them.
pub fn settings_toml(c: &Conversion, public_url: &str, github_api_url: &str) -> String {
    let app = format!("{} ({})", c.slug, c.html_url);
    let owner = c.owner.as_deref().map(|o| format!(", owned by {o}")).unwrap_or_default();
    format!(
        "# Written by `evalgate setup` for the GitHub App {app}{owner}.\n\
         # `evalgate serve` reads it from this folder; the environment overrides any of these.\n\
         EVALGATE_APP_ID = {id}\n\
         EVALGATE_WEBHOOK_SECRET = {secret}\n\
         EVALGATE_PRIVATE_KEY_PATH = {key}\n\
         # The App's webhook and links were registered under this address, on this GitHub.\n\
         EVALGATE_PUBLIC_URL = {public}\n\
         EVALGATE_GITHUB_API_URL = {api}\n",
        app = comment(&app),
        owner = comment(&owner),
        id = c.id,
        secret = toml_string(c.webhook_secret.expose()),
        key = toml_string(KEY_FILE),
        public = toml_string(public_url),
        api = toml_string(github_api_url),
    )
}

/// Writes the key, then the settings; if the settings cannot be written the key is removed again.
pub fn write(dir: &Path, c: &Conversion, public_url: &str, github_api_url: &str) -> Result<Written, SetupError> {
    let key = dir.join(KEY_FILE);
    let settings = dir.join(SETTINGS_FILE);
    let mut pem = c.pem.expose().to_owned();
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    write_new(&key, pem.as_bytes())?;
    if let Err(e) = write_new(&settings, settings_toml(c, public_url, github_api_url).as_bytes()) {
        let _ = std::fs::remove_file(&key);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Written { settings, key })
}

/// `bytes` at `path`, mode 0600 from creation, never replacing a file already there.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SetupError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let failed = |e: std::io::Error| SetupError::Write(path.to_path_buf(), e);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".evalgate-setup-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(failed)?;
    tmp.write_all(bytes).map_err(failed)?;
    tmp.as_file().sync_all().map_err(failed)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            SetupError::Exists(path.to_path_buf())
        } else {
            failed(e.error)
        }
    })?;
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a `#` comment: one line.
fn comment(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use evaluators::provider::Secret;

    fn conversion(secret: &str, slug: &str) -> Conversion {
        Conversion {
            id: 123,
            slug: slug.into(),
            html_url: "https://github.com/apps/evalgate".into(),
            owner: Some("acme\nEVALGATE_APP_ID = 9".into()),
            pem: Secret::new("-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----"),
            webhook_secret: Secret::new(secret),
        }
    }

    #[test]
    fn evalgate_reads_back_what_setup_writes() {
        let text = settings_toml(&conversion("s\"e\\c\u{1}r", "evalgate"), "https://x.test", "https://api.x.test");
        let values = crate::settings::parse_file(&text).expect("a settings file evalgate reads");
        assert_eq!(values["EVALGATE_APP_ID"], "123");
        assert_eq!(values["EVALGATE_WEBHOOK_SECRET"], "s\"e\\c\u{1}r");
        assert_eq!(values["EVALGATE_PRIVATE_KEY_PATH"], KEY_FILE);
        assert_eq!(values["EVALGATE_PUBLIC_URL"], "https://x.test");
        assert_eq!(values["EVALGATE_GITHUB_API_URL"], "https://api.x.test");
        assert_eq!(values.len(), 5, "a comment cannot add a setting: {text}");
    }

    #[test]
    fn both_files_are_private_and_never_replace_one() {
        let dir = tempfile::tempdir().expect("dir");
        let written = write(dir.path(), &conversion("whsec", "evalgate"), "https://x.test", "https://api.x.test")
            .expect("written");
        #[cfg(unix)]
        for path in [&written.key, &written.settings] {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(path).expect("meta").permissions().mode() & 0o777, 0o600, "{path:?}");
        }
        assert!(std::fs::read_to_string(&written.key).expect("key").starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let again = write(dir.path(), &conversion("other", "evalgate"), "https://x.test", "https://api.x.test");
        assert!(matches!(again, Err(SetupError::Exists(p)) if p.ends_with(KEY_FILE)));
        assert!(std::fs::read_to_string(&written.settings).expect("toml").contains("whsec"));
        assert!(matches!(refuse_existing(dir.path()), Err(SetupError::Exists(_))));
    }

    #[test]
    fn a_settings_file_that_appears_meanwhile_leaves_no_key_behind() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(SETTINGS_FILE), "# mine\n").expect("write");
        let e = write(dir.path(), &conversion("whsec", "evalgate"), "https://x.test", "https://api.x.test");
        assert!(matches!(e, Err(SetupError::Exists(p)) if p.ends_with(SETTINGS_FILE)));
        assert!(!dir.path().join(KEY_FILE).exists());
        assert_eq!(std::fs::read_to_string(dir.path().join(SETTINGS_FILE)).expect("toml"), "# mine\n");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    }
}
