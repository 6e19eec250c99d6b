#!/usr/bin/env python3
"""Writes the PEC receipt samples of io-channels' tests (tests/pec_receipts/*.eml).

Each is shaped as the published format has it: multipart/signed (S/MIME) around a
multipart/mixed with the human-readable text, `daticert.xml` (from tests/daticert/) and, on
complete delivery receipts, the original as `postacert.eml`. The signature part holds
placeholder bytes: these samples test recognition and correlation, not signatures. Run from
this directory: `python3 make.py` (standard library only; the output is deterministic).
"""
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email import message_from_string
import pathlib

DATICERT = pathlib.Path(__file__).resolve().parent.parent / "daticert"
MSGID = "<01KBF3W8Z2.email@io.comune-prova.it>"
SUBJECT = "Avviso di pagamento TARI 2026 & rateizzazione"

# The original carries a daticert.xml of its own (a forwarded PEC would): only the receipt's
# own attachment may count.
ORIGINAL = """From: protocollo@pec.comune-prova.it
To: mario.rossi@pec.cittadino-prova.it
Subject: Avviso di pagamento TARI 2026 & rateizzazione
Message-ID: <01KBF3W8Z2.email@io.comune-prova.it>
Date: Wed, 02 Dec 2026 09:15:30 +0100
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="original"

--original
Content-Type: text/plain; charset=utf-8

Gentile contribuente, e' disponibile l'avviso di pagamento.
--original
Content-Type: application/xml; name="daticert.xml"
Content-Disposition: attachment; filename="daticert.xml"

<postacert tipo="errore" errore="altro"/>
--original--
"""


def receipt(kind, prefix, daticert_file, headers, original=False, boundary_seed=""):
    mixed = MIMEMultipart("mixed", boundary="mixed-" + kind + boundary_seed)
    mixed.attach(MIMEText(f"Ricevuta di {kind} del messaggio \"{SUBJECT}\".\n", "plain", "utf-8"))
    xml = (DATICERT / daticert_file).read_bytes()
    part = MIMEApplication(xml, "xml")
    part.add_header("Content-Disposition", "attachment", filename="daticert.xml")
    part.set_param("name", "daticert.xml")
    mixed.attach(part)
    if original:
        eml = MIMEMessage(message_from_string(ORIGINAL))
        eml.add_header("Content-Disposition", "attachment", filename="postacert.eml")
        mixed.attach(eml)
    signed = MIMEMultipart(
        "signed",
        boundary="signed-" + kind + boundary_seed,
        protocol="application/pkcs7-signature",
        micalg="sha-256",
    )
    signed.attach(mixed)
    signature = MIMEApplication(b"placeholder, not a signature", "pkcs7-signature")
    signature.add_header("Content-Disposition", "attachment", filename="smime.p7s")
    signed.attach(signature)
    signed["Date"] = "Wed, 02 Dec 2026 09:15:40 +0100"
    signed["From"] = '"Per conto di: protocollo@pec.comune-prova.it" <posta-certificata@pec.gestore-prova.it>'
    signed["To"] = "protocollo@pec.comune-prova.it"
    signed["Subject"] = f"{prefix}: {SUBJECT}"
    signed["Message-ID"] = f"<{kind}{boundary_seed}.20261202091540@pec.gestore-prova.it>"
    for name, value in headers:
        signed[name] = value
    return signed.as_bytes(policy=SMTP)


SAMPLES = {
    "accettazione.eml": ("accettazione", "ACCETTAZIONE", "accettazione.xml",
                         [("X-Ricevuta", "accettazione"), ("X-Riferimento-Message-ID", MSGID)], False),
    "non-accettazione.eml": ("non-accettazione", "AVVISO DI NON ACCETTAZIONE", "non-accettazione.xml",
                             [("X-Ricevuta", "non-accettazione"), ("X-Riferimento-Message-ID", MSGID)], False),
    "avvenuta-consegna.eml": ("avvenuta-consegna", "CONSEGNA", "avvenuta-consegna.xml",
                              [("X-Ricevuta", "avvenuta-consegna"), ("X-TipoRicevuta", "completa"),
                               ("X-Riferimento-Message-ID", MSGID)], True),
    "errore-consegna.eml": ("errore-consegna", "AVVISO DI MANCATA CONSEGNA", "errore-consegna.xml",
                            [("X-Ricevuta", "errore-consegna"), ("X-Riferimento-Message-ID", MSGID)], False),
    "preavviso-errore-consegna.eml": ("preavviso-errore-consegna", "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO",
                                      "preavviso-errore-consegna.xml",
                                      [("X-Ricevuta", "preavviso-errore-consegna"), ("X-Riferimento-Message-ID", MSGID)], False),
}

for name, (kind, prefix, xml, headers, original) in SAMPLES.items():
    pathlib.Path(name).write_bytes(receipt(kind, prefix, xml, headers, original))
