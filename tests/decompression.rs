//! The decompression layer over real loopback HTTP: each coding, `Accept-Encoding`, the
//! decoded-size cap against a 1 GiB gzip bomb, corrupt data, pass-through, extensions.

#![cfg(feature = "decompression")]

mod support;

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastreq::decompression::{Decompression, DecompressionBody, DecompressionLayer};
use fastreq::ext::BodyLimit;
use fastreq::{Backend, Body, ErrorKind, ResponseBody, ResponseExt};
use flate2::{Compress, Compression, FlushCompress};
use http_body_util::BodyExt;
use support::{Reply, TestServer};
use tower::{Layer, ServiceExt};

const T: Duration = Duration::from_secs(30);
const MIB: usize = 1 << 20;

/// `"fastreq decodes brotli. "` × 40 (960 bytes), compressed once with the `brotli` crate
/// (quality 11, window 22).
const BR_TEXT: &str = "fastreq decodes brotli. ";
const BR_BYTES: &[u8] = &[
    27, 191, 3, 248, 197, 110, 57, 173, 55, 76, 198, 29, 78, 169, 47, 61, 162, 194, 56, 193, 98,
    83, 247, 134, 31, 65, 239, 224, 194, 166, 239, 149, 0,
];
/// `"fastreq decodes zstd. "` × 40 (880 bytes), compressed once with `zstd -19`.
const ZSTD_TEXT: &str = "fastreq decodes zstd. ";
const ZSTD_BYTES: &[u8] = &[
    40, 181, 47, 253, 100, 112, 2, 237, 0, 0, 176, 102, 97, 115, 116, 114, 101, 113, 32, 100, 101,
    99, 111, 100, 101, 115, 32, 122, 115, 116, 100, 46, 32, 1, 0, 174, 102, 53, 155, 51, 25, 22,
    66,
];

fn zlib(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    Bytes::from(enc.finish().unwrap())
}

/// Raw deflate of `input` ended by a full flush: byte-aligned, not final, and with no
/// back-reference into what came before, so such chunks can be concatenated.
fn deflate_full_flush(c: &mut Compress, mut input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    loop {
        let before = c.total_in();
        out.reserve(4096);
        c.compress_vec(input, &mut out, FlushCompress::Full)
            .unwrap();
        input = &input[(c.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            return out;
        }
    }
}

/// A valid gzip stream that decodes to `mib` MiB of zeros, built in milliseconds: one MiB
/// of zeros is deflated (with a full flush) and the steady-state chunk repeated, instead of
/// compressing the whole thing (which takes ~30 s per GiB in a debug build).
fn gzip_zeros(mib: usize) -> Bytes {
    assert!(mib >= 2);
    let zeros = vec![0u8; MIB];
    let mut c = Compress::new(Compression::best(), false);
    let first = deflate_full_flush(&mut c, &zeros);
    let steady = deflate_full_flush(&mut c, &zeros);
    assert_eq!(
        steady,
        deflate_full_flush(&mut c, &zeros),
        "deflate reached a steady state"
    );

    let mut chunk_crc = flate2::Crc::new();
    chunk_crc.update(&zeros);
    let mut crc = flate2::Crc::new();
    for _ in 0..mib {
        crc.combine(&chunk_crc);
    }

    let mut out = Vec::with_capacity(18 + first.len() + steady.len() * (mib - 1));
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]);
    out.extend_from_slice(&first);
    for _ in 1..mib {
        out.extend_from_slice(&steady);
    }
    out.extend_from_slice(&[0x03, 0x00]); // an empty final block (fixed Huffman)
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&((mib as u64 * MIB as u64) as u32).to_le_bytes());
    Bytes::from(out)
}

/// 1 GiB of zeros, gzipped (about 1 MB).
fn bomb() -> Bytes {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    BOMB.get_or_init(|| gzip_zeros(1024)).clone()
}

#[test]
fn the_bomb_generator_makes_valid_gzip() {
    let data = gzip_zeros(3);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut out)
        .expect("valid gzip, checksum and length included");
    assert_eq!(out.len(), 3 * MIB);
    assert!(out.iter().all(|&b| b == 0));
    let big = bomb();
    assert!(big.len() < 2 * MIB, "1 GiB of zeros in {} bytes", big.len());
}

