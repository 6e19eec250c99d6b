//! The texts io puts in notifications: the email teaser and the push title and body.
//!
//! Email and push are *notifications*, never content carriers (io-reference §4): the content
//! stays in the inbox, where the citizen reads it after logging in. So the email carries only a
//! short plain-text teaser with every link removed (a link in an email is a phishing vector, and
//! the citizen must learn to trust only the app), and a push says nothing at all unless the
//! citizen asked for full previews and the message does not require secure channels.
//! Everything here is pure: text in, text out.

use std::collections::HashSet;

/// How many characters of visible text the email teaser keeps before it is cut with "…".
///
/// Counted in Unicode scalar values (Rust `char`s), not bytes, and before the zero-width spaces
/// are inserted, so an accented letter or an emoji counts as one and a cut never splits one.
pub const TEASER_MAX_CHARS: usize = 134;

/// What stands in the teaser where the message had a link, so that the email never carries one.
pub const LINK_PLACEHOLDER: &str = "[link rimosso]";

/// The mark appended to a teaser that was cut at [`TEASER_MAX_CHARS`], and only then.
pub const TEASER_ELLIPSIS: char = '…';

/// Inserted after every "." of the teaser so that mail clients do not turn domain-like text
/// ("comune.roma.it") into a clickable link.
pub const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// The title of an anonymous push: it says that something arrived, never what or from whom.
pub const PUSH_ANONYMOUS_TITLE: &str = "Hai un nuovo messaggio";

/// The body of an anonymous push: an invitation to open the app, where the message is read.
pub const PUSH_ANONYMOUS_BODY: &str = "Entra nell'app per leggerlo";

/// Turns a message's markdown into the teaser that the notification email carries.
///
/// The steps, in this order:
/// 1. **Markdown to plain text.** Block markup is dropped: heading marks `#`, block quotes `>`,
///    list markers (`-`, `*`, `+`, `1.`, `1)`, and task boxes `[ ]`/`[x]`), horizontal rules,
///    setext underlines (`===`), code fences (their content is kept as text) and reference
///    definitions (`[ref]: url`). Inline markup is dropped: emphasis and strong (`*`, `_`, `**`,
///    `__`), strikethrough (`~~`) and code backticks, keeping the text inside; a backslash
///    escape keeps the escaped character. A delimiter that opens nothing stays, so `2 * 3` and
///    `nome_file` survive. **Links are replaced whole**, text included, by [`LINK_PLACEHOLDER`]:
///    inline `[text](url)`, reference `[text][ref]`, `[text][]` and `[ref]` (when `ref` is
///    defined), and autolinks `<https://…>`; the link text goes too because it is often a
///    URL itself. **Images** (`![alt](url)`, `![alt][ref]`) are removed, alt text included.
/// 2. **Whitespace** (newlines, tabs, runs of spaces) collapses to single spaces; ends trimmed.
/// 3. **Bare URLs** left in the text — anything starting with `http://`, `https://` or `www.`
///    (any case), up to the next whitespace — are replaced by [`LINK_PLACEHOLDER`]. Trailing
///    sentence punctuation (`.,;:!?'"»` and a `)` without its `(`) is left outside, so
///    "vedi www.comune.it." keeps its full stop.
/// 4. **Truncation** to the first [`TEASER_MAX_CHARS`] characters, then [`TEASER_ELLIPSIS`]
///    only if something was cut. Links are already placeholders here, so the count is over the
///    text the citizen sees and no half URL can survive a cut (a placeholder can be cut, e.g.
///    "[link rim…", which reveals nothing).
/// 5. **Zero-width spaces** after every ".", last, so that they never eat into the character
///    budget and the cut can never separate one from its dot.
#[must_use]
pub fn email_teaser(markdown: &str) -> String {
    let plain = markdown_to_plain(markdown);
    let collapsed = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    let unlinked = replace_bare_urls(&collapsed);
    let cut = truncate_chars(&unlinked, TEASER_MAX_CHARS);
    break_dots(&cut)
}

