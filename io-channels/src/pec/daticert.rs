//! `daticert.xml`: the certification data a PEC provider attaches to every transport envelope
//! and receipt (DM 2 November 2005, technical annex: element `postacert`). It says which
//! message the receipt is about (`msgid`, the original `Message-ID`), what happened to it
//! (`tipo`, `errore`), when (`data`, with its UTC offset: the legal time), to which address
//! (`consegna`) and who certifies it (`gestore-emittente`, `identificativo`).
//!
//! The parser is strict, because a receipt is evidence: every element and attribute must be one
//! the format defines, in its place, at most once; every value must be one the format allows;
//! text is UTF-8. A document type is accepted only as the usual external reference
//! (`<!DOCTYPE postacert SYSTEM "daticert.dtd">`), never resolved; internal subsets (where
//! entities would be declared) are refused, and only XML's predefined entities and character
//! references are expanded. Element order is not checked: the annex's order is a DTD
//! convention that providers do not all follow, and nothing depends on it.
//!
//! [`Daticert::to_xml`] writes the canonical form back (used by the PEC provider simulator and
//! by the round-trip property: what parses, written and parsed again, is the same value).
//! Every [`DaticertError`] is permanent: the same bytes never parse later.

use std::fmt;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The largest `daticert.xml` accepted. Real ones are about 1 KiB; the limit bounds the work an
/// attacker-supplied attachment can cause.
pub const MAX_DATICERT_BYTES: usize = 64 * 1024;

/// Nesting deeper than the format's (`postacert/dati/data/giorno`) is refused.
const MAX_DEPTH: usize = 4;

/// The certification data of one PEC envelope or receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daticert {
    /// What this document certifies (`postacert@tipo`).
    pub kind: PecKind,
    /// The provider's error class (`postacert@errore`); `None` stands for `nessuno`.
    pub error: Option<PecError>,
    /// The original sender (`intestazione/mittente`).
    pub sender: String,
    /// The original recipients (`intestazione/destinatari`, at least one).
    pub recipients: Vec<Recipient>,
    /// Where answers go (`intestazione/risposte`); some providers omit it.
    pub reply_to: Option<String>,
    /// The original subject (`intestazione/oggetto`), as written by the sender.
    pub subject: String,
    /// The provider that issued this document (`dati/gestore-emittente`).
    pub provider: String,
    /// When the provider issued it, in the provider's zone (`dati/data`): the legal time.
    pub issued_at: OffsetDateTime,
    /// The provider's identifier of the message (`dati/identificativo`).
    pub identifier: String,
    /// The original `Message-ID`, angle brackets included (`dati/msgid`): the correlation key.
    pub msgid: Option<String>,
    /// The kind of delivery receipt (`dati/ricevuta@tipo`), on delivery receipts.
    pub receipt: Option<ReceiptKind>,
    /// The mailbox delivered to, or that could not be (`dati/consegna`).
    pub delivery_address: Option<String>,
    /// The recipients a provider took charge of (`dati/ricezione`, on `presa-in-carico`).
    pub taken_in_charge: Vec<String>,
    /// The provider's explanation of an error (`dati/errore-esteso`), free text.
    pub extended_error: Option<String>,
}

/// What a `daticert.xml` certifies: the transport envelope, or one of the receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PecKind {
    /// `posta-certificata`: the transport envelope around the original message.
    Envelope,
    /// `accettazione`: the sender's provider accepted the message.
    Accepted,
    /// `non-accettazione`: the sender's provider refused it (final).
    NotAccepted,
    /// `presa-in-carico`: the recipient's provider took charge of it (between providers).
    TakenInCharge,
    /// `avvenuta-consegna`: delivered to the recipient's mailbox (legal delivery).
    Delivered,
    /// `errore-consegna`: not delivered (final).
    DeliveryError,
    /// `preavviso-errore-consegna`: not delivered within 12 hours; a final answer follows.
    DeliveryErrorWarning,
    /// `rilevazione-virus`: the provider found a virus and did not forward the message.
    VirusDetected,
    /// `errore`: the anomaly envelope (`X-Trasporto: errore`) around a message that failed checks.
    Anomaly,
}

