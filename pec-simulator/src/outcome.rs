//! What happens to a submission: the receipts the providers send for it, chosen by the
//! recipient's local part (crate doc).

use io_channels::pec::daticert::PecKind;

/// What happens to a submission, chosen by the recipient's local part (crate doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, then delivered.
    Delivered,
    /// Accepted, a 12-hour warning, then delivered.
    WarnedThenDelivered,
    /// Refused by the sender's provider.
    NotAccepted,
    /// Accepted, then not delivered.
    DeliveryError,
    /// Accepted, then stopped for a virus.
    Virus,
    /// Accepted, then nothing.
    AcceptedOnly,
    /// Nothing at all.
    Silent,
}

impl Outcome {
    /// The outcome the recipient `address` asks for.
    pub fn for_recipient(address: &str) -> Self {
        let local = address
            .split('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let starts = |prefix: &str| local.starts_with(prefix);
        if starts("non-accettazione") {
            Self::NotAccepted
        } else if starts("errore-consegna") {
            Self::DeliveryError
        } else if starts("preavviso") {
            Self::WarnedThenDelivered
        } else if starts("virus") {
            Self::Virus
        } else if starts("silenzio") {
            Self::AcceptedOnly
        } else if starts("muto") {
            Self::Silent
        } else {
            Self::Delivered
        }
    }

    /// The receipts, in the order the providers send them.
    pub fn receipts(self) -> &'static [PecKind] {
        match self {
            Self::Delivered => &[PecKind::Accepted, PecKind::Delivered],
            Self::WarnedThenDelivered => &[
                PecKind::Accepted,
                PecKind::DeliveryErrorWarning,
                PecKind::Delivered,
            ],
            Self::NotAccepted => &[PecKind::NotAccepted],
            Self::DeliveryError => &[PecKind::Accepted, PecKind::DeliveryError],
            Self::Virus => &[PecKind::Accepted, PecKind::VirusDetected],
            Self::AcceptedOnly => &[PecKind::Accepted],
            Self::Silent => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipient_chooses_the_outcome() {
        for (address, outcome) in [
            ("mario@pec.example.it", Outcome::Delivered),
            ("non-accettazione@x", Outcome::NotAccepted),
            ("Errore-Consegna.1@x", Outcome::DeliveryError),
            ("preavviso@x", Outcome::WarnedThenDelivered),
            ("virus@x", Outcome::Virus),
            ("silenzio@x", Outcome::AcceptedOnly),
            ("muto@x", Outcome::Silent),
        ] {
            assert_eq!(Outcome::for_recipient(address), outcome, "{address}");
        }
    }
}