/// How much a push notification may reveal, as the citizen chose in the profile.
///
/// The profile's `push_notifications_content_type` is `FULL`, `ANONYMOUS` or `UNSET`; `UNSET`
/// maps to [`PushPreview::Anonymous`], because revealing needs the citizen's explicit consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushPreview {
    /// The citizen agreed to see the sender and the subject on the lock screen.
    Full,
    /// The push only says that a message arrived.
    Anonymous,
}

/// The visible part of a push notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushText {
    /// The first, bold line: the sender's organization, or [`PUSH_ANONYMOUS_TITLE`].
    pub title: String,
    /// The line below: the message subject, or [`PUSH_ANONYMOUS_BODY`].
    pub body: String,
}

/// Chooses what a push shows: the organization name and the subject only when the citizen
/// chose [`PushPreview::Full`] and the message does not require secure channels; otherwise the
/// anonymous text, since a lock screen is readable by anyone holding the phone.
///
/// `require_secure_channels` is the effective flag: the message's own, else the service's.
#[must_use]
pub fn push_text(
    preview: PushPreview,
    require_secure_channels: bool,
    organization_name: &str,
    subject: &str,
) -> PushText {
    match (preview, require_secure_channels) {
        (PushPreview::Full, false) => PushText {
            title: organization_name.to_owned(),
            body: subject.to_owned(),
        },
        (PushPreview::Full, true) | (PushPreview::Anonymous, _) => PushText {
            title: PUSH_ANONYMOUS_TITLE.to_owned(),
            body: PUSH_ANONYMOUS_BODY.to_owned(),
        },
    }
}

/// A run of lines that is inline markdown, or the content of a code fence (taken as is).
enum Block {
    Markdown(String),
    Code(String),
}

fn markdown_to_plain(markdown: &str) -> String {
    let (blocks, labels) = split_blocks(markdown);
    let mut out = String::with_capacity(markdown.len());
    for block in &blocks {
        match block {
            Block::Markdown(text) => render_inline(text, &labels, &mut out),
            Block::Code(text) => out.push_str(text),
        }
        out.push('\n');
    }
    out
}

/// Splits the document into blocks, dropping block markup line by line, and collects the
/// labels of reference definitions (a reference link may come before its definition).
fn split_blocks(markdown: &str) -> (Vec<Block>, HashSet<String>) {
    let mut blocks = Vec::new();
    let mut labels = HashSet::new();
    let mut paragraph = String::new();
    let mut code = String::new();
    let mut fence: Option<(char, usize)> = None;
    let flush = |paragraph: &mut String, blocks: &mut Vec<Block>| {
        if !paragraph.is_empty() {
            blocks.push(Block::Markdown(std::mem::take(paragraph)));
        }
    };
    for raw in markdown.lines() {
        if let Some((mark, len)) = fence {
            if is_fence_close(raw, mark, len) {
                blocks.push(Block::Code(std::mem::take(&mut code)));
                fence = None;
            } else {
                code.push_str(raw);
                code.push('\n');
            }
            continue;
        }
        let line = strip_quote_markers(raw);
        if let Some(opened) = fence_open(line) {
            flush(&mut paragraph, &mut blocks);
            fence = Some(opened);
            continue;
        }
        if line.trim().is_empty() || is_thematic_break(line) || is_setext_underline(line) {
            flush(&mut paragraph, &mut blocks);
            continue;
        }
        if let Some(label) = reference_definition(line) {
            labels.insert(label);
            continue;
        }
        let (line, list_item) = strip_list_marker(line);
        let (line, heading) = strip_heading(line);
        if list_item || heading {
            flush(&mut paragraph, &mut blocks);
        }
        paragraph.push_str(line);
        paragraph.push('\n');
        if heading {
            flush(&mut paragraph, &mut blocks);
        }
    }
    flush(&mut paragraph, &mut blocks);
    if !code.is_empty() {
        // An unclosed fence runs to the end of the document, as in CommonMark.
        blocks.push(Block::Code(code));
    }
    (blocks, labels)
}

fn strip_quote_markers(line: &str) -> &str {
    let mut rest = line.trim_start();
    while let Some(inner) = rest.strip_prefix('>') {
        rest = inner.trim_start();
    }
    rest
}