impl PecKind {
    const ALL: [PecKind; 9] = [
        PecKind::Envelope,
        PecKind::Accepted,
        PecKind::NotAccepted,
        PecKind::TakenInCharge,
        PecKind::Delivered,
        PecKind::DeliveryError,
        PecKind::DeliveryErrorWarning,
        PecKind::VirusDetected,
        PecKind::Anomaly,
    ];

    /// The value of `postacert@tipo` (and of the `X-Ricevuta` header, for receipts).
    pub fn as_str(self) -> &'static str {
        match self {
            PecKind::Envelope => "posta-certificata",
            PecKind::Accepted => "accettazione",
            PecKind::NotAccepted => "non-accettazione",
            PecKind::TakenInCharge => "presa-in-carico",
            PecKind::Delivered => "avvenuta-consegna",
            PecKind::DeliveryError => "errore-consegna",
            PecKind::DeliveryErrorWarning => "preavviso-errore-consegna",
            PecKind::VirusDetected => "rilevazione-virus",
            PecKind::Anomaly => "errore",
        }
    }

    /// The kind named `value`, if the format defines it.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

impl fmt::Display for PecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The provider's class of error (`postacert@errore`, other than `nessuno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PecError {
    /// `no-dest`: the recipient's mailbox does not exist.
    NoRecipient,
    /// `no-dominio`: the recipient's domain is not a PEC domain.
    NoDomain,
    /// `virus`: a virus was found.
    Virus,
    /// `altro`: any other error (see `errore-esteso`).
    Other,
}

impl PecError {
    const ALL: [PecError; 4] = [
        PecError::NoRecipient,
        PecError::NoDomain,
        PecError::Virus,
        PecError::Other,
    ];

    /// The value of `postacert@errore`.
    pub fn as_str(self) -> &'static str {
        match self {
            PecError::NoRecipient => "no-dest",
            PecError::NoDomain => "no-dominio",
            PecError::Virus => "virus",
            PecError::Other => "altro",
        }
    }
}

/// An original recipient and whether their mailbox is a PEC one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address.
    pub address: String,
    /// `certificato` (a PEC mailbox) or `esterno` (ordinary email).
    pub kind: RecipientKind,
}

/// `destinatari@tipo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientKind {
    /// `certificato`: a PEC mailbox; its provider sends receipts.
    Certified,
    /// `esterno`: an ordinary mailbox; no delivery receipt will come.
    External,
}

impl RecipientKind {
    /// The value of `destinatari@tipo`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::Certified => "certificato",
            RecipientKind::External => "esterno",
        }
    }
}

/// `ricevuta@tipo`: how much of the original a delivery receipt carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// `completa`: the whole original message.
    Complete,
    /// `breve`: the original with its attachments replaced by their hashes.
    Short,
    /// `sintetica`: only the certification data.
    Summary,
}

impl ReceiptKind {
    /// The value of `ricevuta@tipo` (and of the `X-TipoRicevuta` header).
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::Complete => "completa",
            ReceiptKind::Short => "breve",
            ReceiptKind::Summary => "sintetica",
        }
    }
}

