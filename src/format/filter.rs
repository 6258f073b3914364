//! The include and exclude patterns of a pack spec: which entry names are
//! packed. Patterns are matched against bundle paths (`/`-separated), never
//! against the filesystem.

/// Include and exclude globs, matched against paths in the bundle.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<globset::GlobSet>,
    exclude: Option<globset::GlobSet>,
}

impl Filter {
    /// Compiles the globs (gitignore-style: `*` stays within a component,
    /// `**` crosses them; a pattern without `/` matches at any depth).
    pub fn new(include: &[String], exclude: &[String]) -> std::result::Result<Filter, String> {
        let build = |patterns: &[String]| -> std::result::Result<Option<globset::GlobSet>, String> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let mut b = globset::GlobSetBuilder::new();
            for p in patterns {
                let p = if p.contains('/') {
                    p.trim_start_matches('/').to_string()
                } else {
                    format!("**/{p}")
                };
                let g = globset::GlobBuilder::new(&p)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("glob {p:?}: {e}"))?;
                b.add(g);
            }
            b.build().map(Some).map_err(|e| e.to_string())
        };
        Ok(Filter {
            include: build(include)?,
            exclude: build(exclude)?,
        })
    }

    /// Whether a folder at this bundle path is walked.
    pub fn keeps_folder(&self, path: &str) -> bool {
        !self.exclude.as_ref().is_some_and(|e| e.is_match(path))
    }

    /// Whether a file at this bundle path is packed.
    pub fn keeps_file(&self, path: &str) -> bool {
        self.keeps_folder(path) && self.include.as_ref().is_none_or(|i| i.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_gitignore_like() {
        let f = Filter::new(
            &["*.pdf".into(), "reports/**".into()],
            &["*.tmp".into(), "case/private".into()],
        )
        .unwrap();
        assert!(f.keeps_file("case/a.pdf"));
        assert!(f.keeps_file("reports/x/y.txt"));
        assert!(!f.keeps_file("case/a.txt"));
        assert!(!f.keeps_file("reports/x.tmp"));
        assert!(!f.keeps_folder("case/private"));
        assert!(f.keeps_folder("case/public"));
        assert!(Filter::new(&["[".into()], &[]).is_err());
    }
}
