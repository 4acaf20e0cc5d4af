//! The in-memory model: users, file tree, entities, DAV accounts, settings.

use super::events::EventHub;
use super::locks::LockTable;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Group permission bits and per-user switches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserFlags {
    /// Group bit 3.
    pub webdav: bool,
    /// Group bit 6.
    pub webdav_proxy: bool,
    /// Group bit 12.
    pub advance_delete: bool,
    /// Group bit 4 (archive download).
    pub archive: bool,
    /// A fixed OTP code; `Some` enables 2FA.
    pub otp: Option<String>,
    /// Banned user.
    pub banned: bool,
    /// Not activated.
    pub inactive: bool,
}

impl Default for UserFlags {
    fn default() -> Self {
        Self {
            webdav: true,
            webdav_proxy: true,
            advance_delete: false,
            archive: false,
            otp: None,
            banned: false,
            inactive: false,
        }
    }
}

/// A user account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct User {
    /// Raw id.
    pub id: u64,
    /// E-mail (login name).
    pub email: String,
    /// Password (plain, emulator only).
    pub password: String,
    /// Display name.
    pub nickname: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Permissions and switches.
    pub flags: UserFlags,
    /// Quota in bytes.
    pub quota: i64,
    /// Used bytes (includes trash and old versions).
    pub used: i64,
    /// Root folder id.
    pub root: u64,
    /// Trash: uuid name → file id.
    pub trash: BTreeMap<String, u64>,
}

/// A file or folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Node {
    /// Raw id.
    pub id: u64,
    /// Owner user id.
    pub owner: u64,
    /// Parent folder; `None` for roots and trash items.
    pub parent: Option<u64>,
    /// Name (a UUID for trash items; empty for the root).
    pub name: String,
    /// Folder?
    pub folder: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last row update.
    pub updated_at: DateTime<Utc>,
    /// Size of the current version.
    pub size: i64,
    /// Current version entity (0 = none).
    pub primary: u64,
    /// Public metadata.
    pub metadata: BTreeMap<String, String>,
    /// In the trash (as a top-level trash item)?
    pub trashed: bool,
    /// Children keyed by normalised name.
    #[serde(skip)]
    pub children: BTreeMap<String, u64>,
}

/// A stored blob version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Entity {
    /// Raw id.
    pub id: u64,
    /// Size in bytes.
    pub size: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Number of files referencing it.
    pub refs: u32,
    /// Stored encrypted with this key (an encrypting policy).
    #[serde(default)]
    pub key: Option<super::crypt::EntityKey>,
}

/// A WebDAV account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DavAccount {
    /// Raw id.
    pub id: u64,
    /// Owner.
    pub owner: u64,
    /// Name.
    pub name: String,
    /// Root URI.
    pub uri: String,
    /// Generated password.
    pub password: String,
    /// Option bits (0 readonly, 1 proxy, 2 disable sys files).
    pub options: Vec<u8>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// The storage policy type the emulator pretends to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PolicyKind {
    /// Local storage: chunks accepted.
    #[default]
    Local,
    /// A remote policy with relay on: single chunk.
    Relay,
    /// A non-local non-relay policy (S3): chunk POSTs give 40006.
    S3,
}

/// Server settings and test switches (not persisted).
#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// Sign-in captcha.
    pub captcha: bool,
    /// `maxEditSize`.
    pub max_edit_size: i64,
    /// Policy type.
    pub policy: PolicyKind,
    /// Policy chunk size.
    pub chunk_size: i64,
    /// The policy's `encryption` switch (4.10). Cloudreve encrypts on the
    /// client side, and only for clients that list a cipher; the emulator
    /// reports the switch and, like Cloudreve for a client that lists none,
    /// stores uploads as they come.
    pub policy_encryption: bool,
    /// List page cap.
    pub max_page_size: usize,
    /// Case-insensitive names.
    pub case_insensitive: bool,
    /// Access token TTL (s).
    pub access_ttl: i64,
    /// Refresh token TTL (s).
    pub refresh_ttl: i64,
    /// Signed URL TTL (s).
    pub url_ttl: i64,
    /// Upload session TTL (s).
    pub upload_ttl: i64,
    /// Trash retention (s).
    pub trash_retention: i64,
    /// Default quota for new users.
    pub default_quota: i64,
    /// Policy `max_size` (0 = unlimited).
    pub policy_max_size: i64,
    /// Group `max_walked_files`.
    pub max_walked_files: usize,
    /// `fs_event_push_enabled`: the change feed is served.
    pub events_enabled: bool,
    /// `fs_event_push_debounce`: how long a change waits for more.
    pub event_debounce: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            captcha: false,
            max_edit_size: 52_428_800,
            policy: PolicyKind::Local,
            chunk_size: 25 * 1024 * 1024,
            policy_encryption: false,
            max_page_size: 2000,
            case_insensitive: false,
            access_ttl: 3600,
            refresh_ttl: 1_209_600,
            url_ttl: 3600,
            upload_ttl: 86_400,
            trash_retention: 604_800,
            default_quota: 1 << 40,
            policy_max_size: 0,
            max_walked_files: 100_000,
            events_enabled: true,
            event_debounce: std::time::Duration::from_secs(5),
        }
    }
}