/// Why a `daticert.xml` was refused. All permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaticertError {
    /// Larger than [`MAX_DATICERT_BYTES`].
    #[error("daticert.xml is {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not UTF-8.
    #[error("daticert.xml is not UTF-8 text")]
    NotUtf8,
    /// Not well-formed XML (quick-xml's description).
    #[error("daticert.xml is not well-formed XML: {0}")]
    Xml(String),
    /// A document type other than the plain external reference to `daticert.dtd`.
    #[error(
        "daticert.xml declares a document type other than `postacert SYSTEM \"daticert.dtd\"` \
         (internal subsets and entity declarations are refused)"
    )]
    DocumentType,
    /// An entity other than XML's predefined ones or a character reference.
    #[error("daticert.xml refers to the undeclared entity `&{0};`")]
    UnknownEntity(String),
    /// An element the format does not define at this place.
    #[error("daticert.xml: unexpected element <{element}> in {parent}")]
    UnexpectedElement {
        /// The element.
        element: String,
        /// Where it was (`the document` at the top).
        parent: String,
    },
    /// Text where only elements belong, or an element inside a text-only element.
    #[error("daticert.xml: <{element}> mixes text and elements")]
    MixedContent {
        /// The element.
        element: String,
    },
    /// Nesting deeper than the format's.
    #[error("daticert.xml nests elements deeper than the format does")]
    TooDeep,
    /// An element that may appear once appears again.
    #[error("daticert.xml: <{element}> appears more than once")]
    Duplicate {
        /// The element.
        element: &'static str,
    },
    /// A required element is absent.
    #[error("daticert.xml: <{element}> is missing")]
    Missing {
        /// The element.
        element: &'static str,
    },
    /// An attribute the format does not define on this element.
    #[error("daticert.xml: unexpected attribute `{attribute}` on <{element}>")]
    UnexpectedAttribute {
        /// The attribute.
        attribute: String,
        /// The element.
        element: String,
    },
    /// A required attribute is absent.
    #[error("daticert.xml: attribute `{attribute}` of <{element}> is missing")]
    MissingAttribute {
        /// The attribute.
        attribute: &'static str,
        /// The element.
        element: &'static str,
    },
    /// A value the format does not allow.
    #[error("daticert.xml: {what} `{value}` is not valid")]
    InvalidValue {
        /// Which value (`postacert@tipo`, `data/giorno`, …).
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// A field the kind of document requires (the delivery address of a delivery receipt).
    #[error("daticert.xml: a `{kind}` document must have <{element}>")]
    MissingForKind {
        /// The document's kind.
        kind: PecKind,
        /// The element it lacks.
        element: &'static str,
    },
}

