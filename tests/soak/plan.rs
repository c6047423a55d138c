//! The seeded fault schedule: input `i` alone decides its transport, method, fault and how
//! many attempts fail, so the expected outcome of every input is known in advance.

use std::time::Duration;

use fastreq::ErrorKind;

/// The seed of the schedule (change it to shuffle the faults; the expectations follow).
pub const SEED: u64 = 0x5eed_f417_2026_0013;

/// Retries of the client (so at most `RETRIES + 1` attempts).
pub const RETRIES: u32 = 3;
/// Retries allowed to the inputs of the GOAWAY server, whose refusals hit whole waves.
pub const GOAWAY_RETRIES: u32 = 6;
/// The per-hop timeout of the slow-header inputs (their server never answers in time).
pub const SLOW_HOP: Duration = Duration::from_millis(200);
/// The deadline of the slow-drip inputs (their body takes 1 s).
pub const DRIP_DEADLINE: Duration = Duration::from_millis(300);
/// Bytes a slow-drip body announces, sent one every [`DRIP_EVERY`].
pub const DRIP_LEN: usize = 40;
pub const DRIP_EVERY: Duration = Duration::from_millis(25);

/// "Fails on every attempt".
pub const ALWAYS: u8 = u8::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 200 with the body.
    Ok,
    /// The connection is reset (RST) once the request is read, before any response byte.
    ResetBeforeHeaders,
    /// Headers with `Content-Length: 64`, 16 bytes, then a reset.
    ResetAfterHeaders,
    /// Headers with `Content-Length: 64`, 16 bytes, then a clean close (FIN).
    Truncated,
    /// `Transfer-Encoding: chunked` with a chunk size line that is not hex.
    BadChunk,
    /// No response within the hop timeout ([`SLOW_HOP`], set on these requests).
    SlowHeaders,
    /// [`DRIP_LEN`] bytes announced, one every [`DRIP_EVERY`]: past the request's deadline.
    SlowDrip,
    /// 503 with `Retry-After: 0` (seconds).
    RetryAfterSeconds,
    /// 429 with `Retry-After` an HTTP-date in the past (retry at once).
    RetryAfterDate,
    /// 429 with `Retry-After: 86400` or a date a day ahead: beyond the 60 s cap, so the
    /// response comes back at once.
    RetryAfterHuge,
    /// A closed port: the connection is refused.
    Refused,
    /// h2c: 200 with the body.
    H2Ok,
    /// h2c: `RST_STREAM(REFUSED_STREAM)`.
    H2Refused,
    /// h2c on the GOAWAY server: every other connection answers its first request with
    /// `GOAWAY(last_stream_id = 0)`; the others serve 8 streams and shut down gracefully.
    GoAway,
}

impl Fault {
    pub const ALL: [Fault; 14] = [
        Fault::Ok,
        Fault::ResetBeforeHeaders,
        Fault::ResetAfterHeaders,
        Fault::Truncated,
        Fault::BadChunk,
        Fault::SlowHeaders,
        Fault::SlowDrip,
        Fault::RetryAfterSeconds,
        Fault::RetryAfterDate,
        Fault::RetryAfterHuge,
        Fault::Refused,
        Fault::H2Ok,
        Fault::H2Refused,
        Fault::GoAway,
    ];

