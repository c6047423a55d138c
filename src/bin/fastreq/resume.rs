//! `--resume`: reading back the output of an earlier run, so that only the requests
//! without an outcome run, and the output ends with exactly one line per request.
//!
//! The output is scanned once, keeping two bits per index (an outcome seen, a response
//! seen) and, to check that the input is still the one of that run, one 64-bit sum per
//! block of [`BLOCK`] indexes of a fingerprint of each recorded (index, URL). The input is
//! then read up to the last recorded index and summed the same way. Only when a block
//! differs are the URLs of that one block read again, to name the first index that differs.
//! No URL is kept: 100 million outcomes take about 26 MB.
//!
//! A torn last line (a crash, a power loss) is cut off before appending. With
//! `--retry-failed` the output is first rewritten without its failed lines (to a temporary
//! file renamed over it), so that it never holds two lines for one index.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, BufRead, BufReader, BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::input::{parse_line, Defaults, LineReader, MAX_LINE};
use crate::service::request_url;

/// Indexes per block of fingerprint sums.
pub const BLOCK: usize = 1024;

/// Longest output line read back (lines with `--include-body` can be long).
const MAX_OUTPUT_LINE: u64 = 1 << 30;

/// Longest URL quoted in a message.
const SHOWN_URL: usize = 200;

/// A set of indexes, one bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// Adds `i`; returns whether it was not there yet.
    pub fn insert(&mut self, i: usize) -> bool {
        let word = i / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << (i % 64);
        let new = self.words[word] & mask == 0;
        self.words[word] |= mask;
        new
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// How many indexes the set holds.
    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The largest index of the set.
    pub fn max(&self) -> Option<usize> {
        let (word, bits) = self
            .words
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| **w != 0)?;
        Some(word * 64 + 63 - bits.leading_zeros() as usize)
    }
}

/// The fields of an output line that resuming needs.
#[derive(Debug, Deserialize)]
struct Recorded<'a> {
    index: usize,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

fn fingerprint(index: usize, url: Option<&str>) -> u64 {
    // `DefaultHasher::new` has fixed keys: the same value for both sides of the check.
    let mut h = DefaultHasher::new();
    index.hash(&mut h);
    url.hash(&mut h);
    h.finish()
}

fn add(sums: &mut Vec<u64>, index: usize, url: Option<&str>) {
    let block = index / BLOCK;
    if block >= sums.len() {
        sums.resize(block + 1, 0);
    }
    sums[block] = sums[block].wrapping_add(fingerprint(index, url));
}

/// One line of an output file, as read back.
struct OutLine {
    number: u64,
    /// Offset of the byte after the line (and its newline, if any).
    end: u64,
    terminated: bool,
    /// Nothing follows it.
    last: bool,
}

/// Reads an output file line by line, tracking offsets.
struct OutputLines<R> {
    inner: R,
    buf: Vec<u8>,
    offset: u64,
    number: u64,
}

impl<R: BufRead> OutputLines<R> {
    fn new(inner: R) -> Self {
        OutputLines {
            inner,
            buf: Vec::new(),
            offset: 0,
            number: 0,
        }
    }

    /// The next line; its bytes (without the newline) are in [`bytes`](Self::bytes).
    fn next_line(&mut self) -> io::Result<Option<OutLine>> {
        self.buf.clear();
        let n = (&mut self.inner)
            .take(MAX_OUTPUT_LINE + 1)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        self.offset += n as u64;
        let terminated = self.buf.last() == Some(&b'\n');
        if !terminated && n as u64 > MAX_OUTPUT_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {} is longer than {} MiB",
                    self.number,
                    MAX_OUTPUT_LINE >> 20
                ),
            ));
        }
        if terminated {
            self.buf.pop();
        }
        let last = self.inner.fill_buf()?.is_empty();
        Ok(Some(OutLine {
            number: self.number,
            end: self.offset,
            terminated,
            last,
        }))
    }

    fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// What an output file holds.