/// An element as read: its name, attributes, child elements and text.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Daticert {
    /// Parses a `daticert.xml` attachment.
    pub fn parse(bytes: &[u8]) -> Result<Self, DaticertError> {
        if bytes.len() > MAX_DATICERT_BYTES {
            return Err(DaticertError::TooLarge {
                size: bytes.len(),
                max: MAX_DATICERT_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| DaticertError::NotUtf8)?;
        let root = read_tree(text)?;
        Self::from_tree(root)
    }

    fn from_tree(root: Node) -> Result<Self, DaticertError> {
        if root.name != "postacert" {
            return Err(DaticertError::UnexpectedElement {
                element: root.name,
                parent: "the document".into(),
            });
        }
        only_attributes(&root, &["tipo", "errore"])?;
        let kind_text = required_attribute(&root, "tipo", "postacert")?;
        let kind = PecKind::parse(kind_text).ok_or_else(|| DaticertError::InvalidValue {
            what: "postacert@tipo",
            value: kind_text.to_owned(),
        })?;
        let error_text = required_attribute(&root, "errore", "postacert")?;
        let error = match error_text {
            "nessuno" => None,
            other => Some(
                PecError::ALL
                    .into_iter()
                    .find(|e| e.as_str() == other)
                    .ok_or_else(|| DaticertError::InvalidValue {
                        what: "postacert@errore",
                        value: other.to_owned(),
                    })?,
            ),
        };
        let mut header = None;
        let mut data = None;
        for child in root.children {
            match child.name.as_str() {
                "intestazione" => set_once(&mut header, child, "intestazione")?,
                "dati" => set_once(&mut data, child, "dati")?,
                _ => return Err(unexpected(child, "postacert")),
            }
        }
        let header = header.ok_or(DaticertError::Missing {
            element: "intestazione",
        })?;
        let data = data.ok_or(DaticertError::Missing { element: "dati" })?;
        no_attributes(&header)?;
        no_attributes(&data)?;

        let mut sender = None;
        let mut recipients = Vec::new();
        let mut reply_to = None;
        let mut subject = None;
        for child in header.children {
            match child.name.as_str() {
                "mittente" => {
                    set_once(&mut sender, address(leaf(child)?, "mittente")?, "mittente")?
                }
                "destinatari" => {
                    only_attributes(&child, &["tipo"])?;
                    let kind = match required_attribute(&child, "tipo", "destinatari")? {
                        "certificato" => RecipientKind::Certified,
                        "esterno" => RecipientKind::External,
                        other => {
                            return Err(DaticertError::InvalidValue {
                                what: "destinatari@tipo",
                                value: other.to_owned(),
                            });
                        }
                    };
                    let address = address(leaf_with_attributes(child)?, "destinatari")?;
                    recipients.push(Recipient { address, kind });
                }
                "risposte" => set_once(
                    &mut reply_to,
                    address(leaf(child)?, "risposte")?,
                    "risposte",
                )?,
                "oggetto" => set_once(&mut subject, leaf(child)?, "oggetto")?,
                _ => return Err(unexpected(child, "intestazione")),
            }
        }
        let sender = sender.ok_or(DaticertError::Missing {
            element: "mittente",
        })?;
        if recipients.is_empty() {
            return Err(DaticertError::Missing {
                element: "destinatari",
            });
        }
        let subject = subject.ok_or(DaticertError::Missing { element: "oggetto" })?;

        let mut provider = None;
        let mut issued_at = None;
        let mut identifier = None;
        let mut msgid = None;
        let mut receipt = None;
        let mut delivery_address = None;
        let mut taken_in_charge = Vec::new();
        let mut extended_error = None;
        for child in data.children {
            match child.name.as_str() {
                "gestore-emittente" => set_once(
                    &mut provider,
                    non_empty(leaf(child)?, "gestore-emittente")?,
                    "gestore-emittente",
                )?,
                "data" => set_once(&mut issued_at, date(child)?, "data")?,
                "identificativo" => set_once(
                    &mut identifier,
                    non_empty(leaf(child)?, "identificativo")?,
                    "identificativo",
                )?,
                "msgid" => set_once(&mut msgid, message_id(leaf(child)?)?, "msgid")?,
                "ricevuta" => {
                    only_attributes(&child, &["tipo"])?;
                    let value = required_attribute(&child, "tipo", "ricevuta")?;
                    let kind = [
                        ReceiptKind::Complete,
                        ReceiptKind::Short,
                        ReceiptKind::Summary,
                    ]
                    .into_iter()
                    .find(|k| k.as_str() == value)
                    .ok_or_else(|| DaticertError::InvalidValue {
                        what: "ricevuta@tipo",
                        value: value.to_owned(),
                    })?;
                    if !leaf_with_attributes(child)?.is_empty() {
                        return Err(DaticertError::MixedContent {
                            element: "ricevuta".into(),
                        });
                    }
                    set_once(&mut receipt, kind, "ricevuta")?;
                }
                "consegna" => set_once(
                    &mut delivery_address,
                    address(leaf(child)?, "consegna")?,
                    "consegna",
                )?,
                "ricezione" => taken_in_charge.push(address(leaf(child)?, "ricezione")?),
                "errore-esteso" => set_once(&mut extended_error, leaf(child)?, "errore-esteso")?,
                _ => return Err(unexpected(child, "dati")),
            }
        }
        let daticert = Daticert {
            kind,
            error,
            sender,
            recipients,
            reply_to,
            subject,
            provider: provider.ok_or(DaticertError::Missing {
                element: "gestore-emittente",
            })?,
            issued_at: issued_at.ok_or(DaticertError::Missing { element: "data" })?,
            identifier: identifier.ok_or(DaticertError::Missing {
                element: "identificativo",
            })?,
            msgid,
            receipt,
            delivery_address,
            taken_in_charge,
            extended_error,
        };
        daticert.check_kind()?;
        Ok(daticert)
    }

    /// What each kind needs beyond the common fields: a receipt names the message it is about;
    /// a delivery receipt or a delivery error names the mailbox.
    fn check_kind(&self) -> Result<(), DaticertError> {
        let missing = |element| DaticertError::MissingForKind {
            kind: self.kind,
            element,
        };
        if !matches!(self.kind, PecKind::Envelope | PecKind::Anomaly) && self.msgid.is_none() {
            return Err(missing("msgid"));
        }
        if matches!(self.kind, PecKind::Delivered | PecKind::DeliveryError)
            && self.delivery_address.is_none()
        {
            return Err(missing("consegna"));
        }
        Ok(())
    }

    /// The canonical `daticert.xml` of this value (UTF-8, the annex's element order).
    pub fn to_xml(&self) -> String {
        let mut xml = String::with_capacity(1024);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml.push_str("<!DOCTYPE postacert SYSTEM \"daticert.dtd\">\n");
        xml.push_str(&format!(
            "<postacert tipo=\"{}\" errore=\"{}\">\n",
            self.kind.as_str(),
            self.error.map_or("nessuno", PecError::as_str)
        ));
        xml.push_str("  <intestazione>\n");
        element(&mut xml, 4, "mittente", &self.sender);
        for recipient in &self.recipients {
            xml.push_str(&format!(
                "    <destinatari tipo=\"{}\">{}</destinatari>\n",
                recipient.kind.as_str(),
                escape(&recipient.address)
            ));
        }
        if let Some(reply_to) = &self.reply_to {
            element(&mut xml, 4, "risposte", reply_to);
        }
        element(&mut xml, 4, "oggetto", &self.subject);
        xml.push_str("  </intestazione>\n  <dati>\n");
        element(&mut xml, 4, "gestore-emittente", &self.provider);
        let at = self.issued_at;
        let offset = at.offset();
        let (hours, minutes, _) = offset.as_hms();
        xml.push_str(&format!(
            "    <data zona=\"{}{:02}{:02}\">\n      <giorno>{:02}/{:02}/{:04}</giorno>\n      <ora>{:02}:{:02}:{:02}</ora>\n    </data>\n",
            if offset.is_negative() { '-' } else { '+' },
            hours.unsigned_abs(),
            minutes.unsigned_abs(),
            at.day(),
            u8::from(at.month()),
            at.year(),
            at.hour(),
            at.minute(),
            at.second()
        ));
        element(&mut xml, 4, "identificativo", &self.identifier);
        if let Some(msgid) = &self.msgid {
            element(&mut xml, 4, "msgid", msgid);
        }
        if let Some(receipt) = self.receipt {
            xml.push_str(&format!("    <ricevuta tipo=\"{}\"/>\n", receipt.as_str()));
        }
        if let Some(address) = &self.delivery_address {
            element(&mut xml, 4, "consegna", address);
        }
        for address in &self.taken_in_charge {
            element(&mut xml, 4, "ricezione", address);
        }
        if let Some(error) = &self.extended_error {
            element(&mut xml, 4, "errore-esteso", error);
        }
        xml.push_str("  </dati>\n</postacert>\n");
        xml
    }
}

fn element(xml: &mut String, indent: usize, name: &str, text: &str) {
    xml.push_str(&format!(
        "{:indent$}<{name}>{}</{name}>\n",
        "",
        escape(text),
        indent = indent
    ));
}

/// Escapes text for element content and attribute values; control characters other than tab,
/// newline and carriage return never reach here (the parser refuses them).
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // Kept as written through a parse: XML normalizes a literal CR to LF.
            '\r' => escaped.push_str("&#13;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Reads the document into a tree, enforcing well-formedness, the document type rule, the
/// entity rule and the depth limit.
fn read_tree(text: &str) -> Result<Node, DaticertError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| DaticertError::Xml(e.to_string()))?;
        match event {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(doctype) => {
                let declared = String::from_utf8_lossy(&doctype);
                let words: Vec<&str> = declared.split_whitespace().collect();
                if root.is_some()
                    || !stack.is_empty()
                    || words != ["postacert", "SYSTEM", "\"daticert.dtd\""]
                {
                    return Err(DaticertError::DocumentType);
                }
            }
            Event::Start(start) => {
                if root.is_some() {
                    return Err(DaticertError::Xml("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(DaticertError::TooDeep);
                }
                stack.push(node(&start)?);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(DaticertError::Xml("content after the root element".into()));
                }
                let empty = node(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(empty),
                    None => root = Some(empty),
                }
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| DaticertError::Xml("unmatched end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(content) => {
                let decoded = content
                    .decode()
                    .map_err(|e| DaticertError::Xml(e.to_string()))?;
                push_text(&mut stack, &decoded)?;
            }
            Event::CData(content) => {
                let decoded = content
                    .decode()
                    .map_err(|e| DaticertError::Xml(e.to_string()))?;
                push_text(&mut stack, &decoded)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = reference
                            .decode()
                            .map_err(|e| DaticertError::Xml(e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| DaticertError::UnknownEntity(name.to_string()))?
                            .to_owned()
                    }
                    Err(e) => return Err(DaticertError::Xml(e.to_string())),
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(DaticertError::Xml(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| DaticertError::Xml("no root element".into()))
}

/// Adds text to the element being read; whitespace between elements is dropped.
fn push_text(stack: &mut [Node], text: &str) -> Result<(), DaticertError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(DaticertError::Xml("text outside the root element".into())),
    }
}

fn node(start: &BytesStart<'_>) -> Result<Node, DaticertError> {
    let name =
        String::from_utf8(start.name().as_ref().to_vec()).map_err(|_| DaticertError::NotUtf8)?;
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| DaticertError::Xml(e.to_string()))?;
        let key = String::from_utf8(attribute.key.as_ref().to_vec())
            .map_err(|_| DaticertError::NotUtf8)?;
        if attributes.iter().any(|(k, _)| *k == key) {
            return Err(DaticertError::Xml(format!("attribute `{key}` repeated")));
        }
        let value = attribute
            .unescape_value()
            .map_err(|e| DaticertError::Xml(e.to_string()))?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(Node {
        name,
        attributes,
        ..Node::default()
    })
}

fn unexpected(child: Node, parent: &str) -> DaticertError {
    DaticertError::UnexpectedElement {
        element: child.name,
        parent: format!("<{parent}>"),
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, element: &'static str) -> Result<(), DaticertError> {
    if slot.is_some() {
        return Err(DaticertError::Duplicate { element });
    }
    *slot = Some(value);
    Ok(())
}

fn no_attributes(node: &Node) -> Result<(), DaticertError> {
    only_attributes(node, &[])
}

fn only_attributes(node: &Node, allowed: &[&str]) -> Result<(), DaticertError> {
    match node
        .attributes
        .iter()
        .find(|(key, _)| !allowed.contains(&key.as_str()))
    {
        Some((key, _)) => Err(DaticertError::UnexpectedAttribute {
            attribute: key.clone(),
            element: node.name.clone(),
        }),
        None => Ok(()),
    }
}

fn required_attribute<'a>(
    node: &'a Node,
    attribute: &'static str,
    element: &'static str,
) -> Result<&'a str, DaticertError> {
    node.attributes
        .iter()
        .find(|(key, _)| key == attribute)
        .map(|(_, value)| value.as_str())
        .ok_or(DaticertError::MissingAttribute { attribute, element })
}

/// The text of an element that has neither attributes nor children, trimmed.
fn leaf(node: Node) -> Result<String, DaticertError> {
    no_attributes(&node)?;
    leaf_with_attributes(node)
}

/// The text of an element without children, trimmed; control characters refused.
fn leaf_with_attributes(node: Node) -> Result<String, DaticertError> {
    if !node.children.is_empty() {
        return Err(DaticertError::MixedContent { element: node.name });
    }
    let text = node.text.trim();
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(DaticertError::InvalidValue {
            what: "text (control character)",
            value: text.escape_default().to_string(),
        });
    }
    Ok(text.to_owned())
}

