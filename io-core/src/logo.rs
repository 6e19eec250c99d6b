//! The logo of a service or of an institution (IO's `PUT /manage/services/{serviceId}/logo` and
//! `PUT /organizations/{organization_fiscal_code}/logo`): a PNG image the citizen's app shows next
//! to the service.
//!
//! A logo is checked once, when it is uploaded, by walking the PNG's chunks: the signature,
//! `IHDR` first with sane dimensions and a colour type, bit depth, compression, filter and
//! interlace method PNG defines, at least one `IDAT`, an empty `IEND` last, every chunk's CRC.
//! The check is structural: the compressed pixels are not inflated (the app's image decoder
//! does that), so the side limit is what bounds the memory a decoder needs (1024² pixels at
//! most 8 bytes each: 8 MiB). A file that fails never reaches the store.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{OrganizationFiscalCode, ServiceId, Timestamp};

/// The largest logo kept, in bytes of PNG (its base64 form fits the server's default body limit).
pub const MAX_LOGO_BYTES: usize = 128 * 1024;

/// The largest width or height accepted, in pixels.
pub const MAX_LOGO_SIDE: u32 = 1024;

/// The eight bytes every PNG file starts with.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// Whose logo it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogoOwner {
    /// A service's own logo.
    Service(ServiceId),
    /// An institution's logo, shown for its services that have none.
    Organization(OrganizationFiscalCode),
}

impl fmt::Display for LogoOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(id) => write!(f, "service {id}"),
            Self::Organization(code) => write!(f, "institution {code}"),
        }
    }
}

/// A validated PNG logo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    png: Vec<u8>,
    width: u32,
    height: u32,
    updated_at: Timestamp,
}