#[derive(Debug, Default)]
pub struct Scan {
    /// Indexes with an outcome line.
    pub any: Bits,
    /// Indexes with a response line (`"error": null`).
    pub ok: Bits,
    sums: Vec<u64>,
    /// Indexes with more than one line (after an older tool appended instead of rewriting).
    pub duplicates: u64,
    /// Length of the file up to the end of its last whole line.
    pub keep: u64,
    /// The line number of a torn last line, cut off when resuming.
    pub torn: Option<u64>,
    /// The last line is whole but lacks its newline.
    pub needs_newline: bool,
    /// The smallest recorded index that no input of the given size can have.
    pub beyond: Option<usize>,
}

impl Scan {
    /// Indexes whose only outcome is a failure.
    pub fn failed(&self) -> u64 {
        self.any.len() - self.ok.len()
    }

    /// Adds the outcomes of `other` (FILE.filtered) to these (FILE); the fields about the
    /// file itself (`keep`, `torn`, `needs_newline`) stay this file's.
    fn merge(&mut self, other: &Scan) {
        for (i, w) in other.any.words.iter().enumerate() {
            let mut w = *w;
            while w != 0 {
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                if !self.any.insert(i * 64 + bit) {
                    self.duplicates += 1;
                }
            }
        }
        for (i, w) in other.ok.words.iter().enumerate() {
            if self.ok.words.len() <= i {
                self.ok.words.resize(i + 1, 0);
            }
            self.ok.words[i] |= w;
        }
        if self.sums.len() < other.sums.len() {
            self.sums.resize(other.sums.len(), 0);
        }
        for (mine, theirs) in self.sums.iter_mut().zip(&other.sums) {
            *mine = mine.wrapping_add(*theirs);
        }
        self.duplicates += other.duplicates;
        self.beyond = match (self.beyond, other.beyond) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Where the outcomes that `--match-status` or `--filter-status` dropped are recorded for
/// `--resume` when the output is FILE: FILE.filtered, one brief JSON line each.
pub fn filtered_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".filtered");
    PathBuf::from(name)
}

/// Reads the output `path` back; `Ok(None)` when it does not exist. Indexes of `limit`
/// or more (the input's size in bytes: no input has more requests than bytes) are not
/// stored, only the smallest is remembered.
pub fn scan(path: &Path, limit: usize) -> Result<Option<Scan>, String> {
    let shown = path.display();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("--resume: cannot read output `{shown}`: {e}")),
    };
    let mut lines = OutputLines::new(BufReader::with_capacity(256 * 1024, file));
    let mut scan = Scan::default();
    loop {
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => return Err(format!("--resume: cannot read output `{shown}`: {e}")),
        };
        if lines.bytes().trim_ascii().is_empty() {
            if line.terminated {
                scan.keep = line.end;
            }
            continue;
        }
        let recorded = match serde_json::from_slice::<Recorded<'_>>(lines.bytes()) {
            Ok(r) => r,
            Err(_) if line.last => {
                // A crash or power loss cut the last write short: cut the line off.
                scan.torn = Some(line.number);
                break;
            }
            Err(e) => {
                return Err(format!(
                    "--resume: line {} of `{shown}` is not an outcome line of fastreq ({e}); \
                     refusing to append to it",
                    line.number
                ))
            }
        };
        scan.keep = line.end;
        scan.needs_newline = !line.terminated;
        let index = recorded.index;
        if index >= limit {
            scan.beyond = Some(scan.beyond.map_or(index, |b| b.min(index)));
            continue;
        }
        if scan.any.insert(index) {
            add(&mut scan.sums, index, recorded.url.as_deref());
        } else {
            scan.duplicates += 1;
        }
        if recorded.error.is_none() {
            scan.ok.insert(index);
        }
    }
    Ok(Some(scan))
}

/// The URL the output line of an input line records.
fn input_url(line: &crate::input::Line, defaults: &Defaults) -> Option<String> {
    match parse_line(line, defaults) {
        Ok(req) => Some(request_url(&req)),
        Err(failed) => failed.url,
    }
}

async fn open_input(
    path: &Path,
) -> Result<LineReader<tokio::io::BufReader<tokio::fs::File>>, String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot read input `{}`: {e}", path.display()))?;
    Ok(LineReader::new(
        tokio::io::BufReader::with_capacity(256 * 1024, file),
        MAX_LINE,
    ))
}

