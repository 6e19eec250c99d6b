//! The state record of a message: everything about it that changes, in one sled value, so
//! that the outcomes of a message's deliveries, its journal head and a wake-up of its callback
//! outbox are one write of one small key (sled's cost is per key and per byte written). The
//! journal's entries are not in it: they are written once each, as `JOURNAL` records
//! (`sled_store/journal.rs`), and never rewritten.
//!
//! Layout: a version byte (1), then length-prefixed (u32 big-endian) segments: the [`Header`]
//! as JSON, then a count byte and, per delivery, its channel code and its compact JSON
//! ([`StoredDelivery`]: what changes, under one-letter keys; the id, sender, recipient and
//! expiry come from the header). Deliveries are kept as bytes: a write decodes only the small
//! header and replaces one delivery's bytes (encoded by the writer, off the committer thread).
//! sled's cost grows with the bytes rewritten, and this record is rewritten at every outcome:
//! it is kept small on purpose.

use io_core::{
    CallbackCursor, ChannelKind, Delivery, DeliveryId, DeliveryState, DeliveryTarget, FiscalCode,
    InstallationId, JournalHead, MessageId, MessageStatus, OutcomeRecord, ServiceId, StoreError,
    Timestamp,
};
use serde::{Deserialize, Serialize};

const VERSION: u8 = 1;

/// The small, decoded part of the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    /// The sender (the scheduler's fairness key for the message's tasks).
    #[serde(rename = "v")]
    pub(crate) service_id: ServiceId,
    /// The recipient.
    #[serde(rename = "f")]
    pub(crate) fiscal_code: FiscalCode,
    /// The message's time-to-live end, every delivery's expiry.
    #[serde(rename = "e")]
    pub(crate) expires_at: Timestamp,
    /// The message's status.
    #[serde(rename = "s")]
    pub(crate) status: MessageStatus,
    /// When the status last changed.
    #[serde(rename = "u")]
    pub(crate) updated_at: Timestamp,
    /// When the message was accepted (a process task's due time).
    #[serde(rename = "c")]
    pub(crate) created_at: Timestamp,
    /// The journal's newest entry: its `seq + 1` is the journal's length.
    #[serde(rename = "h")]
    pub(crate) head: Option<JournalHead>,
    /// The sender-callback outbox, while open.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub(crate) outbox: Option<Outbox>,
}

/// A delivery as the state keeps it: what changes, under one-letter keys.
#[derive(Serialize, Deserialize)]
struct StoredDelivery {
    #[serde(rename = "t")]
    target: DeliveryTarget,
    #[serde(rename = "s")]
    state: DeliveryState,
    #[serde(rename = "a")]
    attempts: u32,
    #[serde(rename = "p", default, skip_serializing_if = "is_false")]
    outcome_pending: bool,
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    devices_notified: Vec<InstallationId>,
    #[serde(rename = "n")]
    next_attempt_at: Timestamp,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    last_outcome: Option<OutcomeRecord>,
    #[serde(rename = "u")]
    updated_at: Timestamp,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    legal_delivery_at: Option<Timestamp>,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// An open callback outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Outbox {
    /// How far the receiver got.
    pub(crate) cursor: CallbackCursor,
    /// When its task is due; `None` while it waits for the next journal entry.
    pub(crate) due: Option<Timestamp>,
}

/// A message's state record, decoded down to bytes per delivery.
#[derive(Debug, Clone)]
pub(crate) struct MessageState {
    pub(crate) header: Header,
    /// Each delivery's channel and JSON, in channel order.
    pub(crate) deliveries: Vec<(ChannelKind, Vec<u8>)>,
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: "message state",
        detail: detail.into(),
    }
}

/// Reads length-prefixed segments.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, StoreError> {
        let (&first, rest) = self
            .bytes
            .split_first()
            .ok_or_else(|| corrupt("truncated"))?;
        self.bytes = rest;
        Ok(first)
    }

    fn segment(&mut self) -> Result<&'a [u8], StoreError> {
        let (len, rest) = self
            .bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("truncated length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(corrupt("truncated segment"));
        }
        let (segment, rest) = rest.split_at(len);
        self.bytes = rest;
        Ok(segment)
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn push_segment(out: &mut Vec<u8>, segment: &[u8]) {
    out.extend_from_slice(&(segment.len() as u32).to_be_bytes());
    out.extend_from_slice(segment);
}