/// A line opening a code fence: three or more backticks or tildes (a backtick fence's info
/// string has no backtick, otherwise the line is an inline code span).
fn fence_open(line: &str) -> Option<(char, usize)> {
    let mark = line.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let len = line.chars().take_while(|&c| c == mark).count();
    let info = &line[len * mark.len_utf8()..];
    (len >= 3 && !(mark == '`' && info.contains('`'))).then_some((mark, len))
}

fn is_fence_close(raw: &str, mark: char, len: usize) -> bool {
    let line = strip_quote_markers(raw).trim_end();
    line.chars().count() >= len && line.chars().all(|c| c == mark)
}

/// `---`, `***`, `___` (three or more, spaces allowed between).
fn is_thematic_break(line: &str) -> bool {
    let mut marks = line.chars().filter(|c| !matches!(c, ' ' | '\t'));
    let Some(first) = marks.next() else {
        return false;
    };
    matches!(first, '-' | '*' | '_') && marks.clone().all(|c| c == first) && marks.count() >= 2
}

/// The `===` line under a setext heading (its `---` twin is a thematic break).
fn is_setext_underline(line: &str) -> bool {
    let line = line.trim_end();
    !line.is_empty() && line.chars().all(|c| c == '=')
}

/// `[label]: destination` with an optional quoted title, as its normalized label. A line like
/// `[Nota]: leggere bene` is prose, not a definition, because `bene` is not a title.
fn reference_definition(line: &str) -> Option<String> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let label = &rest[..close];
    if label.trim().is_empty() || label.contains('[') {
        return None;
    }
    let after = rest[close + 1..].strip_prefix(':')?.trim();
    let (destination, title) = after
        .split_once(char::is_whitespace)
        .map_or((after, ""), |(d, t)| (d, t.trim()));
    let title_ok = title.is_empty()
        || [('"', '"'), ('\'', '\''), ('(', ')')]
            .iter()
            .any(|&(open, end)| {
                title.len() >= 2 && title.starts_with(open) && title.ends_with(end)
            });
    (!destination.is_empty() && title_ok).then(|| normalize_label(label))
}

/// Reference labels match case-insensitively with inner whitespace collapsed.
fn normalize_label(label: &str) -> String {
    label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Drops a bullet (`-`, `*`, `+`) or ordered (`1.`, `1)`) list marker and a task box after it;
/// says whether there was one (a new item starts a new block).
fn strip_list_marker(line: &str) -> (&str, bool) {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let marker_len = match line.chars().next() {
        Some('-' | '*' | '+') => 1,
        Some(_) if (1..=9).contains(&digits) && line[digits..].starts_with(['.', ')']) => {
            digits + 1
        }
        _ => return (line, false),
    };
    let rest = &line[marker_len..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return (line, false);
    }
    let rest = rest.trim_start();
    let rest = ["[ ] ", "[x] ", "[X] "]
        .iter()
        .find_map(|task| rest.strip_prefix(task))
        .unwrap_or(rest);
    (rest, true)
}

/// Drops an ATX heading's `#` marks (1 to 6, then a space) and its optional closing `#`s.
fn strip_heading(line: &str) -> (&str, bool) {
    let level = line.chars().take_while(|&c| c == '#').count();
    let rest = &line[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return (line, false);
    }
    let text = rest.trim();
    let open = text.trim_end_matches('#');
    if open.is_empty() {
        ("", true)
    } else if open.ends_with([' ', '\t']) {
        (open.trim_end(), true)
    } else {
        (text, true)
    }
}

/// What a character of an inline block is, once code spans, escapes and emphasis are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// May still be markup: brackets, parentheses, `!`, `<`.
    Markup,
    /// Text for sure: inside a code span, or escaped.
    Literal,
    /// Markup already resolved and not shown: backticks, escaping backslashes, emphasis.
    Drop,
}