    pub fn transport(self) -> Transport {
        match self {
            Fault::Refused => Transport::Closed,
            Fault::H2Ok | Fault::H2Refused => Transport::H2,
            Fault::GoAway => Transport::GoAway,
            _ => Transport::H1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::Ok => "ok",
            Fault::ResetBeforeHeaders => "reset-before-headers",
            Fault::ResetAfterHeaders => "reset-after-headers",
            Fault::Truncated => "truncated",
            Fault::BadChunk => "bad-chunk",
            Fault::SlowHeaders => "slow-headers",
            Fault::SlowDrip => "slow-drip",
            Fault::RetryAfterSeconds => "503-retry-after-seconds",
            Fault::RetryAfterDate => "429-retry-after-date",
            Fault::RetryAfterHuge => "429-retry-after-huge",
            Fault::Refused => "connection-refused",
            Fault::H2Ok => "h2-ok",
            Fault::H2Refused => "h2-refused-stream",
            Fault::GoAway => "h2-goaway",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    H1,
    Closed,
    H2,
    GoAway,
}

/// What input `i` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub index: usize,
    pub post: bool,
    pub fault: Fault,
    /// How many attempts fail before the server answers well ([`ALWAYS`]: all of them).
    pub fails: u8,
}

/// splitmix64: a good 64-bit mix, enough to scatter the faults.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn plan(index: usize) -> Plan {
    let r = mix(SEED ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    // Per mille: 55 % plain h1, 15 % plain h2, the rest faults.
    let fault = match r % 1000 {
        0..550 => Fault::Ok,
        550..700 => Fault::H2Ok,
        700..730 => Fault::ResetBeforeHeaders,
        730..760 => Fault::ResetAfterHeaders,
        760..790 => Fault::Truncated,
        790..815 => Fault::BadChunk,
        815..830 => Fault::SlowHeaders,
        830..840 => Fault::SlowDrip,
        840..870 => Fault::RetryAfterSeconds,
        870..890 => Fault::RetryAfterDate,
        890..905 => Fault::RetryAfterHuge,
        905..925 => Fault::Refused,
        925..965 => Fault::H2Refused,
        _ => Fault::GoAway,
    };
    let post = (r >> 20).is_multiple_of(5);
    // One failure then success, or failing every time (one in four).
    let fails = match fault {
        Fault::Ok | Fault::H2Ok | Fault::GoAway => 0,
        Fault::SlowDrip | Fault::RetryAfterHuge | Fault::Refused => ALWAYS,
        Fault::RetryAfterDate => 1,
        _ if (r >> 32).is_multiple_of(4) => ALWAYS,
        _ => 1,
    };
    Plan {
        index,
        post,
        fault,
        fails,
    }
}

/// The outcome an input must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// 200 with the right body after exactly this many attempts.
    Ok(u32),
    /// 200 with the right body after at least this many attempts (the slow-header inputs:
    /// an answering attempt that the loaded machine made slower than the hop timeout is
    /// one more timeout, and is retried like the first).
    OkAtLeast(u32),
    /// This status after this many attempts.
    Status(u16, u32),
    /// An error of this kind after this many attempts.
    Err(ErrorKind, u32),
    /// A POST to the GOAWAY server, sent once: 200, or the `GOAWAY` as an `Io` error (not
    /// retried: hyper reports a `GOAWAY` on processed streams too, so it does not prove the
    /// POST unprocessed).
    OkOrErrOnce(ErrorKind),
}

impl Plan {
    pub fn expect(&self) -> Expect {
        let max = RETRIES + 1;
        let always = self.fails == ALWAYS;
        // A retry happens only where allowed: a POST is sent again only when the server
        // never processed it (connect refused, REFUSED_STREAM, GOAWAY).
        let again = !self.post;
        match self.fault {
            Fault::Ok | Fault::H2Ok => Expect::Ok(1),
            Fault::GoAway if self.post => Expect::OkOrErrOnce(ErrorKind::Io),
            Fault::GoAway => Expect::OkAtLeast(1),
            Fault::ResetBeforeHeaders
            | Fault::ResetAfterHeaders
            | Fault::Truncated
            | Fault::BadChunk => match (again, always) {
                (false, _) => Expect::Err(ErrorKind::Io, 1),
                (true, true) => Expect::Err(ErrorKind::Io, max),
                (true, false) => Expect::Ok(2),
            },
            Fault::SlowHeaders => match (again, always) {
                (false, _) => Expect::Err(ErrorKind::Timeout, 1),
                (true, true) => Expect::Err(ErrorKind::Timeout, max),
                (true, false) => Expect::OkAtLeast(2),
            },
            // The deadline passes during the first attempt: nothing is retried after it.
            Fault::SlowDrip => Expect::Err(ErrorKind::Timeout, 1),
            Fault::RetryAfterSeconds => match (again, always) {
                (false, _) => Expect::Status(503, 1),
                (true, true) => Expect::Status(503, max),
                (true, false) => Expect::Ok(2),
            },
            Fault::RetryAfterDate => match again {
                false => Expect::Status(429, 1),
                true => Expect::Ok(2),
            },
            Fault::RetryAfterHuge => Expect::Status(429, 1),
            Fault::Refused => Expect::Err(ErrorKind::Connect, max),
            Fault::H2Refused => match always {
                true => Expect::Err(ErrorKind::Io, max),
                false => Expect::Ok(2),
            },
        }
    }

    /// Whether attempt `n` (from 1) fails.
    pub fn fails_at(&self, attempt: u32) -> bool {
        self.fails == ALWAYS || attempt <= u32::from(self.fails)
    }

    pub fn path(&self) -> String {
        format!("/soak/{}", self.index)
    }

    /// The body of a good answer.
    pub fn body(&self) -> String {
        format!("input {} served\n", self.index)
    }

    /// The body a POST sends.
    pub fn post_body(&self) -> String {
        format!("payload of input {}", self.index)
    }
}

/// The input index in a request path `/soak/{i}`.
pub fn index_of(path: &str) -> Option<usize> {
    path.strip_prefix("/soak/")?.parse().ok()
}