/// Calls `f(index, line)` for each request line of `input` up to index `last`.
async fn each_request(
    input: &Path,
    last: usize,
    mut f: impl FnMut(usize, &crate::input::Line),
) -> Result<(), String> {
    let mut lines = open_input(input).await?;
    let mut index = 0;
    while index <= last {
        let line = lines
            .next_line()
            .await
            .map_err(|e| format!("cannot read input `{}`: {e}", input.display()))?;
        let Some(line) = line else { break };
        if line.is_skipped() {
            continue;
        }
        f(index, &line);
        index += 1;
    }
    Ok(())
}

/// Checks that every URL `scan` recorded is the URL of the same index in `input`.
pub async fn verify(
    scan: &Scan,
    output: &Path,
    input: &Path,
    defaults: &Defaults,
) -> Result<(), String> {
    if let Some(last) = scan.any.max() {
        let mut sums = Vec::with_capacity(scan.sums.len());
        each_request(input, last, |index, line| {
            if scan.any.contains(index) {
                add(&mut sums, index, input_url(line, defaults).as_deref());
            }
        })
        .await?;
        sums.resize(scan.sums.len(), 0);
        if let Some(block) = (0..sums.len()).find(|&b| sums[b] != scan.sums[b]) {
            return Err(first_difference(block, scan, output, input, defaults).await);
        }
    }
    if let Some(index) = scan.beyond {
        return Err(changed(
            output,
            &format!("it has an outcome for index {index}, and the input has fewer requests"),
        ));
    }
    Ok(())
}

fn changed(output: &Path, what: &str) -> String {
    format!(
        "--resume: the input is not the one `{}` was written for: {what}; nothing was run \
         (give the same input, or another output file, or run without --resume to start over)",
        output.display()
    )
}

fn show(url: Option<&str>) -> String {
    match url {
        None => "no URL".into(),
        Some(u) if u.chars().count() > SHOWN_URL => {
            format!("`{}…`", u.chars().take(SHOWN_URL).collect::<String>())
        }
        Some(u) => format!("`{u}`"),
    }
}

/// The message naming the first index of `block` whose URL differs.
async fn first_difference(
    block: usize,
    scan: &Scan,
    output: &Path,
    input: &Path,
    defaults: &Defaults,
) -> String {
    let range = block * BLOCK..(block + 1) * BLOCK;
    // The recorded URLs of this block only (first line of each index, as in the scan).
    let mut recorded: HashMap<usize, Option<String>> = HashMap::new();
    if let Ok(file) = File::open(output) {
        let mut lines = OutputLines::new(BufReader::new(file));
        while let Ok(Some(_)) = lines.next_line() {
            if let Ok(r) = serde_json::from_slice::<Recorded<'_>>(lines.bytes()) {
                if range.contains(&r.index) {
                    recorded
                        .entry(r.index)
                        .or_insert_with(|| r.url.map(Cow::into_owned));
                }
            }
        }
    }
    let mut given: HashMap<usize, Option<String>> = HashMap::new();
    let read = each_request(input, range.end - 1, |index, line| {
        if range.contains(&index) && scan.any.contains(index) {
            given.insert(index, input_url(line, defaults));
        }
    })
    .await;
    if let Err(e) = read {
        return e;
    }
    for index in range.clone() {
        let Some(was) = recorded.get(&index) else {
            continue;
        };
        match given.get(&index) {
            None => {
                return changed(
                    output,
                    &format!(
                        "it has an outcome for index {index}, and the input has fewer requests"
                    ),
                )
            }
            Some(now) if now != was => {
                return changed(
                    output,
                    &format!(
                        "at index {index} it recorded {}, the input now has {}",
                        show(was.as_deref()),
                        show(now.as_deref())
                    ),
                )
            }
            Some(_) => {}
        }
    }
    changed(
        output,
        &format!(
            "the URLs of indexes {} to {} differ",
            range.start,
            range.end - 1
        ),
    )
}