/// An open upload session.
#[derive(Debug, Clone)]
pub(super) struct UploadSession {
    /// Session id.
    pub id: String,
    /// Owner.
    pub owner: u64,
    /// Target file id (placeholder or existing file).
    pub file: u64,
    /// Total size.
    pub size: i64,
    /// Chunk size (0 = single chunk).
    pub chunk_size: i64,
    /// Expiry.
    pub expires: DateTime<Utc>,
    /// Lock token held for the session.
    pub lock: String,
    /// Whether the placeholder was created for this session.
    pub new_file: bool,
    /// Metadata applied on completion.
    pub metadata: BTreeMap<String, String>,
    /// Policy type at creation.
    pub policy: PolicyKind,
    /// The uploader's modification time (`last_modified`), kept as the
    /// file's `updated_at`.
    pub last_modified: Option<DateTime<Utc>>,
    /// The content key, on an encrypting policy.
    pub key: Option<super::crypt::EntityKey>,
    /// The client encrypts (it got the key); otherwise the server does.
    pub client_encrypts: bool,
}

/// Everything the emulator knows.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct State {
    /// Instance secret (JWT, signing, hashids).
    pub secret: Vec<u8>,
    /// Next raw ids.
    pub next_id: u64,
    /// Users by id.
    pub users: BTreeMap<u64, User>,
    /// Files by id.
    pub files: HashMap<u64, Node>,
    /// Entities by id.
    pub entities: HashMap<u64, Entity>,
    /// DAV accounts by id.
    pub dav: BTreeMap<u64, DavAccount>,
    /// Locks (not persisted).
    #[serde(skip)]
    pub locks: LockTable,
    /// Upload sessions (not persisted).
    #[serde(skip)]
    pub sessions: HashMap<String, UploadSession>,
    /// Revoked refresh-token roots.
    #[serde(skip)]
    pub revoked: HashSet<String>,
    /// Pending 2FA sign-ins: session id → (user, expiry).
    #[serde(skip)]
    pub twofa: HashMap<String, (u64, DateTime<Utc>)>,
    /// Settings (not persisted).
    #[serde(skip)]
    pub settings: Settings,
    /// Change-feed listeners (not persisted: Cloudreve too starts empty).
    #[serde(skip)]
    pub events: EventHub,
}

impl State {
    /// A fresh, empty state.
    pub(super) fn new() -> Self {
        use rand::RngCore;
        let mut secret = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        Self {
            secret,
            next_id: 1,
            users: BTreeMap::new(),
            files: HashMap::new(),
            entities: HashMap::new(),
            dav: BTreeMap::new(),
            locks: LockTable::default(),
            sessions: HashMap::new(),
            revoked: HashSet::new(),
            twofa: HashMap::new(),
            settings: Settings::default(),
            events: EventHub::default(),
        }
    }

