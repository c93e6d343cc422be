//! Changes of a registry: the lock, the read-change-write step, and each kind of change (move,
//! remove or roll back an alias; remove a version).

use super::{
    change, list, valid_alias, Author, Change, Lock, ModelDir, RegistryError, RegistryFile,
};
use super::{CHAMPION, MAX_CHANGES, MAX_PREVIOUS};

impl ModelDir {
    /// Take the registry's lock (an exclusive lock on `.registry.lock`), creating the directory.
    pub(super) fn lock(&self) -> Result<Lock, RegistryError> {
        std::fs::create_dir_all(&self.dir).map_err(Self::io(self.dir.clone()))?;
        let path = self.dir.join(".registry.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Self::io(path.clone()))?;
        f.lock().map_err(Self::io(path))?;
        Ok(Lock(f))
    }

    /// [`apply`](Self::apply) a change, first adopting a single-directory model (so an alias
    /// set on one starts its registry with it as the champion).
    fn update(
        &self,
        author: &Author,
        change: impl FnOnce(&mut RegistryFile, &[String]) -> Result<Change, RegistryError>,
    ) -> Result<Change, RegistryError> {
        self.adopt_single(author)?;
        self.apply(change)
    }

    /// Read, change and write the registry file under the lock; `change` returns the change
    /// made (recorded in the file) or an error (nothing written).
    pub(super) fn apply(
        &self,
        change: impl FnOnce(&mut RegistryFile, &[String]) -> Result<Change, RegistryError>,
    ) -> Result<Change, RegistryError> {
        let mut made = self.apply_all(|file, have| Ok(vec![change(file, have)?]))?;
        Ok(made.pop().expect("one change"))
    }

    /// [`apply`](Self::apply) for any number of changes made in one step (none: the file is
    /// rewritten unchanged).
    pub(super) fn apply_all(
        &self,
        change: impl FnOnce(&mut RegistryFile, &[String]) -> Result<Vec<Change>, RegistryError>,
    ) -> Result<Vec<Change>, RegistryError> {
        let _lock = self.lock()?;
        let mut file = self.read()?;
        let have = self.version_names()?;
        let made = change(&mut file, &have)?;
        file.changes.extend(made.iter().cloned());
        let extra = file.changes.len().saturating_sub(MAX_CHANGES);
        file.changes.drain(..extra);
        for prev in file.previous.values_mut() {
            let extra = prev.len().saturating_sub(MAX_PREVIOUS);
            prev.drain(..extra);
        }
        file.previous.retain(|_, p| !p.is_empty());
        let mut bytes = serde_json::to_vec_pretty(&file).expect("registry file serialises");
        bytes.push(b'\n');
        crate::util::write_atomic(&self.file(), &bytes).map_err(Self::io(self.file()))?;
        Ok(made)
    }

    /// Refuse a version whose bundle does not load: an alias never points at a model the
    /// server would refuse.
    fn loads(&self, version: &str) -> Result<(), RegistryError> {
        crate::bundle::load(&self.version_dir(version))
            .map(drop)
            .map_err(|e| self.refused(format!("version {version} does not load: {e}")))
    }

    /// Point `alias` at `version` (an alias or a version), remembering what it pointed to; the
    /// version's bundle must load.
    pub fn set_alias(
        &self,
        alias: &str,
        version: &str,
        author: &Author,
    ) -> Result<Change, RegistryError> {
        if !valid_alias(alias) {
            return Err(RegistryError::BadAlias(alias.to_string()));
        }
        self.update(author, |file, have| {
            let target = file
                .aliases
                .get(version)
                .cloned()
                .or_else(|| have.iter().find(|v| *v == version).cloned())
                .ok_or_else(|| RegistryError::Unknown {
                    model: self.name.clone(),
                    which: version.to_string(),
                    have: list(have),
                })?;
            self.loads(&target)?;
            let from = file.aliases.insert(alias.to_string(), target.clone());
            if let Some(f) = from.as_ref().filter(|f| **f != target) {
                file.previous
                    .entry(alias.to_string())
                    .or_default()
                    .push(f.clone());
            }
            let action = if alias == CHAMPION {
                "promote"
            } else {
                "alias"
            };
            Ok(change(action, alias, from, Some(target), author))
        })
    }

    /// Remove `alias` (never the champion: the server would have nothing to serve).
    pub fn unset_alias(&self, alias: &str, author: &Author) -> Result<Change, RegistryError> {
        if alias == CHAMPION {
            return Err(self.refused(
                "the champion alias cannot be removed (the server serves it); promote another version instead".into(),
            ));
        }
        self.update(author, |file, _| {
            let from = file
                .aliases
                .remove(alias)
                .ok_or_else(|| RegistryError::Unknown {
                    model: self.name.clone(),
                    which: alias.to_string(),
                    have: list(&file.aliases.keys().cloned().collect::<Vec<_>>()),
                })?;
            file.previous.remove(alias);
            Ok(change("unset", alias, Some(from), None, author))
        })
    }

    /// Point `alias` back at the version it pointed to before its last change.
    pub fn rollback(&self, alias: &str, author: &Author) -> Result<Change, RegistryError> {
        self.update(author, |file, have| {
            let current = file.aliases.get(alias).cloned();
            let previous = file.previous.entry(alias.to_string()).or_default();
            // versions removed since, and the one it holds now, are skipped
            let target = loop {
                match previous.pop() {
                    Some(v) if have.contains(&v) && Some(&v) != current.as_ref() => break v,
                    Some(_) => continue,
                    None => {
                        return Err(self.refused(format!(
                            "nothing to roll '{alias}' back to: no earlier version is recorded"
                        )))
                    }
                }
            };
            self.loads(&target)?;
            let from = file.aliases.insert(alias.to_string(), target.clone());
            Ok(change("rollback", alias, from, Some(target), author))
        })
    }

    /// Delete `version` from disk; refused while an alias points to it.
    pub fn remove(&self, version: &str, author: &Author) -> Result<Change, RegistryError> {
        let mut doomed = None;
        let made = self.update(author, |file, have| {
            if !have.iter().any(|v| v == version) {
                return Err(RegistryError::Unknown {
                    model: self.name.clone(),
                    which: version.to_string(),
                    have: list(have),
                });
            }
            let holders: Vec<&str> = file
                .aliases
                .iter()
                .filter(|(_, v)| *v == version)
                .map(|(a, _)| a.as_str())
                .collect();
            if !holders.is_empty() {
                return Err(self.refused(format!(
                    "version {version} is the {} alias; point {} at another version first",
                    holders.join(" and "),
                    if holders.len() == 1 { "it" } else { "them" }
                )));
            }
            for prev in file.previous.values_mut() {
                prev.retain(|v| v != version);
            }
            // moved away under the lock, before the registry forgets it: no alias can be set
            // to it meanwhile, and a reader never sees a half-deleted version
            let dir = self.version_dir(version);
            let random = uuid::Uuid::new_v4().simple().to_string();
            let trash = self
                .versions_dir()
                .join(format!(".removed-{version}-{}", &random[..12]));
            std::fs::rename(&dir, &trash).map_err(Self::io(dir))?;
            doomed = Some(trash);
            Ok(change(
                "remove",
                "",
                Some(version.to_string()),
                None,
                author,
            ))
        })?;
        if let Some(trash) = doomed {
            // the registry no longer names it: a failure here leaves only a hidden directory
            if let Err(e) = std::fs::remove_dir_all(&trash) {
                tracing::warn!(dir = %trash.display(), error = %e, "removed version left on disk");
            }
        }
        Ok(made)
    }
}
