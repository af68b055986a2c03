//! The syntax of durations (`500ms`, `5s`, `1m`, `1h`) and sizes (`65536`, `64KiB`,
//! `1MiB`, `64KB`) in flags and the file.

pub use registry_api::parse_duration;

/// `65536`, `64KiB`, `1MiB`, `64KB`: bytes, with an optional binary or decimal unit.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (n, unit) = number_and_unit(text)
        .and_then(|(n, unit)| Some((usize::try_from(n).ok()?, unit)))
        .ok_or_else(|| format!("{text:?} is not a size: expected e.g. 65536, 64KiB or 1MiB"))?;
    let factor: usize = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use B, KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    n.checked_mul(factor).ok_or_else(|| format!("{text:?} is too large"))
}

/// Splits `64KiB` into `(64, "KiB")`: leading digits, then the rest trimmed. `None` when
/// there are no digits or the number overflows.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit.trim()))
}