/// Encodes a delivery as its segment of the state.
pub(crate) fn encode_delivery(delivery: &Delivery) -> Vec<u8> {
    let stored = StoredDelivery {
        target: delivery.target.clone(),
        state: delivery.state.clone(),
        attempts: delivery.attempts,
        outcome_pending: delivery.outcome_pending,
        devices_notified: delivery.devices_notified.clone(),
        next_attempt_at: delivery.next_attempt_at,
        last_outcome: delivery.last_outcome.clone(),
        updated_at: delivery.updated_at,
        legal_delivery_at: delivery.legal_delivery_at,
    };
    // Plain data: serializing it cannot fail.
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// Decodes the delivery segment of `channel` of `message`, whose state has `header`.
pub(crate) fn decode_delivery(
    header: &Header,
    message: MessageId,
    channel: ChannelKind,
    bytes: &[u8],
) -> Result<Delivery, StoreError> {
    let stored: StoredDelivery =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            what: "delivery",
            detail: e.to_string(),
        })?;
    Ok(Delivery {
        id: DeliveryId::new(message, channel),
        service_id: header.service_id.clone(),
        fiscal_code: header.fiscal_code.clone(),
        target: stored.target,
        state: stored.state,
        attempts: stored.attempts,
        outcome_pending: stored.outcome_pending,
        devices_notified: stored.devices_notified,
        next_attempt_at: stored.next_attempt_at,
        expires_at: header.expires_at,
        last_outcome: stored.last_outcome,
        legal_delivery_at: stored.legal_delivery_at,
        updated_at: stored.updated_at,
    })
}

impl MessageState {
    /// A new state with no deliveries and no entries.
    pub(crate) fn new(header: Header) -> Self {
        Self {
            header,
            deliveries: Vec::new(),
        }
    }

    /// Decodes a stored record.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut reader = Reader { bytes };
        let version = reader.byte()?;
        if version != VERSION {
            return Err(corrupt(format!("unknown version {version}")));
        }
        let header: Header =
            serde_json::from_slice(reader.segment()?).map_err(|e| corrupt(e.to_string()))?;
        let count = reader.byte()?;
        let mut deliveries = Vec::with_capacity(count.into());
        for _ in 0..count {
            let code = reader.byte()?;
            let channel =
                ChannelKind::from_code(code).ok_or_else(|| corrupt("unknown channel code"))?;
            deliveries.push((channel, reader.segment()?.to_vec()));
        }
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Self { header, deliveries })
    }

    /// Only the header of a stored record (reads that need nothing else).
    pub(crate) fn decode_header(bytes: &[u8]) -> Result<Header, StoreError> {
        let mut reader = Reader { bytes };
        let version = reader.byte()?;
        if version != VERSION {
            return Err(corrupt(format!("unknown version {version}")));
        }
        serde_json::from_slice(reader.segment()?).map_err(|e| corrupt(e.to_string()))
    }

    /// One delivery of the stored record of `message`, decoding only the header beside it.
    pub(crate) fn decode_one_delivery(
        bytes: &[u8],
        message: MessageId,
        channel: ChannelKind,
    ) -> Result<Option<Delivery>, StoreError> {
        let mut reader = Reader { bytes };
        let version = reader.byte()?;
        if version != VERSION {
            return Err(corrupt(format!("unknown version {version}")));
        }
        let header: Header =
            serde_json::from_slice(reader.segment()?).map_err(|e| corrupt(e.to_string()))?;
        let count = reader.byte()?;
        for _ in 0..count {
            let code = reader.byte()?;
            let segment = reader.segment()?;
            if code == channel.code() {
                return decode_delivery(&header, message, channel, segment).map(Some);
            }
        }
        Ok(None)
    }

    /// The stored form.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).unwrap_or_default();
        let size = 1
            + 4
            + header.len()
            + 1
            + self
                .deliveries
                .iter()
                .map(|(_, d)| 5 + d.len())
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.push(VERSION);
        push_segment(&mut out, &header);
        out.push(self.deliveries.len() as u8);
        for (channel, delivery) in &self.deliveries {
            out.push(channel.code());
            push_segment(&mut out, delivery);
        }
        out
    }

    /// Replaces (or adds, in channel order) a delivery's encoded form.
    pub(crate) fn put_delivery(&mut self, channel: ChannelKind, encoded: Vec<u8>) {
        match self.deliveries.iter_mut().find(|(c, _)| *c == channel) {
            Some((_, bytes)) => *bytes = encoded,
            None => {
                self.deliveries.push((channel, encoded));
                self.deliveries.sort_by_key(|(c, _)| *c);
            }
        }
    }

    /// Every delivery of `message`, decoded.
    pub(crate) fn decoded_deliveries(
        &self,
        message: MessageId,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries
            .iter()
            .map(|(channel, bytes)| decode_delivery(&self.header, message, *channel, bytes))
            .collect()
    }

    /// The delivery of `channel`, decoded.
    pub(crate) fn delivery(
        &self,
        message: MessageId,
        channel: ChannelKind,
    ) -> Result<Option<Delivery>, StoreError> {
        self.deliveries
            .iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, bytes)| decode_delivery(&self.header, message, channel, bytes))
            .transpose()
    }

    /// How many entries the journal has.
    pub(crate) fn journal_len(&self) -> u64 {
        self.header.journal_len()
    }

    /// Whether the journal has entries the callback receiver has not acknowledged.
    pub(crate) fn outbox_is_behind(&self) -> bool {
        let len = self.journal_len();
        self.header
            .outbox
            .is_some_and(|o| o.cursor.acknowledged < len)
    }
}