fn server() -> TestServer {
    TestServer::start(|req| {
        let ae = req.header("accept-encoding").unwrap_or("<none>").to_owned();
        let reply = match req.path() {
            "/gzip" => Reply::bytes(support::gzip_bytes(
                "fastreq decodes gzip. ".repeat(40).as_bytes(),
            ))
            .header("content-encoding", "gzip"),
            "/deflate" => Reply::bytes(zlib("fastreq decodes deflate. ".repeat(40).as_bytes()))
                .header("content-encoding", "deflate"),
            "/br" => Reply::bytes(BR_BYTES).header("content-encoding", "br"),
            "/zstd" => Reply::bytes(ZSTD_BYTES).header("content-encoding", "zstd"),
            "/compress" => Reply::bytes(&b"LZW data"[..]).header("content-encoding", "compress"),
            "/plain" => Reply::text("x".repeat(100_000)),
            "/created" => Reply::bytes(support::gzip_bytes(b"made"))
                .with_status(201)
                .header("content-encoding", "gzip")
                .header("x-kept", "yes"),
            "/bomb" => Reply::bytes(bomb()).header("content-encoding", "gzip"),
            "/two-mib" => Reply::bytes(gzip_zeros(2)).header("content-encoding", "gzip"),
            "/garbage" => Reply::bytes(&b"this is not gzip at all, sorry"[..])
                .header("content-encoding", "gzip"),
            "/garbage-br" => {
                Reply::bytes(&b"\xff\xff\xff\xffnot brotli"[..]).header("content-encoding", "br")
            }
            "/garbage-zstd" => Reply::bytes(&b"\x28\xb5\x2f\xfdnot zstd at all"[..])
                .header("content-encoding", "zstd"),
            "/truncated" => {
                let full = support::gzip_bytes(
                    &(0..20_000u32)
                        .flat_map(|i| i.to_le_bytes())
                        .collect::<Vec<_>>(),
                );
                Reply::bytes(full.slice(..full.len() / 2)).header("content-encoding", "gzip")
            }
            "/reset" => {
                let full = support::gzip_bytes(
                    &(0..20_000u32)
                        .flat_map(|i| i.to_le_bytes())
                        .collect::<Vec<_>>(),
                );
                Reply::reset_after_headers(full.slice(..full.len() / 2))
                    .header("content-encoding", "gzip")
            }
            _ => Reply::status(404),
        };
        reply.header("x-accept-encoding", ae)
    })
}

async fn get(
    svc: &Decompression<Backend>,
    req: impl Into<fastreq::RequestBuilder>,
) -> http::Response<DecompressionBody<ResponseBody>> {
    let req: fastreq::RequestBuilder = req.into();
    tokio::time::timeout(T, svc.clone().oneshot(req.build().unwrap()))
        .await
        .expect("response in time")
        .expect("response")
}

fn layer(l: DecompressionLayer) -> Decompression<Backend> {
    l.layer(Backend::new())
}

#[tokio::test]
async fn each_coding_is_asked_for_and_decoded() {
    let server = server();
    let svc = layer(DecompressionLayer::new());
    let cases = [
        ("gzip", "fastreq decodes gzip. ".repeat(40)),
        ("deflate", "fastreq decodes deflate. ".repeat(40)),
        ("br", BR_TEXT.repeat(40)),
        ("zstd", ZSTD_TEXT.repeat(40)),
    ];
    for (coding, expected) in cases {
        let resp = get(&svc, fastreq::get(server.url(&format!("/{coding}")))).await;
        assert_eq!(resp.headers()["x-accept-encoding"], "zstd,gzip,deflate,br");
        assert!(resp.headers().get("content-encoding").is_none(), "{coding}");
        assert!(resp.headers().get("content-length").is_none(), "{coding}");
        assert_eq!(resp.body().coding(), Some(coding));
        assert_eq!(resp.text().await.unwrap(), expected, "{coding}");
    }
}

#[tokio::test]
async fn a_request_accept_encoding_is_kept() {
    let server = server();
    let svc = layer(DecompressionLayer::new());
    let resp = get(
        &svc,
        fastreq::get(server.url("/gzip")).header("accept-encoding", "gzip;q=1.0, identity;q=0.5"),
    )
    .await;
    assert_eq!(
        resp.headers()["x-accept-encoding"],
        "gzip;q=1.0, identity;q=0.5"
    );
    assert_eq!(
        resp.text().await.unwrap(),
        "fastreq decodes gzip. ".repeat(40)
    );
}

