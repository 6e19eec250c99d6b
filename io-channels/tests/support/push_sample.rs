//! A push notification for the push tests and the channel bench (apart from `mod.rs`, which
//! every channel's tests include, because it needs the push feature).

use std::time::Duration;

/// A push notification as the push channel builds it (anonymous texts).
pub(crate) fn sample_notification() -> io_channels::push::PushNotification {
    io_channels::push::PushNotification {
        id: "123e4567-e89b-12d3-a456-426614174000".into(),
        title: "Hai un nuovo messaggio".into(),
        body: "Entra nell'app per leggerlo".into(),
        message_id: "01JBQ1N9ZK3Q8R0M5W6X7Y8Z9A".into(),
        expires_at: 4_102_444_800,
        time_to_live: Duration::from_secs(3600),
        now: io_core::Timestamp::from_millis(1_767_225_600_000),
    }
}
