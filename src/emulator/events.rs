//! Cloudreve's change feed (4.11+), the hub: who listens to which folder,
//! what each listener has not been sent yet, and how a burst of changes is
//! merged before it is sent. The endpoint that streams it is `feed.rs`.
//!
//! As in 4.18, a listener is a (folder, client id) pair. It hears about every
//! change below its folder, except changes made by requests that carry its own
//! `X-Cr-Client-Id`. Changes wait in the listener's buffer until the debounce
//! delay has passed without a new one, are merged per file, then sent. A
//! listener whose connection closed keeps collecting, and gets everything on
//! its next connection with the same client id (`event:resumed`).

use super::state::State as Model;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The request header naming the calling client (a UUID).
pub(super) const CLIENT_ID_HEADER: &str = "x-cr-client-id";

/// The client id a request carries, if any: changes it makes are not sent
/// back to the listener with the same id.
pub(super) fn origin(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CLIENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// What happened to a file or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Create,
    Modify,
    Rename,
    Delete,
}

impl Kind {
    pub(super) fn wire(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Modify => "modify",
            Kind::Rename => "rename",
            Kind::Delete => "delete",
        }
    }
}

/// One change as a listener sees it: paths relative to its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    pub(super) kind: Kind,
    pub(super) file: u64,
    pub(super) from: String,
    pub(super) to: String,
}

/// A change to the tree, reported by the endpoint that makes it. `Renamed`,
/// `Deleted` and `Moved` are reported before the tree changes (the old
/// place is what listeners need); `Created` and `Modified` after.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change<'a> {
    /// A new object at its place.
    Created(u64),
    /// New content (an upload completed).
    Modified(u64),
    /// About to get a new name in the same folder.
    Renamed(u64, &'a str),
    /// About to leave the tree (trash or delete).
    Deleted(u64),
    /// About to move under `dst` with `name`.
    Moved {
        /// The object.
        id: u64,
        /// The new parent folder.
        dst: u64,
        /// Its name there.
        name: &'a str,
    },
}

/// One listener.
#[derive(Debug)]
struct Listener {
    online: bool,
    /// Bumped at each connection, so a closing old stream does not mark a
    /// newer one offline.
    connection: u64,
    buffer: Vec<Pending>,
    /// When the buffer is due (debounce), while online.
    due: Option<Instant>,
    wake: Arc<Notify>,
}

/// Every listener, by (folder id, client id).
#[derive(Debug, Default)]
pub(super) struct EventHub {
    listeners: HashMap<(u64, String), Listener>,
}

impl EventHub {
    /// Registers a connection; `true` when it resumes a known listener.
    pub(super) fn connect(
        &mut self,
        key: (u64, String),
        debounce: Duration,
    ) -> (bool, u64, Arc<Notify>) {
        match self.listeners.get_mut(&key) {
            Some(l) => {
                l.online = true;
                l.connection += 1;
                l.due = (!l.buffer.is_empty()).then(|| Instant::now() + debounce);
                (true, l.connection, l.wake.clone())
            }
            None => {
                let wake = Arc::new(Notify::new());
                self.listeners.insert(
                    key,
                    Listener {
                        online: true,
                        connection: 0,
                        buffer: Vec::new(),
                        due: None,
                        wake: wake.clone(),
                    },
                );
                (false, 0, wake)
            }
        }
    }

    /// Marks a listener offline when its current connection ends.
    pub(super) fn disconnect(&mut self, key: &(u64, String), connection: u64) {
        if let Some(l) = self.listeners.get_mut(key)
            && l.connection == connection
        {
            l.online = false;
            l.due = None;
        }
    }

    pub(super) fn due(&self, key: &(u64, String)) -> Option<Instant> {
        self.listeners.get(key).and_then(|l| l.due)
    }

    /// The merged buffer, if it is due.
    pub(super) fn take_due(&mut self, key: &(u64, String), now: Instant) -> Vec<Pending> {
        match self.listeners.get_mut(key) {
            Some(l) if l.online && l.due.is_some_and(|d| d <= now) => {
                l.due = None;
                merge(std::mem::take(&mut l.buffer))
            }
            _ => Vec::new(),
        }
    }
}

/// Folds a time-ordered burst into one change per file: a file created and
/// changed is created; created and deleted never existed; renamed twice is
/// renamed once (or not at all when it came back); changed or renamed and
/// then deleted is deleted; deleted and created again (a restore) is created.
fn merge(burst: Vec<Pending>) -> Vec<Pending> {
    let mut out: Vec<Pending> = Vec::new();
    for e in burst {
        let Some(i) = out.iter().position(|p| p.file == e.file) else {
            out.push(e);
            continue;
        };
        let cur = &mut out[i];
        match (cur.kind, e.kind) {
            (Kind::Delete, Kind::Create) => {
                *cur = Pending {
                    to: String::new(),
                    ..e
                }
            }
            (Kind::Create, Kind::Rename) => cur.from = e.to,
            (Kind::Modify, Kind::Rename) => *cur = e,
            (Kind::Rename, Kind::Rename) => {
                if cur.from == e.to {
                    out.remove(i);
                } else {
                    cur.to = e.to;
                }
            }
            (Kind::Create, Kind::Delete) => {
                out.remove(i);
            }
            (Kind::Modify | Kind::Rename, Kind::Delete) => {
                *cur = Pending {
                    to: String::new(),
                    ..e
                }
            }
            // Anything else adds nothing to what is already recorded.
            _ => {}
        }
    }
    for p in &mut out {
        if p.kind != Kind::Rename {
            p.to.clear();
        }
    }
    out
}