#[tokio::test]
async fn uncompressed_unknown_and_disabled_codings_pass_through() {
    let server = server();
    // A cap far below the plain body: plain bodies are not decoded, so not counted here.
    let svc = layer(DecompressionLayer::with_max_decoded_size(1_000));
    let resp = get(&svc, fastreq::get(server.url("/plain"))).await;
    assert_eq!(resp.headers()["content-length"], "100000");
    assert_eq!(resp.body().coding(), None);
    assert_eq!(resp.bytes().await.unwrap().len(), 100_000);

    let resp = get(&svc, fastreq::get(server.url("/compress"))).await;
    assert_eq!(resp.headers()["content-encoding"], "compress");
    assert_eq!(resp.bytes().await.unwrap(), &b"LZW data"[..]);

    let svc = layer(DecompressionLayer::builder().br(false).build().unwrap());
    let resp = get(&svc, fastreq::get(server.url("/br"))).await;
    assert_eq!(resp.headers()["x-accept-encoding"], "zstd,gzip,deflate");
    assert_eq!(resp.headers()["content-encoding"], "br");
    assert_eq!(resp.bytes().await.unwrap(), BR_BYTES);

    let none = DecompressionLayer::builder()
        .gzip(false)
        .deflate(false)
        .br(false)
        .zstd(false)
        .build()
        .unwrap();
    assert!(!none.accepts("gzip"));
    let resp = get(&layer(none), fastreq::get(server.url("/gzip"))).await;
    assert_eq!(resp.headers()["x-accept-encoding"], "<none>");
    assert_eq!(resp.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn a_one_gib_gzip_bomb_is_capped_at_one_mib_while_streaming() {
    let server = server();
    let bomb_len = bomb().len();
    let svc = layer(DecompressionLayer::with_max_decoded_size(MIB));
    let started = Instant::now();
    let resp = get(&svc, fastreq::get(server.url("/bomb?token=s3cret"))).await;
    assert_eq!(resp.body().limit(), Some(MIB));

    let body = resp.into_body();
    let mut body = std::pin::pin!(body);
    let (mut total, mut frames, mut largest) = (0usize, 0usize, 0usize);
    let err = loop {
        match tokio::time::timeout(T, body.frame())
            .await
            .expect("frame in time")
        {
            Some(Ok(frame)) => {
                let n = frame.data_ref().map_or(0, Bytes::len);
                total += n;
                largest = largest.max(n);
                frames += 1;
                assert!(frames < 100_000, "bounded loop");
            }
            Some(Err(e)) => break e,
            None => panic!("a 1 GiB body ended under a 1 MiB cap after {total} bytes"),
        }
    };
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{err}");
    assert!(err.to_string().contains("1048576"), "{err}");
    // The URL is in the error, its secret redacted.
    let url = err.url().expect("the error names the URL");
    assert!(url.contains("/bomb?token=REDACTED"), "{url}");
    // Streamed: at most the cap was handed out, in small frames, and nothing after.
    assert!(total <= MIB, "{total}");
    assert!(total > MIB - 64 * 1024, "{total}");
    assert!(largest <= 64 * 1024, "largest frame {largest}");
    assert!(
        body.frame().await.is_none(),
        "the body ends after the error"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(bomb_len < 2 * MIB);
}

#[tokio::test]
async fn the_cap_comes_from_request_layer_or_response() {
    let server = server();
    let url = server.url("/two-mib");
    let small_backend = || Backend::builder().body_limit(MIB).build().unwrap();

    // The response's BodyLimit (the backend's body_limit) caps the decoded size.
    let svc = DecompressionLayer::new().layer(small_backend());
    let resp = get(&svc, fastreq::get(&url)).await;
    assert_eq!(resp.extensions().get::<BodyLimit>(), Some(&BodyLimit(MIB)));
    assert_eq!(resp.body().limit(), Some(MIB));
    let err = resp.into_body().collect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{err}");

    // A request's own BodyLimit wins.
    let resp = get(&svc, fastreq::get(&url).body_limit(3 * MIB)).await;
    assert_eq!(resp.body().limit(), Some(3 * MIB));
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len(), 2 * MIB);
    assert!(bytes.iter().all(|&b| b == 0));

    // The layer's cap wins over the response's.
    let svc = layer(DecompressionLayer::with_max_decoded_size(MIB));
    let resp = get(&svc, fastreq::get(&url)).await;
    // The backend stamps no `BodyLimit` when its cap is the default.
    assert_eq!(resp.extensions().get::<BodyLimit>(), None);
    assert_eq!(resp.body().limit(), Some(MIB));
    assert_eq!(
        resp.bytes().await.unwrap_err().kind(),
        ErrorKind::BodyTooLarge
    );

    // Without any: 64 MiB.
    let svc = layer(DecompressionLayer::new());
    let resp = get(&svc, fastreq::get(&url)).await;
    assert_eq!(resp.body().limit(), Some(fastreq::DEFAULT_BODY_LIMIT));
    assert_eq!(resp.bytes().await.unwrap().len(), 2 * MIB);
}

#[tokio::test]
async fn corrupt_data_is_a_decode_error_and_transport_errors_keep_their_kind() {
    let server = server();
    let svc = layer(DecompressionLayer::new());
    for (path, coding) in [
        ("/garbage", "gzip"),
        ("/garbage-br", "br"),
        ("/garbage-zstd", "zstd"),
        ("/truncated", "gzip"),
    ] {
        let resp = get(&svc, fastreq::get(server.url(path))).await;
        let err = resp.bytes().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "{path}: {err}");
        assert!(err.to_string().contains(coding), "{path}: {err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "{path}: the decoder's error is kept"
        );
    }
    // The connection dies mid-body: an I/O error, not a decoding one.
    let resp = get(&svc, fastreq::get(server.url("/reset"))).await;
    let err = resp.bytes().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
}

#[tokio::test]
async fn status_headers_and_extensions_are_kept() {
    let server = server();
    let svc = layer(DecompressionLayer::new());
    let url = server.url("/created");
    let resp = get(&svc, fastreq::get(&url)).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-kept"], "yes");
    assert_eq!(resp.final_url().unwrap().to_string(), url);
    // A default cap is not stamped (readers take the default when it is absent).
    assert_eq!(resp.extensions().get::<BodyLimit>(), None);
    assert_eq!(resp.text().await.unwrap(), "made");
}

// In-memory services below: exact edge cases without a server.

fn gz_response(body: Bytes) -> http::Response<ResponseBody> {
    http::Response::builder()
        .header("content-encoding", "gzip")
        .body(ResponseBody::from(body))
        .unwrap()
}

#[tokio::test]
async fn the_cap_is_exact() {
    let data = Bytes::from(vec![7u8; 10_000]);
    let gz = support::gzip_bytes(&data);
    let backend = tower::service_fn(move |_req: http::Request<Body>| {
        let gz = gz.clone();
        async move { Ok::<_, fastreq::Error>(gz_response(gz)) }
    });
    let req = || fastreq::get("http://h.test/").build().unwrap();
    let at = DecompressionLayer::with_max_decoded_size(10_000).layer(backend.clone());
    let resp = at.oneshot(req()).await.unwrap();
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), data);
    let below = DecompressionLayer::with_max_decoded_size(9_999).layer(backend);
    let resp = below.oneshot(req()).await.unwrap();
    let err = resp.into_body().collect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
}