fn render_inline(text: &str, labels: &HashSet<String>, out: &mut String) {
    let chars: Vec<char> = text.chars().collect();
    let mut roles = vec![Role::Markup; chars.len()];
    mark_code_and_escapes(&chars, &mut roles);
    mark_emphasis(&chars, &mut roles);
    let brackets = match_pairs(&chars, &roles, '[', ']');
    let parens = match_pairs(&chars, &roles, '(', ')');
    let links = Links {
        chars: &chars,
        brackets: &brackets,
        parens: &parens,
        labels,
    };
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match roles[i] {
            Role::Drop => {}
            Role::Literal => out.push(c),
            Role::Markup => {
                let image = if c == '!' { links.end(i + 1) } else { None };
                let link = if c == '[' { links.end(i) } else { None };
                if let Some(end) = image {
                    i = end;
                    continue;
                }
                if let Some(end) = link.or_else(|| autolink_end(&chars, i)) {
                    out.push_str(LINK_PLACEHOLDER);
                    i = end;
                    continue;
                }
                // A backslash before a newline is a hard line break, not text.
                if !(c == '\\' && chars.get(i + 1) == Some(&'\n')) {
                    out.push(c);
                }
            }
        }
        i += 1;
    }
}

/// Code spans (a backtick run closed by a run of the same length) become literal text and
/// their backticks are dropped; an unclosed run's backticks are dropped too. A backslash before
/// ASCII punctuation is dropped and the punctuation becomes literal.
fn mark_code_and_escapes(chars: &[char], roles: &mut [Role]) {
    // A run length with no closer after some point has none after any later point either:
    // remembering it keeps a pathological input linear enough.
    let mut unclosed: HashSet<usize> = HashSet::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '\\' && chars.get(i + 1).is_some_and(char::is_ascii_punctuation) {
            roles[i] = Role::Drop;
            roles[i + 1] = Role::Literal;
            i += 2;
        } else if c == '`' {
            let len = run_len(chars, i, '`');
            let content = i + len;
            let close = if unclosed.contains(&len) {
                None
            } else {
                find_backtick_run(chars, content, len)
            };
            roles[i..content].fill(Role::Drop);
            match close {
                Some(close) => {
                    roles[content..close].fill(Role::Literal);
                    roles[close..close + len].fill(Role::Drop);
                    i = close + len;
                }
                None => {
                    unclosed.insert(len);
                    i = content;
                }
            }
        } else {
            i += 1;
        }
    }
}

fn run_len(chars: &[char], start: usize, c: char) -> usize {
    chars[start..].iter().take_while(|&&x| x == c).count()
}

fn find_backtick_run(chars: &[char], from: usize, len: usize) -> Option<usize> {
    let mut j = from;
    while let Some(&c) = chars.get(j) {
        if c == '`' {
            let run = run_len(chars, j, '`');
            if run == len {
                return Some(j);
            }
            j += run;
        } else {
            j += 1;
        }
    }
    None
}

/// Emphasis delimiters (`*`, `_` runs; `~` runs of two or more) that pair up, after the
/// CommonMark flanking rules, are dropped; the rest is text ("2 * 3", "nome_file", "~10").
fn mark_emphasis(chars: &[char], roles: &mut [Role]) {
    const MARKS: [char; 3] = ['*', '_', '~'];
    // Openers waiting for a closer: (start, len, mark index).
    let mut openers: Vec<(usize, usize, usize)> = Vec::new();
    // Below this height a closer of that mark already found no opener: do not look again.
    let mut bottom = [0usize; 3];
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let Some(mark) = MARKS.iter().position(|&m| m == c) else {
            i += 1;
            continue;
        };
        let len = chars[i..]
            .iter()
            .zip(&roles[i..])
            .take_while(|&(&x, &role)| x == c && role == Role::Markup)
            .count();
        if len == 0 || (c == '~' && len < 2) {
            i += len.max(1);
            continue;
        }
        let before = i.checked_sub(1).map(|p| chars[p]);
        let after = chars.get(i + len).copied();
        let (can_open, can_close) = flanking(c, before, after);
        let found = if can_close {
            openers[bottom[mark].min(openers.len())..]
                .iter()
                .rposition(|&(_, _, m)| m == mark)
                .map(|k| k + bottom[mark].min(openers.len()))
        } else {
            None
        };
        if let Some(k) = found {
            let (start, open_len, _) = openers[k];
            roles[start..start + open_len].fill(Role::Drop);
            roles[i..i + len].fill(Role::Drop);
            openers.truncate(k);
            for b in &mut bottom {
                *b = (*b).min(openers.len());
            }
        } else {
            if can_close {
                bottom[mark] = openers.len();
            }
            if can_open {
                openers.push((i, len, mark));
            }
        }
        i += len;
    }
}