/// The folders above `id`, nearest first (none for trash items).
fn ancestors(st: &Model, id: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cur = st.files.get(&id);
    while let Some(n) = cur {
        if n.trashed {
            return Vec::new();
        }
        match n.parent {
            Some(p) => {
                out.push(p);
                cur = st.files.get(&p);
            }
            None => break,
        }
    }
    out
}

/// `id`'s path below `root`, as a listener on `root` is told it: plain,
/// unescaped, starting with `/`.
fn relative(st: &Model, root: u64, id: u64) -> String {
    let (Some(base), Some(path)) = (st.path_of(root), st.path_of(id)) else {
        return "/".into();
    };
    let rest = path.get(base.len()..).unwrap_or_default();
    format!("/{}", rest.join("/"))
}

/// `name` inside the folder at relative path `dir`.
fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The listeners on any of `folders`, except the one with the change's own
/// client id.
fn listeners_on(st: &Model, folders: &[u64], origin: Option<&str>) -> Vec<(u64, String)> {
    st.events
        .listeners
        .keys()
        .filter(|(folder, client)| folders.contains(folder) && Some(client.as_str()) != origin)
        .cloned()
        .collect()
}

/// Records a change for every listener that should hear of it.
pub(super) fn publish(st: &mut Model, change: Change<'_>, origin: Option<&str>) {
    if !st.settings.events_enabled {
        return;
    }
    let mut out: Vec<((u64, String), Pending)> = Vec::new();
    let simple = |st: &Model, id: u64, kind: Kind, out: &mut Vec<_>| {
        for key in listeners_on(st, &ancestors(st, id), origin) {
            let from = relative(st, key.0, id);
            out.push((
                key,
                Pending {
                    kind,
                    file: id,
                    from,
                    to: String::new(),
                },
            ));
        }
    };
    match change {
        Change::Created(id) => simple(st, id, Kind::Create, &mut out),
        Change::Modified(id) => simple(st, id, Kind::Modify, &mut out),
        Change::Deleted(id) => simple(st, id, Kind::Delete, &mut out),
        Change::Renamed(id, new_name) => {
            for key in listeners_on(st, &ancestors(st, id), origin) {
                let from = relative(st, key.0, id);
                let dir = from.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
                let to = format!("{dir}/{new_name}");
                out.push((
                    key,
                    Pending {
                        kind: Kind::Rename,
                        file: id,
                        from,
                        to,
                    },
                ));
            }
        }
        Change::Moved { id, dst, name } => {
            let src_side = listeners_on(st, &ancestors(st, id), origin);
            let mut dst_chain = vec![dst];
            dst_chain.extend(ancestors(st, dst));
            let dst_side = listeners_on(st, &dst_chain, origin);
            for key in &src_side {
                let from = relative(st, key.0, id);
                let pending = if dst_side.contains(key) {
                    let to = join(&relative(st, key.0, dst), name);
                    Pending {
                        kind: Kind::Rename,
                        file: id,
                        from,
                        to,
                    }
                } else {
                    Pending {
                        kind: Kind::Delete,
                        file: id,
                        from,
                        to: String::new(),
                    }
                };
                out.push((key.clone(), pending));
            }
            for key in dst_side.into_iter().filter(|k| !src_side.contains(k)) {
                let from = join(&relative(st, key.0, dst), name);
                out.push((
                    key,
                    Pending {
                        kind: Kind::Create,
                        file: id,
                        from,
                        to: String::new(),
                    },
                ));
            }
        }
    }
    let debounce = st.settings.event_debounce;
    for (key, pending) in out {
        if let Some(l) = st.events.listeners.get_mut(&key) {
            l.buffer.push(pending);
            if l.online {
                l.due = Some(Instant::now() + debounce);
                l.wake.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: Kind, file: u64, from: &str, to: &str) -> Pending {
        Pending {
            kind,
            file,
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn a_burst_is_folded_per_file() {
        let out = merge(vec![
            p(Kind::Create, 1, "/a", ""),
            p(Kind::Modify, 1, "/a", ""),
            p(Kind::Rename, 1, "/a", "/b"),
            p(Kind::Create, 2, "/tmp", ""),
            p(Kind::Delete, 2, "/tmp", ""),
            p(Kind::Rename, 3, "/x", "/y"),
            p(Kind::Rename, 3, "/y", "/x"),
            p(Kind::Rename, 4, "/m", "/n"),
            p(Kind::Rename, 4, "/n", "/o"),
            p(Kind::Modify, 5, "/c", ""),
            p(Kind::Delete, 5, "/c", ""),
            p(Kind::Delete, 6, "/r", ""),
            p(Kind::Create, 6, "/r", ""),
        ]);
        assert_eq!(
            out,
            vec![
                p(Kind::Create, 1, "/b", ""),
                p(Kind::Rename, 4, "/m", "/o"),
                p(Kind::Delete, 5, "/c", ""),
                p(Kind::Create, 6, "/r", ""),
            ]
        );
    }
}
