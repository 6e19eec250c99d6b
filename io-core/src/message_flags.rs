//! The citizen's own flags on a message in their inbox: read (one-way) and archived. They
//! change atomically in the store, so two changes at once never lose each other.

use serde::{Deserialize, Serialize};

/// The citizen's flags on one message (all false until set).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFlags {
    /// Read: never goes back to false.
    pub is_read: bool,
    /// Archived.
    pub is_archived: bool,
}

/// A change of the flags: `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagsChange {
    /// The new read flag.
    pub is_read: Option<bool>,
    /// The new archived flag.
    pub is_archived: Option<bool>,
}

/// A change the flags refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlagsError {
    /// Reading is one-way: a read message cannot become unread.
    #[error("is_read: a read message cannot become unread (reading is one-way)")]
    UnreadAfterRead,
}

impl MessageFlags {
    /// The flags after `change`.
    pub fn changed(self, change: FlagsChange) -> Result<Self, FlagsError> {
        let mut next = self;
        if let Some(read) = change.is_read {
            if self.is_read && !read {
                return Err(FlagsError::UnreadAfterRead);
            }
            next.is_read = read;
        }
        if let Some(archived) = change.is_archived {
            next.is_archived = archived;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_is_one_way_and_archiving_toggles() {
        let unread = MessageFlags::default();
        let read = unread
            .changed(FlagsChange {
                is_read: Some(true),
                is_archived: None,
            })
            .unwrap();
        assert_eq!(
            read,
            MessageFlags {
                is_read: true,
                is_archived: false
            }
        );
        assert_eq!(
            read.changed(FlagsChange {
                is_read: Some(false),
                is_archived: Some(true),
            }),
            Err(FlagsError::UnreadAfterRead)
        );
        let archived = read
            .changed(FlagsChange {
                is_read: Some(true),
                is_archived: Some(true),
            })
            .unwrap();
        assert!(archived.is_read && archived.is_archived);
        let back = archived
            .changed(FlagsChange {
                is_read: None,
                is_archived: Some(false),
            })
            .unwrap();
        assert_eq!(
            back,
            MessageFlags {
                is_read: true,
                is_archived: false
            }
        );
    }
}