#[tokio::test]
async fn empty_compressed_bodies_and_inner_errors() {
    // A HEAD-like empty body announced as gzip is fine.
    let svc =
        DecompressionLayer::new().layer(tower::service_fn(|_req: http::Request<Body>| async {
            Ok::<_, fastreq::Error>(gz_response(Bytes::new()))
        }));
    let resp = svc
        .oneshot(fastreq::head("http://h.test/").build().unwrap())
        .await
        .unwrap();
    assert!(resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());

    // The inner service's errors come back as they are.
    let svc =
        DecompressionLayer::new().layer(tower::service_fn(|_req: http::Request<Body>| async {
            Err::<http::Response<ResponseBody>, _>(fastreq::Error::new(ErrorKind::Connect))
        }));
    let err = svc
        .oneshot(fastreq::get("http://h.test/").build().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
}

#[test]
fn configuration() {
    let err = DecompressionLayer::try_with_max_decoded_size(0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("max_decoded_size"), "{err}");
    let l = DecompressionLayer::default();
    assert_eq!(l.max_decoded_size(), None);
    assert!(["gzip", "deflate", "br", "zstd", "GZIP"]
        .iter()
        .all(|c| l.accepts(c)));
    assert!(!l.accepts("compress"));

    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    fn send<T: Send + 'static>() {}
    check::<DecompressionLayer>();
    check::<Decompression<Backend>>();
    send::<DecompressionBody<ResponseBody>>();
}