fn non_empty(text: String, what: &'static str) -> Result<String, DaticertError> {
    if text.is_empty() {
        return Err(DaticertError::InvalidValue { what, value: text });
    }
    Ok(text)
}

/// An email address as PEC uses them: one `@`, something on each side, no whitespace.
fn address(text: String, what: &'static str) -> Result<String, DaticertError> {
    let valid = match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if valid {
        Ok(text)
    } else {
        Err(DaticertError::InvalidValue { what, value: text })
    }
}

/// A `Message-ID` as the annex writes it: `<local@domain>` (escaped in the XML).
fn message_id(text: String) -> Result<String, DaticertError> {
    let inner = text.strip_prefix('<').and_then(|t| t.strip_suffix('>'));
    match inner {
        Some(inner)
            if inner.contains('@')
                && !inner
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>') =>
        {
            Ok(text)
        }
        _ => Err(DaticertError::InvalidValue {
            what: "msgid",
            value: text,
        }),
    }
}

/// `<data zona="+0200"><giorno>dd/mm/yyyy</giorno><ora>hh:mm:ss</ora></data>`.
fn date(node: Node) -> Result<OffsetDateTime, DaticertError> {
    only_attributes(&node, &["zona"])?;
    if !node.text.trim().is_empty() {
        return Err(DaticertError::MixedContent {
            element: "data".into(),
        });
    }
    let zone = required_attribute(&node, "zona", "data")?;
    let offset = zone_offset(zone).ok_or_else(|| DaticertError::InvalidValue {
        what: "data@zona",
        value: zone.to_owned(),
    })?;
    let mut day = None;
    let mut time_of_day = None;
    for child in node.children {
        match child.name.as_str() {
            "giorno" => {
                let text = leaf(child)?;
                let parsed = calendar_day(&text).ok_or(DaticertError::InvalidValue {
                    what: "data/giorno",
                    value: text,
                })?;
                set_once(&mut day, parsed, "giorno")?;
            }
            "ora" => {
                let text = leaf(child)?;
                let parsed = clock_time(&text).ok_or(DaticertError::InvalidValue {
                    what: "data/ora",
                    value: text,
                })?;
                set_once(&mut time_of_day, parsed, "ora")?;
            }
            _ => return Err(unexpected(child, "data")),
        }
    }
    let day = day.ok_or(DaticertError::Missing { element: "giorno" })?;
    let time_of_day = time_of_day.ok_or(DaticertError::Missing { element: "ora" })?;
    Ok(PrimitiveDateTime::new(day, time_of_day).assume_offset(offset))
}