impl Header {
    /// How many entries the journal has.
    pub(crate) fn journal_len(&self) -> u64 {
        self.head.as_ref().map_or(0, |head| head.seq + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(channel: ChannelKind) -> Delivery {
        Delivery {
            id: DeliveryId::new(message(), channel),
            service_id: ServiceId::parse("svc").unwrap(),
            fiscal_code: FiscalCode::parse("RSSMRA85T10A562S").unwrap(),
            target: DeliveryTarget::Push,
            state: DeliveryState::Pending,
            attempts: 0,
            outcome_pending: false,
            devices_notified: vec![],
            next_attempt_at: Timestamp::from_millis(5),
            expires_at: Timestamp::from_millis(50),
            last_outcome: None,
            legal_delivery_at: None,
            updated_at: Timestamp::from_millis(5),
        }
    }

    fn message() -> MessageId {
        MessageId::from_parts(1, 2)
    }

    fn header(status: MessageStatus) -> Header {
        Header {
            service_id: ServiceId::parse("svc").unwrap(),
            fiscal_code: FiscalCode::parse("RSSMRA85T10A562S").unwrap(),
            expires_at: Timestamp::from_millis(50),
            status,
            updated_at: Timestamp::from_millis(3),
            created_at: Timestamp::from_millis(2),
            head: None,
            outbox: None,
        }
    }

    #[test]
    fn a_state_round_trips_and_each_part_reads_alone() {
        let mut state = MessageState::new(Header {
            outbox: Some(Outbox {
                cursor: CallbackCursor {
                    acknowledged: 1,
                    attempts: 0,
                },
                due: None,
            }),
            ..header(MessageStatus::Processed)
        });
        state.put_delivery(
            ChannelKind::Push,
            encode_delivery(&delivery(ChannelKind::Push)),
        );
        state.put_delivery(
            ChannelKind::Email,
            encode_delivery(&delivery(ChannelKind::Email)),
        );
        state.header.head = Some(JournalHead {
            seq: 1,
            hash: "ab".repeat(32),
        });
        let bytes = state.encode();
        let back = MessageState::decode(&bytes).unwrap();
        assert_eq!(back.header, state.header);
        assert_eq!(
            back.deliveries.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            vec![ChannelKind::Email, ChannelKind::Push]
        );
        assert_eq!(MessageState::decode_header(&bytes).unwrap(), state.header);
        assert_eq!(
            MessageState::decode_one_delivery(&bytes, message(), ChannelKind::Push).unwrap(),
            Some(delivery(ChannelKind::Push))
        );
        assert_eq!(
            back.decoded_deliveries(message()).unwrap(),
            vec![delivery(ChannelKind::Email), delivery(ChannelKind::Push)]
        );
        assert_eq!(
            MessageState::decode_one_delivery(&bytes, message(), ChannelKind::Inbox).unwrap(),
            None
        );
        assert!(back.outbox_is_behind());
    }

    #[test]
    fn a_truncated_or_foreign_record_is_corrupt_not_a_panic() {
        let bytes = MessageState::new(header(MessageStatus::Accepted)).encode();
        for cut in 0..bytes.len() {
            assert!(MessageState::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut foreign = bytes.clone();
        foreign[0] = 9;
        assert!(MessageState::decode(&foreign).is_err());
    }
}
