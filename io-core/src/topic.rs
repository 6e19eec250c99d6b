//! The topics citizens browse services by (IO's service topics). io keeps one fixed list: a
//! service names its topic by id, and the catalogue and `/manage/services/topics` show the
//! names.

/// A topic: its id and its name as citizens read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic {
    /// What a service's `topic_id` holds.
    pub id: u32,
    /// The name shown, in Italian.
    pub name: &'static str,
}

/// Every topic, by id.
pub const TOPICS: &[Topic] = &[
    Topic {
        id: 0,
        name: "Altro",
    },
    Topic {
        id: 1,
        name: "Ambiente e animali",
    },
    Topic {
        id: 2,
        name: "Attività produttive e commercio",
    },
    Topic {
        id: 3,
        name: "Benessere sociale",
    },
    Topic {
        id: 4,
        name: "Casa e utenze",
    },
    Topic {
        id: 5,
        name: "Cultura, tempo libero e sport",
    },
    Topic {
        id: 6,
        name: "Educazione e formazione",
    },
    Topic {
        id: 7,
        name: "Giustizia e sicurezza",
    },
    Topic {
        id: 8,
        name: "Lavoro",
    },
    Topic {
        id: 9,
        name: "Mobilità e trasporti",
    },
    Topic {
        id: 10,
        name: "Redditi, patrimoni e fisco",
    },
    Topic {
        id: 11,
        name: "Salute",
    },
    Topic {
        id: 12,
        name: "Servizi anagrafici e civici",
    },
    Topic {
        id: 13,
        name: "Servizi elettorali",
    },
    Topic {
        id: 14,
        name: "Urbanistica ed edilizia",
    },
    Topic {
        id: 15,
        name: "Viaggi e turismo",
    },
];

impl Topic {
    /// The topic with `id`, if there is one.
    pub fn by_id(id: u32) -> Option<Topic> {
        TOPICS.iter().copied().find(|topic| topic.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_in_order() {
        for (i, topic) in TOPICS.iter().enumerate() {
            assert_eq!(topic.id as usize, i);
        }
        assert_eq!(Topic::by_id(3).unwrap().name, "Benessere sociale");
        assert_eq!(Topic::by_id(99), None);
    }
}