/// `+hhmm` or `-hhmm`, at most 14 hours (the world's widest zone offset).
fn zone_offset(zone: &str) -> Option<UtcOffset> {
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i8 = digits[..2].parse().ok()?;
    let minutes: i8 = digits[2..].parse().ok()?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

/// `dd/mm/yyyy`, a real calendar day.
fn calendar_day(text: &str) -> Option<Date> {
    let parts = fixed_digits(text, '/', &[2, 2, 4])?;
    let month = Month::try_from(u8::try_from(parts[1]).ok()?).ok()?;
    Date::from_calendar_date(
        i32::try_from(parts[2]).ok()?,
        month,
        u8::try_from(parts[0]).ok()?,
    )
    .ok()
}

/// `hh:mm:ss`, a real time of day.
fn clock_time(text: &str) -> Option<Time> {
    let parts = fixed_digits(text, ':', &[2, 2, 2])?;
    Time::from_hms(
        u8::try_from(parts[0]).ok()?,
        u8::try_from(parts[1]).ok()?,
        u8::try_from(parts[2]).ok()?,
    )
    .ok()
}

/// Splits `text` at `separator` into fields of exactly `widths` ASCII digits.
fn fixed_digits(text: &str, separator: char, widths: &[usize]) -> Option<Vec<u32>> {
    let fields: Vec<&str> = text.split(separator).collect();
    if fields.len() != widths.len() {
        return None;
    }
    fields
        .iter()
        .zip(widths)
        .map(|(field, width)| {
            (field.len() == *width && field.bytes().all(|b| b.is_ascii_digit()))
                .then(|| field.parse().ok())
                .flatten()
        })
        .collect()
}
