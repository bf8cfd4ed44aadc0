//! A hub model named on the command line or in a config: `t5-base`, `google/flan-t5-base`, optionally pinned with
//! `@revision` (a branch, a tag or a 40-hex commit): `google/flan-t5-base@0123…`.

/// What kind of hub repository: its routes and cache folders differ (`/datasets/…`, `datasets--…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Model,
    Dataset,
}

/// A repository id and the revision to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    pub kind: RepoKind,
    pub id: String,
    pub revision: String,
}

impl RepoSpec {
    /// A dataset repository at a revision (checked as [`RepoSpec::parse`] checks a model's).
    pub fn dataset(id: &str, revision: &str) -> Option<RepoSpec> {
        RepoSpec::parse(&format!("{id}@{revision}")).map(|spec| RepoSpec {
            kind: RepoKind::Dataset,
            ..spec
        })
    }

    /// The repository's path on the hub: `org/name` for a model, `datasets/org/name` for a dataset.
    pub fn route(&self) -> String {
        match self.kind {
            RepoKind::Model => self.id.clone(),
            RepoKind::Dataset => format!("datasets/{}", self.id),
        }
    }

    /// The repository's folder in the cache: `models--org--name`, `datasets--org--name`.
    pub fn cache_folder(&self) -> String {
        let kind = match self.kind {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        };
        format!("{kind}--{}", self.id.replace('/', "--"))
    }

    /// The same repository at another revision.
    pub fn at(&self, revision: &str) -> RepoSpec {
        RepoSpec {
            revision: revision.to_string(),
            ..self.clone()
        }
    }

    /// Parses a model's `[org/]name[@revision]`; `None` when `text` cannot be a hub id (a path with other
    /// separators, `..`, characters the hub does not allow).
    pub fn parse(text: &str) -> Option<RepoSpec> {
        let (id, revision) = match text.split_once('@') {
            Some((id, revision)) => (id, revision),
            None => (text, "main"),
        };
        let parts: Vec<&str> = id.split('/').collect();
        let name_ok = |part: &str| {
            !part.is_empty()
                && part.len() <= 96
                && !part.starts_with(['.', '-'])
                && !part.ends_with('.')
                && !part.contains("..")
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        let revision_ok = !revision.is_empty()
            && revision.len() <= 256
            && !revision.contains("..")
            && !revision.starts_with(['/', '.'])
            && revision
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        (matches!(parts.len(), 1 | 2) && parts.iter().all(|p| name_ok(p)) && revision_ok).then(
            || RepoSpec {
                kind: RepoKind::Model,
                id: id.to_string(),
                revision: revision.to_string(),
            },
        )
    }

    /// The revision is a commit hash (then it needs no ref to resolve).
    pub fn is_commit(&self) -> bool {
        self.revision.len() == 40 && self.revision.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_revisions() {
        let spec = RepoSpec::parse("t5-base").unwrap();
        assert_eq!(
            (spec.id.as_str(), spec.revision.as_str()),
            ("t5-base", "main")
        );
        let spec = RepoSpec::parse("google/flan-t5-base@v1.0").unwrap();
        assert_eq!(
            (spec.id.as_str(), spec.revision.as_str()),
            ("google/flan-t5-base", "v1.0")
        );
        assert!(RepoSpec::parse(&format!("a/b@{}", "f".repeat(40)))
            .unwrap()
            .is_commit());
        for bad in [
            "",
            "a/b/c",
            "../x",
            "a/..",
            "./m",
            "/abs/path",
            "a b",
            "a/b@",
            "a@../x",
            "x@/etc",
        ] {
            assert!(RepoSpec::parse(bad).is_none(), "{bad}");
        }
    }
}
