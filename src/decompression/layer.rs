//! [`DecompressionLayer`] (the configuration) and its [`DecompressionBuilder`].

use tower::Layer;

use super::service::Decompression;
use crate::error::Error;

/// Applies [`Decompression`] to a service.
///
/// This is also the (small, `Copy`) configuration of the middleware:
///
/// | option | default |
/// |---|---|
/// | codings asked for and decoded: [`gzip`](DecompressionBuilder::gzip), [`deflate`](DecompressionBuilder::deflate), [`br`](DecompressionBuilder::br), [`zstd`](DecompressionBuilder::zstd) | all four |
/// | [`max_decoded_size`](DecompressionBuilder::max_decoded_size) | the response's [`BodyLimit`](crate::ext::BodyLimit), else [`DEFAULT_BODY_LIMIT`](crate::DEFAULT_BODY_LIMIT) (64 MiB) |
///
/// A request's own [`BodyLimit`](crate::ext::BodyLimit) extension replaces the cap for
/// that request. `DecompressionLayer::default()` has the defaults above. See the
/// [module docs](super).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecompressionLayer {
    pub(super) gzip: bool,
    pub(super) deflate: bool,
    pub(super) br: bool,
    pub(super) zstd: bool,
    pub(super) max_decoded_size: Option<usize>,
}

impl Default for DecompressionLayer {
    fn default() -> Self {
        DecompressionLayer {
            gzip: true,
            deflate: true,
            br: true,
            zstd: true,
            max_decoded_size: None,
        }
    }
}

impl DecompressionLayer {
    /// Every coding, capped at the response's [`BodyLimit`](crate::ext::BodyLimit) (else
    /// 64 MiB).
    pub fn new() -> Self {
        DecompressionLayer::default()
    }

    /// Every coding, with the decoded size capped at `bytes`.
    ///
    /// Never fails, so it goes straight into `ServiceBuilder::layer`: 0 is raised to 1 byte.
    /// Use [`try_with_max_decoded_size`](Self::try_with_max_decoded_size) to refuse 0.
    pub fn with_max_decoded_size(bytes: usize) -> Self {
        DecompressionLayer {
            max_decoded_size: Some(bytes.max(1)),
            ..DecompressionLayer::default()
        }
    }

    /// Like [`with_max_decoded_size`](Self::with_max_decoded_size), but 0 is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    pub fn try_with_max_decoded_size(bytes: usize) -> Result<Self, Error> {
        DecompressionLayer::builder()
            .max_decoded_size(bytes)
            .build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> DecompressionBuilder {
        DecompressionBuilder::default()
    }

    /// The cap on the decoded size set on this layer, if any (else the response's
    /// [`BodyLimit`](crate::ext::BodyLimit) or 64 MiB applies).
    pub fn max_decoded_size(&self) -> Option<usize> {
        self.max_decoded_size
    }

    pub(super) fn decodes(&self, coding: super::adapter::Coding) -> bool {
        use super::adapter::Coding;
        match coding {
            Coding::Gzip => self.gzip,
            Coding::Deflate => self.deflate,
            Coding::Br => self.br,
            Coding::Zstd => self.zstd,
        }
    }

    /// Whether this layer asks for and decodes `coding` (`"gzip"`, `"deflate"`, `"br"`
    /// or `"zstd"`, ASCII case-insensitive).
    pub fn accepts(&self, coding: &str) -> bool {
        super::adapter::Coding::from_header(coding.to_ascii_lowercase().as_bytes())
            .is_some_and(|c| self.decodes(c))
    }
}

impl<S> Layer<S> for DecompressionLayer {
    type Service = Decompression<S>;

    fn layer(&self, inner: S) -> Decompression<S> {
        Decompression::from_layer(inner, self)
    }
}

/// Builds a [`DecompressionLayer`]; starts from the defaults (all four codings, the
/// response's cap).
///
/// A zero [`max_decoded_size`](Self::max_decoded_size) is recorded as an
/// [`ErrorKind::Config`](crate::ErrorKind::Config) error that [`build`](Self::build)
/// returns.
#[derive(Debug, Default)]
#[must_use]
pub struct DecompressionBuilder {
    config: DecompressionLayer,
    error: Option<Error>,
}

impl DecompressionBuilder {
    /// Caps the decoded size of a compressed response body at `bytes`: reading past it
    /// fails with [`ErrorKind::BodyTooLarge`](crate::ErrorKind::BodyTooLarge).
    pub fn max_decoded_size(mut self, bytes: usize) -> Self {
        if bytes == 0 {
            if self.error.is_none() {
                self.error = Some(Error::config(
                    "max_decoded_size must be greater than zero (got 0)",
                ));
            }
            return self;
        }
        self.config.max_decoded_size = Some(bytes);
        self
    }

    /// Whether to ask for and decode gzip (default on).
    pub fn gzip(mut self, on: bool) -> Self {
        self.config.gzip = on;
        self
    }

    /// Whether to ask for and decode deflate (zlib format, as HTTP defines it; default on).
    pub fn deflate(mut self, on: bool) -> Self {
        self.config.deflate = on;
        self
    }

    /// Whether to ask for and decode Brotli (default on).
    pub fn br(mut self, on: bool) -> Self {
        self.config.br = on;
        self
    }

    /// Whether to ask for and decode Zstandard (default on).
    pub fn zstd(mut self, on: bool) -> Self {
        self.config.zstd = on;
        self
    }

    /// Builds the layer, or returns the first configuration error.
    pub fn build(self) -> Result<DecompressionLayer, Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.config),
        }
    }
}