/// Makes the output ready to append to: cuts off a torn last line, or with
/// `retry_failed` rewrites it without its failed lines (and with one line per index), to a
/// temporary file renamed over it. Returns it open for appending.
pub fn prepare(path: &Path, scan: &Scan, retry_failed: bool) -> io::Result<File> {
    let compacting = retry_failed && (scan.failed() > 0 || scan.duplicates > 0);
    if compacting {
        compact(path, scan)?;
    } else {
        let file = OpenOptions::new().write(true).open(path)?;
        if file.metadata()?.len() > scan.keep {
            file.set_len(scan.keep)?;
        }
    }
    let mut file = OpenOptions::new().append(true).open(path)?;
    if scan.needs_newline && !compacting {
        file.write_all(b"\n")?;
    }
    Ok(file)
}

fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.fastreq-resume-{}", std::process::id()))
}

/// Rewrites `path` with only the first response line of each index.
fn compact(path: &Path, scan: &Scan) -> io::Result<()> {
    let temp = temporary(path);
    let result = (|| {
        let source = File::open(path)?;
        let mut lines = OutputLines::new(BufReader::with_capacity(256 * 1024, source));
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(&temp)?);
        let mut kept = Bits::default();
        while let Some(line) = lines.next_line()? {
            if line.end > scan.keep {
                // The torn last line.
                break;
            }
            let Ok(r) = serde_json::from_slice::<Recorded<'_>>(lines.bytes()) else {
                continue;
            };
            if scan.ok.contains(r.index) && r.error.is_none() && kept.insert(r.index) {
                out.write_all(lines.bytes())?;
                out.write_all(b"\n")?;
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // Make the rename itself durable (best effort: not every system allows it).
        #[cfg(unix)]
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// What [`open`] found.
#[derive(Debug)]
pub struct Resumed {
    /// The output, open for appending.
    pub file: File,
    /// The indexes not to run again (`None`: a fresh output).
    pub skip: Option<Arc<Bits>>,
    /// FILE.filtered, open for appending, when it exists (and FILE too).
    pub filtered: Option<File>,
}

/// `--resume`: reads back `output`, checks it against `input`, and opens it for appending.
/// Every error is a usage error (exit status 2), before any request.
pub async fn open(
    output: &Path,
    input: &Path,
    defaults: &Defaults,
    retry_failed: bool,
    quiet: bool,
) -> Result<Resumed, String> {
    let meta = std::fs::metadata(input)
        .map_err(|e| format!("cannot read input `{}`: {e}", input.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "--resume needs INPUT to be a regular file (it is read again to check it against \
             the output), and `{}` is not",
            input.display()
        ));
    }
    let limit = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    let side_path = filtered_path(output);
    let (scan, side) = {
        let output = output.to_owned();
        let side_path = side_path.clone();
        tokio::task::spawn_blocking(move || {
            Ok::<_, String>((scan(&output, limit)?, scan(&side_path, limit)?))
        })
        .await
        .map_err(|e| format!("--resume: reading the output failed: {e}"))??
    };
    let shown = output.display();
    let Some(mut scan) = scan else {
        if !quiet {
            crate::say(&format!(
                "fastreq: --resume: `{shown}` does not exist yet: starting from the beginning"
            ));
        }
        let file =
            File::create(output).map_err(|e| format!("cannot create output `{shown}`: {e}"))?;
        // A FILE.filtered left without its FILE belongs to another run.
        let _ = std::fs::remove_file(&side_path);
        return Ok(Resumed {
            file,
            skip: None,
            filtered: None,
        });
    };
    if let Some(side) = &side {
        scan.merge(side);
    }
    verify(&scan, output, input, defaults).await?;
    for (path, s) in [(output, Some(&scan)), (side_path.as_path(), side.as_ref())] {
        if let Some(line) = s.and_then(|s| s.torn) {
            crate::say(&format!(
                "fastreq: warning: --resume: the last line of `{}` (line {line}) is incomplete, \
                 as a crash leaves it: it is removed and its request runs again",
                path.display()
            ));
        }
    }
    let (file, filtered, scan) = {
        let output = output.to_owned();
        let side_path = side_path.clone();
        tokio::task::spawn_blocking(move || {
            let file = prepare(&output, &scan, retry_failed);
            let filtered = side.map(|side| prepare(&side_path, &side, retry_failed));
            (file, filtered, scan)
        })
        .await
        .map_err(|e| format!("--resume: preparing the output failed: {e}"))?
    };
    let file = file.map_err(|e| format!("--resume: cannot prepare output `{shown}`: {e}"))?;
    let filtered = filtered
        .transpose()
        .map_err(|e| format!("--resume: cannot prepare `{}`: {e}", side_path.display()))?;
    let skip = if retry_failed { scan.ok } else { scan.any };
    Ok(Resumed {
        file,
        skip: Some(Arc::new(skip)),
        filtered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let mut b = Bits::default();
        assert_eq!((b.len(), b.max()), (0, None));
        assert!(b.insert(0) && b.insert(63) && b.insert(64) && b.insert(1000));
        assert!(!b.insert(64));
        assert!(b.contains(0) && b.contains(63) && b.contains(64) && b.contains(1000));
        assert!(!b.contains(1) && !b.contains(999) && !b.contains(1_000_000));
        assert_eq!((b.len(), b.max()), (4, Some(1000)));
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fastreq-resume-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    const OK0: &str = r#"{"index":0,"url":"http://a.test/0","status":200,"error":null}"#;
    const FAIL1: &str =
        r#"{"index":1,"url":"http://a.test/1","status":null,"error":{"kind":"io","message":"x"}}"#;
    const OK2: &str = r#"{"index":2,"url":"http://a.test/2","status":200,"error":null}"#;

    #[test]
    fn scan_reads_outcomes_and_finds_a_torn_line() {
        let path = temp_file("torn", &format!("{OK0}\n{FAIL1}\n{{\"index\":2,\"ur"));
        let scan = scan(&path, 1000).unwrap().unwrap();
        assert_eq!(scan.torn, Some(3));
        assert_eq!(scan.keep as usize, OK0.len() + FAIL1.len() + 2);
        assert!(scan.any.contains(0) && scan.any.contains(1) && !scan.any.contains(2));
        assert!(scan.ok.contains(0) && !scan.ok.contains(1));
        assert_eq!(scan.failed(), 1);
        let mut file = prepare(&path, &scan, false).unwrap();
        file.write_all(OK2.as_bytes()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{OK0}\n{FAIL1}\n{OK2}")
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_whole_last_line_without_newline_is_kept() {
        let path = temp_file("nonl", &format!("{OK0}\n{FAIL1}"));
        let scan = scan(&path, 1000).unwrap().unwrap();
        assert_eq!((scan.torn, scan.needs_newline), (None, true));
        let mut file = prepare(&path, &scan, false).unwrap();
        file.write_all(format!("{OK2}\n").as_bytes()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{OK0}\n{FAIL1}\n{OK2}\n")
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_bad_line_before_the_end_is_refused() {
        let path = temp_file("bad", &format!("{OK0}\nnot json\n{OK2}\n"));
        let e = scan(&path, 1000).unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("not an outcome line"),
            "{e}"
        );
        assert!(scan(&path.with_file_name("missing"), 1000)
            .unwrap()
            .is_none());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn retry_failed_compacts_to_one_line_per_response() {
        let path = temp_file(
            "compact",
            &format!("{OK0}\n{FAIL1}\n{OK2}\n{OK0}\n\n{{\"index\":1,\"url\":\"http://a"),
        );
        let scan = scan(&path, 1000).unwrap().unwrap();
        assert_eq!((scan.duplicates, scan.failed(), scan.torn), (1, 1, Some(6)));
        assert_eq!(scan.beyond, None);
        let file = prepare(&path, &scan, true).unwrap();
        drop(file);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{OK0}\n{OK2}\n")
        );
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn indexes_beyond_the_input_are_not_stored() {
        let path = temp_file(
            "beyond",
            &format!("{OK0}\n{{\"index\":99999999999}}\n{OK2}\n"),
        );
        let scan = scan(&path, 100).unwrap().unwrap();
        assert_eq!(scan.beyond, Some(99_999_999_999));
        assert_eq!(scan.any.len(), 2);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