    /// Allocates a raw id.
    pub(super) fn alloc(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Normalises a name into a children key.
    pub(super) fn key(&self, name: &str) -> String {
        if self.settings.case_insensitive {
            name.to_lowercase()
        } else {
            name.to_string()
        }
    }

    /// Rebuilds every children index (after load or a case-mode switch).
    pub(super) fn rebuild_children(&mut self) {
        let pairs: Vec<(u64, u64, String)> = self
            .files
            .values()
            .filter_map(|n| n.parent.map(|p| (p, n.id, n.name.clone())))
            .collect();
        for n in self.files.values_mut() {
            n.children.clear();
        }
        for (p, id, name) in pairs {
            let k = self.key(&name);
            if let Some(parent) = self.files.get_mut(&p) {
                parent.children.insert(k, id);
            }
        }
    }

    /// Finds a user by e-mail (case-insensitive).
    pub(super) fn user_by_email(&self, email: &str) -> Option<u64> {
        self.users
            .values()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .map(|u| u.id)
    }

    /// Adds a user with a root folder.
    pub(super) fn add_user(&mut self, email: &str, password: &str, now: DateTime<Utc>) -> u64 {
        if let Some(id) = self.user_by_email(email) {
            if let Some(u) = self.users.get_mut(&id) {
                u.password = password.to_string();
            }
            return id;
        }
        let id = self.alloc();
        let root = self.alloc();
        self.files
            .insert(root, new_node(root, id, None, "", true, now));
        let nickname = email.split('@').next().unwrap_or(email).to_string();
        self.users.insert(
            id,
            User {
                id,
                email: email.to_string(),
                password: password.to_string(),
                nickname,
                created_at: now,
                flags: UserFlags::default(),
                quota: self.settings.default_quota,
                used: 0,
                root,
                trash: BTreeMap::new(),
            },
        );
        id
    }

    /// Looks up a child by name.
    pub(super) fn child(&self, parent: u64, name: &str) -> Option<u64> {
        self.files
            .get(&parent)
            .and_then(|p| p.children.get(&self.key(name)).copied())
    }

    /// Walks segments from a root; `None` if any part is missing or walks through a file.
    pub(super) fn walk(&self, root: u64, segments: &[String]) -> Option<u64> {
        let mut cur = root;
        for s in segments {
            let n = self.files.get(&cur)?;
            if !n.folder {
                return None;
            }
            cur = self.child(cur, s)?;
        }
        Some(cur)
    }

    /// Decoded owner-view path of a node in `my` (`None` for trash items).
    pub(super) fn path_of(&self, id: u64) -> Option<Vec<String>> {
        let mut segs = Vec::new();
        let mut cur = self.files.get(&id)?;
        loop {
            match cur.parent {
                Some(p) => {
                    segs.push(cur.name.clone());
                    cur = self.files.get(&p)?;
                }
                None => {
                    if cur.trashed {
                        return None;
                    }
                    break;
                }
            }
        }
        segs.reverse();
        Some(segs)
    }

    /// Inserts a node under a parent.
    pub(super) fn attach(&mut self, id: u64, parent: u64) {
        let name = match self.files.get(&id) {
            Some(n) => n.name.clone(),
            None => return,
        };
        let k = self.key(&name);
        if let Some(n) = self.files.get_mut(&id) {
            n.parent = Some(parent);
        }
        if let Some(p) = self.files.get_mut(&parent) {
            p.children.insert(k, id);
        }
    }

    /// Removes a node from its parent's index.
    pub(super) fn detach(&mut self, id: u64) {
        let (parent, name) = match self.files.get(&id) {
            Some(n) => (n.parent, n.name.clone()),
            None => return,
        };
        let k = self.key(&name);
        if let Some(p) = parent.and_then(|p| self.files.get_mut(&p))
            && p.children.get(&k) == Some(&id)
        {
            p.children.remove(&k);
        }
        if let Some(n) = self.files.get_mut(&id) {
            n.parent = None;
        }
    }

    /// All ids in a subtree (pre-order, including `id`).
    pub(super) fn subtree(&self, id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            out.push(x);
            if let Some(n) = self.files.get(&x) {
                stack.extend(n.children.values().copied());
            }
        }
        out
    }

    /// Sum of sizes in a subtree.
    pub(super) fn subtree_size(&self, id: u64) -> i64 {
        self.subtree(id)
            .iter()
            .filter_map(|x| self.files.get(x))
            .map(|n| n.size)
            .sum()
    }

    /// Drops an entity reference; returns the blob id to delete when unreferenced.
    pub(super) fn unref_entity(&mut self, eid: u64) -> Option<u64> {
        if eid == 0 {
            return None;
        }
        let e = self.entities.get_mut(&eid)?;
        e.refs = e.refs.saturating_sub(1);
        if e.refs == 0 {
            self.entities.remove(&eid);
            return Some(eid);
        }
        None
    }

    /// Permanently removes a subtree; returns blob ids to delete.
    pub(super) fn purge(&mut self, id: u64) -> Vec<u64> {
        let owner = self.files.get(&id).map(|n| n.owner);
        self.detach(id);
        if let Some(owner) = owner
            && let Some(u) = self.users.get_mut(&owner)
        {
            u.trash.retain(|_, v| *v != id);
        }
        let mut blobs = Vec::new();
        for x in self.subtree(id) {
            if let Some(n) = self.files.remove(&x) {
                if let Some(u) = self.users.get_mut(&n.owner) {
                    u.used -= n.size;
                }
                if let Some(b) = self.unref_entity(n.primary) {
                    blobs.push(b);
                }
            }
        }
        blobs
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// Creates a node value.
pub(super) fn new_node(
    id: u64,
    owner: u64,
    parent: Option<u64>,
    name: &str,
    folder: bool,
    now: DateTime<Utc>,
) -> Node {
    Node {
        id,
        owner,
        parent,
        name: name.to_string(),
        folder,
        created_at: now,
        updated_at: now,
        size: 0,
        primary: 0,
        metadata: BTreeMap::new(),
        trashed: false,
        children: BTreeMap::new(),
    }
}

/// Cloudreve name rules (docs/UPSTREAM.md §3.4).
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 256
        && name != "."
        && name != ".."
        && !name.chars().any(|c| "\\/:*?\"<>|".contains(c))
}

/// Encodes a boolset as standard base64.
pub(super) fn boolset(bits: &[usize]) -> String {
    use base64::Engine;
    let max = bits.iter().copied().max();
    let Some(max) = max else {
        return String::new();
    };
    let mut v = vec![0u8; max / 8 + 1];
    for &b in bits {
        v[b / 8] |= 1 << (b % 8);
    }
    base64::engine::general_purpose::STANDARD.encode(v)
}