/// CommonMark's left- and right-flanking rules, with the stricter `_` variant that keeps
/// intraword underscores as text. The start and end of the block count as whitespace.
fn flanking(mark: char, before: Option<char>, after: Option<char>) -> (bool, bool) {
    let space = |c: Option<char>| c.is_none_or(char::is_whitespace);
    let punct = |c: Option<char>| c.is_some_and(|c| !c.is_alphanumeric() && !c.is_whitespace());
    let left = !space(after) && (!punct(after) || space(before) || punct(before));
    let right = !space(before) && (!punct(before) || space(after) || punct(after));
    if mark == '_' {
        (
            left && (!right || punct(before)),
            right && (!left || punct(after)),
        )
    } else {
        (left, right)
    }
}

/// For each opening character still [`Role::Markup`], the index of its matching closer.
fn match_pairs(chars: &[char], roles: &[Role], open: char, close: char) -> Vec<Option<usize>> {
    let mut matches = vec![None; chars.len()];
    let mut stack = Vec::new();
    for (j, (&c, &role)) in chars.iter().zip(roles).enumerate() {
        if role != Role::Markup {
            continue;
        }
        if c == open {
            stack.push(j);
        } else if c == close
            && let Some(o) = stack.pop()
        {
            matches[o] = Some(j);
        }
    }
    matches
}

/// What is needed to recognise a link (or, after a `!`, an image) starting at a `[`.
struct Links<'a> {
    chars: &'a [char],
    brackets: &'a [Option<usize>],
    parens: &'a [Option<usize>],
    labels: &'a HashSet<String>,
}

impl Links<'_> {
    /// The index just past the link whose text opens at `open`, if it is one: `[t](url)`,
    /// `[t][ref]`, `[t][]` or `[ref]` with `ref` defined.
    fn end(&self, open: usize) -> Option<usize> {
        if self.chars.get(open) != Some(&'[') {
            return None;
        }
        let close = self.brackets.get(open).copied().flatten()?;
        let next = close + 1;
        let defined = |from: usize, to: usize| {
            self.labels.contains(&normalize_label(
                &self.chars[from..to].iter().collect::<String>(),
            ))
        };
        match self.chars.get(next) {
            Some('(') => {
                if let Some(end) = self.parens.get(next).copied().flatten() {
                    return Some(end + 1);
                }
            }
            Some('[') => {
                if let Some(end) = self.brackets.get(next).copied().flatten() {
                    let named = end > next + 1 && defined(next + 1, end);
                    if named || (end == next + 1 && defined(open + 1, close)) {
                        return Some(end + 1);
                    }
                }
            }
            _ => {}
        }
        defined(open + 1, close).then_some(next)
    }
}

/// `<scheme:…>` or `<www.…>` with no whitespace inside: the index just past the `>`.
fn autolink_end(chars: &[char], open: usize) -> Option<usize> {
    if chars.get(open) != Some(&'<') {
        return None;
    }
    let body = &chars[open + 1..];
    let len = body
        .iter()
        .position(|&c| c == '>' || c == '<' || c.is_whitespace())
        .filter(|&len| body.get(len) == Some(&'>'))?;
    let inside: String = body[..len].iter().collect();
    let scheme = inside.split_once(':').map(|(s, _)| s);
    let is_uri = scheme.is_some_and(|s| {
        (2..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    });
    (is_uri || url_prefix_len(&inside).is_some()).then_some(open + 1 + len + 1)
}

/// The length of the URL prefix (`http://`, `https://`, `www.`, any case) `text` starts with.
fn url_prefix_len(text: &str) -> Option<usize> {
    ["https://", "http://", "www."]
        .iter()
        .find(|prefix| {
            text.get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        })
        .map(|prefix| prefix.len())
}

/// Replaces every bare URL by the placeholder. There is no word-boundary check: a URL glued to
/// a word ("vedihttps://x.it") is still a URL to a mail client.
fn replace_bare_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(tail) = text.get(i..).filter(|t| !t.is_empty()) {
        if let Some(prefix) = url_prefix_len(tail) {
            out.push_str(LINK_PLACEHOLDER);
            i += url_len(tail, prefix);
        } else if let Some(c) = tail.chars().next() {
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// A URL runs to the next whitespace, less trailing sentence punctuation and any `)` that
/// closes a parenthesis opened before the URL, but never less than its prefix.
fn url_len(tail: &str, prefix: usize) -> usize {
    let mut end = tail.find(char::is_whitespace).unwrap_or(tail.len());
    while end > prefix {
        let url = &tail[..end];
        let Some(last) = url.chars().next_back() else {
            break;
        };
        let trailing = matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '»')
            || (last == ')' && url.matches(')').count() > url.matches('(').count());
        if !trailing {
            break;
        }
        end -= last.len_utf8();
    }
    end
}

/// The first `max` characters, plus the ellipsis if anything was cut.
fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => {
            let mut kept = text[..cut].to_owned();
            kept.push(TEASER_ELLIPSIS);
            kept
        }
        None => text.to_owned(),
    }
}