/// Why an upload is not a logo io keeps (each a permanent refusal: the same bytes fail again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoError {
    /// Nothing was sent.
    #[error("the logo is empty")]
    Empty,
    /// Over [`MAX_LOGO_BYTES`].
    #[error("the logo is {size} bytes, over the limit of {MAX_LOGO_BYTES}")]
    TooLarge {
        /// The size sent.
        size: usize,
    },
    /// The bytes do not start with PNG's signature.
    #[error("the logo is not a PNG image (its first bytes are not PNG's signature)")]
    NotPng,
    /// A chunk is cut short, has a wrong CRC, or the chunks are not in PNG's order.
    #[error("the PNG image is malformed: {0}")]
    Malformed(String),
    /// A width or height of zero or over [`MAX_LOGO_SIDE`].
    #[error("the image is {width}×{height} pixels; each side must be 1 to {MAX_LOGO_SIDE}")]
    BadDimensions {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

impl Logo {
    /// Checks `png` and keeps it as uploaded at `now`.
    pub fn from_png(png: Vec<u8>, now: Timestamp) -> Result<Self, LogoError> {
        if png.is_empty() {
            return Err(LogoError::Empty);
        }
        if png.len() > MAX_LOGO_BYTES {
            return Err(LogoError::TooLarge { size: png.len() });
        }
        let (width, height) = check_png(&png)?;
        Ok(Self {
            png,
            width,
            height,
            updated_at: now,
        })
    }

    /// The PNG file.
    pub fn png(&self) -> &[u8] {
        &self.png
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// When it was uploaded.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// A logo a store kept: `from_png` checked it when it was uploaded, so only its signature
    /// and dimensions are read again (a later, stricter upload rule does not turn a kept logo
    /// into a damaged record, and a read costs no CRC).
    pub fn from_stored(png: Vec<u8>, updated_at: Timestamp) -> Result<Self, LogoError> {
        let header = png
            .strip_prefix(&PNG_SIGNATURE[..])
            .ok_or(LogoError::NotPng)?;
        if header.len() < 16 || &header[4..8] != b"IHDR" {
            return Err(LogoError::Malformed("no IHDR chunk first".to_owned()));
        }
        let width = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let height = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
        Ok(Self {
            png,
            width,
            height,
            updated_at,
        })
    }
}

/// Walks the chunks of `png`; its width and height when it is a well-formed PNG.
fn check_png(png: &[u8]) -> Result<(u32, u32), LogoError> {
    let Some(mut rest) = png.strip_prefix(&PNG_SIGNATURE[..]) else {
        return Err(LogoError::NotPng);
    };
    let mut dimensions = None;
    let mut seen_data = false;
    let mut index = 0usize;
    loop {
        if rest.len() < 12 {
            return Err(LogoError::Malformed(format!(
                "chunk {index} is cut short (the image ends before IEND)"
            )));
        }
        let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let name = String::from_utf8_lossy(&kind).into_owned();
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(LogoError::Malformed(format!(
                "chunk {index} has an invalid type {kind:02x?}"
            )));
        }
        if rest.len() - 12 < length {
            return Err(LogoError::Malformed(format!(
                "chunk {index} ({name}) announces {length} bytes, more than the image holds"
            )));
        }
        let data = &rest[8..8 + length];
        let stored_crc = u32::from_be_bytes([
            rest[8 + length],
            rest[9 + length],
            rest[10 + length],
            rest[11 + length],
        ]);
        if crc32(&rest[4..8 + length]) != stored_crc {
            return Err(LogoError::Malformed(format!(
                "chunk {index} ({name}) has a wrong CRC"
            )));
        }
        match (&kind, index) {
            (b"IHDR", 0) => {
                if length != 13 {
                    return Err(LogoError::Malformed(format!(
                        "IHDR is {length} bytes instead of 13"
                    )));
                }
                let width = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let height = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                if !(1..=MAX_LOGO_SIDE).contains(&width) || !(1..=MAX_LOGO_SIDE).contains(&height) {
                    return Err(LogoError::BadDimensions { width, height });
                }
                check_header_fields(data[8], data[9], data[10], data[11], data[12])?;
                dimensions = Some((width, height));
            }
            (_, 0) => {
                return Err(LogoError::Malformed(format!(
                    "the first chunk is {name}, not IHDR"
                )));
            }
            (b"IHDR", _) => {
                return Err(LogoError::Malformed("a second IHDR chunk".to_owned()));
            }
            (b"IDAT", _) => seen_data = true,
            (b"IEND", _) => {
                if length != 0 {
                    return Err(LogoError::Malformed("IEND is not empty".to_owned()));
                }
                if !seen_data {
                    return Err(LogoError::Malformed("no IDAT chunk before IEND".to_owned()));
                }
                if rest.len() != 12 + length {
                    return Err(LogoError::Malformed(
                        "bytes follow the IEND chunk".to_owned(),
                    ));
                }
                return dimensions.ok_or_else(|| LogoError::Malformed("no IHDR".to_owned()));
            }
            _ => {}
        }
        rest = &rest[12 + length..];
        index += 1;
    }
}

/// IHDR's bit depth and colour type must be a pair PNG defines; compression and filter method
/// 0, interlace 0 or 1.
fn check_header_fields(
    bit_depth: u8,
    colour_type: u8,
    compression: u8,
    filter: u8,
    interlace: u8,
) -> Result<(), LogoError> {
    let depths: &[u8] = match colour_type {
        0 => &[1, 2, 4, 8, 16],
        3 => &[1, 2, 4, 8],
        2 | 4 | 6 => &[8, 16],
        _ => &[],
    };
    if !depths.contains(&bit_depth) {
        return Err(LogoError::Malformed(format!(
            "IHDR: bit depth {bit_depth} with colour type {colour_type} is not a PNG combination"
        )));
    }
    if compression != 0 || filter != 0 || interlace > 1 {
        return Err(LogoError::Malformed(format!(
            "IHDR: compression {compression}, filter {filter}, interlace {interlace} are not PNG's"
        )));
    }
    Ok(())
}

/// PNG's CRC-32 (ISO 3309, the one of zlib), bit by bit: logos are small and checked once.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// A small well-formed PNG of `width`×`height` (mid-grey, stored uncompressed), for examples
/// and for the tests of the crates that store and serve logos.
pub fn sample_png(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no interlace
    // The raw scanlines (a filter byte then the pixels) in one stored deflate block, as zlib.
    let mut raw = Vec::new();
    for _ in 0..height {
        raw.push(0);
        raw.extend(std::iter::repeat_n(0x80, width as usize));
    }
    // Stored deflate blocks of at most 65,535 bytes, the last one marked final.
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(usize::from(u16::MAX)).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut png = PNG_SIGNATURE.to_vec();
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000)
    }

    #[test]
    fn crc_is_zlibs() {
        // The CRC-32 of "123456789", the standard check value.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn a_well_formed_png_is_kept_with_its_dimensions() {
        let logo = Logo::from_png(sample_png(30, 20), now()).unwrap();
        assert_eq!((logo.width(), logo.height()), (30, 20));
        assert_eq!(logo.png(), sample_png(30, 20).as_slice());
        assert_eq!(logo.updated_at(), now());
    }

    #[test]
    fn what_is_not_a_png_is_refused() {
        assert_eq!(Logo::from_png(vec![], now()), Err(LogoError::Empty));
        assert_eq!(
            Logo::from_png(b"GIF89a....".to_vec(), now()),
            Err(LogoError::NotPng)
        );
        let big = vec![0; MAX_LOGO_BYTES + 1];
        assert_eq!(
            Logo::from_png(big, now()),
            Err(LogoError::TooLarge {
                size: MAX_LOGO_BYTES + 1
            })
        );
    }

    #[test]
    fn a_damaged_png_is_refused_naming_the_damage() {
        let png = sample_png(4, 4);
        // Cut short.
        let cut = png[..png.len() - 5].to_vec();
        assert!(
            matches!(Logo::from_png(cut, now()), Err(LogoError::Malformed(m)) if m.contains("cut short"))
        );
        // One pixel byte changed: IDAT's CRC no longer matches.
        let mut flipped = png.clone();
        let at = flipped.len() - 20;
        flipped[at] ^= 0xff;
        assert!(
            matches!(Logo::from_png(flipped, now()), Err(LogoError::Malformed(m)) if m.contains("CRC"))
        );
        // Bytes after IEND.
        let mut trailing = png.clone();
        trailing.push(0);
        assert!(
            matches!(Logo::from_png(trailing, now()), Err(LogoError::Malformed(m)) if m.contains("after the IEND") || m.contains("follow the IEND"))
        );
    }

    #[test]
    fn header_fields_must_be_png_s() {
        // Colour type 9 does not exist; 16-bit palette does not either.
        for (offset, value) in [(25, 9u8), (24, 16)] {
            let mut png = sample_png(4, 4);
            png[offset] = value;
            if offset == 24 {
                png[25] = 3;
            }
            let crc = crc32(&png[12..29]);
            png[29..33].copy_from_slice(&crc.to_be_bytes());
            assert!(
                matches!(Logo::from_png(png, now()), Err(LogoError::Malformed(m)) if m.starts_with("IHDR")),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn a_kept_logo_is_read_back_without_the_upload_checks() {
        let png = sample_png(40, 30);
        let kept = Logo::from_stored(png.clone(), now()).unwrap();
        assert_eq!((kept.width(), kept.height()), (40, 30));
        assert_eq!(kept, Logo::from_png(png, now()).unwrap());
        assert_eq!(
            Logo::from_stored(b"GIF89a".to_vec(), now()),
            Err(LogoError::NotPng)
        );
    }

    #[test]
    fn the_sample_spans_several_deflate_blocks_when_large() {
        let big = sample_png(MAX_LOGO_SIDE, 100);
        assert!(big.len() > 65_535);
        assert!(Logo::from_png(big, now()).is_ok());
    }

    #[test]
    fn dimensions_are_bounded() {
        assert_eq!(
            Logo::from_png(sample_png(0, 3), now()),
            Err(LogoError::BadDimensions {
                width: 0,
                height: 3
            })
        );
        assert_eq!(
            Logo::from_png(sample_png(MAX_LOGO_SIDE + 1, 1), now()),
            Err(LogoError::BadDimensions {
                width: MAX_LOGO_SIDE + 1,
                height: 1
            })
        );
    }

    #[test]
    fn no_arbitrary_bytes_panic_the_check() {
        // Every prefix of a valid PNG, and each byte of it corrupted, is refused without panic.
        let png = sample_png(3, 2);
        for end in 0..png.len() {
            assert!(Logo::from_png(png[..end].to_vec(), now()).is_err());
        }
        for at in 0..png.len() {
            let mut bad = png.clone();
            bad[at] ^= 0x01;
            assert!(Logo::from_png(bad, now()).is_err(), "byte {at}");
        }
    }
}
