//! Byte layouts of the sled keys. Every layout sorts the way its range scans need:
//! big-endian integers, fixed-width ids, and a 0x00 separator after variable-length text (no
//! id or key may contain 0x00).

use io_core::{ChannelKind, DeliveryId, FiscalCode, MessageId, ServiceId, TaskKind, Timestamp};

/// The separator after variable-length text.
pub(crate) const SEP: u8 = 0x00;

/// A timestamp as 8 bytes that sort like the signed value.
pub(crate) fn time(at: Timestamp) -> [u8; 8] {
    ((at.as_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn time_from(bytes: &[u8]) -> Option<Timestamp> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    Some(Timestamp::from_millis(
        (u64::from_be_bytes(raw) ^ (1 << 63)) as i64,
    ))
}

/// 17 bytes naming a task: kind code (0 = process, else the channel code) then the message id.
pub(crate) fn task_id(kind: &TaskKind) -> [u8; 17] {
    let (code, message) = match kind {
        TaskKind::Process(id) => (0, *id),
        TaskKind::Deliver(id) => (id.channel.code(), id.message),
    };
    let mut out = [0u8; 17];
    out[0] = code;
    out[1..].copy_from_slice(&message.to_bytes());
    out
}

pub(crate) fn task_from(bytes: &[u8]) -> Option<TaskKind> {
    let (&code, rest) = bytes.split_first()?;
    let message = MessageId::from_bytes(rest.try_into().ok()?);
    if code == 0 {
        Some(TaskKind::Process(message))
    } else {
        ChannelKind::from_code(code)
            .map(|channel| TaskKind::Deliver(DeliveryId::new(message, channel)))
    }
}

/// A delivery: message id then channel code.
pub(crate) fn delivery(id: &DeliveryId) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(&id.message.to_bytes());
    out[16] = id.channel.code();
    out
}

/// `service SEP`: the prefix of a service's queue entries.
pub(crate) fn service_prefix(service: &ServiceId) -> Vec<u8> {
    let mut out = Vec::with_capacity(service.as_str().len() + 1);
    out.extend_from_slice(service.as_str().as_bytes());
    out.push(SEP);
    out
}

/// Queue entry: `service SEP due task`.
pub(crate) fn queue(service: &ServiceId, due: Timestamp, task: &TaskKind) -> Vec<u8> {
    let mut out = service_prefix(service);
    out.extend_from_slice(&time(due));
    out.extend_from_slice(&task_id(task));
    out
}

/// The last possible queue key of `service` due at or before `due`.
pub(crate) fn queue_upper(service: &ServiceId, due: Timestamp) -> Vec<u8> {
    let mut out = service_prefix(service);
    out.extend_from_slice(&time(due));
    out.extend_from_slice(&[0xff; 17]);
    out
}

/// Splits a queue key into service, due time and task.
pub(crate) fn queue_parts(key: &[u8]) -> Option<(ServiceId, Timestamp, TaskKind)> {
    let sep = key.iter().position(|b| *b == SEP)?;
    let service = ServiceId::parse(std::str::from_utf8(&key[..sep]).ok()?).ok()?;
    let rest = &key[sep + 1..];
    if rest.len() != 8 + 17 {
        return None;
    }
    Some((service, time_from(&rest[..8])?, task_from(&rest[8..])?))
}

/// Two text parts joined: `a SEP b`.
pub(crate) fn pair(a: &str, b: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len() + b.len() + 1);
    out.extend_from_slice(a.as_bytes());
    out.push(SEP);
    out.extend_from_slice(b.as_bytes());
    out
}

/// What follows the first separator of a [`pair`] key: its second part.
pub(crate) fn pair_second(key: &[u8]) -> Option<&[u8]> {
    let sep = key.iter().position(|b| *b == SEP)?;
    Some(&key[sep + 1..])
}

/// Preference: `fiscal_code SEP service SEP settings_version`.
pub(crate) fn preference(fiscal_code: &FiscalCode, service: &ServiceId, version: u64) -> Vec<u8> {
    let mut out = pair(fiscal_code.as_str(), service.as_str());
    out.push(SEP);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// Inbox and recipient index entry: `fiscal_code message_id` (fiscal codes are always 16
/// bytes), so a citizen's entries are contiguous and in message (time) order.
pub(crate) fn citizen_message(fiscal_code: &FiscalCode, message: &MessageId) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(fiscal_code.as_str().as_bytes());
    out.extend_from_slice(&message.to_bytes());
    out
}

/// The message id of a [`citizen_message`] key.
pub(crate) fn citizen_message_id(key: &[u8]) -> Option<MessageId> {
    let raw: [u8; 16] = key.get(16..)?.try_into().ok()?;
    Some(MessageId::from_bytes(raw))
}

/// Journal entry: `message_id seq`.
pub(crate) fn journal(message: &MessageId, seq: u64) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&message.to_bytes());
    out[16..].copy_from_slice(&seq.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_like_time_including_before_the_epoch() {
        let times = [-5_000, -1, 0, 1, 1_700_000_000_000];
        let keys: Vec<[u8; 8]> = times
            .iter()
            .map(|t| time(Timestamp::from_millis(*t)))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (t, k) in times.iter().zip(&keys) {
            assert_eq!(time_from(k), Some(Timestamp::from_millis(*t)));
        }
    }

    #[test]
    fn queue_keys_round_trip_and_group_by_service() {
        let service = ServiceId::parse("svc-a").unwrap();
        let id = MessageId::from_parts(1_700_000_000_000, 7);
        let task = TaskKind::Deliver(DeliveryId::new(id, ChannelKind::Email));
        let key = queue(&service, Timestamp::from_millis(42), &task);
        assert_eq!(
            queue_parts(&key),
            Some((service.clone(), Timestamp::from_millis(42), task))
        );
        assert!(key.starts_with(&service_prefix(&service)));
        assert!(key <= queue_upper(&service, Timestamp::from_millis(42)));
        assert!(key > queue_upper(&service, Timestamp::from_millis(41)));
        // A service whose id extends another's sorts after all of the shorter one's entries.
        let longer = ServiceId::parse("svc-a0").unwrap();
        assert!(
            queue(&longer, Timestamp::EPOCH, &task)
                > queue_upper(&service, Timestamp::from_millis(i64::MAX))
        );
    }
}
