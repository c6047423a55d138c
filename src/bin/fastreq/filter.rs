//! `--match-status` and `--filter-status`: which outcomes get an output line.

/// A set of statuses (100..=999), given as codes and ranges (`200,301`, `2xx`), and whether
/// failures (no status) belong to it (`error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    bits: [u64; 16],
    errors: bool,
}

impl StatusSet {
    /// Whether an outcome with `status` (`None`: a failure) is in the set.
    pub fn contains(&self, status: Option<u16>) -> bool {
        match status {
            None => self.errors,
            Some(s) => {
                let s = usize::from(s);
                s < 1024 && self.bits[s / 64] & (1 << (s % 64)) != 0
            }
        }
    }

    fn add(&mut self, s: u16) {
        let s = usize::from(s);
        self.bits[s / 64] |= 1 << (s % 64);
    }
}

/// Parses `200,301,4xx,error`: codes 100 to 999, `Nxx` for N00 to N99, `error` for
/// failures (outcomes without a status).
pub fn parse_statuses(list: &str) -> Result<StatusSet, String> {
    let mut set = StatusSet {
        bits: [0; 16],
        errors: false,
    };
    let mut any = false;
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        any = true;
        let lower = item.to_ascii_lowercase();
        if lower == "error" || lower == "errors" {
            set.errors = true;
        } else if let Some(d) = lower.strip_suffix("xx").and_then(|d| d.parse::<u16>().ok()) {
            if !(1..=9).contains(&d) || lower.len() != 3 {
                return Err(format!("`{item}` is not a status range (1xx to 9xx)"));
            }
            for s in d * 100..d * 100 + 100 {
                set.add(s);
            }
        } else {
            match item.parse::<u16>() {
                Ok(s) if (100..=999).contains(&s) => set.add(s),
                _ => {
                    return Err(format!(
                        "`{item}` is not a status (100 to 999), a range such as 2xx, or `error`"
                    ))
                }
            }
        }
    }
    if !any {
        return Err("empty list of statuses".into());
    }
    Ok(set)
}

/// Which outcomes get an output line.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `--match-status`: only these (failures only with `error`).
    pub keep: Option<StatusSet>,
    /// `--filter-status`: not these (failures too with `error`).
    pub drop: Option<StatusSet>,
}

impl Filter {
    /// Whether any filter is set.
    pub fn is_active(&self) -> bool {
        self.keep.is_some() || self.drop.is_some()
    }

    /// Whether an outcome with `status` (`None`: a failure) gets a line.
    #[inline]
    pub fn keeps(&self, status: Option<u16>) -> bool {
        self.keep.as_ref().is_none_or(|k| k.contains(status))
            && !self.drop.as_ref().is_some_and(|d| d.contains(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        let s = parse_statuses("200, 301,4xx").unwrap();
        for yes in [200, 301, 400, 404, 499] {
            assert!(s.contains(Some(yes)), "{yes}");
        }
        for no in [100, 201, 302, 399, 500, 999] {
            assert!(!s.contains(Some(no)), "{no}");
        }
        assert!(!s.contains(None));
        assert!(parse_statuses("error,5XX").unwrap().contains(None));
        for bad in ["", ",", "20", "1000", "0xx", "2x", "abc", "22xx", "-1"] {
            assert!(parse_statuses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keep_and_drop() {
        let f = Filter::default();
        assert!(!f.is_active() && f.keeps(Some(500)) && f.keeps(None));
        let f = Filter {
            keep: Some(parse_statuses("2xx,301").unwrap()),
            drop: Some(parse_statuses("204").unwrap()),
        };
        assert!(f.keeps(Some(200)) && f.keeps(Some(301)));
        assert!(!f.keeps(Some(204)) && !f.keeps(Some(404)) && !f.keeps(None));
        let f = Filter {
            keep: None,
            drop: Some(parse_statuses("404").unwrap()),
        };
        assert!(f.keeps(Some(200)) && f.keeps(None) && !f.keeps(Some(404)));
        let f = Filter {
            keep: Some(parse_statuses("200,error").unwrap()),
            drop: None,
        };
        assert!(f.keeps(None) && !f.keeps(Some(500)));
    }
}
