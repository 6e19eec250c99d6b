//! The words of the notification email, in the five languages IO supports. The email says who
//! wrote, gives the teaser (`io_core::notification_text::email_teaser`) and invites the citizen to
//! read the message in the app: the message itself never travels by email.

use io_core::PreferredLanguage;
use io_core::notification_text::email_teaser;

/// A rendered notification email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailText {
    /// The subject line.
    pub subject: String,
    /// The `text/plain` part.
    pub plain: String,
    /// The `text/html` part.
    pub html: String,
}

/// The fixed phrases of one language.
struct Phrases {
    /// `html lang`.
    lang: &'static str,
    /// Subject; `{org}` is the organization name.
    subject: &'static str,
    /// First line; `{service}` and `{org}`.
    intro: &'static str,
    /// The invitation to open the app.
    call_to_action: &'static str,
    /// Why the citizen receives this.
    footer: &'static str,
}

const ITALIAN: Phrases = Phrases {
    lang: "it",
    subject: "Hai un nuovo messaggio da {org}",
    intro: "{service} di {org} ti ha inviato un messaggio:",
    call_to_action: "Per leggerlo, entra nell'app IO.",
    footer: "Ricevi questa email perché hai attivato le notifiche via email nell'app IO. Non rispondere: questa casella non è presidiata.",
};

const ENGLISH: Phrases = Phrases {
    lang: "en",
    subject: "You have a new message from {org}",
    intro: "{service} of {org} sent you a message:",
    call_to_action: "To read it, open the IO app.",
    footer: "You receive this email because you turned on email notifications in the IO app. Do not reply: this mailbox is not monitored.",
};

const GERMAN: Phrases = Phrases {
    lang: "de",
    subject: "Sie haben eine neue Nachricht von {org}",
    intro: "{service} von {org} hat Ihnen eine Nachricht gesendet:",
    call_to_action: "Um sie zu lesen, öffnen Sie die App IO.",
    footer: "Sie erhalten diese E-Mail, weil Sie in der App IO E-Mail-Benachrichtigungen aktiviert haben. Bitte nicht antworten: Dieses Postfach wird nicht gelesen.",
};

const FRENCH: Phrases = Phrases {
    lang: "fr",
    subject: "Vous avez un nouveau message de {org}",
    intro: "{service} de {org} vous a envoyé un message :",
    call_to_action: "Pour le lire, ouvrez l'application IO.",
    footer: "Vous recevez cet e-mail parce que vous avez activé les notifications par e-mail dans l'application IO. Ne répondez pas : cette boîte n'est pas consultée.",
};

const SPANISH: Phrases = Phrases {
    lang: "es",
    subject: "Tienes un nuevo mensaje de {org}",
    intro: "{service} de {org} te ha enviado un mensaje:",
    call_to_action: "Para leerlo, entra en la app IO.",
    footer: "Recibes este correo porque activaste las notificaciones por correo en la app IO. No respondas: este buzón no se lee.",
};

fn phrases(language: Option<PreferredLanguage>) -> &'static Phrases {
    match language {
        Some(PreferredLanguage::EnGb) => &ENGLISH,
        Some(PreferredLanguage::DeDe) => &GERMAN,
        Some(PreferredLanguage::FrFr) => &FRENCH,
        Some(PreferredLanguage::EsEs) => &SPANISH,
        Some(PreferredLanguage::ItIt) | None => &ITALIAN,
    }
}

/// Renders the email for the citizen's first preferred language (Italian when none).
pub fn render(
    language: Option<PreferredLanguage>,
    organization: &str,
    service: &str,
    markdown: &str,
) -> EmailText {
    let words = phrases(language);
    let fill = |template: &str| {
        template
            .replace("{service}", service)
            .replace("{org}", organization)
    };
    let subject = fill(words.subject);
    let intro = fill(words.intro);
    let teaser = email_teaser(markdown);
    let plain = format!(
        "{intro}\n\n{teaser}\n\n{}\n\n--\n{}\n",
        words.call_to_action, words.footer
    );
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><p>{}</p><blockquote>{}</blockquote><p><strong>{}</strong></p>\
         <hr><p><small>{}</small></p></body></html>\n",
        words.lang,
        escape(&subject),
        escape(&intro),
        escape(&teaser),
        escape(words.call_to_action),
        escape(words.footer),
    );
    EmailText {
        subject,
        plain,
        html,
    }
}

/// HTML text escaping: the teaser and the names are the sender's words, never markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_names_the_sender_and_never_links() {
        let markdown = "Gentile cittadino, <b>paga</b> su [il portale](https://pagopa.example.it) \
                        entro il 31.12 o visita www.comune.example.it per dettagli.";
        for language in [
            None,
            Some(PreferredLanguage::ItIt),
            Some(PreferredLanguage::EnGb),
            Some(PreferredLanguage::DeDe),
            Some(PreferredLanguage::FrFr),
            Some(PreferredLanguage::EsEs),
        ] {
            let text = render(language, "Comune di Roma", "Tributi", markdown);
            assert!(text.subject.contains("Comune di Roma"), "{language:?}");
            for part in [&text.plain, &text.html] {
                assert!(part.contains("Tributi"), "{language:?}");
                assert!(!part.contains("https://"), "{language:?}: {part}");
                assert!(!part.contains("www.comune"), "{language:?}");
                assert!(part.contains("[link rimosso]"), "{language:?}");
            }
            assert!(
                text.html.contains("&lt;b&gt;paga&lt;/b&gt;"),
                "escaped: {}",
                text.html
            );
        }
        assert!(
            render(None, "O", "S", markdown)
                .subject
                .starts_with("Hai un nuovo messaggio")
        );
    }
}