fn break_dots(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3 * text.matches('.').count());
    for c in text.chars() {
        out.push(c);
        if c == '.' {
            out.push(ZERO_WIDTH_SPACE);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The expected teaser for visible text `s`: a zero-width space after every dot.
    fn dotted(s: &str) -> String {
        s.replace('.', ".\u{200B}")
    }

    #[test]
    fn teaser_cases() {
        let a134 = "a".repeat(134);
        let a135 = "a".repeat(135);
        let accents = "è".repeat(140);
        let emoji = "😀".repeat(135);
        let mixed = format!("{}é😀x", "a".repeat(133));
        let link_at_limit = format!("{} [x](https://x.it)", "b".repeat(120));
        let cases: Vec<(&str, &str, String)> = vec![
            (
                "plain short text is kept whole, no ellipsis",
                "Gentile cittadino, il pagamento è in scadenza",
                "Gentile cittadino, il pagamento è in scadenza".into(),
            ),
            ("exactly 134 chars: no ellipsis", &a134, a134.clone()),
            (
                "135 chars: 134 kept and the ellipsis",
                &a135,
                format!("{a134}…"),
            ),
            (
                "accented letters count as one char each",
                &accents,
                format!("{}…", "è".repeat(134)),
            ),
            (
                "emoji count as one char each",
                &emoji,
                format!("{}…", "😀".repeat(134)),
            ),
            (
                "the cut lands on a char boundary after a multibyte char",
                &mixed,
                format!("{}é…", "a".repeat(133)),
            ),
            (
                "headings, emphasis, code, lists, quotes and rules are stripped",
                "# Avviso ##\n\n**Importante**: la _scadenza_ è il `30/06`\n\n- primo\n* secondo\n+ [x] terzo\n1. quarto\n2) quinto\n> citazione\n> > doppia\n\n---\n* * *\nTitolo\n===\n~~vecchio~~ nuovo",
                "Avviso Importante: la scadenza è il 30/06 primo secondo terzo quarto quinto citazione doppia Titolo vecchio nuovo".into(),
            ),
            (
                "an inline link is replaced whole, text included",
                "Paga su [pagoPA](https://www.pagopa.gov.it/it/pagare (titolo)) entro oggi",
                "Paga su [link rimosso] entro oggi".into(),
            ),
            (
                "link text that is a domain goes with its link",
                "Vai su [www.comune.it](https://www.comune.it)",
                "Vai su [link rimosso]".into(),
            ),
            (
                "reference links, collapsed and shortcut, when defined",
                "Vedi [il sito][sito], [Sito][] e [sito]; [altro] resta\n\n[sito]: https://example.it \"Titolo\"",
                "Vedi [link rimosso], [link rimosso] e [link rimosso]; [altro] resta".into(),
            ),
            (
                "prose that merely looks like a definition is kept",
                "[Nota]: leggere bene",
                "[Nota]: leggere bene".into(),
            ),
            (
                "an autolink is replaced",
                "Scrivi a <https://example.it/contatti> oggi",
                "Scrivi a [link rimosso] oggi".into(),
            ),
            (
                "bare URLs are replaced, trailing punctuation stays outside",
                "Visita https://example.com/a?b=1. Oppure (WWW.COMUNE.IT) o HTTP://X.IT/p_(q)!",
                dotted("Visita [link rimosso]. Oppure ([link rimosso]) o [link rimosso]!"),
            ),
            (
                "a URL glued to a word is still replaced",
                "vedihttps://x.it ora",
                "vedi[link rimosso] ora".into(),
            ),
            (
                "an image is removed with its alt text",
                "Logo ![stemma del comune](https://x.it/a.png) del comune",
                "Logo del comune".into(),
            ),
            (
                "dots in prose and domain-like text get a zero-width space",
                "Ai sensi dell'Art. 3 vedi comune.roma.it",
                "Ai sensi dell'Art.\u{200B} 3 vedi comune.\u{200B}roma.\u{200B}it".into(),
            ),
            (
                "whitespace collapses and ends are trimmed",
                "  riga uno\n\n\triga   due \r\n",
                "riga uno riga due".into(),
            ),
            (
                "delimiters that open nothing are text",
                "2 * 3 = 6, nome_del_file e ~10 euro",
                "2 * 3 = 6, nome_del_file e ~10 euro".into(),
            ),
            (
                "escapes keep the escaped character",
                "\\*non enfasi\\* e \\[non link\\](x)",
                "*non enfasi* e [non link](x)".into(),
            ),
            (
                "fenced code keeps its content as text",
                "Esempio:\n```text\nlet x = *a*;\n```\nfine",
                "Esempio: let x = *a*; fine".into(),
            ),
            (
                "URLs inside code spans are replaced too",
                "copia `https://x.it/a_b` qui",
                "copia [link rimosso] qui".into(),
            ),
            (
                "the placeholder counts as visible text and may be cut",
                &link_at_limit,
                format!("{} [link rimosso…", "b".repeat(120)),
            ),
            ("empty markdown gives an empty teaser", "", String::new()),
        ];
        for (name, markdown, want) in cases {
            assert_eq!(email_teaser(markdown), want, "{name}");
        }
    }

    #[test]
    fn the_limit_counts_visible_text_before_zero_width_spaces() {
        // 67 × "a." is 134 visible chars: kept whole although 67 ZWSPs are added.
        let exact = "a.".repeat(67);
        assert_eq!(email_teaser(&exact), dotted(&exact));
        let over = "a.".repeat(68);
        assert_eq!(email_teaser(&over), format!("{}…", dotted(&exact)));
    }

    #[test]
    fn push_is_anonymous_unless_full_and_not_secure() {
        let anonymous = PushText {
            title: PUSH_ANONYMOUS_TITLE.into(),
            body: PUSH_ANONYMOUS_BODY.into(),
        };
        let full = PushText {
            title: "Comune di Roma".into(),
            body: "Scadenza TARI".into(),
        };
        for (preview, secure, want) in [
            (PushPreview::Anonymous, false, &anonymous),
            (PushPreview::Anonymous, true, &anonymous),
            (PushPreview::Full, true, &anonymous),
            (PushPreview::Full, false, &full),
        ] {
            assert_eq!(
                &push_text(preview, secure, "Comune di Roma", "Scadenza TARI"),
                want,
                "{preview:?} secure={secure}"
            );
        }
    }

    fn check_teaser(input: &str) -> Result<(), TestCaseError> {
        let teaser = email_teaser(input);
        let visible: String = teaser.chars().filter(|&c| c != ZERO_WIDTH_SPACE).collect();
        let body = visible.strip_suffix(TEASER_ELLIPSIS).unwrap_or(&visible);
        prop_assert!(body.chars().count() <= TEASER_MAX_CHARS, "{teaser:?}");
        let mut chars = teaser.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '.' {
                prop_assert_eq!(chars.peek(), Some(&ZERO_WIDTH_SPACE), "{:?}", teaser);
            }
        }
        let lower = visible.to_ascii_lowercase();
        for prefix in ["http://", "https://", "www."] {
            prop_assert!(!lower.contains(prefix), "{teaser:?}");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn teaser_of_any_string_is_bounded(input in any::<String>()) {
            check_teaser(&input)?;
        }

        #[test]
        fn teaser_of_markdownish_text_is_bounded(
            input in "([a-zè😀 .\n\t#*_`~>\\[\\]()!<:\\\\-]|https://|www\\.|\\[r\\]: u\n){0,200}"
        ) {
            check_teaser(&input)?;
        }
    }
}
